/* hf: Hugging Face model folders — config.json plus safetensors weights
 * (one model.safetensors, or shards listed by model.safetensors.index.json).
 *
 * Each supported model_type is a row of module names plus a function that
 * reads its config.json keys into an mcfg_t; one binder then checks every
 * tensor's shape.  Semantics follow transformers' modeling_gpt2.py,
 * modeling_llama.py (also Mistral), modeling_qwen2.py and
 * modeling_gpt_neox.py:
 *   gpt2      LayerNorm, learned positions, Conv1D weights stored (in, out),
 *             c_attn = [Q | K | V], classic GELU FFN, lm_head tied to wte.
 *   llama     RMSNorm, rotate-half RoPE, GQA, SwiGLU; Llama 3 rope_scaling.
 *   mistral   as llama; its sliding window is not implemented, so the
 *             context is capped at the window (where results are exact).
 *   qwen2     as llama with q/k/v biases.
 *   gpt_neox  LayerNorm with biases, fused query_key_value laid out per head
 *             [q_h | k_h | v_h], partial rotary (rotary_pct), parallel
 *             residual, classic GELU (erf) FFN, separate embed_out.
 * Limits: no quantized checkpoints (quantization_config), no rope_scaling
 * other than llama3, no sliding-window attention beyond the window. */
#include "err.h"
#include "model.h"
#include "safetensors.h"

#include <jansson.h>
#include <string.h>
#include <sys/stat.h>

/* ---- config.json access --------------------------------------------------- */

typedef struct {
    json_t *root;
    const char *path; /* config.json's path, for messages */
} conf_t;

static json_t *conf_get(const conf_t *c, const char *key) {
    json_t *v = json_object_get(c->root, key);
    return json_is_null(v) ? NULL : v;
}

/* Integer KEY in [LO, HI]; DEF when absent or null, unless REQUIRED. */
static int conf_int(const conf_t *c, const char *key, int required, long long def, long long lo,
                    long long hi, int *out) {
    json_t *v = conf_get(c, key);
    if (!v) {
        if (required) return err_set("%s: \"%s\" is missing", c->path, key);
        *out = (int)def;
        return 0;
    }
    if (!json_is_integer(v)) return err_set("%s: \"%s\" is not an integer", c->path, key);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return err_set("%s: \"%s\" = %lld is outside %lld..%lld", c->path, key, x, lo, hi);
    *out = (int)x;
    return 0;
}

/* Number KEY (integer or real) in [LO, HI]; DEF when absent or null. */
static int conf_num(const conf_t *c, const char *key, double def, double lo, double hi,
                    double *out) {
    json_t *v = conf_get(c, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_number(v)) return err_set("%s: \"%s\" is not a number", c->path, key);
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi))
        return err_set("%s: \"%s\" = %g is outside %g..%g", c->path, key, x, lo, hi);
    *out = x;
    return 0;
}

static int conf_bool(const conf_t *c, const char *key, int def, int *out) {
    json_t *v = conf_get(c, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v)) return err_set("%s: \"%s\" is not true or false", c->path, key);
    *out = json_is_true(v);
    return 0;
}

/* String KEY (borrowed) or DEF. */
static int conf_str(const conf_t *c, const char *key, const char *def, const char **out) {
    json_t *v = conf_get(c, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_string(v)) return err_set("%s: \"%s\" is not a string", c->path, key);
    *out = json_string_value(v);
    return 0;
}

/* transformers' ACT2FN names.  gelu_new, gelu_pytorch_tanh and gelu_fast are
 * all the tanh approximation; "gelu" is the exact erf form. */
static int conf_act(const conf_t *c, const char *key, const char *def, act_t *out) {
    static const struct {
        const char *name;
        act_t act;
    } acts[] = {{"gelu", ACT_GELU_ERF},
                {"gelu_new", ACT_GELU_TANH},
                {"gelu_pytorch_tanh", ACT_GELU_TANH},
                {"gelu_fast", ACT_GELU_TANH},
                {"relu", ACT_RELU},
                {"silu", ACT_SILU},
                {"swish", ACT_SILU}};
    const char *s = def;
    if (conf_str(c, key, def, &s)) return -1;
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++)
        if (!strcmp(s, acts[i].name)) return *out = acts[i].act, 0;
    return err_set("%s: %s \"%.40s\" is not supported (supported: gelu, gelu_new, "
                   "gelu_pytorch_tanh, gelu_fast, relu, silu)",
                   c->path, key, s);
}

