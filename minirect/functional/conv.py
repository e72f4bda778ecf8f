"""Convolution and pooling: conv2d, max/avg pooling, global average pooling, SPP.

All arrays are NCHW: (batch N, channels C, height H, width W). The kernels
(weights) of a convolution are (D, C, kh, kw): D output channels ("filters").

How conv2d becomes a matrix product (im2col)
--------------------------------------------
Output pixel (n, d, oh, ow) is a dot product between filter d and the input
patch under it:

    y[n, d, oh, ow] = Σ_{c, i, j} W[d, c, i, j] · xpad[n, c, oh·sh + i, ow·sw + j]

``im2col`` copies every patch into one column of a matrix

    cols[(c, i, j), (n, oh, ow)] = xpad[n, c, oh·sh + i, ow·sw + j]
    shape (C·kh·kw, N·OH·OW)

so that the whole convolution is one matrix product (GEMM), which BLAS or
cuBLAS runs near the machine's peak speed:

    Y = W.reshape(D, C·kh·kw) @ cols          shape (D, N·OH·OW)

The copy loops over the kh·kw kernel offsets (i, j), not over pixels: for one
offset, the patch entries of *all* output positions form a strided slice of
the input, ``xpad[:, :, i::sh, j::sw]`` (cut to OH×OW). So there are only
kh·kw vectorized copies, the same code runs on NumPy and CuPy, and ``col2im``
(the backward of im2col) is the same loop with ``+=``. Within one offset the
slice touches distinct pixels, so the ``+=`` needs no scatter-add and the
result is deterministic.

Why this layout, and why blocks of samples (measured on a 2-core CPU,
batch 64, 64→64 channels, 32×32, 3×3; see benchmarks/bench_conv.py):

* rows (c, i, j) × columns (n, oh, ow) makes each offset's copy a run of
  long contiguous rows, and the GEMM output (D, n, OH, OW) needs only a cheap
  swap of the first two axes to become NCHW. The alternative (N·OH·OW,
  C·kh·kw) layout copies 3-4× slower (its inner axis is the tiny kernel).
* The column matrix is kh·kw times bigger than the input (150 MB here). Built
  for the whole batch it streams through main memory several times; built a
  few samples at a time (one GEMM per block) it stays in the CPU cache, and
  fwd+bwd got about 1.45× faster (≈170 ms instead of ≈250 ms). On a GPU one
  big GEMM is best (H200: 1.6 ms, against 3.5 ms in 64 MB blocks), so the
  block there is as large as a memory cap allows (usually the whole batch).
* The backward pass rebuilds columns instead of saving the forward's: 9×
  less memory per 3×3 layer for about 6% more time. (The im2col path
  rebuilds those of the input; the stride-1 path below builds those of gy.)

The fast path for stride 1 ("shifted windows")
----------------------------------------------
Every stage convolution in this project's nets has stride 1 (only the 7×7/2
conv1 of the large-input models has not), and for those conv2d builds the
same GEMM with cheaper copies. Lay each map out in rows of width Wp = W + pw
(a gap of pw zeros, then the W pixels; ph rows of zeros above and below)
and flatten it into one row: pixel (h, w) is entry
(h + ph)·Wp + (w + pw). One gap is both the right padding of a row and the
left padding of the next, so a row needs pw zeros, not 2·pw. Kernel offset
(i, j) then reads one *contiguous* run of that row, starting at i·Wp + j,
and output pixel (oh, ow) sits at position oh·Wp + ow of the run:

    cols[(c, i, j), (n, l)] = xflat[n, c, i·Wp + j + l],    l < L = OH·Wp

so that Y = Wm @ cols is the output in (D, N, OH, Wp) layout. The
positions with ow ≥ OW wrap into the next row: they are computed and dropped
(1 of every Wp columns for a 3×3 "same" conv: 3.6 % extra work at 28×28,
14 % at 7×7; separate left and right padding would double that). What
is gained: the copies are long contiguous runs (2-3× faster than the tap
copies of ``im2col``), and one column buffer is reused for all blocks (a
fresh one per block costs page faults). The
input gradient of a stride-1 convolution is itself a stride-1 convolution, of
gy padded by k-1-p, with each kernel flipped and the channel axes swapped

    dE/dx[n, c, h, w] = Σ_{d,i,j} gypad[n, d, h + i, w + j] · W[d, c, kh-1-i, kw-1-j]

so no col2im is needed either, and the columns of gypad also give dE/dW
(``Conv2d._shifted_backward``): one column matrix per block in the backward
pass, not two. All three products run in one block loop,
``_shifted_pass``. This computes exactly the im2col/col2im
formulas above (the tests compare the two paths), which still run for
strided convolutions and for padding ≥ kernel size.

Derivations: docs/derivations/conv.md.
"""

