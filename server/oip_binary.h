/* oip_binary: the binary tensor data extension of the Open Inference
 * Protocol ("binary_tensor_data", as Triton and KServe implement it). A
 * request body is its JSON object, Inference-Header-Content-Length bytes
 * long, followed by the raw data of every input whose "parameters" carry
 * "binary_data_size": N, in the order of "inputs". Tensor data is
 * little-endian and row-major without padding; a BYTES element is a 4-byte
 * little-endian unsigned length followed by that many bytes. An answer with
 * binary outputs is built the same way (oip_binary_answer).
 *
 * Every size is checked against the bytes that are there, and each failure
 * is a 400 that names the input. Pure functions (no HTTP, no globals); any
 * thread. */
#ifndef FF_OIP_BINARY_H
#define FF_OIP_BINARY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api_fields.h"
#include "compiler.h"

#define OIP_HEADER_LENGTH "Inference-Header-Content-Length"

/* The value of Inference-Header-Content-Length against a body of body_bytes:
 * decimal digits only, at most body_bytes. Returns 0 with *json_bytes, or 400:
 * "header Inference-Header-Content-Length: expected a byte count, got 'x'" or
 * "... 90 is more than the body's 80 bytes". */
int oip_binary_header_length(const char *value, size_t body_bytes, size_t *json_bytes,
                             api_verdict *v);

/* A binary request's Content-Type: absent (Triton's Python client sends
 * none; the Inference-Header-Content-Length header already rules out a
 * browser's simple cross-site request), application/octet-stream (Triton's
 * C++ client, the extension's own example) or application/json, each with
 * optional parameters. Returns 0, or 415 naming the type. */
int oip_binary_content_type(const char *content_type, api_verdict *v);

/* The binary part of a request body, consumed in the order of "inputs". */
typedef struct {
    const unsigned char *data;
    size_t size;
    size_t used; /* bytes handed out so far */
} oip_binary_tail;

/* The next `size` bytes of the tail for the input at `path` (e.g.
 * "inputs[0]"). NULL with 400 when they run past the body:
 * "inputs[0].parameters.binary_data_size: 48 bytes, but the body has only
 * 40 binary bytes left". */
const unsigned char *oip_binary_take(oip_binary_tail *t, size_t size, const char *path,
                                     api_verdict *v);

/* 0 when every byte of the tail was taken, else 400: "binary data: N bytes
 * after the inputs' data (their binary_data_size add up to M)". */
int oip_binary_all_taken(const oip_binary_tail *t, api_verdict *v);

/* Walks the BYTES elements of one tensor's binary data. */
typedef struct {
    const unsigned char *data;
    size_t size;
    size_t off;   /* where the next element's length starts */
    size_t index; /* elements read so far */
} oip_bytes_reader;

/* The next element into *s, *len (pointing into the data). False with 400
 * when its 4-byte length is cut off or the element overruns the tensor:
 * "inputs[0]: BYTES element 2 at byte 17: its length 300 runs past the
 * tensor's 40 bytes". */
bool oip_bytes_next(oip_bytes_reader *rd, const char **s, size_t *len, const char *path,
                    api_verdict *v);

/* 0 when the reader used the whole tensor, else 400: "inputs[0]: N bytes
 * after the last of its M BYTES elements". */
int oip_bytes_all_read(const oip_bytes_reader *rd, const char *path, api_verdict *v);

/* One output of an answer, sent in the JSON or after it: FP32 (rows x cols
 * floats) or BYTES (rows x cols elements, already serialized as binary
 * tensor data: each a 4-byte little-endian length, then its bytes). */
typedef struct {
    const char *name;
    int rows, cols;
    bool binary;
    const float *data; /* FP32, or NULL for BYTES */
    const char *bytes; /* BYTES: bytes_size bytes of serialized elements */
    size_t bytes_size;
} oip_output;

/* The bytes of a binary output: rows * cols * 4 for FP32, bytes_size for BYTES. */
size_t oip_output_bytes(const oip_output *o);

/* Appends one BYTES element (its 4-byte little-endian length, then s) at
 * out, which has room for 4 + len bytes. Returns the bytes written. */
size_t oip_bytes_put(char *out, const char *s, uint32_t len);

/* An answer with binary outputs: the JSON `header` (which gives each binary
 * output "parameters": {"binary_data_size": oip_output_bytes}), then the
 * bytes of each binary output of outputs[0..n), in order (FP32 as
 * little-endian IEEE 754 binary32, BYTES as serialized).
 * Returns 0 with *body (malloc'ed: the caller's), *body_bytes and
 * *json_bytes (the JSON's length, for Inference-Header-Content-Length), or
 * -1 when out of memory. */
int oip_binary_body(const json_t *header, const oip_output *outputs, int n, char **body,
                    size_t *body_bytes, size_t *json_bytes);

#endif
