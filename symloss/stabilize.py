"""Stabilising rewrites: a declarative table of named rules applied to a loss and to each of its gradients.

A derived loss is exact mathematics, not yet good arithmetic: ``log(1 + exp(x))``
overflows for x > 709 (88 in float32), ``exp(x)/(1 + exp(x))`` is ∞/∞ = NaN, and
``0·log 0`` is NaN although its limit is 0.  Each :class:`Rule` below rewrites one
such pattern into an equal expression that stays finite wherever the true value
is finite.  The functions they introduce (:class:`Softplus`, :class:`Sigmoid`,
:class:`LogAddExp`, :class:`LogSumExp`, :class:`XLogY`, :class:`Log1mExp`,
:class:`LogNdtr`, ...) are SymPy functions with exact derivatives (``fdiff``), so
a stabilised loss can be differentiated again, and with an exact numeric value
(``evalf``) through their elementary form.  The code printers
(:mod:`symloss.codegen.printers`) map them onto NumPy and PyTorch.

:func:`stabilize` applies :data:`RULES` in table order, each over the whole
expression (bottom-up), and repeats until nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

import sympy as sp
from mpmath.libmp import prec_to_dps
from sympy.codegen.cfunctions import expm1, log1p

__all__ = [
    "Softplus",
    "Sigmoid",
    "Sgn",
    "Held",
    "LogAddExp",
    "LogAddExpFallback",
    "LogSumExp",
    "MaxOver",
    "SumBelowOne",
    "XLogY",
    "XLog1pY",
    "XMulY",
    "MulExp",
    "LogRatio",
    "log_ratio_power",
    "LogQuotient",
    "Log1mExp",
    "XOverExpm1M1",
    "Log1pSquare",
    "Log1pSquareDu",
    "Log1pSquareDuScaled",
    "Log1pSquareDv",
    "Log1pSquareDvc",
    "Log1pSquareRem",
    "LogNdtr",
    "LogNdtrDeriv",
    "LogGamma",
    "LogBeta",
    "LgammaDifference",
    "DigammaDifference",
    "Bd0",
    "LgammaHalfRem",
    "DigammaHalfRem",
    "LgammaCorrection",
    "LgammaCorrectionSeries",
    "DigammaCorrection",
    "DigammaCorrectionSeries",
    "LogTanhc",
    "DLogTanhc",
    "Square",
    "Guard",
    "StableFunction",
    "STABLE_FUNCTIONS",
    "Context",
    "Rule",
    "RULES",
    "RULES_BY_NAME",
    "stabilize",
    "elementary",
    "fired_rules",
]


# ---------------------------------------------------------------------------------------------------------
# stable functions
class StableFunction(sp.Function):
    """A function with a numerically stable implementation in the printers and an elementary definition.

    ``as_elementary()`` gives the textbook formula (for checks); ``evalf`` goes
    through it, which is exact because mpmath has an unbounded exponent range.
    """

    def as_elementary(self) -> sp.Expr:
        raise NotImplementedError

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return self.as_elementary().evalf(prec_to_dps(prec))

    def _eval_is_real(self) -> bool | None:
        return all(a.is_real for a in self.args) or None


class Softplus(StableFunction):
    """softplus(x) = log(1 + exp(x)), computed as logaddexp(0, x)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return Sigmoid(self.args[0])

    def as_elementary(self) -> sp.Expr:
        return sp.log(1 + sp.exp(self.args[0]))

    def _eval_is_positive(self) -> bool | None:
        return self.args[0].is_real or None


