/* Demo model tests: build/mkdemo turns data/facts.csv into a GPT-2 folder
 * whose FFN neurons are planted key-value memories, and ground_truth.csv says
 * where each one is.  Checked here against that ground truth:
 *   - greedy next token = the object for every prompt of every fact
 *     (in-process, the same encode + forward + argmax as `probe generate`;
 *     the CLI itself on one prompt per relation);
 *   - `probe values`: each planted neuron's top token is its object;
 *   - trace (analysis/trace): at the planted layer the planted neuron ranks
 *     first by contribution to the object's logit and is the layer's top key
 *     activation; ablating it removes the object from the top-1 prediction;
 *   - the folder loads in an independent reader (tests/ref/hf_ref.py, numpy)
 *     that computes the same activations and logits;
 *   - the generator is deterministic and rejects fact tables it cannot plant.
 * The generator is $PROBE_MKDEMO (default build/mkdemo), the facts
 * $PROBE_FACTS (default data/facts.csv); each test builds its own copy of the
 * model in a temporary folder. */
#include "tutil.h"

#include "analysis/trace.h"
#include "core/err.h"
#include "core/fwd.h"
#include "core/model.h"
#include "core/tok.h"

#include <criterion/criterion.h>
#include <csv.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* OpenBLAS (linked as GSL's CBLAS) has no header here.  The forward passes
 * below are a few tokens each: one thread is fastest, and the suite runs two
 * tests at a time anyway. */
void openblas_set_num_threads(int n);

static void one_thread(void) {
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
}

static const char *mkdemo_bin(void) {
    const char *v = getenv("PROBE_MKDEMO");
    return v && *v ? v : "build/mkdemo";
}

static const char *facts_csv(void) {
    const char *v = getenv("PROBE_FACTS");
    return v && *v ? v : "data/facts.csv";
}

/* ---- CSV tables through libcsv ------------------------------------------------ */

typedef struct {
    char ***row; /* (n) rows of (ncol[i]) fields, row 0 the header */
    int *ncol;
    int n, cap, cur_n, cur_cap;
    char **cur;
} table_t;

static void tb_field(void *s, size_t len, void *data) {
    table_t *t = data;
    if (t->cur_n == t->cur_cap) {
        t->cur_cap = t->cur_cap ? 2 * t->cur_cap : 8;
        t->cur = realloc(t->cur, (size_t)t->cur_cap * sizeof *t->cur);
        cr_assert(t->cur);
    }
    char *f = malloc(len + 1);
    cr_assert(f);
    if (len) memcpy(f, s, len);
    f[len] = '\0';
    t->cur[t->cur_n++] = f;
}

static void tb_row(int c, void *data) {
    (void)c;
    table_t *t = data;
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->row = realloc(t->row, (size_t)t->cap * sizeof *t->row);
        t->ncol = realloc(t->ncol, (size_t)t->cap * sizeof *t->ncol);
        cr_assert(t->row && t->ncol);
    }
    t->row[t->n] = t->cur;
    t->ncol[t->n++] = t->cur_n;
    t->cur = NULL;
    t->cur_n = t->cur_cap = 0;
}

static table_t tb_read(const char *path) {
    table_t t = {0};
    size_t n = 0;
    char *buf = tu_slurp(path, &n);
    cr_assert(buf, "cannot read %s", path);
    struct csv_parser p;
    cr_assert_eq(csv_init(&p, CSV_STRICT | CSV_STRICT_FINI), 0);
    cr_assert_eq(csv_parse(&p, buf, n, tb_field, tb_row, &t), n, "%s: %s", path,
                 csv_strerror(csv_error(&p)));
    cr_assert_eq(csv_fini(&p, tb_field, tb_row, &t), 0, "%s: %s", path,
                 csv_strerror(csv_error(&p)));
    csv_free(&p);
    free(buf);
    cr_assert(t.n >= 2, "%s: no data rows", path);
    return t;
}

/* Column index of NAME in the header, asserting it exists. */
static int tb_col(const table_t *t, const char *name) {
    for (int j = 0; j < t->ncol[0]; j++)
        if (!strcmp(t->row[0][j], name)) return j;
    cr_assert_fail("no column '%s'", name);
    return -1;
}

static const char *tb_get(const table_t *t, int i, int col) {
    cr_assert(col < t->ncol[i], "row %d has %d fields", i, t->ncol[i]);
    return t->row[i][col];
}

