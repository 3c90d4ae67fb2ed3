/* trace: sub-updates, logit lens, attribution to a target and neuron
 * interventions for one prompt (see trace.h for the definitions).
 *
 * One forward pass per run (base, intervened) over the whole prompt; a hook
 * copies the residuals, FFN outputs and key activations of the traced
 * positions and, in the intervened run, rewrites key activations in place.
 * Everything else is computed afterwards from those copies: lenses as one
 * GEMM of the normalised residuals against the unembedding, contributions as
 * one GEMV of the target direction against each layer's value matrix, and
 * the tokens of the listed sub-updates through analysis/values (gain mode). */
#include "trace.h"

#include "analysis/csvw.h"
#include "analysis/h5w.h"
#include "analysis/topk.h"
#include "analysis/values.h"
#include "core/err.h"

#include <gsl/gsl_blas.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    fwd_t *f;
    int max_ctx;
    int *slot;      /* (max_ctx) traced slot of a prompt position, or -1 */
    float *logits;  /* (T, vocab) */
    float *g, *b;   /* (d) final norm gain and bias (b NULL when none) */
    float *scratch; /* lin_apply dequantisation blocks */
    size_t ns;
    float *rows;  /* (2L, d) lens / projection inputs */
    float *lens;  /* (2L, vocab) lens logits of the position being analysed */
    float *proj;  /* (L, vocab) FFN-output projections */
    float *score; /* (n_ff) ranking scores */
    values_t *vals;
    /* Hook state. */
    trace_run_t *cap; /* run whose traced positions are being captured, or NULL */
    int apply_iv;
} priv_t;

/* ---- Interventions: names and parsing ---------------------------------------------- */

const char *trace_iv_kind_name(trace_ivkind_t k) {
    static const char *n[] = {"ablate", "scale", "set", "on"};
    return (unsigned)k < 4 ? n[k] : "?";
}

static int parse_long(const char **p, long *v) {
    const char *s = *p;
    if (*s < '0' || *s > '9') return -1;
    char *end;
    *v = strtol(s, &end, 10);
    if (end - s > 9) return -1;
    *p = end;
    return 0;
}

int trace_parse_ivs(const char *spec, trace_ivkind_t kind, int n_layer, int n_ff, trace_iv_t **ivs,
                    int *n) {
    int want_value = kind == TRACE_IV_SCALE || kind == TRACE_IV_SET;
    const char *form = want_value ? "L:N=x[,L:N=x...]" : "L:N[,L:N...]";
    if (!*spec) return err_set("%s: empty list (want %s)", trace_iv_kind_name(kind), form);
    const char *p = spec;
    for (;;) {
        const char *item = p;
        size_t ilen = strcspn(item, ",");
        long layer, neuron;
        double value = 0;
        if (parse_long(&p, &layer) || *p != ':') goto bad;
        p++;
        if (parse_long(&p, &neuron)) goto bad;
        if (want_value) {
            if (*p != '=') goto bad;
            p++;
            size_t vl = strcspn(p, ",");
            char buf[64];
            if (vl == 0 || vl >= sizeof buf) goto bad;
            memcpy(buf, p, vl);
            buf[vl] = '\0';
            char *end;
            value = strtod(buf, &end);
            if (*end || !isfinite(value) || fabs(value) > 3.4e38) goto bad;
            p += vl;
        }
        if (*p != ',' && *p != '\0') goto bad;
        if (layer >= n_layer)
            return err_set("%s '%.*s': layer %ld is out of range: this model has layers 0..%d",
                           trace_iv_kind_name(kind), (int)ilen, item, layer, n_layer - 1);
        if (neuron >= n_ff)
            return err_set("%s '%.*s': neuron %ld is out of range: layers have neurons 0..%d",
                           trace_iv_kind_name(kind), (int)ilen, item, neuron, n_ff - 1);
        trace_iv_t *r = realloc(*ivs, (size_t)(*n + 1) * sizeof *r);
        if (!r) return err_set("out of memory");
        *ivs = r;
        r[*n] = (trace_iv_t){(int)layer, (int)neuron, kind, (float)value};
        (*n)++;
        if (*p == '\0') break;
        p++;
        continue;
    bad:
        return err_set("%s: '%.*s' is not understood: want %s (0-based layer:neuron%s)",
                       trace_iv_kind_name(kind), (int)ilen, item, form,
                       want_value ? "=number" : "");
    }
    return 0;
}

int trace_check_ivs(const trace_iv_t *ivs, int n) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (ivs[i].layer == ivs[j].layer && ivs[i].neuron == ivs[j].neuron)
                return err_set("neuron %d:%d has two interventions (%s and %s): give one",
                               ivs[i].layer, ivs[i].neuron, trace_iv_kind_name(ivs[j].kind),
                               trace_iv_kind_name(ivs[i].kind));
    return 0;
}

/* ---- Target ------------------------------------------------------------------------------ */

int trace_resolve_target(const tok_t *tok, const char *text, int *id) {
    if (!*text) return err_set("the target is empty: give the text of one token");
    int k = tok_lookup_text(tok, text);
    if (k >= 0) {
        *id = k;
        return 0;
    }
    int *ids = NULL, n = 0;
    /* As the text would tokenize inside a prompt: an SPM tokenizer's dummy
     * prefix stands for the leading space, so that space is not doubled. */
    const char *enc = text;
    if (tok->add_dummy_prefix && text[0] == ' ' && text[1]) enc = text + 1;
    if (tok_encode(tok, enc, strlen(enc), 0, &ids, &n)) return err_prefix("target");
    char list[1024] = "", tb[128];
    size_t o = 0;
    for (int i = 0; i < n && o < sizeof list - 200; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s'%s' (id %d)", i ? " + " : "",
                              tok_display(tok, ids[i], tb, sizeof tb), ids[i]);
    if (n > 0 && o >= sizeof list - 200) snprintf(list + o, sizeof list - o, " + ...");
    int first = n > 0 ? ids[0] : -1;
    free(ids);
    if (n == 1)
        return err_set("target '%s' is not the exact text of a token; it tokenizes as %s: use "
                       "that token's text or --target-id %d",
                       text, list, first);
    return err_set("target '%s' is not one token: it tokenizes as %s; name a single token with "
                   "--target-id ID (e.g. --target-id %d)",
                   text, n ? list : "nothing", first);
}

/* ---- Small numerics ------------------------------------------------------------------------ */

