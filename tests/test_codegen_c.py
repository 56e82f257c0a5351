"""The C99 target: every catalog entry it supports compiled with ``cc -std=c99 -O2 -Wall -Wextra -Werror`` into
one shared library (which also checks that the generated names never collide), loaded with ctypes and
compared with the NumPy target: random points, the edges (logits of ±1e4, scales e^±40, rates near 0,
targets on the support's edges; finite where NumPy is finite, and equal), the class-axis losses (softmax
logits of ±1e4; loops over the classes), the float variants, the reductions with weights, and the CLI
(``--target c -o PATH`` writes PATH and its header beside it).

Without a C compiler the tests are skipped with the reason; with SYMLOSS_REQUIRE_CC=1 (CI) they fail.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from test_codegen_support import KEYS, loss_for, module_for, sample_case

import symloss
import symloss.codegen
from symloss.codegen import generate, generate_files, write
from symloss.codegen.model import module_name
from symloss.errors import FileExistsError_, InvalidIdentifierError

CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]
ELEMENTWISE = [k for k in KEYS if loss_for(k).event != "vector"]
CLASS_AXIS = [k for k in KEYS if loss_for(k).event == "vector"]


def compiler() -> str:
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        message = "no C compiler found (set CC, or install cc/gcc/clang)"
        if os.environ.get("SYMLOSS_REQUIRE_CC") == "1":
            pytest.fail(f"SYMLOSS_REQUIRE_CC=1 but {message}")
        pytest.skip(message)
    return cc


def compile_library(cc: str, sources: list[Path], out: Path) -> None:
    """Compile each source (in parallel) and link them into one shared library."""
    def one(src: Path) -> Path:
        obj = src.with_suffix(".o")
        result = subprocess.run([cc, *CFLAGS, "-fPIC", "-c", str(src), "-o", str(obj)], capture_output=True, text=True)
        assert result.returncode == 0, f"{src.name} does not compile:\n{result.stderr[:4000]}"
        return obj

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        objects = list(pool.map(one, sources))
    result = subprocess.run([cc, "-shared", "-o", str(out), *map(str, objects), "-lm"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[:4000]


@pytest.fixture(scope="session")
def library(tmp_path_factory):
    """Every catalog entry's C files, compiled into one shared library."""
    cc = compiler()
    folder = tmp_path_factory.mktemp("c")
    sources = []
    for key in KEYS:
        files = generate_files(loss_for(key), "c")
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
        sources.append(folder / next(iter(files)))
    out = folder / ("symloss_catalog" + (".dll" if sys.platform == "win32" else ".so"))
    compile_library(cc, sources, out)
    return ctypes.CDLL(str(out))


