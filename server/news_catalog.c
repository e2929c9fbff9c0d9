/* news_catalog: news items by id, written through the store (see
 * news_catalog.h). Rows live in one (capacity, D) matrix plus per-row
 * metadata; an open-addressing table of row + 1 finds them by id. A delete
 * moves the last row into the hole, so rows stay dense for the scoring
 * scan. */
#include "news_catalog.h"
#include "news_catalog_impl.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fnv1a.h"
#include "keyed_hash.h"
#include "mind.h"
#include "quant_dot.h"

/* Keyed (ids come from clients): see keyed_hash.h for the worst case. */
static uint64_t id_hash(const char *id, size_t len)
{
    return keyed_hash(id, len);
}

static size_t slots_for(size_t rows)
{
    size_t n = 16;
    while (n < rows * 2)
        n <<= 1;
    return n;
}

news_catalog *news_catalog_new(int dim, size_t capacity)
{
    assert(dim >= 1);
    if (capacity < 16)
        capacity = 16;
    if (capacity >= UINT32_MAX / 4 || capacity > SIZE_MAX / sizeof(float) / (size_t)dim)
        return NULL;
    news_catalog *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (pthread_rwlock_init(&c->lock, NULL) != 0) {
        free(c);
        return NULL;
    }
    if (pthread_mutex_init(&c->write_mu, NULL) != 0) {
        pthread_rwlock_destroy(&c->lock);
        free(c);
        return NULL;
    }
    /* From here on news_catalog_release takes the partly built catalog. */
    atomic_init(&c->refs, 1);
    c->dim = dim;
    c->max_items = SIZE_MAX;
    c->cap_rows = capacity;
    c->n_slots = slots_for(capacity);
    c->vecs = malloc(capacity * (size_t)dim * sizeof *c->vecs);
    c->q8 = malloc(capacity * (size_t)dim);
    c->q8_scale = malloc(capacity * sizeof *c->q8_scale);
    c->q4 = malloc(capacity * quant_dot_i4_row_bytes(dim));
    c->q4_scale = malloc(capacity * sizeof *c->q4_scale);
    c->q4_residual = malloc(capacity * sizeof *c->q4_residual);
    c->q4_norm = malloc(capacity * sizeof *c->q4_norm);
    c->text = calloc(capacity, sizeof *c->text);
    c->id_len = calloc(capacity, sizeof *c->id_len);
    c->title_len = calloc(capacity, sizeof *c->title_len);
    c->updated_ms = calloc(capacity, sizeof *c->updated_ms);
    c->slots = calloc(c->n_slots, sizeof *c->slots);
    if (!c->vecs || !c->q8 || !c->q8_scale || !c->q4 || !c->q4_scale || !c->q4_residual ||
        !c->q4_norm || !c->text || !c->id_len || !c->title_len || !c->updated_ms || !c->slots) {
        news_catalog_release(c);
        return NULL;
    }
    return c;
}

void news_catalog_retain(news_catalog *c)
{
    assert(c);
    int old = atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    assert(old >= 1);
    (void)old;
}

void news_catalog_release(news_catalog *c)
{
    if (!c)
        return;
    int old = atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel);
    assert(old >= 1);
    if (old != 1)
        return;
    for (size_t i = 0; c->text && i < c->n_rows; i++) /* n_rows is 0 while text is NULL */
        free(c->text[i]);
    news_store_close(c->store);
    pthread_rwlock_destroy(&c->lock);
    pthread_mutex_destroy(&c->write_mu);
    free(c->key);
    free(c->vecs);
    free(c->q8);
    free(c->q8_scale);
    free(c->q4);
    free(c->q4_scale);
    free(c->q4_residual);
    free(c->q4_norm);
    free(c->text);
    free(c->id_len);
    free(c->title_len);
    free(c->updated_ms);
    free(c->slots);
    free(c);
}

void news_catalog_attach_store(news_catalog *c, news_store *store)
{
    assert(c && !c->store);
    c->store = store;
}

void news_catalog_set_limit(news_catalog *c, size_t max_items)
{
    pthread_mutex_lock(&c->write_mu);
    c->max_items = max_items;
    pthread_mutex_unlock(&c->write_mu);
}

