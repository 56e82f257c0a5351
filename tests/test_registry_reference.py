"""Reference tests for the whole registry (issue 3).

For every registry entry and every link configuration in ``CASES`` (no link, the canonical links, and the other
links that fit a parameter: softplus for positive parameters, probit / cloglog for probabilities, the variance
of a normal, ...):

* ``loss.nll`` (evaluated with mpmath at 40 digits) equals ``-scipy.stats.<dist>.logpdf/logpmf`` and
  ``-torch.distributions.<Dist>.log_prob`` (float64) at 20 random valid points;
* the same expression lambdified with the ``["scipy", "numpy"]`` modules agrees in float64;
* ``loss.parameters`` inverts the links (the points are drawn in the natural parameters and mapped through them);
* every ``loss.gradient[s]`` equals a high-precision finite difference (``mpmath.diff``) of ``loss.expr``;
* ``nll == expr + constant`` and the constant is free of the trained inputs.

Registry-level checks (declarations, look-up, aliases, hand-written densities against ``sympy.stats``) follow.
Each loss is derived once per module (``_loss`` is cached); points use a fixed seed per entry.
"""

from __future__ import annotations

import functools
import math
import re
import zlib
from dataclasses import dataclass, field

import mpmath
import numpy as np
import pytest
import scipy.stats as ss
import sympy as sp
import sympy.stats as st
import torch
import torch.distributions as td
import torch.nn.functional as F

import symloss
from symloss import registry
from symloss.domains import get_domain
from symloss.errors import SymlossError, UnknownNameError
from symloss.links import LINKS, input_name

N_POINTS = 20
K = 3  # number of classes for the class-axis (vector) entries
DPS = 40  # mpmath working precision (digits)
RTOL = 1e-10  # against scipy / torch / the float64 evaluation
GRAD_RTOL = 1e-8  # symbolic gradient against the mpmath finite difference
V = registry.VectorSymbols()
ENTRIES = [registry.get(n) for n in registry.names()]

# ---------------------------------------------------------------------------------------------------------
# the link configurations tested for each entry
_EXTRA_LINKS: dict[str, list[tuple[str, dict[str, str]]]] = {
    "Normal": [("variance", {"scale": "variance"}), ("inverse_scale", {"scale": "inverse"})],
    "Exponential": [("inverse", {"rate": "inverse"})],
    "Gamma": [("inverse_rate", {"rate": "inverse"})],
    "Poisson": [("sqrt", {"rate": "sqrt"})],
    "AsymmetricLaplace": [("logit_quantile", {"scale": "log", "quantile": "logit"})],
}


def _link_configs(entry: registry.Distribution) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = [("none", None), ("canonical", "canonical")]
    trainable = [p for p in entry.params if p.trainable]
    positive = [p.name for p in trainable if p.domain == "positive"]
    unit = [p.name for p in trainable if p.domain == "unit_interval"]
    if positive:
        out.append(("softplus", {p: "softplus" for p in positive}))
    for lk in ("probit", "cloglog"):
        if unit:
            out.append((lk, {p: lk for p in unit}))
    out += _EXTRA_LINKS.get(entry.name, [])
    return out


CASES = [(e.name, lid, spec) for e in ENTRIES for lid, spec in _link_configs(e)]
CASE_IDS = [f"{n}-{lid}" for n, lid, _ in CASES]
_SPECS = {(n, lid): spec for n, lid, spec in CASES}
case_params = pytest.mark.parametrize("name,lid", [(n, lid) for n, lid, _ in CASES], ids=CASE_IDS)


@functools.cache
def _loss(name: str, lid: str):
    return symloss.derive(name, link=_SPECS[(name, lid)])


# ---------------------------------------------------------------------------------------------------------
# random valid points, drawn in the natural parameters (fixed seed per entry: the same points for every link)
def _log_uniform(rng, lo, hi):
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _cb_probs(rng, th):
    # torch evaluates the continuous Bernoulli's normaliser by a Taylor expansion inside (0.499, 0.501) and ours
    # is a 0/0 there: keep probs out of (0.45, 0.55)
    u = rng.uniform(0.05, 0.45)
    return u if rng.random() < 0.5 else 1.0 - u


