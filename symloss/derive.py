"""Derivation: likelihood → log → negate → fix → link → drop constants → gradient (→ prior).

The one engine that acts on registry entries.  Every symbolic step that could
take long runs under the time budget (:mod:`symloss.budget`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sympy as sp

from . import registry
from .budget import DEFAULT_BUDGET, Deadline, try_with_budget
from .domains import Domain, get_domain
from .errors import DomainError, SymlossError, UnknownNameError
from .links import LINKS, check_link_fits, get_link, input_name
from .loss import Loss, Step
from .special import loggamma

__all__ = ["derive", "expand_log_density", "split_constant", "differentiate", "simplify_within"]

LinkSpec = str | Mapping[str, str] | None
FixedSpec = Mapping[str, Any] | Iterable[str] | None


# ---------------------------------------------------------------------------------------------------------
# rewrites of the log-density that hold wherever the density is positive (on the support)
def expand_log_density(expr: sp.Expr) -> sp.Expr:
    """log of a density expanded into a sum of simple terms.

    ``force=True`` is sound here because every factor of a density is positive
    on its support; the special-function logs become their log-forms
    (log Γ → loggamma, log n! → loggamma(n+1), log B(a,b) → loggammas).
    """
    e = sp.expand_log(expr, force=True)
    x_, a_, b_ = sp.Wild("x"), sp.Wild("a"), sp.Wild("b")
    rules = [
        (sp.log(sp.factorial(x_)), loggamma(x_ + 1)),
        (sp.log(sp.gamma(x_)), loggamma(x_)),
        (sp.log(sp.binomial(a_, b_)), loggamma(a_ + 1) - loggamma(b_ + 1) - loggamma(a_ - b_ + 1)),
        (sp.log(sp.beta(a_, b_)), loggamma(a_) + loggamma(b_) - loggamma(a_ + b_)),
        (sp.log(sp.sech(x_)), -sp.log(sp.cosh(x_))),
        (sp.log(sp.exp(x_)), x_),
        # 1 − sigmoid(x) = sigmoid(−x): keeps the Bernoulli-logit NLL as two softplus terms
        (1 - 1 / (1 + sp.exp(-x_)), 1 / (1 + sp.exp(x_))),
    ]
    for _ in range(3):
        before = e
        for pat, rep in rules:
            e = e.replace(pat, rep)
        e = sp.expand_log(e, force=True)
        if e == before:
            break
    # numeric loggamma of rationals: loggamma(1/2) is log(sqrt(pi))
    e = e.replace(lambda t: isinstance(t, sp.loggamma) and t.args[0].is_Rational,
                  lambda t: sp.expand_log(sp.log(sp.gamma(t.args[0])), force=True))
    return e


def split_constant(expr: sp.Expr, wrt: Sequence[sp.Basic]) -> tuple[sp.Expr, sp.Expr]:
    """(terms that depend on some symbol of ``wrt``, terms that depend on none), without expanding products."""
    terms = sp.Add.make_args(expr)
    keep, drop = [], []
    for t in terms:
        (keep if any(_depends(t, s) for s in wrt) else drop).append(t)
    return sp.Add(*keep), sp.Add(*drop)


def _depends(expr: sp.Basic, s: sp.Basic) -> bool:
    if isinstance(s, sp.IndexedBase):
        return any(getattr(i, "base", None) == s for i in expr.atoms(sp.Indexed))
    return s in expr.free_symbols


def simplify_within(expr: sp.Expr, budget: float | None) -> sp.Expr:
    """A cheap-then-thorough simplification that gives up (returning the input) when the budget runs out."""

    def run() -> sp.Expr:
        candidates = [expr, sp.cancel(expr) if not expr.has(sp.Piecewise, sp.Sum) else expr]
        try:
            candidates.append(sp.simplify(expr))
        except Exception:  # SymPy's simplify can raise on exotic inputs; keep what we have
            pass
        return min(candidates, key=sp.count_ops)

    if budget is not None and budget <= 0:
        return expr
    return try_with_budget(run, budget, expr, "simplification")


def _collapse_kronecker(expr: sp.Expr, k: sp.Symbol, j: sp.Symbol) -> sp.Expr:
    """Σ_k δ(j, k)·f(k) → f(j) (j is a valid class index)."""

    def fix(s: sp.Sum) -> sp.Expr:
        (idx, _lo, _hi), = s.limits if len(s.limits) == 1 else ((None, None, None),)
        if idx is None:
            return s
        body = sp.expand(s.function)
        out = 0
        rest = 0
        for t in sp.Add.make_args(body):
            deltas = [f for f in sp.Mul.make_args(t) if isinstance(f, sp.KroneckerDelta) and idx in f.free_symbols]
            if deltas:
                out += (t / deltas[0]).subs(idx, j)
            else:
                rest += t
        return out + (sp.Sum(rest, s.limits) if rest != 0 else 0)

    return expr.replace(lambda t: isinstance(t, sp.Sum), fix)


def differentiate(expr: sp.Expr, s: sp.Basic, *, vector: registry.VectorSymbols | None = None,
                  budget: float | None = None) -> sp.Expr:
    """∂expr/∂s, simplified within the budget; for a class-axis input, ∂expr/∂s[j]."""
    if isinstance(s, sp.IndexedBase):
        assert vector is not None
        d = sp.diff(expr, s[vector.j])
        d = _collapse_kronecker(d, vector.k, vector.j)
    else:
        d = sp.diff(expr, s)
    return simplify_within(d, budget)


# ---------------------------------------------------------------------------------------------------------
def _parse_links(dist: registry.Distribution, link: LinkSpec) -> dict[str, str]:
    if link is None:
        return {}
    if isinstance(link, str):
        if link.strip().lower() in ("canonical", "default"):
            return dict(dist.canonical_links)
        if "=" in link:
            pairs = [p.split("=", 1) for p in link.split(",") if p.strip()]
            return {k.strip(): v.strip() for k, v in pairs}
        # a bare link name applies to the only parameter it fits
        lk = get_link(link)
        fits = [p.name for p in dist.params if p.domain in lk.fits and p.trainable]
        if len(fits) != 1:
            raise DomainError(
                f"link {link!r} is ambiguous for {dist.name} (it fits {fits or 'no parameter'}); "
                f"write it as PARAM={link}, e.g. {dist.params[-1].name}={link}"
            )
        return {fits[0]: lk.name}
    return {str(k): str(v) for k, v in link.items()}


def _parse_fixed(fixed: FixedSpec) -> dict[str, Any]:
    if fixed is None:
        return {}
    if isinstance(fixed, str):
        fixed = [fixed]
    if isinstance(fixed, Mapping):
        return dict(fixed)
    return {str(name): None for name in fixed}


def _fixed_value(dist_name: str, param: registry.Param, value: Any) -> sp.Expr:
    """A number checked against the parameter's domain, or a named constant symbol."""
    domain = get_domain(param.domain)
    if value is None or value is True or (isinstance(value, str) and _is_identifier(value)):
        name = param.name if value in (None, True) else value
        from .identifiers import validate_identifier

        validate_identifier(name, role="constant")
        return domain.symbol(name)
    if isinstance(value, str):
        try:
            value = sp.Rational(value.strip())
        except (TypeError, ValueError, SyntaxError):
            raise DomainError(f"fixed value {value!r} for {param.name} of {dist_name} is not a number") from None
    try:
        number = sp.nsimplify(value, rational=True) if isinstance(value, float) else sp.sympify(value, strict=True)
    except (sp.SympifyError, TypeError):
        raise DomainError(f"fixed value {value!r} for {param.name} of {dist_name} is not a number") from None
    if not number.is_number or not domain.contains(float(number)):
        raise DomainError(
            f"fixed value {value!r} for {param.name} of {dist_name} is outside its domain: "
            f"{param.name} must be {domain.description}"
        )
    return number


