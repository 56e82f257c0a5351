"""The negative ELBO of a VAE-style latent-variable model: reconstruction NLL + KL(q(z|x)‖p(z)).

``elbo("bernoulli")`` gives, for one observed element x and one latent coordinate,

    −ELBO = −log p(x | decoder(z)) + KL(q(z | x) ‖ p(z)),   z = μ + σ·ε,  ε ~ Normal(0, 1)

with a single reparameterised sample z (Kingma & Welling, ICLR 2014).  The reconstruction term is the
registry likelihood's NLL in the decoder's outputs (its inputs, e.g. ``logits``); the KL term is
:func:`symloss.kl` of the encoder's Gaussian against the prior, in the encoder's outputs ``q_loc`` and
``q_scale`` (``q_log_scale`` by default).  The gradient with respect to μ and σ of the reconstruction term
reaches them through the decoder and z = μ + σ·ε by back-propagation; the closed-form gradient of the KL term
is in the loss.

The two terms live on different axes in a VAE (data dimensions and latent dimensions): the combined loss
broadcasts its arguments elementwise, which matches a model with one latent coordinate per observed element.
For other shapes generate the two parts, ``loss.metadata["parts"]["reconstruction"]`` and
``loss.metadata["parts"]["kl"]``, and add their sums (``reduction="sum"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sympy as sp

from .budget import DEFAULT_BUDGET, Deadline
from .compose import assemble
from .derive import derive
from .divergence import kl
from .errors import DomainError
from .loss import Loss, Step

__all__ = ["elbo"]


def elbo(
    likelihood: str = "bernoulli",
    posterior: str = "normal",
    prior: str = "normal",
    *,
    link: Any = "canonical",
    fixed: Any = None,
    posterior_link: Mapping[str, str] | str | None = None,
    prior_fixed: Mapping[str, Any] | None = None,
    budget: float | None = DEFAULT_BUDGET,
    name: str | None = None,
) -> Loss:
    """The negative ELBO (a :class:`Loss`) of a VAE with the given likelihood, posterior and prior.

    Parameters
    ----------
    likelihood:
        The decoder's likelihood p(x | z), a registry name; ``link`` and ``fixed`` are passed to
        :func:`symloss.derive` for it (default: its canonical links, e.g. Bernoulli logits).
    posterior:
        The encoder's family q(z | x); ``"normal"`` (the reparameterisable Gaussian).
    prior:
        p(z): ``"normal"`` is the standard normal Normal(0, 1); another registry name uses ``prior_fixed``
        for its parameters (those not fixed become inputs ``p_<name>``).
    posterior_link:
        Links on the posterior's parameters (default ``{"scale": "log"}``: the encoder outputs log σ).
    """
    if str(posterior).strip().lower() not in ("normal", "gaussian"):
        raise DomainError("the posterior must be 'normal': the reparameterisation z = μ + σ·ε is Gaussian")
    deadline = Deadline(None if budget is None else 4 * budget)
    rec = derive(likelihood, link=link, fixed=fixed, budget=budget)
    if rec.event != "scalar":
        raise DomainError("the likelihood of the ELBO must be elementwise (not over a class axis)")
    p = "standard_normal" if str(prior).strip().lower() in ("normal", "gaussian", "standard_normal") else prior
    q_links = {"scale": "log"} if posterior_link is None else posterior_link
    div = kl("normal", p, link=q_links, fixed=prior_fixed, budget=budget)
    clash = set(rec.input_names) & set(div.input_names)
    if clash:
        raise DomainError(f"the likelihood and the KL term share input names {sorted(clash)}")
    mu, sigma, eps = sp.Symbol("mu", real=True), sp.Symbol("sigma", positive=True), sp.Symbol("epsilon", real=True)
    z = sp.Symbol("z", real=True)
    steps = [
        Step("model", "Encoder q(z | x) = Normal(μ, σ) with μ = q_loc and σ = q_scale from the encoder; prior "
                      f"p(z) = {'Normal(0, 1)' if p == 'standard_normal' else p}; decoder p(x | z) = "
                      f"{rec.distribution.name} whose parameters the decoder computes from z", "q(z | x)",
             sp.exp(-(z - mu) ** 2 / (2 * sigma**2)) / (sp.sqrt(2 * sp.pi) * sigma)),
        Step("reparameterise", "Reparameterisation (Kingma & Welling 2014): z = μ + σ·ε with ε ~ Normal(0, 1), so "
                               "z is a differentiable function of μ and σ and one sample estimates "
                               "E_q[log p(x | z)]", "z", mu + sigma * eps),
        Step("elbo", "Negative ELBO: −ELBO = E_q[−log p(x | z)] + KL(q(z | x) ‖ p(z)) ≥ −log p(x)", "−ELBO",
             sp.Symbol("E_q[-log p(x|z)]") + sp.Symbol("KL(q||p)")),
    ]
    steps += [Step(s.kind if s.kind not in ("loss", "drop") else f"reconstruction_{s.kind}",
                   f"Reconstruction term: {s.text}", s.lhs, s.expr) for s in rec.steps]
    steps += [Step(s.kind if s.kind not in ("loss", "drop") else f"kl_{s.kind}", f"KL term: {s.text}", s.lhs, s.expr)
              for s in div.steps]
    full = rec.nll + div.nll
    steps.append(Step("sum", "Add the reconstruction NLL (at the decoder's outputs for z = μ + σ·ε) and the KL "
                             "term", "−ELBO", full))
    inputs = (*rec.inputs, *div.inputs)
    wrt = (*rec.wrt, *div.wrt)
    gradient = {**rec.gradient, **div.gradient}  # the two terms share no input
    parameters = {**rec.parameters, **div.parameters}
    return assemble(
        name=name or f"elbo_{rec.name}", full=full, target=rec.target, inputs=inputs, wrt=wrt, steps=steps,
        domains={**rec.domains, **{k: v for k, v in div.domains.items() if k != div.target}}, kind="elbo",
        deadline=deadline, budget=budget, parameters=parameters, links={**rec.links, **div.links},
        fixed={**rec.fixed, **div.fixed}, constants=(*rec.constants, *div.constants), gradient=gradient,
        metadata={"parts": {"reconstruction": rec, "kl": div}, "reparameterisation": "z = mu + sigma * epsilon"},
        loss_text="The training loss: reconstruction NLL + KL without their constant terms",
    )
