/* Core engine tests: llama2.c and GGUF loading, tokenizer, forward pass
 * against the independent numpy reference (tests/ref/llama_ref.py), greedy
 * text against llama2.c run.c's output in ../shared/reference, output files
 * read back by h5py/pandas/h5dump, and bad input. */
#include "tutil.h"

#include "analysis/topk.h"
#include "core/err.h"
#include "core/fwd.h"
#include "core/model.h"
#include "core/tensor.h"
#include "core/tok.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define M260 "models/stories260K/"

static char *bin_args(const char *model) {
    static _Thread_local char b[8192];
    if (strstr(model, ".bin"))
        snprintf(b, sizeof b, "--model %s --tokenizer %s", tu_sharedp(model),
                 tu_sharedp(M260 "tok512.bin"));
    else
        snprintf(b, sizeof b, "--model %s", tu_sharedp(model));
    return b;
}

/* ---- greedy text against run.c ------------------------------------------------ */

static void check_greedy(const char *model, int exact) {
    char *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err, "%s generate %s --greedy -n 200", tu_bin(), bin_args(model));
    cr_assert_eq(rc, 0, "%s: exit %d: %s", model, rc, err);
    char *ref = tu_slurp(tu_sharedp("reference/stories260K/greedy.txt"), NULL);
    cr_assert(ref, "reference greedy.txt missing");
    if (exact) {
        cr_assert_str_eq(out, ref, "%s: greedy text differs", model);
    } else {
        /* Quantised: the first sentence at least. */
        const char *dot = strchr(ref, '.');
        size_t n = (size_t)(dot - ref) + 1;
        cr_assert(strncmp(out, ref, n) == 0, "%s: first sentence differs: %.*s", model, (int)n,
                  out);
    }
    free(out);
    free(err);
    free(ref);
}

Test(core, greedy_llama2c_bin) { check_greedy(M260 "stories260K.bin", 1); }
Test(core, greedy_llama2c_v1) { check_greedy(M260 "stories260K.v1.bin", 1); }
Test(core, greedy_gguf_f32) { check_greedy(M260 "stories260K.gguf", 1); }
Test(core, greedy_gguf_f16) { check_greedy(M260 "stories260K-f16.gguf", 1); }
Test(core, greedy_gguf_q8_0) { check_greedy(M260 "stories260K-q8_0.gguf", 0); }
Test(core, greedy_gguf_q4_0) { check_greedy(M260 "stories260K-q4_0.gguf", 0); }

Test(core, greedy_prompt_runc_steps) {
    char *out = NULL;
    int rc = tu_runf(&out, NULL, "%s generate %s --prompt 'Lily wanted to' --steps 64", tu_bin(),
                     bin_args(M260 "stories260K.bin"));
    cr_assert_eq(rc, 0);
    char *ref = tu_slurp(tu_sharedp("reference/stories260K/greedy_lily.txt"), NULL);
    cr_assert(ref);
    cr_assert_str_eq(out, ref);
    free(out);
    free(ref);
}

/* ---- activations against the numpy reference ------------------------------------ */

static void check_acts(const char *model) {
    char *dir = tu_tmpdir(), *out = NULL, *err = NULL;
    char pf[4200], h5[4200];
    snprintf(pf, sizeof pf, "%s/prompts.txt", dir);
    snprintf(h5, sizeof h5, "%s/acts.h5", dir);
    FILE *f = fopen(pf, "w");
    fputs("Once upon a time, there was a little girl named Lily\nLily wanted to\n"
          "The cat sat on the mat. \"Hello,\" said Tom! 123 \xc3\xa9t\xc3\xa9\n",
          f);
    fclose(f);
    int rc = tu_runf(NULL, &err, "%s activations %s --layer all --prompt-file %s --out %s --logits",
                     tu_bin(), bin_args(model), pf, h5);
    cr_assert_eq(rc, 0, "%s: %s", model, err);
    free(err);
    rc = tu_runf(&out, &err, "%s tests/ref/compare_acts.py --model %s --h5 %s --rtol 1e-4", tu_py(),
                 tu_sharedp(model), h5);
    cr_assert_eq(rc, 0, "%s: reference mismatch:\n%s\n%s", model, out, err);
    cr_assert(strstr(out, "compare_acts: OK"), "%s", out);
    cr_log_info("%s: %s", model, strrchr(out, '\n') ? out : out);
    free(out);
    free(err);
    free(dir);
}

