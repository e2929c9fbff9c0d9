/* safetensors: validates a whole safetensors image before anything reads a
 * tensor. Every field of the JSON header is checked (dtype, shape, offsets),
 * all sizes are overflow-checked against SIZE_MAX, and the tensors' byte
 * ranges are sorted to reject overlaps, so a bad file yields a message and
 * never an out-of-bounds read. */
#include "safetensors.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The reference implementation's limit on the JSON header (100 MB). */
#define SAFETENSORS_MAX_HEADER_BYTES 100000000ull

struct safetensors {
    size_t n_tensors;
    safetensors_tensor *tensors; /* (n_tensors) in data-offset order */
    size_t *by_name;             /* (n_tensors) indices into tensors, sorted by name */
    char *names;                 /* all names, NUL-separated; tensors[i].name points here */
};

const char *safetensors_dtype_name(safetensors_dtype dtype)
{
    switch (dtype) {
    case SAFETENSORS_F32:
        return "F32";
    case SAFETENSORS_F16:
        return "F16";
    case SAFETENSORS_BF16:
        return "BF16";
    case SAFETENSORS_I8:
        return "I8";
    }
    return "?";
}

size_t safetensors_dtype_bytes(safetensors_dtype dtype)
{
    switch (dtype) {
    case SAFETENSORS_F32:
        return 4;
    case SAFETENSORS_F16:
    case SAFETENSORS_BF16:
        return 2;
    case SAFETENSORS_I8:
        return 1;
    }
    return 1;
}

/* ---- header parsing -------------------------------------------------------- */

/* One tensor entry while parsing: the public view plus its offsets. */
typedef struct {
    safetensors_tensor t;
    size_t begin, end;
} parsed_tensor;

/* Formats shape as "[d0,d1,...]" into buf. */
static void format_shape(const int64_t *shape, int n_dims, char *buf, size_t cap)
{
    size_t at = 0;
    at += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n_dims && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (at < cap)
        snprintf(buf + at, cap - at, "]");
}

static int parse_dtype(const char *name, json_t *v, safetensors_dtype *out, char *err,
                       size_t err_cap)
{
    if (!json_is_string(v)) {
        snprintf(err, err_cap, "tensor '%s': 'dtype' must be a string", name);
        return -1;
    }
    const char *s = json_string_value(v);
    if (strcmp(s, "F32") == 0)
        *out = SAFETENSORS_F32;
    else if (strcmp(s, "F16") == 0)
        *out = SAFETENSORS_F16;
    else if (strcmp(s, "BF16") == 0)
        *out = SAFETENSORS_BF16;
    else if (strcmp(s, "I8") == 0)
        *out = SAFETENSORS_I8;
    else {
        snprintf(err, err_cap,
                 "tensor '%s': unsupported dtype '%s' (expected F32, F16, BF16 or I8)", name, s);
        return -1;
    }
    return 0;
}

static int parse_shape(const char *name, json_t *v, safetensors_tensor *t, char *err,
                       size_t err_cap)
{
    if (!json_is_array(v)) {
        snprintf(err, err_cap, "tensor '%s': 'shape' must be an array", name);
        return -1;
    }
    size_t n_dims = json_array_size(v);
    if (n_dims > SAFETENSORS_MAX_DIMS) {
        snprintf(err, err_cap, "tensor '%s': shape has %zu dims, at most %d are supported", name,
                 n_dims, SAFETENSORS_MAX_DIMS);
        return -1;
    }
    t->n_dims = (int)n_dims;
    size_t n_elements = 1;
    bool overflow = false;
    for (size_t i = 0; i < n_dims; i++) {
        json_t *d = json_array_get(v, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0) {
            snprintf(err, err_cap, "tensor '%s': shape dim %zu must be a non-negative integer",
                     name, i);
            return -1;
        }
        json_int_t dim = json_integer_value(d);
        t->shape[i] = (int64_t)dim;
        if ((unsigned long long)dim > SIZE_MAX)
            overflow = true;
        else if (dim != 0 && n_elements > SIZE_MAX / (size_t)dim)
            overflow = true;
        else
            n_elements *= (size_t)dim;
    }
    /* A zero dim makes the product 0 whatever the others are, but a shape like
     * [2^40, 2^40, 0] is still rejected: nothing legitimate needs it. */
    size_t dsize = safetensors_dtype_bytes(t->dtype);
    if (overflow || n_elements > SIZE_MAX / dsize) {
        char shape[160];
        format_shape(t->shape, t->n_dims, shape, sizeof shape);
        snprintf(err, err_cap, "tensor '%s': shape %s overflows the address space", name, shape);
        return -1;
    }
    t->n_elements = n_elements;
    t->n_bytes = n_elements * dsize;
    return 0;
}

