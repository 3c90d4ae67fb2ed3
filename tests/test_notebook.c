/* notebooks-export tests: `probe notebook` and `probe plot` on real results.
 *
 * For each analysis whose command exists (`$PROBE_BIN CMD --help` exits 0),
 * results are made on a fresh copy of the demo model; the HDF5 result's
 * notebook is executed headless by Debian's Jupyter (/usr/bin/jupyter
 * nbconvert --execute) and checked by tests/ref/check_notebook.py (valid
 * nbformat 4, no errors, an image from every cell tagged "plot"); the other
 * variants' notebooks are written and checked without running.  Figures are
 * drawn as PNG and SVG and checked by the PNG header here and by
 * tests/ref/check_image.py (size, not blank, coloured data).  Executing a
 * notebook costs several seconds of CPU, so each analysis executes one; the
 * four tests run in parallel under --jobs. */
#include "tutil.h"

#include "core/err.h"
#include "notebooks-export/notebook.h"
#include "notebooks-export/result.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JUPYTER "/usr/bin/jupyter"

static int have_command(const char *cmd) {
    return tu_runf(NULL, NULL, "%s %s --help", tu_bin(), cmd) == 0;
}

/* Writes the demo model (planted facts, Hugging Face GPT-2 folder) into DIR
 * with $PROBE_MKDEMO and $PROBE_FACTS, as tests/test_demo.c does: every test
 * has its own copy, whatever the state of data/demo-model.  Returns the
 * --model argument. */
static const char *demo_model(const char *dir) {
    static _Thread_local char b[4300];
    const char *mk = getenv("PROBE_MKDEMO"), *facts = getenv("PROBE_FACTS");
    char *err = NULL;
    int rc =
        tu_runf(NULL, &err, "%s --facts %s --out %s/demo-model >/dev/null",
                mk && *mk ? mk : "build/mkdemo", facts && *facts ? facts : "data/facts.csv", dir);
    cr_assert_eq(rc, 0, "the demo model generator failed: %s", err);
    free(err);
    snprintf(b, sizeof b, "--model %s/demo-model", dir);
    return b;
}

/* Removes DIR's demo model copy (35 MB) when the test has passed. */
static void demo_drop(const char *dir) {
    cr_assert_eq(tu_runf(NULL, NULL, "rm -rf %s/demo-model", dir), 0);
}

/* A prompt whose fact the demo model stores (in layer 2, the currencies). */
#define PROMPT "The currency of Japan is the"

/* Runs a probe command (printf-style) that must succeed. */
static void run_ok(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void run_ok(const char *what, const char *fmt, ...) {
    char cmd[16384], *err = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = tu_run(cmd, NULL, &err);
    cr_assert_eq(rc, 0, "%s: exit %d: %s", what, rc, err ? err : "");
    free(err);
}

/* Writes DIR/RESULT.ipynb for DIR/RESULT (from another working directory). */
static void notebook_write(const char *dir, const char *result) {
    char *err = NULL;
    int rc = tu_runf(NULL, &err, "cd / && %s notebook %s/%s --out %s/%s.ipynb", tu_bin(), dir,
                     result, dir, result);
    cr_assert_eq(rc, 0, "notebook %s: %s", result, err);
    free(err);
}

/* Checks a notebook with tests/ref/check_notebook.py (FLAGS: its options). */
static void notebook_check(const char *path, const char *kind, const char *flags) {
    char *out = NULL, *err = NULL;
    int rc =
        tu_runf(&out, &err, "%s tests/ref/check_notebook.py %s %s %s", tu_py(), flags, path, kind);
    cr_assert_eq(rc, 0, "%s\n%s", out, err);
    cr_assert(strstr(out, "check_notebook: OK"), "%s", out);
    cr_log_info("%s", out);
    free(out);
    free(err);
}

/* A notebook written and checked without running it: valid nbformat 4, the
 * header and imports first, plot cells present. */
static void notebook_built(const char *dir, const char *result, const char *kind) {
    char nb[4300];
    notebook_write(dir, result);
    snprintf(nb, sizeof nb, "%s/%s.ipynb", dir, result);
    notebook_check(nb, kind, "--unexecuted");
}

/* Writes the notebook for RESULT, executes it with Jupyter and checks the
 * outputs.  Under the sanitizers only the writing is checked: Jupyter runs
 * Python, which the sanitizers do not see, and costs seconds per notebook. */
static void notebook_runs(const char *dir, const char *result, const char *kind) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
    notebook_built(dir, result, kind);
    return;
#endif
    char nb[4200], *out = NULL, *err = NULL;
    snprintf(nb, sizeof nb, "%s/%s.ipynb", dir, result);
    notebook_write(dir, result);
    int rc =
        tu_runf(&out, &err,
                "cd %s && PYDEVD_DISABLE_FILE_VALIDATION=1 %s nbconvert --to notebook --execute "
                "--ExecutePreprocessor.timeout=300 %s.ipynb --output %s.out.ipynb",
                dir, JUPYTER, result, result);
    cr_assert_eq(rc, 0, "nbconvert --execute %s failed:\n%s", nb, err);
    free(out);
    free(err);
    snprintf(nb, sizeof nb, "%s/%s.out.ipynb", dir, result);
    notebook_check(nb, kind, "");
}

