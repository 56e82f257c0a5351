"""Evaluation metrics as :class:`~symloss.loss.Loss` objects, so that they can be analysed like losses.

Every metric takes a real **score** ``s`` (a logit: the model predicts the
positive class iff ``s > 0``, i.e. ŷ = H(s) with H(0) = 0) and a binary target
``y`` in {0, 1}.

* per-example metrics (``event == "scalar"``):
  ``zero_one`` = y·(1 − H(s)) + (1 − y)·H(s) (the error, to minimise),
  ``accuracy`` = 1 − zero_one (to maximise), and the trainable comparison
  ``hinge`` = max(0, 1 − (2y − 1)·s) (labels mapped to ±1);
* batch-level ratios (``event == "vector"`` over a batch axis): the score and
  the target are indexed over a batch of symbolic size ``n``
  (``s[i]``, ``y[i]``, i = 0 … n − 1) and the metric is a ratio of counts,
  TP = Σ y[i]·H(s[i]), PP = Σ H(s[i]) (predicted positives), P = Σ y[i]:
  ``precision`` = TP / PP, ``recall`` = TP / P, ``f1`` = 2·TP / (PP + P).
  Their gradient ∂/∂s[j] is taken with respect to one example's score.

``Loss.metadata`` records ``metric`` (the name), ``higher_is_better`` and,
for batch metrics, ``axis = "batch"`` with ``vector`` (the batch symbols).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import sympy as sp

from ..domains import get_domain
from ..errors import UnknownNameError
from ..loss import Loss, Step
from ..registry import VectorSymbols

__all__ = ["metric", "METRICS", "loss_from_expr"]

_ALIASES = {"0-1": "zero_one", "zero-one": "zero_one", "01": "zero_one", "error": "zero_one", "error_rate": "zero_one",
            "f1_score": "f1", "f_1": "f1", "f-1": "f1", "acc": "accuracy"}


def _scalar_symbols() -> tuple[sp.Symbol, sp.Symbol]:
    return get_domain("real").symbol("score"), get_domain("binary").symbol("y")


def _step(s: sp.Expr) -> sp.Expr:
    # predict the positive class iff s > 0
    return sp.Heaviside(s, 0)


def _zero_one(s: sp.Expr, y: sp.Expr) -> sp.Expr:
    return y * (1 - _step(s)) + (1 - y) * _step(s)


def _accuracy(s: sp.Expr, y: sp.Expr) -> sp.Expr:
    return y * _step(s) + (1 - y) * (1 - _step(s))


def _hinge(s: sp.Expr, y: sp.Expr) -> sp.Expr:
    return sp.Max(0, 1 - (2 * y - 1) * s)


_SCALAR: dict[str, tuple[Callable[[sp.Expr, sp.Expr], sp.Expr], str, bool, str]] = {
    "zero_one": (_zero_one, "0-1 loss: 1 when the thresholded prediction H(score) differs from y", False, "metric"),
    "accuracy": (_accuracy, "accuracy of one example: 1 when H(score) equals y", True, "metric"),
    "hinge": (_hinge, "hinge loss max(0, 1 − (2y − 1)·score), the convex surrogate of the 0-1 loss", False, "custom"),
}

_BATCH: dict[str, tuple[str, bool]] = {
    "precision": ("precision = TP / PP over a batch (TP = Σ y·H(s), PP = Σ H(s))", True),
    "recall": ("recall = TP / P over a batch (TP = Σ y·H(s), P = Σ y)", True),
    "f1": ("F1 = 2·TP / (PP + P) over a batch", True),
}

METRICS: tuple[str, ...] = (*_SCALAR, *_BATCH)


def metric(name: str) -> Loss:
    """The metric ``name`` ("accuracy", "zero_one", "precision", "recall", "f1", or "hinge") as a Loss."""
    key = name.strip().lower().replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key in _SCALAR:
        return _scalar_metric(key)
    if key in _BATCH:
        return _batch_metric(key)
    raise UnknownNameError("metric", name, [*METRICS, *_ALIASES])


def _scalar_metric(key: str) -> Loss:
    fn, text, higher, kind = _SCALAR[key]
    s, y = _scalar_symbols()
    expr = fn(s, y)
    grad = sp.diff(expr, s)
    domains = {y: get_domain("binary"), s: get_domain("real")}
    steps = (Step("loss", text, key, expr),)
    meta = {"metric": key, "higher_is_better": higher, "prediction_rule": "predict 1 iff score > 0"}
    if key == "hinge":
        meta["surrogate_for"] = "zero_one"
    return Loss(name=key, distribution=None, target=y, inputs=(s,), wrt=(s,), nll=expr, expr=expr,
                constant=sp.Integer(0), gradient={s: grad}, steps=steps, domains=domains, kind=kind, metadata=meta)


def _batch_metric(key: str) -> Loss:
    text, higher = _BATCH[key]
    n = sp.Symbol("n", integer=True, positive=True)
    i = sp.Symbol("i", integer=True, nonnegative=True)
    j = sp.Symbol("j", integer=True, nonnegative=True)
    vec = VectorSymbols(K=n, k=i, j=j)
    s = sp.IndexedBase("score", real=True)
    y = sp.IndexedBase("y", integer=True, nonnegative=True)
    tp = sp.Sum(y[i] * _step(s[i]), (i, 0, n - 1))
    pp = sp.Sum(_step(s[i]), (i, 0, n - 1))
    pos = sp.Sum(y[i], (i, 0, n - 1))
    expr = {"precision": tp / pp, "recall": tp / pos, "f1": 2 * tp / (pp + pos)}[key]
    grad = sp.diff(expr, s[j])
    domains = {y: get_domain("binary"), s: get_domain("real_vector")}
    steps = (Step("loss", text + "; the prediction is H(score) (1 iff score > 0)", key, expr),)
    meta = {"metric": key, "higher_is_better": higher, "axis": "batch", "vector": vec,
            "prediction_rule": "predict 1 iff score > 0"}
    return Loss(name=key, distribution=None, target=y, inputs=(s,), wrt=(s,), nll=expr, expr=expr,  # type: ignore[arg-type]
                constant=sp.Integer(0), gradient={s: grad}, steps=steps, domains=domains, kind="metric",  # type: ignore[dict-item]
                event="vector", metadata=meta)


def loss_from_expr(expr: sp.Expr | str, *, wrt: Sequence[sp.Symbol | str], target: sp.Symbol | str | None = "y",
                   domains: Mapping[sp.Symbol | str, str] | None = None, name: str = "custom") -> Loss:
    """A Loss (kind "custom") for a loss expression written directly, to analyse it.

    ``domains`` maps symbols (or names) to domain names; symbols not named there are real.  Strings are read
    with ``sympy.sympify`` after the symbols are created with their domains' assumptions.
    """
    doms_in = {str(k): v for k, v in (domains or {}).items()}
    if isinstance(expr, str):
        import re

        names = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", expr))
        local = {n: get_domain(doms_in.get(n, "real")).symbol(n) for n in names
                 if n in doms_in or n in {str(w) for w in wrt} or n == str(target)}
        expr = sp.sympify(expr, locals=local)
    by_name = {str(s): s for s in expr.free_symbols}
    wrt_syms = tuple(by_name[str(w)] if str(w) in by_name else sp.Symbol(str(w), real=True) for w in wrt)
    y = None if target is None else by_name.get(str(target), target if isinstance(target, sp.Symbol) else None)
    domains_out = {}
    for s in expr.free_symbols | set(wrt_syms) | ({y} if y is not None else set()):
        domains_out[s] = get_domain(doms_in.get(str(s), "positive" if s.is_positive else "real"))
    grad = {w: sp.diff(expr, w) for w in wrt_syms}
    inputs = tuple(s for s in sorted(expr.free_symbols, key=str) if s is not y)
    return Loss(name=name, distribution=None, target=y, inputs=inputs, wrt=wrt_syms, nll=expr, expr=expr,  # type: ignore[arg-type]
                constant=sp.Integer(0), gradient=grad, steps=(Step("loss", "a loss written directly", "ℓ", expr),),
                domains=domains_out, kind="custom", metadata={})
