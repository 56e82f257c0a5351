"""Link functions, declared as data.

A link re-parameterises a constrained distribution parameter θ through an
input η that the model outputs: θ = g⁻¹(η).  Each :class:`Link` names the
parameter domains it fits, the domain of η, the inverse link (η ↦ θ) and the
link itself (θ ↦ η) for the derivation text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from .errors import LinkError, UnknownNameError

__all__ = ["Link", "LINKS", "get_link", "input_name"]


def _sigmoid(x: sp.Expr) -> sp.Expr:
    return 1 / (1 + sp.exp(-x))


@dataclass(frozen=True)
class Link:
    name: str
    description: str
    fits: tuple[str, ...]  # domains of θ it maps onto (θ's domain must be one of these)
    input_domain: str  # domain of η
    inverse: Callable[[sp.Expr], sp.Expr]  # η -> θ
    forward: Callable[[sp.Expr], sp.Expr]  # θ -> η


_LINKS = [
    Link("identity", "θ = η", ("real", "positive", "unit_interval", "nonnegative", "greater_than_one",
                                "real_vector", "positive_vector", "simplex", "angle"),
         "same", lambda e: e, lambda t: t),
    Link("log", "θ = exp(η)", ("positive", "positive_vector"), "real", sp.exp, sp.log),
    Link("softplus", "θ = log(1 + exp(η))", ("positive",), "real", lambda e: sp.log(1 + sp.exp(e)),
         lambda t: sp.log(sp.exp(t) - 1)),
    Link("logit", "θ = sigmoid(η) = 1 / (1 + exp(−η))", ("unit_interval",), "real", _sigmoid,
         lambda t: sp.log(t / (1 - t))),
    Link("probit", "θ = Φ(η) = erfc(−η/√2)/2", ("unit_interval",), "real",
         lambda e: sp.erfc(-e / sp.sqrt(2)) / 2, lambda t: -sp.sqrt(2) * sp.erfcinv(2 * t)),
    Link("cloglog", "θ = 1 − exp(−exp(η))", ("unit_interval",), "real", lambda e: 1 - sp.exp(-sp.exp(e)),
         lambda t: sp.log(-sp.log(1 - t))),
    Link("inverse", "θ = 1/η", ("positive",), "positive", lambda e: 1 / e, lambda t: 1 / t),
    Link("sqrt", "θ = η²  (η = √θ)", ("positive",), "positive", lambda e: e**2, sp.sqrt),
    # torch's gaussian_nll_loss takes the variance: scale = sqrt(var)
    Link("variance", "scale = √var  (var = scale²)", ("positive",), "positive", sp.sqrt, lambda t: t**2),
    Link("softmax", "θ = softmax(η) over the class axis", ("simplex",), "real_vector", lambda e: e, lambda t: t),
]

LINKS: dict[str, Link] = {lk.name: lk for lk in _LINKS}
_ALIASES = {"exp": "log", "sigmoid": "logit", "logistic": "logit", "id": "identity", "none": "identity",
            "reciprocal": "inverse", "var": "variance", "square": "variance"}

# input names established by torch or by the built-in losses, instead of <link>_<param>
_ESTABLISHED = {
    ("probs", "logit"): "logits",
    ("probs", "softmax"): "logits",
    ("scale", "variance"): "var",
}


def get_link(name: str) -> Link:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in LINKS:
        raise UnknownNameError("link", name, list(LINKS) + list(_ALIASES))
    return LINKS[key]


def input_name(param: str, link: Link) -> str:
    """The name of the model input that replaces ``param`` under ``link``."""
    if link.name == "identity":
        return param
    return _ESTABLISHED.get((param, link.name), f"{link.name}_{param}")


def check_link_fits(dist_name: str, param: str, domain_name: str, link: Link) -> None:
    if domain_name not in link.fits:
        fitting = sorted(n for n, lk in LINKS.items() if domain_name in lk.fits)
        raise LinkError(
            f"link {link.name!r} does not fit parameter {param!r} of {dist_name}: {param} lives in "
            f"{domain_name}, and {link.name!r} maps onto {', '.join(link.fits)}; links that fit: {', '.join(fitting)}"
        )
