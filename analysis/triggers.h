/* triggers: the inputs that most activate each FFN neuron over a corpus
 * (Geva et al. 2021, "Transformer Feed-Forward Layers Are Key-Value
 * Memories", Section 3), streamed with bounded memory, plus the key-value
 * agreement of their Section 4 and per-neuron activation statistics.
 *
 * Documents go through the model in windows of W tokens with stride S
 * (window k covers document tokens [kS, kS+W)); every document position is
 * counted once, in the first window that holds it (so it sees the most
 * context).  With skip_bos, window position 0 is never counted (the BOS of a
 * document's first window, and the context-free first token of later windows
 * when S == W).
 *
 * Triggers: for each selected neuron, the top N counted positions by the
 * ranking activation (the key activation m_i, or the pre-activation x.k_i the
 * 2021 paper ranked by), largest first, ties to the lower document and then
 * the lower position.  In per-document mode a document contributes at most
 * its best position (as the paper's code keeps one trigger per sentence).
 * Each neuron's candidates live in a bounded min-heap; its current minimum is
 * kept in a flat threshold array so the common case is one compare.  A heap
 * entry carries the prefix token ids (the last CONTEXT tokens up to the
 * trigger), so the corpus is read only once (stdin works) and memory is
 * n_layers x n_ff x N x (48 + 4 x CONTEXT) bytes, whatever the corpus size.
 * NaN activations never become triggers.
 *
 * Statistics of the key activation over all counted positions, per neuron:
 * mean, variance, skewness, excess kurtosis (GSL gsl_rstat's definitions),
 * min, max, density (share of positions whose pre-activation is > 0: the
 * activation function's "on" half; for ReLU exactly where the neuron fires),
 * and running quantiles (P^2 estimators, GSL gsl_rstat_quantile).  The fast
 * path merges per-window central moments (Pebay 2008) in double precision and
 * feeds the quantile estimators every QUANTILE_EVERY-th position; the exact
 * path (exact_stats) feeds every value to one gsl_rstat workspace per neuron
 * and is the reference the fast path is tested against.  Per layer: a
 * histogram of key activations by sign and power-of-two magnitude, and one of
 * neuron densities.
 *
 * Nothing here prints; errors come back as -1/NULL with err set. */
#ifndef PROBE_TRIGGERS_H
#define PROBE_TRIGGERS_H

#include "core/fwd.h"

#include <stdint.h>

typedef enum { TRG_PER_DOC = 0, TRG_PER_TOKEN } trg_per_t;
typedef enum { TRG_RANK_POST = 0, TRG_RANK_PRE } trg_rank_t;

#define TRG_MAX_QUANTILES 8

typedef struct {
    int top;            /* N triggers kept per neuron (ignored with stats_only) */
    int context;        /* prefix tokens kept per trigger (>= 1) */
    int window, stride; /* tokens per forward window; offset between windows (<= window) */
    trg_per_t per;
    trg_rank_t rank_by;
    int skip_bos;       /* never count window position 0 */
    int stats_only;     /* statistics, no triggers */
    int stats;          /* compute statistics */
    int exact_stats;    /* every value through gsl_rstat (slow reference path) */
    int quantile_every; /* fast path: feed quantile estimators every k-th position */
    int n_quantiles;
    double quantiles[TRG_MAX_QUANTILES]; /* in (0, 1) */
    int64_t par_min; /* values in a layer window below which the hook uses one thread */
} trg_opts_t;

/* Defaults: top 20, context 32, window = the model's context (at most 2048;
 * 128 when unknown), stride = window, per document, rank by key activation,
 * skip_bos on, statistics on, quantiles 0.5 and 0.99 every 32nd position,
 * threads for layer windows of at least 2^19 values. */
void trg_opts_default(trg_opts_t *o, const model_t *m);
/* Checks options against the model; -1 with err naming the bad option. */
int trg_opts_check(const trg_opts_t *o, const model_t *m);

typedef struct trg trg_t;

/* A recorder for LAYERS[0..N) (0-based, ascending, validated).  NULL with err
 * set (out of memory names the bytes wanted).  The model must outlive it. */
trg_t *trg_new(const model_t *m, const int *layers, int n, const trg_opts_t *o);
void trg_free(trg_t *t);
/* Bytes held by heaps and statistics (for messages). */
uint64_t trg_mem_bytes(const trg_t *t);

/* Subscribes to F's FFN hooks (replaces any other hook). */
void trg_attach(trg_t *t, fwd_t *f);
/* The hook itself, for callers that chain hooks (tests); USER is the trg_t. */
int trg_hook(void *user, int layer, hook_point_t p, float *data, int T, int width, int pos0);

/* Runs document DOC (token ids IDS[0..N), BOS included when the tokenizer
 * adds one) through F window by window, updating triggers and statistics.
 * Documents must come in increasing DOC order.  F must hold the window
 * (fwd_new(m, window, window)).  With RECORD 0 the windows only run through
 * the model (plain forward mode, for overhead measurements). */
int trg_run_doc(trg_t *t, fwd_t *f, const int *ids, int n, int64_t doc, int record);

/* Counters. */
typedef struct {
    int64_t docs;       /* documents run */
    int64_t tokens;     /* document tokens */
    int64_t counted;    /* positions counted (per layer) */
    int64_t fwd_tokens; /* tokens through the model (windows overlap with stride < window) */
    int64_t windows;
} trg_counts_t;
const trg_counts_t *trg_counts(const trg_t *t);

