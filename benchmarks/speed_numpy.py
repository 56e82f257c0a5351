"""NumPy speed: the generated module vs a hand-written NumPy version vs −scipy.stats.<dist>.logpdf (value only)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import special, stats

from .common import catalog_loss, interleaved_medians, load_module, record_times


def _softplus(x):
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    return 0.5 * np.tanh(0.5 * x) + 0.5


@dataclass
class NpCase:
    name: str
    loss: str
    make: Callable[[int, np.random.Generator], dict]
    order: tuple[str, ...]  # generated module's positional inputs, then the target "y"
    hand: Callable[[dict], float]
    hand_vg: Callable[[dict], tuple]
    scipy: Callable[[dict], float] | None
    scipy_name: str


def _hand_normal(a):
    z = (a["y"] - a["loc"]) * np.exp(-a["log_scale"])
    return np.mean(0.5 * z * z + a["log_scale"])


def _hand_normal_vg(a):
    inv = np.exp(-a["log_scale"])
    r = a["y"] - a["loc"]
    z = r * inv
    n = r.size
    return np.mean(0.5 * z * z + a["log_scale"]), (-z * inv / n, (1.0 - z * z) / n)


def _hand_poisson(a):
    return np.mean(np.exp(a["log_rate"]) - a["y"] * a["log_rate"])


def _hand_poisson_vg(a):
    e = np.exp(a["log_rate"])
    return np.mean(e - a["y"] * a["log_rate"]), ((e - a["y"]) / e.size,)


def _hand_bern(a):
    x, y = a["logits"], a["y"]
    return np.mean(_softplus(x) - y * x)


def _hand_bern_vg(a):
    x, y = a["logits"], a["y"]
    return np.mean(_softplus(x) - y * x), ((_sigmoid(x) - y) / x.size,)


def _hand_gamma(a):
    k, r = np.exp(a["log_concentration"]), np.exp(a["log_rate"])
    y = a["y"]
    return np.mean(special.gammaln(k) - k * a["log_rate"] - (k - 1) * np.log(y) + r * y)


def _hand_gamma_vg(a):
    k, r = np.exp(a["log_concentration"]), np.exp(a["log_rate"])
    y = a["y"]
    ly = np.log(y)
    n = y.size
    v = np.mean(special.gammaln(k) - k * a["log_rate"] - (k - 1) * ly + r * y)
    return v, (k * (special.digamma(k) - a["log_rate"] - ly) / n, (r * y - k) / n)


def _hand_t(a):
    nu, s = a["df"], np.exp(a["log_scale"])
    z = (a["y"] - a["loc"]) / s
    return np.mean(special.gammaln(nu / 2) - special.gammaln((nu + 1) / 2) + 0.5 * np.log(nu)
                   + a["log_scale"] + (nu + 1) / 2 * np.log1p(z * z / nu))


def _hand_t_vg(a):
    nu, s = a["df"], np.exp(a["log_scale"])
    z = (a["y"] - a["loc"]) / s
    q = z * z / nu
    n = z.size
    v = np.mean(special.gammaln(nu / 2) - special.gammaln((nu + 1) / 2) + 0.5 * np.log(nu)
                + a["log_scale"] + (nu + 1) / 2 * np.log1p(q))
    w = (nu + 1) / (nu * (1 + q))
    g_df = (0.5 * special.digamma(nu / 2) - 0.5 * special.digamma((nu + 1) / 2) + 0.5 / nu
            + 0.5 * np.log1p(q) - 0.5 * w * q) / n
    g_loc = -w * z / s / n
    g_ls = (1 - w * z * z) / n
    return v, (g_df, g_loc, g_ls)


def _cases() -> list[NpCase]:
    return [
        NpCase("normal (log scale)", "normal_log_scale",
               lambda n, r: {"loc": r.standard_normal(n), "log_scale": 0.5 * r.standard_normal(n),
                             "y": r.standard_normal(n)},
               ("loc", "log_scale"), _hand_normal, _hand_normal_vg,
               lambda a: -np.mean(stats.norm.logpdf(a["y"], a["loc"], np.exp(a["log_scale"]))), "norm"),
        NpCase("poisson (log rate)", "poisson_log_rate",
               lambda n, r: {"log_rate": r.standard_normal(n), "y": r.poisson(2.0, n).astype(np.float64)},
               ("log_rate",), _hand_poisson, _hand_poisson_vg,
               lambda a: -np.mean(stats.poisson.logpmf(a["y"], np.exp(a["log_rate"]))), "poisson (logpmf)"),
        NpCase("bernoulli (logits)", "bernoulli_logit_probs",
               lambda n, r: {"logits": 3 * r.standard_normal(n), "y": (r.random(n) < 0.3).astype(np.float64)},
               ("logits",), _hand_bern, _hand_bern_vg,
               lambda a: -np.mean(stats.bernoulli.logpmf(a["y"], special.expit(a["logits"]))), "bernoulli (logpmf)"),
        NpCase("gamma (log conc., log rate)", "gamma_log_concentration_log_rate",
               lambda n, r: {"log_concentration": 0.5 * r.standard_normal(n), "log_rate": 0.5 * r.standard_normal(n),
                             "y": np.exp(r.standard_normal(n))},
               ("log_concentration", "log_rate"), _hand_gamma, _hand_gamma_vg,
               lambda a: -np.mean(stats.gamma.logpdf(a["y"], np.exp(a["log_concentration"]),
                                                     scale=np.exp(-a["log_rate"]))), "gamma"),
        NpCase("student t (log scale)", "studentt_log_scale",
               lambda n, r: {"df": np.exp(r.standard_normal(n)) + 1.0, "loc": r.standard_normal(n),
                             "log_scale": 0.5 * r.standard_normal(n), "y": r.standard_normal(n)},
               ("df", "loc", "log_scale"), _hand_t, _hand_t_vg,
               lambda a: -np.mean(stats.t.logpdf(a["y"], a["df"], a["loc"], np.exp(a["log_scale"]))), "t"),
    ]


@dataclass
class NpResult:
    case: str
    n: int
    times: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    check: str = ""


def run(n: int, repeats: int, log=print) -> list[NpResult]:
    out = []
    for case in _cases():
        res = NpResult(case.name, n)
        a = case.make(n, np.random.default_rng(0))
        args = [a[k] for k in case.order]
        loss = catalog_loss(case.loss)
        mod, err = load_module(loss, "numpy") if loss is not None else (None, f"not generated: no {case.loss}")
        impls = {}
        if mod is not None:
            impls["generated value"] = lambda m=mod: m.loss(*args, a["y"])
            impls["generated value+grad"] = lambda m=mod: m.value_and_grad(*args, a["y"])
        else:
            res.notes.append(err)
        impls["hand value"] = lambda: case.hand(a)
        impls["hand value+grad"] = lambda: case.hand_vg(a)
        impls["scipy value"] = lambda: case.scipy(a)
        with np.errstate(all="ignore"):
            timed = interleaved_medians(impls, repeats)  # side by side, one call of each per round
        record_times(res, timed)
        if mod is not None:
            try:  # a sanity check that the three agree (up to the dropped constant for the value)
                gv, gg = mod.value_and_grad(*args, a["y"])
                hv, hg = case.hand_vg(a)
                gerr = max(float(np.max(np.abs(np.asarray(x) - np.asarray(h)) / (np.abs(h) + 1e-300)))
                           for x, h in zip(gg, hg, strict=True))
                res.check = f"value diff {abs(float(gv) - float(hv)):.2g}, grad max rel diff {gerr:.2g}"
            except Exception as exc:  # noqa: BLE001
                res.check = f"check failed: {exc.__class__.__name__}: {str(exc)[:100]}"
        log(f"  numpy {case.name} N={n:.0e}: " + ", ".join(
            f"{k}={v * 1e3:.2f}ms" if v is not None else f"{k}=—" for k, v in res.times.items()))
        out.append(res)
    return out
