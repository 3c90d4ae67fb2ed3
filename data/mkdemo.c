/* mkdemo: builds probe's demo model — a GPT-2-architecture checkpoint whose
 * feed-forward neurons are, by construction, key-value memories for the
 * facts in data/facts.csv (Geva et al. 2021, made literal).
 *
 *   mkdemo [--facts data/facts.csv] [--out data/demo-model]
 *
 * writes a complete Hugging Face folder: config.json (model_type gpt2,
 * 16 layers), model.safetensors (GPT2LMHeadModel tensor names, Conv1D
 * weights stored (in, out), float32), tokenizer.json (a WordLevel vocabulary
 * of the words in the facts, WhitespaceSplit pre-tokenizer),
 * tokenizer_config.json, and the ground truth: ground_truth.csv
 * (fact_id,layer,neuron,subject,relation,object), keys.csv (the words each
 * planted key matches), prompts.csv (fact_id,prompt,object) and a model card
 * README.md.  Everything is deterministic: the same facts give the same bytes.
 *
 * The construction (data/README.md has the derivation and the margins):
 *   - one residual coordinate per token; wte[w] = e_w - e_bal (zero mean);
 *   - wpe marks position 0 apart from the rest (same norm everywhere);
 *   - layer 0 attention has Q = K = 0, so every position averages the values
 *     of the positions up to it; the values copy the token coordinates, scaled
 *     by -BAG: position t gets -BAG * count(w)/n for each word w of the prefix
 *     (n = t + 1), and an "anchor" ANCHOR/n (the average of a position-0 flag);
 *   - LayerNorm divides by the residual's scale, which the anchor dominates,
 *     so after ln_2 the bag reads count(w) * const: counts, not averages;
 *   - fact f's neuron, in its relation's layer, has key -alpha on the words
 *     common to all of f's prompts (subject + relation words) and bias
 *     -U (|S| - 1/2): pre-activation U * (#key words present - |S| + 1/2),
 *     +U/2 when all are present and <= -U/2 otherwise;
 *   - its value writes VAL on the object's coordinate, read by the tied LM
 *     head; ln_f's bias gives <|endoftext|> a small prior, so a prompt that
 *     no fact matches (or an ablated neuron) predicts end of text.
 * Every vector written to the residual stream sums to zero, so LayerNorm's
 * mean subtraction never mixes coordinates.  All other weights are zero.
 *
 * Limits: the model knows its facts and nothing else — no grammar, no
 * language model; words outside the vocabulary become <unk>. */
#include <csv.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Shape and constants -------------------------------------------------- */

enum {
    N_LAYER = 16,
    N_FF = 64,  /* config n_inner: neurons per layer (max facts in one layer) */
    N_POS = 64, /* n_positions */
    HEAD_DIM = 32,
    POOL = 16,    /* balance coordinates that keep every write zero-sum */
    N_SPECIAL = 2 /* <|endoftext|> = 0, <unk> = 1 */
};
#define LN_EPS 1e-5
#define BAG 1000.0    /* per-word bag magnitude after layer 0 (token embedding = 1) */
#define ANCHOR 1e5    /* anchor / n: dominates every LayerNorm scale from layer 0 on */
#define U 10.0        /* key pre-activation per matched key word */
#define VAL 2e4       /* value: written on the object's coordinate per unit of m */
#define EOS_PRIOR 8.0 /* ln_f bias on <|endoftext|>: the prediction when nothing fires */
#define OBJ_LOGIT                                                                                  \
    20.0                     /* ln_f gain * sqrt(d): a recalled object's logit is ~ this times     \
                                its share of the final residual's norm, whatever d is */
#define SEED 0x70726f6265ULL /* "probe": chooses the planted neuron indices */

/* Relations the model knows, and the layer that stores each. */
static const struct {
    const char *name;
    int layer;
} RELATIONS[] = {
    {"country_currency", 2}, {"city_river", 3},  {"country_capital", 4}, {"city_country", 6},
    {"country_language", 8}, {"company_hq", 10}, {"landmark_city", 12},  {"element_symbol", 14},
};
#define N_REL ((int)(sizeof RELATIONS / sizeof *RELATIONS))

/* ---- Errors (this is a program: messages go to stderr, main picks the exit code) */

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("mkdemo: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fail("out of memory (%zu x %zu bytes)", n, size);
        exit(1);
    }
    return p;
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fail("out of memory (%zu bytes)", n);
        exit(1);
    }
    return q;
}

