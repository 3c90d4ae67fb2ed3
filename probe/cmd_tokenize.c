/* probe tokenize: text to token ids with a model's own tokenizer, one token
 * per line for a single text, or JSON Lines in and out for many — the form
 * of ../shared/reference/tokenizer/, so results can be compared directly.
 * BOS is off by default: raw text -> ids, as the reference files have them. */
#include "cli.h"

#include "core/err.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void help(void) {
    printf("usage: probe tokenize [--tokenizer PATH | --model PATH] (--text T | --input F.jsonl)\n"
           "                      [--special] [--bos | --no-bos]\n"
           "\n"
           "Encodes text with the model's tokenizer.  With --text: one line per token,\n"
           "'ID<TAB>TOKEN' (TOKEN readable: newline as \\n, control and invalid bytes as <0xNN>).\n"
           "With --input: JSON Lines with a \"text\" field in, JSON Lines {\"ids\": [..],\n"
           "\"tokens\": [..]} out, one line per input line, in order (blank lines are skipped);\n"
           "tokens are the decoded text of each id, bytes that are not valid UTF-8 as <0xNN>.\n"
           "\n"
           "  --tokenizer PATH  tokenizer.json, a folder with tokenizer.json or vocab.json +\n"
           "                    merges.txt, or (with --model) a llama2.c tokenizer.bin\n"
           "                    (default: the model's own)\n"
           "  --model PATH      model whose tokenizer to use (default: stories260K from\n"
           "                    $PROBE_SHARED, when --tokenizer is not given either)\n"
           "  --text T          the text to encode\n"
           "  --input F         JSON Lines file to encode ('-' = standard input)\n"
           "  --special         match special-token texts such as <|endoftext|> or <s> in the\n"
           "                    text (default: off, they are encoded as plain text)\n"
           "  --bos             prepend the BOS token (default: off)\n"
           "  --no-bos          do not prepend BOS (the default)\n"
           "\n"
           "example: probe tokenize --tokenizer ../shared/tokenizers/gpt2 --text 'The Eiffel Tower "
           "is in'\n"
           "         probe tokenize --tokenizer ../shared/tokenizers/llama2/tokenizer.json \\\n"
           "             --input ../shared/reference/tokenizer/llama2.jsonl > ids.jsonl\n");
}

/* A Hugging Face tokenizer path: a folder or a .json file. */
static int is_hf_path(const char *p) {
    struct stat st;
    size_t n = strlen(p);
    return (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) || (n >= 5 && !strcmp(p + n - 5, ".json"));
}

/* Token ID as JSON text: the decoded bytes, with bytes that are not valid
 * UTF-8 written <0xNN>; special tokens by name. */
static json_t *token_json(const tok_t *t, int id) {
    char name[256];
    if (id >= 0 && id < t->n_vocab && t->special[id])
        return json_string(tok_display(t, id, name, sizeof name));
    int len;
    const char *p = tok_piece(t, id, &len);
    char *s = malloc((size_t)len * 6 + 1);
    if (!s) return NULL;
    size_t k = 0;
    for (int i = 0; i < len;) {
        int l = utf8_len((unsigned char)p[i]);
        if (i + l <= len && utf8_valid(p + i, (size_t)l)) {
            memcpy(s + k, p + i, (size_t)l);
            k += (size_t)l;
            i += l;
        } else {
            k += (size_t)sprintf(s + k, "<0x%02X>", (unsigned char)p[i]);
            i++;
        }
    }
    json_t *j = json_stringn(s, k);
    free(s);
    return j;
}

static int encode_text(const tok_t *t, const char *text, int flags) {
    int *ids, n;
    if (tok_encode(t, text, strlen(text), flags, &ids, &n)) return cli_fail_err();
    char buf[512];
    for (int i = 0; i < n; i++)
        printf("%d\t%s\n", ids[i], tok_display(t, ids[i], buf, sizeof buf));
    free(ids);
    return EXIT_OK;
}

