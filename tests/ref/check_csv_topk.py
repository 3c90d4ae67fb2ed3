#!/usr/bin/env python3
"""Checks a `probe activations --out x.csv` table against the full activations
of the same prompts in `--out x.h5`: pandas must read the CSV without options,
and for every (prompt, position, layer) the CSV's K rows must be exactly the
brute-force top-K of key_act (stable sort: larger first, ties by lower neuron),
with the same values and token ids.  Usage: check_csv_topk.py A.csv A.h5 K"""
import sys

import h5py
import numpy as np
import pandas as pd

csv_path, h5_path, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
df = pd.read_csv(csv_path)
want_cols = ["prompt_id", "position", "token_id", "token", "layer", "neuron", "activation", "rank"]
assert list(df.columns) == want_cols, list(df.columns)
checked = 0
with h5py.File(h5_path, "r") as f:
    assert f.attrs["probe_kind"] == "activations"
    layers = list(f["layers"][()])
    n_prompts = int(f.attrs["n_prompts"])
    assert n_prompts > 0 and layers
    for p in range(n_prompts):
        g = f[f"prompt_{p}"]
        ids = g["token_ids"][()]
        toks = [t.decode() if isinstance(t, bytes) else t for t in g["tokens"][()]]
        for L in layers:
            acts = g[f"layer_{L}/key_act"][()]
            for t in range(len(ids)):
                order = sorted(range(acts.shape[1]), key=lambda i: (-acts[t, i], i))[:k]
                rows = df[(df.prompt_id == p) & (df.position == t) & (df.layer == L)].sort_values("rank")
                assert list(rows["rank"]) == list(range(k)), (p, t, L)
                assert list(rows.neuron) == order, (p, t, L, list(rows.neuron), order)
                assert np.allclose(rows.activation.values, acts[t, order], rtol=1e-6, atol=1e-7)
                assert (rows.token_id == ids[t]).all() and (rows.token == toks[t]).all(), (p, t)
                checked += 1
assert checked > 0 and len(df) == checked * k, (checked, len(df))
print(f"check_csv_topk: OK {checked} token-layer rows of top-{k}")
