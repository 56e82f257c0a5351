"""Figures for the loss pages: the loss and its gradient against the prediction for a few targets, and for
losses with two or more trained inputs a contour plot that shades where the Hessian is not positive
semi-definite (where convexity fails).

Everything is drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas (no pyplot, no global
backend switch, no display needed).  Files are byte-reproducible: fixed ``svg.hashsalt``, text kept as text,
and no date or version in the metadata.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp

from ..loss import Loss

__all__ = ["RC", "save_figure", "loss_curves_figure", "convexity_figure", "PlotSetup", "plot_setup"]

#: matplotlib settings used for every figure (reproducible SVG: fixed hash salt, text as text).
RC: dict[str, Any] = {
    "svg.hashsalt": "symloss-docs",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
    "savefig.dpi": 100,
}

# metadata written into the files: nothing that changes between runs or matplotlib versions
_SVG_METADATA = {"Date": None, "Creator": "symloss.site", "Format": "image/svg+xml", "Type": "StillImage"}
_PNG_METADATA = {"Software": "symloss.site"}

#: plotted range of an input, by the name of its domain
_RANGES: dict[str, tuple[float, float]] = {
    "real": (-4.0, 4.0),
    "positive": (0.02, 4.0),
    "nonnegative": (0.0, 4.0),
    "unit_interval": (0.005, 0.995),
    "closed_unit_interval": (0.0, 1.0),
    "greater_than_one": (1.02, 6.0),
    "real_vector": (-4.0, 4.0),
    "positive_vector": (0.02, 4.0),
}

#: the value an input that is not on an axis is held at, by domain (then by name, which wins)
_DEFAULTS: dict[str, float] = {
    "real": 0.0, "positive": 1.0, "nonnegative": 1.0, "unit_interval": 0.3, "closed_unit_interval": 0.3,
    "greater_than_one": 2.0, "nonnegative_integer": 10.0, "positive_integer": 10.0, "real_vector": 0.0,
    "positive_vector": 1.0,
}
_DEFAULTS_BY_NAME: dict[str, float] = {"df": 3.0, "total_count": 10.0, "quantile": 0.3}

#: a few targets per support; vector supports hold one vector per target (three classes)
_TARGETS: dict[str, tuple[Any, ...]] = {
    "real": (-2.0, 0.0, 1.5),
    "positive": (0.5, 1.0, 2.5),
    "nonnegative": (0.0, 1.0, 2.5),
    "unit_interval": (0.1, 0.5, 0.8),
    "closed_unit_interval": (0.0, 0.3, 0.9),
    "binary": (0.0, 1.0),
    "nonnegative_integer": (0.0, 2.0, 6.0),
    "positive_integer": (1.0, 2.0, 6.0),
    "integer": (-2.0, 0.0, 3.0),
    "angle": (-1.0, 0.0, 2.0),
    "class_index": (0, 1),
    "count_vector": ((3.0, 1.0, 0.0), (0.0, 2.0, 2.0)),
    "simplex": ((0.6, 0.3, 0.1), (0.2, 0.3, 0.5)),
}
_CLASSES = 3  # the number of classes of the vector-event plots


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Save ``fig`` as SVG or PNG (by the suffix) with fixed metadata, so the bytes are reproducible."""
    import matplotlib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lstrip(".").lower()
    metadata = _SVG_METADATA if fmt == "svg" else _PNG_METADATA if fmt == "png" else None
    with matplotlib.rc_context(RC):
        fig.savefig(path, format=fmt, metadata=metadata)
    return path


def _new_figure(width: float, height: float) -> Any:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


@dataclass(frozen=True)
class PlotSetup:
    """What the figures of one loss show: the input on the x axis, the values the others are held at, the
    targets, and how to evaluate the loss and its gradient on arrays."""

    x: str
    x_range: tuple[float, float]
    held: dict[str, float]
    targets: tuple[Any, ...]
    vector: bool
    evaluate: Callable[[dict[str, np.ndarray], Any], tuple[np.ndarray, np.ndarray]] | None
    fallback: Callable[[dict[str, np.ndarray], Any], tuple[np.ndarray, np.ndarray]] | None = None


