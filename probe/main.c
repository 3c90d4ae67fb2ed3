/* probe: command-line entry point.  Dispatches subcommands; each lives in
 * probe/cmd_*.c.  Results go to stdout, messages to stderr. */
#include "cli.h"

#include <gsl/gsl_errno.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"info", cmd_info, "what a model file holds: architecture, sizes, tensors, parameter shares"},
    {"activations", cmd_activations, "key activations of FFN neurons for each prompt token"},
    {"values", cmd_values, "value vectors in vocabulary space: tokens each neuron promotes"},
    {"generate", cmd_generate, "continue a prompt (greedy)"},
    {"tokenize", cmd_tokenize, "text to token ids with the model's own tokenizer"},
    {"triggers", cmd_triggers,
     "top-activating corpus examples per neuron, key-value agreement, stats"},
    {"trace", cmd_trace,
     "how a prediction is built: lens, sub-updates, attribution, interventions"},
    {"notebook", cmd_notebook, "a Jupyter notebook that loads a result file and plots it"},
    {"plot", cmd_plot, "the main figure of a result file as PNG or SVG (gnuplot)"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: probe COMMAND [options]   (probe COMMAND --help for details)\n\n"
                 "Reads transformer feed-forward layers as key-value memories.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(
        out,
        "\nLayers and neurons are numbered from 0, as in Hugging Face and TransformerLens.\n"
        "Without --model, the stories260K model from $PROBE_SHARED (default ../shared) is used.\n"
        "\nglobal options (any command, anywhere on the line):\n"
        "  --max-tokens N     most tokens one text (prompt, corpus document, JSONL line) may\n"
        "                     become; texts over 64 N bytes are refused unread (default 1000000,\n"
        "                     0 = no limit)\n"
        "  --max-memory SIZE  cap the heap (e.g. 512M, 4G; default none): a run that needs more\n"
        "                     stops with \"out of memory\" instead of exhausting the machine\n");
}

/* libgomp reads OMP_WAIT_POLICY once, as it loads, before main.  Its default
 * lets the threads of a finished parallel region spin for a while, and here
 * they spin against OpenBLAS's own threads, which run the matrix product that
 * follows each region.  Measured (2 cores, GPT-2-small-shaped model, 2
 * threads, triggers): default 505 tok/s recording, 623 forward only; passive
 * 588 and 679; no difference for values or a bare forward pass.  So, unless
 * the user has chosen a policy, probe runs itself again with "passive" (the
 * process keeps its pid, files and limits).  Setting OMP_WAIT_POLICY to any
 * value skips this, e.g. under a debugger or valgrind. */
static void prefer_passive_wait(char **argv) {
    if (getenv("OMP_WAIT_POLICY")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc?): carry on with the default policy. */
}

int main(int argc, char **argv) {
    prefer_passive_wait(argv);
    /* Library errors become messages, never aborts or automatic prints. */
    gsl_set_error_handler_off();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    size_t k = 0;
    for (int i = 0; i < argc && k < sizeof cli_command_line - 1; i++)
        k += (size_t)snprintf(cli_command_line + k, sizeof cli_command_line - k, i ? " %s" : "%s",
                              argv[i]);
    if (cli_global_opts(&argc, argv)) return EXIT_USAGE;
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
