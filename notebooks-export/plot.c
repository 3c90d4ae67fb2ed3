/* plot: gnuplot figures of probe results (see plot.h). */
#include "plot.h"

#include "analysis/ofile.h"
#include "core/err.h"
#include "notebooks-export/sbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_PANELS 6
/* The smallest default figure: one panel with few rows still gets room for
 * its title, labels and colour box. */
#define MIN_W 520
#define MIN_H 320
#define GREEN "0x2ca02c"
#define RED "0xd62728"

void plot_opts_default(plot_opts_t *o) {
    memset(o, 0, sizeof *o);
    o->position = -1;
    o->layer = -1;
}

/* ---- gnuplot text ---------------------------------------------------------------- */

/* A single-quoted gnuplot string: '' stands for ', nothing else is special
 * (and noenhanced mode keeps ^ _ @ { } literal); controls become spaces. */
static void gp_str(sbuf_t *b, const char *s) {
    sb_add(b, "'");
    for (; *s; s++) {
        if (*s == '\'')
            sb_add(b, "''");
        else if ((unsigned char)*s < 32)
            sb_add(b, " ");
        else
            sb_addn(b, s, 1);
    }
    sb_add(b, "'");
}

/* Token text shown as a label: quoted so leading spaces are visible. */
static void gp_tok(sbuf_t *b, const char *s) {
    sbuf_t t = {0};
    sb_add(&t, "\"");
    sb_add(&t, s);
    sb_add(&t, "\"");
    gp_str(b, t.failed ? "?" : t.s);
    free(t.s);
}

static void gp_num(sbuf_t *b, double v) {
    if (isnan(v) || isinf(v))
        sb_add(b, "NaN");
    else
        sb_printf(b, "%.7g", v);
}

static int is_svg(const char *out) {
    size_t n = strlen(out);
    return n >= 4 && !strcmp(out + n - 4, ".svg");
}

static void gp_begin(sbuf_t *b, const char *out, const char *target, int w, int h) {
    sb_printf(b, "# probe plot: %s\n", is_svg(out) ? "SVG" : "PNG");
    if (is_svg(out))
        sb_printf(
            b,
            "set terminal svg size %d,%d font 'DejaVu Sans,10' noenhanced background '#ffffff'\n",
            w, h);
    else
        sb_printf(b,
                  "set terminal pngcairo size %d,%d font 'DejaVu Sans,10' noenhanced background "
                  "'#ffffff'\n",
                  w, h);
    sb_add(b, "set encoding utf8\nset output ");
    gp_str(b, target);
    sb_add(b, "\nset style fill solid 0.85 noborder\nset grid back lc rgb '#dddddd'\n");
}

/* ---- selection helpers -------------------------------------------------------------- */

/* Indices of the K largest of V[0..N) (NaN last, ties to the lower index). */
static int top_k(const float *v, int n, int k, int *out) {
    int got = 0;
    for (int i = 0; i < n; i++) {
        float x = isnan(v[i]) ? -INFINITY : v[i];
        int j = got < k ? got++ : k;
        if (j == k) {
            float last = isnan(v[out[k - 1]]) ? -INFINITY : v[out[k - 1]];
            if (!(x > last)) continue;
            j = k - 1;
        }
        while (j > 0) {
            float y = isnan(v[out[j - 1]]) ? -INFINITY : v[out[j - 1]];
            if (!(x > y)) break;
            out[j] = out[j - 1];
            j--;
        }
        out[j] = i;
    }
    return got;
}

/* Up to MAX_PANELS of the N layers, evenly spread, first and last included. */
static int spread(int n, int *idx) {
    if (n <= MAX_PANELS) {
        for (int i = 0; i < n; i++)
            idx[i] = i;
        return n;
    }
    for (int i = 0; i < MAX_PANELS; i++)
        idx[i] = (int)lround((double)i * (n - 1) / (MAX_PANELS - 1));
    return MAX_PANELS;
}

static int taken(const int *idx, int k, int i) {
    for (int j = 0; j < k; j++)
        if (idx[j] == i) return 1;
    return 0;
}

/* Up to MAX_PANELS of the N layers, ascending: all when they fit, else the
 * ones with the largest PEAK (|activation|; ties to the lower layer), topped
 * up with evenly spread ones.  Knowledge often sits in a few layers (in the
 * demo model, by construction), and evenly spread panels alone would miss it. */
static int pick_layers(const double *peak, int n, int *idx) {
    if (n <= MAX_PANELS) return spread(n, idx);
    int k = 0, sp[MAX_PANELS];
    for (; k < MAX_PANELS; k++) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (peak[i] > 0 && !taken(idx, k, i) && (best < 0 || peak[i] > peak[best])) best = i;
        if (best < 0) break;
        idx[k] = best;
    }
    spread(n, sp);
    for (int j = 0; j < MAX_PANELS && k < MAX_PANELS; j++)
        if (!taken(idx, k, sp[j])) idx[k++] = sp[j];
    for (int i = 0; i < n && k < MAX_PANELS; i++)
        if (!taken(idx, k, i)) idx[k++] = i;
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && idx[j - 1] > idx[j]; j--) {
            int t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    return k;
}

/* ---- activations -------------------------------------------------------------------- */

typedef struct {
    int layer;
    int n_tok, n_neu;
    char **tokens;   /* (n_tok) borrowed */
    int neurons[64]; /* (n_neu) */
    float *m;        /* (n_tok, n_neu) owned, NaN = not in the file */
} heat_t;

typedef struct {
    int pid, c_pid, c_pos, c_tok, c_layer, c_neu, c_act;
    int n, cap;
    struct acts_row {
        int layer, pos, neuron;
        float act;
    } * rows;
    char **tokens; /* by position */
    int n_tokens, any_prompt;
} acsv_t;

