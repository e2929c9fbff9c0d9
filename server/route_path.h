/* route_path: a route's path template, such as "/v1/models/{name}/news/{id}",
 * matched against a request path. A "{...}" segment matches exactly one
 * non-empty segment and captures it; every other segment matches itself.
 * The template is also the OpenAPI path and the metrics' route label, so a
 * route is spelled once. Pure; any thread. */
#ifndef FF_ROUTE_PATH_H
#define FF_ROUTE_PATH_H

#include <stddef.h>

/* Most captures one template may have. */
#define ROUTE_PATH_MAX_CAPTURES 4

/* Where a capture lies in the path: path[off, off + len). */
typedef struct {
    size_t off, len;
} route_path_span;

/* Returns the number of captures (0 to ROUTE_PATH_MAX_CAPTURES) with their
 * spans in caps[], when `path` matches `tmpl`; -1 when it does not (also
 * when the template has more captures than that). */
int route_path_match(const char *tmpl, const char *path,
                     route_path_span caps[ROUTE_PATH_MAX_CAPTURES]);

#endif
