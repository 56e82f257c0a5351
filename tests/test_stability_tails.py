"""Heavy tails and overflow: the generated Cauchy, half-Cauchy, Student-t, inverse Gaussian, β-NLL, mixture and
Tobit losses stay finite, and accurate, where the true value is finite.

The references are not symloss's: the log densities written out by hand and evaluated with mpmath at 60 digits
(no overflow), and scipy.stats / torch.distributions where those are finite.  The points are the extreme ones
(residuals 1e150 … 1e300, scale 1e-30, y = 1e300) where log1p(r²), r²·σ, (y − μ)²/(μ²y) and 0·∞ used to give
inf or NaN.
"""

from __future__ import annotations

import math

import pytest
import sympy as sp
from stability_support import generated_module, run_point

mpmath = pytest.importorskip("mpmath")
np = pytest.importorskip("numpy")

from symloss.stabilize import (  # noqa: E402
    Log1pSquare,
    Log1pSquareDu,
    Square,
    XMulY,
    fired_rules,
    stabilize,
)

mp = mpmath.mp
mp.dps = 60


def _diff(f, args: list[float], i: int):
    """∂f/∂args[i] with mpmath (exact inputs, 60 digits)."""
    with mpmath.workdps(120):
        xs = [mp.mpf(a) for a in args]
        # a central difference: its error is ~h² relative, far below 1e-16
        h = (abs(xs[i]) or min(abs(x) for x in xs if x) or 1) * mp.mpf(10) ** -40
        up = f(*xs[:i], xs[i] + h, *xs[i + 1:])
        down = f(*xs[:i], xs[i] - h, *xs[i + 1:])
        return (up - down) / (2 * h)


def _close(got: float, want, rel: float = 1e-13) -> bool:
    want = float(want)
    if not math.isfinite(got):
        return False
    return abs(got - want) <= rel * abs(want) + 1e-300


# -- references: the elementary losses (constants dropped as in the generated modules, full=False)
def cauchy(loc, s, y):
    return s + mpmath.log1p(((y - loc) * mpmath.exp(-s)) ** 2)


def halfcauchy(s, y):
    return s + mpmath.log1p((y * mpmath.exp(-s)) ** 2)


def studentt_learnt_df(log_df, loc, s, y):
    df = mpmath.exp(log_df)
    z = (y - loc) * mpmath.exp(-s)
    return (s + log_df / 2 + (df + 1) / 2 * mpmath.log1p(z**2 / df) + mpmath.loggamma(df / 2)
            - mpmath.loggamma((df + 1) / 2))


def inverse_gaussian(m, k, y):
    mu, lam = mpmath.exp(m), mpmath.exp(k)
    return -k / 2 + lam * (y - mu) ** 2 / (2 * mu**2 * y)


def beta_nll_value(loc, s, y):
    return (s + ((y - loc) * mpmath.exp(-s)) ** 2 / 2) * mpmath.exp(s)


TARGETS = ["numpy", "torch"]

CAUCHY_POINTS = [(-1e150, math.log(1e-30), -1.0), (-1e150, math.log(1e-30), 1e-300), (1e150, -1.0, -1e150),
                 (0.0, 0.0, 1e-300), (1.0, 0.0, 2.0), (0.0, 0.0, 1e-170)]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("point", CAUCHY_POINTS, ids=str)
def test_cauchy_extreme_residuals(target, point):
    value, grads = run_point(target, "cauchy_log_scale", list(point))
    assert _close(value, cauchy(*[mp.mpf(p) for p in point]))
    for i, g in enumerate(grads):
        assert _close(g, _diff(cauchy, list(point), i), 1e-12), (i, g)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("point", [(math.log(1e-30), 1e300), (-1.0, 1e300), (0.0, 1e-300), (0.0, 1.0),
                                   (math.log(1e30), 1e300)], ids=str)
def test_halfcauchy_y_1e300(target, point):
    value, grads = run_point(target, "halfcauchy_log_scale", list(point))
    assert _close(value, halfcauchy(*[mp.mpf(p) for p in point]))
    assert _close(grads[0], _diff(halfcauchy, list(point), 0), 1e-12)


def test_halfcauchy_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    value, _ = run_point("numpy", "halfcauchy_log_scale", [-1.0, 1e100], full=True)
    assert value == pytest.approx(-stats.halfcauchy.logpdf(1e100, scale=math.exp(-1.0)), rel=1e-14)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("point", [(math.log(1e-30), -1e150, math.log(1e-8), -1.0), (0.0, -1e150, 0.0, 1e150),
                                   (math.log(3.0), 1e150, math.log(1e-30), -1e150), (1.0, 0.5, 0.0, 1.0)],
                         ids=str)
def test_studentt_learnt_df_extreme_residuals(target, point):
    value, grads = run_point(target, "studentt_learnt_df", list(point))
    assert _close(value, studentt_learnt_df(*[mp.mpf(p) for p in point]), 1e-12)
    assert all(math.isfinite(g) for g in grads)
    # ∂ℓ/∂log_scale = 1 − (ν + 1)·x²/(1 + x²) still cancels to 0 instead of −ν at ν = 1e-30 (left for later)
    assert _close(grads[1], _diff(studentt_learnt_df, list(point), 1), 1e-10)


