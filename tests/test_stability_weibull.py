"""Weibull, log-logistic, Kumaraswamy and Pareto: the generated losses and gradients against mpmath at the points
where (k − 1)·log y − (k − 1)·log λ, log y − log λ and z/expm1(z) − 1 used to cancel.

The references are not symloss's: the log densities written out by hand (constants dropped, as the generated
modules do with full=False) and evaluated with mpmath at 60 digits at the exact float64 inputs; gradients are
the references' own derivatives (a central difference at 120 digits).  The points are the accuracy harness's
worst ones (benchmarks/accuracy.py): log-link inputs such as log_scale = fl(log 1e-30) against y = 1e-30, where
log y − log_scale is log's own rounding error (≈ 1e-15), and shapes 1e-30 … 1e30.
"""

from __future__ import annotations

import math

import pytest
from stability_support import c_helper, generated_module, run_point

mpmath = pytest.importorskip("mpmath")
np = pytest.importorskip("numpy")

mp = mpmath.mp

L30, L8 = math.log(1e-30), math.log(1e-8)  # the harness's log-scales: fl(log 1e-30), fl(log 1e-8)
#: an error allowance of 64 ulps (the harness's maximum) for the well-conditioned outputs
REL = 64 * 2.0**-52
#: for an output that is log's rounding error d ≈ 1e-15 itself (or k²·d): log y − s is carried to ~2e-17
#: absolute, a 1 % error of d, within its conditioning (κ ≈ |log y|/|d| ≈ 1e16); fl(log y) − s gave 0 (100 %)
ROUNDING = 0.02
#: 8 ulps, for the outputs of condition number ~1 at the points where exp of a rounded exponent lost 160
TIGHT = 8 * 2.0**-52


def _exact(f, args: list[float]) -> float:
    with mpmath.workdps(60):
        return float(f(*[mp.mpf(a) for a in args]))


def _diff(f, args: list[float], i: int) -> float:
    """∂f/∂args[i] with mpmath (exact inputs, 120 digits, a central difference of relative error ~h²)."""
    with mpmath.workdps(120):
        xs = [mp.mpf(a) for a in args]
        h = (abs(xs[i]) or 1) * mp.mpf(10) ** -45
        up = f(*xs[:i], xs[i] + h, *xs[i + 1:])
        down = f(*xs[:i], xs[i] - h, *xs[i + 1:])
        return float((up - down) / (2 * h))


def _close(got: float, want: float, rel: float = REL) -> bool:
    return math.isfinite(got) and abs(got - want) <= rel * abs(want)


# -- references: −log p less the constants, by hand
def weibull(s, c, y):
    k = mpmath.exp(c)
    d = mpmath.log(y) - s
    return -c + s - (k - 1) * d + mpmath.exp(k * d)


def weibull_censored(s, c, y):
    """The survival part, −log S(y) = (y/λ)^k (censored = 1)."""
    return mpmath.exp(mpmath.exp(c) * (mpmath.log(y) - s))


def loglogistic(a, b, y):
    beta = mpmath.exp(b)
    d = mpmath.log(y) - a
    return a - b - (beta - 1) * d + 2 * mpmath.log1p(mpmath.exp(beta * d))


def kumaraswamy(c1, c0, y):
    a, b = mpmath.exp(c1), mpmath.exp(c0)
    return -c0 - c1 - (b - 1) * mpmath.log1p(-(y**a)) - (a - 1) * mpmath.log(y)


def pareto(scale, c, y):
    alpha = mpmath.exp(c)
    return -c - alpha * mpmath.log(scale) + (alpha + 1) * mpmath.log(y)


