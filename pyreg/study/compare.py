"""``pyreg compare``: the study, natively and in Keras, side by side.

Trains the study's models (L2 and Dropout by default; also ``none``, the unregularised baseline, and
``both``) with pyreg and, when TensorFlow is installed, with Keras on the same data, for several seeds;
then writes the figures, a JSON file with every number and the environment, and a Markdown report.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import _core
from .._build import build_info
from .._io import write_atomic
from .definition import BATCH_SIZE, EPOCHS, KINDS, TITLES, build_keras, build_pyreg, load_mnist

__all__ = ["CompareConfig", "Run", "run_compare"]

QUICK_TRAIN, QUICK_TEST = 6000, 1000


@dataclass
class CompareConfig:
    """What to compare; the defaults reproduce the study."""

    models: tuple[str, ...] = ("l2", "dropout")
    epochs: int = EPOCHS
    batch_size: int = BATCH_SIZE
    seeds: int = 1
    threads: int = 0  # 0 = all cores, for pyreg and for TensorFlow
    keras: bool = True
    quick: bool = False
    out: str = "pyreg-results"


@dataclass
class Run:
    """One training run of one model by one framework and seed."""

    framework: str  # "pyreg" or "keras"
    model: str
    seed: int
    history: dict[str, list[float]]
    epoch_times: list[float]
    kernel_norms: list[float]
    warmup_s: float = 0.0  # first-epoch extra (keras: graph tracing); included in epoch_times[0]

    @property
    def final_val_accuracy(self) -> float:
        return self.history["val_accuracy"][-1]

    @property
    def gap(self) -> list[float]:
        """Training minus validation accuracy per epoch: the generalisation gap."""
        return [a - v for a, v in zip(self.history["accuracy"], self.history["val_accuracy"])]


@dataclass
class Summary:
    """Per model: the numbers the table shows (means and spreads over seeds)."""

    model: str
    pyreg_val_acc: float
    pyreg_val_acc_std: float | None  # None with one seed
    pyreg_gap: float
    pyreg_epoch_s: float
    keras_val_acc: float | None = None
    keras_val_acc_std: float | None = None
    keras_gap: float | None = None
    keras_epoch_s: float | None = None

    @property
    def speedup(self) -> float | None:
        return None if self.keras_epoch_s is None else self.keras_epoch_s / self.pyreg_epoch_s

    @property
    def val_acc_diff(self) -> float | None:
        return None if self.keras_val_acc is None else self.pyreg_val_acc - self.keras_val_acc


def load_data(quick: bool):
    """The study's MNIST (x / 255, float32); --quick takes a small subset."""
    return load_mnist(QUICK_TRAIN, QUICK_TEST) if quick else load_mnist()


class _EpochLog:
    """Per-epoch wall time and hidden-kernel norm of a pyreg fit, plus the progress line."""

    def __init__(self, say, label: str, epochs: int):
        self.say, self.label, self.epochs = say, label, epochs
        self.times: list[float] = []
        self.norms: list[float] = []

    def callback(self, model):
        from ..callbacks import Callback

        log = self

        class _CB(Callback):
            def on_epoch_begin(self, epoch, logs=None):
                log._t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                log.times.append(time.perf_counter() - log._t0)
                log.norms.append(float(np.linalg.norm(model.layers[1].kernel.numpy())))
                log.say(f"  {log.label}: epoch {epoch + 1}/{log.epochs}  val_accuracy {logs['val_accuracy']:.4f}"
                        f"  ({log.times[-1]:.2f} s)")  # fmt: skip

        return _CB()


def train_pyreg(kind: str, seed: int, data, cfg: CompareConfig, say) -> Run:
    (x_train, y_train), (x_test, y_test) = data
    model = build_pyreg(kind, seed)
    log = _EpochLog(say, f"pyreg {kind} seed {seed}", cfg.epochs)
    h = model.fit(x_train, y_train, epochs=cfg.epochs, batch_size=cfg.batch_size, validation_data=(x_test, y_test),
                  verbose=0, threads=cfg.threads, callbacks=[log.callback(model)])  # fmt: skip
    return Run("pyreg", kind, seed, h.history, log.times, log.norms)


def train_keras(kind: str, seed: int, data, cfg: CompareConfig, say) -> Run:
    import keras

    from .keras_baseline import train_reference

    keras.utils.set_random_seed(seed)
    run = train_reference(
        build_keras(kind),
        data,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        seed=seed,
    )
    for e, t in enumerate(run.epoch_times):
        say(f"  keras {kind} seed {seed}: epoch {e + 1}/{cfg.epochs}  val_accuracy {run.history['val_accuracy'][e]:.4f}"
            f"  ({t:.2f} s)")  # fmt: skip
    warmup = (
        max(0.0, run.epoch_times[0] - float(np.median(run.epoch_times[1:])))
        if len(run.epoch_times) > 1
        else 0.0
    )
    return Run("keras", kind, seed, run.history, run.epoch_times, run.kernel_norms, warmup)


