"""Atomic file writes: the content appears whole or not at all, with the mode a plain open() gives."""

from __future__ import annotations

import os
import stat

import pytest

from pyreg._io import _NEW_FILE_MODE, write_atomic


def test_new_file_gets_the_umask_mode_not_a_private_one(tmp_path):
    mask = os.umask(0)
    os.umask(mask)
    path = tmp_path / "report.md"
    write_atomic(path, lambda f: f.write("hello"), binary=False)
    assert path.read_text() == "hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask == _NEW_FILE_MODE
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_existing_file_keeps_its_mode(tmp_path):
    path = tmp_path / "w.npz"
    path.write_bytes(b"old")
    path.chmod(0o640)
    write_atomic(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("kept")

    def fail(f):
        f.write("partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, fail, binary=False)
    assert path.read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
