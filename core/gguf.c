/* gguf: GGUF v2/v3 parser (see gguf.h).  Layout per the GGUF specification
 * in the ggml repository: magic, version, tensor count, kv count, kv pairs,
 * tensor infos, padding to general.alignment, tensor data. */
#include "gguf.h"

#include "err.h"
#include "strmap.h"

#include <string.h>

typedef struct {
    const uint8_t *p;
    uint64_t pos, size;
    const char *path;
} rd_t;

static int rd_need(rd_t *r, uint64_t n, const char *what) {
    if (n > r->size - r->pos)
        return err_set("%s: truncated: %s at byte %llu needs %llu bytes, file has %llu", r->path,
                       what, (unsigned long long)r->pos, (unsigned long long)n,
                       (unsigned long long)r->size);
    return 0;
}
static int rd_u32(rd_t *r, uint32_t *v, const char *what) {
    if (rd_need(r, 4, what)) return -1;
    memcpy(v, r->p + r->pos, 4);
    r->pos += 4;
    return 0;
}
static int rd_u64(rd_t *r, uint64_t *v, const char *what) {
    if (rd_need(r, 8, what)) return -1;
    memcpy(v, r->p + r->pos, 8);
    r->pos += 8;
    return 0;
}
/* A GGUF string: u64 length then bytes.  Returns a pointer into the map. */
static int rd_str(rd_t *r, const char **s, uint64_t *len, const char *what) {
    if (rd_u64(r, len, what)) return -1;
    if (rd_need(r, *len, what)) return -1;
    *s = (const char *)(r->p + r->pos);
    r->pos += *len;
    return 0;
}

static const int scalar_size[GGUF_T_COUNT] = {
    [GGUF_T_U8] = 1,  [GGUF_T_I8] = 1,  [GGUF_T_U16] = 2, [GGUF_T_I16] = 2,
    [GGUF_T_U32] = 4, [GGUF_T_I32] = 4, [GGUF_T_F32] = 4, [GGUF_T_BOOL] = 1,
    [GGUF_T_U64] = 8, [GGUF_T_I64] = 8, [GGUF_T_F64] = 8,
};

/* Skips one value of TYPE (no nested arrays: GGUF does not use them for models). */
static int skip_value(rd_t *r, uint32_t type, const char *key) {
    if (type == GGUF_T_STRING) {
        const char *s;
        uint64_t n;
        return rd_str(r, &s, &n, key);
    }
    if (type >= GGUF_T_COUNT || type == GGUF_T_ARRAY || scalar_size[type] == 0)
        return err_set("%s: metadata '%s' has unknown value type %u", r->path, key, type);
    if (rd_need(r, (uint64_t)scalar_size[type], key)) return -1;
    r->pos += (uint64_t)scalar_size[type];
    return 0;
}

/* ggml type ids -> our dtypes; -1 for types we cannot dequantise. */
static int ggml_to_dtype(uint32_t t) {
    switch (t) {
    case 0: return DT_F32;
    case 1: return DT_F16;
    case 2: return DT_Q4_0;
    case 8: return DT_Q8_0;
    case 30: return DT_BF16;
    default: return -1;
    }
}

int gguf_is_gguf(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char m[4] = {0};
    size_t n = fread(m, 1, 4, f);
    fclose(f);
    return n == 4 && memcmp(m, "GGUF", 4) == 0;
}