/* ---- Architectures ------------------------------------------------------------ */

/* What a config decides beyond mcfg_t: which biases exist, weight layout. */
typedef struct {
    int norm_bias;      /* LayerNorm biases */
    int qkv_bias;       /* q, k, v (or fused qkv) biases */
    int o_bias;         /* attention output bias */
    int mlp_bias;       /* FFN biases */
    int conv1d;         /* weights stored (in, out) */
    int tie;            /* lm_head is the token embedding */
    const char *prefix; /* before embed/pos/out_norm/layer names */
} hf_opts_t;

typedef struct hf_arch {
    const char *type, *cls; /* config model_type; architectures[0] */
    arch_t arch;
    int (*config)(model_t *m, const conf_t *c, hf_opts_t *o, const st_t *st);
    /* Module names (".weight"/".bias" appended); LAYER has one %d. */
    const char *embed, *pos, *out_norm, *lm_head, *layer;
    const char *attn_norm, *q, *k, *v, *qkv, *o, *ffn_norm, *gate, *up, *down;
} hf_arch_t;

static int cfg_gpt2(model_t *m, const conf_t *c, hf_opts_t *o, const st_t *st) {
    mcfg_t *g = &m->cfg;
    int scale = 1, inv_layer = 0;
    double eps = 0;
    if (conf_int(c, "vocab_size", 1, 0, 1, 1 << 24, &g->vocab) ||
        conf_int(c, "n_embd", 1, 0, 1, 1 << 20, &g->d_model) ||
        conf_int(c, "n_layer", 1, 0, 1, 4096, &g->n_layer) ||
        conf_int(c, "n_head", 1, 0, 1, 4096, &g->n_head) ||
        conf_int(c, "n_positions", 0, 1024, 1, 1 << 24, &g->max_seq) ||
        conf_int(c, "n_inner", 0, 0, 1, 1 << 22, &g->n_ff) ||
        conf_act(c, "activation_function", "gelu_new", &g->act) ||
        conf_num(c, "layer_norm_epsilon", 1e-5, 0, 1, &eps) ||
        conf_bool(c, "tie_word_embeddings", 1, &o->tie) ||
        conf_bool(c, "scale_attn_weights", 1, &scale) ||
        conf_bool(c, "scale_attn_by_inverse_layer_idx", 0, &inv_layer))
        return -1;
    if (!scale || inv_layer)
        return err_set("%s: attention without the 1/sqrt(head size) scale, or scaled by the "
                       "inverse layer index, is not supported",
                       c->path);
    if (g->d_model % g->n_head)
        return err_set("%s: n_embd %d is not a multiple of n_head %d", c->path, g->d_model,
                       g->n_head);
    if (!g->n_ff) g->n_ff = 4 * g->d_model; /* n_inner null: 4 * n_embd */
    g->n_kv_head = g->n_head;
    g->head_dim = g->d_model / g->n_head;
    g->norm_eps = (float)eps;
    g->norm = NORM_LAYER;
    g->gated = 0;
    g->learned_pos = 1;
    g->rope = ROPE_NONE;
    g->qkv = QKV_FUSED_BLOCKS;
    o->norm_bias = o->qkv_bias = o->o_bias = o->mlp_bias = 1;
    o->conv1d = 1;
    /* GPT2Model checkpoints have bare names; GPT2LMHeadModel ones "transformer.". */
    o->prefix = st_find(st, "transformer.wte.weight") ? "transformer." : "";
    return 0;
}

