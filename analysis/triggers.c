/* triggers: streaming top-N triggers, neuron statistics and key-value
 * agreement (see triggers.h).
 *
 * Layout.  Heap entries of all neurons live in one allocation, N fixed-size
 * slots per neuron (a 48-byte header plus CONTEXT token ids); a parallel
 * array of slot indices per neuron is the min-heap (root = weakest), and
 * thr[] mirrors each full heap's root activation so a position that cannot
 * enter costs one compare.  The forward pass hands each layer's (T, n_ff)
 * pre-activation, up projection and key activation to trg_hook, which copies
 * the first two and does all work at the key activation, split over threads
 * by contiguous neuron ranges (each neuron's stream stays in corpus order, so
 * ties resolve to the earlier document and position by a strict compare). */
#include "triggers.h"

#include "core/err.h"
#include "core/mfile.h"

#include <gsl/gsl_rstat.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Histogram of key activations: octaves 2^E_MIN .. 2^E_MAX per sign. */
#define H_EMIN (-24)
#define H_EMAX 16
#define H_NE (H_EMAX - H_EMIN)
#define H_BINS (2 * H_NE + 1)
/* Density histogram: dead, then half-decades from 1e-8 to 1. */
#define D_BINS 17

typedef struct {
    float v, key, pre, up;
    int64_t doc;
    int32_t pos, token, next, next_rank, n_ctx, ctx_prev;
    int32_t ctx[]; /* (context) */
} ent_t;

typedef struct {
    /* running moments (fast path) */
    double *mean, *M2, *M3, *M4;        /* (n_ff) */
    float *mn, *mx;                     /* (n_ff) */
    int64_t *active;                    /* (n_ff) */
    gsl_rstat_quantile_workspace **qws; /* (nq, n_ff) */
    gsl_rstat_workspace **rws;          /* (n_ff) exact path */
    int64_t hist[H_BINS];
    /* finalised */
    double *var, *skew, *kurt, *density, *quant; /* (n_ff), quant (nq, n_ff) */
    double *fmean;
    int64_t dhist[D_BINS];
    int64_t n_dead, n_rare[3];
} lstats_t;

struct trg {
    const model_t *m;
    trg_opts_t o;
    int n_slots, n_ff, gated, vocab, N, C;
    int *layers; /* (n_slots) */
    int *slot;   /* (n_layer) */
    size_t ent_bytes;
    unsigned char *ents; /* (n_slots, n_ff, N) entries */
    int32_t *heap;       /* (n_slots, n_ff, N) entry indices, heap-ordered */
    int32_t *cnt;        /* (n_slots, n_ff) */
    float *thr;          /* (n_slots, n_ff) weakest kept value, -inf until full */
    /* per-document best (TRG_PER_DOC) */
    float *bv, *bkey, *bpre, *bup; /* (n_slots, n_ff) */
    int32_t *bpos;                 /* (n_slots, n_ff) */
    /* the current window */
    /* The current layer's counted rows (R, n_ff) of the gate (or W1)
     * pre-activation and the up projection: borrowed from the forward pass,
     * whose buffers hold them until the layer's key hook returns (fwd.h). */
    const float *pre, *up;
    const int *ids;
    int n_ids, win0, r0;
    int64_t doc;
    /* statistics */
    lstats_t *st; /* (n_slots) */
    int64_t n_qfed;
    trg_counts_t counts;
    int finished;
    uint64_t mem; /* bytes allocated for heaps and statistics */
    /* agreement */
    int32_t *top1;      /* (n_slots, n_ff) */
    trg_agree_t *agree; /* (n_slots) */
};

static inline ent_t *ent_at(const trg_t *t, int s, int j, int k) {
    return (ent_t *)(t->ents + (((size_t)s * t->n_ff + j) * t->N + (size_t)k) * t->ent_bytes);
}

/* ---- options -------------------------------------------------------------- */

void trg_opts_default(trg_opts_t *o, const model_t *m) {
    memset(o, 0, sizeof *o);
    o->top = 20;
    o->context = 32;
    int ctx = m && m->cfg.max_seq > 0 ? m->cfg.max_seq : 128;
    o->window = ctx > 2048 ? 2048 : ctx;
    o->stride = o->window;
    o->per = TRG_PER_DOC;
    o->rank_by = TRG_RANK_POST;
    o->skip_bos = 1;
    o->stats = 1;
    o->quantile_every = 32;
    o->n_quantiles = 2;
    o->quantiles[0] = 0.5;
    o->quantiles[1] = 0.99;
    o->par_min = (int64_t)1 << 19;
}

int trg_opts_check(const trg_opts_t *o, const model_t *m) {
    if (!o->stats_only && o->top < 1) return err_set("--top must be at least 1, got %d", o->top);
    if (!o->stats_only && o->top > 100000)
        return err_set("--top %d is too large (at most 100000)", o->top);
    if (o->context < 1 || o->context > 65536)
        return err_set("--context must be 1..65536 tokens, got %d", o->context);
    if (o->window < 1) return err_set("--window must be at least 1, got %d", o->window);
    if (o->window > m->cfg.max_seq)
        return err_set("--window %d is larger than the model's context of %d tokens", o->window,
                       m->cfg.max_seq);
    if (o->stride < 1 || o->stride > o->window)
        return err_set("--stride must be 1..window (%d), got %d", o->window, o->stride);
    if (o->window == 1 && o->skip_bos)
        return err_set("--window 1 with --skip-bos counts no position; use --no-skip-bos");
    if (o->stats_only && !o->stats)
        return err_set("--stats-only and --no-stats leave nothing to do");
    if (o->quantile_every < 1) return err_set("--quantile-every must be at least 1");
    if (o->n_quantiles < 0 || o->n_quantiles > TRG_MAX_QUANTILES)
        return err_set("at most %d quantiles", TRG_MAX_QUANTILES);
    for (int i = 0; i < o->n_quantiles; i++)
        if (!(o->quantiles[i] > 0 && o->quantiles[i] < 1))
            return err_set("quantile %g is outside (0, 1)", o->quantiles[i]);
    return 0;
}

/* ---- construction ----------------------------------------------------------- */

static void *xcalloc(size_t n, size_t sz, uint64_t *total) {
    *total += (uint64_t)n * sz;
    return calloc(n ? n : 1, sz);
}

