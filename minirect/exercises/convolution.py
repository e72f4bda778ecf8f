"""Exercises on convolution and pooling: im2col, conv2d forward and backward, max-pool backward.

All arrays are NCHW. Kernels W have shape (D, C, kh, kw). As in every deep
learning library, "convolution" is a cross-correlation (the kernel is not
flipped):

    y[n, d, oh, ow] = Σ_{c, i, j} W[d, c, i, j] · xpad[n, c, oh·s + i, ow·s + j]  (+ b[d])
"""

from __future__ import annotations

from .. import functional as F
from ..autograd import Tensor, no_grad
from ._checker import Case, Exercise, case_rng, Mistake, engine_grads, np


def _out_size(size, k, stride, padding):
    return (size + 2 * padding - k) // stride + 1


def _pad(x, padding):
    p = padding
    return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))


# ----------------------------------------------------------------------------
# im2col, conv2d forward
# ----------------------------------------------------------------------------

def im2col(x, kh, kw, stride, padding):
    """Unfold the kh×kw patches of x (N, C, H, W) into the columns of a matrix.

    cols[(c, i, j), (n, oh, ow)] = xpad[n, c, oh·stride + i, ow·stride + j],
    shape (C·kh·kw, N·OH·OW). One strided slice per kernel offset (i, j).
    """
    N, C, H, W = x.shape
    OH, OW = _out_size(H, kh, stride, padding), _out_size(W, kw, stride, padding)
    xpad = _pad(x, padding)
    cols = np.empty((C, kh, kw, N, OH, OW), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            patch_entries = xpad[:, :, i:i + stride * OH:stride, j:j + stride * OW:stride]
            cols[:, i, j] = patch_entries.transpose(1, 0, 2, 3)       # (N, C, ..) -> (C, N, ..)
    return cols.reshape(C * kh * kw, N * OH * OW)


def conv2d_forward(x, W, b, stride, padding):
    """y = conv2d(x, W) + b as one matrix product: Y = W.reshape(D, C·kh·kw) @ im2col(x).

    The product has shape (D, N·OH·OW) = (D, N, OH, OW); swap the first two
    axes to get NCHW, then add the bias b (D,) to every position.
    """
    N, C, H, Wd = x.shape
    D, _, kh, kw = W.shape
    OH, OW = _out_size(H, kh, stride, padding), _out_size(Wd, kw, stride, padding)
    Y = W.reshape(D, -1) @ im2col(x, kh, kw, stride, padding)
    return Y.reshape(D, N, OH, OW).transpose(1, 0, 2, 3) + b.reshape(1, D, 1, 1)


def _conv_cases(with_gy=False, with_bias=True, gradcheck=True):
    setups = [(0, (2, 3, 5, 5), (4, 3, 3, 3), 1, 1), (1, (2, 2, 7, 7), (3, 2, 3, 3), 2, 0),
              (2, (3, 4, 4, 4), (2, 4, 1, 1), 1, 0), (3, (1, 2, 6, 6), (2, 2, 4, 4), 2, 1)]
    cases = []
    for seed, x_shape, w_shape, stride, padding in setups:
        cases.append(_conv_case(seed, x_shape, w_shape, stride, padding, with_gy, with_bias, "float32"))
    if gradcheck:
        case = _conv_case(4, (2, 2, 4, 4), (2, 2, 3, 3), 2, 1, with_gy, with_bias, "float64")
        case.gradcheck, case.label = True, "float64 gradcheck, stride 2, padding 1"
        cases.append(case)
    return cases


def _conv_case(seed, x_shape, w_shape, stride, padding, with_gy, with_bias, dtype):
    rng = case_rng(seed)
    args = dict(x=rng.standard_normal(x_shape).astype(dtype),
                W=rng.standard_normal(w_shape).astype(dtype))
    if with_bias:
        args["b"] = rng.standard_normal(w_shape[0]).astype(dtype)
    if with_gy:
        OH = _out_size(x_shape[2], w_shape[2], stride, padding)
        OW = _out_size(x_shape[3], w_shape[3], stride, padding)
        args["gy"] = rng.standard_normal((x_shape[0], w_shape[0], OH, OW)).astype(dtype)
    args.update(stride=stride, padding=padding)
    label = f"{dtype} x{x_shape} W{w_shape} stride {stride} padding {padding}"
    return Case(label, args)


def _im2col_cases():
    cases = []
    for case in _conv_cases(with_bias=False, gradcheck=False):
        args = case.args
        kh, kw = args.pop("W").shape[2:]
        cases.append(Case(case.label.replace(" W", " kernel of W"), dict(args, kh=kh, kw=kw)))
    return cases


def _engine_conv(x, W, b, stride, padding):
    with no_grad():
        return (F.conv2d(Tensor(x), Tensor(W), Tensor(b), stride=stride, padding=padding).numpy(),)


IM2COL = Exercise(
    name="im2col", title="im2col: the patches of an image as matrix columns",
    hints=(
        "Loop over the kh·kw kernel offsets (i, j), not over output pixels: for a fixed offset, "
        "which strided slice of the padded input holds that entry of every patch?",
        "The rows are (c, i, j) and the columns (n, oh, ow): which axes must move before you "
        "flatten?",
        "Pad H and W first (np.pad), then slice.",
    ),
    stars=2, unit="convolution", kind="code",
    task="Return the (C·kh·kw, N·OH·OW) matrix whose column (n, oh, ow) holds the input patch "
         "under output pixel (oh, ow) of sample n, in the order (c, i, j): "
         "cols[(c, i, j), (n, oh, ow)] = xpad[n, c, oh·stride + i, ow·stride + j], where xpad "
         "is x with `padding` zeros on each side of H and W. OH = (H + 2·padding − kh) // stride + 1.",
    math="Loop over the kh·kw kernel offsets (i, j), not over pixels: for one offset the entries "
         "of every patch form the strided slice xpad[:, :, i : i + stride·OH : stride, "
         "j : j + stride·OW : stride] of shape (N, C, OH, OW). Move C first and store it as "
         "rows (c, i, j). Row-major flattening of (C, kh, kw) and (N, OH, OW) gives the layout.",
    solution=im2col, outputs=("cols",), cases=_im2col_cases,
    expected=lambda x, kh, kw, stride, padding: (F.im2col(x, (kh, kw), stride, padding),),
    shape_hint="cols has shape (C·kh·kw, N·OH·OW): rows are (c, i, j), columns (n, oh, ow)",
    mistakes=[
        Mistake("the columns must be ordered (n, oh, ow): move C first with transpose(1, 0, 2, 3) "
                "before flattening, a plain reshape of (N, C, ..) mixes samples and channels",
                lambda x, kh, kw, stride, padding: _im2col_channels_last(x, kh, kw, stride, padding)),
        Mistake("the padding is missing: pad H and W with `padding` zeros on each side first",
                lambda x, kh, kw, stride, padding: im2col(x, kh, kw, stride, 0)),
    ])


def _im2col_channels_last(x, kh, kw, stride, padding):
    N, C, H, W = x.shape
    OH, OW = _out_size(H, kh, stride, padding), _out_size(W, kw, stride, padding)
    xpad = _pad(x, padding)
    cols = np.empty((C, kh, kw, N, OH, OW), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xpad[:, :, i:i + stride * OH:stride, j:j + stride * OW:stride].reshape(
                C, N, OH, OW)
    return cols.reshape(C * kh * kw, N * OH * OW)


CONV2D_FORWARD = Exercise(
    name="conv2d_forward", title="conv2d forward by im2col and one matrix product",
    hints=(
        "With the patches as columns (im2col), one output pixel of filter d is a dot product of "
        "W[d] with a column: the whole layer is one matrix product. How must W be reshaped?",
        "The product's columns are ordered (n, oh, ow): reshape, then move the axes to get NCHW.",
        "Deep-learning 'convolution' is a cross-correlation: the kernel is not flipped. Add the "
        "bias of each filter at every position.",
    ),
    stars=2, unit="convolution", kind="code",
    task="Return y = conv2d(x, W) + b for x (N, C, H, W), kernels W (D, C, kh, kw), bias b (D,), "
         "with `stride` and `padding` (zeros): y has shape (N, D, OH, OW). Use your im2col and "
         "one matrix product.",
    math="y[n, d, oh, ow] = Σ_{c,i,j} W[d, c, i, j] · xpad[n, c, oh·s + i, ow·s + j] + b[d] is a "
         "dot product between row d of Wm = W.reshape(D, C·kh·kw) and column (n, oh, ow) of "
         "im2col(x). So Y = Wm @ cols has shape (D, N·OH·OW); reshape to (D, N, OH, OW), swap "
         "the first two axes and add b[d] to every position. No kernel flip: a cross-correlation.",
    solution=conv2d_forward, outputs=("y",), cases=lambda: _conv_cases(gradcheck=False),
    expected=_engine_conv,
    shape_hint="y has shape (N, D, OH, OW) with OH = (H + 2·padding − kh) // stride + 1",
    mistakes=[
        Mistake("deep-learning 'convolution' does not flip the kernel (it is a cross-correlation)",
                lambda x, W, b, stride, padding: conv2d_forward(x, W[:, :, ::-1, ::-1], b, stride, padding)),
        Mistake("the bias b[d] is missing", lambda x, W, b, stride, padding: conv2d_forward(
            x, W, 0 * b, stride, padding)),
        Mistake("the product is (D, N, OH, OW): swap the first two axes, a reshape to "
                "(N, D, OH, OW) mixes samples and channels",
                lambda x, W, b, stride, padding: _conv_reshaped_not_swapped(x, W, b, stride, padding)),
    ])


def _conv_reshaped_not_swapped(x, W, b, stride, padding):
    y = conv2d_forward(x, W, 0 * b, stride, padding)
    return y.transpose(1, 0, 2, 3).reshape(y.shape) + b.reshape(1, -1, 1, 1)


# ----------------------------------------------------------------------------
# conv2d backward
# ----------------------------------------------------------------------------

def col2im(cols, x_shape, kh, kw, stride, padding):
    """The adjoint of im2col: add every column entry back onto the pixel it came from.

    A pixel inside several (overlapping) patches receives the sum of its
    entries, so the loop over kernel offsets uses +=.
    """
    N, C, H, W = x_shape
    OH, OW = _out_size(H, kh, stride, padding), _out_size(W, kw, stride, padding)
    cols = cols.reshape(C, kh, kw, N, OH, OW)
    gpad = np.zeros((N, C, H + 2 * padding, W + 2 * padding), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            window_pixels = gpad[:, :, i:i + stride * OH:stride, j:j + stride * OW:stride]
            window_pixels += cols[:, i, j].transpose(1, 0, 2, 3)     # a view: adds into gpad
    return gpad[:, :, padding:padding + H, padding:padding + W]


def conv2d_backward(x, W, gy, stride, padding):
    """Gradients of y = conv2d(x, W) (no bias): return (dE/dx, dE/dW) from gy (N, D, OH, OW).

    With Y = Wm @ cols (Wm = W.reshape(D, C·kh·kw)) and gY = gy as (D, N·OH·OW):
        dE/dWm = gY @ colsᵀ           (sums over every sample and position)
        dE/dcols = Wmᵀ @ gY,  dE/dx = col2im(dE/dcols)
    """
    D, C, kh, kw = W.shape
    gY = gy.transpose(1, 0, 2, 3).reshape(D, -1)
    cols = im2col(x, kh, kw, stride, padding)
    gW = (gY @ cols.T).reshape(W.shape)
    gx = col2im(W.reshape(D, -1).T @ gY, x.shape, kh, kw, stride, padding)
    return gx, gW


def _col2im_assigning(cols, x_shape, kh, kw, stride, padding):
    """A wrong col2im: '=' instead of '+=' (overlapping patches overwrite each other)."""
    N, C, H, W = x_shape
    OH, OW = _out_size(H, kh, stride, padding), _out_size(W, kw, stride, padding)
    cols = cols.reshape(C, kh, kw, N, OH, OW)
    gpad = np.zeros((N, C, H + 2 * padding, W + 2 * padding), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            window_pixels = gpad[:, :, i:i + stride * OH:stride, j:j + stride * OW:stride]
            window_pixels[...] = cols[:, i, j].transpose(1, 0, 2, 3)
    return gpad[:, :, padding:padding + H, padding:padding + W]


def _conv_backward_assigning(x, W, gy, stride, padding):
    D, C, kh, kw = W.shape
    gY = gy.transpose(1, 0, 2, 3).reshape(D, -1)
    gx = _col2im_assigning(W.reshape(D, -1).T @ gY, x.shape, kh, kw, stride, padding)
    return gx, conv2d_backward(x, W, gy, stride, padding)[1]


def _flipped_gW(grads):
    gx, gW = grads
    return gx, gW[:, :, ::-1, ::-1]


def _conv_engine_grads(x, W, gy, stride, padding):
    return engine_grads(lambda x, W: F.conv2d(x, W, stride=stride, padding=padding), (x, W), gy, (0, 1))


def _conv_forward_no_bias(x, W, gy, stride, padding):
    with no_grad():
        return F.conv2d(Tensor(x), Tensor(W), stride=stride, padding=padding).numpy()


CONV2D_BACKWARD = Exercise(
    name="conv2d_backward", title="conv2d backward: dE/dx and dE/dW",
    hints=(
        "The forward pass is a matrix product Y = Wm @ cols with Wm = W.reshape(D, C·kh·kw): what "
        "does matmul_backward give for Wm and for cols? Bring gy into Y's layout first.",
        "W is shared by every sample and every position: does the matrix product over the N·OH·OW "
        "columns already do the sum over them?",
        "The gradient of cols is a gradient on the patches, not on x: where does col2im come in? "
        "im2col copied each pixel into several overlapping patches, so its adjoint must add, not "
        "assign.",
    ),
    stars=3, unit="convolution", kind="code",
    task="For y = conv2d(x, W) with `stride` and `padding` (no bias), return (gx, gW) = "
         "(dE/dx, dE/dW) given gy = dE/dy of shape (N, D, OH, OW).",
    math="Forward: Y = Wm @ cols with Wm = W.reshape(D, C·kh·kw), cols = im2col(x). This is a "
         "matmul, so (matmul_backward) dE/dWm = gY @ colsᵀ and dE/dcols = Wmᵀ @ gY, with gY = "
         "gy.transpose(1, 0, 2, 3).reshape(D, N·OH·OW). The product over N·OH·OW columns sums "
         "the weight gradient over every sample and position. im2col copies pixels into "
         "patches, so its adjoint col2im adds each entry back: dE/dx = col2im(dE/dcols).",
    solution=conv2d_backward, outputs=("gx", "gW"), cases=lambda: _conv_cases(with_gy=True, with_bias=False),
    expected=_conv_engine_grads, forward=_conv_forward_no_bias, wrt=("x", "W"),
    shape_hint="gx has x's shape (N, C, H, W) and gW has W's shape (D, C, kh, kw)",
    mistakes=[
        Mistake("W is shared by every sample: dE/dW sums over the whole batch (and every position)",
                lambda x, W, gy, stride, padding: (conv2d_backward(x, W, gy, stride, padding)[0],
                                                   conv2d_backward(x[:1], W, gy[:1], stride, padding)[1])),
        Mistake("dE/dW is a sum over the batch, not a mean (gy already carries any 1/N of the loss)",
                lambda x, W, gy, stride, padding: (conv2d_backward(x, W, gy, stride, padding)[0],
                                                   conv2d_backward(x, W, gy, stride, padding)[1] / len(x))),
        Mistake("overlapping patches share pixels: col2im must add (+=), not assign",
                _conv_backward_assigning),
        Mistake("the forward uses W as it is (cross-correlation): no flipped kernel in dE/dW",
                lambda x, W, gy, stride, padding: _flipped_gW(conv2d_backward(x, W, gy, stride, padding))),
    ])


# ----------------------------------------------------------------------------
# Max pooling backward
# ----------------------------------------------------------------------------

def max_pool2d_backward(x, gy, kernel_size, stride):
    """y = max over each k×k window (no padding); return dE/dx.

    Each window sends its whole gy to its maximum; on ties, to the first
    maximum in row-major order (argmax does exactly that). Overlapping windows
    (stride < k) that pick the same pixel add their gradients.
    """
    N, C, H, W = x.shape
    k, s = kernel_size, stride
    OH, OW = _out_size(H, k, s, 0), _out_size(W, k, s, 0)
    n, c = np.indices((N, C))
    gx = np.zeros_like(x)
    for oh in range(OH):
        for ow in range(OW):
            window = x[:, :, oh * s:oh * s + k, ow * s:ow * s + k].reshape(N, C, k * k)
            i, j = np.divmod(window.argmax(axis=2), k)      # the first maximum
            gx[n, c, oh * s + i, ow * s + j] += gy[:, :, oh, ow]
    return gx


def _pool_cases():
    setups = [(0, (2, 2, 4, 4), 2, 2, "ties"), (1, (2, 3, 5, 5), 3, 2, "ties"),
              (2, (1, 2, 4, 5), 2, 1, "ties"), (3, (2, 2, 6, 6), 2, 2, "distinct")]
    cases = []
    for seed, shape, k, s, values in setups:
        rng = case_rng(seed)
        if values == "ties":             # few distinct values: many windows hold tied maxima
            x = rng.integers(0, 3, shape).astype("float32")
        else:
            x = rng.standard_normal(shape).astype("float32")
        OH, OW = _out_size(shape[2], k, s, 0), _out_size(shape[3], k, s, 0)
        gy = rng.standard_normal((shape[0], shape[1], OH, OW)).astype("float32")
        cases.append(Case(f"x{shape} ({values}), kernel {k}, stride {s}",
                          dict(x=x, gy=gy, kernel_size=k, stride=s)))
    rng = case_rng(4)
    shape = (1, 2, 5, 5)                 # distinct values 0.1 apart: no ties, no kinks
    x = (rng.permutation(50).reshape(shape) * 0.1).astype("float64")
    cases.append(Case("float64 gradcheck, kernel 3, stride 1 (overlapping)",
                      dict(x=x, gy=rng.standard_normal((1, 2, 3, 3)), kernel_size=3, stride=1),
                      gradcheck=True))
    return cases


def _pool_engine(x, gy, kernel_size, stride):
    return engine_grads(lambda t: F.max_pool2d(t, kernel_size, stride), (x,), gy, (0,))


def _pool_forward(x, gy, kernel_size, stride):
    with no_grad():
        return F.max_pool2d(Tensor(x), kernel_size, stride).numpy()


def _pool_backward_with(x, gy, kernel_size, stride, route):
    """Max-pool backward with ``route(window) -> weights (N, C, k·k)``, each window added."""
    N, C, H, W = x.shape
    k, s = kernel_size, stride
    gx = np.zeros_like(x)
    for oh in range(_out_size(H, k, s, 0)):
        for ow in range(_out_size(W, k, s, 0)):
            window = x[:, :, oh * s:oh * s + k, ow * s:ow * s + k].reshape(N, C, k * k)
            share = route(window) * gy[:, :, oh, ow][..., None]
            gx[:, :, oh * s:oh * s + k, ow * s:ow * s + k] += share.reshape(N, C, k, k)
    return gx


def _last_max(window):
    flipped = window[..., ::-1].argmax(axis=2)
    return np.eye(window.shape[2])[window.shape[2] - 1 - flipped]


MAX_POOL = Exercise(
    name="max_pool2d_backward", title="Max pooling backward, with ties",
    hints=(
        "Within one window y = max_j x_j: what is ∂y/∂x_j for the winning pixel and for the "
        "others?",
        "Ties: only one pixel may win; the task says which (argmax finds the first).",
        "With stride < kernel the windows overlap: a pixel can win several windows. Assign or "
        "add?",
    ),
    stars=2, unit="convolution", kind="code",
    task="The forward pass takes the maximum of each kernel_size × kernel_size window of x "
         "(N, C, H, W), windows `stride` apart, no padding. Return gx = dE/dx given gy "
         "(N, C, OH, OW). When several pixels of a window tie for the maximum, the first one "
         "in row-major order gets the gradient (as minirect and PyTorch do).",
    math="y = max_j x_j over a window, so ∂y/∂x_j = 1 for the winning j and 0 for the others: "
         "the whole gy goes to the argmax. A pixel that wins several overlapping windows "
         "(stride < kernel) collects the sum of their gradients. On ties the derivative does "
         "not exist; the convention picks one winner, the first.",
    solution=max_pool2d_backward, outputs=("gx",), cases=_pool_cases,
    expected=_pool_engine, forward=_pool_forward, wrt=("x",),
    mistakes=[
        Mistake("ties: only the first maximum (row-major) receives the gradient, not every "
                "pixel equal to the max", lambda x, gy, kernel_size, stride: _pool_backward_with(
                    x, gy, kernel_size, stride, lambda w: (w == w.max(axis=2, keepdims=True)) * 1.0)),
        Mistake("ties go to the *first* maximum (argmax), not the last one",
                lambda x, gy, kernel_size, stride: _pool_backward_with(
                    x, gy, kernel_size, stride, _last_max)),
        Mistake("overlapping windows: a pixel that wins several windows adds (+=) their gradients",
                lambda x, gy, kernel_size, stride: _pool_assigning(x, gy, kernel_size, stride)),
        Mistake("max pooling sends the whole gy to the max; spreading gy/k² over the window is "
                "average pooling", lambda x, gy, kernel_size, stride: _pool_backward_with(
                    x, gy, kernel_size, stride, lambda w: np.full(w.shape, 1.0 / w.shape[2]))),
    ])


def _pool_assigning(x, gy, kernel_size, stride):
    N, C, H, W = x.shape
    k, s = kernel_size, stride
    n, c = np.indices((N, C))
    gx = np.zeros_like(x)
    for oh in range(_out_size(H, k, s, 0)):
        for ow in range(_out_size(W, k, s, 0)):
            window = x[:, :, oh * s:oh * s + k, ow * s:ow * s + k].reshape(N, C, k * k)
            i, j = np.divmod(window.argmax(axis=2), k)
            gx[n, c, oh * s + i, ow * s + j] = gy[:, :, oh, ow]
    return gx


EXERCISES = [MAX_POOL, IM2COL, CONV2D_FORWARD, CONV2D_BACKWARD]
