/* probe trace: sub-updates, logit lens, attribution and interventions.
 *
 * The main checks run `probe trace --out x.h5` and hand the file to the
 * independent numpy reference tests/ref/trace_ref.py, which recomputes the
 * residuals, lenses, every neuron's contribution (as a difference of the
 * linearised final norm with and without the sub-update), the rankings, the
 * intervened forward passes and the greedy continuations by brute force —
 * on stories260K (Llama: RMSNorm, gated SiLU) and on random GPT-2 folders
 * (LayerNorm, Conv1D values, FFN bias; f32 and bf16).  A perturbed file must
 * make the reference fail.  Library-level tests check conservation
 * (sum_i m_i v_i + b2 = FFN output), that the last lens is the model's
 * prediction, the GEMV against its naive twin, and bad input.  The planted-
 * knowledge demo model's trace checks live in test_demo.c. */
#include "tutil.h"

#include "analysis/trace.h"
#include "core/err.h"
#include "core/fwd.h"
#include "core/model.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define M260 "models/stories260K/"
#define REF "tests/ref/trace_ref.py"
#define PROMPT "'Once upon a time, there was a little girl named Lily'"

static char *stories_args(void) {
    static _Thread_local char b[8192];
    snprintf(b, sizeof b, "--model %s --tokenizer %s", tu_sharedp(M260 "stories260K.bin"),
             tu_sharedp(M260 "tok512.bin"));
    return b;
}

/* Runs `probe trace ARGS --out DIR/t.h5` and the numpy reference on it with
 * REF_ARGS; both must succeed and the reference must print OK. */
static void trace_vs_ref(const char *model_for_ref, const char *args, const char *ref_args) {
    char *dir = tu_tmpdir(), *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err, "%s trace %s --quiet --out %s/t.h5", tu_bin(), args, dir);
    cr_assert_eq(rc, 0, "probe trace %s: exit %d\n%s", args, rc, err);
    free(out);
    free(err);
    rc = tu_runf(&out, &err, "%s %s --model %s --h5 %s/t.h5 %s", tu_py(), REF, model_for_ref, dir,
                 ref_args);
    cr_assert_eq(rc, 0, "reference mismatch for '%s':\n%s\n%s", args, out, err);
    cr_assert(strstr(out, "trace_ref: OK"), "%s", out);
    cr_log_info("%s", out);
    free(out);
    free(err);
    tu_runf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir);
}

/* ---- Against the numpy reference: stories260K ------------------------------------------ */

Test(trace, numpy_all_positions, .timeout = 300) {
    char a[16384];
    snprintf(a, sizeof a, "%s --prompt " PROMPT " --all-positions --neurons 8", stories_args());
    trace_vs_ref(tu_sharedp(M260 "stories260K.bin"), a, "");
}

Test(trace, numpy_target_and_position, .timeout = 300) {
    /* An explicit target other than the top prediction, at a middle position. */
    char a[16384];
    snprintf(a, sizeof a, "%s --prompt " PROMPT " --position 7 --target ' little'", stories_args());
    trace_vs_ref(tu_sharedp(M260 "stories260K.bin"), a, "");
}

Test(trace, numpy_interventions_generate, .timeout = 300) {
    char a[16384];
    snprintf(a, sizeof a,
             "%s --prompt 'Lily wanted to' --ablate 4:29,2:160 --scale 3:5=3 --set 1:7=-2 --on 0:9 "
             "--generate 20",
             stories_args());
    trace_vs_ref(tu_sharedp(M260 "stories260K.bin"), a, "");
}

Test(trace, numpy_ablate_top_everywhere, .timeout = 300) {
    char a[16384];
    snprintf(a, sizeof a,
             "%s --prompt 'Lily wanted to' --ablate-top 7 --intervene-at all --generate 20",
             stories_args());
    trace_vs_ref(tu_sharedp(M260 "stories260K.bin"), a, "--ablate-top 7");
}

