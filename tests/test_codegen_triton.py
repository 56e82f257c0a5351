"""The Triton target: fused kernels checked through Triton's CPU interpreter (TRITON_INTERPRET=1), or on the
GPU when the session has one (tests/conftest.py leaves the interpreter off where /dev/nvidiactl exists).

On every elementwise catalog entry: values against torch.distributions / scipy (reference_nll, which symloss
did not produce) and gradients against autograd of that reference, on random points; then the edges (logits
of ±1e4, scales e^±40, rates near 0, targets on the support's edges) against the torch target, which
tests/test_codegen_edges.py checks against mpmath and the torch built-ins: finite where it is finite, and
equal.  Also the call contract (reductions, weights and their gradient, broadcasting of scalar
parameters, float32, autograd with an arbitrary incoming gradient) and reproducibility.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest
import torch

pytest.importorskip("triton", reason="triton is not installed (pip install triton; Linux x86-64 only)")

from test_codegen_edges import exact  # noqa: E402
from test_codegen_support import KEYS, loss_for, module_for, reference_nll, rel_err, sample_case  # noqa: E402

from symloss.codegen import generate, load  # noqa: E402
from symloss.errors import UnsupportedError  # noqa: E402

#: where the kernels run: the GPU when there is one and the interpreter is off, else the CPU (interpreter)
DEVICE = "cuda" if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1" else "cpu"

ELEMENTWISE = [k for k in KEYS if loss_for(k).event != "vector"]
CLASS_AXIS = [k for k in KEYS if loss_for(k).event == "vector"]


@functools.cache
def triton_module(key: str):
    """The Triton module of a catalog entry (interpreted or compiled as tests/conftest.py chose)."""
    return load(loss_for(key), "triton")


def dev(x):
    """x on the kernels' device (the torch reference modules stay on the CPU)."""
    return x.to(DEVICE) if isinstance(x, torch.Tensor) else x


def call(mod, inputs: dict, constants: dict, y, **kw):
    """value_and_grad on the module's device, the results back on the CPU."""
    on = DEVICE if mod.__name__.startswith("symloss_generated_triton") else "cpu"
    move = (lambda x: x.to(on)) if on != "cpu" else (lambda x: x)
    value, grads = mod.value_and_grad(*(move(inputs[n]) for n in mod.PARAMS), move(y),
                                      **{k: move(v) for k, v in constants.items()}, **kw)
    return value.cpu(), tuple(g.cpu() for g in grads)


# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ELEMENTWISE)
def test_values_and_gradients_against_the_reference_distribution(key):
    loss = loss_for(key)
    mod = triton_module(key)
    inputs, constants, y = sample_case(loss, n=37, seed=3)
    value, grads = call(mod, inputs, constants, y, reduction="none", full=True)
    want = reference_nll(loss, inputs, constants, y)
    assert value.dtype == torch.float64 and value.shape == want.shape
    assert rel_err(value, want) < 1e-10, (key, value, want)
    # gradients of the summed reference NLL by autograd
    leaves = {n: v.clone().requires_grad_(n in mod.WRT) for n, v in inputs.items()}
    total = reference_nll(loss, leaves, constants, y).sum()
    want_grads = torch.autograd.grad(total, [leaves[n] for n in mod.WRT])
    for name, g, w in zip(mod.WRT, grads, want_grads):
        assert g.shape == inputs[name].shape
        assert rel_err(g, w) < 1e-8, (key, name, g, w)


def _edge_values(domain: str) -> list[float]:
    if domain == "real":
        return [-1e4, -700.0, -40.0, -1.5, 0.0, 0.3, 40.0, 700.0, 1e4]
    if domain == "positive":
        return [1e-300, 1e-30, 1e-8, 0.5, 3.0, 1e8, 1e30]
    if domain == "unit_interval":
        return [1e-300, 1e-12, 0.3, 1 - 1e-12]
    raise KeyError(domain)


def _edge_targets(loss) -> list[float]:
    support = loss.distribution.support
    return {
        "real": [-1e6, -2.0, 0.0, 0.7, 1e6],
        "positive": [1e-300, 1e-8, 0.5, 2.0, 1e8],
        "nonnegative": [0.0, 1e-8, 0.5, 2.0, 1e8],
        "unit_interval": [1e-300, 1e-9, 0.5, 1 - 1e-9],
        "unit_interval_closed": [0.0, 1e-9, 0.5, 1 - 1e-9, 1.0],
        "binary": [0.0, 1.0],
        "count": [0.0, 1.0, 7.0, 1e6],
        "integer": [-5.0, 0.0, 3.0],
        "positive_integer": [1.0, 2.0, 50.0],
    }.get(support, [0.0, 0.5, 1.0, 2.0])


