"""symloss.kl: closed-form KL divergences against torch.distributions.kl_divergence and mpmath quadrature."""

from __future__ import annotations

import functools
import math
import time

import mpmath
import numpy as np
import pytest
import scipy.stats as ss
import sympy as sp
import torch
from torch import distributions as td

import symloss
from symloss.divergence import NoClosedFormError

# name -> (torch class and its parameters in registry order, scipy frozen distribution, discrete)
FAMILIES = {
    "normal": (lambda a: td.Normal(*a), lambda a: ss.norm(a[0], a[1]), False),
    "laplace": (lambda a: td.Laplace(*a), lambda a: ss.laplace(a[0], a[1]), False),
    "exponential": (lambda a: td.Exponential(*a), lambda a: ss.expon(scale=1 / a[0]), False),
    "gamma": (lambda a: td.Gamma(*a), lambda a: ss.gamma(a[0], scale=1 / a[1]), False),
    "beta": (lambda a: td.Beta(*a), lambda a: ss.beta(a[0], a[1]), False),
    "bernoulli": (lambda a: td.Bernoulli(probs=a[0]), lambda a: ss.bernoulli(a[0]), True),
    "poisson": (lambda a: td.Poisson(*a), lambda a: ss.poisson(a[0]), True),
}

POINTS = {
    "normal": [((0.3, 1.2), (-0.5, 0.7)), ((2.0, 0.4), (1.0, 2.5))],
    "laplace": [((0.3, 1.2), (-0.5, 0.7)), ((-1.0, 0.5), (2.0, 1.5)), ((0.0, 1.0), (0.0, 2.0))],
    "exponential": [((0.7,), (2.0,)), ((3.0,), (0.4,))],
    "gamma": [((2.5, 1.5), (1.2, 0.7)), ((0.8, 3.0), (4.0, 2.0))],
    "beta": [((2.5, 1.5), (1.2, 0.7)), ((0.8, 3.0), (4.0, 2.0))],
    "bernoulli": [((0.3,), (0.8,)), ((0.9,), (0.45,))],
    "poisson": [((2.5,), (0.7,)), ((0.3,), (6.0,))],
}


@functools.cache
def derived(q: str, p: str | None = None, **kw) -> symloss.Loss:
    return symloss.kl(q, p, **kw)


def full_kl(loss: symloss.Loss, values: dict[str, float]) -> float:
    subs = {s: values[str(s)] for s in loss.nll.free_symbols}
    return float(loss.nll.evalf(30, subs=subs))


def mpmath_kl(name: str, a, b) -> float:
    """∫ q log(q/p) (Σ for counts) with scipy's log-densities, by mpmath quadrature: independent of symloss."""
    _, make, discrete = FAMILIES[name]
    q, p = make(a), make(b)
    if discrete:
        hi = 1 if name == "bernoulli" else 200
        return float(sum(q.pmf(k) * (q.logpmf(k) - p.logpmf(k)) for k in range(hi + 1) if q.pmf(k) > 0))

    def f(y):
        y = float(y)
        lq = q.logpdf(y)
        if not math.isfinite(lq) or math.exp(lq) == 0.0:
            return 0.0  # far in q's tail (where p's log-density may overflow)
        return math.exp(lq) * (lq - p.logpdf(y))

    # q's mass outside [ppf(1e-15), isf(1e-15)] is negligible; there scipy's log-densities may underflow to −inf
    lo, hi = q.ppf(1e-15), q.isf(1e-15)
    cuts = sorted({v for v in (*a, *b) if lo < v < hi}) if name == "laplace" else []
    return float(mpmath.quad(f, [lo, *cuts, hi]))


@pytest.mark.parametrize("name", list(FAMILIES))
def test_kl_matches_torch_and_quadrature(name):
    loss = derived(name)
    mk = FAMILIES[name][0]
    params = [p.name for p in symloss.get_distribution(name).params]
    for a, b in POINTS[name]:
        values = {**{f"q_{k}": v for k, v in zip(params, a)}, **{f"p_{k}": v for k, v in zip(params, b)}}
        ours = full_kl(loss, values)
        f64 = functools.partial(torch.tensor, dtype=torch.float64)
        ref = float(td.kl_divergence(mk(f64(a)), mk(f64(b))))
        quad = mpmath_kl(name, a, b)
        assert ours == pytest.approx(ref, rel=1e-9, abs=1e-12), (name, a, b)
        assert ours == pytest.approx(quad, rel=1e-6, abs=1e-9), (name, a, b)


def test_kl_categorical():
    loss = derived("categorical")
    qv, pv = np.array([0.2, 0.3, 0.5]), np.array([0.1, 0.6, 0.3])
    mod = symloss.load(loss, "numpy")
    ours = float(mod.loss(qv, pv, 0.0, reduction="sum", full=True))
    ref = float(td.kl_divergence(td.Categorical(torch.tensor(qv)), td.Categorical(torch.tensor(pv))))
    assert ours == pytest.approx(ref, rel=1e-12)
    assert ours == pytest.approx(float(np.sum(qv * np.log(qv / pv))), rel=1e-12)


