#!/usr/bin/python3
"""Independent numpy check of a `probe trace --out FILE.h5` result.

Usage:
    /usr/bin/python3 tests/ref/trace_ref.py --model PATH --h5 trace.h5
        [--rtol 1e-4] [--ablate-top K]

PATH is a llama2.c checkpoint / GGUF Llama (weights read by
tests/ref/llama_ref.py) or a Hugging Face GPT-2 folder (read by
tests/ref/hf_ref.py).  The forward passes below are our own block loops on
those readers' weights and numerics helpers, with an intervention point on the
key activations; each is checked against its module's own forward pass.

Takes the prompt's token ids, traced positions, targets and interventions
from the file and recomputes everything by brute force in float64:

  * final logits, residuals before/after each FFN, key activations, gate
    pre-activations (and up projections), FFN outputs;
  * the logit lens: the full final norm of each residual, then the
    unembedding — target logit/probability/rank and the top tokens;
  * sigma of the final residual x_L of the unmodified run (RMSNorm:
    sqrt(mean(x^2) + eps); LayerNorm: sqrt(var(x) + eps)) and every neuron's
    contribution to the target logit as a difference of the linearised final
    norm with and without the sub-update:
        f(x) = u_t . (g * (x - mean(x)[LayerNorm])) / sigma
        contribution_i = f(x_L) - f(x_L - m_i v_i)
    (no GEMV, no precomputed target direction);
  * the FFN output's share f(x_L) - f(x_L - o_l), the value norms and both
    neuron rankings (|m_i| ||v_i|| and contribution);
  * conservation: sum_i m_i v_i + b2 (probe's own m_i) equals probe's FFN output;
  * the exact decomposition: embedding + attention + FFN shares (+ u_t . b)
    add up to the target logit (a check of the reference's own algebra);
  * with interventions: a forward pass with the coefficients rewritten
    (ablate -> 0, scale -> m*x, set -> x, on -> the layer's largest coefficient
    at that position) at the traced positions (or all, per the file's
    intervene_at) and at generated positions; its logits, key activations and
    contributions (m'_i times the unmodified run's per-unit contribution);
  * the greedy continuations, unmodified and intervened (full recompute per
    step, stopping at BOS/EOS: ids 1/2 for llama2.c, the config's for GPT-2);
  * --ablate-top K: the file's interventions are exactly the K neurons with
    the largest reference contributions.

Tolerance: an array passes when max|probe - ref| <= rtol * max(1, max|ref|).
Rankings and top lists tolerate swaps between entries whose reference scores
are within that tolerance.  Prints `trace_ref: OK ...` and exits 0, or
`trace_ref: FAIL ...` and exits 1; a file with no traced position fails.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_ref as H  # noqa: E402
import llama_ref as R  # noqa: E402

try:
    import h5py
except ImportError:  # pragma: no cover
    sys.exit("trace_ref: FAIL h5py not importable (use /usr/bin/python3)")


class LlamaRef:
    """A llama2.c / GGUF Llama through tests/ref/llama_ref.py's loader."""

    def __init__(self, path):
        m = self.m = R.load_model(path)
        self.L, self.ff, self.V, self.eps = m.n_layers, m.hidden_dim, m.vocab_size, m.eps
        self.gated, self.layernorm = True, False
        self.g, self.b = m.rms_final, None
        self.U = m.wcls
        self.stop = {1, 2}  # BOS/EOS of llama2.c's tokenizers
        self.values = [m.w2[l] for l in range(self.L)]   # (d, ff): column i = v_i
        self.b2 = [np.zeros(m.dim) for _ in range(self.L)]

    def final_norm(self, x):
        return R.rmsnorm(x, self.m.rms_final, self.eps)

    def check_forward(self, C, toks):
        C.close("forward_vs_llama_ref", self.forward(toks)["logits"],
                R.forward(self.m, toks)["logits"])

    def forward(self, tokens, iv_fn=None):
        """Causal forward pass in float64 with a hook on the key activations:
        iv_fn(layer, key) may rewrite key (T, ff) in place."""
        m = self.m
        toks = np.asarray(tokens, dtype=np.int64)
        T = len(toks)
        H, KVH, hs = m.n_heads, m.n_kv_heads, m.head_size
        cos, sin = R.rope_cos_sin(np.arange(T), hs, m.rope_theta)
        mask = np.triu(np.ones((T, T), dtype=bool), k=1)
        x = m.tok_emb[toks].copy()
        out = new_out(x)
        for l in range(m.n_layers):
            xn = R.rmsnorm(x, m.rms_att[l], m.eps)
            q = R.apply_rope((xn @ m.wq[l].T).reshape(T, H, hs), cos, sin)
            k = R.apply_rope((xn @ m.wk[l].T).reshape(T, KVH, hs), cos, sin)
            v = (xn @ m.wv[l].T).reshape(T, KVH, hs)
            heads = []
            for h in range(H):
                g = h // (H // KVH)
                s = q[:, h] @ k[:, g].T / np.sqrt(hs)
                s[mask] = -np.inf
                p = np.exp(s - s.max(axis=1, keepdims=True))
                heads.append((p / p.sum(axis=1, keepdims=True)) @ v[:, g])
            attn = np.concatenate(heads, axis=1) @ m.wo[l].T
            x = x + attn
            h_in = R.rmsnorm(x, m.rms_ffn[l], m.eps)
            gp = h_in @ m.w1[l].T
            up = h_in @ m.w3[l].T
            key = R.silu(gp) * up
            if iv_fn is not None:
                iv_fn(l, key)
            x = record(out, x, attn, gp, up, key, key @ m.w2[l].T)
        out["final"] = x
        out["logits"] = self.final_norm(x) @ m.wcls.T
        return out


