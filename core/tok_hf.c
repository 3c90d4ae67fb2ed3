/* tok_hf: Hugging Face tokenizer files — tokenizer.json, or GPT-2's
 * vocab.json + merges.txt — for the merge-rank kinds of tok.h
 * (TOK_BPE_BYTES, TOK_BPE_SPM, TOK_WORDLEVEL).
 *
 * Encoding follows the Hugging Face `tokenizers` library step by step
 * (tokenizer/added_vocabulary.rs, normalizers/, pre_tokenizers/, models/bpe):
 *   1. cut the text at added tokens whose "normalized" is false;
 *   2. normalize each remaining piece on its own (Prepend, Replace, ...);
 *   3. cut at added tokens whose "normalized" is true — their patterns are
 *      their content put through the same normalizer (Llama 2's "<s>" is
 *      matched as "▁<s>");
 *   4. pre-tokenize (ByteLevel, Metaspace, Split by regex, Whitespace, ...);
 *   5. per word: BPE by merge rank, lowest rank first and leftmost on ties,
 *      with <0xNN> byte fallback or <unk> for characters not in the
 *      vocabulary; or a WordLevel lookup.
 * Special added tokens are matched in steps 1 and 3 only with TOK_SPECIAL;
 * without it their text is ordinary text (tiktoken's encode_ordinary).
 * Non-special added tokens are always matched, as Hugging Face does.
 *
 * Metaspace prepend_scheme "first" (pre_tokenizers/metaspace.rs): spaces
 * become "▁", then "▁" is prepended only to the piece that starts at offset
 * 0 of the original text, and only if it does not already start with "▁" —
 * so " Hello" gets no second "▁", unlike SentencePiece's dummy prefix.
 *
 * Pieces (decoded bytes): byte-level characters mapped back to bytes;
 * "▁" -> space and <0xNN> -> byte for SentencePiece-style vocabularies;
 * added tokens decode to their content.  WordLevel tokens decode to the word
 * with a leading space, and add_dummy_prefix drops the first one, so that
 * concatenating pieces joins words with single spaces as HF's default
 * decoder does.
 *
 * Limits: normalizers Sequence, Prepend, Replace, Strip, and NFC only for
 * text below U+0300 (where NFC changes nothing; other text is an error);
 * pre-tokenizers ByteLevel, Metaspace, Split, Sequence, Whitespace,
 * WhitespaceSplit, Digits; models BPE and WordLevel.  Added tokens' lstrip
 * and rstrip absorb ASCII whitespace; single_word is ignored.  BPE dropout,
 * continuing_subword_prefix and end_of_word_suffix are refused. */
#include "bytelevel.h"
#include "err.h"
#include "mfile.h"
#include "rx.h"
#include "tok.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define META "\xE2\x96\x81" /* U+2581 "▁", SentencePiece's space */
#define JSON_MAX_BYTES ((size_t)512 << 20)
#define VOCAB_MAX (1 << 24)

static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ---- kind-specific state ------------------------------------------------ */

typedef enum { NORM_PREPEND, NORM_REPLACE, NORM_NFC } normk_t;
typedef struct {
    normk_t kind;
    char *text; /* Prepend: what to prepend; Replace: the content */
    size_t text_len;
    rx_t *re; /* Replace: the pattern (literal for {"String": ..}) */
} norm_t;

typedef enum { PRE_BYTELEVEL, PRE_METASPACE, PRE_SPLIT } prek_t;
/* Hugging Face's SplitDelimiterBehavior. */
typedef enum {
    SPLIT_REMOVED,
    SPLIT_ISOLATED,
    SPLIT_MERGED_PREV,
    SPLIT_MERGED_NEXT,
    SPLIT_CONTIGUOUS
} splitb_t;
enum { PREPEND_NEVER, PREPEND_FIRST, PREPEND_ALWAYS };
typedef struct {
    prek_t kind;
    rx_t *re;          /* ByteLevel (NULL when use_regex is false), Split */
    splitb_t behavior; /* Split */
    int invert;        /* Split */
    int prefix_space;  /* ByteLevel add_prefix_space */
    char rep[8];       /* Metaspace replacement (UTF-8) */
    int rep_len;
    int prepend; /* Metaspace PREPEND_* */
    int split;   /* Metaspace */
} pre_t;

typedef struct {
    char *text; /* content, normalized when NORMALIZED */
    size_t len;
    int id, special, normalized, lstrip, rstrip;
} added_t;

typedef struct {
    uint64_t key;     /* (left id << 32) | right id */
    int rank, merged; /* merged = -1: empty slot */
} pair_t;

typedef struct {
    norm_t *norm;
    int n_norm;
    pre_t *pre;
    int n_pre;
    added_t *added;
    int n_added;
    int any_normalized_added;
    uint8_t added_first[2][256]; /* [normalized][b]: some added token starts with byte b */
    pair_t *pairs;               /* merges by id pair, open addressing */
    size_t pair_cap;
    int wordlevel, byte_fallback, fuse_unk, ignore_merges;
    int unk; /* the model's unk id, or -1 */
    bytelevel_t bl;
} hf_t;

static void hf_free(void *p) {
    hf_t *h = p;
    if (!h) return;
    for (int i = 0; i < h->n_norm; i++) {
        free(h->norm[i].text);
        rx_free(h->norm[i].re);
    }
    for (int i = 0; i < h->n_pre; i++)
        rx_free(h->pre[i].re);
    for (int i = 0; i < h->n_added; i++)
        free(h->added[i].text);
    free(h->norm);
    free(h->pre);
    free(h->added);
    free(h->pairs);
    free(h);
}

static uint64_t pair_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

static const pair_t *pair_get(const hf_t *h, int a, int b) {
    if (!h->pair_cap) return NULL;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t j = pair_hash(key) & (h->pair_cap - 1);; j = (j + 1) & (h->pair_cap - 1)) {
        if (h->pairs[j].merged < 0) return NULL;
        if (h->pairs[j].key == key) return &h->pairs[j];
    }
}

/* Later merges of the same pair overwrite earlier ones, as HF's map does. */
static void pair_put(hf_t *h, int a, int b, int rank, int merged) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t j = pair_hash(key) & (h->pair_cap - 1);
    while (h->pairs[j].merged >= 0 && h->pairs[j].key != key)
        j = (j + 1) & (h->pair_cap - 1);
    h->pairs[j] = (pair_t){key, rank, merged};
}

static int pairs_alloc(hf_t *h, size_t n_merges) {
    size_t cap = 64;
    while (cap < 2 * n_merges)
        cap *= 2;
    h->pairs = malloc(cap * sizeof *h->pairs);
    if (!h->pairs) return err_set("out of memory");
    for (size_t i = 0; i < cap; i++)
        h->pairs[i].merged = -1;
    h->pair_cap = cap;
    return 0;
}

/* ---- growable buffers ---------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
} buf_t;

static int buf_add(buf_t *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *p = realloc(b->p, nc);
        if (!p) return err_set("out of memory");
        b->p = p;
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

/* A piece of text on its way through the pipeline, or an added token's id. */
typedef struct {
    size_t off, len; /* into the owning segs_t's text */
    int id;          /* added token id, or -1 for text still to encode */
    int first;       /* starts at offset 0 of the original text */
} seg_t;

typedef struct {
    seg_t *a;
    size_t n, cap;
    buf_t text;
} segs_t;

static int segs_push(segs_t *s, const char *text, size_t len, int id, int first) {
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        seg_t *p = realloc(s->a, nc * sizeof *p);
        if (!p) return err_set("out of memory");
        s->a = p;
        s->cap = nc;
    }
    size_t off = s->text.n;
    if (buf_add(&s->text, text, len)) return -1;
    s->a[s->n++] = (seg_t){off, len, id, first};
    return 0;
}

