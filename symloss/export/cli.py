"""Command-line options for the write-ups: ``symloss derive poisson --link rate=log --latex poisson.tex``.

:func:`add_latex_options` adds the options to a sub-command's parser and
:func:`export_from_args` writes the files they ask for; ``symloss.cli`` wires
both into ``derive``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import SymlossError
from ..loss import Loss

__all__ = ["add_latex_options", "export_from_args", "parse_notation"]


def add_latex_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--latex PATH``, ``--markdown PATH`` and the options that shape them to ``parser``."""
    group = parser.add_argument_group("write-up (LaTeX / Markdown)")
    group.add_argument("--latex", metavar="PATH", help="write the derivation as a standalone LaTeX document")
    group.add_argument("--markdown", metavar="PATH", help="write the derivation as Markdown with $$ math blocks")
    group.add_argument("--latex-fragment", action="store_true",
                       help="with --latex: write a fragment to \\input (needs amsmath, amssymb), not a document")
    group.add_argument("--notation", action="append", metavar="NAME=LATEX",
                       help=r"LaTeX for a name, e.g. --notation 'loc=\hat{y}' (repeatable)")
    group.add_argument("--batch", action="store_true", help="also write the loss as a mean over a batch of N")
    group.add_argument("--no-analysis", dest="latex_analysis", action="store_false",
                       help="leave out the property table (the analysis takes a few seconds)")
    # other option groups may define --force for their own outputs; share it rather than clash
    if "--force" not in parser._option_string_actions:
        group.add_argument("--force", action="store_true", help="overwrite existing output files")


def parse_notation(items: list[str] | None) -> dict[str, str]:
    """``["loc=\\hat{y}", "scale=s"]`` → ``{"loc": "\\hat{y}", "scale": "s"}`` (LaTeX may contain commas)."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, tex = item.partition("=")
        if not sep or not name.strip() or not tex.strip():
            raise SymlossError(f"--notation expects NAME=LATEX, got {item!r}")
        out[name.strip()] = tex.strip()
    return out


def export_from_args(loss: Loss, args: argparse.Namespace) -> list[Path]:
    """Write the files that ``--latex``/``--markdown`` ask for; returns the paths written (none if neither)."""
    from .latex import write_latex, write_markdown

    latex, markdown = getattr(args, "latex", None), getattr(args, "markdown", None)
    if not latex and not markdown:
        return []
    kw = {
        "notation": parse_notation(getattr(args, "notation", None)),
        "batch": bool(getattr(args, "batch", False)),
        "analysis": None if getattr(args, "latex_analysis", True) else False,
    }
    budget = getattr(args, "budget", None)
    if budget is not None:
        kw["analysis_budget"] = budget
    if latex and markdown and kw["analysis"] is not False:  # analyse once for both files
        from .latex import _analysis_report

        kw["report"] = _analysis_report(loss, None, kw["analysis"], kw.get("analysis_budget"), [])
        kw["analysis"] = False
    force = bool(getattr(args, "force", False))
    written = []
    if latex:
        standalone = not getattr(args, "latex_fragment", False)
        written.append(write_latex(loss, latex, force=force, standalone=standalone, **kw))
    if markdown:
        written.append(write_markdown(loss, markdown, force=force, **kw))
    return written
