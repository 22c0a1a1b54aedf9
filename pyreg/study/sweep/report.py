"""A sweep's report: turns its trial records (``DIR/trials.jsonl``, see :mod:`.records`) into what
a person would rather look at.

:func:`write_report` writes ``results.csv`` (one row per trial), the figures of :mod:`.figures`
and ``report.md`` (what was run, what it shows, the best cells, pyreg against Keras cell by cell
when Keras trials are present, the trials that failed). :func:`cells` aggregates the seeds of each
cell; the runner's Python API reuses it. A partial sweep (missing cells, failed or diverged trials)
is reported as it stands. Choices are made on the validation set (held out from the training
data); the test accuracy is reported, never used to choose.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from ..._io import write_atomic
from . import figures
from .figures import fmt
from .records import AXES, CELL_KEYS, METRICS, cell_key

__all__ = ["STAT_METRICS", "cells", "latest", "remedies", "spearman", "write_report"]

STAT_METRICS = ("val_accuracy", "gap", "test_accuracy", "train_accuracy")  # aggregated per cell
GROUPS = {  # the four cells of the learning curves: (λ > 0, rate > 0) -> label
    (False, False): "unregularised",
    (True, False): "best L2 only",
    (False, True): "best dropout only",
    (True, True): "best L2 + dropout",
}
FIGURES = {  # file -> alt text
    "heatmap_val_accuracy.png": "mean validation accuracy by L2 factor and dropout rate",
    "heatmap_gap.png": "mean generalisation gap by L2 factor and dropout rate",
    "val_accuracy_vs_l2.png": "validation accuracy against the L2 factor, one line per dropout rate",
    "val_accuracy_vs_dropout.png": "validation accuracy against the dropout rate, one line per λ",
    "learning_curves.png": "train and validation accuracy per epoch of four cells",
}
MAX_LISTED = 20  # failed/diverged trials listed in report.md


def latest(records: list[dict]) -> list[dict]:
    """The records, keeping only the last one of each trial id (a retried trial's newest outcome)."""
    by_id = {r.get("id", i): r for i, r in enumerate(records)}
    return list(by_id.values())


def _stats(values: list[float]) -> dict:
    """mean, std (ddof=1; None with one value), min, max, n; all None (n = 0) without values."""
    if not values:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    a = np.asarray(values, dtype=float)
    std = float(a.std(ddof=1)) if len(a) > 1 else None
    return {
        "mean": float(a.mean()),
        "std": std,
        "min": float(a.min()),
        "max": float(a.max()),
        "n": len(a),
    }


def _order(key: tuple) -> tuple:
    """Sorts cell keys: pyreg first, then by each axis' value (None last)."""
    return (key[0] != "pyreg", key[0], *((v is None, 0 if v is None else v) for v in key[1:]))


def cells(records: list[dict]) -> list[dict]:
    """Aggregates the trials of each cell (a config without its seed; frameworks apart).

    Args:
        records: trial records (:mod:`.records`); a trial id seen twice counts once, its last record.

    Returns:
        One dict per cell, pyreg first, sorted by the axes' values: the cell's config
        (:data:`CELL_KEYS`), "seeds" and "ids" of its "ok" trials, "n_ok", "n_diverged",
        "n_failed", and for each of :data:`STAT_METRICS` (fractions) a dict of "mean", "std"
        (ddof=1, None with one seed), "min", "max", "n" over the "ok" trials.
    """
    groups: dict[tuple, list[dict]] = {}
    for r in latest(records):
        groups.setdefault(cell_key(r["config"]), []).append(r)
    out = []
    for key in sorted(groups, key=_order):
        trials = groups[key]
        ok = [r for r in trials if r.get("status") == "ok" and r.get("metrics")]
        cell = dict(zip(CELL_KEYS, key))
        cell.update(
            seeds=sorted(r["config"].get("seed") for r in ok),
            ids=[r.get("id") for r in ok],
            n_ok=len(ok),
            n_diverged=sum(r.get("status") == "diverged" for r in trials),
            n_failed=sum(r.get("status") == "failed" for r in trials),
        )
        for m in STAT_METRICS:
            cell[m] = _stats([r["metrics"][m] for r in ok if r["metrics"].get(m) is not None])
        out.append(cell)
    return out


def _val(cell: dict) -> float:
    return cell["val_accuracy"]["mean"]


def _ranked(cs: list[dict]) -> list[dict]:
    """Cells with an "ok" trial, best mean validation accuracy first."""
    return sorted((c for c in cs if _val(c) is not None), key=_val, reverse=True)


def remedies(cs: list[dict]) -> dict[str, dict]:
    """{label of :data:`GROUPS`: the group's best cell by mean validation accuracy}, for the groups
    with a cell. Cells with decoupled weight decay belong to none of them."""
    best: dict[str, dict] = {}
    for c in _ranked(cs):
        if not c.get("weight_decay"):
            best.setdefault(GROUPS[(c["l2"] > 0, c["dropout"] > 0)], c)
    return {label: best[label] for label in GROUPS.values() if label in best}


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks of `x` from 0, ties sharing their mean rank."""
    ranks = np.empty(len(x))
    ranks[np.argsort(x, kind="stable")] = np.arange(len(x))
    for v in np.unique(x):
        ranks[x == v] = ranks[x == v].mean()
    return ranks


def spearman(a, b) -> float | None:
    """Spearman's rank correlation of two equally long sequences; None if undefined."""
    ra, rb = _ranks(np.asarray(a, dtype=float)), _ranks(np.asarray(b, dtype=float))
    if len(ra) < 2 or ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def _se(a: dict, b: dict) -> float | None:
    """Standard error of the difference of two means from their seeds' spread (None: one seed)."""
    if a["std"] is None or b["std"] is None:
        return None
    return math.sqrt(a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"])


def _pm(s: dict) -> str:
    """A statistic in percent: "98.41 ± 0.05", just the mean with one seed, "—" without."""
    if s["mean"] is None:
        return "—"
    return f"{s['mean'] * 100:.2f}" + (f" ± {s['std'] * 100:.2f}" if s["std"] is not None else "")


def _describe(c: dict, shown: list[str]) -> str:
    """ "λ = 0.0001, dropout 0.3, units 256": λ, the rate and the other axes in `shown`."""
    parts = [f"λ = {fmt(c['l2'])}", f"dropout {fmt(c['dropout'])}"]
    return ", ".join(parts + [f"{a} {fmt(c[a])}" for a in shown if a not in ("l2", "dropout")])


def _beats(a: dict, b: dict) -> str:
    """How cell `a` compares with cell `b` on validation, judged against the seeds' spread."""
    diff = (_val(a) - _val(b)) * 100
    se = _se(a["val_accuracy"], b["val_accuracy"])
    if se is None:
        return f"{diff:+.2f} pp (one seed in a cell: no spread to judge it against)"
    if se == 0:
        return f"{diff:+.2f} pp (the seeds do not spread)"
    verdict = "beyond" if abs(diff) > 2 * se * 100 else "within"
    return f"{diff:+.2f} pp, {abs(diff) / (se * 100):.1f} standard errors of the difference ({verdict} 2 SE)"


def _write_csv(path: Path, records: list[dict]) -> None:
    """results.csv: one row per trial; missing values empty."""
    config_keys = [*CELL_KEYS, "seed"]
    config_keys += sorted({k for r in records for k in r.get("config", {})} - set(config_keys))
    header = ["id", "status", "reason", *config_keys, *METRICS, "hidden_kernel_norm"]
    header += ["epochs_run", "wall_s", "threads", "host", "pyreg", "isa"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in records:
        metrics, config = r.get("metrics") or {}, r.get("config") or {}
        norms = metrics.get("kernel_norms") or [None]
        history = r.get("history") or {}
        row = [r.get("id"), r.get("status"), r.get("reason"), *(config.get(k) for k in config_keys)]
        row += [*(metrics.get(m) for m in METRICS), norms[0]]
        row += [len(next(iter(history.values()), [])), r.get("wall_s"), r.get("threads")]
        row += [r.get("host"), r.get("pyreg"), r.get("isa")]
        writer.writerow(["" if v is None else v for v in row])
    write_atomic(path, lambda f: f.write(buf.getvalue()), binary=False)


def _write_figures(out: Path, cs: list[dict], records: list[dict], best: dict) -> dict:
    """Draws the figures of one framework's cells into `out`; returns {file: info}."""
    by_id = {r.get("id"): r for r in records}
    chosen = [
        (
            f"{label}: {_describe(c, figures.varying(cs))}",
            [by_id[i].get("history") or {} for i in c["ids"]],
        )
        for label, c in remedies(cs).items()
    ]
    drawn = {
        "heatmap_val_accuracy.png": figures.heatmap(
            cs, "val_accuracy", "Mean validation accuracy (%)", best
        ),
        "heatmap_gap.png": figures.heatmap(
            cs, "gap", "Mean train - validation accuracy (pp)", best, cmap="magma"
        ),
        "val_accuracy_vs_l2.png": figures.curves(cs, "l2", "dropout"),
        "val_accuracy_vs_dropout.png": figures.curves(cs, "dropout", "l2"),
    }
    if chosen:
        drawn["learning_curves.png"] = figures.learning_curves(chosen)
    info = {}
    for name, (png, about) in drawn.items():
        write_atomic(out / name, lambda f, png=png: f.write(png), binary=True)
        info[name] = about
    return info


def _keras_section(cs: list[dict], shown: list[str]) -> tuple[list[str], dict]:
    """The "pyreg against Keras, cell by cell" lines and their numbers."""
    by = {
        fw: {tuple(c[a] for a in AXES): c for c in _ranked(cs) if c["framework"] == fw}
        for fw in ("pyreg", "keras")
    }
    common = [k for k in by["pyreg"] if k in by["keras"]]
    lines = ["## pyreg against Keras, cell by cell", ""]
    if not common:
        lines.append("No cell has finished trials in both frameworks.")
        return lines, {"cells": 0}
    lines += [
        "Difference of the mean validation accuracies (pyreg - Keras) against the standard error of",
        "that difference from both frameworks' seed spread, sqrt(s_p²/n_p + s_k²/n_k).",
        "",
        "| cell | pyreg val acc (%) | Keras val acc (%) | pyreg - Keras (pp) | SE (pp) | verdict |",
        "|---|---|---|---|---|---|",
    ]
    within = 0
    for k in common:
        p, q = by["pyreg"][k], by["keras"][k]
        diff, se = (_val(p) - _val(q)) * 100, _se(p["val_accuracy"], q["val_accuracy"])
        verdict = (
            "— (one seed)"
            if se is None
            else ("within 2 SE" if abs(diff) <= 2 * se * 100 + 1e-9 else "outside")
        )
        within += verdict == "within 2 SE"
        se_text = "—" if se is None else f"{se * 100:.2f}"
        lines.append(
            f"| {_describe(p, shown)} | {_pm(p['val_accuracy'])} | {_pm(q['val_accuracy'])} "
            f"| {diff:+.2f} | {se_text} | {verdict} |"
        )
    best_p = max(common, key=lambda k: _val(by["pyreg"][k]))
    best_k = max(common, key=lambda k: _val(by["keras"][k]))
    rho = spearman([_val(by["pyreg"][k]) for k in common], [_val(by["keras"][k]) for k in common])
    same = "the same cell: the conclusion agrees" if best_p == best_k else "different cells"
    lines += [
        "",
        f"{within} of {len(common)} cells within 2 SE. Do the conclusions agree? Best cell by pyreg: "
        f"{_describe(by['pyreg'][best_p], shown)}; by Keras: {_describe(by['keras'][best_k], shown)} "
        f"({same}). Ranking of the {len(common)} common cells by mean validation accuracy: "
        + (
            "Spearman rho undefined (too few or tied cells)."
            if rho is None
            else f"Spearman rho = {rho:.2f}."
        ),
    ]
    return lines, {
        "cells": len(common),
        "within_2se": within,
        "same_best": best_p == best_k,
        "spearman": rho,
    }


def _findings(cs: list[dict], shown: list[str]) -> str:
    """The "What it shows" paragraph, from the numbers."""
    ranked, groups = _ranked(cs), remedies(cs)
    if not ranked:
        return "No trial finished: there is nothing to show yet."
    best, none = ranked[0], groups.get("unregularised")
    text = []
    if none is None:
        text.append("The sweep has no unregularised cell (λ = 0, dropout 0) to compare against.")
    else:
        text.append(
            f"The unregularised net ({_describe(none, shown)}) reaches {_pm(none['val_accuracy'])}% "
            f"validation accuracy with a generalisation gap (train - validation accuracy) of "
            f"{_pm(none['gap'])} pp."
        )
    text.append(
        f"The best cell on validation is {_describe(best, shown)} ({_pm(best['val_accuracy'])}%, "
        f"test {_pm(best['test_accuracy'])}%, gap {_pm(best['gap'])} pp)."
    )
    if none is best:
        text.append("No regularisation beats the unregularised net on validation in this sweep.")
    elif none is not None:
        text.append(f"It beats the unregularised net by {_beats(best, none)}.")
    both = groups.get("best L2 + dropout")
    single = [groups[g] for g in ("best L2 only", "best dropout only") if g in groups]
    if both is not None and single:
        top = max(single, key=_val)
        verb = "beats" if _val(both) > _val(top) else "does not beat"
        text.append(
            f"The best combination ({_describe(both, shown)}) {verb} the best single remedy "
            f"({_describe(top, shown)}): {_beats(both, top)}."
        )
    return " ".join(text)


def write_report(
    out_dir, records: list[dict], *, title: str | None = None, command: str | None = None
) -> dict:
    """Writes results.csv, the figures and report.md into `out_dir` (each file atomically).

    Args:
        out_dir: the folder (created if needed).
        records: the sweep's trial records, parsed (:mod:`.records`): any statuses, frameworks,
            a partial grid. The figures show the pyreg cells (Keras' when there are none).
        title: report.md's heading; command: the command line that ran the sweep, if known.

    Returns:
        {"trials", "by_status", "cells", "seeds", "figures": {file: info}, "best": [up to 5 cells],
        "keras": numbers of the cell-by-cell comparison or None}.

    Raises:
        ImportError: matplotlib is missing (the message says how to install it).
    """
    out = Path(out_dir)
    records = latest(records)
    _write_csv(out / "results.csv", records)
    cs = cells(records)
    ok = {c["framework"] for c in cs if c["n_ok"]}
    framework = "keras" if ok == {"keras"} else "pyreg"  # the figures' framework
    main = [c for c in cs if c["framework"] == framework]
    ranked = _ranked(main)
    shown = figures.varying(main) or []
    figs = _write_figures(out, main, records, ranked[0]) if ranked else {}
    by_status = {
        s: sum(r.get("status") == s for r in records) for s in ("ok", "diverged", "failed")
    }
    seeds = sorted({r["config"].get("seed") for r in records}, key=lambda v: (v is None, v or 0))
    lines = [f"# {title or 'Sweep report'}", "", "## What was run", ""]
    lines.append(
        f"- Trials: {len(records)} ({', '.join(f'{n} {s}' for s, n in by_status.items())}) "
        f"in {len(cs)} cells, {len(seeds)} seeds ({', '.join(map(str, seeds))})"
    )
    lines.append(f"- Frameworks: {', '.join(sorted({c['framework'] for c in cs}))}")
    for a in AXES:
        values = sorted({c[a] for c in cs}, key=lambda v: (isinstance(v, str), v))
        lines.append(f"- `{a}`: {', '.join(fmt(v) for v in values)}")
    if command:
        lines.append(f"- Command: `{command}`")
    lines += [
        "",
        "Choices are made on the validation set, held out from the training data; the test "
        "accuracy is reported, never used to choose.",
        "",
        "## What it shows",
        "",
        _findings(main, shown),
        "",
        f"## Best cells ({framework})",
        "",
    ]
    head = ["λ", "dropout", *(a for a in shown if a not in ("l2", "dropout"))]
    lines += [
        "| " + " | ".join([*head, "val acc (%)", "test acc (%)", "gap (pp)", "seeds"]) + " |",
        "|" + "---|" * (len(head) + 4),
    ]
    for c in ranked[:5]:
        keys = ["l2", "dropout", *head[2:]]
        row = [*(fmt(c[a]) for a in keys), _pm(c["val_accuracy"]), _pm(c["test_accuracy"])]
        lines.append("| " + " | ".join([*row, _pm(c["gap"]), str(c["n_ok"])]) + " |")
    lines += ["", "## Figures", ""]
    for name, info in figs.items():
        lines += [f"![{FIGURES[name]}]({name})", ""]
        if info.get("left_out"):
            lines += [
                f"Panels left out (more than {figures.MAX_PANELS}): {'; '.join(info['left_out'])}.",
                "",
            ]
    if not figs:
        lines += ["No figures: no trial finished.", ""]
    keras = None
    if any(c["framework"] == "keras" for c in cs):
        section, keras = _keras_section(cs, figures.varying(cs))
        lines += [*section, ""]
    bad = [r for r in records if r.get("status") != "ok"]
    lines += ["## Failed and diverged trials", ""]
    for r in bad[:MAX_LISTED]:
        cfg = r["config"]
        lines.append(
            f"- `{r.get('id')}` {r.get('status')} ({cfg.get('framework')}, "
            f"{_describe(cfg, shown)}, seed {cfg.get('seed')}): {r.get('reason')}"
        )
    if len(bad) > MAX_LISTED:
        lines.append(f"- … and {len(bad) - MAX_LISTED} more (see results.csv)")
    if not bad:
        lines.append("None.")
    text = "\n".join(lines) + "\n"
    write_atomic(out / "report.md", lambda f: f.write(text), binary=False)
    return {
        "trials": len(records),
        "by_status": by_status,
        "cells": len(cs),
        "seeds": seeds,
        "figures": figs,
        "best": ranked[:5],
        "keras": keras,
    }