static void segs_reset(segs_t *s) {
    s->n = 0;
    s->text.n = 0;
}

static void segs_free(segs_t *s) {
    free(s->a);
    free(s->text.p);
}

#define SEG_TEXT(s, i) ((s)->text.p + (s)->a[i].off)

/* ---- normalizers --------------------------------------------------------- */

/* Replaces every match of RE in S by TEXT, into OUT. */
static int replace_all(const rx_t *re, const char *text, size_t tlen, const char *s, size_t n,
                       buf_t *out, rx_span_t **sp, size_t *spcap) {
    size_t ns, pos = 0;
    if (rx_find_all(re, s, n, sp, &ns, spcap)) return -1;
    for (size_t i = 0; i < ns; i++) {
        if (buf_add(out, s + pos, (*sp)[i].start - pos) || buf_add(out, text, tlen)) return -1;
        pos = (*sp)[i].end;
    }
    return buf_add(out, s + pos, n - pos);
}

typedef struct {
    segs_t s[2];
    buf_t nb[2];
    rx_span_t *sp;
    size_t spcap;
    /* BPE */
    struct sym *sym;
    size_t sym_cap;
    struct cand *heap;
    size_t heap_n, heap_cap;
    int **out;
    int *n_out;
    size_t *out_cap;
} work_t;

/* Normalizes S (N bytes) through the normalizer chain; *RES points at the
 * result (in W's scratch, or S itself when there are no normalizers). */
static int normalize(const tok_t *t, const hf_t *h, work_t *w, const char *s, size_t n,
                     const char **res, size_t *rlen) {
    int cur = 0;
    *res = s;
    *rlen = n;
    for (int k = 0; k < h->n_norm; k++) {
        const norm_t *nm = &h->norm[k];
        buf_t *out = &w->nb[cur];
        out->n = 0;
        if (nm->kind == NORM_PREPEND) {
            if (*rlen == 0) continue; /* HF prepends to non-empty text only */
            if (buf_add(out, nm->text, nm->text_len) || buf_add(out, *res, *rlen)) return -1;
        } else if (nm->kind == NORM_REPLACE) {
            if (replace_all(nm->re, nm->text, nm->text_len, *res, *rlen, out, &w->sp, &w->spcap))
                return -1;
        } else {
            /* Code points below U+0300 (lead bytes below 0xCC) are never
             * changed by NFC; anything else would need the Unicode tables. */
            for (size_t i = 0; i < *rlen; i++)
                if ((unsigned char)(*res)[i] >= 0xCC)
                    return err_set(
                        "%s: the NFC normalizer is only implemented for text below U+0300 "
                        "(found a character from U+0300 up at byte %zu)",
                        t->source, i);
            continue;
        }
        *res = out->p;
        *rlen = out->n;
        cur ^= 1;
    }
    return 0;
}

/* ---- added tokens ---------------------------------------------------------- */

static int is_ascii_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Cuts every text segment of IN at added tokens of the given NORMALIZED
 * class (leftmost, longest), into OUT. */
static int split_added(const hf_t *h, int normalized, int flags, const segs_t *in, segs_t *out) {
    segs_reset(out);
    for (size_t k = 0; k < in->n; k++) {
        const seg_t *g = &in->a[k];
        const char *s = SEG_TEXT(in, k);
        if (g->id >= 0) {
            if (segs_push(out, "", 0, g->id, 0)) return -1;
            continue;
        }
        size_t start = 0; /* of the pending text */
        for (size_t i = 0; i < g->len;) {
            if (!h->added_first[normalized][(unsigned char)s[i]]) {
                i++;
                continue;
            }
            int best = -1;
            size_t blen = 0;
            for (int a = 0; a < h->n_added; a++) {
                const added_t *ad = &h->added[a];
                if (ad->normalized != normalized || (ad->special && !(flags & TOK_SPECIAL)))
                    continue;
                if (ad->len > blen && ad->len <= g->len - i && ad->text[0] == s[i] &&
                    memcmp(ad->text, s + i, ad->len) == 0) {
                    best = a;
                    blen = ad->len;
                }
            }
            if (best < 0) {
                i++;
                continue;
            }
            const added_t *ad = &h->added[best];
            size_t ms = i, me = i + blen;
            if (ad->lstrip)
                while (ms > start && is_ascii_space(s[ms - 1]))
                    ms--;
            if (ad->rstrip)
                while (me < g->len && is_ascii_space(s[me]))
                    me++;
            if (ms > start && segs_push(out, s + start, ms - start, -1, g->first && start == 0))
                return -1;
            if (segs_push(out, "", 0, ad->id, 0)) return -1;
            start = i = me;
        }
        if (g->len > start && segs_push(out, s + start, g->len - start, -1, g->first && start == 0))
            return -1;
    }
    return 0;
}

/* ---- pre-tokenizers -------------------------------------------------------- */

/* Cuts S at the matches SP[0..NS) following HF's SplitDelimiterBehavior
 * (normalizer.rs split()), pushing the pieces to OUT. */
static int split_by(const char *s, size_t n, const rx_span_t *sp, size_t ns, splitb_t b, int invert,
                    int first, segs_t *out) {
    /* Alternating spans covering [0, n): (start, end, is_match). */
    size_t cap = 2 * ns + 1, m = 0;
    struct span {
        size_t a, b;
        int match;
    } *v = malloc(cap * sizeof *v), *r = NULL;
    if (!v) return err_set("out of memory");
    size_t pos = 0;
    for (size_t i = 0; i < ns; i++) {
        if (sp[i].start > pos) v[m++] = (struct span){pos, sp[i].start, invert};
        v[m++] = (struct span){sp[i].start, sp[i].end, !invert};
        pos = sp[i].end;
    }
    if (pos < n) v[m++] = (struct span){pos, n, invert};
    size_t nr = 0;
    if (!(r = malloc((m ? m : 1) * sizeof *r))) {
        free(v);
        return err_set("out of memory");
    }
    int prev = 0;
    switch (b) {
    case SPLIT_REMOVED:
        for (size_t i = 0; i < m; i++)
            if (!v[i].match) r[nr++] = v[i];
        break;
    case SPLIT_ISOLATED:
        for (size_t i = 0; i < m; i++)
            r[nr++] = v[i];
        break;
    case SPLIT_MERGED_PREV:
        for (size_t i = 0; i < m; i++) {
            if (v[i].match && !prev && nr)
                r[nr - 1].b = v[i].b;
            else
                r[nr++] = v[i];
            prev = v[i].match;
        }
        break;
    case SPLIT_MERGED_NEXT:
        /* Right to left, then reversed back. */
        for (size_t i = m; i-- > 0;) {
            if (v[i].match && !prev && nr)
                r[nr - 1].a = v[i].a;
            else
                r[nr++] = v[i];
            prev = v[i].match;
        }
        for (size_t i = 0; i < nr / 2; i++) {
            struct span x = r[i];
            r[i] = r[nr - 1 - i];
            r[nr - 1 - i] = x;
        }
        break;
    case SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < m; i++) {
            if (v[i].match == prev && nr)
                r[nr - 1].b = v[i].b;
            else
                r[nr++] = v[i];
            prev = v[i].match;
        }
        break;
    }
    int rc = 0;
    for (size_t i = 0; i < nr && !rc; i++)
        if (r[i].b > r[i].a)
            rc = segs_push(out, s + r[i].a, r[i].b - r[i].a, -1, first && r[i].a == 0);
    free(v);
    free(r);
    return rc;
}