/* Llama 3's rope_scaling; "default" (or none) means none. */
static int conf_rope_scaling(const conf_t *c, mcfg_t *g) {
    json_t *rs = conf_get(c, "rope_scaling");
    if (!rs) return 0;
    if (!json_is_object(rs)) return err_set("%s: \"rope_scaling\" is not an object", c->path);
    conf_t sub = {rs, c->path};
    const char *type = NULL;
    if (conf_str(&sub, "rope_type", NULL, &type)) return -1;
    if (!type && conf_str(&sub, "type", "default", &type)) return -1;
    if (!strcmp(type, "default")) return 0;
    if (strcmp(type, "llama3"))
        return err_set("%s: rope_scaling type \"%.40s\" is not supported (supported: llama3)",
                       c->path, type);
    double f = 0, lo = 0, hi = 0;
    int orig = 0;
    if (conf_num(&sub, "factor", 0, 1e-6, 1e6, &f) ||
        conf_num(&sub, "low_freq_factor", 0, 1e-6, 1e6, &lo) ||
        conf_num(&sub, "high_freq_factor", 0, 1e-6, 1e6, &hi) ||
        conf_int(&sub, "original_max_position_embeddings", 1, 0, 1, 1 << 24, &orig))
        return err_prefix("rope_scaling");
    if (!(f > 0 && lo > 0 && hi > lo))
        return err_set("%s: rope_scaling llama3 needs factor > 0 and high_freq_factor > "
                       "low_freq_factor > 0",
                       c->path);
    g->rope_factor = (float)f;
    g->rope_low_freq_factor = (float)lo;
    g->rope_high_freq_factor = (float)hi;
    g->rope_orig_ctx = orig;
    return 0;
}

static int cfg_llama(model_t *m, const conf_t *c, hf_opts_t *o, const st_t *st) {
    (void)st;
    mcfg_t *g = &m->cfg;
    double eps = 0, theta = 0, partial = 1;
    int abias = 0, mbias = 0;
    int qwen2 = g->arch == ARCH_QWEN2;
    long long ctx_def = qwen2 ? 32768 : 2048;
    if (conf_int(c, "vocab_size", 1, 0, 1, 1 << 24, &g->vocab) ||
        conf_int(c, "hidden_size", 1, 0, 1, 1 << 20, &g->d_model) ||
        conf_int(c, "intermediate_size", 1, 0, 1, 1 << 22, &g->n_ff) ||
        conf_int(c, "num_hidden_layers", 1, 0, 1, 4096, &g->n_layer) ||
        conf_int(c, "num_attention_heads", 1, 0, 1, 4096, &g->n_head) ||
        conf_int(c, "num_key_value_heads", 0, g->n_head, 1, 4096, &g->n_kv_head) ||
        conf_int(c, "max_position_embeddings", 0, ctx_def, 1, 1 << 24, &g->max_seq) ||
        conf_num(c, "rms_norm_eps", 1e-6, 0, 1, &eps) ||
        conf_num(c, "rope_theta", 10000, 1, 1e12, &theta) ||
        conf_num(c, "partial_rotary_factor", 1, 0, 1, &partial) ||
        conf_act(c, "hidden_act", "silu", &g->act) ||
        conf_bool(c, "tie_word_embeddings", 0, &o->tie) ||
        conf_bool(c, "attention_bias", 0, &abias) || conf_bool(c, "mlp_bias", 0, &mbias) ||
        conf_rope_scaling(c, g))
        return -1;
    g->head_dim = g->d_model % g->n_head ? 0 : g->d_model / g->n_head;
    if (conf_int(c, "head_dim", 0, g->head_dim, 1, 4096, &g->head_dim)) return -1;
    if (!g->head_dim)
        return err_set("%s: hidden_size %d is not a multiple of num_attention_heads %d and there "
                       "is no head_dim",
                       c->path, g->d_model, g->n_head);
    /* Sliding-window attention equals full attention up to the window, so
     * the context stops there rather than giving silently different results. */
    int use_sw = 1, sw = 0;
    if (qwen2 && conf_bool(c, "use_sliding_window", 0, &use_sw)) return -1;
    if (use_sw && conf_int(c, "sliding_window", 0, 0, 1, 1 << 24, &sw)) return -1;
    if (sw > 0 && sw < g->max_seq) g->max_seq = sw;
    g->norm_eps = (float)eps;
    g->rope_theta = (float)theta;
    g->rotary_dim = (int)(g->head_dim * partial);
    g->norm = NORM_RMS;
    g->gated = 1;
    g->rope = ROPE_HALF;
    g->qkv = QKV_SEPARATE;
    o->qkv_bias = qwen2 || abias;
    o->o_bias = abias;
    o->mlp_bias = mbias;
    o->prefix = "";
    return 0;
}

