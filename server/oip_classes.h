/* oip_classes: the classification extension of the Open Inference Protocol
 * (Triton's "classification"): instead of a row of probabilities, its top k
 * classes, best first, each the string "<value>:<index>:<label>" with the
 * value printed as C's "%f" (what Triton's std::to_string gives), e.g.
 * "0.998254:1:positive". Pure; any thread. */
#ifndef FF_OIP_CLASSES_H
#define FF_OIP_CLASSES_H

#include <jansson.h>
#include <stddef.h>

/* The top k (1 <= k <= cols) classes of each of `rows` rows of `cols`
 * probabilities, ties to the lower index. *bytes (malloc'ed, the caller's)
 * gets them as BYTES tensor data (each a 4-byte little-endian length, then
 * the string), *bytes_size its length, and *strings (a new reference) the
 * same strings as a JSON array, row-major. Returns 0, or -1 when out of
 * memory (nothing to free). */
int oip_classes(const float *probs, int rows, int cols, int k, char *const *labels, char **bytes,
                size_t *bytes_size, json_t **strings);

#endif
