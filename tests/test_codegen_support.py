"""Shared fixtures for the code generation tests: each catalog loss derived once, each module generated once,
and references symloss did not produce (torch.distributions, hand-written log-densities, scipy.stats).

No tests here; the test modules import these helpers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from types import ModuleType

import pytest
import torch

from symloss.codegen import build_model, load
from symloss.codegen.catalog import LIKELIHOOD_VARIANTS, CatalogEntry, catalog_entries, derive_entry
from symloss.errors import UnsupportedError
from symloss.links import LINKS, input_name
from symloss.loss import Loss

ENTRIES: dict[str, CatalogEntry] = {
    str(e.options.get("name") or e.distribution.lower()): e for e in catalog_entries()
}
#: Entries the catalog skips (a function neither target can compute stably).
UNSUPPORTED = {"vonmises", "skellam"}
#: The registry entries and classic variants, which sample_case and reference_nll know.  The richer likelihoods
#: (zero inflation, censoring, mixtures, β-NLL, ...: LIKELIHOOD_VARIANTS) need their own data (a censoring
#: indicator, counts with zeros) and references; tests/test_catalog_likelihoods.py checks them on every target.
KEYS = [k for k in ENTRIES if k not in UNSUPPORTED and k not in LIKELIHOOD_VARIANTS]


@functools.cache
def loss_for(key: str) -> Loss:
    return derive_entry(ENTRIES[key])


@functools.cache
def module_for(key: str, target: str) -> ModuleType:
    return load(loss_for(key), target)


@functools.cache
def model_for(key: str, target: str):
    return build_model(loss_for(key), target)


def supported(key: str) -> bool:
    try:
        model_for(key, "numpy")
    except UnsupportedError:
        return False
    return True


# -- inverse links, written independently of symloss (torch functions)
INVERSE: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "identity": lambda x: x,
    "log": torch.exp,
    "logit": torch.sigmoid,
    "variance": torch.sqrt,
    "softmax": lambda x: torch.softmax(x, -1),
    "softplus": torch.nn.functional.softplus,
}


def torch_parameters(loss: Loss, inputs: dict[str, torch.Tensor], constants: dict[str, torch.Tensor]) -> dict:
    """The distribution's parameters (torch's names) from the module's inputs."""
    out = {}
    for p in loss.distribution.params:
        if p.name in loss.fixed:
            value = loss.fixed[p.name]
            if str(value) in constants:
                out[p.name] = constants[str(value)]
            else:
                out[p.name] = torch.tensor(float(value), dtype=torch.float64)
        elif p.name in loss.links:
            link = loss.links[p.name]
            out[p.name] = INVERSE[link](inputs[input_name(p.name, LINKS[link])])
        else:
            out[p.name] = inputs[p.name]
    return out


def hand_log_prob(name: str, p: dict, y: torch.Tensor) -> torch.Tensor:
    """log-densities of the registry entries torch.distributions lacks, from their textbook formulas."""
    if name == "Logistic":
        z = (y - p["loc"]) / p["scale"]
        return -z - torch.log(p["scale"]) - 2 * torch.nn.functional.softplus(-z)
    if name == "HyperbolicSecant":  # f(y) = sech((y − loc)/scale)/(π·scale)
        z = (y - p["loc"]) / p["scale"]
        return -math.log(math.pi) - torch.log(p["scale"]) - torch.log(torch.cosh(z))
    if name == "AsymmetricLaplace":  # quantile parameterisation (Yu & Moyeed 2001)
        t, r = p["quantile"], (y - p["loc"]) / p["scale"]
        return torch.log(t * (1 - t) / p["scale"]) - r * (t - (r < 0).to(r.dtype))
    if name == "InverseGaussian":
        m, lam = p["mean"], p["shape"]
        return 0.5 * torch.log(lam / (2 * math.pi * y**3)) - lam * (y - m) ** 2 / (2 * m**2 * y)
    if name == "Rayleigh":
        s = p["scale"]
        return torch.log(y / s**2) - y**2 / (2 * s**2)
    if name == "LogLogistic":  # alpha: scale (the median), beta: shape
        a, b = p["alpha"], p["beta"]
        return torch.log(b) - torch.log(a) + (b - 1) * (torch.log(y) - torch.log(a)) - 2 * torch.log1p((y / a) ** b)
    raise KeyError(name)


def torch_distribution(loss: Loss, p: dict):
    cls = getattr(torch.distributions, loss.distribution.torch)
    kw = dict(p)
    if loss.distribution.name == "Multinomial":
        kw["total_count"] = int(kw["total_count"])
    return cls(**kw, validate_args=False)


def reference_nll(loss: Loss, inputs: dict, constants: dict, y: torch.Tensor) -> torch.Tensor:
    """−log p(y | inputs), by torch.distributions or a hand-written formula."""
    p = torch_parameters(loss, inputs, constants)
    if loss.distribution.torch:
        return -torch_distribution(loss, p).log_prob(y)
    return -hand_log_prob(loss.distribution.name, p, y)


def sample_case(loss: Loss, n: int = 6, seed: int = 0) -> tuple[dict, dict, torch.Tensor]:
    """(inputs, named constants, target) in float64 at moderate values; the target drawn from the model."""
    g = torch.Generator().manual_seed(seed)
    dist = loss.distribution
    inputs: dict[str, torch.Tensor] = {}
    for s in loss.inputs:
        name, dom = str(s), loss.domains[s].name
        if name == "total_count" and dist.name == "Multinomial":
            inputs[name] = torch.tensor(7.0, dtype=torch.float64)
        elif name == "total_count" and dist.name == "Binomial":
            inputs[name] = torch.randint(1, 12, (n,), generator=g).double()
        elif loss.event == "vector":
            inputs[name] = torch.randn(n, 4, generator=g, dtype=torch.float64) * (1.0 if name == "logits" else 0.5)
        elif dom == "real":
            inputs[name] = 0.7 * torch.randn(n, generator=g, dtype=torch.float64)
        elif dom == "positive":
            inputs[name] = torch.exp(0.5 * torch.randn(n, generator=g, dtype=torch.float64)) + 0.5
        elif dom == "unit_interval":
            inputs[name] = 0.1 + 0.8 * torch.rand(n, generator=g, dtype=torch.float64)
        else:
            raise KeyError((name, dom))
    constants = {str(c): torch.tensor(0.3, dtype=torch.float64) for c in loss.constants}
    p = {k: v.detach() for k, v in torch_parameters(loss, inputs, constants).items()}
    shape = torch.broadcast_shapes(*(v.shape for v in inputs.values()))
    if dist.torch:
        torch.manual_seed(seed)
        y = torch_distribution(loss, p).sample()
        if dist.name == "Pareto":
            y = torch.maximum(y, p["scale"] * 1.01)
    elif dist.support == "real":
        y = 1.5 * torch.randn(shape, generator=g, dtype=torch.float64)
    else:
        y = torch.exp(0.5 * torch.randn(shape, generator=g, dtype=torch.float64))
    return inputs, constants, y


def rel_err(a, b) -> float:
    a = torch.as_tensor(a.detach() if isinstance(a, torch.Tensor) else a, dtype=torch.float64)
    b = torch.as_tensor(b.detach() if isinstance(b, torch.Tensor) else b, dtype=torch.float64)
    return float(((a - b).abs() / (1 + b.abs())).max()) if a.numel() else 0.0


skip_unsupported = pytest.mark.parametrize("key", KEYS)
