"""SymPy → C99 (``<math.h>`` only) for the generated C sources.

The expressions become the bodies of ``static`` elementwise functions of
``double`` arguments; the template wraps them in loops over arrays.  This printer

* prints every number as a ``double`` literal (irrational constants evaluated to
  17 significant digits, rationals as ``(1.0/3.0)``: never an integer division),
* writes integer powers as products (``x*x``, ``1.0/(x*x*x)``), ``x**(1/2)`` as
  ``sqrt(x)`` and other powers through ``pow``,
* writes conditions with ``&&``, ``||``, ``!`` and ``where`` as ``?:``,
* maps the stable functions that ``<math.h>`` lacks (softplus, sigmoid,
  logaddexp, xlogy, digamma, log Φ, ...) to small ``static`` helpers that the
  template defines (:attr:`helpers` records which).  Helper calls are printed
  with the placeholder ``$`` (``$softplus(x)``), which the template replaces by
  the module's prefix ``symloss_<name>_``: every name in a generated file is
  prefixed, so that several generated files can share one translation unit,
* writes sums, logsumexps, maxima and sums below one over the class axis as
  markers (``$SUM{...}``, ``$LSE{...}``, ``$MAX{...}``, ``$SBO{...}``) that
  :func:`class_axis_body` turns into loops over the classes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p
from sympy.printing.c import C99CodePrinter
from sympy.printing.precedence import PRECEDENCE

from ..errors import InvalidIdentifierError, UnsupportedError
from .printers import _LossPrinterMixin, _print_digamma_difference

__all__ = ["CLossPrinter", "HELPER_MARK"]

#: The placeholder that the template replaces with ``symloss_<name>_`` (no identifier contains it).
HELPER_MARK = "$"

#: The largest integer power written as a product; larger ones go through pow().
_MAX_PRODUCT_POWER = 8


def _literal(value: float) -> str:
    text = repr(float(value))
    if text in ("inf", "-inf", "nan"):
        raise UnsupportedError(f"the constant {text} cannot be generated for C")
    if "e" not in text and "." not in text:
        text += ".0"
    return text


class CLossPrinter(_LossPrinterMixin, C99CodePrinter):
    """SymPy → C99 expressions over ``double`` and the module's ``static`` helpers."""

    _where = ""  # Piecewise and Guard are printed as ?: below
    _max, _min = "fmax", "fmin"
    _helper_prefix = ""  # _helper() prefixes the module's own name

    def __init__(self, names: Mapping[sp.Basic, str] | None = None, settings: dict | None = None):
        C99CodePrinter.__init__(self, {"strict": True, **(settings or {})})
        self.names = dict(names or {})
        self.helpers: set[str] = set()
        self.uses_math = False
        for name in self.names.values():
            if name.startswith("symloss_"):
                raise InvalidIdentifierError(
                    f"invalid name {name!r}: names starting with 'symloss_' are reserved for the functions of "
                    "generated C code"
                )

    def _module_format(self, fqn: str, register: bool = True) -> str:
        return fqn

    HELPER_DEPENDENCIES = {
        "lbeta": ("lgammacor_series",), "lgamma_diff": ("lgammacor_series",), "lgammacor": ("lgammacor_series",),
        "digammacor": ("digamma", "digammacor_series"),
    }

    def _helper(self, name: str, *args: sp.Basic) -> str:
        self._need(name)
        return f"{HELPER_MARK}{name}({', '.join(self._print(a) for a in args)})"

    def _call(self, fqn: str, *args: sp.Basic, extra: str = "") -> str:
        return f"{fqn}({', '.join(self._print(a) for a in args)}{extra})"

    # -- numbers: double literals
    def _print(self, expr: sp.Basic, **kwargs) -> str:  # type: ignore[override]
        if isinstance(expr, sp.Basic) and expr.is_number and not expr.is_Rational and not expr.is_Float:
            if isinstance(expr, sp.Expr) and expr.is_real is not True:
                raise UnsupportedError(f"the constant {expr} is not a real number")
            return _literal(float(sp.N(expr, 20)))
        return C99CodePrinter._print(self, expr, **kwargs)

    def _print_Rational(self, expr: sp.Rational) -> str:
        if expr.q == 1:
            return _literal(float(expr.p)) if abs(expr.p) < 2**53 else _literal(float(expr))
        value = float(expr)
        if sp.Rational(value) == expr:  # exact in binary: a plain literal
            return _literal(value)
        return f"({expr.p}.0/{expr.q}.0)"

    _print_Integer = _print_Rational

    def _print_Half(self, expr: sp.Rational) -> str:
        return "0.5"

    def _print_Float(self, expr: sp.Float) -> str:
        return _literal(float(expr))

    def _print_Infinity(self, expr: sp.Basic) -> str:
        return "HUGE_VAL"

    def _print_NegativeInfinity(self, expr: sp.Basic) -> str:
        return "(-HUGE_VAL)"

    # -- powers
    def _print_Square(self, expr: sp.Basic) -> str:
        base = self.parenthesize(expr.args[0], PRECEDENCE["Mul"] + 1)
        return f"({base}*{base})"

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        base, exp = expr.args
        if exp == sp.S.Half:
            return f"sqrt({self._print(base)})"
        if exp == -sp.S.Half:
            return f"(1.0/sqrt({self._print(base)}))"
        if exp.is_Integer and 1 <= abs(int(exp)) <= _MAX_PRODUCT_POWER:
            b = self.parenthesize(base, PRECEDENCE["Mul"] + 1)
            product = "*".join([b] * abs(int(exp)))
            return f"({product})" if exp > 0 else f"(1.0/({product}))"
        return f"pow({self._print(base)}, {self._print(exp)})"

    # -- conditions
    def _print_Guard(self, expr: sp.Basic) -> str:
        x, cond, safe = expr.args
        return f"({self._print(cond)} ? {self._print(x)} : {self._print(safe)})"

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        pieces = list(expr.args)
        if pieces[-1][1] is not sp.true:
            raise UnsupportedError("a Piecewise without an 'otherwise' branch cannot be generated")
        out = self._print(pieces[-1][0])
        for value, cond in reversed(pieces[:-1]):
            out = f"({self._print(cond)} ? {self._print(value)} : {out})"
        return out

    def _print_And(self, expr: sp.And) -> str:
        return "(" + " && ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr: sp.Or) -> str:
        return "(" + " || ".join(self._print(a) for a in expr.args) + ")"

    def _print_Not(self, expr: sp.Not) -> str:
        return f"(!{self._print(expr.args[0])})"

    def _print_BooleanTrue(self, expr: sp.Basic) -> str:
        return "1"

    def _print_BooleanFalse(self, expr: sp.Basic) -> str:
        return "0"

    # -- elementary functions (<math.h>)
    def _print_Abs(self, expr: sp.Abs) -> str:
        return self._call("fabs", *expr.args)

    def _print_sign(self, expr: sp.sign) -> str:
        return self._helper("sign", *expr.args)

    def _print_log(self, expr: sp.log) -> str:
        if len(expr.args) != 1:
            return self._print(sp.log(expr.args[0]) / sp.log(expr.args[1]))
        return self._call("log", *expr.args)

    def _print_log1p(self, expr: log1p) -> str:
        return self._call("log1p", *expr.args)

    def _print_expm1(self, expr: expm1) -> str:
        return self._call("expm1", *expr.args)

    # -- symloss's stable functions
    def _print_Softplus(self, expr: sp.Basic) -> str:
        return self._helper("softplus", *expr.args)

    def _print_Sigmoid(self, expr: sp.Basic) -> str:
        return self._helper("sigmoid", *expr.args)

    def _print_Sgn(self, expr: sp.Basic) -> str:
        return f"copysign(1.0, {self._print(expr.args[0])})"

    def _print_LogAddExp(self, expr: sp.Basic) -> str:
        out = self._print(expr.args[0])
        for a in expr.args[1:]:
            self._need("logaddexp")
            out = f"{HELPER_MARK}logaddexp({out}, {self._print(a)})"
        return out

    def _print_XLogY(self, expr: sp.Basic) -> str:
        return self._helper("xlogy", *expr.args)

    def _print_XLog1pY(self, expr: sp.Basic) -> str:
        return self._helper("xlog1py", *expr.args)

    def _print_LogNdtr(self, expr: sp.Basic) -> str:
        return self._helper("log_ndtr", *expr.args)

    def _print_LogNdtrDeriv(self, expr: sp.Basic) -> str:
        return self._helper("log_ndtr_deriv", *expr.args)

    def _print_LogGamma(self, expr: sp.Basic) -> str:
        return self._call("lgamma", *expr.args)

    def _digamma(self, x: sp.Basic) -> str:
        return self._helper("digamma", x)

    def _print_LogBeta(self, expr: sp.Basic) -> str:
        return self._helper("lbeta", *expr.args)

    def _print_LgammaDifference(self, expr: sp.Basic) -> str:
        return self._helper("lgamma_diff", *expr.args)

    def _print_DigammaDifference(self, expr: sp.Basic) -> str:
        return _print_digamma_difference(self, expr)

    def _print_LgammaCorrection(self, expr: sp.Basic) -> str:
        return self._helper("lgammacor", *expr.args)

    def _print_DigammaCorrection(self, expr: sp.Basic) -> str:
        return self._helper("digammacor", *expr.args)

    def _print_LgammaCorrectionSeries(self, expr: sp.Basic) -> str:
        return self._helper("lgammacor_series", *expr.args)

    def _print_DigammaCorrectionSeries(self, expr: sp.Basic) -> str:
        return self._helper("digammacor_series", *expr.args)

    def _polygamma(self, n: sp.Basic, x: sp.Basic) -> str:
        if n == 1:
            return self._helper("trigamma", x)
        raise UnsupportedError(f"polygamma of order {n} is not supported in the C target")

    def _print_LogTanhc(self, expr: sp.Basic) -> str:
        return self._helper("log_tanhc", *expr.args)

    def _print_DLogTanhc(self, expr: sp.Basic) -> str:
        return self._helper("dlog_tanhc", *expr.args)

    # -- class-axis reductions: markers that class_axis_body() turns into loops over the classes
    def _print_ClassSum(self, expr: sp.Basic) -> str:
        return f"{HELPER_MARK}SUM{{{self._print(expr.args[0])}}}"

    def _print_ClassLogSumExp(self, expr: sp.Basic) -> str:
        return f"{HELPER_MARK}LSE{{{self._print(expr.args[0])}}}"

    def _print_ClassMax(self, expr: sp.Basic) -> str:
        return f"{HELPER_MARK}MAX{{{self._print(expr.args[0])}}}"

    def _print_ClassSumBelowOne(self, expr: sp.Basic) -> str:
        return f"{HELPER_MARK}SBO{{{self._print(expr.args[0])}}}"