Test(core, acts_vs_numpy_bin) { check_acts(M260 "stories260K.bin"); }
Test(core, acts_vs_numpy_v1) { check_acts(M260 "stories260K.v1.bin"); }
Test(core, acts_vs_numpy_gguf) { check_acts(M260 "stories260K.gguf"); }
Test(core, acts_vs_numpy_gguf_f16) { check_acts(M260 "stories260K-f16.gguf"); }
Test(core, acts_vs_numpy_gguf_q8_0) { check_acts(M260 "stories260K-q8_0.gguf"); }
Test(core, acts_vs_numpy_gguf_q4_0) { check_acts(M260 "stories260K-q4_0.gguf"); }

/* The CSV must be what pandas reads without options, and its top-K rows must
 * be the brute-force top-K of the full activations in the HDF5 file. */
Test(core, csv_and_h5_readers) {
    char *dir = tu_tmpdir(), *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err,
                     "%s activations %s --layer 1,3 --top 7 --prompt 'Lily, \"the\" cat,\nsat' "
                     "--prompt 'Once upon a time' --out %s/a.csv && "
                     "%s activations %s --layer 1,3 --prompt 'Lily, \"the\" cat,\nsat' "
                     "--prompt 'Once upon a time' --out %s/a.h5 && h5dump -H %s/a.h5 >/dev/null && "
                     "%s tests/ref/check_csv_topk.py %s/a.csv %s/a.h5 7",
                     tu_bin(), bin_args(M260 "stories260K.bin"), dir, tu_bin(),
                     bin_args(M260 "stories260K.bin"), dir, dir, tu_py(), dir, dir);
    cr_assert_eq(rc, 0, "%s\n%s", out, err);
    cr_assert(strstr(out, "check_csv_topk: OK"), "%s", out);
    free(out);
    free(err);
    free(dir);
}

/* ---- probe info ------------------------------------------------------------------ */

Test(core, info_counts_parameters) {
    char *out = NULL;
    int rc = tu_runf(&out, NULL, "%s info %s", tu_bin(), bin_args(M260 "stories260K.bin"));
    cr_assert_eq(rc, 0);
    /* The legacy file is a 28-byte header, the parameters as f32, and the two
     * RoPE tables (512 x 4 floats each): the file size gives the true count. */
    size_t len;
    char *raw = tu_slurp(tu_sharedp(M260 "stories260K.bin"), &len);
    long expect = (long)((len - 28 - 2 * 512 * 4 * 4) / 4);
    free(raw);
    char want[64];
    snprintf(want, sizeof want, "parameters    %ld\n", expect);
    cr_assert(strstr(out, want), "expected '%s' in:\n%s", want, out);
    /* FFN: 5 layers x 3 x 64 x 172. */
    cr_assert(strstr(out, "165120"), "%s", out);
    cr_assert(strstr(out, "ffn share"), "%s", out);
    cr_assert(strstr(out, "blk.4.ffn_down.weight"), "%s", out);
    free(out);
    rc = tu_runf(&out, NULL, "%s info --model %s", tu_bin(),
                 tu_sharedp(M260 "stories260K-q4_0.gguf"));
    cr_assert_eq(rc, 0);
    cr_assert(strstr(out, "Q4_0"), "%s", out);
    cr_assert(strstr(out, "GGUF v3"), "%s", out);
    free(out);
}

/* ---- tokenizer --------------------------------------------------------------------- */

Test(core, tokenizer_llama2c_matches_runc_prompt) {
    tok_t *t = tok_load_llama2c(tu_sharedp(M260 "tok512.bin"), 512);
    cr_assert(t, "%s", err_msg());
    int *ids, n;
    cr_assert_eq(tok_encode(t, "Lily wanted to", 14, TOK_ADD_BOS, &ids, &n), 0);
    /* run.c encodes this prompt to BOS + 4 tokens (reference README). */
    cr_assert_eq(n, 5);
    cr_assert_eq(ids[0], 1);
    char buf[256] = "";
    for (int i = 1; i < n; i++) {
        int len;
        const char *p = tok_decode_next(t, ids[i - 1], ids[i], &len);
        strncat(buf, p, (size_t)len);
    }
    cr_assert_str_eq(buf, "Lily wanted to");
    free(ids);
    /* Byte fallback: a character outside the 512-token vocabulary. */
    const char *s = "\xe2\x98\x83"; /* U+2603 snowman */
    cr_assert_eq(tok_encode(t, s, 3, 0, &ids, &n), 0);
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        int len;
        const char *p = tok_piece(t, ids[i], &len);
        strncat(buf, p, (size_t)len);
    }
    cr_assert_str_eq(buf, " \xe2\x98\x83");
    free(ids);
    /* Invalid UTF-8 is refused. */
    cr_assert_eq(tok_encode(t, "a\xff", 2, 0, &ids, &n), -1);
    tok_free(t);
}

