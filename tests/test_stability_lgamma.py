"""Log-gamma cancellations at huge arguments: the log_beta, digamma_difference, lgamma_stirling and
digamma_stirling rules and their helpers (lbeta, digamma_diff, lgammacor, digammacor) on every target.

References symloss did not produce: mpmath at 60+ digits, scipy.special.betaln / gammaln / digamma, and
scipy.stats log-densities.
"""

from __future__ import annotations

import math
import os

import mpmath
import numpy as np
import pytest
import scipy.special as sc
import scipy.stats as ss
import sympy as sp
import torch
from stability_support import c_helper, generated_module
from test_codegen_support import module_for

BIG = 69.07755278982137  # log 1e30
SWEEP = [10.0**k for k in range(-30, 31, 2)] + [0.5, 1.0, 1.5, 2.0, 3.0, 7.5, 9.99, 10.0, 10.01, 15.0, 30.0, 100.0]


def ulps(got: float, want) -> float:
    want = float(want)
    if want == 0:
        return abs(got) / 5e-324
    return abs(got - want) / np.spacing(abs(want))


def run(target: str, key: str, *args):
    """(values, gradients) of value_and_grad(reduction="none") as float64 arrays."""
    mod = module_for(key, target)
    conv = torch.tensor if target == "torch" else np.asarray
    value, grads = mod.value_and_grad(*(conv(np.asarray(a, dtype=np.float64)) for a in args), reduction="none")
    return np.asarray(value, dtype=np.float64), [np.asarray(g, dtype=np.float64) for g in grads]


def beta_truth(l1: float, l0: float, y: float):
    with mpmath.workdps(80):
        a, b, yy = mpmath.exp(l1), mpmath.exp(l0), mpmath.mpf(y)
        value = -(-mpmath.log(mpmath.beta(a, b)) + (a - 1) * mpmath.log(yy) + (b - 1) * mpmath.log1p(-yy))
        g1 = a * (mpmath.digamma(a) - mpmath.digamma(a + b) - mpmath.log(yy))
        g0 = b * (mpmath.digamma(b) - mpmath.digamma(a + b) - mpmath.log1p(-yy))
        return float(value), float(g1), float(g0)


# ---------------------------------------------------------------------------------------------------------
# Beta: lgamma(a) + lgamma(b) − lgamma(a + b) with a + b == b in float64
@pytest.mark.parametrize("target", ["numpy", "torch"])
@pytest.mark.parametrize("l1, l0, y, tol", [(0.0, BIG, 1e-300, 16), (-18.420680743952367, BIG, 1e-300, 16),
                                            (BIG, 0.0, 0.5, 16), (BIG, -BIG, 1e-300, 16), (-BIG, -BIG, 0.5, 16),
                                            # moderate: the lgammas and the two log terms of size 1 cancel to
                                            # −0.93 (κ ≈ 5), as before these rules
                                            (1.0, 2.0, 0.3, 64), (2.5, 2.4, 0.5, 64)])
def test_beta_value_and_gradients_at_huge_concentrations(target, l1, l0, y, tol):
    values, (g1, g0) = run(target, "beta", [l1], [l0], [y])
    want, w1, w0 = beta_truth(l1, l0, y)
    assert ulps(values[0], want) <= tol, (values[0], want)
    assert ulps(g1[0], w1) <= 16, (g1[0], w1)
    assert ulps(g0[0], w0) <= 16, (g0[0], w0)


def test_beta_value_matches_scipy_stats():
    values, _ = run("numpy", "beta", [0.0], [BIG], [1e-300])
    assert values[0] == pytest.approx(-ss.beta.logpdf(1e-300, 1.0, 1e30), rel=1e-14)
    assert values[0] == pytest.approx(sc.betaln(1.0, 1e30), rel=1e-14)  # (a − 1)·log y = 0, (b − 1)·log1p(−y) ≈ 0


# ---------------------------------------------------------------------------------------------------------
# the helpers themselves, over a sweep from 1e-30 to 1e30
def corrections_module(target: str):
    """A module with the general δ and ε helpers (branches below and above 10): the catalog's losses now call
    only the series alone (their arguments are ≥ 10) or ε, so a custom loss ℓ = δ(loc), ∂ℓ/∂loc = ε(loc)."""
    from test_codegen import piecewise_loss

    from symloss.codegen import load
    from symloss.stabilize import DigammaCorrection, LgammaCorrection

    return load(piecewise_loss("stirling_corrections", lambda u, y: LgammaCorrection(u) - y,
                               lambda u, y: DigammaCorrection(u)), target)


