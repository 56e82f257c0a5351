"""Subnormal tails and cancellations at the accuracy harness's extreme points (issue #7), against references written
by hand with mpmath (never generated code compared with itself), in the committed modules of generated/."""

from __future__ import annotations

import math
import struct

import mpmath
import numpy as np
import pytest

from tests.stability_support import generated_module, run_point

TARGETS = ["numpy", pytest.param("torch", marks=pytest.mark.filterwarnings("ignore"))]


def _ordinal(x: float) -> int:
    i = struct.unpack("<q", struct.pack("<d", x))[0]
    return i if i >= 0 else -(i & 0x7FFFFFFFFFFFFFFF)


def _ulps(got: float, want) -> int:
    """float64 values between got and the reference rounded to float64."""
    return abs(_ordinal(float(got)) - _ordinal(float(want)))


def _sigma(x):
    return 1 / (1 + mpmath.exp(-x))


# -- the PyTorch sigmoid: torch.sigmoid is 0 below −709.8 (−88.7 in float32), its value is a subnormal down to −745
@pytest.mark.parametrize("x", [-1e4, -800.0, -745.0, -744.5, -730.0, -720.0, -709.9, -708.5, -708.0, -700.0, -40.0,
                               -1.0, 0.0, 1.0, 40.0, 800.0])
def test_torch_sigmoid_keeps_the_subnormal_tail_float64(x):
    torch = pytest.importorskip("torch")
    mod = generated_module("torch", "zinb")
    got = float(mod._sigmoid(torch.tensor([x], dtype=torch.float64))[0])
    with mpmath.workdps(60):
        want = _sigma(mpmath.mpf(x))
    assert _ulps(got, want) <= 1
    if x >= -708.0:  # above the threshold it is torch.sigmoid's own value, bit for bit
        assert got == float(torch.sigmoid(torch.tensor([x], dtype=torch.float64))[0])


@pytest.mark.parametrize("x", [-110.0, -103.0, -100.0, -95.0, -88.5, -87.5, -87.0, -80.0, -1.0, 0.0, 90.0])
def test_torch_sigmoid_keeps_the_subnormal_tail_float32(x):
    torch = pytest.importorskip("torch")
    mod = generated_module("torch", "zinb")
    got = mod._sigmoid(torch.tensor([x], dtype=torch.float32))
    assert got.dtype == torch.float32
    with mpmath.workdps(60):
        want = float(_sigma(mpmath.mpf(x)))
    want32 = float(np.float32(want))  # the reference rounded to float32 (subnormals included)
    got = float(got[0])
    assert got == want32 or abs(got - want32) <= abs(float(np.spacing(np.float32(want32))))


def test_torch_sigmoid_double_backward_through_the_tail():
    torch = pytest.importorskip("torch")
    mod = generated_module("torch", "zinb")
    xs = [-740.0, -720.0, -709.9, -700.0, -3.0, 0.0, 5.0, 800.0]

    def derivatives(f):
        x = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(f(x).sum(), x, create_graph=True)
        (h,) = torch.autograd.grad(g.sum(), x)
        return g.tolist(), h.tolist()

    g, h = derivatives(mod._sigmoid)
    g0, h0 = derivatives(torch.sigmoid)
    with mpmath.workdps(60):
        for x, gi, hi, g0i, h0i in zip(xs, g, h, g0, h0, strict=True):
            if x > -708.0:  # torch.sigmoid's own derivatives (its backward's 1 − σ included)
                assert (gi, hi) == (g0i, h0i)
                continue
            s, c = _sigma(mpmath.mpf(x)), _sigma(-mpmath.mpf(x))
            assert _ulps(gi, s * c) <= 2  # σ' = σ(x)σ(−x), where torch.sigmoid's is 0
            assert _ulps(hi, s * c * (c - s)) <= 2  # σ'' = σ'·(1 − 2σ)