Test(trace, numpy_quantised_gguf_runs) {
    /* Q8_0 weights: the trace must run; values through the dequantised path. */
    char *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err, "%s trace --model %s --prompt 'Lily wanted to' --ablate 4:29",
                     tu_bin(), tu_sharedp(M260 "stories260K-q8_0.gguf"));
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "interventions at position 4"), "%s", out);
    free(out);
    free(err);
}

/* ---- Against the numpy reference: GPT-2 folders (LayerNorm, Conv1D, biases) ------------- */

/* A random GPT-2 with the real GPT-2 vocabulary size and tokenizer files. */
static char *make_gpt2(const char *extra) {
    char *dir = tu_tmpdir(), *out = NULL, *err = NULL;
    const char *tk = tu_sharedp("tokenizers/gpt2");
    int rc = tu_runf(&out, &err,
                     "%s tests/ref/make_hf_model.py --arch gpt2 --vocab 50257 --layers 3 --d 48 "
                     "--ff 192 --heads 4 --ctx 64 %s --out %s/g && cp %s/tokenizer.json "
                     "%s/merges.txt %s/g/",
                     tu_py(), extra, dir, tk, tk, dir);
    cr_assert_eq(rc, 0, "make_hf_model.py: %s%s", out, err);
    free(out);
    free(err);
    char *m = malloc(strlen(dir) + 4);
    sprintf(m, "%s/g", dir);
    free(dir);
    return m;
}

static void gpt2_vs_ref(const char *extra) {
    char *m = make_gpt2(extra), a[16384];
    snprintf(a, sizeof a,
             "--model %s --prompt 'The Eiffel Tower is in' --target ' Paris' --ablate 1:5 "
             "--on 2:7 --scale 0:3=2 --set 2:9=-1.5 --generate 8",
             m);
    trace_vs_ref(m, a, "");
    snprintf(a, sizeof a, "--model %s --prompt 'The Eiffel Tower is in' --all-positions", m);
    trace_vs_ref(m, a, "");
    snprintf(a, sizeof a, "--model %s --prompt 'The Eiffel Tower is in' --ablate-top 5", m);
    trace_vs_ref(m, a, "--ablate-top 5");
    tu_runf(NULL, NULL, "rm -rf '%s/..'", m);
    free(m);
}

Test(trace, numpy_gpt2_f32, .timeout = 300) { gpt2_vs_ref(""); }
Test(trace, numpy_gpt2_bf16_untied, .timeout = 300) { gpt2_vs_ref("--dtype bf16 --tie 0"); }

/* ---- The reference can fail ----------------------------------------------------------------- */

Test(trace, reference_detects_errors, .timeout = 300) {
    char *dir = tu_tmpdir(), *out = NULL, *err = NULL;
    int rc = tu_runf(NULL, &err,
                     "%s trace %s --prompt 'Lily wanted to' --ablate 4:29 --generate 5 --quiet "
                     "--out %s/t.h5",
                     tu_bin(), stories_args(), dir);
    cr_assert_eq(rc, 0, "%s", err);
    free(err);
    /* Each edit is small but beyond the tolerance; the reference must notice. */
    const char *edits[] = {
        "f['base/pos_4/contribution'][2, 5] += 0.01",
        "f['base/pos_4/contribution'][:] *= 1.01",
        "f['intervened/pos_4/logits'][7] += 0.01",
        "f['intervened/pos_4/key_act'][4, 29] = 0.5",
        "f['base/pos_4/lens_pre_target_logit'][1] -= 0.01",
        "f['base/pos_4/top_by_contribution'][3, 0] = (f['base/pos_4/top_by_contribution'][3, 1])",
        "f['intervened/generated_ids'][2] += 1",
        "f['base/pos_4/ffn_out'][0, 3] += 0.01",
        "f['base/pos_4'].attrs['sigma_final'] *= 1.001",
    };
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        rc = tu_runf(NULL, &err,
                     "cp %s/t.h5 %s/e.h5 && %s -c \"import h5py\nf = h5py.File('%s/e.h5', 'r+')\n"
                     "%s\nf.close()\"",
                     dir, dir, tu_py(), dir, edits[i]);
        cr_assert_eq(rc, 0, "edit %s: %s", edits[i], err);
        free(err);
        rc = tu_runf(&out, &err, "%s %s --model %s --h5 %s/e.h5", tu_py(), REF,
                     tu_sharedp(M260 "stories260K.bin"), dir);
        cr_assert_eq(rc, 1, "reference accepted an edited file (%s):\n%s%s", edits[i], out, err);
        cr_assert(strstr(out, "trace_ref: FAIL"), "%s", out);
        free(out);
        free(err);
    }
    tu_runf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir);
}