class CLoss:
    """The ctypes view of one generated C file: the double and float functions of symloss_<name>_."""

    def __init__(self, lib, key: str):
        self.loss = loss_for(key)
        self.mod = module_for(key, "numpy")
        self.prefix = f"symloss_{module_name(self.loss.name)}_"
        self.lib = lib
        self.params, self.wrt, self.constants = self.mod.PARAMS, self.mod.WRT, self.mod.CONSTANTS
        self.upper = self.prefix.upper()
        self.vector = self.loss.event == "vector"
        self.vectors = dict(zip(self.params, getattr(self.mod, "_VECTOR", (False,) * len(self.params))))

    def arrays(self, inputs: dict, y, real):
        """The C arguments: (n,) arrays, (n, K) for the class-axis ones; (n, K) one-hot for class indices."""
        n = len(y)
        k = next((np.shape(inputs[p])[-1] for p in self.params if self.vectors[p]), None)
        if self.vector and np.ndim(y) == 1:
            y = np.arange(k) == np.asarray(y)[:, None]
        arrays = [np.ascontiguousarray(np.broadcast_to(inputs[p], (n, k) if self.vectors[p] else (n,)), dtype=real)
                  for p in self.params]
        arrays.append(np.ascontiguousarray(y, dtype=real))
        return arrays, ([n, k] if self.vector else [n])

    def _fn(self, name: str, real):
        fn = getattr(self.lib, self.prefix + name)
        ptr = np.ctypeslib.ndpointer(dtype=real, flags="C_CONTIGUOUS")
        scalar = ctypes.c_double if real == np.float64 else ctypes.c_float
        nullable = ctypes.c_void_p
        arrays = [ptr] * (len(self.params) + 1) + [scalar] * len(self.constants)
        grads = [nullable] * len(self.wrt)
        n = [ctypes.c_size_t, ctypes.c_size_t] if self.vector else [ctypes.c_size_t]  # _n (and _classes)
        if name.startswith("loss"):
            fn.argtypes = [*arrays, *n, ctypes.c_int, ptr]
        elif name.startswith("value_and_grad"):
            fn.argtypes = [*arrays, *n, ctypes.c_int, nullable, *grads]
        elif name.startswith("reduced_value_and_grad"):
            fn.argtypes = [*arrays, nullable, *n, ctypes.c_int, ctypes.c_int, *grads]
            fn.restype = scalar
        else:
            fn.argtypes = [nullable, nullable, ctypes.c_size_t, ctypes.c_int]
            fn.restype = scalar
        return fn

    @staticmethod
    def _ptr(a):
        return None if a is None else a.ctypes.data_as(ctypes.c_void_p)

    def value_and_grad(self, inputs: dict, y, constants: dict, *, full=False, real=np.float64):
        arrays, sizes = self.arrays(inputs, y, real)
        n = sizes[0]
        out = np.empty(n, real)
        grads = [np.empty_like(arrays[self.params.index(w)]) for w in self.wrt]
        sfx = "_f" if real == np.float32 else ""
        self._fn("value_and_grad" + sfx, real)(*arrays, *(float(constants[c]) for c in self.constants), *sizes,
                                               int(full), self._ptr(out), *map(self._ptr, grads))
        values = np.empty(n, real)
        self._fn("loss" + sfx, real)(*arrays, *(float(constants[c]) for c in self.constants), *sizes, int(full),
                                     values)
        same = np.isfinite(out)  # the value-only path (its own shared subexpressions) agrees
        assert np.array_equal(np.isfinite(values), same) and err(values[same], out[same]) < 1e-13
        return out, grads

    def reduced(self, inputs: dict, y, constants: dict, weight, reduction: int, *, full=False, real=np.float64):
        arrays, sizes = self.arrays(inputs, y, real)
        w = None if weight is None else np.ascontiguousarray(weight, dtype=real)
        grads = [np.empty_like(arrays[self.params.index(w)]) for w in self.wrt]
        sfx = "_f" if real == np.float32 else ""
        value = self._fn("reduced_value_and_grad" + sfx, real)(
            *arrays, *(float(constants[c]) for c in self.constants), self._ptr(w), *sizes, reduction, int(full),
            *map(self._ptr, grads))
        return value, grads

    def reduce(self, values, weight, reduction: int, real=np.float64):
        values = np.ascontiguousarray(values, dtype=real)
        w = None if weight is None else np.ascontiguousarray(weight, dtype=real)
        return self._fn("reduce" + ("_f" if real == np.float32 else ""), real)(
            self._ptr(values), self._ptr(w), len(values), reduction)


def err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float((np.abs(a - b) / (1 + np.abs(b))).max()) if a.size else 0.0


def numpy_case(key: str, n: int = 23, seed: int = 3):
    inputs, constants, y = sample_case(loss_for(key), n=n, seed=seed)
    return ({k: v.numpy() for k, v in inputs.items()}, {k: float(v) for k, v in constants.items()}, y.numpy())


def reference(mod, inputs, y, constants, **kw):
    return mod.value_and_grad(*(inputs[p] for p in mod.PARAMS), y, **constants, **kw)


# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", KEYS)
def test_values_and_gradients_match_numpy(library, key):
    c = CLoss(library, key)
    inputs, constants, y = numpy_case(key)
    for full in (False, True):
        value, grads = c.value_and_grad(inputs, y, constants, full=full)
        want, want_grads = reference(c.mod, inputs, y, constants, reduction="none", full=full)
        assert err(value, want) < 1e-13, (key, full)
        for name, g, w in zip(c.wrt, grads, want_grads):
            assert err(g, np.broadcast_to(w, g.shape)) < 1e-13, (key, name)


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


