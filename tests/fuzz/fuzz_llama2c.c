/* fuzz_llama2c: llama2.c checkpoint headers, legacy and "ak42" v1
 * (llama2c_load in core/model.c).  The input is a whole checkpoint. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[600];
    /* Not GGUF: model_open would take another loader. */
    if (size >= 4 && memcmp(data, "GGUF", 4) == 0) return 0;
    fz_write("model.bin", data, size, path, sizeof path);
    model_t *m = model_open(path, NULL);
    fz_note("model_open", m);
    if (m) {
        fz_exercise_model(m, NULL, NULL, 0);
        model_close(m);
    }
    return 0;
}