static void tb_free(table_t *t) {
    for (int i = 0; i < t->n; i++) {
        for (int j = 0; j < t->ncol[i]; j++)
            free(t->row[i][j]);
        free(t->row[i]);
    }
    free(t->row);
    free(t->ncol);
}

/* ---- The model under test -------------------------------------------------------- */

typedef struct {
    int layer, neuron;
    char subject[128], relation[64], object[64];
} planted_t;

typedef struct {
    char *tmp;     /* temporary folder (owned) */
    char dir[512]; /* the model folder in it */
    planted_t *f;  /* (n_facts) by fact_id */
    int n_facts;
    table_t prompts; /* fact_id,prompt,object */
    int c_fact, c_prompt, c_object;
} demo_t;

static void demo_build_into(const char *facts, const char *dir) {
    char *err = NULL;
    int rc = tu_runf(NULL, &err, "%s --facts %s --out %s", mkdemo_bin(), facts, dir);
    cr_assert_eq(rc, 0, "mkdemo (%s) failed with %d: %s", mkdemo_bin(), rc, err ? err : "");
    free(err);
}

static void demo_open(demo_t *d) {
    memset(d, 0, sizeof *d);
    one_thread();
    d->tmp = tu_tmpdir();
    cr_assert(d->tmp);
    snprintf(d->dir, sizeof d->dir, "%s/demo-model", d->tmp);
    demo_build_into(facts_csv(), d->dir);
    char p[600];
    snprintf(p, sizeof p, "%s/ground_truth.csv", d->dir);
    table_t g = tb_read(p);
    int cf = tb_col(&g, "fact_id"), cl = tb_col(&g, "layer"), cn = tb_col(&g, "neuron"),
        cs = tb_col(&g, "subject"), cr = tb_col(&g, "relation"), co = tb_col(&g, "object");
    d->n_facts = g.n - 1;
    d->f = calloc((size_t)d->n_facts, sizeof *d->f);
    cr_assert(d->f);
    for (int i = 1; i < g.n; i++) {
        int id = atoi(tb_get(&g, i, cf));
        cr_assert(id == i - 1, "ground_truth.csv: fact ids are not 0..n-1 in order");
        planted_t *f = &d->f[id];
        f->layer = atoi(tb_get(&g, i, cl));
        f->neuron = atoi(tb_get(&g, i, cn));
        snprintf(f->subject, sizeof f->subject, "%s", tb_get(&g, i, cs));
        snprintf(f->relation, sizeof f->relation, "%s", tb_get(&g, i, cr));
        snprintf(f->object, sizeof f->object, "%s", tb_get(&g, i, co));
    }
    tb_free(&g);
    snprintf(p, sizeof p, "%s/prompts.csv", d->dir);
    d->prompts = tb_read(p);
    d->c_fact = tb_col(&d->prompts, "fact_id");
    d->c_prompt = tb_col(&d->prompts, "prompt");
    d->c_object = tb_col(&d->prompts, "object");
}

static void demo_close(demo_t *d) {
    if (d->tmp) tu_runf(NULL, NULL, "rm -rf '%s'", d->tmp);
    free(d->tmp);
    free(d->f);
    tb_free(&d->prompts);
}

/* Token id of word W as the model writes it after a prompt (" W"). */
static int word_id(const tok_t *t, const char *w) {
    char b[128];
    snprintf(b, sizeof b, " %s", w);
    return tok_lookup_text(t, b);
}

static int argmax(const float *v, int n) {
    int b = 0;
    for (int j = 1; j < n; j++)
        if (v[j] > v[b]) b = j;
    return b;
}

/* ---- Greedy completion -------------------------------------------------------------- */

