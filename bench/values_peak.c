/* values_peak: this machine's sgemm peak, measured in the same run as the
 * `probe values` benchmark (bench/values_bench.sh), through the path probe
 * uses: gsl_blas_sgemm -> OpenBLAS.
 *
 * Shapes: a square NN product of 2048 (what "peak" usually means; 4096 was
 * never faster here), and the product `probe values` issues on a
 * GPT-2-medium-shaped model: a block of 1024 value vectors (1024 x 1024)
 * times the unembedding transposed (1024 x 50257), "NT".  For each thread count given (default 1
 * 2): one warm-up call, then calls until 1 s has passed (at least 2); best counts. With threads > 1
 * the values shape is also run the way probe runs it: one single-threaded sgemm per thread on its
 * own block, concurrently.
 *
 * Output, one line each, key=value:
 *   sgemm threads=2 shape=square2048 M=2048 N=2048 K=2048 gflops=... cpu_gflops=...
 *   sgemm_peak threads=2 gflops=... cpu_gflops=... shape=...   (best over the shapes)
 * FLOPs = 2 M N K; gflops per wall second, cpu_gflops per CPU-second of this
 * process (all its threads together: a per-core rate). */
#include <gsl/gsl_blas.h>
#include <gsl/gsl_errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

void openblas_set_num_threads(int);
char *openblas_get_corename(void);

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* N floats on 2 MiB pages where the kernel allows, as probe's score buffers
 * are, so the peak is measured under the same conditions (alone, the product
 * ran as fast on 4 KiB pages here). */
static float *huge_floats(size_t n) {
    size_t huge = 2u << 20, b = (n * sizeof(float) + huge - 1) / huge * huge;
    float *p = aligned_alloc(huge, b);
    if (p) madvise(p, b, MADV_HUGEPAGE);
    return p;
}

static float *rand_floats(size_t n, unsigned seed) {
    float *p = huge_floats(n);
    if (!p) return NULL;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((seed >> 8) * (2.0 / 16777216.0) - 1.0);
    }
    return p;
}

typedef struct {
    const char *name;
    int M, N, K, tb, per_thread; /* tb: B stored (N, K); per_thread: one sgemm per thread */
} shape_t;

/* Best GFLOP/s of S with T threads (wall clock; *CPU: per CPU-second of the
 * process, which other processes on a shared machine disturb less); -1 on
 * failure. */
static double measure(const shape_t *s, int T, double *cpu) {
    int copies = s->per_thread ? T : 1;
    size_t M = s->M, N = s->N, K = s->K;
    float *B = rand_floats(N * K, 2), *A[64] = {0}, *C[64] = {0};
    int ok = B != NULL;
    for (int t = 0; t < copies && ok; t++) {
        A[t] = rand_floats(M * K, 1 + t);
        C[t] = huge_floats(M * N);
        if (C[t]) memset(C[t], 0, M * N * sizeof(float));
        ok = A[t] && C[t];
    }
    double best = -1;
    if (ok) {
        openblas_set_num_threads(s->per_thread ? 1 : T);
        double t_total = 0, best_cpu = 1e30;
        best = 1e30;
        for (int r = 0; r < 50 && (r < 3 || t_total < 1.0); r++) {
            double t0 = now_s(), c0 = cpu_s();
#pragma omp parallel for num_threads(copies) if (copies > 1)
            for (int t = 0; t < copies; t++) {
                gsl_matrix_float_const_view a = gsl_matrix_float_const_view_array(A[t], M, K);
                gsl_matrix_float_const_view b = s->tb ? gsl_matrix_float_const_view_array(B, N, K)
                                                      : gsl_matrix_float_const_view_array(B, K, N);
                gsl_matrix_float_view c = gsl_matrix_float_view_array(C[t], M, N);
                gsl_blas_sgemm(CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans, 1.0f, &a.matrix,
                               &b.matrix, 0.0f, &c.matrix);
            }
            double dt = now_s() - t0, dc = cpu_s() - c0;
            if (r > 0) { /* the first call is the warm-up */
                t_total += dt;
                if (dt < best) best = dt;
                if (dc < best_cpu) best_cpu = dc;
            }
        }
        best = 2.0 * M * N * K * copies / best * 1e-9;
        *cpu = 2.0 * M * N * K * copies / best_cpu * 1e-9;
    }
    free(B);
    for (int t = 0; t < copies; t++)
        free(A[t]), free(C[t]);
    return best;
}

int main(int argc, char **argv) {
    gsl_set_error_handler_off();
    int threads[8], nt = 0;
    for (int i = 1; i < argc && nt < 8; i++) {
        char *end;
        long v = strtol(argv[i], &end, 10);
        if (*end || v < 1 || v > 64) {
            fprintf(stderr, "values_peak: thread count must be 1..64, got '%s'\n", argv[i]);
            return 2;
        }
        threads[nt++] = (int)v;
    }
    if (nt == 0) threads[nt++] = 1, threads[nt++] = 2;
    static const shape_t shapes[] = {
        {"square2048", 2048, 2048, 2048, 0, 0},
        {"values1024", 1024, 50257, 1024, 1, 0},
        {"values1024_per_thread", 1024, 50257, 1024, 1, 1},
    };
    printf("blas core=%s OPENBLAS_CORETYPE=%s\n", openblas_get_corename(),
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)");
    for (int ti = 0; ti < nt; ti++) {
        double peak = 0, peak_cpu = 0;
        const char *ps = "";
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
            const shape_t *s = &shapes[i];
            if (s->per_thread && threads[ti] == 1) continue;
            double gc = 0, g = measure(s, threads[ti], &gc);
            if (g < 0) {
                fprintf(stderr, "values_peak: %s: out of memory\n", s->name);
                return 1;
            }
            printf("sgemm threads=%d shape=%s M=%d N=%d K=%d gflops=%.1f cpu_gflops=%.1f\n",
                   threads[ti], s->name, s->M, s->N, s->K, g, gc);
            fflush(stdout);
            if (g > peak) peak = g, ps = s->name;
            if (gc > peak_cpu) peak_cpu = gc;
        }
        printf("sgemm_peak threads=%d gflops=%.1f cpu_gflops=%.1f shape=%s\n", threads[ti], peak,
               peak_cpu, ps);
        fflush(stdout);
    }
    return 0;
}
