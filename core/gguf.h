/* gguf: reader for GGUF v2/v3 files (llama.cpp's model format).
 *
 * The whole file is mapped; the header, metadata and tensor infos are parsed
 * with every length and offset checked against the file size; tensors become
 * a table of typed views (shapes reversed to row-major).  Only the tensor
 * types probe can dequantise are accepted; an unknown type is an error that
 * names the tensor.  Metadata values stay in the mapping and are read through
 * typed getters. */
#ifndef PROBE_GGUF_H
#define PROBE_GGUF_H

#include "mfile.h"
#include "tensor.h"

#include <stdint.h>

enum {
    GGUF_T_U8 = 0,
    GGUF_T_I8,
    GGUF_T_U16,
    GGUF_T_I16,
    GGUF_T_U32,
    GGUF_T_I32,
    GGUF_T_F32,
    GGUF_T_BOOL,
    GGUF_T_STRING,
    GGUF_T_ARRAY,
    GGUF_T_U64,
    GGUF_T_I64,
    GGUF_T_F64,
    GGUF_T_COUNT
};

typedef struct {
    const char *key; /* owned, NUL-terminated copy */
    uint32_t type;   /* GGUF_T_* */
    uint32_t arr_type;
    uint64_t arr_n; /* elements, for arrays */
    const uint8_t
        *value; /* into the mapping: the scalar, string (u64 len + bytes) or first array item */
} gguf_kv_t;

typedef struct {
    mfile_t *file;
    uint32_t version;
    gguf_kv_t *kv; /* owned */
    uint64_t n_kv;
    ttab_t tensors;
    uint64_t data_offset;
} gguf_t;

/* Opens and validates PATH.  NULL with err set ("PATH: what is wrong").
 * Caller frees with gguf_close(). */
gguf_t *gguf_open(const char *path);
void gguf_close(gguf_t *g);

/* True when the file at PATH starts with the GGUF magic. */
int gguf_is_gguf(const char *path);

const gguf_kv_t *gguf_find(const gguf_t *g, const char *key);
/* Integer/float getters accept any integer/float scalar type; return 0 on
 * success, -1 (err set) if missing or of the wrong kind. */
int gguf_get_int(const gguf_t *g, const char *key, int64_t *out);
int gguf_get_float(const gguf_t *g, const char *key, double *out);
/* String: pointer into the mapping (not NUL-terminated) and its length. */
int gguf_get_str(const gguf_t *g, const char *key, const char **s, uint64_t *len);
/* Walks a string array in order: start with *CURSOR = NULL and call arr_n
 * times (strings were bounds-checked during open). */
int gguf_arr_str_next(const gguf_kv_t *kv, const uint8_t **cursor, const char **s, uint64_t *len);
/* Array element I of a numeric array, converted to double. */
double gguf_arr_num(const gguf_kv_t *kv, uint64_t i);

#endif
