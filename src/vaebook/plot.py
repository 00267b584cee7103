"""Figures the chapters share. Images are grey with a fixed [0, 1] range, axes are labelled."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

# Okabe & Ito's colour-blind-safe palette (black left out): for lines and groups being compared.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
# Ten digit classes: Okabe-Ito, then grey, black and a dark purple, each with its own marker so
# that no class is told apart by colour alone.
CLASS_COLORS = (*OKABE_ITO, "#999999", "#000000", "#6A3D9A")
CLASS_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">")
CLASS_CMAP = ListedColormap(CLASS_COLORS, name="vaebook_classes")
LINE_STYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 1)), (0, (3, 1, 1, 1, 1, 1)))


def image_grid(images, *, shape=None, ncols=10, titles=None, axes=None, size=1.0):
    """Images (N, D) or (N, h, w) in a grid, grey, with the colour range fixed to [0, 1].

    shape: (h, w) of one image (default: square). Returns the figure.
    """
    images = np.asarray(images)
    if shape is None:
        side = int(round(np.sqrt(images.shape[-1] if images.ndim == 2 else images[0].size)))
        shape = (side, side)
    images = images.reshape(-1, *shape)
    n = len(images)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    if axes is None:
        fig, axes = plt.subplots(
            nrows,
            ncols,
            figsize=(size * ncols, size * nrows + 0.3 * (titles is not None)),
            squeeze=False,
        )
    axes = np.asarray(axes).reshape(-1)
    for i, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if i < n:
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
        else:
            ax.axis("off")
    fig = axes[0].figure
    return fig


def curves(series, *, xlabel="epoch", ylabel="nats", title=None, ax=None, logy=False):
    """Line plot of named series {label: values}; x runs 1..len. Returns the figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    for i, (label, values) in enumerate(series.items()):
        ax.plot(
            np.arange(1, len(values) + 1),
            values,
            label=label,
            color=OKABE_ITO[i % len(OKABE_ITO)],
            ls=LINE_STYLES[i % len(LINE_STYLES)],
        )
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax.figure


def latent_scatter(z, labels, *, ax=None, title=None):
    """2-D codes coloured by digit label, with a legend of the labels. z: (N, 2)."""
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"latent_scatter draws 2-D codes, got shape {z.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    labels = np.asarray(labels)
    for c in np.unique(labels):
        at = labels == c
        ax.scatter(
            *z[at].T,
            s=8,
            color=CLASS_COLORS[int(c) % 10],
            marker=CLASS_MARKERS[int(c) % 10],
            linewidths=0,
            label=str(c),
        )
    ax.legend(
        title="label",
        fontsize=7,
        markerscale=1.5,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
    )
    ax.set(xlabel="$z_1$", ylabel="$z_2$", title=title)
    return ax.figure


def manifold(decode, *, n=15, extent=2.5, shape=None, ax=None):
    """Decode an n x n grid of 2-D codes in [-extent, extent]² and tile the images.

    decode: (n*n, 2) -> (n*n, D), e.g. `model.decode`. Returns the figure.
    """
    grid = np.linspace(-extent, extent, n)
    z1, z2 = np.meshgrid(grid, grid[::-1])  # z2 grows upwards, as on the axis
    images = np.asarray(decode(np.stack([z1.ravel(), z2.ravel()], axis=1)))
    if shape is None:
        side = int(round(np.sqrt(images.shape[1])))
        shape = (side, side)
    h, w = shape
    tiled = images.reshape(n, n, h, w).transpose(0, 2, 1, 3).reshape(n * h, n * w)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(tiled, cmap="gray", vmin=0, vmax=1, extent=(-extent, extent, -extent, extent))
    ax.set(xlabel="$z_1$", ylabel="$z_2$")
    return ax.figure