CASES = [
    # (module, reference, inputs (target last), which outputs: "value" and/or gradient indices)
    # (y/λ)^k at k = 1e30 and y = λ up to log's rounding: 0 (the gradient k), not 1 (which gave 0); the value,
    # (1 − k)·d with d ≈ −2e-15 the rounding error, is ill-conditioned (κ ≈ 1e15) and left out
    ("weibull_log_scale_log_concentration", weibull, [L30, math.log(1e30), 1e-30], [0]),
    # (k − 1)·log λ − (k − 1)·log y at k = 1e8: 7e9-sized terms that cancel to the O(1) value
    # and its ∂ℓ/∂log λ = −k·expm1(k·d) ≈ −k²·d, d the rounding error
    ("weibull_log_scale_log_concentration", weibull, [L30, math.log(1e8), 1e-30], ["value", (0, ROUNDING), 1]),
    ("weibull_log_scale_log_concentration", weibull, [L8, math.log(1e8), 1e-8], ["value", (0, ROUNDING), 1]),
    ("weibull_log_scale_log_concentration", weibull, [1.0, -1.0, 3.0], ["value", 0, 1]),
    ("loglogistic_log_alpha_log_beta", loglogistic, [L30, math.log(1e30), 1e-30], [0]),
    ("loglogistic_log_alpha_log_beta", loglogistic, [L8, math.log(1e30), 1e-8], [0]),
    ("loglogistic_log_alpha_log_beta", loglogistic, [L30, math.log(1e8), 1e-30], ["value", (0, ROUNDING), 1]),
    ("loglogistic_log_alpha_log_beta", loglogistic, [0.5, 1.0, 3.0], ["value", 0, 1]),
    # ∂ℓ/∂log a at a = b = 1e-30: z − 1 + (1 − b)·z/expm1(z), z = −a·log y ≈ 1e-28, is ≈ z/2 − b
    ("kumaraswamy_log_concentration1_log_concentration0", kumaraswamy, [L30, L30, 1e-300], ["value", 0, 1]),
    ("kumaraswamy_log_concentration1_log_concentration0", kumaraswamy, [L30, L30, 1e-16], ["value", 0, 1]),
    ("kumaraswamy_log_concentration1_log_concentration0", kumaraswamy, [L30, L30, 0.5], ["value", 0, 1]),
    ("kumaraswamy_log_concentration1_log_concentration0", kumaraswamy, [0.3, 1.2, 0.25], ["value", 0, 1]),
    # −log α + log y at α = y: log's rounding error (1e-15), which fl(log y) − log α gives as 0
    ("pareto_log_alpha", pareto, [1e-8, L8, 1e-8], [("value", ROUNDING), 1]),
    ("pareto_log_alpha", pareto, [1e-30, L30, 1e-30], [("value", ROUNDING), 1]),
    ("pareto_log_alpha", pareto, [1e-300, math.log(1e30), 1e-300], ["value", 1]),
    # (y/λ)^k at y = 1e±300, λ = k = 1: exact inputs and a condition number of 1, where exp(k·(log y − log λ)) of
    # the exponent ±690.8 rounded to a double was off by 160 ulps (143 at 1e-300); pow(y·e^−s, k) is not
    ("weibull_log_scale_log_concentration", weibull, [0.0, 0.0, 1e300], [("value", TIGHT), (0, TIGHT), (1, TIGHT)]),
    ("weibull_log_scale_log_concentration", weibull, [0.0, 0.0, 1e-300], [("value", TIGHT), (0, TIGHT),
                                                                          (1, TIGHT)]),
    ("weibull_log_scale_log_concentration", weibull, [0.3, 0.0, 3e200], [("value", TIGHT), (0, TIGHT)]),
    ("weibull_log_scale_log_concentration", weibull, [0.7, 0.0, 1e250], [("value", TIGHT), (0, TIGHT)]),
    ("weibull_log_scale_log_concentration", weibull, [1.5, 0.0, 4e280], [("value", TIGHT), (0, TIGHT)]),
    ("loglogistic_log_alpha_log_beta", loglogistic, [0.0, 0.0, 1e-300], [("value", TIGHT), (0, TIGHT), (1, TIGHT)]),
    ("loglogistic_log_alpha_log_beta", loglogistic, [0.0, 0.0, 1e300], [("value", TIGHT), (0, TIGHT), (1, TIGHT)]),
    ("loglogistic_log_alpha_log_beta", loglogistic, [0.0, 0.0, 3e-200], [("value", TIGHT)]),
]


@pytest.mark.parametrize("target", ["numpy", "torch"])
@pytest.mark.parametrize(("name", "ref", "args", "outputs"), CASES,
                         ids=[f"{c[0].split('_')[0]}-{i}" for i, c in enumerate(CASES)])