# -- zinb at y = 0 with a confident gate: the gradients are (1 − π)·e^−A·(...) ≈ e^−714.7, subnormal
def _zinb_zero(log_r, logits, logit_gate):
    """(ℓ, ∂ℓ/∂log r, ∂ℓ/∂logits, ∂ℓ/∂logit_gate) of −log(π + (1 − π)(1 − p)^r) by hand: with A = r·log(1 + e^z),
    D = π + (1 − π)e^−A, ∂ℓ/∂log r = (1 − π)e^−A·A/D, ∂ℓ/∂z = (1 − π)e^−A·r·σ(z)/D, ∂ℓ/∂g = −π(1 − π)(1 − e^−A)/D."""
    r = mpmath.exp(log_r)
    a = r * mpmath.log1p(mpmath.exp(logits))
    pi, one_minus_pi = _sigma(logit_gate), _sigma(-logit_gate)
    q = mpmath.exp(-a)
    d = pi + one_minus_pi * q
    value = -mpmath.log1p(-one_minus_pi * -mpmath.expm1(-a))
    return value, one_minus_pi * q * a / d, one_minus_pi * q * r * _sigma(logits) / d, -pi * one_minus_pi * (1 - q) / d


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("point", [(-1.0, 40.0, 700.0), (0.0, 20.0, 700.0), (-1.0, 1.0, 730.0)])
def test_zinb_subnormal_gradients_at_zero(target, point):
    value, grads = run_point(target, "zinb", [*point, 0.0])
    with mpmath.workdps(60):
        want = _zinb_zero(*[mpmath.mpf(p) for p in point])
    assert _ulps(value, want[0]) <= 4
    for got, ref in zip(grads, want[1:], strict=True):
        assert float(ref) != 0.0
        assert _ulps(got, ref) <= 8, (got, float(ref))


# -- a mixture of two Normals far from the target: the responsibility's r₂² − r₁² = (r₂ − r₁)(r₂ + r₁)
L30 = 69.07755278982137  # log 1e30
L8 = 18.420680743952367  # log 1e8


def _mixture_gradient(loc1, ls1, loc2, ls2, m, y):
    """∂ℓ/∂(loc1, log_scale1, loc2, log_scale2, logit_mixing) of −log(π·N(y; μ₁, σ₁) + (1 − π)·N(y; μ₂, σ₂)) by
    hand at 600 digits: rᵢ = (y − μᵢ)/σᵢ, aᵢ = log πᵢ − sᵢ − rᵢ²/2, w₁ = σ(a₁ − a₂):
    (−w₁r₁/σ₁, w₁(1 − r₁²), −w₂r₂/σ₂, w₂(1 − r₂²), π − w₁)."""
    with mpmath.workdps(600):
        loc1, ls1, loc2, ls2, m, y = map(mpmath.mpf, (loc1, ls1, loc2, ls2, m, y))
        r1, r2 = (y - loc1) * mpmath.exp(-ls1), (y - loc2) * mpmath.exp(-ls2)
        a1 = -mpmath.log1p(mpmath.exp(-m)) - ls1 - r1 ** 2 / 2
        a2 = -mpmath.log1p(mpmath.exp(m)) - ls2 - r2 ** 2 / 2
        w1, w2 = 1 / (1 + mpmath.exp(a2 - a1)), 1 / (1 + mpmath.exp(a1 - a2))
        return [-w1 * r1 * mpmath.exp(-ls1), w1 * (1 - r1 ** 2), -w2 * r2 * mpmath.exp(-ls2), w2 * (1 - r2 ** 2),
                _sigma(m) - w1]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("point", [
    # r₂ − r₁ = (μ₁ − μ₂)/σ = −1e-30 at y = 1e150 (it came out 0: ∂/∂log_scale2 was −9.9e-65, not −1e240)
    (-1.0, L30, 0.0, L30, 700.0, 1e150),
    # r₂ − r₁ = 1e30 at y = −1e150: σ(−1e210) = 0 times r₁² = 1e360 (it came out σ(−700)·∞ = −∞)
    (1.0, -L30, 0.0, -L30, -700.0, -1e150),
    # σ(−700)·r₂² with r₂ = 1e158: r₂² overflows, the product is −9.9e11 (it came out −∞)
    (-1e150, -L8, -1e150, -L8, 700.0, 1e-300),
    # y = μ₂ with σ₂ = 1e-30: r₂ = 0 exactly, r₂ − r₁ = 2 (written around y·(e^−s₂ − e^−s₁) it would cancel)
    (1.0, 0.0, -1.0, -L30, -1.0, -1.0),
    # equal components: π − w₁ = 0
    (-1.0, L8, -1.0, L8, 1e4, -1e150),
    (0.5, -1.0, -2.0, 1.0, 0.3, 1.5),
])
def test_normal_mixture_gradients_far_from_the_target(target, point):
    _, grads = run_point(target, "normal_mixture2", list(point))
    want = _mixture_gradient(*point)
    for got, ref in zip(grads, want, strict=True):
        ref = float(ref) if abs(ref) < mpmath.mpf("1.8e308") else math.copysign(math.inf, ref)
        if math.isinf(ref):
            continue  # the truth overflows float64
        assert math.isfinite(got)
        assert got == ref or _ulps(got, ref) <= 16, (got, ref)