/* Width and height from a PNG's IHDR chunk, or -1. */
static int png_size(const char *path, uint32_t *w, uint32_t *h) {
    size_t n;
    unsigned char *p = (unsigned char *)tu_slurp(path, &n);
    int ok = p && n > 24 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8) && !memcmp(p + 12, "IHDR", 4);
    if (ok) {
        *w = (uint32_t)p[16] << 24 | (uint32_t)p[17] << 16 | (uint32_t)p[18] << 8 | p[19];
        *h = (uint32_t)p[20] << 24 | (uint32_t)p[21] << 16 | (uint32_t)p[22] << 8 | p[23];
    }
    free(p);
    return ok ? 0 : -1;
}

/* probe plot RESULT as PNG and SVG; both checked. */
static void plot_ok(const char *dir, const char *result, const char *extra) {
    char base[4200], *out = NULL, *err = NULL;
    snprintf(base, sizeof base, "%s/%s", dir, result);
    for (int svg = 0; svg < 2; svg++) {
        const char *ext = svg ? "svg" : "png";
        int rc = tu_runf(NULL, &err, "%s plot %s %s --out %s.%s", tu_bin(), base, extra, base, ext);
        cr_assert_eq(rc, 0, "plot %s.%s: %s", result, ext, err);
        free(err);
        char fig[4300];
        snprintf(fig, sizeof fig, "%s.%s", base, ext);
        if (!svg) {
            uint32_t w, h;
            cr_assert_eq(png_size(fig, &w, &h), 0, "%s is not a PNG", fig);
            cr_assert(w >= 400 && h >= 250 && w <= 8000 && h <= 8000, "%s: %ux%u", fig, w, h);
        }
        rc = tu_runf(&out, &err, "%s tests/ref/check_image.py %s 400 250", tu_py(), fig);
        cr_assert_eq(rc, 0, "%s\n%s", out, err);
        cr_log_info("%s", out);
        free(out);
        free(err);
    }
    cr_assert(tu_no_temp_files(dir), "temporaries left in %s", dir);
}

Test(notebook, activations) {
    if (!have_command("activations")) cr_skip_test("no probe activations");
    char *dir = tu_tmpdir();
    const char *model = demo_model(dir);
    run_ok("activations h5",
           "%s activations %s --layer all --prompt '%s' --prompt 'The capital of France is' --out "
           "%s/acts.h5",
           tu_bin(), model, PROMPT, dir);
    run_ok("activations csv",
           "%s activations %s --layer all --top 5 --prompt '%s' --out %s/acts.csv", tu_bin(), model,
           PROMPT, dir);
    notebook_runs(dir, "acts.h5", "activations");
    notebook_built(dir, "acts.csv", "activations");
    plot_ok(dir, "acts.h5", "");
    /* Of 16 layers the figure shows 6, and among them layer 2, whose planted
     * neuron (ground_truth.csv: Japan -> yen) is the only one that fires. */
    char *out = NULL;
    int rc = tu_runf(&out, NULL, "%s plot %s/acts.h5 --script --out x.png", tu_bin(), dir);
    cr_assert(rc == 0 && out && strstr(out, "set title 'layer 2'"), "layer 2 not drawn:\n%s", out);
    free(out);
    /* One small panel; on the demo model a layer that stores facts (layer 2:
     * currencies), since its other layers are all zero by construction. */
    plot_ok(dir, "acts.csv", "--layer 2 --top 5");
    /* The notebook finds the result beside it by a relative path. */
    char nbp[4300];
    snprintf(nbp, sizeof nbp, "%s/acts.h5.ipynb", dir);
    char *nb = tu_slurp(nbp, NULL);
    cr_assert(nb && strstr(nb, "find(\\\"acts.h5\\\""), "relative path missing");
    free(nb);
    /* Without --out: the result's name with its extension swapped. */
    run_ok("notebook, default out", "%s notebook %s/acts.csv", tu_bin(), dir);
    run_ok("plot, default out", "%s plot %s/acts.csv --layer 2 --top 5", tu_bin(), dir);
    char def[4300];
    snprintf(def, sizeof def, "%s/acts.ipynb", dir);
    cr_assert(tu_exists(def), "probe notebook acts.csv did not write acts.ipynb");
    snprintf(def, sizeof def, "%s/acts.png", dir);
    cr_assert(tu_exists(def), "probe plot acts.csv did not write acts.png");
    demo_drop(dir);
    free(dir);
}

