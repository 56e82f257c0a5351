"""The derivation core: recognition of classic losses, MAP penalties, links, fixed parameters, errors."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F

import symloss
from symloss.errors import DomainError, LinkError, SymlossError, UnknownNameError

RNG = np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _float64_by_default():
    """torch.tensor of Python floats in float64 in these tests, and only in them: the default dtype is global to
    the process, and set at import it held for every test module of a whole-suite run."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _numeric(loss, expr):
    """expr of a scalar loss as a numpy function of (inputs..., target)."""
    return sp.lambdify([*loss.inputs, loss.target], expr, modules="numpy")


# -- known-loss recognition, each checked against the torch built-in it names ---------------------------------
def _check_against_builtin(loss, builtin, args_from, n=64):
    """expr = factor * builtin(...) + constant (free of the trained inputs): check the factor numerically
    by comparing differences, which cancels the constant."""
    f = _numeric(loss, loss.expr)
    values = args_from(n)
    ours = f(*values)
    theirs = builtin(*[torch.as_tensor(v) for v in values]).numpy()
    factor = float(loss.known_as.factor)
    # differences between points at the same target remove the additive constant
    target = values[-1]
    same = np.flatnonzero(target == target[0])
    assert len(same) >= 2
    np.testing.assert_allclose(ours[same] - ours[same[0]], factor * (theirs[same] - theirs[same[0]]), rtol=1e-10,
                               atol=1e-12)
    return ours, theirs


def test_normal_fixed_scale_is_half_mse():
    loss = symloss.derive("normal", fixed={"scale": 1})
    assert loss.known_as.key == "mse" and loss.known_as.factor == sp.Rational(1, 2)
    assert loss.known_as.torch == "torch.nn.functional.mse_loss"
    y = np.r_[np.zeros(32), RNG.normal(size=32)]
    mu = RNG.normal(size=64)
    ours = _numeric(loss, loss.expr)(mu, y)
    theirs = F.mse_loss(torch.tensor(mu), torch.tensor(y), reduction="none").numpy()
    np.testing.assert_allclose(ours, 0.5 * theirs, rtol=1e-12)
    # the constant is exactly log sqrt(2 pi)
    assert sp.simplify(loss.constant - sp.log(2 * sp.pi) / 2) == 0


def test_normal_named_scale_factor():
    loss = symloss.derive("normal", fixed={"scale": "sigma"})
    sigma = loss.constants[0]
    assert str(sigma) == "sigma"
    assert loss.known_as.key == "mse"
    assert sp.simplify(loss.known_as.factor - 1 / (2 * sigma**2)) == 0


def test_laplace_is_mae():
    loss = symloss.derive("laplace", fixed={"scale": 1})
    assert loss.known_as.key == "mae" and loss.known_as.factor == 1
    mu, y = RNG.normal(size=50), RNG.normal(size=50)
    np.testing.assert_allclose(_numeric(loss, loss.expr)(mu, y),
                               F.l1_loss(torch.tensor(mu), torch.tensor(y), reduction="none").numpy(), rtol=1e-12)


def test_bernoulli_logits_is_bce_with_logits():
    loss = symloss.derive("bernoulli", link={"probs": "logit"})
    assert loss.input_names == ("logits",)
    assert loss.known_as.key == "bce_with_logits" and loss.known_as.factor == 1
    z = RNG.normal(scale=3, size=40)
    y = RNG.integers(0, 2, size=40).astype(float)
    np.testing.assert_allclose(
        _numeric(loss, loss.expr)(z, y),
        F.binary_cross_entropy_with_logits(torch.tensor(z), torch.tensor(y), reduction="none").numpy(), rtol=1e-12)


def test_bernoulli_probs_is_bce():
    loss = symloss.derive("bernoulli")
    assert loss.known_as.key == "bce"
    p = RNG.uniform(0.01, 0.99, size=40)
    y = RNG.integers(0, 2, size=40).astype(float)
    np.testing.assert_allclose(_numeric(loss, loss.expr)(p, y),
                               F.binary_cross_entropy(torch.tensor(p), torch.tensor(y), reduction="none").numpy(),
                               rtol=1e-12)


def test_poisson_log_link_is_poisson_nll():
    loss = symloss.derive("poisson", link={"rate": "log"})
    assert loss.input_names == ("log_rate",)
    assert loss.known_as.key == "poisson_nll" and loss.known_as.torch_kwargs == {"log_input": True}
    eta = RNG.normal(size=40)
    y = RNG.poisson(3, size=40).astype(float)
    np.testing.assert_allclose(
        _numeric(loss, loss.expr)(eta, y),
        F.poisson_nll_loss(torch.tensor(eta), torch.tensor(y), log_input=True, reduction="none").numpy(), rtol=1e-12)
    assert loss.constant.func.__name__ == "loggamma" and loss.constant.args[0] == loss.target + 1
    assert sp.simplify(loss.grad("log_rate") - (sp.exp(loss.input("log_rate")) - loss.target)) == 0


