"""Generated NumPy and PyTorch modules: the API, and values and gradients against references symloss did not
produce (torch.distributions with autograd, the torch built-in losses, scipy.stats, finite differences)."""

from __future__ import annotations

import argparse
import ast
import importlib.util
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_codegen_support import (
    KEYS,
    loss_for,
    model_for,
    module_for,
    reference_nll,
    rel_err,
    sample_case,
)

import symloss
from symloss.codegen import generate, load, template_dir, write
from symloss.codegen.cli import add_codegen_options, emit_from_args
from symloss.errors import FileExistsError_, InvalidIdentifierError, SymlossError, UnsupportedError

TARGETS = ("numpy", "torch")


def as_target(x, target):
    if target == "numpy":
        return x.detach().numpy() if isinstance(x, torch.Tensor) else x
    return x


def as_tensor(x) -> torch.Tensor:
    return torch.as_tensor(np.array(x)) if not isinstance(x, torch.Tensor) else x.detach()


# ---------------------------------------------------------------------------------------------------------
# the API
def test_generate_load_and_contract():
    loss = loss_for("normal")
    for target in TARGETS:
        source = generate(loss, target)
        assert source == generate(loss, target)  # deterministic, no timestamp
        mod = load(loss, target)
        assert mod.PARAMS == ("loc", "log_scale")
        assert mod.TARGET == "y"
        assert mod.WRT == ("loc", "log_scale")
        assert mod.CONSTANTS == ()
        assert mod.REDUCTIONS == ("mean", "sum", "none")
        assert callable(mod.loss) and callable(mod.grad) and callable(mod.value_and_grad)
        assert mod.__file__ == f"<symloss:{loss.name}:{target}>"
        assert "Normal" in mod.__doc__ and "log(2)/2 + log(pi)/2" in mod.__doc__
    torch_mod = module_for("normal", "torch")
    assert issubclass(torch_mod.Function, torch.autograd.Function)
    assert issubclass(torch_mod.Module, torch.nn.Module)
    assert torch_mod.Module.__name__ == "NormalLogScaleLoss"


@pytest.mark.parametrize("target", TARGETS)
def test_generated_modules_import_only_their_library_and_math(target):
    allowed = {"math", target}
    for key in ["normal", "beta", "categorical", "continuousbernoulli", "pinball"]:
        tree = ast.parse(generate(loss_for(key), target))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").split(".")[0])
        assert imported <= allowed, (key, imported)


def test_docstring_names_the_torch_builtin_and_the_dropped_constant():
    doc = module_for("poisson", "numpy").__doc__
    assert "torch.nn.functional.poisson_nll_loss(input=log_rate, target=y, log_input=True" in doc
    assert "loggamma(y + 1)" in doc or "log(gamma(y + 1))" in doc
    assert "sympy.stats.Poisson" in doc and "rate = exp(log_rate)" in doc
    assert "1/2 × torch.nn.functional.mse_loss" in module_for("mse", "torch").__doc__