Test(notebook, values) {
    if (!have_command("values")) cr_skip_test("no probe values");
    char *dir = tu_tmpdir();
    const char *model = demo_model(dir);
    char h5[4300], csv[4300], pr[4300];
    snprintf(h5, sizeof h5, "%s/values.h5", dir);
    snprintf(csv, sizeof csv, "%s/values.csv", dir);
    snprintf(pr, sizeof pr, "%s/promotes.h5", dir);
    run_ok("values h5", "%s values %s --layer all --top 10 --bottom 5 --out %s", tu_bin(), model,
           h5);
    /* On the demo model only the planted neurons have values (layer 2 holds
     * currencies); its ground truth names two of them. */
    run_ok("values csv", "%s values %s --layer %d --top 8 --bottom 3 --out %s", tu_bin(), model, 2,
           csv);
    run_ok("values promotes", "%s values %s --token-id 5 --out %s", tu_bin(), model, pr);
    char neurons[256], *out = NULL;
    int rc = tu_runf(&out, NULL,
                     "awk -F, 'NR == 2 || NR == 3 { printf \"--neuron %%s:%%s \", $2, $3 }' "
                     "%s/demo-model/ground_truth.csv",
                     dir);
    cr_assert(rc == 0 && out && strstr(out, "--neuron"), "ground_truth.csv: %s", out);
    snprintf(neurons, sizeof neurons, "%s--top 6", out);
    free(out);
    notebook_runs(dir, "values.h5", "values");
    notebook_built(dir, "values.csv", "values");
    notebook_built(dir, "promotes.h5", "values");
    plot_ok(dir, "values.h5", "");
    plot_ok(dir, "values.h5", neurons);
    plot_ok(dir, "values.csv", "");
    plot_ok(dir, "promotes.h5", "");
    demo_drop(dir);
    free(dir);
}

Test(notebook, trace) {
    if (!have_command("trace")) cr_skip_test("no probe trace");
    char *dir = tu_tmpdir();
    const char *model = demo_model(dir);
    for (int k = 0; k < 2; k++)
        run_ok("trace",
               "%s trace %s --prompt '%s' --ablate-top 3 --generate 4 --quiet --out %s/trace.%s",
               tu_bin(), model, PROMPT, dir, k ? "csv" : "h5");
    notebook_runs(dir, "trace.h5", "trace");
    notebook_built(dir, "trace.csv", "trace");
    plot_ok(dir, "trace.h5", "");
    plot_ok(dir, "trace.csv", "");
    demo_drop(dir);
    free(dir);
}

static const char corpus[] =
    "Once upon a time, there was a little girl named Lily. She liked to play in the park.\n\n"
    "Tom had a big red ball. He threw it to the dog, and the dog ran after it.\n\n"
    "The sun was hot. Lily went to the park with her mom and they ate ice cream.\n\n"
    "The currency of Japan is the yen. The capital of France is Paris.\n\n"
    "One day, a bird sat on a tree and sang a happy song for all the children.\n";

Test(notebook, triggers) {
    if (!have_command("triggers")) cr_skip_test("no probe triggers");
    char *dir = tu_tmpdir();
    const char *model = demo_model(dir);
    char cp[4300], h5[4300], csv[4300];
    snprintf(cp, sizeof cp, "%s/corpus.txt", dir);
    snprintf(h5, sizeof h5, "%s/trig.h5", dir);
    snprintf(csv, sizeof csv, "%s/trig.csv", dir);
    FILE *f = fopen(cp, "w");
    cr_assert(f);
    fputs(corpus, f);
    fclose(f);
    run_ok("triggers h5", "%s triggers %s --corpus %s --top 4 --quiet --out %s", tu_bin(), model,
           cp, h5);
    run_ok("triggers csv", "%s triggers %s --corpus %s --top 4 --quiet --out %s", tu_bin(), model,
           cp, csv);
    notebook_runs(dir, "trig.h5", "triggers");
    notebook_built(dir, "trig.csv", "triggers");
    plot_ok(dir, "trig.h5", "");
    plot_ok(dir, "trig.agreement.csv", "");
    demo_drop(dir);
    free(dir);
}

