"""Domains of parameters and targets, declared as data.

A :class:`Domain` knows the SymPy assumptions for a symbol living in it, the
interval it spans (for integration and for analysis), how to check a number
against it, and how to draw valid test points from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import sympy as sp

__all__ = ["Domain", "DOMAINS", "get_domain"]


@dataclass(frozen=True)
class Domain:
    """A set of admissible values.

    ``lower``/``upper`` are the bounds (``None`` = unbounded), ``lower_open``/
    ``upper_open`` whether the bound itself is excluded, ``integer`` whether
    only integers are admissible, ``vector`` whether it is a vector over a class
    axis (then the bounds apply elementwise).
    """

    name: str
    description: str
    lower: float | None = None
    upper: float | None = None
    lower_open: bool = True
    upper_open: bool = True
    integer: bool = False
    vector: bool = False
    assumptions: dict = field(default_factory=dict)

    def symbol(self, name: str) -> sp.Symbol:
        """A SymPy symbol carrying this domain's assumptions."""
        return sp.Symbol(name, **self.assumptions)

    @property
    def interval(self) -> sp.Set:
        """The domain as a SymPy set (elementwise for vectors)."""
        if self.integer:
            lo = sp.S.NegativeInfinity if self.lower is None else sp.Integer(int(self.lower))
            hi = sp.S.Infinity if self.upper is None else sp.Integer(int(self.upper))
            return sp.Range(lo, hi + 1 if hi.is_finite else hi)
        lo = sp.S.NegativeInfinity if self.lower is None else sp.nsimplify(self.lower)
        hi = sp.S.Infinity if self.upper is None else sp.nsimplify(self.upper)
        return sp.Interval(lo, hi, left_open=self.lower_open, right_open=self.upper_open)

    def contains(self, value: float) -> bool:
        """Whether a finite number lies in the domain."""
        try:
            v = float(value)
        except (TypeError, ValueError):
            return False
        if math.isnan(v) or math.isinf(v):
            return False
        if self.integer and v != int(v):
            return False
        if self.lower is not None and (v < self.lower or (self.lower_open and v == self.lower)):
            return False
        if self.upper is not None and (v > self.upper or (self.upper_open and v == self.upper)):
            return False
        return True

    def describe(self) -> str:
        return f"{self.name} ({self.description})"

    def sample(self, rng, size=None):
        """Draw valid points (NumPy ``Generator``), away from the edges, for tests."""
        import numpy as np

        lo, hi = self.lower, self.upper
        if self.integer:
            lo_i = 0 if lo is None else int(lo)
            hi_i = lo_i + 12 if hi is None else int(hi)
            return rng.integers(lo_i, hi_i + 1, size=size).astype(float)
        if lo is None and hi is None:
            return rng.normal(0.0, 2.0, size=size)
        if hi is None:
            return lo + np.exp(rng.normal(0.0, 0.8, size=size))
        if lo is None:
            return hi - np.exp(rng.normal(0.0, 0.8, size=size))
        return rng.uniform(lo + 0.05 * (hi - lo), hi - 0.05 * (hi - lo), size=size)


_DOMAINS = [
    Domain("real", "any real number", assumptions={"real": True}),
    Domain("positive", "x > 0", lower=0.0, assumptions={"positive": True}),
    Domain("nonnegative", "x >= 0", lower=0.0, lower_open=False, assumptions={"nonnegative": True}),
    Domain("unit_interval", "0 < x < 1", lower=0.0, upper=1.0, assumptions={"positive": True}),
    Domain(
        "closed_unit_interval", "0 <= x <= 1", lower=0.0, upper=1.0, lower_open=False, upper_open=False,
        assumptions={"nonnegative": True},
    ),
    Domain("greater_than_one", "x > 1", lower=1.0, assumptions={"positive": True}),
    Domain("binary", "x in {0, 1}", lower=0.0, upper=1.0, lower_open=False, upper_open=False, integer=True,
           assumptions={"integer": True, "nonnegative": True}),
    Domain("nonnegative_integer", "x in {0, 1, 2, ...}", lower=0.0, lower_open=False, integer=True,
           assumptions={"integer": True, "nonnegative": True}),
    Domain("positive_integer", "x in {1, 2, 3, ...}", lower=1.0, lower_open=False, integer=True,
           assumptions={"integer": True, "positive": True}),
    Domain("integer", "any integer", integer=True, assumptions={"integer": True}),
    Domain("angle", "-pi <= x < pi (an angle)", lower=-math.pi, upper=math.pi, lower_open=False,
           assumptions={"real": True}),
    # class-axis domains: the bounds hold elementwise, the constraint across the axis is in the description
    Domain("real_vector", "a real vector over the class axis", vector=True, assumptions={"real": True}),
    Domain("positive_vector", "a vector of positive numbers over the class axis", lower=0.0, vector=True,
           assumptions={"positive": True}),
    Domain("simplex", "a probability vector over the class axis (entries in (0, 1), summing to 1)",
           lower=0.0, upper=1.0, vector=True, assumptions={"positive": True}),
    Domain("class_index", "an integer class index 0 <= y < K (or a probability vector over the classes)",
           lower=0.0, lower_open=False, integer=True, assumptions={"integer": True, "nonnegative": True}),
    Domain("count_vector", "a vector of non-negative integer counts over the class axis", lower=0.0,
           lower_open=False, integer=True, vector=True, assumptions={"integer": True, "nonnegative": True}),
]

DOMAINS: dict[str, Domain] = {d.name: d for d in _DOMAINS}


def get_domain(name: str | Domain) -> Domain:
    """Look a domain up by name (``"real"``, ``"positive"``, ...)."""
    from .errors import UnknownNameError

    if isinstance(name, Domain):
        return name
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    aliases = {"pos": "positive", "positive_real": "positive", "nonneg": "nonnegative", "unit": "unit_interval",
               "probability": "unit_interval", "prob": "unit_interval", "reals": "real", "count": "nonnegative_integer",
               "counts": "nonnegative_integer", "natural": "nonnegative_integer"}
    key = aliases.get(key, key)
    if key not in DOMAINS:
        raise UnknownNameError("domain", name, DOMAINS)
    return DOMAINS[key]