static int acts_csv_row(void *user, int64_t row, char **f, int n) {
    acsv_t *a = user;
    if (row == 0) {
        a->c_pid = res_csv_col(f, n, "prompt_id");
        a->c_pos = res_csv_col(f, n, "position");
        a->c_tok = res_csv_col(f, n, "token");
        a->c_layer = res_csv_col(f, n, "layer");
        a->c_neu = res_csv_col(f, n, "neuron");
        a->c_act = res_csv_col(f, n, "activation");
        if (a->c_pid < 0 || a->c_pos < 0 || a->c_tok < 0 || a->c_layer < 0 || a->c_neu < 0 ||
            a->c_act < 0)
            return err_set("activations CSV without the documented columns");
        return 0;
    }
    int need = a->c_act;
    if (a->c_pid > need) need = a->c_pid;
    if (a->c_tok > need) need = a->c_tok;
    if (n <= need) return err_set("CSV row %lld has %d fields", (long long)row, n);
    if (atoi(f[a->c_pid]) != a->pid) return 0;
    a->any_prompt = 1;
    int pos = atoi(f[a->c_pos]);
    if (pos < 0 || pos > 1000000) return err_set("CSV row %lld: bad position", (long long)row);
    if (pos >= a->n_tokens) {
        char **t = realloc(a->tokens, (size_t)(pos + 1) * sizeof *t);
        if (!t) return err_set("out of memory");
        for (int i = a->n_tokens; i <= pos; i++)
            t[i] = NULL;
        a->tokens = t;
        a->n_tokens = pos + 1;
    }
    if (!a->tokens[pos] && !(a->tokens[pos] = strdup(f[a->c_tok]))) return err_set("out of memory");
    if (a->n == a->cap) {
        int nc = a->cap ? 2 * a->cap : 1024;
        struct acts_row *r = realloc(a->rows, (size_t)nc * sizeof *r);
        if (!r) return err_set("out of memory");
        a->rows = r;
        a->cap = nc;
    }
    a->rows[a->n++] =
        (struct acts_row){atoi(f[a->c_layer]), pos, atoi(f[a->c_neu]), strtof(f[a->c_act], NULL)};
    return 0;
}

/* Fills HEAT[0..*NH) from a CSV; TOKENS owned by the caller after. */
static int acts_from_csv(const res_info_t *r, const plot_opts_t *o, int top, heat_t *heat, int *nh,
                         int *n_all, char ***tokens, int *n_tokens) {
    acsv_t a = {.pid = o->prompt_id};
    int rc = -1;
    if (res_csv_each(r->path, acts_csv_row, &a)) goto done;
    if (!a.any_prompt) {
        err_set("%s: no rows for prompt %d", r->path, o->prompt_id);
        goto done;
    }
    for (int i = 0; i < a.n_tokens; i++)
        if (!a.tokens[i] && !(a.tokens[i] = strdup("?"))) goto oom;
    /* Layers present, ascending. */
    int layers[4096], nl = 0;
    for (int i = 0; i < a.n; i++) {
        int L = a.rows[i].layer, k = 0;
        while (k < nl && layers[k] != L)
            k++;
        if (k == nl && nl < 4096) layers[nl++] = L;
    }
    for (int i = 1; i < nl; i++)
        for (int j = i; j > 0 && layers[j - 1] > layers[j]; j--) {
            int t = layers[j];
            layers[j] = layers[j - 1];
            layers[j - 1] = t;
        }
    int sel[MAX_PANELS], ns;
    if (o->layer >= 0) {
        int k = 0;
        while (k < nl && layers[k] != o->layer)
            k++;
        if (k == nl) {
            err_set("%s: layer %d is not in the file", r->path, o->layer);
            goto done;
        }
        sel[0] = k;
        ns = 1;
    } else {
        double peak[4096] = {0};
        for (int i = 0; i < a.n; i++) {
            int k = 0;
            while (layers[k] != a.rows[i].layer)
                k++;
            if (fabsf(a.rows[i].act) > peak[k]) peak[k] = fabsf(a.rows[i].act);
        }
        ns = pick_layers(peak, nl, sel);
    }
    *n_all = nl;
    for (int s = 0; s < ns; s++) {
        int L = layers[sel[s]], max_n = -1;
        for (int i = 0; i < a.n; i++)
            if (a.rows[i].layer == L && a.rows[i].neuron > max_n) max_n = a.rows[i].neuron;
        float *mx = malloc((size_t)(max_n + 1) * sizeof *mx);
        if (!mx) goto oom;
        for (int i = 0; i <= max_n; i++)
            mx[i] = NAN;
        for (int i = 0; i < a.n; i++)
            if (a.rows[i].layer == L) {
                float *p = &mx[a.rows[i].neuron];
                if (isnan(*p) || a.rows[i].act > *p) *p = a.rows[i].act;
            }
        heat_t *h = &heat[s];
        h->layer = L;
        h->n_neu = top_k(mx, max_n + 1, top, h->neurons);
        /* Neurons never seen stay NaN in MX; drop them. */
        while (h->n_neu > 0 && isnan(mx[h->neurons[h->n_neu - 1]]))
            h->n_neu--;
        free(mx);
        h->n_tok = a.n_tokens;
        h->m = malloc((size_t)h->n_tok * (h->n_neu ? h->n_neu : 1) * sizeof *h->m);
        if (!h->m) goto oom;
        for (int i = 0; i < h->n_tok * h->n_neu; i++)
            h->m[i] = NAN;
        for (int i = 0; i < a.n; i++)
            if (a.rows[i].layer == L)
                for (int j = 0; j < h->n_neu; j++)
                    if (h->neurons[j] == a.rows[i].neuron)
                        h->m[(size_t)a.rows[i].pos * h->n_neu + j] = a.rows[i].act;
        *nh = s + 1;
    }
    *tokens = a.tokens;
    *n_tokens = a.n_tokens;
    a.tokens = NULL;
    rc = 0;
    goto done;
oom:
    err_set("out of memory");
done:
    res_strs_free(a.tokens, a.n_tokens);
    free(a.rows);
    return rc;
}