def helpers(target: str):
    mod = module_for("beta", target)
    gmod = corrections_module(target)
    conv = (lambda v: torch.tensor(v, dtype=torch.float64)) if target == "torch" else (lambda v: np.float64(v))
    return (lambda a, b: float(mod._lbeta(conv(a), conv(b))),
            lambda x, h: float(mod._digamma_diff(conv(x), conv(h))),
            lambda x: float(gmod._lgammacor(conv(x))),
            lambda x: float(gmod._digammacor(conv(x))))


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_lbeta_against_scipy_and_mpmath(target):
    lbeta = helpers(target)[0]
    worst = 0.0
    for a in SWEEP:
        for b in SWEEP:
            with mpmath.workdps(250):
                want = mpmath.log(mpmath.beta(a, b))
            worst = max(worst, ulps(lbeta(a, b), want))
            # scipy's betaln (Cephes) is itself off by up to 5e6 ulps at (1e24, 1e30): a loose check only
            assert lbeta(a, b) == pytest.approx(sc.betaln(a, b), rel=1e-8, abs=1e-12)
    # the three-lgamma branch (both arguments below 10) keeps the cancellation lgamma has always had there:
    # lbeta(0.5, 3) = 0.0645 from lgamma terms of size 1
    assert worst <= 32


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_digamma_difference_without_cancellation(target):
    ddiff = helpers(target)[1]
    worst = 0.0
    for x in SWEEP:
        for h in [*SWEEP, 0.0, -0.5 * x]:
            with mpmath.workdps(250):
                want = mpmath.digamma(mpmath.mpf(x) + mpmath.mpf(h)) - mpmath.digamma(x)
            worst = max(worst, ulps(ddiff(x, h), want))
    assert worst <= 16
    assert ddiff(1e30, 1.0) == pytest.approx(1e-30, rel=1e-14)  # ψ(1e30 + 1) − ψ(1e30), 0 in float64
    assert ddiff(1e-300, 0.0) == 0.0  # h = 0 is exactly 0, also at a tiny x (no 0/0)


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_digamma_difference_of_one_half(target):
    """ψ(x + ½) − ψ(x), the Student-t's helper (8 shifts without a where, then a series in 1/x²): a few ulps from
    1e-300 to 1e300, also where ψ(x + ½) and ψ(x) nearly cancel (x ≥ 10)."""
    from test_codegen import piecewise_loss

    from symloss.codegen import load
    from symloss.stabilize import DigammaDifference

    # the Student-t's losses now call ψ(x + ½) − ψ(x) − 1/(2x) (lgamma_half_log): a custom loss keeps the helper
    mod = load(piecewise_loss("digamma_diff_half", lambda u, y: DigammaDifference(u, sp.Rational(1, 2)) - y,
                              lambda u, y: DigammaDifference(u, sp.Rational(1, 2))), target)  # (a stand-in gradient)
    conv = (lambda v: torch.tensor(v, dtype=torch.float64)) if target == "torch" else (lambda v: np.float64(v))
    xs = [10.0**k for k in range(-300, 301, 10)] + [*SWEEP, 0.25, 0.75, 7.99, 8.0, 8.01, 12.5, 1e4 + 0.5]
    xs += list(np.geomspace(1e-3, 1e3, 401))
    worst = 0.0
    for x in xs:
        with mpmath.workdps(60 + max(0, int(math.log10(x)))):  # x + ½ exactly, also at x = 1e300
            want = mpmath.digamma(mpmath.mpf(x) + mpmath.mpf(1) / 2) - mpmath.digamma(x)
        got = float(mod._digamma_diff_half(conv(x)))
        worst = max(worst, ulps(got, want))
    assert worst <= 4, worst
    # float32 keeps its dtype and its accuracy
    if target == "torch":
        x32 = torch.tensor([1e-3, 0.5, 3.0, 40.0, 1e6], dtype=torch.float32)
        got32 = mod._digamma_diff_half(x32)
        want = torch.tensor([float(mpmath.digamma(float(x) + 0.5) - mpmath.digamma(float(x))) for x in x32])
        assert got32.dtype == torch.float32 and torch.allclose(got32.double(), want.double(), rtol=4e-7, atol=0)


@pytest.mark.parametrize("target", ["numpy", "torch", "jax"])
def test_lgamma_and_digamma_half_remainders(target):
    """lgamma(x + ½) − lgamma(x) − ½·log x and ψ(x + ½) − ψ(x) − 1/(2x) (LgammaHalfRem, DigammaHalfRem: the
    Student-t's value and ∂ℓ/∂ν with the ½·log ν and its 1/(2ν) taken out) within a few ulps of mpmath from
    1e-300 to 1e300, where they are −1/(8x) and 1/(8x²) beside terms of size log x and 1/x."""
    if target == "jax":
        jnp = pytest.importorskip("jax.numpy")
        import jax

        jax.config.update("jax_enable_x64", True)
        conv = lambda v: jnp.asarray(v, dtype=jnp.float64)  # noqa: E731
    elif target == "torch":
        conv = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    else:
        conv = np.float64
    mod = module_for("studentt", target)
    xs = [10.0**k for k in range(-300, 301, 10)] + [*SWEEP, 0.25, 0.75, 0.999, 1.0, 1.001, 7.99, 8.0, 12.5]
    xs += list(np.geomspace(1e-3, 1e3, 201))
    worst_l = worst_d = 0.0
    for x in xs:
        with mpmath.workdps(60 + 2 * max(0, int(math.log10(x)))):  # the lgammas are x·log x: they cancel to 1/x
            xx = mpmath.mpf(x)
            want_l = mpmath.loggamma(xx + mpmath.mpf(1) / 2) - mpmath.loggamma(xx) - mpmath.log(xx) / 2
            want_d = mpmath.digamma(xx + mpmath.mpf(1) / 2) - mpmath.digamma(xx) - 1 / (2 * xx)
        with np.errstate(over="ignore"):  # (2x + 1)² overflows to ∞ at x = 1e300: its reciprocal is 0
            got_l, got_d = float(mod._lgamma_half_rem(conv(x))), float(mod._digamma_half_rem(conv(x)))
        worst_l = max(worst_l, ulps(got_l, want_l))
        if abs(float(want_d)) > 1e-300:  # below, 1/(8x²) underflows in float64 (as the helper's 0 does)
            worst_d = max(worst_d, ulps(got_d, want_d))
    assert worst_l <= 8, worst_l
    assert worst_d <= 8, worst_d


