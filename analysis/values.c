/* values: value vectors projected onto the vocabulary (see values.h).
 *
 * Per block of B neurons:
 *   V (B, d)      gather the value vectors (dequantising only the block's
 *                 columns of ffn_down, or its rows of a Conv1D c_proj), apply
 *                 the norm mode;
 *   S (B, vocab)  = V E^T, one sgemm through GSL's CBLAS (OpenBLAS);
 *   per row       group maxima/minima (64 tokens a group) in one vectorised
 *                 pass; the k-th best group extreme is a lower bound for the
 *                 k-th best score, so only the few groups that reach it are
 *                 scanned for candidates, which topk_select ranks with its tie
 *                 rule; then one vectorised log-sum-exp pass (entropy) and,
 *                 for reverse search, an exact rank count.
 *
 * Threading: each OpenMP thread takes whole blocks and runs single-threaded
 * BLAS on them.  Measured on the 2-core bench machine (GPT-2-medium shape,
 * B = 256): a 2-thread sgemm per block followed by threaded post-processing
 * leaves both cores idle at every sgemm/post-processing switch; independent
 * blocks keep both busy and overlap one thread's post-processing with the
 * other's sgemm.  One block (a short neuron list) uses threaded BLAS instead. */
#include "values.h"

#include "core/err.h"
#include "core/mfile.h"
#include "core/vmath.h"
#include "topk.h"

#include <gsl/gsl_blas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* OpenBLAS extensions (cblas.h): per-block BLAS runs single-threaded. */
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);

enum { GROUP = 64 };                          /* tokens per group of the top-k bound */
static const size_t BLOCK_FLOATS = 64u << 20; /* cap of one (B, vocab) score buffer: 256 MiB */

typedef struct {
    float *Vr;    /* (B, d) raw value vectors of the block */
    float *V;     /* (B, d) the same after the norm mode: what the sgemm multiplies */
    float *S;     /* (B, vocab) float32 scores */
    float *span;  /* (n_ff) one dequantised row segment of ffn_down */
    float *gmax;  /* (n_groups) */
    float *gmin;  /* (n_groups) */
    float *cval;  /* (vocab) candidate float32 scores */
    int *cid;     /* (vocab) candidate token ids */
    double *cdbl; /* (vocab) candidates' exact (double) scores */
    double *x;    /* (d) the normed value vector in double */
    int *sel;     /* (k_max) selection scratch */
    int32_t *kid; /* (k_max) one selection's ids */
    float *ksc;   /* (k_max) and scores */
} work_t;

struct values {
    const model_t *m;
    values_opts_t o;
    int d, vocab, n_ff, B, n_groups, k_max;
    const float *E; /* (vocab, d), or (d, vocab) when E_trans; borrowed or E_own */
    int E_trans;
    float *E_own;      /* dequantised unembedding when lm_head is not F32 */
    float *g, *b;      /* (d) final-norm gain and bias, or NULL */
    float *hb;         /* (vocab) LM head bias (final mode only), or NULL */
    double e_norm_max; /* largest |E_t| (row norm), for the float32 error bound */
    double hb_max;     /* largest |LM head bias| */
    int nw;
    work_t *w; /* (nw) */
};

const char *values_norm_name(values_norm_t n) {
    static const char *names[] = {"none", "gain", "final"};
    return (unsigned)n < 3 ? names[n] : "?";
}

int values_parse_norm(const char *s, values_norm_t *out) {
    for (int i = 0; i < 3; i++)
        if (strcmp(s, values_norm_name((values_norm_t)i)) == 0) {
            *out = (values_norm_t)i;
            return 0;
        }
    return err_set("norm mode '%s' is not one of none, gain, final", s);
}

/* ---- setup -------------------------------------------------------------- */

/* A float copy of a 1-D tensor of N elements (any dtype); NULL if T is NULL. */
static int vec_copy(const tensor_t *t, int64_t n, float **out, const char *what) {
    *out = NULL;
    if (!t) return 0;
    if (tensor_nelem(t) != n)
        return err_set("%s '%s' has %lld elements, expected %lld", what, t->name,
                       (long long)tensor_nelem(t), (long long)n);
    *out = malloc((size_t)n * sizeof **out);
    if (!*out) return err_set("out of memory");
    tensor_t view = *t;
    view.ndim = 1;
    view.shape[0] = n;
    tensor_get_rows(&view, 0, 1, *out);
    return 0;
}

/* Element K of token T's unembedding row. */
static inline float e_at(const values_t *v, int t, int k) {
    return v->E_trans ? v->E[(size_t)k * v->vocab + t] : v->E[(size_t)t * v->d + k];
}

static void work_free(work_t *w) {
    free(w->Vr);
    free(w->cdbl);
    free(w->x);
    free(w->kid);
    free(w->ksc);
    free(w->V);
    free(w->S);
    free(w->span);
    free(w->gmax);
    free(w->gmin);
    free(w->cval);
    free(w->cid);
    free(w->sel);
}

