/* h5w: HDF5 writing helpers (see h5w.h).  Datasets are chunked by rows and
 * compressed with shuffle+deflate, which h5py, h5dump and R's hdf5r read
 * without plugins. */
#include "h5w.h"

#include "core/err.h"

#include <string.h>

int h5w_attr_str(hid_t loc, const char *name, const char *value) {
    /* Variable-length UTF-8: h5py returns str, h5dump prints the text. */
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = a < 0 ? -1 : H5Awrite(a, t, &value);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return r < 0 ? err_set("cannot write HDF5 attribute '%s'", name) : 0;
}

static int attr_num(hid_t loc, const char *name, hid_t type, const void *v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = a < 0 ? -1 : H5Awrite(a, type, v);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return r < 0 ? err_set("cannot write HDF5 attribute '%s'", name) : 0;
}

int h5w_attr_int(hid_t loc, const char *name, long long value) {
    return attr_num(loc, name, H5T_NATIVE_LLONG, &value);
}
int h5w_attr_double(hid_t loc, const char *name, double value) {
    return attr_num(loc, name, H5T_NATIVE_DOUBLE, &value);
}

static int write_nd(hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *data,
                    int64_t rows, int64_t cols, size_t elem) {
    int nd = cols ? 2 : 1;
    hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols};
    hid_t sp = H5Screate_simple(nd, dims, NULL);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    /* Chunks of whole rows, ~256 KiB: a row (one token) reads in one chunk. */
    hsize_t row_bytes = (hsize_t)(cols ? cols : 1) * elem;
    hsize_t crow = row_bytes ? (256 * 1024) / row_bytes : 1;
    if (crow < 1) crow = 1;
    if (crow > (hsize_t)rows) crow = (hsize_t)rows;
    hsize_t chunk[2] = {crow ? crow : 1, (hsize_t)cols};
    if (rows > 0) {
        H5Pset_chunk(pl, nd, chunk);
        H5Pset_shuffle(pl);
        H5Pset_deflate(pl, 4);
    }
    hid_t ds = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    herr_t r =
        ds < 0 ? -1 : (rows > 0 ? H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : 0);
    if (ds >= 0) H5Dclose(ds);
    H5Pclose(pl);
    H5Sclose(sp);
    return r < 0 ? err_set("cannot write HDF5 dataset '%s'", name) : 0;
}

int h5w_f32(hid_t loc, const char *name, const float *data, int64_t rows, int64_t cols) {
    return write_nd(loc, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data, rows, cols, 4);
}
int h5w_i32(hid_t loc, const char *name, const int32_t *data, int64_t rows, int64_t cols) {
    return write_nd(loc, name, H5T_STD_I32LE, H5T_NATIVE_INT32, data, rows, cols, 4);
}

int h5w_strs(hid_t loc, const char *name, const char *const *s, int64_t n) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t ds = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = ds < 0 ? -1 : (n > 0 ? H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) : 0);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    H5Tclose(t);
    return r < 0 ? err_set("cannot write HDF5 dataset '%s'", name) : 0;
}

hid_t h5w_group(hid_t loc, const char *name) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t g = H5Gcreate2(loc, name, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    if (g < 0) err_set("cannot create HDF5 group '%s'", name);
    return g;
}
