"""``pyreg sweep``: the regularisation study at scale. A grid of trials (L2 x dropout x the other
axes x seeds), run on this machine's cores or a Dask cluster, kept in a resumable store, reported
as heatmaps, curves and tables.

Python API::

    from pyreg.study.sweep import run_sweep
    result = run_sweep({"l2": [0, 1e-3], "dropout": [0, 0.5], "seeds": 2}, out="my-sweep")
    result.rows          # one dict per trial (as results.csv)
    result.to_pandas()   # the same as a DataFrame, with pandas installed

Modules: ``spec`` (the grid, checked), ``data`` (data sets, split, digests), ``trial`` (one trial,
in a worker), ``store`` (trials.jsonl), ``engines`` (the executors), ``runner`` (the driver),
``report`` (report.md, results.csv, figures), ``records`` (what a trial record holds).
"""

from __future__ import annotations

from .runner import SweepResult, run_sweep
from .spec import SweepSpec

__all__ = ["SweepResult", "SweepSpec", "run_sweep"]
