/* input_ids: the one check of client-given token ids. The API, the CLI and
 * infer_request_set_item_ids all go through it, so a bad id is named the
 * same way everywhere, e.g. "inputs[3].input_ids[7]: id 99999 >= vocab_size 30000".
 * Pure functions; any thread. */
#ifndef FF_INPUT_IDS_H
#define FF_INPUT_IDS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "compiler.h"

/* Checks one id against a vocabulary of vocab_size tokens. Returns 0, or -1
 * with "PATH[INDEX]: id -1 is negative" or "PATH[INDEX]: id 60 >= vocab_size 60". */
FF_MUST_CHECK int input_id_check(long long id, int vocab_size, const char *path, size_t index,
                                 char *err, size_t err_cap);

/* Checks the n JSON values arr[off .. off+n) as token ids (integers in
 * [0, vocab_size)) and copies the first min(n, ids_cap) of them into ids.
 * Every value is checked, also those past ids_cap. Messages name element k as
 * PATH[index_base + k]: besides input_id_check's,
 * "PATH[INDEX]: expected an integer id, got number". On success *n_content
 * is the count without trailing padding (id 0), which may exceed ids_cap: the
 * caller decides between cutting and rejecting. Borrows arr. Returns 0 or -1. */
FF_MUST_CHECK int input_ids_from_json(const json_t *arr, size_t off, size_t n, int vocab_size,
                                      int32_t *ids, size_t ids_cap, size_t *n_content,
                                      const char *path, size_t index_base, char *err,
                                      size_t err_cap);

/* The same for n ids stored as little-endian signed integers of `width`
 * bytes (4: INT32, 8: INT64) back to back at raw (no alignment needed), as
 * the Open Inference Protocol's binary tensor data carries them. Messages
 * name element k as PATH[index_base + k]. Returns 0 or -1. */
FF_MUST_CHECK int input_ids_from_le(const unsigned char *raw, int width, size_t n, int vocab_size,
                                    int32_t *ids, size_t ids_cap, size_t *n_content,
                                    const char *path, size_t index_base, char *err, size_t err_cap);

#endif
