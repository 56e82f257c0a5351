"""SymPy → Triton (``triton.language`` as ``tl``) for the bodies of fused GPU kernels.

Inside a ``@triton.jit`` kernel only Triton operations exist: no ``math``
module, no ``**`` on tensors, no library special functions that the CPU
interpreter also runs.  So this printer

* prints exp, log and sqrt as the module's ``_exp``, ``_log`` and ``_sqrt`` (libdevice's correctly rounded
  functions on the GPU: Triton's own float32 exp and log are the approximate ex2/lg2 instructions),
* prints every number as a literal (irrational constants evaluated to 17 digits),
* writes integer powers as products (``x*x``, ``1/(x*x*x)``), ``x**(1/2)`` as
  ``_sqrt(x)`` and other powers as ``_exp(p*_log(x))`` (the bases are
  positive where the registry's losses use them),
* maps the stable functions (softplus, log1p, lgamma, digamma, ...) to small
  ``@triton.jit`` helpers that the module template defines (:attr:`helpers`
  records which).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pycode import PythonCodePrinter

from ..errors import UnsupportedError
from .printers import _LossPrinterMixin, _print_digamma_difference

__all__ = ["TritonLossPrinter"]

#: The largest integer power written as a product; larger ones go through exp/log.
_MAX_PRODUCT_POWER = 8

#: The helpers each helper calls (the template defines the closure of what the printed code uses).
HELPER_DEPENDENCIES: dict[str, frozenset[str]] = {
    "_softplus": frozenset({"_log1p"}),
    "_logaddexp": frozenset({"_log1p"}),
    "_xlog1py": frozenset({"_log1p"}),
    "_log1mexp": frozenset({"_expm1", "_log1p"}),
    "_x_over_expm1_m1": frozenset({"_expm1"}),
    "_bd0": frozenset({"_log1p"}),
    "_log1p_square": frozenset({"_log1p"}),
    "_log1p_square_rem": frozenset({"_log1p"}),
    "_lgamma_half_rem": frozenset({"_log1p"}),
    "_tanh": frozenset({"_expm1"}),
    "_log_tanhc": frozenset({"_tanh"}),
    "_dlog_tanhc": frozenset({"_expm1"}),
    "_log_ndtr": frozenset({"_erfc", "_log1p"}),
    "_lgammacor": frozenset({"_lgamma", "_lgammacor_series"}),
    "_digammacor": frozenset({"_digamma", "_digammacor_series"}),
    "_lbeta": frozenset({"_lgamma", "_lgammacor_series", "_log1p"}),
    "_lgamma_diff": frozenset({"_lgamma", "_lgammacor_series", "_log1p"}),
    "_digamma_diff": frozenset({"_log1p"}),
    "_log_ndtr_deriv": frozenset({"_erfc"}),
}


class TritonLossPrinter(_LossPrinterMixin, PythonCodePrinter):
    """SymPy → ``tl.`` code and the module's ``@triton.jit`` helpers."""

    HELPER_DEPENDENCIES = HELPER_DEPENDENCIES
    _where = "tl.where"
    _sqrt = "_sqrt"
    _max, _min = "tl.maximum", "tl.minimum"
    #: numbers stay literals in the printed code: Triton rounds a float held in a variable to float32, while
    #: a literal takes the dtype of the tensor it meets (checked in tests/test_codegen_triton.py)
    inline_numbers = True

    def __init__(self, names: Mapping[sp.Basic, str] | None = None, settings: dict | None = None):
        super().__init__(names, settings)

    def _module_format(self, fqn: str, register: bool = True) -> str:
        return fqn

    def _helper(self, name: str, *args: sp.Basic) -> str:
        self._need(name)
        return f"{name}({', '.join(self._arg(a) for a in args)})"

    def _arg(self, a: sp.Basic) -> str:
        """A call argument, without parentheses that enclose all of it (a call's own are enough)."""
        text = self._print(a)
        if text.startswith("(") and text.endswith(")"):
            depth = 0
            for i, ch in enumerate(text):
                depth += ch == "("
                depth -= ch == ")"
                if depth == 0:
                    return text[1:-1] if i == len(text) - 1 else text
        return text

    # -- numbers: inside a kernel a Python float meets a float64 tensor as a float32 constant (Triton types a
    # float literal in float32's range as float32), so a number that float32 cannot hold exactly becomes a
    # typed constant of the block, _k<i> = tl.full([1], value, _dt), with _dt the dtype of the arguments
    def begin_block(self) -> None:
        self._block_constants: dict[str, float] = {}

    def block_prologue(self) -> tuple[tuple[str, str], ...]:
        block = getattr(self, "_block_constants", {})
        return tuple((name, f"tl.full([1], {value!r}, _dt)") for name, value in block.items())

    def _number(self, value: float) -> str:
        if value == float(np.float32(value)) or not math.isfinite(value):
            return repr(value) if value >= 0 else f"({value!r})"
        if not hasattr(self, "_constants"):
            self._constants: dict[float, str] = {}
        name = self._constants.setdefault(value, f"_k{len(self._constants)}")
        if not hasattr(self, "_block_constants"):
            self.begin_block()
        self._block_constants[name] = value
        return name

    def _print(self, expr: sp.Basic, **kwargs) -> str:  # type: ignore[override]
        if isinstance(expr, sp.Basic) and expr.is_number and not expr.is_Rational and not expr.is_Float:
            if isinstance(expr, sp.Expr) and expr.is_real is not True:
                raise UnsupportedError(f"the constant {expr} is not a real number")
            return self._number(float(sp.N(expr, 20)))
        return PythonCodePrinter._print(self, expr, **kwargs)

    def _print_Rational(self, expr: sp.Rational) -> str:
        if expr.q == 1:
            return str(expr.p)
        return self._number(float(expr))

    def _print_Half(self, expr: sp.Rational) -> str:
        return "0.5"

    def _print_Integer(self, expr: sp.Integer) -> str:
        return str(expr.p)

    def _print_Float(self, expr: sp.Float) -> str:
        return self._number(float(expr))

    # -- powers
    def _print_Square(self, expr: sp.Basic) -> str:
        base = self.parenthesize(expr.args[0], PRECEDENCE["Mul"] + 1)
        return f"({base}*{base})" if expr.args[0].args else f"{base}*{base}"

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        base, exp = expr.args
        if exp == sp.S.Half:
            return f"_sqrt({self._arg(base)})"
        if exp == -sp.S.Half:
            return f"(1/_sqrt({self._arg(base)}))"
        if exp.is_Integer and 1 <= abs(int(exp)) <= _MAX_PRODUCT_POWER:
            b = self.parenthesize(base, PRECEDENCE["Mul"] + 1)
            product = "*".join([b] * abs(int(exp)))
            if exp > 0:
                return f"({product})"
            return f"(1/{product})" if abs(int(exp)) == 1 else f"(1/({product}))"
        if exp.is_number:
            return f"_exp({self._print(exp)}*_log({self._print(base)}))"
        return f"_exp({self.parenthesize(exp, PRECEDENCE['Mul'])}*_log({self._print(base)}))"

    # -- elementary functions
    def _print_exp(self, expr: sp.exp) -> str:
        return f"_exp({self._arg(expr.args[0])})"

    def _print_log(self, expr: sp.log) -> str:
        if len(expr.args) != 1:
            return self._print(sp.log(expr.args[0]) / sp.log(expr.args[1]))
        return f"_log({self._arg(expr.args[0])})"

    def _print_Abs(self, expr: sp.Abs) -> str:
        return f"tl.abs({self._arg(expr.args[0])})"

    def _print_sign(self, expr: sp.sign) -> str:
        return self._helper("_sign", *expr.args)

    def _print_sin(self, expr: sp.sin) -> str:
        return f"tl.sin({self._arg(expr.args[0])})"

    def _print_cos(self, expr: sp.cos) -> str:
        return f"tl.cos({self._arg(expr.args[0])})"

    def _print_tanh(self, expr: sp.tanh) -> str:
        return self._helper("_tanh", *expr.args)

    def _print_erf(self, expr: sp.erf) -> str:
        return f"tl.erf({self._arg(expr.args[0])})"

    def _print_erfc(self, expr: sp.erfc) -> str:
        return self._helper("_erfc", *expr.args)

    def _print_log1p(self, expr: log1p) -> str:
        return self._helper("_log1p", *expr.args)

    def _print_expm1(self, expr: expm1) -> str:
        return self._helper("_expm1", *expr.args)

    # -- symloss's stable functions
    def _print_Softplus(self, expr: sp.Basic) -> str:
        return self._helper("_softplus", *expr.args)

    def _print_Sigmoid(self, expr: sp.Basic) -> str:
        return self._helper("_sigmoid", *expr.args)

    def _print_Sgn(self, expr: sp.Basic) -> str:
        # by comparison (Triton has no copysign): −0 counts as +0 here, the same for every use of the sign
        return f"tl.where({self._print(expr.args[0])} < 0, -1.0, 1.0)"

    def _print_LogAddExp(self, expr: sp.Basic) -> str:
        out = self._print(expr.args[0])
        for a in expr.args[1:]:
            self._need("_logaddexp")
            out = f"_logaddexp({out}, {self._print(a)})"
        return out

    def _print_XLogY(self, expr: sp.Basic) -> str:
        return self._helper("_xlogy", *expr.args)

    def _print_XLog1pY(self, expr: sp.Basic) -> str:
        return self._helper("_xlog1py", *expr.args)

    def _print_LogNdtr(self, expr: sp.Basic) -> str:
        return self._helper("_log_ndtr", *expr.args)

    def _print_LogNdtrDeriv(self, expr: sp.Basic) -> str:
        return self._helper("_log_ndtr_deriv", *expr.args)

    def _print_LogGamma(self, expr: sp.Basic) -> str:
        return self._helper("_lgamma", *expr.args)

    def _digamma(self, x: sp.Basic) -> str:
        return self._helper("_digamma", x)

    def _print_LogBeta(self, expr: sp.Basic) -> str:
        return self._helper("_lbeta", *expr.args)

    def _print_LgammaDifference(self, expr: sp.Basic) -> str:
        return self._helper("_lgamma_diff", *expr.args)

    def _print_DigammaDifference(self, expr: sp.Basic) -> str:
        return _print_digamma_difference(self, expr)

    def _print_LgammaCorrection(self, expr: sp.Basic) -> str:
        return self._helper("_lgammacor", *expr.args)

    def _print_DigammaCorrection(self, expr: sp.Basic) -> str:
        return self._helper("_digammacor", *expr.args)

    def _print_LgammaCorrectionSeries(self, expr: sp.Basic) -> str:
        return self._helper("_lgammacor_series", *expr.args)

    def _print_DigammaCorrectionSeries(self, expr: sp.Basic) -> str:
        return self._helper("_digammacor_series", *expr.args)

    def _print_LogTanhc(self, expr: sp.Basic) -> str:
        return self._helper("_log_tanhc", *expr.args)

    def _print_DLogTanhc(self, expr: sp.Basic) -> str:
        return self._helper("_dlog_tanhc", *expr.args)

    def _print_Not(self, expr: sp.Not) -> str:
        return f"({self._print(expr.args[0])} == 0)"

    def _print_ClassSum(self, expr: sp.Basic) -> str:
        raise UnsupportedError("class-axis sums are not generated for the Triton target")

    _print_ClassLogSumExp = _print_ClassMax = _print_ClassSumBelowOne = _print_ClassSum

    def _print_Function(self, expr: sp.Function) -> str:
        return self._print_not_supported(expr)
