#!/usr/bin/python3
"""Seed inputs for the libFuzzer harnesses of tests/fuzz/.

    make_seeds.py --tiny DIR                 the small hand-made seeds committed in
                                             tests/fuzz/seeds/NAME/ (rewrites them)
    make_seeds.py --shared SHARED --out DIR  excerpts of the real files in ../shared
                                             and bigger generated files, into DIR/NAME/
                                             (build-fuzz/gen; never committed)

Every writer here is independent of probe's parsers (formats from their
specifications: GGUF from ggml's docs, llama2.c from run.c / export.py,
safetensors from the safetensors crate's README)."""
import argparse
import json
import os
import struct
import subprocess
import sys

HARNESSES = ["safetensors", "gguf", "llama2c", "hfconfig", "tokjson", "vocabmerges", "tokbin",
             "encode"]


def put(out, name, fname, data):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, fname), "wb") as f:
        f.write(data)


def ramp(n, scale=0.05):
    return [((i % 7) - 3) * scale for i in range(n)]


# ---- GGUF ----------------------------------------------------------------------

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
SCALAR = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?",
          U64: "Q", I64: "q", F64: "d"}


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gval(t, v):
    if t == STRING:
        return gstr(v)
    if t == ARRAY:
        at, items = v
        return struct.pack("<IQ", at, len(items)) + b"".join(gval(at, x) for x in items)
    return struct.pack("<" + SCALAR[t], v)


def f16(x):
    return struct.pack("<e", x)


def q8_0_rows(vals):
    """ggml Q8_0 blocks of 32: f16 scale, 32 int8."""
    out = b""
    for b in range(0, len(vals), 32):
        blk = vals[b:b + 32]
        amax = max(abs(v) for v in blk) or 1.0
        d = amax / 127
        out += f16(d) + bytes((int(round(v / d)) & 0xFF) for v in blk)
    return out


def q4_0_rows(vals):
    """ggml Q4_0 blocks of 32: f16 scale, 16 bytes; byte j = elem j | elem j+16 << 4."""
    out = b""
    for b in range(0, len(vals), 32):
        blk = vals[b:b + 32]
        amax = max(abs(v) for v in blk) or 1.0
        d = amax / 8
        q = [min(15, max(0, int(round(v / d)) + 8)) for v in blk]
        out += f16(d) + bytes(q[j] | q[j + 16] << 4 for j in range(16))
    return out


def gguf_file(kvs, tensors, align=32, version=3):
    """kvs: [(key, type, value)]; tensors: [(name, shape row-major, ggml type, bytes)]."""
    b = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, t, v in kvs:
        b += gstr(k) + struct.pack("<I", t) + gval(t, v)
    off, datas = 0, b""
    for name, shape, gt, data in tensors:
        b += gstr(name) + struct.pack("<I", len(shape))
        b += b"".join(struct.pack("<Q", n) for n in reversed(shape))
        b += struct.pack("<IQ", gt, off)
        pad = (-len(data)) % align
        datas += data + b"\0" * pad
        off += len(data) + pad
    b += b"\0" * ((-len(b)) % align)
    return b + datas


TINY_TOKENS = ["<unk>", "<s>", "</s>", "\u2581", "a", "b", "c", "\u2581a", "ab", "\u2581ab",
               "<0x00>", "<0x0A>", "<0x20>", "\u2581b", "ba", "."]
TINY_TYPES = [2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 6, 6, 6, 1, 1, 1]


