/* model: opening models of any supported format, binding tensors by role,
 * and the Llama loaders for llama2.c checkpoints and GGUF files (see model.h).
 *
 * llama2.c and GGUF Llama models share one tensor naming (GGUF's: blk.N.attn_q
 * ...); the llama2.c loader creates views with those names into its mapping so
 * a single binder checks shapes for both. */
#include "model.h"

#include "err.h"
#include "gguf.h"

#include <string.h>
#include <sys/stat.h>

static const char *arch_names[ARCH_COUNT] = {"llama", "gpt2", "gpt_neox", "qwen2"};
const char *arch_name(arch_t a) { return (unsigned)a < ARCH_COUNT ? arch_names[a] : "?"; }

int model_bind(model_t *m, const tensor_t **out, const char *name, int64_t rows, int64_t cols,
               int optional) {
    const tensor_t *t = ttab_find(&m->tensors, name);
    *out = NULL;
    if (!t) {
        if (optional) return 0;
        return err_set("%s: tensor '%s' is missing", m->path, name);
    }
    int64_t want[2] = {rows, cols};
    int wnd = rows ? 2 : 1;
    const int64_t *w = rows ? want : want + 1;
    /* A 1-D tensor of n may be stored as [1, n] by some exporters. */
    int nd = t->ndim;
    const int64_t *s = t->shape;
    while (nd > wnd && s[0] == 1)
        s++, nd--;
    int ok = nd == wnd;
    for (int i = 0; ok && i < wnd; i++)
        ok = s[i] == w[i];
    if (!ok) {
        char a[96], b[96];
        return err_set("%s: tensor '%s' has shape %s, expected %s", m->path, name,
                       tensor_shape_str(t->ndim, t->shape, a, sizeof a),
                       tensor_shape_str(wnd, w, b, sizeof b));
    }
    *out = t;
    return 0;
}

int model_check_cfg(const model_t *m) {
    const mcfg_t *c = &m->cfg;
    if (c->n_layer <= 0 || c->n_layer > 4096 || c->d_model <= 0 || c->d_model > (1 << 20) ||
        c->n_ff <= 0 || c->n_ff > (1 << 22) || c->n_head <= 0 || c->n_head > 4096 ||
        c->n_kv_head <= 0 || c->vocab <= 0 || c->vocab > (1 << 24) || c->max_seq <= 0 ||
        c->head_dim <= 0 || c->head_dim > 4096)
        return err_set("%s: implausible model dimensions (layers %d, dim %d, ffn %d, heads %d/%d, "
                       "vocab %d, context %d)",
                       m->path, c->n_layer, c->d_model, c->n_ff, c->n_head, c->n_kv_head, c->vocab,
                       c->max_seq);
    if (c->n_head % c->n_kv_head != 0)
        return err_set("%s: %d attention heads are not a multiple of %d key/value heads", m->path,
                       c->n_head, c->n_kv_head);
    if (c->rope != ROPE_NONE &&
        (c->rotary_dim <= 0 || c->rotary_dim > c->head_dim || c->rotary_dim % 2 != 0))
        return err_set("%s: rotary dimension %d does not fit heads of %d", m->path, c->rotary_dim,
                       c->head_dim);
    return 0;
}

/* ---- Llama tensors under GGUF names ---------------------------------- */

static int bind_llama(model_t *m) {
    mcfg_t *c = &m->cfg;
    int64_t d = c->d_model, q = (int64_t)c->n_head * c->head_dim,
            kv = (int64_t)c->n_kv_head * c->head_dim, f = c->n_ff;
    if (model_bind(m, &m->tok_embd, "token_embd.weight", c->vocab, d, 0) ||
        model_bind(m, &m->out_norm_w, "output_norm.weight", 0, d, 0) ||
        model_bind(m, &m->lm_head.w, "output.weight", c->vocab, d, 1))
        return -1;
    if (!m->lm_head.w) {
        m->lm_head.w = m->tok_embd;
        m->tied = 1;
    }
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers) return err_set("out of memory");
    for (int l = 0; l < c->n_layer; l++) {
        mlayer_t *L = &m->layers[l];
        char n[TENSOR_NAME_MAX];
#define B(field, suffix, r, cc)                                                                    \
    snprintf(n, sizeof n, "blk.%d." suffix, l);                                                    \
    if (model_bind(m, &L->field, n, r, cc, 0)) return -1;
        B(attn_norm_w, "attn_norm.weight", 0, d);
        B(q.w, "attn_q.weight", q, d);
        B(k.w, "attn_k.weight", kv, d);
        B(v.w, "attn_v.weight", kv, d);
        B(o.w, "attn_output.weight", d, q);
        B(ffn_norm_w, "ffn_norm.weight", 0, d);
        B(gate.w, "ffn_gate.weight", f, d);
        B(up.w, "ffn_up.weight", f, d);
        B(down.w, "ffn_down.weight", d, f);
#undef B
    }
    return 0;
}

