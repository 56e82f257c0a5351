"""Counterexample search: numeric screening in NumPy, every hit re-checked with mpmath at 50 digits.

The searches draw points with a fixed seed (random draws inside the domains,
typical and near-boundary values from :data:`~symloss.analysis.context.SPECIAL_VALUES`),
screen them in double precision, and keep a candidate only when it survives a
re-evaluation at exact points (floats are exact binary fractions; midpoints are
computed as fractions) with 50 significant digits.  A witness is a dict of
plain numbers that anyone can evaluate again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from .context import Flat

__all__ = ["find_convexity_violation", "find_unimodality_violation", "fmt", "point_dict", "SEED"]

SEED = 20240607  # every search is reproducible
_MP_MARGIN = 1e-30  # a re-checked excess must beat this (relative to the values) at 50 digits


def fmt(v: Any, digits: int = 17) -> float | str:
    """A number for a witness: a float (exact for the points), or a string for huge/precise values."""
    try:
        import mpmath

        if isinstance(v, mpmath.mpf):
            f = float(v)
            return f if abs(f) < 1e300 else mpmath.nstr(v, digits)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(v, Fraction):
        return float(v)
    return float(v)


def point_dict(flat: Flat, point: Mapping[sp.Symbol, float | Fraction], syms: Sequence[sp.Symbol]) -> dict[str, float]:
    return {flat.name(s): float(point[s]) for s in syms}


def _rows(vals: Mapping[sp.Symbol, np.ndarray], i: int) -> dict[sp.Symbol, float]:
    return {s: float(v[i]) for s, v in vals.items()}


def _recheck_midpoint(flat: Flat, pa: Mapping[sp.Symbol, float], pb: Mapping[sp.Symbol, float],
                      var_syms: Sequence[sp.Symbol]) -> dict[str, Any] | None:
    pm: dict[sp.Symbol, float | Fraction] = dict(pa)
    for s in var_syms:
        pm[s] = (Fraction(pa[s]) + Fraction(pb[s])) / 2
    fa, fb, fm = flat.eval_mp(pa), flat.eval_mp(pb), flat.eval_mp(pm)
    if fa is None or fb is None or fm is None:
        return None
    excess = fm - (fa + fb) / 2
    if not excess > _MP_MARGIN * (1 + abs(fa) + abs(fb)):
        return None
    fixed = [s for s in flat.symbols if s not in var_syms]
    return {
        "test": "midpoint convexity: f((a+b)/2) <= (f(a)+f(b))/2 fails",
        "fixed": point_dict(flat, pa, fixed),
        "a": point_dict(flat, pa, var_syms),
        "b": point_dict(flat, pb, var_syms),
        "t": 0.5,
        "f(a)": fmt(fa),
        "f(b)": fmt(fb),
        "f((a+b)/2)": fmt(fm),
        "excess": fmt(excess),
        "checked_with": "mpmath, 50 significant digits",
    }


def find_convexity_violation(flat: Flat, wrt_subset: Sequence[sp.Basic], seconds: float, *, n: int = 600,
                             seed: int = SEED, hessian: sp.Matrix | None = None) -> dict[str, Any] | None:
    """A re-checked pair (a, b) with f((a+b)/2) > (f(a)+f(b))/2, the other symbols fixed; or None."""
    stop = time.monotonic() + max(seconds, 0.05)
    rng = np.random.default_rng(seed)
    var_syms = [c for w in wrt_subset for c in flat.groups.get(w, ())]
    if not var_syms:
        return None
    base = flat.sample_all(rng, n)
    if not base or len(next(iter(base.values()))) == 0:
        return None
    m = len(next(iter(base.values())))
    other = flat.sample(rng, m, wrt_subset)
    pa = base
    pb = {**base, **{s: other[s] for s in var_syms}}
    # the hull of two admissible points is admissible (the domains are intervals/simplices); keep constraints
    ok = ~flat.violations(pb)
    pm = {**base, **{s: (pa[s] + pb[s]) / 2 for s in var_syms}}
    fa, fb, fm = flat.eval_np(pa), flat.eval_np(pb), flat.eval_np(pm)
    with np.errstate(all="ignore"):
        gap = fm - (fa + fb) / 2
        scale = 1 + np.abs(fa) + np.abs(fb)
        good = ok & np.isfinite(gap) & np.isfinite(fa) & np.isfinite(fb) & (gap > 1e-9 * scale)
        order = np.argsort(-(np.where(good, gap / scale, -np.inf)))
    for i in order[:6]:
        if not good[i] or time.monotonic() > stop:
            break
        w = _recheck_midpoint(flat, _rows(pa, i), _rows(pb, i), var_syms)
        if w is not None:
            return w
    if hessian is None or time.monotonic() > stop:
        return None
    return _hessian_search(flat, var_syms, hessian, base, stop)


def _hessian_search(flat: Flat, var_syms: Sequence[sp.Symbol], hessian: sp.Matrix, base: dict[sp.Symbol, np.ndarray],
                    stop: float) -> dict[str, Any] | None:
    d = len(var_syms)
    m = len(next(iter(base.values())))
    H = np.zeros((m, d, d))
    for i in range(d):
        for j in range(i, d):
            v = flat.eval_np(base, hessian[i, j])
            H[:, i, j] = v
            H[:, j, i] = v
    finite = np.all(np.isfinite(H.reshape(m, -1)), axis=1)
    if not finite.any():
        return None
    Hf = np.where(finite[:, None, None], H, 0.0)
    with np.errstate(all="ignore"):
        eig, vec = np.linalg.eigh(Hf)
    lam = eig[:, 0]
    size = np.max(np.abs(eig), axis=1)
    bad = finite & (lam < -1e-9 * (1 + size))
    order = np.argsort(np.where(bad, lam / (1 + size), np.inf))
    rows = [i for i in order[:40] if bad[i]]
    if not rows:
        return None
    for h in (1.0, 0.3, 0.1, 0.03, 1e-2, 3e-3, 1e-3, 1e-4):
        if time.monotonic() > stop:
            return None
        pa = {s: base[s][rows].copy() for s in base}
        pb = {s: base[s][rows].copy() for s in base}
        for k, s in enumerate(var_syms):
            x = base[s][rows]
            step = h * (1 + np.abs(x)) * vec[rows, k, 0]
            pa[s] = x - step
            pb[s] = x + step
        ok = np.ones(len(rows), dtype=bool)
        for s in var_syms:
            ok &= flat.in_domain(s, pa[s]) & flat.in_domain(s, pb[s])
        ok &= ~flat.violations(pa) & ~flat.violations(pb)
        pm = {**pa, **{s: (pa[s] + pb[s]) / 2 for s in var_syms}}
        fa, fb, fm = flat.eval_np(pa), flat.eval_np(pb), flat.eval_np(pm)
        with np.errstate(all="ignore"):
            gap = fm - (fa + fb) / 2
            scale = 1 + np.abs(fa) + np.abs(fb)
            good = ok & np.isfinite(gap) & (gap > 1e-12 * scale)
            order = np.argsort(-(np.where(good, gap / scale, -np.inf)))
        for i in order[:4]:
            if not good[i] or time.monotonic() > stop:
                break
            w = _recheck_midpoint(flat, _rows(pa, i), _rows(pb, i), var_syms)
            if w is not None:
                w["hessian_min_eigenvalue_near"] = float(lam[rows[i]])
                return w
    return None


# ---------------------------------------------------------------------------------------------------------
def grid_for(flat: Flat, s: sp.Symbol) -> np.ndarray:
    """Sorted values spanning the domain of ``s`` (dense near 0 and near the ends)."""
    dom = flat.domain_of[s]
    if dom.integer:
        lo = 0 if dom.lower is None else int(dom.lower)
        hi = lo + 60 if dom.upper is None else int(dom.upper)
        return np.arange(lo, hi + 1, dtype=float)
    lo, hi = dom.lower, dom.upper
    if lo is None and hi is None:
        core = np.linspace(-12, 12, 97)
        tails = np.concatenate([-np.geomspace(15, 1e3, 12), np.geomspace(15, 1e3, 12)])
        return np.unique(np.concatenate([core, tails]))
    if hi is None:
        return np.unique(lo + np.geomspace(1e-4, 1e3, 120))
    if lo is None:
        return np.unique(hi - np.geomspace(1e-4, 1e3, 120))
    inner = np.linspace(lo, hi, 121)[1:-1]
    edge = np.geomspace(1e-6, (hi - lo) / 10, 20)
    pts = np.concatenate([inner, lo + edge, hi - edge])
    if not dom.lower_open:
        pts = np.append(pts, lo)
    if not dom.upper_open:
        pts = np.append(pts, hi)
    return np.unique(pts)


def find_unimodality_violation(flat: Flat, u: sp.Symbol, seconds: float, *, rows: int = 40, seed: int = SEED
                               ) -> dict[str, Any] | None:
    """Points a < b < c in u (the rest fixed) with f(b) > max(f(a), f(c)), re-checked: f is not monotone away
    from any minimiser on both sides."""
    stop = time.monotonic() + max(seconds, 0.05)
    rng = np.random.default_rng(seed + 1)
    base = flat.sample_all(rng, rows)
    if not base or len(next(iter(base.values()))) == 0:
        return None
    grid = grid_for(flat, u)
    m = len(next(iter(base.values())))
    for r in range(m):
        if time.monotonic() > stop:
            return None
        vals = {s: np.full(len(grid), base[s][r]) for s in base}
        vals[u] = grid
        ok = ~flat.violations(vals)
        f = flat.eval_np(vals)
        f = np.where(ok & np.isfinite(f), f, np.nan)
        idx = np.flatnonzero(np.isfinite(f))
        if len(idx) < 3:
            continue
        g = f[idx]
        left = np.minimum.accumulate(g)
        right = np.minimum.accumulate(g[::-1])[::-1]
        tol = 1e-9 * (1 + np.abs(g))
        for j in range(1, len(g) - 1):
            if g[j] > max(left[j - 1], right[j + 1]) + tol[j]:
                i = int(np.argmin(g[:j]))
                k = j + 1 + int(np.argmin(g[j + 1:]))
                pts = [{**{s: float(base[s][r]) for s in base}, u: float(grid[idx[t]])} for t in (i, j, k)]
                vs = [flat.eval_mp(p) for p in pts]
                if any(v is None for v in vs):
                    continue
                fa, fb, fc = vs
                if fb - max(fa, fc) > _MP_MARGIN * (1 + abs(fb)):
                    fixed = [s for s in flat.symbols if s != u]
                    return {
                        "test": f"f({u}) rises then falls: f(b) > max(f(a), f(c)) with a < b < c",
                        "fixed": point_dict(flat, pts[0], fixed),
                        "a": float(grid[idx[i]]), "b": float(grid[idx[j]]), "c": float(grid[idx[k]]),
                        "f(a)": fmt(fa), "f(b)": fmt(fb), "f(c)": fmt(fc),
                        "checked_with": "mpmath, 50 significant digits",
                    }
                break
    return None