values_t *values_new(const model_t *m, const values_opts_t *o) {
    values_t *v = calloc(1, sizeof *v);
    if (!v) return err_set("out of memory"), NULL;
    v->m = m;
    v->o = *o;
    const mcfg_t *c = &m->cfg;
    v->d = c->d_model;
    v->n_ff = c->n_ff;
    const lin_t *h = &m->lm_head;
    if (!h->w) {
        err_set("%s: the model has no unembedding (lm_head)", m->path);
        goto fail;
    }
    /* The unembedding's vocabulary is its row count (or column count when
     * stored transposed), which is what logits index. */
    v->E_trans = h->transposed;
    int64_t er = tensor_rows(h->w), ec = tensor_cols(h->w);
    int64_t vocab = v->E_trans ? ec : er, ed = v->E_trans ? er : ec;
    if (ed != v->d || vocab <= 0 || vocab > (1 << 24)) {
        err_set("%s: unembedding '%s' is %lld x %lld, expected (vocab, %d)", m->path, h->w->name,
                (long long)er, (long long)ec, v->d);
        goto fail;
    }
    v->vocab = (int)vocab;
    if (o->k_top < 0 || o->k_bottom < 0 || o->k_top > v->vocab || o->k_bottom > v->vocab) {
        err_set("k = %d is larger than the vocabulary (%d tokens)",
                o->k_top > o->k_bottom ? o->k_top : o->k_bottom, v->vocab);
        goto fail;
    }
    if (o->promote_id >= v->vocab) {
        err_set("token id %d is out of range: the vocabulary has %d tokens (0..%d)", o->promote_id,
                v->vocab, v->vocab - 1);
        goto fail;
    }
    if ((unsigned)o->norm > VALUES_NORM_FINAL) {
        err_set("unknown norm mode %d", (int)o->norm);
        goto fail;
    }
    if (o->norm != VALUES_NORM_NONE) {
        if (!m->out_norm_w) {
            err_set("%s: the model has no final norm weight; --norm %s needs one", m->path,
                    values_norm_name(o->norm));
            goto fail;
        }
        if (vec_copy(m->out_norm_w, v->d, &v->g, "final norm weight")) goto fail;
        if (o->norm == VALUES_NORM_FINAL) {
            if (c->norm == NORM_LAYER && vec_copy(m->out_norm_b, v->d, &v->b, "final norm bias"))
                goto fail;
            if (vec_copy(h->b, v->vocab, &v->hb, "LM head bias")) goto fail;
        }
    }
    if (h->w->dtype == DT_F32) {
        v->E = h->w->data;
    } else {
        v->E_own = malloc((size_t)er * (size_t)ec * sizeof *v->E_own);
        if (!v->E_own) {
            err_set("out of memory for the dequantised unembedding (%lld x %lld floats)",
                    (long long)er, (long long)ec);
            goto fail;
        }
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < er; r++)
            tensor_get_rows(h->w, r, 1, v->E_own + (size_t)r * ec);
        v->E = v->E_own;
    }
    for (int t = 0; t < v->vocab; t++) {
        double ss = 0;
        for (int k = 0; k < v->d; k++)
            ss += (double)e_at(v, t, k) * e_at(v, t, k);
        if (sqrt(ss) > v->e_norm_max) v->e_norm_max = sqrt(ss);
        if (v->hb && fabs(v->hb[t]) > v->hb_max) v->hb_max = fabs(v->hb[t]);
    }
    /* 1024 neurons a block: OpenBLAS packs all of E once per sgemm call, so
     * that copy costs 1/B of the product (perf, GPT-2-medium shape, Haswell
     * kernel: the packing was 20% of the time at B = 256, 11% at 1024). */
    v->B = o->block > 0 ? o->block : 1024;
    if (o->block <= 0)
        while (v->B > 32 && (size_t)v->B * (size_t)v->vocab > BLOCK_FLOATS)
            v->B /= 2;
    v->n_groups = (v->vocab + GROUP - 1) / GROUP;
    v->k_max = (o->k_top > o->k_bottom ? o->k_top : o->k_bottom) + 1;
    v->nw = omp_get_max_threads();
    if (v->nw < 1) v->nw = 1;
    v->w = calloc((size_t)v->nw, sizeof *v->w);
    if (!v->w) {
        err_set("out of memory");
        goto fail;
    }
    for (int t = 0; t < v->nw; t++) {
        work_t *w = &v->w[t];
        w->Vr = malloc((size_t)v->B * v->d * sizeof *w->Vr);
        w->V = malloc((size_t)v->B * v->d * sizeof *w->V);
        w->cdbl = malloc((size_t)v->vocab * sizeof *w->cdbl);
        w->x = malloc((size_t)v->d * sizeof *w->x);
        w->kid = malloc((size_t)v->k_max * sizeof *w->kid);
        w->ksc = malloc((size_t)v->k_max * sizeof *w->ksc);
        /* The score buffer is written by every sgemm and read back row by
         * row: on 2 MiB pages it costs fewer TLB misses.  Measured,
         * GPT-2-medium shape, 2 threads: 126 GFLOP/s on 4 KiB pages, 165 on
         * 2 MiB pages (79% of the sgemm peak). */
        w->S = mfile_alloc_huge((size_t)v->B * v->vocab * sizeof *w->S);
        w->span = malloc((size_t)v->n_ff * sizeof *w->span);
        w->gmax = malloc((size_t)v->n_groups * sizeof *w->gmax);
        w->gmin = malloc((size_t)v->n_groups * sizeof *w->gmin);
        w->cval = malloc((size_t)v->vocab * sizeof *w->cval);
        w->cid = malloc((size_t)v->vocab * sizeof *w->cid);
        w->sel = malloc((size_t)v->k_max * sizeof *w->sel);
        if (!w->Vr || !w->V || !w->S || !w->span || !w->gmax || !w->gmin || !w->cval || !w->cid ||
            !w->cdbl || !w->x || !w->sel || !w->kid || !w->ksc) {
            err_set("out of memory for %d threads x %d neurons x %d tokens of scores", v->nw, v->B,
                    v->vocab);
            goto fail;
        }
    }
    return v;
