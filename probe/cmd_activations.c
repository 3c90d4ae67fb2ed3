/* probe activations: which FFN neurons fire on each prompt token, and how
 * strongly.  Table on stdout, full activations in HDF5, or a tidy CSV of the
 * top-K neurons per token. */
#include "cli.h"

#include "analysis/acts.h"
#include "analysis/csvw.h"
#include "analysis/h5w.h"
#include "analysis/ofile.h"
#include "core/err.h"
#include "core/fwd.h"
#include "core/mfile.h"

#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf(
        "usage: probe activations [--model PATH] [--tokenizer PATH] (--prompt TEXT | --prompt-file "
        "F)\n"
        "                         [--layer SPEC] [--top K] [--out FILE.h5|FILE.csv] [--logits]\n"
        "\n"
        "Runs each prompt through the model and records every FFN neuron's key activation m_i\n"
        "for every token: silu(gate_i.x)*(up_i.x) for gated (SwiGLU) FFNs, f(W1_i.x + b1_i) for\n"
        "classic ones -- the coefficient that multiplies neuron i's value vector.\n"
        "\n"
        "  --model PATH       llama2.c .bin, GGUF file or Hugging Face folder\n"
        "                     (default: stories260K from $PROBE_SHARED, else ../shared)\n"
        "  --tokenizer PATH   tokenizer.bin / tokenizer.json (default: the model's own)\n"
        "  --prompt TEXT      a prompt (repeatable)\n"
        "  --prompt-file F    prompts, one a line (blank lines skipped)\n"
        "  --layer SPEC       layers: N, N,M, N-M or all (default all).  Layers are 0-based,\n"
        "                     numbered as Hugging Face and TransformerLens number them.\n"
        "  --top K            neurons listed per token (default 10)\n"
        "  --rank-by MODE     value (default: largest activation first) or abs (largest |m_i|)\n"
        "  --out FILE.h5      full (tokens x neurons) key activations and gate pre-activations\n"
        "                     (and up projections for gated FFNs) per prompt and layer\n"
        "  --out FILE.csv     tidy table: prompt_id,position,token_id,token,layer,neuron,\n"
        "                     activation,rank (the top K per token; rank 0 = largest)\n"
        "  --logits           with .h5: also store the (tokens x vocab) logits\n"
        "  --no-bos           do not prepend BOS (default: the tokenizer's own rule)\n"
        "  --threads N        threads for BLAS and OpenMP (default: all cores)\n"
        "Ties rank the lower neuron index first.  Token texts show leading spaces; bytes that are\n"
        "not whole UTF-8 appear as <0xNN>, newlines as \\n.  Schema: docs/FORMAT.md.\n"
        "\n"
        "example: probe activations --layer 3 --top 10 \\\n"
        "           --prompt \"Once upon a time, there was a little girl named Lily\"\n");
}

typedef struct {
    char *text; /* owned */
    int *ids;   /* owned */
    int n;
} prompt_t;

static int add_prompt(prompt_t **ps, int *n, const char *text, size_t len) {
    prompt_t *p = realloc(*ps, (size_t)(*n + 1) * sizeof *p);
    if (!p) return err_set("out of memory");
    *ps = p;
    p[*n].text = malloc(len + 1);
    if (!p[*n].text) return err_set("out of memory");
    memcpy(p[*n].text, text, len);
    p[*n].text[len] = '\0';
    p[*n].ids = NULL;
    p[*n].n = 0;
    (*n)++;
    return 0;
}

static int read_prompt_file(const char *path, prompt_t **ps, int *n) {
    size_t len;
    char *buf = mfile_slurp(path, (size_t)1 << 30, &len);
    if (!buf) return -1;
    int before = *n;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && buf[j] != '\n')
            j++;
        size_t e = j;
        if (e > i && buf[e - 1] == '\r') e--;
        int blank = 1;
        for (size_t k = i; k < e; k++)
            if (buf[k] != ' ' && buf[k] != '\t') blank = 0;
        if (!blank && add_prompt(ps, n, buf + i, e - i)) {
            free(buf);
            return -1;
        }
        i = j + 1;
    }
    free(buf);
    if (*n == before) return err_set("%s: no prompts in the file", path);
    return 0;
}

