/* fastformer-cli: offline tool for Fastformer model directories. Dispatches
 * to the subcommands in server/cli_*.c: predict, eval, eval-mind, bench. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: fastformer-cli COMMAND [OPTIONS]\n"
    "\n"
    "Offline use of a fastformerd model directory (config.json + model.safetensors + vocab.txt).\n"
    "\n"
    "commands:\n"
    "  predict    classify texts or embed news, one JSON line in, one JSON line out\n"
    "  eval       accuracy and macro-F1 of a classifier on labelled JSON lines\n"
    "  eval-mind  AUC, MRR, nDCG@5, nDCG@10 of a news recommender on MIND files\n"
    "  bench      throughput table (docs/s, tokens/s, GFLOP/s) at fixed batch x length\n"
    "\n"
    "Run 'fastformer-cli COMMAND --help' for a command's options.\n"
    "Exit codes: 0 success, 1 failure (model, data or input errors), 2 usage error.\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return CLI_EXIT_OK;
    }
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } commands[] = {
        {"predict", cli_predict},
        {"eval", cli_eval},
        {"eval-mind", cli_eval_mind},
        {"bench", cli_bench},
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "fastformer-cli: unknown command '%s'\n\n%s", cmd, usage);
    return CLI_EXIT_USAGE;
}