/* ---- Library: conservation, the last lens, interventions through the hook ---------------------
 */

/* Value vector I of LAYER (d floats) by plain reads. */
static void value_vec(const model_t *m, int layer, int i, float *v) {
    const lin_t *dn = &m->layers[layer].down;
    int d = m->cfg.d_model, ff = m->cfg.n_ff;
    if (dn->transposed) {
        tensor_get_rows(dn->w, i, 1, v);
    } else {
        float *row = malloc((size_t)ff * sizeof *row);
        for (int r = 0; r < d; r++) {
            tensor_get_rows(dn->w, r, 1, row);
            v[r] = row[i];
        }
        free(row);
    }
}

static double max_abs(const float *x, long n) {
    double a = 0;
    for (long i = 0; i < n; i++)
        a = fmax(a, fabs(x[i]));
    return a;
}

/* Checks one traced position of one run against brute force in double. */
static void check_position(const model_t *m, const trace_t *t, const trace_pos_t *p,
                           const char *what) {
    int L = t->n_layer, d = t->d, ff = t->n_ff, V = t->vocab;
    float *v = malloc((size_t)d * sizeof *v), *b2 = malloc((size_t)d * sizeof *b2);
    float *g = malloc((size_t)d * sizeof *g), *u = malloc((size_t)d * sizeof *u);
    double *sum = malloc((size_t)d * sizeof *sum);
    tensor_get_rows(m->out_norm_w, 0, 1, g);
    cr_assert(!m->lm_head.transposed);
    tensor_get_rows(m->lm_head.w, p->target, 1, u);
    double worst_cons = 0, worst_share = 0;
    for (int l = 0; l < L; l++) {
        const lin_t *dn = &m->layers[l].down;
        /* Conservation: sum_i m_i v_i + b2 = the FFN output of the pass. */
        for (int j = 0; j < d; j++)
            sum[j] = 0;
        for (int i = 0; i < ff; i++) {
            value_vec(m, l, i, v);
            double mi = p->key[(size_t)l * ff + i];
            for (int j = 0; j < d; j++)
                sum[j] += mi * v[j];
        }
        if (dn->b)
            tensor_get_rows(dn->b, 0, 1, b2);
        else
            memset(b2, 0, (size_t)d * sizeof *b2);
        const float *o = p->ffn_out + (size_t)l * d;
        double scale = fmax(1.0, max_abs(o, d)), diff = 0;
        for (int j = 0; j < d; j++)
            diff = fmax(diff, fabs(sum[j] + b2[j] - o[j]));
        worst_cons = fmax(worst_cons, diff / scale);
        cr_assert(diff <= 1e-4 * scale,
                  "%s layer %d: sum m_i v_i + b2 differs from the FFN output "
                  "by %g (scale %g)",
                  what, l, diff, scale);
        /* Sum of contributions + b2's share = the FFN output's share. */
        double share = 0, mb = 0, cs = 0;
        if (t->layernorm)
            for (int j = 0; j < d; j++)
                mb += b2[j] / (double)d;
        for (int j = 0; j < d; j++)
            share += (double)u[j] * g[j] * (b2[j] - mb) / p->sigma;
        for (int i = 0; i < ff; i++)
            cs += p->contrib[(size_t)l * ff + i];
        double dd = fabs(cs + share - p->ffn_target_logit[l]);
        worst_share = fmax(worst_share, dd);
        cr_assert(dd <= 1e-4 * fmax(1.0, fabs(p->ffn_target_logit[l])),
                  "%s layer %d: contributions + bias share %g vs FFN share %g", what, l, cs + share,
                  p->ffn_target_logit[l]);
    }
    /* The lens after the last layer is the model's own final logits. */
    const float *last = p->lens_last;
    double diff = 0;
    for (int j = 0; j < V; j++)
        diff = fmax(diff, fabs(last[j] - p->logits[j]));
    cr_assert(diff <= 1e-5 * fmax(1.0, max_abs(p->logits, V)),
              "%s: last lens differs from the logits by %g", what, diff);
    cr_assert_eq(p->lens_target_rank[2 * L - 1], p->target_rank);
    cr_log_info("%s: conservation %.2g (relative), contribution sums %.2g, last lens %.2g", what,
                worst_cons, worst_share, diff);
    free(v), free(b2), free(g), free(u), free(sum);
}