static int encode_jsonl(const tok_t *t, const char *path, int flags) {
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) return cli_fail("%s: cannot open", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = EXIT_OK;
    while (rc == EXIT_OK && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t k = 0;
        while (k < (size_t)len && strchr(" \t\r\n", line[k]))
            k++;
        if (k == (size_t)len) continue;
        json_error_t e;
        json_t *j = json_loadb(line, (size_t)len, JSON_ALLOW_NUL, &e), *text;
        if (!j) {
            rc = cli_fail("%s: line %ld column %d: %s", path, lineno, e.column, e.text);
            break;
        }
        if (!json_is_string(text = json_object_get(j, "text"))) {
            rc = cli_fail("%s: line %ld: no \"text\" string field", path, lineno);
            json_decref(j);
            break;
        }
        int *ids, n;
        if (tok_encode(t, json_string_value(text), json_string_length(text), flags, &ids, &n)) {
            rc = cli_fail("%s: line %ld: %s", path, lineno, err_msg());
            json_decref(j);
            break;
        }
        json_t *out = json_object(), *jids = json_array(), *jtok = json_array();
        for (int i = 0; i < n; i++) {
            json_array_append_new(jids, json_integer(ids[i]));
            json_array_append_new(jtok, token_json(t, ids[i]));
        }
        json_object_set_new(out, "ids", jids);
        json_object_set_new(out, "tokens", jtok);
        char *s = json_dumps(out, JSON_COMPACT);
        if (!s || (int)json_array_size(jtok) != n)
            rc = cli_fail("out of memory");
        else
            puts(s);
        free(s);
        free(ids);
        json_decref(out);
        json_decref(j);
    }
    if (rc == EXIT_OK && ferror(f)) rc = cli_fail("%s: read error", path);
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *tokenizer = NULL, *text = NULL, *input = NULL, *v;
    int special = 0, bos = 0, r;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            help();
            return EXIT_OK;
        } else if ((r = cli_opt(argc, argv, &i, "--model", &v))) {
            if (r < 0) return EXIT_USAGE;
            model = v;
        } else if ((r = cli_opt(argc, argv, &i, "--tokenizer", &v))) {
            if (r < 0) return EXIT_USAGE;
            tokenizer = v;
        } else if ((r = cli_opt(argc, argv, &i, "--text", &v))) {
            if (r < 0) return EXIT_USAGE;
            text = v;
        } else if ((r = cli_opt(argc, argv, &i, "--input", &v))) {
            if (r < 0) return EXIT_USAGE;
            input = v;
        } else if (cli_flag(argv, i, "--special")) {
            special = 1;
        } else if (cli_flag(argv, i, "--bos")) {
            bos = 1;
        } else if (cli_flag(argv, i, "--no-bos")) {
            bos = 0;
        } else {
            return cli_usage("tokenize", "unknown option '%s'", argv[i]);
        }
    }
    if (!text == !input) return cli_usage("tokenize", "give exactly one of --text and --input");
    int flags = (bos ? TOK_ADD_BOS : 0) | (special ? TOK_SPECIAL : 0);
    tok_t *tok = NULL;
    model_t *m = NULL;
    if (tokenizer && !model) {
        /* No need to map weights just to tokenize. */
        struct stat st;
        if (stat(tokenizer, &st) != 0) return cli_fail("%s: no such file or folder", tokenizer);
        if (!is_hf_path(tokenizer))
            return cli_usage("tokenize",
                             "--tokenizer %s needs --model too (llama2.c tokenizer files "
                             "do not record their vocabulary size)",
                             tokenizer);
        if (!(tok = tok_load_hf(tokenizer))) return cli_fail_err();
    } else {
        if (!(m = cli_open_model(model, tokenizer))) return EXIT_FAIL;
        if (!m->tok) {
            model_close(m);
            return cli_fail("%s: no tokenizer found with the model; pass --tokenizer",
                            model ? model : "model");
        }
    }
    const tok_t *t = tok ? tok : m->tok;
    int rc = text ? encode_text(t, text, flags) : encode_jsonl(t, input, flags);
    if (fflush(stdout) != 0 && rc == EXIT_OK) rc = cli_fail("cannot write the output");
    tok_free(tok);
    model_close(m);
    return rc;
}