static int pre_apply(const hf_t *h, const pre_t *p, work_t *w, const segs_t *in, segs_t *out) {
    buf_t *tmp = &w->nb[0];
    segs_reset(out);
    for (size_t k = 0; k < in->n; k++) {
        const seg_t *g = &in->a[k];
        const char *s = SEG_TEXT(in, k);
        if (g->id >= 0) {
            if (segs_push(out, "", 0, g->id, 0)) return -1;
            continue;
        }
        size_t ns;
        switch (p->kind) {
        case PRE_BYTELEVEL: {
            tmp->n = 0;
            if (p->prefix_space && (g->len == 0 || s[0] != ' ') && buf_add(tmp, " ", 1)) return -1;
            if (buf_add(tmp, s, g->len)) return -1;
            size_t first_out = out->n;
            if (p->re) {
                if (rx_find_all(p->re, tmp->p, tmp->n, &w->sp, &ns, &w->spcap) ||
                    split_by(tmp->p, tmp->n, w->sp, ns, SPLIT_ISOLATED, 0, g->first, out))
                    return -1;
            } else if (tmp->n && segs_push(out, tmp->p, tmp->n, -1, g->first)) {
                return -1;
            }
            /* Each byte of the new pieces becomes its printable character. */
            for (size_t i = first_out; i < out->n; i++) {
                buf_t *mb = &w->nb[1];
                mb->n = 0;
                const unsigned char *q = (const unsigned char *)out->text.p + out->a[i].off;
                for (size_t j = 0; j < out->a[i].len; j++)
                    if (buf_add(mb, h->bl.utf8[q[j]], h->bl.utf8_len[q[j]])) return -1;
                out->a[i].off = out->text.n;
                out->a[i].len = mb->n;
                if (buf_add(&out->text, mb->p, mb->n)) return -1;
            }
            break;
        }
        case PRE_METASPACE: {
            tmp->n = 0;
            int starts_rep =
                g->len >= (size_t)p->rep_len && memcmp(s, p->rep, (size_t)p->rep_len) == 0;
            /* A leading space becomes the replacement too, so it counts. */
            starts_rep = starts_rep || (g->len && s[0] == ' ');
            if (!starts_rep &&
                (p->prepend == PREPEND_ALWAYS || (p->prepend == PREPEND_FIRST && g->first)))
                if (buf_add(tmp, p->rep, (size_t)p->rep_len)) return -1;
            for (size_t i = 0; i < g->len; i++)
                if (s[i] == ' ' ? buf_add(tmp, p->rep, (size_t)p->rep_len) : buf_add(tmp, s + i, 1))
                    return -1;
            if (!p->split) {
                if (tmp->n && segs_push(out, tmp->p, tmp->n, -1, g->first)) return -1;
                break;
            }
            ns = 0;
            for (size_t i = 0; i + (size_t)p->rep_len <= tmp->n;) {
                if (memcmp(tmp->p + i, p->rep, (size_t)p->rep_len) == 0) {
                    if (ns == w->spcap) {
                        size_t nc = w->spcap ? w->spcap * 2 : 64;
                        rx_span_t *q = realloc(w->sp, nc * sizeof *q);
                        if (!q) return err_set("out of memory");
                        w->sp = q;
                        w->spcap = nc;
                    }
                    w->sp[ns++] = (rx_span_t){i, i + (size_t)p->rep_len};
                    i += (size_t)p->rep_len;
                } else {
                    i++;
                }
            }
            if (split_by(tmp->p, tmp->n, w->sp, ns, SPLIT_MERGED_NEXT, 0, g->first, out)) return -1;
            break;
        }
        case PRE_SPLIT:
            if (rx_find_all(p->re, s, g->len, &w->sp, &ns, &w->spcap)) return -1;
            /* split_by copies the pieces, so S may point into IN. */
            if (split_by(s, g->len, w->sp, ns, p->behavior, p->invert, g->first, out)) return -1;
            break;
        }
    }
    return 0;
}

/* ---- models ---------------------------------------------------------------- */

struct sym {
    int id, prev, next;
};
struct cand {
    int rank, pos, lid, rid, merged;
};

static int out_push(work_t *w, int id) {
    if ((size_t)*w->n_out == *w->out_cap) {
        size_t nc = *w->out_cap * 2 + 16;
        int *p = realloc(*w->out, nc * sizeof *p);
        if (!p) return err_set("out of memory");
        *w->out = p;
        *w->out_cap = nc;
    }
    (*w->out)[(*w->n_out)++] = id;
    return 0;
}

/* Vocabulary id of a piece the model may produce (special tokens are not). */
static int model_id(const tok_t *t, const char *s, size_t n) {
    int id = strmap_get(&t->raw_to_id, s, n, -1);
    return id >= 0 && !t->special[id] ? id : -1;
}

static int cand_less(const struct cand *x, const struct cand *y) {
    return x->rank < y->rank || (x->rank == y->rank && x->pos < y->pos);
}

