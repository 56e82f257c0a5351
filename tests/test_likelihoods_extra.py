"""symloss.likelihoods: zero inflation, right censoring (Tobit) and mixtures against scipy and torch."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import scipy.special as sc
import scipy.stats as ss
import torch

import symloss
from symloss.likelihoods import censored, hurdle, mixture, right_censored, truncated, zero_inflated


@functools.cache
def derived(kind: str) -> symloss.Loss:
    if kind == "zip":
        return symloss.derive(zero_inflated("poisson"), link={"rate": "log", "gate": "logit"})
    if kind == "tobit":
        return symloss.derive(right_censored("normal"), link={"scale": "log"})
    if kind == "weibull":
        return symloss.derive(right_censored("weibull"))
    if kind == "exponential":
        return symloss.derive(right_censored("exponential"))
    return symloss.derive(mixture("normal"), link={"scale1": "log", "scale2": "log", "mixing": "logit"})


def test_zero_inflated_poisson_against_scipy():
    mod = symloss.load(derived("zip"), "numpy")
    y = np.array([0.0, 0.0, 1.0, 3.0, 7.0, 25.0])
    eta = np.array([0.3, -1.0, 1.2, 0.5, 2.0, 3.1])
    gl = np.array([-0.4, 1.5, 0.0, -2.0, 0.7, -0.3])
    lam, pi = np.exp(eta), sc.expit(gl)
    ref = -np.where(y == 0, np.log(pi + (1 - pi) * np.exp(-lam)), np.log1p(-pi) + ss.poisson(lam).logpmf(y))
    np.testing.assert_allclose(mod.loss(eta, gl, y, reduction="none", full=True), ref, rtol=1e-10)
    # gradients against torch autograd of the same hand-written log-likelihood
    te, tg = torch.tensor(eta, requires_grad=True), torch.tensor(gl, requires_grad=True)
    ty = torch.tensor(y)
    lam_t, pi_t = torch.exp(te), torch.sigmoid(tg)
    nll = -torch.where(ty == 0, torch.log(pi_t + (1 - pi_t) * torch.exp(-lam_t)),
                       torch.log1p(-pi_t) + torch.distributions.Poisson(lam_t).log_prob(ty))
    ge, gg = torch.autograd.grad(nll.sum(), (te, tg))
    g1, g2 = mod.grad(eta, gl, y, reduction="sum")
    np.testing.assert_allclose(g1, ge.numpy(), rtol=1e-8)
    np.testing.assert_allclose(g2, gg.numpy(), rtol=1e-8)
    tmod = symloss.load(derived("zip"), "torch")
    np.testing.assert_allclose(tmod.loss(te.detach(), tg.detach(), ty, reduction="none", full=True).numpy(), ref,
                               rtol=1e-10)


def test_tobit_right_censored_normal_against_scipy_and_deep_tail():
    loss = derived("tobit")
    assert loss.input_names == ("loc", "log_scale", "censored") and loss.wrt_names == ("loc", "log_scale")
    y = np.array([0.5, 1.0, -2.0, 30.0, 3.0])
    mu = np.array([0.0, 2.0, -1.0, 0.0, 1.0])
    ls = np.array([0.0, -0.5, 0.3, 0.0, 0.2])
    c = np.array([0.0, 1.0, 1.0, 1.0, 0.0])
    sigma = np.exp(ls)
    ref = -np.where(c == 1, ss.norm.logsf(y, mu, sigma), ss.norm.logpdf(y, mu, sigma))
    for target in ("numpy", "torch"):
        mod = symloss.load(loss, target)
        conv = (lambda a: a) if target == "numpy" else torch.tensor
        got = np.asarray(mod.loss(conv(mu), conv(ls), conv(c), conv(y), reduction="none", full=True))
        # y = 30 σ above the mean: S(y) ≈ 1e-198, its log is finite only through log_ndtr
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, ref, rtol=1e-9)
    mod = symloss.load(loss, "numpy")
    tm, tl = torch.tensor(mu, requires_grad=True), torch.tensor(ls, requires_grad=True)
    s = torch.exp(tl)
    z = (torch.tensor(y) - tm) / s
    logsf = torch.special.log_ndtr(-z)
    logpdf = torch.distributions.Normal(tm, s).log_prob(torch.tensor(y))
    nll = -torch.where(torch.tensor(c) == 1, logsf, logpdf)
    gm, gl = torch.autograd.grad(nll.sum(), (tm, tl))
    g1, g2 = mod.grad(mu, ls, c, y, reduction="sum")
    np.testing.assert_allclose(g1, gm.numpy(), rtol=1e-7)
    np.testing.assert_allclose(g2, gl.numpy(), rtol=1e-7)


@pytest.mark.parametrize("kind", ["weibull", "exponential"])
def test_right_censored_survival_models_against_scipy(kind):
    mod = symloss.load(derived(kind), "numpy")
    y = np.array([0.4, 1.3, 2.2, 0.9])
    c = np.array([0.0, 1.0, 0.0, 1.0])
    if kind == "weibull":
        scale, k = np.array([1.0, 2.0, 0.7, 1.5]), np.array([1.5, 0.8, 2.0, 3.0])
        dist = ss.weibull_min(k, scale=scale)
        got = mod.loss(scale, k, c, y, reduction="none", full=True)
    else:
        rate = np.array([1.0, 2.0, 0.7, 1.5])
        dist = ss.expon(scale=1 / rate)
        got = mod.loss(rate, c, y, reduction="none", full=True)
    ref = -np.where(c == 1, dist.logsf(y), dist.logpdf(y))
    np.testing.assert_allclose(got, ref, rtol=1e-10)


def test_normal_mixture_is_a_stable_logaddexp():
    loss = derived("mixture")
    mod = symloss.load(loss, "numpy")
    y = np.array([0.0, 1.5, -3.0, 60.0])
    l1, s1, l2, s2, w = 0.0, np.log(0.5), 2.0, np.log(1.5), 0.4
    logits = np.log(w / (1 - w))
    ref = -np.logaddexp(np.log(w) + ss.norm.logpdf(y, l1, 0.5), np.log1p(-w) + ss.norm.logpdf(y, l2, 1.5))
    got = mod.loss(l1, s1, l2, s2, logits, y, reduction="none", full=True)
    assert np.all(np.isfinite(got))  # y = 60: both densities underflow, their log-sum does not
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    f64 = functools.partial(torch.tensor, dtype=torch.float64)
    mix = torch.distributions.MixtureSameFamily(torch.distributions.Categorical(f64([w, 1 - w])),
                                                torch.distributions.Normal(f64([l1, l2]), f64([0.5, 1.5])))
    np.testing.assert_allclose(got, -mix.log_prob(torch.tensor(y)).numpy(), rtol=1e-9)


def test_studentt_with_learnt_df_against_scipy():
    loss = symloss.derive("studentt", link={"df": "log", "scale": "log"})
    assert "log_df" in loss.wrt_names
    mod = symloss.load(loss, "numpy")
    y, ldf, loc, ls = np.array([0.3, -4.0, 10.0]), np.array([0.2, 1.5, -0.3]), 0.1, -0.2
    ref = -ss.t(np.exp(ldf), loc, np.exp(ls)).logpdf(y)
    np.testing.assert_allclose(mod.loss(ldf, loc, ls, y, reduction="none", full=True), ref, rtol=1e-9)
    t = torch.tensor(ldf, requires_grad=True)
    nll = -torch.distributions.StudentT(torch.exp(t), loc, float(np.exp(ls))).log_prob(torch.tensor(y))
    (gt,) = torch.autograd.grad(nll.sum(), (t,))
    np.testing.assert_allclose(mod.grad(ldf, loc, ls, y, reduction="sum")[0], gt.numpy(), rtol=1e-7)


def test_bad_bases_are_refused():
    with pytest.raises(symloss.SymlossError):
        zero_inflated("normal")
    with pytest.raises(symloss.SymlossError):
        right_censored("cauchy")


def test_zero_inflated_negative_binomial_via_derive_option():
    loss = symloss.derive("negative_binomial", zero_inflated=True)
    assert loss.input_names == ("total_count", "probs", "gate")
    mod = symloss.load(loss, "numpy")
    y = np.array([0.0, 0.0, 2.0, 5.0, 40.0])
    r, p, pi = np.array([2.0, 0.7, 3.5, 1.2, 5.0]), np.array([0.3, 0.6, 0.5, 0.8, 0.9]), 0.25
    nb = ss.nbinom(r, 1 - p)  # torch's probs is scipy's 1 − p
    ref = -np.where(y == 0, np.log(pi + (1 - pi) * nb.pmf(0)), np.log1p(-pi) + nb.logpmf(y))
    np.testing.assert_allclose(mod.loss(r, p, pi, y, reduction="none", full=True), ref, rtol=1e-10)


def test_hurdle_poisson_against_scipy():
    loss = symloss.derive("poisson", hurdle=True, link="canonical")
    assert loss.input_names == ("log_rate", "logit_gate")
    mod = symloss.load(loss, "numpy")
    y = np.array([0.0, 1.0, 4.0, 30.0, 1.0])
    eta = np.array([0.2, -6.0, 1.0, 3.0, -30.0])  # rate e^-30: 1 − f(0) = 1 − exp(−rate) needs log1mexp
    gl = np.array([0.3, -1.0, 2.0, 0.0, 0.5])
    lam, pi = np.exp(eta), sc.expit(gl)
    pois = ss.poisson(lam)
    ref = -np.where(y == 0, np.log(pi), np.log1p(-pi) + pois.logpmf(y) - np.log(-np.expm1(-lam)))
    got = mod.loss(eta, gl, y, reduction="none", full=True)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, ref, rtol=1e-9)


def test_left_censored_tobit_against_scipy():
    loss = symloss.derive("normal", censoring="left")
    mod = symloss.load(loss, "numpy")
    y = np.array([0.0, 0.0, 1.3, -40.0])
    mu, sigma = np.array([0.5, -1.0, 1.0, 0.0]), np.array([1.0, 2.0, 0.5, 1.0])
    c = np.array([1.0, 1.0, 0.0, 1.0])
    ref = -np.where(c == 1, ss.norm.logcdf(y, mu, sigma), ss.norm.logpdf(y, mu, sigma))
    got = mod.loss(mu, sigma, c, y, reduction="none", full=True)
    assert np.all(np.isfinite(got))  # Φ(−40) ≈ 4e−350 underflows; log Φ does not
    np.testing.assert_allclose(got, ref, rtol=1e-9)


def test_interval_censored_normal_against_scipy():
    loss = symloss.derive(censored("normal", "interval"))
    assert loss.input_names == ("loc", "scale", "censored", "upper") and loss.wrt_names == ("loc", "scale")
    mod = symloss.load(loss, "numpy")
    y, up = np.array([0.0, -1.0, 2.0, 9.0, -12.0]), np.array([1.0, 0.5, 3.0, 9.5, -11.0])
    mu, sigma = np.array([0.2, 0.0, 1.0, 0.0, 0.0]), np.array([1.0, 0.8, 1.5, 1.0, 1.0])
    c = np.array([1.0, 1.0, 0.0, 1.0, 1.0])
    # the two far-tail intervals (9σ above, 11σ below the mean) by mpmath: double-precision CDFs cancel there
    import mpmath

    with mpmath.workdps(50):
        interval = np.array([float(mpmath.log(mpmath.ncdf((u - m) / s) - mpmath.ncdf((a - m) / s)))
                             for a, u, m, s in zip(y, up, mu, sigma)])
    ref = -np.where(c == 1, interval, ss.norm.logpdf(y, mu, sigma))
    got = mod.loss(mu, sigma, c, up, y, reduction="none", full=True)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, ref, rtol=1e-9)


@pytest.mark.parametrize("bounds", [(0.0, None), (-1.0, 2.0), (None, 0.5)])
def test_truncated_normal_against_scipy(bounds):
    lo, hi = bounds
    loss = symloss.derive("normal", truncation=bounds)
    mod = symloss.load(loss, "numpy")
    mu, sigma = np.array([0.3, -2.0, 1.0, 0.0]), np.array([1.0, 0.5, 2.0, 0.05])
    y = np.array([0.2, 0.4, 0.1, 0.45])
    a = (-np.inf if lo is None else lo - mu) / sigma
    b = (np.inf if hi is None else hi - mu) / sigma
    ref = -ss.truncnorm(a, b, loc=mu, scale=sigma).logpdf(y)
    np.testing.assert_allclose(mod.loss(mu, sigma, y, reduction="none", full=True), ref, rtol=1e-9)


def test_truncated_exponential_mass_by_quadrature():
    import mpmath

    d = truncated("exponential", lower=0.5, upper=3.0)
    loss = symloss.derive(d)
    (rate,) = loss.inputs

    def density(t: float, r: float) -> float:
        return float(mpmath.exp(-float(loss.nll.subs({loss.target: t, rate: r}))))

    for r in (0.4, 2.0):
        # the truncated density integrates to one over [0.5, 3] and equals scipy's truncated exponential
        total = mpmath.quad(lambda t, r=r: density(float(t), r), [0.5, 3.0])
        assert float(total) == pytest.approx(1.0, rel=1e-10)
        ref = ss.truncexpon(b=(3.0 - 0.5) * r, loc=0.5, scale=1 / r).pdf(1.7)
        assert density(1.7, r) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_beta_nll_heteroscedastic_normal_against_torch(beta):
    loss = symloss.derive("normal", link={"scale": "log"}, beta_nll=beta)
    assert loss.wrt_names == ("loc", "log_scale")
    mu, ls, y = np.array([0.3, -1.0, 2.0]), np.array([0.5, -0.3, 1.2]), np.array([1.2, -0.4, -1.0])
    tm, tl = torch.tensor(mu, requires_grad=True), torch.tensor(ls, requires_grad=True)
    var = torch.exp(2 * tl)
    # Seitzer et al. (2022), reference implementation: loss * var.detach() ** beta, with the Gaussian NLL
    nll = 0.5 * ((torch.tensor(y) - tm) ** 2 / var + torch.log(var)) + 0.5 * np.log(2 * np.pi)
    ref = nll * var.detach() ** beta
    gm, gl = torch.autograd.grad(ref.sum(), (tm, tl))
    for target in ("numpy", "torch"):
        mod = symloss.load(loss, target)
        conv = (lambda a: a) if target == "numpy" else torch.tensor
        got = np.asarray(mod.loss(conv(mu), conv(ls), conv(y), reduction="none", full=True))
        np.testing.assert_allclose(got, ref.detach().numpy(), rtol=1e-10)
        g1, g2 = mod.grad(conv(mu), conv(ls), conv(y), reduction="sum")
        np.testing.assert_allclose(np.asarray(g1), gm.numpy(), rtol=1e-9)
        np.testing.assert_allclose(np.asarray(g2), gl.numpy(), rtol=1e-9)


def test_derive_options_are_checked():
    with pytest.raises(symloss.SymlossError):
        symloss.derive("poisson", zero_inflated=True, hurdle=True)
    with pytest.raises(symloss.SymlossError):
        symloss.derive("normal", censoring="sideways")
    with pytest.raises(symloss.SymlossError):
        symloss.derive("poisson", beta_nll=0.5)
    with pytest.raises(symloss.SymlossError):
        hurdle("gamma")


def test_normal_mixture_gradients_against_torch():
    loss = derived("mixture")
    mod = symloss.load(loss, "torch")
    y = torch.tensor([0.0, 1.5, -3.0, 25.0], dtype=torch.float64)
    leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (0.1, np.log(0.5), 2.0, 0.4, -0.4)]
    l1, s1, l2, s2, eta = leaves
    w = torch.sigmoid(eta)
    comp = torch.distributions.Normal(torch.stack([l1, l2]), torch.exp(torch.stack([s1, s2])))
    logp = torch.logsumexp(torch.stack([torch.log(w) + comp.log_prob(y[:, None])[:, 0],
                                        torch.log1p(-w) + comp.log_prob(y[:, None])[:, 1]]), dim=0)
    ref_grads = torch.autograd.grad(-logp.sum(), leaves)
    args = [v.detach() for v in leaves]
    np.testing.assert_allclose(float(mod.loss(*args, y, reduction="sum", full=True)), (-logp.sum()).item(), rtol=1e-10)
    for g, r in zip(mod.grad(*args, y, reduction="sum"), ref_grads):
        assert float(g) == pytest.approx(float(r), rel=1e-8, abs=1e-12)
