"""Stability on the edges, in float32 and float64: wherever the true value (or gradient) is finite, the generated
one is finite and accurate.

The edges: logits of ±1e4; scales from 1e-30 to 1e30 (log_scale ±69; float32 squares of standardised
residuals overflow beyond |log_scale| ≈ 44, so float32 uses ±40 there); rates near 0; targets on the edge of
the support (y = 0 for Poisson and for Bernoulli probabilities, y = 1 for a Beta with concentration0 = 1, a
zero count, a zero simplex component with concentration 1).  The references are torch's own stable built-ins
and distributions, or the derived (unstabilised) formula evaluated exactly with mpmath, which cannot overflow.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F
from test_codegen_support import loss_for, module_for

DTYPES = {"float64": (np.float64, torch.float64, 1e-12), "float32": (np.float32, torch.float32, 1e-4)}


def run(key: str, target: str, dtype: str, inputs: dict, y, reduction: str = "none", **kw):
    """(per-observation values, gradients of their sum) in float64 numpy arrays, from the generated module."""
    np_dtype, t_dtype, _ = DTYPES[dtype]
    mod = module_for(key, target)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the NumPy modules compute silently
        if target == "numpy":
            args = [np.asarray(inputs[n], dtype=np_dtype) for n in mod.PARAMS]
            yy = np.asarray(y) if np.asarray(y).dtype.kind in "iu" else np.asarray(y, dtype=np_dtype)
            value = mod.loss(*args, yy, reduction=reduction, **kw)
            _, grads = mod.value_and_grad(*args, yy, reduction="sum", **kw)
            assert value.dtype == np_dtype
            return np.asarray(value, np.float64), [np.asarray(g, np.float64) for g in grads]
    xs = [torch.tensor(inputs[n], dtype=t_dtype, requires_grad=n in mod.WRT) for n in mod.PARAMS]
    yy = torch.as_tensor(y) if np.asarray(y).dtype.kind in "iu" else torch.tensor(y, dtype=t_dtype)
    value = mod.loss(*xs, yy, reduction=reduction, **kw)
    total = mod.loss(*xs, yy, reduction="sum", **kw)
    grads = torch.autograd.grad(total, [x for x, n in zip(xs, mod.PARAMS) if n in mod.WRT])
    assert value.dtype == t_dtype
    return value.detach().double().numpy(), [g.double().numpy() for g in grads]


def assert_close(got, want, tol, what=""):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert np.isfinite(got).all(), f"{what}: not finite: {got}"
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=what)


params = pytest.mark.parametrize("target", ["numpy", "torch"])
dtypes = pytest.mark.parametrize("dtype", list(DTYPES))


# ---------------------------------------------------------------------------------------------------------
@params
@dtypes
def test_bernoulli_logits_of_1e4(target, dtype):
    z = np.array([1e4, 1e4, -1e4, -1e4, 0.0])
    y = np.array([0.0, 1.0, 0.0, 1.0, 1.0])
    value, (g,) = run("bernoulli", target, dtype, {"logits": z}, y)
    zt, yt = torch.tensor(z, requires_grad=True), torch.tensor(y)
    ref = F.binary_cross_entropy_with_logits(zt, yt, reduction="none")
    (rg,) = torch.autograd.grad(ref.sum(), zt)
    tol = DTYPES[dtype][2]
    assert_close(value, ref.detach(), tol, "value")
    assert_close(g, rg, tol, "gradient")
    assert value.tolist()[:4] == [1e4, 0.0, 0.0, 1e4]


@params
@dtypes
@pytest.mark.parametrize("key", ["binomial", "geometric", "negativebinomial"])
def test_count_models_with_logits_of_1e4_and_zero_counts(key, target, dtype):
    z = np.array([1e4, -1e4, 1e4, -1e4, 0.5])
    y = np.array([0.0, 0.0, 5.0, 5.0, 2.0])
    inputs = {"logits": z}
    loss = loss_for(key)
    if "total_count" in loss.input_names:
        inputs["total_count"] = np.full(5, 5.0)
    value, grads = run(key, target, dtype, inputs, y)
    # torch.distributions' Geometric is itself NaN at these logits: the reference is the derived formula,
    # evaluated exactly
    tol = DTYPES[dtype][2]
    assert_close(value, exact(loss, inputs, y), tol, f"{key} value")
    mod = module_for(key, target)
    for name, g in zip(mod.WRT, grads):
        assert_close(g, exact(loss, inputs, y, what=name), tol, f"{key} ∂/∂{name}")


@params
@dtypes
def test_cross_entropy_logits_of_1e4(target, dtype):
    z = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, 1e4], [0.0, 1e4, 1e4]])
    idx = np.array([2, 2, 0])
    value, (g,) = run("categorical", target, dtype, {"logits": z}, idx)
    zt = torch.tensor(z, requires_grad=True)
    ref = F.cross_entropy(zt, torch.tensor(idx), reduction="none")
    (rg,) = torch.autograd.grad(ref.sum(), zt)
    tol = DTYPES[dtype][2]
    assert_close(value, ref.detach(), tol, "value")
    assert_close(g, rg, tol, "gradient")
    probs = np.array([[0.0, 0.0, 1.0], [0.5, 0.0, 0.5], [0.0, 1.0, 0.0]])
    value_p, (g_p,) = run("categorical", target, dtype, {"logits": z}, probs)
    ref_p = F.cross_entropy(zt, torch.tensor(probs), reduction="none")
    # log 2 out of 1e4 + log 2: float32 resolves 1e4 to about 1e-3
    spacing = float(np.spacing(DTYPES[dtype][0](1e4)))
    assert_close(value_p, ref_p.detach(), max(tol, 2 * spacing), "probability targets")
    assert np.isfinite(g_p).all()


@params
@dtypes
def test_multinomial_logits_of_1e4_and_zero_counts(target, dtype):
    z = np.array([[1e4, 0.0, -1e4], [0.3, -0.2, 0.1]])
    counts = np.array([[4.0, 0.0, 0.0], [0.0, 3.0, 1.0]])
    value, (g,) = run("multinomial", target, dtype, {"logits": z, "total_count": 4.0}, counts, full=True)
    zt = torch.tensor(z, requires_grad=True)
    nll = -torch.distributions.Multinomial(4, logits=zt, validate_args=False).log_prob(torch.tensor(counts))
    (rg,) = torch.autograd.grad(nll.sum(), zt)
    tol = DTYPES[dtype][2]
    assert_close(value, nll.detach(), tol, "value")
    assert_close(g, rg, tol, "gradient")


@params
@dtypes
def test_poisson_rates_near_zero_and_zero_counts(target, dtype):
    log_rate = np.array([-69.0, -69.0, -1000.0, 0.0, 69.0, 69.0])
    y = np.array([0.0, 3.0, 0.0, 0.0, 0.0, 2.0])
    value, (g,) = run("poisson", target, dtype, {"log_rate": log_rate}, y)
    xt = torch.tensor(log_rate, requires_grad=True)
    ref = F.poisson_nll_loss(xt, torch.tensor(y), log_input=True, full=False, reduction="none")
    (rg,) = torch.autograd.grad(ref.sum(), xt)
    tol = DTYPES[dtype][2]
    assert_close(value, ref.detach(), tol, "value")
    assert_close(g, rg, tol, "gradient")
    # full=True is exactly −log p: at y = 0 that is the rate itself
    full, _ = run("poisson", target, dtype, {"log_rate": np.array([-69.0, 0.0])}, np.array([0.0, 0.0]), full=True)
    assert_close(full, [np.exp(-69.0), 1.0], tol, "full")


@params
@dtypes
def test_binary_cross_entropy_on_probabilities_with_targets_on_the_edge(target, dtype):
    tiny = 1e-300 if dtype == "float64" else 1e-30
    p = np.array([tiny, 0.5, 1 - 1e-7, 0.3, 0.0, 1.0])
    y = np.array([0.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    p = p.astype(DTYPES[dtype][0]).astype(np.float64)
    value, (g,) = run("bce", target, dtype, {"probs": p[:4]}, y[:4])
    # F.binary_cross_entropy clamps its log at −100 and its gradient's denominator at 1e-12, so the
    # reference is the derived formula, evaluated exactly
    loss = loss_for("bce")
    tol = DTYPES[dtype][2]
    assert_close(value, exact(loss, {"probs": p[:4]}, y[:4]), tol, "value")
    assert_close(g, exact(loss, {"probs": p[:4]}, y[:4], what="probs"), tol, "gradient")
    # probabilities exactly 0 or 1 with the matching target: 0·log 0 = 0, the loss is 0
    edge, _ = run("bce", target, dtype, {"probs": p[4:]}, y[4:])
    assert edge.tolist() == [0.0, 0.0]


@params
@dtypes
def test_beta_and_dirichlet_targets_on_the_edge_of_the_simplex(target, dtype):
    # y = 1 with concentration0 = 1 (and y = 0 with concentration1 = 1): the density is finite there
    lc1 = np.array([-1.0, 0.0, 2.0, 0.0])
    lc0 = np.array([0.0, 0.0, 0.0, 1.5])
    y = np.array([1.0, 1.0, 1.0, 0.0])
    value, (g1, g0) = run("beta", target, dtype, {"log_concentration1": lc1, "log_concentration0": lc0}, y)
    a = torch.tensor(lc1, requires_grad=True)
    b = torch.tensor(lc0, requires_grad=True)
    nll = -torch.distributions.Beta(torch.exp(a), torch.exp(b), validate_args=False).log_prob(torch.tensor(y))
    tol = DTYPES[dtype][2] * 10
    assert_close(value, nll.detach(), tol, "value")
    # ∂/∂ log concentration1 is finite at y = 1 (∂/∂ log concentration0 is −log(1 − y)·β... = +∞ there, truly)
    ra, rb = torch.autograd.grad(nll.sum(), (a, b))
    assert_close(g1[:3], ra[:3], tol, "gradient")
    assert_close(g0[3:], rb[3:], tol, "gradient")
    alpha = np.array([[0.0, 0.5, -0.3]])  # log-concentrations: the first is 1
    simplex = np.array([[0.0, 0.7, 0.3]])
    value_d, (g_d,) = run("dirichlet", target, dtype, {"log_concentration": alpha}, simplex)
    at = torch.tensor(alpha, requires_grad=True)
    nll_d = -torch.distributions.Dirichlet(torch.exp(at), validate_args=False).log_prob(torch.tensor(simplex))
    assert_close(value_d, nll_d.detach(), tol, "dirichlet value")
    (rd,) = torch.autograd.grad(nll_d.sum(), at)
    assert_close(g_d[:, 1:], rd[:, 1:], tol, "dirichlet gradient")


@params
@dtypes
def test_zero_targets_where_the_shape_makes_the_density_finite(target, dtype):
    """Gamma (shape 1), Weibull (shape 1), log-logistic (shape 1), exponential at y = 0; small rates."""
    cases = [
        ("gamma", {"log_concentration": [0.0, 0.0], "log_rate": [-69.0, 3.0]}, [0.0, 0.0], "log_rate"),
        ("weibull", {"log_scale": [-20.0, 20.0], "log_concentration": [0.0, 0.0]}, [0.0, 0.0], "log_scale"),
        ("loglogistic", {"log_alpha": [-5.0, 5.0], "log_beta": [0.0, 0.0]}, [0.0, 0.0], "log_alpha"),
        ("exponential", {"log_rate": [-69.0, 69.0 if dtype == "float64" else 40.0]}, [0.0, 0.0], "log_rate"),
    ]
    for key, inputs, y, finite_grad in cases:
        mod = module_for(key, target)
        value, grads = run(key, target, dtype, {k: np.array(v) for k, v in inputs.items()}, np.array(y))
        assert np.isfinite(value).all(), key
        g = grads[mod.WRT.index(finite_grad)]
        assert np.isfinite(g).all(), (key, finite_grad, g)
        ref = exact(loss_for(key), {k: np.array(v) for k, v in inputs.items()}, np.array(y))
        assert_close(value, ref, DTYPES[dtype][2], key)


# ---------------------------------------------------------------------------------------------------------
# scales from 1e-30 to 1e30 through log_scale
def exact(loss, inputs: dict, y: np.ndarray, what=None) -> np.ndarray:
    """The derived (unstabilised) loss or gradient, evaluated exactly with mpmath (60 digits), elementwise.

    At y = 0 the 0·log 0 terms are taken as their limit 0 by evaluating at y = 1e-400 (mpmath has no
    underflow): the loss is continuous there.
    """
    expr = loss.expr if what is None else loss.gradient[loss.input(what)]
    symbols = {str(s): s for s in loss.inputs}
    out = []
    for i in range(len(y)):
        at = {symbols[k]: sp.Rational(float(v[i])) for k, v in inputs.items()}
        yi = sp.Rational(float(y[i])) if y[i] != 0 else sp.Float("1e-400", 80)
        at[loss.target] = yi
        out.append(float(expr.subs(at).evalf(60)))
    return np.array(out)


LOCATION_SCALE = ["normal", "laplace", "cauchy", "logistic", "gumbel", "hyperbolicsecant", "asymmetriclaplace",
                  "studentt", "lognormal", "halfnormal", "halfcauchy", "rayleigh"]


@params
@dtypes
@pytest.mark.parametrize("key", LOCATION_SCALE)
def test_scales_from_1e_minus_30_to_1e30(key, target, dtype):
    loss = loss_for(key)
    reach = 69.0 if dtype == "float64" else 40.0
    s = np.array([-reach, -reach, reach, reach, 0.0])
    if "loc" in loss.input_names:
        loc = np.array([0.5, 0.5, 0.5, 0.5, 0.5])
        y = np.array([0.5, 2.5, 0.5, 2.5, 2.5])
        if key == "lognormal":  # log y − loc must be exactly 0 in floating point, as it is exactly
            loc, y = np.zeros(5), np.array([1.0, 3.0, 1.0, 3.0, 3.0])
        if key == "gumbel":  # y < loc with a tiny scale has −log p = +∞
            y = np.array([0.5, 2.5, 0.5, 2.5, 0.0])
        inputs = {"loc": loc, "log_scale": s}
    else:
        y = np.array([1e-30, 2.0, 1e-30, 2.0, 2.0])
        inputs = {"log_scale": s}
    if "df" in loss.input_names:
        inputs["df"] = np.full(5, 3.0)
    if "quantile" in loss.input_names:
        inputs["quantile"] = np.full(5, 0.3)
    np_dtype = DTYPES[dtype][0]
    y = y.astype(np_dtype).astype(np.float64)
    inputs = {k: v.astype(np_dtype).astype(np.float64) for k, v in inputs.items()}
    value, grads = run(key, target, dtype, inputs, y)
    tol = DTYPES[dtype][2]
    big = np.finfo(np_dtype).max
    want = exact(loss, inputs, y)
    ok = np.abs(want) < big / 10
    assert ok.sum() >= 2
    assert_close(value[ok], want[ok], tol, f"{key} value")
    mod = module_for(key, target)
    for name, g in zip(mod.WRT, grads):
        want_g = exact(loss, inputs, y, what=name)
        ok_g = np.abs(want_g) < big / 10
        assert_close(g[ok_g], want_g[ok_g], tol, f"{key} ∂/∂{name}")


@params
@dtypes
def test_gaussian_nll_with_tiny_and_huge_variances(target, dtype):
    v = 1e-30 if dtype == "float64" else 1e-15
    var = np.array([v, v, 1 / v, 1 / v])
    loc = np.zeros(4)
    y = np.array([0.0, 1e-16, 0.0, 2.0])
    value, grads = run("gaussian_nll", target, dtype, {"loc": loc, "var": var}, y)
    mu_t = torch.tensor(loc, requires_grad=True)
    var_t = torch.tensor(var, requires_grad=True)
    ref = F.gaussian_nll_loss(mu_t, torch.tensor(y), var_t, eps=0.0, reduction="none")
    refs = torch.autograd.grad(ref.sum(), (mu_t, var_t))
    tol = DTYPES[dtype][2] * 10
    assert_close(value, ref.detach(), tol, "value")
    for g, r in zip(grads, refs):
        assert_close(g, r, tol, "gradient")


@params
@dtypes
def test_continuous_bernoulli_around_probs_one_half(target, dtype):
    """log C(λ) has a removable singularity at λ = ½ (logits = 0): finite values and gradients there."""
    z = np.array([-1e4, -0.3, -1e-9, 0.0, 1e-9, 0.04, 0.3, 1e4])
    for yv in (0.0, 0.5, 1.0):
        y = np.full(z.shape, yv)
        value, (g,) = run("continuousbernoulli", target, dtype, {"logits": z}, y)
        # torch.distributions.ContinuousBernoulli clamps the probabilities (wrong at logits ±1e4): the reference
        # is the derived formula evaluated exactly, and at logits = 0 its limit (ℓ = 0, ∂ℓ/∂logits = ½ − y)
        loss = loss_for("continuousbernoulli")
        nz = z != 0
        want = np.zeros_like(z)
        want[nz] = exact(loss, {"logits": z[nz]}, y[nz])
        want_g = np.full_like(z, 0.5 - yv)
        want_g[nz] = exact(loss, {"logits": z[nz]}, y[nz], what="logits")
        tol = DTYPES[dtype][2] * 10
        assert_close(value, want, tol, f"value at y={yv}")
        assert_close(g, want_g, tol, f"gradient at y={yv}")
        if dtype == "float64":  # and torch agrees where it does not clamp
            zt = torch.tensor(z[1:-1])
            ref = -torch.distributions.ContinuousBernoulli(logits=zt, validate_args=False).log_prob(
                torch.tensor(y[1:-1]))
            assert_close(value[1:-1], ref, 1e-6, "torch")
