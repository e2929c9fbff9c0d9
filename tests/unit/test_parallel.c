/* test_parallel: teams of lent threads (model/parallel.h). Every item of
 * every run is done exactly once, by the caller and whichever lent threads
 * join, for many runs of varied sizes and grains; a run never waits for a
 * lent thread that has not started (the caller does the work); results
 * written by the lent lanes are visible to the caller when parallel_for
 * returns (TSan checks the synchronisation in make tsan). */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "parallel.h"

enum { MAX_ITEMS = 5000, MAX_LANES = 4 };

typedef struct {
    int done[MAX_ITEMS]; /* plain ints: each written by one lane, read after the run */
    _Atomic int by_lane[MAX_LANES];
    int n_lanes;
} job;

static void mark(void *arg, int lane, int begin, int end)
{
    job *j = arg;
    assert_true(lane >= 0 && lane < j->n_lanes);
    assert_true(0 <= begin && begin <= end && end <= MAX_ITEMS);
    for (int i = begin; i < end; i++)
        j->done[i]++;
    atomic_fetch_add(&j->by_lane[lane], end - begin);
}

typedef struct {
    parallel_team *team;
    int lane;
} lent;

static void *serve(void *arg)
{
    lent *l = arg;
    parallel_team_serve(l->team, l->lane);
    return NULL;
}

static void run_and_check(parallel_team *t, job *j, int n_items, int grain)
{
    memset(j->done, 0, sizeof j->done);
    parallel_for(t, n_items, grain, mark, j);
    for (int i = 0; i < n_items; i++)
        if (j->done[i] != 1)
            fail_msg("%d items, grain %d: item %d done %d times", n_items, grain, i, j->done[i]);
    for (int i = n_items; i < MAX_ITEMS; i++)
        assert_int_equal(j->done[i], 0);
}

static void test_every_item_once(void **state)
{
    (void)state;
    static job j;
    for (int lanes = 1; lanes <= MAX_LANES; lanes++) {
        parallel_team *t = parallel_team_new(lanes);
        assert_non_null(t);
        assert_int_equal(parallel_team_lanes(t), lanes);
        pthread_t th[MAX_LANES];
        lent l[MAX_LANES];
        for (int i = 1; i < lanes; i++) {
            l[i] = (lent){t, i};
            assert_int_equal(pthread_create(&th[i], NULL, serve, &l[i]), 0);
        }
        memset(&j, 0, sizeof j);
        j.n_lanes = lanes;
        uint32_t r = 12345;
        for (int run = 0; run < 400; run++) {
            r = r * 1664525u + 1013904223u;
            run_and_check(t, &j, (int)(r >> 8) % MAX_ITEMS, 1 + (int)(r >> 4) % 7);
        }
        run_and_check(t, &j, 0, 1);
        parallel_team_stop(t);
        for (int i = 1; i < lanes; i++)
            pthread_join(th[i], NULL);
        parallel_team_free(t);
    }
}

/* A lent thread that never came: runs still complete, on the caller alone;
 * once it serves, it takes part. */
static void test_caller_never_waits_for_an_absent_lane(void **state)
{
    (void)state;
    static job j;
    memset(&j, 0, sizeof j);
    j.n_lanes = 2;
    parallel_team *t = parallel_team_new(2);
    assert_non_null(t);
    for (int run = 0; run < 50; run++)
        run_and_check(t, &j, 1000, 1);
    assert_int_equal(atomic_load(&j.by_lane[1]), 0);
    assert_int_equal(atomic_load(&j.by_lane[0]), 50 * 1000);

    pthread_t th;
    lent l = {t, 1};
    assert_int_equal(pthread_create(&th, NULL, serve, &l), 0);
    for (int run = 0; run < 200; run++)
        run_and_check(t, &j, 4000, 1);
    parallel_team_stop(t);
    pthread_join(th, NULL);
    parallel_team_free(t);
}

/* Waits until cond(t) holds; fails after a minute (a generous bound: the
 * outcome is checked, not how fast it came). */
static void wait_until(bool (*cond)(parallel_team *t), parallel_team *t, const char *what)
{
    time_t give_up = time(NULL) + 60;
    while (!cond(t)) {
        if (time(NULL) > give_up)
            fail_msg("still not %s after 60 s", what);
        sched_yield();
    }
}

static bool all_asleep(parallel_team *t)
{
    return parallel_team_sleeping(t) == parallel_team_lanes(t) - 1;
}

static bool warmed_once_each(parallel_team *t)
{
    return parallel_team_warmed(t) >= (unsigned long)(parallel_team_lanes(t) - 1);
}

/* parallel_team_warm ends the sleep of every sleeping lent thread (they poll
 * again, then sleep again); runs after it, and runs racing with warms from
 * another thread, still do every item once. */
static void *warm_often(void *arg)
{
    parallel_team *t = arg;
    for (int i = 0; i < 20000; i++)
        parallel_team_warm(t);
    return NULL;
}

static void test_warm_wakes_sleeping_lanes(void **state)
{
    (void)state;
    static job j;
    memset(&j, 0, sizeof j);
    j.n_lanes = 3;
    parallel_team *t = parallel_team_new(3);
    assert_non_null(t);
    parallel_team_warm(t); /* nobody sleeps yet: nothing to do */
    pthread_t th[3];
    lent l[3];
    for (int i = 1; i < 3; i++) {
        l[i] = (lent){t, i};
        assert_int_equal(pthread_create(&th[i], NULL, serve, &l[i]), 0);
    }
    wait_until(all_asleep, t, "asleep");
    assert_int_equal(parallel_team_warmed(t), 0);
    parallel_team_warm(t);
    wait_until(warmed_once_each, t, "woken by the warm");
    wait_until(all_asleep, t, "asleep again"); /* polled in vain */
    run_and_check(t, &j, 3000, 1);

    pthread_t warmer;
    assert_int_equal(pthread_create(&warmer, NULL, warm_often, t), 0);
    for (int run = 0; run < 300; run++)
        run_and_check(t, &j, 1 + run * 13 % 2000, 1 + run % 5);
    pthread_join(warmer, NULL);
    parallel_team_stop(t);
    for (int i = 1; i < 3; i++)
        pthread_join(th[i], NULL);
    parallel_team_warm(NULL);
    parallel_team_free(t);
}

/* No team, or one lane: fn runs once over everything on the caller. */
static void test_no_team(void **state)
{
    (void)state;
    static job j;
    memset(&j, 0, sizeof j);
    j.n_lanes = 1;
    run_and_check(NULL, &j, 77, 3);
    assert_int_equal(atomic_load(&j.by_lane[0]), 77);
    parallel_team_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_item_once),
        cmocka_unit_test(test_caller_never_waits_for_an_absent_lane),
        cmocka_unit_test(test_warm_wakes_sleeping_lanes),
        cmocka_unit_test(test_no_team),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
