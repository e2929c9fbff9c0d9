/* cli_common: error reporting and argument helpers shared by the
 * fastformer-cli subcommands. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fastformer-cli %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
    /* getopt_long leaves the offending argument just before optind. */
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        cli_error(cmd, "option '%s' needs a value (see %s --help)", arg, cmd);
    else
        cli_error(cmd, "unknown option '%s' (see %s --help)", arg, cmd);
    return CLI_EXIT_USAGE;
}

int cli_model_load(const char *cmd, const char *dir, model **out)
{
    char err[512];
    if (model_load(dir, out, err, sizeof err) != 0) {
        cli_error(cmd, "%s", err);
        return -1;
    }
    return 0;
}

int cli_parse_int(const char *cmd, const char *option, const char *text, int max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 1 || v > max) {
        cli_error(cmd, "%s: expected an integer from 1 to %d, got '%s'", option, max, text);
        return -1;
    }
    *out = (int)v;
    return 0;
}
