/* tensor: typed, shaped views of weights inside a mapped file, and the table
 * that names them.
 *
 * A tensor never owns its data: it points into an mfile mapping (or into a
 * buffer owned by the loader).  Shapes are row-major, outermost first, as
 * PyTorch and safetensors write them: a Linear weight is (out, in).  GGUF's
 * innermost-first ne[] is reversed on load.  Quantised types are blocked along
 * the innermost (row) dimension. */
#ifndef PROBE_TENSOR_H
#define PROBE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    DT_F32 = 0,
    DT_F16,
    DT_BF16,
    DT_Q8_0, /* blocks of 32: f16 scale, 32 x int8 (ggml) */
    DT_Q4_0, /* blocks of 32: f16 scale, 16 bytes of nibbles, value = (q - 8) * d (ggml) */
    DT_COUNT
} dtype_t;

#define TENSOR_MAX_DIMS 4
#define TENSOR_NAME_MAX 128

typedef struct {
    char name[TENSOR_NAME_MAX];
    dtype_t dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS]; /* row-major, outermost first */
    const void *data;               /* borrowed: valid while its file is open */
    uint64_t nbytes;
} tensor_t;

typedef struct {
    tensor_t *items; /* owned */
    int n, cap;
} ttab_t;

const char *dtype_name(dtype_t t);
/* Elements per block and bytes per block of a dtype (1 and 4 for F32). */
int dtype_block_elems(dtype_t t);
int dtype_block_bytes(dtype_t t);

/* Bytes of a tensor of this dtype and shape; 0 with err set when the shape is
 * invalid (negative, overflowing, or a row not a multiple of the block). */
uint64_t tensor_bytes_for(dtype_t t, int ndim, const int64_t *shape);

/* Number of elements; rows = product of all but the last dimension; cols = last. */
int64_t tensor_nelem(const tensor_t *t);
int64_t tensor_rows(const tensor_t *t);
int64_t tensor_cols(const tensor_t *t);

/* Dequantises rows [row0, row0+nrows) (viewing the tensor as rows x cols) into
 * OUT (nrows x cols floats). */
void tensor_get_rows(const tensor_t *t, int64_t row0, int64_t nrows, float *out);

/* Converters used by the dequantisers and by writers of test checkpoints. */
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f); /* round to nearest even */

/* Table of named tensors. */
void ttab_init(ttab_t *tab);
void ttab_free(ttab_t *tab);
/* Appends a copy of T; returns the stored entry or NULL (err set). */
tensor_t *ttab_add(ttab_t *tab, const tensor_t *t);
/* Borrowed pointer to the tensor named NAME, or NULL. */
const tensor_t *ttab_find(const ttab_t *tab, const char *name);

/* Formats a shape as "[a, b]" into BUF; returns BUF. */
char *tensor_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);

#endif