# ---------------------------------------------------------------------------------------------------------
# class-axis losses: the printed blocks become loops over the classes
_REDUCTION = re.compile(r"\$(SUM|LSE|MAX|SBO)\{([^{}]*)\}")
_IDENT = re.compile(r"\b[A-Za-z_]\w*\b")


def _ids(code: str) -> set[str]:
    return set(_IDENT.findall(code))


class _ClassAxisBody:
    """The C statements of one elementwise kernel of a class-axis loss.

    The printer writes Σ_k e, logsumexp_k e, max_k e and Σ_k e − 1 (e in [0, 1], largest 1) as ``$SUM{e}``,
    ``$LSE{e}``, ``$MAX{e}`` and ``$SBO{e}``.  An assignment is per class
    when, outside those, it uses a vector argument or a per-class assignment; every other one is per
    observation.  Each Σ or logsumexp is hoisted into a per-observation local computed by a loop over the
    classes that recomputes the per-class assignments it needs (no arrays: nothing is allocated).
    """

    def __init__(self, vectors: set[str]):
        self.vectors = vectors
        self.per_class: dict[str, str] = {}  # name -> code (its reductions hoisted already)
        self.lines: list[str] = []
        self.count = 0

    def index(self, code: str) -> str:
        return _IDENT.sub(lambda m: f"{m.group()}[_k]" if m.group() in self.vectors else m.group(), code)

    def needed(self, code: str) -> list[str]:
        """The per-class assignments ``code`` needs (transitively), in definition order."""
        want: set[str] = set()
        stack = [n for n in _ids(code) if n in self.per_class]
        while stack:
            n = stack.pop()
            if n not in want:
                want.add(n)
                stack.extend(m for m in _ids(self.per_class[n]) if m in self.per_class)
        return [n for n in self.per_class if n in want]

    def loop_body(self, code: str, indent: str) -> list[str]:
        return [f"{indent}const double {n} = {self.index(self.per_class[n])};" for n in self.needed(code)]

    def hoist(self, code: str) -> str:
        """``code`` with each class-axis reduction replaced by a local that a loop emitted just before computes."""
        def one(match: re.Match) -> str:
            kind, inner = match.groups()
            name = f"_c{self.count}"
            self.count += 1
            body = self.loop_body(inner, "    ")
            if kind == "SUM":
                self.lines += [f"double {name} = 0.0;", "for (_k = 0; _k < _classes; ++_k) {", *body,
                               f"    {name} += {self.index(inner)};", "}"]
            elif kind == "MAX":  # the shift of a softmax: NaN if any term is, then 0 where not finite
                self.lines += [f"double {name} = -HUGE_VAL;", "for (_k = 0; _k < _classes; ++_k) {", *body,
                               f"    const double _v{name} = {self.index(inner)};",
                               f"    if (_v{name} > {name} || _v{name} != _v{name}) {name} = _v{name};", "}",
                               f"if (!isfinite({name})) {name} = 0.0;"]
            elif kind == "SBO":  # Σ − 1 of terms in [0, 1] whose largest is 1: the 1s counted apart, so that
                # a tiny rest is not rounded against them
                self.lines += [f"double {name} = 0.0;", f"double _o{name} = 0.0;",
                               "for (_k = 0; _k < _classes; ++_k) {", *body,
                               f"    const double _v{name} = {self.index(inner)};",
                               f"    if (_v{name} == 1.0) _o{name} += 1.0; else {name} += _v{name};", "}",
                               f"{name} += _o{name} - 1.0;"]
            else:  # the maximum (NaN if any term is) shifted out: no overflow; log1p of the other terms (the
                # first maximum's is exactly 1) keeps a tiny rest that log(1 + rest) rounds away
                self.lines += [f"double {name} = -HUGE_VAL;", f"size_t _i{name} = 0;",
                               "for (_k = 0; _k < _classes; ++_k) {", *body,
                               f"    const double _v{name} = {self.index(inner)};",
                               f"    if (_v{name} > {name} || _v{name} != _v{name}) {{",
                               f"        {name} = _v{name};", f"        _i{name} = _k;", "    }", "}",
                               f"if (isfinite({name})) {{", f"    double _s{name} = 0.0;",
                               "    for (_k = 0; _k < _classes; ++_k) {", *["    " + b for b in body],
                               f"        if (_k != _i{name}) _s{name} += exp({self.index(inner)} - {name});", "    }",
                               f"    {name} += log1p(_s{name});", "}"]
            return name

        # innermost first: a logsumexp inside a class sum (one number per row) is hoisted before the sum
        previous = None
        while code != previous:
            previous, code = code, _REDUCTION.sub(one, code)
        return code

    def assign(self, name: str, code: str) -> None:
        code = self.hoist(code)
        if _ids(code) & (self.vectors | set(self.per_class)):
            self.per_class[name] = code
        else:
            self.lines.append(f"const double {name} = {code};")


