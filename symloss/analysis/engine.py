"""``analyze(loss)``: every property decided by rules, symbolic calculus or a re-checked counterexample.

The order of the methods for each property is sound first, then complete:

1. composition rules over the atom table (DCP) — a proof;
2. second-order conditions (univariate ℓ'' >= 0, or every principal minor of
   the Hessian >= 0) decided with interval arithmetic — a proof;
3. for piecewise functions: each piece on its interval, continuity and the
   one-sided derivatives at every breakpoint — a proof or the exact
   non-differentiable set;
4. a counterexample search (fixed seed; random, typical and near-boundary
   points) whose hits are re-checked with mpmath at 50 digits — a disproof;
5. anything else is "unknown".

Everything runs under one time budget (:mod:`symloss.budget`): each property
gets a share of what is left, each SymPy step a share of that.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sympy as sp

from ..budget import DEFAULT_BUDGET, run_with_budget
from ..domains import Domain
from ..errors import BudgetExceeded
from ..loss import Loss
from .calculus import Clock
from .context import Problem
from .ranges import RangeEnv
from .report import PROPERTIES, Report, Verdict

__all__ = ["analyze", "convexity", "Analysis"]

# relative share of the budget for each property (what one leaves unused flows to the next)
_WEIGHTS: dict[str, float] = {
    "convex": 3.0, "differentiable": 1.0, "smooth": 1.5, "robust": 1.5, "monotone": 1.2, "symmetric": 0.6,
    "sparse": 0.4, "trainable": 0.6, "proper": 1.5,
}


class Analysis:
    """Shared state of one analysis: the problem, its proof form and ranges, and facts found on the way."""

    def __init__(self, problem: Problem, loss: Loss | None = None):
        from .properties import tidy_nonsmooth

        self.problem = problem
        self.loss = loss
        self.wrt = problem.wrt
        self.target = problem.target
        self.scalar = problem.scalar
        self.expr = problem.expr
        proof_expr, env, back = problem.proof_form()
        self.env: RangeEnv = env
        self.back = back
        self.proof_expr = tidy_nonsmooth(proof_expr, env)
        self.tidy_expr = tidy_nonsmooth(problem.expr, env)
        self.facts: dict[Any, Any] = {}  # results shared between properties (decompositions, evaluators)
        self.keep: list[Any] = []  # objects whose finalizers must not run while a budget alarm is armed
        self.convex_in: dict[str, Verdict] = {}

    def flat(self):
        return self.problem.flat()

    def decompose(self, expr: sp.Expr, u: sp.Basic, clock: Clock):
        """decompose(expr, u), computed once per analysis (several properties need the same pieces)."""
        from .calculus import decompose

        key = ("decompose", expr, u)
        if key in self.facts:
            return self.facts[key]
        dec = decompose(expr, u, self.env, clock)
        if dec is not None:  # only successes are kept: a failure may have been a matter of time
            self.facts[key] = dec
        return dec

    def show(self, e: sp.Basic) -> str:
        """An expression for a report, in the loss's own symbols."""
        if self.back:
            e = e.subs(self.back)
        return str(e)


def _unknown(name: str, reason: str, **details: Any) -> Verdict:
    return Verdict(name, "unknown", reason, details)


def _run_properties(an: Analysis, budget: float | None) -> dict[str, Verdict]:
    from . import properties as P

    checkers = {
        "convex": P.check_convex, "differentiable": P.check_differentiable, "smooth": P.check_smooth,
        "robust": P.check_robust, "monotone": P.check_monotone, "symmetric": P.check_symmetric,
        "sparse": P.check_sparse, "trainable": P.check_trainable, "proper": P.check_proper,
    }
    start = time.monotonic()
    out: dict[str, Verdict] = {}
    names = list(PROPERTIES)
    for i, name in enumerate(names):
        if budget is None:
            share = None
        else:
            left = budget - (time.monotonic() - start)
            rest = sum(_WEIGHTS[n] for n in names[i:])
            share = max(left, 0.0) * _WEIGHTS[name] / rest
        out[name] = _run_one(name, checkers[name], an, share)
    return out


