/* fwd: batched forward pass with hooks (see fwd.h).
 *
 * One call runs T tokens through every layer: each linear map is one GEMM
 * over all T rows (OpenBLAS through GSL's CBLAS interface), attention is two
 * GEMMs per head against the key/value cache, and the element-wise work
 * (norms, RoPE, activations, softmax) runs in OpenMP loops over rows.
 * Non-F32 weights are dequantised a block of rows at a time into a bounded
 * scratch buffer, so a BF16 or quantised model never exists whole in f32. */
#include "fwd.h"

#include "err.h"
#include "vmath.h"

#include <gsl/gsl_blas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* OpenMP runs the element-wise loops only when it does not fight OpenBLAS
 * for the cores: OpenBLAS built on OpenMP (one thread pool) or sequential.
 * With the pthread build (Debian's default libopenblas0-pthread) both pools
 * busy-wait: after each parallel loop libgomp's workers spin for
 * milliseconds on the cores OpenBLAS's threads need, and a 512-token pass
 * with 2 threads ran at 0.6x its 1-thread speed (per-head attention products
 * at 11-16 GFLOP/s instead of ~90; see bench/README.md).  Serial element-wise
 * loops cost ~10% of a pass there. */
int openblas_get_parallel(void); /* OpenBLAS: 0 sequential, 1 pthreads, 2 OpenMP */
static int omp_ok(void) { return openblas_get_parallel() != 1; }

struct fwd {
    const model_t *m;
    int max_ctx, max_batch;
    fwd_hook_fn hook;
    void *hook_user;
    unsigned hook_mask;
    /* Activations, each (max_batch, width). */
    float *x;                   /* (B, d) residual stream */
    float *xn;                  /* (B, d) normalised input */
    float *xn2;                 /* (B, d) second norm (parallel residual) */
    float *q;                   /* (B, n_head*hd) */
    float *kv;                  /* (B, 3*d) fused qkv output, when fused */
    float *att;                 /* (B, n_head*hd) attention output before o-projection */
    float *tmp;                 /* (B, d) o-projection / FFN output */
    float *ff1;                 /* (B, n_ff) gate or W1 pre-activation */
    float *ff2;                 /* (B, n_ff) up projection */
    float *key;                 /* (B, n_ff) key activations */
    float *scores;              /* (B, max_ctx) one head's attention scores */
    float *kcache;              /* (L, max_ctx, kv_dim) */
    float *vcache;              /* (L, max_ctx, kv_dim) */
    float *rope_cos, *rope_sin; /* (max_ctx, rotary_dim/2) */
    float *scratch;             /* dequantisation blocks */
    size_t scratch_floats;
};

const char *hook_point_name(hook_point_t p) {
    static const char *n[HOOK_COUNT] = {"resid_pre",  "attn_out",  "resid_mid", "ffn_in",
                                        "ffn_pre",    "ffn_up",    "ffn_key",   "ffn_out",
                                        "resid_post", "final_norm"};
    return (unsigned)p < HOOK_COUNT ? n[p] : "?";
}

/* ---- BLAS through GSL --------------------------------------------------- */

/* C (M x N, ldc) = alpha * op(A) op(B) + beta * C, row-major with leading dims. */
static void sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
    gsl_matrix_float_const_view a =
        ta ? gsl_matrix_float_const_view_array_with_tda(A, (size_t)K, (size_t)M, (size_t)lda)
           : gsl_matrix_float_const_view_array_with_tda(A, (size_t)M, (size_t)K, (size_t)lda);
    gsl_matrix_float_const_view b =
        tb ? gsl_matrix_float_const_view_array_with_tda(B, (size_t)N, (size_t)K, (size_t)ldb)
           : gsl_matrix_float_const_view_array_with_tda(B, (size_t)K, (size_t)N, (size_t)ldb);
    gsl_matrix_float_view c =
        gsl_matrix_float_view_array_with_tda(C, (size_t)M, (size_t)N, (size_t)ldc);
    gsl_blas_sgemm(ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, alpha, &a.matrix,
                   &b.matrix, beta, &c.matrix);
}

