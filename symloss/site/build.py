"""Assemble the documentation site: hand-written pages from ``docs/``, one generated page per catalog loss,
the comparison page, the rendered tutorials, and ``mkdocs.yml`` with the navigation filled in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SymlossError

__all__ = ["BuildResult", "build_site", "mkdocs_build", "source_root", "select_entries", "TEST_SUBSET",
           "DEFAULT_OUT", "REPORTS"]

#: where ``python -m symloss.site`` writes by default (``build/`` is git-ignored)
DEFAULT_OUT = "build/docs-site"

#: the subset tests/test_docs_site.py builds (one-input, two-input with a convexity plot, a data input, a
#: keyword constant, a class axis, a torch built-in); the full catalog is built by the command
TEST_SUBSET = ("mse", "gaussian_nll", "poisson_log_rate", "binomial_logit_probs", "pinball",
               "categorical_softmax_probs")

#: reports written by the benchmark / accuracy jobs; copied when present, a short placeholder page otherwise
REPORTS = {
    "benchmarks.md": ("Benchmarks", "`python -m benchmarks`"),
    "benchmarks-cuda.md": ("Benchmarks on a CUDA GPU", "`python -m benchmarks` on a machine with a CUDA GPU"),
    "accuracy.md": ("Accuracy", "`python -m benchmarks`"),
    "benchmarks-gpu.md": ("GPU benchmarks (Triton)", "`python -m benchmarks.triton_gpu` on a CUDA GPU"),
}

_MARKER = ".symloss-site"  # marks an output folder this module wrote (and may therefore clear)


@dataclass
class BuildResult:
    out: Path
    pages: list[Any] = field(default_factory=list)
    tutorials: list[Any] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    html: Path | None = None


def source_root() -> Path:
    """The checkout holding ``mkdocs.yml`` and ``docs/``: the working directory if it has them, else the one
    this package sits in."""
    cwd = Path.cwd()
    if (cwd / "mkdocs.yml").is_file() and (cwd / "docs").is_dir():
        return cwd
    return Path(__file__).resolve().parents[2]


def select_entries(only: Sequence[str] | None = None) -> list[Any]:
    """Catalog entries, all of them or those whose module name is in ``only`` (in catalog order)."""
    from .. import registry
    from ..codegen.catalog import catalog_entries
    from ..codegen.model import module_name

    entries = catalog_entries()
    if not only:
        return entries

    def name(entry: Any) -> str:  # the loss name derive() gives, without deriving (that takes a while)
        opts = dict(entry.options)
        if "name" in opts:
            return module_name(str(opts["name"]))
        dist = registry.get(entry.distribution)
        links = dist.canonical_links if opts.get("link") == "canonical" else opts.get("link", {})
        return module_name("_".join([dist.name.lower(), *(f"{lk}_{p}" for p, lk in links.items())]))

    wanted = list(dict.fromkeys(only))
    chosen = [e for e in entries if name(e) in wanted]
    missing = set(wanted) - {name(e) for e in chosen}
    if missing:
        raise SymlossError(f"not in the catalog: {', '.join(sorted(missing))}")
    return chosen


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def _prepare_out(out: Path) -> Path:
    if out.exists():
        if not out.is_dir():
            raise SymlossError(f"{out} is not a directory")
        if any(out.iterdir()) and not (out / _MARKER).exists():
            raise SymlossError(f"{out} is not empty and was not written by symloss.site: refusing to clear it")
        for child in out.iterdir():
            if child.name in ("docs", "site", "mkdocs.yml"):
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / _MARKER).write_text("written by python -m symloss.site\n", encoding="utf-8")
    return out


def _loss_job(args: tuple[Any, str, float]) -> Any:
    from .pages import loss_page

    entry, folder, budget = args
    return loss_page(entry, folder, budget=budget)


def _expand_nav(nav: list[Any], replacements: dict[str, list[Any]]) -> list[Any]:
    out: list[Any] = []
    for item in nav:
        if isinstance(item, str) and item in replacements:
            out.extend(replacements[item])
        elif isinstance(item, dict):
            out.append({k: _expand_nav(v, replacements) if isinstance(v, list) else v for k, v in item.items()})
        else:
            out.append(item)
    return out


def _mkdocs_config(root: Path, out: Path, loss_nav: list[Any], tutorial_nav: list[Any]) -> str:
    import yaml

    config = yaml.safe_load((root / "mkdocs.yml").read_text(encoding="utf-8"))
    config["docs_dir"] = "docs"
    config["site_dir"] = "site"
    config["nav"] = _expand_nav(config.get("nav", []), {"GENERATED_LOSSES": loss_nav, "TUTORIALS": tutorial_nav})
    for plugin in config.get("plugins", []):
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            handler = plugin["mkdocstrings"].setdefault("handlers", {}).setdefault("python", {})
            handler["paths"] = [str(root)]
    header = "# Generated by python -m symloss.site from mkdocs.yml: do not edit.\n"
    return header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def build_site(out: str | os.PathLike[str] = DEFAULT_OUT, *, only: Sequence[str] | None = None, budget: float = 2.0,
               jobs: int = 1, tutorials: bool = True, tutorial_timeout: float = 300.0, build: bool = False,
               log: Any = None) -> BuildResult:
    """Write the site sources into ``out`` (``out/mkdocs.yml``, ``out/docs/``) and, with ``build=True``, run
    ``mkdocs build --strict`` into ``out/site``.

    ``only`` restricts the loss pages to those catalog names; ``budget`` is the analysis time per loss in
    seconds; ``jobs`` the number of worker processes for the loss pages; ``tutorials=False`` renders the
    tutorial scripts without running them (no output, no figures).  Pages and figures are deterministic for
    given inputs (verdicts depend on the time budget only through what the analysis settles in time).
    """
    from . import pages as pages_mod
    from .tutorials import run_tutorial, tutorial_page, tutorial_title

    def say(msg: str) -> None:
        if log is not None:
            print(msg, file=log, flush=True)

    root = source_root()
    out_dir = _prepare_out(Path(out).resolve())
    docs = out_dir / "docs"
    result = BuildResult(out_dir)
    t0 = time.perf_counter()

    # 1. the hand-written pages (tutorial scripts included, they are linked for download)
    shutil.copytree(root / "docs", docs, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name, (title, command) in REPORTS.items():
        if not (docs / name).is_file():
            _write(docs / name, f"# {title}\n\nThis report has not been generated yet.  It is written to "
                                f"`docs/{name}` by {command} and appears here once it exists.\n")

    # 2. one page per loss
    entries = select_entries(only)
    folder = str(docs / "losses")
    jobs_args = [(e, folder, budget) for e in entries]
    if jobs > 1 and len(entries) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            result.pages = list(pool.map(_loss_job, jobs_args))
    else:
        result.pages = []
        for a in jobs_args:
            result.pages.append(_loss_job(a))
            say(f"  loss page {result.pages[-1].name}")
    _write(docs / "losses" / "index.md", pages_mod.losses_index(result.pages))
    complete = only is None or len(entries) == len(select_entries(None))
    _write(docs / "comparison.md", pages_mod.comparison_page(result.pages, complete=complete))
    result.seconds["losses"] = time.perf_counter() - t0
    say(f"{len(result.pages)} loss pages in {result.seconds['losses']:.1f} s")

    # 3. tutorials
    t1 = time.perf_counter()
    scripts = sorted((root / "docs" / "tutorials").glob("[0-9]*.py"))
    tutorial_nav = []
    index = ["# Tutorials", "", "Each tutorial is a script in `docs/tutorials/` that runs as it stands "
             "(`python docs/tutorials/<name>.py`); the pages show the code and what it printed when the site "
             "was built.", ""]
    for script in scripts:
        run = None
        if tutorials:
            run = run_tutorial(script, docs / "tutorials" / script.stem, timeout=tutorial_timeout, cwd=root)
            result.tutorials.append(run)
            say(f"  tutorial {script.name}: {run.seconds:.1f} s")
        _write(docs / "tutorials" / f"{script.stem}.md", tutorial_page(script, run, script.stem))
        title = tutorial_title(script)
        tutorial_nav.append({title: f"tutorials/{script.stem}.md"})
        index.append(f"1. [{title}]({script.stem}.md)")
    _write(docs / "tutorials" / "index.md", "\n".join(index) + "\n")
    result.seconds["tutorials"] = time.perf_counter() - t1

    # 4. the configuration
    loss_nav = [{p.name: f"losses/{p.name}.md"} for p in result.pages]
    _write(out_dir / "mkdocs.yml", _mkdocs_config(root, out_dir, loss_nav, tutorial_nav))
    result.seconds["pages"] = time.perf_counter() - t0
    if build:
        t2 = time.perf_counter()
        result.html = mkdocs_build(out_dir)
        result.seconds["mkdocs"] = time.perf_counter() - t2
    return result


def mkdocs_build(out: str | os.PathLike[str], *, strict: bool = True, timeout: float = 600.0) -> Path:
    """``mkdocs build [--strict]`` on ``out/mkdocs.yml``; raise SymlossError with its log if it fails."""
    out = Path(out)
    cmd = [sys.executable, "-m", "mkdocs", "build", "--clean", "-f", str(out / "mkdocs.yml")]
    if strict:
        cmd.append("--strict")
    env = dict(os.environ, PYTHONHASHSEED="0", NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(cmd, cwd=out, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    if proc.returncode != 0:
        raise SymlossError(f"mkdocs build failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-6000:]}")
    return out / "site"
