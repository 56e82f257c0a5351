"""The inverse Mills ratio and two cancellations: the Tobit, inverse Gaussian and Student-t gradients at the
extreme points where the previous code gave ∞ − ∞, 0·∞ or a cancelled 0.

* LogNdtrDeriv, φ(x)/Φ(x) = d/dx log Φ(x), the gradient of every log Φ (Tobit, truncated Normal): its helpers
  on each target against mpmath (50+ digits) and scipy.special, x from −1e300 to 40;
* exp_shift_product: (e^m − y)·e^(−2m + k) at μ = y = 1e-300 (the inverse Gaussian's ∂ℓ/∂log_mean);
* square_complement: 1 − (ν + 1)·x²/(1 + x²) at ν = 1e-30 and x = 1e150 (the Student-t's ∂ℓ/∂log_scale).

The references are not symloss's: the log densities written out by hand and evaluated (and differentiated) with
mpmath at 60 digits, and scipy.special.log_ndtr / scipy.stats.norm where those are finite.
"""

from __future__ import annotations

import math

import pytest
import sympy as sp
from stability_support import c_helper, generated_module, run_point

mpmath = pytest.importorskip("mpmath")
np = pytest.importorskip("numpy")

from symloss.stabilize import LogNdtr, LogNdtrDeriv, elementary, stabilize  # noqa: E402

mp = mpmath.mp
mp.dps = 60
TARGETS = ["numpy", "torch"]


def _diff(f, args: list[float], i: int):
    """∂f/∂args[i] with mpmath (exact inputs, a central difference at 120 digits)."""
    with mpmath.workdps(120):
        xs = [mp.mpf(a) for a in args]
        h = (abs(xs[i]) or 1) * mp.mpf(10) ** -40
        up = f(*xs[:i], xs[i] + h, *xs[i + 1:])
        down = f(*xs[:i], xs[i] - h, *xs[i + 1:])
        return (up - down) / (2 * h)


def _close(got: float, want, rel: float) -> bool:
    want = float(want)
    return math.isfinite(got) and abs(got - want) <= rel * abs(want) + 1e-300


def mills(x):
    """φ(x)/Φ(x) in mpmath (ncdf does not cancel in the lower tail)."""
    with mpmath.workdps(130):
        x = mp.mpf(x)
        if x < -1e6:  # mpmath's erfc fails this far out: Laplace's continued fraction (error ≪ 1e-100)
            f = -x
            for k in range(80, 0, -1):
                f = -x + k / f
            return f
        return mpmath.npdf(x) / mpmath.ncdf(x)


# -- the helper on each target
XS = [-1e300, -1e150, -1e10, -1e5, -40.0, -6.0, -5.000001, -5.0, -4.999999, -3.0, -1.0, -1e-8, 0.0, 0.5, 2.0,
      8.0, 30.0, 37.0]


def _tolerance(x: float) -> float:
    # above 8, r(x) ≈ φ(x) and its condition number is ≈ x²; elsewhere a few dozen ulps
    return 1e-14 * max(1.0, x * x)


@pytest.mark.parametrize("x", XS)
def test_log_ndtr_deriv_numpy_and_torch_helpers(x):
    want = mills(x)
    got_np = float(generated_module("numpy", "tobit")._log_ndtr_deriv(np.float64(x)))
    assert _close(got_np, want, _tolerance(x)), (got_np, want)
    torch = pytest.importorskip("torch")
    got_t = float(generated_module("torch", "tobit")._log_ndtr_deriv(torch.tensor(x, dtype=torch.float64)))
    assert _close(got_t, want, _tolerance(x)), (got_t, want)


