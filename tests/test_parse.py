"""The whitelist formula parser: what it reads, what it refuses, and that it never runs anything."""

from __future__ import annotations

import ast
import builtins
import sys
import time

import pytest
import sympy as sp

from symloss.errors import (
    BudgetExceeded,
    ParseError,
    SymlossError,
    UnknownNameError,
    UnknownSymbolError,
    UnsafeExpressionError,
)
from symloss.parse import CONSTANTS, FUNCTIONS, parse_expression

y, mu, b, sigma, delta, lam = sp.symbols("y mu b sigma delta lam")
VARS = {"y": y, "mu": mu, "b": b, "sigma": sigma, "delta": delta}


def parse(text: str, **kw) -> sp.Expr:
    return parse_expression(text, variables=kw.pop("variables", VARS), **kw)


# ---------------------------------------------------------------- what it reads


def test_laplace_density():
    got = parse("exp(-abs(y - mu)/b) / (2*b)")
    assert got == sp.exp(-sp.Abs(y - mu) / b) / (2 * b)


def test_gaussian_density_with_caret_powers():
    got = parse("1/(sigma*sqrt(2*pi)) * exp(-(y-mu)^2/(2*sigma^2))")
    want = 1 / (sigma * sp.sqrt(2 * sp.pi)) * sp.exp(-((y - mu) ** 2) / (2 * sigma**2))
    assert got == want


def test_caret_is_power_with_power_precedence():
    assert parse("y^2") == y**2
    assert parse("2*y^2 + 1") == 2 * y**2 + 1  # not (2*y)**(2+1)
    assert parse("-y^2") == -(y**2)
    assert parse("y^2^3") == y**8  # right-associative, like **


def test_huber_like_where_is_piecewise():
    text = "where(abs(y-mu) <= delta, exp(-(y-mu)**2/2), exp(-delta*abs(y-mu) + delta**2/2))"
    want = sp.Piecewise(
        (sp.exp(-((y - mu) ** 2) / 2), sp.Abs(y - mu) <= delta),
        (sp.exp(-delta * sp.Abs(y - mu) + delta**2 / 2), True),
    )
    assert parse(text) == want


def test_where_conditions_combine():
    got = parse("where((y > 0) & (y < 1) | (not y != mu), 1, 0)")
    cond = sp.Or(sp.And(y > 0, y < 1), sp.Eq(y, mu))
    assert got == sp.Piecewise((1, cond), (0, True))
    assert parse("where(0 < y <= 1, y, 0)") == sp.Piecewise((y, sp.And(y > 0, y <= 1)), (0, True))
    assert parse("where(y >= 0 and not y == 1 or mu < 0, 1, 2)") == sp.Piecewise(
        (1, sp.Or(sp.And(y >= 0, sp.Ne(y, 1)), mu < 0)), (2, True)
    )


def test_decimals_are_exact_rationals():
    assert parse("0.5") == sp.Rational(1, 2)
    assert parse("0.5") is not sp.Float(0.5)
    assert parse("0.1*y") == y / 10
    assert parse("1e-3") == sp.Rational(1, 1000)
    assert parse("2.5e2") == 250
    assert parse("1_000.25") == sp.Rational(4001, 4)
    assert parse("3.14159265358979323846") == sp.Rational(314159265358979323846, 10**20)
    assert not parse("0.5*y + 1.25").atoms(sp.Float)


def test_unicode_paste_friendly():
    assert parse("exp(−(y−μ)²/(2·σ²))") == sp.exp(-((y - mu) ** 2) / (2 * sigma**2))
    assert parse("σ³ × μ") == sigma**3 * mu
    assert parse("y ⋅ 2 ÷ 4") == y / 2
    assert parse("where(y ≤ μ, 1, 0)") == sp.Piecewise((1, y <= mu), (0, True))
    assert parse("π") == sp.pi
    # λ is 'lam' (lambda is a Python keyword)
    assert parse("λ*y", variables={"y": y, "lam": lam}) == lam * y


