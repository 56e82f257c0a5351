"""The accuracy harness: generated modules, torch built-ins and torch.distributions against mpmath.

Every value is compared, in float64, with the exact loss evaluated by mpmath at
50 significant digits (``sympy.lambdify(..., "mpmath")`` of ``loss.expr`` and
``loss.gradient``) on an extreme grid.  Errors are ordinal distances between
float64 numbers (ulps, as Herbie counts them) and are reported as bits,
log2(ulps + 1).  Points where the truth is undefined, complex or overflows
float64 are left out (counted as "out of range").

Each error is also divided by the relative condition number of the output at that point (Higham, *Accuracy
and Stability of Numerical Algorithms*, 2nd ed., ch. 1): κ = Σ_i |x_i ∂f/∂x_i| / |f| over every scalar
input (parameters, target, constants), from sympy's derivatives evaluated with mpmath.  "Excess ulps"
= ulps / max(1, κ) is the error beyond what rounding the inputs alone can cause.
"""

from __future__ import annotations

import itertools
import math
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from symloss.stabilize import elementary

from .common import load_module

DPS = 50
ESCALATE = (80, 400, 1200)
EXACT_S = 2.0  # seconds for SymPy's adaptive evaluation of a suspicious tiny truth (then: the mpmath value)
SLOW_S = 0.02  # an evaluation slower than this at 80 digits is not retried at 400 even if tiny  # digits tried after DPS (truths that need them: tiny results of cancellations)
K = 3  # classes for the class-axis (vector) losses

LOGITS = [-1e4, -700.0, -40.0, -1.0, 0.0, 1.0, 40.0, 700.0, 1e4]
SCALE_LOGS = [math.log(1e-30), math.log(1e-8), -1.0, 0.0, 1.0, math.log(1e8), math.log(1e30)]
RATE_LOGS = [math.log(1e-300), math.log(1e-30), -1.0, 0.0, 1.0, math.log(1e30), math.log(1e300)]
REALS = [-1e150, -1.0, 0.0, 1.0, 1e150]
REAL_TARGETS = [-1e150, -1.0, 0.0, 1e-300, 1.0, 1e150]
POSITIVES = [1e-300, 1e-30, 1e-8, 1.0, 1e8, 1e30, 1e300]
UNIT = [0.0, 1e-300, 1e-16, 1e-8, 0.5, 1 - 1e-8, 1 - 2.0**-53, 1.0]
COUNTS = [0.0, 1.0, 3.0, 100.0, 1e6]

TARGETS_ULP_MEDIAN = 4
TARGETS_ULP_MAX = 64


# -- ulps -------------------------------------------------------------------------------------------
def _ordinal(x: float) -> int:
    i = struct.unpack("<q", struct.pack("<d", x))[0]
    return i if i >= 0 else -(i & 0x7FFFFFFFFFFFFFFF)


def ulps(a: float, b: float) -> float:
    """The number of float64 values between a and b (both finite)."""
    return float(abs(_ordinal(a) - _ordinal(b)))


def bits(u: float) -> float:
    return math.log2(u + 1.0)


# -- grid ------------------------------------------------------------------------------------------
def _values(name: str, domain, *, target: bool) -> list[float]:
    dn = getattr(domain, "name", "real")
    if dn == "real":
        if "logit" in name:
            vals = LOGITS
        elif name.startswith("log_"):
            vals = RATE_LOGS if any(w in name for w in ("rate", "mu", "mean")) else SCALE_LOGS
        else:
            vals = REAL_TARGETS if target else REALS
    elif dn == "positive":
        vals = POSITIVES
    elif dn == "binary":
        vals = [0.0, 1.0]
    elif dn in ("nonnegative_integer", "positive_integer"):
        vals = COUNTS
    elif "unit" in dn:
        vals = UNIT
    else:
        vals = sorted(set(REAL_TARGETS + POSITIVES + UNIT + COUNTS))
    out = []
    for v in vals:
        try:
            if domain is None or domain.contains(v):
                out.append(v)
        except Exception:  # noqa: BLE001
            out.append(v)
    return out or list(vals)


def _subsample(points: list, limit: int) -> list:
    if len(points) <= limit:
        return points
    idx = np.unique(np.linspace(0, len(points) - 1, limit).round().astype(int))
    return [points[i] for i in idx]


