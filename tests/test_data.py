"""Datasets, downloads, the loader and the transforms.

Unit tests write tiny files in the real formats (gzip IDX, CIFAR pickles, a
.tar.gz) and serve them from a local HTTP server, so nothing here touches the
network. The last test reads the real datasets from $MINIRECT_DATA when set.
"""

import gzip
import hashlib
import http.server
import io
import os
import pickle
import socket
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

import minirect
from minirect import backend
from minirect.data import (
    CIFAR10, MNIST, Compose, DataLoader, DatasetError, Digits, FashionMNIST, Normalize,
    RandomCrop, RandomHorizontalFlip, SubtractMean, ToFloat, data_root, download_file,
    load_dataset, per_channel_mean_std, per_pixel_mean,
)
from minirect.data import datasets as datasets_module

# ----------------------------------------------------------------------------
# Tiny files in the real formats
# ----------------------------------------------------------------------------


def idx_gz_bytes(array) -> bytes:
    """An IDX file (magic 2051 for 3-D images, 2049 for 1-D labels), gzip-compressed."""
    magic = 2051 if array.ndim == 3 else 2049
    header = struct.pack(f">{1 + array.ndim}I", magic, *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()


def tiny_mnist(n_train=12, n_test=5, seed=0):
    """{file name: bytes} for an MNIST-format set, and the arrays inside."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        arrays[prefix] = (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                          rng.integers(0, 10, n).astype(np.uint8))
    files = {}
    for prefix, (images, labels) in arrays.items():
        files[f"{prefix}-images-idx3-ubyte.gz"] = idx_gz_bytes(images)
        files[f"{prefix}-labels-idx1-ubyte.gz"] = idx_gz_bytes(labels)
    return files, arrays


def write_files(folder: Path, files: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


def cifar_batch_bytes(images, labels) -> bytes:
    """A batch as CIFAR-10 stores it: a pickled dict with bytes keys, rows of 3072 values."""
    batch = {b"batch_label": b"tiny", b"labels": [int(v) for v in labels],
             b"data": images.reshape(len(images), -1), b"filenames": [b"x.png"] * len(images)}
    return pickle.dumps(batch, protocol=2)


def tiny_cifar(per_batch=4, seed=0):
    rng = np.random.default_rng(seed)
    files, arrays = {}, {}
    for name in CIFAR10.batches["train"] + CIFAR10.batches["test"]:
        images = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch)
        files[name] = cifar_batch_bytes(images, labels)
        arrays[name] = (images, labels)
    return files, arrays


def tar_gz_bytes(members: dict) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@pytest.fixture
def no_data_env(monkeypatch):
    monkeypatch.delenv("MINIRECT_DATA", raising=False)
    monkeypatch.delenv("MINIRECT_MIRROR", raising=False)


# ----------------------------------------------------------------------------
# A local HTTP server
# ----------------------------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files``; paths under /truncated/ send half the body and hang up."""

    def do_GET(self):
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.server.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))   # always the full size
        self.end_headers()
        if self.path.startswith("/truncated/"):
            body = body[: len(body) // 2]
        self.wfile.write(body)       # HTTP/1.0: the connection closes after this

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests = {}, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def refused_url() -> str:
    """A URL on a local port where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist"


# ----------------------------------------------------------------------------
# Downloads
# ----------------------------------------------------------------------------

def test_download_accepts_the_right_checksum(server, tmp_path):
    content = b"hello dataset" * 1000
    server.files["/a.gz"] = content
    path = download_file(server.url + "/a.gz", tmp_path / "a.gz", md5(content), progress=False)
    assert path.read_bytes() == content
    assert os.listdir(tmp_path) == ["a.gz"]          # no temporary file left


def test_download_rejects_a_wrong_checksum_and_leaves_nothing(server, tmp_path):
    server.files["/a.gz"] = b"not what we expected"
    expected = "0" * 32
    with pytest.raises(DatasetError) as error:
        download_file(server.url + "/a.gz", tmp_path / "a.gz", expected, progress=False)
    message = str(error.value)
    assert expected in message and md5(b"not what we expected") in message and "a.gz" in message
    assert os.listdir(tmp_path) == []


def test_interrupted_download_leaves_nothing(server, tmp_path):
    content = bytes(range(256)) * 4000
    server.files["/truncated/a.gz"] = content
    with pytest.raises(DatasetError, match="stopped after"):
        download_file(server.url + "/truncated/a.gz", tmp_path / "a.gz", md5(content), progress=False)
    assert os.listdir(tmp_path) == []


def test_offline_download_says_where_to_put_the_file(tmp_path):
    with pytest.raises(DatasetError) as error:
        download_file(refused_url() + "/a.gz", tmp_path / "a.gz", "0" * 32, progress=False)
    assert "could not reach" in str(error.value) and str(tmp_path / "a.gz") in str(error.value)
    assert os.listdir(tmp_path) == []


def test_http_error_is_a_dataset_error(server, tmp_path):
    with pytest.raises(DatasetError, match="HTTP 404"):
        download_file(server.url + "/missing.gz", tmp_path / "m.gz", "0" * 32, progress=False)


def test_mnist_downloads_from_base_url_and_then_reads_from_disk(server, tmp_path, monkeypatch, no_data_env):
    files, arrays = tiny_mnist()
    for name, content in files.items():
        server.files[f"/mnist/{name}"] = content
    monkeypatch.setattr(MNIST, "md5", {name: md5(content) for name, content in files.items()})

    train = MNIST(tmp_path, train=True, download=True, base_url=server.url + "/mnist", progress=False)
    np.testing.assert_array_equal(train.images[:, 0], arrays["train"][0])
    assert sorted(os.listdir(tmp_path / "mnist")) == sorted(n for n in files if n.startswith("train"))

    requests = len(server.requests)
    MNIST(tmp_path, train=True, download=True, base_url=server.url + "/mnist", progress=False)
    assert len(server.requests) == requests        # present and verified: not fetched again

    monkeypatch.setenv("MINIRECT_MIRROR", server.url)   # a mirror laid out like the data folder
    test = MNIST(tmp_path, train=False, download=True, progress=False)
    np.testing.assert_array_equal(test.labels, arrays["t10k"][1])


def test_offline_dataset_download_names_the_folder(tmp_path, no_data_env):
    with pytest.raises(DatasetError) as error:
        MNIST(tmp_path, download=True, base_url=refused_url(), progress=False)
    assert str(tmp_path / "mnist") in str(error.value)


def test_cifar10_downloads_and_unpacks_the_archive(server, tmp_path, monkeypatch, no_data_env):
    files, arrays = tiny_cifar()
    members = {f"cifar-10-batches-py/{name}": content for name, content in files.items()}
    members["cifar-10-batches-py/../escaped.txt"] = b"must not be written outside"
    archive = tar_gz_bytes(members)
    server.files["/cifar-10-python.tar.gz"] = archive
    monkeypatch.setattr(CIFAR10, "archive_md5", md5(archive))
    monkeypatch.setattr(CIFAR10, "md5", {name: md5(content) for name, content in files.items()})

    test = CIFAR10(tmp_path, train=False, download=True, base_url=server.url, progress=False)
    np.testing.assert_array_equal(test.images, arrays["test_batch"][0])
    assert not (tmp_path / "escaped.txt").exists()
    assert sorted(os.listdir(tmp_path)) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]


# ----------------------------------------------------------------------------
# Reading MNIST-format files
# ----------------------------------------------------------------------------

def test_mnist_reads_idx_files(tmp_path, monkeypatch, no_data_env):
    files, arrays = tiny_mnist()
    write_files(tmp_path / "mnist", files)
    monkeypatch.setattr(MNIST, "md5", {name: md5(content) for name, content in files.items()})
    train, test = MNIST(tmp_path, train=True), MNIST(tmp_path, train=False)
    assert train.images.shape == (12, 1, 28, 28) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64 and len(train) == 12 and len(test) == 5
    np.testing.assert_array_equal(train.images[:, 0], arrays["train"][0])
    np.testing.assert_array_equal(test.labels, arrays["t10k"][1])
    assert train.classes == tuple("0123456789")
    assert "MNIST(split='train', 12 images of 1x28x28" in repr(train)
    image, label = train[3]
    assert image.shape == (1, 28, 28) and label == arrays["train"][1][3]


def test_root_comes_from_argument_then_env_then_cache(tmp_path, monkeypatch, no_data_env):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_root() == tmp_path / "home" / ".cache" / "minirect"
    monkeypatch.setenv("MINIRECT_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "arg") == tmp_path / "arg"


def test_fashion_mnist_reads_from_minirect_data(tmp_path, monkeypatch, no_data_env):
    files, arrays = tiny_mnist(seed=1)
    write_files(tmp_path / "fashion-mnist", files)
    monkeypatch.setattr(FashionMNIST, "md5", {name: md5(content) for name, content in files.items()})
    monkeypatch.setenv("MINIRECT_DATA", str(tmp_path))
    test = load_dataset("fashion-mnist", "test")
    np.testing.assert_array_equal(test.images[:, 0], arrays["t10k"][0])
    assert test.classes[9] == "Ankle boot"


def test_wrong_checksum_names_the_file_and_both_checksums(tmp_path, no_data_env):
    files, _ = tiny_mnist()
    write_files(tmp_path / "mnist", files)     # valid IDX, but not the published files
    with pytest.raises(DatasetError) as error:
        MNIST(tmp_path, train=True)
    message = str(error.value)
    name = "train-images-idx3-ubyte.gz"
    assert name in message and MNIST.md5[name] in message and md5(files[name]) in message
    assert "download=True" in message


def test_missing_files_say_which_files_go_where(tmp_path, no_data_env):
    with pytest.raises(DatasetError) as error:
        MNIST(tmp_path, train=False)
    message = str(error.value)
    assert str(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz") in message
    assert "t10k-labels-idx1-ubyte.gz" in message and "download=True" in message


def test_truncated_gzip_is_reported_with_its_name(tmp_path, no_data_env):
    files, _ = tiny_mnist()
    files["train-images-idx3-ubyte.gz"] = files["train-images-idx3-ubyte.gz"][:-100]
    write_files(tmp_path / "mnist", files)
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz is not a complete gzip file"):
        MNIST(tmp_path, verify=False)


@pytest.mark.parametrize("problem", ["magic", "size"])
def test_bad_idx_header_is_reported(tmp_path, no_data_env, problem):
    files, arrays = tiny_mnist()
    images = arrays["train"][0]
    if problem == "magic":     # a labels file where images belong
        files["train-images-idx3-ubyte.gz"] = files["train-labels-idx1-ubyte.gz"]
    else:                      # a header that promises more images than the file holds
        header = struct.pack(">4I", 2051, len(images) + 1, 28, 28)
        files["train-images-idx3-ubyte.gz"] = gzip.compress(header + images.tobytes())
    write_files(tmp_path / "mnist", files)
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz"):
        MNIST(tmp_path, verify=False)


# ----------------------------------------------------------------------------
# Reading CIFAR-10 files
# ----------------------------------------------------------------------------

def test_cifar10_reads_pickled_batches(tmp_path, monkeypatch, no_data_env):
    files, arrays = tiny_cifar()
    write_files(tmp_path / "cifar-10-batches-py", files)
    monkeypatch.setattr(CIFAR10, "md5", {name: md5(content) for name, content in files.items()})
    train = CIFAR10(tmp_path, train=True)
    assert train.images.shape == (20, 3, 32, 32) and train.labels.dtype == np.int64
    # Batches are concatenated in order 1..5; each row is the R, G, B planes.
    np.testing.assert_array_equal(train.images[4:8], arrays["data_batch_2"][0])
    np.testing.assert_array_equal(train.labels[:4], arrays["data_batch_1"][1])
    assert len(CIFAR10(tmp_path, train=False)) == 4


def test_cifar10_refuses_a_pickle_that_would_run_code(tmp_path, no_data_env):
    marker = tmp_path / "code-ran"

    class Exploit:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    files, _ = tiny_cifar()
    files["test_batch"] = pickle.dumps(Exploit(), protocol=2)
    write_files(tmp_path / "cifar-10-batches-py", files)
    with pytest.raises(DatasetError, match="test_batch is not a readable CIFAR-10 batch"):
        CIFAR10(tmp_path, train=False, verify=False)
    assert not marker.exists()


def test_cifar10_falls_back_to_the_subset_npz(tmp_path, no_data_env):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (6, 3, 32, 32), dtype=np.uint8),
              "y_train": rng.integers(0, 10, 6).astype(np.uint8),
              "x_test": rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8),
              "y_test": rng.integers(0, 10, 2).astype(np.uint8)}
    np.savez(tmp_path / "cifar10-subset.npz", **arrays)
    with pytest.raises(DatasetError, match="x_train"):       # not minirect's subset
        CIFAR10(tmp_path)
    train = CIFAR10(tmp_path, verify=False)
    np.testing.assert_array_equal(train.images, arrays["x_train"])
    assert train.labels.dtype == np.int64 and "cifar10-subset.npz" in repr(train)


def test_cifar10_missing_everything_explains_the_options(tmp_path, no_data_env):
    with pytest.raises(DatasetError) as error:
        CIFAR10(tmp_path)
    message = str(error.value)
    assert "cifar-10-python.tar.gz" in message and "cifar10-subset.npz" in message
    assert "download=True" in message


# ----------------------------------------------------------------------------
# The embedded digits
# ----------------------------------------------------------------------------

def test_digits_are_embedded_with_a_fixed_split():
    train, validation = Digits(train=True), Digits(train=False)
    assert len(train) == 1397 and len(validation) == 400
    assert train.images.shape == (1397, 1, 8, 8) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64 and len(train.classes) == 10
    assert train.images.max() == 16 and train.images.min() == 0
    # The split must never change: pin its class counts and its first labels.
    assert validation.class_counts().tolist() == [39, 39, 40, 39, 43, 41, 39, 40, 39, 41]
    assert train.class_counts().tolist() == [139, 143, 137, 144, 138, 141, 142, 139, 135, 139]
    assert train.labels[:10].tolist() == list(range(10))
    assert load_dataset("digits", "validation").labels.tolist() == validation.labels.tolist()


def test_digits_checksum_is_documented_and_verified():
    content = datasets_module.DIGITS_FILE.read_bytes()
    assert hashlib.sha256(content).hexdigest() == datasets_module.DIGITS_SHA256
    notes = datasets_module.DIGITS_FILE.with_name("DIGITS.md").read_text()
    assert datasets_module.DIGITS_SHA256 in notes and "CC BY 4.0" in notes


def test_damaged_digits_file_is_rejected(tmp_path, monkeypatch):
    content = bytearray(datasets_module.DIGITS_FILE.read_bytes())
    content[1000] ^= 0xFF
    damaged = tmp_path / "digits.npz"
    damaged.write_bytes(bytes(content))
    monkeypatch.setattr(datasets_module, "DIGITS_FILE", damaged)
    with pytest.raises(DatasetError) as error:
        Digits()
    assert str(damaged) in str(error.value)
    assert datasets_module.DIGITS_SHA256 in str(error.value)
    assert hashlib.sha256(content).hexdigest() in str(error.value)


def test_load_dataset_rejects_unknown_names_and_splits():
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="unknown split"):
        load_dataset("digits", "dev")


# ----------------------------------------------------------------------------
# The loader (runs on NumPy and CuPy)
# ----------------------------------------------------------------------------

def ids_dataset(n):
    """Images whose every pixel holds the sample's index, labels equal to it too."""
    images = np.repeat(np.arange(n, dtype=np.uint8), 4).reshape(n, 1, 2, 2)
    return images, np.arange(n)


def epoch_labels(loader):
    return [batch_y.numpy().tolist() for _, batch_y in loader]


def test_loader_batches_and_drop_last(device):
    images, labels = ids_dataset(10)
    loader = DataLoader(images, labels, batch_size=3, device=device)
    assert len(loader) == 4
    assert [len(y) for y in epoch_labels(loader)] == [3, 3, 3, 1]
    dropping = DataLoader(images, labels, batch_size=3, drop_last=True, device=device)
    assert len(dropping) == 3 and [len(y) for y in epoch_labels(dropping)] == [3, 3, 3]


def test_loader_yields_tensors_on_the_device(device, xp):
    loader = DataLoader(Digits(), batch_size=64, device=device)
    x, y = next(iter(loader))
    assert isinstance(x, minirect.Tensor) and isinstance(y, minirect.Tensor)
    assert backend.dtype(x.dtype) == np.float32 and backend.dtype(y.dtype) == np.int64
    assert x.shape == (64, 1, 8, 8) and x.device == device and y.device == device
    assert backend.device_of(loader.images) == device          # moved once, as a whole
    pixels = x.numpy()
    assert 0.0 <= pixels.min() and pixels.max() <= 1.0          # 0..16 scaled to [0, 1]


def test_shuffle_visits_every_sample_once_per_epoch(device):
    images, labels = ids_dataset(50)
    loader = DataLoader(images, labels, batch_size=8, shuffle=True, seed=1, device=device)
    for _ in range(2):
        batches = list(loader)
        seen = np.concatenate([y.numpy() for _, y in batches])
        assert sorted(seen.tolist()) == list(range(50))
        for x, y in batches:    # images travel with their labels
            np.testing.assert_allclose(x.numpy()[:, 0, 0, 0] * 255, y.numpy(), atol=1e-3)
    assert loader.epoch == 2


def test_shuffle_depends_on_seed_and_epoch_only(device):
    images, labels = ids_dataset(40)

    def two_epochs(seed):
        loader = DataLoader(images, labels, batch_size=16, shuffle=True, seed=seed, device=device)
        return epoch_labels(loader), epoch_labels(loader)

    first, second = two_epochs(7)
    assert two_epochs(7) == (first, second)
    assert first != second                      # a new order every epoch
    assert two_epochs(8)[0] != first
    minirect.seed(3)
    drawn = two_epochs(None)
    minirect.seed(3)
    assert two_epochs(None) == drawn            # seed=None follows minirect.seed


def test_loader_resumes_mid_epoch(device):
    images, labels = ids_dataset(30)
    loader = DataLoader(images, labels, batch_size=4, shuffle=True, seed=5, device=device)
    list(loader)                                 # epoch 0
    batches = iter(loader)                       # epoch 1, stopped after two batches
    next(batches), next(batches)
    state = loader.state_dict()
    assert state["epoch"] == 1 and state["batch"] == 2
    rest = [y.numpy().tolist() for _, y in batches]
    after = epoch_labels(loader)

    resumed = DataLoader(images, labels, batch_size=4, shuffle=True, device=device)
    resumed.load_state_dict(state)
    assert epoch_labels(resumed) == rest
    assert epoch_labels(resumed) == after


def test_loader_saved_during_the_last_batch_resumes_at_the_next_epoch(device):
    images, labels = ids_dataset(12)
    loader = DataLoader(images, labels, batch_size=4, shuffle=True, seed=2, device=device)
    for _ in loader:
        state = loader.state_dict()
    resumed = DataLoader(images, labels, batch_size=4, shuffle=True, device=device)
    resumed.load_state_dict(state)
    assert epoch_labels(resumed) == epoch_labels(loader)


def test_loader_without_shuffle_keeps_the_order(device):
    images, labels = ids_dataset(9)
    loader = DataLoader(images, labels, batch_size=4, device=device)
    assert sum(epoch_labels(loader), []) == list(range(9))


# ----------------------------------------------------------------------------
# Transforms (run on NumPy and CuPy)
# ----------------------------------------------------------------------------

def test_to_float_scales(xp):
    x = xp.asarray(np.array([[[[0, 51, 255]]]], dtype=np.uint8))
    out = ToFloat()(x)
    assert backend.dtype(out.dtype) == np.float32
    np.testing.assert_allclose(backend.to_numpy(out), [[[[0.0, 0.2, 1.0]]]], rtol=1e-6)


def test_mean_subtraction_zeroes_the_per_pixel_mean_of_the_training_set(device):
    train = Digits(train=True)
    mean = per_pixel_mean(train.images, scale=1 / 16)
    assert mean.shape == (1, 8, 8) and mean.dtype == np.float32
    transform = Compose([ToFloat(1 / 16), SubtractMean(mean)])
    loader = DataLoader(train, batch_size=len(train), transform=transform, device=device)
    x, _ = next(iter(loader))
    np.testing.assert_allclose(x.numpy().mean(axis=0), 0.0, atol=1e-6)


def test_normalize_gives_zero_mean_unit_std_per_channel(xp):
    images = np.random.default_rng(0).integers(0, 256, (64, 3, 5, 5), dtype=np.uint8)
    mean, std = per_channel_mean_std(images)
    out = Compose([ToFloat(), Normalize(mean, std)])(xp.asarray(images))
    out = backend.to_numpy(out)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1.0, atol=1e-4)