static int stats_alloc(trg_t *t, lstats_t *S, uint64_t *total) {
    size_t F = (size_t)t->n_ff;
    int nq = t->o.n_quantiles;
    S->mean = xcalloc(F, sizeof(double), total);
    S->M2 = xcalloc(F, sizeof(double), total);
    S->M3 = xcalloc(F, sizeof(double), total);
    S->M4 = xcalloc(F, sizeof(double), total);
    S->mn = xcalloc(F, sizeof(float), total);
    S->mx = xcalloc(F, sizeof(float), total);
    S->active = xcalloc(F, sizeof(int64_t), total);
    S->var = xcalloc(F, sizeof(double), total);
    S->skew = xcalloc(F, sizeof(double), total);
    S->kurt = xcalloc(F, sizeof(double), total);
    S->density = xcalloc(F, sizeof(double), total);
    S->fmean = xcalloc(F, sizeof(double), total);
    S->quant = xcalloc((size_t)nq * F, sizeof(double), total);
    S->qws = xcalloc((size_t)nq * F, sizeof *S->qws, total);
    if (!S->mean || !S->M2 || !S->M3 || !S->M4 || !S->mn || !S->mx || !S->active || !S->var ||
        !S->skew || !S->kurt || !S->density || !S->fmean || !S->quant || !S->qws)
        return -1;
    for (size_t j = 0; j < F; j++) {
        S->mn[j] = INFINITY;
        S->mx[j] = -INFINITY;
    }
    for (int q = 0; q < nq; q++)
        for (size_t j = 0; j < F; j++) {
            S->qws[(size_t)q * F + j] = gsl_rstat_quantile_alloc(t->o.quantiles[q]);
            if (!S->qws[(size_t)q * F + j]) return -1;
            *total += sizeof(gsl_rstat_quantile_workspace);
        }
    if (t->o.exact_stats) {
        S->rws = xcalloc(F, sizeof *S->rws, total);
        if (!S->rws) return -1;
        for (size_t j = 0; j < F; j++) {
            if (!(S->rws[j] = gsl_rstat_alloc())) return -1;
            *total += sizeof(gsl_rstat_workspace) + sizeof(gsl_rstat_quantile_workspace);
        }
    }
    return 0;
}

static void stats_free(trg_t *t, lstats_t *S) {
    size_t F = (size_t)t->n_ff;
    if (S->qws)
        for (size_t i = 0; i < (size_t)t->o.n_quantiles * F; i++)
            if (S->qws[i]) gsl_rstat_quantile_free(S->qws[i]);
    if (S->rws)
        for (size_t j = 0; j < F; j++)
            if (S->rws[j]) gsl_rstat_free(S->rws[j]);
    free(S->qws);
    free(S->rws);
    free(S->mean);
    free(S->M2);
    free(S->M3);
    free(S->M4);
    free(S->mn);
    free(S->mx);
    free(S->active);
    free(S->var);
    free(S->skew);
    free(S->kurt);
    free(S->density);
    free(S->fmean);
    free(S->quant);
}

trg_t *trg_new(const model_t *m, const int *layers, int n, const trg_opts_t *o) {
    if (trg_opts_check(o, m)) return NULL;
    if (n < 1) return err_set("no layers selected"), NULL;
    trg_t *t = calloc(1, sizeof *t);
    if (!t) return err_set("out of memory"), NULL;
    uint64_t total = 0;
    t->m = m;
    t->o = *o;
    if (t->o.exact_stats) t->o.quantile_every = 1;
    t->n_slots = n;
    t->n_ff = m->cfg.n_ff;
    t->gated = m->cfg.gated;
    t->vocab = m->cfg.vocab;
    t->N = o->stats_only ? 0 : o->top;
    t->C = o->context;
    size_t F = (size_t)t->n_ff, SF = (size_t)n * F, N = (size_t)t->N;
    t->ent_bytes = (sizeof(ent_t) + (size_t)t->C * sizeof(int32_t) + 7) & ~(size_t)7;
    t->layers = xcalloc((size_t)n, sizeof(int), &total);
    t->slot = xcalloc((size_t)m->cfg.n_layer, sizeof(int), &total);
    if (!t->layers || !t->slot) goto oom;
    for (int l = 0; l < m->cfg.n_layer; l++)
        t->slot[l] = -1;
    for (int i = 0; i < n; i++) {
        PRB_ASSERT(layers[i] >= 0 && layers[i] < m->cfg.n_layer);
        t->layers[i] = layers[i];
        t->slot[layers[i]] = i;
    }
    unsigned long long heap_bytes;
    if (!err_mul_u64(SF * N, t->ent_bytes + sizeof(int32_t), &heap_bytes) ||
        heap_bytes > ((unsigned long long)1 << 46) || SF * N > INT32_MAX) {
        err_set("triggers would need more than 64 TiB; lower --top, --context or --layer");
        goto fail;
    }
    if (t->N) {
        /* The entries (GPT-2-small: 130 MiB) on 2 MiB pages: each heap
         * update lands on a different neuron's entries, and with 4 KiB pages
         * nearly every one was a TLB miss (perf: heap updates and their page
         * faults ~4% of a pass over a short corpus). */
        total += (uint64_t)(SF * N) * t->ent_bytes;
        t->ents = mfile_alloc_huge(SF * N * t->ent_bytes);
        if (t->ents) memset(t->ents, 0, SF * N * t->ent_bytes);
        t->heap = xcalloc(SF * N, sizeof(int32_t), &total);
        t->cnt = xcalloc(SF, sizeof(int32_t), &total);
        t->thr = xcalloc(SF, sizeof(float), &total);
        if (!t->ents || !t->heap || !t->cnt || !t->thr) goto oom;
        for (size_t i = 0; i < SF; i++)
            t->thr[i] = -INFINITY;
        if (o->per == TRG_PER_DOC) {
            t->bv = xcalloc(SF, sizeof(float), &total);
            t->bkey = xcalloc(SF, sizeof(float), &total);
            t->bpre = xcalloc(SF, sizeof(float), &total);
            t->bup = xcalloc(SF, sizeof(float), &total);
            t->bpos = xcalloc(SF, sizeof(int32_t), &total);
            if (!t->bv || !t->bkey || !t->bpre || !t->bup || !t->bpos) goto oom;
        }
    }
    if (o->stats) {
        t->st = xcalloc((size_t)n, sizeof *t->st, &total);
        if (!t->st) goto oom;
        for (int s = 0; s < n; s++)
            if (stats_alloc(t, &t->st[s], &total)) goto oom;
    }
    t->mem = total;
    return t;
oom:
    err_set("out of memory: %d layers x %d neurons x top %d x context %d need %.1f MiB or more; "
            "lower --top, --context or --layer",
            n, t->n_ff, t->N, t->C, (double)(SF * N * (t->ent_bytes + 4) + total) / 1048576.0);
fail:
    trg_free(t);
    return NULL;
}

