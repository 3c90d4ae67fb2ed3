/* probe triggers: trigger examples against brute force, statistics against
 * GSL, the numpy reference (tests/ref/triggers_ref.py), the corpus reader,
 * bad input, stdin, Ctrl-C, and the planted-knowledge demo model.
 *
 * Brute force comes in two kinds.  In-process: a hook chained in front of
 * trg_hook records every activation of the very same forward pass, the test
 * decides on its own which positions count (the documented window rule),
 * sorts all candidates with qsort and demands identical triggers in identical
 * order, bit for bit.  Out of process: triggers_ref.py redoes everything
 * (corpus reading, tokenizer, float64 forward pass) in numpy. */
#include "tutil.h"

#include "analysis/acts.h"
#include "analysis/corpus.h"
#include "analysis/triggers.h"
#include "core/err.h"
#include "core/fwd.h"
#include "core/model.h"
#include "core/tok.h"

#include <criterion/criterion.h>
#include <gsl/gsl_errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define M260 "models/stories260K/"

static void setup(void) { gsl_set_error_handler_off(); }

static char *model_args(void) {
    static _Thread_local char b[8192];
    snprintf(b, sizeof b, "--model %s --tokenizer %s", tu_sharedp(M260 "stories260K.bin"),
             tu_sharedp(M260 "tok512.bin"));
    return b;
}

/* ---- a synthetic corpus -------------------------------------------------------- */

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* N_DOCS documents made by a walk over the word bigrams of the stories260K
 * greedy reference text, with sentences that stress quoting and UTF-8 mixed
 * in; about a third span several lines.  Returns the documents (NULL-ended,
 * caller frees) and writes them blank-line separated to PATH. */
static char **make_corpus(const char *path, int n_docs, int words_lo, int words_hi, uint64_t seed) {
    rng = seed;
    char *ref = tu_slurp(tu_sharedp("reference/stories260K/greedy.txt"), NULL);
    cr_assert(ref, "reference/stories260K/greedy.txt missing");
    char *w[4096];
    int nw = 0;
    for (char *p = strtok(ref, " \n"); p && nw < 4096; p = strtok(NULL, " \n"))
        w[nw++] = p;
    static const char *extra[] = {"\"Hello, world,\" said Tom.", "She said: \"no, 'yes', maybe\".",
                                  "Caf\xc3\xa9 cr\xc3\xa8me, na\xc3\xafve \xc3\xa9t\xc3\xa9.",
                                  "A cat \xf0\x9f\x90\xb1 sat, on the mat."};
    char **docs = calloc((size_t)n_docs + 1, sizeof *docs);
    FILE *f = path ? fopen(path, "w") : NULL;
    for (int d = 0; d < n_docs; d++) {
        size_t cap = 65536, len = 0;
        char *s = malloc(cap);
        int n = words_lo + (int)(rnd() % (unsigned)(words_hi - words_lo + 1));
        int i = (int)(rnd() % (unsigned)nw), multi = d % 3 == 0;
        for (int k = 0; k < n; k++) {
            const char *word;
            if (rnd() % 23 == 0)
                word = extra[rnd() % 4];
            else {
                /* Next word: a random successor of the current word. */
                int cand[64], nc = 0;
                for (int j = 0; j + 1 < nw && nc < 64; j++)
                    if (!strcmp(w[j], w[i])) cand[nc++] = j + 1;
                i = nc && rnd() % 5 ? cand[rnd() % (unsigned)nc] : (int)(rnd() % (unsigned)nw);
                word = w[i];
            }
            len += (size_t)snprintf(s + len, cap - len, "%s%s",
                                    k ? (multi && rnd() % 9 == 0 ? "\n" : " ") : "", word);
        }
        docs[d] = s;
        if (f) fprintf(f, "%s%s\n", d ? "\n" : "", s);
    }
    if (f) fclose(f);
    free(ref);
    return docs;
}

static void free_docs(char **d) {
    for (int i = 0; d && d[i]; i++)
        free(d[i]);
    free(d);
}

/* ---- in-process brute force -------------------------------------------------------- */

typedef struct {
    trg_t *t[2];
    int nt;
    /* The windows the test expects, in order (its own reading of the rule). */
    int *w_T, *w_r0, *w_s0, *w_doc;
    int n_win, cur;
    /* Every activation of every counted position. */
    const model_t *m;
    int F, n_slots, *slot;
    float *key, *pre, *up; /* (n_slots, cap, F) */
    int *pdoc, *ppos, P, cap, p0;
} rec_t;

