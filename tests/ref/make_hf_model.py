#!/usr/bin/python3
"""Write a small random-weight Hugging Face checkpoint folder for tests.

The folder looks like one saved by transformers' save_pretrained():
config.json with the real keys of the model type, and model.safetensors (or
model.safetensors.index.json + shards) with the real tensor names, shapes and
orientation (GPT-2's Conv1D weights stored (in, out); everything else
(out, in) as nn.Linear stores it).  The safetensors writer is our own (numpy
only): 8-byte little-endian header length, JSON header padded with spaces,
tensors packed in order of decreasing element size so each one is aligned.

Usage:
    make_hf_model.py --arch gpt2|llama|mistral|qwen2|gpt_neox --out DIR
        [--dtype f32|bf16|f16] [--shards N] [--tie 0|1] [--seed S]
        [--layers L --d D --heads H --kv-heads K --ff F --vocab V --ctx C]
        [--medium]           GPT-2-medium shape (24 layers, d 1024, ff 4096, vocab 50257)
        [--prefix]           GPT-2 names under "transformer." (GPT2LMHeadModel)
        [--buffers]          also the non-parameter buffers old checkpoints carry
                             (BOOL causal masks, 0-d masked_bias, rotary inv_freq)
        [--misalign]         header padded so the data section starts at an odd offset
        [--rope-llama3]      Llama 3 rope_scaling in the config
        [--head-dim N]       explicit head_dim (llama family)
        [--sequential]       gpt_neox with use_parallel_residual false
        [--rotary-pct P]     gpt_neox rotary_pct (default 0.25)
        [--act NAME]         activation (gpt2 activation_function / hidden_act)
        [--corrupt KIND]     write a broken folder for error tests:
            offsets-outside  a tensor's data_offsets run past the data section
            overlap          two tensors share bytes
            size-mismatch    data_offsets hold fewer bytes than shape x dtype
            missing-tensor   a layer's FFN weight is left out
            bad-dtype        a needed tensor stored as F64
            unsupported-arch config model_type "bert"
            header-too-long  header length larger than the file
            bad-json         the header is not JSON
            index-missing    the index lists a tensor its shard does not have
"""

import argparse
import json
import os
import struct
import sys

import numpy as np


