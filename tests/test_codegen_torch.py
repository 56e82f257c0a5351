"""The PyTorch modules: the closed-form backward (gradcheck, double backward), the nn.Module, torch.compile,
devices, and a training loop that fits a Poisson regression with a generated loss."""

from __future__ import annotations

import pytest
import torch
from test_codegen_support import KEYS, loss_for, module_for, rel_err, sample_case


@pytest.mark.parametrize("key", KEYS)
def test_gradcheck_and_gradgradcheck(key):
    """The backward is the closed-form gradient, and it is itself differentiable (double backward)."""
    loss = loss_for(key)
    mod = module_for(key, "torch")
    inputs, constants, y = sample_case(loss, n=3, seed=5)
    trained = [i for i, n in enumerate(mod.PARAMS) if n in mod.WRT]
    base = [inputs[n] for n in mod.PARAMS]
    weight = torch.rand(3, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) + 0.5

    def call(*xs, reduction="sum", with_weight=False):
        args = list(base)
        for i, x in zip(trained, xs[: len(trained)]):
            args[i] = x
        w = xs[-1] if with_weight else None
        return mod.loss(*args, y, reduction=reduction, weight=w, **constants)

    xs = tuple(base[i].clone().requires_grad_(True) for i in trained)
    assert torch.autograd.gradcheck(call, xs)
    assert torch.autograd.gradgradcheck(call, xs)
    w = weight.clone().requires_grad_(True)
    for reduction in ("mean", "none"):

        def weighted(*a, reduction=reduction):
            return call(*a, reduction=reduction, with_weight=True)

        assert torch.autograd.gradcheck(weighted, (*xs, w))
        assert torch.autograd.gradgradcheck(weighted, (*xs, w))


def test_hessian_of_the_closed_form_equals_the_reference_hessian():
    """Double backward through the generated backward equals autograd's Hessian of −log p."""
    mod = module_for("studentt", "torch")
    df, loc, s = torch.tensor([3.0]), torch.tensor([0.2]), torch.tensor([-0.4])
    y = torch.tensor([1.3])
    args = tuple(t.double().squeeze() for t in (df, loc, s))

    def ours(*a):
        return mod.loss(*a, y.double().squeeze(), reduction="sum")

    def ref(d, m, ls):
        return -torch.distributions.StudentT(d, m, torch.exp(ls)).log_prob(y.double().squeeze())

    h1 = torch.autograd.functional.hessian(ours, args)
    h2 = torch.autograd.functional.hessian(ref, args)
    for r1, r2 in zip(h1, h2):
        for a, b in zip(r1, r2):
            assert rel_err(a, b) < 1e-10


def test_nn_module_has_the_options_of_torch_losses():
    mod = module_for("poisson", "torch")
    crit = mod.Module(reduction="sum")
    assert isinstance(crit, torch.nn.Module) and "reduction='sum'" in repr(crit)
    z = torch.randn(5, dtype=torch.float64, requires_grad=True)
    y = torch.poisson(torch.full((5,), 2.0, dtype=torch.float64))
    out = crit(z, y)
    ref = torch.nn.PoissonNLLLoss(log_input=True, full=False, reduction="sum")(z, y)
    assert rel_err(out, ref) < 1e-12
    w = torch.rand(5, dtype=torch.float64)
    assert rel_err(crit(z, y, weight=w), mod.loss(z, y, reduction="sum", weight=w)) < 1e-15
    full = mod.Module(full=True)(z, y)
    assert rel_err(full, -torch.distributions.Poisson(torch.exp(z)).log_prob(y).mean()) < 1e-12
    with pytest.raises(ValueError, match="reduction"):
        mod.Module(reduction="batchmean")
    pinball = module_for("pinball", "torch")
    crit = pinball.Module(quantile=0.25)
    u, t = torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    assert rel_err(crit(u, t), pinball.loss(u, t, quantile=0.25)) < 1e-15
    with pytest.raises(TypeError):
        pinball.Module()


def test_no_silent_zero_gradient_for_the_target_or_untrained_inputs():
    mod = module_for("mse", "torch")
    x, y = torch.randn(3, requires_grad=True), torch.randn(3, requires_grad=True)
    with pytest.raises(ValueError, match="target requires grad"):
        mod.loss(x, y)
    binomial = module_for("binomial", "torch")
    n = torch.full((3,), 5.0, requires_grad=True)
    with pytest.raises(ValueError, match="total_count requires grad"):
        binomial.loss(n, torch.zeros(3, requires_grad=True), torch.ones(3))


def test_value_and_grad_needs_no_autograd_and_matches_backward():
    mod = module_for("gamma", "torch")
    loss = loss_for("gamma")
    inputs, _, y = sample_case(loss, seed=12)
    value, grads = mod.value_and_grad(*[inputs[n] for n in mod.PARAMS], y, reduction="mean")
    xs = [inputs[n].clone().requires_grad_(True) for n in mod.PARAMS]
    out = mod.loss(*xs, y)
    assert rel_err(value, out) < 1e-14
    for g, r in zip(grads, torch.autograd.grad(out, xs)):
        assert rel_err(g, r) < 1e-14
    assert not value.requires_grad


