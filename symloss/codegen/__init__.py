"""Code generation: a derived loss as a self-contained module for NumPy, PyTorch, Triton, JAX or C99.

>>> import symloss
>>> L = symloss.derive("poisson", link="canonical")
>>> source = generate(L, "torch")          # the module's source text
>>> mod = load(L, "torch")                 # imported without writing a file
>>> mod.loss(log_rate, counts)             # doctest: +SKIP

Each Python module depends only on its library (and ``math``) and exposes
``PARAMS``, ``TARGET``, ``WRT``, ``CONSTANTS``, ``loss``, ``grad`` and
``value_and_grad``; the PyTorch and Triton modules add an ``autograd.Function``
with the closed-form backward (``Function``) and an ``nn.Module`` (``Module``).
The JAX module attaches the closed-form gradient with ``jax.custom_vjp``.  The
C99 target writes two files, ``<name>.c`` and its header ``<name>.h``, with
elementwise ``double`` and ``float`` functions for the loss and its gradient
and a reduction (:func:`generate` returns the ``.c`` source, :func:`generate_files`
both, :func:`write` puts the header beside the source).
The loss and every gradient are stabilised first (:mod:`symloss.stabilize`);
the modules are rendered from the Jinja2 templates in ``templates/``; the
targets are declared in :mod:`symloss.codegen.targets`.
"""

from __future__ import annotations

import linecache
import os
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..loss import Loss
from .targets import TARGET_TABLE, TARGETS, Target, get_target

if TYPE_CHECKING:
    from .model import ModuleModel, build_model
    from .render import render, render_files, template_dir

# the model and the printers import SymPy's PyTorch printer, which imports torch: loaded on first use, so that
# `symloss derive` without --target (and `import symloss.codegen`) starts in well under a second
_LAZY = {"ModuleModel": ".model", "build_model": ".model", "render": ".render", "render_files": ".render",
         "template_dir": ".render"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["generate", "generate_files", "load", "write", "build_model", "ModuleModel", "TARGETS", "TARGET_TABLE",
           "Target", "get_target", "template_dir", "render", "render_files"]


def generate(loss: Loss, target: str = "numpy") -> str:
    """The source of a ``target`` module computing ``loss`` and its gradients (the main file for targets that
    write several; see :func:`generate_files`).

    Raises :class:`~symloss.errors.UnsupportedError` ("not supported: ...") when
    the loss uses a function the target cannot compute stably (a Bessel function,
    say), and :class:`~symloss.errors.InvalidIdentifierError` for a name that
    cannot appear in generated code.
    """
    from .model import build_model
    from .render import render

    return render(build_model(loss, target))


def generate_files(loss: Loss, target: str = "numpy") -> dict[str, str]:
    """Every file of the generated module, ``{file name: text}``, the main file first."""
    from .model import build_model
    from .render import render_files

    return render_files(build_model(loss, target))


def load(loss: Loss, target: str = "numpy") -> types.ModuleType:
    """The generated Python module, imported from memory (nothing is written).

    The source is compiled under the file name ``<symloss:NAME:TARGET>`` so that
    tracebacks name it; the source is registered with :mod:`linecache` and the
    module in ``sys.modules``, because ``inspect.getsource`` (Triton's ``@jit``,
    ``torch.compile``) needs both.  Importing it imports the target library.
    """
    spec = get_target(target)
    if spec.suffix != ".py":
        raise ValueError(f"load() imports Python modules; the {spec.library} target writes {spec.suffix} files")
    from .model import build_model
    from .render import render

    model = build_model(loss, target)
    source = render(model)
    name = f"symloss_generated_{target}_{model.module_name}"
    module = types.ModuleType(name)
    module.__file__ = f"<symloss:{loss.name}:{target}>"
    linecache.cache[module.__file__] = (len(source), None, source.splitlines(keepends=True), module.__file__)
    code = compile(source, module.__file__, "exec")
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)  # noqa: S102 (our own generated source, never user text)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def write(loss: Loss, target: str, path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write the generated module to ``path`` atomically; an existing file is replaced only with ``force``.

    A target with several files (C: the source and its header) writes the main file to ``path`` and each
    other one beside it, with the same stem and its own suffix (``out/loss.c`` → ``out/loss.h``, which
    the source includes by that name).  Nothing is written unless every file may be.  Returns ``path``.
    """
    from ..errors import FileExistsError_
    from ..fileio import write_text_atomic

    spec = get_target(target)
    if len(spec.files) == 1:
        return write_text_atomic(path, generate(loss, target), force=force)
    main = Path(path)
    stem = main.name[: -len(main.suffix)] if main.suffix else main.name
    from .model import build_model
    from .render import render_files

    texts = list(render_files(build_model(loss, target), stem=stem).values())
    paths = [main, *(main.with_name(stem + suffix) for suffix in list(spec.files)[1:])]
    if not force:
        for p in paths:
            if os.path.lexists(p):
                raise FileExistsError_(f"{p} exists; pass --force (force=True) to overwrite it")
    for p, text in reversed(list(zip(paths, texts))):  # the header first: a source never lacks its header
        write_text_atomic(p, text, force=force)
    return main