class GPT2Ref:
    """A Hugging Face GPT-2 folder through tests/ref/hf_ref.py's reader and
    pieces (LayerNorm, Conv1D, attention); the block loop is our own so the
    residuals can be read and the coefficients rewritten."""

    def __init__(self, path):
        cfg, W = self.cfg, self.W = H.load(path)
        if cfg.get("model_type") != "gpt2":
            raise SystemExit("trace_ref: only llama2.c/GGUF Llamas and GPT-2 folders are supported")
        p = self.p = "transformer." if "transformer.wte.weight" in W else ""
        self.L, self.eps = cfg["n_layer"], cfg.get("layer_norm_epsilon", 1e-5)
        self.act = H.ACTS[cfg.get("activation_function", "gelu_new")]
        self.gated, self.layernorm = False, True
        self.g, self.b = W[p + "ln_f.weight"], W[p + "ln_f.bias"]
        tie = cfg.get("tie_word_embeddings", True)
        self.U = W[p + "wte.weight"] if tie or "lm_head.weight" not in W else W["lm_head.weight"]
        self.V = self.U.shape[0]
        self.values = [W["%sh.%d.mlp.c_proj.weight" % (p, l)].T for l in range(self.L)]
        self.b2 = [W["%sh.%d.mlp.c_proj.bias" % (p, l)] for l in range(self.L)]
        self.ff = self.values[0].shape[1]
        self.stop = {cfg.get("bos_token_id"), cfg.get("eos_token_id")}

    def final_norm(self, x):
        return H.layer_norm(x, self.g, self.b, self.eps)

    def check_forward(self, C, toks):
        C.close("forward_vs_hf_ref", self.forward(toks)["logits"],
                H.forward(self.cfg, self.W, np.asarray(toks))["logits"])

    def forward(self, tokens, iv_fn=None):
        W, p, d, nh = self.W, self.p, self.cfg["n_embd"], self.cfg["n_head"]
        ids = np.asarray(tokens, dtype=np.int64)
        T = len(ids)
        x = W[p + "wte.weight"][ids] + W[p + "wpe.weight"][np.arange(T)]
        out = new_out(x)
        for l in range(self.L):
            q_ = "%sh.%d." % (p, l)
            h = H.layer_norm(x, W[q_ + "ln_1.weight"], W[q_ + "ln_1.bias"], self.eps)
            qkv = H.conv1d(h, W[q_ + "attn.c_attn.weight"], W[q_ + "attn.c_attn.bias"])
            hd = d // nh
            a = H.attend(qkv[:, :d].reshape(T, nh, hd), qkv[:, d:2 * d].reshape(T, nh, hd),
                         qkv[:, 2 * d:].reshape(T, nh, hd))
            attn = H.conv1d(a, W[q_ + "attn.c_proj.weight"], W[q_ + "attn.c_proj.bias"])
            x = x + attn
            h = H.layer_norm(x, W[q_ + "ln_2.weight"], W[q_ + "ln_2.bias"], self.eps)
            pre = H.conv1d(h, W[q_ + "mlp.c_fc.weight"], W[q_ + "mlp.c_fc.bias"])
            key = self.act(pre)
            if iv_fn is not None:
                iv_fn(l, key)
            o = H.conv1d(key, W[q_ + "mlp.c_proj.weight"], W[q_ + "mlp.c_proj.bias"])
            x = record(out, x, attn, pre, None, key, o)
        out["final"] = x
        out["logits"] = self.final_norm(x) @ self.U.T
        return out


