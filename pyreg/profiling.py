"""Where a training epoch's time goes: the native trainer's phase clock, per thread.

    from pyreg.profiling import format_profile, profile_fit

    phases = profile_fit(model, x, y, threads=2)  # trains one epoch; one dict per thread
    print(format_profile(phases))

Each thread of the trainer's team adds the wall time since its own previous mark to the phase it just
ended, so a thread's phases add up to its whole epoch and ``wait`` shows it waiting for the others at
the step's barriers. The phases (``forward_<l>``, ``loss``, ``backward_<l>``, ``optimizer``,
``report``, ``column_bits``, ``row_scans``, ``prefetch``, ``wait``, ...) are described with
``Mlp::set_profiling`` in cpp/mlp.h; with sparse input ``backward_0`` is the first layer's fused
sweep (its gradient, update and the next batch's output).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["format_profile", "profile_fit"]


def profile_fit(model, x, y, *, epochs: int = 1, batch_size: int = 32, threads: int = 0,
                sparse: str = "auto") -> list[dict[str, float]]:  # fmt: skip
    """Trains ``model`` (a compiled :class:`pyreg.models.Sequential`) for ``epochs`` epochs on (x, y)
    with the phase clock on, as ``fit(x, y, batch_size, epochs, verbose=0, threads, sparse)`` does;
    returns one ``{phase: microseconds per training step}`` per thread, in team rank order.

    The model is trained (its weights move on), exactly as without the clock: the clock only reads
    time. It is turned off again afterwards, also when fit raises.
    """
    from .models import Sequential

    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a pyreg.models.Sequential; got {type(model).__name__}")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    model.build(
        (None, *np.shape(x)[1:])
    )  # as fit would: the clock goes on the trainer fit then uses
    mlp = model._mlp
    mlp.set_profiling(True)
    try:
        model.fit(
            x, y, batch_size=batch_size, epochs=epochs, verbose=0, threads=threads, sparse=sparse
        )
        seconds = mlp.profile()
    finally:
        mlp.set_profiling(False)
    steps = epochs * math.ceil(len(x) / batch_size)
    return [{phase: s / steps * 1e6 for phase, s in thread.items()} for thread in seconds]


def format_profile(phases: list[dict[str, float]], digits: int = 1) -> str:
    """A Markdown table of ``profile_fit``'s result: a row per phase that took time on some thread,
    a column per thread, and each thread's total (microseconds per step)."""
    if not phases:
        raise ValueError("phases is empty: profile_fit returns one dict per thread")
    names = [n for n in phases[0] if any(t.get(n, 0.0) > 0.0 for t in phases)]
    head = "| phase (µs per step) | " + " | ".join(f"thread {r}" for r in range(len(phases))) + " |"
    rule = "|---|" + "---|" * len(phases)
    rows = [
        f"| {n} | " + " | ".join(f"{t.get(n, 0.0):.{digits}f}" for t in phases) + " |"
        for n in names
    ]
    total = "| total | " + " | ".join(f"{sum(t.values()):.{digits}f}" for t in phases) + " |"
    return "\n".join([head, rule, *rows, total])
