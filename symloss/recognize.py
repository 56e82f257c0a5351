"""Recognise classic losses: is ``Loss.expr`` = c · (classic loss) + (terms free of the trained inputs)?

The comparison is symbolic: for every trained input u the ratio
∂expr/∂u ÷ ∂classic/∂u must simplify to one and the same positive constant c
(free of the inputs and of the target), and ∂(expr − c·classic)/∂u must
simplify to 0.  The classic losses are declared as data below.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from .budget import try_with_budget
from .loss import KnownLoss, Loss

__all__ = ["CLASSIC_LOSSES", "ClassicLoss", "recognize"]

Half = sp.Rational(1, 2)


@dataclass(frozen=True)
class ClassicLoss:
    key: str
    name: str
    roles: tuple[str, ...]  # the built-in's argument names for the trained inputs, in order
    formula: Callable[..., sp.Expr]  # formula(*role_symbols, y, shape) -> expression
    torch: str | None
    torch_kwargs: dict[str, Any] = field(default_factory=dict)
    shape: str | None = None  # a shape constant the formula needs (huber's delta, pinball's tau, cauchy's scale)
    vector: bool = False


def _huber(u, y, delta):
    r = sp.Abs(u - y)
    return sp.Piecewise((r**2 / 2, r <= delta), (delta * (r - delta / 2), True))


CLASSIC_LOSSES: tuple[ClassicLoss, ...] = (
    ClassicLoss("mse", "mean squared error", ("input",), lambda u, y, s: (u - y) ** 2,
                "torch.nn.functional.mse_loss"),
    ClassicLoss("mae", "mean absolute error", ("input",), lambda u, y, s: sp.Abs(u - y),
                "torch.nn.functional.l1_loss"),
    ClassicLoss("bce_with_logits", "binary cross-entropy with logits", ("input",),
                lambda z, y, s: sp.log(1 + sp.exp(z)) - y * z, "torch.nn.functional.binary_cross_entropy_with_logits"),
    ClassicLoss("bce", "binary cross-entropy", ("input",),
                lambda p, y, s: -(y * sp.log(p) + (1 - y) * sp.log(1 - p)), "torch.nn.functional.binary_cross_entropy"),
    ClassicLoss("poisson_nll", "Poisson NLL (log input)", ("input",), lambda u, y, s: sp.exp(u) - y * u,
                "torch.nn.functional.poisson_nll_loss", {"log_input": True}),
    ClassicLoss("poisson_nll_rate", "Poisson NLL", ("input",), lambda r, y, s: r - y * sp.log(r),
                "torch.nn.functional.poisson_nll_loss", {"log_input": False}),
    ClassicLoss("gaussian_nll", "Gaussian NLL", ("input", "var"),
                lambda u, v, y, s=None: Half * (sp.log(v) + (u - y) ** 2 / v), "torch.nn.functional.gaussian_nll_loss"),
    ClassicLoss("pinball", "pinball (quantile) loss", ("input",),
                lambda u, y, tau: (tau - Half) * (y - u) + sp.Abs(y - u) / 2, None, shape="quantile"),
    ClassicLoss("log_cosh", "log-cosh loss", ("input",), lambda u, y, s: sp.log(sp.cosh(u - y)), None),
    ClassicLoss("cauchy", "Cauchy (Lorentzian) loss", ("input",),
                lambda u, y, c: sp.log(1 + ((u - y) / c) ** 2), None, shape="scale"),
    ClassicLoss("huber", "Huber loss", ("input",), _huber, "torch.nn.functional.huber_loss", shape="delta"),
    ClassicLoss("cross_entropy", "softmax cross-entropy", ("input",), None, "torch.nn.functional.cross_entropy",  # type: ignore[arg-type]
                vector=True),
)


def _free_of(e: sp.Expr, syms: Sequence[sp.Basic]) -> bool:
    return not any(s in e.free_symbols for s in syms)


def _ratio(num: sp.Expr, den: sp.Expr) -> sp.Expr:
    r = sp.simplify(num / den)
    if r.has(sp.sign, sp.Piecewise, sp.Abs):
        r = sp.simplify(sp.piecewise_fold(r).rewrite(sp.Piecewise))
    if isinstance(r, sp.Piecewise):
        # 0/0 where both derivatives vanish (residual = 0) is a measure-zero set: ignore those branches
        values = {e for e, c in r.args if not (e is sp.nan and isinstance(c, sp.Eq))}
        if len(values) == 1:
            r = values.pop()
    return r


_PROBE_INPUTS = (0.37, 2.91, -1.73)
_PROBE_TARGETS = {"real": (0.48, -0.6, 1.2), "positive": (0.48, 2.6, 1.2), "integer": (1, 3, 0), "binary": (1, 0, 1)}


def _numeric_ratio_varies(expr: sp.Expr, formula: sp.Expr, u: sp.Symbol, y: sp.Basic,
                          varying: Sequence[sp.Basic] = ()) -> bool:
    """A cheap filter before the symbolic test: the derivative ratio at three spread-out points must agree.

    It can only reject (a ratio that differs numerically is not constant), never accept.
    """
    num, den = sp.diff(expr, u), sp.diff(formula, u)
    syms = sorted((num.free_symbols | den.free_symbols), key=str)
    if y.is_integer:
        targets = _PROBE_TARGETS["integer"]
    elif y.is_positive:
        targets = _PROBE_TARGETS["positive"]
    else:
        targets = _PROBE_TARGETS["real"]
    values = []
    for point in range(3):
        sub = {}
        for i, s in enumerate(syms):
            if s == y:
                v = targets[point]
            elif s == u or s in varying:
                # only the trained inputs and the target move between the points; constants stay put
                v = _PROBE_INPUTS[point] + 0.11 * i
                if s.is_positive or s.is_nonnegative:
                    v = abs(v)
            else:
                v = 0.83 + 0.11 * i
            sub[s] = v
        try:
            n, d = complex(num.subs(sub).evalf()), complex(den.subs(sub).evalf())
        except (TypeError, ValueError, ZeroDivisionError):
            return False
        if n != n or d != d:
            return False
        if d == 0:
            if abs(n) > 1e-12:
                return True  # the classic loss is flat where ours is not: no constant factor
            continue
        values.append(n / d)
    if len(values) < 2:
        return False
    return any(abs(a - values[0]) > 1e-9 * (1 + abs(a) + abs(values[0])) for a in values[1:])


def _match(expr: sp.Expr, formula: sp.Expr, trained: Sequence[sp.Symbol], y: sp.Basic) -> sp.Expr | None:
    if any(_numeric_ratio_varies(expr, formula, u, y, trained) for u in trained):
        return None
    factor = None
    for u in trained:
        dF = sp.diff(formula, u)
        if dF == 0:
            return None
        r = _ratio(sp.diff(expr, u), dF)
        if not _free_of(r, [*trained, y]) or r.has(sp.nan, sp.zoo):
            return None
        if factor is None:
            factor = r
        elif sp.simplify(r - factor) != 0:
            return None
    if factor is None or factor.is_positive is not True:
        return None
    rest = expr - factor * formula
    for u in trained:
        if sp.simplify(sp.diff(rest, u)) != 0:
            return None
    return sp.nsimplify(factor) if factor.is_Float else factor


def _shape_candidates(loss: Loss, shape: str | None) -> list[sp.Expr]:
    if shape is None:
        return [sp.Integer(1)]
    out = []
    if shape in loss.fixed:
        out.append(loss.fixed[shape])
    out.extend(v for k, v in loss.fixed.items() if k != shape)
    out.extend(loss.constants)
    out.extend(s for s in loss.inputs if s not in loss.wrt)
    # thresholds of piecewise losses (huber's delta): the constant side of each condition
    for pw in loss.expr.atoms(sp.Piecewise):
        for _, cond in pw.args:
            for rel in (cond.atoms(sp.core.relational.Relational) if cond not in (sp.true, sp.false) else ()):
                for side in rel.args:
                    if not side.has(*loss.wrt, loss.target) and side.is_positive:
                        out.append(side)
    if shape == "scale":
        out.append(sp.Integer(1))
    seen: list[sp.Expr] = []
    for v in out:
        if v not in seen:
            seen.append(v)
    return seen


def _recognize_vector(loss: Loss) -> KnownLoss | None:
    # softmax cross-entropy: expand at K = 3 classes and compare as scalars
    vec = loss.metadata.get("vector")
    if vec is None or len(loss.wrt) != 1 or loss.distribution is None or loss.distribution.name != "Categorical":
        return None
    z = loss.wrt[0]
    if str(z) != "logits":
        return None
    K = 3
    y = loss.target
    zs = [sp.Symbol(f"z{i}", real=True) for i in range(K)]
    ys = [sp.Symbol(f"y{i}", nonnegative=True) for i in range(K)]
    sub = {z[i]: zs[i] for i in range(K)} | {y[i]: ys[i] for i in range(K)}
    expr = loss.expr.subs(vec.K, K).doit().subs(sub)
    formula = -sum(ys[i] * zs[i] for i in range(K)) + sum(ys) * sp.log(sum(sp.exp(t) for t in zs))
    yy = sp.Symbol("yy")
    factor = _match(expr, formula, zs, yy)
    if factor is None:
        return None
    k = vec.k
    m = sp.Symbol("m", integer=True, nonnegative=True)
    sym_formula = -sp.Sum(y[k] * z[k], (k, 0, vec.K - 1)) + sp.Sum(y[k], (k, 0, vec.K - 1)) * sp.log(
        sp.Sum(sp.exp(z[m]), (m, 0, vec.K - 1)))
    return KnownLoss("cross_entropy", "softmax cross-entropy", factor, sym_formula, "torch.nn.functional.cross_entropy",
                     {}, {"input": "logits"})


def recognize(loss: Loss, *, budget: float | None = 5.0) -> KnownLoss | None:
    """The classic loss that ``loss.expr`` equals up to a positive factor and a constant, or ``None``."""

    def run() -> KnownLoss | None:
        if loss.event == "vector":
            return _recognize_vector(loss)
        trained = list(loss.wrt)
        y = loss.target
        for c in CLASSIC_LOSSES:
            if c.vector or len(c.roles) != len(trained):
                continue
            for order in itertools.permutations(trained):
                for shape in _shape_candidates(loss, c.shape):
                    formula = c.formula(*order, y, shape)
                    try:
                        factor = _match(loss.expr, formula, order, y)
                    except (TypeError, ValueError, NotImplementedError, AttributeError):
                        factor = None
                    if factor is None:
                        continue
                    kwargs = dict(c.torch_kwargs)
                    if c.key == "huber":
                        kwargs["delta"] = shape
                    args = {role: str(u) for role, u in zip(c.roles, order)}
                    return KnownLoss(c.key, c.name, factor, formula, c.torch, kwargs, args)
        return None

    return try_with_budget(run, budget, None, "known-loss recognition")
