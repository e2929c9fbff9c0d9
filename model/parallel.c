/* parallel: the team of lent threads (parallel.h).
 *
 * A run is one 64-bit atomic `claim`: generation << 32 | next item. The
 * owner stores fn, arg, n_items and grain, then publishes claim = (gen, 0)
 * and wakes the lent threads. Every lane takes grains by compare-and-swap on
 * claim, which fails once the items are gone or the generation moved on.
 * A lent thread announces itself in `active` before it reads claim, and the
 * owner returns only when the items are gone and active is 0; so while a lent
 * thread holds a claim of generation g, the owner is still in run g and fn,
 * arg and n_items are still g's. A lent thread that wakes after its run
 * finds nothing to claim. Both condition variables are signalled under the
 * mutex after the atomic stores they announce, so no wake-up is lost.
 *
 * A lent thread can announce itself late: it saw run g start, but the owner
 * found active at 0 before the announcement, returned, and is storing run
 * g+1's n_items while claim still reads (g, next). So the owner closes each
 * run, claim = (g, RUN_CLOSED), before it returns, and n_items and grain are
 * published with release and read with acquire: a lane that reads g+1's
 * n_items also sees (g, RUN_CLOSED) in its compare-and-swap, which then
 * fails, and never runs g+1's items under g. */
#include "parallel.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* How many polls a waiting thread makes before it sleeps: some tens of
 * microseconds, longer than the gap between two runs of one encode. */
#define PARALLEL_SPIN_POLLS 4000

/* claim's item field once the owner has left the run: above any n_items. */
#define RUN_CLOSED UINT32_MAX