_PARAM_DRAW = {
    ("StudentT", "df"): lambda rng, th: _log_uniform(rng, 0.5, 30.0),
    ("Chi2", "df"): lambda rng, th: _log_uniform(rng, 0.5, 30.0),
    ("VonMises", "concentration"): lambda rng, th: _log_uniform(rng, 0.2, 20.0),  # both branches of torch's I0
    ("Poisson", "rate"): lambda rng, th: _log_uniform(rng, 0.2, 30.0),
    ("NegativeBinomial", "total_count"): lambda rng, th: _log_uniform(rng, 0.3, 20.0),
    ("AsymmetricLaplace", "quantile"): lambda rng, th: rng.uniform(0.05, 0.95),
    ("ContinuousBernoulli", "probs"): _cb_probs,
}


def _draw_theta(entry, rng) -> dict:
    th: dict = {}
    for p in entry.params:
        special = _PARAM_DRAW.get((entry.name, p.name))
        if special is not None:
            th[p.name] = special(rng, th)
        elif p.domain == "real":
            th[p.name] = rng.normal(0.0, 1.5)
        elif p.domain == "positive":
            th[p.name] = _log_uniform(rng, 0.3, 3.0)
        elif p.domain == "unit_interval":
            th[p.name] = rng.uniform(0.1, 0.9)
        elif p.domain == "angle":
            th[p.name] = rng.uniform(-math.pi, math.pi)
        elif p.domain == "nonnegative_integer":
            th[p.name] = float(rng.integers(1, 16))
        elif p.domain == "positive_vector":
            th[p.name] = np.exp(rng.uniform(math.log(0.3), math.log(3.0), K))
        elif p.domain == "simplex":
            th[p.name] = rng.dirichlet([2.0] * K)
        else:  # pragma: no cover - a new domain needs a sampler here
            raise AssertionError(f"no sampler for domain {p.domain} ({entry.name}.{p.name})")
    return th


def _draw_target(entry, th, rng, i):
    name = entry.name
    if name == "Bernoulli":
        return float(i % 2)
    if name == "ContinuousBernoulli":  # closed support: both ends included
        return [0.0, 1.0][i] if i < 2 else rng.uniform(0.0, 1.0)
    if name == "Kumaraswamy":  # inverse CDF
        u, a, b = rng.uniform(0.02, 0.98), th["concentration1"], th["concentration0"]
        return (1.0 - (1.0 - u) ** (1.0 / b)) ** (1.0 / a)
    if name == "VonMises":
        return rng.uniform(-math.pi, math.pi)
    if name == "Categorical":
        return np.eye(K)[rng.integers(0, K)]
    if name == "Multinomial":
        return rng.multinomial(int(th["total_count"]), th["probs"]).astype(float)
    if name == "Dirichlet":
        return rng.dirichlet([2.0] * K)
    if name == "Binomial" and i < 2:  # both ends of 0 <= y <= total_count
        return [0.0, th["total_count"]][i]
    if entry.discrete and i == 0 and get_domain(entry.support).lower == 0.0:
        return 0.0
    # the bulk of the distribution itself: respects parameter-dependent supports (Pareto y >= scale, ...)
    return float(_scipy_frozen(entry, th).ppf(rng.uniform(0.02, 0.98)))


# ---------------------------------------------------------------------------------------------------------
# the references
def _sqrt_tau(t):
    return math.sqrt(t["quantile"] / (1 - t["quantile"]))