static int heap_push(work_t *w, struct cand c) {
    if (w->heap_n == w->heap_cap) {
        size_t nc = w->heap_cap ? w->heap_cap * 2 : 64;
        struct cand *p = realloc(w->heap, nc * sizeof *p);
        if (!p) return err_set("out of memory");
        w->heap = p;
        w->heap_cap = nc;
    }
    size_t i = w->heap_n++;
    while (i > 0 && cand_less(&c, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = c;
    return 0;
}

static struct cand heap_pop(work_t *w) {
    struct cand top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->heap_n) break;
        if (c + 1 < w->heap_n && cand_less(&w->heap[c + 1], &w->heap[c])) c++;
        if (!cand_less(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (w->heap_n) w->heap[i] = last;
    return top;
}

static int try_pair(const hf_t *h, work_t *w, int i) {
    if (i < 0) return 0;
    int j = w->sym[i].next;
    if (j < 0) return 0;
    const pair_t *p = pair_get(h, w->sym[i].id, w->sym[j].id);
    if (!p) return 0;
    return heap_push(w, (struct cand){p->rank, i, w->sym[i].id, w->sym[j].id, p->merged});
}

static int sym_add(work_t *w, size_t *ns, int id) {
    if (*ns == w->sym_cap) {
        size_t nc = w->sym_cap ? w->sym_cap * 2 : 256;
        struct sym *p = realloc(w->sym, nc * sizeof *p);
        if (!p) return err_set("out of memory");
        w->sym = p;
        w->sym_cap = nc;
    }
    w->sym[(*ns)++].id = id;
    return 0;
}

/* HF models/bpe/model.rs merge_word + word.rs merge_all. */
static int bpe_word(const tok_t *t, const hf_t *h, work_t *w, const char *s, size_t n) {
    if (h->ignore_merges) {
        int id = model_id(t, s, n);
        if (id >= 0) return out_push(w, id);
    }
    size_t ns = 0;
    int unk_pending = 0;
    for (size_t i = 0; i < n;) {
        size_t l = (size_t)utf8_len((unsigned char)s[i]);
        if (l > n - i) l = n - i;
        int id = model_id(t, s + i, l);
        int bytes_ok = h->byte_fallback;
        for (size_t k = 0; id < 0 && bytes_ok && k < l; k++)
            bytes_ok = t->byte_id[(unsigned char)s[i + k]] >= 0;
        if (id >= 0 || bytes_ok) {
            if (unk_pending && sym_add(w, &ns, h->unk)) return -1;
            unk_pending = 0;
            if (id >= 0) {
                if (sym_add(w, &ns, id)) return -1;
            } else {
                for (size_t k = 0; k < l; k++)
                    if (sym_add(w, &ns, t->byte_id[(unsigned char)s[i + k]])) return -1;
            }
        } else if (h->unk >= 0) {
            /* fuse_unk: a run of unknown characters is one <unk>. */
            if (unk_pending && !h->fuse_unk && sym_add(w, &ns, h->unk)) return -1;
            unk_pending = 1;
        } else {
            return err_set("%s: cannot encode '%.*s': not in the vocabulary, and no byte fallback "
                           "or unk token",
                           t->source, (int)l, s + i);
        }
        i += l;
    }
    if (unk_pending && sym_add(w, &ns, h->unk)) return -1;
    for (size_t i = 0; i < ns; i++) {
        w->sym[i].prev = (int)i - 1;
        w->sym[i].next = i + 1 < ns ? (int)i + 1 : -1;
    }
    w->heap_n = 0;
    for (size_t i = 0; i + 1 < ns; i++)
        if (try_pair(h, w, (int)i)) return -1;
    while (w->heap_n) {
        struct cand c = heap_pop(w);
        int i = c.pos, j = w->sym[i].next;
        if (w->sym[i].id != c.lid || j < 0 || w->sym[j].id != c.rid) continue; /* stale */
        w->sym[i].id = c.merged;
        w->sym[i].next = w->sym[j].next;
        if (w->sym[j].next >= 0) w->sym[w->sym[j].next].prev = i;
        w->sym[j].id = -1;
        if (try_pair(h, w, w->sym[i].prev) || try_pair(h, w, i)) return -1;
    }
    for (int i = ns ? 0 : -1; i >= 0; i = w->sym[i].next)
        if (out_push(w, w->sym[i].id)) return -1;
    return 0;
}

static int wordlevel_word(const tok_t *t, const hf_t *h, work_t *w, const char *s, size_t n) {
    int id = model_id(t, s, n);
    if (id < 0) id = h->unk;
    if (id < 0)
        return err_set("%s: word '%.*s' is not in the vocabulary and there is no unk token",
                       t->source, (int)(n > 64 ? 64 : n), s);
    return out_push(w, id);
}

/* Declared (without a header) in tok.c: encodes for the kinds of this file,
 * appending to *OUT (*CAP entries, grown with realloc). */
int tok_hf_encode(const tok_t *t, const char *text, size_t len, int flags, int **out, int *n_out,
                  size_t *cap);

int tok_hf_encode(const tok_t *t, const char *text, size_t len, int flags, int **out, int *n_out,
                  size_t *cap) {
    const hf_t *h = t->ext;
    if (!h) return err_set("%s: tokenizer has no Hugging Face state", t->source);
    work_t w = {0};
    w.out = out;
    w.n_out = n_out;
    w.out_cap = cap;
    int rc = -1, c = 0;
    if (len && segs_push(&w.s[c], text, len, -1, 1)) goto done;
    if (h->n_added && split_added(h, 0, flags, &w.s[c], &w.s[c ^ 1])) goto done;
    if (h->n_added) c ^= 1;
    if (h->n_norm) {
        segs_t *in = &w.s[c], *o = &w.s[c ^ 1];
        segs_reset(o);
        for (size_t k = 0; k < in->n; k++) {
            const char *r;
            size_t rl;
            if (in->a[k].id >= 0) {
                if (segs_push(o, "", 0, in->a[k].id, 0)) goto done;
                continue;
            }
            if (normalize(t, h, &w, SEG_TEXT(in, k), in->a[k].len, &r, &rl)) goto done;
            if (rl && segs_push(o, r, rl, -1, in->a[k].first)) goto done;
        }
        c ^= 1;
    }
    if (h->any_normalized_added) {
        if (split_added(h, 1, flags, &w.s[c], &w.s[c ^ 1])) goto done;
        c ^= 1;
    }
    for (int p = 0; p < h->n_pre; p++) {
        if (pre_apply(h, &h->pre[p], &w, &w.s[c], &w.s[c ^ 1])) goto done;
        c ^= 1;
    }
    const segs_t *fin = &w.s[c];
    for (size_t k = 0; k < fin->n; k++) {
        const seg_t *g = &fin->a[k];
        if (g->id >= 0) {
            if (out_push(&w, g->id)) goto done;
        } else if (h->wordlevel ? wordlevel_word(t, h, &w, SEG_TEXT(fin, k), g->len)
                                : bpe_word(t, h, &w, SEG_TEXT(fin, k), g->len)) {
            goto done;
        }
    }
    rc = 0;
done:
    for (int i = 0; i < 2; i++) {
        segs_free(&w.s[i]);
        free(w.nb[i].p);
    }
    free(w.sp);
    free(w.sym);
    free(w.heap);
    return rc;
}

/* ---- loading: JSON helpers ---------------------------------------------------- */

/* FLAGS: jansson decoding flags (tokenizer_config.json needs
 * JSON_DECODE_INT_AS_REAL: its model_max_length is often 1e30 written as an
 * integer). */
static json_t *json_read(const char *path, size_t flags) {
    size_t len;
    char *buf = mfile_slurp(path, JSON_MAX_BYTES, &len);
    if (!buf) return NULL;
    json_error_t e;
    json_t *j = json_loadb(buf, len, flags, &e);
    free(buf);
    if (!j) err_set("%s: line %d column %d: %s", path, e.line, e.column, e.text);
    return j;
}

static const char *jstr(const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int jbool(const json_t *o, const char *key, int dflt) {
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

/* A special-token entry of tokenizer_config.json: "<s>" or {"content": "<s>"}. */
static const char *jtoken(const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (json_is_object(v)) return jstr(v, "content");
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int file_exists(const char *dir, const char *name, char *out, size_t cap) {
    struct stat st;
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n > 0 && (size_t)n < cap && stat(out, &st) == 0 && S_ISREG(st.st_mode);
}

static char *dupn(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* ---- loading: vocabulary, merges, added tokens ------------------------------- */

/* Largest id in a {"token": id} object (MAX if it is larger), checking every
 * value; -2 with err set on a bad value. */
static int vocab_max_id(const char *file, const json_t *vocab, int max) {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) >= VOCAB_MAX) {
            err_set("%s: vocabulary entry '%.64s' has id %s, expected an integer in [0, %d)", file,
                    key, json_is_integer(v) ? "out of range" : "that is not an integer", VOCAB_MAX);
            return -2;
        }
        if (json_integer_value(v) > max) max = (int)json_integer_value(v);
    }
    return max;
}

/* Ids up to MAX for N tokens: holes become placeholders, so a few ids far
 * beyond the count (a tiny file claiming 16M tokens) are refused. */
static int sparse_ids(const char *file, int max, size_t n) {
    if ((size_t)max >= 2 * n + 65536)
        return err_set("%s: token ids go up to %d but there are only %zu tokens", file, max, n);
    return 0;
}

static int set_raw(tok_t *t, int id, const char *s, size_t n) {
    free(t->raw[id]);
    if (!(t->raw[id] = dupn(s, n))) return err_set("out of memory");
    if (strmap_get(&t->raw_to_id, s, n, -1) < 0 && strmap_put(&t->raw_to_id, s, n, id)) return -1;
    return 0;
}

static int vocab_fill(tok_t *t, const char *file, const json_t *vocab) {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)vocab, key, v) {
        int id = (int)json_integer_value(v);
        if (t->raw[id])
            return err_set("%s: id %d is used by both '%.64s' and '%.64s'", file, id, t->raw[id],
                           key);
        if (set_raw(t, id, key, strlen(key))) return -1;
    }
    return 0;
}

/* One merge "A B" with rank RANK; WHERE names it in messages. */
static int merge_add(tok_t *t, hf_t *h, const char *file, const char *where, const char *a,
                     size_t la, const char *b, size_t lb, int rank, buf_t *tmp) {
    int ia = strmap_get(&t->raw_to_id, a, la, -1), ib = strmap_get(&t->raw_to_id, b, lb, -1);
    /* Quoted tokens are cut at 64 bytes: a megabyte-long one must not push
     * the reason out of the message. */
#define Q(n) (int)((n) > 64 ? 64 : (n))
    if (ia < 0 || ib < 0)
        return err_set("%s: %s ('%.*s %.*s'): '%.*s' is not in the vocabulary", file, where, Q(la),
                       a, Q(lb), b, ia < 0 ? Q(la) : Q(lb), ia < 0 ? a : b);
    tmp->n = 0;
    if (buf_add(tmp, a, la) || buf_add(tmp, b, lb)) return -1;
    int m = strmap_get(&t->raw_to_id, tmp->p, tmp->n, -1);
    if (m < 0)
        return err_set("%s: %s ('%.*s %.*s'): the merged token '%.*s' is not in the vocabulary",
                       file, where, Q(la), a, Q(lb), b, Q(tmp->n), tmp->p);
#undef Q
    pair_put(h, ia, ib, rank, m);
    tmp->n = 0;
    if (buf_add(tmp, a, la) || buf_add(tmp, " ", 1) || buf_add(tmp, b, lb)) return -1;
    return strmap_put(&t->merge_rank, tmp->p, tmp->n, rank);
}

static int merges_from_json(tok_t *t, hf_t *h, const char *file, const json_t *merges) {
    size_t n = json_array_size(merges);
    buf_t tmp = {0};
    char where[48];
    int rc = pairs_alloc(h, n);
    for (size_t i = 0; i < n && !rc; i++) {
        json_t *m = json_array_get(merges, i);
        snprintf(where, sizeof where, "merge %zu", i);
        const char *a, *b, *sp;
        size_t la, lb;
        if (json_is_string(m) && (sp = strchr(json_string_value(m), ' '))) {
            a = json_string_value(m);
            la = (size_t)(sp - a);
            b = sp + 1;
            lb = strlen(b);
        } else if (json_is_array(m) && json_array_size(m) == 2 &&
                   json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
            a = json_string_value(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
            la = strlen(a);
            lb = strlen(b);
        } else {
            rc = err_set("%s: %s is neither \"a b\" nor [\"a\", \"b\"]", file, where);
            break;
        }
        rc = merge_add(t, h, file, where, a, la, b, lb, (int)i, &tmp);
    }
    free(tmp.p);
    return rc;
}

/* merges.txt: an optional "#version" line, then "a b" per line. */
static int merges_from_txt(tok_t *t, hf_t *h, const char *file) {
    size_t len;
    char *buf = mfile_slurp(file, JSON_MAX_BYTES, &len);
    if (!buf) return -1;
    size_t n_lines = 1;
    for (size_t i = 0; i < len; i++)
        n_lines += buf[i] == '\n';
    int rc = pairs_alloc(h, n_lines), rank = 0;
    buf_t tmp = {0};
    char where[48];
    size_t line = 0;
    for (char *p = buf; !rc && p < buf + len;) {
        char *e = memchr(p, '\n', (size_t)(buf + len - p));
        char *next = e ? e + 1 : buf + len;
        if (!e) e = buf + len;
        line++;
        if (e > p && e[-1] == '\r') e--;
        size_t n = (size_t)(e - p);
        if (n == 0 || (line == 1 && n >= 8 && memcmp(p, "#version", 8) == 0)) {
            p = next;
            continue;
        }
        char *sp = memchr(p, ' ', n);
        if (!sp || memchr(sp + 1, ' ', (size_t)(e - sp - 1))) {
            rc = err_set("%s: line %zu: expected two tokens separated by one space, got '%.*s'",
                         file, line, (int)(n > 64 ? 64 : n), p);
            break;
        }
        snprintf(where, sizeof where, "line %zu", line);
        rc = merge_add(t, h, file, where, p, (size_t)(sp - p), sp + 1, (size_t)(e - sp - 1), rank++,
                       &tmp);
        p = next;
    }
    free(tmp.p);
    free(buf);
    return rc;
}

static int added_push(hf_t *h, const char *s, size_t n, int id, int special, int normalized,
                      int lstrip, int rstrip) {
    if (n == 0) return 0; /* HF ignores empty added tokens */
    added_t *p = realloc(h->added, (size_t)(h->n_added + 1) * sizeof *p);
    if (!p) return err_set("out of memory");
    h->added = p;
    char *text = dupn(s, n);
    if (!text) return err_set("out of memory");
    p[h->n_added++] = (added_t){text, n, id, special, normalized, lstrip, rstrip};
    h->added_first[normalized != 0][(unsigned char)s[0]] = 1;
    if (normalized) h->any_normalized_added = 1;
    return 0;
}

/* ---- loading: normalizer, pre-tokenizer --------------------------------------- */

/* {"String": s} or {"Regex": r} -> compiled pattern. */
static rx_t *pattern_compile(const char *file, const json_t *pat, const char *what) {
    const char *s = jstr(pat, "String"), *r = jstr(pat, "Regex");
    if (!s && !r) {
        err_set("%s: %s pattern is neither {\"String\": ..} nor {\"Regex\": ..}", file, what);
        return NULL;
    }
    rx_t *re = rx_compile(s ? s : r, strlen(s ? s : r), s != NULL);
    if (!re) err_prefix("%s: %s pattern '%.80s'", file, what, s ? s : r);
    return re;
}

static int norm_push(hf_t *h, norm_t n) {
    norm_t *p = realloc(h->norm, (size_t)(h->n_norm + 1) * sizeof *p);
    if (!p) {
        free(n.text);
        rx_free(n.re);
        return err_set("out of memory");
    }
    h->norm = p;
    p[h->n_norm++] = n;
    return 0;
}

static int norm_parse(hf_t *h, const char *file, const json_t *j) {
    if (json_is_null(j) || !j) return 0;
    const char *type = jstr(j, "type");
    if (!type) return err_set("%s: normalizer has no \"type\"", file);
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(j, "normalizers");
        size_t i;
        json_t *x;
        if (!json_is_array(arr))
            return err_set("%s: Sequence normalizer without \"normalizers\"", file);
        json_array_foreach(arr, i, x) if (norm_parse(h, file, x)) return -1;
        return 0;
    }
    if (!strcmp(type, "Prepend")) {
        const char *s = jstr(j, "prepend");
        if (!s) return err_set("%s: Prepend normalizer without \"prepend\"", file);
        char *d = strdup(s);
        if (!d) return err_set("out of memory");
        return norm_push(h, (norm_t){NORM_PREPEND, d, strlen(s), NULL});
    }
    if (!strcmp(type, "Replace")) {
        const char *c = jstr(j, "content");
        if (!c) return err_set("%s: Replace normalizer without \"content\"", file);
        rx_t *re = pattern_compile(file, json_object_get(j, "pattern"), "Replace normalizer");
        if (!re) return -1;
        char *d = strdup(c);
        if (!d) {
            rx_free(re);
            return err_set("out of memory");
        }
        return norm_push(h, (norm_t){NORM_REPLACE, d, strlen(c), re});
    }
    if (!strcmp(type, "Strip")) {
        int l = jbool(j, "strip_left", 1), r = jbool(j, "strip_right", 1);
        const char *pat = l && r ? "\\A\\s+|\\s+\\z" : l ? "\\A\\s+" : r ? "\\s+\\z" : NULL;
        if (!pat) return 0;
        rx_t *re = rx_compile(pat, strlen(pat), 0);
        char *d = strdup("");
        if (!re || !d) {
            rx_free(re);
            free(d);
            return err_set("out of memory");
        }
        return norm_push(h, (norm_t){NORM_REPLACE, d, 0, re});
    }
    if (!strcmp(type, "NFC")) return norm_push(h, (norm_t){NORM_NFC, NULL, 0, NULL});
    return err_set(
        "%s: normalizer '%s' is not supported (supported: Sequence, Prepend, Replace, Strip, "
        "NFC)",
        file, type);
}

static int pre_push(hf_t *h, pre_t p) {
    pre_t *q = realloc(h->pre, (size_t)(h->n_pre + 1) * sizeof *q);
    if (!q) {
        rx_free(p.re);
        return err_set("out of memory");
    }
    h->pre = q;
    q[h->n_pre++] = p;
    return 0;
}

static int pre_regex(hf_t *h, const char *file, const char *pat, splitb_t b, int invert) {
    rx_t *re = rx_compile(pat, strlen(pat), 0);
    if (!re) return err_prefix("%s", file);
    return pre_push(h, (pre_t){.kind = PRE_SPLIT, .re = re, .behavior = b, .invert = invert});
}

static int pre_parse(hf_t *h, const char *file, const json_t *j, int *bytelevel) {
    if (!j || json_is_null(j)) return 0;
    const char *type = jstr(j, "type");
    if (!type) return err_set("%s: pre_tokenizer has no \"type\"", file);
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(j, "pretokenizers");
        size_t i;
        json_t *x;
        if (!json_is_array(arr))
            return err_set("%s: Sequence pre_tokenizer without \"pretokenizers\"", file);
        json_array_foreach(arr, i, x) if (pre_parse(h, file, x, bytelevel)) return -1;
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) {
        pre_t p = {.kind = PRE_BYTELEVEL, .prefix_space = jbool(j, "add_prefix_space", 1)};
        *bytelevel = 1;
        if (jbool(j, "use_regex", 1) && !(p.re = rx_compile(GPT2_PATTERN, strlen(GPT2_PATTERN), 0)))
            return err_prefix("%s", file);
        return pre_push(h, p);
    }
    if (!strcmp(type, "Metaspace")) {
        const char *rep = jstr(j, "replacement");
        const char *scheme = jstr(j, "prepend_scheme");
        pre_t p = {.kind = PRE_METASPACE, .split = jbool(j, "split", 1)};
        if (!rep || !*rep || strlen(rep) >= sizeof p.rep)
            return err_set("%s: Metaspace pre_tokenizer needs a one-character \"replacement\"",
                           file);
        strcpy(p.rep, rep);
        p.rep_len = (int)strlen(rep);
        /* Older files say add_prefix_space instead of prepend_scheme. */
        p.prepend = jbool(j, "add_prefix_space", 1) ? PREPEND_ALWAYS : PREPEND_NEVER;
        if (scheme) {
            if (!strcmp(scheme, "first"))
                p.prepend = PREPEND_FIRST;
            else if (!strcmp(scheme, "always"))
                p.prepend = PREPEND_ALWAYS;
            else if (!strcmp(scheme, "never"))
                p.prepend = PREPEND_NEVER;
            else
                return err_set("%s: Metaspace prepend_scheme '%s' is not first, always or never",
                               file, scheme);
        }
        return pre_push(h, p);
    }
    if (!strcmp(type, "Split")) {
        static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                      "Contiguous"};
        const char *beh = jstr(j, "behavior");
        int b = -1;
        for (int i = 0; i < 5; i++)
            if (beh && !strcmp(beh, names[i])) b = i;
        if (b < 0)
            return err_set("%s: Split pre_tokenizer behavior '%s' is not one of Removed, Isolated, "
                           "MergedWithPrevious, MergedWithNext, Contiguous",
                           file, beh ? beh : "(missing)");
        rx_t *re = pattern_compile(file, json_object_get(j, "pattern"), "Split pre_tokenizer");
        if (!re) return -1;
        return pre_push(h, (pre_t){.kind = PRE_SPLIT,
                                   .re = re,
                                   .behavior = (splitb_t)b,
                                   .invert = jbool(j, "invert", 0)});
    }
    /* HF Whitespace keeps the matches of \w+|[^\w\s]+; WhitespaceSplit cuts at whitespace. */
    if (!strcmp(type, "Whitespace")) return pre_regex(h, file, "\\w+|[^\\w\\s]+", SPLIT_REMOVED, 1);
    if (!strcmp(type, "WhitespaceSplit")) return pre_regex(h, file, "\\s+", SPLIT_REMOVED, 0);
    if (!strcmp(type, "Digits"))
        return pre_regex(h, file, jbool(j, "individual_digits", 0) ? "\\p{N}" : "\\p{N}+",
                         SPLIT_ISOLATED, 0);
    return err_set(
        "%s: pre_tokenizer '%s' is not supported (supported: ByteLevel, Metaspace, Split, "
        "Sequence, Whitespace, WhitespaceSplit, Digits)",
        file, type);
}

