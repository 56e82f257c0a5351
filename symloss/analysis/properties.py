"""One checker per property.  Each returns a :class:`Verdict` and never guesses.

A checker receives the shared :class:`~symloss.analysis.engine.Analysis` and a
:class:`~symloss.analysis.calculus.Clock` with its share of the budget; every
SymPy call goes through ``clock.step`` (time-limited, failures prove nothing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp

from .calculus import (
    Clock,
    Decomposition,
    decompose,
    has_nonsmooth,
    is_finite_expr,
    limit,
    nonsmooth_nodes,
    principal_minors,
    prove_nonneg,
    prove_positive,
    prove_zero,
    sup_abs,
)
from .dcp import dcp_curvature, depends_on
from .numeric import SEED, find_convexity_violation, find_unimodality_violation, fmt, point_dict
from .ranges import POSITIVE, Range, RangeEnv
from .report import Verdict

if TYPE_CHECKING:
    from .engine import Analysis

__all__ = ["check_convex", "check_differentiable", "check_smooth", "check_robust", "check_monotone",
           "check_symmetric", "check_sparse", "check_trainable", "check_proper", "convexity_verdict",
           "tidy_nonsmooth", "SURROGATES", "PREDICTION_NAMES"]

# names of inputs that predict the target itself (a location), for the symmetry checks
PREDICTION_NAMES = ("loc", "mean", "mu", "location", "prediction", "pred", "yhat", "y_hat", "input", "median", "mode")

# differentiable surrogates to suggest for metric-only functions
SURROGATES: dict[str, str] = {
    "accuracy": "binary cross-entropy with logits (derive('bernoulli', link='canonical')) or the hinge loss "
                "max(0, 1 − (2y−1)·s) (metric('hinge'))",
    "zero_one": "binary cross-entropy with logits (derive('bernoulli', link='canonical')) or the hinge loss "
                "max(0, 1 − (2y−1)·s) (metric('hinge'))",
    "precision": "soft precision: replace the step H(s) by sigmoid(s) in the counts, Σ y·σ(s) / Σ σ(s)",
    "recall": "soft recall: replace the step H(s) by sigmoid(s) in the counts, Σ y·σ(s) / Σ y",
    "f1": "soft-F1: 2·Σ y·σ(s) / (Σ σ(s) + Σ y) with the step H(s) replaced by sigmoid(s)",
    "default": "replace each step by a smooth relaxation: Heaviside(x) → sigmoid(x/T), sign(x) → tanh(x/T), "
               "a 0-1 loss → cross-entropy or hinge",
}


def _v(name: str, status: str, reason: str, details: dict | None = None, witness: dict | None = None) -> Verdict:
    return Verdict(name, status, reason, dict(details or {}), witness)


def _na(name: str, reason: str, **details: Any) -> Verdict:
    return Verdict(name, "unknown", reason, {"applicable": False, **details})


def tidy_nonsmooth(expr: sp.Expr, env: RangeEnv) -> sp.Expr:
    """|a| → ±a, sign(a), Heaviside(a) → constants wherever the sign of a is fixed on the domain."""

    def fix(n: sp.Basic) -> sp.Basic:
        a = n.args[0]
        r = env(a)
        if isinstance(n, sp.Abs):
            return a if r.nonnegative else -a if r.nonpositive else n
        if isinstance(n, sp.sign):
            return sp.Integer(1) if r.positive else sp.Integer(-1) if r.negative else n
        if isinstance(n, sp.Heaviside):
            return sp.Integer(1) if r.positive else sp.Integer(0) if r.negative else n
        return n

    try:
        return expr.replace(lambda n: isinstance(n, (sp.Abs, sp.sign, sp.Heaviside)), fix)
    except Exception:  # a replace that SymPy cannot rebuild: keep the expression as it is
        return expr


def _names(syms: Sequence[sp.Basic]) -> str:
    return ", ".join(str(s) for s in syms)


# ---------------------------------------------------------------------------------------------------------
# convexity
def convexity_verdict(an: Analysis, S: tuple[sp.Basic, ...], clock: Clock, name: str) -> Verdict:
    """Convexity in the variables S (the other symbols fixed anywhere in their domains)."""
    label = _names(S)
    e = an.proof_expr
    env = an.env
    dcp = clock.step(lambda: dcp_curvature(e, S, env), None, cap=max(clock.left() / 4, 0.1))
    proof: tuple[str, dict[str, Any]] | None = None
    if dcp is not None and dcp.convex:
        atoms = ", ".join(sorted(dcp.atoms)) or "affine maps"
        what = "affine" if dcp.kind in ("affine", "constant") else "convex"
        proof = (f"{what} in {label} by the composition rules (DCP) over the atoms {atoms}",
                 {"method": "composition rules (DCP)", "atoms": sorted(dcp.atoms), "curvature": dcp.kind})
    # a counterexample search runs even after a proof: a cheap cross-check of the rules
    witness = _convexity_search(an, S, clock, share=0.5 if proof is None else 0.1)
    if witness is not None and proof is not None:
        return _v(name, "unknown", f"conflict: the rules say convex in {label} but a re-checked counterexample "
                                   "exists; reporting unknown", {"proof": proof[0], "conflict": True})
    if witness is not None:
        return _v(name, "disproved", f"not convex in {label}: the midpoint inequality fails at the witness "
                                     "(re-checked with mpmath at 50 digits)", {"method": "counterexample search"},
                  witness)
    if proof is not None:
        return _v(name, "proved", proof[0], proof[1])
    if an.scalar:
        smooth_in_S = not has_nonsmooth(e, S)
        # second-order conditions need f twice differentiable on the whole (interval) domain: no pole, no log of 0
        if smooth_in_S and analytic_on_domain(e, S, env)[0]:
            got = _second_order(an, S, clock)
            if got is not None:
                return _v(name, "proved", got[0], got[1])
        elif len(S) == 1:
            got = _piecewise_convex(an, S[0], clock)
            if got is not None:
                return _v(name, "proved", got[0], got[1])
    blocked = f"; the rules stop at {an.show(dcp.blocked)}" if dcp is not None and dcp.blocked is not None else ""
    return _v(name, "unknown", f"not decided in {label}: no rule or second-order test applied{blocked}, and no "
                               "counterexample was found", {"dcp": dcp.kind if dcp is not None else "not run"})


def _convexity_search(an: Analysis, S: tuple[sp.Basic, ...], clock: Clock, share: float) -> dict | None:
    flat = an.flat()
    var_syms = [c for s in S for c in flat.groups.get(s, ())]
    hess = None
    if 0 < len(var_syms) <= 6:
        hess = clock.step(lambda: sp.hessian(flat.expr, var_syms), None, cap=max(clock.left() * share / 2, 0.05))
    # at least a few tenths of a second when the clock allows: compiling the evaluators costs that much
    seconds = max(min(clock.left() * share, 2.0), min(0.4, clock.left() * 0.8), 0.05)
    return find_convexity_violation(flat, S, seconds, hessian=hess)


def _second_order(an: Analysis, S: tuple[sp.Basic, ...], clock: Clock) -> tuple[str, dict] | None:
    e, env = an.proof_expr, an.env
    label = _names(S)
    if len(S) == 1:
        u = S[0]
        d2 = clock.step(lambda: sp.diff(e, u, 2), None)
        if d2 is None:
            return None
        if prove_nonneg(d2, env, clock.sub(0.6)):
            d2s = clock.step(lambda: sp.simplify(d2), d2, cap=0.5)
            return (f"second-order condition: ∂²ℓ/∂{u}² = {an.show(d2s)} >= 0 on the domain",
                    {"method": "second-order condition", "second_derivative": an.show(d2s)})
        return None
    if len(S) > 3 or any(isinstance(s, sp.IndexedBase) for s in S):
        return None
    H = clock.step(lambda: sp.hessian(e, S), None)
    if H is None:
        return None
    minors = clock.step(lambda: principal_minors(H), None)
    if minors is None:
        return None
    shown = {}
    for idx, m in minors:
        if not prove_nonneg(m, env, clock.sub(0.5)):
            return None
        shown["·".join(str(S[i]) for i in idx)] = an.show(m)
    return (f"second-order condition: the Hessian in ({label}) is positive semidefinite (all {len(minors)} "
            "principal minors >= 0 on the domain)", {"method": "second-order condition", "principal_minors": shown})


def _restricted_env(an: Analysis, dec: Decomposition, i: int, expr: sp.Expr) -> tuple[sp.Expr, RangeEnv]:
    """expr(u) with u restricted to interval i: u = a + s or b − s with s in (0, width)."""
    a, b = dec.interval(i)
    u = dec.u
    s = sp.Dummy("s", positive=True)
    if a.is_finite:
        width = an.env(b - a) if b.is_finite else Range(Fraction(0), math.inf, True, True)
        return expr.subs(u, a + s), an.env.with_symbols({s: Range(Fraction(0), width.hi, True, True)})
    if b.is_finite:
        return expr.subs(u, b - s), an.env.with_symbols({s: POSITIVE})
    return expr, an.env


def _piecewise_convex(an: Analysis, u: sp.Basic, clock: Clock) -> tuple[str, dict] | None:
    """Each piece convex on its interval, f continuous, the slope non-decreasing at every breakpoint."""
    dec = an.decompose(an.proof_expr, u, clock)
    if dec is None or not dec.breakpoints:
        return None
    for i, piece in enumerate(dec.pieces):
        d2 = clock.step(lambda piece=piece: sp.diff(piece, u, 2), None)
        if d2 is None:
            return None
        e2, env2 = _restricted_env(an, dec, i, d2)
        p2, _ = _restricted_env(an, dec, i, piece)
        if not analytic_on_domain(p2, [s for s in p2.free_symbols if isinstance(s, sp.Dummy)] or [u], env2)[0]:
            return None
        if not prove_nonneg(e2, env2, clock.sub(0.3)):
            return None
    for i, b in enumerate(dec.breakpoints):
        left, right = dec.pieces[i], dec.pieces[i + 1]
        if not prove_zero((left - right).subs(u, b), clock.sub(0.3)):
            return None
        jump = (sp.diff(right, u) - sp.diff(left, u)).subs(u, b)
        if not prove_nonneg(jump, an.env, clock.sub(0.3)):
            return None
    pts = ", ".join(f"{u} = {an.show(b)}" for b in dec.breakpoints)
    return (f"piecewise rule: each of the {len(dec.pieces)} pieces is convex on its interval, the function is "
            f"continuous and its slope does not decrease at the breakpoints ({pts})",
            {"method": "piecewise rule", "breakpoints": [an.show(b) for b in dec.breakpoints],
             "pieces": [an.show(p) for p in dec.pieces]})


def check_convex(an: Analysis, clock: Clock) -> Verdict:
    n = len(an.wrt)
    for k, u in enumerate(an.wrt):
        sub = Clock(clock.left() / (n + 1 - k) if n > 1 else clock.left(), clock.cap)
        an.convex_in[str(u)] = _rename(convexity_verdict(an, (u,), sub, f"convex in {u}"), f"convex in {u}")
    if n == 1:
        return _rename(an.convex_in[str(an.wrt[0])], "convex")
    for u in an.wrt:
        v = an.convex_in[str(u)]
        if v.status == "disproved":
            return _v("convex", "disproved", f"not jointly convex: not even convex in {u} alone (a jointly convex "
                                             "function is convex along every line)", v.details, v.witness)
    return convexity_verdict(an, tuple(an.wrt), clock, "convex")


def _rename(v: Verdict, name: str) -> Verdict:
    return Verdict(name, v.status, v.reason, v.details, v.witness)


# ---------------------------------------------------------------------------------------------------------
# differentiability
_ENTIRE = (sp.exp, sp.sin, sp.cos, sp.sinh, sp.cosh, sp.tanh, sp.erf, sp.erfc, sp.atan, sp.besselj)


def analytic_on_domain(e: sp.Expr, S: Sequence[sp.Basic], env: RangeEnv) -> tuple[bool, sp.Basic | None]:
    """Every atom that involves S is analytic at every admissible point (its argument inside its open domain)."""
    for node in sp.preorder_traversal(e):
        if not isinstance(node, sp.Basic) or not depends_on(node, S):
            continue
        if isinstance(node, (sp.Symbol, sp.Indexed, sp.IndexedBase, sp.Idx, sp.Add, sp.Mul, sp.Sum, sp.Tuple)):
            continue
        if isinstance(node, sp.Pow):
            b, p = node.args
            if b is sp.E:
                continue
            if p.is_Integer and p >= 0 and not depends_on(p, S):
                continue
            if p.is_Integer and p < 0 and not depends_on(p, S):
                if env(b).nonzero:
                    continue
                return False, node
            if env(b).positive:
                continue
            return False, node
        if isinstance(node, (sp.log, sp.loggamma, sp.digamma)) or (isinstance(node, sp.polygamma)):
            if env(node.args[-1]).positive:
                continue
            return False, node
        if isinstance(node, sp.atanh):
            if env(node.args[0]).within(Range(Fraction(-1), Fraction(1), True, True)):
                continue
            return False, node
        if isinstance(node, sp.besseli):
            order, x = node.args
            if (order.is_integer or env(x).positive) and not depends_on(order, S):
                continue
            return False, node
        if isinstance(node, _ENTIRE):
            continue
        if isinstance(node, sp.Function) or isinstance(node, sp.Piecewise):
            return False, node
    return True, None


def _sample_row(an: Analysis, seed: int, n: int = 8) -> list[dict[sp.Symbol, float]]:
    flat = an.flat()
    rng = np.random.default_rng(seed)
    vals = flat.sample_all(rng, n, special=0.2)
    if not vals:
        return []
    m = len(next(iter(vals.values())))
    return [{s: float(v[i]) for s, v in vals.items()} for i in range(m)]


def _exact(v: float) -> sp.Rational:
    return sp.Rational(Fraction(v).numerator, Fraction(v).denominator)


def _mp_of(x: sp.Expr):
    import mpmath

    return mpmath.mpmathify(str(sp.N(x, 60)))


def _kink_witness(an: Analysis, u: sp.Symbol, b: sp.Expr, clock: Clock, what: str,
                  fixed: dict[sp.Basic, float] | None = None) -> dict | None:
    """A point on the breakpoint set with one-sided difference quotients (h = 1e-20, 50 digits) that differ,
    or values that jump."""
    import mpmath

    flat = an.flat()
    if u not in flat.symbols:
        return None
    fn = flat.mp_fn()
    for row in _sample_row(an, SEED + 7):
        if clock.expired():
            return None
        row.update(fixed or {})
        exact = {s: _exact(v) for s, v in row.items() if s != u}
        bv = b.xreplace(exact) if hasattr(b, "xreplace") else b
        bv = bv.subs(an.back) if an.back else bv
        if bv.free_symbols:
            continue
        try:
            bf = float(bv)
        except (TypeError, ValueError):
            continue
        if not flat.in_domain(u, np.array([bf]))[0]:
            continue
        with mpmath.workdps(50):
            h = mpmath.mpf(10) ** -20
            bm = _mp_of(bv)

            def f(x, row=row):
                args = [x if s == u else mpmath.mpf(row[s]) for s in flat.symbols]
                try:
                    return fn(*args)
                except (ValueError, ZeroDivisionError, TypeError):
                    return None

            f0, fp, fm = f(bm), f(bm + h), f(bm - h)
            if any(v is None or isinstance(v, mpmath.mpc) for v in (f0, fp, fm)):
                continue
            right, left = (fp - f0) / h, (f0 - fm) / h
            jump_value = max(abs(fp - f0), abs(f0 - fm))
            fixed = {flat.name(s): v for s, v in row.items() if s != u}
            if jump_value > mpmath.mpf(10) ** -10 * (1 + abs(f0)):
                return {"test": f"the value jumps at {u} = {an.show(b)}", "fixed": fixed, str(u): float(bf),
                        "f(b - h)": fmt(fm), "f(b)": fmt(f0), "f(b + h)": fmt(fp), "h": 1e-20,
                        "checked_with": "mpmath, 50 significant digits"}
            if abs(right - left) > mpmath.mpf(10) ** -8 * (1 + abs(right) + abs(left)):
                return {"test": f"one-sided derivatives in {u} differ at {u} = {an.show(b)} ({what})",
                        "fixed": fixed, str(u): float(bf), "left_derivative": fmt(left), "right_derivative": fmt(right),
                        "h": 1e-20, "checked_with": "mpmath difference quotients, 50 significant digits"}
    return None


def check_differentiable(an: Analysis, clock: Clock) -> Verdict:
    S = an.wrt
    e = an.tidy_expr
    name = "differentiable"
    if not nonsmooth_nodes(e, S):
        ok, bad = analytic_on_domain(e, S, an.env)
        if ok:
            v = _v(name, "proved", "every atom is analytic on the domain (no |·|, max, step or piecewise in the "
                                   "trained inputs; log/power arguments provably inside their domains): C^∞",
                   {"nondifferentiable_set": [], "class": "C^∞"})
        else:
            v = _v(name, "unknown", f"not decided: cannot show that {an.show(bad)} stays inside its domain of "
                                    "analyticity", {"blocked": an.show(bad)})
        an.facts["differentiable"] = v
        return v
    if not an.scalar:
        v = _differentiable_instance(an, clock)
        an.facts["differentiable"] = v
        return v
    kinks: list[dict[str, Any]] = []
    c2_breaks: list[str] = []
    decided = True
    decs: dict[sp.Basic, Decomposition] = {}
    case_decs: dict[sp.Basic, dict[int, Decomposition]] = {}
    for u in S:
        if not nonsmooth_nodes(e, [u]):
            continue
        dec = an.decompose(e, u, clock.sub(0.5))
        if dec is not None:
            decs[u] = dec
            decided &= _scan_breakpoints(an, e, u, dec, {}, clock, kinks, c2_breaks)
            continue
        cases = _target_cases(an)
        if not cases:
            decided = False
            continue
        # a binary target: the breakpoints depend on its sign (hinge: score = ±1), so split on its values
        case_decs[u] = {}
        for case in cases:
            ec = e.xreplace(case)
            dec = an.decompose(ec, u, clock.sub(0.5))
            if dec is None:
                decided = False
                continue
            case_decs[u][int(next(iter(case.values())))] = dec
            decided &= _scan_breakpoints(an, ec, u, dec, case, clock, kinks, c2_breaks)
    an.facts["case_decompositions"] = case_decs
    an.facts["decompositions"] = decs
    if kinks:
        sets = [k["set"] for k in kinks]
        jumps = [k["set"] for k in kinks if k["kind"] == "jump"]
        reason = f"not differentiable at {', '.join(sets)}"
        reason += " (the value jumps there)" if jumps else " (the one-sided derivatives differ there)"
        v = _v(name, "disproved", reason,
               {"nondifferentiable_set": sets, "discontinuous_at": jumps, "method": "piecewise analysis",
                "kink_conditions": _kink_conditions(an, e)}, kinks[0]["witness"])
    elif decided:
        details: dict[str, Any] = {"nondifferentiable_set": [], "method": "piecewise analysis",
                                   "class": "C^1 (not twice differentiable)" if c2_breaks else "C^2 across breakpoints"}
        if c2_breaks:
            details["second_derivative_jumps_at"] = c2_breaks
        reason = ("differentiable everywhere: the pieces join with equal values and equal gradients at every "
                  "breakpoint" + (f"; not twice differentiable at {', '.join(c2_breaks)}" if c2_breaks else ""))
        v = _v(name, "proved", reason, details)
        an.facts["c1_piecewise"] = True
    else:
        v = _v(name, "unknown", "not decided: the breakpoints of the non-smooth parts could not all be located, "
                                "ordered or checked", {})
    an.facts["differentiable"] = v
    return v


def _kink_conditions(an: Analysis, e: sp.Expr) -> list[str]:
    """Where the non-smooth atoms switch, as equations (|h|: h = 0; max(a, b): a = b; step(h): h = 0)."""
    out = []
    for n in nonsmooth_nodes(e, an.wrt):
        if isinstance(n, (sp.Abs, sp.sign, sp.Heaviside)):
            out.append(f"{an.show(n.args[0])} = 0")
        elif isinstance(n, (sp.Max, sp.Min)) and len(n.args) == 2:
            a, b = n.args
            out.append(f"{an.show(b - a)} = 0" if a.is_number or b.is_number else f"{an.show(a)} = {an.show(b)}")
    return list(dict.fromkeys(out))


def _target_cases(an: Analysis) -> list[dict[sp.Basic, sp.Integer]]:
    """The values of a binary target, one substitution each (empty for other targets)."""
    y = an.target
    dom = an.problem.domains.get(y) if y is not None else None
    if not an.scalar or dom is None or dom.name != "binary":
        return []
    return [{y: sp.Integer(0)}, {y: sp.Integer(1)}]


def _case_text(case: dict) -> str:
    return "".join(f" when {k} = {v}" for k, v in case.items())


def _scan_breakpoints(an: Analysis, e: sp.Expr, u: sp.Basic, dec: Decomposition, case: dict, clock: Clock,
                      kinks: list[dict[str, Any]], c2_breaks: list[str]) -> bool:
    """Record the kinks, jumps and second-derivative jumps at dec's breakpoints; False if one is undecided."""
    S = an.wrt
    decided = True
    for piece in dec.pieces:
        ok, _ = analytic_on_domain(piece, S, an.env)
        if not ok:
            decided = False
    for i, b in enumerate(dec.breakpoints):
        left, right = dec.pieces[i], dec.pieces[i + 1]
        where = f"{u} = {an.show(b)}{_case_text(case)}"
        j0 = (left - right).subs(u, b)
        j1 = [(sp.diff(right, v) - sp.diff(left, v)).subs(u, b) for v in S]
        cont = prove_zero(j0, clock.sub(0.2))
        c1 = cont and all(prove_zero(j, clock.sub(0.2)) for j in j1)
        if c1:
            j2 = (sp.diff(right, u, 2) - sp.diff(left, u, 2)).subs(u, b)
            if not prove_zero(j2, clock.sub(0.2)):
                c2_breaks.append(where)
            continue
        kind = "kink" if cont else "jump"
        w = _kink_witness(an, u, b, clock, kind, {k: float(v) for k, v in case.items()})
        if w is not None:
            kinks.append({"set": where, "kind": kind, "witness": w})
        else:
            decided = False
    return decided


