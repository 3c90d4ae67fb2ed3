#!/usr/bin/python3
"""Self-checks for the independent numpy reference (tests/ref/llama_ref.py)
and for tests/ref/compare_acts.py.  Needs no C code.

    /usr/bin/python3 tests/ref/selftest_ref.py [--models DIR] [--refs DIR]

Checks:
  * greedy decoding from BOS on stories260K.bin reproduces the start of
    shared/reference/stories260K/greedy.txt (40 tokens, real greedy loop)
    and all of it (200 generated tokens: run.c samples one token per
    position, BOS's included; checked by teacher forcing, see below), and
    the "Lily wanted to" prompt reproduces greedy_lily.txt (real greedy);
  * the legacy file's stored RoPE tables match the reference's angles;
  * .bin, .v1.bin and .gguf (F32) give the same logits (<= 1e-5);
  * the F16 / Q8_0 / Q4_0 GGUFs give close logits and the same greedy
    first sentence (checked by teacher forcing: argmax at every position
    of the first sentence equals the next token, which is equivalent);
  * synthetic models: loader branches not covered by the real files
    (unshared classifier in legacy/v1, GGUF without output.weight,
    alignment), hand-built Q8_0/Q4_0 blocks, grouped-query head mapping;
  * compare_acts passes on a float32 copy of the reference and fails on a
    perturbed file, a file with no prompt groups and one with no layers.
Exits 1 on the first failed check.
"""

import argparse
import io
import os
import struct
import sys
import tempfile
import time
from contextlib import redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import llama_ref as R  # noqa: E402
import numpy as np  # noqa: E402

_n_ok = 0


def check(cond, msg):
    global _n_ok
    if not cond:
        print("selftest_ref: FAIL " + msg)
        sys.exit(1)
    _n_ok += 1
    print("  ok  " + msg)


def maxrel(a, b):
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


# ---------------------------------------------------------------- real files