def test_log_ndtr_deriv_against_scipy():
    special = pytest.importorskip("scipy.special")
    xs = np.linspace(-37.0, 8.0, 901)
    want = np.exp(-0.5 * xs * xs - special.log_ndtr(xs)) / math.sqrt(2 * math.pi)  # fine in this range
    got = generated_module("numpy", "tobit")._log_ndtr_deriv(xs)
    assert np.allclose(got, want, rtol=1e-12, atol=0)
    # and the far tail, where scipy's own exp(−x²/2 − log Φ) is ∞ − ∞: r(x) = −x + 1/x + O(x⁻³)
    far = np.array([-1e8, -1e20, -1e154, -1e200, -1e308])
    got = generated_module("numpy", "tobit")._log_ndtr_deriv(far)
    assert np.all(np.isfinite(got)) and np.allclose(got, -far + 1 / far, rtol=1e-15)
    with np.errstate(all="ignore"):
        assert not np.all(np.isfinite(np.exp(-0.5 * far * far - special.log_ndtr(far))))


def test_log_ndtr_deriv_jax_helper():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    mod = generated_module("jax", "tobit")
    xs = [x for x in XS if abs(x) < 1e300]
    got = np.asarray(mod._log_ndtr_deriv(jax.numpy.asarray(xs, dtype=jax.numpy.float64)))
    for g, x in zip(got, xs):
        assert _close(float(g), mills(x), 1e3 * _tolerance(x)), (x, g)


def test_log_ndtr_deriv_c_helper(tmp_path):
    f = c_helper(tmp_path, "tobit", "log_ndtr_deriv", 1)
    if f is None:
        pytest.skip("no C compiler")
    for x in XS:
        assert _close(f(x), mills(x), _tolerance(x)), (x, f(x))


def test_log_ndtr_fdiff_is_the_mills_ratio():
    x = sp.Symbol("x", real=True)
    assert sp.diff(LogNdtr(x), x) == LogNdtrDeriv(x)
    for v in (-1e150, -40, -1, 0, 3):
        assert abs(float(LogNdtrDeriv(sp.Float(v, 30)).evalf(40)) - float(mills(v))) <= 1e-15 * abs(float(mills(v)))
    # the exact derivative r' = −r·(x + r) and the elementary form agree with SymPy's own
    for v in (-2.5, 0.7):
        at = sp.Float(v, 40)
        want = sp.diff(elementary(LogNdtrDeriv(x)), x).subs(x, at).evalf(30)
        assert abs(sp.diff(LogNdtrDeriv(x), x).subs(x, at).evalf(30) - want) < 1e-25


# -- the losses
def tobit_censored(loc, s, y):
    """−log Φ(−z) = z²/2 + log √(2π) + log r(−z), z = (y − μ)/σ (mpmath's ncdf fails for z > 1e6)."""
    with mpmath.workdps(120):
        z = (y - loc) * mpmath.exp(-s)
        if z < 1e6:
            return -mpmath.log(mpmath.ncdf(-z))
        return z * z / 2 + mpmath.log(2 * mpmath.pi) / 2 + mpmath.log(mills(-z))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("point", [(-1e150, -1.0, 0.0), (-1e150, 0.0, 1.0), (-1e150, 0.0, 1e150),
                                   (-1e100, math.log(1e-30), 1.0), (3.0, 0.0, 1.0), (-40.0, 0.0, 1.0)], ids=str)
def test_tobit_censored_gradient_in_the_far_tail(target, point):
    loc, s, y = point
    value, grads = run_point(target, "tobit", [loc, s, 1.0, y])
    ref = [mp.mpf(loc), mp.mpf(s), mp.mpf(y)]
    want_value = tobit_censored(*ref)
    assert _close(value, want_value, 1e-14)
    # ∂/∂loc = −r(−z)/σ, ∂/∂log σ = −z·r(−z) with z = (y − μ)/σ; also by differentiating the reference
    z = (ref[2] - ref[0]) * mpmath.exp(-ref[1])
    want = [-mills(-z) * mpmath.exp(-ref[1]), -z * mills(-z)]
    for i, g in enumerate(grads[:2]):
        assert _close(g, want[i], 1e-13), (i, g, want[i])
    assert _close(grads[0], _diff(tobit_censored, [loc, s, y], 0), 1e-12)