Test(core, tokenizer_gguf_equals_bin) {
    /* The GGUF's embedded vocabulary must tokenize like tok512.bin. */
    model_t *g = model_open(tu_sharedp(M260 "stories260K.gguf"), NULL);
    cr_assert(g && g->tok, "%s", err_msg());
    tok_t *t = tok_load_llama2c(tu_sharedp(M260 "tok512.bin"), 512);
    const char *texts[] = {"Once upon a time, there was a little girl named Lily.",
                           "  two  spaces\tand\ttabs\n", "caf\xc3\xa9 \xe2\x98\x83!", "x"};
    for (size_t k = 0; k < sizeof texts / sizeof *texts; k++) {
        int *a, na, *b, nb;
        cr_assert_eq(tok_encode(g->tok, texts[k], strlen(texts[k]), TOK_ADD_BOS, &a, &na), 0);
        cr_assert_eq(tok_encode(t, texts[k], strlen(texts[k]), TOK_ADD_BOS, &b, &nb), 0);
        cr_assert_eq(na, nb, "text %zu", k);
        for (int i = 0; i < na; i++)
            cr_assert_eq(a[i], b[i], "text %zu token %d", k, i);
        free(a);
        free(b);
    }
    tok_free(t);
    model_close(g);
}

/* ---- kernels: fast against naive ---------------------------------------------------- */

static void fill_tensor(tensor_t *t, dtype_t dt, int rows, int cols, void *buf, float *ref,
                        unsigned seed) {
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->ndim = 2;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->nbytes = tensor_bytes_for(dt, 2, t->shape);
    t->data = buf;
    srand(seed);
    uint8_t *p = buf;
    for (long i = 0; i < (long)rows * cols; i++)
        ref[i] = (float)rand() / RAND_MAX - 0.5f;
    if (dt == DT_F32)
        memcpy(p, ref, (size_t)rows * cols * 4);
    else if (dt == DT_F16 || dt == DT_BF16)
        for (long i = 0; i < (long)rows * cols; i++) {
            uint16_t h = dt == DT_F16 ? f32_to_f16(ref[i]) : f32_to_bf16(ref[i]);
            memcpy(p + 2 * i, &h, 2);
        }
    else {
        /* Quantised blocks: sane f16 scales, random quants. */
        int bb = dtype_block_bytes(dt);
        for (uint64_t i = 0; i < t->nbytes; i++)
            p[i] = (uint8_t)rand();
        for (uint64_t b = 0; b < t->nbytes; b += (uint64_t)bb) {
            uint16_t h = f32_to_f16(0.01f + 0.001f * (float)(b % 7));
            memcpy(p + b, &h, 2);
        }
    }
}

Test(core, lin_apply_matches_naive) {
    int T = 7, in = 96, out = 40;
    dtype_t types[] = {DT_F32, DT_F16, DT_BF16, DT_Q8_0, DT_Q4_0};
    for (size_t k = 0; k < sizeof types / sizeof *types; k++)
        for (int tr = 0; tr < 2; tr++) {
            int rows = tr ? in : out, cols = tr ? out : in;
            if ((types[k] == DT_Q8_0 || types[k] == DT_Q4_0) && cols % 32) continue;
            tensor_t w;
            void *buf = malloc((size_t)rows * cols * 4 + 64);
            float *ref = malloc((size_t)rows * cols * 4), *x = malloc((size_t)T * in * 4);
            fill_tensor(&w, types[k], rows, cols, buf, ref, 7 + (unsigned)k);
            for (int i = 0; i < T * in; i++)
                x[i] = (float)(i % 13) / 13.0f - 0.4f;
            lin_t l = {&w, NULL, tr};
            float *y1 = malloc((size_t)T * out * 4), *y2 = malloc((size_t)T * out * 4);
            /* A tiny scratch forces several dequantisation blocks. */
            size_t ns = (size_t)(tr ? out : in) * 3;
            float *sc = malloc(ns * 4);
            lin_apply(&l, x, T, in, y1, out, sc, ns);
            lin_apply_naive(&l, x, T, in, y2, out);
            double worst = 0;
            for (int i = 0; i < T * out; i++)
                worst = fmax(worst, fabs(y1[i] - y2[i]));
            cr_assert(worst < 1e-4, "dtype %s transposed %d: worst %g", dtype_name(types[k]), tr,
                      worst);
            free(buf), free(ref), free(x), free(y1), free(y2), free(sc);
        }
}