def test_constants_and_shadowing():
    assert parse("pi + e") == sp.pi + sp.E
    assert set(CONSTANTS) == {"pi", "e"}
    e_sym = sp.Symbol("e")
    assert parse("e*y", variables={"y": y, "e": e_sym}) == e_sym * y  # variables win
    pi_sym = sp.Symbol("pi")
    assert parse("pi", variables={"pi": pi_sym}) == pi_sym


def test_whitelisted_functions():
    assert parse("log(y, 2)") == sp.log(y, 2)
    assert parse("log(y)") == sp.log(y)
    assert parse("lgamma(y)") == sp.loggamma(y)
    assert parse("loggamma(y)") == sp.loggamma(y)
    assert parse("sigmoid(y)") == 1 / (1 + sp.exp(-y))
    assert parse("softplus(y)") == sp.log(1 + sp.exp(y))
    assert parse("logaddexp(y, mu)") == sp.log(sp.exp(y) + sp.exp(mu))
    assert parse("min(y, mu, 1)") == sp.Min(y, mu, 1)
    assert parse("max(y, mu)") == sp.Max(y, mu)
    assert parse("heaviside(y)") == sp.Heaviside(y)
    assert parse("besseli(0, y)") == sp.besseli(0, y)
    assert parse("beta(y, mu) + binomial(y, 2) + factorial(y)") == sp.beta(y, mu) + sp.binomial(y, 2) + sp.factorial(y)
    assert parse("erf(y) + erfc(y) + gamma(y) + sech(y)") == sp.erf(y) + sp.erfc(y) + sp.gamma(y) + sp.sech(y)
    assert parse("log1p(y) + expm1(mu)") == sp.log(1 + y) + sp.exp(mu) - 1
    assert parse("sign(y) * abs(mu) + atan(y) + asinh(y) + tanh(y)") == (
        sp.sign(y) * sp.Abs(mu) + sp.atan(y) + sp.asinh(y) + sp.tanh(y)
    )
    for name in ["abs", "exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tan", "sinh", "cosh", "tanh",
                 "sech", "atan", "asinh", "erf", "erfc", "gamma", "lgamma", "loggamma", "beta", "besseli",
                 "factorial", "binomial", "sigmoid", "softplus", "logaddexp", "min", "max", "sign", "heaviside",
                 "where"]:  # fmt: skip
        assert name in FUNCTIONS


def test_function_names_and_variables_do_not_collide():
    beta_sym, gamma_sym = sp.symbols("beta gamma")
    got = parse("beta*gamma(y) + gamma*beta(y, 2)", variables={"y": y, "beta": beta_sym, "gamma": gamma_sym})
    assert got == beta_sym * sp.gamma(y) + gamma_sym * sp.beta(y, 2)


def test_result_uses_only_the_given_symbols():
    other_y = sp.Symbol("y", positive=True)
    got = parse("exp(-y) * y", variables={"y": other_y})
    assert got.free_symbols == {other_y}
    assert sp.Symbol("y") not in got.free_symbols


def test_whitespace_and_newlines_are_tolerated():
    assert parse("  y +\n  1\t") == y + 1


# ---------------------------------------------------------------- what it refuses

