/* probe values: FFN value vectors read in vocabulary space (Geva et al.
 * 2021, 2022) — the tokens each neuron promotes and suppresses, per neuron,
 * per layer or for the whole model, and the reverse search "which neurons
 * promote this token most".  Computation in analysis/values.c. */
#include "cli.h"

#include "analysis/acts.h"
#include "analysis/csvw.h"
#include "analysis/h5w.h"
#include "analysis/dist.h"
#include "analysis/ofile.h"
#include "analysis/values.h"
#include "core/err.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void help(void) {
    printf(
        "usage: probe values [--model PATH] [--tokenizer PATH] [--layer SPEC | --neuron L:I ...]\n"
        "                    [--top K] [--bottom K] [--norm none|gain|final] [--softmax]\n"
        "                    [--promotes TEXT | --token-id N] [--out FILE.h5|FILE.csv]\n"
        "\n"
        "Projects each FFN neuron's value vector v (its column of down_proj / ffn_down, its row\n"
        "of GPT-2's Conv1D c_proj) onto the vocabulary through the model's own unembedding E\n"
        "(lm_head, or the tied token embedding) and lists the tokens it promotes (top) and\n"
        "suppresses (bottom).  Scores are raw logits.\n"
        "\n"
        "  --model PATH      llama2.c .bin, GGUF file or Hugging Face folder\n"
        "                    (default: stories260K from $PROBE_SHARED, else ../shared)\n"
        "  --tokenizer PATH  tokenizer file (default: the model's own)\n"
        "  --layer SPEC      layers: N, N,M, N-M or all (default all); 0-based\n"
        "  --neuron L:I      one neuron, layer L, index I (0-based; repeatable);\n"
        "                    instead of --layer\n"
        "  --top K           top tokens per neuron (default 10); with --promotes: neurons listed\n"
        "  --bottom K        bottom (most suppressed) tokens per neuron (default 0)\n"
        "  --norm MODE       how the final norm enters (default none):\n"
        "                      none   s = E v              (LM-Debugger; Geva et al. 2022)\n"
        "                      gain   s = E diag(g) v      (final-norm gain folded in, as\n"
        "                                                   OpenAI's neuron tables and\n"
        "                                                   TransformerLens do)\n"
        "                      final  s = E norm(v)        (whole final norm: RMSNorm v/rms(v)*g,\n"
        "                                                   rms = sqrt(mean(v^2)+eps); LayerNorm\n"
        "                                                   (v-mean)/std*g+b; plus any\n"
        "                                                   lm_head bias)\n"
        "  --softmax         also probabilities softmax(s) over the vocabulary (Geva et al. 2021)\n"
        "  --promotes TEXT   reverse search: rank and score of this token (it must be exactly one\n"
        "                    token of the vocabulary) in every chosen neuron's projection;\n"
        "                    the table lists the --top neurons with the highest score for it\n"
        "  --token-id N      the same, by token id\n"
        "  --out FILE.h5     per layer (n_ff x k) ids and scores, summaries, the vocabulary\n"
        "  --out FILE.csv    tidy rows: layer,neuron,direction,rank,token_id,token,score,norm,\n"
        "                    value_norm,max_logit,entropy[,prob]  (--promotes: one row per\n"
        "                    neuron, highest score first:\n"
        "                    layer,neuron,token_id,token,score,rank,norm[,prob])\n"
        "  --block N         neurons per matrix product (default 1024, fewer for\n"
        "                    vocabularies over 64k tokens); working set = threads x N x vocab\n"
        "                    floats\n"
        "  --naive           slow reference kernel (double precision, full sort), for checking\n"
        "  --threads N       threads (default: all cores)\n"
        "\n"
        "Ranks are 0-based (rank 0 = top).  Ties rank the lower token id first, in top and bottom\n"
        "lists alike; --promotes ranks exactly: tokens with a higher score, plus tokens with an\n"
        "equal score and a lower id.  Listed tokens are ordered by exact (double) scores, so\n"
        "lists equal a float64 brute force and do not depend on --block or --threads.\n"
        "Per neuron: value_norm = |v| before any norm mode, max_logit = the highest score,\n"
        "entropy = entropy (nats) of softmax(s) over the whole vocabulary (low: the neuron\n"
        "speaks for few tokens).  Schema: docs/FORMAT.md.\n"
        "Under mpirun or srun each layer's neurons are divided among the ranks; rank 0\n"
        "gathers and writes (the same output as one process).\n"
        "\n"
        "examples:\n"
        "  probe values --model M --layer 12 --top 20 --out values_l12.csv\n"
        "  probe values --model M --layer all --top 30 --bottom 30 --out values.h5\n"
        "  probe values --model M --neuron 12:3071 --neuron 5:88\n"
        "  probe values --model M --promotes \" Paris\" --top 50\n");
}

