/* Tokenizer tests against independent references: tiktoken (GPT-2),
 * SentencePiece and Hugging Face tokenizers (Llama 2, Mistral) in
 * ../shared/reference/tokenizer/ (JSON Lines); decoding round trips; the
 * pre-tokenizer and model variants on small hand-made tokenizer.json files;
 * the `probe tokenize` command end to end; and bad files. */
#include "tutil.h"

#include "core/err.h"
#include "core/tok.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REF "reference/tokenizer/"
#define TOKS "tokenizers/"

/* ---- helpers ----------------------------------------------------------------- */

typedef struct {
    json_t **row;
    int n;
} ref_t;

static ref_t ref_load(const char *rel) {
    ref_t r = {0};
    char *s = tu_slurp(tu_sharedp(rel), NULL);
    cr_assert(s, "cannot read %s", tu_sharedp(rel));
    for (char *p = s, *e; *p; p = e + 1) {
        e = strchr(p, '\n');
        if (!e) e = p + strlen(p);
        json_error_t je;
        json_t *j = json_loadb(p, (size_t)(e - p), 0, &je);
        cr_assert(j, "%s: line %d: %s", rel, r.n + 1, je.text);
        r.row = realloc(r.row, (size_t)(r.n + 1) * sizeof *r.row);
        r.row[r.n++] = j;
        if (!*e) break;
    }
    free(s);
    cr_assert_gt(r.n, 100, "%s: only %d lines", rel, r.n);
    return r;
}

static void ref_free(ref_t *r) {
    for (int i = 0; i < r->n; i++)
        json_decref(r->row[i]);
    free(r->row);
}

static const char *ref_text(const ref_t *r, int i, size_t *len) {
    json_t *t = json_object_get(r->row[i], "text");
    *len = json_string_length(t);
    return json_string_value(t);
}

static tok_t *load(const char *path) {
    tok_t *t = tok_load_hf(path);
    cr_assert(t, "load %s: %s", path, err_msg());
    return t;
}

static int ids_equal(const json_t *want, const int *ids, int n) {
    if (!json_is_array(want) || (int)json_array_size(want) != n) return 0;
    for (int i = 0; i < n; i++)
        if (json_integer_value(json_array_get(want, (size_t)i)) != ids[i]) return 0;
    return 1;
}

static void print_mismatch(const char *what, const char *text, const json_t *want, const int *ids,
                           int n) {
    char *w = json_dumps(want, JSON_COMPACT);
    fprintf(stderr, "%s: text %.60s\n  want %s\n  got  [", what, text, w);
    for (int i = 0; i < n; i++)
        fprintf(stderr, "%s%d", i ? "," : "", ids[i]);
    fprintf(stderr, "]\n");
    free(w);
}

/* Encodes row I with FLAGS and compares with WANT; prints a mismatch. */
static int check_row(const tok_t *t, const ref_t *r, int i, int flags, const json_t *want,
                     const char *what) {
    size_t len;
    const char *text = ref_text(r, i, &len);
    int *ids, n;
    cr_assert_eq(tok_encode(t, text, len, flags, &ids, &n), 0, "%s: encode failed: %s", what,
                 err_msg());
    int ok = ids_equal(want, ids, n);
    if (!ok) print_mismatch(what, text, want, ids, n);
    free(ids);
    return ok;
}

/* Number of rows whose FIELD ids t gives with FLAGS. */
static int agree(const tok_t *t, const ref_t *r, int flags, const char *field, const char *what) {
    int ok = 0;
    for (int i = 0; i < r->n; i++)
        ok += check_row(t, r, i, flags, json_object_get(r->row[i], field), what);
    return ok;
}

/* Concatenated pieces of the ids of TEXT; the first piece as tok_decode_next
 * gives it after BOS when AFTER_BOS.  Caller frees. */
