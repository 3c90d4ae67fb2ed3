/* notebook: templates to an nbformat-4 notebook with jansson (see notebook.h). */
#include "notebook.h"

#include "analysis/ofile.h"
#include "notebooks-export/sbuf.h"
#include "core/err.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const nb_template_t *nb_template(const char *name) {
    for (int i = 0; i < nb_n_templates; i++)
        if (!strcmp(nb_templates[i].name, name)) return &nb_templates[i];
    return NULL;
}

/* ---- values for placeholders --------------------------------------------------------- */

/* A Python string literal: JSON's escapes (\" \\ \n \uXXXX) are Python's too. */
static char *py_literal(const char *s) {
    if (!s) return strdup("None");
    json_t *j = json_string(s);
    if (!j) return NULL; /* not UTF-8 */
    char *out = json_dumps(j, JSON_ENCODE_ANY);
    json_decref(j);
    return out;
}

/* PATH (absolute) relative to folder DIR (absolute) when it lies below it. */
static const char *rel_to(const char *path, const char *dir) {
    size_t n = strlen(dir);
    if (n && !strncmp(path, dir, n) && (path[n] == '/' || dir[n - 1] == '/'))
        return path + n + (path[n] == '/');
    return path;
}

/* Into FENCE: a run of backticks longer than any in S and at least MIN long
 * (at most 15), so S cannot close it. */
static void md_fence(const char *s, int min, char fence[16]) {
    int run = 0, longest = min - 1;
    for (const char *p = s; *p; p++) {
        run = *p == '`' ? run + 1 : 0;
        if (run > longest) longest = run;
    }
    int nf = longest + 1 < 15 ? longest + 1 : 15;
    memset(fence, '`', (size_t)nf);
    fence[nf] = '\0';
}

/* A markdown code span showing S verbatim: a backtick fence longer than any
 * run inside it; line breaks and other controls become spaces. */
static void md_code(sbuf_t *b, const char *s) {
    char fence[16];
    md_fence(s, 1, fence);
    sb_add(b, fence);
    int pad = s[0] == '`' || (s[0] && s[strlen(s) - 1] == '`') || s[0] == '\0';
    if (pad) sb_add(b, " ");
    for (const char *p = s; *p; p++) {
        char c = (unsigned char)*p < 32 ? ' ' : *p;
        sb_addn(b, &c, 1);
    }
    if (pad) sb_add(b, " ");
    sb_add(b, fence);
}

