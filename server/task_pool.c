/* task_pool: a FIFO of intrusive tasks and the threads that run them
 * (task_pool.h). */
#include "task_pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

struct task_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t started; /* n_started went up */
    task_pool_task *head, *tail;
    bool stopping;
    int n_threads;
    pthread_t *threads;
    int nice_increment;
    int n_started; /* threads that have set their priority; guarded by lock */
};

static void *pool_thread(void *arg)
{
    task_pool *p = arg;
    /* Linux: PRIO_PROCESS with a thread id sets that thread's nice value
     * alone. Raising one's own nice value cannot fail (EPERM is only for
     * lowering it, or for another user's threads), so the result is not checked. */
    id_t self = (id_t)gettid();
    int nice_now = getpriority(PRIO_PROCESS, self);
    int nice_want = nice_now + p->nice_increment > 19 ? 19 : nice_now + p->nice_increment;
    if (nice_want != nice_now)
        (void)setpriority(PRIO_PROCESS, self, nice_want);
    pthread_mutex_lock(&p->lock);
    p->n_started++;
    pthread_cond_signal(&p->started);
    for (;;) {
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->wake, &p->lock);
        task_pool_task *t = p->head;
        if (!t)
            break; /* stopping and nothing left */
        p->head = t->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);
        t->run(t);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

task_pool *task_pool_new(int n_threads, const char *name, int nice_increment)
{
    task_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->started, NULL);
    p->nice_increment = nice_increment;
    for (; p->n_threads < n_threads; p->n_threads++) {
        if (pthread_create(&p->threads[p->n_threads], NULL, pool_thread, p) != 0) {
            task_pool_free(p);
            return NULL;
        }
        (void)pthread_setname_np(p->threads[p->n_threads], name); /* cosmetic: for top -H */
    }
    /* Wait until every thread runs at its priority, so that none parses a
     * request at the process's. */
    pthread_mutex_lock(&p->lock);
    while (p->n_started < p->n_threads)
        pthread_cond_wait(&p->started, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return p;
}

void task_pool_submit(task_pool *p, task_pool_task *t)
{
    t->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->stopping) {
        pthread_mutex_unlock(&p->lock);
        t->run(t);
        return;
    }
    if (p->tail)
        p->tail->next = t;
    else
        p->head = t;
    p->tail = t;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

void task_pool_stop(task_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    bool was = p->stopping;
    p->stopping = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    if (was)
        return;
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
}

void task_pool_free(task_pool *p)
{
    if (!p)
        return;
    task_pool_stop(p);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->started);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
}
