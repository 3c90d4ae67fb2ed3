/* Hugging Face folders: safetensors reading, the gpt2 / llama / mistral /
 * qwen2 / gpt_neox loaders and their forward passes, checked against the
 * independent numpy reference tests/ref/hf_ref.py on random-weight
 * checkpoints written in the real HF layout by tests/ref/make_hf_model.py.
 *
 * The comparison goes through the library (model_open, fwd_eval with a hook;
 * no tokenizer needed: token ids are fed directly), dumping .npy files that
 * hf_ref.py compares; one test goes through `probe activations --out x.h5`
 * with the real GPT-2 tokenizer.  Bad files must fail with one clear line. */
#include "tutil.h"

#include "core/err.h"
#include "core/fwd.h"
#include "core/model.h"
#include "core/safetensors.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WRITER "tests/ref/make_hf_model.py"
#define REF "tests/ref/hf_ref.py"

/* Writes a checkpoint with make_hf_model.py ARGS into a fresh temp folder
 * (malloc'd path). */
static char *make_model(const char *args) {
    char *dir = tu_tmpdir(), *out = NULL, *err = NULL;
    cr_assert(dir);
    int rc = tu_runf(&out, &err, "%s %s --out %s/m %s", tu_py(), WRITER, dir, args);
    cr_assert_eq(rc, 0, "make_hf_model.py %s failed:\n%s%s", args, out, err);
    free(out);
    free(err);
    char *m = malloc(strlen(dir) + 3);
    sprintf(m, "%s/m", dir);
    free(dir);
    return m;
}

static void rm_rf(const char *dir) {
    /* Our own mkdtemp folders only. */
    cr_assert(strncmp(dir, "/tmp/probe-test-", 16) == 0);
    tu_runf(NULL, NULL, "rm -rf '%s'", dir);
}

/* The temp folder a make_model() path lives in. */
static void rm_model(char *m) {
    char *slash = strrchr(m, '/');
    *slash = '\0';
    rm_rf(m);
    free(m);
}

/* ---- Library dump --------------------------------------------------------------- */

typedef struct {
    int n_layer, T, n_ff;
    float *pre, *up, *key; /* (n_layer, T, n_ff) */
    float *logits;         /* (T, vocab) */
    int got_up;
} dump_t;

static int dump_hook(void *u, int layer, hook_point_t p, float *data, int T, int width, int pos0) {
    dump_t *d = u;
    cr_assert(pos0 >= 0 && pos0 + T <= d->T && width == d->n_ff);
    float *dst = p == HOOK_FFN_PRE ? d->pre : p == HOOK_FFN_UP ? d->up : d->key;
    if (p == HOOK_FFN_UP) d->got_up = 1;
    memcpy(dst + ((size_t)layer * d->T + pos0) * width, data, (size_t)T * width * sizeof *data);
    return 0;
}

/* Runs the model folder on IDS through the library: all at once, or (STEP)
 * one token at a time against the key/value cache. */
static dump_t run_lib_step(const char *dir, const int *ids, int T, int step) {
    model_t *m = model_open(dir, NULL);
    cr_assert(m, "model_open(%s): %s", dir, err_msg());
    dump_t d = {m->cfg.n_layer, T, m->cfg.n_ff, NULL, NULL, NULL, NULL, 0};
    size_t n = (size_t)d.n_layer * T * d.n_ff;
    d.pre = calloc(n, sizeof(float));
    d.up = calloc(n, sizeof(float));
    d.key = calloc(n, sizeof(float));
    d.logits = calloc((size_t)T * m->cfg.vocab, sizeof(float));
    cr_assert(d.pre && d.up && d.key && d.logits);
    fwd_t *f = fwd_new(m, T, T);
    cr_assert(f, "fwd_new: %s", err_msg());
    fwd_set_hook(f, dump_hook, &d,
                 (1u << HOOK_FFN_PRE) | (1u << HOOK_FFN_UP) | (1u << HOOK_FFN_KEY));
    if (!step)
        cr_assert_eq(fwd_eval(f, ids, T, 0, d.logits, FWD_LOGITS_ALL), 0, "fwd_eval: %s",
                     err_msg());
    for (int t = 0; step && t < T; t++)
        cr_assert_eq(
            fwd_eval(f, ids + t, 1, t, d.logits + (size_t)t * m->cfg.vocab, FWD_LOGITS_LAST), 0,
            "fwd_eval: %s", err_msg());
    cr_assert_eq(d.got_up, m->cfg.gated);
    fwd_free(f);
    model_close(m);
    return d;
}