fail:
    values_free(v);
    return NULL;
}

void values_free(values_t *v) {
    if (!v) return;
    if (v->w)
        for (int t = 0; t < v->nw; t++)
            work_free(&v->w[t]);
    free(v->w);
    free(v->E_own);
    free(v->g);
    free(v->b);
    free(v->hb);
    free(v);
}

int values_block(const values_t *v) { return v->B; }

size_t values_work_bytes(const values_t *v) {
    size_t per = (size_t)v->B * (2 * v->d + v->vocab) + v->n_ff + 2 * (size_t)v->n_groups +
                 4 * (size_t)v->vocab + 2 * (size_t)v->d + 3 * (size_t)v->k_max;
    size_t e = v->E_own ? (size_t)v->vocab * v->d : 0;
    return 4 * (per * v->nw + e);
}

/* ---- results ------------------------------------------------------------ */

void values_res_free(values_res_t *r) {
    if (!r) return;
    free(r->neuron);
    free(r->top_ids);
    free(r->top_scores);
    free(r->top_probs);
    free(r->bottom_ids);
    free(r->bottom_scores);
    free(r->bottom_probs);
    free(r->value_norm);
    free(r->max_logit);
    free(r->entropy);
    free(r->lse);
    free(r->promote_rank);
    free(r->promote_score);
    free(r->promote_prob);
    memset(r, 0, sizeof *r);
}

/* malloc of at least one byte, so empty arrays are still non-NULL. */
static void *xalloc(size_t n, size_t size) { return malloc(n * size > 0 ? n * size : 1); }

/* Checks LAYER and the neuron list; fills OUT's shape and allocates it. */
static int res_begin(values_t *v, int layer, const int *neurons, int n, values_res_t *out) {
    memset(out, 0, sizeof *out);
    const model_t *m = v->m;
    if (layer < 0 || layer >= m->cfg.n_layer)
        return err_set("layer %d is out of range: this model has layers 0..%d (0-based)", layer,
                       m->cfg.n_layer - 1);
    const lin_t *dn = &m->layers[layer].down;
    int64_t r = tensor_rows(dn->w), c = tensor_cols(dn->w);
    int64_t want_r = dn->transposed ? v->n_ff : v->d, want_c = dn->transposed ? v->d : v->n_ff;
    if (r != want_r || c != want_c)
        return err_set("layer %d: FFN down projection '%s' is %lld x %lld, expected %lld x %lld",
                       layer, dn->w->name, (long long)r, (long long)c, (long long)want_r,
                       (long long)want_c);
    if (!neurons) n = v->n_ff;
    if (n < 0) return err_set("negative neuron count");
    for (int i = 0; neurons && i < n; i++)
        if (neurons[i] < 0 || neurons[i] >= v->n_ff)
            return err_set("neuron %d is out of range: layer %d has %d neurons (0..%d)", neurons[i],
                           layer, v->n_ff, v->n_ff - 1);
    out->layer = layer;
    out->n = n;
    out->k_top = v->o.k_top;
    out->k_bottom = v->o.k_bottom;
    size_t nt = (size_t)n * v->o.k_top, nb = (size_t)n * v->o.k_bottom;
    out->neuron = xalloc(n, sizeof *out->neuron);
    out->top_ids = xalloc(nt, sizeof *out->top_ids);
    out->top_scores = xalloc(nt, sizeof *out->top_scores);
    out->bottom_ids = xalloc(nb, sizeof *out->bottom_ids);
    out->bottom_scores = xalloc(nb, sizeof *out->bottom_scores);
    out->value_norm = xalloc(n, sizeof(float));
    out->max_logit = xalloc(n, sizeof(float));
    out->entropy = xalloc(n, sizeof(float));
    out->lse = xalloc(n, sizeof(float));
    int bad = !out->neuron || !out->top_ids || !out->top_scores || !out->bottom_ids ||
              !out->bottom_scores || !out->value_norm || !out->max_logit || !out->entropy ||
              !out->lse;
    if (v->o.softmax) {
        out->top_probs = xalloc(nt, sizeof(float));
        out->bottom_probs = xalloc(nb, sizeof(float));
        bad |= !out->top_probs || !out->bottom_probs;
    }
    if (v->o.promote_id >= 0) {
        out->promote_rank = xalloc(n, sizeof(int32_t));
        out->promote_score = xalloc(n, sizeof(float));
        bad |= !out->promote_rank || !out->promote_score;
        if (v->o.softmax) bad |= !(out->promote_prob = xalloc(n, sizeof(float)));
    }
    if (bad) {
        values_res_free(out);
        return err_set("out of memory for the results of %d neurons", n);
    }
    for (int i = 0; i < n; i++)
        out->neuron[i] = neurons ? neurons[i] : i;
    return 0;
}

