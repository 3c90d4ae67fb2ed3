/* probe triggers: the corpus positions that most activate each FFN neuron
 * (Geva et al. 2021), streamed over corpora of any size, with the key-value
 * agreement of the paper's Section 4 and per-neuron activation statistics.
 * Results go to an HDF5 file or tidy CSV files (written at the end, through a
 * temporary that Ctrl-C removes); the agreement table and a summary go to
 * stdout, progress and status to stderr. */
#include "cli.h"

#include "analysis/corpus.h"
#include "analysis/csvw.h"
#include "analysis/dist.h"
#include "analysis/h5w.h"
#include "analysis/ofile.h"
#include "analysis/acts.h"
#include "analysis/triggers.h"
#include "core/err.h"
#include "core/fwd.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void help(void) {
    printf(
        "usage: probe triggers [--model PATH] [--tokenizer PATH] --corpus FILE|- --out "
        "FILE.h5|FILE.csv\n"
        "                      [--layer SPEC] [--top N] [--context C] [--per doc|token] [options]\n"
        "\n"
        "Finds, for every FFN neuron of the chosen layers, the N corpus positions with the\n"
        "largest activation (its \"trigger examples\", Geva et al. 2021), the rank of each\n"
        "trigger's next token in the neuron's value projection (key-value agreement, their\n"
        "Section 4), and per-neuron activation statistics.  The corpus is streamed: memory\n"
        "depends on layers x neurons x N x context, never on the corpus size.\n"
        "\n"
        "corpus\n"
        "  --corpus FILE|-       plain text (documents separated by blank lines), JSON Lines\n"
        "                        (.jsonl/.ndjson/.json: the \"text\" field), or - for stdin\n"
        "  --format F            auto (default: by file name), text, lines or jsonl\n"
        "  --lines               one document per line (= --format lines)\n"
        "  --max-doc-bytes B     longer text documents are cut into pieces (default 1048576)\n"
        "  --window W            tokens per forward window (default: the model's context, at\n"
        "                        most 2048; an error if larger than the model's context)\n"
        "  --stride S            offset between windows of a long document (default W); each\n"
        "                        position counts once, in the first window that holds it\n"
        "  --no-bos              do not prepend BOS (default: the tokenizer's own rule)\n"
        "triggers\n"
        "  --layer SPEC          N, N,M, N-M or all (default all; 0-based)\n"
        "  --top N               triggers kept per neuron (default 20)\n"
        "  --context C           prefix tokens kept per trigger, trigger included (default 32)\n"
        "  --per doc|token       doc (default): at most one trigger per document, its best\n"
        "                        position, as the paper's code; token: any position\n"
        "  --rank-by post|pre    post (default): key activation m_i; pre: the pre-activation\n"
        "                        x.k_i (gate.x, or W1.x + b1) the 2021 paper ranked by\n"
        "  --skip-bos            leave out window position 0 (default on)\n"
        "  --no-skip-bos         count it\n"
        "  --no-agreement        skip the value projections (the agreement analysis)\n"
        "statistics\n"
        "  --stats-only          statistics only, no triggers\n"
        "  --no-stats            triggers only\n"
        "  --quantiles LIST      running quantiles (default 0.5,0.99; at most 8)\n"
        "  --quantile-every K    feed the quantile estimators every K-th position (default 32)\n"
        "  --exact-stats         every value through GSL's gsl_rstat (slow reference path)\n"
        "output\n"
        "  --out FILE.h5         everything in one HDF5 file (schema: docs/FORMAT.md)\n"
        "  --out FILE.csv        tidy triggers: layer,neuron,rank,activation,doc,position,prefix,\n"
        "                        trigger_token,next_token,...; beside it FILE.stats.csv,\n"
        "                        FILE.hist.csv and FILE.agreement.csv\n"
        "  --quiet               no progress bar (it is shown only when stderr is a terminal)\n"
        "  --threads N           threads for BLAS and OpenMP (default: all cores)\n"
        "  --forward-only        run the windows through the model without recording\n"
        "                        (plain forward mode, to measure the recording overhead)\n"
        "Ties rank the lower document, then the lower position first.  Ctrl-C leaves no output.\n"
        "Under mpirun or srun the corpus file is cut among the ranks at document boundaries;\n"
        "rank 0 merges the results (triggers exactly; quantiles approximately) and writes.\n"
        "\n"
        "examples:\n"
        "  probe triggers --corpus wiki.txt --layer all --top 25 --out triggers.h5\n"
        "  probe triggers --corpus stories.jsonl --layer 3 --top 50 --context 64 --out "
        "triggers.csv\n"
        "  probe triggers --corpus big.txt --layer all --stats-only --out stats.h5\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fmt_hms(double s, char *b, size_t n) {
    if (!(s >= 0) || s > 1e8) {
        snprintf(b, n, "--:--:--");
        return;
    }
    long x = (long)(s + 0.5);
    snprintf(b, n, "%ld:%02ld:%02ld", x / 3600, x / 60 % 60, x % 60);
}

static void progress(const corpus_stats_t *cs, const trg_counts_t *tc, double t0, int final) {
    double el = now_s() - t0, rate = el > 0 ? (double)tc->tokens / el : 0;
    char eta[32] = "";
    char line[256];
    int k;
    if (cs->size > 0) {
        double frac = (double)cs->bytes / (double)cs->size;
        if (frac > 1) frac = 1;
        char bar[21];
        int w = (int)(frac * 20);
        for (int i = 0; i < 20; i++)
            bar[i] = i < w ? '#' : '.';
        bar[20] = '\0';
        fmt_hms(frac > 0 ? el * (1 - frac) / frac : -1, eta, sizeof eta);
        k = snprintf(line, sizeof line, "[%s] %3.0f%%  %lld tokens  %.0f tok/s  ETA %s", bar,
                     frac * 100, (long long)tc->tokens, rate, eta);
    } else {
        k = snprintf(line, sizeof line, "%lld tokens  %.0f tok/s  %.1f MB read",
                     (long long)tc->tokens, rate, cs->bytes / 1e6);
    }
    (void)k;
    fprintf(stderr, "\r%s\033[K", final ? "" : line);
    fflush(stderr);
}

