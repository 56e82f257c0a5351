"""LaTeX and Markdown write-ups of a derivation, for papers and notes.

:func:`to_latex` gives the derivation as an ``align*`` block (one row per
:attr:`Loss.steps` entry, each with a short ``\\text{}`` justification), the
gradient in every trained input, the MAP objective when there is a prior, the
classic loss it equals when one is recognised, and the property table from
:mod:`symloss.analysis`.  :func:`to_markdown` gives the same content with
``$$ … $$`` blocks for MathJax/KaTeX.  Both share one content model, built by
:func:`derivation_rows` and friends, so the two formats never drift apart.

The standalone document needs only ``article``, ``amsmath`` and ``amssymb``
(all in texlive-latex-base).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy as sp

from ..budget import DEFAULT_BUDGET
from ..loss import Loss, Step
from .printer import LossLatexPrinter, _subscript, notation_for, typeset_width, visible_width
from .text import latex_math_name, latex_text, markdown_text

__all__ = [
    "to_latex",
    "to_markdown",
    "write_latex",
    "write_markdown",
    "derivation_rows",
    "make_printer",
    "Row",
    "LINE_WIDTH",
]

#: The typeset width of one ``align*`` row, in characters of SymPy's 2-D pretty form (≈ 5.2 pt each at
#: 10 pt on a 6.27 in text block); longer right-hand sides break after a ``+``/``-``.
LINE_WIDTH = 94

_PRIOR_NAMES = {"normal": "Gaussian", "laplace": "Laplace", "cauchy": "Cauchy"}
_NORMS = {"l2": r"\lVert %s \rVert_{2}^{2}", "l1": r"\lVert %s \rVert_{1}"}


# ---------------------------------------------------------------------------------------------------------
# the content model
@dataclass
class Row:
    """One row of an aligned block: ``lhs = rhs`` with a justification ``note`` (math-mode LaTeX).

    ``lines`` is the right-hand side broken into lines; each line after the
    first starts with its ``+``/``-``, so ``" ".join(lines)`` is the whole
    right-hand side.  ``step`` is the derivation step the row shows, if any.
    """

    lhs: str
    lines: list[str]
    note: str = ""
    step: Step | None = None
    expr: sp.Basic | None = None

    @property
    def rhs(self) -> str:
        return " ".join(self.lines)


# a paragraph: ("text", plain text) | ("math", LaTeX) | ("code", plain text) chunks
Chunk = tuple[str, str]


@dataclass
class _Content:
    title: list[Chunk]
    intro: list[list[Chunk]]
    derivation: list[Row]
    gradient: list[Row]
    known: list[Chunk] | None = None
    table: list[tuple[list[Chunk], str, str]] | None = None
    table_note: str = ""
    comments: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------
# notation
def _symbol_names(loss: Loss) -> list[str]:
    """Every name that can reach the page, most important first (collisions are resolved in this order)."""
    names: list[str] = [str(loss.target)]
    names += [str(s) for s in loss.inputs]
    if loss.distribution is not None:
        names += list(loss.distribution.param_names)
    names += [str(s) for s in loss.constants]
    exprs: list[sp.Basic] = [s.expr for s in loss.steps] + list(loss.gradient.values())
    exprs += [v for v in loss.parameters.values() if isinstance(v, sp.Basic)]
    if loss.penalty is not None:
        exprs += [loss.penalty.expr, loss.penalty.gradient, sp.sympify(loss.penalty.scale), loss.penalty.weight]
    for e in exprs:
        for a in sorted(_names_in(e)):
            names.append(a)
    seen: dict[str, None] = {}
    for n in names:
        seen.setdefault(n, None)
    return list(seen)


def _names_in(expr: sp.Basic) -> set[str]:
    out = {str(s) for s in expr.free_symbols if isinstance(s, sp.Symbol)}
    out |= {str(b.label) for b in expr.atoms(sp.IndexedBase)}
    out |= {str(lim[0]) for s in expr.atoms(sp.Sum, sp.Product) for lim in s.limits}
    return out


def make_printer(loss: Loss, notation: Mapping[str, str] | None = None) -> LossLatexPrinter:
    """The printer for ``loss``: the default notation, the distribution's exceptions and ``notation``.

    Two different names that would print alike (a quantile τ and a prior scale
    τ) are told apart: the later one is written ``\\mathit{name}`` (a prior's
    scale gets a subscript, ``\\tau_{w}``).  Names the caller set explicitly
    in ``notation`` are kept as given.
    """
    dist = getattr(loss.distribution, "name", None)
    table = notation_for(dist, notation)
    printer = LossLatexPrinter(table)
    for param in loss.links:
        # an input made by a link with no letter of its own (log_concentration): η subscripted by the parameter
        value = loss.parameters.get(param)
        made = [s for s in _input_symbols(value) if str(s) not in table and str(s) != param]
        for s in made:
            table[str(s)] = r"\eta_{" + printer.name(param) + "}"
    aliases = _aliases(loss)
    explicit = set(notation or {})
    used: dict[str, str] = {r"\pi": "pi", "e": "E"}  # SymPy's constants print so: a symbol may not
    penalty_scale = str(loss.penalty.scale) if loss.penalty is not None else None
    for name in _symbol_names(loss):
        tex = printer.name(name)
        other = used.get(tex)
        if other is not None and other != name and frozenset((name, other)) not in aliases and name not in explicit:
            tex = _subscript(tex, "w") if name == penalty_scale else latex_math_name(name)
            table[name] = tex
        used.setdefault(tex, name)
    return LossLatexPrinter(table)


def _input_symbols(value: Any) -> list[sp.Basic]:
    if not isinstance(value, sp.Basic):
        return []
    return [*(s for s in value.free_symbols if isinstance(s, sp.Symbol) and not s.is_integer),
            *(b.label for b in value.atoms(sp.IndexedBase))]


def _aliases(loss: Loss) -> set[frozenset[str]]:
    """Pairs of names that may share a symbol: a fixed parameter and the constant that replaces it."""
    return {frozenset((p, str(v))) for p, v in loss.fixed.items() if isinstance(v, sp.Symbol)}


def _batch_printer(loss: Loss, printer: LossLatexPrinter) -> tuple[LossLatexPrinter, sp.Symbol, sp.Symbol]:
    """A printer that subscripts the per-observation symbols (target and inputs) with the batch index."""
    taken = set(_symbol_names(loss))
    index = next(sp.Symbol(n, integer=True, positive=True) for n in ("i", "t", "r", "u") if n not in taken)
    count = next(sp.Symbol(n, integer=True, positive=True) for n in ("N", "M", "B", "T") if n not in taken)
    per_obs = {str(loss.target), *(str(s) for s in loss.inputs)}
    return LossLatexPrinter(printer.notation, per_observation=per_obs, batch=index), index, count


def _density_letter(loss: Loss, printer: LossLatexPrinter) -> str:
    # "p(y | p)" would be ambiguous when a parameter is written p (probs): use P for the density then
    names = {printer.name(n) for n in _param_names(loss)} | {printer.name(str(s)) for s in loss.inputs}
    return "P" if "p" in names else "p"


def _param_names(loss: Loss) -> list[str]:
    if loss.distribution is not None:
        return list(loss.distribution.param_names)
    return [str(s) for s in loss.inputs]


def _lambda(printer: LossLatexPrinter, loss: Loss) -> str:
    """The MAP coefficient's letter: λ, or λ_w when λ already names a parameter (a Poisson rate)."""
    used = {printer.name(n) for n in _symbol_names(loss)}
    return r"\lambda" if r"\lambda" not in used else r"\lambda_{w}"


