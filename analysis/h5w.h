/* h5w: small helpers over the HDF5 C API for self-describing result files:
 * string/number attributes, chunked+compressed float and int datasets, and
 * variable-length UTF-8 string datasets that h5py reads as str. */
#ifndef PROBE_H5W_H
#define PROBE_H5W_H

#include <hdf5.h>
#include <stdint.h>

/* All return 0, or -1 with err set naming the object. */
int h5w_attr_str(hid_t loc, const char *name, const char *value);
int h5w_attr_int(hid_t loc, const char *name, long long value);
int h5w_attr_double(hid_t loc, const char *name, double value);
/* 2-D (rows, cols) or, with cols 0, 1-D (rows) datasets. */
int h5w_f32(hid_t loc, const char *name, const float *data, int64_t rows, int64_t cols);
int h5w_i32(hid_t loc, const char *name, const int32_t *data, int64_t rows, int64_t cols);
int h5w_strs(hid_t loc, const char *name, const char *const *s, int64_t n);
/* Creates a group (intermediate groups too); returns its id or -1. */
hid_t h5w_group(hid_t loc, const char *name);

#endif