/* ---- text helpers ------------------------------------------------------------- */

/* Appends N bytes, growing *B. */
static int buf_add(char **b, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t nc = (*cap ? *cap * 2 : 256);
        while (nc < *len + n + 1)
            nc *= 2;
        char *x = realloc(*b, nc);
        if (!x) return err_set("out of memory");
        *b = x;
        *cap = nc;
    }
    memcpy(*b + *len, s, n);
    *len += n;
    (*b)[*len] = '\0';
    return 0;
}

/* Bytes one U+FFFD replaces at an invalid sequence S: its "maximal subpart"
 * (Unicode 15, section 3.9; what Python's and the WHATWG decoders do): a lead
 * byte and the continuation bytes that could still have completed it, or one
 * byte. */
static size_t utf8_bad_run(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    int len;
    unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
        return 1;
    size_t k = 1;
    while (k < (size_t)len && k < n && s[k] >= (k == 1 ? lo : 0x80) && s[k] <= (k == 1 ? hi : 0xbf))
        k++;
    return k;
}

/* The prefix as text: pieces decoded as the model's tokenizer decodes them
 * (special tokens drop out, SentencePiece's dummy-prefix space after BOS or at
 * a document's start is dropped), then made valid UTF-8 (bytes of a character
 * cut by the context boundary and NUL bytes become U+FFFD). */
static char *prefix_text(const tok_t *tk, const trg_entry_t *e) {
    char *raw = NULL, *out = NULL;
    size_t rl = 0, rc = 0, ol = 0, oc = 0;
    int prev = e->ctx_prev >= 0 ? e->ctx_prev : tk->bos_id;
    if (buf_add(&raw, &rl, &rc, "", 0)) return NULL;
    for (int i = 0; i < e->n_ctx; i++) {
        int len;
        const char *p = tok_decode_next(tk, prev, e->ctx[i], &len);
        if (buf_add(&raw, &rl, &rc, p, (size_t)len)) goto fail;
        prev = e->ctx[i];
    }
    if (buf_add(&out, &ol, &oc, "", 0)) goto fail;
    for (size_t i = 0; i < rl;) {
        size_t l = (size_t)utf8_len((unsigned char)raw[i]);
        if (raw[i] != '\0' && i + l <= rl && utf8_valid(raw + i, l)) {
            if (buf_add(&out, &ol, &oc, raw + i, l)) goto fail;
            i += l;
        } else {
            if (buf_add(&out, &ol, &oc, "\xef\xbf\xbd", 3)) goto fail;
            i += utf8_bad_run((const unsigned char *)raw + i, rl - i);
        }
    }
    free(raw);
    return out;
fail:
    free(raw);
    free(out);
    return NULL;
}

/* ---- HDF5 ---------------------------------------------------------------------- */

static int h5_num(hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *data,
                  int64_t rows, int64_t cols) {
    int nd = cols ? 2 : 1;
    hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols};
    hid_t sp = H5Screate_simple(nd, dims, NULL);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    if (rows > 0) {
        size_t elem = H5Tget_size(ftype);
        hsize_t row_bytes = (hsize_t)(cols ? cols : 1) * elem;
        hsize_t crow = (256 * 1024) / row_bytes;
        if (crow < 1) crow = 1;
        if (crow > (hsize_t)rows) crow = (hsize_t)rows;
        hsize_t chunk[2] = {crow, (hsize_t)cols};
        H5Pset_chunk(pl, nd, chunk);
        H5Pset_shuffle(pl);
        H5Pset_deflate(pl, 4);
    }
    hid_t ds = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    herr_t r =
        ds < 0 ? -1 : (rows > 0 ? H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : 0);
    if (ds >= 0) H5Dclose(ds);
    H5Pclose(pl);
    H5Sclose(sp);
    return r < 0 ? err_set("cannot write HDF5 dataset '%s'", name) : 0;
}
static int h5_f64(hid_t loc, const char *name, const double *d, int64_t rows, int64_t cols) {
    return h5_num(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, d, rows, cols);
}
static int h5_i64(hid_t loc, const char *name, const int64_t *d, int64_t rows, int64_t cols) {
    return h5_num(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, d, rows, cols);
}

static int h5_strs2(hid_t loc, const char *name, char *const *s, int64_t rows, int64_t cols) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t ds = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r =
        ds < 0 ? -1 : (rows * cols > 0 ? H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) : 0);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    H5Tclose(t);
    return r < 0 ? err_set("cannot write HDF5 dataset '%s'", name) : 0;
}

typedef struct {
    const char *corpus;
    corpus_fmt_t fmt;
    const corpus_stats_t *cs;
    const trg_counts_t *tc;
    int agreement;
} run_info_t;