def steady_epoch_time(runs: list[Run]) -> float:
    """Median time per epoch, leaving out each run's first epoch when there are others (warm-up)."""
    times = [
        t for r in runs for t in (r.epoch_times[1:] if len(r.epoch_times) > 1 else r.epoch_times)
    ]
    return float(np.median(times))


def summarise(kind: str, runs: list[Run]) -> Summary:
    def stats(fw):
        rs = [r for r in runs if r.framework == fw and r.model == kind]
        if not rs:
            return None
        acc = np.array([r.final_val_accuracy for r in rs])
        # one seed has no spread: None, not 0 (a 0 would read as "no seed-to-seed noise")
        return (float(acc.mean()), float(acc.std(ddof=1)) if len(acc) > 1 else None,
                float(np.mean([r.gap[-1] for r in rs])), steady_epoch_time(rs))  # fmt: skip

    p, k = stats("pyreg"), stats("keras")
    s = Summary(kind, *p)
    if k is not None:
        s.keras_val_acc, s.keras_val_acc_std, s.keras_gap, s.keras_epoch_s = k
    return s


def environment(cfg: CompareConfig) -> dict:
    env = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "build": build_info(),
        "pyreg_threads": cfg.threads or _core.default_threads(),
        "command": " ".join(["pyreg", *sys.argv[1:]]) if sys.argv else "",
    }
    if "tensorflow" in sys.modules:
        import keras
        import tensorflow as tf

        env["tensorflow"] = tf.__version__
        env["keras"] = keras.__version__
        env["tf_intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
    return env


def _check_config(cfg: CompareConfig) -> None:
    for name in ("epochs", "batch_size", "seeds"):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"--{name.replace('_', '-')} must be a positive integer; got {value!r}"
            )
    if isinstance(cfg.threads, bool) or not isinstance(cfg.threads, int) or cfg.threads < 0:
        raise ValueError(f"--threads must be >= 0 (0 = all cores); got {cfg.threads!r}")
    bad = [m for m in cfg.models if m not in KINDS]
    if bad or not cfg.models:
        raise ValueError(
            f"--models must be a comma-separated list of {', '.join(KINDS)} (or 'all'); got {bad or 'nothing'}"
        )


