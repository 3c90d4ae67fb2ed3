#!/usr/bin/python3
"""Independent brute-force reference for `probe values` (FFN value vectors in
vocabulary space, Geva et al. 2021/2022).

Reads the model weights itself (tests/ref/llama_ref.py's loaders: llama2.c
checkpoints and GGUF, Q8_0/Q4_0 dequantised there as q * d exactly as ggml
defines it; Hugging Face folders through tests/ref/hf_ref.py's safetensors
reader: gpt2, llama/mistral/qwen2, gpt_neox), computes every neuron's
projection in float64 as

    none   s = E @ v            gain  s = E @ (g * v)
    final  s = E @ (v / sqrt(mean(v^2) + eps) * g)                  (RMSNorm)
           s = E @ ((v - mean(v)) / sqrt(var(v) + eps) * g + b)     (LayerNorm)

with v = column i of the layer's W2 / ffn_down / down_proj / dense_4h_to_h
(d, n_ff), or row i of GPT-2's Conv1D c_proj (n_ff, d), and E the LM head
(vocab, d) (tied: the token embedding), ranks with a full stable argsort (top: descending score, bottom:
ascending score, equal scores -> lower token id first) and compares probe's
CSV (read with pandas) or HDF5 (read with h5py) output with that.

Ids must be exact.  (probe ranks by exact double-precision scores of its
float32 candidates, so it should agree with this float64 reference.  With
--max-swaps N, up to N pairs of tokens whose reference scores differ by less
than float32 rounding could explain, 4 d 2^-24 sum_k |E_jk x_k|, may come
swapped; they are counted either way.)  Tokens whose reference scores are
exactly equal must come lower id first.  Scores agree to 1e-4 relative (plus
1e-6 of the neuron's largest |score| for scores near zero).

Commands (exit status 0 = agreement; the last line says what was compared):
  values_ref.py check  --model M --csv F  | --h5 F   --norm MODE [--softmax]
  values_ref.py promotes --model M --fwd F.csv --rev R.csv --token-id X --norm MODE
  values_ref.py mktie --out F.bin       a tiny llama2.c checkpoint with exact ties
"""

import argparse
import json
import os
import struct
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402

U32 = 2.0 ** -24


class HFModel:
    """What the projections need from a Hugging Face folder, read with
    hf_ref.py's own safetensors reader (float64):
      gpt2      value i = row i of h.{l}.mlp.c_proj.weight (Conv1D, (n_ff, d));
                E = lm_head.weight or the tied wte; final LayerNorm ln_f (+ bias)
      llama     value i = column i of mlp.down_proj.weight (d, n_ff);
      (mistral, E = lm_head.weight or the tied embed_tokens; RMSNorm model.norm
       qwen2)
      gpt_neox  value i = column i of mlp.dense_4h_to_h.weight (d, n_ff);
                E = embed_out.weight or the tied embed_in; LayerNorm
                final_layer_norm (+ bias)"""

    def __init__(self, path):
        import hf_ref
        with open(os.path.join(path, "config.json")) as f:
            cfg = json.load(f)
        w = hf_ref.read_folder(path)
        mt = cfg["model_type"]
        self.fmt = "hf"
        self.extra = {}
        if mt == "gpt2":
            p = "transformer." if "transformer.wte.weight" in w else ""
            n = cfg["n_layer"]
            self.values = [w["%sh.%d.mlp.c_proj.weight" % (p, l)] for l in range(n)]
            self.E = w.get("lm_head.weight", w[p + "wte.weight"])
            self.g, self.b = w[p + "ln_f.weight"], w[p + "ln_f.bias"]
            self.eps, self.rms = cfg.get("layer_norm_epsilon", 1e-5), False
        elif mt in ("llama", "mistral", "qwen2"):
            n = cfg["num_hidden_layers"]
            self.values = [w["model.layers.%d.mlp.down_proj.weight" % l].T for l in range(n)]
            self.E = w.get("lm_head.weight", w["model.embed_tokens.weight"])
            self.g, self.b = w["model.norm.weight"], None
            self.eps, self.rms = cfg.get("rms_norm_eps", 1e-6), True
        elif mt == "gpt_neox":
            n = cfg["num_hidden_layers"]
            self.values = [w["gpt_neox.layers.%d.mlp.dense_4h_to_h.weight" % l].T for l in range(n)]
            self.E = w.get("embed_out.weight", w["gpt_neox.embed_in.weight"])
            self.g, self.b = w["gpt_neox.final_layer_norm.weight"], w["gpt_neox.final_layer_norm.bias"]
            self.eps, self.rms = cfg.get("layer_norm_eps", 1e-5), False
        else:
            raise SystemExit("values_ref: model_type %s not covered" % mt)


