"""The declarative shape of a registry entry.

An entry states the mathematics as data: parameters and their domains, the
target's support, where the density comes from (a ``sympy.stats`` class, or a
hand-written formula with a reference where SymPy has none), the canonical
links, and the names other libraries use for it.  The derivation engine
(:mod:`symloss.derive`) is the only code that acts on entries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import sympy as sp

__all__ = ["Param", "Distribution", "VectorSymbols"]


@dataclass(frozen=True)
class Param:
    """A distribution parameter: its name (torch's where torch has the distribution) and domain."""

    name: str
    domain: str
    description: str = ""
    trainable: bool = True  # integer parameters (a binomial's total_count) are data, not trained


@dataclass(frozen=True)
class VectorSymbols:
    """Symbols for class-axis (event) distributions: ``K`` classes indexed by ``k``, and the index ``j``
    of the component a gradient is taken with respect to."""

    K: sp.Symbol = sp.Symbol("K", integer=True, positive=True)
    k: sp.Symbol = sp.Symbol("k", integer=True, nonnegative=True)
    j: sp.Symbol = sp.Symbol("j", integer=True, nonnegative=True)


DensityBuilder = Callable[[sp.Expr, Mapping[str, sp.Expr]], sp.Expr]


@dataclass(frozen=True)
class Distribution:
    """One likelihood in the registry.

    ``density(y, params)`` returns p(y | params) as a SymPy expression on the
    support (no indicator of the support).  ``source`` says where it comes
    from: ``"sympy.stats.<Class>"`` or ``"hand-written"`` (then
    ``reference`` cites the formula).
    """

    name: str
    params: tuple[Param, ...]
    support: str
    density: DensityBuilder
    source: str
    reference: str
    canonical_links: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    torch: str | None = None  # the torch.distributions class with the same parameterisation
    scipy: str | None = None  # the scipy.stats distribution (parameter mapping in docs/tests)
    event: str = "scalar"  # "scalar" (elementwise) or "vector" (a class axis, the last axis)
    support_note: str = ""  # e.g. support bounds that depend on a parameter
    notes: str = ""
    default_fixed: Mapping[str, object] = field(default_factory=dict)

    @property
    def discrete(self) -> bool:
        from ..domains import get_domain

        return get_domain(self.support).integer

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        from ..errors import UnknownNameError

        for p in self.params:
            if p.name == name:
                return p
        raise UnknownNameError(f"parameter of {self.name}", name, self.param_names)