def _differentiable_instance(an: Analysis, clock: Clock) -> Verdict:
    """A class-axis / batch loss with steps or kinks: look for a kink on the finite instance."""
    flat = an.flat()
    env = RangeEnv({s: _dom_range(flat, s) for s in flat.symbols})
    for w in an.wrt:
        comps = flat.groups.get(w, ())
        if not comps:
            continue
        u = comps[0]
        dec = decompose(flat.expr, u, env, clock.sub(0.5))
        if dec is None:
            continue
        for b in dec.breakpoints:
            wit = _kink_witness_flat(an, u, b, clock)
            if wit is not None:
                return _v("differentiable", "disproved",
                          f"not differentiable at {u} = {b} (on the instance with {flat.size} components)",
                          {"nondifferentiable_set": [f"{w}[i] = {str(b).replace(str(u), f'{w}[i]')}"],
                           "instance_size": flat.size}, wit)
    return _v("differentiable", "unknown", "not decided: non-smooth parts over a class/batch axis", {})


def _dom_range(flat, s) -> Range:
    from .ranges import domain_range

    return domain_range(flat.domain_of[s])


def _kink_witness_flat(an: Analysis, u: sp.Symbol, b: sp.Expr, clock: Clock) -> dict | None:
    saved = an.back
    an.back = {}
    try:
        return _kink_witness(an, u, b, clock, "kink")
    finally:
        an.back = saved


