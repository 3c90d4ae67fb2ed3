/* fwd_bench: prompt-processing speed, FLOP rate, memory and a time profile of
 * the forward pass (core/fwd.c) on a model file.
 *
 *   fwd_bench MODEL [--threads 1,2] [--tokens 128,512] [--runs 5] [--profile] [--rss]
 *
 * Each (T, threads): fwd_eval over a T-token prompt of random ids (fixed
 * seed) at position 0 with FWD_LOGITS_LAST, one warm-up call, then RUNS timed
 * calls; best and median wall time.  Threads are set with omp_set_num_threads
 * and openblas_set_num_threads, as probe's --threads does.
 *
 * FLOPs (multiply-add = 2), counted from the model's config:
 *   linear maps: 2 T (q, k, v, o, gate, up, down parameters) per layer;
 *   attention:   the unmasked causal pairs only: row t sees n = pos0 + t + 1
 *                keys, 2*2*n*hd per head (Q K^T and S V) -- the work a causal
 *                pass must do.  fwd.c blocks the query rows (ATT_ROWS) and
 *                skips most, not all, of the masked triangle, so it computes
 *                a little more than this; the full square (every row against
 *                every key) is printed as gflop_full for reference;
 *   LM head:     2 d vocab for the last token.
 * Norms, RoPE, softmax, SiLU and residual adds are not counted.  GFLOP/s use
 * the causal count: useful work per second.
 *
 * --rss: one T-token pass (first thread count, largest T), then peak RSS
 * (getrusage) against the weights file size plus the activation buffers that
 * fwd_new allocates (mirrored from core/fwd.c below).
 *
 * --profile: where the time goes.  This file defines gsl_blas_sgemm, which
 * the linker binds fwd.c's calls to (the executable's definition wins over
 * libgsl's); it timestamps each call, classifies it by shape, and forwards
 * to the real one (dlsym RTLD_NEXT).  A hook on every fwd hook point adds
 * timestamps between the products, so the gaps between events (norms, RoPE,
 * softmax, SiLU, residual adds) are timed too, labelled "after A -> before B".
 * Without --profile the wrapper only forwards.
 *
 * Output (stdout): key=value lines (fwd ..., mem ..., act ..., prof ...).
 * Status and errors to stderr; exit 1 on failure. */
#include "core/err.h"
#include "core/fwd.h"
#include "core/model.h"

#include <dlfcn.h>
#include <errno.h>
#include <gsl/gsl_blas.h>
#include <gsl/gsl_errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>

void openblas_set_num_threads(int);
char *openblas_get_corename(void);

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- Profiling: events from the sgemm wrapper and the hooks --------------- */

enum { EV_HOOK = 0, EV_GEMM_BEGIN, EV_GEMM_END, EV_EVAL_BEGIN, EV_EVAL_END };

typedef struct {
    double t;
    int kind, what; /* what: hook point, or gemm class */
} event_t;

enum { G_QKVO = 0, G_GATE_UP, G_DOWN, G_ATT_QK, G_ATT_SV, G_LM_HEAD, G_OTHER, G_COUNT };
static const char *gemm_names[G_COUNT] = {
    "gemm q/k/v/o projections", "gemm ffn gate+up", "gemm ffn down", "gemm attention Q K^T",
    "gemm attention S V",       "gemm lm head",     "gemm other"};

static struct {
    int on;
    int d, qd, ff, hd, vocab; /* for classifying products by shape */
    event_t *ev;
    size_t n, cap;
    double gemm_flops[G_COUNT];
} prof;

static void prof_event(int kind, int what) {
    if (!prof.on) return;
    if (prof.n == prof.cap) {
        size_t cap = prof.cap ? 2 * prof.cap : 4096;
        event_t *e = realloc(prof.ev, cap * sizeof *e);
        PRB_ASSERT(e);
        prof.ev = e, prof.cap = cap;
    }
    prof.ev[prof.n++] = (event_t){now_s(), kind, what};
}

static int classify(size_t M, size_t N, size_t K, int tb) {
    (void)M;
    if (N == (size_t)prof.vocab) return G_LM_HEAD;
    if (K == (size_t)prof.hd && tb) return G_ATT_QK;
    if (N == (size_t)prof.hd && !tb) return G_ATT_SV;
    if (N == (size_t)prof.ff && K == (size_t)prof.d) return G_GATE_UP;
    if (N == (size_t)prof.d && K == (size_t)prof.ff) return G_DOWN;
    if (K == (size_t)prof.d || K == (size_t)prof.qd) return G_QKVO;
    return G_OTHER;
}

