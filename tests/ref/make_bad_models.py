#!/usr/bin/env python3
"""Writes broken model files for the bad-input tests, derived from the real
stories260K files (read from ../shared, written only into OUTDIR):

  truncated.bin       the llama2.c checkpoint cut in half
  short_header.bin    12 bytes
  badtype.gguf        the F32 GGUF with tensor 0's ggml type set to 99
  truncated.gguf      the GGUF cut inside its metadata
  tensor_past_end.gguf  the GGUF with tensor 0's data offset far past the end
  huge_counts.gguf    a GGUF header claiming 2^60 tensors

The GGUF header is walked here independently of probe's parser."""
import struct
import sys

models, out = sys.argv[1], sys.argv[2]
binf = open(f"{models}/stories260K.bin", "rb").read()
gguf = bytearray(open(f"{models}/stories260K.gguf", "rb").read())

open(f"{out}/truncated.bin", "wb").write(binf[: len(binf) // 2])
open(f"{out}/short_header.bin", "wb").write(binf[:12])


def skip_value(buf, pos, t):
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    if t == 8:
        (n,) = struct.unpack_from("<Q", buf, pos)
        return pos + 8 + n
    if t == 9:
        at, cnt = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        for _ in range(cnt):
            pos = skip_value(buf, pos, at)
        return pos
    return pos + sizes[t]


magic, ver, n_t, n_kv = struct.unpack_from("<4sIQQ", gguf, 0)
pos = 24
for _ in range(n_kv):
    (kl,) = struct.unpack_from("<Q", gguf, pos)
    pos += 8 + kl
    (vt,) = struct.unpack_from("<I", gguf, pos)
    pos = skip_value(gguf, pos + 4, vt)
meta_end = pos
# first tensor info
(nl,) = struct.unpack_from("<Q", gguf, pos)
pos += 8 + nl
(nd,) = struct.unpack_from("<I", gguf, pos)
pos += 4 + 8 * nd
type_pos, off_pos = pos, pos + 4

b = bytearray(gguf)
struct.pack_into("<I", b, type_pos, 99)
open(f"{out}/badtype.gguf", "wb").write(b)

open(f"{out}/truncated.gguf", "wb").write(gguf[: meta_end // 2])

b = bytearray(gguf)
struct.pack_into("<Q", b, off_pos, 1 << 40)
open(f"{out}/tensor_past_end.gguf", "wb").write(b)

b = bytearray(gguf)
struct.pack_into("<Q", b, 8, 1 << 60)
open(f"{out}/huge_counts.gguf", "wb").write(b)
