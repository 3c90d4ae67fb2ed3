/* probe notebook: a Jupyter notebook that loads a result file and plots it.
 * The work is in notebooks-export/ (result.h, notebook.h). */
#include "cli.h"

#include "core/err.h"
#include "notebooks-export/notebook.h"

#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf(
        "usage: probe notebook RESULT.h5|RESULT.csv [--out FILE.ipynb]\n"
        "\n"
        "Writes a Jupyter notebook (nbformat 4) that loads RESULT with h5py or pandas and plots\n"
        "it.  Which analysis made RESULT is read from the file (HDF5: its probe_kind attribute;\n"
        "CSV: its header row); the cells fit that analysis:\n"
        "  activations  tokens x top neurons heatmap per layer, distribution of key activations\n"
        "               per layer, the top neurons per token as a table\n"
        "  values       top/bottom promoted tokens of chosen neurons, value norms per layer\n"
        "               (--promotes files: the neurons that promote the token most)\n"
        "  trace        logit lens of the target before and after each FFN, top sub-updates\n"
        "               per layer, interventions before/after\n"
        "  triggers     per-layer key-value agreement (table and plot), trigger examples with\n"
        "               the trigger token highlighted, activation statistics\n"
        "The first cell names the model, prompt and command (HDF5 only: CSV records none) and\n"
        "the packages the notebook needs: numpy, pandas, h5py, matplotlib.  A triggers CSV\n"
        "brings its .stats/.hist/.agreement.csv siblings along.  The templates are compiled\n"
        "into probe (notebooks-export/templates/), so this works from any directory.\n"
        "\n"
        "  --out FILE.ipynb   where to write (default: RESULT with .ipynb for its extension);\n"
        "                     the notebook finds RESULT relative to its own folder first,\n"
        "                     then at its absolute path\n"
        "\n"
        "example:\n"
        "  probe activations --layer all --prompt \"The Eiffel Tower is in\" --out acts.h5\n"
        "  probe notebook acts.h5 --out acts.ipynb\n"
        "  jupyter nbconvert --to html --execute acts.ipynb\n");
}

int cmd_notebook(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *v;
    int r;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            help();
            return EXIT_OK;
        } else if ((r = cli_opt(argc, argv, &i, "--out", &v))) {
            if (r < 0) return EXIT_USAGE;
            out = v;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage("notebook", "unknown option '%s'", argv[i]);
        } else if (in) {
            return cli_usage("notebook", "one result file at a time ('%s' and '%s')", in, argv[i]);
        } else {
            in = argv[i];
        }
    }
    if (!in) return cli_usage("notebook", "give the result file: probe notebook RESULT.h5");
    size_t n = out ? strlen(out) : 0;
    if (out && (n < 7 || strcmp(out + n - 6, ".ipynb")))
        return cli_usage("notebook", "--out must end in .ipynb: '%s'", out);
    res_info_t res;
    if (res_identify(in, &res)) return cli_fail_err();
    char *dflt = out ? NULL : cli_swap_ext(in, ".ipynb");
    if (!out && !dflt) {
        res_info_free(&res);
        return cli_fail("out of memory");
    }
    const char *dst = out ? out : dflt;
    int rc = EXIT_OK, cells = 0;
    if (!strcmp(dst, in))
        rc = cli_fail("%s: the notebook would overwrite the result", dst);
    else if (nb_write(&res, dst, &cells))
        rc = cli_fail_err();
    else
        fprintf(stderr,
                "probe: wrote %s (%s, %d cells); run it with: jupyter nbconvert --to html "
                "--execute %s\n",
                dst, res.kind_name, cells, dst);
    free(dflt);
    res_info_free(&res);
    return rc;
}
