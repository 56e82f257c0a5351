"""Custom densities: parsed safely, checked for normalisation, derived like registry entries."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import sympy as sp

import symloss
from symloss.custom import custom
from symloss.errors import NormalizationError, ParseError, SymlossError, UnsafeExpressionError

RNG = np.random.default_rng(7)


def _f(loss, expr):
    return sp.lambdify([*loss.inputs, loss.target], expr, modules="numpy")


def test_laplace_density_matches_registry():
    mine = custom("exp(-abs(y - mu)/b)/(2*b)", params={"mu": "real", "b": "positive"})
    ref = symloss.derive("laplace")
    mu, b, y = RNG.normal(size=30), RNG.uniform(0.2, 3, size=30), RNG.normal(size=30)
    np.testing.assert_allclose(_f(mine, mine.nll)(mu, b, y), _f(ref, ref.nll)(mu, b, y), rtol=1e-12)
    np.testing.assert_allclose(_f(mine, mine.nll)(mu, b, y), -scipy.stats.laplace.logpdf(y, mu, b), rtol=1e-12)
    np.testing.assert_allclose(_f(mine, mine.expr)(mu, b, y), _f(ref, ref.expr)(mu, b, y), rtol=1e-12)


def test_fixed_scale_laplace_is_recognised_as_mae():
    mine = custom("exp(-abs(y - mu))/2", params={"mu": "real"})
    assert mine.known_as is not None and mine.known_as.key == "mae"


def test_unnormalised_is_rejected_with_a_clear_message():
    with pytest.raises(NormalizationError, match="normalize=True"):
        custom("exp(-abs(y - mu)/b)", params={"mu": "real", "b": "positive"})


def test_normalize_true_keeps_the_normaliser():
    loss = custom("exp(-abs(y - mu)/b)", params={"mu": "real", "b": "positive"}, normalize=True)
    ref = symloss.derive("laplace")
    mu, b, y = RNG.normal(size=20), RNG.uniform(0.2, 3, size=20), RNG.normal(size=20)
    # the normaliser 2b depends on b: it must be in the loss and in its gradient
    np.testing.assert_allclose(_f(loss, loss.nll)(mu, b, y), _f(ref, ref.nll)(mu, b, y), rtol=1e-12)
    gb_mine = _f(loss, loss.grad("b"))(mu, b, y)
    gb_ref = _f(ref, ref.grad("scale"))(mu, b, y)
    np.testing.assert_allclose(gb_mine, gb_ref, rtol=1e-12)


def test_huber_through_a_custom_density():
    loss = custom("exp(-where(abs(y - mu) <= 1, (y - mu)^2/2, abs(y - mu) - 1/2))", params={"mu": "real"},
                  normalize=True)
    assert loss.known_as is not None and loss.known_as.key == "huber"
    assert loss.known_as.torch == "torch.nn.functional.huber_loss"
    import torch
    import torch.nn.functional as F

    mu, y = RNG.normal(scale=3, size=40), RNG.normal(scale=3, size=40)
    ours = _f(loss, loss.expr)(mu, y)
    theirs = F.huber_loss(torch.tensor(mu), torch.tensor(y), reduction="none", delta=1.0).numpy()
    np.testing.assert_allclose(ours - ours[0], float(loss.known_as.factor) * (theirs - theirs[0]), rtol=1e-10,
                               atol=1e-12)


def test_discrete_custom_density():
    loss = custom("lam^y*exp(-lam)/factorial(y)", params={"lam": "positive"}, support="nonnegative_integer")
    ref = symloss.derive("poisson")
    lam, y = RNG.uniform(0.5, 5, size=10), RNG.integers(0, 8, size=10).astype(float)
    np.testing.assert_allclose(_f(loss, loss.expr)(lam, y), _f(ref, ref.expr)(lam, y), rtol=1e-12)


@pytest.mark.parametrize(
    "density, error",
    [
        ("__import__('os').system('echo hacked')", UnsafeExpressionError),
        ("y.__class__", UnsafeExpressionError),
        ("(lambda: 1)()", UnsafeExpressionError),
        ("exp(-abs(y - mu)", ParseError),
        ("exp(-abs(y - mux))", ParseError),
    ],
)
def test_unsafe_or_unparseable_densities(density, error):
    with pytest.raises(error):
        custom(density, params={"mu": "real"})


def test_negative_density_is_rejected():
    with pytest.raises(NormalizationError, match="negative"):
        custom("sin(y - mu)", params={"mu": "real"})


def test_density_must_depend_on_target():
    with pytest.raises(SymlossError, match="target"):
        custom("mu", params={"mu": "positive"})
