"""The assignments' experiments, one command per model family: `python -m zoo.experiments rbm`.

Each experiment trains its models through zoo.train (so every run has its TensorBoard logs and checkpoints), then
writes into one folder: PNG figures, the same figures as TensorBoard images, and README.md, a summary with the
measured numbers. This module holds what they share: the Notebook they write to, and batching helpers; the figures are
zoo.figures'.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from zoo.figures import grid_figure  # noqa: E402


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
        self.figure(name, grid_figure(images, columns, row_labels=row_labels), caption)

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