@pytest.mark.parametrize("target", TARGETS)
def test_studentt_finite_at_huge_residual(target):
    # df = 3, residual 2e150 / 1e-30: (y − μ)²/(σ²ν) overflows float64 by far; torch.distributions gives inf
    args = [3.0, -1e150, math.log(1e-30), 1e150]
    value, grads = run_point(target, "studentt_log_scale", args)
    df, loc, s, y = (mp.mpf(a) for a in args)
    z = (y - loc) * mpmath.exp(-s)
    want = s + mpmath.log(df) / 2 + (df + 1) / 2 * mpmath.log1p(z**2 / df) + mpmath.loggamma(df / 2) - \
        mpmath.loggamma((df + 1) / 2)
    assert _close(value, want, 1e-13)
    assert all(math.isfinite(g) for g in grads)
    assert _close(grads[1], -(df + 1) / (y - loc), 1e-13)  # ∂ℓ/∂loc → −(ν + 1)/(y − μ)
    assert _close(grads[2], -df, 1e-13)  # ∂ℓ/∂log_scale → 1 − (ν + 1) = −ν


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("point", [(-1.0, 0.0, 1e300), (0.0, math.log(1e-30), 1e300), (-1.0, 1.0, 1e300),
                                   (0.0, 0.0, 2.0)], ids=str)
def test_inverse_gaussian_y_1e300(target, point):
    value, grads = run_point(target, "inversegaussian_log_mean_log_shape", list(point))
    assert _close(value, inverse_gaussian(*[mp.mpf(p) for p in point]), 1e-13)
    for i, g in enumerate(grads):
        assert _close(g, _diff(inverse_gaussian, list(point), i), 1e-12), (i, g)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("point", [(-1e150, math.log(1e-8), -1.0), (-1e150, math.log(1e-8), 1e-300),
                                   (0.0, 0.0, 1.0)], ids=str)
def test_beta_nll_value_finite(target, point):
    value, grads = run_point(target, "beta_nll", list(point))
    assert _close(value, beta_nll_value(*[mp.mpf(p) for p in point]), 1e-13)
    assert all(math.isfinite(g) for g in grads)


@pytest.mark.parametrize("target", TARGETS)
def test_normal_mixture2_far_components_have_finite_gradients(target):
    # both components at 1e180 standard deviations: the squares overflow, their difference is 0 (same loc)
    args = [0.0, math.log(1e-30), 0.0, math.log(1e-30), 40.0, 1e150]
    value, grads = run_point(target, "normal_mixture2", args)
    assert all(math.isfinite(g) for g in grads[:1] + grads[2:3] + grads[4:])
    assert abs(grads[4]) <= 1e-15  # equal components: ℓ does not depend on the mixing weight
    # one component 2e158 σ away, the other 1e158 σ: its weight underflows to 0, 0·∞ must not be NaN
    args = [-1e150, math.log(1e-8), -1.0, math.log(1e-8), -40.0, 1e150]
    _, grads = run_point(target, "normal_mixture2", args)
    assert grads[1] == 0.0 and grads[0] == 0.0


@pytest.mark.parametrize("target", TARGETS)
def test_tobit_uncensored_branch_does_not_leak(target):
    # censored = 1: the observed-density branch (with the overflowing square) is multiplied by 1 − c = 0
    args = [1.0, math.log(1e-8), 1.0, -1e150]
    value, grads = run_point(target, "tobit", args)
    z = (mp.mpf(-1e150) - 1) / mp.mpf(1e-8)
    assert _close(value, -mpmath.log(mpmath.ncdf(-z)), 1e-13)  # −log S(y) = −log Φ(−z) ≈ 0
    assert all(math.isfinite(g) for g in grads)


# -- the rules and functions themselves
def test_rules_fire_on_the_tail_patterns():
    u, s = sp.symbols("u s", real=True)
    df = sp.Symbol("df", positive=True)
    assert "log1p_square" in fired_rules(sp.log(1 + u**2 * sp.exp(-2 * s)))
    assert stabilize(sp.log(1 + u**2 * sp.exp(-2 * s) / df)) == Log1pSquare(u, -s - sp.log(df) / 2)
    assert stabilize(u / (u**2 + sp.exp(2 * s))) == Log1pSquareDu(u, -s)
    y = sp.Symbol("y", positive=True)
    assert stabilize(Square(u * sp.exp(-s)) * sp.exp(s)) == Square(u * sp.exp(-s / 2))
    assert stabilize(Square(u) / y) == Square(u / sp.sqrt(y))
    a, b = sp.symbols("a b", real=True)
    assert "difference_of_squares" in fired_rules(Square(a) / 2 - Square(b) / 2)
    c = sp.Symbol("c", integer=True, nonnegative=True)
    assert stabilize((1 - c) * Square(a)) == XMulY(1 - c, Square(a))


