"""Richer likelihoods built from registry entries: zero inflation, right censoring, two-component mixtures.

Each builder returns a :class:`~symloss.registry.Distribution` that :func:`symloss.derive` accepts like any
registry entry (it is not added to the registry)::

    derive(zero_inflated("poisson"), link={"rate": "log", "gate": "logit"})
    derive(right_censored("normal"))          # Tobit-style: the censored observations use log Φ (log_ndtr)
    derive(mixture("normal"))                 # two components, written as log(exp(a) + exp(b)) → logaddexp

* ``zero_inflated(base)``: p(0) = π + (1 − π)·f(0), p(y) = (1 − π)·f(y) for y > 0, with the gate π
  (``gate``); for a count base (Poisson, NegativeBinomial, ...).
* ``right_censored(base)``: an input ``censored`` (1 when y is a lower bound of the true value, 0 when observed)
  selects the survival function: p = f(y)^(1−c)·S(y)^c.  For a Normal base S(y) = erfc((y − μ)/(σ√2))/2, whose
  log the code generators compute as log_ndtr (symloss.stabilize); Weibull and Exponential bases have
  S(y) = exp(−(y/λ)^k) and exp(−rate·y).
* ``mixture(base)``: w·f(y | θ₁) + (1 − w)·f(y | θ₂), written as exp(logaddexp(log w + log f₁, log(1 − w) + log f₂))
  so that its log is the stable logaddexp (symloss.stabilize.LogAddExp) in the NLL and the generated code.
"""

from __future__ import annotations

import dataclasses

import sympy as sp

from . import registry
from .derive import expand_log_density
from .errors import UnsupportedError
from .registry import Distribution, Param
from .stabilize import Log1mExp, LogAddExp, LogNdtr

__all__ = ["zero_inflated", "hurdle", "censored", "right_censored", "truncated", "mixture", "CENSORING"]


def _indicator_zero(y: sp.Expr) -> sp.Expr:
    return sp.Piecewise((1, sp.Eq(y, 0)), (0, True))


def zero_inflated(base: str | Distribution) -> Distribution:
    """The zero-inflated version of a count distribution, with a new parameter ``gate`` (π, in (0, 1))."""
    d = registry.get(base)
    if d.support != "nonnegative_integer":
        raise UnsupportedError(f"zero inflation needs a count distribution, and {d.name} has support {d.support}")

    def density(y, p):
        f0 = d.density(sp.Integer(0), p)
        fy = d.density(y, p)
        z = _indicator_zero(y)
        gate = p["gate"]
        # p(y) = [π + (1 − π) f(0)]^{1[y=0]} · [(1 − π) f(y)]^{1 − 1[y=0]}, the zero's mass written as
        # exp(logaddexp(log π, log(1 − π) + log f(0))): its log stays finite when both π and f(0) underflow
        zero = sp.exp(LogAddExp(sp.log(gate), sp.log(1 - gate) + expand_log_density(sp.log(f0))))
        return zero**z * ((1 - gate) * fy) ** (1 - z)

    return dataclasses.replace(
        d, name=f"ZeroInflated{d.name}", params=(*d.params, Param("gate", "unit_interval", "probability π of a "
                                                                   "structural zero")),
        density=density, source=f"{d.source}, zero-inflated (Lambert 1992)",
        reference="Lambert, Technometrics 34 (1992)", canonical_links={**d.canonical_links, "gate": "logit"},
        aliases=(), torch=None, scipy=None, notes="p(0) = π + (1 − π) f(0); p(y) = (1 − π) f(y), y > 0",
    )


def _cdf(d: Distribution, y: sp.Expr, p) -> tuple[sp.Expr, sp.Expr]:
    """(F(y), S(y) = 1 − F(y)) in forms whose logs the code generators compute stably."""
    if d.name == "Normal":
        z = (y - p["loc"]) / (p["scale"] * sp.sqrt(2))
        return sp.erfc(-z) / 2, sp.erfc(z) / 2  # log erfc(·)/2 → log_ndtr
    if d.name == "Exponential":
        return 1 - sp.exp(-p["rate"] * y), sp.exp(-p["rate"] * y)
    if d.name == "Weibull":
        h = (y / p["scale"]) ** p["concentration"]
        return 1 - sp.exp(-h), sp.exp(-h)
    if d.name == "Logistic":
        z = (y - p["loc"]) / p["scale"]
        return 1 / (1 + sp.exp(-z)), 1 / (1 + sp.exp(z))
    raise UnsupportedError(f"censoring and truncation are available for Normal, Exponential, Weibull and Logistic, "
                           f"not {d.name}")


def _log_mass(d: Distribution, a: sp.Expr, b: sp.Expr, p) -> sp.Expr:
    """log P(a < Y < b), in a stable form for a Normal.

    log(Φ(z_b) − Φ(z_a)) = log Φ(z_b) + log1mexp(log Φ(z_b) − log Φ(z_a)), or its mirror image through
    S(z) = Φ(−z) when the interval lies in the upper half (z_a + z_b > 0), so that neither tail cancels.
    """
    if d.name == "Normal":
        za, zb = (a - p["loc"]) / p["scale"], (b - p["loc"]) / p["scale"]
        lower_half = LogNdtr(zb) + Log1mExp(LogNdtr(zb) - LogNdtr(za))
        upper_half = LogNdtr(-za) + Log1mExp(LogNdtr(-za) - LogNdtr(-zb))
        return sp.Piecewise((upper_half, za + zb > 0), (lower_half, True))
    return sp.log(_cdf(d, a, p)[1] - _cdf(d, b, p)[1])