/* ---- loading: the whole tokenizer -------------------------------------------- */

/* Id of token text S, or -1. */
static int id_of(const tok_t *t, const char *s) {
    return s ? strmap_get(&t->raw_to_id, s, strlen(s), -1) : -1;
}

/* BOS added by a TemplateProcessing post-processor (possibly inside a
 * Sequence), or -1 when none is added. */
static int template_bos(const tok_t *t, const json_t *pp) {
    const char *type = jstr(pp, "type");
    if (!type) return -1;
    if (!strcmp(type, "Sequence")) {
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(pp, "processors"), i, x) {
            int id = template_bos(t, x);
            if (id >= 0) return id;
        }
        return -1;
    }
    if (strcmp(type, "TemplateProcessing")) return -1;
    json_t *first = json_array_get(json_object_get(pp, "single"), 0);
    json_t *st = json_object_get(first, "SpecialToken");
    const char *name = st ? jstr(st, "id") : NULL;
    if (!name) return -1;
    json_t *ids =
        json_object_get(json_object_get(json_object_get(pp, "special_tokens"), name), "ids");
    json_t *id0 = json_array_get(ids, 0);
    if (json_is_integer(id0) && json_integer_value(id0) >= 0 &&
        json_integer_value(id0) < t->n_vocab)
        return (int)json_integer_value(id0);
    return id_of(t, name);
}