# ---------------------------------------------------------------------------------------------------------
# rows
def _t(text: str) -> str:
    return r"\text{" + latex_text(text) + "}"


def _join_math(printer: LossLatexPrinter, names: Sequence[str]) -> str:
    return ", ".join(printer.name(n) for n in names)


def _param_tex(loss: Loss, printer: LossLatexPrinter, param: str) -> str:
    """The parameter as it appears on the left of its link: ``\\lambda``, or ``p_{k}`` on a class axis."""
    value = loss.parameters.get(param)
    vector = loss.metadata.get("vector")
    if vector is not None and isinstance(value, sp.Basic) and value.has(sp.Indexed):
        return printer.doprint(sp.IndexedBase(param)[vector.k])
    return printer.name(param)


def _link_param(step: Step, pending: list[str]) -> str | None:
    m = re.match(r"Link:\s*(\w+)\s*=", step.text)
    if m and m.group(1) in pending:
        pending.remove(m.group(1))
        return m.group(1)
    return pending.pop(0) if pending else None


def _fix_note(loss: Loss, printer: LossLatexPrinter) -> str:
    parts = []
    for p, v in loss.fixed.items():
        ptex = printer.name(p)
        if isinstance(v, sp.Symbol):
            vtex = printer.doprint(v)
            parts.append(ptex + _t(" known") if vtex == ptex else ptex + " = " + vtex + _t(" (known)"))
        else:
            parts.append(ptex + " = " + printer.doprint(v))
    return _t("fix ") + ", ".join(parts) if parts else _t("fix the known parameters")


