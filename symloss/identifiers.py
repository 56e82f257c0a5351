"""Names that reach generated code (Python, NumPy, PyTorch, JAX, C) or LaTeX.

A parameter or target name typed by a user ends up as a Python argument, a C
local variable and a LaTeX label.  :func:`validate_identifier` rejects the
names that would break (or silently shadow something in) one of those
outputs; :func:`safe_identifier` renames instead of rejecting, for places where
a name is derived rather than chosen; :func:`latex_escape` protects LaTeX text.
"""

from __future__ import annotations

import builtins
import keyword
import re
import unicodedata
from collections.abc import Collection, Mapping
from types import MappingProxyType

from .errors import InvalidIdentifierError

__all__ = [
    "MAX_IDENTIFIER_LENGTH",
    "RESERVED",
    "PYTHON_KEYWORDS",
    "PYTHON_BUILTINS",
    "C_KEYWORDS",
    "C_MATH_FUNCTIONS",
    "GREEK_TO_ASCII",
    "validate_identifier",
    "safe_identifier",
    "latex_escape",
]

MAX_IDENTIFIER_LENGTH = 64

#: Names the generated templates use themselves (modules, helpers, arguments).
#: ``target`` is deliberately absent: it is a fine name for the target.
RESERVED: frozenset[str] = frozenset(
    {
        "np", "numpy", "torch", "jax", "jnp", "math", "F", "nn", "lax", "triton", "tl",
        "reduction", "weight", "full", "self", "ctx", "grad_output", "PARAMS", "TARGET",
        "loss", "grad", "value_and_grad", "os", "sys", "builtins",
    }
)  # fmt: skip

PYTHON_KEYWORDS: frozenset[str] = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)

# dir(builtins) also holds exit/quit/help... added by `site`: shadowing any of them is confusing
PYTHON_BUILTINS: frozenset[str] = frozenset(dir(builtins))

C_KEYWORDS: frozenset[str] = frozenset(
    {
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
        "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
        "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch",
        "typedef", "union", "unsigned", "void", "volatile", "while", "_Bool", "_Complex",
        "_Imaginary",
        # not keywords, but macros every C file that includes <math.h>/<stdbool.h> sees
        "bool", "true", "false", "NULL", "INFINITY", "NAN", "HUGE_VAL", "M_PI", "M_E",
        # the rest of <math.h>'s and <stddef.h>'s macros and types (the C target includes both)
        "HUGE_VALF", "HUGE_VALL", "FP_INFINITE", "FP_NAN", "FP_NORMAL", "FP_SUBNORMAL", "FP_ZERO",
        "FP_FAST_FMA", "FP_FAST_FMAF", "FP_FAST_FMAL", "FP_ILOGB0", "FP_ILOGBNAN", "MATH_ERRNO",
        "MATH_ERREXCEPT", "math_errhandling", "float_t", "double_t", "isgreater", "isgreaterequal",
        "isless", "islessequal", "islessgreater", "isunordered", "size_t", "ptrdiff_t", "wchar_t",
        "offsetof", "max_align_t",
    }
)  # fmt: skip

_C_MATH_BASE = (
    "acos asin atan atan2 cos sin tan acosh asinh atanh cosh sinh tanh exp exp2 expm1 frexp "
    "ldexp log log10 log1p log2 logb ilogb modf scalbn scalbln cbrt fabs hypot pow sqrt erf "
    "erfc lgamma tgamma ceil floor nearbyint rint lrint llrint round lround llround trunc fmod "
    "remainder remquo copysign nan nextafter nexttoward fdim fmax fmin fma"
).split()
#: <math.h> functions (C99) with their float/long double variants, and its classification macros.
C_MATH_FUNCTIONS: frozenset[str] = frozenset(
    [*_C_MATH_BASE, *(n + "f" for n in _C_MATH_BASE), *(n + "l" for n in _C_MATH_BASE)]
    + "isnan isinf isfinite isnormal signbit fpclassify".split()
)

#: Greek letters pasted from papers, and the ASCII names they stand for.  λ becomes
#: ``lam`` because ``lambda`` is a Python keyword.
GREEK_TO_ASCII: Mapping[str, str] = MappingProxyType(
    {
        "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ϵ": "epsilon",
        "ζ": "zeta", "η": "eta", "θ": "theta", "ϑ": "theta", "ι": "iota", "κ": "kappa",
        "λ": "lam", "μ": "mu", "ν": "nu", "ξ": "xi", "π": "pi", "ρ": "rho", "σ": "sigma",
        "ς": "sigma", "τ": "tau", "υ": "upsilon", "φ": "phi", "ϕ": "phi", "χ": "chi",
        "ψ": "psi", "ω": "omega",
        "Γ": "Gamma", "Δ": "Delta", "Θ": "Theta", "Λ": "Lambda", "Ξ": "Xi", "Π": "Pi",
        "Σ": "Sigma", "Φ": "Phi", "Ψ": "Psi", "Ω": "Omega",
    }
)  # fmt: skip

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INVALID_CHAR = re.compile(r"[^A-Za-z0-9_]")


