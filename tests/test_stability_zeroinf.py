"""Zero-inflated and Weibull-type losses at extreme points, against references symloss did not produce (mpmath at
60 digits from the textbook densities), in NumPy and PyTorch; and the accuracy harness's support filter."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from symloss.codegen import load
from symloss.codegen.catalog import CATALOG_VARIANTS, derive_entry

mp = mpmath.mp


def _entry(name: str):
    (e,) = [e for e in CATALOG_VARIANTS if e.options.get("name") == name]
    return derive_entry(e)


def _run(loss, target: str, *args):
    mod = load(loss, target)
    if target == "torch":
        import torch

        ts = [torch.tensor([float(a)], dtype=torch.float64) for a in args]
        v = mod.loss(*ts, reduction="none")
        g = mod.grad(*ts, reduction="none")
        return float(v[0]), [float(t.reshape(-1)[0]) for t in g]
    arrs = [np.array([float(a)]) for a in args]
    v = mod.loss(*arrs, reduction="none")
    g = mod.grad(*arrs, reduction="none")
    return float(np.asarray(v).reshape(-1)[0]), [float(np.asarray(t).reshape(-1)[0]) for t in g]


def _zip_nll(log_rate, logit_gate):
    """−log(π + (1 − π)e^−λ) at y = 0 (mpmath)."""
    lam = mpmath.exp(log_rate)
    pi = 1 / (1 + mpmath.exp(-logit_gate))
    return -mpmath.log(pi + (1 - pi) * mpmath.exp(-lam))


def _rel(got, want):
    want = float(want)
    return abs(got - want) / abs(want) if want != 0 else abs(got)


TARGETS = ["numpy", pytest.param("torch", marks=pytest.mark.filterwarnings("ignore"))]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("log_rate, logit_gate", [(-69.07755278982137, 0.0), (-69.07755278982137, -1.0),
                                                  (-1.0, 0.0), (1.0, 40.0), (690.0, -1e4), (-690.0, -700.0)])
def test_zip_at_zero_against_mpmath(target, log_rate, logit_gate):
    loss = _entry("zip_poisson")
    value, (g_rate, g_gate) = _run(loss, target, log_rate, logit_gate, 0.0)
    with mpmath.workdps(60):
        lr, lg = mpmath.mpf(log_rate), mpmath.mpf(logit_gate)
        want = _zip_nll(lr, lg)
        d_rate = mpmath.diff(lambda t: _zip_nll(t, lg), lr)
        d_gate = mpmath.diff(lambda t: _zip_nll(lr, t), lg)
    assert _rel(value, want) < 1e-14
    assert _rel(g_rate, d_rate) < 1e-12
    assert _rel(g_gate, d_gate) < 1e-12


def test_zip_tiny_rate_value_is_not_zero():
    # −log(π + (1 − π)e^−λ) ≈ (1 − π)λ = 5e-31 at λ = 1e-30, π = ½: logaddexp alone gives 0
    loss = _entry("zip_poisson")
    value, _ = _run(loss, "numpy", math.log(1e-30), 0.0, 0.0)
    assert value == pytest.approx(0.5e-30, rel=1e-14)


def _zinb_zero_nll(log_r, logits, logit_gate):
    r = mpmath.exp(log_r)
    p = 1 / (1 + mpmath.exp(-logits))
    pi = 1 / (1 + mpmath.exp(-logit_gate))
    return -mpmath.log(pi + (1 - pi) * (1 - p) ** r)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("log_r, logits, logit_gate", [(1.0, 700.0, 40.0), (69.07755278982137, 0.0, 1.0),
                                                       (-69.07755278982137, -1.0, 0.0), (0.0, -40.0, -1.0)])
def test_zinb_at_zero_against_mpmath(target, log_r, logits, logit_gate):
    loss = _entry("zinb")
    value, grads = _run(loss, target, log_r, logits, logit_gate, 0.0)
    assert all(math.isfinite(g) for g in grads)
    with mpmath.workdps(60):
        a = [mpmath.mpf(log_r), mpmath.mpf(logits), mpmath.mpf(logit_gate)]
        want = _zinb_zero_nll(*a)
        d_gate = mpmath.diff(lambda t: _zinb_zero_nll(a[0], a[1], t), a[2])
    assert _rel(value, want) < 1e-13
    assert _rel(grads[2], d_gate) < 1e-12


@pytest.mark.parametrize("target", TARGETS)
def test_weibull_log_scale_gradient_at_tiny_concentration(target):
    # ∂ℓ/∂log λ = k − k·(y/λ)^k = −k·expm1(k·log(y/λ)): at k = 1e-30, y/λ = 1e300 it is −6.9e-58, not 0
    from symloss import derive

    loss = derive("Weibull", link={"scale": "log", "concentration": "log"})
    ls, lc, y = 0.0, math.log(1e-30), 1e300
    _, grads = _run(loss, target, ls, lc, y)
    names = list(loss.wrt_names)
    got = grads[names.index("log_scale")]
    with mpmath.workdps(60):
        k = mpmath.exp(mpmath.mpf(lc))
        want = k - k * mpmath.exp(k * (mpmath.log(mpmath.mpf(y)) - mpmath.mpf(ls)))
    assert _rel(got, want) < 1e-13


def test_harness_grid_respects_coupled_support():
    from benchmarks.accuracy import build_problem
    from symloss import derive

    binom = build_problem(derive("Binomial", link="canonical"), 10_000)
    assert binom.points and all(p["y"] <= p["total_count"] for p in binom.points)
    pareto = build_problem(derive("Pareto", link="canonical"), 10_000)
    assert pareto.points and all(p["y"] >= p["scale"] for p in pareto.points)
