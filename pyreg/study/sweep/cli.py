"""``pyreg sweep``'s arguments: ``pyreg sweep [SPEC.toml] [--l2 ...] ...`` runs (or resumes) a
sweep; ``pyreg sweep report DIR`` reports a finished or partial one.

Flags override the spec file; axes not given keep the default study's values.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .records import AXES

__all__ = ["add_parser", "run"]


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {value}")
    return value


def add_parser(sub) -> None:
    """Adds ``sweep`` to the ``pyreg`` command's subparsers."""
    s = sub.add_parser(
        "sweep",
        help="run a resumable grid of trials (L2 x dropout x ...), locally or on Dask, and report it",
        description="Runs the trials of a grid missing from --out DIR (so running it again resumes; a "
        "grid extended by one value runs only the new cells), then writes DIR/report.md, "
        "DIR/results.csv and figures. 'pyreg sweep report DIR' reports a finished or partial sweep.",
    )
    s.add_argument("target", nargs="*", metavar="SPEC.toml | report DIR",
                   help="a TOML spec (axes as lists, seeds, validation_size, keras), or 'report DIR'")  # fmt: skip
    for axis in AXES:
        s.add_argument("--" + axis.replace("_", "-"), dest=axis, default=None, metavar="V1,V2,...",
                       help=f"values of {axis} (comma-separated)")  # fmt: skip
    s.add_argument("--seeds", type=_workers, default=None, help="seeds per cell (default 5)")
    s.add_argument("--validation-size", type=_workers, default=None,
                   help="images held out from the training set to choose on (default 10000)")  # fmt: skip
    s.add_argument("--out", default="pyreg-sweep", help="the sweep's folder (default pyreg-sweep/)")
    s.add_argument("--threads-per-trial", type=_workers, default=1,
                   help="threads each trial trains with (default 1); trials at once x threads <= cores")  # fmt: skip
    s.add_argument("--workers", type=_workers, default=None,
                   help="trials at once (default: cores // threads per trial)")  # fmt: skip
    where = s.add_mutually_exclusive_group()
    where.add_argument(
        "--dask", action="store_true", help="run on a Dask LocalCluster on this machine"
    )
    where.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                       help="run on the Dask cluster with this scheduler")  # fmt: skip
    s.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for --scheduler")
    s.add_argument("--keras", action="store_true", default=None,
                   help="also train every cell in Keras and compare cell by cell (small grids)")  # fmt: skip
    s.add_argument("--retry-failed", action="store_true", help="rerun failed and diverged trials")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args, command: str) -> int:
    """Runs ``pyreg sweep`` with parsed `args`; errors surface as ValueError/RuntimeError."""
    from .runner import run_sweep
    from .spec import SweepSpec, load_spec_file

    if args.target[:1] == ["report"]:
        if len(args.target) != 2:
            raise ValueError("usage: pyreg sweep report DIR")
        return report(args.target[1], command)
    if len(args.target) > 1:
        raise ValueError(f"expected at most one spec file; got {' '.join(args.target)}")
    values = load_spec_file(args.target[0]) if args.target else {}
    for axis in AXES:
        if getattr(args, axis) is not None:
            values[axis] = getattr(args, axis)
    for setting in ("seeds", "validation_size", "keras"):
        if getattr(args, setting) is not None:
            values[setting] = getattr(args, setting)
    spec = SweepSpec.from_dict(values)
    run_sweep(spec, args.out, engine="dask" if args.dask else "local", workers=args.workers,
              threads_per_trial=args.threads_per_trial, scheduler=args.scheduler, timeout=args.timeout,
              retry_failed=args.retry_failed, progress=not args.no_progress, command=command)  # fmt: skip
    return 0


def report(out: str, command: str) -> int:
    """``pyreg sweep report DIR``: the report of whatever trials DIR holds."""
    from .report import write_report
    from .store import TrialStore

    store = TrialStore(out)
    if not store.path.exists():
        raise ValueError(f"{out} holds no sweep (no {Path(out) / 'trials.jsonl'})")
    records = list(store.load().values())
    if not records:
        raise ValueError(f"{store.path} holds no finished trial yet")
    write_report(out, records, command=command)
    print(f"{len(records)} trials; results.csv, report.md and figures written to {out}/")
    return 0