def _support_mask(loss: Loss, values: dict[str, Any], target: Any) -> Any:
    """True where the target lies in the support, for supports bounded by an input ("y >= scale")."""
    if isinstance(target, tuple):
        return True
    named = {**values, str(loss.target): target}
    mask: Any = True
    for lo, hi in loss.support_constraints:
        if str(lo) in named and str(hi) in named:
            mask = mask & (np.asarray(named[str(lo)], dtype=float) <= np.asarray(named[str(hi)], dtype=float))
    return mask


def _domain_name(loss: Loss, symbol: Any) -> str:
    dom = loss.domains.get(symbol)
    return dom.name if dom is not None else "real"


def _symbol_of(loss: Loss, name: str) -> Any:
    for s in (*loss.inputs, *loss.constants):
        if str(s) == name:
            return s
    raise KeyError(name)


def _held_value(loss: Loss, symbol: Any) -> float:
    name = str(symbol)
    if name in _DEFAULTS_BY_NAME:
        return _DEFAULTS_BY_NAME[name]
    return _DEFAULTS.get(_domain_name(loss, symbol), 1.0)


def _module_evaluator(loss: Loss, module: Any, x: str, vector: bool) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """Evaluate the generated NumPy module: per-observation loss and ∂ℓ/∂x (component 0 for vectors)."""
    params = tuple(module.PARAMS)
    constants = tuple(module.CONSTANTS)
    wrt = tuple(module.WRT)

    def evaluate(values: dict[str, np.ndarray], target: Any) -> tuple[np.ndarray, np.ndarray]:
        n = np.shape(values[x])[0]
        args = []
        for p in params:
            v = np.asarray(values[p], dtype=float)
            if vector and p != "total_count":  # a class-axis input: K components, only component 0 on the axis
                full = np.broadcast_to(v[:, None] if p != x else 0.0, (n, _CLASSES)).copy()
                if p == x:
                    full[:, 0] = v
                v = full
            args.append(v)
        if vector:
            t = np.asarray(target)
            y = np.broadcast_to(t, (n, *t.shape)).copy()
        else:
            y = np.full(n, float(target))
        kwargs = {c: values[c] for c in constants}
        with np.errstate(all="ignore"):
            value = np.asarray(module.loss(*args, y, reduction="none", **kwargs), dtype=float)
            grads = module.grad(*args, y, reduction="sum", **kwargs)
        g = np.asarray(grads[wrt.index(x)], dtype=float)
        if vector:
            g = g[..., 0]
        return value, g

    return evaluate


def _sympy_evaluator(loss: Loss, x: str) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """Evaluate the symbolic loss with lambdify (for losses the code generator does not support)."""
    names = [str(s) for s in (*loss.inputs, *loss.constants)]
    symbols = [*loss.inputs, *loss.constants, loss.target]
    f = sp.lambdify(symbols, loss.expr, modules=["scipy", "numpy"])
    g = sp.lambdify(symbols, loss.gradient[_symbol_of(loss, x)], modules=["scipy", "numpy"])

    def evaluate(values: dict[str, np.ndarray], target: Any) -> tuple[np.ndarray, np.ndarray]:
        args = [values[n] for n in names] + [float(target)]
        with np.errstate(all="ignore"):
            n = np.shape(values[x])[0]
            return (np.broadcast_to(np.asarray(f(*args), dtype=float), (n,)),
                    np.broadcast_to(np.asarray(g(*args), dtype=float), (n,)))

    return evaluate


