"""Finding dataset files on disk, downloading them, and checking them.

Where files are looked for (the first that applies):

1. the ``root=`` folder given to a dataset;
2. the folder named by the environment variable ``MINIRECT_DATA``;
3. the cache folder ``~/.cache/minirect``.

Each of these holds one subfolder per dataset (``mnist/``,
``fashion-mnist/``, ``cifar-10-batches-py/``), the same layout that
``download=True`` creates.

A download can be interrupted at any byte, so three rules keep a half-written
file from ever looking like a dataset:

1. bytes go to a hidden temporary file in the target's folder;
2. that file's MD5 is compared with the published checksum;
3. only then is it renamed onto the final name with ``os.replace``, which is
   atomic: the final name either does not exist or holds the verified file.

Downloads come from the canonical public locations. Pass ``base_url=`` to a
dataset, or set ``MINIRECT_MIRROR`` to a server laid out like the data folder
(``<mirror>/mnist/...``, ``<mirror>/fashion-mnist/...``,
``<mirror>/cifar-10-python.tar.gz``), to fetch them from somewhere else.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

DATA_ENV = "MINIRECT_DATA"
MIRROR_ENV = "MINIRECT_MIRROR"
CACHE_DIR = "~/.cache/minirect"
CHUNK_BYTES = 1 << 20          # read and hash files one MiB at a time
TIMEOUT_SECONDS = 30           # no byte for this long: the download has stalled

# The size in bytes of each published file, by its MD5: a download stops as soon as it
# passes the size of the file it should be, so a wrong or hostile server that sends
# endless bytes cannot fill the disk.
SIZES = {
    "f68b3c2dcbeaaa9fbdd348bbdeb94873": 9912422,      # MNIST train images
    "d53e105ee54ea40749a09fcbcd1e9432": 28881,        # MNIST train labels
    "9fb629c4189551a2d022fa330f9573f3": 1648877,      # MNIST test images
    "ec29112dd5afa0611ce80d1b7f02629c": 4542,         # MNIST test labels
    "8d4fb7e6c68d591d4c3dfef9ec88bf0d": 26421880,     # Fashion-MNIST train images
    "25c81989df183df01b3e8a0aad5dffbe": 29515,        # Fashion-MNIST train labels
    "bef4ecab320f06d8554ea6380940ec79": 4422102,      # Fashion-MNIST test images
    "bb300cfdad3c16e7a12a480ee83cd310": 5148,         # Fashion-MNIST test labels
    "c58f30108f718f92721af3b95e74349a": 170498071,    # CIFAR-10 python archive
}
MAX_BYTES = 1 << 30            # a file whose size is not in SIZES: at most 1 GiB


class DatasetError(RuntimeError):
    """A dataset file is missing, corrupt, or could not be downloaded.

    The message always names the file and says how to fix the problem.
    """


# ----------------------------------------------------------------------------
# Where files live
# ----------------------------------------------------------------------------

def data_root(root=None) -> Path:
    """The folder holding the dataset subfolders: ``root``, else $MINIRECT_DATA, else the cache."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return Path(CACHE_DIR).expanduser()


def resolve_base_url(base_url: str | None, canonical: str, subfolder: str = "") -> str:
    """The URL prefix to download from: ``base_url``, else the mirror, else the canonical one."""
    if base_url:
        return base_url
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        return join_url(mirror, subfolder) if subfolder else mirror
    return canonical


