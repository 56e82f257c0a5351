"""Shared helpers: the machine header, timing, loading generated modules without crashing."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("symloss", "sympy", "mpmath", "numpy", "scipy", "torch"):
        try:
            mod = __import__(name)
            out[name] = getattr(mod, "__version__", "?")
        except Exception as exc:  # noqa: BLE001
            out[name] = f"unavailable ({exc.__class__.__name__})"
    return out


def header(title: str, extra: list[str] | None = None) -> str:
    v = versions()
    lines = [
        f"# {title}",
        "",
        "Written by `python -m benchmarks` (do not edit by hand; rerun it).",
        "",
        f"* Machine: {cpu_model()}, {os.cpu_count()} logical cores (os.cpu_count), {platform.system()} "
        f"{platform.release()}",
        "* Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"* Date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
    ]
    try:
        import torch

        lines.append(f"* torch threads: {torch.get_num_threads()}")
    except Exception:  # noqa: BLE001
        pass
    lines += extra or []
    return "\n".join(lines) + "\n"


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    """The median wall time (seconds) of ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved_medians(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1
                        ) -> dict[str, float | Exception]:
    """The median wall time (seconds) of each function, measured side by side: every round calls each
    function once, in turn, so that a slow spell of a shared machine falls on all of them alike and their
    ratios stay meaningful.  A function that raises is dropped and its exception returned instead."""
    out: dict[str, float | Exception] = {}
    live = dict(fns)
    for _ in range(warmup):
        for k, fn in list(live.items()):
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - reported in the table, not fatal
                out[k] = exc
                del live[k]
    times: dict[str, list[float]] = {k: [] for k in live}
    for _ in range(repeats):
        for k, fn in list(live.items()):
            t0 = time.perf_counter()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001
                out[k] = exc
                del live[k]
                continue
            times[k].append(time.perf_counter() - t0)
    for k in live:
        out[k] = statistics.median(times[k])
    return {k: out[k] for k in fns}


def record_times(result: Any, timed: dict[str, float | Exception]) -> None:
    """Put the medians of :func:`interleaved_medians` into ``result.times`` (None and a note for a failure)."""
    for key, t in timed.items():
        if isinstance(t, Exception):
            result.times[key] = None
            result.notes.append(f"{key} failed: {t.__class__.__name__}: {str(t)[:200]}")
        else:
            result.times[key] = t


_CACHE: dict[tuple[str, str], Any] = {}


def load_module(loss, target: str):
    """(module, None) or (None, "not generated: <error>")."""
    key = (loss.name, target)
    if key in _CACHE:
        return _CACHE[key]
    try:
        from symloss.codegen import load

        mod = load(loss, target)
        # torch.compile (dynamo) re-imports the module of every function it traces: a module that
        # exists only in memory must be registered, or compiling fails with ModuleNotFoundError.
        import sys

        sys.modules.setdefault(mod.__name__, mod)
        result = (mod, None)
    except Exception as exc:  # noqa: BLE001 - the generator may be unfinished: record, do not crash
        msg = " ".join(str(exc).split())
        result = (None, f"not generated: {exc.__class__.__name__}: {msg[:300]}")
    _CACHE[key] = result
    return result


_LOSSES: dict[str, Any] = {}


def catalog_losses() -> list[tuple[Any, Any]]:
    """[(CatalogEntry, Loss or exception)] for the whole catalog (derived once, cached)."""
    from symloss.codegen import catalog

    out = []
    for entry in catalog.catalog_entries():
        key = f"{entry.distribution}:{sorted(entry.options.items(), key=str)}"
        if key not in _LOSSES:
            try:
                _LOSSES[key] = catalog.derive_entry(entry)
            except Exception as exc:  # noqa: BLE001
                _LOSSES[key] = exc
        out.append((entry, _LOSSES[key]))
    return out


def catalog_loss(name: str):
    """The catalog loss whose ``loss.name`` is ``name`` (or None)."""
    for _, loss in catalog_losses():
        if not isinstance(loss, Exception) and loss.name == name:
            return loss
    return None


def fmt_time(t: float | None) -> str:
    if t is None:
        return "—"
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.2f} ms"
    return f"{t * 1e6:.1f} µs"


def fmt_ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"