/* The activation of the gate, as the forward pass computes it. */
static float act_f(act_t a, float x) {
    switch (a) {
    case ACT_SILU: return x / (1.0f + expf(-x));
    case ACT_GELU_TANH: /* x * sigmoid(2z): the form core/fwd.c uses */
        return x / (1.0f + expf(-1.5957691216057308f * (x + 0.044715f * x * x * x)));
    case ACT_GELU_ERF: return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
    case ACT_RELU: return x > 0 ? x : 0.0f;
    }
    return x;
}

/* The final norm applied to one residual X (d) into Y; returns its sigma. */
static float final_norm(const trace_t *t, const float *x, float *y) {
    const priv_t *P = t->priv;
    int d = t->d;
    float eps = t->m->cfg.norm_eps;
    if (t->layernorm) {
        double mean = 0, var = 0;
        for (int i = 0; i < d; i++)
            mean += x[i];
        mean /= d;
        for (int i = 0; i < d; i++)
            var += (x[i] - mean) * (x[i] - mean);
        var /= d;
        float inv = (float)(1.0 / sqrt(var + eps));
        if (y)
            for (int i = 0; i < d; i++)
                y[i] = (float)(x[i] - mean) * inv * P->g[i] + (P->b ? P->b[i] : 0.0f);
        return (float)sqrt(var + eps);
    }
    double ss = 0;
    for (int i = 0; i < d; i++)
        ss += (double)x[i] * x[i];
    float inv = (float)(1.0 / sqrt(ss / d + eps));
    if (y)
        for (int i = 0; i < d; i++)
            y[i] = P->g[i] * (x[i] * inv);
    return (float)sqrt(ss / d + eps);
}

/* Top K of logits Z (vocab) with softmax probabilities (or raw logits when
 * PROBS is 0), and the target's rank, probability and logit. */
static void logit_stats(const float *z, int V, int target, int k, int probs, int32_t *top,
                        float *top_v, int32_t *rank, float *tprob, float *tlogit) {
    topk_select(z, V, k, 0, 0, top);
    double mx = z[top[0]], sum = 0;
    if (probs || tprob) {
        for (int j = 0; j < V; j++)
            sum += exp((double)z[j] - mx);
    }
    for (int j = 0; j < k; j++)
        top_v[j] = probs ? (float)(exp((double)z[top[j]] - mx) / sum) : z[top[j]];
    if (target >= 0) {
        float zt = z[target];
        int r = 0;
        for (int j = 0; j < V; j++)
            r += z[j] > zt || (z[j] == zt && j < target);
        if (rank) *rank = r;
        if (tprob) *tprob = (float)(exp((double)zt - mx) / sum);
        if (tlogit) *tlogit = zt;
    }
}

/* ---- Value matrices ------------------------------------------------------------------------ */

/* Value i is column i of a (d, n_ff) down projection, or row i of a
 * transposed (n_ff, d) one (GPT-2 Conv1D).  Non-F32 weights are read a block
 * of rows at a time (at most ~4M floats). */
static int64_t block_rows(int64_t rows, int64_t cols) {
    int64_t rb = ((int64_t)4 << 20) / (cols ? cols : 1);
    if (rb < 1) rb = 1;
    return rb < rows ? rb : rows;
}

int trace_value_dots(const model_t *m, int layer, const float *a, float *w) {
    const lin_t *dn = &m->layers[layer].down;
    int d = m->cfg.d_model, ff = m->cfg.n_ff;
    int64_t rows = dn->transposed ? ff : d, cols = dn->transposed ? d : ff;
    if (dn->w->dtype == DT_F32) {
        gsl_matrix_float_const_view W =
            gsl_matrix_float_const_view_array(dn->w->data, (size_t)rows, (size_t)cols);
        gsl_vector_float_const_view x = gsl_vector_float_const_view_array(a, (size_t)d);
        gsl_vector_float_view y = gsl_vector_float_view_array(w, (size_t)ff);
        gsl_blas_sgemv(dn->transposed ? CblasNoTrans : CblasTrans, 1.0f, &W.matrix, &x.vector, 0.0f,
                       &y.vector);
        return 0;
    }
    int64_t rb = block_rows(rows, cols);
    float *s = malloc((size_t)(rb * cols) * sizeof *s);
    if (!s) return err_set("out of memory");
    if (!dn->transposed) memset(w, 0, (size_t)ff * sizeof *w);
    for (int64_t r0 = 0; r0 < rows; r0 += rb) {
        int64_t nr = rows - r0 < rb ? rows - r0 : rb;
        tensor_get_rows(dn->w, r0, nr, s);
        gsl_matrix_float_const_view W =
            gsl_matrix_float_const_view_array(s, (size_t)nr, (size_t)cols);
        if (dn->transposed) { /* rows are neurons r0.. */
            gsl_vector_float_const_view x = gsl_vector_float_const_view_array(a, (size_t)d);
            gsl_vector_float_view y = gsl_vector_float_view_array(w + r0, (size_t)nr);
            gsl_blas_sgemv(CblasNoTrans, 1.0f, &W.matrix, &x.vector, 0.0f, &y.vector);
        } else { /* rows are output dimensions r0.. */
            gsl_vector_float_const_view x = gsl_vector_float_const_view_array(a + r0, (size_t)nr);
            gsl_vector_float_view y = gsl_vector_float_view_array(w, (size_t)ff);
            gsl_blas_sgemv(CblasTrans, 1.0f, &W.matrix, &x.vector, 1.0f, &y.vector);
        }
    }
    free(s);
    return 0;
}

int trace_value_dots_naive(const model_t *m, int layer, const float *a, float *w) {
    const lin_t *dn = &m->layers[layer].down;
    int d = m->cfg.d_model, ff = m->cfg.n_ff;
    int64_t rows = dn->transposed ? ff : d, cols = dn->transposed ? d : ff;
    float *row = malloc((size_t)cols * sizeof *row);
    double *acc = calloc((size_t)ff, sizeof *acc);
    if (!row || !acc) {
        free(row);
        free(acc);
        return err_set("out of memory");
    }
    for (int64_t r = 0; r < rows; r++) {
        tensor_get_rows(dn->w, r, 1, row);
        for (int64_t c = 0; c < cols; c++) {
            if (dn->transposed)
                acc[r] += (double)row[c] * a[c];
            else
                acc[c] += (double)row[c] * a[r];
        }
    }
    for (int i = 0; i < ff; i++)
        w[i] = (float)acc[i];
    free(row);
    free(acc);
    return 0;
}