def test_write_is_atomic_and_refuses_to_overwrite(tmp_path):
    loss = loss_for("poisson")
    path = tmp_path / "poisson_loss.py"
    assert write(loss, "numpy", path) == path
    with pytest.raises(FileExistsError_):
        write(loss, "numpy", path)
    write(loss, "torch", path, force=True)
    assert path.read_text(encoding="utf-8") == generate(loss, "torch")
    spec = importlib.util.spec_from_file_location("poisson_loss", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert float(mod.loss(torch.zeros(3), torch.zeros(3))) == 1.0


def test_unknown_target_and_unsupported_functions_raise_clear_errors():
    with pytest.raises(UnsupportedError, match="target"):
        generate(loss_for("poisson"), "mxnet")
    for key in ["vonmises", "skellam"]:
        with pytest.raises(UnsupportedError, match="not supported: .*besseli"):
            generate(loss_for(key), "torch")


def test_names_that_would_break_the_module_are_rejected():
    loss = symloss.derive("normal", fixed={"scale": "target"})
    with pytest.raises(InvalidIdentifierError, match="target"):
        generate(loss, "numpy")


def test_template_directory_prefers_the_installed_package(tmp_path, monkeypatch):
    assert (template_dir() / "numpy_module.py.j2").is_file()
    fake = tmp_path / "site" / "symloss"
    (fake / "templates").mkdir(parents=True)
    (fake / "templates" / "numpy_module.py.j2").write_text("x", encoding="utf-8")
    monkeypatch.setattr(symloss, "__file__", str(fake / "__init__.py"))
    assert template_dir() == (fake / "templates").resolve()
    monkeypatch.setattr(symloss, "__file__", str(tmp_path / "nowhere" / "symloss" / "__init__.py"))
    with pytest.raises(SymlossError, match="templates are missing"):
        template_dir()


def test_cli_options_print_or_write(tmp_path):
    parser = argparse.ArgumentParser()
    add_codegen_options(parser)
    loss = loss_for("poisson")
    args = parser.parse_args(["--target", "torch"])
    assert emit_from_args(loss, args) == generate(loss, "torch")
    out = tmp_path / "m.py"
    args = parser.parse_args(["--target", "numpy", "-o", str(out)])
    assert emit_from_args(loss, args) is None
    assert out.read_text(encoding="utf-8") == generate(loss, "numpy")
    with pytest.raises(FileExistsError_):
        emit_from_args(loss, args)
    assert emit_from_args(loss, parser.parse_args(["--target", "numpy", "-o", str(out), "--force"])) is None
    assert emit_from_args(loss, parser.parse_args([])) is None
    with pytest.raises(SymlossError, match="--target"):
        emit_from_args(loss, parser.parse_args(["-o", str(out)]))
    with pytest.raises(SystemExit):
        parser.parse_args(["--target", "mxnet"])


@pytest.mark.parametrize("target", TARGETS)
def test_invalid_reduction_is_a_clear_value_error(target):
    mod = module_for("mse", target)
    x = as_target(torch.zeros(3, dtype=torch.float64), target)
    with pytest.raises(ValueError, match="reduction must be one of"):
        mod.loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match="reduction must be one of"):
        mod.grad(x, x, reduction="elementwise_mean")


# ---------------------------------------------------------------------------------------------------------
# values and gradients against torch.distributions (float64, relative 1e-10)
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("key", KEYS)
def test_values_and_gradients_equal_the_reference_log_prob(key, target):
    loss = loss_for(key)
    mod = module_for(key, target)
    inputs, constants, y = sample_case(loss, seed=1)
    trained = {n: v.clone().requires_grad_(n in loss.wrt_names) for n, v in inputs.items()}
    nll = reference_nll(loss, trained, constants, y)
    ref_grads = torch.autograd.grad(nll.sum(), [trained[n] for n in mod.WRT])

    args = [as_target(inputs[n], target) for n in mod.PARAMS]
    kw = {k: as_target(v, target) for k, v in constants.items()}
    yy = as_target(y, target)
    full = mod.loss(*args, yy, reduction="none", full=True, **kw)
    assert rel_err(as_tensor(full), nll.detach()) < 1e-10
    # the training loss differs from −log p by the dropped constant only (same gradients)
    value, grads = mod.value_and_grad(*args, yy, reduction="sum", **kw)
    assert len(grads) == len(mod.WRT)
    for g, ref, name in zip(grads, ref_grads, mod.WRT):
        assert tuple(g.shape) == tuple(inputs[name].shape)
        assert rel_err(as_tensor(g), ref) < 1e-10, name
    value_full, _ = mod.value_and_grad(*args, yy, reduction="sum", full=True, **kw)
    assert rel_err(as_tensor(value_full), nll.sum().detach()) < 1e-10
    if target == "torch":  # the autograd.Function's backward gives the same gradients
        xs = [inputs[n].clone().requires_grad_(n in loss.wrt_names) for n in mod.PARAMS]
        out = mod.loss(*xs, y, reduction="sum", **constants)
        got = torch.autograd.grad(out, [x for x, n in zip(xs, mod.PARAMS) if n in loss.wrt_names])
        for g, ref in zip(got, ref_grads):
            assert rel_err(g, ref) < 1e-10


