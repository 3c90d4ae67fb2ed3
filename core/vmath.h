/* vmath: element-wise math the compiler can vectorise.
 *
 * glibc's expf is a call that GCC vectorises only under -ffast-math; in the
 * softmax and SiLU of the forward pass the scalar calls were ~9% of a pass,
 * and the value projection's entropy takes one exp per token per neuron. */
#ifndef PROBE_VMATH_H
#define PROBE_VMATH_H

#include <stdint.h>
#include <string.h>

/* exp(x) with no calls and no branches: x clamped to [-87, 88] (the float
 * range; exp(-87) ~ 2e-38 is 0 for every use here), then Cephes' expf
 * polynomial after x = n ln2 + r, |r| <= ln2/2; relative error ~2e-7. */
static inline float vmath_exp(float x) {
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* NaN (a model file may hold NaN weights) passes the clamp; converting
     * it to int is undefined, and p is NaN anyway, so any exponent will do. */
    int32_t bits = ((n == n ? (int32_t)n : 0) + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

#endif
