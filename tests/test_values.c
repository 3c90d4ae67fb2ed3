/* `probe values` tests: every neuron of stories260K against the independent
 * numpy brute force (tests/ref/values_ref.py: E @ W2 columns in float64, full
 * stable argsort) in all three norm modes, top and bottom, through CSV and
 * HDF5, for F32, F16, Q8_0 and Q4_0 files; exact ties on a purpose-built
 * model; reverse search against the forward tables; errors; and, in process,
 * the fast kernel against the naive one on synthetic GPT-2-layout and
 * quantised models the shared files do not cover. */
#include "tutil.h"

#include "analysis/values.h"
#include "core/err.h"
#include "core/model.h"
#include "core/tensor.h"

#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define M260 "models/stories260K/"
#define REF "tests/ref/values_ref.py"

static char *model_args(const char *model) {
    static _Thread_local char b[8192];
    if (strstr(model, ".bin"))
        snprintf(b, sizeof b, "--model %s --tokenizer %s", tu_sharedp(model),
                 tu_sharedp(M260 "tok512.bin"));
    else
        snprintf(b, sizeof b, "--model %s", tu_sharedp(model));
    return b;
}

/* Number after "neurons compared: " in the checker's output, or -1. */
static int compared(const char *out) {
    const char *p = out ? strstr(out, "neurons compared: ") : NULL;
    return p ? atoi(p + strlen("neurons compared: ")) : -1;
}

/* probe values FLAGS --norm MODE --out DIR/NAME, then the reference check;
 * asserts agreement on all 5 x 172 neurons. */
