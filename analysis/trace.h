/* trace: one prompt read through the FFN sub-updates that build its
 * prediction (Geva et al. 2022, "Transformer Feed-Forward Layers Build
 * Predictions by Promoting Concepts in the Vocabulary Space"), with the
 * interventions LM-Debugger added (Geva et al. 2022, demo track): switch
 * neurons off, scale them, set them, switch them "on", and watch the
 * prediction move.
 *
 * For each traced position p and each layer l the trace keeps:
 *   - the logit lens of the residual before the FFN (resid_mid) and after it
 *     (resid_post): the full final norm recomputed for that residual, then the
 *     unembedding;
 *   - the FFN output o_l = sum_i m_i v_i + b2 and its projection through the
 *     linearised final norm (below);
 *   - every neuron's key activation m_i (gated FFNs: also act(gate_i.x) and
 *     up_i.x, whose signs multiply into m_i), its value norm ||v_i||, and its
 *     direct contribution to the target logit;
 *   - the top-N neurons by |m_i|*||v_i|| (LM-Debugger's ranking) and by
 *     contribution, each with the tokens its sub-update promotes.
 *
 * Linearised final norm.  The final norm is y = g (x - mu)/sigma + b (RMSNorm:
 * mu = 0, sigma = sqrt(mean(x^2) + eps); LayerNorm: mu = mean(x), sigma =
 * sqrt(var(x) + eps)).  Holding sigma at its value for the actual final
 * residual x_L at p (of the unmodified run), a residual component D adds
 *     u_t . (g * (D - mean(D) [LayerNorm only])) / sigma
 * to the logit of target t (u_t: row t of the unembedding); the final bias b
 * and the LM head's bias belong to no component.  Hence
 *     contribution_i = m_i * ((u_t * g) . (v_i - mean(v_i) [LN])) / sigma,
 * computed for all neurons of a layer by one GEMV of the target direction
 * (u_t * g, centred for LayerNorm) against the value matrix.  Because sigma
 * belongs to x_L itself, the components (embeddings, attention outputs, FFN
 * outputs) add up exactly to the target logit minus u_t.b (+ head bias).
 *
 * Interventions act on key activations at HOOK_FFN_KEY, at the traced
 * positions (or every position), and at every generated position: the
 * forward pass continues from the modified coefficients.  "on" sets a neuron
 * to the largest coefficient of its layer at that position (LM-Debugger).
 *
 * Limits: one prompt per trace; ablate-top needs a single traced position.
 * Nothing here prints. */
#ifndef PROBE_TRACE_H
#define PROBE_TRACE_H

#include "core/fwd.h"

#include <stdint.h>
#include <stdio.h>

typedef enum { TRACE_IV_ABLATE = 0, TRACE_IV_SCALE, TRACE_IV_SET, TRACE_IV_ON } trace_ivkind_t;

/* One intervention on neuron NEURON of LAYER: ablate (m = 0), scale (m *=
 * VALUE), set (m = VALUE) or on (m = max of the layer's coefficients). */
typedef struct {
    int layer, neuron;
    trace_ivkind_t kind;
    float value; /* scale factor or set value; unused for ablate and on */
} trace_iv_t;

/* "ablate", "scale", "set", "on". */
const char *trace_iv_kind_name(trace_ivkind_t k);

/* Parses SPEC — "L:N[,L:N...]" for ablate/on, "L:N=x[,L:N=x...]" for
 * scale/set — and appends to *IVS (realloc'd; caller frees) / *N.  Layers
 * and neurons are 0-based and checked against N_LAYER and N_FF.  -1 with err
 * set naming the bad item and the valid ranges. */
int trace_parse_ivs(const char *spec, trace_ivkind_t kind, int n_layer, int n_ff, trace_iv_t **ivs,
                    int *n);

/* -1 with err set if a neuron appears twice in IVS[0..N) (ambiguous). */
int trace_check_ivs(const trace_iv_t *ivs, int n);

/* Resolves TEXT to exactly one token id of TOK: the token whose text is
 * exactly TEXT.  Otherwise -1 with err set showing how TEXT tokenizes and
 * suggesting --target-id. */
int trace_resolve_target(const tok_t *tok, const char *text, int *id);

typedef struct {
    int k_tokens;      /* tokens in each top list (prediction, lenses, FFN projection) */
    int k_neurons;     /* neurons kept per layer and ranking */
    int k_promoted;    /* promoted tokens kept per listed neuron */
    int n_generate;    /* greedy continuation length (0 = none) */
    int intervene_all; /* interventions at every prompt position, not only the traced ones */
} trace_opts_t;

