"""load_mnist and the idx reader, offline: small fake idx.gz files served on 127.0.0.1."""

import gzip
import hashlib
import http.server
import os
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from vaebook import data
from vaebook.data import DataMissingError, load_mnist, parse_idx, read_idx

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
HAVE_DEBIAN_FASHION = (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file()
# Debian's Fashion-MNIST files are the published ones with the gzip header's file name dropped
# and its time changed; putting back the original times (2017-08-31 10:50:06 and 10:50:27 UTC)
# gives the published files byte for byte, and so lets the real pinned hashes be tested offline.
PUBLISHED_MTIME = {"train": 1504176606, "t10k": 1504176627}


def idx(array, code=0x08):
    """The idx encoding of `array`: 0, 0, type code, ndim, big-endian sizes, big-endian data."""
    array = np.asarray(array)
    dims = np.array(array.shape, dtype=">u4").tobytes()
    return (
        bytes([0, 0, code, array.ndim])
        + dims
        + array.astype(array.dtype.newbyteorder(">")).tobytes()
    )


def fake_files(rng, n_train=6, n_test=4):
    """name -> gzipped idx bytes, and the arrays they hold."""
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    return {name: gzip.compress(idx(a)) for name, a in arrays.items()}, arrays


def sha256(blob):
    return hashlib.sha256(blob).hexdigest()


def pin(monkeypatch, kind, files):
    """Make REGISTRY expect exactly these files' hashes."""
    monkeypatch.setitem(data.REGISTRY, kind, {name: sha256(b) for name, b in files.items()})


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Never touch the real cache, the environment's mirrors or a proxy."""
    monkeypatch.setenv("VAEBOOK_DATA", str(tmp_path / "default-root"))
    monkeypatch.delenv("VAEBOOK_MNIST_URL", raising=False)
    monkeypatch.delenv("VAEBOOK_FASHION_URL", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def server():
    """An HTTP server on an ephemeral port serving `server.files`; `server.hits` counts GETs."""
    files, hits = {}, []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = files.get(self.path, files.get(self.path.rsplit("/", 1)[-1]))  # path, or name
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    httpd.files, httpd.hits = files, hits
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/mnist/"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def dead_url():
    """A URL on 127.0.0.1 where nothing listens (the port was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_download_parses_and_caches(server, monkeypatch, tmp_path, rng):
    files, arrays = fake_files(rng)
    server.files.update(files)
    pin(monkeypatch, "mnist", files)
    split = load_mnist("mnist", data_dir=tmp_path, base_url=server.url, progress=False)
    assert len(server.hits) == 4
    assert split.x_train.shape == (6, 784) and split.x_test.shape == (4, 784)
    assert split.x_train.dtype == np.float32 and split.y_train.dtype == np.int64
    assert np.allclose(split.x_train * 255, arrays["train-images-idx3-ubyte.gz"].reshape(6, -1))
    assert np.array_equal(split.y_test, arrays["t10k-labels-idx1-ubyte.gz"])
    assert sorted(os.listdir(tmp_path / "mnist")) == sorted(files)  # no temporary files left

    again = load_mnist("mnist", data_dir=tmp_path, base_url=server.url, progress=False)
    assert len(server.hits) == 4  # read from the cache, the server was not asked again
    assert np.array_equal(again.x_train, split.x_train)


def test_next_mirror_is_tried_when_one_is_down(server, monkeypatch, tmp_path, rng):
    files, _ = fake_files(rng)
    server.files.update(files)
    pin(monkeypatch, "mnist", files)
    split = load_mnist(
        "mnist", data_dir=tmp_path, base_url=(dead_url(), server.url), progress=False
    )
    assert split.x_train.shape == (6, 784) and len(server.hits) == 4


def test_a_mirror_serving_a_wrong_file_does_not_stop_the_next(server, monkeypatch, tmp_path, rng):
    files, _ = fake_files(rng)
    pin(monkeypatch, "mnist", files)
    server.files.update(files)
    other, _ = fake_files(np.random.default_rng(99))  # what a wrong mirror serves instead
    server.files.update({f"/mnist/wrong/{name}": body for name, body in other.items()})
    wrong = server.url + "wrong/"
    split = load_mnist("mnist", data_dir=tmp_path, base_url=(wrong, server.url), progress=False)
    assert split.x_train.shape == (6, 784)
    assert sum("/wrong/" in h for h in server.hits) == 4  # each file was tried there first


def test_malformed_url_is_not_reported_as_a_hash_mismatch(monkeypatch, tmp_path, rng):
    files, _ = fake_files(rng)
    pin(monkeypatch, "mnist", files)
    with pytest.raises(DataMissingError, match="127.0.0.1:1/mnist/"):
        load_mnist("mnist", data_dir=tmp_path, base_url="127.0.0.1:1/mnist/", progress=False)


def test_wrong_hash_is_refused_and_nothing_is_saved(server, monkeypatch, tmp_path, rng):
    files, _ = fake_files(rng)
    server.files.update(files)
    pin(monkeypatch, "mnist", files)
    monkeypatch.setitem(data.REGISTRY["mnist"], "t10k-images-idx3-ubyte.gz", "0" * 64)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz does not match"):
        load_mnist("mnist", data_dir=tmp_path, base_url=server.url, progress=False)
    left = os.listdir(tmp_path / "mnist")
    assert "t10k-images-idx3-ubyte.gz" not in left
    assert all(name in files for name in left)  # no half-written temporary file either


def test_truncated_download_gives_a_clear_error(server, monkeypatch, tmp_path, rng):
    files, _ = fake_files(rng)
    files["train-images-idx3-ubyte.gz"] = files["train-images-idx3-ubyte.gz"][:-40]
    server.files.update(files)
    pin(monkeypatch, "mnist", files)  # the hash matches: the published file itself is cut short
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: not a complete gzip"):
        load_mnist("mnist", data_dir=tmp_path, base_url=server.url, progress=False)


def test_truncated_local_file_gives_a_clear_error(monkeypatch, tmp_path, rng):
    files, arrays = fake_files(rng)
    short = idx(arrays["t10k-images-idx3-ubyte.gz"])[:-100]  # a valid gzip of a short payload
    files["t10k-images-idx3-ubyte.gz"] = gzip.compress(short)
    pin(monkeypatch, "mnist", files)  # its hash matches: the pinned file itself is cut short
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name, blob in files.items():
        (folder / name).write_bytes(blob)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: header promises"):
        load_mnist("mnist", data_dir=tmp_path, download=False)


GOOD = idx(np.arange(6, dtype=np.uint8).reshape(2, 3))


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00" + GOOD[2:], "bad magic number"),
        (GOOD[:2] + b"\x07" + GOOD[3:], "unknown idx type code 0x07"),
        (GOOD[:3] + b"\x03" + GOOD[4:], "header promises dimensions"),  # wrong number of dims
        (GOOD[:4] + b"\x00\x00\x00\x05" + GOOD[8:], "header promises dimensions"),  # wrong size
        (GOOD[:-1], "truncated file"),
        (GOOD + b"\x00", "wrong dimensions"),
        (GOOD[:2] + b"\x08\x03\x00\x00", "cut short"),
    ],
)
def test_malformed_idx_headers_raise_value_error(raw, problem):
    with pytest.raises(ValueError, match=problem) as err:
        parse_idx(raw, source="some-file.idx")
    assert "some-file.idx" in str(err.value)


def test_idx_round_trip_and_byte_order(tmp_path):
    assert np.array_equal(parse_idx(GOOD), [[0, 1, 2], [3, 4, 5]])
    values = np.array([[-2, 300], [7, -32768]], dtype=np.int16)
    path = tmp_path / "x.idx"
    path.write_bytes(idx(values, code=0x0B))  # stored big-endian, read back as native
    assert np.array_equal(read_idx(path), values)


def test_images_of_the_wrong_shape_are_refused(monkeypatch, tmp_path, rng):
    files, _ = fake_files(rng)
    files["train-images-idx3-ubyte.gz"] = gzip.compress(idx(np.zeros((6, 28, 27), np.uint8)))
    pin(monkeypatch, "mnist", files)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name, blob in files.items():
        (folder / name).write_bytes(blob)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: expected uint8 images"):
        load_mnist("mnist", data_dir=tmp_path, download=False)


@pytest.mark.parametrize("kind", ["mnist", "fashion"])
@pytest.mark.parametrize("download", [True, False])
def test_offline_without_files_names_folder_and_files(kind, download, monkeypatch, tmp_path):
    monkeypatch.setitem(data.SYSTEM_DIRS, kind, ())  # hide Debian's copy of Fashion-MNIST
    with pytest.raises(DataMissingError) as err:
        load_mnist(kind, data_dir=tmp_path, download=download, base_url=dead_url(), progress=False)
    assert isinstance(err.value, OSError)
    message = str(err.value)
    assert str(tmp_path / kind) in message
    assert all(name in message for name in data.FILES)
    assert ("download=False" in message) == (not download)
    assert not list((tmp_path / kind).glob("*"))  # nothing half-written


def test_vaebook_data_and_url_environment_variables(server, monkeypatch, tmp_path, rng):
    files, _ = fake_files(rng)
    server.files.update(files)
    pin(monkeypatch, "mnist", files)
    root = tmp_path / "from-env"
    monkeypatch.setenv("VAEBOOK_DATA", str(root))
    monkeypatch.setenv("VAEBOOK_MNIST_URL", server.url)
    assert data.data_root() == root
    split = load_mnist("mnist", progress=False)  # downloads into $VAEBOOK_DATA/mnist
    assert sorted(os.listdir(root / "mnist")) == sorted(files) and len(server.hits) == 4
    monkeypatch.delenv("VAEBOOK_MNIST_URL")
    again = load_mnist("mnist", download=False)  # and reads it back from there
    assert np.array_equal(again.y_train, split.y_train) and len(server.hits) == 4


needs_debian = pytest.mark.skipif(
    not HAVE_DEBIAN_FASHION, reason="Debian's dataset-fashion-mnist is not installed"
)


def published_bytes(name):
    """Debian's copy of `name` with the gzip header as published (file name and time)."""
    raw = (DEBIAN_FASHION / name).read_bytes()
    mtime = struct.pack("<I", PUBLISHED_MTIME[name.split("-")[0]])
    return b"\x1f\x8b\x08\x08" + mtime + raw[8:10] + name[:-3].encode() + b"\0" + raw[10:]


@needs_debian
def test_real_pinned_hashes_accept_the_published_fashion_files(server, monkeypatch, tmp_path):
    server.files.update({name: published_bytes(name) for name in data.FILES})
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion", ())  # force the download path
    split = load_mnist("fashion", data_dir=tmp_path, base_url=server.url, progress=False)
    assert len(server.hits) == 4 and split.x_train.shape == (60000, 784)
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion", (str(DEBIAN_FASHION),))
    debian = load_mnist("fashion", data_dir=tmp_path / "elsewhere", download=False)
    assert np.array_equal(split.x_test, debian.x_test)  # the same pixels either way
    assert np.array_equal(split.y_train, debian.y_train)


@needs_debian
def test_real_fashion_mnist_from_debian(tmp_path):
    split = load_mnist("fashion", data_dir=tmp_path, download=False)
    assert split.x_train.shape == (60000, 784) and split.x_test.shape == (10000, 784)
    assert split.x_train.dtype == np.float32 and split.y_train.dtype == np.int64
    assert split.x_train.min() == 0 and split.x_train.max() == 1
    assert 0.2 < split.x_train.mean() < 0.4  # grey levels, not a constant or a bad scaling
    assert np.array_equal(np.bincount(split.y_train), [6000] * 10)
    assert np.array_equal(np.bincount(split.y_test), [1000] * 10)


def test_a_corrupt_cached_file_is_refused_and_kept(monkeypatch, tmp_path, rng):
    files, _ = fake_files(rng)
    pin(monkeypatch, "mnist", files)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name, blob in files.items():
        (folder / name).write_bytes(blob)
    other, _ = fake_files(np.random.default_rng(99))  # well-formed idx, but not the pinned file
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(other["train-labels-idx1-ubyte.gz"])
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte\.gz does not match the pinned"):
        load_mnist("mnist", data_dir=tmp_path, download=False)
    # nothing is deleted: the file is the user's to inspect
    assert (folder / "train-labels-idx1-ubyte.gz").read_bytes() == other[
        "train-labels-idx1-ubyte.gz"
    ]


def test_a_corrupt_cached_file_is_replaced_by_a_verified_download(
    server, monkeypatch, tmp_path, rng
):
    files, arrays = fake_files(rng)
    server.files.update(files)
    pin(monkeypatch, "mnist", files)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name, blob in files.items():
        (folder / name).write_bytes(blob)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\0\0\x08\x01" + bytes(8)))
    split = load_mnist("mnist", data_dir=tmp_path, base_url=server.url, progress=False)
    assert np.array_equal(split.y_test, arrays["t10k-labels-idx1-ubyte.gz"])
    assert server.hits == ["/mnist/t10k-labels-idx1-ubyte.gz"]  # only the bad one is fetched


@needs_debian
def test_a_corrupt_cache_does_not_shadow_debians_good_copy(tmp_path):
    folder = tmp_path / "fashion"
    folder.mkdir()
    good = (DEBIAN_FASHION / "t10k-labels-idx1-ubyte.gz").read_bytes()
    labels = np.frombuffer(gzip.decompress(good), np.uint8, offset=8).copy()
    labels[:5] = (labels[:5] + 1) % 10  # five wrong labels, still a well-formed file
    bad = gzip.compress(gzip.decompress(good)[:8] + labels.tobytes())
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(bad)
    split = load_mnist("fashion", data_dir=tmp_path, download=False)
    debian = np.frombuffer(gzip.decompress(good), np.uint8, offset=8)
    assert np.array_equal(split.y_test, debian)  # Debian's labels, not the cache's
    assert (folder / "t10k-labels-idx1-ubyte.gz").read_bytes() == bad  # kept as it was


def test_load_mnist_refuses_a_dtype_that_is_not_float(tmp_path):
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        load_mnist("mnist", data_dir=tmp_path, download=False, dtype=int)