static void check_forward(const char *model, const char *mode, const char *ext, const char *flags) {
    char *dir = tu_tmpdir(), *out = NULL, *err = NULL;
    int softmax = strstr(flags, "--softmax") != NULL;
    int rc = tu_runf(&out, &err, "%s values %s %s --norm %s --out %s/v.%s", tu_bin(),
                     model_args(model), flags, mode, dir, ext);
    cr_assert_eq(rc, 0, "%s %s: probe exit %d: %s", model, mode, rc, err);
    free(out);
    free(err);
    const char *tok = strstr(model, ".bin") ? tu_sharedp(M260 "tok512.bin") : NULL;
    rc = tu_runf(&out, &err, "%s %s check --model %s %s%s --norm %s %s --%s %s/v.%s", tu_py(), REF,
                 tu_sharedp(model), tok ? "--tokenizer " : "", tok ? tok : "", mode,
                 softmax ? "--softmax" : "", strcmp(ext, "csv") ? "h5" : "csv", dir, ext);
    cr_log_info("%s %s %s: %s", model, mode, flags, out ? out : "");
    cr_assert_eq(rc, 0, "%s %s %s: reference disagrees:\n%s%s", model, mode, flags, out, err);
    cr_assert_eq(compared(out), 5 * 172, "%s: compared %d neurons, expected 860:\n%s", model,
                 compared(out), out);
    cr_assert(strstr(out, "near-tie swaps within float32 rounding: 0;"), "%s", out);
    free(out);
    free(err);
    tu_runf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

#define FLAGS_CSV "--layer all --top 12 --bottom 12 --softmax"
#define FLAGS_H5 "--top 20 --bottom 7 --softmax --block 32 --threads 2"

Test(values, bin_csv_none) { check_forward(M260 "stories260K.bin", "none", "csv", FLAGS_CSV); }
Test(values, bin_csv_gain) { check_forward(M260 "stories260K.bin", "gain", "csv", FLAGS_CSV); }
Test(values, bin_csv_final) { check_forward(M260 "stories260K.bin", "final", "csv", FLAGS_CSV); }
Test(values, gguf_h5_none) { check_forward(M260 "stories260K.gguf", "none", "h5", FLAGS_H5); }
Test(values, gguf_h5_gain) { check_forward(M260 "stories260K.gguf", "gain", "h5", FLAGS_H5); }
Test(values, gguf_h5_final) { check_forward(M260 "stories260K.gguf", "final", "h5", FLAGS_H5); }
/* Q8_0 unembedding (dequantised once), F16 ffn_down (dequantised per block). */
Test(values, q8_0_h5_none) { check_forward(M260 "stories260K-q8_0.gguf", "none", "h5", FLAGS_H5); }
Test(values, q8_0_csv_gain) {
    check_forward(M260 "stories260K-q8_0.gguf", "gain", "csv", FLAGS_CSV);
}
Test(values, q8_0_h5_final) {
    check_forward(M260 "stories260K-q8_0.gguf", "final", "h5", FLAGS_H5);
}
Test(values, f16_csv_final) {
    check_forward(M260 "stories260K-f16.gguf", "final", "csv", FLAGS_CSV);
}
Test(values, q4_0_h5_none) { check_forward(M260 "stories260K-q4_0.gguf", "none", "h5", FLAGS_H5); }
/* The slow reference kernel is held to the same brute force. */
Test(values, naive_kernel_csv) {
    check_forward(M260 "stories260K.bin", "final", "csv", FLAGS_CSV " --naive");
}

/* Hugging Face folders (tests/ref/make_hf_model.py, real tensor names and
 * orientation): GPT-2's Conv1D c_proj rows with the tied wte and a LayerNorm
 * with bias; Llama's down_proj columns with an untied lm_head; GPT-NeoX's
 * dense_4h_to_h with embed_out; BF16/F16 storage and shards.  The reference
 * reads the safetensors itself (hf_ref.py's reader).  2 layers x n_ff each. */
static void check_hf(const char *mkargs, const char *mode, const char *ext, int n_ff) {
    char *dir = tu_tmpdir(), *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err, "%s tests/ref/make_hf_model.py %s --layers 2 --out %s/m", tu_py(),
                     mkargs, dir);
    cr_assert_eq(rc, 0, "make_hf_model.py %s: %s%s", mkargs, out, err);
    free(out);
    free(err);
    rc = tu_runf(&out, &err,
                 "%s values --model %s/m --top 9 --bottom 6 --softmax --norm %s --block 16 "
                 "--out %s/v.%s && %s %s check --model %s/m --norm %s --softmax --%s %s/v.%s",
                 tu_bin(), dir, mode, dir, ext, tu_py(), REF, dir, mode,
                 strcmp(ext, "csv") ? "h5" : "csv", dir, ext);
    cr_log_info("%s %s: %s", mkargs, mode, out ? out : "");
    cr_assert_eq(rc, 0, "%s %s: %s%s", mkargs, mode, out, err);
    cr_assert_eq(compared(out), 2 * n_ff, "%s", out);
    cr_assert(strstr(out, "near-tie swaps within float32 rounding: 0;"), "%s", out);
    free(out);
    free(err);
    tu_runf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

Test(values, hf_gpt2_final_csv) { check_hf("--arch gpt2 --d 32 --vocab 97", "final", "csv", 128); }
Test(values, hf_gpt2_prefix_untied_bf16_h5) {
    check_hf("--arch gpt2 --prefix --tie 0 --dtype bf16 --d 32 --vocab 97", "gain", "h5", 128);
}
Test(values, hf_llama_sharded_none_h5) {
    check_hf("--arch llama --shards 2 --d 32 --vocab 97", "none", "h5", 88);
}
Test(values, hf_llama_tied_f16_final_csv) {
    check_hf("--arch llama --tie 1 --dtype f16 --d 32 --vocab 97", "final", "csv", 88);
}
Test(values, hf_neox_final_h5) {
    check_hf("--arch gpt_neox --d 32 --vocab 97", "final", "h5", 128);
}
Test(values, hf_neox_tied_bf16_gain_csv) {
    check_hf("--arch gpt_neox --tie 1 --dtype bf16 --d 32 --vocab 97", "gain", "csv", 128);
}

/* The checker must be able to fail: one swapped token id in probe's CSV. */
Test(values, checker_catches_a_wrong_id) {
    char *dir = tu_tmpdir(), *out = NULL;
    int rc = tu_runf(NULL, NULL,
                     "%s values %s --top 5 --out %s/v.csv && "
                     "awk -F, 'NR==4{$5=($5==7?8:7)} {print}' OFS=, %s/v.csv > %s/w.csv",
                     tu_bin(), model_args(M260 "stories260K.bin"), dir, dir, dir);
    cr_assert_eq(rc, 0);
    rc = tu_runf(&out, NULL, "%s %s check --model %s --norm none --csv %s/w.csv", tu_py(), REF,
                 tu_sharedp(M260 "stories260K.bin"), dir);
    cr_assert_neq(rc, 0, "a corrupted table passed the check:\n%s", out);
    cr_assert(strstr(out, "MISMATCH"), "%s", out);
    free(out);
    tu_runf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

/* Exact ties: duplicated embedding rows and a zero value vector.  The
 * reference allows no swap between exactly equal scores. */
Test(values, ties_lower_id_first) {
    char *dir = tu_tmpdir(), *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err, "%s %s mktie --out %s/tie.bin", tu_py(), REF, dir);
    cr_assert_eq(rc, 0, "%s", err);
    free(out);
    free(err);
    const char *modes[] = {"none", "gain", "final"};
    for (int i = 0; i < 3; i++) {
        rc = tu_runf(&out, &err,
                     "%s values --model %s/tie.bin --top 20 --bottom 20 --norm %s --out %s/t.csv "
                     "&& %s %s check --model %s/tie.bin --norm %s --csv %s/t.csv",
                     tu_bin(), dir, modes[i], dir, tu_py(), REF, dir, modes[i], dir);
        cr_assert_eq(rc, 0, "%s: %s%s", modes[i], out, err);
        cr_assert_eq(compared(out), 2 * 64, "%s", out);
        free(out);
        free(err);
    }
    /* Zero value vector: every score 0, so both lists are ids 0, 1, 2, ... */
    rc = tu_runf(&out, &err,
                 "%s values --model %s/tie.bin --neuron 0:3 --top 6 --bottom 6 --out %s/z.csv && "
                 "cut -d, -f3,5 %s/z.csv | tr -d '\"' | tr '\\n' ' '",
                 tu_bin(), dir, dir, dir);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "top,0 top,1 top,2 top,3 top,4 top,5 bottom,0 bottom,1 bottom,2 "
                          "bottom,3 bottom,4 bottom,5"),
              "%s", out);
    free(out);
    free(err);
    /* Token 5's row is copied into tokens 40..47: wherever 5 is listed, the
     * copies follow it in id order. */
    rc = tu_runf(&out, &err,
                 "%s values --model %s/tie.bin --top 30 --out %s/d.csv && "
                 "awk -F, 'NR>1{k=$1\":\"$2; s[k]=s[k]\" \"$5} END{for(k in s) print s[k]}' "
                 "%s/d.csv | grep -c ' 5 40 41 42 43 44 45 46 47'",
                 tu_bin(), dir, dir, dir);
    cr_assert_eq(rc, 0, "no list holds token 5 and its copies in id order: %s %s", out, err);
    cr_assert(atoi(out) >= 5, "only %s lists show the tie run", out);
    free(out);
    free(err);
    tu_runf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