def class_axis_body(block: Any, model: Any, kind: str) -> str:
    """The statements of the ``kind`` ("value", "grads" or "constant") kernel of a class-axis ``model``.

    The kernels get the row of each vector argument (a pointer to its ``_classes`` values) and the value of
    each per-observation argument; "grads" writes ∂ℓ/∂x into ``_grad_x`` (a row for a vector input, one
    value otherwise; skipped when NULL) and returns ℓ.
    """
    vectors = {a.name for a in model.arguments if a.vector}
    body = _ClassAxisBody(vectors)
    body.lines.append("size_t _k;")
    for name, code in block.assignments:
        body.assign(name, code)
    value = body.hoist(block.outputs[0])
    if kind == "grads":
        for arg, code in zip(model.trained, block.outputs[1:]):
            code = body.hoist(code)
            if arg.vector:
                body.lines += [f"if (_grad_{arg.name}) {{", "    for (_k = 0; _k < _classes; ++_k) {",
                               *body.loop_body(code, "        "),
                               f"        _grad_{arg.name}[_k] = {body.index(code)};", "    }", "}"]
            else:
                body.lines += [f"if (_grad_{arg.name}) {{", f"    *_grad_{arg.name} = {code};", "}"]
    if _ids(value) & (vectors | set(body.per_class)):  # cannot happen: ℓ is per observation
        raise UnsupportedError("the loss of a class-axis model is not a sum over the classes")
    uses_k = any(re.search(r"\b_k\b", line) for line in body.lines[1:])
    lines = body.lines if uses_k else body.lines[1:]
    lines.append(f"return {value};")
    return "\n".join("    " + line for line in lines)
