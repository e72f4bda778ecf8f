"""One-thread GEMM rates of the shifted-window conv's block products, in both orientations.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/results/cpu_session9/gemm_orientation.py

For a block of n samples: forward W @ cols (D × K)(K × n·L), or the same
product transposed, cols.T @ W.T; the weight gradient's correlation as
cols @ G.T (what accel uses) or G @ cols.T. GFLOP/s, median of 200 calls; the
one-thread peak of this machine's 2048² GEMM is about 100.
"""

import time

import numpy as np
import threadpoolctl

threadpoolctl.threadpool_limits(1)
rng = np.random.default_rng(0)


def rate(product, flops, repeats=200):
    product()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        product()
        seconds.append(time.perf_counter() - start)
    return flops / np.median(seconds) / 1e9


def rates(D, K, NL):
    """GFLOP/s of the four products for one block shape."""
    W = rng.standard_normal((D, K)).astype(np.float32)
    cols = rng.standard_normal((K, NL)).astype(np.float32)
    G = rng.standard_normal((D, NL)).astype(np.float32)
    flops = 2 * D * K * NL
    return [rate(product, flops) for product in (lambda: W @ cols, lambda: cols.T @ W.T,
                                                 lambda: cols @ G.T, lambda: G @ cols.T)]


# (D, K = C·kh·kw, n·L): 28×28 blocks of 1 and 2 samples (L = 28·29), 14×14 and 7×7
# blocks of the 64-channel stages, the first layer (K = 9), a 32→64 layer
for D, K, NL in [(32, 288, 812), (32, 288, 812 * 2), (64, 576, 210 * 4), (64, 576, 56 * 16),
                 (32, 9, 812 * 8), (64, 288, 210 * 4)]:
    forward, transposed, corr, corr_other = rates(D, K, NL)
    print(f"D={D} K={K} NL={NL}: W@cols {forward:.0f}  cols.T@W.T {transposed:.0f}  | corr cols@G.T "
          f"{corr:.0f}  G@cols.T {corr_other:.0f} GFLOP/s")
