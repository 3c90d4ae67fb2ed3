#!/usr/bin/env python3
"""Writes the hand-made hostile files of tests/hostile/ into OUTDIR.

Every file is built byte by byte here (no probe code, no real model): each is
small and wrong in exactly one way.  tests/test_hostile.c runs probe on each
and wants one clear line on stderr, naming the file, and a non-zero exit.

  python3 tests/hostile/make_hostile.py OUTDIR

Model folders (config.json + model.safetensors) are subfolders of OUTDIR.
The 1 MB inputs are written too (they are not kept in the repository)."""
import json
import os
import struct
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def put(name, data):
    path = os.path.join(out, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- GGUF (version 3, little-endian) ------------------------------------------
T_U32, T_F32, T_STRING, T_ARRAY = 4, 6, 8, 9


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv_u32(k, v):
    return gstr(k) + struct.pack("<II", T_U32, v)


def kv_str(k, v):
    return gstr(k) + struct.pack("<I", T_STRING) + gstr(v)


def gguf(kvs, tinfos, n_tensors=None, n_kv=None, data=b""):
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tinfos) if n_tensors is None else n_tensors,
                                 len(kvs) if n_kv is None else n_kv)
    body = head + b"".join(kvs) + b"".join(tinfos)
    body += b"\0" * (-len(body) % 32)
    return body + data


def tinfo(name, dims, ggml_type=0, offset=0):
    return (gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
            + struct.pack("<IQ", ggml_type, offset))


ARCH = [kv_str("general.architecture", "llama"), kv_u32("llama.block_count", 1)]
# One F32 tensor of 4 values at offset OFF; 16 bytes of data follow.
put("gguf_offset_past_end.gguf", gguf(ARCH, [tinfo("t", [4], 0, 1 << 40)], data=b"\0" * 16))
put("gguf_shape_overflow.gguf", gguf(ARCH, [tinfo("t", [1 << 32, 1 << 32, 1 << 32])], data=b"\0" * 16))
put("gguf_shape_negative.gguf", gguf(ARCH, [tinfo("t", [2**64 - 1, 4])], data=b"\0" * 16))
put("gguf_too_many_dims.gguf", gguf(ARCH, [tinfo("t", [1] * 1000)], data=b"\0" * 16))
# A string value that claims 1000 bytes where 5 remain.
put("gguf_truncated_string.gguf",
    b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gstr("general.name") + struct.pack("<IQ", T_STRING, 1000)
    + b"abcde")
# A key whose length is 2^63.
put("gguf_key_length_huge.gguf", b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 63) + b"k")
put("gguf_huge_counts.gguf", gguf(ARCH, [], n_tensors=1 << 60, n_kv=1 << 61))
# A vocabulary array of 2^40 strings, three present.
put("gguf_absurd_vocab.gguf",
    gguf(ARCH + [kv_str("tokenizer.ggml.model", "llama"),
                 gstr("tokenizer.ggml.tokens") + struct.pack("<IIQ", T_ARRAY, T_STRING, 1 << 40)
                 + gstr("a") + gstr("b") + gstr("c")], []))
# A 1 MB key of unknown type.
put("gguf_1mb_key.gguf", b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gstr("k" * (1 << 20)) + struct.pack("<I", 99))
# An array of arrays of arrays ... (GGUF models never nest arrays).
nested = gstr("general.nested") + struct.pack("<I", T_ARRAY) + struct.pack("<IQ", T_ARRAY, 1) * 10000
put("gguf_nested_arrays.gguf", gguf([nested], []))

# ---- safetensors in Hugging Face folders ---------------------------------------
CFG = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 8, "n_positions": 8,
       "n_embd": 4, "n_layer": 1, "n_head": 1, "layer_norm_epsilon": 1e-5}


def st(header, data=b"", hlen=None):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data


def hf_dir(name, st_bytes, cfg=CFG):
    put(f"{name}/config.json", json.dumps(cfg) if isinstance(cfg, dict) else cfg)
    put(f"{name}/model.safetensors", st_bytes)


F = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
hf_dir("st_header_longer_than_file", st({"wte.weight": F}, b"\0" * 16, hlen=1 << 20))
hf_dir("st_header_length_absurd", st({"wte.weight": F}, b"\0" * 16, hlen=(1 << 64) - 8))
hf_dir("st_offset_past_end", st({"wte.weight": dict(F, data_offsets=[0, 1 << 40])}, b"\0" * 16))
hf_dir("st_offsets_reversed", st({"wte.weight": dict(F, data_offsets=[16, 0])}, b"\0" * 16))
hf_dir("st_shape_negative", st({"wte.weight": dict(F, shape=[-1, 4])}, b"\0" * 16))
hf_dir("st_shape_overflow", st({"wte.weight": dict(F, shape=[1 << 40, 1 << 40, 1 << 40])}, b"\0" * 16))
hf_dir("st_nested_json", st(b"[" * 100000 + b"]" * 100000))
# config.json
hf_dir("cfg_negative_layers", st({"wte.weight": F}, b"\0" * 16), dict(CFG, n_layer=-3))
hf_dir("cfg_absurd_sizes", st({"wte.weight": F}, b"\0" * 16),
       dict(CFG, n_embd=1 << 40, vocab_size=1 << 40, n_layer=1 << 30))
hf_dir("cfg_nested_json", st({"wte.weight": F}, b"\0" * 16), "[" * 100000 + "]" * 100000)

# ---- llama2.c checkpoints (7 int32: dim, hidden, layers, heads, kv_heads, vocab, seq) ----
def l2c(dim, hid, nl, nh, nkv, vocab, seq, data=b"\0" * 64):
    return struct.pack("<7i", dim, hid, nl, nh, nkv, vocab, seq) + data


put("l2c_negative_dims.bin", l2c(-64, 128, 1, 4, 4, 32, 16))
put("l2c_zero_heads.bin", l2c(64, 128, 1, 0, 0, 32, 16))
put("l2c_overflow.bin", l2c(1 << 30, 1 << 30, 1 << 30, 1 << 10, 1 << 10, 1 << 30, 1 << 30))
put("l2c_absurd_vocab.bin", l2c(8, 16, 1, 2, 2, (1 << 31) - 1, 4))

# ---- llama2.c tokenizer.bin (int32 max_len; per token: f32 score, int32 len, bytes) ----
def tokbin(max_len, toks):
    return struct.pack("<i", max_len) + b"".join(struct.pack("<fi", 0.0, n) + b for n, b in toks)


# For stories260K (512 tokens): token 3 of each is broken.
OK3 = [(1, bytes([97 + i])) for i in range(3)]
REST = [(3, b"%03x" % i) for i in range(4, 512)]
put("tokbin_negative_len.bin", tokbin(4, OK3 + [(-5, b"")] + REST))
put("tokbin_length_huge.bin", tokbin(4, OK3 + [((1 << 31) - 1, b"bcd")] + REST))
put("tokbin_truncated.bin", tokbin(4, OK3 + [(1, b"d")] + REST)[:-1])

# ---- Hugging Face tokenizers --------------------------------------------------
put("tok_nested.json", "[" * 100000 + "]" * 100000)
put("tok_absurd_id.json", json.dumps({"model": {"type": "BPE", "vocab": {"a": 2**31 - 2, "b": 0},
                                                "merges": []}}))
put("tok_negative_id.json", json.dumps({"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}}))
# A 1 MB vocabulary entry (one token whose text is a megabyte).
big = "x" * (1 << 20)
put("tok_1mb_token.json", json.dumps({"model": {"type": "BPE", "vocab": {big: 0, "a": 1}, "merges": []}}))
# vocab.json + merges.txt whose merge line is one 1 MB token.
put("vm_1mb_merge/vocab.json", json.dumps({"a": 0, "b": 1}))
put("vm_1mb_merge/merges.txt", "#version: 0.2\n" + big + " b\n")
# A 1 MB text that is one pre-token (no space): refused under --max-tokens.
put("text_1mb_one_token.txt", "a" * (1 << 20))