UNSAFE = [
    ("__import__('os').system('echo hi')", "attribute access ('.system')"),
    ("__import__('os')", "'__import__'"),
    ("().__class__.__bases__[0].__subclasses__()", "attribute access ('.__subclasses__')"),
    ("y.real", "attribute access ('.real')"),
    ("y.__class__", "attribute access ('.__class__')"),
    ("y[0]", "subscripts"),
    ("lambda: 1", "lambda"),
    ("[x for x in y]", "list comprehensions"),
    ("{x for x in y}", "set comprehensions"),
    ("{x: 1 for x in y}", "dict comprehensions"),
    ("sum(x for x in y)", "'sum' is not one of them"),
    ("exp(x for x in y)", "generator expressions"),
    ("f'{y}'", "f-strings"),
    ("exp(*y)", "starred"),
    ("exp(x=y)", "keyword arguments ('x='"),
    ("max(y, **mu)", "keyword arguments ('**'"),
    ("open('f')", "'open' is not one of them"),
    ("eval('1')", "'eval' is not one of them"),
    ("sin(y)(2)", "'sin(y)' is not one of them"),
    ("[1, 2]", "list displays"),
    ("(y, 1)", "tuples"),
    ("{1: 2}", "dict displays"),
    ("{1}", "set displays"),
    ("(y := 1)", "':='"),
    ("y if y else 1", "where(condition, a, b)"),
    ("__builtins__", "'__builtins__'"),
    ("'s'", "string literals"),
    ("b's'", "bytes literals"),
    ("1j", "complex literals"),
    ("True", "boolean literals"),
    ("None", "None"),
    ("...", "Ellipsis"),
    ("y % 2", "'%'"),
    ("y // 2", "'//'"),
    ("y @ y", "'@'"),
    ("y << 1", "'<<'"),
    ("y >> 1", "'>>'"),
    ("~y", "'~'"),
    ("y & mu", "'&'"),
    ("y | mu", "'|'"),
    ("y > 0", "comparison ('>')"),
    ("exp(y == 1)", "comparison ('==')"),
    ("y and mu", "'and'"),
    ("not y", "'not'"),
    ("where(y is mu, 1, 0)", "'is'"),
    ("where(y in mu, 1, 0)", "'in'"),
    ("where(y > 0, y > 1, 0)", "comparison ('>')"),
    ("where(y > 0 & y < 1, 1, 0)", "'&'"),  # & binds tighter than >: the message says so
]


@pytest.mark.parametrize("text,fragment", UNSAFE)
def test_unsafe_constructs_are_rejected_by_name(text, fragment):
    with pytest.raises(UnsafeExpressionError) as info:
        parse(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, ParseError) and isinstance(info.value, SymlossError)


def test_calls_to_unknown_functions_list_the_allowed_ones():
    with pytest.raises(UnsafeExpressionError, match=r"allowed: abs, .*beta.*where") as info:
        parse("open('f')")
    assert "calls are only allowed to whitelisted functions" in str(info.value)
    with pytest.raises(UnsafeExpressionError, match="did you mean 'exp'"):
        parse("exq(y)")
    with pytest.raises(UnsafeExpressionError, match=r"'sigma' is a variable: write sigma\*\(...\)"):
        parse("sigma(y + 1)")


def test_conditional_expression_suggests_where():
    with pytest.raises(UnsafeExpressionError, match=r"conditional expressions.*use where\(condition, a, b\)"):
        parse("y if y > 0 else 1")


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("nan", "'nan'"),
        ("inf", "'inf'"),
        ("1e999", "'1e999' is too large"),
        ("1e-999", "too small"),
        ("1" * 101, "100 digits"),
        ("0." + "1" * 101, "100 digits"),
        ("exp", "'exp' is a function"),
        ("where(y, 1, 0)", "condition of where() must be a comparison"),
        ("import os", "statements such as 'import'"),
        ("y = 1", "syntax error"),
        ("y;y", "syntax error"),
        ("", "empty"),
        ("   \n ", "empty"),
    ],
)
def test_parse_errors(text, fragment):
    with pytest.raises(ParseError) as info:
        parse(text)
    assert fragment in str(info.value)


def test_unknown_name_is_both_parse_and_unknown_name_error():
    with pytest.raises(UnknownSymbolError) as info:
        parse_expression("exp(-(y - mu)/sigm)", variables={"y": y, "mu": mu, "sigma": sigma})
    err = info.value
    assert isinstance(err, ParseError) and isinstance(err, UnknownNameError) and isinstance(err, KeyError)
    assert "did you mean 'sigma'" in str(err)
    assert err.name == "sigm"


def test_unknown_name_without_close_match_lists_choices():
    with pytest.raises(UnknownSymbolError, match="choose one of: e, mu, pi, y"):
        parse_expression("zzz", variables={"y": y, "mu": mu})