def new_out(emb):
    return {"emb": emb.copy(), "resid_mid": [], "resid_post": [], "ffn_out": [], "key": [],
            "attn": [], "pre": [], "up": []}


def record(out, x, attn, pre, up, key, o):
    """Stores one layer's tensors (x: the residual after attention); returns x + o."""
    out["attn"].append(attn)
    out["resid_mid"].append(x.copy())
    out["pre"].append(pre)
    out["up"].append(up)
    out["key"].append(key)
    out["ffn_out"].append(o)
    x = x + o
    out["resid_post"].append(x.copy())
    return x


def make_iv(ivs, positions):
    """An iv_fn applying IVS (list of (layer, neuron, kind, value)) at rows POSITIONS."""
    def fn(layer, key):
        for p in positions:
            if p >= key.shape[0]:
                continue
            row = key[p]
            mx = row.max()  # "on": the layer's largest coefficient before this layer's edits
            for (l, n, kind, val) in ivs:
                if l != layer:
                    continue
                if kind == "ablate":
                    row[n] = 0.0
                elif kind == "scale":
                    row[n] *= val
                elif kind == "set":
                    row[n] = val
                elif kind == "on":
                    row[n] = mx
                else:
                    raise ValueError(kind)
    return fn


def greedy(m, tokens, n, ivs=None, traced=(), all_pos=False):
    """Greedy continuation, recomputing the whole sequence each step, with the
    interventions at the traced (or all) positions and every generated one."""
    seq = list(tokens)
    T = len(seq)
    out = []
    for _ in range(n):
        fn = None
        if ivs:
            pos = set(range(len(seq))) if all_pos else set(traced) | set(range(T, len(seq)))
            fn = make_iv(ivs, sorted(pos))
        nxt = int(np.argmax(m.forward(seq, fn)["logits"][-1]))
        if nxt in m.stop:
            break
        out.append(nxt)
        seq.append(nxt)
    return out


class Checker:
    def __init__(self, rtol):
        self.rtol, self.errors, self.worst, self.n = rtol, [], {}, 0

    def close(self, name, got, ref):
        got = np.asarray(got, dtype=np.float64)
        ref = np.asarray(ref, dtype=np.float64)
        self.n += 1
        if got.shape != ref.shape:
            self.errors.append("%s: shape %s, expected %s" % (name, got.shape, ref.shape))
            return
        if not np.all(np.isfinite(got)):
            self.errors.append("%s: non-finite values" % name)
            return
        lim = self.rtol * max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
        d = float(np.max(np.abs(got - ref))) if ref.size else 0.0
        key = name.split("[")[0]
        if key not in self.worst or d / lim > self.worst[key][0]:
            self.worst[key] = (d / lim, d)
        if d > lim:
            self.errors.append("%s: max diff %.3g > %.3g" % (name, d, lim))

    def ranking(self, name, got_ids, scores, tol):
        """GOT_IDS must be a top list of SCORES up to ties within TOL."""
        self.n += 1
        srt = np.sort(scores)[::-1]
        for j, i in enumerate(got_ids):
            if abs(scores[i] - srt[j]) > tol:
                self.errors.append("%s: rank %d is %d (score %.6g), reference has score %.6g there"
                                   % (name, j, i, scores[i], srt[j]))
                return
        if len(set(int(i) for i in got_ids)) != len(got_ids):
            self.errors.append("%s: repeated entries" % name)

    def rank_of(self, name, got_rank, z, t, tol):
        self.n += 1
        lo = int(np.sum(z > z[t] + tol))
        hi = int(np.sum(z > z[t] - tol))
        if not lo <= got_rank <= hi:
            self.errors.append("%s: rank %d, reference %d..%d" % (name, got_rank, lo, hi))

    def ok(self, cond, msg):
        self.n += 1
        if not cond:
            self.errors.append(msg)


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def lin_f(m, t, sigma):
    """The final norm linearised at SIGMA, read at target T: a linear map of a
    residual component (biases excluded)."""
    u = m.U[t]

    def f(x):
        if m.layernorm:
            x = x - x.mean()
        return u @ (m.g * x) / sigma
    return f


