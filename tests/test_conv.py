"""conv2d, pooling and SPP: values against slow loop references, gradients,
dtypes, errors, and (when installed) PyTorch."""

import numpy as np
import pytest

import minirect as mr
import minirect.functional as F
from minirect.accel import shifted_windows
from minirect.functional import conv as conv_module

RNG = np.random.default_rng(3)


def t(xp, values, grad=True, dtype=None):
    return mr.tensor(xp.asarray(values, dtype=dtype), requires_grad=grad)


def distinct(shape, scale=0.1):
    """Values 0.1 apart in random order: max pooling never meets a tie."""
    size = int(np.prod(shape))
    return (RNG.permutation(size).reshape(shape) - size / 2) * scale


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ----------------------------------------------------------------------------
# Obviously-correct references: one output pixel at a time (NumPy, float64)
# ----------------------------------------------------------------------------

def conv2d_ref(x, w, b=None, stride=1, padding=0):
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    N, _, Hp, Wp = xpad.shape
    D, _, kh, kw = w.shape
    OH, OW = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    y = np.zeros((N, D, OH, OW))
    for n in range(N):
        for d in range(D):
            for oh in range(OH):
                for ow in range(OW):
                    patch = xpad[n, :, oh * sh:oh * sh + kh, ow * sw:ow * sw + kw]
                    y[n, d, oh, ow] = (patch * w[d]).sum() + (0 if b is None else b[d])
    return y


def pool_ref(x, k, stride, padding, reduce, pad_value):
    (kh, kw), (sh, sw), (ph, pw) = pair(k), pair(stride), pair(padding)
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    N, C, Hp, Wp = xpad.shape
    OH, OW = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    y = np.zeros((N, C, OH, OW))
    for oh in range(OH):
        for ow in range(OW):
            window = xpad[:, :, oh * sh:oh * sh + kh, ow * sw:ow * sw + kw]
            y[:, :, oh, ow] = reduce(window, axis=(2, 3))
    return y


