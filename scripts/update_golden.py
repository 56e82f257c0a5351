#!/usr/bin/env python
"""Regenerate the LaTeX/Markdown golden files in tests/golden from symloss.export.examples.

    python scripts/update_golden.py            # rewrite the golden files
    python scripts/update_golden.py --check    # exit 1 if any golden file is out of date (rewrites nothing)
    python scripts/update_golden.py --pdf DIR  # also compile each .tex into DIR with pdflatex, to look at

Review the diff (and the PDFs) before committing: the golden files are the rendering's reference.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from symloss.export.examples import EXAMPLES, render  # noqa: E402
from symloss.fileio import write_text_atomic  # noqa: E402

GOLDEN = ROOT / "tests" / "golden"


def targets() -> list[tuple[Path, str]]:
    out = []
    for ex in EXAMPLES:
        out.append((GOLDEN / f"{ex.name}.tex", render(ex, "tex")))
        if ex.markdown:
            out.append((GOLDEN / f"{ex.name}.md", render(ex, "md")))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale golden files; write nothing")
    parser.add_argument("--pdf", metavar="DIR", help="compile each .tex golden file into DIR")
    args = parser.parse_args(argv)
    stale = []
    for path, text in targets():
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old == text:
            print(f"unchanged  {path.relative_to(ROOT)}")
            continue
        stale.append(path)
        if args.check:
            print(f"stale      {path.relative_to(ROOT)}")
        else:
            write_text_atomic(path, text, force=True)
            print(f"written    {path.relative_to(ROOT)}")
    if args.pdf:
        exe = shutil.which("pdflatex")
        if exe is None:
            print("pdflatex is not installed: no PDFs", file=sys.stderr)
            return 1
        out = Path(args.pdf)
        out.mkdir(parents=True, exist_ok=True)
        for path, _ in targets():
            if path.suffix == ".tex":
                shutil.copy(path, out / path.name)
                proc = subprocess.run([exe, "-halt-on-error", "-interaction=nonstopmode", path.name], cwd=out,
                                      capture_output=True, text=True)
                print(f"{'compiled' if proc.returncode == 0 else 'FAILED':<10} {out / path.with_suffix('.pdf').name}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
