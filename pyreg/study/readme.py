"""Rewrites a generated block of a README between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``.

Used by ``pyreg compare --readme`` and ``pyreg bench-report --readme`` so that the README's results are
produced by the tools, never typed by hand. The file is replaced atomically.
"""

from __future__ import annotations

from pathlib import Path

from .._io import write_atomic

__all__ = ["replace_block"]


def replace_block(path, name: str, content: str) -> None:
    path = Path(path)
    text = path.read_text()
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise ValueError(f"{path} has no '{start}' ... '{end}' block to update")
    new = text[: i + len(start)] + "\n" + content.rstrip() + "\n" + text[j:]
    write_atomic(path, lambda f: f.write(new), binary=False)
