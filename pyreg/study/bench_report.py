"""``pyreg bench-report RESULTS.json``: charts and a Markdown table from pytest-benchmark's JSON.

Produce the JSON with ``pytest bench --benchmark-json RESULTS.json``. Within each group the
implementations (``impl`` parameter: pyreg, numpy, keras, ...) are compared by their median time:
the speed-up versus Keras (and NumPy) is the ratio of medians measured in that same run.
"""

from __future__ import annotations

import json
from pathlib import Path

from .._io import write_atomic

__all__ = ["compact_record", "load_results", "make_report"]


def load_results(path) -> list[dict]:
    """The benchmarks of a pytest-benchmark JSON file, checked."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no benchmark results at {path} (run: pytest bench --benchmark-json {path})"
        )
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a JSON file ({e})") from e
    benches = data.get("benchmarks") if isinstance(data, dict) else None
    if not isinstance(benches, list):
        raise ValueError(f"{path} is not pytest-benchmark output (no 'benchmarks' list)")
    usable = [
        b
        for b in benches
        if isinstance(b, dict) and isinstance(b.get("stats"), dict) and "median" in b["stats"]
    ]
    if not usable:
        raise ValueError(f"{path} holds no timed benchmarks (was it run with --benchmark-disable?)")
    return usable


def _impl(bench: dict) -> str:
    params = bench.get("params") or {}
    return str(params.get("impl", bench.get("param") or bench["name"]))


def _fmt_time(s: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e3), ("µs", 1e6)):
        if s * scale >= 1:
            return f"{s * scale:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def _phases(value) -> list[dict[str, float]] | None:
    """extra_info["phases_us_per_step"] (pyreg.profiling: one {phase: µs} per thread) when well formed."""
    if not isinstance(value, list) or not value:
        return None
    ok = all(
        isinstance(t, dict) and all(isinstance(v, (int, float)) for v in t.values()) for t in value
    )
    return value if ok else None


def summarise(benches: list[dict]) -> dict[str, list[dict]]:
    """Per group: rows with impl, median, iqr, rounds, speed-ups versus keras and numpy (same run)."""
    groups: dict[str, list[dict]] = {}
    for b in benches:
        groups.setdefault(b.get("group") or b["name"], []).append(b)
    out = {}
    for group, items in sorted(groups.items()):
        medians = {_impl(b): b["stats"]["median"] for b in items}
        rows = []
        for b in items:
            impl, med = _impl(b), b["stats"]["median"]
            extra = b.get("extra_info") or {}
            rows.append({
                "impl": impl,
                "median": med,
                "iqr": b["stats"].get("iqr", 0.0),
                "rounds": b["stats"].get("rounds"),
                "vs_keras": medians["keras"] / med if "keras" in medians else extra.get("speedup_vs_keras"),
                "vs_numpy": medians["numpy"] / med if "numpy" in medians else extra.get("speedup_vs_numpy"),
                "rate": (extra.get("gflops") and f"{extra['gflops']:.1f} GFLOP/s") or (extra.get("gbps") and f"{extra['gbps']:.1f} GB/s"),
                "accuracy": extra.get("val_accuracy"),
                "phases": _phases(extra.get("phases_us_per_step")),
            })  # fmt: skip
        out[group] = sorted(rows, key=lambda r: r["median"])
    return out


def _markdown(summary: dict[str, list[dict]], source: str) -> str:
    lines = [f"# Benchmark report ({source})", "",
             "| group | impl | median | IQR | rounds | speed-up vs Keras | vs NumPy | rate | val acc |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for group, rows in summary.items():
        for r in rows:
            lines.append("| " + " | ".join([
                group, r["impl"], _fmt_time(r["median"]), _fmt_time(r["iqr"]) if r["iqr"] else "0",
                str(r["rounds"]), f"{r['vs_keras']:.1f}x" if r["vs_keras"] else "—",
                f"{r['vs_numpy']:.1f}x" if r["vs_numpy"] else "—", r["rate"] or "—",
                f"{r['accuracy']:.4f}" if r["accuracy"] is not None else "—"]) + " |")  # fmt: skip
    lines += ["", "![speed-up per group](speedup.png)", ""]
    profiled = [(group, r) for group, rows in summary.items() for r in rows if r["phases"]]
    if profiled:
        from ..profiling import format_profile

        lines += ["## Where the time goes", "",
                  "One more epoch of each pyreg benchmark with the trainer's phase clock on (`pyreg.profiling`):",
                  "microseconds per training step, per thread and phase.", ""]  # fmt: skip
        for group, r in profiled:
            lines += [f"### {group}, {r['impl']}", "", format_profile(r["phases"]), ""]
    return "\n".join(lines)


def _chart(summary: dict[str, list[dict]], path: Path) -> int:
    """Horizontal bars: per group, each implementation's speed-up over the slowest baseline present."""
    from .plots import matplotlib_figure

    FigureCanvasAgg, Figure = matplotlib_figure()
    labels, values, colors = [], [], []
    palette = {"pyreg": "tab:blue", "keras": "tab:orange", "numpy": "tab:green"}
    for group, rows in summary.items():
        base = next((r["median"] for r in rows if r["impl"] == "keras"), None) or max(
            r["median"] for r in rows
        )
        for r in rows:
            labels.append(f"{group} — {r['impl']}")
            values.append(base / r["median"])
            colors.append(palette.get(r["impl"].split("-")[0], "tab:gray"))
    fig = Figure(figsize=(9, 0.32 * len(labels) + 1.2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.barh(range(len(values)), values, color=colors)
    ax.set_yticks(range(len(values)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel(
        "speed-up versus Keras (or the slowest implementation) in the same run, log scale"
    )
    ax.set_title("pyreg benchmarks: speed-up per group")
    fig.savefig(path)
    return len(values)


# the end-to-end groups the README shows; the kernels' rows stay in report.md
README_GROUPS = ("epoch", "predict", "sweep")


def readme_table(done: dict, source, readme=None) -> str:
    """The README's benchmark block: the end-to-end groups' medians and speed-ups (the kernels'
    rows are in the full report.md beside the record); paths relative to the README's folder."""
    import os

    out = Path(
        os.path.relpath(done["out"], Path(readme).resolve().parent if readme else Path.cwd())
    )
    record, report = (out / "bench.json").as_posix(), (out / "report.md").as_posix()
    lines = [f"The end-to-end rows of [`{record}`]({record}) (every kernel: [`{report}`]({report})), "
             f"rendered by `pyreg bench-report`:", "",
             "| group | impl | median | speed-up vs Keras | vs NumPy |", "|---|---|---|---|---|"]  # fmt: skip

    def ratio(x):
        return f"{x:.1f}x" if x else "—"

    for group, rows in done["summary"].items():
        if not group.startswith(README_GROUPS):
            continue
        for r in rows:
            lines.append(f"| {group} | {r['impl']} | {_fmt_time(r['median'])} | {ratio(r['vs_keras'])} | "
                         f"{ratio(r['vs_numpy'])} |")  # fmt: skip
    return "\n".join(lines)


def compact_record(path) -> dict:
    """pytest-benchmark's JSON without the raw per-round timings (``stats.data``): what a report
    needs (medians, IQRs, rounds, extra_info, machine and commit), a few kB instead of megabytes."""
    data = json.loads(Path(path).read_text())
    for bench in data.get("benchmarks", []):
        if isinstance(bench, dict) and isinstance(bench.get("stats"), dict):
            bench["stats"].pop("data", None)
    return data


def make_report(results, out=None) -> dict:
    """Writes speedup.png, report.md and bench.json (the compact record of `results`: no raw
    rounds) next to the results (or into `out`); returns what it wrote."""
    results = Path(results)
    summary = summarise(load_results(results))
    out = Path(out) if out else results.parent / f"{results.stem}-report"
    out.mkdir(parents=True, exist_ok=True)
    record = out / "bench.json"
    if record.resolve() != results.resolve():
        compact = compact_record(results)
        write_atomic(record, lambda f: json.dump(compact, f, indent=1), binary=False)
    bars = _chart(summary, out / "speedup.png")
    write_atomic(
        out / "report.md", lambda f: f.write(_markdown(summary, results.name)), binary=False
    )
    return {"out": str(out), "groups": len(summary), "bars": bars, "summary": summary}