def join_url(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


# ----------------------------------------------------------------------------
# Checksums
# ----------------------------------------------------------------------------

def md5_of_file(path) -> str:
    """Hex MD5 of a file, read in chunks so big files need little memory."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def check_md5(path, expected: str) -> None:
    """Raise ``DatasetError`` unless the file's MD5 equals ``expected``."""
    actual = md5_of_file(path)
    if actual != expected:
        raise DatasetError(
            f"{path} is corrupt or incomplete: its MD5 checksum is {actual}, but the "
            f"original file has {expected}. Delete it and load again with download=True, "
            "or put the original file there."
        )


# ----------------------------------------------------------------------------
# Downloading one file
# ----------------------------------------------------------------------------

def download_file(url: str, path, md5: str, progress: bool = True) -> Path:
    """Download ``url`` to ``path``, verify its MD5, and only then give it its name.

    On any failure (offline, HTTP error, connection dropped, wrong checksum,
    Ctrl-C) the temporary file is removed and nothing is left at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder as the target, so os.replace is a rename on one filesystem.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            _copy_url_to_file(url, out, path, progress, SIZES.get(md5, MAX_BYTES))
        actual = md5_of_file(temporary)
        if actual != md5:
            raise DatasetError(
                f"the file downloaded from {url} has MD5 checksum {actual}, but the original "
                f"has {md5}; nothing was saved to {path}. The server sent a different or "
                "damaged file: try again later, or download the original by hand and put it there."
            )
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
    return path


def _copy_url_to_file(url: str, out, path: Path, progress: bool, limit: int) -> None:
    """Stream ``url`` into the open file ``out``, with a tqdm progress bar; no more than
    ``limit`` bytes, and none after TIMEOUT_SECONDS without one."""
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS)
    except urllib.error.HTTPError as error:
        raise DatasetError(
            f"downloading {url} failed: HTTP {error.code} {error.reason}. Check the URL (base_url= or "
            f"${MIRROR_ENV}), or download the file by hand and put it at {path}."
        ) from error
    except (urllib.error.URLError, OSError) as error:
        raise DatasetError(_offline_message(url, path, error)) from error

    too_big = (f"{url} sends more than the {limit} bytes of the original file; stopped, and "
               f"nothing was saved to {path}. Check the URL (base_url= or ${MIRROR_ENV}), or "
               "download the file by hand and put it there.")
    with response:
        expected_bytes = int(response.headers.get("Content-Length") or 0) or None
        if expected_bytes is not None and expected_bytes > limit:
            raise DatasetError(too_big)
        received = 0
        with tqdm(total=expected_bytes, unit="B", unit_scale=True, desc=path.name,
                  disable=not progress) as bar:
            try:       # read at most one byte past the limit: enough to know it was passed
                while chunk := response.read1(min(CHUNK_BYTES, limit + 1 - received)):
                    received += len(chunk)
                    if received > limit:
                        raise DatasetError(too_big)
                    out.write(chunk)
                    bar.update(len(chunk))
            except TimeoutError:
                raise DatasetError(
                    f"the download of {url} stalled: no data for {TIMEOUT_SECONDS} s after "
                    f"{received} bytes. Nothing was saved to {path}; try again later.") from None
            except (http.client.HTTPException, OSError) as error:
                raise DatasetError(
                    f"the connection broke while downloading {url} ({received} bytes received): "
                    f"{error!r}. Nothing was saved to {path}; try again."
                ) from error
    if expected_bytes is not None and received != expected_bytes:
        raise DatasetError(
            f"downloading {url} stopped after {received} of {expected_bytes} bytes. "
            f"Nothing was saved to {path}; try again."
        )


def _offline_message(url: str, path: Path, error) -> str:
    reason = getattr(error, "reason", error)
    return (
        f"could not reach {url} ({reason}). If this computer is offline, download that file on "
        f"another machine and put it at {path} (or point ${DATA_ENV} at a folder that has it "
        "in the same layout), then load again."
    )


# ----------------------------------------------------------------------------
# Making sure a dataset's files are present
# ----------------------------------------------------------------------------

def ensure_files(folder, checksums: dict, base_url: str, download: bool, what: str,
                 verify: bool = True, progress: bool = True) -> None:
    """Check that every file in ``checksums`` (name -> MD5) is in ``folder``.

    Missing files are downloaded from ``base_url`` when ``download`` is true;
    otherwise the error lists which files to put where. Files already present
    are checked against their MD5 unless ``verify`` is false.
    """
    folder = Path(folder)
    missing = [name for name in checksums if not (folder / name).is_file()]
    if missing and not download:
        raise DatasetError(_missing_message(what, folder, missing, base_url))
    for name in missing:
        download_file(join_url(base_url, name), folder / name, checksums[name], progress)
    if verify:
        for name in checksums:
            if name not in missing:      # fresh downloads were verified already
                check_md5(folder / name, checksums[name])


def _missing_message(what: str, folder: Path, missing: list, base_url: str) -> str:
    listing = "\n".join(f"  {folder / name}" for name in missing)
    return (
        f"{what}: these files are missing:\n{listing}\n"
        f"Put the original files there (they are published at {base_url}), pass root= or set "
        f"${DATA_ENV} to a folder that holds them in the same layout, or load with download=True."
    )