/* ---- the fast path ------------------------------------------------------ */

/* C (M x N, ldc) = op(A) op(B), row-major, through GSL's CBLAS (as fwd.c). */
static void sgemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                  int ldb, float *C, int ldc) {
    gsl_matrix_float_const_view a =
        ta ? gsl_matrix_float_const_view_array_with_tda(A, (size_t)K, (size_t)M, (size_t)lda)
           : gsl_matrix_float_const_view_array_with_tda(A, (size_t)M, (size_t)K, (size_t)lda);
    gsl_matrix_float_const_view b =
        tb ? gsl_matrix_float_const_view_array_with_tda(B, (size_t)N, (size_t)K, (size_t)ldb)
           : gsl_matrix_float_const_view_array_with_tda(B, (size_t)K, (size_t)N, (size_t)ldb);
    gsl_matrix_float_view c =
        gsl_matrix_float_view_array_with_tda(C, (size_t)M, (size_t)N, (size_t)ldc);
    gsl_blas_sgemm(ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, 1.0f, &a.matrix,
                   &b.matrix, 0.0f, &c.matrix);
}

/* Raw value vectors IDX[0..nb) of layer L into Vr (nb, d).  ffn_down
 * (d, n_ff): each of its d rows is dequantised only over the span of columns
 * the block needs (rounded out to whole quantisation blocks); Conv1D
 * (n_ff, d): rows. */
static void gather(const values_t *v, work_t *w, int L, const int *idx, int nb) {
    const lin_t *dn = &v->m->layers[L].down;
    const tensor_t *t = dn->w;
    int d = v->d;
    if (dn->transposed) {
        for (int j = 0; j < nb; j++)
            tensor_get_rows(t, idx[j], 1, w->Vr + (size_t)j * d);
        return;
    }
    int lo = idx[0], hi = idx[0];
    for (int j = 1; j < nb; j++) {
        if (idx[j] < lo) lo = idx[j];
        if (idx[j] > hi) hi = idx[j];
    }
    hi++;
    int be = dtype_block_elems(t->dtype), bb = dtype_block_bytes(t->dtype);
    lo -= lo % be;
    if (hi % be) hi += be - hi % be;
    if (hi > v->n_ff) hi = v->n_ff;
    size_t row_bytes = (size_t)(v->n_ff / be) * bb;
    tensor_t view = *t;
    view.ndim = 2;
    view.shape[0] = 1;
    view.shape[1] = hi - lo;
    view.nbytes = (uint64_t)((hi - lo) / be) * bb;
    for (int r = 0; r < d; r++) {
        const uint8_t *row = (const uint8_t *)t->data + (size_t)r * row_bytes;
        const float *src;
        if (t->dtype == DT_F32) {
            src = (const float *)row + lo;
        } else {
            view.data = row + (size_t)(lo / be) * bb;
            tensor_get_rows(&view, 0, 1, w->span);
            src = w->span;
        }
        for (int j = 0; j < nb; j++)
            w->Vr[(size_t)j * d + r] = src[idx[j] - lo];
    }
}

/* The norm mode in float32 (what the sgemm multiplies): X = mode(VR), both
 * (d).  Returns |VR|. */
