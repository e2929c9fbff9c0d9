/* third_party_data: where a unit test finds a third-party data set that the
 * repository does not carry (its licence forbids redistribution): under
 * data/<dir> (`make data` puts it there) or under $DATA_SRC/<dir> (a local copy
 * with the layout of data/). A test that needs one skips when it is absent and
 * prints the reason on a "skip reason: " line, which tests/run_tests.sh counts
 * into its summary. Tests run from the repository root. Header-only. */
#ifndef FF_TEST_THIRD_PARTY_DATA_H
#define FF_TEST_THIRD_PARTY_DATA_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Writes the folder holding data set `dir` (a name under data/, e.g.
 * "mind-sample") into path and returns 1, or returns 0 when neither data/<dir>
 * nor $DATA_SRC/<dir> is a directory. */
static int third_party_data_find(const char *dir, char *path, size_t path_cap)
{
    const char *src = getenv("DATA_SRC");
    const char *roots[] = {"data", src && *src ? src : NULL};
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        struct stat st;
        if (!roots[i])
            continue;
        int n = snprintf(path, path_cap, "%s/%s", roots[i], dir);
        if (n > 0 && (size_t)n < path_cap && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return 1;
    }
    return 0;
}

/* Prints the line run_tests.sh groups skipped tests by; call just before
 * cmocka's skip(). */
static void third_party_data_skip_reason(const char *reason)
{
    printf("skip reason: %s\n", reason);
    fflush(stdout);
}

#endif