/* ||v_i|| for every neuron of LAYER into NORM (n_ff). */
static int value_norms(const model_t *m, int layer, float *norm) {
    const lin_t *dn = &m->layers[layer].down;
    int ff = m->cfg.n_ff, d = m->cfg.d_model;
    int64_t rows = dn->transposed ? ff : d, cols = dn->transposed ? d : ff;
    int64_t rb = block_rows(rows, cols);
    float *s = malloc((size_t)(rb * cols) * sizeof *s);
    double *acc = calloc((size_t)ff, sizeof *acc);
    if (!s || !acc) {
        free(s);
        free(acc);
        return err_set("out of memory");
    }
    for (int64_t r0 = 0; r0 < rows; r0 += rb) {
        int64_t nr = rows - r0 < rb ? rows - r0 : rb;
        tensor_get_rows(dn->w, r0, nr, s);
        for (int64_t r = 0; r < nr; r++)
            for (int64_t c = 0; c < cols; c++) {
                double v = s[r * cols + c];
                acc[dn->transposed ? r0 + r : c] += v * v;
            }
    }
    for (int i = 0; i < ff; i++)
        norm[i] = (float)sqrt(acc[i]);
    free(s);
    free(acc);
    return 0;
}

/* ---- Per-position buffers ------------------------------------------------------------------ */

static void pos_free(trace_pos_t *p) {
    void *bufs[] = {p->logits,
                    p->top_ids,
                    p->top_probs,
                    p->lens_last,
                    p->lens_top_ids,
                    p->lens_top_probs,
                    p->lens_target_rank,
                    p->lens_target_prob,
                    p->lens_target_logit,
                    p->ffn_top_ids,
                    p->ffn_top_logits,
                    p->ffn_target_logit,
                    p->resid_mid,
                    p->resid_post,
                    p->ffn_out,
                    p->key,
                    p->pre,
                    p->gate_act,
                    p->up,
                    p->value_target,
                    p->contrib,
                    p->by_norm,
                    p->by_contrib,
                    p->promo_norm,
                    p->promo_contrib};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(bufs[i]);
    memset(p, 0, sizeof *p);
}

static int pos_alloc(const trace_t *t, trace_pos_t *p, int pos) {
    size_t L = (size_t)t->n_layer, V = (size_t)t->vocab, d = (size_t)t->d, ff = (size_t)t->n_ff,
           kt = (size_t)t->o.k_tokens, kn = (size_t)t->o.k_neurons, kp = (size_t)t->o.k_promoted;
    memset(p, 0, sizeof *p);
    p->pos = pos;
    p->target = -1;
#define A(f, n) ok &= (p->f = calloc((n) > 0 ? (n) : 1, sizeof *p->f)) != NULL
    int ok = 1;
    A(logits, V);
    A(top_ids, kt);
    A(top_probs, kt);
    A(lens_last, V);
    A(lens_top_ids, 2 * L * kt);
    A(lens_top_probs, 2 * L * kt);
    A(lens_target_rank, 2 * L);
    A(lens_target_prob, 2 * L);
    A(lens_target_logit, 2 * L);
    A(ffn_top_ids, L * kt);
    A(ffn_top_logits, L * kt);
    A(ffn_target_logit, L);
    A(resid_mid, L * d);
    A(resid_post, L * d);
    A(ffn_out, L * d);
    A(key, L * ff);
    A(pre, L * ff);
    if (t->gated) {
        A(gate_act, L * ff);
        A(up, L * ff);
    }
    A(value_target, L * ff);
    A(contrib, L * ff);
    A(by_norm, L * kn);
    A(by_contrib, L * kn);
    A(promo_norm, L * kn * kp);
    A(promo_contrib, L * kn * kp);
#undef A
    if (!ok) {
        pos_free(p);
        return err_set("out of memory for the trace of position %d", pos);
    }
    return 0;
}

static void run_free(trace_run_t *r, int n_pos) {
    if (r->pos)
        for (int i = 0; i < n_pos; i++)
            pos_free(&r->pos[i]);
    free(r->pos);
    free(r->gen_ids);
    memset(r, 0, sizeof *r);
}

static int run_alloc(const trace_t *t, trace_run_t *r) {
    run_free(r, t->n_pos);
    r->pos = calloc((size_t)t->n_pos, sizeof *r->pos);
    if (!r->pos) return err_set("out of memory");
    for (int i = 0; i < t->n_pos; i++)
        if (pos_alloc(t, &r->pos[i], t->positions[i])) return -1;
    if (t->o.n_generate > 0 && !(r->gen_ids = malloc((size_t)t->o.n_generate * sizeof *r->gen_ids)))
        return err_set("out of memory");
    return 0;
}

/* ---- The hook ------------------------------------------------------------------------------ */

static void apply_ivs(trace_t *t, int layer, float *data, int T, int width, int pos0) {
    priv_t *P = t->priv;
    int any = 0, need_max = 0;
    for (int k = 0; k < t->n_iv; k++)
        if (t->ivs[k].layer == layer) {
            any = 1;
            need_max |= t->ivs[k].kind == TRACE_IV_ON;
        }
    if (!any) return;
    for (int r = 0; r < T; r++) {
        int pos = pos0 + r;
        int active = pos >= t->T || t->o.intervene_all || P->slot[pos] >= 0;
        if (!active) continue;
        float *row = data + (size_t)r * width;
        float mx = 0;
        if (need_max) {
            mx = row[0];
            for (int i = 1; i < width; i++)
                mx = row[i] > mx ? row[i] : mx;
        }
        for (int k = 0; k < t->n_iv; k++) {
            const trace_iv_t *iv = &t->ivs[k];
            if (iv->layer != layer) continue;
            float *m = &row[iv->neuron];
            switch (iv->kind) {
            case TRACE_IV_ABLATE: *m = 0.0f; break;
            case TRACE_IV_SCALE: *m *= iv->value; break;
            case TRACE_IV_SET: *m = iv->value; break;
            case TRACE_IV_ON: *m = mx; break;
            }
        }
    }
}

static int trace_hook(void *user, int layer, hook_point_t p, float *data, int T, int width,
                      int pos0) {
    trace_t *t = user;
    priv_t *P = t->priv;
    if (p == HOOK_FFN_KEY && P->apply_iv) apply_ivs(t, layer, data, T, width, pos0);
    if (!P->cap) return 0;
    for (int r = 0; r < T; r++) {
        int pos = pos0 + r;
        if (pos >= t->T || P->slot[pos] < 0) continue;
        trace_pos_t *tp = &P->cap->pos[P->slot[pos]];
        float *dst = NULL;
        size_t dd = (size_t)layer * t->d, fo = (size_t)layer * t->n_ff;
        switch (p) {
        case HOOK_RESID_MID: dst = tp->resid_mid + dd; break;
        case HOOK_RESID_POST: dst = tp->resid_post + dd; break;
        case HOOK_FFN_OUT: dst = tp->ffn_out + dd; break;
        case HOOK_FFN_PRE: dst = tp->pre + fo; break;
        case HOOK_FFN_UP: dst = tp->up + fo; break;
        case HOOK_FFN_KEY: dst = tp->key + fo; break;
        default: break;
        }
        if (dst) memcpy(dst, data + (size_t)r * width, (size_t)width * sizeof *dst);
    }
    return 0;
}

