/* topk: bounded min-heap selection (see topk.h). */
#include "topk.h"

#include <math.h>

static inline float key_of(const float *v, int i, int by_abs, int negate) {
    float x = v[i];
    if (by_abs) x = fabsf(x);
    return negate ? -x : x;
}

/* "a ranks below b": smaller key, or equal key and larger index. */
static inline int below(float ka, int a, float kb, int b) { return ka < kb || (ka == kb && a > b); }

void topk_select(const float *v, int n, int k, int by_abs, int negate, int *idx) {
    if (k <= 0) return;
    if (k > n) k = n;
    /* Min-heap (by rank) of the best k seen so far: the root is the weakest. */
    int sz = 0;
    for (int i = 0; i < n; i++) {
        float ki = key_of(v, i, by_abs, negate);
        if (sz == k) {
            if (!below(key_of(v, idx[0], by_abs, negate), idx[0], ki, i)) continue;
            /* Replace the root and sift down. */
            int p = 0;
            for (;;) {
                int c = 2 * p + 1;
                if (c >= sz) break;
                if (c + 1 < sz && below(key_of(v, idx[c + 1], by_abs, negate), idx[c + 1],
                                        key_of(v, idx[c], by_abs, negate), idx[c]))
                    c++;
                if (!below(key_of(v, idx[c], by_abs, negate), idx[c], ki, i)) break;
                idx[p] = idx[c];
                p = c;
            }
            idx[p] = i;
        } else {
            int p = sz++;
            while (p > 0) {
                int q = (p - 1) / 2;
                if (!below(ki, i, key_of(v, idx[q], by_abs, negate), idx[q])) break;
                idx[p] = idx[q];
                p = q;
            }
            idx[p] = i;
        }
    }
    /* Heap-sort in place: repeatedly move the weakest to the end. */
    for (int end = sz - 1; end > 0; end--) {
        int weakest = idx[0];
        int last = idx[end];
        float kl = key_of(v, last, by_abs, negate);
        int p = 0;
        for (;;) {
            int c = 2 * p + 1;
            if (c >= end) break;
            if (c + 1 < end && below(key_of(v, idx[c + 1], by_abs, negate), idx[c + 1],
                                     key_of(v, idx[c], by_abs, negate), idx[c]))
                c++;
            if (!below(key_of(v, idx[c], by_abs, negate), idx[c], kl, last)) break;
            idx[p] = idx[c];
            p = c;
        }
        idx[p] = last;
        idx[end] = weakest;
    }
}