Test(core, f16_bf16_roundtrip) {
    float vals[] = {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.1f};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        float h = f16_to_f32(f32_to_f16(vals[i]));
        cr_assert(fabsf(h - vals[i]) <= fabsf(vals[i]) * 1e-3f, "f16 %g -> %g", vals[i], h);
        float b = bf16_to_f32(f32_to_bf16(vals[i]));
        cr_assert(fabsf(b - vals[i]) <= fabsf(vals[i]) * 1e-2f, "bf16 %g -> %g", vals[i], b);
    }
}

/* Exact brute force: a stable sort by (-value, index). */
static const float *g_v;
static int cmp_desc(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (g_v[i] != g_v[j]) return g_v[i] > g_v[j] ? -1 : 1;
    return i - j;
}

Test(core, topk_matches_brute_force) {
    srand(3);
    for (int trial = 0; trial < 200; trial++) {
        int n = 1 + rand() % 300, k = 1 + rand() % n;
        float *v = malloc((size_t)n * 4), *nv = malloc((size_t)n * 4);
        int *idx = malloc((size_t)n * 4), *all = malloc((size_t)n * 4);
        for (int i = 0; i < n; i++)
            v[i] = (float)(rand() % 20) - 10.0f; /* many ties */
        for (int mode = 0; mode < 3; mode++) {
            for (int i = 0; i < n; i++)
                nv[i] = mode == 0 ? v[i] : mode == 1 ? fabsf(v[i]) : -v[i];
            topk_select(v, n, k, mode == 1, mode == 2, idx);
            for (int i = 0; i < n; i++)
                all[i] = i;
            g_v = nv;
            qsort(all, (size_t)n, sizeof *all, cmp_desc);
            for (int i = 0; i < k; i++)
                cr_assert_eq(idx[i], all[i], "trial %d mode %d rank %d", trial, mode, i);
        }
        free(v), free(nv), free(idx), free(all);
    }
}

/* ---- forward-pass hooks can intervene ---------------------------------------------------- */

static int zero_hook(void *u, int layer, hook_point_t p, float *d, int T, int w, int pos0) {
    (void)pos0;
    if (layer == *(int *)u && p == HOOK_FFN_KEY) memset(d, 0, (size_t)T * w * 4);
    return 0;
}

Test(core, hook_zeroing_layer_changes_logits) {
    model_t *m = model_open(tu_sharedp(M260 "stories260K.bin"), NULL);
    cr_assert(m, "%s", err_msg());
    fwd_t *f = fwd_new(m, 8, 8);
    int toks[4] = {1, 403, 407, 300};
    float a[512], b[512];
    cr_assert_eq(fwd_eval(f, toks, 4, 0, a, FWD_LOGITS_LAST), 0);
    int layer = 2;
    fwd_set_hook(f, zero_hook, &layer, 1u << HOOK_FFN_KEY);
    cr_assert_eq(fwd_eval(f, toks, 4, 0, b, FWD_LOGITS_LAST), 0);
    double diff = 0;
    for (int i = 0; i < 512; i++)
        diff = fmax(diff, fabs(a[i] - b[i]));
    cr_assert(diff > 1e-3, "zeroing a layer's keys had no effect");
    /* Incremental evaluation (KV cache) equals the batched pass. */
    fwd_set_hook(f, NULL, NULL, 0);
    float c[512];
    cr_assert_eq(fwd_eval(f, toks, 3, 0, c, FWD_LOGITS_LAST), 0);
    cr_assert_eq(fwd_eval(f, toks + 3, 1, 3, c, FWD_LOGITS_LAST), 0);
    for (int i = 0; i < 512; i++)
        cr_assert(fabsf(a[i] - c[i]) < 1e-4f, "logit %d", i);
    fwd_free(f);
    model_close(m);
}