@dataclass
class Problem:
    """A loss flattened to scalar symbols, with its grid."""

    loss: Any
    names: list[str]  # call order for the truth functions: inputs, target, constants (scalar names)
    symbols: list[sp.Symbol]
    points: list[dict[str, Any]]  # per point: input name -> float or list (vector), "y" -> ...
    vector: bool = False
    flat: dict[str, list[str]] = field(default_factory=dict)  # vector name -> scalar names

    def scalarize(self, expr: sp.Expr, j: int | None = None) -> sp.Expr:
        if not self.vector:
            return expr
        Ks = [s for s in expr.free_symbols if str(s) == "K"]
        if Ks:
            expr = expr.subs(Ks[0], K)
        if j is not None:
            js = [s for s in expr.free_symbols if str(s) == "j"]
            for s in js:
                expr = expr.subs(s, j)
        expr = expr.doit()
        repl = {}
        for ix in expr.atoms(sp.Indexed):
            repl[ix] = sp.Symbol(f"{ix.base}_{int(ix.indices[0])}", real=True)
        return expr.xreplace(repl)

    def scalar_args(self, point: dict[str, Any]) -> list[Any]:
        out = []
        for n in self.names:
            base, _, idx = n.rpartition("_")
            if n in point:
                out.append(point[n])
            elif self.vector and base in point and idx.isdigit():
                out.append(point[base][int(idx)])
            else:
                raise KeyError(n)
        return out


def build_problem(loss, limit: int = 600) -> Problem:
    tname = str(loss.target)
    consts = [str(c) for c in loss.constants]
    if loss.event == "vector":
        return _vector_problem(loss, limit)
    axes = []
    names = [*loss.input_names, tname, *consts]
    for n in loss.input_names:
        axes.append(_values(n, loss.domains.get(loss.input(n)), target=False))
    axes.append(_values(tname, loss.domains.get(loss.target), target=True))
    for c in loss.constants:
        axes.append(_values(str(c), loss.domains.get(c), target=False) if c in loss.domains else [1e-8, 0.5, 1 - 1e-8])
    pts = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]
    pts = [p for p in pts if _in_support(loss, p)]
    symbols = [*loss.inputs, loss.target, *loss.constants]
    return Problem(loss, names, symbols, _subsample(pts, limit))


def _in_support(loss, point: dict[str, Any]) -> bool:
    """Whether a grid point satisfies the support's coupling constraints (``y <= total_count``,
    ``y >= scale``: a bound that depends on another input), so that no loss is scored outside its support."""
    for lo, hi in loss.support_constraints:
        a, b = point.get(str(lo)), point.get(str(hi))
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not a <= b:
            return False
    return True


def _vector_problem(loss, limit: int) -> Problem:
    dist = getattr(loss.distribution, "name", "")
    vec_inputs = [n for n in loss.input_names if getattr(loss.domains.get(loss.input(n)), "vector", False)]
    scal_inputs = [n for n in loss.input_names if n not in vec_inputs]
    tname = str(loss.target)
    comps = [-1e4, -700.0, -40.0, 0.0, 40.0, 700.0, 1e4] if any("logit" in n for n in vec_inputs) else \
        [math.log(1e-30), -1.0, 0.0, 1.0, math.log(1e30)]
    vecs = [list(v) for v in itertools.product(comps, repeat=K)]
    if dist == "Categorical":
        targets = [[1.0 if i == c else 0.0 for i in range(K)] for c in range(K)]
    elif dist == "Multinomial":
        targets = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 3.0, 1.0], [100.0, 0.0, 1e6]]
    elif dist == "Dirichlet":
        # on the simplex in float64 (the density's support): 1/3 and 1 − 2e-16 are not, their roundings sum to
        # 1 − 5.6e-17 and 1 − 2.2e-17, and at concentrations of 1e30 the loss there is α·(1 − Σy)-sized (1.7e14
        # at three 1e30s and thirds, where on the simplex it is O(100)); 1e-300 + 0.5 + 0.5 is 1 + 1e-300, whose
        # α·1e-300 is below every float64 the loss can take
        targets = [[0.25, 0.25, 0.5], [1e-300, 0.5, 0.5], [1 - 2.0**-52, 2.0**-53, 2.0**-53]]
    else:
        targets = [[1.0 if i == c else 0.0 for i in range(K)] for c in range(K)]
    pts = []
    for v, y in itertools.product(vecs, targets):
        p = {n: v for n in vec_inputs}
        for n in scal_inputs:
            p[n] = float(sum(y))  # total_count = the number of trials
        p[tname] = y
        pts.append(p)
    names = []
    symbols = []
    flat = {}
    for n in [*loss.input_names, tname]:
        if n in vec_inputs or n == tname:
            flat[n] = [f"{n}_{i}" for i in range(K)]
            names += flat[n]
        else:
            names.append(n)
    symbols = [sp.Symbol(n, real=True) for n in names]
    return Problem(loss, names, symbols, _subsample(pts, limit), vector=True, flat=flat)


# -- the truth -------------------------------------------------------------------------------------
def _by_name(problem: Problem, expr: sp.Expr) -> sp.Expr:
    """expr with every free symbol replaced by a plain symbol of the same name (assumptions differ)."""
    plain = {s: sp.Symbol(str(s)) for s in expr.free_symbols}
    return expr.xreplace(plain)


