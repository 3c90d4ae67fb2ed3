/* fwd: the forward pass over a whole prompt at once, with observation hooks.
 *
 * All T positions of a call go through batched matrix products (BLAS);
 * attention reads a key/value cache so a prompt can be extended token by token
 * (generation).  Analyses never live here: they register a hook and are
 * handed each named tensor as it is produced.  A hook may modify the buffer it
 * is given (interventions: zero or scale key activations); the forward pass
 * continues from the modified values. */
#ifndef PROBE_FWD_H
#define PROBE_FWD_H

#include "model.h"

typedef enum {
    HOOK_RESID_PRE = 0, /* (T, d)    residual stream entering the layer */
    HOOK_ATTN_OUT,      /* (T, d)    attention output (after o-projection) */
    HOOK_RESID_MID,     /* (T, d)    residual after attention (sequential blocks) */
    HOOK_FFN_IN,        /* (T, d)    normalised FFN input */
    HOOK_FFN_PRE,       /* (T, n_ff) gate pre-activation (gated) or W1 x + b1 (classic) */
    HOOK_FFN_UP,        /* (T, n_ff) up projection (gated FFNs only) */
    HOOK_FFN_KEY,       /* (T, n_ff) key activation m_i: act(gate)*up, or act(W1 x + b1) */
    HOOK_FFN_OUT,       /* (T, d)    FFN output (after W2 and its bias) */
    HOOK_RESID_POST,    /* (T, d)    residual leaving the layer */
    HOOK_FINAL_NORM,    /* (T, d)    final-norm output, layer = n_layer */
    HOOK_COUNT
} hook_point_t;

const char *hook_point_name(hook_point_t p);

/* Called for each requested point; DATA is row-major (T, width).  POS0 is the
 * position of row 0.  Return 0 to continue, -1 (err set) to abort the pass.
 * A hook may change DATA (interventions).  The pass does not touch a layer's
 * FFN_PRE and FFN_UP buffers again until after its FFN_KEY hook, so a hook
 * may keep those pointers until then (triggers reads them at the key). */
typedef int (*fwd_hook_fn)(void *user, int layer, hook_point_t point, float *data, int T, int width,
                           int pos0);

typedef struct fwd fwd_t;

/* State for up to MAX_CTX positions (KV cache) and calls of up to MAX_BATCH
 * tokens.  NULL with err set.  The model must outlive it. */
fwd_t *fwd_new(const model_t *m, int max_ctx, int max_batch);
void fwd_free(fwd_t *f);

/* Hook for the points in MASK (bit 1u << point); fn NULL removes it. */
void fwd_set_hook(fwd_t *f, fwd_hook_fn fn, void *user, unsigned mask);

enum { FWD_LOGITS_NONE = 0, FWD_LOGITS_LAST, FWD_LOGITS_ALL };

/* Runs TOKENS[0..T) at positions POS0..POS0+T-1 (earlier positions must have
 * been run before: their keys/values are in the cache).  LOGITS receives
 * (vocab) floats for the last token, or (T, vocab) with FWD_LOGITS_ALL. */
int fwd_eval(fwd_t *f, const int *tokens, int T, int pos0, float *logits, int which);

/* The straightforward reference for one linear map (naive loops), beside the
 * BLAS one; tests check that they agree. */
void lin_apply(const lin_t *l, const float *x, int T, int in, float *y, int out, float *scratch,
               size_t scratch_floats);
void lin_apply_naive(const lin_t *l, const float *x, int T, int in, float *y, int out);
/* Floats of scratch lin_apply needs for a weight with IN inputs. */
size_t lin_scratch_floats(int in, int out);

#endif