/* ---- bad input ------------------------------------------------------------------------------ */

/* Runs CMD expecting failure: non-zero exit, exactly one line on stderr
 * containing NEEDLE, nothing at OUTPATH (if given) and no temporaries. */
static void expect_fail(const char *cmd, const char *needle, const char *outpath, const char *dir) {
    char *out = NULL, *err = NULL;
    int rc = tu_run(cmd, &out, &err);
    cr_assert(rc != 0, "expected failure: %s", cmd);
    cr_assert(rc != -1, "crashed: %s", cmd);
    cr_assert(rc < 128, "killed by a signal: %s", cmd);
    cr_assert_eq(tu_lines(err), 1, "want one line on stderr, got:\n%s\n(%s)", err, cmd);
    cr_assert(strstr(err, needle), "stderr lacks '%s': %s", needle, err);
    if (outpath) cr_assert(!tu_exists(outpath), "%s left behind by: %s", outpath, cmd);
    if (dir) cr_assert(tu_no_temp_files(dir), "temporary left in %s", dir);
    free(out);
    free(err);
}

Test(core, bad_inputs) {
    char *dir = tu_tmpdir(), cmd[16384], out[4200];
    snprintf(out, sizeof out, "%s/out.h5", dir);
    int rc = tu_runf(NULL, NULL, "%s tests/ref/make_bad_models.py %s %s", tu_py(),
                     tu_sharedp("models/stories260K"), dir);
    cr_assert_eq(rc, 0);
    const char *P = "--prompt 'Once upon a time'";
    const char *tokarg = tu_sharedp(M260 "tok512.bin");
    struct {
        const char *model, *needle;
    } bad_models[] = {
        {"/nonexistent/model.bin", "/nonexistent/model.bin"},
        {"truncated.bin", "truncated"},
        {"short_header.bin", "short_header.bin"},
        {"badtype.gguf", "ggml type 99"},
        {"truncated.gguf", "truncated"},
        {"tensor_past_end.gguf", "outside the file"},
        {"huge_counts.gguf", "more than the file can hold"},
    };
    for (size_t i = 0; i < sizeof bad_models / sizeof *bad_models; i++) {
        char path[4200];
        if (bad_models[i].model[0] == '/')
            snprintf(path, sizeof path, "%s", bad_models[i].model);
        else
            snprintf(path, sizeof path, "%s/%s", dir, bad_models[i].model);
        snprintf(cmd, sizeof cmd, "%s activations --model %s --tokenizer %s %s --out %s", tu_bin(),
                 path, tokarg, P, out);
        expect_fail(cmd, bad_models[i].needle, out, dir);
    }
    const char *good = bin_args(M260 "stories260K.bin");
    snprintf(cmd, sizeof cmd, "%s activations %s --layer 5 %s --out %s", tu_bin(), good, P, out);
    expect_fail(cmd, "0..4", out, dir);
    snprintf(cmd, sizeof cmd, "%s activations %s --layer 1,x %s", tu_bin(), good, P);
    expect_fail(cmd, "layer", NULL, NULL);
    snprintf(cmd, sizeof cmd, "%s activations %s --prompt '' --out %s", tu_bin(), good, out);
    expect_fail(cmd, "empty", out, dir);
    snprintf(cmd, sizeof cmd, "%s activations %s --prompt \"$(printf 'ab\\377\\376')\" --out %s",
             tu_bin(), good, out);
    expect_fail(cmd, "UTF-8", out, dir);
    snprintf(cmd, sizeof cmd, "%s activations %s %s --out /nonexistent-dir/x.h5", tu_bin(), good,
             P);
    expect_fail(cmd, "/nonexistent-dir/x.h5", NULL, NULL);
    snprintf(cmd, sizeof cmd, "%s activations %s %s --out %s/x.txt", tu_bin(), good, P, dir);
    expect_fail(cmd, ".csv", NULL, dir);
    snprintf(cmd, sizeof cmd, "%s activations %s %s --top 0", tu_bin(), good, P);
    expect_fail(cmd, "--top", NULL, NULL);
    snprintf(cmd, sizeof cmd, "%s generate --model %s --tokenizer %s/truncated.bin -n 3", tu_bin(),
             tu_sharedp(M260 "stories260K.bin"), dir);
    expect_fail(cmd, "truncated.bin", NULL, NULL);
    free(dir);
}