static char *decode(const tok_t *t, const char *text, size_t len, int after_bos, size_t *out_len) {
    int *ids, n;
    cr_assert_eq(tok_encode(t, text, len, 0, &ids, &n), 0, "%s", err_msg());
    size_t cap = 16, k = 0;
    for (int i = 0; i < n; i++)
        cap += (size_t)t->piece_len[ids[i]];
    char *s = malloc(cap);
    for (int i = 0; i < n; i++) {
        int l;
        const char *p = after_bos ? tok_decode_next(t, i ? ids[i - 1] : t->bos_id, ids[i], &l)
                                  : tok_piece(t, ids[i], &l);
        memcpy(s + k, p, (size_t)l);
        k += (size_t)l;
    }
    s[k] = '\0';
    *out_len = k;
    free(ids);
    return s;
}

static int encode_list(const tok_t *t, const char *text, int flags, const int *want, int n_want) {
    int *ids, n;
    cr_assert_eq(tok_encode(t, text, strlen(text), flags, &ids, &n), 0, "'%s': %s", text,
                 err_msg());
    int ok = n == n_want;
    for (int i = 0; ok && i < n; i++)
        ok = ids[i] == want[i];
    if (!ok) {
        fprintf(stderr, "'%s' (flags %d): got [", text, flags);
        for (int i = 0; i < n; i++)
            fprintf(stderr, "%s%d", i ? "," : "", ids[i]);
        fprintf(stderr, "], want [");
        for (int i = 0; i < n_want; i++)
            fprintf(stderr, "%s%d", i ? "," : "", want[i]);
        fprintf(stderr, "]\n");
    }
    free(ids);
    return ok;
}
#define EXPECT_IDS(t, text, flags, ...)                                                            \
    do {                                                                                           \
        static const int w_[] = {__VA_ARGS__};                                                     \
        cr_expect(encode_list(t, text, flags, w_, (int)(sizeof w_ / sizeof *w_)), "ids of '%s'",   \
                  text);                                                                           \
    } while (0)

static char *write_file(const char *dir, const char *name, const char *content) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    cr_assert(f, "cannot write %s", p);
    fputs(content, f);
    fclose(f);
    return p;
}

/* Loading must fail with a message containing every NEEDLE (NULL-terminated). */
static void expect_load_error(const char *path, const char *needle, ...) {
    tok_t *t = tok_load_hf(path);
    cr_expect_null(t, "%s loaded but should not have", path);
    tok_free(t);
    const char *msg = err_msg();
    va_list ap;
    va_start(ap, needle);
    for (const char *s = needle; s; s = va_arg(ap, const char *))
        cr_expect(strstr(msg, s), "error for %s lacks '%s': %s", path, s, msg);
    va_end(ap);
}

/* ---- GPT-2 --------------------------------------------------------------------- */

static void check_gpt2(const char *rel) {
    tok_t *t = load(tu_sharedp(rel));
    ref_t r = ref_load(REF "gpt2.jsonl");
    cr_expect_eq(t->kind, TOK_BPE_BYTES);
    cr_expect_eq(t->add_bos, 0, "GPT-2 adds no BOS");
    int a = agree(t, &r, 0, "ids", rel), b = agree(t, &r, TOK_SPECIAL, "ids_special", rel);
    fprintf(stderr, "tokenize: gpt2 %s: ids %d/%d, ids_special %d/%d\n", rel, a, r.n, b, r.n);
    cr_expect_eq(a, r.n, "%s: %d/%d rows match tiktoken encode_ordinary", rel, a, r.n);
    cr_expect_eq(b, r.n, "%s: %d/%d rows match tiktoken with specials", rel, b, r.n);
    ref_free(&r);
    tok_free(t);
}

Test(tokenize, gpt2_vocab_merges) { check_gpt2(TOKS "gpt2/vocab.json"); }
Test(tokenize, gpt2_tokenizer_json) { check_gpt2(TOKS "gpt2/tokenizer.json"); }

Test(tokenize, gpt2_eiffel) {
    tok_t *t = load(tu_sharedp(TOKS "gpt2"));
    EXPECT_IDS(t, "The Eiffel Tower is in", 0, 464, 412, 733, 417, 8765, 318, 287);
    EXPECT_IDS(t, "The Eiffel Tower is in", TOK_ADD_BOS, 50256, 464, 412, 733, 417, 8765, 318, 287);
    EXPECT_IDS(t, "<|endoftext|>", TOK_SPECIAL, 50256);
    cr_expect_eq(t->eos_id, 50256);
    tok_free(t);
}