_BASE = {"real": 0.3, "positive": 1.7, "unit_interval": 0.4}


def _edge_grid(key: str, dtype: torch.dtype):
    """Each input swept over its edge values, the others at a moderate point, against every edge target.

    One input at a time: two extremes at once (a concentration of e^-700 beside one of e^40, say) make the
    formula itself cancel catastrophically in every target, which is an accuracy question for
    tests/test_codegen_edges.py and benchmarks/accuracy.py, not a Triton one."""
    loss = loss_for(key)
    mod = module_for(key, "torch")
    domains = {str(s): loss.domains[s].name for s in loss.inputs}
    base = {n: (7.0 if n == "total_count" else _BASE[domains[n]]) for n in mod.PARAMS}
    rows = []
    for name in mod.PARAMS:
        values = [1.0, 12.0] if name == "total_count" else _edge_values(domains[name])
        if dtype == torch.float32:  # float32 overflows e^±88: keep log-scales within ±40
            values = [v for v in values if abs(v) <= (40.0 if "log" in name else 3e38) and (v == 0 or abs(v) > 1e-38)]
        for v in values:
            for t in _edge_targets(loss):
                rows.append([v if n == name else base[n] for n in mod.PARAMS] + [t])
    grid = np.array(rows, dtype=np.float64).T
    tensors = [torch.tensor(col, dtype=dtype) for col in grid]
    return dict(zip(mod.PARAMS, tensors[:-1])), tensors[-1]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("key", ELEMENTWISE)
def test_edges_match_the_torch_target(key, dtype):
    reference = module_for(key, "torch")
    mod = triton_module(key)
    inputs, y = _edge_grid(key, dtype)
    constants = {c: torch.tensor(0.3, dtype=dtype) for c in mod.CONSTANTS}
    with torch.no_grad():
        want, want_grads = call(reference, inputs, constants, y, reduction="none")
    got, grads = call(mod, inputs, constants, y, reduction="none")
    tol = 1e-11 if dtype == torch.float64 else 2e-5
    assert got.dtype == dtype
    for what, g, w in [("value", got, want), *zip(mod.WRT, grads, want_grads)]:
        finite = torch.isfinite(w)
        bad = finite & ~torch.isfinite(g)
        assert not bad.any(), f"{key} {what}: non-finite where the torch target is finite at {bad.nonzero()[:5]}"
        g64, w64 = g.double(), w.double()
        differ = finite & ((g64 - w64).abs() / (1 + w64.abs()) > tol)
        if differ.any():
            # where the two disagree, the exact value (mpmath, 60 digits) decides: Triton may not be worse
            index = differ.nonzero().flatten()[:25]
            at = {n: inputs[n][index].double().numpy() for n in mod.PARAMS}
            truth = torch.from_numpy(exact(loss_for(key), at, y[index].double().numpy(),
                                           None if what == "value" else what))
            err_triton = (g64[index] - truth).abs() / (1 + truth.abs())
            err_torch = (w64[index] - truth).abs() / (1 + truth.abs())
            worse = err_triton > torch.maximum(err_torch * 1.01, torch.full_like(err_torch, tol))
            assert not worse.any(), (key, what, index[worse], g64[index][worse], w64[index][worse], truth[worse])


# ---------------------------------------------------------------------------------------------------------
# the contract
def test_reductions_weights_and_the_weight_gradient():
    mod, ref = triton_module("normal"), module_for("normal", "torch")
    g = torch.Generator().manual_seed(1)
    loc, log_scale, y = (torch.randn(50, generator=g, dtype=torch.float64) for _ in range(3))
    weight = torch.rand(50, generator=g, dtype=torch.float64)
    for reduction in ["mean", "sum", "none"]:
        a = call(mod, {"loc": loc, "log_scale": log_scale}, {}, y, reduction=reduction, weight=dev(weight), full=True)
        b = ref.value_and_grad(loc, log_scale, y, reduction=reduction, weight=weight, full=True)
        assert rel_err(a[0], b[0]) < 1e-13
        for x, z in zip(a[1], b[1]):
            assert rel_err(x, z) < 1e-13
        # the weight's gradient through autograd, against the torch target's
        w1 = dev(weight.clone()).requires_grad_()
        w2 = weight.clone().requires_grad_()
        out1 = mod.loss(dev(loc), dev(log_scale), dev(y), reduction=reduction, weight=w1)
        out2 = ref.loss(loc, log_scale, y, reduction=reduction, weight=w2)
        seed = torch.randn(out1.shape, generator=g, dtype=torch.float64)
        (out1 * dev(seed)).sum().backward()
        (out2 * seed).sum().backward()
        assert rel_err(w1.grad.cpu(), w2.grad) < 1e-13