static int acts_from_h5(const res_info_t *r, const plot_opts_t *o, int top, heat_t *heat, int *nh,
                        int *n_all, char ***tokens, int *n_tokens) {
    hid_t f = res_h5_open(r->path);
    if (f < 0) return -1;
    int rc = -1;
    int32_t *layers = NULL;
    int64_t d[2], nt = 0;
    char g[96];
    char **toks = NULL;
    if (res_h5_i32(f, "layers", 1, d, &layers)) goto done;
    int nl = (int)d[0];
    snprintf(g, sizeof g, "prompt_%d/tokens", o->prompt_id);
    if (!res_h5_exists(f, g)) {
        err_set("%s: no prompt %d (the file has %d)", r->path, o->prompt_id, r->n_prompts);
        goto done;
    }
    if (res_h5_strs(f, g, &toks, &nt)) goto done;
    int sel[MAX_PANELS], ns;
    if (o->layer >= 0) {
        int k = 0;
        while (k < nl && layers[k] != o->layer)
            k++;
        if (k == nl) {
            err_set("%s: layer %d is not in the file", r->path, o->layer);
            goto done;
        }
        sel[0] = k;
        ns = 1;
    } else if (nl > MAX_PANELS) { /* each layer's peak |activation| picks the panels */
        double *peak = calloc((size_t)nl, sizeof *peak);
        if (!peak) goto oom;
        for (int k = 0; k < nl; k++) {
            float *a = NULL;
            snprintf(g, sizeof g, "prompt_%d/layer_%d/key_act", o->prompt_id, layers[k]);
            if (res_h5_f32(f, g, 2, d, &a)) {
                free(peak);
                goto done;
            }
            for (int64_t i = 0; i < d[0] * d[1]; i++)
                if (fabsf(a[i]) > peak[k]) peak[k] = fabsf(a[i]);
            free(a);
        }
        ns = pick_layers(peak, nl, sel);
        free(peak);
    } else {
        ns = spread(nl, sel);
    }
    *n_all = nl;
    for (int s = 0; s < ns; s++) {
        float *a = NULL;
        snprintf(g, sizeof g, "prompt_%d/layer_%d/key_act", o->prompt_id, layers[sel[s]]);
        if (res_h5_f32(f, g, 2, d, &a)) goto done;
        if (d[0] != nt) {
            free(a);
            err_set("%s: %s has %lld rows for %lld tokens", r->path, g, (long long)d[0],
                    (long long)nt);
            goto done;
        }
        int64_t T = d[0], F = d[1];
        float *mx = malloc((size_t)(F ? F : 1) * sizeof *mx);
        if (!mx) {
            free(a);
            goto oom;
        }
        for (int64_t j = 0; j < F; j++) {
            mx[j] = -INFINITY;
            for (int64_t t = 0; t < T; t++)
                if (a[t * F + j] > mx[j]) mx[j] = a[t * F + j];
        }
        heat_t *h = &heat[s];
        h->layer = layers[sel[s]];
        h->n_neu = top_k(mx, (int)F, top, h->neurons);
        free(mx);
        h->n_tok = (int)T;
        h->m = malloc((size_t)(T ? T : 1) * (h->n_neu ? h->n_neu : 1) * sizeof *h->m);
        if (!h->m) {
            free(a);
            goto oom;
        }
        for (int64_t t = 0; t < T; t++)
            for (int j = 0; j < h->n_neu; j++)
                h->m[t * h->n_neu + j] = a[t * F + h->neurons[j]];
        free(a);
        *nh = s + 1;
    }
    *tokens = toks;
    *n_tokens = (int)nt;
    toks = NULL;
    rc = 0;
    goto done;
oom:
    err_set("out of memory");
done:
    res_strs_free(toks, nt);
    free(layers);
    H5Fclose(f);
    return rc;
}