Test(tokenize, gpt2_decode_roundtrip) {
    const char *files[] = {TOKS "gpt2/vocab.json", TOKS "gpt2/tokenizer.json"};
    ref_t r = ref_load(REF "gpt2.jsonl");
    for (int f = 0; f < 2; f++) {
        tok_t *t = load(tu_sharedp(files[f]));
        for (int i = 0; i < r.n; i++) {
            size_t len, dl;
            const char *text = ref_text(&r, i, &len);
            char *d = decode(t, text, len, 0, &dl);
            cr_expect(dl == len && memcmp(d, text, len) == 0, "%s: decode('%.40s') = '%.40s'",
                      files[f], text, d);
            free(d);
        }
        tok_free(t);
    }
    ref_free(&r);
}

/* The same GPT-2 files rewritten as a Llama-3-style tokenizer.json:
 * Sequence[Split(regex, Isolated), ByteLevel(use_regex false)] and merges as
 * [a, b] pairs.  Must give the very same ids. */
Test(tokenize, regex_split_bytelevel_and_pair_merges) {
    json_error_t e;
    json_t *j = json_load_file(tu_sharedp(TOKS "gpt2/tokenizer.json"), 0, &e);
    cr_assert(j, "%s", e.text);
    const char *pat =
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
    json_t *pre = json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b, s:b}]}", "type",
                            "Sequence", "pretokenizers", "type", "Split", "pattern", "Regex", pat,
                            "behavior", "Isolated", "invert", 0, "type", "ByteLevel",
                            "add_prefix_space", 0, "trim_offsets", 1, "use_regex", 0);
    cr_assert(pre);
    json_object_set_new(j, "pre_tokenizer", pre);
    json_t *model = json_object_get(j, "model"), *pairs = json_array(), *m;
    size_t i;
    json_array_foreach(json_object_get(model, "merges"), i, m) {
        const char *s = json_string_value(m), *sp = strchr(s, ' ');
        json_array_append_new(pairs, json_pack("[s%, s]", s, (size_t)(sp - s), sp + 1));
    }
    json_object_set_new(model, "merges", pairs);
    json_object_set_new(model, "type", json_string("BPE"));
    char *dir = tu_tmpdir(), path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    cr_assert_eq(json_dump_file(j, path, JSON_COMPACT), 0);
    json_decref(j);
    tok_t *t = load(path);
    ref_t r = ref_load(REF "gpt2.jsonl");
    int a = agree(t, &r, 0, "ids", "split+bytelevel"),
        b = agree(t, &r, TOK_SPECIAL, "ids_special", "split+bytelevel");
    cr_expect_eq(a, r.n, "Split+ByteLevel: %d/%d", a, r.n);
    cr_expect_eq(b, r.n, "Split+ByteLevel with specials: %d/%d", b, r.n);
    ref_free(&r);
    tok_free(t);
    remove(path);
    rmdir(dir);
    free(dir);
}

/* ByteLevel add_prefix_space: "The" is encoded as " The" would be. */
Test(tokenize, bytelevel_add_prefix_space) {
    json_error_t e;
    json_t *j = json_load_file(tu_sharedp(TOKS "gpt2/tokenizer.json"), 0, &e);
    cr_assert(j, "%s", e.text);
    json_object_set_new(json_object_get(j, "pre_tokenizer"), "add_prefix_space", json_true());
    char *dir = tu_tmpdir(), path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    cr_assert_eq(json_dump_file(j, path, JSON_COMPACT), 0);
    json_decref(j);
    tok_t *t = load(path);
    EXPECT_IDS(t, "The Eiffel", 0, 383, 412, 733, 417); /* " The" = 383 */
    EXPECT_IDS(t, " The", 0, 383);                      /* a leading space is not doubled */
    tok_free(t);
    remove(path);
    /* vocab.json + merges.txt take it from tokenizer_config.json. */
    char src[4200], dst[4200];
    const char *names[] = {"vocab.json", "merges.txt"};
    for (int i = 0; i < 2; i++) {
        snprintf(src, sizeof src, "%s", tu_sharedp(TOKS "gpt2/"));
        snprintf(dst, sizeof dst, "%s/%s", dir, names[i]);
        cr_assert_eq(tu_runf(NULL, NULL, "cp %s%s %s", src, names[i], dst), 0);
    }
    char *c = write_file(dir, "tokenizer_config.json", "{\"add_prefix_space\": true}");
    t = load(dir);
    EXPECT_IDS(t, "The Eiffel", 0, 383, 412, 733, 417);
    tok_free(t);
    remove(c);
    free(c);
    for (int i = 0; i < 2; i++) {
        snprintf(dst, sizeof dst, "%s/%s", dir, names[i]);
        remove(dst);
    }
    rmdir(dir);
    free(dir);
}