static int cfg_neox(model_t *m, const conf_t *c, hf_opts_t *o, const st_t *st) {
    (void)st;
    mcfg_t *g = &m->cfg;
    double eps = 0, pct = 0, base = 0;
    if (conf_int(c, "vocab_size", 1, 0, 1, 1 << 24, &g->vocab) ||
        conf_int(c, "hidden_size", 1, 0, 1, 1 << 20, &g->d_model) ||
        conf_int(c, "intermediate_size", 1, 0, 1, 1 << 22, &g->n_ff) ||
        conf_int(c, "num_hidden_layers", 1, 0, 1, 4096, &g->n_layer) ||
        conf_int(c, "num_attention_heads", 1, 0, 1, 4096, &g->n_head) ||
        conf_int(c, "max_position_embeddings", 0, 2048, 1, 1 << 24, &g->max_seq) ||
        conf_num(c, "layer_norm_eps", 1e-5, 0, 1, &eps) ||
        conf_act(c, "hidden_act", "gelu", &g->act) ||
        conf_bool(c, "use_parallel_residual", 1, &g->parallel_residual) ||
        conf_bool(c, "tie_word_embeddings", 0, &o->tie) ||
        conf_bool(c, "attention_bias", 1, &o->qkv_bias))
        return -1;
    /* Newer transformers call rotary_pct / rotary_emb_base
     * partial_rotary_factor / rope_theta. */
    if (conf_num(c, "partial_rotary_factor", 0.25, 0, 1, &pct) ||
        conf_num(c, "rotary_pct", pct, 0, 1, &pct) ||
        conf_num(c, "rope_theta", 10000, 1, 1e12, &base) ||
        conf_num(c, "rotary_emb_base", base, 1, 1e12, &base))
        return -1;
    if (conf_get(c, "rope_scaling"))
        return err_set("%s: rope_scaling is not supported for gpt_neox", c->path);
    if (g->d_model % g->n_head)
        return err_set("%s: hidden_size %d is not a multiple of num_attention_heads %d", c->path,
                       g->d_model, g->n_head);
    g->n_kv_head = g->n_head;
    g->head_dim = g->d_model / g->n_head;
    g->rotary_dim = (int)(g->head_dim * pct); /* int(head_size * rotary_pct), as HF */
    g->rope = g->rotary_dim > 0 ? ROPE_HALF : ROPE_NONE;
    g->rope_theta = (float)base;
    g->norm_eps = (float)eps;
    g->norm = NORM_LAYER;
    g->gated = 0;
    g->qkv = QKV_FUSED_HEADS;
    o->o_bias = o->qkv_bias;
    o->norm_bias = o->mlp_bias = 1;
    o->prefix = "";
    return 0;
}

static const hf_arch_t hf_archs[] = {
    {"gpt2", "GPT2LMHeadModel", ARCH_GPT2, cfg_gpt2, "wte", "wpe", "ln_f", "lm_head", "h.%d.",
     "ln_1", NULL, NULL, NULL, "attn.c_attn", "attn.c_proj", "ln_2", NULL, "mlp.c_fc",
     "mlp.c_proj"},
    {"llama", "LlamaForCausalLM", ARCH_LLAMA, cfg_llama, "model.embed_tokens", NULL, "model.norm",
     "lm_head", "model.layers.%d.", "input_layernorm", "self_attn.q_proj", "self_attn.k_proj",
     "self_attn.v_proj", NULL, "self_attn.o_proj", "post_attention_layernorm", "mlp.gate_proj",
     "mlp.up_proj", "mlp.down_proj"},
    {"mistral", "MistralForCausalLM", ARCH_LLAMA, cfg_llama, "model.embed_tokens", NULL,
     "model.norm", "lm_head", "model.layers.%d.", "input_layernorm", "self_attn.q_proj",
     "self_attn.k_proj", "self_attn.v_proj", NULL, "self_attn.o_proj", "post_attention_layernorm",
     "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"},
    {"qwen2", "Qwen2ForCausalLM", ARCH_QWEN2, cfg_llama, "model.embed_tokens", NULL, "model.norm",
     "lm_head", "model.layers.%d.", "input_layernorm", "self_attn.q_proj", "self_attn.k_proj",
     "self_attn.v_proj", NULL, "self_attn.o_proj", "post_attention_layernorm", "mlp.gate_proj",
     "mlp.up_proj", "mlp.down_proj"},
    {"gpt_neox", "GPTNeoXForCausalLM", ARCH_NEOX, cfg_neox, "gpt_neox.embed_in", NULL,
     "gpt_neox.final_layer_norm", "embed_out", "gpt_neox.layers.%d.", "input_layernorm", NULL, NULL,
     NULL, "attention.query_key_value", "attention.dense", "post_attention_layernorm", NULL,
     "mlp.dense_h_to_4h", "mlp.dense_4h_to_h"},
};
#define N_ARCHS (sizeof hf_archs / sizeof *hf_archs)

