"""LaTeX export over the whole registry: every entry compiles, and every step's LaTeX parses back to its expression.

pdflatex: the compile tests skip (with the reason shown) when it is not installed, unless
SYMLOSS_REQUIRE_PDFLATEX=1, where a missing pdflatex fails them.

Parse-back: ``sympy.parsing.latex.parse_latex`` needs ``antlr4-python3-runtime==4.11.*``; the rows are
compared with the step's expression numerically at random points (names mapped back through the
notation).  Rows holding a construct that the parser cannot read are skipped and listed in
:data:`UNREADABLE`; the common entries must verify in full (:func:`test_parse_back_coverage`).
"""

from __future__ import annotations

import functools
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from sympy.core.function import AppliedUndef

import symloss
from symloss.domains import get_domain
from symloss.export import derivation_rows, make_printer, to_latex

NAMES = symloss.distribution_names()
KEYS = [(n, link) for n in NAMES for link in (None, "canonical")]


# ---------------------------------------------------------------------------------------------------------
# pdflatex
def pdflatex_or_skip() -> str:
    """The pdflatex executable; skip the test when there is none, or fail under SYMLOSS_REQUIRE_PDFLATEX=1."""
    exe = shutil.which("pdflatex")
    if exe is None:
        if os.environ.get("SYMLOSS_REQUIRE_PDFLATEX") == "1":
            pytest.fail("pdflatex is not installed but SYMLOSS_REQUIRE_PDFLATEX=1 requires it")
        pytest.skip("pdflatex is not installed (apt-get install texlive-latex-base); "
                    "set SYMLOSS_REQUIRE_PDFLATEX=1 to make this a failure")
    return exe


def compile_latex(tex: str, workdir: Path, name: str = "doc") -> str:
    """Compile ``tex`` with pdflatex in ``workdir``; return the log, or fail with its error lines."""
    exe = pdflatex_or_skip()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"{name}.tex").write_text(tex, encoding="utf-8")
    proc = subprocess.run([exe, "-halt-on-error", "-interaction=nonstopmode", f"{name}.tex"], cwd=workdir,
                          capture_output=True, text=True, timeout=240)
    log_path = workdir / f"{name}.log"
    log = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else proc.stdout
    if proc.returncode != 0 or not (workdir / f"{name}.pdf").exists():
        errors = [ln for ln in log.splitlines() if ln.startswith("!") or ln.startswith("l.")]
        pytest.fail(f"pdflatex failed on {name}.tex (rc {proc.returncode}): {errors[:12]}\n{log[-2500:]}")
    # a bitmap font (.pk) means a glyph that texlive-latex-base has only as METAFONT source (TS1 symbols):
    # it builds here, but may not on a machine without METAFONT
    bitmaps = re.findall(r"([\w.-]+\.\d+pk)>", log)
    assert not bitmaps, f"{name}.tex needs bitmap fonts {bitmaps}: a character escaped through TS1"
    return log


def overfull(log: str) -> list[float]:
    """The widths (pt) of the overfull boxes pdflatex reports."""
    return [float(w) for w in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]


def split_document(tex: str) -> tuple[str, str]:
    """(preamble, body) of a standalone document."""
    pre, rest = tex.split("\\begin{document}", 1)
    return pre, rest.rsplit("\\end{document}", 1)[0]


# ---------------------------------------------------------------------------------------------------------
# the losses, derived once for the module
@functools.cache
def loss_for(name: str, link: str | None) -> symloss.Loss:
    return symloss.derive(name, link=link)


@functools.cache
def map_example() -> symloss.Loss:
    return symloss.derive("normal", fixed={"scale": "sigma"}, prior={"weights": "normal"})


@functools.cache
def custom_example() -> symloss.Loss:
    return symloss.custom("exp(-abs(y - mu)/b)/(2*b)", params={"mu": "real", "b": "positive"})


def all_examples() -> dict[str, symloss.Loss]:
    out = {f"{n}/{link or 'plain'}": loss_for(n, link) for n, link in KEYS}
    out["map normal+gaussian prior"] = map_example()
    out["map laplace prior"] = symloss.derive("normal", fixed={"scale": 1}, prior="laplace")
    out["custom laplace-like"] = custom_example()
    return out


