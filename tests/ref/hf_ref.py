#!/usr/bin/python3
"""Independent numpy reference for Hugging Face checkpoints (float64).

Reads a model folder itself -- config.json and model.safetensors or
model.safetensors.index.json + shards (F32, F16, BF16) -- and runs the forward
pass of transformers' GPT2LMHeadModel, LlamaForCausalLM / MistralForCausalLM,
Qwen2ForCausalLM and GPTNeoXForCausalLM, written from those modeling files'
semantics, not from probe's C code:

  gpt2      x = wte[ids] + wpe[pos]; per block: x += c_proj(attn(ln_1 x));
            x += mlp_c_proj(act(c_fc(ln_2 x))); Conv1D: y = x @ W + b (W is (in, out));
            c_attn output split [Q | K | V]; logits = ln_f(x) @ wte.T (tied)
  llama     RMSNorm; q/k/v/o Linear (no bias, Qwen2: q/k/v bias); RoPE with
            rotate_half (pairs i, i + d/2); GQA by repeating kv heads;
            mlp = down(act(gate x) * up x); Llama 3 rope_scaling
  gpt_neox  LayerNorm; query_key_value viewed (T, heads, 3*head) -> q | k | v per
            head; rotary on the first int(head*rotary_pct) dims (rotate_half);
            parallel residual x + attn(ln1 x) + mlp(ln2 x) (or sequential)

Outputs per layer: gate_pre (gate x, or W1 x + b1), up (gated only),
key_act (act(gate)*up, or act(W1 x + b1)), and logits (T, vocab).

CLI:
  hf_ref.py --model DIR --npy-dir D       compare D/ids.npy, D/logits.npy,
                                          D/L{l}_{gate_pre,up,key_act}.npy (probe's dump)
  hf_ref.py --model DIR --h5 FILE         compare `probe activations --out FILE --logits`
  hf_ref.py --model DIR --tokens 1,2,3    print a summary
  [--rtol 1e-4]: pass when max|probe - ref| <= rtol * max(1, max|ref|) per array.
Prints "hf_ref: OK worst=..." and exits 0, or "hf_ref: FAIL ..." and exits 1.
"""

import argparse
import glob
import json
import math
import os
import re
import struct
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

# --------------------------------------------------------------------------
# safetensors


