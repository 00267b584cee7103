"""save/load: exact round trips, clear errors, nothing half-written."""

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


def test_checkpoint_is_read_without_pickle(tmp_path):
    save(VAE(4, (3,), 2, rng=0), tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        assert "__config__" in data.files


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
