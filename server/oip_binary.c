/* oip_binary: the binary tensor data extension's framing (see oip_binary.h). */
#include "oip_binary.h"

#include <stdlib.h>
#include <string.h>

#include "media_type.h"

int oip_binary_header_length(const char *value, size_t body_bytes, size_t *json_bytes,
                             api_verdict *v)
{
    size_t n = 0;
    bool digits = value[0] != 0;
    for (const char *p = value; *p && digits; p++) {
        if (*p < '0' || *p > '9')
            digits = false;
        else if (n > body_bytes) /* already too large: stop before it can overflow */
            break;
        else
            n = n * 10 + (size_t)(*p - '0');
    }
    if (!digits)
        return api_fail(v, 400, "header " OIP_HEADER_LENGTH ": expected a byte count, got '%.32s'",
                        value);
    if (n > body_bytes)
        return api_fail(v, 400,
                        "header " OIP_HEADER_LENGTH ": %.32s is more than the body's %zu bytes",
                        value, body_bytes);
    *json_bytes = n;
    return 0;
}

int oip_binary_content_type(const char *content_type, api_verdict *v)
{
    if (!content_type || media_type_is(content_type, "application/octet-stream") ||
        media_type_is(content_type, "application/json"))
        return 0;
    return api_fail(v, 415,
                    "Content-Type '%.64s' is not allowed with binary tensor data (use "
                    "application/octet-stream)",
                    content_type);
}

const unsigned char *oip_binary_take(oip_binary_tail *t, size_t size, const char *path,
                                     api_verdict *v)
{
    size_t left = t->size - t->used;
    if (size > 0 && t->size == 0) {
        api_fail(v, 400,
                 "%s.parameters.binary_data_size: %zu bytes, but the body has no binary data "
                 "(its JSON part's length goes in the header " OIP_HEADER_LENGTH ")",
                 path, size);
        return NULL;
    }
    if (size > left) {
        api_fail(v, 400,
                 "%s.parameters.binary_data_size: %zu bytes, but the body has only %zu binary "
                 "bytes left",
                 path, size, left);
        return NULL;
    }
    const unsigned char *p = t->data + t->used;
    t->used += size;
    return p;
}

int oip_binary_all_taken(const oip_binary_tail *t, api_verdict *v)
{
    if (t->used == t->size)
        return 0;
    return api_fail(v, 400,
                    "binary data: %zu bytes after the inputs' data (their binary_data_size add up "
                    "to %zu)",
                    t->size - t->used, t->used);
}

bool oip_bytes_next(oip_bytes_reader *rd, const char **s, size_t *len, const char *path,
                    api_verdict *v)
{
    size_t left = rd->size - rd->off;
    if (left < 4) {
        api_fail(v, 400,
                 "%s: BYTES element %zu at byte %zu: its 4-byte length is cut off (%zu "
                 "bytes left)",
                 path, rd->index, rd->off, left);
        return false;
    }
    const unsigned char *p = rd->data + rd->off;
    uint32_t n = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    if (n > left - 4) {
        api_fail(v, 400,
                 "%s: BYTES element %zu at byte %zu: its length %u runs past the tensor's %zu "
                 "bytes",
                 path, rd->index, rd->off, n, rd->size);
        return false;
    }
    *s = (const char *)p + 4;
    *len = n;
    rd->off += 4 + (size_t)n;
    rd->index++;
    return true;
}

int oip_bytes_all_read(const oip_bytes_reader *rd, const char *path, api_verdict *v)
{
    if (rd->off == rd->size)
        return 0;
    return api_fail(v, 400, "%s: %zu bytes after the last of its %zu BYTES elements", path,
                    rd->size - rd->off, rd->index);
}

size_t oip_output_bytes(const oip_output *o)
{
    if (!o->data)
        return o->bytes_size;
    return (size_t)o->rows * (size_t)o->cols * sizeof(float);
}

size_t oip_bytes_put(char *out, const char *s, uint32_t len)
{
    unsigned char *p = (unsigned char *)out;
    p[0] = (unsigned char)len;
    p[1] = (unsigned char)(len >> 8);
    p[2] = (unsigned char)(len >> 16);
    p[3] = (unsigned char)(len >> 24);
    memcpy(out + 4, s, len);
    return 4 + (size_t)len;
}

/* n floats as little-endian IEEE 754 binary32. */
static void floats_le(unsigned char *out, const float *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &f[i], sizeof u);
        out[4 * i] = (unsigned char)u;
        out[4 * i + 1] = (unsigned char)(u >> 8);
        out[4 * i + 2] = (unsigned char)(u >> 16);
        out[4 * i + 3] = (unsigned char)(u >> 24);
    }
}

int oip_binary_body(const json_t *header, const oip_output *outputs, int n, char **body,
                    size_t *body_bytes, size_t *json_bytes)
{
    size_t json_len = json_dumpb(header, NULL, 0, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (json_len == 0)
        return -1;
    size_t total = json_len;
    for (int k = 0; k < n; k++)
        if (outputs[k].binary)
            total += oip_output_bytes(&outputs[k]);
    char *buf = malloc(total ? total : 1);
    if (!buf)
        return -1;
    if (json_dumpb(header, buf, json_len, JSON_COMPACT | JSON_REAL_PRECISION(9)) != json_len) {
        free(buf);
        return -1;
    }
    size_t off = json_len;
    for (int k = 0; k < n; k++) {
        if (!outputs[k].binary)
            continue;
        if (outputs[k].data)
            floats_le((unsigned char *)buf + off, outputs[k].data,
                      (size_t)outputs[k].rows * (size_t)outputs[k].cols);
        else
            memcpy(buf + off, outputs[k].bytes, outputs[k].bytes_size);
        off += oip_output_bytes(&outputs[k]);
    }
    *body = buf;
    *body_bytes = total;
    *json_bytes = json_len;
    return 0;
}