struct parallel_team {
    int n_lanes;
    unsigned generation; /* owner only: the last run's */
    parallel_items_fn *_Atomic fn;
    void *_Atomic arg;
    _Atomic int n_items, grain;
    _Atomic uint64_t claim; /* generation << 32 | next item */
    _Atomic int active;     /* lent threads between announcing themselves and done */
    _Atomic bool stop;
    _Atomic int n_sleeping; /* lent threads waiting on `wake`; written under lock */
    unsigned warm_seq;      /* parallel_team_warm calls that woke someone; under lock */
    unsigned long n_warmed; /* sleeps that parallel_team_warm ended; under lock */
    pthread_mutex_t lock;
    pthread_cond_t wake; /* a new generation, stop, or parallel_team_warm */
    pthread_cond_t done; /* active reached 0 */
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

static unsigned generation_of(uint64_t claim)
{
    return (unsigned)(claim >> 32);
}

/* Takes the next grain of run `gen`: true with [*begin, *end), or false when
 * the run has no items left or is over. */
static bool take(parallel_team *t, unsigned gen, int *begin, int *end)
{
    uint64_t c = atomic_load(&t->claim);
    for (;;) {
        if (generation_of(c) != gen)
            return false;
        const uint32_t next_item = (uint32_t)c;
        const int n = atomic_load_explicit(&t->n_items, memory_order_acquire);
        if (next_item >= (uint32_t)n)
            return false;
        const int next = (int)next_item;
        const int grain = atomic_load_explicit(&t->grain, memory_order_acquire);
        const int stop = n - next < grain ? n : next + grain;
        if (atomic_compare_exchange_weak(&t->claim, &c, ((uint64_t)gen << 32) | (uint32_t)stop)) {
            *begin = next;
            *end = stop;
            return true;
        }
    }
}

/* Polls for PARALLEL_SPIN_POLLS: true once claim's generation is not `seen`,
 * false on stop or when the polls run out. */
static bool spin_generation(parallel_team *t, unsigned seen, bool *stopped)
{
    for (int i = 0; i < PARALLEL_SPIN_POLLS; i++) {
        if (generation_of(atomic_load(&t->claim)) != seen)
            return true;
        if (atomic_load_explicit(&t->stop, memory_order_relaxed)) {
            *stopped = true;
            return false;
        }
        cpu_relax();
    }
    return false;
}

/* Waits until claim's generation is not `seen` or stop; false on stop. Polls
 * first, then sleeps; a parallel_team_warm during the sleep starts the
 * polling again. */
static bool wait_generation(parallel_team *t, unsigned seen)
{
    for (;;) {
        bool stopped = false;
        if (spin_generation(t, seen, &stopped))
            return true;
        if (stopped)
            return false;
        pthread_mutex_lock(&t->lock);
        const unsigned warm = t->warm_seq;
        atomic_fetch_add(&t->n_sleeping, 1);
        while (generation_of(atomic_load(&t->claim)) == seen && !atomic_load(&t->stop) &&
               t->warm_seq == warm)
            pthread_cond_wait(&t->wake, &t->lock);
        atomic_fetch_sub(&t->n_sleeping, 1);
        const bool warmed = generation_of(atomic_load(&t->claim)) == seen && !atomic_load(&t->stop);
        if (warmed)
            t->n_warmed++;
        pthread_mutex_unlock(&t->lock);
        if (!warmed)
            return !atomic_load(&t->stop);
    }
}

void parallel_team_warm(parallel_team *t)
{
    /* Racy on purpose: a thread that is just going to sleep is missed, and
     * the next run wakes it as it would have anyway. */
    if (!t || atomic_load_explicit(&t->n_sleeping, memory_order_relaxed) == 0)
        return;
    pthread_mutex_lock(&t->lock);
    if (atomic_load(&t->n_sleeping) > 0) {
        t->warm_seq++;
        pthread_cond_broadcast(&t->wake);
    }
    pthread_mutex_unlock(&t->lock);
}

int parallel_team_sleeping(const parallel_team *t)
{
    return atomic_load(&((parallel_team *)t)->n_sleeping);
}

unsigned long parallel_team_warmed(parallel_team *t)
{
    pthread_mutex_lock(&t->lock);
    unsigned long n = t->n_warmed;
    pthread_mutex_unlock(&t->lock);
    return n;
}

void parallel_team_serve(parallel_team *t, int lane)
{
    assert(lane >= 1 && lane < t->n_lanes);
    unsigned seen = 0;
    while (wait_generation(t, seen)) {
        atomic_fetch_add(&t->active, 1);
        /* Announced: from here the owner cannot leave the run we read. */
        seen = generation_of(atomic_load(&t->claim));
        parallel_items_fn *fn = atomic_load_explicit(&t->fn, memory_order_relaxed);
        void *arg = atomic_load_explicit(&t->arg, memory_order_relaxed);
        int begin, end;
        while (take(t, seen, &begin, &end))
            fn(arg, lane, begin, end);
        if (atomic_fetch_sub(&t->active, 1) == 1) {
            pthread_mutex_lock(&t->lock);
            pthread_cond_signal(&t->done);
            pthread_mutex_unlock(&t->lock);
        }
    }
}

void parallel_for(parallel_team *t, int n_items, int grain, parallel_items_fn *fn, void *arg)
{
    assert(n_items >= 0 && grain >= 1);
    if (!t || t->n_lanes == 1 || n_items <= grain) {
        fn(arg, 0, 0, n_items);
        return;
    }
    const unsigned gen = ++t->generation;
    atomic_store_explicit(&t->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&t->arg, arg, memory_order_relaxed);
    atomic_store_explicit(&t->n_items, n_items, memory_order_release);
    atomic_store_explicit(&t->grain, grain, memory_order_release);
    atomic_store(&t->claim, (uint64_t)gen << 32);
    pthread_mutex_lock(&t->lock);
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->lock);

    int begin, end;
    while (take(t, gen, &begin, &end))
        fn(arg, 0, begin, end);
    atomic_store(&t->claim, ((uint64_t)gen << 32) | RUN_CLOSED);

    /* Every item is taken; wait for the lent threads still holding some. */
    for (int i = 0; i < PARALLEL_SPIN_POLLS; i++) {
        if (atomic_load(&t->active) == 0)
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&t->lock);
    while (atomic_load(&t->active) != 0)
        pthread_cond_wait(&t->done, &t->lock);
    pthread_mutex_unlock(&t->lock);
}
