/* safetensors: the header parser and shard loader (see safetensors.h).
 *
 * Follows the format description of Hugging Face's safetensors crate: header
 * length as u64 little-endian, a JSON object header (duplicate keys are an
 * error there too), data_offsets relative to the start of the data section.
 * Unlike that crate we accept gaps between tensors (harmless: nothing points
 * at them) but, like it, never overlapping tensors. */
#include "safetensors.h"

#include "err.h"

#include <jansson.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

/* ---- Small helpers ------------------------------------------------------ */

/* NAME made safe for a one-line message: control bytes become '?', long
 * names are cut. */
static const char *safe(const char *s, char *buf, size_t n) {
    size_t i = 0;
    for (; s[i] && i + 4 < n; i++)
        buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    if (s[i]) memcpy(buf + i, "...", 3), i += 3;
    buf[i] = '\0';
    return buf;
}

static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int st_dir_has_weights(const char *dir) {
    char *a = path_join(dir, "model.safetensors"),
         *b = path_join(dir, "model.safetensors.index.json");
    int r = (a && is_file(a)) || (b && is_file(b));
    free(a);
    free(b);
    return r;
}

/* safetensors dtypes: byte size of one element and our dtype (-1: not usable). */
static const struct {
    const char *name;
    int size, dt;
} st_dtypes[] = {
    {"F32", 4, DT_F32}, {"F16", 2, DT_F16}, {"BF16", 2, DT_BF16}, {"F64", 8, -1},
    {"I64", 8, -1},     {"U64", 8, -1},     {"I32", 4, -1},       {"U32", 4, -1},
    {"I16", 2, -1},     {"U16", 2, -1},     {"I8", 1, -1},        {"U8", 1, -1},
    {"BOOL", 1, -1},    {"F8_E4M3", 1, -1}, {"F8_E5M2", 1, -1},   {"F8_E8M0", 1, -1},
};

/* ---- The set ---------------------------------------------------------------- */

void st_close(st_t *s) {
    if (!s) return;
    for (int i = 0; i < s->n_files; i++)
        mfile_close(s->files[i]);
    free(s->files);
    ttab_free(&s->tensors);
    free(s->tensor_file);
    for (int i = 0; i < s->n_skipped; i++) {
        free(s->skipped[i].name);
        free(s->skipped[i].reason);
    }
    free(s->skipped);
    strmap_free(&s->names);
    for (int i = 0; i < s->n_copies; i++)
        free(s->copies[i]);
    free(s->copies);
    free(s->path);
    free(s);
}

const tensor_t *st_find(const st_t *s, const char *name) {
    int i = strmap_get(&s->names, name, strlen(name), -1);
    return i >= 0 ? &s->tensors.items[i] : NULL;
}

const char *st_skip_reason(const st_t *s, const char *name) {
    int i = strmap_get(&s->names, name, strlen(name), -1);
    return i <= -2 ? s->skipped[-2 - i].reason : NULL;
}

static int add_skip(st_t *s, const char *name, int file, const char *fmt, const char *arg) {
    st_skip_t *p = realloc(s->skipped, (size_t)(s->n_skipped + 1) * sizeof *p);
    if (!p) return err_set("out of memory");
    s->skipped = p;
    char reason[160];
    snprintf(reason, sizeof reason, fmt, arg);
    p[s->n_skipped].name = strdup(name);
    p[s->n_skipped].reason = strdup(reason);
    p[s->n_skipped].file = file;
    if (!p[s->n_skipped].name || !p[s->n_skipped].reason) {
        free(p[s->n_skipped].name);
        free(p[s->n_skipped].reason);
        return err_set("out of memory");
    }
    s->n_skipped++;
    return strmap_put(&s->names, name, strlen(name), -1 - s->n_skipped);
}

static int add_tensor(st_t *s, const tensor_t *t, int file) {
    int *tf = realloc(s->tensor_file, (size_t)(s->tensors.n + 1) * sizeof *tf);
    if (!tf) return err_set("out of memory");
    s->tensor_file = tf;
    tf[s->tensors.n] = file;
    if (!ttab_add(&s->tensors, t)) return -1;
    return strmap_put(&s->names, t->name, strlen(t->name), s->tensors.n - 1);
}

/* ---- One file ------------------------------------------------------------------ */

typedef struct {
    uint64_t begin, end;
    const char *name; /* borrowed from the JSON */
} span_t;

