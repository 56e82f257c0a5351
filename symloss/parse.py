"""A whitelist parser for formulas typed by users (densities, custom terms).

The text is never evaluated: it is read with :func:`ast.parse` (which only
builds a syntax tree), every node is checked against a small grammar, and the
SymPy expression is built node by node from the whitelisted functions in
:data:`FUNCTIONS`, the constants ``pi`` and ``e`` and the caller's variables.
``eval``, ``sympify`` and ``parse_expr`` are never called on the text.

Grammar::

    expr  := number | name | expr (+ - * / ** ^) expr | (+|-) expr | f(expr, ...)
           | where(cond, expr, expr)
    cond  := expr (< <= > >= == !=) expr ... | cond (and|or|&||) cond | not cond

``^`` means power (papers write ``x^2``): it is replaced by ``**`` in the text,
so it gets the precedence of a power (``2*x^2 + 1`` is ``2*x**2 + 1``).
Decimal literals become exact rationals (``0.5`` -> ``1/2``).

Hostile input is bounded: the text length, the bracket nesting (counted before
:func:`ast.parse`, which can exhaust the C stack), the number and depth of
syntax nodes, the size of literals, and the size of every numeric constant
SymPy would compute while building (``9**9**9``, ``factorial(10**9)``,
``exp(exp(exp(100)))`` and the like are rejected before SymPy starts on them).
"""

from __future__ import annotations

import ast
import math
import unicodedata
import warnings
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, NamedTuple

import mpmath
import sympy
from sympy import S
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.logic.boolalg import Boolean, BooleanAtom
from sympy.polys.polyerrors import BasePolynomialError

from .budget import run_with_budget
from .errors import ParseError, SymlossError, UnknownSymbolError, UnsafeExpressionError, closest
from .identifiers import GREEK_TO_ASCII

__all__ = [
    "parse_expression",
    "FUNCTIONS",
    "CONSTANTS",
    "UNICODE_REPLACEMENTS",
    "MAX_NESTING",
    "MAX_NODES",
    "MAX_LITERAL_DIGITS",
    "MAX_POWER_EXPONENT",
    "MAX_LOG10_MAGNITUDE",
]

# ---------------------------------------------------------------- limits

MAX_NESTING = 60  # brackets; checked on the text before ast.parse
MAX_NODES = 2000  # expression nodes of the syntax tree
MAX_DEPTH = 100  # syntax-tree depth, long chains of + - or * / counting as one level
MAX_LITERAL_DIGITS = 100
MAX_POWER_EXPONENT = 1000  # |exponent| of a power whose base and exponent are numbers
MAX_LOG10_MAGNITUDE = 1000  # numbers stay below 10**1000; numeric powers also above 10**-1000
MAX_EXACT_DIGITS = 10_000  # digits of the exact rationals SymPy may have to compute
MAX_ROOT_DIGITS = 300  # digits under a fractional power: SymPy factors them (slow beyond)
EXP_ARG_LIMIT = 2500  # |x| for exp-like functions of a number: exp(2500) ~ 10**1086
FACTORIAL_ARG_LIMIT = 1000  # gamma(n), factorial(n)... of a number are computed exactly
BUILD_BUDGET = 2.0  # seconds; a backstop only: the limits above keep building in milliseconds

# ---------------------------------------------------------------- whitelist


def _sigmoid(x: sympy.Expr) -> sympy.Expr:
    return 1 / (1 + sympy.exp(-x))


def _softplus(x: sympy.Expr) -> sympy.Expr:
    return sympy.log(1 + sympy.exp(x))


