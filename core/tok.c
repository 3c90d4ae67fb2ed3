/* tok: shared tokenizer machinery and the SentencePiece-score BPE used by
 * llama2.c tokenizer.bin files and GGUF "llama" vocabularies (see tok.h).
 *
 * The merge rule follows llama2.c's run.c (and SentencePiece BPE): repeatedly
 * merge the adjacent pair whose concatenation is a vocabulary piece with the
 * highest score, leftmost first on ties.  We keep candidate pairs in a heap so
 * a long text costs O(n log n), not run.c's O(n^2). */
#include "tok.h"

#include "err.h"
#include "gguf.h"
#include "mfile.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *tok_kind_name(tok_kind_t k) {
    switch (k) {
    case TOK_SPM_SCORE: return "sentencepiece-bpe (scores)";
    case TOK_BPE_BYTES: return "byte-level-bpe";
    case TOK_BPE_SPM: return "sentencepiece-bpe (merges)";
    case TOK_WORDLEVEL: return "word-level";
    }
    return "?";
}

int utf8_len(unsigned char c) {
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0) return 2;
    if ((c & 0xf0) == 0xe0) return 3;
    if ((c & 0xf8) == 0xf0) return 4;
    return 1;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static int utf8_valid_at(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int len;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

int utf8_valid(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        int l = utf8_valid_at(p + i, len - i);
        if (!l) return 0;
        i += (size_t)l;
    }
    return 1;
}

tok_t *tok_alloc(int n_vocab, const char *source) {
    tok_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n_vocab = n_vocab;
    t->piece = calloc((size_t)n_vocab, sizeof *t->piece);
    t->piece_len = calloc((size_t)n_vocab, sizeof *t->piece_len);
    t->raw = calloc((size_t)n_vocab, sizeof *t->raw);
    t->special = calloc((size_t)n_vocab, 1);
    t->source = strdup(source);
    t->bos_id = t->eos_id = t->unk_id = -1;
    for (int i = 0; i < 256; i++)
        t->byte_id[i] = -1;
    strmap_init(&t->raw_to_id);
    strmap_init(&t->merge_rank);
    if (!t->piece || !t->piece_len || !t->raw || !t->special || !t->source) {
        tok_free(t);
        return NULL;
    }
    return t;
}

void tok_free(tok_t *t) {
    if (!t) return;
    for (int i = 0; i < t->n_vocab; i++) {
        if (t->piece) free(t->piece[i]);
        if (t->raw) free(t->raw[i]);
    }
    free(t->piece);
    free(t->piece_len);
    free(t->raw);
    free(t->score);
    free(t->special);
    strmap_free(&t->raw_to_id);
    strmap_free(&t->merge_rank);
    if (t->ext_free) t->ext_free(t->ext);
    free(t->source);
    free(t);
}

static char *dupn(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* "<0xNN>" -> byte value, else -1. */
static int parse_byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    if (!isxdigit((unsigned char)s[3]) || !isxdigit((unsigned char)s[4])) return -1;
    return (int)strtol((char[]){s[3], s[4], 0}, NULL, 16);
}

/* Sets token ID of an SPM vocabulary from its stored string S (spaces already
 * as ' '); IS_BYTE forces the <0xNN> reading. */
static int spm_set(tok_t *t, int id, const char *s, size_t n) {
    t->raw[id] = dupn(s, n);
    if (!t->raw[id]) return err_set("out of memory");
    int b = parse_byte_token(s, n);
    if (b >= 0) {
        if (t->byte_id[b] < 0) t->byte_id[b] = id;
        t->piece[id] = dupn((char[]){(char)b}, 1);
        t->piece_len[id] = 1;
    } else {
        t->piece[id] = dupn(s, n);
        t->piece_len[id] = (int)n;
    }
    if (!t->piece[id]) return err_set("out of memory");
    /* First occurrence wins, as in llama2.c's sorted-vocab lookup of unique pieces. */
    if (strmap_get(&t->raw_to_id, s, n, -1) < 0 && strmap_put(&t->raw_to_id, s, n, id)) return -1;
    return 0;
}