/* Llama 3's and Qwen2's split patterns compile with PCRE2 and group digits
 * by three (Llama 3) or one (Qwen2); ignore_merges takes a whole word that
 * is in the vocabulary as is. */
static tok_t *digits_tok(const char *dir, const char *pattern, int ignore_merges) {
    json_t *j = json_pack(
        "{s:{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b}]},"
        " s:{s:s, s:b, s:{si si si si si si si si si si si si si si}, s:[sssss]}}",
        "pre_tokenizer", "type", "Sequence", "pretokenizers", "type", "Split", "pattern", "Regex",
        pattern, "behavior", "Isolated", "invert", 0, "type", "ByteLevel", "add_prefix_space", 0,
        "use_regex", 0, "model", "type", "BPE", "ignore_merges", ignore_merges, "vocab", "1", 0,
        "2", 1, "3", 2, "4", 3, "5", 4, "12", 5, "123", 6, "45", 7, "1234", 8, "a", 9, "b", 10, "c",
        11, "abc", 12, "bc", 13, "merges", "1 2", "12 3", "123 4", "4 5", "b c");
    cr_assert(j);
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    cr_assert_eq(json_dump_file(j, path, JSON_COMPACT), 0);
    json_decref(j);
    tok_t *t = load(path);
    remove(path);
    return t;
}

Test(tokenize, llama3_qwen2_patterns) {
    const char *llama3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                         "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    const char *qwen2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                        "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    char *dir = tu_tmpdir();
    tok_t *t = digits_tok(dir, llama3, 0);
    EXPECT_IDS(t, "12345", 0, 6, 7); /* "123" "45"; unsplit it would be 1234 5 */
    EXPECT_IDS(t, "abc", 0, 9, 13);  /* merges: a bc */
    tok_free(t);
    t = digits_tok(dir, qwen2, 0);
    EXPECT_IDS(t, "12345", 0, 0, 1, 2, 3, 4);
    tok_free(t);
    t = digits_tok(dir, llama3, 1);
    EXPECT_IDS(t, "abc", 0, 12); /* ignore_merges: the word is in the vocabulary */
    EXPECT_IDS(t, "12345", 0, 6, 7);
    tok_free(t);
    rmdir(dir);
    free(dir);
}

/* ---- Llama 2 and Mistral --------------------------------------------------------- */

/* SentencePiece encodes the literal texts <s>, </s>, <unk> as plain text; the
 * HF tokenizer.json treats them as special tokens.  Without TOK_SPECIAL we
 * are SentencePiece; with it we are HF, whose ids for such rows are in
 * ids_hf_tokenizer_json (for Llama 2, "<unk> <s> </s>" -> [0, 1, 2]: the
 * added tokens are "normalized", so their patterns are "▁<unk>", "▁<s>",
 * "▁</s>" and swallow the "▁" before each). */