def _log1p_form(e: sp.Expr) -> sp.Expr:
    """log(1 + u) as log1p(u), the same number: at u = e^-700 the sum 1 + u rounds to 1 at any precision below
    305 digits, and the escalation to 400 digits is skipped where the expression is slow (polygamma near 0)."""
    from sympy.codegen.cfunctions import log1p

    def fits(n: sp.Basic) -> bool:
        return isinstance(n, sp.log) and isinstance(n.args[0], sp.Add) and sp.S.One in n.args[0].args

    return e.replace(fits, lambda n: log1p(n.args[0] - 1))


HIGH_DPS = (400, 1200)  # the precisions that a point whose locations span more digits than DPS covers starts at


def _additive(problem: Problem) -> list[int]:
    """The positions, in the truth functions' arguments, of the inputs on the whole real line that a loss adds
    to or subtracts from one another: the locations and a real target (not the log- or logit-links)."""
    loss = problem.loss
    domains = {str(s): loss.domains.get(s) for s in (*loss.inputs, loss.target, *loss.constants)}
    out = []
    for i, n in enumerate(problem.names):
        d = domains.get(n)
        if not n.startswith("log") and d is not None and getattr(d, "name", "") == "real":
            out.append(i)
    return out


def spread_digits(args, positions: list[int]) -> int:
    """Decimal digits between the largest and the smallest nonzero |input| at ``positions`` (the locations and a
    real target: _additive) of a point.

    y − μ is exact only with that many digits more than the result needs: at y = 1e150, μ = −1 it rounds to y
    below 151 digits, at 50 digits and at 80 alike, so that two precisions agree on a value that has lost μ (a
    difference of two such residuals, (y − μ₁)·e^−s − (y − μ₂)·e^−s, comes out 0 in both instead of
    (μ₂ − μ₁)·e^−s, and a mixture's responsibility σ(±700 + that·(y − μ)·e^−s) flips between 0 and 1)."""
    mags = [abs(float(args[i])) for i in positions
            if isinstance(args[i], (int, float)) and args[i] != 0 and math.isfinite(args[i])]
    if len(mags) < 2:
        return 0
    return max(0, math.ceil(math.log10(max(mags)) - math.log10(min(mags))))


def _precisions(base: int, escalate: tuple[int, ...], spread: int) -> tuple[int, tuple[int, ...]]:
    """(first, the next ones): the harness's precisions where the point's spread of locations is within the gap
    between the first two (the second notices digits lost in y − μ), else the first of HIGH_DPS above base +
    spread and the same gap above it (then 1200).  Not base + spread itself: mpmath's exp of an argument of
    1e360 (a squared residual of 1e150 over a scale of 1e-30) takes 50 ms between about 100 and 360 digits,
    1 ms at 50 or 400."""
    gap = escalate[0] - base
    if spread <= gap:
        return base, escalate
    first = next((d for d in HIGH_DPS if d >= base + spread), HIGH_DPS[-1])
    return first, (first + gap, *[d for d in escalate if d > first + gap])


def truth_function(problem: Problem, expr: sp.Expr, j: int | None = None):
    # the stable functions (LogAddExp, Softplus, ...) in a derived expression evaluate through their
    # textbook form: mpmath has no names for them, and its unbounded exponent makes that form exact
    e = _log1p_form(_by_name(problem, elementary(problem.scalarize(expr, j))))
    syms = [sp.Symbol(n) for n in problem.names]
    additive = _additive(problem)
    f = sp.lambdify(syms, e, modules="mpmath")

    def at(args, dps: int) -> tuple[float | None, Any]:
        """(the value rounded to float64, the value at ``dps`` digits), or (None, None)."""
        try:
            with mpmath.workdps(dps):
                v = f(*[mpmath.mpf(a) for a in args])
                if isinstance(v, mpmath.mpc):
                    if v.imag != 0 and abs(v.imag) > abs(v.real) * mpmath.mpf(10) ** (-dps + 10):
                        return None, None
                    v = v.real
                v = mpmath.mpf(v)
                if not mpmath.isfinite(v):
                    return None, None
                return float(v), v
        except (ZeroDivisionError, ValueError, OverflowError, TypeError, ArithmeticError):
            return None, None

    def same(a, b) -> bool:
        """Two precisions agree on the value itself, not only on its float64 rounding: below float64's range
        e^-5e8 and e^-9e7 both round to 0 (a Mills ratio's exp(−z²/2)/erfc(z/√2) at z = 1e120, whose z² the
        working precision gets wrong by more than its size)."""
        if a is None or b is None or a == 0 or b == 0:
            return True
        return abs(a - b) <= abs(a) * mpmath.mpf(2) ** -50

    def evaluate(point) -> float | None:
        """The truth rounded to float64; None where undefined, complex or beyond float64's range.

        Evaluated at DPS digits and again at more (log(1 + e^-700) needs 305 digits to round right):
        the result counts once two precisions round to the same float64.  A point whose locations span more
        digits than the first two precisions' gap starts higher (spread_digits, _precisions).
        """
        args = problem.scalar_args(point)
        first, escalate = _precisions(DPS, ESCALATE, spread_digits(args, additive))
        prev, prev_x = at(args, first)
        out = None
        for k, dps in enumerate(escalate):
            t0 = time.perf_counter()
            cur, cur_x = at(args, dps)
            slow = time.perf_counter() - t0 > SLOW_S  # mpmath's polygamma near 0 takes seconds at 400 digits
            agree = (cur == prev or (cur is not None and prev is not None and ulps(cur, prev) <= 1)) and same(
                cur_x, prev_x)
            # an exact or tiny zero may be a cancellation that no precision so far resolves (1 + e^-700 == 1
            # at 80 digits): those go on to 400 digits even when two precisions agree
            suspicious = cur is not None and abs(cur) < 1e-30 and k == 0 and not slow
            if agree and not suspicious:
                out = cur
                break
            prev, prev_x = cur, cur_x
        else:
            if not agree:
                return None
            out = cur
        if out is None or not math.isfinite(out):
            return None
        if abs(out) < 1e-30:  # a zero or tiny result that fixed precision may have got by cancellation
            exact = _exact(e, syms, args)
            if exact:  # a nonzero exact value; its 0 can be evalf's own lost digits (log(1 + tiny) above)
                return exact
        return out

    return evaluate


