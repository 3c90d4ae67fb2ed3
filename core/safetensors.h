/* safetensors: read-only views of Hugging Face .safetensors files.
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {...}}), then the data section the offsets point into.
 * Everything in the header is untrusted: the length is checked against the
 * file and a cap, offsets against the data section, sizes against shape x
 * dtype, and no two tensors may share bytes.
 *
 * F32, F16 and BF16 tensors become tensor_t views into the mapping.  Tensors
 * probe cannot use (other dtypes such as the BOOL attention-mask buffers old
 * GPT-2 and NeoX checkpoints carry, more than 4 dimensions, no elements) are
 * still bounds-checked, then listed as skipped with the reason, so a loader
 * that needs one of them can say why it is unusable.
 *
 * Sharded checkpoints (model.safetensors.index.json with a "weight_map" of
 * tensor -> shard file) open every shard once; each tensor the index lists
 * must be in the shard it names. */
#ifndef PROBE_SAFETENSORS_H
#define PROBE_SAFETENSORS_H

#include "mfile.h"
#include "strmap.h"
#include "tensor.h"

/* Largest JSON header accepted (the official reader's cap is also 100 MB). */
#define ST_MAX_HEADER ((uint64_t)100 << 20)

typedef struct {
    char *name;   /* owned */
    char *reason; /* owned, e.g. "dtype BOOL is not supported (F32, F16, BF16 are)" */
    int file;     /* index into st_t.files */
} st_skip_t;

typedef struct {
    char *path;      /* what was opened (file, index or folder); owned */
    mfile_t **files; /* (n_files) owned mappings: the file, or each shard */
    int n_files;
    int sharded;        /* opened through an index */
    ttab_t tensors;     /* usable tensors, named as in the files; data borrowed from files */
    int *tensor_file;   /* (tensors.n) which file each tensor is in */
    st_skip_t *skipped; /* (n_skipped) tensors present but unusable */
    int n_skipped;
    strmap_t names; /* name -> tensor index, or -2 - skipped index */
    void **copies;  /* owned aligned copies of F32 tensors whose bytes were misaligned */
    int n_copies;
} st_t;

/* Opens PATH: a .safetensors file, a model.safetensors.index.json, or a
 * folder holding model.safetensors.index.json or model.safetensors (the
 * index wins when both are present).  NULL with err set (naming the file and
 * the problem).  Caller frees with st_close(). */
st_t *st_open(const char *path);

/* Frees everything; tensor views handed out become invalid.  NULL is a no-op. */
void st_close(st_t *s);

/* Borrowed pointer to the usable tensor NAME, or NULL. */
const tensor_t *st_find(const st_t *s, const char *name);

/* Why tensor NAME is in the files but unusable (borrowed), or NULL when it is
 * usable or absent. */
const char *st_skip_reason(const st_t *s, const char *name);

/* 1 if DIR holds model.safetensors or model.safetensors.index.json. */
int st_dir_has_weights(const char *dir);

#endif
