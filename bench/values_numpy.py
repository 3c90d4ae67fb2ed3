#!/usr/bin/python3
"""The numpy half of bench/values_bench.sh.

  values_numpy.py job PATH   the `probe values --layer all --top 30 --bottom 30`
                             job done the numpy way on the llama2.c checkpoint
                             bench/mkmodel wrote (dim 1024, hidden 4096, 24
                             layers, 16 heads, vocab 50257, shared classifier):
                             per layer S = W2.T @ E.T (n_ff x vocab, float32,
                             numpy's BLAS with its default threads) and
                             argpartition for the top and bottom 30 of each
                             row, then those 30 sorted; reads the file through
                             a memmap.
"""
import sys
import time

import numpy as np

DIM, HID, L, H, KVH, VOCAB, SEQ = 1024, 4096, 24, 16, 16, 50257, 1024
K = 30


def job(path):
    hdr = tuple(int(x) for x in np.fromfile(path, dtype="<i4", count=7))
    if hdr != (DIM, HID, L, H, KVH, VOCAB, SEQ):
        sys.exit("values_numpy: %s: header %s, expected %s" % (path, hdr, (DIM, HID, L, H, KVH, VOCAB, SEQ)))
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
    if len(sys.argv) != 3 or sys.argv[1] != "job":
        sys.exit(__doc__)
    job(sys.argv[2])