from __future__ import annotations

from .. import backend
from ..autograd import Function, document
from .basic import concatenate, mean, reshape

# Bytes of column matrix built at once. CPU: a few MB, so that a block stays
# in cache (see the module docstring). GPU: large, so that one GEMM covers the
# whole batch in the usual case; the cap only bounds temporary memory.
CPU_BLOCK_BYTES = 4 * 2**20
GPU_BLOCK_BYTES = 512 * 2**20

# Stride-1 convolutions take the shifted-window fast path (module docstring).
# False sends every convolution through the plain im2col/col2im path: the
# tests run both and compare them.
SHIFTED_WINDOWS = True


# ----------------------------------------------------------------------------
# Argument checks and sizes
# ----------------------------------------------------------------------------

def _pair(value, name: str, op: str) -> tuple[int, int]:
    """An int or a pair of ints → (for height, for width)."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return pair


def _check_4d(x, op: str, name: str = "x", layout: str = "(N, C, H, W)") -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: expected {name} of shape {layout}, got shape {tuple(x.shape)}")


def _window_geometry(op, in_hw, kernel, stride, padding):
    """Check a sliding-window setup and return the output size (OH, OW).

    OH = (H + 2·ph - kh) // sh + 1: the number of window positions that fit.
    """
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if sh < 1 or sw < 1:
        raise ValueError(f"{op}: stride must be >= 1, got {stride}")
    if ph < 0 or pw < 0:
        raise ValueError(f"{op}: padding must be >= 0, got {padding}")
    if kh < 1 or kw < 1:
        raise ValueError(f"{op}: kernel size must be >= 1, got {kh}x{kw}")
    H, W = in_hw
    if kh > H + 2 * ph or kw > W + 2 * pw:
        raise ValueError(
            f"{op}: kernel {kh}x{kw} is larger than the padded input "
            f"{H + 2 * ph}x{W + 2 * pw} (input {H}x{W}, padding {ph}x{pw})")
    return (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1


def _pad(x, ph: int, pw: int, value=0):
    """x with ph rows / pw columns of ``value`` added on each side (H and W)."""
    if ph == 0 and pw == 0:
        return x
    N, C, H, W = x.shape
    xp = backend.get_array_module(x)
    xpad = xp.full((N, C, H + 2 * ph, W + 2 * pw), value, dtype=x.dtype)
    xpad[:, :, ph:ph + H, pw:pw + W] = x
    return xpad


def _tap(xpad, i: int, j: int, out_hw, stride):
    """The input pixels that kernel offset (i, j) sees, for all windows.

    tap[n, c, oh, ow] = xpad[n, c, oh·sh + i, ow·sw + j]: a strided view.
    """
    (OH, OW), (sh, sw) = out_hw, stride
    return xpad[:, :, i:i + sh * OH:sh, j:j + sw * OW:sw]


# ----------------------------------------------------------------------------
# im2col and col2im
# ----------------------------------------------------------------------------

def im2col(x, kernel_size, stride=1, padding=0):
    """Unfold the patches of ``x`` (N, C, H, W) into columns.

    Returns cols of shape (C·kh·kw, N·OH·OW) with
    cols[(c, i, j), (n, oh, ow)] = xpad[n, c, oh·sh + i, ow·sw + j].
    Works on raw NumPy/CuPy arrays (a Tensor is unwrapped; no gradient is
    recorded: ``conv2d`` is the differentiable op).
    """
    x = backend.unwrap(x)
    _check_4d(x, "im2col")
    kernel = _pair(kernel_size, "kernel_size", "im2col")
    stride = _pair(stride, "stride", "im2col")
    padding = _pair(padding, "padding", "im2col")
    N, C, H, W = x.shape
    OH, OW = _window_geometry("im2col", (H, W), kernel, stride, padding)
    kh, kw = kernel
    xpad = _pad(x, *padding)
    xp = backend.get_array_module(x)
    cols = xp.empty((C, kh, kw, N, OH, OW), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # (N, C, OH, OW) → (C, N, OH, OW): the column order (n, oh, ow).
            cols[:, i, j] = _tap(xpad, i, j, (OH, OW), stride).transpose(1, 0, 2, 3)
    return cols.reshape(C * kh * kw, N * OH * OW)


def col2im(cols, x_shape, kernel_size, stride=1, padding=0):
    """The adjoint of ``im2col``: add every column entry back onto its pixel.

    ``cols`` has shape (C·kh·kw, N·OH·OW); returns an array of ``x_shape``
    (N, C, H, W). A pixel that appears in several patches (overlapping
    windows) receives the sum of its entries, which is exactly the gradient
    of im2col. Same offset loop as im2col, with ``+=``.
    """
    cols = backend.unwrap(cols)
    kernel = _pair(kernel_size, "kernel_size", "col2im")
    stride = _pair(stride, "stride", "col2im")
    padding = _pair(padding, "padding", "col2im")
    xp = backend.get_array_module(cols)
    return xp.ascontiguousarray(_col2im_view(cols, x_shape, kernel, stride, padding))


def _col2im_view(cols, x_shape, kernel, stride, padding):
    """col2im's result as a (non-contiguous) view, which callers copy once."""
    N, C, H, W = x_shape
    (kh, kw), (ph, pw) = kernel, padding
    OH, OW = _window_geometry("col2im", (H, W), kernel, stride, padding)
    xp = backend.get_array_module(cols)
    cols = cols.reshape(C, kh, kw, N, OH, OW)
    # Accumulate in (C, N, ...) order, the order of the columns, so that the
    # reads of ``cols`` are contiguous; swap to (N, C, ...) in the final copy.
    gpad = xp.zeros((C, N, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            _tap(gpad, i, j, (OH, OW), stride)[...] += cols[:, i, j]
    return gpad[:, :, ph:ph + H, pw:pw + W].transpose(1, 0, 2, 3)


def _sample_blocks(x, cols_bytes_per_sample: int):
    """(start, stop) ranges over the batch, each with a column matrix of at
    most CPU_BLOCK_BYTES / GPU_BLOCK_BYTES (but at least one sample)."""
    budget = GPU_BLOCK_BYTES if backend.device_of(x) == "cuda" else CPU_BLOCK_BYTES
    per_block = max(1, budget // max(1, cols_bytes_per_sample))
    n = x.shape[0]
    return [(s, min(s + per_block, n)) for s in range(0, n, per_block)]


# ----------------------------------------------------------------------------
# Convolution
# ----------------------------------------------------------------------------

class _ShiftedWindows:
    """Column matrices of a stride-1 convolution, built block by block.

    For a block of n samples of x (N, C, H, W), ``columns(x_block)`` returns
    the (C·kh·kw, n·L) matrix

        cols[(c, i, j), (n, l)] = xflat[n, c, i·Wp + j + l],    l < L = OH·Wp

    where xflat is the map laid out in rows of width Wp = W + pw (a gap of pw
    zeros, then the row's pixels) and flattened into one row (see the module
    docstring). ``in_window_order(a)`` lays out an array with the output's
    shape so that its columns line up with those of ``columns``. All scratch
    memory is allocated once, for the largest block, and reused: fresh large
    arrays cost page faults on every call.
    """

    def __init__(self, x, kernel, padding):
        (_, C, H, W), (kh, kw), (ph, pw) = x.shape, kernel, padding
        self.kernel, self.padding, self.in_hw = kernel, padding, (H, W)
        self.row_width = Wp = W + pw                            # one shared gap of pw zeros
        self.out_hw = _window_geometry("conv2d", (H, W), kernel, (1, 1), padding)
        self.length = self.out_hw[0] * Wp                       # L = OH·Wp
        self.blocks = _sample_blocks(x, C * kh * kw * self.length * x.itemsize)
        self.largest = largest = self.blocks[0][1] - self.blocks[0][0]   # samples per block
        xp = backend.get_array_module(x)
        # Spare zero rows at the bottom: room for the wrap-around tail of the
        # last kernel offset's run (kw - 1 entries past the padded map: none
        # for kw = 1, one row unless Wp < kw - 1). The border is zeroed once
        # and only the interior is overwritten, block after block.
        spare_rows = -(-(kw - 1) // Wp)
        self._padded = xp.zeros((largest, C, H + 2 * ph + spare_rows, Wp), dtype=x.dtype)
        self._columns = xp.empty(C * kh * kw * largest * self.length, dtype=x.dtype)
        self._window_order = None                               # in_window_order's scratch

    def columns(self, x_block):
        (kh, kw), (ph, pw), (H, _) = self.kernel, self.padding, self.in_hw
        n, C = x_block.shape[:2]
        padded = self._padded[:n]
        padded[:, :, ph:ph + H, pw:] = x_block                  # the gap is columns 0..pw-1
        xflat = padded.reshape(n, C, -1)
        cols = self._columns[:C * kh * kw * n * self.length].reshape(C, kh, kw, n, self.length)
        # cols[c, i, j, n, l] = xflat[n, c, i·Wp + j + l] is one strided view of
        # xflat (steps: a channel, a row Wp, one pixel, a sample, one pixel),
        # copied in one go. Plainly, it is the loop over kernel offsets
        #     cols[:, i, j] = xflat[:, :, i·Wp + j : i·Wp + j + L].transpose(1, 0, 2)
        # as one copy instead of kh·kw (on a GPU: one kernel launch instead of
        # kh·kw; on the CPU the speed is the same). Every index stays inside a
        # flattened map thanks to the spare rows: the largest, at i = kh-1,
        # j = kw-1, l = L-1, is (H + 2·ph)·Wp + kw - 2, inside the
        # (H + 2·ph + spare_rows)·Wp entries.
        s_n, s_c, s_pixel = xflat.strides
        windows = backend.get_array_module(x_block).lib.stride_tricks.as_strided(
            xflat, shape=cols.shape, strides=(s_c, self.row_width * s_pixel, s_pixel, s_n, s_pixel))
        cols[...] = windows
        return cols.reshape(C * kh * kw, n * self.length)

    def in_window_order(self, a_block):
        """A block (n, C', OH, OW) as the (C', n·OH·Wp) matrix whose columns
        line up with those of ``columns``: zero at the wrap-around positions
        (there the columns hold real pixels, which must not contribute).

        The scratch is zeroed once, on first use: the wrap-around positions
        sit at the same places mod Wp whatever the block's size, and only the
        others are ever written, so they stay zero.
        """
        n, C, OH, OW = a_block.shape
        if self._window_order is None:
            xp = backend.get_array_module(a_block)
            self._window_order = xp.zeros(C * self.largest * self.length, dtype=a_block.dtype)
        laid_out = self._window_order[:C * n * self.length].reshape(C, n, OH, self.row_width)
        laid_out[..., :OW] = a_block.transpose(1, 0, 2, 3)
        return laid_out.reshape(C, n * self.length)


def _shifted_pass(a, kernel, padding, kernels=None, bias=None, partner=None):
    """The block loop of the stride-1 path, over the columns of a (N, C, H, W):

        out  = kernels @ cols + bias       as (N, D, OH, OW): a convolution of a
        corr = Σ_blocks cols @ Pᵀ          (C·kh·kw, D'): a correlation of a with P

    with ``kernels`` (D, C·kh·kw) and P = ``partner`` (N, D', OH, OW) in the
    columns' order (``in_window_order``). Returns (out, corr); a part whose
    argument is None is skipped and returned as None. Conv2d uses it three ways:

        forward           out = conv(x, W) + b
        backward          out = dE/dx = conv(gypad, W'), corr with x = dE/dW, flipped
        first layer       corr of x with gy = (dE/dW)ᵀ   (no dE/dx is needed)

    corr is computed as cols @ Pᵀ rather than P @ colsᵀ: the same products,
    in the shape OpenBLAS runs 1.2-1.5× faster (measured).
    """
    windows = _ShiftedWindows(a, kernel, padding)
    (OH, OW), Wp = windows.out_hw, windows.row_width
    xp = backend.get_array_module(a)
    out = corr = None
    if kernels is not None:
        out = xp.empty((a.shape[0], kernels.shape[0], OH, OW), dtype=a.dtype)
    if partner is not None:
        corr = xp.zeros((a.shape[1] * kernel[0] * kernel[1], partner.shape[1]), dtype=a.dtype)
    for start, stop in windows.blocks:
        cols = windows.columns(a[start:stop])                  # (C·kh·kw, n·L)
        if kernels is not None:
            y_block = backend.matmul(kernels, cols)            # (D, n·L): one GEMM
            if bias is not None:
                y_block += bias[:, None]                        # while the block is in cache
            y_block = y_block.reshape(-1, stop - start, OH, Wp)
            out[start:stop] = y_block[..., :OW].transpose(1, 0, 2, 3)   # drop the wrap-around
        if partner is not None:
            corr += backend.matmul(cols, windows.in_window_order(partner[start:stop]).T)
    return out, corr


def _flipped_kernels(W):
    """W'[c, d, i, j] = W[d, c, kh-1-i, kw-1-j]: the kernels of the input gradient."""
    xp = backend.get_array_module(W)
    return xp.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))


class Conv2d(Function):
    """2-D convolution (cross-correlation, as in every DL framework), NCHW.

    y[n, d, oh, ow] = b[d] + Σ_{c,i,j} W[d, c, i, j] · xpad[n, c, oh·sh + i, ow·sw + j]

    As matrices, with cols = im2col(x) (C·kh·kw, N·OH·OW) and
    Wm = W.reshape(D, C·kh·kw), G = gy as (D, N·OH·OW):

        Y = Wm @ cols + b
        dE/dW = G @ colsᵀ                 (reshaped to (D, C, kh, kw))
        dE/dx = col2im(Wmᵀ @ G)
        dE/db[d] = Σ_{n,oh,ow} gy[n, d, oh, ow]

    x and W are saved, not the columns; backward rebuilds columns. The batch
    is processed in blocks of samples. Stride-1 convolutions take the
    shifted-window fast path, which computes the same formulas with cheaper
    copies, dE/dx as a convolution of gy with flipped kernels, and dE/dW
    from that convolution's columns (module docstring, _shifted_backward).
    """

    def forward(self, x, W, b=None):
        self._setup(x, W, b)
        self.save_for_backward(x, W)
        if self.shifted:
            y, _ = _shifted_pass(x, W.shape[2:], self.padding,
                                 kernels=W.reshape(W.shape[0], -1), bias=b)
            return y
        return self._im2col_forward(x, W, b)

    def backward(self, gy):
        x, W = self.saved
        need_x, need_W = self.inputs[0].requires_grad, self.inputs[1].requires_grad
        need_b = len(self.inputs) > 2 and self.inputs[2].requires_grad
        backward_pass = self._shifted_backward if self.shifted else self._im2col_backward
        gx, gW = backward_pass(x, W, gy, need_x, need_W)
        gb = gy.sum(axis=(0, 2, 3)) if need_b else None
        return (gx, gW, gb) if len(self.inputs) > 2 else (gx, gW)

    def _im2col_forward(self, x, W, b):
        D, C, kh, kw = W.shape
        N, OH, OW = x.shape[0], *self.out_hw
        w_mat = W.reshape(D, C * kh * kw)
        y = self.xp.empty((N, D, OH, OW), dtype=x.dtype)
        for start, stop in self._blocks(x, W):
            cols = im2col(x[start:stop], (kh, kw), self.stride, self.padding)
            y_block = backend.matmul(w_mat, cols)        # (D, n·OH·OW): one GEMM
            if b is not None:
                y_block += b[:, None]                     # while the block is in cache
            y[start:stop] = y_block.reshape(D, stop - start, OH, OW).transpose(1, 0, 2, 3)
        return y

    def _shifted_backward(self, x, W, gy, need_x, need_W):
        """dE/dx and dE/dW of a stride-1 conv from one column matrix of gy per block.

        dE/dx is the stride-1 convolution of gy (padded by q = k-1-p) with the
        flipped kernels W' (module docstring). The same columns give dE/dW,
        because the weight gradient is also a correlation of x with padded gy
        (docs/derivations/conv.md):

            dE/dW[d, c, kh-1-i, kw-1-j] = Σ_{n,h,w} x[n, c, h, w] · gypad[n, d, h + i, w + j]
                                        = (colsgy @ Xᵀ)[(d, i, j), c]

        with X = x in the columns' order. So the backward pass builds one
        column matrix per block instead of two, and its second GEMM reads the
        columns while they are still in cache (a 3×3 layer's backward got
        1.1-1.2× faster on a 2-core CPU). The first layer, whose input is the
        data, needs no dE/dx: there dE/dW = G @ colsᵀ comes from the columns
        of x, usually the smaller ones (C·kh·kw rows against D·kh·kw).
        """
        D, C, kh, kw = W.shape
        if not need_x:
            if not need_W:
                return None, None
            _, gW_t = _shifted_pass(x, (kh, kw), self.padding, partner=gy)   # (C·kh·kw, D)
            return None, gW_t.T.reshape(W.shape)
        (ph, pw) = self.padding
        gx, gW_flipped = _shifted_pass(gy, (kh, kw), (kh - 1 - ph, kw - 1 - pw),
                                       kernels=_flipped_kernels(W).reshape(C, -1),
                                       partner=x if need_W else None)
        if gW_flipped is None:
            return gx, None
        # Undo the flip: row (d, i, j) of gW_flipped is gW[d, :, kh-1-i, kw-1-j].
        gW = gW_flipped.reshape(D, kh, kw, C).transpose(0, 3, 1, 2)[:, :, ::-1, ::-1]
        return gx, self.xp.ascontiguousarray(gW)

    def _im2col_backward(self, x, W, gy, need_x, need_W):
        D, C, kh, kw = W.shape
        w_mat = W.reshape(D, C * kh * kw)
        gx = self.xp.empty_like(x) if need_x else None
        gW = self.xp.zeros((D, C * kh * kw), dtype=W.dtype) if need_W else None
        for start, stop in self._blocks(x, W):
            # gy of the block as (D, n·OH·OW), matching the columns' order.
            g = gy[start:stop].transpose(1, 0, 2, 3).reshape(D, -1)
            if need_W:
                gW += backend.matmul(g, im2col(x[start:stop], (kh, kw), self.stride,
                                                self.padding).T)
            if need_x:
                gx[start:stop] = _col2im_view(backend.matmul(w_mat.T, g), x[start:stop].shape, (kh, kw),
                                              self.stride, self.padding)
        return gx, None if gW is None else gW.reshape(W.shape)

    def _setup(self, x, W, b):
        """Check the arguments; set stride, padding, out_hw and the path taken."""
        _check_4d(x, "conv2d")
        _check_4d(W, "conv2d", name="W", layout="(D, C, kh, kw)")
        if x.shape[1] != W.shape[1]:
            raise ValueError(
                f"conv2d: x has {x.shape[1]} channels (shape {tuple(x.shape)}) but W expects "
                f"{W.shape[1]} (W of shape (D, C, kh, kw) = {tuple(W.shape)})")
        if b is not None and tuple(b.shape) != (W.shape[0],):
            raise ValueError(f"conv2d: bias must have shape ({W.shape[0]},) to match W "
                             f"{tuple(W.shape)}, got {tuple(b.shape)}")
        self.stride = _pair(self.stride, "stride", "conv2d")
        self.padding = _pair(self.padding, "padding", "conv2d")
        self.out_hw = _window_geometry("conv2d", x.shape[2:], W.shape[2:], self.stride,
                                       self.padding)
        # The shifted-window path needs stride 1, and padding < kernel size so
        # that the input gradient's padding k-1-p is not negative.
        (kh, kw), (ph, pw) = W.shape[2:], self.padding
        self.shifted = self.stride == (1, 1) and ph < kh and pw < kw and SHIFTED_WINDOWS

    def _blocks(self, x, W):
        OH, OW = self.out_hw
        per_sample = W[0].size * OH * OW * x.itemsize     # C·kh·kw · OH·OW entries
        return _sample_blocks(x, per_sample)


def conv2d(x, W, b=None, stride=1, padding=0):
    """2-D convolution of x (N, C, H, W) with kernels W (D, C, kh, kw).

    ``stride`` and ``padding`` (zeros) are ints or (height, width) pairs;
    ``b`` is an optional bias of shape (D,). Returns (N, D, OH, OW) with
    OH = (H + 2·padding - kh) // stride + 1.
    """
    inputs = (x, W) if b is None else (x, W, b)
    return Conv2d.apply(*inputs, stride=stride, padding=padding)


# ----------------------------------------------------------------------------
# Pooling
# ----------------------------------------------------------------------------

def _pool_setup(fn, x, op):
    """Normalize a pooling Function's arguments; return padding and output size."""
    _check_4d(x, op)
    fn.kernel = _pair(fn.kernel_size, "kernel_size", op)
    fn.stride = fn.kernel if fn.stride is None else _pair(fn.stride, "stride", op)
    fn.padding = _pair(fn.padding, "padding", op)
    if fn.padding[0] > fn.kernel[0] // 2 or fn.padding[1] > fn.kernel[1] // 2:
        raise ValueError(f"{op}: padding {fn.padding} must be at most half the kernel "
                         f"{fn.kernel} (otherwise a window could hold only padding)")
    fn.in_shape = x.shape
    fn.out_hw = _window_geometry(op, x.shape[2:], fn.kernel, fn.stride, fn.padding)


class MaxPool2d(Function):
    """Max pooling over kh×kw windows (padding counts as -inf).

    y[n, c, oh, ow] = max_{i,j} xpad[n, c, oh·sh + i, ow·sw + j]
    dE/dx = gy routed to the argmax of each window (summed where windows
    overlap); on ties the first offset in row-major order wins, as in PyTorch.

    Forward keeps, per output pixel, the index i·kw + j of the winning kernel
    offset (one small integer); backward scatters with the same offset loop.
    """

    def forward(self, x):
        _pool_setup(self, x, "max_pool2d")
        (kh, kw), (ph, pw) = self.kernel, self.padding
        xpad = _pad(x, ph, pw, value=-float("inf"))
        taps = [_tap(xpad, i, j, self.out_hw, self.stride) for i in range(kh) for j in range(kw)]
        y = taps[0].copy()
        for tap in taps[1:]:
            self.xp.maximum(y, tap, out=y)
        # The winner is the first offset k (row-major) whose tap equals the
        # max. Going backwards from the last offset, each k that matches
        # overwrites the winner, so the first match is the one left. The
        # overwrite is arithmetic, winner -= [tap == y] · (winner - k), as
        # winner > k at that point; a masked copy is several times slower.
        # A window holding a NaN has y = NaN, which nothing equals: its
        # winner stays the last offset (the net has diverged anyway).
        winner = self.xp.full(y.shape, len(taps) - 1, dtype="uint8" if len(taps) < 256 else "int32")
        for k in range(len(taps) - 2, -1, -1):
            winner -= (taps[k] == y) * (winner - k)
        self.save_for_backward(winner)
        return y

    def backward(self, gy):
        (winner,) = self.saved
        (kh, kw), (ph, pw) = self.kernel, self.padding
        N, C, H, W = self.in_shape
        gpad = self.xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=gy.dtype)
        for i in range(kh):
            for j in range(kw):
                _tap(gpad, i, j, self.out_hw, self.stride)[...] += gy * (winner == i * kw + j)
        return gpad[:, :, ph:ph + H, pw:pw + W]


class AvgPool2d(Function):
    """Average pooling over kh×kw windows (zero padding counted in the mean).

    y[n, c, oh, ow] = 1/(kh·kw) Σ_{i,j} xpad[n, c, oh·sh + i, ow·sw + j]
    dE/dx = gy / (kh·kw) added to every pixel of each window.
    """

    def forward(self, x):
        _pool_setup(self, x, "avg_pool2d")
        (kh, kw), (ph, pw) = self.kernel, self.padding
        xpad = _pad(x, ph, pw)
        y = self.xp.zeros((x.shape[0], x.shape[1], *self.out_hw), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                y += _tap(xpad, i, j, self.out_hw, self.stride)
        return y / (kh * kw)              # Python int: the dtype of y is kept

    def backward(self, gy):
        (kh, kw), (ph, pw) = self.kernel, self.padding
        N, C, H, W = self.in_shape
        share = gy / (kh * kw)
        gpad = self.xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=gy.dtype)
        for i in range(kh):
            for j in range(kw):
                _tap(gpad, i, j, self.out_hw, self.stride)[...] += share
        return gpad[:, :, ph:ph + H, pw:pw + W]


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max pooling of x (N, C, H, W); ``stride`` defaults to ``kernel_size``."""
    return MaxPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Average pooling of x (N, C, H, W); ``stride`` defaults to ``kernel_size``.
    Zero padding is included in the average (PyTorch's count_include_pad=True)."""
    return AvgPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding)


