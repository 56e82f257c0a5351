"""One documentation page per catalog loss, the loss index and the "which loss for my data?" comparison."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..codegen.catalog import CatalogEntry, derive_entry
from ..errors import SymlossError
from ..loss import Loss

__all__ = ["LossPage", "loss_page", "losses_index", "comparison_page", "NOISE"]


@dataclass(frozen=True)
class LossPage:
    """What the build keeps of one generated loss page (the page itself is written by :func:`loss_page`)."""

    name: str  # the module / page name
    distribution: str
    links: str
    inputs: str
    known_as: str
    note: str
    canonical: bool
    statuses: dict[str, str] = field(default_factory=dict)  # property -> status
    convex_in: dict[str, str] = field(default_factory=dict)  # trained input -> status
    figures: tuple[str, ...] = ()
    skipped: str | None = None  # why no code was generated


def _links_text(loss: Loss) -> str:
    links = ", ".join(f"{p}={lk}" for p, lk in loss.links.items())
    fixed = ", ".join(f"{p}={v}" for p, v in loss.fixed.items())
    return "; ".join(filter(None, [links, f"fixed {fixed}" if fixed else ""])) or "—"


def _inputs_text(loss: Loss) -> str:
    text = ", ".join(f"`{s}`" + ("" if s in loss.wrt else " (data)") for s in loss.inputs)
    if loss.constants:
        text += "; keyword: " + ", ".join(f"`{c}`" for c in loss.constants)
    return text


def _cell(text: str) -> str:
    """Text for a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _code_calls(text: str | None) -> str | None:
    """``torch.nn.functional.f(a=b)`` calls in ``text`` as inline code."""
    if not text:
        return text
    return re.sub(r"(torch\.[\w.]+\([^()]*\))", r"`\1`", text)


def _known_cell(loss: Loss, known: str | None) -> str:
    if loss.known_as is None:
        return "none (the generated module is the implementation)"
    return known if loss.known_as.torch else f"{known} (no torch built-in)"


def _code_block(source: str, lang: str = "python", indent: str = "") -> str:
    fence = "```"
    while fence in source:
        fence += "`"
    body = "\n".join(indent + line if line else line for line in source.rstrip("\n").split("\n"))
    return f"{indent}{fence}{lang}\n{body}\n{indent}{fence}"