/* Ends the stream: sorts each neuron's triggers and finalises statistics.
 * Call once, after the last document. */
int trg_finish(trg_t *t);

/* One trigger, as kept (valid until trg_free). */
typedef struct {
    float key; /* key activation m_i */
    float pre; /* pre-activation: gate.x (gated) or W1.x + b1 */
    float up;  /* up.x (gated FFNs; 0 otherwise) */
    int64_t doc;
    int32_t pos;        /* position in the document's tokens (BOS = 0) */
    int32_t token;      /* the trigger token id */
    int32_t next;       /* the next document token id, -1 at the document's end */
    int32_t next_rank;  /* rank of NEXT in the neuron's value projection (0 = top), -1 unknown */
    int n_ctx;          /* prefix ids in CTX; CTX[n_ctx - 1] == token */
    const int32_t *ctx; /* borrowed */
    int32_t ctx_prev;   /* the token before CTX[0], -1 if CTX starts the document */
} trg_entry_t;

int trg_n_layers(const trg_t *t);
int trg_layer(const trg_t *t, int slot);
int trg_n_ff(const trg_t *t);
const trg_opts_t *trg_opts(const trg_t *t);
/* Triggers kept for NEURON of layer SLOT (<= top), after trg_finish. */
int trg_count(const trg_t *t, int slot, int neuron);
/* Trigger RANK (0 = strongest) of NEURON of layer SLOT, after trg_finish. */
void trg_get(const trg_t *t, int slot, int neuron, int rank, trg_entry_t *e);

/* Per-layer statistics, after trg_finish (arrays of n_ff, borrowed). */
typedef struct {
    const double *mean, *variance, *skewness, *kurtosis;
    const float *min, *max;
    const int64_t *active;  /* positions with pre-activation > 0 */
    const double *density;  /* active / counted */
    const double *quantile; /* (n_quantiles, n_ff) */
    int64_t n;              /* counted positions */
    /* Key activations by sign and magnitude octave: bin b covers signed values
     * in [lo[b], hi[b]) for positives, (lo[b], hi[b]] for negatives (the
     * octave 2^e <= |x| < 2^(e+1)); the middle bin holds |x| < 2^-24 and 0;
     * the outer bins extend to infinity. */
    int n_hist;
    const int64_t *hist;
    const double *hist_lo, *hist_hi;
    /* Neurons by density: bin 0 dead (density 0), then log10(density) in
     * half-decades [-8, -7.5), ..., [-0.5, 0]; bin 1 also holds density < 1e-8. */
    int n_dhist;
    const int64_t *dhist;
    const double *dhist_lo; /* log10 lower edge of each bin (-inf for dead) */
    int64_t n_dead;         /* density 0 */
    int64_t n_rare[3];      /* density < 1e-4, < 1e-3, < 1e-2 */
} trg_stats_t;
int trg_get_stats(const trg_t *t, int slot, trg_stats_t *s);

/* Key-value agreement (Section 4): projects each neuron's value vector onto
 * the vocabulary (the output embedding times v_i, no final norm; value i is
 * column i of Llama's down_proj, row i of GPT-2's Conv1D c_proj), stores the
 * exact rank of every trigger's next token (ties to the lower token id) and
 * each neuron's top-1 token.  After trg_finish.  Uses BLAS; value vectors go
 * through in blocks, so memory is bounded by a block of (neurons x vocab). */
int trg_agreement(trg_t *t);

typedef struct {
    int layer;
    int n_neurons;
    /* A neuron's top trigger here is its strongest trigger that has a next
     * token (one at a document's end has none); it is evaluated when its
     * ranking activation is > 0 (a neuron never active has no trigger). */
    int n_eval;                            /* neurons evaluated */
    int n_agree;                           /* ... whose value top-1 token is that next token */
    double share_agree;                    /* n_agree / n_eval (NaN if n_eval is 0) */
    int64_t n_ranks;                       /* triggers with a next token */
    double mean_rank, median_rank;         /* over all those triggers */
    double top_mean_rank, top_median_rank; /* over the evaluated top triggers */
    int vocab;                             /* chance: share 1/vocab, mean rank (vocab-1)/2 */
} trg_agree_t;
/* Per-layer table after trg_agreement; NULL before. */
const trg_agree_t *trg_agree_table(const trg_t *t, int slot);
/* Value top-1 token per neuron (n_ff, borrowed) after trg_agreement. */
const int32_t *trg_value_top1(const trg_t *t, int slot);

/* Combining recorders that each ran a contiguous part of the corpus (MPI
 * ranks, analysis/dist), before trg_finish.  trg_shift_docs() adds OFFSET to
 * the document ids of every kept trigger (a part's ids start at 0).
 * trg_pack() serialises heaps, counters and running statistics into *BUF
 * (malloc'd, caller frees); trg_merge() folds such a state into T, which
 * must have the same model, layers and options.  Triggers merge exactly
 * (the same total order as the stream); means and central moments merge by
 * Pebay's pairwise formulas; min, max, counts and histograms exactly.  The
 * P^2 running quantiles cannot be merged exactly: the merged estimator's
 * markers are placed on the count-weighted mixture of the parts' marker
 * CDFs, an approximation that differs from a single process.  Not with
 * exact_stats.  -1 with err set. */
void trg_shift_docs(trg_t *t, int64_t offset);
int trg_pack(const trg_t *t, void **buf, size_t *len);
int trg_merge(trg_t *t, const void *buf, size_t len);

#endif
