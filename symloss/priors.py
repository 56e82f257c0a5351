"""MAP: a prior on the model's weights becomes a penalty (Gaussian → weight decay, Laplace → L1).

Declared as data: each prior names its ``sympy.stats`` density (centred at 0
with scale τ), the norm of the penalty it gives, and the default name of its
scale symbol.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sympy as sp
import sympy.stats as st

from .derive import expand_log_density, split_constant
from .errors import DomainError, UnknownNameError
from .loss import Loss, Penalty, Step

__all__ = ["PRIORS", "Prior", "apply_prior", "penalty_for"]


@dataclass(frozen=True)
class Prior:
    name: str
    sympy_class: str
    kind: str  # l2 | l1 | log
    norm: str
    scale_name: str
    description: str


PRIORS: dict[str, Prior] = {
    "normal": Prior("normal", "Normal", "l2", "‖w‖₂²", "tau", "Gaussian prior N(0, τ²): weight decay (L2)"),
    "laplace": Prior("laplace", "Laplace", "l1", "‖w‖₁", "b", "Laplace prior with scale b: L1 (lasso)"),
    "cauchy": Prior("cauchy", "Cauchy", "log", "Σ log(1 + w²/γ²)", "gamma_", "Cauchy prior: a log penalty"),
}
_ALIASES = {"gaussian": "normal", "l2": "normal", "weight_decay": "normal", "ridge": "normal", "l1": "laplace",
            "lasso": "laplace", "double_exponential": "laplace"}


def _parse(prior: Any) -> tuple[str, Prior, Any]:
    on = "weights"
    if isinstance(prior, Mapping):
        if len(prior) != 1:
            raise DomainError("give one prior, e.g. prior={'weights': 'normal'}")
        ((on, prior),) = prior.items()
    scale: Any = None
    if isinstance(prior, (tuple, list)):
        prior, scale = prior
    if isinstance(prior, str) and ":" in prior:
        prior, scale = prior.split(":", 1)
    key = str(prior).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in PRIORS:
        raise UnknownNameError("prior", str(prior), [*PRIORS, *_ALIASES])
    return str(on), PRIORS[key], scale


def penalty_for(prior: Any, coefficient_factor: sp.Expr | None = None) -> tuple[Penalty, list[Step]]:
    """The penalty (negative log-prior of one weight, constants dropped) and its derivation steps."""
    on, pr, scale = _parse(prior)
    from .identifiers import validate_identifier

    validate_identifier(on, role="weight name")
    w = sp.Symbol(f"{on}_j" if on != "w" else "w_j", real=True)
    if scale is None or (isinstance(scale, str) and scale.strip().isidentifier()):
        tau = sp.Symbol(scale.strip() if isinstance(scale, str) else pr.scale_name, positive=True)
    else:
        try:
            tau = sp.nsimplify(float(scale), rational=True)
        except (TypeError, ValueError):
            raise DomainError(f"prior scale {scale!r} is not a number or a name") from None
        if not tau > 0:
            raise DomainError(f"prior scale must be positive, got {scale!r}")
    density = getattr(st, pr.sympy_class)("W", 0, tau).pspace.distribution.pdf(w)
    nlp = -expand_log_density(sp.log(density))
    expr, const = split_constant(sp.expand(nlp, mul=False, log=False), [w])
    grad = sp.diff(expr, w)
    coefficient = None
    if coefficient_factor is not None:
        unit = {"l2": w**2, "l1": sp.Abs(w)}.get(pr.kind)
        if unit is not None:
            per_norm = sp.simplify(expr / unit)
            coefficient = sp.simplify(per_norm / coefficient_factor)
    pen = Penalty(prior=pr.name, kind=pr.kind, weight=w, scale=tau, expr=expr, gradient=grad, constant=const,
                  coefficient=coefficient, norm=pr.norm)
    steps = [
        Step("prior", f"Prior on each weight {on}_j: {pr.description} (sympy.stats.{pr.sympy_class})",
             f"p({w})", density),
        Step("penalty", "Its negative log, constants dropped: the penalty added once per weight", f"-log p({w})",
             expr),
    ]
    return pen, steps


def apply_prior(loss: Loss, prior: Any) -> Loss:
    """MAP: attach the penalty of ``prior`` to ``loss`` (the objective is Σ_i ℓ_i + Σ_j penalty(w_j))."""
    factor = loss.known_as.factor if loss.known_as is not None else None
    taken = {str(s) for s in (*loss.inputs, *loss.constants, loss.target)}
    on, pr, scale = _parse(prior)
    if scale is None and pr.scale_name in taken:
        # the default scale name is taken by the likelihood (a quantile called tau): pick a fresh one
        name = f"{pr.scale_name}_w"
        while name in taken:
            name += "_"
        prior = {on: (pr.name, name)}
    pen, steps = penalty_for(prior, factor)
    if pen.coefficient is not None and loss.known_as is not None:
        steps.append(Step(
            "map",
            f"MAP objective over the data set: Σ_i ℓ_i + Σ_j penalty = {loss.known_as.factor}·"
            f"[Σ_i {loss.known_as.name} + λ {pen.norm}] with λ = {pen.coefficient}",
            "λ", pen.coefficient,
        ))
    return dataclasses.replace(loss, penalty=pen, steps=loss.steps + tuple(steps))