/* A fenced markdown code block holding S. */
static void md_fenced(sbuf_t *b, const char *s) {
    char fence[16];
    md_fence(s, 3, fence);
    sb_add(b, fence);
    sb_add(b, "\n");
    sb_add(b, s);
    sb_add(b, "\n");
    sb_add(b, fence);
    sb_add(b, "\n");
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static char *make_meta(const res_info_t *r) {
    sbuf_t b = {0};
    sb_add(&b, "- **Result**: ");
    md_code(&b, r->path);
    sb_add(&b, r->csv ? " (CSV)" : " (HDF5)");
    sb_add(&b, ", written by `probe ");
    sb_add(&b, r->kind_name);
    sb_add(&b, "`\n");
    if (r->model) {
        sb_add(&b, "- **Model**: ");
        md_code(&b, r->model);
        sb_add(&b, "\n");
    }
    if (r->n_prompts == 1) {
        sb_add(&b, "- **Prompt**: ");
        md_code(&b, r->prompts[0]);
        sb_add(&b, "\n");
    } else if (r->n_prompts > 1) {
        char h[64];
        snprintf(h, sizeof h, "- **Prompts** (%d):\n", r->n_prompts);
        sb_add(&b, h);
        for (int i = 0; i < r->n_prompts && i < 20; i++) {
            snprintf(h, sizeof h, "  %d. ", i);
            sb_add(&b, h);
            md_code(&b, r->prompts[i]);
            sb_add(&b, "\n");
        }
        if (r->n_prompts > 20) sb_add(&b, "  - ...\n");
    }
    if (r->target) {
        sb_add(&b, r->kind == RES_VALUES ? "- **Token searched**: " : "- **Target**: ");
        md_code(&b, r->target);
        sb_add(&b, "\n");
    }
    if (r->corpus) {
        sb_add(&b, "- **Corpus**: ");
        md_code(&b, r->corpus);
        sb_add(&b, "\n");
    }
    if (r->csv) {
        sb_add(&b, "- CSV files do not record the model, the prompts or the command; the `.h5` "
                   "output of the same command does.\n");
        const char *sib[4] = {r->csv_main, r->csv_stats, r->csv_hist, r->csv_agree};
        int any = 0;
        for (int i = 0; i < 4; i++)
            if (sib[i] && strcmp(sib[i], r->path)) {
                sb_add(&b, any ? ", " : "- **Read with it**: ");
                md_code(&b, base_name(sib[i]));
                any = 1;
            }
        if (any) sb_add(&b, "\n");
    }
    sb_add(&b, "- **Needs**: numpy, pandas, h5py and matplotlib (Debian: `python3-numpy "
               "python3-pandas python3-h5py python3-matplotlib`; pip: `numpy pandas h5py "
               "matplotlib`)\n");
    if (r->command) {
        sb_add(&b, "\nThe command that made the data:\n\n");
        md_fenced(&b, r->command);
    }
    if (b.failed) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* ---- templates to cells ----------------------------------------------------------------- */

typedef struct {
    const char *name;
    char *value; /* owned */
} var_t;

enum {
    V_RESULT,
    V_RESULT_ABS,
    V_TRIG_MAIN,
    V_TRIG_STATS,
    V_TRIG_HIST,
    V_TRIG_AGREE,
    V_TITLE,
    V_META,
    V_N
};

static int subst(sbuf_t *out, const char *s, size_t n, const var_t *vars, const char *tpl) {
    for (size_t i = 0; i < n;) {
        if (i + 1 < n && s[i] == '{' && s[i + 1] == '{') {
            const char *e = memmem(s + i + 2, n - i - 2, "}}", 2);
            if (!e) return err_set("template %s: '{{' without '}}'", tpl);
            size_t kl = (size_t)(e - (s + i + 2));
            int found = 0;
            for (int v = 0; v < V_N && !found; v++)
                if (strlen(vars[v].name) == kl && !strncmp(vars[v].name, s + i + 2, kl)) {
                    sb_add(out, vars[v].value);
                    found = 1;
                }
            if (!found)
                return err_set("template %s: unknown placeholder {{%.*s}}", tpl, (int)kl,
                               s + i + 2);
            i = (size_t)(e - s) + 2;
        } else {
            sb_addn(out, s + i, 1);
            i++;
        }
    }
    return 0;
}

/* Does the marker line's requires=a,!b,... hold for R? */
static int requires_ok(const res_info_t *r, const char *line, size_t n) {
    const char *p = memmem(line, n, "requires=", 9);
    if (!p) return 1;
    p += 9;
    const char *end = line + n;
    while (p < end && *p != ' ') {
        size_t k = 0;
        while (p + k < end && p[k] != ',' && p[k] != ' ')
            k++;
        int neg = *p == '!';
        char w[64];
        size_t wl = k - (size_t)neg < sizeof w - 1 ? k - (size_t)neg : sizeof w - 1;
        memcpy(w, p + neg, wl);
        w[wl] = '\0';
        if (res_has(r, w) == neg) return 0;
        p += k + (p + k < end && p[k] == ',');
    }
    return 1;
}

/* Tags from tags=["a","b"] on the marker line. */
static json_t *marker_tags(const char *line, size_t n) {
    json_t *tags = json_array();
    const char *p = memmem(line, n, "tags=[", 6);
    if (!p || !tags) return tags;
    const char *end = memchr(p, ']', (size_t)(line + n - p));
    for (p += 6; end && p < end; p++) {
        if (*p != '"') continue;
        const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
        if (!q) break;
        json_array_append_new(tags, json_stringn(p + 1, (size_t)(q - p - 1)));
        p = q;
    }
    return tags;
}

/* Source text to nbformat's list of lines (each but the last ends in \n). */
static json_t *source_lines(const char *s) {
    json_t *a = json_array();
    while (a && *s) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) + 1 : strlen(s);
        json_array_append_new(a, json_stringn(s, n));
        s += n;
    }
    return a;
}

static int add_cell(json_t *cells, int markdown, json_t *tags, sbuf_t *src, const char *kind) {
    /* Trim blank lines at both ends. */
    char *s = src->s ? src->s : "";
    while (*s == '\n')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
        n--;
    s[n] = '\0';
    if (!n) {
        json_decref(tags);
        return 0;
    }
    char id[64];
    snprintf(id, sizeof id, "%s-%02zu", kind, json_array_size(cells));
    json_t *meta = json_object();
    if (json_array_size(tags)) json_object_set(meta, "tags", tags);
    json_decref(tags);
    json_t *c = json_pack("{s:s, s:s, s:o, s:o}", "cell_type", markdown ? "markdown" : "code", "id",
                          id, "metadata", meta, "source", source_lines(s));
    if (!c) return err_set("out of memory");
    if (!markdown) {
        json_object_set_new(c, "execution_count", json_null());
        json_object_set_new(c, "outputs", json_array());
    }
    json_array_append_new(cells, c);
    return 0;
}