CENSORING = ("right", "left", "interval")


def censored(base: str | Distribution, side: str = "right") -> Distribution:
    """Censoring through the CDF: a data input ``censored`` (0: y observed, 1: censored) per observation.

    * ``side="right"``: a censored y is a lower bound of the value: p = f(y)^(1−c) · S(y)^c;
    * ``side="left"``: a censored y is an upper bound: p = f(y)^(1−c) · F(y)^c;
    * ``side="interval"``: a censored value lies in [y, upper] (a second data input ``upper``):
      p = f(y)^(1−c) · (F(upper) − F(y))^c, its log written stably for a Normal (log_ndtr and log1mexp).
      Every row needs upper > y, observed rows too (their upper is otherwise unused: pass y + 1).

    A Normal base with right or left censoring is the Tobit model; its log-CDF is computed as log_ndtr.
    """
    d = registry.get(base)
    side = str(side).strip().lower()
    if side not in CENSORING:
        raise UnsupportedError(f"censoring must be one of {', '.join(CENSORING)}, not {side!r}")
    probe = {q.name: sp.Symbol(q.name, positive=True) for q in d.params}
    _cdf(d, sp.Symbol("y", positive=True), probe)
    extra = [Param("censored", "binary", f"1 if y is {side}-censored, 0 if observed", trainable=False)]
    if side == "interval":
        extra.append(Param("upper", d.support if d.support in ("real", "positive") else "real",
                           "upper end of the censoring interval [y, upper]", trainable=False))

    def density(y, p):
        c = p["censored"]
        cdf, sf = _cdf(d, y, p)
        if side == "right":
            mass = sf
        elif side == "left":
            mass = cdf
        else:
            mass = sp.exp(_log_mass(d, y, p["upper"], p))
        return d.density(y, p) ** (1 - c) * mass**c

    return dataclasses.replace(
        d, name=f"{side.capitalize()}Censored{d.name}", params=(*d.params, *extra), density=density,
        source=f"{d.source}; {side}-censored through its CDF",
        reference="Tobin, Econometrica 26 (1958); Klein & Moeschberger, Survival Analysis (2003) ch. 3",
        aliases=(), torch=None, scipy=None, notes=f"{side} censoring: p = f(y)^(1−c) · P(censoring set)^c",
    )


def right_censored(base: str | Distribution) -> Distribution:
    """``censored(base, "right")``."""
    return censored(base, "right")


def truncated(base: str | Distribution, lower: float | None = None, upper: float | None = None) -> Distribution:
    """The distribution truncated to [lower, upper]: f(y) / (F(upper) − F(lower)); numbers for the bounds.

    With one bound the normaliser is S(lower) or F(upper), whose log is stable (log_ndtr for a Normal); with
    two, the log of the Normal mass is written with log_ndtr and log1mexp.
    """
    d = registry.get(base)
    if lower is None and upper is None:
        raise UnsupportedError("give lower and/or upper for a truncated distribution")
    lo = None if lower is None else sp.nsimplify(lower)
    hi = None if upper is None else sp.nsimplify(upper)
    if lo is not None and hi is not None and not lo < hi:
        raise UnsupportedError(f"truncation bounds must satisfy lower < upper, got {lower} and {upper}")
    probe = {q.name: sp.Symbol(q.name, positive=True) for q in d.params}
    _cdf(d, sp.Symbol("y", positive=True), probe)

    def density(y, p):
        if hi is None:
            mass = _cdf(d, lo, p)[1]
        elif lo is None:
            mass = _cdf(d, hi, p)[0]
        else:
            mass = sp.exp(_log_mass(d, lo, hi, p))
        return d.density(y, p) / mass

    bounds = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
    return dataclasses.replace(
        d, name=f"Truncated{d.name}", density=density, source=f"{d.source}, truncated to {bounds}",
        reference="Johnson, Kotz & Balakrishnan vol. 1, ch. 13 §10 (truncated normal)", aliases=(), torch=None,
        scipy=None, support_note=f"y in {bounds}", notes=f"f(y) / P(Y in {bounds})",
    )


