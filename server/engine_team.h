/* engine_team: a parallel_team (model/parallel.h) together with the threads
 * that serve it. model/ starts no threads; whoever runs the engine on more than
 * one core (a daemon worker, fastformer-cli bench, bench_engine, the tests)
 * makes one of these: the owner thread is lane 0 and engine_team_start starts
 * lanes - 1 threads, each lent to the team until engine_team_stop. The
 * engine_team owns the team and its threads. */
#ifndef FF_ENGINE_TEAM_H
#define FF_ENGINE_TEAM_H

#include <stdbool.h>
#include <stddef.h>

#include "parallel.h"

typedef struct engine_team_thread engine_team_thread;

typedef struct {
    parallel_team *team;         /* NULL until started and after engine_team_free */
    engine_team_thread *threads; /* lanes - 1 */
    int n_started;               /* threads started and not yet joined */
    bool stopped;                /* engine_team_stop has run */
} engine_team;

/* Makes a team of `lanes` >= 1 lanes and starts its lanes - 1 threads; 0, or
 * -1 with a message in err (what was started is stopped and freed). */
int engine_team_start(engine_team *t, int lanes, char *err, size_t err_cap);

/* Returns the threads from serving and joins them; the team stays allocated
 * (it may not run again). The owner thread, with no parallel_for in
 * progress; a second call, or one on a team never started, is a no-op. */
void engine_team_stop(engine_team *t);

/* engine_team_stop, then frees the team; *t is zeroed. */
void engine_team_free(engine_team *t);

#endif
