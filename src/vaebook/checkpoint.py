"""Save and load a model's parameters with its architecture, as a plain `.npz` file.

The file holds one array per parameter and a JSON string "__config__"; it is read with
`allow_pickle=False` and written to a temporary file that replaces the target only when
complete, so a crash never leaves a half-written checkpoint behind.
"""

import json
import os
import tempfile
import zipfile

import numpy as np

from .autoencoder import Autoencoder
from .vae import VAE

FORMAT = 1
CLASSES = {"VAE": VAE, "Autoencoder": Autoencoder}


def save(model, path):
    """Write `model` to `path` atomically (a `.npz` suffix is not added; use it yourself)."""
    path = os.fspath(path)
    for name, p in model.params.items():
        if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
            raise ValueError(f"parameter {name} is not a float array, cannot be saved")
        if not np.isfinite(p).all():  # load would refuse it: better not to write it at all
            raise ValueError(f"parameter {name} has NaN or infinite entries, cannot be saved")
    config = json.dumps({"format": FORMAT, **model.config})
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, allow_pickle=False, __config__=np.array(config), **model.params)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _build(config):
    config = dict(config)
    cls = CLASSES[config.pop("class")]
    config.pop("format")
    x_dim, hidden, z_dim = config.pop("x_dim"), tuple(config.pop("hidden")), config.pop("z_dim")
    return cls(x_dim, hidden, z_dim, rng=0, **config)


def load(path, model=None):
    """A model rebuilt from `path`; or, given `model`, its parameters overwritten in place.

    Raises ValueError if the file is not a complete vaebook checkpoint, or if `model`'s
    architecture differs from the saved one.
    """
    path = os.fspath(path)
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not an .npz archive")
        with data:
            arrays = {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise ValueError(
            f"{path} is not a readable vaebook checkpoint (truncated or corrupt?): {err}"
        ) from err
    if "__config__" not in arrays:
        raise ValueError(f"{path} has no '__config__' entry: not a vaebook checkpoint")
    try:
        config = json.loads(str(arrays.pop("__config__")))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: its '__config__' entry is not JSON: {err}") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{path}: unsupported checkpoint format in {config}")
    if config.get("class") not in CLASSES:
        raise ValueError(f"{path}: unknown model class in {config}")
    if model is None:
        try:
            model = _build(config)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: {config} does not describe a model: {err!r}") from err
    elif {**model.config, "format": FORMAT} != config:
        raise ValueError(
            f"{path} holds a {config}, which does not match the model's {model.config}"
        )
    if arrays.keys() != model.params.keys():
        raise ValueError(
            f"{path}: parameter names {sorted(arrays)} do not match {sorted(model.params)}"
        )
    for name, p in model.params.items():
        a = arrays[name]
        if a.shape != p.shape:
            raise ValueError(f"{path}: {name} has shape {a.shape}, model needs {p.shape}")
        if a.dtype.kind != "f" or not np.isfinite(a).all():
            raise ValueError(f"{path}: {name} is not an array of finite floats ({a.dtype})")
    for name, p in model.params.items():
        p[...] = arrays[name]
    return model
