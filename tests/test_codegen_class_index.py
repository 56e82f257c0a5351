"""Class-index targets gathered rather than expanded to one-hot (symloss.codegen.class_index, torch target).

What must hold: with integer class indices the torch module reads the entry at the target's class (gather and
scatter) instead of building an N × K one-hot array, and gives exactly what the one-hot form gives (the same
operations on the same numbers), which itself is checked against torch.nn.functional.cross_entropy here and
against mpmath at the extremes; gradients pass gradcheck and gradgradcheck; inputs that do not have the losses'
shape (a row of logits broadcast over the batch) fall back to one-hot; the transformation declines what it
cannot gather.
"""

from __future__ import annotations

import pytest
import sympy as sp

torch = pytest.importorskip("torch")
mpmath = pytest.importorskip("mpmath")
F = torch.nn.functional

from test_codegen_support import loss_for  # noqa: E402

from symloss.codegen import load  # noqa: E402
from symloss.codegen.class_index import class_index_forms  # noqa: E402
from symloss.codegen.printers import ClassGather, ClassLogSumExp, ClassScatter, ClassSum  # noqa: E402


@pytest.fixture(scope="module")
def mod():
    return load(loss_for("categorical"), "torch")


def _logits(dtype, rows=40, classes=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(rows, classes, generator=g, dtype=torch.float64) * 5
    # the extremes: logits of ±1e4, ±700, ±40, ties at the maximum, the target at and away from the maximum
    z[0] = torch.tensor([1e4, -1e4, 0, 0, 0, 0, 0, 0, 0])
    z[1] = torch.tensor([-1e4, 1e4, 700, -700, 40, -40, 0, 1, -1])
    z[2] = torch.tensor([40.0] * 9)
    z[3] = torch.tensor([700, 700, -700, 0, 0, 0, 0, 0, 0])
    idx = torch.randint(0, classes, (rows,), generator=g)
    idx[:4] = torch.tensor([0, 0, 3, 1])
    return z.to(dtype), idx


def test_the_module_has_class_index_forms(mod):
    assert hasattr(mod, "_loss_terms_and_grads_index") and hasattr(mod, "_loss_terms_and_grads_index_inplace")
    import inspect

    src = inspect.getsource(mod._loss_terms_and_grads_index_inplace) + inspect.getsource(mod._loss_terms_index)
    assert "torch.gather(logits, -1, y)" in src and "scatter_(-1, y" in src


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_indices_give_the_one_hot_result_bit_for_bit(mod, dtype, reduction):
    z, idx = _logits(dtype)
    onehot = F.one_hot(idx, z.shape[-1]).to(dtype)
    weight = torch.rand(z.shape[0], dtype=dtype)
    for w in (None, weight):
        v_i, (g_i,) = mod.value_and_grad(z, idx, reduction=reduction, weight=w)
        v_o, (g_o,) = mod.value_and_grad(z, onehot, reduction=reduction, weight=w)
        assert torch.equal(v_i, v_o) and torch.equal(g_i, g_o)
        # the autograd path (in-place forms off, the plain index forms on) too
        zi, zo = z.clone().requires_grad_(), z.clone().requires_grad_()
        li, lo = mod.loss(zi, idx, reduction=reduction, weight=w), mod.loss(zo, onehot, reduction=reduction, weight=w)
        li.sum().backward()
        lo.sum().backward()
        assert torch.equal(li.detach(), lo.detach()) and torch.equal(zi.grad, zo.grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_indices_agree_with_torch_cross_entropy(mod, dtype):
    z, idx = _logits(dtype)
    z = z[4:]  # torch's log_softmax is itself exact enough away from the extremes of the first rows
    idx = idx[4:]
    zi, zr = z.clone().requires_grad_(), z.clone().requires_grad_()
    li, lr = mod.loss(zi, idx, reduction="none"), F.cross_entropy(zr, idx, reduction="none")
    li.sum().backward()
    lr.sum().backward()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(li, lr, rtol=tol, atol=tol)
    torch.testing.assert_close(zi.grad, zr.grad, rtol=tol, atol=tol)


def test_indices_at_the_extremes_against_mpmath(mod):
    z, idx = _logits(torch.float64)
    value, (grad,) = mod.value_and_grad(z[:4], idx[:4], reduction="none")
    with mpmath.workdps(60):
        for r in range(4):
            row = [mpmath.mpf(float(x)) for x in z[r]]
            lse = mpmath.log(mpmath.fsum(mpmath.exp(x) for x in row))
            c = int(idx[r])
            want = float(lse - row[c])
            assert abs(float(value[r]) - want) <= 4 * 2.0**-52 * abs(want) or want == float(value[r])
            for k in range(len(row)):
                gk = float(mpmath.exp(row[k] - lse) - (1 if k == c else 0))
                assert abs(float(grad[r, k]) - gk) <= 4 * 2.0**-52 * abs(gk) + 1e-300


def test_indices_gradcheck_and_double_backward(mod):
    g = torch.Generator().manual_seed(3)
    z = torch.randn(5, 4, generator=g, dtype=torch.float64).requires_grad_()
    idx = torch.randint(0, 4, (5,), generator=g)
    assert torch.autograd.gradcheck(lambda x: mod.loss(x, idx), (z,))
    assert torch.autograd.gradgradcheck(lambda x: mod.loss(x, idx), (z,))
    w = torch.rand(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, ww: mod.loss(x, idx, weight=ww, reduction="sum"), (z, w))


def test_broadcast_logits_fall_back_to_one_hot(mod):
    z = torch.randn(1, 6, dtype=torch.float64)
    idx = torch.tensor([0, 5, 2])
    got = mod.loss(z, idx, reduction="none")
    torch.testing.assert_close(got, F.cross_entropy(z.expand(3, 6), idx, reduction="none"))
    v, (g,) = mod.value_and_grad(z, idx, reduction="sum")
    zr = z.clone().requires_grad_()
    F.cross_entropy(zr.expand(3, 6), idx, reduction="sum").backward()
    torch.testing.assert_close(g, zr.grad)


def test_indices_are_not_written_and_bad_indices_fail(mod):
    z, idx = _logits(torch.float64)
    z0, idx0 = z.clone(), idx.clone()
    mod.value_and_grad(z, idx)
    assert torch.equal(z, z0) and torch.equal(idx, idx0)
    with pytest.raises((RuntimeError, IndexError)):
        mod.loss(z, torch.full_like(idx, z.shape[-1]))


# -- the transformation itself, on lowered expressions
z, y, w = sp.symbols("z y w", real=True)
idx = y


def test_forms_general_class_sum_and_per_class_gradient():
    # Σ_k (y_k·z_k + w·z_k²) and a gradient z − y·w
    value = ClassSum(y * z + w * z**2)
    grad = z - y * w
    forms = class_index_forms(value, [grad], sp.S.Zero, y, frozenset({z}))
    assert forms is not None
    v, (g,), c = forms
    assert v.has(ClassGather) and v.has(ClassSum)  # Σ_k w z_k² stays a sum, y_k·z_k is gathered
    assert isinstance(g, ClassScatter) and g.args[0] == z and g.args[2] == y
    assert c == 0


def test_forms_decline_what_they_cannot_gather():
    # y inside a logsumexp over the classes, and y outside a class sum in the value
    assert class_index_forms(ClassLogSumExp(z * y), [z], sp.S.Zero, y, frozenset({z})) is None
    assert class_index_forms(ClassSum(z) + y, [z], sp.S.Zero, y, frozenset({z})) is None


@pytest.mark.parametrize("spread", [0.5, 3.0, 30.0])
def test_softmax_rest_accurate_on_both_paths(mod, spread):
    """_sum_below_one takes Σ e − 1 directly where it is ≥ 1 in every row and sums the terms below 1 apart
    otherwise: the value and gradient are accurate either way (mpmath), for rows of every kind together and
    apart."""
    g = torch.Generator().manual_seed(7)
    z = torch.randn(12, 6, generator=g, dtype=torch.float64) * spread
    idx = torch.randint(0, 6, (12,), generator=g)
    for rows in (slice(0, 12), slice(0, 6), slice(6, 12)):
        value, (grad,) = mod.value_and_grad(z[rows], idx[rows], reduction="none")
        with mpmath.workdps(60):
            for r, (zr, c) in enumerate(zip(z[rows].tolist(), idx[rows].tolist(), strict=True)):
                row = [mpmath.mpf(x) for x in zr]
                lse = mpmath.log(mpmath.fsum(mpmath.exp(x) for x in row))
                want = float(lse - row[c])
                assert abs(float(value[r]) - want) <= 8 * 2.0**-52 * abs(want)
                for k in range(6):
                    gk = float(mpmath.exp(row[k] - lse) - (1 if k == c else 0))
                    # exp(z_k − lse) has the condition number |z_k − lse| (the rounding of z_k − M is its own)
                    kappa = 1 + abs(zr[k]) + max(map(abs, zr))
                    assert abs(float(grad[r, k]) - gk) <= 8 * 2.0**-52 * kappa * abs(gk)
