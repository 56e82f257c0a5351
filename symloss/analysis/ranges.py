"""Sound interval arithmetic over SymPy expressions: the sign and range of every sub-expression.

A :class:`Range` is an interval of the extended reals with open/closed ends.
Finite ends are exact :class:`fractions.Fraction` values; a transcendental
function's image is rounded *outwards* (one ulp beyond the float result), so a
range always contains every value the expression takes.  That is what lets the
analysis call a sign "proved": ``range_of(e).positive`` is a proof that ``e > 0``
for every admissible value of its symbols.

Ranges lose precision (``x - x`` is ``[-oo, oo]`` when ``x`` is unbounded) but
never correctness.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction

import sympy as sp

from ..domains import Domain

__all__ = ["Range", "REALS", "range_of", "domain_range", "RangeEnv"]

INF = math.inf
Num = Fraction | float  # a Fraction, or ±inf as a float


def _num(v: float | int | Fraction) -> Num:
    if isinstance(v, Fraction):
        return v
    if isinstance(v, float) and math.isinf(v):
        return v
    return Fraction(v)


def _tidy(v: Num, up: bool) -> Num:
    """Keep Fractions small: a huge denominator is rounded outwards to a float (then made exact again)."""
    if not isinstance(v, Fraction) or v.denominator < 2**120:
        return v
    f = float(v)
    if Fraction(f) != v:
        f = math.nextafter(f, INF if up else -INF)
    return Fraction(f) if math.isfinite(f) else f


def _outward(f: float, up: bool) -> Num:
    """A float result of an inexact function, pushed one ulp outwards."""
    if math.isnan(f):
        return INF if up else -INF
    if math.isinf(f):
        return f
    return Fraction(math.nextafter(f, INF if up else -INF))


@dataclass(frozen=True)
class Range:
    """``lo .. hi`` with open/closed ends; infinite ends are always open."""

    lo: Num = -INF
    hi: Num = INF
    lo_open: bool = True
    hi_open: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.lo, float) and math.isinf(self.lo):
            object.__setattr__(self, "lo_open", True)
        if isinstance(self.hi, float) and math.isinf(self.hi):
            object.__setattr__(self, "hi_open", True)

    # -- constructors --------------------------------------------------------------------------------
    @staticmethod
    def point(v: Num) -> Range:
        return Range(v, v, False, False)

    @staticmethod
    def of_number(x: sp.Expr) -> Range:
        """A SymPy number: exact when rational, else its float value widened by one ulp each way."""
        if x.is_Rational:
            return Range.point(Fraction(int(x.p), int(x.q)))
        if x is sp.oo:
            return Range(INF, INF, True, True)
        if x is sp.S.NegativeInfinity:
            return Range(-INF, -INF, True, True)
        try:
            f = float(x)
        except (TypeError, ValueError):
            return REALS
        if math.isnan(f):
            return REALS
        return Range(_outward(f, False), _outward(f, True), False, False)

    # -- predicates ----------------------------------------------------------------------------------
    @property
    def positive(self) -> bool:
        return self.lo > 0 or (self.lo == 0 and self.lo_open)

    @property
    def negative(self) -> bool:
        return self.hi < 0 or (self.hi == 0 and self.hi_open)

    @property
    def nonnegative(self) -> bool:
        return self.lo >= 0

    @property
    def nonpositive(self) -> bool:
        return self.hi <= 0

    @property
    def nonzero(self) -> bool:
        return self.positive or self.negative

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)

    @property
    def is_zero(self) -> bool:
        return self.lo == 0 and self.hi == 0

    @property
    def empty(self) -> bool:
        return self.lo > self.hi or (self.lo == self.hi and (self.lo_open or self.hi_open))

    def within(self, other: Range) -> bool:
        """Whether every point of self lies in other."""
        lo_ok = self.lo > other.lo or (self.lo == other.lo and (not other.lo_open or self.lo_open))
        hi_ok = self.hi < other.hi or (self.hi == other.hi and (not other.hi_open or self.hi_open))
        return lo_ok and hi_ok

    def contains(self, v: float) -> bool:
        if v < self.lo or v > self.hi:
            return False
        if v == self.lo and self.lo_open:
            return False
        return not (v == self.hi and self.hi_open)

    def __str__(self) -> str:
        def fmt(v: Num) -> str:
            if isinstance(v, float):
                return "oo" if v > 0 else "-oo"
            return str(v) if v.denominator < 10**6 else f"{float(v):.6g}"

        return f"{'(' if self.lo_open else '['}{fmt(self.lo)}, {fmt(self.hi)}{')' if self.hi_open else ']'}"

    # -- arithmetic ----------------------------------------------------------------------------------
    def __neg__(self) -> Range:
        return Range(-self.hi, -self.lo, self.hi_open, self.lo_open)

    def __add__(self, other: Range) -> Range:
        lo = self.lo + other.lo
        hi = self.hi + other.hi
        if isinstance(lo, float) and math.isnan(lo):
            lo = -INF
        if isinstance(hi, float) and math.isnan(hi):
            hi = INF
        return Range(_tidy(lo, False), _tidy(hi, True), self.lo_open or other.lo_open, self.hi_open or other.hi_open)

    def __mul__(self, other: Range) -> Range:
        if self.empty or other.empty:
            return self
        cands = []
        for a, ao in ((self.lo, self.lo_open), (self.hi, self.hi_open)):
            for b, bo in ((other.lo, other.lo_open), (other.hi, other.hi_open)):
                if a == 0 or b == 0:
                    v: Num = Fraction(0)
                    attained = (a == 0 and not ao) or (b == 0 and not bo)
                else:
                    v = a * b
                    attained = not ao and not bo
                cands.append((v, attained))
        lo = min(v for v, _ in cands)
        hi = max(v for v, _ in cands)
        lo_open = not any(att for v, att in cands if v == lo)
        hi_open = not any(att for v, att in cands if v == hi)
        return Range(_tidy(lo, False), _tidy(hi, True), lo_open, hi_open)

    def inverse(self) -> Range:
        """1/x; the whole line when x may be 0."""
        if not self.nonzero:
            if self.nonnegative:  # [0, b]: 1/x in (1/b, oo) where x > 0, undefined at 0
                return Range(_recip(self.hi, False), INF, self.hi_open or self.hi == INF, True)
            if self.nonpositive:
                return Range(-INF, _recip(self.lo, True), True, self.lo_open or self.lo == -INF)
            return REALS
        return Range(_recip(self.hi, False), _recip(self.lo, True),
                     self.hi_open or math.isinf(self.hi), self.lo_open or math.isinf(self.lo))

    def hull(self, other: Range) -> Range:
        if self.empty:
            return other
        if other.empty:
            return self
        if self.lo < other.lo or (self.lo == other.lo and not self.lo_open):
            lo, lo_open = self.lo, self.lo_open
        else:
            lo, lo_open = other.lo, other.lo_open
        if self.hi > other.hi or (self.hi == other.hi and not self.hi_open):
            hi, hi_open = self.hi, self.hi_open
        else:
            hi, hi_open = other.hi, other.hi_open
        return Range(lo, hi, lo_open, hi_open)

    def intersect(self, other: Range) -> Range:
        if self.lo > other.lo or (self.lo == other.lo and self.lo_open):
            lo, lo_open = self.lo, self.lo_open
        else:
            lo, lo_open = other.lo, other.lo_open
        if self.hi < other.hi or (self.hi == other.hi and self.hi_open):
            hi, hi_open = self.hi, self.hi_open
        else:
            hi, hi_open = other.hi, other.hi_open
        return Range(lo, hi, lo_open, hi_open)

    def pow_int(self, n: int) -> Range:
        if n == 0:
            return Range.point(Fraction(1))
        if n < 0:
            return self.pow_int(-n).inverse()
        if n % 2 == 1 or self.nonnegative:
            return monotone_map(self, lambda v: v**n, increasing=True, exact=True)
        if self.nonpositive:
            return monotone_map(self, lambda v: v**n, increasing=False, exact=True)
        # contains 0 inside: [0, max(|lo|, |hi|)^n]
        top = max(-self.lo, self.hi)
        top_open = (self.hi_open if self.hi >= -self.lo else True) and (self.lo_open if -self.lo >= self.hi else True)
        return Range(Fraction(0), _pow_exact(top, n), False, top_open)

    def abs(self) -> Range:
        if self.nonnegative:
            return self
        if self.nonpositive:
            return -self
        top = self.hi.__abs__() if self.hi >= -self.lo else -self.lo
        top_open = (self.hi_open if self.hi >= -self.lo else True) and (self.lo_open if -self.lo >= self.hi else True)
        return Range(Fraction(0), top, False, top_open)

    def max(self, other: Range) -> Range:
        lo = self if self.lo > other.lo or (self.lo == other.lo and not self.lo_open) else other
        hi = self if self.hi > other.hi or (self.hi == other.hi and not self.hi_open) else other
        return Range(lo.lo, hi.hi, lo.lo_open, hi.hi_open)

    def min(self, other: Range) -> Range:
        return -((-self).max(-other))


REALS = Range()
POSITIVE = Range(Fraction(0), INF, True, True)
NONNEG = Range(Fraction(0), INF, False, True)
EMPTY = Range(Fraction(1), Fraction(0), True, True)


def _pow_exact(v: Num, n: int) -> Num:
    if isinstance(v, float):
        return v if n > 0 else Fraction(0)
    return _tidy(v**n, True)


def _recip(v: Num, up: bool) -> Num:
    if isinstance(v, float):  # ±inf
        return Fraction(0)
    if v == 0:
        return INF if up else -INF
    return 1 / v


def monotone_map(r: Range, fn: Callable[[Num], Num | float], *, increasing: bool, exact: bool = False) -> Range:
    """The image of ``r`` under a monotone function ``fn`` (applied to the ends, rounded outwards)."""
    if r.empty:
        return r

    def at(v: Num, up: bool) -> tuple[Num, bool]:
        try:
            out = fn(v)
        except (OverflowError, ZeroDivisionError):
            return (INF if up else -INF), True
        if exact and isinstance(out, Fraction):
            return _tidy(out, up), False
        if isinstance(out, Fraction):
            return out, False
        return _outward(float(out), up), False

    if increasing:
        lo, lo_inexact = at(r.lo, False)
        hi, hi_inexact = at(r.hi, True)
        return Range(lo, hi, r.lo_open, r.hi_open)
    lo, _ = at(r.hi, False)
    hi, _ = at(r.lo, True)
    return Range(lo, hi, r.hi_open, r.lo_open)


def _fexp(v: Num) -> Num:
    if isinstance(v, float):
        return INF if v > 0 else Fraction(0)
    if v == 0:
        return Fraction(1)
    if v > 709:
        return INF
    return math.exp(v)  # type: ignore[return-value]


def _flog(v: Num) -> Num:
    if isinstance(v, float):
        return INF
    if v <= 0:
        return -INF
    if v == 1:
        return Fraction(0)
    return math.log(v)  # type: ignore[return-value]


def r_exp(r: Range) -> Range:
    return monotone_map(r, _fexp, increasing=True)


def r_log(r: Range) -> Range:
    if r.lo < 0:
        return REALS  # outside log's real domain somewhere: no claim
    return monotone_map(r, _flog, increasing=True)


# ---------------------------------------------------------------------------------------------------
class RangeEnv:
    """Ranges of the symbols (and of the elements of indexed bases), with a cache over sub-expressions."""

    def __init__(self, symbols: Mapping[sp.Basic, Range]):
        self.symbols = dict(symbols)
        self._cache: dict[sp.Basic, Range] = {}

    def with_symbols(self, extra: Mapping[sp.Basic, Range]) -> RangeEnv:
        return RangeEnv({**self.symbols, **extra})

    def __call__(self, expr: sp.Basic) -> Range:
        return range_of(expr, self)


def domain_range(dom: Domain) -> Range:
    lo = -INF if dom.lower is None else Fraction(dom.lower).limit_denominator(10**12)
    hi = INF if dom.upper is None else Fraction(dom.upper).limit_denominator(10**12)
    if dom.name == "angle":  # [-pi, pi): widen the float bounds outwards to keep the range sound
        lo, hi = Fraction(math.nextafter(-math.pi, -INF)), Fraction(math.nextafter(math.pi, INF))
    return Range(lo, hi, dom.lower_open, dom.upper_open)


# the ranges of a few special functions on their whole (real) domain, declared as data
_SPECIAL_RANGES: dict[type, Range] = {
    sp.sin: Range(Fraction(-1), Fraction(1), False, False),
    sp.cos: Range(Fraction(-1), Fraction(1), False, False),
    sp.tanh: Range(Fraction(-1), Fraction(1), True, True),
    sp.atan: Range(_outward(-math.pi / 2, False), _outward(math.pi / 2, True), True, True),
    sp.erf: Range(Fraction(-1), Fraction(1), True, True),
    sp.erfc: Range(Fraction(0), Fraction(2), True, True),
    sp.Heaviside: Range(Fraction(0), Fraction(1), False, False),
    sp.sign: Range(Fraction(-1), Fraction(1), False, False),
    sp.DiracDelta: NONNEG,
}

_LOGGAMMA_MIN = Fraction(math.nextafter(-0.12148629053584961, -INF))  # loggamma's minimum on x > 0 (x = 1.4616...)


def _range_fn(expr: sp.Function, env: RangeEnv) -> Range:
    args = [range_of(a, env) for a in expr.args]
    f = type(expr)
    if f is sp.exp:
        return r_exp(args[0])
    if f is sp.log:
        return r_log(args[0])
    if f is sp.Abs:
        return args[0].abs()
    if f is sp.Max:
        out = args[0]
        for a in args[1:]:
            out = out.max(a)
        return out
    if f is sp.Min:
        out = args[0]
        for a in args[1:]:
            out = out.min(a)
        return out
    if f is sp.cosh:
        a = args[0].abs()
        return monotone_map(a, lambda v: INF if isinstance(v, float) else math.cosh(min(v, 710)), increasing=True)
    if f is sp.sinh:
        return monotone_map(args[0], lambda v: v if isinstance(v, float) else math.sinh(max(min(v, 710), -710)),
                            increasing=True)
    if f is sp.tanh:
        return monotone_map(args[0], lambda v: (1.0 if v > 0 else -1.0) if isinstance(v, float) else math.tanh(v),
                            increasing=True).intersect(_SPECIAL_RANGES[sp.tanh])
    if f is sp.atan:
        return monotone_map(args[0], lambda v: math.copysign(math.pi / 2, v) if isinstance(v, float) else math.atan(v),
                            increasing=True)
    if f is sp.erf:
        return monotone_map(args[0], lambda v: math.copysign(1.0, v) if isinstance(v, float) else math.erf(v),
                            increasing=True).intersect(_SPECIAL_RANGES[sp.erf])
    if f is sp.erfc:
        return monotone_map(args[0], lambda v: (0.0 if v > 0 else 2.0) if isinstance(v, float) else math.erfc(v),
                            increasing=False).intersect(_SPECIAL_RANGES[sp.erfc])
    if f is sp.loggamma:
        a = args[0]
        if a.positive:
            if a.lo >= 2:  # increasing there
                return monotone_map(a, lambda v: INF if isinstance(v, float) else math.lgamma(v), increasing=True)
            if a.hi <= 1:  # decreasing on (0, 1]
                return monotone_map(a, lambda v: INF if v == 0 else math.lgamma(v), increasing=False)
            return Range(_LOGGAMMA_MIN, INF, False, True)
        return REALS
    if f is sp.besseli and expr.args[0] != 0 and expr.args[0].is_integer and args[1].positive:
        return POSITIVE  # I_n(x) = I_{-n}(x) > 0 for x > 0 and integer n
    if f is sp.besseli and expr.args[0] == 0:
        # I_0(x) >= 1 for real x, even and increasing in |x|
        a = args[1].abs()
        return monotone_map(a, lambda v: INF if isinstance(v, float) else _besseli0(v), increasing=True)
    if f is sp.atanh:
        a = args[0]
        inner = Range(Fraction(-1), Fraction(1), True, True)
        if a.within(inner):
            return monotone_map(a, lambda v: math.copysign(INF, v) if abs(v) >= 1 else math.atanh(v), increasing=True)
        return REALS
    if f is sp.sqrt:  # sqrt is a Pow in SymPy; kept for safety
        return _pow_range(args[0], Range.point(Fraction(1, 2)), sp.Rational(1, 2))
    if f in _SPECIAL_RANGES:
        return _SPECIAL_RANGES[f]
    if f is sp.polygamma and expr.args[0].is_Integer and expr.args[0] >= 1 and args[1].positive:
        # polygamma(n, x) on x > 0: (-1)^(n+1) * positive
        return POSITIVE if int(expr.args[0]) % 2 == 1 else -POSITIVE
    return REALS


def _besseli0(v: Num) -> float:
    try:
        import mpmath

        return float(mpmath.besseli(0, float(v)))
    except OverflowError:
        return INF


def _pow_range(base: Range, exp_r: Range, exp: sp.Expr) -> Range:
    if exp.is_Integer:
        return base.pow_int(int(exp))
    if exp.is_Rational and exp.q % 2 == 1 and exp.p % 2 == 0:
        # an even root of a square: (x^p)^(1/q) with p even is >= 0 for every real x
        inner = base.pow_int(int(exp.p))
        return _pow_positive(inner, Range.point(Fraction(1, int(exp.q))))
    if base.nonnegative:
        return _pow_positive(base, exp_r)
    return REALS


def _pow_positive(base: Range, exp_r: Range) -> Range:
    """base^e for base >= 0: exp(e·log(base)), with exact handling of base 0 and e = 0."""
    if exp_r.is_zero:
        return Range.point(Fraction(1))
    if exp_r.positive and base.lo == 0 and not base.lo_open:
        # 0^e = 0 for e > 0
        body = r_exp(exp_r * r_log(Range(base.lo, base.hi, True, base.hi_open)))
        return body.hull(Range.point(Fraction(0)))
    if base.positive:
        return r_exp(exp_r * r_log(base))
    return REALS if not exp_r.positive else NONNEG


def range_of(expr: sp.Basic, env: RangeEnv) -> Range:
    """A range that provably contains every value of ``expr`` when its symbols range over ``env``."""
    cached = env._cache.get(expr)
    if cached is not None:
        return cached
    out = _range_of(expr, env)
    env._cache[expr] = out
    return out


def _range_of(expr: sp.Basic, env: RangeEnv) -> Range:
    if expr.is_Number or expr in (sp.pi, sp.E, sp.EulerGamma, sp.oo, sp.S.NegativeInfinity):
        if expr is sp.nan or expr is sp.zoo:
            return REALS
        return Range.of_number(expr)  # type: ignore[arg-type]
    if isinstance(expr, (sp.Symbol, sp.Indexed)):
        r = env.symbols.get(expr)
        if r is None and isinstance(expr, sp.Indexed):
            r = env.symbols.get(expr.base)
        if r is None:
            r = _assumption_range(expr)
        return r
    if isinstance(expr, sp.Add):
        out = Range.point(Fraction(0))
        for a in expr.args:
            out = out + range_of(a, env)
        return out
    if isinstance(expr, sp.Mul):
        return _range_mul(expr, env)
    if isinstance(expr, sp.Pow):
        b, e = expr.args
        if b is sp.E:
            return r_exp(range_of(e, env))
        return _pow_range(range_of(b, env), range_of(e, env), e)
    if isinstance(expr, sp.Piecewise):
        out = EMPTY
        for piece, cond in expr.args:
            if cond is sp.false:
                continue
            out = out.hull(range_of(piece, env))
        return out
    if isinstance(expr, sp.Sum):
        return _range_sum(expr, env)
    if isinstance(expr, (sp.Function, sp.Max, sp.Min)):  # Max and Min are not Functions in SymPy
        return _range_fn(expr, env)
    return REALS


def _range_mul(expr: sp.Mul, env: RangeEnv) -> Range:
    args = list(expr.args)
    out = Range.point(Fraction(1))
    used: set[int] = set()
    # a / (a + b) with a > 0 and b >= 0 lies in (0, 1]: the sigmoid-like ratios of logistic losses
    for i, d in enumerate(args):
        if isinstance(d, sp.Pow) and d.exp == -1 and isinstance(d.base, sp.Add) and i not in used:
            for j, a in enumerate(args):
                if j == i or j in used or a not in d.base.args:
                    continue
                rest = range_of(d.base - a, env)
                if range_of(a, env).positive and rest.nonnegative:
                    out = out * Range(Fraction(0), Fraction(1), True, not rest.positive)
                    used.update((i, j))
                    break
    # a / (a + c)^2 with a > 0 and c >= c0 > 0 lies in (0, 1/(4·c0)] (AM-GM: (a + c)^2 >= 4ac): sigmoid'(x)
    for i, d in enumerate(args):
        if isinstance(d, sp.Pow) and d.exp == -2 and isinstance(d.base, sp.Add) and i not in used:
            for j, a in enumerate(args):
                if j == i or j in used or a not in d.base.args:
                    continue
                rest = range_of(d.base - a, env)
                if range_of(a, env).positive and rest.lo > 0 and isinstance(rest.lo, Fraction):
                    out = out * Range(Fraction(0), 1 / (4 * rest.lo), True, False)
                    used.update((i, j))
                    break
    for k, a in enumerate(args):
        if k not in used:
            out = out * range_of(a, env)
    return out


def _range_sum(expr: sp.Sum, env: RangeEnv) -> Range:
    # Σ over k = a..b of terms in [lo, hi]: with an unknown number (>= 1) of terms only the sign survives
    inner = env.with_symbols({lim[0]: _index_range(lim, env) for lim in expr.limits})
    term = range_of(expr.function, inner)
    if term.is_zero:
        return term
    if term.positive:
        return POSITIVE
    if term.nonnegative:
        return NONNEG
    if term.negative:
        return -POSITIVE
    if term.nonpositive:
        return -NONNEG
    return REALS


def _index_range(limit: tuple, env: RangeEnv) -> Range:
    _, a, b = limit
    lo = range_of(a, env)
    hi = range_of(b, env)
    return Range(lo.lo, hi.hi, lo.lo_open, hi.hi_open)


def _assumption_range(s: sp.Basic) -> Range:
    """A symbol with no declared domain: what its SymPy assumptions say."""
    if s.is_positive:
        return POSITIVE
    if s.is_nonnegative:
        return NONNEG
    if s.is_negative:
        return -POSITIVE
    if s.is_nonpositive:
        return -NONNEG
    return REALS