def test_random_crop_with_padding_keeps_shape_and_cuts_windows(xp):
    images = np.random.default_rng(0).random((16, 3, 6, 6), dtype=np.float32) + 1   # no zeros inside
    out = backend.to_numpy(RandomCrop(6, padding=2)(xp.asarray(images)))
    assert out.shape == images.shape and out.dtype == np.float32
    padded = np.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)))
    windows = [(t, left) for t in range(5) for left in range(5)]
    for i in range(len(images)):
        assert any(np.array_equal(out[i], padded[i, :, t:t + 6, left:left + 6]) for t, left in windows)
    assert len({out[i].tobytes() for i in range(16)}) > 1            # offsets differ between images


def test_crop_without_padding_of_full_size_is_identity(xp):
    images = xp.asarray(np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4))
    np.testing.assert_array_equal(backend.to_numpy(RandomCrop(4)(images)), backend.to_numpy(images))


def test_horizontal_flip_flips(xp):
    images = np.arange(3 * 2 * 2 * 3, dtype=np.float32).reshape(3, 2, 2, 3)
    flipped = backend.to_numpy(RandomHorizontalFlip(p=1.0)(xp.asarray(images)))
    np.testing.assert_array_equal(flipped, images[..., ::-1])
    kept = backend.to_numpy(RandomHorizontalFlip(p=0.0)(xp.asarray(images)))
    np.testing.assert_array_equal(kept, images)