def test_link_string_forms_agree():
    a = symloss.derive("poisson", link={"rate": "log"})
    b = symloss.derive("poisson", link="rate=log")
    c = symloss.derive("poisson", link="log")
    assert sp.simplify(a.expr - b.expr) == 0 and sp.simplify(a.expr - c.expr) == 0


def test_gaussian_nll_via_variance_link():
    loss = symloss.derive("normal", link={"scale": "variance"})
    assert loss.input_names == ("loc", "var")
    assert loss.known_as.key == "gaussian_nll"
    mu, var, y = RNG.normal(size=30), RNG.uniform(0.1, 3, size=30), RNG.normal(size=30)
    ours = _numeric(loss, loss.expr)(mu, var, y)
    theirs = F.gaussian_nll_loss(torch.tensor(mu), torch.tensor(y), torch.tensor(var), reduction="none",
                                 eps=0.0).numpy()
    np.testing.assert_allclose(ours, float(loss.known_as.factor) * 2 * theirs / 2, rtol=1e-12)


def test_categorical_logits_is_cross_entropy():
    loss = symloss.derive("categorical", link="canonical")
    assert loss.known_as.key == "cross_entropy"
    vec = loss.metadata["vector"]
    K = 4
    z = RNG.normal(size=K)
    cls = 2
    y = np.eye(K)[cls]
    z_base, y_base = loss.inputs[0], loss.target
    e = loss.expr.subs(vec.K, K).doit()
    e = e.subs({z_base[i]: z[i] for i in range(K)} | {y_base[i]: y[i] for i in range(K)})
    ref = F.cross_entropy(torch.tensor(z)[None], torch.tensor([cls])).item()
    assert float(e) == pytest.approx(ref, rel=1e-12)
    # gradient: softmax - y
    g = loss.gradient[z_base].subs(vec.K, K).doit()
    j = vec.j
    for jj in range(K):
        gj = g.subs(j, jj).doit().subs({z_base[i]: z[i] for i in range(K)} | {y_base[i]: y[i] for i in range(K)})
        assert float(gj) == pytest.approx(np.exp(z[jj]) / np.exp(z).sum() - y[jj], rel=1e-10, abs=1e-14)


def test_pinball_from_asymmetric_laplace():
    loss = symloss.derive("asymmetriclaplace", fixed={"scale": 1, "quantile": sp.Rational(3, 10)})
    assert loss.known_as.key == "pinball"
    # the dropped constant may depend on the target: compare at one target value
    u, y = RNG.normal(size=50), np.full(50, 0.7)
    r = y - u
    pinball = np.maximum(0.3 * r, (0.3 - 1) * r)
    ours = _numeric(loss, loss.expr)(u, y)
    np.testing.assert_allclose(ours - ours[0], float(loss.known_as.factor) * (pinball - pinball[0]), rtol=1e-10,
                               atol=1e-12)


def test_hyperbolic_secant_is_log_cosh():
    loss = symloss.derive("hyperbolicsecant", fixed={"scale": 1})
    assert loss.known_as.key == "log_cosh" and loss.known_as.factor == 1


def test_cauchy_is_cauchy_loss():
    loss = symloss.derive("cauchy", fixed={"scale": 1})
    assert loss.known_as.key == "cauchy"


def test_not_every_loss_is_recognised():
    assert symloss.derive("normal").known_as is None  # scale trained: not the MSE
    assert symloss.derive("gamma", link="canonical").known_as is None


# -- MAP --------------------------------------------------------------------------------------------------------
def test_gaussian_prior_is_weight_decay_with_sigma2_over_tau2():
    loss = symloss.derive("normal", fixed={"scale": "sigma"}, prior="normal")
    pen = loss.penalty
    w, tau = pen.weight, pen.scale
    sigma = loss.constants[0]
    assert pen.kind == "l2"
    assert sp.simplify(pen.expr - w**2 / (2 * tau**2)) == 0
    assert sp.simplify(pen.gradient - w / tau**2) == 0
    assert sp.simplify(pen.coefficient - sigma**2 / tau**2) == 0
    assert any(s.kind == "prior" for s in loss.steps) and any(s.kind == "map" for s in loss.steps)


