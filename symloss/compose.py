"""Shared machinery for losses that are not one likelihood: KL divergences, the ELBO, GAN losses.

:func:`assemble` turns a full objective (constants kept) into a :class:`~symloss.loss.Loss` the rest of the
pipeline accepts: it drops the terms free of the trained inputs, differentiates within the budget, and
appends the ``drop`` and ``loss`` steps, exactly as :func:`symloss.derive` does for a likelihood.

These losses have no observation of their own (a KL divergence between two parametric distributions, a GAN
loss on discriminator logits).  The generated code still takes a target argument, so they carry a
*placeholder* target that the loss does not depend on: pass ``0`` for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sympy as sp

from .budget import Deadline
from .derive import _left, differentiate, split_constant
from .domains import Domain
from .errors import DomainError, UnknownNameError
from .loss import Loss, Step

__all__ = ["PLACEHOLDER", "placeholder_target", "assemble", "select_wrt"]

#: The domain of a placeholder target: the loss ignores it.
PLACEHOLDER = Domain("placeholder", "ignored: this loss has no observation, pass 0", assumptions={"real": True})


def placeholder_target(name: str = "unused") -> sp.Symbol:
    """A target symbol the loss does not depend on (the generated code still takes a target argument)."""
    return PLACEHOLDER.symbol(name)


def select_wrt(inputs: Sequence[sp.Basic], default: Sequence[sp.Basic], wrt: Sequence[str] | str | None,
               what: str) -> tuple[sp.Basic, ...]:
    """The trained inputs: ``default`` when ``wrt`` is None, else the inputs named in ``wrt``."""
    if wrt is None:
        return tuple(default)
    wanted = [wrt] if isinstance(wrt, str) else list(wrt)
    wanted = [w.strip() for item in wanted for w in str(item).split(",") if w.strip()]
    by_name = {str(s): s for s in inputs}
    out = []
    for w in wanted:
        if w not in by_name:
            raise UnknownNameError(f"input of {what}", w, by_name)
        out.append(by_name[w])
    if not out:
        raise DomainError("wrt is empty: name at least one input to train")
    return tuple(out)


def assemble(*, name: str, full: sp.Expr, target: sp.Symbol, inputs: Sequence[sp.Basic], wrt: Sequence[sp.Basic],
             steps: Sequence[Step], domains: Mapping[sp.Basic, Domain], kind: str,
             deadline: Deadline, budget: float | None, distribution: Any = None,
             parameters: Mapping[str, sp.Expr] | None = None, links: Mapping[str, str] | None = None,
             fixed: Mapping[str, sp.Expr] | None = None, constants: Sequence[sp.Symbol] = (),
             metadata: Mapping[str, Any] | None = None, event: str = "scalar",
             gradient: Mapping[sp.Basic, sp.Expr] | None = None, loss_text: str = "The training loss") -> Loss:
    """A :class:`Loss` from the full objective ``full`` (its ``nll``): drop constants, differentiate."""
    steps = list(steps)
    expr, constant = split_constant(full, list(wrt))
    if constant != 0:
        steps.append(Step("drop", "Drop the terms that do not depend on the trained inputs "
                                  f"({', '.join(map(str, wrt))}); they are constant during training",
                          "const", constant))
    vector = (metadata or {}).get("vector")
    if gradient is None:
        gradient = {s: differentiate(expr, s, vector=vector, budget=_left(deadline, budget)) for s in wrt}
    steps.append(Step("loss", loss_text, "ℓ", expr))
    doms = dict(domains)
    doms.setdefault(target, PLACEHOLDER)
    return Loss(name=name, distribution=distribution, target=target, inputs=tuple(inputs), wrt=tuple(wrt),
                nll=full, expr=expr, constant=constant, gradient=dict(gradient), steps=tuple(steps), domains=doms,
                links=dict(links or {}), parameters=dict(parameters or {}), fixed=dict(fixed or {}),
                constants=tuple(constants), event=event, kind=kind, metadata=dict(metadata or {}))