@pytest.mark.parametrize("target", ["numpy", "torch"])
@pytest.mark.parametrize("log_df", [-BIG, 0.0, BIG])
def test_studentt_df_gradient_at_extreme_df(target, log_df):
    """∂ℓ/∂log ν of the Student-t (learnt df) at ν from 1e-30 to 1e30: O(1/ν) from terms of size 1 before the
    lgamma_half_log and log1p_square_rem rules (3.8e18 ulps off at ν = 1e30), now within a few ulps of mpmath."""
    mod = generated_module(target, "studentt_learnt_df")
    for loc, log_scale, y in [(0.0, 0.0, 1.0), (-1.0, 0.0, 0.0), (3.0, -1.0, -2.0), (1e150, 0.0, -1e150)]:
        conv = (lambda v: torch.tensor([v], dtype=torch.float64)) if target == "torch" else (lambda v: np.array([v]))
        value, grads = mod.value_and_grad(conv(log_df), conv(loc), conv(log_scale), conv(y), reduction="none")
        with mpmath.workdps(120 + 2 * int(max(log_df, 0))):
            nu, s = mpmath.exp(mpmath.mpf(log_df)), mpmath.exp(mpmath.mpf(log_scale))
            r2 = ((mpmath.mpf(y) - loc) / s) ** 2
            want_v = (log_scale + mpmath.log(nu) / 2 + (nu + 1) / 2 * mpmath.log1p(r2 / nu)
                      - mpmath.loggamma((nu + 1) / 2) + mpmath.loggamma(nu / 2))
            want_g = nu * (mpmath.log1p(r2 / nu) / 2 - (nu + 1) / 2 * r2 / (nu * (nu + r2)) + 1 / (2 * nu)
                           - (mpmath.digamma((nu + 1) / 2) - mpmath.digamma(nu / 2)) / 2)
        assert ulps(float(np.asarray(value)[0]), want_v) <= 64
        assert ulps(float(np.asarray(grads[0])[0]), want_g) <= 64, (loc, log_scale, y, float(grads[0][0]), want_g)


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_stirling_series_alone_from_ten(target):
    """The branch-free δ and ε series (the large branches of lgamma_stirling and lbeta) equal the branching
    helpers from 10 on, and δ is within a few ulps of mpmath there."""
    gmod = corrections_module(target)
    conv = (lambda v: torch.tensor(v, dtype=torch.float64)) if target == "torch" else (lambda v: np.float64(v))
    for x in [10.0, 10.5, 15.0, 30.0, 100.0, 1e4, 1e10, 1e30, 1e300]:
        assert float(gmod._lgammacor_series(conv(x))) == float(gmod._lgammacor(conv(x)))
        assert float(gmod._digammacor_series(conv(x))) == float(gmod._digammacor(conv(x)))
        with mpmath.workdps(40 + 2 * int(math.log10(x))):  # terms of size x·log x cancel to 1/(12x)
            d = mpmath.loggamma(x) - (mpmath.mpf(x) - 0.5) * mpmath.log(x) + x - mpmath.log(2 * mpmath.pi) / 2
        assert ulps(float(gmod._lgammacor_series(conv(x))), d) <= 8


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_stirling_corrections(target):
    _, _, lgammacor, digammacor = helpers(target)
    for x in SWEEP:
        with mpmath.workdps(250):
            d = mpmath.loggamma(x) - (mpmath.mpf(x) - 0.5) * mpmath.log(x) + x - mpmath.log(2 * mpmath.pi) / 2
            e = mpmath.digamma(x) - mpmath.log(x) + 1 / (2 * mpmath.mpf(x))
        # relative to δ (ε) itself from x = 10 (the series); below, the absolute accuracy of lgamma (ψ), which
        # is what the sums they enter need
        size_d = abs(math.lgamma(x)) + abs((x - 0.5) * math.log(x)) + x + 1
        size_e = abs(float(sc.digamma(x))) + abs(math.log(x)) + 0.5 / x
        tol_d = 8 * np.spacing(abs(float(d))) if x >= 10 else 8e-16 * size_d
        tol_e = 8 * np.spacing(abs(float(e))) if x >= 10 else 8e-16 * size_e
        assert abs(lgammacor(x) - float(d)) <= tol_d, (x, lgammacor(x), float(d))
        assert abs(digammacor(x) - float(e)) <= tol_e, (x, digammacor(x), float(e))


# ---------------------------------------------------------------------------------------------------------
# Gamma / inverse gamma / chi²: −a·log(rate) + lgamma(a) + ... with a = rate = 1e30
def gamma_truth(la: float, lr: float, y: float):
    with mpmath.workdps(120):
        a, r, yy = mpmath.exp(la), mpmath.exp(lr), mpmath.mpf(y)
        value = -a * lr + mpmath.loggamma(a) + r * yy - (a - 1) * mpmath.log(yy)
        return float(value), float(a * (-lr + mpmath.digamma(a) - mpmath.log(yy))), float(-a + r * yy)


@pytest.mark.parametrize("target", ["numpy", "torch"])
@pytest.mark.parametrize("la, lr, y, tol", [(0.0, 0.0, 1e-300, 16), (-BIG, 0.0, 1.0, 16), (2.3, 1.0, 0.5, 16),
                                            (-10.0, 3.0, 1e-5, 16), (2.0, 0.0, 3.0, 16), (BIG, 0.0, 1e-30, 16),
                                            # a = rate = 148: a·(log a − log rate − 1) + rate·y cancels from
                                            # 148 to −1.58 (κ ≈ 2): 67 ulps, ~500 before lgamma_stirling
                                            (5.0, 5.0, 1.0, 128)])
def test_gamma_value_and_gradients(target, la, lr, y, tol):
    values, (g0, g1) = run(target, "gamma", [la], [lr], [y])
    want, w0, w1 = gamma_truth(la, lr, y)
    assert ulps(values[0], want) <= tol, (values[0], want)
    assert ulps(g0[0], w0) <= 16, (g0[0], w0)
    assert ulps(g1[0], w1) <= 16, (g1[0], w1)
    assert values[0] == pytest.approx(-ss.gamma.logpdf(y, math.exp(la), scale=math.exp(-lr)), rel=1e-9, abs=1e-9) \
        or la > 40  # scipy's own logpdf cancels at a = 1e30


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_gamma_value_at_a_equal_rate_1e30(target):
    mod = module_for("gamma", target)
    conv = (lambda v: torch.tensor(v, dtype=torch.float64)) if target == "torch" else np.asarray
    value = mod.loss(conv([BIG]), conv([BIG]), conv([1.0]), reduction="none")
    assert float(value[0]) == pytest.approx(gamma_truth(BIG, BIG, 1.0)[0], rel=1e-12)


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_gamma_gradients_at_a_equal_rate_1e30(target):
    _, (g0, g1) = run(target, "gamma", [BIG], [BIG], [1.0])
    _, w0, w1 = gamma_truth(BIG, BIG, 1.0)
    assert ulps(g0[0], w0) <= 16 and g1[0] == w1 == 0.0  # ∂/∂log a = −½ + O(1/a): a·(ψ(a) − log rate)


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_inverse_gamma_and_chi2_gradients_at_huge_shape(target):  # ψ(a) − log(rate) at a = rate = 1e30
    _, (g0, _) = run(target, "inversegamma", [BIG], [BIG], [1.0])
    with mpmath.workdps(120):
        a = mpmath.exp(BIG)
        want = float(a * (-BIG + mpmath.digamma(a)))  # + a·log y = 0
    assert ulps(g0[0], want) <= 16
    _, (g,) = run(target, "chi2", [BIG], [1.0])
    with mpmath.workdps(120):
        k = mpmath.exp(BIG) / 2
        want = float(k * (mpmath.log(2) + mpmath.digamma(k)))
    assert ulps(g[0], want) <= 16