# scipy.stats.<entry.scipy>(...) with the parameter mapping of each entry (see each entry's notes)
_SCIPY = {
    "Normal": lambda d, t: d(loc=t["loc"], scale=t["scale"]),
    "Laplace": lambda d, t: d(loc=t["loc"], scale=t["scale"]),
    "Cauchy": lambda d, t: d(loc=t["loc"], scale=t["scale"]),
    "StudentT": lambda d, t: d(t["df"], loc=t["loc"], scale=t["scale"]),
    "Logistic": lambda d, t: d(loc=t["loc"], scale=t["scale"]),
    "Gumbel": lambda d, t: d(loc=t["loc"], scale=t["scale"]),
    "HyperbolicSecant": lambda d, t: d(loc=t["loc"], scale=t["scale"]),
    "AsymmetricLaplace": lambda d, t: d(
        _sqrt_tau(t), loc=t["loc"], scale=t["scale"] / math.sqrt(t["quantile"] * (1 - t["quantile"]))
    ),
    "LogNormal": lambda d, t: d(t["scale"], scale=math.exp(t["loc"])),
    "HalfNormal": lambda d, t: d(scale=t["scale"]),
    "HalfCauchy": lambda d, t: d(scale=t["scale"]),
    "Exponential": lambda d, t: d(scale=1 / t["rate"]),
    "Gamma": lambda d, t: d(t["concentration"], scale=1 / t["rate"]),
    "InverseGamma": lambda d, t: d(t["concentration"], scale=t["rate"]),
    "Weibull": lambda d, t: d(c=t["concentration"], scale=t["scale"]),
    "Pareto": lambda d, t: d(b=t["alpha"], scale=t["scale"]),
    "Chi2": lambda d, t: d(t["df"]),
    "InverseGaussian": lambda d, t: d(mu=t["mean"] / t["shape"], scale=t["shape"]),
    "Rayleigh": lambda d, t: d(scale=t["scale"]),
    "LogLogistic": lambda d, t: d(c=t["beta"], scale=t["alpha"]),
    "Beta": lambda d, t: d(t["concentration1"], t["concentration0"]),
    "VonMises": lambda d, t: d(t["concentration"], loc=t["loc"]),
    "Bernoulli": lambda d, t: d(t["probs"]),
    "Binomial": lambda d, t: d(int(t["total_count"]), t["probs"]),
    "Geometric": lambda d, t: d(t["probs"]),  # counts trials: evaluated at y + 1
    "Poisson": lambda d, t: d(t["rate"]),
    "NegativeBinomial": lambda d, t: d(t["total_count"], 1 - t["probs"]),
    "Skellam": lambda d, t: d(t["mu1"], t["mu2"]),
    "Categorical": lambda d, t: ss.multinomial(1, t["probs"]),  # one-hot y
    "Multinomial": lambda d, t: d(int(t["total_count"]), t["probs"]),
    "Dirichlet": lambda d, t: d(t["concentration"]),
}


def _scipy_frozen(entry, t):
    dist = getattr(ss, entry.scipy) if entry.scipy else None
    return _SCIPY[entry.name](dist, t)


def _kumaraswamy_logp(t, y):
    a, b = t["concentration1"], t["concentration0"]
    return math.log(a) + math.log(b) + (a - 1) * math.log(y) + (b - 1) * math.log1p(-(y**a))


def _continuous_bernoulli_logp(t, y):
    # Loaiza-Ganem & Cunningham (2019), eq. (6): C(λ) = 2 artanh(1 − 2λ)/(1 − 2λ)
    lam = t["probs"]
    return math.log(2 * math.atanh(1 - 2 * lam) / (1 - 2 * lam)) + y * math.log(lam) + (1 - y) * math.log1p(-lam)


_FORMULA = {"Kumaraswamy": _kumaraswamy_logp, "ContinuousBernoulli": _continuous_bernoulli_logp}


def _reference_logp(entry, t, y) -> float:
    if entry.name in _FORMULA:  # scipy.stats has no such distribution
        return _FORMULA[entry.name](t, y)
    frozen = _scipy_frozen(entry, t)
    if entry.name == "Geometric":
        y = y + 1
    return float(frozen.logpmf(y) if entry.discrete else frozen.logpdf(y))


