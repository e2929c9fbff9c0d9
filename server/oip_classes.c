/* oip_classes: top classes as "value:index:label" (see oip_classes.h). */
#include "oip_classes.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oip_binary.h"

/* order[0..k) = the indices of the k largest of p[0..cols), largest first,
 * ties to the lower index (a selection: k and cols are a model's labels). */
static void top_k(const float *p, int cols, int k, int *order)
{
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int c = 0; c < cols; c++) {
            bool taken = false;
            for (int t = 0; t < j && !taken; t++)
                taken = order[t] == c;
            if (!taken && (best < 0 || p[c] > p[best]))
                best = c;
        }
        order[j] = best;
    }
}

/* The most bytes one serialized element can take: its length, then "%f" of
 * a float (at most 47 characters), ':', the index, ':', the label, within
 * the 255 characters formatted. */
static size_t element_cap(char *const *labels, int cols)
{
    size_t longest = 0;
    for (int c = 0; c < cols; c++)
        if (strlen(labels[c]) > longest)
            longest = strlen(labels[c]);
    size_t text = 47 + 1 + 11 + 1 + longest;
    return 4 + (text < 255 ? text : 255);
}

int oip_classes(const float *probs, int rows, int cols, int k, char *const *labels, char **bytes,
                size_t *bytes_size, json_t **strings)
{
    size_t cap = (size_t)rows * (size_t)k * element_cap(labels, cols);
    char *buf = malloc(cap ? cap : 1);
    int *order = malloc((size_t)k * sizeof *order);
    json_t *list = json_array();
    bool ok = buf && order && list;
    size_t used = 0;
    for (int r = 0; r < rows && ok; r++) {
        const float *p = probs + (size_t)r * (size_t)cols;
        top_k(p, cols, k, order);
        for (int j = 0; j < k && ok; j++) {
            char s[256];
            int n =
                snprintf(s, sizeof s, "%f:%d:%s", (double)p[order[j]], order[j], labels[order[j]]);
            size_t len = n < 0 ? 0 : (size_t)n < sizeof s ? (size_t)n : sizeof s - 1;
            used += oip_bytes_put(buf + used, s, (uint32_t)len);
            ok = json_array_append_new(list, json_stringn(s, len)) == 0;
        }
    }
    free(order);
    if (!ok) {
        free(buf);
        json_decref(list);
        return -1;
    }
    *bytes = buf;
    *bytes_size = used;
    *strings = list;
    return 0;
}
