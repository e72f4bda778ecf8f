"""Stride-1 convolution by shifted windows: the same GEMMs as im2col, cheaper copies.

Accelerates ``minirect.functional.conv.Conv2d`` (im2col + GEMM, col2im),
which stays the definition; tests/test_accel.py compares the two.

Layout. Lay each map out in rows of width Wp = W + pw (a gap of pw zeros,
then the W pixels; ph rows of zeros above and below) and flatten it into one
row: pixel (h, w) is entry (h + ph)·Wp + (w + pw). One gap is both the right
padding of a row and the left padding of the next. Kernel offset (i, j) then
reads one *contiguous* run of that row, starting at i·Wp + j, and output pixel
(oh, ow) sits at position oh·Wp + ow of the run:

    cols[(c, i, j), (n, l)] = xflat[n, c, i·Wp + j + l],    l < L = OH·Wp

so Y = Wm @ cols is the output in (D, N, OH, Wp) layout. The positions with
ow ≥ OW wrap into the next row: they are computed and dropped.

Backward. The input gradient of a stride-1 convolution is itself a stride-1
convolution, of gy padded by k-1-p, with each kernel flipped and the channel
axes swapped (docs/derivations/conv.md):

    dE/dx[n, c, h, w] = Σ_{d,i,j} gypad[n, d, h + i, w + j] · W[d, c, kh-1-i, kw-1-j]

and the columns of gypad also give dE/dW, so the backward pass builds one
column matrix per block, not two. The batch is processed in blocks of
samples whose column matrix fits a budget (the CPU's cache; on a GPU, memory).
On a CPU with several cores the blocks are shared out among threads
(``threads.py``): each builds its own columns and runs its own GEMM.
"""

from __future__ import annotations

from .. import backend
from . import threads

# Bytes of column matrix built at once. CPU: a few MB, so that a block stays
# in cache. GPU: large, so that one GEMM usually covers the whole batch; the
# cap only bounds temporary memory.
CPU_BLOCK_BYTES = 4 * 2**20
GPU_BLOCK_BYTES = 512 * 2**20
# With several threads, each core's blocks must fit its own cache (2 MB of
# L2 per core on the development machine): two threads copying 4 MB blocks
# through the shared L3 ran slower than one (0.5-0.6x); 1 MB blocks, 1.8x faster.
CPU_THREAD_BLOCK_BYTES = 1 * 2**20


def applies(W, stride, padding) -> bool:
    """Stride 1, and padding < kernel size (so the input gradient's padding
    k-1-p is not negative); other convolutions run the reference."""
    (kh, kw), (ph, pw) = W.shape[2:], padding
    return tuple(stride) == (1, 1) and ph < kh and pw < kw


