"""Class-index forms of a class-axis loss: the target given as integer class indices, not as a one-hot array.

A Categorical target is one-hot, y_k = [k = c], and the generated module accepts it as the class index c.  The
plain forms then need the one-hot array itself (N·K floats written, then read by every term that uses y) where
the built-ins (``F.cross_entropy``) gather the one entry they need.  These forms do the same on the lowered
expressions (:mod:`symloss.codegen.model`), exactly, for any loss linear in the one-hot y:

* ``Σ_k b(y_k, x_k)`` (a class sum that reads y) → ``Σ_k b(0, x_k) + b(1, x_c) − b(0, x_c)``, which for the
  usual ``b(0, ·) = 0`` is ``b(1, x_c)``: x_c is :class:`~symloss.codegen.printers.ClassGather`, the entry of a
  per-class array at the target's class;
* a per-class expression g(y_j, …) that reads y outside a sum (a gradient such as softmax − y) →
  g(0, …) everywhere with its entry at the target's class replaced by g(1, …) evaluated there
  (:class:`~symloss.codegen.printers.ClassScatter`).

Each entry is the same expression of the same numbers as in the one-hot form (y_k = 0 or 1 substituted, the
per-class inputs taken at c), so the stabilised forms keep their accuracy: the softmax gradient's
``(e_c − 1 − R)/(1 + R)`` at the target's class is computed as it was, not as ``p_c − 1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from ..stabilize import Held
from .printers import CLASS_REDUCTIONS, ClassGather, ClassScatter, ClassSum, uses_per_class

__all__ = ["class_index_forms"]


def _reads(expr: sp.Basic, y: sp.Symbol) -> bool:
    """Whether ``expr`` reads the one-hot target y (the index inside a gather or scatter is not y's value)."""
    if isinstance(expr, (ClassGather, ClassScatter)):
        return any(_reads(a, y) for a in expr.args[:-1])
    if isinstance(expr, sp.Symbol):
        return expr == y
    return any(_reads(a, y) for a in expr.args)


def _at_class(expr: sp.Basic, vectors: frozenset[sp.Symbol], index: sp.Symbol) -> sp.Basic:
    """``expr`` at the target's class: every per-class input outside a class-axis reduction taken at it."""
    if isinstance(expr, CLASS_REDUCTIONS):
        return expr
    if isinstance(expr, sp.Symbol):
        return ClassGather(expr, index) if expr in vectors else expr
    if not expr.args:
        return expr
    return expr.func(*[_at_class(a, vectors, index) for a in expr.args])


def _held(expr: sp.Basic) -> sp.Basic:
    """A sum kept whole: the class sum computed it before anything outside was added (z_c − M, then + L)."""
    return Held(expr) if isinstance(expr, sp.Add) else expr


def _gather_sums(expr: sp.Basic, y: sp.Symbol, vectors: frozenset[sp.Symbol], index: sp.Symbol) -> sp.Basic | None:
    """``expr`` with each class sum that reads y replaced by its value at the one-hot y; None where y is read in
    a way that has no such form (inside a logsumexp or a maximum over the classes)."""
    if not expr.args or not _reads(expr, y):
        return expr
    if isinstance(expr, ClassSum):
        (body,) = expr.args
        body = _gather_sums(body, y, vectors, index)
        if body is None:
            return None
        off, on = body.xreplace({y: sp.S.Zero}), body.xreplace({y: sp.S.One})
        if _reads(off, y) or _reads(on, y):
            return None
        if off == 0:
            return _held(_at_class(on, vectors, index))
        return ClassSum(off) + _held(_at_class(on, vectors, index)) - _held(_at_class(off, vectors, index))
    if isinstance(expr, CLASS_REDUCTIONS):
        return None
    args = [_gather_sums(a, y, vectors, index) if isinstance(a, sp.Basic) else a for a in expr.args]
    if any(a is None for a in args):
        return None
    return expr.func(*args)


def class_index_forms(value: sp.Expr, gradients: Sequence[sp.Expr], constant: sp.Expr, y: sp.Symbol,
                      vectors: frozenset[sp.Symbol]) -> tuple[sp.Expr, list[sp.Expr], sp.Expr] | None:
    """The lowered value, gradients and constant of a class-axis loss for a target given as class indices: the
    symbol y then holds the index (shape (..., 1)).  ``vectors``: the per-class inputs (not y).  None where a
    form reads y in a way that has no gathered equivalent; the module then expands the indices to one-hot."""
    index = sp.Dummy("index")  # y's place in the gathers until the end: substituting 0 or 1 for y must skip it
    forms: list[sp.Expr] = []
    for k, expr in enumerate((value, constant, *gradients)):
        out = _gather_sums(expr, y, vectors, index)
        if out is None:
            return None
        if _reads(out, y):
            if k < 2:  # a value per observation cannot read a per-class y outside a class sum
                return None
            off, on = out.xreplace({y: sp.S.Zero}), _at_class(out.xreplace({y: sp.S.One}), vectors, index)
            if _reads(off, y) or _reads(on, y) or not uses_per_class(off, vectors):
                return None
            out = ClassScatter(off, on, index)
        forms.append(out.xreplace({index: y}))
    return forms[0], forms[2:], forms[1]
