/* test_task_pool: every submitted task runs exactly once, from many
 * submitting threads; tasks queued at stop still run; after stop a submit
 * runs inline on the caller; the threads run at the nice value asked for,
 * under their name. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "task_pool.h"

#define SUBMITTERS 4
#define PER_SUBMITTER 2000

typedef struct {
    task_pool_task task;
    atomic_int runs;
    pthread_t ran_on;
} counted;

static counted tasks[SUBMITTERS * PER_SUBMITTER];
static task_pool *pool;

static void count_run(task_pool_task *t)
{
    counted *c = (counted *)t;
    c->ran_on = pthread_self();
    atomic_fetch_add(&c->runs, 1);
}

static void *submitter(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < PER_SUBMITTER; i++) {
        counted *c = &tasks[id * PER_SUBMITTER + i];
        c->task.run = count_run;
        task_pool_submit(pool, &c->task);
    }
    return NULL;
}

static void test_every_task_runs_once(void **state)
{
    (void)state;
    pool = task_pool_new(3, "test-pool", 0);
    assert_non_null(pool);
    pthread_t th[SUBMITTERS];
    for (long i = 0; i < SUBMITTERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, submitter, (void *)i), 0);
    for (int i = 0; i < SUBMITTERS; i++)
        pthread_join(th[i], NULL);
    task_pool_stop(pool); /* runs whatever is still queued */
    for (size_t i = 0; i < sizeof tasks / sizeof tasks[0]; i++) {
        assert_int_equal(atomic_load(&tasks[i].runs), 1);
        assert_false(pthread_equal(tasks[i].ran_on, pthread_self()));
    }
    counted late = {.task.run = count_run};
    task_pool_submit(pool, &late.task);
    assert_int_equal(atomic_load(&late.runs), 1);
    assert_true(pthread_equal(late.ran_on, pthread_self()));
    task_pool_free(pool);
    task_pool_free(NULL);
}

typedef struct {
    task_pool_task task;
    int nice;
    char name[16];
    atomic_int done;
} looked;

static void look_run(task_pool_task *t)
{
    looked *l = (looked *)t;
    l->nice = getpriority(PRIO_PROCESS, (id_t)gettid());
    pthread_getname_np(pthread_self(), l->name, sizeof l->name);
    atomic_store(&l->done, 1);
}

static void look_at_pool_thread(int nice_increment, looked *l)
{
    task_pool *p = task_pool_new(2, "ff-test", nice_increment);
    assert_non_null(p);
    l->task.run = look_run;
    task_pool_submit(p, &l->task);
    task_pool_stop(p); /* runs it (on a pool thread: stop joins after the queue is empty) */
    assert_int_equal(atomic_load(&l->done), 1);
    task_pool_free(p);
}

static void test_threads_run_at_the_nice_value_asked_for(void **state)
{
    (void)state;
    int base = getpriority(PRIO_PROCESS, (id_t)gettid());
    looked l = {0};
    look_at_pool_thread(5, &l);
    assert_int_equal(l.nice, base + 5 > 19 ? 19 : base + 5);
    assert_string_equal(l.name, "ff-test");
    looked capped = {0};
    look_at_pool_thread(19, &capped);
    assert_int_equal(capped.nice, 19);
    looked same = {0};
    look_at_pool_thread(0, &same);
    assert_int_equal(same.nice, base);
    /* the caller's own priority is left alone */
    assert_int_equal(getpriority(PRIO_PROCESS, (id_t)gettid()), base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_task_runs_once),
        cmocka_unit_test(test_threads_run_at_the_nice_value_asked_for),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
