"""Arrays in files: ``.npz`` checkpoints and datasets, and text stored inside them.

Host (NumPy) arrays only: callers copy device arrays to the host first
(``backend.to_numpy``). Not part of the engine a student reads for the math.
"""

from __future__ import annotations

import contextlib
import os

from . import backend

numpy = backend.module_for("cpu")      # host arrays: NumPy, reached through the backend layer


def save_npz(file, arrays: dict) -> None:
    """Write host arrays to an .npz file object or path (uncompressed)."""
    numpy.savez(file, **arrays)


def load_npz(path) -> dict:
    """Read every array of an .npz file into a dict of NumPy arrays."""
    with numpy.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def encode_text(text: str):
    """A string as a uint8 array, so JSON can travel inside an .npz file."""
    return numpy.frombuffer(text.encode("utf-8"), dtype=numpy.uint8).copy()


def decode_text(array) -> str:
    return bytes(backend.to_numpy(array).astype(numpy.uint8)).decode("utf-8")


def write_atomically(path, write, text: bool = False) -> None:
    """Call ``write(file)`` so that ``path`` ends up either as it was or whole and new.

    The new contents go to ``path.tmp``, are flushed to the disk (``fsync``: a rename
    may otherwise reach the disk before the data, and a power cut leave an empty file)
    and then renamed over ``path`` in one step. On any error (a full disk) the
    temporary file is removed and the error raised: nothing half-written stays."""
    path = os.fspath(path)
    tmp = path + ".tmp"
    try:
        with open(tmp, "w" if text else "wb", **({"newline": ""} if text else {})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
