"""Time budgets: symbolic work that could hang answers within budget + 1 s."""

from __future__ import annotations

import threading
import time

import pytest
import sympy as sp

from symloss.budget import Deadline, run_with_budget, try_with_budget
from symloss.derive import simplify_within
from symloss.errors import BudgetExceeded


def _hard_integral():
    x, a = sp.symbols("x a", positive=True)
    return sp.integrate(sp.exp(-x**3 * a + sp.sin(x) ** 5) * sp.log(1 + x**a), (x, 0, sp.oo))


def test_hard_integral_is_cut_off():
    start = time.monotonic()
    with pytest.raises(BudgetExceeded, match="did not finish"):
        run_with_budget(_hard_integral, 0.5, "integral")
    assert time.monotonic() - start < 1.5


def test_try_with_budget_returns_default():
    start = time.monotonic()
    assert try_with_budget(_hard_integral, 0.3, "unknown") == "unknown"
    assert time.monotonic() - start < 1.3


def test_budget_in_a_thread():
    out = {}

    def work():
        start = time.monotonic()
        out["value"] = try_with_budget(lambda: time.sleep(5) or "done", 0.3, "unknown")
        out["elapsed"] = time.monotonic() - start

    t = threading.Thread(target=work)
    t.start()
    t.join(10)
    assert out["value"] == "unknown" and out["elapsed"] < 1.3


def test_nested_budgets_keep_the_outer_deadline():
    start = time.monotonic()
    with pytest.raises(BudgetExceeded):
        run_with_budget(lambda: run_with_budget(lambda: time.sleep(5), 3.0), 0.4)
    assert time.monotonic() - start < 1.4


def test_result_passes_through():
    assert run_with_budget(lambda: 41 + 1, 1.0) == 42
    assert run_with_budget(lambda: 1, None) == 1


def test_simplify_within_gives_back_the_input():
    x = sp.Symbol("x")
    e = sp.Sum(sp.sin(x) ** 2 + sp.cos(x) ** 2, (x, 0, 3))
    assert simplify_within(e, 0) == e


def test_deadline():
    d = Deadline(0.05)
    assert not d.expired()
    time.sleep(0.08)
    assert d.expired() and d.left() == 0
    assert Deadline(None).left() is None
