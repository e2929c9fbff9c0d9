/* metrics: the daemon's Prometheus registry, rendered as text format 0.0.4
 * (passes `promtool check metrics`).
 *
 * Every label set is bounded: models get a slot when registered (at load or
 * reload; slots are never reused for another name), routes are the caller's
 * fixed table, status codes a fixed set, reject reasons an enum
 * (reject_reason.h). Updates are single
 * relaxed atomic operations on preallocated counters, so any thread may call
 * them on the hot path; rendering only reads those atomics (it takes no lock
 * that an update takes), so a scrape never blocks inference.
 *
 * Exposed families (all prefixed fastformerd_ except process_*):
 *   fastformerd_http_requests_total{model,route,code}            counter
 *   fastformerd_request_duration_seconds{model,route}            histogram
 *   fastformerd_queue_duration_seconds{model}                    histogram (per item)
 *   fastformerd_inference_duration_seconds{model}                histogram (per batch)
 *   fastformerd_batch_size{model}                                histogram (items per batch)
 *   fastformerd_batch_tokens{model}                              histogram (padded tokens per
 * batch) fastformerd_queue_depth{model}                               gauge (items queued)
 *   fastformerd_rejected_requests_total{model,reason}            counter
 *   fastformerd_model_ready{model}                               gauge (0/1)
 *   fastformerd_news_cache_hits_total{model}                     counter
 *   fastformerd_news_cache_misses_total{model}                   counter
 *   fastformerd_reloads_total{result="success"|"failure"}        counter
 *   fastformerd_restart_required{setting}                        gauge (0/1 per
 *                                                                settings_restart_keys entry)
 *   fastformerd_http_connections                                 gauge (open connections)
 *   fastformerd_http_connections_evicted_total                   counter (cut at the connection
 *                                                                limit while waiting for headers)
 *   fastformerd_memory_estimate_bytes                            gauge (memory_estimate.h; 0
 *                                                                until the first model set is in;
 *                                                                api_metrics adds the catalogs as
 *                                                                they grow and the bodies held)
 *   fastformerd_request_timeout_seconds                          gauge (server.request_timeout_ms)
 *   fastformerd_traceparent_invalid_total                        counter (malformed traceparent
 *                                                                headers, ignored)
 *   fastformerd_tls_certificate_expiration_timestamp_seconds     gauge (the served certificate's
 *                                                                notAfter; only with TLS on)
 *   process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
 *   process_open_fds, process_max_fds, process_start_time_seconds   (from /proc/self)
 * Requests that name no model (or an unknown one) use model="". Request,
 * reject and histogram series appear once they have a count; ready, queue
 * depth and the news cache counters appear for every registered model (0
 * until set), and reloads for both results. Every family's HELP and TYPE
 * lines are always present. */
#ifndef FF_METRICS_H
#define FF_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "reject_reason.h"

/* Most model slots ever registered in one process (reloads included). A
 * registration beyond this returns METRICS_NO_MODEL, whose series carry model="". */
#define METRICS_MAX_MODELS 64

/* A model's slot, from metrics_model_register. METRICS_NO_MODEL (-1) is
 * valid everywhere a model id is taken and means model="". */
typedef int metrics_model_id;
#define METRICS_NO_MODEL (-1)

/* Routes are the caller's table (api_routes.def): route i of metrics_new's
 * labels, or METRICS_ROUTE_OTHER for a request that matched none (404, 405),
 * labelled "other". */
#define METRICS_ROUTE_OTHER (-1)

typedef struct metrics metrics;

/* A new, empty registry for n_routes routes labelled route_labels[0..n)
 * (the array is copied; the strings are borrowed and must outlive the
 * registry), or NULL when out of memory. Free with metrics_free. Records the
 * process start for process_start_time_seconds. */
metrics *metrics_new(const char *const *route_labels, int n_routes);
void metrics_free(metrics *m); /* NULL ok; no update or render may be running */

/* Returns the slot for model `name` (1 to 64 bytes; escaped when rendered),
 * creating it on first use; the same name always gets the same slot, so a
 * reload re-registers its models and keeps their series. Returns
 * METRICS_NO_MODEL when the registry is full or the name is invalid. Any
 * thread (takes a registration mutex; never call it per request). */