tok_t *tok_load_llama2c(const char *path, int vocab) {
    size_t len;
    if (vocab <= 0 || vocab > (1 << 24)) {
        err_set("%s: vocabulary size %d is out of range", path, vocab);
        return NULL;
    }
    char *buf = mfile_slurp(path, (size_t)1 << 30, &len);
    if (!buf) return NULL;
    /* Each token takes at least 8 bytes: a vocabulary the file cannot hold
     * fails before anything is built for it. */
    if (len < 4 || (len - 4) / 8 < (size_t)vocab) {
        err_set("%s: truncated: %zu bytes cannot hold %d tokens (the model's vocabulary is "
                "larger than the tokenizer's?)",
                path, len, vocab);
        free(buf);
        return NULL;
    }
    tok_t *t = tok_alloc(vocab, path);
    if (!t || !(t->score = calloc((size_t)vocab, sizeof *t->score))) {
        free(buf);
        tok_free(t);
        err_set("%s: out of memory", path);
        return NULL;
    }
    t->kind = TOK_SPM_SCORE;
    size_t pos = 4;
    int32_t maxlen;
    memcpy(&maxlen, buf, 4);
    if (maxlen <= 0 || maxlen > TOK_PIECE_MAX) {
        err_set("%s: max token length %d is not plausible (1..%d; is this a llama2.c "
                "tokenizer.bin?)",
                path, maxlen, TOK_PIECE_MAX);
        goto fail;
    }
    for (int i = 0; i < vocab; i++) {
        int32_t n;
        if (len - pos < 8) {
            err_set("%s: truncated at token %d of %d (the model's vocabulary is larger than the "
                    "tokenizer's)",
                    path, i, vocab);
            goto fail;
        }
        memcpy(&t->score[i], buf + pos, 4);
        memcpy(&n, buf + pos + 4, 4);
        pos += 8;
        if (n < 0 || n > maxlen || (size_t)n > len - pos) {
            err_set("%s: token %d has length %d (max %d, %zu bytes left)", path, i, n, maxlen,
                    len - pos);
            goto fail;
        }
        if (spm_set(t, i, buf + pos, (size_t)n)) {
            err_prefix("%s", path);
            goto fail;
        }
        pos += (size_t)n;
    }
    /* llama2.c conventions: 0 <unk>, 1 <s>, 2 </s>; BOS prepended; a dummy space. */
    t->unk_id = 0;
    t->bos_id = vocab > 1 ? 1 : -1;
    t->eos_id = vocab > 2 ? 2 : -1;
    for (int i = 0; i < 3 && i < vocab; i++)
        t->special[i] = 1;
    t->add_bos = 1;
    t->add_dummy_prefix = 1;
    free(buf);
    return t;
fail:
    free(buf);
    tok_free(t);
    return NULL;
}