typedef struct {
    int layer, neuron, pos[2];
} zero_t;

static int zero_hook(void *user, int layer, hook_point_t pt, float *data, int T, int w, int pos0) {
    const zero_t *z = user;
    if (pt == HOOK_FFN_KEY && layer == z->layer)
        for (int r = 0; r < T; r++)
            if (pos0 + r == z->pos[0] || pos0 + r == z->pos[1])
                data[(size_t)r * w + z->neuron] = 0.0f;
    return 0;
}

static void check_library(const char *path, const char *tokpath, const int *toks, int T) {
    model_t *m = model_open(path, tokpath);
    cr_assert(m, "%s", err_msg());
    int pos[2] = {T - 1, T / 2};
    trace_opts_t o = {.k_tokens = 5, .k_neurons = 4, .k_promoted = 3};
    trace_t *t = trace_new(m, toks, T, pos, 2, &o);
    cr_assert(t, "%s", err_msg());
    cr_assert_eq(trace_run_base(t, -1), 0, "%s", err_msg());
    cr_assert_eq(t->positions[0], T / 2); /* sorted */
    for (int s = 0; s < 2; s++)
        check_position(m, t, &t->base.pos[s], path);
    /* An ablation equals a plain forward pass with that coefficient zeroed at
     * the traced positions. */
    const trace_pos_t *p = &t->base.pos[1];
    zero_t z = {1, p->by_contrib[1 * o.k_neurons], {pos[0], pos[1]}};
    trace_iv_t iv = {z.layer, z.neuron, TRACE_IV_ABLATE, 0};
    cr_assert_eq(trace_run_intervened(t, &iv, 1), 0, "%s", err_msg());
    for (int s = 0; s < 2; s++)
        check_position(m, t, &t->iv.pos[s], path);
    fwd_t *f = fwd_new(m, T, T);
    float *lg = malloc((size_t)m->cfg.vocab * sizeof *lg);
    fwd_set_hook(f, zero_hook, &z, 1u << HOOK_FFN_KEY);
    cr_assert_eq(fwd_eval(f, toks, T, 0, lg, FWD_LOGITS_LAST), 0);
    double diff = 0;
    for (int j = 0; j < m->cfg.vocab; j++)
        diff = fmax(diff, fabs(lg[j] - t->iv.pos[1].logits[j]));
    cr_assert(diff <= 1e-5 * fmax(1.0, max_abs(lg, m->cfg.vocab)),
              "ablation differs from a zeroed forward pass by %g", diff);
    cr_assert_float_eq(t->iv.pos[1].key[(size_t)z.layer * m->cfg.n_ff + z.neuron], 0.0f, 0);
    cr_assert_float_eq(t->iv.pos[1].contrib[(size_t)z.layer * m->cfg.n_ff + z.neuron], 0.0f, 0);
    free(lg);
    fwd_free(f);
    trace_free(t);
    model_close(m);
}