Test(tokenize, llama2_tokenizer_json) {
    tok_t *t = load(tu_sharedp(TOKS "llama2/tokenizer.json"));
    ref_t r = ref_load(REF "llama2.jsonl");
    cr_expect_eq(t->kind, TOK_BPE_SPM);
    cr_expect_eq(t->bos_id, 1);
    cr_expect_eq(t->add_bos, 1);
    int a = agree(t, &r, 0, "ids", "llama2 ids"),
        b = agree(t, &r, TOK_ADD_BOS, "ids_bos", "llama2 ids_bos");
    int c = 0, n_hf = 0;
    for (int i = 0; i < r.n; i++) {
        json_t *hf = json_object_get(r.row[i], "ids_hf_tokenizer_json");
        n_hf += hf != NULL;
        c += check_row(t, &r, i, TOK_SPECIAL, hf ? hf : json_object_get(r.row[i], "ids"),
                       "llama2 hf");
    }
    fprintf(
        stderr,
        "tokenize: llama2 tokenizer.json: SentencePiece ids %d/%d, ids_bos %d/%d; with --special "
        "vs HF ids %d/%d (%d rows where HF differs)\n",
        a, r.n, b, r.n, c, r.n, n_hf);
    cr_expect_eq(a, r.n);
    cr_expect_eq(b, r.n);
    cr_expect_eq(c, r.n);
    cr_expect_geq(n_hf, 1, "the reference should hold the <unk> <s> </s> row");
    EXPECT_IDS(t, "<unk> <s> </s>", TOK_SPECIAL, 0, 1, 2);
    ref_free(&r);
    tok_free(t);
}

Test(tokenize, llama2_decode_roundtrip) {
    tok_t *t = load(tu_sharedp(TOKS "llama2/tokenizer.json"));
    cr_expect_eq(t->add_dummy_prefix, 1);
    ref_t r = ref_load(REF "llama2.jsonl");
    for (int i = 0; i < r.n; i++) {
        size_t len, dl;
        const char *text = ref_text(&r, i, &len);
        char *d = decode(t, text, len, 1, &dl);
        cr_expect(dl == len && memcmp(d, text, len) == 0, "decode('%.40s') = '%.40s'", text, d);
        free(d);
    }
    ref_free(&r);
    tok_free(t);
}

/* Mistral's tokenizer.json: Metaspace prepend_scheme "first".  Must equal
 * HF's ids everywhere; SentencePiece's where HF does not differ. */
Test(tokenize, mistral_tokenizer_json) {
    tok_t *t = load(tu_sharedp(TOKS "mistral/tokenizer.json"));
    ref_t r = ref_load(REF "mistral.jsonl");
    int hf_ok = 0, sp_special = 0, sp_plain = 0, n_hf = 0;
    for (int i = 0; i < r.n; i++) {
        json_t *hf = json_object_get(r.row[i], "ids_hf_tokenizer_json"),
               *sp = json_object_get(r.row[i], "ids");
        n_hf += hf != NULL;
        hf_ok += check_row(t, &r, i, TOK_SPECIAL, hf ? hf : sp, "mistral vs HF");
        /* Disagreeing with SentencePiece is expected (and not printed) where HF differs. */
        if (!hf) {
            sp_special += check_row(t, &r, i, TOK_SPECIAL, sp, "mistral vs SentencePiece");
        } else {
            size_t len;
            const char *text = ref_text(&r, i, &len);
            int *ids, n;
            cr_assert_eq(tok_encode(t, text, len, TOK_SPECIAL, &ids, &n), 0);
            sp_special += ids_equal(sp, ids, n);
            free(ids);
        }
        size_t len;
        const char *text = ref_text(&r, i, &len);
        int *ids, n;
        cr_assert_eq(tok_encode(t, text, len, 0, &ids, &n), 0);
        sp_plain += ids_equal(sp, ids, n);
        free(ids);
    }
    fprintf(stderr,
            "tokenize: mistral tokenizer.json: HF ids %d/%d (HF differs from SentencePiece on %d "
            "rows); "
            "agreement with SentencePiece ids: %d/%d with --special, %d/%d without\n",
            hf_ok, r.n, n_hf, sp_special, r.n, sp_plain, r.n);
    cr_expect_eq(hf_ok, r.n);
    cr_expect_eq(sp_special, r.n - n_hf, "SentencePiece agreement %d, expected %d", sp_special,
                 r.n - n_hf);
    /* prepend_scheme "first": no "▁" before a leading space, nor after a special token. */
    EXPECT_IDS(t, " Hello", 0, 22557);
    EXPECT_IDS(t, "Hello", 0, 22557);
    int *ids, n;
    cr_assert_eq(tok_encode(t, "<s>Hello", 8, TOK_SPECIAL, &ids, &n), 0);
    cr_expect(n >= 2 && ids[0] == 1 && t->piece[ids[1]][0] != ' ', "'<s>Hello': 'Hello' got a '▁'");
    free(ids);
    ref_free(&r);
    tok_free(t);
}