# -- a softmax term times a count: Σy·exp(z_j − max z) with exp(z_j − max z) a subnormal
def _multinomial_gradient(logits, y):
    """∂ℓ/∂logits_j = Σy·softmax(logits)_j − y_j by hand (mpmath, 60 digits)."""
    with mpmath.workdps(60):
        z = [mpmath.mpf(v) for v in logits]
        top = max(z)
        w = [mpmath.exp(v - top) for v in z]
        total = sum(mpmath.mpf(v) for v in y)
        return [total * wj / sum(w) - mpmath.mpf(yj) for wj, yj in zip(w, y, strict=True)]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("logits", [[-1e4, -40.0, 700.0], [-700.0, -40.0, 700.0], [-40.0, -40.0, 700.0],
                                    [-30.0, -745.0, 0.0], [0.0, 1.0, 2.0]])
def test_multinomial_gradient_of_a_subnormal_softmax_term(target, logits):
    y = [100.0, 0.0, 1e6]
    mod = generated_module(target, "multinomial_softmax_probs")
    if target == "torch":
        import torch

        (g,) = mod.grad(torch.tensor(sum(y), dtype=torch.float64), torch.tensor(logits, dtype=torch.float64),
                        torch.tensor(y, dtype=torch.float64), reduction="none")
        got = g.tolist()
    else:
        (g,) = mod.grad(sum(y), np.array(logits), np.array(y), reduction="none")
        got = np.asarray(g).tolist()
    for gj, ref in zip(got, _multinomial_gradient(logits, y), strict=True):
        assert _ulps(gj, ref) <= 4, (gj, float(ref))


def test_every_printer_prints_mul_exp():
    import sympy as sp

    from symloss.codegen.printers import printer_for
    from symloss.stabilize import MulExp

    u, d = sp.symbols("u d", real=True)
    for target, helper in [("numpy", "_mul_exp"), ("torch", "_mul_exp"), ("jax", "_mul_exp"), ("c", "mul_exp"),
                           ("triton", "_mul_exp")]:
        printer = printer_for(target)
        text = printer.doprint(MulExp(u, d, sp.exp(d)))
        assert helper + "(" in text and helper in printer.helpers, (target, text)


@pytest.mark.parametrize("d", [-1e4, -800.0, -745.0, -740.0, -720.0, -709.0, -708.0, -700.0, -40.0, -1.0, 0.0])
@pytest.mark.parametrize("u", [0.0, 1e-300, 0.5, 3.0, 1.0001e6, -2e10, 1e300])
def test_mul_exp_helpers_against_mpmath(d, u, tmp_path):
    with mpmath.workdps(60):
        want = mpmath.mpf(u) * mpmath.exp(mpmath.mpf(d))
    e = math.exp(d)
    got = {"numpy": float(generated_module("numpy", "multinomial_softmax_probs")._mul_exp(
        np.array([u]), np.array([d]), np.array([e]))[0])}
    torch = pytest.importorskip("torch")
    t = [torch.tensor([v], dtype=torch.float64) for v in (u, d, e)]
    got["torch"] = float(generated_module("torch", "multinomial_softmax_probs")._mul_exp(*t)[0])
    for name, g in got.items():
        assert _ulps(g, want) <= 2, (name, g, float(want))