static dump_t run_lib(const char *dir, const int *ids, int T) {
    return run_lib_step(dir, ids, T, 0);
}

static void dump_free(dump_t *d) {
    free(d->pre);
    free(d->up);
    free(d->key);
    free(d->logits);
}

/* A float32 (or int32) .npy file, version 1.0. */
static void write_npy(const char *path, const void *data, const char *descr, int rows, int cols) {
    char hdr[128];
    int n =
        snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d), }",
                 descr, rows, cols);
    int total = 10 + n + 1, pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot write %s", path);
    uint16_t hl = (uint16_t)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fwrite(&hl, 2, 1, f);
    fwrite(hdr, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    fwrite(data, 4, (size_t)rows * cols, f);
    cr_assert_eq(fclose(f), 0);
}

static const int test_ids[] = {3, 41, 7, 96, 0, 55, 12, 33, 80};
#define N_IDS 9

/* Writes the model with ARGS, runs it, compares with hf_ref.py. */
static void check_arch(const char *args) {
    char *m = make_model(args);
    dump_t d = run_lib(m, test_ids, N_IDS);
    char *dir = tu_tmpdir(), p[4300];
    snprintf(p, sizeof p, "%s/ids.npy", dir);
    write_npy(p, test_ids, "<i4", 1, N_IDS);
    model_t *mm = model_open(m, NULL);
    cr_assert(mm);
    int vocab = mm->cfg.vocab, gated = mm->cfg.gated;
    model_close(mm);
    snprintf(p, sizeof p, "%s/logits.npy", dir);
    write_npy(p, d.logits, "<f4", N_IDS, vocab);
    for (int l = 0; l < d.n_layer; l++) {
        size_t o = (size_t)l * N_IDS * d.n_ff;
        snprintf(p, sizeof p, "%s/L%d_gate_pre.npy", dir, l);
        write_npy(p, d.pre + o, "<f4", N_IDS, d.n_ff);
        snprintf(p, sizeof p, "%s/L%d_key_act.npy", dir, l);
        write_npy(p, d.key + o, "<f4", N_IDS, d.n_ff);
        if (gated) {
            snprintf(p, sizeof p, "%s/L%d_up.npy", dir, l);
            write_npy(p, d.up + o, "<f4", N_IDS, d.n_ff);
        }
    }
    char *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err, "%s %s --model %s --npy-dir %s --rtol 1e-4", tu_py(), REF, m, dir);
    cr_assert_eq(rc, 0, "%s: reference mismatch:\n%s%s", args, out, err);
    cr_assert(strstr(out, "hf_ref: OK"), "%s", out);
    cr_log_info("%s: %s", args, out);
    free(out);
    free(err);
    dump_free(&d);
    rm_rf(dir);
    free(dir);
    rm_model(m);
}

#define SMALL "--layers 3 --d 64 --heads 4 --vocab 97 --ctx 32"

Test(hf, gpt2_f32_tied) { check_arch("--arch gpt2 " SMALL); }
Test(hf, gpt2_bf16_untied_prefixed_buffers) {
    check_arch("--arch gpt2 --dtype bf16 --tie 0 --prefix --buffers --act gelu " SMALL);
}
Test(hf, gpt2_f32_misaligned) { check_arch("--arch gpt2 --misalign --act relu " SMALL); }
Test(hf, llama_f32_gqa) { check_arch("--arch llama --kv-heads 2 " SMALL); }
Test(hf, llama_bf16_tied_buffers) {
    check_arch("--arch llama --dtype bf16 --tie 1 --kv-heads 1 --buffers " SMALL);
}
Test(hf, llama_llama3_rope_head_dim) {
    /* head_dim 24 x 4 heads = 96 != d 64; Llama 3 frequency scaling with an
     * original context of 16 so all three bands are used. */
    check_arch("--arch llama --head-dim 24 --kv-heads 2 --rope-llama3 " SMALL);
}
Test(hf, mistral_f16) { check_arch("--arch mistral --dtype f16 --kv-heads 2 " SMALL); }
Test(hf, qwen2_f32_biases) { check_arch("--arch qwen2 --kv-heads 2 " SMALL); }
Test(hf, qwen2_bf16_tied) { check_arch("--arch qwen2 --dtype bf16 --tie 1 " SMALL); }
Test(hf, neox_f32_parallel) { check_arch("--arch gpt_neox " SMALL); }
Test(hf, neox_f16_sequential_half_rotary) {
    check_arch("--arch gpt_neox --dtype f16 --sequential --rotary-pct 0.5 --buffers " SMALL);
}
Test(hf, neox_bf16_full_rotary_tied) {
    check_arch("--arch gpt_neox --dtype bf16 --rotary-pct 1.0 --tie 1 " SMALL);
}

