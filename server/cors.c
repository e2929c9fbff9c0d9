/* cors: the origin list's syntax and the match of a request's Origin. */
#include "cors.h"

#include <string.h>
#include <strings.h>

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool cors_origin_valid(const char *s, size_t n)
{
    if (n == 1 && s[0] == '*')
        return true;
    if (n == 0 || n > CORS_ORIGIN_MAX || !(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    const char *sep = memmem(s, n, "://", 3);
    if (!sep)
        return false;
    for (const char *c = s + 1; c < sep; c++)
        if (!is_lower_alnum(*c) && *c != '+' && *c != '.' && *c != '-')
            return false;
    size_t i = (size_t)(sep - s) + 3;
    if (i >= n)
        return false;
    size_t host = i;
    if (s[i] == '[') {
        i++;
        while (i < n &&
               (is_lower_alnum(s[i]) || (s[i] >= 'A' && s[i] <= 'F') || s[i] == ':' || s[i] == '.'))
            i++;
        if (i >= n || s[i] != ']' || i == host + 1)
            return false;
        i++;
    } else {
        while (i < n &&
               (is_lower_alnum(s[i]) || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '-' || s[i] == '.'))
            i++;
        if (i == host)
            return false;
    }
    if (i < n && s[i] == ':') {
        size_t digits = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == digits || i - digits > 5)
            return false;
    }
    return i == n;
}

cors_verdict cors_check(char *const *origins, size_t n, const char *origin)
{
    if (!origin || n == 0)
        return CORS_DENIED;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(origins[i], "*") == 0)
            any = true;
        else if (strcasecmp(origins[i], origin) == 0)
            return CORS_LISTED;
    }
    return any ? CORS_ANY : CORS_DENIED;
}