/* Files no analysis produced: a clear error, exit 1, no output file. */
Test(notebook, not_a_result) {
    char *dir = tu_tmpdir(), p[4300];
    struct {
        const char *name, *content, *expect;
    } cases[] = {
        {"other.csv", "a,b,c\n1,2,3\n", "not the header of any probe CSV"},
        {"empty.csv", "", "the file is empty"},
        {"binary.bin", "\x89PNG\r\n\x1a\n\x01\x02garbage", "binary data"},
        {"bad.csv", "prompt_id,position,\"token\n", "not a probe result"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, cases[i].name);
        FILE *f = fopen(p, "wb");
        fwrite(cases[i].content, 1, strlen(cases[i].content), f);
        fclose(f);
        for (int plot = 0; plot < 2; plot++) {
            char *err = NULL;
            int rc = tu_runf(NULL, &err, "%s %s %s --out %s/x.%s", tu_bin(),
                             plot ? "plot" : "notebook", p, dir, plot ? "png" : "ipynb");
            cr_assert_eq(rc, 1, "%s: exit %d", cases[i].name, rc);
            cr_assert(err && strstr(err, cases[i].expect), "%s: %s", cases[i].name, err);
            free(err);
        }
    }
    /* HDF5 without probe_kind, and with an unknown one (written by h5py). */
    char *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err,
                     "cd %s && %s -c \"import h5py; h5py.File('plain.h5','w')['x']=[1]; "
                     "h5py.File('odd.h5','w').attrs['probe_kind']='banana'\"",
                     dir, tu_py());
    cr_assert_eq(rc, 0, "%s", err);
    free(err);
    rc = tu_runf(NULL, &err, "%s notebook %s/plain.h5", tu_bin(), dir);
    cr_assert_eq(rc, 1);
    cr_assert(strstr(err, "without the root attribute probe_kind"), "%s", err);
    free(err);
    rc = tu_runf(NULL, &err, "%s plot %s/odd.h5", tu_bin(), dir);
    cr_assert_eq(rc, 1);
    cr_assert(strstr(err, "probe_kind 'banana'"), "%s", err);
    free(err);
    rc = tu_runf(NULL, &err, "%s notebook %s/missing.h5", tu_bin(), dir);
    cr_assert_eq(rc, 1);
    free(err);
    /* Usage errors. */
    cr_assert_eq(tu_runf(NULL, NULL, "%s notebook %s/plain.h5 --out x.json", tu_bin(), dir), 2);
    cr_assert_eq(tu_runf(NULL, NULL, "%s plot %s/plain.h5 --out x.jpg", tu_bin(), dir), 2);
    cr_assert_eq(tu_runf(NULL, NULL, "%s plot %s/plain.h5 --size 10", tu_bin(), dir), 2);
    cr_assert_eq(tu_runf(NULL, NULL, "%s notebook", tu_bin()), 2);
    cr_assert(!tu_exists("x.ipynb") && tu_no_temp_files(dir));
    free(out);
    free(dir);
}

/* Every compiled-in template renders for every kind and format: placeholders
 * known, JSON valid, each notebook starts with the header and the imports. */
Test(notebook, templates_render) {
    static const char *feats[] = {"h5 forward norms",
                                  "csv forward norms",
                                  "h5 promotes norms",
                                  "csv promotes",
                                  "h5 intervened generated",
                                  "csv",
                                  "h5 agreement trig_main stats",
                                  "csv trig_main stats hist agreement"};
    static const res_kind_t kinds[] = {RES_VALUES, RES_VALUES, RES_VALUES,   RES_VALUES,
                                       RES_TRACE,  RES_TRACE,  RES_TRIGGERS, RES_TRIGGERS};
    static const char *names[] = {"activations", "values", "trace", "triggers"};
    cr_assert(nb_template("header.md") && nb_template("common.py"));
    for (int k = -2; k < (int)(sizeof feats / sizeof *feats); k++) {
        res_info_t r;
        memset(&r, 0, sizeof r);
        r.kind = k < 0 ? RES_ACTIVATIONS : kinds[k];
        r.kind_name = names[r.kind];
        r.csv = k == -1 || (k >= 0 && !strncmp(feats[k], "csv", 3));
        snprintf(r.features, sizeof r.features, "%s", k == -2 ? "h5" : k == -1 ? "csv" : feats[k]);
        r.path = "/tmp/x `y`.h5";
        r.abs_path = "/tmp/x `y`.h5";
        r.model = "m\"odel";
        char *pr[] = {"it's a \"prompt\"\nwith a newline"};
        r.prompts = pr;
        r.n_prompts = 1;
        r.command = "probe x --prompt ```";
        r.csv_main = "/tmp/t.csv";
        json_t *nb = nb_build(&r, "/tmp/x.ipynb");
        cr_assert(nb, "%s [%s]: %s", r.kind_name, r.features, err_msg());
        json_t *cells = json_object_get(nb, "cells");
        cr_assert_gt(json_array_size(cells), 4, "%s", r.kind_name);
        char *s = json_dumps(nb, 0);
        cr_assert(strstr(s, "import h5py") && strstr(s, "matplotlib"), "%s", r.kind_name);
        cr_assert(!strstr(s, "{{"), "%s: placeholder left", r.kind_name);
        free(s);
        json_decref(nb);
    }
}