def tiny_llama_gguf(d=8, ff=16, heads=2, kv=1, vocab=16, ctx=8, kind="f32"):
    hd = d // heads
    kvs = [("general.architecture", STRING, "llama"),
           ("general.name", STRING, "tiny"),
           ("general.alignment", U32, 32),
           ("llama.context_length", U32, ctx),
           ("llama.embedding_length", U32, d),
           ("llama.feed_forward_length", U32, ff),
           ("llama.block_count", U32, 1),
           ("llama.attention.head_count", U32, heads),
           ("llama.attention.head_count_kv", U32, kv),
           ("llama.rope.dimension_count", U32, hd),
           ("llama.attention.layer_norm_rms_epsilon", F32, 1e-5),
           ("tokenizer.ggml.model", STRING, "llama"),
           ("tokenizer.ggml.tokens", ARRAY, (STRING, TINY_TOKENS[:vocab])),
           ("tokenizer.ggml.scores", ARRAY, (F32, [float(-i) for i in range(vocab)])),
           ("tokenizer.ggml.token_type", ARRAY, (I32, TINY_TYPES[:vocab])),
           ("tokenizer.ggml.bos_token_id", U32, 1),
           ("tokenizer.ggml.eos_token_id", U32, 2),
           ("tokenizer.ggml.unknown_token_id", U32, 0),
           ("tokenizer.ggml.add_bos_token", BOOL, True)]

    def mat(name, r, c, quant=True):
        vals = ramp(r * c)
        if kind == "f32" or not quant:
            return (name, [r, c], 0, struct.pack("<%df" % len(vals), *vals))
        if kind == "f16":
            return (name, [r, c], 1, b"".join(f16(v) for v in vals))
        if kind == "q8_0":
            return (name, [r, c], 8, q8_0_rows(vals))
        return (name, [r, c], 2, q4_0_rows(vals))

    def vec(name, n):
        return (name, [n], 0, struct.pack("<%df" % n, *([1.0] * n)))

    ts = [mat("token_embd.weight", vocab, d), vec("output_norm.weight", d),
          vec("blk.0.attn_norm.weight", d), mat("blk.0.attn_q.weight", d, d),
          mat("blk.0.attn_k.weight", kv * hd, d), mat("blk.0.attn_v.weight", kv * hd, d),
          mat("blk.0.attn_output.weight", d, d), vec("blk.0.ffn_norm.weight", d),
          mat("blk.0.ffn_gate.weight", ff, d), mat("blk.0.ffn_up.weight", ff, d),
          mat("blk.0.ffn_down.weight", d, ff)]
    return gguf_file(kvs, ts)


# ---- llama2.c ---------------------------------------------------------------------


def tiny_llama2c(v1=False, shared=True, d=8, ff=16, layers=1, heads=2, kv=1, vocab=16, seq=8):
    hd = d // heads
    kvd = kv * hd

    def f(n, one=False):
        return struct.pack("<%df" % n, *([1.0] * n if one else ramp(n)))

    L = layers
    if not v1:
        b = struct.pack("<7i", d, ff, L, heads, kv, vocab if shared else -vocab, seq)
        b += f(vocab * d) + f(L * d, True) + f(L * d * d) + f(L * kvd * d) + f(L * kvd * d)
        b += f(L * d * d) + f(L * d, True) + f(L * ff * d) + f(L * d * ff) + f(L * ff * d)
        b += f(d, True) + f(seq * hd // 2) + f(seq * hd // 2)
    else:
        hdr = struct.pack("<Ii", 0x616B3432, 1) + struct.pack("<7i", d, ff, L, heads, kv, vocab,
                                                              seq)
        hdr += struct.pack("<B", 1 if shared else 0)
        b = hdr + b"\0" * (256 - len(hdr))
        b += f(L * d, True) + f(L * d, True) + f(d, True) + f(vocab * d)
        b += f(L * d * d) + f(L * kvd * d) + f(L * kvd * d) + f(L * d * d)
        b += f(L * ff * d) + f(L * d * ff) + f(L * ff * d)
    if not shared:
        b += f(vocab * d)
    return b


# ---- safetensors -------------------------------------------------------------------


def safetensors_file(tensors, metadata=None, misalign=False):
    """tensors: [(name, dtype, shape, bytes)]."""
    hdr, off, data = {}, 0, b""
    for name, dt, shape, raw in tensors:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    if metadata:
        hdr["__metadata__"] = metadata
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8 + (1 if misalign else 0))
    return struct.pack("<Q", len(h)) + h + data


def tiny_safetensors(misalign=False):
    return safetensors_file([
        ("w", "F32", [2, 3], struct.pack("<6f", *ramp(6))),
        ("h", "F16", [4], b"".join(f16(v) for v in ramp(4))),
        ("b", "BF16", [2, 2], b"\x80\x3f\x00\x40\x40\x40\x80\x40"),
        ("mask", "BOOL", [1, 1, 2, 2], b"\1\0\1\1"),
        ("ids", "I64", [2], struct.pack("<2q", 1, 2)),
        ("scalar", "F32", [], struct.pack("<f", 1.5)),
        ("empty", "F32", [0, 4], b""),
    ], {"format": "pt"}, misalign)


