/* result: identify probe result files and read them back (see result.h). */
#include "result.h"

#include "core/err.h"

#include <csv.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_ELEMS ((int64_t)1 << 28)

static const char *kind_names[] = {"activations", "values", "trace", "triggers"};

/* ---- small helpers ------------------------------------------------------------ */

static void feat(res_info_t *r, const char *w) {
    size_t n = strlen(r->features);
    snprintf(r->features + n, sizeof r->features - n, "%s%s", n ? " " : "", w);
}

int res_has(const res_info_t *r, const char *word) {
    size_t n = strlen(word);
    for (const char *p = r->features; (p = strstr(p, word)); p += n)
        if ((p == r->features || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return 1;
    return 0;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

void res_strs_free(char **s, int64_t n) {
    if (!s) return;
    for (int64_t i = 0; i < n; i++) free(s[i]);
    free(s);
}

void res_info_free(res_info_t *r) {
    if (!r) return;
    free(r->path);
    free(r->abs_path);
    free(r->model);
    free(r->command);
    free(r->corpus);
    free(r->target);
    res_strs_free(r->prompts, r->n_prompts);
    free(r->csv_main);
    free(r->csv_stats);
    free(r->csv_hist);
    free(r->csv_agree);
    memset(r, 0, sizeof *r);
}

/* ---- HDF5 --------------------------------------------------------------------- */

hid_t res_h5_open(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) err_set("%s: cannot open as HDF5", path);
    return f;
}

int res_h5_exists(hid_t loc, const char *path) {
    /* H5Lexists needs every intermediate link to exist: walk the path. */
    char buf[512];
    if (strlen(path) >= sizeof buf) return 0;
    strcpy(buf, path);
    for (char *p = buf;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (p > buf && H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return 0;
            if (!c) return 1;
            *p = c;
        }
    }
}

char *res_h5_attr_str(hid_t loc, const char *name) {
    if (H5Aexists(loc, name) <= 0) return NULL;
    char *out = NULL;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT), t = a < 0 ? -1 : H5Aget_type(a),
          sp = a < 0 ? -1 : H5Aget_space(a), mt = -1;
    if (t < 0 || sp < 0 || H5Tget_class(t) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1) {
        err_set("HDF5 attribute '%s' is not a single string", name);
        goto done;
    }
    mt = H5Tcopy(H5T_C_S1);
    if (H5Tis_variable_str(t) > 0) {
        char *s = NULL;
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(t));
        if (H5Aread(a, mt, &s) >= 0 && s) {
            out = strdup(s);
            H5free_memory(s);
        }
    } else {
        size_t n = H5Tget_size(t);
        if (n > 0 && n < ((size_t)1 << 24) && (out = calloc(n + 1, 1))) {
            H5Tset_size(mt, n + 1);
            H5Tset_cset(mt, H5Tget_cset(t));
            if (H5Aread(a, mt, out) < 0) {
                free(out);
                out = NULL;
            }
        }
    }
    if (!out) err_set("HDF5 attribute '%s' cannot be read", name);
done:
    if (mt >= 0) H5Tclose(mt);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return out;
}

int res_h5_attr_num(hid_t loc, const char *name, double *out) {
    if (H5Aexists(loc, name) <= 0) return err_set("HDF5 attribute '%s' is missing", name);
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT), t = a < 0 ? -1 : H5Aget_type(a),
          sp = a < 0 ? -1 : H5Aget_space(a);
    int rc = -1;
    if (t >= 0 && sp >= 0 && (H5Tget_class(t) == H5T_INTEGER || H5Tget_class(t) == H5T_FLOAT) &&
        H5Sget_simple_extent_npoints(sp) == 1 && H5Aread(a, H5T_NATIVE_DOUBLE, out) >= 0)
        rc = 0;
    else
        err_set("HDF5 attribute '%s' is not a number", name);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return rc;
}