static int span_cmp(const void *a, const void *b) {
    const span_t *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* Non-negative JSON integer, or -1. */
static long long json_nonneg(const json_t *v) {
    if (!json_is_integer(v)) return -1;
    json_int_t i = json_integer_value(v);
    return i < 0 ? -1 : (long long)i;
}

/* Checks one header entry and adds it (or its skip record).  P names the
 * file for messages. */
static int parse_entry(st_t *s, int file, const char *p, const char *name, json_t *e,
                       const uint8_t *data, uint64_t dsize, span_t *span) {
    char nb[100], sb[128];
    const char *sn = safe(name, nb, sizeof nb);
    if (!json_is_object(e)) return err_set("%s: tensor '%s': header entry is not an object", p, sn);
    json_t *jd = json_object_get(e, "dtype"), *js = json_object_get(e, "shape"),
           *jo = json_object_get(e, "data_offsets");
    if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo))
        return err_set("%s: tensor '%s': entry needs \"dtype\" (string), \"shape\" and "
                       "\"data_offsets\" (arrays)",
                       p, sn);
    const char *dts = json_string_value(jd);
    int esize = 0, dt = -1;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof *st_dtypes; i++)
        if (!strcmp(dts, st_dtypes[i].name)) esize = st_dtypes[i].size, dt = st_dtypes[i].dt;
    /* Shape: any rank is checked; element count with overflow checks. */
    size_t ndim = json_array_size(js);
    if (ndim > 64) return err_set("%s: tensor '%s': %zu dimensions", p, sn, ndim);
    int64_t shape[64];
    unsigned long long nel = 1;
    for (size_t i = 0; i < ndim; i++) {
        long long d = json_nonneg(json_array_get(js, i));
        if (d < 0)
            return err_set("%s: tensor '%s': shape entry %zu is not an integer >= 0", p, sn, i);
        shape[i] = d;
        if (!err_mul_u64(nel, (unsigned long long)d, &nel) || nel > (1ull << 50))
            return err_set("%s: tensor '%s': shape %s%s overflows", p, sn,
                           tensor_shape_str((int)i + 1, shape, sb, sizeof sb),
                           i + 1 < ndim ? " (and more)" : "");
    }
    long long b = json_array_size(jo) == 2 ? json_nonneg(json_array_get(jo, 0)) : -1;
    long long en = json_array_size(jo) == 2 ? json_nonneg(json_array_get(jo, 1)) : -1;
    if (b < 0 || en < 0)
        return err_set("%s: tensor '%s': data_offsets is not [begin, end] with integers >= 0", p,
                       sn);
    if (b > en || (uint64_t)en > dsize)
        return err_set("%s: tensor '%s': data_offsets [%lld, %lld] are outside the data section of "
                       "%llu bytes",
                       p, sn, b, en, (unsigned long long)dsize);
    uint64_t have = (uint64_t)(en - b);
    if (esize) {
        unsigned long long want;
        if (!err_mul_u64(nel, (unsigned long long)esize, &want))
            return err_set("%s: tensor '%s': size overflows", p, sn);
        if (want != have)
            return err_set("%s: tensor '%s': %s %s needs %llu bytes but data_offsets [%lld, %lld] "
                           "hold %llu",
                           p, sn, dts, tensor_shape_str((int)ndim, shape, sb, sizeof sb), want, b,
                           en, (unsigned long long)have);
    }
    span->begin = (uint64_t)b;
    span->end = (uint64_t)en;
    span->name = name;
    if (st_find(s, name) || st_skip_reason(s, name))
        return err_set("%s: tensor '%s' is also in another shard", p, sn);
    /* Usable, or skipped with the reason. */
    if (!esize) return add_skip(s, name, file, "dtype %s is unknown", safe(dts, sb, 40));
    if (dt < 0)
        return add_skip(s, name, file, "dtype %s is not supported (F32, F16, BF16 are)", dts);
    if (ndim > TENSOR_MAX_DIMS)
        return add_skip(s, name, file, "it has %s dimensions", "more than 4");
    if (nel == 0) return add_skip(s, name, file, "it has %s elements", "no");
    if (strlen(name) >= TENSOR_NAME_MAX)
        return add_skip(s, name, file, "its name is %s", "too long");
    tensor_t t;
    memset(&t, 0, sizeof t);
    memcpy(t.name, name, strlen(name) + 1);
    t.dtype = (dtype_t)dt;
    /* A 0-d tensor (a scalar) is viewed as one element of shape [1]. */
    t.ndim = ndim ? (int)ndim : 1;
    if (ndim)
        memcpy(t.shape, shape, ndim * sizeof *shape);
    else
        t.shape[0] = 1;
    t.nbytes = tensor_bytes_for(t.dtype, t.ndim, t.shape);
    if (t.nbytes != have) return err_prefix("%s: tensor '%s'", p, sn);
    t.data = data + b;
    /* The forward pass reads F32 weights in place as float arrays; a writer
     * that did not pad the header can leave them misaligned.  Copy those. */
    if (t.dtype == DT_F32 && ((uintptr_t)t.data % sizeof(float)) != 0) {
        void **c = realloc(s->copies, (size_t)(s->n_copies + 1) * sizeof *c);
        if (!c) return err_set("out of memory");
        s->copies = c;
        void *buf = malloc(t.nbytes);
        if (!buf) return err_set("out of memory for a copy of tensor '%s'", sn);
        memcpy(buf, t.data, t.nbytes);
        c[s->n_copies++] = buf;
        t.data = buf;
    }
    return add_tensor(s, &t, file);
}

