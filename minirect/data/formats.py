"""Decoders for the on-disk dataset formats, with checks that name the bad file.

* IDX (MNIST, Fashion-MNIST): a big-endian header, then raw uint8 values,
  the whole file gzip-compressed. Header: a magic number (2051 for images,
  2049 for labels), then one 32-bit size per dimension.
* CIFAR-10 "python version": each batch is a pickled dict with ``b"data"``
  (N x 3072 uint8: 1024 red, 1024 green, 1024 blue values, rows top to bottom)
  and ``b"labels"`` (N ints). The batches were pickled by Python 2, so they
  are read with ``encoding="bytes"``: Python 2 strings stay bytes (dict keys
  and the arrays' raw data) instead of being decoded as text.

Every function returns host (NumPy) arrays: images uint8 (N, C, H, W),
labels int64 (N,).
"""

from __future__ import annotations

import gzip
import math
import pickle
import struct
import zlib
from pathlib import Path

from .. import backend
from .download import DatasetError

host = backend.module_for("cpu")   # NumPy, reached through the backend layer

IDX_IMAGES_MAGIC = 2051    # 0x00000803: unsigned bytes, 3 dimensions (N, rows, cols)
IDX_LABELS_MAGIC = 2049    # 0x00000801: unsigned bytes, 1 dimension (N,)
CIFAR_IMAGE_SHAPE = (3, 32, 32)

REDOWNLOAD_HINT = "Delete it and load again with download=True, or put the original file there."


# ----------------------------------------------------------------------------
# IDX
# ----------------------------------------------------------------------------

def read_gzip(path) -> bytes:
    """The decompressed bytes of a .gz file; a clear error if it is damaged."""
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path} is not a complete gzip file ({error}). {REDOWNLOAD_HINT}") from error


def read_idx(path, magic: int, ndim: int):
    """Decode a gzip-compressed IDX file of unsigned bytes into an array of shape ``dims``."""
    raw = read_gzip(path)
    header_bytes = 4 * (1 + ndim)           # magic number + one uint32 per dimension
    if len(raw) < header_bytes:
        raise DatasetError(f"{path} is too short ({len(raw)} bytes) to be an IDX file. {REDOWNLOAD_HINT}")
    found_magic, *dims = struct.unpack(f">{1 + ndim}I", raw[:header_bytes])
    if found_magic != magic:
        raise DatasetError(
            f"{path} is not the expected IDX file: its magic number is {found_magic}, expected "
            f"{magic} ({'images' if magic == IDX_IMAGES_MAGIC else 'labels'}). {REDOWNLOAD_HINT}"
        )
    expected_bytes = header_bytes + math.prod(dims)
    if len(raw) != expected_bytes:
        raise DatasetError(
            f"{path} holds {len(raw)} bytes after decompression, but its header (sizes {dims}) "
            f"promises {expected_bytes}. {REDOWNLOAD_HINT}"
        )
    return host.frombuffer(raw, dtype=host.uint8, offset=header_bytes).reshape(dims)


def read_idx_images(path):
    """Images as uint8 (N, 1, H, W): one channel, like every other dataset here."""
    values = read_idx(path, IDX_IMAGES_MAGIC, ndim=3)
    count, rows, cols = values.shape
    return values.reshape(count, 1, rows, cols).copy()   # copy: a writable array, not a view of bytes


def read_idx_labels(path):
    return read_idx(path, IDX_LABELS_MAGIC, ndim=1).astype(host.int64)


# ----------------------------------------------------------------------------
# CIFAR-10 pickled batches
# ----------------------------------------------------------------------------

class _ArraysOnlyUnpickler(pickle.Unpickler):
    """An unpickler that builds NumPy arrays and nothing else.

    Unpickling can call any importable function, so a tampered file could run
    code. A CIFAR batch needs only these constructors, so only these are allowed.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),     # arrays pickled by NumPy 1.x
        ("numpy._core.multiarray", "_reconstruct"),    # ... and by NumPy 2.x
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),                         # bytes pickled by Python 3, protocol 2
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR batch needs only arrays")
        return super().find_class(module, name)


def read_cifar_batch(path):
    """Decode one CIFAR-10 batch file into (images uint8 (N, 3, 32, 32), labels int64 (N,))."""
    try:
        with open(path, "rb") as f:
            batch = _ArraysOnlyUnpickler(f, encoding="bytes").load()
    except FileNotFoundError:
        raise
    except Exception as error:   # a damaged pickle can fail in many ways; report them all alike
        raise DatasetError(
            f"{path} is not a readable CIFAR-10 batch ({error!r}). {REDOWNLOAD_HINT}"
        ) from error
    return _cifar_arrays(batch, Path(path))


def _cifar_arrays(batch, path: Path):
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DatasetError(
            f"{path} is not a CIFAR-10 batch: no b'data' and b'labels' entries. {REDOWNLOAD_HINT}"
        )
    data = host.asarray(batch[b"data"])
    labels = host.asarray(batch[b"labels"], dtype=host.int64)
    pixels_per_image = math.prod(CIFAR_IMAGE_SHAPE)
    if data.dtype != host.uint8 or data.ndim != 2 or data.shape[1] != pixels_per_image:
        raise DatasetError(
            f"{path}: b'data' has shape {data.shape} and dtype {data.dtype}, expected "
            f"(N, {pixels_per_image}) uint8. {REDOWNLOAD_HINT}"
        )
    if labels.shape != (len(data),):
        raise DatasetError(f"{path}: {len(data)} images but {labels.size} labels. {REDOWNLOAD_HINT}")
    # Each row is the red plane, then green, then blue: exactly C x H x W order.
    return data.reshape((len(data),) + CIFAR_IMAGE_SHAPE), labels