static char *xstrndup(const char *s, size_t n) {
    char *d = xcalloc(n + 1, 1);
    memcpy(d, s, n);
    return d;
}

/* ---- Vocabulary ------------------------------------------------------------ */

typedef struct {
    char **w; /* (n) owned words; id = index */
    int n, cap;
} vocab_t;

static int vocab_find(const vocab_t *v, const char *s, size_t len) {
    for (int i = 0; i < v->n; i++)
        if (strlen(v->w[i]) == len && !memcmp(v->w[i], s, len)) return i;
    return -1;
}

static int vocab_add(vocab_t *v, const char *s, size_t len) {
    int id = vocab_find(v, s, len);
    if (id >= 0) return id;
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 256;
        v->w = xrealloc(v->w, (size_t)v->cap * sizeof *v->w);
    }
    v->w[v->n] = xstrndup(s, len);
    return v->n++;
}

/* ---- Facts ------------------------------------------------------------------ */

typedef struct {
    int n, *id; /* (n) token ids of one prompt */
    char *text;
} prompt_t;

typedef struct {
    char *relation, *subject, *object;
    int line; /* in facts.csv, for messages */
    int layer, neuron, obj;
    prompt_t *p; /* (n_p) */
    int n_p;
    int *key, n_key; /* token ids the key matches: words common to all prompts */
} fact_t;

typedef struct {
    fact_t *f;
    int n, cap;
    /* CSV parsing state */
    char *field[8];
    int n_field, row, bad;
    const char *path;
} facts_t;

/* Frees what F owns; F may be half built (zeroed fields are skipped). */
static void fact_free(fact_t *f) {
    free(f->relation);
    free(f->subject);
    free(f->object);
    for (int q = 0; q < f->n_p; q++) {
        free(f->p[q].text);
        free(f->p[q].id);
    }
    free(f->p);
    free(f->key);
    memset(f, 0, sizeof *f);
}

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Splits TEXT at whitespace into token ids (adding words to V). */
static void prompt_parse(prompt_t *p, const char *text, vocab_t *v) {
    p->text = xstrndup(text, strlen(text));
    p->n = 0;
    p->id = NULL;
    int cap = 0;
    for (const char *s = text; *s;) {
        while (*s && is_space(*s))
            s++;
        const char *e = s;
        while (*e && !is_space(*e))
            e++;
        if (e > s) {
            if (p->n == cap) {
                cap = cap ? 2 * cap : 16;
                p->id = xrealloc(p->id, (size_t)cap * sizeof *p->id);
            }
            p->id[p->n++] = vocab_add(v, s, (size_t)(e - s));
        }
        s = e;
    }
}

static vocab_t g_vocab;

static void on_field(void *s, size_t len, void *data) {
    facts_t *F = data;
    if (F->n_field < 8) F->field[F->n_field] = xstrndup(s ? s : "", s ? len : 0);
    F->n_field++;
}

