"""The composition engine: disciplined convex programming (DCP) rules over SymPy expressions.

``dcp_curvature(expr, variables, env)`` returns the curvature the rules can
prove for ``expr`` as a function of ``variables`` (everything else is a
constant ranging over its domain, described by the :class:`RangeEnv`):

* a constant is affine;  a sum of convex terms is convex;  a constant times a
  convex term is convex when the constant is provably >= 0 (concave when <= 0);
* f(g_1, …, g_n) is convex when f is a convex atom and every g_i is affine, or
  convex where f is increasing in argument i, or concave where f is decreasing
  in it — and symmetrically for concave atoms (Grant, Boyd & Ye 2006);
* the atoms, their curvature, monotonicity and domains come from
  :data:`symloss.analysis.atoms.ATOMS`; signs and domains are decided with
  sound interval arithmetic (:mod:`symloss.analysis.ranges`).

A proof by these rules holds for every value of the constants in their
domains.  "unknown" means only that the rules do not apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import sympy as sp

from .atoms import ATOMS, Atom, match_atom
from .ranges import RangeEnv

__all__ = ["Curvature", "dcp_curvature", "depends_on"]

CONSTANT, AFFINE, CONVEX, CONCAVE, UNKNOWN = "constant", "affine", "convex", "concave", "unknown"


@dataclass
class Curvature:
    kind: str
    atoms: set[str] = field(default_factory=set)
    blocked: sp.Basic | None = None  # the first sub-expression the rules could not classify

    @property
    def convex(self) -> bool:
        return self.kind in (CONSTANT, AFFINE, CONVEX)

    @property
    def concave(self) -> bool:
        return self.kind in (CONSTANT, AFFINE, CONCAVE)


def depends_on(expr: sp.Basic, variables: Iterable[sp.Basic]) -> bool:
    """Whether ``expr`` involves a variable (a Symbol, or any element of an IndexedBase)."""
    variables = tuple(variables)
    free = expr.free_symbols
    for v in variables:
        if isinstance(v, sp.IndexedBase):
            if v in free or v.label in free:
                return True
        elif v in free:
            return True
    return False


class _Engine:
    def __init__(self, variables: Iterable[sp.Basic], env: RangeEnv):
        self.vars = tuple(variables)
        self.env = env
        self.atoms: set[str] = set()
        self.blocked: sp.Basic | None = None
        self._memo: dict[sp.Basic, str] = {}

    def dep(self, e: sp.Basic) -> bool:
        return depends_on(e, self.vars)

    def is_var(self, e: sp.Basic) -> bool:
        if isinstance(e, sp.Indexed):
            return e.base in self.vars
        return e in self.vars

    def block(self, e: sp.Basic) -> str:
        if self.blocked is None:
            self.blocked = e
        return UNKNOWN

    # -- the rules -------------------------------------------------------------------------------------
    def curv(self, e: sp.Basic) -> str:
        hit = self._memo.get(e)
        if hit is None:
            hit = self._curv(e)
            self._memo[e] = hit
        return hit

    def _curv(self, e: sp.Basic) -> str:
        if not self.dep(e):
            return CONSTANT
        if self.is_var(e):
            return AFFINE
        if isinstance(e, sp.Add):
            kinds = [self.curv(a) for a in e.args]
            out = _add(kinds)
            return self.block(e) if out == UNKNOWN and UNKNOWN not in kinds else out
        if isinstance(e, sp.Mul):
            return self._mul(e)
        if isinstance(e, sp.Sum):
            if any(self.dep(lim[1]) or self.dep(lim[2]) for lim in e.limits):
                return self.block(e)
            return self.curv(e.function)  # a sum of copies (a non-negative number of them)
        if isinstance(e, sp.Pow) and e.base is not sp.E and self.dep(e.exp):
            return self._exponential(e)
        hit = match_atom(e)
        if hit is None:
            return self.block(e)
        atom, args = hit
        if atom.name == "power":
            base, p = args
            return self.compose(atom, (base, p), e, constant_args=(1,))
        return self.compose(atom, args, e)

    def compose(self, atom: Atom, args: tuple[sp.Expr, ...], e: sp.Basic, constant_args: tuple[int, ...] = ()) -> str:
        for i in constant_args:
            if self.dep(args[i]):
                return self.block(e)
        ranges = [self.env(a) for a in args]
        fc = atom.curvature_at(ranges)
        if fc == UNKNOWN or fc == "none":
            return self.block(e)
        result_convex = fc in (CONVEX, AFFINE)
        result_concave = fc in (CONCAVE, AFFINE)
        for i, a in enumerate(args):
            if i in constant_args:
                continue
            c = self.curv(a)
            if c in (CONSTANT, AFFINE):
                continue
            if c == UNKNOWN:
                return UNKNOWN
            m = atom.monotone_at(i, ranges)
            if fc in (CONVEX, AFFINE):
                ok = (m == "increasing" and c == CONVEX) or (m == "decreasing" and c == CONCAVE)
                result_convex = result_convex and ok
            if fc in (CONCAVE, AFFINE):
                ok = (m == "increasing" and c == CONCAVE) or (m == "decreasing" and c == CONVEX)
                result_concave = result_concave and ok
        self.atoms.add(atom.name)
        if result_convex and result_concave:
            return AFFINE
        if result_convex:
            return CONVEX
        if result_concave:
            return CONCAVE
        return self.block(e)

    def _mul(self, e: sp.Mul) -> str:
        const = [a for a in e.args if not self.dep(a)]
        var = [a for a in e.args if self.dep(a)]
        c = sp.Mul(*const)
        if len(var) == 1:
            return self._scaled(self.curv(var[0]), c, e)
        special = self._mul_atoms(var, e)
        if special is not None:
            return self._scaled(special, c, e)
        return self.block(e)

    def _scaled(self, k: str, c: sp.Expr, e: sp.Basic) -> str:
        if k in (CONSTANT, AFFINE, UNKNOWN):
            return k
        r = self.env(c)
        if r.is_zero:
            return CONSTANT
        if r.nonnegative:
            return k
        if r.nonpositive:
            return CONCAVE if k == CONVEX else CONVEX
        return self.block(e)

    def _mul_atoms(self, var: list[sp.Expr], e: sp.Basic) -> str | None:
        if len(var) != 2:
            return None
        a, b = var
        # quad-over-lin: x² · y⁻¹ with y > 0
        for num, den in ((a, b), (b, a)):
            if (isinstance(num, sp.Pow) and num.exp == 2 and isinstance(den, sp.Pow) and den.exp == -1):
                x, y = num.base, den.base
                return self.compose(ATOMS["quad_over_lin"], (x, y), e)
        # x·log(x) on x > 0
        for u, lg in ((a, b), (b, a)):
            if isinstance(lg, sp.log) and lg.args[0] == u:
                return self.compose(ATOMS["xlogx"], (u,), e)
        return None

    def _exponential(self, e: sp.Pow) -> str:
        # c^g = exp(g·log c) for a constant c > 0
        if self.dep(e.base):
            return self.block(e)
        if not self.env(e.base).positive:
            return self.block(e)
        return self.curv(sp.exp(e.exp * sp.log(e.base), evaluate=False))


def _add(kinds: list[str]) -> str:
    if UNKNOWN in kinds:
        return UNKNOWN
    has_vex, has_cave = CONVEX in kinds, CONCAVE in kinds
    if has_vex and has_cave:
        return UNKNOWN
    if has_vex:
        return CONVEX
    if has_cave:
        return CONCAVE
    if AFFINE in kinds:
        return AFFINE
    return CONSTANT


def dcp_curvature(expr: sp.Expr, variables: Iterable[sp.Basic], env: RangeEnv) -> Curvature:
    """The curvature of ``expr`` in ``variables`` that the composition rules prove."""
    eng = _Engine(variables, env)
    kind = eng.curv(expr)
    return Curvature(kind, eng.atoms, eng.blocked if kind == UNKNOWN else None)
