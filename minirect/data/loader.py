"""``DataLoader``: mini-batches of (images, labels) as minirect Tensors.

    loader = DataLoader(Digits(), batch_size=64, shuffle=True, seed=0)
    for epoch in range(10):
        for x, y in loader:        # x float32 (B, C, H, W), y int64 (B,)
            ...

Two design choices worth knowing:

* **The data moves to the device once.** The whole uint8 image array is
  copied to the GPU when the loader is made; every batch is then sliced (or
  gathered) there and converted to float32 there. No batch crosses the
  host-device bus, which is what usually makes small-image training slow.
* **Shuffling is a function of (seed, epoch).** Epoch ``e`` always visits the
  samples in the same order, so a run can be resumed mid-way: save
  ``loader.state_dict()`` with the model, and ``load_state_dict`` continues
  with the next batch of the same epoch.
"""

from __future__ import annotations

from .. import backend, validate
from ..autograd import Tensor
from .transforms import ToFloat

host = backend.module_for("cpu")   # NumPy, reached through the backend layer


class DataLoader:
    """Iterate over (x, y) Tensor batches on ``device``.

    Parameters
    ----------
    data
        A dataset (with ``.images``/``.labels``) or an image array (N, C, H, W).
    labels
        The labels, when ``data`` is an array.
    batch_size
        Images per batch (the last one may be smaller, see ``drop_last``).
    shuffle
        Visit the samples in a new random order every epoch.
    seed
        Seed of the shuffle; None draws one from ``minirect.seed``'s generator.
    drop_last
        Skip the last, incomplete batch.
    device
        'cpu' or 'cuda'; None means minirect's default device.
    transform
        Callable applied to each image batch on the device; None means
        ``ToFloat(1 / pixel_max)``, which scales pixels to [0, 1] (``pixel_max``
        is the dataset's, 255 for a uint8 array, and 1 for other arrays, which
        are then only cast). The result of any transform is cast to float32.
    """

    def __init__(self, data, labels=None, batch_size: int = 128, shuffle: bool = False,
                 seed: int | None = None, drop_last: bool = False, device: str | None = None,
                 transform=None):
        images, labels, pixel_max = _images_and_labels(data, labels)
        labels = _integer_labels(labels)
        if images.ndim != 4:
            raise ValueError(f"DataLoader: images must be (N, C, H, W), got shape {images.shape}"
                             + (" (add a channel axis: images[:, None])" if images.ndim == 3 else ""))
        if not validate.is_int(batch_size) or batch_size < 1:     # 2.5 or True: not a count
            raise ValueError(f"DataLoader: batch_size must be an int >= 1, got {batch_size!r}")
        if seed is not None and not validate.is_int(seed):
            raise ValueError(f"DataLoader: seed must be an int (or None), got {seed!r}")
        device = device or backend.default_device()
        self.images = backend.to_device(images, device)       # once, for the whole run
        self.labels = backend.to_device(labels.astype(host.int64), device)
        self.device = backend.device_of(self.images)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transform = transform if transform is not None else ToFloat(1 / pixel_max)
        self.seed = int(seed) if seed is not None else int(backend.generator().integers(2**62))
        self.epoch = 0                # epochs completed so far; also picks the shuffle order
        self._start_batch = 0         # where the next pass starts (non-zero only after a resume)
        self._batches_done = 0        # batches handed out in the current pass

    def __len__(self) -> int:
        """The number of batches in one epoch."""
        count, rest = divmod(self.labels.shape[0], self.batch_size)
        return count if (self.drop_last or rest == 0) else count + 1

    def __iter__(self):
        """One epoch of batches. A pass run to the end advances ``epoch``."""
        order = self.order(self.epoch)
        first, self._start_batch = self._start_batch, 0
        for b in range(first, len(self)):
            start, stop = b * self.batch_size, min((b + 1) * self.batch_size, self.labels.shape[0])
            # Without shuffling a batch is a slice: a view, no copy. With shuffling
            # it is a gather with indices that already live on the device.
            index = slice(start, stop) if order is None else order[start:stop]
            self._batches_done = b + 1
            yield self._make_batch(index)
        self.epoch += 1
        self._batches_done = 0

    def order(self, epoch: int):
        """The sample order of ``epoch`` on the device (None when not shuffling)."""
        if not self.shuffle:
            return None
        # A generator seeded by (seed, epoch): every epoch has its own order,
        # and the same order whenever it is replayed. Drawn on the host, moved once per epoch.
        generator = backend.private_generator([self.seed, epoch])
        return backend.to_device(generator.permutation(self.labels.shape[0]), self.device)

    def _make_batch(self, index):
        if isinstance(index, slice):
            images, labels = self.images[index, ...], self.labels[index]   # a view, no copy
        else:                                    # a gather: the standard's take (CuPy, NumPy alike)
            xp = backend.array_module(self.images)
            images, labels = xp.take(self.images, index, axis=0), xp.take(self.labels, index, axis=0)
        x = self.transform(images)
        xp = backend.array_module(x)
        if backend.dtype(x.dtype) != backend.dtype("float32"):
            x = xp.astype(x, xp.float32)
        return Tensor(x), Tensor(labels)

    # --- resuming -----------------------------------------------------------------
    def state_dict(self) -> dict:
        """Where the loader stands: its seed, the epoch, and the batches done in it."""
        return {"seed": self.seed, "epoch": self.epoch, "batch": self._batches_done}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a ``state_dict``: the next pass starts at the next batch."""
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self._start_batch = self._batches_done = int(state["batch"])
        if self._start_batch >= len(self):      # saved during the last batch: that epoch is done
            self.epoch += 1
            self._start_batch = self._batches_done = 0

    def __repr__(self) -> str:
        return (f"DataLoader({self.labels.shape[0]} samples, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last}, "
                f"device={self.device!r}, epoch={self.epoch}, transform={self.transform!r})")


def _images_and_labels(data, labels):
    """Accept a dataset object or an (images, labels) pair."""
    if hasattr(data, "images") and hasattr(data, "labels"):
        if labels is not None:
            raise ValueError("DataLoader: pass either a dataset or images and labels, not both")
        return data.images, data.labels, getattr(data, "pixel_max", 255)
    if labels is None:
        raise ValueError("DataLoader: images need labels (pass labels=..., or a dataset)")
    if len(data) != len(labels):
        raise ValueError(f"DataLoader: {len(data)} images but {len(labels)} labels")
    # uint8 pixels run 0..255; other arrays are taken as already scaled (ToFloat only casts).
    pixel_max = 255 if backend.dtype(data.dtype) == backend.dtype("uint8") else 1
    return data, labels, pixel_max


def _integer_labels(labels):
    """The labels as a NumPy integer array; float or bool labels are refused, not rounded."""
    labels = backend.to_numpy(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise TypeError(
            f"DataLoader: labels must be a 1-d array of integer class indices, got "
            f"{labels.dtype} of shape {labels.shape}. Class labels are not rounded: convert them "
            "yourself if they are whole numbers (labels.astype('int64'))")
    return labels
