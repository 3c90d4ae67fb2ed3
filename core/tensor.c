/* tensor: dtype tables, dequantisation and the tensor table (see tensor.h).
 * Quantised block layouts follow ggml's definitions of Q8_0 and Q4_0. */
#include "tensor.h"

#include "err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int block_elems, block_bytes;
} dtype_info[DT_COUNT] = {
    [DT_F32] = {"F32", 1, 4},     [DT_F16] = {"F16", 1, 2},     [DT_BF16] = {"BF16", 1, 2},
    [DT_Q8_0] = {"Q8_0", 32, 34}, [DT_Q4_0] = {"Q4_0", 32, 18},
};

const char *dtype_name(dtype_t t) { return (unsigned)t < DT_COUNT ? dtype_info[t].name : "?"; }
int dtype_block_elems(dtype_t t) { return dtype_info[t].block_elems; }
int dtype_block_bytes(dtype_t t) { return dtype_info[t].block_bytes; }

uint64_t tensor_bytes_for(dtype_t t, int ndim, const int64_t *shape) {
    char sb[128];
    if ((unsigned)t >= DT_COUNT) return err_set("unknown dtype %d", (int)t), 0;
    if (ndim < 1 || ndim > TENSOR_MAX_DIMS) return err_set("tensor has %d dimensions", ndim), 0;
    unsigned long long n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0) {
            err_set("shape %s has a dimension <= 0", tensor_shape_str(ndim, shape, sb, sizeof sb));
            return 0;
        }
        if (!err_mul_u64(n, (unsigned long long)shape[i], &n) || n > (1ull << 50)) {
            err_set("shape %s overflows", tensor_shape_str(ndim, shape, sb, sizeof sb));
            return 0;
        }
    }
    int be = dtype_info[t].block_elems;
    if (shape[ndim - 1] % be != 0) {
        err_set("%s rows of %lld elements are not a multiple of the %d-element block",
                dtype_info[t].name, (long long)shape[ndim - 1], be);
        return 0;
    }
    return n / be * dtype_info[t].block_bytes;
}

int64_t tensor_nelem(const tensor_t *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}
int64_t tensor_cols(const tensor_t *t) { return t->shape[t->ndim - 1]; }
int64_t tensor_rows(const tensor_t *t) { return tensor_nelem(t) / tensor_cols(t); }

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            float v = ldexpf((float)man, -24);
            return sign ? -v : v;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t f32_to_f16(float f) {
    /* Round to nearest even via the hardware-independent bit recipe. */
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t man = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        int shift = 14 - exp;
        uint32_t half = 1u << (shift - 1), rest = man & ((1u << shift) - 1);
        uint32_t r = man >> shift;
        if (rest > half || (rest == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = (uint32_t)(exp << 10) | (man >> 13), rest = man & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

static void get_row(const tensor_t *t, int64_t row, int64_t cols, float *out) {
    const uint8_t *base = t->data;
    switch (t->dtype) {
    case DT_F32: memcpy(out, base + (uint64_t)row * cols * 4, (size_t)cols * 4); break;
    case DT_F16: {
        const uint8_t *p = base + (uint64_t)row * cols * 2;
        for (int64_t j = 0; j < cols; j++) {
            uint16_t h;
            memcpy(&h, p + 2 * j, 2);
            out[j] = f16_to_f32(h);
        }
        break;
    }
    case DT_BF16: {
        const uint8_t *p = base + (uint64_t)row * cols * 2;
        for (int64_t j = 0; j < cols; j++) {
            uint16_t h;
            memcpy(&h, p + 2 * j, 2);
            out[j] = bf16_to_f32(h);
        }
        break;
    }
    case DT_Q8_0: {
        const uint8_t *p = base + (uint64_t)row * (cols / 32) * 34;
        for (int64_t b = 0; b < cols / 32; b++, p += 34) {
            uint16_t h;
            memcpy(&h, p, 2);
            float d = f16_to_f32(h);
            const int8_t *q = (const int8_t *)(p + 2);
            for (int j = 0; j < 32; j++)
                out[b * 32 + j] = d * (float)q[j];
        }
        break;
    }
    case DT_Q4_0: {
        /* ggml Q4_0: byte j holds element j (low nibble) and element j+16 (high). */
        const uint8_t *p = base + (uint64_t)row * (cols / 32) * 18;
        for (int64_t b = 0; b < cols / 32; b++, p += 18) {
            uint16_t h;
            memcpy(&h, p, 2);
            float d = f16_to_f32(h);
            for (int j = 0; j < 16; j++) {
                out[b * 32 + j] = d * (float)((p[2 + j] & 0x0f) - 8);
                out[b * 32 + j + 16] = d * (float)((p[2 + j] >> 4) - 8);
            }
        }
        break;
    }
    default: PRB_ASSERT(!"unknown dtype");
    }
}

void tensor_get_rows(const tensor_t *t, int64_t row0, int64_t nrows, float *out) {
    int64_t cols = tensor_cols(t);
    PRB_ASSERT(row0 >= 0 && row0 + nrows <= tensor_rows(t));
    for (int64_t r = 0; r < nrows; r++)
        get_row(t, row0 + r, cols, out + r * cols);
}

void ttab_init(ttab_t *tab) { memset(tab, 0, sizeof *tab); }

void ttab_free(ttab_t *tab) {
    if (!tab) return;
    free(tab->items);
    memset(tab, 0, sizeof *tab);
}

tensor_t *ttab_add(ttab_t *tab, const tensor_t *t) {
    if (tab->n == tab->cap) {
        int cap = tab->cap ? tab->cap * 2 : 64;
        tensor_t *p = realloc(tab->items, (size_t)cap * sizeof *p);
        if (!p) return err_set("out of memory"), NULL;
        tab->items = p;
        tab->cap = cap;
    }
    tab->items[tab->n] = *t;
    return &tab->items[tab->n++];
}

const tensor_t *ttab_find(const ttab_t *tab, const char *name) {
    for (int i = 0; i < tab->n; i++)
        if (strcmp(tab->items[i].name, name) == 0) return &tab->items[i];
    return NULL;
}

char *tensor_shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}
