"""SymPy → JAX (``jnp.``, ``jax.scipy.special.``, ``jax.nn.``) for the generated JAX modules.

The NumPy printer with JAX's names: every special function the NumPy target
writes a helper for has a JAX implementation (``gammaln``, ``digamma``,
``polygamma``, ``log_ndtr``, ``xlogy``, ``xlog1py``, ``erfc``), so only
``_log1mexp`` and the two ``tanh(x)/x`` helpers remain module helpers.
Numbers stay Python numbers (``math.log(2.0)``, ``1/3``): JAX treats them as
weakly typed, so float32 inputs stay float32.
"""

from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from .printers import SERIES_HELPER_DEPENDENCIES, ClassLogSumExp, ClassSum, NumpyLossPrinter

__all__ = ["JaxLossPrinter"]

_SPECIAL = "jax.scipy.special."


class JaxLossPrinter(NumpyLossPrinter):
    """SymPy → JAX: ``jnp.`` for NumPy's functions, ``jax.scipy.special``/``jax.nn`` for the special ones."""

    _where = "numpy.where"  # printed as jnp.where
    _sqrt = "numpy.sqrt"
    _max, _min = "jnp.maximum", "jnp.minimum"
    # jit fuses the wheres and shares repeated subexpressions itself; and jnp.maximum gives each side half the
    # gradient at a tie, where the guard's where gives it all to x: the NumPy printer's clamps and shared
    # square parts are not used
    _clamp_guards = False
    _share_square_parts = False
    # the JAX template's helpers (not the NumPy module's blockwise ones)
    HELPER_DEPENDENCIES = SERIES_HELPER_DEPENDENCIES

    def _module_format(self, fqn: str, register: bool = True) -> str:
        if fqn.startswith("numpy."):
            return "jnp." + fqn[len("numpy."):]
        if fqn.startswith("math."):
            self.uses_math = True
        return fqn

    def _print_Softplus(self, expr: sp.Basic) -> str:
        # logaddexp(0, x) = max(x, 0) + log1p(exp(−|x|)): no overflow, no loss of the tiny values
        return f"jnp.logaddexp(0.0, {self._print(expr.args[0])})"

    def _print_Sigmoid(self, expr: sp.Basic) -> str:
        return self._call("jax.nn.sigmoid", *expr.args)

    def _print_Sgn(self, expr: sp.Basic) -> str:
        return f"jnp.copysign(1.0, {self._print(expr.args[0])})"

    def _print_XLogY(self, expr: sp.Basic) -> str:
        return self._call(_SPECIAL + "xlogy", *expr.args)

    def _print_XLog1pY(self, expr: sp.Basic) -> str:
        return self._call(_SPECIAL + "xlog1py", *expr.args)

    def _print_LogNdtr(self, expr: sp.Basic) -> str:
        return self._call(_SPECIAL + "log_ndtr", *expr.args)

    def _print_LogGamma(self, expr: sp.Basic) -> str:
        return self._call(_SPECIAL + "gammaln", *expr.args)

    def _digamma(self, x: sp.Basic) -> str:
        return self._call(_SPECIAL + "digamma", x)

    # the helpers of the JAX template (jax.scipy.special.betaln loses digits at a = b = 1e30)
    def _print_LogBeta(self, expr: sp.Basic) -> str:
        return self._helper("_lbeta", *expr.args)

    def _print_LgammaDifference(self, expr: sp.Basic) -> str:
        return self._helper("_lgamma_diff", *expr.args)

    def _print_LgammaCorrection(self, expr: sp.Basic) -> str:
        return self._helper("_lgammacor", *expr.args)

    def _print_DigammaCorrection(self, expr: sp.Basic) -> str:
        return self._helper("_digammacor", *expr.args)

    def _polygamma(self, n: sp.Basic, x: sp.Basic) -> str:
        return f"{_SPECIAL}polygamma({int(n)}, {self._print(x)})"

    def _print_erfc(self, expr: sp.Basic) -> str:
        return self._call(_SPECIAL + "erfc", *expr.args)

    def _print_erf(self, expr: sp.Basic) -> str:
        return self._call(_SPECIAL + "erf", *expr.args)

    def _print_log1p(self, expr: log1p) -> str:
        return self._call("jnp.log1p", *expr.args)

    def _print_expm1(self, expr: expm1) -> str:
        return self._call("jnp.expm1", *expr.args)

    def _print_ClassSum(self, expr: ClassSum) -> str:
        return self._call("jnp.sum", *expr.args, extra=", axis=-1, keepdims=True")

    def _print_ClassLogSumExp(self, expr: ClassLogSumExp) -> str:
        return self._call("jax.nn.logsumexp", *expr.args, extra=", axis=-1, keepdims=True")

    def _print_sign(self, expr: sp.sign) -> str:
        return self._call("jnp.sign", *expr.args)
