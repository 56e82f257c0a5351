"""The atom table: every function the composition rules know, declared as data (as in CVXPY's DCP).

Each :class:`Atom` states

* ``curvature`` — "convex" | "concave" | "affine", or a rule of the argument
  ranges (a power's curvature depends on its exponent and on the sign of its
  base) returning one of those or "unknown";
* ``monotone`` — per argument "increasing" | "decreasing" | "none", or a rule
  of the argument ranges ("increasing where the argument is >= 0" for x²);
* ``domain`` — the argument ranges where the declared curvature holds (log on
  x > 0); outside them the atom proves nothing;
* ``smoothness`` — "analytic" (C^∞ inside its domain), "kink" (continuous,
  the gradient jumps: |x| at 0, max at ties) or "jump" (the value jumps:
  Heaviside, sign);
* ``match`` — how to recognise it in a SymPy expression (the atom's arguments,
  or None).  Patterns that span several SymPy nodes (softplus = log(1 + e^x),
  logsumexp, x²/y) come before the one-node atoms.

The composition engine (:mod:`symloss.analysis.dcp`) is the only code that
acts on this table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import sympy as sp

from .ranges import NONNEG, POSITIVE, Range

__all__ = ["Atom", "ATOMS", "match_atom", "NONSMOOTH_HEADS"]

Curv = str  # "convex" | "concave" | "affine" | "unknown"
RangeRule = Callable[[Sequence[Range]], str]


@dataclass(frozen=True)
class Atom:
    name: str
    formula: str
    curvature: Curv | RangeRule
    monotone: tuple[str | RangeRule, ...]  # one per argument
    domain: tuple[Range | None, ...] = ()  # per argument; None: any real
    smoothness: str = "analytic"
    match: Callable[[sp.Basic], tuple[sp.Expr, ...] | None] | None = None
    note: str = ""

    def curvature_at(self, ranges: Sequence[Range]) -> Curv:
        if not self._in_domain(ranges):
            return "unknown"
        return self.curvature(ranges) if callable(self.curvature) else self.curvature

    def monotone_at(self, i: int, ranges: Sequence[Range]) -> str:
        m = self.monotone[min(i, len(self.monotone) - 1)]
        return m(ranges) if callable(m) else m

    def _in_domain(self, ranges: Sequence[Range]) -> bool:
        for i, r in enumerate(ranges):
            dom = self.domain[i] if i < len(self.domain) else None
            if dom is not None and not r.within(dom):
                return False
        return True


# -- helpers for sign-dependent rules -------------------------------------------------------------------
def _by_sign(i: int, pos: str, neg: str) -> RangeRule:
    def rule(ranges: Sequence[Range]) -> str:
        r = ranges[i]
        if r.nonnegative:
            return pos
        if r.nonpositive:
            return neg
        return "none"

    return rule


def _power_curvature(ranges: Sequence[Range]) -> Curv:
    """x^p: the exponent range decides (p is a constant of the composition)."""
    base, p = ranges
    if p.is_zero:
        return "affine"  # x^0 = 1
    if p.lo == p.hi == 1:
        return "affine"
    if p.lo == p.hi and p.lo.denominator == 1 and int(p.lo) % 2 == 0:
        n = int(p.lo)
        if n > 0:
            return "convex"  # x^2, x^4, ... convex on the whole line
        # x^-2, x^-4: convex on each side of 0
        return "convex" if base.nonzero else "unknown"
    if p.lo == p.hi and p.lo.denominator == 1:
        n = int(p.lo)  # odd
        if n >= 3:
            return "convex" if base.nonnegative else "concave" if base.nonpositive else "unknown"
        # odd negative powers: 1/x convex for x > 0, concave for x < 0
        return "convex" if base.positive else "concave" if base.negative else "unknown"
    if not base.nonnegative:
        return "unknown"  # a non-integer power of a possibly negative base
    if p.lo >= 1:
        return "convex"
    if p.nonnegative and p.hi <= 1:
        return "concave"
    if p.nonpositive:
        return "convex" if base.positive else "unknown"
    return "unknown"


def _power_monotone(ranges: Sequence[Range]) -> str:
    base, p = ranges
    if p.is_zero:
        return "increasing"  # constant: either will do
    if p.lo == p.hi and p.lo.denominator == 1 and int(p.lo) % 2 == 0:
        inc = int(p.lo) > 0
        if base.nonnegative:
            return "increasing" if inc else "decreasing"
        if base.nonpositive:
            return "decreasing" if inc else "increasing"
        return "none"
    if p.positive:
        return "increasing" if (base.nonnegative or (p.lo == p.hi and p.lo.denominator == 1)) else "none"
    if p.negative:
        return "decreasing" if base.positive or base.negative else "none"
    return "none"


def _loggamma_monotone(ranges: Sequence[Range]) -> str:
    r = ranges[0]
    # loggamma decreases on (0, 1.4616...] and increases after
    if r.lo >= Fraction(3, 2):
        return "increasing"
    if r.positive and r.hi <= Fraction(14, 10):
        return "decreasing"
    return "none"


# -- matchers ---------------------------------------------------------------------------------------------
def _head(cls: type) -> Callable[[sp.Basic], tuple[sp.Expr, ...] | None]:
    def m(e: sp.Basic) -> tuple[sp.Expr, ...] | None:
        return tuple(e.args) if isinstance(e, cls) else None

    return m


def _exp_arg(t: sp.Basic) -> sp.Expr | None:
    if isinstance(t, sp.exp):
        return t.args[0]
    if isinstance(t, sp.Pow) and t.base is sp.E:
        return t.exp
    return None


def _softplus(e: sp.Basic) -> tuple[sp.Expr, ...] | None:
    # log(1 + exp(u))
    if isinstance(e, sp.log) and isinstance(e.args[0], sp.Add):
        terms = e.args[0].args
        if len(terms) == 2 and sp.S.One in terms:
            other = terms[0] if terms[1] is sp.S.One else terms[1]
            u = _exp_arg(other)
            if u is not None:
                return (u,)
    return None


def _logsumexp(e: sp.Basic) -> tuple[sp.Expr, ...] | None:
    # log(exp(a) + exp(b) + ...) or log(Σ_m exp(x[m]))
    if not isinstance(e, sp.log):
        return None
    a = e.args[0]
    if isinstance(a, sp.Add):
        inner = [_exp_arg(t) for t in a.args]
        if len(inner) >= 2 and all(u is not None for u in inner):
            return tuple(inner)  # type: ignore[arg-type]
    if isinstance(a, sp.Sum) and len(a.limits) == 1:
        u = _exp_arg(a.function)
        if u is not None:
            return (u,)  # the summand's exponent, with the summation index as a constant
    return None


def _logcosh(e: sp.Basic) -> tuple[sp.Expr, ...] | None:
    if isinstance(e, sp.log) and isinstance(e.args[0], sp.cosh):
        return (e.args[0].args[0],)
    return None


def _log_besseli0(e: sp.Basic) -> tuple[sp.Expr, ...] | None:
    if isinstance(e, sp.log) and isinstance(e.args[0], sp.besseli) and e.args[0].args[0] == 0:
        return (e.args[0].args[1],)
    return None


def _pow(e: sp.Basic) -> tuple[sp.Expr, ...] | None:
    if isinstance(e, sp.Pow) and e.base is not sp.E:
        return (e.base, e.exp)
    return None


def _besseli0(e: sp.Basic) -> tuple[sp.Expr, ...] | None:
    if isinstance(e, sp.besseli) and e.args[0] == 0:
        return (e.args[1],)
    return None


_POS_CLOSED = NONNEG
_UNIT = Range(Fraction(-1), Fraction(1), True, True)

# Order matters: multi-node patterns first.
_ATOM_LIST: tuple[Atom, ...] = (
    Atom("softplus", "log(1 + exp(x))", "convex", ("increasing",), match=_softplus),
    Atom("logsumexp", "log(Σ exp(x_i))", "convex", ("increasing",), match=_logsumexp),
    Atom("log_cosh", "log(cosh(x))", "convex", (_by_sign(0, "increasing", "decreasing"),), match=_logcosh),
    # log I₀ is the log-partition of the von Mises family along a ray: convex, even, increasing in |x|
    Atom("log_besseli0", "log(I₀(x))", "convex", (_by_sign(0, "increasing", "decreasing"),), match=_log_besseli0),
    Atom("exp", "exp(x)", "convex", ("increasing",), match=_head(sp.exp)),
    Atom("log", "log(x)", "concave", ("increasing",), (POSITIVE,), match=_head(sp.log)),
    Atom("abs", "|x|", "convex", (_by_sign(0, "increasing", "decreasing"),), smoothness="kink",
         match=_head(sp.Abs)),
    Atom("max", "max(x_1, ..., x_n)", "convex", ("increasing",), smoothness="kink", match=_head(sp.Max)),
    Atom("min", "min(x_1, ..., x_n)", "concave", ("increasing",), smoothness="kink", match=_head(sp.Min)),
    Atom("power", "x^p (p a constant; curvature by the range of p and the sign of x)", _power_curvature,
         (_power_monotone, lambda r: "none"), match=_pow,
         note="x^2k convex; x^p convex for p >= 1 or p <= 0 on x > 0; concave for 0 <= p <= 1 on x >= 0"),
    Atom("loggamma", "log Γ(x)", "convex", (_loggamma_monotone,), (POSITIVE,), match=_head(sp.loggamma)),
    Atom("cosh", "cosh(x)", "convex", (_by_sign(0, "increasing", "decreasing"),), match=_head(sp.cosh)),
    Atom("besseli0", "I₀(x)", "convex", (_by_sign(0, "increasing", "decreasing"),), match=_besseli0),
    Atom("sinh_pos", "sinh(x) on x >= 0", "convex", ("increasing",), (_POS_CLOSED,), match=_head(sp.sinh)),
    Atom("atanh_pos", "atanh(x) on 0 <= x < 1", "convex", ("increasing",),
         (Range(Fraction(0), Fraction(1), False, True),), match=_head(sp.atanh)),
    Atom("heaviside", "H(x) (a step)", "unknown", ("increasing",), smoothness="jump", match=_head(sp.Heaviside)),
    Atom("sign", "sign(x) (a step)", "unknown", ("increasing",), smoothness="jump", match=_head(sp.sign)),
)

# quad-over-lin, x·log x and the affine rules span Mul nodes: the engine handles them with these entries
_MUL_ATOMS: tuple[Atom, ...] = (
    Atom("quad_over_lin", "x² / y (y > 0)", "convex",
         (_by_sign(0, "increasing", "decreasing"), lambda r: "decreasing"), (None, POSITIVE)),
    Atom("xlogx", "x·log(x) (x > 0)", "convex", ("none",), (POSITIVE,)),
)

ATOMS: dict[str, Atom] = {a.name: a for a in (*_ATOM_LIST, *_MUL_ATOMS)}

# SymPy heads whose gradient jumps (kinks) or whose value jumps (steps)
NONSMOOTH_HEADS: dict[type, str] = {sp.Abs: "kink", sp.Max: "kink", sp.Min: "kink", sp.Heaviside: "jump",
                                    sp.sign: "jump", sp.floor: "jump", sp.ceiling: "jump", sp.frac: "jump",
                                    sp.Piecewise: "piecewise"}


def match_atom(e: sp.Basic) -> tuple[Atom, tuple[sp.Expr, ...]] | None:
    """The first atom of the table that matches the top of ``e``, with its arguments."""
    for atom in _ATOM_LIST:
        assert atom.match is not None
        args = atom.match(e)
        if args is not None:
            return atom, args
    return None

