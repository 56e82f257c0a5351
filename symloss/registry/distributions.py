"""The distribution registry: one declarative entry per likelihood.

Densities come from ``sympy.stats`` wherever SymPy has the distribution; the
few that SymPy lacks are written once here, each with its reference.
Parameter names follow ``torch.distributions`` where torch has the
distribution, ``sympy.stats`` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import sympy as sp
import sympy.stats as st

from ..special import loggamma
from .base import Distribution, Param, VectorSymbols

V = VectorSymbols()


def _pdf(rv) -> Callable[[sp.Expr], sp.Expr]:
    dist = rv.pspace.distribution
    # continuous and infinite discrete distributions have .pdf, finite ones (Bernoulli, Binomial) .pmf
    return getattr(dist, "pdf", None) or dist.pmf


def from_sympy(cls_name: str, *arg_names: str | Callable[[Mapping[str, sp.Expr]], sp.Expr]):
    """A density builder that evaluates ``sympy.stats.<cls_name>(*args)``'s density at y."""
    cls = getattr(st, cls_name)

    def build(y: sp.Expr, p: Mapping[str, sp.Expr]) -> sp.Expr:
        args = [a(p) if callable(a) else p[a] for a in arg_names]
        return _on_support(_pdf(cls("Y", *args))(y))

    build.__doc__ = f"sympy.stats.{cls_name}"
    return build


def loc_scale(standard: Callable[[sp.Expr, Mapping[str, sp.Expr]], sp.Expr]):
    """p(y | loc, scale) = f((y - loc)/scale)/scale for a standard density f."""

    def build(y: sp.Expr, p: Mapping[str, sp.Expr]) -> sp.Expr:
        loc = p.get("loc", sp.Integer(0))
        return standard((y - loc) / p["scale"], p) / p["scale"]

    return build


def _on_support(expr: sp.Expr) -> sp.Expr:
    """Drop SymPy's support indicator: the branch of a Piecewise that holds on the support."""
    if isinstance(expr, sp.Piecewise):
        live = [e for e, c in expr.args if c is not sp.false and not (e == 0 and c is sp.true)]
        if len(live) == 1:
            return live[0]
    return expr


def binary_form(cls_name: str, *arg_names: str):
    """For a {0, 1} target: p(y) = p(1)^y · p(0)^(1−y), built from SymPy's pmf at 0 and at 1."""
    cls = getattr(st, cls_name)

    def build(y: sp.Expr, p: Mapping[str, sp.Expr]) -> sp.Expr:
        pmf = _pdf(cls("Y", *[p[a] for a in arg_names]))
        return pmf(sp.Integer(1)) ** y * pmf(sp.Integer(0)) ** (1 - y)

    return build


def _sech_density(r: sp.Expr, p) -> sp.Expr:
    # hyperbolic secant on the scale where its NLL is log cosh: f(r) = sech(r)/π
    return sp.sech(r) / sp.pi


def _asymmetric_laplace(y: sp.Expr, p) -> sp.Expr:
    # quantile parameterisation: f = τ(1−τ)/σ · exp(−ρ_τ((y−μ)/σ)), ρ_τ(r) = r(τ − 1[r<0]) = (τ − ½)r + |r|/2
    tau, r = p["quantile"], (y - p["loc"]) / p["scale"]
    return tau * (1 - tau) / p["scale"] * sp.exp(-((tau - sp.Rational(1, 2)) * r + sp.Abs(r) / 2))


def _continuous_bernoulli(y: sp.Expr, p) -> sp.Expr:
    # C(λ) λ^y (1−λ)^(1−y), C(λ) = 2 artanh(1−2λ)/(1−2λ) (a removable singularity at λ = ½, where C = 2)
    # 2 artanh(1−2λ) = log((1−λ)/λ); both it and 1−2λ change sign at λ = ½, so C is written as a ratio of
    # absolute values: the log of each factor is then real on the whole support (expand_log splits them)
    lam = p["probs"]
    norm = sp.Abs(sp.log((1 - lam) / lam)) / sp.Abs(1 - 2 * lam)
    return norm * lam**y * (1 - lam) ** (1 - y)


