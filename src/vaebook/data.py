"""Data sets as float arrays in [0, 1], one row per image."""

import gzip
import hashlib
import math
import os
import struct
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .checks import float_dtype, whole_number


class Split(NamedTuple):
    """A fixed train/test split: x (N, D) in [0, 1], y (N,) integer labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits(*, test_size=297, dtype=np.float32):
    """scikit-learn's bundled 1797 8x8 digits, pixels scaled from 0..16 to [0, 1].

    The split is fixed (a permutation with seed 0), so every chapter sees the same test digits:
    1500 for training and 297 held out by default. x: (N, 64).
    """
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    if not whole_number(test_size) or not 0 < test_size < len(digits.target):
        raise ValueError(
            f"test_size must be a whole number of images from 1 to {len(digits.target) - 1}, "
            f"got {test_size!r}"
        )
    test_size, dtype = int(test_size), float_dtype(dtype)
    x = (digits.data / 16.0).astype(dtype)  # (1797, 64)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[test_size:], order[:test_size]
    return Split(x[train], y[train], x[test], y[test])


def binarize(x, *, rng=None, threshold=0.5):
    """0/1 pixels: Bernoulli draws with probability x when rng is given, else x > threshold."""
    x = np.asarray(x)
    if x.size and (np.nanmin(x) < 0 or np.nanmax(x) > 1 or np.isnan(x).any()):
        raise ValueError("binarize needs values in [0, 1] without NaN")
    if rng is None:
        return (x > threshold).astype(x.dtype)
    return (np.random.default_rng(rng).random(x.shape) < x).astype(x.dtype)


# --- MNIST and Fashion-MNIST: four idx.gz files, read from a folder or downloaded once ---------

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
NAMES = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}
# Mirrors tried in order; each URL is a folder holding the four FILES.
URLS = {
    "mnist": (
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
    ),
    "fashion": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
URL_ENV = {"mnist": "VAEBOOK_MNIST_URL", "fashion": "VAEBOOK_FASHION_URL"}
# SHA-256 of each file, in the order of FILES, as published (and as pinned in tensorflow/datasets'
# url_checksums). A download must match it, and so must a file already on disk, or else its
# decompressed data must match RAW_REGISTRY: redistributors may rewrite the gzip header (Debian's
# Fashion-MNIST files drop the stored file name and time).
_SHA256 = {
    "mnist": """
        440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609
        3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c
        8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6
        f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6""",
    "fashion": """
        3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84
        a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845
        346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073
        67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5""",
}
REGISTRY = {kind: dict(zip(FILES, h.split(), strict=True)) for kind, h in _SHA256.items()}
# SHA-256 of the decompressed idx data, for copies whose gzip header was rewritten (Debian's
# Fashion-MNIST files): the same pixels and labels, byte for byte, as the published files.
_RAW_SHA256 = {
    "fashion": """
        c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888
        bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9
        5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b
        0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34""",
}
RAW_REGISTRY = {kind: dict(zip(FILES, h.split(), strict=True)) for kind, h in _RAW_SHA256.items()}
# Folders searched after the data folder: Debian's package dataset-fashion-mnist.
SYSTEM_DIRS = {"mnist": (), "fashion": ("/usr/share/datasets/fashion-mnist",)}
FASHION_CLASSES = tuple(
    "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot".split(",")
)
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataMissingError(FileNotFoundError):
    """The data files are not on this machine and could not be downloaded.

    A FileNotFoundError (so an OSError); its message names the folder and the files to put there.
    """


def data_root(data_dir=None):
    """Where data sets live: `data_dir`, else $VAEBOOK_DATA, else the per-user cache folder.

    Each data set has its own subfolder, named like its `kind` ("mnist", "fashion").
    """
    if data_dir is None:
        data_dir = os.environ.get("VAEBOOK_DATA") or _cache_dir()
    return Path(data_dir).expanduser()


def _cache_dir():
    import pooch

    return pooch.os_cache("vaebook")


def parse_idx(raw, *, source="<bytes>"):
    """An idx payload as an array: 2 zero bytes, a type code, ndim, ndim big-endian uint32 sizes,
    then the values in C order. Raises ValueError naming `source` and what is wrong."""
    if len(raw) < 4:
        raise ValueError(f"{source}: {len(raw)} bytes is too short for an idx header")
    if raw[:2] != b"\0\0":
        raise ValueError(f"{source}: bad magic number {raw[:4].hex()} (not an idx file)")
    code, ndim = raw[2], raw[3]
    if code not in IDX_TYPES:
        raise ValueError(f"{source}: unknown idx type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{source}: header declares {ndim} dimensions but is cut short")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_TYPES[code])
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{source}: header promises dimensions {dims} ({expected} bytes of data) but "
            f"{len(raw) - header} bytes follow (truncated file or wrong dimensions)"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path):
    """The array in an idx file, gzipped if its name ends in .gz. ValueError if malformed."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise ValueError(
            f"{path}: not a complete gzip file ({err}); delete it so it can be fetched again"
        ) from err
    return parse_idx(raw, source=str(path))


