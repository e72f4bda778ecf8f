"""Image classification datasets held in memory as host (NumPy) arrays.

Every dataset object has the same face:

    ds = MNIST(train=True)          # or Digits(), FashionMNIST(), CIFAR10()
    ds.images    # uint8, shape (N, C, H, W)
    ds.labels    # int64, shape (N,)
    ds.classes   # class names, ds.classes[label]
    len(ds), ds[i] -> (image, label)

``Digits`` ships inside the package (no download, no files to find), so every
example and test can run offline. The others are read from the data folder
(see ``minirect.data.download``) and fetched with ``download=True``.

The images stay uint8 on the host: four times smaller than float32, and the
``DataLoader`` moves them to the GPU once and converts batch by batch.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
import zlib
from pathlib import Path

from .. import backend, files
from .download import DatasetError, data_root, ensure_files, join_url, resolve_base_url
from .formats import read_cifar_batch, read_idx_images, read_idx_labels

host = backend.module_for("cpu")   # NumPy, reached through the backend layer

DIGIT_NAMES = tuple("0123456789")


class ImageDataset:
    """Images, labels and class names; the base of every dataset here."""

    name = "images"
    classes: tuple = ()
    pixel_max = 255         # the largest possible pixel value (ToFloat divides by it)

    def __init__(self, images, labels, split: str, source):
        if len(images) != len(labels):
            raise DatasetError(f"{source}: {len(images)} images but {len(labels)} labels")
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise DatasetError(
                f"{source}: labels run from {labels.min()} to {labels.max()}, "
                f"but {self.name} has classes 0..{len(self.classes) - 1}"
            )
        self.images = images
        self.labels = labels
        self.split = split
        self.source = str(source)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]

    def class_counts(self):
        """How many examples each class has (a label histogram)."""
        return host.bincount(self.labels, minlength=len(self.classes))

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        return (f"{type(self).__name__}(split={self.split!r}, {n} images of {c}x{h}x{w} uint8, "
                f"{len(self.classes)} classes, source={self.source!r})")


def _split_name(train: bool) -> str:
    return "train" if train else "test"


# ----------------------------------------------------------------------------
# The embedded default: 8x8 handwritten digits
# ----------------------------------------------------------------------------

DIGITS_FILE = Path(__file__).with_name("digits.npz")
# SHA-256 of digits.npz, also written in DIGITS.md; checked on every load.
DIGITS_SHA256 = "e51150157d586388b38f0563d014ef0e1f7e1302a8a18b287f3ee61bfef5c0d9"
# The split never changes: the first 1,397 images train, the last 400 validate.
# The file cycles through the digits, so both parts hold every class evenly.
DIGITS_TRAIN_SIZE = 1397


def read_digits() -> dict:
    """The full 1,797-image digits set, after checking the file's SHA-256."""
    content = DIGITS_FILE.read_bytes()
    actual = hashlib.sha256(content).hexdigest()
    if actual != DIGITS_SHA256:
        raise DatasetError(
            f"{DIGITS_FILE} is damaged: its SHA-256 is {actual}, expected {DIGITS_SHA256}. "
            "Reinstall minirect (or restore the file from the repository)."
        )
    # Decode the bytes we just hashed, so the check covers exactly what is used.
    return files.load_npz(io.BytesIO(content))


class Digits(ImageDataset):
    """UCI's 8x8 handwritten digits (1,797 images, pixel values 0..16), embedded.

    ``train=True`` gives the first 1,397 images, ``train=False`` the last 400
    (a validation split). See ``DIGITS.md`` for the source and license.
    """

    name = "digits"
    classes = DIGIT_NAMES
    pixel_max = 16

    def __init__(self, train: bool = True):
        arrays = read_digits()
        part = slice(0, DIGITS_TRAIN_SIZE) if train else slice(DIGITS_TRAIN_SIZE, None)
        split = "train" if train else "validation"
        super().__init__(arrays["images"][part], arrays["labels"][part], split, DIGITS_FILE)


