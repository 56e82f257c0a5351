"""symloss.gan: GAN losses against hand-checked values and the saturation verdicts."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F

import symloss

KINDS = ("minimax", "non_saturating", "least_squares", "hinge", "wasserstein")
REAL = np.array([2.0, -0.7, 0.3, 1.4])
FAKE = np.array([-3.0, 0.5, -0.2, 1.1])


@functools.cache
def losses(kind):
    return symloss.gan(kind)


def reference(kind: str, r: torch.Tensor, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ℓ_D, ℓ_G) per sample, written by hand from the papers."""
    ones, zeros = torch.ones_like(r), torch.zeros_like(r)
    bce = functools.partial(F.binary_cross_entropy_with_logits, reduction="none")
    if kind == "minimax":
        return bce(r, ones) + bce(f, zeros), torch.log(1 - torch.sigmoid(f))
    if kind == "non_saturating":
        return bce(r, ones) + bce(f, zeros), bce(f, ones)
    if kind == "least_squares":
        return 0.5 * (r - 1) ** 2 + 0.5 * f**2, 0.5 * (f - 1) ** 2
    if kind == "hinge":
        return torch.relu(1 - r) + torch.relu(1 + f), -f
    return f - r, -f


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_gan_losses_match_hand_written(kind, target):
    g = losses(kind)
    d_mod, g_mod = symloss.load(g.discriminator, target), symloss.load(g.generator, target)
    r = torch.tensor(REAL, requires_grad=True)
    f = torch.tensor(FAKE, requires_grad=True)
    d_ref, g_ref = reference(kind, r, f)
    conv = (lambda a: a) if target == "numpy" else torch.tensor
    d_val = d_mod.loss(conv(REAL), conv(FAKE), conv(np.zeros(4)), reduction="none", full=True)
    g_val = g_mod.loss(conv(FAKE), conv(np.zeros(4)), reduction="none", full=True)
    np.testing.assert_allclose(np.asarray(d_val), d_ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(g_val), g_ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    dr, df = torch.autograd.grad(d_ref.sum(), (r, f))
    (gf,) = torch.autograd.grad(g_ref.sum(), (f,))
    d_grads = d_mod.grad(conv(REAL), conv(FAKE), conv(np.zeros(4)), reduction="sum")
    (g_grad,) = g_mod.grad(conv(FAKE), conv(np.zeros(4)), reduction="sum")
    np.testing.assert_allclose(np.asarray(d_grads[0]), dr.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(d_grads[1]), df.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(g_grad), gf.numpy(), rtol=1e-10, atol=1e-12)


def test_minimax_discriminator_is_bce_with_logits():
    g = losses("minimax")
    r, f = g.discriminator.inputs
    assert (str(r), str(f)) == ("real_logits", "fake_logits")
    for rv, fv in [(0.3, -1.2), (4.0, 2.5), (-2.0, -0.1)]:
        ours = float(g.discriminator.nll.subs({r: rv, f: fv}))
        ref = float(F.binary_cross_entropy_with_logits(torch.tensor([rv, fv], dtype=torch.float64),
                                                       torch.tensor([1.0, 0.0], dtype=torch.float64), reduction="sum"))
        assert ours == pytest.approx(ref, rel=1e-12)
    # the derivation starts from the Bernoulli NLL
    assert "Bernoulli" in g.discriminator.steps[0].text


EXPECTED = {"minimax": "proved", "non_saturating": "disproved", "least_squares": "disproved",
            "hinge": "disproved", "wasserstein": "disproved"}


@pytest.mark.parametrize("kind", KINDS)
def test_saturation_verdicts(kind):
    v = losses(kind).saturation()
    assert v.name == "saturates" and v.status == EXPECTED[kind], v.reason
    if kind == "minimax":
        assert v.details["limit"] == 0
    if kind == "non_saturating":
        assert v.details["limit"] == -1 and v.witness


def test_saturation_numerically_consistent():
    # the minimax generator's gradient really is tiny at a very negative logit; the non-saturating one is not
    f = torch.tensor(-30.0, dtype=torch.float64, requires_grad=True)
    (gm,) = torch.autograd.grad(torch.log(1 - torch.sigmoid(f)), (f,))
    (gn,) = torch.autograd.grad(F.binary_cross_entropy_with_logits(f, torch.tensor(1.0, dtype=torch.float64)), (f,))
    assert abs(float(gm)) < 1e-12 and float(gn) == pytest.approx(-1.0)
    mm, ns = losses("minimax").generator, losses("non_saturating").generator
    assert abs(float(mm.gradient[mm.wrt[0]].subs(mm.wrt[0], -30))) < 1e-12
    assert float(ns.gradient[ns.wrt[0]].subs(ns.wrt[0], -30)) == pytest.approx(-1.0)


def test_saturation_unknown_is_honest():
    # a gradient with no limit at −∞ (it oscillates): neither proved nor disproved
    x = sp.Symbol("x", real=True)
    loss = symloss.custom("exp(-(y - mu)**2/2)/sqrt(2*pi)", params={"mu": "real"})
    mu = loss.input("mu")
    import dataclasses

    odd = dataclasses.replace(loss, expr=sp.sin(mu), gradient={mu: sp.cos(mu)})
    assert symloss.saturation(odd).status == "unknown"
    assert x.is_real


def test_unknown_kind_and_pipeline():
    with pytest.raises(symloss.SymlossError):
        symloss.gan("bogus")
    d, gen = symloss.gan("wgan")
    assert gen.expr == -gen.inputs[0]
    assert "fake" in symloss.to_latex(d)