/* Reverse search agrees with the forward tables and the reference rank. */
static void check_promotes(const char *model, const char *mode, const char *which, int id) {
    char *dir = tu_tmpdir(), *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err,
                     "%s values %s --norm %s --top 25 --out %s/f.csv && "
                     "%s values %s --norm %s %s --out %s/r.csv && "
                     "%s %s promotes --model %s --norm %s --fwd %s/f.csv --rev %s/r.csv "
                     "--token-id %d",
                     tu_bin(), model_args(model), mode, dir, tu_bin(), model_args(model), mode,
                     which, dir, tu_py(), REF, tu_sharedp(model), mode, dir, dir, id);
    cr_log_info("%s", out ? out : "");
    cr_assert_eq(rc, 0, "%s %s: %s%s", model, which, out, err);
    cr_assert_eq(compared(out), 860, "%s", out);
    const char *f = strstr(out, "found at their rank in the forward lists: ");
    cr_assert(f && atoi(f + strlen("found at their rank in the forward lists: ")) >= 5,
              "too few neurons list the token in their top 25 to test agreement:\n%s", out);
    free(out);
    free(err);
    /* The table lists the first N rows of the CSV. */
    rc =
        tu_runf(&out, &err,
                "%s values %s --norm %s %s --top 15 | awk '!/^#/ && NR>3 {print $2\",\"$3\",\"$5}' "
                "> %s/t.txt && tail -n +2 %s/r.csv | head -15 | cut -d, -f1,2,6 | diff - %s/t.txt",
                tu_bin(), model_args(model), mode, which, dir, dir, dir);
    cr_assert_eq(rc, 0, "table and CSV disagree: %s%s", out, err);
    free(out);
    free(err);
    tu_runf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

