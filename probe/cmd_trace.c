/* probe trace: how one prompt's prediction is built by FFN sub-updates
 * (Geva et al. 2022), with LM-Debugger's interventions.  The readable report
 * goes to stdout; --out writes the whole trace as HDF5 or a tidy CSV.  The
 * computation lives in analysis/trace.c; this file parses flags and prints. */
#include "cli.h"

#include "analysis/acts.h"
#include "analysis/ofile.h"
#include "analysis/trace.h"
#include "core/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf(
        "usage: probe trace [--model PATH] [--tokenizer PATH] --prompt TEXT\n"
        "                   [--target TEXT | --target-id ID] [--position P | --all-positions]\n"
        "                   [--ablate L:N,..] [--scale L:N=x,..] [--set L:N=x,..] [--on L:N,..]\n"
        "                   [--ablate-top K] [--generate N] [--out FILE.h5|FILE.csv]\n"
        "\n"
        "Traces how the prediction at one position is built.  Each FFN output is a sum of\n"
        "sub-updates m_i * v_i (key activation times value vector) plus the bias b2; the trace\n"
        "shows, for every layer, the logit lens before and after the FFN, the FFN output's own\n"
        "projection, and the sub-updates that matter most, ranked two ways:\n"
        "  |m_i| * ||v_i||   the size of the sub-update (LM-Debugger's ranking)\n"
        "  contribution      its direct effect on the target's logit, through the final norm\n"
        "                    linearised at this position:\n"
        "                      contribution_i = m_i * ((u_t * g) . (v_i - mean(v_i)*[LayerNorm])) "
        "/ sigma\n"
        "                    u_t = the target's row of the unembedding, g = the final norm's "
        "gain,\n"
        "                    sigma = the final norm's scale for the actual final residual x_L at\n"
        "                    this position in the unmodified run (RMSNorm: sqrt(mean(x_L^2) + "
        "eps);\n"
        "                    LayerNorm: sqrt(var(x_L) + eps), and the mean is subtracted from "
        "v_i);\n"
        "                    the final norm's bias and the LM head's bias are left out.  Held at\n"
        "                    that sigma, the final norm is linear, so the contributions of all\n"
        "                    components of x_L add up exactly to the target logit minus those "
        "biases.\n"
        "                    (* is element-wise, . the dot product.)\n"
        "The FFN output's projection uses the same linearisation (the logit change it causes);\n"
        "the lens, in contrast, applies the full final norm to each residual separately.\n"
        "\n"
        "  --model PATH        llama2.c .bin, GGUF file or Hugging Face folder\n"
        "                      (default: stories260K from $PROBE_SHARED, else ../shared)\n"
        "  --tokenizer PATH    tokenizer.bin / tokenizer.json (default: the model's own)\n"
        "  --prompt TEXT       the prompt (required)\n"
        "  --target TEXT       the token to explain; its text must be exactly one token, leading\n"
        "                      space included (\" Paris\").  Default: the model's own top\n"
        "                      prediction at each traced position\n"
        "  --target-id ID      the target as a token id (see probe tokenize)\n"
        "  --position P        0-based prompt position to trace (default: the last)\n"
        "  --all-positions     trace every prompt position\n"
        "  --top K             tokens listed for the prediction and each lens (default 10)\n"
        "  --neurons N         sub-updates listed per layer and ranking (default 10)\n"
        "  --promoted K        tokens listed per sub-update (default 5): the tokens m_i*v_i\n"
        "                      promotes, i.e. the value's top tokens when m_i >= 0 and its\n"
        "                      bottom tokens when m_i < 0, scored by E diag(g) v_i\n"
        "  --layer SPEC        layers shown and written to CSV: N, N,M, N-M or all (default all)\n"
        "Interventions (on key activations m_i; 0-based layer:neuron; combinable):\n"
        "  --ablate L:N,..     set m_i to 0\n"
        "  --scale L:N=x,..    multiply m_i by x\n"
        "  --set L:N=x,..      set m_i to x\n"
        "  --on L:N,..         set m_i to the largest coefficient of its layer at that position\n"
        "                      (LM-Debugger's \"on\")\n"
        "  --ablate-top K      ablate the K neurons (all layers) with the largest contributions\n"
        "                      to the target in the unmodified run (one traced position only)\n"
        "  --intervene-at W    traced (default: the traced positions) or all (every prompt\n"
        "                      position); generated positions are always intervened on\n"
        "The prompt is re-run with the interventions and the prediction is shown beside the\n"
        "unmodified one.\n"
        "  --generate N        greedy continuation of N tokens, unmodified and (with\n"
        "                      interventions) intervened, side by side (default 0)\n"
        "  --out FILE.h5       the whole trace: lenses, every neuron's m_i, contribution, value\n"
        "                      norm, the listed neurons and their tokens (docs/FORMAT.md)\n"
        "  --out FILE.csv      tidy table: run,position,target_id,target,ranking,layer,neuron,\n"
        "                      activation,value_norm,contribution,rank,top_tokens,gate_act,up\n"
        "                      (top_tokens is a JSON list of strings)\n"
        "  --quiet             no report on stdout (with --out)\n"
        "  --no-bos            do not prepend BOS (default: the tokenizer's own rule)\n"
        "  --threads N         threads for BLAS and OpenMP (default: all cores)\n"
        "Gated (SwiGLU) FFNs: m_i = act(gate_i.x) * (up_i.x); both factors are shown with their\n"
        "signs, since a coefficient is negative when exactly one of them is.  Ties rank the lower\n"
        "index first.\n"
        "\n"
        "examples:\n"
        "  probe trace --model M --prompt \"The Eiffel Tower is in\" --target \" Paris\" --top 10\n"
        "  probe trace --model M --prompt \"The Eiffel Tower is in\" --target \" Paris\" \\\n"
        "              --ablate 12:3071,12:88 --generate 10\n"
        "  probe trace --prompt \"Lily wanted to\" --ablate-top 20 --out trace.h5\n");
}