def _torch_logp(entry, t, y) -> float:
    cls = getattr(td, entry.torch)
    kw = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in t.items()}
    value = torch.as_tensor(y, dtype=torch.float64)
    if entry.name == "Categorical":
        value = torch.as_tensor(int(np.argmax(y)))
    if entry.name == "Multinomial":
        kw["total_count"] = int(t["total_count"])
    # the registry promises torch's parameter names: construct by keyword
    return float(cls(**kw, validate_args=True).log_prob(value))


# ---------------------------------------------------------------------------------------------------------
# one derived loss made numeric (cached per case)
_FORWARD = {  # link θ -> η in mpmath (the test's own inverse of each link)
    "identity": lambda t: t,
    "log": mpmath.log,
    "softplus": lambda t: mpmath.log(mpmath.expm1(t)),
    "logit": lambda t: mpmath.log(t / (1 - t)),
    "probit": lambda t: mpmath.sqrt(2) * mpmath.erfinv(2 * t - 1),
    "cloglog": lambda t: mpmath.log(-mpmath.log(1 - t)),
    "inverse": lambda t: 1 / t,
    "sqrt": mpmath.sqrt,
    "variance": lambda t: t**2,
    "softmax": mpmath.log,  # plus an arbitrary shift per point (softmax is shift-invariant)
}


def _mpf(x):
    return mpmath.mpf(float(x))


def _is_vector(s) -> bool:
    return isinstance(s, sp.IndexedBase)


def _scalar_symbols(s) -> list[sp.Symbol]:
    return [sp.Symbol(f"{s}_{i}") for i in range(K)] if _is_vector(s) else [s]


@dataclass
class Numeric:
    entry: registry.Distribution
    loss: object
    args: list  # scalar symbols: the inputs' components, then the target's
    theta: list = field(default_factory=list)  # per point: the natural parameters drawn
    theta_back: list = field(default_factory=list)  # per point: loss.parameters evaluated at the inputs (float64)
    y: list = field(default_factory=list)  # per point: the target (float or array)
    values: list = field(default_factory=list)  # per point: mpf values aligned with args

    def scalar(self, expr, j=None, k=None):
        """A loss expression in the scalar args: K = 3, the sums expanded, x[i] -> x_i."""
        if self.loss.event != "vector":
            return expr
        e = expr.subs(V.K, K)
        if j is not None:
            e = e.subs(V.j, j)
        if k is not None:
            e = e.subs(V.k, k)
        e = e.doit()
        return e.xreplace({a: sp.Symbol(f"{a.base}_{a.indices[0]}") for a in e.atoms(sp.Indexed)})

    def mp(self, expr, j=None, k=None):
        return sp.lambdify(self.args, self.scalar(expr, j, k), "mpmath")

    def f64(self, expr, j=None):
        return sp.lambdify(self.args, self.scalar(expr, j), modules=["scipy", "numpy"])

    def index(self, sym) -> int:
        return self.args.index(sym)


@functools.cache
def _numeric(name: str, lid: str) -> Numeric:
    entry, loss = registry.get(name), _loss(name, lid)
    args = [c for s in loss.inputs for c in _scalar_symbols(s)] + _scalar_symbols(loss.target)
    num = Numeric(entry, loss, args)
    # which parameter (and link) each input carries
    carried = {}
    for p in entry.params:
        if p.name in loss.fixed:
            continue
        lk = LINKS[loss.links.get(p.name, "identity")]
        carried[input_name(p.name, lk)] = (p.name, lk.name)
    assert set(carried) == set(loss.input_names), (carried, loss.input_names)
    back = {}
    for p, e in loss.parameters.items():
        if isinstance(e, sp.IndexedBase):  # an unlinked class-axis parameter is the input itself
            e = e[V.k]
        back[p] = [num.mp(e, k=k) for k in range(K)] if e.has(V.k) else [num.mp(e)]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    with mpmath.workdps(DPS):
        for i in range(N_POINTS):
            th = _draw_theta(entry, rng)
            y = _draw_target(entry, th, rng, i)
            inputs = []
            for s in loss.inputs:
                pname, lk = carried[str(s)]
                comps = np.atleast_1d(th[pname])
                eta = [float(_FORWARD[lk](_mpf(c))) for c in comps]
                if lk == "softmax":
                    eta = [e + 0.3 * (i - N_POINTS / 2) for e in eta]
                inputs += eta
            vals = [_mpf(v) for v in [*inputs, *np.atleast_1d(y)]]
            tb = {}
            for p, fns in back.items():
                comps = [float(f(*vals)) for f in fns]
                tb[p] = np.array(comps) if np.ndim(th[p]) else comps[0]
            num.theta.append(th)
            num.theta_back.append(tb)
            num.y.append(y)
            num.values.append(vals)
    return num