Test(values, promotes_text_none) {
    check_promotes(M260 "stories260K.bin", "none", "--promotes ' the'", 265);
}
Test(values, promotes_id_final) {
    check_promotes(M260 "stories260K.gguf", "final", "--token-id 400", 400);
}
Test(values, promotes_q8_0_gain) {
    check_promotes(M260 "stories260K-q8_0.gguf", "gain", "--token-id 141", 141);
}

/* Scores are exact (double) for listed tokens, so a neuron's list does not
 * depend on how it was batched: --neuron rows equal the full layer's rows. */
Test(values, neuron_list_equals_layer_rows) {
    char *dir = tu_tmpdir(), *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err,
                     "%s values %s --layer 0,2 --top 9 --bottom 4 --out %s/a.csv && "
                     "%s values %s --neuron 2:17 --neuron 0:5 --neuron 2:171 --neuron 0:0 --top 9 "
                     "--bottom 4 --block 1 --threads 1 --out %s/b.csv && "
                     "for n in 0:5 0:0 2:17 2:171; do l=${n%%:*}; i=${n#*:}; "
                     "grep \"^$l,$i,\" %s/a.csv | cut -d, -f1-10 > %s/x; "
                     "grep \"^$l,$i,\" %s/b.csv | cut -d, -f1-10 > %s/y; "
                     "test -s %s/x && cmp %s/x %s/y || exit 1; done",
                     tu_bin(), model_args(M260 "stories260K.bin"), dir, tu_bin(),
                     model_args(M260 "stories260K.bin"), dir, dir, dir, dir, dir, dir, dir, dir);
    cr_assert_eq(rc, 0, "%s%s", out, err);
    free(out);
    free(err);
    tu_runf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

