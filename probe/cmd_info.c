/* probe info: what a model file holds — architecture, sizes, tensors with
 * types, tokenizer, and parameter counts by part with the FFN's share. */
#include "cli.h"

#include "core/err.h"

#include <string.h>

static void help(void) {
    printf(
        "usage: probe info [--model PATH] [--tokenizer PATH] [--tensors]\n"
        "\n"
        "Prints the architecture, dimensions, tokenizer, the parameter count of each part\n"
        "(embeddings, attention, FFN, norms, LM head) with the FFN's share, and the tensor list.\n"
        "\n"
        "  --model PATH      model file or folder (default: stories260K from $PROBE_SHARED)\n"
        "  --tokenizer PATH  tokenizer file (default: the model's own)\n"
        "  --no-tensors      leave out the tensor list\n"
        "\n"
        "example: probe info --model ../shared/models/stories260K/stories260K.gguf\n");
}

static void count_line(const char *name, int64_t n, int64_t total) {
    printf("  %-11s %14lld  %5.1f%%\n", name, (long long)n, total ? 100.0 * n / total : 0.0);
}

int cmd_info(int argc, char **argv) {
    const char *model = NULL, *tokenizer = NULL, *v;
    int tensors = 1, r;
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
        } else if (cli_flag(argv, i, "--no-tensors")) {
            tensors = 0;
        } else if (cli_flag(argv, i, "--tensors")) {
            tensors = 1;
        } else {
            return cli_usage("info", "unknown option '%s'", argv[i]);
        }
    }
    model_t *m = cli_open_model(model, tokenizer);
    if (!m) return EXIT_FAIL;
    const mcfg_t *c = &m->cfg;
    printf("model         %s\n", m->path);
    printf("format        %s\n", m->format);
    printf("architecture  %s\n", arch_name(c->arch));
    printf("layers        %d\n", c->n_layer);
    printf("d_model       %d\n", c->d_model);
    printf("ffn neurons   %d per layer (%s)\n", c->n_ff,
           c->gated ? "gated: down(act(gate x) * up x)" : "classic: W2 act(W1 x + b1)");
    printf("heads         %d query, %d key/value, head size %d\n", c->n_head, c->n_kv_head,
           c->head_dim);
    printf("vocab         %d\n", c->vocab);
    printf("context       %d\n", c->max_seq);
    printf("norm          %s, eps %g\n", c->norm == NORM_RMS ? "RMSNorm" : "LayerNorm",
           c->norm_eps);
    if (c->rope != ROPE_NONE)
        printf("rope          %s, theta %g, %d of %d dims\n",
               c->rope == ROPE_PAIRWISE ? "pairwise" : "rotate-half", c->rope_theta, c->rotary_dim,
               c->head_dim);
    printf("lm head       %s\n", m->tied ? "tied to the token embedding" : "separate");
    if (m->tok)
        printf("tokenizer     %s, %d tokens (%s)\n", tok_kind_name(m->tok->kind), m->tok->n_vocab,
               m->tok->source);
    else
        printf("tokenizer     none (pass --tokenizer)\n");
    mparams_t p;
    model_param_counts(m, &p);
    printf("parameters    %lld\n", (long long)p.total);
    count_line("embeddings", p.embed, p.total);
    count_line("attention", p.attn, p.total);
    count_line("ffn", p.ffn, p.total);
    count_line("norms", p.norm, p.total);
    count_line("lm head", p.head, p.total);
    int64_t nonemb = p.total - p.embed - p.head;
    printf("ffn share     %.1f%% of all parameters, %.1f%% of non-embedding parameters\n",
           p.total ? 100.0 * p.ffn / p.total : 0.0, nonemb ? 100.0 * p.ffn / nonemb : 0.0);
    if (tensors) {
        printf("tensors       %d\n", m->tensors.n);
        for (int i = 0; i < m->tensors.n; i++) {
            const tensor_t *t = &m->tensors.items[i];
            char s[96];
            printf("  %-40s %-5s %s\n", t->name, dtype_name(t->dtype),
                   tensor_shape_str(t->ndim, t->shape, s, sizeof s));
        }
    }
    model_close(m);
    return EXIT_OK;
}