def test_kl_categorical_logits_gradient():
    loss = derived("categorical", link="probs=softmax")
    assert loss.input_names == ("q_logits", "p_probs")
    eta, pv = np.array([0.4, -1.0, 2.0]), np.array([0.1, 0.6, 0.3])
    mod = symloss.load(loss, "numpy")
    t = torch.tensor(eta, requires_grad=True)
    ref = td.kl_divergence(td.Categorical(logits=t), td.Categorical(torch.tensor(pv)))
    ref.backward()
    assert float(mod.loss(eta, pv, 0.0, reduction="sum", full=True)) == pytest.approx(ref.item(), rel=1e-10)
    (g,) = mod.grad(eta, pv, 0.0, reduction="sum")
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_diagonal_normal_against_standard_normal():
    loss = derived("normal", "standard_normal", link=(("scale", "log"),))
    assert loss.input_names == ("q_loc", "q_log_scale") and loss.wrt_names == ("q_loc", "q_log_scale")
    mu, log_sigma = np.array([0.3, -1.2, 2.0]), np.array([-0.5, 0.1, 0.7])
    # the classic VAE term: −½ Σ (1 + log σ² − μ² − σ²)
    classic = -0.5 * np.sum(1 + 2 * log_sigma - mu**2 - np.exp(2 * log_sigma))
    for target in ("numpy", "torch"):
        mod = symloss.load(loss, target)
        args = (mu, log_sigma, 0.0)
        if target == "torch":
            args = (torch.tensor(mu), torch.tensor(log_sigma), torch.tensor(0.0))
        assert float(mod.loss(*args, reduction="sum", full=True)) == pytest.approx(classic, rel=1e-12)
    ref = td.kl_divergence(td.Normal(torch.tensor(mu), torch.tensor(np.exp(log_sigma))), td.Normal(0.0, 1.0)).sum()
    assert float(ref) == pytest.approx(classic, rel=1e-12)


def _grad_check(loss, q_ctor, p_ctor, q_args, p_args, transform):
    """Generated value (full) and gradients, numpy and torch, against torch.distributions with autograd."""
    leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in q_args]
    ref = td.kl_divergence(q_ctor(*transform(leaves)), p_ctor(*[torch.tensor(v, dtype=torch.float64) for v in p_args]))
    ref.backward()
    for target in ("numpy", "torch"):
        mod = symloss.load(loss, target)
        conv = (lambda v: np.float64(v)) if target == "numpy" else (lambda v: torch.tensor(v, dtype=torch.float64))
        args = [conv(v) for v in (*q_args, *p_args, 0.0)]
        assert float(mod.loss(*args, reduction="sum", full=True)) == pytest.approx(ref.item(), rel=1e-10)
        grads = mod.grad(*args, reduction="sum")
        for g, leaf in zip(grads, leaves):
            assert float(g) == pytest.approx(float(leaf.grad), rel=1e-8, abs=1e-12)


def test_generated_normal_normal():
    loss = derived("normal", "normal", link=(("scale", "log"),))
    assert loss.input_names == ("q_loc", "q_log_scale", "p_loc", "p_scale")
    _grad_check(loss, td.Normal, td.Normal, (0.3, -0.4), (-1.0, 1.7), lambda v: (v[0], torch.exp(v[1])))


def test_generated_bernoulli():
    loss = derived("bernoulli", "bernoulli", link=(("probs", "logit"),))
    assert loss.input_names == ("q_logits", "p_probs")
    _grad_check(loss, lambda t: td.Bernoulli(logits=t), lambda p: td.Bernoulli(probs=p), (0.7,), (0.2,),
                lambda v: v)


def test_routes_are_stated_in_the_steps():
    gamma = derived("gamma")
    assert set(gamma.metadata["routes"].values()) == {"exponential-family identity"}
    assert any("exponential-family identity" in s.text for s in gamma.steps)
    assert gamma.nll.has(sp.polygamma) and gamma.nll.has(sp.loggamma)
    lap = derived("laplace")
    assert set(lap.metadata["routes"].values()) == {"integration"}
    assert any(s.kind == "expectation" and "integration" in s.text for s in lap.steps)
    bern = derived("bernoulli")
    assert bern.metadata["routes"] == {"y": "sum over the support"}


def test_mixed_families_by_integration():
    # KL(Exponential‖Gamma) needs E_q[log y] under an exponential q: integrated, not from a table
    loss = derived("exponential", "gamma")
    assert loss.metadata["routes"]["log(y)"] == "integration"
    rate, conc, prate = 1.3, 2.2, 0.6
    ours = full_kl(loss, {"q_rate": rate, "p_concentration": conc, "p_rate": prate})
    q, p = ss.expon(scale=1 / rate), ss.gamma(conc, scale=1 / prate)
    quad = mpmath.quad(lambda y: q.pdf(float(y)) * (q.logpdf(float(y)) - p.logpdf(float(y))), [0, mpmath.inf])
    assert ours == pytest.approx(float(quad), rel=1e-7)