/* ---- Sharded == single file --------------------------------------------------------- */

static void same_dump(const dump_t *a, const dump_t *b, int vocab) {
    size_t n = (size_t)a->n_layer * a->T * a->n_ff * sizeof(float);
    cr_assert(memcmp(a->pre, b->pre, n) == 0 && memcmp(a->up, b->up, n) == 0 &&
                  memcmp(a->key, b->key, n) == 0,
              "sharded activations differ from single-file ones");
    cr_assert(memcmp(a->logits, b->logits, (size_t)a->T * vocab * sizeof(float)) == 0,
              "sharded logits differ");
}

Test(hf, sharded_equals_single) {
    const char *archs[] = {"--arch llama --dtype bf16 --buffers", "--arch gpt2 --prefix --buffers"};
    for (int i = 0; i < 2; i++) {
        char a1[256], a2[256];
        snprintf(a1, sizeof a1, "%s %s", archs[i], SMALL);
        snprintf(a2, sizeof a2, "%s --shards 3 %s", archs[i], SMALL);
        char *m1 = make_model(a1), *m2 = make_model(a2);
        model_t *mm = model_open(m2, NULL);
        cr_assert(mm, "%s", err_msg());
        cr_assert_str_eq(mm->format, "safetensors (sharded, 3 files)");
        int vocab = mm->cfg.vocab;
        model_close(mm);
        dump_t d1 = run_lib(m1, test_ids, N_IDS), d2 = run_lib(m2, test_ids, N_IDS);
        same_dump(&d1, &d2, vocab);
        dump_free(&d1);
        dump_free(&d2);
        rm_model(m1);
        rm_model(m2);
    }
}

/* Token by token through the cache (one-row products, RoPE at offsets) must
 * agree with the whole prompt at once. */
static double max_rel(const float *a, const float *b, size_t n) {
    double worst = 0, scale = 1;
    for (size_t i = 0; i < n; i++)
        scale = fabs(b[i]) > scale ? fabs(b[i]) : scale;
    for (size_t i = 0; i < n; i++)
        worst = fabs(a[i] - b[i]) > worst ? fabs(a[i] - b[i]) : worst;
    return worst / scale;
}

Test(hf, token_by_token_equals_batch) {
    const char *archs[] = {"--arch gpt2", "--arch gpt2 --dtype bf16", "--arch llama --kv-heads 2",
                           "--arch qwen2 --tie 1", "--arch gpt_neox --rotary-pct 0.5"};
    for (int i = 0; i < 5; i++) {
        char args[256];
        snprintf(args, sizeof args, "%s %s", archs[i], SMALL);
        char *m = make_model(args);
        model_t *mm = model_open(m, NULL);
        cr_assert(mm);
        int vocab = mm->cfg.vocab;
        model_close(mm);
        dump_t a = run_lib_step(m, test_ids, N_IDS, 0), b = run_lib_step(m, test_ids, N_IDS, 1);
        size_t n = (size_t)a.n_layer * N_IDS * a.n_ff;
        double e1 = max_rel(b.key, a.key, n), e2 = max_rel(b.pre, a.pre, n),
               e3 = max_rel(b.logits, a.logits, (size_t)N_IDS * vocab);
        cr_assert(e1 < 1e-5 && e2 < 1e-5 && e3 < 1e-5,
                  "%s: token-by-token differs from batch: key %.3g pre %.3g logits %.3g", args, e1,
                  e2, e3);
        dump_free(&a);
        dump_free(&b);
        rm_model(m);
    }
}

