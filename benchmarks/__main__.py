"""``python -m benchmarks [--quick] [--n N ...] [--out DIR]``: speed, memory and accuracy reports.

Writes ``<out>/benchmarks.md`` (``benchmarks-cuda.md`` when PyTorch sees a CUDA device) and
``<out>/accuracy.md`` (default ``docs/``).  A full run takes a few
minutes on a 2-core CPU; ``--quick`` uses smaller sizes and fewer repeats.  Sections can be skipped
(``--skip speed,numpy,symbolic,accuracy``); a skipped section is listed as such in the report, and when
speed, numpy and symbolic are all skipped ``benchmarks.md`` is not written at all, and with ``--skip accuracy``
``accuracy.md`` is not (an existing one is kept).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from . import report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few repeats (a smoke run)")
    ap.add_argument("--n", type=float, action="append", default=None,
                    help="PyTorch sizes (elements), repeatable; default 1e6 and 1e7 (--quick: 1e5 and 1e6)")
    ap.add_argument("--numpy-n", type=float, default=None, help="NumPy size (default 1e6; --quick 1e5)")
    ap.add_argument("--repeats", type=int, default=None, help="repeats at the smallest N (default 15; --quick 3)")
    ap.add_argument("--compile-all", action="store_true",
                    help="torch.compile at every N (default: at the smallest N only, compiling is ~10 s a function)")
    ap.add_argument("--grid", type=int, default=None, help="accuracy grid points per loss (default 400; --quick 120)")
    ap.add_argument("--out", default="docs", help="directory for benchmarks.md and accuracy.md (default docs/)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads for the PyTorch section (default: torch's own choice)")
    ap.add_argument("--skip", default="", help="comma-separated sections to skip: speed,numpy,symbolic,accuracy")
    ap.add_argument("--only", default="",
                    help="accuracy: comma-separated catalog loss names (e.g. cauchy_log_scale); default all. "
                         "Use it with --out elsewhere: a partial accuracy.md must not replace the full one")
    args = ap.parse_args(argv)

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    ns = [int(x) for x in (args.n or ([1e5, 1e6] if args.quick else [1e6, 1e7]))]
    ns = sorted(set(ns))
    # 15 at 1e6: the compiled rows (1–7 ms a step) moved by 2× between runs with 7
    base_reps = args.repeats or (3 if args.quick else 15)
    repeats = {n: max(base_reps if n == ns[0] else base_reps // 2 - (1 if n >= 10**7 else 0), 2) for n in ns}
    cfg = report.Config(
        ns=ns,
        repeats=repeats,
        compile_ns=set(ns) if args.compile_all else {ns[0]},
        numpy_n=int(args.numpy_n or (1e5 if args.quick else 1e6)),
        numpy_repeats=base_reps,
        grid=args.grid or (120 if args.quick else 400),
        skip={s.strip() for s in args.skip.split(",") if s.strip()},
        quick=args.quick,
        only={s.strip() for s in args.only.split(",") if s.strip()},
        command="python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:]),
    )
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", flush=True)

    if "accuracy" in cfg.skip:
        # nothing measured: keep the existing accuracy.md rather than overwrite it with a "skipped" page
        log(f"accuracy skipped: {os.path.join(args.out, 'accuracy.md')} left as it is")
    else:
        acc_md = report.accuracy_report(cfg, log)
        with open(os.path.join(args.out, "accuracy.md"), "w", encoding="utf-8") as fh:
            fh.write(acc_md)
        log(f"wrote {os.path.join(args.out, 'accuracy.md')}")
    if {"speed", "numpy", "symbolic"} <= cfg.skip:
        # nothing measured: keep the existing benchmarks.md rather than overwrite it with an empty report
        log(f"speed, numpy and symbolic skipped: {os.path.join(args.out, 'benchmarks.md')} left as it is")
        return 0
    bench_md = report.benchmark_report(cfg, log, started=t0)
    # a run on a CUDA machine has its own report, so that the CPU one (benchmarks.md) is not replaced
    name = "benchmarks-cuda.md" if _on_cuda() and "speed" not in cfg.skip else "benchmarks.md"
    with open(os.path.join(args.out, name), "w", encoding="utf-8") as fh:
        fh.write(bench_md)
    log(f"wrote {os.path.join(args.out, name)} (total {time.perf_counter() - t0:.0f} s)")
    return 0


def _on_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        return False


if __name__ == "__main__":
    sys.exit(main())