/* ---- Setup --------------------------------------------------------------------------------- */

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

trace_t *trace_new(const model_t *m, const int *tokens, int T, const int *positions, int n_pos,
                   const trace_opts_t *o) {
    const mcfg_t *c = &m->cfg;
    if (T <= 0) return err_set("nothing to trace: the prompt has no tokens"), NULL;
    if (n_pos <= 0) return err_set("no position to trace"), NULL;
    for (int i = 0; i < n_pos; i++)
        if (positions[i] < 0 || positions[i] >= T)
            return err_set("position %d is out of range: the prompt has %d tokens (positions "
                           "0..%d)",
                           positions[i], T, T - 1),
                   NULL;
    for (int i = 0; i < T; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab)
            return err_set("token id %d is outside the vocabulary (0..%d)", tokens[i],
                           c->vocab - 1),
                   NULL;
    if (o->k_tokens < 1 || o->k_neurons < 1 || o->k_promoted < 0 || o->n_generate < 0)
        return err_set("trace options out of range"), NULL;
    long ctx = (long)T + (o->n_generate > 0 ? o->n_generate - 1 : 0);
    if (ctx > c->max_seq)
        return err_set("%d prompt tokens%s need %ld positions, more than the model's context of %d",
                       T, o->n_generate ? " and the continuation" : "", ctx, c->max_seq),
               NULL;
    trace_t *t = calloc(1, sizeof *t);
    priv_t *P = calloc(1, sizeof *P);
    if (!t || !P) {
        free(t);
        free(P);
        return err_set("out of memory"), NULL;
    }
    t->priv = P;
    t->m = m;
    t->n_layer = c->n_layer;
    t->d = c->d_model;
    t->n_ff = c->n_ff;
    t->vocab = c->vocab;
    t->gated = c->gated;
    t->layernorm = c->norm == NORM_LAYER;
    t->o = *o;
    if (t->o.k_tokens > c->vocab) t->o.k_tokens = c->vocab;
    if (t->o.k_neurons > c->n_ff) t->o.k_neurons = c->n_ff;
    if (t->o.k_promoted > c->vocab) t->o.k_promoted = c->vocab;
    t->T = T;
    t->n_pos = n_pos;
    size_t L = (size_t)c->n_layer, d = (size_t)c->d_model;
    t->tokens = malloc((size_t)T * sizeof *t->tokens);
    t->positions = malloc((size_t)n_pos * sizeof *t->positions);
    t->value_norm = malloc(L * c->n_ff * sizeof *t->value_norm);
    P->max_ctx = (int)ctx;
    P->slot = malloc((size_t)ctx * sizeof *P->slot);
    P->logits = malloc((size_t)T * c->vocab * sizeof *P->logits);
    P->g = malloc(d * sizeof *P->g);
    P->b = m->out_norm_b ? malloc(d * sizeof *P->b) : NULL;
    P->ns = lin_scratch_floats(c->vocab, c->d_model);
    P->scratch = malloc(P->ns * sizeof *P->scratch);
    P->rows = malloc(2 * L * d * sizeof *P->rows);
    P->proj = malloc(L * c->vocab * sizeof *P->proj);
    P->lens = malloc(2 * L * c->vocab * sizeof *P->lens);
    P->score = malloc((size_t)c->n_ff * sizeof *P->score);
    if (!t->tokens || !t->positions || !t->value_norm || !P->slot || !P->logits || !P->g ||
        (m->out_norm_b && !P->b) || !P->scratch || !P->rows || !P->proj || !P->lens || !P->score) {
        err_set("out of memory for a trace of %d tokens", T);
        goto fail;
    }
    memcpy(t->tokens, tokens, (size_t)T * sizeof *tokens);
    memcpy(t->positions, positions, (size_t)n_pos * sizeof *positions);
    qsort(t->positions, (size_t)n_pos, sizeof *t->positions, cmp_int);
    for (int i = 1; i < n_pos; i++)
        if (t->positions[i] == t->positions[i - 1]) {
            err_set("position %d is given twice", t->positions[i]);
            goto fail;
        }
    for (long i = 0; i < ctx; i++)
        P->slot[i] = -1;
    for (int i = 0; i < n_pos; i++)
        P->slot[t->positions[i]] = i;
    tensor_get_rows(m->out_norm_w, 0, 1, P->g);
    if (P->b) tensor_get_rows(m->out_norm_b, 0, 1, P->b);
    for (int l = 0; l < c->n_layer; l++)
        if (value_norms(m, l, t->value_norm + (size_t)l * c->n_ff)) goto fail;
    if (t->o.k_promoted > 0) {
        values_opts_t vo = {.norm = VALUES_NORM_GAIN,
                            .k_top = t->o.k_promoted,
                            .k_bottom = t->o.k_promoted,
                            .softmax = 0,
                            .promote_id = -1,
                            .block = 0};
        if (!(P->vals = values_new(m, &vo))) goto fail;
    }
    if (!(P->f = fwd_new(m, (int)ctx, T))) goto fail;
    fwd_set_hook(P->f, trace_hook, t,
                 (1u << HOOK_RESID_MID) | (1u << HOOK_RESID_POST) | (1u << HOOK_FFN_OUT) |
                     (1u << HOOK_FFN_PRE) | (1u << HOOK_FFN_UP) | (1u << HOOK_FFN_KEY));
    return t;
fail:
    trace_free(t);
    return NULL;
}

void trace_free(trace_t *t) {
    if (!t) return;
    priv_t *P = t->priv;
    run_free(&t->base, t->n_pos);
    run_free(&t->iv, t->n_pos);
    if (P) {
        fwd_free(P->f);
        values_free(P->vals);
        free(P->slot);
        free(P->logits);
        free(P->g);
        free(P->b);
        free(P->scratch);
        free(P->rows);
        free(P->proj);
        free(P->lens);
        free(P->score);
        free(P);
    }
    free(t->tokens);
    free(t->positions);
    free(t->value_norm);
    free(t->ivs);
    free(t);
}

