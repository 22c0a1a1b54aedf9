"""Where a sweep's trials run: every engine is a ``concurrent.futures.Executor``, so the runner has
one code path. ``local``: a process pool on this machine (nothing to start, no Dask); ``inline``:
one trial at a time in this process; ``dask``: Dask distributed's executor, on a ``LocalCluster``
started here or on a running cluster (``scheduler="tcp://HOST:PORT"``).

Threads are an explicit budget: each trial gets ``threads_per_trial`` (passed to ``fit(threads=)``,
never read from the environment), and by default trials at once x threads per trial stay within
this machine's cores.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Engine", "InlineExecutor", "open_engine"]


class InlineExecutor(cf.Executor):
    """Runs each submitted call at once, in this process: the sweep one trial at a time."""

    def submit(self, fn, /, *args, **kwargs) -> cf.Future:
        future: cf.Future = cf.Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as e:
            future.set_exception(e)
        return future


@dataclass
class Engine:
    """An open engine: its executor, how many trials it runs at once, and a way to stop it now."""

    executor: cf.Executor
    slots: int  # trials in flight at once
    description: str
    stop_now: object = None  # callable: end running trials at once (Ctrl-C)


def _worker_init(preload: tuple) -> None:
    """In each pool worker: leave Ctrl-C to the driver, die with it, load the data sets once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(Exception):  # Linux: exit when the driver dies, even by kill -9
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the driver died before prctl took effect
            os._exit(1)
    from .data import split

    for name, validation_size in preload:
        split(name, validation_size)


def cores() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers(threads_per_trial: int) -> int:
    return max(1, cores() // threads_per_trial)


@contextlib.contextmanager
def open_engine(kind: str = "local", *, workers: int | None = None, threads_per_trial: int = 1,
                scheduler: str | None = None, timeout: float = 10.0, preload: tuple = ()) -> Iterator[Engine]:  # fmt: skip
    """Opens an engine and closes it (and anything it started) on exit.

    Args:
        kind: "local", "inline" or "dask" ("dask" with `scheduler` connects to a running cluster,
            without it starts a LocalCluster of `workers` single-threaded worker processes).
        workers: trials at once (default: cores // threads_per_trial).
        threads_per_trial: threads each trial trains with.
        scheduler: "tcp://HOST:PORT" of a running Dask scheduler.
        timeout: seconds to wait for that scheduler before giving up.
        preload: (data set, validation size) pairs each local worker loads when it starts.
    """
    if kind == "inline":
        yield Engine(InlineExecutor(), 1, "one trial at a time, in this process")
        return
    if kind == "local":
        import multiprocessing

        n = workers or default_workers(threads_per_trial)
        # spawn: a fresh interpreter per worker (OpenMP's threads do not survive a fork)
        pool = cf.ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=_worker_init, initargs=(tuple(preload),))  # fmt: skip

        def stop_now():
            for proc in list(getattr(pool, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    proc.kill()

        try:
            yield Engine(pool, n, f"a local pool of {n} worker process(es) x {threads_per_trial} thread(s)",
                         stop_now)  # fmt: skip
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return
    if kind == "dask":
        with _dask_engine(workers, threads_per_trial, scheduler, timeout) as engine:
            yield engine
        return
    raise ValueError(f"engine must be 'local', 'inline' or 'dask'; got {kind!r}")


_QUIET_LOCAL_CLUSTER = {
    "distributed.scheduler.work-stealing": False,
    "distributed.scheduler.active-memory-manager.start": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
}


@contextlib.contextmanager
def _dask_engine(workers, threads_per_trial, scheduler, timeout) -> Iterator[Engine]:
    try:
        from distributed import Client, LocalCluster
    except ImportError as e:
        raise RuntimeError(
            f"sweeps on Dask need Dask distributed ({e}); install it with: pip install 'pyreg[dask]'"
        ) from None
    import dask

    with contextlib.ExitStack() as stack:
        # quiet: no dashboard, no INFO log lines in the middle of the progress display
        stack.enter_context(dask.config.set({"distributed.logging.distributed": "warning"}))
        if scheduler:
            try:
                client = Client(scheduler, timeout=timeout)
            except (OSError, TimeoutError) as e:
                raise RuntimeError(
                    f"no Dask scheduler answered at {scheduler} within {timeout:g} s ({type(e).__name__})"
                ) from None
            stack.callback(client.close)
            slots = max(1, sum(client.nthreads().values()))
            where = f"the Dask cluster at {scheduler} ({len(client.nthreads())} workers)"
        else:
            n = workers or default_workers(threads_per_trial)
            # a sweep's tasks are uniform and independent, and its workers fill every core: less
            # background work for Dask's own processes (no work stealing, slower health ticks)
            stack.enter_context(dask.config.set(_QUIET_LOCAL_CLUSTER))
            # dashboard on a free port: None would mean 8787, taken by any other cluster running here
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=":0", silence_logs=40)  # fmt: skip
            stack.callback(cluster.close)
            client = Client(cluster)
            stack.callback(client.close)
            slots = n
            where = f"a Dask LocalCluster of {n} worker process(es) x {threads_per_trial} thread(s)"

        def stop_now():
            with contextlib.suppress(Exception):
                client.cancel(list(client.futures.values()), force=True)

        yield Engine(client.get_executor(pure=False), slots, where, stop_now)