typedef struct {
    int layer, neuron;
} nref_t;

/* "L:I" -> layer and neuron (range-checked later against the model). */
static int parse_neuron(const char *s, nref_t *out) {
    const char *c = strchr(s, ':');
    if (!c || c == s) return -1;
    char lb[32];
    size_t n = (size_t)(c - s);
    if (n >= sizeof lb) return -1;
    memcpy(lb, s, n);
    lb[n] = '\0';
    long l, i;
    if (cli_parse_int(lb, 0, 1 << 30, &l) || cli_parse_int(c + 1, 0, 1 << 30, &i)) return -1;
    out->layer = (int)l;
    out->neuron = (int)i;
    return 0;
}

static const char *tok_text(const model_t *m, int id, char *buf, size_t cap) {
    if (m->tok) return tok_display(m->tok, id, buf, cap);
    snprintf(buf, cap, "<id %d>", id);
    return buf;
}

/* The id of TEXT if it is exactly one token; else an error showing how it
 * tokenizes. */
static int resolve_token(const model_t *m, const char *text, int *id) {
    if (!m->tok)
        return err_set("%s: no tokenizer to look up '%s': pass --tokenizer or use --token-id",
                       m->path, text);
    int t = tok_lookup_text(m->tok, text);
    if (t >= 0) {
        *id = t;
        return 0;
    }
    int *ids = NULL, n = 0;
    if (tok_encode(m->tok, text, strlen(text), 0, &ids, &n)) return -1;
    char msg[1024], tb[256];
    size_t k = 0;
    for (int i = 0; i < n && k < sizeof msg - 64; i++)
        k += (size_t)snprintf(msg + k, sizeof msg - k, "%s\"%s\" %d", i ? ", " : "",
                              tok_text(m, ids[i], tb, sizeof tb), ids[i]);
    if (k >= sizeof msg - 64) snprintf(msg + k, sizeof msg - k, ", ...");
    free(ids);
    return err_set("\"%s\" is not a single token in this vocabulary: it tokenizes as [%s]%s", text,
                   msg, n == 1 ? " (pass that token's exact text, or --token-id)" : "");
}

/* ---- writers -------------------------------------------------------------- */

/* Prints S left-aligned in WIDTH columns, counting UTF-8 characters. */
static void put_padded(const char *s, int width) {
    int w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        w += (*p & 0xC0) != 0x80;
    fputs(s, stdout);
    for (; w < width; w++)
        putchar(' ');
}