/* ---- Analysis of one captured position ------------------------------------------------------ */

static int argmax(const float *z, int n) {
    int b = 0;
    for (int j = 1; j < n; j++)
        if (z[j] > z[b]) b = j;
    return b;
}

/* The target direction a = u_t * g (centred for LayerNorm) into A (d). */
static void target_dir(const trace_t *t, int target, float *a) {
    const priv_t *P = t->priv;
    const lin_t *h = &t->m->lm_head;
    if (!h->transposed) {
        tensor_get_rows(h->w, target, 1, a);
    } else {                  /* (d, vocab): column TARGET; rare, read a row at a time */
        float *row = P->proj; /* (vocab) free at this point */
        for (int i = 0; i < t->d; i++) {
            tensor_get_rows(h->w, i, 1, row);
            a[i] = row[target];
        }
    }
    double mean = 0;
    for (int i = 0; i < t->d; i++) {
        a[i] *= P->g[i];
        mean += a[i];
    }
    mean /= t->d;
    if (t->layernorm)
        for (int i = 0; i < t->d; i++)
            a[i] -= (float)mean;
}

/* Tokens promoted by the listed sub-updates of layer L (both rankings). */
static int promoted(trace_t *t, trace_pos_t *tp, int l) {
    priv_t *P = t->priv;
    int kn = t->o.k_neurons, kp = t->o.k_promoted;
    if (kp == 0) return 0;
    int *list = malloc((size_t)2 * kn * sizeof *list);
    if (!list) return err_set("out of memory");
    memcpy(list, tp->by_norm + (size_t)l * kn, (size_t)kn * sizeof *list);
    memcpy(list + kn, tp->by_contrib + (size_t)l * kn, (size_t)kn * sizeof *list);
    values_res_t res;
    memset(&res, 0, sizeof res);
    int rc = values_layer(P->vals, l, list, 2 * kn, &res);
    if (rc == 0) {
        for (int j = 0; j < 2 * kn; j++) {
            float m = tp->key[(size_t)l * t->n_ff + list[j]];
            const int32_t *src = (m >= 0 ? res.top_ids : res.bottom_ids) + (size_t)j * kp;
            int32_t *dst = (j < kn ? tp->promo_norm + ((size_t)l * kn + j) * kp
                                   : tp->promo_contrib + ((size_t)l * kn + j - kn) * kp);
            memcpy(dst, src, (size_t)kp * sizeof *dst);
        }
    }
    values_res_free(&res);
    free(list);
    return rc;
}

/* Everything derived from the captured tensors of one position.  BASE is
 * the unmodified run's position (NULL when this is the base run). */
static int analyse(trace_t *t, trace_pos_t *tp, const trace_pos_t *base) {
    priv_t *P = t->priv;
    const model_t *m = t->m;
    int L = t->n_layer, d = t->d, ff = t->n_ff, V = t->vocab, kt = t->o.k_tokens,
        kn = t->o.k_neurons;
    /* Final prediction. */
    logit_stats(tp->logits, V, tp->target, kt, 1, tp->top_ids, tp->top_probs, &tp->target_rank,
                &tp->target_prob, &tp->target_logit);
    /* Linearisation: sigma of the unmodified run's final residual. */
    if (!base) {
        tp->sigma = final_norm(t, tp->resid_post + (size_t)(L - 1) * d, NULL);
        float *a = malloc((size_t)d * sizeof *a);
        if (!a) return err_set("out of memory");
        target_dir(t, tp->target, a);
        for (int l = 0; l < L; l++) {
            float *w = tp->value_target + (size_t)l * ff;
            if (trace_value_dots(m, l, a, w)) {
                free(a);
                return -1;
            }
            for (int i = 0; i < ff; i++)
                w[i] /= tp->sigma;
        }
        free(a);
    } else {
        tp->sigma = base->sigma;
        memcpy(tp->value_target, base->value_target, (size_t)L * ff * sizeof *tp->value_target);
    }
    /* Sub-updates. */
    for (int l = 0; l < L; l++) {
        const float *key = tp->key + (size_t)l * ff, *w = tp->value_target + (size_t)l * ff,
                    *vn = t->value_norm + (size_t)l * ff;
        float *c = tp->contrib + (size_t)l * ff;
        for (int i = 0; i < ff; i++) {
            c[i] = key[i] * w[i];
            P->score[i] = fabsf(key[i]) * vn[i];
        }
        if (t->gated)
            for (int i = 0; i < ff; i++)
                tp->gate_act[(size_t)l * ff + i] = act_f(m->cfg.act, tp->pre[(size_t)l * ff + i]);
        topk_select(P->score, ff, kn, 0, 0, tp->by_norm + (size_t)l * kn);
        topk_select(c, ff, kn, 0, 0, tp->by_contrib + (size_t)l * kn);
        if (promoted(t, tp, l)) return -1;
    }
    /* Logit lens: the full final norm of each residual, then the unembedding. */
    for (int l = 0; l < L; l++) {
        final_norm(t, tp->resid_mid + (size_t)l * d, P->rows + (size_t)(2 * l) * d);
        final_norm(t, tp->resid_post + (size_t)l * d, P->rows + (size_t)(2 * l + 1) * d);
    }
    lin_apply(&m->lm_head, P->rows, 2 * L, d, P->lens, V, P->scratch, P->ns);
    memcpy(tp->lens_last, P->lens + (size_t)(2 * L - 1) * V, (size_t)V * sizeof *tp->lens_last);
    for (int r = 0; r < 2 * L; r++)
        logit_stats(P->lens + (size_t)r * V, V, tp->target, kt, 1,
                    tp->lens_top_ids + (size_t)r * kt, tp->lens_top_probs + (size_t)r * kt,
                    &tp->lens_target_rank[r], &tp->lens_target_prob[r], &tp->lens_target_logit[r]);
    /* FFN outputs through the linearised final norm (no biases). */
    for (int l = 0; l < L; l++) {
        const float *o = tp->ffn_out + (size_t)l * d;
        float *y = P->rows + (size_t)l * d;
        double mean = 0;
        if (t->layernorm) {
            for (int i = 0; i < d; i++)
                mean += o[i];
            mean /= d;
        }
        for (int i = 0; i < d; i++)
            y[i] = P->g[i] * (float)(o[i] - mean) / tp->sigma;
    }
    lin_t head = m->lm_head;
    head.b = NULL;
    lin_apply(&head, P->rows, L, d, P->proj, V, P->scratch, P->ns);
    for (int l = 0; l < L; l++)
        logit_stats(P->proj + (size_t)l * V, V, tp->target, kt, 0, tp->ffn_top_ids + (size_t)l * kt,
                    tp->ffn_top_logits + (size_t)l * kt, NULL, NULL, &tp->ffn_target_logit[l]);
    return 0;
}