# ---- config.json (the harness's weights: vocab 16, d 8, 2 heads, kv 1, ff 16, ctx 8, 1 layer)


def tiny_configs():
    base = {"vocab_size": 16, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
            "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 8,
            "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_act": "silu",
            "tie_word_embeddings": False}
    out = {}
    out["llama.json"] = dict(base, model_type="llama", architectures=["LlamaForCausalLM"])
    out["llama3.json"] = dict(base, model_type="llama", attention_bias=True, mlp_bias=True,
                              rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                            "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                            "original_max_position_embeddings": 4})
    out["mistral.json"] = dict(base, model_type="mistral", sliding_window=4, head_dim=4)
    out["qwen2.json"] = dict(base, model_type="qwen2", use_sliding_window=False,
                             tie_word_embeddings=True)
    out["gpt2.json"] = {"model_type": "gpt2", "vocab_size": 16, "n_embd": 8, "n_layer": 1,
                        "n_head": 2, "n_positions": 8, "n_inner": 16,
                        "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}
    out["neox.json"] = {"model_type": "gpt_neox", "vocab_size": 16, "hidden_size": 8,
                        "intermediate_size": 16, "num_hidden_layers": 1,
                        "num_attention_heads": 2, "max_position_embeddings": 8,
                        "rotary_pct": 0.5, "rotary_emb_base": 10000, "hidden_act": "gelu",
                        "use_parallel_residual": True, "layer_norm_eps": 1e-5}
    out["arch_only.json"] = {"architectures": ["GPT2LMHeadModel"], "vocab_size": 16,
                             "n_embd": 8, "n_layer": 1, "n_head": 2, "n_positions": 8,
                             "n_inner": None}
    return {k: json.dumps(v, indent=1) for k, v in out.items()}


# ---- tokenizers --------------------------------------------------------------------


def bytelevel_chars():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def tiny_tokjsons():
    out = {}
    bl = bytelevel_chars()
    vocab = {bl[b]: i for i, b in enumerate(range(32, 128))}
    for s in ["\u0120a", "ab", "\u0120ab", "he", "ll", "hell", "hello"]:
        vocab[s] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    out["bytelevel.json"] = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": vocab["<|endoftext|>"], "content": "<|endoftext|>",
                          "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": True, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                           "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "",
                  "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": ["\u0120 a", "a b", "\u0120a b", "h e", "l l", "he ll", "hell o"]}}
    sv = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in [0x0A, 0x20, 0xC3, 0xA9, 0xE2]:
        sv["<0x%02X>" % b] = len(sv)
    for s in ["\u2581", "a", "b", "c", "\u2581a", "ab", "\u2581ab", "\u2581b", "1", "2"]:
        sv[s] = len(sv)
    added = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for c, i in
             [("<unk>", 0), ("<s>", 1), ("</s>", 2)]]
    out["spm.json"] = {
        "version": "1.0", "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [], "special_tokens": {
                               "<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "fuse_unk": True,
                  "byte_fallback": True, "vocab": sv,
                  "merges": [["\u2581", "a"], ["a", "b"], ["\u2581a", "b"], ["\u2581", "b"]]}}
    out["metaspace.json"] = dict(out["spm.json"], normalizer=None, pre_tokenizer={
        "type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False},
        decoder={"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first",
                 "split": False})
    wv = {"[UNK]": 0, "hello": 1, "world": 2, ",": 3, "!": 4, "12": 5}
    out["wordlevel.json"] = {
        "version": "1.0", "added_tokens": [],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"},
                                                           {"type": "Strip", "strip_left": True,
                                                            "strip_right": True}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "WhitespaceSplit"}, {"type": "Digits", "individual_digits": False},
            {"type": "Whitespace"}]},
        "model": {"type": "WordLevel", "vocab": wv, "unk_token": "[UNK]"}}
    out["split.json"] = dict(out["bytelevel.json"], pre_tokenizer={
        "type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}| ?\\p{L}+|\\s+"},
             "behavior": "Isolated", "invert": False},
            {"type": "Split", "pattern": {"String": "l"}, "behavior": "MergedWithNext",
             "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}]},
        added_tokens=out["bytelevel.json"]["added_tokens"] + [
            {"id": vocab["hello"], "content": "hello", "single_word": False, "lstrip": True,
             "rstrip": True, "normalized": False, "special": False}])
    return {k: json.dumps(v, ensure_ascii=False) for k, v in out.items()}