def load_mnist(
    kind="mnist", *, data_dir=None, download=True, base_url=None, progress=True, dtype=np.float32
):
    """MNIST (LeCun et al. 1998) or Fashion-MNIST (Xiao et al. 2017) as a `Split`.

    x: (60000, 784) and (10000, 784) grey levels scaled from 0..255 to [0, 1]; y: int64 labels.
    Each file is read from `data_root(data_dir) / kind` (for "fashion" also from Debian's
    /usr/share/datasets/fashion-mnist), else downloaded there from `base_url` (default: the
    mirrors in URLS, or $VAEBOOK_MNIST_URL / $VAEBOOK_FASHION_URL) and checked against the
    SHA-256 in REGISTRY. Raises DataMissingError (naming the folder and the four files) when a
    file is missing and cannot be downloaded, ValueError when a file is malformed or a download
    does not match its hash (nothing is saved then).
    """
    if kind not in NAMES:
        raise ValueError(f"kind must be one of {sorted(NAMES)}, got {kind!r}")
    dtype = float_dtype(dtype)
    folder = data_root(data_dir) / kind
    paths = []
    for name in FILES:
        found, rejected = None, []
        for candidate in (d / name for d in (folder, *map(Path, SYSTEM_DIRS[kind]))):
            if candidate.is_file():
                if _verified(kind, name, candidate):
                    found = candidate
                    break
                rejected.append(str(candidate))  # corrupt or changed: look further, keep it
        if found is None:
            try:
                found = _fetch(kind, name, folder, download, base_url, progress)
            except DataMissingError as err:
                if not rejected:
                    raise
                raise ValueError(
                    f"{' and '.join(rejected)} does not match the pinned SHA-256 of {name} "
                    "(a corrupt or changed file), and no good copy could be downloaded "
                    f"({err.args[0].splitlines()[0]}). Delete it so it can be fetched again."
                ) from err
        paths.append(found)
    x_train, y_train = _images_and_labels(*paths[:2])
    x_test, y_test = _images_and_labels(*paths[2:])
    return Split(
        np.divide(x_train.reshape(len(x_train), -1), 255, dtype=dtype),  # (60000, 784)
        y_train.astype(np.int64),
        np.divide(x_test.reshape(len(x_test), -1), 255, dtype=dtype),  # (10000, 784)
        y_test.astype(np.int64),
    )


def _verified(kind, name, path):
    """Whether the file at `path` is the published `name`: its SHA-256, or its data's."""
    blob = Path(path).read_bytes()
    if hashlib.sha256(blob).hexdigest() == REGISTRY[kind][name]:
        return True
    raw_hash = RAW_REGISTRY.get(kind, {}).get(name)
    if raw_hash is None:
        return False
    try:
        raw = gzip.decompress(blob)
    except (EOFError, gzip.BadGzipFile, zlib.error):
        return False
    return hashlib.sha256(raw).hexdigest() == raw_hash


def _images_and_labels(image_path, label_path):
    x, y = read_idx(image_path), read_idx(label_path)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(
            f"{image_path}: expected uint8 images (N, 28, 28), got {x.dtype} {x.shape}"
        )
    if y.dtype != np.uint8 or y.ndim != 1 or len(y) != len(x) or (y > 9).any():
        raise ValueError(
            f"{label_path}: expected {len(x)} uint8 labels 0..9, got {y.dtype} {y.shape}"
        )
    return x, y


def _mirrors(kind, base_url):
    urls = base_url or os.environ.get(URL_ENV[kind]) or URLS[kind]
    urls = (urls,) if isinstance(urls, str) else tuple(urls)
    return [u if u.endswith("/") else u + "/" for u in urls]


def _fetch(kind, name, folder, download, base_url, progress):
    """Download `name` into `folder`, verified against REGISTRY; DataMissingError if impossible."""
    import pooch

    reason, mismatched = "download=False", []
    if download:
        downloader = pooch.HTTPDownloader(progressbar=progress, timeout=60)
        for url in _mirrors(kind, base_url):  # in order, until one serves the right file
            try:
                path = pooch.retrieve(
                    url + name,
                    known_hash=f"sha256:{REGISTRY[kind][name]}",
                    fname=name,
                    path=folder,
                    downloader=downloader,
                )
            # First: requests' errors are OSErrors (offline, refused, HTTP 404), and those for
            # a malformed URL are ValueErrors too, which must not read as a hash mismatch.
            except OSError as err:
                reason = f"{url + name}: {err}"
                continue
            except ValueError as err:  # pooch deleted the download: nothing half-written remains
                mismatched.append(f"{url + name} ({err})")
                continue
            return Path(path)
    if mismatched:
        raise ValueError(
            f"{name} does not match its pinned SHA-256 {REGISTRY[kind][name]} at any mirror "
            f"that served it (corrupt or changed file); nothing was saved in {folder}. Served "
            "by: " + "; ".join(mismatched)
        )
    raise DataMissingError(_missing_message(kind, folder, reason))


def _missing_message(kind, folder, reason):
    where = "\n".join(f"    {folder / name}" for name in FILES)
    extra = ""
    if kind == "fashion":
        extra = " (on Debian/Ubuntu: apt install dataset-fashion-mnist)"
    return (
        f"{NAMES[kind]} is not on this machine and could not be downloaded ({reason}).\n"
        f"Put the four files (from {URLS[kind][0]}) here:\n{where}\n"
        f"or pass data_dir= (or set VAEBOOK_DATA) to a folder with a '{kind}' subfolder "
        f"holding them{extra}."
    )
