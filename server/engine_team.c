/* engine_team: a parallel_team with the threads that serve it (see
 * engine_team.h). */
#include "engine_team.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct engine_team_thread {
    pthread_t thread;
    parallel_team *team;
    int lane;
};

static void *serve_main(void *arg)
{
    engine_team_thread *th = arg;
    parallel_team_serve(th->team, th->lane);
    return NULL;
}

int engine_team_start(engine_team *t, int lanes, char *err, size_t err_cap)
{
    assert(t && lanes >= 1);
    *t = (engine_team){0};
    if (!(t->team = parallel_team_new(lanes)) ||
        (lanes > 1 && !(t->threads = calloc((size_t)lanes - 1, sizeof *t->threads)))) {
        snprintf(err, err_cap, "out of memory for %d engine threads", lanes);
        parallel_team_free(t->team); /* no thread started yet */
        *t = (engine_team){0};
        return -1;
    }
    for (int lane = 1; lane < lanes; lane++) {
        engine_team_thread *th = &t->threads[lane - 1];
        th->team = t->team;
        th->lane = lane;
        int rc = pthread_create(&th->thread, NULL, serve_main, th);
        if (rc != 0) {
            snprintf(err, err_cap, "cannot start engine thread %d of %d: %s", lane, lanes - 1,
                     strerror(rc));
            engine_team_free(t);
            return -1;
        }
        t->n_started++;
    }
    return 0;
}

void engine_team_stop(engine_team *t)
{
    assert(t);
    if (!t->team || t->stopped)
        return;
    parallel_team_stop(t->team);
    t->stopped = true;
    for (int i = 0; i < t->n_started; i++)
        pthread_join(t->threads[i].thread, NULL);
    t->n_started = 0;
}

void engine_team_free(engine_team *t)
{
    assert(t);
    engine_team_stop(t);
    parallel_team_free(t->team);
    free(t->threads);
    *t = (engine_team){0};
}
