/* settings: the daemon's YAML configuration, parsed with libyaml from a
 * buffer into a plain struct, plus the command-line overrides (--listen,
 * --model NAME=DIR). Every key is one row of settings_specs[] (type, field,
 * range, default); conf/fastformerd.yaml and SECURITY.md document the rows,
 * and test_settings checks them against the table.
 *
 * Strict: an unknown key, a duplicate key, a wrong type or an out-of-range
 * value fails with "FILE:LINE: KEY.PATH: what was expected, got 'VALUE'", e.g.
 *   conf/x.yaml:12: batching.max_batch_size: expected an integer in [1, 4096], got 'lots'
 *
 * Relative paths (models[].path, models[].news_catalog, server.state_dir) in a config file are
 * resolved against the directory of that config file, so a config works from
 * any working directory; paths given with --model resolve against the CWD
 * (they are left as given). Nothing here touches the filesystem except
 * settings_load(), which only reads the config file: whether a model
 * directory exists is checked by whoever loads the model. */
#ifndef FF_SETTINGS_H
#define FF_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "log.h"

/* Capacity of a settings_address's text and host, including the NUL. */
#define SETTINGS_LISTEN_MAX 256
/* Longest model name. Names match [A-Za-z0-9_.-]{1,64} and do not start with
 * '.', because they appear in URLs and metric labels. */
#define SETTINGS_MODEL_NAME_MAX 64

/* "HOST:PORT" as configured; HOST is an IPv4 address, a host name, or an IPv6
 * address in brackets ("[::1]:8080"). PORT is in [0, 65535]; 0 asks the
 * kernel for a free port. */
typedef struct {
    char text[SETTINGS_LISTEN_MAX]; /* as configured, e.g. "[::1]:8080" */
    char host[SETTINGS_LISTEN_MAX]; /* HOST without brackets, e.g. "::1" */
    uint16_t port;
} settings_address;

/* A list of strings (SETTINGS_ORIGIN_LIST). Owned. */
typedef struct {
    char **items;
    size_t n;
} settings_strings;

/* Every value's range and default is in settings_specs[] (below), the one
 * place they are written; conf/fastformerd.yaml documents them and a unit
 * test holds the two together. */
typedef struct {
    settings_address listen;
    uint32_t max_connections;    /* concurrent HTTP connections */
    uint64_t max_body_bytes;     /* request body limit; larger -> 413 */
    uint32_t request_timeout_ms; /* default per-request deadline (X-Request-Timeout-Ms overrides) */
    uint32_t connection_timeout_s;       /* idle/slow connection timeout */
    uint32_t drain_timeout_s;            /* SIGTERM: time allowed to finish accepted requests */
    char *api_key;                       /* owned; NULL = no key required */
    settings_strings cors_allow_origins; /* origins or "*" (cors.h); empty = CORS off */
    int model_control;         /* 1: the model repository routes (/v2/repository/...) answer */
    uint32_t header_timeout_s; /* opening (or first byte) to complete headers */
    uint32_t max_connections_per_ip; /* 0 = no per-address limit */
    settings_address health_listen;  /* probe listener; text "" = none */
    char *allowed_hosts;             /* owned; comma-separated Host names; NULL = default */
    char *api_key_file;              /* owned; resolved path; NULL = none */
    uint32_t parse_threads;          /* threads parsing model request bodies; 0 = HTTP thread */
    uint32_t parse_threads_nice;     /* their nice value above the process's */
    char *tls_cert_file;             /* owned; resolved PEM chain path; NULL = plain HTTP */
    char *tls_key_file;              /* owned; resolved PEM private key path; NULL = none */
    int tls_min_version;             /* tls_min_version (tls_identity.h): 0 = TLS 1.2, 1 = 1.3 */
    char *state_dir;                 /* owned; news stores live here (resolved); NULL = in memory */
    uint32_t news_bulk_max_items;    /* items of one POST .../news bulk upsert */
} settings_server;