static void on_row(int c, void *data) {
    (void)c;
    facts_t *F = data;
    int line = ++F->row;
    int nf = F->n_field;
    F->n_field = 0;
    if (F->bad) goto done;
    if (line == 1) {
        static const char *want[] = {"relation", "subject", "object", "prompts"};
        for (int i = 0; i < 4; i++)
            if (nf != 4 || !F->field[i] || strcmp(F->field[i], want[i])) {
                F->bad = fail("%s: line 1: expected the header relation,subject,object,prompts",
                              F->path);
                goto done;
            }
        goto done;
    }
    if (nf != 4) {
        F->bad = fail("%s: record %d has %d fields, expected 4 (relation,subject,object,prompts)",
                      F->path, line, nf);
        goto done;
    }
    if (F->n == F->cap) {
        F->cap = F->cap ? 2 * F->cap : 256;
        F->f = xrealloc(F->f, (size_t)F->cap * sizeof *F->f);
    }
    fact_t *f = &F->f[F->n];
    memset(f, 0, sizeof *f);
    f->relation = F->field[0];
    f->subject = F->field[1];
    f->object = F->field[2];
    f->line = line;
    F->field[0] = F->field[1] = F->field[2] = NULL;
    f->layer = -1;
    for (int r = 0; r < N_REL; r++)
        if (!strcmp(f->relation, RELATIONS[r].name)) f->layer = RELATIONS[r].layer;
    if (f->layer < 0) {
        char known[512] = "";
        for (int r = 0; r < N_REL; r++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", r ? ", " : "",
                     RELATIONS[r].name);
        F->bad = fail("%s: record %d: relation '%s' is not one the generator knows (%s)", F->path,
                      line, f->relation, known);
        goto drop;
    }
    size_t ol = strlen(f->object);
    for (size_t i = 0; i < ol; i++)
        if (is_space(f->object[i])) ol = 0;
    if (!ol || !strcmp(f->object, "<unk>") || !strcmp(f->object, "<|endoftext|>")) {
        F->bad = fail("%s: record %d: object '%s' must be one word (it becomes one token)", F->path,
                      line, f->object);
        goto drop;
    }
    /* Prompts: '|'-separated. */
    const char *ps = F->field[3];
    for (const char *s = ps;;) {
        const char *e = strchr(s, '|');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        char *t = xstrndup(s, n);
        f->p = xrealloc(f->p, (size_t)(f->n_p + 1) * sizeof *f->p);
        prompt_parse(&f->p[f->n_p], t, &g_vocab);
        free(t);
        f->n_p++; /* owned from here, checked below */
        const prompt_t *pp = &f->p[f->n_p - 1];
        if (pp->n == 0) {
            F->bad = fail("%s: record %d: empty prompt in '%s'", F->path, line, ps);
            goto drop;
        }
        if (pp->n >= N_POS) {
            F->bad = fail("%s: record %d: prompt '%s' has %d words; the model has %d positions",
                          F->path, line, pp->text, pp->n, N_POS);
            goto drop;
        }
        if (!e) break;
        s = e + 1;
    }
    f->obj = vocab_add(&g_vocab, f->object, strlen(f->object));
    F->n++;
    goto done;
drop: /* the record's fact is not kept */
    fact_free(f);
done:
    for (int i = 0; i < 8; i++) {
        free(F->field[i]);
        F->field[i] = NULL;
    }
}

/* Frees the facts (main's clean exit: LeakSanitizer builds check it). */
static void facts_free(facts_t *F) {
    for (int i = 0; i < F->n; i++) {
        fact_t *f = &F->f[i];
        free(f->relation);
        free(f->subject);
        free(f->object);
        for (int j = 0; j < f->n_p; j++) {
            free(f->p[j].text);
            free(f->p[j].id);
        }
        free(f->p);
        free(f->key);
    }
    free(F->f);
}

static int facts_read(facts_t *F, const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return fail("%s: %s", path, strerror(errno));
    struct csv_parser p;
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL | CSV_EMPTY_IS_NULL) != 0) {
        fclose(fp);
        return fail("csv_init failed");
    }
    F->path = path;
    char buf[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0) {
        if (csv_parse(&p, buf, n, on_field, on_row, F) != n) {
            rc = fail("%s: CSV error near record %d: %s", path, F->row + 1,
                      csv_strerror(csv_error(&p)));
            break;
        }
    }
    if (!rc && ferror(fp)) rc = fail("%s: read error", path);
    if (!rc && csv_fini(&p, on_field, on_row, F) != 0)
        rc = fail("%s: CSV error at the end: %s", path, csv_strerror(csv_error(&p)));
    csv_free(&p);
    fclose(fp);
    for (int i = 0; i < 8; i++) { /* a record cut short by a CSV error */
        free(F->field[i]);
        F->field[i] = NULL;
    }
    if (!rc && F->bad) rc = -1;
    if (!rc && F->n == 0) rc = fail("%s: no facts", path);
    return rc;
}

/* Occurrences of token W in prompt P. */
static int count_in(const prompt_t *p, int w) {
    int c = 0;
    for (int i = 0; i < p->n; i++)
        c += p->id[i] == w;
    return c;
}

/* Key words of every fact: the distinct words common to all its prompts (its
 * subject and relation words).  Then the check the construction rests on: a
 * fact's key words all occur in its own prompts, and in every other prompt
 * they occur (with repeats) at most |S| - 1 times, so no other neuron fires. */
