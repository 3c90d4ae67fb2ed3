/* sgemm_peak: this machine's single-precision GEMM throughput through the
 * same path the forward pass uses (gsl_blas_sgemm -> OpenBLAS), for each
 * thread count given (default 1 and 2).
 *
 * Shapes: square NN products (1024, 1536, 2048), which is what "peak" means
 * here, and the products one 768/2048/12-layer Llama layer actually issues
 * for T = 128 and 512 tokens: x W^T with W (out, in) row-major ("NT"), and
 * the per-head attention products (T x T x 64 and T x 64 x T).  Each shape:
 * one warm-up call, then repeated until 0.25 s or 3 calls (at most 50);
 * the best call counts.  FLOPs = 2 M N K.
 *
 * Output (stdout, one line per measurement, key=value):
 *   sgemm threads=1 shape=square2048 M=2048 N=2048 K=2048 op=NN gflops=... best_ms=...
 *   sgemm_peak threads=1 gflops=... shape=...
 * The peak is the best of all shapes at that thread count.  OpenBLAS's core
 * name goes to a "blas" line so runs with different OPENBLAS_CORETYPE are
 * labelled. */
#include <errno.h>
#include <gsl/gsl_blas.h>
#include <gsl/gsl_errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int);
char *openblas_get_corename(void);
char *openblas_get_config(void);

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    const char *name;
    int M, N, K, tb; /* C (M,N) = A (M,K) * op(B); tb: B stored (N,K) */
} shape_t;

static float *rand_floats(size_t n, unsigned seed) {
    float *p = malloc(n * sizeof *p);
    if (!p) return NULL;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((seed >> 8) * (2.0 / 16777216.0) - 1.0);
    }
    return p;
}

/* Best GFLOP/s of shape S; -1 on failure. */
static double measure(const shape_t *s, double *best_ms) {
    size_t M = s->M, N = s->N, K = s->K;
    float *A = rand_floats(M * K, 1), *B = rand_floats(N * K, 2), *C = calloc(M * N, sizeof *C);
    if (!A || !B || !C) {
        free(A), free(B), free(C);
        return -1;
    }
    gsl_matrix_float_const_view a = gsl_matrix_float_const_view_array(A, M, K);
    gsl_matrix_float_const_view b = s->tb ? gsl_matrix_float_const_view_array(B, N, K)
                                          : gsl_matrix_float_const_view_array(B, K, N);
    gsl_matrix_float_view c = gsl_matrix_float_view_array(C, M, N);
    CBLAS_TRANSPOSE_t tb = s->tb ? CblasTrans : CblasNoTrans;
    double best = 1e30, total = 0;
    int rc = gsl_blas_sgemm(CblasNoTrans, tb, 1.0f, &a.matrix, &b.matrix, 0.0f, &c.matrix);
    for (int r = 0; rc == 0 && r < 50 && (r < 3 || total < 0.25); r++) {
        double t0 = now_s();
        rc = gsl_blas_sgemm(CblasNoTrans, tb, 1.0f, &a.matrix, &b.matrix, 0.0f, &c.matrix);
        double dt = now_s() - t0;
        total += dt;
        if (dt < best) best = dt;
    }
    free(A), free(B), free(C);
    if (rc) return -1;
    *best_ms = best * 1e3;
    return 2.0 * M * N * K / best * 1e-9;
}

int main(int argc, char **argv) {
    gsl_set_error_handler_off();
    int threads[8], nt = 0;
    for (int i = 1; i < argc && nt < 8; i++) {
        char *end;
        errno = 0;
        long v = strtol(argv[i], &end, 10);
        if (errno || *end || v < 1 || v > 1024) {
            fprintf(stderr, "sgemm_peak: thread count must be 1..1024, got '%s'\n", argv[i]);
            return 2;
        }
        threads[nt++] = (int)v;
    }
    if (nt == 0) threads[nt++] = 1, threads[nt++] = 2;

    static const shape_t shapes[] = {
        {"square1024", 1024, 1024, 1024, 0}, {"square1536", 1536, 1536, 1536, 0},
        {"square2048", 2048, 2048, 2048, 0}, {"qkvo_T512", 512, 768, 768, 1},
        {"gate_up_T512", 512, 2048, 768, 1}, {"down_T512", 512, 768, 2048, 1},
        {"att_qk_T512", 512, 512, 64, 1},    {"att_sv_T512", 512, 64, 512, 0},
        {"qkvo_T128", 128, 768, 768, 1},     {"gate_up_T128", 128, 2048, 768, 1},
        {"down_T128", 128, 768, 2048, 1},    {"att_qk_T128", 128, 128, 64, 1},
        {"att_sv_T128", 128, 64, 128, 0},
    };
    printf("blas core=%s config=\"%s\" OPENBLAS_CORETYPE=%s\n", openblas_get_corename(),
           openblas_get_config(),
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)");
    for (int ti = 0; ti < nt; ti++) {
        openblas_set_num_threads(threads[ti]);
        omp_set_num_threads(threads[ti]);
        double peak = 0;
        const char *peak_shape = "";
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
            const shape_t *s = &shapes[i];
            double ms, g = measure(s, &ms);
            if (g < 0) {
                fprintf(stderr, "sgemm_peak: %s failed (out of memory or GSL error)\n", s->name);
                return 1;
            }
            printf("sgemm threads=%d shape=%s M=%d N=%d K=%d op=N%c gflops=%.1f best_ms=%.3f\n",
                   threads[ti], s->name, s->M, s->N, s->K, s->tb ? 'T' : 'N', g, ms);
            fflush(stdout);
            if (g > peak) peak = g, peak_shape = s->name;
        }
        printf("sgemm_peak threads=%d gflops=%.1f shape=%s\n", threads[ti], peak, peak_shape);
        fflush(stdout);
    }
    return 0;
}