def _run_one(name: str, checker, an: Analysis, share: float | None) -> Verdict:
    if share is not None and share < 0.02:
        return _unknown(name, "not decided: the time budget was spent before this property's turn")
    clock = Clock(share if share is not None else 1e9, cap=None)
    try:
        limit = None if share is None else share + 0.3
        return run_with_budget(lambda: checker(an, clock), limit, f"analysis of {name}")
    except BudgetExceeded:
        return _unknown(name, f"not decided within its share of the budget ({share:.2g} s)")
    except RecursionError:
        return _unknown(name, "not decided: the expression is too deeply nested for the symbolic steps")
    except Exception as exc:  # an analysis step failed: say so, never guess
        return _unknown(name, f"not decided: an analysis step failed ({type(exc).__name__})",
                        error=f"{type(exc).__name__}: {exc}")


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Keep the cyclic garbage collector out of the analysis: a finalizer it runs (lambdify registers one per
    function) would swallow a budget alarm that fires inside it, and the step would overrun its budget."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


_WARM = False


def _warm_up() -> None:
    """Build lambdify's NumPy/SciPy/mpmath namespaces once per process, before any budget clock starts
    (the first call imports scipy.special and costs a few tenths of a second)."""
    global _WARM
    if _WARM:
        return
    from .context import _MP_EXTRA, _NP_EXTRA

    x = sp.Symbol("x")
    sp.lambdify([x], sp.loggamma(x), modules=[_NP_EXTRA, "scipy", "numpy"])
    sp.lambdify([x], sp.loggamma(x), modules=[_MP_EXTRA, "mpmath"])
    _WARM = True


def analyze(loss: Loss, *, budget: float | None = DEFAULT_BUDGET) -> Report:
    """Decide convexity, differentiability, smoothness, robustness, monotonicity, symmetry, sparsity,
    trainability and properness of ``loss`` (in its trained inputs ``loss.wrt``).

    Each verdict is "proved", "disproved" (with a witness re-checked with
    mpmath at 50 digits) or "unknown".  ``budget`` is the total time in
    seconds (``None``: no limit).
    """
    _warm_up()
    t0 = time.monotonic()
    with _no_cyclic_gc():
        problem = Problem.from_loss(loss)
        an = Analysis(problem, loss)
        verdicts = _run_properties(an, budget)
        convex_in = dict(an.convex_in)
        del an, problem  # their finalizers run here, outside every budget alarm
    return Report(
        loss=loss.name, **verdicts, convex_in=convex_in, expr=str(loss.expr),
        wrt=tuple(str(w) for w in loss.wrt), budget=budget, elapsed=time.monotonic() - t0,
    )


def convexity(expr: sp.Expr | str, wrt: Sequence[sp.Symbol] | sp.Symbol, domains: Mapping[sp.Basic, Domain | str]
              | None = None, *, budget: float | None = DEFAULT_BUDGET) -> Verdict:
    """The convexity verdict of a bare expression in ``wrt`` (other symbols range over ``domains``, default real)."""
    if isinstance(expr, str):
        expr = sp.sympify(expr)
    if isinstance(wrt, sp.Basic):
        wrt = [wrt]
    from .properties import convexity_verdict

    _warm_up()
    with _no_cyclic_gc():
        problem = Problem.from_expr(expr, list(wrt), dict(domains or {}))
        an = Analysis(problem)
        clock = Clock(budget if budget is not None else 1e9)
        try:
            return run_with_budget(lambda: convexity_verdict(an, tuple(wrt), clock, "convex"),
                                   None if budget is None else budget + 0.3, "convexity")
        except BudgetExceeded:
            return _unknown("convex", f"not decided within the budget ({budget} s)")