typedef int (*sgemm_fn)(CBLAS_TRANSPOSE_t, CBLAS_TRANSPOSE_t, float, const gsl_matrix_float *,
                        const gsl_matrix_float *, float, gsl_matrix_float *);

/* Interposes libgsl's gsl_blas_sgemm for the core objects linked into this
 * binary (see the top of the file). */
int gsl_blas_sgemm(CBLAS_TRANSPOSE_t ta, CBLAS_TRANSPOSE_t tb, float alpha,
                   const gsl_matrix_float *A, const gsl_matrix_float *B, float beta,
                   gsl_matrix_float *C) {
    static sgemm_fn real;
    if (!real) {
        real = (sgemm_fn)dlsym(RTLD_NEXT, "gsl_blas_sgemm");
        PRB_ASSERT(real);
    }
    if (!prof.on) return real(ta, tb, alpha, A, B, beta, C);
    size_t M = C->size1, N = C->size2, K = ta == CblasTrans ? A->size1 : A->size2;
    int g = classify(M, N, K, tb == CblasTrans);
    prof.gemm_flops[g] += 2.0 * M * N * K;
    prof_event(EV_GEMM_BEGIN, g);
    int rc = real(ta, tb, alpha, A, B, beta, C);
    prof_event(EV_GEMM_END, g);
    return rc;
}

static int prof_hook(void *user, int layer, hook_point_t p, float *data, int T, int width,
                     int pos0) {
    prof_event(EV_HOOK, p);
    return 0;
}

static void event_name(const event_t *e, char *buf, size_t n) {
    switch (e->kind) {
    case EV_HOOK: snprintf(buf, n, "hook %s", hook_point_name((hook_point_t)e->what)); break;
    case EV_GEMM_BEGIN:
    case EV_GEMM_END: snprintf(buf, n, "%s", gemm_names[e->what]); break;
    case EV_EVAL_BEGIN: snprintf(buf, n, "eval start"); break;
    default: snprintf(buf, n, "eval end"); break;
    }
}

typedef struct {
    char label[160];
    double s, flops;
    long calls;
} bucket_t;