tok_t *tok_from_gguf(const void *gp) {
    const gguf_t *g = gp;
    const char *path = g->file->path;
    const char *model;
    uint64_t mlen;
    if (gguf_get_str(g, "tokenizer.ggml.model", &model, &mlen)) {
        err_set("%s: no tokenizer inside (metadata 'tokenizer.ggml.model' is missing); pass "
                "--tokenizer",
                path);
        return NULL;
    }
    if (!(mlen == 5 && memcmp(model, "llama", 5) == 0)) {
        err_set("%s: embedded tokenizer model '%.*s' is not supported (only 'llama'); pass "
                "--tokenizer with the model's tokenizer.json",
                path, (int)(mlen > 64 ? 64 : mlen), model);
        return NULL;
    }
    const gguf_kv_t *toks = gguf_find(g, "tokenizer.ggml.tokens");
    const gguf_kv_t *scores = gguf_find(g, "tokenizer.ggml.scores");
    const gguf_kv_t *types = gguf_find(g, "tokenizer.ggml.token_type");
    if (!toks || toks->type != GGUF_T_ARRAY || toks->arr_type != GGUF_T_STRING ||
        toks->arr_n == 0 || toks->arr_n > (1 << 24)) {
        err_set("%s: 'tokenizer.ggml.tokens' is missing or not a string array", path);
        return NULL;
    }
    int n = (int)toks->arr_n;
    if (scores && (scores->type != GGUF_T_ARRAY || scores->arr_type == GGUF_T_STRING ||
                   scores->arr_n != toks->arr_n)) {
        err_set("%s: 'tokenizer.ggml.scores' does not match the %d tokens", path, n);
        return NULL;
    }
    if (types && (types->type != GGUF_T_ARRAY || types->arr_type == GGUF_T_STRING ||
                  types->arr_n != toks->arr_n)) {
        err_set("%s: 'tokenizer.ggml.token_type' does not match the %d tokens", path, n);
        return NULL;
    }
    tok_t *t = tok_alloc(n, path);
    if (!t || !(t->score = calloc((size_t)n, sizeof *t->score))) {
        tok_free(t);
        err_set("%s: out of memory", path);
        return NULL;
    }
    t->kind = TOK_SPM_SCORE;
    const uint8_t *cur = NULL;
    char *tmp = NULL;
    for (int i = 0; i < n; i++) {
        const char *s;
        uint64_t len;
        gguf_arr_str_next(toks, &cur, &s, &len);
        if (len > TOK_PIECE_MAX) {
            err_set("%s: token %d is %llu bytes long (at most %d accepted)", path, i,
                    (unsigned long long)len, TOK_PIECE_MAX);
            goto fail;
        }
        /* "▁" (U+2581, E2 96 81) stands for a space. */
        char *p = realloc(tmp, len + 1);
        if (!p) {
            err_set("%s: out of memory", path);
            goto fail;
        }
        tmp = p;
        size_t k = 0;
        for (uint64_t j = 0; j < len;) {
            if (j + 2 < len && (uint8_t)s[j] == 0xe2 && (uint8_t)s[j + 1] == 0x96 &&
                (uint8_t)s[j + 2] == 0x81) {
                tmp[k++] = ' ';
                j += 3;
            } else {
                tmp[k++] = s[j++];
            }
        }
        int type = types ? (int)gguf_arr_num(types, (uint64_t)i) : 1;
        if (type == 6 && parse_byte_token(tmp, k) < 0) {
            err_set("%s: token %d is marked as a byte but reads '%.*s'", path, i, (int)k, tmp);
            goto fail;
        }
        if (spm_set(t, i, tmp, k)) goto fail;
        t->score[i] = scores ? (float)gguf_arr_num(scores, (uint64_t)i) : 0.0f;
        /* token types (llama.cpp): 1 normal, 2 unknown, 3 control, 4 user, 5 unused, 6 byte */
        t->special[i] = (type == 2 || type == 3 || type == 5);
    }
    free(tmp);
    tmp = NULL;
    int64_t v;
    t->bos_id =
        gguf_get_int(g, "tokenizer.ggml.bos_token_id", &v) == 0 && v >= 0 && v < n ? (int)v : -1;
    t->eos_id =
        gguf_get_int(g, "tokenizer.ggml.eos_token_id", &v) == 0 && v >= 0 && v < n ? (int)v : -1;
    t->unk_id = gguf_get_int(g, "tokenizer.ggml.unknown_token_id", &v) == 0 && v >= 0 && v < n
                    ? (int)v
                    : -1;
    t->add_bos = 1;
    if (gguf_get_int(g, "tokenizer.ggml.add_bos_token", &v) == 0) t->add_bos = v != 0;
    t->add_dummy_prefix = 1;
    err_clear();
    return t;
fail:
    free(tmp);
    tok_free(t);
    return NULL;
}

tok_t *tok_load(const char *path, int vocab_hint) {
    struct stat st;
    if (stat(path, &st) != 0) {
        err_set("%s: no such tokenizer file", path);
        return NULL;
    }
    size_t n = strlen(path);
    if (S_ISDIR(st.st_mode) || (n >= 5 && strcmp(path + n - 5, ".json") == 0))
        return tok_load_hf(path);
    return tok_load_llama2c(path, vocab_hint);
}

/* ---- SPM score BPE ---------------------------------------------------- */

typedef struct {
    float score;
    int left;     /* symbol index */
    int lid, rid; /* ids when pushed: a stale entry no longer matches */
    int merged;   /* resulting id */
} cand_t;

typedef struct {
    cand_t *a;
    int n, cap;
} heap_t;

static int cand_better(const cand_t *x, const cand_t *y) {
    return x->score > y->score || (x->score == y->score && x->left < y->left);
}

static int heap_push(heap_t *h, cand_t c) {
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 64;
        cand_t *p = realloc(h->a, (size_t)cap * sizeof *p);
        if (!p) return -1;
        h->a = p;
        h->cap = cap;
    }
    int i = h->n++;
    while (i > 0 && cand_better(&c, &h->a[(i - 1) / 2])) {
        h->a[i] = h->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->a[i] = c;
    return 0;
}

static cand_t heap_pop(heap_t *h) {
    cand_t top = h->a[0], last = h->a[--h->n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && cand_better(&h->a[c + 1], &h->a[c])) c++;
        if (!cand_better(&h->a[c], &last)) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n) h->a[i] = last;
    return top;
}

typedef struct {
    int id, prev, next;
} sym_t;

