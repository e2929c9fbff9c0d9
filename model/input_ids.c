/* input_ids: validation of client-given token ids (see input_ids.h). */
#include "input_ids.h"

#include <assert.h>
#include <stdio.h>

#include "value_kind.h"

int input_id_check(long long id, int vocab_size, const char *path, size_t index, char *err,
                   size_t err_cap)
{
    if (id < 0) {
        snprintf(err, err_cap, "%s[%zu]: id %lld is negative", path, index, id);
        return -1;
    }
    if (id >= vocab_size) {
        snprintf(err, err_cap, "%s[%zu]: id %lld >= vocab_size %d", path, index, id, vocab_size);
        return -1;
    }
    return 0;
}

/* Where checked ids go: the arguments the two readers below share. */
typedef struct {
    int vocab_size;
    int32_t *ids;
    size_t ids_cap;
    size_t *n_content;
    const char *path;
    size_t index_base;
    char *err;
    size_t err_cap;
} id_sink;

/* Checks id k, stores it when within ids_cap and moves the content length. */
static int id_put(const id_sink *s, size_t k, long long id)
{
    if (input_id_check(id, s->vocab_size, s->path, s->index_base + k, s->err, s->err_cap) != 0)
        return -1;
    if (k < s->ids_cap)
        s->ids[k] = (int32_t)id;
    if (id != 0)
        *s->n_content = k + 1;
    return 0;
}

int input_ids_from_json(const json_t *arr, size_t off, size_t n, int vocab_size, int32_t *ids,
                        size_t ids_cap, size_t *n_content, const char *path, size_t index_base,
                        char *err, size_t err_cap)
{
    assert(arr != NULL && n_content != NULL && path != NULL && (ids != NULL || ids_cap == 0));
    id_sink sink = {vocab_size, ids, ids_cap, n_content, path, index_base, err, err_cap};
    *n_content = 0;
    for (size_t k = 0; k < n; k++) {
        const json_t *e = json_array_get(arr, off + k);
        if (!json_is_integer(e)) {
            snprintf(err, err_cap, "%s[%zu]: expected an integer id, got %s", path, index_base + k,
                     value_kind_name(e));
            return -1;
        }
        if (id_put(&sink, k, json_integer_value(e)) != 0)
            return -1;
    }
    return 0;
}

/* A little-endian signed integer of `width` (4 or 8) bytes. */
static long long le_signed(const unsigned char *p, int width)
{
    uint64_t u = 0;
    for (int b = width - 1; b >= 0; b--)
        u = (u << 8) | p[b];
    if (width == 4)
        return (long long)(int32_t)(uint32_t)u;
    return (long long)(int64_t)u;
}

int input_ids_from_le(const unsigned char *raw, int width, size_t n, int vocab_size, int32_t *ids,
                      size_t ids_cap, size_t *n_content, const char *path, size_t index_base,
                      char *err, size_t err_cap)
{
    assert((width == 4 || width == 8) && (raw != NULL || n == 0) && n_content != NULL);
    id_sink sink = {vocab_size, ids, ids_cap, n_content, path, index_base, err, err_cap};
    *n_content = 0;
    for (size_t k = 0; k < n; k++)
        if (id_put(&sink, k, le_signed(raw + k * (size_t)width, width)) != 0)
            return -1;
    return 0;
}