static void llama_defaults(mcfg_t *c) {
    c->arch = ARCH_LLAMA;
    c->norm = NORM_RMS;
    c->act = ACT_SILU;
    c->gated = 1;
    c->rope = ROPE_PAIRWISE;
    c->rope_theta = 10000.0f;
    c->norm_eps = 1e-5f;
    c->qkv = QKV_SEPARATE;
}

/* ---- llama2.c checkpoints ---------------------------------------------- */

typedef struct {
    const uint8_t *p, *end;
    const char *path;
} walk_t;

static int add_view(model_t *m, walk_t *w, const char *name, int64_t rows, int64_t cols) {
    tensor_t t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.dtype = DT_F32;
    t.ndim = rows ? 2 : 1;
    if (rows) {
        t.shape[0] = rows;
        t.shape[1] = cols;
    } else {
        t.shape[0] = cols;
    }
    t.nbytes = tensor_bytes_for(DT_F32, t.ndim, t.shape);
    if (!t.nbytes) return err_prefix("%s: %s", w->path, name);
    if (t.nbytes > (uint64_t)(w->end - w->p))
        return err_set("%s: truncated: tensor '%s' needs %llu bytes, %lld left", w->path, name,
                       (unsigned long long)t.nbytes, (long long)(w->end - w->p));
    t.data = w->p;
    w->p += t.nbytes;
    return ttab_add(&m->tensors, &t) ? 0 : -1;
}

static int add_layers(model_t *m, walk_t *w, const char *suffix, int64_t rows, int64_t cols) {
    char n[TENSOR_NAME_MAX];
    for (int l = 0; l < m->cfg.n_layer; l++) {
        snprintf(n, sizeof n, "blk.%d.%s", l, suffix);
        if (add_view(m, w, n, rows, cols)) return -1;
    }
    return 0;
}