def tokbin(pieces, vocab=None):
    """2-byte vocabulary size for the harness, then llama2.c's tokenizer.bin."""
    vocab = len(pieces) if vocab is None else vocab
    b = struct.pack("<H", vocab & 0xFFFF)
    b += struct.pack("<i", max(len(p) for p in pieces))
    for i, p in enumerate(pieces):
        b += struct.pack("<fi", float(-i), len(p)) + p
    return b


# ---- the two modes ---------------------------------------------------------------------


def write_tiny(out):
    put(out, "gguf", "tiny_f32.gguf", tiny_llama_gguf())
    put(out, "gguf", "tiny_f16.gguf", tiny_llama_gguf(kind="f16"))
    put(out, "llama2c", "legacy.bin", tiny_llama2c())
    put(out, "llama2c", "legacy_unshared.bin", tiny_llama2c(shared=False))
    put(out, "llama2c", "v1.bin", tiny_llama2c(v1=True))
    put(out, "safetensors", "tiny.safetensors", tiny_safetensors())
    put(out, "safetensors", "misaligned.safetensors", tiny_safetensors(misalign=True))
    for k, v in tiny_configs().items():
        put(out, "hfconfig", k, v)
    for k, v in tiny_tokjsons().items():
        put(out, "tokjson", k, v)
    bl = bytelevel_chars()
    vocab = {bl[b]: i for i, b in enumerate(range(32, 128))}
    for s in ["\u0120a", "ab", "\u0120ab"]:
        vocab[s] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    put(out, "vocabmerges", "tiny", json.dumps(vocab, ensure_ascii=False) + "\0" +
        "#version: 0.2\n\u0120 a\na b\n\u0120a b\n")
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n", b"<0x00>", b"<0x0A>", b" ", b"a", b"b", b" a",
              b"ab", b" ab", b"\xc3\xa9"]
    put(out, "tokbin", "tiny", tokbin(pieces))
    texts = [b"Hello world", b"  two  spaces\tand\ttabs\n", "caf\u00e9 \u2603!".encode(),
             b"<|endoftext|>A<s>b</s>", b"\xff\xfe invalid", b"12345 67", b"",
             "\u2581\u2581x".encode(), b"a" * 300]
    for i, t in enumerate(texts):
        put(out, "encode", "t%d" % i, bytes([i % 16]) + t)