static float norm_f32(const values_t *v, const float *vr, float *x) {
    int d = v->d;
    double ss = 0, sum = 0;
    for (int k = 0; k < d; k++) {
        ss += (double)vr[k] * vr[k];
        sum += vr[k];
    }
    if (v->o.norm == VALUES_NORM_NONE) {
        memcpy(x, vr, (size_t)d * sizeof *x);
    } else if (v->o.norm == VALUES_NORM_GAIN) {
        for (int k = 0; k < d; k++)
            x[k] = vr[k] * v->g[k];
    } else if (v->m->cfg.norm == NORM_RMS) {
        /* llama2.c rmsnorm: weight * (x / sqrt(mean(x^2) + eps)). */
        float r = 1.0f / sqrtf((float)(ss / d) + v->m->cfg.norm_eps);
        for (int k = 0; k < d; k++)
            x[k] = v->g[k] * (r * vr[k]);
    } else {
        double mean = sum / d, var = 0;
        for (int k = 0; k < d; k++)
            var += ((double)vr[k] - mean) * ((double)vr[k] - mean);
        float r = 1.0f / sqrtf((float)(var / d) + v->m->cfg.norm_eps), mu = (float)mean;
        for (int k = 0; k < d; k++)
            x[k] = (vr[k] - mu) * r * v->g[k] + (v->b ? v->b[k] : 0.0f);
    }
    return (float)sqrt(ss);
}

/* The same in double: the vector exact scores are taken against.  Returns 1
 * if it is all zeros (every score is then exactly the LM head bias, or 0). */
static int norm_f64(const values_t *v, const float *vr, double *x) {
    int d = v->d, zero = 1;
    double ss = 0, mean = 0;
    for (int k = 0; k < d; k++) {
        ss += (double)vr[k] * vr[k];
        mean += vr[k];
    }
    mean /= d;
    if (v->o.norm == VALUES_NORM_NONE) {
        for (int k = 0; k < d; k++)
            x[k] = vr[k];
    } else if (v->o.norm == VALUES_NORM_GAIN) {
        for (int k = 0; k < d; k++)
            x[k] = (double)vr[k] * v->g[k];
    } else if (v->m->cfg.norm == NORM_RMS) {
        double r = 1.0 / sqrt(ss / d + v->m->cfg.norm_eps);
        for (int k = 0; k < d; k++)
            x[k] = vr[k] * r * v->g[k];
    } else {
        double var = 0;
        for (int k = 0; k < d; k++)
            var += (vr[k] - mean) * (vr[k] - mean);
        double r = 1.0 / sqrt(var / d + v->m->cfg.norm_eps);
        for (int k = 0; k < d; k++)
            x[k] = (vr[k] - mean) * r * v->g[k] + (v->b ? v->b[k] : 0.0);
    }
    for (int k = 0; k < d && zero; k++)
        zero = x[k] == 0.0;
    return zero;
}

/* Token T's exact score: E_t . x in double (plus the LM head bias).  One
 * fixed summation order for every token, so identical unembedding rows give
 * identical scores and the lower-id tie rule holds exactly. */
static double score_f64(const values_t *v, int t, const double *x, int zero) {
    double acc = v->hb ? v->hb[t] : 0.0;
    if (zero) return acc;
    int d = v->d;
    if (!v->E_trans) {
        const float *e = v->E + (size_t)t * d;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (int k = 0; k < d; k++)
            s += (double)e[k] * x[k];
        acc += s;
    } else {
        for (int k = 0; k < d; k++)
            acc += (double)v->E[(size_t)k * v->vocab + t] * x[k];
    }
    return acc;
}

/* "a passes the threshold": >= for top lists, <= for bottom lists. */
static inline int passes(double a, double thr, int negate) { return negate ? a <= thr : a >= thr; }

/* The K best tokens of one neuron, exactly: K ids (best first; top: largest
 * exact score, bottom: smallest; equal exact scores by lower id) into w->kid
 * and their scores into w->ksc.
 *
 * S holds float32 scores, each within TAU of the exact one.  Any exact top-K
 * token has a float32 score within 2 TAU of the K-th best float32 score, so:
 * (1) the K-th best group extreme t bounds the K-th best score (K distinct
 * tokens reach it), so only groups reaching t -/+ 2 TAU are scanned, in index
 * order; (2) topk_select finds the K-th best float32 score among those
 * candidates; (3) candidates within 2 TAU of it get exact scores; (4) the K
 * best of those by exact score are the answer. */
