/* parallel: the team of lent threads (parallel.h). A run is published by
 * bumping `generation` (release) after storing fn and arg; each lent thread
 * waits for a new generation (spinning briefly, then on `wake`), runs its
 * share and decrements `pending`; the last one signals `done`. The owner
 * waits on `pending` the same way. Both condition variables are signalled
 * under the mutex after the atomic store, so no wake-up is lost. */
#include "parallel.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

/* How many polls a waiting thread makes before it sleeps: a few tens of
 * microseconds, longer than the gap between two runs of one encode. */
#define PARALLEL_SPIN_POLLS 4000

struct parallel_team {
    int n_lanes;
    parallel_fn *_Atomic fn;
    void *_Atomic arg;
    _Atomic unsigned generation;
    _Atomic int pending; /* lent lanes still running the current generation */
    _Atomic bool stop;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* a new generation or stop */
    pthread_cond_t done; /* pending reached 0 */
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

parallel_team *parallel_team_new(int n_lanes)
{
    assert(n_lanes >= 1);
    parallel_team *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->n_lanes = n_lanes;
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        return NULL;
    }
    if (pthread_cond_init(&t->wake, NULL) != 0) {
        pthread_mutex_destroy(&t->lock);
        free(t);
        return NULL;
    }
    if (pthread_cond_init(&t->done, NULL) != 0) {
        pthread_cond_destroy(&t->wake);
        pthread_mutex_destroy(&t->lock);
        free(t);
        return NULL;
    }
    return t;
}

int parallel_team_lanes(const parallel_team *t)
{
    return t->n_lanes;
}

void parallel_team_free(parallel_team *t)
{
    if (!t)
        return;
    pthread_cond_destroy(&t->done);
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

void parallel_team_stop(parallel_team *t)
{
    pthread_mutex_lock(&t->lock);
    atomic_store(&t->stop, true);
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->lock);
}

/* Waits until generation != seen or stop; returns false on stop. */
static bool wait_generation(parallel_team *t, unsigned seen)
{
    for (int i = 0; i < PARALLEL_SPIN_POLLS; i++) {
        if (atomic_load_explicit(&t->generation, memory_order_acquire) != seen)
            return true;
        if (atomic_load_explicit(&t->stop, memory_order_relaxed))
            return false;
        cpu_relax();
    }
    pthread_mutex_lock(&t->lock);
    while (atomic_load_explicit(&t->generation, memory_order_acquire) == seen &&
           !atomic_load(&t->stop))
        pthread_cond_wait(&t->wake, &t->lock);
    pthread_mutex_unlock(&t->lock);
    return atomic_load_explicit(&t->generation, memory_order_acquire) != seen;
}

void parallel_team_serve(parallel_team *t, int lane)
{
    assert(lane >= 1 && lane < t->n_lanes);
    /* From generation 0: a run published before this thread got here is
     * still pending on it (lanes are lent once, from the team's start). */
    unsigned seen = 0;
    while (wait_generation(t, seen)) {
        seen++; /* runs are one at a time: the next one is seen + 1 */
        parallel_fn *fn = atomic_load_explicit(&t->fn, memory_order_relaxed);
        void *arg = atomic_load_explicit(&t->arg, memory_order_relaxed);
        fn(arg, lane, t->n_lanes);
        if (atomic_fetch_sub_explicit(&t->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&t->lock);
            pthread_cond_signal(&t->done);
            pthread_mutex_unlock(&t->lock);
        }
    }
}

void parallel_run(parallel_team *t, parallel_fn *fn, void *arg)
{
    if (!t || t->n_lanes == 1) {
        fn(arg, 0, 1);
        return;
    }
    assert(atomic_load(&t->pending) == 0);
    atomic_store_explicit(&t->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&t->arg, arg, memory_order_relaxed);
    atomic_store_explicit(&t->pending, t->n_lanes - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->generation, 1, memory_order_release);
    pthread_mutex_lock(&t->lock);
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->lock);

    fn(arg, 0, t->n_lanes);

    for (int i = 0; i < PARALLEL_SPIN_POLLS; i++) {
        if (atomic_load_explicit(&t->pending, memory_order_acquire) == 0)
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&t->lock);
    while (atomic_load_explicit(&t->pending, memory_order_acquire) != 0)
        pthread_cond_wait(&t->done, &t->lock);
    pthread_mutex_unlock(&t->lock);
}

void parallel_split(int n, int align, int lane, int n_lanes, int *begin, int *end)
{
    assert(n >= 0 && align >= 1 && lane >= 0 && lane < n_lanes);
    const int blocks = (n + align - 1) / align;
    const int b0 = (int)((long)blocks * lane / n_lanes),
              b1 = (int)((long)blocks * (lane + 1) / n_lanes);
    *begin = b0 * align < n ? b0 * align : n;
    *end = b1 * align < n ? b1 * align : n;
}