def test_laplace_prior_is_l1():
    loss = symloss.derive("normal", fixed={"scale": "sigma"}, prior={"weights": "laplace"})
    pen = loss.penalty
    w, b = pen.weight, pen.scale
    sigma = loss.constants[0]
    assert pen.kind == "l1"
    assert sp.simplify(pen.expr - sp.Abs(w) / b) == 0
    # (1/(2 sigma^2)) [SSE + lambda |w|_1] = SSE/(2 sigma^2) + |w|/b  =>  lambda = 2 sigma^2 / b
    assert sp.simplify(pen.coefficient - 2 * sigma**2 / b) == 0


def test_numeric_prior_scale():
    loss = symloss.derive("normal", fixed={"scale": 1}, prior=("normal", 0.5))
    assert sp.simplify(loss.penalty.expr - 2 * loss.penalty.weight**2) == 0
    assert loss.penalty.coefficient == 4  # sigma^2/tau^2 = 1/0.25


# -- structure ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["normal", "gamma", "beta", "studentt", "negativebinomial"])
def test_nll_is_expr_plus_constant(name):
    loss = symloss.derive(name, link="canonical")
    assert sp.simplify(loss.nll - loss.expr - loss.constant) == 0
    for s in loss.wrt:
        assert s not in loss.constant.free_symbols


def test_wrt_drops_more_constants():
    full = symloss.derive("normal")
    only_loc = symloss.derive("normal", wrt=["loc"])
    assert only_loc.wrt_names == ("loc",)
    assert set(only_loc.gradient) == {only_loc.input("loc")}
    scale = only_loc.input("scale")
    assert sp.log(scale) in sp.Add.make_args(only_loc.constant)
    assert sp.simplify(full.nll - only_loc.nll) == 0


def test_integer_data_is_not_trained_by_default():
    loss = symloss.derive("binomial", link="canonical")
    assert loss.input_names == ("total_count", "logits")
    assert loss.wrt_names == ("logits",)


def test_steps_are_ordered():
    loss = symloss.derive("poisson", link={"rate": "log"})
    kinds = [s.kind for s in loss.steps]
    assert kinds[:3] == ["likelihood", "log", "negate"]
    assert kinds.index("link") < kinds.index("drop") < kinds.index("loss")


# -- bad input -------------------------------------------------------------------------------------------------
def test_unknown_distribution_suggests():
    with pytest.raises(UnknownNameError, match="Poisson"):
        symloss.derive("poison")


def test_unknown_parameter_suggests():
    with pytest.raises(UnknownNameError, match="scale"):
        symloss.derive("normal", fixed={"scal": 1})


def test_unknown_link_suggests():
    with pytest.raises(UnknownNameError, match="logit"):
        symloss.derive("bernoulli", link={"probs": "logitt"})


def test_link_outside_domain():
    with pytest.raises(LinkError, match="does not fit"):
        symloss.derive("normal", link={"loc": "log"})
    with pytest.raises(LinkError):
        symloss.derive("poisson", link={"rate": "logit"})


def test_fixed_value_outside_domain():
    with pytest.raises(DomainError, match="outside its domain"):
        symloss.derive("normal", fixed={"scale": -1})
    with pytest.raises(DomainError):
        symloss.derive("bernoulli", fixed={"probs": 1.5})
    with pytest.raises(DomainError, match="not a number"):
        symloss.derive("normal", fixed={"scale": "1e"})


def test_wrt_errors():
    with pytest.raises(UnknownNameError):
        symloss.derive("normal", wrt=["mu"])
    with pytest.raises(DomainError, match="fixed"):
        symloss.derive("normal", fixed={"scale": 1}, wrt=["scale"])
    with pytest.raises(DomainError, match="integer"):
        symloss.derive("binomial", wrt=["total_count"])


def test_unknown_prior():
    with pytest.raises(UnknownNameError, match="laplace"):
        symloss.derive("normal", prior="laplce")


def test_errors_are_symloss_errors():
    for call in (lambda: symloss.derive("nope"), lambda: symloss.derive("normal", fixed={"scale": 0})):
        with pytest.raises(SymlossError):
            call()


def test_support_constraints_couple_target_and_input():
    """A support bound that depends on an input is stated as (a, b) meaning a <= b, with the loss's own symbols."""
    pareto = symloss.derive("pareto")
    assert [(str(a), str(b)) for a, b in pareto.support_constraints] == [("scale", "y")]
    binomial = symloss.derive("binomial")
    assert [(str(a), str(b)) for a, b in binomial.support_constraints] == [("y", "total_count")]
    assert symloss.derive("normal").support_constraints == ()
