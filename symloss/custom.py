"""Custom densities typed as text: parsed with a whitelist, checked for normalisation, derived like any entry."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import sympy as sp

from .budget import DEFAULT_BUDGET, Deadline, try_with_budget
from .derive import _left, differentiate, expand_log_density, split_constant
from .domains import Domain, get_domain
from .errors import DomainError, NormalizationError, SymlossError, UnsupportedError
from .loss import Loss, Step

__all__ = ["custom", "normalising_constant"]

_NUMERIC_POINTS = 4  # parameter draws for the numeric normalisation check
_TOLERANCE = 1e-6


def _symbolic_normaliser(density: sp.Expr, y: sp.Symbol, support: Domain, budget: float | None) -> sp.Expr | None:
    def run() -> sp.Expr | None:
        if support.integer:
            lo = sp.Integer(int(support.lower)) if support.lower is not None else sp.S.NegativeInfinity
            hi = sp.Integer(int(support.upper)) if support.upper is not None else sp.S.Infinity
            z = sp.summation(density, (y, lo, hi))
        else:
            iv = support.interval
            z = sp.integrate(density, (y, iv.inf, iv.sup))
        if z.has(sp.Integral, sp.Sum) or z.has(sp.nan):
            return None
        z = sp.simplify(sp.piecewise_fold(z))
        if isinstance(z, sp.Piecewise):
            # SymPy states convergence conditions; on the parameter domains the first branch applies
            # only if its condition simplifies to True
            first, cond = z.args[0]
            return first if sp.simplify(cond) is sp.true else None
        return z

    return try_with_budget(run, budget, None, "normalisation integral")


def _numeric_normaliser(density: sp.Expr, y: sp.Symbol, support: Domain, params: Mapping[sp.Symbol, Domain],
                        seed: int = 0) -> list[tuple[dict, float]]:
    """∫ density dy (or Σ) at a few parameter values, with mpmath (high precision quadrature)."""
    import mpmath
    import numpy as np

    rng = np.random.default_rng(seed)
    results = []
    f = sp.lambdify([y, *params], density, modules="mpmath")
    for _ in range(_NUMERIC_POINTS):
        values = {s: float(dom.sample(rng)) for s, dom in params.items()}
        args = list(values.values())
        with mpmath.workdps(30):
            if support.integer:
                lo = int(support.lower) if support.lower is not None else -mpmath.inf
                hi = int(support.upper) if support.upper is not None else mpmath.inf
                z = mpmath.nsum(lambda t, args=args: f(t, *args), [lo, hi])
            else:
                lo = -mpmath.inf if support.lower is None else support.lower
                hi = mpmath.inf if support.upper is None else support.upper
                # split at the parameters' values: kinks and peaks sit there
                cuts = {v for v in args if lo < v < hi} | ({0.0} if lo < 0 < hi else set())
                z = mpmath.quad(lambda t, args=args: f(t, *args), [lo, *sorted(cuts), hi])
        results.append((values, float(z)))
    return results


def normalising_constant(density: sp.Expr, y: sp.Symbol, support: Domain, params: Mapping[sp.Symbol, Domain],
                         budget: float | None = DEFAULT_BUDGET) -> tuple[sp.Expr | None, list[tuple[dict, float]]]:
    """(Z symbolically or None, numeric checks) for ``∫ density dy`` over the support."""
    z = _symbolic_normaliser(density, y, support, budget)
    from .budget import run_with_budget

    # the numeric check can be slow too (mpmath on a steep density): it gets the same budget
    numeric = [] if z is not None else run_with_budget(
        lambda: _numeric_normaliser(density, y, support, params), budget, "numeric normalisation check")
    return z, numeric


def custom(
    density: str,
    *,
    target: str = "y",
    params: Mapping[str, str] | None = None,
    support: str = "real",
    normalize: bool = False,
    wrt: Sequence[str] | str | None = None,
    budget: float | None = DEFAULT_BUDGET,
    name: str = "custom",
) -> Loss:
    """Derive the loss of a density typed as text.

    ``density`` is parsed with a whitelist (never evaluated); ``params`` maps
    each parameter name to its domain ("real", "positive", "unit_interval",
    ...); ``support`` is the target's domain.  The density must integrate (or
    sum) to one over the support at every parameter value: checked
    symbolically within the budget, else numerically with mpmath at several
    parameter values.  ``normalize=True`` accepts an unnormalised density and
    keeps its normaliser log Z(θ) in the NLL (it changes the gradient when it
    depends on the parameters).
    """
    from .identifiers import validate_identifier
    from .parse import parse_expression

    if not isinstance(density, str):
        raise SymlossError("the density must be given as text, e.g. 'exp(-abs(y - mu)/b)/(2*b)'")
    params = dict(params or {})
    if not params:
        raise DomainError("name the density's parameters and their domains, e.g. params={'mu': 'real'}")
    validate_identifier(target, role="target")
    for p in params:
        validate_identifier(p, role="parameter")
    if target in params:
        raise DomainError(f"{target!r} is both the target and a parameter")
    deadline = Deadline(None if budget is None else 4 * budget)
    support_dom = get_domain(support)
    if support_dom.vector:
        raise UnsupportedError("custom densities over a class axis are not supported; use a scalar support")
    y = support_dom.symbol(target)
    param_syms = {n: get_domain(dom).symbol(n) for n, dom in params.items()}
    domains: dict[sp.Basic, Domain] = {y: support_dom, **{s: get_domain(params[n]) for n, s in param_syms.items()}}
    expr = parse_expression(density, variables={target: y, **param_syms})
    if y not in expr.free_symbols:
        raise DomainError(f"the density does not depend on the target {target!r}")

    _check_positive(expr, y, support_dom, {s: domains[s] for s in param_syms.values()})
    steps = [Step("likelihood", "Likelihood of one observation (custom density)", f"p({target} | θ)", expr)]
    z, numeric = normalising_constant(expr, y, support_dom, {s: domains[s] for s in param_syms.values()},
                                      budget=_left(deadline, budget))
    log_z: sp.Expr = sp.Integer(0)
    if z is not None:
        if sp.simplify(z - 1) != 0:
            if not normalize:
                raise NormalizationError(
                    f"the density integrates to {z} over {support_dom.describe()}, not 1; "
                    "fix it, or pass normalize=True (--normalize) to divide by this normaliser"
                )
            log_z = expand_log_density(sp.log(z))
            steps.append(Step("normalise", f"Normalise: Z = {z} (symbolic integral over the support)", "Z", z))
    else:
        bad = [(v, zz) for v, zz in numeric if not math.isfinite(zz) or abs(zz - 1) > _TOLERANCE]
        if bad:
            values, zz = bad[0]
            where = ", ".join(f"{k} = {v:.4g}" for k, v in values.items())
            if not normalize:
                raise NormalizationError(
                    f"the density integrates to {zz:.6g}, not 1, at {where} (checked numerically with mpmath); "
                    "fix it, or pass normalize=True (--normalize)"
                )
            zs = [zz for _, zz in numeric]
            if max(zs) - min(zs) > _TOLERANCE * max(1.0, abs(max(zs))):
                raise UnsupportedError(
                    "the normaliser depends on the parameters and has no closed form that SymPy could find within "
                    "the budget; give a normalised density or raise the budget"
                )
            log_z = sp.log(sp.nsimplify(zs[0], [sp.pi, sp.E], tolerance=1e-10))
            steps.append(Step("normalise", f"Normalise: Z ≈ {zs[0]:.15g} (numerically, the same at every parameter "
                                           "value tried)", "Z", sp.exp(log_z)))
    logp = expand_log_density(sp.log(expr)) - log_z
    steps.append(Step("log", "Take the logarithm", f"log p({target} | θ)", logp))
    nll = sp.expand(-logp, mul=False, log=False, power_exp=False, power_base=False, multinomial=False)
    steps.append(Step("negate", "Negate: the loss is the negative log-likelihood", f"-log p({target} | θ)", nll))

    inputs = tuple(param_syms.values())
    if wrt is None:
        wrt_syms = inputs
    else:
        wanted = [wrt] if isinstance(wrt, str) else list(wrt)
        from .errors import UnknownNameError

        wrt_syms = []
        for w in wanted:
            if w not in param_syms:
                raise UnknownNameError("parameter", w, param_syms)
            wrt_syms.append(param_syms[w])
        wrt_syms = tuple(wrt_syms)
    loss_expr, constant = split_constant(nll, wrt_syms)
    if constant != 0:
        steps.append(Step("drop", "Drop the terms that do not depend on the trained inputs", "const", constant))
    gradient = {s: differentiate(loss_expr, s, budget=_left(deadline, budget)) for s in wrt_syms}
    steps.append(Step("loss", "The training loss", "ℓ", loss_expr))
    loss = Loss(name=name, distribution=None, target=y, inputs=inputs, wrt=tuple(wrt_syms), nll=nll, expr=loss_expr,
                constant=constant, gradient=gradient, steps=tuple(steps), domains=domains,
                parameters=dict(param_syms), kind="custom", metadata={"density": density, "support": support})
    from dataclasses import replace

    from .recognize import recognize

    return replace(loss, known_as=recognize(loss, budget=_left(deadline, budget)))


def _check_positive(expr: sp.Expr, y: sp.Symbol, support: Domain, params: Mapping[sp.Symbol, Domain]) -> None:
    """A density must be non-negative: find a point where it is not, with mpmath."""
    import numpy as np

    rng = np.random.default_rng(1)
    f = sp.lambdify([y, *params], expr, modules="mpmath")
    for _ in range(24):
        args = [float(d.sample(rng)) for d in params.values()]
        yy = float(support.sample(rng))
        try:
            v = complex(f(yy, *args))
        except (ValueError, ZeroDivisionError, OverflowError, TypeError):
            continue
        if abs(v.imag) > 1e-12 or v.real < 0:
            where = ", ".join(f"{s} = {a:.4g}" for s, a in zip(params, args))
            raise NormalizationError(f"the density is negative or complex ({v:.4g}) at y = {yy:.4g}, {where}")