static int read_num(hid_t loc, const char *path, int rank, int64_t dims[2], hid_t mtype,
                    size_t elem, void **out) {
    *out = NULL;
    if (!res_h5_exists(loc, path)) return err_set("dataset '%s' is missing", path);
    hid_t d = H5Dopen2(loc, path, H5P_DEFAULT), t = d < 0 ? -1 : H5Dget_type(d),
          sp = d < 0 ? -1 : H5Dget_space(d);
    int rc = -1;
    hsize_t hd[2] = {0, 1};
    int nd = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    if (t < 0 || (H5Tget_class(t) != H5T_INTEGER && H5Tget_class(t) != H5T_FLOAT)) {
        err_set("dataset '%s' is not numeric", path);
        goto done;
    }
    if (nd != rank || rank < 1 || rank > 2) {
        err_set("dataset '%s' has %d dimensions, expected %d", path, nd, rank);
        goto done;
    }
    H5Sget_simple_extent_dims(sp, hd, NULL);
    if (rank == 1) hd[1] = 1;
    if (hd[0] > (hsize_t)MAX_ELEMS || hd[1] > (hsize_t)MAX_ELEMS ||
        hd[0] * hd[1] > (hsize_t)MAX_ELEMS) {
        err_set("dataset '%s' is too large to plot (%llu x %llu)", path, (unsigned long long)hd[0],
                (unsigned long long)hd[1]);
        goto done;
    }
    dims[0] = (int64_t)hd[0];
    dims[1] = (int64_t)hd[1];
    hsize_t count = hd[0] * hd[1];
    *out = malloc((size_t)(count > 0 ? count : 1) * elem);
    if (!*out) {
        err_set("out of memory reading '%s'", path);
        goto done;
    }
    if (count > 0 && H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) {
        err_set("dataset '%s' cannot be read", path);
        goto done;
    }
    rc = 0;
done:
    if (rc) {
        free(*out);
        *out = NULL;
    }
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    return rc;
}

int res_h5_f32(hid_t loc, const char *path, int rank, int64_t dims[2], float **out) {
    return read_num(loc, path, rank, dims, H5T_NATIVE_FLOAT, sizeof(float), (void **)out);
}

int res_h5_i32(hid_t loc, const char *path, int rank, int64_t dims[2], int32_t **out) {
    return read_num(loc, path, rank, dims, H5T_NATIVE_INT32, sizeof(int32_t), (void **)out);
}

int res_h5_strs(hid_t loc, const char *path, char ***out, int64_t *n) {
    *out = NULL;
    *n = 0;
    if (!res_h5_exists(loc, path)) return err_set("dataset '%s' is missing", path);
    hid_t d = H5Dopen2(loc, path, H5P_DEFAULT), t = d < 0 ? -1 : H5Dget_type(d),
          sp = d < 0 ? -1 : H5Dget_space(d), mt = -1;
    int rc = -1;
    hsize_t cnt = 0;
    char **s = NULL;
    if (t < 0 || sp < 0 || H5Tget_class(t) != H5T_STRING || H5Sget_simple_extent_ndims(sp) != 1) {
        err_set("dataset '%s' is not a list of strings", path);
        goto done;
    }
    H5Sget_simple_extent_dims(sp, &cnt, NULL);
    if (cnt > (hsize_t)MAX_ELEMS) {
        err_set("dataset '%s' is too large", path);
        goto done;
    }
    if (!(s = calloc(cnt ? cnt : 1, sizeof *s))) goto oom;
    mt = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mt, H5Tget_cset(t));
    if (H5Tis_variable_str(t) > 0) {
        H5Tset_size(mt, H5T_VARIABLE);
        char **raw = calloc(cnt ? cnt : 1, sizeof *raw);
        if (!raw) goto oom;
        if (cnt && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) < 0) {
            free(raw);
            err_set("dataset '%s' cannot be read", path);
            goto done;
        }
        int bad = 0;
        for (hsize_t i = 0; i < cnt; i++) bad |= !(s[i] = strdup(raw[i] ? raw[i] : ""));
        H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, raw);
        free(raw);
        if (bad) goto oom;
    } else {
        size_t w = H5Tget_size(t);
        char *raw = w && w < 65536 ? calloc(cnt ? cnt : 1, w + 1) : NULL;
        if (!raw) goto oom;
        H5Tset_size(mt, w + 1);
        if (cnt && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) < 0) {
            free(raw);
            err_set("dataset '%s' cannot be read", path);
            goto done;
        }
        int bad = 0;
        for (hsize_t i = 0; i < cnt; i++) bad |= !(s[i] = strndup(raw + i * (w + 1), w));
        free(raw);
        if (bad) goto oom;
    }
    *out = s;
    *n = (int64_t)cnt;
    s = NULL;
    rc = 0;
    goto done;
