"""The NumPy target's vectorised special functions (templates/_numpy_helpers.py.j2): _lgamma and _digamma
without SciPy, computed in cache-sized blocks with each branch on its own elements, against math.lgamma and
mpmath; 0-d inputs, empty arrays, float32 and a mixture of branches across blocks behave as elementwise calls."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from stability_support import generated_module

GAMMA = "gamma_log_concentration_log_rate"  # has _lgamma, _lgammacor_series, _digammacor (and _digamma)
STUDENT = "studentt_log_scale"  # value_and_grad in blocks
NEGBIN = "negativebinomial_logit_probs"  # has _lgamma_diff
DIRICHLET = "dirichlet_log_concentration"  # has _digamma
BETA = "beta_log_concentration1_log_concentration0"  # has _lbeta, _bd0


def _mixed(n: int, seed: int = 0) -> np.ndarray:
    """Arguments from every branch of _lgamma and _digamma, shuffled: tiny, below 2, below 10, above 10, huge,
    negative non-integers."""
    rng = np.random.default_rng(seed)
    parts = [rng.uniform(0, 2, n), rng.uniform(2, 10, n), rng.uniform(10, 1e3, n), np.exp(rng.uniform(-700, 700, n)),
             -rng.uniform(0, 30, n)]
    x = np.concatenate(parts)
    rng.shuffle(x)
    return x


@pytest.fixture(scope="module")
def gamma():
    return generated_module("numpy", GAMMA)


def test_lgamma_matches_math_lgamma_across_blocks(gamma):
    x = _mixed(20000)  # 100000 elements: several blocks, each with every branch
    with np.errstate(all="ignore"):
        got = gamma._lgamma(x)
    want = np.array([math.lgamma(v) if not (v <= 0 and v == math.floor(v)) else math.inf for v in x])
    # math.lgamma has up to ~1e5 ulps near the zeros at 1 and 2 (absolute ~1e-16), so: absolute there
    assert np.all(np.abs(got - want) <= 1e-13 * np.maximum(np.abs(want), 1.0))


@pytest.mark.parametrize("x", [1e-310, 1e-300, 1e-20, 0.25, 0.5, 1 - 1e-9, 1 + 1e-9, 1.5, 2 - 1e-9, 2 + 1e-9, 2.5,
                               3.0, 3.5, 7.25, 9.999999999, 10.0, 12.5, 1e5, 1e300, -0.5, -2.5, -1e-300, -10.3])
def test_lgamma_against_mpmath(gamma, x):
    with mpmath.workdps(40):
        want = float(mpmath.log(abs(mpmath.gamma(mpmath.mpf(x)))))
    got = float(gamma._lgamma(np.float64(x)))
    assert got == pytest.approx(want, rel=4e-16 * 64, abs=2e-16)


def test_lgamma_special_values(gamma):
    with np.errstate(all="ignore"):
        got = gamma._lgamma(np.array([0.0, -0.0, -1.0, -7.0, 1.0, 2.0, np.inf, -np.inf, np.nan, 1e308]))
    assert got[:4].tolist() == [math.inf] * 4
    assert got[4:6].tolist() == [0.0, 0.0]
    assert got[6:8].tolist() == [math.inf, math.inf]
    assert math.isnan(got[8]) and got[9] == math.inf


@pytest.mark.parametrize("name, fn, args", [
    (GAMMA, "_lgamma", (2.5,)), (GAMMA, "_lgammacor_series", (12.0,)), (GAMMA, "_digammacor", (3.0,)),
    (NEGBIN, "_lgamma_diff", (3.0, 0.5)), (DIRICHLET, "_digamma", (3.0,)),
    (GAMMA, "_bd0", (12.0, 13.0, math.log(13.0))), (GAMMA, "_bd0", (12.0, 40.0, math.log(40.0))),
    (GAMMA, "_bd0", (12.0, 1e-40, math.log(1e-40))), (BETA, "_lbeta", (3.0, 4.5)),
])
def test_helpers_on_scalars_empty_arrays_and_float32(name, fn, args):
    f = getattr(generated_module("numpy", name), fn)
    scalar = f(*(np.float64(a) for a in args))
    assert np.shape(scalar) == () and np.isfinite(scalar)
    zero_d = f(*(np.array(a) for a in args))
    assert np.shape(zero_d) == () and float(zero_d) == float(scalar)
    empty = f(*(np.zeros((0, 3)) + a for a in args))
    assert empty.shape == (0, 3)
    f32 = f(*(np.array([a, a], dtype=np.float32) for a in args))
    assert f32.dtype == np.float32 and f32.shape == (2,)
    many = f(*(np.full((3, 20000), a) for a in args))  # several blocks
    assert many.shape == (3, 20000) and np.all(many == float(scalar))


def test_digamma_against_mpmath():
    mod = generated_module("numpy", DIRICHLET)
    x = np.array([1e-8, 0.1, 0.5, 1.0, 1.4616321449683622, 2.0, 5.5, 9.99, 10.0, 37.0, 1e10, -0.5, -3.7])
    got = mod._digamma(x)
    with mpmath.workdps(40):
        want = np.array([float(mpmath.digamma(mpmath.mpf(v))) for v in x])
    tol = np.where(x > 0, 1e-15, 1e-14)  # the reflection's π/tan(πx) (as before) loses a few more ulps
    assert np.all(np.abs(got - want) <= tol * np.maximum(np.abs(want), 1.0))


def test_digammacor_against_mpmath(gamma):
    x = np.array([1e-30, 1e-8, 0.3, 1.0, 2.718281828459045, 9.5, 10.0, 11.0, 1e8])
    got = gamma._digammacor(x)
    with mpmath.workdps(60):
        want = np.array([float(mpmath.digamma(v) - mpmath.log(v) + 1 / (2 * mpmath.mpf(v)))
                         for v in map(mpmath.mpf, x)])
    assert np.all(np.abs(got - want) <= 1e-15 * np.maximum(np.abs(want), 1.0))


def test_blocked_module_equals_elementwise_calls():
    """value_and_grad over 100000 observations (in blocks) gives, element for element, what it gives on each
    observation alone."""
    mod = generated_module("numpy", STUDENT)
    rng = np.random.default_rng(1)
    n = 100000
    df, loc, ls, y = np.exp(3 * rng.standard_normal(n)), rng.standard_normal(n), rng.standard_normal(n), \
        rng.standard_normal(n)
    value, grads = mod.value_and_grad(df, loc, ls, y, reduction="none")
    for i in rng.choice(n, 50, replace=False):
        v1, g1 = mod.value_and_grad(df[i:i + 1], loc[i:i + 1], ls[i:i + 1], y[i:i + 1], reduction="none")
        assert v1[0] == value[i] and all(g[0] == h[i] for g, h in zip(g1, grads, strict=True))
    # a scalar df broadcast against the arrays, and 0-d inputs
    v, _ = mod.value_and_grad(4.0, loc, ls, y, reduction="none")
    assert v.shape == (n,)
    v0, g0 = mod.value_and_grad(np.float64(4.0), np.float64(0.5), np.float64(0.1), np.float64(1.0), reduction="none")
    assert np.shape(v0) == () and all(np.shape(g) == () for g in g0)


@pytest.mark.parametrize("helper", ["_lbeta", "_lgamma_diff"])
def test_small_argument_differences_against_mpmath(helper):
    """log B(p, q) and lgamma(x + h) − lgamma(x) with arguments below 20 from one log of a product ratio
    (_lgamma_parts), not a difference of lgammas of size 13: within a few ulps of |result| + 1 (the rounding of
    p + q, x + h and the zero crossings bound what any float64 method can do), over several blocks."""
    mod = generated_module("numpy", BETA if helper == "_lbeta" else NEGBIN)
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 10, 40000) * 10.0 ** rng.uniform(-3, 0, 40000)
    b = rng.uniform(0, 10, 40000)
    got = getattr(mod, helper)(a, b)
    idx = rng.choice(a.size, 400, replace=False)
    with mpmath.workdps(50):
        want = np.array([float(mpmath.log(mpmath.beta(a[i], b[i]))) if helper == "_lbeta" else
                         float(mpmath.loggamma(mpmath.mpf(a[i]) + mpmath.mpf(b[i])) - mpmath.loggamma(a[i]))
                         for i in idx])
    err = np.abs(got[idx] - want) / np.spacing(np.abs(want) + 1.0)
    assert err.max() <= 16


def test_bd0_blocks_with_every_branch():
    """_bd0 over several blocks with every branch mixed (log1p near m = x, the series, the formula, m under- and
    overflowed) equals its elementwise calls, and a Python number m broadcasts."""
    mod = generated_module("numpy", GAMMA)
    rng = np.random.default_rng(2)
    x = np.exp(rng.uniform(-50, 50, 50000))
    z = np.concatenate([rng.uniform(-1.5, 1.5, 30000), rng.uniform(-800, 800, 20000)])
    rng.shuffle(z)
    with np.errstate(all="ignore"):
        lm = np.log(x) + z
        m = np.exp(lm)
        got = mod._bd0(x, m, lm)
        assert np.all(np.isfinite(got[np.isfinite(m)]))  # bd0 ≈ m where z is large
        for i in rng.choice(x.size, 200, replace=False):
            assert mod._bd0(x[i:i + 1], m[i:i + 1], lm[i:i + 1])[0] == got[i]
        two = np.full(5, 2.0)
        assert np.array_equal(mod._bd0(x[:5], 2.0, math.log(2.0)), mod._bd0(x[:5], two, np.log(two)))