static int facts_keys(facts_t *F) {
    for (int i = 0; i < F->n; i++) {
        fact_t *f = &F->f[i];
        f->key = xcalloc((size_t)f->p[0].n, sizeof *f->key);
        for (int k = 0; k < f->p[0].n; k++) {
            int w = f->p[0].id[k], dup = 0, all = 1;
            for (int j = 0; j < f->n_key; j++)
                dup |= f->key[j] == w;
            for (int q = 1; q < f->n_p; q++)
                all &= count_in(&f->p[q], w) > 0;
            if (!dup && all) f->key[f->n_key++] = w;
        }
    }
    int bad = 0;
    for (int i = 0; i < F->n; i++) {
        const fact_t *f = &F->f[i];
        for (int j = 0; j < F->n; j++) {
            if (j == i) continue;
            const fact_t *g = &F->f[j];
            for (int q = 0; q < g->n_p; q++) {
                int c = 0;
                for (int k = 0; k < f->n_key; k++)
                    c += count_in(&g->p[q], f->key[k]);
                if (c >= f->n_key && bad++ < 10)
                    fail("%s: records %d and %d: the prompt '%s' (-> %s) contains every key "
                         "word of record %d (-> %s); reword one of them",
                         F->path, f->line, g->line, g->p[q].text, g->object, f->line, f->object);
            }
        }
    }
    return bad ? -1 : 0;
}

/* ---- Deterministic neuron placement -------------------------------------- */

static uint64_t rng_state = SEED;
static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int facts_place(facts_t *F) {
    for (int l = 0; l < N_LAYER; l++) {
        int perm[N_FF];
        for (int i = 0; i < N_FF; i++)
            perm[i] = i;
        for (int i = N_FF - 1; i > 0; i--) {
            int j = (int)(rng_next() % (uint64_t)(i + 1));
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        int k = 0;
        for (int i = 0; i < F->n; i++) {
            if (F->f[i].layer != l) continue;
            if (k == N_FF)
                return fail("more than %d facts at layer %d (n_inner); raise N_FF", N_FF, l);
            F->f[i].neuron = perm[k++];
        }
    }
    return 0;
}

/* ---- Tensors ------------------------------------------------------------------ */

typedef struct {
    char name[64];
    int rank;
    int64_t shape[2];
    size_t off; /* in floats from the start of the data section */
} tdesc_t;

typedef struct {
    tdesc_t t[16 * N_LAYER + 8];
    int n;
    size_t total; /* floats */
    float *data;
} tset_t;

static float *T(tset_t *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name)) return s->data + s->t[i].off;
    fail("internal: no tensor %s", name);
    exit(1);
}