void trg_free(trg_t *t) {
    if (!t) return;
    if (t->st)
        for (int s = 0; s < t->n_slots; s++)
            stats_free(t, &t->st[s]);
    free(t->st);
    free(t->layers);
    free(t->slot);
    free(t->ents);
    free(t->heap);
    free(t->cnt);
    free(t->thr);
    free(t->bv);
    free(t->bkey);
    free(t->bpre);
    free(t->bup);
    free(t->bpos);
    free(t->top1);
    free(t->agree);
    free(t);
}

uint64_t trg_mem_bytes(const trg_t *t) { return t->mem; }

/* ---- heaps ------------------------------------------------------------------ */

/* "a ranks below b": smaller value, or equal value and later (doc, pos). */
static inline int weaker(const ent_t *a, const ent_t *b) {
    if (a->v != b->v) return a->v < b->v;
    if (a->doc != b->doc) return a->doc > b->doc;
    return a->pos > b->pos;
}

static void fill_entry(const trg_t *t, ent_t *e, float v, float key, float pre, float up, int pos) {
    e->v = v;
    e->key = key;
    e->pre = pre;
    e->up = up;
    e->doc = t->doc;
    e->pos = pos;
    e->token = t->ids[pos];
    e->next = pos + 1 < t->n_ids ? t->ids[pos + 1] : -1;
    e->next_rank = -1;
    int start = pos - t->C + 1 > 0 ? pos - t->C + 1 : 0;
    e->n_ctx = pos - start + 1;
    e->ctx_prev = start > 0 ? t->ids[start - 1] : -1;
    for (int i = 0; i < e->n_ctx; i++)
        e->ctx[i] = t->ids[start + i];
}

/* The entry a new candidate of neuron J (slot S) is written into: the next
 * free one while the heap fills, else the root's (the weakest, replaced). */
static ent_t *heap_next(const trg_t *t, int s, int j) {
    size_t nj = (size_t)s * t->n_ff + j;
    int c = t->cnt[nj];
    return ent_at(t, s, j, c < t->N ? c : t->heap[nj * t->N]);
}

/* Restores the heap of neuron J after heap_next's entry was written: sifts
 * it up from the end while filling, down from the root when full; keeps
 * cnt[] and thr[] current. */
static void heap_fix(trg_t *t, int s, int j) {
    size_t nj = (size_t)s * t->n_ff + j;
    int32_t *h = t->heap + nj * t->N;
    int c = t->cnt[nj], N = t->N, p;
    if (c < N) {
        const ent_t *e = ent_at(t, s, j, c);
        for (p = c; p > 0;) {
            int q = (p - 1) / 2;
            if (!weaker(e, ent_at(t, s, j, h[q]))) break;
            h[p] = h[q];
            p = q;
        }
        h[p] = c;
        t->cnt[nj] = ++c;
        if (c == N) t->thr[nj] = ent_at(t, s, j, h[0])->v;
        return;
    }
    int slot = h[0];
    const ent_t *e = ent_at(t, s, j, slot);
    for (p = 0;;) {
        int ch = 2 * p + 1;
        if (ch >= N) break;
        if (ch + 1 < N && weaker(ent_at(t, s, j, h[ch + 1]), ent_at(t, s, j, h[ch]))) ch++;
        if (!weaker(ent_at(t, s, j, h[ch]), e)) break;
        h[p] = h[ch];
        p = ch;
    }
    h[p] = slot;
    t->thr[nj] = ent_at(t, s, j, h[0])->v;
}

/* Offers a candidate that beat thr[] to neuron J of slot S. */
static void heap_offer(trg_t *t, int s, int j, float v, float key, float pre, float up, int pos) {
    fill_entry(t, heap_next(t, s, j), v, key, pre, up, pos);
    heap_fix(t, s, j);
}

/* ---- statistics kernels ------------------------------------------------------- */

static inline int hist_bin(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    int e = (int)((u >> 23) & 0xff) - 127;
    if (e < H_EMIN) return H_NE;
    if (e > H_EMAX - 1) e = H_EMAX - 1;
    int k = e - H_EMIN;
    return (u >> 31) ? H_NE - 1 - k : H_NE + 1 + k;
}

/* Rows [0, R) of KEY/PRE (row stride n_ff), neurons [j0, j1) of slot S.
 * Neurons go in tiles of ST_TILE so the per-neuron accumulators stay in L1
 * while the rows stream past; the inner loops are plain array arithmetic the
 * compiler vectorises. */
#define ST_TILE 256
static void stats_rows(trg_t *t, int s, const float *key, const float *pre, int R, int j0, int j1,
                       int64_t *hist) {
    lstats_t *S = &t->st[s];
    size_t F = (size_t)t->n_ff;
    int64_t na = t->counts.counted;
    /* Four sub-histograms: consecutive values often share a bin, and one
     * counter would serialise on its own increments. */
    int32_t h4[4][H_BINS];
    memset(h4, 0, sizeof h4);
    for (int jb = j0; jb < j1; jb += ST_TILE) {
        int nj = j1 - jb < ST_TILE ? j1 - jb : ST_TILE;
        float mn[ST_TILE], mx[ST_TILE];
        int32_t act[ST_TILE];
        double sum[ST_TILE], s2[ST_TILE], s3[ST_TILE], s4[ST_TILE];
        for (int k = 0; k < nj; k++) {
            mn[k] = S->mn[jb + k];
            mx[k] = S->mx[jb + k];
            act[k] = 0;
            sum[k] = s2[k] = s3[k] = s4[k] = 0;
        }
        for (int r = 0; r < R; r++) {
            const float *x = key + (size_t)r * F + jb, *p = pre + (size_t)r * F + jb;
            for (int k = 0; k < nj; k++) {
                float v = x[k];
                mn[k] = v < mn[k] ? v : mn[k];
                mx[k] = v > mx[k] ? v : mx[k];
                act[k] += p[k] > 0.0f;
                sum[k] += v;
            }
            int k = 0;
            for (; k + 4 <= nj; k += 4) {
                h4[0][hist_bin(x[k])]++;
                h4[1][hist_bin(x[k + 1])]++;
                h4[2][hist_bin(x[k + 2])]++;
                h4[3][hist_bin(x[k + 3])]++;
            }
            for (; k < nj; k++)
                h4[0][hist_bin(x[k])]++;
        }
        for (int k = 0; k < nj; k++) {
            S->mn[jb + k] = mn[k];
            S->mx[jb + k] = mx[k];
            S->active[jb + k] += act[k];
        }
        if (t->o.exact_stats) {
            for (int r = 0; r < R; r++) {
                const float *x = key + (size_t)r * F + jb;
                for (int k = 0; k < nj; k++)
                    gsl_rstat_add(x[k], S->rws[jb + k]);
            }
            continue;
        }
        /* Central moments of this window, merged into the running ones
         * (Pebay 2008, "Formulas for robust, one-pass parallel computation of
         * covariances and arbitrary-order statistical moments", eqs. 2.1-3.1). */
        double nb = R;
        for (int k = 0; k < nj; k++)
            sum[k] /= nb; /* window mean */
        for (int r = 0; r < R; r++) {
            const float *x = key + (size_t)r * F + jb;
            for (int k = 0; k < nj; k++) {
                double d = (double)x[k] - sum[k], d2 = d * d;
                s2[k] += d2;
                s3[k] += d2 * d;
                s4[k] += d2 * d2;
            }
        }
        double a = (double)na, n = a + nb;
        for (int k = 0; k < nj; k++) {
            int j = jb + k;
            double delta = sum[k] - S->mean[j], d2 = delta * delta;
            double M2a = S->M2[j], M3a = S->M3[j];
            S->M4[j] += s4[k] + d2 * d2 * a * nb * (a * a - a * nb + nb * nb) / (n * n * n) +
                        6.0 * d2 * (a * a * s2[k] + nb * nb * M2a) / (n * n) +
                        4.0 * delta * (a * s3[k] - nb * M3a) / n;
            S->M3[j] += s3[k] + d2 * delta * a * nb * (a - nb) / (n * n) +
                        3.0 * delta * (a * s2[k] - nb * M2a) / n;
            S->M2[j] += s2[k] + d2 * a * nb / n;
            S->mean[j] += delta * nb / n;
        }
    }
    for (int b = 0; b < H_BINS; b++)
        hist[b] += (int64_t)h4[0][b] + h4[1][b] + h4[2][b] + h4[3][b];
    int nq = t->o.n_quantiles, qe = t->o.quantile_every;
    for (int r = 0; r < R; r++) {
        if ((na + r) % qe) continue;
        const float *x = key + (size_t)r * F;
        for (int q = 0; q < nq; q++) {
            gsl_rstat_quantile_workspace **w = S->qws + (size_t)q * F;
            for (int j = j0; j < j1; j++)
                gsl_rstat_quantile_add(x[j], w[j]);
        }
    }
}

