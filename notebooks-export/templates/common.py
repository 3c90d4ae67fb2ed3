# Cells shared by every notebook: imports, small helpers, where the result is.
# %%
%matplotlib inline
import os
import json
import numpy as np
import pandas as pd
import h5py
import matplotlib.pyplot as plt
from IPython.display import HTML, display


def find(rel, absolute):
    """The result file: as seen from the notebook's folder, else where it was written."""
    if rel is not None and os.path.exists(rel):
        return rel
    return absolute


def attr(obj, name, default=None):
    """An HDF5 attribute as a Python value (bytes decoded)."""
    v = obj.attrs.get(name, default)
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    return v


def str_array(ds):
    """A string dataset of any shape as a numpy array of str."""
    dec = np.vectorize(lambda s: s.decode("utf-8", "replace") if isinstance(s, bytes) else str(s),
                       otypes=[object])
    return dec(ds[()])


def strs(ds):
    """A 1-D string dataset as a list of str."""
    return list(str_array(ds))


def grid(n, ncols=3, w=4.2, h=3.2):
    """A figure with n panels; returns it and a flat list of n axes."""
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False)
    axes = list(axes.ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


pd.set_option("display.max_colwidth", 120)
pd.set_option("display.width", 160)
RESULT = find({{result}}, {{result_abs}})
print("result:", RESULT)