class Sigmoid(StableFunction):
    """sigmoid(x) = 1/(1 + exp(−x)), evaluated without overflow on both sides."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        x = self.args[0]
        return Sigmoid(x) * Sigmoid(-x)  # σ(x)(1 − σ(x)) without the cancellation in 1 − σ(x)

    def as_elementary(self) -> sp.Expr:
        return 1 / (1 + sp.exp(-self.args[0]))

    def _eval_is_positive(self) -> bool | None:
        return self.args[0].is_real or None


class Sgn(StableFunction):
    """copysign(1, x): +1 where the sign bit of x is clear (x ≥ +0), −1 where it is set (x ≤ −0).

    The sign with a side at 0 (sympy's sign(0) is 0): |x| = x·Sgn(x) and the step Max(Sgn(x), 0) take the
    same branch at 0 in every printer (by the sign bit, so that −0 agrees with copysign), and x·Sgn(x)
    differentiates, under autograd too, to Sgn(x) = ±1, so that a second derivative at 0 is that of one
    side, where abs'(0) = 0 would drop it.  Its own derivative is 0: it is constant on each side.
    """

    nargs = 1

    @classmethod
    def eval(cls, x: sp.Expr) -> sp.Expr | None:
        if x.is_number and x.is_extended_real:
            return sp.S.One if x >= 0 else sp.S.NegativeOne
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.S.Zero

    def as_elementary(self) -> sp.Expr:
        x = self.args[0]
        return sp.Piecewise((1, x >= 0), (-1, True))

    def _eval_evalf(self, prec: int) -> sp.Expr:
        x = self.args[0].evalf(prec_to_dps(prec))
        return sp.S.One if x >= 0 else sp.S.NegativeOne

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real or None


class Held(StableFunction):
    """Its argument, computed on its own and first: the printers parenthesise it, and sympy does not merge its
    terms into a sum around it (as it flattens a + (b + c)), so the order of the additions inside is kept."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.S.One

    def as_elementary(self) -> sp.Expr:
        return self.args[0]


class LogAddExp(StableFunction):
    """logaddexp(a, b) = log(exp(a) + exp(b)) = max(a, b) + log1p(exp(−|a − b|))."""

    nargs = 2

    @classmethod
    def eval(cls, a: sp.Expr, b: sp.Expr) -> sp.Expr | None:
        if a.is_zero:
            return Softplus(b)
        if b.is_zero:
            return Softplus(a)
        if sp.default_sort_key(b) < sp.default_sort_key(a):  # one canonical order: cse sees equal calls as equal
            return cls(b, a)
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        a, b = self.args
        return Sigmoid(a - b) if argindex == 1 else Sigmoid(b - a)

    def as_elementary(self) -> sp.Expr:
        a, b = self.args
        return sp.log(sp.exp(a) + sp.exp(b))


class LogAddExpFallback(LogAddExp):
    """The same logaddexp, in the fallback branch that the ``log_mixture`` rule builds around it.

    A distinct class only so that the rule does not match its own fallback again (it tests the exact
    type); everything else (derivatives, values, the printers, which dispatch on the class's MRO and so
    print it as ``LogAddExp``) is inherited.
    """


class ClassAxisFunction(StableFunction):
    """A function of the terms ``body_m`` over the class axis: ``F(body, (m, lo, hi))``, ``m`` the bound index."""

    nargs = 2

    @property
    def body(self) -> sp.Expr:
        return self.args[0]

    @property
    def limits(self) -> sp.Tuple:
        return self.args[1]

    @property
    def free_symbols(self) -> set[sp.Basic]:
        index = self.limits[0]
        return (self.body.free_symbols - {index}) | self.limits[1].free_symbols | self.limits[2].free_symbols

    def _terms(self, **hints) -> list[sp.Expr] | None:
        """The terms body_lo … body_hi with a numeric number of classes, else None."""
        index, lo, hi = self.limits
        if not (hi - lo).is_Integer or not lo.is_Integer:
            return None
        body = self.body.doit(**hints) if hints.get("deep", True) else self.body
        return [body.subs(index, i) for i in range(int(lo), int(hi) + 1)]

    def _eval_is_real(self) -> bool | None:
        return self.body.is_real or None


class LogSumExp(ClassAxisFunction):
    """log Σ_m exp(body_m) over the class axis: ``LogSumExp(body, (m, lo, hi))``.

    The printers compute it along the last axis with the maximum shifted out.
    """


    def as_elementary(self) -> sp.Expr:
        return sp.log(sp.Sum(sp.exp(self.body), tuple(self.limits)))

    def doit(self, **hints) -> sp.Expr:
        """With a numeric number of classes: the explicit nested logaddexp over them."""
        terms = self._terms(**hints)
        if terms is None:
            body = self.body.doit(**hints) if hints.get("deep", True) else self.body
            return self.func(body, self.limits)
        out = terms[0]
        for t in terms[1:]:
            out = LogAddExp(out, t)
        return out

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return self.as_elementary().doit().evalf(prec_to_dps(prec))

    def _eval_derivative(self, s: sp.Basic) -> sp.Expr:
        # d/ds log Σ exp(b_m) = Σ_m softmax(b)_m · ∂b_m/∂s; a Kronecker delta δ(m, j) picks one term
        index = self.limits[0]
        d = sp.diff(self.body, s)
        if d == 0:
            return sp.S.Zero
        weight = sp.exp(self.body - self)
        deltas = [f for f in sp.Mul.make_args(d) if isinstance(f, sp.KroneckerDelta) and index in f.free_symbols]
        if len(deltas) == 1 and sp.Mul.make_args(d).count(deltas[0]) == 1:
            (other,) = deltas[0].free_symbols - {index} or {None}
            if other is not None:  # the delta picks the term m = other (a valid class index)
                return sp.exp(self.body.subs(index, other) - self) * (d / deltas[0]).subs(index, other)
        return sp.Sum(weight * d, tuple(self.limits))


class MaxOver(ClassAxisFunction):
    """max_m body_m over the class axis: ``MaxOver(body, (m, lo, hi))``, the shift of a softmax.

    Only its being the largest term matters numerically (every expression that uses it is mathematically
    independent of the shift: ``L = M + log1p(Σ_m exp(body_m − M) − 1)`` for any M), so it has no derivative
    here; the printers compute it along the last axis (a non-finite maximum replaced by 0, as in the
    logsumexp helpers).
    """


    def as_elementary(self) -> sp.Expr:
        terms = self._terms()
        return self if terms is None else sp.Max(*terms)  # no elementary form over a symbolic class count

    def doit(self, **hints) -> sp.Expr:
        """With a numeric number of classes: Max of the terms."""
        terms = self._terms(**hints)
        return self.func(self.body, self.limits) if terms is None else sp.Max(*terms)

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return self.doit().evalf(prec_to_dps(prec))

    def _eval_derivative(self, s: sp.Basic) -> sp.Expr:
        raise NotImplementedError("MaxOver is a shift that cancels from every expression using it: differentiate "
                                  "the expression before the softmax rewrites")


class SumBelowOne(ClassAxisFunction):
    """Σ_m body_m − 1 for terms in [0, 1] of which the largest is exactly 1: the softmax denominator
    Σ_m exp(z_m − max z) less its largest term.  ``SumBelowOne(body, (m, lo, hi))``.

    The printers add up the terms below 1 on their own and count the terms equal to 1 (the maximum, and
    any tie) apart: a rest of 4e-18 survives, where 1 + 4e-18 − 1 is 0.
    """


    def as_elementary(self) -> sp.Expr:
        return sp.Sum(self.body, tuple(self.limits)) - 1

    def doit(self, **hints) -> sp.Expr:
        terms = self._terms(**hints)
        return self.func(self.body, self.limits) if terms is None else sp.Add(*terms) - 1

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return self.as_elementary().doit().evalf(prec_to_dps(prec))

    def _eval_derivative(self, s: sp.Basic) -> sp.Expr:
        d = sp.diff(self.body, s)
        return sp.S.Zero if d == 0 else sp.Sum(d, tuple(self.limits))


class XLogY(StableFunction):
    """xlogy(x, y) = x·log(y), and 0 where x = 0 (so 0·log 0 = 0)."""

    nargs = 2

    @classmethod
    def eval(cls, x: sp.Expr, y: sp.Expr) -> sp.Expr | None:
        if x.is_zero:
            return sp.S.Zero
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        x, y = self.args
        return sp.log(y) if argindex == 1 else x / y

    def as_elementary(self) -> sp.Expr:
        x, y = self.args
        return x * sp.log(y)

    def _eval_evalf(self, prec: int) -> sp.Expr:
        if self.args[0].is_zero:
            return sp.S.Zero
        return super()._eval_evalf(prec)


class XLog1pY(StableFunction):
    """xlog1py(x, y) = x·log1p(y), and 0 where x = 0."""

    nargs = 2

    @classmethod
    def eval(cls, x: sp.Expr, y: sp.Expr) -> sp.Expr | None:
        if x.is_zero:
            return sp.S.Zero
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        x, y = self.args
        return log1p(y) if argindex == 1 else x / (1 + y)

    def as_elementary(self) -> sp.Expr:
        x, y = self.args
        return x * sp.log(1 + y)

    def _eval_evalf(self, prec: int) -> sp.Expr:
        if self.args[0].is_zero:
            return sp.S.Zero
        return super()._eval_evalf(prec)


class XMulY(StableFunction):
    """xmuly(x, y) = x·y, and 0 where x = 0: a weight that is exactly 0 (a 0/1 indicator, an underflowed
    sigmoid) times a factor that overflows is 0, not 0·∞ = NaN."""

    nargs = 2

    @classmethod
    def eval(cls, x: sp.Expr, y: sp.Expr) -> sp.Expr | None:
        if x.is_zero:
            return sp.S.Zero
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        x, y = self.args
        return y if argindex == 1 else x

    def as_elementary(self) -> sp.Expr:
        x, y = self.args
        return x * y

    def as_piecewise(self) -> sp.Piecewise:
        """The printed form: where(x == 0, 0, x·y)."""
        x, y = self.args
        return sp.Piecewise((sp.S.Zero, sp.Eq(x, 0, evaluate=False)), (x * y, True), evaluate=False)

    def _eval_evalf(self, prec: int) -> sp.Expr:
        if self.args[0].is_zero:
            return sp.S.Zero
        return super()._eval_evalf(prec)


class LogRatio(StableFunction):
    """log_ratio(y, s) = log(y) − s = log(y·e^−s) for y ≥ 0, s real (a log-link input: log_scale, log_alpha).

    Where y ≈ e^s the difference is tiny, and log(y) rounded to float64 has lost it already: at y = 1e-30 and
    s = fl(log 1e-30) the exact difference is log's own rounding error, ≈ 1e-15, which fl(log y) − s gives
    as 0 (and a Weibull's (y/λ)^k = exp(k·(log y − s)) at k = 1e30 as 1 instead of 0).  The printers split
    y = m·2^e with m in [√½, √2) (frexp, exact) and sum (e·ln2_hi − s) + (e·ln2_lo + log m): e·ln2_hi is
    exact (ln2_hi has 15 bits), so is its difference with s where they are close (Sterbenz), and log m is
    at most 0.35 in size, so log y is carried to ~5e-17 absolute instead of half an ulp of log y.
    """

    nargs = 2

    @classmethod
    def eval(cls, y: sp.Expr, s: sp.Expr) -> sp.Expr | None:
        if s.is_zero:
            return sp.log(y)
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        y, _s = self.args
        if argindex == 1:
            return 1 / y
        if argindex == 2:
            return sp.S.NegativeOne
        raise sp.ArgumentIndexError(self, argindex)

    def as_elementary(self) -> sp.Expr:
        y, s = self.args
        return sp.log(y) - s


def log_ratio_power(w: sp.Expr) -> tuple[sp.Expr, sp.Expr, LogRatio] | None:
    """(c, p, log_ratio(y, s)) with w = c + p·log_ratio(y, s), c and p free of the log_ratio, or None (no
    log_ratio in w, several, or one that is not linear in w).

    exp(w) is then e^c·(y·e^−s)^p, a power of the data over a scale (a Weibull's (y/λ)^k, w = k·(log y − log λ)),
    which the printers compute with the library's pow where its base y·e^−s is a normal number: exp of w
    rounded to float64 is off by |w| half-ulps of relative error (160 ulps at (y/λ)^k = 1e300, λ = k = 1, where
    the inputs are exact and the condition number is 1), pow computes its logarithm in extended precision."""
    ratios = w.atoms(LogRatio)
    if len(ratios) != 1:
        return None
    (lr,) = ratios
    c, p = [], []
    for t in sp.Add.make_args(sp.expand_mul(w, deep=False)):
        rest, factor = t.as_independent(lr, as_Add=False)
        if factor == 1:
            c.append(t)
        elif factor == lr:
            p.append(rest)
        else:
            return None
    if not p:
        return None
    return sp.Add(*c), sp.Add(*p), lr
class LogQuotient(StableFunction):
    """log_quotient(y, x, s, l) = log(y/x) = l − s for y ≥ 0, x = e^s > 0 and l = log y, all three given as computed
    (x and l are in the loss already): :class:`LogRatio`'s difference log y − s where the exponential is at hand.
    The printers take log(y/x) where y/x is a positive normal number (y/x correctly rounded and x to half an ulp:
    log y − s to ~2e-16 absolute where y ≈ x, against half an ulp of log y for fl(log y) − s), l − s where y/x
    over- or underflows (|log y − s| > 708, where relative accuracy is enough): a division, a log and a where,
    a quarter of log_ratio's passes in PyTorch (which has no frexp that inductor compiles).  As a function of
    four independent arguments it is l − s (the chain rule through consistent arguments, x = e^s and l = log y,
    gives the derivative of log y − s)."""

    nargs = 4

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        if argindex in (1, 2):
            return sp.S.Zero
        if argindex == 3:
            return sp.S.NegativeOne
        if argindex == 4:
            return sp.S.One
        raise sp.ArgumentIndexError(self, argindex)

    def as_elementary(self) -> sp.Expr:
        _y, _x, s, ly = self.args
        return ly - s


class Log1mExp(StableFunction):
    """log1mexp(x) = log(1 − exp(−x)) for x > 0 (Mächler 2012: log(−expm1(−x)) below log 2, log1p(−exp(−x)) above)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return 1 / expm1(self.args[0])

    def as_elementary(self) -> sp.Expr:
        return sp.log(1 - sp.exp(-self.args[0]))


class XOverExpm1M1(StableFunction):
    """x/expm1(x) − 1 (−x/2 + x²/12 − … near 0, the Bernoulli generating function less its 1): its Taylor series
    to x²² for |x| < 1, the formula above (−1 where expm1 overflows, −x − 1 far below 0).  x/expm1(x) − 1 as
    written loses every digit for tiny x (1 − 3.4e-28 rounds to 1), and the difference is what is wanted
    there (a Kumaraswamy's ∂ℓ/∂log a at a = 1e-30: z − 1 + (1 − b)·z/expm1(z) with z = −a·log y)."""

    nargs = 1

    @classmethod
    def eval(cls, x: sp.Expr) -> sp.Expr | None:
        if x.is_zero:
            return sp.S.Zero
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        x = self.args[0]
        # (expm1(x) − x·eˣ)/expm1(x)²  (only for symbolic checks: the printers differentiate the generated code)
        return (expm1(x) - x * sp.exp(x)) / expm1(x) ** 2

    def as_elementary(self) -> sp.Expr:
        x = self.args[0]
        return x / (sp.exp(x) - 1) - 1

    def _eval_evalf(self, prec: int) -> sp.Expr:
        if self.args[0].is_zero:
            return sp.S.Zero
        return super()._eval_evalf(prec)


class Log1pSquare(StableFunction):
    """log1p_square(u, v) = log(1 + x²) with x = u·exp(v): log1p(x²) for |x| ≤ 1, above it
    2·log|x| + log1p(x⁻²), and log|x| = log|u| + v where x itself overflows (the Cauchy and Student-t tails,
    x the standardised residual: (y − μ)/σ with σ = exp(−v))."""

    nargs = 2

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        u, v = self.args
        if argindex == 1:
            return 2 * Log1pSquareDu(u, v)
        if argindex == 2:
            return 2 * Log1pSquareDv(u, v)
        raise sp.ArgumentIndexError(self, argindex)

    def as_elementary(self) -> sp.Expr:
        u, v = self.args
        return sp.log(1 + u**2 * sp.exp(2 * v))

    def _eval_is_nonnegative(self) -> bool | None:
        return all(a.is_real for a in self.args) or None


class Log1pSquareDu(StableFunction):
    """½·∂/∂u log(1 + (u·e^v)²) = u·e^(2v)/(1 + x²), x = u·e^v: x·e^v/(1 + x²) for |x| ≤ 1, above it
    1/(u·(1 + x⁻²)), which neither overflows (x², x·e^v) nor divides ∞ by ∞."""

    nargs = 2

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        # only for symbolic checks: the printers differentiate the generated code, not this
        return sp.diff(self.as_elementary(), self.args[argindex - 1])

    def as_elementary(self) -> sp.Expr:
        u, v = self.args
        return u * sp.exp(2 * v) / (1 + u**2 * sp.exp(2 * v))


class Log1pSquareDuScaled(StableFunction):
    """k·u·exp(2v)/(1 + x²), x = u·exp(v), for k > 0: k times :class:`Log1pSquareDu`, with k inside, because the
    product is what must not underflow: the Student-t's ∂ℓ/∂loc = (ν + 1)·z/(ν·σ² + z²) is (ν + 1)·u·e^(2v)/(1 + x²)
    with e^v = 1/(σ·√ν), and at ν = 1e30, σ = e^−1, z = 1e-300 the x·e^v = 7.7e-330 of log1p_square_du has
    underflowed to 0 (or to a subnormal of a few bits) before (ν + 1) multiplies it back to 7.4e-300.  The
    printers form (u·(k·e^v))·e^v for |x| ≤ 1 (u·k·e^v is x·k, at most k: no overflow, and no underflow that
    x·e^v alone would not have), k/(u·(1 + x⁻²)) above."""

    nargs = 3

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        # only for symbolic checks: the printers differentiate the generated code, not this
        return sp.diff(self.as_elementary(), self.args[argindex - 1])

    def as_elementary(self) -> sp.Expr:
        u, v, k = self.args
        return k * u * sp.exp(2 * v) / (1 + u**2 * sp.exp(2 * v))


class Log1pSquareDv(StableFunction):
    """½·∂/∂v log(1 + (u·e^v)²) = x²/(1 + x²), x = u·e^v: as written for |x| ≤ 1, 1/(1 + x⁻²) above
    (x² overflows to ∞ and x²/(1 + x²) to ∞/∞ = NaN)."""

    nargs = 2

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.diff(self.as_elementary(), self.args[argindex - 1])

    def as_elementary(self) -> sp.Expr:
        u, v = self.args
        return u**2 * sp.exp(2 * v) / (1 + u**2 * sp.exp(2 * v))

    def _eval_is_nonnegative(self) -> bool | None:
        return all(a.is_real for a in self.args) or None


class Log1pSquareDvc(StableFunction):
    """1 − x²/(1 + x²) = 1/(1 + x²), x = u·e^v (the complement of :class:`Log1pSquareDv`): as written for |x| ≤ 1,
    x⁻²/(1 + x⁻²) above (x² overflows and 1 − x²/(1 + x²) cancels to 0 long before: ≈ x⁻² is lost)."""

    nargs = 2

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.diff(self.as_elementary(), self.args[argindex - 1])

    def as_elementary(self) -> sp.Expr:
        u, v = self.args
        return 1 / (1 + u**2 * sp.exp(2 * v))

    def _eval_is_positive(self) -> bool | None:
        return all(a.is_real for a in self.args) or None


class Log1pSquareRem(StableFunction):
    """log(1 + x²) − x²/(1 + x²), x = u·exp(v): :class:`Log1pSquare` less :class:`Log1pSquareDv`, ≈ x⁴/2 for
    small x (the Student-t's ∂ℓ/∂ν at ν = 1e30, where log(1 + r²/ν) and r²/(ν + r²) are both 1e-30 and their
    difference 5e-61 is lost).  With s = x²/(1 + x²) it is −log(1 − s) − s = Σ_{n≥2} sⁿ/n, every term positive:
    the printers sum w·(2·Σ_{k≥1} w²ᵏ/(2k + 1) + s), w = x²/(2 + x²) ≤ ⅓, for |x| ≤ 1 (to w³⁴, a relative error
    below 1e-17), and the difference as written above (at least log 2 − ½ there: 2 bits of cancellation at
    most)."""

    nargs = 2

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        # only for symbolic checks: the printers differentiate the generated code, not this
        return sp.diff(self.as_elementary(), self.args[argindex - 1])

    def as_elementary(self) -> sp.Expr:
        u, v = self.args
        x2 = u**2 * sp.exp(2 * v)
        return sp.log(1 + x2) - x2 / (1 + x2)

    def _eval_is_nonnegative(self) -> bool | None:
        return all(a.is_real for a in self.args) or None


class LogNdtr(StableFunction):
    """log Φ(x), the log of the standard normal CDF, finite far into the lower tail."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        # φ(x)/Φ(x), the inverse Mills ratio: its own stable function (exp(−x²/2 − log Φ(x)) is ∞ − ∞ far
        # in the lower tail, x < −1e154, where x² overflows)
        return LogNdtrDeriv(self.args[0])

    def as_elementary(self) -> sp.Expr:
        return sp.log(sp.erfc(-self.args[0] / sp.sqrt(2)) / 2)

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        # SymPy rewrites erfc(−z) as 2 − erfc(z), which cancels in the lower tail: evaluate Φ with mpmath
        import mpmath

        x = self.args[0].evalf(prec_to_dps(prec) + 10)
        if not x.is_Number:
            return None
        with mpmath.workprec(prec + 30):
            value = mpmath.log(mpmath.ncdf(mpmath.mpf(str(x))))
        return sp.Float(value, prec_to_dps(prec))


class LogNdtrDeriv(StableFunction):
    """d/dx log Φ(x) = φ(x)/Φ(x), the inverse Mills ratio (≈ −x in the lower tail): exp(−x²/2 − log Φ(x))/√(2π)
    above −5, below it the continued fraction t + 1/(t + 2/(t + 3/(t + …))), t = −x (no x², which overflows
    for |x| > 1e154 and made the exponential ∞ − ∞), or √(2/π)/erfcx(−x/√2) where the target has erfcx."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        x = self.args[0]
        # r' = −r·(x + r)  (only for symbolic checks and second derivatives)
        return -LogNdtrDeriv(x) * (x + LogNdtrDeriv(x))

    def as_elementary(self) -> sp.Expr:
        x = self.args[0]
        return sp.sqrt(2 / sp.pi) * sp.exp(-x**2 / 2) / sp.erfc(-x / sp.sqrt(2))

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        # φ/Φ with mpmath's ncdf (SymPy's erfc(−z) = 2 − erfc(z) cancels in the lower tail)
        import mpmath

        x = self.args[0].evalf(prec_to_dps(prec) + 10)
        if not x.is_Number:
            return None
        with mpmath.workprec(prec + 30):
            z = mpmath.mpf(str(x))
            if z < -1e6:  # Laplace's continued fraction (mpmath's erfc fails far out): exact to 2^-(prec+30)
                f = -z
                for k in range(prec // 4 + 20, 0, -1):
                    f = -z + k / f
                value = f
            else:
                value = mpmath.npdf(z) / mpmath.ncdf(z)
        return sp.Float(value, prec_to_dps(prec))

    def _eval_is_positive(self) -> bool | None:
        return self.args[0].is_real or None


class LogGamma(StableFunction):
    """lgamma(x) = log Γ(x) for x > 0 (SymPy's own ``loggamma`` turns back into log(gamma(x)) at integers)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.polygamma(0, self.args[0])

    def as_elementary(self) -> sp.Expr:
        return sp.log(sp.gamma(self.args[0]))


class LogBeta(StableFunction):
    """log B(a, b) = lgamma(a) + lgamma(b) − lgamma(a + b) for a, b > 0, computed as R's ``lbeta`` does: with
    the Stirling corrections δ and the log terms combined analytically once the larger argument is ≥ 10 (the
    three lgammas cancel there: lgamma(1) + lgamma(1e30) − lgamma(1e30 + 1) is 0 in float64, not −69)."""

    nargs = 2

    @classmethod
    def eval(cls, a: sp.Expr, b: sp.Expr) -> sp.Expr | None:
        if sp.default_sort_key(b) < sp.default_sort_key(a):  # symmetric: one canonical order for cse
            return cls(b, a)
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        a, b = self.args
        # ∂/∂a = ψ(a) − ψ(a + b): a digamma difference, not two digammas that cancel
        return -DigammaDifference(a, b) if argindex == 1 else -DigammaDifference(b, a)

    def as_elementary(self) -> sp.Expr:
        a, b = self.args
        return sp.log(sp.gamma(a)) + sp.log(sp.gamma(b)) - sp.log(sp.gamma(a + b))


class DigammaDifference(StableFunction):
    """ψ(x + h) − ψ(x) for x > 0, x + h > 0, without cancellation: Σ h/(z(z + h)) while shifting z = x until z
    and z + h are ≥ 10, then log1p(h/z) + h/(2z(z + h)) plus the difference of the asymptotic series as a
    divided difference (0 at h = 0 exactly; ψ(1e30 + 1) − ψ(1e30) is 1e-30, not 0)."""

    nargs = 2

    @classmethod
    def eval(cls, x: sp.Expr, h: sp.Expr) -> sp.Expr | None:
        if h.is_zero:
            return sp.S.Zero
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        x, h = self.args
        if argindex == 1:
            return sp.polygamma(1, x + h) - sp.polygamma(1, x)
        return sp.polygamma(1, x + h)

    def as_elementary(self) -> sp.Expr:
        x, h = self.args
        return sp.polygamma(0, x + h) - sp.polygamma(0, x)

    def _eval_evalf(self, prec: int) -> sp.Expr:
        if self.args[1].is_zero:
            return sp.S.Zero
        return super()._eval_evalf(prec)


class LgammaDifference(StableFunction):
    """lgamma(x + h) − lgamma(x) for x > 0, x + h > 0 (the log of the rising factorial Γ(x + h)/Γ(x)), without
    cancellation: once x and x + h are ≥ 10, (x − ½)·log1p(h/x) + h·log(x + h) − h + δ(x + h) − δ(x) (Stirling's
    log terms combined analytically; lgamma(1e30 + ½) − lgamma(1e30) is 0 in float64, not 34.5); the two lgammas
    below, where they are O(10) or their difference is as large as they are.  Exactly 0 at h = 0."""

    nargs = 2

    @classmethod
    def eval(cls, x: sp.Expr, h: sp.Expr) -> sp.Expr | None:
        if h.is_zero:
            return sp.S.Zero
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        x, h = self.args
        # ∂/∂x = ψ(x + h) − ψ(x): a digamma difference, not two digammas that cancel
        return DigammaDifference(x, h) if argindex == 1 else sp.polygamma(0, x + h)

    def as_elementary(self) -> sp.Expr:
        x, h = self.args
        return sp.log(sp.gamma(x + h)) - sp.log(sp.gamma(x))

    def _eval_evalf(self, prec: int) -> sp.Expr:
        if self.args[1].is_zero:
            return sp.S.Zero
        return super()._eval_evalf(prec)


class Bd0(StableFunction):
    """bd0(x, m, lm) = x·log(x/m) + m − x ≥ 0 for x, m > 0 with lm = log m: Loader's binomial deviance term (Loader
    2000, "Fast and accurate computation of binomial probabilities"; R's ``bd0``), x·(e^z − 1 − z), z = log(m/x).
    Where x ≈ m it is ≈ (x − m)²/(2m), the remainder of terms of size x·|log(x/m)| and |m − x| that cancel: the
    Gamma's lgamma(a) − a·log(rate·y) + rate·y at a = rate = 1e30 is this plus −½·log a + ..., and written out
    its 1e31-sized terms leave nothing of the −33.6.  m is given as computed (a product, to a few ulps) and by
    its log lm (which neither over- nor underflows): the printers take z = log1p((m − x)/x) for m/x in [½, 1e30)
    (m − x is exact where m ≈ x), log(m/x) in (1e-30, ½), lm − log x outside (|z| > 69: relative accuracy is
    enough), x·Σ_{k≥2} z^k/k! (to z²⁰) for |z| < 1, m − x·(1 + z) above (a cancellation of at most a factor 4).
    Exactly 0 at x = m."""

    nargs = 3

    @classmethod
    def eval(cls, x: sp.Expr, m: sp.Expr, lm: sp.Expr) -> sp.Expr | None:
        if x == m:
            return sp.S.Zero
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        # as a function of independent x, m, l: x·(log x − lm) + m − x (the chain rule through consistent
        # arguments, m = e^lm, then gives the derivative of bd0)
        x, _m, lm = self.args
        if argindex == 1:
            return sp.log(x) - lm
        if argindex == 2:
            return sp.S.One
        if argindex == 3:
            return -x
        raise sp.ArgumentIndexError(self, argindex)

    def as_elementary(self) -> sp.Expr:
        x, m, lm = self.args
        return x * (sp.log(x) - lm) + m - x

    def _eval_evalf(self, prec: int) -> sp.Expr:
        import mpmath

        x, m = (a.evalf(prec_to_dps(prec) + 20) for a in self.args[:2])
        if not (x.is_Number and m.is_Number):
            return None
        with mpmath.workprec(prec + 40):
            xm, mm = mpmath.mpf(sp.Float(x)._mpf_), mpmath.mpf(sp.Float(m)._mpf_)
            if xm == mm:
                return sp.S.Zero
            z = mpmath.log(mm / xm)
            # e^z − 1 − z loses 2·log2(1/|z|) bits to cancellation: recompute with that many more
            extra = max(0, int(-2 * mpmath.log(abs(z), 2))) + 40
        with mpmath.workprec(prec + extra):
            z = mpmath.log(mm / xm)
            value = xm * (mpmath.expm1(z) - z)
        return sp.Float(value, prec_to_dps(prec))


class LgammaHalfRem(StableFunction):
    """lgamma(x + ½) − lgamma(x) − ½·log x for x > 0 (≈ −1/(8x)): :class:`LgammaDifference` at h = ½ less the
    ½·log x that Stirling's formula gives it, so that a log x elsewhere in the loss (the Student-t's ½·log ν)
    cancels symbolically instead of in float64 (½·log ν − lgamma_difference(ν/2, ½) is 345 − 344.6 at ν = 1e300).
    The printers sum ½·log1p(−1/(2z + 1)²) over z = x … x + 7 (the shift lgamma(z + 1) = lgamma(z) + log z;
    ½·log(4z(z + 1)/(2z + 1)²) for z < 1) and at z = x + 8 the series −Σ cₖ/(2k − 1)·z¹⁻²ᵏ, k = 1..11, cₖ the
    coefficients of :class:`DigammaHalfRem`: every term negative, no cancellation."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return DigammaHalfRem(self.args[0])

    def as_elementary(self) -> sp.Expr:
        x = self.args[0]
        return sp.log(sp.gamma(x + sp.S.Half)) - sp.log(sp.gamma(x)) - sp.log(x) / 2


class DigammaHalfRem(StableFunction):
    """ψ(x + ½) − ψ(x) − 1/(2x) for x > 0 (≈ 1/(8x²)), the derivative of :class:`LgammaHalfRem`: the digamma
    difference of the Student-t's ∂ℓ/∂ν less its leading 1/(2x), which cancels symbolically against the 1/ν of
    the ½·log ν term (1/(2ν) − ½·(ψ((ν + 1)/2) − ψ(ν/2)) is O(1/ν²), and lost entirely at ν = 1e30 as a
    difference).  The printers sum 1/(4z(z + ½)(z + 1)) over z = x … x + 7 and at z = x + 8 the series
    Σ cₖ·z⁻²ᵏ, k = 1..11, cₖ = (2 − 2¹⁻²ᵏ)·B₂ₖ/(2k): every term positive, no cancellation."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        x = self.args[0]
        return sp.polygamma(1, x + sp.S.Half) - sp.polygamma(1, x) + 1 / (2 * x**2)

    def as_elementary(self) -> sp.Expr:
        x = self.args[0]
        return sp.polygamma(0, x + sp.S.Half) - sp.polygamma(0, x) - 1 / (2 * x)


class LgammaCorrection(StableFunction):
    """δ(x) = lgamma(x) − ((x − ½)·log x − x + ½·log 2π) for x > 0, the remainder of Stirling's formula (R's
    ``lgammacor``): its asymptotic series from x = 10 (≈ 1/(12x)), lgamma minus the Stirling terms below."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return DigammaCorrection(self.args[0])

    def as_elementary(self) -> sp.Expr:
        x = self.args[0]
        return sp.log(sp.gamma(x)) - (x - sp.Rational(1, 2)) * sp.log(x) + x - sp.log(2 * sp.pi) / 2


class LgammaCorrectionSeries(LgammaCorrection):
    """δ(x) where x ≥ 10 is known (the large branch of lgamma_stirling, whose argument is c·exp(max(u, ·)) ≥ 10):
    the asymptotic series alone, with no lgamma for a branch below 10 that is never taken (the printers call a
    branch-free helper).  Its value below 10 is the truncated series, not δ."""

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return DigammaCorrectionSeries(self.args[0])


class DigammaCorrection(StableFunction):
    """ε(x) = ψ(x) − log x + 1/(2x) for x > 0, the remainder of the asymptotic expansion of digamma (δ′(x)):
    its series from x = 10 (≈ −1/(12x²)), ψ minus the leading terms below."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        x = self.args[0]
        return sp.polygamma(1, x) - 1 / x - 1 / (2 * x**2)

    def as_elementary(self) -> sp.Expr:
        x = self.args[0]
        return sp.polygamma(0, x) - sp.log(x) + 1 / (2 * x)


class DigammaCorrectionSeries(DigammaCorrection):
    """ε(x) where x ≥ 10 is known: the asymptotic series alone (see :class:`LgammaCorrectionSeries`)."""


class LogTanhc(StableFunction):
    """log(tanh(x)/x), even and analytic (its removable singularity at 0 filled in with 0): a series below
    |x| = 0.05, the formula above."""

    nargs = 1

    @classmethod
    def eval(cls, x: sp.Expr) -> sp.Expr | None:
        if x.is_zero:
            return sp.S.Zero
        if x.could_extract_minus_sign():
            return cls(-x)
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return DLogTanhc(self.args[0])

    def as_elementary(self) -> sp.Expr:
        x = self.args[0]
        return sp.log(sp.tanh(x) / x)

    def _eval_evalf(self, prec: int) -> sp.Expr:
        if self.args[0].is_zero:
            return sp.S.Zero
        return super()._eval_evalf(prec)


class DLogTanhc(StableFunction):
    """d/dx log(tanh(x)/x) = 2/sinh(2x) − 1/x (odd, 0 at 0): a series below |x| = 0.05, the formula above."""

    nargs = 1

    @classmethod
    def eval(cls, x: sp.Expr) -> sp.Expr | None:
        if x.is_zero:
            return sp.S.Zero
        if x.could_extract_minus_sign():
            return -cls(-x)
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        x = self.args[0]
        # d/dx (2/sinh 2x − 1/x) = 1/x² − 4 cosh(2x)/sinh(2x)²  (only for symbolic checks; the printers
        # differentiate the generated code, not this)
        return 1 / x**2 - 4 * sp.cosh(2 * x) / sp.sinh(2 * x) ** 2

    def as_elementary(self) -> sp.Expr:
        x = self.args[0]
        return 2 / sp.sinh(2 * x) - 1 / x

    def _eval_evalf(self, prec: int) -> sp.Expr:
        if self.args[0].is_zero:
            return sp.S.Zero
        return super()._eval_evalf(prec)


class Square(StableFunction):
    """square(x) = x², kept as a square of its argument (a standardised residual) so it is not expanded."""

    nargs = 1

    @classmethod
    def eval(cls, x: sp.Expr) -> sp.Expr | None:
        if x.is_number:
            return x**2
        if x.could_extract_minus_sign():  # (−x)² = x² exactly: no negation pass over the array
            return cls(-x)
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return 2 * self.args[0]

    def as_elementary(self) -> sp.Expr:
        return self.args[0] ** 2

    def _eval_is_nonnegative(self) -> bool | None:
        return self.args[0].is_real or None


class Guard(StableFunction):
    """guard(x, cond, safe) = x where cond holds, else safe: the inner ``where`` of the double-where pattern.

    A branch of a Piecewise sees ``guard(x, cond, safe)`` instead of ``x``, so off
    its condition it is evaluated at a harmless point and neither its value nor
    its gradient can be NaN (``where`` multiplies the unused branch's gradient by
    0, and 0·∞ = NaN).
    """

    nargs = 3

    @classmethod
    def eval(cls, x: sp.Expr, cond: sp.Basic, safe: sp.Expr) -> sp.Expr | None:
        if cond is sp.true:
            return x
        if cond is sp.false:
            return safe
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        x, cond, safe = self.args
        if argindex == 1:
            return sp.Piecewise((1, cond), (0, True))
        if argindex == 3:
            return sp.Piecewise((0, cond), (1, True))
        raise sp.ArgumentIndexError(self, argindex)

    def as_elementary(self) -> sp.Expr:
        x, cond, safe = self.args
        return sp.Piecewise((x, cond), (safe, True))

    def _eval_is_real(self) -> bool | None:
        x, _cond, safe = self.args
        return (x.is_real and safe.is_real) or None


STABLE_FUNCTIONS: tuple[type[StableFunction], ...] = (
    Softplus, Sigmoid, Sgn, Held, LogAddExp, LogSumExp, MaxOver, SumBelowOne, XLogY, XLog1pY, XMulY, LogRatio,
    Log1mExp, XOverExpm1M1, Log1pSquare, Log1pSquareDu, Log1pSquareDv, Log1pSquareDvc, Log1pSquareRem, LogNdtr,
    LogNdtrDeriv, LogGamma, LogBeta, LgammaDifference, DigammaDifference, Bd0, LgammaHalfRem, DigammaHalfRem,
    LgammaCorrection, LgammaCorrectionSeries, DigammaCorrection,
    DigammaCorrectionSeries, LogTanhc, DLogTanhc, Square, Guard,
    Log1pSquareDuScaled, LogQuotient,
)


class MulExp(StableFunction):
    """mul_exp(u, d, e) = u·exp(d) for e = exp(d), d ≤ 0 (a softmax term exp(z_j − max z) times a weight u).

    Below d = −708 (−87 in float32) exp(d) is a subnormal with a few significant bits (e^−740 = 4.2e-322 has
    7), which u·exp(d) keeps more of when u > 1 (Σy = 1e6 counts: 4.2e-316, 26 bits).  The printers compute
    (u·exp(a))·exp(d − a) there, a = −708 (−87), both factors normal and d − a exact, and u·e above it, e the
    exponential that the softmax's sums share (so it is an argument: cse names it once)."""

    nargs = 3

    @classmethod
    def eval(cls, u: sp.Expr, d: sp.Expr, e: sp.Expr) -> sp.Expr | None:
        # u = ±1 (a weight that a class-index target's Σy = 1 became): ±e is exact, subnormal or not
        if u in (sp.S.One, sp.S.NegativeOne):
            return u * e
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        u, d, _ = self.args
        return sp.exp(d) if argindex == 1 else u * sp.exp(d) if argindex == 2 else sp.S.Zero

    def as_elementary(self) -> sp.Expr:
        u, d, _ = self.args
        return u * sp.exp(d)


STABLE_FUNCTIONS = (*STABLE_FUNCTIONS, MulExp)


def elementary(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every stable function replaced by its textbook formula (for checks)."""
    return expr.replace(lambda e: isinstance(e, StableFunction), lambda e: e.as_elementary())


# ---------------------------------------------------------------------------------------------------------
# the rules
@dataclass(frozen=True)
class Context:
    """What a rule may know beyond the node: the data symbols (the target), whose values may sit on the
    edge of the support (y = 0, y = 1), where ``0·log 0`` must give 0."""

    data: frozenset[sp.Basic] = frozenset()
    fired: set[str] = field(default_factory=set)

    def touches_data(self, *exprs: sp.Basic) -> bool:
        for e in exprs:
            for s in e.free_symbols:
                if s in self.data:
                    return True
            for t in e.atoms(sp.Indexed):
                if t.base in self.data or t.base.label in self.data:
                    return True
        return False


RewriteFn = Callable[[sp.Basic, Context], sp.Basic | None]


@dataclass(frozen=True)
class Rule:
    """One stabilising rewrite: ``pattern → replacement``, and why."""

    name: str
    pattern: str  # the rewrite, as a formula
    reason: str  # one line: what goes wrong without it
    applies: Callable[[sp.Basic], bool]  # a cheap structural test on one node
    rewrite: RewriteFn  # the replacement, or None when the node does not fit after all

    def apply(self, expr: sp.Basic, ctx: Context | None = None) -> sp.Basic:
        """Rewrite every node of ``expr`` that this rule fits, bottom-up."""
        ctx = ctx if ctx is not None else Context()

        def value(node: sp.Basic) -> sp.Basic:
            new = self.rewrite(node, ctx)
            if new is None or new == node:
                return node
            ctx.fired.add(self.name)
            return new

        return expr.replace(self.applies, value)


def _is_exp(e: sp.Basic) -> bool:
    return isinstance(e, sp.exp)


def _exp_exponent(term: sp.Expr) -> sp.Expr | None:
    """``u`` such that ``term == exp(u)`` for a term that is c·exp(u) (c > 0 a number) or a positive number."""
    if term.is_number:
        return sp.log(term) if term.is_positive else None
    coeff, rest = term.as_coeff_Mul()
    if _is_exp(rest) and coeff.is_positive:
        return rest.args[0] + (sp.log(coeff) if coeff != 1 else 0)
    return None


def _one_plus_exp(base: sp.Expr) -> sp.Expr | None:
    """u when ``base == 1 + exp(u)``."""
    if not isinstance(base, sp.Add) or len(base.args) != 2:
        return None
    ones = [t for t in base.args if t == 1]
    rest = [t for t in base.args if t != 1]
    if len(ones) == 1 and len(rest) == 1:
        coeff, e = rest[0].as_coeff_Mul()
        if _is_exp(e) and coeff.is_positive:
            return e.args[0] + (sp.log(coeff) if coeff != 1 else 0)
    return None


# -- log Γ
def _log_gamma(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    (arg,) = node.args
    if isinstance(node, sp.loggamma):
        return LogGamma(arg)
    if isinstance(arg, sp.gamma):
        return LogGamma(arg.args[0])
    if isinstance(arg, sp.factorial):
        return LogGamma(arg.args[0] + 1)
    return None


def _gamma_terms(node: sp.Basic, kind: type) -> list[tuple[sp.Expr, sp.Expr, sp.Expr]]:
    """(term, coefficient, argument) of each term c·f(x) of the sum ``node`` (f = LogGamma, or ψ = polygamma(0, ·))."""
    out = []
    for t in node.args:
        fs = [f for f in sp.Mul.make_args(t) if isinstance(f, kind) and (kind is not sp.polygamma or f.args[0] == 0)]
        if len(fs) == 1:
            out.append((t, t / fs[0], fs[0].args[-1]))
    return out


def _log_beta(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """c·lgamma(p) + c·lgamma(q) − c·lgamma(p + q) → c·lbeta(p, q)."""
    terms = _gamma_terms(node, LogGamma)
    for t_s, c_s, s in terms:
        for t_p, c_p, p in terms:
            if t_p is t_s or c_p != -c_s:
                continue
            q = sp.expand(s - p)
            for t_q, c_q, q2 in terms:
                if t_q is t_s or t_q is t_p or c_q != -c_s or sp.expand(q2 - q) != 0:
                    continue
                rest = [t for t in node.args if t is not t_s and t is not t_p and t is not t_q]
                return sp.Add(c_p * LogBeta(p, q2), *rest)
    # c·lgamma(p) + c·lgamma(q) − c·lgamma(p + q − 1) (the zero-inflated negative binomial keeps lgamma(y + 1)):
    # Γ(p)Γ(q)/Γ(p + q − 1) = B(p, q)·(p + q − 1), so c·(lbeta(p, q) + log(p + q − 1)); no pair of the three
    # lgammas is safe for both p ≪ q and p ≫ q
    for t_s, c_s, s in terms:
        for t_p, c_p, p in terms:
            if t_p is t_s or c_p != -c_s:
                continue
            q = sp.expand(s - p + 1)
            for t_q, c_q, q2 in terms:
                if t_q is t_s or t_q is t_p or c_q != -c_s or sp.expand(q2 - q) != 0:
                    continue
                rest = [t for t in node.args if t is not t_s and t is not t_p and t is not t_q]
                return sp.Add(c_p * (LogBeta(p, q2) + sp.log(s)), *rest)
    return None


def _lgamma_difference(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """c·lgamma(x + h) − c·lgamma(x) → c·lgamma_difference(x, h), h the simpler difference of the arguments."""
    terms = _gamma_terms(node, LogGamma)
    for t_a, c_a, a in terms:
        for t_b, c_b, b in terms:
            if t_b is t_a or sp.expand(c_a + c_b) != 0:
                continue
            h = sp.expand(a - b)
            if h == 0 or h.could_extract_minus_sign() or sp.count_ops(h) >= sp.count_ops(a):
                continue
            rest = [t for t in node.args if t is not t_a and t is not t_b]
            return sp.Add(c_a * LgammaDifference(b, h), *rest)
    return None


def _lgamma_half_log(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """c·lgamma_difference(x, ½) + r → c·lgamma_half_rem(x) + (c/2)·log x + r, where a term of (c/2)·log x
    (expanded: log(ν/2) = log ν − log 2, log(e^l/2) = l − log 2) cancels a term of r."""
    terms = list(node.args)
    for t in terms:
        fs = [f for f in sp.Mul.make_args(t) if isinstance(f, LgammaDifference) and f.args[1] == sp.S.Half]
        if len(fs) != 1:
            continue
        x = fs[0].args[0]
        c = t / fs[0]
        logx = sp.expand(c / 2 * sp.expand_log(sp.log(x), force=False))
        rest = [u for u in terms if u is not t]
        if not any(not p.is_number and -p in rest for p in sp.Add.make_args(logx)):
            continue
        return sp.Add(c * LgammaHalfRem(x), logx, *rest)
    return None


def _digamma_difference(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """c·ψ(x + h) − c·ψ(x) → c·digamma_difference(x, h), h the simpler difference of the two arguments."""
    terms = _gamma_terms(node, sp.polygamma)
    for t_a, c_a, a in terms:
        for t_b, c_b, b in terms:
            if t_b is t_a or sp.expand(c_a + c_b) != 0:
                continue
            h = sp.expand(a - b)
            if h == 0 or h.could_extract_minus_sign() or sp.count_ops(h) >= sp.count_ops(a):
                continue
            rest = [t for t in node.args if t is not t_a and t is not t_b]
            return sp.Add(c_a * DigammaDifference(b, h), *rest)
    return None


def _exp_argument(x: sp.Expr) -> tuple[sp.Expr, sp.Expr] | None:
    """(exp(u), log x) for x = c·exp(u), c > 0 a number, u an input (a symbol): log x is then u + log c,
    exactly.  Not for u = guard(...): that is a branch of a rewrite already made."""
    c, e = x.as_coeff_Mul()
    if _is_exp(e) and c.is_positive and isinstance(e.args[0], sp.Symbol) and e.args[0].is_real:
        return e, e.args[0] + (sp.log(c) if c != 1 else 0)
    return None


#: ½·log 2π as one number (log(2π)/2 would be split into log 2 and log π by expand_log)
_HALF_LOG_2PI = sp.Float("0.91893853320467274178032973640561763986139747363778", 30)


def _lgamma_stirling(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """lgamma(x) + x·r + s with x = c·exp(u) → ((x − ½)·(u + log c) − x + ½·log 2π + δ(x) + x·r, collected by
    exp(u), where x ≥ 10; lgamma(x) + x·r below) + s: the x·u of Stirling's formula and x·r cancel symbolically.
    Below 10 the Stirling terms are O(1) and would cancel instead (lgamma(1) = 0 = −1 + ½·log 2π + δ(1))."""
    for t, c, x in _gamma_terms(node, LogGamma):
        ea = _exp_argument(x)
        if ea is None:
            continue
        e, logx = ea
        rest = [u for u in node.args if u is not t]
        linked = [u for u in rest if e in sp.Mul.make_args(u)]
        if not linked:
            continue
        others = [u for u in rest if not any(u is v for v in linked)]
        # x ≥ 10 in this branch: δ is its series alone (no lgamma for the branch below 10 inside the helper)
        stirling = [x * a for a in sp.Add.make_args(logx)] + [-logx / 2, -x, _HALF_LOG_2PI, LgammaCorrectionSeries(x)]
        large = sp.collect(sp.Add(*[c * a for a in stirling], *linked), e)
        u = e.args[0]
        threshold = sp.log(sp.Integer(10) / (x / e))  # x ≥ 10 ⟺ u ≥ log(10/c)
        small = t + sp.Add(*linked)
        # each branch sees a guarded u (the double where of piecewise_guard), which also keeps this rule from
        # rewriting the lgamma of the small branch again; both guards are clamps (max(u, t) and min(u, t): the
        # small branch is safe at u = t too), which the array printers compute without a where
        return sp.Add(sp.Piecewise((large.xreplace({u: Guard(u, u >= threshold, threshold)}), u >= threshold),
                                   (small.xreplace({u: Guard(u, u <= threshold, threshold)}), True)), *others)
    return None


# -- lgamma(x) − x·log m + m and lbeta(a, b) − a·log p − b·log(1 − p): Stirling's log terms and the rest as bd0
def _linear_in(rest: list[sp.Expr], e: sp.Expr) -> tuple[sp.Expr, list[sp.Expr]] | None:
    """(K, others) with sum(rest) = e·K + sum(others), K and the others free of e's exponent (None if e
    appears otherwise, e.g. in e²)."""
    u = e.args[0]
    k: list[sp.Expr] = []
    others: list[sp.Expr] = []
    for w in sp.Add.make_args(sp.expand(sp.Add(*rest))):
        if not w.has(u):
            others.append(w)
            continue
        q = w / e
        if q.has(u):
            return None
        k.append(q)
    return sp.Add(*k), others


def _lgamma_deviance(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """c·lgamma(x) − c·x·L + c·e^L + r with x = C·e^u (u an input) → c·(½·log 2π − ½·log x + δ(x) + bd0(x, e^L))
    + r where x ≥ 10 (Stirling's formula with its x·log x − x and the −x·L + e^L combined analytically into
    Loader's bd0); the terms as they were below (they are O(x) there, nothing large cancels)."""
    for t, c, x in _gamma_terms(node, LogGamma):
        if not c.is_number or c == 0:
            continue
        ea = _exp_argument(x)
        if ea is None:
            continue
        e, logx = ea
        rest = [w for w in node.args if w is not t]
        split = _linear_in(rest, e)
        if split is None or split[0] == 0:
            continue
        k, others = split
        logm = sp.expand(-k / (x / e) / c)  # c·(lgamma(x) − x·log m): log m = −K/(C·c)
        m = sp.exp(logm)
        if not m.is_positive:
            continue
        paired = [w for w in others if sp.expand(w - c * m) == 0]
        if not paired:
            continue
        left = [w for w in others if w is not paired[0]]
        u = e.args[0]
        threshold = sp.log(sp.Integer(10) / (x / e))  # x ≥ 10 ⟺ u ≥ log(10/C)
        large = sp.Add(c * (_HALF_LOG_2PI - logx / 2 + LgammaCorrectionSeries(x) + Bd0(x, m, logm)), *left)
        small = sp.Add(t, *rest)
        # the clamps of lgamma_stirling: each branch sees a guarded u, which also keeps this rule (and that one)
        # from rewriting the small branch again
        return sp.Piecewise((large.xreplace({u: Guard(u, u >= threshold, threshold)}), u >= threshold),
                            (small.xreplace({u: Guard(u, u <= threshold, threshold)}), True))
    return None


def _lbeta_deviance(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """c·lbeta(a, b) − c·a·log p − c·b·log q + r with p + q = 1, a = C·e^u, b = D·e^w (u, w inputs) →
    c·(½·log 2π + ½·(log1p(b/a) − log b) + δ(a) + δ(b) − δ(a + b) + bd0(a, (a + b)·p) + bd0(b, (a + b)·q)) + r
    where a, b ≥ 10 (R's dbeta through dbinom_raw); the terms as they were where either is below 10."""
    for t, c, lb in [(w, w / f, f) for w in node.args for f in sp.Mul.make_args(w) if isinstance(f, LogBeta)]:
        if not c.is_number or c == 0:
            continue
        x1, x2 = lb.args
        ea1, ea2 = _exp_argument(x1), _exp_argument(x2)
        if ea1 is None or ea2 is None or ea1[0] == ea2[0]:
            continue
        (e1, logx1), (e2, logx2) = ea1, ea2
        rest = [w for w in node.args if w is not t]
        split1 = _linear_in(rest, e1)
        if split1 is None or split1[0] == 0:
            continue
        split2 = _linear_in(split1[1], e2)
        if split2 is None or split2[0] == 0:
            continue
        k1, (k2, left) = split1[0], split2
        if k1.has(e2.args[0]):
            continue
        logp1, logp2 = sp.expand(-k1 / (x1 / e1) / c), sp.expand(-k2 / (x2 / e2) / c)
        p1, p2 = sp.exp(logp1), sp.exp(logp2)
        if sp.expand(p1 + p2 - 1) != 0:
            continue
        u1, u2 = e1.args[0], e2.args[0]
        t1, t2 = sp.log(sp.Integer(10) / (x1 / e1)), sp.log(sp.Integer(10) / (x2 / e2))
        n = x1 + x2
        logn = logx1 + Softplus(logx2 - logx1)  # log(a + b) = log a + log1p(b/a)
        large = sp.Add(c * (_HALF_LOG_2PI + (Softplus(logx2 - logx1) - logx2) / 2 + LgammaCorrectionSeries(x1)
                            + LgammaCorrectionSeries(x2) - LgammaCorrectionSeries(n) + Bd0(x1, n * p1, logn + logp1)
                            + Bd0(x2, n * p2, logn + logp2)), *left)
        small = sp.Add(t, *rest)
        both = sp.And(u1 >= t1, u2 >= t2)
        # the large branch sees both inputs clamped from below; the small one sees u1 kept from where both are
        # large (where it is not taken), which keeps this rule from rewriting it again
        return sp.Piecewise(
            (large.xreplace({u1: Guard(u1, u1 >= t1, t1), u2: Guard(u2, u2 >= t2, t2)}), both),
            (small.xreplace({u1: Guard(u1, sp.Or(u1 < t1, u2 < t2), t1 - 1)}), True))
    return None


def _input_exp_argument(x: sp.Expr) -> tuple[sp.Expr, sp.Expr] | None:
    """(g, log x) for x = c·exp(g), c > 0 a number, g a real input or a guard of one (a branch of the
    lgamma_deviance or lgamma_stirling rule): log x = g + log c, exactly."""
    c, e = x.as_coeff_Mul()
    if not (_is_exp(e) and c.is_positive):
        return None
    g = e.args[0]
    inner = g.args[0] if isinstance(g, Guard) else g
    if not (isinstance(inner, sp.Symbol) and inner.is_real):
        return None
    return g, g + (sp.log(c) if c != 1 else 0)


def _lgamma_log_quotient(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """c·lgamma(x) + k·log(y) → c·lgamma(x + 1) + k·log_quotient(y, x, L, log y) + (k − c)·L  (x = C·e^g, g an
    input, L = g + log C = log x exactly, y the data, c a term of k): Γ(x + 1) = x·Γ(x), so lgamma(x) =
    lgamma(x + 1) − L, and k·log y − c·L = k·(log y − L) + (k − c)·L.  The −L that cancels log y where y ≈ x ≪ 1
    is log_quotient's difference; and where k ≈ 0 (a Gamma's k = 1 − a at a ≈ 1) k·log_quotient stays as small
    as k·log y, which log(y/x) − a·log y would not (log y cancelling itself: 1e-15 for 1e-30 at a = 1)."""
    terms = list(node.args)
    for t, c, x in _gamma_terms(node, LogGamma):
        if not c.is_number or c == 0:
            continue
        found = _input_exp_argument(x)
        if found is None:
            continue
        _g, logx = found
        for t2 in terms:
            if t2 is t:
                continue
            dl = _data_log(t2, ctx)
            if dl is None:
                continue
            k, y = dl
            if c not in sp.Add.make_args(k):
                continue
            rest = [w for w in terms if w is not t and w is not t2]
            return sp.Add(c * LogGamma(x + 1), k * LogQuotient(y, x, logx, sp.log(y)), sp.expand(k - c) * logx, *rest)
    return None


def _digamma_stirling(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """ψ(x) + r with x = c·exp(u) → (u + log c) − 1/(2x) + ε(x) + r: log x is exact, so it cancels with r."""
    for t, c, x in _gamma_terms(node, sp.polygamma):
        ea = _exp_argument(x)
        if ea is None or len(node.args) < 2:
            continue
        _e, logx = ea
        rest = [u for u in node.args if u is not t]
        return sp.Add(c * logx, -c / (2 * x), c * DigammaCorrection(x), *rest)
    return None


# -- logs of products
def _expand_log(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    (arg,) = node.args
    if not isinstance(arg, (sp.Mul, sp.Pow)) or arg.is_positive is not True:
        return None
    new = sp.expand_log(node, force=False)
    return new if new != node else None


# -- symbolic powers of positive bases
def _power_as_exp(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    base, exponent = node.args
    if exponent.is_number:
        return None
    if _is_exp(base) and base.args[0].is_real:
        return sp.exp(exponent * base.args[0])
    if base.is_positive is not True:
        return None
    return sp.exp(exponent * sp.expand_log(sp.log(base)))


# -- sigmoid
def _sigmoid_pow(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    base, n = node.args
    if not (n.is_Integer and n < 0):
        return None
    u = _one_plus_exp(base)
    if u is None:
        return None
    return Sigmoid(-u) ** (-n)


def _sigmoid_absorb(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """exp(k·u)·σ(−u)^n → σ(u)^k·σ(−u)^(n−k), and a sum multiplied by σ(−u)^n is distributed first."""
    factors = list(sp.Mul.make_args(node))
    sigmoids = [(i, f) for i, f in enumerate(factors) if _sigmoid_power(f) is not None]
    if not sigmoids:
        return None
    for i, f in sigmoids:
        v, n = _sigmoid_power(f)  # f = σ(v)^n, so exp(−k·v) is absorbed
        for jdx, g in enumerate(factors):
            if _is_exp(g):
                w = g.args[0]
                for k in range(int(n), 0, -1):
                    rest = sp.expand(w + k * v)
                    if sp.count_ops(rest) < sp.count_ops(w) or rest == 0:
                        new = [h for idx, h in enumerate(factors) if idx not in (i, jdx)]
                        new += [Sigmoid(-v) ** k, Sigmoid(v) ** (n - k), sp.exp(rest)]
                        return sp.Mul(*new)
        # distribute a sum whose terms carry exp(±v) over the sigmoid
        for jdx, g in enumerate(factors):
            if isinstance(g, sp.Add) and any(_is_exp(h) for t in g.args for h in sp.Mul.make_args(t)):
                others = sp.Mul(*[h for idx, h in enumerate(factors) if idx != jdx])
                return sp.Add(*[t * others for t in g.args])
    return None


def _sigmoid_power(f: sp.Basic) -> tuple[sp.Expr, sp.Integer] | None:
    if isinstance(f, Sigmoid):
        return f.args[0], sp.Integer(1)
    if isinstance(f, sp.Pow) and isinstance(f.base, Sigmoid) and f.exp.is_Integer and f.exp > 0:
        return f.base.args[0], f.exp
    return None


def _sigmoid_complement(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """1 − σ(x) → σ(−x) (also inside a longer sum)."""
    terms = list(node.args)
    if 1 not in terms:
        return None
    for t in terms:
        if t.could_extract_minus_sign() and isinstance(-t, Sigmoid):
            rest = [s for s in terms if s is not t]
            rest.remove(sp.S.One)
            return sp.Add(Sigmoid(-(-t).args[0]), *rest)
    return None


def _log_sigmoid(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    (arg,) = node.args
    if isinstance(arg, Sigmoid):
        return -Softplus(-arg.args[0])
    p = _sigmoid_power(arg)
    if p is not None:
        return -p[1] * Softplus(-p[0])
    return None


# -- softplus, logaddexp
def _softplus(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    (arg,) = node.args
    u = _one_plus_exp(arg)
    return Softplus(u) if u is not None else None


def _logaddexp(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    (arg,) = node.args
    if not isinstance(arg, sp.Add):
        return None
    exponents = [_exp_exponent(t) for t in arg.args]
    if any(u is None for u in exponents) or not any(_is_exp(f) for t in arg.args for f in sp.Mul.make_args(t)):
        return None
    exponents = sorted(exponents, key=sp.default_sort_key)
    out = exponents[0]
    for u in exponents[1:]:
        out = LogAddExp(out, u)
    return out


def _sum_of_exp(s: sp.Basic) -> sp.Expr | None:
    """logsumexp of a ``Sum(exp(f), (m, lo, hi))``."""
    if isinstance(s, sp.Sum) and _is_exp(s.function) and len(s.limits) == 1:
        return LogSumExp(s.function.args[0], sp.Tuple(*s.limits[0]))
    return None


def _softmax_shift(lse: LogSumExp) -> tuple[sp.Expr, sp.Expr]:
    """(M, R) with logsumexp(f) = M + log1p(R): M = max_m f_m and R = Σ_m exp(f_m − M) − 1 ≥ 0."""
    top = MaxOver(lse.body, lse.limits)
    return top, SumBelowOne(sp.exp(lse.body - top), lse.limits)


def _logsumexp(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    if isinstance(node, sp.log):
        return _sum_of_exp(node.args[0])
    # a sum of exponentials in a denominator (a softmax): 1/Σ exp(f) = exp(−M)/(1 + R), M = max f; the
    # numerator's exp(f_j) joins exp(−M) (exp_of_sum), so that the code shares exp(f − M) with R
    base, n = node.args
    lse = _sum_of_exp(base)
    if lse is None or not (n.is_number and n.is_negative):
        return None
    top, rest = _softmax_shift(lse)
    return sp.exp(n * top) * (1 + rest) ** n


# -- log1p, expm1, log1mexp
def _one_plus(arg: sp.Expr) -> sp.Expr | None:
    """x when ``arg == 1 + x``."""
    if isinstance(arg, sp.Add) and sp.S.One in arg.args:
        return arg - 1
    return None


def _log1mexp(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    (arg,) = node.args
    x = arg if isinstance(node, log1p) else _one_plus(arg)
    if x is None or not x.could_extract_minus_sign() or not _is_exp(-x):
        return None
    return Log1mExp(-(-x).args[0])


def _log1p(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    x = _one_plus(node.args[0])
    if x is None:
        return None
    return log1p(x)


def _expm1(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    terms = list(node.args)
    for sign in (1, -1):
        if -sign not in terms:
            continue
        for t in terms:
            if _is_exp(sign * t):
                rest = list(terms)
                rest.remove(sp.Integer(-sign))
                rest.remove(t)
                return sp.Add(sign * expm1((sign * t).args[0]), *rest)
    return None


def _expm1_sigmoid(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """expm1(u)·σ(v) → −expm1(−u)·exp(u + v)·σ(−v)  (u > 0, u + v simpler than v)."""
    factors = list(sp.Mul.make_args(node))
    for f in factors:
        if not isinstance(f, expm1) or f.args[0].is_positive is not True:
            continue
        u = f.args[0]
        for g in factors:
            if not isinstance(g, Sigmoid):
                continue
            v = g.args[0]
            w = sp.expand(u + v)
            if sp.count_ops(w) < sp.count_ops(v):
                rest = [h for h in factors if h is not f and h is not g]
                return sp.Mul(-expm1(-u), sp.exp(w), Sigmoid(-v), *rest)
    return None


def _exp_term(term: sp.Expr) -> tuple[sp.Expr, sp.Expr, bool] | None:
    """(c, u, is_expm1) when ``term == c·exp(u)`` or ``c·expm1(u)`` (one such factor)."""
    factors = list(sp.Mul.make_args(term))
    found = [f for f in factors if _is_exp(f) or isinstance(f, expm1)]
    if len(found) != 1:
        return None
    (f,) = found
    return sp.Mul(*[g for g in factors if g is not f]), f.args[0], isinstance(f, expm1)


def _exp_difference(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """c·exp(u) − c·exp(v) → −c·exp(u)·expm1(v − u) if v < u else c·exp(v)·expm1(u − v)  (also with expm1 for
    exp: their −1s cancel), when v − u is simpler than u or v (it is then computed directly)."""
    terms = list(node.args)
    parts = [_exp_term(t) for t in terms]
    for i, pi in enumerate(parts):
        if pi is None:
            continue
        for j, pj in enumerate(parts):
            if j == i or pj is None or pi[2] != pj[2] or sp.expand(pi[0] + pj[0]) != 0:
                continue
            c, u, v = pi[0], pi[1], pj[1]
            d = min((v - u, sp.expand(v - u)), key=sp.count_ops)
            if d == 0 or sp.count_ops(d) >= max(sp.count_ops(u), sp.count_ops(v)):
                continue
            rest = [t for k, t in enumerate(terms) if k not in (i, j)]
            new = sp.Piecewise((-c * sp.exp(u) * expm1(d), d < 0), (c * sp.exp(v) * expm1(-d), True))
            return sp.Add(new, *rest)
    return None


def _exp_minus_coefficient(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """c·exp(w) + r → c·expm1(w) + (r + c) when r + c is simpler than r (the −c is spread over r's terms)."""
    terms = list(node.args)
    for t in terms:
        part = _exp_term(t)
        if part is None or part[2] or part[0].is_number:
            continue
        c0, w, _ = part
        r = sp.Add(*[s for s in terms if s is not t])
        # the coefficient may hide in the exponent: c·exp(w1 + w2) = (c·exp(w1))·exp(w2)
        for w1 in (sp.S.Zero, *(sp.Add.make_args(w) if isinstance(w, sp.Add) else ())):
            c = c0 * sp.exp(w1)
            r2 = sp.expand(r + c)
            if sp.count_ops(r2) < sp.count_ops(r) and sp.count_ops(r2) < sp.count_ops(c):
                return c * expm1(w - w1) + r2
    return None


def _x_over_expm1(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """c·x/expm1(x) + r → p·(x/expm1(x) − 1) + (c − p)·x/expm1(x) + (r + p)  with p = c or a term of c
    (expm1(w) in c read as eʷ − 1), when r + p is simpler than r (the −p spread over r's terms)."""
    terms = list(node.args)
    for t in terms:
        dens = [f for f in sp.Mul.make_args(t) if isinstance(f, sp.Pow) and f.exp == -1 and isinstance(f.base, expm1)]
        if len(dens) != 1:
            continue
        x = dens[0].base.args[0]
        # t must hold x's factors themselves (c·x/expm1(x)), not only the expm1
        if not set(sp.Mul.make_args(x)) - {sp.S.NegativeOne} <= set(sp.Mul.make_args(t)):
            continue
        c = t * dens[0].base / x
        r = sp.Add(*[u for u in terms if u is not t])
        opened = sp.expand(c.replace(lambda e: isinstance(e, expm1), lambda e: sp.exp(e.args[0]) - 1))
        for part in dict.fromkeys((c, *sp.Add.make_args(opened))):
            r2 = sp.expand(r + part)
            if sp.count_ops(r2) < sp.count_ops(r):
                rest = sp.expand(opened - part) if part is not c else sp.S.Zero
                return part * XOverExpm1M1(x) + rest * x / expm1(x) + r2
    return None


def _sigmoid_product_difference(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """c·σ(a)σ(b) − c·σ(−a)σ(−b) → c·expm1(a + b)·σ(−a)σ(−b) (a + b ≤ 0) or −c·expm1(−a − b)·σ(a)σ(b) (a + b ≥ 0)."""
    terms = list(node.args)
    for t1 in terms:
        c1, s1 = _two_sigmoids(t1)
        if s1 is None:
            continue
        a, b = s1
        for t2 in terms:
            c2, s2 = _two_sigmoids(t2)
            if t2 is t1 or s2 is None or sp.expand(c1 + c2) != 0:
                continue
            if {sp.expand(x) for x in s2} != {sp.expand(-a), sp.expand(-b)}:
                continue
            w = sp.expand(a + b)
            if sp.count_ops(w) >= sp.count_ops(a) + sp.count_ops(b) + 1:
                continue
            rest = [u for u in terms if u is not t1 and u is not t2]
            if w.is_nonpositive:
                new = c1 * expm1(w) * Sigmoid(-a) * Sigmoid(-b)
            elif w.is_nonnegative:
                new = -c1 * expm1(-w) * Sigmoid(a) * Sigmoid(b)
            else:
                continue
            return sp.Add(new, *rest)
    return None


def _two_sigmoids(term: sp.Expr) -> tuple[sp.Expr, tuple[sp.Expr, sp.Expr] | None]:
    """(c, (a, b)) when ``term == c·σ(a)·σ(b)`` with c free of sigmoids."""
    factors = list(sp.Mul.make_args(term))
    sig = [f for f in factors if isinstance(f, Sigmoid)]
    if len(sig) != 2 or any(f.has(Sigmoid) for f in factors if not isinstance(f, Sigmoid)):
        return sp.S.Zero, None
    c = sp.Mul(*[f for f in factors if not isinstance(f, Sigmoid)])
    return c, (sig[0].args[0], sig[1].args[0])


def _neg_softplus_terms(e: sp.Expr) -> list[tuple[sp.Expr, sp.Expr]]:
    """(s, rest) for each way of writing ``e == rest − softplus(s)``."""
    terms = sp.Add.make_args(e)
    out = []
    for t in terms:
        if t.could_extract_minus_sign() and isinstance(-t, Softplus):
            out.append(((-t).args[0], sp.Add(*[r for r in terms if r is not t])))
    return out


def _log_mixture(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """logaddexp(−softplus(−g), c − softplus(g)) = log(σ(g) + σ(−g)·e^c)
    → log1p(σ(−g)·expm1(c)) where that argument is above −½, else the logaddexp.

    Only a bare −softplus(−g) on one side (a point mass, log 1 = 0, mixed in): the value itself is then
    the small log1p, which it keeps to the last digit.  With a common u added (u + log1p(...)), the
    logaddexp is already as good, and rewriting c = v − u would only cancel (two Gaussian log densities).
    """
    if type(node) is not LogAddExp:  # its own fallback (LogAddExpFallback) is left alone
        return None
    candidates = []
    for first, second in ((0, 1), (1, 0)):
        mass = node.args[first]
        if not (mass.could_extract_minus_sign() and isinstance(-mass, Softplus)):
            continue
        s = (-mass).args[0]  # mass = −softplus(s) = log σ(−s)
        for s2, c in _neg_softplus_terms(node.args[second]):
            if c != 0 and sp.expand(s + s2) == 0:
                candidates.append((c.is_nonpositive is not True, s, c))
    if not candidates:
        return None
    _, s, c = min(candidates, key=lambda t: t[0])
    x = Sigmoid(s) * expm1(c)
    cond = x > sp.Rational(-1, 2)
    if c.is_nonpositive is not True:  # x may be huge (expm1 overflowing): logaddexp from 1 on as well
        cond = sp.And(cond, x < 1)
    return sp.Piecewise((log1p(x), cond), (LogAddExpFallback(*node.args), True))


# -- Gaussian tails
def _log_ndtr(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """log(c·erfc(x)) → log(2c) + log_ndtr(−√2·x);  log(1 − erfc(x)/2) → log_ndtr(√2·x).

    SymPy writes erfc(−x) as 2 − erfc(x), so the lower tail Φ(z) = erfc(−z/√2)/2
    reaches here as 1 − erfc(z/√2)/2.
    """
    (arg,) = node.args
    if isinstance(node, log1p):  # log1p(−erfc(x)/2) = log(1 − erfc(x)/2)
        arg = 1 + arg
    coeff, rest = arg.as_coeff_Mul()
    if isinstance(rest, sp.erfc) and coeff.is_positive and not isinstance(node, log1p):
        return sp.log(2 * coeff) + LogNdtr(-sp.sqrt(2) * rest.args[0])
    if isinstance(arg, sp.Add) and len(arg.args) == 2 and sp.S.One in arg.args:
        other = arg.args[0] if arg.args[1] == 1 else arg.args[1]
        c, e = other.as_coeff_Mul()
        if isinstance(e, sp.erfc) and c == sp.Rational(-1, 2):
            return LogNdtr(sp.sqrt(2) * e.args[0])
    return None


# -- hyperbolic functions
def _log_cosh(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    (arg,) = node.args
    if not isinstance(arg, sp.cosh):
        return None
    x = arg.args[0]
    return sp.Abs(x) + Softplus(-2 * sp.Abs(x)) - sp.log(2)


def _tanh(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    factors = list(sp.Mul.make_args(node))
    for f in factors:
        if isinstance(f, sp.sinh):
            x = f.args[0]
            inv = 1 / sp.cosh(x)
            if inv in factors:
                rest = list(factors)
                rest.remove(f)
                rest.remove(inv)
                return sp.Mul(sp.tanh(x), *rest)
    return None


def _sigmoid_to_tanh(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """2·sigmoid(x) − 1 → tanh(x/2)  (and 1 − 2·sigmoid(x) → −tanh(x/2)); with a common factor a, expanded:
    2c·a·sigmoid(x) − c·a → c·a·tanh(x/2) (the logistic's ∂ℓ/∂loc = e^−s·2·sigmoid(r) − e^−s)."""
    terms = list(node.args)
    for t in terms:
        c, f = t.as_coeff_Mul()
        factors = list(sp.Mul.make_args(f))
        sig = next((g for g in factors if isinstance(g, Sigmoid)), None)
        if sig is None:
            continue
        factors.remove(sig)
        a = sp.Mul(*factors)
        partner = -(c / 2) * a
        if partner in terms and partner != t:
            rest = list(terms)
            rest.remove(t)
            rest.remove(partner)
            return sp.Add((c / 2) * a * sp.tanh(sig.args[0] / 2), *rest)
    return None


def _log_abs_arg(t: sp.Basic) -> sp.Expr | None:
    """x for a term log|x| or log x (x > 0)."""
    if isinstance(t, sp.log):
        a = t.args[0]
        if isinstance(a, sp.Abs):
            return a.args[0]
        if a.is_positive:
            return a
    return None


def _log_tanhc(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """log|tanh(u)| − log|x| with u = a·x → log_tanhc(u) + log|a|: a removable singularity at x = 0."""
    terms = list(node.args)
    for t in terms:
        inner = _log_abs_arg(t)
        if inner is None or not isinstance(inner, sp.tanh):
            continue
        u = inner.args[0]
        for other in terms:
            if not other.could_extract_minus_sign():
                continue
            x = _log_abs_arg(-other)
            if x is None:
                continue
            ratio = sp.simplify(u / x)
            if ratio.is_number and ratio.is_nonzero:
                rest = list(terms)
                rest.remove(t)
                rest.remove(other)
                return sp.Add(LogTanhc(u), sp.log(sp.Abs(ratio)), *rest)
    return None


def _softplus_difference(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """c·softplus(x) − c·softplus(−x) → c·x."""
    terms = list(node.args)
    for t in terms:
        c, f = t.as_coeff_Mul()
        if isinstance(f, Softplus):
            partner = -c * Softplus(-f.args[0])
            if partner in terms:
                rest = list(terms)
                rest.remove(t)
                rest.remove(partner)
                return sp.Add(c * f.args[0], *rest)
    return None


def _opposite_pair(node: sp.Basic, kind: type) -> tuple[sp.Expr, sp.Expr, sp.Expr, sp.Expr, list] | None:
    """(u, a, d, c, rest) for a sum a·f(u) + d·f(−u) + rest (f = kind) whose total weight c = a + d·s is
    simpler than a, s = −1 for the sigmoid (its pair is a difference) and +1 for softplus: a = c − b, as the
    (1 − y, y) of a Bernoulli or the (n − y, y) of a binomial.  u is the argument without a leading minus."""
    terms = list(node.args)
    found: dict[sp.Expr, tuple[sp.Expr, sp.Expr]] = {}
    for t in terms:
        fs = [f for f in sp.Mul.make_args(t) if isinstance(f, kind)]
        if len(fs) == 1:
            found.setdefault(fs[0].args[0], (t / fs[0], t))
    for u, (a, t) in found.items():
        if u.could_extract_minus_sign() or -u not in found:
            continue
        d, t2 = found[-u]
        c = sp.expand(a + d if kind is Softplus else a - d)
        if c == 0 or sp.count_ops(c) >= sp.count_ops(a) or a.has(kind) or d.has(kind):
            continue
        return u, a, d, c, [r for r in terms if r is not t and r is not t2]
    return None


def _softplus_pair(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """a·softplus(u) + b·softplus(−u) → c·softplus(−|u|) + u·(c·step(u) − b),  c = a + b simpler than a.

    softplus(±u) = max(±u, 0) + softplus(−|u|): one transcendental softplus for the two, and both terms
    ≥ 0 (for a, b ≥ 0), so no cancellation; c·step(u) − b is c − b = a or −b exactly as the inputs give it.
    |u| = u·Sgn(u) and step(u) = max(Sgn(u), 0) share the sign, which picks one side at 0 (see Sgn).
    """
    pair = _opposite_pair(node, Softplus)
    if pair is None:
        return None
    u, a, d, c, rest = pair
    s = Sgn(u)
    return sp.Add(c * Softplus(-u * s) + u * _label_part(c, s, d), *rest)


def _label_part(c: sp.Expr, s: sp.Expr, b: sp.Expr) -> sp.Expr:
    """c·step − b, held together so that no sum around it reorders its terms: computed first it is exact
    (c − b or −b, as the inputs give them), and the value and the gradient share it."""
    return Held(c * sp.Max(s, 0) - b)


def _sigmoid_pair(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """a·sigmoid(u) − b·sigmoid(−u) → (c·step(u) − b) − c·Sgn(u)·sigmoid(−|u|),  c = a + b simpler than a.

    The pair of softplus_pair's derivative: one sigmoid for the two, of −|u| ≤ 0; c·step(u) − b is a or −b
    exactly, and c·σ(−|u|) is the rest (a − c·σ(−u) for u ≥ 0, c·σ(u) − b below), so that a confident
    logit's gradient keeps its e^−|u| (σ(u) − 1 for a label 1 would round it away).  Sgn(u) = ±1 at u = 0
    makes the derivative of this gradient (double backward) right there too.
    """
    pair = _opposite_pair(node, Sigmoid)
    if pair is None:
        return None
    u, a, d, c, rest = pair
    s = Sgn(u)
    return sp.Add(_label_part(c, s, -d) - c * s * Sigmoid(-u * s), *rest)


def _softmax_cross_entropy(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """c·L·Σ_k y_k − c·Σ_k z_k·y_k → c·(log1p(R)·Σ_k y_k − Σ_k y_k·(z_k − M)),  L = logsumexp(z) = M + log1p(R).

    With M = max z both parts are ≥ 0: M − z_k (exact, or one rounding) and log1p(R), R = Σ_k exp(z_k − M) − 1
    summed without the largest term's 1 (so that −log p of a confident correct class, log1p(R) with R ≈ 1e-20,
    keeps its digits).  A sum of nonnegative terms has no cancellation: L − z_k to a few ulps, with one
    maximum and one pass of exponentials per row (shared with the softmax of the gradient, exp(z − M)/(1 + R)).
    """
    terms = list(node.args)
    for t in terms:
        c, f = t.as_coeff_Mul()
        fs = sp.Mul.make_args(f)
        if len(fs) != 2:
            continue
        lse = next((g for g in fs if isinstance(g, LogSumExp)), None)
        total = next((g for g in fs if isinstance(g, sp.Sum) and len(g.limits) == 1), None)
        if lse is None or total is None:
            continue
        k, lo, hi = total.limits[0]
        m, mlo, mhi = lse.limits
        if (lo, hi) != (mlo, mhi) or k in lse.free_symbols:
            continue
        y_k = total.function
        z_k = lse.body.xreplace({m: k})
        for u in terms:
            if u is t:
                continue
            cu, fu = u.as_coeff_Mul()
            if cu != -c or not isinstance(fu, sp.Sum) or len(fu.limits) != 1 or tuple(fu.limits[0][1:]) != (lo, hi):
                continue
            if sp.expand(fu.function.xreplace({fu.limits[0][0]: k}) - z_k * y_k) != 0:
                continue
            rest = [r for r in terms if r is not t and r is not u]
            top, below = _softmax_shift(lse)
            return sp.Add(c * (log1p(below) * total - sp.Sum(y_k * (z_k - top), total.limits)), *rest)
    return None


def _softmax_gradient(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """u·e_j/(1 + R) + r → (Held(u·e_j + r) + r·R)/(1 + R),  e_j = exp(z_j − M), R = Σ_k exp(z_k − M) − 1.

    The softmax gradient Σy·p_j − y_j cancels where p_j ≈ 1 (a confident correct class: −(1 − p_j) = −R/(1 + R)
    with R ≈ 1e-35 comes out 0).  Over the common denominator the largest class has e_j = 1 exactly, so
    u·e_j + r is Σy − y_j without rounding (0 for a one-hot target) and the rest, r·R, carries R's digits; at
    the other classes e_j < 1 and nothing cancels that the inputs do not make cancel.  The same value, exactly
    rearranged (u·e/S + r = (u·e + r·S)/S, S = 1 + R).
    """
    terms = list(node.args)
    for t in terms:
        factors = sp.Mul.make_args(t)
        den = next((f for f in factors if f.is_Pow and f.exp == -1 and isinstance(f.base, sp.Add)
                    and len(f.base.args) == 2 and sp.S.One in f.base.args
                    and any(isinstance(a, SumBelowOne) for a in f.base.args)), None)
        if den is None or not any(_is_exp(f) and f.has(MaxOver) for f in factors):
            continue
        rest = [r for r in terms if r is not t]
        if not rest:
            continue
        below = next(a for a in den.base.args if isinstance(a, SumBelowOne))
        r = sp.Add(*rest)
        numerator = sp.Mul(*[f for f in factors if f is not den])
        return (Held(numerator + r) + r * below) / den.base
    return None


def _softmax_term(f: sp.Basic) -> bool:
    """Whether f is exp(x_j − max_m x_m), a softmax term: its argument is ≤ 0."""
    if not _is_exp(f) or not isinstance(f.args[0], sp.Add):
        return False
    shifts = [t for t in f.args[0].args if (-t).func is MaxOver]
    if len(shifts) != 1:
        return False
    top = -shifts[0]
    rest = f.args[0] - shifts[0]
    index = top.limits[0]
    return any(top.body.xreplace({index: i}) == rest for t in rest.atoms(sp.Indexed) for i in t.indices)


def _mul_exp(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """u·exp(x_j − max x) → mul_exp(u, x_j − max x, exp(x_j − max x))  (u not ±1)."""
    factors = list(sp.Mul.make_args(node))
    term = next((f for f in factors if _softmax_term(f)), None)
    if term is None:
        return None
    u = sp.Mul(*[f for f in factors if f is not term])
    if u in (sp.S.One, sp.S.NegativeOne):
        return None
    return MulExp(u, term.args[0], term)


def _exp_sum(s: sp.Basic) -> tuple[sp.Expr, sp.Tuple] | None:
    """(f, (m, lo, hi)) for Sum(exp(f), (m, lo, hi)), a sum of exponentials over the class axis."""
    if isinstance(s, sp.Sum) and len(s.limits) == 1 and _is_exp(s.function):
        return s.function.args[0], sp.Tuple(*s.limits[0])
    return None


def _exp_sum_parts(f: sp.Expr, limits: sp.Tuple) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """(M, A, A·R) for Σ_m exp(f_m) = A·(1 + R): M = max f, A = e^M the largest term, R = Σ_m exp(f_m − M) − 1
    summed without the largest term's 1 (A·R is the sum of the others, ties included, to a few ulps)."""
    top = MaxOver(f, limits)
    big = sp.exp(top)
    return top, big, big * SumBelowOne(sp.exp(f - top), limits)


def _log_beta_sum(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """c·Σ_k lgamma(e^f_k) − c·lgamma(Σ_k e^f_k) → c·(Σ_k [e_k < 1]·lgamma(e^f_k) + (n − 1)·lgamma(A)
    − lgamma_difference(A, A·R)),  e_k = exp(f_k − M), M = max f, A = e^M, R = Σ_k e_k − 1, n = Σ_k ⌊e_k⌋ the
    number of terms equal to the largest (a sum of floats: an integer indicator would not keep the dtype).

    The log of the multivariate Beta function of concentrations e^f (a Dirichlet's normaliser): with one
    concentration 1e30 and the others 1e-30, lgamma(1e30) = 6.8e31 less lgamma(1e30 + 2e-30) is −1.4e-28, and
    the difference of the two rounded lgammas is 0 or ±9e15 (an ulp of them), which swallows the rest of the
    loss (2.2e14 at y₀ = 1 − 2⁻⁵²).  Without the largest term every lgamma is of its own size, and the
    largest one enters only through lgamma_difference of the sum of the others, A·R (the softmax's R)."""
    terms = list(node.args)
    for t in terms:
        c, f = t.as_coeff_Mul()
        if not isinstance(f, LogGamma) or (parts := _exp_sum(f.args[0])) is None:
            continue
        body, limits = parts
        m, lo, hi = limits
        for u in terms:
            cu, fu = u.as_coeff_Mul()
            if u is t or not isinstance(fu, sp.Sum) or len(fu.limits) != 1 or tuple(fu.limits[0][1:]) != (lo, hi):
                continue
            k = fu.limits[0][0]
            cg, g = fu.function.as_coeff_Mul()
            if not isinstance(g, LogGamma) or g.args[0] != sp.exp(body.xreplace({m: k})) or cu * cg + c != 0:
                continue
            top, big, others = _exp_sum_parts(body, limits)
            is_top = sp.Eq(sp.exp(body.xreplace({m: k}) - top), 1)
            below = sp.Sum(sp.Piecewise((0, is_top), (g, True)), fu.limits)
            ties = sp.Sum(sp.floor(sp.exp(body.xreplace({m: k}) - top)), fu.limits) - 1  # ⌊e_k⌋ = [e_k = 1]
            rest = [r for r in terms if r is not t and r is not u]
            return sp.Add(-c * (below + ties * LogGamma(big) - LgammaDifference(big, others)), *rest)
    return None


def _digamma_of_sum(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """c·ψ(e^f_j) − c·ψ(Σ_k e^f_k) → c·(−digamma_difference(A, A·R) if e_j = 1 else ψ(e^f_j) − ψ(A·(1 + R)))
    (e_j, A, R as in log_beta_sum): the largest concentration's ψ(A) − ψ(A + A·R) without the cancellation of
    ψ(1e30) − ψ(1e30 + 2e-30), which is 0 where the rest of the gradient is 2.2e-16 (the log of y₀ = 1 − 2⁻⁵²)."""
    terms = list(node.args)
    for t in terms:
        c, f = t.as_coeff_Mul()
        if not isinstance(f, sp.polygamma) or f.args[0] != 0 or (parts := _exp_sum(f.args[1])) is None:
            continue
        body, limits = parts
        m = limits[0]
        for u in terms:
            cu, fu = u.as_coeff_Mul()
            if u is t or cu + c != 0 or not isinstance(fu, sp.polygamma) or fu.args[0] != 0 or not _is_exp(fu.args[1]):
                continue
            x = fu.args[1].args[0]
            if not any(body.xreplace({m: i}) == x for ix in x.atoms(sp.Indexed) for i in ix.indices):
                continue
            top, big, others = _exp_sum_parts(body, limits)
            new = sp.Piecewise((-DigammaDifference(big, others), sp.Eq(sp.exp(x - top), 1)),
                               (fu - sp.polygamma(0, big + others), True))
            rest = [r for r in terms if r is not t and r is not u]
            return sp.Add(cu * new, *rest)
    return None


# -- log(y) − s
def _data_log(t: sp.Expr, ctx: Context) -> tuple[sp.Expr, sp.Expr] | None:
    """(C, y) for a term C·log(y) with y the data (one log factor)."""
    logs = [f for f in sp.Mul.make_args(t) if isinstance(f, sp.log)]
    if len(logs) != 1 or not ctx.touches_data(logs[0]):
        return None
    y = logs[0].args[0]
    if not isinstance(y, sp.Symbol) or y.is_nonnegative is not True:
        return None
    return sp.expand(t / logs[0]), y


def _log_ratio(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """C·log(y) + c·s → (−c)·log_ratio(y, s) + (C + c)·log(y)  (y the data, s a real input, −c a term of C).

    The whole coefficient is the common case (a Weibull's (k − 1)·(log y − log λ)); a part of it, when the
    log's coefficient is a sum (a Pareto's (α + 1)·log y − log α − α·log σ: 1·(log y − log α) + α·log y −
    α·log σ), pairs the cancelling term on its own."""
    terms = list(node.args)
    for t in terms:
        found = _data_log(t, ctx)
        if found is None:
            continue
        big, y = found
        parts = sp.Add.make_args(big)
        for t2 in terms:
            if t2 is t:
                continue
            c, s = _symbol_term(t2, ctx)
            if s is None:
                continue
            # an input whose term has a partner −c·s′ of another input is left to cancel with it exactly
            # (log a − log rate of a Gamma's a·(ψ(a) − log rate − log y), ψ(a) ≈ log a, at a = rate = 1e30)
            if any(u is not t2 and u is not t and (p := _symbol_term(u, ctx))[1] not in (None, s)
                   and sp.expand(p[0] + c) == 0 for u in terms):
                continue
            if sp.expand(big + c) == 0 or -c in parts:
                rest = [u for u in terms if u is not t and u is not t2]
                return sp.Add(-c * LogRatio(y, s), sp.expand(big + c) * sp.log(y), *rest)
    return None


def _symbol_term(t: sp.Expr, ctx: Context) -> tuple[sp.Expr, sp.Symbol | None]:
    """(c, s) for a term c·s with s a real input symbol (not the data) and c free of it."""
    for s in sp.Mul.make_args(t):
        if isinstance(s, sp.Symbol) and s.is_real and not ctx.touches_data(s):
            c = t / s
            if s not in c.free_symbols:
                return c, s
    return sp.S.Zero, None


# -- 0·log 0
def _xlogy(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    coeff, rest = node.as_coeff_Mul()
    factors = list(sp.Mul.make_args(rest))
    # x·(log y + a) with x that may vanish: distribute, so that x·log y can become xlogy(x, y)
    for f in factors:
        if isinstance(f, sp.Add) and any(isinstance(t, (sp.log, log1p, LogRatio)) and ctx.touches_data(t)
                                         for t in f.args):
            others = sp.Mul(*[g for g in factors if g is not f])
            if others.is_number or others.is_zero is False or not ctx.touches_data(node):
                continue
            return coeff * sp.Add(*[others * t for t in f.args])
    logs = [f for f in factors if isinstance(f, (sp.log, log1p, LogRatio, LogQuotient))]
    if len(logs) != 1:
        return None
    (lg,) = logs
    others = list(factors)
    others.remove(lg)
    x = sp.Mul(*others)
    if x.is_number or x.is_zero is False or not ctx.touches_data(x, lg):
        return None
    if isinstance(lg, (LogRatio, LogQuotient)):
        # x·(log y − s) kept whole (xlogy(x, y) − x·s cancels where y ≈ e^s), guarded like xlogy: 0 where x = 0
        return coeff * XMulY(x, lg)
    fn = XLogY if isinstance(lg, sp.log) else XLog1pY
    return coeff * fn(x, lg.args[0])


# -- polynomial denominators
def _factor_denominator(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """1/(p² − p) → 1/(p·(p − 1)): a polynomial denominator as a product of its factors."""
    base, n = node.args
    if not (n.is_Integer and n < 0) or not isinstance(base, sp.Add):
        return None
    syms = base.free_symbols
    if not syms or not base.is_polynomial(*syms) or sp.Poly(base, *sorted(syms, key=str)).total_degree() < 2:
        return None
    factored = sp.factor(base)
    if not isinstance(factored, sp.Mul) or factored == base:
        return None
    return factored**n


# -- exponentials
def _exp_of_sum(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    factors = list(sp.Mul.make_args(node))
    exps = [f for f in factors if _is_exp(f)]
    if len(exps) < 2:
        return None
    rest = [f for f in factors if not _is_exp(f)]
    return sp.Mul(sp.exp(sp.Add(*[e.args[0] for e in exps])), *rest)


def _exp_shift_product(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """k·(exp(a) − y)·exp(c) → k·(1 − y·exp(−a))·exp(a + c), y > 0 not a number, where c falls with a (its
    coefficient of a is negative: the inverse Gaussian's c = log λ − 2a), so that a + c is the smaller exponent.

    exp(a) − y cancels to 0 or a subnormal at a = log y while exp(c) overflows (μ = y = 1e-300: 0·∞ = NaN, or
    ∞ although the product is 1e286); 1 − y·e^−a is at most of size y/μ and exp(a + c) of the result's size.
    No branch (a where over two forms left an overflowing unused branch, which double backward turned into
    NaN): over the accuracy grid this one form has 2 points off where the product form had 43."""
    factors = list(sp.Mul.make_args(node))
    exps = [f for f in factors if _is_exp(f)]
    if len(exps) != 1:
        return None
    (e,) = exps
    c = e.args[0]
    for diff in factors:
        if not isinstance(diff, sp.Add) or len(diff.args) != 2:
            continue
        for t in diff.args:
            k, rest = t.as_coeff_Mul()
            if not _is_exp(rest) or k == 0:
                continue
            a = rest.args[0]
            y = -(diff - t) / k
            if y.is_number or y.is_positive is not True or not a.free_symbols:
                continue
            slope = sp.expand(c).coeff(a) if isinstance(a, sp.Symbol) else None
            if slope is None or not (slope.is_number and slope < 0):
                continue
            others = sp.Mul(*[f for f in factors if f is not diff and f is not e])
            return others * k * (1 - y * sp.exp(-a)) * sp.exp(sp.expand(a + c))
    return None


def _standardised_square(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    factors = list(sp.Mul.make_args(node))
    exps = [f for f in factors if _is_exp(f)]
    squares = [f for f in factors if isinstance(f, sp.Pow) and f.exp == 2 and not f.base.is_number]
    if len(exps) != 1 or not squares:
        return None
    (e,) = exps
    sq = sorted(squares, key=sp.default_sort_key)[0]
    rest = list(factors)
    rest.remove(e)
    rest.remove(sq)
    return sp.Mul(Square(sq.base * sp.exp(e.args[0] / 2)), *rest)


def _square_ratio(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """(c·u² + r)·v⁻² → c·(u/v)² + r·v⁻²  (v > 0): the squared ratio, not a ratio of squares."""
    factors = list(sp.Mul.make_args(node))
    dens = [f for f in factors if isinstance(f, sp.Pow) and f.exp == -2 and f.base.is_positive
            and not f.base.is_number]
    if len(dens) != 1:
        return None
    (den,) = dens
    v = den.base
    rest = [f for f in factors if f is not den]
    adds = [f for f in rest if isinstance(f, sp.Add)]
    if len(adds) != 1:
        return None
    (num,) = adds
    others = [f for f in rest if f is not num]
    terms, changed = [], False
    for t in num.args:
        tf = list(sp.Mul.make_args(t))
        sq = [f for f in tf if isinstance(f, sp.Pow) and f.exp == 2 and not f.base.is_number]
        if sq:
            tf.remove(sq[0])
            terms.append(sp.Mul(*tf) * Square(sq[0].base / v))
            changed = True
        else:
            terms.append(t / v**2)
    if not changed:
        return None
    return sp.Mul(*others, sp.Add(*terms))


def _square_base(f: sp.Basic) -> sp.Expr | None:
    """z for a factor Square(z) or z² (z not a number)."""
    if isinstance(f, Square):
        return f.args[0]
    if isinstance(f, sp.Pow) and f.exp == 2 and not f.base.is_number:
        return f.base
    return None


def _log1p_square(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """log1p(p·z²) with p > 0 and z = u·exp(w) → log1p_square(u, w + log(p)/2)."""
    (arg,) = node.args
    factors = list(sp.Mul.make_args(arg))
    squares = [f for f in factors if _square_base(f) is not None]
    if len(squares) != 1:
        return None
    rest = sp.Mul(*[f for f in factors if f is not squares[0]])
    if rest.is_positive is not True:
        return None
    z = _square_base(squares[0])
    exps = [f for f in sp.Mul.make_args(z) if _is_exp(f)]
    u = sp.Mul(*[f for f in sp.Mul.make_args(z) if not _is_exp(f)])
    if u.is_number:
        return None
    v = sp.Add(*[e.args[0] for e in exps]) + sp.expand_log(sp.log(rest), force=False) / 2
    if v.has(sp.log) and any(isinstance(t, sp.log) and t.args[0] == rest for t in sp.Add.make_args(v)) \
            and not rest.is_number:
        return None  # log(p) did not split: p is no product of positive powers
    return Log1pSquare(u, v)


def _square_fraction(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """z/(z² + q) → log1p_square_du(z, −log(q)/2);  z²/(z² + q) → log1p_square_dv(z, −log(q)/2)  (q > 0)."""
    factors = list(sp.Mul.make_args(node))
    for den in factors:
        if not (isinstance(den, sp.Pow) and den.exp == -1 and isinstance(den.base, sp.Add)):
            continue
        terms = den.base.args
        for sq in terms:
            z = _square_base(sq)
            q = den.base - sq
            if z is None or q.is_positive is not True or q.has(z):
                continue
            v = -sp.expand_log(sp.log(q), force=False) / 2
            rest = [f for f in factors if f is not den]
            if sq in rest:
                rest.remove(sq)
                return sp.Mul(Log1pSquareDv(z, v), *rest)
            if z in rest:
                rest.remove(z)
                return sp.Mul(Log1pSquareDu(z, v), *rest)
    return None


def _log1p_square_du_scaled(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """c·k·log1p_square_du(u, v) → c·log1p_square_du_scaled(u, v, k)  (k the factors that are not numbers and are
    known to be positive, or negative: −k; c the rest)."""
    factors = list(sp.Mul.make_args(node))
    dus = [f for f in factors if isinstance(f, Log1pSquareDu)]
    if len(dus) != 1:
        return None
    (du,) = dus
    scale, rest = [], []
    for f in factors:
        if f is du:
            continue
        if not f.is_number and f.is_positive is True:
            scale.append(f)
        elif not f.is_number and (-f).is_positive is True:  # −2·(p + 1) is written −2·p − 2
            scale.append(-f)
            rest.append(sp.S.NegativeOne)
        else:
            rest.append(f)
    if not scale:
        return None
    return sp.Mul(*rest, Log1pSquareDuScaled(*du.args, sp.Mul(*scale)))


def _square_complement(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """k + (−k + r)·log1p_square_dv(u, v) → k·log1p_square_dvc(u, v) + r·log1p_square_dv(u, v)  (k a number)."""
    k, rest = node.as_coeff_Add()
    if k == 0:
        return None
    for t in sp.Add.make_args(rest):
        dvs = [f for f in sp.Mul.make_args(t) if isinstance(f, Log1pSquareDv)]
        if len(dvs) != 1:
            continue
        (dv,) = dvs
        m = sp.expand(t / dv)
        const, r = m.as_coeff_Add()
        if const != -k:
            continue
        others = [s for s in sp.Add.make_args(rest) if s is not t]
        return sp.Add(k * Log1pSquareDvc(*dv.args), r * dv, *others)
    return None


def _log1p_square_rem(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """a·log1p_square(u, v) + b·log1p_square_dv(u, v) → a·log1p_square_rem(u, v) + (a + b)·log1p_square_dv(u, v)
    where −a is b or a term of it (the part of the two that cancels for small x)."""
    terms = list(node.args)
    for t in terms:
        ls = [f for f in sp.Mul.make_args(t) if isinstance(f, Log1pSquare)]
        if len(ls) != 1:
            continue
        (lsq,) = ls
        dv = Log1pSquareDv(*lsq.args)
        mine = [u for u in terms if lsq in sp.Mul.make_args(u)]
        theirs = [u for u in terms if dv in sp.Mul.make_args(u)]
        if not theirs:
            continue
        a = sp.expand(sp.Add(*[u / lsq for u in mine]))
        b = sp.expand(sp.Add(*[u / dv for u in theirs]))
        if a == 0 or a.has(lsq, dv) or b.has(lsq, dv):
            continue
        if sp.expand(a + b) != 0 and not all(-p in sp.Add.make_args(b) for p in sp.Add.make_args(a)):
            continue
        rest = [u for u in terms if not any(u is v for v in mine + theirs)]
        return sp.Add(a * Log1pSquareRem(*lsq.args), sp.expand(a + b) * dv, *rest)
    return None


def _sqrt_positive(f: sp.Expr) -> sp.Expr | None:
    """√f for a positive non-number factor f = exp(w) or b^n (b > 0), written without a square root of an
    exponential (exp(w/2), b^(n/2))."""
    if _is_exp(f):
        return sp.exp(f.args[0] / 2)
    if isinstance(f, sp.Pow) and f.base.is_positive and not f.base.is_number and f.exp.is_number:
        return f.base ** (f.exp / 2)
    if isinstance(f, sp.Symbol) and f.is_positive:
        return sp.sqrt(f)
    return None


def _square_absorb(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """Square(z)·p → Square(z·√p)  (p > 0: an exponential or a positive power); (a + Square(z))·p is
    distributed first."""
    factors = list(sp.Mul.make_args(node))
    positive = [f for f in factors if _sqrt_positive(f) is not None]
    if not positive:
        return None
    squares = [f for f in factors if isinstance(f, Square)]
    if len(squares) == 1:
        (sq,) = squares
        rest = [f for f in factors if f is not sq and f not in positive]
        root = sp.Mul(*[_sqrt_positive(f) for f in positive])
        return sp.Mul(Square(sq.args[0] * root), *rest)
    if squares:
        return None
    for f in factors:
        if isinstance(f, sp.Add) and any(isinstance(g, Square) for t in f.args for g in sp.Mul.make_args(t)):
            others = sp.Mul(*[g for g in factors if g is not f])
            return sp.Add(*[sp.Mul(others, t) for t in f.args])
    return None


def _difference_of_squares(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """c·Square(a) − c·Square(b) → c·(a − b)·(a + b)."""
    terms = list(node.args)
    for t in terms:
        sq = [f for f in sp.Mul.make_args(t) if isinstance(f, Square)]
        if len(sq) != 1:
            continue
        c = t / sq[0]
        for other in terms:
            if other is t:
                continue
            sq2 = [f for f in sp.Mul.make_args(other) if isinstance(f, Square)]
            if len(sq2) != 1 or sq2[0] == sq[0] or sp.expand(other / sq2[0] + c) != 0:
                continue
            a, b = sq[0].args[0], sq2[0].args[0]
            rest = [r for r in terms if r is not t and r is not other]
            return sp.Add(sp.Mul(c, a - b, a + b, evaluate=False), *rest)
    return None


def _data_residual(t: sp.Expr, ctx: Context) -> tuple[sp.Symbol, sp.Expr, sp.Expr, sp.Expr] | None:
    """(y, k, p, g) with t = k·exp(p)·g, g = y + a a sum with the data symbol y (coefficient 1; a, k, p free of y):
    a term c·exp(p)·(c'·y + b) of a residual.  Structural: nothing is differentiated, nothing expanded."""
    factors = sp.Mul.make_args(t)
    held = [f for f in factors if any(y in ctx.data for y in f.free_symbols)]
    if len(held) != 1 or not isinstance(held[0], (sp.Add, sp.Symbol)):
        return None
    (f,) = held
    ys = [y for y in f.free_symbols if y in ctx.data]
    if len(ys) != 1:
        return None
    (y,) = ys
    ins = [a for a in sp.Add.make_args(f) if a.has(y)]
    if len(ins) != 1:
        return None
    cy, rest = ins[0].as_independent(y, as_Add=False)
    if rest != y:
        return None
    parts = _exp_term(sp.Mul(*[g for g in factors if g is not f]))
    if parts is None or parts[2] or parts[0].has(y) or parts[1].has(y):
        return None
    return y, parts[0] * cy, parts[1], sp.expand(f / cy)


def _residual_difference(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """k·e^p·(y + a) − k·e^q·(y + b) → k·(−(y + a)·e^p·expm1(q − p) + (a − b)·e^q) if q < p, else
    k·((y + b)·e^q·expm1(p − q) + (a − b)·e^p)  (y the data).

    Two standardised residuals (y − μ₁)·e^−s₁ and (y − μ₂)·e^−s₂ round on their own, each to an ulp of |y|·e^−s,
    and their difference cancels where y is far from both locations: at y = 1e150, s₁ = s₂ it is (μ₂ − μ₁)·e^−s,
    and comes out 0.  Written around the residual of the larger scale factor (the same value: (y + a)·e^p −
    (y + b)·e^q = (y + a)·(e^p − e^q) + (a − b)·e^q), e^p − e^q by expm1 (exactly 0 for equal scales) and a − b
    the difference of the locations, every rounding is of the size of a term of the condition number: y·(e^p − e^q),
    a·e^p, b·e^q (y + a is as exact as it is in the residual, 0 at y = μ however large e^p is).
    """
    terms = list(node.args)
    parts = [_data_residual(t, ctx) for t in terms]
    for i, pi in enumerate(parts):
        if pi is None:
            continue
        for j, pj in enumerate(parts):
            if j == i or pj is None or pj[0] != pi[0] or sp.expand(pi[1] + pj[1]) != 0 or pi[2] == pj[2]:
                continue
            # one orientation for the pair whichever term comes first: r₂ − r₁ and r₁ − r₂ (in different gradients)
            # become ±1 times one expression, which cse computes once
            first, second = sorted((pi, pj), key=lambda t: sp.default_sort_key(t[3]))
            (_, k, p, ga), (_, _, q, gb) = first, second
            ab = sp.expand(ga - gb)
            if ab.has(pi[0]):
                continue
            d = min((q - p, sp.expand(q - p)), key=sp.count_ops)
            rest = [t for n, t in enumerate(terms) if n not in (i, j)]
            new = sp.Piecewise((-ga * sp.exp(p) * expm1(d) + ab * sp.exp(q), d < 0),
                               (gb * sp.exp(q) * expm1(-d) + ab * sp.exp(p), True))
            return sp.Add(k * new, *rest)
    return None


def _xmuly_square(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """xmuly(w, Square(z)·r) → xmuly(xmuly(w, z), z)·r  (w a sigmoid: in [0, 1]).

    w·z cannot overflow, and (w·z)·z overflows only where w·z² does; each product stays 0 where its weight is
    0 (an underflowed sigmoid times an infinite residual).  A 0/1 indicator is left alone: w·z² is then 0 or
    z² itself."""
    w, a = node.args
    factors = list(sp.Mul.make_args(a))
    squares = [f for f in factors if isinstance(f, Square)]
    if len(squares) != 1 or not isinstance(w, Sigmoid):
        return None
    z = squares[0].args[0]
    r = sp.Mul(*[f for f in factors if f is not squares[0]])
    return XMulY(XMulY(w, z), z) * r


def _zero_weight(f: sp.Basic) -> bool:
    """A factor that can be exactly 0 at finite inputs: a sigmoid (it underflows), or a 0/1 indicator c or
    1 − c of an integer, nonnegative input c (a censoring flag)."""
    if isinstance(f, Sigmoid):
        return True
    syms = f.free_symbols
    if len(syms) != 1:
        return False
    (c,) = syms
    return bool(c.is_integer and c.is_nonnegative) and f in (c, 1 - c, c - 1)


def _xmuly(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """w·a → xmuly(w, a) for a weight w that can be 0 (sigmoid, 0/1 indicator) and a factor a with a square
    (which can overflow)."""
    coeff, rest = node.as_coeff_Mul()
    factors = list(sp.Mul.make_args(rest))
    for w in factors:
        if not _zero_weight(w):
            continue
        others = sp.Mul(*[f for f in factors if f is not w])
        if others.is_number or not others.has(Square):
            continue
        return coeff * XMulY(w, others)
    return None


def _abs_linear(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """α·|t| + β·t → (β + α)·t if t > 0 else (β − α)·t  (α of known sign, free of t): the check (pinball)
    function, and with α < 0 its negation (the asymmetric Laplace's ∂ℓ/∂log_scale)."""
    terms = list(node.args)
    for ta in terms:
        absolute = [f for f in sp.Mul.make_args(ta) if isinstance(f, sp.Abs)]
        if len(absolute) != 1:
            continue
        t = absolute[0].args[0]
        alpha = ta / absolute[0]
        if not (alpha.is_positive or alpha.is_negative) or alpha.has(*t.free_symbols):
            continue
        others = [u for u in terms if u is not ta]
        linear, remainder = [], []
        for u in others:
            beta = sp.cancel(u / t)
            (linear if t not in beta.free_symbols and not beta.has(*t.free_symbols) else remainder).append(
                (u, beta))
        if not linear:
            continue
        beta = sp.Add(*[b for _, b in linear])
        hi, lo = sp.factor_terms(beta + alpha), sp.factor_terms(beta - alpha)
        # max((β + α)·t, (β − α)·t), as the branch on the sign of t (NumPy's printer has no elementwise Max);
        # at t = 0 the value is 0 either way, and β·t keeps the derivative there that sign(0) = 0 gives
        # (α·sign(t) + β: the midpoint of the subgradients, as the exact gradient formula has it)
        return sp.Add(sp.Piecewise((hi * t, t > 0), (lo * t, t < 0), (sp.factor_terms(beta) * t, True)),
                      *[u for u, _ in remainder])
    return None


def _sign_linear(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """r + α·sign(t) → r + α if t > 0, r − α if t < 0, r at t = 0  (α, r free of sign): each branch is
    simplified symbolically, so that ½ − q − ½ (the pinball's gradient below the target) is −q exactly."""
    terms = list(node.args)
    signed = [u for u in terms if any(isinstance(f, sp.sign) for f in sp.Mul.make_args(u))]
    if len(signed) != 1:
        return None
    (ts,) = signed
    sg = [f for f in sp.Mul.make_args(ts) if isinstance(f, sp.sign)]
    if len(sg) != 1:
        return None
    t = sg[0].args[0]
    alpha = ts / sg[0]
    rest = sp.Add(*[u for u in terms if u is not ts])
    if rest == 0 or alpha.has(sp.sign) or rest.has(sp.sign) or not t.is_extended_real:
        return None
    hi, lo = sp.factor_terms(rest + alpha), sp.factor_terms(rest - alpha)
    budget = sp.count_ops(rest) + sp.count_ops(alpha) + 1
    if sp.count_ops(hi) >= budget and sp.count_ops(lo) >= budget:
        return None  # nothing cancels in either branch: keep the branch-free form
    return sp.Piecewise((hi, t > 0), (lo, t < 0), (rest, True))


# -- Piecewise: the double-where guard
_FLIP = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def _safe_point(cond: sp.Basic) -> tuple[sp.Basic, sp.Expr] | None:
    """(symbol, a value where ``cond`` holds) for a condition ``symbol op bound``."""
    if not isinstance(cond, sp.core.relational.Relational) or cond.rel_op not in _FLIP:
        return None
    lhs, rhs, op = cond.lhs, cond.rhs, cond.rel_op
    if not isinstance(lhs, (sp.Symbol, sp.Indexed)):
        if isinstance(rhs, (sp.Symbol, sp.Indexed)):
            lhs, rhs, op = rhs, lhs, {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[op]
        else:
            return None
    if lhs in rhs.free_symbols:
        return None
    step = {"<": -1, "<=": 0, ">": 1, ">=": 0}[op]
    return lhs, rhs + step


def _negate(cond: sp.Basic) -> sp.Basic | None:
    if isinstance(cond, sp.core.relational.Relational) and cond.rel_op in _FLIP:
        return sp.core.relational.Relational(cond.lhs, cond.rhs, _FLIP[cond.rel_op])
    return None


def _piecewise_guard(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    if node.has(Guard):
        return None
    pieces = []
    changed = False
    previous: sp.Basic | None = None
    for expr, cond in node.args:
        effective = cond
        if cond is sp.true and previous is not None:
            effective = _negate(previous)
        point = _safe_point(effective) if effective is not None else None
        if point is not None and point[0] in expr.free_symbols | expr.atoms(sp.Indexed):
            sym, safe = point
            expr = expr.xreplace({sym: Guard(sym, effective, safe)})
            changed = True
        pieces.append((expr, cond))
        previous = cond if previous is None else None  # the negation is only known after one condition
    return sp.Piecewise(*pieces, evaluate=False) if changed else None


# -- a·expm1(w) + r with w = c + p·log_ratio(y, s)
def _expm1_offset(node: sp.Basic, ctx: Context) -> sp.Basic | None:
    """a·expm1(w) + r → a·expm1(w) + r where |w| < log 2, else a·exp(w) + (r − a)  (w = c + p·log_ratio(y, s)).

    The near branch sees w through a guard (0 off its condition: expm1 does not overflow in the branch that is
    not taken, and the rule does not match its own result again); r − a is held, computed before a·exp(w) is
    added (1 − c exactly for a 0/1 indicator c)."""
    terms = list(node.args)
    for t in terms:
        part = _exp_term(t)
        if part is None or not part[2] or log_ratio_power(part[1]) is None:
            continue
        a, w, _ = part
        near = sp.Abs(w) < sp.log(2)
        rest = sp.Add(*[u for u in terms if u is not t])
        return sp.Piecewise((a * expm1(Guard(w, near, 0)) + rest, near),
                            (a * sp.exp(w) + Held(sp.expand(rest - a)), True))
    return None


def _node(*types: type) -> Callable[[sp.Basic], bool]:
    return lambda e: isinstance(e, types)


#: The stabilising rewrites, applied in this order (and repeated until nothing changes).
RULES: tuple[Rule, ...] = (
    Rule("log_gamma", "log Γ(x) → lgamma(x);  log x! → lgamma(x + 1)",
         "Γ(x) overflows for x > 171 (35 in float32), its logarithm does not", _node(sp.log, sp.loggamma),
         _log_gamma),
    Rule("log_beta", "lgamma(p) + lgamma(q) − lgamma(p + q) → lbeta(p, q);  … − lgamma(p + q − 1) → lbeta(p, q) "
                     "+ log(p + q − 1)",
         "the three lgammas cancel for a large argument (lgamma(1) + lgamma(1e30) − lgamma(1e30 + 1) is 0, "
         "not −69)", _node(sp.Add), _log_beta),
    Rule("lgamma_difference", "lgamma(x + h) − lgamma(x) → lgamma_difference(x, h)",
         "lgamma(1e30 + ½) − lgamma(1e30) is 0 in float64, not 34.5 (Student-t at df = 2e30, the negative "
         "binomial at total_count = 1e300: the two 1e302-sized lgammas swallow every other term)",
         _node(sp.Add), _lgamma_difference),
    Rule("lgamma_half_log", "c·lgamma_difference(x, ½) + r → c·lgamma_half_rem(x) + (c/2)·log x + r  (a term "
         "of (c/2)·log x cancels one of r)",
         "½·log ν − lgamma_difference(ν/2, ½) of a Student-t is 345.4 − 345.0 at ν = 1e300 (500 ulps of the "
         "loss lost), and its ∂/∂ν, 1/(2ν) − ½·(ψ((ν + 1)/2) − ψ(ν/2)) = O(1/ν²), is lost entirely at ν = 1e30; "
         "with the ½·log x of Stirling's formula taken out, the log terms and the 1/(2ν) cancel symbolically",
         _node(sp.Add), _lgamma_half_log),
    Rule("digamma_difference", "ψ(x + h) − ψ(x) → digamma_difference(x, h)",
         "ψ(1e30 + 1) − ψ(1e30) is 0 in float64, not 1e-30 (and ψ(r) − ψ(r) after other terms is not 0)",
         _node(sp.Add), _digamma_difference),
    Rule("lgamma_deviance",
         "lgamma(x) − x·L + e^L → ½·log 2π − ½·log x + δ(x) + bd0(x, e^L)  (x = c·e^u ≥ 10; bd0(x, m) = "
         "x·log(x/m) + m − x)",
         "lgamma(a) − a·log(rate·y) + rate·y cancels from 1e31-sized terms to −33.6 at a = rate = 1e30, y = 1 (0 "
         "in float64 once the small terms are added first); Loader's bd0, computed from z = log(m/x), does not",
         _node(sp.Add), _lgamma_deviance),
    Rule("lbeta_deviance",
         "lbeta(a, b) − a·log p − b·log(1 − p) → ½·log 2π + ½·log((a + b)/(a·b)) + δ(a) + δ(b) − δ(a + b) + "
         "bd0(a, (a + b)·p) + bd0(b, (a + b)·(1 − p))  (a, b ≥ 10)",
         "lbeta(a, b) and a·log p + b·log(1 − p) are −1.4e30 each at a = b = 1e30, p = ½ and cancel to −34.2; "
         "the two bd0 terms are exactly 0 there",
         _node(sp.Add), _lbeta_deviance),
    Rule("lgamma_stirling",
         "lgamma(c·e^u) + r → (c·e^u − ½)(u + log c) − c·e^u + ½·log 2π + δ(c·e^u) + r  (c·e^u ≥ 10)",
         "lgamma(a) − a·log(rate) cancels for a = rate = 1e30 (1e32-sized terms, a result of −33); with the "
         "Stirling terms written out the a·log a and a·log(rate) terms combine to a·(u − log rate)",
         _node(sp.Add), _lgamma_stirling),
    Rule("lgamma_log_quotient",
         "c·lgamma(x) + k·log y → c·lgamma(x + 1) + k·log_quotient(y, x, L, log y) + (k − c)·L  (x = C·e^g, g an "
         "input, L = g + log C, y the data, c a term of k)",
         "lgamma(a) ≈ −log a cancels log y where y ≈ a is small (a Gamma's lgamma(a) − (a − 1)·log y at a = y = 1e-30 "
         "is −2.3e-15, the rounding of log 1e-30, and came out 0); lgamma(a) = lgamma(a + 1) − log a exactly, and "
         "log y − log a is log(y/a), exact but for a's own rounding",
         _node(sp.Add), _lgamma_log_quotient),
    Rule("digamma_stirling", "ψ(c·e^u) + r → (u + log c) − e^−u/(2c) + ε(c·e^u) + r",
         "a·(ψ(a) − log(rate)) cancels for a = rate = 1e30; with log a = u exact the logs cancel symbolically",
         _node(sp.Add), _digamma_stirling),
    Rule("expand_log", "log(a·b) → log a + log b  (a, b > 0)",
         "a·b can overflow or underflow although log a + log b is finite", _node(sp.log), _expand_log),
    Rule("power_as_exp", "x^p → exp(p·log x)  (x > 0, p symbolic)",
         "exposes the exponential inside x^p to the softplus, sigmoid and log1mexp rules",
         lambda e: isinstance(e, sp.Pow) and not e.exp.is_number, _power_as_exp),
    Rule("sigmoid", "1/(1 + exp(−x)) → sigmoid(x);  1/(1 + exp(x)) → sigmoid(−x)",
         "1 + exp(x) overflows to ∞ and the ratio with exp(x) becomes ∞/∞ = NaN", _node(sp.Pow), _sigmoid_pow),
    Rule("sigmoid_absorb", "exp(x)·sigmoid(−x) → sigmoid(x)  (exp(x)/(1 + exp(x)) → sigmoid(x))",
         "exp(x)·sigmoid(−x) is ∞·0 = NaN for large x", _node(sp.Mul), _sigmoid_absorb),
    Rule("sigmoid_complement", "1 − sigmoid(x) → sigmoid(−x)",
         "1 − sigmoid(x) loses every digit once sigmoid(x) rounds to 1", _node(sp.Add), _sigmoid_complement),
    Rule("log_sigmoid", "log sigmoid(x) → −softplus(−x)",
         "sigmoid(x) underflows to 0 for x < −745 and its log becomes −∞", _node(sp.log), _log_sigmoid),
    Rule("softplus", "log(1 + exp(x)) → softplus(x)",
         "exp(x) overflows for x > 709 (88 in float32)", _node(sp.log), _softplus),
    Rule("logaddexp", "log(exp(a) + exp(b) + …) → logaddexp(a, logaddexp(b, …))",
         "each exp overflows or underflows on its own; their log-sum does not", _node(sp.log), _logaddexp),
    Rule("logsumexp", "log Σ_k exp(x_k) → logsumexp(x);  1/Σ_k exp(x_k) → exp(−M)/(1 + R),  M = max x, "
         "R = Σ_k exp(x_k − M) − 1",
         "the sum overflows for one large logit; softmax ratios become ∞/∞", _node(sp.log, sp.Pow), _logsumexp),
    Rule("softmax_cross_entropy", "L·Σ_k y_k − Σ_k z_k·y_k → log1p(R)·Σ_k y_k − Σ_k y_k·(z_k − M),  "
         "L = logsumexp(z) = M + log1p(R)",
         "L·Σy − Σz·y cancels (to 0 at logits [−40, −40, 0]; 779 ulps at logits −1e4); M − z_k ≥ 0 and "
         "log1p(R) ≥ 0, R summed without the largest term's 1, do not",
         _node(sp.Add), _softmax_cross_entropy),
    Rule("softmax_gradient", "u·e_j/(1 + R) + r → (u·e_j + r + r·R)/(1 + R),  e_j = exp(z_j − M)",
         "Σy·softmax(z)_j − y_j cancels where softmax(z)_j ≈ 1 (0 for −1.8e-35 at logits [40, −40, −1e4]); "
         "over the common denominator the largest class's e_j is exactly 1 and r·R keeps R's digits",
         _node(sp.Add), _softmax_gradient),
    Rule("mul_exp", "u·exp(z_j − M) → mul_exp(u, z_j − M, exp(z_j − M))  (a softmax term times a weight u ≠ ±1)",
         "exp(z_j − M) is a subnormal of a few bits below z_j − M = −708 where u·exp(z_j − M) is not (Σy = 1e6 "
         "counts times e^−740: 18 of its 26 bits lost)", _node(sp.Mul), _mul_exp),
    Rule("log_beta_sum", "Σ_k lgamma(e^f_k) − lgamma(Σ_k e^f_k) → Σ_k [e_k < 1]·lgamma(e^f_k) + (n − 1)·lgamma(A) − "
         "lgamma_difference(A, A·R),  A = e^max f, e_k = exp(f_k − max f), R = Σ_k e_k − 1, n = #{e_k = 1}",
         "the largest lgamma cancels against the lgamma of the sum (6.8e31 each at a concentration of 1e30): the "
         "Dirichlet's log Beta loses every digit of a loss of 2.2e14", _node(sp.Add), _log_beta_sum),
    Rule("digamma_of_sum", "ψ(e^f_j) − ψ(Σ_k e^f_k) → −digamma_difference(A, A·R) if e_j = 1 else "
         "ψ(e^f_j) − ψ(A(1 + R))",
         "ψ(1e30) − ψ(1e30 + 2e-30) is 0 beside −log y₀ = 2.2e-16: the Dirichlet's largest concentration's gradient",
         _node(sp.Add), _digamma_of_sum),
    Rule("log1mexp", "log(1 − exp(−x)) → log1mexp(x)",
         "1 − exp(−x) cancels for small x and rounds to 1 for large x", _node(sp.log, log1p), _log1mexp),
    Rule("log_ndtr", "log erfc(x) → log 2 + log_ndtr(−√2·x);  log(1 − erfc(x)/2) → log_ndtr(√2·x)",
         "erfc underflows for x > 26.5 (and 1 − erfc(x)/2 for x < −26.5): their log becomes −∞",
         _node(sp.log, log1p), _log_ndtr),
    Rule("log_cosh", "log cosh x → |x| + softplus(−2|x|) − log 2",
         "cosh overflows for |x| > 710 (89 in float32)", _node(sp.log), _log_cosh),
    Rule("tanh", "sinh(x)/cosh(x) → tanh(x)", "sinh/cosh is ∞/∞ = NaN for |x| > 710", _node(sp.Mul), _tanh),
    Rule("softplus_difference", "softplus(x) − softplus(−x) → x",
         "the difference of two large numbers loses digits (and is ∞ − ∞ without the softplus rule)",
         _node(sp.Add), _softplus_difference),
    Rule("softplus_pair", "a·softplus(u) + b·softplus(−u) → c·softplus(−|u|) + u·(c·step(u) − b)  "
         "(c = a + b, a = c − b)",
         "each softplus is a pass of exp and log1p over the arrays; softplus(±u) = max(±u, 0) + softplus(−|u|) "
         "needs one, and its two parts are ≥ 0 (no cancellation at u = ±1e4 or for soft labels)",
         _node(sp.Add), _softplus_pair),
    Rule("sigmoid_pair", "a·sigmoid(u) − b·sigmoid(−u) → (c·step(u) − b) − c·sgn(u)·sigmoid(−|u|)  (c = a + b, "
         "a = c − b)", "two sigmoids for one gradient; with one, of −|u|, the label's part c·step(u) − b is exact "
         "and the e^−|u| of a confident logit survives (σ(u) − y rounds it away for y = 1)",
         _node(sp.Add), _sigmoid_pair),
    Rule("sigmoid_to_tanh", "2·sigmoid(x) − 1 → tanh(x/2);  2a·sigmoid(x) − a → a·tanh(x/2)",
         "2·sigmoid(x) − 1 cancels near x = 0, where tanh(x/2) keeps every digit", _node(sp.Add), _sigmoid_to_tanh),
    Rule("log_tanhc", "log|tanh(u)| − log|x| → log_tanhc(u) + log|u/x|  (u/x a number)",
         "each log is −∞ at x = 0 (the continuous Bernoulli at probs = ½); their difference is finite",
         _node(sp.Add), _log_tanhc),
    Rule("log1p", "log(1 + x) → log1p(x)", "1 + x rounds to 1 for |x| < 1e-16", _node(sp.log), _log1p),
    Rule("expm1", "exp(x) − 1 → expm1(x)", "exp(x) − 1 cancels for small x", _node(sp.Add), _expm1),
    Rule("log_mixture", "logaddexp(−softplus(−g), c − softplus(g)) → log1p(sigmoid(−g)·expm1(c)) where that "
         "argument > −½, else the logaddexp  (log(π + (1 − π)·e^c), π = sigmoid(g): a point mass mixed in)",
         "π + (1 − π)·e^c is near 1 when c → 0 (a zero-inflated Poisson's zero at a tiny rate: c = −λ); logaddexp "
         "rounds the log of it to 0 (−log p(0) ≈ (1 − π)λ = 5e-31 came out 0), log1p of the small difference does "
         "not", _node(LogAddExp), _log_mixture),
    Rule("expm1_sigmoid", "expm1(u)·sigmoid(v) → −expm1(−u)·exp(u + v)·sigmoid(−v)  (u > 0, u + v simplifies)",
         "expm1(u) overflows for u > 709 while sigmoid(v) underflows (∞·0 = NaN); exp(u + v) is the finite product "
         "(and sigmoid_absorb takes it further)", _node(sp.Mul), _expm1_sigmoid),
    Rule("exp_difference", "exp(u) − exp(v) → −exp(u)·expm1(v − u) if v < u, else exp(v)·expm1(u − v)  "
         "(v − u simpler than u, v)", "the two exponentials cancel when v ≈ u (k − k·(y/λ)^k of a Weibull at y ≈ λ, "
         "or (y/λ)^k ≪ 1 rounding away); the difference v − u, computed on its own, does not",
         _node(sp.Add), _exp_difference),
    Rule("exp_minus_coefficient", "c·exp(w) − c → c·expm1(w)  (the −c spread over several terms)",
         "c·exp(w) and −c cancel for small w (z·e^z − z of a Weibull's ∂ℓ/∂log k, its −z as k·log λ − k·log y)",
         _node(sp.Add), _exp_minus_coefficient),
    Rule("x_over_expm1", "c·x/expm1(x) − c → c·(x/expm1(x) − 1)  (the −c spread over several terms; c may be "
         "a term of a coefficient 1 − eʷ = −expm1(w))",
         "x/expm1(x) is 1 − x/2 + … and the −c takes its 1 away: nothing is left of −x/2 for tiny x (a "
         "Kumaraswamy's ∂ℓ/∂log a = z − 1 + (1 − b)·z/expm1(z), z = −a·log y, at a = b = 1e-30 is 3.4e-28, "
         "computed as 0 or 1e-16)", _node(sp.Add), _x_over_expm1),
    Rule("sigmoid_product_difference", "σ(a)σ(b) − σ(−a)σ(−b) → expm1(a + b)·σ(−a)σ(−b)  (a + b ≤ 0; mirrored "
         "for a + b ≥ 0)", "the two products are equal when a + b → 0 and their difference loses every digit "
         "(a zero-inflated gate's gradient at a tiny rate)", _node(sp.Add), _sigmoid_product_difference),
    Rule("log_ratio", "C·log(y) + c·s → (−c)·log_ratio(y, s) + (C + c)·log(y)  (y the data, s a real input, −c "
         "C or a term of it);  x·log_ratio(y, s) → xmuly(x, log_ratio(y, s)) where x may be 0 (by the xlogy rule)",
         "log y − s cancels where y ≈ e^s (a Weibull's y ≈ λ, log λ = s the input): fl(log y) has lost the "
         "difference already (0 instead of 7e-15 at y = 1e-30, and (y/λ)^k at k = 1e30 is then 1, not 0), and "
         "k·log y − k·s of large k loses the rest", _node(sp.Add), _log_ratio),
    # (x·log_ratio(y, s) → xmuly(x, log_ratio(y, s)) is this rule's too: the log_ratio rule's pattern says so, and
    # this one keeps its text, which every module that uses it quotes)
    Rule("xlogy", "x·log(y) → xlogy(x, y);  x·log1p(y) → xlog1py(x, y)  (x may be 0, the target involved)",
         "0·log 0 is NaN, its limit (and the value on the edge of the support) is 0", _node(sp.Mul), _xlogy),
    Rule("factor_denominator", "1/(p² − p) → 1/(p·(p − 1))",
         "p² − p cancels catastrophically near p = 1; the product of its factors does not",
         _node(sp.Pow), _factor_denominator),
    Rule("exp_of_sum", "exp(a)·exp(b) → exp(a + b)",
         "exp(a) can overflow while exp(b) underflows: ∞·0 = NaN although exp(a + b) is finite",
         _node(sp.Mul), _exp_of_sum),
    Rule("exp_shift_product", "(exp(a) − y)·exp(c) → (1 − y·exp(−a))·exp(a + c)  (y > 0; c falls with a)",
         "exp(a) − y cancels to 0 (or a subnormal) where exp(c) overflows: 0·∞ = NaN although the product is "
         "finite (the inverse Gaussian's ∂ℓ/∂log_mean at μ = y = 1e-300)", _node(sp.Mul), _exp_shift_product),
    Rule("standardised_square", "u²·exp(2v) → (u·exp(v))²",
         "u = 0 with exp(2v) = ∞ gives 0·∞ = NaN; the standardised residual u·exp(v) stays finite",
         _node(sp.Mul), _standardised_square),
    Rule("square_ratio", "(c·u² + r)/v² → c·(u/v)² + r/v²  (v > 0)",
         "v² underflows to 0 (v < 1e-154 in float64) and u²/v² becomes ∞ or NaN although (u/v)² is finite",
         _node(sp.Mul), _square_ratio),
    Rule("log1p_square", "log1p(p·(u·exp(w))²) → log1p_square(u, w + log(p)/2)  (p > 0)",
         "x² overflows for |x| > 1e154 (the Cauchy and Student-t residual); 2·log|x| + log1p(x⁻²) does not, "
         "and its derivatives 2x/(1 + x²), 2x²/(1 + x²) are not ∞/∞",
         _node(log1p), _log1p_square),
    Rule("square_fraction", "z/(z² + q) → log1p_square_du(z, −log(q)/2);  z²/(z² + q) → log1p_square_dv(…)  (q > 0)",
         "z² overflows for |z| > 1e154: z/(z² + q) becomes 0 and z²/(z² + q) ∞/∞ = NaN (the Student-t's ∂ℓ/∂loc)",
         _node(sp.Mul), _square_fraction),
    Rule("log1p_square_du_scaled", "k·log1p_square_du(u, v) → log1p_square_du_scaled(u, v, k)  (k > 0, not a number)",
         "u·e^(2v) underflows before k multiplies it back: the Student-t's ∂ℓ/∂loc = (ν + 1)·log1p_square_du(z, v) "
         "at ν = 1e30, z = 1e-300 is 7.4e-300, and x·e^v = 7.7e-330 was 0; (u·(k·e^v))·e^v is not",
         _node(sp.Mul), _log1p_square_du_scaled),
    Rule("square_complement", "k − (k + r)·log1p_square_dv(u, v) → k·log1p_square_dvc(u, v) − r·log1p_square_dv(u, v)",
         "1 − x²/(1 + x²) cancels: to 0 for |x| > 1e8, where 1/(1 + x²) is still ≈ x⁻² (the Student-t's "
         "∂ℓ/∂log_scale, 1 − (ν + 1)·x²/(1 + x²) → −ν for tiny ν and huge x)", _node(sp.Add), _square_complement),
    Rule("log1p_square_rem", "a·log1p_square(u, v) + b·log1p_square_dv(u, v) → a·log1p_square_rem(u, v) + "
         "(a + b)·log1p_square_dv(u, v)  (−a is b or a term of it)",
         "log(1 + x²) − x²/(1 + x²) ≈ x⁴/2 cancels for small x (the Student-t's ∂ℓ/∂ν at ν = 1e30: two 1e-30 "
         "terms whose difference is 5e-61); log1p_square_rem sums its positive series instead",
         _node(sp.Add), _log1p_square_rem),
    Rule("square_absorb", "Square(z)·p → Square(z·√p)  (p > 0: exp(w) or a positive power)",
         "z² overflows although z²·p is finite (the β-NLL's r²·σ, the inverse Gaussian's (y − μ)²/(μ²y))",
         _node(sp.Mul), _square_absorb),
    Rule("difference_of_squares", "Square(a) − Square(b) → (a − b)·(a + b)",
         "both squares overflow and their difference is ∞ − ∞ = NaN although it is finite (a mixture of two "
         "Normals far from the target)", _node(sp.Add), _difference_of_squares),
    Rule("residual_difference", "e^p·(y + a) − e^q·(y + b) → (y + a)·(e^p − e^q) + (a − b)·e^q if q < p, else "
         "(y + b)·(e^p − e^q) + (a − b)·e^p;  e^p − e^q by expm1  (y the data)",
         "the residuals round separately and their difference cancels far from both locations (0 instead of "
         "(μ₂ − μ₁)·e^−s at y = 1e150: the mixture's responsibility flips from 1 to 0)", _node(sp.Add),
         _residual_difference),
    Rule("xmuly", "w·a → xmuly(w, a)  (w a sigmoid or a 0/1 indicator, a with a square)",
         "w is exactly 0 (an underflowed sigmoid, the other branch of a censoring indicator) where the square "
         "overflows: 0·∞ = NaN, the product is 0", _node(sp.Mul), _xmuly),
    Rule("xmuly_square", "xmuly(w, z²·r) → xmuly(xmuly(w, z), z)·r  (w a sigmoid)",
         "z² overflows for |z| > 1.3e154 where w·z² is finite (a mixture component's responsibility e^−700 "
         "times its residual 1e158 squared): w·z first cannot overflow", _node(XMulY), _xmuly_square),
    Rule("abs_linear", "α·|t| + β·t → (β + α)·t if t > 0 else (β − α)·t  (α ≠ 0 of known sign)",
         "α·|t| + β·t cancels when β ≈ −α (a pinball loss at quantile 1e-8); each branch's product does not",
         _node(sp.Add), _abs_linear),
    Rule("sign_linear", "r + α·sign(t) → r + α if t > 0, r − α if t < 0, r at t = 0  (a branch simplifies)",
         "r ± α cancels when r ≈ ∓α (½ − q − ½ at quantile 1e-8 is −1.000000005e-8); each branch simplified "
         "symbolically does not", _node(sp.Add), _sign_linear),
    Rule("piecewise_guard", "Piecewise((f(x), x > a), …) → Piecewise((f(guard(x, x > a, a + 1)), x > a), …)",
         "where() evaluates every branch; a branch off its condition must not produce NaN values or gradients",
         _node(sp.Piecewise), _piecewise_guard),
    Rule("expm1_offset", "a·expm1(w) + r → a·expm1(w) + r where |w| < log 2, else a·exp(w) + (r − a)  (w = c + "
         "p·log_ratio(y, s): exp(w) = e^c·(y·e^−s)^p, a power of the data over a scale)",
         "−c − expm1(w) cancels where c = 1 and w ≪ 0 (a censored Weibull's ∂ℓ/∂log λ = k·(1 − c − (y/λ)^k): −1 − "
         "expm1(−36.8) is 0 or −1.1e-16, not −1e-16), where (1 − c) − eʷ is exact; and expm1 of a large w has the "
         "rounding of w in it, which the printers' pow for exp(w) avoids",
         _node(sp.Add), _expm1_offset),
)

RULES_BY_NAME: dict[str, Rule] = {r.name: r for r in RULES}


def stabilize(
    expr: sp.Expr,
    *,
    data: Iterable[sp.Basic] = (),
    rules: Collection[Rule] | None = None,
    max_passes: int = 12,
    fired: set[str] | None = None,
) -> sp.Expr:
    """``expr`` rewritten by the stabilising rules until nothing changes.

    ``data`` are the symbols of observed data (the target): ``x·log(y)`` is
    rewritten to ``xlogy`` only where it touches them.  ``fired`` (a set) collects
    the names of the rules that changed something.
    """
    ctx = Context(data=frozenset(data), fired=fired if fired is not None else set())
    table = RULES if rules is None else tuple(rules)
    for _ in range(max_passes):
        before = expr
        for rule in table:
            expr = rule.apply(expr, ctx)
        if expr == before:
            break
    return expr


def fired_rules(expr: sp.Expr, *, data: Iterable[sp.Basic] = ()) -> list[str]:
    """The names of the rules that change ``expr``, in table order."""
    fired: set[str] = set()
    stabilize(expr, data=data, fired=fired)
    return [r.name for r in RULES if r.name in fired]