def _step_lhs_note(loss: Loss, step: Step, printer: LossLatexPrinter, prev: str | None,
                   pending_links: list[str], dens: str) -> tuple[str, str]:
    y = printer.name(str(loss.target))
    theta = _join_math(printer, _param_names(loss))
    cond = f"{dens}({y} \\mid {theta})"
    kind = step.kind
    if kind == "likelihood":
        return cond, _t("likelihood of one observation")
    if kind == "log":
        return r"\log " + cond, _t("take the logarithm")
    if kind == "negate":
        return r"-\log " + cond, _t("negate")
    if kind == "normalise":
        return "Z", _t("normalising constant")
    if kind in ("fix", "link"):
        lhs = "" if prev in ("negate", "fix", "link") else r"-\log " + dens
        if kind == "fix":
            return lhs, _fix_note(loss, printer)
        param = _link_param(step, pending_links)
        if param is None or param not in loss.parameters:
            return lhs, _t(step.text)
        value = loss.parameters[param]
        link = loss.links.get(param, "")
        return lhs, _t(f"{link} link: " if link else "link: ") + _param_tex(loss, printer, param) + " = " + \
            printer.doprint(value)
    if kind == "drop":
        return r"\mathrm{const}", _t("free of ") + _join_math(printer, loss.wrt_names) + _t(": dropped")
    if kind == "loss":
        return r"\ell", _t("the training loss")
    pen = loss.penalty
    w = printer.doprint(pen.weight) if pen is not None else "w_{j}"
    if kind == "prior":
        prior = _PRIOR_NAMES.get(pen.prior, pen.prior) if pen is not None else ""
        return f"{dens}({w})", _t(f"{prior} prior on each weight".strip())
    if kind == "penalty":
        return rf"\Omega({w})", _t("penalty: ") + rf"-\log {dens}({w}) + " + _t("const")
    if kind == "map":
        return _lambda(printer, loss), _t("MAP coefficient")
    return step.lhs and latex_math_name(step.lhs) or "", _t(step.text[:60])


def _split(expr: sp.Basic, printer: LossLatexPrinter, width: int) -> list[str]:
    """``expr`` printed, broken after whole terms of a top-level sum so that each line fits ``width``."""
    if not isinstance(expr, sp.Add) or typeset_width(expr, printer) <= width:
        return [printer.doprint(expr)]
    pieces = printer.add_pieces(expr)
    widths = [typeset_width(t, printer) + 3 for t in printer.ordered_terms(expr)]
    lines: list[str] = []
    current: list[str] = []
    used = 0
    for piece, w in zip(pieces, widths):
        limit = width if not lines else width - 4  # continuation lines are indented by \quad
        if current and used + w > limit:
            lines.append(" ".join(current))
            current, used = [], 0
        current.append(piece)
        used += w
    lines.append(" ".join(current))
    return lines


def _layout(rows: list[tuple[str, sp.Basic | list[str], str, Step | None]], printer: LossLatexPrinter) -> list[Row]:
    """Break the right-hand sides so that lhs + rhs + note fit :data:`LINE_WIDTH` (align shares its columns)."""
    width = _rhs_width(rows)
    out = []
    for lhs, rhs, note, step in rows:
        if isinstance(rhs, list):
            out.append(Row(lhs, rhs, note, step))
        else:
            out.append(Row(lhs, _split(rhs, printer, width), note, step, rhs))
    return out


def _note_width(note: str) -> int:
    # a letter of text is ~4.1 pt wide, a width unit of math ~5.2 pt; the math parts by the symbol estimate
    texts = re.findall(r"\\text\{((?:[^{}]|\{[^{}]*\})*)\}", note)
    rest = re.sub(r"\\text\{((?:[^{}]|\{[^{}]*\})*)\}", "", note)
    return int(0.8 * sum(len(t) for t in texts)) + (visible_width(rest) if rest.strip() else 0)


def derivation_rows(loss: Loss, notation: Mapping[str, str] | None = None, *, batch: bool = False,
                    printer: LossLatexPrinter | None = None) -> list[Row]:
    """The derivation block: one row per step (``row.step``), plus the batch mean and the MAP objective."""
    printer = printer or make_printer(loss, notation)
    dens = _density_letter(loss, printer)
    pending = list(loss.links)
    raw: list[tuple[str, Any, str, Step | None]] = []
    prev = None
    for step in loss.steps:
        lhs, note = _step_lhs_note(loss, step, printer, prev, pending, dens)
        raw.append((lhs, step.expr, note, step))
        prev = step.kind
        if step.kind == "loss" and batch:
            raw += _batch_rows(loss, printer)
    if loss.penalty is not None:
        raw += _objective_rows(loss, printer)
    return _layout_any(raw, printer)


def _batch_rows(loss: Loss, printer: LossLatexPrinter) -> list[tuple[str, Any, str, None]]:
    """L = (1/N) Σ_i ℓ_i: written out on one row when it fits, else as (1/N) Σ_i ℓ_i and a row for ℓ_i."""
    bp, i, n = _batch_printer(loss, printer)
    return [(r"\mathcal{L}", _BatchMean(loss.expr, bp, i, n), _t("batch mean"), None)]


