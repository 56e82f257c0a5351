"""Special functions that must keep their log-form through SymPy's automatic evaluation."""

from __future__ import annotations

import sympy as sp

__all__ = ["loggamma"]


class loggamma(sp.loggamma):  # noqa: N801 - keeps SymPy's name so every printer treats it as log-gamma
    """log Γ(z) that stays log Γ at integer arguments.

    SymPy turns ``loggamma(n + 1)`` into ``log(gamma(n + 1))`` as soon as n is
    known to be an integer, which overflows in float64 for n ≥ 171 (a Poisson
    count of 1000 would give an infinite loss).  Numbers still evaluate.
    """

    @classmethod
    def eval(cls, z):
        if z.is_Number:
            return sp.loggamma(z)
        return None