int llama2c_load(model_t *m, const char *path) {
    mfile_t *f = mfile_open(path);
    if (!f) return -1;
    m->files = calloc(1, sizeof *m->files);
    if (!m->files) return mfile_close(f), err_set("out of memory");
    m->files[m->n_files++] = f;
    int32_t h[7];
    uint32_t magic = 0;
    int version = 0, shared = 1;
    size_t hdr;
    if (f->size >= 4) memcpy(&magic, f->data, 4);
    if (magic == 0x616b3432) { /* "ak42": llama2.c v1 export */
        if (f->size < 256) return err_set("%s: truncated llama2.c v1 header", path);
        int32_t ver;
        memcpy(&ver, f->data + 4, 4);
        if (ver != 1)
            return err_set("%s: llama2.c export version %d is not supported (1 is; version 2 is "
                           "int8-quantised)",
                           path, ver);
        memcpy(h, f->data + 8, sizeof h);
        shared = f->data[36];
        version = 1;
        hdr = 256;
    } else {
        if (f->size < sizeof h) return err_set("%s: file too short for a llama2.c header", path);
        memcpy(h, f->data, sizeof h);
        shared = h[5] > 0;
        if (h[5] < 0) h[5] = -h[5];
        hdr = sizeof h;
    }
    mcfg_t *c = &m->cfg;
    llama_defaults(c);
    c->d_model = h[0];
    c->n_ff = h[1];
    c->n_layer = h[2];
    c->n_head = h[3];
    c->n_kv_head = h[4];
    c->vocab = h[5];
    c->max_seq = h[6];
    if (c->d_model <= 0 || c->n_head <= 0 || c->d_model % c->n_head != 0) {
        return err_set("%s: not a llama2.c checkpoint (header says dim %d, %d heads)", path,
                       c->d_model, c->n_head);
    }
    c->head_dim = c->d_model / c->n_head;
    c->rotary_dim = c->head_dim;
    if (model_check_cfg(m)) return err_prefix("not a llama2.c checkpoint? header");
    snprintf(m->format, sizeof m->format, version ? "llama2.c v1" : "llama2.c");
    int64_t d = c->d_model, kv = (int64_t)c->n_kv_head * c->head_dim, ff = c->n_ff;
    walk_t w = {f->data + hdr, f->data + f->size, path};
    if (version == 0) {
        if (add_view(m, &w, "token_embd.weight", c->vocab, d) ||
            add_layers(m, &w, "attn_norm.weight", 0, d) ||
            add_layers(m, &w, "attn_q.weight", d, d) || add_layers(m, &w, "attn_k.weight", kv, d) ||
            add_layers(m, &w, "attn_v.weight", kv, d) ||
            add_layers(m, &w, "attn_output.weight", d, d) ||
            add_layers(m, &w, "ffn_norm.weight", 0, d) ||
            add_layers(m, &w, "ffn_gate.weight", ff, d) ||
            add_layers(m, &w, "ffn_down.weight", d, ff) ||
            add_layers(m, &w, "ffn_up.weight", ff, d) ||
            add_view(m, &w, "output_norm.weight", 0, d))
            return -1;
        /* The legacy format stores RoPE tables (unused: we compute them). */
        if (add_view(m, &w, "rope.freq_cis_real", c->max_seq, c->head_dim / 2) ||
            add_view(m, &w, "rope.freq_cis_imag", c->max_seq, c->head_dim / 2))
            return -1;
    } else {
        if (add_layers(m, &w, "attn_norm.weight", 0, d) ||
            add_layers(m, &w, "ffn_norm.weight", 0, d) ||
            add_view(m, &w, "output_norm.weight", 0, d) ||
            add_view(m, &w, "token_embd.weight", c->vocab, d) ||
            add_layers(m, &w, "attn_q.weight", d, d) || add_layers(m, &w, "attn_k.weight", kv, d) ||
            add_layers(m, &w, "attn_v.weight", kv, d) ||
            add_layers(m, &w, "attn_output.weight", d, d) ||
            add_layers(m, &w, "ffn_gate.weight", ff, d) ||
            add_layers(m, &w, "ffn_down.weight", d, ff) ||
            add_layers(m, &w, "ffn_up.weight", ff, d))
            return -1;
    }
    if (!shared && add_view(m, &w, "output.weight", c->vocab, d)) return -1;
    if (w.p != w.end)
        return err_set("%s: %lld bytes left over after the weights (wrong header?)", path,
                       (long long)(w.end - w.p));
    return bind_llama(m);
}

/* ---- GGUF ---------------------------------------------------------------- */

static void gguf_close_v(void *g) { gguf_close(g); }

int gguf_model_load(model_t *m, const char *path) {
    gguf_t *g = gguf_open(path);
    if (!g) return -1;
    m->src = g;
    m->src_close = gguf_close_v;
    const char *arch;
    uint64_t alen;
    if (gguf_get_str(g, "general.architecture", &arch, &alen)) return -1;
    if (!(alen == 5 && memcmp(arch, "llama", 5) == 0))
        return err_set("%s: GGUF architecture '%.*s' is not supported (supported: llama)", path,
                       (int)(alen > 64 ? 64 : alen), arch);
    snprintf(m->format, sizeof m->format, "GGUF v%u", g->version);
    /* Share the table: the model binds views that live in the gguf mapping. */
    for (int i = 0; i < g->tensors.n; i++)
        if (!ttab_add(&m->tensors, &g->tensors.items[i])) return -1;
    mcfg_t *c = &m->cfg;
    llama_defaults(c);
    int64_t v;
    double fv;
#define GETI(key, field)                                                                           \
    if (gguf_get_int(g, key, &v)) return -1;                                                       \
    if (v <= 0 || v > (1 << 30))                                                                   \
        return err_set("%s: %s = %lld is out of range", path, key, (long long)v);                  \
    c->field = (int)v;
    GETI("llama.embedding_length", d_model);
    GETI("llama.feed_forward_length", n_ff);
    GETI("llama.block_count", n_layer);
    GETI("llama.attention.head_count", n_head);
    GETI("llama.context_length", max_seq);
#undef GETI
    c->n_kv_head = c->n_head;
    if (gguf_get_int(g, "llama.attention.head_count_kv", &v) == 0) {
        if (v <= 0 || v > c->n_head)
            return err_set("%s: llama.attention.head_count_kv = %lld is out of range", path,
                           (long long)v);
        c->n_kv_head = (int)v;
    }
    if (c->d_model % c->n_head)
        return err_set("%s: embedding length %d is not a multiple of %d heads", path, c->d_model,
                       c->n_head);
    c->head_dim = c->d_model / c->n_head;
    c->rotary_dim = c->head_dim;
    if (gguf_get_int(g, "llama.rope.dimension_count", &v) == 0) c->rotary_dim = (int)v;
    if (gguf_get_float(g, "llama.attention.layer_norm_rms_epsilon", &fv) == 0)
        c->norm_eps = (float)fv;
    if (gguf_get_float(g, "llama.rope.freq_base", &fv) == 0) c->rope_theta = (float)fv;
    const tensor_t *emb = ttab_find(&m->tensors, "token_embd.weight");
    if (!emb || emb->ndim != 2) return err_set("%s: tensor 'token_embd.weight' is missing", path);
    c->vocab = (int)emb->shape[0];
    err_clear();
    if (model_check_cfg(m)) return -1;
    return bind_llama(m);
}

