"""The registry of likelihoods: look-up by name (case-insensitive, with aliases)."""

from __future__ import annotations

from ..errors import UnknownNameError
from .base import Distribution, Param, VectorSymbols
from .distributions import ENTRIES, LOG_DENSITIES

__all__ = ["Distribution", "Param", "VectorSymbols", "REGISTRY", "get", "names", "LOG_DENSITIES"]

REGISTRY: dict[str, Distribution] = {d.name: d for d in ENTRIES}


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "").replace(" ", "")


_LOOKUP: dict[str, Distribution] = {}
for _d in ENTRIES:
    for _n in (_d.name, *_d.aliases):
        _LOOKUP.setdefault(_key(_n), _d)


def names() -> list[str]:
    """The canonical names of every registry entry, in registry order."""
    return list(REGISTRY)


def get(name: str | Distribution) -> Distribution:
    """The entry called ``name`` (case-insensitive; aliases such as "gaussian" or "lorentz" work)."""
    if isinstance(name, Distribution):
        return name
    if not isinstance(name, str):
        raise UnknownNameError("distribution", repr(name), names())
    hit = _LOOKUP.get(_key(name))
    if hit is None:
        raise UnknownNameError("distribution", name, [*REGISTRY, *(a for d in ENTRIES for a in d.aliases)])
    return hit