def sample_blocks(x, cols_bytes_per_sample: int, workers: int = 1):
    """(start, stop) ranges over the batch, each with a column matrix of at
    most GPU_BLOCK_BYTES / CPU_BLOCK_BYTES / CPU_THREAD_BLOCK_BYTES (with
    ``workers`` > 1 threads), but at least one sample; and at least
    ``workers`` blocks where the batch has that many samples."""
    budget = GPU_BLOCK_BYTES if backend.device_of(x) == "cuda" else CPU_BLOCK_BYTES
    if workers > 1:
        budget = CPU_THREAD_BLOCK_BYTES
    n = x.shape[0]
    per_block = max(1, min(budget // max(1, cols_bytes_per_sample), -(-n // workers)))
    return [(s, min(s + per_block, n)) for s in range(0, n, per_block)]


class ShiftedWindows:
    """Column matrices of a stride-1 convolution of x (N, C, H, W), block by block.

    ``columns(x_block)`` returns the (C·kh·kw, n·L) matrix of the module
    docstring; ``in_window_order(a)`` lays out an array with the output's
    shape so that its columns line up with those. All scratch memory is
    allocated once, for the largest block, and reused: fresh large arrays
    cost page faults on every call.
    """

    def __init__(self, x, kernel, padding, workers: int = 1):
        (_, C, H, W), (kh, kw), (ph, pw) = x.shape, kernel, padding
        self.kernel, self.padding, self.in_hw = kernel, padding, (H, W)
        self.row_width = Wp = W + pw                            # one shared gap of pw zeros
        self.out_hw = self.output_size(x, kernel, padding)
        self.length = self.out_hw[0] * Wp                       # L = OH·Wp
        self.blocks = sample_blocks(x, C * kh * kw * self.length * x.itemsize, workers)
        self.largest = largest = self.blocks[0][1] - self.blocks[0][0]   # samples per block
        xp = backend.get_array_module(x)
        # Spare zero rows at the bottom: room for the wrap-around tail of the
        # last kernel offset's run (kw - 1 entries past the padded map). The
        # border is zeroed once; only the interior is overwritten.
        spare_rows = -(-(kw - 1) // Wp)
        self.padded = xp.zeros((largest, C, H + 2 * ph + spare_rows, Wp), dtype=x.dtype)
        self._columns = xp.empty(C * kh * kw * largest * self.length, dtype=x.dtype)
        self._window_order = None                               # in_window_order's scratch

    @staticmethod
    def output_size(x, kernel, padding):
        """(OH, OW) of a stride-1 convolution of x."""
        (H, W), (kh, kw), (ph, pw) = x.shape[2:], kernel, padding
        return H + 2 * ph - kh + 1, W + 2 * pw - kw + 1

    def columns(self, x_block):
        (kh, kw), (ph, pw), (H, _) = self.kernel, self.padding, self.in_hw
        n, C = x_block.shape[:2]
        padded = self.padded[:n]
        padded[:, :, ph:ph + H, pw:] = x_block                  # the gap is columns 0..pw-1
        xflat = padded.reshape(n, C, -1)
        cols = self._columns[:C * kh * kw * n * self.length].reshape(C, kh, kw, n, self.length)
        # cols[c, i, j, n, l] = xflat[n, c, i·Wp + j + l] is one strided view of
        # xflat (steps: a channel, a row Wp, one pixel, a sample, one pixel),
        # copied in one go: the loop over kernel offsets
        #     cols[:, i, j] = xflat[:, :, i·Wp + j : i·Wp + j + L].transpose(1, 0, 2)
        # as one copy (on a GPU one kernel launch instead of kh·kw). Every
        # index stays inside a flattened map thanks to the spare rows.
        s_n, s_c, s_pixel = xflat.strides
        windows = backend.get_array_module(x_block).lib.stride_tricks.as_strided(
            xflat, shape=cols.shape, strides=(s_c, self.row_width * s_pixel, s_pixel, s_n, s_pixel))
        cols[...] = windows
        return cols.reshape(C * kh * kw, n * self.length)

    def in_window_order(self, a_block):
        """A block (n, C', OH, OW) as the (C', n·OH·Wp) matrix whose columns
        line up with those of ``columns``, zero at the wrap-around positions
        (there the columns hold real pixels, which must not contribute).

        The scratch is zeroed once: the wrap-around positions sit at the same
        places mod Wp whatever the block's size, and only the others are
        ever written, so they stay zero.
        """
        n, C, OH, OW = a_block.shape
        if self._window_order is None:
            xp = backend.get_array_module(a_block)
            self._window_order = xp.zeros(C * self.largest * self.length, dtype=a_block.dtype)
        laid_out = self._window_order[:C * n * self.length].reshape(C, n, OH, self.row_width)
        laid_out[..., :OW] = a_block.transpose(1, 0, 2, 3)
        return laid_out.reshape(C, n * self.length)


def shifted_pass(a, kernel, padding, kernels=None, bias=None, partner=None):
    """The block loop over the columns of a (N, C, H, W):

        out  = kernels @ cols + bias       as (N, D, OH, OW): a convolution of a
        corr = Σ_blocks cols @ Pᵀ          (C·kh·kw, D'): a correlation of a with P

    with ``kernels`` (D, C·kh·kw) and P = ``partner`` (N, D', OH, OW) in the
    columns' order. Returns (out, corr); a part whose argument is None is
    skipped and returned as None. corr is cols @ Pᵀ rather than P @ colsᵀ:
    the same products, in the shape OpenBLAS runs faster.

    On a multi-core CPU each worker thread takes a share of the blocks, with
    scratch memory and a corr of its own; the shares' corrs are added at the end.
    """
    parts = threads.workers() if threads.applies(a) else 1
    xp = backend.get_array_module(a)
    out = None
    if kernels is not None:
        (OH, OW) = ShiftedWindows.output_size(a, kernel, padding)
        out = xp.empty((a.shape[0], kernels.shape[0], OH, OW), dtype=a.dtype)
    if parts == 1:
        corr = _pass_blocks(ShiftedWindows(a, kernel, padding), None, a, kernels, bias, partner, out)
        return out, corr
    first = ShiftedWindows(a, kernel, padding, workers=parts)
    shares = [first.blocks[s:e] for s, e in threads.split(len(first.blocks), parts)]
    windows = [first] + [ShiftedWindows(a, kernel, padding, workers=parts) for _ in shares[1:]]
    corrs = threads.run_parallel(                      # each thread its own scratch memory
        [lambda w=w, share=share: _pass_blocks(w, share, a, kernels, bias, partner, out)
         for w, share in zip(windows, shares)])
    return out, (None if partner is None else sum(corrs[1:], corrs[0]))


def _pass_blocks(windows, blocks, a, kernels, bias, partner, out):
    """shifted_pass's work on ``blocks`` (all of them for None): writes their
    samples of ``out`` and returns their part of corr."""
    (OH, OW), Wp = windows.out_hw, windows.row_width
    corr = None
    if partner is not None:
        xp = backend.get_array_module(a)
        corr = xp.zeros((a.shape[1] * windows.kernel[0] * windows.kernel[1], partner.shape[1]),
                        dtype=a.dtype)
    for start, stop in windows.blocks if blocks is None else blocks:
        cols = windows.columns(a[start:stop])                  # (C·kh·kw, n·L)
        if kernels is not None:
            y_block = backend.matmul(kernels, cols)            # (D, n·L): one GEMM
            if bias is not None:
                y_block += bias[:, None]                        # while the block is in cache
            y_block = y_block.reshape(-1, stop - start, OH, Wp)
            out[start:stop] = y_block[..., :OW].transpose(1, 0, 2, 3)   # drop the wrap-around
        if partner is not None:
            corr += backend.matmul(cols, windows.in_window_order(partner[start:stop]).T)
    return corr


def flipped_kernels(W):
    """W'[c, d, i, j] = W[d, c, kh-1-i, kw-1-j]: the kernels of the input gradient."""
    xp = backend.get_array_module(W)
    return xp.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))


def conv2d(x, W, b, padding):
    """y = conv2d(x, W) + b for stride 1: one GEMM per block of samples."""
    y, _ = shifted_pass(x, W.shape[2:], padding, kernels=W.reshape(W.shape[0], -1), bias=b)
    return y


def conv2d_backward(x, W, gy, padding, need_x: bool, need_W: bool):
    """(dE/dx, dE/dW) of a stride-1 conv; None for a gradient not needed.

    dE/dx is the convolution of gy (padded by q = k-1-p) with the flipped
    kernels, and the same columns give dE/dW:

        dE/dW[d, c, kh-1-i, kw-1-j] = Σ_{n,h,w} x[n, c, h, w] · gypad[n, d, h + i, w + j]
                                    = (colsgy @ Xᵀ)[(d, i, j), c]

    The first layer, whose input is the data, needs no dE/dx: there
    dE/dW = G @ colsᵀ comes from the columns of x, usually the smaller ones.
    """
    D, C, kh, kw = W.shape
    if not need_x:
        if not need_W:
            return None, None
        _, gW_t = shifted_pass(x, (kh, kw), padding, partner=gy)      # (C·kh·kw, D)
        return None, gW_t.T.reshape(W.shape)
    ph, pw = padding
    gx, gW_flipped = shifted_pass(gy, (kh, kw), (kh - 1 - ph, kw - 1 - pw),
                                  kernels=flipped_kernels(W).reshape(C, -1),
                                  partner=x if need_W else None)
    if gW_flipped is None:
        return gx, None
    # Undo the flip: row (d, i, j) of gW_flipped is gW[d, :, kh-1-i, kw-1-j].
    gW = gW_flipped.reshape(D, kh, kw, C).transpose(0, 3, 1, 2)[:, :, ::-1, ::-1]
    return gx, backend.get_array_module(W).ascontiguousarray(gW)