def sigma_of(m, x):
    if m.layernorm:
        return np.sqrt(np.mean((x - x.mean()) ** 2) + m.eps)
    return np.sqrt(np.mean(x * x) + m.eps)


def check_run(C, m, grp, ref, base_ref, tag, vnorm):
    """Compares one run group (base or intervened) against REF (a forward dict).
    BASE_REF: the unmodified run's forward (for sigma)."""
    L = m.L
    tol = C.rtol
    pos_groups = sorted((k for k in grp if k.startswith("pos_")), key=lambda s: int(s[4:]))
    for pk in pos_groups:
        g = grp[pk]
        p = int(g.attrs["position"])
        t = int(g.attrs["target_id"])
        w = "%s %s" % (tag, pk)
        z = ref["logits"][p]
        C.close("logits[%s]" % w, g["logits"][()], z)
        C.close("target_prob[%s]" % w, g.attrs["target_prob"], softmax(z)[t])
        C.rank_of("target_rank[%s]" % w, int(g.attrs["target_rank"]), z, t, tol * max(1, abs(z).max()))
        C.ranking("top_ids[%s]" % w, g["top_ids"][()], z, tol * max(1, abs(z).max()))
        for name, h5name in (("resid_mid", "resid_mid"), ("resid_post", "resid_post"),
                             ("ffn_out", "ffn_out"), ("key", "key_act"), ("pre", "ffn_pre"),
                             ("up", "up")):
            if name == "up" and not m.gated:
                C.ok("up" not in g, "up stored for a classic FFN")
                continue
            arr = np.stack([ref[name][l][p] for l in range(L)])
            C.close("%s[%s]" % (name, w), g[h5name][()], arr)
        # Conservation: probe's own coefficients times the values, plus b2,
        # equal its FFN output.
        for l in range(L):
            C.close("conservation[%s layer %d]" % (w, l),
                    m.values[l] @ g["key_act"][l] + m.b2[l], g["ffn_out"][l])
        # Logit lens with the full final norm, per residual.
        for which in ("pre", "post"):
            src = ref["resid_mid" if which == "pre" else "resid_post"]
            tl, tp = [], []
            for l in range(L):
                zl = m.final_norm(src[l][p]) @ m.U.T
                tl.append(zl[t])
                tp.append(softmax(zl)[t])
                s = tol * max(1, abs(zl).max())
                C.rank_of("lens_%s_rank[%s layer %d]" % (which, w, l),
                          int(g["lens_%s_target_rank" % which][l]), zl, t, s)
                C.ranking("lens_%s_top[%s layer %d]" % (which, w, l),
                          g["lens_%s_top_ids" % which][l], zl, s)
            C.close("lens_%s_target_logit[%s]" % (which, w), g["lens_%s_target_logit" % which][()], np.array(tl))
            C.close("lens_%s_target_prob[%s]" % (which, w), g["lens_%s_target_prob" % which][()], np.array(tp))
        # The lens after the last layer is the model's own prediction.
        C.close("lens_last_is_final[%s]" % w, g["lens_post_target_logit"][L - 1], g.attrs["target_logit"])
        # Linearised final norm at the unmodified run's x_L.
        sigma = sigma_of(m, base_ref["final"][p])
        C.close("sigma[%s]" % w, g.attrs["sigma_final"], sigma)
        f = lin_f(m, t, sigma)
        xcur = ref["final"][p]
        contrib = np.empty((L, m.ff))
        for l in range(L):
            for i in range(m.ff):
                contrib[l, i] = f(xcur) - f(xcur - ref["key"][l][p, i] * m.values[l][:, i])
        C.close("contribution[%s]" % w, g["contribution"][()], contrib)
        ffn_share = np.array([f(xcur) - f(xcur - ref["ffn_out"][l][p]) for l in range(L)])
        C.close("ffn_target_logit[%s]" % w, g["ffn_target_logit"][()], ffn_share)
        s = tol * max(1, abs(contrib).max())
        for l in range(L):
            C.ranking("top_by_contribution[%s layer %d]" % (w, l), g["top_by_contribution"][l], contrib[l], s)
            score = np.abs(ref["key"][l][p]) * vnorm[l]
            C.ranking("top_by_norm[%s layer %d]" % (w, l), g["top_by_norm"][l], score,
                      tol * max(1, score.max()))
        # Exact decomposition (the reference's own algebra): the components of
        # x_L add up to the target logit, biases aside.
        if tag == "base":
            parts = f(ref["emb"][p]) + sum(f(ref["attn"][l][p]) + f(ref["ffn_out"][l][p]) for l in range(L))
            if m.b is not None:
                parts += m.U[t] @ m.b
            C.close("decomposition[%s]" % w, parts, z[t])
    return len(pos_groups)