@pytest.mark.parametrize("key", KEYS)
def test_numpy_module_equals_torch_module(key):
    loss = loss_for(key)
    inputs, constants, y = sample_case(loss, seed=2)
    np_mod, t_mod = module_for(key, "numpy"), module_for(key, "torch")
    w = torch.rand(torch.broadcast_shapes(*(v.shape for v in inputs.values()))[: 1], dtype=torch.float64)
    for reduction in ("mean", "sum", "none"):
        a = np_mod.value_and_grad(*[inputs[n].numpy() for n in np_mod.PARAMS], y.numpy(), reduction=reduction,
                                  weight=w.numpy(), **{k: v.numpy() for k, v in constants.items()})
        b = t_mod.value_and_grad(*[inputs[n] for n in t_mod.PARAMS], y, reduction=reduction, weight=w, **constants)
        assert rel_err(as_tensor(a[0]), b[0]) < 1e-12
        for ga, gb in zip(a[1], b[1]):
            assert rel_err(as_tensor(ga), gb) < 1e-12


@pytest.mark.parametrize("key", KEYS)
def test_numpy_gradients_match_finite_differences(key):
    loss = loss_for(key)
    mod = module_for(key, "numpy")
    inputs, constants, y = sample_case(loss, n=4, seed=3)
    args = {n: inputs[n].numpy().copy() for n in mod.PARAMS}
    kw = {k: v.numpy() for k, v in constants.items()}
    _, grads = mod.value_and_grad(*args.values(), y.numpy(), reduction="mean", **kw)
    for name, g in zip(mod.WRT, grads):
        fd = np.zeros_like(args[name])
        for idx in np.ndindex(args[name].shape):
            h = 1e-6 * max(1.0, abs(args[name][idx]))
            plus, minus = {k: v.copy() for k, v in args.items()}, {k: v.copy() for k, v in args.items()}
            plus[name][idx] += h
            minus[name][idx] -= h
            fd[idx] = (mod.loss(*plus.values(), y.numpy(), **kw) - mod.loss(*minus.values(), y.numpy(), **kw)) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8, err_msg=f"{key}: {name}")


SCIPY = {  # the entries torch.distributions lacks: our hand-written references against scipy.stats
    "logistic": lambda st, p: st.logistic(loc=p["loc"], scale=p["scale"]),
    "hyperbolicsecant": lambda st, p: st.hypsecant(loc=p["loc"], scale=p["scale"]),
    "asymmetriclaplace": lambda st, p: st.laplace_asymmetric(
        np.sqrt(p["quantile"] / (1 - p["quantile"])), loc=p["loc"],
        scale=p["scale"] / np.sqrt(p["quantile"] * (1 - p["quantile"]))),
    "inversegaussian": lambda st, p: st.invgauss(mu=p["mean"] / p["shape"], scale=p["shape"]),
    "rayleigh": lambda st, p: st.rayleigh(scale=p["scale"]),
    "loglogistic": lambda st, p: st.fisk(c=p["beta"], scale=p["alpha"]),
}


@pytest.mark.parametrize("key", sorted(SCIPY))
def test_numpy_values_match_scipy_stats(key):
    st = pytest.importorskip("scipy.stats")
    from test_codegen_support import torch_parameters

    loss = loss_for(key)
    inputs, constants, y = sample_case(loss, seed=4)
    p = {k: v.numpy() for k, v in torch_parameters(loss, inputs, constants).items()}
    mod = module_for(key, "numpy")
    got = mod.loss(*[inputs[n].numpy() for n in mod.PARAMS], y.numpy(), reduction="none", full=True)
    want = -SCIPY[key](st, p).logpdf(y.numpy())
    np.testing.assert_allclose(got, want, rtol=1e-10)