def global_avg_pool2d(x):
    """Mean over each feature map: (N, C, H, W) → (N, C).

    y[n, c] = 1/(H·W) Σ_{h,w} x[n, c, h, w];   dE/dx = gy / (H·W) everywhere.
    """
    _check_4d(x, "global_avg_pool2d")
    return mean(x, axis=(2, 3))


# ----------------------------------------------------------------------------
# Spatial pyramid pooling (SPP-net)
# ----------------------------------------------------------------------------

def _bin_edges(size: int, bins: int) -> list[tuple[int, int]]:
    """Split 0..size into ``bins`` windows [floor(i·size/bins), ceil((i+1)·size/bins)).

    Every window is non-empty and inside the map, together they cover it, and
    neighbours overlap by at most one pixel. When size < bins, pixels repeat.
    """
    return [((i * size) // bins, -((-(i + 1) * size) // bins)) for i in range(bins)]


def _bin_members(size: int, bins: int, xp):
    """A table (bins, span): row i lists the pixels of bin i, padded to the
    longest bin's length ``span`` by repeating its last pixel (a repeated
    pixel cannot change a maximum, and comes after the original)."""
    span = max(stop - start for start, stop in _bin_edges(size, bins))
    # The edges of _bin_edges again, computed on the device: a table made on
    # the host would be copied to the GPU in every step, and a CUDA graph
    # cannot record such a copy.
    i = xp.arange(bins)
    start, stop = (i * size) // bins, -((-(i + 1) * size) // bins)
    return xp.minimum(start[:, None] + xp.arange(span), stop[:, None] - 1)


class AdaptiveMaxPool2d(Function):
    """Max pooling into a fixed grid of nh×nw bins, whatever the map size.

    y[n, c, a, b] = max over x[n, c, rows(a), cols(b)], with the bin edges of
    ``_bin_edges`` (the same as PyTorch's adaptive_max_pool2d).
    dE/dx = gy routed to the argmax of each bin (the first maximum in
    row-major order), summed where bins share their winning pixel.

    All bins are gathered at once (a handful of array ops per level rather
    than a few per bin: on a GPU each op costs a kernel launch).
    """

    def forward(self, x):
        _check_4d(x, "adaptive_max_pool2d")
        nh, nw = _pair(self.output_size, "output_size", "adaptive_max_pool2d")
        if nh < 1 or nw < 1:
            raise ValueError(f"adaptive_max_pool2d: output size must be >= 1, got {nh}x{nw}")
        xp = self.xp
        N, C, H, W = self.in_shape = x.shape
        rows, cols = _bin_members(H, nh, xp), _bin_members(W, nw, xp)
        # windows[n, c, a, b, u, v] = x[n, c, rows[a, u], cols[b, v]]
        windows = x[:, :, rows[:, None, :, None], cols[None, :, None, :]]
        flat = windows.reshape(N, C, nh, nw, -1)
        best = flat.argmax(axis=-1)                 # position (u, v) inside the bin, flattened
        # Where the winners sit in x, for the backward pass.
        span_w = cols.shape[1]
        self.win_rows = rows[xp.arange(nh)[:, None], best // span_w]
        self.win_cols = cols[xp.arange(nw), best % span_w]
        return flat.max(axis=-1)

    def backward(self, gy):
        N, C = gy.shape[:2]
        xp = self.xp
        gx = xp.zeros(self.in_shape, dtype=gy.dtype)
        batch, channel = xp.arange(N)[:, None, None, None], xp.arange(C)[None, :, None, None]
        # A scatter-add, not `gx[...] += gy`: overlapping bins (and maps smaller
        # than the grid) can share one winning pixel, whose gradients must add up.
        backend.scatter_add(gx, (batch, channel, self.win_rows, self.win_cols), gy)
        return gx


def adaptive_max_pool2d(x, output_size):
    """Max pooling of x (N, C, H, W) into output_size (n or (nh, nw)) bins."""
    return AdaptiveMaxPool2d.apply(x, output_size=output_size)


def spp(x, levels=(4, 2, 1)):
    """Spatial pyramid pooling (He et al., SPP-net): a fixed-length vector
    from a feature map of any size.

    For each level n the map is max-pooled into n×n bins, flattened in
    (C, n, n) order, and the levels are concatenated in the order given:
    (N, C, H, W) → (N, C·Σ n²). The paper's window/stride rule
    (ceil(H/n), floor(H/n)) can leave pixels out or run out of bins on small
    maps; here bin i covers rows floor(i·H/n) .. ceil((i+1)·H/n), which is the
    same when n divides H and always covers the map (pixels repeat if H < n).

        y = concat_n flatten(adaptive_max_pool(x, n))
        dE/dx = Σ_n (the gradient of each bin routed to its maximal pixel)
    """
    _check_4d(backend.unwrap(x), "spp")
    if not levels or any(not isinstance(n, int) or n < 1 for n in levels):
        raise ValueError(f"spp: levels must be positive ints, got {levels!r}")
    N = x.shape[0]
    pooled = [reshape(adaptive_max_pool2d(x, n), (N, -1)) for n in levels]
    return pooled[0] if len(pooled) == 1 else concatenate(pooled, axis=1)


for _wrapper, _function in [(conv2d, Conv2d), (max_pool2d, MaxPool2d), (avg_pool2d, AvgPool2d),
                            (adaptive_max_pool2d, AdaptiveMaxPool2d)]:
    document(_wrapper, _function)