def test_lookalike_unicode_is_rejected():
    # Python's parser would NFKC-normalise '𝐱' to 'x'
    with pytest.raises(ParseError, match=r"'𝐱' \(U\+1D431 MATHEMATICAL BOLD SMALL X\) at column 3"):
        parse_expression("1+𝐱", variables={"x": sp.Symbol("x")})
    with pytest.raises(ParseError, match="U\\+FF59"):
        parse("ｙ")  # fullwidth y
    with pytest.raises(ParseError, match="U\\+0000"):
        parse("y\x00")


@pytest.mark.parametrize(
    "text,message",
    [
        ("exp(y, 2)", "exp() takes exactly 1 argument (2 given)"),
        ("log(y, 2, 3)", "log() takes 1 or 2 arguments (3 given)"),
        ("max(y)", "max() takes at least 2 arguments (1 given)"),
        ("where(y > 0, 1)", "where() takes exactly 3 arguments (2 given)"),
        ("besseli(y)", "besseli() takes exactly 2 arguments (1 given)"),
        ("sqrt()", "sqrt() takes exactly 1 argument (0 given)"),
    ],
)
def test_wrong_arity(text, message):
    with pytest.raises(ParseError) as info:
        parse(text)
    assert message in str(info.value)
    assert not isinstance(info.value, UnsafeExpressionError)


def test_syntax_error_reports_column_and_caret():
    with pytest.raises(ParseError) as info:
        parse("exp(y +* 2)")
    message = str(info.value)
    assert "syntax error at column 8" in message
    lines = message.splitlines()
    assert lines[-2].strip() == "exp(y +* 2)"
    assert lines[-1].index("^") == lines[-2].index("*")


def test_syntax_error_column_counts_original_characters():
    # '²' becomes '**2' and 'σ' becomes 'sigma' internally; the column refers to what was typed
    with pytest.raises(ParseError, match="column 5"):
        parse("σ² +* 1")


def test_division_by_literal_zero():
    for text in ["1/0", "y/(1-1)", "y/(2*0)", "0**-1", "y/sin(0)"]:
        with pytest.raises(ParseError, match="division by zero"):
            parse(text)
    for text in ["log(0)", "gamma(0)", "tan(pi/2)"]:
        with pytest.raises(ParseError, match="undefined or infinite"):
            parse(text)


def test_bad_variables_mapping_is_a_type_error():
    with pytest.raises(TypeError):
        parse_expression("y", variables={"y": "not a symbol"})  # type: ignore[dict-item]
    with pytest.raises(ParseError):
        parse_expression(42, variables=VARS)  # type: ignore[arg-type]


# ---------------------------------------------------------------- resource bounds


def _fast(text: str, limit: float = 0.5, **kw) -> SymlossError:
    start = time.perf_counter()
    with pytest.raises(SymlossError) as info:
        parse(text, **kw)
    assert time.perf_counter() - start < limit, text[:80]
    assert not isinstance(info.value, BudgetExceeded), "a bound should have caught this before the time budget"
    return info.value


def test_tower_of_powers_is_rejected_quickly():
    err = _fast("9**9**9")
    assert isinstance(err, ParseError) and "numeric power too large" in str(err)
    assert "numeric power too large" in str(_fast("2^2^2^2^2^2"))
    assert "numeric power too large" in str(_fast("(10**999)**2"))
    assert "numeric power too large" in str(_fast("2**-5000"))


@pytest.mark.parametrize(
    "text",
    [
        "exp(exp(exp(100)))",  # SymPy hangs comparing or adding such numbers
        "exp(exp(exp(3))) + y",
        "max(exp(exp(10)), 1)",
        "factorial(10**9)",
        "gamma(10**6) + y",
        "loggamma(10**9)",  # SymPy would compute log((10**9 - 1)!) exactly
        "binomial(10**9, 5*10**8)",
        "exp(10**9*log(6))",  # SymPy rewrites exp(c*log(x)) as x**c
        "exp(10**9*log(6*y))",
        "e**(10**9*log(6*y))",
        "(2*y)**(10**6)",  # 2**(10**6) * y**(10**6)
        "sqrt(10**999 + 7)",  # SymPy factors the radicand
        "*".join(["10**999"] * 12),
        "*".join(["(1001/1000)**1000"] * 6),
        "sinh(10**6)",
        "besseli(0, 10**6)",
        "10**999 * 10**999",
        "1/exp(-2000)/exp(-2000)",
    ],
)
def test_huge_numbers_are_rejected_quickly(text):
    assert isinstance(_fast(text), ParseError)


