/* fuzz_common: what every libFuzzer target here shares: the entry points'
 * prototypes (-Wmissing-prototypes), a check that aborts with a message (a
 * fuzzer finding, unlike assert it is never compiled out), and fixture loading
 * for targets that need a vocabulary or a model.
 *
 * Fixtures are read from $FUZZ_FIXTURES, default "tests/fixtures" (make fuzz
 * runs from the repository root). */
#ifndef FF_FUZZ_COMMON_H
#define FF_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* "$FUZZ_FIXTURES/<rel>" into buf. */
static inline const char *fuzz_fixture_path(char *buf, size_t cap, const char *rel)
{
    const char *dir = getenv("FUZZ_FIXTURES");
    snprintf(buf, cap, "%s/%s", dir && dir[0] ? dir : "tests/fixtures", rel);
    return buf;
}

/* Reads a whole fixture file (malloc'ed, *len bytes plus a NUL); exits with a
 * message when it cannot (a set-up error, not a finding). */
static inline char *fuzz_fixture_read(const char *rel, size_t *len)
{
    char path[1024];
    fuzz_fixture_path(path, sizeof path, rel);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz: cannot open fixture %s (set FUZZ_FIXTURES)\n", path);
        exit(2);
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *bigger = realloc(buf, 2 * cap + 1);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "fuzz: out of memory reading %s\n", path);
        exit(2);
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

#endif