/* ---- Binding ----------------------------------------------------------------------- */

typedef struct {
    model_t *m;
    const st_t *st;
    const hf_opts_t *o;
} binder_t;

/* model_bind, plus: a tensor that is in the files but unusable says why, and
 * a missing one says where it was looked for. */
static int bind_t(binder_t *b, const tensor_t **out, const char *name, int64_t rows, int64_t cols,
                  int optional) {
    const char *why = st_skip_reason(b->st, name);
    if (why) return err_set("%s: tensor '%s' cannot be used: %s", b->m->path, name, why);
    if (!optional && !st_find(b->st, name)) {
        if (b->st->sharded)
            return err_set("%s: tensor '%s' is missing (not in any of the %d shards)", b->m->path,
                           name, b->st->n_files);
        return err_set("%s: tensor '%s' is missing", b->st->files[0]->path, name);
    }
    return model_bind(b->m, out, name, rows, cols, optional);
}

static int bind_mod(binder_t *b, const char *pre, const char *mod, const char *suffix,
                    const tensor_t **out, int64_t rows, int64_t cols, int optional) {
    char n[TENSOR_NAME_MAX + 64];
    snprintf(n, sizeof n, "%s%s.%s", pre, mod, suffix);
    if (strlen(n) >= TENSOR_NAME_MAX) return err_set("tensor name '%s' is too long", n);
    return bind_t(b, out, n, rows, cols, optional);
}

/* A linear map OUT x IN (stored IN x OUT for Conv1D), with a bias if BIAS. */
static int bind_lin(binder_t *b, const char *pre, const char *mod, lin_t *l, int64_t out,
                    int64_t in, int bias) {
    l->transposed = b->o->conv1d;
    if (bind_mod(b, pre, mod, "weight", &l->w, l->transposed ? in : out, l->transposed ? out : in,
                 0))
        return -1;
    return bias ? bind_mod(b, pre, mod, "bias", &l->b, 0, out, 0) : 0;
}

static int bind_norm(binder_t *b, const char *pre, const char *mod, const tensor_t **w,
                     const tensor_t **bias) {
    int64_t d = b->m->cfg.d_model;
    if (bind_mod(b, pre, mod, "weight", w, 0, d, 0)) return -1;
    return b->o->norm_bias ? bind_mod(b, pre, mod, "bias", bias, 0, d, 0) : 0;
}

static int bind_all(model_t *m, const hf_arch_t *a, const hf_opts_t *o, const st_t *st) {
    binder_t b = {m, st, o};
    const mcfg_t *c = &m->cfg;
    int64_t d = c->d_model, qd = (int64_t)c->n_head * c->head_dim,
            kvd = (int64_t)c->n_kv_head * c->head_dim, ff = c->n_ff;
    const char *p = o->prefix;
    if (bind_mod(&b, p, a->embed, "weight", &m->tok_embd, c->vocab, d, 0) ||
        (a->pos && bind_mod(&b, p, a->pos, "weight", &m->pos_embd, c->max_seq, d, 0)) ||
        bind_norm(&b, p, a->out_norm, &m->out_norm_w, &m->out_norm_b))
        return -1;
    /* HF ties lm_head to the embedding when tie_word_embeddings says so (a
     * stored lm_head.weight is then ignored, as HF overwrites it); an untied
     * model without lm_head falls back to the embedding, as llama.cpp does. */
    if (!o->tie && bind_mod(&b, "", a->lm_head, "weight", &m->lm_head.w, c->vocab, d, 1)) return -1;
    if (!m->lm_head.w) {
        m->lm_head.w = m->tok_embd;
        m->tied = 1;
    }
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers) return err_set("out of memory");
    for (int l = 0; l < c->n_layer; l++) {
        mlayer_t *L = &m->layers[l];
        char pre[96], fmt[64];
        snprintf(fmt, sizeof fmt, "%%s%s", a->layer);
        snprintf(pre, sizeof pre, fmt, p, l);
        if (bind_norm(&b, pre, a->attn_norm, &L->attn_norm_w, &L->attn_norm_b)) return -1;
        if (a->qkv) {
            if (bind_lin(&b, pre, a->qkv, &L->qkv, qd + 2 * kvd, d, o->qkv_bias)) return -1;
        } else if (bind_lin(&b, pre, a->q, &L->q, qd, d, o->qkv_bias) ||
                   bind_lin(&b, pre, a->k, &L->k, kvd, d, o->qkv_bias) ||
                   bind_lin(&b, pre, a->v, &L->v, kvd, d, o->qkv_bias)) {
            return -1;
        }
        if (bind_lin(&b, pre, a->o, &L->o, d, qd, o->o_bias) ||
            bind_norm(&b, pre, a->ffn_norm, &L->ffn_norm_w, &L->ffn_norm_b) ||
            (a->gate && bind_lin(&b, pre, a->gate, &L->gate, ff, d, o->mlp_bias)) ||
            bind_lin(&b, pre, a->up, &L->up, ff, d, o->mlp_bias) ||
            bind_lin(&b, pre, a->down, &L->down, d, ff, o->mlp_bias))
            return -1;
    }
    return 0;
}