def to_bf16_bits(a):
    """float32 -> bfloat16 bits (round to nearest even), as uint16.  Finite
    inputs only (the carry cannot overflow 32 bits for them)."""
    b = np.ascontiguousarray(np.asarray(a), dtype=np.float32).view(np.uint32)
    return ((b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(np.uint16)


class Lazy:
    """A big tiled tensor made only when written."""

    def __init__(self, shape, pool, shift, scale):
        self.shape, self.pool, self.shift, self.scale = shape, pool, shift, scale
        self.size = int(np.prod(shape))
        self.ndim = len(shape)
        self.dtype = np.dtype(np.float32)

    def __rmul__(self, k):
        return Lazy(self.shape, self.pool, self.shift, self.scale * k)

    def __array__(self, dtype=None):
        a = np.resize(np.roll(self.pool, self.shift), self.shape)
        if self.scale != 1.0:
            a *= np.float32(self.scale)
        return a if dtype is None else a.astype(dtype)


# safetensors dtype name and element size of each storage kind.
KINDS = {"f64": ("F64", 8), "f32": ("F32", 4), "f16": ("F16", 2), "bf16": ("BF16", 2),
         "bool": ("BOOL", 1)}


def encode(a, kind):
    """Bytes of array A stored as KIND (little-endian)."""
    if kind == "bool":
        return np.ascontiguousarray(a, dtype=np.uint8).tobytes()
    if kind == "bf16":
        return to_bf16_bits(a).astype("<u2").tobytes()
    return np.ascontiguousarray(np.asarray(a), dtype={"f64": "<f8", "f32": "<f4", "f16": "<f2"}[kind]).tobytes()


def write_safetensors(path, tensors, misalign=False, corrupt=None):
    """TENSORS: list of (name, array, kind).  Written one tensor at a time."""
    ent = [(name, a, kind, KINDS[kind][0], KINDS[kind][1] * int(np.prod(a.shape, dtype=np.int64)))
           for name, a, kind in tensors]
    # Largest elements first keeps every tensor aligned to its element size.
    ent.sort(key=lambda e: (-KINDS[e[2]][1], e[0]))
    header, off = {}, 0
    for name, a, kind, stype, nb in ent:
        header[name] = {"dtype": stype, "shape": list(a.shape), "data_offsets": [off, off + nb]}
        off += nb
    header["__metadata__"] = {"format": "pt"}
    total = off
    if corrupt == "offsets-outside":
        n = ent[0][0]
        b0, e0 = header[n]["data_offsets"]
        header[n]["data_offsets"] = [b0 + total, e0 + total]
    elif corrupt == "overlap":
        # Two tensors of the same size: point the second at the first one's bytes.
        seen = {}
        for name, a, kind, stype, nb in ent:
            if (nb, stype) in seen:
                header[name]["data_offsets"] = list(header[seen[(nb, stype)]]["data_offsets"])
                break
            seen[(nb, stype)] = name
    elif corrupt == "size-mismatch":
        n = ent[0][0]
        b0, e0 = header[n]["data_offsets"]
        header[n]["data_offsets"] = [b0, e0 - KINDS[ent[0][2]][1]]
    h = json.dumps(header, separators=(",", ":")).encode()
    if corrupt == "bad-json":
        h = h[:-5] + b"]]]]]"
    pad = (-len(h)) % 8
    if misalign:
        pad += 1  # the data section starts at an odd offset: F32 views are misaligned
    h += b" " * pad
    hlen = len(h)
    if corrupt == "header-too-long":
        hlen = len(h) + total + 100
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", hlen))
        f.write(h)
        for name, a, kind, stype, nb in ent:
            f.write(encode(a, kind))
    return total


# ----------------------------------------------------------------------------
# weights


class Gen:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def mat(self, out, inp, transposed=False):
        w = self.rng.standard_normal((out, inp)).astype(np.float32) / np.sqrt(inp)
        return np.ascontiguousarray(w.T) if transposed else w

    def vec(self, n, scale=0.1, center=0.0):
        return (center + scale * self.rng.standard_normal(n)).astype(np.float32)

    def emb(self, n, d):
        return self.rng.standard_normal((n, d)).astype(np.float32)


def build(a):
    g = Gen(a.seed)
    d, L, H, F, V, C = a.d, a.layers, a.heads, a.ff, a.vocab, a.ctx
    KV = a.kv_heads or H
    t = []  # (name, array)
    buffers = []

    if a.arch == "gpt2":
        cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
               "vocab_size": V, "n_positions": C, "n_ctx": C, "n_embd": d, "n_layer": L,
               "n_head": H, "n_inner": F if F != 4 * d else None,
               "activation_function": a.act or "gelu_new", "layer_norm_epsilon": 1e-5,
               "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1,
               "scale_attn_weights": True, "bos_token_id": 50256, "eos_token_id": 50256,
               "tie_word_embeddings": bool(a.tie), "torch_dtype": "float32"}
        p = "transformer." if a.prefix else ""
        t.append((p + "wte.weight", g.emb(V, d)))
        t.append((p + "wpe.weight", 0.1 * g.emb(C, d)))
        for i in range(L):
            q = "%sh.%d." % (p, i)
            t += [(q + "ln_1.weight", g.vec(d, 0.1, 1.0)), (q + "ln_1.bias", g.vec(d)),
                  (q + "attn.c_attn.weight", g.mat(3 * d, d, True)),
                  (q + "attn.c_attn.bias", g.vec(3 * d)),
                  (q + "attn.c_proj.weight", g.mat(d, d, True)), (q + "attn.c_proj.bias", g.vec(d)),
                  (q + "ln_2.weight", g.vec(d, 0.1, 1.0)), (q + "ln_2.bias", g.vec(d)),
                  (q + "mlp.c_fc.weight", g.mat(F, d, True)), (q + "mlp.c_fc.bias", g.vec(F)),
                  (q + "mlp.c_proj.weight", g.mat(d, F, True)), (q + "mlp.c_proj.bias", g.vec(d))]
            buffers += [(q + "attn.bias", np.tril(np.ones((C, C), dtype=np.bool_)).reshape(1, 1, C, C)),
                        (q + "attn.masked_bias", np.array(-1e4, dtype=np.float32))]
        t += [(p + "ln_f.weight", g.vec(d, 0.1, 1.0)), (p + "ln_f.bias", g.vec(d))]
        if not a.tie:
            t.append(("lm_head.weight", g.mat(V, d)))
    elif a.arch in ("llama", "mistral", "qwen2"):
        hd = a.head_dim or d // H
        cls = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
               "qwen2": "Qwen2ForCausalLM"}[a.arch]
        cfg = {"architectures": [cls], "model_type": a.arch, "vocab_size": V, "hidden_size": d,
               "intermediate_size": F, "num_hidden_layers": L, "num_attention_heads": H,
               "num_key_value_heads": KV, "max_position_embeddings": C,
               "rms_norm_eps": 1e-5, "rope_theta": 10000.0 if a.arch != "qwen2" else 1000000.0,
               "hidden_act": a.act or "silu", "tie_word_embeddings": bool(a.tie),
               "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16",
               "attention_dropout": 0.0}
        if a.head_dim:
            cfg["head_dim"] = hd
        if a.arch == "llama":
            cfg.update({"attention_bias": False, "mlp_bias": False, "rope_scaling": None})
        if a.arch == "mistral":
            cfg["sliding_window"] = None
        if a.arch == "qwen2":
            cfg.update({"use_sliding_window": False, "sliding_window": 4096,
                        "max_window_layers": L})
        if a.rope_llama3:
            cfg["rope_theta"] = 500000.0
            cfg["rope_scaling"] = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                   "original_max_position_embeddings": 16, "rope_type": "llama3"}
        t.append(("model.embed_tokens.weight", g.emb(V, d)))
        for i in range(L):
            q = "model.layers.%d." % i
            t += [(q + "input_layernorm.weight", g.vec(d, 0.1, 1.0)),
                  (q + "self_attn.q_proj.weight", g.mat(H * hd, d)),
                  (q + "self_attn.k_proj.weight", g.mat(KV * hd, d)),
                  (q + "self_attn.v_proj.weight", g.mat(KV * hd, d)),
                  (q + "self_attn.o_proj.weight", g.mat(d, H * hd)),
                  (q + "post_attention_layernorm.weight", g.vec(d, 0.1, 1.0)),
                  (q + "mlp.gate_proj.weight", g.mat(F, d)),
                  (q + "mlp.up_proj.weight", g.mat(F, d)),
                  (q + "mlp.down_proj.weight", g.mat(d, F))]
            if a.arch == "qwen2":
                t += [(q + "self_attn.q_proj.bias", g.vec(H * hd, 0.5)),
                      (q + "self_attn.k_proj.bias", g.vec(KV * hd, 0.5)),
                      (q + "self_attn.v_proj.bias", g.vec(KV * hd, 0.5))]
            buffers.append((q + "self_attn.rotary_emb.inv_freq",
                            (1.0 / 10000 ** (np.arange(0, hd, 2) / hd)).astype(np.float32)))
        t.append(("model.norm.weight", g.vec(d, 0.1, 1.0)))
        if not a.tie:
            t.append(("lm_head.weight", g.mat(V, d)))
    elif a.arch == "gpt_neox":
        hd = d // H
        cfg = {"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox",
               "vocab_size": V, "hidden_size": d, "num_hidden_layers": L,
               "num_attention_heads": H, "intermediate_size": F, "hidden_act": a.act or "gelu",
               "rotary_pct": a.rotary_pct, "rotary_emb_base": 10000,
               "max_position_embeddings": C, "layer_norm_eps": 1e-5,
               "use_parallel_residual": not a.sequential, "tie_word_embeddings": bool(a.tie),
               "bos_token_id": 0, "eos_token_id": 0, "torch_dtype": "float16"}
        t.append(("gpt_neox.embed_in.weight", g.emb(V, d)))
        for i in range(L):
            q = "gpt_neox.layers.%d." % i
            t += [(q + "input_layernorm.weight", g.vec(d, 0.1, 1.0)),
                  (q + "input_layernorm.bias", g.vec(d)),
                  (q + "post_attention_layernorm.weight", g.vec(d, 0.1, 1.0)),
                  (q + "post_attention_layernorm.bias", g.vec(d)),
                  (q + "attention.query_key_value.weight", g.mat(3 * d, d)),
                  (q + "attention.query_key_value.bias", g.vec(3 * d)),
                  (q + "attention.dense.weight", g.mat(d, d)),
                  (q + "attention.dense.bias", g.vec(d)),
                  (q + "mlp.dense_h_to_4h.weight", g.mat(F, d)),
                  (q + "mlp.dense_h_to_4h.bias", g.vec(F)),
                  (q + "mlp.dense_4h_to_h.weight", g.mat(d, F)),
                  (q + "mlp.dense_4h_to_h.bias", g.vec(d))]
            rot = int(hd * a.rotary_pct)
            buffers += [(q + "attention.bias", np.tril(np.ones((C, C), dtype=np.bool_)).reshape(1, 1, C, C)),
                        (q + "attention.masked_bias", np.array(-1e9, dtype=np.float32)),
                        (q + "attention.rotary_emb.inv_freq",
                         (1.0 / 10000 ** (np.arange(0, rot, 2) / max(rot, 1))).astype(np.float32))]
        t += [("gpt_neox.final_layer_norm.weight", g.vec(d, 0.1, 1.0)),
              ("gpt_neox.final_layer_norm.bias", g.vec(d))]
        if not a.tie:
            t.append(("embed_out.weight", g.mat(V, d)))
    else:
        raise SystemExit("make_hf_model: unknown --arch %s" % a.arch)
    return cfg, t, (buffers if a.buffers else [])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16", "f16"])
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--tie", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--d", type=int, default=32)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=0)
    ap.add_argument("--head-dim", type=int, default=0)
    ap.add_argument("--ff", type=int, default=0)
    ap.add_argument("--vocab", type=int, default=97)
    ap.add_argument("--ctx", type=int, default=64)
    ap.add_argument("--medium", action="store_true")
    ap.add_argument("--prefix", action="store_true")
    ap.add_argument("--buffers", action="store_true")
    ap.add_argument("--misalign", action="store_true")
    ap.add_argument("--rope-llama3", action="store_true")
    ap.add_argument("--sequential", action="store_true")
    ap.add_argument("--rotary-pct", type=float, default=0.25)
    ap.add_argument("--act", default=None)
    ap.add_argument("--corrupt", default=None)
    a = ap.parse_args(argv)
    if a.medium:
        a.arch, a.layers, a.d, a.heads, a.ff, a.vocab, a.ctx = "gpt2", 24, 1024, 16, 4096, 50257, 1024
    if not a.arch:
        ap.error("--arch (or --medium) is required")
    if not a.ff:
        a.ff = 4 * a.d if a.arch in ("gpt2", "gpt_neox") else 3 * a.d - 8
    if a.tie is None:
        a.tie = 1 if a.arch == "gpt2" else 0

    if a.medium:
        # 355M random numbers are slow to draw and 1.4 GB to hold: tile one
        # random block, made a tensor at a time while writing (the values
        # only need to be finite and of a sane scale).
        rng = np.random.default_rng(a.seed)
        pool = (rng.standard_normal(1 << 20) * 0.02).astype(np.float32)
        Gen.mat = lambda self, out, inp, transposed=False: Lazy(
            (inp, out) if transposed else (out, inp), pool, out * 7 + inp, 1.0)
        Gen.emb = lambda self, n, d: Lazy((n, d), pool, n + d, 10.0)
    cfg, tensors, buffers = build(a)
    if a.corrupt == "unsupported-arch":
        cfg["model_type"] = "bert"
        cfg["architectures"] = ["BertForMaskedLM"]
    # Parameters in the chosen dtype; buffers as checkpoints keep them (BOOL masks, F32).
    items = [(n, x, a.dtype) for n, x in tensors]
    items += [(n, x, "bool" if x.dtype == np.bool_ else "f32") for n, x in buffers]
    if a.corrupt == "bad-dtype":
        bad = ("layers.0.mlp.up_proj.weight", "h.0.mlp.c_fc.weight",
               "layers.0.mlp.dense_h_to_4h.weight")
        items = [(n, x, "f64" if n.endswith(bad) else k) for n, x, k in items]
    missing = None
    if a.corrupt in ("missing-tensor", "index-missing"):
        missing = [n for n, _, _ in items if ".1.mlp." in n and n.endswith("weight")][0]
        if a.corrupt == "missing-tensor":
            items = [it for it in items if it[0] != missing]

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    corrupt_file = a.corrupt if a.corrupt in ("offsets-outside", "overlap", "size-mismatch",
                                               "bad-json", "header-too-long") else None
    if a.shards <= 1 and a.corrupt != "index-missing":
        write_safetensors(os.path.join(a.out, "model.safetensors"), items, a.misalign, corrupt_file)
    else:
        n = max(a.shards, 2)
        # Split in file order, as save_pretrained does (by size, roughly).
        per = (len(items) + n - 1) // n
        wm = {}
        for s in range(n):
            part = items[s * per:(s + 1) * per]
            fn = "model-%05d-of-%05d.safetensors" % (s + 1, n)
            for name, _, _ in part:
                wm[name] = fn
            if a.corrupt == "index-missing":
                part = [it for it in part if it[0] != missing]
            write_safetensors(os.path.join(a.out, fn), part, a.misalign,
                              corrupt_file if s == n - 1 else None)
        total = sum(KINDS[k][1] * x.size for _, x, k in items)
        with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