Test(trace, library_stories260K) {
    int toks[] = {1, 403, 407, 300, 261, 29, 40, 411};
    check_library(tu_sharedp(M260 "stories260K.bin"), tu_sharedp(M260 "tok512.bin"), toks, 8);
}

Test(trace, library_gpt2_neox, .timeout = 120) {
    int toks[] = {464, 412, 733, 417, 8765, 318, 287};
    char *g = make_gpt2("--dtype bf16");
    check_library(g, NULL, toks, 7);
    tu_runf(NULL, NULL, "rm -rf '%s/..'", g);
    free(g);
    /* GPT-NeoX: parallel residual, untied LayerNorm model. */
    char *dir = tu_tmpdir(), *err = NULL;
    int rc = tu_runf(NULL, &err,
                     "%s tests/ref/make_hf_model.py --arch gpt_neox --vocab 97 --layers 2 --d 32 "
                     "--ff 64 --heads 4 --ctx 32 --out %s/n",
                     tu_py(), dir);
    cr_assert_eq(rc, 0, "%s", err);
    free(err);
    char n[4200];
    snprintf(n, sizeof n, "%s/n", dir);
    int small[] = {3, 14, 15, 92, 65, 35};
    check_library(n, NULL, small, 6);
    tu_runf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir);
}

/* ---- The GEMV against its naive twin -----------------------------------------------------------
 */

static void check_dots(const char *path) {
    model_t *m = model_open(path, NULL);
    cr_assert(m, "%s: %s", path, err_msg());
    int d = m->cfg.d_model, ff = m->cfg.n_ff;
    float *a = malloc((size_t)d * sizeof *a), *w1 = malloc((size_t)ff * sizeof *w1),
          *w2 = malloc((size_t)ff * sizeof *w2);
    for (int j = 0; j < d; j++)
        a[j] = sinf(0.7f * (float)j) - 0.2f;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        cr_assert_eq(trace_value_dots(m, l, a, w1), 0);
        cr_assert_eq(trace_value_dots_naive(m, l, a, w2), 0);
        double diff = 0;
        for (int i = 0; i < ff; i++)
            diff = fmax(diff, fabs(w1[i] - w2[i]));
        cr_assert(diff <= 1e-4 * fmax(1.0, max_abs(w2, ff)), "%s layer %d: %g", path, l, diff);
    }
    free(a), free(w1), free(w2);
    model_close(m);
}

Test(trace, value_dots_fast_vs_naive, .timeout = 120) {
    check_dots(tu_sharedp(M260 "stories260K.bin"));      /* F32 (d, n_ff) */
    check_dots(tu_sharedp(M260 "stories260K-f16.gguf")); /* F16 blocks */
    check_dots(tu_sharedp(M260 "stories260K-q8_0.gguf"));
    char *dir = tu_tmpdir(), *err = NULL;
    const char *kinds[] = {"--arch gpt2", "--arch gpt2 --dtype bf16", "--arch llama --dtype bf16"};
    for (int k = 0; k < 3; k++) {
        int rc = tu_runf(NULL, &err, "%s tests/ref/make_hf_model.py %s --out %s/m%d", tu_py(),
                         kinds[k], dir, k);
        cr_assert_eq(rc, 0, "%s", err);
        free(err);
        char p[4200];
        snprintf(p, sizeof p, "%s/m%d", dir, k);
        check_dots(p);
    }
    tu_runf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir);
}

/* ---- CSV, report, help
 * --------------------------------------------------------------------------- */

