/* news_catalog_impl: the rows of a news catalog, private to the files that
 * implement news_catalog.h (news_catalog.c keeps them, news_catalog_top_k.c
 * ranks them). Rows live in one (capacity, D) matrix plus per-row metadata;
 * an open-addressing table of row + 1 finds them by id. */
#ifndef FF_NEWS_CATALOG_IMPL_H
#define FF_NEWS_CATALOG_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "news_catalog.h"

struct news_catalog {
    _Atomic int refs;
    pthread_rwlock_t lock;    /* rows: shared to read, exclusive to change */
    pthread_mutex_t write_mu; /* one writer at a time, across the store's commit */
    bool retired;             /* under write_mu */
    _Atomic uint64_t store_errors[NEWS_STORE_NO_MEMORY + 1]; /* by news_store_status */
    news_store *store;                                       /* NULL: in memory only */
    size_t max_items;
    char *key;
    int dim;
    size_t n_rows;
    size_t cap_rows;
    float *vecs;         /* (cap_rows, dim) */
    int8_t *q8;          /* (cap_rows, dim) vecs quantized per row: q = round(v / scale),
                            in [-127, 127] */
    float *q8_scale;     /* (cap_rows) max |v| / 127 of the row (0 for a zero row) */
    uint8_t *q4;         /* (cap_rows, (dim + 1) / 2) vecs in int4, quant_dot.h's packing */
    float *q4_scale;     /* (cap_rows) max |v| / 7 of the row */
    float *q4_residual;  /* (cap_rows) |v - q4_scale q4|_2, rounded up */
    float *q4_norm;      /* (cap_rows) |q4|_2, rounded up */
    char **text;         /* (cap_rows) owned "id\0title\0category\0" */
    size_t *id_len;      /* (cap_rows) */
    size_t *title_len;   /* (cap_rows); the category follows the title's NUL */
    int64_t *updated_ms; /* (cap_rows) */
    uint32_t *slots;     /* (n_slots) row + 1, 0 = empty */
    size_t n_slots;      /* power of two, >= 2 * cap_rows */
};

/* Row of id (len bytes), or -1. Lock held (either side). */
long news_catalog_find_row(const news_catalog *c, const char *id, size_t len);

#endif
