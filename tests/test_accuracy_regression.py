"""Accuracy regression: a small slice of the benchmarks' extreme grid for a few catalog losses.

Not timed.  Each generated module (float64, reduction="none") is compared with the exact loss and gradient
(mpmath, 50+ digits, see benchmarks/accuracy.py): where the truth is finite the output must be finite, and
within 64 ulps or 1e-12 relative.  A stability rewrite that breaks fails here.  The full table is
docs/accuracy.md (``python -m benchmarks``).
"""

from __future__ import annotations

import math

import pytest

pytest.importorskip("mpmath")
np = pytest.importorskip("numpy")

import symloss  # noqa: E402
from benchmarks import accuracy as A  # noqa: E402

ULPS = 64
REL = 1e-12
POINTS = 60

CASES = [
    pytest.param("bernoulli", {"link": "canonical"}, "torch", id="bernoulli-logits-torch"),
    pytest.param("bernoulli", {"link": "canonical"}, "numpy", id="bernoulli-logits-numpy"),
    pytest.param("poisson", {"link": "canonical"}, "torch", id="poisson-log-torch"),
    pytest.param("poisson", {"link": "canonical"}, "numpy", id="poisson-log-numpy"),
    pytest.param("normal", {"link": "canonical"}, "torch", id="normal-torch"),
    pytest.param("normal", {"link": "canonical"}, "numpy", id="normal-numpy"),
    pytest.param("gamma", {"link": "canonical"}, "torch", id="gamma-torch",
                 marks=pytest.mark.xfail(strict=False, reason=(
                     "value cancels at tiny concentration: 0.0 instead of -2.29e-15 at log_concentration=-69.08, "
                     "log_rate=1, y=1e-30, and 1.1e7 ulps (rel 1.3e-9) at log_concentration=-18.42, "
                     "log_rate=-69.08, y=1e-8 (lgamma(k) - k·log_rate - (k-1)·log y summed unfused: the fix "
                     "is lgamma(k) = lgamma(1 + k) − log k with −log k + log y added first, an ordering of the "
                     "sum that the printers do not keep)"))),
    pytest.param("gamma", {"link": "canonical"}, "numpy", id="gamma-numpy",
                 marks=pytest.mark.xfail(strict=False, reason=(
                     "value cancels at tiny concentration: 0.0 instead of -2.29e-15 at log_concentration=-69.08, "
                     "log_rate=1, y=1e-30, and 1.1e7 ulps (rel 1.3e-9) at log_concentration=-18.42, "
                     "log_rate=-69.08, y=1e-8 (lgamma(k) - k·log_rate - (k-1)·log y summed unfused)"))),
    pytest.param("categorical", {"link": "canonical"}, "torch", id="categorical-logits-torch",
                 marks=pytest.mark.xfail(strict=False, reason=(
                     "generated value logsumexp(z)·Σy − Σz·y loses the result to cancellation: 0 instead of "
                     "log(1 + 2e^-40) ≈ 8.5e-18 at logits [-40, -40, 0] (F.cross_entropy too), and 779 ulps at "
                     "logits [-1e4]*3.  The stable form Σ_k y_k·(logsumexp(z − L) − (z_k − L)), L = logsumexp(z), "
                     "needs a per-row logsumexp inside the class sum, which the class-axis check in "
                     "symloss/codegen/model.py (_Lowering._check) rejects as a nested sum"))),
    pytest.param("categorical", {"link": "canonical"}, "numpy", id="categorical-logits-numpy",
                 marks=pytest.mark.xfail(strict=False, reason="same as categorical-logits-torch")),
    pytest.param("AsymmetricLaplace", {"fixed": {"scale": 1, "quantile": None}, "name": "pinball"}, "torch",
                 id="pinball-torch",
                 marks=pytest.mark.xfail(strict=False, reason=(
                     "the value is exact since the abs_linear rule ((1 − q)·t above the target, −q·t below); "
                     "the gradient "
                     "−q + ½·sign(t) + ½ still cancels below the target: −1.000000005e-8 instead of −1e-8 at "
                     "quantile 1e-8 (needs a sign → Piecewise rule: 1 − q above, −q below)"))),
    pytest.param("AsymmetricLaplace", {"fixed": {"scale": 1, "quantile": None}, "name": "pinball"}, "numpy",
                 id="pinball-numpy", marks=pytest.mark.xfail(strict=False, reason="same as pinball-torch")),
    pytest.param("Normal", {"link": {"scale": "variance"}, "name": "gaussian_nll"}, "torch", id="gaussian-nll-torch",
                 marks=pytest.mark.xfail(strict=False, reason=(
                     "∂ℓ/∂var = 1/(2 var) − (r/var)²/2 is finite at var = 1e-300 since the square_ratio rule, but "
                     "cancels at var = 1e300 with r = 1e150: 0.0 instead of 4.5e-317 (a subnormal)"))),
    pytest.param("Normal", {"link": {"scale": "variance"}, "name": "gaussian_nll"}, "numpy", id="gaussian-nll-numpy",
                 marks=pytest.mark.xfail(strict=False, reason="same as gaussian-nll-torch")),
]


@pytest.mark.parametrize(("name", "options", "target"), CASES)
def test_generated_loss_accurate_on_extreme_grid(name, options, target):
    if target == "torch":
        pytest.importorskip("torch")
    loss = symloss.derive(name, **options)
    problem = A.build_problem(loss, POINTS)
    outputs = A.generated_outputs(problem, target)
    if isinstance(outputs, str):
        pytest.xfail(outputs)  # the module is not generated (yet): reported, not a stability regression
    truths = A.truths_for(problem, loss.expr, loss.gradient, list(loss.wrt_names))
    bad = []
    checked = 0
    for what, rows in truths.items():
        out = np.asarray(outputs[what], dtype=np.float64)
        out = out[:, None] if out.ndim == 1 else out
        for i, row in enumerate(rows):
            for c, t in enumerate(row):
                if t is None:
                    continue
                o = float(out[i, c if out.shape[1] > 1 else 0])
                checked += 1
                if not math.isfinite(o):
                    bad.append((what, problem.points[i], c, o, t, "non-finite"))
                    continue
                u = A.ulps(o, t)
                if u > ULPS and abs(o - t) > REL * abs(t):
                    bad.append((what, problem.points[i], c, o, t, f"{u:.3g} ulps"))
    assert checked > 0
    assert not bad, f"{len(bad)} of {checked} outputs off: " + "; ".join(map(str, bad[:5]))
