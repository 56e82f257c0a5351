"""``python -m benchmarks.triton_gpu [--n 1e8] [--out docs]``: the GPU table of the Triton target.

For every elementwise loss of the catalog (``generated/triton``), float32, forward + backward on a CUDA GPU:
the generated Triton module (through autograd, and ``value_and_grad`` in one launch), the generated PyTorch
module (eager), the torch built-in and ``-torch.distributions.<D>.log_prob(...).mean()`` with autograd where
they exist, and ``torch.compile`` of the generated PyTorch module for the losses of issue #12.  Each time is
the median of CUDA-event timings, and is also given as a multiple of the bandwidth bound: the bytes that
must move (each full-size input and the target read once, each gradient written once) over the measured
device-to-device copy bandwidth.  Peak memory is the largest allocation above the inputs during one
forward + backward.  Writes ``<out>/benchmarks-gpu.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "generated"

#: catalog name -> (built-in call on (inputs..., target), label)
BUILTINS = {
    "mse": (lambda loc, y: F.mse_loss(loc, y), "F.mse_loss"),
    "mae": (lambda loc, y: F.l1_loss(loc, y), "F.l1_loss"),
    "bernoulli_logit_probs": (lambda z, y: F.binary_cross_entropy_with_logits(z, y),
                              "F.binary_cross_entropy_with_logits"),
    "bce": (lambda p, y: F.binary_cross_entropy(p, y), "F.binary_cross_entropy"),
    "poisson_log_rate": (lambda z, y: F.poisson_nll_loss(z, y, log_input=True), "F.poisson_nll_loss"),
    "gaussian_nll": (lambda loc, var, y: F.gaussian_nll_loss(loc, y, var), "F.gaussian_nll_loss"),
}

#: catalog name -> −log_prob(...).mean() with torch.distributions
DISTRIBUTIONS = {
    "normal_log_scale": lambda loc, s, y: -torch.distributions.Normal(loc, s.exp()).log_prob(y).mean(),
    "bernoulli_logit_probs": lambda z, y: -torch.distributions.Bernoulli(logits=z).log_prob(y).mean(),
    "poisson_log_rate": lambda z, y: -torch.distributions.Poisson(z.exp()).log_prob(y).mean(),
    "studentt_log_scale": lambda df, loc, s, y: -torch.distributions.StudentT(df, loc, s.exp()).log_prob(y).mean(),
    "laplace_log_scale": lambda loc, s, y: -torch.distributions.Laplace(loc, s.exp()).log_prob(y).mean(),
    "gamma_log_concentration_log_rate": lambda a, b, y: -torch.distributions.Gamma(a.exp(), b.exp()).log_prob(y).mean(),
}

COMPILED = ("normal_log_scale", "bernoulli_logit_probs", "poisson_log_rate", "mse", "gaussian_nll")


def _module(target: str, name: str):
    path = CATALOG / target / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{target}_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # triton.jit reads the source through inspect
    spec.loader.exec_module(mod)
    return mod


def _inputs(mod, name: str, n: int):
    """Plausible full-size inputs (trained ones requiring grad), scalar data inputs and constants, a target."""
    g = torch.Generator(device="cuda").manual_seed(0)
    args = []
    for p in mod.PARAMS:
        if p == "total_count":
            args.append(torch.tensor(10.0, device="cuda"))
        elif p == "probs":
            args.append(0.05 + 0.9 * torch.rand(n, device="cuda", generator=g))
        elif p == "df" or p.startswith("log_df"):
            args.append(torch.full((n,), 1.1, device="cuda"))
        elif p in ("var",):
            args.append(0.5 + torch.rand(n, device="cuda", generator=g))
        else:
            args.append(0.5 * torch.randn(n, device="cuda", generator=g))
    u = torch.rand(n, device="cuda", generator=g)
    if "bernoulli" in name or name in ("bce", "continuousbernoulli_logit_probs"):
        y = (u < 0.5).float() if "continuous" not in name else u
    elif any(k in name for k in ("poisson", "binomial", "geometric", "negativebinomial")):
        y = torch.floor(4 * u)
    elif any(k in name for k in ("beta", "kumaraswamy")):
        y = 0.05 + 0.9 * u
    else:
        y = 0.1 + 2 * u
    consts = {c: torch.tensor(0.3, device="cuda") for c in mod.CONSTANTS}
    trained = [a.requires_grad_() if p in mod.WRT and a.numel() == n else a for p, a in zip(mod.PARAMS, args)]
    return trained, y, consts


def _time(fn, repeats: int) -> float:
    """Median milliseconds of fn() over CUDA events, after warm-up."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def _peak(fn) -> float:
    """Peak bytes allocated above the current allocation during fn(), in MB."""
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 1e6


def _copy_bandwidth(n: int) -> float:
    """Device-to-device copy bandwidth, bytes read + written per second."""
    a = torch.empty(n, device="cuda")
    b = torch.empty_like(a)
    ms = _time(lambda: b.copy_(a), 20)
    return 2 * a.numel() * 4 / (ms / 1e3)