Test(demo, greedy_completes_every_prompt, .timeout = 120) {
    demo_t d;
    demo_open(&d);
    cr_assert_geq(d.n_facts, 150, "only %d facts", d.n_facts);
    model_t *m = model_open(d.dir, NULL);
    cr_assert(m, "model_open: %s", err_msg());
    cr_assert(m->tok, "no tokenizer");
    cr_assert_eq(m->cfg.arch, ARCH_GPT2);
    cr_assert_eq(m->cfg.n_layer, 16);
    fwd_t *f = fwd_new(m, m->cfg.max_seq, m->cfg.max_seq);
    cr_assert(f, "%s", err_msg());
    float *logits = malloc((size_t)m->cfg.vocab * sizeof *logits);
    cr_assert(logits);
    int n = 0, bad = 0;
    for (int i = 1; i < d.prompts.n; i++) {
        const char *prompt = tb_get(&d.prompts, i, d.c_prompt);
        const char *obj = tb_get(&d.prompts, i, d.c_object);
        int *ids = NULL, T = 0, want = word_id(m->tok, obj);
        cr_assert(want >= 0, "object '%s' is not a token", obj);
        cr_assert_eq(
            tok_encode(m->tok, prompt, strlen(prompt), m->tok->add_bos ? TOK_ADD_BOS : 0, &ids, &T),
            0, "%s", err_msg());
        cr_assert_eq(fwd_eval(f, ids, T, 0, logits, FWD_LOGITS_LAST), 0, "%s", err_msg());
        int got = argmax(logits, m->cfg.vocab);
        if (got != want && bad++ < 10) {
            char b[128];
            cr_log_error("'%s' -> '%s', expected '%s'", prompt,
                         tok_display(m->tok, got, b, sizeof b), obj);
        }
        n++;
        free(ids);
    }
    cr_log_info("greedy: %d of %d prompts completed with their object", n - bad, n);
    cr_assert_eq(bad, 0, "%d of %d prompts not completed with their object", bad, n);
    free(logits);
    fwd_free(f);
    model_close(m);

    /* The CLI itself: the first prompt of each relation. */
    char seen[16][64] = {{0}};
    int ns = 0;
    for (int i = 1; i < d.prompts.n; i++) {
        const planted_t *pf = &d.f[atoi(tb_get(&d.prompts, i, d.c_fact))];
        int dup = 0;
        for (int k = 0; k < ns; k++)
            dup |= !strcmp(seen[k], pf->relation);
        if (dup || ns == 16) continue;
        snprintf(seen[ns++], sizeof seen[0], "%s", pf->relation);
        const char *prompt = tb_get(&d.prompts, i, d.c_prompt);
        char *out = NULL, *err = NULL, want[512];
        int rc =
            tu_runf(&out, &err, "%s generate --model %s --prompt '%s' --greedy -n 1 --threads 1",
                    tu_bin(), d.dir, prompt);
        cr_assert_eq(rc, 0, "generate '%s': exit %d: %s", prompt, rc, err);
        snprintf(want, sizeof want, "%s %s\n", prompt, pf->object);
        cr_assert_str_eq(out, want, "generate '%s'", prompt);
        free(out);
        free(err);
    }
    cr_assert_geq(ns, 6, "only %d relations", ns);
    demo_close(&d);
}

/* A prompt no fact matches: no neuron fires, the model predicts end of text. */
Test(demo, unknown_prompt_predicts_end_of_text) {
    demo_t d;
    demo_open(&d);
    char *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err, "%s generate --model %s --prompt 'The weather in spring is' -n 3",
                     tu_bin(), d.dir);
    cr_assert_eq(rc, 0, "%s", err);
    /* Unknown words are <unk>; generation stops at <|endoftext|> at once. */
    cr_assert_str_eq(out, "The <unk> in <unk> is\n");
    free(out);
    free(err);
    demo_close(&d);
}

/* ---- Value vectors ------------------------------------------------------------------------ */