static int spm_try_pair(const tok_t *t, sym_t *sy, int i, heap_t *h, char **buf, size_t *cap) {
    if (i < 0) return 0;
    int j = sy[i].next;
    if (j < 0) return 0;
    const char *a = t->raw[sy[i].id], *b = t->raw[sy[j].id];
    size_t la = strlen(a), lb = strlen(b);
    if (la + lb + 1 > *cap) {
        size_t nc = (la + lb + 1) * 2;
        char *p = realloc(*buf, nc);
        if (!p) return -1;
        *buf = p;
        *cap = nc;
    }
    memcpy(*buf, a, la);
    memcpy(*buf + la, b, lb);
    int id = strmap_get(&t->raw_to_id, *buf, la + lb, -1);
    if (id < 0 || t->special[id]) return 0;
    return heap_push(h, (cand_t){t->score[id], i, sy[i].id, sy[j].id, id});
}

static int encode_spm_score(const tok_t *t, const char *text, size_t len, int *out, int *n_out) {
    /* Symbols: the dummy-prefix space, then each UTF-8 character as a piece
     * if the vocabulary has it, else its bytes through <0xNN> fallback. */
    size_t cap_sym = len + 2;
    sym_t *sy = malloc(cap_sym * sizeof *sy);
    heap_t h = {0};
    char *buf = NULL;
    size_t bcap = 0;
    int ns = 0, rc = -1;
    if (!sy) goto done;
    if (t->add_dummy_prefix && len > 0) {
        int id = strmap_get(&t->raw_to_id, " ", 1, -1);
        if (id >= 0) sy[ns++].id = id;
    }
    for (size_t i = 0; i < len;) {
        int l = utf8_len((unsigned char)text[i]);
        if (i + (size_t)l > len) l = 1;
        int id = strmap_get(&t->raw_to_id, text + i, (size_t)l, -1);
        if (id >= 0 && !t->special[id]) {
            sy[ns++].id = id;
        } else {
            for (int k = 0; k < l; k++) {
                int b = t->byte_id[(unsigned char)text[i + k]];
                if (b < 0) b = t->unk_id;
                if (b < 0) {
                    err_set("%s: cannot encode byte 0x%02x (no byte fallback and no <unk>)",
                            t->source, (unsigned char)text[i + k]);
                    goto done;
                }
                sy[ns++].id = b;
            }
        }
        i += (size_t)l;
    }
    for (int i = 0; i < ns; i++) {
        sy[i].prev = i - 1;
        sy[i].next = i + 1 < ns ? i + 1 : -1;
    }
    for (int i = 0; i + 1 < ns; i++)
        if (spm_try_pair(t, sy, i, &h, &buf, &bcap)) goto oom;
    while (h.n) {
        cand_t c = heap_pop(&h);
        int i = c.left, j = sy[i].next;
        if (sy[i].id != c.lid || j < 0 || sy[j].id != c.rid || sy[i].id < 0) continue; /* stale */
        sy[i].id = c.merged;
        sy[i].next = sy[j].next;
        if (sy[j].next >= 0) sy[sy[j].next].prev = i;
        sy[j].id = -1;
        if (spm_try_pair(t, sy, sy[i].prev, &h, &buf, &bcap) ||
            spm_try_pair(t, sy, i, &h, &buf, &bcap))
            goto oom;
    }
    for (int i = ns ? 0 : -1; i >= 0; i = sy[i].next)
        out[(*n_out)++] = sy[i].id;
    rc = 0;
    goto done;
oom:
    err_set("out of memory");
done:
    free(sy);
    free(h.a);
    free(buf);
    return rc;
}

/* Implemented by tok_hf.c for the merge-rank kinds: appends to *OUT, which
 * has *CAP entries and is grown with realloc (added tokens and a "▁" prepended
 * to each piece between them can make more tokens than bytes). */
int tok_hf_encode(const tok_t *t, const char *text, size_t len, int flags, int **out, int *n_out,
                  size_t *cap);

static size_t g_max_tokens = TOK_DEFAULT_MAX_TOKENS;
void tok_set_max_tokens(size_t max_tokens) { g_max_tokens = max_tokens; }
size_t tok_max_tokens(void) { return g_max_tokens; }

