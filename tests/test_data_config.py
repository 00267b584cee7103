"""Data loading, binarization, the fast switch, plots and the static-book slider."""

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402

from vaebook import binarize, load_digits, plot, steps  # noqa: E402
from vaebook import widgets as vw


def test_load_digits_split_is_fixed_and_scaled():
    a, b = load_digits(), load_digits()
    assert a.x_train.shape == (1500, 64) and a.x_test.shape == (297, 64)
    assert a.x_train.dtype == np.float32
    assert a.x_train.min() == 0 and a.x_train.max() == 1
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_test, b.y_test)
    assert set(np.unique(a.y_train)) == set(range(10))


def test_binarize(rng):
    x = np.array([[0.0, 0.2, 0.8, 1.0]])
    assert np.array_equal(binarize(x), [[0, 0, 1, 1]])
    draws = binarize(np.full((1, 100_000), 0.3), rng=rng)
    assert set(np.unique(draws)) == {0.0, 1.0} and abs(draws.mean() - 0.3) < 0.01
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        binarize(np.array([2.0]))


def test_steps_follows_the_environment(monkeypatch):
    monkeypatch.setenv("VAEBOOK_FAST", "1")
    assert steps(500, fast=7) == 7
    monkeypatch.setenv("VAEBOOK_FAST", "0")
    assert steps(500, fast=7) == 500
    monkeypatch.delenv("VAEBOOK_FAST")
    assert steps(500) == 500


def test_stops_shrink_under_fast(monkeypatch):
    monkeypatch.setenv("VAEBOOK_FAST", "1")
    assert vw.stops([1, 2, 5, 10, 20], fast=2) == [1, 20]
    assert vw.stops([1, 2, 5, 10, 20], fast=3) == [1, 5, 20]
    monkeypatch.setenv("VAEBOOK_FAST", "0")
    assert vw.stops([1, 2, 5]) == [1, 2, 5]


def test_snapshot_slider_links_slider_to_images(rng):
    frames = {n: plot.image_grid(rng.random((3, 64)) * n / 3) for n in (1, 2, 3)}
    box = vw.snapshot_slider(frames, description="epochs")
    (_play, slider), stack = box.children[0].children, box.children[1]
    assert isinstance(stack, widgets.Stack) and len(stack.children) == 3
    assert slider.options == ("1", "2", "3") and stack.selected_index == 2
    assert all(bytes(img.value).startswith(b"\x89PNG") for img in stack.children)
    assert len({bytes(img.value) for img in stack.children}) == 3  # three different pictures
    with pytest.raises(ValueError):
        vw.snapshot_slider({})


def test_plots_label_their_axes(rng):
    fig = plot.curves({"train": [3, 2, 1]}, ylabel="negative ELBO (nats)")
    assert fig.axes[0].get_xlabel() == "epoch"
    fig = plot.latent_scatter(rng.standard_normal((20, 2)), rng.integers(0, 10, 20))
    assert fig.axes[0].get_xlabel() == "$z_1$"
    fig = plot.manifold(lambda z: np.full((len(z), 64), 0.5), n=4)
    assert fig.axes[0].images[0].get_array().shape == (32, 32)
    with pytest.raises(ValueError, match="2-D"):
        plot.latent_scatter(np.zeros((3, 3)), [0, 1, 2])


def test_live_slider_does_not_run_until_asked(monkeypatch):
    monkeypatch.delenv("VAEBOOK_FAST", raising=False)  # as in the book: only a click runs it
    shown, calls = [], []
    monkeypatch.setattr(widgets.widgets.interaction, "display", shown.append)
    assert vw.live_slider(lambda n: calls.append(n), n=(1, 10)) is None
    assert len(shown) == 1 and calls == []  # displayed, but nothing ran yet
    (slider,) = (c for c in shown[0].children if isinstance(c, widgets.IntSlider))
    (button,) = (c for c in shown[0].children if isinstance(c, widgets.Button))
    assert (slider.min, slider.max, slider.value) == (1, 10, 5)
    button.click()
    assert calls == [5]  # once, with the slider's value
    slider.value = 8
    assert calls == [5]  # moving the slider alone runs nothing
    button.click()
    assert calls == [5, 8]


def _displayed(monkeypatch, module, attribute, fn):
    # the display outputs fn writes, as (data, metadata) pairs
    shown = []
    monkeypatch.setattr(
        module, attribute, lambda data, raw, metadata: shown.append((data, metadata))
    )
    fn()
    return shown


def test_glue_number_writes_what_myst_nb_reads(monkeypatch):
    import IPython.display
    import myst_nb
    import myst_nb.ext.glue

    from vaebook import pages

    values = {"a": 0.5, "b": 3, "c": "text", "d": 2.5}
    ours = _displayed(
        monkeypatch,
        IPython.display,
        "display",
        lambda: (
            pages.glue_number("a", np.float32(0.5)),
            pages.glue_numbers(b=np.int64(3), c="text", d=np.array(2.5)),
        ),
    )
    theirs = _displayed(
        monkeypatch,
        myst_nb.ext.glue,
        "ipy_display",
        lambda: [myst_nb.glue(name, value, display=False) for name, value in values.items()],
    )
    assert ours == theirs  # the same outputs as myst-nb's own glue, so the pages read them
    assert [data["application/papermill.record/text/plain"] for data, _ in ours] == [
        "0.5",
        "3",
        "'text'",
        "2.5",
    ]  # plain Python reprs that `:.2f` can format, not "np.float32(0.5)"


def test_live_slider_runs_its_callback_once_at_the_smallest_settings_under_test(monkeypatch):
    monkeypatch.setenv("VAEBOOK_FAST", "1")
    monkeypatch.setattr(widgets.widgets.interaction, "display", lambda w: None)
    calls = []

    def callback(n, lr, kind, flag):
        calls.append((n, lr, kind, flag))
        plt.figure()  # closed again by run_at_smallest
        print("discarded")

    opened = len(plt.get_fignums())
    vw.live_slider(
        callback,
        n=(3, 10),
        lr=widgets.FloatLogSlider(value=1e-2, base=10, min=-4, max=-1),
        kind=["b", "a"],
        flag=True,
    )
    assert calls == [(3, pytest.approx(1e-4), "b", True)]
    assert len(plt.get_fignums()) == opened


def test_a_failing_live_slider_callback_fails_under_test(monkeypatch):
    monkeypatch.setenv("VAEBOOK_FAST", "1")
    monkeypatch.setattr(widgets.widgets.interaction, "display", lambda w: None)

    def broken(epochs):
        raise ZeroDivisionError(f"no steps at epochs={epochs}")

    with pytest.raises(ZeroDivisionError, match="epochs=1"):
        vw.live_slider(broken, epochs=(1, 200, 1))


@pytest.mark.parametrize("test_size", [0.2, 297.5, True, "297"])
def test_load_digits_wants_a_whole_number_of_test_images(test_size):
    with pytest.raises(ValueError, match="test_size must be a whole number"):
        load_digits(test_size=test_size)
    assert len(load_digits(test_size=297.0).x_test) == 297  # a whole float is fine
