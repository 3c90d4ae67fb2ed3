#!/usr/bin/python3
"""Compares two HDF5 files written by probe (e.g. a single-process run and an
MPI run of the same job): the same groups, datasets and attributes; every
dataset bit-equal, except datasets whose path matches --rel PATTERN, which
must agree to --tol relative (NaN matches NaN), and those matching --skip,
which are only checked for shape.  Attributes named by --skip-attr are
ignored.  Prints the worst relative difference of the tolerant datasets and
one line per mismatch; exit 0 only if everything agrees.

usage: compare_h5.py A.h5 B.h5 [--rel RE]... [--tol 1e-6] [--skip RE]... [--skip-attr NAME]...
"""
import argparse
import re
import sys

import h5py
import numpy as np


def items(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj))
    return out


def same_attrs(a, b, name, skip, bad):
    ka = set(a.attrs.keys()) - skip
    kb = set(b.attrs.keys()) - skip
    if ka != kb:
        bad.append(f"{name}: attributes differ: {sorted(ka ^ kb)}")
        return
    for k in sorted(ka):
        va, vb = a.attrs[k], b.attrs[k]
        if not np.array_equal(np.asarray(va), np.asarray(vb)):
            bad.append(f"{name}@{k}: {va!r} != {vb!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rel", action="append", default=[])
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--skip", action="append", default=[])
    ap.add_argument("--skip-attr", action="append", default=[])
    o = ap.parse_args()
    bad = []
    worst = 0.0
    n_exact = n_rel = 0
    with h5py.File(o.a, "r") as fa, h5py.File(o.b, "r") as fb:
        ia, ib = items(fa), items(fb)
        if set(ia) != set(ib):
            bad.append(f"objects differ: {sorted(set(ia) ^ set(ib))}")
        same_attrs(fa, fb, "/", set(o.skip_attr), bad)
        for name in sorted(set(ia) & set(ib)):
            a, b = ia[name], ib[name]
            same_attrs(a, b, name, set(o.skip_attr), bad)
            if not isinstance(a, h5py.Dataset):
                continue
            if a.shape != b.shape or a.dtype != b.dtype:
                bad.append(f"{name}: shape/type {a.shape} {a.dtype} != {b.shape} {b.dtype}")
                continue
            if any(re.search(p, name) for p in o.skip):
                continue
            x, y = a[()], b[()]
            if any(re.search(p, name) for p in o.rel):
                n_rel += 1
                x = np.asarray(x, dtype=np.float64)
                y = np.asarray(y, dtype=np.float64)
                nan = np.isnan(x) & np.isnan(y)
                d = np.abs(x - y) / np.maximum(np.maximum(np.abs(x), np.abs(y)), 1e-300)
                d = np.where(nan | (x == y), 0.0, d)
                m = float(np.max(d)) if d.size else 0.0
                worst = max(worst, m)
                if m > o.tol:
                    bad.append(f"{name}: relative difference {m:.3g} > {o.tol:g}")
            else:
                n_exact += 1
                x, y = np.asarray(x), np.asarray(y)
                if x.dtype.kind in "fiub":  # bit for bit (NaN payloads and -0 included)
                    eq = x.tobytes() == y.tobytes()
                else:
                    eq = np.array_equal(x, y)
                if not eq:
                    bad.append(f"{name}: not bit-equal")
    print(f"compared {n_exact} datasets bit for bit, {n_rel} to {o.tol:g} relative "
          f"(worst {worst:.3g})")
    for b in bad[:40]:
        print("MISMATCH", b)
    return 1 if bad or n_exact == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