static int rec_hook(void *u, int layer, hook_point_t p, float *data, int T, int width, int pos0) {
    rec_t *r = u;
    if (p == HOOK_RESID_PRE) {
        if (layer == 0) {
            int k = r->cur++;
            cr_assert(k < r->n_win, "more forward windows than expected");
            cr_assert_eq(T, r->w_T[k], "window %d: %d tokens, expected %d", k, T, r->w_T[k]);
            cr_assert_eq(pos0, 0);
            r->p0 = r->P;
            for (int t = r->w_r0[k]; t < T; t++) {
                cr_assert(r->P < r->cap);
                r->pdoc[r->P] = r->w_doc[k];
                r->ppos[r->P++] = r->w_s0[k] + t;
            }
        }
        return 0;
    }
    int s = r->slot[layer];
    if (s >= 0) {
        float *dst = p == HOOK_FFN_KEY ? r->key : p == HOOK_FFN_PRE ? r->pre : r->up;
        int r0 = r->w_r0[r->cur - 1];
        for (int t = r0; t < T; t++)
            memcpy(dst + ((size_t)s * r->cap + r->p0 + (t - r0)) * r->F, data + (size_t)t * width,
                   (size_t)width * sizeof(float));
    }
    for (int i = 0; i < r->nt; i++)
        if (trg_hook(r->t[i], layer, p, data, T, width, pos0)) return -1;
    return 0;
}

typedef struct {
    float v;
    int doc, pos, row;
} cand_t;

