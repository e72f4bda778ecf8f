"""Batch transforms: preprocessing and augmentation for whole batches (N, C, H, W).

A transform is any callable that takes a batch array and returns a new one;
the input is never changed in place. Transforms run on whichever backend holds
the batch (``xp`` comes from the array), so with a ``DataLoader`` on 'cuda'
the work happens on the GPU.

Random choices (crop offsets, flips) are drawn on the host from minirect's
seeded generator (``minirect.seed``), or from a ``Generator`` you pass, and
only then moved to the batch's device: the same seed gives the same
augmentations on CPU and GPU.

A typical CIFAR pipeline, as in the paper (per-pixel mean subtraction, then
augmentation):

    mean = per_pixel_mean(train.images, scale=1 / 255)
    transform = Compose([ToFloat(1 / 255), SubtractMean(mean),
                         RandomCrop(32, padding=4), RandomHorizontalFlip()])
"""

from __future__ import annotations

from .. import backend

host = backend.module_for("cpu")   # NumPy, reached through the backend layer


class Compose:
    """Apply transforms one after another."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for transform in self.transforms:
            x = transform(x)
        return x

    def __repr__(self):
        return f"Compose({self.transforms!r})"


class ToFloat:
    """x -> float32(x) * scale. The default 1/255 maps uint8 pixels to [0, 1]."""

    def __init__(self, scale: float = 1 / 255):
        self.scale = float(scale)

    def __call__(self, x):
        xp = backend.array_module(x, op="ToFloat")
        # A Python float keeps float32 under the standard's (and NumPy 2's, CuPy's) promotion rules.
        return xp.astype(x, xp.float32) * self.scale

    def __repr__(self):
        return f"ToFloat(scale={self.scale:g})"


class _DeviceConstant:
    """A small host array (a mean image, per-channel std) with a copy per device.

    Moving it to the GPU on first use and keeping that copy avoids a
    host-to-device transfer for every batch.
    """

    def __init__(self, values):
        self.host_values = host.asarray(values, dtype=host.float32)
        self._copies = {}

    def like(self, x):
        device = backend.device_of(x)
        if device not in self._copies:
            self._copies[device] = backend.to_device(self.host_values, device)
        return self._copies[device]


def per_pixel_mean(images, scale: float = 1 / 255):
    """The mean image (C, H, W) of a training set, as float32 after scaling by ``scale``.

    Pass the same ``scale`` that ``ToFloat`` uses before ``SubtractMean``.
    The sum is accumulated in float64 so that 50,000 images do not lose digits.
    """
    mean = images.mean(axis=0, dtype="float64") * scale
    return backend.to_numpy(mean).astype(host.float32)


def per_channel_mean_std(images, scale: float = 1 / 255):
    """Per-channel mean and standard deviation (each of shape (C,)) for ``Normalize``."""
    over_pixels = (0, 2, 3)      # every axis but the channel
    mean = images.mean(axis=over_pixels, dtype="float64") * scale
    std = images.std(axis=over_pixels, dtype="float64") * scale
    return backend.to_numpy(mean).astype(host.float32), backend.to_numpy(std).astype(host.float32)


class SubtractMean:
    """x -> x - mean_image: the per-pixel mean subtraction used in the paper.

    ``mean_image`` has shape (C, H, W), e.g. from ``per_pixel_mean`` on the
    training images. Apply it after ``ToFloat``.
    """

    def __init__(self, mean_image):
        self.mean_image = _DeviceConstant(mean_image)

    def __call__(self, x):
        return x - self.mean_image.like(x)

    def __repr__(self):
        return f"SubtractMean(mean_image of shape {self.mean_image.host_values.shape})"


class Normalize:
    """x -> (x - mean[c]) / std[c] for each channel c."""

    def __init__(self, mean, std):
        # Shaped (1, C, 1, 1) so they broadcast over batch, height and width.
        self.mean = _DeviceConstant(host.asarray(mean).reshape(1, -1, 1, 1))
        self.std = _DeviceConstant(host.asarray(std).reshape(1, -1, 1, 1))

    def __call__(self, x):
        return (x - self.mean.like(x)) / self.std.like(x)

    def __repr__(self):
        return f"Normalize(mean={self.mean.host_values.ravel()}, std={self.std.host_values.ravel()})"


def _zero_pad(x, p, xp):
    """``x`` with ``p`` zeros around its last two axes (the standard has no ``pad``:
    a zero array and one slice assignment)."""
    if not p:
        return x
    n, channels, height, width = x.shape
    padded = xp.zeros((n, channels, height + 2 * p, width + 2 * p), dtype=x.dtype,
                      **backend.on_device_of(x))
    padded[:, :, p:p + height, p:p + width] = x
    return padded


def _pair(size):
    return (size, size) if isinstance(size, int) else tuple(size)


class RandomCrop:
    """Zero-pad each image by ``padding`` pixels, then cut a random ``size`` window.

    Each image in the batch gets its own offset. Put it after mean subtraction
    or normalization, so the zero padding is the average colour rather than black.
    """

    def __init__(self, size, padding: int = 0, rng=None):
        self.size = _pair(size)
        self.padding = int(padding)
        self.rng = rng           # None: minirect's shared generator, read at each call

    def __call__(self, x):
        xp = backend.array_module(x, op="RandomCrop")
        x = _zero_pad(x, self.padding, xp)
        n, channels, height, width = x.shape
        crop_h, crop_w = self.size
        if crop_h > height or crop_w > width:
            raise ValueError(
                f"RandomCrop: crop {self.size} is larger than the padded image {(height, width)}"
            )
        rng = self.rng if self.rng is not None else backend.generator()
        top = rng.integers(0, height - crop_h + 1, size=n)
        left = rng.integers(0, width - crop_w + 1, size=n)
        # Index arrays for every image's window, made on the host and moved once: one
        # gather for the whole batch (the standard's integer-array indexing, all four
        # axes indexed by arrays that broadcast) instead of a Python loop over images.
        index = (host.arange(n)[:, None, None, None], host.arange(channels)[None, :, None, None],
                 (top[:, None] + host.arange(crop_h))[:, None, :, None],
                 (left[:, None] + host.arange(crop_w))[:, None, None, :])
        return x[tuple(backend.to_device(i, backend.device_of(x)) for i in index)]

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror each image left-right with probability ``p``.

    Meant for natural images such as CIFAR-10, where a mirrored cat is still a
    cat. Do not use it on digits or letters: a mirrored 2 is not a 2.
    """

    def __init__(self, p: float = 0.5, rng=None):
        self.p = float(p)
        self.rng = rng

    def __call__(self, x):
        xp = backend.array_module(x, op="RandomHorizontalFlip")
        rng = self.rng if self.rng is not None else backend.generator()
        flip = rng.random(x.shape[0]) < self.p
        flip = backend.to_device(flip, backend.device_of(x))[:, None, None, None]
        return xp.where(flip, xp.flip(x, axis=-1), x)

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


