/* parallel: threads lent to the engine by its caller. model/ starts no
 * threads: a caller that wants an encode to use n cores makes a team of n
 * lanes, starts n-1 threads of its own that each call parallel_team_serve
 * (lending themselves to the team until parallel_team_stop), and passes the
 * team to the workspace (fastformer_workspace_set_team). Lane 0 is the
 * thread that calls parallel_run; lanes 1..n-1 are the lent threads.
 *
 * A parallel_run costs a wake-up of the lent threads: they spin for a few
 * microseconds after each run (so that the runs of one encode follow each
 * other cheaply) and then sleep on a condition variable, so an idle team
 * uses no CPU. One parallel_run at a time per team (one owner thread). */
#ifndef FF_PARALLEL_H
#define FF_PARALLEL_H

#include "compiler.h"

typedef struct parallel_team parallel_team;

/* fn(arg, lane, n_lanes) runs once on every lane of the team. */
typedef void parallel_fn(void *arg, int lane, int n_lanes);

/* Returns a new team of n_lanes >= 1 lanes (free with parallel_team_free), or
 * NULL when out of memory or when the synchronisation objects cannot be made. */
parallel_team *parallel_team_new(int n_lanes);
int parallel_team_lanes(const parallel_team *t);

/* Lends the calling thread to the team as lane `lane` (1 <= lane < n_lanes,
 * each lane lent by exactly one thread): runs the lane's share of every
 * parallel_run until parallel_team_stop, then returns. */
void parallel_team_serve(parallel_team *t, int lane);

/* Makes every parallel_team_serve return (after the run in progress, if
 * any). The owner thread, with no parallel_run in progress. */
void parallel_team_stop(parallel_team *t);

/* Runs fn on every lane, the caller's as lane 0, and returns when all are
 * done. Until the lent threads serve, their shares wait. Owner thread only.
 * A team of one lane just calls fn(arg, 0, 1). */
void parallel_run(parallel_team *t, parallel_fn *fn, void *arg);

/* Frees a team whose lent threads have returned from parallel_team_serve
 * (or never served). NULL is a no-op. */
void parallel_team_free(parallel_team *t);

/* The share [*begin, *end) of lane `lane` of n items split in n_lanes near
 * equal parts, each boundary a multiple of `align` (the last part takes the
 * rest). */
void parallel_split(int n, int align, int lane, int n_lanes, int *begin, int *end);

#endif