static void select_k(const values_t *v, work_t *w, const float *s, const float *gext, int k,
                     int negate, double tau, const double *x, int zero) {
    int n = v->vocab, G = v->n_groups, c = 0;
    double slack = negate ? 2 * tau : -2 * tau;
    if (G >= 2 * k && tau >= 0) {
        topk_select(gext, G, k, 0, negate, w->sel);
        double thr = gext[w->sel[k - 1]] + slack;
        for (int g = 0; g < G; g++) {
            if (!passes(gext[g], thr, negate)) continue;
            int hi = (g + 1) * GROUP < n ? (g + 1) * GROUP : n;
            for (int i = g * GROUP; i < hi; i++)
                if (passes(s[i], thr, negate)) {
                    w->cval[c] = s[i];
                    w->cid[c++] = i;
                }
        }
    }
    if (c < k) { /* small vocabulary, or NaN spoiled the bound: everything */
        for (c = 0; c < n; c++) {
            w->cval[c] = s[c];
            w->cid[c] = c;
        }
    }
    topk_select(w->cval, c, k, 0, negate, w->sel);
    double thr = w->cval[w->sel[k - 1]] + slack;
    int c2 = 0;
    for (int i = 0; i < c; i++)
        if (passes(w->cval[i], thr, negate)) w->cid[c2++] = w->cid[i];
    if (c2 < k) /* NaN: rank whatever the first selection found */
        for (c2 = 0; c2 < k; c2++)
            w->cid[c2] = w->cid[w->sel[c2]];
    for (int i = 0; i < c2; i++)
        w->cdbl[i] = score_f64(v, w->cid[i], x, zero);
    /* K best by exact score: partial selection sort (c2 is K plus a few). */
    for (int i = 0; i < k; i++) {
        int b = i;
        for (int j = i + 1; j < c2; j++) {
            double a = negate ? -w->cdbl[j] : w->cdbl[j], bb = negate ? -w->cdbl[b] : w->cdbl[b];
            if (a > bb || (a == bb && w->cid[j] < w->cid[b])) b = j;
        }
        int ti = w->cid[i];
        double td = w->cdbl[i];
        w->cid[i] = w->cid[b];
        w->cdbl[i] = w->cdbl[b];
        w->cid[b] = ti;
        w->cdbl[b] = td;
        w->kid[i] = w->cid[i];
        w->ksc[i] = (float)w->cdbl[i];
    }
}

/* Everything kept about one neuron into row R of OUT: S (vocab) its float32
 * scores, VR (d) its raw value vector, XH (d) the float32 normed vector the
 * scores came from. */
static void post_row(const values_t *v, work_t *w, const float *s, const float *vr, const float *xh,
                     values_res_t *out, int r) {
    int n = v->vocab, G = v->n_groups, d = v->d;
    float mx = s[0], mn = s[0];
    for (int g = 0; g < G; g++) {
        int lo = g * GROUP, hi = lo + GROUP < n ? lo + GROUP : n;
        float a = s[lo], b = s[lo];
#pragma omp simd reduction(max : a) reduction(min : b)
        for (int i = lo + 1; i < hi; i++) {
            a = s[i] > a ? s[i] : a;
            b = s[i] < b ? s[i] : b;
        }
        w->gmax[g] = a;
        w->gmin[g] = b;
        mx = a > mx ? a : mx;
        mn = b < mn ? b : mn;
    }
    /* Bound on |float32 score - exact score| (Higham's gamma_n for a dot
     * product of length d, the error of the float32 normed vector, the bias
     * addition), doubled for safety: |E_t| (gamma |xh| + |xh - x|) + ... */
    int zero = norm_f64(v, vr, w->x);
    double xn = 0, dx = 0;
    for (int k = 0; k < d; k++) {
        xn += (double)xh[k] * xh[k];
        dx += (xh[k] - w->x[k]) * (xh[k] - w->x[k]);
    }
    const double u = 0x1p-24;
    double gam = (d + 2) * u / (1 - (d + 2) * u);
    double big = fabs(mx) > fabs(mn) ? fabs(mx) : fabs(mn);
    double tau = 2 * (v->e_norm_max * (gam * sqrt(xn) + sqrt(dx)) + u * (big + v->hb_max));
    int kt = out->k_top, kb = out->k_bottom;
    /* Top list, at least 1 long: its first score is max_logit. */
    select_k(v, w, s, w->gmax, kt > 0 ? kt : 1, 0, tau, w->x, zero);
    out->max_logit[r] = w->ksc[0];
    memcpy(out->top_ids + (size_t)r * kt, w->kid, (size_t)kt * sizeof *w->kid);
    memcpy(out->top_scores + (size_t)r * kt, w->ksc, (size_t)kt * sizeof *w->ksc);
    if (kb) {
        select_k(v, w, s, w->gmin, kb, 1, tau, w->x, zero);
        memcpy(out->bottom_ids + (size_t)r * kb, w->kid, (size_t)kb * sizeof *w->kid);
        memcpy(out->bottom_scores + (size_t)r * kb, w->ksc, (size_t)kb * sizeof *w->ksc);
    }
    /* Softmax over the vocabulary from the float32 scores: Z = C + R with C
     * the count of maxima (each e^0 = 1) and R the sum of the rest, kept
     * apart so that a near one-hot neuron's tiny R is not rounded away;
     * H = log Z - W / Z with W = sum e^(s-mx) (s-mx). */
    double R = 0, W = 0;
    int C = 0;
    for (int i0 = 0; i0 < n; i0 += 512) { /* float sums of 512, added in double */
        int i1 = i0 + 512 < n ? i0 + 512 : n;
        float z = 0, wz = 0;
        int c = 0;
#pragma omp simd reduction(+ : z, wz, c)
        for (int i = i0; i < i1; i++) {
            float xi = s[i] - mx;
            int top = xi == 0.0f;
            xi = xi > -87.0f ? xi : -87.0f;
            float e = vmath_exp(xi);
            z += top ? 0.0f : e;
            wz += e * xi;
            c += top;
        }
        R += z;
        W += wz;
        C += c;
    }
    if (C == 0) C = 1; /* NaN scores: keep the arithmetic finite */
    double Z = C + R, lz = log((double)C) + log1p(R / C);
    float lse = (float)(mx + lz);
    out->lse[r] = lse;
    out->entropy[r] = (float)(lz - W / Z);
    for (int i = 0; out->top_probs && i < kt; i++)
        out->top_probs[(size_t)r * kt + i] = expf(out->top_scores[(size_t)r * kt + i] - lse);
    for (int i = 0; out->bottom_probs && i < kb; i++)
        out->bottom_probs[(size_t)r * kb + i] = expf(out->bottom_scores[(size_t)r * kb + i] - lse);
    int x = v->o.promote_id;
    if (x >= 0) {
        /* Exact rank in the same exact order as the lists: tokens certainly
         * above (float32 score more than 2 tau higher), plus those within
         * 2 tau that score higher exactly, or equal with a lower id. */
        double ex = score_f64(v, x, w->x, zero);
        double hi = (double)s[x] + 2 * tau, lo = (double)s[x] - 2 * tau;
        int cnt = 0;
#pragma omp simd reduction(+ : cnt)
        for (int i = 0; i < n; i++)
            cnt += (double)s[i] > hi;
        for (int i = 0; i < n; i++)
            if (i != x && (double)s[i] >= lo && (double)s[i] <= hi) {
                double e = score_f64(v, i, w->x, zero);
                cnt += e > ex || (e == ex && i < x);
            }
        out->promote_rank[r] = cnt;
        out->promote_score[r] = (float)ex;
        if (out->promote_prob) out->promote_prob[r] = expf((float)ex - lse);
    }
}