size_t news_catalog_limit(news_catalog *c)
{
    pthread_mutex_lock(&c->write_mu);
    size_t n = c->max_items;
    pthread_mutex_unlock(&c->write_mu);
    return n;
}

int news_catalog_set_key(news_catalog *c, const char *key)
{
    char *k = strdup(key);
    if (!k)
        return -1;
    free(c->key);
    c->key = k;
    return 0;
}

const char *news_catalog_key(const news_catalog *c)
{
    return c->key ? c->key : "";
}

const char *news_catalog_store_location(const news_catalog *c)
{
    return c->store ? c->store->location : NULL;
}

/* ---- rows --------------------------------------------------------------------- */

/* Slot of id, or of the empty slot where it would go. */
static size_t find_slot(const news_catalog *c, const char *id, size_t len)
{
    size_t mask = c->n_slots - 1, s = id_hash(id, len) & mask;
    for (;;) {
        uint32_t r = c->slots[s];
        if (r == 0)
            return s;
        if (c->id_len[r - 1] == len && memcmp(c->text[r - 1], id, len) == 0)
            return s;
        s = (s + 1) & mask;
    }
}

long news_catalog_find_row(const news_catalog *c, const char *id, size_t len)
{
    uint32_t r = c->slots[find_slot(c, id, len)];
    return r == 0 ? -1 : (long)r - 1;
}

/* Grows the rows to hold `want` (and rehashes), under the exclusive lock. */
static int reserve_locked(news_catalog *c, size_t want)
{
    if (want <= c->cap_rows)
        return 0;
    size_t cap = c->cap_rows;
    while (cap < want)
        cap *= 2;
    if (cap >= UINT32_MAX / 4 || cap > SIZE_MAX / sizeof(float) / (size_t)c->dim)
        return -1;
    float *vecs = realloc(c->vecs, cap * (size_t)c->dim * sizeof *vecs);
    if (!vecs)
        return -1;
    c->vecs = vecs;
    int8_t *q8 = realloc(c->q8, cap * (size_t)c->dim);
    if (!q8)
        return -1;
    c->q8 = q8;
    float *q8_scale = realloc(c->q8_scale, cap * sizeof *q8_scale);
    if (!q8_scale)
        return -1;
    c->q8_scale = q8_scale;
    uint8_t *q4 = realloc(c->q4, cap * quant_dot_i4_row_bytes(c->dim));
    if (!q4)
        return -1;
    c->q4 = q4;
    float *q4_scale = realloc(c->q4_scale, cap * sizeof *q4_scale);
    if (!q4_scale)
        return -1;
    c->q4_scale = q4_scale;
    float *q4_residual = realloc(c->q4_residual, cap * sizeof *q4_residual);
    if (!q4_residual)
        return -1;
    c->q4_residual = q4_residual;
    float *q4_norm = realloc(c->q4_norm, cap * sizeof *q4_norm);
    if (!q4_norm)
        return -1;
    c->q4_norm = q4_norm;
    char **text = realloc(c->text, cap * sizeof *text);
    if (!text)
        return -1;
    c->text = text;
    size_t *id_len = realloc(c->id_len, cap * sizeof *id_len);
    if (!id_len)
        return -1;
    c->id_len = id_len;
    size_t *title_len = realloc(c->title_len, cap * sizeof *title_len);
    if (!title_len)
        return -1;
    c->title_len = title_len;
    int64_t *updated = realloc(c->updated_ms, cap * sizeof *updated);
    if (!updated)
        return -1;
    c->updated_ms = updated;
    size_t n_slots = slots_for(cap);
    uint32_t *slots = calloc(n_slots, sizeof *slots);
    if (!slots)
        return -1;
    free(c->slots);
    c->slots = slots;
    c->n_slots = n_slots;
    c->cap_rows = cap;
    for (size_t r = 0; r < c->n_rows; r++)
        c->slots[find_slot(c, c->text[r], c->id_len[r])] = (uint32_t)(r + 1);
    return 0;
}