def _close(ours, ref, rtol=RTOL) -> bool:
    return abs(ours - ref) <= rtol * max(1.0, abs(ref))


def _real(value, what: str) -> float:
    """An mpmath value that must be real: a complex one means a log of a negative factor somewhere."""
    assert isinstance(value, mpmath.mpf), f"{what} is not real: {value}"
    return float(value)


def _report(rows) -> str:
    return "\n".join(f"  point {i}: ours={a!r} ref={b!r} at {pt}" for i, a, b, pt in rows[:5])


# ---------------------------------------------------------------------------------------------------------
# 1. the NLL against scipy.stats (or an independent formula where scipy has none) and torch.distributions
@case_params
def test_parameters_invert_links(name, lid):
    num = _numeric(name, lid)
    for th, tb in zip(num.theta, num.theta_back):
        for p, v in th.items():
            np.testing.assert_allclose(tb[p], v, rtol=1e-12, err_msg=f"{p} of {name} under {lid}")


@case_params
def test_nll_matches_scipy(name, lid):
    num = _numeric(name, lid)
    nll = num.mp(num.loss.nll)
    bad = []
    with mpmath.workdps(DPS):
        for i, (tb, y, vals) in enumerate(zip(num.theta_back, num.y, num.values)):
            ours = _real(nll(*vals), f"nll of {name} under {lid}")
            ref = -_reference_logp(num.entry, tb, y)
            if not math.isfinite(ref) or not _close(ours, ref):
                bad.append((i, ours, ref, (tb, y)))
    assert not bad, f"{name} ({lid}) nll != -scipy.stats.{num.entry.scipy} log-density:\n{_report(bad)}"


_TORCH_RTOL = {
    # torch's VonMises evaluates log I0(κ) by the polynomial approximations of Abramowitz & Stegun 9.8.1-9.8.2
    # (relative error ~1e-7), not to float64 accuracy
    "VonMises": 1e-6,
}


@case_params
def test_nll_matches_torch(name, lid):
    num = _numeric(name, lid)
    if num.entry.torch is None:
        pytest.skip(f"torch.distributions has no {name}")
    nll = num.mp(num.loss.nll)
    rtol = _TORCH_RTOL.get(name, RTOL)
    bad = []
    with mpmath.workdps(DPS):
        for i, (tb, y, vals) in enumerate(zip(num.theta_back, num.y, num.values)):
            ours, ref = _real(nll(*vals), f"nll of {name} under {lid}"), -_torch_logp(num.entry, tb, y)
            if not _close(ours, ref, rtol):
                bad.append((i, ours, ref, (tb, y)))
    assert not bad, f"{name} ({lid}) nll != -torch.distributions.{num.entry.torch}.log_prob:\n{_report(bad)}"


