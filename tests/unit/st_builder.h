/* st_builder: test helpers that build safetensors images and model
 * directories in memory or in a temporary directory, so the loader tests need
 * no PyTorch. Header-only (static inline) because each test is one binary. */
#ifndef FF_TEST_ST_BUILDER_H
#define FF_TEST_ST_BUILDER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Returns a malloc'd image: u64 LE header_len, header text, then data. */
static inline unsigned char *st_image(const char *header, const void *data, size_t data_len,
                                      size_t *len)
{
    size_t hlen = strlen(header);
    *len = 8 + hlen + data_len;
    unsigned char *buf = malloc(*len ? *len : 1);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, header, hlen);
    if (data_len > 0)
        memcpy(buf + 8 + hlen, data, data_len);
    return buf;
}

/* Accumulates tensors, then st_writer_finish lays out the file. */
typedef struct {
    char *header;
    size_t header_len, header_cap;
    unsigned char *data;
    size_t data_len, data_cap;
} st_writer;

static inline void st_grow(void **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    *p = realloc(*p, c);
    *cap = c;
}

static inline void st_header_append(st_writer *w, const char *s)
{
    size_t n = strlen(s);
    st_grow((void **)&w->header, &w->header_cap, w->header_len + n + 1);
    memcpy(w->header + w->header_len, s, n + 1);
    w->header_len += n;
}

/* float -> IEEE half, exact for the values the tests use (normal halves and 0). */
static inline uint16_t st_f32_to_f16(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    uint32_t sign = (b >> 16) & 0x8000u;
    int32_t exp = (int32_t)((b >> 23) & 0xff);
    if (exp == 0)
        return (uint16_t)sign;
    return (uint16_t)(sign | (uint32_t)(exp - 112) << 10 | (b & 0x7fffffu) >> 13);
}

/* Adds tensor `name` of the given dtype ("F32", "F16", "BF16" or "I8") and
 * shape, whose n elements are converted from `values` (I8: truncated to
 * integers, which the tests keep in [-128, 127]). */
static inline void st_writer_add(st_writer *w, const char *name, const char *dtype, int n_dims,
                                 const int64_t *shape, const float *values)
{
    size_t n = 1;
    for (int i = 0; i < n_dims; i++)
        n *= (size_t)shape[i];
    size_t esize = strcmp(dtype, "F32") == 0 ? 4 : strcmp(dtype, "I8") == 0 ? 1 : 2;
    size_t begin = w->data_len;
    st_grow((void **)&w->data, &w->data_cap, begin + n * esize + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char *p = w->data + begin + i * esize;
        if (esize == 4) {
            memcpy(p, &values[i], 4);
        } else if (esize == 1) {
            p[0] = (unsigned char)(int8_t)values[i];
        } else {
            uint16_t h;
            if (strcmp(dtype, "F16") == 0) {
                h = st_f32_to_f16(values[i]);
            } else {
                uint32_t b;
                memcpy(&b, &values[i], 4);
                h = (uint16_t)(b >> 16);
            }
            p[0] = (unsigned char)h;
            p[1] = (unsigned char)(h >> 8);
        }
    }
    w->data_len = begin + n * esize;

    char buf[512];
    int at = snprintf(buf, sizeof buf, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                      w->header_len ? "," : "{", name, dtype);
    for (int i = 0; i < n_dims; i++)
        at += snprintf(buf + at, sizeof buf - (size_t)at, "%s%lld", i ? "," : "",
                       (long long)shape[i]);
    snprintf(buf + at, sizeof buf - (size_t)at, "],\"data_offsets\":[%zu,%zu]}", begin,
             w->data_len);
    st_header_append(w, buf);
}

/* Finishes the header, padding it with spaces to a multiple of 8 plus
 * `misalign` bytes, and returns the malloc'd file image. Frees w's buffers. */
static inline unsigned char *st_writer_finish(st_writer *w, size_t misalign, size_t *len)
{
    if (w->header_len == 0)
        st_header_append(w, "{");
    st_header_append(w, "}");
    while ((w->header_len + 8) % 8 != misalign % 8)
        st_header_append(w, " ");
    unsigned char *img = st_image(w->header, w->data, w->data_len, len);
    free(w->header);
    free(w->data);
    memset(w, 0, sizeof *w);
    return img;
}

static inline void st_write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        abort();
    }
    if (len > 0 && fwrite(buf, 1, len, f) != len)
        abort();
    fclose(f);
}

#endif
