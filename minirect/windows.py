"""Argument checks and sizes of the sliding-window ops (conv2d, pooling, im2col):
where windows fit, and the errors that name the op when they do not.

Kept out of the teaching core (``functional/conv.py`` calls them in one line each),
as ``validate.py`` is: a reader of an op sees what it checks without reading how.
"""

from . import validate


def pair(value, name: str, op: str) -> tuple[int, int]:
    """An int or a pair of ints (NumPy integers too) → (for height, for width)."""
    both = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(both) != 2 or not all(validate.is_int(v) for v in both):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return int(both[0]), int(both[1])


def check_4d(x, op: str, name: str = "x", layout: str = "(N, C, H, W)") -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: expected {name} of shape {layout}, got shape {tuple(x.shape)}")
    if name == "x" and x.shape[0] == 0:
        raise ValueError(f"{op}: got an empty batch (x of shape {tuple(x.shape)}); pass at least "
                         "one sample (check the data loader or the slice that made the batch)")


def window_geometry(in_hw, kernel_size, stride=1, padding=0, op: str = "window_geometry"):
    """Check a sliding-window setup; return (kernel, stride, padding) as pairs and (OH, OW).

    The one place minirect computes where windows fit (conv2d, pooling, im2col,
    the theory of the signal): with ints or (height, width) pairs,

        OH = (H + 2·ph - kh) // sh + 1,   OW = (W + 2·pw - kw) // sw + 1

    window (oh, ow) reads the padded rows oh·sh .. oh·sh + kh - 1 (and columns
    likewise). A bad setup raises ValueError naming ``op``.
    """
    kernel = pair(kernel_size, "kernel_size", op)
    stride, padding = pair(stride, "stride", op), pair(padding, "padding", op)
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
    return (kernel, stride, padding), ((H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1)


def pool_setup(fn, x, op):
    """Check a pooling Function's arguments; set its kernel, stride, padding (pairs), in_shape, out_hw."""
    check_4d(x, op)
    stride = fn.kernel_size if fn.stride is None else fn.stride     # default: windows tile the map
    (fn.kernel, fn.stride, fn.padding), fn.out_hw = window_geometry(
        x.shape[2:], fn.kernel_size, stride, fn.padding, op)
    if fn.padding[0] > fn.kernel[0] // 2 or fn.padding[1] > fn.kernel[1] // 2:
        raise ValueError(f"{op}: padding {fn.padding} must be at most half the kernel "
                         f"{fn.kernel} (otherwise a window could hold only padding)")
    fn.in_shape = x.shape