/* "id\0title\0category\0" of item, or NULL when out of memory. */
static char *text_of(const news_store_item *it)
{
    size_t n = it->id_len + it->title_len + it->category_len + 3;
    char *t = malloc(n);
    if (!t)
        return NULL;
    char *p = t;
    memcpy(p, it->id, it->id_len);
    p += it->id_len;
    *p++ = '\0';
    if (it->title_len)
        memcpy(p, it->title, it->title_len);
    p += it->title_len;
    *p++ = '\0';
    if (it->category_len)
        memcpy(p, it->category, it->category_len);
    p += it->category_len;
    *p = '\0';
    return t;
}

/* The int8 copy of a vector that the catalog-wide scan reads first. */
static void quantize_row(const float *v, int d, int8_t *q, float *scale)
{
    float m = 0.0f;
    for (int i = 0; i < d; i++)
        m = fabsf(v[i]) > m ? fabsf(v[i]) : m;
    *scale = m / 127.0f;
    float inv = m > 0.0f ? 127.0f / m : 0.0f;
    for (int i = 0; i < d; i++) {
        float x = nearbyintf(v[i] * inv);
        q[i] = (int8_t)(x > 127.0f ? 127.0f : x < -127.0f ? -127.0f : x);
    }
}

/* The int4 copy that the catalog-wide scan reads first: q = round(v /
 * scale) in [-7, 7], scale = max |v| / 7, packed as quant_dot.h says (q + 8
 * a nibble), and
 * the residual's norm |v - scale q|_2 and |q|_2, computed in double and
 * rounded up, so that |v.u - scale q.u| <= residual |u|_2 for every u
 * (Cauchy-Schwarz), and |q.f| <= norm |f|_2. */
static void quantize_row4(const float *v, int d, uint8_t *q, float *scale, float *residual,
                          float *norm)
{
    float m = 0.0f;
    for (int i = 0; i < d; i++)
        m = fabsf(v[i]) > m ? fabsf(v[i]) : m;
    *scale = m / 7.0f;
    float inv = m > 0.0f ? 7.0f / m : 0.0f;
    double e2 = 0.0;
    int q2 = 0;
    memset(q, 0x88, quant_dot_i4_row_bytes(d)); /* 0s: an odd d's last nibble stays one */
    for (int i = 0; i < d; i++) {
        float x = nearbyintf(v[i] * inv);
        int qi = x > 7.0f ? 7 : x < -7.0f ? -7 : (int)x;
        double e = (double)v[i] - (double)*scale * qi;
        e2 += e * e;
        q2 += qi * qi;
        int shift = 4 * (i % 2);
        q[i / 2] = (uint8_t)((q[i / 2] & ~(15u << shift)) | (unsigned)(qi + 8) << shift);
    }
    *residual = nextafterf((float)(sqrt(e2) * (1.0 + 1e-6)), INFINITY);
    *norm = nextafterf((float)(sqrt((double)q2) * (1.0 + 1e-6)), INFINITY);
}

/* Sets row r (new or existing) from item, taking text. Exclusive lock held. */
static void row_set(news_catalog *c, size_t r, const news_store_item *it, char *text)
{
    if (r < c->n_rows)
        free(c->text[r]);
    c->text[r] = text;
    c->id_len[r] = it->id_len;
    c->title_len[r] = it->title_len;
    c->updated_ms[r] = it->updated_ms;
    memcpy(c->vecs + r * (size_t)c->dim, it->vector, (size_t)c->dim * sizeof(float));
    quantize_row(it->vector, c->dim, c->q8 + r * (size_t)c->dim, &c->q8_scale[r]);
    size_t nb = quant_dot_i4_row_bytes(c->dim);
    quantize_row4(it->vector, c->dim, c->q4 + r * nb, &c->q4_scale[r], &c->q4_residual[r],
                  &c->q4_norm[r]);
}

/* Adds or replaces item with its text copy, room reserved. Exclusive lock. */
static bool upsert_locked(news_catalog *c, const news_store_item *it, char *text)
{
    size_t s = find_slot(c, it->id, it->id_len);
    uint32_t r = c->slots[s];
    if (r != 0) {
        row_set(c, r - 1, it, text);
        return true;
    }
    assert(c->n_rows < c->cap_rows);
    row_set(c, c->n_rows, it, text);
    c->n_rows++;
    c->slots[s] = (uint32_t)c->n_rows;
    return false;
}

/* Empties slot s and shifts back the entries of its probe run that may no
 * longer be found past the hole (linear probing's deletion). */