# ---------------------------------------------------------------------------------------------------------
# smoothness (Lipschitz gradient)
def _growth_witness(an: Analysis, g: sp.Expr, u: sp.Symbol, clock: Clock, label: str) -> dict | None:
    """Concrete values of the other symbols and points approaching an end of u's domain where |g| grows
    without bound (the limit computed by SymPy with those numbers, the values at 50 digits)."""
    dom = an.env(u)
    ends = []
    if math.isinf(dom.hi):
        ends.append((sp.oo, "-"))
    elif dom.hi_open:
        ends.append((_rat(dom.hi), "-"))
    if math.isinf(dom.lo):
        ends.append((-sp.oo, "+"))
    elif dom.lo_open:
        ends.append((_rat(dom.lo), "+"))
    flat_syms = set(an.flat().symbols) if an.scalar else set()
    for row in _sample_row(an, SEED + 11, n=6):
        if clock.expired():
            return None
        exact = {s: _exact(v) for s, v in row.items() if s != u and s in flat_syms}
        g0 = g.subs(an.back) if an.back else g
        gc = g0.xreplace(exact)
        if gc.free_symbols - {u}:
            continue
        for at, d in ends:
            lim = limit(sp.Abs(gc), u, at, clock, d)
            if lim is None or lim is not sp.oo:
                continue
            pts = _approach(at, dom)
            vals = []
            for p in pts:
                v = _mp_eval(an, g0, {**exact, u: p})
                if v is None:
                    break
                vals.append(abs(v))
            if len(vals) == len(pts) and all(b > a for a, b in zip(vals, vals[1:])):
                return {"test": f"{label} grows without bound as {u} → {at}", "fixed": {str(s): row[s] for s in exact},
                        str(u): [float(p) for p in pts], f"|{label}|": [fmt_num(v) for v in vals],
                        "limit": f"|{label}| → oo as {u} → {at} (SymPy limit with these numbers)",
                        "checked_with": "mpmath, 50 significant digits"}
    return None


def fmt_num(v) -> float | str:
    f = float(v)
    if math.isfinite(f) and abs(f) < 1e300:
        return f
    import mpmath

    return mpmath.nstr(v, 17) if isinstance(v, mpmath.mpf) else str(v)


def _mp_eval(an: Analysis, expr: sp.Expr, values: dict[sp.Basic, Any], dps: int = 50):
    """expr at exact values, with mpmath at ``dps`` digits; None if undefined or not real.

    Never through SymPy's own evaluation: loggamma or digamma of a large integer would be expanded exactly.
    """
    import mpmath

    from .context import _MP_EXTRA

    syms = tuple(sorted(values, key=str))
    key = ("mp", expr, syms)
    fn = an.facts.get(key)
    if fn is None:
        fn = sp.lambdify(syms, expr, modules=[_MP_EXTRA, "mpmath"])
        an.facts[key] = fn
    with mpmath.workdps(dps):
        args = []
        for s in syms:
            v = values[s]
            if isinstance(v, sp.Rational):
                args.append(mpmath.mpf(int(v.p)) / int(v.q))
            else:
                args.append(mpmath.mpf(float(v)))
        try:
            out = fn(*args)
        except (ValueError, TypeError, ZeroDivisionError, OverflowError):
            return None
        out = mpmath.mpmathify(out)
        if isinstance(out, mpmath.mpc):
            if abs(out.imag) > mpmath.mpf(10) ** (10 - dps) * (1 + abs(out.real)):
                return None
            out = out.real
        return out if mpmath.isfinite(out) else None