def _compile_or_skip(fn):
    try:
        compiled = torch.compile(fn, fullgraph=True)
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"torch.compile is unavailable here: {exc}")
    return compiled


@pytest.mark.slow
@pytest.mark.parametrize("key", ["poisson", "categorical"])
def test_torch_compile_fullgraph_matches_eager(key):
    """No graph breaks (fullgraph=True) in the forward and in the closed-form backward."""
    mod = module_for(key, "torch")
    g = torch.Generator().manual_seed(4)
    if key == "poisson":
        x = torch.randn(16, generator=g, dtype=torch.float64)
        y = torch.poisson(torch.full((16,), 3.0, dtype=torch.float64), generator=g)
    else:
        x = torch.randn(8, 5, generator=g, dtype=torch.float64)
        y = torch.randint(0, 5, (8,), generator=g)
    compiled = _compile_or_skip(mod.loss)
    xc, xe = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    try:
        out_c = compiled(xc, y)
        (g_c,) = torch.autograd.grad(out_c, xc)
    except Exception as exc:  # a missing C compiler shows up only when inductor builds the kernel
        if "graph break" in str(exc).lower() or "Unsupported" in type(exc).__name__:
            raise
        pytest.skip(f"torch.compile cannot build kernels here: {type(exc).__name__}: {exc}")
    out_e = mod.loss(xe, y)
    (g_e,) = torch.autograd.grad(out_e, xe)
    assert rel_err(out_c, out_e) < 1e-12 and rel_err(g_c, g_e) < 1e-12


def test_training_loop_recovers_poisson_regression_coefficients():
    """Fit log λ = X·w + b by gradient descent with the generated loss: the true coefficients come back."""
    mod = module_for("poisson", "torch")
    g = torch.Generator().manual_seed(0)
    n, d = 4000, 3
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    w_true = torch.tensor([0.5, -0.3, 0.8], dtype=torch.float64)
    b_true = 0.7
    y = torch.poisson(torch.exp(X @ w_true + b_true), generator=g)
    model = torch.nn.Linear(d, 1, dtype=torch.float64)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    criterion = mod.Module()
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = criterion(model(X).squeeze(-1), y)
        value.backward()
        return value

    for _ in range(3):
        opt.step(closure)
    assert torch.allclose(model.weight.detach().squeeze(), w_true, atol=0.05)
    assert abs(model.bias.item() - b_true) < 0.05
    # the optimum of the generated loss is the maximum-likelihood estimate: the score (nearly) vanishes there
    assert model.weight.grad.abs().max() < 1e-3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_dtype_and_device_follow_the_inputs_on_cuda():  # pragma: no cover - needs a GPU
    mod = module_for("categorical", "torch")
    z = torch.randn(6, 4, device="cuda", dtype=torch.float32, requires_grad=True)
    y = torch.randint(0, 4, (6,), device="cuda")
    out = mod.loss(z, y)
    (g,) = torch.autograd.grad(out, z)
    assert out.device.type == "cuda" and out.dtype == torch.float32 and g.device.type == "cuda"
    ref = torch.nn.functional.cross_entropy(z, y)
    assert torch.allclose(out, ref, rtol=1e-5)


def test_piecewise_branches_are_guarded_so_double_backward_has_no_nan():
    """ℓ = log u for u > 1, u − 1 otherwise: at u = 0 the unused log branch would make NaN second derivatives."""
    import sympy as sp
    from test_codegen import piecewise_loss

    loss = piecewise_loss(
        "log_or_linear",
        lambda u, y: sp.Piecewise((sp.log(u), u > 1), (u - 1, True)) - y * u,
        lambda u, y: sp.Piecewise((1 / u, u > 1), (1, True)) - y,
    )
    import re

    from symloss.codegen import generate, load

    # the inner where of the double where: the log branch sees 2 wherever loc ≤ 1
    assert re.search(r"torch\.where\((_t\d+|\(loc > 1\)), loc, 2\)", generate(loss, "torch"))
    mod = load(loss, "torch")
    u = torch.tensor([0.0, 0.5, 3.0], dtype=torch.float64, requires_grad=True)
    y = torch.zeros(3, dtype=torch.float64)
    out = mod.loss(u, y, reduction="sum")
    (g,) = torch.autograd.grad(out, u, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), u)
    assert g.tolist() == [1.0, 1.0, 1 / 3] and torch.isfinite(h).all() and h.tolist() == [0.0, 0.0, -1 / 9]
    unguarded = torch.where(u > 1, 1 / u, torch.ones_like(u))
    (h_naive,) = torch.autograd.grad(unguarded.sum(), u)
    assert torch.isnan(h_naive).any()  # what the guard prevents