/* Does the decoder strip the leading space (Llama/Mistral's Strip, or a
 * Metaspace decoder that prepends)? */
static int decoder_strips(const json_t *d) {
    const char *type = jstr(d, "type");
    if (!type) return 0;
    if (!strcmp(type, "Sequence")) {
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(d, "decoders"), i, x) if (decoder_strips(x)) return 1;
        return 0;
    }
    if (!strcmp(type, "Strip")) {
        json_t *start = json_object_get(d, "start");
        return json_is_integer(start) && json_integer_value(start) > 0;
    }
    if (!strcmp(type, "Metaspace")) {
        const char *s = jstr(d, "prepend_scheme");
        return s ? strcmp(s, "never") != 0 : jbool(d, "add_prefix_space", 1);
    }
    return 0;
}

/* Decoded bytes of every token (see the top of this file). */
static int pieces_build(tok_t *t, const hf_t *h, const char *rep) {
    size_t rl = strlen(rep);
    buf_t b = {0};
    uint8_t *is_added = calloc((size_t)t->n_vocab, 1);
    int16_t *byte_of = malloc((size_t)t->n_vocab * sizeof *byte_of);
    if (!is_added || !byte_of) {
        free(is_added);
        free(byte_of);
        return err_set("out of memory");
    }
    for (int i = 0; i < h->n_added; i++)
        is_added[h->added[i].id] = 1;
    for (int i = 0; i < t->n_vocab; i++)
        byte_of[i] = -1;
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] >= 0) byte_of[t->byte_id[b]] = (int16_t)b;
    int rc = 0;
    for (int id = 0; id < t->n_vocab && !rc; id++) {
        const char *r = t->raw[id];
        size_t n = strlen(r);
        b.n = 0;
        if (is_added[id] || t->special[id]) {
            rc = buf_add(&b, r, n);
        } else if (t->kind == TOK_BPE_BYTES) {
            for (size_t i = 0; i < n && !rc;) {
                size_t l = (size_t)utf8_len((unsigned char)r[i]);
                if (l > n - i) l = n - i;
                uint32_t cp = l == 2 ? ((uint32_t)(r[i] & 0x1F) << 6) | (r[i + 1] & 0x3F)
                                     : (unsigned char)r[i];
                int byte = l <= 2 ? bytelevel_byte(&h->bl, cp) : -1;
                rc = byte >= 0 ? buf_add(&b, (char[]){(char)byte}, 1) : buf_add(&b, r + i, l);
                i += l;
            }
        } else if (t->kind == TOK_WORDLEVEL) {
            rc = buf_add(&b, " ", 1) || buf_add(&b, r, n);
        } else {
            int byte = byte_of[id];
            if (byte >= 0) {
                rc = buf_add(&b, (char[]){(char)byte}, 1);
            } else {
                for (size_t i = 0; i < n && !rc;) {
                    if (rl && n - i >= rl && !memcmp(r + i, rep, rl)) {
                        rc = buf_add(&b, " ", 1);
                        i += rl;
                    } else {
                        rc = buf_add(&b, r + i, 1);
                        i++;
                    }
                }
            }
        }
        if (!rc && !(t->piece[id] = dupn(b.p ? b.p : "", b.n))) rc = err_set("out of memory");
        t->piece_len[id] = (int)b.n;
    }
    free(b.p);
    free(is_added);
    free(byte_of);
    return rc;
}