def loss_page(entry: CatalogEntry, out_dir: str | Path, *, budget: float = 2.0) -> LossPage:
    """Derive, analyse, generate and plot one catalog entry; write ``<out_dir>/<name>.md`` and its figures
    (``<out_dir>/figures/<name>-*.svg``).  Returns the summary the index and comparison pages use."""
    from ..analysis import analyze
    from ..codegen import generate, load
    from ..codegen.docs import known_as_text
    from ..codegen.model import module_name
    from ..export import to_markdown
    from . import plots

    out_dir = Path(out_dir)
    loss = derive_entry(entry)
    name = module_name(loss.name)
    report = analyze(loss, budget=budget)
    sources: dict[str, str] = {}
    skipped = None
    try:
        sources = {target: generate(loss, target=target) for target in ("numpy", "torch")}
    except SymlossError as exc:
        skipped = str(exc)
    module = None
    if skipped is None:
        try:
            module = load(loss, target="numpy")
        except Exception:  # the plots fall back to the symbolic loss
            module = None
    dist = loss.distribution
    known = _code_calls(known_as_text(loss, per_element=False))

    figures: list[str] = []
    setup = plots.plot_setup(loss, module)
    if plots.loss_curves_figure(loss, setup, out_dir / "figures" / f"{name}-loss.svg") is not None:
        figures.append(f"figures/{name}-loss.svg")
    if plots.convexity_figure(loss, setup, out_dir / "figures" / f"{name}-convexity.svg",
                              convex_status=report.convex.status) is not None:
        figures.append(f"figures/{name}-convexity.svg")

    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# `{name}`", ""]
    if entry.note:
        lines += [f"Catalog entry: {entry.note}.", ""]
    support = dist.support if dist is not None else "?"
    from ..domains import get_domain

    try:
        support_text = f"{support} ({get_domain(support).description})"
    except SymlossError:
        support_text = support
    if dist is not None and dist.support_note:
        support_text += f"; {dist.support_note}"
    rows = [
        ("distribution", f"{dist.name}" if dist is not None else "custom"),
        ("density from", f"{dist.source}; {dist.reference}" if dist is not None else "—"),
        ("support of the target `y`", support_text),
        ("links", _links_text(loss)),
        ("inputs", _inputs_text(loss)),
        ("derive it", f"`symloss.derive({entry.distribution!r}, " + ", ".join(
            f"{k}={v!r}" for k, v in entry.options.items()) + ")`"),
        ("classic loss / torch built-in", _known_cell(loss, known)),
    ]
    lines += ["| | |", "| --- | --- |"] + [f"| {k} | {_cell(v)} |" for k, v in rows] + [""]

    md = to_markdown(loss, report=report)
    lines += [md.rstrip(), ""]
    witnesses = [(v.name, v.to_dict()["witness"]) for v in report if v.status == "disproved" and v.witness]
    witnesses += [(f"convex in {k}", v.to_dict()["witness"]) for k, v in report.convex_in.items()
                  if v.status == "disproved" and v.witness and len(report.convex_in) > 1]
    if witnesses:
        lines += ["### Witnesses", "",
                  "Each disproved verdict comes with concrete numbers, re-checked with mpmath at 50 digits:", ""]
        for prop, witness in witnesses:
            lines += [f'??? note "{prop}"', "", _code_block(json.dumps(witness, indent=1, ensure_ascii=False),
                                                             "json", "    "), ""]

    lines += ["## Plots", ""]
    if not figures:
        lines += ["No plot: the loss could not be evaluated numerically here.", ""]
    for fig in figures:
        if fig.endswith("-loss.svg"):
            lines += ["The loss and its derivative against the first trained input, for a few targets "
                      "(curves computed with the generated NumPy module where there is one):", "",
                      f"![{name}: loss and gradient]({fig})", ""]
        else:
            lines += ["Where convexity fails: contours of the loss over the first two trained inputs, the region "
                      "where the Hessian of this slice has a negative eigenvalue shaded (computed from the "
                      "symbolic second derivatives).", "", f"![{name}: convexity]({fig})", ""]

    lines += ["## Generated code", ""]
    if skipped:
        lines += [f"Not generated: {_cell(skipped)}", ""]
    else:
        lines += [f"`symloss.generate(loss, target=...)`; the same modules are in the repository's "
                  f"`generated/numpy/{name}.py` and `generated/torch/{name}.py`.", ""]
        for label, target in (("NumPy", "numpy"), ("PyTorch", "torch")):
            lines += [f'=== "{label}"', "", _code_block(sources[target], "python", "    "), ""]

    lines += ["## Torch built-in", ""]
    if loss.known_as is not None and loss.known_as.torch:
        lines += [f"Up to terms free of the trained inputs, this loss equals {known}.", ""]
    elif loss.known_as is not None:
        lines += [f"This is {known}; PyTorch has no built-in for it: use the generated module.", ""]
    else:
        lines += ["symloss recognises no classic loss or torch built-in here: the generated module is the "
                  "implementation.", ""]

    (out_dir / f"{name}.md").write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8", newline="\n")
    return LossPage(
        name=name,
        distribution=dist.name if dist is not None else "custom",
        links=_links_text(loss),
        inputs=_inputs_text(loss),
        known_as=known or "",
        note=entry.note,
        canonical=dict(entry.options).get("link") == "canonical",
        statuses={v.name: v.status for v in report},
        convex_in={k: v.status for k, v in report.convex_in.items()},
        figures=tuple(figures),
        skipped=skipped,
    )


