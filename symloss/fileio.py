"""Safe output files: written atomically (temporary file, then rename) and never overwritten without ``force``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import FileExistsError_, SymlossError

__all__ = ["write_text_atomic", "resolve_inside"]


def write_text_atomic(path: str | os.PathLike[str], text: str, *, force: bool = False) -> Path:
    """Write ``text`` to ``path`` atomically; refuse to replace an existing file unless ``force``.

    The text goes to a temporary file in the same directory, is flushed and
    fsync'ed, then renamed over the target, so an interrupted run never
    leaves a half-written file.
    """
    target = Path(os.path.normpath(os.path.abspath(os.fspath(path))))
    if target.exists() and not force:
        raise FileExistsError_(f"{target} exists; pass --force (force=True) to overwrite it")
    if target.exists() and target.is_dir():
        raise SymlossError(f"{target} is a directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp creates the file private (0600); outputs get the usual umask-derived mode like any new file
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


def resolve_inside(root: str | os.PathLike[str], relative: str) -> Path:
    """``root/relative`` normalised, refusing any path that would leave ``root``."""
    base = Path(os.path.abspath(os.fspath(root)))
    candidate = Path(os.path.normpath(base / relative))
    if candidate != base and base not in candidate.parents:
        raise SymlossError(f"refusing to write {relative!r} outside {base}")
    return candidate