gguf_t *gguf_open(const char *path) {
    gguf_t *g = calloc(1, sizeof *g);
    if (!g) return err_set("%s: out of memory", path), NULL;
    ttab_init(&g->tensors);
    g->file = mfile_open(path);
    if (!g->file) goto fail;
    rd_t r = {g->file->data, 0, g->file->size, path};
    uint32_t magic;
    if (rd_u32(&r, &magic, "magic")) goto fail;
    if (memcmp(&magic, "GGUF", 4) != 0) {
        err_set("%s: not a GGUF file (bad magic)", path);
        goto fail;
    }
    if (rd_u32(&r, &g->version, "version")) goto fail;
    if (g->version != 2 && g->version != 3) {
        err_set("%s: GGUF version %u is not supported (2 and 3 are)", path, g->version);
        goto fail;
    }
    uint64_t n_tensors;
    if (rd_u64(&r, &n_tensors, "tensor count") || rd_u64(&r, &g->n_kv, "metadata count")) goto fail;
    /* Each kv needs at least 12 bytes and each tensor info at least 24: bound
     * counts by the file size before allocating anything. */
    if (g->n_kv > r.size / 12 || n_tensors > r.size / 24) {
        err_set(
            "%s: header claims %llu metadata entries and %llu tensors, more than the file can hold",
            path, (unsigned long long)g->n_kv, (unsigned long long)n_tensors);
        goto fail;
    }
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    if (!g->kv) {
        err_set("%s: out of memory", path);
        goto fail;
    }
    uint64_t alignment = 32, n_kv_total = g->n_kv;
    for (uint64_t i = 0; i < n_kv_total; i++) {
        gguf_kv_t *kv = &g->kv[i];
        const char *k;
        uint64_t klen;
        if (rd_str(&r, &k, &klen, "metadata key")) goto fail;
        if (klen > 65535) {
            err_set("%s: metadata key %llu is %llu bytes long", path, (unsigned long long)i,
                    (unsigned long long)klen);
            goto fail;
        }
        char *key = malloc(klen + 1);
        if (!key) {
            err_set("%s: out of memory", path);
            goto fail;
        }
        memcpy(key, k, klen);
        key[klen] = '\0';
        kv->key = key;
        if (rd_u32(&r, &kv->type, key)) goto fail;
        kv->value = r.p + r.pos;
        if (kv->type == GGUF_T_ARRAY) {
            if (rd_u32(&r, &kv->arr_type, key) || rd_u64(&r, &kv->arr_n, key)) goto fail;
            kv->value = r.p + r.pos;
            if (kv->arr_type == GGUF_T_STRING) {
                if (kv->arr_n > (r.size - r.pos) / 8) {
                    err_set("%s: metadata '%s' claims %llu strings, more than the file holds", path,
                            key, (unsigned long long)kv->arr_n);
                    goto fail;
                }
                for (uint64_t j = 0; j < kv->arr_n; j++)
                    if (skip_value(&r, GGUF_T_STRING, key)) goto fail;
            } else {
                if (kv->arr_type >= GGUF_T_COUNT || scalar_size[kv->arr_type] == 0) {
                    err_set("%s: metadata '%s' is an array of unknown type %u", path, key,
                            kv->arr_type);
                    goto fail;
                }
                unsigned long long bytes;
                if (!err_mul_u64(kv->arr_n, (unsigned long long)scalar_size[kv->arr_type],
                                 &bytes) ||
                    rd_need(&r, bytes, key))
                    goto fail_trunc;
                r.pos += bytes;
            }
        } else if (skip_value(&r, kv->type, key)) {
            goto fail;
        }
        if (strcmp(key, "general.alignment") == 0) {
            int64_t a = 0;
            g->n_kv = i + 1; /* gguf_find may only look at parsed entries */
            if (gguf_get_int(g, key, &a) == 0) alignment = (uint64_t)a;
            if (a <= 0 || a > 65536 || (alignment & (alignment - 1))) {
                err_set("%s: general.alignment %lld is not a power of two", path, (long long)a);
                goto fail;
            }
        }
        g->n_kv = n_kv_total;
        continue;
    fail_trunc:
        if (!strstr(err_msg(), "truncated"))
            err_set("%s: metadata '%s' array size overflows", path, key);
        goto fail;
    }
    strmap_t names;
    strmap_init(&names);
    struct {
        uint64_t off;
    } *offs = calloc(n_tensors ? n_tensors : 1, sizeof *offs);
    if (!offs) {
        err_set("%s: out of memory", path);
        goto fail;
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        const char *nm;
        uint64_t nlen;
        uint32_t ndim, type;
        tensor_t t;
        memset(&t, 0, sizeof t);
        if (rd_str(&r, &nm, &nlen, "tensor name")) goto fail_offs;
        if (nlen >= TENSOR_NAME_MAX) {
            err_set("%s: tensor %llu has a %llu-byte name (limit %d)", path, (unsigned long long)i,
                    (unsigned long long)nlen, TENSOR_NAME_MAX - 1);
            goto fail_offs;
        }
        memcpy(t.name, nm, nlen);
        if (rd_u32(&r, &ndim, t.name)) goto fail_offs;
        if (ndim < 1 || ndim > TENSOR_MAX_DIMS) {
            err_set("%s: tensor '%s' has %u dimensions", path, t.name, ndim);
            goto fail_offs;
        }
        t.ndim = (int)ndim;
        for (uint32_t d = 0; d < ndim; d++) {
            uint64_t ne;
            if (rd_u64(&r, &ne, t.name)) goto fail_offs;
            if (ne == 0 || ne > (1ull << 40)) {
                err_set("%s: tensor '%s' has dimension %u of size %llu", path, t.name, d,
                        (unsigned long long)ne);
                goto fail_offs;
            }
            t.shape[ndim - 1 - d] = (int64_t)ne; /* GGUF is innermost-first */
        }
        if (rd_u32(&r, &type, t.name) || rd_u64(&r, &offs[i].off, t.name)) goto fail_offs;
        int dt = ggml_to_dtype(type);
        if (dt < 0) {
            err_set(
                "%s: tensor '%s' has ggml type %u, which probe cannot read (supported: F32, F16, "
                "BF16, Q8_0, Q4_0)",
                path, t.name, type);
            goto fail_offs;
        }
        t.dtype = (dtype_t)dt;
        t.nbytes = tensor_bytes_for(t.dtype, t.ndim, t.shape);
        if (!t.nbytes) {
            err_prefix("%s: tensor '%s'", path, t.name);
            goto fail_offs;
        }
        /* A hash of the names: a linear search per tensor would make a file
         * of many tiny tensor infos take minutes. */
        if (strmap_get(&names, t.name, strlen(t.name), -1) >= 0) {
            err_set("%s: tensor '%s' appears twice", path, t.name);
            goto fail_offs;
        }
        if (strmap_put(&names, t.name, strlen(t.name), (int)i)) goto fail_offs;
        if (!ttab_add(&g->tensors, &t)) goto fail_offs;
    }
    g->data_offset = (r.pos + alignment - 1) / alignment * alignment;
    for (int i = 0; i < g->tensors.n; i++) {
        tensor_t *t = &g->tensors.items[i];
        unsigned long long start, end;
        if (offs[i].off % alignment != 0 || !err_add_u64(g->data_offset, offs[i].off, &start) ||
            !err_add_u64(start, t->nbytes, &end) || end > g->file->size) {
            err_set("%s: tensor '%s' (%llu bytes at data offset %llu) lies outside the file (%zu "
                    "bytes)",
                    path, t->name, (unsigned long long)t->nbytes, (unsigned long long)offs[i].off,
                    g->file->size);
            goto fail_offs;
        }
        t->data = g->file->data + start;
    }
    free(offs);
    strmap_free(&names);
    return g;
fail_offs:
    free(offs);
    strmap_free(&names);
fail:
    gguf_close(g);
    return NULL;
}