static int h5_root(hid_t f, const model_t *m, const trg_t *t, const run_info_t *ri) {
    const mcfg_t *c = &m->cfg;
    const trg_opts_t *o = trg_opts(t);
    const corpus_stats_t *cs = ri->cs;
    const trg_counts_t *tc = ri->tc;
    if (h5w_attr_str(f, "probe_kind", "triggers") || h5w_attr_str(f, "probe_version", "0.1") ||
        h5w_attr_str(f, "model_path", m->path) || h5w_attr_str(f, "model_format", m->format) ||
        h5w_attr_str(f, "architecture", arch_name(c->arch)) ||
        h5w_attr_int(f, "n_layer", c->n_layer) || h5w_attr_int(f, "d_model", c->d_model) ||
        h5w_attr_int(f, "n_ff", c->n_ff) || h5w_attr_int(f, "vocab_size", c->vocab) ||
        h5w_attr_int(f, "gated", c->gated) ||
        h5w_attr_str(f, "key_activation", c->gated ? "act(gate.x) * (up.x)" : "act(W1.x + b1)") ||
        h5w_attr_str(f, "pre_activation", c->gated ? "gate.x" : "W1.x + b1") ||
        h5w_attr_str(f, "command", cli_command_line) || h5w_attr_str(f, "corpus", ri->corpus) ||
        h5w_attr_str(f, "corpus_format", corpus_fmt_name(ri->fmt)) ||
        h5w_attr_int(f, "window", o->window) || h5w_attr_int(f, "stride", o->stride) ||
        h5w_attr_int(f, "top", o->stats_only ? 0 : o->top) ||
        h5w_attr_int(f, "context", o->context) ||
        h5w_attr_str(f, "per", o->per == TRG_PER_DOC ? "doc" : "token") ||
        h5w_attr_str(f, "rank_by", o->rank_by == TRG_RANK_PRE ? "pre" : "post") ||
        h5w_attr_int(f, "skip_bos", o->skip_bos) || h5w_attr_int(f, "stats_only", o->stats_only) ||
        h5w_attr_int(f, "exact_stats", o->exact_stats) ||
        h5w_attr_int(f, "quantile_every", o->quantile_every) ||
        h5w_attr_int(f, "n_docs", tc->docs) || h5w_attr_int(f, "n_tokens", tc->tokens) ||
        h5w_attr_int(f, "n_counted", tc->counted) || h5w_attr_int(f, "n_doc_ids", cs->ids) ||
        h5w_attr_int(f, "skipped_bad_utf8", cs->bad_utf8) ||
        h5w_attr_int(f, "skipped_bad_json", cs->bad_json) ||
        h5w_attr_int(f, "skipped_no_text", cs->no_text) ||
        h5w_attr_int(f, "skipped_empty", cs->empty) ||
        h5w_attr_int(f, "skipped_too_long", cs->too_long) ||
        h5w_attr_int(f, "docs_split", cs->split))
        return -1;
    int n = trg_n_layers(t);
    int32_t layers[n];
    for (int s = 0; s < n; s++)
        layers[s] = trg_layer(t, s);
    return h5w_i32(f, "layers", layers, n, 0);
}

static int h5_stats(hid_t g, const trg_t *t, int s) {
    trg_stats_t st;
    if (trg_get_stats(t, s, &st)) return -1;
    const trg_opts_t *o = trg_opts(t);
    int F = trg_n_ff(t);
    hid_t sg = h5w_group(g, "stats");
    if (sg < 0) return -1;
    double probs[TRG_MAX_QUANTILES];
    for (int q = 0; q < o->n_quantiles; q++)
        probs[q] = o->quantiles[q];
    int bad = h5w_attr_int(sg, "n_positions", st.n) || h5w_attr_int(sg, "n_dead", st.n_dead) ||
              h5w_attr_int(sg, "n_density_below_1e-4", st.n_rare[0]) ||
              h5w_attr_int(sg, "n_density_below_1e-3", st.n_rare[1]) ||
              h5w_attr_int(sg, "n_density_below_1e-2", st.n_rare[2]) ||
              h5_f64(sg, "mean", st.mean, F, 0) || h5_f64(sg, "variance", st.variance, F, 0) ||
              h5_f64(sg, "skewness", st.skewness, F, 0) ||
              h5_f64(sg, "kurtosis", st.kurtosis, F, 0) || h5w_f32(sg, "min", st.min, F, 0) ||
              h5w_f32(sg, "max", st.max, F, 0) || h5_f64(sg, "density", st.density, F, 0) ||
              h5_i64(sg, "active_count", st.active, F, 0) ||
              h5_f64(sg, "quantile_probs", probs, o->n_quantiles, 0) ||
              (o->n_quantiles && h5_f64(sg, "quantiles", st.quantile, o->n_quantiles, F)) ||
              h5_i64(sg, "hist_counts", st.hist, st.n_hist, 0) ||
              h5_f64(sg, "hist_lo", st.hist_lo, st.n_hist, 0) ||
              h5_f64(sg, "hist_hi", st.hist_hi, st.n_hist, 0) ||
              h5_i64(sg, "density_hist_counts", st.dhist, st.n_dhist, 0) ||
              h5_f64(sg, "density_hist_log10_lo", st.dhist_lo, st.n_dhist, 0);
    H5Gclose(sg);
    return bad ? -1 : 0;
}

static int h5_layer(hid_t f, const model_t *m, const trg_t *t, int s, int agreement) {
    char name[64];
    snprintf(name, sizeof name, "layer_%d", trg_layer(t, s));
    hid_t g = h5w_group(f, name);
    if (g < 0) return -1;
    const trg_opts_t *o = trg_opts(t);
    int F = trg_n_ff(t), rc = -1;
    if (o->stats_only) goto stats;
    int N = o->top;
    size_t FN = (size_t)F * N;
    float *key = malloc(FN * sizeof *key), *pre = malloc(FN * sizeof *pre),
          *up = malloc(FN * sizeof *up);
    int64_t *doc = malloc(FN * sizeof *doc);
    int32_t *pos = malloc(FN * sizeof *pos), *tok = malloc(FN * sizeof *tok),
            *nxt = malloc(FN * sizeof *nxt), *nrank = malloc(FN * sizeof *nrank),
            *count = malloc((size_t)F * sizeof *count);
    char **pfx = calloc(FN, sizeof *pfx);
    int bad = !key || !pre || !up || !doc || !pos || !tok || !nxt || !nrank || !count || !pfx;
    if (bad) err_set("out of memory writing layer %d", trg_layer(t, s));
    for (int j = 0; j < F && !bad; j++) {
        count[j] = trg_count(t, s, j);
        for (int r = 0; r < N && !bad; r++) {
            size_t i = (size_t)j * N + r;
            if (r >= count[j]) {
                key[i] = pre[i] = up[i] = NAN;
                doc[i] = -1;
                pos[i] = tok[i] = nxt[i] = nrank[i] = -1;
                pfx[i] = strdup("");
            } else {
                trg_entry_t e;
                trg_get(t, s, j, r, &e);
                key[i] = e.key;
                pre[i] = e.pre;
                up[i] = e.up;
                doc[i] = e.doc;
                pos[i] = e.pos;
                tok[i] = e.token;
                nxt[i] = e.next;
                nrank[i] = e.next_rank;
                pfx[i] = prefix_text(m->tok, &e);
            }
            if (!pfx[i]) bad = 1, err_set("out of memory");
        }
    }
    if (!bad)
        bad = h5w_f32(g, "key_act", key, F, N) || h5w_f32(g, "gate_pre", pre, F, N) ||
              (m->cfg.gated && h5w_f32(g, "up", up, F, N)) || h5_i64(g, "doc", doc, F, N) ||
              h5w_i32(g, "position", pos, F, N) || h5w_i32(g, "token_id", tok, F, N) ||
              h5w_i32(g, "next_id", nxt, F, N) || h5w_i32(g, "count", count, F, 0) ||
              h5_strs2(g, "prefix", pfx, F, N) ||
              (agreement && (h5w_i32(g, "next_rank", nrank, F, N) ||
                             h5w_i32(g, "value_top1", trg_value_top1(t, s), F, 0)));
    if (pfx)
        for (size_t i = 0; i < FN; i++)
            free(pfx[i]);
    free(pfx);
    free(key);
    free(pre);
    free(up);
    free(doc);
    free(pos);
    free(tok);
    free(nxt);
    free(nrank);
    free(count);
    if (bad) goto done;
stats:
    if (o->stats && h5_stats(g, t, s)) goto done;
    rc = 0;
done:
    H5Gclose(g);
    return rc;
}