/* ---- Report --------------------------------------------------------------------------------- */

static const char *disp(const model_t *m, int id, char *buf, size_t n) {
    char tb[512];
    snprintf(buf, n, "\"%s\"", tok_display(m->tok, id, tb, sizeof tb));
    return buf;
}

static void print_top(const model_t *m, const int32_t *ids, const float *v, int k, int logits) {
    char b[600];
    for (int j = 0; j < k; j++)
        printf(logits ? "%s %s %+.3f" : "%s %s %.4f", j ? "," : "", disp(m, ids[j], b, sizeof b),
               v[j]);
}

/* Token texts as tables show them (newlines as \n), concatenated. */
static void print_continuation(const model_t *m, const int32_t *ids, int n, int asked) {
    putchar('"');
    for (int i = 0; i < n; i++) {
        char tb[512];
        fputs(tok_display(m->tok, ids[i], tb, sizeof tb), stdout);
    }
    putchar('"');
    if (n < asked) printf(" (stopped: end of text)");
}

/* A probability: 4 decimals, or 3 significant digits when tiny. */
static const char *fmt_p(double p, char *buf, size_t n) {
    snprintf(buf, n, p >= 1e-3 || p == 0 ? "%.4f" : "%.3g", p);
    return buf;
}

static void print_neurons(const trace_t *t, const trace_pos_t *p, int l, int by_contrib) {
    const model_t *m = t->m;
    int kn = t->o.k_neurons, kp = t->o.k_promoted, ff = t->n_ff;
    const int32_t *ids = (by_contrib ? p->by_contrib : p->by_norm) + (size_t)l * kn;
    const int32_t *pr = by_contrib ? p->promo_contrib : p->promo_norm;
    char b[600];
    printf("  top %d sub-updates by %s\n", kn,
           by_contrib ? "contribution to the target logit" : "|m|*||v||");
    printf("    rank  neuron          m");
    if (t->gated) printf("   act(gate)          up  signs");
    printf("     ||v||   |m|*||v||  contribution  promotes\n");
    for (int j = 0; j < kn; j++) {
        int i = ids[j];
        size_t o = (size_t)l * ff + i;
        /* + 0.0f: a zero that underflowed from a negative prints as 0, not -0. */
        printf("    %4d  %6d  %+9.4f", j, i, p->key[o] + 0.0f);
        if (t->gated)
            printf("  %+10.4f  %+10.4f  g%cu%c", p->gate_act[o], p->up[o],
                   p->gate_act[o] < 0 ? '-' : '+', p->up[o] < 0 ? '-' : '+');
        printf("  %8.4f  %10.4f  %+12.4f ", t->value_norm[o], fabsf(p->key[o]) * t->value_norm[o],
               p->contrib[o] + 0.0f);
        for (int q = 0; q < kp; q++)
            printf(" %s", disp(m, pr[((size_t)l * kn + j) * kp + q], b, sizeof b));
        printf("\n");
    }
}