def load(path):
    return GPT2Ref(path) if os.path.isdir(path) else LlamaRef(path)


def run(a):
    m = load(a.model)
    C = Checker(a.rtol)
    with h5py.File(a.h5, "r") as h:
        if h.attrs.get("probe_kind") not in ("trace", b"trace"):
            print("trace_ref: FAIL %s is not a trace file" % a.h5)
            return 1
        toks = [int(x) for x in h["token_ids"][()]]
        positions = [int(x) for x in h["positions"][()]]
        T = len(toks)
        all_pos = h.attrs["intervene_at"] in ("all", b"all")
        n_gen = int(h.attrs["n_generate"])
        base = m.forward(toks)
        m.check_forward(C, toks)
        vnorm = np.stack([np.linalg.norm(v, axis=0) for v in m.values])
        C.close("value_norm", h["value_norm"][()], vnorm)
        n = check_run(C, m, h["base"], base, base, "base", vnorm)
        if n_gen:
            got, want = list(h["base/generated_ids"][()]), greedy(m, toks, n_gen)
            C.ok(got == want, "base continuation differs: %s vs %s" % (got, want))
        ivs = []
        if "interventions" in h:
            gi = h["interventions"]
            kinds = [k.decode() if isinstance(k, bytes) else k for k in gi["kind"][()]]
            ivs = [(int(l), int(nn), k, float(v)) for l, nn, k, v in
                   zip(gi["layer"][()], gi["neuron"][()], kinds, gi["value"][()])]
            iv_pos = list(range(T)) if all_pos else positions
            ivr = m.forward(toks, make_iv(ivs, iv_pos))
            n += check_run(C, m, h["intervened"], ivr, base, "intervened", vnorm)
            if n_gen:
                want = greedy(m, toks, n_gen, ivs, positions, all_pos)
                got = list(h["intervened/generated_ids"][()])
                C.ok(got == want, "intervened continuation differs: %s vs %s" % (got, want))
        if a.ablate_top:
            p = positions[0]
            f = lin_f(m, int(h["target_ids"][0]), sigma_of(m, base["final"][p]))
            allc = np.array([f(base["key"][l][p, i] * m.values[l][:, i])
                             for l in range(m.L) for i in range(m.ff)])
            got = [l * m.ff + nn for (l, nn, k, _) in ivs if k == "ablate"]
            C.ok(len(got) == a.ablate_top, "expected %d ablations, file has %d" % (a.ablate_top, len(got)))
            C.ranking("ablate_top", np.array(got), allc, a.rtol * max(1, abs(allc).max()))
    if n == 0:
        print("trace_ref: FAIL no traced positions in the file")
        return 1
    worst = " ".join("%s=%.2g" % (k, v[1]) for k, v in sorted(C.worst.items()))
    if C.errors:
        print("trace_ref: FAIL %d of %d checks" % (len(C.errors), C.n))
        for e in C.errors[:30]:
            print("  " + e)
        return 1
    print("trace_ref: OK %d checks, %d positions, %d interventions; worst abs diffs: %s"
          % (C.n, n, len(ivs), worst))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="llama2.c .bin / GGUF file, or a GPT-2 folder")
    ap.add_argument("--h5", required=True)
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--ablate-top", type=int, default=0)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