Test(demo, values_top_token_is_the_object, .timeout = 60) {
    demo_t d;
    demo_open(&d);
    size_t cap = (size_t)d.n_facts * 32 + 1024, o = 0;
    char *cmd = malloc(cap), *tmp = tu_tmpdir();
    cr_assert(cmd && tmp);
    o += (size_t)snprintf(cmd + o, cap - o, "%s values --model %s --top 2 --out %s/v.csv", tu_bin(),
                          d.dir, tmp);
    for (int i = 0; i < d.n_facts; i++)
        o += (size_t)snprintf(cmd + o, cap - o, " --neuron %d:%d", d.f[i].layer, d.f[i].neuron);
    char *err = NULL;
    int rc = tu_run(cmd, NULL, &err);
    cr_assert_eq(rc, 0, "probe values: exit %d: %s", rc, err);
    char p[600];
    snprintf(p, sizeof p, "%s/v.csv", tmp);
    table_t v = tb_read(p);
    int cl = tb_col(&v, "layer"), cn = tb_col(&v, "neuron"), cd = tb_col(&v, "direction"),
        ck = tb_col(&v, "rank"), ct = tb_col(&v, "token"), cs = tb_col(&v, "score");
    int checked = 0;
    for (int i = 0; i < d.n_facts; i++) {
        const planted_t *f = &d.f[i];
        char want[80];
        snprintf(want, sizeof want, " %s", f->object);
        int found = 0;
        double s0 = 0, s1 = 0;
        for (int r = 1; r < v.n; r++) {
            if (atoi(tb_get(&v, r, cl)) != f->layer || atoi(tb_get(&v, r, cn)) != f->neuron ||
                strcmp(tb_get(&v, r, cd), "top"))
                continue;
            int rank = atoi(tb_get(&v, r, ck));
            if (rank == 0) {
                cr_expect_str_eq(tb_get(&v, r, ct), want, "neuron %d:%d (%s %s): top token",
                                 f->layer, f->neuron, f->subject, f->relation);
                s0 = atof(tb_get(&v, r, cs));
                found = 1;
            } else if (rank == 1) {
                s1 = atof(tb_get(&v, r, cs));
            }
        }
        cr_expect(found, "neuron %d:%d missing from the values table", f->layer, f->neuron);
        cr_expect_gt(s0 - s1, 1.0, "neuron %d:%d: top token not clearly ahead (%g vs %g)", f->layer,
                     f->neuron, s0, s1);
        checked += found;
    }
    cr_assert_eq(checked, d.n_facts);
    tb_free(&v);
    tu_runf(NULL, NULL, "rm -rf '%s'", tmp);
    free(tmp);
    free(cmd);
    free(err);
    demo_close(&d);
}

/* ---- Trace: attribution and ablation -------------------------------------------------- */

Test(demo, trace_ranks_planted_neuron_and_ablation_removes_object, .timeout = 180) {
    demo_t d;
    demo_open(&d);
    model_t *m = model_open(d.dir, NULL);
    cr_assert(m, "model_open: %s", err_msg());
    trace_opts_t o = {.k_tokens = 3, .k_neurons = 3, .k_promoted = 1};
    int n = 0, bad = 0, nf = m->cfg.n_ff;
    double min_key = 1e30, min_gap = 1e30;
    for (int i = 1, prev = -1; i < d.prompts.n; i++) {
        /* Every fact, through its first prompt (greedy_completes_every_prompt
         * covers the others). */
        int fid = atoi(tb_get(&d.prompts, i, d.c_fact));
        if (fid == prev) continue;
        prev = fid;
        const planted_t *f = &d.f[fid];
        const char *prompt = tb_get(&d.prompts, i, d.c_prompt);
        int obj = word_id(m->tok, f->object), *ids = NULL, T = 0;
        cr_assert(obj >= 0);
        cr_assert_eq(
            tok_encode(m->tok, prompt, strlen(prompt), m->tok->add_bos ? TOK_ADD_BOS : 0, &ids, &T),
            0);
        int last = T - 1;
        trace_t *t = trace_new(m, ids, T, &last, 1, &o);
        cr_assert(t, "trace_new: %s", err_msg());
        cr_assert_eq(trace_run_base(t, obj), 0, "%s", err_msg());
        const trace_pos_t *p = &t->base.pos[0];
        const float *key = p->key + (size_t)f->layer * nf;
        const float *con = p->contrib + (size_t)f->layer * nf;
        int first = p->by_contrib[(size_t)f->layer * o.k_neurons];
        int top_key = argmax(key, nf);
        /* Runner-up contribution at that layer, for the margin. */
        float second = -1e30f;
        for (int j = 0; j < nf; j++)
            if (j != f->neuron && con[j] > second) second = con[j];
        if (key[f->neuron] < min_key) min_key = key[f->neuron];
        if (con[f->neuron] - second < min_gap) min_gap = con[f->neuron] - second;
        int ok = first == f->neuron && top_key == f->neuron && p->top_ids[0] == obj;
        trace_iv_t iv = {.layer = f->layer, .neuron = f->neuron, .kind = TRACE_IV_ABLATE};
        cr_assert_eq(trace_run_intervened(t, &iv, 1), 0, "%s", err_msg());
        int after = t->iv.pos[0].top_ids[0];
        ok &= after != obj;
        if (!ok && bad++ < 10)
            cr_log_error("'%s' (%d:%d): first by contribution %d, top key %d, prediction %d, after "
                         "ablation %d (object %d)",
                         prompt, f->layer, f->neuron, first, top_key, p->top_ids[0], after, obj);
        n++;
        trace_free(t);
        free(ids);
    }
    cr_log_info("trace: %d facts; planted key activation >= %.3f, contribution lead >= %.3f logits",
                n, min_key, min_gap);
    cr_assert_eq(n, d.n_facts);
    cr_assert_eq(bad, 0, "%d of %d facts failed the trace checks", bad, n);
    cr_assert_gt(min_key, 4.0);
    cr_assert_gt(min_gap, 5.0);
    model_close(m);

    /* The CLI on the design card's example. */
    for (int i = 0; i < d.n_facts; i++) {
        if (strcmp(d.f[i].subject, "Eiffel Tower")) continue;
        cr_assert_eq(d.f[i].layer, 12, "the Eiffel Tower fact should sit at layer 12");
        char *out = NULL, *err = NULL, want[64];
        int rc = tu_runf(&out, &err,
                         "%s trace --model %s --prompt 'The Eiffel Tower is in' --target ' Paris' "
                         "--layer 12 --neurons 3 --ablate 12:%d",
                         tu_bin(), d.dir, d.f[i].neuron);
        cr_assert_eq(rc, 0, "probe trace: exit %d: %s", rc, err);
        cr_assert(strstr(out, "prediction: target rank 0"), "%s", out);
        snprintf(want, sizeof want, "12:%d    ablate", d.f[i].neuron);
        cr_assert(strstr(out, want), "no intervention line '%s' in:\n%s", want, out);
        cr_assert(strstr(out, "rank 0 -> ") && !strstr(out, "rank 0 -> 0,"),
                  "ablation did not move ' Paris' from rank 0:\n%s", out);
        free(out);
        free(err);
    }
    demo_close(&d);
}

