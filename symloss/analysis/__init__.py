"""Property analysis of losses: convexity, differentiability, smoothness, robustness, monotonicity,
symmetry, sparsity, trainability and properness — each "proved", "disproved" (with a re-checked witness)
or "unknown".

    >>> import symloss
    >>> from symloss.analysis import analyze
    >>> report = analyze(symloss.derive("normal"))
    >>> report.convex_in["loc"].status, report.convex.status
    ('proved', 'disproved')

``ATOMS`` is the atom table the composition rules use; ``metric(name)``
builds evaluation metrics (accuracy, 0-1, precision, recall, F1, hinge) as
losses so they can be analysed too.
"""

from __future__ import annotations

from .atoms import ATOMS, Atom
from .engine import analyze, convexity
from .metrics import METRICS, loss_from_expr, metric
from .report import PROPERTIES, Report, Verdict

__all__ = [
    "analyze", "convexity", "Report", "Verdict", "metric", "METRICS", "loss_from_expr", "ATOMS", "Atom", "PROPERTIES",
]
