"""What the analysis needs to know about a loss: its variables, their domains and ranges, and numeric evaluators.

* :class:`Problem` — the loss as the analysis sees it: the expression, the
  trained inputs, the target, every other symbol (constants, inputs that are
  not trained) with its :class:`~symloss.domains.Domain`, and the coupling
  constraints between them that a registry entry states (``y <= total_count``).
* :class:`Flat` — a finite instance for numeric work: class-axis (or batch)
  losses are instantiated at a concrete size (K = 3 classes, n = 4 examples)
  with one scalar symbol per component, and everything is lambdified for
  NumPy (fast screening) and for mpmath (50-digit re-checks).

A counterexample found on the finite instance is a counterexample of the
general claim ("convex for every K"), so disproofs carry over; proofs never
come from the instance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from ..domains import Domain, get_domain
from ..loss import Loss
from .ranges import Range, RangeEnv, domain_range

__all__ = ["Problem", "Flat", "mp_value", "SPECIAL_VALUES"]

CLASS_SIZE = 3  # classes in the finite instance of a class-axis loss
BATCH_SIZE = 4  # examples in the finite instance of a batch metric

# "near the boundary" and typical values tried for each domain, besides random draws
SPECIAL_VALUES: dict[str, tuple[float, ...]] = {
    "real": (0.0, 1.0, -1.0, 0.5, -0.5, 3.0, -3.0, 10.0, -10.0, 100.0, -100.0, 1e3, -1e3),
    "positive": (1e-3, 1e-2, 0.1, 0.5, 1.0, 2.0, 10.0, 100.0, 1e3),
    "nonnegative": (0.0, 1e-3, 0.5, 1.0, 10.0, 100.0),
    "unit_interval": (1e-3, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 0.999),
    "closed_unit_interval": (0.0, 1.0, 0.5, 1e-3, 0.999),
    "greater_than_one": (1.001, 1.5, 2.0, 10.0, 100.0),
    "binary": (0.0, 1.0),
    "nonnegative_integer": (0.0, 1.0, 2.0, 5.0, 20.0, 100.0),
    "positive_integer": (1.0, 2.0, 5.0, 20.0, 100.0),
    "integer": (0.0, 1.0, -1.0, 5.0, -5.0, 50.0, -50.0),
    "angle": (-3.0, -1.0, 0.0, 1.0, 3.0),
    "real_vector": (0.0, 1.0, -1.0, 5.0, -5.0),
    "positive_vector": (1e-2, 0.5, 1.0, 5.0),
    "count_vector": (0.0, 1.0, 3.0),
}


def _mp_heaviside(x, h0=None):
    import mpmath

    if x > 0:
        return mpmath.mpf(1)
    if x < 0:
        return mpmath.mpf(0)
    return mpmath.mpf(0.5) if h0 is None else h0


def _np_heaviside(x, h0=0.5):
    return np.heaviside(x, h0)


def _mp_dirac(x, *k):
    import mpmath

    return mpmath.inf if x == 0 else mpmath.mpf(0)


def _np_dirac(x, *k):
    return np.where(np.asarray(x) == 0, np.inf, 0.0)


# DiracDelta appears in second derivatives of |x| and max: zero away from the kink (the kink itself is a null set)
_MP_EXTRA: dict[str, Any] = {"Heaviside": _mp_heaviside, "DiracDelta": _mp_dirac}
_NP_EXTRA: dict[str, Any] = {"Heaviside": _np_heaviside, "DiracDelta": _np_dirac}


def mp_value(v: float | Fraction | int):
    """An exact mpmath number for a float or a fraction (at the current precision)."""
    import mpmath

    if isinstance(v, Fraction):
        return mpmath.mpf(v.numerator) / v.denominator
    return mpmath.mpf(v)


# ---------------------------------------------------------------------------------------------------------
@dataclass
class Problem:
    """The loss as the analysis sees it."""

    expr: sp.Expr
    wrt: tuple[sp.Basic, ...]
    target: sp.Basic | None
    domains: dict[sp.Basic, Domain]
    constraints: tuple[tuple[sp.Basic, sp.Basic], ...] = ()  # (a, b): a <= b
    vector: Any = None  # VectorSymbols of a class-axis / batch loss
    axis: str = "class"  # "class" | "batch"
    loss: Loss | None = None
    _flat: Flat | None = field(default=None, repr=False)

    @staticmethod
    def from_loss(loss: Loss) -> Problem:
        vector = loss.metadata.get("vector") if loss.event == "vector" else None
        return Problem(
            expr=_elementary(loss.expr), wrt=tuple(loss.wrt), target=loss.target, domains=dict(loss.domains),
            constraints=loss.support_constraints, vector=vector,
            axis=str(loss.metadata.get("axis", "class")), loss=loss,
        )

    @staticmethod
    def from_expr(expr: sp.Expr, wrt: Sequence[sp.Symbol], domains: Mapping[sp.Basic, Domain | str],
                  target: sp.Basic | None = None) -> Problem:
        doms = {s: get_domain(d) for s, d in domains.items()}
        for s in expr.free_symbols:
            doms.setdefault(s, get_domain("real"))
        return Problem(expr=expr, wrt=tuple(wrt), target=target, domains=doms)

    # -- symbols -------------------------------------------------------------------------------------------
    @property
    def params(self) -> tuple[sp.Basic, ...]:
        """Every symbol other than the trained inputs (the target first)."""
        out = [s for s in self.domains if s not in self.wrt]
        if self.target in out:
            out.remove(self.target)
            out.insert(0, self.target)
        return tuple(out)

    @property
    def scalar(self) -> bool:
        return self.vector is None

    def env(self, extra: Mapping[sp.Basic, Range] | None = None) -> RangeEnv:
        ranges: dict[sp.Basic, Range] = {s: domain_range(d) for s, d in self.domains.items()}
        if self.vector is not None:
            v = self.vector
            ranges.setdefault(v.K, Range(Fraction(1), math.inf, False, True))
            for idx in (v.k, v.j):
                ranges.setdefault(idx, Range(Fraction(0), math.inf, False, True))
        return RangeEnv({**ranges, **(extra or {})})

    def proof_form(self) -> tuple[sp.Expr, RangeEnv, dict[sp.Basic, sp.Expr]]:
        """The expression with coupling constraints between non-trained symbols made explicit.

        ``y <= total_count`` becomes ``total_count = y + slack`` with ``slack >= 0`` so that interval
        arithmetic sees ``total_count - y >= 0``.  Returns (expression, ranges, back-substitution).
        """
        expr = self.expr
        extra: dict[sp.Basic, Range] = {}
        back: dict[sp.Basic, sp.Expr] = {}
        for a, b in self.constraints:
            if b in self.wrt or a in self.wrt:
                continue  # a constraint on a trained input changes its domain, not a constant
            if isinstance(b, sp.Symbol) and b != self.target:
                slack = sp.Symbol(f"{b}_minus_{a}", integer=bool(self.domains[b].integer), nonnegative=True)
                expr = expr.subs(b, a + slack)
                extra[slack] = Range(Fraction(0), math.inf, False, True)
                back[slack] = b - a
        return expr, self.env(extra), back

    def flat(self) -> Flat:
        if self._flat is None:
            self._flat = Flat.build(self)
        return self._flat


# ---------------------------------------------------------------------------------------------------------
@dataclass
class Flat:
    """A finite scalar instance with numeric evaluators."""

    expr: sp.Expr
    xs: tuple[sp.Symbol, ...]  # the trained components
    ps: tuple[sp.Symbol, ...]  # every other symbol
    groups: dict[sp.Basic, tuple[sp.Symbol, ...]]  # original symbol -> its components
    domain_of: dict[sp.Symbol, Domain]
    group_domain: dict[sp.Basic, Domain]
    size: int | None
    constraints: tuple[tuple[sp.Symbol, sp.Symbol], ...]
    _np_cache: dict[Any, Callable] = field(default_factory=dict, repr=False)
    _mp_cache: dict[Any, Callable] = field(default_factory=dict, repr=False)

    @staticmethod
    def build(problem: Problem) -> Flat:
        expr = problem.expr
        groups: dict[sp.Basic, tuple[sp.Symbol, ...]] = {}
        domain_of: dict[sp.Symbol, Domain] = {}
        size = None
        if problem.vector is not None:
            size = BATCH_SIZE if problem.axis == "batch" else CLASS_SIZE
            v = problem.vector
            expr = expr.subs(v.K, size).doit()
            mapping: dict[sp.Basic, sp.Symbol] = {}
            for base, dom in problem.domains.items():
                if isinstance(base, sp.IndexedBase):
                    comps = tuple(sp.Symbol(f"{base}_{i}", **dom.assumptions) for i in range(size))
                    groups[base] = comps
                    for i, c in enumerate(comps):
                        mapping[base[i]] = c
                        domain_of[c] = dom
            expr = expr.xreplace(mapping)
        for s, dom in problem.domains.items():
            if not isinstance(s, sp.IndexedBase):
                groups[s] = (s,)  # type: ignore[assignment]
                domain_of[s] = dom  # type: ignore[index]
        xs = tuple(c for w in problem.wrt for c in groups.get(w, ()))
        ps = tuple(c for s in problem.params for c in groups.get(s, ()))
        stray = [s for s in expr.free_symbols if s not in xs and s not in ps]
        for s in stray:  # symbols without a declared domain: real (or as their assumptions say)
            dom = get_domain("positive" if s.is_positive else "real")
            domain_of[s] = dom
            groups[s] = (s,)
        ps = ps + tuple(stray)
        cons = tuple((a, b) for a, b in problem.constraints if a in domain_of and b in domain_of)
        return Flat(expr, xs, ps, groups, domain_of,
                    {s: d for s, d in problem.domains.items()}, size, cons)  # type: ignore[arg-type]

    @property
    def symbols(self) -> tuple[sp.Symbol, ...]:
        return self.xs + self.ps

    # -- evaluators ------------------------------------------------------------------------------------------
    def np_fn(self, expr: sp.Expr | None = None, key: Any = None) -> Callable:
        e = self.expr if expr is None else expr
        k = key if key is not None else e
        fn = self._np_cache.get(k)
        if fn is None:
            fn = sp.lambdify(self.symbols, e, modules=[_NP_EXTRA, "scipy", "numpy"])
            self._np_cache[k] = fn
        return fn

    def mp_fn(self, expr: sp.Expr | None = None, key: Any = None) -> Callable:
        e = self.expr if expr is None else expr
        k = key if key is not None else e
        fn = self._mp_cache.get(k)
        if fn is None:
            fn = sp.lambdify(self.symbols, e, modules=[_MP_EXTRA, "mpmath"])
            self._mp_cache[k] = fn
        return fn

    def eval_np(self, values: Mapping[sp.Symbol, np.ndarray], expr: sp.Expr | None = None) -> np.ndarray:
        fn = self.np_fn(expr)
        args = [values[s] for s in self.symbols]
        with np.errstate(all="ignore"):
            try:
                out = fn(*args)
            except (ValueError, TypeError, ZeroDivisionError, OverflowError):
                n = len(next(iter(values.values()))) if values else 1
                return np.full(n, np.nan)
        out = np.asarray(out, dtype=complex if np.iscomplexobj(out) else float)
        if np.iscomplexobj(out):
            out = np.where(np.abs(out.imag) < 1e-12 * (1 + np.abs(out.real)), out.real, np.nan)
        n = len(next(iter(values.values()))) if values else 1
        return np.broadcast_to(out, (n,)).astype(float)

    def eval_mp(self, point: Mapping[sp.Symbol, float | Fraction], expr: sp.Expr | None = None, dps: int = 50):
        """The value at an exact point with mpmath at ``dps`` digits (None if undefined or not real)."""
        import mpmath

        fn = self.mp_fn(expr)
        with mpmath.workdps(dps):
            try:
                v = fn(*[mp_value(point[s]) for s in self.symbols])
            except (ValueError, TypeError, ZeroDivisionError, OverflowError):
                return None
            if isinstance(v, mpmath.mpc):
                if abs(v.imag) > mpmath.mpf(10) ** (-dps + 10) * (1 + abs(v.real)):
                    return None
                v = v.real
            try:
                v = mpmath.mpf(v)
            except (TypeError, ValueError):
                return None
            if not mpmath.isfinite(v):
                return None
            return v

    # -- sampling ---------------------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, n: int, which: Sequence[sp.Basic], special: float = 0.3
               ) -> dict[sp.Symbol, np.ndarray]:
        """``n`` draws of the components of ``which`` (original symbols), inside their domains."""
        out: dict[sp.Symbol, np.ndarray] = {}
        for s in which:
            comps = self.groups.get(s)
            if comps is None:
                continue
            dom = self.group_domain.get(s) or self.domain_of[comps[0]]
            block = _sample_group(dom, len(comps), rng, n, special, is_vector=isinstance(s, sp.IndexedBase))
            for i, c in enumerate(comps):
                out[c] = block[:, i]
        return out

    def sample_all(self, rng: np.random.Generator, n: int, special: float = 0.3) -> dict[sp.Symbol, np.ndarray]:
        """Draws of every symbol, with the coupling constraints enforced (rows that violate them are redrawn)."""
        originals = [s for s in self.groups]
        vals = self.sample(rng, n, originals, special)
        for _ in range(20):
            bad = self.violations(vals)
            if not bad.any():
                break
            fresh = self.sample(rng, int(bad.sum()), originals, special)
            for s in vals:
                vals[s] = vals[s].copy()
                vals[s][bad] = fresh[s]
        bad = self.violations(vals)
        if bad.any():
            keep = ~bad
            vals = {s: v[keep] for s, v in vals.items()}
        return vals

    def violations(self, vals: Mapping[sp.Symbol, np.ndarray]) -> np.ndarray:
        n = len(next(iter(vals.values()))) if vals else 0
        bad = np.zeros(n, dtype=bool)
        for a, b in self.constraints:
            if a in vals and b in vals:
                bad |= vals[a] > vals[b]
        return bad

    def in_domain(self, s: sp.Symbol, v: np.ndarray) -> np.ndarray:
        dom = self.domain_of[s]
        ok = np.isfinite(v)
        if dom.lower is not None:
            ok &= (v > dom.lower) if dom.lower_open else (v >= dom.lower)
        if dom.upper is not None:
            ok &= (v < dom.upper) if dom.upper_open else (v <= dom.upper)
        if dom.integer:
            ok &= v == np.round(v)
        return ok

    def name(self, s: sp.Symbol) -> str:
        return str(s)


def _sample_group(dom: Domain, size: int, rng: np.random.Generator, n: int, special: float,
                  is_vector: bool) -> np.ndarray:
    if is_vector and dom.name == "simplex":
        alpha = np.ones(size)
        block = rng.dirichlet(alpha, size=n)
        return np.clip(block, 1e-12, None) / np.clip(block, 1e-12, None).sum(axis=1, keepdims=True)
    if is_vector and dom.name == "class_index":
        idx = rng.integers(0, size, size=n)
        block = np.zeros((n, size))
        block[np.arange(n), idx] = 1.0
        return block
    block = np.empty((n, size))
    for i in range(size):
        block[:, i] = np.asarray(dom.sample(rng, size=n), dtype=float)
    specials = SPECIAL_VALUES.get(dom.name)
    if specials and special > 0:
        mask = rng.random((n, size)) < special
        picks = rng.choice(np.asarray(specials, dtype=float), size=(n, size))
        block = np.where(mask, picks, block)
    if dom.name == "angle":
        block = np.clip(block, -math.pi, math.pi - 1e-9)
    return block


def _elementary(expr: sp.Expr) -> sp.Expr:
    """The expression with symloss.stabilize's functions (LogAddExp, LogNdtr, ... that a likelihood such as a
    mixture writes explicitly) replaced by their textbook formulas, which the symbolic steps and lambdify know."""
    from ..stabilize import StableFunction

    if not expr.has(StableFunction):
        return expr
    return expr.replace(lambda e: isinstance(e, StableFunction), lambda e: e.as_elementary())