def test_against_mpmath(target, name, ref, args, outputs):
    value, grads = run_point(target, name, args)
    for out in outputs:
        what, rel = out if isinstance(out, tuple) else (out, REL)
        got = value if what == "value" else grads[what]
        want = _exact(ref, args) if what == "value" else _diff(ref, args, what)
        assert _close(got, want, rel), (what, got, want)


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_weibull_right_censored(target):
    """∂ℓ/∂log λ at k = 1e30, y = λ up to log's rounding: k, in both branches (the value of the observed one is
    (1 − k)·d, ill-conditioned; the survival term (y/λ)^k is 0)."""
    s, c, y = math.log(1e8), math.log(1e30), 1e8
    for censored, ref in ((0.0, weibull), (1.0, weibull_censored)):
        value, grads = run_point(target, "weibull_right_censored", [s, c, censored, y])
        if censored:
            assert value == _exact(ref, [s, c, y]) == 0.0
        assert _close(grads[0], _diff(ref, [s, c, y], 0)), (censored, grads[0])


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_weibull_keeps_zero_log_zero_at_shape_one(target):
    """k = 1 (log_concentration = 0) at y = 0: (k − 1)·log y is 0·(−∞), whose limit 0 the loss keeps (xlogy's
    convention), so ℓ = log λ + (y/λ)^k = log_scale."""
    value, _ = run_point(target, "weibull_log_scale_log_concentration", [0.7, 0.0, 0.0])
    assert value == 0.7


def test_log_ratio_helper_against_mpmath():
    """The frexp split of log(y) − s in the NumPy module against mpmath: to 1e-16 absolute, also where log y − s
    is log's own rounding error (and at the subnormals, where frexp's m is still exact)."""
    ys = np.array([1e-300, 1e-30, 1e-8, 0.5, 1.0, 3.0, 1e30, 1e300, 5e-324, 2.2250738585072014e-308])
    ss = np.array([math.log(v) for v in ys])
    want = []
    for yv, sv in zip(ys, ss, strict=True):
        with mpmath.workdps(60):
            want.append(float(mpmath.log(mp.mpf(float(yv))) - mp.mpf(float(sv))))
    mod = generated_module("numpy", "weibull_log_scale_log_concentration")
    got = mod._log_ratio(ys, ss)
    for g, w, yv in zip(got, want, ys, strict=True):
        assert abs(g - w) <= 1e-16, (yv, g, w)  # fl(log y) − s is off by up to 5.7e-14 at y = 1e300
    # the logarithm itself (s = 0) to an ulp, and y = 0 → −∞
    assert np.all(np.abs(mod._log_ratio(ys, 0.0) - np.log(ys)) <= np.spacing(np.abs(np.log(ys))))
    with np.errstate(divide="ignore"):
        assert mod._log_ratio(np.array([0.0]), 1.0)[0] == -math.inf


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_weibull_right_censored_at_extreme_powers(target):
    """The survival term's ∂ℓ/∂log λ = −k·(y/λ)^k at (y/λ)^k = 1e-16 (censored = 1): k·(1 − c − (y/λ)^k) was
    computed as k·(−1 − expm1(−36.8)), which is 0 (torch's expm1 gives −1 there) or −1.1e-16, not −1e-16; and
    both branches at y = 1e300, λ = k = 1 (160 ulps through exp of the rounded exponent)."""
    s, c, y = math.log(1e8), 0.0, 1e-8
    value, grads = run_point(target, "weibull_right_censored", [s, c, 1.0, y])
    assert _close(value, _exact(weibull_censored, [s, c, y]), TIGHT), value
    for i in (0, 1):
        assert _close(grads[i], _diff(weibull_censored, [s, c, y], i), TIGHT), (i, grads[i])
    _, grads = run_point(target, "weibull_right_censored", [0.0, 0.0, 1.0, 1e-30])
    assert _close(grads[0], -1e-30, TIGHT), grads[0]
    for censored, ref in ((0.0, weibull), (1.0, weibull_censored)):
        value, grads = run_point(target, "weibull_right_censored", [0.0, 0.0, censored, 1e300])
        assert _close(value, _exact(ref, [0.0, 0.0, 1e300]), TIGHT), (censored, value)
        for i in (0, 1):
            assert _close(grads[i], _diff(ref, [0.0, 0.0, 1e300], i), TIGHT), (censored, i, grads[i])


#: (y, s, p): pow(y·e^−s, p) where 1 < |log y − s| < 707 and |s| < 707, else exp(p·(log y − s))
POW_RATIO_POINTS = [
    (1e300, 0.0, 1.0), (1e-300, 0.0, 1.0), (3e200, 0.3, 1.0), (2e-250, -5.5, 1.0), (1e300, 0.0, 0.5),
    (1e-300, 0.0, 2.0), (7.5, 0.0, 100.0), (1e30, L30, 0.25), (5e-320, -30.0, 1.0), (1e100, 1.0, 2.718281828459045),
    # exp(t): |log y − s| ≤ 1 (there it is the closer), or beyond 707, or |s| beyond 707 (e^−s not normal)
    (2.0, 0.3, 1.0), (1e-30, L30, 1e8), (1e300, -69.07755278982137, 0.36787944117144233), (1e300, 710.0, 0.5),
    (1e-300, -720.0, 0.01), (0.0, 1.0, 1.0), (5e-324, 0.0, 1.0),
]


