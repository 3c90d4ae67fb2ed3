/* mkmodel: writes a random-weight Llama checkpoint for the benchmarks.
 *
 * Format: llama2.c's legacy checkpoint (run.c, Karpathy): a header of 7 int32
 * (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a
 * positive vocab means the classifier shares the token embedding), then
 * float32 arrays in this order:
 *   token_embedding (vocab, dim), rms_att (L, dim), wq (L, dim, dim),
 *   wk (L, kv_dim, dim), wv (L, kv_dim, dim), wo (L, dim, dim), rms_ffn (L, dim),
 *   w1 (L, hidden, dim), w2 (L, dim, hidden), w3 (L, hidden, dim),
 *   rms_final (dim), freq_cis_real (seq, head_size/2), freq_cis_imag (seq, head_size/2).
 * Matrix weights are N(0, 0.02^2) from a fixed seed (the same file every
 * time); norm weights are 1; the RoPE tables are the usual cos/sin (probe
 * recomputes them, but the file carries them as run.c expects).
 *
 * Usage: mkmodel OUT [dim hidden layers heads kv_heads vocab seq_len]
 * Defaults: 768 2048 12 12 12 32000 1024.  Writes OUT.tmp then renames. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* splitmix64: small, fast, and the same sequence on every machine. */
static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1]. */
static double rng_unit(void) { return ((rng_next() >> 11) + 1) * (1.0 / 9007199254740992.0); }

/* Box-Muller, both outputs used. */
static float rng_normal(void) {
    static int have;
    static double spare;
    if (have) {
        have = 0;
        return (float)spare;
    }
    double r = sqrt(-2.0 * log(rng_unit())), a = 2.0 * M_PI * rng_unit();
    spare = r * sin(a);
    have = 1;
    return (float)(r * cos(a));
}

static float *buf;
static size_t buf_n;

/* Writes N floats: normal*SCALE, or CONST when SCALE is 0. */
static int write_floats(FILE *f, int64_t n, float scale, float cval) {
    while (n > 0) {
        size_t k = (size_t)n < buf_n ? (size_t)n : buf_n;
        for (size_t i = 0; i < k; i++)
            buf[i] = scale != 0.0f ? rng_normal() * scale : cval;
        if (fwrite(buf, sizeof(float), k, f) != k) return -1;
        n -= (int64_t)k;
    }
    return 0;
}

static int parse_pos(const char *s, const char *what, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v <= 0 || v > (1L << 30)) {
        fprintf(stderr, "mkmodel: %s must be a positive integer, got '%s'\n", what, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 9) {
        fprintf(stderr, "usage: mkmodel OUT [dim hidden layers heads kv_heads vocab seq_len]\n"
                        "       defaults 768 2048 12 12 12 32000 1024\n");
        return 2;
    }
    int h[7] = {768, 2048, 12, 12, 12, 32000, 1024};
    static const char *names[7] = {"dim",      "hidden", "layers", "heads",
                                   "kv_heads", "vocab",  "seq_len"};
    if (argc == 9)
        for (int i = 0; i < 7; i++)
            if (parse_pos(argv[2 + i], names[i], &h[i])) return 2;
    int dim = h[0], hid = h[1], L = h[2], nh = h[3], nkv = h[4], vocab = h[5], seq = h[6];
    if (dim % nh || nh % nkv || (dim / nh) % 2) {
        fprintf(stderr, "mkmodel: dim %d, %d heads, %d kv heads do not fit together\n", dim, nh,
                nkv);
        return 2;
    }
    int64_t hs = dim / nh, kvd = (int64_t)nkv * hs;
    const float sd = 0.02f;

    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]) >= (int)sizeof tmp) {
        fprintf(stderr, "mkmodel: path too long\n");
        return 2;
    }
    buf_n = (size_t)1 << 20;
    buf = malloc(buf_n * sizeof *buf);
    if (!buf) {
        fprintf(stderr, "mkmodel: out of memory\n");
        return 1;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "mkmodel: %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    int32_t hdr[7];
    for (int i = 0; i < 7; i++)
        hdr[i] = h[i];
    int bad = fwrite(hdr, sizeof hdr, 1, f) != 1;
    bad = bad || write_floats(f, (int64_t)vocab * dim, sd, 0);   /* token_embedding */
    bad = bad || write_floats(f, (int64_t)L * dim, 0, 1.0f);     /* rms_att */
    bad = bad || write_floats(f, (int64_t)L * dim * dim, sd, 0); /* wq */
    bad = bad || write_floats(f, (int64_t)L * kvd * dim, sd, 0); /* wk */
    bad = bad || write_floats(f, (int64_t)L * kvd * dim, sd, 0); /* wv */
    bad = bad || write_floats(f, (int64_t)L * dim * dim, sd, 0); /* wo */
    bad = bad || write_floats(f, (int64_t)L * dim, 0, 1.0f);     /* rms_ffn */
    bad = bad || write_floats(f, (int64_t)L * hid * dim, sd, 0); /* w1 (gate) */
    bad = bad || write_floats(f, (int64_t)L * dim * hid, sd, 0); /* w2 (down) */
    bad = bad || write_floats(f, (int64_t)L * hid * dim, sd, 0); /* w3 (up) */
    bad = bad || write_floats(f, dim, 0, 1.0f);                  /* rms_final */
    /* freq_cis_real then freq_cis_imag, (seq, hs/2) each, as llama2.c's export. */
    for (int part = 0; part < 2 && !bad; part++)
        for (int p = 0; p < seq && !bad; p++) {
            for (int i = 0; i < hs / 2; i++) {
                double fr = 1.0 / pow(10000.0, (double)(2 * i) / (double)hs);
                buf[i] = (float)(part ? sin(p * fr) : cos(p * fr));
            }
            bad = fwrite(buf, sizeof(float), (size_t)hs / 2, f) != (size_t)hs / 2;
        }
    if (fclose(f) != 0) bad = 1;
    free(buf);
    if (bad) {
        fprintf(stderr, "mkmodel: writing %s failed: %s\n", tmp, strerror(errno));
        remove(tmp);
        return 1;
    }
    if (rename(tmp, argv[1]) != 0) {
        fprintf(stderr, "mkmodel: rename to %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    return 0;
}
