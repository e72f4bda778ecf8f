"""Downloads are bounded (issue 23, item 8): a mirror that sends endless bytes, or
more than the file it should be, or stops sending, never fills the disk or hangs.

A small HTTP server on 127.0.0.1 plays the bad mirror.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
import time

import pytest

from minirect.data import download
from minirect.data.download import DatasetError

LABELS_MD5 = "d53e105ee54ea40749a09fcbcd1e9432"      # MNIST's train labels: 28,881 bytes
CAP = 50 << 20            # the server gives up after 50 MiB (so the old code ends too)


class _Mirror(http.server.BaseHTTPRequestHandler):
    sent = 0

    def do_GET(self):
        self.send_response(200)
        if self.path == "/announced":                  # says how big it is: too big
            self.send_header("Content-Length", str(10 << 30))
        self.end_headers()
        chunk = b"x" * 65536
        try:
            if self.path == "/stalled":                # a little, then nothing
                self.wfile.write(chunk[:1000])
                self.wfile.flush()
                time.sleep(5)
                return
            while type(self).sent < CAP:              # endless (up to the cap)
                self.wfile.write(chunk)
                type(self).sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving():
    """The bad mirror, on 127.0.0.1, while the block runs; yields its URL."""
    _Mirror.sent = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Mirror)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def mirror():
    with serving() as url:
        yield url


def _nothing_left(folder):
    return [p.name for p in folder.iterdir()] == []


def test_endless_bytes_stop_at_the_expected_size(mirror, tmp_path):
    with pytest.raises(DatasetError, match="more than the 28881 bytes"):
        download.download_file(f"{mirror}/endless", tmp_path / "labels.gz", LABELS_MD5,
                               progress=False)
    time.sleep(0.2)
    assert _Mirror.sent < 4 << 20, f"read {_Mirror.sent} bytes of a 28,881-byte file"
    assert _nothing_left(tmp_path)


def test_a_file_of_unknown_size_is_capped(mirror, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "MAX_BYTES", 1 << 20)
    with pytest.raises(DatasetError, match=f"more than the {1 << 20} bytes"):
        download.download_file(f"{mirror}/endless", tmp_path / "x.bin", "0" * 32, progress=False)
    assert _nothing_left(tmp_path)


def test_an_announced_size_past_the_expected_one_is_refused_before_reading(mirror, tmp_path):
    with pytest.raises(DatasetError, match="more than the 28881 bytes"):
        download.download_file(f"{mirror}/announced", tmp_path / "labels.gz", LABELS_MD5,
                               progress=False)
    assert _nothing_left(tmp_path)


def test_a_stalled_download_stops_with_a_message(mirror, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "TIMEOUT_SECONDS", 0.5)
    start = time.monotonic()
    with pytest.raises(DatasetError, match="stalled: no data for 0.5 s after 1000 bytes"):
        download.download_file(f"{mirror}/stalled", tmp_path / "labels.gz", LABELS_MD5,
                               progress=False)
    assert time.monotonic() - start < 4
    assert _nothing_left(tmp_path)


def test_the_size_table_matches_the_checksum_tables():
    from minirect.data import datasets
    md5s = {*datasets.MNIST.md5.values(), *datasets.FashionMNIST.md5.values(),
            datasets.CIFAR10.archive_md5}
    assert md5s == set(download.SIZES)