static void tdecl(tset_t *s, const char *name, int64_t a, int64_t b) {
    tdesc_t *t = &s->t[s->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rank = b ? 2 : 1;
    t->shape[0] = a;
    t->shape[1] = b;
    t->off = s->total;
    s->total += (size_t)a * (size_t)(b ? b : 1);
}

/* Residual coordinates: tokens 0..V-1, then these. */
typedef struct {
    int V, d;
    int bal;    /* embedding balance: wte[w] = e_w - e_bal */
    int m1, m2; /* position-0 flag (+1, -1) */
    int r1, r2; /* positions > 0 (+1, -1): same norm as the flag */
    int a1, a2; /* anchor written by layer 0 */
    int pool;   /* POOL balance coordinates from here */
} layout_t;

typedef struct {
    double sigma0, alpha, key_bias_unit;
} derived_t;

static void build(tset_t *s, const facts_t *F, const layout_t *L, derived_t *D) {
    int d = L->d, V = L->V;
    char nm[64];
    tdecl(s, "transformer.wte.weight", V, d);
    tdecl(s, "transformer.wpe.weight", N_POS, d);
    for (int l = 0; l < N_LAYER; l++) {
#define DECL(suffix, a, b)                                                                         \
    snprintf(nm, sizeof nm, "transformer.h.%d." suffix, l), tdecl(s, nm, a, b)
        DECL("ln_1.weight", d, 0);
        DECL("ln_1.bias", d, 0);
        DECL("attn.c_attn.weight", d, 3 * d);
        DECL("attn.c_attn.bias", 3 * d, 0);
        DECL("attn.c_proj.weight", d, d);
        DECL("attn.c_proj.bias", d, 0);
        DECL("ln_2.weight", d, 0);
        DECL("ln_2.bias", d, 0);
        DECL("mlp.c_fc.weight", d, N_FF);
        DECL("mlp.c_fc.bias", N_FF, 0);
        DECL("mlp.c_proj.weight", N_FF, d);
        DECL("mlp.c_proj.bias", d, 0);
#undef DECL
    }
    tdecl(s, "transformer.ln_f.weight", d, 0);
    tdecl(s, "transformer.ln_f.bias", d, 0);
    s->data = xcalloc(s->total, sizeof(float));

    /* Embeddings: one coordinate per token, balanced to zero mean. */
    float *wte = T(s, "transformer.wte.weight"); /* (V, d) */
    for (int w = 0; w < V; w++) {
        wte[(size_t)w * d + w] = 1.0f;
        wte[(size_t)w * d + L->bal] = -1.0f;
    }
    float *wpe = T(s, "transformer.wpe.weight"); /* (N_POS, d) */
    for (int t = 0; t < N_POS; t++) {
        wpe[(size_t)t * d + (t ? L->r1 : L->m1)] = 1.0f;
        wpe[(size_t)t * d + (t ? L->r2 : L->m2)] = -1.0f;
    }
    /* Every layer's norms: gain 1, bias 0. */
    for (int l = 0; l < N_LAYER; l++) {
        snprintf(nm, sizeof nm, "transformer.h.%d.ln_1.weight", l);
        for (int i = 0; i < d; i++)
            T(s, nm)[i] = 1.0f;
        snprintf(nm, sizeof nm, "transformer.h.%d.ln_2.weight", l);
        for (int i = 0; i < d; i++)
            T(s, nm)[i] = 1.0f;
    }
    float *lnfw = T(s, "transformer.ln_f.weight"), *lnfb = T(s, "transformer.ln_f.bias");
    for (int i = 0; i < d; i++)
        lnfw[i] = (float)(OBJ_LOGIT / sqrt((double)d));
    lnfb[0] = (float)EOS_PRIOR; /* token 0 is <|endoftext|> */

    /* Layer 0 attention.  Every input row has squared norm 4 and mean 0
     * (token +1/-1, position +1/-1), so ln_1 divides by sigma0 everywhere. */
    D->sigma0 = sqrt(4.0 / d + LN_EPS);
    float *qkv = T(s, "transformer.h.0.attn.c_attn.weight"); /* (d, 3d): [Q | K | V] */
    float *o = T(s, "transformer.h.0.attn.c_proj.weight");   /* (d, d) */
    for (int w = 0; w < V; w++)
        qkv[(size_t)w * 3 * d + 2 * d + w] = 1.0f;
    qkv[(size_t)L->m1 * 3 * d + 2 * d + L->a1] = 1.0f;
    double bw = BAG * D->sigma0, aw = ANCHOR * D->sigma0;
    for (int w = 0; w < V; w++) {
        o[(size_t)w * d + w] = (float)-bw;
        for (int k = 0; k < POOL; k++)
            o[(size_t)w * d + L->pool + k] = (float)(bw / POOL);
    }
    o[(size_t)L->a1 * d + L->a1] = (float)aw;
    o[(size_t)L->a1 * d + L->a2] = (float)-aw;

    /* The planted neurons.  At the last position of an n-token prompt the
     * residual is ~ ANCHOR/n (a1, -a2) + BAG*count/n (negative, per word), so
     * ln_2's scale is sqrt(2)*ANCHOR/(n sqrt(d)) and a word's normalised bag
     * entry is -BAG*count*sqrt(d)/(sqrt(2)*ANCHOR), independent of n. */
    D->alpha = U * sqrt(2.0) * ANCHOR / (BAG * sqrt((double)d));
    D->key_bias_unit = U;
    for (int i = 0; i < F->n; i++) {
        const fact_t *f = &F->f[i];
        snprintf(nm, sizeof nm, "transformer.h.%d.mlp.c_fc.weight", f->layer);
        float *fc = T(s, nm); /* (d, N_FF) */
        snprintf(nm, sizeof nm, "transformer.h.%d.mlp.c_fc.bias", f->layer);
        float *fb = T(s, nm);
        snprintf(nm, sizeof nm, "transformer.h.%d.mlp.c_proj.weight", f->layer);
        float *pr = T(s, nm); /* (N_FF, d) */
        for (int k = 0; k < f->n_key; k++)
            fc[(size_t)f->key[k] * N_FF + f->neuron] = (float)-D->alpha;
        fb[f->neuron] = (float)(-U * (f->n_key - 0.5));
        pr[(size_t)f->neuron * d + f->obj] = (float)VAL;
        for (int k = 0; k < POOL; k++)
            pr[(size_t)f->neuron * d + L->pool + k] = (float)(-VAL / POOL);
    }
}

/* ---- Writers ---------------------------------------------------------------- */

/* Files are written to DIR/.NAME.tmp.PID and renamed into place. */
typedef struct {
    FILE *fp;
    char tmp[4200], dst[4200];
} out_t;

static int out_open(out_t *o, const char *dir, const char *name) {
    snprintf(o->dst, sizeof o->dst, "%s/%s", dir, name);
    snprintf(o->tmp, sizeof o->tmp, "%s/.%s.tmp.%ld", dir, name, (long)getpid());
    o->fp = fopen(o->tmp, "wb");
    if (!o->fp) return fail("%s: %s", o->tmp, strerror(errno));
    return 0;
}

static int out_close(out_t *o) {
    int bad = ferror(o->fp);
    if (fclose(o->fp) != 0) bad = 1;
    if (bad) {
        unlink(o->tmp);
        return fail("%s: write error", o->tmp);
    }
    if (rename(o->tmp, o->dst) != 0) {
        unlink(o->tmp);
        return fail("%s: %s", o->dst, strerror(errno));
    }
    return 0;
}

static int write_json(const char *dir, const char *name, json_t *j) {
    out_t o;
    if (!j) return fail("out of memory building %s", name);
    if (out_open(&o, dir, name)) return json_decref(j), -1;
    int rc = json_dumpf(j, o.fp, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(9));
    fputc('\n', o.fp);
    json_decref(j);
    if (rc) fail("%s: JSON write failed", o.tmp);
    return out_close(&o) || rc ? -1 : 0;
}

static int write_safetensors(const char *dir, const tset_t *s) {
    json_t *h = json_object();
    json_object_set_new(h, "__metadata__",
                        json_pack("{s:s, s:s}", "format", "pt", "source",
                                  "probe data/mkdemo: planted-knowledge demo model"));
    for (int i = 0; i < s->n; i++) {
        const tdesc_t *t = &s->t[i];
        json_t *shape = t->rank == 2
                            ? json_pack("[I, I]", (json_int_t)t->shape[0], (json_int_t)t->shape[1])
                            : json_pack("[I]", (json_int_t)t->shape[0]);
        size_t nb = (size_t)t->shape[0] * (size_t)(t->rank == 2 ? t->shape[1] : 1) * 4;
        json_object_set_new(h, t->name,
                            json_pack("{s:s, s:o, s:[I, I]}", "dtype", "F32", "shape", shape,
                                      "data_offsets", (json_int_t)(t->off * 4),
                                      (json_int_t)(t->off * 4 + nb)));
    }
    char *js = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    if (!js) return fail("out of memory building the safetensors header");
    size_t n = strlen(js), padded = (n + 7) / 8 * 8; /* data 8-byte aligned */
    out_t o;
    if (out_open(&o, dir, "model.safetensors")) return free(js), -1;
    uint64_t hl = padded;
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(hl >> (8 * i));
    fwrite(le, 1, 8, o.fp);
    fwrite(js, 1, n, o.fp);
    for (size_t i = n; i < padded; i++)
        fputc(' ', o.fp);
    free(js);
    /* float32 little-endian: the host's layout on every machine probe builds on. */
    const uint16_t probe_le = 1;
    if (*(const unsigned char *)&probe_le != 1) {
        fclose(o.fp);
        unlink(o.tmp);
        return fail("big-endian hosts are not supported");
    }
    fwrite(s->data, sizeof(float), s->total, o.fp);
    return out_close(&o);
}

static void csv_field(FILE *fp, int first, const char *s) {
    if (!first) fputc(',', fp);
    csv_fwrite(fp, s, strlen(s));
}

static void csv_int(FILE *fp, int first, long v) {
    if (!first) fputc(',', fp);
    fprintf(fp, "%ld", v);
}

static int write_csvs(const char *dir, const facts_t *F, const vocab_t *v) {
    out_t o;
    if (out_open(&o, dir, "ground_truth.csv")) return -1;
    fputs("fact_id,layer,neuron,subject,relation,object\n", o.fp);
    for (int i = 0; i < F->n; i++) {
        const fact_t *f = &F->f[i];
        csv_int(o.fp, 1, i);
        csv_int(o.fp, 0, f->layer);
        csv_int(o.fp, 0, f->neuron);
        csv_field(o.fp, 0, f->subject);
        csv_field(o.fp, 0, f->relation);
        csv_field(o.fp, 0, f->object);
        fputc('\n', o.fp);
    }
    if (out_close(&o)) return -1;

    if (out_open(&o, dir, "keys.csv")) return -1;
    fputs("fact_id,layer,neuron,key_words,bias\n", o.fp);
    for (int i = 0; i < F->n; i++) {
        const fact_t *f = &F->f[i];
        char kw[1024] = "";
        for (int k = 0; k < f->n_key; k++)
            snprintf(kw + strlen(kw), sizeof kw - strlen(kw), "%s%s", k ? " " : "",
                     v->w[f->key[k]]);
        csv_int(o.fp, 1, i);
        csv_int(o.fp, 0, f->layer);
        csv_int(o.fp, 0, f->neuron);
        csv_field(o.fp, 0, kw);
        fprintf(o.fp, ",%g\n", -U * (f->n_key - 0.5));
    }
    if (out_close(&o)) return -1;

    if (out_open(&o, dir, "prompts.csv")) return -1;
    fputs("fact_id,prompt,object\n", o.fp);
    for (int i = 0; i < F->n; i++)
        for (int q = 0; q < F->f[i].n_p; q++) {
            csv_int(o.fp, 1, i);
            csv_field(o.fp, 0, F->f[i].p[q].text);
            csv_field(o.fp, 0, F->f[i].object);
            fputc('\n', o.fp);
        }
    return out_close(&o);
}

static json_t *added_token(int id, const char *content, int special) {
    return json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", content,
                     "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special",
                     special);
}