/* Reads tokenizer_config.json (and special_tokens_map.json) beside the
 * tokenizer, if there: BOS/EOS/UNK, add_bos_token and add_prefix_space
 * (into *PREFIX_SPACE when it is given).  AS_ADDED: also make the named
 * special tokens added tokens (vocab.json + merges.txt, where nothing else
 * declares them). */
static int config_apply(tok_t *t, hf_t *h, const char *dir, int as_added, int *add_bos_set,
                        int *prefix_space) {
    static const char *names[] = {"tokenizer_config.json", "special_tokens_map.json"};
    char path[4096];
    for (int f = 0; f < 2; f++) {
        if (!file_exists(dir, names[f], path, sizeof path)) continue;
        json_t *c = json_read(path, JSON_DECODE_INT_AS_REAL);
        if (!c) return -1;
        if (!json_is_object(c)) {
            json_decref(c);
            return err_set("%s: expected a JSON object", path);
        }
        if (prefix_space) *prefix_space = jbool(c, "add_prefix_space", *prefix_space);
        json_t *ab = json_object_get(c, "add_bos_token");
        if (json_is_boolean(ab) && !*add_bos_set) {
            t->add_bos = json_is_true(ab);
            *add_bos_set = 1;
        }
        int *slot[] = {&t->bos_id, &t->eos_id, &t->unk_id, NULL};
        const char *keys[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
        for (int k = 0; k < 4; k++) {
            int id = id_of(t, jtoken(c, keys[k]));
            if (id < 0) continue;
            if (slot[k] && f == 0) *slot[k] = id;
            if (slot[k] && *slot[k] < 0) *slot[k] = id;
            if (as_added && !t->special[id]) {
                t->special[id] = 1;
                if (added_push(h, t->raw[id], strlen(t->raw[id]), id, 1, 0, 0, 0)) goto fail;
            }
        }
        /* Newer configs list every added token with its flags. */
        const char *key;
        json_t *v;
        json_object_foreach(json_object_get(c, "added_tokens_decoder"), key, v) {
            const char *content = jstr(v, "content");
            int id = id_of(t, content);
            if (!as_added || id < 0 || id != atoi(key) || t->special[id]) continue;
            t->special[id] = (uint8_t)jbool(v, "special", 0);
            if (added_push(h, content, strlen(content), id, t->special[id], 0,
                           jbool(v, "lstrip", 0), jbool(v, "rstrip", 0)))
                goto fail;
        }
        json_decref(c);
        continue;
    fail:
        json_decref(c);
        return -1;
    }
    return 0;
}

static tok_t *tok_new(int n, const char *source, hf_t **hp) {
    tok_t *t = tok_alloc(n, source);
    hf_t *h = calloc(1, sizeof *h);
    if (!t || !h) {
        tok_free(t);
        free(h);
        err_set("out of memory");
        return NULL;
    }
    t->ext = h;
    t->ext_free = hf_free;
    h->unk = -1;
    bytelevel_init(&h->bl);
    *hp = h;
    return t;
}

/* Holes in a sparse vocabulary become empty special placeholders. */
static int holes_fill(tok_t *t) {
    for (int i = 0; i < t->n_vocab; i++)
        if (!t->raw[i]) {
            if (!(t->raw[i] = strdup(""))) return err_set("out of memory");
            t->special[i] = 1;
        }
    return 0;
}

static void dir_of(const char *path, char *dir, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, cap, ".");
    else
        snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

static tok_t *load_vocab_merges(const char *vocab_path, const char *merges_path, const char *dir) {
    tok_t *t = NULL;
    hf_t *h;
    json_t *vocab = json_read(vocab_path, 0);
    if (!vocab) return NULL;
    if (!json_is_object(vocab)) {
        err_set("%s: expected a JSON object mapping tokens to ids", vocab_path);
        goto fail;
    }
    if (json_object_size(vocab) == 0) {
        err_set("%s: the vocabulary is empty", vocab_path);
        goto fail;
    }
    int max = vocab_max_id(vocab_path, vocab, -1);
    if (max < 0) goto fail;
    if (sparse_ids(vocab_path, max, json_object_size(vocab))) goto fail;
    if (!(t = tok_new(max + 1, vocab_path, &h))) goto fail;
    t->kind = TOK_BPE_BYTES;
    if (vocab_fill(t, vocab_path, vocab) || holes_fill(t) || merges_from_txt(t, h, merges_path))
        goto fail;
    int add_bos_set = 0;
    /* GPT-2's convention (HF GPT2Tokenizer's defaults): <|endoftext|> is
     * BOS, EOS and UNK, and special. */
    int eot = id_of(t, "<|endoftext|>");
    if (eot >= 0) {
        t->bos_id = t->eos_id = t->unk_id = eot;
        t->special[eot] = 1;
        if (added_push(h, "<|endoftext|>", 13, eot, 1, 0, 0, 0)) goto fail;
    }
    int prefix_space = 0;
    if (config_apply(t, h, dir, 1, &add_bos_set, &prefix_space)) goto fail;
    /* GPT-2's pre-tokenizer: ByteLevel with its regex; no prefix space
     * unless the config asks (HF GPT2Tokenizer's add_prefix_space). */
    pre_t p = {.kind = PRE_BYTELEVEL, .prefix_space = prefix_space};
    if (!(p.re = rx_compile(GPT2_PATTERN, strlen(GPT2_PATTERN), 0)) || pre_push(h, p)) goto fail;
    if (pieces_build(t, h, META)) goto fail;
    json_decref(vocab);
    return t;
fail:
    json_decref(vocab);
    tok_free(t);
    return NULL;
}

static tok_t *load_tokenizer_json(const char *file) {
    tok_t *t = NULL;
    hf_t *h;
    char dir[4096];
    dir_of(file, dir, sizeof dir);
    json_t *root = json_read(file, 0);
    if (!root) return NULL;
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) {
        err_set("%s: no \"model\" object (is this a Hugging Face tokenizer.json?)", file);
        goto fail;
    }
    const char *type = jstr(model, "type");
    json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    int wordlevel = type && !strcmp(type, "WordLevel");
    if (type ? strcmp(type, "BPE") && !wordlevel : !merges) {
        err_set("%s: model type '%s' is not supported (supported: BPE, WordLevel)", file,
                type ? type : "(none, and no merges)");
        goto fail;
    }
    if (!json_is_object(vocab) || json_object_size(vocab) == 0) {
        err_set("%s: model has no \"vocab\" object", file);
        goto fail;
    }
    if (!wordlevel && !json_is_array(merges)) {
        err_set("%s: BPE model has no \"merges\" array", file);
        goto fail;
    }
    json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_array(added) && !json_is_null(added)) {
        err_set("%s: \"added_tokens\" is not an array", file);
        goto fail;
    }
    int max = vocab_max_id(file, vocab, -1);
    if (max < -1) goto fail;
    size_t i;
    json_t *a;
    json_array_foreach(added, i, a) {
        json_t *id = json_object_get(a, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= VOCAB_MAX || !jstr(a, "content")) {
            err_set("%s: added_tokens[%zu] needs an integer \"id\" in [0, %d) and a \"content\"",
                    file, i, VOCAB_MAX);
            goto fail;
        }
        if (json_integer_value(id) > max) max = (int)json_integer_value(id);
    }
    if (sparse_ids(file, max, json_object_size(vocab) + json_array_size(added))) goto fail;
    if (!(t = tok_new(max + 1, file, &h))) goto fail;
    if (vocab_fill(t, file, vocab)) goto fail;
    /* Added tokens: HF's id -> token map prefers them to the model's. */
    json_array_foreach(added, i, a) {
        int id = (int)json_integer_value(json_object_get(a, "id"));
        const char *c = jstr(a, "content");
        if (!t->raw[id] || strcmp(t->raw[id], c)) {
            if (set_raw(t, id, c, strlen(c))) goto fail;
        }
        t->special[id] = (uint8_t)jbool(a, "special", 0);
    }
    if (holes_fill(t)) goto fail;

    /* The model. */
    h->wordlevel = wordlevel;
    json_t *d = json_object_get(model, "dropout");
    if (json_is_number(d) && json_number_value(d) > 0) {
        err_set("%s: BPE dropout is not supported", file);
        goto fail;
    }
    const char *pre = jstr(model, "continuing_subword_prefix"),
               *suf = jstr(model, "end_of_word_suffix");
    if ((pre && *pre) || (suf && *suf)) {
        err_set("%s: continuing_subword_prefix / end_of_word_suffix are not supported", file);
        goto fail;
    }
    h->byte_fallback = jbool(model, "byte_fallback", 0);
    h->fuse_unk = jbool(model, "fuse_unk", 0);
    h->ignore_merges = jbool(model, "ignore_merges", 0);
    const char *unk = jstr(model, "unk_token");
    if (unk && (h->unk = id_of(t, unk)) < 0) {
        err_set("%s: unk_token '%s' is not in the vocabulary", file, unk);
        goto fail;
    }
    t->unk_id = h->unk;
    if (h->byte_fallback)
        for (int b = 0; b < 256; b++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            t->byte_id[b] = id_of(t, name);
        }
    if (!wordlevel && merges_from_json(t, h, file, merges)) goto fail;

    /* Normalizer, added tokens (patterns of normalized ones normalized), pre-tokenizer. */
    if (norm_parse(h, file, json_object_get(root, "normalizer"))) goto fail;
    json_array_foreach(added, i, a) {
        const char *c = jstr(a, "content");
        int id = (int)json_integer_value(json_object_get(a, "id"));
        int normalized = jbool(a, "normalized", !jbool(a, "special", 0)) && h->n_norm > 0;
        const char *pat = c;
        size_t plen = strlen(c);
        work_t w = {0};
        if (normalized && normalize(t, h, &w, c, plen, &pat, &plen)) {
            free(w.nb[0].p), free(w.nb[1].p), free(w.sp);
            goto fail;
        }
        int rc = added_push(h, pat, plen, id, t->special[id], normalized, jbool(a, "lstrip", 0),
                            jbool(a, "rstrip", 0));
        free(w.nb[0].p), free(w.nb[1].p), free(w.sp);
        if (rc) goto fail;
    }
    int bytelevel = 0;
    if (pre_parse(h, file, json_object_get(root, "pre_tokenizer"), &bytelevel)) goto fail;
    json_t *dec = json_object_get(root, "decoder");
    const char *dtype = jstr(dec, "type");
    if (dtype && !strcmp(dtype, "ByteLevel")) bytelevel = 1;
    t->kind = wordlevel ? TOK_WORDLEVEL : bytelevel ? TOK_BPE_BYTES : TOK_BPE_SPM;

    /* Replacement character for decoding SentencePiece-style pieces. */
    const char *rep = META;
    for (int k = 0; k < h->n_pre; k++)
        if (h->pre[k].kind == PRE_METASPACE) rep = h->pre[k].rep;
    if (pieces_build(t, h, rep)) goto fail;

    /* BOS/EOS: tokenizer_config.json first, then the post-processor. */
    int add_bos_set = 0;
    if (config_apply(t, h, dir, 0, &add_bos_set, NULL)) goto fail;
    int tb = template_bos(t, json_object_get(root, "post_processor"));
    if (!add_bos_set) t->add_bos = tb >= 0;
    if (t->bos_id < 0) t->bos_id = tb;
    int eot = id_of(t, "<|endoftext|>");
    if (eot >= 0 && t->special[eot]) {
        if (t->bos_id < 0) t->bos_id = eot;
        if (t->eos_id < 0) t->eos_id = eot;
    }
    t->add_dummy_prefix =
        t->kind == TOK_WORDLEVEL || (t->kind == TOK_BPE_SPM && decoder_strips(dec));
    json_decref(root);
    return t;
