"""Jinja2 rendering of the module templates.

The templates live in ``templates/`` at the repository root; a wheel carries
them as ``symloss/templates``.  The filters below only lay text out (fill a
docstring line, break a long signature); the code itself comes from the
templates and the printers.
"""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path
from typing import Any

import jinja2

import symloss

from ..errors import SymlossError

__all__ = ["template_dir", "environment", "render", "render_files", "render_text"]

#: A template every checkout and wheel has: how template_dir() recognises the directory.
_PROBE_TEMPLATE = "numpy_module.py.j2"


def template_dir() -> Path:
    """Where the templates are: inside the installed package first, then the checkout's top level."""
    package = Path(symloss.__file__).resolve().parent
    for candidate in (package / "templates", package.parent / "templates"):
        if (candidate / _PROBE_TEMPLATE).is_file():
            return candidate
    raise SymlossError(
        f"symloss's code templates are missing: looked in {package / 'templates'} and {package.parent / 'templates'}"
    )


def _fill(text: Any, indent: int = 4, width: int = 116) -> str:
    """Fill a line that carries its own leading indentation; continuation lines get ``indent`` spaces."""
    return textwrap.fill(str(text), width=width, subsequent_indent=" " * indent, break_long_words=False,
                         break_on_hyphens=False)


def _reflow(line: Any, width: int = 118) -> str:
    """A statement too long for one line, broken inside its outermost parentheses (the way black does it).

    Only for lines the templates write (signatures and calls of identifiers and keywords, no strings with
    spaces): the part inside the parentheses moves to its own, filled, lines.
    """
    line = str(line)
    if len(line) <= width or "(" not in line:
        return line
    indent = len(line) - len(line.lstrip(" "))
    head, rest = line.split("(", 1)
    body, tail = rest.rsplit(")", 1)
    inner = textwrap.fill(body.strip(), width=width, initial_indent=" " * (indent + 4),
                          subsequent_indent=" " * (indent + 4), break_long_words=False, break_on_hyphens=False)
    return f"{head}(\n{inner}\n{' ' * indent}){tail}"


def _statement(code: Any, head: str, width: int = 118) -> str:
    """``head`` + ``code`` (an expression) on one line, or, where too long, with the expression in parentheses
    broken across filled lines (printed code has no strings, so any space may become a line break)."""
    line = f"{head}{code}"
    return line if len(line) <= width else _reflow(f"{head}({code})", width)


def _docsafe(text: Any) -> str:
    """Text that cannot end a docstring or start an escape sequence."""
    return str(text).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _pyrepr(value: Any) -> str:
    """A Python literal; strings (identifiers here) in double quotes, as the rest of the module writes them."""
    if isinstance(value, str) and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return repr(value)


def _pytuple(values: Any) -> str:
    """A Python tuple literal of the values (strings quoted with double quotes)."""
    items = [_pyrepr(v) for v in values]
    if len(items) == 1:
        return f"({items[0]},)"
    return f"({', '.join(items)})"


def _pylist(values: Any) -> str:
    """A Python list literal of the values."""
    return "[" + ", ".join(_pyrepr(v) for v in values) + "]"


def _names_tuple(names: Any) -> str:
    """A tuple expression of the given identifiers: ``(a, b)``, ``(a,)``, ``()``."""
    names = list(names)
    if len(names) == 1:
        return f"({names[0]},)"
    return f"({', '.join(names)})"


def _dunder_all(names: Any) -> list[str]:
    """``__all__`` in isort order (constants, classes, then functions), as ruff's RUF022 wants it."""
    names = list(names)
    return sorted(names, key=lambda n: (0 if n.isupper() else 1 if n[:1].isupper() else 2, n))


def _partial(name: str) -> str:
    return f"∂ℓ/∂{name}"


def _grad_name(i: int) -> str:
    return f"_grad{i}"


def _c_class_axis(block: Any, model: Any, kind: str) -> str:
    """The C statements of a class-axis kernel (loops over the classes; see symloss.codegen.c_printer)."""
    from .c_printer import class_axis_body

    return class_axis_body(block, model, kind)


@functools.lru_cache(maxsize=4)
def environment(directory: str | None = None) -> jinja2.Environment:
    """The Jinja2 environment (strict undefined variables, no autoescaping: it renders Python)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory or str(template_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 (the output is Python source, not HTML)
    )
    env.filters.update(
        fill=_fill,
        reflow=_reflow,
        statement=_statement,
        docsafe=_docsafe,
        pyrepr=_pyrepr,
        pytuple=_pytuple,
        pylist=_pylist,
        names_tuple=_names_tuple,
        dunder_all=_dunder_all,
        partial=_partial,
        grad_name=_grad_name,
        c_class_axis=_c_class_axis,
    )
    return env


def render(model: Any) -> str:
    """The main file's source for a :class:`~symloss.codegen.model.ModuleModel`."""
    return next(iter(render_files(model).values()))


def render_files(model: Any, stem: str | None = None) -> dict[str, str]:
    """Every file of the module: ``{file name: text}``, the main file first (one file for Python targets).

    The files are named ``stem + suffix`` (``stem`` defaults to the module name); a file that names another
    (a C source including its header) uses the same stem.
    """
    from .targets import get_target

    target = get_target(model.target)
    stem = model.module_name if stem is None else stem
    env = environment()
    needs_math = model.uses_math or bool(target.math_helpers & set(model.helpers))
    context = dict(
        model=model,
        doc=model.doc,
        version=symloss.__version__,
        library=target.library,
        needs_math=needs_math,
        vector=model.vector,
        class_index=model.class_index_target,
        stem=stem,
    )
    return {stem + suffix: env.get_template(template).render(**context)
            for suffix, template in target.files.items()}


def render_text(template_name: str, **context: Any) -> str:
    """Render any template of the template directory (the catalog README)."""
    return environment().get_template(template_name).render(**context)