# ---------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_every_entry_compiles(tmp_path):
    """All registry entries (plain and canonical links), a MAP and a custom loss: one document, one run.

    Each body comes from ``to_latex(..., standalone=True)`` and every preamble must be the same, so the
    combined document is each standalone document in turn.  On a failure each entry is compiled alone to
    name the culprit.
    """
    pdflatex_or_skip()
    examples = all_examples()
    preambles, bodies = set(), []
    for k, (label, loss) in enumerate(examples.items()):
        tex = to_latex(loss, standalone=True, analysis=False, batch=k % 2 == 1)
        pre, body = split_document(tex)
        preambles.add(pre.split("\n", 1)[1])  # the first line names the loss
        bodies.append((label, body))
        assert len(tex) < 200_000, label
    assert len(preambles) == 1
    preamble = preambles.pop()
    doc = preamble + "\\begin{document}\n" + "\n\\clearpage\n".join(b for _, b in bodies) + "\n\\end{document}\n"
    try:
        log = compile_latex(doc, tmp_path / "all")
    except pytest.fail.Exception:
        failing = []
        for label, body in bodies:
            single = preamble + "\\begin{document}\n" + body + "\n\\end{document}\n"
            try:
                compile_latex(single, tmp_path / re.sub(r"\W", "_", label))
            except pytest.fail.Exception:
                failing.append(label)
        pytest.fail(f"the combined document does not compile; failing entries: {failing}")
    # long expressions are broken over lines: nothing runs far into the margin
    assert max(overfull(log), default=0.0) < 20.0, overfull(log)


@pytest.mark.slow
def test_analysis_tables_compile(tmp_path):
    """The property table with real analysis reasons (Unicode, sympy strings) compiles."""
    from symloss.analysis import analyze

    docs = []
    for loss in (loss_for("Normal", None), loss_for("Bernoulli", "canonical"), map_example(), custom_example(),
                 loss_for("Categorical", "canonical")):
        report = analyze(loss, budget=2.0)
        tex = to_latex(loss, standalone=True, report=report)
        assert r"\begin{tabular}{|l|l|p{" in tex and "booktabs" not in tex
        for verdict in report:
            assert f"\n{verdict.name} & {verdict.status}" in tex
        docs.append(split_document(tex))
    doc = docs[0][0] + "\\begin{document}\n" + "\n\\clearpage\n".join(b for _, b in docs) + "\n\\end{document}\n"
    log = compile_latex(doc, tmp_path)
    assert max(overfull(log), default=0.0) < 20.0


# ---------------------------------------------------------------------------------------------------------
# parse-back
#: Constructs that sympy's LaTeX parser cannot read back as the same function (rows holding them are skipped):
#: I_ν(x) reads as a product, \operatorname{...} does not parse, cases/δ/B(a, b) have no parser rule.
UNREADABLE: dict[type, str] = {
    sp.besseli: "Bessel I (VonMises, Skellam)",
    sp.sech: r"\operatorname{sech} (HyperbolicSecant)",
    sp.sign: r"\operatorname{sign}",
    sp.atanh: r"\operatorname{artanh}",
    sp.beta: r"\operatorname{B} (StudentT, Beta)",
    sp.Piecewise: "cases",
    sp.KroneckerDelta: "Kronecker delta",
    sp.erf: r"\operatorname{erf}",
    sp.erfc: r"\operatorname{erfc}",
    sp.erfcinv: r"\operatorname{erfcinv}",
}

#: Entries whose every derivation step must parse back (both plain and canonical links).
COMMON = ["Normal", "Laplace", "Cauchy", "Logistic", "Gumbel", "LogNormal", "HalfNormal", "HalfCauchy",
          "Exponential", "Gamma", "InverseGamma", "Weibull", "Pareto", "Chi2", "InverseGaussian", "Rayleigh",
          "LogLogistic", "Kumaraswamy", "Bernoulli", "Binomial", "Geometric", "Poisson", "NegativeBinomial",
          "Categorical", "Multinomial", "Dirichlet"]


@functools.cache
def _parse_function():
    try:
        from sympy.parsing.latex import parse_latex

        parse_latex("x + 1")
    except ImportError as exc:
        return str(exc)
    return functools.lru_cache(maxsize=4096)(parse_latex)  # names recur in every row: parse each once


def _parser():
    parse = _parse_function()
    if isinstance(parse, str):
        pytest.skip(f"sympy's LaTeX parser is unavailable ({parse}); pip install 'antlr4-python3-runtime==4.11.*'")
    return parse