def test_no_closed_form_is_a_clear_error_in_time():
    start = time.monotonic()
    with pytest.raises(NoClosedFormError, match=r"no closed form found for KL\(q‖p\) within the budget"):
        symloss.kl("studentt", "studentt", budget=1)
    assert time.monotonic() - start < 20
    assert issubclass(NoClosedFormError, symloss.SymlossError)


def test_pipeline_accepts_kl():
    loss = derived("normal", "standard_normal", link=(("scale", "log"),))
    assert set(loss.gradient) == set(loss.wrt)
    assert sp.simplify(loss.nll - loss.expr - loss.constant) == 0
    tex = symloss.to_latex(loss)
    assert "KL divergence" in tex and "q\\_loc" in tex
    rep = symloss.analyze(loss)
    assert rep is not None
    # the standard-normal KL is minimised at q = N(0, 1): zero gradient there
    mu, ls = loss.wrt
    assert all(sp.simplify(g.subs({mu: 0, ls: 0})) == 0 for g in loss.gradient.values())


def test_fixed_and_bad_arguments():
    with pytest.raises(symloss.SymlossError):
        symloss.kl("normal", "normal", fixed={"scale": -1})
    with pytest.raises(symloss.SymlossError):
        symloss.kl("normal", "exponential")  # q's support is not inside p's: infinite
    loss = symloss.kl("normal", "normal", fixed=["scale"])
    assert [str(c) for c in loss.constants] == ["p_scale"]


# ---------------------------------------------------------------------------------------------------------
# the negative ELBO
@functools.cache
def vae(likelihood: str) -> symloss.Loss:
    return symloss.elbo(likelihood)


def test_elbo_bernoulli_against_torch():
    loss = vae("bernoulli")
    assert loss.input_names == ("logits", "q_loc", "q_log_scale") and str(loss.target) == "y"
    assert any(s.kind == "reparameterise" and "z = μ + σ·ε" in s.text for s in loss.steps)
    x, logits, mu, log_sigma = 1.0, -0.3, 0.8, -0.4
    leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (logits, mu, log_sigma)]
    rec = torch.nn.functional.binary_cross_entropy_with_logits(leaves[0], torch.tensor(x, dtype=torch.float64))
    kl = td.kl_divergence(td.Normal(leaves[1], torch.exp(leaves[2])), td.Normal(0.0, 1.0))
    (rec + kl).backward()
    for target in ("numpy", "torch"):
        mod = symloss.load(loss, target)
        conv = np.float64 if target == "numpy" else (lambda v: torch.tensor(v, dtype=torch.float64))
        args = [conv(v) for v in (logits, mu, log_sigma, x)]
        assert float(mod.loss(*args, full=True)) == pytest.approx((rec + kl).item(), rel=1e-10)
        for g, leaf in zip(mod.grad(*args), leaves):
            assert float(g) == pytest.approx(float(leaf.grad), rel=1e-8)
    assert "elbo" in symloss.to_latex(loss)


def test_elbo_normal_parts():
    loss = vae("normal")
    parts = loss.metadata["parts"]
    assert sp.simplify(loss.nll - parts["reconstruction"].nll - parts["kl"].nll) == 0
    vals = {"y": 0.4, "loc": -0.1, "log_scale": 0.3, "q_loc": 0.5, "q_log_scale": -0.2}
    got = float(loss.nll.evalf(30, subs={s: vals[str(s)] for s in loss.nll.free_symbols}))
    f64 = functools.partial(torch.tensor, dtype=torch.float64)
    ref = -ss.norm(-0.1, math.exp(0.3)).logpdf(0.4) + float(
        td.kl_divergence(td.Normal(f64(0.5), f64(math.exp(-0.2))), td.Normal(f64(0.0), f64(1.0))))
    assert got == pytest.approx(ref, rel=1e-10)


def test_generated_gamma_gamma_torch_with_trigamma_gradient():
    # the gradient of the Gamma KL needs polygamma(1, ·): the torch target computes it
    loss = derived("gamma", "gamma", link=(("concentration", "log"), ("rate", "log")))
    mod = symloss.load(loss, "torch")
    q = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (0.4, -0.3)]
    pa, pb = torch.tensor(1.7, dtype=torch.float64), torch.tensor(0.6, dtype=torch.float64)
    ref = td.kl_divergence(td.Gamma(torch.exp(q[0]), torch.exp(q[1])), td.Gamma(pa, pb))
    gq = torch.autograd.grad(ref, q)
    args = [v.detach() for v in q] + [pa, pb, torch.tensor(0.0, dtype=torch.float64)]
    assert float(mod.loss(*args, reduction="sum", full=True)) == pytest.approx(ref.item(), rel=1e-10)
    for g, r in zip(mod.grad(*args, reduction="sum"), gq):
        assert float(g) == pytest.approx(float(r), rel=1e-8)
