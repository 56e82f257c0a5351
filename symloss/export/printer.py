"""The LaTeX printer for losses: SymPy's :class:`LatexPrinter` with conventional symbol names.

Inputs keep torch's names in code (``loc``, ``scale``, ``log_rate``); on paper
they are the usual letters.  :data:`DEFAULT_NOTATION` maps one to the other:

======================  ==================  ====================================================
name                    LaTeX               note
======================  ==================  ====================================================
loc, mean               ``\\mu``
scale                   ``\\sigma``
log_scale               ``s``               s = log σ (a letter, not ``\\log\\sigma``, so that
                                            s² or e^{-2s} read unambiguously)
var                     ``\\sigma^{2}``
rate                    ``\\lambda``
log_rate                ``\\eta``
logits                  ``z``
probs                   ``p``
concentration           ``\\alpha``         ``\\kappa`` for VonMises, ``k`` for Weibull
concentration1 / 0      ``\\alpha`` / ``\\beta``
df                      ``\\nu``
total_count             ``n``               ``r`` for NegativeBinomial (the number of failures)
quantile                ``\\tau``
shape                   ``\\lambda``        (InverseGaussian)
weights                 ``w``               the MAP weights, ``weights_j`` → ``w_{j}``
<link>_<param>          ``\\eta_{…}``        any other linked input: η subscripted by the parameter
======================  ==================  ====================================================

Greek names (``sigma``, ``tau``, ``alpha``) and short names with digits
(``mu1`` → ``\\mu_{1}``) print as SymPy prints them; any other name is set as
``\\mathit{name}`` with its specials escaped.  ``notation={"loc": r"\\hat{y}"}``
overrides any entry (the value is LaTeX, used as is).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import sympy as sp
from sympy.printing.latex import LatexPrinter, greek_letters_set
from sympy.printing.pretty.pretty import PrettyPrinter
from sympy.printing.pretty.stringpict import prettyForm
from sympy.simplify.radsimp import fraction

from .text import latex_math_name

__all__ = [
    "DEFAULT_NOTATION",
    "DISTRIBUTION_NOTATION",
    "LossLatexPrinter",
    "notation_for",
    "typeset_width",
    "visible_width",
]

DEFAULT_NOTATION: dict[str, str] = {
    "y": "y",
    "loc": r"\mu",
    "mean": r"\mu",
    "scale": r"\sigma",
    "log_scale": "s",
    "var": r"\sigma^{2}",
    "rate": r"\lambda",
    "log_rate": r"\eta",
    "logits": "z",
    "probs": "p",
    "concentration": r"\alpha",
    "concentration1": r"\alpha",
    "concentration0": r"\beta",
    "df": r"\nu",
    "total_count": "n",
    "quantile": r"\tau",
    "shape": r"\lambda",
    "weights": "w",
    "gamma_": r"\gamma",  # the Cauchy prior's scale (gamma itself is a SymPy function name)
}

#: Per-distribution exceptions where the literature uses another letter.
DISTRIBUTION_NOTATION: dict[str, dict[str, str]] = {
    "VonMises": {"concentration": r"\kappa"},
    "Weibull": {"concentration": "k"},
    "NegativeBinomial": {"total_count": "r"},
}



def notation_for(distribution: str | None, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The name → LaTeX table for one loss: defaults, the distribution's exceptions, then ``overrides``."""
    table = dict(DEFAULT_NOTATION)
    if distribution:
        table.update(DISTRIBUTION_NOTATION.get(distribution, {}))
    if overrides:
        table.update({str(k): str(v) for k, v in overrides.items()})
    return table


_SHORT = re.compile(r"([A-Za-z]+?)(\d*)")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_WORD_COMMANDS = frozenset("log exp sin cos tan sinh cosh tanh min max det mid".split())  # set as words


