"""Soundness: random compositions of atoms; every "proved convex" survives a numeric midpoint test and every
witness re-checks (independently of the analysis' own evaluators)."""

from __future__ import annotations

import mpmath
import numpy as np
import sympy as sp
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from symloss.analysis import convexity

X = sp.Symbol("x", real=True)
XP = sp.Symbol("x", positive=True)
Y = sp.Symbol("y", real=True)  # a constant ranging over the reals
C = [sp.Integer(-2), sp.Integer(-1), sp.Rational(-1, 2), sp.Rational(1, 3), sp.Integer(1), sp.Integer(2)]


def _unary(draw, a: sp.Expr, positive: bool) -> sp.Expr:
    kind = draw(st.sampled_from([
        "exp", "softplus", "abs", "square", "cube", "neg", "scale", "hypot", "log1p_sq", "cosh", "logcosh",
        "exp_neg", "inv1p_sq", "atan", "loggamma", "sqrt_pos", "log_pos", "inv_pos", "pw", "inv", "inv_sq",
        "neg_log_sq",
    ]))
    c = draw(st.sampled_from(C))
    if kind == "inv":
        return 1 / a  # a pole where a = 0: never convex across it
    if kind == "inv_sq":
        return 1 / a**2
    if kind == "neg_log_sq":
        return -sp.log(a**2)
    if kind == "exp":
        return sp.exp(a)
    if kind == "softplus":
        return sp.log(1 + sp.exp(a))
    if kind == "abs":
        return sp.Abs(a)
    if kind == "square":
        return a**2
    if kind == "cube":
        return a**3
    if kind == "neg":
        return -a
    if kind == "scale":
        return c * a
    if kind == "hypot":
        return sp.sqrt(1 + a**2)
    if kind == "log1p_sq":
        return sp.log(1 + a**2)
    if kind == "cosh":
        return sp.cosh(a)
    if kind == "logcosh":
        return sp.log(sp.cosh(a))
    if kind == "exp_neg":
        return sp.exp(-a)
    if kind == "inv1p_sq":
        return 1 / (1 + a**2)
    if kind == "atan":
        return sp.atan(a)
    if kind == "loggamma":
        return sp.loggamma(1 + a**2)
    if kind == "sqrt_pos":
        return sp.sqrt(a) if positive else sp.sqrt(a**2 + 1)
    if kind == "log_pos":
        return sp.log(a) if positive else sp.log(1 + sp.exp(a))
    if kind == "inv_pos":
        return 1 / a if positive else sp.exp(a)
    # a piecewise function with a breakpoint at c
    return sp.Piecewise((a, X < c), (c * a, True)) if not positive else sp.Max(a, c)


@st.composite
def expressions(draw, depth: int = 3, positive: bool = False):
    x = XP if positive else X
    if depth == 0 or draw(st.integers(0, 4)) == 0:
        leaf = draw(st.sampled_from(["x", "x", "x", "x-y", "c"]))
        if leaf == "x":
            return x
        if leaf == "x-y":
            return x - Y
        return x * draw(st.sampled_from(C)) + draw(st.sampled_from(C))
    op = draw(st.sampled_from(["unary", "unary", "add", "max", "min", "mul"]))
    a = draw(expressions(depth - 1, positive))
    if op == "unary":
        return _unary(draw, a, positive)
    b = draw(expressions(depth - 1, positive))
    if op == "add":
        return a + b
    if op == "max":
        return sp.Max(a, b)
    if op == "min":
        return sp.Min(a, b)
    return a * b


