/* hf: Hugging Face model folders (placeholder until safetensors support lands). */
#include "err.h"
#include "model.h"

int hf_model_load(model_t *m, const char *dir) {
    (void)m;
    return err_set("%s: Hugging Face model folders are not supported yet", dir);
}