def real_model_checks(mdir, rdir):
    p = lambda f: os.path.join(mdir, f)  # noqa: E731
    pieces, scores = R.load_tokenizer(p("tok512.bin"), with_scores=True)
    m_bin = R.load_model(p("stories260K.bin"))
    check((m_bin.dim, m_bin.hidden_dim, m_bin.n_layers, m_bin.n_heads, m_bin.n_kv_heads,
           m_bin.vocab_size, m_bin.seq_len) == (64, 172, 5, 8, 4, 512, 512),
          "stories260K.bin config 64/172/5/8/4/512/512")

    # RoPE convention vs the tables stored in the legacy checkpoint
    cos, sin = R.rope_cos_sin(np.arange(m_bin.seq_len), m_bin.head_size, m_bin.rope_theta)
    d = max(np.max(np.abs(cos - m_bin.extra["freq_cis_real"])),
            np.max(np.abs(sin - m_bin.extra["freq_cis_imag"])))
    check(d < 1e-4, "RoPE angles match the legacy file's freq_cis tables (max diff %.2g)" % d)

    # greedy from BOS == greedy.txt.  run.c samples one token per position
    # (BOS's included), so its 200 positions are 200 generated tokens.
    want = open(os.path.join(rdir, "greedy.txt"), encoding="utf-8").read()
    assert want.endswith("\n")
    want = want[:-1]  # run.c prints a final newline after the loop
    ids40 = R.greedy(m_bin, [1], 40)
    text40 = R.decode(pieces, ids40)
    check(text40.startswith("Once upon a time, there was a little girl named Lily. "
                            "She loved to play outside in the park.") and want.startswith(text40),
          "real greedy decoding, 40 tokens from BOS on .bin: %r... is a prefix of greedy.txt"
          % text40[:60])
    # The full 200 tokens, cheaply: if one forward over [BOS] + S has argmax
    # at every position equal to the next token of S, greedy decoding from BOS
    # generates exactly S (by induction over the steps).  S = the BPE encoding
    # of greedy.txt; fall back to real (slow) greedy if that isn't the sequence.
    seq = R.encode(pieces, scores, want)
    r_bin = R.forward(m_bin, seq)
    tf = np.array_equal(np.argmax(r_bin["logits"][:-1], axis=1), np.array(seq[1:]))
    if not (tf and len(seq) == 201 and seq[1:41] == ids40):
        print("  (teacher forcing inconclusive, running real greedy for 200 tokens)")
        seq = [1] + R.greedy(m_bin, [1], 200)
        r_bin = R.forward(m_bin, seq)
    ids = seq[1:]
    text = R.decode(pieces, ids)
    check(len(ids) == 200 and text == want,
          "greedy 200 tokens from BOS on .bin == greedy.txt (%d chars)" % len(want))

    # prompt "Lily wanted to": 64 positions = BOS + 4 prompt tokens + 60 generated
    want_l = open(os.path.join(rdir, "greedy_lily.txt"), encoding="utf-8").read()
    assert want_l.endswith("\n")
    want_l = want_l[:-1]
    prompt = R.encode(pieces, scores, "Lily wanted to")
    check(len(prompt) == 5, "'Lily wanted to' encodes to BOS + 4 tokens %s" % prompt[1:])
    gen = R.greedy(m_bin, prompt, 64 - len(prompt) + 1)
    text_l = R.decode(pieces, prompt[1:] + gen)
    check(text_l == want_l, "greedy from 'Lily wanted to' == greedy_lily.txt")

    # same logits (and acts) across .bin / .v1.bin / .gguf F32
    for f in ("stories260K.v1.bin", "stories260K.gguf"):
        m = R.load_model(p(f))
        r = R.forward(m, seq)
        dl = maxrel(r["logits"], r_bin["logits"])
        dk = max(maxrel(r["layers"][L]["key_act"], r_bin["layers"][L]["key_act"])
                 for L in range(m.n_layers))
        check(dl <= 1e-5 and dk <= 1e-5,
              "%s (%s) logits/key_act == .bin (max rel diff %.2g / %.2g)" % (f, m.fmt, dl, dk))

    # quantized GGUFs: close logits, same first sentence
    first = "Once upon a time, there was a little girl named Lily."
    n_first = next(i for i in range(1, len(ids) + 1) if R.decode(pieces, ids[:i]) == first)
    for f, tol in (("stories260K-f16.gguf", 2e-2), ("stories260K-q8_0.gguf", 1e-1),
                   ("stories260K-q4_0.gguf", 1.0)):
        m = R.load_model(p(f))
        r = R.forward(m, seq)
        dl = maxrel(r["logits"], r_bin["logits"])
        am = np.argmax(r["logits"][:n_first], axis=1)
        same = np.array_equal(am, np.array(seq[1:n_first + 1]))
        agree = float(np.mean(np.argmax(r["logits"], 1) == np.argmax(r_bin["logits"], 1)))
        check(dl <= tol and same,
              "%s: logits max rel diff %.3g (<= %g), greedy first sentence same (%d tokens); "
              "argmax agreement over 201 positions %.0f%%" % (f, dl, tol, n_first, 100 * agree))


# ---------------------------------------------------------------- synthetic

def rand_model(rng, dim=16, hidden=24, L=2, H=4, KVH=2, vocab=32, seq=16, shared=True):
    m = R.Model()
    R._set_dims(m, dim, hidden, L, H, KVH, vocab, seq)
    kv = (dim // H) * KVH
    r32 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731  float32-exact values
    f = lambda *s: r32(rng.standard_normal(s) * 0.5)  # noqa: E731
    m.tok_emb = f(vocab, dim)
    m.rms_att = [r32(1 + 0.1 * f(dim)) for _ in range(L)]
    m.rms_ffn = [r32(1 + 0.1 * f(dim)) for _ in range(L)]
    m.wq = [f(dim, dim) for _ in range(L)]
    m.wk = [f(kv, dim) for _ in range(L)]
    m.wv = [f(kv, dim) for _ in range(L)]
    m.wo = [f(dim, dim) for _ in range(L)]
    m.w1 = [f(hidden, dim) for _ in range(L)]
    m.w2 = [f(dim, hidden) for _ in range(L)]
    m.w3 = [f(hidden, dim) for _ in range(L)]
    m.rms_final = r32(1 + 0.1 * f(dim))
    m.wcls = m.tok_emb if shared else f(vocab, dim)
    return m.check()


def _f32(*arrs):
    return b"".join(np.asarray(a, dtype="<f4").tobytes() for a in arrs)


def write_legacy(path, m, shared):
    hs = m.head_size
    cos, sin = R.rope_cos_sin(np.arange(m.seq_len), hs, 10000.0)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<7i", m.dim, m.hidden_dim, m.n_layers, m.n_heads, m.n_kv_heads,
                             m.vocab_size if shared else -m.vocab_size, m.seq_len))
        fh.write(_f32(m.tok_emb, m.rms_att, m.wq, m.wk, m.wv, m.wo, m.rms_ffn,
                      m.w1, m.w2, m.w3, m.rms_final, cos, sin))
        if not shared:
            fh.write(_f32(m.wcls))


