/* acts: records FFN key activations during a forward pass.
 *
 * acts_rec_t subscribes to the forward pass's FFN hooks and, for the chosen
 * layers, keeps the key activations (T, n_ff), the gate/W1 pre-activations
 * and, for gated FFNs, the up projections of one prompt, plus per-token top-K
 * neurons.  Writers (HDF5/CSV) read the recorded buffers afterwards. */
#ifndef PROBE_ACTS_H
#define PROBE_ACTS_H

#include "core/fwd.h"

typedef struct {
    int n_layers; /* selected layers */
    int *layers;  /* (n_layers) 0-based indices, ascending; owned */
    int *slot;    /* (model n_layer) slot of a layer or -1; owned */
    int n_ff, T_max, gated;
    int keep_full;            /* keep (T, n_ff) buffers (for HDF5); else only top-K */
    int k;                    /* top-K per token */
    int by_abs;               /* rank by |activation| instead of value */
    float **key, **pre, **up; /* per slot (T_max, n_ff) when keep_full; owned */
    int *top_idx;             /* (n_layers, T_max, k) */
    float *top_val;           /* (n_layers, T_max, k) */
    int T;                    /* tokens recorded for the current prompt */
} acts_rec_t;

/* LAYERS: N selected 0-based layers (validated by the caller). NULL with err set. */
acts_rec_t *acts_rec_new(const model_t *m, const int *layers, int n, int T_max, int k, int by_abs,
                         int keep_full);
void acts_rec_free(acts_rec_t *r);
/* Registers the recorder on F (replaces any other hook). */
void acts_rec_attach(acts_rec_t *r, fwd_t *f);

/* Parses "3", "1,4", "2-5", "all" against N_LAYER into a sorted, unique list
 * (malloc'd, caller frees).  -1 with err set naming the valid range. */
int acts_parse_layers(const char *spec, int n_layer, int **out, int *n_out);

#endif