@case_params
def test_float64_modules_agree_with_mpmath(name, lid):
    """The expressions lambdified with modules=["scipy", "numpy"] (gammaln, iv, polygamma, ...) in float64."""
    num = _numeric(name, lid)
    exprs = [("nll", num.loss.nll, None)]
    for s in num.loss.wrt:
        exprs += [(f"d/d{s}_{j}", num.loss.gradient[s], j) for j in range(K)] if _is_vector(s) else [
            (f"d/d{s}", num.loss.gradient[s], None)]
    bad = []
    for label, e, j in exprs:
        ref_fn, f64 = num.mp(e, j), num.f64(e, j)
        for i, vals in enumerate(num.values):
            with mpmath.workdps(DPS):
                ref = _real(ref_fn(*vals), f"{label} of {name} under {lid}")
            with np.errstate(all="ignore"):
                ours = float(f64(*[float(v) for v in vals]))
            if not _close(ours, ref, 1e-9):
                bad.append((i, ours, ref, label))
    assert not bad, f"{name} ({lid}): float64 evaluation differs from mpmath:\n{_report(bad)}"


# ---------------------------------------------------------------------------------------------------------
# 2. gradients against high-precision finite differences; nll = expr + constant; the constant is untrained
@case_params
def test_gradient_matches_finite_differences(name, lid):
    num = _numeric(name, lid)
    loss = num.loss
    assert set(loss.gradient) == set(loss.wrt)
    expr = num.mp(loss.expr)
    bad = []
    for s in loss.wrt:
        for j, var in enumerate(_scalar_symbols(s)):
            grad = num.mp(loss.gradient[s], j if _is_vector(s) else None)
            at = num.index(var)
            with mpmath.workdps(DPS):
                for i, vals in enumerate(num.values):
                    def f(x, vals=vals, at=at):
                        return expr(*vals[:at], x, *vals[at + 1:])

                    fd = mpmath.diff(f, vals[at])
                    g = grad(*vals)
                    if not (isinstance(g, mpmath.mpf) and _close(float(g), float(fd), GRAD_RTOL)):
                        bad.append((i, g, float(fd), f"d/d{var}"))
    assert not bad, f"{name} ({lid}) gradient != finite difference of expr:\n{_report(bad)}"


def _mentions(expr, s) -> bool:
    if _is_vector(s):
        return any(a.base == s for a in expr.atoms(sp.Indexed)) or s.label in expr.free_symbols
    return s in expr.free_symbols


@case_params
def test_constant_split(name, lid):
    num = _numeric(name, lid)
    loss = num.loss
    assert not any(_mentions(loss.constant, s) for s in loss.wrt), f"constant {loss.constant} depends on {loss.wrt}"
    assert all(_mentions(loss.expr, s) for s in loss.wrt)
    # by default every input is trained except integer data (a binomial's or multinomial's total_count)
    untrained = {str(s) for s in loss.inputs} - set(loss.wrt_names)
    assert untrained == {p.name for p in num.entry.params if not p.trainable}, untrained
    rest = num.mp(loss.nll - loss.expr - loss.constant)
    with mpmath.workdps(DPS):
        for vals in num.values:
            assert abs(rest(*vals)) < 1e-25


# ---------------------------------------------------------------------------------------------------------
# class-axis specifics
def test_categorical_softmax_is_cross_entropy():
    num = _numeric("Categorical", "canonical")
    nll, expr = num.mp(num.loss.nll), num.mp(num.loss.expr)
    logits = torch.tensor([[float(v) for v in vals[:K]] for vals in num.values], dtype=torch.float64)
    labels = torch.tensor([int(np.argmax(y)) for y in num.y])
    ce = F.cross_entropy(logits, labels, reduction="none").numpy()
    with mpmath.workdps(DPS):
        for vals, ref in zip(num.values, ce):
            assert _close(float(nll(*vals)), float(ref)) and _close(float(expr(*vals)), float(ref))


def _vector_symbols():
    n = sp.Symbol("n", integer=True, nonnegative=True)
    p = sp.symbols(f"p0:{K}", positive=True)
    y = sp.symbols(f"y0:{K}", nonnegative=True)
    return n, p, y


def _hand_written_at_k3(entry, builder, pname, pvals, y):
    """entry's density (or log-density) builder at K = 3 in the scalar symbols."""
    yb, pb = sp.IndexedBase("y"), sp.IndexedBase(pname)
    params = {pname: pb}
    if entry.name == "Multinomial":
        params["total_count"] = sp.Symbol("n", integer=True, nonnegative=True)
    e = builder(yb, params).subs(V.K, K).doit()
    return e.xreplace({**{yb[i]: y[i] for i in range(K)}, **{pb[i]: pvals[i] for i in range(K)}})


