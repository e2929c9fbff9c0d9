/* route_path: segment-by-segment matching of a path against a template. */
#include "route_path.h"

#include <stdbool.h>
#include <string.h>

static size_t segment_len(const char *s)
{
    const char *e = strchr(s, '/');
    return e ? (size_t)(e - s) : strlen(s);
}

static bool segment_is_capture(const char *seg, size_t len)
{
    return len >= 2 && seg[0] == '{' && seg[len - 1] == '}';
}

int route_path_match(const char *tmpl, const char *path,
                     route_path_span caps[ROUTE_PATH_MAX_CAPTURES])
{
    const char *t = tmpl, *p = path;
    int n = 0;
    for (;;) {
        if (*t != '/' || *p != '/')
            return *t == 0 && *p == 0 ? n : -1;
        t++;
        p++;
        size_t tl = segment_len(t), pl = segment_len(p);
        if (segment_is_capture(t, tl)) {
            if (pl == 0 || n == ROUTE_PATH_MAX_CAPTURES)
                return -1;
            caps[n].off = (size_t)(p - path);
            caps[n].len = pl;
            n++;
        } else if (tl != pl || memcmp(t, p, tl) != 0) {
            return -1;
        }
        t += tl;
        p += pl;
    }
}
