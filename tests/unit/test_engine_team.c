/* test_engine_team: a team with its own lent threads (server/engine_team.h).
 * Every item of a run is done exactly once across the lanes; lanes other than
 * the caller's take part once their threads serve; stopping twice and freeing
 * a team never started are no-ops. Runs under TSan in `make tsan`. */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine_team.h"

enum { N_ITEMS = 2000, MAX_LANES = 4, MAX_RUNS = 20000 };

typedef struct {
    _Atomic int done[N_ITEMS];
    _Atomic int by_lane[MAX_LANES];
} tally;

static void count_items(void *arg, int lane, int begin, int end)
{
    tally *t = arg;
    for (int i = begin; i < end; i++)
        atomic_fetch_add(&t->done[i], 1);
    atomic_fetch_add(&t->by_lane[lane], end - begin);
}

static void test_every_item_once_on_every_size(void **state)
{
    (void)state;
    static tally t;
    for (int lanes = 1; lanes <= MAX_LANES; lanes++) {
        engine_team team;
        char why[160];
        assert_int_equal(engine_team_start(&team, lanes, why, sizeof why), 0);
        assert_int_equal(parallel_team_lanes(team.team), lanes);
        assert_int_equal(team.n_started, lanes - 1);
        memset(&t, 0, sizeof t);
        /* Runs until a lent lane has taken part (each run is short; the lent
         * threads may need a few to wake), at most MAX_RUNS runs. */
        int runs = 0;
        do {
            parallel_for(team.team, N_ITEMS, 16, count_items, &t);
            runs++;
            if (lanes > 1 && atomic_load(&t.by_lane[0]) == runs * N_ITEMS)
                sched_yield();
        } while (lanes > 1 && runs < MAX_RUNS && atomic_load(&t.by_lane[0]) == runs * N_ITEMS);
        for (int i = 0; i < N_ITEMS; i++)
            assert_int_equal(atomic_load(&t.done[i]), runs);
        if (lanes > 1)
            assert_true(atomic_load(&t.by_lane[0]) < runs * N_ITEMS);
        engine_team_stop(&team);
        engine_team_stop(&team); /* a second stop is a no-op */
        assert_int_equal(team.n_started, 0);
        engine_team_free(&team);
        assert_null(team.team);
    }
}

static void test_free_of_a_team_never_started(void **state)
{
    (void)state;
    engine_team team = {0};
    engine_team_stop(&team);
    engine_team_free(&team);
    assert_null(team.team);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_item_once_on_every_size),
        cmocka_unit_test(test_free_of_a_team_never_started),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
