"""Downloads, against local HTTP servers on 127.0.0.1 only (never the internet):
checksums, falling through mirrors, dropped connections, timeouts, the cache.
"""
import gzip
import hashlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from npgan import data, download
from npgan.data import DataError, load_dataset
from npgan.download import Checksum, cache_dir, download_dataset, verify

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def idx_bytes(a):
    a = np.asarray(a, dtype=np.uint8)
    return bytes([0, 0, 8, a.ndim]) + b"".join(d.to_bytes(4, "big") for d in a.shape) + a.tobytes()


def toy_files(seed=0):
    """{file name: gzip bytes} of a tiny valid MNIST-format set (5 + 2 images)."""
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 256, (5, 28, 28)), rng.integers(0, 10, 5),
              rng.integers(0, 256, (2, 28, 28)), rng.integers(0, 10, 2)]
    return {name: gzip.compress(idx_bytes(a), mtime=0) for name, a in zip(FILES, arrays)}


GOOD = toy_files(0)
TABLE = {name: Checksum(hashlib.md5(body).hexdigest(), None) for name, body in GOOD.items()}


class Server:
    """An HTTP server in a thread. `routes` maps file name -> (mode, body); modes:
    "ok", "404", "drop" (says the full Content-Length, sends half, hangs up) and
    "stall" (sends half, then waits past the client's timeout)."""

    def __init__(self, routes):
        self.routes, self.hits = routes, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                outer.hits.append(name)
                mode, body = outer.routes.get(name, ("404", b""))
                if mode == "404":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "ok":
                    self.wfile.write(body)
                    return
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                if mode == "stall":
                    time.sleep(1.5)
                self.close_connection = True

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads, self.httpd.block_on_close = True, False
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/data/"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(mode="ok", files=GOOD):
        servers.append(Server({name: (mode, body) for name, body in files.items()}))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


@pytest.fixture
def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens: connecting fails at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def get(folder, mirrors, timeout=5):
    return download_dataset("toy", folder, mirrors, TABLE, timeout=timeout, progress=False)


def assert_only(folder, names):
    """The folder holds exactly these files: in particular no leftover .part file."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


def test_download_verifies_and_caches(tmp_path, serve, closed_port_url):
    server = serve()
    assert get(tmp_path, [server.url]) == tmp_path
    assert_only(tmp_path, FILES)
    assert all((tmp_path / n).read_bytes() == GOOD[n] for n in FILES)
    # The second time every file comes from the cache: no request is made at all.
    get(tmp_path, [closed_port_url])
    assert len(server.hits) == 4


def test_wrong_checksum_falls_through_to_next_mirror(tmp_path, serve):
    bad, good = serve(files=toy_files(seed=1)), serve()
    get(tmp_path, [bad.url, good.url])
    assert len(bad.hits) == len(good.hits) == 4
    assert_only(tmp_path, FILES)
    assert all((tmp_path / n).read_bytes() == GOOD[n] for n in FILES)


@pytest.mark.parametrize("mode, timeout", [("drop", 5), ("stall", 0.3)])
def test_dropped_or_stalled_connection_falls_through(tmp_path, serve, mode, timeout):
    broken, good = serve(mode), serve()
    get(tmp_path, [broken.url, good.url], timeout=timeout)
    assert len(broken.hits) == 4
    assert_only(tmp_path, FILES)


def test_all_mirrors_fail_names_each_and_leaves_nothing(tmp_path, serve, closed_port_url):
    dropping, missing = serve("drop"), serve("404")
    mirrors = [dropping.url, missing.url, closed_port_url, "ftp:/not a url"]
    with pytest.raises(DataError) as info:
        get(tmp_path, mirrors)
    message = str(info.value)
    assert message.startswith(f"could not download {FILES[0]} into {tmp_path}; mirrors tried:")
    assert f"{dropping.url}{FILES[0]}: " in message and "dropped" in message
    assert f"{missing.url}{FILES[0]}: HTTP 404" in message
    assert f"{closed_port_url}{FILES[0]}: cannot connect" in message
    assert "ftp:/not a url" in message
    assert_only(tmp_path, [])


def test_corrupt_cached_file_is_fetched_again(tmp_path, serve):
    server = serve()
    get(tmp_path, [server.url])
    (tmp_path / FILES[1]).write_bytes(b"junk")
    with pytest.warns(UserWarning, match="checksum mismatch.*downloading it again"):
        get(tmp_path, [server.url])
    assert server.hits[4:] == [FILES[1]]
    assert (tmp_path / FILES[1]).read_bytes() == GOOD[FILES[1]]


def test_verify_accepts_recompressed_file_by_decompressed_sha256(tmp_path):
    # Like Debian's Fashion-MNIST: other .gz bytes, the same data inside.
    raw = gzip.decompress(GOOD[FILES[0]])
    path = tmp_path / FILES[0]
    path.write_bytes(gzip.compress(raw, compresslevel=1, mtime=123))
    assert verify(path, TABLE[FILES[0]]) is not None  # md5 alone: rejected
    assert verify(path, Checksum(TABLE[FILES[0]].gz_md5, hashlib.sha256(raw).hexdigest())) is None
    reason = verify(path, Checksum("0" * 32, "1" * 64))
    assert "checksum mismatch" in reason and "sha256 of the decompressed bytes" in reason


def test_cache_dir_follows_npgan_data(tmp_path, monkeypatch):
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path))
    assert cache_dir("mnist") == tmp_path / "mnist"
    monkeypatch.delenv("NPGAN_DATA")
    assert cache_dir("mnist").parts[-3:] == (".cache", "npgan", "mnist")


def test_load_dataset_downloads_mnist_into_the_cache(tmp_path, monkeypatch, serve):
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path))
    monkeypatch.setitem(download.MIRRORS, "mnist", (serve().url,))
    monkeypatch.setitem(download.CHECKSUMS, "mnist", TABLE)
    images, labels = load_dataset("mnist", split="all")
    assert images.shape == (7, 784) and labels.shape == (7,)
    assert_only(tmp_path / "mnist", FILES)


def test_mnist_offline_warns_once_and_uses_the_subset(tmp_path, monkeypatch, closed_port_url):
    monkeypatch.setenv("NPGAN_DATA", str(tmp_path))
    monkeypatch.setitem(download.MIRRORS, "mnist", (closed_port_url,))
    with pytest.warns(UserWarning) as record:
        images, _ = load_dataset("mnist", split="test")
    assert len(record) == 1 and "falling back to the bundled" in str(record[0].message)
    assert closed_port_url in str(record[0].message)
    assert images.shape == (500, 784)
    assert_only(tmp_path / "mnist", [])


@pytest.mark.skipif(not data.DEBIAN_FASHION_MNIST.is_dir(),
                    reason="Fashion-MNIST not installed: apt-get install dataset-fashion-mnist")
def test_debian_fashion_mnist_matches_the_checksum_table():
    for name, checksum in download.CHECKSUMS["fashion-mnist"].items():
        assert verify(data.DEBIAN_FASHION_MNIST / name, checksum) is None
