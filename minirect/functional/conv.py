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

Why this layout: rows (c, i, j) × columns (n, oh, ow) make each offset's
copy a run of long contiguous rows, and the GEMM output (D, n, OH, OW) needs
only a swap of its first two axes to become NCHW. The backward pass rebuilds
the columns instead of saving the forward's: kh·kw times less memory.

The backward pass is the transpose of each step (Conv2d below):

    dE/dW = G @ colsᵀ,   dE/dx = col2im(Wmᵀ @ G),   dE/db = Σ gy over (n, oh, ow)

Faster, equal paths live in ``minirect/accel/``: stride-1 convolutions by
shifted windows (``shifted_windows.py``), max pooling without the stacked taps and SPP
gathered at once (``pooling.py``). accel registers them with the core; here
each is asked for by name in one dispatch line, ``backend.fast_path(...)``,
switched by ``minirect.fast_paths``. Derivations: docs/derivations/conv.md.
"""

from .. import backend
from ..autograd import Function, document
# argument checks and window sizes, kept out of the core (window_geometry: also theory's)
from ..windows import check_4d as _check_4d, pair as _pair, pool_setup, window_geometry  # noqa: F401
from .basic import concatenate, mean, reshape


def _pad(x, ph: int, pw: int, value=0):
    """x with ph rows / pw columns of ``value`` added on each side (H and W)."""
    if ph == 0 and pw == 0:
        return x
    N, C, H, W = x.shape
    xpad = backend.array_module(x).full((N, C, H + 2 * ph, W + 2 * pw), value, dtype=x.dtype,
                                        **backend.on_device_of(x))
    xpad[:, :, ph:ph + H, pw:pw + W] = x
    return xpad


def _tap(i: int, j: int, out_hw, stride):
    """The index of the input pixels that kernel offset (i, j) sees, for all windows.

    xpad[_tap(i, j, ...)][n, c, oh, ow] = xpad[n, c, oh·sh + i, ow·sw + j]: a
    strided slice, read as ``xpad[tap]`` and written as ``gpad[tap] += ...``
    (each offset's pixels are distinct: no duplicate-index write).
    """
    (OH, OW), (sh, sw) = out_hw, stride        # stops inside the array, as the standard asks
    return (slice(None), slice(None), slice(i, i + sh * (OH - 1) + 1, sh),
            slice(j, j + sw * (OW - 1) + 1, sw))


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
    N, C, H, W = x.shape
    (kernel, stride, padding), (OH, OW) = window_geometry((H, W), kernel_size, stride,
                                                          padding, "im2col")
    kh, kw = kernel
    xpad = _pad(x, *padding)
    xp = backend.array_module(x)
    cols = xp.empty((C, kh, kw, N, OH, OW), dtype=x.dtype, **backend.on_device_of(x))
    for i in range(kh):
        for j in range(kw):
            # (N, C, OH, OW) → (C, N, OH, OW): the column order (n, oh, ow).
            cols[:, i, j, ...] = xp.permute_dims(xpad[_tap(i, j, (OH, OW), stride)], (1, 0, 2, 3))
    return xp.reshape(cols, (C * kh * kw, N * OH * OW))


def col2im(cols, x_shape, kernel_size, stride=1, padding=0):
    """The adjoint of ``im2col``: add every column entry back onto its pixel.

    ``cols`` has shape (C·kh·kw, N·OH·OW); returns an array of ``x_shape``
    (N, C, H, W). A pixel that appears in several patches (overlapping
    windows) receives the sum of its entries, which is exactly the gradient
    of im2col. Same offset loop as im2col, with ``+=``.
    """
    cols = backend.unwrap(cols)
    N, C, H, W = x_shape
    (kernel, stride, padding), (OH, OW) = window_geometry((H, W), kernel_size, stride,
                                                          padding, "col2im")
    (kh, kw), (ph, pw) = kernel, padding
    xp = backend.array_module(cols)
    cols = xp.reshape(cols, (C, kh, kw, N, OH, OW))
    # Accumulate in (C, N, ...) order, the order of the columns, so that the
    # reads of ``cols`` are contiguous; swap to (N, C, ...) in the final copy.
    gpad = xp.zeros((C, N, H + 2 * ph, W + 2 * pw), dtype=cols.dtype, **backend.on_device_of(cols))
    for i in range(kh):
        for j in range(kw):
            gpad[_tap(i, j, (OH, OW), stride)] += cols[:, i, j, ...]
    return backend.contiguous(xp.permute_dims(gpad[:, :, ph:ph + H, pw:pw + W], (1, 0, 2, 3)))


# ----------------------------------------------------------------------------
# Convolution
# ----------------------------------------------------------------------------

class Conv2d(Function):
    """2-D convolution (cross-correlation, as in every DL framework), NCHW.

    y[n, d, oh, ow] = b[d] + Σ_{c,i,j} W[d, c, i, j] · xpad[n, c, oh·sh + i, ow·sw + j]

    As matrices, with cols = im2col(x) (C·kh·kw, N·OH·OW) and
    Wm = W.reshape(D, C·kh·kw), G = gy as (D, N·OH·OW):

        Y = Wm @ cols + b
        dE/dW = G @ colsᵀ                 (reshaped to (D, C, kh, kw))
        dE/dx = col2im(Wmᵀ @ G)
        dE/db[d] = Σ_{n,oh,ow} gy[n, d, oh, ow]

    x and W are saved, not the columns: backward rebuilds them. A gradient
    nobody needs (the data's, a frozen layer's) is not computed.
    """

    def forward(self, x, W, b=None):
        self._setup(x, W, b)
        self.save_for_backward(x, W)
        if self.fast:                      # same result, faster: accel/shifted_windows.py
            return self.fast.conv2d(x, W, b, self.padding)
        D, N, (OH, OW) = W.shape[0], x.shape[0], self.out_hw
        cols = im2col(x, W.shape[2:], self.stride, self.padding)     # (C·kh·kw, N·OH·OW)
        y = backend.matmul(self.xp.reshape(W, (D, -1)), cols)         # (D, N·OH·OW): one GEMM
        if b is not None:
            y += b[:, None]
        return backend.contiguous(self.xp.permute_dims(self.xp.reshape(y, (D, N, OH, OW)), (1, 0, 2, 3)))

    def backward(self, gy):
        x, W = self.saved
        need_x, need_W = self.inputs[0].requires_grad, self.inputs[1].requires_grad
        has_b = len(self.inputs) > 2
        gb = self.xp.sum(gy, axis=(0, 2, 3)) if has_b and self.inputs[2].requires_grad else None
        if self.fast:                      # same result, faster: accel/shifted_windows.py
            gx, gW = self.fast.conv2d_backward(x, W, gy, self.padding, need_x, need_W)
            return (gx, gW, gb) if has_b else (gx, gW)
        D, kernel = W.shape[0], W.shape[2:]
        G = self.xp.reshape(self.xp.permute_dims(gy, (1, 0, 2, 3)), (D, -1))   # (D, N·OH·OW), as the columns
        gx = gW = None
        if need_W:
            cols = im2col(x, kernel, self.stride, self.padding)
            gW = self.xp.reshape(backend.matmul(G, cols.mT), W.shape)
        if need_x:
            g_cols = backend.matmul(self.xp.reshape(W, (D, -1)).mT, G)  # (C·kh·kw, N·OH·OW)
            gx = col2im(g_cols, x.shape, kernel, self.stride, self.padding)
        return (gx, gW, gb) if has_b else (gx, gW)

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
        (_, self.stride, self.padding), self.out_hw = window_geometry(
            x.shape[2:], W.shape[2:], self.stride, self.padding, "conv2d")
        self.fast = backend.fast_path("conv2d", W, self.stride, self.padding)


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

class MaxPool2d(Function):
    """Max pooling over kh×kw windows (padding counts as -inf).

    y[n, c, oh, ow] = max_{i,j} xpad[n, c, oh·sh + i, ow·sw + j]
    dE/dx = gy routed to the argmax of each window (summed where windows
    overlap); on ties the first offset in row-major order wins, as in PyTorch.

    Forward stacks the kh·kw taps and keeps, per output pixel, the index
    i·kw + j of the winning offset; backward adds gy where the winner is each
    offset (a ``where`` mask per offset, the same offset loop): no argmax
    scatter, which the standard lacks and whose duplicates CuPy leaves undefined.
    """

    def forward(self, x):
        pool_setup(self, x, "max_pool2d")
        (kh, kw), (ph, pw) = self.kernel, self.padding
        xpad = _pad(x, ph, pw, value=-float("inf"))
        taps = self.xp.stack([xpad[_tap(i, j, self.out_hw, self.stride)]
                              for i in range(kh) for j in range(kw)])   # (kh·kw, N, C, OH, OW)
        y, winner = self.xp.max(taps, axis=0), self.xp.argmax(taps, axis=0)   # the first maximum
        self.save_for_backward(winner)
        return y

    def backward(self, gy):
        (winner,) = self.saved
        (kh, kw), (ph, pw) = self.kernel, self.padding
        N, C, H, W = self.in_shape
        gpad = self.xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=gy.dtype, **backend.on_device_of(gy))
        for i in range(kh):
            for j in range(kw):
                gpad[_tap(i, j, self.out_hw, self.stride)] += self.xp.where(winner == i * kw + j, gy, 0.0)
        return gpad[:, :, ph:ph + H, pw:pw + W]


class AvgPool2d(Function):
    """Average pooling over kh×kw windows (zero padding counted in the mean).

    y[n, c, oh, ow] = 1/(kh·kw) Σ_{i,j} xpad[n, c, oh·sh + i, ow·sw + j]
    dE/dx = gy / (kh·kw) added to every pixel of each window.
    """

    def forward(self, x):
        pool_setup(self, x, "avg_pool2d")
        (kh, kw), (ph, pw) = self.kernel, self.padding
        xpad = _pad(x, ph, pw)
        y = self.xp.zeros((x.shape[0], x.shape[1], *self.out_hw), dtype=x.dtype, **backend.on_device_of(x))
        for i in range(kh):
            for j in range(kw):
                y += xpad[_tap(i, j, self.out_hw, self.stride)]
        return y / (kh * kw)              # Python int: the dtype of y is kept

    def backward(self, gy):
        (kh, kw), (ph, pw) = self.kernel, self.padding
        N, C, H, W = self.in_shape
        share = gy / (kh * kw)
        gpad = self.xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=gy.dtype, **backend.on_device_of(gy))
        for i in range(kh):
            for j in range(kw):
                gpad[_tap(i, j, self.out_hw, self.stride)] += share
        return gpad[:, :, ph:ph + H, pw:pw + W]


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max pooling of x (N, C, H, W); ``stride`` defaults to ``kernel_size``."""
    pool = backend.fast_path("max_pool2d", x) or MaxPool2d   # no stacked copy: accel/pooling.py
    return pool.apply(x, kernel_size=kernel_size, stride=stride, padding=padding)


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

def spp_bins(size: int, bins: int) -> list[tuple[int, int]]:
    """Split 0..size into ``bins`` windows [floor(i·size/bins), ceil((i+1)·size/bins)).

    Every window is non-empty and inside the map, together they cover it, and
    neighbours overlap by at most one pixel. When size < bins, pixels repeat.
    """
    return [((i * size) // bins, -((-(i + 1) * size) // bins)) for i in range(bins)]


class AdaptiveMaxPool2d(Function):
    """Max pooling into a fixed grid of nh×nw bins, whatever the map size.

    y[n, c, a, b] = max_{h ∈ rows(a), w ∈ cols(b)} x[n, c, h, w],  with the bins
    rows(a) = ``spp_bins(H, nh)[a]``, cols(b) = ``spp_bins(W, nw)[b]`` (PyTorch's
    adaptive_max_pool2d has the same). dE/dx = gy of each bin routed to its
    maximal pixel (the first in row-major order), summed where bins share it.
    """

    def forward(self, x):
        _check_4d(x, "adaptive_max_pool2d")
        nh, nw = _pair(self.output_size, "output_size", "adaptive_max_pool2d")
        if nh < 1 or nw < 1:
            raise ValueError(f"adaptive_max_pool2d: output size must be >= 1, got {nh}x{nw}")
        N, C, H, W = self.in_shape = x.shape
        self.bins = [(rows, cols) for rows in spp_bins(H, nh) for cols in spp_bins(W, nw)]
        xp = self.xp
        windows = [xp.reshape(x[:, :, r0:r1, c0:c1], (N, C, -1)) for (r0, r1), (c0, c1) in self.bins]
        self.winners = [xp.argmax(window, axis=-1) for window in windows]    # the first maximum
        return xp.reshape(xp.stack([xp.max(window, axis=-1) for window in windows], axis=-1), (N, C, nh, nw))

    def backward(self, gy):
        xp, on_gy = self.xp, backend.on_device_of(gy)
        gx = xp.zeros(self.in_shape, dtype=gy.dtype, **on_gy)
        gy = xp.reshape(gy, (gy.shape[0], gy.shape[1], -1))
        for k, ((r0, r1), (c0, c1)) in enumerate(self.bins):     # a where mask per bin: no scatter
            pixels = xp.reshape(xp.arange((r1 - r0) * (c1 - c0), **on_gy), (r1 - r0, c1 - c0))
            winner = pixels == self.winners[k][:, :, None, None]     # (N, C, bin h, bin w)
            gx[:, :, r0:r1, c0:c1] += xp.where(winner, gy[:, :, k, None, None], 0.0)
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
    same when n divides H and always covers the map. A level larger than the
    map (n > H or n > W) is refused: its bins would repeat pixels.

        y = concat_n flatten(adaptive_max_pool2d(x, n))
        dE/dx = Σ_n (the gradient of each bin routed to its maximal pixel)
    """
    _check_4d(backend.unwrap(x), "spp")
    if not levels or any(not isinstance(n, int) or n < 1 for n in levels):
        raise ValueError(f"spp: levels must be positive ints, got {levels!r}")
    N, _, H, W = x.shape
    if max(levels) > min(H, W):
        raise ValueError(f"spp: level {max(levels)} asks for {max(levels)}x{max(levels)} bins but "
                         f"the map is only {H}x{W}; use levels of at most {min(H, W)} "
                         "(bins would repeat pixels) or a larger input")
    level = backend.fast_path("spp_level", x) or AdaptiveMaxPool2d   # one gather: accel/pooling.py
    pooled = [reshape(level.apply(x, output_size=n), (N, -1)) for n in levels]
    return pooled[0] if len(pooled) == 1 else concatenate(pooled, axis=1)


for _wrapper, _function in [(conv2d, Conv2d), (max_pool2d, MaxPool2d), (avg_pool2d, AvgPool2d),
                            (adaptive_max_pool2d, AdaptiveMaxPool2d)]:
    document(_wrapper, _function)
