"""The progress display of fit/evaluate/predict: keras' look (steps, bar, time per step, metrics)
plus samples per second; live on a terminal, one line per epoch otherwise."""

from __future__ import annotations

import sys
import time

__all__ = ["Progbar", "format_logs"]


def format_logs(logs: dict) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in sorted(logs.items()))


def _fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms"
    return f"{seconds * 1e6:.0f}us"


class Progbar:
    """Prints ``step/steps ━━━━━━━ 1s 310us/step - 96,774 samples/s - accuracy: 0.9 - loss: 0.3``."""

    width = 20

    def __init__(self, steps: int, verbose: int = 1, stream=None):
        self.steps = steps
        self.verbose = verbose
        self.stream = stream or sys.stdout
        self.live = verbose == 1 and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()

    def _line(self, step: int, seen: int, logs: dict) -> str:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        per_step = elapsed / max(step, 1)
        rate = f"{seen / elapsed:,.0f} samples/s"
        head = f"{step}/{self.steps}"
        if self.verbose == 1:
            done = int(self.width * step / max(self.steps, 1))
            head += " " + "━" * done + " " * (self.width - done)
        parts = [f"{head} {_fmt_time(elapsed)} {_fmt_time(per_step)}/step", rate]
        if logs:
            parts.append(format_logs(logs))
        return " - ".join(parts)

    def update(self, step: int, seen: int, logs: dict) -> None:
        """A live refresh (terminal only)."""
        if self.live:
            self.stream.write("\r" + self._line(step, seen, logs) + "\033[K")
            self.stream.flush()

    def finish(self, step: int, seen: int, logs: dict) -> None:
        if self.verbose == 0:
            return
        line = self._line(step, seen, logs)
        self.stream.write(f"\r{line}\033[K\n" if self.live else f"{line}\n")
        self.stream.flush()
