"""Symbolic calculus the verdicts rest on, each step under the time budget.

* sign proofs (:func:`prove_nonneg`, :func:`prove_positive`, :func:`prove_zero`):
  interval arithmetic on several algebraically equal forms (as given, factored,
  simplified, numerator/denominator), then SymPy's assumption system;
* :func:`principal_minors` — the second-order condition for a Hessian;
* :func:`decompose` — a function of one variable u that is piecewise-analytic
  (|·|, max, min, sign, Heaviside, Piecewise) split at its breakpoints into
  analytic pieces on ordered intervals, so that continuity, one-sided
  derivatives and each piece's convexity can be checked;
* :func:`sup_abs` — sup |g(u)| over an interval (critical points + limits at
  the ends, when both are complete), else an interval-arithmetic bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeVar

import sympy as sp

from ..budget import try_with_budget
from .atoms import NONSMOOTH_HEADS
from .ranges import Range, RangeEnv

__all__ = [
    "Clock", "prove_nonneg", "prove_positive", "prove_zero", "principal_minors", "to_piecewise", "nonsmooth_nodes",
    "Decomposition", "decompose", "sup_abs", "limit", "is_finite_expr", "has_nonsmooth",
]

T = TypeVar("T")


class Clock:
    """Seconds left for a group of steps; ``step(fn, default)`` runs fn under what is left (capped)."""

    def __init__(self, seconds: float, cap: float | None = None):
        import time

        self._time = time.monotonic
        self.end = self._time() + max(seconds, 0.0)
        self.cap = cap

    def left(self) -> float:
        return max(self.end - self._time(), 0.0)

    def expired(self) -> bool:
        return self.left() <= 0.0

    def step(self, fn: Callable[[], T], default: T, cap: float | None = None, what: str = "symbolic step") -> T:
        left = self.left()
        for c in (cap, self.cap):
            if c is not None:
                left = min(left, c)
        if left <= 0.01:
            return default
        try:
            return try_with_budget(fn, left, default, what)
        except (Exception, RecursionError):  # SymPy raises on exotic inputs: the step simply proves nothing
            return default

    def sub(self, fraction: float) -> Clock:
        return Clock(self.left() * fraction, self.cap)


# ---------------------------------------------------------------------------------------------------------
# sign proofs
def _forms(e: sp.Expr, dl: Clock) -> Iterable[sp.Expr]:
    yield e
    for fn in (lambda: sp.factor_terms(e), lambda: sp.factor(sp.together(e)), lambda: sp.cancel(sp.together(e)),
               lambda: sp.simplify(e)):
        f = dl.step(fn, None, cap=max(dl.left() / 3, 0.05))
        if f is not None and f != e:
            yield f


def _range_proves(e: sp.Expr, env: RangeEnv, test: Callable[[Range], bool]) -> bool:
    if test(env(e)):
        return True
    # numerator / denominator separately: the sign of a ratio
    n, d = sp.fraction(e)
    if d != 1:
        rn, rd = env(n), env(d)
        if rd.positive and test(rn):
            return True
        if rd.negative and test(-rn):
            return True
    return False


def _abs_split(e: sp.Expr, env: RangeEnv) -> list[tuple[sp.Expr, RangeEnv]] | None:
    """Cases without one |h|: for h = α·v + β with v free on the whole line, v = (±a − β)/α with a >= 0.

    Both cases together cover every value of v, so a sign proved in both is proved; the substitution
    keeps the relation between |h| and the rest that interval arithmetic would lose (|loc − y| vs (loc − y)²).
    """
    for node in sp.preorder_traversal(e):
        if not isinstance(node, sp.Abs):
            continue
        h = node.args[0]
        for v in sorted(h.free_symbols, key=str):
            if not isinstance(v, sp.Symbol) or env(v).lo != -math.inf or env(v).hi != math.inf:
                continue
            alpha = sp.diff(h, v)
            if not alpha.is_number or alpha == 0 or sp.diff(h, v, 2) != 0:
                continue
            beta = h - alpha * v
            a = sp.Dummy("a", nonnegative=True)
            env2 = env.with_symbols({a: Range(Fraction(0), math.inf, False, True)})
            return [(e.subs(v, (sgn * a - beta) / alpha), env2) for sgn in (1, -1)]
    return None


def _prove_sign(e: sp.Expr, env: RangeEnv, dl: Clock, test: Callable[[Range], bool], depth: int = 0) -> bool:
    for form in _forms(e, dl):
        if _range_proves(form, env, test):
            return True
        if dl.expired():
            return False
    if depth < 2:
        cases = _abs_split(e, env)
        if cases is not None and all(_prove_sign(c, ev, dl, test, depth + 1) for c, ev in cases):
            return True
    return False


def prove_nonneg(e: sp.Expr, env: RangeEnv, dl: Clock) -> bool:
    """A proof that e >= 0 for every admissible value of its symbols (False: not proved)."""
    if e.is_number:
        return bool(e.is_nonnegative)
    if _prove_sign(e, env, dl, lambda r: r.nonnegative):
        return True
    return bool(dl.step(lambda: e.is_nonnegative, None)) is True


def prove_positive(e: sp.Expr, env: RangeEnv, dl: Clock) -> bool:
    if e.is_number:
        return bool(e.is_positive)
    if _prove_sign(e, env, dl, lambda r: r.positive):
        return True
    return bool(dl.step(lambda: e.is_positive, None)) is True


def prove_zero(e: sp.Expr, dl: Clock, env: RangeEnv | None = None) -> bool:
    """e == 0 identically (by algebra, never by sampling).

    With ``env``, logs are combined (log a − log b = log(a/b)) when every log argument is provably positive,
    which is where that rewrite is valid.
    """
    if e == 0:
        return True
    forms: list[Callable[[], sp.Expr]] = [lambda: sp.expand(e), lambda: sp.cancel(sp.together(e))]
    if env is not None and e.has(sp.log):
        logs = [n for n in sp.preorder_traversal(e) if isinstance(n, sp.log)]
        if all(env(n.args[0]).positive for n in logs):
            forms.append(lambda: sp.simplify(sp.logcombine(sp.expand(e), force=True)))
    forms.append(lambda: sp.simplify(e))
    for fn in forms:
        out = dl.step(fn, None, cap=max(dl.left() / 2, 0.05))
        if out is not None and out == 0:
            return True
    return False


def principal_minors(H: sp.Matrix) -> list[tuple[tuple[int, ...], sp.Expr]]:
    """Every principal minor (all of them, not only the leading ones: PSD needs all)."""
    import itertools

    n = H.shape[0]
    out = []
    for k in range(1, n + 1):
        for idx in itertools.combinations(range(n), k):
            sub = H.extract(list(idx), list(idx))
            out.append((idx, sub[0, 0] if k == 1 else sub.det(method="berkowitz")))
    return out


# ---------------------------------------------------------------------------------------------------------
# non-smooth functions → Piecewise
def nonsmooth_nodes(e: sp.Basic, variables: Sequence[sp.Basic]) -> list[sp.Basic]:
    from .dcp import depends_on

    return [n for n in sp.preorder_traversal(e)
            if isinstance(n, tuple(NONSMOOTH_HEADS)) and depends_on(n, variables)]


def has_nonsmooth(e: sp.Basic, variables: Sequence[sp.Basic]) -> bool:
    return bool(nonsmooth_nodes(e, variables))


def to_piecewise(e: sp.Expr, variables: Sequence[sp.Basic]) -> sp.Expr:
    """|·|, max, min, sign and Heaviside of the variables rewritten as one folded Piecewise."""
    from .dcp import depends_on

    def rw(n: sp.Basic) -> sp.Basic:
        if isinstance(n, sp.Heaviside):
            h0 = n.args[1] if len(n.args) > 1 else sp.S.Half
            x = n.args[0]
            return sp.Piecewise((0, x < 0), (h0, sp.Eq(x, 0)), (1, True))
        return n.rewrite(sp.Piecewise)

    heads = (sp.Abs, sp.Max, sp.Min, sp.sign, sp.Heaviside)
    out = e.replace(lambda n: isinstance(n, heads) and depends_on(n, variables), rw)
    return sp.piecewise_fold(out)


@dataclass
class Decomposition:
    """u ranges over (lo, b_1), (b_1, b_2), …, (b_n, hi); ``pieces[i]`` is the function on interval i."""

    u: sp.Symbol
    breakpoints: list[sp.Expr]
    pieces: list[sp.Expr]
    lo: sp.Expr
    hi: sp.Expr

    def interval(self, i: int) -> tuple[sp.Expr, sp.Expr]:
        pts = [self.lo, *self.breakpoints, self.hi]
        return pts[i], pts[i + 1]


def _relationals(cond: sp.Basic) -> list[sp.Basic]:
    if isinstance(cond, sp.core.relational.Relational):
        return [cond]
    out = []
    for a in getattr(cond, "args", ()):
        out.extend(_relationals(a))
    return out


def _truth(cond: sp.Basic, env: RangeEnv) -> bool | None:
    if cond is sp.true or cond is True:
        return True
    if cond is sp.false or cond is False:
        return False
    if isinstance(cond, sp.And):
        vals = [_truth(a, env) for a in cond.args]
        if any(v is False for v in vals):
            return False
        return True if all(v is True for v in vals) else None
    if isinstance(cond, sp.Or):
        vals = [_truth(a, env) for a in cond.args]
        if any(v is True for v in vals):
            return True
        return False if all(v is False for v in vals) else None
    if isinstance(cond, sp.Not):
        v = _truth(cond.args[0], env)
        return None if v is None else not v
    if isinstance(cond, sp.core.relational.Relational):
        r = env(cond.lhs - cond.rhs)
        if isinstance(cond, (sp.StrictGreaterThan,)):
            return True if r.positive else False if r.nonpositive else None
        if isinstance(cond, (sp.GreaterThan,)):
            return True if r.nonnegative else False if r.negative else None
        if isinstance(cond, (sp.StrictLessThan,)):
            return True if r.negative else False if r.nonnegative else None
        if isinstance(cond, (sp.LessThan,)):
            return True if r.nonpositive else False if r.positive else None
        if isinstance(cond, sp.Eq):
            return True if r.is_zero else False if r.nonzero else None
        if isinstance(cond, sp.Ne):
            return False if r.is_zero else True if r.nonzero else None
    return None


def decompose(f: sp.Expr, u: sp.Symbol, env: RangeEnv, dl: Clock) -> Decomposition | None:
    """Split a piecewise-analytic f(u) at its breakpoints (None when they cannot be found or ordered)."""
    pw = dl.step(lambda: to_piecewise(f, [u]), None)
    if pw is None:
        return None
    dom = env(u)
    lo = sp.S.NegativeInfinity if math.isinf(dom.lo) else sp.Rational(dom.lo.numerator, dom.lo.denominator)
    hi = sp.S.Infinity if math.isinf(dom.hi) else sp.Rational(dom.hi.numerator, dom.hi.denominator)
    if not isinstance(pw, sp.Piecewise):
        if has_nonsmooth(pw, [u]):
            return None
        return Decomposition(u, [], [pw], lo, hi)
    rels = []
    for _, cond in pw.args:
        rels.extend(r for r in _relationals(cond) if u in r.free_symbols)
    points: list[sp.Expr] = []
    for rel in rels:
        h = rel.lhs - rel.rhs
        # only conditions polynomial of degree <= 2 in u: then solve finds every breakpoint (soundness)
        poly = dl.step(lambda h=h: sp.Poly(sp.expand(h), u), None)
        if poly is None or poly.degree() > 2 or any(u in c.free_symbols for c in poly.coeffs()):
            return None
        sols = dl.step(lambda h=h: sp.solve(h, u), None)
        if sols is None:
            return None
        for s in sols:
            if s.is_real is False or s.has(sp.I):
                continue
            points.append(s)
    uniq: list[sp.Expr] = []
    for p in points:
        if not any(prove_zero(p - q, dl) for q in uniq):
            uniq.append(p)
    # keep breakpoints inside u's domain
    inside = []
    for p in uniq:
        r = env(p - lo) if lo.is_finite else Range(Fraction(1), Fraction(1), False, False)
        s = env(hi - p) if hi.is_finite else Range(Fraction(1), Fraction(1), False, False)
        if r.nonpositive or s.nonpositive:
            continue
        if not (r.positive and s.positive):
            return None  # cannot tell whether the breakpoint is inside the domain
        inside.append(p)
    # order them
    try:
        ordered = _sort(inside, env)
    except ValueError:
        return None
    pieces = []
    pts = [lo, *ordered, hi]
    for i in range(len(pts) - 1):
        a, b = pts[i], pts[i + 1]
        if a.is_infinite and b.is_infinite:
            c = sp.Integer(0)
        elif a.is_infinite:
            c = b - 1
        elif b.is_infinite:
            c = a + 1
        else:
            c = (a + b) / 2
        piece = _active_piece(pw, u, c, env)
        if piece is None:
            return None
        pieces.append(piece)
    return Decomposition(u, ordered, pieces, lo, hi)


def _sort(points: list[sp.Expr], env: RangeEnv) -> list[sp.Expr]:
    import functools

    def cmp(a: sp.Expr, b: sp.Expr) -> int:
        r = env(sp.expand(b - a))
        if r.positive:
            return -1
        if r.negative:
            return 1
        raise ValueError("unordered breakpoints")

    return sorted(points, key=functools.cmp_to_key(cmp))


def _active_piece(pw: sp.Piecewise, u: sp.Symbol, c: sp.Expr, env: RangeEnv) -> sp.Expr | None:
    for expr, cond in pw.args:
        t = cond.subs(u, c) if hasattr(cond, "subs") else cond
        v = _truth(t, env)
        if v is None:
            return None
        if v:
            return expr
    return None


# ---------------------------------------------------------------------------------------------------------
def is_finite_expr(e: sp.Basic) -> bool:
    if e is None or e.has(sp.oo, -sp.oo, sp.zoo, sp.nan, sp.AccumBounds):
        return False
    if isinstance(e, sp.Limit):
        return False
    return e.is_finite is True or (e.is_number and e.is_finite is not False)


def limit(g: sp.Expr, u: sp.Symbol, at: sp.Expr, dl: Clock, direction: str = "+") -> sp.Expr | None:
    """lim g as u -> at (from ``direction`` at a finite point), or None when SymPy cannot say in time."""
    if at.is_infinite:
        return dl.step(lambda: sp.limit(g, u, at), None)
    return dl.step(lambda: sp.limit(g, u, at, direction), None)


def sup_abs(g: sp.Expr, u: sp.Symbol, env: RangeEnv, dl: Clock, lo: sp.Expr | None = None,
            hi: sp.Expr | None = None) -> tuple[sp.Expr | None, bool, str]:
    """sup over u of |g| with the other symbols fixed: (value or bound, exact?, how).

    Exact when g is continuous on the interval, its critical points are a finite set SymPy finds, and the
    limits at the ends exist: sup = the largest |g| among them.  Otherwise an interval-arithmetic bound
    (valid, maybe loose), or (None, False, why).
    """
    r = env(g)
    if not r.bounded:  # a factored form can expose a bounded pattern (x/(x + 1)² <= 1/4)
        fac = dl.step(lambda: sp.factor(g), None, cap=max(dl.left() / 6, 0.05))
        if fac is not None:
            r = env(fac)
    bound = None
    if r.bounded:
        top = max(abs(r.lo), abs(r.hi))
        bound = sp.Rational(top.numerator, top.denominator) if isinstance(top, Fraction) else sp.Float(top)
    dom = env(u)
    if lo is None:
        lo = sp.S.NegativeInfinity if math.isinf(dom.lo) else sp.Rational(dom.lo.numerator, dom.lo.denominator)
    if hi is None:
        hi = sp.S.Infinity if math.isinf(dom.hi) else sp.Rational(dom.hi.numerator, dom.hi.denominator)
    if u not in g.free_symbols:
        return sp.Abs(g), True, "constant in the variable"
    if has_nonsmooth(g, [u]) or not _continuous(g, u, env):
        if bound is not None:
            return bound, False, "interval arithmetic"
        return None, False, "not continuous in the variable"
    dg = dl.step(lambda: sp.together(sp.diff(g, u)), None)
    crit = None
    if dg is not None:
        num = dl.step(lambda: sp.numer(dg), dg)
        crit = dl.step(lambda: sp.solveset(num, u, domain=sp.Interval(lo, hi, True, True)), None,
                       cap=max(dl.left() / 2, 0.05))
    cands: list[sp.Expr] = []
    exact = isinstance(crit, sp.FiniteSet) or crit is sp.S.EmptySet
    if isinstance(crit, sp.FiniteSet):
        cands.extend(crit.args)  # type: ignore[union-attr]
    values: list[sp.Expr] = []
    for c in cands:
        v = dl.step(lambda c=c: sp.simplify(sp.Abs(g.subs(u, c))), None)
        if v is None:
            exact = False
            break
        values.append(v)
    ends = []
    for at, d in ((lo, "+"), (hi, "-")):
        if at.is_finite:
            env_in = env(u)
            if env_in.contains(float(at)) if at.is_number else False:
                v = dl.step(lambda at=at: sp.Abs(g.subs(u, at)), None)
            else:
                v = limit(sp.Abs(g), u, at, dl, d)
        else:
            v = limit(sp.Abs(g), u, at, dl, d)
        ends.append(v)
        if v is None or not is_finite_expr(v):
            exact = False
        else:
            values.append(v)
    if exact and values:
        best = dl.step(lambda: sp.simplify(sp.Max(*values)), sp.Max(*values))
        return best, True, "critical points and limits at the ends"
    if any(v is not None and v.has(sp.oo) and not v.free_symbols for v in ends):
        return sp.oo, True, "limit at an end of the domain"
    if bound is not None:
        return bound, False, "interval arithmetic"
    return None, False, "no bound found"


def _continuous(g: sp.Expr, u: sp.Symbol, env: RangeEnv) -> bool:
    """Continuity in u on its domain: every denominator is provably non-zero and every log/root argument
    provably positive (the other symbols anywhere in their domains)."""
    for node in sp.preorder_traversal(g):
        if u not in getattr(node, "free_symbols", ()):
            continue
        if isinstance(node, sp.Pow) and node.exp.is_number and node.exp.is_negative:
            if not env(node.base).nonzero:
                return False
        elif isinstance(node, sp.Pow) and not (node.exp.is_Integer and node.exp >= 0) and node.base is not sp.E:
            if not env(node.base).positive:
                return False
        elif isinstance(node, (sp.log, sp.loggamma)):
            if not env(node.args[0]).positive:
                return False
    return True