def spp_ref(x, levels):
    """Bin i of n covers rows floor(i·H/n) .. ceil((i+1)·H/n) - 1."""
    N, C, H, W = x.shape
    parts = []
    for n in levels:
        y = np.zeros((N, C, n, n))
        for a in range(n):
            for b in range(n):
                rows = slice(a * H // n, -(-(a + 1) * H // n))
                cols = slice(b * W // n, -(-(b + 1) * W // n))
                y[:, :, a, b] = x[:, :, rows, cols].max(axis=(2, 3))
        parts.append(y.reshape(N, -1))
    return np.concatenate(parts, axis=1)


# ----------------------------------------------------------------------------
# im2col / col2im
# ----------------------------------------------------------------------------

def test_im2col_small_example(xp):
    x = xp.reshape(xp.arange(9.0), (1, 1, 3, 3))
    cols = F.im2col(x, 2)                       # four 2x2 patches, one per column
    assert mr.backend.to_numpy(cols).tolist() == [
        [0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]]


@pytest.mark.parametrize("kernel, stride, padding", [(3, 1, 1), (2, 2, 0), ((2, 3), (2, 1), (1, 0))])
def test_col2im_is_the_adjoint_of_im2col(xp, kernel, stride, padding):
    """<im2col(x), c> = <x, col2im(c)> for all x, c: col2im is im2col's transpose."""
    x = xp.asarray(RNG.standard_normal((2, 3, 5, 6)))
    cols = F.im2col(x, kernel, stride, padding)
    c = xp.asarray(RNG.standard_normal(cols.shape))
    back = F.col2im(c, x.shape, kernel, stride, padding)
    assert back.shape == x.shape
    assert float(xp.sum(cols * c)) == pytest.approx(float(xp.sum(x * back)))


# ----------------------------------------------------------------------------
# conv2d
# ----------------------------------------------------------------------------

CONV_CASES = [  # x shape, W shape, stride, padding
    ((2, 3, 6, 6), (4, 3, 3, 3), 1, 1),
    ((2, 3, 7, 5), (4, 3, 3, 3), 2, 0),          # non-square input
    ((2, 2, 6, 6), (3, 2, 2, 2), 2, 0),
    ((1, 2, 5, 6), (3, 2, 2, 2), 1, 1),
    ((1, 2, 9, 8), (2, 2, 7, 7), 1, 3),
    ((1, 2, 9, 9), (2, 2, 7, 7), 2, 2),
    ((2, 2, 5, 7), (3, 2, 2, 3), (2, 1), (1, 0)),  # non-square kernel, stride, padding
    ((2, 3, 5, 7), (2, 3, 3, 2), 1, (0, 1)),       # stride 1: non-square kernel and padding
    ((2, 2, 4, 4), (3, 2, 1, 1), 1, 0),            # 1x1 kernel
    ((2, 2, 3, 1), (2, 2, 3, 5), 1, (1, 2)),       # map narrower than the kernel
    ((1, 2, 4, 5), (2, 2, 2, 2), 1, 2),            # padding >= kernel: im2col path only
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_conv2d_forward_matches_loops(xp, x_shape, w_shape, stride, padding):
    x, w, b = RNG.standard_normal(x_shape), RNG.standard_normal(w_shape), RNG.standard_normal(w_shape[0])
    y = F.conv2d(t(xp, x), t(xp, w), t(xp, b), stride=stride, padding=padding)
    np.testing.assert_allclose(y.numpy(), conv2d_ref(x, w, b, stride, padding), atol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_conv2d_gradcheck(xp, x_shape, w_shape, stride, padding, bias):
    x, w = t(xp, RNG.standard_normal(x_shape)), t(xp, RNG.standard_normal(w_shape))
    if bias:
        b = t(xp, RNG.standard_normal(w_shape[0]))
        assert mr.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding), x, w, b)
    else:
        assert mr.gradcheck(lambda x, w: F.conv2d(x, w, None, stride, padding), x, w)


@pytest.mark.parametrize("stride", [1, 2])
def test_conv2d_skips_the_input_gradient_nobody_needs(xp, monkeypatch, stride):
    """The first layer's input is the data: conv2d does not compute its
    gradient at all (the flipped kernels and col2im would be its first step)."""
    def not_wanted(*args, **kwargs):
        raise AssertionError("an input gradient was computed for an input that needs none")
    monkeypatch.setattr(shifted_windows, "flipped_kernels", not_wanted)
    monkeypatch.setattr(conv_module, "col2im", not_wanted)
    x = t(xp, RNG.standard_normal((2, 3, 5, 5)), grad=False)     # the data: no gradient
    w = t(xp, RNG.standard_normal((4, 3, 3, 3)))
    F.conv2d(x, w, stride=stride, padding=1).sum().backward()
    assert x.grad is None and w.grad.shape == (4, 3, 3, 3)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_conv2d_takes_the_shifted_path_exactly_for_stride_1_and_padding_below_kernel(
        monkeypatch, fast_paths, x_shape, w_shape, stride, padding):
    """The tests run with fast paths on and off; that only means something if
    the fast path really runs when on: for stride 1 and padding < kernel size."""
    calls = []
    real_pass = shifted_windows.shifted_pass
    monkeypatch.setattr(shifted_windows, "shifted_pass",
                        lambda *args, **kwargs: calls.append(1) or real_pass(*args, **kwargs))
    x = mr.tensor(RNG.standard_normal(x_shape), requires_grad=True)
    F.conv2d(x, mr.tensor(RNG.standard_normal(w_shape)), stride=stride,
             padding=padding).sum().backward()
    (ph, pw), (kh, kw) = conv_module._pair(padding, "", ""), w_shape[2:]
    expected = conv_module._pair(stride, "", "") == (1, 1) and ph < kh and pw < kw
    assert bool(calls) == (expected and fast_paths)


def test_conv2d_bias_gradient_alone(xp):
    """x and W frozen, b trained: dE/db = Σ gy over batch and pixels, nothing else."""
    x = t(xp, RNG.standard_normal((2, 3, 5, 5)), grad=False)
    w = t(xp, RNG.standard_normal((4, 3, 3, 3)), grad=False)
    b = t(xp, np.zeros(4))
    gy = RNG.standard_normal((2, 4, 5, 5))
    F.conv2d(x, w, b, padding=1).backward(t(xp, gy, grad=False))
    assert x.grad is None and w.grad is None
    np.testing.assert_allclose(mr.backend.to_numpy(b.grad), gy.sum(axis=(0, 2, 3)), atol=1e-12)


@pytest.mark.parametrize("stride", [1, 2])
def test_conv2d_weight_gradient_is_the_same_without_the_input_gradient(xp, stride):
    """The first layer (input needs no gradient) computes dE/dW by another
    route on the shifted-window path (from the columns of x, not of gy)."""
    x_np, w_np = RNG.standard_normal((3, 2, 6, 5)), RNG.standard_normal((4, 2, 3, 3))
    gy = RNG.standard_normal((3, 4, 6, 5) if stride == 1 else (3, 4, 3, 3))
    grads = []
    for need_x in (True, False):
        x, w = t(xp, x_np, grad=need_x), t(xp, w_np)
        F.conv2d(x, w, stride=stride, padding=1).backward(t(xp, gy, grad=False))
        grads.append(mr.backend.to_numpy(w.grad))
    np.testing.assert_allclose(grads[0], grads[1], atol=1e-12)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("block_bytes", [1, 25_000, 10**9])   # 25 kB: blocks of 2, 2, 1 (stride 1)
def test_conv2d_same_result_for_any_block_size(xp, monkeypatch, block_bytes, stride):
    """The batch is processed in blocks of samples; the block size changes speed only."""
    x_np, w_np = RNG.standard_normal((5, 3, 6, 6)), RNG.standard_normal((4, 3, 3, 3))
    gy = RNG.standard_normal((5, 4, 6 // stride, 6 // stride))
    results = []
    for budget in (block_bytes, 300):        # 300 bytes: blocks of one sample
        monkeypatch.setattr(shifted_windows, "CPU_BLOCK_BYTES", budget)
        monkeypatch.setattr(shifted_windows, "GPU_BLOCK_BYTES", budget)
        x, w, b = t(xp, x_np), t(xp, w_np), t(xp, np.ones(4))
        y = F.conv2d(x, w, b, stride=stride, padding=1)
        y.backward(t(xp, gy, grad=False))
        results.append([y.numpy(), x.grad, w.grad, b.grad])
    for a, c in zip(*results):
        np.testing.assert_allclose(mr.backend.to_numpy(a), mr.backend.to_numpy(c), atol=1e-12)


def test_conv2d_backward_is_deterministic(xp):
    x_np, w_np = RNG.standard_normal((2, 3, 7, 7)), RNG.standard_normal((4, 3, 3, 3))
    grads = []
    for _ in range(2):
        x, w = t(xp, x_np, dtype=xp.float32), t(xp, w_np, dtype=xp.float32)
        F.conv2d(x, w, padding=1).sum().backward()
        grads.append((mr.backend.to_numpy(x.grad), mr.backend.to_numpy(w.grad)))
    assert all((a == b).all() for a, b in zip(*grads))


# ----------------------------------------------------------------------------
# Pooling
# ----------------------------------------------------------------------------

POOL_CASES = [  # kernel, stride, padding, input shape
    (2, None, 0, (2, 3, 6, 6)),
    (3, 2, 1, (2, 2, 7, 5)),
    (3, 1, 1, (1, 2, 4, 5)),
    ((2, 3), (1, 2), (1, 1), (1, 2, 5, 6)),
]


@pytest.mark.parametrize("k, stride, padding, shape", POOL_CASES)
def test_max_pool2d_forward_and_gradcheck(xp, k, stride, padding, shape):
    x = distinct(shape)
    y = F.max_pool2d(t(xp, x), k, stride, padding)
    ref = pool_ref(x, k, stride or k, padding, np.max, -np.inf)
    np.testing.assert_array_equal(y.numpy(), ref)
    assert mr.gradcheck(lambda x: F.max_pool2d(x, k, stride, padding), t(xp, x))


def test_max_pool2d_gradient_goes_to_the_argmax(xp):
    x = t(xp, [[[[1.0, 5.0], [3.0, 2.0]]]])
    F.max_pool2d(x, 2).sum().backward()
    assert mr.backend.to_numpy(x.grad).tolist() == [[[[0.0, 1.0], [0.0, 0.0]]]]


@pytest.mark.parametrize("k, stride, padding, shape", POOL_CASES)
def test_avg_pool2d_forward_and_gradcheck(xp, k, stride, padding, shape):
    x = RNG.standard_normal(shape)
    y = F.avg_pool2d(t(xp, x), k, stride, padding)
    np.testing.assert_allclose(y.numpy(), pool_ref(x, k, stride or k, padding, np.mean, 0.0),
                               atol=1e-12)
    assert mr.gradcheck(lambda x: F.avg_pool2d(x, k, stride, padding), t(xp, x))


def test_global_avg_pool2d(xp):
    x = RNG.standard_normal((2, 3, 4, 5))
    y = F.global_avg_pool2d(t(xp, x))
    assert y.shape == (2, 3)
    np.testing.assert_allclose(y.numpy(), x.mean(axis=(2, 3)), atol=1e-12)
    assert mr.gradcheck(F.global_avg_pool2d, t(xp, x))


# ----------------------------------------------------------------------------
# Spatial pyramid pooling
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("levels, size", [
    ((3, 2, 1), (5, 5)), ((3, 2, 1), (6, 4)),
    ((6, 3, 2, 1), (7, 7)), ((4, 2, 1), (4, 4)),           # level 4 on a 4x4 map: 1-pixel bins
    ((7, 3, 2, 1), (7, 7)), ((4, 3, 2, 1), (4, 5)),
])
def test_spp_forward_and_gradcheck(xp, levels, size):
    x = distinct((2, 2) + size)
    y = F.spp(t(xp, x), levels)
    assert y.shape == (2, 2 * sum(n * n for n in levels))
    np.testing.assert_array_equal(y.numpy(), spp_ref(x, levels))
    assert mr.gradcheck(lambda x: F.spp(x, levels), t(xp, x))


def test_ties_send_the_gradient_to_the_first_maximum(xp):
    """A window of equal values (say, dead ReLUs) passes its gradient on once,
    to its first pixel in row-major order, as in PyTorch."""
    for pool in (lambda x: F.max_pool2d(x, 2), lambda x: F.spp(x, (1,))):
        x = t(xp, np.zeros((1, 1, 2, 2)))
        pool(x).sum().backward()
        assert mr.backend.to_numpy(x.grad).tolist() == [[[[1.0, 0.0], [0.0, 0.0]]]]


def test_ties_away_from_the_first_offset(xp):
    """The first maximal offset in row-major order wins, wherever it is."""
    x = t(xp, np.array([[[[0.0, 5.0], [5.0, 1.0]]]]))
    F.max_pool2d(x, 2).sum().backward()
    assert mr.backend.to_numpy(x.grad).tolist() == [[[[0.0, 1.0], [0.0, 0.0]]]]


def test_max_pool_passes_nan_on_as_pytorch_does(xp):
    """A NaN anywhere in a window makes its maximum NaN (so divergence shows).
    Its gradient goes to the NaN pixel in the reference (argmax, as PyTorch)
    and to the window's last offset in accel's tuned forward, as documented
    there: the one case where the two differ (the net has diverged anyway)."""
    x = t(xp, np.array([[[[1.0, np.nan, 0.0, 1.0], [0.5, 2.0, 3.0, 1.0]]]]))
    y = F.max_pool2d(x, 2)
    assert np.isnan(y.numpy()[0, 0, 0, 0]) and y.numpy()[0, 0, 0, 1] == 3.0
    y.sum().backward()
    if mr.backend.fast_paths_enabled():
        assert mr.backend.to_numpy(x.grad).tolist() == [[[[0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]]]]
    else:
        assert mr.backend.to_numpy(x.grad).tolist() == [[[[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]]]


def test_max_pool_with_more_than_256_taps_keeps_exact_winners(xp):
    """Large kernels store the winner in int32 (offsets past 255 would wrap in uint8)."""
    x_np = distinct((1, 1, 17, 17))
    x = t(xp, x_np)
    F.max_pool2d(x, (17, 16), stride=1).sum().backward()     # two windows of 272 taps
    expected = np.zeros_like(x_np)
    for ow in range(2):
        window = x_np[0, 0, :, ow:ow + 16]
        i, j = np.unravel_index(window.argmax(), window.shape)
        expected[0, 0, i, ow + j] += 1
    np.testing.assert_array_equal(mr.backend.to_numpy(x.grad), expected)


def test_spp_matches_the_papers_windows_when_n_divides_the_map(xp):
    """Window ceil(H/n) and stride floor(H/n) (SPP-net) = max pooling with k = H/n."""
    x = t(xp, distinct((2, 3, 12, 12)), grad=False)
    pooled = [F.max_pool2d(x, 12 // n).numpy().reshape(2, -1) for n in (6, 3, 2, 1)]
    np.testing.assert_array_equal(F.spp(x, (6, 3, 2, 1)).numpy(), np.concatenate(pooled, axis=1))


def test_spp_order_is_level_then_channel_then_bin(xp):
    x = t(xp, np.arange(8.0).reshape(1, 2, 2, 2), grad=False)
    # level 1: max of each channel; level 2: the pixels, channel by channel
    assert F.spp(x, (1, 2)).tolist() == [[3.0, 7.0, 0, 1, 2, 3, 4, 5, 6, 7]]


# ----------------------------------------------------------------------------
# dtypes and errors
# ----------------------------------------------------------------------------

def test_float32_is_preserved(xp):
    x = t(xp, distinct((2, 3, 8, 8)), dtype=xp.float32)
    w = t(xp, RNG.standard_normal((4, 3, 3, 3)), dtype=xp.float32)
    b = t(xp, RNG.standard_normal(4), dtype=xp.float32)
    y = F.conv2d(x, w, b, stride=1, padding=1)
    outs = [y, F.max_pool2d(y, 2), F.avg_pool2d(y, 3, 1, 1), F.global_avg_pool2d(y),
            F.spp(y, (4, 2, 1))]
    assert all(o.dtype == np.float32 for o in outs)
    sum(o.sum() for o in outs).backward()
    assert all(mr.backend.dtype(t.grad.dtype) == np.float32 for t in (x, w, b))


def test_errors_name_the_shapes(xp):
    x = t(xp, np.ones((2, 3, 5, 5)))
    w = t(xp, np.ones((4, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"expected x of shape \(N, C, H, W\), got shape \(3, 5, 5\)"):
        F.conv2d(t(xp, np.ones((3, 5, 5))), w)
    with pytest.raises(ValueError, match=r"expected W of shape \(D, C, kh, kw\), got shape \(4, 3, 3\)"):
        F.conv2d(x, t(xp, np.ones((4, 3, 3))))
    with pytest.raises(ValueError, match=r"x has 3 channels \(shape \(2, 3, 5, 5\)\) but W expects 2 "
                                         r".*\(4, 2, 3, 3\)"):
        F.conv2d(x, t(xp, np.ones((4, 2, 3, 3))))
    assert F.conv2d(x, t(xp, np.ones((4, 3, 7, 7))), padding=1).shape == (2, 4, 1, 1)  # 7 <= 5 + 2
    with pytest.raises(ValueError, match=r"kernel 7x7 is larger than the padded input 5x5"):
        F.conv2d(x, t(xp, np.ones((4, 3, 7, 7))))
    with pytest.raises(ValueError, match=r"stride must be >= 1, got \(0, 0\)"):
        F.conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        F.conv2d(x, w, t(xp, np.ones(3)))
    with pytest.raises(ValueError, match=r"max_pool2d: expected x of shape \(N, C, H, W\)"):
        F.max_pool2d(t(xp, np.ones((5, 5))), 2)
    with pytest.raises(ValueError, match=r"kernel 6x6 is larger than the padded input 5x5"):
        F.avg_pool2d(x, 6)
    with pytest.raises(ValueError, match=r"spp: levels must be positive ints"):
        F.spp(x, (2, 0))


# ----------------------------------------------------------------------------
# PyTorch as an outside reference (skipped when it is not installed)
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 0), ((2, 1), (1, 2))])
def test_conv2d_and_pooling_match_pytorch(xp, stride, padding):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    x_np, w_np, b_np = distinct((2, 3, 9, 8)), RNG.standard_normal((4, 3, 3, 2)), RNG.standard_normal(4)
    x, w, b = t(xp, x_np), t(xp, w_np), t(xp, b_np)
    X, W, B = (torch.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))

    y = F.conv2d(x, w, b, stride=stride, padding=padding)
    pooled = F.max_pool2d(y, 2, 1, 1)
    Y = TF.conv2d(X, W, B, stride=stride, padding=padding)
    P = TF.max_pool2d(Y, 2, 1, 1)
    np.testing.assert_allclose(y.numpy(), Y.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(pooled.numpy(), P.detach().numpy(), atol=1e-10)

    gy = RNG.standard_normal(P.shape)
    pooled.backward(t(xp, gy, grad=False))
    P.backward(torch.tensor(gy))
    for ours, theirs in [(x, X), (w, W), (b, B)]:
        np.testing.assert_allclose(mr.backend.to_numpy(ours.grad), theirs.grad.numpy(), atol=1e-10)


@pytest.mark.parametrize("size", [(4, 4), (7, 7), (13, 10)])
def test_avg_pool_and_spp_match_pytorch(xp, size):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    x_np = distinct((2, 3) + size)
    levels = (7, 3, 2, 1)
    levels = tuple(n for n in levels if n <= min(size))      # larger levels are refused
    ours = F.spp(t(xp, x_np, grad=False), levels).numpy()
    X = torch.tensor(x_np)
    theirs = torch.cat([TF.adaptive_max_pool2d(X, n).reshape(2, -1) for n in levels], dim=1)
    np.testing.assert_array_equal(ours, theirs.numpy())
    np.testing.assert_allclose(F.avg_pool2d(t(xp, x_np), 3, 2, 1).numpy(),
                               TF.avg_pool2d(X, 3, 2, 1).numpy(), atol=1e-12)


def test_window_geometry_is_public_and_counts_the_windows_that_fit():
    from minirect.functional.conv import window_geometry
    (kernel, stride, padding), out_hw = window_geometry((7, 8), 3, stride=2, padding=(1, 0))
    assert (kernel, stride, padding) == ((3, 3), (2, 2), (1, 0))
    assert out_hw == ((7 + 2 - 3) // 2 + 1, (8 - 3) // 2 + 1)
    with pytest.raises(ValueError, match="my_op: kernel 9x9 is larger"):
        window_geometry((4, 4), 9, op="my_op")


@pytest.mark.parametrize("size, bins", [(7, 3), (4, 4), (6, 2), (3, 5)])
def test_spp_bins_cover_the_map_with_nonempty_bins(size, bins):
    from minirect.functional.conv import spp_bins
    edges = spp_bins(size, bins)
    assert len(edges) == bins and edges[0][0] == 0 and edges[-1][1] == size
    assert all(0 <= a < b <= size for a, b in edges)
    assert all(nxt[0] <= cur[1] for cur, nxt in zip(edges, edges[1:]))   # no pixel left out