def test_deep_nesting_is_rejected_before_ast_parse():
    text = "(" * 10000 + "y" + ")" * 10000
    err = _fast(text)
    assert "too long" in str(err)  # the default max_length comes first
    err = _fast(text, max_length=10**6)
    assert "nested too deeply" in str(err) and "60" in str(err)
    assert parse("(" * 60 + "y" + ")" * 60) == y
    assert isinstance(_fast("exp(" * 61 + "y" + ")" * 61), ParseError)


def test_long_operator_chains_are_bounded():
    assert "nested too deeply" in str(_fast("-" * 3000 + "y"))
    assert "nested too deeply" in str(_fast("y**" * 150 + "y"))
    assert "too large" in str(_fast("y+" * 1999 + "y"))
    assert parse("+".join(["y"] * 500)) == 500 * y  # one flat chain is fine


def test_100_kb_input_is_rejected_without_parsing():
    err = _fast("y+" * 50_000 + "y", limit=0.2)
    assert "too long" in str(err) and "4000" in str(err)


def test_max_length_is_configurable():
    with pytest.raises(ParseError, match="too long"):
        parse("y + 1", max_length=3)
    assert parse("y + 1", max_length=5) == y + 1


# ---------------------------------------------------------------- nothing is executed


class _Tripwire:
    """An object that records any attribute access or call made on it."""

    def __init__(self, log: list[str]):
        object.__setattr__(self, "_log", log)

    def __getattr__(self, name: str):
        self._log.append(f"getattr {name}")
        return self

    def __call__(self, *args, **kwargs):
        self._log.append("call")
        return self


def test_nothing_in_the_formula_is_executed(monkeypatch):
    log: list[str] = []
    monkeypatch.setattr(builtins, "tripwire", _Tripwire(log), raising=False)

    def forbidden(name):
        def boom(*args, **kwargs):
            log.append(name)
            raise AssertionError(f"{name} was called while parsing")

        return boom

    real_compile, real_import = builtins.compile, builtins.__import__

    def ast_only_compile(source, filename, mode, flags=0, *args, **kwargs):
        if not flags & ast.PyCF_ONLY_AST:  # ast.parse is allowed; compiling to bytecode is not
            log.append("compile")
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    def watched_import(name, *args, **kwargs):
        # SymPy imports lazily from its own files; code compiled from a formula has no .py file
        caller = sys._getframe(1).f_code.co_filename
        if not caller.endswith(".py"):
            log.append(f"import {name} from {caller}")
        return real_import(name, *args, **kwargs)

    for name in ["eval", "exec", "open", "breakpoint", "input"]:
        monkeypatch.setattr(builtins, name, forbidden(name))
    monkeypatch.setattr(builtins, "compile", ast_only_compile)
    monkeypatch.setattr(builtins, "__import__", watched_import)
    outcomes = []
    try:
        for text in [
            "tripwire",
            "tripwire()",
            "tripwire.x",
            "tripwire.__class__",
            "exp(tripwire)",
            "__import__('os').system('echo hi')",
            "__import__('os')",
            "open('f')",
            "eval('1')",
            "exec('1')",
            "breakpoint()",
            "().__class__.__bases__[0].__subclasses__()",
            "[tripwire() for _ in (1,)]",
            "(lambda: tripwire())()",
            "f'{tripwire()}'",
        ]:
            try:
                parse(text)
                outcomes.append(f"{text}: accepted")
            except SymlossError:
                outcomes.append("rejected")
        outcomes.append(str(parse("exp(-y)")))  # the patched builtins do not get in the way
    finally:
        monkeypatch.undo()
    assert log == []
    assert outcomes == ["rejected"] * 15 + ["exp(-y)"]