/* y (n_y) = op(A) x with A (rows, cols) row-major; op = transpose when TA. */
static void sgemv(int ta, int rows, int cols, const float *A, const float *x, float *y) {
    gsl_matrix_float_const_view a =
        gsl_matrix_float_const_view_array(A, (size_t)rows, (size_t)cols);
    gsl_vector_float_const_view xv =
        gsl_vector_float_const_view_array(x, (size_t)(ta ? rows : cols));
    gsl_vector_float_view yv = gsl_vector_float_view_array(y, (size_t)(ta ? cols : rows));
    gsl_blas_sgemv(ta ? CblasTrans : CblasNoTrans, 1.0f, &a.matrix, &xv.vector, 0.0f, &yv.vector);
}

/* ---- Linear maps ---------------------------------------------------------- */

size_t lin_scratch_floats(int in, int out) {
    /* Blocks of up to ~4M floats (16 MiB), at least one row. */
    size_t row = (size_t)(in > out ? in : out);
    size_t want = (size_t)4 << 20;
    return want > row ? want : row;
}

static void add_bias(const lin_t *l, float *y, int T, int out, float *buf) {
    if (!l->b) return;
    /* Biases are one row: dequantise it into BUF (out floats) when not F32. */
    const float *b = l->b->data;
    if (l->b->dtype != DT_F32) {
        tensor_get_rows(l->b, 0, 1, buf);
        b = buf;
    }
#pragma omp parallel for if (T > 16 && omp_ok())
    for (int t = 0; t < T; t++)
        for (int j = 0; j < out; j++)
            y[(size_t)t * out + j] += b[j];
}

void lin_apply(const lin_t *l, const float *x, int T, int in, float *y, int out, float *scratch,
               size_t scratch_floats) {
    const tensor_t *w = l->w;
    if (w->dtype == DT_F32 && T == 1) {
        /* One row: a matrix-vector product.  OpenBLAS's sgemm with M = 1
         * still packs all of W and ran the 32000 x 768 LM head at ~1 GFLOP/s
         * (42 ms, 3% of a 512-token pass, and most of a generated token). */
        sgemv(l->transposed, l->transposed ? in : out, l->transposed ? out : in, w->data, x, y);
    } else if (w->dtype == DT_F32) {
        if (l->transposed)
            sgemm(0, 0, T, out, in, 1.0f, x, in, w->data, out, 0.0f, y, out);
        else
            sgemm(0, 1, T, out, in, 1.0f, x, in, w->data, in, 0.0f, y, out);
    } else if (!l->transposed) {
        /* W is (out, in): dequantise a block of output rows, then GEMM into
         * the matching columns of Y. */
        int rb = (int)(scratch_floats / (size_t)in);
        if (rb > out) rb = out;
        for (int r0 = 0; r0 < out; r0 += rb) {
            int nr = out - r0 < rb ? out - r0 : rb;
#pragma omp parallel for schedule(static) if (omp_ok())
            for (int r = 0; r < nr; r++)
                tensor_get_rows(w, r0 + r, 1, scratch + (size_t)r * in);
            sgemm(0, 1, T, nr, in, 1.0f, x, in, scratch, in, 0.0f, y + r0, out);
        }
    } else {
        /* W is (in, out) (Conv1D): blocks of input rows accumulate into Y. */
        int rb = (int)(scratch_floats / (size_t)out);
        if (rb > in) rb = in;
        for (int r0 = 0; r0 < in; r0 += rb) {
            int nr = in - r0 < rb ? in - r0 : rb;
#pragma omp parallel for schedule(static) if (omp_ok())
            for (int r = 0; r < nr; r++)
                tensor_get_rows(w, r0 + r, 1, scratch + (size_t)r * out);
            sgemm(0, 0, T, out, nr, 1.0f, x + r0, in, scratch, out, r0 ? 1.0f : 0.0f, y, out);
        }
    }
    add_bias(l, y, T, out, scratch);
}