def test_multinomial_matches_sympy_stats():
    entry = registry.get("Multinomial")
    n, p, y = _vector_symbols()
    y = sp.symbols(f"y0:{K}", integer=True, nonnegative=True)
    ours = _hand_written_at_k3(entry, entry.density, "probs", p, y)
    theirs = st.density(st.Multinomial("M", n, *p))(*y)
    theirs = theirs.args[0][0]  # the branch on the support: Eq(n, sum(y))
    assert sp.simplify(ours - theirs) == 0
    log_ours = _hand_written_at_k3(entry, registry.LOG_DENSITIES["Multinomial"], "probs", p, y)
    f = sp.lambdify([n, *p, *y], [log_ours, sp.log(theirs)], "mpmath")
    rng = np.random.default_rng(3)
    with mpmath.workdps(DPS):
        for _ in range(10):
            probs, total = rng.dirichlet([2.0] * K), int(rng.integers(1, 30))
            counts = rng.multinomial(total, probs)
            a, b = f(total, *map(_mpf, probs), *map(int, counts))
            assert abs(a - b) < 1e-30 * max(1, abs(b))


def test_dirichlet_matches_sympy_stats():
    entry = registry.get("Dirichlet")
    _, a, _ = _vector_symbols()
    x = sp.symbols(f"x0:{K}", positive=True)
    ours = _hand_written_at_k3(entry, entry.density, "concentration", a, x)
    theirs = st.density(st.MultivariateBeta("D", *a))(*x)  # sympy.stats.Dirichlet is MultivariateBeta
    assert sp.simplify(ours - theirs) == 0
    log_ours = _hand_written_at_k3(entry, registry.LOG_DENSITIES["Dirichlet"], "concentration", a, x)
    f = sp.lambdify([*a, *x], [log_ours, sp.log(theirs)], "mpmath")
    rng = np.random.default_rng(4)
    with mpmath.workdps(DPS):
        for _ in range(10):
            alpha, point = np.exp(rng.uniform(-1.5, 1.5, K)), rng.dirichlet([2.0] * K)
            u, v = f(*map(_mpf, alpha), *map(_mpf, point))
            assert abs(u - v) < 1e-30 * max(1, abs(v))


def test_categorical_density_and_log_density_agree():
    entry = registry.get("Categorical")
    _, p, y = _vector_symbols()
    dens = _hand_written_at_k3(entry, entry.density, "probs", p, y)
    logd = _hand_written_at_k3(entry, registry.LOG_DENSITIES["Categorical"], "probs", p, y)
    f = sp.lambdify([*p, *y], [sp.log(dens), logd], "mpmath")
    rng = np.random.default_rng(5)
    for _ in range(10):
        probs, onehot = rng.dirichlet([2.0] * K), np.eye(K)[rng.integers(0, K)]
        u, v = f(*map(_mpf, probs), *map(_mpf, onehot))
        assert abs(u - v) < 1e-12 and abs(v - math.log(probs[int(np.argmax(onehot))])) < 1e-12


# ---------------------------------------------------------------------------------------------------------
# float64 evaluation at large counts: log n! must not be written as log(gamma(n + 1)) (gamma overflows at 171)
_LARGE = [
    ("Poisson", {"rate": 900.0}, 1000.0),
    ("Binomial", {"total_count": 1000.0, "probs": 0.4}, 420.0),
    ("NegativeBinomial", {"total_count": 50.0, "probs": 0.95}, 1000.0),
]
# regression: sympy's own loggamma(y + 1) turns into log(gamma(y + 1)) for an integer y and overflows at
# counts >= 171; symloss.special.loggamma keeps the log-form


