"""The accuracy harness's truth where two fixed precisions agree on a wrong value: a point whose locations and
target span more digits than the 50/80-digit pair covers (issue #7, normal_mixture2), against references
written by hand with mpmath at 600 digits."""

from __future__ import annotations

import math

import pytest

mpmath = pytest.importorskip("mpmath")

from benchmarks import accuracy as A  # noqa: E402

L30 = 69.07755278982137  # log 1e30
L8 = 18.420680743952367  # log 1e8


def _mixture_gradient(loc1, ls1, loc2, ls2, m, y):
    """∂ℓ/∂(loc1, log_scale1, loc2, log_scale2, logit_mixing) of −log(π·N(y; μ₁, σ₁) + (1 − π)·N(y; μ₂, σ₂)), π =
    σ(m), σᵢ = e^sᵢ, by hand: with rᵢ = (y − μᵢ)/σᵢ and the responsibility w₁ = σ(a₁ − a₂), aᵢ = log πᵢ − sᵢ − rᵢ²/2:
    (−w₁r₁/σ₁, w₁(1 − r₁²), −w₂r₂/σ₂, w₂(1 − r₂²), π − w₁)."""
    with mpmath.workdps(600):
        loc1, ls1, loc2, ls2, m, y = map(mpmath.mpf, (loc1, ls1, loc2, ls2, m, y))
        r1, r2 = (y - loc1) * mpmath.exp(-ls1), (y - loc2) * mpmath.exp(-ls2)
        a1 = -mpmath.log1p(mpmath.exp(-m)) - ls1 - r1 ** 2 / 2
        a2 = -mpmath.log1p(mpmath.exp(m)) - ls2 - r2 ** 2 / 2
        w1, w2 = 1 / (1 + mpmath.exp(a2 - a1)), 1 / (1 + mpmath.exp(a1 - a2))
        pi = 1 / (1 + mpmath.exp(-m))
        return [float(v) for v in (-w1 * r1 * mpmath.exp(-ls1), w1 * (1 - r1 ** 2), -w2 * r2 * mpmath.exp(-ls2),
                                   w2 * (1 - r2 ** 2), pi - w1)]


@pytest.mark.parametrize("point", [
    # y − μ₁ = 1e150 + 1 rounds to y at 50 and at 80 digits: r₂ − r₁ = −1e-30 became 0, and the
    # responsibilities σ(∓1e90 ± 700) became σ(±700)
    dict(loc1=-1.0, log_scale1=L30, loc2=0.0, log_scale2=L30, logit_mixing=700.0, y=1e150),
    # two equal components: π − w₁ = 0, which 50 digits made 0.5 (exp(−r²/2) of r² = 1e316 to 50 digits)
    dict(loc1=-1.0, log_scale1=L8, loc2=-1.0, log_scale2=L8, logit_mixing=1e4, y=-1e150),
    # y = 1e-300 beside μ = ±1e150 (450 digits): r₁ + r₂ = 2e-308, π − w₁ = −5e-167
    dict(loc1=1e150, log_scale1=L8, loc2=-1e150, log_scale2=L8, logit_mixing=0.0, y=1e-300),
])
def test_mixture_truth_resolves_the_residual_difference(point):
    from test_codegen_support import loss_for

    loss = loss_for("normal_mixture2")
    problem = A.build_problem(loss, limit=10)
    problem.points = [point]
    truths = A.truths_for(problem, loss.expr, loss.gradient, list(loss.wrt_names))
    want = _mixture_gradient(*(point[n] for n in ("loc1", "log_scale1", "loc2", "log_scale2", "logit_mixing", "y")))
    for name, w in zip(loss.wrt_names, want, strict=True):
        (got,) = truths[name][0]
        if not math.isfinite(w):
            assert got is None
        elif w == 0:
            assert got == 0
        else:
            assert got == pytest.approx(w, rel=1e-14), name


def test_spread_of_locations():
    from test_codegen_support import loss_for

    problem = A.build_problem(loss_for("normal_mixture2"), limit=10)
    additive = A._additive(problem)
    assert [problem.names[i] for i in additive] == ["loc1", "loc2", "y"]
    args = [1.0, -69.0, 0.0, 69.0, 700.0, 1e150]
    assert A.spread_digits(args, additive) == 150  # the log-scales and the logit do not count
    assert A._precisions(A.DPS, A.ESCALATE, 30) == (A.DPS, A.ESCALATE)
    assert A._precisions(A.DPS, A.ESCALATE, 150) == (400, (430, 1200))
    assert A._precisions(A.DPS, A.ESCALATE, 450) == (1200, (1230,))