oom:
    err_set("out of memory reading '%s'", path);
done:
    res_strs_free(s, (int64_t)cnt);
    if (mt >= 0) H5Tclose(mt);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    return rc;
}

/* ---- CSV ------------------------------------------------------------------------ */

typedef struct {
    res_row_fn fn;
    void *user;
    char *buf; /* fields of the current row, each NUL-terminated */
    size_t len, cap;
    size_t *off;
    char **fields;
    int nf, capf;
    int64_t row;
    int stop; /* 1 stop, -1 failed */
} csvr_t;

static void on_field(void *s, size_t n, void *data) {
    csvr_t *c = data;
    if (c->stop) return;
    if (c->nf == c->capf) {
        int nc = c->capf ? 2 * c->capf : 32;
        size_t *o = realloc(c->off, (size_t)nc * sizeof *o);
        char **f = o ? realloc(c->fields, (size_t)nc * sizeof *f) : NULL;
        if (o) c->off = o;
        if (!f) {
            c->stop = err_set("out of memory reading CSV");
            return;
        }
        c->fields = f;
        c->capf = nc;
    }
    if (c->len + n + 1 > c->cap) {
        size_t nc = c->cap ? c->cap : 4096;
        while (nc < c->len + n + 1) nc *= 2;
        char *b = realloc(c->buf, nc);
        if (!b) {
            c->stop = err_set("out of memory reading CSV");
            return;
        }
        c->buf = b;
        c->cap = nc;
    }
    c->off[c->nf++] = c->len;
    if (n) memcpy(c->buf + c->len, s, n);
    c->len += n;
    c->buf[c->len++] = '\0';
}

static void on_row(int term, void *data) {
    csvr_t *c = data;
    if (c->stop) return;
    for (int i = 0; i < c->nf; i++) c->fields[i] = c->buf + c->off[i];
    int r = c->fn(c->user, c->row++, c->fields, c->nf);
    if (r) c->stop = r;
    c->nf = 0;
    c->len = 0;
}

int res_csv_each(const char *path, res_row_fn fn, void *user) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return err_set("%s: cannot open: %s", path, strerror(errno));
    struct csv_parser p;
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0) {
        fclose(fp);
        return err_set("out of memory");
    }
    csvr_t c = {.fn = fn, .user = user};
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (!c.stop && (n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
        if (csv_parse(&p, chunk, n, on_field, on_row, &c) != n && !c.stop) {
            rc = err_set("%s: not valid CSV near row %lld: %s", path, (long long)c.row + 1,
                         csv_strerror(csv_error(&p)));
            break;
        }
    }
    if (!rc && !c.stop && ferror(fp)) rc = err_set("%s: read error", path);
    if (!rc && !c.stop && csv_fini(&p, on_field, on_row, &c) != 0)
        rc = err_set("%s: not valid CSV at its end: %s", path, csv_strerror(csv_error(&p)));
    if (!rc && c.stop < 0) rc = -1;
    csv_free(&p);
    fclose(fp);
    free(c.buf);
    free(c.off);
    free(c.fields);
    return rc;
}

int res_csv_col(char **header, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(header[i], name)) return i;
    return -1;
}

/* ---- identification ----------------------------------------------------------- */