@pytest.mark.parametrize("name,theta,y", _LARGE, ids=[c[0] for c in _LARGE])
def test_float64_nll_at_large_counts(name, theta, y):
    entry, loss = registry.get(name), _loss(name, "none")
    f = sp.lambdify([*loss.inputs, loss.target], loss.nll, modules=["scipy", "numpy"])
    with np.errstate(all="ignore"):
        ours = float(f(*[theta[str(s)] for s in loss.inputs], y))
    assert _close(ours, -_reference_logp(entry, theta, y))


def test_float64_multinomial_nll_at_large_counts():
    num = _numeric("Multinomial", "none")
    f = num.f64(num.loss.nll)
    probs, counts = np.array([0.2, 0.3, 0.5]), np.array([200.0, 300.0, 500.0])
    with np.errstate(all="ignore"):
        ours = float(f(1000.0, *probs, *counts))
    assert _close(ours, -ss.multinomial(1000, probs).logpmf(counts))


# ---------------------------------------------------------------------------------------------------------
# 3. registry-level declarations and look-up
HAND_WRITTEN = {
    "HyperbolicSecant", "AsymmetricLaplace", "ContinuousBernoulli", "Categorical", "Multinomial", "Dirichlet",
}


def test_registry_size_and_names():
    names = registry.names()
    assert len(names) >= 30 and len(set(names)) == len(names)
    assert {e.name for e in ENTRIES} == set(registry.REGISTRY)


def test_hand_written_entries_are_exactly_the_documented_ones():
    assert {e.name for e in ENTRIES if e.source.startswith("hand-written")} == HAND_WRITTEN


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_entry_declaration(entry):
    assert entry.params and len(set(entry.param_names)) == len(entry.param_names)
    for p in entry.params:
        get_domain(p.domain)  # raises UnknownNameError for an invalid domain name
        assert entry.param(p.name) is p
    get_domain(entry.support)
    assert isinstance(entry.reference, str) and len(entry.reference) > 10
    assert entry.event in ("scalar", "vector")
    assert (entry.event == "vector") == (entry.name in registry.LOG_DENSITIES)
    if entry.source.startswith("sympy.stats"):
        cls = re.match(r"sympy\.stats\.(\w+)", entry.source).group(1)
        assert hasattr(st, cls), f"{entry.name}: sympy.stats has no {cls}"
    else:
        assert entry.source.startswith("hand-written"), entry.source
        why = entry.source[len("hand-written"):]
        assert "sympy" in why.lower() and len(why) > 20, f"{entry.name}: a hand-written density must say why"
    for pname, lk in entry.canonical_links.items():
        p = entry.param(pname)
        assert p.trainable and p.domain in LINKS[lk].fits, (pname, lk)
    if entry.torch is not None:
        assert hasattr(td, entry.torch), entry.torch
    if entry.scipy is not None:
        assert hasattr(ss, entry.scipy), entry.scipy
    for alias in (entry.name, *entry.aliases):  # no alias is shadowed by another entry's
        assert registry.get(alias) is entry, alias


@pytest.mark.parametrize("query,expected", [
    ("normal", "Normal"), ("NORMAL", "Normal"), ("gaussian", "Normal"), ("Gaussian", "Normal"),
    ("Lorentz", "Cauchy"), ("WALD", "InverseGaussian"), ("inverse_gaussian", "InverseGaussian"),
    ("negative-binomial", "NegativeBinomial"), (" Poisson ", "Poisson"), ("student t", "StudentT"),
    ("laplace_asymmetric", "AsymmetricLaplace"), ("log_cosh", "HyperbolicSecant"), ("Dirichlet", "Dirichlet"),
])
def test_lookup_case_insensitive_and_aliases(query, expected):
    assert registry.get(query).name == expected


def test_unknown_name_suggests_closest():
    with pytest.raises(UnknownNameError) as info:
        registry.get("poison")
    assert "Poisson" in str(info.value)
    assert isinstance(info.value, SymlossError) and isinstance(info.value, KeyError)
    with pytest.raises(UnknownNameError, match="Gamma"):
        symloss.derive("gamme")
