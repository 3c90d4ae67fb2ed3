#!/usr/bin/python3
"""Independent numpy reference implementation of the Llama forward pass.

Written from the file-format descriptions and the Llama architecture only,
WITHOUT looking at probe's C code, so that tests can check the C side against
it.  It reads the weights itself from:

  * llama2.c legacy checkpoints (7 x int32 header, float32 weights),
  * llama2.c "v1" exports (magic "ak42", 256-byte header),
  * GGUF v2/v3 files with F32 / F16 / Q8_0 / Q4_0 tensors (dequantized here).

All arithmetic is done in float64 (weights are converted to float64 after
loading / dequantizing), so differences against a float32 C implementation
are dominated by the C side's rounding.

Module use:
    m = load_model(path)
    r = forward(m, [1, 403, 407])
    r["layers"][L]["key_act"]   # (T, hidden) = silu(gate_pre) * up
    r["logits"]                 # (T, vocab)

CLI:
    /usr/bin/python3 tests/ref/llama_ref.py --model M --tokens 1,403,407 --out ref.npz
    /usr/bin/python3 tests/ref/llama_ref.py --model M --tokens 1 --greedy 40 [--tokenizer tok512.bin]
"""

import argparse
import os
import struct
import sys

# The matrices are tiny; BLAS threading only adds overhead.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

LLAMA2C_V1_MAGIC = 0x616B3432  # "ak42" read as a little-endian uint32


# --------------------------------------------------------------------------
# model container

class Model:
    """Config + float64 weights.  Per-layer weights are lists indexed by layer.

    Matrices are stored "out x in" so that y = x @ W.T (as in llama2.c)."""

    def __init__(self):
        self.fmt = None
        self.dim = self.hidden_dim = self.n_layers = None
        self.n_heads = self.n_kv_heads = self.vocab_size = self.seq_len = None
        self.eps = 1e-5
        self.rope_theta = 10000.0
        self.tok_emb = None                 # (vocab, dim)
        self.rms_att = []                   # (dim,)
        self.wq, self.wk, self.wv, self.wo = [], [], [], []
        self.rms_ffn = []
        self.w1, self.w2, self.w3 = [], [], []   # gate (hid,dim), down (dim,hid), up (hid,dim)
        self.rms_final = None
        self.wcls = None                    # (vocab, dim)
        self.extra = {}                     # format-specific extras (metadata, rope tables)

    @property
    def head_size(self):
        return self.dim // self.n_heads

    @property
    def kv_dim(self):
        return self.head_size * self.n_kv_heads

    def check(self):
        d, h, L = self.dim, self.hidden_dim, self.n_layers
        kv = self.kv_dim
        assert self.dim % self.n_heads == 0, "dim not divisible by n_heads"
        assert self.n_heads % self.n_kv_heads == 0, "n_heads not divisible by n_kv_heads"
        assert self.head_size % 2 == 0, "odd head size"
        assert self.tok_emb.shape == (self.vocab_size, d), self.tok_emb.shape
        assert self.wcls.shape == (self.vocab_size, d), self.wcls.shape
        assert self.rms_final.shape == (d,)
        for name, lst, shp in [("rms_att", self.rms_att, (d,)), ("wq", self.wq, (d, d)),
                               ("wk", self.wk, (kv, d)), ("wv", self.wv, (kv, d)),
                               ("wo", self.wo, (d, d)), ("rms_ffn", self.rms_ffn, (d,)),
                               ("w1", self.w1, (h, d)), ("w2", self.w2, (d, h)),
                               ("w3", self.w3, (h, d))]:
            assert len(lst) == L, (name, len(lst))
            for a in lst:
                assert a.shape == shp, (name, a.shape, shp)
        return self


# --------------------------------------------------------------------------
# llama2.c legacy and v1 checkpoints

def _f32_reader(buf, off):
    """Return a function take(*shape) that consumes float32s from buf."""
    state = [off]

    def take(*shape):
        n = int(np.prod(shape))
        a = np.frombuffer(buf, dtype="<f4", count=n, offset=state[0])
        state[0] += 4 * n
        return a.reshape(shape).astype(np.float64)

    return take, state


def _set_dims(m, dim, hidden, L, H, KVH, vocab, seq):
    m.dim, m.hidden_dim, m.n_layers = dim, hidden, L
    m.n_heads, m.n_kv_heads, m.vocab_size, m.seq_len = H, KVH, vocab, seq