# ----------------------------------------------------------------------------
# MNIST and Fashion-MNIST (gzip-compressed IDX files)
# ----------------------------------------------------------------------------

class MNIST(ImageDataset):
    """MNIST handwritten digits: 60,000 training and 10,000 test images, 1x28x28.

    Reads ``<root>/mnist/*.gz``; ``download=True`` fetches missing files. Each
    file's MD5 is checked against the published one unless ``verify=False``.
    """

    name = "MNIST"
    subfolder = "mnist"
    url = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    classes = DIGIT_NAMES
    files = {
        "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    }
    md5 = {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }

    def __init__(self, root=None, train: bool = True, download: bool = False,
                 base_url: str | None = None, verify: bool = True, progress: bool = True):
        split = _split_name(train)
        folder = data_root(root) / self.subfolder
        images_file, labels_file = self.files[split]
        ensure_files(
            folder, {name: self.md5[name] for name in self.files[split]},
            resolve_base_url(base_url, self.url, self.subfolder),
            download, f"{self.name} {split} set", verify, progress,
        )
        images = read_idx_images(folder / images_file)
        labels = read_idx_labels(folder / labels_file)
        super().__init__(images, labels, split, folder)


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: MNIST's format and sizes, ten kinds of clothing."""

    name = "Fashion-MNIST"
    subfolder = "fashion-mnist"
    url = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    md5 = {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }


# ----------------------------------------------------------------------------
# CIFAR-10 (pickled batches, or the small subset .npz)
# ----------------------------------------------------------------------------

class CIFAR10(ImageDataset):
    """CIFAR-10: 50,000 training and 10,000 test colour images, 3x32x32.

    Reads the pickled batches in ``<root>/cifar-10-batches-py/``. When that
    folder is absent and ``download`` is false, a ``<root>/cifar10-subset.npz``
    (the first 4,000 training and 1,000 test images) is used instead.
    ``download=True`` fetches and unpacks ``cifar-10-python.tar.gz``.
    """

    name = "CIFAR-10"
    subfolder = "cifar-10-batches-py"
    url = "https://www.cs.toronto.edu/~kriz/"
    archive = "cifar-10-python.tar.gz"
    archive_md5 = "c58f30108f718f92721af3b95e74349a"
    subset_file = "cifar10-subset.npz"
    classes = ("airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck")
    batches = {
        "train": ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"),
        "test": ("test_batch",),
    }
    md5 = {
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
    }
    # MD5 of each array's bytes (a zip file's own bytes vary with timestamps).
    subset_md5 = {
        "x_train": "828ef04e78e73b3f91d38689d95aff0b",
        "y_train": "032aa96e06ef8ab14829dc3e496b68d7",
        "x_test": "08fcd6e0cc2f0a0ce079fe06bc46a255",
        "y_test": "cbe3966f5accb4104d7431d84d198fba",
    }

    def __init__(self, root=None, train: bool = True, download: bool = False,
                 base_url: str | None = None, verify: bool = True, progress: bool = True):
        split = _split_name(train)
        root = data_root(root)
        folder = root / self.subfolder
        base_url = resolve_base_url(base_url, self.url)
        if not folder.is_dir():
            subset = root / self.subset_file
            if subset.is_file() and not download:
                images, labels = self._read_subset(subset, split, verify)
                super().__init__(images, labels, split, subset)
                return
            self._fetch_and_unpack(root, base_url, download, verify, progress)
        images, labels = self._read_batches(folder, split, base_url, verify)
        super().__init__(images, labels, split, folder)

    def _read_batches(self, folder: Path, split: str, base_url: str, verify: bool):
        names = self.batches[split]
        # Batches come from the archive, so a missing one is not downloaded on its own.
        ensure_files(folder, {name: self.md5[name] for name in names}, join_url(base_url, self.archive),
                     download=False, what=f"{self.name} {split} set", verify=verify)
        parts = [read_cifar_batch(folder / name) for name in names]
        return (host.concatenate([images for images, _ in parts]),
                host.concatenate([labels for _, labels in parts]))

    def _fetch_and_unpack(self, root: Path, base_url: str, download: bool, verify: bool, progress: bool):
        archive = root / self.archive
        if not download and not archive.is_file():
            raise DatasetError(
                f"{self.name}: {root / self.subfolder} is missing. Unpack {join_url(base_url, self.archive)} "
                f"in {root} (it holds that folder), or put {self.subset_file} in {root}, or load with "
                "download=True."
            )
        ensure_files(root, {self.archive: self.archive_md5}, base_url, download,
                     f"{self.name} archive", verify, progress)
        unpack_folder(archive, self.subfolder, root)

    def _read_subset(self, path: Path, split: str, verify: bool):
        prefix = "train" if split == "train" else "test"
        try:
            arrays = files.load_npz(path)
            images, labels = arrays[f"x_{prefix}"], arrays[f"y_{prefix}"]
        except Exception as error:   # a damaged zip or missing arrays
            raise DatasetError(f"{path} is not a readable CIFAR-10 subset ({error!r}). "
                               "Replace it with the original file.") from error
        if verify:
            for key, array in ((f"x_{prefix}", images), (f"y_{prefix}", labels)):
                _check_array_md5(path, key, array, self.subset_md5[key])
        return images, labels.astype(host.int64)


def _check_array_md5(path, key: str, array, expected: str) -> None:
    actual = hashlib.md5(array.tobytes()).hexdigest()
    if actual != expected:
        raise DatasetError(
            f"{path}: array {key!r} has MD5 checksum {actual}, expected {expected}; the file is "
            "damaged or is not minirect's CIFAR-10 subset. Replace it with the original file "
            "(or pass verify=False to use your own subset)."
        )


def _is_inside(member_name: str, folder_name: str) -> bool:
    parts = Path(member_name).parts
    return len(parts) > 1 and parts[0] == folder_name and ".." not in parts


def unpack_folder(archive: Path, folder_name: str, destination: Path) -> None:
    """Unpack ``folder_name/`` from a .tar.gz into ``destination``, all or nothing.

    Files are unpacked into a hidden staging folder and moved into place with
    one rename, so an interrupted unpack never leaves a half-filled folder.
    Only regular files under ``folder_name/`` are taken from the archive.
    """
    with tempfile.TemporaryDirectory(dir=destination, prefix=f".{folder_name}.") as staging:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = [m for m in tar.getmembers()
                           if m.isfile() and _is_inside(m.name, folder_name)]
                safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(staging, members=members, **safe)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
            raise DatasetError(f"{archive} could not be unpacked ({error}). Delete it and load "
                               "again with download=True.") from error
        os.replace(Path(staging) / folder_name, destination / folder_name)


# ----------------------------------------------------------------------------
# One entry point by name
# ----------------------------------------------------------------------------

DATASETS = {"digits": Digits, "mnist": MNIST, "fashion-mnist": FashionMNIST, "cifar10": CIFAR10}
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10"}


def load_dataset(name: str, split: str = "train", root=None, download: bool = False, **options):
    """Load a dataset by name: ``digits``, ``mnist``, ``fashion-mnist`` or ``cifar10``.

    ``split`` is ``"train"`` or ``"test"`` (``"val"``/``"validation"`` mean the
    held-out part too: for the digits that is their 400-image validation split).
    Extra ``options`` (``base_url``, ``verify``, ``progress``) go to the dataset.
    """
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    train = _is_train_split(split)
    if key == "digits":      # embedded in the package: nothing to find or download
        return Digits(train=train)
    return DATASETS[key](root=root, train=train, download=download, **options)


def _is_train_split(split: str) -> bool:
    if split == "train":
        return True
    if split in ("test", "val", "validation"):
        return False
    raise ValueError(f"unknown split {split!r}; use 'train' or 'test' (or 'validation')")
