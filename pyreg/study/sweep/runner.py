"""The sweep's driver: works out which trials are missing from the store, runs them on an engine
(any ``concurrent.futures.Executor``), appends each finished trial to the store as it arrives, shows
progress, and writes the report at the end.

Running the same sweep again runs exactly the missing trials; a grid extended by one value runs
only its new cells; ``retry_failed`` reruns the trials that raised or diverged. Ctrl-C keeps every
finished trial and discards those in flight.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as _dt
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from .engines import cores, open_engine
from .spec import SweepSpec
from .store import TrialStore
from .trial import TRIAL_SEMANTICS, run_trial, trial_id

__all__ = ["SweepResult", "run_sweep", "semantics_of"]


def semantics_of(spec: SweepSpec) -> dict:
    """What, besides a trial's config and data, decides its results (part of every trial id)."""
    from .data import SPLIT_SEED

    return {
        "trial": TRIAL_SEMANTICS,
        "split_seed": SPLIT_SEED,
        "validation_size": spec.validation_size,
    }


@dataclass
class SweepResult:
    """A sweep's trials: ``records`` as stored, ``rows`` flat (one dict per trial, as results.csv)."""

    records: list[dict]
    out: Path
    ran: int = 0  # trials run by this call
    report: dict | None = field(default=None, repr=False)

    @property
    def rows(self) -> list[dict]:
        return [flat_row(r) for r in self.records]

    def to_pandas(self):
        """The rows as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError(f"to_pandas() needs pandas ({e}): pip install pandas") from None
        return pd.DataFrame(self.rows)


def flat_row(record: dict) -> dict:
    """One trial as a flat dict: id, status, reason, config, final metrics, where and how long."""
    metrics = record.get("metrics") or {}
    norms = metrics.get("kernel_norms") or [None]
    row = {"id": record["id"], "status": record["status"], "reason": record.get("reason")}
    row.update(record["config"])
    for key in ("val_accuracy", "val_loss", "train_accuracy", "train_loss", "gap", "test_accuracy",
                "test_loss"):  # fmt: skip
        row[key] = metrics.get(key)
    row["hidden_kernel_norm"] = norms[0]
    row["epochs_run"] = len(record.get("history", {}).get("loss", []))
    for key in ("wall_s", "threads", "host", "pyreg"):
        row[key] = record.get(key)
    return row


def _progress(total: int, enabled: bool):
    """A tqdm bar on stderr (auto-off when stderr is not a terminal), or None without tqdm."""
    if not enabled or total == 0:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="trial", dynamic_ncols=True, disable=None)


def run_sweep(spec: SweepSpec | dict | None = None, out="pyreg-sweep", *, engine: str = "local",
              workers: int | None = None, threads_per_trial: int = 1, scheduler: str | None = None,
              timeout: float = 10.0, retry_failed: bool = False, progress: bool = True,
              report: bool = True, say=print, command: str | None = None) -> SweepResult:  # fmt: skip
    """Runs the trials of `spec` missing from ``out/trials.jsonl`` and returns every trial of `spec`.

    Args:
        spec: a :class:`SweepSpec`, or a dict of axes and settings (``{"l2": [0, 1e-3], "seeds": 2}``)
            checked by ``SweepSpec.from_dict``; None: the default study.
        out: the sweep's folder (trials.jsonl, results.csv, report.md, figures).
        engine: "local" (process pool), "inline" (one at a time, here) or "dask".
        workers: trials at once (default: cores // threads_per_trial).
        threads_per_trial: threads each trial trains with.
        scheduler: a Dask scheduler's address (implies engine="dask").
        timeout: seconds to wait for that scheduler.
        retry_failed: run failed and diverged trials again.
        progress: show a progress bar (on a terminal).
        report: write results.csv, report.md and the figures at the end.

    Raises:
        ValueError: a bad spec, or an `out` holding a sweep with other training semantics; raised
            before any trial starts.
        KeyboardInterrupt: after Ctrl-C, once the finished trials are stored.
    """
    if not isinstance(spec, SweepSpec):
        spec = SweepSpec.from_dict(spec)
    if (
        isinstance(threads_per_trial, bool)
        or not isinstance(threads_per_trial, int)
        or threads_per_trial < 1
    ):
        raise ValueError(
            f"--threads-per-trial: expected a positive integer; got {threads_per_trial!r}"
        )
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(f"--workers: expected a positive integer; got {workers!r}")
    if scheduler:
        engine = "dask"
    semantics = semantics_of(spec)
    configs = spec.configs()
    ids = [trial_id(c, semantics) for c in configs]
    if len(set(ids)) != len(ids):  # pragma: no cover - parse_axis drops repeated values
        raise ValueError("the grid repeats a trial")
    with TrialStore(out) as store:
        store.claim(semantics)
        done = store.load()
        redo = (
            {i for i in ids if i in done and done[i]["status"] != "ok"} if retry_failed else set()
        )
        if redo:
            store.drop(redo)
            for i in redo:
                del done[i]
        todo = [(i, c) for i, c in zip(ids, configs) if i not in done]
        say(f"sweep: {spec.describe()}; {len(configs)} trials, {len(configs) - len(todo)} already in "
            f"{store.path}, {len(todo)} to run")  # fmt: skip
        ran = 0
        if todo:
            preload = tuple(sorted({(c["dataset"], spec.validation_size) for _, c in todo}))
            with open_engine(engine, workers=workers, threads_per_trial=threads_per_trial,
                             scheduler=scheduler, timeout=timeout, preload=preload) as eng:  # fmt: skip
                say(f"running on {eng.description}")
                if engine != "dask" and eng.slots * threads_per_trial > cores():
                    say(f"note: {eng.slots} trials at once x {threads_per_trial} thread(s) each is more "
                        f"than this machine's {cores()} cores; trials will slow each other down")  # fmt: skip
                ran = _drive(eng, todo, semantics, threads_per_trial, store, progress, say)
        records = [r for r in (store.load().get(i) for i in ids) if r is not None]
    result = SweepResult(records, Path(out), ran)
    if report:
        from .report import write_report

        result.report = write_report(out, records, command=command)
        say(f"results.csv, report.md and figures written to {out}/")
    return result


def _drive(eng, todo, semantics, threads, store: TrialStore, progress: bool, say) -> int:
    """Keeps at most 2 x slots trials submitted; stores each as it finishes; returns how many ran.

    Progress: a tqdm bar on a terminal; elsewhere (a log file, CI) a line every tenth of the trials.
    """
    bar = _progress(len(todo), progress)
    if bar is not None and bar.disable:
        bar = None
    every = max(1, len(todo) // 10) if progress and bar is None else 0
    started = time.monotonic()
    queue = list(reversed(todo))
    in_flight: dict[cf.Future, tuple[str, dict]] = {}
    counts = {"ok": 0, "diverged": 0, "failed": 0}
    try:
        while queue or in_flight:
            while queue and len(in_flight) < 2 * eng.slots:
                tid, config = queue.pop()
                future = eng.executor.submit(run_trial, tid, config, semantics, threads)
                in_flight[future] = (tid, config)
            finished, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                tid, config = in_flight.pop(future)
                record = _record_of(future, tid, config, threads)
                now = _dt.datetime.now(_dt.timezone.utc)
                record["finished"] = now.isoformat(timespec="seconds")
                store.append(record)
                counts[record["status"]] += 1
                failed = counts["failed"] + counts["diverged"]
                running = min(len(in_flight), eng.slots)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"running {running}, failed {failed}")
                done = sum(counts.values())
                if every and (done % every == 0 or done == len(todo)):
                    left = (time.monotonic() - started) / done * (len(todo) - done)
                    say(f"  {done}/{len(todo)} trials done, {running} running, {failed} failed or diverged, "
                        f"about {left:.0f} s left")  # fmt: skip
    except BaseException:  # Ctrl-C, or the engine broke: what finished is stored; stop the rest
        for future in in_flight:
            future.cancel()
        if eng.stop_now is not None:
            eng.stop_now()
        raise
    finally:
        if bar is not None:
            bar.close()
    return sum(counts.values())


def _record_of(future: cf.Future, tid: str, config: dict, threads: int) -> dict:
    """The worker's record, or a failed one when the engine gave up on the trial (e.g. Dask's
    KilledWorker after a trial took down several workers)."""
    try:
        return future.result()
    except BrokenProcessPool:  # a local worker died: every trial in flight is lost, none is stored
        raise RuntimeError(
            "a worker process died (killed, or out of memory) while running trials; the finished "
            "trials are stored; run the same sweep again to resume"
        ) from None
    except Exception as e:
        return {"id": tid, "config": config, "status": "failed",
                "reason": f"{type(e).__name__}: {e}".splitlines()[0] or type(e).__name__,
                "history": {}, "metrics": None, "wall_s": None, "threads": threads, "host": None,
                "pid": None}  # fmt: skip