/* Maps PATH and adds its tensors to S as file number S->n_files. */
static int add_file(st_t *s, const char *p) {
    mfile_t *f = mfile_open(p);
    if (!f) return -1;
    mfile_t **fs = realloc(s->files, (size_t)(s->n_files + 1) * sizeof *fs);
    if (!fs) return mfile_close(f), err_set("out of memory");
    s->files = fs;
    int file = s->n_files;
    fs[s->n_files++] = f;
    if (f->size < 8)
        return err_set("%s: %zu bytes is too short for a safetensors file (8-byte header length, "
                       "then a JSON header)",
                       p, f->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | f->data[i];
    if (n > f->size - 8)
        return err_set("%s: header length %llu runs past the end of the file (%zu bytes): not a "
                       "safetensors file, or truncated",
                       p, (unsigned long long)n, f->size);
    if (n > ST_MAX_HEADER)
        return err_set("%s: header length %llu is more than the %llu-byte limit", p,
                       (unsigned long long)n, (unsigned long long)ST_MAX_HEADER);
    json_error_t je;
    json_t *root = json_loadb((const char *)f->data + 8, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return err_set("%s: header is not valid JSON: %s (line %d, column %d)", p, je.text, je.line,
                       je.column);
    int rc = -1;
    span_t *spans = NULL;
    if (!json_is_object(root)) {
        err_set("%s: header is not a JSON object", p);
        goto done;
    }
    spans = malloc((json_object_size(root) + 1) * sizeof *spans);
    if (!spans) {
        err_set("out of memory");
        goto done;
    }
    const uint8_t *data = f->data + 8 + n;
    uint64_t dsize = f->size - 8 - n;
    size_t ns = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) continue; /* free-form strings: nothing we need */
        if (parse_entry(s, file, p, key, val, data, dsize, &spans[ns])) goto done;
        if (spans[ns].end > spans[ns].begin) ns++; /* empty tensors overlap nothing */
    }
    /* No two tensors may share bytes: sorted by start, each must begin at
     * or after the end of the one before. */
    qsort(spans, ns, sizeof *spans, span_cmp);
    for (size_t i = 1; i < ns; i++) {
        if (spans[i].begin < spans[i - 1].end) {
            char a[100], b[100];
            err_set("%s: tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap", p,
                    safe(spans[i - 1].name, a, sizeof a), (unsigned long long)spans[i - 1].begin,
                    (unsigned long long)spans[i - 1].end, safe(spans[i].name, b, sizeof b),
                    (unsigned long long)spans[i].begin, (unsigned long long)spans[i].end);
            goto done;
        }
    }
    rc = 0;
done:
    free(spans);
    json_decref(root);
    return rc;
}

/* ---- Sharded checkpoints ------------------------------------------------------ */