def inverse_gaussian(m, k, y):
    mu, lam = mpmath.exp(m), mpmath.exp(k)
    return -k / 2 + lam * (y - mu) ** 2 / (2 * mu**2 * y)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("k", [math.log(1e-30), -18.420680743952367, -1.0, 0.0, 5.0])
@pytest.mark.parametrize("my", [(math.log(1e-300), 1e-300), (math.log(1e-300), 2e-300), (-700.0, 1e-300),
                                (-700.0, 1e10), (0.0, 1.0 + 2**-40)], ids=str)
def test_inverse_gaussian_mu_equal_y_tiny(target, k, my):
    m, y = my
    value, grads = run_point(target, "inversegaussian_log_mean_log_shape", [m, k, y])
    mm, kk, yy = mp.mpf(m), mp.mpf(k), mp.mpf(y)
    # ∂ℓ/∂m = (e^m − y)·e^(−2m + k): its condition number in m is e^m/|e^m − y| (the difference cancels)
    want = (mpmath.exp(mm) - yy) * mpmath.exp(-2 * mm + kk)
    kappa = float((mpmath.exp(mm) + yy) / abs(mpmath.exp(mm) - yy)) * (1 + abs(m))
    if not mpmath.isfinite(want) or abs(want) > 1.7e308:  # the true gradient overflows too
        assert grads[0] == (-math.inf if want < 0 else math.inf)
        return
    assert math.isfinite(grads[0]), grads
    assert abs(grads[0] - float(want)) <= 1e-14 * kappa * abs(float(want)) + 1e-300
    assert _close(float(want), _diff(inverse_gaussian, [m, k, y], 0), 1e-20)
    want_value = inverse_gaussian(mm, kk, yy)
    if math.isfinite(float(want_value)):
        assert math.isfinite(value)


def studentt_learnt_df(log_df, loc, s, y):
    df = mpmath.exp(log_df)
    z = (y - loc) * mpmath.exp(-s)
    return (s + log_df / 2 + (df + 1) / 2 * mpmath.log1p(z**2 / df) + mpmath.loggamma(df / 2)
            - mpmath.loggamma((df + 1) / 2))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("point", [(math.log(1e-30), -1e150, 0.0, -1.0), (math.log(1e-30), -1e150, -1.0, 1e-300),
                                   (math.log(1e-30), 1.0, 0.0, 1e20), (math.log(1e-8), 0.0, -18.4, 1e10),
                                   (0.0, 0.0, 0.0, 1.5), (3.0, 1.0, 0.5, -2.0)], ids=str)
def test_studentt_learnt_df_log_scale_gradient_tiny_df(target, point):
    _, grads = run_point(target, "studentt_learnt_df", list(point))
    for i in range(3):
        want = _diff(studentt_learnt_df, list(point), i)
        assert _close(grads[i], want, 1e-11), (i, grads[i], float(want))
    if point[1] == -1e150:
        assert grads[2] < 0 and _close(grads[2], -math.exp(point[0]), 1e-12)  # −ν, not 0


def test_square_complement_rule_reaches_the_studentt_gradient():
    from symloss.stabilize import Log1pSquare, Log1pSquareDvc

    x, s = sp.symbols("x s", real=True)
    nu = sp.Symbol("nu", positive=True)
    # ∂/∂s of (ν + 1)/2·log(1 + x²e^(−2s)/ν) + s = 1 − (ν + 1)·x²/(ν e^(2s) + x²)
    grad = sp.diff((nu + 1) / 2 * Log1pSquare(x, -s - sp.log(nu) / 2) + s, s)
    out = stabilize(grad)
    assert out.has(Log1pSquareDvc)
    at = {x: sp.Integer(3), s: sp.Rational(1, 10), nu: sp.Integer(2)}
    assert abs(elementary(out).subs(at).evalf(40) - elementary(grad).subs(at).evalf(40)) < 1e-30