void gguf_close(gguf_t *g) {
    if (!g) return;
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++)
            free((void *)g->kv[i].key);
    free(g->kv);
    ttab_free(&g->tensors);
    mfile_close(g->file);
    free(g);
}

const gguf_kv_t *gguf_find(const gguf_t *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key && strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

static double num_at(uint32_t type, const uint8_t *p, int *ok) {
    *ok = 1;
    switch (type) {
    case GGUF_T_U8: return *p;
    case GGUF_T_I8: return (int8_t)*p;
    case GGUF_T_BOOL: return *p != 0;
    case GGUF_T_U16: {
        uint16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case GGUF_T_I16: {
        int16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case GGUF_T_U32: {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    case GGUF_T_I32: {
        int32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    case GGUF_T_F32: {
        float v;
        memcpy(&v, p, 4);
        return v;
    }
    case GGUF_T_U64: {
        uint64_t v;
        memcpy(&v, p, 8);
        return (double)v;
    }
    case GGUF_T_I64: {
        int64_t v;
        memcpy(&v, p, 8);
        return (double)v;
    }
    case GGUF_T_F64: {
        double v;
        memcpy(&v, p, 8);
        return v;
    }
    default: *ok = 0; return 0;
    }
}

int gguf_get_int(const gguf_t *g, const char *key, int64_t *out) {
    const gguf_kv_t *kv = gguf_find(g, key);
    if (!kv) return err_set("%s: metadata '%s' is missing", g->file->path, key);
    int ok;
    double v = num_at(kv->type, kv->value, &ok);
    if (!ok || kv->type == GGUF_T_F32 || kv->type == GGUF_T_F64)
        return err_set("%s: metadata '%s' is not an integer", g->file->path, key);
    if (kv->type == GGUF_T_U64 || kv->type == GGUF_T_I64) {
        memcpy(out, kv->value, 8);
        if (kv->type == GGUF_T_U64 && *out < 0)
            return err_set("%s: metadata '%s' is too large", g->file->path, key);
    } else {
        *out = (int64_t)v;
    }
    return 0;
}

int gguf_get_float(const gguf_t *g, const char *key, double *out) {
    const gguf_kv_t *kv = gguf_find(g, key);
    if (!kv) return err_set("%s: metadata '%s' is missing", g->file->path, key);
    int ok;
    *out = num_at(kv->type, kv->value, &ok);
    if (!ok) return err_set("%s: metadata '%s' is not a number", g->file->path, key);
    return 0;
}

int gguf_get_str(const gguf_t *g, const char *key, const char **s, uint64_t *len) {
    const gguf_kv_t *kv = gguf_find(g, key);
    if (!kv) return err_set("%s: metadata '%s' is missing", g->file->path, key);
    if (kv->type != GGUF_T_STRING)
        return err_set("%s: metadata '%s' is not a string", g->file->path, key);
    memcpy(len, kv->value, 8);
    *s = (const char *)kv->value + 8;
    return 0;
}

int gguf_arr_str_next(const gguf_kv_t *kv, const uint8_t **cursor, const char **s, uint64_t *len) {
    /* Strings were bounds-checked during open, so walking them is safe. */
    PRB_ASSERT(kv->type == GGUF_T_ARRAY && kv->arr_type == GGUF_T_STRING);
    const uint8_t *p = *cursor ? *cursor : kv->value;
    memcpy(len, p, 8);
    *s = (const char *)p + 8;
    *cursor = p + 8 + *len;
    return 0;
}

double gguf_arr_num(const gguf_kv_t *kv, uint64_t i) {
    int ok;
    PRB_ASSERT(kv->type == GGUF_T_ARRAY && i < kv->arr_n && kv->arr_type != GGUF_T_STRING);
    return num_at(kv->arr_type, kv->value + i * (uint64_t)scalar_size[kv->arr_type], &ok);
}
