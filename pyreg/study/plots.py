"""Figures of ``pyreg compare`` (matplotlib's object API with the Agg canvas: no display needed).

One colour per model, solid lines for pyreg and dashed for Keras; with several seeds the line is the
mean and the band spans the seeds' minimum to maximum.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .definition import COLORS, SHORT_NAMES

__all__ = ["plot_gap_and_norm", "plot_val_accuracy"]

STYLES = {"pyreg": "-", "keras": "--"}


def _figure(ncols: int = 1):
    FigureCanvasAgg, Figure = matplotlib_figure()

    fig = Figure(figsize=(6.4 * ncols, 4.4), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def matplotlib_figure():
    """(FigureCanvasAgg, Figure), or an ImportError that says which extra brings matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(
            f"pyreg's figures need matplotlib ({e}); install it with: pip install 'pyreg[study]'"
        ) from e
    return FigureCanvasAgg, Figure


def _curves(ax, runs, values) -> int:
    """Draws mean (and min-max band) per (model, framework); returns the number of curves."""
    n = 0
    groups: dict[tuple[str, str], list] = {}
    for r in runs:
        groups.setdefault((r.model, r.framework), []).append(values(r))
    for (model, framework), series in groups.items():
        arr = np.array(series, dtype=float)
        epochs = np.arange(1, arr.shape[1] + 1)
        label = f"{SHORT_NAMES[model]} ({framework})"
        ax.plot(
            epochs,
            arr.mean(0),
            STYLES[framework],
            color=COLORS[model],
            marker="o",
            markersize=3,
            label=label,
        )
        if len(arr) > 1:
            ax.fill_between(
                epochs, arr.min(0), arr.max(0), color=COLORS[model], alpha=0.15, linewidth=0
            )
        n += 1
    ax.set_xlabel("Epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend()
    return n


def plot_val_accuracy(runs, path: Path) -> dict:
    """The study's figure: validation accuracy per epoch, every model, pyreg and Keras."""
    fig, (ax,) = _figure()
    n = _curves(ax, runs, lambda r: r.history["val_accuracy"])
    ax.set_ylabel("Validation accuracy")
    ax.set_title("Validation accuracy: L2 regularisation vs Dropout (MNIST)")
    fig.savefig(path)
    return {"curves": n, "axes": 1}


def plot_gap_and_norm(runs, path: Path) -> dict:
    """Generalisation gap (train - validation accuracy) and the hidden kernel's L2 norm per epoch."""
    fig, (ax1, ax2) = _figure(2)
    n1 = _curves(ax1, runs, lambda r: r.gap)
    ax1.set_ylabel("Training - validation accuracy")
    ax1.set_title("Generalisation gap")
    n2 = _curves(ax2, runs, lambda r: r.kernel_norms)
    ax2.set_ylabel("‖W‖₂ of the hidden layer's kernel")
    ax2.set_title("L2 keeps the weights small")
    fig.savefig(path)
    return {"curves": n1 + n2, "axes": 2}
