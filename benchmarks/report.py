"""Runs the sections and renders docs/benchmarks.md and docs/accuracy.md."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from .common import catalog_losses, fmt_ratio, fmt_time, header


@dataclass
class Config:
    ns: list[int]
    repeats: dict[int, int]
    compile_ns: set[int]
    numpy_n: int
    numpy_repeats: int
    grid: int
    skip: set[str] = field(default_factory=set)
    quick: bool = False
    command: str = "python -m benchmarks"
    only: set[str] = field(default_factory=set)  # accuracy: only these catalog losses (empty: all)


def _pf(ok: bool | None) -> str:
    return "—" if ok is None else ("PASS" if ok else "**FAIL**")


def _gbps(nbytes: int, t: float | None, copy_bw: float | None) -> str:
    if not nbytes or not t:
        return "—"
    rate = nbytes / t
    share = "" if not copy_bw else f" ({100 * rate / copy_bw:.0f} %)"
    return f"{rate / 1e9:.1f}{share}"


def _mib(b: int | None) -> str:
    return "—" if b is None else f"{b / 2**20:.1f}"


# -- accuracy --------------------------------------------------------------------------------------
def _bits_cell(scores, what_filter) -> str:
    sel = [s for s in scores if what_filter(s.what)]
    if not sel:
        return "—"
    med = max(s.median for s in sel)
    mx = max(s.max for s in sel)
    return f"{math.log2(med + 1):.1f} / {math.log2(mx + 1):.1f} ({mx:.3g})"


def _excess_cell(scores, what_filter) -> str:
    sel = [s for s in scores if what_filter(s.what)]
    if not sel:
        return "—"
    med = max(s.excess_median for s in sel)
    mx = max(s.excess_max for s in sel)
    return f"{med:.3g} / {mx:.3g}"


def accuracy_report(cfg: Config, log) -> str:
    from . import accuracy as A
    from . import flaws

    t0 = time.perf_counter()
    lines = [header("Accuracy of the generated losses", [
        f"* Command: `{cfg.command}`; grid: at most {cfg.grid} points per loss (a deterministic subsample of "
        "the full product grid)",
    ])]
    if "accuracy" in cfg.skip:
        return "\n".join(lines + ["", "Skipped (--skip accuracy)."]) + "\n"
    lines += ["", """## Method

Every output is compared in **float64** with the exact value: `loss.expr` (reduction="none", full=False) and
every `loss.gradient[...]`, evaluated with `sympy.lambdify(..., "mpmath")` at 50 significant digits and again
at 80; where the two disagree, or the result is below 1e-30 (a cancellation such as log(1 + e^-700), which
needs 305 digits), at 400 and then 1200 digits, until two precisions round to the same float64.  Where the
locations and a real target span more than those 30 digits (y = 1e150 beside μ = −1, whose difference rounds to
y at 50 digits and at 80 alike), the two precisions start at 400 (1200 beyond 350 digits) and 430.  The error is
the number of float64 values between the output and the rounded truth (ulps, as Herbie counts them); the
table shows **bits of error**, log2(ulps + 1), as *median / max (max ulps)* over the value (and separately
over all gradient components).  Points where the truth is undefined, complex or overflows float64 are left
out; "non-finite" counts outputs that are inf/nan where the truth is finite.

Grid (every input and the target, filtered by its domain): logits ±1e4, ±700, ±40, ±1, 0; log-scales (and
other log-links) giving scales 1e-30 … 1e30; log-rates / log-means giving rates 1e-300 … 1e300; real
locations ±1e150, ±1, 0 against real targets ±1e150, ±1, 0, 1e-300 (residuals up to 2e150); positive inputs
and targets 1e-300 … 1e300; unit-interval targets 0, 1e-300, 1e-16, 1e-8, 0.5, 1−1e-8, 1−2^-53, 1 (where the
support allows); counts 0, 1, 3, 100, 1e6; class-axis losses with K = 3 classes (Dirichlet targets on the
simplex in float64: (¼, ¼, ½), (1e-300, ½, ½), (1 − 2^-52, 2^-53, 2^-53)).