class LlamaModel:
    """llama2.c / GGUF through llama_ref.py's loaders: value i = column i of
    w2 (d, n_ff), E = wcls, RMSNorm rms_final."""

    def __init__(self, path):
        m = llama_ref.load_model(path)
        self.fmt, self.extra = m.fmt, m.extra
        self.values = [np.asarray(m.w2[l]).T for l in range(m.n_layers)]
        self.E = m.wcls
        self.g, self.b, self.eps, self.rms = m.rms_final, None, m.eps, True


class Ref:
    """Float64 projections of every neuron of every layer."""

    def __init__(self, path, norm):
        m = HFModel(path) if os.path.isdir(path) else LlamaModel(path)
        self.m = m
        self.norm = norm
        E = np.asarray(m.E, dtype=np.float64)        # (vocab, d)
        self.vocab, self.d = E.shape
        self.layers = []
        for V in m.values:                           # (n_ff, d): row i = value vector i
            V = np.ascontiguousarray(V, dtype=np.float64)
            vn = np.sqrt((V * V).sum(axis=1))
            if norm == "none":
                X = V
            elif norm == "gain":
                X = V * m.g[None, :]
            elif norm == "final" and m.rms:
                rms = np.sqrt((V * V).mean(axis=1, keepdims=True) + m.eps)
                X = V / rms * m.g[None, :]
            elif norm == "final":
                mu = V.mean(axis=1, keepdims=True)
                var = ((V - mu) ** 2).mean(axis=1, keepdims=True)
                X = (V - mu) / np.sqrt(var + m.eps) * m.g[None, :] + m.b[None, :]
            else:
                raise ValueError(norm)
            # einsum's own loop (no BLAS): every token's sum runs in the same
            # order, so identical embedding rows give identical scores.
            S = np.einsum("nd,vd->nv", X, E)         # (n_ff, vocab)
            A = np.abs(X) @ np.abs(E).T              # magnitudes for the rounding bound
            tol = 4 * self.d * U32 * A
            mx = S.max(axis=1, keepdims=True)
            Z = np.exp(S - mx).sum(axis=1, keepdims=True)
            lse = mx + np.log(Z)
            P = np.exp(S - lse)
            ent = -(P * (S - lse)).sum(axis=1)
            top = np.argsort(-S, axis=1, kind="stable")
            bot = np.argsort(S, axis=1, kind="stable")
            self.layers.append(dict(S=S, tol=tol, lse=lse[:, 0], ent=ent, mx=mx[:, 0], vn=vn,
                                    top=top, bot=bot))


class Checker:
    def __init__(self):
        self.fail = []
        self.swaps = 0
        self.worst = 0.0
        self.neurons = 0

    def err(self, msg):
        if len(self.fail) < 20:
            self.fail.append(msg)

    def close(self, what, got, want, scale):
        d = abs(got - want)
        rel = d / max(abs(want), 1e-30)
        if d > 1e-4 * abs(want) + 1e-6 * scale:
            self.err("%s: got %.9g, want %.9g" % (what, got, want))
        elif abs(want) > 1e-3 * scale:
            self.worst = max(self.worst, rel)

    def ranking(self, where, ids, scores, L, i, direction):
        """ids/scores: probe's k entries for neuron i of layer L."""
        s, tol = L["S"][i], L["tol"][i]
        order = L["top"][i] if direction == "top" else L["bot"][i]
        scale = np.abs(s).max()
        if len(set(ids)) != len(ids):
            self.err("%s: repeated token ids %s" % (where, ids))
        for r, (t, sc) in enumerate(zip(ids, scores)):
            want = order[r]
            if t != want:
                # Allowed only if float32 cannot order the two reference scores.
                gap = abs(s[t] - s[want])
                if gap == 0.0 or gap > tol[t] + tol[want]:
                    self.err("%s rank %d: token %d (ref score %.9g), reference has %d (%.9g)"
                             % (where, r, t, s[t], want, s[want]))
                else:
                    self.swaps += 1
            self.close("%s rank %d score" % (where, r), sc, s[want], scale)