/* HDF5 layout: attributes, shapes, vocabulary table (read by h5py). */
Test(values, h5_schema) {
    char *dir = tu_tmpdir(), *out = NULL, *err = NULL;
    int rc = tu_runf(
        &out, &err,
        "%s values %s --layer 1,3 --top 4 --bottom 2 --norm gain --softmax --out %s/v.h5 && "
        "%s -c \"import h5py; f=h5py.File('%s/v.h5'); a=f.attrs; "
        "print(a['probe_kind'], a['norm_mode'], a['k_top'], a['k_bottom'], a['softmax'], "
        "sorted(f.keys()), f['layer_3/top_ids'].shape, f['layer_3/top_ids'].dtype, "
        "f['layer_1/bottom_scores'].shape, f['layer_1/entropy'].shape, len(f['tokens']), "
        "f['tokens'][f['layer_3/top_ids'][0,0]].decode()!='')\"",
        tu_bin(), model_args(M260 "stories260K.bin"), dir, tu_py(), dir);
    cr_assert_eq(rc, 0, "%s%s", out, err);
    cr_assert(strstr(out, "values gain 4 2 1 ['layer_1', 'layer_3', 'tokens'] (172, 4) int32 "
                          "(172, 2) (172,) 512 True"),
              "%s", out);
    free(out);
    free(err);
    tu_runf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

/* ---- errors: non-zero exit, one line on stderr, no file left ---------------- */

static void check_error(const char *args, const char *needle) {
    char *dir = tu_tmpdir(), *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err, "%s values %s %s --out %s/o.csv", tu_bin(),
                     model_args(M260 "stories260K.bin"), args, dir);
    cr_assert_neq(rc, 0, "'%s' succeeded", args);
    cr_assert_eq(tu_lines(err), 1, "'%s': stderr is not one line:\n%s", args, err);
    cr_assert(strstr(err, needle), "'%s': stderr lacks '%s': %s", args, needle, err);
    char p[4200];
    snprintf(p, sizeof p, "%s/o.csv", dir);
    cr_assert(!tu_exists(p), "'%s' left an output file", args);
    cr_assert(tu_no_temp_files(dir), "'%s' left a temporary file", args);
    free(out);
    free(err);
    tu_runf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

Test(values, error_neuron_out_of_range) {
    check_error("--neuron 2:172", "layer 2 has 172 neurons (0..171)");
}
Test(values, error_layer_out_of_range) { check_error("--neuron 5:0", "layers 0..4"); }
Test(values, error_layer_spec) { check_error("--layer 7", "0..4"); }
Test(values, error_not_one_token) {
    check_error("--promotes 'Paris'",
                "is not a single token in this vocabulary: it tokenizes as [");
}
Test(values, error_top_exceeds_vocab) {
    check_error("--top 513", "--top 513 is larger than the vocabulary (512 tokens)");
}
Test(values, error_bottom_exceeds_vocab) {
    check_error("--bottom 600", "--bottom 600 is larger than the vocabulary (512 tokens)");
}
Test(values, error_token_id) { check_error("--token-id 512", "out of range"); }
Test(values, error_bad_norm) { check_error("--norm rms", "--norm is none, gain or final"); }
Test(values, error_bad_neuron_spec) { check_error("--neuron 3", "LAYER:INDEX"); }

/* ---- in process: fast kernel vs naive on synthetic models ------------------- */

typedef struct {
    model_t m;
    mlayer_t layers[2];
    tensor_t down[2], E, g, b, hb;
    void *buf[8];
    int nbuf;
} synth_t;

static unsigned rng_state = 12345;
static float frand(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) * (2.0 / 16777216.0) - 1.0);
}

static void *sbuf(synth_t *s, size_t n) {
    void *p = calloc(1, n);
    cr_assert(p);
    s->buf[s->nbuf++] = p;
    return p;
}

/* A tensor (rows, cols) of DT filled with random values (quantised: random
 * codes under a small scale). */
static void mk_tensor(synth_t *s, tensor_t *t, const char *name, dtype_t dt, int64_t rows,
                      int64_t cols, float scale) {
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dt;
    t->ndim = rows ? 2 : 1;
    t->shape[0] = rows ? rows : cols;
    t->shape[1] = cols;
    int64_t n = (rows ? rows : 1) * cols;
    t->nbytes = tensor_bytes_for(dt, t->ndim, t->shape);
    cr_assert(t->nbytes > 0, "bad synthetic shape for %s", name);
    uint8_t *p = sbuf(s, t->nbytes);
    t->data = p;
    if (dt == DT_F32) {
        for (int64_t i = 0; i < n; i++)
            ((float *)p)[i] = scale * frand();
    } else if (dt == DT_F16 || dt == DT_BF16) {
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = dt == DT_F16 ? f32_to_f16(scale * frand()) : f32_to_bf16(scale * frand());
            memcpy(p + 2 * i, &h, 2);
        }
    } else {
        int bb = dtype_block_bytes(dt);
        for (int64_t b = 0; b < n / 32; b++) {
            uint16_t h = f32_to_f16(scale * (0.5f + 0.5f * fabsf(frand())) / 8);
            memcpy(p + b * bb, &h, 2);
            for (int j = 2; j < bb; j++) {
                rng_state = rng_state * 1664525u + 1013904223u;
                p[b * bb + j] = (uint8_t)(rng_state >> 24);
            }
        }
    }
}

/* GPT2: Conv1D c_proj (n_ff, d), LayerNorm with bias, LM head with bias,
 * E stored transposed (d, vocab); else Llama: ffn_down (d, n_ff), RMSNorm. */