static int cmp_bucket(const void *a, const void *b) {
    double x = ((const bucket_t *)a)->s, y = ((const bucket_t *)b)->s;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Attributes every interval between consecutive events of the recorded
 * evals to a label, and prints the labels by time. */
static void prof_report(int T, int threads, int evals) {
    bucket_t *b = calloc(prof.n + G_COUNT, sizeof *b);
    PRB_ASSERT(b);
    int nb = 0;
    double total = 0;
    for (size_t i = 1; i < prof.n; i++) {
        const event_t *e0 = &prof.ev[i - 1], *e1 = &prof.ev[i];
        if (e0->kind == EV_EVAL_END) continue; /* between evals: not ours */
        char label[160], a[64], c[64];
        if (e0->kind == EV_GEMM_BEGIN) {
            snprintf(label, sizeof label, "%s", gemm_names[e0->what]);
        } else {
            event_name(e0, a, sizeof a);
            event_name(e1, c, sizeof c);
            snprintf(label, sizeof label, "between: after %s -> before %s", a, c);
        }
        int k = 0;
        while (k < nb && strcmp(b[k].label, label))
            k++;
        if (k == nb) snprintf(b[nb++].label, sizeof b->label, "%s", label);
        double dt = e1->t - e0->t;
        b[k].s += dt;
        b[k].calls++;
        if (e0->kind == EV_GEMM_BEGIN) b[k].flops += 0; /* filled below */
        total += dt;
    }
    for (int k = 0; k < nb; k++)
        for (int g = 0; g < G_COUNT; g++)
            if (!strcmp(b[k].label, gemm_names[g])) b[k].flops = prof.gemm_flops[g];
    qsort(b, nb, sizeof *b, cmp_bucket);
    double gemm = 0;
    for (int k = 0; k < nb; k++)
        if (!strncmp(b[k].label, "gemm", 4)) gemm += b[k].s;
    printf("prof T=%d threads=%d evals=%d total_ms=%.2f gemm_ms=%.2f other_ms=%.2f gemm_pct=%.1f\n",
           T, threads, evals, total / evals * 1e3, gemm / evals * 1e3, (total - gemm) / evals * 1e3,
           100 * gemm / total);
    for (int k = 0; k < nb; k++) {
        if (b[k].s / total < 0.0005) continue;
        printf("prof T=%d threads=%d ms=%.3f pct=%.1f calls=%ld", T, threads, b[k].s / evals * 1e3,
               100 * b[k].s / total, b[k].calls / evals);
        if (b[k].flops > 0) printf(" gflops=%.1f", b[k].flops / b[k].s * 1e-9);
        printf(" part=\"%s\"\n", b[k].label);
    }
    free(b);
}

/* ---- FLOPs and memory ----------------------------------------------------------- */

typedef struct {
    double linear, attn_computed, attn_causal, lm_head;
} flops_t;

static flops_t count_flops(const mcfg_t *c, int T, int pos0) {
    double d = c->d_model, qd = (double)c->n_head * c->head_dim,
           kvd = (double)c->n_kv_head * c->head_dim, ff = c->n_ff, L = c->n_layer, n = pos0 + T;
    /* q (qd x d), k and v (kvd x d), o (d x qd); gate/up (ff x d), down (d x ff). */
    double per_tok = L * (d * qd + 2 * d * kvd + qd * d + (c->gated ? 3 : 2) * d * ff);
    flops_t f;
    f.linear = 2 * T * per_tok;
    /* Per head: S = Q K^T (T x n x hd) and S V (T x hd x n): 2 products of 2*T*n*hd. */
    f.attn_computed = L * c->n_head * 2.0 * 2.0 * T * n * c->head_dim;
    /* Unmasked pairs: row t sees pos0 + t + 1 keys. */
    double pairs = (double)T * pos0 + (double)T * (T + 1) / 2;
    f.attn_causal = L * c->n_head * 2.0 * 2.0 * pairs * c->head_dim;
    f.lm_head = 2 * d * c->vocab;
    return f;
}

/* The buffers fwd_new (core/fwd.c) allocates, in bytes; USED marks those a
 * separate-QKV model with F32 weights writes (the fused-QKV buffer and the
 * dequantisation scratch are never touched then, so never become resident).
 * Keep in step with fwd_new. */
typedef struct {
    const char *name;
    double bytes;
    int used;
} actbuf_t;

static int act_buffers(const model_t *m, int max_ctx, int max_batch, actbuf_t *out) {
    const mcfg_t *c = &m->cfg;
    double B = max_batch, d = c->d_model, qd = (double)c->n_head * c->head_dim,
           kvd = (double)c->n_kv_head * c->head_dim, ff = c->n_ff, wide = d > qd ? d : qd;
    int half = c->rotary_dim / 2 > 0 ? c->rotary_dim / 2 : 1;
    int big = c->vocab > c->n_ff ? c->vocab : c->n_ff;
    if (big < 3 * c->d_model) big = 3 * c->d_model;
    double scratch = (double)lin_scratch_floats(big, c->d_model) + 2 * (d + ff);
    int f32 = m->layers[0].up.w && m->layers[0].up.w->dtype == DT_F32;
    int sep = c->qkv == QKV_SEPARATE;
    int n = 0;
    out[n++] = (actbuf_t){"x xn xn2 tmp (B,d)", 4 * B * wide * 4, 1};
    out[n++] = (actbuf_t){"q att (B,qd)", 2 * B * qd * 4, 1};
    out[n++] = (actbuf_t){"kv fused qkv (B,qd+2kvd)", B * (qd + 2 * kvd) * 4, !sep};
    out[n++] = (actbuf_t){"ff1 ff2 key (B,ff)", 3 * B * ff * 4, 1};
    out[n++] = (actbuf_t){"scores (B,ctx)", B * max_ctx * 4, 1};
    out[n++] = (actbuf_t){"kv cache (2,L,ctx,kvd)", 2.0 * c->n_layer * max_ctx * kvd * 4, 1};
    out[n++] = (actbuf_t){"rope cos/sin (ctx,rot/2)", 2.0 * max_ctx * half * 4, 1};
    out[n++] = (actbuf_t){"dequant scratch", scratch * 4, !f32};
    out[n++] = (actbuf_t){"logits (vocab), bench", (double)c->vocab * 4, 1};
    return n;
}

/* Bytes of the weights: the file, or for a Hugging Face folder the sum of
 * its *.safetensors files. */
static double weights_bytes(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    if (!S_ISDIR(st.st_mode)) return (double)st.st_size;
    double sum = 0;
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 12 || strcmp(e->d_name + n - 12, ".safetensors")) continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        if (stat(p, &st) == 0) sum += (double)st.st_size;
    }
    if (d) closedir(d);
    return sum;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

/* ---- Driver --------------------------------------------------------------------------- */