def read_csv(path):
    """Rows as dicts of strings, read by pandas (text kept as written)."""
    import pandas as pd
    df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    return df.to_dict("records")


def csv_header(path):
    import pandas as pd
    return list(pd.read_csv(path, dtype=str, keep_default_na=False, nrows=0).columns)


def check_csv(ref, path, softmax, ck):
    rows = read_csv(path)
    want_cols = ["layer", "neuron", "direction", "rank", "token_id", "token", "score", "norm",
                 "value_norm", "max_logit", "entropy"] + (["prob"] if softmax else [])
    header = csv_header(path)
    if header != want_cols:
        ck.err("CSV header %s, expected %s" % (header, want_cols))
        return
    table = {}
    for row in rows:
        key = (int(row["layer"]), int(row["neuron"]))
        table.setdefault(key, {"top": [], "bottom": [], "row": row})
        table[key][row["direction"]].append(row)
    pieces = None
    for (l, i), ent in sorted(table.items()):
        L = ref.layers[l]
        ck.neurons += 1
        first = ent["row"]
        if first["norm"] != ref.norm:
            ck.err("norm column says %s, expected %s" % (first["norm"], ref.norm))
        scale = np.abs(L["S"][i]).max()
        ck.close("L%d N%d value_norm" % (l, i), float(first["value_norm"]), L["vn"][i], L["vn"][i])
        ck.close("L%d N%d max_logit" % (l, i), float(first["max_logit"]), L["mx"][i], scale)
        ck.close("L%d N%d entropy" % (l, i), float(first["entropy"]), L["ent"][i], L["ent"][i])
        for direction in ("top", "bottom"):
            rs = ent[direction]
            if [int(r["rank"]) for r in rs] != list(range(len(rs))):
                ck.err("L%d N%d %s: ranks are not 0..k-1" % (l, i, direction))
            ids = [int(r["token_id"]) for r in rs]
            sc = [float(r["score"]) for r in rs]
            ck.ranking("L%d N%d %s" % (l, i, direction), ids, sc, L, i, direction)
            if softmax:
                for r in rs:
                    t = int(r["token_id"])
                    ck.close("L%d N%d prob" % (l, i), float(r["prob"]),
                             np.exp(L["S"][i][t] - L["lse"][i]), 1e-30)
            # Token text: plain printable pieces appear as they are.
            if pieces is None:
                pieces = token_pieces(ref)
            for r in rs:
                p = pieces[int(r["token_id"])] if pieces else None
                if p is not None and r["token"] != p:
                    ck.err("token %s shown as %r, piece is %r" % (r["token_id"], r["token"], p))
    return table


def token_pieces(ref):
    """Printable ASCII pieces of the model's vocabulary (others: None)."""
    path = ref.m.extra.get("tokenizer_path")
    if ref.m.fmt == "hf":
        return []                   # the test folders carry no tokenizer
    if ref.m.fmt == "gguf":
        toks = ref.m.extra["meta"].get("tokenizer.ggml.tokens")
        raw = [t.encode("utf-8") for t in toks] if toks is not None else None
    elif path:
        raw = llama_ref.load_tokenizer(path)
    else:
        return []
    out = []
    for p in raw:
        s = p.replace("\u2581".encode("utf-8"), b" ")
        ok = all(32 <= b < 127 for b in s) and not (s.startswith(b"<") and s.endswith(b">"))
        out.append(s.decode("ascii") if ok and s else None)
    return out