def _rat(v) -> sp.Rational:
    return sp.Rational(v.numerator, v.denominator)


def _approach(at: sp.Expr, dom: Range) -> list[sp.Rational]:
    if at is sp.oo:
        return [sp.Integer(10) ** k for k in (1, 2, 4, 8)]
    if at is -sp.oo:
        return [-(sp.Integer(10) ** k) for k in (1, 2, 4, 8)]
    if dom.lo == at or (isinstance(dom.lo, Fraction) and _rat(dom.lo) == at):
        return [at + sp.Rational(1, 10**k) for k in (1, 2, 4, 8)]
    return [at - sp.Rational(1, 10**k) for k in (1, 2, 4, 8)]


def check_smooth(an: Analysis, clock: Clock) -> Verdict:
    name = "smooth"
    dif = an.facts.get("differentiable")
    if dif is not None and dif.status == "disproved":
        return _v(name, "disproved", "not L-smooth: the gradient jumps (" + dif.reason + "), so it is not Lipschitz",
                  {"nondifferentiable_set": dif.details.get("nondifferentiable_set")}, dif.witness)
    if not an.scalar:
        return _smooth_instance(an, clock)
    e = an.proof_expr
    S = an.wrt
    # an unbounded diagonal entry of the Hessian in any direction disproves smoothness
    if len(S) == 1:
        u = S[0]
        decs = an.facts.get("decompositions", {})
        if an.facts.get("c1_piecewise") and u in decs:
            return _smooth_piecewise(an, decs[u], clock)
        if has_nonsmooth(e, S):
            return _v(name, "unknown", "not decided: a non-smooth part that the piecewise analysis did not settle")
        raw = clock.step(lambda: sp.diff(e, u, 2), None)
        if raw is None:
            return _v(name, "unknown", "not decided: the second derivative did not finish in time")
        g = clock.step(lambda: sp.simplify(raw), raw, cap=max(clock.left() / 4, 0.1))
        L, exact, how = sup_abs(g, u, an.env, clock.sub(0.6))
        if L is not None and L is not sp.oo and is_finite_expr(L):
            Ls = an.show(L)
            rel = "=" if exact else "<="
            return _v(name, "proved", f"L-smooth in {u} with L {rel} {Ls}: sup |∂²ℓ/∂{u}²| over {u} ({how})",
                      {"L": Ls, "L_exact": exact, "second_derivative": an.show(g), "method": how})
        w = _growth_witness(an, g, u, clock, f"∂²ℓ/∂{u}²")
        if w is not None:
            return _v(name, "disproved", f"not L-smooth in {u}: the second derivative is unbounded",
                      {"second_derivative": an.show(g)}, w)
        return _v(name, "unknown", f"not decided: no finite bound on ∂²ℓ/∂{u}² was found and no growth was shown",
                  {"second_derivative": an.show(g)})
    if has_nonsmooth(e, S):
        return _v(name, "unknown", "not decided: non-smooth parts in several trained inputs")
    H = clock.step(lambda: sp.hessian(e, S), None)
    if H is None:
        return _v(name, "unknown", "not decided: the Hessian did not finish in time")
    for k, u in enumerate(S):
        g = clock.step(lambda k=k: sp.simplify(H[k, k]), H[k, k], cap=max(clock.left() / 6, 0.1))
        w = _growth_witness(an, g, u, clock.sub(0.5), f"∂²ℓ/∂{u}²")
        if w is not None:
            return _v(name, "disproved", f"not L-smooth: ∂²ℓ/∂{u}² is unbounded (the Hessian's norm is at least "
                                         "its largest diagonal entry)", {"hessian_entry": an.show(g)}, w)
    bounds = []
    for i in range(len(S)):
        for j in range(len(S)):
            r = an.env(H[i, j])
            if not r.bounded:
                return _v(name, "unknown", "not decided: no uniform bound on every Hessian entry was found")
            bounds.append(max(abs(r.lo), abs(r.hi)))
    top = max(bounds)
    L = sp.Rational(top.numerator, top.denominator) * len(S)
    return _v(name, "proved", f"L-smooth with L <= {L} (n · max |Hessian entry|, interval arithmetic)",
              {"L": str(L), "L_exact": False, "method": "interval arithmetic on the Hessian"})


def _smooth_piecewise(an: Analysis, dec: Decomposition, clock: Clock) -> Verdict:
    u = dec.u
    sups = []
    for i, piece in enumerate(dec.pieces):
        g = clock.step(lambda piece=piece: sp.simplify(sp.diff(piece, u, 2)), None)
        if g is None:
            return _v("smooth", "unknown", "not decided: a piece's second derivative did not simplify in time")
        a, b = dec.interval(i)
        L, exact, how = sup_abs(g, u, an.env, clock.sub(0.3), lo=a, hi=b)
        if L is None or not is_finite_expr(L):
            w = _growth_witness(an, g, u, clock, f"∂²ℓ/∂{u}²") if L is sp.oo else None
            if w is not None:
                return _v("smooth", "disproved", f"not L-smooth in {u}: the second derivative is unbounded", {}, w)
            return _v("smooth", "unknown", f"not decided: no bound on ∂²ℓ/∂{u}² on piece {i + 1}")
        sups.append((L, exact))
    L = clock.step(lambda: sp.simplify(sp.Max(*[s for s, _ in sups])), sp.Max(*[s for s, _ in sups]))
    exact = all(x for _, x in sups)
    return _v("smooth", "proved", f"L-smooth in {u} with L {'=' if exact else '<='} {an.show(L)}: the gradient is "
                                  "continuous and piecewise differentiable with |∂²ℓ/∂" + f"{u}²| <= L on every piece",
              {"L": an.show(L), "L_exact": exact, "method": "piecewise: sup of |ℓ''| over the pieces"})


def _smooth_instance(an: Analysis, clock: Clock) -> Verdict:
    flat = an.flat()
    for w in an.wrt:
        comps = flat.groups.get(w, ())
        if not comps:
            continue
        u = comps[0]
        g = clock.step(lambda u=u: sp.diff(flat.expr, u, 2), None)
        if g is None:
            continue
        env = RangeEnv({s: _dom_range(flat, s) for s in flat.symbols})
        saved = (an.env, an.back, an.scalar)
        an.env, an.back, an.scalar = env, {}, True
        try:
            wit = _growth_witness_flat(an, g, u, clock)
        finally:
            an.env, an.back, an.scalar = saved
        if wit is not None:
            wit["instance_size"] = flat.size
            return _v("smooth", "disproved", f"not L-smooth: ∂²ℓ/∂{u}² is unbounded (instance with {flat.size} "
                                             "components)", {}, wit)
    return _v("smooth", "unknown", "not decided for a loss over a class/batch axis (no unbounded Hessian entry "
                                   "found on the finite instance)")


def _growth_witness_flat(an: Analysis, g: sp.Expr, u: sp.Symbol, clock: Clock) -> dict | None:
    return _growth_witness(an, g, u, clock, f"∂²ℓ/∂{u}²")


# ---------------------------------------------------------------------------------------------------------
# robustness (bounded influence of the target)
def _target_ends(an: Analysis) -> tuple[list[tuple[sp.Expr, str, bool]], bool]:
    """The ends of the target's support for fixed inputs: (point, direction, attained) and whether it is finite."""
    y = an.target
    dom = an.problem.domains[y]
    lo: sp.Expr = sp.S.NegativeInfinity if dom.lower is None else sp.nsimplify(dom.lower)
    hi: sp.Expr = sp.S.Infinity if dom.upper is None else sp.nsimplify(dom.upper)
    lo_att, hi_att = not dom.lower_open and dom.lower is not None, not dom.upper_open and dom.upper is not None
    for a, b in an.problem.constraints:  # y >= scale (Pareto), y <= total_count (binomial): attained bounds
        if b == y:
            lo, lo_att = a, True
        if a == y:
            hi, hi_att = b, True
    finite = dom.integer and not (lo.is_infinite or hi.is_infinite)
    return [(lo, "+", lo_att), (hi, "-", hi_att)], bool(finite)


