#!/usr/bin/python3
"""Helpers of bench/values_bench.sh.

  values_numpy.py mkmodel PATH   write a GPT-2-medium-shaped random Llama as a
                                 llama2.c legacy checkpoint (dim 1024, hidden
                                 4096, 24 layers, 16 heads, vocab 50257, seq
                                 1024; 7 int32 header, then float32 arrays)
  values_numpy.py job PATH       the `probe values --layer all --top 30
                                 --bottom 30` job done the numpy way: per layer
                                 S = V @ E.T (n_ff x vocab, float32, BLAS) and
                                 argpartition for the top and bottom 30 of each
                                 row (then sorted), reading the same file.
"""
import os
import struct
import sys
import time

import numpy as np

DIM, HID, L, H, KVH, VOCAB, SEQ = 1024, 4096, 24, 16, 16, 50257, 1024
K = 30


def mkmodel(path):
    rng = np.random.default_rng(1)
    hs = DIM // H
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<7i", DIM, HID, L, H, KVH, VOCAB, SEQ))

        def put(shape, scale):
            # One layer slice at a time keeps memory small.
            if len(shape) == 3:
                for _ in range(shape[0]):
                    put(shape[1:], scale)
                return
            a = rng.standard_normal(shape, dtype=np.float32)
            a *= scale
            f.write(a.astype("<f4", copy=False).tobytes())

        put((VOCAB, DIM), 0.02)                       # token_embedding
        f.write(np.ones((L, DIM), "<f4").tobytes())   # rms_att
        for _ in range(4):                            # wq wk wv wo
            put((L, DIM, DIM), 0.02)
        f.write(np.ones((L, DIM), "<f4").tobytes())   # rms_ffn
        put((L, HID, DIM), 0.02)                      # w1
        put((L, DIM, HID), 0.02 / np.sqrt(2 * L))     # w2
        put((L, HID, DIM), 0.02)                      # w3
        f.write((1 + 0.1 * rng.standard_normal(DIM)).astype("<f4").tobytes())  # rms_final
        f.write(np.zeros((SEQ, hs // 2), "<f4").tobytes())  # freq_cis_real
        f.write(np.zeros((SEQ, hs // 2), "<f4").tobytes())  # freq_cis_imag
    os.rename(tmp, path)
    print("wrote %s (%.2f GB)" % (path, os.path.getsize(path) / 1e9))


def job(path):
    m = np.memmap(path, dtype="<f4", mode="r", offset=28)
    off = 0
    E = m[off:off + VOCAB * DIM].reshape(VOCAB, DIM)
    off += VOCAB * DIM
    off += L * DIM + 4 * L * DIM * DIM + L * DIM + L * HID * DIM   # rms_att, wq..wo, rms_ffn, w1
    W2 = m[off:off + L * DIM * HID].reshape(L, DIM, HID)
    t0 = time.time()
    t_mm = 0.0
    for layer in range(L):
        t1 = time.time()
        S = W2[layer].T @ E.T                       # (n_ff, vocab): row i = neuron i's scores
        t_mm += time.time() - t1
        top = np.argpartition(S, -K, axis=1)[:, -K:]
        bot = np.argpartition(S, K, axis=1)[:, :K]
        ts = np.take_along_axis(S, top, axis=1)
        bs = np.take_along_axis(S, bot, axis=1)
        o = np.argsort(-ts, axis=1, kind="stable")
        top, ts = np.take_along_axis(top, o, axis=1), np.take_along_axis(ts, o, axis=1)
        o = np.argsort(bs, axis=1, kind="stable")
        bot, bs = np.take_along_axis(bot, o, axis=1), np.take_along_axis(bs, o, axis=1)
        del S
    dt = time.time() - t0
    flop = 2.0 * VOCAB * DIM * HID * L
    print("numpy_job seconds=%.2f matmul_seconds=%.2f gflops=%.1f (numpy %s)"
          % (dt, t_mm, flop / dt * 1e-9, np.__version__))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("mkmodel", "job"):
        sys.exit(__doc__)
    (mkmodel if sys.argv[1] == "mkmodel" else job)(sys.argv[2])