metrics_model_id metrics_model_register(metrics *m, const char *name);

/* The slot of an already registered model, or METRICS_NO_MODEL. Lock-free. */
metrics_model_id metrics_model_find(const metrics *m, const char *name);

/* The label of a route (its label given to metrics_new, or "other" for
 * METRICS_ROUTE_OTHER). Reject reasons are labelled with reject_reason_name(). */
const char *metrics_route_name(const metrics *m, int route);

/* ---- updates: any thread, lock-free, never allocate ------------------- */

/* One finished HTTP request: counts it under `code` and observes its
 * latency. Codes outside {200, 201, 204, 400, 401, 404, 405, 408, 409, 413,
 * 415, 422, 429, 499, 500, 503, 504, 507} count as code="other" (499: the
 * client closed the connection before the answer). */
void metrics_request_done(metrics *m, metrics_model_id model, int route, int code,
                          uint64_t latency_ns);

/* Time one item spent queued, observed when it leaves the queue (for compute or drop). */
void metrics_observe_queue(metrics *m, metrics_model_id model, uint64_t wait_ns);

/* One forward pass: its wall time, items and padded tokens (items * longest). */
void metrics_observe_batch(metrics *m, metrics_model_id model, uint64_t inference_ns,
                           uint32_t n_items, uint64_t padded_tokens);

/* Queue depth in items: set to an absolute value, or add a signed delta. */
void metrics_queue_depth_set(metrics *m, metrics_model_id model, int64_t depth);
void metrics_queue_depth_add(metrics *m, metrics_model_id model, int64_t delta);

/* Counts one rejected or dropped request (or item; callers choose and stay
 * consistent: the batcher counts requests). */
void metrics_reject(metrics *m, metrics_model_id model, reject_reason reason);

void metrics_model_set_ready(metrics *m, metrics_model_id model, int ready);
void metrics_news_cache(metrics *m, metrics_model_id model, uint64_t hits, uint64_t misses);
/* The news catalog's size (the fastformerd_news_catalog_items gauge); a
 * negative count removes the series (the model has no catalog). */
void metrics_news_catalog_items_set(metrics *m, metrics_model_id model, int64_t items);
/* The writes the model's news store refused, by news_store_status, as the
 * catalog counts them (a new catalog after a reload starts again from 0: a
 * counter reset). */
void metrics_news_store_errors_set(metrics *m, metrics_model_id model, int status, uint64_t count);
/* A model's shared news store: 1 reachable, 0 not, -1 none (not rendered). */
void metrics_news_store_up(metrics *m, metrics_model_id model, int up);
void metrics_reload(metrics *m, int success);
/* The settings_restart_keys that a reload found changed (bit i = key i). */
void metrics_restart_required_set(metrics *m, unsigned mask);
void metrics_connections_add(metrics *m, int64_t delta);
/* Connections cut at the connection limit so far
 * (http_server_connections_evicted). */
void metrics_connections_evicted_set(metrics *m, uint64_t count);
/* The daemon's memory estimate of the set being served, in bytes. */
void metrics_memory_estimate_set(metrics *m, uint64_t bytes);
/* The default request deadline (server.request_timeout_ms), for alerts on
 * latency against it. */
void metrics_request_timeout_set(metrics *m, uint32_t timeout_ms);
/* The served TLS certificate's notAfter (Unix seconds), for alerts before it
 * expires; 0 (the default) = no TLS, and the family is not rendered. */
void metrics_tls_expiration_set(metrics *m, int64_t not_after_s);
/* Counts a malformed traceparent header (ignored: the request starts a new trace). */
void metrics_traceparent_invalid(metrics *m);

/* ---- rendering --------------------------------------------------------- */

/* Content-Type of the rendered text. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Renders every family into a new NUL-terminated malloc'd buffer: *out
 * (caller frees with free()) of *out_len bytes (without the NUL). Reads
 * /proc/self for the process_* metrics (a family whose source cannot be read
 * is left out). Returns 0, or -1 when out of memory (*out = NULL). Any
 * thread, concurrently with updates; allocates, so call it from the HTTP
 * thread, not from a worker. */
FF_MUST_CHECK int metrics_render(const metrics *m, char **out, size_t *out_len);

#endif