/* ---- the hook ------------------------------------------------------------------ */

/* Blocks of 16 neurons are tested at once (one vector compare); only a block
 * where some position beats its neuron's bar goes through the scalar path. */
static void scan_rows(trg_t *t, int s, const float *key, const float *rank, int R, int j0, int j1) {
    size_t F = (size_t)t->n_ff;
    const float *pre = t->pre, *up = t->N > 0 ? t->up : NULL;
    float *bar = t->o.per == TRG_PER_DOC ? t->bv + (size_t)s * F : t->thr + (size_t)s * F;
    int per_doc = t->o.per == TRG_PER_DOC;
    for (int r = 0; r < R; r++) {
        const float *rk = rank + (size_t)r * F;
        int pos = t->win0 + t->r0 + r;
        for (int jb = j0; jb < j1; jb += 16) {
            int je = jb + 16 < j1 ? jb + 16 : j1, any = 0;
            for (int j = jb; j < je; j++)
                any |= rk[j] > bar[j];
            if (!any) continue;
            for (int j = jb; j < je; j++) {
                if (!(rk[j] > bar[j])) continue;
                size_t x = (size_t)r * F + j;
                if (per_doc) {
                    size_t o = (size_t)s * F + j;
                    bar[j] = rk[j];
                    t->bkey[o] = key[x];
                    t->bpre[o] = pre[x];
                    t->bup[o] = up ? up[x] : 0.0f;
                    t->bpos[o] = pos;
                } else {
                    heap_offer(t, s, j, rk[j], key[x], pre[x], up ? up[x] : 0.0f, pos);
                }
            }
        }
    }
}

static void process_layer(trg_t *t, int s, const float *key, int R) {
    size_t F = (size_t)t->n_ff;
    const float *rank = t->o.rank_by == TRG_RANK_PRE ? t->pre : key;
    /* Threads only for a big layer window: the work is ~3 ns a value, and on
     * a small model (stories260K: 512 x 172 values) waking the team and its
     * barrier (spinning beside OpenBLAS's own threads) cost several times the
     * work itself (measured: 2-thread recording at 4-6x the forward CPU). */
    int par = (int64_t)R * (int64_t)F >= t->o.par_min;
#pragma omp parallel if (par)
    {
        int nth = omp_get_num_threads(), id = omp_get_thread_num();
        /* Contiguous neuron ranges on 16-float boundaries. */
        int blocks = (t->n_ff + 15) / 16;
        int j0 = (int)((int64_t)blocks * id / nth) * 16,
            j1 = (int)((int64_t)blocks * (id + 1) / nth) * 16;
        if (j1 > t->n_ff) j1 = t->n_ff;
        if (j0 > t->n_ff) j0 = t->n_ff;
        if (t->N > 0 && j0 < j1) scan_rows(t, s, key, rank, R, j0, j1);
        if (t->st && j0 < j1) {
            int64_t hist[H_BINS] = {0};
            stats_rows(t, s, key, t->pre, R, j0, j1, hist);
            for (int b = 0; b < H_BINS; b++)
                if (hist[b]) {
#pragma omp atomic
                    t->st[s].hist[b] += hist[b];
                }
        }
    }
}

int trg_hook(void *user, int layer, hook_point_t p, float *data, int T, int width, int pos0) {
    trg_t *t = user;
    (void)pos0;
    int s = t->slot[layer];
    if (s < 0) return 0;
    PRB_ASSERT(width == t->n_ff && T <= t->o.window);
    int R = T - t->r0;
    if (R <= 0) return 0;
    size_t off = (size_t)t->r0 * width;
    /* No copies: PRE and UP stay valid until KEY (a copy of both was ~2-3%
     * of a GPT-2-shaped pass). */
    if (p == HOOK_FFN_PRE)
        t->pre = data + off;
    else if (p == HOOK_FFN_UP)
        t->up = data + off;
    else if (p == HOOK_FFN_KEY)
        process_layer(t, s, data + off, R);
    return 0;
}

void trg_attach(trg_t *t, fwd_t *f) {
    unsigned mask = (1u << HOOK_FFN_PRE) | (1u << HOOK_FFN_KEY);
    if (t->gated) mask |= 1u << HOOK_FFN_UP;
    fwd_set_hook(f, trg_hook, t, mask);
}

/* ---- documents ---------------------------------------------------------------- */

/* Each neuron's best of the document into its heap.  Neurons are
 * independent, so threads share them; early in a corpus nearly every neuron
 * takes its document best, each a few cache misses (GPT-2-shaped: ~7 ms a
 * document single-threaded). */
