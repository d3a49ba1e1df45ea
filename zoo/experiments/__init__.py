"""The assignments' experiments, one command per model family: `python -m zoo.experiments rbm`.

Each experiment trains its models through zoo.train (so every run has its TensorBoard logs and checkpoints), then
writes into one folder: PNG figures, the same figures as TensorBoard images, and README.md, a summary with the
measured numbers. This module holds what they share: the Notebook they write to.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from zoo.callbacks import image_grid  # noqa: E402


class Notebook:
    """An experiment's output folder: figures (PNG and TensorBoard images) and a markdown summary."""

    def __init__(self, out, title):
        self.out = out
        os.makedirs(out, exist_ok=True)
        self.lines = [f"# {title}", ""]
        self.writer = tf.summary.create_file_writer(os.path.join(out, "tensorboard"))
        self.figures = []

    def text(self, *paragraphs):
        for paragraph in paragraphs:
            self.lines += [paragraph, ""]
        self.save()

    def table(self, header, rows):
        self.lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        self.lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
        self.lines.append("")
        self.save()

    def grid(self, name, images, columns, caption, row_labels=None):
        """Images [n, 28, 28, 1] in [0, 1] as one grid, `columns` wide."""
        grid = image_grid(images, columns)[0, ..., 0]
        height, width = grid.shape
        fig = plt.figure(figsize=(width / 40 + (1.2 if row_labels else 0), height / 40), dpi=80)
        plt.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        plt.xticks([])
        if row_labels:
            rows = len(row_labels)
            plt.yticks([(i + 0.5) * height / rows for i in range(rows)], row_labels, fontsize=8)
        else:
            plt.yticks([])
        plt.box(False)
        self.figure(name, fig, caption)

    def figure(self, name, fig, caption):
        """A matplotlib figure: saved as PNG, logged to TensorBoard, shown in the summary."""
        path = os.path.join(self.out, name + ".png")
        fig.savefig(path, bbox_inches="tight")
        plt.close(fig)
        with self.writer.as_default(step=0):
            tf.summary.image(name, tf.io.decode_png(tf.io.read_file(path))[None])
        self.writer.flush()
        self.figures.append(path)
        self.lines += [f"![{name}]({name}.png)", "", caption, ""]
        self.save()

    def save(self):
        with open(os.path.join(self.out, "README.md"), "w") as f:
            f.write("\n".join(self.lines))


def in_batches(function, *arrays, batch_size=1000):
    """function(*batches) over the arrays' rows, 1,000 at a time (memory), outputs concatenated as NumPy."""
    return np.concatenate([np.asarray(function(*(a[s:s + batch_size] for a in arrays)))
                           for s in range(0, len(arrays[0]), batch_size)])


def draw_samples(model, count, seed, per_call=1000):
    """`count` samples of model.sample, 1,000 per call, call i seeded seed + 1000 i."""
    return np.concatenate([np.asarray(model.sample(min(per_call, count - s), seed + s))
                           for s in range(0, count, per_call)])


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
