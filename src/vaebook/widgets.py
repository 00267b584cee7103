"""Sliders that work in the static book and retrain live in a notebook.

The static book has no kernel. `snapshot_slider` therefore renders one figure per slider stop
while the notebook runs, and puts them in an `ipywidgets.Stack` whose `selected_index` is
`jslink`ed to the slider: the browser switches images itself. A Play button animates the stops.
`live_slider` is the same idea with a kernel: `interact_manual`, so nothing trains until asked.
"""

import io

import ipywidgets as widgets
import matplotlib.pyplot as plt

from .config import is_fast


def figure_png(fig, *, dpi=100):
    """The figure as PNG bytes; the figure is closed so it is not also drawn inline."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def stops(values, fast=2):
    """The stops to precompute: all `values`, or `fast` spread-out ones under VAEBOOK_FAST=1."""
    values = list(values)
    if not values:
        raise ValueError("a slider needs at least one stop")
    if not is_fast() or len(values) <= fast:
        return values
    picks = sorted({round(i * (len(values) - 1) / max(fast - 1, 1)) for i in range(fast)})
    return [values[i] for i in picks]


def snapshot_slider(frames, *, description="value", interval=600):
    """A slider over precomputed figures that works without a kernel.

    frames: a dict {stop label: matplotlib Figure or PNG bytes}, in slider order.
    Returns a VBox (Play button, slider, images); display it as the cell's last expression.
    """
    if not frames:
        raise ValueError("snapshot_slider needs at least one frame")
    labels = list(frames)
    images = [
        widgets.Image(value=f if isinstance(f, bytes) else figure_png(f), format="png")
        for f in frames.values()
    ]
    stack = widgets.Stack(images, selected_index=len(images) - 1)
    slider = widgets.SelectionSlider(
        options=[str(label) for label in labels],
        index=len(labels) - 1,
        description=description,
        continuous_update=True,
        style={"description_width": "initial"},
        layout=widgets.Layout(width="420px"),
    )
    play = widgets.Play(
        min=0, max=len(labels) - 1, value=len(labels) - 1, interval=interval, description="play"
    )
    widgets.jslink((slider, "index"), (stack, "selected_index"))
    widgets.jslink((play, "value"), (slider, "index"))
    return widgets.VBox([widgets.HBox([play, slider]), stack])


def live_slider(fn, **sliders):
    """Show `interact_manual(fn, **sliders)`: move the sliders freely, fn runs on "Run Interact".

    The widget is displayed by the call; nothing is returned, so no stray repr follows it.
    Under VAEBOOK_FAST=1 (the tests) `fn` also runs once, at every slider's smallest setting,
    with its output discarded: a callback that fails fails the notebook's test.
    """
    widgets.interact_manual(fn, **sliders)
    if is_fast():
        run_at_smallest(fn, **sliders)


def run_at_smallest(fn, **sliders):
    """Call fn with each slider at its smallest value (a selection at its first option).

    Figures it opens are closed and what it prints or displays is discarded; an exception is
    raised as is. Returns the keyword arguments it used.
    """
    from IPython.utils.capture import capture_output

    panel = widgets.interactive(fn, {"manual": True}, **sliders)  # builds widgets, runs nothing
    kwargs = {}
    for control in panel.kwargs_widgets:
        if isinstance(control, widgets.FloatLogSlider):
            control.value = control.base**control.min
        elif hasattr(control, "options") and len(control.options):
            control.index = 0
        elif hasattr(control, "min"):
            control.value = control.min
        kwargs[control._kwarg] = control.get_interact_value()
    open_before = set(plt.get_fignums())
    try:
        with capture_output():
            fn(**kwargs)
    finally:
        for number in set(plt.get_fignums()) - open_before:
            plt.close(number)
    return kwargs