def _logaddexp(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    return sympy.log(sympy.exp(a) + sympy.exp(b))


# log1p/expm1 are spelled out: SymPy differentiates, simplifies and integrates these
# forms; code generation turns them back into log1p/expm1 where it matters
def _log1p(x: sympy.Expr) -> sympy.Expr:
    return sympy.log(1 + x)


def _expm1(x: sympy.Expr) -> sympy.Expr:
    return sympy.exp(x) - 1


def _log2(x: sympy.Expr) -> sympy.Expr:
    return sympy.log(x, 2)


def _log10(x: sympy.Expr) -> sympy.Expr:
    return sympy.log(x, 10)


def _where(cond: Boolean, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    return sympy.Piecewise((a, cond), (b, True))


Arity = tuple[int, int | None]  # (fewest, most) arguments; None: no upper bound

#: Whitelisted functions: name -> (SymPy callable, (fewest, most) arguments).
#: ``where(cond, a, b)`` is ``Piecewise((a, cond), (b, True))``; its first
#: argument is the only place where comparisons and and/or/not are allowed.
FUNCTIONS: Mapping[str, tuple[Callable[..., Any], Arity]] = MappingProxyType(
    {
        "abs": (sympy.Abs, (1, 1)),
        "exp": (sympy.exp, (1, 1)),
        "log": (sympy.log, (1, 2)),  # log(x) or log(x, base)
        "log1p": (_log1p, (1, 1)),
        "expm1": (_expm1, (1, 1)),
        "log2": (_log2, (1, 1)),
        "log10": (_log10, (1, 1)),
        "sqrt": (sympy.sqrt, (1, 1)),
        "sin": (sympy.sin, (1, 1)),
        "cos": (sympy.cos, (1, 1)),
        "tan": (sympy.tan, (1, 1)),
        "asin": (sympy.asin, (1, 1)),
        "acos": (sympy.acos, (1, 1)),
        "atan": (sympy.atan, (1, 1)),
        "sinh": (sympy.sinh, (1, 1)),
        "cosh": (sympy.cosh, (1, 1)),
        "tanh": (sympy.tanh, (1, 1)),
        "sech": (sympy.sech, (1, 1)),
        "asinh": (sympy.asinh, (1, 1)),
        "acosh": (sympy.acosh, (1, 1)),
        "atanh": (sympy.atanh, (1, 1)),
        "erf": (sympy.erf, (1, 1)),
        "erfc": (sympy.erfc, (1, 1)),
        "gamma": (sympy.gamma, (1, 1)),
        "lgamma": (sympy.loggamma, (1, 1)),
        "loggamma": (sympy.loggamma, (1, 1)),
        "beta": (sympy.beta, (2, 2)),
        "besseli": (sympy.besseli, (2, 2)),  # besseli(nu, z)
        "factorial": (sympy.factorial, (1, 1)),
        "binomial": (sympy.binomial, (2, 2)),
        "sigmoid": (_sigmoid, (1, 1)),
        "softplus": (_softplus, (1, 1)),
        "logaddexp": (_logaddexp, (2, 2)),
        "min": (sympy.Min, (2, None)),
        "max": (sympy.Max, (2, None)),
        "sign": (sympy.sign, (1, 1)),
        "heaviside": (sympy.Heaviside, (1, 1)),
        "where": (_where, (3, 3)),
    }
)

#: Named constants; a variable of the same name wins.
CONSTANTS: Mapping[str, sympy.Expr] = MappingProxyType({"pi": sympy.pi, "e": sympy.E})

#: Text replaced before parsing: ``^`` (power, as papers write it), characters pasted
#: from papers, and whitespace (a formula may span lines).  Greek letters become their
#: ASCII names (see :data:`symloss.identifiers.GREEK_TO_ASCII`; λ is ``lam``, as
#: ``lambda`` is a Python keyword); any other non-ASCII character is an error.
UNICODE_REPLACEMENTS: Mapping[str, str] = MappingProxyType(
    {
        "^": "**",
        "\u2212": "-",  # minus sign
        "\u00d7": "*",  # multiplication sign
        "\u00b7": "*",  # middle dot
        "\u22c5": "*",  # dot operator
        "\u00f7": "/",
        "\u00b2": "**2",
        "\u00b3": "**3",
        "\u2264": "<=",
        "\u2265": ">=",
        "\u2260": "!=",
        "\u00a0": " ",  # no-break space
        "\u2009": " ",  # thin space
        "\u202f": " ",  # narrow no-break space
        "\t": " ",
        "\n": " ",
        "\r": " ",
        "\f": " ",
        "\v": " ",
    }
)

_NON_FINITE_NAMES = frozenset({"nan", "NaN", "NAN", "inf", "Inf", "INF", "infinity", "Infinity", "oo", "zoo"})

# functions whose numeric arguments are bounded before SymPy sees them
_EXP_FAMILY = frozenset({"exp", "expm1", "sigmoid", "softplus", "logaddexp"})  # build exp(arg)
_EXP_LIKE_ARGS = frozenset({"sinh", "cosh", "tanh", "sech", "erf", "erfc"})
_FACTORIAL_LIKE = frozenset({"gamma", "lgamma", "loggamma", "factorial", "binomial", "beta"})

_COMPARE = {
    ast.Lt: sympy.StrictLessThan,
    ast.LtE: sympy.LessThan,
    ast.Gt: sympy.StrictGreaterThan,
    ast.GtE: sympy.GreaterThan,
    ast.Eq: sympy.Eq,
    ast.NotEq: sympy.Ne,
}
_OPERATOR_TEXT = {
    ast.Mod: "%",
    ast.FloorDiv: "//",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.Invert: "~",
    ast.Not: "not",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}
_FORBIDDEN = {
    ast.Subscript: "subscripts",
    ast.Slice: "slices",
    ast.Lambda: "lambda expressions",
    ast.ListComp: "list comprehensions",
    ast.SetComp: "set comprehensions",
    ast.DictComp: "dict comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.JoinedStr: "f-strings",
    ast.FormattedValue: "f-strings",
    ast.Starred: "starred expressions",
    ast.Dict: "dict displays",
    ast.Set: "set displays",
    ast.List: "list displays",
    ast.Tuple: "tuples",
    ast.NamedExpr: "assignment expressions (':=')",
    ast.IfExp: "conditional expressions ('a if c else b')",
    ast.Await: "'await' expressions",
    ast.Yield: "'yield' expressions",
    ast.YieldFrom: "'yield from' expressions",
}
_STATEMENT_KEYWORDS = frozenset(
    "import from def class del global nonlocal assert raise return pass break continue for while with try "
    "if elif else async".split()
)
_SYMPY_ERRORS = (
    TypeError,
    ValueError,
    ArithmeticError,
    NotImplementedError,
    AttributeError,
    IndexError,
    KeyError,
    RecursionError,
    BasePolynomialError,
)

_LOG10_2 = math.log10(2)


# ---------------------------------------------------------------- public entry point


def parse_expression(text: str, *, variables: Mapping[str, sympy.Symbol], max_length: int = 4000) -> sympy.Expr:
    """Parse a formula typed by a user into a SymPy expression over ``variables``.

    ``variables`` maps each name the formula may use to its symbol; ``pi`` and
    ``e`` are constants unless a variable has that name.  Functions are the
    ones in :data:`FUNCTIONS`.  For example::

        parse_expression("exp(-abs(y - mu)/b) / (2*b)", variables={"y": y, "mu": mu, "b": b})

    Raises :class:`~symloss.errors.ParseError` for text that cannot be read
    (syntax, size, unknown characters), :class:`~symloss.errors.UnsafeExpressionError`
    for constructs outside the whitelist (attribute access, calls of other
    functions, comprehensions, ...) and :class:`~symloss.errors.UnknownSymbolError`
    (a ParseError and an UnknownNameError) for names that are neither
    variables nor constants.  Nothing in the text is ever executed.
    """
    if not isinstance(text, str):
        raise ParseError(f"a formula must be text, not {type(text).__name__}")
    _check_variables(variables)
    if len(text) > max_length:
        raise ParseError(f"the formula is too long ({len(text)} characters; the limit is {max_length})")
    source, origin = _translate(text)
    lead = len(source) - len(source.lstrip(" "))
    source, origin = source[lead:].rstrip(" "), origin[lead:]
    if not source:
        raise ParseError("the formula is empty")
    _check_nesting(source, origin)
    tree = _ast_parse(text, source, origin)
    _Checker(source, variables).check(tree.body)
    builder = _Builder(source, variables)
    expr = run_with_budget(lambda: builder.build(tree.body).expr, BUILD_BUDGET, "parsing the formula")
    if not isinstance(expr, sympy.Expr):
        raise ParseError(f"the formula must be an expression, not {type(expr).__name__}")
    allowed = set(variables.values())
    if not expr.free_symbols <= allowed:  # an invariant of the builder, kept under `python -O` too
        raise AssertionError(f"parse_expression produced foreign symbols {expr.free_symbols - allowed}")
    return expr


# ---------------------------------------------------------------- text-level checks


def _check_variables(variables: Mapping[str, sympy.Symbol]) -> None:
    if not isinstance(variables, Mapping):
        raise TypeError("variables must be a mapping from names to sympy.Symbol")
    for name, sym in variables.items():
        if not isinstance(name, str) or not isinstance(sym, sympy.Symbol):
            raise TypeError(f"variables must map names (str) to sympy.Symbol; got {name!r}: {type(sym).__name__}")


def _describe_char(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"{ch!r} (U+{ord(ch):04X}{' ' + name if name else ''})"


def _translate(text: str) -> tuple[str, list[int]]:
    """Paste-friendly replacements; returns ASCII text and, per character, its index in ``text``.

    Every other non-ASCII character is rejected: Python's parser NFKC-normalises
    identifiers, so a look-alike such as '𝐱' would silently become 'x'.
    """
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        rep = UNICODE_REPLACEMENTS.get(ch) or GREEK_TO_ASCII.get(ch)
        if rep is None:
            if not (" " <= ch <= "~"):
                raise ParseError(f"the character {_describe_char(ch)} at column {i + 1} is not allowed in a formula")
            rep = ch
        out.append(rep)
        origin.extend([i] * len(rep))
    return "".join(out), origin


def _check_nesting(source: str, origin: list[int]) -> None:
    # ast.parse recurses on nested brackets and may exhaust the C stack: count them first
    depth = 0
    for i, ch in enumerate(source):
        if ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                raise ParseError(
                    f"the formula is nested too deeply (more than {MAX_NESTING} levels of brackets, "
                    f"at column {origin[i] + 1})"
                )
        elif ch in ")]}":
            depth = max(depth - 1, 0)


def _caret(text: str, column: int) -> str:
    if len(text) > 100:
        return ""
    shown = "".join(" " if ch in "\t\n\r\f\v" else ch for ch in text)
    return f"\n  {shown}\n  {' ' * (column - 1)}^"


def _ast_parse(text: str, source: str, origin: list[int]) -> ast.Expression:
    try:
        with warnings.catch_warnings():
            # "invalid decimal literal" and the like: the text is rejected or read anyway
            warnings.simplefilter("ignore", SyntaxWarning)
            return ast.parse(source, mode="eval")
    except SyntaxError as exc:
        offset = exc.offset if exc.lineno == 1 and exc.offset else 1
        column = origin[min(max(offset - 1, 0), len(origin) - 1)] + 1
        first = source.split(None, 1)[0] if source.split() else ""
        first = first.split("(", 1)[0]
        if first in _STATEMENT_KEYWORDS:
            hint = f"; statements such as {first!r} are not allowed: a formula is a single expression"
        else:
            hint = ""
        raise ParseError(f"syntax error at column {column}: {exc.msg}{hint}{_caret(text, column)}") from None
    except (RecursionError, MemoryError):
        raise ParseError("the formula is nested too deeply to be read") from None
    except ValueError as exc:  # e.g. integer literals beyond Python's digit limit
        raise ParseError(f"the formula could not be read: {exc}") from None


def _snippet(source: str, node: ast.AST, limit: int = 60) -> str:
    start, end = getattr(node, "col_offset", None), getattr(node, "end_col_offset", None)
    if start is None or end is None:
        return ast.unparse(node)[:limit] if isinstance(node, ast.AST) else "?"
    text = source[start:end]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _arity_text(name: str, arity: Arity) -> str:
    low, high = arity
    if high is None:
        return f"{name}() takes at least {low} arguments"
    if low == high:
        return f"{name}() takes exactly {low} argument{'' if low == 1 else 's'}"
    joiner = "or" if high - low == 1 else "to"
    return f"{name}() takes {low} {joiner} {high} arguments"


# ---------------------------------------------------------------- syntax-tree check (no SymPy)

_EXPR, _COND = "expression", "condition"


class _Checker:
    """Checks every node against the grammar, iteratively (no recursion on hostile depth)."""

    def __init__(self, source: str, variables: Mapping[str, sympy.Symbol]):
        self.source = source
        self.variables = variables

    def check(self, root: ast.expr) -> None:
        stack: list[tuple[ast.AST, str, int]] = [(root, _EXPR, 1)]
        count = 0
        while stack:
            node, context, depth = stack.pop()
            count += 1
            if count > MAX_NODES:
                raise ParseError(f"the formula is too large (more than {MAX_NODES} syntax nodes)")
            if depth > MAX_DEPTH:
                raise ParseError(f"the formula is nested too deeply (more than {MAX_DEPTH} levels)")
            children = self._check_node(node, context)
            for child, child_context, step in reversed(children):
                stack.append((child, child_context, depth + step))

    def _unsafe(self, node: ast.AST, what: str) -> UnsafeExpressionError:
        return UnsafeExpressionError(f"{what} are not allowed in a formula: {_snippet(self.source, node)!r}")

    def _check_node(self, node: ast.AST, context: str) -> list[tuple[ast.AST, str, int]]:
        if isinstance(node, ast.Attribute):
            raise UnsafeExpressionError(f"attribute access ('.{node.attr}') is not allowed in a formula")
        if type(node) in _FORBIDDEN:
            err = self._unsafe(node, _FORBIDDEN[type(node)])
            if isinstance(node, ast.IfExp):
                err = UnsafeExpressionError(f"{err}; use where(condition, a, b)")
            raise err
        if isinstance(node, ast.Constant):
            _check_constant(node, self.source)
            return self._not_a_condition(node, context)
        if isinstance(node, ast.Name):
            self._check_name(node)
            return self._not_a_condition(node, context)
        if isinstance(node, ast.Call):
            return self._check_call(node, context)
        if isinstance(node, ast.BinOp):
            return self._check_binop(node, context)
        if isinstance(node, ast.UnaryOp):
            return self._check_unary(node, context)
        if isinstance(node, ast.Compare):
            return self._check_compare(node, context)
        if isinstance(node, ast.BoolOp):
            word = "and" if isinstance(node.op, ast.And) else "or"
            if context != _COND:
                raise self._condition_only(node, f"'{word}'")
            return [(value, _COND, 1) for value in node.values]
        raise UnsafeExpressionError(
            f"{type(node).__name__} expressions ({_snippet(self.source, node)!r}) are not allowed in a formula"
        )

    def _condition_only(self, node: ast.AST, what: str) -> UnsafeExpressionError:
        return UnsafeExpressionError(
            f"{what} is only allowed in the condition (first argument) of where(condition, a, b); "
            f"found in {_snippet(self.source, node)!r}"
        )

    def _not_a_condition(self, node: ast.AST, context: str) -> list[tuple[ast.AST, str, int]]:
        if context == _COND:
            raise ParseError(
                "the condition of where() must be a comparison such as 'y > 0' (possibly combined with "
                f"and, or, not, &, |); got {_snippet(self.source, node)!r}"
            )
        return []

    def _check_name(self, node: ast.Name) -> None:
        name = node.id
        if name.startswith("__"):
            raise UnsafeExpressionError(f"names starting with '__' ({name!r}) are not allowed in a formula")
        if name in self.variables or name in CONSTANTS:
            return
        if name in FUNCTIONS:
            raise ParseError(f"{name!r} is a function: call it with arguments, e.g. {name}(x)")
        if name in _NON_FINITE_NAMES:
            raise ParseError(f"{name!r} is not allowed in a formula: only finite numbers are")
        choices = [*self.variables, *(c for c in CONSTANTS if c not in self.variables)]
        raise UnknownSymbolError("name", name, choices)

    def _check_call(self, node: ast.Call, context: str) -> list[tuple[ast.AST, str, int]]:
        func = node.func
        if isinstance(func, ast.Attribute):
            raise UnsafeExpressionError(f"attribute access ('.{func.attr}') is not allowed in a formula")
        if not isinstance(func, ast.Name):
            raise UnsafeExpressionError(
                "calls are only allowed to whitelisted functions by name; "
                f"{_snippet(self.source, func)!r} is not one of them"
            )
        name = func.id
        if name.startswith("__"):
            raise UnsafeExpressionError(f"names starting with '__' ({name!r}) are not allowed in a formula")
        if name not in FUNCTIONS:
            hints = []
            if name in self.variables:
                hints.append(f"{name!r} is a variable: write {name}*(...) to multiply")
            near = closest(name, FUNCTIONS)
            if near:
                hints.append(f"did you mean {' or '.join(repr(n) for n in near)}?")
            hints.append(f"allowed: {', '.join(sorted(FUNCTIONS))}")
            raise UnsafeExpressionError(
                f"calls are only allowed to whitelisted functions; {name!r} is not one of them ({'; '.join(hints)})"
            )
        for kw in node.keywords:
            shown = f"{kw.arg}=" if kw.arg else "**"
            raise UnsafeExpressionError(f"keyword arguments ({shown!r} in {name}()) are not allowed in a formula")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self._unsafe(arg, "starred arguments")
        low, high = FUNCTIONS[name][1]
        given = len(node.args)
        if given < low or (high is not None and given > high):
            raise ParseError(f"{_arity_text(name, (low, high))} ({given} given)")
        self._not_a_condition(node, context)
        if name == "where":
            return [(node.args[0], _COND, 1), (node.args[1], _EXPR, 1), (node.args[2], _EXPR, 1)]
        return [(arg, _EXPR, 1) for arg in node.args]

    def _check_binop(self, node: ast.BinOp, context: str) -> list[tuple[ast.AST, str, int]]:
        op = type(node.op)
        if op in (ast.BitAnd, ast.BitOr):
            if context != _COND:
                err = self._condition_only(node, f"{_OPERATOR_TEXT[op]!r}")
                raise UnsafeExpressionError(
                    f"{err}; note that '&' and '|' bind tighter than comparisons: write (a > 0) & (b < 1)"
                )
            return [(node.left, _COND, 1), (node.right, _COND, 1)]
        if op not in (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow):
            raise UnsafeExpressionError(
                f"the operator {_OPERATOR_TEXT.get(op, op.__name__)!r} is not allowed in a formula "
                f"(in {_snippet(self.source, node)!r}); use + - * / ** ^"
            )
        self._not_a_condition(node, context)
        # a long chain a + b - c + ... (or a * b / c ...) is built flat: one level, not one per term
        left_step = 0 if _same_chain(node, node.left) else 1
        return [(node.left, _EXPR, left_step), (node.right, _EXPR, 1)]

    def _check_unary(self, node: ast.UnaryOp, context: str) -> list[tuple[ast.AST, str, int]]:
        op = type(node.op)
        if op is ast.Not:
            if context != _COND:
                raise self._condition_only(node, "'not'")
            return [(node.operand, _COND, 1)]
        if op is ast.Invert:
            raise UnsafeExpressionError(
                f"the operator '~' is not allowed in a formula (in {_snippet(self.source, node)!r})"
            )
        self._not_a_condition(node, context)
        return [(node.operand, _EXPR, 1)]

    def _check_compare(self, node: ast.Compare, context: str) -> list[tuple[ast.AST, str, int]]:
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise UnsafeExpressionError(
                    f"the operator {_OPERATOR_TEXT.get(type(op), '?')!r} is not allowed in a formula "
                    f"(in {_snippet(self.source, node)!r}); compare with < <= > >= == !="
                )
        if context != _COND:
            raise self._condition_only(node, f"a comparison ({_OPERATOR_TEXT[type(node.ops[0])]!r})")
        return [(node.left, _EXPR, 1), *((c, _EXPR, 1) for c in node.comparators)]


def _same_chain(node: ast.BinOp, child: ast.AST) -> bool:
    if not isinstance(child, ast.BinOp):
        return False
    additive = (ast.Add, ast.Sub)
    multiplicative = (ast.Mult, ast.Div)
    return (isinstance(node.op, additive) and isinstance(child.op, additive)) or (
        isinstance(node.op, multiplicative) and isinstance(child.op, multiplicative)
    )


def _check_constant(node: ast.Constant, source: str) -> None:
    value = node.value
    if isinstance(value, bool):
        raise UnsafeExpressionError(f"boolean literals ({value!r}) are not allowed in a formula")
    if isinstance(value, int):
        if value.bit_length() > 3 * MAX_LITERAL_DIGITS + 20 or len(str(value)) > MAX_LITERAL_DIGITS:
            raise ParseError(f"integer literals are limited to {MAX_LITERAL_DIGITS} digits")
        return
    if isinstance(value, float):
        _decimal_literal(node, source)
        return
    kinds = {str: "string literals", bytes: "bytes literals", complex: "complex literals"}
    what = kinds.get(type(value), f"literals such as {value!r}")
    raise UnsafeExpressionError(f"{what} are not allowed in a formula: {_snippet(source, node)!r}")


def _decimal_literal(node: ast.Constant, source: str) -> sympy.Rational:
    """The exact value of a decimal literal as typed (``0.1`` -> 1/10, not the nearest double)."""
    text = _snippet(source, node, limit=10**9).replace("_", "")
    value = node.value
    if not math.isfinite(value):
        raise ParseError(f"the number {text!r} is too large (it overflows a double)")
    try:
        dec = Decimal(text)
    except InvalidOperation:  # not expected: ast accepted it as a float literal
        raise ParseError(f"cannot read the number {text!r}") from None
    if len(dec.as_tuple().digits) > MAX_LITERAL_DIGITS:
        raise ParseError(f"decimal literals are limited to {MAX_LITERAL_DIGITS} digits")
    if value == 0.0 and dec != 0:
        raise ParseError(f"the number {text!r} is too small (it underflows a double to 0)")
    num, den = dec.as_integer_ratio()
    return sympy.Rational(num, den)


# ---------------------------------------------------------------- numeric sizes


class _ValueProblem(Exception):
    """A numeric constant that is undefined or too large; the builder adds where it occurs."""


def _mp_context() -> mpmath.ctx_mp.MPContext:
    ctx = mpmath.MPContext()  # a private context: the global mpmath.mp keeps its precision
    ctx.dps = 30
    return ctx


_MP = _mp_context()


def _rational_digits(expr: sympy.Basic) -> int:
    total = 0
    for atom in expr.atoms(sympy.Rational):
        total += _int_digits(atom.p) + _int_digits(atom.q)
    return total


def _int_digits(n: int) -> int:
    return int(abs(n).bit_length() * _LOG10_2) + 1


def _guard_exp(x: Any, what: str) -> None:
    if abs(_MP.re(x)) > EXP_ARG_LIMIT:
        raise _ValueProblem(f"{what} of a number larger than {EXP_ARG_LIMIT} in magnitude would overflow")


def _guard_trig(x: Any, what: str) -> None:
    if abs(_MP.im(x)) > EXP_ARG_LIMIT:
        raise _ValueProblem(f"{what} of a number with an imaginary part beyond {EXP_ARG_LIMIT} would overflow")


def _guard_any(x: Any, what: str) -> None:
    if abs(x) > EXP_ARG_LIMIT:
        raise _ValueProblem(f"{what} of a number larger than {EXP_ARG_LIMIT} in magnitude is not supported")


def _guard_large(x: Any, what: str) -> None:
    if abs(x) > 10**6:
        raise _ValueProblem(f"{what} of a number larger than 10**6 is not supported")


def _mp_heaviside(x: Any, h0: Any = None) -> Any:
    x = _MP.re(x)
    if x > 0:
        return _MP.mpf(1)
    if x < 0:
        return _MP.mpf(0)
    return _MP.mpf(0.5) if h0 is None else h0


def _unary(fn: Callable[[Any], Any], guard: Callable[[Any, str], None] | None, name: str):
    def compute(vals: list[Any]) -> Any:
        if guard is not None:
            guard(vals[0], name)
        return fn(vals[0])

    return compute


def _bessel(fn: Callable[[Any, Any], Any], name: str):
    def compute(vals: list[Any]) -> Any:
        _guard_large(vals[0], name)
        _guard_any(vals[1], name)
        return fn(vals[0], vals[1])

    return compute


def _real_parts(vals: list[Any]) -> list[Any]:
    return [_MP.re(v) for v in vals]


# SymPy class -> how to compute a value of the same size with mpmath (SymPy rewrites
# whitelisted functions into others, e.g. cosh(I*x) -> cos(x), erf(I*x) -> I*erfi(x))
_MP_FUNCTIONS: dict[type, Callable[[list[Any]], Any]] = {
    sympy.exp: _unary(_MP.exp, _guard_exp, "exp"),
    sympy.log: _unary(_MP.log, None, "log"),
    sympy.Abs: _unary(abs, None, "abs"),
    sympy.sign: _unary(_MP.sign, None, "sign"),
    sympy.re: _unary(_MP.re, None, "re"),
    sympy.im: _unary(_MP.im, None, "im"),
    sympy.conjugate: _unary(_MP.conj, None, "conjugate"),
    sympy.arg: _unary(_MP.arg, None, "arg"),
    sympy.sin: _unary(_MP.sin, _guard_trig, "sin"),
    sympy.cos: _unary(_MP.cos, _guard_trig, "cos"),
    sympy.tan: _unary(_MP.tan, _guard_trig, "tan"),
    sympy.cot: _unary(_MP.cot, _guard_trig, "cot"),
    sympy.sec: _unary(_MP.sec, _guard_trig, "sec"),
    sympy.csc: _unary(_MP.csc, _guard_trig, "csc"),
    sympy.sinh: _unary(_MP.sinh, _guard_exp, "sinh"),
    sympy.cosh: _unary(_MP.cosh, _guard_exp, "cosh"),
    sympy.tanh: _unary(_MP.tanh, _guard_exp, "tanh"),
    sympy.coth: _unary(_MP.coth, _guard_exp, "coth"),
    sympy.sech: _unary(_MP.sech, _guard_exp, "sech"),
    sympy.csch: _unary(_MP.csch, _guard_exp, "csch"),
    sympy.asin: _unary(_MP.asin, None, "asin"),
    sympy.acos: _unary(_MP.acos, None, "acos"),
    sympy.atan: _unary(_MP.atan, None, "atan"),
    sympy.acot: _unary(_MP.acot, None, "acot"),
    sympy.asinh: _unary(_MP.asinh, None, "asinh"),
    sympy.acosh: _unary(_MP.acosh, None, "acosh"),
    sympy.atanh: _unary(_MP.atanh, None, "atanh"),
    sympy.erf: _unary(_MP.erf, _guard_any, "erf"),
    sympy.erfc: _unary(_MP.erfc, _guard_any, "erfc"),
    sympy.erfi: _unary(_MP.erfi, _guard_any, "erfi"),
    sympy.gamma: _unary(_MP.gamma, _guard_large, "gamma"),
    sympy.loggamma: _unary(_MP.loggamma, _guard_large, "loggamma"),
    sympy.factorial: _unary(_MP.factorial, _guard_large, "factorial"),
    sympy.binomial: lambda v: (_guard_large(v[0], "binomial"), _guard_large(v[1], "binomial"), _MP.binomial(*v))[-1],
    sympy.beta: lambda v: (_guard_large(v[0], "beta"), _guard_large(v[1], "beta"), _MP.beta(*v))[-1],
    sympy.besseli: _bessel(_MP.besseli, "besseli"),
    sympy.besselj: _bessel(_MP.besselj, "besselj"),
    sympy.Heaviside: lambda v: _mp_heaviside(*v),
    sympy.Min: lambda v: min(_real_parts(v)),
    sympy.Max: lambda v: max(_real_parts(v)),
    sympy.Add: lambda v: _MP.fsum(v),
    sympy.Mul: lambda v: _MP.fprod(v),
}


def _mp_power(base: Any, exponent: Any) -> Any:
    if base == 0:
        if _MP.re(exponent) > 0:
            return _MP.mpf(0)
        raise _ValueProblem("0 raised to a non-positive power is undefined")
    log10 = _MP.re(exponent * _MP.log(base)) / _MP.ln10
    if log10 > MAX_LOG10_MAGNITUDE:
        raise _ValueProblem(f"a number of about 10**{int(log10)} is too large")
    if log10 < -100 * MAX_LOG10_MAGNITUDE:
        raise _ValueProblem(f"a number of about 10**{int(log10)} is too small")
    return _MP.power(base, exponent)


class _Numeric:
    """Approximate values (mpmath, 30 digits) of the numeric subexpressions SymPy builds.

    ``value(expr)`` is None for expressions with symbols.  Every numeric
    subexpression is checked to be finite and below 10**1000, so that SymPy,
    which compares and evaluates numbers on its own while building, never
    meets a number like exp(exp(exp(100))) that it cannot handle in time.
    Memoised, and iterative: a node is computed once, after its arguments.
    """

    def __init__(self) -> None:
        self.memo: dict[sympy.Basic, Any] = {}

    def value(self, expr: sympy.Basic) -> Any:
        memo = self.memo
        if expr in memo:
            return memo[expr]
        stack: list[tuple[sympy.Basic, bool]] = [(expr, False)]
        while stack:
            node, ready = stack.pop()
            if node in memo:
                continue
            if not ready:
                stack.append((node, True))
                stack.extend((a, False) for a in node.args if a not in memo)
                continue
            memo[node] = self._compute(node, [memo[a] for a in node.args])
        return memo[expr]

    def _compute(self, node: sympy.Basic, vals: list[Any]) -> Any:
        if isinstance(node, (sympy.Symbol, Boolean, ExprCondPair)):
            return None
        if isinstance(node, sympy.Piecewise):
            branches = [self.memo[pair.expr] for pair in node.args]
            if any(b is None for b in branches):
                return None
            return max(branches, key=abs)  # the largest branch stands for the whole
        if node.is_Rational:
            if _int_digits(node.p) + _int_digits(node.q) > MAX_EXACT_DIGITS:
                raise _ValueProblem(f"an exact number with more than {MAX_EXACT_DIGITS} digits is too large")
            return self._checked(_MP.mpf(node.p) / node.q)
        if node is S.NaN or node is S.ComplexInfinity or node is S.Infinity or node is S.NegativeInfinity:
            raise _ValueProblem("an undefined or infinite value (a division by zero, log(0), ...)")
        if node is sympy.I:
            return _MP.mpc(0, 1)
        if node.is_Float:
            return self._checked(_MP.make_mpf(node._mpf_))
        if isinstance(node, sympy.NumberSymbol):
            return _MP.make_mpf(node._as_mpf_val(_MP.prec + 20))
        if any(v is None for v in vals):
            return None
        try:
            if isinstance(node, sympy.Pow):
                return self._checked(_mp_power(vals[0], vals[1]))
            compute = _MP_FUNCTIONS.get(type(node))
            if compute is not None:
                return self._checked(compute(vals))
        except (ValueError, ZeroDivisionError, ArithmeticError, TypeError) as exc:
            raise _ValueProblem(f"an undefined value ({exc})") from None
        return self._fallback(node, vals)

    def _fallback(self, node: sympy.Basic, vals: list[Any]) -> Any:
        # a class SymPy produced that the table does not know: evalf, with small arguments only
        if not getattr(node, "is_number", False):
            return None
        if any(abs(v) > EXP_ARG_LIMIT for v in vals):
            raise _ValueProblem(f"cannot bound the size of {type(node).__name__}() of large numbers")
        try:
            approx = complex(node.evalf(30))
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise _ValueProblem(f"cannot bound the size of {type(node).__name__}(): {exc}") from None
        return self._checked(_MP.mpc(approx) if approx.imag else _MP.mpf(approx.real))

    @staticmethod
    def _checked(v: Any) -> Any:
        if _MP.isnan(v) or _MP.isinf(v):
            raise _ValueProblem("an undefined or infinite value (a division by zero, log(0), ...)")
        if v != 0 and _MP.mag(v) * _LOG10_2 > MAX_LOG10_MAGNITUDE + 1:
            raise _ValueProblem(f"a number of about 10**{int(_MP.mag(v) * _LOG10_2)} is too large")
        return v


# ---------------------------------------------------------------- building the SymPy expression


class _Built(NamedTuple):
    expr: Any  # sympy.Expr, or a Boolean inside where()
    digits: int  # upper bound on the digits of the exact numbers SymPy may compute here
    roots: int  # digits of numbers under fractional powers (SymPy factors them)


class _Builder:
    """Turns a checked syntax tree into SymPy, bounding every numeric step before SymPy runs it."""

    def __init__(self, source: str, variables: Mapping[str, sympy.Symbol]):
        self.source = source
        self.variables = variables
        self.num = _Numeric()

    # -- helpers

    def _where(self, node: ast.AST) -> str:
        return repr(_snippet(self.source, node))

    def _value(self, expr: sympy.Basic, node: ast.AST) -> Any:
        try:
            return self.num.value(expr)
        except _ValueProblem as exc:
            raise ParseError(f"{exc} in {self._where(node)}") from None

    def _finish(self, expr: Any, digits: int, roots: int, node: ast.AST) -> _Built:
        self._value(expr, node)  # checks every new numeric subexpression
        return _Built(expr, digits, roots)

    def _too_big(self, node: ast.AST, why: str) -> ParseError:
        return ParseError(f"{why} in {self._where(node)}")

    def _check_digits(self, parts: list[_Built], node: ast.AST) -> None:
        if sum(p.digits for p in parts) > MAX_EXACT_DIGITS:
            # the estimate is an upper bound: count the digits really there before refusing
            if sum(_rational_digits(p.expr) for p in parts) > MAX_EXACT_DIGITS:
                raise self._too_big(node, f"numeric constants with more than {MAX_EXACT_DIGITS} digits in all")
        if sum(p.roots for p in parts) > MAX_ROOT_DIGITS:
            raise self._too_big(node, f"roots of numbers with more than {MAX_ROOT_DIGITS} digits in all")

    # -- dispatch

    def build(self, node: ast.AST) -> _Built:
        try:
            if isinstance(node, ast.Constant):
                return self._constant(node)
            if isinstance(node, ast.Name):
                return _Built(self.variables[node.id] if node.id in self.variables else CONSTANTS[node.id], 0, 0)
            if isinstance(node, ast.UnaryOp):
                operand = self.build(node.operand)
                expr = -operand.expr if isinstance(node.op, ast.USub) else operand.expr
                return self._finish(expr, operand.digits, operand.roots, node)
            if isinstance(node, ast.BinOp):
                if isinstance(node.op, (ast.Add, ast.Sub)):
                    return self._sum(node)
                if isinstance(node.op, (ast.Mult, ast.Div)):
                    return self._product(node)
                return self._power(self.build(node.left), self.build(node.right), node)
            if isinstance(node, ast.Call):
                return self._call(node)
        except SymlossError:
            raise
        except _SYMPY_ERRORS as exc:
            raise ParseError(f"cannot build {self._where(node)}: {type(exc).__name__}: {exc}") from None
        raise AssertionError(f"unchecked node {type(node).__name__}")  # _Checker lets no other node through

    def _constant(self, node: ast.Constant) -> _Built:
        if isinstance(node.value, float):
            value = _decimal_literal(node, self.source)
        else:
            value = sympy.Integer(node.value)
        return _Built(value, _rational_digits(value), 0)

    @staticmethod
    def _chain(node: ast.BinOp, ops: tuple[type, ...]) -> tuple[ast.AST, list[tuple[ast.operator, ast.AST]]]:
        # a - b + c parses as ((a - b) + c): walk the left spine instead of recursing
        rest: list[tuple[ast.operator, ast.AST]] = []
        current: ast.AST = node
        while isinstance(current, ast.BinOp) and isinstance(current.op, ops):
            rest.append((current.op, current.right))
            current = current.left
        rest.reverse()
        return current, rest

    def _sum(self, node: ast.BinOp) -> _Built:
        first, rest = self._chain(node, (ast.Add, ast.Sub))
        parts = [self.build(first)]
        terms = [parts[0].expr]
        for op, operand in rest:
            part = self.build(operand)
            parts.append(part)
            terms.append(-part.expr if isinstance(op, ast.Sub) else part.expr)
        self._check_digits(parts, node)
        return self._finish(sympy.Add(*terms), sum(p.digits for p in parts), sum(p.roots for p in parts), node)

    def _product(self, node: ast.BinOp) -> _Built:
        first, rest = self._chain(node, (ast.Mult, ast.Div))
        parts = [self.build(first)]
        factors = [parts[0].expr]
        for op, operand in rest:
            part = self.build(operand)
            parts.append(part)
            if isinstance(op, ast.Div):
                if part.expr == 0:
                    raise ParseError(f"division by zero in {self._where(node)}")
                factors.append(sympy.Pow(part.expr, -1))
            else:
                factors.append(part.expr)
        self._check_digits(parts, node)
        return self._finish(sympy.Mul(*factors), sum(p.digits for p in parts), sum(p.roots for p in parts), node)

    def _power(self, base: _Built, exponent: _Built, node: ast.AST) -> _Built:
        b, e = base.expr, exponent.expr
        bv, ev = self._value(b, node), self._value(e, node)
        digits = base.digits + exponent.digits
        roots = base.roots + exponent.roots
        if bv is not None and ev is None:
            # e**(c*log(x)) is exp(c*log(x)) and b**(c*log(x)/log(b)) becomes x**c: bounded alike
            digits = max(digits, self._exp_argument(exponent, node, "a power"))
        if ev is not None:
            size = abs(ev)
            if bv is not None:  # both numeric: SymPy would compute it
                if bv == 0 and _MP.re(ev) < 0:
                    raise ParseError(f"division by zero (0 raised to a negative power) in {self._where(node)}")
                if size > MAX_POWER_EXPONENT:
                    raise self._too_big(node, f"numeric power too large (exponent beyond {MAX_POWER_EXPONENT})")
                if bv != 0:
                    log10 = _MP.re(ev * _MP.log(bv)) / _MP.ln10
                    if abs(log10) > MAX_LOG10_MAGNITUDE:
                        raise self._too_big(node, f"numeric power too large (about 10**{int(log10)})")
            # numbers in a product or a number base are raised to the power: bound their digits
            if isinstance(b, (sympy.Mul, sympy.Number)):
                times = max(1, int(_MP.ceil(size)))
                if base.digits * times > MAX_EXACT_DIGITS and _rational_digits(b) * times > MAX_EXACT_DIGITS:
                    raise self._too_big(node, "power of numeric constants too large")
                digits = max(digits, base.digits * times + exponent.digits)
                if not e.is_Integer:
                    roots += base.digits
                    if roots > MAX_ROOT_DIGITS:
                        raise self._too_big(node, f"roots of numbers with more than {MAX_ROOT_DIGITS} digits")
        return self._finish(sympy.Pow(b, e), digits, roots, node)

    def _exp_argument(self, arg: _Built, node: ast.AST, what: str) -> int:
        """Bound exp(arg) before SymPy builds it; return the digits it may create."""
        value = self._value(arg.expr, node)
        if value is not None and abs(_MP.re(value)) > EXP_ARG_LIMIT:
            raise self._too_big(node, f"{what} of a number larger than {EXP_ARG_LIMIT} in magnitude would overflow")
        # SymPy rewrites exp(c*log(x)) as x**c and computes the numbers in x**c; it leaves
        # exp(c*y*log(x)) alone (y is not a number), so factors like y spare a term
        digits = arg.digits
        for term in sympy.Add.make_args(arg.expr):
            coeff, rest = term.as_coeff_Mul()
            if abs(coeff) <= 1 or not rest.has(sympy.log):
                continue
            if any(not f.is_number and not f.has(sympy.log) for f in sympy.Mul.make_args(rest)):
                continue
            times = int(sympy.ceiling(abs(coeff)))
            inner = _rational_digits(rest)
            if inner * times > MAX_EXACT_DIGITS:
                raise self._too_big(node, f"{what} would expand into a power of numbers that is too large")
            digits = max(digits, inner * times + arg.digits)
        return digits

    def _call(self, node: ast.Call) -> _Built:
        name = node.func.id  # type: ignore[attr-defined]  # _Checker allows only names
        func, _ = FUNCTIONS[name]
        if name == "where":
            cond = self._condition(node.args[0])
            parts = [cond, self.build(node.args[1]), self.build(node.args[2])]
        else:
            parts = [self.build(arg) for arg in node.args]
        if name == "sqrt":  # a power: bounded like x**(1/2)
            return self._power(parts[0], _Built(S.Half, 2, 0), node)
        digits = sum(p.digits for p in parts)
        roots = sum(p.roots for p in parts)
        values = [self._value(p.expr, node) if name != "where" else None for p in parts]
        for part, v in zip(parts, values):
            if v is not None and _MP.im(v) != 0:
                # abs(), sign(), log()... of a complex number take the root of a sum of squares
                roots += 2 * part.digits
                if roots > MAX_ROOT_DIGITS:
                    raise self._too_big(node, f"complex numbers with more than {MAX_ROOT_DIGITS // 2} digits")
        if name in _EXP_FAMILY:
            for part in parts:
                digits = max(digits, self._exp_argument(part, node, f"{name}()"))
        elif name in _EXP_LIKE_ARGS:
            self._bound(values, EXP_ARG_LIMIT, node, name)
        elif name in _FACTORIAL_LIKE:
            # SymPy computes gamma(n), factorial(n), binomial(n, k)... of numbers exactly
            self._bound(values, FACTORIAL_ARG_LIMIT, node, name)
            for v in values:
                if v is not None:
                    size = float(abs(v))
                    digits += int(size * math.log10(size + 1)) + 1
        elif name == "besseli":
            self._bound(values[:1], FACTORIAL_ARG_LIMIT, node, name)
            self._bound(values[1:], EXP_ARG_LIMIT, node, name)
        return self._finish(func(*(p.expr for p in parts)), digits, roots, node)

    def _bound(self, values: list[Any], limit: int, node: ast.AST, name: str) -> None:
        for v in values:
            if v is not None and abs(v) > limit:
                raise self._too_big(node, f"{name}() of a number larger than {limit} in magnitude is not supported")

    def _relation(self, op: ast.cmpop, left: _Built, right: _Built, node: ast.AST) -> Boolean:
        lv, rv = self._value(left.expr, node), self._value(right.expr, node)
        if not isinstance(op, (ast.Eq, ast.NotEq)):
            for v in (lv, rv):
                if v is not None and _MP.im(v) != 0:
                    raise ParseError(f"cannot order a non-real number in {self._where(node)}")
        relation = _COMPARE[type(op)](left.expr, right.expr)
        if lv is not None and rv is not None and not isinstance(relation, BooleanAtom):
            # SymPy could not decide it (equal up to rounding?); left as is, Piecewise can loop on it
            raise ParseError(f"cannot decide the comparison of two numbers in {self._where(node)}")
        return relation

    def _condition(self, node: ast.AST) -> _Built:
        try:
            if isinstance(node, ast.Compare):
                left = self.build(node.left)
                parts = [left]
                relations = []
                for op, comparator in zip(node.ops, node.comparators):
                    right = self.build(comparator)
                    parts.append(right)
                    relations.append(self._relation(op, left, right, node))
                    left = right
                cond = sympy.And(*relations)
            elif isinstance(node, ast.BoolOp):
                parts = [self._condition(v) for v in node.values]
                combine = sympy.And if isinstance(node.op, ast.And) else sympy.Or
                cond = combine(*(p.expr for p in parts))
            elif isinstance(node, ast.UnaryOp):  # not
                parts = [self._condition(node.operand)]
                cond = sympy.Not(parts[0].expr)
            elif isinstance(node, ast.BinOp):  # & |
                parts = [self._condition(node.left), self._condition(node.right)]
                combine = sympy.And if isinstance(node.op, ast.BitAnd) else sympy.Or
                cond = combine(parts[0].expr, parts[1].expr)
            else:
                raise AssertionError(f"unchecked condition {type(node).__name__}")
        except SymlossError:
            raise
        except _SYMPY_ERRORS as exc:
            raise ParseError(f"cannot build the condition {self._where(node)}: {type(exc).__name__}: {exc}") from None
        return self._finish(cond, sum(p.digits for p in parts), sum(p.roots for p in parts), node)