static int h5_agreement(hid_t f, const trg_t *t) {
    int n = trg_n_layers(t);
    hid_t g = h5w_group(f, "agreement");
    if (g < 0) return -1;
    int32_t li[n], nn[n], ne[n], na[n];
    int64_t nr[n];
    double sh[n], mr[n], md[n], tm[n], td[n];
    for (int s = 0; s < n; s++) {
        const trg_agree_t *a = trg_agree_table(t, s);
        li[s] = a->layer;
        nn[s] = a->n_neurons;
        ne[s] = a->n_eval;
        na[s] = a->n_agree;
        nr[s] = a->n_ranks;
        sh[s] = a->share_agree;
        mr[s] = a->mean_rank;
        md[s] = a->median_rank;
        tm[s] = a->top_mean_rank;
        td[s] = a->top_median_rank;
    }
    int bad = h5w_attr_int(g, "vocab_size", trg_agree_table(t, 0)->vocab) ||
              h5w_i32(g, "layer", li, n, 0) || h5w_i32(g, "n_neurons", nn, n, 0) ||
              h5w_i32(g, "n_eval", ne, n, 0) || h5w_i32(g, "n_agree", na, n, 0) ||
              h5_f64(g, "share_agree", sh, n, 0) || h5_i64(g, "n_ranks", nr, n, 0) ||
              h5_f64(g, "mean_rank", mr, n, 0) || h5_f64(g, "median_rank", md, n, 0) ||
              h5_f64(g, "top_mean_rank", tm, n, 0) || h5_f64(g, "top_median_rank", td, n, 0);
    H5Gclose(g);
    return bad ? -1 : 0;
}

static int write_h5(const char *path, const model_t *m, const trg_t *t, const run_info_t *ri) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return err_set("cannot create the HDF5 file");
    int bad = h5_root(f, m, t, ri);
    for (int s = 0; s < trg_n_layers(t) && !bad; s++)
        bad = h5_layer(f, m, t, s, ri->agreement);
    if (!bad && ri->agreement) bad = h5_agreement(f, t);
    if (H5Fclose(f) < 0 && !bad) bad = err_set("cannot finish the HDF5 file");
    return bad ? -1 : 0;
}

/* ---- CSV ------------------------------------------------------------------------ */

static int csv_triggers(FILE *fp, const model_t *m, const trg_t *t, int agreement) {
    csvw_t w;
    csvw_init(&w, fp);
    csvw_header(&w, "layer,neuron,rank,activation,doc,position,prefix,trigger_token,next_token,"
                    "pre_activation,up,token_id,next_id,next_rank");
    char tb[1024], nb[1024];
    for (int s = 0; s < trg_n_layers(t); s++)
        for (int j = 0; j < trg_n_ff(t); j++)
            for (int r = 0; r < trg_count(t, s, j); r++) {
                trg_entry_t e;
                trg_get(t, s, j, r, &e);
                char *p = prefix_text(m->tok, &e);
                if (!p) return err_set("out of memory");
                csvw_int(&w, trg_layer(t, s));
                csvw_int(&w, j);
                csvw_int(&w, r);
                csvw_float(&w, e.key);
                csvw_int(&w, e.doc);
                csvw_int(&w, e.pos);
                csvw_str(&w, p);
                csvw_str(&w, tok_display(m->tok, e.token, tb, sizeof tb));
                csvw_str(&w, e.next >= 0 ? tok_display(m->tok, e.next, nb, sizeof nb) : "");
                csvw_float(&w, e.pre);
                if (m->cfg.gated)
                    csvw_float(&w, e.up);
                else
                    csvw_str(&w, "");
                csvw_int(&w, e.token);
                csvw_int(&w, e.next);
                csvw_int(&w, agreement ? e.next_rank : -1);
                csvw_end_row(&w);
                free(p);
            }
    return csvw_status(&w);
}

static int csv_stats(FILE *fp, const trg_t *t) {
    const trg_opts_t *o = trg_opts(t);
    char hdr[1024];
    size_t k = (size_t)snprintf(hdr, sizeof hdr,
                                "layer,neuron,n,mean,variance,skewness,kurtosis,"
                                "min,max,density,active_count");
    for (int q = 0; q < o->n_quantiles && k < sizeof hdr; q++)
        k += (size_t)snprintf(hdr + k, sizeof hdr - k, ",q%g", o->quantiles[q]);
    csvw_t w;
    csvw_init(&w, fp);
    csvw_header(&w, hdr);
    int F = trg_n_ff(t);
    for (int s = 0; s < trg_n_layers(t); s++) {
        trg_stats_t st;
        if (trg_get_stats(t, s, &st)) return -1;
        for (int j = 0; j < F; j++) {
            csvw_int(&w, trg_layer(t, s));
            csvw_int(&w, j);
            csvw_int(&w, st.n);
            csvw_float(&w, st.mean[j]);
            csvw_float(&w, st.variance[j]);
            csvw_float(&w, st.skewness[j]);
            csvw_float(&w, st.kurtosis[j]);
            csvw_float(&w, st.min[j]);
            csvw_float(&w, st.max[j]);
            csvw_float(&w, st.density[j]);
            csvw_int(&w, st.active[j]);
            for (int q = 0; q < o->n_quantiles; q++)
                csvw_float(&w, st.quantile[(size_t)q * F + j]);
            csvw_end_row(&w);
        }
    }
    return csvw_status(&w);
}