static int write_tokenizer(const char *dir, const vocab_t *v) {
    /* <unk> is an ordinary vocabulary word (WordLevel's unk_token), not an
     * added token, so decoded text shows " <unk>" where unknown words were. */
    json_t *vocab = json_object();
    for (int i = 0; i < v->n; i++)
        json_object_set_new(vocab, v->w[i], json_integer(i));
    json_t *tok = json_pack("{s:s, s:n, s:n, s:[o], s:n, s:{s:s}, s:n, s:n, s:{s:s, s:o, s:s}}",
                            "version", "1.0", "truncation", "padding", "added_tokens",
                            added_token(0, "<|endoftext|>", 1), "normalizer", "pre_tokenizer",
                            "type", "WhitespaceSplit", "post_processor", "decoder", "model", "type",
                            "WordLevel", "vocab", vocab, "unk_token", "<unk>");
    if (write_json(dir, "tokenizer.json", tok)) return -1;
    json_t *cfg =
        json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:i, s:b}", "tokenizer_class",
                  "PreTrainedTokenizerFast", "bos_token", "<|endoftext|>", "eos_token",
                  "<|endoftext|>", "unk_token", "<unk>", "add_bos_token", 0, "add_eos_token", 0,
                  "model_max_length", N_POS, "clean_up_tokenization_spaces", 0);
    return write_json(dir, "tokenizer_config.json", cfg);
}