void lin_apply_naive(const lin_t *l, const float *x, int T, int in, float *y, int out) {
    float *row = malloc((size_t)(l->transposed ? out : in) * sizeof *row);
    float *b = l->b ? malloc((size_t)out * sizeof *b) : NULL;
    PRB_ASSERT(row && (!l->b || b));
    if (b) tensor_get_rows(l->b, 0, 1, b);
    for (int t = 0; t < T; t++)
        for (int j = 0; j < out; j++)
            y[(size_t)t * out + j] = b ? b[j] : 0.0f;
    if (!l->transposed) {
        for (int j = 0; j < out; j++) {
            tensor_get_rows(l->w, j, 1, row);
            for (int t = 0; t < T; t++) {
                double s = 0;
                for (int i = 0; i < in; i++)
                    s += (double)x[(size_t)t * in + i] * row[i];
                y[(size_t)t * out + j] += (float)s;
            }
        }
    } else {
        for (int i = 0; i < in; i++) {
            tensor_get_rows(l->w, i, 1, row);
            for (int t = 0; t < T; t++)
                for (int j = 0; j < out; j++)
                    y[(size_t)t * out + j] += x[(size_t)t * in + i] * row[j];
        }
    }
    free(row);
    free(b);
}

/* ---- Element-wise pieces ------------------------------------------------------ */

/* Norm weights/biases are small; read them through a row dequant when not F32. */
static const float *vec_f32(const tensor_t *t, float *buf) {
    if (!t) return NULL;
    if (t->dtype == DT_F32) return t->data;
    tensor_get_rows(t, 0, tensor_rows(t), buf);
    return buf;
}

static void norm_rows(const model_t *m, const tensor_t *wt, const tensor_t *bt, const float *x,
                      float *y, int T, float *wbuf) {
    int d = m->cfg.d_model;
    const float *w = vec_f32(wt, wbuf), *b = vec_f32(bt, wbuf + d);
    float eps = m->cfg.norm_eps;
    int layer = m->cfg.norm == NORM_LAYER;
#pragma omp parallel for if (T > 8 && omp_ok())
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * d;
        float *yr = y + (size_t)t * d;
        if (layer) {
            double mean = 0, var = 0;
#pragma omp simd reduction(+ : mean)
            for (int i = 0; i < d; i++)
                mean += xr[i];
            mean /= d;
#pragma omp simd reduction(+ : var)
            for (int i = 0; i < d; i++)
                var += (xr[i] - mean) * (xr[i] - mean);
            var /= d;
            float inv = (float)(1.0 / sqrt(var + eps));
            for (int i = 0; i < d; i++)
                yr[i] = (float)(xr[i] - mean) * inv * w[i] + (b ? b[i] : 0.0f);
        } else {
            double ss = 0;
#pragma omp simd reduction(+ : ss)
            for (int i = 0; i < d; i++)
                ss += (double)xr[i] * xr[i];
            float inv = (float)(1.0 / sqrt(ss / d + eps));
            for (int i = 0; i < d; i++)
                yr[i] = w[i] * (xr[i] * inv);
        }
    }
}

/* GPT-2's gelu_new, 0.5 x (1 + tanh z) with z = sqrt(2/pi) (x + 0.044715 x^3), is computed as
 * the identical x * sigmoid(2z): in float, 1 + tanhf(z) cancels to nothing for x < -4, while
 * this form keeps a relative error below 1e-5 everywhere. */
static inline float gelu_tanh(float x) {
    return x / (1.0f + vmath_exp(-1.5957691216057308f * (x + 0.044715f * x * x * x)));
}

/* KEY[i] = act(G[i]) * U[i] (U NULL: act(G[i])), one loop per activation so
 * each vectorises. */
static void act_span(act_t a, const float *g, const float *u, float *key, int n) {
    switch (a) {
    case ACT_SILU:
#pragma omp simd
        for (int i = 0; i < n; i++)
            key[i] = g[i] / (1.0f + vmath_exp(-g[i])) * (u ? u[i] : 1.0f);
        break;
    case ACT_GELU_TANH:
#pragma omp simd
        for (int i = 0; i < n; i++)
            key[i] = gelu_tanh(g[i]) * (u ? u[i] : 1.0f);
        break;
    case ACT_GELU_ERF:
        for (int i = 0; i < n; i++)
            key[i] = 0.5f * g[i] * (1.0f + erff(g[i] * 0.7071067811865476f)) * (u ? u[i] : 1.0f);
        break;
    case ACT_RELU:
#pragma omp simd
        for (int i = 0; i < n; i++)
            key[i] = (g[i] > 0 ? g[i] : 0.0f) * (u ? u[i] : 1.0f);
        break;
    }
}