/* Block of NB neurons IDX (rows ROW0.. of OUT) with work buffers W. */
static void do_block(const values_t *v, work_t *w, int L, const int *idx, int nb, values_res_t *out,
                     int row0) {
    int d = v->d, n = v->vocab;
    gather(v, w, L, idx, nb);
    for (int j = 0; j < nb; j++)
        out->value_norm[row0 + j] = norm_f32(v, w->Vr + (size_t)j * d, w->V + (size_t)j * d);
    /* S (nb, vocab) = V (nb, d) E^T, E stored (vocab, d) or (d, vocab). */
    sgemm(0, !v->E_trans, nb, n, d, w->V, d, v->E, v->E_trans ? n : d, w->S, n);
    for (int j = 0; j < nb; j++) {
        float *s = w->S + (size_t)j * n;
        if (v->hb)
            for (int i = 0; i < n; i++)
                s[i] += v->hb[i];
        post_row(v, w, s, w->Vr + (size_t)j * d, w->V + (size_t)j * d, out, row0 + j);
    }
}

int values_layer(values_t *v, int layer, const int *neurons, int n, values_res_t *out) {
    if (res_begin(v, layer, neurons, n, out)) return -1;
    n = out->n;
    const int *idx = out->neuron;
    int B = v->B, nblk = (n + B - 1) / B;
    int nt = omp_get_max_threads();
    if (nt > v->nw) nt = v->nw;
    if (nt > nblk) nt = nblk;
    if (nt <= 1) {
        for (int b = 0; b < nblk; b++) {
            int r0 = b * B, nb = n - r0 < B ? n - r0 : B;
            do_block(v, &v->w[0], layer, idx + r0, nb, out, r0);
        }
        return 0;
    }
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int b = 0; b < nblk; b++) {
        int r0 = b * B, nb = n - r0 < B ? n - r0 : B;
        do_block(v, &v->w[omp_get_thread_num()], layer, idx + r0, nb, out, r0);
    }
    openblas_set_num_threads(blas_threads);
    return 0;
}

/* ---- the naive reference ------------------------------------------------ */

typedef struct {
    const double *s;
    int negate;
} cmp_ctx_t;

/* Best first: larger (or, negated, smaller) score, then lower id. */
static int cmp_rank(const void *a, const void *b, void *ctx) {
    const cmp_ctx_t *c = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    double si = c->negate ? -c->s[i] : c->s[i], sj = c->negate ? -c->s[j] : c->s[j];
    if (si != sj) return si > sj ? -1 : 1;
    return (i > j) - (i < j);
}