static synth_t *mk_model(int gpt2, dtype_t down_dt, dtype_t e_dt) {
    synth_t *s = calloc(1, sizeof *s);
    cr_assert(s);
    int d = 64, ff = 96, V = 1504; /* V: whole Q8_0 blocks when stored (d, V) */
    mcfg_t *c = &s->m.cfg;
    c->n_layer = 2;
    c->d_model = d;
    c->n_ff = ff;
    c->vocab = V;
    c->norm = gpt2 ? NORM_LAYER : NORM_RMS;
    c->norm_eps = 1e-5f;
    s->m.path = "synthetic";
    s->m.layers = s->layers;
    for (int l = 0; l < 2; l++) {
        mk_tensor(s, &s->down[l], "down", down_dt, gpt2 ? ff : d, gpt2 ? d : ff, 0.2f);
        s->layers[l].down.w = &s->down[l];
        s->layers[l].down.transposed = gpt2;
    }
    mk_tensor(s, &s->E, "lm_head", e_dt, gpt2 ? d : V, gpt2 ? V : d, 0.3f);
    s->m.lm_head.w = &s->E;
    s->m.lm_head.transposed = gpt2;
    mk_tensor(s, &s->g, "ln_f.weight", DT_F32, 0, d, 1.0f);
    for (int k = 0; k < d; k++)
        ((float *)s->g.data)[k] += 1.5f;
    s->m.out_norm_w = &s->g;
    if (gpt2) {
        mk_tensor(s, &s->b, "ln_f.bias", DT_F32, 0, d, 0.1f);
        s->m.out_norm_b = &s->b;
        mk_tensor(s, &s->hb, "lm_head.bias", DT_F32, 0, V, 0.05f);
        s->m.lm_head.b = &s->hb;
    }
    return s;
}

static void free_model(synth_t *s) {
    for (int i = 0; i < s->nbuf; i++)
        free(s->buf[i]);
    free(s);
}

static void compare_res(const values_res_t *a, const values_res_t *b, const char *what) {
    cr_assert_eq(a->n, b->n);
    for (int j = 0; j < a->n; j++) {
        cr_assert_eq(a->neuron[j], b->neuron[j]);
        float scale = fabsf(b->max_logit[j]) + 1e-3f;
        for (int dir = 0; dir < 2; dir++) {
            int k = dir ? a->k_bottom : a->k_top;
            const int32_t *ia = (dir ? a->bottom_ids : a->top_ids) + (size_t)j * k;
            const int32_t *ib = (dir ? b->bottom_ids : b->top_ids) + (size_t)j * k;
            const float *sa = (dir ? a->bottom_scores : a->top_scores) + (size_t)j * k;
            const float *sb = (dir ? b->bottom_scores : b->top_scores) + (size_t)j * k;
            for (int i = 0; i < k; i++) {
                cr_assert_eq(ia[i], ib[i], "%s L%d N%d %s rank %d: fast %d (%.9g), naive %d (%.9g)",
                             what, a->layer, a->neuron[j], dir ? "bottom" : "top", i, ia[i], sa[i],
                             ib[i], sb[i]);
                cr_assert(fabsf(sa[i] - sb[i]) <= 1e-6f * scale, "%s: score %.9g vs %.9g", what,
                          sa[i], sb[i]);
            }
        }
        cr_assert(fabsf(a->max_logit[j] - b->max_logit[j]) <= 1e-6f * scale, "%s", what);
        cr_assert(fabsf(a->value_norm[j] - b->value_norm[j]) <= 1e-6f * b->value_norm[j], "%s",
                  what);
        cr_assert(fabsf(a->entropy[j] - b->entropy[j]) <= 1e-4f * b->entropy[j],
                  "%s: entropy %g vs %g", what, a->entropy[j], b->entropy[j]);
        cr_assert(fabsf(a->lse[j] - b->lse[j]) <= 1e-4f * (fabsf(b->lse[j]) + 1), "%s", what);
        if (a->promote_rank) {
            cr_assert_eq(a->promote_rank[j], b->promote_rank[j], "%s: promote rank %d vs %d", what,
                         a->promote_rank[j], b->promote_rank[j]);
            cr_assert(fabsf(a->promote_score[j] - b->promote_score[j]) <= 1e-6f * scale, "%s",
                      what);
        }
        if (a->top_probs)
            for (int i = 0; i < a->k_top; i++)
                cr_assert(fabsf(a->top_probs[(size_t)j * a->k_top + i] -
                                b->top_probs[(size_t)j * a->k_top + i]) <=
                              1e-4f * b->top_probs[(size_t)j * a->k_top + i],
                          "%s: prob", what);
    }
}

