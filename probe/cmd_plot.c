/* probe plot: the main figure of a result file as PNG or SVG, drawn by
 * gnuplot (notebooks-export/plot.h) — for people who want the picture, not a
 * notebook. */
#include "cli.h"

#include "core/err.h"
#include "notebooks-export/plot.h"

#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: probe plot RESULT.h5|RESULT.csv [--out FIG.png|FIG.svg] [options]\n"
           "\n"
           "Draws the main figure of the analysis that made RESULT (read from the file, as\n"
           "probe notebook does) with gnuplot (Debian: gnuplot-nox):\n"
           "  activations  tokens x top neurons heatmap, one panel per layer (at most 6: the\n"
           "               layers with the largest |activation|; a CSV holds only the top K per\n"
           "               token: other cells stay blank)\n"
           "  values       top (green) and bottom (red) tokens of up to 4 neurons, by default the\n"
           "               ones whose projection peaks highest (max_logit); --promotes files: the\n"
           "               20 neurons that promote the token most\n"
           "  trace        logit lens: the target's probability and rank before and after each\n"
           "               FFN, base and intervened runs (.h5); a trace CSV: the listed\n"
           "               sub-updates' summed contribution per layer\n"
           "  triggers     key-value agreement per layer against chance, and the next token's\n"
           "               rank (.h5, or FILE.csv with FILE.agreement.csv beside it)\n"
           "\n"
           "  --out FIG          .png (pngcairo) or .svg (default: RESULT with .png)\n"
           "  --prompt-id I      activations: the prompt to draw (default 0)\n"
           "  --layer L          activations: one layer only (default: every stored layer)\n"
           "  --top K            activations: neurons per panel (default 12); values: tokens per\n"
           "                     list (default 10); at most 64\n"
           "  --neuron L:N       values: a neuron to draw (repeatable, at most 8)\n"
           "  --position P       trace: the traced position (default: the last traced)\n"
           "  --size WxH         pixels (default: fits the panels)\n"
           "  --script           print the gnuplot script instead of running it\n"
           "\n"
           "examples:\n"
           "  probe plot acts.h5 --out acts.svg\n"
           "  probe plot values.h5 --neuron 3:42 --neuron 4:7 --out v.png\n"
           "  probe plot trace.h5 --out lens.png\n");
}

int cmd_plot(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *v;
    int r, script_only = 0;
    plot_opts_t o;
    plot_opts_default(&o);
    for (int i = 1; i < argc; i++) {
        long x;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            help();
            return EXIT_OK;
        } else if ((r = cli_opt(argc, argv, &i, "--out", &v))) {
            if (r < 0) return EXIT_USAGE;
            out = v;
        } else if ((r = cli_opt(argc, argv, &i, "--prompt-id", &v))) {
            if (r < 0 || cli_parse_int(v, 0, 1 << 30, &x))
                return cli_usage("plot", "--prompt-id wants a number >= 0");
            o.prompt_id = (int)x;
        } else if ((r = cli_opt(argc, argv, &i, "--layer", &v))) {
            if (r < 0 || cli_parse_int(v, 0, 1 << 20, &x))
                return cli_usage("plot", "--layer wants a layer number >= 0");
            o.layer = (int)x;
        } else if ((r = cli_opt(argc, argv, &i, "--top", &v))) {
            if (r < 0 || cli_parse_int(v, 1, 64, &x))
                return cli_usage("plot", "--top wants a number from 1 to 64");
            o.top = (int)x;
        } else if ((r = cli_opt(argc, argv, &i, "--position", &v))) {
            if (r < 0 || cli_parse_int(v, 0, 1 << 30, &x))
                return cli_usage("plot", "--position wants a number >= 0");
            o.position = (int)x;
        } else if ((r = cli_opt(argc, argv, &i, "--neuron", &v))) {
            long L, N;
            const char *c = r < 0 ? NULL : strchr(v, ':');
            char lb[32];
            if (!c || (size_t)(c - v) >= sizeof lb) return cli_usage("plot", "--neuron wants L:N");
            memcpy(lb, v, (size_t)(c - v));
            lb[c - v] = '\0';
            if (cli_parse_int(lb, 0, 1 << 20, &L) || cli_parse_int(c + 1, 0, 1 << 30, &N))
                return cli_usage("plot", "--neuron wants L:N with numbers >= 0: '%s'", v);
            if (o.n_neurons == PLOT_MAX_NEURONS)
                return cli_usage("plot", "at most %d --neuron", PLOT_MAX_NEURONS);
            o.neuron_layer[o.n_neurons] = (int)L;
            o.neuron_idx[o.n_neurons++] = (int)N;
        } else if ((r = cli_opt(argc, argv, &i, "--size", &v))) {
            long w, h;
            const char *xp = r < 0 ? NULL : strchr(v, 'x');
            char wb[16];
            if (!xp || (size_t)(xp - v) >= sizeof wb) return cli_usage("plot", "--size wants WxH");
            memcpy(wb, v, (size_t)(xp - v));
            wb[xp - v] = '\0';
            if (cli_parse_int(wb, 100, 20000, &w) || cli_parse_int(xp + 1, 100, 20000, &h))
                return cli_usage("plot", "--size wants WxH, each from 100 to 20000: '%s'", v);
            o.width = (int)w;
            o.height = (int)h;
        } else if (cli_flag(argv, i, "--script")) {
            script_only = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage("plot", "unknown option '%s'", argv[i]);
        } else if (in) {
            return cli_usage("plot", "one result file at a time ('%s' and '%s')", in, argv[i]);
        } else {
            in = argv[i];
        }
    }
    if (!in) return cli_usage("plot", "give the result file: probe plot RESULT.h5 --out fig.png");
    if (out) {
        size_t n = strlen(out);
        if (n < 5 || (strcmp(out + n - 4, ".png") && strcmp(out + n - 4, ".svg")))
            return cli_usage("plot", "--out must end in .png or .svg: '%s'", out);
    }
    res_info_t res;
    if (res_identify(in, &res)) return cli_fail_err();
    int rc = EXIT_OK;
    const char *why = NULL;
    if (o.n_neurons && (res.kind != RES_VALUES || res_has(&res, "promotes"))) why = "--neuron";
    if ((o.layer >= 0 || o.prompt_id) && res.kind != RES_ACTIVATIONS)
        why = o.layer >= 0 ? "--layer" : "--prompt-id";
    if (o.position >= 0 && res.kind != RES_TRACE) why = "--position";
    if (why) {
        rc = cli_usage("plot", "%s does not apply to a %s result", why, res.kind_name);
        res_info_free(&res);
        return rc;
    }
    char *dflt = out ? NULL : cli_swap_ext(in, ".png");
    const char *dst = out ? out : dflt;
    if (!dst)
        rc = cli_fail("out of memory");
    else if (script_only) {
        char *s = plot_script(&res, &o, dst);
        if (!s)
            rc = cli_fail_err();
        else
            fputs(s, stdout);
        free(s);
    } else if (plot_write(&res, &o, dst)) {
        rc = cli_fail_err();
    } else {
        fprintf(stderr, "probe: wrote %s (%s)\n", dst, res.kind_name);
    }
    free(dflt);
    res_info_free(&res);
    return rc;
}