@pytest.mark.parametrize("target", ["numpy", "torch"])
@pytest.mark.parametrize("u, v", [(1e-300, 800.0), (-3e-5, 720.0), (2.0, 709.0), (1e300, 100.0), (0.5, -800.0)])
def test_log1p_square_where_exp_or_x_overflows(target, u, v):
    """x = u·exp(v) overflows with exp(v) itself (v > 709.8, |u| < 1: log|x| = log|u| + v, not clamped at
    |u| = 1) or with the product; the shared parts give log(1 + x²) and its derivatives all the same."""
    mod = generated_module(target, "studentt_log_scale")
    conv = (lambda t: __import__("torch").tensor(t, dtype=__import__("torch").float64)) if target == "torch" \
        else np.float64
    with np.errstate(over="ignore"):
        e = np.exp(np.float64(v))  # the caller's exp(v): ∞ for v > 709.8
    parts = mod._square_parts(conv(u), conv(v), conv(e))
    uu, vv = mp.mpf(u), mp.mpf(v)
    xx = uu * mpmath.exp(vv)
    assert _close(float(mod._log1p_square(parts)), mpmath.log1p(xx**2), 1e-15)
    for k in (1.0, 1e30):  # k·u·exp(2v)/(1 + x²), the Student-t's ∂ℓ/∂loc with k = ν + 1
        want = k * uu * mpmath.exp(2 * vv) / (1 + xx**2)
        if abs(want) > 1e308:  # ∞ in float64
            continue
        with np.errstate(over="ignore"):  # in the branch not taken
            got = float(mod._log1p_square_du_scaled(parts, conv(u), conv(k)))
        assert _close(got, want, 1e-14), k
    assert _close(float(mod._log1p_square_dv(parts)), xx**2 / (1 + xx**2), 1e-14)
    dvc = float(mod._log1p_square_dvc(parts))
    if v < 709.0 and abs(u * math.exp(v)) < 1e300:  # x = u·exp(v) finite in float64
        assert _close(dvc, 1 / (1 + xx**2), 1e-14)
    else:  # x⁻² of an x that overflowed is lost (0), as it always was; never more than the tiny truth
        assert 0.0 <= dvc <= float(1 / (1 + xx**2)) * (1 + 1e-14)


@pytest.mark.parametrize("x", [1e-200, 1e-8, 0.5, 1.0, 1.5, 1e10, 1e160, 1e300])
@pytest.mark.parametrize("v", [0.0, -69.0, 69.0])
def test_log1p_square_helpers_against_mpmath(x, v):
    """The NumPy helpers (from a generated module) against mpmath, |x| from 1e-200 to 1e369 (x overflows)."""
    mod = generated_module("numpy", "cauchy_log_scale")
    u = x * math.exp(-v)
    if not math.isfinite(u) or u == 0:
        return
    uu, vv = mp.mpf(u), mp.mpf(v)
    xx = uu * mpmath.exp(vv)
    want = mpmath.log1p(xx**2)
    parts = mod._square_parts(np.float64(u), np.float64(v), np.exp(np.float64(v)))  # shared by the four helpers
    got = float(mod._log1p_square(parts))
    assert _close(got, want, 4e-16 * max(1, abs(float(2 * xx**2 / (1 + xx**2) * (abs(vv) + 1) / want))))
    want_du = uu * mpmath.exp(2 * vv) / (1 + xx**2)
    got_du = float(mod._log1p_square_du(parts))
    assert _close(got_du, want_du, 1e-14 * (1 + abs(v)))
    got_dv = float(mod._log1p_square_dv(parts))
    assert _close(got_dv, xx**2 / (1 + xx**2), 1e-14 * (1 + abs(v)))


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_log1p_square_rem_against_mpmath(target):
    """log(1 + x²) − x²/(1 + x²) (Log1pSquareRem, the Student-t's ∂ℓ/∂ν at large ν) from the shared parts:
    ≈ x⁴/2 for small x, where the two terms it replaces are equal to 16 digits; a few ulps over 1e-70 … 1e300."""
    mod = generated_module(target, "studentt_learnt_df")
    conv = (lambda t: __import__("torch").tensor(t, dtype=__import__("torch").float64)) if target == "torch" \
        else np.float64
    worst = 0.0
    for x in [*(10.0**k for k in range(-70, 301, 7)), 0.3, 0.9, 0.999, 1.0, 1.001, 1.5, 3.0]:
        for v in (0.0, -40.0, 60.0):
            u = x * math.exp(-v)
            with mpmath.workdps(40 + 4 * max(0, -int(math.log10(x)))):  # x⁴/2 from two terms of size x²
                xx = mpmath.mpf(u) * mpmath.exp(mpmath.mpf(v))
                want = mpmath.log1p(xx**2) - xx**2 / (1 + xx**2)
            with np.errstate(all="ignore"):
                got = float(mod._log1p_square_rem(mod._square_parts(conv(u), conv(v), conv(math.exp(v)))))
            # x = u·e^v rounds (an ulp of x is 4 ulps of x⁴)
            worst = max(worst, abs(got - float(want)) / np.spacing(float(want)))
    assert worst <= 16, worst
