/* probe: command-line entry point.  Dispatches subcommands; each lives in
 * probe/cmd_*.c.  Results go to stdout, messages to stderr. */
#include "cli.h"

#include <gsl/gsl_errno.h>
#include <hdf5.h>
#include <string.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"info", cmd_info, "what a model file holds: architecture, sizes, tensors, parameter shares"},
    {"activations", cmd_activations, "key activations of FFN neurons for each prompt token"},
    {"generate", cmd_generate, "continue a prompt (greedy)"},
    {"tokenize", cmd_tokenize, "text to token ids with the model's own tokenizer"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: probe COMMAND [options]   (probe COMMAND --help for details)\n\n"
                 "Reads transformer feed-forward layers as key-value memories.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\nLayers and neurons are numbered from 0, as in Hugging Face and TransformerLens.\n"
                 "Without --model, the stories260K model from $PROBE_SHARED (default ../shared) is used.\n");
}

int main(int argc, char **argv) {
    /* Library errors become messages, never aborts or automatic prints. */
    gsl_set_error_handler_off();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    size_t k = 0;
    for (int i = 0; i < argc && k < sizeof cli_command_line - 1; i++)
        k += (size_t)snprintf(cli_command_line + k, sizeof cli_command_line - k, i ? " %s" : "%s",
                              argv[i]);
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "probe: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