def _pow_ratio_truth(y: float, s: float, p: float) -> float:
    if y == 0.0:
        return 0.0
    with mpmath.workdps(60):
        return float(mpmath.exp(mp.mpf(p) * (mpmath.log(mp.mpf(y)) - mp.mpf(s))))


def _pow_ratio_allowance(y: float, s: float, p: float, t: float) -> float:
    """ulps allowed: pow's 1 and y·e^−s's 1.5 times p, and where exp(t) is taken, |t| half-ulps of t's rounding."""
    d = math.log(y) - s if y > 0 else -math.inf
    pow_range = 1.0 < abs(d) < 707.0 and abs(s) < 707.0
    return 2.0 + 2.0 * p if pow_range else 2.0 + abs(t) + 2.0 * p * 2.0**-52 / 1e-16


def _ulps(a: float, b: float) -> float:
    if a == b:
        return 0.0
    return abs(a - b) / np.spacing(abs(b)) if b != 0.0 else math.inf


@pytest.mark.parametrize("target", ["numpy", "torch", "jax", "c"])
def test_pow_ratio_helper_against_mpmath(target, tmp_path):
    """The modules' _pow_ratio(y, s, p, d, t) = (y·e^−s)^p (d = log y − s, t = p·d) against mpmath: within pow's
    and the base's rounding (times p) where it takes pow, within t's rounding where it takes exp(t)."""
    name = "weibull_log_scale_log_concentration"
    lr = generated_module("numpy", name)._log_ratio
    if target == "c":
        f = c_helper(tmp_path, name, "pow_ratio", 5)
        if f is None:
            pytest.skip("no C compiler")
    elif target == "jax":
        jax = pytest.importorskip("jax")
        jax.config.update("jax_enable_x64", True)
        mod = generated_module("jax", name)
        f = lambda *a: float(mod._pow_ratio(*[jax.numpy.asarray(v) for v in a]))  # noqa: E731
    elif target == "torch":
        import torch

        mod = generated_module("torch", name)
        f = lambda *a: float(mod._pow_ratio(*[torch.tensor([v], dtype=torch.float64) for v in a])[0])  # noqa: E731
    else:
        mod = generated_module("numpy", name)
        f = lambda *a: float(mod._pow_ratio(*[np.array([v]) for v in a])[0])  # noqa: E731
    for y, s, p in POW_RATIO_POINTS:
        if target == "jax" and 0.0 < y < np.finfo(np.float64).tiny:
            continue  # XLA flushes subnormal numbers to 0 (its _log_ratio gives −∞ there, and so exp(t) = 0)
        with np.errstate(all="ignore"):
            d = float(lr(np.array([y]), np.array([s]))[0])
        t = p * d
        with np.errstate(all="ignore"):  # (as the modules call it: overflow to ∞ in the branch not taken)
            got = f(y, s, p, d, t)
        want = _pow_ratio_truth(y, s, p)
        assert _ulps(got, want) <= _pow_ratio_allowance(y, s, p, t), (y, s, p, got, want)


def test_pow_ratio_helper_in_float32():
    """float32 keeps its dtype and its range: the pow branch below |log y − s| = 86 (e^±86 normal in float32),
    exp(t) above."""
    torch = pytest.importorskip("torch")
    mod = generated_module("torch", "weibull_log_scale_log_concentration")
    for y, s, p in [(1e30, 0.0, 1.0), (1e-30, 0.0, 1.0), (1e30, -20.0, 0.5), (3e-37, 5.0, 0.1), (2.0, 0.3, 1.0)]:
        args = [torch.tensor([v], dtype=torch.float32) for v in (y, s, p)]
        d = mod._log_ratio(args[0], args[1])
        got = mod._pow_ratio(*args, d, args[2] * d)
        assert got.dtype == torch.float32
        want = _pow_ratio_truth(float(np.float32(y)), float(np.float32(s)), float(np.float32(p)))
        assert abs(float(got[0]) - want) <= 8 * float(np.spacing(np.float32(want))), (y, s, p, float(got[0]), want)