typedef struct {
    uint32_t max_batch_size;     /* items (sequences) per forward pass */
    uint32_t max_batch_tokens;   /* padded tokens per forward pass: n_items * longest */
    uint32_t max_queue_delay_us; /* longest wait of the oldest item while all workers are busy */
    uint32_t max_queue;          /* queued requests before 429/503 */
    uint32_t workers;            /* inference threads */
    uint32_t blas_threads;       /* OpenBLAS threads per process; workers * blas_threads <= cores */
    uint32_t engine_threads;     /* engine threads per worker (the worker and lent ones);
                                    workers * engine_threads <= cores */
} settings_batching;

typedef struct {
    char *name; /* owned; unique; see SETTINGS_MODEL_NAME_MAX */
    char *path; /* owned; model directory, resolved (see top of file) */
    /* Per-model limits; 0 means "use the batching section's value". */
    uint32_t max_batch_size;
    uint32_t max_batch_tokens;
    char *news_catalog;          /* owned; MIND news.tsv (recommenders), resolved; NULL = none */
    uint32_t news_cache_entries; /* LRU of text-news vectors; 0 disables the cache */
    uint32_t max_catalog_items;  /* news catalog items beyond which writes are refused */
    char *news_store; /* owned; "postgresql://..." shared by replicas; NULL = server.state_dir */
    int line;         /* line of the entry in the config file; 0 when it came from --model */
} settings_model;

typedef struct {
    log_format format;
    log_level level;
} settings_logging;

typedef struct {
    settings_server server;
    settings_batching batching;
    settings_logging logging;
    settings_model *models; /* owned array of n_models, in file order */
    size_t n_models;        /* may be 0: use settings_check() before serving */
    char *source;           /* owned; the config file name, NULL without a file */
} settings;

/* ---- the table of keys ------------------------------------------------
 * One row per key, in the spirit of pgbouncer's CF_ABS: the parser, the
 * defaults (settings_init, settings_model_init), the range checks and the
 * documentation test all read it. Adding a setting is a field above, a row in
 * settings.c and its documentation in conf/fastformerd.yaml. */

typedef enum {
    SETTINGS_UINT,        /* integer in [min, max] into a uint32_t or uint64_t field */
    SETTINGS_ENUM,        /* one of names[] into an int-sized enum field (the index) */
    SETTINGS_ADDRESS,     /* HOST:PORT into a settings_address field */
    SETTINGS_STRING,      /* non-empty string of at most max bytes (0: any) into an owned char * */
    SETTINGS_PATH,        /* like STRING, resolved against the config file's directory */
    SETTINGS_MODEL_NAME,  /* [A-Za-z0-9_.-]{1,64}, not starting with '.', into an owned char * */
    SETTINGS_ORIGIN_LIST, /* a sequence of origins or "*" (cors_origin_valid) into a
                             settings_strings; default empty */
} settings_type;

enum {
    SETTINGS_REQUIRED = 1, /* a models entry without it is an error */
    SETTINGS_NULLABLE = 2, /* YAML null keeps the default (unset) */
    SETTINGS_INHERIT = 4,  /* default 0: use the batching section's key of the same name */
};

typedef struct {
    const char *section; /* "server", "batching", "logging" or "models" (each entry) */
    const char *key;
    settings_type type;
    size_t offset; /* of the field in settings, or in settings_model for "models" */
    size_t size;   /* of the field */
    int64_t min, max;
    int64_t def;              /* UINT: the value; ENUM: the index in names */
    const char *def_text;     /* ADDRESS: the default address; else NULL */
    const char *const *names; /* ENUM: the accepted words, NULL-terminated */
    unsigned flags;           /* SETTINGS_REQUIRED | SETTINGS_NULLABLE | SETTINGS_INHERIT */
} settings_spec;

extern const settings_spec settings_specs[];
extern const size_t settings_n_specs;

/* The row of key `key` in section `section` (e.g. "server",
 * "request_timeout_ms"; "models" for a models entry's key), or NULL. */
const settings_spec *settings_spec_find(const char *section, const char *key);

/* Fills *s with every default and no models. Cannot fail; free with
 * settings_free (a no-op for a defaults-only struct, but harmless). */
void settings_init(settings *s);