# ---------------------------------------------------------------------------------------------------------
# Gamma / inverse gamma at a small shape: lgamma(a) ≈ −log a cancels log y where y ≈ a (the lgamma_log_quotient
# rule: lgamma(a + 1) + (1 ∓ a)·log(y/a) ± a·log a); the harness's worst point of issue #7, a = y = 1e-30, where
# ℓ = −2.29e-15 (the rounding of log 1e-30 itself: log_concentration = fl(log y)) came out 0
SMALL_A = [("gamma", -BIG, -1.0, 1e-30), ("gamma", -BIG, 0.0, 1e-30), ("gamma", -BIG, -BIG, 1e-30),
           ("gamma", -BIG, -690.7755278982137, 1e-30), ("inversegamma", -BIG, -690.7755278982137, 1e-30),
           ("gamma", -18.420680743952367, 0.0, 1e-8), ("inversegamma", -18.420680743952367, -18.420680743952367, 1e-8),
           ("gamma", 0.0, 0.0, 1e-30), ("gamma", 0.0, 0.0, 1e-300), ("gamma", 1e-9, 0.0, 1e300),
           ("gamma", -BIG, 0.0, 1e-300), ("gamma", -BIG, 0.0, 1e300), ("inversegamma", -BIG, 0.0, 1e300),
           ("gamma", -5.0, 2.0, 0.006737946999085467), ("inversegamma", -5.0, 2.0, 0.006737946999085467),
           ("gamma", -0.5, 0.3, 0.6), ("inversegamma", 2.0, 0.3, 0.6)]


def small_a_close(got: float, want: float, atol: float = 2e-16) -> bool:
    """Within 16 ulps, or, where ℓ is the cancellation of log y and lgamma(a) ≈ −log a (|ℓ| < 1e-6 here), within
    2e-16 absolute: log(y/a) carries log y − log a to the roundings of a = e^u and of y/a near 1 (half an ulp
    of 1 each), lgamma(1 + a) to that of 1 + a (an ulp of log y, 4e-15 at y = 1e-8, before)."""
    if abs(want) < 1e-6 and abs(got - want) <= atol and (got < 0) == (want < 0):
        return True
    return ulps(got, want) <= 16


@pytest.mark.parametrize("target", ["numpy", "torch"])
@pytest.mark.parametrize("key, la, lr, y", SMALL_A, ids=str)
def test_gamma_and_inverse_gamma_values_at_small_concentration(target, key, la, lr, y):
    values, _ = run(target, key, [la], [lr], [y])
    want = gamma_value_truth(la, lr, y, key == "inversegamma")
    assert small_a_close(values[0], want), (values[0], want)