static void print_table(const model_t *m, const acts_rec_t *r, const prompt_t *p, int pi,
                        int by_abs) {
    char tb[256];
    printf("prompt %d: \"%s\" (%d tokens)\n", pi, p->text, p->n);
    for (int s = 0; s < r->n_layers; s++) {
        printf("layer %d  top %d neurons by %s  (neuron:activation)\n", r->layers[s], r->k,
               by_abs ? "|activation|" : "activation");
        for (int t = 0; t < p->n; t++) {
            tok_display(m->tok, p->ids[t], tb, sizeof tb);
            char q[300];
            snprintf(q, sizeof q, "\"%s\"", tb);
            printf("  %4d  %-16s", t, q);
            size_t o = ((size_t)s * r->T_max + t) * r->k;
            for (int j = 0; j < r->k; j++)
                printf("  %d:%+.4f", r->top_idx[o + j], r->top_val[o + j]);
            printf("\n");
        }
    }
}

static void write_csv_rows(csvw_t *w, const model_t *m, const acts_rec_t *r, const prompt_t *p,
                           int pi) {
    char tb[1024];
    for (int t = 0; t < p->n; t++) {
        tok_display(m->tok, p->ids[t], tb, sizeof tb);
        for (int s = 0; s < r->n_layers; s++) {
            size_t o = ((size_t)s * r->T_max + t) * r->k;
            for (int j = 0; j < r->k; j++) {
                csvw_int(w, pi);
                csvw_int(w, t);
                csvw_int(w, p->ids[t]);
                csvw_str(w, tb);
                csvw_int(w, r->layers[s]);
                csvw_int(w, r->top_idx[o + j]);
                csvw_float(w, r->top_val[o + j]);
                csvw_int(w, j);
                csvw_end_row(w);
            }
        }
    }
}

static int write_h5_root(hid_t f, const model_t *m, const acts_rec_t *r, int n_prompts) {
    const mcfg_t *c = &m->cfg;
    if (h5w_attr_str(f, "probe_kind", "activations") || h5w_attr_str(f, "probe_version", "0.1") ||
        h5w_attr_str(f, "model_path", m->path) || h5w_attr_str(f, "model_format", m->format) ||
        h5w_attr_str(f, "architecture", arch_name(c->arch)) ||
        h5w_attr_int(f, "n_layer", c->n_layer) || h5w_attr_int(f, "d_model", c->d_model) ||
        h5w_attr_int(f, "n_ff", c->n_ff) || h5w_attr_int(f, "vocab_size", c->vocab) ||
        h5w_attr_int(f, "gated", c->gated) || h5w_attr_int(f, "n_prompts", n_prompts) ||
        h5w_attr_str(f, "key_activation", c->gated ? "act(gate.x) * (up.x)" : "act(W1.x + b1)") ||
        h5w_attr_str(f, "command", cli_command_line))
        return -1;
    return h5w_i32(f, "layers", r->layers, r->n_layers, 0);
}

static int write_h5_prompt(hid_t f, const model_t *m, const acts_rec_t *r, const prompt_t *p,
                           int pi, const float *logits) {
    char name[64], tb[1024];
    snprintf(name, sizeof name, "prompt_%d", pi);
    hid_t g = h5w_group(f, name);
    if (g < 0) return -1;
    int rc = -1;
    char **toks = calloc((size_t)p->n, sizeof *toks);
    int32_t *pos = malloc((size_t)p->n * sizeof *pos);
    if (!toks || !pos) goto done;
    for (int t = 0; t < p->n; t++) {
        toks[t] = strdup(tok_display(m->tok, p->ids[t], tb, sizeof tb));
        pos[t] = t;
        if (!toks[t]) goto done;
    }
    if (h5w_attr_str(g, "text", p->text) || h5w_i32(g, "token_ids", p->ids, p->n, 0) ||
        h5w_strs(g, "tokens", (const char *const *)toks, p->n) ||
        h5w_i32(g, "positions", pos, p->n, 0))
        goto done;
    if (logits && h5w_f32(g, "logits", logits, p->n, m->cfg.vocab)) goto done;
    for (int s = 0; s < r->n_layers; s++) {
        snprintf(name, sizeof name, "layer_%d", r->layers[s]);
        hid_t lg = h5w_group(g, name);
        if (lg < 0) goto done;
        int bad = h5w_f32(lg, "key_act", r->key[s], p->n, r->n_ff) ||
                  h5w_f32(lg, "gate_pre", r->pre[s], p->n, r->n_ff) ||
                  (r->gated && h5w_f32(lg, "up", r->up[s], p->n, r->n_ff));
        H5Gclose(lg);
        if (bad) goto done;
    }
    rc = 0;
done:
    if (toks)
        for (int t = 0; t < p->n; t++)
            free(toks[t]);
    free(toks);
    free(pos);
    H5Gclose(g);
    return rc;
}