def _exact(e: sp.Expr, syms: list[sp.Symbol], args) -> float | None:
    """e at the point's exact binary values by SymPy's adaptive evalf: terms that are equal at the point cancel
    symbolically (ψ(r) − ψ(r + y) at y = 0, beside log1p(e^-700) = 9.9e-305, is 0 at 50 digits and at 400: the
    ψ values are 1e300), and evalf raises its precision until the digits asked for are right."""
    from symloss.budget import try_with_budget

    def run() -> float | None:
        # log(e^-1e4 + 1 + e^-700) only shows its 1 once the values are in, and evalf takes log(1 + tiny) at
        # the working precision of its argument (0): log1p again
        at = _log1p_form(e.xreplace({s: sp.Rational(float(a)) for s, a in zip(syms, args, strict=True)}))
        v = sp.N(at, 20, maxn=2000)
        return float(v) if v.is_number and v.is_real else None

    try:
        v = try_with_budget(run, EXACT_S, None, "exact truth")
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, ArithmeticError, RecursionError):
        return None
    return v if v is not None and math.isfinite(v) else None


# -- candidates ------------------------------------------------------------------------------------
def _tensors(problem: Problem, backend: str):
    """Arrays of all points: input name -> array (P,) or (P, K) in float64."""
    out = {}
    for n in [*problem.loss.input_names, str(problem.loss.target), *map(str, problem.loss.constants)]:
        col = [p[n] for p in problem.points]
        arr = np.asarray(col, dtype=np.float64)
        out[n] = arr  # class-axis inputs (P, K); per-row data inputs such as total_count (P,)
    if backend == "torch":
        import torch

        out = {k: torch.tensor(v, dtype=torch.float64) for k, v in out.items()}
    return out


def generated_outputs(problem: Problem, target: str):
    """{"value": array(P), "<wrt>": array(P) or (P, K)} from the generated module, or a string reason."""
    loss = problem.loss
    mod, err = load_module(loss, target)
    if mod is None:
        return err
    arrs = _tensors(problem, target)
    args = [arrs[n] for n in loss.input_names]
    kw = {str(c): arrs[str(c)] for c in loss.constants}
    y = arrs[str(loss.target)]
    try:
        with np.errstate(all="ignore"):
            value = mod.loss(*args, y, reduction="none", full=False, **kw)
            grads = mod.grad(*args, y, reduction="none", full=False, **kw)
    except Exception as exc:  # noqa: BLE001
        return f"failed: {exc.__class__.__name__}: {str(exc)[:200]}"
    out = {"value": _np(value).reshape(len(problem.points), -1)[:, 0]}
    for name, g in zip(loss.wrt_names, grads, strict=True):
        g = np.broadcast_to(_np(g), arrs[name].shape if hasattr(arrs[name], "shape") else ())
        out[name] = np.asarray(g).reshape(len(problem.points), -1)
    return out


def _np(x):
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return x.detach().cpu().numpy()
    except ImportError:
        pass
    return np.asarray(x, dtype=np.float64)