def load_llama2c_legacy(path):
    buf = open(path, "rb").read()
    dim, hidden, L, H, KVH, vocab, seq = struct.unpack_from("<7i", buf, 0)
    shared = vocab > 0
    vocab = abs(vocab)
    m = Model()
    m.fmt = "llama2c"
    _set_dims(m, dim, hidden, L, H, KVH, vocab, seq)
    hs = dim // H
    kv = hs * KVH
    take, st = _f32_reader(buf, 7 * 4)
    m.tok_emb = take(vocab, dim)
    m.rms_att = list(take(L, dim))
    m.wq = list(take(L, dim, dim))
    m.wk = list(take(L, kv, dim))
    m.wv = list(take(L, kv, dim))
    m.wo = list(take(L, dim, dim))
    m.rms_ffn = list(take(L, dim))
    m.w1 = list(take(L, hidden, dim))
    m.w2 = list(take(L, dim, hidden))
    m.w3 = list(take(L, hidden, dim))
    m.rms_final = take(dim)
    m.extra["freq_cis_real"] = take(seq, hs // 2)
    m.extra["freq_cis_imag"] = take(seq, hs // 2)
    m.wcls = m.tok_emb if shared else take(vocab, dim)
    if st[0] != len(buf):
        raise ValueError("%s: %d trailing/missing bytes for llama2.c legacy layout"
                         % (path, len(buf) - st[0]))
    return m.check()


def load_llama2c_v1(path):
    buf = open(path, "rb").read()
    magic, version = struct.unpack_from("<Ii", buf, 0)
    if magic != LLAMA2C_V1_MAGIC or version != 1:
        raise ValueError("%s: not a llama2.c v1 file (magic %#x version %d)" % (path, magic, version))
    dim, hidden, L, H, KVH, vocab, seq = struct.unpack_from("<7i", buf, 8)
    shared = buf[8 + 28] != 0
    m = Model()
    m.fmt = "llama2c-v1"
    _set_dims(m, dim, hidden, L, H, KVH, vocab, seq)
    kv = (dim // H) * KVH
    take, st = _f32_reader(buf, 256)
    m.rms_att = list(take(L, dim))
    m.rms_ffn = list(take(L, dim))
    m.rms_final = take(dim)
    m.tok_emb = take(vocab, dim)
    m.wq = list(take(L, dim, dim))
    m.wk = list(take(L, kv, dim))
    m.wv = list(take(L, kv, dim))
    m.wo = list(take(L, dim, dim))
    m.w1 = list(take(L, hidden, dim))
    m.w2 = list(take(L, dim, hidden))
    m.w3 = list(take(L, hidden, dim))
    m.wcls = m.tok_emb if shared else take(vocab, dim)
    if st[0] != len(buf):
        raise ValueError("%s: %d trailing/missing bytes for llama2.c v1 layout"
                         % (path, len(buf) - st[0]))
    return m.check()


# --------------------------------------------------------------------------
# GGUF

GGUF_F32, GGUF_F16, GGUF_Q4_0, GGUF_Q8_0 = 0, 1, 2, 8
QK = 32  # elements per Q4_0 / Q8_0 block

# metadata value types
_GV_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f",
              7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_GV_STRING, _GV_ARRAY = 8, 9


class _Cursor:
    def __init__(self, buf, off=0):
        self.buf, self.off = buf, off

    def unpack(self, fmt):
        v = struct.unpack_from(fmt, self.buf, self.off)
        self.off += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.unpack("<Q")
        s = self.buf[self.off:self.off + n]
        if len(s) != n:
            raise ValueError("GGUF: truncated string")
        self.off += n
        return s.decode("utf-8", errors="replace")

    def value(self, t):
        if t in _GV_SCALAR:
            return self.unpack(_GV_SCALAR[t])
        if t == _GV_STRING:
            return self.string()
        if t == _GV_ARRAY:
            et = self.unpack("<I")
            n = self.unpack("<Q")
            if et in _GV_SCALAR:  # bulk read
                dt = np.dtype(_GV_SCALAR[et])
                a = np.frombuffer(self.buf, dtype=dt, count=n, offset=self.off)
                self.off += n * dt.itemsize
                return a
            return [self.value(et) for _ in range(n)]
        raise ValueError("GGUF: unknown metadata value type %d" % t)


def _dequant(raw, ttype, n):
    """Dequantize n elements (a multiple of the row length) from bytes raw."""
    if ttype == GGUF_F32:
        return np.frombuffer(raw, dtype="<f4", count=n).astype(np.float64)
    if ttype == GGUF_F16:
        return np.frombuffer(raw, dtype="<f2", count=n).astype(np.float64)
    if ttype == GGUF_Q8_0:
        assert n % QK == 0
        blk = np.frombuffer(raw, dtype=np.uint8, count=(n // QK) * 34).reshape(-1, 34)
        d = blk[:, :2].copy().view("<f2").astype(np.float64)          # (nb, 1)
        q = blk[:, 2:].copy().view(np.int8).astype(np.float64)        # (nb, 32)
        return (q * d).reshape(-1)
    if ttype == GGUF_Q4_0:
        assert n % QK == 0
        blk = np.frombuffer(raw, dtype=np.uint8, count=(n // QK) * 18).reshape(-1, 18)
        d = blk[:, :2].copy().view("<f2").astype(np.float64)          # (nb, 1)
        qs = blk[:, 2:]                                               # (nb, 16)
        lo = (qs & 0x0F).astype(np.float64) - 8.0                     # elements 0..15
        hi = (qs >> 4).astype(np.float64) - 8.0                       # elements 16..31
        return (np.concatenate([lo, hi], axis=1) * d).reshape(-1)
    raise ValueError("GGUF: unsupported tensor type %d" % ttype)


def _tensor_nbytes(ttype, n):
    if ttype == GGUF_F32:
        return 4 * n
    if ttype == GGUF_F16:
        return 2 * n
    if ttype == GGUF_Q8_0:
        return n // QK * 34
    if ttype == GGUF_Q4_0:
        return n // QK * 18
    raise ValueError("GGUF: unsupported tensor type %d" % ttype)


def read_gguf(path):
    """Parse a GGUF v2/v3 file.  Returns (version, metadata dict, tensors dict)
    where tensors maps name -> float64 ndarray with numpy shape = reversed(ne)."""
    buf = open(path, "rb").read()
    c = _Cursor(buf)
    if buf[:4] != b"GGUF":
        raise ValueError("%s: not a GGUF file" % path)
    c.off = 4
    version = c.unpack("<I")
    if version not in (2, 3):
        raise ValueError("%s: unsupported GGUF version %d" % (path, version))
    n_tensors = c.unpack("<Q")
    n_kv = c.unpack("<Q")
    meta = {}
    for _ in range(n_kv):
        key = c.string()
        t = c.unpack("<I")
        meta[key] = c.value(t)
    infos = []
    for _ in range(n_tensors):
        name = c.string()
        nd = c.unpack("<I")
        ne = [c.unpack("<Q") for _ in range(nd)]
        ttype = c.unpack("<I")
        off = c.unpack("<Q")
        infos.append((name, ne, ttype, off))
    align = int(meta.get("general.alignment", 32))
    data_start = (c.off + align - 1) // align * align
    tensors, types = {}, {}
    for name, ne, ttype, off in infos:
        n = int(np.prod(ne)) if ne else 1
        nb = _tensor_nbytes(ttype, n)
        start = data_start + off
        if start + nb > len(buf):
            raise ValueError("%s: tensor %s runs past end of file" % (path, name))
        a = _dequant(buf[start:start + nb], ttype, n)
        tensors[name] = a.reshape(list(reversed(ne)))  # ne is innermost-first
        types[name] = ttype
    meta["__tensor_types__"] = types
    return version, meta, tensors


def load_gguf(path):
    version, meta, t = read_gguf(path)
    arch = meta.get("general.architecture", "llama")
    if arch != "llama":
        raise ValueError("%s: architecture %r, only llama supported" % (path, arch))

    def g(key, default=None):
        v = meta.get("llama." + key, default)
        if v is None:
            raise ValueError("%s: missing metadata llama.%s" % (path, key))
        return v

    m = Model()
    m.fmt = "gguf"
    m.extra["gguf_version"] = version
    m.extra["meta"] = meta
    dim = int(g("embedding_length"))
    L = int(g("block_count"))
    H = int(g("attention.head_count"))
    KVH = int(g("attention.head_count_kv", H))
    hidden = int(g("feed_forward_length"))
    seq = int(g("context_length", 0))
    m.eps = float(g("attention.layer_norm_rms_epsilon", 1e-5))
    m.rope_theta = float(g("rope.freq_base", 10000.0))
    rope_dims = int(g("rope.dimension_count", dim // H))
    if rope_dims != dim // H:
        raise ValueError("partial RoPE (%d of %d dims) not supported" % (rope_dims, dim // H))
    m.tok_emb = t["token_embd.weight"]
    vocab = m.tok_emb.shape[0]
    _set_dims(m, dim, hidden, L, H, KVH, vocab, seq)
    for i in range(L):
        p = "blk.%d." % i
        m.rms_att.append(t[p + "attn_norm.weight"])
        m.wq.append(t[p + "attn_q.weight"])
        m.wk.append(t[p + "attn_k.weight"])
        m.wv.append(t[p + "attn_v.weight"])
        m.wo.append(t[p + "attn_output.weight"])
        m.rms_ffn.append(t[p + "ffn_norm.weight"])
        m.w1.append(t[p + "ffn_gate.weight"])
        m.w2.append(t[p + "ffn_down.weight"])
        m.w3.append(t[p + "ffn_up.weight"])
    m.rms_final = t["output_norm.weight"]
    m.wcls = t.get("output.weight", m.tok_emb)
    return m.check()


def load_model(path):
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] == b"GGUF":
        return load_gguf(path)
    if len(head) >= 4 and struct.unpack("<I", head[:4])[0] == LLAMA2C_V1_MAGIC:
        return load_llama2c_v1(path)
    return load_llama2c_legacy(path)


# --------------------------------------------------------------------------
# forward pass (float64)

def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def silu(x):
    return x / (1.0 + np.exp(-x))


def rope_cos_sin(positions, head_size, theta):
    """cos/sin of shape (T, head_size/2): angle = pos * theta^(-2i/head_size)."""
    i = np.arange(head_size // 2, dtype=np.float64)
    freq = theta ** (-2.0 * i / head_size)
    ang = np.asarray(positions, dtype=np.float64)[:, None] * freq[None, :]
    return np.cos(ang), np.sin(ang)


def apply_rope(x, cos, sin):
    """x: (T, n_heads, head_size).  Rotates adjacent pairs (2i, 2i+1) like
    llama2.c's run.c (and llama.cpp's 'normal' rope type)."""
    x0 = x[..., 0::2]
    x1 = x[..., 1::2]
    c = cos[:, None, :]
    s = sin[:, None, :]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def forward(m, tokens, positions=None):
    """Run the full causal forward pass over `tokens` (context starts empty).

    positions defaults to 0..T-1 (only used for RoPE angles).
    Returns {"layers": [ {ffn_in, gate_pre, up, key_act, ffn_out, resid_post,
    attn_out}, ... ], "logits": (T, vocab)} with float64 arrays."""
    tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)
    T = tokens.shape[0]
    if T == 0:
        raise ValueError("empty token sequence")
    if tokens.min() < 0 or tokens.max() >= m.vocab_size:
        raise ValueError("token id out of range [0, %d)" % m.vocab_size)
    if positions is None:
        positions = np.arange(T)
    H, KVH, hs = m.n_heads, m.n_kv_heads, m.head_size
    group = H // KVH
    cos, sin = rope_cos_sin(positions, hs, m.rope_theta)
    causal = np.triu(np.ones((T, T), dtype=bool), k=1)   # True = future (masked)
    scale = 1.0 / np.sqrt(hs)

    x = m.tok_emb[tokens].copy()
    layers = []
    for l in range(m.n_layers):
        xn = rmsnorm(x, m.rms_att[l], m.eps)
        q = (xn @ m.wq[l].T).reshape(T, H, hs)
        k = (xn @ m.wk[l].T).reshape(T, KVH, hs)
        v = (xn @ m.wv[l].T).reshape(T, KVH, hs)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        att_out = np.empty((T, H, hs))
        for h in range(H):
            kh = h // group                                   # grouped-query kv head
            sc = (q[:, h, :] @ k[:, kh, :].T) * scale         # (T, T)
            sc[causal] = -np.inf
            sc -= sc.max(axis=1, keepdims=True)
            p = np.exp(sc)
            p /= p.sum(axis=1, keepdims=True)
            att_out[:, h, :] = p @ v[:, kh, :]
        attn = att_out.reshape(T, H * hs) @ m.wo[l].T
        x = x + attn
        ffn_in = rmsnorm(x, m.rms_ffn[l], m.eps)
        gate_pre = ffn_in @ m.w1[l].T
        up = ffn_in @ m.w3[l].T
        key_act = silu(gate_pre) * up
        ffn_out = key_act @ m.w2[l].T
        x = x + ffn_out
        layers.append(dict(attn_out=attn, ffn_in=ffn_in, gate_pre=gate_pre, up=up,
                           key_act=key_act, ffn_out=ffn_out, resid_post=x.copy()))
    logits = rmsnorm(x, m.rms_final, m.eps) @ m.wcls.T
    return {"layers": layers, "logits": logits}


def greedy(m, prompt, n_new, stop_at_bos=False):
    """Greedy decoding (argmax), recomputing the full prefix each step.
    Returns the list of generated ids (prompt excluded)."""
    seq = list(prompt)
    out = []
    for _ in range(n_new):
        nxt = int(np.argmax(forward(m, seq)["logits"][-1]))
        if stop_at_bos and nxt == 1:
            break
        seq.append(nxt)
        out.append(nxt)
    return out


# --------------------------------------------------------------------------
# llama2.c tokenizer (decoding only)

def load_tokenizer(path, with_scores=False):
    """llama2.c tokenizer file -> list of piece bytes (and scores)."""
    buf = open(path, "rb").read()
    c = _Cursor(buf)
    c.unpack("<i")  # max_token_length
    pieces, scores = [], []
    while c.off < len(buf):
        scores.append(c.unpack("<f"))
        n = c.unpack("<i")
        pieces.append(buf[c.off:c.off + n])
        c.off += n
    return (pieces, scores) if with_scores else pieces


def encode(pieces, scores, text, bos=True):
    """llama2.c-style BPE encoding: dummy-prefix space, one token per UTF-8
    character (byte fallback = byte + 3), then repeatedly merge the adjacent
    pair whose concatenation is a token with the highest score."""
    lookup = {p: i for i, p in enumerate(pieces)}
    ids = [1] if bos else []
    if not text:
        return ids
    toks = [lookup[b" "]]
    for ch in text:
        b = ch.encode("utf-8")
        if b in lookup:
            toks.append(lookup[b])
        else:
            toks.extend(x + 3 for x in b)
    while True:
        best, best_i = None, -1
        for i in range(len(toks) - 1):
            j = lookup.get(pieces[toks[i]] + pieces[toks[i + 1]])
            if j is not None and (best is None or scores[j] > scores[best]):
                best, best_i = j, i
        if best is None:
            break
        toks[best_i:best_i + 2] = [best]
    return ids + toks


def decode_piece(pieces, prev, tok):
    """bytes for token tok following prev, as llama2.c does: strip the leading
    space after BOS and turn '<0xXX>' tokens into the raw byte."""
    p = pieces[tok]
    if prev == 1 and p.startswith(b" "):
        p = p[1:]
    if len(p) == 6 and p.startswith(b"<0x") and p.endswith(b">"):
        try:
            return bytes([int(p[3:5], 16)])
        except ValueError:
            pass
    return p


def decode(pieces, ids, prev=1):
    out = b""
    for t in ids:
        out += decode_piece(pieces, prev, t)
        prev = t
    return out.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------
# CLI

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", required=True, help="comma-separated token ids, e.g. 1,403,407")
    ap.add_argument("--out", help="write npz with key_act_L, gate_pre_L, up_L, logits")
    ap.add_argument("--greedy", type=int, default=0, metavar="N",
                    help="print N greedily generated ids after the given tokens")
    ap.add_argument("--tokenizer", help="llama2.c tokenizer (tok512.bin) to also print text")
    a = ap.parse_args(argv)
    toks = [int(s) for s in a.tokens.split(",") if s.strip()]
    m = load_model(a.model)
    if a.out:
        r = forward(m, toks)
        arrs = {"logits": r["logits"], "token_ids": np.asarray(toks, dtype=np.int32)}
        for l, d in enumerate(r["layers"]):
            for k in ("key_act", "gate_pre", "up"):
                arrs["%s_%d" % (k, l)] = d[k]
        np.savez(a.out, **arrs)
        print("wrote %s (%d tokens, %d layers, float64)" % (a.out, len(toks), m.n_layers))
    if a.greedy:
        ids = greedy(m, toks, a.greedy)
        print(",".join(str(i) for i in ids))
        if a.tokenizer:
            print(decode(load_tokenizer(a.tokenizer), ids, prev=toks[-1]))
    if not a.out and not a.greedy:
        ap.error("nothing to do: give --out and/or --greedy N")
    return 0


if __name__ == "__main__":
    sys.exit(main())