def test_scalar_and_broadcast_parameters_get_summed_gradients():
    mod, ref = triton_module("normal"), module_for("normal", "torch")
    g = torch.Generator().manual_seed(2)
    loc = torch.randn(4, 1, generator=g, dtype=torch.float64)
    log_scale = torch.tensor(0.2, dtype=torch.float64)  # one scale for all
    y = torch.randn(1, 6, generator=g, dtype=torch.float64)
    for reduction in ["mean", "sum"]:
        a = call(mod, {"loc": loc, "log_scale": log_scale}, {}, y, reduction=reduction)
        b = ref.value_and_grad(loc, log_scale, y, reduction=reduction)
        assert a[1][0].shape == (4, 1) and a[1][1].shape == ()
        assert rel_err(a[0], b[0]) < 1e-13 and all(rel_err(x, z) < 1e-12 for x, z in zip(a[1], b[1]))


def test_autograd_scales_the_saved_gradient_by_the_incoming_one():
    mod, ref = triton_module("poisson"), module_for("poisson", "torch")
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 5, generator=g, dtype=torch.float64)
    y = torch.poisson(torch.full((3, 5), 2.0, dtype=torch.float64), generator=g)
    for reduction in ["mean", "sum", "none"]:
        x1, x2 = dev(x.clone()).requires_grad_(), x.clone().requires_grad_()
        out1, out2 = mod.loss(x1, dev(y), reduction=reduction), ref.loss(x2, y, reduction=reduction)
        assert rel_err(out1.cpu(), out2) < 1e-14
        upstream = torch.randn(out1.shape, generator=g, dtype=torch.float64)
        out1.backward(dev(upstream))
        out2.backward(upstream)
        assert rel_err(x1.grad.cpu(), x2.grad) < 1e-14
    # gradcheck of the Function (first order; backward is once-differentiable)
    xs = dev(x.clone()).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: mod.loss(t, dev(y), reduction="sum"), (xs,), eps=1e-6, atol=1e-7)


def test_float32_stays_float32_and_matches_float64():
    mod = triton_module("gamma")
    inputs, constants, y = sample_case(loss_for("gamma"), n=100, seed=5)
    v64, g64 = call(mod, inputs, constants, y, reduction="mean")
    v32, g32 = call(mod, {k: v.float() for k, v in inputs.items()}, constants, y.float(), reduction="mean")
    assert v32.dtype == torch.float32 and all(g.dtype == torch.float32 for g in g32)
    assert rel_err(v32, v64) < 1e-5 and all(rel_err(a, b) < 1e-5 for a, b in zip(g32, g64))


def test_results_are_reproducible_bit_for_bit():
    mod = triton_module("bernoulli")
    g = torch.Generator().manual_seed(4)
    x = torch.randn(5000, generator=g)  # several blocks
    y = (torch.rand(5000, generator=g) < 0.5).float()
    a = call(mod, {"logits": x}, {}, y, reduction="mean")
    b = call(mod, {"logits": x}, {}, y, reduction="mean")
    assert a[0].item() == b[0].item() and torch.equal(a[1][0], b[1][0])
    want = torch.nn.functional.binary_cross_entropy_with_logits(x.double(), y.double())
    assert abs(a[0].item() - want.item()) < 1e-6 * abs(want.item())


def test_empty_inputs_follow_torch():
    mod = triton_module("normal")
    e = torch.empty(0, dtype=torch.float64, device=DEVICE)
    assert torch.isnan(mod.loss(e, e, e))
    assert mod.loss(e, e, e, reduction="sum").item() == 0.0
    assert mod.loss(e, e, e, reduction="none").shape == (0,)


@pytest.mark.skipif(DEVICE == "cuda" or not hasattr(torch, "float64"), reason="checked where the interpreter runs")
def test_cpu_tensors_without_the_interpreter_are_a_clear_error():
    old = os.environ.pop("TRITON_INTERPRET", None)
    try:
        mod = load(loss_for("normal"), "triton")
    finally:
        if old is not None:
            os.environ["TRITON_INTERPRET"] = old
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="CUDA tensors.*TRITON_INTERPRET=1"):
        mod.loss(x, x, x)


@pytest.mark.parametrize("key", CLASS_AXIS)
def test_class_axis_losses_are_declared_unsupported(key):
    with pytest.raises(UnsupportedError, match="class-axis loss.*torch target"):
        generate(loss_for(key), "triton")


def test_kernel_source_reads_each_input_once_and_uses_no_atomics():
    source = generate(loss_for("normal"), "triton")
    assert "tl.atomic" not in source
    assert source.count("tl.load(pointer + offsets") == 1  # one load site, called once per argument
    assert source.count("_load(_p_") == 4  # loc, log_scale, y and the weight