def plot_setup(loss: Loss, module: Any | None) -> PlotSetup:
    """Choose the axis input (the first trained input), the held values, the targets and the evaluator."""
    vector = loss.event == "vector"
    x_symbol = loss.wrt[0]
    x = str(x_symbol)
    x_range = _RANGES.get(_domain_name(loss, x_symbol), (-4.0, 4.0))
    held = {str(s): _held_value(loss, s) for s in (*loss.inputs, *loss.constants) if s is not x_symbol}
    target_domain = _domain_name(loss, loss.target)
    targets = _TARGETS.get(target_domain, (0.0, 1.0))
    if "total_count" in held and target_domain == "count_vector":
        targets = tuple(t for t in targets if sum(t) == sum(targets[0]))  # one total for all targets
        held["total_count"] = float(sum(targets[0]))
    symbolic = None if vector else _sympy_evaluator(loss, x)
    if module is not None:
        return PlotSetup(x, x_range, held, targets, vector, _module_evaluator(loss, module, x, vector), symbolic)
    return PlotSetup(x, x_range, held, targets, vector, symbolic)


def _fmt(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    v = float(value)
    return str(int(v)) if v.is_integer() else f"{v:g}"


def loss_curves_figure(loss: Loss, setup: PlotSetup, path: str | os.PathLike[str], *, points: int = 401) -> Path | None:
    """ℓ and ∂ℓ/∂x against the axis input x, one curve per target; None when nothing finite can be drawn."""
    lo, hi = setup.x_range
    xs = np.linspace(lo, hi, points)
    curves: list[tuple[str, np.ndarray, np.ndarray]] = []
    for evaluate in (setup.evaluate, setup.fallback):  # the generated module first, lambdify if it fails
        if evaluate is None or curves:
            continue
        for target in setup.targets:
            values = {name: np.full(points, v) for name, v in setup.held.items()}
            values[setup.x] = xs
            try:
                value, grad = evaluate(values, target)
            except Exception:  # a target outside what the code accepts: no curve
                continue
            inside = np.isfinite(value) & _support_mask(loss, values, target)
            value = np.where(inside, value, np.nan)
            grad = np.where(inside & np.isfinite(grad), grad, np.nan)
            if not np.all(np.isnan(value)):
                curves.append((f"y = {_fmt(target)}", value, grad))
    if not curves:
        return None
    fig = _new_figure(7.2, 3.0)
    ax_loss, ax_grad = fig.subplots(1, 2)
    for label, value, grad in curves:
        ax_loss.plot(xs, value, label=label, linewidth=1.4)
        ax_grad.plot(xs, grad, label=label, linewidth=1.4)
    comp = "[0]" if setup.vector else ""
    ax_loss.set_xlabel(f"{setup.x}{comp}")
    ax_loss.set_ylabel("loss ℓ")
    ax_grad.set_xlabel(f"{setup.x}{comp}")
    ax_grad.set_ylabel(f"∂ℓ/∂{setup.x}{comp}")
    _clip_axis(ax_loss)
    _clip_axis(ax_grad)
    ax_loss.legend(loc="best", fontsize=8)
    held = ", ".join(f"{k} = {_fmt(v)}" for k, v in setup.held.items())
    if setup.vector:
        held = ", ".join(filter(None, [held, f"{_CLASSES} classes, other components 0"]))
    fig.suptitle(f"{loss.name}" + (f"   ({held})" if held else ""), fontsize=9)
    return save_figure(fig, path)


def _clip_axis(ax: Any) -> None:
    """Keep huge values (a loss that blows up at the edge of the range) from flattening the curves."""
    ys = np.concatenate([line.get_ydata() for line in ax.get_lines()])
    ys = ys[np.isfinite(ys)]
    if ys.size == 0:
        return
    lo, hi = np.percentile(ys, [1, 97])
    pad = 0.08 * (hi - lo) if hi > lo else 1.0
    ax.set_ylim(lo - pad, hi + pad)


# ---------------------------------------------------------------------------------------------------------
# convexity
def _hessian_functions(loss: Loss, a: Any, b: Any) -> Callable[..., tuple[Any, Any, Any]] | None:
    symbols = [*loss.inputs, *loss.constants, loss.target]
    try:
        entries = [sp.diff(loss.expr, a, 2), sp.diff(loss.expr, a, b), sp.diff(loss.expr, b, 2)]
        # second derivatives of kinks (|x|, max) are Dirac deltas: zero away from the kink
        extra = {"DiracDelta": lambda *args: np.zeros_like(np.asarray(args[0], dtype=float))}
        fns = [sp.lambdify(symbols, e, modules=[extra, "scipy", "numpy"]) for e in entries]
    except Exception:  # no symbolic Hessian: no figure
        return None

    def hessian(*args: Any) -> tuple[Any, Any, Any]:
        return tuple(f(*args) for f in fns)  # type: ignore[return-value]

    return hessian


def convexity_figure(loss: Loss, setup: PlotSetup, path: str | os.PathLike[str], *, convex_status: str = "",
                     points: int = 121) -> Path | None:
    """Contours of ℓ over the first two trained inputs (a middle target, the rest held), with the region where
    the 2×2 Hessian of that slice has a negative eigenvalue shaded: there ℓ is not convex."""
    if loss.event == "vector" or len(loss.wrt) < 2:
        return None
    a, b = loss.wrt[0], loss.wrt[1]
    hessian = _hessian_functions(loss, a, b)
    if hessian is None:
        return None
    ra = _RANGES.get(_domain_name(loss, a), (-4.0, 4.0))
    rb = _RANGES.get(_domain_name(loss, b), (-4.0, 4.0))
    ga, gb = np.meshgrid(np.linspace(*ra, points), np.linspace(*rb, points))
    target = setup.targets[len(setup.targets) // 2]
    values: dict[str, Any] = {str(s): np.full(ga.shape, _held_value(loss, s)) for s in (*loss.inputs, *loss.constants)}
    values[str(a)], values[str(b)] = ga, gb
    args = [values[str(s)] for s in (*loss.inputs, *loss.constants)] + [np.full(ga.shape, float(target))]
    f = sp.lambdify([*loss.inputs, *loss.constants, loss.target], loss.expr, modules=["scipy", "numpy"])
    with np.errstate(all="ignore"):
        try:
            h11, h12, h22 = (np.broadcast_to(np.asarray(h, dtype=float), ga.shape) for h in hessian(*args))
            z = np.broadcast_to(np.asarray(f(*args), dtype=float), ga.shape)
        except Exception:
            return None
        lam_min = 0.5 * (h11 + h22 - np.sqrt((h11 - h22) ** 2 + 4.0 * h12**2))
        scale = np.maximum(np.abs(h11) + np.abs(h22), 1e-300)
        finite = np.isfinite(z) & _support_mask(loss, values, target)
        bad = np.where(np.isfinite(lam_min) & finite, lam_min < -1e-9 * scale, False)
    if not finite.any():
        return None
    fig = _new_figure(5.4, 4.2)
    ax = fig.subplots()
    if bad.any():
        ax.contourf(ga, gb, bad.astype(float), levels=[0.5, 1.5], colors=["#f4a3a3"], alpha=0.8)
    zc = np.where(finite, z, np.nan)
    levels = np.unique(np.round(np.nanquantile(zc, np.linspace(0.02, 0.92, 12)), 12))  # equal-area levels
    if levels.size > 1:
        cs = ax.contour(ga, gb, zc, levels=levels, linewidths=0.8, cmap="viridis")
        ax.clabel(cs, fontsize=6, fmt="%.3g")
    ax.set_xlabel(str(a))
    ax.set_ylabel(str(b))
    held = {k: v for k, v in setup.held.items() if k not in (str(a), str(b))}
    held_text = ", ".join([f"y = {_fmt(target)}", *(f"{k} = {_fmt(v)}" for k, v in held.items())])
    verdict = f"convex (joint): {convex_status}; " if convex_status else ""
    share = float(bad.sum() / max(finite.sum(), 1))
    outside = "; blank: outside the support" if not finite.all() else ""
    ax.set_title(f"{verdict}shaded: Hessian not PSD ({100 * share:.0f}% of the grid){outside}\n{held_text}",
                 fontsize=8)
    return save_figure(fig, path)
