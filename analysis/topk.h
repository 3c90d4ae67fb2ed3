/* topk: the K largest entries of a vector, in O(n log k) with a bounded heap
 * (effectively linear for the small K tables use).  Order: larger score
 * first; equal scores by lower index — the documented tie rule of every
 * probe ranking, which brute-force tests reproduce with a stable sort. */
#ifndef PROBE_TOPK_H
#define PROBE_TOPK_H

/* Writes the indices of the K largest of V[0..N) into IDX (sorted), K <= N.
 * With BY_ABS the key is |v|; with NEGATE the smallest values are selected
 * (bottom-k: most negative first). */
void topk_select(const float *v, int n, int k, int by_abs, int negate, int *idx);

#endif