static int csv_hist(FILE *fp, const trg_t *t) {
    csvw_t w;
    csvw_init(&w, fp);
    csvw_header(&w, "layer,kind,bin,lo,hi,count");
    for (int s = 0; s < trg_n_layers(t); s++) {
        trg_stats_t st;
        if (trg_get_stats(t, s, &st)) return -1;
        for (int b = 0; b < st.n_hist; b++) {
            csvw_int(&w, trg_layer(t, s));
            csvw_str(&w, "activation");
            csvw_int(&w, b);
            csvw_float(&w, st.hist_lo[b]);
            csvw_float(&w, st.hist_hi[b]);
            csvw_int(&w, st.hist[b]);
            csvw_end_row(&w);
        }
        for (int b = 0; b < st.n_dhist; b++) {
            csvw_int(&w, trg_layer(t, s));
            csvw_str(&w, "log10_density");
            csvw_int(&w, b);
            csvw_float(&w, st.dhist_lo[b]);
            csvw_float(&w, b + 1 < st.n_dhist ? st.dhist_lo[b + 1] : 0.0);
            csvw_int(&w, st.dhist[b]);
            csvw_end_row(&w);
        }
    }
    return csvw_status(&w);
}

static int csv_agreement(FILE *fp, const trg_t *t) {
    csvw_t w;
    csvw_init(&w, fp);
    csvw_header(&w, "layer,n_neurons,n_eval,n_agree,share_agree,n_ranks,mean_rank,median_rank,"
                    "top_mean_rank,top_median_rank,vocab");
    for (int s = 0; s < trg_n_layers(t); s++) {
        const trg_agree_t *a = trg_agree_table(t, s);
        csvw_int(&w, a->layer);
        csvw_int(&w, a->n_neurons);
        csvw_int(&w, a->n_eval);
        csvw_int(&w, a->n_agree);
        csvw_float(&w, a->share_agree);
        csvw_int(&w, a->n_ranks);
        csvw_float(&w, a->mean_rank);
        csvw_float(&w, a->median_rank);
        csvw_float(&w, a->top_mean_rank);
        csvw_float(&w, a->top_median_rank);
        csvw_int(&w, a->vocab);
        csvw_end_row(&w);
    }
    return csvw_status(&w);
}

typedef int (*csv_fn)(FILE *, const model_t *, const trg_t *, int);
static int csv_stats_w(FILE *fp, const model_t *m, const trg_t *t, int a) {
    (void)m, (void)a;
    return csv_stats(fp, t);
}
static int csv_hist_w(FILE *fp, const model_t *m, const trg_t *t, int a) {
    (void)m, (void)a;
    return csv_hist(fp, t);
}
static int csv_agree_w(FILE *fp, const model_t *m, const trg_t *t, int a) {
    (void)m, (void)a;
    return csv_agreement(fp, t);
}

static int write_csv(const char *tmp, csv_fn fn, const model_t *m, const trg_t *t, int agreement) {
    FILE *fp = fopen(tmp, "w");
    if (!fp) return err_set("cannot write");
    int bad = fn(fp, m, t, agreement);
    if (fclose(fp) != 0 && !bad) bad = err_set("write error");
    return bad ? -1 : 0;
}

/* ---- stdout summary ------------------------------------------------------------- */

static void print_summary(const trg_t *t, int agreement) {
    const trg_opts_t *o = trg_opts(t);
    if (agreement) {
        const trg_agree_t *a0 = trg_agree_table(t, 0);
        printf(
            "key-value agreement (Geva et al. 2021, Section 4): rank of each trigger's next token\n"
            "in its neuron's value projection (0 = top; chance: share %.4f, mean rank %.1f)\n",
            1.0 / a0->vocab, (a0->vocab - 1) / 2.0);
        printf("%5s %8s %8s %8s %8s %11s %11s %11s %11s\n", "layer", "neurons", "eval", "agree",
               "share", "mean_rank", "median", "top_mean", "top_median");
        for (int s = 0; s < trg_n_layers(t); s++) {
            const trg_agree_t *a = trg_agree_table(t, s);
            printf("%5d %8d %8d %8d %8.4f %11.1f %11.1f %11.1f %11.1f\n", a->layer, a->n_neurons,
                   a->n_eval, a->n_agree, a->share_agree, a->mean_rank, a->median_rank,
                   a->top_mean_rank, a->top_median_rank);
        }
    }
    if (o->stats) {
        printf("neuron statistics (key activations; density = share of positions with "
               "pre-activation > 0)\n");
        printf("%5s %8s %8s %10s %10s %10s %12s %12s\n", "layer", "neurons", "dead", "<1e-3",
               "<1e-2", "mean_dens", "mean_max", "mean_kurt");
        for (int s = 0; s < trg_n_layers(t); s++) {
            trg_stats_t st;
            if (trg_get_stats(t, s, &st)) continue;
            double dsum = 0, msum = 0, ksum = 0;
            int F = trg_n_ff(t), nk = 0;
            for (int j = 0; j < F; j++) {
                dsum += st.density[j];
                msum += st.max[j];
                if (isfinite(st.kurtosis[j])) ksum += st.kurtosis[j], nk++;
            }
            printf("%5d %8d %8lld %10lld %10lld %10.4f %12.4g %12.4g\n", trg_layer(t, s), F,
                   (long long)st.n_dead, (long long)st.n_rare[1], (long long)st.n_rare[2], dsum / F,
                   msum / F, nk ? ksum / nk : NAN);
        }
    }
}

/* ---- the command ------------------------------------------------------------------ */

static int parse_quantiles(const char *s, trg_opts_t *o) {
    o->n_quantiles = 0;
    char *copy = strdup(s), *save = NULL;
    if (!copy) return -1;
    int rc = 0;
    for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        double v;
        if (o->n_quantiles >= TRG_MAX_QUANTILES || cli_parse_float(p, &v) || !(v > 0 && v < 1)) {
            rc = -1;
            break;
        }
        o->quantiles[o->n_quantiles++] = v;
    }
    free(copy);
    return rc;
}

