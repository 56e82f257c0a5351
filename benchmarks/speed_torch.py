"""PyTorch speed and memory: generated module vs torch built-in vs torch.distributions, eager and compiled.

Every measurement is forward + backward in float32 on the device (CUDA when
``torch.cuda.is_available()``, else the CPU): the reduced (mean) loss, then
``.backward()``; the reported time is the median of the repeats after one
warm-up call (compiled functions: after the compiling call, whose time is
reported separately).  On CUDA every timed call ends with
``torch.cuda.synchronize()`` and the memory column is the peak of
``torch.cuda.max_memory_allocated`` during one step above what was allocated before it.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from .common import catalog_loss, interleaved_medians, load_module, median_time, record_times


def device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_name(dev: torch.device | None = None) -> str:
    dev = dev or device()
    if dev.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(dev)}"
    from .common import cpu_model

    return f"CPU: {cpu_model()}, {torch.get_num_threads()} torch threads"


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def copy_bandwidth(dev: torch.device, n: int = 2**25, repeats: int = 5) -> float:
    """Measured device-memory copy bandwidth in bytes/s (read + write of a float32 tensor of n elements)."""
    src = torch.ones(n, dtype=torch.float32, device=dev)
    dst = torch.empty_like(src)

    def run():
        dst.copy_(src)
        sync(dev)

    return 2 * n * 4 / median_time(run, repeats, warmup=2)


def min_bytes(args: dict, trained: tuple[str, ...]) -> int:
    """The bytes any forward + backward must move at least: every input read once, every gradient written once."""
    read = sum(t.numel() * t.element_size() for t in args.values() if isinstance(t, torch.Tensor))
    return read + sum(args[n].numel() * args[n].element_size() for n in trained)

CLASSES = 1000  # classes for cross-entropy: N/CLASSES rows so that the logits hold N elements


@dataclass
class Case:
    name: str  # the row label
    loss: str | None  # catalog loss name (None: no catalog counterpart)
    make: Callable[[int, torch.Generator], dict[str, torch.Tensor]]  # inputs (trained ones first)
    trained: tuple[str, ...]
    gen: Callable[[Any, dict], torch.Tensor] | None
    builtin: Callable[[dict], torch.Tensor] | None
    builtin_name: str | None
    dist: Callable[[dict], torch.Tensor] | None
    dist_name: str | None
    note: str = ""
    compile: bool = True  # False: torch.compile of this row is skipped (the note says why)


def _randn(n, g, scale=1.0):
    return torch.randn(n, generator=g) * scale


def _cases() -> list[Case]:
    D = torch.distributions
    return [
        Case("mse", "mse",
             lambda n, g: {"loc": _randn(n, g), "y": _randn(n, g)}, ("loc",),
             lambda m, a: m.loss(a["loc"], a["y"]),
             lambda a: F.mse_loss(a["loc"], a["y"]), "F.mse_loss",
             lambda a: -D.Normal(a["loc"], 1.0).log_prob(a["y"]).mean(), "Normal(loc, 1)"),
        Case("bce with logits", "bernoulli_logit_probs",
             lambda n, g: {"logits": _randn(n, g, 3.0), "y": torch.bernoulli(torch.full((n,), 0.3), generator=g)},
             ("logits",),
             lambda m, a: m.loss(a["logits"], a["y"]),
             lambda a: F.binary_cross_entropy_with_logits(a["logits"], a["y"]), "F.binary_cross_entropy_with_logits",
             lambda a: -D.Bernoulli(logits=a["logits"]).log_prob(a["y"]).mean(), "Bernoulli(logits=)"),
        Case("poisson (log rate)", "poisson_log_rate",
             lambda n, g: {"log_rate": _randn(n, g), "y": torch.poisson(torch.full((n,), 2.0), generator=g)},
             ("log_rate",),
             lambda m, a: m.loss(a["log_rate"], a["y"]),
             lambda a: F.poisson_nll_loss(a["log_rate"], a["y"], log_input=True), "F.poisson_nll_loss",
             lambda a: -D.Poisson(a["log_rate"].exp()).log_prob(a["y"]).mean(), "Poisson(exp(log_rate))"),
        Case("gaussian nll (variance)", "gaussian_nll",
             lambda n, g: {"loc": _randn(n, g), "var": _randn(n, g).exp(), "y": _randn(n, g)}, ("loc", "var"),
             lambda m, a: m.loss(a["loc"], a["var"], a["y"]),
             lambda a: F.gaussian_nll_loss(a["loc"], a["y"], a["var"]), "F.gaussian_nll_loss",
             lambda a: -D.Normal(a["loc"], a["var"].sqrt()).log_prob(a["y"]).mean(), "Normal(loc, sqrt(var))"),
        Case(f"cross-entropy ({CLASSES} classes)", "categorical_softmax_probs",
             lambda n, g: _categorical(n, g), ("logits",),
             lambda m, a: m.loss(a["logits"], a["y"]),
             lambda a: F.cross_entropy(a["logits"], a["y"]), "F.cross_entropy",
             lambda a: -D.Categorical(logits=a["logits"]).log_prob(a["y"]).mean(), "Categorical(logits=)",
             note="N = elements of the logits (N/1000 rows × 1000 classes); all three take integer class "
                  "indices (the generated module gathers the entry at the target's class, as the built-in does)"),
        Case("bce on probabilities", "bce",
             lambda n, g: {"probs": torch.sigmoid(_randn(n, g)),
                           "y": torch.bernoulli(torch.full((n,), 0.3), generator=g)}, ("probs",),
             lambda m, a: m.loss(a["probs"], a["y"]),
             lambda a: F.binary_cross_entropy(a["probs"], a["y"]), "F.binary_cross_entropy",
             lambda a: -D.Bernoulli(probs=a["probs"]).log_prob(a["y"]).mean(), "Bernoulli(probs=)"),
        Case("mae", "mae",
             lambda n, g: {"loc": _randn(n, g), "y": _randn(n, g)}, ("loc",),
             lambda m, a: m.loss(a["loc"], a["y"]),
             lambda a: F.l1_loss(a["loc"], a["y"]), "F.l1_loss",
             lambda a: -D.Laplace(a["loc"], 1.0).log_prob(a["y"]).mean(), "Laplace(loc, 1)"),
        Case("huber", None,
             lambda n, g: {"loc": _randn(n, g), "y": _randn(n, g)}, ("loc",),
             None,
             lambda a: F.huber_loss(a["loc"], a["y"]), "F.huber_loss",
             None, None, note="no catalog entry computes the Huber loss (no registry distribution has it as NLL)"),
        Case("normal (log scale)", "normal_log_scale",
             lambda n, g: {"loc": _randn(n, g), "log_scale": _randn(n, g, 0.5), "y": _randn(n, g)},
             ("loc", "log_scale"),
             lambda m, a: m.loss(a["loc"], a["log_scale"], a["y"]),
             None, None,
             lambda a: -D.Normal(a["loc"], a["log_scale"].exp()).log_prob(a["y"]).mean(), "Normal(loc, exp(log_scale))"),
        Case("gamma (log conc., log rate)", "gamma_log_concentration_log_rate",
             lambda n, g: {"log_concentration": _randn(n, g, 0.5), "log_rate": _randn(n, g, 0.5),
                           "y": _randn(n, g).exp()},
             ("log_concentration", "log_rate"),
             lambda m, a: m.loss(a["log_concentration"], a["log_rate"], a["y"]),
             None, None,
             lambda a: -D.Gamma(a["log_concentration"].exp(), a["log_rate"].exp()).log_prob(a["y"]).mean(),
             "Gamma(exp, exp)"),
        Case("student t (log scale)", "studentt_log_scale",
             lambda n, g: {"df": _randn(n, g).exp() + 1.0, "loc": _randn(n, g), "log_scale": _randn(n, g, 0.5),
                           "y": _randn(n, g)},
             ("df", "loc", "log_scale"),
             lambda m, a: m.loss(a["df"], a["loc"], a["log_scale"], a["y"]),
             None, None,
             lambda a: -D.StudentT(a["df"], a["loc"], a["log_scale"].exp()).log_prob(a["y"]).mean(),
             "StudentT(df, loc, exp(log_scale))", compile=False,
             note="not compiled: inductor's CPU code generation of the generated module (its stable "
                  "log1p-of-a-square and log-gamma helpers fused into one kernel) ran over 15 minutes on the "
                  "2-core machine and was stopped"),
    ]


def _categorical(n, g):
    rows = max(n // CLASSES, 1)
    logits = torch.randn(rows, CLASSES, generator=g)
    y = torch.randint(0, CLASSES, (rows,), generator=g)
    return {"logits": logits, "y": y}


def _step(call: Callable[[dict], torch.Tensor], args: dict, trained: tuple[str, ...]) -> Callable[[], None]:
    leaves = [args[n] for n in trained]
    dev = leaves[0].device

    def run():
        for t in leaves:
            t.grad = None
        call(args).backward()
        sync(dev)

    return run


def peak_bytes(call: Callable[[dict], torch.Tensor], args: dict, trained) -> int | None:
    """CUDA: the peak memory allocated during one forward + backward above what was allocated before it."""
    dev = args[trained[0]].device
    if dev.type != "cuda":
        return None
    for n in trained:
        args[n].grad = None
    sync(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    before = torch.cuda.memory_allocated(dev)
    _step(call, args, trained)()
    peak = torch.cuda.max_memory_allocated(dev) - before
    for n in trained:
        args[n].grad = None
    return peak


def saved_bytes(call: Callable[[dict], torch.Tensor], args: dict, trained) -> int:
    """Bytes of the distinct storages autograd saves for backward (forward + backward kept alive)."""
    seen: dict[int, int] = {}

    def pack(t):
        try:
            st = t.untyped_storage()
            seen[st.data_ptr()] = st.nbytes()
        except Exception:  # noqa: BLE001
            seen[id(t)] = t.numel() * t.element_size()
        return t

    for n in trained:
        args[n].grad = None
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = call(args)
    out.backward()
    for n in trained:
        args[n].grad = None
    return sum(seen.values())


@dataclass
class Result:
    case: str
    n: int
    times: dict[str, float | None] = field(default_factory=dict)  # implementation -> seconds
    compile_s: dict[str, float | None] = field(default_factory=dict)
    memory: dict[str, int | None] = field(default_factory=dict)
    peak: dict[str, int | None] = field(default_factory=dict)  # CUDA only: peak allocation of one step
    bytes_moved: int = 0  # the minimum bytes one forward + backward moves (inputs read, gradients written)
    notes: list[str] = field(default_factory=list)


def run(ns: list[int], repeats: dict[int, int], compile_ns: set[int], log=print) -> tuple[list[Result], list[Case]]:
    cases = _cases()
    dev = device()
    results = []
    for case in cases:
        mod, err = (None, None)
        if case.loss is not None:
            loss = catalog_loss(case.loss)
            if loss is None:
                err = f"not generated: {case.loss} is not in the catalog"
            else:
                mod, err = load_module(loss, "torch")
        for n in ns:
            res = Result(case.name, n)
            if err:
                res.notes.append(err)
            g = torch.Generator().manual_seed(0)
            args = {k: v.to(dev) for k, v in case.make(n, g).items()}
            for t in case.trained:
                args[t].requires_grad_(True)
            res.bytes_moved = min_bytes(args, case.trained)
            reps = repeats[n]
            impls: dict[str, Callable[[dict], torch.Tensor]] = {}
            if mod is not None and case.gen is not None:
                impls["generated"] = lambda a, m=mod, f=case.gen: f(m, a)
            if case.builtin is not None:
                impls["builtin"] = case.builtin
            if case.dist is not None:
                impls["distributions"] = case.dist
            # side by side: each round times every implementation once (see interleaved_medians)
            timed = interleaved_medians({k: _step(c, args, case.trained) for k, c in impls.items()}, reps)
            for label, call in impls.items():
                t = timed[label]
                if isinstance(t, Exception):
                    res.times[label] = None
                    res.notes.append(f"{label} failed: {t.__class__.__name__}: {str(t)[:200]}")
                    continue
                res.times[label] = t
                try:
                    res.memory[label] = saved_bytes(call, args, case.trained)
                    res.peak[label] = peak_bytes(call, args, case.trained)
                except Exception as exc:  # noqa: BLE001
                    res.notes.append(f"{label} memory failed: {exc.__class__.__name__}: {str(exc)[:200]}")
            if n in compile_ns and case.compile:
                compiled = {}
                for label in ("generated", "builtin"):
                    if label not in impls:
                        continue
                    key = f"compiled {label}"
                    try:
                        cfn = torch.compile(impls[label], dynamic=False)
                        t0 = time.perf_counter()
                        _step(cfn, args, case.trained)()
                        res.compile_s[key] = time.perf_counter() - t0
                        res.memory[key] = saved_bytes(cfn, args, case.trained)
                        res.peak[key] = peak_bytes(cfn, args, case.trained)
                        compiled[key] = cfn
                    except Exception as exc:  # noqa: BLE001
                        res.times[key] = None
                        msg = " ".join(str(exc).split())[:300]
                        res.notes.append(f"{key} failed: {exc.__class__.__name__}: {msg}")
                        traceback.print_exc()
                timed = interleaved_medians({k: _step(c, args, case.trained) for k, c in compiled.items()}, reps)
                record_times(res, timed)
                torch._dynamo.reset()
            log(f"  torch {case.name} N={n:.0e}: " + ", ".join(
                f"{k}={v * 1e3:.2f}ms" if v is not None else f"{k}=—" for k, v in res.times.items()))
            results.append(res)
            del args
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    return results, cases


def profile_top(case_name: str, n: int, label: str = "generated", rows: int = 8) -> str:
    """The top ops (self CPU time) of one forward+backward, as text."""
    case = next(c for c in _cases() if c.name == case_name)
    g = torch.Generator().manual_seed(0)
    dev = device()
    args = {k: v.to(dev) for k, v in case.make(n, g).items()}
    for t in case.trained:
        args[t].requires_grad_(True)
    if label == "generated":
        mod, err = load_module(catalog_loss(case.loss), "torch")
        if mod is None:
            return err
        call = lambda a: case.gen(mod, a)  # noqa: E731
    elif label == "builtin":
        call = case.builtin
    else:
        call = case.dist
    step = _step(call, args, case.trained)
    step()
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=acts) as prof:
        step()
    key = "self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)
