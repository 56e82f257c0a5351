"""The torch target's in-place loss terms (symloss.codegen.inplace): the forward pass without autograd overwrites
the new tensors that nothing reads afterwards instead of allocating more.

What must hold: the in-place functions compute exactly what the plain ones compute (the same operations and
roundings: bit for bit, on the accuracy benchmark's extreme grid), they never write into an argument, the
module takes them only where that is safe (no autograd recording, data arguments of one shape), and a
temporary read after a line is never overwritten on it.  The plain functions themselves are checked against
references elsewhere (test_codegen_torch, test_catalog_likelihoods, test_accuracy_regression).
"""

from __future__ import annotations

import pytest
import torch
from test_codegen_support import ENTRIES, UNSUPPORTED, loss_for

from benchmarks import accuracy as A
from symloss.codegen import load
from symloss.codegen.inplace import FRESH_HELPERS, inplace_block

KEYS = [k for k in ENTRIES if k not in UNSUPPORTED]


def _module(key: str):
    return load(loss_for(key), "torch")


def _grid_args(key: str, limit: int = 150):
    loss = loss_for(key)
    problem = A.build_problem(loss, limit=limit)
    arrays = A._tensors(problem, "torch")
    names = [*loss.input_names, str(loss.target), *map(str, loss.constants)]
    return [arrays[n] for n in names]


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    a, b = torch.broadcast_tensors(a, b)
    return bool(torch.equal(torch.isnan(a), torch.isnan(b))) and bool(
        torch.equal(torch.nan_to_num(a, nan=0.0), torch.nan_to_num(b, nan=0.0)))


@pytest.mark.parametrize("key", KEYS)
def test_inplace_terms_equal_the_plain_terms_bit_for_bit(key):
    mod = _module(key)
    if not hasattr(mod, "_loss_terms_and_grads_inplace") and not hasattr(mod, "_loss_terms_inplace"):
        pytest.skip(f"{key}: no in-place forms (data per row and per class, or no dead temporaries)")
    args = _grid_args(key)
    before = [a.clone() for a in args]
    with torch.no_grad():
        if hasattr(mod, "_loss_terms_inplace"):
            assert _same(mod._loss_terms_inplace(*args), mod._loss_terms(*args))
        if hasattr(mod, "_loss_terms_and_grads_inplace"):
            value, grads = mod._loss_terms_and_grads_inplace(*args)
            value0, grads0 = mod._loss_terms_and_grads(*args)
            assert _same(value, value0)
            for g, g0 in zip(grads, grads0, strict=True):
                assert _same(g, g0)
    for a, b in zip(args, before, strict=True):  # no argument written
        assert torch.equal(torch.nan_to_num(a, nan=0.5), torch.nan_to_num(b, nan=0.5))


def test_the_module_takes_the_inplace_path_only_where_it_is_safe():
    mod = _module("bernoulli")
    x = torch.randn(6, dtype=torch.float64)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    assert mod._inplace_ok((x, y))
    assert not mod._inplace_ok((x[:1], y))  # broadcast: a temporary of the smaller shape cannot grow in place
    assert not mod._inplace_ok((x.requires_grad_(), y))  # autograd would record the overwrites
    with torch.no_grad():
        assert mod._inplace_ok((x, y))


def test_broadcast_and_double_backward_still_agree_with_autograd_of_a_reference():
    mod = _module("bernoulli")
    x = torch.randn(5, 1, dtype=torch.float64, requires_grad=True)
    y = (torch.rand(5, 3, dtype=torch.float64) > 0.5).double()
    out = mod.loss(x, y)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(x.expand(5, 3), y)
    assert torch.allclose(out, ref, rtol=1e-14, atol=0)
    (g,) = torch.autograd.grad(out, x, create_graph=True)
    (g_ref,) = torch.autograd.grad(ref, x, create_graph=True)
    assert torch.allclose(g, g_ref, rtol=1e-13, atol=1e-16)
    assert torch.autograd.gradcheck(lambda t: mod.loss(t, y), (x,))
    assert torch.autograd.gradgradcheck(lambda t: mod.loss(t, y), (x,))


def test_inputs_are_not_written_by_loss_or_grad():
    mod = _module("gamma")
    args = _grid_args("gamma", limit=60)
    before = [a.clone() for a in args]
    mod.loss(*args[:2], args[2], reduction="none")
    mod.grad(*args[:2], args[2], reduction="sum")
    a = args[0].clone().requires_grad_()
    mod.loss(a, *args[1:2], args[2]).backward()
    for x, x0 in zip(args, before, strict=True):
        assert torch.equal(torch.nan_to_num(x, nan=0.5), torch.nan_to_num(x0, nan=0.5))