/* One traced position of one run.  Rows of (L, .) arrays are layers. */
typedef struct {
    int pos, target;
    float sigma;      /* final-norm sigma of the unmodified run's x_L at pos */
    float *logits;    /* (vocab) final logits */
    int32_t *top_ids; /* (k_tokens) */
    float *top_probs; /* (k_tokens) */
    int target_rank;  /* 0-based; ties rank the lower token id first */
    float target_prob, target_logit;
    /* Logit lens: row 2l = before layer l's FFN (resid_mid), 2l+1 = after it
     * (resid_post). */
    float *lens_last;          /* (vocab) lens logits after the last layer (= logits) */
    int32_t *lens_top_ids;     /* (2L, k_tokens) */
    float *lens_top_probs;     /* (2L, k_tokens) */
    int32_t *lens_target_rank; /* (2L) */
    float *lens_target_prob;   /* (2L) */
    float *lens_target_logit;  /* (2L) */
    /* FFN output through the linearised final norm (a logit change, no bias). */
    int32_t *ffn_top_ids;                    /* (L, k_tokens) */
    float *ffn_top_logits;                   /* (L, k_tokens) */
    float *ffn_target_logit;                 /* (L) equals sum_i contribution + b2's share */
    float *resid_mid, *resid_post, *ffn_out; /* (L, d) */
    float *key;          /* (L, n_ff) key activation m_i, as used (after interventions) */
    float *pre;          /* (L, n_ff) gate pre-activation (gated) or W1.x + b1 */
    float *gate_act;     /* (L, n_ff) act(gate.x), gated only (else NULL) */
    float *up;           /* (L, n_ff) up.x, gated only (else NULL) */
    float *value_target; /* (L, n_ff) ((u_t * g) . (v_i - mean [LN])) / sigma */
    float *contrib;      /* (L, n_ff) m_i * value_target */
    int32_t *by_norm;    /* (L, k_neurons) by |m_i| * ||v_i||, largest first */
    int32_t *by_contrib; /* (L, k_neurons) by contribution, largest first */
    /* Tokens each listed sub-update m_i v_i promotes: the value's top tokens
     * when m_i >= 0, its bottom tokens when m_i < 0 (scores E diag(g) v_i). */
    int32_t *promo_norm;    /* (L, k_neurons, k_promoted) */
    int32_t *promo_contrib; /* (L, k_neurons, k_promoted) */
} trace_pos_t;

typedef struct {
    int done;
    trace_pos_t *pos; /* (n_pos) */
    int32_t *gen_ids; /* (n_gen) greedy continuation, or NULL */
    int n_gen;
} trace_run_t;

typedef struct trace {
    const model_t *m; /* borrowed */
    int n_layer, d, n_ff, vocab, gated, layernorm;
    trace_opts_t o;  /* k's clamped to vocab / n_ff */
    int T;           /* prompt tokens */
    int32_t *tokens; /* (T) */
    int n_pos;
    int32_t *positions; /* (n_pos) ascending */
    float *value_norm;  /* (L, n_ff) ||v_i|| */
    trace_iv_t *ivs;    /* (n_iv) the interventions of the intervened run */
    int n_iv;
    trace_run_t base, iv; /* iv.done only after trace_run_intervened() */
    void *priv;           /* forward pass and scratch */
} trace_t;

/* Prepares a trace of TOKENS[0..T) at POSITIONS[0..N_POS) (distinct,
 * 0..T-1; sorted here).  Computes the value norms of every layer.  NULL with
 * err set (position out of range, context too long for T + n_generate, out
 * of memory).  M must outlive the trace; caller frees with trace_free(). */
trace_t *trace_new(const model_t *m, const int *tokens, int T, const int *positions, int n_pos,
                   const trace_opts_t *o);
void trace_free(trace_t *t);

/* Runs the unmodified model.  TARGET is a token id for every position, or -1
 * for each position's own top prediction.  -1 with err set. */
int trace_run_base(trace_t *t, int target);

/* The K neurons (over all layers) with the largest contributions to the
 * target at the (single) traced position of the base run, as ablations
 * appended to *IVS / *N (ties: lower layer, then lower neuron).  -1 with err. */
int trace_top_ablations(const trace_t *t, int k, trace_iv_t **ivs, int *n);

/* Re-runs the model with IVS[0..N) (copied) active; fills t->iv.  Contributions
 * keep the base run's sigma.  -1 with err set. */
int trace_run_intervened(trace_t *t, const trace_iv_t *ivs, int n);

/* w[i] = a . v_i for every neuron of LAYER (one GEMV, weights dequantised a
 * block at a time), and the same from plain loops in double — tests check
 * they agree.  A is (d), W is (n_ff).  -1 with err set when out of memory. */
int trace_value_dots(const model_t *m, int layer, const float *a, float *w);
int trace_value_dots_naive(const model_t *m, int layer, const float *a, float *w);

/* Writers.  HDF5 schema and CSV columns: docs/FORMAT.md ("trace").  LAYERS
 * (N_LAYERS) restricts the CSV rows; COMMAND and PROMPT are stored as
 * metadata.  -1 with err set. */
int trace_write_h5(const trace_t *t, const char *path, const char *prompt, const char *command);
int trace_write_csv(const trace_t *t, FILE *fp, const int *layers, int n_layers);

#endif