static void print_position(const trace_t *t, int s, const int *layers, int n_layers,
                           int target_given) {
    const model_t *m = t->m;
    const trace_pos_t *p = &t->base.pos[s];
    int kt = t->o.k_tokens;
    char b[600], b2[600], pb[32], pb2[32];
    printf("\n== position %d %s -> target %s (id %d%s)\n", p->pos,
           disp(m, t->tokens[p->pos], b, sizeof b), disp(m, p->target, b2, sizeof b2), p->target,
           target_given ? "" : ", the model's top prediction");
    printf("prediction: target rank %d, p %s, logit %.4f\n  top %d:", p->target_rank,
           fmt_p(p->target_prob, pb, sizeof pb), p->target_logit, kt);
    print_top(m, p->top_ids, p->top_probs, kt, 0);
    printf("\nlinearised final norm: sigma %.6g (contributions are logit changes of the target)\n",
           p->sigma);
    for (int li = 0; li < n_layers; li++) {
        int l = layers[li];
        printf("\nlayer %d\n", l);
        for (int w = 0; w < 2; w++) {
            int r = 2 * l + w;
            printf("  lens %s FFN: target rank %d, p %s  top:", w ? "after " : "before",
                   p->lens_target_rank[r], fmt_p(p->lens_target_prob[r], pb, sizeof pb));
            print_top(m, p->lens_top_ids + (size_t)r * kt, p->lens_top_probs + (size_t)r * kt, kt,
                      0);
            printf("\n");
        }
        printf("  FFN output: target %+.4f logit  top:", p->ffn_target_logit[l]);
        print_top(m, p->ffn_top_ids + (size_t)l * kt, p->ffn_top_logits + (size_t)l * kt, kt, 1);
        printf("\n");
        print_neurons(t, p, l, 0);
        print_neurons(t, p, l, 1);
    }
    (void)pb2;
}

static void print_interventions(const trace_t *t, int s, const int *layers, int n_layers) {
    const model_t *m = t->m;
    const trace_pos_t *a = &t->base.pos[s], *z = &t->iv.pos[s];
    int kt = t->o.k_tokens, ff = t->n_ff;
    char b[600], b2[600], pb[32], pb2[32];
    printf("\n== interventions at position %d (%s)\n", a->pos,
           t->o.intervene_all ? "applied at every position" : "applied at the traced positions");
    printf("    neuron        kind      value    m before     m after   contrib before    "
           "contrib after\n");
    for (int k = 0; k < t->n_iv; k++) {
        const trace_iv_t *iv = &t->ivs[k];
        size_t o = (size_t)iv->layer * ff + iv->neuron;
        char nb[32], vb[32];
        snprintf(nb, sizeof nb, "%d:%d", iv->layer, iv->neuron);
        if (iv->kind == TRACE_IV_SCALE || iv->kind == TRACE_IV_SET)
            snprintf(vb, sizeof vb, "%g", iv->value);
        else
            snprintf(vb, sizeof vb, "-");
        /* + 0.0f: an ablated coefficient times a negative weight prints as 0, not -0. */
        printf("  %10s  %8s  %9s  %+10.4f  %+10.4f  %+14.4f  %+14.4f\n", nb,
               trace_iv_kind_name(iv->kind), vb, a->key[o] + 0.0f, z->key[o] + 0.0f,
               a->contrib[o] + 0.0f, z->contrib[o] + 0.0f);
    }
    printf("target %s: p %s -> %s (change %+.4g), rank %d -> %d, logit %.4f -> %.4f\n",
           disp(m, a->target, b, sizeof b), fmt_p(a->target_prob, pb, sizeof pb),
           fmt_p(z->target_prob, pb2, sizeof pb2), z->target_prob - a->target_prob, a->target_rank,
           z->target_rank, a->target_logit, z->target_logit);
    printf("  %4s  %-34s  %s\n", "rank", "unmodified", "intervened");
    for (int j = 0; j < kt; j++) {
        char c1[700], c2[700];
        snprintf(c1, sizeof c1, "%s %.4f", disp(m, a->top_ids[j], b, sizeof b), a->top_probs[j]);
        snprintf(c2, sizeof c2, "%s %.4f", disp(m, z->top_ids[j], b2, sizeof b2), z->top_probs[j]);
        printf("  %4d  %-34s  %s\n", j, c1, c2);
    }
    printf("  lens after each FFN, target p:  layer: unmodified -> intervened\n");
    for (int li = 0; li < n_layers; li++) {
        int l = layers[li];
        printf("    %3d: %s -> %s\n", l, fmt_p(a->lens_target_prob[2 * l + 1], pb, sizeof pb),
               fmt_p(z->lens_target_prob[2 * l + 1], pb2, sizeof pb2));
    }
}