# ---------------------------------------------------------------------------------------------------------
# the torch built-ins, every reduction, with weights
def _builtin_case(key: str, n: int = 7):
    g = torch.Generator().manual_seed(5)
    if key in ("mse", "mae"):
        x, y = torch.randn(n, generator=g, dtype=torch.float64), torch.randn(n, generator=g, dtype=torch.float64)
        fn = F.mse_loss if key == "mse" else F.l1_loss
        return (x,), y, lambda a, t, r: fn(a, t, reduction=r)
    if key == "bce":
        p = torch.rand(n, generator=g, dtype=torch.float64) * 0.9 + 0.05
        y = torch.randint(0, 2, (n,), generator=g).double()
        return (p,), y, lambda a, t, r: F.binary_cross_entropy(a, t, reduction=r)
    if key == "bernoulli":
        z = 3 * torch.randn(n, generator=g, dtype=torch.float64)
        y = torch.rand(n, generator=g, dtype=torch.float64)  # soft labels work too
        return (z,), y, lambda a, t, r: F.binary_cross_entropy_with_logits(a, t, reduction=r)
    if key == "poisson":
        z = torch.randn(n, generator=g, dtype=torch.float64)
        y = torch.poisson(torch.full((n,), 3.0, dtype=torch.float64), generator=g)
        return (z,), y, lambda a, t, r: F.poisson_nll_loss(a, t, log_input=True, full=False, reduction=r)
    if key == "categorical":
        z = torch.randn(n, 5, generator=g, dtype=torch.float64)
        y = torch.randint(0, 5, (n,), generator=g)
        return (z,), y, lambda a, t, r: F.cross_entropy(a, t, reduction=r)
    if key == "gaussian_nll":
        mu = torch.randn(n, generator=g, dtype=torch.float64)
        var = torch.rand(n, generator=g, dtype=torch.float64) + 0.1
        y = torch.randn(n, generator=g, dtype=torch.float64)
        return (mu, var), y, lambda a, v, t, r: F.gaussian_nll_loss(a, t, v, full=False, reduction=r)
    raise KeyError(key)