/* ---- Independent reader --------------------------------------------------------------------- */

Test(demo, numpy_reference_agrees, .timeout = 120) {
    demo_t d;
    demo_open(&d);
    cr_assert(tu_exists("tests/ref/hf_ref.py"), "tests/ref/hf_ref.py is missing");
    char *tmp = tu_tmpdir(), p[600];
    snprintf(p, sizeof p, "%s/prompts.txt", tmp);
    FILE *fp = fopen(p, "w");
    cr_assert(fp);
    /* One prompt per relation, plus one no fact matches. */
    char seen[16][64] = {{0}};
    int ns = 0;
    for (int i = 1; i < d.prompts.n && ns < 16; i++) {
        const planted_t *pf = &d.f[atoi(tb_get(&d.prompts, i, d.c_fact))];
        int dup = 0;
        for (int k = 0; k < ns; k++)
            dup |= !strcmp(seen[k], pf->relation);
        if (dup) continue;
        snprintf(seen[ns++], sizeof seen[0], "%s", pf->relation);
        fprintf(fp, "%s\n", tb_get(&d.prompts, i, d.c_prompt));
    }
    fprintf(fp, "The weather in spring is\n");
    fclose(fp);
    char *out = NULL, *err = NULL;
    int rc =
        tu_runf(NULL, &err, "%s activations --model %s --prompt-file %s --out %s/a.h5 --logits",
                tu_bin(), d.dir, p, tmp);
    cr_assert_eq(rc, 0, "probe activations: exit %d: %s", rc, err);
    free(err);
    rc = tu_runf(&out, &err, "%s tests/ref/hf_ref.py --model %s --h5 %s/a.h5", tu_py(), d.dir, tmp);
    cr_log_info("%s", out ? out : "");
    cr_assert_eq(rc, 0, "hf_ref.py: exit %d: %s%s", rc, out, err);
    cr_assert(strstr(out, "hf_ref: OK"), "%s", out);
    free(out);
    free(err);
    tu_runf(NULL, NULL, "rm -rf '%s'", tmp);
    free(tmp);
    demo_close(&d);
}

/* ---- The generator ------------------------------------------------------------------------------
 */