def test_mul_exp_c_and_jax_helpers(tmp_path):
    from tests.stability_support import c_helper

    points = [(1.0001e6, -740.0), (3.0, -720.0), (-2e10, -745.0), (0.5, -1.0), (7.0, 0.0), (1e300, -800.0)]
    f = c_helper(tmp_path, "multinomial_softmax_probs", "mul_exp", 3)
    jax_mod = None
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        jax_mod = generated_module("jax", "multinomial_softmax_probs")
    except ImportError:
        pass
    for u, d in points:
        with mpmath.workdps(60):
            want = mpmath.mpf(u) * mpmath.exp(mpmath.mpf(d))
        if f is not None:
            assert _ulps(f(u, d, math.exp(d)), want) <= 2, ("c", u, d)
        if jax_mod is not None and abs(float(want)) >= 2.2250738585072014e-308:
            # XLA on the CPU flushes subnormals to 0: only the normal results are compared
            import jax.numpy as jnp

            g = float(jax_mod._mul_exp(jnp.array([u]), jnp.array([d]), jnp.array([math.exp(d)]))[0])
            assert _ulps(g, want) <= 2, ("jax", u, d, g)


# -- the Dirichlet's log Beta function with one concentration of 1e30: lgamma(1e30) − lgamma(Σα) cancels
def _dirichlet(lc, y):
    """(ℓ, ∂ℓ/∂log_concentration) of −log Dir(y; e^lc) by hand (mpmath, 100 digits): Σ lgamma(α) − lgamma(Σα)
    − Σ (α − 1)·log y and α_j·(ψ(α_j) − ψ(Σα) − log y_j)."""
    with mpmath.workdps(100):
        a = [mpmath.exp(mpmath.mpf(v)) for v in lc]
        total = sum(a)
        value = sum(mpmath.loggamma(v) for v in a) - mpmath.loggamma(total)
        value -= sum((v - 1) * mpmath.log(mpmath.mpf(w)) for v, w in zip(a, y, strict=True))
        grad = [v * (mpmath.digamma(v) - mpmath.digamma(total) - mpmath.log(mpmath.mpf(w)))
                for v, w in zip(a, y, strict=True)]
        return value, grad


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("lc, y", [
    # y₀ = 1 − 2⁻⁵² (on the simplex): ℓ = 2.2e14 + 138 came out 0, ∂ℓ/∂lc₀ = 2.2e14 came out 0
    ([L30, -L30, -L30], [1 - 2.0**-52, 2.0**-53, 2.0**-53]),
    ([L30, -L30, -1.0], [1 - 2.0**-52, 2.0**-53, 2.0**-53]),
    ([-1.0, L30, -L30], [0.25, 0.5, 0.25]),
    ([0.3, -1.2, 2.0], [0.25, 0.25, 0.5]),
    ([1.0, 1.0, -0.5], [0.25, 0.5, 0.25]),  # a tie for the largest concentration
])
def test_dirichlet_with_one_dominant_concentration(target, lc, y):
    value, grads = run_point_vector(target, "dirichlet_log_concentration", lc, y)
    want, want_grad = _dirichlet(lc, y)
    assert _ulps(value, want) <= 16, (value, float(want))
    for got, ref in zip(grads, want_grad, strict=True):
        assert _ulps(got, ref) <= 16, (got, float(ref))


def run_point_vector(target, name, vec, y):
    """(value, [∂ℓ/∂vec_k]) of a class-axis module with one vector input, float64, one row."""
    mod = generated_module(target, name)
    if target == "torch":
        import torch

        value, (g,) = mod.value_and_grad(torch.tensor([vec], dtype=torch.float64),
                                         torch.tensor([y], dtype=torch.float64), reduction="none")
        return float(value[0]), g[0].tolist()
    value, (g,) = mod.value_and_grad(np.array([vec]), np.array([y]), reduction="none")
    return float(np.asarray(value).ravel()[0]), np.asarray(g)[0].tolist()



def test_harness_dirichlet_targets_lie_on_the_simplex():
    from fractions import Fraction

    from benchmarks.accuracy import build_problem
    from tests.test_codegen_support import loss_for

    problem = build_problem(loss_for("dirichlet"), 10_000)
    targets = {tuple(p["y"]) for p in problem.points}
    assert len(targets) == 3
    for t in targets:
        deficit = sum(map(Fraction, t)) - 1
        assert deficit == 0 or abs(deficit) <= Fraction(1e-300), t  # 1e-300 + ½ + ½ is 1 + 1e-300