def _describe_char(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"{ch!r} (U+{ord(ch):04X}{' ' + name if name else ''})"


def _problem(name: str, reserved: Collection[str]) -> str | None:
    """Why ``name`` is not a safe identifier, or None when it is."""
    if not name:
        return "it is empty"
    for ch in name:
        if not ch.isascii():
            # Python would NFKC-normalise look-alikes ('𝐱' -> 'x'): only plain ASCII is unambiguous
            return f"it contains the non-ASCII character {_describe_char(ch)}"
    if len(name) > MAX_IDENTIFIER_LENGTH:
        return f"it is {len(name)} characters long (at most {MAX_IDENTIFIER_LENGTH})"
    if not _IDENTIFIER.match(name):
        bad = _INVALID_CHAR.search(name)
        if bad is not None:
            return f"it contains {_describe_char(bad.group())}; use only letters, digits and underscores"
        return "it must start with a letter or an underscore"
    if name.startswith("__"):
        return "names starting with '__' are reserved for Python internals"
    if name in PYTHON_KEYWORDS:
        kind = "soft keyword" if name in keyword.softkwlist else "keyword"
        return f"it is a Python {kind}"
    if name in PYTHON_BUILTINS:
        return "it is a Python builtin and would shadow it in generated code"
    if name in C_KEYWORDS:
        return "it is a C keyword or standard macro and would break generated C code"
    if name in C_MATH_FUNCTIONS:
        return "it is a <math.h> function and would shadow it in generated C code"
    if name in RESERVED:
        return "it is used by symloss's generated code itself"
    if name in reserved:
        return "it is already taken"
    return None


def validate_identifier(name: str, *, role: str = "parameter", reserved: Collection[str] = ()) -> str:
    """Return ``name`` if it is safe as a ``role`` name in generated code; else raise.

    Safe means: ASCII ``[A-Za-z_][A-Za-z0-9_]*`` of at most 64 characters, no
    leading ``__``, and not a Python keyword, soft keyword or builtin, a C
    keyword, a ``<math.h>`` function, a name in :data:`RESERVED` or in
    ``reserved``.  Raises :class:`~symloss.errors.InvalidIdentifierError`
    with the reason and a suggested replacement.
    """
    if not isinstance(name, str):
        raise InvalidIdentifierError(f"a {role} name must be a string, not {type(name).__name__}")
    reason = _problem(name, reserved)
    if reason is None:
        return name
    shown = name if len(name) <= 80 else name[:77] + "..."
    raise InvalidIdentifierError(
        f"invalid {role} name {shown!r}: {reason}; try {safe_identifier(name, reserved=reserved)!r}"
    )


def safe_identifier(name: str, *, reserved: Collection[str] = ()) -> str:
    """A valid identifier derived deterministically from ``name``.

    Greek letters become their ASCII names, any other character outside
    ``[A-Za-z0-9_]`` becomes ``_``, leading ``__`` is shortened, a leading
    digit gets a ``_`` in front, and ``_`` is appended until
    :func:`validate_identifier` accepts the result (so ``lambda`` -> ``lambda_``,
    ``int`` -> ``int_``).  A valid name comes back unchanged.
    """
    name = str(name)
    if _problem(name, reserved) is None:
        return name
    base = "".join(GREEK_TO_ASCII.get(ch, ch) for ch in name)
    base = _INVALID_CHAR.sub("_", base)
    if base[:1].isdigit():
        base = "_" + base
    while base.startswith("__"):
        base = base[1:]
    if base in ("", "_"):
        base = "name"
    base = base[:MAX_IDENTIFIER_LENGTH]
    if _problem(base, reserved) is None:
        return base
    for k in range(1, MAX_IDENTIFIER_LENGTH):
        candidate = base[: MAX_IDENTIFIER_LENGTH - k] + "_" * k
        if candidate[:2] != "__" and _problem(candidate, reserved) is None:
            return candidate
    # only reached when `reserved` holds every underscore-padded variant
    stem = base[: MAX_IDENTIFIER_LENGTH - 12].rstrip("_") or "name"
    i = 0
    while True:
        candidate = f"{stem}_{i}"
        if _problem(candidate, reserved) is None:
            return candidate
        i += 1


_LATEX_SPECIALS = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (``& % $ # _ { } ~ ^ \\``) for ``\\text{}``/``\\mathrm{}``.

    One pass over the characters, so the backslashes that escaping inserts are
    never escaped again.
    """
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)
