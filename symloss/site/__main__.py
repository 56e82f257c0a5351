"""``python -m symloss.site [OUT] [--only NAME ...] [--budget S] [--jobs N] [--no-tutorials] [--build]``."""

from __future__ import annotations

import argparse
import sys
import time

from ..errors import SymlossError
from .build import DEFAULT_OUT, build_site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m symloss.site",
        description="Generate the documentation site (loss pages, figures, tutorials, mkdocs.yml) and build it.")
    parser.add_argument("out", nargs="?", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these catalog losses (module names)")
    parser.add_argument("--budget", type=float, default=2.0, help="analysis time budget per loss, seconds (2)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes for the loss pages (1)")
    parser.add_argument("--no-tutorials", action="store_true", help="render the tutorials without running them")
    parser.add_argument("--build", action="store_true", help="then run mkdocs build --strict into OUT/site")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        result = build_site(args.out, only=args.only, budget=args.budget, jobs=args.jobs,
                            tutorials=not args.no_tutorials, build=args.build, log=sys.stderr)
    except SymlossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    times = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    print(f"wrote {result.out / 'mkdocs.yml'} and {result.out / 'docs'} ({times}; total "
          f"{time.perf_counter() - start:.1f} s)")
    if result.html is not None:
        print(f"site: {result.html / 'index.html'}")
    else:
        print(f"build it with: mkdocs build --strict -f {result.out / 'mkdocs.yml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