def edge_grid(key: str) -> tuple[dict, np.ndarray]:
    """Each input swept over its edge values, the others at a moderate point, against every edge target."""
    loss = loss_for(key)
    names = [str(s) for s in loss.inputs]
    domains = {str(s): loss.domains[s].name for s in loss.inputs}
    base = {"real": 0.3, "positive": 1.7, "unit_interval": 0.4}
    rows = []
    for name in names:
        values = [1.0, 12.0] if name == "total_count" else _edge_values(domains[name])
        for v in values:
            for t in _edge_targets(loss):
                row = [v if m == name else (7.0 if m == "total_count" else base[domains[m]]) for m in names]
                rows.append(row + [t])
    grid = np.array(rows, dtype=np.float64).T
    return dict(zip(names, grid[:-1])), grid[-1]


@pytest.mark.parametrize("key", ELEMENTWISE)
def test_edges_match_numpy(library, key):
    c = CLoss(library, key)
    inputs, y = edge_grid(key)
    constants = {k: 0.3 for k in c.constants}
    value, grads = c.value_and_grad(inputs, y, constants)
    want, want_grads = reference(c.mod, inputs, y, constants, reduction="none")
    for what, g, w in [("value", value, want), *zip(c.wrt, grads, want_grads)]:
        w = np.broadcast_to(w, g.shape)
        finite = np.isfinite(w)
        bad = finite & ~np.isfinite(g)
        assert not bad.any(), f"{key} {what}: non-finite where NumPy is finite at {np.nonzero(bad)[0][:5]}"
        assert err(g[finite], w[finite]) < 1e-11, (key, what)


@pytest.mark.parametrize("key", ["normal", "bernoulli", "poisson", "gamma", "studentt", "pinball", "beta",
                                 "categorical", "dirichlet"])
def test_float_variants_round_the_double_results(library, key):
    c = CLoss(library, key)
    inputs, constants, y = numpy_case(key)
    inputs = {k: v.astype(np.float32).astype(np.float64) for k, v in inputs.items()}
    y = y.astype(np.float32).astype(np.float64)
    constants = {k: float(np.float32(v)) for k, v in constants.items()}
    value, grads = c.value_and_grad(inputs, y, constants, full=True)
    value32, grads32 = c.value_and_grad(inputs, y, {k: np.float32(v) for k, v in constants.items()}, full=True,
                                        real=np.float32)
    assert value32.dtype == np.float32
    assert np.array_equal(value32, value.astype(np.float32))
    for g, g32 in zip(grads, grads32):
        assert np.array_equal(g32, g.astype(np.float32))


@pytest.mark.parametrize("key", ["normal", "binomial", "pinball"])
def test_reductions_and_weights_match_numpy(library, key):
    c = CLoss(library, key)
    inputs, constants, y = numpy_case(key, n=17)
    weight = np.linspace(0.5, 2.0, len(y))
    codes = {"mean": 0, "sum": 1}  # the header's SYMLOSS_<NAME>_MEAN and _SUM
    for reduction, code in codes.items():
        for w in (None, weight):
            for full in (False, True):
                value, grads = c.reduced(inputs, y, constants, w, code, full=full)
                want, want_grads = reference(c.mod, inputs, y, constants, reduction=reduction, weight=w, full=full)
                assert err(value, want) < 1e-13, (key, reduction)
                per_element = [np.broadcast_to(g, (len(y),)) for g in
                               reference(c.mod, inputs, y, constants, reduction="none", weight=w, full=full)[1]]
                for name, g, pe, wg in zip(c.wrt, grads, per_element, want_grads):
                    scale = 1.0 / len(y) if reduction == "mean" else 1.0
                    assert err(g, pe * scale) < 1e-13, (key, name)
                    if np.ndim(wg) == 1:  # the input is per element: the gradients are the same
                        assert err(g, wg) < 1e-13, (key, name)
                values, _ = c.value_and_grad(inputs, y, constants, full=full)
                assert err(c.reduce(values, w, code), want) < 1e-13
                value32, _ = c.reduced(inputs, y, constants, w, code, full=full, real=np.float32)
                assert abs(value32 - want) <= 1e-6 * (1 + abs(want))
    # an empty mean is NaN, an empty sum 0; an unknown reduction is NaN and writes nothing
    assert np.isnan(c.reduce(np.zeros(0), None, 0)) and c.reduce(np.zeros(0), None, 1) == 0.0
    assert np.isnan(c.reduce(np.ones(3), None, 7))
    value, _ = c.reduced(inputs, y, constants, None, 7)
    assert np.isnan(value)


