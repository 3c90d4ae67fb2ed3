/* fuzz_hfconfig: how config.json is interpreted (core/hf.c): model types,
 * sizes, activations, rope_scaling, ties and biases, then the tensor binding
 * and a two-token forward pass when the model loads.
 *
 * The input is config.json.  Beside it sits one model.safetensors, written
 * once, holding the tensors of every supported architecture at the sizes of
 * the seed configs (vocab 16, d 8, 2 heads of 4, 1 key/value head for the
 * llama family, FFN 16, context 8, 1 layer, all optional biases), so that
 * configs near the seeds load and run. */
#include "fuzz.h"

#include "core/safetensors.h"

typedef struct {
    const char *name;
    int64_t r, c; /* r 0: 1-D of c */
} spec_t;

static const spec_t specs[] = {
    /* llama / mistral / qwen2 */
    {"model.embed_tokens.weight", 16, 8},
    {"model.norm.weight", 0, 8},
    {"lm_head.weight", 16, 8},
    {"model.layers.0.input_layernorm.weight", 0, 8},
    {"model.layers.0.self_attn.q_proj.weight", 8, 8},
    {"model.layers.0.self_attn.q_proj.bias", 0, 8},
    {"model.layers.0.self_attn.k_proj.weight", 4, 8},
    {"model.layers.0.self_attn.k_proj.bias", 0, 4},
    {"model.layers.0.self_attn.v_proj.weight", 4, 8},
    {"model.layers.0.self_attn.v_proj.bias", 0, 4},
    {"model.layers.0.self_attn.o_proj.weight", 8, 8},
    {"model.layers.0.self_attn.o_proj.bias", 0, 8},
    {"model.layers.0.post_attention_layernorm.weight", 0, 8},
    {"model.layers.0.mlp.gate_proj.weight", 16, 8},
    {"model.layers.0.mlp.gate_proj.bias", 0, 16},
    {"model.layers.0.mlp.up_proj.weight", 16, 8},
    {"model.layers.0.mlp.up_proj.bias", 0, 16},
    {"model.layers.0.mlp.down_proj.weight", 8, 16},
    {"model.layers.0.mlp.down_proj.bias", 0, 8},
    /* gpt2 (Conv1D: stored in x out) */
    {"wte.weight", 16, 8},
    {"wpe.weight", 8, 8},
    {"ln_f.weight", 0, 8},
    {"ln_f.bias", 0, 8},
    {"h.0.ln_1.weight", 0, 8},
    {"h.0.ln_1.bias", 0, 8},
    {"h.0.attn.c_attn.weight", 8, 24},
    {"h.0.attn.c_attn.bias", 0, 24},
    {"h.0.attn.c_proj.weight", 8, 8},
    {"h.0.attn.c_proj.bias", 0, 8},
    {"h.0.ln_2.weight", 0, 8},
    {"h.0.ln_2.bias", 0, 8},
    {"h.0.mlp.c_fc.weight", 8, 16},
    {"h.0.mlp.c_fc.bias", 0, 16},
    {"h.0.mlp.c_proj.weight", 16, 8},
    {"h.0.mlp.c_proj.bias", 0, 8},
    /* gpt_neox */
    {"gpt_neox.embed_in.weight", 16, 8},
    {"gpt_neox.final_layer_norm.weight", 0, 8},
    {"gpt_neox.final_layer_norm.bias", 0, 8},
    {"embed_out.weight", 16, 8},
    {"gpt_neox.layers.0.input_layernorm.weight", 0, 8},
    {"gpt_neox.layers.0.input_layernorm.bias", 0, 8},
    {"gpt_neox.layers.0.attention.query_key_value.weight", 24, 8},
    {"gpt_neox.layers.0.attention.query_key_value.bias", 0, 24},
    {"gpt_neox.layers.0.attention.dense.weight", 8, 8},
    {"gpt_neox.layers.0.attention.dense.bias", 0, 8},
    {"gpt_neox.layers.0.post_attention_layernorm.weight", 0, 8},
    {"gpt_neox.layers.0.post_attention_layernorm.bias", 0, 8},
    {"gpt_neox.layers.0.mlp.dense_h_to_4h.weight", 16, 8},
    {"gpt_neox.layers.0.mlp.dense_h_to_4h.bias", 0, 16},
    {"gpt_neox.layers.0.mlp.dense_4h_to_h.weight", 8, 16},
    {"gpt_neox.layers.0.mlp.dense_4h_to_h.bias", 0, 8},
};
#define N_SPECS (sizeof specs / sizeof *specs)

static void write_weights(void) {
    char *hdr = malloc(65536);
    size_t k = 0;
    uint64_t off = 0;
    k += (size_t)snprintf(hdr + k, 65536 - k, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < N_SPECS; i++) {
        uint64_t n = (uint64_t)(specs[i].r ? specs[i].r : 1) * (uint64_t)specs[i].c * 4;
        if (specs[i].r)
            k += (size_t)snprintf(hdr + k, 65536 - k,
                                  ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld],"
                                  "\"data_offsets\":[%llu,%llu]}",
                                  specs[i].name, (long long)specs[i].r, (long long)specs[i].c,
                                  (unsigned long long)off, (unsigned long long)(off + n));
        else
            k += (size_t)snprintf(hdr + k, 65536 - k,
                                  ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld],"
                                  "\"data_offsets\":[%llu,%llu]}",
                                  specs[i].name, (long long)specs[i].c, (unsigned long long)off,
                                  (unsigned long long)(off + n));
        off += n;
    }
    /* An unusable buffer, as old GPT-2 checkpoints carry. */
    k += (size_t)snprintf(hdr + k, 65536 - k,
                          ",\"h.0.attn.bias\":{\"dtype\":\"BOOL\",\"shape\":[1,1,8,8],"
                          "\"data_offsets\":[%llu,%llu]}}",
                          (unsigned long long)off, (unsigned long long)(off + 64));
    off += 64;
    while ((k + 8) % 8) hdr[k++] = ' '; /* data section 8-byte aligned */
    size_t total = 8 + k + (size_t)off;
    uint8_t *buf = calloc(1, total);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)k >> (8 * i));
    memcpy(buf + 8, hdr, k);
    float *w = (float *)(buf + 8 + k);
    for (uint64_t i = 0; i < (off - 64) / 4; i++) w[i] = (float)((int)(i % 7) - 3) * 0.05f;
    char path[600];
    fz_write("model.safetensors", buf, total, path, sizeof path);
    free(buf);
    free(hdr);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    write_weights();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[600];
    fz_write("config.json", data, size, path, sizeof path);
    model_t *m = model_open(fz_dir(), NULL);
    fz_note("model_open", m);
    if (m) {
        const st_t *st = m->src;
        const uint8_t *base[8];
        size_t sz[8];
        int n = 0;
        for (int i = 0; i < st->n_files && n < 8; i++, n++) {
            base[n] = st->files[i]->data;
            sz[n] = st->files[i]->size;
        }
        fz_exercise_model(m, base, sz, n);
        model_close(m);
    }
    return 0;
}
