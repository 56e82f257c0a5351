"""The known flaws of torch built-ins, shown at single points next to the generated module and the truth."""

from __future__ import annotations

import math

import mpmath
import torch
import torch.nn.functional as F  # noqa: N812

from .common import catalog_loss, load_module

T = torch.float64


def _t(x):
    return torch.tensor([x], dtype=T)


def _gen(loss_name, *args, full=False):
    loss = catalog_loss(loss_name)
    if loss is None:
        return "not in catalog"
    mod, err = load_module(loss, "torch")
    if mod is None:
        return err
    try:
        return float(mod.loss(*map(_t, args), reduction="none", full=full).reshape(-1)[0])
    except Exception as exc:  # noqa: BLE001
        return f"failed: {exc.__class__.__name__}"


def _mp(f):
    with mpmath.workdps(60):
        try:
            v = f(mpmath)
            return float(v)
        except Exception:  # noqa: BLE001
            return math.nan


def rows() -> list[dict]:
    out = []
    # 1. F.binary_cross_entropy on probabilities clamps log at −100
    for p, y in ((1e-300, 1.0), (1e-50, 1.0), (1 - 1e-16, 0.0)):
        out.append({
            "flaw": "F.binary_cross_entropy clamps log(p) at −100",
            "point": f"probs={p:g}, y={y:g}",
            "truth": _mp(lambda m, p=p, y=y: -(y * m.log(p) + (1 - y) * m.log(1 - m.mpf(p)))),
            "builtin": float(F.binary_cross_entropy(_t(p), _t(y), reduction="none")[0]),
            "generated": _gen("bce", p, y),
            "generated_name": "bce",
        })
    # 2. BCE with logits at ±inf
    for x, y in ((math.inf, 1.0), (-math.inf, 0.0), (math.inf, 0.0)):
        if (x > 0) == (y > 0):
            truth = 0.0
        else:
            truth = math.inf
        out.append({
            "flaw": "F.binary_cross_entropy_with_logits at ±inf logits",
            "point": f"logits={x:g}, y={y:g}",
            "truth": truth,
            "builtin": float(F.binary_cross_entropy_with_logits(_t(x), _t(y), reduction="none")[0]),
            "generated": _gen("bernoulli_logit_probs", x, y),
            "generated_name": "bernoulli_logit_probs",
        })
    # 3. gaussian_nll_loss clamps the variance at eps = 1e-6
    for v, r in ((1e-8, 1e-4), (1e-12, 0.0), (1e-30, 1e-15)):
        out.append({
            "flaw": "F.gaussian_nll_loss clamps var at eps=1e-6",
            "point": f"var={v:g}, loc=0, y={r:g}",
            "truth": _mp(lambda m, v=v, r=r: 0.5 * m.log(m.mpf(v)) + m.mpf(r) ** 2 / (2 * m.mpf(v))),
            "builtin": float(F.gaussian_nll_loss(_t(0.0), _t(r), _t(v), reduction="none")[0]),
            "generated": _gen("gaussian_nll", 0.0, v, r),
            "generated_name": "gaussian_nll",
        })
    # 4. poisson_nll_loss(full=True) uses Stirling's approximation for log(y!) (only for y > 1)
    for lr, y in ((0.0, 2.0), (0.0, 3.0), (1.0, 10.0), (5.0, 100.0)):
        out.append({
            "flaw": "F.poisson_nll_loss(full=True): Stirling term for log y!",
            "point": f"log_rate={lr:g}, y={y:g}",
            "truth": _mp(lambda m, lr=lr, y=y: m.exp(lr) - y * lr + m.loggamma(y + 1)),
            "builtin": float(F.poisson_nll_loss(_t(lr), _t(y), log_input=True, full=True, reduction="none")[0]),
            "generated": _gen("poisson_log_rate", lr, y, full=True),
            "generated_name": "poisson_log_rate (full=True)",
        })
    return out


def rel(a, truth) -> str:
    if isinstance(a, str):
        return a
    if math.isnan(a):
        return "nan"
    if math.isinf(truth) or math.isinf(a):
        return "exact" if a == truth else ("inf" if math.isinf(a) else "finite (truth inf)")
    if truth == 0:
        return "exact" if a == 0 else f"abs {abs(a):.3g}"
    r = abs(a - truth) / abs(truth)
    return "exact" if r == 0 else f"{r:.2g}"
