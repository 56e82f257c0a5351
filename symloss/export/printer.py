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

from .text import latex_math_name

__all__ = ["DEFAULT_NOTATION", "DISTRIBUTION_NOTATION", "LossLatexPrinter", "notation_for", "visible_width"]

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

# input names made by a link: "<link>_<param>" (see symloss.links.input_name)
_LINK_PREFIXES = ("log_", "softplus_", "logit_", "probit_", "cloglog_", "inverse_", "sqrt_", "variance_")


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
        for prefix in _LINK_PREFIXES:
            rest = name[len(prefix):]
            if name.startswith(prefix) and rest in self.notation:
                # another linked input: η subscripted by the parameter it stands for
                return r"\eta_{" + self.notation[rest] + "}"
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
    def _print_loggamma(self, expr: sp.Expr, exp: str | None = None) -> str:
        tex = r"\log\Gamma\left(%s\right)" % self._print(expr.args[0])
        return tex if exp is None else r"\left(%s\right)^{%s}" % (tex, exp)

    def _print_polygamma(self, expr: sp.Expr, exp: str | None = None) -> str:
        n, x = expr.args
        head = r"\psi" if n == 0 else r"\psi^{(%s)}" % self._print(n)
        tex = r"%s\left(%s\right)" % (head, self._print(x))
        return tex if exp is None else r"\left(%s\right)^{%s}" % (tex, exp)

    def _print_sign(self, expr: sp.Expr, exp: str | None = None) -> str:
        tex = r"\operatorname{sign}\left(%s\right)" % self._print(expr.args[0])
        return tex if exp is None else r"\left(%s\right)^{%s}" % (tex, exp)

    def _print_atanh(self, expr: sp.Expr, exp: str | None = None) -> str:
        tex = r"\operatorname{artanh}\left(%s\right)" % self._print(expr.args[0])
        return tex if exp is None else r"\left(%s\right)^{%s}" % (tex, exp)

    def _print_Abs(self, expr: sp.Expr, exp: str | None = None) -> str:
        # no braces inside the bars: \left|x\right| (SymPy writes \left|{x}\right|)
        tex = r"\left|%s\right|" % self._print(expr.args[0])
        return tex if exp is None else r"%s^{%s}" % (tex, exp)

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
                tex = r"\left(%s\right)" % tex
            pieces.append(sign + tex)
        return pieces

    def _print_Add(self, expr: sp.Add, order: str | None = None) -> str:
        return " ".join(self.add_pieces(expr))


def _subscript(tex: str, index: str) -> str:
    """``tex`` with ``index`` appended to its subscript: ``\\mu`` → ``\\mu_{i}``, ``\\mu_{1}`` → ``\\mu_{1,i}``."""
    m = re.fullmatch(r"(.*?)_\{([^{}]*)\}", tex)
    if m and "_" not in m.group(1) and "^" not in m.group(1):
        return "%s_{%s,%s}" % (m.group(1), m.group(2), index)
    if "_" in tex or "^" in tex:
        return "{%s}_{%s}" % (tex, index)
    return "%s_{%s}" % (tex, index)


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
