"""Code generation: a derived loss as a self-contained NumPy or PyTorch module.

>>> import symloss
>>> L = symloss.derive("poisson", link="canonical")
>>> source = generate(L, "torch")          # the module's source text
>>> mod = load(L, "torch")                 # imported without writing a file
>>> mod.loss(log_rate, counts)             # doctest: +SKIP

Each module depends only on NumPy or PyTorch (and ``math``) and exposes
``PARAMS``, ``TARGET``, ``WRT``, ``CONSTANTS``, ``loss``, ``grad`` and
``value_and_grad``; the PyTorch module adds an ``autograd.Function`` with the
closed-form backward (``Function``) and an ``nn.Module`` (``Module``).  The
loss and every gradient are stabilised first (:mod:`symloss.stabilize`); the
modules are rendered from the Jinja2 templates in ``templates/``.
"""

from __future__ import annotations

import os
import types
from pathlib import Path

from ..loss import Loss
from .model import TARGETS, ModuleModel, build_model
from .render import render, template_dir

__all__ = ["generate", "load", "write", "build_model", "ModuleModel", "TARGETS", "template_dir"]


def generate(loss: Loss, target: str = "numpy") -> str:
    """The source of a ``target`` ("numpy" | "torch") module computing ``loss`` and its gradients.

    Raises :class:`~symloss.errors.UnsupportedError` ("not supported: ...") when
    the loss uses a function the target cannot compute stably (a Bessel function,
    say), and :class:`~symloss.errors.InvalidIdentifierError` for a name that
    cannot appear in generated code.
    """
    return render(build_model(loss, target))


def load(loss: Loss, target: str = "numpy") -> types.ModuleType:
    """The generated module, imported from memory (nothing is written).

    The source is compiled under the file name ``<symloss:NAME:TARGET>`` so that
    tracebacks name it.  Importing it imports NumPy or PyTorch.
    """
    model = build_model(loss, target)
    source = render(model)
    name = f"symloss_generated_{target}_{model.module_name}"
    module = types.ModuleType(name)
    module.__file__ = f"<symloss:{loss.name}:{target}>"
    code = compile(source, module.__file__, "exec")
    exec(code, module.__dict__)  # noqa: S102 (our own generated source, never user text)
    return module


def write(loss: Loss, target: str, path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write the generated module to ``path`` atomically; an existing file is replaced only with ``force``."""
    from ..fileio import write_text_atomic

    return write_text_atomic(path, generate(loss, target), force=force)