/* ---- The safetensors reader itself -------------------------------------------------- */

Test(hf, reader_buffers_scalars_and_skips) {
    char *m = make_model("--arch gpt_neox --buffers --dtype bf16 " SMALL);
    st_t *s = st_open(m);
    cr_assert(s, "%s", err_msg());
    /* BOOL masks are bounds-checked but unusable, with the reason. */
    const char *why = st_skip_reason(s, "gpt_neox.layers.0.attention.bias");
    cr_assert(why && strstr(why, "BOOL"), "reason: %s", why ? why : "(none)");
    cr_assert_null(st_find(s, "gpt_neox.layers.0.attention.bias"));
    /* A 0-d tensor is one element viewed as [1]. */
    const tensor_t *t = st_find(s, "gpt_neox.layers.1.attention.masked_bias");
    cr_assert(t && t->dtype == DT_F32 && t->ndim == 1 && t->shape[0] == 1 && t->nbytes == 4);
    float v;
    memcpy(&v, t->data, 4);
    cr_assert_float_eq(v, -1e9f, 1.0f);
    t = st_find(s, "gpt_neox.layers.2.attention.query_key_value.weight");
    cr_assert(t && t->dtype == DT_BF16 && t->ndim == 2 && t->shape[0] == 192 && t->shape[1] == 64);
    cr_assert_null(st_skip_reason(s, "gpt_neox.embed_in.weight"));
    cr_assert_null(st_find(s, "no.such.tensor"));
    st_close(s);
    st_close(NULL);
    rm_model(m);
}

/* ---- Bad input: one line on stderr naming the file, non-zero exit ------------------- */

static void check_bad(const char *args, const char *want1, const char *want2) {
    char *m = make_model(args), *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err, "%s info --model %s", tu_bin(), m);
    cr_assert_neq(rc, 0, "%s: probe info succeeded:\n%s", args, out);
    cr_assert_eq(tu_lines(err), 1, "%s: stderr is not one line:\n%s", args, err);
    cr_assert(strstr(err, m), "%s: message does not name the model: %s", args, err);
    cr_assert(strstr(err, want1), "%s: expected '%s' in: %s", args, want1, err);
    if (want2) cr_assert(strstr(err, want2), "%s: expected '%s' in: %s", args, want2, err);
    cr_log_info("%s -> %s", args, err);
    free(out);
    free(err);
    rm_model(m);
}

#define TINY "--layers 2 --d 32 --heads 4 --vocab 50 --ctx 16"

Test(hf, bad_offsets_outside) {
    check_bad("--arch llama --corrupt offsets-outside " TINY, "model.safetensors",
              "outside the data section");
}
Test(hf, bad_overlap) {
    check_bad("--arch gpt2 --corrupt overlap " TINY, "model.safetensors", "overlap");
}
Test(hf, bad_size_mismatch) {
    check_bad("--arch qwen2 --corrupt size-mismatch " TINY, "model.safetensors", "needs");
}
Test(hf, bad_missing_tensor) {
    check_bad("--arch gpt_neox --corrupt missing-tensor " TINY, "model.safetensors", "missing");
}
Test(hf, bad_dtype) {
    check_bad("--arch gpt2 --corrupt bad-dtype " TINY, "h.0.mlp.c_fc.weight", "F64");
}
Test(hf, bad_unsupported_arch) {
    check_bad("--arch llama --corrupt unsupported-arch " TINY, "config.json",
              "supported: gpt2, llama, mistral, qwen2, gpt_neox");
}
Test(hf, bad_header_too_long) {
    check_bad("--arch mistral --corrupt header-too-long " TINY, "model.safetensors",
              "past the end of the file");
}
Test(hf, bad_json) {
    check_bad("--arch gpt2 --corrupt bad-json " TINY, "model.safetensors", "JSON");
}
Test(hf, bad_index_lists_absent_tensor) {
    check_bad("--arch llama --corrupt index-missing --shards 2 " TINY, "model-0000",
              "listed in the index");
}
Test(hf, bad_shape) {
    /* The file has d 32; the config is edited to claim 48. */
    char *m = make_model("--arch llama " TINY), *out = NULL, *err = NULL;
    int rc = tu_runf(NULL, NULL,
                     "sed -i 's/\"hidden_size\": 32/\"hidden_size\": 48/' %s/config.json", m);
    cr_assert_eq(rc, 0);
    rc = tu_runf(&out, &err, "%s info --model %s", tu_bin(), m);
    cr_assert_neq(rc, 0);
    cr_assert_eq(tu_lines(err), 1, "%s", err);
    cr_assert(strstr(err, "model.embed_tokens.weight") && strstr(err, "[50, 32]") &&
                  strstr(err, "expected [50, 48]"),
              "%s", err);
    free(out);
    free(err);
    rm_model(m);
}

