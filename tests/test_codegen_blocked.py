"""The torch target's blocked forward (_forward_blocked): an unweighted mean or sum over many observations is
evaluated a block of _BLOCK observations at a time, so that the temporaries stay in the cache instead of being
fresh whole-array memory.

What must hold: every element sees the same operations as in the unblocked forward (the gradients are bit for
bit the same, on the accuracy benchmark's extreme grid), the value is the same sum to the rounding of a sum,
the blocked path runs exactly where it is safe (weights, reduction="none", autograd recording, broadcasting,
non-contiguous inputs and small N all fall back), and the loss through it agrees with torch's own losses.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_codegen_support import ENTRIES, UNSUPPORTED, loss_for

from benchmarks import accuracy as A
from symloss.codegen import load

KEYS = [k for k in ENTRIES if k not in UNSUPPORTED]


def _module(key: str):
    return load(loss_for(key), "torch")


def _tiled_args(key: str, n: int):
    """(inputs and target, constants): the accuracy grid's points for key, repeated to n observations."""
    loss = loss_for(key)
    problem = A.build_problem(loss, limit=150)
    arrays = A._tensors(problem, "torch")
    data = [*loss.input_names, str(loss.target)]
    full = torch.broadcast_tensors(*(arrays[k] for k in [*data, *map(str, loss.constants)]))
    tiled = [d.reshape(-1).repeat(-(-n // d.numel()))[:n].clone() for d in full]
    return tiled[:len(data)], tiled[len(data):]


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(torch.equal(torch.isnan(a), torch.isnan(b))) and bool(
        torch.equal(torch.nan_to_num(a, nan=0.0), torch.nan_to_num(b, nan=0.0)))


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_blocked_forward_matches_the_whole_array_forward(key, reduction, monkeypatch):
    mod = _module(key)
    if not hasattr(mod, "_forward_blocked"):
        assert hasattr(mod, "_VECTOR")
        pytest.skip(f"{key}: losses with a class axis are not blocked (their row reductions cost more per block)")
    monkeypatch.setattr(mod, "_BLOCK", 97)  # small blocks, and a last one that is partial
    inputs, constants = _tiled_args(key, 3 * 97 + 41)
    args, _ = mod._prepare(tuple(inputs[:-1]), inputs[-1], None, tuple(constants))
    needs = (*(i in mod._WRT_INDEX for i in range(len(mod.PARAMS))), False)
    assert mod._blocked_ok(args, None, reduction, needs)
    for full in (False, True):
        value, grads = mod._forward_blocked(args, reduction, full, needs)
        monkeypatch.setattr(mod, "_BLOCK", 10**9)
        assert not mod._blocked_ok(args, None, reduction, needs)
        value0, grads0 = mod._forward(args, None, reduction, full, needs)
        monkeypatch.setattr(mod, "_BLOCK", 97)
        for i in mod._WRT_INDEX:
            assert _same(grads[i], grads0[i]), (key, mod.PARAMS[i])
        per_obs = mod._forward(args, None, "none", full, (False,) * len(needs))[0]
        assert per_obs.numel() == 3 * 97 + 41
        scale = per_obs.abs().sum() / (per_obs.numel() if reduction == "mean" else 1)
        if torch.isfinite(value0):
            assert abs(value - value0) <= 1e-13 * scale, (key, value, value0)
        else:
            assert _same(value, value0)
        # the value-only forward (no gradient needed) is blocked too
        assert _same(mod._forward_blocked(args, reduction, full, (False,) * len(needs))[0], value)


def test_blocked_path_runs_only_where_it_is_safe(monkeypatch):
    mod = _module("bernoulli")
    monkeypatch.setattr(mod, "_BLOCK", 8)
    x = torch.randn(100, dtype=torch.float64)
    y = torch.bernoulli(torch.full((100,), 0.5, dtype=torch.float64))
    needs = (True, False)
    args, _ = mod._prepare((x,), y, None, ())
    assert mod._blocked_ok(args, None, "mean", needs)
    assert mod._blocked_ok(args, None, "sum", needs)
    assert not mod._blocked_ok(args, None, "none", needs)
    assert not mod._blocked_ok(args, torch.ones(100, dtype=torch.float64), "mean", needs)
    assert not mod._blocked_ok((x[:16], y[:16]), None, "mean", needs)  # two blocks or fewer
    assert not mod._blocked_ok((x[::2], y[::2]), None, "mean", needs)  # not contiguous
    assert not mod._blocked_ok((x[:1].expand(100), y), None, "mean", needs)  # broadcast
    xg = x.clone().requires_grad_()
    assert not mod._blocked_ok((xg, y), None, "mean", needs)  # autograd would record the ops
    with torch.no_grad():
        assert mod._blocked_ok((xg, y), None, "mean", needs)


def test_blocked_loss_against_torch_builtins():
    """The real block size, several blocks and a partial one, float32 as in training."""
    n = 3 * (1 << 18) + 12345
    g = torch.Generator().manual_seed(3)
    logits = (torch.randn(n, generator=g, dtype=torch.float32) * 4).requires_grad_()
    y = torch.bernoulli(torch.full((n,), 0.3, dtype=torch.float32), generator=g)
    mod = _module("bernoulli")
    assert mod._blocked_ok(*mod._prepare((logits.detach(),), y, None, ()), "mean", (True, False))
    ours = mod.loss(logits, y)
    (g_ours,) = torch.autograd.grad(ours, logits)
    ref = F.binary_cross_entropy_with_logits(logits.double(), y.double())
    (g_ref,) = torch.autograd.grad(ref, logits)
    assert ours.dtype == torch.float32
    assert abs(ours.double() - ref).item() <= 1e-6 * ref.item()
    torch.testing.assert_close(g_ours, g_ref.float(), rtol=1e-5, atol=1e-12)

    log_rate = torch.randn(n, generator=g, dtype=torch.float32).requires_grad_()
    counts = torch.poisson(torch.full((n,), 3.0, dtype=torch.float32), generator=g)
    pois = _module("poisson")
    ours = pois.loss(log_rate, counts, reduction="sum", full=True)
    ref = -torch.distributions.Poisson(log_rate.double().exp()).log_prob(counts.double()).sum()
    assert abs(ours.double() - ref).item() <= 1e-5 * ref.abs().item()
    (g_ours,) = torch.autograd.grad(ours, log_rate)
    (g_ref,) = torch.autograd.grad(ref, log_rate)
    torch.testing.assert_close(g_ours, g_ref.float(), rtol=1e-5, atol=1e-5)


def test_blocked_forward_with_a_constant_and_double_backward(monkeypatch):
    """pinball's quantile τ is a constant (a number): the blocks take it whole; the backward of the backward
    (create_graph) evaluates the closed-form gradient again, unblocked, and gradgradcheck holds."""
    mod = _module("pinball")
    monkeypatch.setattr(mod, "_BLOCK", 5)
    g = torch.Generator().manual_seed(0)
    loc = torch.randn(23, dtype=torch.float64, generator=g)
    y = torch.randn(23, dtype=torch.float64, generator=g)
    args, _ = mod._prepare((loc,), y, None, (0.3,))
    assert mod._blocked_ok(args, None, "mean", (True, False))
    r = y - loc
    ref = torch.where(r >= 0, 0.3 * r, (0.3 - 1) * r).mean()
    got = mod.loss(loc, y, quantile=0.3)
    torch.testing.assert_close(got, ref, rtol=1e-15, atol=0)
    mod_b = _module("bernoulli")
    monkeypatch.setattr(mod_b, "_BLOCK", 4)
    x = torch.randn(19, dtype=torch.float64, generator=g).requires_grad_()
    t = torch.bernoulli(torch.full((19,), 0.5, dtype=torch.float64), generator=g)
    assert torch.autograd.gradcheck(lambda a: mod_b.loss(a, t), (x,))
    assert torch.autograd.gradgradcheck(lambda a: mod_b.loss(a, t), (x,))