def paper_input_transform(train_images, pixel_max, input_scale: str = "pixel"):
    """The input preprocessing: per-pixel mean subtraction, as in the paper.

    ``input_scale="pixel"`` (default, the paper's): pixels are put on the 8-bit
    scale 0..255 (the 0..16 digits are multiplied by 255/16) and the training
    set's mean image is subtracted — no division by the std, so the input std
    is about 60–80, like the paper's mean-subtracted ImageNet pixels.
    ``input_scale="unit"``: the centred pixels are also divided by their std.

    Why it matters (docs/reproduction.md): in a ReLU net with zero biases the
    logits at initialization scale with the input, and whether Xavier's tiny
    gradients beat weight decay depends on that scale. ``minirect reproduce``,
    ``minirect train`` and notebooks 05-06 use "pixel"; notebooks 03-04 use
    "unit".
    """
    scale = 255.0 / pixel_max
    mean = per_pixel_mean(train_images, scale)
    if input_scale == "unit":
        centred = train_images.astype(host.float32) * host.float32(scale) - mean
        std = float((centred * centred).mean(dtype=host.float64)) ** 0.5
    elif input_scale == "pixel":
        std = 1.0
    else:
        raise ValueError(f"input_scale must be 'pixel' or 'unit', got {input_scale!r}")
    # (x·scale − mean) / std, as two cheap elementwise ops on the device
    return Compose([ToFloat(scale / std), SubtractMean(mean / std)])