def write_shared(shared, out):
    m = os.path.join(shared, "models", "stories260K")
    # GGUF: the real metadata (stories260K's 512-token vocabulary) with no
    # tensors; quantised tiny models.
    g = open(os.path.join(m, "stories260K.gguf"), "rb").read()
    _, ver, n_t, n_kv = struct.unpack_from("<4sIQQ", g, 0)
    pos = 24
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def skip(p, t):
        if t == 8:
            return p + 8 + struct.unpack_from("<Q", g, p)[0]
        if t == 9:
            at, cnt = struct.unpack_from("<IQ", g, p)
            p += 12
            for _ in range(cnt):
                p = skip(p, at)
            return p
        return p + sizes[t]

    for _ in range(n_kv):
        pos += 8 + struct.unpack_from("<Q", g, pos)[0]
        pos = skip(pos + 4, struct.unpack_from("<I", g, pos)[0])
    put(out, "gguf", "stories260K_meta.gguf", g[:8] + struct.pack("<Q", 0) + g[16:pos])
    put(out, "gguf", "tiny_q8_0.gguf", tiny_llama_gguf(d=32, ff=32, kind="q8_0"))
    put(out, "gguf", "tiny_q4_0.gguf", tiny_llama_gguf(d=32, ff=32, kind="q4_0"))
    # llama2.c: the real headers (cut: they fail as truncated), bigger tiny models.
    for f in ["stories260K.bin", "stories260K.v1.bin"]:
        put(out, "llama2c", f + ".head", open(os.path.join(m, f), "rb").read()[:4096])
    put(out, "llama2c", "two_layers.bin", tiny_llama2c(layers=2, heads=4, kv=2, d=16))
    # tokenizer.bin: the real one, whole and cut to its first 40 tokens.
    tb = open(os.path.join(m, "tok512.bin"), "rb").read()
    put(out, "tokbin", "tok512", struct.pack("<H", 512) + tb)
    pos = 4
    for _ in range(40):
        pos += 8 + struct.unpack_from("<i", tb, pos + 4)[0]
    put(out, "tokbin", "tok512_first40", struct.pack("<H", 40) + tb[:pos])
    # tokenizer.json: the real files with the vocabulary cut to its first
    # N ids and the merges that stay inside it.
    for name, n in [("gpt2", 400), ("llama2", 600), ("mistral", 600)]:
        j = json.load(open(os.path.join(shared, "tokenizers", name, "tokenizer.json")))
        mdl = j["model"]
        keep = {k: v for k, v in mdl["vocab"].items() if v < n}
        merges = []
        for mg in mdl["merges"]:
            a, b = mg.split(" ", 1) if isinstance(mg, str) else mg
            if a in keep and b in keep and a + b in keep:
                merges.append(mg)
            if len(merges) >= 300:
                break
        mdl["vocab"], mdl["merges"] = keep, merges
        j["added_tokens"] = [a for a in j.get("added_tokens") or [] if a["id"] < n]
        put(out, "tokjson", name + "_cut.json", json.dumps(j, ensure_ascii=False))
        if name == "gpt2":
            txt = "#version: 0.2\n" + "\n".join(
                m if isinstance(m, str) else " ".join(m) for m in merges) + "\n"
            put(out, "vocabmerges", "gpt2_cut", json.dumps(keep, ensure_ascii=False) + "\0" + txt)
    # safetensors and config.json written by the test fixture writer.
    tmp = os.path.join(out, ".hf")
    small = ["--layers", "1", "--d", "8", "--heads", "2", "--ff", "16", "--vocab", "16",
             "--ctx", "8"]
    runs = [("gpt2", ["--buffers"]), ("llama", ["--kv-heads", "1", "--dtype", "bf16"]),
            ("gpt_neox", ["--dtype", "f16", "--rotary-pct", "0.5"]),
            ("qwen2", ["--kv-heads", "1", "--misalign"])]
    here = os.path.dirname(os.path.abspath(__file__))
    writer = os.path.join(here, "..", "ref", "make_hf_model.py")
    for arch, extra in runs:
        d = os.path.join(tmp, arch)
        subprocess.run([sys.executable, writer, "--arch", arch, "--out", d] + small + extra,
                       check=True, stdout=subprocess.DEVNULL)
        put(out, "safetensors", arch + ".safetensors",
            open(os.path.join(d, "model.safetensors"), "rb").read())
        put(out, "hfconfig", arch + "_fixture.json", open(os.path.join(d, "config.json")).read())
    subprocess.run(["rm", "-rf", tmp], check=True)
    # Texts: the reference tokenizer strings, for each tokenizer.
    k = 0
    for f in ["gpt2", "llama2", "mistral"]:
        p = os.path.join(shared, "reference", "tokenizer", f + ".jsonl")
        for i, line in enumerate(open(p, encoding="utf-8")):
            if i >= 25:
                break
            t = json.loads(line)["text"].encode()
            put(out, "encode", "ref%03d" % k, bytes([k % 16]) + t[:2000])
            k += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny")
    ap.add_argument("--shared")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.tiny:
        write_tiny(a.tiny)
    if a.shared:
        if not a.out:
            ap.error("--shared needs --out")
        for h in HARNESSES:
            os.makedirs(os.path.join(a.out, h), exist_ok=True)
        write_shared(a.shared, a.out)


if __name__ == "__main__":
    main()