/* One forward pass over the prompt (capturing into R), then the greedy
 * continuation from the same cache. */
static int run(trace_t *t, trace_run_t *R, int apply_iv) {
    priv_t *P = t->priv;
    int V = t->vocab;
    P->cap = R;
    P->apply_iv = apply_iv;
    int rc = fwd_eval(P->f, t->tokens, t->T, 0, P->logits, FWD_LOGITS_ALL);
    P->cap = NULL;
    if (rc) goto done;
    for (int s = 0; s < t->n_pos; s++)
        memcpy(R->pos[s].logits, P->logits + (size_t)t->positions[s] * V,
               (size_t)V * sizeof(float));
    R->n_gen = 0;
    if (t->o.n_generate > 0) {
        const tok_t *tok = t->m->tok;
        int bos = tok ? tok->bos_id : -1, eos = tok ? tok->eos_id : -1;
        int next = argmax(P->logits + (size_t)(t->T - 1) * V, V);
        for (int i = 0; i < t->o.n_generate; i++) {
            if (next == bos || next == eos) break;
            R->gen_ids[R->n_gen++] = next;
            if (i + 1 == t->o.n_generate) break;
            if ((rc = fwd_eval(P->f, &next, 1, t->T + i, P->logits, FWD_LOGITS_LAST))) goto done;
            next = argmax(P->logits, V);
        }
    }
done:
    P->apply_iv = 0;
    return rc;
}

int trace_run_base(trace_t *t, int target) {
    if (target < -1 || target >= t->vocab)
        return err_set("target id %d is outside the vocabulary (0..%d)", target, t->vocab - 1);
    if (run_alloc(t, &t->base) || run(t, &t->base, 0)) return -1;
    for (int s = 0; s < t->n_pos; s++) {
        trace_pos_t *tp = &t->base.pos[s];
        tp->target = target >= 0 ? target : argmax(tp->logits, t->vocab);
        if (analyse(t, tp, NULL)) return -1;
    }
    t->base.done = 1;
    return 0;
}

int trace_top_ablations(const trace_t *t, int k, trace_iv_t **ivs, int *n) {
    if (!t->base.done) return err_set("the base run has not been traced");
    if (t->n_pos != 1)
        return err_set("ablating the top neurons needs a single traced position (%d are traced)",
                       t->n_pos);
    long total = (long)t->n_layer * t->n_ff;
    if (k < 1 || k > total)
        return err_set("cannot ablate the top %d neurons: the model has %ld (1..%ld)", k, total,
                       total);
    int *idx = malloc((size_t)k * sizeof *idx);
    trace_iv_t *r = realloc(*ivs, (size_t)(*n + k) * sizeof *r);
    if (!idx || !r) {
        free(idx);
        if (r) *ivs = r;
        return err_set("out of memory");
    }
    *ivs = r;
    /* contrib is (L, n_ff) row-major: flat index order = (layer, neuron), so
     * topk's lower-index tie rule is "lower layer, then lower neuron". */
    topk_select(t->base.pos[0].contrib, (int)total, k, 0, 0, idx);
    for (int j = 0; j < k; j++)
        r[(*n)++] = (trace_iv_t){idx[j] / t->n_ff, idx[j] % t->n_ff, TRACE_IV_ABLATE, 0.0f};
    free(idx);
    return 0;
}

int trace_run_intervened(trace_t *t, const trace_iv_t *ivs, int n) {
    if (!t->base.done) return err_set("the base run has not been traced");
    for (int k = 0; k < n; k++)
        if (ivs[k].layer < 0 || ivs[k].layer >= t->n_layer || ivs[k].neuron < 0 ||
            ivs[k].neuron >= t->n_ff)
            return err_set("intervention on neuron %d:%d is out of range (layers 0..%d, neurons "
                           "0..%d)",
                           ivs[k].layer, ivs[k].neuron, t->n_layer - 1, t->n_ff - 1);
    if (trace_check_ivs(ivs, n)) return -1;
    free(t->ivs);
    t->ivs = malloc((size_t)(n ? n : 1) * sizeof *t->ivs);
    if (!t->ivs) return err_set("out of memory");
    memcpy(t->ivs, ivs, (size_t)n * sizeof *ivs);
    t->n_iv = n;
    if (run_alloc(t, &t->iv) || run(t, &t->iv, 1)) return -1;
    for (int s = 0; s < t->n_pos; s++) {
        trace_pos_t *tp = &t->iv.pos[s];
        tp->target = t->base.pos[s].target;
        if (analyse(t, tp, &t->base.pos[s])) return -1;
    }
    t->iv.done = 1;
    return 0;
}

/* ---- Writers -------------------------------------------------------------------------------- */

static char *disp_dup(const trace_t *t, int id) {
    char b[1024];
    if (t->m->tok && id < t->m->tok->n_vocab)
        return strdup(tok_display(t->m->tok, id, b, sizeof b));
    snprintf(b, sizeof b, "<%d>", id);
    return strdup(b);
}

static int h5_strs_ids(hid_t g, const char *name, const trace_t *t, const int32_t *ids, int n) {
    char **s = calloc((size_t)(n ? n : 1), sizeof *s);
    int rc = -1;
    if (!s) return err_set("out of memory");
    for (int i = 0; i < n; i++)
        if (!(s[i] = disp_dup(t, ids[i]))) {
            err_set("out of memory");
            goto done;
        }
    rc = h5w_strs(g, name, (const char *const *)s, n);
done:
    for (int i = 0; i < n; i++)
        free(s[i]);
    free(s);
    return rc;
}