static int cand_cmp(const void *a, const void *b) {
    const cand_t *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    if (x->doc != y->doc) return x->doc < y->doc ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

typedef struct {
    int per, rank_pre, window, stride, skip_bos, top, context;
    const char *layers;
    int threaded; /* force the hook's threaded path (small models run it on one thread) */
} cfg_t;

static int octave_bin(float x) {
    /* Independent of the bit trick in triggers.c: frexp gives x = f 2^e with
     * 0.5 <= |f| < 1, so |x| lies in [2^(e-1), 2^e). */
    if (x == 0.0f || fabsf(x) < ldexpf(1.0f, -24)) return 40;
    int e;
    frexpf(x, &e);
    int oct = e - 1;
    if (oct > 15) oct = 15;
    int k = oct + 24;
    return x < 0 ? 39 - k : 41 + k;
}

static void brute_force(const cfg_t *cf, char **docs) {
    model_t *m = model_open(tu_sharedp(M260 "stories260K.bin"), tu_sharedp(M260 "tok512.bin"));
    cr_assert(m, "%s", err_msg());
    trg_opts_t o;
    trg_opts_default(&o, m);
    o.per = cf->per;
    o.rank_by = cf->rank_pre ? TRG_RANK_PRE : TRG_RANK_POST;
    if (cf->window) o.window = cf->window;
    o.stride = cf->stride ? cf->stride : o.window;
    o.skip_bos = cf->skip_bos;
    o.top = cf->top;
    o.context = cf->context;
    o.quantile_every = 1;
    if (cf->threaded) o.par_min = 1; /* the threaded split over neuron ranges, whatever the size */
    int *layers, nl;
    cr_assert_eq(acts_parse_layers(cf->layers, m->cfg.n_layer, &layers, &nl), 0);
    rec_t r = {0};
    r.m = m;
    r.F = m->cfg.n_ff;
    r.n_slots = nl;
    r.slot = malloc((size_t)m->cfg.n_layer * sizeof *r.slot);
    for (int l = 0; l < m->cfg.n_layer; l++)
        r.slot[l] = -1;
    for (int i = 0; i < nl; i++)
        r.slot[layers[i]] = i;
    /* Tokenize and plan the windows: position p counts in the first window
     * that holds it; window position 0 never with skip_bos. */
    int nd = 0;
    while (docs[nd])
        nd++;
    int **ids = calloc((size_t)nd, sizeof *ids), *nids = calloc((size_t)nd, sizeof *nids);
    int wcap = 1 << 16;
    r.w_T = malloc(wcap * sizeof(int));
    r.w_r0 = malloc(wcap * sizeof(int));
    r.w_s0 = malloc(wcap * sizeof(int));
    r.w_doc = malloc(wcap * sizeof(int));
    int total = 0;
    for (int d = 0; d < nd; d++) {
        cr_assert_eq(tok_encode(m->tok, docs[d], strlen(docs[d]), TOK_ADD_BOS, &ids[d], &nids[d]),
                     0);
        int n = nids[d], covered = 0;
        total += n;
        for (int s0 = 0;; s0 += o.stride) {
            int e = s0 + o.window < n ? s0 + o.window : n;
            int first = covered > s0 ? covered : s0;
            if (o.skip_bos && first == s0) first = s0 + 1;
            if (first < e) {
                r.w_T[r.n_win] = e - s0;
                r.w_r0[r.n_win] = first - s0;
                r.w_s0[r.n_win] = s0;
                r.w_doc[r.n_win++] = d;
            }
            covered = e;
            if (e >= n) break;
        }
    }
    r.cap = total;
    size_t big = (size_t)nl * r.cap * r.F;
    r.key = malloc(big * sizeof(float));
    r.pre = malloc(big * sizeof(float));
    r.up = malloc(big * sizeof(float));
    r.pdoc = malloc((size_t)r.cap * sizeof(int));
    r.ppos = malloc((size_t)r.cap * sizeof(int));
    r.t[0] = trg_new(m, layers, nl, &o);
    cr_assert(r.t[0], "%s", err_msg());
    r.nt = 1;
    fwd_t *f = fwd_new(m, o.window, o.window);
    cr_assert(f);
    fwd_set_hook(f, rec_hook, &r,
                 (1u << HOOK_RESID_PRE) | (1u << HOOK_FFN_PRE) | (1u << HOOK_FFN_UP) |
                     (1u << HOOK_FFN_KEY));
    for (int d = 0; d < nd; d++)
        cr_assert_eq(trg_run_doc(r.t[0], f, ids[d], nids[d], d, 1), 0, "%s", err_msg());
    cr_assert_eq(r.cur, r.n_win, "%d forward windows, expected %d", r.cur, r.n_win);
    cr_assert_eq(trg_counts(r.t[0])->counted, r.P);
    cr_assert_eq(trg_finish(r.t[0]), 0);
    /* Brute force: sort every candidate. */
    cand_t *c = malloc((size_t)r.P * sizeof *c);
    long checked = 0;
    for (int s = 0; s < nl; s++) {
        trg_stats_t st;
        cr_assert_eq(trg_get_stats(r.t[0], s, &st), 0);
        int64_t hist[81] = {0};
        for (int j = 0; j < r.F; j++) {
            int nc = 0;
            for (int i = 0; i < r.P; i++) {
                size_t x = ((size_t)s * r.cap + i) * r.F + j;
                float v = cf->rank_pre ? r.pre[x] : r.key[x];
                if (cf->per == TRG_PER_DOC && nc && c[nc - 1].doc == r.pdoc[i]) {
                    if (v > c[nc - 1].v) c[nc - 1] = (cand_t){v, r.pdoc[i], r.ppos[i], i};
                    continue;
                }
                c[nc++] = (cand_t){v, r.pdoc[i], r.ppos[i], i};
            }
            qsort(c, (size_t)nc, sizeof *c, cand_cmp);
            int want = nc < o.top ? nc : o.top;
            cr_assert_eq(trg_count(r.t[0], s, j), want, "layer slot %d neuron %d", s, j);
            for (int k = 0; k < want; k++) {
                trg_entry_t e;
                trg_get(r.t[0], s, j, k, &e);
                size_t x = ((size_t)s * r.cap + c[k].row) * r.F + j;
                cr_assert(e.doc == c[k].doc && e.pos == c[k].pos,
                          "slot %d neuron %d rank %d: (%lld,%d), brute force (%d,%d)", s, j, k,
                          (long long)e.doc, e.pos, c[k].doc, c[k].pos);
                cr_assert(e.key == r.key[x] && e.pre == r.pre[x] && e.up == r.up[x]);
                const int *di = ids[e.doc];
                int n = nids[e.doc];
                cr_assert_eq(e.token, di[e.pos]);
                cr_assert_eq(e.next, e.pos + 1 < n ? di[e.pos + 1] : -1);
                int start = e.pos - o.context + 1 > 0 ? e.pos - o.context + 1 : 0;
                cr_assert_eq(e.n_ctx, e.pos - start + 1);
                cr_assert_eq(e.ctx_prev, start ? di[start - 1] : -1);
                for (int q = 0; q < e.n_ctx; q++)
                    cr_assert_eq(e.ctx[q], di[start + q]);
                checked++;
            }
            /* Statistics from the recorded values, in double, two passes. */
            double mean = 0, M2 = 0, M3 = 0, M4 = 0;
            float mn = INFINITY, mx = -INFINITY;
            int64_t act = 0;
            for (int i = 0; i < r.P; i++) {
                size_t x = ((size_t)s * r.cap + i) * r.F + j;
                mean += r.key[x];
                mn = fminf(mn, r.key[x]);
                mx = fmaxf(mx, r.key[x]);
                act += r.pre[x] > 0;
                hist[octave_bin(r.key[x])]++;
            }
            mean /= r.P;
            for (int i = 0; i < r.P; i++) {
                double d = r.key[((size_t)s * r.cap + i) * r.F + j] - mean;
                M2 += d * d;
                M3 += d * d * d;
                M4 += d * d * d * d;
            }
            double n = r.P, var = M2 / (n - 1), skew = pow(n - 1, 1.5) / n * M3 / pow(M2, 1.5),
                   kurt = (n - 1) / n * (n - 1) * M4 / (M2 * M2) - 3;
            cr_assert(fabs(st.mean[j] - mean) <= 1e-9 * (fabs(mean) + 1e-3), "mean %g vs %g",
                      st.mean[j], mean);
            cr_assert(fabs(st.variance[j] - var) <= 1e-8 * var, "variance %g vs %g", st.variance[j],
                      var);
            cr_assert(fabs(st.skewness[j] - skew) <= 1e-6 * (fabs(skew) + 1), "skew %g vs %g",
                      st.skewness[j], skew);
            cr_assert(fabs(st.kurtosis[j] - kurt) <= 1e-6 * (fabs(kurt) + 1), "kurt %g vs %g",
                      st.kurtosis[j], kurt);
            cr_assert(st.min[j] == mn && st.max[j] == mx);
            cr_assert_eq(st.active[j], act);
        }
        cr_assert_eq(st.n_hist, 81);
        for (int b = 0; b < 81; b++)
            cr_assert_eq(st.hist[b], hist[b], "histogram bin %d", b);
    }
    cr_log_info("brute force: %ld triggers identical, %d positions, %d windows", checked, r.P,
                r.n_win);
    cr_assert(checked > 0);
    free(c);
    trg_free(r.t[0]);
    fwd_free(f);
    for (int d = 0; d < nd; d++)
        free(ids[d]);
    free(ids);
    free(nids);
    free(r.w_T), free(r.w_r0), free(r.w_s0), free(r.w_doc);
    free(r.key), free(r.pre), free(r.up), free(r.pdoc), free(r.ppos), free(r.slot);
    free(layers);
    model_close(m);
}

Test(triggers, brute_force_per_doc, .init = setup) {
    char **docs = make_corpus(NULL, 24, 10, 90, 11);
    cfg_t c = {TRG_PER_DOC, 0, 0, 0, 1, 7, 9, "all", 1};
    brute_force(&c, docs);
    free_docs(docs);
}

Test(triggers, brute_force_per_token_windows_pre, .init = setup) {
    /* Windows of 24 with stride 16: long documents span several windows. */
    char **docs = make_corpus(NULL, 16, 20, 120, 12);
    cfg_t c = {TRG_PER_TOKEN, 1, 24, 16, 1, 11, 6, "1,3", 1};
    brute_force(&c, docs);
    free_docs(docs);
}

Test(triggers, brute_force_per_doc_no_skip_bos_stride, .init = setup) {
    cfg_t c1 = {TRG_PER_DOC, 0, 20, 7, 0, 5, 40, "0,4", 0};
    char **docs = make_corpus(NULL, 14, 5, 60, 13);
    brute_force(&c1, docs);
    cfg_t c2 = {TRG_PER_TOKEN, 0, 32, 32, 1, 4, 3, "2", 0};
    brute_force(&c2, docs);
    free_docs(docs);
}

Test(triggers, brute_force_exact_ties, .init = setup) {
    /* Every document twice (copies later in the corpus): each activation ties
     * exactly with its copy's, so the order rests on the tie rule (lower
     * document, then lower position) for every neuron. */
    char **base = make_corpus(NULL, 6, 8, 60, 14);
    char **docs = calloc(13, sizeof *docs);
    for (int i = 0; i < 12; i++)
        docs[i] = strdup(base[i % 6]);
    cfg_t c1 = {TRG_PER_DOC, 0, 0, 0, 1, 9, 5, "0,3", 0};
    brute_force(&c1, docs);
    cfg_t c2 = {TRG_PER_TOKEN, 0, 0, 0, 1, 8, 5, "2", 0};
    brute_force(&c2, docs);
    free_docs(docs);
    free_docs(base);
}

/* ---- fast statistics against GSL's gsl_rstat, fed every value ---------------------- */

Test(triggers, stats_fast_vs_gsl_rstat, .init = setup) {
    model_t *m = model_open(tu_sharedp(M260 "stories260K.bin"), tu_sharedp(M260 "tok512.bin"));
    cr_assert(m, "%s", err_msg());
    char **docs = make_corpus(NULL, 20, 10, 80, 21);
    trg_opts_t o;
    trg_opts_default(&o, m);
    o.window = 48; /* several windows per document: many merges */
    o.stride = 48;
    o.quantile_every = 1;
    o.n_quantiles = 3;
    o.quantiles[2] = 0.9;
    int layers[] = {0, 2, 4};
    /* Each through its own forward pass: the same windows give the same floats. */
    trg_t *t[2];
    fwd_t *f[2];
    for (int i = 0; i < 2; i++) {
        o.exact_stats = i;
        t[i] = trg_new(m, layers, 3, &o);
        cr_assert(t[i], "%s", err_msg());
        f[i] = fwd_new(m, o.window, o.window);
        trg_attach(t[i], f[i]);
    }
    for (int d = 0; docs[d]; d++) {
        int *ids, n;
        cr_assert_eq(tok_encode(m->tok, docs[d], strlen(docs[d]), TOK_ADD_BOS, &ids, &n), 0);
        for (int i = 0; i < 2; i++)
            cr_assert_eq(trg_run_doc(t[i], f[i], ids, n, d, 1), 0);
        free(ids);
    }
    trg_finish(t[0]);
    trg_finish(t[1]);
    double worst[4] = {0};
    for (int s = 0; s < 3; s++) {
        trg_stats_t a, b;
        cr_assert_eq(trg_get_stats(t[0], s, &a), 0);
        cr_assert_eq(trg_get_stats(t[1], s, &b), 0);
        cr_assert_eq(a.n, b.n);
        for (int j = 0; j < m->cfg.n_ff; j++) {
            const double *x[4] = {a.mean, a.variance, a.skewness, a.kurtosis};
            const double *y[4] = {b.mean, b.variance, b.skewness, b.kurtosis};
            for (int k = 0; k < 4; k++) {
                double d = fabs(x[k][j] - y[k][j]) / (fabs(y[k][j]) + 1e-6);
                worst[k] = fmax(worst[k], d);
                cr_assert(d < 1e-8, "slot %d neuron %d moment %d: fast %.17g, gsl_rstat %.17g", s,
                          j, k, x[k][j], y[k][j]);
            }
            for (int q = 0; q < 3; q++)
                cr_assert(a.quantile[(size_t)q * m->cfg.n_ff + j] ==
                              b.quantile[(size_t)q * m->cfg.n_ff + j],
                          "quantile %d of neuron %d differs", q, j);
            cr_assert(a.min[j] == b.min[j] && a.max[j] == b.max[j] && a.active[j] == b.active[j]);
        }
        for (int k = 0; k < a.n_hist; k++)
            cr_assert_eq(a.hist[k], b.hist[k]);
    }
    cr_log_info("fast moments vs gsl_rstat: worst relative differences %.2e %.2e %.2e %.2e",
                worst[0], worst[1], worst[2], worst[3]);
    for (int i = 0; i < 2; i++)
        trg_free(t[i]), fwd_free(f[i]);
    free_docs(docs);
    model_close(m);
}

/* ---- against the numpy reference ------------------------------------------------------ */

static void vs_numpy(const char *opts, int with_csv) {
    char *dir = tu_tmpdir(), *out = NULL, *err = NULL;
    char corpus[4200];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    free_docs(make_corpus(corpus, 14, 10, 70, 31));
    int rc = tu_runf(NULL, &err, "%s triggers %s --corpus %s %s --out %s/t.h5 --quiet", tu_bin(),
                     model_args(), corpus, opts, dir);
    cr_assert_eq(rc, 0, "%s", err);
    free(err);
    if (with_csv) {
        rc = tu_runf(NULL, &err, "%s triggers %s --corpus %s %s --out %s/t.csv --quiet", tu_bin(),
                     model_args(), corpus, opts, dir);
        cr_assert_eq(rc, 0, "%s", err);
        free(err);
    }
    char csvarg[4300] = "";
    if (with_csv) snprintf(csvarg, sizeof csvarg, "--csv %s/t.csv", dir);
    rc = tu_runf(
        &out, &err,
        "%s tests/ref/triggers_ref.py --model %s --tokenizer %s --corpus %s --h5 %s/t.h5 %s",
        tu_py(), tu_sharedp(M260 "stories260K.bin"), tu_sharedp(M260 "tok512.bin"), corpus, dir,
        csvarg);
    cr_assert_eq(rc, 0, "reference mismatch:\n%s\n%s", out, err);
    cr_assert(strstr(out, "triggers_ref: OK"), "%s", out);
    const char *last = strstr(out, "triggers_ref: ");
    cr_log_info("%s: %.*s", opts, last ? (int)strcspn(last, "\n") : 0, last ? last : "");
    free(out);
    free(err);
    tu_runf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

Test(triggers, vs_numpy_per_doc_h5_and_csv, .timeout = 300) { vs_numpy("--top 6 --context 12", 1); }

Test(triggers, vs_numpy_per_token_windows_pre, .timeout = 300) {
    vs_numpy("--per token --rank-by pre --window 40 --stride 24 --no-skip-bos --top 5 --layer 1,4 "
             "--quantile-every 1",
             0);
}

/* ---- the corpus reader ------------------------------------------------------------------- */

static int read_all(const char *path, corpus_fmt_t fmt, size_t cap, char ***texts, int64_t **ids,
                    corpus_stats_t *st) {
    corpus_t *c = corpus_open(path, fmt, cap);
    cr_assert(c, "%s", err_msg());
    int n = 0;
    *texts = NULL;
    *ids = NULL;
    const char *t;
    size_t len;
    int64_t id;
    int r;
    while ((r = corpus_next(c, &t, &len, &id)) == 1) {
        *texts = realloc(*texts, (size_t)(n + 1) * sizeof **texts);
        *ids = realloc(*ids, (size_t)(n + 1) * sizeof **ids);
        cr_assert_eq(strlen(t), len);
        (*texts)[n] = strdup(t);
        (*ids)[n++] = id;
    }
    cr_assert_eq(r, 0);
    *st = *corpus_stats(c);
    corpus_close(c);
    return n;
}

static void write_file(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fwrite(data, 1, n, f);
    fclose(f);
}

Test(triggers, corpus_reader) {
    char *dir = tu_tmpdir(), p[4200];
    char **tx;
    int64_t *id;
    corpus_stats_t st;
    /* Paragraphs: CRLF, several blank lines, whitespace-only lines, no final newline. */
    snprintf(p, sizeof p, "%s/a.txt", dir);
    const char a[] = "one\r\ntwo\r\n\r\n\r\n  \t\nthree\n\n\xff bad\n\nfour\nfive";
    write_file(p, a, sizeof a - 1);
    int n = read_all(p, CORPUS_AUTO, 1 << 20, &tx, &id, &st);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(tx[0], "one\ntwo");
    cr_assert_str_eq(tx[1], "three");
    cr_assert_str_eq(tx[2], "four\nfive");
    cr_assert(id[0] == 0 && id[1] == 1 && id[2] == 3, "ids count the skipped document");
    cr_assert(st.bad_utf8 == 1 && st.ids == 4 && st.docs == 3 && st.bytes == sizeof a - 1);
    for (int i = 0; i < n; i++)
        free(tx[i]);
    free(tx), free(id);
    /* Lines. */
    n = read_all(p, CORPUS_LINES, 1 << 20, &tx, &id, &st);
    cr_assert_eq(n, 5);
    cr_assert_str_eq(tx[4], "five");
    cr_assert(st.bad_utf8 == 1 && id[3] == 4);
    for (int i = 0; i < n; i++)
        free(tx[i]);
    free(tx), free(id);
    /* JSON Lines: good, no text, not JSON, empty text, non-string text, too long, escapes. */
    snprintf(p, sizeof p, "%s/b.jsonl", dir);
    const char b[] = "{\"text\": \"a \\\"quoted\\\"\\nline\"}\n{\"title\": \"x\"}\nnot json\n\n"
                     "{\"text\": \"\"}\n{\"text\": 5}\n{\"text\": "
                     "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}\n"
                     "{\"text\": \"caf\\u00e9\"}\n";
    write_file(p, b, sizeof b - 1);
    n = read_all(p, CORPUS_AUTO, 40, &tx, &id, &st);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(tx[0], "a \"quoted\"\nline");
    cr_assert_str_eq(tx[1], "caf\xc3\xa9");
    cr_assert(id[0] == 0 && id[1] == 6, "id %lld", (long long)id[1]);
    cr_assert(st.no_text == 2 && st.bad_json == 1 && st.empty == 1 && st.too_long == 1,
              "no_text %lld bad_json %lld empty %lld too_long %lld", (long long)st.no_text,
              (long long)st.bad_json, (long long)st.empty, (long long)st.too_long);
    for (int i = 0; i < n; i++)
        free(tx[i]);
    free(tx), free(id);
    /* Long documents are cut at most MAX_DOC bytes, at line ends when possible,
     * else on a character boundary; nothing is lost. */
    snprintf(p, sizeof p, "%s/c.txt", dir);
    char big[4096];
    size_t k = 0;
    for (int i = 0; i < 30; i++)
        k += (size_t)snprintf(big + k, sizeof big - k, "w%d \xc3\xa9\xe2\x82\xac ", i);
    k += (size_t)snprintf(big + k, sizeof big - k, "\nshort line\n\nnext doc\n");
    write_file(p, big, k);
    n = read_all(p, CORPUS_TEXT, 16, &tx, &id, &st);
    cr_assert(n > 10 && st.split > 0 && st.bad_utf8 == 0);
    char joined[4096] = "";
    for (int i = 0; i < n; i++) {
        cr_assert(strlen(tx[i]) <= 16, "piece %d has %zu bytes", i, strlen(tx[i]));
        cr_assert(i == 0 || id[i] == id[i - 1] + 1);
        if (strcmp(tx[i], "next doc")) strcat(joined, tx[i]);
        free(tx[i]);
    }
    free(tx), free(id);
    big[k - strlen("\nshort line\n\nnext doc\n")] = '\0';
    cr_assert(strncmp(joined, big, strlen(big)) == 0, "pieces do not join to the line");
    cr_assert_str_eq(joined + strlen(big), "short line");
    tu_runf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

/* ---- bad input ------------------------------------------------------------------------------ */

Test(triggers, bad_input) {
    char *dir = tu_tmpdir(), *out = NULL, *err = NULL, p[4200];
    /* Not UTF-8 in places: those documents are skipped and counted. */
    snprintf(p, sizeof p, "%s/bad.txt", dir);
    const char bad[] =
        "Once upon a time there was a cat.\n\nThe dog \xc3\x28 ran.\n\nLily was happy.\n\n"
        "Bad \xed\xa0\x80 surrogate.\n\nTom saw a big ball.\n";
    write_file(p, bad, sizeof bad - 1);
    int rc = tu_runf(&out, &err, "%s triggers %s --corpus %s --top 3 --out %s/bad.h5", tu_bin(),
                     model_args(), p, dir);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(err, "2 not UTF-8"), "%s", err);
    free(out), free(err);
    rc = tu_runf(&out, &err,
                 "%s -c \"import h5py,numpy as np; f=h5py.File('%s/bad.h5'); a=f.attrs; "
                 "print(a['skipped_bad_utf8'], a['n_docs'], a['n_doc_ids'], "
                 "sorted(set(np.unique(f['layer_0/doc'][()]).tolist())))\"",
                 tu_py(), dir);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "2 3 5 [0, 2, 4]"), "skipped documents keep their ids: %s", out);
    free(out), free(err);
    /* An empty corpus, and one of blank lines: an error, no output file. */
    snprintf(p, sizeof p, "%s/empty.txt", dir);
    write_file(p, "", 0);
    rc = tu_runf(&out, &err, "%s triggers %s --corpus %s --out %s/e.h5", tu_bin(), model_args(), p,
                 dir);
    cr_assert_eq(rc, 1, "%s", err);
    cr_assert(strstr(err, "no documents"), "%s", err);
    free(out), free(err);
    write_file(p, "\n \n\t\n\n", 6);
    rc = tu_runf(&out, &err, "%s triggers %s --corpus %s --out %s/e.csv", tu_bin(), model_args(), p,
                 dir);
    cr_assert_eq(rc, 1, "%s", err);
    free(out), free(err);
    cr_assert(!tu_exists(strcat(strcpy(p, dir), "/e.h5")) &&
              !tu_exists(strcat(strcpy(p, dir), "/e.csv")));
    /* JSON Lines with a line without text, a broken line and an empty text. */
    snprintf(p, sizeof p, "%s/c.jsonl", dir);
    const char js[] = "{\"text\": \"Lily saw a big red ball.\"}\n{\"id\": 7}\n{\"text\": \n"
                      "{\"text\": \"\"}\n{\"text\": \"Tom was sad.\"}\n";
    write_file(p, js, sizeof js - 1);
    rc = tu_runf(&out, &err, "%s triggers %s --corpus %s --top 2 --out %s/j.csv", tu_bin(),
                 model_args(), p, dir);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(err, "1 not JSON, 1 without text, 1 empty"), "%s", err);
    free(out), free(err);
    /* A window larger than the model's context; a stride larger than the window. */
    rc = tu_runf(&out, &err, "%s triggers %s --corpus %s --window 100000 --out %s/w.h5", tu_bin(),
                 model_args(), p, dir);
    cr_assert_eq(rc, 2, "%s", err);
    cr_assert(strstr(err, "larger than the model's context of 512"), "%s", err);
    free(out), free(err);
    rc = tu_runf(&out, &err, "%s triggers %s --corpus %s --window 16 --stride 17 --out %s/w.h5",
                 tu_bin(), model_args(), p, dir);
    cr_assert_eq(rc, 2, "%s", err);
    free(out), free(err);
    rc = tu_runf(&out, &err, "%s triggers %s --corpus %s/missing.txt --out %s/w.h5", tu_bin(),
                 model_args(), dir, dir);
    cr_assert_eq(rc, 1, "%s", err);
    cr_assert(strstr(err, "missing.txt"), "%s", err);
    free(out), free(err);
    cr_assert(!tu_exists(strcat(strcpy(p, dir), "/w.h5")));
    cr_assert(tu_no_temp_files(dir));
    tu_runf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