def unreadable(expr: sp.Basic) -> str | None:
    for node in sp.preorder_traversal(expr):
        for cls, why in UNREADABLE.items():
            if isinstance(node, cls):
                return why
        if isinstance(node, sp.polygamma) and node.args[0] != 0:
            return r"\psi^{(n)} (polygamma of order >= 1)"
    return None


def _atoms(expr: sp.Basic) -> set[sp.Basic]:
    out: set[sp.Basic] = set(expr.atoms(sp.Symbol)) | set(expr.atoms(sp.Indexed))
    for s in expr.atoms(sp.Sum, sp.Product):
        out |= {lim[0] for lim in s.limits}
    return out


def parse_back(tex: str, expr: sp.Basic, printer) -> sp.Basic:
    """``tex`` parsed, with the parser's symbols replaced by the loss's (through the notation)."""
    parse_latex = _parser()
    # \left|x\right| is typographic: the parser reads only bare bars
    tex = tex.replace(r"\left|", "|").replace(r"\right|", "|")
    # names the parser cannot read as one symbol (\eta_{\alpha,k}) stand in as placeholders v_{n}
    placeholders: dict[sp.Basic, sp.Basic] = {}
    for n, atom in enumerate(sorted(_atoms(expr), key=lambda a: -len(printer.doprint(a)))):
        name_tex = printer.doprint(atom)
        try:
            ok = isinstance(parse_latex(name_tex), (sp.Symbol, sp.Pow))
        except Exception:
            ok = False
        if not ok and len(name_tex) > 2:
            tex = tex.replace(name_tex, f"v_{{{n}}}")
            placeholders[sp.Symbol(f"v_{{{n}}}")] = atom
    parsed = parse_latex(tex)
    functions = {"Gamma": sp.gamma, "psi": sp.digamma}
    # "\sigma \left(1 + x\right)^{2}" is σ·(1 + x)² to a reader; the parser takes it for a function σ(1 + x)²
    def applied(e: sp.Basic) -> bool:
        return isinstance(e, AppliedUndef) and e.func.__name__ not in functions and len(e.args) == 1

    # (a power of -1 comes from a \frac: 1/(σ (1 + x)) is then 1/(σ·(1 + x)), the rule below)
    parsed = parsed.replace(lambda e: isinstance(e, sp.Pow) and applied(e.base) and e.exp != -1,
                            lambda e: sp.Symbol(e.base.func.__name__) * e.base.args[0] ** e.exp)
    parsed = parsed.replace(applied, lambda e: sp.Symbol(e.func.__name__) * e.args[0])
    mapping: dict[sp.Basic, sp.Basic] = dict(placeholders)
    for atom in set(_atoms(expr)) - set(placeholders.values()):
        back = parse_latex(printer.doprint(atom))
        if isinstance(back, sp.Symbol):
            mapping[back] = atom
        elif isinstance(back, sp.Pow) and isinstance(back.base, sp.Symbol) and back.exp.is_number:
            mapping[back.base] = atom ** (1 / back.exp)  # var printed as sigma^2
        else:
            raise AssertionError(f"the notation {printer.doprint(atom)!r} of {atom} does not parse to a symbol")
    mapping.setdefault(sp.Symbol("e"), sp.E)
    mapping.setdefault(sp.Symbol("pi"), sp.pi)
    parsed = parsed.xreplace(mapping)
    return parsed.replace(lambda e: isinstance(e, AppliedUndef) and e.func.__name__ in functions,
                          lambda e: functions[e.func.__name__](*e.args))


def _domain_values(loss: symloss.Loss, expr: sp.Basic, rng: np.random.Generator) -> dict[str, float]:
    """A valid random value for every name in ``expr`` (by the registry's domains where known)."""
    domains = {str(k if not isinstance(k, sp.IndexedBase) else k.label): v for k, v in loss.domains.items()}
    if loss.distribution is not None:
        domains.update({p.name: get_domain(p.domain) for p in loss.distribution.params})
        domains[str(loss.target)] = get_domain(loss.distribution.support)
    values: dict[str, float] = {}
    for name in sorted({str(a.base.label) if isinstance(a, sp.Indexed) else str(a) for a in _atoms(expr)}):
        dom = domains.get(name)
        if dom is not None and not dom.vector and dom.name not in ("class_index",):
            values[name] = float(dom.sample(rng))
        elif dom is not None and dom.integer:
            values[name] = float(rng.integers(0, 5))
        else:
            values[name] = float(rng.uniform(0.2, 0.9)) if dom is not None else float(rng.uniform(0.3, 1.7))
    if "total_count" in values and "y" in values and loss.distribution and loss.distribution.name == "Binomial":
        values["total_count"] = values["y"] + float(rng.integers(1, 6))  # y <= n
    return values