static void slot_remove(news_catalog *c, size_t s)
{
    size_t mask = c->n_slots - 1, hole = s, j = s;
    c->slots[hole] = 0;
    for (;;) {
        j = (j + 1) & mask;
        uint32_t r = c->slots[j];
        if (r == 0)
            return;
        size_t home = id_hash(c->text[r - 1], c->id_len[r - 1]) & mask;
        /* Entry j may stay unless the hole lies cyclically in [home, j). */
        bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            c->slots[hole] = r;
            c->slots[j] = 0;
            hole = j;
        }
    }
}

/* Deletes the row of id (known to exist): the last row moves into it. */
static void delete_locked(news_catalog *c, const char *id, size_t id_len)
{
    size_t s = find_slot(c, id, id_len);
    uint32_t r = c->slots[s];
    assert(r != 0);
    size_t row = r - 1, last = c->n_rows - 1;
    slot_remove(c, s);
    free(c->text[row]);
    if (row != last) {
        size_t ls = find_slot(c, c->text[last], c->id_len[last]);
        assert(c->slots[ls] == last + 1);
        c->text[row] = c->text[last];
        c->id_len[row] = c->id_len[last];
        c->title_len[row] = c->title_len[last];
        c->updated_ms[row] = c->updated_ms[last];
        memcpy(c->vecs + row * (size_t)c->dim, c->vecs + last * (size_t)c->dim,
               (size_t)c->dim * sizeof(float));
        memcpy(c->q8 + row * (size_t)c->dim, c->q8 + last * (size_t)c->dim, (size_t)c->dim);
        c->q8_scale[row] = c->q8_scale[last];
        size_t nb = quant_dot_i4_row_bytes(c->dim);
        memcpy(c->q4 + row * nb, c->q4 + last * nb, nb);
        c->q4_scale[row] = c->q4_scale[last];
        c->q4_residual[row] = c->q4_residual[last];
        c->q4_norm[row] = c->q4_norm[last];
        c->slots[ls] = (uint32_t)(row + 1);
    }
    c->text[last] = NULL;
    c->n_rows--;
}

static int id_check(const char *id, size_t id_len, char *err, size_t err_cap)
{
    if (id_len == 0) {
        snprintf(err, err_cap, "news id is empty");
        return -1;
    }
    if (id_len > NEWS_CATALOG_ID_MAX) {
        snprintf(err, err_cap, "news id longer than %d bytes", NEWS_CATALOG_ID_MAX);
        return -1;
    }
    if (memchr(id, '\0', id_len)) {
        snprintf(err, err_cap, "news id contains a NUL byte");
        return -1;
    }
    return 0;
}

int news_catalog_put_item(news_catalog *c, const news_store_item *item, bool *replaced, char *err,
                          size_t err_cap)
{
    assert(c && item && item->vector && (item->id || item->id_len == 0));
    if (replaced)
        *replaced = false;
    if (id_check(item->id, item->id_len, err, err_cap) != 0)
        return -1;
    char *text = text_of(item);
    pthread_rwlock_wrlock(&c->lock);
    if (!text || reserve_locked(c, c->n_rows + 1) != 0) {
        pthread_rwlock_unlock(&c->lock);
        free(text);
        snprintf(err, err_cap, "out of memory adding news '%.*s'", (int)item->id_len, item->id);
        return -1;
    }
    bool was = upsert_locked(c, item, text);
    pthread_rwlock_unlock(&c->lock);
    if (replaced)
        *replaced = was;
    return 0;
}

int news_catalog_put(news_catalog *c, const char *id, size_t id_len, const float *vec,
                     bool *replaced, char *err, size_t err_cap)
{
    news_store_item it = {.id = id, .id_len = id_len, .vector = vec};
    return news_catalog_put_item(c, &it, replaced, err, err_cap);
}

/* ---- durable writes ---------------------------------------------------------------- */

static int64_t now_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static news_write_status write_fail(news_write_result *res, news_write_status st, const char *fmt,
                                    const char *a, int b)
{
    res->status = st;
    snprintf(res->message, sizeof res->message, fmt, a, b);
    return st;
}