static void print_report(const trace_t *t, const char *prompt, const int *layers, int n_layers,
                         int target_given) {
    const model_t *m = t->m;
    char b[600];
    printf("prompt \"%s\": %d tokens\n ", prompt, t->T);
    for (int i = 0; i < t->T; i++)
        printf(" %d:%s", i, disp(m, t->tokens[i], b, sizeof b));
    printf("\n%s, %d layers, %d neurons per layer (%s FFN)\n", arch_name(m->cfg.arch), t->n_layer,
           t->n_ff, t->gated ? "gated" : "classic");
    for (int s = 0; s < t->n_pos; s++) {
        print_position(t, s, layers, n_layers, target_given);
        if (t->iv.done) print_interventions(t, s, layers, n_layers);
    }
    if (t->o.n_generate > 0) {
        printf("\n== greedy continuation (%d tokens at most)\n  unmodified: ", t->o.n_generate);
        print_continuation(m, t->base.gen_ids, t->base.n_gen, t->o.n_generate);
        if (t->iv.done) {
            printf("\n  intervened: ");
            print_continuation(m, t->iv.gen_ids, t->iv.n_gen, t->o.n_generate);
        }
        printf("\n");
    }
}

/* ---- Command -------------------------------------------------------------------------------- */

typedef struct {
    trace_ivkind_t kind;
    const char *spec, *flag;
} ivspec_t;