/* ---- small hand-made tokenizer.json files --------------------------------------------- */

static const char *SMALL_VOCAB = "\"vocab\": {\"<unk>\": 0, \"\\u2581\": 1, \"a\": 2, \"b\": 3, "
                                 "\"\\u2581a\": 4, \"\\u2581b\": 5, \"<s>\": 6},"
                                 "\"merges\": [\"\\u2581 a\", \"\\u2581 b\"]";

static tok_t *small_metaspace(const char *dir, const char *scheme, int split, int fuse_unk) {
    char json[2048];
    snprintf(json, sizeof json,
             "{\"added_tokens\": [{\"id\": 6, \"content\": \"<s>\", \"special\": true, "
             "\"normalized\": false}],"
             " \"normalizer\": null,"
             " \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"\\u2581\", "
             "\"prepend_scheme\": \"%s\","
             " \"split\": %s},"
             " \"decoder\": {\"type\": \"Metaspace\", \"replacement\": \"\\u2581\", "
             "\"prepend_scheme\": \"%s\"},"
             " \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": %s, %s}}",
             scheme, split ? "true" : "false", scheme, fuse_unk ? "true" : "false", SMALL_VOCAB);
    char *p = write_file(dir, "tokenizer.json", json);
    tok_t *t = load(p);
    free(p);
    return t;
}

Test(tokenize, metaspace_prepend_schemes) {
    char *dir = tu_tmpdir();
    tok_t *t = small_metaspace(dir, "always", 1, 1);
    cr_expect_eq(t->kind, TOK_BPE_SPM);
    EXPECT_IDS(t, "a b", 0, 4, 5);
    EXPECT_IDS(t, " a", 0, 4);
    EXPECT_IDS(t, "<s>a", TOK_SPECIAL, 6, 4); /* always: every piece */
    EXPECT_IDS(t, "cc a", 0, 1, 0, 4);        /* unknown run fused into one <unk> */
    tok_free(t);
    t = small_metaspace(dir, "first", 1, 0);
    EXPECT_IDS(t, "a b", 0, 4, 5);
    EXPECT_IDS(t, "<s>a", TOK_SPECIAL, 6, 2); /* first: only at offset 0 */
    EXPECT_IDS(t, "cc", 0, 1, 0, 0);          /* fuse_unk false: one <unk> each */
    EXPECT_IDS(t, "<s>", 0, 1, 0, 0, 0);      /* special text as plain text: ▁ and 3 unknowns */
    tok_free(t);
    t = small_metaspace(dir, "never", 0, 1);
    EXPECT_IDS(t, "a b", 0, 2, 5);
    cr_expect_eq(t->add_dummy_prefix, 0);
    tok_free(t);
    char p[4200];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    remove(p);
    rmdir(dir);
    free(dir);
}

Test(tokenize, wordlevel) {
    char *dir = tu_tmpdir();
    char *p =
        write_file(dir, "tokenizer.json",
                   "{\"added_tokens\": [{\"id\": 0, \"content\": \"[UNK]\", \"special\": true}],"
                   " \"pre_tokenizer\": {\"type\": \"Whitespace\"},"
                   " \"model\": {\"type\": \"WordLevel\", \"unk_token\": \"[UNK]\","
                   " \"vocab\": {\"[UNK]\": 0, \"the\": 1, \"cat\": 2, \"sat\": 3, \".\": 4}}}");
    tok_t *t = load(p);
    cr_expect_eq(t->kind, TOK_WORDLEVEL);
    EXPECT_IDS(t, "the cat  sat.", 0, 1, 2, 3, 4);
    EXPECT_IDS(t, "the dog sat", 0, 1, 0, 3);
    size_t dl;
    char *d = decode(t, "the cat sat", 11, 1, &dl);
    cr_expect_str_eq(d, "the cat sat", "WordLevel decoding joins words with spaces");
    free(d);
    tok_free(t);
    /* WhitespaceSplit keeps punctuation attached. */
    free(p);
    p = write_file(dir, "tokenizer.json",
                   "{\"pre_tokenizer\": {\"type\": \"WhitespaceSplit\"},"
                   " \"model\": {\"type\": \"WordLevel\", \"unk_token\": \"[UNK]\","
                   " \"vocab\": {\"[UNK]\": 0, \"the\": 1, \"cat.\": 2}}}");
    t = load(p);
    EXPECT_IDS(t, " the\tcat. ", 0, 1, 2);
    tok_free(t);
    remove(p);
    free(p);
    rmdir(dir);
    free(dir);
}

