/* parallel: threads lent to the engine by its caller. model/ starts no
 * threads: a caller that wants an encode to use n cores makes a team of n
 * lanes, starts n-1 threads of its own that each call parallel_team_serve
 * (lending themselves to the team until parallel_team_stop), and passes the
 * team to the workspace (fastformer_workspace_set_team). Lane 0 is the
 * thread that calls parallel_for; lanes 1..n-1 are the lent threads.
 *
 * parallel_for hands out items (row blocks, chunks of sequences) one grain at
 * a time to whichever lane asks first, and the caller takes part: it never
 * waits for a lent thread that has not started, only for one that holds
 * items. On a busy machine, where a lent thread may wake late or not at all
 * during a run, the caller simply does more of the work. Lent threads spin
 * for a few tens of microseconds after each run (so that the runs of one
 * encode follow each other cheaply), then sleep on a condition variable, so
 * an idle team uses no CPU. One parallel_for at a time per team (its owner). */
#ifndef FF_PARALLEL_H
#define FF_PARALLEL_H

typedef struct parallel_team parallel_team;

/* Runs items [begin, end) on lane `lane` (0 = the caller); lanes run disjoint
 * items concurrently, each item exactly once per parallel_for. */
typedef void parallel_items_fn(void *arg, int lane, int begin, int end);

/* Returns a new team of n_lanes >= 1 lanes (free with parallel_team_free), or
 * NULL when out of memory or when the synchronisation objects cannot be made. */
parallel_team *parallel_team_new(int n_lanes);
int parallel_team_lanes(const parallel_team *t);

/* Lends the calling thread to the team as lane `lane` (1 <= lane < n_lanes,
 * each lane lent by exactly one thread, from the team's start): takes items
 * of every parallel_for until parallel_team_stop, then returns. */
void parallel_team_serve(parallel_team *t, int lane);

/* Makes every parallel_team_serve return (after the run in progress, if
 * any). The owner thread, with no parallel_for in progress. */
void parallel_team_stop(parallel_team *t);

/* Runs fn over items [0, n_items) in grains of `grain` items on the caller
 * and whichever lent threads join, and returns when every item is done.
 * Owner thread only. t NULL or of one lane: fn(arg, 0, 0, n_items). */
void parallel_for(parallel_team *t, int n_items, int grain, parallel_items_fn *fn, void *arg);

/* Wakes the team's sleeping lent threads so that they poll for the next run
 * again, as they do for a while after each run, instead of sleeping: a
 * caller that knows a run is coming soon (a daemon whose idle worker is about
 * to get a request) hides their wake-up, tens of microseconds on a virtual
 * machine, behind the work it does before that run. A thread that is not
 * sleeping is left alone, and one that polls in vain sleeps again. A hint:
 * no run depends on it. Any thread, concurrently with runs; NULL is a no-op. */
void parallel_team_warm(parallel_team *t);

/* Lent threads asleep now (not polling). Any thread. */
int parallel_team_sleeping(const parallel_team *t);

/* How many sleeps parallel_team_warm has ended so far (for the tests). Any thread. */
unsigned long parallel_team_warmed(parallel_team *t);

/* Frees a team whose lent threads have returned from parallel_team_serve
 * (or never served). NULL is a no-op. */
void parallel_team_free(parallel_team *t);

#endif