def _points(positive: bool, rng: np.random.Generator, n: int) -> np.ndarray:
    if positive:
        return np.exp(rng.uniform(-5, 5, n))
    return np.concatenate([rng.normal(0, 3, n // 2), rng.uniform(-60, 60, n - n // 2)])


def _float_finite(f_np, *args) -> bool:
    with np.errstate(all="ignore"):
        try:
            v = complex(f_np(*[float(a) for a in args]))
        except (ValueError, ZeroDivisionError, OverflowError, TypeError):
            return False
    return bool(np.isfinite(v.real) and abs(v.real) < 1e250)


def _midpoint_ok(expr: sp.Expr, positive: bool) -> None:
    """Every proved-convex function passes the midpoint test at random pairs (mpmath, 30 digits)."""
    x = XP if positive else X
    syms = [x, Y] if Y in expr.free_symbols else [x]
    f = sp.lambdify(syms, expr, "mpmath")
    f_np = sp.lambdify(syms, expr, ["scipy", "numpy"])
    rng = np.random.default_rng(7)
    a_s, b_s = _points(positive, rng, 60), _points(positive, rng, 60)
    ys = rng.normal(0, 3, 60)
    with mpmath.workdps(30):
        for a, b, yv in zip(a_s, b_s, ys):
            args = [mpmath.mpf(float(yv))] if len(syms) == 2 else []
            if not all(_float_finite(f_np, p, *([float(yv)] if args else [])) for p in (a, b, (a + b) / 2)):
                continue  # overflow in double precision: skip rather than build a gigantic mpmath number
            a, b = mpmath.mpf(float(a)), mpmath.mpf(float(b))
            try:
                fa, fb, fm = f(a, *args), f(b, *args), f((a + b) / 2, *args)
            except (ValueError, ZeroDivisionError, OverflowError):
                continue
            vals = []
            for v in (fa, fb, fm):
                v = mpmath.mpmathify(v)
                if isinstance(v, mpmath.mpc):
                    if abs(v.imag) > mpmath.mpf(10) ** -25:
                        break
                    v = v.real
                if not mpmath.isfinite(v) or abs(v) > 1e300:
                    break
                vals.append(v)
            if len(vals) < 3:
                continue
            fa, fb, fm = vals
            assert fm <= (fa + fb) / 2 + mpmath.mpf(10) ** -20 * (1 + abs(fa) + abs(fb)), (expr, a, b, yv)


def _witness_ok(expr: sp.Expr, w: dict, positive: bool) -> None:
    """The witness' midpoint inequality, recomputed with mpmath at 50 digits from its plain numbers."""
    x = XP if positive else X
    syms = [x, Y] if Y in expr.free_symbols else [x]
    f = sp.lambdify(syms, expr, "mpmath")
    with mpmath.workdps(50):
        extra = [mpmath.mpf(w["fixed"]["y"])] if len(syms) == 2 else []
        a, b = mpmath.mpf(w["a"]["x"]), mpmath.mpf(w["b"]["x"])
        fa, fb, fm = (mpmath.mpmathify(f(p, *extra)) for p in (a, b, (a + b) / 2))
        fa, fb, fm = (v.real if isinstance(v, mpmath.mpc) else v for v in (fa, fb, fm))
        assert fm - (fa + fb) / 2 > 0, (expr, w)


@seed(20240607)
@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data(), positive=st.booleans())
def test_random_compositions_are_sound(data, positive):
    expr = data.draw(expressions(3, positive))
    x = XP if positive else X
    if x not in expr.free_symbols:
        return
    domains = {x: "positive" if positive else "real", Y: "real"}
    v = convexity(expr, x, domains, budget=0.4)
    assert v.status in ("proved", "disproved", "unknown")
    if v.status == "proved":
        _midpoint_ok(expr, positive)
    elif v.status == "disproved":
        _witness_ok(expr, v.witness, positive)


def test_known_atoms_sound():
    """Each atom of the table, composed as the rules allow, passes the numeric test."""
    for expr, positive in [
        (sp.log(1 + sp.exp(X - Y)), False), (sp.log(sp.exp(X) + sp.exp(-X) + sp.exp(Y)), False),
        (sp.log(sp.cosh(2 * X - Y)), False), (sp.log(sp.besseli(0, X)), False), (sp.loggamma(XP), True),
        (XP * sp.log(XP), True), (X**2 / (1 + sp.exp(-Y)), False), (sp.Abs(X - Y) + sp.Max(X, 2 * X - 1), False),
        (XP ** sp.Rational(3, 2), True), (1 / XP, True), (-sp.sqrt(XP), True), (sp.cosh(X), False),
    ]:
        x = XP if positive else X
        v = convexity(expr, x, {x: "positive" if positive else "real", Y: "real"}, budget=2)
        assert v.status == "proved", (expr, v.reason)
        _midpoint_ok(expr, positive)


@seed(20240608)
@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data(), positive=st.booleans())
def test_interval_arithmetic_contains_every_value(data, positive):
    """range_of(e) contains e's value at every admissible point (the sign proofs rest on this)."""
    from symloss.analysis.context import Problem

    expr = data.draw(expressions(3, positive))
    x = XP if positive else X
    env = Problem.from_expr(expr, [x], {x: "positive" if positive else "real", Y: "real"}).env()
    r = env(expr)
    syms = [x, Y]
    f = sp.lambdify(syms, expr, "mpmath")
    f_np = sp.lambdify(syms, expr, ["scipy", "numpy"])
    rng = np.random.default_rng(11)
    with mpmath.workdps(30):
        for a, yv in zip(_points(positive, rng, 40), rng.normal(0, 3, 40)):
            if not _float_finite(f_np, a, yv):
                continue  # exp(exp(...)) overflows: mpmath would try to build the huge number exactly
            try:
                v = mpmath.mpmathify(f(mpmath.mpf(float(a)), mpmath.mpf(float(yv))))
            except (ValueError, ZeroDivisionError, OverflowError):
                continue
            if isinstance(v, mpmath.mpc):
                if abs(v.imag) > mpmath.mpf(10) ** -25:
                    continue
                v = v.real
            if not mpmath.isfinite(v):
                continue
            tol = mpmath.mpf(10) ** -20 * (1 + abs(v))
            assert float(r.lo) <= v + tol and v - tol <= float(r.hi), (expr, a, yv, v, str(r))
