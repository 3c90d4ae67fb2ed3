/* acts: activation recorder over fwd hooks (see acts.h). */
#include "acts.h"

#include "analysis/topk.h"
#include "core/err.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static int rec_hook(void *user, int layer, hook_point_t p, float *data, int T, int width,
                    int pos0) {
    acts_rec_t *r = user;
    (void)pos0;
    int s = r->slot[layer];
    if (s < 0) return 0;
    size_t n = (size_t)T * width * sizeof(float);
    if (p == HOOK_FFN_PRE && r->keep_full)
        memcpy(r->pre[s], data, n);
    else if (p == HOOK_FFN_UP && r->keep_full)
        memcpy(r->up[s], data, n);
    else if (p == HOOK_FFN_KEY) {
        if (r->keep_full) memcpy(r->key[s], data, n);
        r->T = T;
#pragma omp parallel for if (T > 4)
        for (int t = 0; t < T; t++) {
            size_t o = ((size_t)s * r->T_max + t) * r->k;
            topk_select(data + (size_t)t * width, width, r->k, r->by_abs, 0, r->top_idx + o);
            for (int j = 0; j < r->k; j++)
                r->top_val[o + j] = data[(size_t)t * width + r->top_idx[o + j]];
        }
    }
    return 0;
}

acts_rec_t *acts_rec_new(const model_t *m, const int *layers, int n, int T_max, int k, int by_abs,
                         int keep_full) {
    acts_rec_t *r = calloc(1, sizeof *r);
    if (!r) return err_set("out of memory"), NULL;
    r->n_layers = n;
    r->n_ff = m->cfg.n_ff;
    r->T_max = T_max;
    r->gated = m->cfg.gated;
    r->keep_full = keep_full;
    r->k = k > m->cfg.n_ff ? m->cfg.n_ff : k;
    r->by_abs = by_abs;
    r->layers = malloc((size_t)n * sizeof *r->layers);
    r->slot = malloc((size_t)m->cfg.n_layer * sizeof *r->slot);
    r->key = calloc((size_t)n, sizeof *r->key);
    r->pre = calloc((size_t)n, sizeof *r->pre);
    r->up = calloc((size_t)n, sizeof *r->up);
    r->top_idx = malloc((size_t)n * T_max * (r->k ? r->k : 1) * sizeof *r->top_idx);
    r->top_val = malloc((size_t)n * T_max * (r->k ? r->k : 1) * sizeof *r->top_val);
    if (!r->layers || !r->slot || !r->key || !r->pre || !r->up || !r->top_idx || !r->top_val)
        goto oom;
    for (int l = 0; l < m->cfg.n_layer; l++)
        r->slot[l] = -1;
    size_t full = (size_t)T_max * r->n_ff * sizeof(float);
    for (int i = 0; i < n; i++) {
        r->layers[i] = layers[i];
        r->slot[layers[i]] = i;
        if (keep_full) {
            if (!(r->key[i] = malloc(full)) || !(r->pre[i] = malloc(full))) goto oom;
            if (r->gated && !(r->up[i] = malloc(full))) goto oom;
        }
    }
    return r;
oom:
    acts_rec_free(r);
    err_set("out of memory recording %d layers of %d tokens", n, T_max);
    return NULL;
}

void acts_rec_free(acts_rec_t *r) {
    if (!r) return;
    for (int i = 0; i < r->n_layers; i++) {
        if (r->key) free(r->key[i]);
        if (r->pre) free(r->pre[i]);
        if (r->up) free(r->up[i]);
    }
    free(r->key);
    free(r->pre);
    free(r->up);
    free(r->layers);
    free(r->slot);
    free(r->top_idx);
    free(r->top_val);
    free(r);
}

void acts_rec_attach(acts_rec_t *r, fwd_t *f) {
    unsigned mask = 1u << HOOK_FFN_KEY;
    if (r->keep_full) mask |= (1u << HOOK_FFN_PRE) | (r->gated ? 1u << HOOK_FFN_UP : 0);
    fwd_set_hook(f, rec_hook, r, mask);
}

static int parse_num(const char **p, long *v) {
    if (!isdigit((unsigned char)**p)) return -1;
    char *end;
    *v = strtol(*p, &end, 10);
    if (*v > 1000000) return -1;
    *p = end;
    return 0;
}

int acts_parse_layers(const char *spec, int n_layer, int **out, int *n_out) {
    char *sel = calloc((size_t)n_layer, 1);
    if (!sel) return err_set("out of memory");
    if (strcmp(spec, "all") == 0) {
        memset(sel, 1, (size_t)n_layer);
    } else {
        const char *p = spec;
        for (;;) {
            long a, b;
            if (parse_num(&p, &a)) goto bad;
            b = a;
            if (*p == '-') {
                p++;
                if (parse_num(&p, &b) || b < a) goto bad;
            }
            if (a >= n_layer || b >= n_layer) {
                free(sel);
                return err_set("layer %ld is out of range: this model has layers 0..%d (0-based)",
                               b >= n_layer ? b : a, n_layer - 1);
            }
            for (long l = a; l <= b; l++)
                sel[l] = 1;
            if (*p == '\0') break;
            if (*p != ',') goto bad;
            p++;
        }
    }
    int n = 0;
    for (int l = 0; l < n_layer; l++)
        n += sel[l];
    *out = malloc((size_t)n * sizeof **out);
    if (!*out) {
        free(sel);
        return err_set("out of memory");
    }
    n = 0;
    for (int l = 0; l < n_layer; l++)
        if (sel[l]) (*out)[n++] = l;
    *n_out = n;
    free(sel);
    return 0;
bad:
    free(sel);
    return err_set("layer list '%s' is not understood: use N, N,M, N-M or all (0-based, 0..%d)",
                   spec, n_layer - 1);
}