def hurdle(base: str | Distribution) -> Distribution:
    """A hurdle model for counts: p(0) = π, p(y) = (1 − π) · f(y) / (1 − f(0)) for y > 0 (gate ``gate``)."""
    d = registry.get(base)
    if d.support != "nonnegative_integer":
        raise UnsupportedError(f"a hurdle model needs a count distribution, and {d.name} has support {d.support}")

    def density(y, p):
        z = _indicator_zero(y)
        gate = p["gate"]
        f0 = d.density(sp.Integer(0), p)
        return gate**z * ((1 - gate) * d.density(y, p) / (1 - f0)) ** (1 - z)

    return dataclasses.replace(
        d, name=f"Hurdle{d.name}", params=(*d.params, Param("gate", "unit_interval", "probability π of a zero")),
        density=density, source=f"{d.source}, hurdle at zero (Mullahy 1986)",
        reference="Mullahy, J. Econometrics 33 (1986)", canonical_links={**d.canonical_links, "gate": "logit"},
        aliases=(), torch=None, scipy=None, notes="p(0) = π; p(y) = (1 − π) f(y) / (1 − f(0)), y > 0",
    )


def mixture(base: str | Distribution) -> Distribution:
    """A two-component mixture of one family: parameters ``<name>1``, ``<name>2`` and ``mixing``.

    ``mixing`` is the weight w of the first component.
    """
    d = registry.get(base)
    if d.event != "scalar" or any(not p.trainable for p in d.params):
        raise UnsupportedError(f"mixtures of {d.name} are not supported")
    first = tuple(dataclasses.replace(p, name=f"{p.name}1") for p in d.params)
    second = tuple(dataclasses.replace(p, name=f"{p.name}2") for p in d.params)

    def density(y, p):
        w = p["mixing"]
        comp1 = {q.name: p[f"{q.name}1"] for q in d.params}
        comp2 = {q.name: p[f"{q.name}2"] for q in d.params}
        a = sp.log(w) + expand_log_density(sp.log(d.density(y, comp1)))
        b = sp.log(1 - w) + expand_log_density(sp.log(d.density(y, comp2)))
        # exp(logaddexp(a, b)): the log of the density is then logaddexp(a, b) itself, stable in generated code
        return sp.exp(LogAddExp(a, b))

    links = {**{f"{k}1": v for k, v in d.canonical_links.items()}, **{f"{k}2": v for k, v in d.canonical_links.items()},
             "mixing": "logit"}
    return dataclasses.replace(
        d, name=f"{d.name}Mixture2", params=(*first, *second, Param("mixing", "unit_interval",
                                                                       "weight of the first component")),
        density=density, source=f"{d.source}, two-component mixture",
        reference="McLachlan & Peel, Finite Mixture Models (2000)", canonical_links=links, aliases=(), torch=None,
        scipy=None, notes="w f(y | θ1) + (1 − w) f(y | θ2)",
    )


def modify(d: str | Distribution, *, zero_inflated: bool = False, hurdle: bool = False, censoring: str | None = None,
           truncation: tuple[float | None, float | None] | None = None, mixture: int | None = None) -> Distribution:
    """Apply the :func:`symloss.derive` options that change the likelihood, in a fixed order."""
    out = registry.get(d)
    if zero_inflated and hurdle:
        raise UnsupportedError("choose zero_inflated or hurdle, not both")
    if mixture is not None:
        if mixture != 2:
            raise UnsupportedError(f"mixtures of 2 components are supported, not {mixture}")
        out = _mixture(out)
    if truncation is not None:
        lo, hi = truncation
        out = truncated(out, lo, hi)
    if censoring is not None:
        out = censored(out, censoring)
    if zero_inflated:
        out = _zero_inflated(out)
    if hurdle:
        out = _hurdle(out)
    return out


_mixture, _zero_inflated, _hurdle = mixture, zero_inflated, hurdle


def beta_nll(loss, beta: float = 0.5):
    """The β-NLL of Seitzer et al. (ICLR 2022): ℓ_β = stop_gradient(σ^{2β}) · ℓ, σ the ``scale`` parameter.

    The value is σ^{2β}·ℓ and every gradient is σ^{2β}·∂ℓ/∂x: the factor is a constant for differentiation
    (β = 0: the NLL; β = 1: the gradient of the mean is that of the MSE).  ``metadata["stop_gradient"]`` holds
    the factor; here ``gradient`` is deliberately *not* ∂expr/∂x.
    """
    import dataclasses as dc

    from .errors import DomainError
    from .loss import Step

    if "scale" not in loss.parameters:
        raise DomainError(f"β-NLL needs a scale parameter, and {loss.name} has {sorted(loss.parameters)}")
    b = sp.nsimplify(beta)
    if not (b.is_number and 0 <= b <= 1):
        raise DomainError(f"β of the β-NLL must be in [0, 1], got {beta}")
    factor = expand_log_density(loss.parameters["scale"] ** (2 * b)) if b != 0 else sp.Integer(1)
    factor = sp.powsimp(factor)
    step = Step("beta_nll", f"β-NLL (Seitzer et al. 2022), β = {b}: multiply by stop_gradient(σ^(2β)) = {factor}; "
                            "the factor is constant for the gradient", "ℓ_β", factor * loss.expr)
    return dc.replace(
        loss, name=f"{loss.name}_beta_nll", nll=factor * loss.nll, expr=factor * loss.expr,
        constant=factor * loss.constant, gradient={s: factor * g for s, g in loss.gradient.items()},
        steps=(*loss.steps, step), known_as=None, metadata={**loss.metadata, "stop_gradient": factor, "beta": b},
    )