static void flush_doc(trg_t *t) {
    int64_t SF = (int64_t)t->n_slots * t->n_ff;
    int F = t->n_ff;
#pragma omp parallel for schedule(static) if (SF * 32 >= t->o.par_min)
    for (int64_t o = 0; o < SF; o++)
        if (t->bv[o] > t->thr[o])
            heap_offer(t, (int)(o / F), (int)(o % F), t->bv[o], t->bkey[o], t->bpre[o], t->bup[o],
                       t->bpos[o]);
}

int trg_run_doc(trg_t *t, fwd_t *f, const int *ids, int n, int64_t doc, int record) {
    PRB_ASSERT(!t->finished);
    int W = t->o.window, S = t->o.stride;
    int per_doc = record && t->N > 0 && t->o.per == TRG_PER_DOC;
    t->counts.docs++;
    t->counts.tokens += n;
    if (n <= 0) return 0;
    if (per_doc)
        for (size_t i = 0; i < (size_t)t->n_slots * t->n_ff; i++)
            t->bv[i] = -INFINITY;
    t->ids = ids;
    t->n_ids = n;
    t->doc = doc;
    int prev_end = 0;
    for (int s0 = 0;; s0 += S) {
        int e = s0 + W < n ? s0 + W : n, T = e - s0;
        int r0 = s0 == 0 ? 0 : prev_end - s0;
        if (t->o.skip_bos && r0 == 0) r0 = 1;
        if (r0 < T) {
            t->win0 = s0;
            t->r0 = r0;
            if (fwd_eval(f, ids + s0, T, 0, NULL, FWD_LOGITS_NONE))
                return err_prefix("document %lld, tokens %d..%d", (long long)doc, s0, e - 1);
            t->counts.counted += T - r0;
            t->counts.fwd_tokens += T;
            t->counts.windows++;
            if (t->st) t->n_qfed = t->counts.counted;
        }
        prev_end = e;
        if (e >= n) break;
    }
    if (per_doc) flush_doc(t);
    return 0;
}

const trg_counts_t *trg_counts(const trg_t *t) { return &t->counts; }

/* ---- finishing ------------------------------------------------------------------- */

static int cmp_ent(const void *a, const void *b, void *ctx) {
    const trg_t *t = ctx;
    const int32_t *ia = a, *ib = b;
    (void)t;
    const ent_t *ea = (const ent_t *)(t->ents + (size_t)*ia * t->ent_bytes);
    const ent_t *eb = (const ent_t *)(t->ents + (size_t)*ib * t->ent_bytes);
    if (weaker(eb, ea)) return -1; /* stronger first */
    if (weaker(ea, eb)) return 1;
    return 0;
}

static void finish_stats(trg_t *t, lstats_t *S) {
    size_t F = (size_t)t->n_ff;
    double n = (double)t->counts.counted;
    int nq = t->o.n_quantiles;
    S->n_dead = 0;
    memset(S->n_rare, 0, sizeof S->n_rare);
    memset(S->dhist, 0, sizeof S->dhist);
    for (size_t j = 0; j < F; j++) {
        double M2, M3, M4, mean;
        if (t->o.exact_stats) {
            mean = gsl_rstat_mean(S->rws[j]);
            S->var[j] = gsl_rstat_variance(S->rws[j]);
            S->skew[j] = gsl_rstat_skew(S->rws[j]);
            S->kurt[j] = gsl_rstat_kurtosis(S->rws[j]);
        } else {
            /* gsl_rstat's definitions (rstat.c): sample variance M2/(n-1);
             * skew = (n-1)^1.5/n * M3 / M2^1.5; kurtosis = (n-1)^2/n * M4/M2^2 - 3. */
            mean = S->mean[j];
            M2 = S->M2[j];
            M3 = S->M3[j];
            M4 = S->M4[j];
            S->var[j] = n > 1 ? M2 / (n - 1.0) : 0.0;
            S->skew[j] = n > 0 ? (pow(n - 1.0, 1.5) / n * M3) / pow(M2, 1.5) : 0.0;
            S->kurt[j] = n > 0 ? (((n - 1.0) / n) * (n - 1.0) * M4) / (M2 * M2) - 3.0 : 0.0;
        }
        S->fmean[j] = n > 0 ? mean : NAN;
        if (n == 0) S->var[j] = S->skew[j] = S->kurt[j] = NAN;
        double dens = n > 0 ? (double)S->active[j] / n : NAN;
        S->density[j] = dens;
        for (int q = 0; q < nq; q++) {
            gsl_rstat_quantile_workspace *w = S->qws[(size_t)q * F + j];
            S->quant[(size_t)q * F + j] = t->n_qfed > 0 ? gsl_rstat_quantile_get(w) : NAN;
        }
        if (n == 0) continue;
        if (S->active[j] == 0) {
            S->n_dead++;
            S->dhist[0]++;
        } else {
            int b = (int)floor((log10(dens) + 8.0) * 2.0);
            if (b < 0) b = 0;
            if (b > D_BINS - 2) b = D_BINS - 2;
            S->dhist[1 + b]++;
        }
        if (dens < 1e-4) S->n_rare[0]++;
        if (dens < 1e-3) S->n_rare[1]++;
        if (dens < 1e-2) S->n_rare[2]++;
    }
}

int trg_finish(trg_t *t) {
    PRB_ASSERT(!t->finished);
    t->finished = 1;
    size_t SF = (size_t)t->n_slots * t->n_ff;
    if (t->N > 0) {
        /* Heap index arrays become sorted lists of global entry indices. */
#pragma omp parallel for schedule(dynamic, 64)
        for (size_t nj = 0; nj < SF; nj++) {
            int32_t *h = t->heap + nj * t->N;
            int c = t->cnt[nj];
            for (int k = 0; k < c; k++)
                h[k] = (int32_t)(nj * t->N + h[k]);
            qsort_r(h, (size_t)c, sizeof *h, cmp_ent, t);
        }
    }
    if (t->st)
        for (int s = 0; s < t->n_slots; s++)
            finish_stats(t, &t->st[s]);
    return 0;
}

int trg_n_layers(const trg_t *t) { return t->n_slots; }
int trg_layer(const trg_t *t, int slot) { return t->layers[slot]; }
int trg_n_ff(const trg_t *t) { return t->n_ff; }
const trg_opts_t *trg_opts(const trg_t *t) { return &t->o; }

int trg_count(const trg_t *t, int slot, int neuron) {
    return t->N ? t->cnt[(size_t)slot * t->n_ff + neuron] : 0;
}

static ent_t *sorted_ent(const trg_t *t, int slot, int neuron, int rank) {
    PRB_ASSERT(t->finished && rank >= 0 && rank < trg_count(t, slot, neuron));
    size_t nj = (size_t)slot * t->n_ff + neuron;
    return (ent_t *)(t->ents + (size_t)t->heap[nj * t->N + rank] * t->ent_bytes);
}

