"""Output files: atomic, never overwritten without force, never outside their root."""

from __future__ import annotations

import os

import pytest

from symloss.errors import FileExistsError_, SymlossError
from symloss.fileio import resolve_inside, write_text_atomic


def test_write_and_refuse_overwrite(tmp_path):
    p = tmp_path / "sub" / "out.py"
    write_text_atomic(p, "a = 1\n")
    assert p.read_text() == "a = 1\n"
    with pytest.raises(FileExistsError_, match="--force"):
        write_text_atomic(p, "a = 2\n")
    assert p.read_text() == "a = 1\n"
    write_text_atomic(p, "a = 2\n", force=True)
    assert p.read_text() == "a = 2\n"
    assert [f for f in os.listdir(p.parent) if f.endswith(".tmp")] == []


def test_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch):
    p = tmp_path / "out.py"
    write_text_atomic(p, "old\n")

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomic(p, "new\n", force=True)
    monkeypatch.undo()
    assert p.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.py"]


def test_resolve_inside(tmp_path):
    assert resolve_inside(tmp_path, "a/b.py") == tmp_path / "a" / "b.py"
    for bad in ("../x.py", "a/../../x.py", "/etc/passwd"):
        with pytest.raises(SymlossError, match="outside"):
            resolve_inside(tmp_path, bad)
