"""Shared helpers of the tests/test_stability_*.py files: a catalog module as committed in generated/ and one
point of it in float64.  No tests here."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

GENERATED = Path(__file__).resolve().parent.parent / "generated"


def generated_module(target: str, name: str) -> ModuleType:
    """The committed module generated/<target>/<name>.py (skipped where the target's library is absent)."""
    if target in ("torch", "jax"):
        pytest.importorskip(target)
    path = GENERATED / target / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_stability_{target}_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_point(target: str, name: str, args: list[float], **options) -> tuple[float, list[float]]:
    """(value, gradients) at one point in float64 with reduction="none"."""
    mod = generated_module(target, name)
    if target == "torch":
        import torch

        value, grads = mod.value_and_grad(*[torch.tensor([a], dtype=torch.float64) for a in args],
                                          reduction="none", **options)
        return float(value[0]), [float(g[0]) for g in grads]
    with np.errstate(all="ignore"):  # overflow to ∞ where the truth is ∞ is part of what is tested
        value, grads = mod.value_and_grad(*[np.array([a], dtype=np.float64) for a in args], reduction="none",
                                          **options)
    return float(np.asarray(value).ravel()[0]), [float(np.asarray(g).ravel()[0]) for g in grads]