def check_robust(an: Analysis, clock: Clock) -> Verdict:
    name = "robust"
    y = an.target
    if y is None or y not in an.problem.domains:
        return _na(name, "not applicable: the loss has no target")
    if not an.scalar:
        return _v(name, "unknown", "not decided for a loss over a class axis (the influence of a vector target is "
                                   "not analysed)")
    e = an.tidy_expr
    ends, finite = _target_ends(an)
    per: dict[str, Any] = {}
    status = "proved"
    witness = None
    failing = None
    for u in an.wrt:
        g = clock.step(lambda u=u: sp.diff(e, u), None)
        if g is None:
            status = "unknown"
            continue
        info: dict[str, Any] = {}
        if finite:
            info["bounded"] = True
            info["why"] = "the target takes finitely many values for fixed inputs"
            dom = an.problem.domains[y]
            if dom.name == "binary":
                sups = []
                for val in (0, 1):
                    gv = g.subs(y, val)
                    L, exact, _ = sup_abs(gv, u, an.env, clock.sub(0.2))
                    sups.append(L if (L is not None and exact and is_finite_expr(L)) else None)
                if all(s is not None for s in sups):
                    info["gradient_bound"] = an.show(clock.step(lambda sups=sups: sp.simplify(sp.Max(*sups)),
                                                                sp.Max(*sups)))
            per[str(u)] = info
            continue
        bounded, limits, unbounded_at, bound, bound_exact = _behaviour_in_target(an, g, y, ends, clock)
        info["limits"] = limits
        if bounded:
            info["bounded"] = True
            if limits and all(lim == "0" for lim in limits.values()):
                info["redescending"] = True
            if bound is not None:
                info["bound"] = an.show(bound)
                info["bound_exact"] = bound_exact
            per[str(u)] = info
            continue
        at = unbounded_at if unbounded_at is not None else ends[-1][0]
        w = _growth_witness_target(an, g, y, at, clock)
        if w is not None:
            info["bounded"] = False
            per[str(u)] = info
            status = "disproved"
            witness = witness or w
            failing = failing or u
        else:
            per[str(u)] = info
            if status == "proved":
                status = "unknown"
    if status == "disproved":
        return _v(name, "disproved", f"not robust: ∂ℓ/∂{failing} grows without bound as the target moves to the end "
                                     "of its support", {"per_input": per}, witness)
    if status == "proved":
        red = [k for k, v in per.items() if v.get("redescending")]
        bounds = {k: v.get("bound") or v.get("gradient_bound") for k, v in per.items()}
        reason = "robust: every gradient stays bounded as the target ranges over its support"
        if finite:
            reason = "robust: the target takes finitely many values for fixed inputs, so the gradient is bounded"
        if red:
            reason += f"; redescending in {', '.join(red)} (the influence tends to 0)"
        details: dict[str, Any] = {"per_input": per, "bounds": bounds}
        if red:
            details["redescending"] = red
        return _v(name, "proved", reason, details)
    return _v(name, "unknown", "not decided: the limits of the gradient at the ends of the target's support were "
                               "not all found", {"per_input": per})


def _behaviour_in_target(an: Analysis, g: sp.Expr, y: sp.Basic, ends: list, clock: Clock
                         ) -> tuple[bool, dict[str, str | None], sp.Expr | None, sp.Expr | None, bool]:
    """(bounded?, limits at the open ends, an end where it may be unbounded, sup |g| or a bound, exact?).

    g is split at its breakpoints in y first (a piecewise gradient has one analytic piece next to each end);
    bounded = every piece continuous and every limit at an open end finite.
    """
    (lo, _, lo_att), (hi, _, hi_att) = ends
    if has_nonsmooth(g, [y]):
        dec = an.decompose(g, y, clock.sub(0.4))
        if dec is None:
            return False, {}, None, None, False
        segments = [(p, *dec.interval(i)) for i, p in enumerate(dec.pieces)]
    else:
        segments = [(g, lo, hi)]
    limits: dict[str, str | None] = {}
    unbounded_at = None
    bounded = True
    for at, d, attained, piece in ((lo, "+", lo_att, segments[0][0]), (hi, "-", hi_att, segments[-1][0])):
        if attained and at.is_finite is not False:
            continue  # a value at an attained end is finite wherever g is continuous
        lim = limit(piece, y, at, clock.sub(0.3), d)
        limits[str(at)] = None if lim is None else str(lim)
        if lim is None or not is_finite_expr(lim):
            bounded = False
            if lim is not None and not lim.free_symbols or unbounded_at is None:
                unbounded_at = at
    if bounded and not all(_continuous_in(p, y, an.env) for p, _, _ in segments):
        bounded = False
    if not bounded:
        return False, limits, unbounded_at, None, False
    sups = []
    exact = True
    for p, a, b in segments:
        L, ex, _ = sup_abs(p, y, an.env, clock.sub(0.3), lo=a, hi=b)
        if L is None or not is_finite_expr(L):
            return True, limits, None, None, False
        sups.append(L)
        exact = exact and ex
    bound = sups[0] if len(sups) == 1 else clock.step(lambda: sp.simplify(sp.Max(*sups)), sp.Max(*sups), cap=0.5)
    return True, limits, None, bound, exact


def _continuous_in(g: sp.Expr, y: sp.Basic, env: RangeEnv) -> bool:
    from .calculus import _continuous

    return _continuous(g, y, env)


def _growth_witness_target(an: Analysis, g: sp.Expr, y: sp.Basic, at: sp.Expr, clock: Clock) -> dict | None:
    dom = an.env(y)
    for row in _sample_row(an, SEED + 13, n=6):
        if clock.expired():
            return None
        exact = {s: _exact(v) for s, v in row.items() if s != y}
        gc = g.xreplace(exact)
        if gc.free_symbols - {y}:
            continue
        d = "-" if at is sp.oo or (at.is_finite and dom.hi == at) else "+"
        lim = limit(sp.Abs(gc), y, at, clock, d)
        if lim is not sp.oo:
            continue
        pts = _approach(at, dom)
        vals = []
        for p in pts:
            v = _mp_eval(an, g, {**exact, y: p})
            if v is None:
                break
            vals.append(abs(v))
        if len(vals) == len(pts) and all(b > a for a, b in zip(vals, vals[1:])):
            return {"test": f"|∂ℓ/∂input| grows without bound as the target {y} → {at}",
                    "fixed": {str(s): row[s] for s in exact}, str(y): [float(p) for p in pts],
                    "|gradient|": [fmt_num(v) for v in vals], "limit": f"oo as {y} → {at} (SymPy limit, these numbers)",
                    "checked_with": "mpmath, 50 significant digits"}
    return None


# ---------------------------------------------------------------------------------------------------------
# monotonicity away from the minimiser
def _candidates(an: Analysis, g: sp.Expr, u: sp.Basic, clock: Clock) -> list[sp.Expr] | None:
    sols = clock.step(lambda: sp.solve(g, u), None, cap=max(clock.left() / 4, 0.1))
    if sols is None:
        return None
    sols = [s for s in sols if not s.has(sp.I)]
    rng = an.env(u)
    if rng.positive and len(sols) == 2 and prove_zero(sols[0] + sols[1], clock.sub(0.2)):
        return [sp.Abs(sols[0])]  # ±a on a positive domain: the root is |a|
    return sols


def _sides_prove(an: Analysis, g: sp.Expr, u: sp.Basic, star: sp.Expr, clock: Clock) -> bool:
    env = an.env
    if prove_nonneg(g * (u - star), env, clock.sub(0.4)):
        return True
    rng = env(u)
    t = sp.Dummy("t", positive=True)
    s = sp.Dummy("s", positive=True)
    unit = Range(Fraction(0), Fraction(1), True, True)
    env2 = env.with_symbols({t: unit, s: POSITIVE})
    if math.isinf(rng.lo):
        left = g.subs(u, star - s)
    else:
        lo = _rat(rng.lo)
        left = g.subs(u, lo + (star - lo) * t)
    if math.isinf(rng.hi):
        right = g.subs(u, star + s)
    else:
        hi = _rat(rng.hi)
        right = g.subs(u, star + (hi - star) * t)
    return prove_nonneg(-left, env2, clock.sub(0.5)) and prove_nonneg(right, env2, clock.sub(0.5))


def _case_decompositions(an: Analysis, u: sp.Basic, clock: Clock) -> dict[int, Decomposition]:
    """Decompositions of the loss in u for each value of a binary target (cached in the facts)."""
    store = an.facts.setdefault("case_decompositions", {})
    if u in store and len(store[u]) == len(_target_cases(an)):
        return store[u]
    out = {}
    for case in _target_cases(an):
        dec = an.decompose(an.tidy_expr.xreplace(case), u, clock.sub(0.4))
        if dec is None:
            return {}
        out[int(next(iter(case.values())))] = dec
    store[u] = out
    return out


def _breakpoint_minimiser(an: Analysis, dec: Decomposition, clock: Clock) -> sp.Expr | None:
    """The breakpoint of a continuous piecewise function where the slope changes from <= 0 to >= 0."""
    u = dec.u
    for i, b in enumerate(dec.breakpoints):
        left, right = dec.pieces[i], dec.pieces[i + 1]
        if not prove_zero((left - right).subs(u, b), clock.sub(0.2)):
            continue
        dl = sp.diff(left, u).subs(u, b)
        dr = sp.diff(right, u).subs(u, b)
        if prove_nonneg(-dl, an.env, clock.sub(0.2)) and prove_nonneg(dr, an.env, clock.sub(0.2)):
            return b
    return None


