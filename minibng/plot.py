"""The paper's figures, drawn with matplotlib's object API (no display needed) and saved as PNG.

- :func:`curves`: Figure 1/2/3's layout — one column per group (depth, BPTT length, …), one row per metric
  (training objective, test objective, …), one line per optimizer, against epoch.
- :func:`block_norm_map`: per-block gradient norms, block × epoch, one panel per run: vanishing gradients in a
  deep sigmoid net show as a dark lower half; NG makes every block's step the same size whatever that colour.
- :func:`block_steps`: per-block gradient norms ‖g^i‖ and steps ‖Δx^i‖ every N steps (a
  :class:`~minibng.train.BlockStepRecorder`), one column per run: what NG equalizes is the second row.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .files import atomic_write

__all__ = ["curves", "block_norm_map", "block_steps", "save"]

_LABELS = {"train_loss": "training objective", "test_loss": "test objective", "valid_loss": "validation objective",
           "test_accuracy": "test accuracy", "val_accuracy": "validation accuracy", "train_ppl": "training perplexity",
           "valid_ppl": "validation perplexity", "test_ppl": "test perplexity", "test_error": "test error (%)"}


def save(figure, path):
    """Write ``figure`` to ``path`` as PNG, atomically."""
    FigureCanvasAgg(figure)
    with atomic_write(path) as f:
        figure.savefig(f, format="png", dpi=110, bbox_inches="tight")


def curves(rows, path, metrics=("train_loss", "test_loss"), group="depth", series="optimizer", log_y=False,
           title=None, labels=None):
    """Plot ``metrics`` against epoch from ``rows`` (dicts with ``epoch``, ``group``, ``series`` and the metrics):
    one column per value of ``group`` (one column when ``group`` is None), one row per metric, one line per value
    of ``series``.  Rows of several seeds (or folds) draw the mean over them and a band from the lowest to the
    highest; short curves get markers, so a one-epoch run still shows its points.  ``labels`` names the y axes
    (metric -> text) where the paper's names below do not fit."""
    labels = {**_LABELS, **(labels or {})}
    groups = sorted({row[group] for row in rows}, key=_sort_key) if group else [None]
    names = list(dict.fromkeys(row[series] for row in rows))
    figure = Figure(figsize=(4.2 * len(groups) + 0.6, 3.2 * len(metrics)), layout="constrained")
    axes = figure.subplots(len(metrics), len(groups), squeeze=False, sharex="col")
    colors = {name: f"C{i % 10}" for i, name in enumerate(names)}
    for j, value in enumerate(groups):
        for i, metric in enumerate(metrics):
            ax = axes[i][j]
            for name in names:
                per_epoch = {}
                for r in rows:
                    if (group is None or r[group] == value) and r[series] == name and _finite(r.get(metric)):
                        per_epoch.setdefault(r["epoch"], []).append(r[metric])
                if not per_epoch:
                    continue
                epochs = sorted(per_epoch)
                mean = [float(np.mean(per_epoch[e])) for e in epochs]
                ax.plot(epochs, mean, label=name, color=colors[name], marker="o" if len(epochs) <= 12 else None,
                        markersize=3, linestyle="-" if name.endswith(("ng", "ngadap", "clip")) else "--")
                if any(len(per_epoch[e]) > 1 for e in epochs):
                    ax.fill_between(epochs, [min(per_epoch[e]) for e in epochs], [max(per_epoch[e]) for e in epochs],
                                    color=colors[name], alpha=0.2, linewidth=0)
            if log_y and any(_finite(r.get(metric)) and r[metric] > 0 for r in rows):
                ax.set_yscale("log")
            else:
                ax.ticklabel_format(axis="y", useOffset=False)  # 9.18 on the axis, not 0.001 and "+9.179"
            ax.set_title(f"{group} {value}" if group and i == 0 else "")
            ax.set_ylabel(labels.get(metric, metric) if j == 0 else "")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(True, which="both", alpha=0.3)
        axes[-1][j].set_xlabel("epoch")
    axes[0][-1].legend(fontsize="small", loc="best")
    if title:
        figure.suptitle(title)
    save(figure, path)