class _BatchMean:
    """The batch-mean row, laid out once the block's width is known."""

    def __init__(self, expr: sp.Basic, printer: LossLatexPrinter, index: sp.Symbol, count: sp.Symbol) -> None:
        self.expr, self.printer, self.index, self.count = expr, printer, index, count

    def rows(self, lhs: str, note: str, width: int) -> list[Row]:
        bp, i, n = self.printer, self.index, self.count
        mean = bp.doprint(1 / n)
        if typeset_width(self.expr, bp) + 12 <= width:
            return [Row(lhs, [f"{mean} {bp.doprint(sp.Sum(self.expr, (i, 1, n)))}"], note)]
        ell_i = _subscript(r"\ell", bp.doprint(i))
        sum_i = rf"\sum_{{{bp.doprint(i)}=1}}^{{{bp.doprint(n)}}} {ell_i}"
        return [Row(lhs, [f"{mean} {sum_i}"], note),
                Row(ell_i, _split(self.expr, bp, width), _t("observation ") + bp.doprint(i), None, self.expr)]


class _ClassicForm:
    """c·[Σ_i f_i + λ‖w‖], on one row when it fits, else broken before the penalty (inside the brackets)."""

    def __init__(self, factor: sp.Expr, data: sp.Expr, penalty: str, printer: LossLatexPrinter,
                 bp: LossLatexPrinter, index: sp.Symbol, count: sp.Symbol) -> None:
        self.factor, self.data, self.penalty, self.printer = factor, data, penalty, printer
        self.bp, self.index, self.count = bp, index, count

    def rows(self, lhs: str, note: str, width: int) -> list[Row]:
        data_sum = self.bp.doprint(sp.Sum(self.data, (self.index, 1, self.count)))
        if self.factor == 1:
            head, open_, close = "", "", ""
        else:
            ftex = self.printer.doprint(self.factor)
            head = rf"\left({ftex}\right) " if isinstance(self.factor, sp.Add) else f"{ftex} "
            open_, close = r"\left[", r"\right]"
        needed = typeset_width(self.data, self.bp) + typeset_width(self.factor, self.printer) + 22
        if needed <= width:
            return [Row(lhs, [f"{head}{open_}{data_sum} + {self.penalty}{close}"], note)]
        # two lines; \right. and \left. keep the brackets balanced on each line of the align
        return [Row(lhs, [f"{head}{open_}{data_sum}" + (r"\right." if open_ else ""),
                          (r"\left. " if open_ else "") + f"+ {self.penalty}{close}"], note)]


class _BatchExpr:
    """An expression to be printed (and split) with the batch printer rather than the block's printer."""

    def __init__(self, expr: sp.Basic, printer: LossLatexPrinter) -> None:
        self.expr, self.printer = expr, printer


def _objective_rows(loss: Loss, printer: LossLatexPrinter) -> list[tuple[str, Any, str, None]]:
    """J(w) = Σ_i ℓ_i + Σ_j Ω(w_j), and its classic form c·[Σ_i f_i + λ‖w‖] when the penalty is L1/L2."""
    pen = loss.penalty
    assert pen is not None
    bp, i, n = _batch_printer(loss, printer)
    w = printer.doprint(pen.weight)
    wname = str(pen.weight).rsplit("_", 1)[0]
    wvec = printer.name(wname) if wname != str(pen.weight) else "w"
    j = str(pen.weight).rsplit("_", 1)[-1]
    ell_i = _subscript(r"\ell", bp.doprint(i))
    sum_i = rf"\sum_{{{bp.doprint(i)}=1}}^{{{bp.doprint(n)}}}"
    rows: list[tuple[str, Any, str, None]] = [
        (f"J({wvec})", [rf"{sum_i} {ell_i} + \sum_{{{j}}} \Omega({w})"], _t("MAP objective"), None)]
    form = _classic_form(loss)
    if form is None:
        return rows
    factor, data, coefficient, from_steps = form
    lam = _lambda(printer, loss)
    name = loss.known_as.name if loss.known_as is not None else "the loss"
    note = _t("weighted " + ("L2" if pen.kind == "l2" else "L1") + f" on {name}")
    rows.append(("", _ClassicForm(factor, data, rf"{lam} {_NORMS[pen.kind] % wvec}", printer, bp, i, n), note, None))
    if not from_steps:
        rows.append((lam, coefficient, _t("the penalty's coefficient"), None))
    return rows


def _classic_form(loss: Loss) -> tuple[sp.Expr, sp.Expr, sp.Expr, bool] | None:
    """(c, f, λ, λ is already a step) with Σ_i ℓ_i + Σ_j Ω(w_j) = c·[Σ_i f_i + λ‖w‖], or None.

    With a recognised classic loss, c and f are its factor and formula and λ the
    penalty's coefficient.  Otherwise c is the constant factor of the loss
    (the 1/(2σ²) of a Gaussian with known σ), so that λ = σ²/τ² for weight decay.
    """
    pen = loss.penalty
    if pen is None or pen.kind not in _NORMS:
        return None
    has_step = any(s.kind == "map" for s in loss.steps)
    if loss.known_as is not None and pen.coefficient is not None and loss.event == "scalar":
        return loss.known_as.factor, loss.known_as.formula, pen.coefficient, has_step
    data_syms = [*loss.wrt, loss.target]
    factor, data = loss.expr.as_independent(*data_syms, as_Add=False)
    if factor.free_symbols & set(loss.inputs) or not (factor.is_positive is not False):
        return None
    unit = pen.weight**2 if pen.kind == "l2" else sp.Abs(pen.weight)
    per_norm = sp.simplify(pen.expr / unit)
    if per_norm.has(pen.weight):
        return None
    return factor, data, sp.simplify(per_norm / factor), False