/* CSV headers by their leading columns (docs/FORMAT.md). */
enum { SIG_ACTS, SIG_VALUES, SIG_PROMOTES, SIG_TRACE, SIG_TRG, SIG_TRG_STATS, SIG_TRG_HIST, SIG_TRG_AGREE };
static const struct {
    const char *cols;
    res_kind_t kind;
} csv_sigs[] = {
    [SIG_ACTS] = {"prompt_id,position,token_id,token,layer,neuron,activation", RES_ACTIVATIONS},
    [SIG_VALUES] = {"layer,neuron,direction,rank,token_id,token,score", RES_VALUES},
    [SIG_PROMOTES] = {"layer,neuron,token_id,token,score,rank", RES_VALUES},
    [SIG_TRACE] = {"run,position,target_id,target,ranking,layer,neuron", RES_TRACE},
    [SIG_TRG] = {"layer,neuron,rank,activation,doc,position", RES_TRIGGERS},
    [SIG_TRG_STATS] = {"layer,neuron,n,mean,variance", RES_TRIGGERS},
    [SIG_TRG_HIST] = {"layer,kind,bin,lo,hi,count", RES_TRIGGERS},
    [SIG_TRG_AGREE] = {"layer,n_neurons,n_eval,n_agree", RES_TRIGGERS},
};
#define N_SIGS ((int)(sizeof csv_sigs / sizeof *csv_sigs))

typedef struct {
    char line[512]; /* the header as read, for messages */
    int sig;        /* matching signature or -1 */
} head_t;

static int head_row(void *user, int64_t row, char **f, int n) {
    head_t *h = user;
    size_t k = 0;
    for (int i = 0; i < n && k < sizeof h->line - 1; i++)
        k += (size_t)snprintf(h->line + k, sizeof h->line - k, i ? ",%s" : "%s", f[i]);
    for (int s = 0; s < N_SIGS && h->sig < 0; s++) {
        const char *c = csv_sigs[s].cols;
        int i = 0, ok = 1;
        while (*c && ok) {
            size_t len = strcspn(c, ",");
            ok = i < n && strlen(f[i]) == len && !strncmp(f[i], c, len);
            c += len + (c[len] == ',');
            i++;
        }
        if (ok) h->sig = s;
    }
    return 1;
}

/* Reads the header row; -1 with err if none could be read. */
static int csv_head(const char *path, head_t *h) {
    h->line[0] = '\0';
    h->sig = -1;
    return res_csv_each(path, head_row, h);
}

typedef struct {
    int col, found;
} scan_t;

static int scan_intervened(void *user, int64_t row, char **f, int n) {
    scan_t *s = user;
    if (row == 0) {
        s->col = res_csv_col(f, n, "run");
        return s->col < 0;
    }
    if (s->col < n && !strcmp(f[s->col], "intervened")) {
        s->found = 1;
        return 1;
    }
    return 0;
}

static char *strip_suffix_dup(const char *path, const char *suf, const char *add) {
    size_t a = strlen(path) - strlen(suf);
    char *s = malloc(a + strlen(add) + 1);
    if (!s) return NULL;
    memcpy(s, path, a);
    strcpy(s + a, add);
    return s;
}