static void check_synth(int gpt2, dtype_t down_dt, dtype_t e_dt) {
    synth_t *s = mk_model(gpt2, down_dt, e_dt);
    int threads[2] = {1, 2}, blocks[3] = {1, 32, 0};
    int list[] = {95, 3, 40, 3, 64, 0, 33, 31, 32};
    for (int mode = 0; mode < 3; mode++)
        for (int ti = 0; ti < 2; ti++)
            for (int bi = 0; bi < 3; bi++) {
                omp_set_num_threads(threads[ti]);
                values_opts_t o = {(values_norm_t)mode, 10, 12, 1, 77, blocks[bi]};
                values_t *v = values_new(&s->m, &o);
                cr_assert(v, "values_new: %s", err_msg());
                char what[128];
                snprintf(what, sizeof what, "%s down %s E %s mode %s threads %d block %d",
                         gpt2 ? "gpt2" : "llama", dtype_name(down_dt), dtype_name(e_dt),
                         values_norm_name(o.norm), threads[ti], blocks[bi]);
                for (int l = 0; l < 2; l++) {
                    values_res_t a, b;
                    cr_assert_eq(values_layer(v, l, NULL, 0, &a), 0, "%s", err_msg());
                    cr_assert_eq(values_layer_naive(v, l, NULL, 0, &b), 0, "%s", err_msg());
                    cr_assert_eq(a.n, 96);
                    compare_res(&a, &b, what);
                    values_res_free(&a);
                    values_res_free(&b);
                    int n = (int)(sizeof list / sizeof *list);
                    cr_assert_eq(values_layer(v, l, list, n, &a), 0, "%s", err_msg());
                    cr_assert_eq(values_layer_naive(v, l, list, n, &b), 0, "%s", err_msg());
                    compare_res(&a, &b, what);
                    values_res_free(&a);
                    values_res_free(&b);
                }
                values_free(v);
            }
    omp_set_num_threads(omp_get_num_procs());
    free_model(s);
}

Test(values, synth_llama_q8_0_down) { check_synth(0, DT_Q8_0, DT_F32); }
Test(values, synth_llama_q4_0_down_f16_head) { check_synth(0, DT_Q4_0, DT_F16); }
Test(values, synth_llama_bf16) { check_synth(0, DT_BF16, DT_BF16); }
Test(values, synth_gpt2_conv1d_f32) { check_synth(1, DT_F32, DT_F32); }
Test(values, synth_gpt2_conv1d_f16_q8_head) { check_synth(1, DT_F16, DT_Q8_0); }

Test(values, synth_errors) {
    synth_t *s = mk_model(0, DT_F32, DT_F32);
    values_opts_t o = {VALUES_NORM_NONE, 1505, 0, 0, -1, 0};
    values_t *v = values_new(&s->m, &o);
    cr_assert_null(v);
    cr_assert(strstr(err_msg(), "larger than the vocabulary (1504 tokens)"), "%s", err_msg());
    o.k_top = 5;
    v = values_new(&s->m, &o);
    cr_assert(v);
    values_res_t r;
    int bad = 96;
    cr_assert_eq(values_layer(v, 1, &bad, 1, &r), -1);
    cr_assert(strstr(err_msg(), "neuron 96 is out of range: layer 1 has 96 neurons (0..95)"), "%s",
              err_msg());
    cr_assert_eq(values_layer(v, 2, NULL, 0, &r), -1);
    values_free(v);
    values_free(NULL);
    values_res_free(NULL);
    free_model(s);
}