static char *sidecar(const char *out, const char *suffix) {
    size_t n = strlen(out);
    char *p = malloc(n + strlen(suffix) + 1);
    if (!p) return NULL;
    memcpy(p, out, n - 4); /* drop ".csv" */
    strcpy(p + n - 4, suffix);
    return p;
}

/* dist_reduce's callbacks: a rank's recorder packed, or merged into ours. */
static int pack_cb(void *t, void **buf, size_t *len) { return trg_pack(t, buf, len); }
static int merge_cb(void *t, const void *buf, size_t len) { return trg_merge(t, buf, len); }

int cmd_triggers(int argc, char **argv) {
    const char *model = NULL, *tokenizer = NULL, *layer_spec = "all", *out = NULL, *corpus = NULL,
               *v;
    const char *quantiles = NULL;
    long top = -1, context = -1, window = -1, stride = -1, threads = 0, qevery = -1,
         max_doc = 1 << 20;
    int r, no_bos = 0, quiet = 0, fwd_only = 0, no_agree = 0, stats_only = 0, no_stats = 0,
           exact = 0, skip_bos = 1, per = TRG_PER_DOC, rank_by = TRG_RANK_POST;
    corpus_fmt_t fmt = CORPUS_AUTO;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            help();
            return EXIT_OK;
        }
#define OPT(name) ((r = cli_opt(argc, argv, &i, name, &v)) != 0)
#define NUM(name, lo, hi, dst)                                                                     \
    if (OPT(name)) {                                                                               \
        if (r < 0 || cli_parse_int(v, lo, hi, &dst))                                               \
            return cli_usage("triggers", "%s wants a whole number in %ld..%ld, got '%s'", name,    \
                             (long)(lo), (long)(hi), r < 0 ? "" : v);                              \
        continue;                                                                                  \
    }
        NUM("--top", 1, 100000, top)
        NUM("--context", 1, 65536, context)
        NUM("--window", 1, 1 << 24, window)
        NUM("--stride", 1, 1 << 24, stride)
        NUM("--threads", 0, 1024, threads)
        NUM("--quantile-every", 1, 1 << 30, qevery)
        NUM("--max-doc-bytes", 16, 1L << 32, max_doc)
        if (OPT("--model")) {
            if (r < 0) return EXIT_USAGE;
            model = v;
        } else if (OPT("--tokenizer")) {
            if (r < 0) return EXIT_USAGE;
            tokenizer = v;
        } else if (OPT("--corpus")) {
            if (r < 0) return EXIT_USAGE;
            corpus = v;
        } else if (OPT("--format")) {
            if (r < 0 || corpus_parse_fmt(v, &fmt))
                return cli_usage("triggers", "--format is auto, text, lines or jsonl");
        } else if (OPT("--layer")) {
            if (r < 0) return EXIT_USAGE;
            layer_spec = v;
        } else if (OPT("--per")) {
            if (r < 0 || (strcmp(v, "doc") && strcmp(v, "token")))
                return cli_usage("triggers", "--per is doc or token");
            per = !strcmp(v, "doc") ? TRG_PER_DOC : TRG_PER_TOKEN;
        } else if (OPT("--rank-by")) {
            if (r < 0 || (strcmp(v, "post") && strcmp(v, "pre")))
                return cli_usage("triggers", "--rank-by is post or pre");
            rank_by = !strcmp(v, "post") ? TRG_RANK_POST : TRG_RANK_PRE;
        } else if (OPT("--quantiles")) {
            if (r < 0) return EXIT_USAGE;
            quantiles = v;
        } else if (OPT("--out")) {
            if (r < 0) return EXIT_USAGE;
            out = v;
        } else if (cli_flag(argv, i, "--lines")) {
            fmt = CORPUS_LINES;
        } else if (cli_flag(argv, i, "--skip-bos")) {
            skip_bos = 1;
        } else if (cli_flag(argv, i, "--no-skip-bos")) {
            skip_bos = 0;
        } else if (cli_flag(argv, i, "--stats-only")) {
            stats_only = 1;
        } else if (cli_flag(argv, i, "--no-stats")) {
            no_stats = 1;
        } else if (cli_flag(argv, i, "--exact-stats")) {
            exact = 1;
        } else if (cli_flag(argv, i, "--no-agreement")) {
            no_agree = 1;
        } else if (cli_flag(argv, i, "--no-bos")) {
            no_bos = 1;
        } else if (cli_flag(argv, i, "--quiet") || cli_flag(argv, i, "-q")) {
            quiet = 1;
        } else if (cli_flag(argv, i, "--forward-only")) {
            fwd_only = 1;
        } else {
            return cli_usage("triggers", "unknown option '%s'", argv[i]);
        }