static int identify_csv(const char *path, res_info_t *r) {
    head_t h;
    if (csv_head(path, &h)) {
        err_set("%s: not a probe result: neither HDF5 nor CSV that probe wrote", path);
        return -1;
    }
    /* Control bytes (other than tab, CR, LF) in the first 4 KiB: binary data. */
    int binary = 0;
    FILE *fp = fopen(path, "rb");
    if (fp) {
        unsigned char buf[4096];
        size_t n = fread(buf, 1, sizeof buf, fp);
        fclose(fp);
        for (size_t i = 0; i < n; i++)
            if (buf[i] < 9 || (buf[i] > 13 && buf[i] < 32)) binary = 1;
    }
    if (h.sig < 0 && binary)
        return err_set("%s: not a probe result: neither HDF5 nor CSV (it holds binary data)", path);
    if (h.sig < 0) {
        char shown[130];
        size_t k = 0;
        for (const char *p = h.line; *p && k < 120; p++)
            shown[k++] = (unsigned char)*p >= 32 && (unsigned char)*p < 127 ? *p : '?';
        shown[k] = '\0';
        return err_set("%s: not a probe result: it is not HDF5, and its first line '%s%s' is "
                       "not the header of any probe CSV (activations: prompt_id,position,...; "
                       "values: layer,neuron,direction,...; trace: run,position,...; triggers: "
                       "layer,neuron,rank,activation,...)",
                       path, shown, strlen(h.line) > 120 ? "..." : "");
    }
    r->kind = csv_sigs[h.sig].kind;
    r->csv = 1;
    feat(r, "csv");
    if (h.sig == SIG_PROMOTES) feat(r, "promotes");
    if (h.sig == SIG_VALUES) feat(r, "forward norms");
    if (h.sig == SIG_TRACE) {
        scan_t s = {-1, 0};
        if (res_csv_each(path, scan_intervened, &s)) return -1;
        if (s.found) feat(r, "intervened");
    }
    if (r->kind == RES_TRIGGERS) {
        /* FILE.csv comes with FILE.stats.csv, FILE.hist.csv and FILE.agreement.csv;
         * whichever of them is given, the others are looked for beside it.  A
         * file counts only if its header is the one expected. */
        static const char *sufs[] = {".stats.csv", ".hist.csv", ".agreement.csv"};
        static const int sigs[] = {SIG_TRG_STATS, SIG_TRG_HIST, SIG_TRG_AGREE};
        char **dst[3] = {&r->csv_stats, &r->csv_hist, &r->csv_agree};
        char *base = NULL;
        for (int i = 0; i < 3 && !base; i++)
            if (h.sig == sigs[i] && ends_with(path, sufs[i]))
                base = strip_suffix_dup(path, sufs[i], ".csv");
        if (!base && ends_with(path, ".csv")) base = strip_suffix_dup(path, ".csv", ".csv");
        if (!base) { /* not named *.csv: no siblings */
            char **d = h.sig == SIG_TRG ? &r->csv_main : NULL;
            for (int i = 0; i < 3; i++)
                if (h.sig == sigs[i]) d = dst[i];
            if (!(*d = strdup(path))) return err_set("out of memory");
        } else {
            head_t sh;
            if (h.sig == SIG_TRG ||
                (file_exists(base) && !csv_head(base, &sh) && sh.sig == SIG_TRG)) {
                r->csv_main = base;
                base = NULL;
            }
            const char *stem = r->csv_main ? r->csv_main : base;
            for (int i = 0; i < 3; i++) {
                char *sib = strip_suffix_dup(stem, ".csv", sufs[i]);
                if (!sib) {
                    free(base);
                    return err_set("out of memory");
                }
                if (file_exists(sib) && !csv_head(sib, &sh) && sh.sig == sigs[i]) *dst[i] = sib;
                else free(sib);
            }
            free(base);
            err_clear();
            /* The file given counts even when its name does not follow the pattern. */
            char **d = h.sig == SIG_TRG ? &r->csv_main : NULL;
            for (int i = 0; i < 3; i++)
                if (h.sig == sigs[i]) d = dst[i];
            if (!*d && !(*d = strdup(path))) return err_set("out of memory");
        }
        if (r->csv_main) feat(r, "trig_main");
        if (r->csv_stats) feat(r, "stats");
        if (r->csv_hist) feat(r, "hist");
        if (r->csv_agree) feat(r, "agreement");
    }
    return 0;
}

