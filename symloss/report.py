"""Plain-text reports of a derivation for the terminal."""

from __future__ import annotations

import sympy as sp

from .loss import Loss

__all__ = ["format_expr", "format_loss"]


def format_expr(expr: sp.Basic, width: int = 100) -> str:
    """Pretty (2-D, unicode) when it fits in ``width`` columns, else one line."""
    if any("_" in str(s) for s in getattr(expr, "free_symbols", ())):
        # the 2-D printer turns log_rate into log with a subscript "rate": keep names readable
        return sp.sstr(expr)
    try:
        pretty = sp.pretty(expr, use_unicode=True, wrap_line=False)
    except Exception:  # the pretty printer cannot draw every object; fall back to the string form
        return sp.sstr(expr)
    if max(len(line) for line in pretty.splitlines()) <= width and pretty.count("\n") < 8:
        return pretty
    return sp.sstr(expr)


def _indent(text: str, n: int = 4) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


def format_loss(loss: Loss) -> str:
    out = [f"symloss · {loss.name}"]
    d = loss.distribution
    if d is not None:
        out.append(f"  distribution: {d.name} ({d.source}); reference: {d.reference}")
    out.append(f"  inputs: {', '.join(loss.input_names)}   trained (wrt): {', '.join(loss.wrt_names)}   "
               f"target: {loss.target}")
    if loss.links:
        out.append("  links: " + ", ".join(f"{p} = {loss.parameters[p]}" for p in loss.links))
    out.append("")
    out.append("Derivation")
    for i, step in enumerate(loss.steps, 1):
        out.append(f"  {i}. {step.text}")
        out.append(_indent(f"{step.lhs} =", 5))
        out.append(_indent(format_expr(step.expr), 7))
    out.append("")
    out.append("Loss (per observation)")
    out.append(_indent(format_expr(loss.expr)))
    out.append("Gradient")
    for s, g in loss.gradient.items():
        out.append(f"  ∂ℓ/∂{s} =")
        out.append(_indent(format_expr(g), 6))
    if loss.penalty is not None:
        pen = loss.penalty
        out.append(f"Penalty ({pen.prior} prior, {pen.kind}): {format_expr(pen.expr)} per weight; "
                   f"gradient {format_expr(pen.gradient)}")
        if pen.coefficient is not None:
            out.append(f"  λ = {pen.coefficient} (relative to the {loss.known_as.name if loss.known_as else 'loss'})")
    out.append("Known as: " + (str(loss.known_as) if loss.known_as is not None else "no classic loss recognised"))
    return "\n".join(out)