static char *script_activations(const res_info_t *r, const plot_opts_t *o, const char *out,
                                const char *target) {
    heat_t heat[MAX_PANELS];
    memset(heat, 0, sizeof heat);
    int nh = 0, nt = 0, top = o->top ? o->top : 12;
    char **toks = NULL;
    if (top > 64) top = 64;
    int n_all = 0;
    int e = r->csv ? acts_from_csv(r, o, top, heat, &nh, &n_all, &toks, &nt)
                   : acts_from_h5(r, o, top, heat, &nh, &n_all, &toks, &nt);
    sbuf_t b = {0};
    if (e) goto done;
    int cols = nh < 3 ? nh : 3, rows = (nh + cols - 1) / cols;
    /* Room per panel for the token labels, the neuron columns and the
     * colour box; never smaller than a readable figure (MIN_W x MIN_H). */
    int w = 80 + cols * (150 + 26 * top), ph = 110 + 16 * nt;
    int h = 40 + rows * (ph < 260 ? 260 : ph);
    w = o->width ? o->width : w < MIN_W ? MIN_W : w;
    h = o->height ? o->height : h < MIN_H ? MIN_H : h;
    gp_begin(&b, out, target, w, h);
    for (int s = 0; s < nh; s++) {
        sb_printf(&b, "$m%d << EOD\n", s);
        for (int t = 0; t < heat[s].n_tok; t++) {
            for (int j = 0; j < heat[s].n_neu; j++) {
                if (j) sb_add(&b, " ");
                gp_num(&b, heat[s].m[(size_t)t * heat[s].n_neu + j]);
            }
            sb_add(&b, "\n");
        }
        sb_add(&b, "EOD\n");
    }
    sb_add(&b, "set palette defined (-1 '#2166ac', 0 '#f7f7f7', 1 '#b2182b')\n"
               "unset grid\nset xlabel 'neuron'\nset tics font ',8'\nset colorbox\n");
    sb_printf(&b, "set multiplot layout %d,%d title ", rows, cols);
    char title[256];
    char which[64] = "";
    if (o->layer < 0 && nh < n_all)
        snprintf(which, sizeof which, " (the %d most active of %d layers)", nh, n_all);
    snprintf(title, sizeof title, "key activations of the top %d neurons per layer%s, prompt %d%s",
             top, which, o->prompt_id,
             r->csv ? " (CSV: top-K rows only; blank = not in the file)" : "");
    gp_str(&b, title);
    sb_add(&b, "\n");
    for (int s = 0; s < nh; s++) {
        heat_t *hp = &heat[s];
        float v = 0;
        for (int i = 0; i < hp->n_tok * hp->n_neu; i++)
            if (!isnan(hp->m[i]) && fabsf(hp->m[i]) > v) v = fabsf(hp->m[i]);
        if (v == 0) v = 1;
        sb_printf(&b, "set title 'layer %d'\nset cbrange [%g:%g]\n", hp->layer, -v, v);
        sb_printf(&b, "set xrange [-0.5:%g]\nset yrange [%g:-0.5]\n", hp->n_neu - 0.5,
                  hp->n_tok - 0.5);
        sb_add(&b, "set xtics rotate by 90 right (");
        for (int j = 0; j < hp->n_neu; j++)
            sb_printf(&b, "%s'%d' %d", j ? ", " : "", hp->neurons[j], j);
        sb_add(&b, ")\nset ytics (");
        for (int t = 0; t < hp->n_tok; t++) {
            if (t) sb_add(&b, ", ");
            gp_tok(&b, t < nt ? toks[t] : "?");
            sb_printf(&b, " %d", t);
        }
        sb_printf(&b, ")\nplot $m%d matrix with image notitle\n", s);
    }
    sb_add(&b, "unset multiplot\n");
done:
    for (int s = 0; s < nh; s++)
        free(heat[s].m);
    res_strs_free(toks, nt);
    if (e || b.failed) {
        if (!e) err_set("out of memory");
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* ---- values ------------------------------------------------------------------------- */

typedef struct {
    int layer, neuron;
    float max_logit;
    int n_top, n_bot;
    char *top_tok[64], *bot_tok[64];
    float top_sc[64], bot_sc[64];
} vneuron_t;

static void vneuron_free(vneuron_t *v) {
    for (int i = 0; i < v->n_top; i++)
        free(v->top_tok[i]);
    for (int i = 0; i < v->n_bot; i++)
        free(v->bot_tok[i]);
}

/* Keeps the N best (highest max_logit; ties lower layer, lower neuron) in SEL. */
static void keep_best(vneuron_t *sel, int *n, int cap, int layer, int neuron, float ml) {
    if (isnan(ml)) return;
    int j = *n < cap ? (*n)++ : cap;
    if (j == cap) {
        if (!(ml > sel[cap - 1].max_logit)) return;
        j = cap - 1;
    }
    while (j > 0 && ml > sel[j - 1].max_logit) {
        sel[j] = sel[j - 1];
        j--;
    }
    memset(&sel[j], 0, sizeof sel[j]);
    sel[j].layer = layer;
    sel[j].neuron = neuron;
    sel[j].max_logit = ml;
}

typedef struct {
    const plot_opts_t *o;
    vneuron_t *sel;
    int nsel, cap, pass, top;
    int c_layer, c_neu, c_dir, c_rank, c_tok, c_score, c_ml;
    /* promotes */
    int promotes;
} vcsv_t;

static int values_csv_row(void *user, int64_t row, char **f, int n) {
    vcsv_t *v = user;
    if (row == 0) {
        v->c_layer = res_csv_col(f, n, "layer");
        v->c_neu = res_csv_col(f, n, "neuron");
        v->c_dir = res_csv_col(f, n, "direction");
        v->c_rank = res_csv_col(f, n, "rank");
        v->c_tok = res_csv_col(f, n, "token");
        v->c_score = res_csv_col(f, n, "score");
        v->c_ml = res_csv_col(f, n, "max_logit");
        if (v->c_layer < 0 || v->c_neu < 0 || v->c_tok < 0 || v->c_score < 0 ||
            (!v->promotes && (v->c_dir < 0 || v->c_rank < 0 || v->c_ml < 0)))
            return err_set("values CSV without the documented columns");
        return 0;
    }
    int L = atoi(f[v->c_layer]), N = atoi(f[v->c_neu]);
    if (v->promotes) { /* rows come highest score first */
        if (v->nsel < v->cap) {
            vneuron_t *s = &v->sel[v->nsel++];
            memset(s, 0, sizeof *s);
            s->layer = L;
            s->neuron = N;
            s->max_logit = strtof(f[v->c_score], NULL);
            if (!(s->top_tok[0] = strdup(f[v->c_tok]))) return err_set("out of memory");
            s->n_top = 1;
        }
        return v->nsel == v->cap;
    }
    int rank = atoi(f[v->c_rank]);
    int top = !strcmp(f[v->c_dir], "top");
    if (v->pass == 0) {
        if (top && rank == 0) keep_best(v->sel, &v->nsel, v->cap, L, N, strtof(f[v->c_ml], NULL));
        return 0;
    }
    for (int i = 0; i < v->nsel; i++) {
        vneuron_t *s = &v->sel[i];
        if (s->layer != L || s->neuron != N || rank < 0 || rank >= v->top) continue;
        int *cnt = top ? &s->n_top : &s->n_bot;
        if (rank != *cnt) continue; /* ranks come in order */
        char **tk = top ? s->top_tok : s->bot_tok;
        float *sc = top ? s->top_sc : s->bot_sc;
        if (!(tk[rank] = strdup(f[v->c_tok]))) return err_set("out of memory");
        sc[rank] = strtof(f[v->c_score], NULL);
        (*cnt)++;
    }
    return 0;
}

static int values_from_h5(const res_info_t *r, const plot_opts_t *o, int top, vneuron_t *sel,
                          int *nsel, int cap, int promotes) {
    hid_t f = res_h5_open(r->path);
    if (f < 0) return -1;
    int rc = -1;
    char **vocab = NULL;
    int64_t nv = 0, d[2];
    double nl_d = 0;
    if (res_h5_attr_num(f, "n_layer", &nl_d) || nl_d < 0 || nl_d > 100000) {
        err_set("%s: no n_layer attribute", r->path);
        goto done;
    }
    if (res_h5_exists(f, "tokens") && res_h5_strs(f, "tokens", &vocab, &nv)) goto done;
    char g[96];
    if (o->n_neurons && !promotes) {
        for (int i = 0; i < o->n_neurons; i++) {
            memset(&sel[i], 0, sizeof sel[i]);
            sel[i].layer = o->neuron_layer[i];
            sel[i].neuron = o->neuron_idx[i];
        }
        *nsel = o->n_neurons;
    } else {
        for (int L = 0; L < (int)nl_d; L++) {
            snprintf(g, sizeof g, "layer_%d", L);
            if (!res_h5_exists(f, g)) continue;
            int32_t *neu = NULL;
            float *ml = NULL;
            snprintf(g, sizeof g, "layer_%d/neuron", L);
            int e = res_h5_i32(f, g, 1, d, &neu);
            int64_t n = d[0];
            snprintf(g, sizeof g, promotes ? "layer_%d/promote_score" : "layer_%d/max_logit", L);
            e = e || res_h5_f32(f, g, 1, d, &ml) || d[0] != n;
            if (e) {
                free(neu);
                free(ml);
                if (!err_msg()[0]) err_set("%s: %s has the wrong length", r->path, g);
                goto done;
            }
            for (int64_t j = 0; j < n; j++)
                keep_best(sel, nsel, cap, L, neu[j], ml[j]);
            free(neu);
            free(ml);
        }
    }
    if (promotes) { /* labels only */
        rc = 0;
        goto done;
    }
    for (int i = 0; i < *nsel; i++) {
        vneuron_t *s = &sel[i];
        int32_t *neu = NULL;
        snprintf(g, sizeof g, "layer_%d/neuron", s->layer);
        if (!res_h5_exists(f, g)) {
            err_set("%s: layer %d is not in the file", r->path, s->layer);
            goto done;
        }
        if (res_h5_i32(f, g, 1, d, &neu)) goto done;
        int64_t row = -1;
        for (int64_t j = 0; j < d[0] && row < 0; j++)
            if (neu[j] == s->neuron) row = j;
        free(neu);
        if (row < 0) {
            err_set("%s: neuron %d of layer %d is not in the file", r->path, s->neuron, s->layer);
            goto done;
        }
        for (int bot = 0; bot < 2; bot++) {
            int32_t *ids = NULL;
            float *sc = NULL;
            snprintf(g, sizeof g, "layer_%d/%s_ids", s->layer, bot ? "bottom" : "top");
            if (!res_h5_exists(f, g)) continue;
            if (res_h5_i32(f, g, 2, d, &ids)) goto done;
            int64_t k = d[1];
            snprintf(g, sizeof g, "layer_%d/%s_scores", s->layer, bot ? "bottom" : "top");
            if (res_h5_f32(f, g, 2, d, &sc) || d[1] != k) {
                free(ids);
                free(sc);
                goto done;
            }
            int cnt = (int)(k < top ? k : top);
            for (int j = 0; j < cnt; j++) {
                int32_t id = ids[row * k + j];
                char buf[32];
                snprintf(buf, sizeof buf, "#%d", id);
                char *t = strdup(id >= 0 && id < nv ? vocab[id] : buf);
                if (!t) {
                    free(ids);
                    free(sc);
                    err_set("out of memory");
                    goto done;
                }
                (bot ? s->bot_tok : s->top_tok)[j] = t;
                (bot ? s->bot_sc : s->top_sc)[j] = sc[row * k + j];
                (*(bot ? &s->n_bot : &s->n_top))++;
            }
            free(ids);
            free(sc);
        }
    }
    rc = 0;
done:
    res_strs_free(vocab, nv);
    H5Fclose(f);
    return rc;
}

static char *script_values(const res_info_t *r, const plot_opts_t *o, const char *out,
                           const char *target) {
    int promotes = res_has(r, "promotes");
    int top = o->top ? o->top : 10, cap = promotes ? 20 : (o->n_neurons ? o->n_neurons : 4);
    if (top > 64) top = 64;
    vneuron_t sel[20];
    int nsel = 0, e;
    sbuf_t b = {0};
    if (r->csv) {
        vcsv_t v = {.o = o, .sel = sel, .cap = cap, .top = top, .promotes = promotes};
        if (o->n_neurons && !promotes) {
            for (int i = 0; i < o->n_neurons; i++) {
                memset(&sel[i], 0, sizeof sel[i]);
                sel[i].layer = o->neuron_layer[i];
                sel[i].neuron = o->neuron_idx[i];
            }
            v.nsel = o->n_neurons;
            v.pass = 1;
            e = res_csv_each(r->path, values_csv_row, &v);
        } else {
            e = res_csv_each(r->path, values_csv_row, &v);
            v.pass = 1;
            if (!e && !promotes) e = res_csv_each(r->path, values_csv_row, &v);
        }
        nsel = v.nsel;
    } else {
        e = values_from_h5(r, o, top, sel, &nsel, cap, promotes);
    }
    if (e) goto done;
    if (nsel == 0) {
        e = err_set("%s: no neurons to draw", r->path);
        goto done;
    }
    if (promotes) {
        char *tok = r->target ? r->target : (sel[0].n_top ? sel[0].top_tok[0] : NULL);
        int ph = 140 + 22 * nsel;
        gp_begin(&b, out, target, o->width ? o->width : 760,
                 o->height    ? o->height
                 : ph < MIN_H ? MIN_H
                              : ph);
        sb_add(&b, "$p << EOD\n");
        for (int i = 0; i < nsel; i++) {
            sb_printf(&b, "%d ", i);
            gp_num(&b, sel[i].max_logit);
            sb_add(&b, "\n");
        }
        sb_add(&b, "EOD\nset ytics (");
        for (int i = 0; i < nsel; i++)
            sb_printf(&b, "%s'L%d N%d' %d", i ? ", " : "", sel[i].layer, sel[i].neuron, i);
        sb_printf(&b, ")\nset yrange [%g:-0.6]\nset yzeroaxis\nset xlabel ", nsel - 0.4);
        sbuf_t t = {0};
        sb_add(&t, "score of the token (logit)");
        gp_str(&b, t.s ? t.s : "");
        free(t.s);
        sb_add(&b, "\nset title ");
        sbuf_t tt = {0};
        sb_add(&tt, "neurons whose value vectors promote \"");
        sb_add(&tt, tok ? tok : "?");
        sb_add(&tt, "\" most");
        gp_str(&b, tt.s ? tt.s : "");
        free(tt.s);
        sb_add(&b, "\nplot $p using ($2/2):1:(abs($2)/2):(0.38) with boxxyerror lc rgb " GREEN
                   " notitle\n");
        goto done;
    }
    int cols = nsel < 2 ? nsel : 2, rows = (nsel + cols - 1) / cols, maxbars = 1;
    for (int i = 0; i < nsel; i++)
        if (sel[i].n_top + sel[i].n_bot > maxbars) maxbars = sel[i].n_top + sel[i].n_bot;
    int ph = 40 + rows * (90 + 17 * maxbars);
    gp_begin(&b, out, target, o->width ? o->width : 40 + 460 * cols,
             o->height    ? o->height
             : ph < MIN_H ? MIN_H
                          : ph);
    for (int i = 0; i < nsel; i++) {
        vneuron_t *s = &sel[i];
        sb_printf(&b, "$v%d << EOD\n", i);
        for (int j = 0; j < s->n_top; j++) {
            sb_printf(&b, "%d ", j);
            gp_num(&b, s->top_sc[j]);
            sb_add(&b, " " GREEN "\n");
        }
        for (int j = s->n_bot - 1; j >= 0; j--) { /* most suppressed at the bottom */
            sb_printf(&b, "%d ", s->n_top + (s->n_bot - 1 - j));
            gp_num(&b, s->bot_sc[j]);
            sb_add(&b, " " RED "\n");
        }
        sb_add(&b, "EOD\n");
    }
    sb_printf(&b,
              "set multiplot layout %d,%d title 'tokens promoted (green) and suppressed (red): "
              "value vectors projected through the unembedding'\n",
              rows, cols);
    sb_add(&b, "set yzeroaxis\nset xlabel 'score (logit)'\nset tics font ',8'\n");
    for (int i = 0; i < nsel; i++) {
        vneuron_t *s = &sel[i];
        int nb = s->n_top + s->n_bot;
        if (nb == 0) {
            e = err_set("%s: layer %d neuron %d has no tokens in the file", r->path, s->layer,
                        s->neuron);
            goto done;
        }
        sb_printf(&b, "set title 'layer %d neuron %d'\nset yrange [%g:-0.6]\nset ytics (", s->layer,
                  s->neuron, nb - 0.4);
        for (int j = 0; j < s->n_top; j++) {
            if (j) sb_add(&b, ", ");
            gp_tok(&b, s->top_tok[j]);
            sb_printf(&b, " %d", j);
        }
        for (int j = s->n_bot - 1; j >= 0; j--) {
            if (s->n_top || j != s->n_bot - 1) sb_add(&b, ", ");
            gp_tok(&b, s->bot_tok[j]);
            sb_printf(&b, " %d", s->n_top + (s->n_bot - 1 - j));
        }
        sb_printf(&b,
                  ")\nplot $v%d using ($2/2):1:(abs($2)/2):(0.38):3 with boxxyerror lc rgb "
                  "variable notitle\n",
                  i);
    }
    sb_add(&b, "unset multiplot\n");
done:
    for (int i = 0; i < nsel; i++)
        vneuron_free(&sel[i]);
    if (e || b.failed) {
        if (!e) err_set("out of memory");
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* ---- trace -------------------------------------------------------------------------- */

typedef struct {
    int pos_want, c_run, c_pos, c_rk, c_layer, c_con, c_target;
    int last_pos;
    double sum[2][1024];
    int seen[2][1024];
    char target[256];
} tcsv_t;

static int trace_csv_row(void *user, int64_t row, char **f, int n) {
    tcsv_t *t = user;
    if (row == 0) {
        t->c_run = res_csv_col(f, n, "run");
        t->c_pos = res_csv_col(f, n, "position");
        t->c_rk = res_csv_col(f, n, "ranking");
        t->c_layer = res_csv_col(f, n, "layer");
        t->c_con = res_csv_col(f, n, "contribution");
        t->c_target = res_csv_col(f, n, "target");
        if (t->c_run < 0 || t->c_pos < 0 || t->c_rk < 0 || t->c_layer < 0 || t->c_con < 0 ||
            t->c_target < 0)
            return err_set("trace CSV without the documented columns");
        return 0;
    }
    int pos = atoi(f[t->c_pos]);
    if (pos > t->last_pos) t->last_pos = pos;
    if (pos != t->pos_want || strcmp(f[t->c_rk], "contribution")) return 0;
    int run = !strcmp(f[t->c_run], "intervened"), L = atoi(f[t->c_layer]);
    if (L < 0 || L >= 1024) return 0;
    t->sum[run][L] += strtod(f[t->c_con], NULL);
    t->seen[run][L] = 1;
    snprintf(t->target, sizeof t->target, "%s", f[t->c_target]);
    return 0;
}

static char *script_trace_csv(const res_info_t *r, const plot_opts_t *o, const char *out,
                              const char *target) {
    tcsv_t *t = calloc(1, sizeof *t);
    if (!t) return err_set("out of memory"), NULL;
    t->pos_want = o->position;
    t->last_pos = -1;
    sbuf_t b = {0};
    int e = res_csv_each(r->path, trace_csv_row, t);
    if (!e && o->position < 0) { /* the last traced position: a second pass */
        t->pos_want = t->last_pos;
        t->last_pos = -1;
        e = res_csv_each(r->path, trace_csv_row, t);
    }
    int nl = 0;
    for (int L = 0; L < 1024; L++)
        if (t->seen[0][L] || t->seen[1][L]) nl = L + 1;
    if (!e && nl == 0) e = err_set("%s: no contribution rows at position %d", r->path, t->pos_want);
    if (e) goto done;
    int iv = res_has(r, "intervened");
    gp_begin(&b, out, target, o->width ? o->width : (nl < 10 ? 800 : 200 + 60 * nl),
             o->height ? o->height : 440);
    sb_add(&b, "$c << EOD\n");
    for (int L = 0; L < nl; L++) {
        sb_printf(&b, "%d ", L);
        gp_num(&b, t->seen[0][L] ? t->sum[0][L] : NAN);
        sb_add(&b, " ");
        gp_num(&b, t->seen[1][L] ? t->sum[1][L] : NAN);
        sb_add(&b, "\n");
    }
    sb_add(&b, "EOD\nset title ");
    sbuf_t tt = {0};
    sb_printf(&tt,
              "listed FFN sub-updates: summed contribution to the logit of \"%s\" at position %d",
              t->target, t->pos_want);
    gp_str(&b, tt.s ? tt.s : "");
    free(tt.s);
    sb_printf(
        &b,
        "\nset xlabel 'layer'\nset ylabel 'contribution (logit)'\nset xzeroaxis\n"
        "set xrange [-0.6:%g]\nset xtics 1\nset key top left\nset offsets 0, 0, graph 0.05, 0\n",
        nl - 0.4);
    if (iv)
        sb_add(&b,
               "plot $c using ($1-0.2):($2/2):(0.2):(abs($2)/2) with boxxyerror lc rgb '#1f77b4' "
               "title 'base', $c using ($1+0.2):($3/2):(0.2):(abs($3)/2) with boxxyerror lc rgb "
               "'#ff7f0e' title 'intervened'\n");
    else
        sb_add(&b, "plot $c using 1:($2/2):(0.35):(abs($2)/2) with boxxyerror lc rgb '#1f77b4' "
                   "title 'base'\n");
done:
    free(t);
    if (e || b.failed) {
        if (!e) err_set("out of memory");
        free(b.s);
        return NULL;
    }
    return b.s;
}

static char *script_trace(const res_info_t *r, const plot_opts_t *o, const char *out,
                          const char *target) {
    if (r->csv) return script_trace_csv(r, o, out, target);
    hid_t f = res_h5_open(r->path);
    if (f < 0) return NULL;
    sbuf_t b = {0};
    int e = -1, pos = -1, nruns = res_has(r, "intervened") ? 2 : 1;
    int32_t *positions = NULL, *rank[2][2] = {{0}};
    float *prob[2][2] = {{0}};
    char *tgt = NULL;
    int64_t d[2], L = 0;
    if (res_h5_i32(f, "positions", 1, d, &positions)) goto done;
    for (int64_t i = 0; i < d[0]; i++)
        if (o->position < 0 ? i == d[0] - 1 : positions[i] == o->position) pos = positions[i];
    if (pos < 0) {
        sbuf_t l = {0};
        for (int64_t i = 0; i < d[0]; i++)
            sb_printf(&l, "%s%d", i ? ", " : "", positions[i]);
        err_set("%s: position %d was not traced (traced: %s)", r->path, o->position,
                l.s ? l.s : "none");
        free(l.s);
        goto done;
    }
    const char *runs[2] = {"base", "intervened"}, *stage[2] = {"pre", "post"};
    char g[128];
    for (int ri = 0; ri < nruns; ri++)
        for (int s = 0; s < 2; s++) {
            snprintf(g, sizeof g, "%s/pos_%d/lens_%s_target_prob", runs[ri], pos, stage[s]);
            if (res_h5_f32(f, g, 1, d, &prob[ri][s])) goto done;
            if (L && d[0] != L) {
                err_set("%s: %s has %lld layers, expected %lld", r->path, g, (long long)d[0],
                        (long long)L);
                goto done;
            }
            L = d[0];
            snprintf(g, sizeof g, "%s/pos_%d/lens_%s_target_rank", runs[ri], pos, stage[s]);
            if (res_h5_i32(f, g, 1, d, &rank[ri][s])) goto done;
            if (d[0] != L) {
                err_set("%s: %s has %lld layers, expected %lld", r->path, g, (long long)d[0],
                        (long long)L);
                goto done;
            }
        }
    snprintf(g, sizeof g, "base/pos_%d", pos);
    hid_t pg = H5Gopen2(f, g, H5P_DEFAULT);
    if (pg >= 0) {
        tgt = res_h5_attr_str(pg, "target");
        H5Gclose(pg);
    }
    gp_begin(&b, out, target, o->width ? o->width : 1100, o->height ? o->height : 440);
    sb_add(&b, "$lens << EOD\n");
    for (int64_t l = 0; l < L; l++) {
        sb_printf(&b, "%lld", (long long)l);
        for (int ri = 0; ri < 2; ri++)
            for (int s = 0; s < 2; s++) {
                sb_add(&b, " ");
                gp_num(&b, ri < nruns ? prob[ri][s][l] : NAN);
                sb_add(&b, " ");
                gp_num(&b, ri < nruns ? rank[ri][s][l] + 1.0 : NAN);
            }
        sb_add(&b, "\n");
    }
    sb_add(&b, "EOD\nset multiplot layout 1,2 title ");
    sbuf_t tt = {0};
    sb_printf(&tt, "logit lens at position %d: the target \"%s\" before and after each FFN", pos,
              tgt ? tgt : "?");
    gp_str(&b, tt.s ? tt.s : "");
    free(tt.s);
    sb_printf(&b,
              "\nset xlabel 'layer'\nset xtics 1\nset xrange [-0.3:%g]\nset key below font ',8'\n",
              L - 0.7);
    /* columns: 2 base pre p, 3 base pre rank, 4 base post p, 5 base post rank, 6-9 intervened */
    for (int panel = 0; panel < 2; panel++) {
        if (panel == 0)
            sb_add(&b, "set ylabel 'probability of the target'\nset yrange [0:*]\n");
        else
            sb_add(&b, "set ylabel 'rank of the target (1 = top)'\nset logscale y\n"
                       "set yrange [*:*] reverse\n");
        int c = 2 + panel;
        sb_printf(
            &b,
            "plot $lens using 1:%d with linespoints pt 7 lc rgb '#1f77b4' title 'before FFN', "
            "$lens using 1:%d with linespoints pt 5 lc rgb '#ff7f0e' title 'after FFN'",
            c, c + 2);
        if (nruns == 2)
            sb_printf(&b,
                      ", $lens using 1:%d with linespoints dt 2 pt 6 lc rgb '#2ca02c' title "
                      "'intervened, before FFN', $lens using 1:%d with linespoints dt 2 pt 4 lc "
                      "rgb '#d62728' title 'intervened, after FFN'",
                      c + 4, c + 6);
        sb_add(&b, "\n");
    }
    sb_add(&b, "unset multiplot\n");
    e = 0;
done:
    for (int ri = 0; ri < 2; ri++)
        for (int s = 0; s < 2; s++) {
            free(prob[ri][s]);
            free(rank[ri][s]);
        }
    free(positions);
    free(tgt);
    H5Fclose(f);
    if (e || b.failed) {
        if (!e) err_set("out of memory");
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* ---- triggers ----------------------------------------------------------------------- */

enum { A_LAYER, A_SHARE, A_MEAN, A_MEDIAN, A_TOPMEAN, A_N };
static const char *agree_cols[A_N] = {"layer", "share_agree", "mean_rank", "median_rank",
                                      "top_mean_rank"};

typedef struct {
    int col[A_N], c_vocab;
    int n;
    double v[A_N][1024];
    double vocab;
} agree_t;

static int agree_csv_row(void *user, int64_t row, char **f, int n) {
    agree_t *a = user;
    if (row == 0) {
        for (int k = 0; k < A_N; k++)
            if ((a->col[k] = res_csv_col(f, n, agree_cols[k])) < 0)
                return err_set("agreement CSV without column %s", agree_cols[k]);
        a->c_vocab = res_csv_col(f, n, "vocab");
        return 0;
    }
    if (a->n >= 1024) return 1;
    for (int k = 0; k < A_N; k++)
        a->v[k][a->n] = a->col[k] < n ? strtod(f[a->col[k]], NULL) : NAN;
    if (a->c_vocab >= 0 && a->c_vocab < n) a->vocab = strtod(f[a->c_vocab], NULL);
    a->n++;
    return 0;
}

static int agree_from_h5(const res_info_t *r, agree_t *a) {
    hid_t f = res_h5_open(r->path);
    if (f < 0) return -1;
    int rc = -1;
    hid_t g = H5Gopen2(f, "agreement", H5P_DEFAULT);
    if (g >= 0 && res_h5_attr_num(g, "vocab_size", &a->vocab) &&
        res_h5_attr_num(f, "vocab_size", &a->vocab))
        a->vocab = NAN;
    if (g >= 0) H5Gclose(g);
    for (int k = 0; k < A_N; k++) {
        char p[64];
        float *v = NULL;
        int64_t d[2];
        snprintf(p, sizeof p, "agreement/%s", agree_cols[k]);
        if (res_h5_f32(f, p, 1, d, &v)) goto done;
        if (k == 0)
            a->n = (int)(d[0] < 1024 ? d[0] : 1024);
        else if (d[0] < a->n) {
            free(v);
            err_set("%s: %s is shorter than agreement/layer", r->path, p);
            goto done;
        }
        for (int i = 0; i < a->n; i++)
            a->v[k][i] = v[i];
        free(v);
    }
    rc = 0;
done:
    H5Fclose(f);
    return rc;
}

static char *script_triggers(const res_info_t *r, const plot_opts_t *o, const char *out,
                             const char *target) {
    if (!res_has(r, "agreement"))
        return err_set("%s: no key-value agreement table to plot (made with --stats-only or "
                       "--no-agreement%s)",
                       r->path, r->csv ? ", or FILE.agreement.csv is not beside it" : ""),
               NULL;
    agree_t *a = calloc(1, sizeof *a);
    if (!a) return err_set("out of memory"), NULL;
    a->vocab = NAN;
    sbuf_t b = {0};
    int e = r->csv ? res_csv_each(r->csv_agree, agree_csv_row, a) : agree_from_h5(r, a);
    if (!e && a->n == 0) e = err_set("%s: the agreement table is empty", r->path);
    if (e) goto done;
    gp_begin(&b, out, target, o->width ? o->width : 1100, o->height ? o->height : 440);
    sb_add(&b, "$a << EOD\n");
    for (int i = 0; i < a->n; i++) {
        for (int k = 0; k < A_N; k++) {
            if (k) sb_add(&b, " ");
            gp_num(&b, a->v[k][i]);
        }
        sb_add(&b, "\n");
    }
    sb_add(&b, "EOD\nset multiplot layout 1,2 title 'key-value agreement (Geva et al. 2021, "
               "Section 4): does the value vector promote the token after the trigger?'\n"
               "set xlabel 'layer'\nset xtics 1\nset key below font ',8'\n");
    sb_printf(&b, "set xrange [%g:%g]\n", a->v[A_LAYER][0] - 0.6, a->v[A_LAYER][a->n - 1] + 0.6);
    int chance = !isnan(a->vocab) && a->vocab > 1;
    sb_add(&b, "set ylabel 'share of neurons: value top-1 = next token'\nset yrange [0:*]\n"
               "set title 'agreement of the top trigger'\n");
    sb_add(&b,
           "plot $a using 1:($2/2):(0.35):($2/2) with boxxyerror lc rgb '#1f77b4' title 'share'");
    if (chance)
        sb_printf(&b, ", %.9g with lines dt 2 lc rgb '#555555' title 'chance 1/%d'", 1.0 / a->vocab,
                  (int)a->vocab);
    sb_add(&b, "\nset ylabel 'rank of the next token in the value projection'\n"
               "set title 'where the next token ranks (0 = top)'\n");
    sb_add(&b,
           "plot $a using 1:3 with linespoints pt 7 lc rgb '#1f77b4' title 'mean, all triggers', "
           "$a using 1:4 with linespoints pt 5 lc rgb '#ff7f0e' title 'median, all triggers', "
           "$a using 1:5 with linespoints dt 2 pt 6 lc rgb '#2ca02c' title 'mean, top trigger'");
    if (chance)
        sb_printf(&b, ", %.9g with lines dt 2 lc rgb '#555555' title 'chance'", (a->vocab - 1) / 2);
    sb_add(&b, "\nunset multiplot\n");
done:
    free(a);
    if (e || b.failed) {
        if (!e) err_set("out of memory");
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* ---- running gnuplot ------------------------------------------------------------------- */

static char *script_for(const res_info_t *r, const plot_opts_t *o, const char *out,
                        const char *target) {
    size_t n = strlen(out);
    if (!(n > 4 && (!strcmp(out + n - 4, ".png") || !strcmp(out + n - 4, ".svg"))))
        return err_set("%s: the figure's name must end in .png or .svg", out), NULL;
    switch (r->kind) {
    case RES_ACTIVATIONS: return script_activations(r, o, out, target);
    case RES_VALUES: return script_values(r, o, out, target);
    case RES_TRACE: return script_trace(r, o, out, target);
    case RES_TRIGGERS: return script_triggers(r, o, out, target);
    }
    return err_set("unknown result kind"), NULL;
}

char *plot_script(const res_info_t *r, const plot_opts_t *o, const char *out) {
    return script_for(r, o, out, out);
}

/* Runs gnuplot on SCRIPT (a file) with stderr into ERRPATH; 0 or -1 with err. */
static int run_gnuplot(const char *prog, const char *script, const char *errpath) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char *argv[] = {(char *)prog, (char *)script, NULL};
    pid_t pid;
    int e = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e == ENOENT)
        return err_set("%s not found: probe plot draws with gnuplot (Debian: apt-get install "
                       "gnuplot-nox, or make deps)",
                       prog);
    if (e) return err_set("cannot run %s: %s", prog, strerror(e));
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return err_set("waiting for %s: %s", prog, strerror(errno));
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
    /* Quote gnuplot's own message (the last lines of its stderr). */
    char msg[600] = "";
    FILE *fe = fopen(errpath, "r");
    if (fe) {
        size_t n = fread(msg, 1, sizeof msg - 1, fe);
        msg[n] = '\0';
        fclose(fe);
        for (char *p = msg; *p; p++)
            if (*p == '\n' && p[1]) *p = ' ';
    }
    return err_set("%s failed (%s %d): %s", prog, WIFEXITED(st) ? "exit" : "signal",
                   WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), msg[0] ? msg : "no message");
}

int plot_write(const res_info_t *r, const plot_opts_t *o, const char *out) {
    ofile_t *of = ofile_begin(out);
    if (!of) return -1;
    char *script = script_for(r, o, out, ofile_tmp_path(of));
    if (!script) {
        ofile_abort(of);
        return -1;
    }
    const char *tmp = getenv("TMPDIR");
    char sp[4096], ep[4200];
    snprintf(sp, sizeof sp, "%s/probe-plot-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int rc = -1, fd = mkstemp(sp);
    ep[0] = '\0';
    if (fd < 0) {
        err_set("cannot create a temporary file in %s: %s", tmp && *tmp ? tmp : "/tmp",
                strerror(errno));
        goto done;
    }
    size_t n = strlen(script);
    int bad = write(fd, script, n) != (ssize_t)n;
    bad |= close(fd) != 0;
    if (bad) {
        err_set("cannot write the gnuplot script to %s", sp);
        goto done;
    }
    snprintf(ep, sizeof ep, "%s.err", sp);
    if (run_gnuplot(o->gnuplot ? o->gnuplot : "gnuplot", sp, ep)) goto done;
    struct stat st;
    if (stat(ofile_tmp_path(of), &st) != 0 || st.st_size == 0) {
        err_set("%s: gnuplot wrote nothing", out);
        goto done;
    }
    rc = ofile_commit(of);
    of = NULL;
done:
    if (fd >= 0) unlink(sp);
    if (ep[0]) unlink(ep);
    ofile_abort(of);
    free(script);
    return rc;
}
