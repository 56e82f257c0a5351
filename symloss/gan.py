"""GAN losses: the discriminator's and the generator's, on discriminator outputs for real and fake samples.

``gan(kind)`` returns a :class:`GAN` with two :class:`~symloss.loss.Loss` objects:

=================  =========================================================  ==========================
kind               discriminator ℓ_D                                          generator ℓ_G
=================  =========================================================  ==========================
minimax            −log D(x) − log(1 − D(G(z))): Bernoulli NLL, labels 1 / 0   log(1 − D(G(z)))
non_saturating     the same                                                   −log D(G(z)): NLL, label 1
least_squares      ½(D(x) − 1)² + ½D(G(z))²: unit-variance Normal NLL          ½(D(G(z)) − 1)²
hinge              max(0, 1 − D(x)) + max(0, 1 + D(G(z)))                     −D(G(z))
wasserstein        D(G(z)) − D(x) (a critic; keep it Lipschitz yourself)      −D(G(z))
=================  =========================================================  ==========================

For minimax and non_saturating the inputs are the discriminator's logits ``real_logits`` and
``fake_logits`` (D = sigmoid(logit)) and the losses are derived from the registry Bernoulli NLL with the
logit link; least_squares is derived from the Normal NLL with scale 1; hinge and wasserstein are not
likelihoods and are written down (Lim & Ye 2017; Arjovsky, Chintala & Bottou 2017), their inputs the
scores ``real_scores`` and ``fake_scores``.  References: Goodfellow et al. 2014 (minimax, non-saturating),
Mao et al. 2017 (least squares).

:func:`saturation` decides whether a generator loss saturates — its gradient vanishes as the discriminator
rejects the fakes, i.e. as the fake logit → −∞ — by a symbolic limit of the gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .budget import DEFAULT_BUDGET, Deadline, run_with_budget
from .compose import assemble, placeholder_target
from .derive import derive
from .errors import BudgetExceeded, UnknownNameError
from .loss import Loss, Step

__all__ = ["GAN", "gan", "saturation", "KINDS"]

KINDS = ("minimax", "non_saturating", "least_squares", "hinge", "wasserstein")
_ALIASES = {"saturating": "minimax", "standard": "minimax", "nonsaturating": "non_saturating", "ns": "non_saturating",
            "lsgan": "least_squares", "ls": "least_squares", "wgan": "wasserstein"}


@dataclass(frozen=True)
class GAN:
    """The discriminator's and the generator's losses of one GAN formulation."""

    kind: str
    discriminator: Loss
    generator: Loss

    def saturation(self, budget: float | None = DEFAULT_BUDGET):
        """Whether the generator loss saturates: a :class:`~symloss.analysis.Verdict`."""
        return saturation(self.generator, budget=budget)

    def __iter__(self):  # d_loss, g_loss = gan("hinge")
        return iter((self.discriminator, self.generator))


def _relu(x: sp.Expr) -> sp.Expr:
    """max(0, x)."""
    return sp.Piecewise((x, x > 0), (0, True))


def _nll_at(loss: Loss, label: int, logit: sp.Symbol, *, constants: bool = True) -> sp.Expr:
    """A derived NLL (without its constant if ``constants`` is False) at target ``label``, input renamed ``logit``."""
    (inp,) = loss.inputs
    return sp.expand((loss.nll if constants else loss.expr).subs({loss.target: label, inp: logit}))


def gan(kind: str = "non_saturating", *, budget: float | None = DEFAULT_BUDGET) -> GAN:
    """The GAN losses of ``kind``: "minimax" | "non_saturating" | "least_squares" | "hinge" | "wasserstein"."""
    key = str(kind).strip().lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key.replace("_", ""), _ALIASES.get(key, key))
    if key not in KINDS:
        raise UnknownNameError("GAN kind", str(kind), KINDS)
    deadline = Deadline(None if budget is None else 4 * budget)
    from .derive import _left

    if key in ("minimax", "non_saturating"):
        base = derive("bernoulli", link="logit", budget=budget)
        r, f = sp.Symbol("real_logits", real=True), sp.Symbol("fake_logits", real=True)
        origin = (f"Bernoulli NLL with the logit link (D = sigmoid(logit)): −log p(y | logits) = {base.nll}",
                  "−log p(y | logits)", base.nll)
        d_full = _nll_at(base, 1, r) + _nll_at(base, 0, f)
        d_text = "Discriminator: Bernoulli NLL of label 1 on real samples plus label 0 on fakes (binary cross-entropy)"
        if key == "minimax":
            g_full = -_nll_at(base, 0, f)
            g_text = ("Generator (minimax, Goodfellow et al. 2014): maximise the discriminator's NLL on fakes, i.e. "
                      "minimise log(1 − D(G(z))) = −(NLL of label 0)")
        else:
            g_full = _nll_at(base, 1, f)
            g_text = ("Generator (non-saturating, Goodfellow et al. 2014): the NLL of label 1 on fakes, "
                      "−log D(G(z))")
    elif key == "least_squares":
        base = derive("normal", fixed={"scale": 1}, budget=budget)
        r, f = sp.Symbol("real_scores", real=True), sp.Symbol("fake_scores", real=True)
        origin = (f"Normal NLL with scale 1 in the score: −log p(y | loc) = {base.nll}", "−log p(y | loc)", base.nll)
        # the normaliser log √(2π) of each term is not part of the least-squares losses: drop it
        d_full = _nll_at(base, 1, r, constants=False) + _nll_at(base, 0, f, constants=False)
        d_text = ("Discriminator (least squares, Mao et al. 2017): unit-variance Normal NLL (without log √(2π)) of "
                  "target 1 on real samples and 0 on fakes")
        g_full = _nll_at(base, 1, f, constants=False)
        g_text = "Generator (least squares): unit-variance Normal NLL of target 1 on fakes, ½(D(G(z)) − 1)²"
    else:
        r, f = sp.Symbol("real_scores", real=True), sp.Symbol("fake_scores", real=True)
        if key == "hinge":
            # max(0, 1 − x) as a Piecewise: both code generation targets print it as a `where`
            d_full = _relu(1 - r) + _relu(1 + f)
            origin = ("Hinge loss (Lim & Ye 2017; Miyato et al. 2018): not a likelihood, written down", "ℓ_D",
                      d_full)
            d_text = "Discriminator (hinge): max(0, 1 − D(x)) + max(0, 1 + D(G(z)))"
        else:
            origin = ("Wasserstein critic (Arjovsky, Chintala & Bottou 2017): the dual of the Earth-Mover distance, "
                      "valid for a 1-Lipschitz critic (enforce it by clipping or a gradient penalty)", "ℓ_D", f - r)
            d_full = f - r
            d_text = "Critic (Wasserstein): D(G(z)) − D(x)"
        g_full = -f
        g_text = f"Generator ({key}): −D(G(z))"
    target = placeholder_target()
    first = Step("origin", origin[0], origin[1], origin[2])
    d_loss = assemble(name=f"gan_{key}_discriminator", full=d_full, target=target, inputs=(r, f), wrt=(r, f),
                      steps=[first, Step("discriminator", d_text, "ℓ_D", d_full)], domains={}, kind="gan",
                      deadline=deadline, budget=_left(deadline, budget),
                      metadata={"gan": key, "role": "discriminator"},
                      loss_text="The discriminator's training loss (its gradient flows into D's weights through "
                                "both inputs)")
    g_loss = assemble(name=f"gan_{key}_generator", full=g_full, target=target, inputs=(f,), wrt=(f,),
                      steps=[first, Step("generator", g_text, "ℓ_G", g_full)], domains={}, kind="gan",
                      deadline=deadline, budget=_left(deadline, budget), metadata={"gan": key, "role": "generator"},
                      loss_text="The generator's training loss (its gradient flows into G through D)")
    return GAN(key, d_loss, g_loss)


def saturation(loss: Loss, input: str | None = None, *, budget: float | None = DEFAULT_BUDGET):
    """Whether ``loss`` saturates: ∂ℓ/∂x → 0 as x → −∞ (x: the fake logit or score, the loss's one input).

    A :class:`~symloss.analysis.Verdict` named "saturates": "proved" when the limit of the gradient is 0,
    "disproved" (the limit as the witness) when it is another number or ±∞, "unknown" when SymPy finds no
    limit within the budget.
    """
    from .analysis import Verdict

    s = loss.input(input) if input is not None else loss.wrt[0]
    grad = loss.gradient.get(s)
    if grad is None:
        grad = sp.diff(loss.expr, s)
    try:
        lim = run_with_budget(lambda: sp.limit(grad, s, -sp.oo), budget, "limit of the gradient")
    except BudgetExceeded:
        return Verdict("saturates", "unknown", f"no limit of ∂ℓ/∂{s} as {s} → −∞ within the budget")
    except (NotImplementedError, ValueError, TypeError):
        return Verdict("saturates", "unknown", f"SymPy found no limit of ∂ℓ/∂{s} as {s} → −∞")
    details = {"gradient": grad, "limit": lim, "input": str(s)}
    if lim == 0:
        return Verdict("saturates", "proved", f"∂ℓ/∂{s} = {grad} → 0 as {s} → −∞ (symbolic limit): the gradient "
                                              "vanishes when the discriminator confidently rejects the fakes",
                       details)
    if lim.is_number and (lim.is_finite or lim in (sp.oo, -sp.oo)) and not lim.has(sp.nan, sp.AccumBounds):
        return Verdict("saturates", "disproved", f"∂ℓ/∂{s} = {grad} → {lim} ≠ 0 as {s} → −∞ (symbolic limit)",
                       details, witness={input or str(s): "-oo", f"lim d loss/d {s}": str(lim)})
    return Verdict("saturates", "unknown", f"the limit of ∂ℓ/∂{s} as {s} → −∞ is {lim}, not a number", details)
