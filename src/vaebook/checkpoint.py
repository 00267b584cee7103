"""Save and load a model's parameters with its architecture, as a plain `.npz` file.

The file holds one array per parameter and a JSON string "__config__" (the architecture, the
model's `config`, and its KL weights: `beta`, and a hierarchy's `top_scale` and `free_bits`);
it is read with `allow_pickle=False` and written to a temporary file that
replaces the target only when complete, so a crash never leaves a half-written checkpoint.
"""

import contextlib
import json
import os
import zipfile

import numpy as np

from .autoencoder import Autoencoder
from .cvae import ConditionalVAE
from .diffusion import Diffusion
from .flows import AmortizedFlowVAE, FlowVAE
from .hvae import HierarchicalVAE
from .m2 import M2, Classifier
from .vae import VAE

FORMAT = 1
TMP_SUFFIX = ".vaebook-tmp"
# Each class's `config` holds exactly its constructor's arguments (but rng): `cls(**config)`.
CLASSES = {
    cls.__name__: cls
    for cls in (
        VAE,
        Autoencoder,
        ConditionalVAE,
        M2,
        Classifier,
        FlowVAE,
        AmortizedFlowVAE,
        Diffusion,
        HierarchicalVAE,
    )
}
# Attributes set after construction that a checkpoint keeps, with the value a file without them
# gets (beta was not saved at first; the others came with the hierarchical VAE).
STATE = {"beta": 1.0, "top_scale": 1.0, "free_bits": 0.0}


def save(model, path):
    """Write `model` (and its `beta`, `top_scale`, `free_bits`, if it has them) atomically.

    `model` is one of the classes in `CLASSES` (not a subclass: load could not rebuild it).

    A `.npz` suffix is not added; use it yourself. The file gets the permissions `open` would
    give it (0666 less the umask). The temporary file is `.<name>.<pid>.vaebook-tmp` beside the
    target; one left by a killed process is removed by the next save to the same target.
    """
    path = os.fspath(path)
    if type(model) not in CLASSES.values():
        raise TypeError(
            f"save cannot write a {type(model).__name__}: it saves only {', '.join(CLASSES)} "
            "(write another object's parameters with np.savez)"
        )
    for name, p in model.params.items():
        if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
            raise ValueError(f"parameter {name} is not a float array, cannot be saved")
        if not np.isfinite(p).all():  # load would refuse it: better not to write it at all
            raise ValueError(f"parameter {name} has NaN or infinite entries, cannot be saved")
    state = {name: getattr(model, name) for name in STATE if hasattr(model, name)}
    for name, value in state.items():
        if not _finite_number(value):  # load would refuse it
            raise ValueError(f"{name} must be a finite number to be saved, got {value!r}")
    state = {name: float(value) for name, value in state.items()}
    config = json.dumps({"format": FORMAT, **model.config, **state})
    folder, base = os.path.split(os.path.abspath(path))
    _remove_stale_temporaries(folder, base)
    tmp = os.path.join(folder, f".{base}.{os.getpid()}{TMP_SUFFIX}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # the umask applies
    except OSError as err:
        raise type(err)(err.errno, f"cannot write {path}: {err.strerror} in {folder}") from err
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, allow_pickle=False, __config__=np.array(config), **model.params)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _remove_stale_temporaries(folder, base):
    """Delete `.<base>.<pid>.vaebook-tmp` files whose process no longer runs."""
    prefix = f".{base}."
    try:
        names = os.listdir(folder)
    except OSError:
        return  # the write below reports the folder's problem
    for name in names:
        pid = name[len(prefix) : -len(TMP_SUFFIX)]
        if not (name.startswith(prefix) and name.endswith(TMP_SUFFIX) and pid.isdigit()):
            continue
        if int(pid) == os.getpid() or _running(int(pid)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, name))


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by someone else
        return True
    return True


def _finite_number(value):
    return (
        isinstance(value, int | float | np.number)
        and not isinstance(value, bool | np.bool_)
        and bool(np.isfinite(value))
    )


def _build(config):
    args = {k: v for k, v in config.items() if k not in ("class", "format")}
    return CLASSES[config["class"]](rng=0, **args)


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
    except PermissionError as err:
        raise PermissionError(err.errno, f"cannot read {path}: permission denied") from err
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        if isinstance(err, FileNotFoundError | IsADirectoryError):
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
    if not isinstance(config.get("class"), str) or config["class"] not in CLASSES:
        raise ValueError(f"{path}: unknown model class in {config}")
    state = {name: config.pop(name, default) for name, default in STATE.items()}
    for name, value in state.items():
        if not _finite_number(value):
            raise ValueError(f"{path}: {name} must be a finite number, got {value!r}")
    if model is None:
        try:
            model = _build(config)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: {config} does not describe a model: {err!r}") from err
        if {**model.config, "format": FORMAT} != config:  # e.g. hidden 5, not [5]; dtype "float"
            raise ValueError(
                f"{path}: {config} does not describe a model: it builds a {model.config}"
            )
    elif type(model) not in CLASSES.values() or {**model.config, "format": FORMAT} != config:
        described = getattr(model, "config", f"{type(model).__name__}, which load cannot fill")
        raise ValueError(f"{path} holds a {config}, which does not match the model's {described}")
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
        if np.abs(a).max(initial=0) > np.finfo(p.dtype).max:
            raise ValueError(
                f"{path}: {name} holds values up to {np.abs(a).max():.3g}, beyond what the "
                f"model's {p.dtype} can hold ({np.finfo(p.dtype).max:.3g}): they would become inf"
            )
    for name, p in model.params.items():
        p[...] = arrays[name]
    for name, value in state.items():
        if hasattr(model, name):
            setattr(model, name, float(value))
    return model
