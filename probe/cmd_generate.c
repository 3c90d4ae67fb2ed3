/* probe generate: continue a prompt greedily — the user's way to see what
 * the model predicts, and the end-to-end check of tokenizer + forward pass
 * against llama2.c's run.c. */
#include "cli.h"

#include "core/err.h"
#include "core/fwd.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: probe generate [--model PATH] [--tokenizer PATH] [--prompt TEXT] [-n N]\n"
           "\n"
           "Continues PROMPT by greedy decoding (argmax at every step) and prints the prompt\n"
           "followed by the continuation, as llama2.c's run.c does.\n"
           "\n"
           "  --model PATH      llama2.c .bin, GGUF file or Hugging Face folder\n"
           "                    (default: stories260K from $PROBE_SHARED, else ../shared)\n"
           "  --tokenizer PATH  tokenizer.bin / tokenizer.json (default: the model's own)\n"
           "  --prompt TEXT     text to continue (default: empty, i.e. start from BOS)\n"
           "  -n N              number of new tokens (default 64)\n"
           "  --steps N         instead of -n: positions to evaluate, counting BOS and the\n"
           "                    prompt, exactly like llama2.c run.c's -n\n"
           "  --greedy          greedy decoding (the default and only mode)\n"
           "  --ids             also print the generated token ids on stderr\n"
           "  --threads N       threads for BLAS and OpenMP (default: all cores)\n"
           "Generation stops early at BOS or EOS, as run.c does.\n"
           "\n"
           "example: probe generate --prompt \"Lily wanted to\" -n 60\n");
}

/* run.c's safe_printf: skip single bytes that are neither printable nor space. */
static void print_piece(const char *p, int n) {
    if (n == 1 && !(isprint((unsigned char)p[0]) || isspace((unsigned char)p[0]))) return;
    fwrite(p, 1, (size_t)n, stdout);
}

int cmd_generate(int argc, char **argv) {
    const char *model = NULL, *tokenizer = NULL, *prompt = "", *v;
    long n_new = 64, steps = -1, threads = 0;
    int show_ids = 0, r;
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
        } else if ((r = cli_opt(argc, argv, &i, "--prompt", &v))) {
            if (r < 0) return EXIT_USAGE;
            prompt = v;
        } else if ((r = cli_opt(argc, argv, &i, "-n", &v))) {
            if (r < 0 || cli_parse_int(v, 0, 1 << 24, &n_new))
                return cli_usage("generate", "-n wants a number of tokens >= 0");
        } else if ((r = cli_opt(argc, argv, &i, "--steps", &v))) {
            if (r < 0 || cli_parse_int(v, 1, 1 << 24, &steps))
                return cli_usage("generate", "--steps wants a number >= 1");
        } else if ((r = cli_opt(argc, argv, &i, "--threads", &v))) {
            if (r < 0 || cli_parse_int(v, 0, 1024, &threads))
                return cli_usage("generate", "--threads wants a number");
        } else if (cli_flag(argv, i, "--greedy")) {
        } else if (cli_flag(argv, i, "--ids")) {
            show_ids = 1;
        } else {
            return cli_usage("generate", "unknown option '%s'", argv[i]);
        }
    }
    cli_set_threads((int)threads);
    model_t *m = cli_open_model(model, tokenizer);
    if (!m) return EXIT_FAIL;
    int rc = EXIT_FAIL, *ids = NULL, n = 0;
    fwd_t *f = NULL;
    float *logits = NULL;
    if (!m->tok) {
        cli_fail("%s: no tokenizer: pass --tokenizer", m->path);
        goto done;
    }
    if (tok_encode(m->tok, prompt, strlen(prompt), m->tok->add_bos ? TOK_ADD_BOS : 0, &ids, &n)) {
        cli_fail("prompt: %s", err_msg());
        goto done;
    }
    if (n == 0) {
        cli_fail("prompt is empty and the tokenizer adds no BOS: nothing to continue");
        goto done;
    }
    /* run.c's steps count evaluated positions; the token chosen at the last
     * one is printed but never evaluated. */
    if (steps > 0) n_new = steps - n + 1 > 0 ? steps - n + 1 : 0;
    long total = n + n_new;
    if (total - 1 > m->cfg.max_seq) {
        cli_fail("%ld positions exceed the model's context of %d", total - 1, m->cfg.max_seq);
        goto done;
    }
    int *seq = realloc(ids, (size_t)(total > n ? total : n) * sizeof *seq);
    if (!seq) {
        cli_fail("out of memory");
        goto done;
    }
    ids = seq;
    int ctx = (int)(total - 1 > n ? total - 1 : n);
    f = fwd_new(m, ctx, ctx);
    logits = malloc((size_t)m->cfg.vocab * sizeof *logits);
    if (!f || !logits) {
        cli_fail("%s", f ? "out of memory" : err_msg());
        goto done;
    }
    /* The prompt as run.c shows it: the pieces after BOS. */
    for (int i = 1 - (ids[0] != m->tok->bos_id); i < n; i++) {
        int len;
        const char *p = tok_decode_next(m->tok, i ? ids[i - 1] : -1, ids[i], &len);
        print_piece(p, len);
    }
    if (fwd_eval(f, ids, n, 0, logits, FWD_LOGITS_LAST)) {
        cli_fail_err();
        goto done;
    }
    for (long pos = n; pos < total; pos++) {
        int best = 0;
        for (int j = 1; j < m->cfg.vocab; j++)
            if (logits[j] > logits[best]) best = j;
        if (best == m->tok->bos_id || best == m->tok->eos_id) break;
        ids[pos] = best;
        int len;
        const char *p = tok_decode_next(m->tok, ids[pos - 1], best, &len);
        print_piece(p, len);
        fflush(stdout);
        if (show_ids) fprintf(stderr, "%d\n", best);
        if (pos + 1 < total && fwd_eval(f, &ids[pos], 1, (int)pos, logits, FWD_LOGITS_LAST)) {
            cli_fail_err();
            goto done;
        }
    }
    printf("\n");
    rc = EXIT_OK;
done:
    free(logits);
    free(ids);
    fwd_free(f);
    model_close(m);
    return rc;
}
