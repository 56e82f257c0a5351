"""SymPy code printers for the generated modules: small subclasses that map functions to target names.

* :class:`NumpyLossPrinter` prints NumPy (``np.``) code; functions NumPy lacks
  (lgamma, digamma, a stable sigmoid, xlogy, ...) become calls to small
  vectorised helpers that the module template defines (:attr:`helpers` records
  which).  No SciPy: the generated module depends on NumPy and ``math`` only.
* :class:`TorchLossPrinter` prints PyTorch code (``torch.special`` where it
  has the function).

Numbers that are not rationals (``log 2``, ``π``) are printed through ``math``,
so they stay Python floats and never promote float32 arrays to float64.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pycode import PythonCodePrinter
from sympy.printing.pytorch import TorchPrinter

from ..errors import UnsupportedError
from ..stabilize import (
    DigammaCorrection,
    DigammaCorrectionSeries,
    DigammaDifference,
    DLogTanhc,
    Guard,
    LgammaCorrection,
    LgammaCorrectionSeries,
    LgammaDifference,
    Log1pSquare,
    Log1pSquareDu,
    Log1pSquareDuScaled,
    Log1pSquareDv,
    Log1pSquareDvc,
    Log1pSquareRem,
    LogAddExp,
    LogBeta,
    LogGamma,
    LogNdtr,
    LogNdtrDeriv,
    LogSumExp,
    LogTanhc,
    Sgn,
    Sigmoid,
    Softplus,
    Square,
    XLog1pY,
    XLogY,
    log_ratio_power,
)

__all__ = ["ClassGather", "ClassScatter", "ClassSum", "ClassLogSumExp", "ClassMax", "ClassSumBelowOne",
           "NumpyLossPrinter", "TorchLossPrinter", "printer_for", "UNSUPPORTED"]


class ClassSum(sp.Function):
    """Σ over the class axis (the last axis), keeping it with length 1: a lowered ``Sum(f, (k, 0, K − 1))``."""

    nargs = 1


class ClassLogSumExp(sp.Function):
    """logsumexp over the class axis, keeping it with length 1: a lowered :class:`~symloss.stabilize.LogSumExp`."""

    nargs = 1


class Clamp(sp.Function):
    """min(max(x, lo), hi), with −∞ or ∞ for a missing bound: what a guard of the double where is when its safe
    point is the bound of its condition (guard(x, x ≥ a, a) = max(x, a)).  Printed as one elementwise clamp
    where the target has one that passes the gradient at the bound as the guard does (torch.clamp): a where
    costs several elementwise passes on the CPU, a clamp one."""

    nargs = 3


class SquareParts(sp.Function):
    """The pieces of x = u·exp(v) that log(1 + x²) and its three derivatives (Log1pSquare, Log1pSquareDu,
    Log1pSquareDv, Log1pSquareDvc) share: computed once by the module's ``_square_parts(u, v, e)`` and passed to
    each helper, so that a loss using several of them (Student-t) forms x, |x|, its clamps and 1 + min(x², x⁻²)
    once instead of once per helper.  e is exp(v) as SymPy writes it (see :class:`WithExpBase`)."""

    nargs = 3


class OfSquarePartsBase(sp.Function):
    """A stable function of (u, v) evaluated from the shared :class:`SquareParts` (its only argument).  (SymPy's
    printers look a Function's print method up by its own class name or a base class whose name ends in "Base".)"""

    nargs = 1
    helper = ""


class Log1pSquareOfParts(OfSquarePartsBase):
    helper = "log1p_square"


class Log1pSquareDuOfParts(OfSquarePartsBase):
    helper = "log1p_square_du"


class Log1pSquareDvOfParts(OfSquarePartsBase):
    helper = "log1p_square_dv"


class Log1pSquareDvcOfParts(OfSquarePartsBase):
    helper = "log1p_square_dvc"


class Log1pSquareRemOfParts(OfSquarePartsBase):
    helper = "log1p_square_rem"


class Log1pSquareDuScaledOfParts(OfSquarePartsBase):
    """log1p_square_du_scaled from the shared parts, u (its small branch forms (u·(k·e))·e, not x·e) and k."""

    nargs = 3
    helper = "log1p_square_du_scaled"


class WithExpBase(sp.Function):
    """A function of the Log1pSquare family, f(u, v, …), printed as its helper of (u, v, e, …) with e = exp(v) as
    SymPy writes it (the targets that do not share :class:`SquareParts`).  SymPy writes exp(w − ½·log ν) as
    exp(w)/√ν: the helper's x = u·e then carries no rounded log ν (the Student-t's v = −log σ − ½·log ν, whose
    log ν = 690.8 at ν = 1e300 is rounded by up to 6e-14, 250 ulps of x); v itself is still used where x
    overflows (log|x| = log|u| + v)."""

    helper = ""


class Log1pSquareE(WithExpBase):
    nargs = 3
    helper = "log1p_square"


class Log1pSquareDuE(WithExpBase):
    nargs = 3
    helper = "log1p_square_du"


class Log1pSquareDvE(WithExpBase):
    nargs = 3
    helper = "log1p_square_dv"


class Log1pSquareDvcE(WithExpBase):
    nargs = 3
    helper = "log1p_square_dvc"


class Log1pSquareRemE(WithExpBase):
    nargs = 3
    helper = "log1p_square_rem"


class Log1pSquareDuScaledE(WithExpBase):
    nargs = 4
    helper = "log1p_square_du_scaled"


#: each function of (u, v, …) -> (its form over the shared parts, whether it is odd in u: f(−u, v) = −f(u, v),
#: its form of (u, v, e, …) for the other targets)
_SQUARE_PARTS: dict[type, tuple[type, bool, type]] = {
    Log1pSquare: (Log1pSquareOfParts, False, Log1pSquareE),
    Log1pSquareDu: (Log1pSquareDuOfParts, True, Log1pSquareDuE),
    Log1pSquareDv: (Log1pSquareDvOfParts, False, Log1pSquareDvE),
    Log1pSquareDvc: (Log1pSquareDvcOfParts, False, Log1pSquareDvcE),
    Log1pSquareRem: (Log1pSquareRemOfParts, False, Log1pSquareRemE),
    Log1pSquareDuScaled: (Log1pSquareDuScaledOfParts, True, Log1pSquareDuScaledE),
}


class PowRatio(sp.Function):
    """(y·e^−s)^p for d = log_ratio(y, s) and t = p·d, the module's ``_pow_ratio(y, s, p, d, t)``: the form of
    exp(c + p·log_ratio(y, s)) = e^c·PowRatio(...) that the printers compute (see :func:`pow_ratio_forms`).  d and t
    are arguments so that cse shares them with the loss's other uses of log y − s and k·(log y − s)."""

    nargs = 5


#: softplus(w) = w + log1p(e^−w) rounds to w above it, in float32 and float64 alike
SOFTPLUS_IDENTITY = 40


def pow_ratio_forms(expr: sp.Expr) -> sp.Expr:
    """``expr`` with exp(w) and softplus(w) of an exponent w = c + p·log_ratio(y, s) (a power of the data over a
    scale: a Weibull's (y/λ)^k = exp(k·log_ratio(y, log λ))) computed through pow: exp(w) = e^c·(y·e^−s)^p, and
    softplus(w) = log1p(e^c·(y·e^−s)^p) below 40, w above.

    exp of w rounded to float64 is off by |w| half-ulps of relative error (160 ulps at (y/λ)^k = 1e300 for λ = k =
    1, where the inputs are exact and the condition number is 1), and softplus(w) ≈ eʷ for w ≪ 0 with it; pow
    computes its logarithm in extended precision, and its error is that of y·e^−s (1.5 ulps) times p, within the
    power's condition number p·(1 + |s|).  The module's _pow_ratio takes exp(t) where the base is out of range or
    |log y − s| ≤ 1 (there exp of the carried difference is the closer)."""

    def exp_form(w: sp.Expr) -> sp.Expr:
        c, p, lr = log_ratio_power(w)
        return sp.exp(c) * PowRatio(*lr.args, p, lr, p * lr)

    def softplus_form(f: Softplus) -> sp.Expr:
        w = f.args[0]
        return sp.Piecewise((log1p(exp_form(w)), w < SOFTPLUS_IDENTITY), (w, True))

    expr = expr.replace(lambda e: isinstance(e, Softplus) and log_ratio_power(e.args[0]) is not None,
                        softplus_form)
    return expr.replace(lambda e: isinstance(e, sp.exp) and log_ratio_power(e.args[0]) is not None,
                        lambda e: exp_form(e.args[0]))


def _clamp_of_guard(g: Guard) -> Clamp | None:
    """Clamp(x, a, ∞) for guard(x, x ≥ a, a), Clamp(x, −∞, a) for guard(x, x ≤ a, a), else None."""
    x, cond, safe = g.args
    if not isinstance(cond, sp.core.relational.Relational) or cond.rel_op not in (">=", "<="):
        return None
    lhs, rhs, op = cond.lhs, cond.rhs, cond.rel_op
    if rhs == x:
        lhs, rhs, op = rhs, lhs, {">=": "<=", "<=": ">="}[op]
    if lhs != x or rhs != safe:
        return None
    return Clamp(x, safe, sp.oo) if op == ">=" else Clamp(x, -sp.oo, safe)


class ClassMax(sp.Function):
    """The maximum over the class axis, keeping it with length 1 (0 where it is not finite): a lowered
    :class:`~symloss.stabilize.MaxOver`."""

    nargs = 1


class ClassSumBelowOne(sp.Function):
    """Σ − 1 over the class axis of terms in [0, 1] whose largest is exactly 1, keeping the axis with length 1,
    the terms below 1 summed apart from the 1s: a lowered :class:`~symloss.stabilize.SumBelowOne`."""

    nargs = 1


class ClassGather(sp.Function):
    """x at the target's class, keeping the class axis with length 1: ``Σ_k y_k·x_k`` for a one-hot y given as
    class indices ``index`` (shape (..., 1)), without the one-hot array."""

    nargs = 2  # (x, index)


class ClassScatter(sp.Function):
    """g with its entry at the target's class replaced by v (one per observation): a per-class expression of a
    one-hot y, g at y_k = 0 everywhere and v at y_k = 1, for a target given as class indices."""

    nargs = 3  # (g, v, index)


#: The reductions over the class axis: one value per observation (the axis kept with length 1).
CLASS_REDUCTIONS = (ClassSum, ClassLogSumExp, ClassMax, ClassSumBelowOne, ClassGather)


def uses_per_class(expr: sp.Basic, per_class: set[sp.Basic] | frozenset[sp.Basic]) -> bool:
    """Whether ``expr`` has a value per class: it uses a per-class symbol outside the class-axis reductions."""
    if isinstance(expr, CLASS_REDUCTIONS):
        return False
    if isinstance(expr, sp.Symbol):
        return expr in per_class
    return any(uses_per_class(a, per_class) for a in expr.args)

#: Functions no printer handles, with the reason given in the "not supported" error.
UNSUPPORTED: dict[str, str] = {
    "besseli": "the modified Bessel function I_ν needs a log-Bessel implementation "
               "(torch has only the scaled orders 0 and 1, torch.special.i0e/i1e; NumPy only np.i0)",
    "besselj": "Bessel functions have no stable NumPy/PyTorch implementation here",
    "besselk": "Bessel functions have no stable NumPy/PyTorch implementation here",
    "harmonic": "harmonic numbers (digamma at integers) are not printed",
    "zeta": "the Riemann/Hurwitz zeta function has no NumPy implementation",
    "hyper": "hypergeometric functions have no NumPy/PyTorch implementation",
    "meijerg": "Meijer G-functions have no NumPy/PyTorch implementation",
    "Integral": "unevaluated integrals cannot be generated",
    "Sum": "a sum that is not over the class axis cannot be generated",
    "Product": "an unevaluated product cannot be generated",
    "lowergamma": "the incomplete gamma function is not supported",
    "uppergamma": "the incomplete gamma function is not supported",
    "erfinv": "erfinv is not supported",
    "erfcinv": "erfcinv is not supported",
}


class _LossPrinterMixin:
    """What both printers share: symbol names, numbers through ``math``, Square, Piecewise as nested where."""

    _where: str
    _math = PythonCodePrinter({"fully_qualified_modules": True, "standard": "python3"})

    def __init__(self, names: Mapping[sp.Basic, str] | None = None, settings: dict | None = None):
        super().__init__({"fully_qualified_modules": True, "strict": True, **(settings or {})})  # type: ignore[call-arg]
        self.names = dict(names or {})
        self.helpers: set[str] = set()
        self.uses_math = False

    # -- names and numbers
    def _print_Symbol(self, expr: sp.Symbol) -> str:
        return self.names.get(expr, expr.name)

    _print_Dummy = _print_Symbol

    def _print(self, expr: sp.Basic, **kwargs) -> str:  # type: ignore[override]
        if isinstance(expr, sp.Basic) and expr.is_number and not expr.is_Rational and not expr.is_Float:
            if isinstance(expr, sp.Expr) and expr.is_real is not True:
                raise UnsupportedError(f"the constant {expr} is not a real number")
            self.uses_math = True
            return self._math.doprint(expr)
        return super()._print(expr, **kwargs)  # type: ignore[misc]

    def _print_Float(self, expr: sp.Float) -> str:
        return repr(float(expr))

    def _print_LogAddExpFallback(self, expr: LogAddExp) -> str:
        # SymPy's dispatch skips a renamed subclass's parent printer (_print_LogAddExp): forward it
        return self._print_LogAddExp(expr)

    #: the helpers that each helper's own code calls (the template emits them with it)
    HELPER_DEPENDENCIES: Mapping[str, Collection[str]] = {}

    def _need(self, *names: str) -> None:
        """Record helpers that the printed code calls, with those that their own code calls in turn."""
        for name in names:
            if name not in self.helpers:
                self.helpers.add(name)
                self._need(*self.HELPER_DEPENDENCIES.get(name, ()))

    def _helper(self, name: str, *args: sp.Basic) -> str:
        self._need(name)
        return f"{name}({', '.join(self._print(a) for a in args)})"

    def _call(self, fqn: str, *args: sp.Basic, extra: str = "") -> str:
        inner = ", ".join(self._print(a) for a in args)
        return f"{self._module_format(fqn)}({inner}{extra})"  # type: ignore[attr-defined]

    # -- stable functions computed by a helper function of the generated module
    #: class name -> helper name (the module defines it; C adds its name prefix, the Python targets a "_")
    HELPER_CALLS: dict[str, str] = {
        "Log1mExp": "log1mexp", "Log1pSquare": "log1p_square", "Log1pSquareDu": "log1p_square_du",
        "Log1pSquareDv": "log1p_square_dv", "Log1pSquareDvc": "log1p_square_dvc", "LogRatio": "log_ratio",
        "XOverExpm1M1": "x_over_expm1_m1", "Bd0": "bd0", "Log1pSquareRem": "log1p_square_rem",
        "LgammaHalfRem": "lgamma_half_rem", "DigammaHalfRem": "digamma_half_rem", "LogQuotient": "log_quotient",
        "MulExp": "mul_exp",
    }
    _helper_prefix = "_"

    def _print_helper_call(self, expr: sp.Basic) -> str:
        return self._helper(self._helper_prefix + self.HELPER_CALLS[type(expr).__name__], *expr.args)

    # -- forms of the target, chosen before cse (model._block calls prepare on every expression)
    #: guard(x, x ≥ a, a) → Clamp(x, a, ∞) (and ≤ → min): where the target's clamp is one cheap pass and
    #: differentiates like the where it replaces.  It must happen before cse, which would otherwise name the
    #: condition (shared with the branch's own where) and hide the pattern.
    _clamp_guards = False
    #: Log1pSquare and its derivatives from one shared SquareParts(u, v) (eager array targets: every helper
    #: recomputing x = u·exp(v), |x| and its clamps is a dozen passes over the arrays each)
    _share_square_parts = False

    def prepare(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` in the forms this target prints best (values unchanged): powers of the data over a scale
        through pow (:func:`pow_ratio_forms`, every target), and see the two flags above."""
        expr = pow_ratio_forms(expr)
        if self._clamp_guards:
            expr = expr.replace(lambda e: isinstance(e, Guard) and _clamp_of_guard(e) is not None,
                                _clamp_of_guard)
        # the Log1pSquare family: exp(v) as SymPy writes it, an argument of the helpers (see WithExpBase)
        if self._share_square_parts:
            def parts(f: sp.Basic) -> sp.Expr:
                of, odd, _ = _SQUARE_PARTS[type(f)]
                u, v, *more = f.args
                # one sign of u for all of them, so that f(y − μ, v) and g(μ − y, v) share their parts
                sign = -1 if u.could_extract_minus_sign() else 1
                shared = SquareParts(sign * u, v, sp.exp(v))
                return (sign if odd else 1) * (of(shared, sign * u, *more) if more else of(shared))

            expr = expr.replace(lambda e: type(e) in _SQUARE_PARTS, parts)
        else:
            expr = expr.replace(lambda e: type(e) in _SQUARE_PARTS,
                                lambda f: _SQUARE_PARTS[type(f)][2](f.args[0], f.args[1], sp.exp(f.args[1]),
                                                                    *f.args[2:]))
        return expr

    def _print_PowRatio(self, expr: PowRatio) -> str:
        return self._helper(self._helper_prefix + "pow_ratio", *expr.args)

    def _print_SquareParts(self, expr: SquareParts) -> str:
        return self._helper(self._helper_prefix + "square_parts", *expr.args)

    def _print_OfSquarePartsBase(self, expr: OfSquarePartsBase) -> str:
        return self._helper(self._helper_prefix + expr.helper, *expr.args)

    def _print_WithExpBase(self, expr: WithExpBase) -> str:
        return self._helper(self._helper_prefix + expr.helper, *expr.args)

    #: the target's clamp: (both bounds, lower only, upper only) as format strings of x, lo, hi
    _clamp = ("torch.clamp({x}, {lo}, {hi})", "torch.clamp({x}, min={lo})", "torch.clamp({x}, max={hi})")

    def _print_Clamp(self, expr: Clamp) -> str:
        x, lo, hi = expr.args
        has_lo, has_hi = lo is not sp.S.NegativeInfinity, hi is not sp.S.Infinity  # (cse may have named a bound)
        form = self._clamp[0 if has_lo and has_hi else 1 if has_lo else 2]
        return form.format(x=self._print(x), lo=self._print(lo) if has_lo else "", hi=self._print(hi) if has_hi else "")

    # -- structure
    def _as_ordered_terms(self, expr: sp.Expr, order: str | None = None) -> list[sp.Expr]:
        """SymPy's order of a sum's terms, with the terms linear in the module's inputs first: a sum of raw
        inputs (log_concentration − log_rate) is exact or nearly so and is where the big terms cancel, so the
        nonlinear corrections (−½·e^−u, a Stirling remainder, a named temporary) are added after it, not
        between them, where their rounding would be magnified by the cancellation."""
        terms = super()._as_ordered_terms(expr, order=order)  # type: ignore[misc]
        if not isinstance(expr, sp.Add):
            return terms

        def linear(t: sp.Expr) -> bool:
            _, rest = t.as_coeff_Mul()
            return isinstance(rest, sp.Symbol) and not str(rest).startswith("_t")

        terms = [t for t in terms if linear(t)] + [t for t in terms if not linear(t)]
        # a leading negative term is a unary minus: one more pass over the arrays (and one more array) in
        # NumPy and PyTorch.  When the second term is positive the two swap places: b − a is −a + b exactly,
        # so the value is bit-identical and the order of the other additions unchanged.
        if self.swap_leading_negative and len(terms) >= 2 and self._negative(terms[0]) and not self._negative(terms[1]):
            terms[0], terms[1] = terms[1], terms[0]
        return terms

    swap_leading_negative = True

    def _negative(self, term: sp.Expr) -> bool:
        """Whether the sum printer writes ``term`` with a minus sign."""
        return not term.is_Add and self._print(term).startswith("-")

    #: For a class-axis loss: the symbols that hold a value per class (the vector arguments and the temporaries
    #: computed from them); None for an elementwise loss.  Set by the model before a block is printed.
    per_class: frozenset[sp.Basic] | None = None

    def _is_per_class(self, expr: sp.Basic) -> bool:
        return uses_per_class(expr, self.per_class or frozenset())

    def _print_Mul(self, expr: sp.Mul) -> str:
        """A product of a class-axis loss with its per-observation factors multiplied together first (one
        number per row), then by the per-class factors: ``e*(s/(r + 1))`` is one pass over the classes where
        ``s*e/(r + 1)``, evaluated left to right, is two."""
        if self.per_class is not None:
            factors = sp.Mul.make_args(expr)
            per_class = [f for f in factors if self._is_per_class(f)]
            per_row = [f for f in factors if not self._is_per_class(f)]
            row = sp.Mul(*per_row)
            if per_class and (len(per_row) > 1 or (row.is_Pow and row.exp.is_negative)) and row != -1:
                sign = "-" if row.could_extract_minus_sign() else ""
                row = -row if sign else row
                body = self.parenthesize(sp.Mul(*per_class), PRECEDENCE["Mul"])  # type: ignore[attr-defined]
                return f"{sign}{body}*({self._print(row)})"
        return super()._print_Mul(expr)  # type: ignore[misc]

    #: the target's elementwise maximum and minimum of two arrays (None: the base printer's own)
    _max: str | None = None
    _min: str | None = None

    def _print_Max(self, expr: sp.Max) -> str:
        if self._max is None:
            return super()._print_Max(expr)  # type: ignore[misc]
        return self._fold(self._max, expr.args)

    def _print_Min(self, expr: sp.Min) -> str:
        if self._min is None:
            return super()._print_Min(expr)  # type: ignore[misc]
        return self._fold(self._min, expr.args)

    def _fold(self, fqn: str, args: tuple[sp.Basic, ...]) -> str:
        """``f(f(a, b), c)``: a binary elementwise function over several arguments."""
        out = self._print(args[0])
        for a in args[1:]:
            out = f"{fqn}({out}, {self._print(a)})"
        return out

    def _print_Square(self, expr: Square) -> str:
        return f"{self.parenthesize(expr.args[0], PRECEDENCE['Pow'] + 1)}**2"  # type: ignore[attr-defined]

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        return self._hprint_Pow(expr, rational=rational, sqrt=self._module_format(self._sqrt))  # type: ignore[attr-defined]

    def _print_Held(self, expr: sp.Basic) -> str:
        return f"({self._print(expr.args[0])})"

    def _print_Guard(self, expr: Guard) -> str:
        x, cond, safe = expr.args
        return self._call(self._where, cond, x, safe)

    def _print_XMulY(self, expr: sp.Basic) -> str:
        return self._print(expr.as_piecewise())  # type: ignore[attr-defined]

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        pieces = list(expr.args)
        if pieces[-1][1] is not sp.true:
            raise UnsupportedError("a Piecewise without an 'otherwise' branch cannot be generated")
        out = self._print(pieces[-1][0])
        for value, cond in reversed(pieces[:-1]):
            out = f"{self._module_format(self._where)}({self._print(cond)}, {self._print(value)}, {out})"  # type: ignore[attr-defined]
        return out

    def _print_Relational(self, expr: sp.core.relational.Relational) -> str:
        ops = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
        lhs = self.parenthesize(expr.lhs, PRECEDENCE["Relational"] + 1)  # type: ignore[attr-defined]
        rhs = self.parenthesize(expr.rhs, PRECEDENCE["Relational"] + 1)  # type: ignore[attr-defined]
        return f"({lhs} {ops[expr.rel_op]} {rhs})"

    def _print_And(self, expr: sp.And) -> str:
        return "(" + " & ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr: sp.Or) -> str:
        return "(" + " | ".join(self._print(a) for a in expr.args) + ")"

    def _print_Not(self, expr: sp.Not) -> str:
        return f"(~{self._print(expr.args[0])})"

    def _print_Indexed(self, expr: sp.Indexed) -> str:
        raise UnsupportedError("an indexed expression survived lowering to the class axis (a bug in symloss)")

    def _print_LogSumExp(self, expr: LogSumExp) -> str:
        raise UnsupportedError("a logsumexp survived lowering to the class axis (a bug in symloss)")

    def _print_polygamma(self, expr: sp.polygamma) -> str:
        n, x = expr.args
        if n == 0:
            return self._digamma(x)
        return self._polygamma(n, x)

    def _print_loggamma(self, expr: sp.loggamma) -> str:
        return self._print(LogGamma(expr.args[0]))

    def _print_digamma(self, expr: sp.Function) -> str:
        return self._digamma(expr.args[0])

    def _digamma(self, x: sp.Basic) -> str:
        raise NotImplementedError

    def _polygamma(self, n: sp.Basic, x: sp.Basic) -> str:
        raise UnsupportedError(f"polygamma of order {n} is not supported in this target")

    def _print_not_supported(self, expr: sp.Basic) -> str:
        name = type(expr).__name__
        reason = UNSUPPORTED.get(name, "no printer rule maps it to the target library")
        raise UnsupportedError(f"not supported: {name} ({reason})")

    def emptyPrinter(self, expr: sp.Basic) -> str:  # noqa: N802 (SymPy's name)
        return self._print_not_supported(expr)


for _name in _LossPrinterMixin.HELPER_CALLS:  # SymPy dispatches on _print_<class name>
    setattr(_LossPrinterMixin, f"_print_{_name}", _LossPrinterMixin._print_helper_call)


class NumpyLossPrinter(_LossPrinterMixin, NumPyPrinter):
    """SymPy → NumPy (``np.``), with the module's own helpers where NumPy has no function."""

    _where = "numpy.where"
    _sqrt = "numpy.sqrt"
    # nested binary calls, not SymPy's functools.reduce(...), which the module would have to import
    _max, _min = "np.maximum", "np.minimum"
    _clamp_guards = True
    _share_square_parts = True
    _clamp = ("np.clip({x}, {lo}, {hi})", "np.maximum({x}, {lo})", "np.minimum({x}, {hi})")
    HELPER_DEPENDENCIES = {
        "_lgammacor_series": ("_blockwise",), "_digammacor_series": ("_blockwise",),
        "_lgamma": ("_blockwise", "_split", "_lgammacor_series"),
        "_digamma": ("_blockwise", "_split", "_digammacor_series"),
        "_lgammacor": ("_lgamma",), "_digammacor": ("_digamma",), "_lbeta": ("_lgamma",), "_lgamma_diff": ("_lgamma",),
        "_digamma_diff": ("_blockwise",), "_digamma_diff_half": ("_blockwise",), "_bd0": ("_blockwise",),
    }

    def prepare(self, expr: sp.Expr) -> sp.Expr:
        """The mixin's forms, and exp of a clamp as the clamp of exp (exp is increasing: the same numbers, as
        exp(max(x, a)) = max(exp(x), exp(a))), so that cse shares exp(x) with the unclamped exp(x) beside it (the
        Stirling branch and the lgamma branch of exp(u) each clamp u, and the gradient has exp(u) itself: three
        passes of exp become one)."""
        expr = super().prepare(expr)

        def exp_of_clamp(e: sp.Basic) -> sp.Expr:
            x, lo, hi = e.args[0].args
            return Clamp(sp.exp(x), lo if lo is sp.S.NegativeInfinity else sp.exp(lo),
                         hi if hi is sp.S.Infinity else sp.exp(hi))

        return expr.replace(lambda e: isinstance(e, sp.exp) and isinstance(e.args[0], Clamp), exp_of_clamp)

    def _module_format(self, fqn: str, register: bool = True) -> str:
        if fqn.startswith("numpy."):
            return "np." + fqn[len("numpy."):]
        if fqn.startswith("math."):
            self.uses_math = True
        return fqn

    def _print_Softplus(self, expr: Softplus) -> str:
        return f"np.logaddexp(0.0, {self._print(expr.args[0])})"

    def _print_Sigmoid(self, expr: Sigmoid) -> str:
        return self._helper("_sigmoid", *expr.args)

    def _print_Sgn(self, expr: Sgn) -> str:
        return f"{self._module_format('numpy.copysign')}(1.0, {self._print(expr.args[0])})"

    def _print_LogAddExp(self, expr: LogAddExp) -> str:
        return self._call("numpy.logaddexp", *expr.args)

    def _print_XLogY(self, expr: XLogY) -> str:
        return self._helper("_xlogy", *expr.args)

    def _print_XLog1pY(self, expr: XLog1pY) -> str:
        return self._helper("_xlog1py", *expr.args)

    def _print_LogNdtr(self, expr: LogNdtr) -> str:
        return self._helper("_log_ndtr", *expr.args)

    def _print_LogNdtrDeriv(self, expr: LogNdtrDeriv) -> str:
        return self._helper("_log_ndtr_deriv", *expr.args)

    def _print_LogGamma(self, expr: LogGamma) -> str:
        return self._helper("_lgamma", *expr.args)

    def _digamma(self, x: sp.Basic) -> str:
        return self._helper("_digamma", x)

    def _print_LogBeta(self, expr: LogBeta) -> str:
        return self._helper("_lbeta", *expr.args)

    def _print_LgammaDifference(self, expr: LgammaDifference) -> str:
        return self._helper("_lgamma_diff", *expr.args)

    def _print_DigammaDifference(self, expr: DigammaDifference) -> str:
        return _print_digamma_difference(self, expr)

    def _print_LgammaCorrection(self, expr: LgammaCorrection) -> str:
        return self._helper("_lgammacor", *expr.args)

    def _print_DigammaCorrection(self, expr: DigammaCorrection) -> str:
        return self._helper("_digammacor", *expr.args)

    def _print_LgammaCorrectionSeries(self, expr: LgammaCorrectionSeries) -> str:
        return self._helper("_lgammacor_series", *expr.args)

    def _print_DigammaCorrectionSeries(self, expr: DigammaCorrectionSeries) -> str:
        return self._helper("_digammacor_series", *expr.args)

    def _print_LogTanhc(self, expr: LogTanhc) -> str:
        return self._helper("_log_tanhc", *expr.args)

    def _print_DLogTanhc(self, expr: DLogTanhc) -> str:
        return self._helper("_dlog_tanhc", *expr.args)

    def _print_log1p(self, expr: log1p) -> str:
        return self._call("numpy.log1p", *expr.args)

    def _print_expm1(self, expr: expm1) -> str:
        return self._call("numpy.expm1", *expr.args)

    def _print_ClassSum(self, expr: ClassSum) -> str:
        return self._call("numpy.sum", *expr.args, extra=", axis=-1, keepdims=True")

    def _print_ClassLogSumExp(self, expr: ClassLogSumExp) -> str:
        return self._helper("_logsumexp", *expr.args)

    def _print_ClassMax(self, expr: ClassMax) -> str:
        return self._helper("_class_max", *expr.args)

    def _print_ClassSumBelowOne(self, expr: ClassSumBelowOne) -> str:
        return self._helper("_sum_below_one", *expr.args)

    def _print_sign(self, expr: sp.sign) -> str:
        return self._call("numpy.sign", *expr.args)


#: the Python templates' log-gamma helpers (torch, JAX) and the Stirling series their code calls
SERIES_HELPER_DEPENDENCIES: Mapping[str, Collection[str]] = {
    "_lbeta": ("_lgammacor_series",), "_lgamma_diff": ("_lgammacor_series",),
    "_lgammacor": ("_lgammacor_series",), "_digammacor": ("_digammacor_series",),
}


class TorchLossPrinter(_LossPrinterMixin, TorchPrinter):
    """SymPy → PyTorch (``torch.``, ``torch.special.``)."""

    HELPER_DEPENDENCIES = SERIES_HELPER_DEPENDENCIES

    _where = "torch.where"
    _sqrt = "torch.sqrt"
    _max, _min = "torch.maximum", "torch.minimum"
    _clamp_guards = True  # torch.clamp passes the gradient at the bound, as the guard's where does
    _share_square_parts = True

    def _module_format(self, fqn: str, register: bool = True) -> str:
        if fqn.startswith("math."):
            self.uses_math = True
        return fqn

    def _print_Mul(self, expr: sp.Mul) -> str:
        """c·x^p (c a number ≠ ±1): the power is a new array that nothing else holds, and pow keeps its input,
        not its result, for autograd: scaling it in place (``(x**2).mul_(c)``) saves allocating a second array
        of the full size, which costs about as much as the pass itself on the CPU."""
        c, rest = expr.as_coeff_Mul()
        # (c > 0 only: a negative term keeps its place and its minus sign in the sum around it)
        if c.is_Number and c > 0 and c != 1 and (isinstance(rest, Square) or (rest.is_Pow and rest.exp.is_number)):
            return f"({self._print(rest)}).mul_({self._print(c)})"
        return super()._print_Mul(expr)

    def _print_Function(self, expr: sp.Function) -> str:
        op = self.mapping.get(type(expr))
        if op is None:
            return self._print_not_supported(expr)
        if len(expr.args) != 1:
            return self._print_not_supported(expr)
        return self._call(op, *expr.args)

    def _print_Softplus(self, expr: Softplus) -> str:
        return self._helper("_softplus", *expr.args)

    def _print_Sigmoid(self, expr: Sigmoid) -> str:
        # not torch.sigmoid, which is 0 below x = −709.8 (−88.7 in float32): the helper keeps the subnormal tail
        return self._helper("_sigmoid", *expr.args)

    def _print_Sgn(self, expr: Sgn) -> str:
        return self._helper("_sgn", *expr.args)

    def _clamp_by_number(self, expr: sp.Basic, fn: str) -> str | None:
        """max(x, c) / min(x, c) with c a number as torch.clamp_min / clamp_max (torch.maximum takes no Python
        number; a clamp is one pass and makes no tensor of c), else None."""
        numbers = [a for a in expr.args if a.is_number]
        if len(expr.args) == 2 and len(numbers) == 1:
            (other,) = [a for a in expr.args if not a.is_number]
            return self._call(fn, other, numbers[0])
        return None

    def _print_Max(self, expr: sp.Max) -> str:
        return self._clamp_by_number(expr, "torch.clamp_min") or super()._print_Max(expr)

    def _print_Min(self, expr: sp.Min) -> str:
        return self._clamp_by_number(expr, "torch.clamp_max") or super()._print_Min(expr)

    def _print_LogAddExp(self, expr: LogAddExp) -> str:
        return self._call("torch.logaddexp", *expr.args)

    def _print_XLogY(self, expr: XLogY) -> str:
        return self._call("torch.special.xlogy", *expr.args)

    def _print_XLog1pY(self, expr: XLog1pY) -> str:
        return self._call("torch.special.xlog1py", *expr.args)

    def _print_LogNdtr(self, expr: LogNdtr) -> str:
        return self._call("torch.special.log_ndtr", *expr.args)

    def _print_LogNdtrDeriv(self, expr: LogNdtrDeriv) -> str:
        return self._helper("_log_ndtr_deriv", *expr.args)

    def _print_LogGamma(self, expr: LogGamma) -> str:
        return self._call("torch.lgamma", *expr.args)

    def _digamma(self, x: sp.Basic) -> str:
        return self._call("torch.digamma", x)

    def _print_LogBeta(self, expr: LogBeta) -> str:
        return self._helper("_lbeta", *expr.args)

    def _print_LgammaDifference(self, expr: LgammaDifference) -> str:
        return self._helper("_lgamma_diff", *expr.args)

    def _print_DigammaDifference(self, expr: DigammaDifference) -> str:
        return _print_digamma_difference(self, expr)

    def _print_LgammaCorrection(self, expr: LgammaCorrection) -> str:
        return self._helper("_lgammacor", *expr.args)

    def _print_DigammaCorrection(self, expr: DigammaCorrection) -> str:
        return self._helper("_digammacor", *expr.args)

    def _print_LgammaCorrectionSeries(self, expr: LgammaCorrectionSeries) -> str:
        return self._helper("_lgammacor_series", *expr.args)

    def _print_DigammaCorrectionSeries(self, expr: DigammaCorrectionSeries) -> str:
        return self._helper("_digammacor_series", *expr.args)

    def _print_LogTanhc(self, expr: LogTanhc) -> str:
        return self._helper("_log_tanhc", *expr.args)

    def _print_DLogTanhc(self, expr: DLogTanhc) -> str:
        return self._helper("_dlog_tanhc", *expr.args)

    def _polygamma(self, n: sp.Basic, x: sp.Basic) -> str:
        return f"torch.polygamma({int(n)}, {self._print(x)})"

    def _print_log1p(self, expr: log1p) -> str:
        return self._call("torch.log1p", *expr.args)

    def _print_expm1(self, expr: expm1) -> str:
        return self._call("torch.expm1", *expr.args)

    def _print_ClassSum(self, expr: ClassSum) -> str:
        return self._call("torch.sum", *expr.args, extra=", dim=-1, keepdim=True")

    def _print_ClassLogSumExp(self, expr: ClassLogSumExp) -> str:
        return self._helper("_logsumexp", *expr.args)

    def _print_ClassMax(self, expr: ClassMax) -> str:
        return self._helper("_class_max", *expr.args)

    def _print_ClassSumBelowOne(self, expr: ClassSumBelowOne) -> str:
        return self._helper("_sum_below_one", *expr.args)

    def _print_ClassGather(self, expr: ClassGather) -> str:
        x, index = expr.args
        return self._call("torch.gather", x, sp.Integer(-1), index)

    def _print_ClassScatter(self, expr: ClassScatter) -> str:
        g, v, index = expr.args
        return self._call("torch.scatter", g, sp.Integer(-1), index, v)


def _print_digamma_difference(printer, expr: DigammaDifference) -> str:
    """ψ(x + h) − ψ(x): for h = ½ (Student-t's degrees of freedom) the helper of that constant step, whose shift
    needs no where and whose series is one of 1/x² (a third of the passes of the general helper)."""
    x, h = expr.args
    prefix = printer._helper_prefix
    if h == sp.S.Half:
        return printer._helper(prefix + "digamma_diff_half", x)
    return printer._helper(prefix + "digamma_diff", x, h)


def printer_for(target: str, names: Mapping[sp.Basic, str] | None = None):
    """A fresh printer for ``target`` (any name in :data:`symloss.codegen.targets.TARGETS`)."""
    from .targets import get_target

    return get_target(target).printer(names)
