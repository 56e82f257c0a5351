"""symloss: turn a modelling choice (a likelihood) into a trainable loss.

registry → derive → analyse → stabilise → generate → export.
"""

from __future__ import annotations

from .derive import derive
from .errors import SymlossError
from .loss import KnownLoss, Loss, Penalty, Step
from .registry import REGISTRY
from .registry import get as get_distribution
from .registry import names as distribution_names

__version__ = "0.1.0"

__all__ = [
    "derive",
    "Loss",
    "Step",
    "KnownLoss",
    "Penalty",
    "SymlossError",
    "REGISTRY",
    "get_distribution",
    "distribution_names",
    "__version__",
]