static int parse_offsets(const char *name, json_t *v, size_t data_bytes, parsed_tensor *p,
                         char *err, size_t err_cap)
{
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(json_array_get(v, 0)) ||
        !json_is_integer(json_array_get(v, 1)) || json_integer_value(json_array_get(v, 0)) < 0 ||
        json_integer_value(json_array_get(v, 1)) < 0) {
        snprintf(err, err_cap,
                 "tensor '%s': 'data_offsets' must be [begin, end] of non-negative integers", name);
        return -1;
    }
    unsigned long long begin = (unsigned long long)json_integer_value(json_array_get(v, 0));
    unsigned long long end = (unsigned long long)json_integer_value(json_array_get(v, 1));
    if (end < begin) {
        snprintf(err, err_cap, "tensor '%s': data_offsets [%llu,%llu] end before begin", name,
                 begin, end);
        return -1;
    }
    if (end > data_bytes) {
        snprintf(err, err_cap,
                 "tensor '%s': data_offsets [%llu,%llu] out of range (data area is %zu bytes)",
                 name, begin, end, data_bytes);
        return -1;
    }
    if (end - begin != p->t.n_bytes) {
        char shape[160];
        format_shape(p->t.shape, p->t.n_dims, shape, sizeof shape);
        snprintf(err, err_cap,
                 "tensor '%s': data_offsets [%llu,%llu] do not match shape %s of %s (%zu bytes)",
                 name, begin, end, shape, safetensors_dtype_name(p->t.dtype), p->t.n_bytes);
        return -1;
    }
    p->begin = (size_t)begin;
    p->end = (size_t)end;
    return 0;
}

static int parse_tensor(const char *name, json_t *info, size_t data_bytes, parsed_tensor *p,
                        char *err, size_t err_cap)
{
    if (!json_is_object(info)) {
        snprintf(err, err_cap, "tensor '%s': entry must be an object", name);
        return -1;
    }
    static const char *const fields[] = {"dtype", "shape", "data_offsets"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (json_object_get(info, fields[i]) == NULL) {
            snprintf(err, err_cap, "tensor '%s': missing '%s'", name, fields[i]);
            return -1;
        }
    }
    if (parse_dtype(name, json_object_get(info, "dtype"), &p->t.dtype, err, err_cap) != 0)
        return -1;
    if (parse_shape(name, json_object_get(info, "shape"), &p->t, err, err_cap) != 0)
        return -1;
    return parse_offsets(name, json_object_get(info, "data_offsets"), data_bytes, p, err, err_cap);
}

static int parse_metadata(json_t *v, char *err, size_t err_cap)
{
    if (!json_is_object(v)) {
        snprintf(err, err_cap, "'__metadata__' must be an object of strings");
        return -1;
    }
    const char *key;
    json_t *value;
    json_object_foreach(v, key, value)
    {
        if (!json_is_string(value)) {
            snprintf(err, err_cap, "'__metadata__' value of '%s' must be a string", key);
            return -1;
        }
    }
    return 0;
}