Test(trace, csv_reads_in_pandas_and_matches_h5, .timeout = 120) {
    char *dir = tu_tmpdir(), *out = NULL, *err = NULL;
    int rc = tu_runf(NULL, &err,
                     "%s trace %s --prompt 'Lily, \"the\" cat,' --ablate 3:5 --neurons 6 "
                     "--layer 1,3 --quiet --out %s/t.csv && "
                     "%s trace %s --prompt 'Lily, \"the\" cat,' --ablate 3:5 --neurons 6 "
                     "--quiet --out %s/t.h5",
                     tu_bin(), stories_args(), dir, tu_bin(), stories_args(), dir);
    cr_assert_eq(rc, 0, "%s", err);
    free(err);
    const char *py =
        "import sys, json, h5py, numpy as np, pandas as pd\n"
        "d = sys.argv[1]\n"
        "c = pd.read_csv(d + '/t.csv')\n"
        "assert list(c.columns) == ['run','position','target_id','target','ranking','layer',"
        "'neuron','activation','value_norm','contribution','rank','top_tokens','gate_act','up'], "
        "list(c.columns)\n"
        "assert len(c) == 2 * 2 * 2 * 6, len(c)\n"
        "assert set(c.layer) == {1, 3} and set(c.run) == {'base', 'intervened'}\n"
        "f = h5py.File(d + '/t.h5')\n"
        "for _, r in c.iterrows():\n"
        "    g = f['%s/pos_%d' % (r.run, r.position)]\n"
        "    l, n = r.layer, r.neuron\n"
        "    key = 'top_by_contribution' if r.ranking == 'contribution' else 'top_by_norm'\n"
        "    assert g[key][l][r['rank']] == n\n"
        "    assert np.isclose(g['contribution'][l, n], r.contribution, rtol=1e-6, atol=1e-7)\n"
        "    assert np.isclose(g['key_act'][l, n], r.activation, rtol=1e-6, atol=1e-7)\n"
        "    assert np.isclose(f['value_norm'][l, n], r.value_norm, rtol=1e-6)\n"
        "    assert np.isclose(g['gate_act'][l, n] * g['up'][l, n], r.gate_act * r.up, rtol=1e-4, "
        "atol=1e-6)\n"
        "    toks = json.loads(r.top_tokens)\n"
        "    assert len(toks) == 5 and all(isinstance(s, str) for s in toks)\n"
        "assert c[(c.run == 'intervened') & (c.layer == 3) & (c.neuron == "
        "5)].activation.eq(0).all()\n"
        "print('csv ok', len(c))\n";
    char pyf[4200];
    snprintf(pyf, sizeof pyf, "%s/check.py", dir);
    FILE *fp = fopen(pyf, "w");
    fputs(py, fp);
    fclose(fp);
    rc = tu_runf(&out, &err, "%s %s %s", tu_py(), pyf, dir);
    cr_assert_eq(rc, 0, "%s%s", out, err);
    cr_assert(strstr(out, "csv ok"), "%s", out);
    free(out);
    free(err);
    tu_runf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir);
}

Test(trace, report_and_help) {
    char *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err,
                     "%s trace %s --prompt 'Lily wanted to' --target ' play' --ablate 4:29 "
                     "--generate 5 --layer 4",
                     tu_bin(), stories_args());
    cr_assert_eq(rc, 0, "%s", err);
    const char *want[] = {"target \" play\"",
                          "lens before FFN",
                          "lens after  FFN",
                          "FFN output",
                          "sub-updates by |m|*||v||",
                          "sub-updates by contribution",
                          "act(gate)",
                          "signs",
                          "interventions at position 4",
                          "unmodified:",
                          "intervened:",
                          "4:29"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_assert(strstr(out, want[i]), "report lacks '%s':\n%s", want[i], out);
    cr_assert(!strstr(out, "layer 3\n"), "--layer 4 printed layer 3");
    free(out);
    free(err);
    rc = tu_runf(&out, NULL, "%s trace --help", tu_bin());
    cr_assert_eq(rc, 0);
    const char *flags[] = {"--model",        "--tokenizer", "--prompt",        "--target ",
                           "--target-id",    "--position",  "--all-positions", "--top",
                           "--neurons",      "--promoted",  "--layer",         "--ablate ",
                           "--scale",        "--set",       "--on ",           "--ablate-top",
                           "--intervene-at", "--generate",  "--out",           "--quiet",
                           "--no-bos",       "--threads",   "sigma",           "(u_t * g)",
                           "LayerNorm",      "example"};
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++)
        cr_assert(strstr(out, flags[i]), "--help lacks '%s'", flags[i]);
    free(out);
}