def _minimiser(an: Analysis, u: sp.Basic, clock: Clock) -> str | None:
    e = an.tidy_expr
    g = clock.step(lambda: sp.diff(e, u), None)
    if g is None:
        return None
    y = an.target
    dom = an.problem.domains.get(y) if y is not None else None
    rng = an.env(u)
    lo = "-oo" if math.isinf(rng.lo) else str(_rat(rng.lo))
    hi = "oo" if math.isinf(rng.hi) else str(_rat(rng.hi))
    for a, b in an.problem.constraints:  # a trained input bounded by another symbol (a Pareto's scale <= y)
        if a == u:
            hi = str(b)
        if b == u:
            lo = str(a)
    dec = an.facts.get("decompositions", {}).get(u)
    if dec is not None:
        b = _breakpoint_minimiser(an, dec, clock)
        if b is not None:
            return f"{u} = {an.show(b)}"
    cdecs = _case_decompositions(an, u, clock) if has_nonsmooth(e, [u]) else {}
    if cdecs:
        parts = []
        for v, d in sorted(cdecs.items()):
            b = _breakpoint_minimiser(an, d, clock)
            if b is None:
                break
            parts.append(f"{u} = {an.show(b)} when {y} = {v}")
        else:
            return "; ".join(parts)
    if dom is not None and dom.name == "binary":
        parts = []
        for val in (0, 1):
            gv = g.subs(y, val)
            c = _candidates(an, gv, u, clock)
            if c:
                parts.append(f"{u} = {an.show(c[0])} when {y} = {val}")
            elif c == [] and prove_positive(gv, an.env, clock.sub(0.2)):
                parts.append(f"{u} → {lo} when {y} = {val}")
            elif c == [] and prove_positive(-gv, an.env, clock.sub(0.2)):
                parts.append(f"{u} → {hi} when {y} = {val}")
            else:
                return None
        return "; ".join(parts)
    c = _candidates(an, g, u, clock)
    if c and len(c) == 1:
        return f"{u} = {an.show(c[0])}"
    if c == []:
        if prove_positive(g, an.env, clock.sub(0.2)):
            return f"{u} → {lo}"
        if prove_positive(-g, an.env, clock.sub(0.2)):
            return f"{u} → {hi}"
    return None


def _sign_of(e: sp.Expr, env: RangeEnv, clock: Clock) -> int | None:
    if prove_zero(e, clock.sub(0.2)):
        return 0
    if prove_nonneg(e, env, clock.sub(0.3)):
        return 1
    if prove_nonneg(-e, env, clock.sub(0.3)):
        return -1
    return None


def _piecewise_unimodal(an: Analysis, e: sp.Expr, dec: Decomposition, clock: Clock) -> bool:
    """Along u: the slope of every piece, and the value steps into and out of every breakpoint, never go up and
    then down again (non-increasing, then non-decreasing)."""
    u = dec.u
    moves: list[int | None] = []
    for i, piece in enumerate(dec.pieces):
        d, env2 = _restricted_env(an, dec, i, sp.diff(piece, u))
        p2, _ = _restricted_env(an, dec, i, piece)
        if not analytic_on_domain(p2, [s for s in p2.free_symbols if isinstance(s, sp.Dummy)] or [u], env2)[0]:
            return False  # a pole inside a piece: the slope's sign says nothing about monotonicity
        moves.append(_sign_of(d, env2, clock))
        if i < len(dec.breakpoints):
            b = dec.breakpoints[i]
            at = e.subs(u, b)
            moves.append(_sign_of(at - piece.subs(u, b), an.env, clock))
            moves.append(_sign_of(dec.pieces[i + 1].subs(u, b) - at, an.env, clock))
    if any(m is None for m in moves):
        return False
    rising = False
    for m in moves:
        if m == 1:
            rising = True
        elif m == -1 and rising:
            return False
    return True


def check_monotone(an: Analysis, clock: Clock) -> Verdict:
    name = "monotone"
    per: dict[str, str] = {}
    minimisers: dict[str, str] = {}
    status = "proved"
    witness = None
    failing = None
    for k, u in enumerate(an.wrt):
        sub = Clock(clock.left() / (len(an.wrt) - k), clock.cap)
        cv = an.convex_in.get(str(u))
        decided = False
        if cv is not None and cv.status == "proved":
            per[str(u)] = "convex in this input: non-increasing before its minimiser, non-decreasing after"
            decided = True
        elif an.scalar and has_nonsmooth(an.tidy_expr, [u]):
            dec = an.facts.get("decompositions", {}).get(u)
            cdecs = _case_decompositions(an, u, sub)
            if dec is not None and _piecewise_unimodal(an, an.tidy_expr, dec, sub):
                per[str(u)] = "piecewise: slopes and steps fall, then rise, along the input"
                decided = True
            elif cdecs and all(_piecewise_unimodal(an, an.tidy_expr.xreplace({an.target: v}), d, sub)
                               for v, d in cdecs.items()):
                per[str(u)] = "piecewise, for each target value: slopes and steps fall, then rise, along the input"
                decided = True
        elif an.scalar:
            g = sub.step(lambda u=u: sp.diff(an.tidy_expr, u), None)
            if g is not None and _continuous_in(an.tidy_expr, u, an.env):
                cands = _candidates(an, g, u, sub)
                if cands is not None and len(cands) == 1 and _sides_prove(an, g, u, cands[0], sub):
                    per[str(u)] = f"∂ℓ/∂{u} <= 0 below {an.show(cands[0])} and >= 0 above it"
                    decided = True
                elif cands == [] and (prove_nonneg(g, an.env, sub.sub(0.3)) or prove_nonneg(-g, an.env, sub.sub(0.3))):
                    per[str(u)] = f"∂ℓ/∂{u} has one sign on the whole domain: monotone, minimiser at an end"
                    decided = True
        if not decided:
            flat = an.flat()
            comps = flat.groups.get(u, ())
            w = find_unimodality_violation(flat, comps[0], min(sub.left() * 0.5, 1.0)) if len(comps) == 1 else None
            if w is not None:
                status = "disproved"
                witness = witness or w
                failing = failing or u
                per[str(u)] = "not monotone away from the minimiser (a local maximum in between)"
            else:
                per[str(u)] = "not decided"
                if status == "proved":
                    status = "unknown"
        if an.scalar:
            m = _minimiser(an, u, sub)
            if m is not None:
                minimisers[str(u)] = m
    details: dict[str, Any] = {"per_input": per}
    if minimisers:
        details["minimiser"] = minimisers
    if status == "proved":
        where = "; ".join(minimisers.values()) if minimisers else "not computed"
        return _v(name, "proved", f"monotone away from the minimiser in every trained input (minimiser: {where})",
                  details)
    if status == "disproved":
        return _v(name, "disproved", f"not monotone in {failing}: the loss rises and then falls again (re-checked "
                                     "with mpmath at 50 digits)", details, witness)
    return _v(name, "unknown", "not decided: neither convexity nor the sign of the derivative settled it, and no "
                               "counterexample was found", details)


# ---------------------------------------------------------------------------------------------------------
# symmetry
def _prediction_input(an: Analysis) -> sp.Basic | None:
    if an.loss is not None and an.loss.metadata.get("prediction"):
        want = str(an.loss.metadata["prediction"])
        for u in an.wrt:
            if str(u) == want:
                return u
    y = an.target
    ydom = an.problem.domains.get(y)
    for u in an.wrt:
        dom = an.problem.domains.get(u)
        if ydom is not None and dom is not None and dom.name == ydom.name and str(u).lower() in PREDICTION_NAMES:
            return u
    return None


def check_symmetric(an: Analysis, clock: Clock) -> Verdict:
    name = "symmetric"
    if not an.scalar:
        return _na(name, "not applicable: the prediction and the target are vectors of different kinds")
    u = _prediction_input(an)
    y = an.target
    if u is None:
        return _na(name, "not applicable: no trained input lives in the target's space as its prediction "
                         f"(inputs named {', '.join(PREDICTION_NAMES[:4])}, ... with the target's domain)")
    e = an.tidy_expr
    swapped = e.xreplace({u: y, y: u})
    d_swap = swapped - e
    r = sp.Dummy("r", real=True)
    plus, minus = e.subs(u, y + r), e.subs(u, y - r)
    d_res = plus - minus
    details: dict[str, Any] = {"prediction": str(u), "target": str(y)}
    # cheap identities first, then a numeric counterexample (cheap too), then the expensive simplifications
    quick = Clock(min(clock.left() * 0.2, 0.5))
    swap_ok = prove_zero(d_swap, quick)
    res_ok = prove_zero(d_res, quick)
    if not res_ok:
        w = _residual_witness(an, e, u, y, clock)
        if w is not None:
            _residual_details(an, d_res, r, u, y, clock, details)
            return _v(name, "disproved", f"asymmetric: over- and under-predicting {y} by the same amount cost "
                                         "different losses", details, w)
    if not swap_ok:
        w = _swap_witness(an, e, u, y, clock)
        if w is not None:
            return _v(name, "disproved", f"not symmetric: L({u}, {y}) ≠ L({y}, {u})", details, w)
    swap_ok = swap_ok or prove_zero(d_swap, clock.sub(0.5), an.env)
    res_ok = res_ok or prove_zero(d_res, clock.sub(0.9), an.env.with_symbols({r: Range()}))
    if swap_ok and res_ok:
        return _v(name, "proved", f"L({u}, {y}) = L({y}, {u}) and L({y} + r) = L({y} − r) identically", details)
    return _v(name, "unknown", "not decided: the symmetry identities did not simplify and no counterexample was "
                               "found", details)