def write_v1(path, m, shared):
    hdr = struct.pack("<Ii7iB", R.LLAMA2C_V1_MAGIC, 1, m.dim, m.hidden_dim, m.n_layers,
                      m.n_heads, m.n_kv_heads, m.vocab_size, m.seq_len, 1 if shared else 0)
    with open(path, "wb") as fh:
        fh.write(hdr + b"\0" * (256 - len(hdr)))
        fh.write(_f32(m.rms_att, m.rms_ffn, m.rms_final, m.tok_emb, m.wq, m.wk, m.wv, m.wo,
                      m.w1, m.w2, m.w3))
        if not shared:
            fh.write(_f32(m.wcls))


def _gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def write_gguf(path, m, align=32, version=3, raw_tensors=None):
    """Minimal GGUF writer (F32 tensors, no output.weight => tied classifier)."""
    kvs = [("general.architecture", 8, _gstr("llama")),
           ("general.alignment", 4, struct.pack("<I", align)),
           ("llama.embedding_length", 4, struct.pack("<I", m.dim)),
           ("llama.feed_forward_length", 4, struct.pack("<I", m.hidden_dim)),
           ("llama.block_count", 4, struct.pack("<I", m.n_layers)),
           ("llama.attention.head_count", 4, struct.pack("<I", m.n_heads)),
           ("llama.attention.head_count_kv", 4, struct.pack("<I", m.n_kv_heads)),
           ("llama.context_length", 4, struct.pack("<I", m.seq_len)),
           ("llama.attention.layer_norm_rms_epsilon", 6, struct.pack("<f", 1e-5)),
           ("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, 3) + _f32([0.5, 1.5, 2.5])),
           ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 2) + _gstr("a") + _gstr("bc"))]
    tensors = [("token_embd.weight", m.tok_emb), ("output_norm.weight", m.rms_final)]
    for i in range(m.n_layers):
        for n, a in (("attn_norm", m.rms_att), ("attn_q", m.wq), ("attn_k", m.wk),
                     ("attn_v", m.wv), ("attn_output", m.wo), ("ffn_norm", m.rms_ffn),
                     ("ffn_gate", m.w1), ("ffn_up", m.w3), ("ffn_down", m.w2)):
            tensors.append(("blk.%d.%s.weight" % (i, n), a[i]))
    tensors = [(n, 0, np.asarray(a), _f32(a)) for n, a in tensors] + list(raw_tensors or [])
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, t, v in kvs:
        head += _gstr(k) + struct.pack("<I", t) + v
    data, infos = b"", b""
    for n, ttype, a, raw in tensors:
        data += b"\0" * ((-len(data)) % align)
        ne = list(reversed(a.shape))
        infos += _gstr(n) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne)
        infos += struct.pack("<IQ", ttype, len(data))
        data += raw
    head += infos
    head += b"\0" * ((-len(head)) % align)
    with open(path, "wb") as fh:
        fh.write(head + data)