def _fwd_bwd(loss_fn, args, y, consts):
    def run():
        for a in args:
            a.grad = None
        loss_fn(*args, y, **consts).backward()
    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.triton_gpu", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=float, default=1e8)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", default="docs")
    ap.add_argument("--only", default="", help="comma-separated catalog names (default: every Triton module)")
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA GPU: the Triton table needs one", file=sys.stderr)
        return 1
    import triton

    n = int(args.n)
    names = sorted(p.stem for p in (CATALOG / "triton").glob("*.py"))
    if args.only:
        names = [x for x in names if x in args.only.split(",")]
    t0 = time.perf_counter()
    bandwidth = _copy_bandwidth(n)
    rows = []
    for name in names:
        tri, pt = _module("triton", name), _module("torch", name)
        inputs, y, consts = _inputs(tri, name, n)
        full = [a for a in inputs if a.numel() == n] + [y]
        n_grads = sum(1 for p, a in zip(tri.PARAMS, inputs) if p in tri.WRT and a.numel() == n)
        bound_ms = (len(full) + n_grads) * n * 4 / bandwidth * 1e3
        row = {"name": name, "inputs": len(full), "grads": n_grads, "bound_ms": bound_ms}
        try:
            row["triton"] = _time(_fwd_bwd(tri.loss, inputs, y, consts), args.repeats)
            row["triton_peak_mb"] = _peak(_fwd_bwd(tri.loss, inputs, y, consts))
            row["triton_vg"] = _time(lambda: tri.value_and_grad(*inputs, y, **consts), args.repeats)
            ok = torch.isfinite(tri.loss(*inputs, y, **consts)).item()
            row["finite"] = bool(ok)
        except Exception as exc:  # report, don't stop the table
            row["error"] = f"triton: {type(exc).__name__}: {str(exc)[:200]}"
        try:
            row["torch_gen"] = _time(_fwd_bwd(pt.loss, inputs, y, consts), args.repeats)
            row["torch_gen_peak_mb"] = _peak(_fwd_bwd(pt.loss, inputs, y, consts))
        except Exception as exc:
            row.setdefault("error", f"torch: {type(exc).__name__}: {str(exc)[:200]}")
        if name in BUILTINS:
            fn, label = BUILTINS[name]
            row["builtin_label"] = label
            row["builtin"] = _time(_fwd_bwd(fn, inputs, y, {}), args.repeats)
            row["builtin_peak_mb"] = _peak(_fwd_bwd(fn, inputs, y, {}))
        if name in DISTRIBUTIONS:
            row["dist"] = _time(_fwd_bwd(DISTRIBUTIONS[name], inputs, y, {}), args.repeats)
        if name in COMPILED and not args.no_compile:
            try:
                compiled = torch.compile(pt.loss)
                row["torch_gen_compiled"] = _time(_fwd_bwd(compiled, inputs, y, consts), args.repeats)
                if name in BUILTINS:
                    cb = torch.compile(BUILTINS[name][0])
                    row["builtin_compiled"] = _time(_fwd_bwd(cb, inputs, y, {}), args.repeats)
            except Exception as exc:
                row["compile_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        rows.append(row)
        print(json.dumps(row), flush=True)
        torch.cuda.empty_cache()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmarks-gpu.json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    (out / "benchmarks-gpu.md").write_text(_report(rows, n, bandwidth, triton.__version__,
                                                   time.perf_counter() - t0), encoding="utf-8")
    print(f"wrote {out / 'benchmarks-gpu.md'}")
    return 0


def _x(row, key):
    v = row.get(key)
    return "–" if v is None else f"{v:.2f} ms ({v / row['bound_ms']:.1f}×)"


def _report(rows, n, bandwidth, triton_version, seconds) -> str:
    props = torch.cuda.get_device_properties(0)
    lines = [
        "# GPU benchmarks: the Triton target",
        "",
        "Written by `python -m benchmarks.triton_gpu` (issue #12); do not edit by hand.",
        "",
        f"- GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB; measured copy bandwidth "
        f"{bandwidth / 1e12:.2f} TB/s (bytes read + written)",
        f"- torch {torch.__version__}, triton {triton_version}, Python {platform.python_version()}",
        f"- N = {n:.0e} elements, float32, forward + backward; median of CUDA-event timings; "
        f"run time {seconds:.0f} s",
        "- Each time is followed by its multiple of the bandwidth bound: (full-size inputs and target read once "
        "+ gradients written once) × 4 bytes / copy bandwidth.",
        "- triton: `loss(...).backward()` of the generated Triton module (one fused kernel in forward, the saved "
        "gradients returned in backward); triton v&g: `value_and_grad(...)`, one launch without autograd; "
        "torch gen: the generated PyTorch module, eager; built-in: the torch.nn.functional loss; "
        "distributions: `-D(...).log_prob(y).mean()` with autograd; compiled: `torch.compile`.",
        "",
        "| loss | bound | triton | triton v&g | torch gen | built-in | distributions | torch gen compiled | "
        "built-in compiled | peak MB triton / torch gen / built-in |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        peaks = " / ".join("–" if r.get(k) is None else f"{r[k]:.0f}"
                           for k in ("triton_peak_mb", "torch_gen_peak_mb", "builtin_peak_mb"))
        builtin = _x(r, "builtin") + (f" `{r['builtin_label']}`" if r.get("builtin_label") else "")
        lines.append(f"| `{r['name']}` | {r['bound_ms']:.2f} ms | {_x(r, 'triton')} | {_x(r, 'triton_vg')} | "
                     f"{_x(r, 'torch_gen')} | {builtin} | {_x(r, 'dist')} | {_x(r, 'torch_gen_compiled')} | "
                     f"{_x(r, 'builtin_compiled')} | {peaks} |")
    ratios = [r["triton"] / r["bound_ms"] for r in rows if r.get("triton")]
    met = sum(1 for x in ratios if x <= 1.5)
    lines += [
        "",
        f"Goal (issue #12): ≤ 1.5× the bound for every elementwise loss: met by {met} of {len(ratios)} "
        f"(median {statistics.median(ratios):.2f}×, worst {max(ratios):.2f}×)." if ratios else "No Triton rows.",
    ]
    errors = [r for r in rows if r.get("error") or r.get("compile_error")]
    if errors:
        lines += ["", "Errors:", ""] + [f"- `{r['name']}`: {r.get('error') or r.get('compile_error')}" for r in errors]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
