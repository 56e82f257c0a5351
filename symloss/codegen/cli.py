"""The code generation part of the command line: ``symloss derive ... --target TARGET [-o PATH] [--force]``
and ``symloss catalog [--dir generated] [--check]``.

``--target c -o PATH`` writes the C source to PATH and its header beside it (``loss.c`` → ``loss.h``);
without ``-o`` the source alone is printed."""

from __future__ import annotations

import argparse
from typing import Any

from ..loss import Loss
from .targets import TARGETS

__all__ = ["add_codegen_options", "emit_from_args", "add_catalog_command"]


def add_codegen_options(parser: argparse.ArgumentParser) -> None:
    """``--target``, ``-o/--output`` and ``--force`` on a subcommand that derives a loss."""
    group = parser.add_argument_group("code generation")
    group.add_argument("--target", choices=TARGETS, default=None,
                       help="generate a module for the loss in this target (printed unless -o is given)")
    group.add_argument("-o", "--output", metavar="PATH", default=None,
                       help="write the generated module to PATH (atomically; needs --target); the C target "
                            "also writes its header beside PATH, with PATH's stem and the suffix .h")
    group.add_argument("--force", action="store_true", help="overwrite existing output files (-o, --latex, --markdown)")


def emit_from_args(loss: Loss, args: argparse.Namespace) -> str | None:
    """Generate the module the options ask for: write it to ``args.output`` and return None, or return
    the source for printing when no output path is given."""
    from ..errors import SymlossError
    from . import generate, write

    target = getattr(args, "target", None)
    output = getattr(args, "output", None)
    if target is None:
        if output:
            raise SymlossError(f"--output needs --target ({' | '.join(TARGETS)})")
        return None
    if output:
        # a target with several files (C) writes the others beside PATH, with its stem: PATH.c and PATH.h
        write(loss, target, output, force=bool(getattr(args, "force", False)))
        return None
    return generate(loss, target)


def add_catalog_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``symloss catalog [--dir DIR] [--check]``."""
    p = subparsers.add_parser(
        "catalog",
        help="write the generated modules of every registry entry, for every target (generated/)",
        description="Write generated/<target>/<name>.<suffix> (numpy/<name>.py, c/<name>.c, ...) and "
                    "generated/README.md for every registry entry with its canonical link(s) and a few classic "
                    "variants.  With --check, write nothing and exit with status 1 when a file differs from what "
                    "would be written.",
    )
    p.add_argument("--dir", default="generated", metavar="DIR", help="the catalog directory (default: generated)")
    p.add_argument("--check", action="store_true", help="compare only; exit 1 listing the files that drifted")
    p.set_defaults(func=_cmd_catalog)
    return p


def _cmd_catalog(args: argparse.Namespace) -> int:
    from .catalog import write_catalog

    changed = write_catalog(args.dir, check=args.check)
    if args.check:
        if changed:
            print(f"the catalog in {args.dir} drifted ({len(changed)} file(s)); run `symloss catalog` to update:")
            for path in changed:
                print(f"  {path}")
            return 1
        print(f"the catalog in {args.dir} is up to date")
        return 0
    for path in changed:
        print(f"wrote {path}")
    print(f"{len(changed)} file(s) changed in {args.dir}")
    return 0