def test_random_transforms_follow_minirect_seed_and_match_numpy(xp):
    images = np.random.default_rng(1).random((32, 3, 8, 8), dtype=np.float32)
    augment = Compose([RandomCrop(8, padding=2), RandomHorizontalFlip()])
    minirect.seed(11)
    first = backend.to_numpy(augment(xp.asarray(images)))
    minirect.seed(11)
    assert np.array_equal(backend.to_numpy(augment(xp.asarray(images))), first)
    minirect.seed(11)
    assert np.array_equal(augment(images), first)             # NumPy draws the same crops and flips
    given = RandomCrop(8, padding=2, rng=np.random.default_rng(0))
    again = RandomCrop(8, padding=2, rng=np.random.default_rng(0))
    assert np.array_equal(backend.to_numpy(given(xp.asarray(images))), again(images))


# ----------------------------------------------------------------------------
# The real datasets, when $MINIRECT_DATA has them
# ----------------------------------------------------------------------------

REAL_DATA = os.environ.get("MINIRECT_DATA")


@pytest.mark.skipif(not (REAL_DATA and Path(REAL_DATA, "mnist").is_dir()),
                    reason="MINIRECT_DATA does not point at the real datasets")
def test_real_datasets_have_the_published_counts():
    mnist_train, mnist_test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    assert mnist_train.images.shape == (60000, 1, 28, 28) and len(mnist_test) == 10000
    assert mnist_train.class_counts().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert mnist_test.class_counts().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

    for split, per_class in (("train", 6000), ("test", 1000)):
        fashion = load_dataset("fashion-mnist", split)
        assert fashion.class_counts().tolist() == [per_class] * 10

    cifar_train, cifar_test = load_dataset("cifar10", "train"), load_dataset("cifar10", "test")
    if "subset" in cifar_train.source:      # the README's array checksums, checked here independently
        assert cifar_train.images.shape == (4000, 3, 32, 32) and len(cifar_test) == 1000
        assert md5(cifar_train.images.tobytes()) == "828ef04e78e73b3f91d38689d95aff0b"
        assert md5(cifar_test.images.tobytes()) == "08fcd6e0cc2f0a0ce079fe06bc46a255"
    else:
        assert len(cifar_train) == 50000 and len(cifar_test) == 10000
        assert cifar_train.class_counts().tolist() == [5000] * 10
    assert cifar_train.labels[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
