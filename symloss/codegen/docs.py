"""The facts a generated module's docstring states: formula, origin, links, dropped constant, known loss, rules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sympy as sp

from ..loss import Loss
from ..stabilize import Rule

if TYPE_CHECKING:
    from .model import ModuleModel

__all__ = ["module_doc", "known_as_text", "BUILTIN_CAVEATS"]

#: Losses that are not the negative log-likelihood of one distribution, by Loss.kind.
_KIND_TITLES = {"kl": "a KL divergence", "elbo": "the negative ELBO", "gan": "a GAN objective"}

#: Where a torch built-in departs from the exact formula, by KnownLoss key.
BUILTIN_CAVEATS: dict[str, str] = {
    "gaussian_nll": "torch clamps var from below at eps=1e-6 (and its full=True adds the same 0.5·log 2π)",
    "poisson_nll": "torch's full=True adds Stirling's approximation of log y! (for y > 1), not log y! itself",
    "poisson_nll_rate": "torch computes log(input + eps) with eps=1e-8 (a 1e-8 relative change)",
    "bce": "torch clamps each log at −100 (probabilities below 3.7e-44 or above 1 − 3.7e-44)",
    "cross_entropy": "torch's per-class weight= averages by Σ w_y under reduction='mean'; weight= here is per "
                     "observation, averaged by N",
}


def _text(expr: sp.Basic) -> str:
    return sp.sstr(expr)


def known_as_text(loss: Loss, *, per_element: bool = True) -> str | None:
    """``ℓ = 1/2 × torch.nn.functional.mse_loss(loc, y, reduction="none") + const`` or None."""
    k = loss.known_as
    if k is None:
        return None
    factor = "" if k.factor == 1 else f"{_text(k.factor)} × "
    if k.torch is None:
        return f"{factor}the {k.name}"
    args = [f"{role}={name}" for role, name in k.arguments.items()]
    kwargs = [f"{key}={value!r}" for key, value in k.torch_kwargs.items()]
    if per_element:
        kwargs.append('reduction="none"')
    call = f"{k.torch}({', '.join([*args, 'target=' + str(loss.target), *kwargs])})"
    axis = " (torch puts the classes on dim 1, these modules on the last axis)" if loss.event == "vector" else ""
    return f"{factor}{call}, the {k.name}{axis}"


def _links(loss: Loss) -> list[str]:
    out = []
    for pname, link in loss.links.items():
        out.append(f"{pname} = {_text(loss.parameters[pname])}  ({link} link)")
    return out


def _fixed(loss: Loss) -> list[str]:
    out = []
    for pname, value in loss.fixed.items():
        if isinstance(value, sp.Symbol):
            out.append(f"{pname}: a named constant, keyword argument {value}")
        else:
            out.append(f"{pname} = {_text(value)}")
    return out


def module_doc(loss: Loss, model: ModuleModel, rules: Sequence[Rule]) -> dict[str, Any]:
    """The docstring's content as plain data (the template lays it out)."""
    dist = loss.distribution
    if dist is not None:
        params = ", ".join(dist.param_names)
        origin = f"{dist.name}({params}); density: {dist.source}"
        reference = dist.reference
        title_what = f"the {dist.name} negative log-likelihood"
    else:
        origin = "a custom density" if loss.kind == "custom" else _KIND_TITLES.get(loss.kind, f"a {loss.kind}")
        reference = ""
        title_what = origin if loss.kind in _KIND_TITLES else f"the negative log-likelihood of {origin}"
    from .targets import get_target

    library = get_target(model.target).library
    inputs = [
        f"{a.name}{' (trained)' if a.trained else ''}: {a.description}" for a in model.inputs
    ]
    gradients = [f"∂ℓ/∂{s} = {_text(g)}" for s, g in loss.gradient.items()]
    return {
        "title": f"{loss.name}: {title_what} ({library}, closed-form gradients).",
        "loss": _text(loss.expr),
        "constant": _text(loss.constant),
        "origin": origin,
        "reference": reference,
        "links": _links(loss),
        "fixed": _fixed(loss),
        "inputs": inputs,
        "target": f"{model.target_arg.symbol}: {model.target_arg.description}",
        "constants": [f"{a.name}: {a.description}" for a in model.constants],
        "gradients": gradients,
        "known_as": known_as_text(loss),
        "caveat": BUILTIN_CAVEATS.get(loss.known_as.key) if loss.known_as is not None else None,
        "rules": [(r.name, r.pattern) for r in rules],
        "penalty": None if loss.penalty is None else f"the MAP penalty {loss.penalty.norm} ({loss.penalty.prior} prior "
        "on the model's weights) is not part of this module; add it to the reduced loss",
        "event": loss.event,
    }