/* A 3-D int32 dataset (a, b, c), contiguous. */
static int h5_i32_3d(hid_t loc, const char *name, const int32_t *data, int a, int b, int c) {
    hsize_t dims[3] = {(hsize_t)a, (hsize_t)b, (hsize_t)c};
    hid_t sp = H5Screate_simple(3, dims, NULL);
    hid_t ds = H5Dcreate2(loc, name, H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = ds < 0 ? -1 : H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    return r < 0 ? err_set("cannot write HDF5 dataset '%s'", name) : 0;
}

/* Splits interleaved lens rows (2L, k) into before/after (L, k) copies. */
static void split_rows(const void *src, void *pre, void *post, int L, int k, size_t elem) {
    for (int l = 0; l < L; l++) {
        memcpy((char *)pre + (size_t)l * k * elem, (const char *)src + (size_t)(2 * l) * k * elem,
               (size_t)k * elem);
        memcpy((char *)post + (size_t)l * k * elem,
               (const char *)src + (size_t)(2 * l + 1) * k * elem, (size_t)k * elem);
    }
}

static int h5_lens(hid_t g, const trace_t *t, const trace_pos_t *p) {
    int L = t->n_layer, kt = t->o.k_tokens, rc = -1;
    size_t big = (size_t)L * kt;
    int32_t *i0 = malloc(big * 4), *i1 = malloc(big * 4);
    float *f0 = malloc(big * 4), *f1 = malloc(big * 4);
    if (!i0 || !i1 || !f0 || !f1) {
        err_set("out of memory");
        goto done;
    }
    static const char *nm[2] = {"lens_pre", "lens_post"};
    char name[64];
    split_rows(p->lens_top_ids, i0, i1, L, kt, 4);
    split_rows(p->lens_top_probs, f0, f1, L, kt, 4);
    for (int w = 0; w < 2; w++) {
        snprintf(name, sizeof name, "%s_top_ids", nm[w]);
        if (h5w_i32(g, name, w ? i1 : i0, L, kt)) goto done;
        snprintf(name, sizeof name, "%s_top_probs", nm[w]);
        if (h5w_f32(g, name, w ? f1 : f0, L, kt)) goto done;
    }
    split_rows(p->lens_target_rank, i0, i1, L, 1, 4);
    if (h5w_i32(g, "lens_pre_target_rank", i0, L, 0) ||
        h5w_i32(g, "lens_post_target_rank", i1, L, 0))
        goto done;
    split_rows(p->lens_target_prob, f0, f1, L, 1, 4);
    if (h5w_f32(g, "lens_pre_target_prob", f0, L, 0) ||
        h5w_f32(g, "lens_post_target_prob", f1, L, 0))
        goto done;
    split_rows(p->lens_target_logit, f0, f1, L, 1, 4);
    if (h5w_f32(g, "lens_pre_target_logit", f0, L, 0) ||
        h5w_f32(g, "lens_post_target_logit", f1, L, 0))
        goto done;
    rc = 0;
done:
    free(i0), free(i1), free(f0), free(f1);
    return rc;
}

static int h5_pos(hid_t run_g, const trace_t *t, const trace_pos_t *p) {
    char name[64];
    snprintf(name, sizeof name, "pos_%d", p->pos);
    hid_t g = h5w_group(run_g, name);
    if (g < 0) return -1;
    int L = t->n_layer, d = t->d, ff = t->n_ff, kt = t->o.k_tokens, kn = t->o.k_neurons,
        kp = t->o.k_promoted;
    char *tname = disp_dup(t, p->target);
    int bad =
        !tname || h5w_attr_int(g, "position", p->pos) || h5w_attr_int(g, "target_id", p->target) ||
        h5w_attr_str(g, "target", tname) || h5w_attr_double(g, "sigma_final", p->sigma) ||
        h5w_attr_int(g, "target_rank", p->target_rank) ||
        h5w_attr_double(g, "target_prob", p->target_prob) ||
        h5w_attr_double(g, "target_logit", p->target_logit) ||
        h5w_f32(g, "logits", p->logits, t->vocab, 0) || h5w_i32(g, "top_ids", p->top_ids, kt, 0) ||
        h5_strs_ids(g, "top_tokens", t, p->top_ids, kt) ||
        h5w_f32(g, "top_probs", p->top_probs, kt, 0) || h5_lens(g, t, p) ||
        h5w_i32(g, "ffn_top_ids", p->ffn_top_ids, L, kt) ||
        h5w_f32(g, "ffn_top_logits", p->ffn_top_logits, L, kt) ||
        h5w_f32(g, "ffn_target_logit", p->ffn_target_logit, L, 0) ||
        h5w_f32(g, "resid_mid", p->resid_mid, L, d) ||
        h5w_f32(g, "resid_post", p->resid_post, L, d) || h5w_f32(g, "ffn_out", p->ffn_out, L, d) ||
        h5w_f32(g, "key_act", p->key, L, ff) || h5w_f32(g, "ffn_pre", p->pre, L, ff) ||
        (t->gated &&
         (h5w_f32(g, "gate_act", p->gate_act, L, ff) || h5w_f32(g, "up", p->up, L, ff))) ||
        h5w_f32(g, "value_target", p->value_target, L, ff) ||
        h5w_f32(g, "contribution", p->contrib, L, ff) ||
        h5w_i32(g, "top_by_norm", p->by_norm, L, kn) ||
        h5w_i32(g, "top_by_contribution", p->by_contrib, L, kn) ||
        (kp > 0 && (h5_i32_3d(g, "promoted_by_norm", p->promo_norm, L, kn, kp) ||
                    h5_i32_3d(g, "promoted_by_contribution", p->promo_contrib, L, kn, kp)));
    free(tname);
    H5Gclose(g);
    return bad ? -1 : 0;
}

static int h5_run(hid_t f, const char *name, const trace_t *t, const trace_run_t *r) {
    hid_t g = h5w_group(f, name);
    if (g < 0) return -1;
    int bad = 0;
    for (int s = 0; s < t->n_pos && !bad; s++)
        bad = h5_pos(g, t, &r->pos[s]);
    if (!bad && t->o.n_generate > 0) {
        bad = h5w_i32(g, "generated_ids", r->gen_ids, r->n_gen, 0) ||
              h5_strs_ids(g, "generated_tokens", t, r->gen_ids, r->n_gen);
    }
    H5Gclose(g);
    return bad ? -1 : 0;
}

int trace_write_h5(const trace_t *t, const char *path, const char *prompt, const char *command) {
    if (!t->base.done) return err_set("nothing traced yet");
    const mcfg_t *c = &t->m->cfg;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return err_set("%s: cannot create the HDF5 file", path);
    int32_t *targets = malloc((size_t)t->n_pos * sizeof *targets);
    int bad = !targets;
    if (targets)
        for (int s = 0; s < t->n_pos; s++)
            targets[s] = t->base.pos[s].target;
    bad = bad || h5w_attr_str(f, "probe_kind", "trace") ||
          h5w_attr_str(f, "probe_version", "0.1") || h5w_attr_str(f, "model_path", t->m->path) ||
          h5w_attr_str(f, "model_format", t->m->format) ||
          h5w_attr_str(f, "architecture", arch_name(c->arch)) ||
          h5w_attr_int(f, "n_layer", c->n_layer) || h5w_attr_int(f, "d_model", c->d_model) ||
          h5w_attr_int(f, "n_ff", c->n_ff) || h5w_attr_int(f, "vocab_size", c->vocab) ||
          h5w_attr_int(f, "gated", c->gated) ||
          h5w_attr_str(f, "final_norm", t->layernorm ? "layernorm" : "rmsnorm") ||
          h5w_attr_double(f, "norm_eps", c->norm_eps) ||
          h5w_attr_str(f, "prompt", prompt ? prompt : "") ||
          h5w_attr_str(f, "command", command ? command : "") ||
          h5w_attr_str(f, "key_activation", c->gated ? "act(gate.x) * (up.x)" : "act(W1.x + b1)") ||
          h5w_attr_str(f, "contribution",
                       t->layernorm ? "m_i * ((u_t * g) . (v_i - mean(v_i))) / sigma_final"
                                    : "m_i * ((u_t * g) . v_i) / sigma_final") ||
          h5w_attr_str(f, "intervene_at", t->o.intervene_all ? "all" : "traced") ||
          h5w_attr_int(f, "k_tokens", t->o.k_tokens) ||
          h5w_attr_int(f, "k_neurons", t->o.k_neurons) ||
          h5w_attr_int(f, "k_promoted", t->o.k_promoted) ||
          h5w_attr_int(f, "n_generate", t->o.n_generate) ||
          h5w_i32(f, "token_ids", t->tokens, t->T, 0) ||
          h5_strs_ids(f, "tokens", t, t->tokens, t->T) ||
          h5w_i32(f, "positions", t->positions, t->n_pos, 0) ||
          h5w_i32(f, "target_ids", targets, t->n_pos, 0) ||
          h5_strs_ids(f, "targets", t, targets, t->n_pos) ||
          h5w_f32(f, "value_norm", t->value_norm, t->n_layer, t->n_ff) ||
          h5_run(f, "base", t, &t->base);
    free(targets);
    if (!bad && t->iv.done) {
        int n = t->n_iv;
        int32_t *ly = malloc((size_t)(n ? n : 1) * 4), *ne = malloc((size_t)(n ? n : 1) * 4);
        float *va = malloc((size_t)(n ? n : 1) * 4);
        const char **kd = malloc((size_t)(n ? n : 1) * sizeof *kd);
        hid_t g = -1;
        bad = !ly || !ne || !va || !kd;
        if (!bad) {
            for (int k = 0; k < n; k++) {
                ly[k] = t->ivs[k].layer;
                ne[k] = t->ivs[k].neuron;
                kd[k] = trace_iv_kind_name(t->ivs[k].kind);
                va[k] = t->ivs[k].kind == TRACE_IV_ABLATE ? 0.0f
                        : t->ivs[k].kind == TRACE_IV_ON   ? NAN
                                                          : t->ivs[k].value;
            }
            g = h5w_group(f, "interventions");
            bad = g < 0 || h5w_i32(g, "layer", ly, n, 0) || h5w_i32(g, "neuron", ne, n, 0) ||
                  h5w_strs(g, "kind", (const char *const *)kd, n) || h5w_f32(g, "value", va, n, 0);
            if (g >= 0) H5Gclose(g);
        }
        free(ly), free(ne), free(va), free(kd);
        bad = bad || h5_run(f, "intervened", t, &t->iv);
    }
    if (H5Fclose(f) < 0) bad = 1;
    if (bad) return err_prefix("%s", path);
    return 0;
}

/* The listed tokens as a JSON array of strings (malloc'd). */
static char *tokens_json(const trace_t *t, const int32_t *ids, int n) {
    json_t *arr = json_array();
    if (!arr) return NULL;
    for (int i = 0; i < n; i++) {
        char *s = disp_dup(t, ids[i]);
        if (!s || json_array_append_new(arr, json_string(s))) {
            free(s);
            json_decref(arr);
            return NULL;
        }
        free(s);
    }
    char *out = json_dumps(arr, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(arr);
    return out;
}

int trace_write_csv(const trace_t *t, FILE *fp, const int *layers, int n_layers) {
    if (!t->base.done) return err_set("nothing traced yet");
    csvw_t w;
    csvw_init(&w, fp);
    csvw_header(&w, "run,position,target_id,target,ranking,layer,neuron,activation,value_norm,"
                    "contribution,rank,top_tokens,gate_act,up");
    int kn = t->o.k_neurons, kp = t->o.k_promoted, ff = t->n_ff;
    char tb[1024];
    for (int ri = 0; ri < 2; ri++) {
        const trace_run_t *R = ri ? &t->iv : &t->base;
        if (!R->done) continue;
        for (int s = 0; s < t->n_pos; s++) {
            const trace_pos_t *p = &R->pos[s];
            if (t->m->tok)
                tok_display(t->m->tok, p->target, tb, sizeof tb);
            else
                snprintf(tb, sizeof tb, "<%d>", p->target);
            for (int li = 0; li < n_layers; li++) {
                int l = layers[li];
                for (int k = 0; k < 2; k++) {
                    const int32_t *ids = (k ? p->by_contrib : p->by_norm) + (size_t)l * kn;
                    const int32_t *pr = (k ? p->promo_contrib : p->promo_norm);
                    for (int j = 0; j < kn; j++) {
                        int i = ids[j];
                        size_t o = (size_t)l * ff + i;
                        char *js = tokens_json(t, pr + ((size_t)l * kn + j) * kp, kp);
                        if (!js) return err_set("out of memory");
                        csvw_str(&w, ri ? "intervened" : "base");
                        csvw_int(&w, p->pos);
                        csvw_int(&w, p->target);
                        csvw_str(&w, tb);
                        csvw_str(&w, k ? "contribution" : "norm");
                        csvw_int(&w, l);
                        csvw_int(&w, i);
                        csvw_float(&w, p->key[o]);
                        csvw_float(&w, t->value_norm[o]);
                        csvw_float(&w, p->contrib[o]);
                        csvw_int(&w, j);
                        csvw_str(&w, js);
                        if (t->gated) {
                            csvw_float(&w, p->gate_act[o]);
                            csvw_float(&w, p->up[o]);
                        } else {
                            csvw_strn(&w, "", 0);
                            csvw_strn(&w, "", 0);
                        }
                        csvw_end_row(&w);
                        free(js);
                    }
                }
            }
        }
    }
    return csvw_status(&w);
}