int cmd_trace(int argc, char **argv) {
    const char *model = NULL, *tokenizer = NULL, *prompt = NULL, *target_text = NULL,
               *layer_spec = "all", *out = NULL, *v;
    long target_id = -1, position = -1, top = 10, neurons = 10, promoted = 5, ablate_top = 0,
         n_gen = 0, threads = 0;
    int all_pos = 0, quiet = 0, no_bos = 0, iv_all = 0, r, n_specs = 0;
    ivspec_t specs[256];
    static const char *C = "trace";
    for (int i = 1; i < argc; i++) {
        trace_ivkind_t kind = TRACE_IV_ABLATE;
        const char *flag = NULL;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            help();
            return EXIT_OK;
        } else if ((r = cli_opt(argc, argv, &i, "--model", &v))) {
            if (r < 0) return EXIT_USAGE;
            model = v;
        } else if ((r = cli_opt(argc, argv, &i, "--tokenizer", &v))) {
            if (r < 0) return EXIT_USAGE;
            tokenizer = v;
        } else if ((r = cli_opt(argc, argv, &i, "--prompt", &v))) {
            if (r < 0) return EXIT_USAGE;
            if (prompt) return cli_usage(C, "give one --prompt (trace follows one prompt)");
            prompt = v;
        } else if ((r = cli_opt(argc, argv, &i, "--target-id", &v))) {
            if (r < 0 || cli_parse_int(v, 0, 1L << 30, &target_id))
                return cli_usage(C, "--target-id wants a token id >= 0");
        } else if ((r = cli_opt(argc, argv, &i, "--target", &v))) {
            if (r < 0) return EXIT_USAGE;
            target_text = v;
        } else if ((r = cli_opt(argc, argv, &i, "--position", &v))) {
            if (r < 0 || cli_parse_int(v, 0, 1L << 30, &position))
                return cli_usage(C, "--position wants a 0-based position >= 0, got '%s'",
                                 r < 0 ? "" : v);
        } else if (cli_flag(argv, i, "--all-positions")) {
            all_pos = 1;
        } else if ((r = cli_opt(argc, argv, &i, "--top", &v))) {
            if (r < 0 || cli_parse_int(v, 1, 1 << 20, &top))
                return cli_usage(C, "--top wants a number >= 1");
        } else if ((r = cli_opt(argc, argv, &i, "--neurons", &v))) {
            if (r < 0 || cli_parse_int(v, 1, 1 << 20, &neurons))
                return cli_usage(C, "--neurons wants a number >= 1");
        } else if ((r = cli_opt(argc, argv, &i, "--promoted", &v))) {
            if (r < 0 || cli_parse_int(v, 0, 1 << 20, &promoted))
                return cli_usage(C, "--promoted wants a number >= 0");
        } else if ((r = cli_opt(argc, argv, &i, "--layer", &v))) {
            if (r < 0) return EXIT_USAGE;
            layer_spec = v;
        } else if ((r = cli_opt(argc, argv, &i, "--ablate-top", &v))) {
            if (r < 0 || cli_parse_int(v, 1, 1L << 30, &ablate_top))
                return cli_usage(C, "--ablate-top wants a number of neurons >= 1");
        } else if ((r = cli_opt(argc, argv, &i, "--ablate", &v))) {
            kind = TRACE_IV_ABLATE;
            flag = "--ablate";
        } else if ((r = cli_opt(argc, argv, &i, "--scale", &v))) {
            kind = TRACE_IV_SCALE;
            flag = "--scale";
        } else if ((r = cli_opt(argc, argv, &i, "--set", &v))) {
            kind = TRACE_IV_SET;
            flag = "--set";
        } else if ((r = cli_opt(argc, argv, &i, "--on", &v))) {
            kind = TRACE_IV_ON;
            flag = "--on";
        } else if ((r = cli_opt(argc, argv, &i, "--intervene-at", &v))) {
            if (r < 0 || (strcmp(v, "traced") && strcmp(v, "all")))
                return cli_usage(C, "--intervene-at is traced or all");
            iv_all = !strcmp(v, "all");
        } else if ((r = cli_opt(argc, argv, &i, "--generate", &v))) {
            if (r < 0 || cli_parse_int(v, 0, 1 << 20, &n_gen))
                return cli_usage(C, "--generate wants a number of tokens >= 0");
        } else if ((r = cli_opt(argc, argv, &i, "--out", &v))) {
            if (r < 0) return EXIT_USAGE;
            out = v;
        } else if ((r = cli_opt(argc, argv, &i, "--threads", &v))) {
            if (r < 0 || cli_parse_int(v, 0, 1024, &threads))
                return cli_usage(C, "--threads wants a number");
        } else if (cli_flag(argv, i, "--quiet")) {
            quiet = 1;
        } else if (cli_flag(argv, i, "--no-bos")) {
            no_bos = 1;
        } else {
            return cli_usage(C, "unknown option '%s'", argv[i]);
        }
        if (flag && r) { /* an intervention flag matched */
            if (r < 0) return EXIT_USAGE;
            if (n_specs == (int)(sizeof specs / sizeof *specs))
                return cli_usage(C, "too many intervention flags: join them with commas");
            specs[n_specs++] = (ivspec_t){kind, v, flag};
        }
    }
    if (!prompt) return cli_usage(C, "give a prompt with --prompt TEXT");
    if (target_text && target_id >= 0)
        return cli_usage(C, "give --target or --target-id, not both");
    if (all_pos && position >= 0)
        return cli_usage(C, "give --position or --all-positions, not both");
    if (ablate_top && all_pos)
        return cli_usage(C, "--ablate-top needs a single traced position (not --all-positions)");
    if (quiet && !out) return cli_usage(C, "--quiet without --out would produce nothing");
    int kind = 0; /* 0 none, 1 h5, 2 csv */
    if (out) {
        size_t n = strlen(out);
        if ((n > 3 && !strcmp(out + n - 3, ".h5")) || (n > 5 && !strcmp(out + n - 5, ".hdf5")))
            kind = 1;
        else if (n > 4 && !strcmp(out + n - 4, ".csv"))
            kind = 2;
        else
            return cli_usage(C, "--out must end in .h5, .hdf5 or .csv: '%s'", out);
    }
    if (!*prompt) return cli_fail("the prompt is empty");
    cli_set_threads((int)threads);
    model_t *m = cli_open_model(model, tokenizer);
    if (!m) return EXIT_FAIL;
    int rc = EXIT_FAIL, *ids = NULL, n_ids = 0, *layers = NULL, n_layers = 0, *positions = NULL,
        n_pos = 0, n_iv = 0;
    trace_iv_t *ivs = NULL;
    trace_t *t = NULL;
    ofile_t *of = NULL;
    FILE *csv = NULL;
    const mcfg_t *c = &m->cfg;
    if (!m->tok) {
        cli_fail("%s: no tokenizer: pass --tokenizer", m->path);
        goto done;
    }
    if (acts_parse_layers(layer_spec, c->n_layer, &layers, &n_layers)) {
        cli_fail("--layer: %s", err_msg());
        goto done;
    }
    int target = -1;
    if (target_text && trace_resolve_target(m->tok, target_text, &target)) {
        cli_fail_err();
        goto done;
    }
    if (target_id >= 0) {
        if (target_id >= c->vocab) {
            cli_fail("--target-id %ld is outside the vocabulary (0..%d)", target_id, c->vocab - 1);
            goto done;
        }
        target = (int)target_id;
    }
    for (int k = 0; k < n_specs; k++)
        if (trace_parse_ivs(specs[k].spec, specs[k].kind, c->n_layer, c->n_ff, &ivs, &n_iv)) {
            cli_fail("%s: %s", specs[k].flag, err_msg());
            goto done;
        }
    if (trace_check_ivs(ivs, n_iv)) {
        cli_fail_err();
        goto done;
    }
    int flags = (m->tok->add_bos && !no_bos) ? TOK_ADD_BOS : 0;
    if (tok_encode(m->tok, prompt, strlen(prompt), flags, &ids, &n_ids)) {
        cli_fail("prompt: %s", err_msg());
        goto done;
    }
    if (n_ids == 0) {
        cli_fail("the prompt has no tokens");
        goto done;
    }
    if (n_ids > c->max_seq) {
        cli_fail("the prompt has %d tokens, more than the model's context of %d", n_ids,
                 c->max_seq);
        goto done;
    }
    positions = malloc((size_t)n_ids * sizeof *positions);
    if (!positions) {
        cli_fail("out of memory");
        goto done;
    }
    if (all_pos) {
        for (int i = 0; i < n_ids; i++)
            positions[n_pos++] = i;
    } else if (position >= 0) {
        if (position >= n_ids) {
            cli_fail("position %ld is out of range: the prompt has %d tokens (positions 0..%d)",
                     position, n_ids, n_ids - 1);
            goto done;
        }
        positions[n_pos++] = (int)position;
    } else {
        positions[n_pos++] = n_ids - 1;
    }
    if (kind && !(of = ofile_begin(out))) {
        cli_fail_err();
        goto done;
    }
    trace_opts_t o = {.k_tokens = (int)top,
                      .k_neurons = (int)neurons,
                      .k_promoted = (int)promoted,
                      .n_generate = (int)n_gen,
                      .intervene_all = iv_all};
    if (!(t = trace_new(m, ids, n_ids, positions, n_pos, &o)) || trace_run_base(t, target)) {
        cli_fail_err();
        goto done;
    }
    if (ablate_top) {
        int before = n_iv;
        if (trace_top_ablations(t, (int)ablate_top, &ivs, &n_iv)) {
            cli_fail("--ablate-top: %s", err_msg());
            goto done;
        }
        /* A neuron named explicitly and picked by --ablate-top: keep the explicit one. */
        int w = before;
        for (int k = before; k < n_iv; k++) {
            int dup = 0;
            for (int j = 0; j < before; j++)
                dup |= ivs[j].layer == ivs[k].layer && ivs[j].neuron == ivs[k].neuron;
            if (!dup) ivs[w++] = ivs[k];
        }
        n_iv = w;
    }
    if (n_iv > 0 && trace_run_intervened(t, ivs, n_iv)) {
        cli_fail_err();
        goto done;
    }
    if (!quiet) print_report(t, prompt, layers, n_layers, target >= 0);
    if (kind == 1) {
        if (trace_write_h5(t, ofile_tmp_path(of), prompt, cli_command_line)) {
            cli_fail("%s: %s", out, err_msg());
            goto done;
        }
    } else if (kind == 2) {
        csv = fopen(ofile_tmp_path(of), "w");
        if (!csv) {
            cli_fail("%s: cannot write", out);
            goto done;
        }
        int bad = trace_write_csv(t, csv, layers, n_layers);
        bad |= fclose(csv) != 0;
        csv = NULL;
        if (bad) {
            cli_fail("%s: write error", out);
            goto done;
        }
    }
    if (of) {
        int e = ofile_commit(of);
        of = NULL;
        if (e) {
            cli_fail_err();
            goto done;
        }
        fprintf(stderr, "probe: wrote %s\n", out);
    }
    rc = EXIT_OK;
done:
    if (csv) fclose(csv);
    ofile_abort(of);
    trace_free(t);
    free(ivs);
    free(ids);
    free(layers);
    free(positions);
    model_close(m);
    return rc;
}
