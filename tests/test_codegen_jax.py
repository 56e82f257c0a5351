"""The JAX target: pure modules whose gradient is the closed form, attached with jax.custom_vjp.

On every catalog entry the JAX target generates: values and gradients (value_and_grad and jax.grad) against
the torch target, and jax.grad against JAX's autodiff of the naive (unstabilised) formula on safe points;
the losses optax has (sigmoid_binary_cross_entropy, softmax_cross_entropy, l2_loss, log_cosh, huber_loss)
against optax; the edges (logits of ±1e4, scales e^±40, rates near 0, targets on the support's edges)
against the torch target, which tests/test_codegen_edges.py checks against mpmath: finite where it is
finite, and equal.  Also jit, vmap, float32, reductions, weights and their gradient, and the zero cotangents
of the target and the constants.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest
import sympy as sp
import torch

jax = pytest.importorskip("jax", reason="jax is not installed (pip install 'jax>=0.4.30')")
jax.config.update("jax_enable_x64", True)  # float64 references; float32 inputs must stay float32 regardless

import jax.numpy as jnp  # noqa: E402
import jax.scipy.special as jss  # noqa: E402
from test_codegen_support import KEYS, loss_for, module_for, rel_err, sample_case  # noqa: E402

import symloss  # noqa: E402
from symloss.codegen import generate, load  # noqa: E402

ELEMENTWISE = [k for k in KEYS if loss_for(k).event != "vector"]
CLASS_AXIS = [k for k in KEYS if loss_for(k).event == "vector"]


def jax_module(key: str):
    return module_for(key, "jax")


def to_jax(x, dtype=jnp.float64):
    if isinstance(x, torch.Tensor):
        x = x.detach().numpy()
    x = np.asarray(x)
    return jnp.asarray(x) if x.dtype.kind in "iub" else jnp.asarray(x, dtype)


def err(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float((np.abs(a - b) / (1 + np.abs(b))).max()) if a.size else 0.0


def call(mod, inputs: dict, constants: dict, y, fn="value_and_grad", **kw):
    return getattr(mod, fn)(*(inputs[n] for n in mod.PARAMS), y, **constants, **kw)


def jax_case(key: str, n: int = 9, seed: int = 3):
    loss = loss_for(key)
    inputs, constants, y = sample_case(loss, n=n, seed=seed)
    return (inputs, constants, y), ({k: to_jax(v) for k, v in inputs.items()},
                                    {k: to_jax(v) for k, v in constants.items()}, to_jax(y))


# ---------------------------------------------------------------------------------------------------------
# every catalog entry
@pytest.mark.parametrize("key", KEYS)
def test_values_and_gradients_match_the_torch_target(key):
    mod = jax_module(key)
    reference = module_for(key, "torch")
    (t_inputs, t_constants, t_y), (inputs, constants, y) = jax_case(key)
    for reduction in ("none", "mean"):
        want, want_grads = call(reference, t_inputs, t_constants, t_y, reduction=reduction, full=True)
        got, grads = call(mod, inputs, constants, y, reduction=reduction, full=True)
        assert got.dtype == jnp.float64 and got.shape == tuple(want.shape)
        assert rel_err(torch.tensor(np.array(got)), want) < 1e-12, (key, reduction)
        for name, g, w in zip(mod.WRT, grads, want_grads):
            assert g.shape == inputs[name].shape
            assert rel_err(torch.tensor(np.array(g)), w) < 1e-12, (key, name)
    # jax.grad goes through the custom_vjp: the same closed form
    argnums = tuple(mod.PARAMS.index(n) for n in mod.WRT)
    args = [inputs[n] for n in mod.PARAMS]
    auto = jax.grad(lambda *a: call(mod, dict(zip(mod.PARAMS, a)), constants, y, fn="loss"), argnums=argnums)(*args)
    _, closed = call(mod, inputs, constants, y)
    for name, a, c in zip(mod.WRT, auto, closed):
        assert a.shape == c.shape and err(a, c) < 1e-15, (key, name)
    # traceable: no Python control flow on values (jit of the loss and of its jax.grad)
    jitted = jax.jit(lambda *a: call(mod, dict(zip(mod.PARAMS, a)), constants, y, fn="loss", full=True))
    assert err(jitted(*args), call(mod, inputs, constants, y, fn="loss", full=True)) < 1e-14, key
    for a, c in zip(jax.jit(jax.grad(jitted, argnums=argnums))(*args), closed):
        assert err(a, c) < 1e-14, key


def _naive(loss):
    """ℓ + c as derived (before stabilising), as a JAX function by sympy.lambdify."""
    args = [*loss.inputs, loss.target, *loss.constants]
    namespace = {"loggamma": jss.gammaln, "digamma": jss.digamma, "polygamma": lambda n, x: jss.polygamma(int(n), x),
                 "erfc": jss.erfc, "erf": jss.erf}
    return sp.lambdify(args, loss.expr + loss.constant, modules=[namespace, "jax"])


@pytest.mark.parametrize("key", ELEMENTWISE)
def test_jax_grad_matches_autodiff_of_the_naive_formula(key):
    loss = loss_for(key)
    mod = jax_module(key)
    _, (inputs, constants, y) = jax_case(key, n=11, seed=5)
    naive = _naive(loss)
    args = [inputs[n] for n in mod.PARAMS]
    argnums = tuple(mod.PARAMS.index(n) for n in mod.WRT)
    consts = [constants[str(c)] for c in loss.constants]

    def naive_total(*a):
        return jnp.sum(naive(*a, y, *consts))

    def ours_total(*a):
        return call(mod, dict(zip(mod.PARAMS, a)), constants, y, fn="loss", reduction="sum", full=True)

    assert err(ours_total(*args), naive_total(*args)) < 1e-10, key
    want = jax.grad(naive_total, argnums=argnums)(*args)
    got = jax.grad(ours_total, argnums=argnums)(*args)
    for name, g, w in zip(mod.WRT, got, want):
        assert err(g, w) < 1e-8, (key, name, g, w)


# ---------------------------------------------------------------------------------------------------------
# optax
@pytest.fixture(scope="module")
def optax():
    return pytest.importorskip("optax", reason="optax is not installed (pip install optax)")


def _value_and_grads(f, *args):
    """(f summed, ∂/∂ the first argument)."""
    return jax.value_and_grad(lambda a: jnp.sum(f(a, *args[1:])))(args[0])


@pytest.mark.parametrize("scale", [1.0, 1e4], ids=["moderate", "extreme"])
def test_sigmoid_binary_cross_entropy_matches_optax(optax, scale):
    mod = jax_module("bernoulli")
    rng = np.random.default_rng(0)
    logits = jnp.asarray(scale * rng.standard_normal(64))
    labels = jnp.asarray(rng.integers(0, 2, 64).astype(np.float64))
    got = _value_and_grads(lambda x, t: mod.loss(x, t, reduction="none"), logits, labels)
    want = _value_and_grads(optax.losses.sigmoid_binary_cross_entropy, logits, labels)
    assert np.isfinite(got[0]) and np.isfinite(got[1]).all()
    assert err(got[0], want[0]) < 1e-12 and err(got[1], want[1]) < 1e-12


@pytest.mark.parametrize("scale", [1.0, 1e4], ids=["moderate", "extreme"])
def test_softmax_cross_entropy_matches_optax(optax, scale):
    mod = jax_module("categorical")
    rng = np.random.default_rng(1)
    logits = jnp.asarray(scale * rng.standard_normal((16, 5)))
    probs = jax.nn.softmax(jnp.asarray(rng.standard_normal((16, 5))), axis=-1)
    got = _value_and_grads(lambda x, t: mod.loss(x, t, reduction="none"), logits, probs)
    want = _value_and_grads(optax.losses.softmax_cross_entropy, logits, probs)
    assert np.isfinite(got[0]) and np.isfinite(got[1]).all()
    assert err(got[0], want[0]) < 1e-12 and err(got[1], want[1]) < 1e-12
    labels = jnp.asarray(rng.integers(0, 5, 16))
    got = _value_and_grads(lambda x, t: mod.loss(x, t, reduction="none"), logits, labels)
    want = _value_and_grads(optax.losses.softmax_cross_entropy_with_integer_labels, logits, labels)
    assert err(got[0], want[0]) < 1e-12 and err(got[1], want[1]) < 1e-12


def test_l2_loss_matches_optax_with_its_half(optax):
    mod = jax_module("mse")  # Normal with scale 1: ℓ = (y − loc)²/2, optax's l2_loss (the ½ included)
    rng = np.random.default_rng(2)
    pred, target = jnp.asarray(rng.standard_normal(32) * 10), jnp.asarray(rng.standard_normal(32))
    got = _value_and_grads(lambda x, t: mod.loss(x, t, reduction="none"), pred, target)
    want = _value_and_grads(optax.losses.l2_loss, pred, target)
    assert err(got[0], want[0]) < 1e-13 and err(got[1], want[1]) < 1e-13


def test_log_cosh_matches_optax(optax):
    mod = jax_module("hyperbolicsecant")  # ℓ = log cosh((y − loc)/scale) + log scale: log_scale = 0
    rng = np.random.default_rng(3)
    pred = jnp.asarray(np.concatenate([rng.standard_normal(30), [-800.0, 800.0]]))
    target = jnp.asarray(rng.standard_normal(32))
    zeros = jnp.zeros(32)
    got = _value_and_grads(lambda x, t: mod.loss(x, zeros, t, reduction="none"), pred, target)
    want = _value_and_grads(optax.losses.log_cosh, pred, target)
    assert np.isfinite(got[0]) and np.isfinite(got[1]).all()
    assert err(got[0], want[0]) < 1e-12 and err(got[1], want[1]) < 1e-12


@functools.cache
def huber_loss_module():
    loss = symloss.custom("exp(-where(abs(y - mu) <= 1, (y - mu)**2/2, abs(y - mu) - 1/2))", target="y",
                          params={"mu": "real"}, normalize=True)
    return load(loss, "jax")


def test_huber_matches_optax(optax):
    mod = huber_loss_module()
    rng = np.random.default_rng(4)
    pred, target = jnp.asarray(rng.standard_normal(40) * 3), jnp.asarray(rng.standard_normal(40))
    got = _value_and_grads(lambda x, t: mod.loss(x, t, reduction="none"), pred, target)
    want = _value_and_grads(lambda x, t: optax.losses.huber_loss(x, t, delta=1.0), pred, target)
    assert err(got[0], want[0]) < 1e-13 and err(got[1], want[1]) < 1e-13


# ---------------------------------------------------------------------------------------------------------
# the edges, against the torch target
def _edge_values(domain: str) -> list[float]:
    if domain == "real":
        return [-1e4, -700.0, -40.0, -1.5, 0.0, 0.3, 40.0, 700.0, 1e4]
    if domain == "positive":
        return [1e-300, 1e-30, 1e-8, 0.5, 3.0, 1e8, 1e30]
    if domain == "unit_interval":
        return [1e-300, 1e-12, 0.3, 1 - 1e-12]
    raise KeyError(domain)


def _edge_targets(loss) -> list[float]:
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
    }.get(loss.distribution.support, [0.0, 0.5, 1.0, 2.0])


_BASE = {"real": 0.3, "positive": 1.7, "unit_interval": 0.4}


def edge_grid(key: str, float32: bool) -> tuple[dict, np.ndarray]:
    """Each input swept over its edge values, the others at a moderate point, against every edge target."""
    loss = loss_for(key)
    names = [str(s) for s in loss.inputs]
    domains = {str(s): loss.domains[s].name for s in loss.inputs}
    base = {n: (7.0 if n == "total_count" else _BASE[domains[n]]) for n in names}
    rows = []
    for name in names:
        values = [1.0, 12.0] if name == "total_count" else _edge_values(domains[name])
        if float32:  # float32 overflows e^±88: keep log-scales within ±40
            values = [v for v in values if abs(v) <= (40.0 if "log" in name else 3e38) and (v == 0 or abs(v) > 1e-38)]
        for v in values:
            for t in _edge_targets(loss):
                rows.append([v if n == name else base[n] for n in names] + [t])
    grid = np.array(rows, dtype=np.float64).T
    return dict(zip(names, grid[:-1])), grid[-1]


#: Rows where XLA's CPU backend flushes a subnormal intermediate to zero (it runs with FTZ/DAZ), which
#: libm-based targets keep: Kumaraswamy with a = e^-700 needs 1 − y^a ≈ 1e-313 (a subnormal) at y → 1.
FLUSHED_SUBNORMALS = {"kumaraswamy": lambda inputs: inputs["log_concentration1"] <= -700.0}


#: Losses whose stabilised value subtracts two lgamma of huge, nearly equal arguments (Student's t at df = 1e8:
#: lgamma ≈ 8e8); jax.scipy.special.gammaln is accurate to ~2e-16 of lgamma there, 1e-7 absolute.
GAMMALN_CANCELLATION = {"studentt"}


@functools.cache
def _truth(key: str):
    """ℓ and its gradients as derived, evaluated by mpmath (60 digits): the arbiter where targets disagree."""
    loss = loss_for(key)
    args = [*loss.inputs, loss.target, *loss.constants]
    exprs = [loss.expr] + [loss.gradient[s] for s in loss.wrt]
    return [sp.lambdify(args, e, modules="mpmath") for e in exprs]


def _check_against(key, what_index, what, got, want, inputs, y, tol):
    """got must be finite where want is, and within tol of it, or else about as close to the mpmath truth as
    want is: within 10 times its error, on ill-conditioned rows (lgamma(b) − lgamma(a + b) at b = e^40 cancels
    in every target; at df = 1e8 lgamma(df/2) − lgamma((df + 1)/2) loses 1e-7 in jax's gammaln, 2e-8 in libm's)."""
    import mpmath

    finite = np.isfinite(want)
    bad = finite & ~np.isfinite(got)
    assert not bad.any(), f"{key} {what}: non-finite where the torch target is finite at {np.nonzero(bad)[0][:5]}"
    e = np.zeros_like(want)
    e[finite] = np.abs(got[finite] - want[finite]) / (1 + np.abs(want[finite]))
    names = list(inputs)
    with mpmath.workdps(60):
        f = _truth(key)[what_index]
        for i in np.nonzero(e >= tol)[0]:
            row = [mpmath.mpf(float(inputs[n][i])) for n in names] + [mpmath.mpf(float(y[i]))]
            row += [mpmath.mpf(0.3)] * len(loss_for(key).constants)
            truth = float(f(*row))
            ours, theirs = abs(got[i] - truth) / (1 + abs(truth)), abs(want[i] - truth) / (1 + abs(truth))
            floor = 1e-6 if key in GAMMALN_CANCELLATION else 0.0
            where = {n: inputs[n][i] for n in names}
            assert ours < max(tol, 10 * theirs, floor), (key, what, where, y[i], got[i], want[i])


@pytest.mark.parametrize("float32", [False, True], ids=["float64", "float32"])
@pytest.mark.parametrize("key", ELEMENTWISE)
def test_edges_match_the_torch_target(key, float32):
    reference = module_for(key, "torch")
    mod = jax_module(key)
    inputs, y = edge_grid(key, float32)
    tdtype, jdtype = (torch.float32, jnp.float32) if float32 else (torch.float64, jnp.float64)
    t_inputs = {n: torch.tensor(v, dtype=tdtype) for n, v in inputs.items()}
    j_inputs = {n: jnp.asarray(v, jdtype) for n, v in inputs.items()}
    t_constants = {c: torch.tensor(0.3, dtype=tdtype) for c in mod.CONSTANTS}
    j_constants = {c: jnp.asarray(0.3, jdtype) for c in mod.CONSTANTS}
    with torch.no_grad():
        want, want_grads = call(reference, t_inputs, t_constants, torch.tensor(y, dtype=tdtype), reduction="none")
    got, grads = call(mod, j_inputs, j_constants, jnp.asarray(y, jdtype), reduction="none")
    assert got.dtype == jdtype and all(g.dtype == jdtype for g in grads)
    tol = 2e-5 if float32 else 1e-11
    keep = ~FLUSHED_SUBNORMALS[key](inputs) if key in FLUSHED_SUBNORMALS else np.ones(len(y), bool)
    rounded = {n: v.astype(np.float32).astype(np.float64) if float32 else v for n, v in inputs.items()}
    rounded = {n: v[keep] for n, v in rounded.items()}
    y = y.astype(np.float32).astype(np.float64) if float32 else y
    for k, (what, g, w) in enumerate([("value", got, want), *zip(mod.WRT, grads, want_grads)]):
        g, w = np.asarray(g, np.float64)[keep], w.double().numpy()[keep]
        _check_against(key, k, what, g, w, rounded, y[keep], tol)


# ---------------------------------------------------------------------------------------------------------
# the call contract
def test_jit_and_vmap():
    mod = jax_module("normal")
    rng = np.random.default_rng(6)
    loc, log_scale, y = (jnp.asarray(rng.standard_normal((5, 7))) for _ in range(3))
    eager = mod.loss(loc, log_scale, y, reduction="sum", full=True)
    jitted = jax.jit(mod.loss, static_argnames=("reduction", "full"))
    assert err(jitted(loc, log_scale, y, reduction="sum", full=True), eager) < 1e-15
    g = jax.jit(jax.grad(lambda a, b: mod.loss(a, b, y), argnums=(0, 1)))(loc, log_scale)
    for a, b in zip(g, mod.grad(loc, log_scale, y)):
        assert err(a, b) < 1e-15
    # vmap over the first axis: one mean per row
    per_row = jax.vmap(lambda a, b, t: mod.loss(a, b, t))(loc, log_scale, y)
    assert per_row.shape == (5,)
    assert err(per_row, mod.loss(loc, log_scale, y, reduction="none").mean(axis=1)) < 1e-14
    rows = jax.vmap(jax.grad(lambda a, b, t: mod.loss(a, b, t)))(loc, log_scale, y)
    assert err(rows, mod.grad(loc, log_scale, y, reduction="none")[0] / 7) < 1e-14
    # class-axis losses too
    cat = jax_module("categorical")
    logits, labels = jnp.asarray(rng.standard_normal((3, 4, 5))), jnp.asarray(rng.integers(0, 5, (3, 4)))
    vm = jax.vmap(jax.grad(lambda a, t: cat.loss(a, t)))(logits, labels)
    assert err(vm, cat.grad(logits, labels)[0] * 3) < 1e-14
    assert err(jax.jit(cat.loss)(logits, labels), cat.loss(logits, labels)) < 1e-15


@pytest.mark.parametrize("key", ["normal", "bernoulli", "poisson", "gamma", "studentt", "categorical", "pinball"])
def test_float32_stays_float32(key):
    mod = jax_module(key)
    _, (inputs, constants, y) = jax_case(key)
    inputs32 = {n: v.astype(jnp.float32) if jnp.issubdtype(v.dtype, jnp.floating) else v for n, v in inputs.items()}
    constants32 = {n: 0.3 for n in constants}  # Python numbers do not promote
    y32 = y.astype(jnp.float32) if jnp.issubdtype(y.dtype, jnp.floating) else y
    value, grads = call(mod, inputs32, constants32, y32, full=True)
    assert value.dtype == jnp.float32 and all(g.dtype == jnp.float32 for g in grads)
    args = [inputs32[n] for n in mod.PARAMS]
    auto = jax.grad(lambda *a: call(mod, dict(zip(mod.PARAMS, a)), constants32, y32, fn="loss"),
                    argnums=tuple(mod.PARAMS.index(n) for n in mod.WRT))(*args)
    assert all(g.dtype == jnp.float32 for g in auto)
    value64, grads64 = call(mod, inputs, constants, y, full=True)
    assert err(value, value64) < 1e-5
    for g, g64 in zip(grads, grads64):
        assert err(g, g64) < 1e-5


def test_reductions_weights_and_the_weight_gradient_match_numpy():
    mod, ref = jax_module("gamma"), module_for("gamma", "numpy")
    (t_inputs, _, t_y), (inputs, _, y) = jax_case("gamma", n=6)
    weight = jnp.asarray(np.linspace(0.5, 2.0, 6))
    args = [inputs[n] for n in mod.PARAMS]
    np_args = [t_inputs[n].numpy() for n in mod.PARAMS]
    for reduction in ("mean", "sum", "none"):
        value, grads = mod.value_and_grad(*args, y, reduction=reduction, weight=weight)
        want, want_grads = ref.value_and_grad(*np_args, t_y.numpy(), reduction=reduction, weight=np.asarray(weight))
        assert err(value, want) < 1e-14
        for g, w in zip(grads, want_grads):
            assert err(g, w) < 1e-14
    # ∂(Σ w·ℓ / N)/∂w = ℓ / N
    gw = jax.grad(lambda w: mod.loss(*args, y, weight=w))(weight)
    assert err(gw, mod.loss(*args, y, reduction="none") / 6) < 1e-14
    # a weight broadcast against the losses gets its gradient summed to its own shape
    gw = jax.grad(lambda w: mod.loss(*args, y, weight=w, reduction="sum"))(jnp.asarray(2.0))
    assert gw.shape == () and err(gw, mod.loss(*args, y, reduction="sum")) < 1e-14


def test_scalar_and_broadcast_parameters_get_summed_gradients():
    mod = jax_module("normal")
    y = jnp.asarray(np.linspace(-1, 2, 8))
    loc, log_scale = jnp.asarray(0.3), jnp.zeros((1,))
    g_loc, g_scale = jax.grad(lambda a, b: mod.loss(a, b, y), argnums=(0, 1))(loc, log_scale)
    assert g_loc.shape == () and g_scale.shape == (1,)
    assert err(g_loc, jnp.mean(loc - y)) < 1e-14
    grads = mod.grad(loc, log_scale, y)
    assert err(grads[0], g_loc) < 1e-15 and err(grads[1], g_scale) < 1e-15


def test_target_data_inputs_and_constants_get_zero_cotangents():
    mod = jax_module("pinball")
    loc, y = jnp.asarray([0.1, -0.4, 2.0]), jnp.asarray([0.0, 0.5, 1.0])
    g_y, g_q = jax.grad(lambda t, q: mod.loss(loc, t, quantile=q), argnums=(0, 1))(y, jnp.asarray(0.3))
    assert not np.asarray(g_y).any() and not np.asarray(g_q).any()
    binomial = jax_module("binomial")
    n, logits, k = jnp.asarray([5.0, 9.0]), jnp.asarray([0.2, -1.0]), jnp.asarray([2.0, 3.0])
    g_n = jax.grad(lambda c: binomial.loss(c, logits, k))(n)
    assert not np.asarray(g_n).any()


def test_invalid_reduction_and_non_integer_class_indices_are_value_errors():
    mod = jax_module("categorical")
    with pytest.raises(ValueError, match="reduction"):
        mod.loss(jnp.zeros((2, 3)), jnp.asarray([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="integers"):
        mod.loss(jnp.zeros((2, 3)), jnp.asarray([0.0, 1.0]))


def test_source_prints_numbers_as_python_floats_and_imports_only_jax():
    source = generate(loss_for("studentt"), "jax")
    assert not re.search(r"\bnp\.", source) and "import numpy" not in source and "import torch" not in source
    assert "jax.custom_vjp" in source and "jnp.float64" not in source


def test_default_precision_is_float32_without_x64(tmp_path):
    """Under JAX's default configuration (no jax_enable_x64) everything stays float32, Python numbers included."""
    import subprocess
    import sys

    path = tmp_path / "poisson_jax.py"
    path.write_text(generate(loss_for("poisson"), "jax"), encoding="utf-8")
    script = f"""
import importlib.util, jax, jax.numpy as jnp
spec = importlib.util.spec_from_file_location("m", {str(path)!r})
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
v, (g,) = m.value_and_grad(0.5, 3.0, full=True)
x = jnp.asarray([0.1, 2.0], jnp.float32)
w = jax.jit(jax.grad(lambda a: m.loss(a, jnp.asarray([1, 4]), weight=2.0, full=True)))(x)
print(v.dtype, g.dtype, m.loss(x, 1.0).dtype, w.dtype)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["float32"] * 4


def test_unusual_but_valid_names_generate_working_jax_code():
    loss = symloss.custom("exp(-abs(y - mu_1)/b2)/(2*b2)", target="y", params={"mu_1": "real", "b2": "positive"})
    mod = load(loss, "jax")
    assert mod.PARAMS == ("mu_1", "b2")
    mu, b, y = jnp.asarray([0.1, -0.3, 2.0]), jnp.asarray([1.0, 0.5, 3.0]), jnp.asarray([0.0, 0.2, -1.0])
    assert err(mod.loss(mu_1=mu, b2=b, target=y), jnp.mean(jnp.abs(y - mu) / b + jnp.log(b))) < 1e-15
