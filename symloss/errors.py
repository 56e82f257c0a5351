"""Every error symloss raises on purpose derives from :class:`SymlossError`.

The CLI prints such an error as one line and exits with status 1; anything
else is a bug in symloss.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "SymlossError",
    "UnknownNameError",
    "DomainError",
    "LinkError",
    "ParseError",
    "UnsafeExpressionError",
    "NormalizationError",
    "BudgetExceeded",
    "UnsupportedError",
    "FileExistsError_",
    "closest",
    "UnknownSymbolError",
    "InvalidIdentifierError",
]


class SymlossError(Exception):
    """Base class: a user-facing problem with a message that says what to do."""


class UnknownNameError(SymlossError, KeyError):
    """A distribution, parameter, link, prior, target or metric name that does not exist."""

    def __init__(self, kind: str, name: str, choices: Iterable[str] = ()):
        self.kind, self.name = kind, name
        self.choices = sorted(set(choices))
        hint = closest(name, self.choices)
        msg = f"unknown {kind} {name!r}"
        if hint:
            msg += f"; did you mean {' or '.join(repr(h) for h in hint)}?"
        elif self.choices:
            msg += f"; choose one of: {', '.join(self.choices)}"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0])


class DomainError(SymlossError, ValueError):
    """A value or a link that does not fit a parameter's domain."""


class LinkError(DomainError):
    """A link function that cannot be applied to a parameter."""


class ParseError(SymlossError, ValueError):
    """A formula that could not be read."""


class UnsafeExpressionError(ParseError):
    """A formula that uses a construct outside the whitelist (attribute access, calls to unknown names...)."""


class NormalizationError(SymlossError, ValueError):
    """A custom density that does not integrate (or sum) to one over its support."""


class BudgetExceeded(SymlossError, TimeoutError):
    """A symbolic step did not finish within its time budget."""


class UnsupportedError(SymlossError, NotImplementedError):
    """A combination symloss does not handle (yet); the message says which."""


class FileExistsError_(SymlossError, FileExistsError):
    """An output file exists already and ``force`` was not given."""


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The names in ``choices`` closest to ``name`` (case-insensitive), best first."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
    return [lowered[h] for h in hits]


class UnknownSymbolError(UnknownNameError, ParseError):
    """A name in a formula that is neither a variable nor a constant; the message suggests the closest."""


class InvalidIdentifierError(SymlossError, ValueError):
    """A name that cannot be used in generated code (keyword, builtin, C name, reserved, non-ASCII...)."""