def test_reduction_constants_are_in_the_header():
    header = generate_files(loss_for("normal"), "c")["normal_log_scale.h"]
    assert "SYMLOSS_NORMAL_LOG_SCALE_MEAN = 0" in header and "SYMLOSS_NORMAL_LOG_SCALE_SUM = 1" in header


def test_generate_returns_the_source_and_load_refuses():
    loss = loss_for("poisson")
    files = generate_files(loss, "c")
    assert list(files) == ["poisson_log_rate.c", "poisson_log_rate.h"]
    assert generate(loss, "c") == files["poisson_log_rate.c"]
    with pytest.raises(ValueError, match="Python modules"):
        symloss.codegen.load(loss, "c")


@pytest.mark.parametrize("key", CLASS_AXIS)
def test_class_axis_edges_match_numpy(library, key):
    """Logits of ±1e4 and ±700 beside moderate ones, one-hot and spread targets: finite and equal."""
    c = CLoss(library, key)
    rows = np.array([[1e4, -1e4, 0.0, 3.0], [-1e4, -1e4, -1e4, -1e4], [700.0, -700.0, 1.0, 0.0],
                     [0.1, 0.2, -0.3, 0.4], [-40.0, 40.0, 0.0, 1e-8]])
    inputs = {}
    for p in c.params:
        if p == "total_count":
            inputs[p] = np.full(len(rows), 7.0)
        elif c.vectors[p]:
            inputs[p] = rows if "logits" in p else np.clip(rows, -40.0, 40.0) / 10
    support = loss_for(key).distribution.support
    if key == "dirichlet":
        y = np.full((len(rows), 4), 0.25)
        y[0] = [1e-300, 0.5, 0.25, 0.25 - 1e-300]
    elif key == "multinomial":
        y = np.array([[7.0, 0, 0, 0], [0, 7.0, 0, 0], [1.0, 2.0, 3.0, 1.0], [0, 0, 0, 7.0], [3.0, 4.0, 0, 0]])
    else:
        y = np.eye(4)[[1, 0, 1, 2, 3]] if support == "class_index" else np.full((len(rows), 4), 0.25)
    value, grads = c.value_and_grad(inputs, y, {})
    want, want_grads = reference(c.mod, inputs, y, {}, reduction="none")
    for what, g, w in [("value", value, want), *zip(c.wrt, grads, want_grads)]:
        w = np.broadcast_to(w, g.shape)
        finite = np.isfinite(w)
        assert not (finite & ~np.isfinite(g)).any(), (key, what)
        assert err(g[finite], w[finite]) < 1e-11, (key, what)
    # probability targets and reductions with weights through the same path
    weight = np.linspace(0.5, 2.0, len(rows))
    for code, reduction in ((0, "mean"), (1, "sum")):
        total, rgrads = c.reduced(inputs, y, {}, weight, code)
        want, want_grads = reference(c.mod, inputs, y, {}, reduction=reduction, weight=weight)
        assert err(total, want) < 1e-12
        for g, w in zip(rgrads, want_grads):
            assert err(g, np.broadcast_to(w, g.shape)) < 1e-12


