/* cli: the subcommands of the offline `fastformer-cli` tool and the few
 * helpers they share. Each subcommand takes its own argv (argv[0] is the
 * subcommand's name) and returns the process exit code:
 *   0 success, 1 failure (bad model, data or input line), 2 usage error. */
#ifndef FF_CLI_H
#define FF_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "compiler.h"
#include "model.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILURE 1
#define CLI_EXIT_USAGE 2

int cli_predict(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_eval_mind(int argc, char **argv);
int cli_bench(int argc, char **argv);

/* Prints "fastformer-cli CMD: message\n" to stderr. */
FF_PRINTF(2, 3) void cli_error(const char *cmd, const char *fmt, ...);

/* Reports what getopt_long (with an optstring starting "+:") returned as `c`:
 * ':' for an option missing its value, '?' for an unknown option; the
 * offending argument is argv[optind - 1]. Returns CLI_EXIT_USAGE. */
int cli_bad_option(const char *cmd, int c, char **argv);

/* Loads the model directory `dir`; on failure prints model_load's message
 * and returns -1. */
FF_MUST_CHECK int cli_model_load(const char *cmd, const char *dir, model **out);

/* Parses a positive int option value ("--threads 4"); prints an error and
 * returns -1 when it is not an integer in [1, max]. */
FF_MUST_CHECK int cli_parse_int(const char *cmd, const char *option, const char *text, int max,
                                int *out);

#endif