static int op_id_cmp(const void *a, const void *b)
{
    const news_store_op *x = *(const news_store_op *const *)a,
                        *y = *(const news_store_op *const *)b;
    size_t n = x->item.id_len < y->item.id_len ? x->item.id_len : y->item.id_len;
    int c = memcmp(x->item.id, y->item.id, n);
    if (c != 0)
        return c;
    return x->item.id_len < y->item.id_len ? -1 : x->item.id_len > y->item.id_len;
}

/* The first id that appears twice in ops, or NULL; -1 when out of memory. */
static int find_duplicate(const news_store_op *ops, size_t n, const news_store_op **dup)
{
    *dup = NULL;
    if (n < 2)
        return 0;
    const news_store_op **p = malloc(n * sizeof *p);
    if (!p)
        return -1;
    for (size_t i = 0; i < n; i++)
        p[i] = &ops[i];
    qsort(p, n, sizeof *p, op_id_cmp);
    for (size_t i = 1; i < n && !*dup; i++)
        if (op_id_cmp(&p[i - 1], &p[i]) == 0)
            *dup = p[i];
    free(p);
    return 0;
}

news_write_status news_catalog_write(news_catalog *c, news_store_op *ops, size_t n, bool *existed,
                                     news_write_result *res)
{
    assert(c && ops && n >= 1 && res);
    memset(res, 0, sizeof *res);
    char e[200];
    for (size_t i = 0; i < n; i++) {
        const news_store_item *it = &ops[i].item;
        if (id_check(it->id, it->id_len, e, sizeof e) != 0)
            return write_fail(res, NEWS_WRITE_INVALID, "%s (item %d)", e, (int)i);
        assert(ops[i].kind == NEWS_STORE_DELETE || it->vector);
    }
    const news_store_op *dup;
    if (find_duplicate(ops, n, &dup) != 0)
        return write_fail(res, NEWS_WRITE_NO_MEMORY, "out of memory%s for %d items", "", (int)n);
    if (dup) {
        snprintf(res->message, sizeof res->message, "news id '%.*s' appears twice",
                 (int)dup->item.id_len, dup->item.id);
        res->status = NEWS_WRITE_INVALID;
        return res->status;
    }
    /* Text copies first: once the store has committed, memory must not fail. */
    char **texts = calloc(n, sizeof *texts);
    bool *was = calloc(n, sizeof *was);
    bool ok = texts && was;
    for (size_t i = 0; ok && i < n; i++)
        if (ops[i].kind == NEWS_STORE_UPSERT)
            ok = (texts[i] = text_of(&ops[i].item)) != NULL;
    if (!ok) {
        for (size_t i = 0; texts && i < n; i++)
            free(texts[i]);
        free(texts);
        free(was);
        return write_fail(res, NEWS_WRITE_NO_MEMORY, "out of memory%s for %d items", "", (int)n);
    }

    pthread_mutex_lock(&c->write_mu);
    /* Only writers change rows, and they hold write_mu: reading needs no lock. */
    size_t created = 0, deleted = 0;
    for (size_t i = 0; i < n; i++) {
        was[i] = news_catalog_find_row(c, ops[i].item.id, ops[i].item.id_len) >= 0;
        if (ops[i].kind == NEWS_STORE_UPSERT && !was[i])
            created++;
        if (ops[i].kind == NEWS_STORE_DELETE && was[i])
            deleted++;
    }
    size_t after = c->n_rows + created - deleted;
    if (c->retired) {
        res->status = NEWS_WRITE_RETIRED;
        snprintf(res->message, sizeof res->message,
                 "the news catalog is being reloaded (SIGHUP with new weights or a new store)");
    } else if (created > 0 && after > c->max_items) {
        res->status = NEWS_WRITE_LIMIT;
        snprintf(res->message, sizeof res->message,
                 "the news catalog holds %zu items; %zu more would pass max_catalog_items (%zu)",
                 c->n_rows, created - deleted, c->max_items);
    } else {
        pthread_rwlock_wrlock(&c->lock);
        bool room = reserve_locked(c, c->n_rows + created) == 0;
        pthread_rwlock_unlock(&c->lock);
        if (!room) {
            res->status = NEWS_WRITE_NO_MEMORY;
            snprintf(res->message, sizeof res->message, "out of memory for %zu more news items",
                     created);
        }
    }
    if (res->status == NEWS_WRITE_OK) {
        int64_t now = now_unix_ms();
        for (size_t i = 0; i < n; i++)
            ops[i].item.updated_ms = now;
        if (c->store) {
            news_store_status st =
                news_store_write(c->store, ops, n, 0, NULL, res->message, sizeof res->message);
            if (st != NEWS_STORE_OK) {
                res->status = NEWS_WRITE_STORE;
                res->store = st;
                if (st <= NEWS_STORE_NO_MEMORY)
                    atomic_fetch_add_explicit(&c->store_errors[st], 1, memory_order_relaxed);
            }
        }
    }
    if (res->status == NEWS_WRITE_OK) {
        pthread_rwlock_wrlock(&c->lock);
        for (size_t i = 0; i < n; i++) {
            if (ops[i].kind == NEWS_STORE_UPSERT) {
                upsert_locked(c, &ops[i].item, texts[i]);
                texts[i] = NULL;
            } else if (was[i]) {
                delete_locked(c, ops[i].item.id, ops[i].item.id_len);
            }
        }
        pthread_rwlock_unlock(&c->lock);
        if (existed)
            memcpy(existed, was, n * sizeof *was);
    }
    pthread_mutex_unlock(&c->write_mu);
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(was);
    return res->status;
}

