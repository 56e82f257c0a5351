"""symloss: turn a modelling choice (a likelihood) into a trainable loss.

The pipeline, one module (or small package) each:
registry → derive → analysis → stabilize → codegen → export.

Heavier parts (analysis, code generation, LaTeX) are imported lazily so that
``import symloss`` and the CLI start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from .custom import custom  # eager: the submodule of the same name must not shadow the function
from .derive import derive
from .errors import SymlossError
from .loss import KnownLoss, Loss, Penalty, Step
from .registry import REGISTRY
from .registry import get as get_distribution
from .registry import names as distribution_names

__version__ = "0.1.0"

# public name -> (module, attribute), imported on first use
_LAZY = {
    "analyze": ("symloss.analysis", "analyze"),
    "metric": ("symloss.analysis", "metric"),
    "Report": ("symloss.analysis", "Report"),
    "Verdict": ("symloss.analysis", "Verdict"),
    "generate": ("symloss.codegen", "generate"),
    "load": ("symloss.codegen", "load"),
    "write_code": ("symloss.codegen", "write"),
    "to_latex": ("symloss.export", "to_latex"),
    "to_markdown": ("symloss.export", "to_markdown"),
    "write_latex": ("symloss.export", "write_latex"),
    "kl": ("symloss.divergence", "kl"),
    "elbo": ("symloss.elbo", "elbo"),
    "gan": ("symloss.gan", "gan"),
    "saturation": ("symloss.gan", "saturation"),
}

__all__ = [
    "derive",
    "custom",
    "Loss",
    "Step",
    "KnownLoss",
    "Penalty",
    "SymlossError",
    "REGISTRY",
    "get_distribution",
    "distribution_names",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'symloss' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