def gradient_rows(loss: Loss, printer: LossLatexPrinter, *, batch: bool = False) -> list[Row]:
    """∂ℓ/∂u for every trained input u (∂L/∂u_i with a batch), and the penalty's gradient."""
    raw: list[tuple[str, Any, str, None]] = []
    vector = loss.metadata.get("vector")
    bp, i, n = _batch_printer(loss, printer)
    for s, g in loss.gradient.items():
        u = s[vector.j] if isinstance(s, sp.IndexedBase) and vector is not None else s
        if batch:  # N ∂L/∂u_i: the per-observation gradient, which the printer can break over lines
            lhs = rf"{bp.doprint(n)} \frac{{\partial \mathcal{{L}}}}{{\partial {bp.doprint(u)}}}"
            raw.append((lhs, _BatchExpr(g, bp), "", None))
        else:
            raw.append((rf"\frac{{\partial \ell}}{{\partial {printer.doprint(u)}}}", g, "", None))
    if loss.penalty is not None:
        raw.append((rf"\frac{{\partial \Omega}}{{\partial {printer.doprint(loss.penalty.weight)}}}",
                    loss.penalty.gradient, _t("a subgradient at 0") if loss.penalty.kind == "l1" else "", None))
    return _layout_any(raw, printer)


def _layout_any(raw: list[tuple[str, Any, str, Step | None]], printer: LossLatexPrinter) -> list[Row]:
    """:func:`_layout` for rows whose right-hand side needs the batch printer, or is the batch mean."""
    prepared: list[tuple[str, Any, str, Step | None]] = []
    special: dict[int, Any] = {}
    for k, (lhs, rhs, note, step) in enumerate(raw):
        if isinstance(rhs, (_BatchExpr, _BatchMean, _ClassicForm)):
            special[k] = rhs
            prepared.append((lhs, [], note, step))
        else:
            prepared.append((lhs, rhs, note, step))
    rows = _layout(prepared, printer)
    if not special:
        return rows
    width = _rhs_width(rows)
    out: list[Row] = []
    for k, row in enumerate(rows):
        rhs = special.get(k)
        if isinstance(rhs, (_BatchMean, _ClassicForm)):
            out += rhs.rows(row.lhs, row.note, width)
            continue
        if isinstance(rhs, _BatchExpr):
            row.lines, row.expr = _split(rhs.expr, rhs.printer, width), rhs.expr
        out.append(row)
    return out


def _rhs_width(rows: Sequence[Row] | Sequence[tuple[str, Any, str, Any]]) -> int:
    """The width left for right-hand sides in a block: align gives every row the widest lhs and note."""
    lhs = [r.lhs if isinstance(r, Row) else r[0] for r in rows]
    notes = [r.note if isinstance(r, Row) else r[2] for r in rows]
    lhs_w = max((visible_width(x) for x in lhs), default=0)
    note_w = max((_note_width(x) for x in notes), default=0)
    return max(30, LINE_WIDTH - lhs_w - note_w - (6 if note_w else 2))


# ---------------------------------------------------------------------------------------------------------
# prose
def _title(loss: Loss) -> list[Chunk]:
    return [("text", "The "), ("code", loss.name), ("text", " loss")]


_COMPOSED = {
    "kl": lambda loss: (f"The KL divergence KL(q‖p) of a {loss.metadata.get('p', 'p')} p from a "
                        f"{loss.metadata.get('q', 'q')} q, derived in closed form; it has no observation (its "
                        "target is a placeholder)."),
    "elbo": lambda loss: ("The negative ELBO of a VAE-style model: the reconstruction negative log-likelihood plus "
                          "KL(q(z | x) ‖ p(z)), with the reparameterisation z = μ + σ·ε."),
    "gan": lambda loss: (f"The {loss.metadata.get('role', '')} loss of the {loss.metadata.get('gan', '')} GAN, "
                         "on the discriminator's outputs for real and fake samples (the target is a "
                         "placeholder).").replace("_", " "),
}


