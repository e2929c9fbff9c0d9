/* task_pool: a few threads that run short CPU tasks handed over by the HTTP
 * thread (a model route's body parsing, tokenizing and catalog lookups), so
 * that the thread that accepts connections and answers probes never does
 * that work itself. Tasks are intrusive (the caller's struct embeds a
 * task_pool_task), so submitting allocates nothing; the queue is unbounded,
 * but every task belongs to a parked request, so the connection limit bounds
 * it. FIFO. */
#ifndef FF_TASK_POOL_H
#define FF_TASK_POOL_H

#include "compiler.h"

typedef struct task_pool task_pool;

typedef struct task_pool_task {
    void (*run)(struct task_pool_task *t); /* runs on a pool thread */
    struct task_pool_task *next;           /* the pool's */
} task_pool_task;

/* Starts n_threads (>= 1) threads named `name` (at most 15 bytes shown, as
 * in top -H), each at `nice_increment` (>= 0) above the process's nice value
 * (capped at 19), so that a busy pool yields the CPU to the threads that
 * must answer fast (the HTTP thread); raising one's own nice value needs no
 * privilege. They are started and reprioritised when it returns. NULL when
 * out of memory or threads. */
task_pool *task_pool_new(int n_threads, const char *name, int nice_increment);

/* Queues t (t->run set; t stays the caller's until run is called). After
 * task_pool_stop, runs t at once on the calling thread. Any thread. */
void task_pool_submit(task_pool *p, task_pool_task *t);

/* Runs every task still queued and joins the threads; later submits run
 * inline. Main thread; NULL is ignored. */
void task_pool_stop(task_pool *p);

/* Frees a stopped pool once nothing can submit to it any more. NULL ok. */
void task_pool_free(task_pool *p);

#endif
