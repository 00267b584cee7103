"""save/load: exact round trips, clear errors, nothing half-written."""

import json
import os

import numpy as np
import pytest

from vaebook import VAE, Autoencoder, checkpoint, load, save


@pytest.mark.parametrize(
    "make",
    [
        lambda: VAE(6, (5, 4), 3, rng=1, likelihood="gaussian", obs_std=0.5),
        lambda: Autoencoder(6, (5,), 2, rng=1, dtype=np.float64, loss="mse"),
    ],
)
def test_round_trip_is_exact(tmp_path, make):
    model = make()
    path = tmp_path / "model.npz"
    save(model, path)
    again = load(path)
    assert type(again) is type(model) and again.config == model.config
    assert all(np.array_equal(again.params[k], model.params[k]) for k in model.params)
    assert all(again.params[k].dtype == model.params[k].dtype for k in model.params)
    target = make()
    for p in target.params.values():
        p[...] = 0
    assert load(path, model=target) is target
    assert all(np.array_equal(target.params[k], model.params[k]) for k in model.params)


# obs_std values for which exp(0.5 * 2 log(s)) is not a fixed point after one more round trip,
# found by scanning k / 1000 for k < 100_000 (1.9830420843639842 is the review's example): a
# model that rebuilds obs_std from its log-variance reports a different obs_std after a load.
OBS_STD_DRIFTS = (0.253, 1.982, 4.25, 1.9830420843639842)


@pytest.mark.parametrize("obs_std", (0.3, 1.0, 2.0, *OBS_STD_DRIFTS))
def test_gaussian_obs_std_survives_repeated_round_trips(tmp_path, obs_std):
    model = VAE(6, (5,), 3, rng=1, likelihood="gaussian", obs_std=obs_std, dtype=np.float64)
    path = tmp_path / "model.npz"
    save(model, path)
    again = load(path)
    assert load(path, model=again) is again  # a model rebuilt from the file accepts the file
    assert again.config == model.config and model.config["obs_std"] == obs_std  # exactly
    save(again, path)  # and saving it again changes nothing
    assert load(path).config == model.config
    x, eps = np.linspace(0, 1, 12).reshape(2, 6), np.full((2, 3), 0.5)
    assert np.array_equal(again.elbo(x, eps=eps).recon, model.elbo(x, eps=eps).recon)


