"""analyze() over the whole registry: every entry, with and without its canonical links, completes with a valid
verdict for every property; a summary table (properties × statuses) is printed (run pytest with -s to see it).

The per-entry budget is SYMLOSS_ANALYSIS_BUDGET seconds (default 1.0, to keep the suite fast; the verdicts
are the same kind at any budget, with fewer "unknown" at larger ones).
"""

from __future__ import annotations

import collections
import os
import time

import pytest

import symloss
from symloss.analysis import PROPERTIES, analyze

BUDGET = float(os.environ.get("SYMLOSS_ANALYSIS_BUDGET", "1.0"))


def _entries() -> list[tuple[str, str | None]]:
    return [(n, link) for n in symloss.distribution_names() for link in (None, "canonical")]


@pytest.mark.slow
def test_analyze_whole_registry():
    counts = {p: collections.Counter() for p in PROPERTIES}
    rows = []
    slowest = (0.0, "")
    total = time.monotonic()
    analysis_time = 0.0
    for name, link in _entries():
        loss = symloss.derive(name, link=link)
        t = time.monotonic()
        report = analyze(loss, budget=BUDGET)
        dt = time.monotonic() - t
        analysis_time += dt
        slowest = max(slowest, (dt, loss.name))
        # a budget is a promise: the whole analysis ends within it (plus the grace of the last step)
        assert dt <= BUDGET + 10, (loss.name, dt)  # generous: CI machines are shared and noisy
        assert [v.name for v in report] == list(PROPERTIES)
        assert set(report.convex_in) == {str(w) for w in loss.wrt}
        for v in [*report, *report.convex_in.values()]:
            assert v.status in ("proved", "disproved", "unknown"), (loss.name, v)
            assert "error" not in v.details, (loss.name, v.name, v.details.get("error"))
            if v.status == "disproved":
                assert v.witness, (loss.name, v.name)
        for v in report:
            counts[v.name][v.status] += 1
        rows.append((loss.name, "".join({"proved": "P", "disproved": "D", "unknown": "?"}[v.status]
                                        for v in report), dt))
    total = time.monotonic() - total
    width = max(len(r[0]) for r in rows)
    print(f"\n{'entry':<{width}}  {' '.join(p[:4] for p in PROPERTIES)}  seconds")
    for entry, statuses, dt in rows:
        print(f"{entry:<{width}}  {'    '.join(statuses)}     {dt:.2f}")
    print(f"\n{'property':<15} proved disproved unknown   ({len(rows)} entries, budget {BUDGET} s each)")
    for p in PROPERTIES:
        c = counts[p]
        print(f"{p:<15} {c['proved']:>6} {c['disproved']:>9} {c['unknown']:>7}")
    print(f"analysis time {analysis_time:.1f} s (slowest {slowest[1]}: {slowest[0]:.2f} s); "
          f"with derivations {total:.1f} s")
    assert len(rows) == 2 * len(symloss.distribution_names())