static int identify_h5(const char *path, res_info_t *r) {
    hid_t f = res_h5_open(path);
    if (f < 0) return -1;
    int rc = -1;
    char *kind = res_h5_attr_str(f, "probe_kind");
    if (!kind) {
        err_set("%s: not a probe result: an HDF5 file without the root attribute probe_kind "
                "(probe activations/values/trace/triggers --out FILE.h5 write it)",
                path);
        goto done;
    }
    if (!strcmp(kind, "activations")) r->kind = RES_ACTIVATIONS;
    else if (!strcmp(kind, "values")) r->kind = RES_VALUES;
    else if (!strcmp(kind, "values_promotes")) r->kind = RES_VALUES;
    else if (!strcmp(kind, "trace")) r->kind = RES_TRACE;
    else if (!strcmp(kind, "triggers")) r->kind = RES_TRIGGERS;
    else {
        err_set("%s: probe_kind '%s' is not one this probe knows (activations, values, trace, "
                "triggers)",
                path, kind);
        goto done;
    }
    feat(r, "h5");
    r->model = res_h5_attr_str(f, "model_path");
    r->command = res_h5_attr_str(f, "command");
    if (r->kind == RES_ACTIVATIONS) {
        double np = 0;
        if (res_h5_attr_num(f, "n_prompts", &np) || np < 0 || np > 1e6) np = 0;
        int n = (int)np;
        if (n && !(r->prompts = calloc((size_t)n, sizeof *r->prompts))) goto oom;
        for (int i = 0; i < n; i++) {
            char g[64];
            snprintf(g, sizeof g, "prompt_%d", i);
            if (!res_h5_exists(f, g)) break;
            hid_t gi = H5Gopen2(f, g, H5P_DEFAULT);
            if (gi < 0) break;
            r->prompts[i] = res_h5_attr_str(gi, "text");
            H5Gclose(gi);
            if (!r->prompts[i]) break;
            r->n_prompts = i + 1;
        }
        if (r->n_prompts == 0) {
            err_set("%s: an activations file without prompt groups", path);
            goto done;
        }
    } else if (r->kind == RES_VALUES) {
        feat(r, !strcmp(kind, "values_promotes") ? "promotes norms" : "forward norms");
        r->target = res_h5_attr_str(f, "promote_token");
        if (res_h5_exists(f, "tokens")) feat(r, "vocab");
    } else if (r->kind == RES_TRACE) {
        char *p = res_h5_attr_str(f, "prompt");
        if (p) {
            if (!(r->prompts = calloc(1, sizeof *r->prompts))) {
                free(p);
                goto oom;
            }
            r->prompts[0] = p;
            r->n_prompts = 1;
        }
        char **t;
        int64_t n;
        if (res_h5_exists(f, "targets") && !res_h5_strs(f, "targets", &t, &n)) {
            if (n > 0) r->target = strdup(t[0]);
            res_strs_free(t, n);
        }
        if (!res_h5_exists(f, "base")) {
            err_set("%s: a trace file without its base run", path);
            goto done;
        }
        if (res_h5_exists(f, "intervened")) feat(r, "intervened");
        if (res_h5_exists(f, "base/generated_ids")) feat(r, "generated");
    } else {
        r->corpus = res_h5_attr_str(f, "corpus");
        if (res_h5_exists(f, "agreement")) feat(r, "agreement");
        int32_t *ly = NULL;
        int64_t d[2];
        if (!res_h5_i32(f, "layers", 1, d, &ly) && d[0] > 0) {
            char g[96];
            snprintf(g, sizeof g, "layer_%d/key_act", ly[0]);
            if (res_h5_exists(f, g)) feat(r, "trig_main");
            snprintf(g, sizeof g, "layer_%d/stats", ly[0]);
            if (res_h5_exists(f, g)) feat(r, "stats");
        }
        free(ly);
        if (res_h5_exists(f, "tokens")) feat(r, "vocab");
    }
    err_clear();
    rc = 0;
    goto done;
oom:
    err_set("out of memory");
done:
    free(kind);
    H5Fclose(f);
    return rc;
}

int res_identify(const char *path, res_info_t *r) {
    memset(r, 0, sizeof *r);
    struct stat st;
    if (stat(path, &st) != 0) return err_set("%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return err_set("%s: not a regular file", path);
    if (st.st_size == 0) return err_set("%s: not a probe result: the file is empty", path);
    r->path = strdup(path);
    r->abs_path = realpath(path, NULL);
    if (!r->path || !r->abs_path) {
        res_info_free(r);
        return err_set("%s: out of memory", path);
    }
    htri_t is_h5 = H5Fis_hdf5(path);
    int rc = is_h5 > 0 ? identify_h5(path, r) : identify_csv(path, r);
    if (rc) {
        res_info_free(r);
        return -1;
    }
    r->kind_name = kind_names[r->kind];
    return 0;
}