int cmd_activations(int argc, char **argv) {
    const char *model = NULL, *tokenizer = NULL, *layer_spec = "all", *out = NULL, *v;
    long top = 10, threads = 0;
    int by_abs = 0, want_logits = 0, no_bos = 0, r, n_prompts = 0, rc = EXIT_FAIL;
    prompt_t *prompts = NULL;
    const char *prompt_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            help();
            return EXIT_OK;
        } else if ((r = cli_opt(argc, argv, &i, "--model", &v))) {
            if (r < 0) goto usage;
            model = v;
        } else if ((r = cli_opt(argc, argv, &i, "--tokenizer", &v))) {
            if (r < 0) goto usage;
            tokenizer = v;
        } else if ((r = cli_opt(argc, argv, &i, "--prompt-file", &v))) {
            if (r < 0) goto usage;
            prompt_file = v;
        } else if ((r = cli_opt(argc, argv, &i, "--prompt", &v))) {
            if (r < 0) goto usage;
            if (add_prompt(&prompts, &n_prompts, v, strlen(v))) {
                cli_fail_err();
                goto done;
            }
        } else if ((r = cli_opt(argc, argv, &i, "--layer", &v))) {
            if (r < 0) goto usage;
            layer_spec = v;
        } else if ((r = cli_opt(argc, argv, &i, "--top", &v))) {
            if (r < 0 || cli_parse_int(v, 1, 1 << 24, &top)) {
                rc = cli_usage("activations", "--top wants a number >= 1");
                goto done;
            }
        } else if ((r = cli_opt(argc, argv, &i, "--rank-by", &v))) {
            if (r < 0 || (strcmp(v, "value") && strcmp(v, "abs"))) {
                rc = cli_usage("activations", "--rank-by is value or abs");
                goto done;
            }
            by_abs = !strcmp(v, "abs");
        } else if ((r = cli_opt(argc, argv, &i, "--out", &v))) {
            if (r < 0) goto usage;
            out = v;
        } else if ((r = cli_opt(argc, argv, &i, "--threads", &v))) {
            if (r < 0 || cli_parse_int(v, 0, 1024, &threads)) {
                rc = cli_usage("activations", "--threads wants a number");
                goto done;
            }
        } else if (cli_flag(argv, i, "--logits")) {
            want_logits = 1;
        } else if (cli_flag(argv, i, "--no-bos")) {
            no_bos = 1;
        } else {
            rc = cli_usage("activations", "unknown option '%s'", argv[i]);
            goto done;
        }
    }
    int kind = 0; /* 0 table, 1 h5, 2 csv */
    if (out) {
        size_t n = strlen(out);
        if ((n > 3 && !strcmp(out + n - 3, ".h5")) || (n > 5 && !strcmp(out + n - 5, ".hdf5")))
            kind = 1;
        else if (n > 4 && !strcmp(out + n - 4, ".csv"))
            kind = 2;
        else {
            rc = cli_usage("activations", "--out must end in .h5, .hdf5 or .csv: '%s'", out);
            goto done;
        }
    }
    if (want_logits && kind != 1) {
        rc = cli_usage("activations", "--logits goes with --out FILE.h5");
        goto done;
    }
    if (prompt_file && read_prompt_file(prompt_file, &prompts, &n_prompts)) {
        cli_fail_err();
        goto done;
    }
    if (n_prompts == 0) {
        rc = cli_usage("activations", "give a prompt with --prompt TEXT or --prompt-file FILE");
        goto done;
    }
    cli_set_threads((int)threads);
    model_t *m = cli_open_model(model, tokenizer);
    if (!m) goto done;
    int *layers = NULL, n_layers = 0, T_max = 0;
    acts_rec_t *rec = NULL;
    fwd_t *f = NULL;
    ofile_t *of = NULL;
    FILE *csv = NULL;
    hid_t h5 = -1;
    float *logits = NULL;
    if (!m->tok) {
        cli_fail("%s: no tokenizer: pass --tokenizer", m->path);
        goto done_model;
    }
    if (acts_parse_layers(layer_spec, m->cfg.n_layer, &layers, &n_layers)) {
        cli_fail("--layer: %s", err_msg());
        goto done_model;
    }
    for (int i = 0; i < n_prompts; i++) {
        prompt_t *p = &prompts[i];
        if (p->text[0] == '\0') {
            cli_fail("prompt %d is empty", i);
            goto done_model;
        }
        int flags = (m->tok->add_bos && !no_bos) ? TOK_ADD_BOS : 0;
        if (tok_encode(m->tok, p->text, strlen(p->text), flags, &p->ids, &p->n)) {
            cli_fail("prompt %d: %s", i, err_msg());
            goto done_model;
        }
        if (p->n > m->cfg.max_seq) {
            cli_fail("prompt %d has %d tokens, more than the model's context of %d", i, p->n,
                     m->cfg.max_seq);
            goto done_model;
        }
        if (p->n > T_max) T_max = p->n;
    }
    if (kind) {
        of = ofile_begin(out);
        if (!of) {
            cli_fail_err();
            goto done_model;
        }
    }
    f = fwd_new(m, T_max, T_max);
    rec = f ? acts_rec_new(m, layers, n_layers, T_max, (int)top, by_abs, kind == 1) : NULL;
    if (!f || !rec) {
        cli_fail_err();
        goto done_model;
    }
    acts_rec_attach(rec, f);
    if (want_logits && !(logits = malloc((size_t)T_max * m->cfg.vocab * sizeof *logits))) {
        cli_fail("out of memory for logits");
        goto done_model;
    }
    csvw_t w;
    if (kind == 2) {
        csv = fopen(ofile_tmp_path(of), "w");
        if (!csv) {
            cli_fail("%s: cannot write", out);
            goto done_model;
        }
        csvw_init(&w, csv);
        csvw_header(&w, "prompt_id,position,token_id,token,layer,neuron,activation,rank");
    } else if (kind == 1) {
        h5 = H5Fcreate(ofile_tmp_path(of), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        if (h5 < 0 || write_h5_root(h5, m, rec, n_prompts)) {
            cli_fail("%s: cannot write HDF5", out);
            goto done_model;
        }
    }
    for (int i = 0; i < n_prompts; i++) {
        prompt_t *p = &prompts[i];
        if (fwd_eval(f, p->ids, p->n, 0, logits, logits ? FWD_LOGITS_ALL : FWD_LOGITS_NONE)) {
            cli_fail("prompt %d: %s", i, err_msg());
            goto done_model;
        }
        if (kind == 0)
            print_table(m, rec, p, i, by_abs);
        else if (kind == 2)
            write_csv_rows(&w, m, rec, p, i);
        else if (write_h5_prompt(h5, m, rec, p, i, logits)) {
            cli_fail("%s: %s", out, err_msg());
            goto done_model;
        }
    }
    int wrote = of != NULL;
    if (cli_finish_output(out, &csv, kind == 2 && csvw_status(&w), &h5, &of)) goto done_model;
    if (wrote) {
        fprintf(stderr, "probe: wrote %s (%d prompts, %d layers)\n", out, n_prompts, n_layers);
    }
    rc = EXIT_OK;
done_model:
    if (csv) fclose(csv);
    if (h5 >= 0) H5Fclose(h5);
    ofile_abort(of);
    free(logits);
    acts_rec_free(rec);
    fwd_free(f);
    free(layers);
    model_close(m);
    goto done;
usage:
    rc = EXIT_USAGE;
done:
    for (int i = 0; i < n_prompts; i++) {
        free(prompts[i].text);
        free(prompts[i].ids);
    }
    free(prompts);
    return rc;
}
