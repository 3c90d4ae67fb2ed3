/* fuzz_gguf: GGUF metadata, tensor infos and the embedded vocabulary
 * (core/gguf.c, tok_from_gguf in core/tok.c, gguf_model_load in core/model.c).
 * The input is a whole GGUF file. */
#include "fuzz.h"

#include "core/gguf.h"

static void walk_kv(const gguf_t *g) {
    const uint8_t *lo = g->file->data, *hi = g->file->data + g->file->size;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const gguf_kv_t *kv = &g->kv[i];
        int64_t iv;
        double fv;
        const char *s;
        uint64_t len;
        gguf_get_int(g, kv->key, &iv);
        gguf_get_float(g, kv->key, &fv);
        if (gguf_get_str(g, kv->key, &s, &len) == 0 &&
            ((const uint8_t *)s < lo || len > (uint64_t)(hi - (const uint8_t *)s)))
            FZ_FAIL("string '%s' runs outside the file", kv->key);
        if (kv->type != GGUF_T_ARRAY) continue;
        if (kv->arr_type == GGUF_T_STRING) {
            const uint8_t *cur = NULL;
            for (uint64_t j = 0; j < kv->arr_n; j++) {
                gguf_arr_str_next(kv, &cur, &s, &len);
                if ((const uint8_t *)s < lo || len > (uint64_t)(hi - (const uint8_t *)s))
                    FZ_FAIL("string %llu of '%s' runs outside the file", (unsigned long long)j,
                            kv->key);
            }
        } else {
            volatile double sum = 0;
            for (uint64_t j = 0; j < kv->arr_n; j++) sum += gguf_arr_num(kv, j);
            (void)sum;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[600];
    fz_write("model.gguf", data, size, path, sizeof path);
    gguf_t *g = gguf_open(path);
    fz_note("gguf_open", g);
    if (g) {
        walk_kv(g);
        for (int i = 0; i < g->tensors.n; i++) {
            const tensor_t *t = &g->tensors.items[i];
            if (!fz_inside(t, g->file->data, g->file->size))
                FZ_FAIL("tensor '%s' is not inside the file", t->name);
            fz_touch_tensor(t);
        }
        tok_t *t = tok_from_gguf(g);
        fz_note("tok_from_gguf", t);
        if (t) {
            fz_exercise_tok(t);
            tok_free(t);
        }
        gguf_close(g);
    }
    model_t *m = model_open(path, NULL);
    fz_note("model_open", m);
    if (m) {
        const gguf_t *mg = m->src;
        const uint8_t *base = mg->file->data;
        size_t sz = mg->file->size;
        fz_exercise_model(m, &base, &sz, 1);
        model_close(m);
    }
    return 0;
}