static void rope_rows(const struct fwd *f, float *x, int T, int pos0, int n_heads, int stride) {
    const mcfg_t *c = &f->m->cfg;
    int hd = c->head_dim, half = c->rotary_dim / 2;
#pragma omp parallel for if (T > 8 && omp_ok())
    for (int t = 0; t < T; t++) {
        const float *cs = f->rope_cos + (size_t)(pos0 + t) * half;
        const float *sn = f->rope_sin + (size_t)(pos0 + t) * half;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (size_t)t * stride + (size_t)h * hd;
            for (int i = 0; i < half; i++) {
                int a = c->rope == ROPE_PAIRWISE ? 2 * i : i;
                int b = c->rope == ROPE_PAIRWISE ? 2 * i + 1 : i + half;
                float v0 = v[a], v1 = v[b];
                v[a] = v0 * cs[i] - v1 * sn[i];
                v[b] = v0 * sn[i] + v1 * cs[i];
            }
        }
    }
}

/* ---- Setup ------------------------------------------------------------------------ */

fwd_t *fwd_new(const model_t *m, int max_ctx, int max_batch) {
    const mcfg_t *c = &m->cfg;
    if (max_ctx <= 0 || max_ctx > c->max_seq) {
        err_set("context of %d positions is outside the model's 1..%d", max_ctx, c->max_seq);
        return NULL;
    }
    if (max_batch <= 0 || max_batch > max_ctx) max_batch = max_ctx;
    fwd_t *f = calloc(1, sizeof *f);
    if (!f) return err_set("out of memory"), NULL;
    f->m = m;
    f->max_ctx = max_ctx;
    f->max_batch = max_batch;
    size_t B = (size_t)max_batch, d = (size_t)c->d_model, qd = (size_t)c->n_head * c->head_dim,
           kvd = (size_t)c->n_kv_head * c->head_dim, ff = (size_t)c->n_ff;
    size_t wide = d > qd ? d : qd;
    f->x = malloc(B * wide * sizeof(float));
    f->xn = malloc(B * wide * sizeof(float));
    f->xn2 = malloc(B * wide * sizeof(float));
    f->q = malloc(B * qd * sizeof(float));
    f->kv = malloc(B * (qd + 2 * kvd) * sizeof(float));
    f->att = malloc(B * qd * sizeof(float));
    f->tmp = malloc(B * wide * sizeof(float));
    f->ff1 = malloc(B * ff * sizeof(float));
    f->ff2 = malloc(B * ff * sizeof(float));
    f->key = malloc(B * ff * sizeof(float));
    f->scores = malloc(B * (size_t)max_ctx * sizeof(float));
    f->kcache = malloc((size_t)c->n_layer * max_ctx * kvd * sizeof(float));
    f->vcache = malloc((size_t)c->n_layer * max_ctx * kvd * sizeof(float));
    int half = c->rotary_dim / 2 > 0 ? c->rotary_dim / 2 : 1;
    f->rope_cos = malloc((size_t)max_ctx * half * sizeof(float));
    f->rope_sin = malloc((size_t)max_ctx * half * sizeof(float));
    /* Largest in/out of any weight decides the dequantisation block. */
    int big = c->vocab > c->n_ff ? c->vocab : c->n_ff;
    if (big < 3 * c->d_model) big = 3 * c->d_model;
    f->scratch_floats = lin_scratch_floats(big, c->d_model);
    f->scratch = malloc(f->scratch_floats * sizeof(float) + 2 * (d + ff) * sizeof(float));
    if (!f->x || !f->xn || !f->xn2 || !f->q || !f->kv || !f->att || !f->tmp || !f->ff1 || !f->ff2 ||
        !f->key || !f->scores || !f->kcache || !f->vcache || !f->rope_cos || !f->rope_sin ||
        !f->scratch) {
        fwd_free(f);
        err_set("out of memory for a context of %d positions", max_ctx);
        return NULL;
    }
    if (c->rope != ROPE_NONE) {
        /* Frequencies as llama2.c and Hugging Face compute them, in float:
         * theta^(-2i/rot); Llama 3 scaling adjusts the low frequencies. */
        for (int i = 0; i < half; i++) {
            float freq = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->rotary_dim);
            if (c->rope_factor > 0) {
                double lo_wl = c->rope_orig_ctx / c->rope_low_freq_factor;
                double hi_wl = c->rope_orig_ctx / c->rope_high_freq_factor;
                double wl = 2 * M_PI / freq;
                if (wl > lo_wl) {
                    freq = freq / c->rope_factor;
                } else if (wl >= hi_wl) {
                    double s = (c->rope_orig_ctx / wl - c->rope_low_freq_factor) /
                               (c->rope_high_freq_factor - c->rope_low_freq_factor);
                    freq = (float)((1 - s) * freq / c->rope_factor + s * freq);
                }
            }
            for (int p = 0; p < max_ctx; p++) {
                float a = (float)p * freq;
                f->rope_cos[(size_t)p * half + i] = cosf(a);
                f->rope_sin[(size_t)p * half + i] = sinf(a);
            }
        }
    }
    return f;
}