/* ---- Loading ------------------------------------------------------------------------- */

static void st_close_v(void *s) { st_close(s); }

static const hf_arch_t *pick_arch(const conf_t *c) {
    const char *type = NULL;
    if (conf_str(c, "model_type", NULL, &type)) return NULL;
    json_t *al = conf_get(c, "architectures");
    const char *cls = json_string_value(json_array_get(al, 0));
    for (size_t i = 0; i < N_ARCHS; i++)
        if (type ? !strcmp(type, hf_archs[i].type) : cls && !strcmp(cls, hf_archs[i].cls))
            return &hf_archs[i];
    char list[128] = "";
    for (size_t i = 0; i < N_ARCHS; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                 hf_archs[i].type);
    if (type)
        err_set("%s: model_type \"%.60s\" is not supported (supported: %s)", c->path, type, list);
    else if (cls)
        err_set("%s: no model_type, and architecture \"%.60s\" is not supported (supported: %s)",
                c->path, cls, list);
    else
        err_set("%s: no model_type or architectures (supported model types: %s)", c->path, list);
    return NULL;
}

int hf_model_load(model_t *m, const char *dir) {
    size_t dl = strlen(dir);
    char *cpath = malloc(dl + 16);
    if (!cpath) return err_set("out of memory");
    snprintf(cpath, dl + 16, "%s%sconfig.json", dir, dl && dir[dl - 1] == '/' ? "" : "/");
    int rc = -1;
    json_t *root = NULL;
    size_t len;
    struct stat sb;
    if (stat(cpath, &sb) != 0) {
        err_set("%s: no config.json (a Hugging Face model folder holds config.json and "
                "model.safetensors)",
                dir);
        goto done;
    }
    char *txt = mfile_slurp(cpath, (size_t)16 << 20, &len);
    if (!txt) goto done;
    json_error_t je;
    root = json_loadb(txt, len, JSON_REJECT_DUPLICATES, &je);
    free(txt);
    if (!root) {
        err_set("%s: not valid JSON: %s (line %d, column %d)", cpath, je.text, je.line, je.column);
        goto done;
    }
    if (!json_is_object(root)) {
        err_set("%s: not a JSON object", cpath);
        goto done;
    }
    conf_t c = {root, cpath};
    const hf_arch_t *a = pick_arch(&c);
    if (!a) goto done;
    if (conf_get(&c, "quantization_config")) {
        err_set("%s: quantized checkpoints (quantization_config) are not supported", cpath);
        goto done;
    }
    st_t *st = st_open(dir);
    if (!st) goto done;
    m->src = st;
    m->src_close = st_close_v;
    if (st->sharded)
        snprintf(m->format, sizeof m->format, "safetensors (sharded, %d files)", st->n_files);
    else
        snprintf(m->format, sizeof m->format, "safetensors");
    for (int i = 0; i < st->tensors.n; i++)
        if (!ttab_add(&m->tensors, &st->tensors.items[i])) goto done;
    hf_opts_t o;
    memset(&o, 0, sizeof o);
    m->cfg.arch = a->arch;
    m->cfg.qkv = QKV_SEPARATE;
    if (a->config(m, &c, &o, st) || model_check_cfg(m) || bind_all(m, a, &o, st)) goto done;
    rc = 0;
done:
    json_decref(root);
    free(cpath);
    return rc;
}