static int write_config(const char *dir, const layout_t *L) {
    json_t *c = json_pack(
        "{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:f, s:f, s:f, s:f, s:f, s:i, s:i, s:b, "
        "s:b, s:b, s:s}",
        "architectures", "GPT2LMHeadModel", "model_type", "gpt2", "vocab_size", L->V, "n_positions",
        N_POS, "n_embd", L->d, "n_layer", N_LAYER, "n_head", L->d / HEAD_DIM, "n_inner", N_FF,
        "activation_function", "gelu_new", "layer_norm_epsilon", LN_EPS, "resid_pdrop", 0.0,
        "embd_pdrop", 0.0, "attn_pdrop", 0.0, "initializer_range", 0.02, "bos_token_id", 0,
        "eos_token_id", 0, "tie_word_embeddings", 1, "scale_attn_weights", 1, "use_cache", 1,
        "torch_dtype", "float32");
    if (!c) return fail("out of memory building config.json");
    json_object_set_new(c, "probe_demo",
                        json_string("planted-knowledge demo model built by probe's data/mkdemo "
                                    "from data/facts.csv; see data/README.md. It knows its facts "
                                    "and nothing else."));
    return write_json(dir, "config.json", c);
}

static int write_card(const char *dir, const facts_t *F, const layout_t *L, const vocab_t *v) {
    out_t o;
    if (out_open(&o, dir, "README.md")) return -1;
    FILE *fp = o.fp;
    int eiffel = -1;
    for (int i = 0; i < F->n; i++)
        if (!strcmp(F->f[i].subject, "Eiffel Tower")) eiffel = i;
    fprintf(fp,
            "# probe demo model (generated — do not edit)\n\n"
            "Built by `build/mkdemo` from `data/facts.csv`; the construction is explained in\n"
            "`data/README.md`. A GPT-2-architecture model (%d layers, d_model %d, %d heads,\n"
            "n_inner %d, %d positions, a %d-word WordLevel vocabulary) whose feed-forward\n"
            "neurons are planted key-value memories for %d facts. It completes the prompts in\n"
            "`prompts.csv` and nothing else: it has no language ability beyond its facts.\n\n",
            N_LAYER, L->d, L->d / HEAD_DIM, N_FF, N_POS, v->n, F->n);
    if (eiffel >= 0)
        fprintf(fp,
                "Try: `probe trace --model data/demo-model --prompt \"%s\" --target \" %s\"` "
                "(neuron %d:%d).\n\n",
                F->f[eiffel].p[0].text, F->f[eiffel].object, F->f[eiffel].layer,
                F->f[eiffel].neuron);
    fprintf(fp, "| relation | layer | facts |\n| --- | --- | --- |\n");
    for (int r = 0; r < N_REL; r++) {
        int n = 0;
        for (int i = 0; i < F->n; i++)
            n += !strcmp(F->f[i].relation, RELATIONS[r].name);
        fprintf(fp, "| %s | %d | %d |\n", RELATIONS[r].name, RELATIONS[r].layer, n);
    }
    fprintf(fp, "\nFiles: `ground_truth.csv` (fact_id,layer,neuron,subject,relation,object), "
                "`keys.csv` (the words each key matches), `prompts.csv` (every prompt and its "
                "object).\n");
    return out_close(&o);
}

