"""Escaping free text for LaTeX and Markdown.

Derivation texts, analysis reasons and references carry Unicode (σ, ∂, ², ‖,
→, §, accents).  pdflatex with only the base packages knows few of those
characters, so :func:`latex_text` turns the mathematical ones into inline
math, accented letters into their base letter plus accent command, and
anything else into a visible ``[U+XXXX]`` marker: the document always compiles.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["latex_text", "markdown_text", "latex_math_name"]

try:  # the shared escaper for LaTeX's special characters, when the identifiers module has it
    from ..identifiers import latex_escape as _escape_specials
except ImportError:  # pragma: no cover - kept for a checkout without it
    _SPECIALS = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                 "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}

    def _escape_specials(text: str) -> str:
        return "".join(_SPECIALS.get(ch, ch) for ch in text)


# characters typeset in math mode (text mode's OT1 fonts lack them, or print < > | wrongly)
_MATH_CHARS: dict[str, str] = {
    "<": "<", ">": ">", "|": "|",
    "α": r"\alpha", "β": r"\beta", "γ": r"\gamma", "δ": r"\delta", "ε": r"\varepsilon", "ϵ": r"\epsilon",
    "ζ": r"\zeta", "η": r"\eta", "θ": r"\theta", "ϑ": r"\vartheta", "ι": r"\iota", "κ": r"\kappa",
    "λ": r"\lambda", "μ": r"\mu", "ν": r"\nu", "ξ": r"\xi", "π": r"\pi", "ρ": r"\rho", "σ": r"\sigma",
    "ς": r"\varsigma", "τ": r"\tau", "υ": r"\upsilon", "φ": r"\varphi", "ϕ": r"\phi", "χ": r"\chi",
    "ψ": r"\psi", "ω": r"\omega", "Γ": r"\Gamma", "Δ": r"\Delta", "Θ": r"\Theta", "Λ": r"\Lambda",
    "Ξ": r"\Xi", "Π": r"\Pi", "Σ": r"\Sigma", "Φ": r"\Phi", "Ψ": r"\Psi", "Ω": r"\Omega",
    "∂": r"\partial", "∇": r"\nabla", "∑": r"\sum", "∏": r"\prod", "∫": r"\int", "√": r"\surd",
    "∞": r"\infty", "∈": r"\in", "∉": r"\notin", "⊂": r"\subset", "∪": r"\cup", "∩": r"\cap",
    "≤": r"\le", "≥": r"\ge", "≠": r"\ne", "≈": r"\approx", "≡": r"\equiv", "∝": r"\propto", "∼": r"\sim",
    "±": r"\pm", "∓": r"\mp", "×": r"\times", "·": r"\cdot", "⋅": r"\cdot", "∘": r"\circ", "÷": r"\div",
    "−": "-", "→": r"\to", "←": r"\leftarrow", "↦": r"\mapsto", "⇒": r"\Rightarrow", "⇔": r"\Leftrightarrow",
    "↔": r"\leftrightarrow", "‖": r"\|", "∣": r"\mid", "ℓ": r"\ell", "∀": r"\forall", "∃": r"\exists",
    "⁰": "^0", "¹": "^1", "²": "^2", "³": "^3", "⁴": "^4", "⁵": "^5", "⁶": "^6", "⁷": "^7", "⁸": "^8",
    "⁹": "^9", "⁻": "^-", "⁺": "^+", "ⁿ": "^n", "₀": "_0", "₁": "_1", "₂": "_2", "₃": "_3", "₄": "_4",
    "₅": "_5", "₆": "_6", "₇": "_7", "₈": "_8", "₉": "_9", "ᵢ": "_i", "ⱼ": "_j", "ₖ": "_k", "ₙ": "_n",
    "⌊": r"\lfloor", "⌋": r"\rfloor", "⌈": r"\lceil", "⌉": r"\rceil", "∅": r"\emptyset", "ℝ": r"\mathbb{R}",
    "ℕ": r"\mathbb{N}", "ℤ": r"\mathbb{Z}", "⟨": r"\langle", "⟩": r"\rangle",
    # the text forms of these need the TS1 font; their math forms do not
    "§": r"\mathsection", "¶": r"\mathparagraph", "†": r"\dagger", "‡": r"\ddagger", "«": r"\ll", "»": r"\gg",
}

# characters with a text-mode command in the LaTeX kernel
_TEXT_CHARS: dict[str, str] = {
    "…": r"\ldots{}", "—": "---", "–": "--", "‘": "`", "’": "'", "“": "``",
    "”": "''", "„": ",,", "\u00a0": "~", "©": "(c)",
    "ß": r"\ss{}", "æ": r"\ae{}", "Æ": r"\AE{}", "ø": r"\o{}", "Ø": r"\O{}", "å": r"\aa{}", "Å": r"\AA{}",
    "œ": r"\oe{}", "Œ": r"\OE{}", "ł": r"\l{}", "Ł": r"\L{}", "ı": r"\i{}", "°": r"\ensuremath{^\circ}",
    "\t": " ", "\n": " ", "\r": " ",
}

# the kernel writes these with the TS1 companion font, which a bare texlive-latex-base may have to build
# with METAFONT: a circumflex accent on an empty box, and math for ~ (prose uses it for "distributed as"), \\, $
_OT1_SAFE: dict[str, tuple[bool, str]] = {
    "^": (False, r"\^{}"), "~": (True, r"\sim"), "\\": (True, r"\backslash"), "$": (True, r"\$"),
}

# combining accents (after NFD decomposition) and the kernel's accent commands
_ACCENTS: dict[str, str] = {
    "\u0301": "'", "\u0300": "`", "\u0302": "^", "\u0308": '"', "\u0303": "~", "\u0304": "=", "\u0307": ".",
    "\u030c": "v", "\u0306": "u", "\u030b": "H", "\u0327": "c", "\u0328": "k", "\u030a": "r",
}


def _accented(ch: str) -> str | None:
    base, *marks = unicodedata.normalize("NFD", ch)
    if not base.isascii() or not marks or any(m not in _ACCENTS for m in marks):
        return None
    out = _escape_specials(base)
    for m in marks:
        out = "\\" + _ACCENTS[m] + "{" + out + "}"
    return out


def latex_text(text: str) -> str:
    """``text`` escaped for LaTeX text mode (inside ``\\text{}``, a paragraph or a table cell).

    LaTeX's special characters are escaped, Unicode mathematics becomes inline
    math (``σ²`` → ``$\\sigma^2$``) and any other character that pdflatex
    cannot typeset becomes ``[U+XXXX]``.
    """
    pieces: list[tuple[bool, str]] = []  # (is math, LaTeX)
    for ch in str(text):
        if ch in _MATH_CHARS:
            pieces.append((True, _MATH_CHARS[ch]))
        elif ch in _OT1_SAFE:
            pieces.append(_OT1_SAFE[ch])
        elif ch in _TEXT_CHARS:
            pieces.append((False, _TEXT_CHARS[ch]))
        elif ch.isascii():
            pieces.append((False, _escape_specials(ch)))
        else:
            accented = _accented(ch)
            pieces.append((False, accented if accented is not None else f"[U+{ord(ch):04X}]"))
    out: list[str] = []
    math: list[str] = []
    for is_math, tex in pieces:
        if is_math:
            math.append(tex)
            continue
        if math:  # adjacent math characters share one $...$ so τ² keeps its superscript on τ
            out.append(_math_run(math))
            math = []
        out.append(tex)
    if math:
        out.append(_math_run(math))
    return "".join(out)


def _math_run(parts: list[str]) -> str:
    # a command followed by a letter needs a separator: \tau x, not \taux
    body = ""
    for p in parts:
        if body and re.search(r"\\[A-Za-z]+$", body) and p[:1].isalpha():
            body += " "
        body += p
    return "$" + body + "$"


# the characters that start emphasis, code, links, HTML, table cells or math; not ( ) which
# MathJax may take for \( \) delimiters once escaped
_MD_SPECIALS = re.compile(r"([\\`*_\[\]<>|$~])")


def markdown_text(text: str) -> str:
    """``text`` escaped for Markdown prose and table cells (Unicode is kept: Markdown renders it)."""
    return _MD_SPECIALS.sub(r"\\\1", re.sub(r"\s+", " ", str(text)))


_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def latex_math_name(name: str) -> str:
    """A name with no notation of its own, for math mode: ``\\mathit{total\\_count}``.

    Names that are not identifiers (a user's ``a_b&c``) are set as escaped
    text, which cannot break the surrounding math.
    """
    if _IDENTIFIER.match(name):
        return r"\mathit{" + name.replace("_", r"\_") + "}"
    return r"\text{\textit{" + latex_text(name) + "}}"
