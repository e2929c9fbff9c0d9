/* value_kind: the word error messages use for a JSON value's type (in model/ so that
 * input_ids.c, the API and the CLI all share it). */
#ifndef FF_VALUE_KIND_H
#define FF_VALUE_KIND_H

#include <jansson.h>

/* "object", "array", "string", "integer", "number", "boolean" or "null";
 * a static string. Any thread. */
const char *value_kind_name(const json_t *v);

#endif