fail:
    json_decref(root);
    tok_free(t);
    return NULL;
}

static tok_t *load_hf(const char *path) {
    struct stat st;
    char a[4096], b[4096];
    if (stat(path, &st) != 0) {
        err_set("%s: no such file or folder", path);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        if (file_exists(path, "tokenizer.json", a, sizeof a)) return load_tokenizer_json(a);
        if (file_exists(path, "vocab.json", a, sizeof a) &&
            file_exists(path, "merges.txt", b, sizeof b))
            return load_vocab_merges(a, b, path);
        err_set("%s: no tokenizer.json, nor vocab.json + merges.txt, in this folder", path);
        return NULL;
    }
    size_t n = strlen(path);
    if (n >= 10 && !strcmp(path + n - 10, "vocab.json") && (n == 10 || path[n - 11] == '/')) {
        dir_of(path, a, sizeof a);
        if (!file_exists(a, "merges.txt", b, sizeof b)) {
            err_set("%s: no merges.txt beside this vocab.json", path);
            return NULL;
        }
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", a);
        return load_vocab_merges(path, b, dir);
    }
    return load_tokenizer_json(path);
}

/* Every token text at most TOK_PIECE_MAX bytes (the loaders accept any
 * length; a longer one marks a broken file). */
tok_t *tok_load_hf(const char *path) {
    tok_t *t = load_hf(path);
    for (int i = 0; t && i < t->n_vocab; i++)
        if (strlen(t->raw[i]) > TOK_PIECE_MAX) {
            err_set("%s: token %d is %zu bytes long (at most %d accepted)", t->source, i,
                    strlen(t->raw[i]), TOK_PIECE_MAX);
            tok_free(t);
            t = NULL;
        }
    return t;
}
