"""Four ways to write max pooling's backward on a (64, 32, 28, 28) input, 2×2/2 windows.

    OPENBLAS_NUM_THREADS=2 python benchmarks/results/cpu_session9/maxpool_backward_variants.py

ref: the reference's ``where`` per offset, added; mult: ``+= gy * mask``;
assign: ``gy * mask`` written in place (windows do not overlap: accel's
max_pool2d); bcast: one broadcast product over a 6-D view. All four must agree.
"""

import time

import numpy as np

rng = np.random.default_rng(0)
N, C, H, W = 64, 32, 28, 28
gy = rng.standard_normal((N, C, 14, 14)).astype(np.float32)
winner = rng.integers(0, 4, (N, C, 14, 14)).astype(np.uint8)
offsets = np.arange(4, dtype=np.uint8).reshape(2, 1, 2)


def tap(i, j):
    return (slice(None), slice(None), slice(i, None, 2), slice(j, None, 2))


def ref():
    g = np.zeros((N, C, H, W), np.float32)
    for i in range(2):
        for j in range(2):
            g[tap(i, j)] += np.where(winner == i * 2 + j, gy, 0.0)
    return g


def mult():
    g = np.zeros((N, C, H, W), np.float32)
    for i in range(2):
        for j in range(2):
            g[tap(i, j)] += gy * (winner == i * 2 + j)
    return g


def assign():
    g = np.empty((N, C, H, W), np.float32)
    for i in range(2):
        for j in range(2):
            np.multiply(gy, winner == i * 2 + j, out=g[tap(i, j)])
    return g


def bcast():
    g = np.empty((N, C, 14, 2, 14, 2), np.float32)
    np.multiply(gy[:, :, :, None, :, None], winner[:, :, :, None, :, None] == offsets, out=g)
    return g.reshape(N, C, H, W)


expected = ref()
for variant in (ref, mult, assign, bcast):
    assert np.array_equal(variant(), expected)
    seconds = []
    for _ in range(20):
        start = time.perf_counter()
        variant()
        seconds.append(time.perf_counter() - start)
    print(variant.__name__, f"{1e3 * np.median(seconds):.2f} ms")