/* Fills *m with the defaults of a models entry (no name, no path). */
void settings_model_init(settings_model *m);

/* Parses the YAML document buf[0..len) into *out. `filename` is used in
 * messages and to resolve relative paths (its directory; no slash means the
 * CWD); it is not opened. An empty document gives the defaults. On success
 * returns 0 and *out owns its strings (settings_free). On failure returns -1,
 * writes "FILE:LINE: KEY.PATH: ..." into err and leaves *out initialised to
 * the defaults (still safe to settings_free). Any thread; pure. */
FF_MUST_CHECK int settings_parse(settings *out, const void *buf, size_t len, const char *filename,
                                 char *err, size_t err_cap);

/* Reads the file `path` and parses it with settings_parse(path as filename).
 * Errors: "PATH: cannot read: <strerror>" or the parse error. */
FF_MUST_CHECK int settings_load(settings *out, const char *path, char *err, size_t err_cap);

/* Command-line overrides, borrowed. */
typedef struct {
    const char *listen;        /* --listen HOST:PORT, NULL = keep */
    const char *state_dir;     /* --state-dir DIR, NULL = keep */
    const char *const *models; /* --model NAME=DIR, n_models of them */
    size_t n_models;
} settings_overrides;

/* Applies overrides to *s: --listen replaces server.listen; each --model
 * NAME=DIR replaces the path of the configured model NAME (keeping its other
 * settings), or appends a new model with default limits. DIR is kept as
 * given (relative to the CWD). Errors:
 *   "--listen 'x': expected HOST:PORT with PORT in [0, 65535]"
 *   "--model 'x': expected NAME=DIR"
 *   "--model 'a b=d': invalid model name 'a b' (expected [A-Za-z0-9_.-]{1,64}, not starting with
 * '.')"
 *   "--model 'a=d': model 'a' given twice"
 * On failure *s may be partly updated but stays valid for settings_free. */
FF_MUST_CHECK int settings_apply_overrides(settings *s, const settings_overrides *o, char *err,
                                           size_t err_cap);

/* Final checks before serving: at least one model ("no models configured:
 * give a config file with a models section or --model NAME=DIR"). */
FF_MUST_CHECK int settings_check(const settings *s, char *err, size_t err_cap);

/* Effective per-model limits (the model's own value, else the batching one). */
uint32_t settings_model_max_batch_size(const settings *s, const settings_model *m);
uint32_t settings_model_max_batch_tokens(const settings *s, const settings_model *m);

/* Returns the model named `name`, or NULL. Borrowed from s. */
const settings_model *settings_find_model(const settings *s, const char *name);

/* Settles server.api_key from its three sources, then checks it: the
 * environment variable FASTFORMERD_API_KEY (`env_key`, NULL or "" = unset)
 * wins over the config; server.api_key and server.api_key_file are exclusive.
 * The file must not be readable or writable by others, nor writable by its
 * group ("PATH: mode 0644 lets other users read the API key; chmod 0600 or
 * 0640"); one trailing newline is dropped. A key must be 1 to 4096 bytes,
 * not only white space, without control characters. Errors name the source.
 * Reads the file (main thread, at start and on SIGHUP). */
FF_MUST_CHECK int settings_resolve_api_key(settings *s, const char *env_key, char *err,
                                           size_t err_cap);

/* The keys a running daemon cannot change (a SIGHUP logs an error naming
 * each one that changed, and the metric fastformerd_restart_required shows
 * it), NULL-terminated, as "section.key". */
extern const char *const settings_restart_keys[];

/* Bit i set when settings_restart_keys[i] differs between `running` and
 * `fresh`. */
unsigned settings_restart_diff(const settings *running, const settings *fresh);

/* Gives *fresh the settings_restart_keys values of `running` (what a reload
 * keeps): copies the scalars, and swaps the owned lists (cors_allow_origins),
 * so that pointers the daemon borrowed from `running` move into *fresh. */
void settings_keep_restart_keys(settings *running, settings *fresh);

/* Frees everything *s owns and re-initialises it to the defaults. NULL ok. */
void settings_free(settings *s);

#endif