The built-in rows are scored against *their own* formula (`loss.known_as.formula`: the classic loss they
compute) and the `torch.distributions` rows against the full −log p (`loss.nll`); the gradients are
autograd's.  Targets for the generated modules: median ≤ 4 ulps, max ≤ 64 ulps, zero non-finite where the
truth is finite, and no grid point worse than the built-in (worse: > max(4, 2 × the built-in's ulps)).
A 100 % relative error at a tiny result (e.g. 0 instead of 8.5e-18) counts ~4e18 ulps (62 bits), as in
Herbie: such rows fail even when the absolute error is negligible.

### Two measures: raw ulps and excess ulps (conditioning)

Raw ulps mix two things: the error the algorithm adds, and the error that no float64 algorithm can avoid
because the *problem* is ill-conditioned at that point.  ∂ℓ/∂log_scale = 1 − r² of a Normal, r = (y − μ)·e^−s,
is near 0 where r² ≈ 1: there, rounding the inputs by half an ulp already moves the exact result by up to
2r²/|1 − r²| times as much in relative terms, and the rounding of e^−s inside any implementation does the same.
The measure of this is the relative condition number (Higham, *Accuracy and Stability of Numerical
Algorithms*, 2nd ed., SIAM 2002, ch. 1; componentwise form, §1.6 and eq. (1.5)):

    κ(f, x) = Σ_i |x_i · ∂f/∂x_i(x)| / |f(x)|

over every scalar input x_i of the output f (parameters, target and constants; every class component of a
class-axis input).  A backward-stable algorithm — one whose result is the exact f at inputs perturbed by a
few ulps — has a forward error of about κ × those few ulps.  The table therefore also shows **excess ulps**
= ulps / max(1, κ): the error beyond what the conditioning allows (≈ the backward error in ulps).  An output
with a small excess is as accurate as the problem allows; a large excess is a defect of the algorithm.

κ is computed from sympy's derivatives of the same exact expression (`loss.expr`, each `loss.gradient[...]`;
the built-in's own formula for its row), evaluated with mpmath at 60 and 130 digits (400 and 470 where the locations
span more digits than that gap; then 400 and 1200 where those disagree:
a derivative that is itself a cancellation only counts once two precisions agree), divided by the rounded
truth (κ = ∞ where the truth is 0 and a term is not).  Where κ cannot be evaluated (a derivative undefined or
not resolved) it is taken as 1: no allowance.  To keep the run short, κ is evaluated only at points whose raw
error exceeds 4 ulps; elsewhere the raw error is used as the excess (an upper bound, since excess ≤ ulps).

**Targets** (the PASS/FAIL column) are the same bounds on the conditioning-aware measure: median excess ≤ 4,
max excess ≤ 64, zero non-finite where the truth is finite, and no grid point worse than the built-in in
excess ulps (the built-in's excess taken against its own formula's κ).  The raw column keeps the old verdict
(the same bounds on raw ulps) for comparison.
"""]
    rows = []
    for entry, loss in catalog_losses():
        if isinstance(loss, Exception):
            rows.append(A.Row(str(entry.distribution), "derive", 0, None, f"derive failed: {loss}"))
            continue
        if cfg.only and loss.name not in cfg.only:
            continue
        t = time.perf_counter()
        try:
            rows += A.evaluate_loss(loss, limit=cfg.grid)
        except Exception as exc:  # noqa: BLE001
            rows.append(A.Row(loss.name, "harness", 0, None, f"harness failed: {exc.__class__.__name__}: {exc}"))
        log(f"accuracy {loss.name}: {time.perf_counter() - t:.1f}s")
    gen = [r for r in rows if r.implementation.startswith("generated")]
    passed = sum(1 for r in gen if r.ok)
    failed = [r for r in gen if r.ok is False]
    passed_raw = sum(1 for r in gen if r.ok_raw)
    failed_raw = [r for r in gen if r.ok_raw is False]
    notgen = [r for r in gen if r.scores is None]
    lines += ["## Summary", "",
              f"Generated modules scored: {len(gen) - len(notgen)} (torch and numpy); not generated / failed to "
              f"run: {len(notgen)}.", "",
              f"* Conditioning-aware targets (excess ulps, the PASS/FAIL column): **PASS {passed}**, "
              f"**FAIL {len(failed)}**.",
              f"* Raw targets (ulps): PASS {passed_raw}, FAIL {len(failed_raw)}.", ""]
    if failed:
        lines.append("Failing generated rows (excess ulps): " + ", ".join(
            f"`{r.loss}` ({r.implementation.split()[1]})" for r in failed) + ".")
    lines += ["", "## Table", "",
              "Bits are log2(ulps + 1) of the raw error; excess = ulps / max(1, κ).", "",
              "| loss | implementation | points | value bits med / max (max ulps) | gradient bits med / max "
              "(max ulps) | value excess med / max | gradient excess med / max | non-finite | worse than "
              "built-in (raw / excess) | out of range | raw target | target |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.scores is None:
            lines.append(f"| `{r.loss}` | {r.implementation} | {r.points} | {r.note} | | | | | | | — | — |")
            continue
        nf = sum(s.nonfinite for s in r.scores)
        oor = sum(s.out_of_range for s in r.scores)
        worse = "—" if r.worse_than_builtin is None else f"{r.worse_than_builtin} / {r.worse_than_builtin_excess}"
        is_gen = r.implementation.startswith("generated")
        target = _pf(r.ok) if is_gen else ("meets" if r.ok else "misses")
        target_raw = _pf(r.ok_raw).replace("**", "") if is_gen else ("meets" if r.ok_raw else "misses")
        lines.append(f"| `{r.loss}` | {r.implementation} | {r.points} | "
                     f"{_bits_cell(r.scores, lambda w: w == 'value')} | "
                     f"{_bits_cell(r.scores, lambda w: w != 'value')} | "
                     f"{_excess_cell(r.scores, lambda w: w == 'value')} | "
                     f"{_excess_cell(r.scores, lambda w: w != 'value')} | {nf} | {worse} | {oor} | "
                     f"{target_raw} | {target} |")
    lines += ["", "## Worst points by excess ulps (rows over 64 excess ulps)", "",
              "These are the defects: errors that the conditioning of the problem does not explain.", ""]
    for r in rows:
        if r.worst_excess:
            lines.append(f"* `{r.loss}` / {r.implementation}:")
            lines += [f"  * {w}" for w in r.worst_excess]
    lines += ["", "## Worst points by raw ulps (rows over 64 ulps)", ""]
    for r in rows:
        if r.worst:
            lines.append(f"* `{r.loss}` / {r.implementation}:")
            lines += [f"  * {w}" for w in r.worst]
    lines += ["", "## Known built-in flaws, point by point", "",
              "Relative error against the exact value (mpmath, 60 digits); float64.", "",
              "| flaw | point | exact | built-in | rel. error | generated | rel. error |", "|---|---|---|---|---|---|---|"]
    try:
        for f in flaws.rows():
            g = f["generated"]
            gtxt = g if isinstance(g, str) else f"{g:.17g}"
            lines.append(f"| {f['flaw']} | {f['point']} | {f['truth']:.17g} | {f['builtin']:.17g} | "
                         f"{flaws.rel(f['builtin'], f['truth'])} | {gtxt} (`{f['generated_name']}`) | "
                         f"{flaws.rel(g, f['truth'])} |")
    except Exception as exc:  # noqa: BLE001
        lines.append(f"| flaws table failed: {exc.__class__.__name__}: {exc} | | | | | | |")
    lines += ["", f"Accuracy harness runtime: {time.perf_counter() - t0:.0f} s.", ""]
    return "\n".join(lines) + "\n"


# -- speed -----------------------------------------------------------------------------------------
def benchmark_report(cfg: Config, log, started: float) -> str:
    t_section = time.perf_counter()
    ns_txt = ", ".join(f"{n:.0e} (repeats {cfg.repeats[n]})" for n in cfg.ns)
    try:
        from .speed_torch import device_name

        dev_txt = device_name()
    except Exception as exc:  # noqa: BLE001
        dev_txt = f"torch unavailable ({exc.__class__.__name__})"
    lines = [header("Benchmarks", [
        f"* Command: `{cfg.command}`",
        f"* PyTorch device: {dev_txt}",
        f"* PyTorch: float32, forward + backward of the mean loss; N = {ns_txt}; torch.compile at N = "
        + ", ".join(f"{n:.0e}" for n in sorted(cfg.compile_ns)),
        f"* NumPy: float64, N = {cfg.numpy_n:.0e}, repeats {cfg.numpy_repeats}",
        "* Times are medians after one warm-up call, measured side by side: each round times every "
        "implementation of a row once, in turn, so that a slow spell of the machine falls on all of them; "
        "all ratios come from this one run.",
    ])]
    if "speed" not in cfg.skip:
        lines += _torch_section(cfg, log)
    else:
        lines += ["", "## PyTorch", "", "Skipped (--skip speed)."]
    if "numpy" not in cfg.skip:
        lines += _numpy_section(cfg, log)
    else:
        lines += ["", "## NumPy", "", "Skipped (--skip numpy)."]
    if "symbolic" not in cfg.skip:
        lines += _symbolic_section(cfg, log)
    else:
        lines += ["", "## Symbolic side", "", "Skipped (--skip symbolic)."]
    lines += ["", f"Benchmark sections runtime: {time.perf_counter() - t_section:.0f} s; whole "
                  f"`python -m benchmarks` run including accuracy: {time.perf_counter() - started:.0f} s.", ""]
    return "\n".join(lines) + "\n"


WHY = """### Why targets are missed (from the generated source and the profiles below)

* **Unfused elementwise ops.** Each generated expression is a chain of separate torch ops, each one pass over
  an N-sized array (e.g. BCE with logits is `x·(step(x) − y) + softplus(−|x|)` and its gradient
  `step(x) − y − sgn(x)·sigmoid(−|x|)`, kept in this form because `sigmoid(x) − y` cancels), where the
  built-ins run one or two fused ATen kernels.  The forward evaluates value and gradient once and the
  backward only scales the saved gradient (nothing when grad_output is 1), so the remaining gap is the
  number of passes.  torch.compile fuses them, which is why the compiled ratios are closer.
* **Fresh allocations.** A tensor of a few MB and more is a new mapping whose pages the kernel faults in and
  zero-fills on first write; in this machine's profiles an op that allocates its result costs 2–4× the same
  op done in place.  Without autograd (the forward of the loss's autograd.Function) the generated modules run
  in-place forms of their terms (`_loss_terms_and_grads_inplace`, symloss.codegen.inplace): every
  intermediate that nothing reads afterwards is overwritten instead of a new one allocated, with the same
  operations and roundings.  An unweighted mean or sum over more than two blocks of 2^18 observations is
  evaluated a block at a time (`_forward_blocked`): each block's temporaries stay in the cache and the
  allocator hands their memory back to the next block, so only the gradients are whole arrays.  It made the
  1e7 rows several times faster (BCE with logits 182 → 71 ms, Gamma 1.30 s → 0.41 s, Student-t 2.98 s →
  0.61 s, measured when blocking came in); at 1e6 glibc already reuses freed 4 MB arrays, and each block's
  Python cost (about 30 µs for MSE, 80 µs for BCE with logits) is much of what is left.  Losses with a class
  axis are not blocked: their row reductions cost more per block than the memory saved (cross-entropy 1e6:
  2.0 ms whole, 4.2 ms in blocks).
* **Cross-entropy on class indices** is gathered (symloss.codegen.class_index: the entry at the target's
  class read with torch.gather, the gradient's written with scatter_), as the built-in does, not expanded to
  a one-hot array.  What remains is the softmax in separate passes (max, x − max, exp, a sum, a scale) where
  the built-in runs one log_softmax kernel, and the extra pass of the exact Σ e − 1 in rows where it cancels
  (a confident prediction: Σ e − 1 < 1).
* **Python overhead per call** (`_prepare` dtype promotion and `.to`, `_check`, broadcasting helpers) is
  visible only at small N.
* **Stable helpers cost passes.** Where the stabiliser has replaced a function by an accurate helper (the
  Stirling-series log-gamma and digamma corrections and the binomial deviance bd0 of the Gamma loss, the
  digamma difference ψ(x + ½) − ψ(x) and the overflow-safe log(1 + x²) of the Student-t), each helper is tens
  of elementwise torch ops evaluated on the whole array (both branches of every `where`).  On this CPU build
  torch.lgamma and torch.digamma are scalar loops (about 13 and 30 ms per 1e6 float32 on one thread, against
  about 1 ms for exp) and torch.where with a data-dependent mask costs about 5 ms per 1e6 (branch
  mispredictions; under 1 ms when the mask is all one way), so a helper that needs them on its small branch
  pays them everywhere.  These losses are exact at the extremes where `torch.distributions` is not
  (docs/accuracy.md), and slower than it: the accuracy was bought with passes, which a fused kernel (the
  Triton target on a GPU) would not pay.
"""


def _torch_section(cfg: Config, log) -> list[str]:
    from . import speed_torch as S

    results, cases = S.run(cfg.ns, cfg.repeats, cfg.compile_ns, log=lambda m: log(m))
    by = {c.name: c for c in cases}
    dev = S.device()
    try:
        bw = S.copy_bandwidth(dev)
    except Exception:  # noqa: BLE001
        bw = None
    bw_txt = "—" if bw is None else f"{bw / 1e9:.1f} GB/s"
    lines = ["", f"## PyTorch: forward + backward ({S.device_name(dev)})", "",
             f"Measured copy bandwidth (`dst.copy_(src)`, 128 MiB float32, read + write): {bw_txt}.  The "
             "*gen GB/s* column is the minimum traffic of one step (every input read once, every gradient "
             "written once) divided by the generated module's time, and its share of the copy bandwidth.", "",
             "Targets (goals, not assertions): generated eager ≤ 1.0× the built-in; generated ≥ 2× faster "
             "than −torch.distributions.log_prob with autograd; compiled generated ≤ 1.2× compiled built-in.", "",
             "| loss | N | generated | built-in | distributions | compiled generated | compiled built-in | "
             "gen / built-in | distributions / gen | compiled gen / compiled built-in | gen GB/s (of copy) | "
             "≤1.0× built-in | ≥2× vs distributions | compiled ≤1.2× |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    misses = []
    for r in results:
        t = r.times
        g, b, d = t.get("generated"), t.get("builtin"), t.get("distributions")
        cg, cb = t.get("compiled generated"), t.get("compiled builtin")
        p1 = None if g is None or b is None else g <= b
        p2 = None if g is None or d is None else d >= 2 * g
        p3 = None if cg is None or cb is None else cg <= 1.2 * cb
        for ok, what in ((p1, "eager vs built-in"), (p2, "vs distributions"), (p3, "compiled")):
            if ok is False:
                misses.append((r.case, r.n, what))
        lines.append(f"| {r.case} | {r.n:.0e} | {fmt_time(g)} | {fmt_time(b)} | {fmt_time(d)} | {fmt_time(cg)} | "
                     f"{fmt_time(cb)} | {fmt_ratio(g, b)} | {fmt_ratio(d, g)} | {fmt_ratio(cg, cb)} | "
                     f"{_gbps(r.bytes_moved, g, bw)} | {_pf(p1)} | {_pf(p2)} | {_pf(p3)} |")
    lines += ["", "Built-ins and distributions per row: " + "; ".join(
        f"{c.name}: {c.builtin_name or '—'} / {c.dist_name or '—'}" for c in cases) + ".", ""]
    notes = [f"* {c.name}: {c.note}" for c in cases if c.note]
    notes += [f"* {r.case} (N={r.n:.0e}): {n}" for r in results for n in r.notes]
    if notes:
        lines += ["Notes:", ""] + list(dict.fromkeys(notes))
    lines += ["", "### Compile time (first call of the compiled function, forward + backward)", "",
              "| loss | N | compiled generated | compiled built-in |", "|---|---|---|---|"]
    for r in results:
        if r.compile_s:
            lines.append(f"| {r.case} | {r.n:.0e} | {fmt_time(r.compile_s.get('compiled generated'))} | "
                         f"{fmt_time(r.compile_s.get('compiled builtin'))} |")
    lines += ["", "### Memory saved for backward (MiB)", "",
              "Bytes of the distinct storages that autograd saves between forward and backward "
              "(`torch.autograd.graph.saved_tensors_hooks`; the inputs themselves count when saved).  The generated "
              "module saves its inputs (for double backward; the caller's own tensors, no new memory) and the "
              "gradient its forward computed, one array per trained input: that array is its extra memory "
              "against a built-in that saves only its inputs and computes the gradient in backward.", "",
              "| loss | N | generated | built-in | distributions | compiled generated | compiled built-in |",
              "|---|---|---|---|---|---|---|"]
    for r in results:
        m = r.memory
        lines.append(f"| {r.case} | {r.n:.0e} | {_mib(m.get('generated'))} | {_mib(m.get('builtin'))} | "
                     f"{_mib(m.get('distributions'))} | {_mib(m.get('compiled generated'))} | "
                     f"{_mib(m.get('compiled builtin'))} |")
    if any(v is not None for r in results for v in r.peak.values()):
        lines += ["", "### Peak CUDA memory of one forward + backward (MiB)", "",
                  "`torch.cuda.max_memory_allocated` during one step, above what was allocated before it.", "",
                  "| loss | N | generated | built-in | distributions | compiled generated | compiled built-in |",
                  "|---|---|---|---|---|---|---|"]
        for r in results:
            p = r.peak
            lines.append(f"| {r.case} | {r.n:.0e} | {_mib(p.get('generated'))} | {_mib(p.get('builtin'))} | "
                         f"{_mib(p.get('distributions'))} | {_mib(p.get('compiled generated'))} | "
                         f"{_mib(p.get('compiled builtin'))} |")
    lines += ["", "### Misses", ""]
    if misses:
        lines += [f"* {c} (N={n:.0e}): {w}" for c, n, w in misses]
        lines += ["", WHY]
        prof_cases = []
        for c, n, w in misses:
            if w == "eager vs built-in" and c not in prof_cases:
                prof_cases.append(c)
        for c in prof_cases[:3]:
            n = cfg.ns[0]
            lines += [f"Profile, {c}, N={n:.0e}, generated (top ops by self CPU time):", "", "```"]
            try:
                lines.append(S.profile_top(c, n, "generated"))
                lines += ["```", "", f"Built-in ({by[c].builtin_name}):", "", "```", S.profile_top(c, n, "builtin")]
            except Exception as exc:  # noqa: BLE001
                lines.append(f"profile failed: {exc}")
            lines += ["```", ""]
    else:
        lines.append("None.")
    return lines


def _numpy_section(cfg: Config, log) -> list[str]:
    from . import speed_numpy as SN

    res = SN.run(cfg.numpy_n, cfg.numpy_repeats, log=lambda m: log(m))
    lines = ["", "## NumPy", "",
             "The generated module's `loss` (value) and `value_and_grad`, a straightforward hand-written NumPy "
             "version, and −scipy.stats.<dist>.logpdf (value only, the full −log p).", "",
             "| loss | N | generated value | hand value | scipy value | generated value+grad | hand value+grad | "
             "gen / hand (value) | scipy / gen (value) | gen / hand (value+grad) | agreement with hand |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res:
        t = r.times
        lines.append(f"| {r.case} | {r.n:.0e} | {fmt_time(t.get('generated value'))} | {fmt_time(t.get('hand value'))} | "
                     f"{fmt_time(t.get('scipy value'))} | {fmt_time(t.get('generated value+grad'))} | "
                     f"{fmt_time(t.get('hand value+grad'))} | {fmt_ratio(t.get('generated value'), t.get('hand value'))} | "
                     f"{fmt_ratio(t.get('scipy value'), t.get('generated value'))} | "
                     f"{fmt_ratio(t.get('generated value+grad'), t.get('hand value+grad'))} | {r.check or '—'} |")
    notes = [f"* {r.case}: {n}" for r in res for n in r.notes]
    if notes:
        lines += ["", "Notes:", ""] + notes
    return lines


def _symbolic_section(cfg: Config, log) -> list[str]:
    from . import symbolic as SY

    rows = SY.catalog_costs(log=lambda m: log(m))
    tot = {k: sum(getattr(r, k) or 0 for r in rows) for k in ("derive_s", "analyze_s", "generate_s")}
    lines = ["", "## Symbolic side", "",
             f"Whole catalog ({len(rows)} entries), each derived, analysed (`symloss.analyze`) and generated "
             "(NumPy and PyTorch source) in one process:", "",
             "| stage | total |", "|---|---|",
             f"| derive | {tot['derive_s']:.1f} s |", f"| analyse | {tot['analyze_s']:.1f} s |",
             f"| generate (both targets) | {tot['generate_s']:.1f} s |",
             f"| all | {sum(tot.values()):.1f} s |", "",
             "Slowest five (derive + analyse + generate):", "",
             "| loss | derive | analyse | generate | total |", "|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: -r.total)[:5]:
        lines.append(f"| `{r.name}` | {fmt_time(r.derive_s)} | {fmt_time(r.analyze_s)} | {fmt_time(r.generate_s)} | "
                     f"{fmt_time(r.total)} |")
    notes = [f"* `{r.name}`: {r.note}" for r in rows if r.note]
    if notes:
        lines += ["", "Not generated / failed:", ""] + notes
    reps = 2 if cfg.quick else 3
    cold = SY.cold_starts(reps, log=lambda m: log(m))
    lines += ["", f"Cold start, whole process (a fresh interpreter, median of {reps}); target ≤ 3 s:", "",
              "| command | median | runs | target |", "|---|---|---|---|"]
    for c in cold:
        ok = None if c.median is None or c.rc != 0 else c.median <= 3.0
        err = f" (exit {c.rc}: {c.error})" if c.rc else ""
        lines.append(f"| `{c.command}` | {fmt_time(c.median)}{err} | "
                     f"{', '.join(f'{x:.2f}' for x in c.times)} | {_pf(ok)} |")
    return lines