def test_log_quotient_on_jax_c_and_triton(tmp_path):
    """The log_quotient helper of the other targets: JAX (the values above), C (compiled, against mpmath, over
    y/x from 1e-320 to 1e320) and Triton (in the interpreter, or on a GPU)."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    j = jax.numpy.asarray
    for key in ("gamma", "inversegamma"):
        points = [p[1:] for p in SMALL_A if p[0] == key]
        value = module_for(key, "jax").loss(*(j([p[i] for p in points]) for i in range(3)), reduction="none")
        for i, (la, lr, y) in enumerate(points):
            # jax's gammaln(1 + 1e-8) = −5.8e-9 is good to 5e-16 absolute, not relative to its small value
            want = gamma_value_truth(la, lr, y, key == "inversegamma")
            assert small_a_close(float(value[i]), want, atol=1e-15), (key, i, float(value[i]), want)

    f = c_helper(tmp_path, "gamma_log_concentration_log_rate", "log_quotient", 4)
    if f is not None:
        for s in (-BIG, -1.0, 0.0, 3.0, 700.0):
            for d in (-745.0, -709.0, -40.0, -1e-10, 0.0, 1e-15, 2.0, 700.0, 745.0):
                y = math.exp(s + d) if -745 < s + d < 709 else None
                if y is None or y == 0.0:
                    continue
                with mpmath.workdps(60):
                    want = mpmath.log(mpmath.mpf(y)) - s
                assert abs(f(y, math.exp(s), s, math.log(y)) - float(want)) <= 2.5e-16 * max(1.0, abs(float(want)))

    pytest.importorskip("triton")
    if os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available():
        pytest.skip("triton needs TRITON_INTERPRET=1 or a GPU")
    device = "cuda" if os.environ.get("TRITON_INTERPRET") != "1" else "cpu"
    t = lambda v: torch.tensor(v, dtype=torch.float64, device=device)  # noqa: E731
    # the interpreter's exp and log are tl.exp and tl.log (exp2(x·log2 e), ...), good to |x|·ε (1.1e-14 at
    # x = −69), not libdevice's: there a few e-14 absolute, with the sign of the tiny results
    for key in ("gamma", "inversegamma"):
        points = [p[1:] for p in SMALL_A if p[0] == key]
        value = module_for(key, "triton").loss(*(t([p[i] for p in points]) for i in range(3)), reduction="none")
        for i, (la, lr, y) in enumerate(points):
            want = gamma_value_truth(la, lr, y, key == "inversegamma")
            got = float(value[i])
            if device == "cpu":
                assert abs(got - want) <= 3e-14 * max(1.0, abs(want)) and (got < 0) == (want < 0), (key, i, got, want)
            else:
                assert small_a_close(got, want), (key, i, got, want)


# ---------------------------------------------------------------------------------------------------------
# negative binomial: ∂/∂total_count = softplus(logits) − (ψ(r + y) − ψ(r)) at r = 1e-30, y = 0
@pytest.mark.parametrize("target", ["numpy", "torch"])
@pytest.mark.parametrize("r, logits, y", [(1e-30, 1e4, 0.0), (1e-300, 700.0, 0.0), (1e-30, 1.0, 3.0),
                                          (1e30, -700.0, 1e6), (2.5, 0.3, 4.0)])
def test_negative_binomial_total_count_gradient(target, r, logits, y):
    _, (g_r, _) = run(target, "negativebinomial", [r], [logits], [y])
    with mpmath.workdps(400):
        rr, yy, z = mpmath.mpf(r), mpmath.mpf(y), mpmath.mpf(logits)
        want = float(mpmath.log1p(mpmath.exp(z)) - (mpmath.digamma(rr + yy) - mpmath.digamma(rr)))
    assert np.isfinite(g_r[0])
    assert ulps(g_r[0], want) <= 16, (g_r[0], want)


# ---------------------------------------------------------------------------------------------------------
# the helpers on the other targets
def test_jax_helpers():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    mod = module_for("beta", "jax")
    value, (g1, g0) = mod.value_and_grad(jax.numpy.asarray([0.0]), jax.numpy.asarray([BIG]),
                                         jax.numpy.asarray([1e-300]), reduction="none")
    want, w1, w0 = beta_truth(0.0, BIG, 1e-300)
    assert ulps(float(value[0]), want) <= 16 and ulps(float(g1[0]), w1) <= 16 and ulps(float(g0[0]), w0) <= 16
    g = module_for("gamma", "jax")
    _, (ga, _) = g.value_and_grad(jax.numpy.asarray([BIG]), jax.numpy.asarray([BIG]), jax.numpy.asarray([1.0]),
                                  reduction="none")
    assert ulps(float(ga[0]), gamma_truth(BIG, BIG, 1.0)[1]) <= 16


def test_triton_helpers_in_the_interpreter():
    pytest.importorskip("triton")
    if os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available():
        pytest.skip("triton needs TRITON_INTERPRET=1 or a GPU")
    device = "cuda" if os.environ.get("TRITON_INTERPRET") != "1" else "cpu"
    mod = module_for("beta", "triton")
    t = lambda v: torch.tensor(v, dtype=torch.float64, device=device)  # noqa: E731
    value, (g1, g0) = mod.value_and_grad(t([0.0, 1.0]), t([BIG, 2.0]), t([1e-300, 0.3]), reduction="none")
    for i, (l1, l0, y) in enumerate([(0.0, BIG, 1e-300), (1.0, 2.0, 0.3)]):
        want, w1, w0 = beta_truth(l1, l0, y)
        assert ulps(float(value[i]), want) <= 64 and ulps(float(g1[i]), w1) <= 64 and ulps(float(g0[i]), w0) <= 64
    nb = module_for("negativebinomial", "triton")
    _, (g_r, _) = nb.value_and_grad(t([1e-30]), t([1e4]), t([0.0]), reduction="none")
    assert float(g_r[0]) == pytest.approx(1e4, rel=1e-14)
    st = module_for("studentt", "triton")
    value, _ = st.value_and_grad(t([2e30, 3.0]), t([0.0, 0.0]), t([0.0, 0.0]), t([1.0, 1.0]), reduction="none")
    for i, df in enumerate([2e30, 3.0]):
        assert ulps(float(value[i]), studentt_truth(df, 0.0, 0.0, 1.0)) <= 64


def test_jax_lgamma_difference():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    st = module_for("studentt", "jax")
    j = jax.numpy.asarray
    value, _ = st.value_and_grad(j([2e30, 3.0]), j([0.0, 0.0]), j([0.0, 0.0]), j([1.0, 1.0]), reduction="none")
    for i, df in enumerate([2e30, 3.0]):
        assert ulps(float(value[i]), studentt_truth(df, 0.0, 0.0, 1.0)) <= 32
    nb = module_for("negativebinomial", "jax")
    value, _ = nb.value_and_grad(j([1e300]), j([-40.0]), j([1.0]), reduction="none")
    with mpmath.workdps(400):
        r = mpmath.mpf(1e300)
        want = float(r * mpmath.log1p(mpmath.exp(-40)) + mpmath.log1p(mpmath.exp(40)) - mpmath.log(r))
    assert ulps(float(value[0]), want) <= 16


def test_c_lgamma_difference_helper(tmp_path):
    f = c_helper(tmp_path, "negativebinomial_logit_probs", "lgamma_diff", 2)
    if f is None:
        pytest.skip("no C compiler")
    for x in SWEEP:
        for h in [0.5, 1.0, 3.0, 100.0, 1e6, 1e30]:
            with mpmath.workdps(400):
                want = mpmath.loggamma(mpmath.mpf(x) + mpmath.mpf(h)) - mpmath.loggamma(x)
            # below 10 the difference of libm's two lgammas (each ~1 ulp of up to 13): lgamma(8) − lgamma(7.5)
            # = 0.99 from 8.5 and 7.5 is 18 ulps with glibc
            assert ulps(f(x, h), want) <= (32 if x < 10 else 16), (x, h, f(x, h), float(want))
    assert f(3.0, 0.0) == 0.0 and f(1e30, 0.0) == 0.0


# ---------------------------------------------------------------------------------------------------------
# lgamma(x + h) − lgamma(x): the lgamma_difference rule (Student-t's lgamma(ν/2) − lgamma((ν + 1)/2), the
# negative binomial's lgamma(r) − lgamma(r + y))
@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_lgamma_difference_helper_against_mpmath(target):
    mod = module_for("negativebinomial", target)
    conv = (lambda v: torch.tensor(v, dtype=torch.float64)) if target == "torch" else (lambda v: np.float64(v))
    worst = 0.0
    with np.errstate(over="ignore"):  # 1/(z·z) underflows to 0 for z = 1e300, as it should
        for x in SWEEP:
            for h in [0.0, 0.5, 1.0, 2.0, 3.0, 7.5, 10.0, 100.0, 1e6, 1e30, 1e300]:
                with mpmath.workdps(400):
                    want = mpmath.loggamma(mpmath.mpf(x) + mpmath.mpf(h)) - mpmath.loggamma(x)
                got = float(mod._lgamma_diff(conv(x), conv(h)))
                if h == 0.0:
                    assert got == 0.0
                    continue
                worst = max(worst, ulps(got, want))
    assert worst <= 16
    # the two lgammas are 6.9e31 and cancel in float64 to 0: the difference is ½·log(1e30) + O(1e-30)
    assert float(mod._lgamma_diff(conv(1e30), conv(0.5))) == pytest.approx(0.5 * math.log(1e30), rel=1e-15)


def studentt_truth(df: float, loc: float, ls: float, y: float) -> float:
    with mpmath.workdps(120):
        nu, z = mpmath.mpf(df), (mpmath.mpf(y) - loc) * mpmath.exp(-ls)
        return float(ls + mpmath.log(nu) / 2 + (nu + 1) / 2 * mpmath.log1p(z**2 / nu)
                     + mpmath.loggamma(nu / 2) - mpmath.loggamma((nu + 1) / 2))


@pytest.mark.parametrize("target", ["numpy", "torch"])
@pytest.mark.parametrize("df", [2e30, 1e20, 1e8, 30.0, 19.0, 3.0, 1.0, 0.5, 1e-30])
def test_studentt_value_at_huge_df(target, df):
    """At ν = 2e30 the Student-t is a normal: ℓ = s + ½·log ν + ((ν + 1)/2)·log1p(z²/ν) − (lgamma((ν + 1)/2)
    − lgamma(ν/2)), where the last difference is ½·log(ν/2) (34.5), not the 0 that two lgammas of 6.9e31 give."""
    value, _ = run(target, "studentt", [df], [0.0], [0.0], [1.0])
    want = studentt_truth(df, 0.0, 0.0, 1.0)
    # below ν = 20 the difference is two lgammas of size ~13 (1 ulp each) in a result of 0.87: up to ~30 ulps
    assert ulps(value[0], want) <= (32 if df < 20 else 16), (value[0], want)
    # the training loss drops ½·log π; scipy's own logpdf cancels at huge ν
    assert value[0] + 0.5 * math.log(math.pi) == pytest.approx(-ss.t.logpdf(1.0, df), rel=1e-9) or df > 1e15


@pytest.mark.parametrize("target", ["numpy", "torch"])
@pytest.mark.parametrize("r, logits, y", [(1e300, -40.0, 1.0), (1e300, -40.0, 1e6), (1e30, -69.0, 3.0),
                                          (1e-30, 1.0, 3.0), (2.5, 0.3, 4.0), (1e30, 0.0, 0.0)])
def test_negative_binomial_value_at_huge_total_count(target, r, logits, y):
    """lgamma(r) − lgamma(r + y) at r = 1e300 is −y·log r (−690.8), not the 0 of two 6.9e302-sized lgammas (which
    also swallowed r·softplus(logits) = 4e282 before)."""
    value, _ = run(target, "negativebinomial", [r], [logits], [y])
    with mpmath.workdps(400):
        rr, yy, z = mpmath.mpf(r), mpmath.mpf(y), mpmath.mpf(logits)
        parts = [rr * mpmath.log1p(mpmath.exp(z)), yy * mpmath.log1p(mpmath.exp(-z)),
                 mpmath.loggamma(rr) - mpmath.loggamma(rr + yy)]
        want = float(sum(parts))
        # condition number of the sum: at r = 1e30, logits = −69 the parts 207 and −207.2 cancel to 0.85
        kappa = float(sum(abs(p) for p in parts) / abs(sum(parts))) if want else 1.0
    assert ulps(value[0], want) <= 16 * max(1.0, kappa), (value[0], want, kappa)


@pytest.mark.parametrize("target", ["numpy", "torch"])
@pytest.mark.parametrize("l, logits, y", [(-18.420680743952367, 1e4, 1e6), (-18.420680743952367, 0.5, 1e6),
                                           (BIG, 0.5, 3.0), (BIG, -40.0, 1e6), (0.0, 0.5, 0.0), (1.0, 0.5, 4.0),
                                           (-BIG, 0.5, 1.0)])
def test_zinb_count_term_at_extreme_total_count(target, l, logits, y):
    """The zero-inflated negative binomial keeps lgamma(y + 1): lgamma(r) + lgamma(y + 1) − lgamma(r + y) is
    lbeta(r, y + 1) + log(r + y); at r = 1e-8, y = 1e6 the three lgammas (1.28e7) cancelled to 18.4 (1e5 ulps)."""
    gate = -3.0
    value, _ = run(target, "zinb", [l], [logits], [gate], [y])
    with mpmath.workdps(200):
        r, yy, z, g = mpmath.exp(l), mpmath.mpf(y), mpmath.mpf(logits), mpmath.mpf(gate)
        log_nb = (-r * mpmath.log1p(mpmath.exp(z)) - yy * mpmath.log1p(mpmath.exp(-z))
                  + mpmath.loggamma(r + yy) - mpmath.loggamma(r) - mpmath.loggamma(yy + 1))
        pi = 1 / (1 + mpmath.exp(-g))
        want = -(mpmath.log(pi + (1 - pi) * mpmath.exp(log_nb)) if y == 0 else mpmath.log1p(-pi) + log_nb)
    assert ulps(value[0], float(want)) <= 16, (value[0], float(want))


# ---------------------------------------------------------------------------------------------------------
# bd0 (Loader's deviance term): the lgamma_deviance and lbeta_deviance rules, the Gamma, inverse gamma and Beta
# values where the concentration is large and a·log(a/(rate·y)) + rate·y − a cancels
def bd0_truth(x: float, m: float, lm: float | None = None) -> float:
    """x·log(x/m) + m − x of the float64 numbers x, m (m = e^lm where m has underflowed to 0), with mpmath."""
    with mpmath.workdps(400):
        xx = mpmath.mpf(x)
        mm = mpmath.exp(mpmath.mpf(lm)) if lm is not None else mpmath.mpf(m)
        return float(xx * mpmath.log(xx / mm) + mm - xx)


def bd0_points():
    for x in [10.0, 12.5, 1e3, 1e8, 1e30, 1e300]:
        for z in [0.0, 1e-20, -1e-20, 1e-8, -1e-8, 0.3, -0.3, 0.999, -0.999, 1.001, -1.001, 5.0, -5.0, 80.0,
                  -80.0, -800.0]:
            m = x * math.exp(z)
            if math.isfinite(m) and m > 0:
                yield x, m, math.log(m) if m > 1e-300 else math.log(x) + z


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_bd0_helper_against_mpmath(target):
    mod = module_for("gamma", target)
    conv = (lambda v: torch.tensor(v, dtype=torch.float64)) if target == "torch" else (lambda v: np.float64(v))
    worst = 0.0
    for x, m, lm in bd0_points():
        got = float(mod._bd0(conv(x), conv(m), conv(lm)))
        want = bd0_truth(x, m)
        assert math.isfinite(got), (x, m)
        worst = max(worst, ulps(got, want))
    assert worst <= 8, worst
    assert float(mod._bd0(conv(1e30), conv(1e30), conv(BIG))) == 0.0
    # m underflowed to 0: its log carries it (x·(log x − lm) − x, not ∞)
    got = float(mod._bd0(conv(1e10), conv(0.0), conv(-800.0)))
    assert got == pytest.approx(bd0_truth(1e10, 0.0, -800.0), rel=1e-15)


def gamma_value_truth(la: float, lr: float, y: float, inverse: bool = False) -> float:
    with mpmath.workdps(200):
        a, r, yy = mpmath.exp(mpmath.mpf(la)), mpmath.exp(mpmath.mpf(lr)), mpmath.mpf(y)
        if inverse:
            return float(-a * lr + mpmath.loggamma(a) + r / yy + (a + 1) * mpmath.log(yy))
        return float(-a * lr + mpmath.loggamma(a) + r * yy - (a - 1) * mpmath.log(yy))


@pytest.mark.parametrize("target", ["numpy", "torch"])
@pytest.mark.parametrize("la, lr, y", [(BIG, BIG, 1.0), (18.420680743952367, 0.0, 1e8), (BIG, 0.0, 1e30),
                                       (BIG, BIG, 0.5), (BIG, -BIG, 1e-300),
                                       (2.302585092994046, 2.302585092994046, 1.0), (3.0, 1.0, 7.0)])
def test_gamma_and_inverse_gamma_values_at_large_concentration(target, la, lr, y):
    """ℓ = ½·log 2π − ½·log a + δ(a) + bd0(a, rate·y) + log y for a ≥ 10 (the inverse gamma: rate/y, −log y):
    a few ulps where the written-out terms cancelled from 1e31 to −33.6 (4e18 ulps before bd0)."""
    for key, inverse in [("gamma", False), ("inversegamma", True)]:
        yy = y if not inverse else 1.0 / y
        value, _ = run(target, key, [la], [lr], [yy])
        want = gamma_value_truth(la, lr, yy, inverse)
        # (BIG, 0, 1e30): rate·y and a are equal but for the rounding of 1e30 and of log(1e30), which bd0
        # squares into ~0.1 (κ ≈ 4e15, 28 absolute for one ulp): only the absolute error counts there
        if (la, lr, y) == (BIG, 0.0, 1e30):
            assert abs(value[0] - want) <= 0.5
        else:
            assert ulps(value[0], want) <= 16, (key, value[0], want)
    assert value[0] == pytest.approx(-ss.invgamma.logpdf(yy, math.exp(la), scale=math.exp(lr)), rel=1e-6) or la > 40


@pytest.mark.parametrize("target", ["numpy", "torch"])
@pytest.mark.parametrize("l1, l0, y", [(BIG, BIG, 0.5), (18.420680743952367, 18.420680743952367, 0.5),
                                       (BIG, BIG, 0.25), (18.420680743952367, 20.0, 1 - 1e-8), (BIG, 40.0, 1e-8),
                                       (2.302585092994046, 2.302585092994046, 0.5), (1.0, 2.0, 0.3), (BIG, 0.0, 0.5)])
def test_beta_value_at_large_concentrations(target, l1, l0, y):
    """lbeta(a, b) − (a − 1)·log y − (b − 1)·log(1 − y) at a = b = 1e30, y = ½ is −34.7 (the two bd0 are 0),
    not what is left of two −1.4e30-sized terms."""
    values, _ = run(target, "beta", [l1], [l0], [y])
    want = beta_truth(l1, l0, y)[0]
    # (1, 2, 0.3): below 10 the three lgammas as before (κ ≈ 5)
    assert ulps(values[0], want) <= (64 if l1 < 2.3 else 16), (values[0], want)
    if max(l1, l0) < 25:
        assert values[0] == pytest.approx(-ss.beta.logpdf(y, math.exp(l1), math.exp(l0)), rel=1e-7)


def test_bd0_on_jax_c_and_triton(tmp_path):
    """The bd0 helper of the other targets: JAX (the Gamma and Beta values), C (compiled, against mpmath) and
    Triton (in the interpreter, or on a GPU)."""

    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    j = jax.numpy.asarray
    g = module_for("gamma", "jax")
    value = g.loss(j([BIG, 3.0]), j([BIG, 1.0]), j([1.0, 7.0]), reduction="none")
    for i, (la, lr, y) in enumerate([(BIG, BIG, 1.0), (3.0, 1.0, 7.0)]):
        assert ulps(float(value[i]), gamma_value_truth(la, lr, y)) <= 16
    b = module_for("beta", "jax")
    value = b.loss(j([BIG]), j([BIG]), j([0.5]), reduction="none")
    assert ulps(float(value[0]), beta_truth(BIG, BIG, 0.5)[0]) <= 16
    jm = module_for("gamma", "jax")
    for x, m, lm in bd0_points():
        assert ulps(float(jm._bd0(j(x), j(m), j(lm))), bd0_truth(x, m)) <= 8, (x, m)

    f = c_helper(tmp_path, "gamma_log_concentration_log_rate", "bd0", 3)
    if f is not None:
        for x, m, lm in bd0_points():
            assert ulps(f(x, m, lm), bd0_truth(x, m)) <= 8, (x, m)
        assert f(1e10, 0.0, -800.0) == pytest.approx(bd0_truth(1e10, 0.0, -800.0), rel=1e-15)

    pytest.importorskip("triton")
    if os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available():
        pytest.skip("triton needs TRITON_INTERPRET=1 or a GPU")
    device = "cuda" if os.environ.get("TRITON_INTERPRET") != "1" else "cpu"
    t = lambda v: torch.tensor(v, dtype=torch.float64, device=device)  # noqa: E731
    tg = module_for("gamma", "triton")
    value, _ = tg.value_and_grad(t([BIG, 3.0]), t([BIG, 1.0]), t([1.0, 7.0]), reduction="none")
    for i, (la, lr, y) in enumerate([(BIG, BIG, 1.0), (3.0, 1.0, 7.0)]):
        assert ulps(float(value[i]), gamma_value_truth(la, lr, y)) <= 64
    tb = module_for("beta", "triton")
    value, _ = tb.value_and_grad(t([BIG, 18.420680743952367]), t([BIG, 18.420680743952367]), t([0.5, 0.5]),
                                 reduction="none")
    for i, l in enumerate([BIG, 18.420680743952367]):
        assert ulps(float(value[i]), beta_truth(l, l, 0.5)[0]) <= 64


# ---------------------------------------------------------------------------------------------------------
# the torch ε helper without torch.digamma (ten shift steps, paired reciprocals, the series at x + 10): against
# mpmath on a fine sweep, near ψ's root and over [1e-30, 1e30], no worse than ψ(x) − log x + 1/(2x) from
# torch.digamma; the in-place form (no autograd) equals the differentiable one bit for bit
def test_torch_digammacor_without_digamma_against_mpmath():
    gmod = corrections_module("torch")
    xs = sorted({*(10.0**k for k in np.arange(-30.0, 30.01, 0.25)), *np.linspace(0.01, 12.0, 1200),
                 *np.linspace(1.40, 1.52, 241), *SWEEP})
    x = torch.tensor(xs, dtype=torch.float64)
    got = gmod._digammacor(x)
    with torch.enable_grad():
        xg = x.clone().requires_grad_()
        differentiable = gmod._digammacor(xg)
    assert torch.equal(got, differentiable.detach())
    xsmall = torch.clamp(x, max=10.0)
    reference = torch.where(x >= 10.0, gmod._digammacor_series(torch.clamp(x, min=10.0)),
                            torch.digamma(xsmall) - torch.log(xsmall) + 0.5 / xsmall)
    worst_new = worst_ref = 0.0
    for xv, g, r in zip(xs, got.tolist(), reference.tolist(), strict=True):
        with mpmath.workdps(250):
            e = float(mpmath.digamma(xv) - mpmath.log(xv) + 1 / (2 * mpmath.mpf(xv)))
        # below 10 the absolute accuracy of ψ's terms (what the sums ε enters need), from 10 relative to ε
        size = abs(float(sc.digamma(xv))) + abs(math.log(xv)) + 0.5 / xv if xv < 10 else abs(e)
        worst_new = max(worst_new, abs(g - e) / (np.spacing(1.0) * size))
        worst_ref = max(worst_ref, abs(r - e) / (np.spacing(1.0) * size))
    assert worst_new <= 6, worst_new
    assert worst_new <= worst_ref + 1, (worst_new, worst_ref)
    # float32 keeps its dtype, and near ψ's root its accuracy
    x32 = torch.tensor(np.linspace(0.05, 12.0, 400), dtype=torch.float32)
    got32 = gmod._digammacor(x32)
    want = [float(mpmath.digamma(float(v)) - mpmath.log(float(v)) + 1 / (2 * mpmath.mpf(float(v)))) for v in x32]
    size32 = torch.tensor([abs(float(sc.digamma(float(v)))) + abs(math.log(float(v))) + 0.5 / float(v) for v in x32])
    err = (got32.double() - torch.tensor(want, dtype=torch.float64)).abs() / (2.0**-23 * size32.double())
    assert got32.dtype == torch.float32 and float(err[x32 < 10].max()) <= 8


def test_torch_bd0_and_digammacor_double_backward():
    """The helpers' differentiable forms (what double backward evaluates) are finite and smooth: gradgradcheck
    in float64, across the branches (|z| below and above 1, m/x near, far and outside; x below and above 10)."""
    gmod = module_for("gamma", "torch")
    cmod = corrections_module("torch")
    x = torch.tensor([10.0, 12.0, 30.0, 1e3, 15.0], dtype=torch.float64, requires_grad=True)
    m = torch.tensor([10.5, 3.0, 300.0, 1.0, 15.0 * math.exp(0.9)], dtype=torch.float64, requires_grad=True)
    lm = torch.log(m.detach()).requires_grad_()
    assert torch.autograd.gradgradcheck(gmod._bd0, (x, m, lm))
    d = torch.tensor([0.3, 1.4616, 2.5, 9.5, 10.5, 40.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(cmod._digammacor, (d,))