static void print_neuron(const model_t *m, const values_res_t *r, int j, const char *norm) {
    char a[256], b[256], qa[300], qb[300];
    int kt = r->k_top, kb = r->k_bottom, rows = kt > kb ? kt : kb;
    printf("layer %d neuron %d   |v| %.4g   max logit %.4f   entropy %.4f nats   (norm %s)\n",
           r->layer, r->neuron[j], r->value_norm[j], r->max_logit[j], r->entropy[j], norm);
    printf("  %4s  %-20s %7s %9s%s", "rank", kt ? "top" : "", kt ? "id" : "", kt ? "score" : "",
           r->top_probs && kt ? "     prob" : "");
    if (kb)
        printf("    %-20s %7s %9s%s", "bottom", "id", "score", r->bottom_probs ? "     prob" : "");
    printf("\n");
    for (int i = 0; i < rows; i++) {
        printf("  %4d", i);
        if (i < kt) {
            size_t o = (size_t)j * kt + i;
            snprintf(qa, sizeof qa, "\"%s\"", tok_text(m, r->top_ids[o], a, sizeof a));
            printf("  ");
            put_padded(qa, 20);
            printf(" %7d %9.4f", r->top_ids[o], r->top_scores[o]);
            if (r->top_probs) printf(" %8.2e", r->top_probs[o]);
        } else if (kt) {
            printf("  %-20s %7s %9s%s", "", "", "", r->top_probs ? "         " : "");
        }
        if (i < kb) {
            size_t o = (size_t)j * kb + i;
            snprintf(qb, sizeof qb, "\"%s\"", tok_text(m, r->bottom_ids[o], b, sizeof b));
            printf("    ");
            put_padded(qb, 20);
            printf(" %7d %9.4f", r->bottom_ids[o], r->bottom_scores[o]);
            if (r->bottom_probs) printf(" %8.2e", r->bottom_probs[o]);
        }
        printf("\n");
    }
    printf("\n");
}

static void csv_rows(csvw_t *w, const model_t *m, const values_res_t *r, const char *norm) {
    char tb[1024];
    for (int j = 0; j < r->n; j++)
        for (int dir = 0; dir < 2; dir++) {
            int k = dir ? r->k_bottom : r->k_top;
            const int32_t *ids = dir ? r->bottom_ids : r->top_ids;
            const float *sc = dir ? r->bottom_scores : r->top_scores;
            const float *pr = dir ? r->bottom_probs : r->top_probs;
            for (int i = 0; i < k; i++) {
                size_t o = (size_t)j * k + i;
                csvw_int(w, r->layer);
                csvw_int(w, r->neuron[j]);
                csvw_str(w, dir ? "bottom" : "top");
                csvw_int(w, i);
                csvw_int(w, ids[o]);
                csvw_str(w, m->tok ? tok_display(m->tok, ids[o], tb, sizeof tb) : "");
                csvw_float(w, sc[o]);
                csvw_str(w, norm);
                csvw_float(w, r->value_norm[j]);
                csvw_float(w, r->max_logit[j]);
                csvw_float(w, r->entropy[j]);
                if (pr) csvw_float(w, pr[o]);
                csvw_end_row(w);
            }
        }
}

static int h5_root(hid_t f, const model_t *m, const values_opts_t *o, const char *kind) {
    const mcfg_t *c = &m->cfg;
    if (h5w_attr_str(f, "probe_kind", kind) || h5w_attr_str(f, "probe_version", "0.1") ||
        h5w_attr_str(f, "model_path", m->path) || h5w_attr_str(f, "model_format", m->format) ||
        h5w_attr_str(f, "architecture", arch_name(c->arch)) ||
        h5w_attr_int(f, "n_layer", c->n_layer) || h5w_attr_int(f, "d_model", c->d_model) ||
        h5w_attr_int(f, "n_ff", c->n_ff) || h5w_attr_int(f, "vocab_size", c->vocab) ||
        h5w_attr_str(f, "norm_mode", values_norm_name(o->norm)) ||
        h5w_attr_str(f, "final_norm", c->norm == NORM_RMS ? "rmsnorm" : "layernorm") ||
        h5w_attr_double(f, "norm_eps", c->norm_eps) || h5w_attr_int(f, "k_top", o->k_top) ||
        h5w_attr_int(f, "k_bottom", o->k_bottom) || h5w_attr_int(f, "softmax", o->softmax) ||
        h5w_attr_str(f, "score", "logit") || h5w_attr_str(f, "rank_base", "0") ||
        h5w_attr_str(f, "tie_rule", "equal scores: lower token id first") ||
        h5w_attr_str(f, "unembedding", m->lm_head.w->name) ||
        h5w_attr_int(f, "tied_unembedding", m->tied) ||
        h5w_attr_str(f, "command", cli_command_line))
        return -1;
    if (m->tok) {
        int n = m->tok->n_vocab;
        char **t = calloc((size_t)n, sizeof *t), tb[1024];
        int bad = !t;
        for (int i = 0; !bad && i < n; i++)
            bad = !(t[i] = strdup(tok_display(m->tok, i, tb, sizeof tb)));
        if (!bad) bad = h5w_strs(f, "tokens", (const char *const *)t, n);
        for (int i = 0; t && i < n; i++)
            free(t[i]);
        free(t);
        if (bad) return err_set("cannot write the vocabulary table");
    }
    return 0;
}

