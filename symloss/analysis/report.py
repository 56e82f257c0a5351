"""Verdicts and the report: what was decided, how, and the numbers behind it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

__all__ = ["Verdict", "Report", "PROPERTIES", "STATUSES"]

STATUSES = ("proved", "disproved", "unknown")

# the fixed order of the report's properties
PROPERTIES: tuple[str, ...] = (
    "convex", "differentiable", "smooth", "robust", "monotone", "symmetric", "sparse", "trainable", "proper",
)

DESCRIPTIONS: dict[str, str] = {
    "convex": "convex jointly in the trained inputs, for every target and constant in their domains",
    "differentiable": "differentiable in the trained inputs everywhere in the domain",
    "smooth": "gradient Lipschitz (L-smooth) in the trained inputs, for fixed target and constants",
    "robust": "gradient bounded as the target (the residual) ranges over its support",
    "monotone": "loss non-decreasing as each trained input moves away from its minimiser",
    "symmetric": "L(prediction, target) = L(target, prediction) and even in the residual",
    "sparse": "the penalty promotes exact zeros (its subdifferential at 0 is an interval)",
    "trainable": "usable with gradient descent (a gradient that is not zero almost everywhere)",
    "proper": "the expected loss under the true distribution is stationary (score mean 0) at the true parameter",
}


@dataclass(frozen=True)
class Verdict:
    """One property's verdict.

    ``status`` is "proved" (the property holds, by the rule or computation in
    ``reason``), "disproved" (it fails; ``witness`` holds concrete numbers that
    show it, re-checked with mpmath at 50 digits) or "unknown" (nothing settled
    it within the budget).  ``holds`` is True / False / None accordingly.
    """

    name: str
    status: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    witness: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.status == "disproved" and not self.witness:
            raise ValueError(f"a disproved verdict needs a witness ({self.name})")

    @property
    def holds(self) -> bool | None:
        return {"proved": True, "disproved": False}.get(self.status)

    @property
    def property(self) -> str:
        return self.name

    def to_dict(self) -> dict[str, Any]:
        return {"property": self.name, "status": self.status, "holds": self.holds, "reason": self.reason,
                "details": _jsonable(self.details), "witness": _jsonable(self.witness)}

    def line(self) -> str:
        return f"{self.name}: {self.status} — {self.reason}"

    def __str__(self) -> str:
        return self.line()


@dataclass(frozen=True)
class Report:
    """One :class:`Verdict` per property (iterate for them in a fixed order), plus convexity per trained input."""

    loss: str
    convex: Verdict
    differentiable: Verdict
    smooth: Verdict
    robust: Verdict
    monotone: Verdict
    symmetric: Verdict
    sparse: Verdict
    trainable: Verdict
    proper: Verdict
    convex_in: dict[str, Verdict] = field(default_factory=dict)
    expr: str = ""
    wrt: tuple[str, ...] = ()
    budget: float | None = None
    elapsed: float = 0.0

    def __iter__(self) -> Iterator[Verdict]:
        for name in PROPERTIES:
            yield getattr(self, name)

    def __getitem__(self, name: str) -> Verdict:
        if name not in PROPERTIES:
            raise KeyError(name)
        return getattr(self, name)

    def items(self) -> Iterator[tuple[str, Verdict]]:
        for v in self:
            yield v.name, v

    @property
    def verdicts(self) -> dict[str, Verdict]:
        return dict(self.items())

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for v in self:
            out[v.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "loss": self.loss,
            "expr": self.expr,
            "wrt": list(self.wrt),
            "budget": self.budget,
            "elapsed": round(self.elapsed, 3),
            "properties": {name: v.to_dict() for name, v in self.items()},
            "convex_in": {k: v.to_dict() for k, v in self.convex_in.items()},
        }

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **{"indent": 2, **kw})

    def table(self) -> str:
        """A compact table: property | status | one-line reason."""
        rows = [("property", "status", "reason")]
        for name, v in self.items():
            rows.append((name, v.status, v.reason))
            if name == "convex" and len(self.convex_in) > 1:
                for inp, cv in self.convex_in.items():
                    rows.append((f"  in {inp}", cv.status, cv.reason))
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        lines = [f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows]
        lines.insert(1, f"{'-' * w0}  {'-' * w1}  {'-' * 6}")
        return "\n".join(lines)

    def format(self) -> str:
        """The full report: every verdict with its reason, details and witness."""
        out = [f"symloss analysis · {self.loss}"]
        if self.expr:
            out.append(f"  loss: {self.expr}")
        if self.wrt:
            out.append(f"  trained inputs: {', '.join(self.wrt)}")
        c = self.counts()
        out.append(f"  {c['proved']} proved, {c['disproved']} disproved, {c['unknown']} unknown "
                   f"in {self.elapsed:.2f} s (budget {self.budget} s)")
        out.append("")
        for name, v in self.items():
            out.append(f"{name} — {DESCRIPTIONS[name]}")
            out.append(f"  {v.status.upper()}: {v.reason}")
            for k, val in v.details.items():
                out.append(f"    {k}: {_show(val)}")
            if v.witness:
                out.append("    witness:")
                for k, val in v.witness.items():
                    out.append(f"      {k}: {_show(val)}")
            if name == "convex" and self.convex_in:
                for inp, cv in self.convex_in.items():
                    out.append(f"  in {inp} alone: {cv.status.upper()}: {cv.reason}")
                    if cv.witness:
                        out.append(f"    witness: {_show(cv.witness)}")
            out.append("")
        return "\n".join(out).rstrip() + "\n"

    def __str__(self) -> str:
        return self.table()


def _show(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_show(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:.10g}"
    return str(v)


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if v == v and abs(v) != float("inf") else str(v)
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_jsonable(x) for x in v]
    if isinstance(v, sp.Basic):
        if v.is_Integer:
            return int(v)
        return str(v)
    return str(v)