def block_norm_map(runs, path, block_names=None, title=r"mean $\|g^i\|$ per block and epoch"):
    """Heat maps of per-block gradient norms: ``runs`` maps a run label to its history (dicts with ``epoch`` and
    ``block_norms``); rows are blocks numbered from 1 (the first layer, at the bottom), columns are epochs, colour
    is log-scaled."""
    labels = list(runs)
    figure = Figure(figsize=(3.4 * len(labels) + 1.2, 3.6), layout="constrained")
    axes = figure.subplots(1, len(labels), squeeze=False)[0]
    maps = [np.array([row["block_norms"] for row in runs[label]], dtype=float).T for label in labels]
    positive = np.concatenate([m[m > 0] for m in maps if m.size]) if maps else np.array([])
    norm = LogNorm(vmin=positive.min(), vmax=positive.max()) if positive.size else None
    image = None
    for ax, label, values in zip(axes, labels, maps):
        if values.size == 0:
            continue
        epochs = [row["epoch"] for row in runs[label]]
        image = ax.imshow(np.where(values > 0, values, np.nan), origin="lower", aspect="auto", norm=norm,
                          cmap="viridis", extent=(epochs[0] - 0.5, epochs[-1] + 0.5, 0.5, values.shape[0] + 0.5))
        ax.set_title(label)
        ax.set_xlabel("epoch")
        ax.set_ylabel("block i (1 = first layer)" if ax is axes[0] else "")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if block_names is not None and len(block_names) <= 20:
            ax.set_yticks(range(1, len(block_names) + 1), block_names, fontsize="x-small")
    if image is not None:
        figure.colorbar(image, ax=list(axes), label=r"$\|g^i\|$ (mean over the epoch's steps)")
    figure.suptitle(title)
    save(figure, path)


STEPS_CAPTION = ("Top: each layer's gradient norm ‖g^i‖; bottom: the length of the step it took, ‖Δx^i‖ = "
                 "‖x^i(t+1) − x^i(t)‖; one line per layer, dark = near the input, each point the mean over {every}. "
                 "Compare the spread of the lines in the two rows: a plain optimizer's steps follow its gradients, "
                 "orders of magnitude apart; NG gives every layer a step of the same size, whatever its ‖g^i‖.")


def block_steps(runs, path, title="gradient norm and step per layer", caption=STEPS_CAPTION):
    """Per-block ‖g^i‖ (top row) and ‖Δx^i‖ (bottom row) against epoch at sub-epoch resolution, one column per run.

    ``runs`` maps a run label to a :class:`~minibng.train.BlockStepRecorder` or its ``records`` (dicts with ``epoch``,
    ``steps``, ``gradient_norms`` and ``step_norms``).  One line per block, coloured from the first (dark) to the last
    (bright), on a log scale shared along each row; values that are 0 or not finite leave a gap, and a run without
    records an empty column.  Short runs get markers, so a run of a few records still shows its points.  ``caption``
    is printed under the panels (``{every}`` becomes "N steps").  Returns the figure, saved to ``path``."""
    labels = list(runs)
    records = {label: list(getattr(runs[label], "records", runs[label])) for label in labels}
    blocks = max((len(r["gradient_norms"]) for rows in records.values() for r in rows), default=0)
    figure = Figure(figsize=(4.6 * len(labels) + 1.4, 6.4), layout="constrained")
    axes = figure.subplots(2, len(labels), squeeze=False, sharex="col", sharey="row")
    colours = colormaps["viridis"]
    shade = Normalize(vmin=1, vmax=max(blocks, 2))
    for j, label in enumerate(labels):
        rows = records[label]
        epochs = np.array([r["epoch"] for r in rows], dtype=float)
        for ax, key in zip(axes[:, j], ("gradient_norms", "step_norms")):
            values = np.array([r[key] for r in rows], dtype=float).reshape(len(rows), -1 if rows else 0)
            values = np.where(np.isfinite(values) & (values > 0), values, np.nan)
            for i in range(values.shape[1]):
                ax.plot(epochs, values[:, i], color=colours(shade(i + 1)), linewidth=1.1,
                        marker="o" if len(rows) <= 60 else None, markersize=2.5)
            if np.isfinite(values).any():
                ax.set_yscale("log")
            ax.set_xlim(0, max(1.0, epochs.max(initial=0)))
            ax.grid(True, which="major", alpha=0.3)
        axes[0][j].set_title(label)
        axes[-1][j].set_xlabel("epoch")
    axes[0][0].set_ylabel(r"gradient norm $\|g^i\|$")
    axes[1][0].set_ylabel(r"step $\|\Delta x^i\|$")
    figure.colorbar(ScalarMappable(shade, colours), ax=list(axes.ravel()), label="layer i (1 = input layer)",
                    ticks=MaxNLocator(integer=True))
    figure.suptitle(title)
    if caption:
        every = max((r.get("steps", 1) for rows in records.values() for r in rows), default=1)
        figure.text(0.01, -0.01, caption.format(every=f"{every} steps"), ha="left", va="top", fontsize="small",
                    wrap=True)
    save(figure, path)
    return figure


def _finite(v):
    return isinstance(v, (int, float)) and math.isfinite(v)


def _sort_key(v):
    return (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))
