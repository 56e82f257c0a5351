"""Fuzzing the formula parser: well-formed formulas parse, anything else fails with a SymlossError.

About 10,000 examples in all (derandomized, so every run checks the same ones).
"""

from __future__ import annotations

import time

import sympy as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from symloss.errors import BudgetExceeded, ParseError, SymlossError, UnknownSymbolError, UnsafeExpressionError
from symloss.parse import FUNCTIONS, parse_expression

y, mu, sigma = sp.symbols("y mu sigma")
s_pos = sp.Symbol("s", positive=True)
VARS = {"y": y, "mu": mu, "sigma": sigma, "s": s_pos}
POINT = {y: sp.Rational(3, 7), mu: sp.Rational(-1, 3), sigma: sp.Rational(5, 4), s_pos: sp.Integer(2)}

SLOW_EXAMPLE = 1.0  # seconds: far above the milliseconds a formula takes, far below the 2 s budget


def fuzz_settings(n: int):
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# ---------------------------------------------------------------- (a) well-formed formulas

LEAVES = st.sampled_from(
    [*VARS, "0", "1", "2", "3", "7", "12", "100", "1000", "0.5", "1.5", "2.25", "0.1", "1e-3", "3e2", "pi", "e"]
)
PLAIN_FUNCTIONS = sorted(n for n in FUNCTIONS if n != "where")


def _call_text(parts: tuple[str, list[str]]) -> str:
    # cycle the drawn arguments to the function's arity (flatmap would be slower to generate)
    name, args = parts
    low, high = FUNCTIONS[name][1]
    count = max(low, min(len(args), high if high is not None else low + 2))
    return f"{name}({', '.join((args * count)[:count])})"


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "/", "**", "^"]), children).map(
        lambda t: f"({t[0]}){t[1]}({t[2]})"
    )
    unary = st.tuples(st.sampled_from(["-", "+", "−"]), children).map(lambda t: f"{t[0]}({t[1]})")
    call = st.tuples(st.sampled_from(PLAIN_FUNCTIONS), st.lists(children, min_size=1, max_size=3)).map(_call_text)
    comparison = st.tuples(children, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), children).map(
        lambda t: f"({t[0]}) {t[1]} ({t[2]})"
    )
    condition = st.one_of(
        comparison,
        st.tuples(comparison, st.sampled_from([" and ", " or ", " & ", " | "]), comparison).map(
            lambda t: f"({t[0]}){t[1]}({t[2]})"
        ),
        comparison.map(lambda c: f"not ({c})"),
        st.tuples(children, children).map(lambda t: f"0 < ({t[0]}) <= ({t[1]})"),
    )
    where = st.tuples(condition, children, children).map(lambda t: f"where({t[0]}, {t[1]}, {t[2]})")
    return st.one_of(binary, unary, call, where)


FORMULAS = st.recursive(LEAVES, _extend, max_leaves=8)


def _parse_well_formed(text: str) -> sp.Expr | None:
    start = time.perf_counter()
    try:
        expr = parse_expression(text, variables=VARS)
    except SymlossError as exc:
        # numbers can legitimately be out of range (1/0, log(0), 12**(12**12)...), but a formula
        # from the grammar is never unsafe, never has unknown names and never a syntax error
        assert isinstance(exc, ParseError), (text, exc)
        assert not isinstance(exc, (UnsafeExpressionError, UnknownSymbolError, BudgetExceeded)), (text, exc)
        assert "syntax error" not in str(exc), (text, exc)
        expr = None
    assert time.perf_counter() - start < SLOW_EXAMPLE, text
    if expr is not None:
        assert isinstance(expr, sp.Expr)
        assert expr.free_symbols <= set(VARS.values()), text
    return expr


@fuzz_settings(3000)
@given(FORMULAS)
def test_well_formed_formulas_parse(text):
    _parse_well_formed(text)


@fuzz_settings(1000)
@given(FORMULAS)
def test_well_formed_formulas_evaluate(text):
    expr = _parse_well_formed(text)
    assume(expr is not None)
    # substitution of exact rationals, then a 15-digit evalf: cheap, and must not blow up
    try:
        value = expr.xreplace(POINT).evalf(15)
    except TypeError as exc:
        # where() comparing a complex number at this point (acos(2) < 1): SymPy's rule, not a parse bug
        assert "Invalid comparison of non-real" in str(exc), (text, exc)
        return
    assert not value.free_symbols, text


# ---------------------------------------------------------------- (b) hostile text

GRAMMAR_FRAGMENTS = [
    "y", "mu", "sigma", "s", "1", "0", "2", "0.5", "1e-3", "pi", "e", "+", "-", "*", "/", "**", "^", "(", ")",
    ", ", " ", "exp(", "log(", "sqrt(", "abs(", "gamma(", "where(", "max(", "besseli(", "<", "<=", ">", "==",
    "!=", " and ", " or ", "not ", "&", "|", "−", "²", "σ", "μ", "λ", "·",
]  # fmt: skip
HOSTILE_FRAGMENTS = [
    "__class__", "__import__", "__builtins__", ".", "[", "]", "{", "}", "lambda", ":", "import ", "from ",
    "f'", "'", '"', "**9**9", "9**9**9", "10**999", "exp(exp(exp(", "factorial(", "**10**6", "𝐱", "ｙ", "ᵢ",
    "\u200b", "\x00", "\n", "\t", "nan", "inf", "1e999", "1" * 120, "0." + "3" * 120, ";", "=", ":=", "@", "%",
    "//", "~", "<<", "\\", "#", " if ", " else ", " for ", " in ", " is ", "open(", "os", ".system", "eval(",
    "*y", "**y", "x=", "True", "None", "...", "1j", "0x1F", "0b101", "1_0", "(" * 70, ")" * 70, "-" * 200,
    "(2*y)**", "sqrt(10**999+", "exp(10**9*log(", "e**(", "1/(", "/0",
]  # fmt: skip

FRAGMENTS = st.sampled_from(GRAMMAR_FRAGMENTS + HOSTILE_FRAGMENTS)
HOSTILE_TEXT = st.one_of(
    st.lists(FRAGMENTS, max_size=14).map("".join),
    st.lists(st.one_of(FRAGMENTS, st.text(max_size=3)), max_size=10).map("".join),
)


def _parse_anything(text: str) -> None:
    start = time.perf_counter()
    try:
        expr = parse_expression(text, variables=VARS)
    except SymlossError as exc:
        assert not isinstance(exc, BudgetExceeded), (text, exc)  # a bound should have caught it sooner
    else:
        assert isinstance(expr, sp.Expr)
        assert expr.free_symbols <= set(VARS.values()), text
    assert time.perf_counter() - start < SLOW_EXAMPLE, text


@fuzz_settings(4000)
@given(HOSTILE_TEXT)
def test_hostile_text_parses_or_raises_symloss_error(text):
    _parse_anything(text)


@fuzz_settings(2000)
@given(FORMULAS, st.integers(0, 10_000), FRAGMENTS)
def test_mutated_formulas_parse_or_raise_symloss_error(text, where, fragment):
    at = where % (len(text) + 1)
    _parse_anything(text[:at] + fragment + text[at:])