/* news_catalog_apply's work, write_mu held. */
static int apply_locked(news_catalog *c, const news_store_item *item, bool deleted, char *err,
                        size_t err_cap)
{
    if (id_check(item->id, item->id_len, err, err_cap) != 0)
        return -1;
    if (deleted) {
        pthread_rwlock_wrlock(&c->lock);
        if (news_catalog_find_row(c, item->id, item->id_len) >= 0)
            delete_locked(c, item->id, item->id_len);
        pthread_rwlock_unlock(&c->lock);
        return 0;
    }
    return news_catalog_put_item(c, item, NULL, err, err_cap);
}

int news_catalog_apply(news_catalog *c, const news_store_item *item, bool deleted, char *err,
                       size_t err_cap)
{
    assert(c && item);
    pthread_mutex_lock(&c->write_mu);
    int rc = apply_locked(c, item, deleted, err, err_cap);
    pthread_mutex_unlock(&c->write_mu);
    return rc;
}

/* ---- changes made by other replicas -------------------------------------------------- */

typedef struct {
    news_catalog *c;
    news_catalog_encode_fn encode;
    void *user;
    float *vec; /* D floats for an encoded title; allocated at the first need */
    news_sync_result *out;
} sync_ctx;

static void sync_skip(sync_ctx *x, const news_store_item *it, const char *why)
{
    if (x->out->skipped++ == 0)
        snprintf(x->out->first_skip, sizeof x->out->first_skip, "news '%.*s': %s", (int)it->id_len,
                 it->id, why);
}

/* news_store_change_fn: one change into the rows (write_mu held). */
static int sync_apply(void *user, const news_store_item *it, bool deleted)
{
    sync_ctx *x = user;
    news_catalog *c = x->c;
    char e[200];
    news_store_item item = *it;
    if (!deleted && !item.vector) {
        if (!x->vec)
            x->vec = malloc((size_t)c->dim * sizeof *x->vec);
        if (!x->vec) {
            sync_skip(x, it, "out of memory");
            return 0;
        }
        if (!x->encode) {
            sync_skip(x, it, "no vector for these weights");
            return 0;
        }
        if (x->encode(x->user, it->title, it->title_len, x->vec, e, sizeof e) != 0) {
            sync_skip(x, it, e);
            return 0;
        }
        item.vector = x->vec;
    }
    if (apply_locked(c, &item, deleted, e, sizeof e) != 0) {
        sync_skip(x, it, e);
        return 0;
    }
    x->out->applied++;
    return 0;
}

news_store_status news_catalog_sync(news_catalog *c, news_catalog_encode_fn encode, void *user,
                                    news_sync_result *out, char *err, size_t err_cap)
{
    memset(out, 0, sizeof *out);
    if (!c->store)
        return NEWS_STORE_OK;
    sync_ctx x = {.c = c, .encode = encode, .user = user, .out = out};
    pthread_mutex_lock(&c->write_mu);
    news_store_status st = news_store_poll(c->store, sync_apply, &x, err, err_cap);
    pthread_mutex_unlock(&c->write_mu);
    free(x.vec);
    return st;
}