def _is_identifier(text: str) -> bool:
    return text.isidentifier()


def derive(
    dist: str | registry.Distribution,
    *,
    link: LinkSpec = None,
    wrt: Sequence[str] | str | None = None,
    fixed: FixedSpec = None,
    prior: Any = None,
    budget: float | None = DEFAULT_BUDGET,
    name: str | None = None,
    zero_inflated: bool = False,
    hurdle: bool = False,
    censoring: str | None = None,
    truncation: tuple[float | None, float | None] | None = None,
    mixture: int | None = None,
    beta_nll: float | None = None,
) -> Loss:
    """Derive the negative log-likelihood loss of a registry distribution.

    Parameters
    ----------
    dist:
        A registry name ("normal", "poisson", "gaussian", ...) or entry.
    link:
        ``{"rate": "log"}`` re-parameterises a parameter through a link so the
        model outputs an unconstrained value (the input becomes ``log_rate``);
        ``"canonical"`` applies the entry's canonical links; ``"rate=log"`` and a
        bare link name that fits one parameter also work.
    wrt:
        The inputs that are trained (default: every input that is not fixed
        and not integer-valued data such as a binomial's ``total_count``).
    fixed:
        ``{"scale": 1}`` fixes a parameter to a number; ``{"scale": None}`` or
        ``["scale"]`` keeps it as a named constant symbol.
    prior:
        MAP: ``"normal"`` / ``"laplace"`` (prior scale τ / b as a symbol),
        ``{"weights": "normal"}``, or ``{"weights": ("laplace", 0.1)}``.
        The negative log-prior becomes ``Loss.penalty``.
    budget:
        Seconds allowed for each symbolic simplification (``None``: no limit).
    zero_inflated, hurdle:
        A count distribution with a structural zero: ``zero_inflated=True`` adds a gate π with
        p(0) = π + (1 − π)f(0); ``hurdle=True`` has p(0) = π and the zero-truncated f above it
        (:mod:`symloss.likelihoods`).  The gate is an input ``gate`` (``logit_gate`` under a logit link).
    censoring:
        ``"right"`` | ``"left"`` | ``"interval"``: a data input ``censored`` (0/1) switches an observation to
        the survival function / the CDF / the interval probability (``"interval"`` adds a data input
        ``upper``).  Normal (Tobit, log Φ as log_ndtr), Exponential, Weibull, Logistic.
    truncation:
        ``(lower, upper)`` with numbers or None: the density divided by the mass of [lower, upper].
    mixture:
        ``2``: a two-component mixture (parameters ``<name>1``, ``<name>2`` and ``mixing``), its log a stable
        logaddexp.
    beta_nll:
        β in [0, 1]: the β-NLL of Seitzer et al. (2022), the loss times stop_gradient(scale^(2β)); with a
        Normal, loc and scale both inputs (the heteroscedastic regression it was made for).
    """
    d = registry.get(dist)
    if zero_inflated or hurdle or censoring is not None or truncation is not None or mixture is not None:
        from .likelihoods import modify

        d = modify(d, zero_inflated=zero_inflated, hurdle=hurdle, censoring=censoring, truncation=truncation,
                   mixture=mixture)
    deadline = Deadline(None if budget is None else 4 * budget)
    links = _parse_links(d, link)
    fixed_spec = {**d.default_fixed, **_parse_fixed(fixed)}
    for pname in [*links, *fixed_spec]:
        d.param(pname)  # raises UnknownNameError with suggestions
    overlap = set(links) & set(fixed_spec)
    if overlap:
        raise DomainError(f"parameter(s) {sorted(overlap)} of {d.name} are both fixed and linked; choose one")

    vector = registry.VectorSymbols() if d.event == "vector" else None
    support = get_domain(d.support)
    domains: dict[sp.Basic, Domain] = {}

    def make_symbol(nm: str, dom: Domain) -> sp.Basic:
        if vector is not None and dom.vector:
            return sp.IndexedBase(nm, **dom.assumptions)
        return dom.symbol(nm)

    if vector is not None:
        # the target of a class-axis entry is a vector (one-hot for Categorical)
        y = sp.IndexedBase("y", **support.assumptions)
    else:
        y = support.symbol("y")
    domains[y] = support
    params: dict[str, sp.Basic] = {}
    for p in d.params:
        dom = get_domain(p.domain)
        params[p.name] = make_symbol(p.name, dom)
        domains[params[p.name]] = dom

    steps: list[Step] = []
    theta = ", ".join(d.param_names)
    density = d.density(y, params)
    steps.append(Step("likelihood", f"Likelihood of one observation y ({d.source})", f"p(y | {theta})", density))
    if vector is not None:
        logp = registry.LOG_DENSITIES[d.name](y, params)
    else:
        logp = expand_log_density(sp.log(density))
    steps.append(Step("log", "Take the logarithm", f"log p(y | {theta})", logp))
    nll = -logp
    nll = sp.expand(nll, mul=False, log=False, power_exp=False, power_base=False, multinomial=False)
    steps.append(Step("negate", "Negate: the loss is the negative log-likelihood", f"-log p(y | {theta})", nll))

    # fixed parameters --------------------------------------------------------------------------------
    fixed_values: dict[str, sp.Expr] = {}
    constants: list[sp.Symbol] = []
    for pname, value in fixed_spec.items():
        p = d.param(pname)
        v = _fixed_value(d.name, p, value)
        if get_domain(p.domain).vector:
            raise DomainError(f"{pname} of {d.name} is a vector over the classes and cannot be fixed to a scalar")
        fixed_values[pname] = v
        if isinstance(v, sp.Symbol):
            constants.append(v)
            domains[v] = get_domain(p.domain)
        del domains[params[pname]]
    if fixed_values:
        nll = expand_log_density(nll.subs({params[k]: v for k, v in fixed_values.items()}))
        text = "Fix " + ", ".join(
            f"{k} = {v}" if not isinstance(v, sp.Symbol) else f"{k} as a named constant"
            for k, v in fixed_values.items()
        )
        steps.append(Step("fix", text, "-log p", nll))

    # links ---------------------------------------------------------------------------------------------
    inputs: list[sp.Basic] = []
    parameters: dict[str, sp.Expr] = {}
    link_names: dict[str, str] = {}
    for p in d.params:
        if p.name in fixed_values:
            parameters[p.name] = fixed_values[p.name]
            continue
        lk_name = links.get(p.name, "identity")
        lk = get_link(lk_name)
        if lk.name == "identity":
            inputs.append(params[p.name])
            parameters[p.name] = params[p.name]
            continue
        if not p.trainable:
            raise DomainError(f"{p.name} of {d.name} is integer data, not a trained parameter: it takes no link")
        check_link_fits(d.name, p.name, p.domain, lk)
        in_dom = get_domain(p.domain) if lk.input_domain == "same" else get_domain(lk.input_domain)
        if get_domain(p.domain).vector and not in_dom.vector:
            in_dom = get_domain(f"{in_dom.name}_vector")
        eta = make_symbol(input_name(p.name, lk), in_dom)
        domains[eta] = in_dom
        del domains[params[p.name]]
        if lk.name == "softmax":
            m = sp.Symbol("m", integer=True, nonnegative=True)
            assert vector is not None
            lse = sp.log(sp.Sum(sp.exp(eta[m]), (m, 0, vector.K - 1)))
            # log softmax(η)_k = η_k − log Σ_m exp(η_m)
            base = params[p.name]
            nll = nll.replace(lambda t, base=base: isinstance(t, sp.log) and isinstance(t.args[0], sp.Indexed)
                              and t.args[0].base == base,
                              lambda t, eta=eta, lse=lse: eta[t.args[0].indices[0]] - lse)
            parameters[p.name] = sp.exp(eta[vector.k]) / sp.Sum(sp.exp(eta[m]), (m, 0, vector.K - 1))
            nll = _sum_linear(nll, vector)
        elif isinstance(eta, sp.IndexedBase):
            # an elementwise link on a class-axis parameter: θ[k] = g⁻¹(η[k])
            assert vector is not None
            base = params[p.name]
            nll = expand_log_density(nll.replace(
                lambda t, base=base: isinstance(t, sp.Indexed) and t.base == base,
                lambda t, lk=lk, eta=eta: lk.inverse(eta[t.indices[0]])))
            parameters[p.name] = lk.inverse(eta[vector.k])
        else:
            value = lk.inverse(eta)
            parameters[p.name] = value
            nll = expand_log_density(nll.subs(params[p.name], value))
        link_names[p.name] = lk.name
        inputs.append(eta)
        steps.append(Step("link", f"Link: {p.name} = {_inverse_text(lk.name, str(eta))}", "-log p", nll))

    # trained inputs -----------------------------------------------------------------------------------
    trainable = [s for s in inputs if _is_trainable(d, s, parameters)]
    if wrt is None:
        wrt_syms = trainable
    else:
        wanted = [wrt] if isinstance(wrt, str) else list(wrt)
        wanted = [w.strip() for item in wanted for w in str(item).split(",") if w.strip()]
        by_name = {str(s): s for s in inputs}
        wrt_syms = []
        for w in wanted:
            if w not in by_name:
                if w in fixed_values:
                    raise DomainError(f"{w} of {d.name} is fixed, so it cannot be trained (wrt)")
                raise UnknownNameError(f"input of {d.name}", w, by_name)
            if by_name[w] not in trainable:
                raise DomainError(f"{w} of {d.name} is integer-valued data and cannot be trained")
            wrt_syms.append(by_name[w])
        if not wrt_syms:
            raise DomainError("wrt is empty: name at least one input to train")

    from .compose import assemble  # compose builds on this module's split_constant and differentiate

    loss = assemble(
        name=name or _default_name(d, link_names, fixed_values), full=nll, target=y, inputs=inputs, wrt=wrt_syms,
        steps=steps, domains=domains, kind="nll", deadline=deadline, budget=budget, distribution=d,
        parameters=parameters, links=link_names, fixed=fixed_values, constants=constants, event=d.event,
        metadata={"vector": vector} if vector is not None else {},
    )
    from .recognize import recognize

    loss = _replace(loss, known_as=recognize(loss, budget=_left(deadline, budget)))
    if beta_nll is not None:
        from .likelihoods import beta_nll as apply_beta_nll

        loss = apply_beta_nll(loss, beta_nll)
    if prior is not None:
        from .priors import apply_prior

        loss = apply_prior(loss, prior)
    if name and loss.name != name:  # β-NLL and priors suffix the default name; a name the caller gave is kept
        loss = _replace(loss, name=name)
    return loss