/* Ids with holes: n_vocab = max id + 1, the holes are inert placeholders. */
Test(tokenize, sparse_ids) {
    char *dir = tu_tmpdir();
    char *p =
        write_file(dir, "tokenizer.json",
                   "{\"added_tokens\": [{\"id\": 9, \"content\": \"<|end|>\", \"special\": true}],"
                   " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false},"
                   " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 2, \"ab\": 5},"
                   " \"merges\": [\"a b\"]}}");
    tok_t *t = load(p);
    cr_expect_eq(t->n_vocab, 10);
    EXPECT_IDS(t, "abba", 0, 5, 2, 0);
    EXPECT_IDS(t, "a<|end|>", TOK_SPECIAL, 0, 9);
    cr_expect_eq(t->piece_len[1], 0);
    cr_expect_eq(t->special[1], 1);
    tok_free(t);
    remove(p);
    free(p);
    rmdir(dir);
    free(dir);
}

/* ---- bad files -------------------------------------------------------------------- */

Test(tokenize, bad_files) {
    char *dir = tu_tmpdir();
    char *p;
    p = write_file(dir, "tokenizer.json",
                   "{\"model\": {\"type\": \"BPE\",\n  \"vocab\": {\"a\": 0,}}}");
    expect_load_error(p, "tokenizer.json", "line 2 column", NULL);
    free(p);
    p = write_file(dir, "tokenizer.json",
                   "{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}}");
    expect_load_error(p, "tokenizer.json", "Unigram", "supported", "BPE", "WordLevel", NULL);
    free(p);
    p = write_file(dir, "tokenizer.json", "{\"version\": \"1.0\"}");
    expect_load_error(p, "no \"model\"", NULL);
    free(p);
    p = write_file(dir, "tokenizer.json",
                   "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, "
                   "\"ab\": 2}, \"merges\": [\"a b\", \"a c\"]}}");
    expect_load_error(p, "merge 1", "'c' is not in the vocabulary", NULL);
    free(p);
    p = write_file(dir, "tokenizer.json",
                   "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, "
                   "\"merges\": []}}");
    expect_load_error(p, "id 0 is used by both", NULL);
    free(p);
    p = write_file(dir, "tokenizer.json",
                   "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -3}, "
                   "\"merges\": []}}");
    expect_load_error(p, "'a'", "out of range", NULL);
    free(p);
    p = write_file(
        dir, "tokenizer.json",
        "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(ab\"}, "
        "\"behavior\": "
        "\"Isolated\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}");
    expect_load_error(p, "regex", "(ab", NULL);
    free(p);
    p = write_file(
        dir, "tokenizer.json",
        "{\"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}, \"model\": {\"type\": \"BPE\", "
        "\"vocab\": {\"a\": 0}, \"merges\": []}}");
    expect_load_error(p, "BertPreTokenizer", "supported", NULL);
    free(p);
    p = write_file(dir, "tokenizer.json", "");
    expect_load_error(p, "tokenizer.json", "line", NULL);
    remove(p);
    free(p);
    /* vocab.json + merges.txt */
    char *v = write_file(dir, "vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 2}");
    char *m = write_file(dir, "merges.txt", "#version: 0.2\na b\nab zz\n");
    expect_load_error(dir, "merges.txt", "line 3", "'zz' is not in the vocabulary", NULL);
    free(m);
    m = write_file(dir, "merges.txt", "#version: 0.2\na  b\n");
    expect_load_error(dir, "merges.txt", "line 2", NULL);
    free(m);
    m = write_file(dir, "merges.txt", "a b\n");
    tok_t *t = load(dir);
    EXPECT_IDS(t, "abba", 0, 2, 1, 0);
    tok_free(t);
    remove(m);
    free(m);
    remove(v);
    free(v);
    expect_load_error(dir, "no tokenizer.json", NULL);
    rmdir(dir);
    free(dir);
}

