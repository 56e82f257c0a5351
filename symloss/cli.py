"""The command line: a thin layer over the Python API.

Exit codes: 0 success, 1 a user error (one line, no traceback), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from .errors import SymlossError

__all__ = ["main"]


def _pairs(items: Sequence[str] | None, what: str, allow_bare: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                if allow_bare:
                    out[part] = None
                    continue
                raise SymlossError(f"{what} expects NAME=VALUE, got {part!r}")
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def _derive_from_args(args: argparse.Namespace):
    from .derive import derive

    fixed = _pairs(args.fixed, "--fixed", allow_bare=True)
    bare = [item for item in (args.link or []) if "=" not in item]
    if bare and len(args.link) == 1 and "," not in bare[0]:
        links: Any = bare[0]  # a bare link name that fits one parameter ("--link log")
    else:
        links = _pairs(args.link, "--link")
    prior = None
    if args.prior:
        p = _pairs(args.prior, "--prior", allow_bare=True)
        if len(p) != 1:
            raise SymlossError("--prior takes one prior, e.g. --prior weights=normal or --prior laplace")
        ((k, v),) = p.items()
        prior = k if v is None else {k: v}
    wrt = [w for item in (args.wrt or []) for w in item.split(",") if w.strip()] or None
    return derive(args.name, link=links or None, fixed=fixed or None, wrt=wrt, prior=prior, budget=args.budget)


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--link", action="append", metavar="PARAM=LINK", help="e.g. rate=log, probs=logit, scale=log")
    p.add_argument("--fixed", action="append", metavar="PARAM[=VALUE]",
                   help="fix a parameter to a number (scale=1) or keep it as a named constant (scale)")
    p.add_argument("--wrt", action="append", metavar="INPUT", help="the trained inputs (default: all non-fixed)")
    p.add_argument("--prior", action="append", metavar="[WEIGHTS=]PRIOR", help="MAP: weights=normal or laplace")
    p.add_argument("--budget", type=float, default=5.0, metavar="SECONDS", help="time budget per symbolic step")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _cmd_list(args: argparse.Namespace) -> int:
    from . import registry

    rows = []
    for d in registry.REGISTRY.values():
        params = ", ".join(f"{p.name}:{p.domain}" for p in d.params)
        links = ", ".join(f"{k}={v}" for k, v in d.canonical_links.items())
        rows.append({"name": d.name, "params": params, "support": d.support, "links": links,
                     "aliases": list(d.aliases), "source": d.source, "torch": d.torch})
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    w = max(len(r["name"]) for r in rows)
    print(f"{'name':<{w}}  {'parameters':<52}  {'support':<20}  canonical links")
    for r in rows:
        print(f"{r['name']:<{w}}  {r['params']:<52}  {r['support']:<20}  {r['links']}")
    print(f"\n{len(rows)} distributions; names are case-insensitive and aliases work (gaussian, lorentz, ...)")
    return 0


def _cmd_derive(args: argparse.Namespace) -> int:
    from .report import format_loss

    loss = _derive_from_args(args)
    report = None
    if args.analyze:
        from .analysis import analyze

        report = analyze(loss, budget=args.budget)
    code = None
    if getattr(args, "target", None) or getattr(args, "output", None):
        from .codegen.cli import emit_from_args

        code = emit_from_args(loss, args)
    written = []
    if getattr(args, "latex", None) or getattr(args, "markdown", None):
        from .export.cli import export_from_args

        written = export_from_args(loss, args) or []
    if args.json:
        data = loss.to_dict()
        if report is not None:
            data["analysis"] = report.to_dict()
        if code is not None:
            data["code"] = code
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    print(format_loss(loss))
    if report is not None:
        print("\nProperties (symloss analyze NAME ... for the reasons in full)")
        print(report.table())
    if code is not None:
        print(f"\nGenerated {args.target} module\n")
        print(code)
    elif getattr(args, "output", None):
        print(f"\nwrote {args.output}")
    for path in written:
        print(f"wrote {path}")
    return 0


def _cmd_custom(args: argparse.Namespace) -> int:
    from .custom import custom
    from .report import format_loss

    params = _pairs(args.param, "--param")
    loss = custom(args.density, target=args.target, params=params, support=args.support,
                  normalize=args.normalize, budget=args.budget, wrt=args.wrt or None)
    if args.json:
        print(json.dumps(loss.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(format_loss(loss))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="symloss", description="Turn a likelihood into a trainable loss.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="the distribution registry")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("derive", help="derive the loss of a registry distribution")
    p.add_argument("name", help="a registry name, e.g. poisson, normal, bernoulli")
    _add_model_options(p)
    p.add_argument("--no-analyze", dest="analyze", action="store_false",
                   help="skip the property analysis (convexity, smoothness, ...)")
    _optional("symloss.codegen.cli", "add_codegen_options", p)
    _optional("symloss.export.cli", "add_latex_options", p)
    p.set_defaults(func=_cmd_derive)

    p = sub.add_parser("custom", help="derive the loss of a density you type")
    p.add_argument("density", help='e.g. "exp(-abs(y - mu)/b)/(2*b)"')
    p.add_argument("--param", action="append", metavar="NAME=DOMAIN", help="mu=real, b=positive, ...")
    p.add_argument("--target", default="y")
    p.add_argument("--support", default="real")
    p.add_argument("--normalize", action="store_true", help="keep the normaliser of an unnormalised density")
    p.add_argument("--wrt", action="append")
    p.add_argument("--budget", type=float, default=5.0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_custom)

    _optional("symloss.analysis.cli", "add_analyze_command", sub)
    _optional("symloss.codegen.cli", "add_catalog_command", sub)
    return parser


def _optional(module: str, function: str, target: Any) -> None:
    """Let a pipeline stage add its own options/subcommands (imported lazily; the CLI stays a thin layer)."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:  # a stage that is not installed in this build
        if exc.name != module:
            raise
        return
    getattr(mod, function)(target)


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SymlossError as exc:
        # one line: multi-line messages (a formula with a caret under the error) keep their first line
        print(f"symloss: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("symloss: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