/* ---- Opening --------------------------------------------------------------- */

static int hf_dir_has_tokenizer(const char *dir) {
    static const char *names[] = {"tokenizer.json", "vocab.json"};
    for (int i = 0; i < 2; i++) {
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) return 1;
    }
    return 0;
}

model_t *model_open(const char *path, const char *tokenizer) {
    model_t *m = calloc(1, sizeof *m);
    if (!m) return err_set("out of memory"), NULL;
    ttab_init(&m->tensors);
    m->path = strdup(path);
    struct stat st;
    int rc;
    if (stat(path, &st) != 0) {
        err_set("%s: no such file or folder", path);
        goto fail;
    }
    if (S_ISDIR(st.st_mode))
        rc = hf_model_load(m, path);
    else if (gguf_is_gguf(path))
        rc = gguf_model_load(m, path);
    else
        rc = llama2c_load(m, path);
    if (rc) goto fail;
    if (tokenizer) {
        m->tok = tok_load(tokenizer, m->cfg.vocab);
        if (!m->tok) goto fail;
    } else if (S_ISDIR(st.st_mode) && hf_dir_has_tokenizer(path)) {
        /* A Hugging Face folder's own tokenizer files; broken ones are an error. */
        m->tok = tok_load_hf(path);
        if (!m->tok) goto fail;
    } else if (m->src && m->src_close == gguf_close_v) {
        m->tok = tok_from_gguf(m->src);
        if (!m->tok) {
            /* A GGUF without a tokenizer, or with a kind probe does not read,
             * still opens (commands that need text say so); a broken one of
             * the kind it reads is an error. */
            const char *tm;
            uint64_t tl;
            if (gguf_get_str(m->src, "tokenizer.ggml.model", &tm, &tl) == 0 && tl == 5 &&
                memcmp(tm, "llama", 5) == 0)
                goto fail;
            err_clear();
        }
    }
    if (m->tok && m->tok->n_vocab > m->cfg.vocab) {
        err_set("%s: tokenizer has %d tokens but the model only %d", m->tok->source,
                m->tok->n_vocab, m->cfg.vocab);
        goto fail;
    }
    return m;
fail:
    model_close(m);
    return NULL;
}

void model_close(model_t *m) {
    if (!m) return;
    tok_free(m->tok);
    free(m->layers);
    ttab_free(&m->tensors);
    if (m->src_close) m->src_close(m->src);
    for (int i = 0; i < m->n_files; i++)
        mfile_close(m->files[i]);
    free(m->files);
    free(m->owned);
    free(m->path);
    free(m);
}

static int64_t nel(const tensor_t *t) { return t ? tensor_nelem(t) : 0; }
static int64_t lin_nel(const lin_t *l) { return nel(l->w) + nel(l->b); }

void model_param_counts(const model_t *m, mparams_t *p) {
    memset(p, 0, sizeof *p);
    p->embed = nel(m->tok_embd) + nel(m->pos_embd);
    p->norm = nel(m->out_norm_w) + nel(m->out_norm_b);
    p->head = m->tied ? 0 : lin_nel(&m->lm_head);
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const mlayer_t *L = &m->layers[l];
        p->attn +=
            lin_nel(&L->q) + lin_nel(&L->k) + lin_nel(&L->v) + lin_nel(&L->qkv) + lin_nel(&L->o);
        p->ffn += lin_nel(&L->gate) + lin_nel(&L->up) + lin_nel(&L->down);
        p->norm +=
            nel(L->attn_norm_w) + nel(L->attn_norm_b) + nel(L->ffn_norm_w) + nel(L->ffn_norm_b);
    }
    p->total = p->embed + p->attn + p->ffn + p->norm + p->head;
}