def _status(status: str | None) -> str:
    return {"proved": "✅ proved", "disproved": "❌ disproved", "unknown": "❔ unknown"}.get(status or "", "—")


def losses_index(pages: list[LossPage]) -> str:
    lines = [
        "# Losses",
        "",
        "One page per loss of the catalog (`symloss catalog`, the `generated/` directory): every registry "
        "distribution with its canonical link(s), and a few classic variants.  Each page has the derivation, "
        "the property verdicts with their reasons, plots of the loss and its gradient, and the generated NumPy "
        "and PyTorch code.  The verdicts come from `symloss.analyze` with a small time budget per loss, so an "
        "\"unknown\" may become \"proved\" or \"disproved\" with a larger one.",
        "",
        "| loss | distribution | links | inputs | convex | robust | torch built-in |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in pages:
        lines.append(f"| [`{p.name}`]({p.name}.md) | {p.distribution} | {_cell(p.links)} | {_cell(p.inputs)} | "
                     f"{_status(p.statuses.get('convex'))} | {_status(p.statuses.get('robust'))} | "
                     f"{_cell(p.known_as) or '—'} |")
    skipped = [p for p in pages if p.skipped]
    if skipped:
        lines += ["", "No code is generated for: " + ", ".join(f"`{p.name}`" for p in skipped) +
                  " (see their pages for the reason)."]
    return "\n".join(lines) + "\n"


#: the noise assumption of each registry distribution, and the data it suits
NOISE: dict[str, str] = {
    "Normal": "additive Gaussian noise; constant (or modelled) variance; light tails",
    "Laplace": "additive double-exponential noise; heavier tails than Gaussian; the median is the fit",
    "Cauchy": "additive noise with very heavy tails (no mean); gross outliers",
    "StudentT": "additive heavy-tailed noise, tail weight set by the degrees of freedom",
    "Logistic": "additive noise like the Gaussian but with slightly heavier (exponential) tails",
    "Gumbel": "skewed additive noise: maxima (extreme values) of many draws",
    "HyperbolicSecant": "symmetric noise with exponential tails, between logistic and Laplace",
    "AsymmetricLaplace": "asymmetric double-exponential noise; the fit is the chosen quantile",
    "LogNormal": "multiplicative noise: log y is Gaussian; positive, right-skewed data",
    "HalfNormal": "magnitudes |ε| of Gaussian noise; positive data peaked at 0",
    "HalfCauchy": "magnitudes of heavy-tailed noise; positive data with rare huge values",
    "Exponential": "waiting times of a memoryless process; positive data, constant hazard",
    "Gamma": "positive, right-skewed data with variance growing as the mean squared (constant CV)",
    "InverseGamma": "positive data with a heavy right tail (e.g. variances)",
    "Weibull": "lifetimes with a hazard rising or falling as a power of time",
    "Pareto": "power-law tails above a threshold (incomes, sizes)",
    "Chi2": "sums of squared Gaussians (sample variances); positive data",
    "InverseGaussian": "first-passage times of Brownian motion with drift; positive, skewed",
    "Rayleigh": "the length of a 2-D Gaussian vector (wind speed, signal amplitude)",
    "LogLogistic": "positive data whose log is logistic; survival times with a non-monotone hazard",
    "Beta": "proportions and rates strictly inside (0, 1)",
    "Kumaraswamy": "proportions in (0, 1), a Beta-like shape with a closed-form CDF",
    "ContinuousBernoulli": "values in [0, 1] such as pixel intensities (a proper density for [0, 1] data)",
    "VonMises": "angles and directions (circular data)",
    "Bernoulli": "binary outcomes 0/1 (two-class classification)",
    "Binomial": "successes out of a known number of trials",
    "Geometric": "failures before the first success",
    "Poisson": "counts of independent events; variance equal to the mean",
    "NegativeBinomial": "over-dispersed counts: variance larger than the mean",
    "Skellam": "the difference of two Poisson counts (goal differences); any integer",
    "Categorical": "one class out of K (multi-class classification)",
    "Multinomial": "counts over K classes out of a known total",
    "Dirichlet": "probability vectors (compositions) over K classes",
}


def comparison_page(pages: list[LossPage], *, complete: bool) -> str:
    """The "which loss for my data?" page: one row per registry distribution (support, noise assumption,
    canonical link) with the convexity and robustness verdicts of its canonical-link loss where analysed."""
    from .. import registry
    from ..domains import get_domain

    by_dist: dict[str, LossPage] = {p.distribution: p for p in pages if p.canonical}
    lines = [
        "# Which loss for my data?",
        "",
        "Pick the likelihood whose support matches your target and whose noise assumption matches how your data "
        "scatter around the prediction; symloss derives the loss from it.  This table is generated from the "
        "registry (`symloss list`) and from the analysis of each distribution's canonical-link loss:",
        "",
        "* **convex**: jointly convex in the trained inputs (then gradient descent has no spurious minima);",
        "* **convex in the first input**: convex in the location / logit / log-rate alone, the input you "
        "usually predict (others held fixed);",
        "* **robust**: the gradient stays bounded as the target moves away (outliers cannot dominate the fit).",
        "",
        "## Quick guide",
        "",
        "| your target | start with | if it has outliers / over-dispersion |",
        "| --- | --- | --- |",
        "| real numbers | `normal` with `fixed={'scale': 1}` (MSE) | `laplace` (MAE), `studentt`, `cauchy` |",
        "| a quantile of real numbers | `asymmetriclaplace` with the quantile fixed (pinball) | — |",
        "| positive, skewed | `gamma`, `lognormal` | `inversegamma`, `loglogistic` |",
        "| waiting times, lifetimes | `exponential`, `weibull` | `loglogistic` |",
        "| proportions in (0, 1) | `beta` | `kumaraswamy` |",
        "| binary labels | `bernoulli` with the logit link (BCE with logits) | — |",
        "| counts | `poisson` with the log link | `negativebinomial` |",
        "| successes out of n | `binomial` | — |",
        "| one of K classes | `categorical` (softmax cross-entropy) | — |",
        "| angles | `vonmises` | — |",
        "",
        "## All distributions",
        "",
    ]
    if not complete:
        lines += ['!!! note "Partial build"',
                  "    This site was built for a subset of the catalog; verdicts are shown only for the losses "
                  "built (— elsewhere).  `python -m symloss.site` builds them all.", ""]
    lines += [
        "| distribution | support of y | noise assumption / typical data | canonical link | loss | convex | "
        "convex in the first input | robust |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for dname in registry.names():
        dist = registry.get(dname)
        try:
            support = get_domain(dist.support).description
        except SymlossError:
            support = dist.support
        if dist.support_note:
            support += f" ({dist.support_note})"
        links = ", ".join(f"{p}: {lk}" for p, lk in dist.canonical_links.items()) or "—"
        page = by_dist.get(dist.name)
        if page is not None:
            loss_link = f"[`{page.name}`](losses/{page.name}.md)"
            first = next(iter(page.convex_in.values()), None)
            convex, convex_first, robust = page.statuses.get("convex"), first, page.statuses.get("robust")
        else:
            loss_link, convex, convex_first, robust = "—", None, None, None
        lines.append(f"| {dist.name} | {_cell(support)} | {_cell(NOISE.get(dist.name, dist.notes or '—'))} | "
                     f"{_cell(links)} | {loss_link} | {_status(convex)} | {_status(convex_first)} | "
                     f"{_status(robust)} |")
    lines += ["", "Verdicts are from `symloss.analyze` under a small time budget; \"unknown\" means it settled "
              "nothing in that time, not that the property fails."]
    return "\n".join(lines) + "\n"