/* ---- the probe tokenize command ------------------------------------------------------ */

Test(tokenize, cli_end_to_end) {
    if (!tu_exists(tu_bin())) cr_skip_test("no probe binary at %s", tu_bin());
    char *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err, "%s tokenize --tokenizer %s --input %s", tu_bin(),
                     tu_sharedp(TOKS "gpt2"), tu_sharedp(REF "gpt2.jsonl"));
    cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
    ref_t r = ref_load(REF "gpt2.jsonl");
    cr_assert_eq(tu_lines(out), r.n, "one output line per input line");
    char *p = out;
    int ok = 0;
    for (int i = 0; i < r.n; i++) {
        char *e = strchr(p, '\n');
        json_error_t je;
        json_t *j = json_loadb(p, (size_t)(e - p), 0, &je);
        cr_assert(j, "output line %d is not JSON: %s", i + 1, je.text);
        json_t *ids = json_object_get(j, "ids"), *toks = json_object_get(j, "tokens");
        ok += json_equal(ids, json_object_get(r.row[i], "ids"));
        cr_expect_eq(json_array_size(toks), json_array_size(ids));
        json_decref(j);
        p = e + 1;
    }
    cr_expect_eq(ok, r.n, "CLI ids match tiktoken on %d/%d rows", ok, r.n);
    free(out);
    free(err);
    rc = tu_runf(&out, &err, "%s tokenize --tokenizer %s --text 'The Eiffel Tower is in'", tu_bin(),
                 tu_sharedp(TOKS "gpt2"));
    cr_expect_eq(rc, 0);
    cr_expect_str_eq(out,
                     "464\tThe\n412\t E\n733\tiff\n417\tel\n8765\t Tower\n318\t is\n287\t in\n");
    free(out);
    free(err);
    rc = tu_runf(
        &out, &err,
        "printf '{\"text\":\"a\"}\\n{\"txt\":\"b\"}\\n' | %s tokenize --tokenizer %s --input -",
        tu_bin(), tu_sharedp(TOKS "gpt2"));
    cr_expect_eq(rc, 1);
    cr_expect(err && strstr(err, "line 2") && strstr(err, "text"), "missing text: %s", err);
    free(out);
    free(err);
    rc = tu_runf(&out, &err, "%s tokenize --help", tu_bin());
    cr_expect_eq(rc, 0);
    const char *flags[] = {"--tokenizer", "--model", "--text",   "--input",
                           "--special",   "--bos",   "--no-bos", "example"};
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++)
        cr_expect(out && strstr(out, flags[i]), "--help lacks %s", flags[i]);
    free(out);
    free(err);
    ref_free(&r);
}

/* Not asserted: the time is printed so a slowdown is seen. */
Test(tokenize, speed_gpt2_set) {
    tok_t *t = load(tu_sharedp(TOKS "gpt2/tokenizer.json"));
    ref_t r = ref_load(REF "gpt2.jsonl");
    struct timespec a, b;
    size_t bytes = 0;
    long n_ids = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < r.n; i++) {
        size_t len;
        const char *text = ref_text(&r, i, &len);
        int *ids, n;
        cr_assert_eq(tok_encode(t, text, len, 0, &ids, &n), 0);
        bytes += len;
        n_ids += n;
        free(ids);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    fprintf(stderr, "tokenize: gpt2 set, %d texts, %zu bytes -> %ld ids in %.2f ms\n", r.n, bytes,
            n_ids, ms);
    ref_free(&r);
    tok_free(t);
}