static int h5_layer(hid_t f, const values_res_t *r) {
    char name[64];
    snprintf(name, sizeof name, "layer_%d", r->layer);
    hid_t g = h5w_group(f, name);
    if (g < 0) return -1;
    int n = r->n, kt = r->k_top, kb = r->k_bottom;
    int bad = h5w_i32(g, "neuron", r->neuron, n, 0) ||
              (kt && (h5w_i32(g, "top_ids", r->top_ids, n, kt) ||
                      h5w_f32(g, "top_scores", r->top_scores, n, kt) ||
                      (r->top_probs && h5w_f32(g, "top_probs", r->top_probs, n, kt)))) ||
              (kb && (h5w_i32(g, "bottom_ids", r->bottom_ids, n, kb) ||
                      h5w_f32(g, "bottom_scores", r->bottom_scores, n, kb) ||
                      (r->bottom_probs && h5w_f32(g, "bottom_probs", r->bottom_probs, n, kb)))) ||
              h5w_f32(g, "value_norm", r->value_norm, n, 0) ||
              h5w_f32(g, "max_logit", r->max_logit, n, 0) ||
              h5w_f32(g, "entropy", r->entropy, n, 0) || h5w_f32(g, "lse", r->lse, n, 0) ||
              (r->promote_rank &&
               (h5w_i32(g, "promote_rank", r->promote_rank, n, 0) ||
                h5w_f32(g, "promote_score", r->promote_score, n, 0) ||
                (r->promote_prob && h5w_f32(g, "promote_prob", r->promote_prob, n, 0))));
    H5Gclose(g);
    return bad ? -1 : 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- the command ------------------------------------------------------------ */

int cmd_values(int argc, char **argv) {
    const char *model = NULL, *tokenizer = NULL, *layer_spec = NULL, *out = NULL, *promotes = NULL,
               *v;
    long top = -1, bottom = 0, threads = 0, block = 0, token_id = -1;
    values_opts_t o = {VALUES_NORM_NONE, 10, 0, 0, -1, 0};
    int r, naive = 0, n_nref = 0, rc = EXIT_FAIL, synced = 0; /* synced: no MPI check is owed */
    nref_t *nrefs = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            help();
            free(nrefs);
            return EXIT_OK;
        } else if ((r = cli_opt(argc, argv, &i, "--model", &v))) {
            if (r < 0) goto usage;
            model = v;
        } else if ((r = cli_opt(argc, argv, &i, "--tokenizer", &v))) {
            if (r < 0) goto usage;
            tokenizer = v;
        } else if ((r = cli_opt(argc, argv, &i, "--layer", &v))) {
            if (r < 0) goto usage;
            layer_spec = v;
        } else if ((r = cli_opt(argc, argv, &i, "--neuron", &v))) {
            if (r < 0) goto usage;
            nref_t *p = realloc(nrefs, (size_t)(n_nref + 1) * sizeof *p);
            if (!p) {
                cli_fail("out of memory");
                goto done;
            }
            nrefs = p;
            if (parse_neuron(v, &nrefs[n_nref])) {
                rc = cli_usage("values", "--neuron wants LAYER:INDEX (0-based), got '%s'", v);
                goto done;
            }
            n_nref++;
        } else if ((r = cli_opt(argc, argv, &i, "--top", &v))) {
            if (r < 0 || cli_parse_int(v, 0, 1 << 24, &top)) {
                rc = cli_usage("values", "--top wants a number >= 0, got '%s'", r < 0 ? "" : v);
                goto done;
            }
        } else if ((r = cli_opt(argc, argv, &i, "--bottom", &v))) {
            if (r < 0 || cli_parse_int(v, 0, 1 << 24, &bottom)) {
                rc = cli_usage("values", "--bottom wants a number >= 0, got '%s'", r < 0 ? "" : v);
                goto done;
            }
        } else if ((r = cli_opt(argc, argv, &i, "--norm", &v))) {
            if (r < 0 || values_parse_norm(v, &o.norm)) {
                rc = cli_usage("values", "--norm is none, gain or final");
                goto done;
            }
        } else if ((r = cli_opt(argc, argv, &i, "--promotes", &v))) {
            if (r < 0) goto usage;
            if (!*v) {
                rc = cli_usage("values", "--promotes wants the text of one token");
                goto done;
            }
            promotes = v;
        } else if ((r = cli_opt(argc, argv, &i, "--token-id", &v))) {
            if (r < 0 || cli_parse_int(v, 0, 1 << 30, &token_id)) {
                rc = cli_usage("values", "--token-id wants a token id >= 0");
                goto done;
            }
        } else if ((r = cli_opt(argc, argv, &i, "--out", &v))) {
            if (r < 0) goto usage;
            out = v;
        } else if ((r = cli_opt(argc, argv, &i, "--block", &v))) {
            if (r < 0 || cli_parse_int(v, 1, 1 << 16, &block)) {
                rc = cli_usage("values", "--block wants a number of neurons >= 1");
                goto done;
            }
        } else if ((r = cli_opt(argc, argv, &i, "--threads", &v))) {
            if (r < 0 || cli_parse_int(v, 0, 1024, &threads)) {
                rc = cli_usage("values", "--threads wants a number");
                goto done;
            }
        } else if (cli_flag(argv, i, "--softmax")) {
            o.softmax = 1;
        } else if (cli_flag(argv, i, "--naive")) {
            naive = 1;
        } else {
            rc = cli_usage("values", "unknown option '%s'", argv[i]);
            goto done;
        }
    }
    int reverse = promotes || token_id >= 0;
    if (promotes && token_id >= 0) {
        rc = cli_usage("values", "give --promotes TEXT or --token-id N, not both");
        goto done;
    }
    if (layer_spec && n_nref) {
        rc = cli_usage("values", "give --layer or --neuron, not both");
        goto done;
    }
    int kind = 0; /* 0 table, 1 h5, 2 csv */
    if (out) {
        size_t n = strlen(out);
        if ((n > 3 && !strcmp(out + n - 3, ".h5")) || (n > 5 && !strcmp(out + n - 5, ".hdf5")))
            kind = 1;
        else if (n > 4 && !strcmp(out + n - 4, ".csv"))
            kind = 2;
        else {
            rc = cli_usage("values", "--out must end in .h5, .hdf5 or .csv: '%s'", out);
            goto done;
        }
    }
    /* Reverse search: --top counts neurons; each neuron keeps its top 5
     * tokens for the table's context. */
    long n_best = reverse ? (top < 0 ? 20 : top) : 0;
    if (!reverse) {
        o.k_top = top < 0 ? 10 : (int)top;
        o.k_bottom = (int)bottom;
        if (o.k_top == 0 && o.k_bottom == 0) {
            rc = cli_usage("values", "--top and --bottom are both 0: nothing to list");
            goto done;
        }
    } else {
        if (bottom) {
            rc = cli_usage("values", "--bottom has no meaning with --promotes");
            goto done;
        }
        o.k_top = 0;
        o.k_bottom = 0;
    }
    o.block = (int)block;
    /* Under mpirun/srun: neurons are split among the ranks; rank 0 writes. */
    if (dist_init(NULL, NULL)) {
        rc = cli_fail_err();
        goto done;
    }
    int ranks = dist_size(), rank = dist_rank();
    if (ranks > 1) snprintf(cli_who, sizeof cli_who, "probe: rank %d of %d", rank, ranks);
    cli_set_threads((int)threads);

    model_t *m = cli_open_model(model, tokenizer);
    if (!m) goto done;
    const mcfg_t *c = &m->cfg;
    int *layers = NULL, n_layers = 0;
    values_t *vc = NULL;
    values_res_t *res = NULL;
    int n_res = 0;
    ofile_t *of = NULL;
    FILE *csv = NULL;
    hid_t h5 = -1;
    csvw_t w;
    int *bi = NULL, *brow = NULL;
    char tb[256];
    /* Everything that can be wrong with the request is checked before any
     * output file exists. */
    if (!reverse && o.k_top > c->vocab) {
        cli_fail("--top %d is larger than the vocabulary (%d tokens)", o.k_top, c->vocab);
        goto done_model;
    }
    if (o.k_bottom > c->vocab) {
        cli_fail("--bottom %d is larger than the vocabulary (%d tokens)", o.k_bottom, c->vocab);
        goto done_model;
    }
    if (reverse) {
        if (promotes) {
            if (resolve_token(m, promotes, &o.promote_id)) {
                cli_fail_err();
                goto done_model;
            }
        } else if (token_id >= c->vocab) {
            cli_fail("--token-id %ld is out of range: the vocabulary has %d tokens (0..%d)",
                     token_id, c->vocab, c->vocab - 1);
            goto done_model;
        } else {
            o.promote_id = (int)token_id;
        }
        if (kind == 0) o.k_top = c->vocab < 5 ? c->vocab : 5;
    }
    if (n_nref) {
        for (int i = 0; i < n_nref; i++) {
            if (nrefs[i].layer >= c->n_layer) {
                cli_fail("--neuron %d:%d: layer %d is out of range: this model has layers 0..%d",
                         nrefs[i].layer, nrefs[i].neuron, nrefs[i].layer, c->n_layer - 1);
                goto done_model;
            }
            if (nrefs[i].neuron >= c->n_ff) {
                cli_fail(
                    "--neuron %d:%d: neuron %d is out of range: layer %d has %d neurons (0..%d)",
                    nrefs[i].layer, nrefs[i].neuron, nrefs[i].neuron, nrefs[i].layer, c->n_ff,
                    c->n_ff - 1);
                goto done_model;
            }
        }
        /* Layers in ascending order; neurons in the order given within each. */
        char *sel = calloc((size_t)c->n_layer, 1);
        layers = malloc((size_t)c->n_layer * sizeof *layers);
        if (!sel || !layers) {
            free(sel);
            cli_fail("out of memory");
            goto done_model;
        }
        for (int i = 0; i < n_nref; i++)
            sel[nrefs[i].layer] = 1;
        for (int l = 0; l < c->n_layer; l++)
            if (sel[l]) layers[n_layers++] = l;
        free(sel);
    } else if (acts_parse_layers(layer_spec ? layer_spec : "all", c->n_layer, &layers, &n_layers)) {
        cli_fail("--layer: %s", err_msg());
        goto done_model;
    }
    vc = values_new(m, &o);
    res = calloc((size_t)n_layers, sizeof *res);
    if (!vc || !res) {
        cli_fail("%s", vc ? "out of memory" : err_msg());
        goto done_model;
    }
    const char *norm = values_norm_name(o.norm);
    if (ranks > 1 && rank > 0) { /* a worker: its share of every layer; rank 0 writes */
        int bad = -1;
        if (!dist_all_ok(1, &bad)) {
            synced = 1;
            goto done_model;
        }
        if (!n_nref) dist_values_plan(vc, layers, n_layers, c->n_ff, naive);
        for (int s = 0; s < n_layers; s++) {
            int L = layers[s], n = 0, *sel = n_nref ? malloc((size_t)n_nref * sizeof *sel) : NULL;
            for (int i = 0; sel && i < n_nref; i++)
                if (nrefs[i].layer == L) sel[n++] = nrefs[i].neuron;
            if (!dist_all_ok(!n_nref || sel, NULL)) {
                free(sel);
                synced = 1;
                goto done_model;
            }
            int e = dist_values_layer(vc, L, sel, n, c->n_ff, naive, &res[s]);
            free(sel);
            if (e) goto done_model; /* rank 0 names the failing rank */
        }
        rc = dist_all_ok(1, NULL) ? EXIT_OK : EXIT_FAIL;
        synced = 1;
        goto done_model;
    }
    if (kind) {
        if (!(of = ofile_begin(out))) {
            cli_fail_err();
            goto done_model;
        }
        if (kind == 2) {
            if (!(csv = fopen(ofile_tmp_path(of), "w"))) {
                cli_fail("%s: cannot write", out);
                goto done_model;
            }
            csvw_init(&w, csv);
            if (reverse)
                csvw_header(&w, o.softmax ? "layer,neuron,token_id,token,score,rank,norm,prob"
                                          : "layer,neuron,token_id,token,score,rank,norm");
            else
                csvw_header(&w, o.softmax ? "layer,neuron,direction,rank,token_id,token,score,norm,"
                                            "value_norm,max_logit,entropy,prob"
                                          : "layer,neuron,direction,rank,token_id,token,score,norm,"
                                            "value_norm,max_logit,entropy");
        } else {
            h5 = H5Fcreate(ofile_tmp_path(of), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
            if (h5 < 0 || h5_root(h5, m, &o, reverse ? "values_promotes" : "values")) {
                cli_fail("%s: cannot write HDF5", out);
                goto done_model;
            }
            if (reverse &&
                (h5w_attr_int(h5, "promote_token_id", o.promote_id) ||
                 h5w_attr_str(h5, "promote_token", tok_text(m, o.promote_id, tb, sizeof tb)))) {
                cli_fail("%s: cannot write HDF5", out);
                goto done_model;
            }
        }
    }
    if (kind == 0 && !reverse)
        printf("# values of %s: norm %s, scores are logits%s; ranks 0-based, ties by lower id\n\n",
               m->path, norm, o.softmax ? " (prob = softmax over the vocabulary)" : "");
    if (ranks > 1) {
        int bad = -1;
        synced = !dist_all_ok(1, &bad);
        if (synced) {
            cli_fail("stopping: rank %d failed (see its message); no output written", bad);
            goto done_model;
        }
    }
    double t0 = now_s();
    if (ranks > 1 && !n_nref) dist_values_plan(vc, layers, n_layers, c->n_ff, naive);
    int64_t n_neurons = 0;
    int progress = kind && isatty(2);
    for (int s = 0; s < n_layers; s++) {
        int L = layers[s], n = 0, *sel = NULL;
        if (n_nref) {
            sel = malloc((size_t)n_nref * sizeof *sel);
            if (!sel) {
                cli_fail("out of memory");
                goto done_model;
            }
            for (int i = 0; i < n_nref; i++)
                if (nrefs[i].layer == L) sel[n++] = nrefs[i].neuron;
        }
        if (ranks > 1 && !dist_all_ok(1, NULL)) { /* workers go on only if rank 0 does */
            free(sel);
            synced = 1;
            goto done_model;
        }
        int e = dist_values_layer(vc, L, sel, n, c->n_ff, naive, &res[s]);
        free(sel);
        if (e) {
            cli_fail_err();
            goto done_model;
        }
        n_res = s + 1;
        n_neurons += res[s].n;
        if (!reverse) {
            if (kind == 0)
                for (int j = 0; j < res[s].n; j++)
                    print_neuron(m, &res[s], j, norm);
            else if (kind == 2)
                csv_rows(&w, m, &res[s], norm);
            else if (h5_layer(h5, &res[s])) {
                cli_fail("%s: %s", out, err_msg());
                goto done_model;
            }
            values_res_free(&res[s]); /* forward tables are written layer by layer */
        } else if (kind == 1 && h5_layer(h5, &res[s])) {
            cli_fail("%s: %s", out, err_msg());
            goto done_model;
        }
        if (progress)
            fprintf(stderr, "\rprobe: layer %d done (%d of %d, %.1f s)", L, s + 1, n_layers,
                    now_s() - t0);
    }
    if (progress) fputc('\n', stderr);
    if (ranks > 1) { /* the workers' last check: they are done */
        synced = 1;
        if (!dist_all_ok(1, NULL)) goto done_model;
    }
    double secs = now_s() - t0;
    if (reverse) {
        /* Every neuron for files, the best --top for the table. */
        int want = kind ? (int)n_neurons : (int)n_best;
        bi = malloc((size_t)(want > 0 ? want : 1) * sizeof *bi);
        brow = malloc((size_t)(want > 0 ? want : 1) * sizeof *brow);
        int got = bi && brow ? values_promote_top(res, n_res, want, bi, brow) : -1;
        if (got < 0) {
            cli_fail("%s", bi && brow ? err_msg() : "out of memory");
            goto done_model;
        }
        if (kind == 0) {
            printf(
                "# neurons whose value vectors promote \"%s\" (id %d) most: norm %s, %lld neurons "
                "in %d layers searched\n",
                tok_text(m, o.promote_id, tb, sizeof tb), o.promote_id, norm, (long long)n_neurons,
                n_layers);
            printf("# score = its logit in the neuron's projection; rank = its 0-based place in "
                   "that neuron's own top list (ties by lower id)\n");
            printf("%5s %5s %7s %9s %6s%s  %s\n", "order", "layer", "neuron", "score", "rank",
                   o.softmax ? "     prob" : "", "the neuron's top tokens");
            for (int i = 0; i < got; i++) {
                const values_res_t *q = &res[bi[i]];
                int j = brow[i];
                printf("%5d %5d %7d %9.4f %6d", i, q->layer, q->neuron[j], q->promote_score[j],
                       q->promote_rank[j]);
                if (q->promote_prob) printf(" %8.2e", q->promote_prob[j]);
                printf(" ");
                for (int t = 0; t < q->k_top; t++)
                    printf(" \"%s\"",
                           tok_text(m, q->top_ids[(size_t)j * q->k_top + t], tb, sizeof tb));
                printf("\n");
            }
        } else if (kind == 2) {
            for (int i = 0; i < got; i++) {
                const values_res_t *q = &res[bi[i]];
                int j = brow[i];
                csvw_int(&w, q->layer);
                csvw_int(&w, q->neuron[j]);
                csvw_int(&w, o.promote_id);
                csvw_str(&w, m->tok ? tok_display(m->tok, o.promote_id, tb, sizeof tb) : "");
                csvw_float(&w, q->promote_score[j]);
                csvw_int(&w, q->promote_rank[j]);
                csvw_str(&w, norm);
                if (q->promote_prob) csvw_float(&w, q->promote_prob[j]);
                csvw_end_row(&w);
            }
        } else {
            int32_t *ol = malloc((size_t)got * sizeof *ol + 1),
                    *on = malloc((size_t)got * sizeof *on + 1);
            int bad = !ol || !on;
            for (int i = 0; !bad && i < got; i++) {
                ol[i] = res[bi[i]].layer;
                on[i] = res[bi[i]].neuron[brow[i]];
            }
            bad = bad || h5w_i32(h5, "order_layer", ol, got, 0) ||
                  h5w_i32(h5, "order_neuron", on, got, 0);
            free(ol);
            free(on);
            if (bad) {
                cli_fail("%s: cannot write HDF5", out);
                goto done_model;
            }
        }
    }
    int wrote = of != NULL;
    if (cli_finish_output(out, &csv, kind == 2 && csvw_status(&w), &h5, &of)) goto done_model;
    if (wrote) {
        double fl = 2.0 * c->vocab * (double)c->d_model * (double)n_neurons;
        fprintf(stderr,
                "probe: wrote %s (%lld neurons, %d layers, norm %s; %.2f s, %.1f GFLOP/s, "
                "block %d, working set %.1f MiB)\n",
                out, (long long)n_neurons, n_layers, norm, secs, secs > 0 ? fl / secs * 1e-9 : 0.0,
                values_block(vc), values_work_bytes(vc) / 1048576.0);
    }
    rc = EXIT_OK;
done_model:
    if (csv) fclose(csv);
    if (h5 >= 0) H5Fclose(h5);
    ofile_abort(of);
    for (int s = 0; s < n_res; s++)
        values_res_free(&res[s]);
    free(res);
    free(bi);
    free(brow);
    values_free(vc);
    free(layers);
    model_close(m);
    goto done;
usage:
    rc = EXIT_USAGE;
done:
    if (dist_size() > 1 && !synced)
        dist_all_ok(0, NULL); /* failed: the others stop at their check */
    dist_finalize();
    free(nrefs);
    return rc;
}