def _intro(loss: Loss, printer: LossLatexPrinter) -> list[list[Chunk]]:
    d = loss.distribution
    first: list[Chunk] = []
    if loss.kind == "metric":
        first.append(("text", "An evaluation metric written as a loss."))
    elif loss.kind in _COMPOSED:
        # KL divergences, the negative ELBO and GAN losses (symloss.divergence, symloss.elbo, symloss.gan)
        first.append(("text", _COMPOSED[loss.kind](loss)))
    elif d is not None:
        first.append(("text", f"The negative log-likelihood of the {d.name} distribution"))
        if loss.links:
            links = []
            for p, lk in loss.links.items():
                links.append([("text", f"the {lk} link on "), ("math", printer.name(p)), ("text", " (")
                              , ("math", _param_tex(loss, printer, p) + " = " + printer.doprint(loss.parameters[p])),
                              ("text", ")")])
            first.append(("text", ", with "))
            for k, chunks in enumerate(links):
                if k:
                    first.append(("text", " and " if k == len(links) - 1 else ", "))
                first += chunks
        first.append(("text", f". Density: {d.source}; reference: {d.reference}."))
    else:
        first.append(("text", "The negative log-likelihood of a density given by the user"
                              + (" (checked to integrate to one)." if loss.kind == "custom" else ".")))
    return [first, _notation_sentence(loss, printer)]


def _notation_sentence(loss: Loss, printer: LossLatexPrinter) -> list[Chunk]:
    out: list[Chunk] = [("text", "Notation: ")]
    items: list[list[Chunk]] = [[("math", printer.name(str(loss.target))), ("text", " is the target ("),
                                 ("code", str(loss.target)), ("text", ")")]]
    wrt = set(loss.wrt_names)
    for s in loss.inputs:
        name = str(s)
        role = "trained input" if name in wrt else "input (data, not trained)"
        items.append([("math", printer.name(name)), ("text", f" the {role} "), ("code", name)])
    shown = {str(s) for s in loss.inputs} | {str(loss.target)}
    for p in _param_names(loss):
        if p in shown:
            continue
        value = loss.fixed.get(p)
        if value is None:
            items.append([("math", printer.name(p)), ("text", " the parameter "), ("code", p)])
        elif isinstance(value, sp.Symbol):
            item: list[Chunk] = [("math", printer.name(p)), ("text", " the known constant "), ("code", p)]
            if str(value) != p:
                item += [("text", " (named "), ("code", str(value)), ("text", ")")]
                if printer.doprint(value) != printer.name(p):
                    item[-1:-1] = [("text", ", "), ("math", printer.doprint(value))]
            items.append(item)
            shown.add(str(value))
        else:
            items.append([("math", printer.name(p)), ("text", " the parameter "), ("code", p),
                          ("text", ", fixed to "), ("math", printer.doprint(value))])
        shown.add(p)
    for c in loss.constants:
        if str(c) not in shown:
            items.append([("math", printer.name(str(c))), ("text", " a known constant "), ("code", str(c))])
            shown.add(str(c))
    if loss.penalty is not None:
        pen = loss.penalty
        items.append([("math", printer.doprint(pen.weight)), ("text", " a weight of the model, with prior scale "),
                      ("math", printer.doprint(pen.scale))])
    if loss.event == "vector":
        vector = loss.metadata.get("vector")
        k = printer.doprint(vector.k) if vector is not None else "k"
        big_k = printer.doprint(vector.K) if vector is not None else "K"
        items.append([("text", "the class index "), ("math", f"{k} = 0, \\ldots, {big_k} - 1")])
    for n, chunks in enumerate(items):
        if n:
            out.append(("text", "; "))
        out += chunks
    out.append(("text", "."))
    return out


def _known_sentence(loss: Loss, printer: LossLatexPrinter) -> list[Chunk] | None:
    k = loss.known_as
    if k is None:
        return None
    out: list[Chunk] = [("text", "Up to terms that do not depend on the trained inputs, this loss is ")]
    if k.factor != 1:
        out += [("math", printer.doprint(k.factor) + r" \times"), ("text", " ")]
    out.append(("text", f"the {k.name}"))
    if k.torch:
        call = k.torch
        if k.torch_kwargs:
            call += "(" + ", ".join(f"{a}={v!r}" for a, v in k.torch_kwargs.items()) + ")"
        out += [("text", "; PyTorch computes it with "), ("code", call)]
        if k.arguments:
            out.append(("text", " ("))
            for n, (arg, inp) in enumerate(k.arguments.items()):
                if n:
                    out.append(("text", ", "))
                out += [("code", arg), ("text", " = "), ("math", printer.name(inp))]
            out.append(("text", ")"))
    out.append(("text", "."))
    return out


def _table(loss: Loss, report: Any, printer: LossLatexPrinter) -> list[tuple[list[Chunk], str, str]]:
    rows: list[tuple[list[Chunk], str, str]] = []
    convex_in = dict(getattr(report, "convex_in", {}) or {})
    for v in report:
        rows.append(([("text", str(v.name))], str(v.status), _short(str(v.reason))))
        if v.name == "convex" and len(convex_in) > 1:
            for inp, cv in convex_in.items():
                rows.append(([("text", "convex in "), ("math", printer.name(str(inp)))], str(cv.status),
                             _short(str(cv.reason))))
    return rows