def synthetic_checks(tmp):
    rng = np.random.default_rng(1234)
    toks = [1, 5, 7, 30, 2, 2, 9, 17, 0, 31]

    for shared in (True, False):
        m = rand_model(rng, shared=shared)
        ref = R.forward(m, toks)["logits"]
        for name, writer in (("legacy", write_legacy), ("v1", write_v1)):
            fn = os.path.join(tmp, "%s_%d.bin" % (name, shared))
            writer(fn, m, shared)
            m2 = R.load_model(fn)
            d = np.max(np.abs(R.forward(m2, toks)["logits"] - ref))
            check(d == 0 and (m2.wcls is m2.tok_emb) == shared,
                  "synthetic %s writer/loader round trip, shared classifier=%s" % (name, shared))

    m = rand_model(rng)
    for align, ver in ((32, 3), (64, 2)):
        fn = os.path.join(tmp, "syn_%d.gguf" % align)
        write_gguf(fn, m, align=align, version=ver)
        m2 = R.load_model(fn)
        d = np.max(np.abs(R.forward(m2, toks)["logits"] - R.forward(m, toks)["logits"]))
        # (eps differs slightly: the GGUF stores float32(1e-5))
        check(d < 1e-9 and m2.wcls is m2.tok_emb,
              "synthetic GGUF v%d (alignment %d, no output.weight => tied) round trip (diff %.1g)"
              % (ver, align, d))

    # hand-built quant blocks: a (2 rows x 32) Q8_0 and Q4_0 tensor
    d8 = np.array([0.5, -0.25], dtype="<f2")
    q8 = np.arange(-16, 48, dtype=np.int8).reshape(2, 32)
    raw8 = b"".join(d8[i:i + 1].tobytes() + q8[i].tobytes() for i in range(2))
    want8 = q8.astype(np.float64) * d8.astype(np.float64)[:, None]
    d4 = np.array([0.125, 2.0], dtype="<f2")
    vals4 = (np.arange(64) * 7 % 16).reshape(2, 32)        # nibble values 0..15
    raw4 = b""
    for i in range(2):
        qs = (vals4[i, :16] | (vals4[i, 16:] << 4)).astype(np.uint8)
        raw4 += d4[i:i + 1].tobytes() + qs.tobytes()
    want4 = (vals4 - 8).astype(np.float64) * d4.astype(np.float64)[:, None]
    fn = os.path.join(tmp, "quant.gguf")
    write_gguf(fn, m, raw_tensors=[("q8", 8, want8, raw8), ("q4", 2, want4, raw4),
                                   ("h", 1, np.ones((3, 2)), np.full(6, 1.5, "<f2").tobytes())])
    _, meta, t = R.read_gguf(fn)
    check(np.array_equal(t["q8"], want8) and np.array_equal(t["q4"], want4)
          and np.array_equal(t["h"], np.full((3, 2), 1.5)),
          "hand-built Q8_0 / Q4_0 / F16 tensors dequantize as specified (shape from reversed ne)")
    check(list(meta["tokenizer.ggml.tokens"]) == ["a", "bc"]
          and np.allclose(meta["tokenizer.ggml.scores"], [0.5, 1.5, 2.5]),
          "GGUF metadata arrays (strings, floats) parse")

    # GQA mapping: kv head for q head h is h // (H/KVH).  A GQA model equals the
    # MHA model whose kv heads are repeated [0,0,1,1]; h % KVH would differ.
    g = rand_model(rng, H=4, KVH=2)
    mha = rand_model(rng, H=4, KVH=4)
    hs = g.head_size
    for name in ("tok_emb", "rms_final", "wcls"):
        setattr(mha, name, getattr(g, name))
    for name in ("rms_att", "rms_ffn", "wq", "wo", "w1", "w2", "w3"):
        setattr(mha, name, getattr(g, name))
    rep = lambda w: np.concatenate([w[(h // 2) * hs:(h // 2 + 1) * hs] for h in range(4)])  # noqa
    mha.wk = [rep(w) for w in g.wk]
    mha.wv = [rep(w) for w in g.wv]
    d = np.max(np.abs(R.forward(g, toks)["logits"] - R.forward(mha.check(), toks)["logits"]))
    check(d < 1e-12, "grouped-query attention == MHA with repeated kv heads (diff %.1g)" % d)

    # causal: logits for a prefix don't depend on later tokens
    a = R.forward(g, toks)
    b = R.forward(g, toks[:4])
    d = max(np.max(np.abs(a["layers"][L]["key_act"][:4] - b["layers"][L]["key_act"]))
            for L in range(g.n_layers))
    check(d < 1e-12, "causal: prefix activations independent of later tokens")
    return g


# ---------------------------------------------------------------- compare_acts

def compare_acts_checks(tmp, model_path):
    import h5py
    import compare_acts as C

    m = R.load_model(model_path)
    prompts = [[1, 403, 407, 261, 378], [1, 20, 30, 40]]

    def write(fn, layers=(0, 2, 4), n_prompts=2, perturb=None, logits=True, up=True):
        with h5py.File(fn, "w") as f:
            f.attrs["probe_kind"] = "activations"
            f.attrs["model_path"] = model_path
            f.attrs["model_format"] = "llama2c"
            f.attrs["architecture"] = "llama"
            f.attrs["n_layer"] = m.n_layers
            f.attrs["d_model"] = m.dim
            f.attrs["n_ff"] = m.hidden_dim
            f.attrs["vocab_size"] = m.vocab_size
            f.attrs["command"] = "selftest"
            f.create_dataset("layers", data=np.array(layers, dtype=np.int32))
            for i, ids in enumerate(prompts[:n_prompts]):
                r = R.forward(m, ids)
                g = f.create_group("prompt_%d" % i)
                g.attrs["text"] = "x"
                g.create_dataset("token_ids", data=np.array(ids, dtype=np.int32))
                g.create_dataset("tokens", data=["t%d" % t for t in ids],
                                 dtype=h5py.string_dtype("utf-8"))
                g.create_dataset("positions", data=np.arange(len(ids), dtype=np.int32))
                if logits:
                    g.create_dataset("logits", data=r["logits"].astype(np.float32))
                for L in layers:
                    lg = g.create_group("layer_%d" % L)
                    for k in ("key_act", "gate_pre") + (("up",) if up else ()):
                        a = r["layers"][L][k].astype(np.float32)
                        if perturb == (i, L, k):
                            a[-1, 3] += 1e-2
                        lg.create_dataset(k, data=a)

    def run(fn, rtol=1e-4):
        buf = io.StringIO()
        with redirect_stdout(buf):
            rc = C.main(["--model", model_path, "--h5", fn, "--rtol", str(rtol)])
        return rc, buf.getvalue().strip().splitlines()[-1]

    fn = os.path.join(tmp, "good.h5")
    write(fn)
    rc, line = run(fn)
    check(rc == 0 and line.startswith("compare_acts: OK"), "compare_acts OK on float32 reference: " + line)
    write(fn, up=False, logits=False)
    rc, line = run(fn)
    check(rc == 0, "compare_acts OK without up/logits")
    for desc, kw in (("perturbed key_act", dict(perturb=(1, 2, "key_act"))),
                     ("perturbed up", dict(perturb=(0, 4, "up"))),
                     ("no prompt groups", dict(n_prompts=0)),
                     ("no layers", dict(layers=()))):
        fn = os.path.join(tmp, "bad.h5")
        write(fn, **kw)
        rc, line = run(fn)
        check(rc == 1 and line.startswith("compare_acts: FAIL"), "compare_acts FAILs on %s" % desc)
    # a layer listed in 'layers' but missing its group
    write(fn)
    with h5py.File(fn, "a") as f:
        del f["prompt_1/layer_2"]
    rc, line = run(fn)
    check(rc == 1, "compare_acts FAILs when a listed layer group is missing")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="/work/shared/models/stories260K")
    ap.add_argument("--refs", default="/work/shared/reference/stories260K")
    a = ap.parse_args()
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        print("synthetic checks:")
        synthetic_checks(tmp)
        print("real model checks (%s):" % a.models)
        real_model_checks(a.models, a.refs)
        print("compare_acts checks:")
        compare_acts_checks(tmp, os.path.join(a.models, "stories260K.bin"))
    print("selftest_ref: OK (%d checks, %.1fs)" % (_n_ok, time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
