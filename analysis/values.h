/* values: FFN value vectors read in vocabulary space (Geva et al. 2021, 2022).
 *
 * Neuron i of layer l adds m_i * v_i to the residual stream; v_i (d) is its
 * value vector: column i of Llama's down_proj / GGUF ffn_down (d, n_ff), row i
 * of GPT-2's Conv1D c_proj (n_ff, d).  Projected through the model's own
 * unembedding E (vocab, d), v_i scores every token: the top tokens are what
 * the neuron promotes when its key fires, the bottom ones what it suppresses.
 *
 * The published tools disagree on how the final norm enters, so all three
 * readings are offered (VALUES_NORM_*):
 *   none   s = E v                    (LM-Debugger; Geva et al. 2022)
 *   gain   s = E diag(g) v            (the final norm's gain folded into E, as
 *                                      OpenAI's neuron tables and TransformerLens'
 *                                      folded weights do)
 *   final  s = E norm(v)              (the whole final norm applied to v, as the
 *                                      2022 paper's data scripts do): RMSNorm
 *                                      v / sqrt(mean(v^2) + eps) * g; LayerNorm
 *                                      (v - mean) / sqrt(var + eps) * g + b; plus
 *                                      the LM head's bias if it has one.
 * Scores are raw logits.  Rankings: larger score first, equal scores by lower
 * token id (bottom: smaller first, equal by lower id); rank 0 is the first.
 *
 * Computation: blocks of neurons (B x d) times the whole unembedding, one BLAS
 * sgemm per block into a (B x vocab) float32 score buffer, then per neuron a
 * linear pass: group maxima/minima bound the k-th score, so analysis/topk
 * only sees a few candidates, and the candidates within the float32 error
 * bound of the list's boundary get exact (double) scores that decide the
 * order.  Lists are thus exact — equal to a float64 brute force, ties by
 * lower id included — and independent of blocking and threads.  Then one
 * vectorised log-sum-exp pass (entropy).  Threads each take a block and run
 * single-threaded BLAS on it (see values.c for why).  Non-F32 value matrices
 * are dequantised a block at a time; a non-F32 unembedding is dequantised
 * once (vocab x d floats), since every block multiplies by all of it.
 * Working set: threads x B x (vocab + 2 d) floats plus that copy of E.
 *
 * Limits: one unembedding matrix (the model's lm_head / tied embedding); no
 * intermediate-layer lenses. */
#ifndef PROBE_VALUES_H
#define PROBE_VALUES_H

#include "core/model.h"

#include <stddef.h>
#include <stdint.h>

typedef enum { VALUES_NORM_NONE = 0, VALUES_NORM_GAIN, VALUES_NORM_FINAL } values_norm_t;

/* "none", "gain", "final". */
const char *values_norm_name(values_norm_t n);
/* Parses a mode name; -1 with err set for anything else. */
int values_parse_norm(const char *s, values_norm_t *out);

typedef struct {
    values_norm_t norm;
    int k_top, k_bottom; /* tokens kept per neuron, 0..vocab each */
    int softmax;         /* also softmax probabilities of the kept tokens */
    int promote_id;      /* token whose exact rank and score to report per neuron, or -1 */
    int block; /* neurons per block; 0 = automatic (1024, fewer for vocabularies over 64k) */
} values_opts_t;

/* Results for N neurons of one layer.  Every array is owned (values_res_free). */
typedef struct {
    int layer, n, k_top, k_bottom;
    int32_t *neuron;       /* (n) neuron indices, in the order asked for */
    int32_t *top_ids;      /* (n, k_top) highest score first */
    float *top_scores;     /* (n, k_top) */
    float *top_probs;      /* (n, k_top) softmax over the vocabulary, or NULL */
    int32_t *bottom_ids;   /* (n, k_bottom) lowest score first */
    float *bottom_scores;  /* (n, k_bottom) */
    float *bottom_probs;   /* (n, k_bottom) or NULL */
    float *value_norm;     /* (n) L2 norm of the raw value vector (before any norm mode) */
    float *max_logit;      /* (n) highest score */
    float *entropy;        /* (n) entropy (nats) of softmax(scores) over the vocabulary */
    float *lse;            /* (n) log-sum-exp of the scores (log of softmax's denominator) */
    int32_t *promote_rank; /* (n) 0-based rank of opts.promote_id, or NULL */
    float *promote_score;  /* (n) its score, or NULL */
    float *promote_prob;   /* (n) its probability (softmax only), or NULL */
} values_res_t;

typedef struct values values_t;

/* Prepares projections through M's unembedding with options O: checks them
 * (k <= vocab, the norm the mode needs exists, promote_id in range) and
 * allocates per-thread buffers for omp_get_max_threads() threads.  NULL with
 * err set.  M must outlive the result; caller frees with values_free(). */
values_t *values_new(const model_t *m, const values_opts_t *o);
void values_free(values_t *v);

/* Neurons per block and bytes of working buffers (scores, blocks, the
 * dequantised unembedding if any) — for reports. */
int values_block(const values_t *v);
size_t values_work_bytes(const values_t *v);

/* Projects neurons NEURONS[0..N) of LAYER (all n_ff of them, in order, when
 * NEURONS is NULL) into *OUT (caller frees with values_res_free).  -1 with err
 * set for an out-of-range layer or neuron (the message gives the layer's
 * size) or out of memory. */
int values_layer(values_t *v, int layer, const int *neurons, int n, values_res_t *out);

/* The same results from plain loops in double precision and a full sort (the
 * reference the tests hold values_layer to).  Slow: O(n d n_ff + n vocab d). */
int values_layer_naive(values_t *v, int layer, const int *neurons, int n, values_res_t *out);

void values_res_free(values_res_t *r);

/* Reverse search: the N neurons with the highest promote_score over the
 * results R[0..NR) (ties: lower layer, then lower neuron).  Writes result
 * index and row pairs into RES_IDX and ROW (N each); returns how many were
 * written (<= N).  -1 with err set if the results carry no promote scores. */
int values_promote_top(const values_res_t *r, int nr, int n, int *res_idx, int *row);

#endif