static int open_index(st_t *s, const char *index_path) {
    size_t len;
    char *txt = mfile_slurp(index_path, (size_t)64 << 20, &len);
    if (!txt) return -1;
    json_error_t je;
    json_t *root = json_loadb(txt, len, JSON_REJECT_DUPLICATES, &je);
    free(txt);
    if (!root)
        return err_set("%s: not valid JSON: %s (line %d, column %d)", index_path, je.text, je.line,
                       je.column);
    int rc = -1;
    char *dir = NULL, *sp = NULL;
    strmap_t shard_ids;
    strmap_init(&shard_ids);
    char **shards = NULL;
    int n_shards = 0;
    json_t *wm = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    if (!json_is_object(wm) || json_object_size(wm) == 0) {
        err_set("%s: no \"weight_map\" object (tensor name -> shard file)", index_path);
        goto done;
    }
    const char *slash = strrchr(index_path, '/');
    dir = slash ? strndup(index_path, (size_t)(slash - index_path + 1)) : strdup("");
    if (!dir) goto oom;
    const char *key;
    json_t *val;
    /* Each shard once, in the order the index first names it. */
    json_object_foreach(wm, key, val) {
        char nb[100];
        const char *fn = json_string_value(val);
        if (!fn || !*fn || strchr(fn, '/') || !strcmp(fn, ".") || !strcmp(fn, "..")) {
            err_set("%s: tensor '%s' maps to %s, not a file name in this folder", index_path,
                    safe(key, nb, sizeof nb), fn ? "an unusable name" : "a non-string");
            goto done;
        }
        if (strmap_get(&shard_ids, fn, strlen(fn), -1) >= 0) continue;
        char **ns = realloc(shards, (size_t)(n_shards + 1) * sizeof *ns);
        if (!ns) goto oom;
        shards = ns;
        shards[n_shards] = (char *)fn;
        if (strmap_put(&shard_ids, fn, strlen(fn), n_shards)) goto done;
        n_shards++;
    }
    for (int i = 0; i < n_shards; i++) {
        sp = path_join(dir, shards[i]);
        if (!sp) goto oom;
        if (add_file(s, sp)) goto done;
        free(sp);
        sp = NULL;
    }
    /* Every tensor the index promises must be in the shard it names. */
    json_object_foreach(wm, key, val) {
        const char *fn = json_string_value(val);
        int want = strmap_get(&shard_ids, fn, strlen(fn), -1);
        int i = strmap_get(&s->names, key, strlen(key), -1);
        int got = i >= 0 ? s->tensor_file[i] : i <= -2 ? s->skipped[-2 - i].file : -1;
        char nb[100];
        if (got != want) {
            if (got < 0)
                err_set("%s: tensor '%s' is listed in the index but not in that shard",
                        s->files[want]->path, safe(key, nb, sizeof nb));
            else
                err_set("%s: tensor '%s' is in %s, not in %s as the index says", index_path,
                        safe(key, nb, sizeof nb), s->files[got]->path, s->files[want]->path);
            goto done;
        }
    }
    rc = 0;
    goto done;
oom:
    err_set("out of memory");
done:
    free(sp);
    free(shards);
    strmap_free(&shard_ids);
    free(dir);
    json_decref(root);
    return rc;
}

/* ---- Opening ---------------------------------------------------------------------- */

st_t *st_open(const char *path) {
    st_t *s = calloc(1, sizeof *s);
    if (!s) return err_set("out of memory"), NULL;
    ttab_init(&s->tensors);
    strmap_init(&s->names);
    s->path = strdup(path);
    char *index = NULL, *single = NULL;
    int rc = -1;
    if (!s->path) {
        err_set("out of memory");
        goto done;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        err_set("%s: no such file or folder", path);
        goto done;
    }
    if (S_ISDIR(st.st_mode)) {
        index = path_join(path, "model.safetensors.index.json");
        single = path_join(path, "model.safetensors");
        if (!index || !single) {
            err_set("out of memory");
            goto done;
        }
        if (is_file(index)) {
            s->sharded = 1;
            rc = open_index(s, index);
        } else if (is_file(single)) {
            rc = add_file(s, single);
        } else {
            char *bin = path_join(path, "pytorch_model.bin");
            int has_bin = bin && is_file(bin);
            free(bin);
            err_set("%s: no model.safetensors or model.safetensors.index.json%s", path,
                    has_bin ? " (pytorch_model.bin, a PyTorch pickle, is not read: convert it to "
                              "safetensors)"
                            : "");
        }
    } else {
        size_t n = strlen(path);
        if (n >= 11 && !strcmp(path + n - 11, ".index.json")) {
            s->sharded = 1;
            rc = open_index(s, path);
        } else {
            rc = add_file(s, path);
        }
    }
done:
    free(index);
    free(single);
    if (rc) {
        st_close(s);
        return NULL;
    }
    return s;
}