def read_safetensors(path):
    """{name: float64 array} for the F32/F16/BF16 tensors of one file."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError("%s: header length %d past the end" % (path, n))
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, en = e["data_offsets"]
        buf = raw[base + b:base + en]
        shape = tuple(e["shape"])
        dt = e["dtype"]
        if dt == "F32":
            a = np.frombuffer(buf, dtype="<f4")
        elif dt == "F16":
            a = np.frombuffer(buf, dtype="<f2")
        elif dt == "BF16":
            a = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            continue  # masks and other buffers the forward pass does not use
        out[name] = a.astype(np.float64).reshape(shape)
    return out


def read_folder(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            wm = json.load(f)["weight_map"]
        w = {}
        for fn in sorted(set(wm.values())):
            w.update(read_safetensors(os.path.join(d, fn)))
        return w
    return read_safetensors(os.path.join(d, "model.safetensors"))


# --------------------------------------------------------------------------
# pieces


def gelu_erf(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


ACTS = {"gelu": gelu_erf, "gelu_new": gelu_tanh, "gelu_pytorch_tanh": gelu_tanh,
        "gelu_fast": gelu_tanh, "relu": lambda x: np.maximum(x, 0.0),
        "silu": lambda x: x / (1.0 + np.exp(-x)), "swish": lambda x: x / (1.0 + np.exp(-x))}


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def rms_norm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def linear(x, w, b=None):
    """nn.Linear: W is (out, in)."""
    y = x @ w.T
    return y + b if b is not None else y


def conv1d(x, w, b):
    """GPT-2 Conv1D: W is (in, out)."""
    return x @ w + b


def inv_freqs(rot, theta, scaling=None):
    inv = 1.0 / theta ** (np.arange(0, rot, 2, dtype=np.float64) / rot)
    if scaling:
        # Llama 3: long wavelengths slowed by `factor`, short ones kept,
        # a smooth blend between.
        f, lo, hi = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        wl = 2 * math.pi / inv
        out = np.where(wl > old / lo, inv / f, inv)
        smooth = (old / wl - lo) / (hi - lo)
        blended = (1 - smooth) * out / f + smooth * out
        medium = (wl >= old / hi) & (wl <= old / lo)
        inv = np.where(medium, blended, out)
    return inv


def rope_half(x, rot, inv):
    """x: (T, heads, hd).  Rotates the first ROT dims, rotate_half style."""
    T = x.shape[0]
    ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]    # (T, rot/2)
    emb = np.concatenate([ang, ang], -1)                             # (T, rot)
    cos, sin = np.cos(emb)[:, None, :], np.sin(emb)[:, None, :]
    xr, xp = x[..., :rot], x[..., rot:]
    h = rot // 2
    rotated = np.concatenate([-xr[..., h:], xr[..., :h]], -1)
    return np.concatenate([xr * cos + rotated * sin, xp], -1)


def attend(q, k, v):
    """q: (T, H, hd), k/v: (T, KV, hd); causal, scaled by 1/sqrt(hd)."""
    T, H, hd = q.shape
    KV = k.shape[1]
    rep = H // KV
    out = np.empty((T, H, hd))
    mask = np.triu(np.ones((T, T), dtype=bool), 1)
    for h in range(H):
        s = q[:, h, :] @ k[:, h // rep, :].T / math.sqrt(hd)
        s[mask] = -np.inf
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        out[:, h, :] = s @ v[:, h // rep, :]
    return out.reshape(T, H * hd)


# --------------------------------------------------------------------------
# models


def load(d):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    return cfg, read_folder(d)


def forward(cfg, W, ids):
    mt = cfg.get("model_type")
    if mt == "gpt2":
        return fwd_gpt2(cfg, W, ids)
    if mt in ("llama", "mistral", "qwen2"):
        return fwd_llama(cfg, W, ids)
    if mt == "gpt_neox":
        return fwd_neox(cfg, W, ids)
    raise ValueError("unsupported model_type %r" % mt)


def fwd_gpt2(cfg, W, ids):
    p = "transformer." if "transformer.wte.weight" in W else ""
    d, H = cfg["n_embd"], cfg["n_head"]
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    act = ACTS[cfg.get("activation_function", "gelu_new")]
    T = len(ids)
    x = W[p + "wte.weight"][ids] + W[p + "wpe.weight"][np.arange(T)]
    layers = []
    for i in range(cfg["n_layer"]):
        q_ = "%sh.%d." % (p, i)
        h = layer_norm(x, W[q_ + "ln_1.weight"], W[q_ + "ln_1.bias"], eps)
        qkv = conv1d(h, W[q_ + "attn.c_attn.weight"], W[q_ + "attn.c_attn.bias"])
        q, k, v = qkv[:, :d], qkv[:, d:2 * d], qkv[:, 2 * d:]
        hd = d // H
        a = attend(q.reshape(T, H, hd), k.reshape(T, H, hd), v.reshape(T, H, hd))
        x = x + conv1d(a, W[q_ + "attn.c_proj.weight"], W[q_ + "attn.c_proj.bias"])
        h = layer_norm(x, W[q_ + "ln_2.weight"], W[q_ + "ln_2.bias"], eps)
        pre = conv1d(h, W[q_ + "mlp.c_fc.weight"], W[q_ + "mlp.c_fc.bias"])
        key = act(pre)
        x = x + conv1d(key, W[q_ + "mlp.c_proj.weight"], W[q_ + "mlp.c_proj.bias"])
        layers.append({"gate_pre": pre, "key_act": key})
    x = layer_norm(x, W[p + "ln_f.weight"], W[p + "ln_f.bias"], eps)
    tie = cfg.get("tie_word_embeddings", True)
    head = W[p + "wte.weight"] if tie or "lm_head.weight" not in W else W["lm_head.weight"]
    return {"layers": layers, "logits": x @ head.T}


def fwd_llama(cfg, W, ids):
    d, H = cfg["hidden_size"], cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads") or H
    hd = cfg.get("head_dim") or d // H
    eps = cfg.get("rms_norm_eps", 1e-6)
    act = ACTS[cfg.get("hidden_act", "silu")]
    rot = int(hd * cfg.get("partial_rotary_factor", 1.0))
    rs = cfg.get("rope_scaling")
    if rs and (rs.get("rope_type") or rs.get("type")) != "llama3":
        rs = None
    inv = inv_freqs(rot, cfg.get("rope_theta", 10000.0), rs)
    T = len(ids)
    x = W["model.embed_tokens.weight"][ids]
    layers = []
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        g = lambda n: W.get(p + n)  # noqa: E731
        h = rms_norm(x, g("input_layernorm.weight"), eps)
        q = linear(h, g("self_attn.q_proj.weight"), g("self_attn.q_proj.bias")).reshape(T, H, hd)
        k = linear(h, g("self_attn.k_proj.weight"), g("self_attn.k_proj.bias")).reshape(T, KV, hd)
        v = linear(h, g("self_attn.v_proj.weight"), g("self_attn.v_proj.bias")).reshape(T, KV, hd)
        q, k = rope_half(q, rot, inv), rope_half(k, rot, inv)
        a = attend(q, k, v)
        x = x + linear(a, g("self_attn.o_proj.weight"), g("self_attn.o_proj.bias"))
        h = rms_norm(x, g("post_attention_layernorm.weight"), eps)
        gate = linear(h, g("mlp.gate_proj.weight"), g("mlp.gate_proj.bias"))
        up = linear(h, g("mlp.up_proj.weight"), g("mlp.up_proj.bias"))
        key = act(gate) * up
        x = x + linear(key, g("mlp.down_proj.weight"), g("mlp.down_proj.bias"))
        layers.append({"gate_pre": gate, "up": up, "key_act": key})
    x = rms_norm(x, W["model.norm.weight"], eps)
    tie = cfg.get("tie_word_embeddings", False) or "lm_head.weight" not in W
    head = W["model.embed_tokens.weight"] if tie else W["lm_head.weight"]
    return {"layers": layers, "logits": x @ head.T}


def fwd_neox(cfg, W, ids):
    d, H = cfg["hidden_size"], cfg["num_attention_heads"]
    hd = d // H
    eps = cfg.get("layer_norm_eps", 1e-5)
    act = ACTS[cfg.get("hidden_act", "gelu")]
    rot = int(hd * cfg.get("rotary_pct", cfg.get("partial_rotary_factor", 0.25)))
    inv = inv_freqs(rot, cfg.get("rotary_emb_base", cfg.get("rope_theta", 10000)))
    parallel = cfg.get("use_parallel_residual", True)
    T = len(ids)
    x = W["gpt_neox.embed_in.weight"][ids]
    layers = []
    for i in range(cfg["num_hidden_layers"]):
        p = "gpt_neox.layers.%d." % i
        g = lambda n: W.get(p + n)  # noqa: E731
        h = layer_norm(x, g("input_layernorm.weight"), g("input_layernorm.bias"), eps)
        qkv = linear(h, g("attention.query_key_value.weight"), g("attention.query_key_value.bias"))
        qkv = qkv.reshape(T, H, 3 * hd)
        q, k, v = qkv[..., :hd], qkv[..., hd:2 * hd], qkv[..., 2 * hd:]
        if rot:
            q, k = rope_half(q, rot, inv), rope_half(k, rot, inv)
        a = linear(attend(q, k, v), g("attention.dense.weight"), g("attention.dense.bias"))

        def mlp(hh):
            pre = linear(hh, g("mlp.dense_h_to_4h.weight"), g("mlp.dense_h_to_4h.bias"))
            key = act(pre)
            return pre, key, linear(key, g("mlp.dense_4h_to_h.weight"), g("mlp.dense_4h_to_h.bias"))

        if parallel:
            pre, key, m = mlp(layer_norm(x, g("post_attention_layernorm.weight"),
                                         g("post_attention_layernorm.bias"), eps))
            x = x + a + m
        else:
            x = x + a
            pre, key, m = mlp(layer_norm(x, g("post_attention_layernorm.weight"),
                                         g("post_attention_layernorm.bias"), eps))
            x = x + m
        layers.append({"gate_pre": pre, "key_act": key})
    x = layer_norm(x, W["gpt_neox.final_layer_norm.weight"], W["gpt_neox.final_layer_norm.bias"], eps)
    tie = cfg.get("tie_word_embeddings", False) or "embed_out.weight" not in W
    head = W["gpt_neox.embed_in.weight"] if tie else W["embed_out.weight"]
    return {"layers": layers, "logits": x @ head.T}


# --------------------------------------------------------------------------
# comparison


class Cmp:
    def __init__(self, rtol):
        self.rtol, self.errors, self.worst, self.n = rtol, [], None, 0

    def __call__(self, name, got, ref):
        got = np.asarray(got, dtype=np.float64)
        if got.shape != ref.shape:
            self.errors.append("%s: shape %s, expected %s" % (name, got.shape, ref.shape))
            return
        if not np.all(np.isfinite(got)):
            self.errors.append("%s: non-finite values" % name)
            return
        diff = np.abs(got - ref)
        i = np.unravel_index(int(np.argmax(diff)), diff.shape)
        lim = self.rtol * max(1.0, float(np.max(np.abs(ref))))
        r = float(diff[i]) / lim
        self.n += 1
        if r > 1:
            self.errors.append("%s at %s: |diff| %.3g > %.3g (probe %.6g ref %.6g)"
                               % (name, tuple(int(j) for j in i), diff[i], lim, got[i], ref[i]))
        if self.worst is None or r > self.worst[0]:
            self.worst = (r, float(diff[i]), lim, name)

    def report(self):
        if self.n == 0 and not self.errors:
            self.errors.append("nothing compared")
        if self.errors:
            for e in self.errors[:10]:
                print("  error: " + e)
            print("hf_ref: FAIL %d problem(s); first: %s" % (len(self.errors), self.errors[0]))
            return 1
        r, dd, lim, name = self.worst
        print("hf_ref: OK worst=%.3g (%s; limit %.3g, %.3f of it) arrays=%d rtol=%g"
              % (dd, name, lim, r, self.n, self.rtol))
        return 0


def compare_npy(cfg, W, d, rtol):
    c = Cmp(rtol)
    ids = np.load(os.path.join(d, "ids.npy")).astype(np.int64).reshape(-1)
    r = forward(cfg, W, ids)
    files = sorted(glob.glob(os.path.join(d, "L*_*.npy")))
    for fn in files:
        m = re.fullmatch(r"L(\d+)_(\w+)\.npy", os.path.basename(fn))
        L, name = int(m.group(1)), m.group(2)
        if L >= len(r["layers"]) or name not in r["layers"][L]:
            c.errors.append("%s: no such reference array" % os.path.basename(fn))
            continue
        c("layer %d %s" % (L, name), np.load(fn), r["layers"][L][name])
    gated = "up" in r["layers"][0]
    for L in range(len(r["layers"])):
        for name in ("gate_pre", "key_act") + (("up",) if gated else ()):
            if not os.path.exists(os.path.join(d, "L%d_%s.npy" % (L, name))):
                c.errors.append("L%d_%s.npy missing" % (L, name))
    lf = os.path.join(d, "logits.npy")
    if os.path.exists(lf):
        c("logits", np.load(lf), r["logits"])
    else:
        c.errors.append("logits.npy missing")
    return c.report()


def compare_h5(cfg, W, path, rtol):
    import h5py
    c = Cmp(rtol)
    with h5py.File(path, "r") as f:
        layers = [int(v) for v in np.asarray(f["layers"][()]).reshape(-1)]
        prompts = sorted((k for k in f if re.fullmatch(r"prompt_\d+", k)), key=lambda k: int(k[7:]))
        if not prompts:
            c.errors.append("no prompt groups")
        for pk in prompts:
            g = f[pk]
            ids = np.asarray(g["token_ids"][()]).astype(np.int64).reshape(-1)
            r = forward(cfg, W, ids)
            for L in layers:
                lg = g["layer_%d" % L]
                for name in ("gate_pre", "key_act", "up"):
                    if name in r["layers"][L]:
                        if name not in lg:
                            c.errors.append("%s/layer_%d/%s missing" % (pk, L, name))
                        else:
                            c("%s layer %d %s" % (pk, L, name), lg[name][()], r["layers"][L][name])
            if "logits" in g:
                c("%s logits" % pk, g["logits"][()], r["logits"])
    return c.report()


def main(argv=None):
    ap = argparse.ArgumentParser(description="numpy reference for HF checkpoints")
    ap.add_argument("--model", required=True)
    ap.add_argument("--npy-dir")
    ap.add_argument("--h5")
    ap.add_argument("--tokens")
    ap.add_argument("--rtol", type=float, default=1e-4)
    a = ap.parse_args(argv)
    try:
        cfg, W = load(a.model)
        if a.npy_dir:
            return compare_npy(cfg, W, a.npy_dir, a.rtol)
        if a.h5:
            return compare_h5(cfg, W, a.h5, a.rtol)
        ids = [int(t) for t in (a.tokens or "0").split(",")]
        r = forward(cfg, W, ids)
        print("logits[-1][:8] =", np.round(r["logits"][-1][:8], 5).tolist())
        return 0
    except Exception as e:  # unreadable file, bad model, ...
        print("hf_ref: FAIL %s: %s" % (type(e).__name__, e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
