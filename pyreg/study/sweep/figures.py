"""Figures of a sweep's report: heatmaps and curves of its cells (matplotlib's object API with the
Agg canvas, through :func:`pyreg.study.plots.matplotlib_figure`: no display needed).

Every function takes cells of one framework, as :func:`pyreg.study.sweep.report.cells` makes them,
and returns ``(png_bytes, info)``; the caller writes the file. Accuracies are drawn in percent.
When axes other than ``l2`` and ``dropout`` take several values, each combination of their values
gets its own panel (at most :data:`MAX_PANELS`; ``info["left_out"]`` names the others). Cells
missing from the grid (a partial sweep) are left blank.
"""

from __future__ import annotations

import io
import math

import numpy as np

from ..plots import matplotlib_figure
from .records import AXES

__all__ = ["MAX_PANELS", "curves", "fmt", "heatmap", "learning_curves", "panels", "varying"]

MAX_PANELS = 6
PANEL_AXES = tuple(a for a in AXES if a not in ("l2", "dropout"))
NAMES = {"l2": "λ", "dropout": "dropout"}


def fmt(value) -> str:
    """An axis value as people write it: 0.0 as "0", 1e-4 as "0.0001", 1e-5 as "1e-05"."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def varying(cells: list[dict]) -> list[str]:
    """The axes (in :data:`AXES` order) that take more than one value among `cells`."""
    return [a for a in AXES if len({c.get(a) for c in cells}) > 1]


def panels(cells: list[dict]) -> tuple[list[dict], list[dict]]:
    """Combinations ``{axis: value}`` of the varying axes other than l2 and dropout: (shown, left out)."""
    others = [a for a in PANEL_AXES if a in varying(cells)]
    combos = [dict(zip(others, t)) for t in sorted({tuple(c[a] for a in others) for c in cells})]
    return combos[:MAX_PANELS], combos[MAX_PANELS:]


def panel_title(combo: dict) -> str:
    """ "units 128, epochs 20" (empty for the single panel of a sweep varying only l2 and dropout)."""
    return ", ".join(f"{a} {fmt(v)}" for a, v in combo.items())


def _in(cell: dict, combo: dict) -> bool:
    return all(cell[a] == v for a, v in combo.items())


def _figure(n: int, width: float, height: float):
    """A figure with `n` panels, at most 3 a row, each `width` x `height` inches."""
    FigureCanvasAgg, Figure = matplotlib_figure()
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(nrows, ncols, i + 1) for i in range(n)]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def heatmap(cells: list[dict], metric: str, label: str, best: dict | None = None, cmap="viridis"):
    """λ (rows, ascending) x dropout rate (columns) of each cell's mean `metric`, in percent.

    Args:
        cells: cells of one framework; those without an "ok" trial are drawn blank, marked.
        metric: a statistic of the cells ("val_accuracy", "gap", ...), a fraction.
        label: the colour bar's label.
        best: the cell to outline (the best on validation), or None.
        cmap: the colour map's name.

    Returns:
        (PNG bytes, {"panels": [titles], "left_out": [titles]}).
    """
    l2s = sorted({c["l2"] for c in cells})
    rates = sorted({c["dropout"] for c in cells})
    shown, left = panels(cells)
    means = [c[metric]["mean"] * 100 for c in cells if c[metric]["mean"] is not None]
    lo, hi = (min(means), max(means)) if means else (0.0, 1.0)
    if hi - lo < 1e-9:  # one value: a range around it, so the colour bar can be drawn
        lo, hi = lo - 0.5, hi + 0.5
    fig, axes = _figure(len(shown), 1.15 * len(rates) + 2.4, 0.7 * len(l2s) + 1.9)
    image = None
    for ax, combo in zip(axes, shown):
        grid = np.full((len(l2s), len(rates)), np.nan)  # (λ, rate), percent
        for c in cells:
            if not _in(c, combo):
                continue
            i, j, s = l2s.index(c["l2"]), rates.index(c["dropout"]), c[metric]
            if s["mean"] is None:
                ax.text(j, i, "no ok\ntrial", ha="center", va="center", fontsize=7, color="grey")
                continue
            grid[i, j] = s["mean"] * 100
            text = f"{s['mean'] * 100:.2f}"
            if s["std"] is not None:
                text += f"\n± {s['std'] * 100:.2f}"
            dark = (grid[i, j] - lo) / (hi - lo) < 0.5  # viridis/magma: light text on dark colours
            color = "white" if dark else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=lo, vmax=hi, aspect="auto")
        if best is not None and _in(best, combo):
            i, j = l2s.index(best["l2"]), rates.index(best["dropout"])
            box_x = [j - 0.5, j + 0.5, j + 0.5, j - 0.5, j - 0.5]
            ax.plot(box_x, [i - 0.5, i - 0.5, i + 0.5, i + 0.5, i - 0.5], color="red", linewidth=3)
        ax.set_xticks(range(len(rates)), [fmt(r) for r in rates])
        ax.set_yticks(range(len(l2s)), [fmt(v) for v in l2s])
        ax.set_xlabel("Dropout rate")
        ax.set_ylabel("L2 factor λ")
        ax.set_title(panel_title(combo), fontsize=9)
    fig.colorbar(image, ax=axes, label=label, shrink=0.9)
    if best is not None:
        fig.suptitle("red outline: the best cell on validation", fontsize=8)
    return _png(fig), {
        "panels": [panel_title(p) for p in shown],
        "left_out": [panel_title(p) for p in left],
    }


def _positions(xs: list, log: bool) -> tuple[np.ndarray, bool]:
    """x positions of the sorted values `xs` and whether the axis is logarithmic. A log axis has
    no 0: λ = 0 is drawn a decade left of the smallest positive λ and labelled "0"."""
    positive = [x for x in xs if x > 0]
    if not log or not positive or len(xs) < 2:
        return np.array(xs, dtype=float), False
    return np.array([x if x > 0 else min(positive) / 10 for x in xs], dtype=float), True


def curves(cells: list[dict], x_axis: str, line_axis: str):
    """Mean validation accuracy against `x_axis` ("l2": log scale; "dropout": linear), one line per
    value of `line_axis`, band = the seeds' min..max.

    Returns:
        (PNG bytes, {"panels": [titles], "left_out": [titles], "lines": n}).
    """
    xs = sorted({c[x_axis] for c in cells})
    lines = sorted({c[line_axis] for c in cells})
    shown, left = panels(cells)
    pos, log = _positions(xs, log=x_axis == "l2")
    fig, axes = _figure(len(shown), 5.6, 4.0)
    for ax, combo in zip(axes, shown):
        for k, value in enumerate(lines):
            y, lo, hi = (np.full(len(xs), np.nan) for _ in range(3))  # percent
            for c in cells:
                s = c["val_accuracy"]
                if _in(c, combo) and c[line_axis] == value and s["mean"] is not None:
                    i = xs.index(c[x_axis])
                    y[i], lo[i], hi[i] = s["mean"] * 100, s["min"] * 100, s["max"] * 100
            color = f"C{k % 10}"
            name = f"{NAMES[line_axis]} = {fmt(value)}"
            ax.plot(pos, y, "-o", color=color, markersize=4, label=name)
            ax.fill_between(pos, lo, hi, where=np.isfinite(y), color=color, alpha=0.15, linewidth=0)
        if log:
            ax.set_xscale("log")
            ax.minorticks_off()
        ax.set_xticks(pos, [fmt(x) for x in xs])
        ax.set_xlabel("L2 factor λ" if x_axis == "l2" else "Dropout rate")
        ax.set_ylabel("Validation accuracy (%)")
        ax.set_title(panel_title(combo), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    info = {"panels": [panel_title(p) for p in shown], "left_out": [panel_title(p) for p in left]}
    return _png(fig), {**info, "lines": len(lines)}


def learning_curves(chosen: list[tuple[str, list[dict]]]):
    """Per epoch, validation (solid) and training accuracy in inference mode (dashed), mean over
    seeds with a min..max band, one colour per cell.

    Args:
        chosen: (label, the histories of the cell's "ok" trials) for each cell to draw.

    Returns:
        (PNG bytes, {"cells": n}).
    """
    fig, (ax,) = _figure(1, 7.5, 4.8)
    for k, (label, histories) in enumerate(chosen):
        color = f"C{k % 10}"
        for key, style, what in (
            ("val_accuracy", "-", "validation"),
            ("train_eval_accuracy", "--", "train"),
        ):
            series = [h[key] for h in histories if h.get(key)]
            if not series:
                continue
            n = min(map(len, series))  # epochs every seed reached
            arr = np.array([s[:n] for s in series], dtype=float) * 100  # (seeds, epochs), percent
            epochs = np.arange(1, n + 1)
            ax.plot(
                epochs,
                arr.mean(0),
                style,
                color=color,
                marker="o",
                markersize=3,
                label=f"{label} ({what})",
            )
            if len(arr) > 1:
                ax.fill_between(
                    epochs, arr.min(0), arr.max(0), color=color, alpha=0.12, linewidth=0
                )
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Accuracy (%)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title("Train (dashed, dropout off) and validation (solid) accuracy", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(fig), {"cells": len(chosen)}
