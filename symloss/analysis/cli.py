"""The ``symloss analyze`` subcommand (registered by :func:`add_analyze_command`)."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_analyze_command"]


def _cmd_analyze(args: argparse.Namespace) -> int:
    from ..cli import _derive_from_args
    from .engine import analyze

    loss = _derive_from_args(args)
    report = analyze(loss, budget=args.budget)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(report.format())
    return 0


def add_analyze_command(subparsers) -> argparse.ArgumentParser:
    """Register ``symloss analyze NAME [--link ...] [--fixed ...] [--wrt ...] [--prior ...] [--budget S] [--json]``.

    ``--budget`` is the total time for the analysis (it also bounds each symbolic step of the derivation).
    """
    from ..cli import _add_model_options

    p = subparsers.add_parser("analyze", help="decide convexity, smoothness, robustness, ... of a derived loss",
                              description="Analyse the loss of a registry distribution: each property is proved, "
                                          "disproved (with a witness re-checked at 50 digits) or unknown.")
    p.add_argument("name", help="a registry name, e.g. normal, bernoulli, cauchy")
    _add_model_options(p)
    p.set_defaults(func=_cmd_analyze)
    return p