static int compare_by_offset(const void *a, const void *b)
{
    const parsed_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* Orders pointers to tensors by name, for the binary-search index. */
static int compare_name_ptr(const void *a, const void *b)
{
    const safetensors_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* Rejects overlapping byte ranges. Ranges are sorted by begin; an empty tensor
 * occupies no bytes and cannot overlap anything. */
static int check_overlaps(const parsed_tensor *p, size_t n, char *err, size_t err_cap)
{
    const parsed_tensor *last = NULL; /* the non-empty tensor reaching furthest so far */
    for (size_t i = 0; i < n; i++) {
        if (p[i].begin == p[i].end)
            continue;
        if (last != NULL && p[i].begin < last->end) {
            snprintf(err, err_cap,
                     "tensor '%s': data_offsets [%zu,%zu] overlap tensor '%s' [%zu,%zu]",
                     p[i].t.name, p[i].begin, p[i].end, last->t.name, last->begin, last->end);
            return -1;
        }
        if (last == NULL || p[i].end > last->end)
            last = &p[i];
    }
    return 0;
}

int safetensors_parse(const void *buf, size_t len, safetensors **out, char *err, size_t err_cap)
{
    *out = NULL;
    const unsigned char *bytes = buf;
    if (len < 8) {
        snprintf(err, err_cap, "file is %zu bytes, too short for the 8-byte header length", len);
        return -1;
    }
    unsigned long long header_bytes = 0;
    for (int i = 7; i >= 0; i--)
        header_bytes = header_bytes << 8 | bytes[i];
    if (header_bytes == 0) {
        snprintf(err, err_cap, "header length is 0");
        return -1;
    }
    if (header_bytes > len - 8) {
        snprintf(err, err_cap, "header length %llu exceeds the file (%zu bytes after the length)",
                 header_bytes, len - 8);
        return -1;
    }
    if (header_bytes > SAFETENSORS_MAX_HEADER_BYTES) {
        snprintf(err, err_cap, "header length %llu exceeds the limit of %llu bytes", header_bytes,
                 SAFETENSORS_MAX_HEADER_BYTES);
        return -1;
    }
    const unsigned char *data = bytes + 8 + header_bytes;
    size_t data_bytes = len - 8 - (size_t)header_bytes;

    json_error_t jerr;
    json_t *root =
        json_loadb((const char *)bytes + 8, (size_t)header_bytes, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        if (json_error_code(&jerr) == json_error_duplicate_key)
            snprintf(err, err_cap, "header: duplicate tensor name (%s)", jerr.text);
        else
            snprintf(err, err_cap, "header is not valid JSON: %s at line %d column %d", jerr.text,
                     jerr.line, jerr.column);
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, err_cap, "header must be a JSON object");
        json_decref(root);
        return -1;
    }

    size_t n_keys = json_object_size(root);
    parsed_tensor *parsed = calloc(n_keys ? n_keys : 1, sizeof *parsed);
    safetensors *st = calloc(1, sizeof *st);
    size_t names_bytes = 0;
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        names_bytes += strlen(key) + 1;
    }
    char *names = malloc(names_bytes ? names_bytes : 1);
    if (parsed == NULL || st == NULL || names == NULL) {
        snprintf(err, err_cap, "out of memory parsing the header");
        goto fail;
    }

    size_t n = 0, names_at = 0;
    json_object_foreach(root, key, value)
    {
        if (strcmp(key, "__metadata__") == 0) {
            if (parse_metadata(value, err, err_cap) != 0)
                goto fail;
            continue;
        }
        size_t key_bytes = strlen(key) + 1;
        memcpy(names + names_at, key, key_bytes);
        parsed[n].t.name = names + names_at;
        names_at += key_bytes;
        if (parse_tensor(parsed[n].t.name, value, data_bytes, &parsed[n], err, err_cap) != 0)
            goto fail;
        n++;
    }

    qsort(parsed, n, sizeof *parsed, compare_by_offset);
    if (check_overlaps(parsed, n, err, err_cap) != 0)
        goto fail;

    st->n_tensors = n;
    st->names = names;
    st->tensors = calloc(n ? n : 1, sizeof *st->tensors);
    st->by_name = calloc(n ? n : 1, sizeof *st->by_name);
    const safetensors_tensor **order = calloc(n ? n : 1, sizeof *order);
    if (st->tensors == NULL || st->by_name == NULL || order == NULL) {
        free(order);
        snprintf(err, err_cap, "out of memory parsing the header");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        st->tensors[i] = parsed[i].t;
        st->tensors[i].data = data + parsed[i].begin;
        order[i] = &st->tensors[i];
    }
    qsort(order, n, sizeof *order, compare_name_ptr);
    for (size_t i = 0; i < n; i++)
        st->by_name[i] = (size_t)(order[i] - st->tensors);
    free(order);
    free(parsed);
    json_decref(root);
    *out = st;
    return 0;

fail:
    if (st != NULL) {
        free(st->tensors);
        free(st->by_name);
    }
    free(st);
    free(names);
    free(parsed);
    json_decref(root);
    return -1;
}

void safetensors_free(safetensors *st)
{
    if (st == NULL)
        return;
    free(st->tensors);
    free(st->by_name);
    free(st->names);
    free(st);
}

size_t safetensors_count(const safetensors *st)
{
    return st->n_tensors;
}

const safetensors_tensor *safetensors_at(const safetensors *st, size_t i)
{
    return i < st->n_tensors ? &st->tensors[i] : NULL;
}

const safetensors_tensor *safetensors_find(const safetensors *st, const char *name)
{
    size_t lo = 0, hi = st->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const safetensors_tensor *t = &st->tensors[st->by_name[mid]];
        int c = strcmp(name, t->name);
        if (c == 0)
            return t;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* ---- conversion ------------------------------------------------------------- */

/* IEEE 754 binary16 -> binary32, exact for every input (subnormals, inf, NaN payloads). */
static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {
            /* subnormal: mant * 2^-24; renormalise into a binary32 normal */
            int e = -1;
            do {
                mant <<= 1;
                e++;
            } while ((mant & 0x400u) == 0);
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | mant << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | mant << 13;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

void safetensors_to_f32(const safetensors_tensor *t, float *out)
{
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case SAFETENSORS_F32:
        /* Little-endian host assumed (checked at compile time in model.c). */
        if (t->n_elements > 0)
            memcpy(out, p, t->n_elements * sizeof(float));
        return;
    case SAFETENSORS_F16:
        for (size_t i = 0; i < t->n_elements; i++)
            out[i] = f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return;
    case SAFETENSORS_BF16:
        for (size_t i = 0; i < t->n_elements; i++)
            out[i] = bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return;
    case SAFETENSORS_I8: {
        const int8_t *q = t->data; /* the integer values: scales are the model's business */
        for (size_t i = 0; i < t->n_elements; i++)
            out[i] = (float)q[i];
        return;
    }
    }
}