#undef NUM
#undef OPT
    }
    if (!corpus)
        return cli_usage("triggers", "give the corpus with --corpus FILE (or - for stdin)");
    int kind = 0; /* 1 h5, 2 csv */
    if (out) {
        size_t n = strlen(out);
        if ((n > 3 && !strcmp(out + n - 3, ".h5")) || (n > 5 && !strcmp(out + n - 5, ".hdf5")))
            kind = 1;
        else if (n > 4 && !strcmp(out + n - 4, ".csv"))
            kind = 2;
        else
            return cli_usage("triggers", "--out must end in .h5, .hdf5 or .csv: '%s'", out);
    }
    if (!out && !fwd_only)
        return cli_usage("triggers", "give the output with --out FILE.h5|FILE.csv");
    if (out && fwd_only) return cli_usage("triggers", "--forward-only writes nothing: drop --out");
    if (stats_only && no_stats)
        return cli_usage("triggers", "--stats-only and --no-stats exclude each other");
    if (exact && no_stats) return cli_usage("triggers", "--exact-stats needs statistics");

    /* Under mpirun/srun: this process is one rank of several (analysis/dist). */
    if (dist_init(NULL, NULL)) return cli_fail_err();
    int ranks = dist_size(), rank = dist_rank(), synced = 0;
    if (ranks > 1) {
        snprintf(cli_who, sizeof cli_who, "probe: rank %d of %d", rank, ranks);
        if (!strcmp(corpus, "-")) {
            cli_fail("--corpus -: stdin cannot be split among %d MPI ranks; give a file", ranks);
            goto mpi_fail;
        }
        if (exact) {
            cli_fail("--exact-stats is a single-process reference path; run it without mpirun");
            goto mpi_fail;
        }
    }
    cli_set_threads((int)threads);
    model_t *m = cli_open_model(model, tokenizer);
    if (!m) goto mpi_fail;
    int rc = EXIT_FAIL, *layers = NULL, n_layers = 0, *ids = NULL, n_ids = 0;
    corpus_t *cp = NULL;
    fwd_t *f = NULL;
    trg_t *t = NULL;
    enum { MAXF = 4 };
    ofile_t *of[MAXF] = {0};
    char *paths[MAXF] = {0};
    csv_fn fns[MAXF] = {0};
    int n_of = 0;

    trg_opts_t o;
    trg_opts_default(&o, m);
    if (top > 0) o.top = (int)top;
    if (context > 0) o.context = (int)context;
    if (window > 0) {
        o.window = (int)window;
        o.stride = o.window;
    }
    if (stride > 0) o.stride = (int)stride;
    if (qevery > 0) o.quantile_every = (int)qevery;
    o.per = per;
    o.rank_by = rank_by;
    o.skip_bos = skip_bos;
    o.stats_only = stats_only;
    o.stats = !no_stats;
    o.exact_stats = exact;
    if (quantiles && parse_quantiles(quantiles, &o)) {
        rc = cli_usage("triggers", "--quantiles wants up to %d comma-separated numbers in (0, 1)",
                       TRG_MAX_QUANTILES);
        goto done;
    }
    if (window > m->cfg.max_seq) {
        rc = cli_usage("triggers", "--window %ld is larger than the model's context of %d tokens",
                       window, m->cfg.max_seq);
        goto done;
    }
    if (fwd_only) { /* windows only: keep the recorder minimal */
        o.top = o.context = 1;
        o.stats = o.stats_only = o.exact_stats = 0;
    }
    if (trg_opts_check(&o, m)) {
        rc = cli_usage("triggers", "%s", err_msg());
        goto done;
    }
    if (!m->tok) {
        cli_fail("%s: no tokenizer: pass --tokenizer", m->path);
        goto done;
    }
    if (acts_parse_layers(layer_spec, m->cfg.n_layer, &layers, &n_layers)) {
        rc = cli_usage("triggers", "--layer: %s", err_msg());
        goto done;
    }
    int agreement = !fwd_only && !stats_only && !no_agree;

    /* Reserve the outputs now: an unwritable folder fails before any work. */
    if (kind == 1) {
        paths[n_of] = strdup(out);
        n_of++;
    } else if (kind == 2) {
        paths[n_of] = strdup(out);
        fns[n_of++] = stats_only ? csv_stats_w : csv_triggers;
        if (o.stats && !stats_only) {
            paths[n_of] = sidecar(out, ".stats.csv");
            fns[n_of++] = csv_stats_w;
        }
        if (o.stats) {
            paths[n_of] = sidecar(out, ".hist.csv");
            fns[n_of++] = csv_hist_w;
        }
        if (agreement) {
            paths[n_of] = sidecar(out, ".agreement.csv");
            fns[n_of++] = csv_agree_w;
        }
    }
    for (int i = 0; i < n_of; i++) {
        if (!paths[i]) {
            cli_fail("out of memory");
            goto done;
        }
        if (rank == 0 && !(of[i] = ofile_begin(paths[i]))) {
            cli_fail_err();
            goto done;
        }
    }
    if (!(cp = corpus_open(corpus, fmt, (size_t)max_doc))) {
        cli_fail_err();
        goto done;
    }
    if (ranks > 1) { /* this rank's share: a byte range cut at document boundaries */
        uint64_t size = corpus_stats(cp)->size, b0, b1;
        if (corpus_boundary(corpus, corpus_format(cp), (size_t)max_doc,
                            (uint64_t)((unsigned __int128)size * rank / ranks), &b0) ||
            corpus_boundary(corpus, corpus_format(cp), (size_t)max_doc,
                            (uint64_t)((unsigned __int128)size * (rank + 1) / ranks), &b1) ||
            corpus_set_range(cp, b0, b1)) {
            cli_fail_err();
            goto done;
        }
        /* Document numbers in this rank's messages count from its range. */
        snprintf(cli_who, sizeof cli_who, "probe: rank %d of %d (corpus bytes %llu..%llu)", rank,
                 ranks, (unsigned long long)b0, (unsigned long long)b1);
    }
    f = fwd_new(m, o.window, o.window);
    t = f ? trg_new(m, layers, n_layers, &o) : NULL;
    if (!f || !t) {
        cli_fail_err();
        goto done;
    }
    if (!fwd_only) trg_attach(t, f);
    if (!quiet && rank == 0)
        fprintf(stderr,
                "probe: triggers: %d layers x %d neurons, %s, top %d per %s, context %d, window %d "
                "stride %d; %.1f MiB for heaps and statistics\n",
                n_layers, m->cfg.n_ff,
                fwd_only     ? "forward only"
                : stats_only ? "statistics only"
                             : "triggers",
                o.top, o.per == TRG_PER_DOC ? "document" : "token", o.context, o.window, o.stride,
                trg_mem_bytes(t) / 1048576.0);
    int tty = !quiet && isatty(2);
    double t0 = now_s(), last = t0, c0 = cpu_s(), last_post = t0, last_line = t0;
    const char *text;
    size_t len;
    int64_t doc;
    int flags = (m->tok->add_bos && !no_bos) ? TOK_ADD_BOS : 0;
    for (;;) {
        int k = corpus_next(cp, &text, &len, &doc);
        if (k < 0) {
            if (tty) progress(corpus_stats(cp), trg_counts(t), t0, 1);
            cli_fail_err();
            goto done;
        }
        if (k == 0) break;
        free(ids);
        ids = NULL;
        if (tok_encode(m->tok, text, len, flags, &ids, &n_ids)) {
            if (tty) progress(corpus_stats(cp), trg_counts(t), t0, 1);
            cli_fail("document %lld: %s", (long long)doc, err_msg());
            goto done;
        }
        if (trg_run_doc(t, f, ids, n_ids, doc, !fwd_only)) {
            if (tty) progress(corpus_stats(cp), trg_counts(t), t0, 1);
            cli_fail_err();
            goto done;
        }
        if (ranks > 1 && now_s() - last_post > 1.0) { /* global progress at rank 0 */
            last_post = now_s();
            int64_t own = trg_counts(t)->tokens, all = dist_progress_sum(own);
            dist_progress_post(own);
            if (rank == 0 && !quiet && last_post - last_line > 10.0) {
                last_line = last_post;
                fprintf(stderr, "probe: triggers: %lld tokens on %d ranks, %.0f tok/s\n",
                        (long long)all, ranks, all / (last_post - t0));
            }
        }
        if (tty && now_s() - last > 0.2) {
            progress(corpus_stats(cp), trg_counts(t), t0, 0);
            last = now_s();
        }
    }
    corpus_stats_t gcs = *corpus_stats(cp);
    if (ranks > 1) {
        /* Every rank has streamed its share: agree that all went well, give
         * each rank's documents their global ids, combine at rank 0. */
        dist_progress_end();
        int bad;
        synced = 1;
        if (!dist_all_ok(1, &bad)) {
            if (rank == 0)
                cli_fail("stopping: rank %d failed (see its message); no output written", bad);
            goto done;
        }
        int64_t id0 = dist_exscan_i64(gcs.ids);
        trg_shift_docs(t, id0);
        int64_t *cnt[] = {&gcs.docs,    &gcs.ids,   &gcs.bad_utf8, &gcs.bad_json,
                          &gcs.no_text, &gcs.empty, &gcs.too_long, &gcs.split};
        int64_t sum[9];
        for (int i = 0; i < 8; i++)
            sum[i] = *cnt[i];
        sum[8] = (int64_t)gcs.bytes;
        if (dist_sum_i64(sum, 9) || dist_reduce(pack_cb, merge_cb, t)) {
            cli_fail_err();
            goto done;
        }
        for (int i = 0; i < 8; i++)
            *cnt[i] = sum[i];
        gcs.bytes = (uint64_t)sum[8];
        if (rank > 0) {
            rc = EXIT_OK;
            goto done;
        }
    }
    double t_stream = now_s() - t0, c_stream = cpu_s() - c0;
    if (tty) progress(corpus_stats(cp), trg_counts(t), t0, 1);
    const corpus_stats_t *cs = &gcs;
    const trg_counts_t *tc = trg_counts(t);
    int64_t skipped = cs->bad_utf8 + cs->bad_json + cs->no_text + cs->empty + cs->too_long;
    fprintf(
        stderr,
        "probe: triggers: %lld documents, %lld tokens (%lld positions counted, %lld through the "
        "model) in %.2f s: tokens_per_s=%.1f cpu_s=%.2f\n",
        (long long)tc->docs, (long long)tc->tokens, (long long)tc->counted,
        (long long)tc->fwd_tokens, t_stream, t_stream > 0 ? tc->tokens / t_stream : 0.0, c_stream);
    if (skipped || cs->split)
        fprintf(stderr,
                "probe: skipped %lld documents: %lld not UTF-8, %lld not JSON, %lld without text, "
                "%lld empty, %lld too long; %lld long documents cut into pieces\n",
                (long long)skipped, (long long)cs->bad_utf8, (long long)cs->bad_json,
                (long long)cs->no_text, (long long)cs->empty, (long long)cs->too_long,
                (long long)cs->split);
    if (fwd_only) {
        rc = EXIT_OK;
        goto done;
    }
    if (tc->docs == 0) {
        cli_fail("%s: the corpus has no documents%s", corpus,
                 skipped ? " that could be read (see the skipped counts above)" : "");
        goto done;
    }
    if (tc->counted == 0) {
        cli_fail("%s: no token positions to count (documents of BOS only?)", corpus);
        goto done;
    }
    trg_finish(t);
    double t1 = now_s();
    if (agreement && trg_agreement(t)) {
        cli_fail_err();
        goto done;
    }
    double t_agree = now_s() - t1;
    t1 = now_s();
    run_info_t ri = {corpus, corpus_format(cp), cs, tc, agreement};
    for (int i = 0; i < n_of; i++) {
        int bad = kind == 1 ? write_h5(ofile_tmp_path(of[i]), m, t, &ri)
                            : write_csv(ofile_tmp_path(of[i]), fns[i], m, t, agreement);
        if (bad) {
            cli_fail("%s: %s", paths[i], err_msg());
            goto done;
        }
    }
    /* All files complete: rename them with the signals held, so an interrupt
     * cannot fall between two renames. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    int bad = 0;
    for (int i = 0; i < n_of; i++) {
        if (!bad && ofile_commit(of[i]))
            bad = 1;
        else if (bad)
            ofile_abort(of[i]);
        of[i] = NULL;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (bad) {
        cli_fail_err();
        goto done;
    }
    fprintf(stderr, "probe: wrote %s%s (agreement %.2f s, writing %.2f s)\n", out,
            n_of > 1 ? " and its .stats/.hist/.agreement.csv" : "", t_agree, now_s() - t1);
    print_summary(t, agreement);
    rc = EXIT_OK;
done:
    for (int i = 0; i < MAXF; i++) {
        ofile_abort(of[i]);
        free(paths[i]);
    }
    free(ids);
    trg_free(t);
    fwd_free(f);
    corpus_close(cp);
    free(layers);
    model_close(m);
    if (ranks > 1 && !synced) { /* failed on the way: tell the others at their check */
        dist_progress_end();
        dist_all_ok(0, NULL);
    }
    dist_finalize();
    return rc;
mpi_fail:
    if (ranks > 1) {
        dist_progress_end();
        dist_all_ok(0, NULL);
    }
    dist_finalize();
    return EXIT_FAIL;
}