def run_compare(cfg: CompareConfig, say=print) -> dict:
    """Runs the comparison and writes figures, JSON and report into cfg.out; returns the JSON dict."""
    _check_config(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    use_keras = cfg.keras
    if use_keras:
        try:
            from .keras_baseline import set_tf_threads
        except ImportError as e:
            say(f"note: Keras baseline skipped: {e}")
            use_keras = False
        else:
            set_tf_threads(cfg.threads or None)
    data = load_data(cfg.quick)
    say(f"MNIST: {len(data[0][1])} training and {len(data[1][1])} test images; {cfg.epochs} epochs, batch {cfg.batch_size}, "
        f"{cfg.seeds} seed(s), models {', '.join(cfg.models)}")  # fmt: skip
    runs: list[Run] = []
    for kind in cfg.models:
        for seed in range(cfg.seeds):
            runs.append(train_pyreg(kind, seed, data, cfg, say))
            if use_keras:
                runs.append(train_keras(kind, seed, data, cfg, say))
    summaries = [summarise(kind, runs) for kind in cfg.models]

    from . import plots

    figures = {
        "val_accuracy.png": plots.plot_val_accuracy(runs, out / "val_accuracy.png"),
        "gap_and_norm.png": plots.plot_gap_and_norm(runs, out / "gap_and_norm.png"),
    }
    result = {
        "config": asdict(cfg)
        | {"keras": use_keras, "train_samples": len(data[0][1]), "test_samples": len(data[1][1])},
        "environment": environment(cfg),
        "runs": [
            asdict(r) | {"final_val_accuracy": r.final_val_accuracy, "gap": r.gap} for r in runs
        ],
        "summary": [
            asdict(s) | {"speedup": s.speedup, "val_acc_diff": s.val_acc_diff} for s in summaries
        ],
        "figures": figures,
    }
    write_atomic(
        out / "results.json", lambda f: json.dump(result, f, indent=2, default=float), binary=False
    )
    write_atomic(out / "report.md", lambda f: f.write(render_report(result)), binary=False)
    for line in render_table(result).splitlines():
        say(line)
    if spread_note(result):
        say(spread_note(result))
    say(f"figures, results.json and report.md written to {out}/")
    return result


def _pct(x):
    return "—" if x is None else f"{100 * x:.2f}%"


def _pm(mean, std):
    if mean is None:
        return "—"
    return f"{100 * mean:.2f}%" if std is None else f"{100 * mean:.2f}% ± {100 * std:.2f}"


# seed-to-seed standard deviation of the study models' final validation accuracy (pyreg and Keras,
# 5 seeds each, full MNIST): what a one-seed difference between frameworks has to be read against
SEED_SPREAD_PP = (0.08, 0.37)


def spread_note(result: dict) -> str:
    """With one seed, a line saying how large the seed-to-seed spread is; else ''."""
    if result["config"]["seeds"] > 1:
        return ""
    lo, hi = SEED_SPREAD_PP
    return (
        f"One seed per model, so no spread is shown. At the study's settings (all of MNIST, 5 epochs) "
        f"the final validation accuracy of these models varies across seeds by about {lo:.2f}-{hi:.2f} "
        "pp (standard deviation): a one-seed difference of that size is noise, not a parity failure. "
        "Run with --seeds 3 or more to measure the spread."
    )


def render_table(result: dict) -> str:
    """The per-model table as aligned text (console) and Markdown."""
    rows = [("model", "val acc pyreg", "val acc keras", "diff (pp)", "gap pyreg", "gap keras", "s/epoch pyreg",
             "s/epoch keras", "speed-up")]  # fmt: skip
    for s in result["summary"]:
        rows.append((
            TITLES[s["model"]],
            _pm(s["pyreg_val_acc"], s["pyreg_val_acc_std"]),
            _pm(s["keras_val_acc"], s["keras_val_acc_std"]),
            "—" if s["val_acc_diff"] is None else f"{100 * s['val_acc_diff']:+.2f}",
            _pct(s["pyreg_gap"]),
            _pct(s["keras_gap"]),
            f"{s['pyreg_epoch_s']:.3f}",
            "—" if s["keras_epoch_s"] is None else f"{s['keras_epoch_s']:.2f}",
            "—" if s["speedup"] is None else f"{s['speedup']:.1f}x",
        ))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def readme_block(result: dict, out: str) -> str:
    """The README's results block: table, figure and the environment it was measured in."""
    env, cfg, b = result["environment"], result["config"], result["environment"]["build"]
    keras = (
        f"TensorFlow {env['tensorflow']} / Keras {env['keras']}"
        if "tensorflow" in env
        else "Keras not run"
    )
    return f"""Measured {env["date"][:10]} on {b["cpu"]} ({b["cpu_count"]} cores), pyreg {b["pyreg"]} ({b["isa_active"]}, \
{env["pyreg_threads"]} threads), {keras}, NumPy {b["numpy"]}, Python {env["python"]};
{cfg["epochs"]} epochs, batch {cfg["batch_size"]}, {cfg["seeds"]} seed(s) per model and framework, time per epoch
including validation. Regenerate with `{env["command"]}`.

{render_table(result)}
{spread_note(result)}

![validation accuracy per epoch]({out}/val_accuracy.png)
"""


def render_report(result: dict) -> str:
    env, cfg = result["environment"], result["config"]
    b = env["build"]
    keras_line = (
        f"TensorFlow {env['tensorflow']}, Keras {env['keras']}"
        if "tensorflow" in env
        else "Keras not run"
    )
    return f"""# pyreg compare: L2 weight decay vs Dropout on MNIST

{cfg["train_samples"]} training / {cfg["test_samples"]} test images, {cfg["epochs"]} epochs, batch {cfg["batch_size"]},
{cfg["seeds"]} seed(s) per model and framework. Time per epoch includes validation on the test set and
leaves out each run's first epoch when there are more (warm-up, graph tracing in Keras).

{render_table(result)}

{spread_note(result)}
Accuracies are the final epoch's validation accuracy, mean ± standard deviation over seeds; the gap
is training minus validation accuracy at the last epoch (training accuracy is measured with dropout on).

![validation accuracy](val_accuracy.png)

![generalisation gap and hidden-kernel norm](gap_and_norm.png)

Environment: {env["date"]}, {b["cpu"]} ({b["cpu_count"]} cores), pyreg {b["pyreg"]} ({b["isa_active"]},
{env["pyreg_threads"]} threads, {b["compiler"]}), NumPy {b["numpy"]}, Python {env["python"]}, {keras_line}.
Command: `{env["command"]}`
"""