def _residual_details(an: Analysis, d_res: sp.Expr, r: sp.Dummy, u: sp.Basic, y: sp.Basic, clock: Clock,
                      details: dict[str, Any]) -> None:
    """The residual asymmetry as a formula, and the constants' values that would make it vanish."""
    rr = sp.Symbol("r", real=True)
    simple = clock.step(lambda: sp.simplify(d_res.xreplace({r: rr})), None, cap=0.5)
    if simple is None:
        return
    details["residual_difference"] = f"L({u} = {y} + r) − L({u} = {y} − r) = {an.show(simple)}"
    consts = [c for c in simple.free_symbols if c not in (rr, y, u) and c not in an.wrt]
    if consts:
        sol = clock.step(lambda: sp.solve(simple, consts[0]), None, cap=0.5)
        if sol:
            details["symmetric_only_when"] = f"{consts[0]} = {', '.join(map(str, sol))}"


def _residual_witness(an: Analysis, e: sp.Expr, u: sp.Basic, y: sp.Basic, clock: Clock) -> dict | None:
    for row in _sample_row(an, SEED + 19, n=10):
        for rv in (1, 2, sp.Rational(1, 2), 5):
            if clock.expired():
                return None
            subs = {s: _exact(v) for s, v in row.items() if s != u}
            yv = subs.get(y)
            if yv is None:
                continue
            va = _mp_eval(an, e, {**subs, u: yv + rv})
            vb = _mp_eval(an, e, {**subs, u: yv - rv})
            if va is None or vb is None:
                continue
            if abs(va - vb) > 1e-30 * (1 + abs(va) + abs(vb)):
                fixed = {str(s): float(v) for s, v in subs.items()}
                return {"test": f"L({u} = {y} + r) ≠ L({u} = {y} − r)", "fixed": fixed, "r": float(rv),
                        f"L({u} = {y} + r)": fmt_num(va), f"L({u} = {y} − r)": fmt_num(vb),
                        "checked_with": "mpmath, 50 significant digits"}
    return None


def _swap_witness(an: Analysis, e: sp.Expr, u: sp.Basic, y: sp.Basic, clock: Clock) -> dict | None:
    for row in _sample_row(an, SEED + 23, n=10):
        if clock.expired():
            return None
        subs = {s: _exact(v) for s, v in row.items()}
        if u not in subs or y not in subs:
            continue
        va = _mp_eval(an, e, subs)
        vb = _mp_eval(an, e, {**subs, u: subs[y], y: subs[u]})
        if va is not None and vb is not None and abs(va - vb) > 1e-30 * (1 + abs(va) + abs(vb)):
            return {"test": f"L({u}, {y}) ≠ L({y}, {u})", "at": {str(s): float(v) for s, v in subs.items()},
                    f"L({u}, {y})": fmt_num(va), f"L({y}, {u}) (swapped)": fmt_num(vb),
                    "checked_with": "mpmath, 50 significant digits"}
    return None


# ---------------------------------------------------------------------------------------------------------
# sparsity (penalties)
def check_sparse(an: Analysis, clock: Clock) -> Verdict:
    name = "sparse"
    pen = an.loss.penalty if an.loss is not None else None
    if pen is None:
        details: dict[str, Any] = {}
        dif = an.facts.get("differentiable")
        if dif is not None and dif.status == "disproved":
            details["kinks_in_loss"] = dif.details.get("nondifferentiable_set")
            details["note"] = ("the loss itself has kinks there: at the optimum some examples are fitted exactly "
                               "(zero residuals), as in least absolute deviations")
        return _na(name, "not applicable: the loss has no penalty (derive with prior='laplace' for an L1 penalty)",
                   **details)
    w = pen.weight
    g = clock.step(lambda: sp.diff(pen.expr, w), None)
    if g is None:
        return _v(name, "unknown", "not decided: the penalty's derivative did not finish in time")
    right = limit(g, w, sp.Integer(0), clock.sub(0.4), "+")
    left = limit(g, w, sp.Integer(0), clock.sub(0.4), "-")
    if right is None or left is None or not (is_finite_expr(right) and is_finite_expr(left)):
        return _v(name, "unknown", "not decided: the one-sided derivatives of the penalty at 0 were not found",
                  {"penalty": str(pen.expr)})
    env = RangeEnv({s: (POSITIVE if s.is_positive else Range()) for s in pen.expr.free_symbols})
    gap = sp.simplify(right - left)
    details = {"penalty": str(pen.expr), "kind": pen.kind, "left_derivative_at_0": str(left),
               "right_derivative_at_0": str(right)}
    if prove_positive(gap, env, clock.sub(0.5)):
        details["subdifferential_at_0"] = f"[{left}, {right}]"
        return _v(name, "proved", f"promotes exact zeros: the subdifferential of the {pen.kind} penalty at 0 is the "
                                  f"interval [{left}, {right}] (a kink), so w = 0 stays optimal while the data "
                                  "gradient lies inside it", details)
    if prove_zero(gap, clock.sub(0.5)):
        subs = {s: sp.Integer(1) for s in pen.expr.free_symbols if s != w}
        h = sp.Rational(1, 10**20)
        f0, fp, fm = (_mp_eval(an, pen.expr, {**subs, w: v}) for v in (sp.Integer(0), h, -h))
        if f0 is None or fp is None or fm is None:
            return _v(name, "unknown", "not decided: the penalty could not be evaluated near 0", details)
        rq, lq = (fp - f0) * 10**20, (f0 - fm) * 10**20
        witness = {"test": "the penalty is differentiable at 0: its subdifferential is the single point "
                           f"{sp.simplify(right)}, so any non-zero data gradient moves w off 0",
                   "fixed": {str(s): 1.0 for s in subs}, "w": 0.0, "h": 1e-20,
                   "right_difference_quotient": fmt_num(rq), "left_difference_quotient": fmt_num(lq),
                   "checked_with": "mpmath, 50 significant digits"}
        details["subdifferential_at_0"] = f"{{{right}}}"
        return _v(name, "disproved", f"does not promote exact zeros: the {pen.kind} penalty is differentiable at 0 "
                                     f"(derivative {right}), its subdifferential is a single point", details, witness)
    return _v(name, "unknown", "not decided: the sign of the gap between the one-sided derivatives at 0", details)


# ---------------------------------------------------------------------------------------------------------
# trainability
def _surrogate(an: Analysis) -> str:
    key = str(an.loss.metadata.get("metric", "")) if an.loss is not None else ""
    return SURROGATES.get(key, SURROGATES["default"])


def check_trainable(an: Analysis, clock: Clock) -> Verdict:
    name = "trainable"
    flat = an.flat()
    e = flat.expr
    xs = flat.xs
    if not xs:
        return _na(name, "not applicable: nothing is trained")
    grads = []
    for x in xs:
        g = clock.step(lambda x=x: sp.diff(e, x).replace(lambda n: isinstance(n, sp.DiracDelta), lambda n: 0), None,
                       cap=max(clock.left() / (2 * len(xs)), 0.1))
        if g is None:
            return _v(name, "unknown", "not decided: the gradient did not finish in time")
        grads.append(g)
    zero = all(prove_zero(g, clock.sub(0.3)) for g in grads)
    instance = "" if an.scalar else f" (on the instance with {flat.size} components)"
    if zero:
        w = _flat_witness(an, clock)
        if w is not None:
            return _v(name, "disproved", "metric only: the gradient is zero wherever it exists and undefined on the "
                                         f"jumps{instance}, so gradient descent gets no signal",
                      {"gradient_almost_everywhere": "0", "suggested_surrogate": _surrogate(an)}, w)
        return _v(name, "unknown", "the gradient is 0 almost everywhere, but no jump was located for a witness",
                  {"suggested_surrogate": _surrogate(an)})
    # a non-zero gradient somewhere (re-checked) proves trainability: kinks and jumps are measure-zero sets
    rng = np.random.default_rng(SEED + 29)
    vals = flat.sample_all(rng, 64, special=0.1)
    for x, g in zip(xs, grads):
        gv = flat.eval_np(vals, g)
        idx = np.flatnonzero(np.isfinite(gv) & (np.abs(gv) > 1e-6))
        for i in idx[:5]:
            point = {s: float(v[i]) for s, v in vals.items()}
            mv = flat.eval_mp(point, g)
            if mv is not None and abs(mv) > 1e-10:
                jumps = [n for n in nonsmooth_nodes(e, xs) if isinstance(n, (sp.Heaviside, sp.sign, sp.floor))]
                reason = (f"trainable: the gradient exists almost everywhere and is not identically zero "
                          f"(∂ℓ/∂{x} = {float(mv):.6g} at the sampled point){instance}")
                details: dict[str, Any] = {"example_point": point_dict(flat, point, flat.symbols),
                                           f"gradient_{x}": fmt(mv)}
                if jumps:
                    details["note"] = "the loss also jumps; the gradient ignores the jumps"
                return _v(name, "proved", reason, details)
    return _v(name, "unknown", "not decided: no point with a non-zero gradient was found")


