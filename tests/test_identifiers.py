"""Names that reach generated code and LaTeX: validation, renaming, escaping."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symloss.errors import InvalidIdentifierError, SymlossError
from symloss.identifiers import (
    C_KEYWORDS,
    C_MATH_FUNCTIONS,
    RESERVED,
    latex_escape,
    safe_identifier,
    validate_identifier,
)


@pytest.mark.parametrize(
    "name", ["mu", "sigma", "y", "target", "x1", "log_scale", "_private", "Beta", "nu_0", "a" * 64, "gamma", "beta"]
)
def test_valid_names_are_returned(name):
    assert validate_identifier(name) == name


@pytest.mark.parametrize(
    "name,reason",
    [
        ("lambda", "Python keyword"),
        ("if", "Python keyword"),
        ("None", "Python keyword"),
        ("match", "soft keyword"),
        ("_", "soft keyword"),
        ("list", "Python builtin"),
        ("sum", "Python builtin"),
        ("id", "Python builtin"),
        ("type", "Python builtin"),
        ("input", "Python builtin"),
        ("len", "Python builtin"),
        ("exec", "Python builtin"),
        ("eval", "Python builtin"),
        ("open", "Python builtin"),
        ("int", "Python builtin"),  # also a C keyword; the first reason is given
        ("double", "C keyword"),
        ("static", "C keyword"),
        ("const", "C keyword"),
        ("return", "Python keyword"),
        ("restrict", "C keyword"),
        ("NULL", "C keyword or standard macro"),
        ("exp", "<math.h> function"),
        ("lgamma", "<math.h> function"),
        ("erfc", "<math.h> function"),
        ("sqrtf", "<math.h> function"),
        ("np", "used by symloss's generated code"),
        ("torch", "used by symloss's generated code"),
        ("F", "used by symloss's generated code"),
        ("PARAMS", "used by symloss's generated code"),
        ("grad_output", "used by symloss's generated code"),
        ("__class__", "'__'"),
        ("__x", "'__'"),
        ("σ", "non-ASCII character 'σ' (U+03C3 GREEK SMALL LETTER SIGMA)"),
        ("𝐱", "U+1D431"),
        ("x-y", "'-' (U+002D HYPHEN-MINUS)"),
        ("x y", "U+0020 SPACE"),
        ("1x", "must start with a letter or an underscore"),
        ("", "empty"),
        ("a" * 65, "65 characters long (at most 64)"),
    ],
)
def test_invalid_names_are_rejected_with_reason(name, reason):
    with pytest.raises(InvalidIdentifierError) as info:
        validate_identifier(name)
    message = str(info.value)
    assert reason in message
    assert "try '" in message
    assert isinstance(info.value, SymlossError) and isinstance(info.value, ValueError)


def test_message_names_the_role_and_suggests_a_replacement():
    with pytest.raises(InvalidIdentifierError, match=r"invalid target name 'lambda': .*; try 'lambda_'"):
        validate_identifier("lambda", role="target")


def test_caller_reserved_names():
    assert validate_identifier("mu", reserved={"sigma"}) == "mu"
    with pytest.raises(InvalidIdentifierError, match="already taken"):
        validate_identifier("mu", reserved={"mu"})
    assert safe_identifier("mu", reserved={"mu", "mu_"}) == "mu__"


def test_non_string_is_rejected():
    with pytest.raises(InvalidIdentifierError, match="must be a string"):
        validate_identifier(3)  # type: ignore[arg-type]


def test_name_sets():
    assert {"np", "numpy", "torch", "jax", "jnp", "math", "F", "nn", "lax", "triton", "tl", "reduction", "weight",
            "full", "self", "ctx", "grad_output", "PARAMS", "TARGET", "loss", "grad", "value_and_grad", "os", "sys",
            "builtins"} <= RESERVED  # fmt: skip
    assert "target" not in RESERVED
    assert {"int", "double", "float", "return", "if", "for", "while", "static", "const"} <= C_KEYWORDS
    assert {"exp", "log", "pow", "sqrt", "lgamma", "erfc", "expf", "logl"} <= C_MATH_FUNCTIONS


@pytest.mark.parametrize(
    "name,expected",
    [
        ("mu", "mu"),
        ("lambda", "lambda_"),
        ("int", "int_"),
        ("np", "np_"),
        ("σ", "sigma"),
        ("λ", "lam"),
        ("x-y", "x_y"),
        ("1x", "_1x"),
        ("__class__", "_class__"),
        ("", "name"),
        ("_", "name"),
        ("𝐱", "name"),
        ("a" * 80, "a" * 64),
    ],
)
def test_safe_identifier_examples(name, expected):
    assert safe_identifier(name) == expected
    assert validate_identifier(safe_identifier(name)) == expected


def test_safe_identifier_is_deterministic_and_stable_on_valid_names():
    assert safe_identifier("x-y") == safe_identifier("x-y")
    assert safe_identifier(safe_identifier("lambda")) == "lambda_"


@settings(max_examples=500, derandomize=True, database=None, deadline=None)
@given(st.text(max_size=80), st.sets(st.text(alphabet="ab_", min_size=1, max_size=4), max_size=6))
def test_safe_identifier_always_validates(name, reserved):
    safe = safe_identifier(name, reserved=reserved)
    assert validate_identifier(safe, reserved=reserved) == safe
    assert safe.isascii() and safe.isidentifier() and len(safe) <= 64


def test_safe_identifier_terminates_when_padded_names_are_all_taken():
    taken = {"mu" + "_" * k for k in range(70)} | {"mu"}
    safe = safe_identifier("mu", reserved=taken)
    assert validate_identifier(safe, reserved=taken) == safe


def test_latex_escape():
    assert latex_escape("a_b&c") == r"a\_b\&c"
    assert latex_escape(r"50% $x$ #1 {a} ~ ^ \ ") == (
        r"50\% \$x\$ \#1 \{a\} \textasciitilde{} \textasciicircum{} \textbackslash{} "
    )
    assert latex_escape("plain") == "plain"
    # one pass: the backslashes escaping adds are not escaped again
    assert latex_escape("\\_") == r"\textbackslash{}\_"