def visible_width(tex: str) -> int:
    """A rough width, in characters, of a short piece of LaTeX (a symbol's name)."""
    t = tex.replace(r"\_", "_").replace(r"\&", "&")
    t = re.sub(r"\\(mathit|mathrm|text|textit|operatorname|hat|bar|tilde|mathcal|mathbf|boldsymbol)\b", "", t)
    t = _COMMAND.sub(lambda m: "xxx" if m.group(0)[1:] in _WORD_COMMANDS else "x", t)
    t = re.sub(r"[{}\s^]", "", t)
    subs = t.count("_")
    return max(1, len(t.replace("_", "")) - subs // 2)


class LossLatexPrinter(LatexPrinter):
    """SymPy's LaTeX printer with the loss's notation and a few typographic choices.

    * symbols print through the notation table (by name, whatever their assumptions);
    * ``log Γ`` for ``loggamma``, ``ψ`` for the digamma function, ``sign`` and ``artanh`` as operators;
    * a sum starts with a positive term when it has one: ``y - \\mu``, not ``- \\mu + y``;
    * ``batch`` (an index symbol) subscripts the per-observation symbols: ``\\mu`` → ``\\mu_{i}``.
    """

    def __init__(self, notation: Mapping[str, str] | None = None, *, per_observation: Iterable[str] = (),
                 batch: sp.Symbol | None = None, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__({"ln_notation": False, **(settings or {})})
        self.notation = dict(DEFAULT_NOTATION if notation is None else notation)
        self.per_observation = frozenset(per_observation)
        self.batch = batch

    # -- names ---------------------------------------------------------------------------------------------
    def name(self, name: str) -> str:
        """The LaTeX of the symbol called ``name`` (no batch index)."""
        if name in self.notation:
            return self.notation[name]
        stem, _, index = name.rpartition("_")
        if stem in self.notation and (index.isdigit() or (len(index) == 1 and index.isalpha())):
            return _subscript(self.notation[stem], index)
        base = name.rstrip("_") or name  # gamma_ (a name SymPy's functions own) is still γ
        m = _SHORT.fullmatch(base)
        if m and (len(m.group(1)) == 1 or m.group(1) in greek_letters_set or m.group(1).lower() in greek_letters_set):
            return super()._print_Symbol(sp.Symbol(base))  # y, K, sigma, tau, mu1 -> \mu_{1}
        return latex_math_name(name)

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        tex = self.name(expr.name)
        if self.batch is not None and expr.name in self.per_observation:
            return _subscript(tex, self._print(self.batch))
        return tex

    def _print_IndexedBase(self, expr: sp.IndexedBase) -> str:
        return self.name(str(expr.label))

    def _print_Indexed(self, expr: sp.Indexed) -> str:
        indices = [self._print(i) for i in expr.indices]
        if self.batch is not None and str(expr.base.label) in self.per_observation:
            indices.insert(0, self._print(self.batch))
        return _subscript(self._print(expr.base), ",".join(indices))

    # -- functions -----------------------------------------------------------------------------------------
    def _print_Function(self, expr: sp.Expr, exp: str | None = None) -> str:
        return _unbrace(super()._print_Function(expr, exp))

    def _print_log(self, expr: sp.Expr, exp: str | None = None) -> str:
        # \log\left(x\right), not SymPy's \log{\left(x \right)}: the same on paper, and sympy's LaTeX
        # parser reads "\log{(a)} b" as log(a b)
        arg = self._print(expr.args[0])
        return rf"\log\left({arg}\right)" if exp is None else rf"\log^{{{exp}}}\left({arg}\right)"

    def _print_loggamma(self, expr: sp.Expr, exp: str | None = None) -> str:
        tex = rf"\log\Gamma\left({self._print(expr.args[0])}\right)"
        return tex if exp is None else rf"\left({tex}\right)^{{{exp}}}"

    def _print_polygamma(self, expr: sp.Expr, exp: str | None = None) -> str:
        n, x = expr.args
        head = r"\psi" if n == 0 else rf"\psi^{{({self._print(n)})}}"
        tex = rf"{head}\left({self._print(x)}\right)"
        return tex if exp is None else rf"\left({tex}\right)^{{{exp}}}"

    def _print_sign(self, expr: sp.Expr, exp: str | None = None) -> str:
        tex = rf"\operatorname{{sign}}\left({self._print(expr.args[0])}\right)"
        return tex if exp is None else rf"\left({tex}\right)^{{{exp}}}"

    def _print_atanh(self, expr: sp.Expr, exp: str | None = None) -> str:
        tex = rf"\operatorname{{artanh}}\left({self._print(expr.args[0])}\right)"
        return tex if exp is None else rf"\left({tex}\right)^{{{exp}}}"

    def _print_beta(self, expr: sp.Expr, exp: str | None = None) -> str:
        # SymPy 1.14 formats the arguments with str(): B(1/2, df/2) instead of their LaTeX
        args = ", ".join(self._print(a) for a in (expr.args if len(expr.args) == 2 else expr.args * 2))
        tex = rf"\operatorname{{B}}\left({args}\right)"
        return tex if exp is None else rf"\operatorname{{B}}^{{{exp}}}\left({args}\right)"

    def _print_Abs(self, expr: sp.Expr, exp: str | None = None) -> str:
        # no braces inside the bars: \left|x\right| (SymPy writes \left|{x}\right|)
        tex = rf"\left|{self._print(expr.args[0])}\right|"
        return tex if exp is None else rf"{tex}^{{{exp}}}"

    # -- products ------------------------------------------------------------------------------------------
    def _print_Mul(self, expr: sp.Expr) -> str:
        r"""SymPy's product, with functions, sums and absolute values after the plain factors.

        ``y \log(p)`` rather than ``\log(p) y``: the usual order, and one that reads unambiguously
        (a factor after ``\log(p)`` or ``\sum`` could be taken for part of its argument).
        """
        if isinstance(expr, sp.Mul) and (expr.args[0] is sp.S.One or any(isinstance(a, sp.Number)
                                                                          for a in expr.args[1:])):
            return super()._print_Mul(expr)  # an unevaluated product: keep SymPy's literal form
        tex = ""
        if expr.could_extract_minus_sign():
            if (-expr).is_Add:
                return super()._print_Mul(expr)
            expr, tex = -expr, "- "
        numer, denom = fraction(expr, exact=True)
        if denom is sp.S.One and sp.Pow(1, -1, evaluate=False) not in expr.args:
            return tex + self._factors(expr)
        return tex + rf"\frac{{{self._factors(numer)}}}{{{self._factors(denom)}}}"

    def _factors(self, expr: sp.Expr) -> str:
        if not expr.is_Mul:
            return self._print(expr)
        args = sorted(expr.as_ordered_factors(), key=_trailing)  # stable: SymPy's order otherwise
        out = last = ""
        for i, term in enumerate(args):
            tex = self._print(term)
            if self._needs_mul_brackets(term, first=i == 0, last=i == len(args) - 1):
                tex = rf"\left({tex}\right)"
            if out:
                # a number next to a number needs a visible product sign (SymPy's rule)
                out += r" \cdot " if re.search(r"[0-9]\}*$", last) and re.match(r"\{?[+-]?[0-9]", tex) else " "
            out += tex
            last = tex
        return out

    # -- sums ----------------------------------------------------------------------------------------------
    def ordered_terms(self, expr: sp.Add) -> list[sp.Expr]:
        """The terms of a sum in print order: SymPy's, with the first positive term moved to the front."""
        terms = list(self._as_ordered_terms(expr, order=None))
        if terms and terms[0].could_extract_minus_sign():
            for i, t in enumerate(terms):
                if not t.could_extract_minus_sign():
                    terms.insert(0, terms.pop(i))
                    break
        return terms

    def add_pieces(self, expr: sp.Add) -> list[str]:
        """The printed terms of a sum, each after the first with its leading ``+``/``-``; joined they are the sum."""
        pieces = []
        for i, term in enumerate(self.ordered_terms(expr)):
            sign = ""
            if i > 0:
                if term.could_extract_minus_sign():
                    sign, term = "- ", -term
                else:
                    sign = "+ "
            tex = self._print(term)
            if self._needs_add_brackets(term):
                tex = rf"\left({tex}\right)"
            pieces.append(sign + tex)
        return pieces

    def _print_Add(self, expr: sp.Add, order: str | None = None) -> str:
        return " ".join(self.add_pieces(expr))


def _trailing(factor: sp.Expr) -> int:
    """Where a factor goes in a product: plain factors (0), then sums and products (1), then functions and
    |x| (2), each group in SymPy's order: (Σ_k y_k) log(Σ_m e^{z_m})."""
    base = factor.base if isinstance(factor, sp.Pow) else factor
    if isinstance(base, (sp.Sum, sp.Product)):
        return 1
    return 2 if isinstance(base, sp.Function) and not isinstance(base, sp.exp) else 0


def _unbrace(tex: str) -> str:
    """``\\cosh{\\left(x \\right)}`` → ``\\cosh\\left(x \\right)``: SymPy's grouping braces around a function's
    argument change nothing on paper, and without them sympy's parser reads ``\\cosh(x) y`` as cosh(x)·y."""
    start = tex.find(r"{\left(")
    if start < 0 or not tex.endswith(r"\right)}"):
        return tex
    depth = 0
    for pos in range(start, len(tex)):
        ch = tex[pos]
        if ch == "{" and tex[pos - 1] != "\\":
            depth += 1
        elif ch == "}" and tex[pos - 1] != "\\":
            depth -= 1
            if depth == 0:
                return tex[:start] + tex[start + 1:pos] if pos == len(tex) - 1 else tex
    return tex


def _subscript(tex: str, index: str) -> str:
    """``tex`` with ``index`` appended to its subscript: ``\\mu`` → ``\\mu_{i}``, ``\\mu_{1}`` → ``\\mu_{1,i}``."""
    m = re.fullmatch(r"(\\?[A-Za-z]+)\^\{([^{}]*)\}", tex)
    if m:  # \sigma^{2} -> \sigma_{i}^{2}: σ_i², not (σ²)_i
        return f"{m.group(1)}_{{{index}}}^{{{m.group(2)}}}"
    m = re.fullmatch(r"(.*?)_\{([^{}]*)\}", tex)
    if m and "_" not in m.group(1) and "^" not in m.group(1):
        return f"{m.group(1)}_{{{m.group(2)},{index}}}"
    if "_" in tex or "^" in tex:
        return f"{{{tex}}}_{{{index}}}"
    return f"{tex}_{{{index}}}"


class _WidthPrinter(PrettyPrinter):
    """The 2-D pretty printer with every symbol as wide as its LaTeX: a proxy for the typeset width."""

    def __init__(self, latex: LossLatexPrinter) -> None:
        super().__init__({"use_unicode": True, "wrap_line": False})
        self._latex = latex

    def _print_Symbol(self, e: sp.Symbol, bold_name: bool = False) -> prettyForm:
        return prettyForm("x" * visible_width(self._latex._print_Symbol(e)))


def typeset_width(expr: sp.Basic, printer: LossLatexPrinter) -> int:
    """About how many characters wide ``expr`` is when typeset (fractions stacked, exponents raised)."""
    try:
        text = _WidthPrinter(printer).doprint(expr)
        return max(len(line) for line in str(text).splitlines())
    except Exception:  # the pretty printer cannot draw every object; the LaTeX length over 2 is a fair guess
        return len(printer.doprint(expr)) // 2
