"""Tutorials are runnable scripts (``docs/tutorials/NN_name.py``) in the "percent" format: ``# %%`` starts a
code cell, ``# %% [markdown]`` a prose cell whose lines are ``#``-comments, and the module docstring is the
page's introduction (its first line the title).  :func:`run_tutorial` runs one in a subprocess (headless
matplotlib, a timeout, figures written to ``$SYMLOSS_TUTORIAL_OUT``); :func:`tutorial_page` renders the
script, its printed output and its figures as a Markdown page."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import SymlossError

__all__ = ["TutorialRun", "run_tutorial", "tutorial_page", "tutorial_title", "FIGURE_SUFFIXES"]

FIGURE_SUFFIXES = (".png", ".svg")


@dataclass(frozen=True)
class TutorialRun:
    script: Path
    stdout: str
    figures: tuple[Path, ...]
    seconds: float


def run_tutorial(script: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, timeout: float = 300.0,
                 cwd: str | os.PathLike[str] | None = None) -> TutorialRun:
    """Run ``script`` with ``MPLBACKEND=Agg`` and ``SYMLOSS_TUTORIAL_OUT=out_dir``; raise SymlossError (with
    its stderr) if it fails or runs past ``timeout`` seconds."""
    import time

    script = Path(script).resolve()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MPLBACKEND="Agg", SYMLOSS_TUTORIAL_OUT=str(out), PYTHONHASHSEED="0")
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH", "")]))
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, str(script)], cwd=cwd or out, env=env, capture_output=True,
                              text=True, encoding="utf-8", timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SymlossError(f"tutorial {script.name} ran past {timeout:g} s") from exc
    if proc.returncode != 0:
        raise SymlossError(f"tutorial {script.name} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    figures = tuple(sorted(p for p in out.iterdir() if p.suffix in FIGURE_SUFFIXES))
    return TutorialRun(script, proc.stdout, figures, time.perf_counter() - start)


def _docstring(source: str) -> tuple[str, int]:
    """The module docstring and the line number after it (0 when there is none)."""
    tree = ast.parse(source)
    doc = ast.get_docstring(tree, clean=True) or ""
    if doc and tree.body and isinstance(tree.body[0], ast.Expr):
        return doc, tree.body[0].end_lineno or 0
    return "", 0


def tutorial_title(script: str | os.PathLike[str]) -> str:
    doc, _ = _docstring(Path(script).read_text(encoding="utf-8"))
    first = doc.strip().splitlines()[0] if doc.strip() else Path(script).stem
    return first.lstrip("#").strip()


def _cells(source: str) -> list[tuple[str, str]]:
    """("markdown" | "code", text) cells of a percent-format script, after its docstring."""
    _, after = _docstring(source)
    lines = source.splitlines()[after:]
    cells: list[tuple[str, list[str]]] = [("code", [])]
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("# %%"):
            kind = "markdown" if "[markdown]" in stripped else "code"
            cells.append((kind, []))
            continue
        kind, body = cells[-1]
        if kind == "markdown":
            body.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
        else:
            body.append(line)
    out = []
    for kind, body in cells:
        text = "\n".join(body).strip("\n")
        if text.strip():
            out.append((kind, text))
    return out


def tutorial_page(script: str | os.PathLike[str], run: TutorialRun | None, figure_dir: str) -> str:
    """The page of one tutorial: its prose, its code, what it printed and its figures (under ``figure_dir``,
    relative to the page)."""
    from .pages import _code_block

    script = Path(script)
    source = script.read_text(encoding="utf-8")
    doc, _ = _docstring(source)
    doc_lines = doc.strip().splitlines() or [script.stem]
    title = doc_lines[0].lstrip("#").strip()
    lines = [f"# {title}", "", "\n".join(doc_lines[1:]).strip(), "",
             f"This page is the script `docs/tutorials/{script.name}`; run it with `python docs/tutorials/"
             f"{script.name}` (figures go to `$SYMLOSS_TUTORIAL_OUT`, by default a temporary folder).", ""]
    for kind, text in _cells(source):
        lines += [text if kind == "markdown" else _code_block(text), ""]
    if run is not None:
        lines += ["## Output", "", "What the script printed when this site was built:", "",
                  _code_block(run.stdout.rstrip() or "(nothing)", "text"), ""]
        for fig in run.figures:
            lines += [f"![{fig.stem}]({figure_dir}/{fig.name})", ""]
    return "\n".join(lines).rstrip() + "\n"