/* ---- Main --------------------------------------------------------------------- */

static void usage(FILE *fp) {
    fprintf(fp, "usage: mkdemo [--facts PATH] [--out DIR | --where SUBJECT]\n"
                "\n"
                "Builds the demo model: a GPT-2 Hugging Face folder whose FFN neurons are planted\n"
                "key-value memories for the facts in PATH (see data/README.md).\n"
                "\n"
                "  --facts PATH  facts table, CSV relation,subject,object,prompts with prompts\n"
                "                separated by '|' (default data/facts.csv)\n"
                "  --out DIR     output folder, created if missing (default data/demo-model)\n"
                "  --where SUBJECT  write nothing; print LAYER:NEURON of each fact about SUBJECT,\n"
                "                one a line (the placement the model built from PATH has)\n"
                "\n"
                "example: build/mkdemo --facts data/facts.csv --out data/demo-model\n");
}

int main(int argc, char **argv) {
    const char *facts_path = "data/facts.csv", *out = "data/demo-model", *where = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--facts") && i + 1 < argc) {
            facts_path = argv[++i];
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(argv[i], "--where") && i + 1 < argc) {
            where = argv[++i];
        } else {
            fprintf(stderr, "mkdemo: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    vocab_add(&g_vocab, "<|endoftext|>", 13);
    vocab_add(&g_vocab, "<unk>", 5);
    facts_t F = {0};
    if (facts_read(&F, facts_path) || facts_keys(&F) || facts_place(&F)) {
        facts_free(&F);
        return 1;
    }
    if (where) {
        int found = 0;
        for (int i = 0; i < F.n; i++)
            if (!strcmp(F.f[i].subject, where)) {
                printf("%d:%d\n", F.f[i].layer, F.f[i].neuron);
                found++;
            }
        if (!found) fail("%s: no fact has the subject '%s'", facts_path, where);
        facts_free(&F);
        return found ? 0 : 1;
    }

    layout_t L = {0};
    L.V = g_vocab.n;
    L.bal = L.V;
    L.m1 = L.V + 1, L.m2 = L.V + 2, L.r1 = L.V + 3, L.r2 = L.V + 4;
    L.a1 = L.V + 5, L.a2 = L.V + 6, L.pool = L.V + 7;
    L.d = (L.pool + POOL + HEAD_DIM - 1) / HEAD_DIM * HEAD_DIM;

    tset_t *s = xcalloc(1, sizeof *s);
    derived_t D;
    build(s, &F, &L, &D);

    int rc = 0;
    if (mkdir(out, 0777) != 0 && errno != EEXIST) rc = fail("%s: %s", out, strerror(errno));
    /* model.safetensors last: make uses it as the folder's timestamp. */
    if (!rc &&
        (write_config(out, &L) || write_tokenizer(out, &g_vocab) || write_csvs(out, &F, &g_vocab) ||
         write_card(out, &F, &L, &g_vocab) || write_safetensors(out, s)))
        rc = -1;
    if (rc) {
        free(s->data);
        free(s);
        facts_free(&F);
        return 1;
    }
    fprintf(stderr,
            "mkdemo: %d facts, %d words -> %s (gpt2, %d layers, d_model %d, n_inner %d, "
            "%.1f MB of float32)\n",
            F.n, g_vocab.n, out, N_LAYER, L.d, N_FF, (double)s->total * 4 / 1e6);
    free(s->data);
    free(s);
    facts_free(&F);
    return 0;
}