int values_layer_naive(values_t *v, int layer, const int *neurons, int n, values_res_t *out) {
    if (res_begin(v, layer, neurons, n, out)) return -1;
    const model_t *m = v->m;
    const lin_t *dn = &m->layers[layer].down;
    const lin_t *h = &m->lm_head;
    int d = v->d, V = v->vocab, ff = v->n_ff;
    int64_t er = tensor_rows(h->w), ec = tensor_cols(h->w);
    float *E = malloc((size_t)er * ec * sizeof *E);
    float *W = malloc((size_t)d * ff * sizeof *W);
    double *x = malloc((size_t)d * sizeof *x), *s = malloc((size_t)V * sizeof *s);
    int *ord = malloc((size_t)V * sizeof *ord);
    if (!E || !W || !x || !s || !ord) {
        free(E), free(W), free(x), free(s), free(ord);
        values_res_free(out);
        return err_set("out of memory");
    }
    tensor_get_rows(h->w, 0, er, E);
    tensor_get_rows(dn->w, 0, tensor_rows(dn->w), W);
    for (int r = 0; r < out->n; r++) {
        int i = out->neuron[r];
        double ss = 0, mean = 0;
        for (int k = 0; k < d; k++) {
            x[k] = dn->transposed ? W[(size_t)i * d + k] : W[(size_t)k * ff + i];
            ss += x[k] * x[k];
            mean += x[k];
        }
        mean /= d;
        out->value_norm[r] = (float)sqrt(ss);
        if (v->o.norm == VALUES_NORM_GAIN) {
            for (int k = 0; k < d; k++)
                x[k] *= v->g[k];
        } else if (v->o.norm == VALUES_NORM_FINAL && m->cfg.norm == NORM_RMS) {
            double rs = 1.0 / sqrt(ss / d + m->cfg.norm_eps);
            for (int k = 0; k < d; k++)
                x[k] = x[k] * rs * v->g[k];
        } else if (v->o.norm == VALUES_NORM_FINAL) {
            double var = 0;
            for (int k = 0; k < d; k++)
                var += (x[k] - mean) * (x[k] - mean);
            double rs = 1.0 / sqrt(var / d + m->cfg.norm_eps);
            for (int k = 0; k < d; k++)
                x[k] = (x[k] - mean) * rs * v->g[k] + (v->b ? v->b[k] : 0);
        }
        double mx = -INFINITY;
        for (int t = 0; t < V; t++) {
            double acc = v->hb ? v->hb[t] : 0;
            for (int k = 0; k < d; k++)
                acc += (double)(v->E_trans ? E[(size_t)k * V + t] : E[(size_t)t * d + k]) * x[k];
            s[t] = acc;
            if (acc > mx) mx = acc;
        }
        double Z = 0, Wt = 0;
        for (int t = 0; t < V; t++) {
            double e = exp(s[t] - mx);
            Z += e;
            Wt += e * (s[t] - mx);
        }
        double lse = mx + log(Z);
        out->max_logit[r] = (float)mx;
        out->lse[r] = (float)lse;
        out->entropy[r] = (float)(log(Z) - Wt / Z);
        for (int dir = 0; dir < 2; dir++) {
            int k = dir ? out->k_bottom : out->k_top;
            int32_t *ids = (dir ? out->bottom_ids : out->top_ids) + (size_t)r * k;
            float *sc = (dir ? out->bottom_scores : out->top_scores) + (size_t)r * k;
            float *pr = dir ? out->bottom_probs : out->top_probs;
            for (int t = 0; t < V; t++)
                ord[t] = t;
            cmp_ctx_t c = {s, dir};
            qsort_r(ord, (size_t)V, sizeof *ord, cmp_rank, &c);
            for (int j = 0; j < k; j++) {
                ids[j] = ord[j];
                sc[j] = (float)s[ord[j]];
                if (pr) pr[(size_t)r * k + j] = (float)exp(s[ord[j]] - lse);
            }
        }
        int p = v->o.promote_id;
        if (p >= 0) {
            int cnt = 0;
            for (int t = 0; t < V; t++)
                cnt += s[t] > s[p] || (s[t] == s[p] && t < p);
            out->promote_rank[r] = cnt;
            out->promote_score[r] = (float)s[p];
            if (out->promote_prob) out->promote_prob[r] = (float)exp(s[p] - lse);
        }
    }
    free(E), free(W), free(x), free(s), free(ord);
    return 0;
}

/* ---- reverse search ------------------------------------------------------ */

typedef struct {
    float score;
    int layer, neuron, res, row;
} cand_t;

static int cmp_cand(const void *a, const void *b) {
    const cand_t *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return (x->neuron > y->neuron) - (x->neuron < y->neuron);
}

int values_promote_top(const values_res_t *r, int nr, int n, int *res_idx, int *row) {
    size_t total = 0;
    for (int i = 0; i < nr; i++) {
        if (!r[i].promote_score) return err_set("these results carry no reverse-search scores");
        total += (size_t)r[i].n;
    }
    cand_t *c = malloc((total ? total : 1) * sizeof *c);
    if (!c) return err_set("out of memory");
    size_t k = 0;
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < r[i].n; j++)
            c[k++] = (cand_t){r[i].promote_score[j], r[i].layer, r[i].neuron[j], i, j};
    qsort(c, total, sizeof *c, cmp_cand);
    int m = (size_t)n < total ? n : (int)total;
    for (int i = 0; i < m; i++) {
        res_idx[i] = c[i].res;
        row[i] = c[i].row;
    }
    free(c);
    return m;
}