BUILTINS = ["mse", "mae", "bce", "bernoulli", "poisson", "categorical", "gaussian_nll"]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("key", BUILTINS)
def test_torch_builtin_equals_the_derived_loss(key, reduction, target):
    loss = loss_for(key)
    assert loss.known_as is not None and loss.known_as.torch
    factor = float(loss.known_as.factor)
    inputs, y, builtin = _builtin_case(key)
    mod = module_for(key, target)
    n = y.shape[0]
    w = torch.rand(n, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    for weight in (None, w):
        xs = [x.clone().requires_grad_(True) for x in inputs]
        per = builtin(*xs, y, "none")
        ref = per if weight is None else per * weight
        ref = {"mean": ref.mean(), "sum": ref.sum(), "none": ref}[reduction]
        if key == "bce" and weight is not None:  # F.binary_cross_entropy takes the weight itself
            ref_w = F.binary_cross_entropy(xs[0], y, weight=weight, reduction=reduction)
            assert rel_err(ref_w, ref) < 1e-14
        ref_grads = torch.autograd.grad(ref.sum(), xs)
        args = [as_target(x, target) for x in inputs]
        wt = None if weight is None else as_target(weight, target)
        value, grads = mod.value_and_grad(*args, as_target(y, target), reduction=reduction, weight=wt)
        assert rel_err(as_tensor(value), factor * ref.detach()) < 1e-12
        for g, r in zip(grads, ref_grads):
            assert rel_err(as_tensor(g), factor * r) < 1e-12
        plain = mod.loss(*args, as_target(y, target), reduction=reduction, weight=wt)
        assert rel_err(as_tensor(plain), factor * ref.detach()) < 1e-12


def test_where_the_torch_builtins_depart_from_the_exact_loss():
    """The documented caveats (symloss.codegen.docs.BUILTIN_CAVEATS), pinned: the generated modules are exact."""
    from symloss.codegen.docs import BUILTIN_CAVEATS

    zero = torch.zeros(1, dtype=torch.float64)
    # gaussian_nll_loss clamps the variance at 1e-6
    var = torch.tensor([1e-8], dtype=torch.float64)
    ours = module_for("gaussian_nll", "torch").loss(zero, var, zero)
    assert rel_err(ours, 0.5 * math.log(1e-8)) < 1e-15
    assert rel_err(F.gaussian_nll_loss(zero, zero, var), 0.5 * math.log(1e-6)) < 1e-15
    # poisson_nll_loss(full=True) uses Stirling's approximation of log y!
    z, y = torch.tensor([1.0], dtype=torch.float64), torch.tensor([5.0], dtype=torch.float64)
    exact = -torch.distributions.Poisson(torch.exp(z)).log_prob(y)
    assert rel_err(module_for("poisson", "torch").loss(z, y, full=True), exact) < 1e-14
    assert rel_err(F.poisson_nll_loss(z, y, log_input=True, full=True), exact) > 1e-3
    # binary_cross_entropy clamps log p at −100
    p, one = torch.tensor([1e-60], dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    assert rel_err(module_for("bce", "torch").loss(p, one), -math.log(1e-60)) < 1e-15
    assert F.binary_cross_entropy(p, one).item() == 100.0
    assert set(BUILTIN_CAVEATS) >= {"gaussian_nll", "poisson_nll", "bce", "cross_entropy"}
    assert "Caveat: torch clamps var" in module_for("gaussian_nll", "numpy").__doc__


def test_cross_entropy_probability_targets_and_class_indices_agree():
    g = torch.Generator().manual_seed(6)
    z = torch.randn(4, 3, 5, generator=g, dtype=torch.float64)
    idx = torch.randint(0, 5, (4, 3), generator=g)
    probs = torch.softmax(torch.randn(4, 3, 5, generator=g, dtype=torch.float64), -1)
    for target in TARGETS:
        mod = module_for("categorical", target)
        a = mod.loss(as_target(z, target), as_target(idx, target), reduction="none")
        b = mod.loss(as_target(z, target), as_target(F.one_hot(idx, 5).double(), target), reduction="none")
        assert rel_err(as_tensor(a), as_tensor(b)) < 1e-14
        c = mod.loss(as_target(z, target), as_target(probs, target), reduction="none")
        want = F.cross_entropy(z.reshape(-1, 5), probs.reshape(-1, 5), reduction="none").reshape(4, 3)
        assert rel_err(as_tensor(c), want) < 1e-12


def test_class_index_targets_are_validated():
    mod = module_for("categorical", "numpy")
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 3\)"):
        mod.loss(z, np.array([0, 3]))
    with pytest.raises(ValueError, match="must be integers"):
        mod.loss(z, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="must be integers"):
        module_for("categorical", "torch").loss(torch.zeros(2, 3), torch.tensor([0.0, 1.0]))


# ---------------------------------------------------------------------------------------------------------
# broadcasting, dtypes, empty inputs, named constants
@pytest.mark.parametrize("target", TARGETS)
def test_broadcasting_a_scalar_scale_against_a_batch(target):
    mod = module_for("normal", target)
    g = torch.Generator().manual_seed(7)
    loc = torch.randn(3, 1, generator=g, dtype=torch.float64)
    y = torch.randn(4, generator=g, dtype=torch.float64)
    s = torch.tensor(0.3, dtype=torch.float64)
    value, (g_loc, g_s) = mod.value_and_grad(as_target(loc, target), as_target(s, target), as_target(y, target),
                                             reduction="sum")
    assert tuple(g_loc.shape) == (3, 1) and tuple(np.shape(g_s)) == ()
    loc_r, s_r = loc.clone().requires_grad_(True), s.clone().requires_grad_(True)
    ref = -torch.distributions.Normal(loc_r, torch.exp(s_r)).log_prob(y)  # (3, 4)
    const = 0.5 * math.log(2 * math.pi)
    assert rel_err(as_tensor(value), (ref - const).sum().detach()) < 1e-12
    r_loc, r_s = torch.autograd.grad(ref.sum(), (loc_r, s_r))
    assert rel_err(as_tensor(g_loc), r_loc) < 1e-12 and rel_err(as_tensor(g_s), r_s) < 1e-12
    # a Python float for the scale works too, and the per-observation losses have the broadcast shape
    none = mod.loss(as_target(loc, target), 0.3, as_target(y, target), reduction="none")
    assert tuple(none.shape) == (3, 4)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("key", ["normal", "bernoulli", "categorical", "gamma", "beta"])
def test_float32_in_float32_out(key, target):
    loss = loss_for(key)
    mod = module_for(key, target)
    inputs, constants, y = sample_case(loss, seed=8)
    f32 = {k: v.float() for k, v in inputs.items()}
    y32 = y if not y.is_floating_point() else y.float()
    args32 = [as_target(f32[n], target) for n in mod.PARAMS]
    value, grads = mod.value_and_grad(*args32, as_target(y32, target), reduction="mean")
    value64, grads64 = mod.value_and_grad(*[as_target(inputs[n], target) for n in mod.PARAMS],
                                          as_target(y, target), reduction="mean")
    want = np.float32 if target == "numpy" else torch.float32
    assert value.dtype == want and all(g.dtype == want for g in grads)
    assert rel_err(as_tensor(value).double(), as_tensor(value64)) < 1e-5
    for g, g64 in zip(grads, grads64):
        assert rel_err(as_tensor(g).double(), as_tensor(g64)) < 1e-4
    none = mod.loss(*args32, as_target(y32, target), reduction="none")
    assert none.dtype == want


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("key", ["mse", "poisson", "categorical"])
def test_empty_inputs(key, target):
    mod = module_for(key, target)
    vector = key == "categorical"
    x = torch.zeros((0, 4) if vector else (0,), dtype=torch.float64)
    y = torch.zeros((0,), dtype=torch.int64 if vector else torch.float64)
    args = (as_target(x, target), as_target(y, target))
    assert tuple(mod.loss(*args, reduction="none").shape) == (0,)
    assert float(mod.loss(*args, reduction="sum")) == 0.0
    assert math.isnan(float(mod.loss(*args, reduction="mean")))  # like torch's losses
    (g,) = mod.grad(*args, reduction="mean")
    assert tuple(g.shape) == tuple(x.shape)
    if key == "mse" and target == "torch":
        assert math.isnan(F.mse_loss(x, x).item())


@pytest.mark.parametrize("target", TARGETS)
def test_named_constants_are_keyword_only(target):
    mod = module_for("pinball", target)
    assert mod.CONSTANTS == ("quantile",)
    g = torch.Generator().manual_seed(11)
    u, y = torch.randn(6, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    tau = 0.9
    r = y - u
    want = torch.where(r >= 0, tau * r, (tau - 1) * r)  # the pinball loss
    got = mod.loss(as_target(u, target), as_target(y, target), quantile=tau, reduction="none")
    assert rel_err(as_tensor(got), want) < 1e-14
    with pytest.raises(TypeError):
        mod.loss(as_target(u, target), as_target(y, target))  # the constant is required
    (g_u,) = mod.grad(as_target(u, target), as_target(y, target), quantile=tau, reduction="sum")
    want_g = torch.where(r >= 0, torch.full_like(r, -tau), torch.full_like(r, 1 - tau))
    assert rel_err(as_tensor(g_u), want_g) < 1e-14
    # full=True adds −log(τ(1 − τ)): the asymmetric Laplace density with scale 1
    full = mod.loss(as_target(u, target), as_target(y, target), quantile=tau, reduction="none", full=True)
    assert rel_err(as_tensor(full), want - math.log(tau * (1 - tau))) < 1e-14


def test_inputs_are_accepted_by_keyword():
    mod = module_for("normal", "numpy")
    a = mod.loss(0.5, 0.1, np.array([1.0, 2.0]))
    b = mod.loss(log_scale=0.1, loc=0.5, target=np.array([1.0, 2.0]))
    assert a == b


def test_the_numpy_digamma_and_lgamma_helpers_are_accurate():
    special = pytest.importorskip("scipy.special")
    mod = module_for("chi2", "numpy")  # its gradient uses both helpers
    x = np.concatenate([np.geomspace(1e-8, 1e8, 200), -np.linspace(0.01, 30.5, 50)])
    np.testing.assert_allclose(mod._digamma(x), special.digamma(x), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(mod._lgamma(x), special.gammaln(x), rtol=1e-13, atol=1e-13)
    assert mod._lgamma(np.array([0.0, -2.0])).tolist() == [math.inf, math.inf]
    assert mod._digamma(np.float32(2.5)).dtype == np.float32


def test_model_is_built_once_per_loss_and_target():
    assert model_for("normal", "numpy") is model_for("normal", "numpy")


# ---------------------------------------------------------------------------------------------------------
# Piecewise losses (not in the registry): Huber, against F.huber_loss and F.smooth_l1_loss
def piecewise_loss(name: str, expr_of, grad_of):
    """A custom Loss built from a derived one: ℓ(loc, y) = expr_of(loc, y), ∂ℓ/∂loc = grad_of(loc, y)."""
    import dataclasses

    import sympy as sp

    base = loss_for("mse")
    loc, y = base.inputs[0], base.target
    expr = expr_of(loc, y)
    return dataclasses.replace(base, name=name, expr=expr, nll=expr, gradient={loc: grad_of(loc, y)},
                               constant=sp.Integer(0), known_as=None, distribution=None, kind="custom", fixed={},
                               parameters={"loc": loc})


def huber_loss(delta: float):
    import sympy as sp

    d = sp.nsimplify(delta)
    return piecewise_loss(
        "huber",
        lambda u, y: sp.Piecewise(((u - y) ** 2 / 2, sp.Abs(u - y) <= d), (d * (sp.Abs(u - y) - d / 2), True)),
        lambda u, y: sp.Piecewise((u - y, sp.Abs(u - y) <= d), (d * sp.sign(u - y), True)),
    )


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("delta", [1.0, 0.5])
def test_huber_piecewise_equals_huber_loss_and_smooth_l1(delta, target):
    loss = huber_loss(delta)
    mod = load(loss, target)
    g = torch.Generator().manual_seed(13)
    x = 2 * torch.randn(9, generator=g, dtype=torch.float64)
    y = torch.randn(9, generator=g, dtype=torch.float64)
    w = torch.rand(9, generator=g, dtype=torch.float64)
    for reduction in ("mean", "sum", "none"):
        xr = x.clone().requires_grad_(True)
        ref = F.huber_loss(xr, y, delta=delta, reduction="none") * w
        ref = {"mean": ref.mean(), "sum": ref.sum(), "none": ref}[reduction]
        (rg,) = torch.autograd.grad(ref.sum(), xr)
        value, (grad,) = mod.value_and_grad(as_target(x, target), as_target(y, target), reduction=reduction,
                                            weight=as_target(w, target))
        assert rel_err(as_tensor(value), ref) < 1e-14
        assert rel_err(as_tensor(grad), rg) < 1e-14
    # smooth_l1_loss(beta) = huber_loss(delta=beta) / beta
    smooth = F.smooth_l1_loss(x, y, beta=delta, reduction="sum") * delta
    assert rel_err(as_tensor(mod.loss(as_target(x, target), as_target(y, target), reduction="sum")), smooth) < 1e-14


def test_numpy_printer_max_min_need_no_import():
    """Max/Min print as nested np.maximum/np.minimum (SymPy's own printing needs functools)."""
    import numpy as np
    import sympy as sp

    from symloss.codegen.printers import NumpyLossPrinter

    x, y = sp.symbols("x y", real=True)
    code = NumpyLossPrinter().doprint(sp.Max(x, y, 0) + sp.Min(x, 2 * y))
    assert "functools" not in code
    xs, ys = np.array([-1.0, 2.0, 0.5]), np.array([-3.0, 1.0, 4.0])
    got = eval(code, {"np": np, "x": xs, "y": ys})  # noqa: S307 - the printer's own output, in a test
    np.testing.assert_array_equal(got, np.maximum(np.maximum(xs, ys), 0) + np.minimum(xs, 2 * ys))