Test(demo, generator_is_deterministic, .timeout = 60) {
    char *a = tu_tmpdir(), *b = tu_tmpdir(), pa[600], pb[600];
    cr_assert(a && b);
    snprintf(pa, sizeof pa, "%s/m", a);
    snprintf(pb, sizeof pb, "%s/m", b);
    demo_build_into(facts_csv(), pa);
    demo_build_into(facts_csv(), pb);
    static const char *files[] = {"config.json",           "model.safetensors", "tokenizer.json",
                                  "tokenizer_config.json", "ground_truth.csv",  "keys.csv",
                                  "prompts.csv",           "README.md"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        int rc = tu_runf(NULL, NULL, "cmp -s %s/%s %s/%s", pa, files[i], pb, files[i]);
        cr_expect_eq(rc, 0, "%s differs between two builds", files[i]);
    }
    cr_assert(tu_no_temp_files(pa), "temporary files left in %s", pa);
    /* --where answers from the same placement. */
    char *out = NULL;
    cr_assert_eq(
        tu_runf(&out, NULL, "%s --facts %s --where 'Eiffel Tower'", mkdemo_bin(), facts_csv()), 0);
    cr_assert(out && !strncmp(out, "12:", 3), "--where: %s", out);
    free(out);
    tu_runf(NULL, NULL, "rm -rf '%s' '%s'", a, b);
    free(a);
    free(b);
}

static void expect_rejected(const char *csv_text, const char *msg) {
    char *tmp = tu_tmpdir(), p[600];
    snprintf(p, sizeof p, "%s/facts.csv", tmp);
    FILE *fp = fopen(p, "w");
    cr_assert(fp);
    fputs(csv_text, fp);
    fclose(fp);
    char *err = NULL;
    int rc = tu_runf(NULL, &err, "%s --facts %s --out %s/m", mkdemo_bin(), p, tmp);
    cr_expect_eq(rc, 1, "exit %d for a bad table (%s)", rc, msg);
    cr_expect(err && strstr(err, msg), "message should mention '%s': %s", msg, err);
    free(err);
    tu_runf(NULL, NULL, "rm -rf '%s'", tmp);
    free(tmp);
}

Test(demo, generator_rejects_bad_tables) {
    static const char H[] = "relation,subject,object,prompts\n";
    char b[1024];
    /* Two facts whose prompts cannot be told apart. */
    snprintf(b, sizeof b, "%s%s", H,
             "country_capital,France,Paris,The capital of France is\n"
             "country_language,France,French,The capital of France is\n");
    expect_rejected(b, "reword one of them");
    snprintf(b, sizeof b, "%s%s", H,
             "country_anthem,France,Marseillaise,The anthem of France is\n");
    expect_rejected(b, "relation 'country_anthem'");
    snprintf(b, sizeof b, "%s%s", H, "city_country,Paris,United States,Paris is a city in\n");
    expect_rejected(b, "must be one word");
    expect_rejected("subject,object\nFrance,Paris\n", "expected the header");
    snprintf(b, sizeof b, "%s%s", H, "city_country,Paris,France\n");
    expect_rejected(b, "expected 4");
    snprintf(b, sizeof b, "%s%s", H, "city_country,Paris,France,\"Paris is a city in\n");
    expect_rejected(b, "CSV error");
}

/* Any fact table builds a working model: a tiny one, end to end. */
Test(demo, generator_builds_any_table, .timeout = 60) {
    char *tmp = tu_tmpdir(), p[600];
    snprintf(p, sizeof p, "%s/facts.csv", tmp);
    FILE *fp = fopen(p, "w");
    cr_assert(fp);
    fputs("relation,subject,object,prompts\n"
          "country_capital,Chile,Santiago,The capital of Chile is|Chile has its capital in\n"
          "element_symbol,neon,Ne,\"The element neon, written as\"\n",
          fp);
    fclose(fp);
    char dir[700];
    snprintf(dir, sizeof dir, "%s/m", tmp);
    demo_build_into(p, dir);
    const char *cases[][2] = {{"The capital of Chile is", "Santiago"},
                              {"Chile has its capital in", "Santiago"},
                              {"The element neon, written as", "Ne"}};
    for (int i = 0; i < 3; i++) {
        char *out = NULL, *err = NULL, want[256];
        int rc = tu_runf(&out, &err, "%s generate --model %s --prompt '%s' -n 1", tu_bin(), dir,
                         cases[i][0]);
        cr_assert_eq(rc, 0, "%s", err);
        snprintf(want, sizeof want, "%s %s\n", cases[i][0], cases[i][1]);
        cr_assert_str_eq(out, want);
        free(out);
        free(err);
    }
    tu_runf(NULL, NULL, "rm -rf '%s'", tmp);
    free(tmp);
}
