"""Shared helpers of the tests/test_stability_*.py files: a catalog module as committed in generated/ and one
point of it in float64.  No tests here."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import subprocess
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


def c_helper(tmp_path: Path, module: str, helper: str, nargs: int):
    """The helper ``symloss_<module>_<helper>`` of the committed generated/c/<module>.c, compiled on its own into
    a shared library and loaded with ctypes: a function of ``nargs`` doubles returning a double; None where there
    is no C compiler."""
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None
    src = tmp_path / f"{helper}.c"
    params = ", ".join(f"double a{i}" for i in range(nargs))
    call = ", ".join(f"a{i}" for i in range(nargs))
    src.write_text(f'#include "{GENERATED / "c" / f"{module}.c"}"\n'
                   f"double wrapped({params}) {{ return symloss_{module}_{helper}({call}); }}\n")
    lib = tmp_path / f"lib{helper}.so"
    result = subprocess.run([cc, "-std=c99", "-O2", "-fPIC", "-shared", f"-I{GENERATED / 'c'}", str(src), "-o",
                             str(lib), "-lm"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[:4000]
    f = ctypes.CDLL(str(lib)).wrapped
    f.restype, f.argtypes = ctypes.c_double, [ctypes.c_double] * nargs
    return f