void trg_get(const trg_t *t, int slot, int neuron, int rank, trg_entry_t *out) {
    const ent_t *e = sorted_ent(t, slot, neuron, rank);
    out->key = e->key;
    out->pre = e->pre;
    out->up = e->up;
    out->doc = e->doc;
    out->pos = e->pos;
    out->token = e->token;
    out->next = e->next;
    out->next_rank = e->next_rank;
    out->n_ctx = e->n_ctx;
    out->ctx = e->ctx;
    out->ctx_prev = e->ctx_prev;
}

int trg_get_stats(const trg_t *t, int slot, trg_stats_t *s) {
    if (!t->st || !t->finished) return err_set("no statistics were computed");
    static double hlo[H_BINS], hhi[H_BINS], dlo[D_BINS];
    static int init;
    if (!init) {
        for (int k = 0; k < H_NE; k++) {
            double lo = ldexp(1.0, H_EMIN + k), hi = ldexp(1.0, H_EMIN + k + 1);
            hlo[H_NE + 1 + k] = lo;
            hhi[H_NE + 1 + k] = k == H_NE - 1 ? INFINITY : hi;
            hlo[H_NE - 1 - k] = k == H_NE - 1 ? -INFINITY : -hi;
            hhi[H_NE - 1 - k] = -lo;
        }
        hlo[H_NE] = -ldexp(1.0, H_EMIN);
        hhi[H_NE] = ldexp(1.0, H_EMIN);
        dlo[0] = -INFINITY;
        for (int b = 0; b < D_BINS - 1; b++)
            dlo[1 + b] = -8.0 + 0.5 * b;
        init = 1;
    }
    const lstats_t *S = &t->st[slot];
    s->mean = S->fmean;
    s->variance = S->var;
    s->skewness = S->skew;
    s->kurtosis = S->kurt;
    s->min = S->mn;
    s->max = S->mx;
    s->active = S->active;
    s->density = S->density;
    s->quantile = S->quant;
    s->n = t->counts.counted;
    s->n_hist = H_BINS;
    s->hist = S->hist;
    s->hist_lo = hlo;
    s->hist_hi = hhi;
    s->n_dhist = D_BINS;
    s->dhist = S->dhist;
    s->dhist_lo = dlo;
    s->n_dead = S->n_dead;
    memcpy(s->n_rare, S->n_rare, sizeof s->n_rare);
    return 0;
}

/* ---- agreement -------------------------------------------------------------------- */

/* Value vectors [i0, i0+nb) of layer L into V (nb, d).  WD caches the whole
 * (d, n_ff) down matrix for the untransposed (Llama) layout. */