def builtin_outputs(problem: Problem, full: bool = False):
    """The torch built-in named by loss.known_as (value and autograd gradients), or a reason string."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    loss = problem.loss
    ka = loss.known_as
    if ka is None or not ka.torch:
        return None
    fn = getattr(F, ka.torch.rsplit(".", 1)[1])
    arrs = _tensors(problem, "torch")
    kwargs = dict(ka.torch_kwargs)
    leaves = {}
    for arg, sym in ka.arguments.items():
        t = arrs[sym].clone().requires_grad_(sym in loss.wrt_names)
        leaves[sym] = t
        kwargs[arg] = t
    y = arrs[str(loss.target)]
    if loss.event == "vector":
        y = y.argmax(dim=-1)
    kwargs["target"] = y
    if full:
        kwargs["full"] = True
    try:
        v = fn(**kwargs, reduction="none")
        gs = torch.autograd.grad(v.sum(), [leaves[n] for n in loss.wrt_names if n in leaves], allow_unused=True)
    except Exception as exc:  # noqa: BLE001
        return f"failed: {exc.__class__.__name__}: {str(exc)[:200]}"
    out = {"value": v.detach().numpy().reshape(len(problem.points), -1)[:, 0]}
    for n, g in zip([n for n in loss.wrt_names if n in leaves], gs, strict=True):
        out[n] = (g.numpy() if g is not None else np.zeros(arrs[n].shape)).reshape(len(problem.points), -1)
    return out


def torch_distribution_params(loss, tensors):
    """Keyword arguments for torch.distributions.<Dist> from loss.parameters, or raise."""
    import torch

    kwargs = {}
    names = set(loss.input_names)
    for pname, expr in loss.parameters.items():
        s = str(expr)
        if s in names:
            kwargs[pname] = tensors[s]
        elif expr.is_Number:
            kwargs[pname] = torch.full_like(next(iter(tensors.values())), float(expr))
        elif isinstance(expr, sp.exp) and str(getattr(expr.args[0], "base", expr.args[0])) in names:
            kwargs[pname] = torch.exp(tensors[str(getattr(expr.args[0], "base", expr.args[0]))])
        elif "Sum" in s and "exp" in s and pname == "probs":
            arg = [a for a in loss.input_names if a in s][0]
            kwargs["logits"] = tensors[arg]
        elif pname == "probs" and s.startswith("1/(1 + exp(-"):
            arg = s[len("1/(1 + exp(-"):-2]
            kwargs["logits"] = tensors[arg]
        elif isinstance(expr, sp.Pow) and expr.exp == sp.Rational(1, 2) and str(expr.base) in names:
            kwargs[pname] = torch.sqrt(tensors[str(expr.base)])
        else:
            raise NotImplementedError(f"parameter {pname} = {s}")
    return kwargs


def distribution_outputs(problem: Problem):
    """−torch.distributions.<Dist>(...).log_prob(y) and its autograd gradients, or a reason string."""
    import torch

    loss = problem.loss
    dname = getattr(loss.distribution, "torch", None)
    if not dname:
        return None
    cls = getattr(torch.distributions, dname, None)
    if cls is None:
        return f"torch.distributions has no {dname}"
    arrs = _tensors(problem, "torch")
    leaves = {n: arrs[n].clone().requires_grad_(n in loss.wrt_names) for n in loss.input_names}
    y = arrs[str(loss.target)]
    try:
        kw = torch_distribution_params(loss, leaves)
        if dname == "Categorical":
            y = y.argmax(dim=-1)
        if dname == "Multinomial":
            return "not comparable: torch Multinomial needs one Python int total_count"
        if loss.event == "vector":
            for k, v in kw.items():
                if v.shape[-1] == 1 and k == "total_count":
                    kw[k] = v[..., 0]
        d = cls(**kw, validate_args=False)
        v = -d.log_prob(y)
        wrt = [n for n in loss.wrt_names]
        gs = torch.autograd.grad(v.sum(), [leaves[n] for n in wrt], allow_unused=True)
    except Exception as exc:  # noqa: BLE001
        return f"failed: {exc.__class__.__name__}: {str(exc)[:200]}"
    out = {"value": v.detach().numpy().reshape(len(problem.points), -1)[:, 0]}
    for n, g in zip(wrt, gs, strict=True):
        out[n] = (g.numpy() if g is not None else np.zeros(tuple(arrs[n].shape))).reshape(len(problem.points), -1)
    return out


# -- scoring ---------------------------------------------------------------------------------------
@dataclass
class Score:
    what: str  # "value" or the gradient's input
    errors: list[float]  # ulps at points where the truth is finite and the output finite
    nonfinite: int  # outputs not finite where the truth is finite
    per_point: dict[tuple[int, int], float]  # (point, component) -> ulps (inf for non-finite)
    out_of_range: int
    excess: list[float] = field(default_factory=list)  # ulps / max(1, κ) at the points of ``errors``
    per_point_excess: dict[tuple[int, int], float] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return float(np.median(self.errors)) if self.errors else 0.0

    @property
    def max(self) -> float:
        return max(self.errors) if self.errors else 0.0

    @property
    def excess_median(self) -> float:
        return float(np.median(self.excess)) if self.excess else 0.0

    @property
    def excess_max(self) -> float:
        return max(self.excess) if self.excess else 0.0


# -- conditioning ----------------------------------------------------------------------------------
KAPPA_DPS = (60, 130, 400, 1200)  # κ counts once two successive precisions agree to KAPPA_RTOL
KAPPA_RTOL = 1e-3


def kappa_function(problem: Problem, expr: sp.Expr, j: int | None = None):
    """κ(point, truth) = Σ_i |x_i ∂f/∂x_i| / |f| (Higham, ch. 1), or None where it cannot be evaluated.

    The derivatives are sympy's, built on first use and evaluated with mpmath at 60 digits and again at 130
    (400 and 470 where the point's locations span more digits than that gap; then 400 and 1200 where those
    disagree): a derivative that is itself a cancellation (digamma(k + y) − digamma(k) at
    k = 1e300) is only trusted once two precisions agree, so that κ is never inflated by an unresolved
    cancellation.  |f| is the rounded truth; κ = inf where the truth is 0 and some term is not.
    """
    e = problem.scalarize(expr, j)  # differentiated with the loss's own symbols (real, positive, ...)
    syms = [sp.Symbol(n) for n in problem.names]
    additive = _additive(problem)
    state: dict[str, Any] = {}

    def derivs():
        if "d" not in state:
            ds = []
            own = {str(s): s for s in e.free_symbols}
            for i, n in enumerate(problem.names):
                if n in own:
                    try:
                        d = _by_name(problem, elementary(sp.diff(e, own[n])))
                        ds.append((i, sp.lambdify(syms, d, modules="mpmath")))
                    except Exception:  # noqa: BLE001
                        ds.append((i, None))
            state["d"] = ds
        return state["d"]

    def terms(args, dps: int):
        with mpmath.workdps(dps):
            x = [mpmath.mpf(a) for a in args]
            total = mpmath.mpf(0)
            for i, g in derivs():
                if x[i] == 0:
                    continue
                if g is None:
                    return None
                try:
                    v = g(*x)
                except (ZeroDivisionError, ValueError, OverflowError, TypeError, ArithmeticError):
                    return None
                if isinstance(v, mpmath.mpc):
                    v = v.real if abs(v.imag) <= abs(v.real) * mpmath.mpf(10) ** (-dps + 10) else None
                if v is None:
                    return None
                v = mpmath.mpf(v)
                if mpmath.isnan(v):
                    return None
                total += abs(x[i] * v)
            return total

    def at(point, truth: float) -> float | None:
        args = problem.scalar_args(point)
        first, escalate = _precisions(KAPPA_DPS[0], KAPPA_DPS[1:], spread_digits(args, additive))
        prev = terms(args, first)
        for dps in escalate:
            cur = terms(args, dps)
            if cur is None or prev is None:
                return None
            if mpmath.isinf(cur) and mpmath.isinf(prev):
                return math.inf
            if abs(cur - prev) <= KAPPA_RTOL * abs(cur):
                if cur == 0:
                    return 0.0
                if truth == 0:
                    return math.inf
                with mpmath.workdps(dps):
                    k = cur / abs(mpmath.mpf(truth))
                return float(k) if k < mpmath.mpf("1e308") else math.inf
            prev = cur
        return None

    return at


class KappaCache:
    """Lazily evaluated condition numbers, {what: [κ-function per component]}, cached per (what, point, c)."""

    def __init__(self, problem: Problem, expr: sp.Expr, gradient: dict, wrt: list[str]):
        self.problem = problem
        self.fns: dict[str, list] = {"value": [lambda: kappa_function(problem, expr)]}
        loss = problem.loss
        for n in wrt:
            sym = loss.input(n)
            g = gradient.get(sym)
            if g is None:
                continue
            if problem.vector and getattr(loss.domains.get(sym), "vector", False):
                self.fns[n] = [(lambda g=g, j=j: kappa_function(problem, g, j)) for j in range(K)]
            else:
                self.fns[n] = [lambda g=g: kappa_function(problem, g)]
        self.built: dict[tuple[str, int], Any] = {}
        self.cache: dict[tuple[str, int, int], float] = {}
        self.seconds = 0.0

    def get(self, what: str, i: int, c: int, truth: float) -> float:
        """κ at point i, component c; 1 (no allowance) where it cannot be evaluated."""
        key = (what, i, c)
        if key not in self.cache:
            t0 = time.perf_counter()
            fns = self.fns.get(what)
            k = None
            if fns:
                ci = c if len(fns) > 1 else 0
                if (what, ci) not in self.built:
                    try:
                        self.built[(what, ci)] = fns[ci]()
                    except Exception:  # noqa: BLE001
                        self.built[(what, ci)] = None
                f = self.built[(what, ci)]
                if f is not None:
                    try:
                        k = f(self.problem.points[i], truth)
                    except Exception:  # noqa: BLE001
                        k = None
            self.cache[key] = 1.0 if k is None else k
            self.seconds += time.perf_counter() - t0
        return self.cache[key]


def score(problem: Problem, outputs: dict, truths: dict[str, list[list[float | None]]],
          kappas: KappaCache | None = None) -> list[Score]:
    scores = []
    for what, truth in truths.items():
        if what not in outputs:
            continue
        out = np.asarray(outputs[what], dtype=np.float64)
        if out.ndim == 1:
            out = out[:, None]
        errs, per, nf, oor = [], {}, 0, 0
        excess: list[float] = []
        per_x: dict[tuple[int, int], float] = {}
        for i, row in enumerate(truth):
            for c, t in enumerate(row):
                if t is None:
                    oor += 1
                    continue
                o = float(out[i, c if out.shape[1] > 1 else 0])
                if not math.isfinite(o):
                    nf += 1
                    per[(i, c)] = math.inf
                    per_x[(i, c)] = math.inf
                    continue
                u = ulps(o, t)
                errs.append(u)
                per[(i, c)] = u
                # κ only where the raw error could fail a target: elsewhere the raw error bounds the excess
                x = u if kappas is None or u <= TARGETS_ULP_MEDIAN else u / max(1.0, kappas.get(what, i, c, t))
                excess.append(x)
                per_x[(i, c)] = x
        scores.append(Score(what, errs, nf, per, oor, excess, per_x))
    return scores


def truths_for(problem: Problem, expr: sp.Expr, gradient: dict, wrt: list[str]) -> dict:
    """{"value": [[t]], "<wrt>": [[t_0 … t_{K-1}]]} at every point."""
    loss = problem.loss
    out = {}
    f = truth_function(problem, expr)
    out["value"] = [[f(p)] for p in problem.points]
    for n in wrt:
        sym = loss.input(n)
        g = gradient.get(sym)
        if g is None:
            continue
        if problem.vector and getattr(loss.domains.get(sym), "vector", False):
            fs = [truth_function(problem, g, j) for j in range(K)]
            out[n] = [[fj(p) for fj in fs] for p in problem.points]
        else:
            fg = truth_function(problem, g)
            out[n] = [[fg(p)] for p in problem.points]
    return out


def formula_gradient(loss, expr: sp.Expr) -> dict:
    """d expr / d input for every trained input (vector inputs: d/d input[j])."""
    out = {}
    for s in loss.wrt:
        if loss.event == "vector" and isinstance(s, sp.IndexedBase):
            j = sp.Symbol("j", integer=True)
            out[s] = sp.diff(expr, s[j])
        else:
            out[s] = sp.diff(expr, s)
    return out


@dataclass
class Row:
    loss: str
    implementation: str
    points: int
    scores: list[Score] | None
    note: str = ""
    worse_than_builtin: int | None = None  # points worse than the built-in in raw ulps
    worst: list[str] = field(default_factory=list)  # raw
    worst_excess: list[str] = field(default_factory=list)
    worse_than_builtin_excess: int | None = None  # ... and in excess ulps (the built-in's own κ-scaled error)

    @property
    def ok_raw(self) -> bool | None:
        """The raw targets: median ≤ 4 ulps, max ≤ 64 ulps, all finite, nowhere worse than the built-in."""
        if not self.scores:
            return None
        med = max(s.median for s in self.scores)
        mx = max(s.max for s in self.scores)
        nf = sum(s.nonfinite for s in self.scores)
        return med <= TARGETS_ULP_MEDIAN and mx <= TARGETS_ULP_MAX and nf == 0 and not self.worse_than_builtin

    @property
    def ok(self) -> bool | None:
        """The conditioning-aware targets: the same bounds on excess ulps = ulps / max(1, κ)."""
        if not self.scores:
            return None
        med = max(s.excess_median for s in self.scores)
        mx = max(s.excess_max for s in self.scores)
        nf = sum(s.nonfinite for s in self.scores)
        worse = self.worse_than_builtin_excess
        return med <= TARGETS_ULP_MEDIAN and mx <= TARGETS_ULP_MAX and nf == 0 and not worse


def _worst(problem: Problem, scores: list[Score], n: int = 3, *, excess: bool = False) -> list[str]:
    """The n worst points over 64 ulps (raw, or with ``excess`` over 64 excess ulps)."""
    items = []
    for s in scores:
        per = s.per_point_excess if excess else s.per_point
        for (i, c), u in per.items():
            items.append((u, s.what, i, c, s.per_point.get((i, c), u)))
    items.sort(key=lambda t: -t[0])
    out = []
    for u, what, i, c, raw in items[:n]:
        if u <= TARGETS_ULP_MAX:
            break
        p = problem.points[i]
        pt = ", ".join(f"{k}={_fmt_point(v)}" for k, v in p.items())
        comp = f"[{c}]" if problem.vector and what != "value" else ""
        if math.isinf(u):
            txt = "non-finite"
        elif excess:
            kappa = raw / u if u else math.inf
            txt = f"{u:.3g} excess ulps ({raw:.3g} ulps, κ = {kappa:.3g})"
        else:
            txt = f"{u:.3g} ulps"
        out.append(f"{what}{comp} at {pt}: {txt}")
    return out


def _fmt_point(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(f"{x:.4g}" for x in v) + "]"
    return f"{v:.6g}"


def _row(problem: Problem, loss, label: str, sc: list[Score]) -> Row:
    return Row(loss.name, label, len(problem.points), sc, worst=_worst(problem, sc),
               worst_excess=_worst(problem, sc, excess=True))


def evaluate_loss(loss, limit: int = 600, targets=("torch", "numpy"), comparisons: bool = True) -> list[Row]:
    """Rows for the generated modules (and, with ``comparisons``, the torch built-in and torch.distributions)."""
    problem = build_problem(loss, limit)
    wrt = list(loss.wrt_names)
    loaded = {t: load_module(loss, t) for t in targets}
    if all(m is None for m, _ in loaded.values()) and not (comparisons and getattr(loss.distribution, "torch", None)):
        # nothing to score (and mpmath's besseli at 1200 digits can take minutes): report why only
        return [Row(loss.name, f"generated {t}", len(problem.points), None, err) for t, (_, err) in loaded.items()]
    truths = truths_for(problem, loss.expr, loss.gradient, wrt) if any(
        m is not None for m, _ in loaded.values()) else {}
    kappas = KappaCache(problem, loss.expr, loss.gradient, wrt)
    rows = []
    builtin_per: dict | None = None
    builtin_per_x: dict | None = None
    bi_row = None
    if comparisons and loss.known_as is not None and loss.known_as.torch:
        bi = builtin_outputs(problem)
        label = loss.known_as.torch.replace("torch.nn.functional.", "F.")
        if isinstance(bi, str):
            bi_row = Row(loss.name, label, len(problem.points), None, bi)
        elif bi is not None:
            formula = loss.known_as.formula
            fgrad = formula_gradient(loss, formula)
            bt = truths_for(problem, formula, fgrad, wrt)
            sc = score(problem, bi, bt, KappaCache(problem, formula, fgrad, wrt))
            builtin_per = {s.what: s.per_point for s in sc}
            builtin_per_x = {s.what: s.per_point_excess for s in sc}
            bi_row = _row(problem, loss, label, sc)
    for target in targets:
        out = generated_outputs(problem, target)
        if isinstance(out, str):
            rows.append(Row(loss.name, f"generated {target}", len(problem.points), None, out))
            continue
        sc = score(problem, out, truths, kappas)
        row = _row(problem, loss, f"generated {target}", sc)
        if builtin_per is not None:
            worse = worse_x = 0
            for s in sc:
                bp = builtin_per.get(s.what, {})
                bx = (builtin_per_x or {}).get(s.what, {})
                for key, u in s.per_point.items():
                    b = bp.get(key)
                    if b is not None and u > max(TARGETS_ULP_MEDIAN, 2 * b):
                        worse += 1
                        x, bxk = s.per_point_excess.get(key, u), bx.get(key, b)
                        if x > max(TARGETS_ULP_MEDIAN, 2 * bxk):
                            worse_x += 1
            row.worse_than_builtin = worse
            row.worse_than_builtin_excess = worse_x
        rows.append(row)
    if bi_row is not None:
        rows.append(bi_row)
    if comparisons and loss.known_as is not None and loss.known_as.key == "poisson_nll":
        bi = builtin_outputs(problem, full=True)
        if isinstance(bi, dict):
            nt = truths_for(problem, loss.nll, loss.gradient, wrt)
            sc = score(problem, bi, nt, KappaCache(problem, loss.nll, loss.gradient, wrt))
            rows.append(_row(problem, loss, "F.poisson_nll_loss(full=True) vs exact −log p", sc))
    if comparisons:
        d = distribution_outputs(problem)
        if d is not None:
            label = f"−torch.distributions.{loss.distribution.torch}.log_prob"
            if isinstance(d, str):
                rows.append(Row(loss.name, label, len(problem.points), None, d))
            else:
                nt = truths_for(problem, loss.nll, loss.gradient, wrt)
                sc = score(problem, d, nt, KappaCache(problem, loss.nll, loss.gradient, wrt))
                rows.append(_row(problem, loss, label, sc))
    return rows