int news_catalog_store_up(news_catalog *c)
{
    return c->store ? news_store_up(c->store) : -1;
}

uint64_t news_catalog_store_errors(const news_catalog *c, news_store_status status)
{
    if ((int)status < 0 || status > NEWS_STORE_NO_MEMORY)
        return 0;
    return atomic_load_explicit(&c->store_errors[status], memory_order_relaxed);
}

void news_catalog_retire(news_catalog *c)
{
    pthread_mutex_lock(&c->write_mu);
    c->retired = true;
    pthread_mutex_unlock(&c->write_mu);
}

void news_catalog_unretire(news_catalog *c)
{
    pthread_mutex_lock(&c->write_mu);
    c->retired = false;
    pthread_mutex_unlock(&c->write_mu);
}

/* ---- reads ---------------------------------------------------------------------------- */

bool news_catalog_get(news_catalog *c, const char *id, size_t id_len, float *out)
{
    assert(c && out && (id || id_len == 0));
    if (id_len == 0 || id_len > NEWS_CATALOG_ID_MAX)
        return false;
    pthread_rwlock_rdlock(&c->lock);
    long r = news_catalog_find_row(c, id, id_len);
    if (r >= 0)
        memcpy(out, c->vecs + (size_t)r * (size_t)c->dim, (size_t)c->dim * sizeof *out);
    pthread_rwlock_unlock(&c->lock);
    return r >= 0;
}

int news_catalog_describe(news_catalog *c, const char *id, size_t id_len, news_catalog_entry *out)
{
    assert(c && out);
    memset(out, 0, sizeof *out);
    if (id_len == 0 || id_len > NEWS_CATALOG_ID_MAX)
        return 0;
    pthread_rwlock_rdlock(&c->lock);
    long r = news_catalog_find_row(c, id, id_len);
    int rc = 0;
    if (r >= 0) {
        const char *title = c->text[r] + c->id_len[r] + 1;
        const char *category = title + c->title_len[r] + 1;
        out->title = strdup(title);
        out->category = strdup(category);
        out->updated_ms = c->updated_ms[r];
        rc = out->title && out->category ? 1 : -1;
    }
    pthread_rwlock_unlock(&c->lock);
    if (rc < 0) {
        free(out->title);
        free(out->category);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

size_t news_catalog_count(news_catalog *c)
{
    pthread_rwlock_rdlock(&c->lock);
    size_t n = c->n_rows;
    pthread_rwlock_unlock(&c->lock);
    return n;
}

int news_catalog_dim(const news_catalog *c)
{
    return c->dim;
}

/* glibc's chunk for a malloc of n bytes on a 64-bit host: n plus an 8-byte
 * size header, rounded up to 16, and never below its 32-byte minimum. */
static size_t heap_chunk_bytes(size_t n)
{
    size_t chunk = (n + 8 + 15) & ~(size_t)15;
    return chunk < 32 ? 32 : chunk;
}

size_t news_catalog_bytes(const news_catalog *c)
{
    /* The lock is not part of the catalog's value: readers lock a const one. */
    news_catalog *m = (news_catalog *)c;
    pthread_rwlock_rdlock(&m->lock);
    size_t text = 0;
    for (size_t r = 0; r < c->n_rows; r++) {
        const char *category = c->text[r] + c->id_len[r] + 1 + c->title_len[r] + 1;
        text += heap_chunk_bytes(c->id_len[r] + c->title_len[r] + strlen(category) + 3);
    }
    size_t bytes = sizeof *c +
                   c->cap_rows * ((size_t)c->dim * (sizeof *c->vecs + sizeof *c->q8) +
                                  quant_dot_i4_row_bytes(c->dim) + sizeof *c->q4_scale +
                                  sizeof *c->q4_residual + sizeof *c->q4_norm +
                                  sizeof *c->q8_scale + sizeof *c->text + sizeof *c->id_len +
                                  sizeof *c->title_len + sizeof *c->updated_ms) +
                   text + c->n_slots * sizeof *c->slots;
    pthread_rwlock_unlock(&m->lock);
    return bytes;
}