def check_h5(ref, path, softmax, ck):
    import h5py
    with h5py.File(path, "r") as f:
        a = f.attrs
        for k, want in (("probe_kind", "values"), ("norm_mode", ref.norm)):
            got = a[k].decode() if isinstance(a[k], bytes) else str(a[k])
            if got != want:
                ck.err("attribute %s = %r, expected %r" % (k, got, want))
        if int(a["softmax"]) != int(softmax):
            ck.err("attribute softmax = %s" % a["softmax"])
        kt, kb = int(a["k_top"]), int(a["k_bottom"])
        if "tokens" in f and len(f["tokens"]) != ref.vocab:
            ck.err("tokens table has %d entries, vocab is %d" % (len(f["tokens"]), ref.vocab))
        for l, L in enumerate(ref.layers):
            name = "layer_%d" % l
            if name not in f:
                ck.err("group %s missing" % name)
                continue
            g = f[name]
            neu = g["neuron"][()]
            ti, ts = g["top_ids"][()], g["top_scores"][()]
            bi = g["bottom_ids"][()] if kb else np.zeros((len(neu), 0), int)
            bs = g["bottom_scores"][()] if kb else np.zeros((len(neu), 0))
            if ti.shape != (len(neu), kt) or ti.dtype != np.int32 or ts.dtype != np.float32:
                ck.err("%s/top_ids shape %s dtype %s" % (name, ti.shape, ti.dtype))
                continue
            for j, i in enumerate(neu):
                ck.neurons += 1
                scale = np.abs(L["S"][i]).max()
                ck.ranking("L%d N%d top" % (l, i), list(ti[j]), list(ts[j]), L, i, "top")
                ck.ranking("L%d N%d bottom" % (l, i), list(bi[j]), list(bs[j]), L, i, "bottom")
                ck.close("L%d N%d value_norm" % (l, i), g["value_norm"][j], L["vn"][i], L["vn"][i])
                ck.close("L%d N%d max_logit" % (l, i), g["max_logit"][j], L["mx"][i], scale)
                ck.close("L%d N%d entropy" % (l, i), g["entropy"][j], L["ent"][i], L["ent"][i])
                ck.close("L%d N%d lse" % (l, i), g["lse"][j], L["lse"][i], scale)
                if softmax:
                    for t, p in zip(ti[j], g["top_probs"][j]):
                        ck.close("L%d N%d prob" % (l, i), p, np.exp(L["S"][i][t] - L["lse"][i]),
                                 1e-30)


def cmd_check(a):
    ref = Ref(a.model, a.norm)
    if a.tokenizer:
        ref.m.extra["tokenizer_path"] = a.tokenizer
    ck = Checker()
    if a.csv:
        check_csv(ref, a.csv, a.softmax, ck)
    else:
        check_h5(ref, a.h5, a.softmax, ck)
    if ck.swaps > a.max_swaps:
        ck.err("%d near-tie swaps, at most %d allowed" % (ck.swaps, a.max_swaps))
    for msg in ck.fail:
        print("MISMATCH " + msg)
    print("norm %s: neurons compared: %d; near-tie swaps within float32 rounding: %d; "
          "worst relative score/summary difference %.3g"
          % (a.norm, ck.neurons, ck.swaps, ck.worst))
    return 1 if ck.fail else 0