/* ---- Bad input
 * ------------------------------------------------------------------------------------- */

static void expect_trace_fail(const char *args, const char *needle, const char *needle2,
                              const char *dir) {
    char *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err, "%s trace %s --out %s/x.h5", tu_bin(), args, dir);
    cr_assert(rc > 0 && rc < 128, "expected a clean failure (exit %d): %s", rc, args);
    cr_assert_eq(tu_lines(err), 1, "want one line on stderr for %s, got:\n%s", args, err);
    cr_assert(strstr(err, needle), "stderr lacks '%s' for %s: %s", needle, args, err);
    if (needle2)
        cr_assert(strstr(err, needle2), "stderr lacks '%s' for %s: %s", needle2, args, err);
    char p[4200];
    snprintf(p, sizeof p, "%s/x.h5", dir);
    cr_assert(!tu_exists(p), "output left behind by %s", args);
    cr_assert(tu_no_temp_files(dir), "temporary left behind by %s", args);
    free(out);
    free(err);
}

Test(trace, bad_input) {
    char *dir = tu_tmpdir(), a[16384];
    const char *S = stories_args();
    struct {
        const char *args, *n1, *n2;
    } cases[] = {
        {"--prompt 'Lily went to' --target ' Paris'", "not one token", "--target-id"},
        {"--prompt 'Lily went to' --target ' Paris'", "tokenizes as", "(id "},
        {"--prompt 'Lily went to' --target-id 512", "outside the vocabulary", "0..511"},
        {"--prompt 'Lily went to' --target ' play' --target-id 3", "not both", NULL},
        {"--prompt 'Lily went to' --ablate 5:1", "layer 5 is out of range", "0..4"},
        {"--prompt 'Lily went to' --ablate 1:172", "neuron 172 is out of range", "0..171"},
        {"--prompt 'Lily went to' --on 1:2,7:1", "layer 7", "--on"},
        {"--prompt 'Lily went to' --ablate 1-3", "'1-3' is not understood", "L:N"},
        {"--prompt 'Lily went to' --ablate 1:3,", "not understood", NULL},
        {"--prompt 'Lily went to' --ablate ''", "empty", NULL},
        {"--prompt 'Lily went to' --scale 1:3", "not understood", "L:N=x"},
        {"--prompt 'Lily went to' --scale 1:3=abc", "not understood", NULL},
        {"--prompt 'Lily went to' --set 1:3=nan", "not understood", NULL},
        {"--prompt 'Lily went to' --ablate 1:3 --scale 1:3=2", "two interventions", "1:3"},
        {"--prompt 'Lily went to' --position 9", "position 9 is out of range", "0..4"},
        {"--prompt 'Lily went to' --position -1", "--position", NULL},
        {"--prompt 'Lily went to' --ablate-top 3 --all-positions", "single traced position", NULL},
        {"--prompt 'Lily went to' --ablate-top 100000", "cannot ablate the top 100000", "860"},
        {"--prompt 'Lily went to' --intervene-at some", "traced or all", NULL},
        {"--target ' play'", "--prompt", NULL},
        {"--prompt ''", "empty", NULL},
        {"--prompt 'Lily went to' --generate 600", "context", NULL},
        {"--prompt 'Lily went to' --top 0", "--top", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(a, sizeof a, "%s %s", S, cases[i].args);
        expect_trace_fail(a, cases[i].n1, cases[i].n2, dir);
    }
    /* A wrong extension is refused before any work. */
    char *err = NULL;
    int rc = tu_runf(NULL, &err, "%s trace %s --prompt 'Lily' --out %s/x.txt", tu_bin(), S, dir);
    cr_assert_eq(rc, 2);
    cr_assert(strstr(err, ".csv"), "%s", err);
    free(err);
    tu_runf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir);
}