/* ---- stdin, and Ctrl-C ---------------------------------------------------------------------- */

Test(triggers, stdin_equals_file) {
    char *dir = tu_tmpdir(), *err = NULL, p[4200];
    snprintf(p, sizeof p, "%s/c.txt", dir);
    free_docs(make_corpus(p, 12, 5, 50, 41));
    int rc =
        tu_runf(NULL, &err,
                "%s triggers %s --corpus %s --per token --top 4 --out %s/a.csv --quiet && "
                "cat %s | %s triggers %s --corpus - --per token --top 4 --out %s/b.csv --quiet && "
                "cmp %s/a.csv %s/b.csv && cmp %s/a.stats.csv %s/b.stats.csv",
                tu_bin(), model_args(), p, dir, p, tu_bin(), model_args(), dir, dir, dir, dir, dir);
    cr_assert_eq(rc, 0, "%s", err);
    free(err);
    tu_runf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

Test(triggers, interrupt_leaves_no_output, .timeout = 120) {
    char *dir = tu_tmpdir(), *out = NULL, p[4200];
    snprintf(p, sizeof p, "%s/c.txt", dir);
    free_docs(make_corpus(p, 40, 20, 80, 51));
    /* ~100 copies: many seconds of work, interrupted after one. */
    int rc = tu_runf(&out, NULL,
                     "cd %s && for i in $(seq 100); do cat c.txt; echo; done > big.txt && "
                     "( %s triggers %s --corpus big.txt --out out.h5 --quiet & pid=$!; sleep 1; "
                     "kill -INT $pid; wait $pid; echo status=$? ); ls -a",
                     dir, tu_bin(), model_args());
    cr_assert_eq(rc, 0);
    cr_assert(strstr(out, "status=130"), "the run was not interrupted by SIGINT: %s", out);
    cr_assert(!strstr(out, "out.h5"), "an interrupted run left a file: %s", out);
    cr_assert(tu_no_temp_files(dir), "a temporary was left: %s", out);
    free(out);
    tu_runf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

Test(triggers, signal_at_any_time_complete_or_none, .timeout = 240) {
    /* SIGINT or SIGTERM at delays spread over a short run (streaming, the
     * agreement, writing, renaming).  After each run either every output file
     * is there, complete and readable (HDF5 through h5py, the four CSVs
     * through pandas, the counts consistent), or none is; no temporaries.
     * The exit status is 0 or the signal's: a signal that arrives while the
     * finished files are being renamed (signals held) is delivered right
     * after, so a killed run may still have left the complete set. */
    /* (A background job starts with SIGINT ignored until probe installs its
     * handler, so the first, early signal is SIGTERM: at least one run is
     * killed however fast the machine.) */
    char *dir = tu_tmpdir(), *out = NULL, *err = NULL, p[4200];
    snprintf(p, sizeof p, "%s/c.txt", dir);
    free_docs(make_corpus(p, 30, 20, 80, 52));
    static const char *delays[] = {"0.02", "0.3", "0.5", "0.7", "0.9", "1.1", "1.3", "1.6", "2.0"};
    int done = 0, killed = 0;
    for (int i = 0; i < 9; i++) {
        const char *ext = i % 2 ? "csv" : "h5", *sig = i % 4 == 0 || i % 4 == 3 ? "TERM" : "INT";
        int rc = tu_runf(
            &out, &err,
            "cd %s && rm -f o.* && ( %s triggers %s --corpus c.txt --top 4 --out o.%s --quiet "
            "--threads 1 >/dev/null 2>&1 & pid=$!; sleep %s; kill -%s $pid 2>/dev/null; "
            "wait $pid; echo status=$? ); ls -a",
            dir, tu_bin(), model_args(), ext, delays[i], sig);
        cr_assert_eq(rc, 0, "%s", err);
        free(err);
        int st = -1;
        const char *s = strstr(out, "status=");
        cr_assert(s && sscanf(s, "status=%d", &st) == 1, "%s", out);
        int want_sig = !strcmp(sig, "INT") ? 130 : 143;
        cr_assert(st == 0 || st == want_sig, "SIG%s after %s s: status %d\n%s", sig, delays[i], st,
                  out);
        cr_assert(tu_no_temp_files(dir), "a temporary was left: %s", out);
        int n_files = !!strstr(out, "o.h5") + !!strstr(out, "o.csv") +
                      !!strstr(out, "o.stats.csv") + !!strstr(out, "o.hist.csv") +
                      !!strstr(out, "o.agreement.csv");
        int want_files = !strcmp(ext, "h5") ? 1 : 4;
        cr_assert(n_files == 0 || n_files == want_files, "SIG%s after %s s left %d of %d files: %s",
                  sig, delays[i], n_files, want_files, out);
        if (st != 0) killed++;
        if (n_files == 0) {
            cr_assert(st != 0, "exit 0 without output: %s", out);
        } else {
            const char *chk =
                !strcmp(ext, "h5")
                    ? "import h5py,sys; f=h5py.File(sys.argv[1]+'/o.h5','r'); "
                      "n=int(f.attrs['n_docs']); assert n==30, n; "
                      "assert f['layer_0/count'][()].sum()>0 and 'agreement' in f"
                    : "import pandas as pd,sys; d=sys.argv[1]; t=pd.read_csv(d+'/o.csv'); "
                      "s=pd.read_csv(d+'/o.stats.csv'); pd.read_csv(d+'/o.hist.csv'); "
                      "a=pd.read_csv(d+'/o.agreement.csv'); assert len(t)>0 and len(s)>0 and "
                      "len(a)==5";
            rc = tu_runf(NULL, &err, "%s -c \"%s\" %s", tu_py(), chk, dir);
            cr_assert_eq(rc, 0, "SIG%s after %s s (status %d): the output is not complete:\n%s",
                         sig, delays[i], st, err);
            free(err);
            done++;
        }
        free(out);
    }
    cr_log_info("signals: %d runs killed, %d left complete output", killed, done);
    cr_assert(killed > 0, "no run was interrupted: the corpus is too small for the delays");
    tu_runf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

/* ---- the planted-knowledge demo model -------------------------------------------------------- */

Test(triggers, demo_planted_agreement, .timeout = 900) {
    /* Its own copy of the demo model, from $PROBE_MKDEMO (make check builds
     * it) and $PROBE_FACTS, as tests/test_demo.c does. */
    char *dir = tu_tmpdir(), *out = NULL, *err = NULL;
    char demo[4200];
    const char *mk = getenv("PROBE_MKDEMO"), *facts = getenv("PROBE_FACTS");
    snprintf(demo, sizeof demo, "%s/demo-model", dir);
    /* The generator's own leak checks belong to tests/test_demo.c; here it is
     * only a tool (under asan-test it is built with the sanitizers too). */
    int rc =
        tu_runf(NULL, &err,
                "ASAN_OPTIONS=\"$ASAN_OPTIONS:detect_leaks=0\" %s --facts %s --out %s >/dev/null",
                mk && *mk ? mk : "build/mkdemo", facts && *facts ? facts : "data/facts.csv", demo);
    cr_assert_eq(rc, 0, "the demo model generator failed: %s", err);
    free(err);
    /* The corpus: every fact prompt followed by its object, one per line. */
    rc = tu_runf(
        &out, &err,
        "%s tests/ref/triggers_ref.py --demo-corpus %s/prompts.csv > %s/demo.txt && "
        "%s triggers --model %s --corpus %s/demo.txt --lines --per token --top 8 --no-stats "
        "--out %s/demo.h5 --quiet && "
        "%s tests/ref/triggers_ref.py --demo %s --h5 %s/demo.h5",
        tu_py(), demo, dir, tu_bin(), demo, dir, dir, tu_py(), demo, dir);
    cr_assert_eq(rc, 0, "%s\n%s", out, err);
    cr_assert(strstr(out, "triggers_demo: OK"), "%s", out);
    const char *s = strstr(out, "triggers_demo: ");
    cr_log_info("%.*s", s ? (int)strcspn(s, "\n") : 0, s ? s : "");
    free(out), free(err);
    tu_runf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}