def _short(reason: str, limit: int = 260) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= limit else reason[: limit - 1].rstrip() + "…"


def _analysis_report(loss: Loss, report: Any, analysis: bool | None, budget: float | None,
                     comments: list[str]) -> Any:
    """The report to tabulate: the one given, else a fresh analysis (optional unless ``analysis=True``)."""
    if report is not None or analysis is False:
        return report
    try:
        from ..analysis import analyze
    except ImportError:
        if analysis:  # asked for explicitly: say why there is no table
            from ..errors import UnsupportedError

            raise UnsupportedError("the property table needs symloss.analysis, which is not available") from None
        return None
    try:
        return analyze(loss, budget=budget)
    except Exception as exc:  # an analysis failure must not cost the user the write-up, unless they asked for it
        if analysis:
            raise
        comments.append(f"property analysis failed: {type(exc).__name__}: {exc}")
        return None


def _content(loss: Loss, *, notation: Mapping[str, str] | None, batch: bool, report: Any, analysis: bool | None,
             analysis_budget: float | None) -> tuple[_Content, LossLatexPrinter]:
    printer = make_printer(loss, notation)
    comments: list[str] = []
    rep = _analysis_report(loss, report, analysis, analysis_budget, comments)
    content = _Content(
        title=_title(loss),
        intro=_intro(loss, printer),
        derivation=derivation_rows(loss, batch=batch, printer=printer),
        gradient=gradient_rows(loss, printer, batch=batch),
        known=_known_sentence(loss, printer),
        table=_table(loss, rep, printer) if rep is not None else None,
        comments=comments,
    )
    if rep is not None:
        budget = getattr(rep, "budget", None)
        content.table_note = "Properties decided by symloss.analysis" + (
            f" (budget {budget:g} s)" if isinstance(budget, (int, float)) else "") + \
            ": proved, disproved (with a re-checked numeric witness) or unknown."
    return content, printer