/* Appends the cells of template NAME to CELLS. */
static int add_template(json_t *cells, const res_info_t *r, const char *name, const var_t *vars) {
    const nb_template_t *t = nb_template(name);
    if (!t) return err_set("template %s is not compiled in", name);
    const char *s = (const char *)t->text, *end = s + t->len;
    sbuf_t src = {0};
    int in_cell = 0, markdown = 0, keep = 0, rc = 0;
    json_t *tags = NULL;
    while (s < end && !rc) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
        if (n >= 4 && !strncmp(s, "# %%", 4)) {
            if (in_cell && keep)
                rc = add_cell(cells, markdown, tags, &src, r->kind_name);
            else
                json_decref(tags);
            tags = NULL;
            src.len = 0;
            if (src.s) src.s[0] = '\0';
            in_cell = 1;
            markdown = memmem(s, n, "[markdown]", 10) != NULL;
            keep = requires_ok(r, s, n);
            tags = marker_tags(s, n);
        } else if (in_cell && keep) {
            const char *l = s;
            size_t ln = n;
            if (markdown && ln && l[0] == '#') { /* "# text" -> "text" */
                l++;
                ln--;
                if (ln && l[0] == ' ') {
                    l++;
                    ln--;
                }
            }
            rc = subst(&src, l, ln, vars, name);
            sb_add(&src, "\n");
        }
        s += n + (nl != NULL);
    }
    if (!rc && in_cell && keep)
        rc = add_cell(cells, markdown, tags, &src, r->kind_name);
    else if (tags)
        json_decref(tags);
    if (!rc && src.failed) rc = err_set("out of memory");
    free(src.s);
    return rc;
}

json_t *nb_build(const res_info_t *r, const char *out_path) {
    var_t vars[V_N] = {{"result", NULL},     {"result_abs", NULL}, {"trig_main", NULL},
                       {"trig_stats", NULL}, {"trig_hist", NULL},  {"trig_agree", NULL},
                       {"title", NULL},      {"meta", NULL}};
    json_t *nb = NULL, *cells = NULL;
    char *dcopy = strdup(out_path), *nbdir = dcopy ? realpath(dirname(dcopy), NULL) : NULL;
    if (!nbdir) {
        err_set("%s: its folder does not exist", out_path);
        goto fail;
    }
    vars[V_RESULT].value = py_literal(rel_to(r->abs_path, nbdir));
    vars[V_RESULT_ABS].value = py_literal(r->abs_path);
    const char *sib[4] = {r->csv_main, r->csv_stats, r->csv_hist, r->csv_agree};
    for (int i = 0; i < 4; i++) {
        char *a = sib[i] ? realpath(sib[i], NULL) : NULL;
        vars[V_TRIG_MAIN + i].value = py_literal(a ? rel_to(a, nbdir) : NULL);
        free(a);
    }
    char title[512];
    snprintf(title, sizeof title, "probe %s: %s", r->kind_name, base_name(r->path));
    sbuf_t tb = {0};
    md_code(&tb, base_name(r->path));
    snprintf(title, sizeof title, "probe %s: %s", r->kind_name, tb.s ? tb.s : "");
    free(tb.s);
    vars[V_TITLE].value = strdup(title);
    vars[V_META].value = make_meta(r);
    for (int v = 0; v < V_N; v++)
        if (!vars[v].value) {
            err_set("out of memory (or a path that is not UTF-8)");
            goto fail;
        }
    cells = json_array();
    if (!cells) goto oom;
    char kt[64];
    snprintf(kt, sizeof kt, "%s.py", r->kind_name);
    if (add_template(cells, r, "header.md", vars) || add_template(cells, r, "common.py", vars) ||
        add_template(cells, r, kt, vars))
        goto fail;
    nb = json_pack("{s:o, s:{s:{s:s, s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}}, s:i, s:i}", "cells",
                   cells, "metadata", "kernelspec", "display_name", "Python 3", "language",
                   "python", "name", "python3", "language_info", "name", "python", "file_extension",
                   ".py", "probe", "kind", r->kind_name, "features", r->features, "nbformat", 4,
                   "nbformat_minor", 5);
    cells = NULL; /* stolen by "o", even on failure */
    if (!nb) goto oom;
    goto done;
oom:
    err_set("out of memory");
fail:
    json_decref(nb);
    nb = NULL;
done:
    json_decref(cells);
    for (int v = 0; v < V_N; v++)
        free(vars[v].value);
    free(nbdir);
    free(dcopy);
    return nb;
}

int nb_write(const res_info_t *r, const char *out_path, int *n_cells) {
    json_t *nb = nb_build(r, out_path);
    if (!nb) return -1;
    if (n_cells) *n_cells = (int)json_array_size(json_object_get(nb, "cells"));
    ofile_t *of = ofile_begin(out_path);
    if (!of) {
        json_decref(nb);
        return -1;
    }
    /* Jupyter's own layout: one-space indent, keys in order, UTF-8 as is. */
    int e = json_dump_file(nb, ofile_tmp_path(of), JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(nb);
    if (e) {
        ofile_abort(of);
        return err_set("%s: cannot write", out_path);
    }
    return ofile_commit(of);
}
