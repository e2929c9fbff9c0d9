/* media_type: matching a Content-Type value (see media_type.h). */
#include "media_type.h"

#include <string.h>
#include <strings.h>

static const char *skip_blanks(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

bool media_type_is(const char *type, const char *want)
{
    if (!type)
        return false;
    type = skip_blanks(type);
    size_t n = strlen(want);
    if (strncasecmp(type, want, n) != 0)
        return false;
    const char *rest = skip_blanks(type + n);
    return *rest == 0 || *rest == ';';
}