# ---------------------------------------------------------------------------------------------------------
# LaTeX
_PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage{amsmath}
\usepackage{amssymb}
% a 6.27in x 9in text block (1in margins on A4) without the geometry package
\setlength{\textwidth}{6.27in}
\setlength{\oddsidemargin}{0in}
\setlength{\evensidemargin}{0in}
\setlength{\textheight}{9in}
\setlength{\topmargin}{0in}
\setlength{\headheight}{0pt}
\setlength{\headsep}{0pt}
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.6ex}
\allowdisplaybreaks
"""


def _latex_chunks(chunks: Sequence[Chunk]) -> str:
    out = []
    for kind, value in chunks:
        if kind == "math":
            out.append(f"${value}$")
        elif kind == "code":  # long names may break after an underscore rather than run into the margin
            out.append(r"\texttt{" + latex_text(value).replace(r"\_", r"\_\allowbreak{}") + "}")
        else:
            out.append(latex_text(value))
    return "".join(out)


def _latex_rows(rows: Sequence[Row]) -> str:
    lines = []
    for n, row in enumerate(rows):
        end = r" \\" if n < len(rows) - 1 else ""
        for k, part in enumerate(row.lines):
            if k == 0:
                text = f"{row.lhs} &= {part}"
                if row.note:
                    text += f" && {row.note}"
            else:
                text = r"&\quad {} " + part  # {} keeps the leading sign binary
            last = k == len(row.lines) - 1
            lines.append("  " + text + (end if last else r" \\"))
    return "\\begin{align*}\n" + "\n".join(lines) + "\n\\end{align*}"


def _latex_table(rows: Sequence[tuple[list[Chunk], str, str]]) -> str:
    body = [r"\begin{center}", r"\small", r"\begin{tabular}{|l|l|p{0.62\textwidth}|}", r"\hline",
            r"\textbf{property} & \textbf{verdict} & \textbf{reason} \\ \hline"]
    for name, status, reason in rows:
        mark = {"proved": r" $\checkmark$", "disproved": r" $\times$"}.get(status, "")
        body.append(f"{_latex_chunks(name)} & {latex_text(status)}{mark} & {latex_text(reason)} \\\\ \\hline")
    body += [r"\end{tabular}", r"\end{center}"]
    return "\n".join(body)


def _latex_body(content: _Content, *, standalone: bool) -> str:
    head = (lambda t: r"\subsection*{" + t + "}") if standalone else (lambda t: r"\paragraph{" + t + ".}")
    parts = [f"% symloss: {latex_text(c)}" for c in content.comments]
    if standalone:
        parts.append(r"\section*{" + _latex_chunks(content.title) + "}")
    parts += [_latex_chunks(p) for p in content.intro]
    parts += [head("Derivation"), _latex_rows(content.derivation)]
    if content.gradient:
        parts += [head("Gradient"), _latex_rows(content.gradient)]
    if content.known is not None:
        parts += [head("Classic loss"), _latex_chunks(content.known)]
    if content.table is not None:
        parts += [head("Properties"), latex_text(content.table_note), _latex_table(content.table)]
    return "\n\n".join(parts) + "\n"


def to_latex(loss: Loss, *, standalone: bool = False, notation: Mapping[str, str] | None = None,
             batch: bool = False, report: Any = None, analysis: bool | None = None,
             analysis_budget: float | None = DEFAULT_BUDGET) -> str:
    """The derivation of ``loss`` as LaTeX.

    standalone:
        ``True``: a complete document (``article`` with ``amsmath`` and
        ``amssymb`` only); ``False``: a fragment to ``\\input`` into a paper
        that loads ``amsmath`` and ``amssymb``.
    notation:
        LaTeX for names, over :data:`~symloss.export.printer.DEFAULT_NOTATION`
        (``{"loc": r"\\hat{y}"}``).
    batch:
        Also write the loss as a mean over a batch, ``\\frac{1}{N}\\sum_{i=1}^{N}``,
        and the gradient of that mean.
    report:
        A :class:`symloss.analysis.Report` to tabulate.  Without one the loss
        is analysed when ``analysis`` allows: ``None`` (default) includes the
        table when :mod:`symloss.analysis` is available and leaves it out
        silently otherwise; ``True`` requires it; ``False`` leaves it out.
    analysis_budget:
        Seconds for that analysis.
    """
    content, _ = _content(loss, notation=notation, batch=batch, report=report, analysis=analysis,
                          analysis_budget=analysis_budget)
    body = _latex_body(content, standalone=standalone)
    if not standalone:
        return "% symloss: the derivation of the " + latex_text(loss.name) + \
            " loss; needs \\usepackage{amsmath,amssymb}\n" + body
    return (f"% Generated by symloss {_version()}: the derivation of the {latex_text(loss.name)} loss.\n"
            + _PREAMBLE + "\\begin{document}\n\n" + body + "\n\\end{document}\n")


def _version() -> str:
    from .. import __version__

    return __version__


# ---------------------------------------------------------------------------------------------------------
# Markdown
def _md_chunks(chunks: Sequence[Chunk]) -> str:
    out = []
    for kind, value in chunks:
        if kind == "math":
            out.append(f"${value}$")
        elif kind == "code":
            out.append("`" + value.replace("`", "'") + "`")
        else:
            out.append(markdown_text(value))
    return "".join(out)


def _md_rows(rows: Sequence[Row]) -> str:
    lines = []
    for n, row in enumerate(rows):
        end = r" \\" if n < len(rows) - 1 else ""
        for k, part in enumerate(row.lines):
            text = (f"{row.lhs} &= {part}" + (f" && {row.note}" if row.note else "")) if k == 0 else \
                r"&\quad {} " + part
            lines.append(text + (end if k == len(row.lines) - 1 else r" \\"))
    return "$$\n\\begin{aligned}\n" + "\n".join(lines) + "\n\\end{aligned}\n$$"


def to_markdown(loss: Loss, *, notation: Mapping[str, str] | None = None, batch: bool = False, report: Any = None,
                analysis: bool | None = None, analysis_budget: float | None = DEFAULT_BUDGET) -> str:
    """The same write-up as :func:`to_latex`, as Markdown with ``$$ … $$`` blocks (MathJax/KaTeX)."""
    content, _ = _content(loss, notation=notation, batch=batch, report=report, analysis=analysis,
                          analysis_budget=analysis_budget)
    parts = [f"<!-- symloss: {c.replace('--', '- -')} -->" for c in content.comments]
    parts.append("## " + _md_chunks(content.title))
    parts += [_md_chunks(p) for p in content.intro]
    parts += ["### Derivation", _md_rows(content.derivation)]
    if content.gradient:
        parts += ["### Gradient", _md_rows(content.gradient)]
    if content.known is not None:
        parts += ["### Classic loss", _md_chunks(content.known)]
    if content.table is not None:
        table = ["| property | verdict | reason |", "| --- | --- | --- |"]
        for name, status, reason in content.table:
            table.append(f"| {_md_chunks(name)} | {status} | {markdown_text(reason)} |")
        parts += ["### Properties", markdown_text(content.table_note), "\n".join(table)]
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------------------
# files
def write_latex(loss: Loss, path: str | os.PathLike[str], *, force: bool = False, **kw: Any) -> Path:
    """Write :func:`to_latex` (a standalone document unless ``standalone=False``) to ``path`` atomically.

    Refuses to replace an existing file unless ``force``; returns the path written.
    """
    from ..fileio import write_text_atomic

    kw.setdefault("standalone", True)
    return write_text_atomic(path, to_latex(loss, **kw), force=force)


def write_markdown(loss: Loss, path: str | os.PathLike[str], *, force: bool = False, **kw: Any) -> Path:
    """Write :func:`to_markdown` to ``path`` atomically (refusing to overwrite without ``force``)."""
    from ..fileio import write_text_atomic

    return write_text_atomic(path, to_markdown(loss, **kw), force=force)