def test_checkpoint_is_read_without_pickle(tmp_path):
    model = VAE(4, (3,), 2, rng=0)
    save(model, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:  # lazy: read each entry
        arrays = {name: data[name] for name in data.files}  # an object array would raise here
    config = arrays.pop("__config__")
    assert config.dtype.kind == "U" and config.shape == ()  # one plain string
    assert json.loads(str(config)) == {"format": checkpoint.FORMAT, **model.config, "beta": 1.0}
    assert arrays.keys() == model.params.keys()
    assert all(a.dtype == np.float32 for a in arrays.values())


def test_mismatched_architecture_is_a_clear_error(tmp_path):
    save(VAE(6, (5,), 3, rng=0), tmp_path / "m.npz")
    with pytest.raises(ValueError, match="does not match"):
        load(tmp_path / "m.npz", model=VAE(6, (7,), 3, rng=0))
    with pytest.raises(ValueError, match="does not match"):
        load(tmp_path / "m.npz", model=Autoencoder(6, (5,), 3, rng=0))


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "m.npz"
    save(VAE(6, (5,), 3, rng=0), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load(path)


def test_not_a_checkpoint(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="not a vaebook checkpoint"):
        load(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")


def test_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save(VAE(6, (5,), 3, rng=0), path)
    before = path.read_bytes()

    def disk_full(f, **arrays):
        f.write(b"PK\x03\x04 half a file")
        raise OSError("No space left on device")

    monkeypatch.setattr(checkpoint.np, "savez", disk_full)
    with pytest.raises(OSError, match="No space"):
        save(VAE(6, (5,), 3, rng=1), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


def test_non_array_parameter_is_refused(tmp_path):
    model = VAE(6, (5,), 3, rng=1)
    model.params["enc.0.W"] = object()
    with pytest.raises(ValueError, match="enc.0.W is not a float array"):
        save(model, tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_non_finite_parameter_is_refused(tmp_path):
    model = VAE(6, (5,), 3, rng=1)
    model.params["dec.0.b"][1] = np.nan
    with pytest.raises(ValueError, match="dec.0.b has NaN or infinite entries"):
        save(model, tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_damaged_checkpoints_name_the_file_and_the_problem(tmp_path):
    model = VAE(6, (5,), 3, rng=1)
    arrays = dict(model.params)
    config = {"format": checkpoint.FORMAT, **model.config}
    cases = {
        "single.npz": ("single array", None),
        "text.npz": ("not JSON", {"__config__": np.array("{not json"), **arrays}),
        "noclass.npz": (
            "unknown model class",
            {"__config__": np.array(json.dumps({"format": checkpoint.FORMAT})), **arrays},
        ),
        "oldformat.npz": (
            "unsupported checkpoint format",
            {"__config__": np.array(json.dumps({**config, "format": 0})), **arrays},
        ),
        "nokey.npz": (
            "does not describe a model",
            {"__config__": np.array(json.dumps({**config, "x_dim": None})), **arrays},
        ),
        "nan.npz": (
            "dec.0.b is not an array of finite floats",
            {"__config__": np.array(json.dumps(config)), **arrays, "dec.0.b": np.full(5, np.nan)},
        ),
        "ints.npz": (
            "enc.0.b is not an array of finite floats",
            {"__config__": np.array(json.dumps(config)), **arrays, "enc.0.b": np.zeros(5, int)},
        ),
    }
    for name, (problem, content) in cases.items():
        path = tmp_path / name
        with open(path, "wb") as f:  # np.save would add ".npy" to a path without it
            if content is None:
                np.save(f, np.ones(3))
            else:
                np.savez(f, **content)
        with pytest.raises(ValueError, match=problem) as err:
            load(path)
        assert name in str(err.value)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_file_follows_the_umask_like_open(tmp_path, umask):
    old = os.umask(umask)
    try:
        save(VAE(6, (5,), 3, rng=0), tmp_path / "m.npz")
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    mode = os.stat(tmp_path / "m.npz").st_mode & 0o777
    assert mode == 0o666 & ~umask == os.stat(tmp_path / "plain").st_mode & 0o777


def test_unreadable_file_says_permission_denied(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save(VAE(6, (5,), 3, rng=0), path)

    def denied(*args, **kwargs):  # as np.load fails on a file without read permission
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(checkpoint.np, "load", denied)
    with pytest.raises(PermissionError, match=f"cannot read {path}: permission denied"):
        load(path)


def test_read_only_folder_error_names_the_file_asked_for(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    real_open = os.open

    def read_only(name, flags, *args, **kwargs):
        if os.path.dirname(os.fspath(name)) == str(tmp_path) and flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied", os.fspath(name))
        return real_open(name, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(PermissionError) as err:
        save(VAE(6, (5,), 3, rng=0), path)
    assert f"cannot write {path}" in str(err.value) and ".vaebook-tmp" not in str(err.value)
    assert os.listdir(tmp_path) == []


def test_a_save_killed_midway_leaves_nothing_behind_the_next_save(tmp_path):
    """kill -9 during a save: the target is untouched and the next save removes the leftover."""
    import signal
    import subprocess
    import sys

    path = tmp_path / "m.npz"
    save(VAE(6, (5,), 3, rng=0), path)
    before = path.read_bytes()
    script = f"""
import os, signal
import numpy as np
from vaebook import VAE, checkpoint, save

def killed(f, **arrays):
    f.write(b"PK half a file")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)

checkpoint.np.savez = killed
save(VAE(6, (5,), 3, rng=1), {str(path)!r})
"""
    done = subprocess.run([sys.executable, "-c", script], check=False, timeout=120)
    assert done.returncode == -signal.SIGKILL
    left = sorted(os.listdir(tmp_path))
    assert len(left) == 2 and left[0].endswith(".vaebook-tmp")  # the leftover, clearly ours
    assert path.read_bytes() == before  # the checkpoint itself is intact
    save(VAE(6, (5,), 3, rng=2), path)
    assert os.listdir(tmp_path) == ["m.npz"]


def test_another_processes_temporary_file_is_left_alone(tmp_path):
    live = tmp_path / f".m.npz.{os.getppid()}.vaebook-tmp"  # a running process's save
    live.write_bytes(b"in progress")
    unrelated = tmp_path / ".m.npz.notes.vaebook-tmp"
    unrelated.write_bytes(b"not ours")
    save(VAE(6, (5,), 3, rng=0), tmp_path / "m.npz")
    assert live.exists() and unrelated.exists()


def test_beta_is_saved_and_restored(tmp_path):
    model = VAE(6, (5,), 3, rng=0)
    model.beta = 4.0
    save(model, tmp_path / "m.npz")
    assert load(tmp_path / "m.npz").beta == 4.0
    other = VAE(6, (5,), 3, rng=1)
    assert load(tmp_path / "m.npz", model=other) is other and other.beta == 4.0


def test_a_value_too_large_for_the_models_dtype_is_refused(tmp_path):
    model = VAE(6, (5,), 3, rng=0)  # float32
    arrays = {k: p.astype(np.float64) for k, p in model.params.items()}
    arrays["dec.0.b"][0] = 1e300  # finite in float64, inf in float32
    config = json.dumps({"format": checkpoint.FORMAT, **model.config})
    np.savez(tmp_path / "big.npz", __config__=np.array(config), **arrays)
    with pytest.raises(ValueError, match=r"dec\.0\.b holds values up to 1e\+300, beyond"):
        load(tmp_path / "big.npz")