int tok_encode(const tok_t *t, const char *text, size_t len, int flags, int **ids, int *n) {
    *ids = NULL;
    *n = 0;
    /* Before any work: the encoders' memory grows with LEN (and their int
     * counters must not overflow). */
    size_t maxt = g_max_tokens;
    if (len > ((size_t)1 << 30))
        return err_set("text of %zu bytes is too long (the limit is 1 GiB)", len);
    if (maxt && len / TOK_BYTES_PER_TOKEN > maxt)
        return err_set("text of %zu bytes is too long for the limit of %zu tokens (%d bytes a "
                       "token at most; probe's --max-tokens)",
                       len, maxt, TOK_BYTES_PER_TOKEN);
    if (!utf8_valid(text, len)) {
        size_t bad = 0;
        while (bad < len) {
            int l = utf8_valid_at((const unsigned char *)text + bad, len - bad);
            if (!l) break;
            bad += (size_t)l;
        }
        return err_set("text is not valid UTF-8 (bad byte 0x%02x at offset %zu)",
                       (unsigned char)text[bad], bad);
    }
    /* SPM-score encoding makes at most one token per byte, plus BOS and a
     * dummy prefix; tok_hf_encode grows the buffer when it needs more. */
    size_t cap = len + 4;
    int *out = malloc(cap * sizeof *out);
    if (!out) return err_set("out of memory");
    int cnt = 0;
    if ((flags & TOK_ADD_BOS) && t->bos_id >= 0) out[cnt++] = t->bos_id;
    int rc = t->kind == TOK_SPM_SCORE ? encode_spm_score(t, text, len, out, &cnt)
                                      : tok_hf_encode(t, text, len, flags, &out, &cnt, &cap);
    if (rc) {
        free(out);
        return -1;
    }
    if (maxt && (size_t)cnt > maxt) {
        free(out);
        return err_set("text encodes to %d tokens, more than the limit of %zu (probe's "
                       "--max-tokens)",
                       cnt, maxt);
    }
    *ids = out;
    *n = cnt;
    return 0;
}

const char *tok_piece(const tok_t *t, int id, int *len) {
    if (id < 0 || id >= t->n_vocab) {
        *len = 0;
        return "";
    }
    *len = t->piece_len[id];
    return t->piece[id];
}

const char *tok_decode_next(const tok_t *t, int prev_id, int id, int *len) {
    const char *p = tok_piece(t, id, len);
    if (id < 0 || id >= t->n_vocab || t->special[id]) {
        *len = 0;
        return "";
    }
    /* SentencePiece drops the dummy-prefix space of the first piece (after BOS,
     * or at the very start when there is no BOS: prev_id < 0). */
    if (t->add_dummy_prefix && (prev_id == t->bos_id || prev_id < 0) && *len > 0 && p[0] == ' ') {
        p++;
        (*len)--;
    }
    return p;
}

char *tok_display(const tok_t *t, int id, char *buf, size_t cap) {
    int len;
    const unsigned char *p = (const unsigned char *)tok_piece(t, id, &len);
    size_t k = 0;
    if (cap == 0) return buf;
    if (id < 0 || id >= t->n_vocab) {
        snprintf(buf, cap, "<id %d>", id);
        return buf;
    }
    if (t->special[id]) {
        snprintf(buf, cap, "%s", t->raw[id] && t->raw[id][0] ? t->raw[id] : "<special>");
        /* llama2.c stores "\n<s>\n": show the bare name. */
        char *s = buf;
        while (*s == '\n')
            memmove(s, s + 1, strlen(s));
        size_t l = strlen(buf);
        while (l && buf[l - 1] == '\n')
            buf[--l] = '\0';
        return buf;
    }
    for (int i = 0; i < len;) {
        char tmp[16];
        int l = utf8_valid_at(p + i, (size_t)(len - i));
        int w;
        if (l == 1 && p[i] == '\n')
            w = snprintf(tmp, sizeof tmp, "\\n");
        else if (l == 1 && p[i] == '\t')
            w = snprintf(tmp, sizeof tmp, "\\t");
        else if (l == 1 && p[i] == '\r')
            w = snprintf(tmp, sizeof tmp, "\\r");
        else if (l == 0 || (l == 1 && (p[i] < 0x20 || p[i] == 0x7f))) {
            w = snprintf(tmp, sizeof tmp, "<0x%02X>", p[i]);
            l = 1;
        } else {
            w = l;
            memcpy(tmp, p + i, (size_t)l);
        }
        if (k + (size_t)w + 1 > cap) break;
        memcpy(buf + k, tmp, (size_t)w);
        k += (size_t)w;
        i += l;
    }
    buf[k] = '\0';
    return buf;
}

int tok_lookup_text(const tok_t *t, const char *text) {
    size_t n = strlen(text);
    for (int i = 0; i < t->n_vocab; i++)
        if (!t->special[i] && (size_t)t->piece_len[i] == n && memcmp(t->piece[i], text, n) == 0)
            return i;
    return -1;
}
