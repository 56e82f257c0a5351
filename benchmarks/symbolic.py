"""Symbolic cost: derive + analyse + generate for the whole catalog, and the CLI's cold start."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field


@dataclass
class SymRow:
    name: str
    derive_s: float | None = None
    analyze_s: float | None = None
    generate_s: float | None = None
    note: str = ""

    @property
    def total(self) -> float:
        return sum(x for x in (self.derive_s, self.analyze_s, self.generate_s) if x is not None)


def catalog_costs(log=print) -> list[SymRow]:
    """Each catalog entry derived, analysed and generated (both targets) from scratch, in this process."""
    import symloss
    from symloss.codegen import catalog
    from symloss.codegen.model import TARGETS, build_model
    from symloss.codegen.render import render

    rows = []
    for entry in catalog.catalog_entries():
        row = SymRow(f"{entry.distribution} {dict(entry.options)}")
        try:
            t0 = time.perf_counter()
            loss = catalog.derive_entry(entry)
            row.derive_s = time.perf_counter() - t0
            row.name = loss.name
        except Exception as exc:  # noqa: BLE001
            row.note = f"derive failed: {exc.__class__.__name__}: {str(exc)[:150]}"
            rows.append(row)
            continue
        try:
            t0 = time.perf_counter()
            symloss.analyze(loss)
            row.analyze_s = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001
            row.note = f"analyze failed: {exc.__class__.__name__}: {str(exc)[:150]}"
        try:
            t0 = time.perf_counter()
            for target in TARGETS:
                render(build_model(loss, target))
            row.generate_s = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001
            row.generate_s = time.perf_counter() - t0
            row.note += ("; " if row.note else "") + f"not generated: {' '.join(str(exc).split())[:150]}"
        log(f"  symbolic {row.name}: derive {row.derive_s or 0:.2f}s analyze {row.analyze_s or 0:.2f}s "
            f"generate {row.generate_s or 0:.2f}s")
        rows.append(row)
    return rows


@dataclass
class ColdStart:
    command: str
    times: list[float] = field(default_factory=list)
    rc: int | None = None
    error: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None


COLD_COMMANDS = (
    [sys.executable, "-m", "symloss", "derive", "poisson", "--link", "rate=log", "--no-analyze"],
    [sys.executable, "-m", "symloss", "derive", "poisson", "--link", "rate=log"],
)


def cold_starts(repeats: int, log=print) -> list[ColdStart]:
    """Whole-process wall time of the CLI (a fresh interpreter each time)."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    out = []
    for cmd in COLD_COMMANDS:
        cs = ColdStart("python " + " ".join(cmd[1:]))
        for _ in range(repeats):
            t0 = time.perf_counter()
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root, timeout=300)
            cs.times.append(time.perf_counter() - t0)
            cs.rc = p.returncode
            if p.returncode != 0:
                cs.error = (p.stderr or p.stdout).strip().splitlines()[-1:][0][:200] if (p.stderr or p.stdout) else ""
        log(f"  cold start {cs.command}: median {cs.median:.2f}s (rc {cs.rc})")
        out.append(cs)
    return out
