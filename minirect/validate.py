"""Argument checks for the layers and ``load_state_dict``: wrong settings refused when a
layer is built, with a message, rather than as an odd error at the first batch.

Kept out of the teaching core (``nn``, ``functional``): a layer calls them in one
line, and a reader of the layer sees what it checks without reading how.
"""

from __future__ import annotations

import numbers

from . import backend


def is_int(value) -> bool:
    """A Python or NumPy integer (not a bool, not a float that happens to be whole)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def pair(value, layer: str, name: str, least: int, hint: str = "") -> tuple[int, int]:
    """``value`` (an int or a pair of ints, NumPy integers too) as (for height, for width),
    refused unless both are at least ``least``."""
    both = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(both) != 2 or not all(is_int(v) and v >= least for v in both):
        raise ValueError(f"{layer}: {name} must be an int >= {least} or a pair of them, "
                         f"got {value!r}{hint}")
    return int(both[0]), int(both[1])


def sizes(layer: str, **named) -> None:
    """Refuse a width that is not an int >= 1: a layer without inputs or outputs computes
    nothing (and its init would divide by a fan of zero)."""
    bad = [f"{name}={value!r}" for name, value in named.items() if not (is_int(value) and value >= 1)]
    if bad:
        raise ValueError(f"{layer}: {', '.join(bad)}; sizes must be ints >= 1")


def state_value(name: str, value, parameter):
    """``value`` converted to ``parameter``'s dtype and device, or ValueError unless it holds
    real numbers (a string array cannot convert; a complex one would lose its imaginary part)."""
    dtype = getattr(value, "dtype", None)
    if getattr(dtype, "kind", None) not in ("f", "i", "u"):
        raise ValueError(f"load_state_dict: {name} holds {dtype or type(value).__name__} values, "
                         "not real numbers (nothing was loaded)")
    return backend.asarray(backend.to_device(value, parameter.device), dtype=backend.dtype(parameter.dtype))


def array_index(parts) -> None:
    """Refuse what ``getitem``'s array path cannot take: arrays mixed with slices, and
    boolean masks (their result's shape depends on the data: a device sync on a GPU, not
    in the array API standard, and read as 0/1 positions they would pick wrong rows)."""
    if not all(hasattr(p, "ndim") for p in parts):
        raise NotImplementedError("getitem: mixed slice/array indices (use x[i][:, 1:])")
    if any(backend.dtype(p.dtype).kind not in "iu" for p in parts):
        raise TypeError("getitem: index with integer arrays, not boolean masks; for a mask on "
                        "the host use its positions (x[numpy.flatnonzero(mask)]), or keep the "
                        "shape by multiplying: x * mask (a 0/1 float array)")
