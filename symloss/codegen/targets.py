"""The code generation targets, declared as data: one entry per target, one pipeline for all.

A target is a printer (a small SymPy printer subclass that maps functions to the
target library's names) and one or more Jinja2 templates that lay the printed
blocks out as a module.  Adding a target means adding a printer, its templates
and one :class:`Target` line below; :mod:`symloss.codegen.model` (stabilise,
lower, share subexpressions, print) and :mod:`symloss.codegen.render` are shared.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import UnsupportedError, closest

__all__ = ["Target", "TARGET_TABLE", "TARGETS", "get_target"]


@dataclass(frozen=True)
class Target:
    """One code generation target."""

    name: str
    library: str  # how documents name the library ("NumPy", "PyTorch", ...)
    files: Mapping[str, str]  # file suffix -> template; the first is the main file
    printer: Callable[..., Any]  # printer(names) -> a printer with .doprint, .helpers, .uses_math
    class_axis: bool = True  # can generate class-axis (softmax) losses
    inplace: bool = False  # the template has in-place forms of the loss terms (symloss.codegen.inplace)
    class_index: bool = False  # class-index targets are gathered, not expanded to one-hot (codegen.class_index)
    math_helpers: frozenset[str] = field(default_factory=frozenset)  # helpers whose code needs `import math`
    catalog: bool = True  # part of generated/
    requires: str = ""  # what running the module needs, for error messages and docs

    @property
    def suffix(self) -> str:
        """The main file's suffix."""
        return next(iter(self.files))


def _lazy(module: str, name: str) -> Callable[..., Any]:
    """``printer(names)`` importing its class on first use: the printers import SymPy's PyTorch printer,
    which imports torch (seconds), and a command that generates no code must not pay for that."""

    def printer(names: Mapping[Any, str] | None = None) -> Any:
        return getattr(importlib.import_module(module, __package__), name)(names)

    printer.__qualname__ = printer.__name__ = name
    return printer


NumpyLossPrinter = _lazy(".printers", "NumpyLossPrinter")
TorchLossPrinter = _lazy(".printers", "TorchLossPrinter")
TritonLossPrinter = _lazy(".triton_printer", "TritonLossPrinter")
JaxLossPrinter = _lazy(".jax_printer", "JaxLossPrinter")
CLossPrinter = _lazy(".c_printer", "CLossPrinter")

#: Every target, in the order documents and the catalog list them.
TARGET_TABLE: dict[str, Target] = {
    "numpy": Target("numpy", "NumPy", {".py": "numpy_module.py.j2"}, NumpyLossPrinter,
                    math_helpers=frozenset({"_lgamma", "_digamma", "_log_ndtr", "_log_ndtr_deriv", "_log1mexp",
                                            "_lgammacor", "_lbeta"}),
                    requires="numpy"),
    "torch": Target("torch", "PyTorch", {".py": "torch_module.py.j2"}, TorchLossPrinter,
                    math_helpers=frozenset({"_log1mexp", "_log_ndtr_deriv", "_lgammacor", "_lbeta"}), requires="torch",
                    inplace=True, class_index=True),
    "triton": Target("triton", "Triton", {".py": "triton_module.py.j2"}, TritonLossPrinter, class_axis=False,
                     requires="torch and triton (a CUDA GPU, or TRITON_INTERPRET=1 on the CPU)"),
    "jax": Target("jax", "JAX", {".py": "jax_module.py.j2"}, JaxLossPrinter,
                  math_helpers=frozenset({"_log1mexp", "_log_ndtr_deriv", "_lgammacor", "_lbeta", "_pow_ratio"}),
                  requires="jax"),
    "c": Target("c", "C99", {".c": "c_source.c.j2", ".h": "c_header.h.j2"}, CLossPrinter,
                requires="a C99 compiler and the C math library (-lm); the header <name>.h is beside it"),
}

TARGETS: tuple[str, ...] = tuple(TARGET_TABLE)


def get_target(name: str) -> Target:
    """The target called ``name``; an unknown name is an error that lists the known ones."""
    target = TARGET_TABLE.get(name) if isinstance(name, str) else None
    if target is None:
        hint = closest(str(name), TARGETS)
        suggestion = f"; did you mean {' or '.join(map(repr, hint))}?" if hint else ""
        raise UnsupportedError(f"unknown code generation target {name!r}{suggestion} "
                               f"(choose one of {', '.join(TARGETS)})")
    return target
