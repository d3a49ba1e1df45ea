"""The figures every part of the zoo draws: image grids, code-space walks, filters, learning curves, a 2-D code.

zoo.callbacks logs image_grid to TensorBoard; zoo.report draws exports and zoo.experiments draws its models with
the rest, so the same figure looks the same wherever it is made.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def image_grid(images, columns):
    """[n, h, w, 1] images in [0, 1] -> one [1, rows*h, columns*w, 1] image, row-major, n padded with black."""
    images = np.asarray(images, np.float32)
    n, height, width = images.shape[:3]
    rows = -(-n // columns)
    padded = np.zeros((rows * columns, height, width, 1), np.float32)
    padded[:n] = images.reshape(n, height, width, 1)
    grid = padded.reshape(rows, columns, height, width).transpose(0, 2, 1, 3)
    return np.clip(grid.reshape(1, rows * height, columns * width, 1), 0.0, 1.0)


def grid_figure(images, columns, title=None, row_labels=None):
    """Images [n, 28, 28, 1] in [0, 1] as one matplotlib figure of a grid `columns` wide, at 2 pixels per pixel."""
    grid = image_grid(images, columns)[0, ..., 0]
    height, width = grid.shape
    fig = plt.figure(figsize=(width / 40 + (1.2 if row_labels else 0), height / 40 + (0.4 if title else 0)), dpi=80)
    plt.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    plt.xticks([])
    if row_labels:
        rows = len(row_labels)
        plt.yticks([(i + 0.5) * height / rows for i in range(rows)], row_labels, fontsize=8)
    else:
        plt.yticks([])
    plt.box(False)
    if title:
        plt.title(title, fontsize=9)
    return fig


def interpolate(a, b, steps, spherical=False):
    """`steps` codes evenly spaced from a to b (both included), along the line or along the great circle
    (slerp, Shoemake 1985, which keeps the norm of Gaussian codes typical)."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    if not spherical:
        return (1 - t) * a + t * b
    cos = np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def filter_images(weights):
    """Columns of a [784, n] weight matrix as n images, each scaled to [0, 1] by its own extremes."""
    w = np.asarray(weights, np.float32).T
    low, high = w.min(axis=1, keepdims=True), w.max(axis=1, keepdims=True)
    return ((w - low) / np.maximum(high - low, 1e-8)).reshape(-1, 28, 28, 1)


def curves(series, ylabel, title=None):
    """A figure of {label: values per epoch}."""
    fig = plt.figure(figsize=(6, 4), dpi=100)
    for label, values in series.items():
        plt.plot(np.arange(1, len(values) + 1), values, label=label)
    plt.xlabel("epoch")
    plt.ylabel(ylabel)
    if title:
        plt.title(title)
    plt.legend()
    plt.grid(alpha=0.3)
    return fig


def manifold_codes(span=3.0, steps=15):
    """A steps x steps grid of 2-D codes over [-span, span]^2, row-major from the top left (y decreasing)."""
    values = np.linspace(-span, span, steps, dtype=np.float32)
    return np.array([[x, y] for y in values[::-1] for x in values], np.float32)


def latent_layout_figure(codes, labels):
    """Where images land in a 2-D code space, coloured by digit."""
    fig = plt.figure(figsize=(6, 5), dpi=100)
    points = plt.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=3)
    plt.colorbar(points, ticks=range(10), label="digit")
    plt.xlabel("z[0]")
    plt.ylabel("z[1]")
    return fig