def _flat_witness(an: Analysis, clock: Clock) -> dict | None:
    """A point with zero difference quotients in every trained component and a nearby jump of the value."""
    import mpmath

    flat = an.flat()
    e = flat.expr
    steps = [n for n in sp.preorder_traversal(e) if isinstance(n, (sp.Heaviside, sp.sign, sp.Piecewise, sp.floor))
             and depends_on(n, flat.xs)]
    fn = flat.mp_fn()
    rng = np.random.default_rng(SEED + 31)
    vals = flat.sample_all(rng, 16, special=0.0)
    if not vals:
        return None
    m = len(next(iter(vals.values())))
    for i in range(m):
        if clock.expired():
            return None
        row = {s: float(v[i]) for s, v in vals.items()}
        with mpmath.workdps(50):
            def f(point, row=row):
                try:
                    return fn(*[mpmath.mpf(point.get(s, row[s])) for s in flat.symbols])
                except (ValueError, ZeroDivisionError, TypeError):
                    return None

            f0 = f({})
            if f0 is None or isinstance(f0, mpmath.mpc):
                continue
            h = 1e-6
            quotients = {}
            for x in flat.xs:
                fp = f({x: row[x] + h})
                quotients[flat.name(x)] = None if fp is None else fmt((fp - f0) / h)
            if any(q is None or q != 0 for q in quotients.values()):
                continue
            # a jump: move the first component across the zero of a step's argument
            for node in steps:
                arg = node.args[0] if not isinstance(node, sp.Piecewise) else None
                if arg is None:
                    continue
                x = next((s for s in flat.xs if s in arg.free_symbols), None)
                if x is None:
                    continue
                sol = sp.solve(arg.xreplace({s: _exact(row[s]) for s in flat.symbols if s != x}), x)
                if not sol:
                    continue
                b = float(sol[0])
                fa, fb = f({x: b - 1e-3}), f({x: b + 1e-3})
                if fa is None or fb is None or fa == fb:
                    continue
                return {"test": "zero gradient almost everywhere, the value jumps at the step",
                        "point": point_dict(flat, row, flat.symbols), "f(point)": fmt(f0),
                        "forward_difference_quotients(h=1e-6)": quotients,
                        "jump": {flat.name(x): b, "f(left, -1e-3)": fmt(fa), "f(right, +1e-3)": fmt(fb)},
                        "checked_with": "mpmath, 50 significant digits"}
    return None


# ---------------------------------------------------------------------------------------------------------
# properness (score with zero mean at the true parameter)
def _density(an: Analysis) -> sp.Expr | None:
    loss = an.loss
    if loss is None:
        return None
    if loss.distribution is not None and loss.kind == "nll":
        try:
            return loss.distribution.density(loss.target, loss.parameters)
        except Exception:  # a density builder that cannot take these parameter expressions
            return sp.exp(-loss.nll)
    if loss.kind == "custom" and loss.metadata.get("density"):
        return sp.exp(-loss.nll)
    return None


def check_proper(an: Analysis, clock: Clock) -> Verdict:
    name = "proper"
    loss = an.loss
    if loss is None or not (loss.kind == "nll" or (loss.kind == "custom" and loss.metadata.get("density"))):
        return _na(name, "not applicable: not a negative log-likelihood (no distribution to take expectations under)")
    if not an.scalar:
        return _v(name, "unknown", "not decided for class-axis distributions (the expectation over a symbolic number "
                                   "of classes is not computed)")
    p = _density(an)
    if p is None:
        return _v(name, "unknown", "not decided: the density is not available")
    y = an.target
    dom = an.problem.domains[y]
    ends, _ = _target_ends(an)
    (lo, _, _), (hi, _, _) = ends
    per: dict[str, str] = {}
    status = "proved"
    witness = None
    for k, u in enumerate(an.wrt):
        sub = Clock(clock.left() / (len(an.wrt) - k), clock.cap)
        g = loss.gradient.get(u)
        if g is None:
            g = sp.diff(loss.expr, u)
        integrand = g * p

        def expectation(integrand=integrand) -> sp.Expr:
            if dom.name == "binary":
                return sp.Add(*[integrand.subs(y, v) for v in (0, 1)])
            if dom.integer:
                return sp.summation(integrand, (y, lo, hi))
            return sp.integrate(integrand, (y, lo, hi))

        val = sub.step(expectation, None, cap=max(sub.left() * 0.7, 0.05))
        val = _unwrap(val, sub)
        if val is not None and prove_zero(val, sub.sub(0.5)):
            ok_num = sub.step(lambda g=g, sub=sub: _numeric_expectation(an, g, p, sub), None, cap=max(sub.left(), 0.05))
            if ok_num is not None and ok_num[1] > 1e-8:
                per[str(u)] = f"conflict: symbolic 0 but numerically {ok_num[1]:.3g}"
                status = "unknown"
            else:
                per[str(u)] = "E[∂ℓ/∂" + f"{u}] = 0 (symbolic)"
            continue
        num = sub.step(lambda g=g, sub=sub: _numeric_expectation(an, g, p, sub), None, cap=max(sub.left() * 0.8, 0.05))
        if val is not None and num is not None and num[1] > 1e-8:
            status = "disproved"
            witness = witness or num[0]
            per[str(u)] = f"E[∂ℓ/∂{u}] = {an.show(val)} ≠ 0"
            continue
        per[str(u)] = "not decided" + (f" (numerically |E| ≈ {num[1]:.2g} at one parameter value)" if num else "")
        if status == "proved":
            status = "unknown"
    details = {"score_mean": per, "note": "for a normalised density the expected NLL exceeds its value at the true "
                                          "parameter by a KL divergence (Gibbs' inequality)"}
    if status == "proved":
        return _v(name, "proved", "proper: the score has mean zero at the true parameter, E[∂ℓ/∂θ] = 0 for every "
                                  "trained input (symbolic expectation under y ~ p(·|θ))", details)
    if status == "disproved":
        moving = [str(u) for u in an.wrt if any(u in (a, b) for a, b in an.problem.constraints)]
        why = (f" (the support depends on {', '.join(moving)}, so the expected loss is not stationary at the true "
               "parameter: its minimum sits on the support's boundary)") if moving else ""
        return _v(name, "disproved", "the score does not have mean zero at the true parameter" + why, details,
                  witness)
    return _v(name, "unknown", "not decided: the expectation of the score was not tractable within the budget",
              details)


def _unwrap(val: sp.Expr | None, clock: Clock) -> sp.Expr | None:
    if val is None or val.has(sp.Integral, sp.Sum):
        return None
    if isinstance(val, sp.Piecewise):
        first, cond = val.args[0]
        ok = clock.step(lambda: sp.simplify(cond), None, cap=0.5)
        return first if ok is sp.true else None
    return val


def _end_value(end: sp.Expr, row: dict, mpmath):
    if end is sp.oo:
        return mpmath.inf
    if end is sp.S.NegativeInfinity:
        return -mpmath.inf
    return mpmath.mpf(float(end.xreplace({s: _exact(v) for s, v in row.items()})))


def _numeric_expectation(an: Analysis, g: sp.Expr, p: sp.Expr, clock: Clock) -> tuple[dict, float] | None:
    """E[g] at one sampled parameter value with mpmath (quad or nsum at 30 digits): (witness, |E|)."""
    import mpmath

    y = an.target
    dom = an.problem.domains[y]
    (lo, _, _), (hi, _, _) = _target_ends(an)[0]  # the support for fixed inputs (y >= scale for a Pareto)
    rows = _sample_row(an, SEED + 37, n=4)
    for row in rows:
        if clock.expired():
            return None
        subs = {s: _exact(v) for s, v in row.items() if s != y}
        f = sp.lambdify(y, (g * p).xreplace(subs), modules=["mpmath"])
        an.keep.append(f)  # lambdify's finalizer must not run inside a time budget (its alarm would be lost)
        try:
            with mpmath.workdps(30):
                if dom.name == "binary":
                    val = f(0) + f(1)
                elif dom.integer:
                    a, b = (_end_value(end, row, mpmath) for end in (lo, hi))
                    val = mpmath.nsum(f, [a, b])
                else:
                    a, b = (_end_value(end, row, mpmath) for end in (lo, hi))
                    # split at the parameters' values: kinks and peaks of the integrand sit there
                    cuts = sorted({float(v) for v in subs.values() if a < float(v) < b})
                    val = mpmath.quad(f, [a, *cuts, b])
        except (ValueError, ZeroDivisionError, TypeError, OverflowError):
            continue
        if isinstance(val, mpmath.mpc):
            val = val.real
        return ({"test": "E[∂ℓ/∂θ] under y ~ p(·|θ) at these parameter values",
                 "fixed": {str(s): float(v) for s, v in subs.items()}, "expectation": fmt(val),
                 "checked_with": "mpmath quad/nsum, 30 digits"}, float(abs(val)))
    return None