def test_generated_files_use_only_math_and_stddef_and_prefix_every_name():
    files = generate_files(loss_for("continuousbernoulli"), "c")
    source, header = files["continuousbernoulli_logit_probs.c"], files["continuousbernoulli_logit_probs.h"]
    includes = [line for text in (source, header) for line in text.splitlines() if line.startswith("#include")]
    assert sorted(set(includes)) == ['#include "continuousbernoulli_logit_probs.h"', "#include <math.h>",
                                     "#include <stddef.h>"]
    assert "malloc" not in source and "$" not in source
    defined = re.findall(r"^(?:static )?(?:double|float|void) (\w+)\(", source, flags=re.M)
    assert defined and all(name.startswith("symloss_continuousbernoulli_logit_probs_") for name in defined)


def test_two_generated_sources_share_one_translation_unit(tmp_path):
    """Every name is prefixed with the loss: a unity build of two sources (the same helpers in each) compiles."""
    cc = compiler()
    for key in ("bernoulli", "geometric"):
        for name, text in generate_files(loss_for(key), "c").items():
            (tmp_path / name).write_text(text, encoding="utf-8")
    unity = tmp_path / "unity.c"
    unity.write_text('#include "bernoulli_logit_probs.c"\n#include "geometric_logit_probs.c"\n', encoding="utf-8")
    result = subprocess.run([cc, *CFLAGS, "-c", str(unity), "-o", str(tmp_path / "unity.o")], capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[:4000]


def test_piecewise_losses_compile_and_match_numpy(tmp_path):
    """A Huber loss from a custom density: Piecewise becomes ?:, and the gradient is exact on both branches."""
    cc = compiler()
    loss = symloss.custom("exp(-where(abs(y - mu) <= 1, (y - mu)**2/2, abs(y - mu) - 1/2))", target="y",
                          params={"mu": "real"}, normalize=True)
    files = generate_files(loss, "c")
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    out = tmp_path / "huber.so"
    compile_library(cc, [tmp_path / next(iter(files))], out)
    lib = ctypes.CDLL(str(out))
    prefix = f"symloss_{module_name(loss.name)}_"
    fn = getattr(lib, prefix + "value_and_grad")
    mu, y = np.array([0.0, 0.5, 3.0, -7.0]), np.array([0.2, -1.0, 0.0, 1.0])
    out_v, out_g = np.empty(4), np.empty(4)
    ptr = ctypes.c_void_p
    fn.argtypes = [ptr, ptr, ctypes.c_size_t, ctypes.c_int, ptr, ptr]
    fn(mu.ctypes.data, y.ctypes.data, 4, 0, out_v.ctypes.data, out_g.ctypes.data)
    r = np.abs(mu - y)
    assert err(out_v, np.where(r <= 1, r**2 / 2, r - 0.5)) < 1e-15
    assert err(out_g, np.where(r <= 1, mu - y, np.sign(mu - y))) < 1e-15


def test_names_reserved_for_the_c_functions_are_rejected():
    loss = symloss.custom("exp(-abs(y - symloss_mu))/2", target="y", params={"symloss_mu": "real"})
    with pytest.raises(InvalidIdentifierError, match="symloss_"):
        generate(loss, "c")
    for name in ("size_t", "double", "lgamma"):
        with pytest.raises(InvalidIdentifierError):
            symloss.custom(f"exp(-abs(y - {name}))/2", target="y", params={name: "real"})


def test_write_and_cli_put_the_header_beside_the_source(tmp_path):
    cc = compiler()
    from symloss.cli import main

    path = tmp_path / "out" / "my_loss.c"
    path.parent.mkdir()
    assert main(["derive", "poisson", "--link", "rate=log", "--no-analyze", "--target", "c", "-o", str(path)]) == 0
    header = path.with_name("my_loss.h")
    assert path.is_file() and header.is_file()
    assert '#include "my_loss.h"' in path.read_text(encoding="utf-8")
    result = subprocess.run([cc, *CFLAGS, "-c", str(path), "-o", str(tmp_path / "my_loss.o")], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[:4000]
    # refuses to overwrite either file without --force, and then writes nothing
    path.unlink()
    with pytest.raises(FileExistsError_):
        write(loss_for("poisson"), "c", path)
    assert not path.exists()
    assert write(loss_for("poisson"), "c", path, force=True) == path and path.is_file()
