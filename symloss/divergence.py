"""KL divergences between registry distributions, derived in closed form.

``kl(q, p)`` derives KL(q‖p) = E_q[log q(y) − log p(y)] from the registry densities:

1. the log-ratio log q(y) − log p(y) is expanded into terms ``c(θ)·T(y)`` (the normalising constants and
   the base measures of one family cancel here);
2. each expectation E_q[T(y)] is found by one of these routes, the first that applies:

   * ``sum over the support`` — a finite support ({0, 1}): the sum written out;
   * ``exponential-family identity`` — when log q(y) = Σ_i η_i(θ)·T_i(y) + h(y) − A(θ) with as many
     statistics as parameters and an invertible Jacobian ∂η/∂θ, E_q[T] solves ∇_θ A = (∂η/∂θ)ᵀ·E_q[T]:
     symbolic differentiation of the log-normaliser A of the registry density (this is how the digamma
     terms of the Gamma and Beta divergences appear);
   * ``integration`` / ``summation`` — ∫ q(y)·T(y) dy (Σ for counts) by SymPy within the time budget;
     integrands with |y − a| kinks are split at the kinks, and two kinks are ordered by a case split
     (a = b + δ and a = b − δ, δ > 0) whose two results are merged when they agree as functions of |a − b|;

3. the sum Σ c(θ)·E_q[T] is simplified within the budget.

Where no route finds E_q[T] in closed form within the budget, :class:`NoClosedFormError` ("no closed form
found for KL(q‖p) within the budget") is raised — never a hang.  The steps of the result name the route
taken for every expectation.  No table of known results is used.

The class-axis Categorical is derived as the sum over the classes Σ_k q_k (log q_k − log p_k).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sympy as sp

from . import registry
from .budget import DEFAULT_BUDGET, Deadline, run_with_budget
from .compose import assemble, placeholder_target, select_wrt
from .derive import _fixed_value, _left, _parse_fixed, expand_log_density, simplify_within
from .domains import Domain, get_domain
from .errors import BudgetExceeded, DomainError, UnsupportedError
from .links import check_link_fits, get_link, input_name
from .loss import Loss, Step

__all__ = ["kl", "NoClosedFormError", "expectation", "STANDARD_NORMAL"]

#: Names accepted for p that mean Normal(0, 1).
STANDARD_NORMAL = ("standard_normal", "std_normal", "standardnormal", "n01", "unit_normal")


class NoClosedFormError(UnsupportedError):
    """SymPy found no closed form (for a KL divergence) within the time budget."""


# ---------------------------------------------------------------------------------------------------------
# expectations
def _by_statistic(expr: sp.Expr, y: sp.Symbol) -> dict[sp.Expr, sp.Expr]:
    """expr = Σ coeff·T(y): {T: coeff}, with T = 1 for the y-free terms."""
    out: dict[sp.Expr, sp.Expr] = {}
    for term in sp.Add.make_args(sp.expand(expr, log=False, power_exp=False, power_base=False)):
        c, dep = term.as_independent(y, as_Add=False)
        out[dep] = out.get(dep, sp.Integer(0)) + c
    return {k: v for k, v in out.items() if v != 0}


def exponential_family_moments(log_q: sp.Expr, y: sp.Symbol, params: Sequence[sp.Symbol]) -> dict[sp.Expr, sp.Expr]:
    """{T: E_q[T]} from the exponential-family identity ∇_θ A = (∂η/∂θ)ᵀ E[T]; {} when it does not apply."""
    coeffs = _by_statistic(log_q, y)
    stats = [(t, c) for t, c in coeffs.items() if t != 1 and any(c.has(s) for s in params)]
    if not stats or len(stats) != len(params):
        return {}
    if any(t.free_symbols & set(params) for t, _ in stats):
        return {}  # a statistic that depends on θ (|y − loc|): not an exponential family in θ
    log_normaliser = -coeffs.get(sp.Integer(1), sp.Integer(0))
    jac = sp.Matrix([[sp.diff(c, s) for s in params] for _, c in stats])
    det = sp.simplify(jac.det())
    if det == 0:
        return {}
    grad_a = sp.Matrix([sp.diff(log_normaliser, s) for s in params])
    sol = jac.T.LUsolve(grad_a)
    return {t: sp.simplify(v) for (t, _), v in zip(stats, sol)}


def _linear_kinks(f: sp.Expr, y: sp.Symbol) -> list[tuple[sp.Abs, sp.Expr, sp.Expr]] | None:
    """(|arg|, kink, slope) for every |arg| with arg linear in y; None if an |arg| is not linear."""
    out = []
    for a in sorted(f.atoms(sp.Abs), key=sp.default_sort_key):
        if not a.has(y):
            continue
        arg = a.args[0]
        slope = sp.diff(arg, y)
        if not slope.is_number or slope == 0 or sp.diff(arg, y, 2) != 0:
            return None
        out.append((a, sp.solve(arg, y)[0], slope))
    return out


def _integrate_pieces(f: sp.Expr, y: sp.Symbol, lo: sp.Expr, hi: sp.Expr, kinks: list, order: list) -> sp.Expr:
    """∫ f over (lo, hi) split at the kinks, whose order (ascending) is ``order``; |·| resolved on each piece."""
    cuts = [lo, *order, hi]
    total = sp.Integer(0)
    for i in range(len(cuts) - 1):
        a, b = cuts[i], cuts[i + 1]
        rep = {}
        for absval, kink, slope in kinks:
            position = order.index(kink)  # the piece (a, b) lies right of the kink iff i > position
            right = i > position
            sign = 1 if (slope > 0) == right else -1
            rep[absval] = sign * absval.args[0]
        g = sp.expand(f.xreplace(rep))
        piece = sp.integrate(g, (y, a, b), conds="none", risch=False)  # the fast heuristics first
        if piece.has(sp.Integral):
            piece = sp.integrate(g, (y, a, b), conds="none")
        total += piece
    return total


def _integrate(f: sp.Expr, y: sp.Symbol, lo: sp.Expr, hi: sp.Expr) -> sp.Expr:
    kinks = _linear_kinks(f, y)
    locations: list[sp.Expr] = []
    for _, k, _ in kinks or []:
        if k not in locations:
            locations.append(k)
    if not kinks or not locations:
        return sp.integrate(f, (y, lo, hi), conds="none")
    if len(locations) == 1:
        # shift y by the kink: the pieces then no longer carry it
        (k,) = locations
        g = f.subs(y, y + k)
        return _integrate_pieces(g, y, lo, hi, _linear_kinks(g, y) or [], [sp.Integer(0)])
    if len(locations) > 2 or lo.is_finite or hi.is_finite:
        return sp.integrate(f, (y, lo, hi), conds="none")
    k1, k2 = locations
    gap = k2 - k1
    pivots = [s for s in sorted(gap.free_symbols, key=str) if sp.diff(gap, s).is_number and sp.diff(gap, s) != 0]
    if not pivots:
        return sp.integrate(f, (y, lo, hi), conds="none")
    x = pivots[0]
    delta = sp.Symbol("_delta", positive=True)
    results = []
    for sign in (1, -1):  # case k2 = k1 + δ, then k2 = k1 − δ
        value = sp.solve(gap - sign * delta, x)[0]
        # shift y by the first kink: the kinks are then at 0 and ±δ
        shift = k1.subs(x, value)
        g = sp.expand(f.subs(x, value).subs(y, y + shift), mul=False, log=False, power_base=False)
        g = g.replace(lambda e: isinstance(e, sp.Abs), lambda e: sp.Abs(sp.expand(e.args[0])))
        kk = _linear_kinks(g, y) or []
        order = [sp.Integer(0), delta] if sign == 1 else [-delta, sp.Integer(0)]
        kk = [(a, next(o for o in order if sp.expand(o - k) == 0), s) for a, k, s in kk]
        results.append(_integrate_pieces(g, y, lo, hi, kk, order))
    plus, minus = results
    if sp.simplify(sp.expand(plus - minus)) == 0:
        return plus.subs(delta, sp.Abs(gap))
    return sp.Piecewise((plus.subs(delta, gap), gap >= 0), (minus.subs(delta, -gap), True))


def _finite(value: sp.Expr) -> bool:
    return not (value.has(sp.Integral, sp.Sum, sp.nan, sp.zoo, sp.oo, -sp.oo) or value.has(sp.hyper, sp.meijerg))


def expectation(density: sp.Expr, statistic: sp.Expr, y: sp.Symbol, support: Domain,
                moments: Mapping[sp.Expr, sp.Expr], budget: float | None) -> tuple[sp.Expr, str] | None:
    """(E[statistic] under ``density``, the route) or None when no route finds it within ``budget``."""
    if support.integer and support.lower is not None and support.upper is not None:
        lo, hi = int(support.lower), int(support.upper)
        value = sp.Add(*[(density * statistic).subs(y, v) for v in range(lo, hi + 1)])
        return sp.simplify(value), "sum over the support"
    if statistic in moments:
        return moments[statistic], "exponential-family identity"

    def run() -> sp.Expr | None:
        if support.integer:
            lo = sp.Integer(int(support.lower)) if support.lower is not None else sp.S.NegativeInfinity
            value = sp.summation(sp.expand(density * statistic), (y, lo, sp.oo))
        else:
            iv = support.interval
            value = _integrate(density * statistic, y, iv.inf, iv.sup)
        value = sp.piecewise_fold(value)
        if isinstance(value, sp.Piecewise) and value.args[-1][1] is sp.true and not value.has(sp.Abs):
            first, cond = value.args[0]
            value = first if sp.simplify(cond) is sp.true else value
        value = sp.simplify(value)
        return value if _finite(value) else None

    try:
        value = run_with_budget(run, budget, "expectation")
    except BudgetExceeded:
        return None
    except (NotImplementedError, ValueError, TypeError, IndexError):
        return None
    if value is None:
        return None
    return value, "summation" if support.integer else "integration"


# ---------------------------------------------------------------------------------------------------------
def _resolve(dist: str | registry.Distribution) -> tuple[registry.Distribution, dict[str, Any]]:
    if isinstance(dist, str) and dist.strip().lower().replace("-", "_").replace(" ", "_") in STANDARD_NORMAL:
        return registry.get("normal"), {"loc": 0, "scale": 1}
    return registry.get(dist), {}


def _parse_links(d: registry.Distribution, link: Any) -> dict[str, str]:
    if link is None:
        return {}
    if isinstance(link, str):
        if link.strip().lower() in ("canonical", "default"):
            return dict(d.canonical_links)
        pairs = [p.split("=", 1) for p in link.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise DomainError(f"write the links of q as PARAM=LINK, e.g. {d.params[-1].name}=log")
        return {k.strip(): v.strip() for k, v in pairs}
    return {str(k): str(v) for k, v in dict(link).items()}


def kl(
    q: str | registry.Distribution,
    p: str | registry.Distribution | None = None,
    *,
    link: Mapping[str, str] | str | None = None,
    fixed: Mapping[str, Any] | Iterable[str] | None = None,
    wrt: Sequence[str] | str | None = None,
    budget: float | None = DEFAULT_BUDGET,
    name: str | None = None,
) -> Loss:
    """The KL divergence KL(q‖p) between two registry distributions, as a trainable :class:`Loss`.

    Parameters
    ----------
    q, p:
        Registry names (``p`` defaults to ``q``'s family); ``p="standard_normal"`` is Normal(0, 1).
    link:
        Links on q's parameters, e.g. ``{"scale": "log"}`` (the input becomes ``q_log_scale``).
    fixed:
        Values of p's parameters: ``{"loc": 0, "scale": 1}``; ``["scale"]`` keeps one as a named constant.
        p's parameters that are not fixed are inputs ``p_<name>`` that are not trained by default.
    wrt:
        The trained inputs (default: q's, named ``q_<name>``).
    budget:
        Seconds for each symbolic step; the whole derivation gets four times as much.

    The inputs are q's parameters (``q_loc``, ``q_scale``, ...) then p's (``p_loc``, ...).  The loss has no
    observation: its target ``unused`` is a placeholder (pass 0 to the generated code).  For a diagonal
    Gaussian against a standard normal (a VAE's KL term) use ``kl("normal", "standard_normal")`` with
    ``reduction="sum"`` over the latent dimensions.
    """
    dq, _ = _resolve(q)
    dp, p_fixed = _resolve(p if p is not None else dq)
    deadline = Deadline(None if budget is None else 4 * budget)
    fixed_spec = {**p_fixed, **_parse_fixed(fixed)}
    for pname in fixed_spec:
        dp.param(pname)
    links = _parse_links(dq, link)
    for pname in links:
        dq.param(pname)
    if dq.event != dp.event:
        raise UnsupportedError(f"KL({dq.name}‖{dp.name}): one is over a class axis and the other is not")
    if dq.support != dp.support and not _support_inside(dq.support, dp.support):
        raise DomainError(f"KL({dq.name}‖{dp.name}) is infinite: q's support ({dq.support}) is not inside p's "
                          f"({dp.support})")
    if dq.support_note or dp.support_note:
        raise UnsupportedError(f"KL({dq.name}‖{dp.name}): a support that depends on a parameter is not supported")
    if dq.event == "vector":
        return _kl_categorical(dq, dp, links, fixed_spec, wrt, budget, deadline, name)

    support = get_domain(dq.support)
    y = support.symbol("y")
    qs = {pp.name: get_domain(pp.domain).symbol(f"q_{pp.name}") for pp in dq.params}
    ps = {pp.name: get_domain(pp.domain).symbol(f"p_{pp.name}") for pp in dp.params}
    untrainable = [pp.name for pp in (*dq.params, *dp.params) if not pp.trainable]
    if untrainable:
        raise UnsupportedError(f"KL({dq.name}‖{dp.name}): integer parameters ({', '.join(untrainable)}) "
                               "are not supported")
    density_q, density_p = dq.density(y, qs), dp.density(y, ps)
    log_q = expand_log_density(sp.log(density_q))
    log_p = expand_log_density(sp.log(density_p))
    ratio = expand_log_density(sp.expand(log_q - log_p, log=False, power_exp=False, power_base=False))
    title = f"KL({dq.name}‖{dp.name})"
    if support.integer:
        lo = sp.Integer(int(support.lower)) if support.lower is not None else sp.S.NegativeInfinity
        hi = sp.Integer(int(support.upper)) if support.upper is not None else sp.S.Infinity
        definition = sp.Sum(density_q * (sp.log(density_q) - sp.log(density_p)), (y, lo, hi))
    else:
        iv = support.interval
        definition = sp.Integral(density_q * (sp.log(density_q) - sp.log(density_p)), (y, iv.inf, iv.sup))
    steps = [
        Step("definition", f"{title} = E_q[log q(y) − log p(y)]: q is {dq.name} ({dq.source}), p is {dp.name} "
                           f"({dp.source})", "KL(q ‖ p)", definition),
        Step("log_ratio", "The log-ratio of the densities, expanded (normalisers and base measures of one family "
                    "cancel)", "log q(y) − log p(y)", ratio),
    ]
    moments = exponential_family_moments(log_q, y, list(qs.values()))
    value = sp.Integer(0)
    routes: dict[str, str] = {}
    for statistic, coeff in _by_statistic(ratio, y).items():
        if statistic == 1:
            value += coeff
            continue
        found = expectation(density_q, statistic, y, support, moments, _left(deadline, budget))
        if found is None:
            raise NoClosedFormError(
                f"no closed form found for KL(q‖p) within the budget: q = {dq.name}, p = {dp.name}; SymPy could "
                f"not find E_q[{statistic}] (raise the budget to try longer)")
        e, route = found
        routes[str(statistic)] = route
        steps.append(Step("expectation", f"E_q[{statistic}] by the {route}", f"E_q[{statistic}]", e))
        value += coeff * e
    full = _tidy(value, _left(deadline, budget))
    how = ", ".join(sorted(set(routes.values()))) or "no expectation needed"
    steps.append(Step("kl", f"Collect and simplify ({how}): the closed form of {title}", "KL(q ‖ p)", full))

    # p's fixed parameters, q's links ----------------------------------------------------------------------
    domains: dict[sp.Basic, Domain] = {}
    fixed_values: dict[str, sp.Expr] = {}
    constants: list[sp.Symbol] = []
    for pname, v in fixed_spec.items():
        param = dp.param(pname)
        val = _fixed_value(dp.name, param, v)
        if isinstance(val, sp.Symbol):
            val = get_domain(param.domain).symbol(f"p_{pname}")
            constants.append(val)
            domains[val] = get_domain(param.domain)
        fixed_values[pname] = val
    if fixed_values:
        full = _tidy(full.subs({ps[k]: v for k, v in fixed_values.items()}), _left(deadline, budget))
        text = "Fix p's " + ", ".join(f"{k} = {v}" if not isinstance(v, sp.Symbol) else f"{k} as a named constant"
                                      for k, v in fixed_values.items())
        steps.append(Step("fix", text, "KL(q ‖ p)", full))
    inputs: list[sp.Basic] = []
    parameters: dict[str, sp.Expr] = {}
    link_names: dict[str, str] = {}
    for pp in dq.params:
        lk = get_link(links.get(pp.name, "identity"))
        if lk.name == "identity":
            inputs.append(qs[pp.name])
            domains[qs[pp.name]] = get_domain(pp.domain)
            parameters[f"q_{pp.name}"] = qs[pp.name]
            continue
        check_link_fits(dq.name, pp.name, pp.domain, lk)
        in_dom = get_domain(pp.domain) if lk.input_domain == "same" else get_domain(lk.input_domain)
        eta = in_dom.symbol("q_" + input_name(pp.name, lk))
        value_eta = lk.inverse(eta)
        full = expand_log_density(full.subs(qs[pp.name], value_eta))
        parameters[f"q_{pp.name}"] = value_eta
        link_names[f"q_{pp.name}"] = lk.name
        inputs.append(eta)
        domains[eta] = in_dom
        steps.append(Step("link", f"Link: q's {pp.name} = {value_eta}", "KL(q ‖ p)", full))
    q_inputs = list(inputs)
    for pp in dp.params:
        if pp.name in fixed_values:
            parameters[f"p_{pp.name}"] = fixed_values[pp.name]
            continue
        inputs.append(ps[pp.name])
        domains[ps[pp.name]] = get_domain(pp.domain)
        parameters[f"p_{pp.name}"] = ps[pp.name]
    wrt_syms = select_wrt(inputs, q_inputs, wrt, title)
    target = placeholder_target()
    loss_name = name or _default_name(dq, dp, link_names, fixed_values)
    return assemble(
        name=loss_name, full=full, target=target, inputs=inputs, wrt=wrt_syms, steps=steps, domains=domains,
        kind="kl", deadline=deadline, budget=budget, parameters=parameters, links=link_names,
        fixed={f"p_{k}": v for k, v in fixed_values.items()}, constants=constants,
        metadata={"divergence": "kl", "q": dq.name, "p": dp.name, "routes": routes},
        loss_text=f"The training loss: {title} without its constant terms",
    )


def _support_inside(inner: str, outer: str) -> bool:
    a, b = get_domain(inner), get_domain(outer)
    lo_ok = b.lower is None or (a.lower is not None and a.lower >= b.lower)
    hi_ok = b.upper is None or (a.upper is not None and a.upper <= b.upper)
    return lo_ok and hi_ok and (b.integer == a.integer or not b.integer)


def _tidy(expr: sp.Expr, budget: float | None) -> sp.Expr:
    """The shorter of the expanded form (logs split) and the simplified form (logs split again)."""
    expanded = expand_log_density(sp.expand(expr, log=False, power_exp=False, power_base=False))
    simplified = expand_log_density(simplify_within(expr, budget))
    return min((expanded, simplified), key=lambda e: (sp.count_ops(e), sp.default_sort_key(e)))


def _default_name(dq: registry.Distribution, dp: registry.Distribution, links: Mapping[str, str],
                  fixed: Mapping[str, sp.Expr]) -> str:
    parts = ["kl", dq.name.lower(), dp.name.lower()]
    standard = dp.name == "Normal" and fixed.get("loc") == 0 and fixed.get("scale") == 1
    if standard:
        parts[-1] = "standard_normal"
    for pname, lk in links.items():
        parts.append(f"{lk}_{pname.removeprefix('q_')}")
    if not standard:
        for pname, v in fixed.items():
            if not isinstance(v, sp.Symbol):
                parts.append(f"p_{pname}{str(v).replace('/', '_').replace('-', 'm').replace('.', 'p')}")
    return "_".join(parts)


# ---------------------------------------------------------------------------------------------------------
def _kl_categorical(dq: registry.Distribution, dp: registry.Distribution, links: Mapping[str, str],
                    fixed_spec: Mapping[str, Any], wrt: Any, budget: float | None, deadline: Deadline,
                    name: str | None) -> Loss:
    """KL between two class-axis distributions with one probability vector each (Categorical)."""
    if dq.name != "Categorical" or dp.name != "Categorical":
        raise UnsupportedError(f"KL({dq.name}‖{dp.name}): of the class-axis entries only Categorical–Categorical "
                               "is supported")
    if fixed_spec:
        raise DomainError("p's class probabilities are a vector and cannot be fixed to a scalar")
    v = registry.VectorSymbols()
    simplex = get_domain("simplex")
    qp = sp.IndexedBase("q_probs", **simplex.assumptions)
    pp = sp.IndexedBase("p_probs", **simplex.assumptions)
    onehot = sp.IndexedBase("y", **get_domain("class_index").assumptions)
    k = v.k
    density_q = registry.LOG_DENSITIES["Categorical"]
    log_q = density_q(onehot, {"probs": qp})
    log_p = density_q(onehot, {"probs": pp})
    title = "KL(Categorical‖Categorical)"
    steps = [
        Step("definition", f"{title} = E_q[log q(y) − log p(y)] over the K one-hot outcomes y = e_k",
             "KL(q ‖ p)", sp.Sum(sp.Indexed(qp, k) * (sp.log(qp[k]) - sp.log(pp[k])), (k, 0, v.K - 1))),
        Step("log_ratio", "The log-ratio at a one-hot y (hand-written Π p_k^{y_k})", "log q(y) − log p(y)",
             log_q - log_p),
    ]
    # E_q[y_k] = q_k: the outcome e_k has probability q_k
    full = sp.Sum(qp[k] * sp.log(qp[k]) - qp[k] * sp.log(pp[k]), (k, 0, v.K - 1))
    steps.append(Step("expectation", "E_q[y_k] = q_k (the outcome e_k has probability q_k), by the sum over the "
                                     "K outcomes", "E_q[y_k]", qp[k]))
    steps.append(Step("kl", f"Collect ({title} = Σ_k q_k log q_k − q_k log p_k)", "KL(q ‖ p)", full))
    inputs: list[sp.Basic] = [qp, pp]
    parameters: dict[str, sp.Expr] = {"q_probs": qp[k], "p_probs": pp[k]}
    link_names: dict[str, str] = {}
    lk = get_link(links.get("probs", "identity"))
    if lk.name == "softmax":
        eta = sp.IndexedBase("q_logits", real=True)
        m = sp.Symbol("m", integer=True, nonnegative=True)
        norm = sp.Sum(sp.exp(eta[m]), (m, 0, v.K - 1))
        # Σ_k softmax_k (η_k − log Σ_m e^{η_m} − log p_k) = Σ_k e^{η_k}(η_k − log p_k) / Σ_m e^{η_m} − log Σ_m e^{η_m}
        full = sp.Sum(sp.exp(eta[k]) * (eta[k] - sp.log(pp[k])), (k, 0, v.K - 1)) / norm - sp.log(norm)
        inputs = [eta, pp]
        parameters["q_probs"] = sp.exp(eta[k]) / norm
        link_names["q_probs"] = "softmax"
        steps.append(Step("link", "Link: q's probs = softmax(q_logits)", "KL(q ‖ p)", full))
    elif lk.name != "identity":
        raise DomainError(f"link {lk.name!r} does not fit the class probabilities of q; use 'softmax'")
    domains: dict[sp.Basic, Domain] = {inputs[0]: get_domain("real_vector") if link_names else simplex,
                                       pp: simplex}
    wrt_syms = select_wrt(inputs, inputs[:1], wrt, title)
    return assemble(
        name=name or ("kl_categorical_categorical" + ("_logits" if link_names else "")), full=full,
        target=placeholder_target(), inputs=inputs, wrt=wrt_syms, steps=steps, domains=domains, kind="kl",
        deadline=deadline, budget=budget, parameters=parameters, links=link_names,
        metadata={"divergence": "kl", "q": "Categorical", "p": "Categorical", "vector": v,
                  "routes": {"y_k": "sum over the support"}},
        event="vector", loss_text=f"The training loss: {title} without its constant terms",
    )