/* ---- Through the CLI with the real GPT-2 tokenizer ----------------------------------- */

static void add_gpt2_tokenizer(const char *m) {
    int rc = tu_runf(NULL, NULL, "cp %s %s %s %s/", tu_sharedp("tokenizers/gpt2/tokenizer.json"),
                     tu_sharedp("tokenizers/gpt2/vocab.json"),
                     tu_sharedp("tokenizers/gpt2/merges.txt"), m);
    cr_assert_eq(rc, 0, "cannot copy the GPT-2 tokenizer files from %s", tu_shared());
}

Test(hf, cli_h5_gpt2_with_tokenizer) {
    char *m = make_model("--arch gpt2 --layers 2 --d 32 --heads 2 --vocab 50257 --ctx 64");
    add_gpt2_tokenizer(m);
    char *out = NULL, *err = NULL, h5[4200];
    snprintf(h5, sizeof h5, "%s/../acts.h5", m);
    int rc = tu_runf(&out, &err,
                     "%s activations --model %s --layer all --prompt 'The Eiffel Tower is in' "
                     "--prompt 'Hello, world!' --out %s --logits",
                     tu_bin(), m, h5);
    cr_assert_eq(rc, 0, "probe activations failed: %s", err);
    free(out);
    free(err);
    rc = tu_runf(&out, &err, "%s %s --model %s --h5 %s --rtol 1e-4", tu_py(), REF, m, h5);
    cr_assert_eq(rc, 0, "reference mismatch:\n%s%s", out, err);
    cr_assert(strstr(out, "hf_ref: OK"), "%s", out);
    free(out);
    free(err);
    rm_model(m);
}

/* GPT-2-medium shapes (24 layers, d 1024, FFN 4096, vocab 50257; BF16, ~0.7 GB)
 * with the real tokenizer: it must load, tokenize and run. */
Test(hf, gpt2_medium_shaped_runs, .timeout = 600) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char *m = make_model("--medium --dtype bf16");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wsec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    add_gpt2_tokenizer(m);
    char *out = NULL, *err = NULL;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = tu_runf(&out, &err, "%s info --model %s --no-tensors", tu_bin(), m);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double isec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "layers        24\n") && strstr(out, "d_model       1024\n") &&
                  strstr(out, "ffn neurons   4096 per layer") &&
                  strstr(out, "vocab         50257\n"),
              "%s", out);
    free(out);
    free(err);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = tu_runf(&out, &err,
                 "%s activations --model %s --layer 12 --top 3 --prompt 'The Eiffel Tower is in'",
                 tu_bin(), m);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double asec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "(7 tokens)"), "%s", out);
    const char *toks[] = {"\"The\"",    "\" E\"",  "\"iff\"", "\"el\"",
                          "\" Tower\"", "\" is\"", "\" in\""};
    const char *p = out;
    for (int i = 0; i < 7; i++) {
        const char *q = strstr(p, toks[i]);
        cr_assert(q, "token %d %s not found (in order) in:\n%s", i, toks[i], out);
        p = q + strlen(toks[i]);
    }
    cr_assert(strstr(out, "layer 12"), "%s", out);
    cr_log_info("gpt2-medium-shaped bf16: write %.1fs, probe info %.2fs, activations %.2fs", wsec,
                isec, asec);
    free(out);
    free(err);
    rm_model(m);
}