def _geometric_failures(y: sp.Expr, p) -> sp.Expr:
    # torch counts failures before the first success (support 0, 1, ...); sympy counts trials (1, 2, ...)
    return _pdf(st.Geometric("Y", p["probs"]))(y + 1)


def _half(cls_name: str, *args: str):
    # a distribution symmetric about 0, folded onto y > 0: twice the density
    def build(y: sp.Expr, p) -> sp.Expr:
        return 2 * _pdf(getattr(st, cls_name)("Y", 0, *[p[a] for a in args]))(y)

    return build


# -- class-axis (vector) entries: the class axis is indexed by k = 0 … K−1 -------------------------------
def _categorical(y, p):
    # y is a one-hot (or probability) vector over the classes
    return sp.Product(p["probs"][V.k] ** y[V.k], (V.k, 0, V.K - 1))


def _categorical_log(y, p):
    return sp.Sum(y[V.k] * sp.log(p["probs"][V.k]), (V.k, 0, V.K - 1))


def _multinomial(y, p):
    n = p["total_count"]
    return sp.factorial(n) * sp.Product(p["probs"][V.k] ** y[V.k] / sp.factorial(y[V.k]), (V.k, 0, V.K - 1))


def _multinomial_log(y, p):
    n = p["total_count"]
    return loggamma(n + 1) + sp.Sum(y[V.k] * sp.log(p["probs"][V.k]) - loggamma(y[V.k] + 1), (V.k, 0, V.K - 1))


def _dirichlet(y, p):
    a = p["concentration"]
    total = sp.Sum(a[V.k], (V.k, 0, V.K - 1))
    return sp.gamma(total) * sp.Product(y[V.k] ** (a[V.k] - 1) / sp.gamma(a[V.k]), (V.k, 0, V.K - 1))


def _dirichlet_log(y, p):
    a = p["concentration"]
    total = sp.Sum(a[V.k], (V.k, 0, V.K - 1))
    return loggamma(total) + sp.Sum((a[V.k] - 1) * sp.log(y[V.k]) - loggamma(a[V.k]), (V.k, 0, V.K - 1))


LOG_DENSITIES = {"Categorical": _categorical_log, "Multinomial": _multinomial_log, "Dirichlet": _dirichlet_log}

P = Param
_loc = P("loc", "real", "location")
_scale = P("scale", "positive", "scale")
_probs = P("probs", "unit_interval", "probability of a success")