def _replace(loss: Loss, **changes: Any) -> Loss:
    import dataclasses

    return dataclasses.replace(loss, **changes)


def _left(deadline: Deadline, budget: float | None) -> float | None:
    left = deadline.left()
    if budget is None:
        return None
    return min(budget, left) if left is not None else budget


def _is_trainable(d: registry.Distribution, s: sp.Basic, parameters: Mapping[str, sp.Expr]) -> bool:
    for p in d.params:
        if parameters.get(p.name) is s:
            return p.trainable
    return True


def _inverse_text(link: str, eta: str) -> str:
    lk = LINKS[link]
    return str(lk.inverse(sp.Symbol(eta)))


def _sum_linear(expr: sp.Expr, vector: registry.VectorSymbols) -> sp.Expr:
    """Σ_k (a_k + c) → Σ_k a_k + c·Σ_k 1-free parts: pull k-free factors out of sums (after a softmax link)."""

    def fix(s: sp.Sum) -> sp.Expr:
        (idx, lo, hi), = s.limits
        out = 0
        for t in sp.Add.make_args(sp.expand(s.function, log=False, power_exp=False)):
            free = [f for f in sp.Mul.make_args(t) if idx not in f.free_symbols]
            bound = [f for f in sp.Mul.make_args(t) if idx in f.free_symbols]
            out += sp.Mul(*free) * sp.Sum(sp.Mul(*bound), (idx, lo, hi))
        return out

    return expr.replace(lambda t: isinstance(t, sp.Sum) and t.limits[0][0] == vector.k, fix)


def _default_name(d: registry.Distribution, links: Mapping[str, str], fixed: Mapping[str, sp.Expr]) -> str:
    parts = [d.name.lower()]
    for p, lk in links.items():
        parts.append(f"{lk}_{p}")
    for p, v in fixed.items():
        if not isinstance(v, sp.Symbol):
            parts.append(f"{p}{str(v).replace('/', '_').replace('-', 'm').replace('.', 'p')}")
    return "_".join(parts)


def describe_error(exc: BaseException) -> str:
    """One line for the CLI."""
    if isinstance(exc, SymlossError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