static int parse_list(const char *s, int *out, int max, const char *what) {
    int n = 0;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || end == s || v < 1 || v > (1 << 20) || n == max || (*end && *end != ',')) {
            fprintf(stderr, "fwd_bench: bad %s list '%s' (comma-separated positive integers)\n",
                    what, s);
            return -1;
        }
        out[n++] = (int)v;
        s = *end ? end + 1 : end;
    }
    if (n == 0) fprintf(stderr, "fwd_bench: empty %s list\n", what);
    return n ? n : -1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* OpenMP and OpenBLAS threads, as probe's --threads sets them; OMP_OVERRIDE
 * > 0 (--omp N, a diagnostic) gives OpenMP its own count. */
static int omp_override;
static void set_threads(int n) {
    omp_set_num_threads(omp_override > 0 ? omp_override : n);
    openblas_set_num_threads(n);
}

int main(int argc, char **argv) {
    gsl_set_error_handler_off();
    const char *path = NULL;
    int threads[8] = {1, 2}, nthreads = 2, tokens[8] = {128, 512}, ntokens = 2, runs = 5;
    int do_profile = 0, do_rss = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if ((nthreads = parse_list(argv[++i], threads, 8, "--threads")) < 0) return 2;
        } else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) {
            if ((ntokens = parse_list(argv[++i], tokens, 8, "--tokens")) < 0) return 2;
        } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            int r[1];
            if (parse_list(argv[++i], r, 1, "--runs") < 0) return 2;
            runs = r[0];
        } else if (!strcmp(argv[i], "--omp") && i + 1 < argc) {
            int r[1];
            if (parse_list(argv[++i], r, 1, "--omp") < 0) return 2;
            omp_override = r[0];
        } else if (!strcmp(argv[i], "--profile")) {
            do_profile = 1;
        } else if (!strcmp(argv[i], "--rss")) {
            do_rss = 1;
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "usage: fwd_bench MODEL [--threads 1,2] [--tokens 128,512] [--runs 5] "
                            "[--profile] [--rss]\n");
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        fprintf(stderr, "fwd_bench: no model file given\n");
        return 2;
    }
    int max_T = 0;
    for (int i = 0; i < ntokens; i++)
        max_T = tokens[i] > max_T ? tokens[i] : max_T;

    double t0 = now_s();
    model_t *m = model_open(path, NULL);
    if (!m) {
        fprintf(stderr, "fwd_bench: %s\n", err_msg());
        return 1;
    }
    const mcfg_t *c = &m->cfg;
    double open_s = now_s() - t0;
    fprintf(stderr,
            "fwd_bench: %s: %s, d=%d, %d layers, ff=%d, %d heads, vocab %d (%.2f s to open)\n",
            path, m->format, c->d_model, c->n_layer, c->n_ff, c->n_head, c->vocab, open_s);
    fwd_t *f = fwd_new(m, max_T, max_T);
    double first_s = -1; /* the first fwd_eval: it faults the mmap'ed weights in */
    float *logits = malloc((size_t)c->vocab * sizeof *logits);
    int *ids = malloc((size_t)max_T * sizeof *ids);
    if (!f || !logits || !ids) {
        fprintf(stderr, "fwd_bench: %s\n", f ? "out of memory" : err_msg());
        return 1;
    }
    unsigned seed = 12345;
    for (int t = 0; t < max_T; t++) {
        seed = seed * 1664525u + 1013904223u;
        ids[t] = (int)((seed >> 8) % (unsigned)c->vocab);
    }
    printf("fwd model=\"%s\" d=%d layers=%d ff=%d heads=%d kv_heads=%d vocab=%d blas_core=%s "
           "OPENBLAS_CORETYPE=%s\n",
           path, c->d_model, c->n_layer, c->n_ff, c->n_head, c->n_kv_head, c->vocab,
           openblas_get_corename(),
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)");

    /* Cross-check the hand count with the model's own parameter count. */
    mparams_t pc;
    model_param_counts(m, &pc);
    flops_t f1 = count_flops(c, 1, 0);
    /* Biases (GPT-2, Qwen2) are parameters but not multiply-adds: allow 1%. */
    if (fabs(f1.linear - 2.0 * (pc.attn + pc.ffn)) > 0.01 * f1.linear)
        fprintf(stderr, "fwd_bench: warning: FLOP count %.0f != 2 x matmul params (2 x %lld)\n",
                f1.linear, (long long)(pc.attn + pc.ffn));

    if (do_rss) {
        int T = max_T;
        set_threads(threads[0]);
        double s = now_s();
        if (fwd_eval(f, ids, T, 0, logits, FWD_LOGITS_LAST)) {
            fprintf(stderr, "fwd_bench: %s\n", err_msg());
            return 1;
        }
        printf("load open_s=%.4f first_pass_s=%.4f T=%d threads=%d\n", open_s, now_s() - s, T,
               threads[0]);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double wbytes = weights_bytes(path);
        actbuf_t ab[16];
        int na = act_buffers(m, max_T, max_T, ab);
        double alloc = 0, used = 0;
        for (int i = 0; i < na; i++) {
            printf("act buffer=\"%s\" bytes=%.0f used=%d\n", ab[i].name, ab[i].bytes, ab[i].used);
            alloc += ab[i].bytes;
            used += ab[i].used ? ab[i].bytes : 0;
        }
        double rss = (double)ru.ru_maxrss * 1024;
        printf("mem T=%d threads=%d weights_bytes=%.0f act_alloc_bytes=%.0f act_used_bytes=%.0f "
               "maxrss_bytes=%.0f ratio_alloc=%.3f ratio_used=%.3f\n",
               T, threads[0], wbytes, alloc, used, rss, rss / (wbytes + alloc),
               rss / (wbytes + used));
        goto done;
    }

    if (do_profile) {
        prof.d = c->d_model;
        prof.qd = c->n_head * c->head_dim;
        prof.ff = c->n_ff;
        prof.hd = c->head_dim;
        prof.vocab = c->vocab;
        fwd_set_hook(f, prof_hook, NULL, (1u << HOOK_COUNT) - 1);
    }
    double *times = malloc((size_t)runs * sizeof *times);
    PRB_ASSERT(times);
    for (int ti = 0; ti < ntokens; ti++) {
        int T = tokens[ti];
        flops_t fl = count_flops(c, T, 0);
        double full = fl.linear + fl.attn_computed + fl.lm_head;
        double causal = fl.linear + fl.attn_causal + fl.lm_head;
        for (int hi = 0; hi < nthreads; hi++) {
            set_threads(threads[hi]);
            double s0 = now_s();
            if (fwd_eval(f, ids, T, 0, logits, FWD_LOGITS_LAST)) { /* warm-up */
                fprintf(stderr, "fwd_bench: %s\n", err_msg());
                return 1;
            }
            if (first_s < 0) {
                first_s = now_s() - s0;
                printf("load open_s=%.4f first_pass_s=%.4f T=%d threads=%d\n", open_s, first_s, T,
                       threads[hi]);
            }
            if (do_profile) {
                prof.n = 0;
                memset(prof.gemm_flops, 0, sizeof prof.gemm_flops);
                prof.on = 1;
            }
            double c0 = cpu_s();
            for (int r = 0; r < runs; r++) {
                prof_event(EV_EVAL_BEGIN, 0);
                double s = now_s();
                int rc = fwd_eval(f, ids, T, 0, logits, FWD_LOGITS_LAST);
                times[r] = now_s() - s;
                prof_event(EV_EVAL_END, 0);
                if (rc) {
                    fprintf(stderr, "fwd_bench: %s\n", err_msg());
                    return 1;
                }
            }
            prof.on = 0;
            double cpu = (cpu_s() - c0) / runs;
            qsort(times, (size_t)runs, sizeof *times, cmp_double);
            double best = times[0], med = times[runs / 2];
            if (runs % 2 == 0) med = 0.5 * (times[runs / 2 - 1] + times[runs / 2]);
            printf("fwd T=%d threads=%d runs=%d%s best_s=%.4f median_s=%.4f tok_s_best=%.1f "
                   "tok_s_median=%.1f gflop=%.3f gflop_full=%.3f gflop_linear=%.3f "
                   "gflop_attn=%.3f gflop_lm_head=%.3f gflops=%.1f cpu_s=%.4f\n",
                   T, threads[hi], runs, do_profile ? " profiled=1" : "", best, med, T / best,
                   T / med, causal * 1e-9, full * 1e-9, fl.linear * 1e-9, fl.attn_causal * 1e-9,
                   fl.lm_head * 1e-9, causal / best * 1e-9, cpu);
            fflush(stdout);
            if (do_profile) prof_report(T, threads[hi], runs);
            fflush(stdout);
        }
    }
    free(times);
done:
    free(ids);
    free(logits);
    free(prof.ev);
    fwd_free(f);
    model_close(m);
    return 0;
}