void fwd_free(fwd_t *f) {
    if (!f) return;
    float *bufs[] = {f->x,      f->xn,       f->xn2,      f->q,      f->kv,     f->att,
                     f->tmp,    f->ff1,      f->ff2,      f->key,    f->scores, f->kcache,
                     f->vcache, f->rope_cos, f->rope_sin, f->scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(bufs[i]);
    free(f);
}

void fwd_set_hook(fwd_t *f, fwd_hook_fn fn, void *user, unsigned mask) {
    f->hook = fn;
    f->hook_user = user;
    f->hook_mask = fn ? mask : 0;
}

static int emit(fwd_t *f, int layer, hook_point_t p, float *data, int T, int width, int pos0) {
    if (!(f->hook_mask & (1u << p))) return 0;
    return f->hook(f->hook_user, layer, p, data, T, width, pos0);
}

/* ---- Attention ------------------------------------------------------------------------ */

/* Query rows per attention block.  Block [t0, t1) needs only keys
 * 0..pos0+t1-1 (causal), so blocking skips most of the masked upper triangle:
 * at T = 512 and pos0 = 0 the products cover 62.5% of the full T x T scores. */
#define ATT_ROWS 128

static void attention(fwd_t *f, int l, int T, int pos0, const float *q, int q_stride) {
    const mcfg_t *c = &f->m->cfg;
    int hd = c->head_dim, kvd = c->n_kv_head * hd, qd = c->n_head * hd;
    int group = c->n_head / c->n_kv_head;
    const float *K = f->kcache + (size_t)l * f->max_ctx * kvd;
    const float *V = f->vcache + (size_t)l * f->max_ctx * kvd;
    float scale = 1.0f / sqrtf((float)hd);
    for (int h = 0; h < c->n_head; h++) {
        int g = h / group;
        for (int t0 = 0; t0 < T; t0 += ATT_ROWS) {
            int nt = T - t0 < ATT_ROWS ? T - t0 : ATT_ROWS;
            int n = pos0 + t0 + nt; /* keys this block sees */
            float *S = f->scores;   /* (nt, n) */
            sgemm(0, 1, nt, n, hd, scale, q + (size_t)t0 * q_stride + (size_t)h * hd, q_stride,
                  K + (size_t)g * hd, kvd, 0.0f, S, n);
#pragma omp parallel for if (nt > 8 && omp_ok())
            for (int t = 0; t < nt; t++) {
                float *row = S + (size_t)t * n;
                int valid = pos0 + t0 + t + 1; /* causal: keys 0..pos0+t0+t */
                float mx = row[0];
#pragma omp simd reduction(max : mx)
                for (int j = 1; j < valid; j++)
                    mx = row[j] > mx ? row[j] : mx;
                /* Separate loops: GCC leaves a fused exp-and-sum loop scalar. */
                for (int j = 0; j < valid; j++)
                    row[j] = vmath_exp(row[j] - mx);
                float sum = 0; /* 16 partial sums of values <= 1: ample for float */
#pragma omp simd reduction(+ : sum)
                for (int j = 0; j < valid; j++)
                    sum += row[j];
                float inv = 1.0f / sum;
                for (int j = 0; j < valid; j++)
                    row[j] *= inv;
                for (int j = valid; j < n; j++)
                    row[j] = 0.0f;
            }
            sgemm(0, 0, nt, hd, n, 1.0f, S, n, V + (size_t)g * hd, kvd, 0.0f,
                  f->att + (size_t)t0 * qd + (size_t)h * hd, qd);
        }
    }
}

/* ---- The pass ------------------------------------------------------------------------- */

int fwd_eval(fwd_t *f, const int *tokens, int T, int pos0, float *logits, int which) {
    const model_t *m = f->m;
    const mcfg_t *c = &m->cfg;
    int d = c->d_model, hd = c->head_dim, qd = c->n_head * hd, kvd = c->n_kv_head * hd,
        ff = c->n_ff;
    if (T <= 0) return err_set("nothing to evaluate (0 tokens)");
    if (T > f->max_batch) return err_set("%d tokens exceed the batch of %d", T, f->max_batch);
    if (pos0 < 0 || pos0 + T > f->max_ctx)
        return err_set("positions %d..%d exceed the context of %d", pos0, pos0 + T - 1, f->max_ctx);
    for (int t = 0; t < T; t++)
        if (tokens[t] < 0 || tokens[t] >= c->vocab)
            return err_set("token id %d is outside the vocabulary (0..%d)", tokens[t],
                           c->vocab - 1);
    float *x = f->x, *sc = f->scratch, *wbuf = f->scratch + f->scratch_floats;
    size_t ns = f->scratch_floats;

    /* Embeddings (any dtype), plus learned positions. */
    for (int t = 0; t < T; t++)
        tensor_get_rows(m->tok_embd, tokens[t], 1, x + (size_t)t * d);
    if (m->pos_embd) {
        for (int t = 0; t < T; t++) {
            tensor_get_rows(m->pos_embd, pos0 + t, 1, f->tmp);
            for (int i = 0; i < d; i++)
                x[(size_t)t * d + i] += f->tmp[i];
        }
    }

    for (int l = 0; l < c->n_layer; l++) {
        const mlayer_t *L = &m->layers[l];
        if (emit(f, l, HOOK_RESID_PRE, x, T, d, pos0)) return -1;
        /* Attention block. */
        norm_rows(m, L->attn_norm_w, L->attn_norm_b, x, f->xn, T, wbuf);
        float *kc = f->kcache + ((size_t)l * f->max_ctx + pos0) * kvd;
        float *vc = f->vcache + ((size_t)l * f->max_ctx + pos0) * kvd;
        const float *q;
        int q_stride;
        if (c->qkv == QKV_SEPARATE) {
            lin_apply(&L->q, f->xn, T, d, f->q, qd, sc, ns);
            lin_apply(&L->k, f->xn, T, d, kc, kvd, sc, ns);
            lin_apply(&L->v, f->xn, T, d, vc, kvd, sc, ns);
            q = f->q;
            q_stride = qd;
        } else {
            int w3 = qd + 2 * kvd;
            lin_apply(&L->qkv, f->xn, T, d, f->kv, w3, sc, ns);
            for (int t = 0; t < T; t++) {
                const float *r = f->kv + (size_t)t * w3;
                for (int h = 0; h < c->n_head; h++) {
                    const float *qs, *ks, *vs;
                    if (c->qkv == QKV_FUSED_BLOCKS) { /* [Q | K | V] */
                        qs = r + (size_t)h * hd;
                        ks = r + qd + (size_t)h * hd;
                        vs = r + qd + kvd + (size_t)h * hd;
                    } else { /* per head [q_h | k_h | v_h] (NeoX, no GQA) */
                        qs = r + (size_t)h * 3 * hd;
                        ks = qs + hd;
                        vs = qs + 2 * hd;
                    }
                    memcpy(f->q + (size_t)t * qd + (size_t)h * hd, qs, (size_t)hd * 4);
                    if (h < c->n_kv_head) {
                        memcpy(kc + (size_t)t * kvd + (size_t)h * hd, ks, (size_t)hd * 4);
                        memcpy(vc + (size_t)t * kvd + (size_t)h * hd, vs, (size_t)hd * 4);
                    }
                }
            }
            q = f->q;
            q_stride = qd;
        }
        if (c->rope != ROPE_NONE) {
            rope_rows(f, f->q, T, pos0, c->n_head, qd);
            rope_rows(f, kc, T, pos0, c->n_kv_head, kvd);
        }
        attention(f, l, T, pos0, q, q_stride);
        lin_apply(&L->o, f->att, T, qd, f->tmp, d, sc, ns);
        if (emit(f, l, HOOK_ATTN_OUT, f->tmp, T, d, pos0)) return -1;
        /* FFN input: the residual after attention, or (parallel residual) the
         * layer input. */
        const float *ffn_src = x;
        if (!c->parallel_residual) {
            for (size_t i = 0; i < (size_t)T * d; i++)
                x[i] += f->tmp[i];
            if (emit(f, l, HOOK_RESID_MID, x, T, d, pos0)) return -1;
        }
        norm_rows(m, L->ffn_norm_w, L->ffn_norm_b, ffn_src, f->xn2, T, wbuf);
        if (c->parallel_residual) {
            for (size_t i = 0; i < (size_t)T * d; i++)
                x[i] += f->tmp[i];
            if (emit(f, l, HOOK_RESID_MID, x, T, d, pos0)) return -1;
        }
        if (emit(f, l, HOOK_FFN_IN, f->xn2, T, d, pos0)) return -1;
        if (c->gated) {
            lin_apply(&L->gate, f->xn2, T, d, f->ff1, ff, sc, ns);
            if (emit(f, l, HOOK_FFN_PRE, f->ff1, T, ff, pos0)) return -1;
            lin_apply(&L->up, f->xn2, T, d, f->ff2, ff, sc, ns);
            if (emit(f, l, HOOK_FFN_UP, f->ff2, T, ff, pos0)) return -1;
#pragma omp parallel for if (T > 8 && omp_ok())
            for (int t = 0; t < T; t++) {
                size_t o = (size_t)t * ff;
                act_span(c->act, f->ff1 + o, f->ff2 + o, f->key + o, ff);
            }
        } else {
            lin_apply(&L->up, f->xn2, T, d, f->ff1, ff, sc, ns);
            if (emit(f, l, HOOK_FFN_PRE, f->ff1, T, ff, pos0)) return -1;
#pragma omp parallel for if (T > 8 && omp_ok())
            for (int t = 0; t < T; t++) {
                size_t o = (size_t)t * ff;
                act_span(c->act, f->ff1 + o, NULL, f->key + o, ff);
            }
        }
        if (emit(f, l, HOOK_FFN_KEY, f->key, T, ff, pos0)) return -1;
        lin_apply(&L->down, f->key, T, ff, f->tmp, d, sc, ns);
        if (emit(f, l, HOOK_FFN_OUT, f->tmp, T, d, pos0)) return -1;
        for (size_t i = 0; i < (size_t)T * d; i++)
            x[i] += f->tmp[i];
        if (emit(f, l, HOOK_RESID_POST, x, T, d, pos0)) return -1;
    }
    if (which == FWD_LOGITS_NONE && !(f->hook_mask & (1u << HOOK_FINAL_NORM))) return 0;
    norm_rows(m, m->out_norm_w, m->out_norm_b, x, f->xn, T, wbuf);
    if (emit(f, c->n_layer, HOOK_FINAL_NORM, f->xn, T, d, pos0)) return -1;
    if (which == FWD_LOGITS_ALL)
        lin_apply(&m->lm_head, f->xn, T, d, logits, c->vocab, sc, ns);
    else if (which == FWD_LOGITS_LAST)
        lin_apply(&m->lm_head, f->xn + (size_t)(T - 1) * d, 1, d, logits, c->vocab, sc, ns);
    return 0;
}