def cmd_promotes(a):
    """The reverse search agrees with the forward tables and the reference."""
    ref = Ref(a.model, a.norm)
    x = a.token_id
    fwd = {}
    for row in read_csv(a.fwd):
        if row["direction"] == "top":
            fwd.setdefault((int(row["layer"]), int(row["neuron"])), []).append(row)
    rev = read_csv(a.rev)
    ck = Checker()
    prev = None
    in_lists = 0
    for row in rev:
        l, i, rank = int(row["layer"]), int(row["neuron"]), int(row["rank"])
        sc = float(row["score"])
        ck.neurons += 1
        if int(row["token_id"]) != x:
            ck.err("row for L%d N%d names token %s, expected %d" % (l, i, row["token_id"], x))
        key = (-sc, l, i)
        if prev is not None and key < prev:
            ck.err("rows not sorted by score (desc), layer, neuron at L%d N%d" % (l, i))
        prev = key
        top = fwd.get((l, i))
        if top is None:
            ck.err("L%d N%d missing from the forward table" % (l, i))
            continue
        k = len(top)
        if rank < k:
            in_lists += 1
            t = top[rank]
            if int(t["token_id"]) != x or t["score"] != row["score"]:
                ck.err("L%d N%d: --promotes says rank %d score %s, forward table has token %s "
                       "score %s there" % (l, i, rank, row["score"], t["token_id"], t["score"]))
        elif any(int(t["token_id"]) == x for t in top):
            ck.err("L%d N%d: rank %d but the token is in the forward top %d" % (l, i, rank, k))
        # Exact rank against the float64 reference, up to near-ties.
        L = ref.layers[l]
        s, tol = L["S"][i], L["tol"][i]
        hi = int(((s > s[x] + tol + tol[x])).sum())
        amb = int((np.abs(s - s[x]) <= tol + tol[x]).sum()) - 1
        if not (hi <= rank <= hi + amb):
            ck.err("L%d N%d: rank %d, reference rank between %d and %d" % (l, i, rank, hi, hi + amb))
        ck.close("L%d N%d promote score" % (l, i), sc, s[x], np.abs(s).max())
    want = sum(L["S"].shape[0] for L in ref.layers)
    if ck.neurons != want:
        ck.err("%d rows, expected one per neuron (%d)" % (ck.neurons, want))
    for msg in ck.fail:
        print("MISMATCH " + msg)
    print("promotes token %d: neurons compared: %d; found at their rank in the forward lists: "
          "%d; worst relative score difference %.3g" % (x, ck.neurons, in_lists, ck.worst))
    return 1 if ck.fail else 0


def cmd_mktie(a):
    """llama2.c legacy checkpoint (dim 32, hidden 64, 2 layers, vocab 96)
    built so that projections have exact ties: tokens 40..47 copy token 5's
    embedding row, tokens 60..63 are zero, and neuron 3 of layer 0 has a zero
    value vector (every score 0: top and bottom lists are ids 0, 1, 2, ...)."""
    dim, hid, L, H, KVH, V, seq = 32, 64, 2, 4, 4, 96, 16
    rng = np.random.default_rng(7)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.2  # noqa: E731
    E = f32(V, dim)
    E[40:48] = E[5]
    E[60:64] = 0
    w2 = f32(L, dim, hid)
    w2[0, :, 3] = 0
    hs = dim // H
    parts = [E, np.ones((L, dim), np.float32), f32(L, dim, dim), f32(L, dim, dim),
             f32(L, dim, dim), f32(L, dim, dim), np.ones((L, dim), np.float32),
             f32(L, hid, dim), w2, f32(L, hid, dim),
             (1 + rng.random(dim)).astype(np.float32),
             np.zeros((seq, hs // 2), np.float32), np.zeros((seq, hs // 2), np.float32)]
    with open(a.out, "wb") as f:
        f.write(struct.pack("<7i", dim, hid, L, H, KVH, V, seq))
        for p in parts:
            f.write(np.ascontiguousarray(p, dtype="<f4").tobytes())
    print("wrote %s" % a.out)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--model", required=True)
    c.add_argument("--tokenizer")
    c.add_argument("--norm", default="none", choices=["none", "gain", "final"])
    c.add_argument("--softmax", action="store_true")
    c.add_argument("--max-swaps", type=int, default=0)
    g = c.add_mutually_exclusive_group(required=True)
    g.add_argument("--csv")
    g.add_argument("--h5")
    p = sub.add_parser("promotes")
    p.add_argument("--model", required=True)
    p.add_argument("--norm", default="none", choices=["none", "gain", "final"])
    p.add_argument("--fwd", required=True)
    p.add_argument("--rev", required=True)
    p.add_argument("--token-id", type=int, required=True)
    t = sub.add_parser("mktie")
    t.add_argument("--out", required=True)
    a = ap.parse_args()
    return {"check": cmd_check, "promotes": cmd_promotes, "mktie": cmd_mktie}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
