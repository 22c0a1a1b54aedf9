"""The sweep's store, ``DIR/trials.jsonl``: one finished trial per line, appended by the driver
alone (flushed and fsynced), so a crash loses only the trials in flight.

``DIR/sweep.json`` records the training semantics the store was made with; a sweep with other
semantics refuses the folder instead of mixing results. ``DIR/.pyreg-sweep.lock`` keeps a second driver out.
A last line cut short by a killed driver is detected, reported and cut off before the next append.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from ..._io import write_atomic

__all__ = ["TrialStore"]

_META_FORMAT = "pyreg-sweep-v1"
LOCK_NAME = (
    ".pyreg-sweep.lock"  # held by the driver while it runs; left in place (removing it would race)
)


class TrialStore:
    """Reads and appends ``DIR/trials.jsonl``; use as a context manager to hold the folder's lock."""

    def __init__(self, out_dir):
        self.dir = Path(out_dir)
        self.path = self.dir / "trials.jsonl"
        self.meta_path = self.dir / "sweep.json"
        self._lock = None

    # -- reading ----------------------------------------------------------------------------------

    def load(self) -> dict[str, dict]:
        """Every complete record, by id (a later line for the same id wins)."""
        records: dict[str, dict] = {}
        if not self.path.exists():
            return records
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        if (lines and lines[-1] == b"") or lines:
            lines.pop()
        for number, line in enumerate(lines, 1):
            try:
                rec = json.loads(line)
                records[rec["id"]] = rec
            except (ValueError, KeyError, TypeError):
                warnings.warn(f"{self.path}:{number}: not a trial record; ignored (that trial will run again)",
                              RuntimeWarning, stacklevel=2)  # fmt: skip
        return records

    def read_meta(self) -> dict | None:
        if not self.meta_path.exists():
            return None
        try:
            meta = json.loads(self.meta_path.read_text())
        except (OSError, ValueError) as e:
            raise ValueError(
                f"{self.meta_path} is unreadable ({e}); move the folder aside"
            ) from None
        if not isinstance(meta, dict) or meta.get("format") != _META_FORMAT:
            raise ValueError(
                f"{self.meta_path} is not a pyreg sweep's description; choose another --out"
            )
        return meta

    # -- writing ----------------------------------------------------------------------------------

    def __enter__(self) -> TrialStore:
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return self
        self._lock = open(self.dir / LOCK_NAME, "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            self._lock = None
            raise RuntimeError(f"another pyreg sweep is writing to {self.dir}") from None
        return self

    def __exit__(self, *exc) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def claim(self, semantics: dict) -> None:
        """Makes the folder this sweep's, or checks that it already is (same training semantics)."""
        meta = self.read_meta()
        if meta is None:
            if self.path.exists() and self.path.stat().st_size:
                raise ValueError(
                    f"{self.path} exists without {self.meta_path.name}; choose another --out"
                )
            write_atomic(self.meta_path, lambda f: json.dump({"format": _META_FORMAT, "semantics": semantics},
                                                             f, indent=2, sort_keys=True), binary=False)  # fmt: skip
        elif meta.get("semantics") != semantics:
            raise ValueError(
                f"{self.dir} holds a sweep with other training semantics ({meta.get('semantics')} here, "
                f"{semantics} now); choose another --out"
            )
        self._cut_partial_line()

    def _cut_partial_line(self) -> None:
        """Removes a last line without its newline (a killed driver's), so appends start clean."""
        if not self.path.exists():
            return
        with open(self.path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            f.seek(0)
            keep = f.read().rfind(b"\n") + 1
            warnings.warn(f"{self.path}: its last line was cut short (a driver was killed while writing); "
                          "that trial will run again", RuntimeWarning, stacklevel=3)  # fmt: skip
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())

    def append(self, record: dict) -> None:
        """Appends one record as a JSON line, flushed and fsynced before returning."""
        line = json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def drop(self, ids: set[str]) -> None:
        """Rewrites the store without the records of `ids` (atomically: all or nothing)."""
        keep = [r for r in self.load().values() if r["id"] not in ids]
        text = "".join(json.dumps(r, allow_nan=False, separators=(",", ":")) + "\n" for r in keep)
        write_atomic(self.path, lambda f: f.write(text), binary=False)
