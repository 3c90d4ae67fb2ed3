/* fuzz_safetensors: the safetensors header and tensor table (core/safetensors.c).
 * The input is a whole .safetensors file. */
#include "fuzz.h"

#include "core/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[600];
    fz_write("model.safetensors", data, size, path, sizeof path);
    st_t *s = st_open(path);
    fz_note("st_open", s);
    if (!s) return 0;
    for (int i = 0; i < s->tensors.n; i++) {
        const tensor_t *t = &s->tensors.items[i];
        int ok = fz_inside(t, s->files[0]->data, s->files[0]->size);
        for (int c = 0; c < s->n_copies && !ok; c++) ok = t->data == s->copies[c];
        if (!ok) FZ_FAIL("tensor '%s' is not inside the file", t->name);
        if (st_find(s, t->name) != t) FZ_FAIL("st_find('%s') disagrees with the table", t->name);
        fz_touch_tensor(t);
    }
    for (int i = 0; i < s->n_skipped; i++)
        if (!st_skip_reason(s, s->skipped[i].name))
            FZ_FAIL("skipped tensor '%s' has no reason", s->skipped[i].name);
    st_close(s);
    return 0;
}