static void value_block(const trg_t *t, int L, const float *WD, int i0, int nb, float *V) {
    const lin_t *down = &t->m->layers[L].down;
    int d = t->m->cfg.d_model, F = t->n_ff;
    if (down->transposed) { /* (n_ff, d): value i is row i (GPT-2 Conv1D c_proj) */
        tensor_get_rows(down->w, i0, nb, V);
        return;
    }
    for (int b = 0; b < nb; b++) /* (d, n_ff): value i is column i */
        for (int k = 0; k < d; k++)
            V[(size_t)b * d + k] = WD[(size_t)k * F + i0 + b];
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(double *v, int64_t n) {
    if (n <= 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int trg_agreement(trg_t *t) {
    PRB_ASSERT(t->finished);
    if (t->N == 0) return err_set("no triggers were kept (statistics only)");
    const model_t *m = t->m;
    int d = m->cfg.d_model, F = t->n_ff, V = m->cfg.vocab;
    int nb = (int)(((size_t)16 << 20) / (size_t)V);
    if (nb < 1) nb = 1;
    if (nb > 512) nb = 512;
    if (nb > F) nb = F;
    lin_t head = m->lm_head;
    head.b = NULL;
    size_t nscr = lin_scratch_floats(d, V);
    float *Vb = malloc((size_t)nb * d * sizeof(float));
    float *S = malloc((size_t)nb * V * sizeof(float));
    float *scr = head.w->dtype != DT_F32 ? malloc(nscr * sizeof(float)) : NULL;
    float *WD = malloc((size_t)d * F * sizeof(float));
    double *ranks = malloc((size_t)F * t->N * sizeof(double));
    double *tranks = malloc((size_t)F * sizeof(double));
    free(t->top1);
    free(t->agree);
    t->top1 = malloc((size_t)t->n_slots * F * sizeof(int32_t));
    t->agree = calloc((size_t)t->n_slots, sizeof *t->agree);
    int rc = -1;
    if (!Vb || !S || (head.w->dtype != DT_F32 && !scr) || !WD || !ranks || !tranks || !t->top1 ||
        !t->agree) {
        err_set("out of memory for the value projections (%d x %d scores)", nb, V);
        goto done;
    }
    for (int s = 0; s < t->n_slots; s++) {
        int L = t->layers[s];
        if (!m->layers[L].down.transposed) tensor_get_rows(m->layers[L].down.w, 0, d, WD);
        for (int i0 = 0; i0 < F; i0 += nb) {
            int n = F - i0 < nb ? F - i0 : nb;
            value_block(t, L, WD, i0, n, Vb);
            lin_apply(&head, Vb, n, d, S, V, scr, nscr);
#pragma omp parallel for schedule(dynamic, 4)
            for (int b = 0; b < n; b++) {
                const float *row = S + (size_t)b * V;
                int j = i0 + b, best = 0;
                for (int v = 1; v < V; v++)
                    if (row[v] > row[best]) best = v;
                t->top1[(size_t)s * F + j] = best;
                int c = trg_count(t, s, j);
                for (int r = 0; r < c; r++) {
                    ent_t *e = sorted_ent(t, s, j, r);
                    if (e->next < 0 || e->next >= V) continue;
                    float x = row[e->next];
                    int64_t gt = 0, eq = 0;
                    for (int v = 0; v < V; v++)
                        gt += row[v] > x;
                    for (int v = 0; v < e->next; v++)
                        eq += row[v] == x;
                    e->next_rank = (int32_t)(gt + eq);
                }
            }
        }
        trg_agree_t *a = &t->agree[s];
        a->layer = L;
        a->n_neurons = F;
        a->vocab = V;
        int64_t nr = 0, nt = 0;
        for (int j = 0; j < F; j++) {
            int c = trg_count(t, s, j), first = 1;
            for (int r = 0; r < c; r++) {
                const ent_t *e = sorted_ent(t, s, j, r);
                if (e->next_rank < 0) continue;
                ranks[nr++] = e->next_rank;
                /* The neuron's top trigger: its strongest one that has a next
                 * token, if the neuron is active there at all. */
                if (first && e->v > 0.0f) {
                    tranks[nt++] = e->next_rank;
                    a->n_eval++;
                    a->n_agree += e->next == t->top1[(size_t)s * F + j];
                }
                first = 0;
            }
        }
        a->share_agree = a->n_eval ? (double)a->n_agree / a->n_eval : NAN;
        a->n_ranks = nr;
        double sum = 0;
        for (int64_t i = 0; i < nr; i++)
            sum += ranks[i];
        a->mean_rank = nr ? sum / (double)nr : NAN;
        a->median_rank = median_of(ranks, nr);
        sum = 0;
        for (int64_t i = 0; i < nt; i++)
            sum += tranks[i];
        a->top_mean_rank = nt ? sum / (double)nt : NAN;
        a->top_median_rank = median_of(tranks, nt);
    }
    rc = 0;
done:
    free(Vb);
    free(S);
    free(scr);
    free(WD);
    free(ranks);
    free(tranks);
    if (rc) {
        free(t->agree);
        t->agree = NULL;
    }
    return rc;
}

const trg_agree_t *trg_agree_table(const trg_t *t, int slot) {
    return t->agree ? &t->agree[slot] : NULL;
}

const int32_t *trg_value_top1(const trg_t *t, int slot) {
    return t->top1 ? t->top1 + (size_t)slot * t->n_ff : NULL;
}

/* ---- combining recorders (analysis/dist: ranks that each ran part of a corpus) ---- */

/* The packed state: a header, then per neuron its kept entries (any order),
 * then per layer the running statistics.  Native byte order: all ranks run
 * the same binary. */
#define PACK_MAGIC 0x3130475254425250ull /* "PRBTRG01" */
typedef struct {
    uint64_t magic;
    int32_t n_slots, n_ff, N, C, stats, nq, quantile_every, pad;
    uint64_t ent_bytes;
    trg_counts_t counts;
} pack_hdr_t;

void trg_shift_docs(trg_t *t, int64_t offset) {
    PRB_ASSERT(!t->finished);
    size_t SF = (size_t)t->n_slots * t->n_ff;
    for (size_t nj = 0; nj < SF && t->N; nj++)
        for (int k = 0; k < t->cnt[nj]; k++)
            ent_at(t, (int)(nj / t->n_ff), (int)(nj % t->n_ff), k)->doc += offset;
}

int trg_pack(const trg_t *t, void **buf, size_t *len) {
    PRB_ASSERT(!t->finished);
    if (t->o.exact_stats) return err_set("--exact-stats is a single-process reference path");
    size_t F = (size_t)t->n_ff, SF = (size_t)t->n_slots * F, nq = (size_t)t->o.n_quantiles;
    size_t n_ent = 0;
    for (size_t nj = 0; nj < SF && t->N; nj++)
        n_ent += (size_t)t->cnt[nj];
    size_t per_slot = F * (4 * sizeof(double) + 2 * sizeof(float) + sizeof(int64_t)) +
                      H_BINS * sizeof(int64_t) + nq * F * sizeof(gsl_rstat_quantile_workspace);
    size_t total = sizeof(pack_hdr_t) + (t->N ? SF * sizeof(int32_t) : 0) + n_ent * t->ent_bytes +
                   (t->st ? (size_t)t->n_slots * per_slot : 0);
    unsigned char *b = malloc(total), *p = b;
    if (!b) return err_set("out of memory packing %.1f MiB of triggers", total / 1048576.0);
    pack_hdr_t h = {PACK_MAGIC, t->n_slots,    t->n_ff,     t->N,
                    t->C,       t->st != NULL, (int32_t)nq, t->o.quantile_every,
                    0,          t->ent_bytes,  t->counts};
    memcpy(p, &h, sizeof h);
    p += sizeof h;
    if (t->N) {
        memcpy(p, t->cnt, SF * sizeof(int32_t));
        p += SF * sizeof(int32_t);
        for (size_t nj = 0; nj < SF; nj++)
            for (int k = 0; k < t->cnt[nj]; k++) {
                memcpy(p, ent_at(t, (int)(nj / F), (int)(nj % F), k), t->ent_bytes);
                p += t->ent_bytes;
            }
    }
    for (int s = 0; t->st && s < t->n_slots; s++) {
        const lstats_t *S = &t->st[s];
#define PUT(src, bytes) (memcpy(p, (src), (bytes)), p += (bytes))
        PUT(S->mean, F * sizeof(double));
        PUT(S->M2, F * sizeof(double));
        PUT(S->M3, F * sizeof(double));
        PUT(S->M4, F * sizeof(double));
        PUT(S->mn, F * sizeof(float));
        PUT(S->mx, F * sizeof(float));
        PUT(S->active, F * sizeof(int64_t));
        PUT(S->hist, H_BINS * sizeof(int64_t));
        for (size_t i = 0; i < nq * F; i++)
            PUT(S->qws[i], sizeof(gsl_rstat_quantile_workspace));
#undef PUT
    }
    PRB_ASSERT((size_t)(p - b) == total);
    *buf = b;
    *len = total;
    return 0;
}

/* Puts a whole entry into neuron J's heap if it ranks among the top N (the
 * same total order as the stream: value, then lower document, then lower
 * position — so the merged lists do not depend on how the corpus was cut). */
static void heap_put(trg_t *t, int s, int j, const ent_t *src) {
    size_t nj = (size_t)s * t->n_ff + j;
    if (t->cnt[nj] == t->N && !weaker(ent_at(t, s, j, t->heap[nj * t->N]), src)) return;
    memcpy(heap_next(t, s, j), src, t->ent_bytes);
    heap_fix(t, s, j);
}

/* Count of values <= X in a P^2 state (n >= 5), read off its markers as a
 * piecewise-linear CDF: marker i sits at height q[i] with npos[i] values at
 * or below it. */
static double p2_count(const gsl_rstat_quantile_workspace *w, double x) {
    if (x < w->q[0]) return 0;
    if (x >= w->q[4]) return (double)w->n;
    for (int i = 0; i < 4; i++)
        if (x < w->q[i + 1]) {
            double span = w->q[i + 1] - w->q[i];
            double f = span > 0 ? (x - w->q[i]) / span : 1.0;
            return w->npos[i] + f * (w->npos[i + 1] - w->npos[i]);
        }
    return (double)w->n;
}

/* The height where the summed count of A and B reaches TARGET. */
static double p2_inverse(const gsl_rstat_quantile_workspace *a,
                         const gsl_rstat_quantile_workspace *b, double target) {
    double x[10];
    for (int i = 0; i < 5; i++)
        x[i] = a->q[i], x[5 + i] = b->q[i];
    qsort(x, 10, sizeof *x, cmp_double);
    double lo = x[0], clo = p2_count(a, lo) + p2_count(b, lo);
    if (target <= clo) return lo;
    for (int i = 1; i < 10; i++) {
        double c = p2_count(a, x[i]) + p2_count(b, x[i]);
        if (c >= target) return c > clo ? lo + (x[i] - lo) * (target - clo) / (c - clo) : x[i];
        lo = x[i];
        clo = c;
    }
    return x[9];
}

/* Merges P^2 state B into A.  P^2 cannot be merged exactly: the result is a
 * P^2 state whose five markers are placed on the count-weighted mixture of
 * both states' piecewise-linear CDFs (min and max exact).  Fewer than five
 * values are raw values and are simply added. */
static void p2_merge(gsl_rstat_quantile_workspace *a, const gsl_rstat_quantile_workspace *b) {
    if (b->n == 0) return;
    if (b->n < 5) {
        for (size_t i = 0; i < b->n; i++)
            gsl_rstat_quantile_add(b->q[i], a);
        return;
    }
    if (a->n < 5) {
        gsl_rstat_quantile_workspace tmp = *b;
        for (size_t i = 0; i < a->n; i++)
            gsl_rstat_quantile_add(a->q[i], &tmp);
        *a = tmp;
        return;
    }
    double n = (double)(a->n + b->n), p = a->p;
    double frac[5] = {0, p / 2, p, (1 + p) / 2, 1};
    gsl_rstat_quantile_workspace m = *a;
    m.n = a->n + b->n;
    for (int i = 0; i < 5; i++) {
        m.np[i] = 1 + (n - 1) * frac[i];
        m.npos[i] = (int)floor(m.np[i] + 0.5);
        if (i > 0 && m.npos[i] <= m.npos[i - 1]) m.npos[i] = m.npos[i - 1] + 1;
        m.q[i] = p2_inverse(a, b, m.np[i]);
    }
    m.q[0] = a->q[0] < b->q[0] ? a->q[0] : b->q[0];
    m.q[4] = a->q[4] > b->q[4] ? a->q[4] : b->q[4];
    m.npos[4] = (int)m.n;
    *a = m;
}

int trg_merge(trg_t *t, const void *buf, size_t len) {
    PRB_ASSERT(!t->finished);
    const unsigned char *p = buf, *end = p + len;
    pack_hdr_t h;
    if (len < sizeof h) return err_set("merging triggers: short state (%zu bytes)", len);
    memcpy(&h, p, sizeof h);
    p += sizeof h;
    size_t F = (size_t)t->n_ff, SF = (size_t)t->n_slots * F, nq = (size_t)t->o.n_quantiles;
    if (h.magic != PACK_MAGIC || h.n_slots != t->n_slots || h.n_ff != t->n_ff || h.N != t->N ||
        h.C != t->C || h.stats != (t->st != NULL) || (size_t)h.nq != nq ||
        h.ent_bytes != t->ent_bytes)
        return err_set("merging triggers: the ranks disagree about layers, neurons or options");
    if (t->N) {
        if ((size_t)(end - p) < SF * sizeof(int32_t))
            return err_set("merging triggers: short state");
        const int32_t *cnt = (const int32_t *)p;
        p += SF * sizeof(int32_t);
        for (size_t nj = 0; nj < SF; nj++) {
            if (cnt[nj] < 0 || cnt[nj] > t->N || (size_t)(end - p) < (size_t)cnt[nj] * t->ent_bytes)
                return err_set("merging triggers: corrupt state");
            for (int k = 0; k < cnt[nj]; k++) {
                heap_put(t, (int)(nj / F), (int)(nj % F), (const ent_t *)p);
                p += t->ent_bytes;
            }
        }
    }
    double na = (double)t->counts.counted, nb = (double)h.counts.counted, n = na + nb;
    for (int s = 0; t->st && s < t->n_slots; s++) {
        lstats_t *S = &t->st[s];
        size_t need = F * (4 * sizeof(double) + 2 * sizeof(float) + sizeof(int64_t)) +
                      H_BINS * sizeof(int64_t) + nq * F * sizeof(gsl_rstat_quantile_workspace);
        if ((size_t)(end - p) < need) return err_set("merging triggers: short state");
        const double *mb = (const double *)p, *M2b = mb + F, *M3b = M2b + F, *M4b = M3b + F;
        const float *mnb = (const float *)(M4b + F), *mxb = mnb + F;
        const unsigned char *q = (const unsigned char *)(mxb + F);
        int64_t actb, hb;
        /* Pebay (2008) pairwise combination of central moments, as in
         * stats_rows, with both sides' full M2..M4. */
        for (size_t j = 0; j < F && nb > 0; j++) {
            if (na == 0) {
                S->mean[j] = mb[j], S->M2[j] = M2b[j], S->M3[j] = M3b[j], S->M4[j] = M4b[j];
            } else {
                double d = mb[j] - S->mean[j], d2 = d * d;
                double M2a = S->M2[j], M3a = S->M3[j];
                S->M4[j] += M4b[j] +
                            d2 * d2 * na * nb * (na * na - na * nb + nb * nb) / (n * n * n) +
                            6.0 * d2 * (na * na * M2b[j] + nb * nb * M2a) / (n * n) +
                            4.0 * d * (na * M3b[j] - nb * M3a) / n;
                S->M3[j] += M3b[j] + d2 * d * na * nb * (na - nb) / (n * n) +
                            3.0 * d * (na * M2b[j] - nb * M2a) / n;
                S->M2[j] += M2b[j] + d2 * na * nb / n;
                S->mean[j] += d * nb / n;
            }
            if (mnb[j] < S->mn[j]) S->mn[j] = mnb[j];
            if (mxb[j] > S->mx[j]) S->mx[j] = mxb[j];
        }
        for (size_t j = 0; j < F; j++) {
            memcpy(&actb, q + j * sizeof(int64_t), sizeof actb);
            S->active[j] += actb;
        }
        q += F * sizeof(int64_t);
        for (int b = 0; b < H_BINS; b++) {
            memcpy(&hb, q + (size_t)b * sizeof(int64_t), sizeof hb);
            S->hist[b] += hb;
        }
        q += H_BINS * sizeof(int64_t);
        for (size_t i = 0; i < nq * F; i++) {
            gsl_rstat_quantile_workspace w;
            memcpy(&w, q, sizeof w);
            q += sizeof w;
            p2_merge(S->qws[i], &w);
        }
        p = q;
    }
    if (p != end)
        return err_set("merging triggers: %zu stray bytes in the state", (size_t)(end - p));
    t->counts.docs += h.counts.docs;
    t->counts.tokens += h.counts.tokens;
    t->counts.counted += h.counts.counted;
    t->counts.fwd_tokens += h.counts.fwd_tokens;
    t->counts.windows += h.counts.windows;
    if (t->st) t->n_qfed = t->counts.counted;
    return 0;
}