# -- the rewrite itself, on small blocks ---------------------------------------------------------------------
def _rewrite(assignments, outputs, data=("x", "y")):
    return inplace_block(assignments, outputs, data)


def test_a_temporary_read_later_is_not_overwritten():
    assignments, outputs = _rewrite([("_t0", "torch.exp(x)")], ["_t0 + y", "_t0*y"])
    assert outputs == ("_t0 + y", "_t0.mul_(y)")  # the first line reads _t0, the last may consume it


def test_a_temporary_read_twice_on_its_last_line_is_not_overwritten():
    assert _rewrite([("_t0", "torch.exp(x)")], ["torch.log(_t0) + _t0"]) == (
        (("_t0", "torch.exp(x)"),), ("torch.log(_t0).add_(_t0)",))


def test_arguments_and_aliases_are_never_written():
    assert _rewrite([], ["x*y"]) is None
    assert _rewrite([], ["-x"]) is None
    # a temporary passed on whole is held by two names: neither may be overwritten
    assert _rewrite([("_t0", "torch.exp(x)"), ("_t1", "_t0")], ["_t1*y", "_t0*x"]) is None


def test_masks_and_numbers_are_not_overwritten():
    # (x >= 0)*2.0 is of the default dtype, not the loss's: it must not receive a float64 result
    assert _rewrite([], ["((x >= 0)*2.0)*y"]) is None
    assert _rewrite([], ["torch.where(x >= 0, 1.0, 2.0)*y"]) is None


def test_exact_forms_only():
    # 2/r would round twice as r.reciprocal_().mul_(2): left alone; l − r = (−r) + l is exact
    assert _rewrite([], ["2/torch.exp(x)"]) is None
    assert _rewrite([], ["y - torch.exp(x)"])[1] == ("torch.exp(x).neg_().add_(y)",)
    assert _rewrite([("_t0", "torch.exp(x)")], ["y/_t0"])[1] == ("torch.div(y, _t0, out=_t0)",)


def test_fresh_helpers_return_new_tensors():
    """Every helper the rewrite takes as returning a new tensor does so, in every catalog module defining it."""
    import importlib.util
    import inspect
    import pathlib

    seen = set()
    for path in sorted(pathlib.Path(__file__).parent.parent.joinpath("generated", "torch").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"_inplace_check_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for name in FRESH_HELPERS & set(vars(mod)):
            fn = getattr(mod, name)
            params = list(inspect.signature(fn).parameters)
            x = torch.rand(7, dtype=torch.float64) * 20 + 0.5
            if params[0] == "parts":  # from the shared square parts, and any further arguments (u, k)
                v = torch.rand(7, dtype=torch.float64)
                parts = mod._square_parts(x - 10, v, torch.exp(v))
                more = tuple(x * (k + 1) for k in range(len(params) - 1))
                args, held = (parts, *more), [p for p in (*parts, *more) if isinstance(p, torch.Tensor)]
            else:
                args = tuple(x * (k + 1) for k in range(len(params)))
                held = list(args)
            out = fn(*args)
            assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.shape == x.shape, name
            assert all(out.untyped_storage().data_ptr() != t.untyped_storage().data_ptr() for t in held), name
            seen.add(name)
    assert seen, "no catalog module uses a helper the rewrite knows"


def test_helpers_compute_the_same_with_and_without_autograd():
    """The helpers that work in their own buffers where autograd records nothing (_series, the Student-t's
    half-step remainders, ...) give the differentiable form's values bit for bit, 1e-300 … 1e300."""
    import importlib.util
    import inspect
    import pathlib

    x = torch.cat([torch.logspace(-300, 300, 1201, dtype=torch.float64),
                   torch.rand(500, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 20])
    checked = set()
    for path in sorted(pathlib.Path(__file__).parent.parent.joinpath("generated", "torch").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"_inplace_grad_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        if not hasattr(mod, "_no_grad"):
            continue
        for name in sorted(FRESH_HELPERS & set(vars(mod))):
            fn = getattr(mod, name)
            if list(inspect.signature(fn).parameters) != ["x"] or name in checked:
                continue
            with torch.no_grad():
                fast = fn(x.clone())
            slow = fn(x.clone().requires_grad_()).detach()
            assert _same(fast, slow), name
            checked.add(name)
    assert {"_lgamma_half_rem", "_digamma_half_rem"} <= checked