def evaluate(expr: sp.Basic, values: dict[str, float], rng: np.random.Generator) -> complex:
    """``expr`` at ``values`` (class-axis sums over K = 3 classes, j = 1, each component drawn afresh)."""
    fixed = {}
    for s in _atoms(expr):
        if isinstance(s, sp.Symbol) and str(s) == "K":
            fixed[s] = 3
        elif isinstance(s, sp.Symbol) and str(s) == "j":
            fixed[s] = 1
    e = expr.xreplace(fixed).doit()
    subs = {}
    for a in e.atoms(sp.Indexed):
        base = values.get(str(a.base.label), 0.5)
        subs[a] = sp.Float(base * (1 + 0.3 * int(a.indices[-1])) if a.indices[-1].is_number else base)
    for s in e.free_symbols:
        if isinstance(s, sp.Symbol) and str(s) in values:
            subs[s] = sp.Float(values[str(s)])
    return complex(sp.N(e.xreplace(subs), 25))


def check_row(loss: symloss.Loss, tex: str, expr: sp.Basic, printer, seed: int = 0) -> None:
    parsed = parse_back(tex, expr, printer)
    rng = np.random.default_rng(seed)
    agreed = 0
    for _ in range(12):
        values = _domain_values(loss, expr, rng)
        try:
            a, b = evaluate(expr, values, rng), evaluate(parsed, values, rng)
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if not all(map(math.isfinite, (a.real, a.imag, b.real, b.imag))):
            continue
        assert abs(a - b) <= 1e-8 * (1 + abs(a)), f"{tex!r} reads back as {parsed}, not {expr}: {a} != {b} at {values}"
        agreed += 1
        if agreed == 3:
            return
    raise AssertionError(f"no point where {expr} and its LaTeX {tex!r} are both finite")


_COVERAGE: dict[str, dict[str, int]] = {}


@pytest.mark.slow
@pytest.mark.parametrize(("name", "link"), KEYS, ids=[f"{n}-{link or 'plain'}" for n, link in KEYS])
def test_steps_parse_back(name, link):
    """Each step's row, as printed in the document (the broken lines joined), equals the step's expression."""
    loss = loss_for(name, link)
    printer = make_printer(loss)
    rows = [r for r in derivation_rows(loss, printer=printer) if r.step is not None]
    assert [r.step for r in rows] == list(loss.steps)  # one row per step
    tally = {"verified": 0, "skipped": 0}
    for row in rows:
        why = unreadable(row.step.expr)
        if why is not None:
            tally["skipped"] += 1
            continue
        check_row(loss, row.rhs, row.step.expr, printer)
        tally["verified"] += 1
    # the gradients too, where readable
    for g in loss.gradient.values():
        if unreadable(g) is None:
            check_row(loss, printer.doprint(g), g, printer)
    _COVERAGE[f"{name}/{link or 'plain'}"] = tally


@pytest.mark.slow
def test_parse_back_coverage():
    """The common entries verify every step (nothing skipped); print the coverage of the rest."""
    for name in COMMON:
        for link in (None, "canonical"):
            loss = loss_for(name, link)
            skipped = [s.kind for s in loss.steps if unreadable(s.expr) is not None]
            assert not skipped, f"{name}/{link}: steps {skipped} hold {[unreadable(s.expr) for s in loss.steps]}"
    partial = {f"{n}/{link}": [unreadable(s.expr) for s in loss_for(n, link).steps if unreadable(s.expr)]
               for n, link in KEYS}
    partial = {k: v for k, v in partial.items() if v}
    # the documented exceptions only: Bessel I (VonMises, Skellam), sech (its likelihood), B(a, b) (likelihoods)
    assert {k.split("/")[0] for k in partial} <= {"VonMises", "Skellam", "HyperbolicSecant", "StudentT", "Beta"}, \
        partial


def test_map_and_custom_parse_back():
    for loss in (map_example(), custom_example()):
        printer = make_printer(loss)
        for row in derivation_rows(loss, printer=printer):
            if row.step is not None and unreadable(row.step.expr) is None:
                check_row(loss, row.rhs, row.step.expr, printer)