ENTRIES: tuple[Distribution, ...] = (
    # ---- continuous, real support ------------------------------------------------------------------
    Distribution(
        "Normal", (_loc, _scale), "real", from_sympy("Normal", "loc", "scale"), "sympy.stats.Normal",
        "Gauss (1809); Bishop, PRML (2006) §2.3", {"scale": "log"}, ("gaussian", "norm"), "Normal", "norm",
    ),
    Distribution(
        "Laplace", (_loc, _scale), "real", from_sympy("Laplace", "loc", "scale"), "sympy.stats.Laplace",
        "Laplace (1774); Johnson, Kotz & Balakrishnan, Continuous Univariate Distributions vol. 2, ch. 24",
        {"scale": "log"}, ("double_exponential",), "Laplace", "laplace",
    ),
    Distribution(
        "Cauchy", (_loc, _scale), "real", from_sympy("Cauchy", "loc", "scale"), "sympy.stats.Cauchy",
        "Johnson, Kotz & Balakrishnan vol. 1, ch. 16", {"scale": "log"}, ("lorentz", "lorentzian"), "Cauchy",
        "cauchy",
    ),
    Distribution(
        "StudentT", (P("df", "positive", "degrees of freedom"), _loc, _scale), "real",
        loc_scale(lambda r, p: _pdf(st.StudentT("Y", p["df"]))(r)), "sympy.stats.StudentT (location-scale)",
        "Student (1908); Lange, Little & Taylor, JASA 84 (1989)", {"scale": "log"},
        ("student", "student_t", "t"), "StudentT", "t", default_fixed={},
    ),
    Distribution(
        "Logistic", (_loc, _scale), "real", from_sympy("Logistic", "loc", "scale"), "sympy.stats.Logistic",
        "Johnson, Kotz & Balakrishnan vol. 2, ch. 23", {"scale": "log"}, (), None, "logistic",
    ),
    Distribution(
        "Gumbel", (_loc, _scale), "real", from_sympy("Gumbel", "scale", "loc"), "sympy.stats.Gumbel",
        "Gumbel (1958), Statistics of Extremes", {"scale": "log"}, ("gumbel_r",), "Gumbel", "gumbel_r",
    ),
    Distribution(
        "HyperbolicSecant", (_loc, _scale), "real", loc_scale(_sech_density),
        "hand-written (sympy.stats has no hyperbolic secant distribution)",
        "Johnson, Kotz & Balakrishnan vol. 2, ch. 23 §10; its NLL is the log-cosh loss", {"scale": "log"},
        ("hypsecant", "sech", "log_cosh", "logcosh"), None, "hypsecant",
    ),
    Distribution(
        "AsymmetricLaplace", (_loc, _scale, P("quantile", "unit_interval", "quantile level τ")), "real",
        _asymmetric_laplace, "hand-written (sympy.stats has no asymmetric Laplace distribution)",
        "Yu & Moyeed, Statistics & Probability Letters 54 (2001): quantile parameterisation; "
        "its NLL with fixed scale is the pinball (quantile) loss",
        {"scale": "log"}, ("ald", "quantile", "pinball", "laplace_asymmetric"), None, "laplace_asymmetric",
        notes="scipy.stats.laplace_asymmetric(kappa, loc, s) with kappa = sqrt(τ/(1−τ)), s = scale/sqrt(τ(1−τ))",
    ),
    # ---- continuous, positive support -----------------------------------------------------------------
    Distribution(
        "LogNormal", (_loc, _scale), "positive", from_sympy("LogNormal", "loc", "scale"),
        "sympy.stats.LogNormal", "Johnson, Kotz & Balakrishnan vol. 1, ch. 14", {"scale": "log"},
        ("lognorm", "log_normal"), "LogNormal", "lognorm",
    ),
    Distribution(
        "HalfNormal", (_scale,), "positive", loc_scale(lambda r, p: _pdf(st.Chi("Y", 1))(r)),
        "sympy.stats.Chi with k = 1 (the half-normal), scaled", "Johnson, Kotz & Balakrishnan vol. 1, ch. 13",
        {"scale": "log"}, ("halfnorm", "half_normal"), "HalfNormal", "halfnorm",
    ),
    Distribution(
        "HalfCauchy", (_scale,), "positive", _half("Cauchy", "scale"), "sympy.stats.Cauchy, folded onto y > 0",
        "Gelman, Bayesian Analysis 1 (2006)", {"scale": "log"}, ("half_cauchy", "halfcauchy"), "HalfCauchy",
        "halfcauchy",
    ),
    Distribution(
        "Exponential", (P("rate", "positive", "rate λ"),), "positive", from_sympy("Exponential", "rate"),
        "sympy.stats.Exponential", "Johnson, Kotz & Balakrishnan vol. 1, ch. 19", {"rate": "log"},
        ("exp", "expon"), "Exponential", "expon",
    ),
    Distribution(
        "Gamma", (P("concentration", "positive", "shape α"), P("rate", "positive", "rate β")), "positive",
        from_sympy("Gamma", "concentration", lambda p: 1 / p["rate"]), "sympy.stats.Gamma (scale = 1/rate)",
        "Johnson, Kotz & Balakrishnan vol. 1, ch. 17; McCullagh & Nelder, GLMs (1989) ch. 8",
        {"concentration": "log", "rate": "log"}, (), "Gamma", "gamma",
    ),
    Distribution(
        "InverseGamma", (P("concentration", "positive", "shape α"), P("rate", "positive", "scale β")),
        "positive", from_sympy("GammaInverse", "concentration", "rate"), "sympy.stats.GammaInverse",
        "Johnson, Kotz & Balakrishnan vol. 1, ch. 17", {"concentration": "log", "rate": "log"},
        ("invgamma", "inverse_gamma", "gammainverse"), "InverseGamma", "invgamma",
    ),
    Distribution(
        "Weibull", (_scale, P("concentration", "positive", "shape k")), "positive",
        from_sympy("Weibull", "scale", "concentration"), "sympy.stats.Weibull",
        "Weibull (1951); Johnson, Kotz & Balakrishnan vol. 1, ch. 21", {"scale": "log", "concentration": "log"},
        ("weibull_min",), "Weibull", "weibull_min",
    ),
    Distribution(
        "Pareto", (_scale, P("alpha", "positive", "tail index")), "positive", from_sympy("Pareto", "scale", "alpha"),
        "sympy.stats.Pareto", "Johnson, Kotz & Balakrishnan vol. 1, ch. 20", {"alpha": "log"}, (), "Pareto",
        "pareto", support_note="y >= scale",
    ),
    Distribution(
        "Chi2", (P("df", "positive", "degrees of freedom"),), "positive", from_sympy("ChiSquared", "df"),
        "sympy.stats.ChiSquared", "Johnson, Kotz & Balakrishnan vol. 1, ch. 18", {"df": "log"},
        ("chisquared", "chi_squared", "chi_square"), "Chi2", "chi2",
    ),
    Distribution(
        "InverseGaussian", (P("mean", "positive", "mean μ"), P("shape", "positive", "shape λ")), "positive",
        from_sympy("GaussianInverse", "mean", "shape"), "sympy.stats.GaussianInverse",
        "Chhikara & Folks, The Inverse Gaussian Distribution (1989)", {"mean": "log", "shape": "log"},
        ("wald", "gaussianinverse", "inverse_gaussian", "invgauss"), None, "invgauss",
        notes="scipy.stats.invgauss(mu=mean/shape, scale=shape)",
    ),
    Distribution(
        "Rayleigh", (_scale,), "positive", from_sympy("Rayleigh", "scale"), "sympy.stats.Rayleigh",
        "Johnson, Kotz & Balakrishnan vol. 1, ch. 18 §4", {"scale": "log"}, (), None, "rayleigh",
    ),
    Distribution(
        "LogLogistic", (P("alpha", "positive", "scale (the median)"), P("beta", "positive", "shape")),
        "positive", from_sympy("LogLogistic", "alpha", "beta"), "sympy.stats.LogLogistic",
        "Bennett, Applied Statistics 32 (1983)", {"alpha": "log", "beta": "log"}, ("fisk",), None, "fisk",
    ),
    # ---- continuous, bounded support -------------------------------------------------------------------
    Distribution(
        "Beta", (P("concentration1", "positive", "α"), P("concentration0", "positive", "β")), "unit_interval",
        from_sympy("Beta", "concentration1", "concentration0"), "sympy.stats.Beta",
        "Johnson, Kotz & Balakrishnan vol. 2, ch. 25", {"concentration1": "log", "concentration0": "log"}, (),
        "Beta", "beta",
    ),
    Distribution(
        "Kumaraswamy", (P("concentration1", "positive", "a"), P("concentration0", "positive", "b")),
        "unit_interval", from_sympy("Kumaraswamy", "concentration1", "concentration0"), "sympy.stats.Kumaraswamy",
        "Kumaraswamy, J. Hydrology 46 (1980)", {"concentration1": "log", "concentration0": "log"}, (),
        "Kumaraswamy", None,
    ),
    Distribution(
        "ContinuousBernoulli", (_probs,), "closed_unit_interval", _continuous_bernoulli,
        "hand-written (sympy.stats has no continuous Bernoulli distribution)",
        "Loaiza-Ganem & Cunningham, NeurIPS 2019", {"probs": "logit"}, ("continuous_bernoulli", "cb"),
        "ContinuousBernoulli", None,
    ),
    Distribution(
        "VonMises", (_loc, P("concentration", "positive", "concentration κ")), "angle",
        from_sympy("VonMises", "loc", "concentration"), "sympy.stats.VonMises",
        "Mardia & Jupp, Directional Statistics (2000) §3.5", {"concentration": "log"}, ("von_mises", "vonmises"),
        "VonMises", "vonmises",
    ),
    # ---- discrete -----------------------------------------------------------------------------------------
    Distribution(
        "Bernoulli", (_probs,), "binary", binary_form("Bernoulli", "probs"),
        "sympy.stats.Bernoulli (pmf at 0 and 1, written p^y (1-p)^(1-y))", "McCullagh & Nelder, GLMs ch. 4",
        {"probs": "logit"}, ("binary", "logistic_regression"), "Bernoulli", "bernoulli",
    ),
    Distribution(
        "Binomial", (P("total_count", "nonnegative_integer", "number of trials n", trainable=False), _probs),
        "nonnegative_integer", from_sympy("Binomial", "total_count", "probs"), "sympy.stats.Binomial",
        "McCullagh & Nelder, GLMs ch. 4", {"probs": "logit"}, ("binom",), "Binomial", "binom",
        support_note="y <= total_count",
    ),
    Distribution(
        "Geometric", (_probs,), "nonnegative_integer", _geometric_failures,
        "sympy.stats.Geometric, shifted to count failures (torch's convention)",
        "Johnson, Kemp & Kotz, Univariate Discrete Distributions (2005) ch. 5", {"probs": "logit"}, ("geom",),
        "Geometric", "geom", notes="scipy.stats.geom counts trials: logpmf(y + 1)",
    ),
    Distribution(
        "Poisson", (P("rate", "positive", "rate λ"),), "nonnegative_integer", from_sympy("Poisson", "rate"),
        "sympy.stats.Poisson", "McCullagh & Nelder, GLMs ch. 6", {"rate": "log"}, ("poisson_regression",),
        "Poisson", "poisson",
    ),
    Distribution(
        "NegativeBinomial",
        (P("total_count", "positive", "number of failures r"), _probs),
        "nonnegative_integer", from_sympy("NegativeBinomial", "total_count", lambda p: 1 - p["probs"]),
        "sympy.stats.NegativeBinomial (p = 1 − probs)", "Hilbe, Negative Binomial Regression (2011)",
        {"probs": "logit"}, ("negbin", "nbinom", "negative_binomial", "nb"), "NegativeBinomial", "nbinom",
        notes="scipy.stats.nbinom(n=total_count, p=1−probs)",
    ),
    Distribution(
        "Skellam", (P("mu1", "positive", "rate of the first Poisson"), P("mu2", "positive", "rate of the second")),
        "integer", from_sympy("Skellam", "mu1", "mu2"), "sympy.stats.Skellam",
        "Skellam, JRSS 109 (1946)", {"mu1": "log", "mu2": "log"}, (), None, "skellam",
    ),
    # ---- class axis -----------------------------------------------------------------------------------
    Distribution(
        "Categorical", (P("probs", "simplex", "class probabilities"),), "class_index", _categorical,
        "hand-written as Π p_k^{y_k} over one-hot y (sympy.stats has only finite named-outcome variables)",
        "Bishop, PRML (2006) §4.3.4 (softmax cross-entropy)", {"probs": "softmax"},
        ("multinoulli", "softmax", "cross_entropy", "categorical_cross_entropy"), "Categorical", None,
        event="vector",
    ),
    Distribution(
        "Multinomial", (P("total_count", "nonnegative_integer", "number of trials n", trainable=False),
                        P("probs", "simplex", "class probabilities")), "count_vector", _multinomial,
        "hand-written over a symbolic number of classes K (sympy.stats.Multinomial needs a fixed K; "
        "the tests check them equal at K = 3)", "Johnson, Kotz & Balakrishnan, Discrete Multivariate "
        "Distributions (1997) ch. 35", {"probs": "softmax"}, (), "Multinomial", "multinomial", event="vector",
    ),
    Distribution(
        "Dirichlet", (P("concentration", "positive_vector", "concentrations α_k"),), "simplex", _dirichlet,
        "hand-written over a symbolic number of classes K (sympy.stats.MultivariateBeta needs a fixed K; "
        "the tests check them equal at K = 3)", "Kotz, Balakrishnan & Johnson, Continuous Multivariate "
        "Distributions (2000) ch. 49", {"concentration": "log"}, ("multivariate_beta",), "Dirichlet", "dirichlet",
        event="vector",
    ),
)
