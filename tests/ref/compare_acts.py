#!/usr/bin/python3
"""Compare probe's HDF5 activation dump against the independent numpy reference.

Usage:
    /usr/bin/python3 tests/ref/compare_acts.py --model PATH --h5 acts.h5 [--rtol 1e-4]

For every prompt group in the file (written by `probe activations --out`), takes
the stored token ids, runs tests/ref/llama_ref.py's float64 forward pass on
them (positions 0..T-1, fresh context) and compares every stored layer's
key_act and gate_pre (and up, if stored) and the logits (if stored).

Tolerance is relative to each array's scale: an array passes when
    max|probe - ref| <= rtol * max(1, max|ref|)
i.e. an absolute tolerance of rtol for arrays whose values are O(1) or smaller,
and a relative one for larger arrays.  Non-finite values always fail.

Exits 0 and prints `compare_acts: OK worst=...` when everything matches, else
prints `compare_acts: FAIL ...` and exits 1.  A file with no prompt groups or
no stored layers FAILs, so the check can't pass vacuously.
"""

import argparse
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402

try:
    import h5py
except ImportError:  # pragma: no cover
    sys.exit("compare_acts: FAIL h5py not importable (use /usr/bin/python3)")


def _s(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.shape == ():
        return _s(v[()])
    return v


def run(model_path, h5_path, rtol, out=print):
    """Returns (ok, summary_line)."""
    errors = []
    worst = {}   # name -> (ratio, absdiff, limit, where)
    notes = []

    def record(name, where, got, ref):
        got = np.asarray(got)
        if got.shape != ref.shape:
            errors.append("%s %s: shape %s, expected %s" % (name, where, got.shape, ref.shape))
            return
        if not np.all(np.isfinite(got)):
            errors.append("%s %s: %d non-finite values" % (name, where, int(np.sum(~np.isfinite(got)))))
            return
        diff = np.abs(got.astype(np.float64) - ref)
        idx = np.unravel_index(int(np.argmax(diff)), diff.shape)
        d = float(diff[idx])
        limit = rtol * max(1.0, float(np.max(np.abs(ref))))
        ratio = d / limit
        w = "%s at %s" % (where, tuple(int(i) for i in idx))
        if ratio > 1.0:
            errors.append("%s %s: max|diff| %.3g > %.3g (probe %.6g ref %.6g)"
                          % (name, w, d, limit, float(got[idx]), float(ref[idx])))
        if name not in worst or ratio > worst[name][0]:
            worst[name] = (ratio, d, limit, w)

    m = llama_ref.load_model(model_path)
    with h5py.File(h5_path, "r") as f:
        kind = _s(f.attrs.get("probe_kind", None))
        if kind != "activations":
            errors.append("root attribute probe_kind is %r, expected 'activations'" % (kind,))
        for attr, want in (("n_layer", m.n_layers), ("d_model", m.dim),
                           ("n_ff", m.hidden_dim), ("vocab_size", m.vocab_size)):
            if attr not in f.attrs:
                errors.append("root attribute %s missing" % attr)
            elif int(np.asarray(f.attrs[attr]).reshape(-1)[0]) != want:
                errors.append("root attribute %s = %s, model has %d" % (attr, f.attrs[attr], want))

        layers = [int(x) for x in np.asarray(f["layers"][()]).reshape(-1)] if "layers" in f else []
        if not layers:
            errors.append("no stored layers (root dataset 'layers' missing or empty)")
        for L in layers:
            if not 0 <= L < m.n_layers:
                errors.append("stored layer %d out of range [0, %d)" % (L, m.n_layers))
        layers = [L for L in layers if 0 <= L < m.n_layers]

        prompts = sorted((k for k in f.keys() if re.fullmatch(r"prompt_\d+", k)),
                         key=lambda k: int(k.split("_")[1]))
        if not prompts:
            errors.append("no prompt_* groups")
        elif [int(k.split("_")[1]) for k in prompts] != list(range(len(prompts))):
            notes.append("prompt groups are not numbered 0..%d" % (len(prompts) - 1))

        n_compared = 0
        for pk in prompts:
            g = f[pk]
            if "token_ids" not in g:
                errors.append("%s: no token_ids" % pk)
                continue
            ids = np.asarray(g["token_ids"][()]).reshape(-1).astype(np.int64)
            T = ids.shape[0]
            if T == 0:
                errors.append("%s: zero tokens" % pk)
                continue
            if "positions" in g:
                pos = np.asarray(g["positions"][()]).reshape(-1)
                if not np.array_equal(pos, np.arange(T)):
                    errors.append("%s: positions %s are not 0..T-1 (the reference starts "
                                  "at position 0)" % (pk, pos.tolist()[:8]))
            else:
                errors.append("%s: no positions dataset" % pk)
            if "tokens" in g and g["tokens"].shape[0] != T:
                errors.append("%s: tokens has %d entries, token_ids %d" % (pk, g["tokens"].shape[0], T))
            r = llama_ref.forward(m, ids)
            for L in layers:
                lk = "layer_%d" % L
                if lk not in g:
                    errors.append("%s/%s missing" % (pk, lk))
                    continue
                lg = g[lk]
                for name in ("key_act", "gate_pre", "up"):
                    if name not in lg:
                        if name == "up":
                            notes.append("%s/%s has no 'up'" % (pk, lk))
                        else:
                            errors.append("%s/%s/%s missing" % (pk, lk, name))
                        continue
                    record(name, "%s layer %d" % (pk, L), lg[name][()], r["layers"][L][name])
                    n_compared += 1
            if "logits" in g:
                record("logits", pk, g["logits"][()], r["logits"])
                n_compared += 1

    for name in sorted(worst):
        ratio, d, limit, w = worst[name]
        out("  %-8s worst max|diff| %.3g (limit %.3g, %.3f of it) at %s" % (name, d, limit, ratio, w))
    for n in sorted(set(notes)):
        out("  note: " + n)
    if not worst and not errors:
        errors.append("nothing compared")
    if errors:
        for e in errors[:20]:
            out("  error: " + e)
        if len(errors) > 20:
            out("  ... %d more errors" % (len(errors) - 20))
        line = "compare_acts: FAIL %d problem(s); first: %s" % (len(errors), errors[0])
        return False, line
    name = max(worst, key=lambda k: worst[k][0])
    ratio, d, limit, w = worst[name]
    line = ("compare_acts: OK worst=%.3g (%s %s; limit %.3g) arrays=%d rtol=%g"
            % (d, name, w, limit, n_compared, rtol))
    return True, line


def main(argv=None):
    ap = argparse.ArgumentParser(description="compare probe HDF5 activations with the numpy reference")
    ap.add_argument("--model", required=True)
    ap.add_argument("--h5", required=True)
    ap.add_argument("--rtol", type=float, default=1e-4,
                    help="pass when max|a-b| <= rtol * max(1, max|ref|) per array (default 1e-4)")
    a = ap.parse_args(argv)
    try:
        ok, line = run(a.model, a.h5, a.rtol)
    except Exception as e:  # unreadable file, bad model, ...
        ok, line = False, "compare_acts: FAIL %s: %s" % (type(e).__name__, e)
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
