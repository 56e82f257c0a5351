"""The stabilising rewrites: each rule fires on its pattern, keeps the value, and fixes the arithmetic.

Every rule gets its own test: the rewrite happens (the stable function
appears), the result equals the input at sample points (exact evaluation with
mpmath, through the elementary forms), and, where the point of the rule is an
overflow or a cancellation, a float64 evaluation of the rewritten form is
finite (and accurate) where the naive form is not.  The float evaluation uses
reference implementations written here (NumPy), not symloss's printers.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from symloss.stabilize import (
    RULES,
    RULES_BY_NAME,
    STABLE_FUNCTIONS,
    Bd0,
    DigammaCorrection,
    DigammaDifference,
    DLogTanhc,
    Guard,
    Held,
    LgammaCorrection,
    LgammaCorrectionSeries,
    LgammaDifference,
    Log1mExp,
    LogAddExp,
    LogAddExpFallback,
    LogBeta,
    LogGamma,
    LogNdtr,
    LogRatio,
    LogSumExp,
    LogTanhc,
    MaxOver,
    Sgn,
    Sigmoid,
    Softplus,
    Square,
    SumBelowOne,
    XLog1pY,
    XLogY,
    XMulY,
    XOverExpm1M1,
    elementary,
    fired_rules,
    stabilize,
)

x = sp.Symbol("x", real=True)
a = sp.Symbol("a", real=True)
b = sp.Symbol("b", real=True)
p = sp.Symbol("p", positive=True)
y = sp.Symbol("y", nonnegative=True)
u = sp.Symbol("u", real=True)


def _reference_numpy() -> dict:
    """Float implementations of the stable functions, independent of symloss's code printers."""

    def sigmoid(t):
        e = np.exp(-np.abs(t))
        return np.where(t >= 0, 1 / (1 + e), e / (1 + e))

    def xlogy(s, t):
        return np.where(s == 0, 0.0, s * np.log(np.where(s == 0, 1.0, t)))

    def xlog1py(s, t):
        return np.where(s == 0, 0.0, s * np.log1p(np.where(s == 0, 0.0, t)))

    def log1mexp(t):
        return np.where(t < math.log(2), np.log(-np.expm1(-t)), np.log1p(-np.exp(-t)))

    def log_ndtr(t):
        return np.log(np.vectorize(math.erfc)(-t / math.sqrt(2)) / 2)

    def log_ratio(t, s):
        # log t − s rounded once (mpmath, 50 digits): what the printers' frexp split approximates to ~5e-17
        import mpmath

        def one(tv, sv):
            with mpmath.workdps(50):
                return float(mpmath.log(mpmath.mpf(float(tv))) - mpmath.mpf(float(sv))) if tv > 0 else \
                    (-math.inf if tv == 0 else math.nan)

        return np.vectorize(one)(t, s)

    def x_over_expm1_m1(t):
        t = np.asarray(t, dtype=np.float64)
        small = np.abs(t) < 1e-4
        ts = np.where(small, t, 0.0)
        tb = np.where(small, 1.0, t)
        return np.where(small, -ts / 2 + ts * ts / 12, tb / np.expm1(tb) - 1)

    def log_tanhc(t):
        t = np.abs(t)
        return np.where(t < 1e-4, -(t**2) / 3, np.log(np.tanh(np.maximum(t, 1e-4)) / np.maximum(t, 1e-4)))

    return {
        "Softplus": lambda t: np.logaddexp(0.0, t),
        "Sigmoid": sigmoid,
        "LogAddExp": np.logaddexp,
        "LogAddExpFallback": np.logaddexp,
        "XLogY": xlogy,
        "XLog1pY": xlog1py,
        "Log1mExp": log1mexp,
        "LogRatio": log_ratio,
        "XOverExpm1M1": x_over_expm1_m1,
        "XMulY": lambda s, t: np.where(s == 0, 0.0, s * t),
        "LogNdtr": log_ndtr,
        "LogGamma": np.vectorize(math.lgamma),
        "LogTanhc": log_tanhc,
        "Square": np.square,
        "log1p": np.log1p,
        "expm1": np.expm1,
    }


def as_float(expr: sp.Expr, *symbols: sp.Symbol):
    return sp.lambdify(symbols, expr, modules=[_reference_numpy(), "numpy"])


def naive(expr: sp.Expr, *symbols: sp.Symbol):
    return sp.lambdify(symbols, expr, modules="numpy")


def exact(expr: sp.Expr, values: dict) -> sp.Float:
    """The value at ``values`` (taken as exact binary numbers) with 50 digits; mpmath has no overflow."""
    at = {k: sp.Rational(v) if isinstance(v, float) else v for k, v in values.items()}
    return expr.doit().subs(at).evalf(50)


def assert_same_value(original: sp.Expr, rewritten: sp.Expr, points: list[dict]) -> None:
    for values in points:
        want, got = exact(original, values), exact(rewritten, values)
        assert abs(complex(want - got)) <= 1e-30 * (1 + abs(complex(want))), (values, want, got)


def apply_rule(name: str, expr: sp.Expr, data=()) -> sp.Expr:
    """Only this rule (the others are covered by their own tests)."""
    from symloss.stabilize import Context

    ctx = Context(data=frozenset(data))
    out = expr
    for _ in range(4):
        out = RULES_BY_NAME[name].apply(out, ctx)
    assert name in ctx.fired, f"rule {name} did not fire on {expr}"
    return out


def float_value(f, *args) -> float:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return float(f(*[np.float64(v) for v in args]))


# ---------------------------------------------------------------------------------------------------------
def test_every_rule_has_a_name_pattern_and_reason_and_a_test_below():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    for r in RULES:
        assert r.pattern and r.reason and "→" in r.pattern
    tested = {n[len("test_rule_"):] for n in globals() if n.startswith("test_rule_")}
    assert set(names) <= tested, f"rules without a test: {sorted(set(names) - tested)}"


def test_rule_log_gamma():
    expr = sp.log(sp.gamma(p)) + sp.log(sp.factorial(y))
    out = apply_rule("log_gamma", expr)
    assert out == LogGamma(p) + LogGamma(y + 1)
    assert_same_value(expr, out, [{p: 2.5, y: 3}, {p: 0.1, y: 0}])
    # Γ(200) overflows, lgamma(200) does not
    with pytest.raises(OverflowError):
        math.gamma(200.0)
    assert float_value(as_float(LogGamma(p), p), 200.0) == pytest.approx(math.lgamma(200.0), rel=1e-15)


def test_rule_log_beta():
    q = sp.Symbol("q", positive=True)
    expr = LogGamma(p) + LogGamma(q) - LogGamma(p + q) + a
    out = apply_rule("log_beta", expr)
    assert out.has(LogBeta) and not out.has(LogGamma)
    assert_same_value(expr, out, [{p: 2.5, q: 0.5, a: 1}, {p: 30, q: 12, a: 0}])
    # the shifted form of the zero-inflated negative binomial: Γ(r)Γ(y + 1)/Γ(r + y) = B(r, y + 1)·(r + y)
    y = sp.Symbol("y", nonnegative=True)
    expr = LogGamma(p) + LogGamma(y + 1) - LogGamma(p + y) + a
    out = apply_rule("log_beta", expr)
    assert out.has(LogBeta) and not out.has(LogGamma)
    assert_same_value(expr, out, [{p: 2.5, y: 3, a: 1}, {p: 30, y: 0, a: 0}, {p: 1e-3, y: 12, a: 0}])


def test_rule_digamma_difference():
    q = sp.Symbol("q", positive=True)
    expr = sp.exp(a) * (sp.polygamma(0, p) - sp.polygamma(0, p + q) - sp.log(q))
    out = apply_rule("digamma_difference", sp.expand(expr))
    assert out.has(DigammaDifference) and not out.has(sp.polygamma)
    assert_same_value(sp.expand(expr), out, [{p: 2.5, q: 0.5, a: 1}, {p: 30, q: 12, a: 0}])


def test_rule_lgamma_difference():
    q = sp.Symbol("q", positive=True)
    expr = LogGamma(p) - LogGamma(p + q) + q * sp.log(a + 1)
    out = apply_rule("lgamma_difference", expr)
    assert out.has(LgammaDifference) and not out.has(LogGamma)
    assert_same_value(expr, out, [{p: 2.5, q: 0.5, a: 1}, {p: 30, q: 12, a: 0}])
    # the Student-t's pair: h is the number ½, the smaller argument ν/2 is x
    nu = sp.Symbol("nu", positive=True)
    out = apply_rule("lgamma_difference", LogGamma(nu / 2) - LogGamma(nu / 2 + sp.Rational(1, 2)))
    assert out == -LgammaDifference(nu / 2, sp.Rational(1, 2))
    # the derivative in x is the digamma difference, not two digammas that cancel
    assert sp.diff(LgammaDifference(p, q), p) == DigammaDifference(p, q)
    assert LgammaDifference(p, 0) == 0


def test_rule_lgamma_half_log():
    from symloss.stabilize import DigammaHalfRem, LgammaHalfRem

    nu = sp.Symbol("nu", positive=True)
    half = sp.Rational(1, 2)
    # the Student-t's value: ½·log ν − lgamma_difference(ν/2, ½); the ½·log ν cancels, ½·log 2 is left
    expr = sp.log(nu) / 2 + a - LgammaDifference(nu / 2, half)
    out = apply_rule("lgamma_half_log", expr)
    assert out == a - LgammaHalfRem(nu / 2) + sp.log(2) / 2
    assert_same_value(elementary(expr), elementary(out), [{nu: 3.0, a: 1.0}, {nu: 0.02, a: -2.0}])
    # the log link: ν = e^l, log(e^l/2) = l − log 2 cancels the l/2 of the loss
    out = apply_rule("lgamma_half_log", u / 2 - LgammaDifference(sp.exp(u) / 2, half))
    assert out == -LgammaHalfRem(sp.exp(u) / 2) + sp.log(2) / 2
    # its derivative is ψ(x + ½) − ψ(x) − 1/(2x): the 1/(2ν) of ½·log ν is gone with it
    assert sp.diff(LgammaHalfRem(nu), nu) == DigammaHalfRem(nu)
    # nothing to cancel (or another h): left alone
    for e in (a - LgammaDifference(nu / 2, half), sp.log(nu) / 2 - LgammaDifference(nu / 2, sp.Integer(1))):
        assert RULES_BY_NAME["lgamma_half_log"].apply(e) == e


def test_rule_lgamma_stirling():
    expr = -sp.exp(u) * a + LogGamma(sp.exp(u)) + b
    out = apply_rule("lgamma_stirling", expr)
    assert out.has(LgammaCorrection) and len(out.atoms(LogGamma)) == 1  # lgamma only below exp(u) = 10
    # where exp(u) ≥ 10, the a·log a of Stirling's formula and −a·log(rate) are one product: exp(u)·(u − a − 1)
    (pw,) = out.atoms(sp.Piecewise)
    g = Guard(u, u >= sp.log(10), sp.log(10))
    assert sp.exp(g) * (g - a - 1) in pw.args[0][0].args
    assert LogGamma(sp.exp(Guard(u, u <= sp.log(10), sp.log(10)))) in pw.args[1][0].args  # a clamp: min(u, log 10)
    assert_same_value(expr, out, [{u: 3, a: 2, b: 1}, {u: -2, a: 0.5, b: 0}, {u: 40, a: 39, b: 0}])


def test_rule_lgamma_log_quotient():
    from symloss.stabilize import Context, LogQuotient

    s = sp.Symbol("s", real=True)
    t = sp.Symbol("t", positive=True)
    a = sp.exp(u)
    # the Gamma's ℓ below a = 10: lgamma(a) − (a − 1)·log y + …  →  lgamma(a + 1) + (1 − a)·log(y/a) − a·u + …
    expr = LogGamma(a) - (a - 1) * sp.log(t) - s * a
    out = apply_rule("lgamma_log_quotient", expr, data=[t])
    assert out == LogGamma(a + 1) + (1 - a) * LogQuotient(t, a, u, sp.log(t)) - a * u - s * a
    assert_same_value(expr, elementary(out), [{u: -69.0, s: 1.0, t: 1e-30}, {u: 0.5, s: 0.0, t: 3.0}])
    # the inverse gamma's (a + 1)·log y; a guarded input (the small branch of lgamma_deviance) and a = e^u/2
    g = Guard(u, u <= sp.log(10), sp.log(10))
    inv = LogGamma(sp.exp(g) / 2) + (sp.exp(g) / 2 + 1) * sp.log(t)
    out = apply_rule("lgamma_log_quotient", inv, data=[t])
    assert out.has(LogQuotient(t, sp.exp(g) / 2, g - sp.log(2), sp.log(t))) and out.has(LogGamma(sp.exp(g) / 2 + 1))
    assert_same_value(inv.subs(g, u), elementary(out).subs(g, u), [{u: -40.0, t: 1e-17}, {u: 2.0, t: 0.3}])
    # nothing to cancel: no log y with the lgamma's coefficient, or not the data's log
    for same in (LogGamma(a) + a * sp.log(t), LogGamma(a) - sp.log(t), LogGamma(a) + sp.log(s**2 + 1)):
        assert RULES_BY_NAME["lgamma_log_quotient"].apply(same, Context(data=frozenset([t]))) == same
    # log_quotient(y, x, s, l) = l − s, as a function of four independent arguments
    assert LogQuotient(t, a, u, sp.log(t)).diff(u) == -1 and LogQuotient(t, a, u, sp.log(t)).diff(t) == 1 / t


def test_rule_lgamma_deviance():
    s = sp.Symbol("s", real=True)
    t = sp.Symbol("t", positive=True)
    # the Gamma's ℓ: lgamma(a) − a·log rate + rate·y − (a − 1)·log y, a = e^u, rate = e^s
    expr = LogGamma(sp.exp(u)) - s * sp.exp(u) + t * sp.exp(s) - (sp.exp(u) - 1) * sp.log(t)
    out = apply_rule("lgamma_deviance", expr, data=[t])
    (pw,) = out.atoms(sp.Piecewise)
    large, small = pw.args[0][0], pw.args[1][0]
    g = Guard(u, u >= sp.log(10), sp.log(10))
    # where a ≥ 10: Stirling's log terms and −a·log(rate·y) + rate·y are one bd0(a, rate·y), log(rate·y) given too
    assert Bd0(sp.exp(g), t * sp.exp(s), s + sp.log(t)) in large.args
    assert LgammaCorrectionSeries(sp.exp(g)) in large.args and not large.has(LogGamma)
    assert small.has(LogGamma(sp.exp(Guard(u, u <= sp.log(10), sp.log(10)))))  # below 10 as it was (a clamp)
    assert_same_value(expr, out, [{u: 3, s: 1, t: 0.5}, {u: -2, s: 0.5, t: 2}, {u: 40, s: 39, t: 3},
                                  {u: 40, s: 40, t: 1}])
    # the inverse gamma's: rate/y and (a + 1)·log y, log m = s − log y
    inv = LogGamma(sp.exp(u)) - s * sp.exp(u) + sp.exp(s) / t + (sp.exp(u) + 1) * sp.log(t)
    assert_same_value(inv, apply_rule("lgamma_deviance", inv, data=[t]), [{u: 3, s: 1, t: 0.5}, {u: 40, s: 41, t: 3}])
    # no rate·y term to pair with −a·log(rate·y): nothing to combine (lgamma_stirling's case)
    bare = LogGamma(sp.exp(u)) - s * sp.exp(u)
    assert RULES_BY_NAME["lgamma_deviance"].apply(bare) == bare
    other = LogGamma(sp.exp(u)) - s * sp.exp(u) + 2 * sp.exp(s)  # 2·e^s is not e^(log rate)
    assert RULES_BY_NAME["lgamma_deviance"].apply(other) == other
    # bd0 itself: exactly 0 at x = m, ≈ (x − m)²/(2m) near it, evaluated without the cancellation of its terms
    assert Bd0(p, p, sp.log(p)) == 0
    big = sp.Float(10, 60) ** 30
    want = big * sp.Float("1e-40", 60) / 2  # x·z²/2 at z = 1e-20
    got = Bd0(big, big * sp.exp(sp.Float("1e-20", 60)), sp.log(big) + sp.Float("1e-20", 60)).evalf(30)
    assert abs(got - want) <= 1e-12 * want


def test_rule_lbeta_deviance():
    t = sp.Symbol("t", positive=True)
    # the Beta's ℓ: lbeta(a, b) − (a − 1)·log y − (b − 1)·log(1 − y), a = e^u, b = e^x
    expr = LogBeta(sp.exp(u), sp.exp(x)) - (sp.exp(u) - 1) * sp.log(t) - (sp.exp(x) - 1) * sp.log(1 - t)
    out = apply_rule("lbeta_deviance", expr, data=[t])
    (pw,) = out.atoms(sp.Piecewise)
    large, small = pw.args[0][0], pw.args[1][0]
    assert len(large.atoms(Bd0)) == 2 and not large.has(LogBeta) and small.has(LogBeta)
    assert pw.args[0][1] == sp.And(u >= sp.log(10), x >= sp.log(10))
    assert_same_value(expr, out, [{u: 3, x: 4, t: 0.3}, {u: 1, x: 5, t: 0.5}, {u: 5, x: -1, t: 0.5},
                                  {u: 40, x: 41, t: 0.25}, {u: 30, x: 30, t: 0.5}])
    # the two bd0 are of a and (a + b)·y, b and (a + b)·(1 − y): only where the probabilities sum to 1
    other = LogBeta(sp.exp(u), sp.exp(x)) - sp.exp(u) * sp.log(t) - sp.exp(x) * sp.log(2 - t)
    assert RULES_BY_NAME["lbeta_deviance"].apply(other) == other


def test_rule_digamma_stirling():
    expr = sp.polygamma(0, sp.exp(u) / 2) - a
    out = apply_rule("digamma_stirling", expr)
    assert out.has(DigammaCorrection) and not out.has(sp.polygamma)
    assert_same_value(expr, out, [{u: 3, a: 2}, {u: -2, a: 0.5}])


def test_rule_expand_log():
    expr = sp.log(p * sp.exp(-a))
    out = apply_rule("expand_log", expr)
    assert out == sp.log(p) - a
    assert float_value(naive(expr, p, a), 1.0, -800.0) == math.inf
    assert float_value(as_float(out, p, a), 1.0, -800.0) == 800.0


def test_rule_power_as_exp():
    expr = (p * sp.exp(-a)) ** sp.exp(b)
    out = apply_rule("power_as_exp", expr)
    assert isinstance(out, sp.exp)
    assert_same_value(expr, out, [{p: 2.0, a: 0.3, b: -0.4}])


def test_rule_sigmoid():
    expr = 1 / (1 + sp.exp(-x))
    out = apply_rule("sigmoid", expr)
    assert out == Sigmoid(x)
    assert apply_rule("sigmoid", 1 / (1 + sp.exp(x))) == Sigmoid(-x)
    assert_same_value(expr, out, [{x: 3.0}, {x: -800.0}])
    assert float_value(as_float(out, x), -1000.0) == 0.0


def test_rule_sigmoid_absorb():
    expr = sp.exp(x) / (1 + sp.exp(x))
    out = stabilize(expr, rules=[RULES_BY_NAME["sigmoid"], RULES_BY_NAME["sigmoid_absorb"]])
    assert out == Sigmoid(x)
    # a sum over a common denominator is distributed first (the Bernoulli gradient)
    grad = (-y + (1 - y) * sp.exp(x)) / (sp.exp(x) + 1)
    out2 = stabilize(grad, rules=[RULES_BY_NAME["sigmoid"], RULES_BY_NAME["sigmoid_absorb"]])
    assert not out2.has(sp.exp)
    assert_same_value(grad, out2, [{x: 2.0, y: 1}, {x: -3.0, y: 0}])
    assert math.isnan(float_value(naive(expr, x), 1000.0))
    assert float_value(as_float(out, x), 1000.0) == 1.0
    assert float_value(as_float(out2, x, y), 1000.0, 0.0) == 1.0


def test_rule_sigmoid_complement():
    out = apply_rule("sigmoid_complement", 1 - Sigmoid(x))
    assert out == Sigmoid(-x)
    assert float_value(as_float(out, x), 40.0) == pytest.approx(math.exp(-40.0), rel=1e-14)


def test_rule_log_sigmoid():
    out = apply_rule("log_sigmoid", sp.log(Sigmoid(x)))
    assert out == -Softplus(-x)
    assert float_value(as_float(out, x), -1000.0) == -1000.0
    assert float_value(as_float(sp.log(Sigmoid(x)), x), -1000.0) == -math.inf  # what the rule prevents


def test_rule_softplus():
    expr = sp.log(1 + sp.exp(x))
    out = apply_rule("softplus", expr)
    assert out == Softplus(x)
    assert_same_value(expr, out, [{x: 2.0}, {x: 1000.0}, {x: -1000.0}])
    assert float_value(naive(expr, x), 1000.0) == math.inf
    assert float_value(as_float(out, x), 1000.0) == 1000.0
    # the derivative of softplus is the stable sigmoid, NaN-free at x = 1000
    d = sp.diff(out, x)
    assert d == Sigmoid(x)
    assert math.isnan(float_value(naive(sp.diff(expr, x), x), 1000.0))
    assert float_value(as_float(d, x), 1000.0) == 1.0


def test_rule_logaddexp():
    expr = sp.log(sp.exp(a) + sp.exp(b))
    out = apply_rule("logaddexp", expr)
    assert isinstance(out, LogAddExp)
    assert_same_value(expr, out, [{a: 1.0, b: 2.0}, {a: 900.0, b: 901.0}])
    assert float_value(naive(expr, a, b), 900.0, 901.0) == math.inf
    assert float_value(as_float(out, a, b), 900.0, 901.0) == pytest.approx(901 + math.log1p(math.exp(-1)))
    three = apply_rule("logaddexp", sp.log(sp.exp(a) + sp.exp(b) + 2 * sp.exp(x)))
    assert_same_value(sp.log(sp.exp(a) + sp.exp(b) + 2 * sp.exp(x)), three, [{a: 1.0, b: -2.0, x: 0.5}])


def test_rule_logsumexp():
    k = sp.Symbol("k", integer=True, nonnegative=True)
    j = sp.Symbol("j", integer=True, nonnegative=True)
    K = sp.Symbol("K", integer=True, positive=True)
    z = sp.IndexedBase("z", real=True)
    total = sp.Sum(sp.exp(z[k]), (k, 0, K - 1))
    out = apply_rule("logsumexp", sp.log(total))
    assert isinstance(out, LogSumExp)
    softmax = apply_rule("logsumexp", sp.exp(z[j]) / total)
    assert softmax.has(MaxOver) and softmax.has(SumBelowOne) and not softmax.has(sp.Sum)
    values = {K: 3, z[0]: 1.0, z[1]: -2.0, z[2]: 800.0}
    assert abs(exact(out.subs(K, 3), values) - (800 + math.log1p(math.exp(-799) + math.exp(-802)))) < 1e-12
    # softmax = exp(z_j − M)/(1 + R): the same value, no overflow at z = 800
    for jj in range(3):
        want = exact((sp.exp(z[j]) / total).subs({K: 3, j: jj}).doit(), values)
        got = exact(softmax.subs({K: 3, j: jj}).doit(), values)
        assert abs(got - want) <= 1e-15 * abs(want)
    # R is the denominator less its largest term, 1: Σ_k exp(z_k − M) − 1
    rest = next(iter(softmax.atoms(SumBelowOne)))
    assert abs(exact(rest.subs(K, 3).doit(), values) - (math.exp(-799) + math.exp(-802))) < 1e-300
    # its derivative with respect to z[j] is softmax(z)[j]
    d = sp.diff(out, z[j])
    assert d == sp.exp(z[j] - out)


def test_rule_softmax_cross_entropy():
    k = sp.Symbol("k", integer=True, nonnegative=True)
    m = sp.Symbol("m", integer=True, nonnegative=True)
    K = sp.Symbol("K", integer=True, positive=True)
    z = sp.IndexedBase("z", real=True)
    y = sp.IndexedBase("y", real=True)
    lse = LogSumExp(z[m], sp.Tuple(m, 0, K - 1))
    expr = lse * sp.Sum(y[k], (k, 0, K - 1)) - sp.Sum(z[k] * y[k], (k, 0, K - 1))
    out = apply_rule("softmax_cross_entropy", expr)
    assert out.has(MaxOver) and out.has(SumBelowOne) and not out.has(LogSumExp)
    # the same function (any number of classes): log1p(R)·Σ_k y_k − Σ_k y_k·(z_k − M), both parts ≥ 0
    for zs, ys in (([1.0, -2.0, 800.0], [0.0, 1.0, 0.0]), ([-40.0, -40.0, 0.0], [0.0, 0.0, 2.0])):
        values = {**{z[i]: zs[i] for i in range(3)}, **{y[i]: ys[i] for i in range(3)}}
        want = exact(expr.subs(K, 3).doit(), values)
        got = exact(out.subs(K, 3).doit(), values)
        assert abs(got - want) <= 1e-12 * max(1.0, abs(want))
    # a coefficient and other terms are kept; a sum over other weights than the logsumexp's total is left alone
    a = sp.Symbol("a", real=True)
    out2 = apply_rule("softmax_cross_entropy", 2 * expr + a)
    assert out2.has(a) and out2.has(SumBelowOne)
    ctx_expr = lse * sp.Sum(y[k], (k, 0, K - 1)) - sp.Sum(z[k] ** 2 * y[k], (k, 0, K - 1))
    from symloss.stabilize import Context

    ctx = Context(data=frozenset())
    assert RULES_BY_NAME["softmax_cross_entropy"].apply(ctx_expr, ctx) == ctx_expr


def test_rule_softmax_cross_entropy_is_accurate_where_the_difference_cancels():
    """Generated float64 value at logits [−40, −40, 0] and [−1e4]·3 (the naive form gives 0 and 779 ulps)."""
    import symloss
    from symloss.codegen import load

    loss = symloss.derive("categorical", link="canonical")
    mod = load(loss, "numpy")
    logits = np.array([[-40.0, -40.0, 0.0], [-1e4, -1e4, -1e4], [-1e4, 0.0, 40.0]])
    y = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    got = mod.loss(logits, y, reduction="none")
    want = [math.log1p(2 * math.exp(-40.0)), math.log(3.0), math.log1p(math.exp(-40.0))]
    for g, w in zip(np.ravel(got), want, strict=True):
        assert abs(g - w) <= 4 * math.ulp(w)


def test_rule_softmax_gradient():
    """Σy·softmax(z)_j − y_j over one denominator: the same function, and accurate where softmax(z)_j ≈ 1."""
    import mpmath
    import torch

    import symloss
    from symloss.codegen import load
    from symloss.stabilize import Context

    m = sp.Symbol("m", integer=True, nonnegative=True)
    K = sp.Symbol("K", integer=True, positive=True)
    z = sp.IndexedBase("z", real=True)
    u, v = sp.symbols("u v", real=True)
    top = MaxOver(z[m], sp.Tuple(m, 0, K - 1))
    below = SumBelowOne(sp.exp(z[m] - top), sp.Tuple(m, 0, K - 1))
    expr = u * sp.exp(z[0] - top) / (1 + below) - v
    out = apply_rule("softmax_gradient", expr)
    assert out.has(Held) and out.has(SumBelowOne)
    for zs, us, vs in (([40.0, -40.0, -1e4], 1.0, 1.0), ([1.0, 2.0, 3.0], 2.5, 0.5), ([0.0, 0.0, 0.0], 1.0, 0.0)):
        values = {**{z[i]: zs[i] for i in range(3)}, u: us, v: vs}
        want = exact(expr.subs(K, 3).doit(), values)
        got = exact(out.subs(K, 3).doit(), values)
        assert abs(got - want) <= 1e-40 + 1e-30 * abs(want)
    # no shifted exponential, or no other term: left alone
    plain = u * sp.exp(z[0]) / (1 + below) - v
    assert RULES_BY_NAME["softmax_gradient"].apply(plain, Context(data=frozenset())) == plain
    lone = u * sp.exp(z[0] - top) / (1 + below)
    assert RULES_BY_NAME["softmax_gradient"].apply(lone, Context(data=frozenset())) == lone
    # the generated gradient at a confident correct class: −Σ_{k≠j} p_k, not 0 (F.cross_entropy gives 0)
    loss = symloss.derive("categorical", link="canonical")
    logits = [[40.0, -40.0, -1e4], [3.0, 1.0, -2.0], [0.0, 0.0, 0.0]]
    targets = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    for target in ("numpy", "torch"):
        mod = load(loss, target)
        conv = np.asarray if target == "numpy" else lambda a: torch.tensor(a, dtype=torch.float64)
        (g,) = mod.grad(conv(logits), conv(targets), reduction="none")
        g = np.asarray(g)
        with mpmath.workdps(60):
            for row, (zs, ys) in enumerate(zip(logits, targets, strict=True)):
                s = mpmath.fsum(mpmath.exp(mpmath.mpf(a)) for a in zs)
                for j in range(3):
                    want = float(mpmath.exp(mpmath.mpf(zs[j])) / s * sum(ys) - ys[j])
                    assert g[row, j] == want or abs(g[row, j] - want) <= 4 * math.ulp(want), (target, row, j)


def test_rule_log1mexp():
    expr = sp.log(1 - sp.exp(-p))
    out = apply_rule("log1mexp", expr)
    assert out == Log1mExp(p)
    assert apply_rule("log1mexp", log1p(-sp.exp(-p))) == Log1mExp(p)
    assert_same_value(expr, out, [{p: 1e-20}, {p: 50.0}])
    assert float_value(naive(expr, p), 1e-20) == -math.inf
    assert float_value(as_float(out, p), 1e-20) == pytest.approx(math.log(1e-20), rel=1e-14)
    assert float_value(as_float(out, p), 50.0) == pytest.approx(-math.exp(-50.0), rel=1e-14)


def test_rule_log_ndtr():
    expr = sp.log(sp.erfc(-x / sp.sqrt(2)) / 2)  # log Φ(x): the probit link's log-probability
    out = stabilize(expr)
    assert out == LogNdtr(x)
    assert_same_value(expr, out, [{x: 0.5}, {x: -30.0}])
    plain = apply_rule("log_ndtr", sp.log(sp.erfc(x)))
    assert plain == sp.log(2) + LogNdtr(-sp.sqrt(2) * x)
    assert apply_rule("log_ndtr", log1p(-sp.erfc(x) / 2)) == LogNdtr(sp.sqrt(2) * x)
    # the upper tail: log(1 − Φ(x)) = log Φ(−x)
    assert stabilize(sp.log(1 - sp.erfc(-x / sp.sqrt(2)) / 2)) == LogNdtr(-x)
    # Φ(−40) underflows; its log is about −804.6
    assert float_value(naive(sp.log(sp.erfc(-x / sp.sqrt(2)) / 2), x), -40.0) == -math.inf
    assert float(exact(LogNdtr(x), {x: -40.0})) == pytest.approx(-804.6084420137538, rel=1e-12)
    # its derivative is the inverse Mills ratio, finite far in the tail
    d = sp.diff(LogNdtr(x), x)
    assert float(exact(d, {x: -40.0})) == pytest.approx(40.02498, rel=1e-5)


def test_rule_log_cosh():
    expr = sp.log(sp.cosh(x))
    out = apply_rule("log_cosh", expr)
    assert out.has(Softplus) and not out.has(sp.cosh)
    assert_same_value(expr, out, [{x: 0.3}, {x: -800.0}])
    assert float_value(naive(expr, x), 800.0) == math.inf
    assert float_value(as_float(out, x), 800.0) == pytest.approx(800 - math.log(2), rel=1e-15)


def test_rule_tanh():
    expr = sp.sinh(x) / sp.cosh(x)
    out = apply_rule("tanh", expr)
    assert out == sp.tanh(x)
    assert math.isnan(float_value(naive(expr, x), 800.0))
    assert float_value(as_float(out, x), 800.0) == 1.0


def test_rule_softplus_pair():
    """(1 − y)·softplus(x) + y·softplus(−x) → softplus(−|x|) + x·(step(x) − y): one softplus, same value."""
    expr = (1 - y) * Softplus(x) + y * Softplus(-x) + a
    out = apply_rule("softplus_pair", expr)
    assert out.has(Sgn) and len(out.atoms(Softplus)) == 1 and out.has(a)
    pts = [{x: v, y: t, a: 0.5} for v in (-30.0, -1.5, 0.0, 2.0, 40.0) for t in (0.0, 0.3, 1.0)]
    assert_same_value(expr, out, pts)
    # binomial weights (n − y, y): c = n; a weight pair whose total is not simpler (y, 1) is left alone
    n = sp.Symbol("n", positive=True)
    binom = apply_rule("softplus_pair", (n - y) * Softplus(x) + y * Softplus(-x))
    assert_same_value((n - y) * Softplus(x) + y * Softplus(-x), binom, [{x: -3.0, y: 2, n: 5}, {x: 7.0, y: 5, n: 5}])
    from symloss.stabilize import Context

    ctx = Context()
    geometric = y * Softplus(x) + Softplus(-x)
    assert RULES_BY_NAME["softplus_pair"].apply(geometric, ctx) == geometric
    # float64: the label part and softplus(−|x|) are both ≥ 0, exact at logits ±1e4 and for a soft label
    mod = _bernoulli_numpy()
    for xv, yv in ((1e4, 1.0), (-1e4, 0.0), (30.0, 1.0), (30.0, 1 - 2**-30), (-40.0, 1e-20), (0.0, 0.25)):
        want = exact(expr.subs(a, 0), {x: xv, y: yv})
        got = float(mod.loss(np.float64(xv), np.float64(yv), reduction="none"))
        assert abs(got - float(want)) <= 2 * math.ulp(float(want)) or float(want) == got, (xv, yv, got, want)


def test_rule_sigmoid_pair():
    """(1 − y)·σ(x) − y·σ(−x) → (step(x) − y) − sgn(x)·σ(−|x|): one sigmoid, same value, ½ − y at 0."""
    expr = (1 - y) * Sigmoid(x) - y * Sigmoid(-x)
    out = apply_rule("sigmoid_pair", expr)
    assert out.has(Sgn) and len(out.atoms(Sigmoid)) == 1
    pts = [{x: v, y: t} for v in (-30.0, -1.5, 0.0, 2.0, 40.0) for t in (0.0, 0.3, 1.0)]
    assert_same_value(expr, out, pts)
    mod = _bernoulli_numpy()
    for xv, yv in ((30.0, 1.0), (-30.0, 0.0), (0.0, 0.3), (-0.0, 0.3), (1e4, 1.0), (2.0, 1 - 2**-40)):
        want = float(exact(expr, {x: xv, y: yv}))
        (g,) = mod.grad(np.float64(xv), np.float64(yv), reduction="none")
        assert abs(float(g) - want) <= 2 * math.ulp(want), (xv, yv, float(g), want)


def _bernoulli_numpy():
    import symloss
    from symloss.codegen import load

    return load(symloss.derive("bernoulli", link="canonical"), "numpy")


def test_sgn_has_a_side_at_zero():
    assert Sgn(sp.Integer(0)) == 1 and Sgn(sp.Float(-2.5)) == -1
    assert sp.diff(Sgn(x), x) == 0
    assert elementary(Sgn(x)).subs(x, 0) == 1


def test_rule_softplus_difference():
    out = apply_rule("softplus_difference", 3 * Softplus(x) - 3 * Softplus(-x) + a)
    assert out == 3 * x + a


def test_rule_sigmoid_to_tanh():
    expr = 2 * Sigmoid(x) - 1
    out = apply_rule("sigmoid_to_tanh", expr)
    assert out == sp.tanh(x / 2)
    assert_same_value(expr, out, [{x: 1e-9}, {x: 3.0}])
    assert float_value(as_float(out, x), 1e-300) == pytest.approx(5e-301, rel=1e-14)
    assert float_value(as_float(expr, x), 1e-300) == 0.0  # all digits lost without the rule
    # a common factor, expanded (the logistic's ∂ℓ/∂loc = a·2·sigmoid(x) − a)
    expanded = 2 * a * Sigmoid(x) - a + b
    out2 = apply_rule("sigmoid_to_tanh", expanded)
    assert out2 == a * sp.tanh(x / 2) + b
    assert_same_value(expanded, out2, [{x: 1e-9, a: 3.0, b: 0.5}, {x: 3.0, a: -2.0, b: 1.0}])
    neg = -2 * a * x * Sigmoid(x) + a * x + 1
    assert apply_rule("sigmoid_to_tanh", neg) == 1 - a * x * sp.tanh(x / 2)


def test_rule_log_tanhc():
    expr = sp.log(sp.Abs(sp.tanh(x / 2))) - sp.log(sp.Abs(x))  # the continuous Bernoulli's normaliser
    out = apply_rule("log_tanhc", expr)
    assert out == LogTanhc(x / 2) - sp.log(2)
    assert_same_value(expr, out, [{x: 0.01}, {x: -7.0}, {x: 300.0}])
    assert math.isnan(float_value(naive(expr, x), 0.0))
    assert float_value(as_float(out, x), 0.0) == pytest.approx(-math.log(2))
    # the derivative is finite and 0 at 0; away from 0 it is 2/sinh(2t) − 1/t
    assert sp.diff(LogTanhc(x), x) == DLogTanhc(x)
    assert DLogTanhc(sp.Integer(0)) == 0
    assert float(exact(DLogTanhc(x), {x: 0.7})) == pytest.approx(2 / math.sinh(1.4) - 1 / 0.7, rel=1e-14)


def test_rule_log1p():
    expr = sp.log(1 + x**2)
    out = apply_rule("log1p", expr)
    assert out == log1p(x**2)
    assert float_value(as_float(out, x), 1e-10) == pytest.approx(1e-20, rel=1e-14)
    assert float_value(naive(expr, x), 1e-10) == 0.0


def test_rule_expm1():
    expr = sp.exp(x) - 1 + a
    out = apply_rule("expm1", expr)
    assert out == expm1(x) + a
    assert apply_rule("expm1", 1 - sp.exp(x)) == -expm1(x)
    assert float_value(as_float(expm1(x), x), 1e-20) == 1e-20
    assert float_value(naive(sp.exp(x) - 1, x), 1e-20) == 0.0


def _log_mixture_reference(g: float, u: float, v: float) -> float:
    """log(σ(g)·e^u + σ(−g)·e^v) with mpmath at 100 digits (evalf of the logaddexp loses the small ones)."""
    import mpmath

    with mpmath.workdps(100):
        g, u, v = mpmath.mpf(g), mpmath.mpf(u), mpmath.mpf(v)
        return float(mpmath.log(mpmath.exp(u) / (1 + mpmath.exp(-g)) + mpmath.exp(v) / (1 + mpmath.exp(g))))


def test_rule_log_mixture():
    # log(π + (1 − π)·e^−p), π = σ(a): a zero-inflated Poisson's zero, p the rate
    expr = LogAddExp(-Softplus(-a), -Softplus(a) - p)
    out = apply_rule("log_mixture", expr)
    assert out.has(log1p) and out.has(LogAddExpFallback)
    assert RULES_BY_NAME["log_mixture"].apply(out) == out  # its fallback is not matched again
    assert_same_value(expr, out, [{a: 0.3, p: 2.0}, {a: -4.0, p: 1e-3}, {a: -700.0, p: 700.0}])
    f = as_float(out, a, p)
    for g, rate in [(0.0, 1e-30), (0.3, 2.0), (-4.0, 1e-3), (40.0, 1.0), (-700.0, 700.0), (1e4, 1e300),
                    (-1e4, 1e300), (-1.0, 0.7)]:
        want = _log_mixture_reference(g, 0.0, -rate)
        assert float_value(f, g, rate) == pytest.approx(want, rel=1e-14, abs=1e-300), (g, rate)
    # at p = 1e-30 the value is −(1 − π)·p = −5e-31; the logaddexp alone rounds it to 0
    assert float_value(naive(elementary(expr), a, p), 0.0, 1e-30) == 0.0
    assert float_value(as_float(expr, a, p), 0.0, 1e-30) == 0.0
    # a difference of unknown sign: the log1p branch is bounded on both sides
    expr2 = LogAddExp(x - Softplus(a), -Softplus(-a))
    out2 = apply_rule("log_mixture", expr2)
    assert out2.has(log1p)
    assert_same_value(expr2, out2, [{a: 0.5, x: 2.0}, {a: -2.0, x: 800.0}, {a: 3.0, x: -1.0}])
    f2 = as_float(out2, a, x)
    for g, c in [(0.5, 1e-12), (-2.0, 800.0), (3.0, -1.0), (0.0, 1e-20), (-800.0, 2.0), (800.0, 1e3)]:
        want = _log_mixture_reference(g, 0.0, c)
        assert float_value(f2, g, c) == pytest.approx(want, rel=1e-14, abs=1e-300), (g, c)
    # no point mass (two densities, a Gaussian mixture's u and v): left to the logaddexp
    mix = LogAddExp(b - Softplus(-a), x - Softplus(a))
    assert RULES_BY_NAME["log_mixture"].apply(mix) == mix
    # weights that are not complementary: left alone
    other = LogAddExp(-Softplus(-a), -Softplus(b) - p)
    assert RULES_BY_NAME["log_mixture"].apply(other) == other


def test_rule_expm1_sigmoid():
    # expm1(u)·σ(−u − a), u > 0: a zero-inflated gate's gradient at a huge total count
    expr = expm1(p) * Sigmoid(-p - a)
    out = apply_rule("expm1_sigmoid", expr)
    assert not out.has(expm1(p))
    assert_same_value(expr, out, [{p: 0.5, a: 1.0}, {p: 30.0, a: -2.0}])
    # u = 1e3, a = 1: the true value is −expm1(−1e3)·exp(−1)·σ(1e3 + 1) = e^-1
    assert float_value(as_float(out, p, a), 1e3, 1.0) == pytest.approx(math.exp(-1.0), rel=1e-15)
    assert math.isnan(float_value(naive(elementary(expr), p, a), 1e3, 1.0))
    # u of unknown sign, or a sum that does not simplify: left alone
    assert RULES_BY_NAME["expm1_sigmoid"].apply(expm1(x) * Sigmoid(-x - a)) == expm1(x) * Sigmoid(-x - a)
    assert RULES_BY_NAME["expm1_sigmoid"].apply(expm1(p) * Sigmoid(a)) == expm1(p) * Sigmoid(a)


def test_rule_exp_difference():
    # k − k·exp(z) with the k inside the exponent: a Weibull's ∂ℓ/∂log λ, exp(a) − exp(a + z·e^a)
    z = x * sp.exp(a)
    expr = sp.exp(a) - sp.exp(a + z)
    out = apply_rule("exp_difference", expr)
    assert out.has(expm1)
    assert_same_value(expr, out, [{a: 0.5, x: 0.3}, {a: -1.0, x: -2.0}])
    # a = −69 (k = 1e-30), x = 690: z = 6.9e-28, the gradient −k·z = −6.9e-58, which the difference loses
    want = float(exact(expr, {a: -69.0, x: 690.0}))
    assert float_value(as_float(out, a, x), -69.0, 690.0) == pytest.approx(want, rel=1e-14)
    assert float_value(naive(expr, a, x), -69.0, 690.0) == 0.0
    # two unrelated exponentials: left alone
    assert RULES_BY_NAME["exp_difference"].apply(sp.exp(a) - sp.exp(b)) == sp.exp(a) - sp.exp(b)


def test_rule_exp_minus_coefficient():
    # z·e^z − z with the −z spread over two terms (a Weibull's ∂ℓ/∂log k): k·λ − k·log y + (log y − λ)·k·e^z
    expr = b * sp.exp(a) - sp.exp(a) * x + (x - b) * sp.exp(a + u) - 1
    out = apply_rule("exp_minus_coefficient", expr)
    assert out.has(expm1)
    assert_same_value(expr, out, [{a: 0.5, b: 0.3, x: 2.0, u: 0.1}])
    want = float(exact(expr, {a: 3.0, b: 1.0, x: 2.0, u: 1e-20}))
    assert float_value(as_float(out, a, b, x, u), 3.0, 1.0, 2.0, 1e-20) == pytest.approx(want, rel=1e-14)


def test_rule_x_over_expm1():
    # a Kumaraswamy's ∂ℓ/∂log a: z − 1 + (1 − b)·z/expm1(z), z = −a·log y, (1 − b) = −expm1(log b)
    expr = x - 1 - expm1(b) * x / expm1(x)
    out = apply_rule("x_over_expm1", expr)
    assert out.has(XOverExpm1M1)
    assert_same_value(expr, elementary(out), [{x: 0.3, b: 0.5}, {x: -2.0, b: -1.0}, {x: 40.0, b: 2.0}])
    # a = b = 1e-30, y = 1e-300: z = 6.9e-28, the gradient z/2 − b + … = 3.44e-28; the −1 takes every digit
    # of z/expm1(z) = 1 − z/2 away in the formula as derived
    at = {x: 6.907755278982137e-28, b: math.log(1e-30)}
    want = float(exact(expr, at))
    assert want == pytest.approx(3.44e-28, rel=1e-2, abs=0)
    assert float_value(as_float(out, x, b), *at.values()) == pytest.approx(want, rel=1e-14, abs=0)
    assert float_value(naive(expr, x, b), *at.values()) != pytest.approx(want, rel=1e-2, abs=0)
    # with the 1 on its own: c·x/expm1(x) − c as a whole
    assert apply_rule("x_over_expm1", 2 * x / expm1(x) - 2 + a) == 2 * XOverExpm1M1(x) + a
    # no −c to take away: left alone
    assert RULES_BY_NAME["x_over_expm1"].apply(x / expm1(x) + a) == x / expm1(x) + a
    assert XOverExpm1M1(sp.Integer(0)) == 0


def test_rule_sigmoid_product_difference():
    # σ(a)σ(−a − p) − σ(−a)σ(a + p): a zero-inflated gate's gradient, p the rate
    expr = Sigmoid(a) * Sigmoid(-a - p) - Sigmoid(-a) * Sigmoid(a + p)
    out = apply_rule("sigmoid_product_difference", expr)
    assert out.has(expm1)
    assert_same_value(expr, out, [{a: 0.3, p: 2.0}, {a: -4.0, p: 1e-3}])
    want = float(exact(expr, {a: 0.0, p: 1e-30}))  # −σ(0)² · 1e-30
    assert float_value(as_float(out, a, p), 0.0, 1e-30) == pytest.approx(want, rel=1e-15)
    assert float_value(naive(elementary(expr), a, p), 0.0, 1e-30) == 0.0
    # the mirror image, a + b ≥ 0
    out2 = apply_rule("sigmoid_product_difference", Sigmoid(a + p) * Sigmoid(-a) - Sigmoid(-a - p) * Sigmoid(a))
    assert_same_value(Sigmoid(a + p) * Sigmoid(-a) - Sigmoid(-a - p) * Sigmoid(a), out2, [{a: 0.3, p: 2.0}])


def test_rule_xlogy():
    expr = -y * sp.log(p) - (1 - y) * sp.log(1 - p)  # binary cross-entropy on probabilities
    out = stabilize(expr, data=[y])
    assert out.has(XLogY) and out.has(XLog1pY)
    assert_same_value(expr, out, [{y: 1, p: 0.3}, {y: 0, p: 0.8}])
    f_naive, f_stable = naive(expr, y, p), as_float(out, y, p)
    # y = 0 with probs → 0 (or y = 1 with probs → 1): 0·log 0 is NaN, its limit 0
    assert math.isnan(float_value(f_naive, 0.0, 0.0))
    assert float_value(f_stable, 0.0, 0.0) == 0.0
    assert float_value(f_stable, 1.0, 1.0) == 0.0
    # without the target in the product the rule leaves x·log(y) alone
    assert stabilize(a * sp.log(p), data=[y]) == a * sp.log(p)
    # x·(log y + c) is distributed so the 0·log 0 part can be guarded (Weibull at y = 0 with shape 1)
    w = sp.Symbol("w", positive=True)
    weib = -expm1(a) * (sp.log(w) - b)
    out2 = apply_rule("xlogy", weib, data=[w])
    assert out2.has(XLogY)
    assert float_value(as_float(out2, a, w, b), 0.0, 0.0, 1.0) == 0.0
    # the derivatives: ∂/∂x xlogy(x, y) = log y, ∂/∂y = x/y
    assert sp.diff(XLogY(a, p), a) == sp.log(p)
    assert sp.diff(XLogY(a, p), p) == a / p


def test_rule_log_ratio():
    w = sp.Symbol("w", positive=True)  # the data
    # a Weibull's ℓ with log λ = b the input: (1 − k)·(log y − b) + (y/λ)^k, k = e^a
    expr = -expm1(a) * (sp.log(w) - b) + sp.exp(sp.exp(a) * (sp.log(w) - b))
    out = apply_rule("log_ratio", expr, data=[w])
    assert out == -expm1(a) * LogRatio(w, b) + sp.exp(sp.exp(a) * LogRatio(w, b))
    assert_same_value(expr, elementary(out), [{a: 0.5, b: 0.3, w: 2.0}])
    # y = 1e-30 and b = fl(log 1e-30): log y − b is log's own rounding error, which fl(log y) − b loses
    yv, bv = 1e-30, math.log(1e-30)
    want = float(exact(sp.log(w) - b, {w: yv, b: bv}))
    assert want != 0.0
    assert float_value(naive(sp.log(w) - b, w, b), yv, bv) == 0.0
    assert float_value(as_float(LogRatio(w, b), w, b), yv, bv) == want
    # and so (y/λ)^k at k = 1e30 is 0 or ∞, not 1
    weib = stabilize(expr, data=[w])
    assert weib.has(XMulY) and not weib.has(XLogY)  # (k − 1)·(log y − b) kept whole, guarded like xlogy
    assert_same_value(expr, elementary(weib), [{a: 0.5, b: 0.3, w: 2.0}])
    want = float(exact(expr, {a: math.log(1e8), b: bv, w: yv}))  # (k − 1)·d + exp(k·d), k = 1e8: 1 + d
    assert float_value(as_float(weib, a, b, w), math.log(1e8), bv, yv) == pytest.approx(want, rel=1e-15, abs=0)
    # k = 1 at y = 0: 0·log 0 = 0, as with xlogy; exp(−∞) = 0
    assert float_value(as_float(weib, a, b, w), 0.0, 1.0, 0.0) == 0.0
    # a part of the coefficient (a Pareto: (α + 1)·log y − log α − α·log σ): 1·(log y − log α) pairs on its own
    pareto = -(-sp.exp(a) - 1) * sp.log(w) - a - sp.exp(a) * sp.log(p)
    out2 = apply_rule("log_ratio", pareto, data=[w])
    assert out2 == LogRatio(w, a) + sp.exp(a) * sp.log(w) - sp.exp(a) * sp.log(p)
    at = {a: math.log(1e-8), p: 1e-8, w: 1e-8}
    want = float(exact(pareto, at))
    assert want != 0.0
    assert float_value(as_float(out2, a, p, w), *at.values()) == pytest.approx(want, rel=1e-12, abs=0)
    # an input with a partner of another input to cancel with exactly (a Gamma's log a − log rate − log y at
    # a = rate = 1e30): left to it, not paired with log y
    assert RULES_BY_NAME["log_ratio"].apply(a - b - sp.log(w), _ctx(w)) == a - b - sp.log(w)
    # a sum (log y + b, the log of a product) or a log of no data: left alone
    assert RULES_BY_NAME["log_ratio"].apply(sp.log(w) + b, _ctx(w)) == sp.log(w) + b
    assert RULES_BY_NAME["log_ratio"].apply(sp.log(p) - b, _ctx(w)) == sp.log(p) - b
    # its derivatives: ∂/∂y = 1/y, ∂/∂s = −1
    assert sp.diff(LogRatio(w, b), w) == 1 / w and sp.diff(LogRatio(w, b), b) == -1
    assert LogRatio(w, sp.Integer(0)) == sp.log(w)


def test_rule_expm1_offset():
    from symloss.stabilize import log_ratio_power

    w = sp.Symbol("w", positive=True)  # the data
    c = sp.Symbol("c", nonnegative=True)  # a 0/1 censoring indicator
    t = sp.exp(a) * LogRatio(w, b)  # k·(log y − log λ), k = e^a
    # a censored Weibull's ∂ℓ/∂log λ = k·(1 − c − (y/λ)^k), as the expm1 rule leaves it
    expr = sp.exp(a) * (-c - expm1(t))
    out = apply_rule("expm1_offset", expr, data=[w])
    assert out.has(sp.Piecewise) and out.has(Guard)
    (pw,) = out.atoms(sp.Piecewise)
    assert pw.args[1][0] == -sp.exp(t) + Held(1 - c)  # (1 − c) − (y/λ)^k: 1 − c exact for c ∈ {0, 1}
    assert_same_value(expr, elementary(out), [{a: 0.0, b: 0.0, c: 1, w: 1e-8}, {a: 0.5, b: 0.3, c: 0, w: 2.0},
                                              {a: 0.0, b: 0.0, c: 0, w: 1.5}])
    # at c = 1 and (y/λ)^k = 1e-16 the expm1 form loses every digit (−1 − expm1(−36.8) is 1.1e-16 or 0); the far
    # branch is −(y/λ)^k (its exp evaluated here as the printers' pow would: (y·e^−s)^k)
    reference = {**_reference_numpy(), "Guard": lambda x, cond, safe: np.where(cond, x, safe), "Held": lambda x: x}
    f = sp.lambdify((a, b, c, w), out.replace(sp.exp, lambda e: sp.exp(e) if not e.has(LogRatio)
                                                 else (w * sp.exp(-b)) ** sp.exp(a)),
                    modules=[reference, "numpy"])
    at = (0.0, math.log(1e8), 1.0, 1e-8)
    want = float(exact(elementary(expr), dict(zip((a, b, c, w), at))))
    assert float_value(f, *at) == pytest.approx(want, rel=1e-15)
    assert float_value(naive(elementary(expr), a, b, c, w), *at) != pytest.approx(want, rel=1e-2, abs=0)
    # only an exponent with log_ratio (a power of the data over a scale) in it, linearly
    assert log_ratio_power(t) == (0, sp.exp(a), LogRatio(w, b))
    assert log_ratio_power(a + 2 * t) == (a, 2 * sp.exp(a), LogRatio(w, b))
    assert log_ratio_power(a + b) is None and log_ratio_power(t**2) is None
    assert RULES_BY_NAME["expm1_offset"].apply(-c - expm1(a), _ctx(w)) == -c - expm1(a)


def _ctx(*data):
    from symloss.stabilize import Context

    return Context(data=frozenset(data))


def test_rule_factor_denominator():
    expr = (y - p) / (p**2 - p)  # the derived gradient of the binary cross-entropy
    out = apply_rule("factor_denominator", expr)
    assert out == (y - p) / (p * (p - 1))
    q = 1 - 1e-7
    want = -1 / q
    assert abs(float_value(as_float(out, y, p), 1.0, q) / want - 1) < 1e-15
    assert abs(float_value(naive(expr, y, p), 1.0, q) / want - 1) > 1e-12  # what the rule prevents


def test_rule_exp_of_sum():
    expr = sp.exp(2 * a) * sp.exp(-3 * b) * x
    out = apply_rule("exp_of_sum", expr)
    assert out == x * sp.exp(2 * a - 3 * b)
    assert math.isnan(float_value(naive(expr, a, b, x), 400.0, 300.0, 1.0))
    assert float_value(as_float(out, a, b, x), 400.0, 300.0, 1.0) == pytest.approx(math.exp(-100.0))


def test_rule_exp_shift_product():
    yp = sp.Symbol("yp", positive=True)
    expr = (sp.exp(a) - yp) * sp.exp(b - 2 * a)  # the inverse Gaussian's ∂ℓ/∂log_mean
    out = apply_rule("exp_shift_product", expr)
    assert out == (1 - yp * sp.exp(-a)) * sp.exp(b - a)
    assert_same_value(expr, out, [{a: 0.3, b: -1.0, yp: 2.0}, {a: -2.0, b: 1.0, yp: 0.5}])
    # μ = y = 1e-300: e^(−2a) overflows, e^a − y is 0 or a subnormal: 0·∞ (NaN) or ∞ without the rule
    point = (math.log(1e-300), 1.0, 1e-300)
    assert not math.isfinite(float_value(naive(expr, a, b, yp), *point))
    assert math.isfinite(float_value(as_float(out, a, b, yp), *point))
    # not where c grows with a: the shift would make the exponent larger
    grows = (sp.exp(a) - yp) * sp.exp(b + a)
    assert RULES_BY_NAME["exp_shift_product"].apply(grows) == grows


def test_rule_standardised_square():
    expr = (y - a) ** 2 * sp.exp(-2 * b) / 2  # the Normal's (y − μ)²/(2σ²) with σ = exp(b)
    out = apply_rule("standardised_square", expr)
    assert out == Square((y - a) * sp.exp(-b)) / 2
    assert_same_value(expr, out, [{y: 2.0, a: 0.5, b: -0.3}])
    # y = μ with σ = 1e-200: 0·∞ without the rule
    assert math.isnan(float_value(naive(expr, y, a, b), 1.0, 1.0, -460.0))
    assert float_value(as_float(out, y, a, b), 1.0, 1.0, -460.0) == 0.0


def test_rule_square_ratio():
    expr = (p - (y - a) ** 2) / (2 * p**2)  # the Gaussian NLL's ∂ℓ/∂var, var = p
    out = apply_rule("square_ratio", expr)
    assert out.has(Square) and out == 1 / (2 * p) - Square((y - a) / p) / 2
    assert_same_value(expr, out, [{y: 2.0, a: 0.5, p: 0.3}, {y: 0.0, a: 1e-3, p: 7.0}])
    # var = 1e-300 with y = μ: var² underflows to 0 and the naive form is ∞·0 (or 1e-300/0 = ∞)
    assert not math.isfinite(float_value(naive(expr, y, a, p), 1.0, 1.0, 1e-300))
    assert float_value(as_float(out, y, a, p), 1.0, 1.0, 1e-300) == pytest.approx(5e299, rel=1e-15)
    # a residual of 1e-160 at var = 1e-300: both terms are finite, their difference too
    assert float_value(as_float(out, y, a, p), 1e-160, 0.0, 1e-300) == pytest.approx(5e299 - 5e279, rel=1e-15)
    # no square in the numerator: nothing to do
    assert RULES_BY_NAME["square_ratio"].apply((p - a) / p**2) == (p - a) / p**2


def test_rule_abs_linear():
    q = sp.Symbol("q", positive=True)
    expr = sp.Abs(a - y) / 2 - (a - y) * (q - sp.Rational(1, 2))  # the pinball loss at quantile q
    out = apply_rule("abs_linear", expr)
    assert out.has(sp.Piecewise) and not out.has(sp.Abs)
    assert_same_value(expr, out, [{a: 2.0, y: 0.5, q: 0.3}, {a: -1.0, y: 0.5, q: 0.9}, {a: 1.0, y: 1.0, q: 0.2}])
    # quantile 1e-8 below the target: ½ + (1e-8 − ½) cancels (1e-9 relative error) without the rule
    want = 1e-8
    got_naive = float_value(naive(expr, a, y, q), 0.0, 1.0, 1e-8)
    got = float_value(as_float(out, a, y, q), 0.0, 1.0, 1e-8)
    assert abs(got_naive - want) > 1e-12 * want
    assert got == pytest.approx(want, rel=1e-15)
    # at the kink the derivative is that of the exact formula with sign(0) = 0 (the midpoint subgradient)
    d_exact = sp.diff(expr, a).subs({a: 1, y: 1, q: sp.Rational(1, 5)})
    d_out = sp.diff(out, a).subs({a: 1, y: 1, q: sp.Rational(1, 5)})
    assert d_out == d_exact == sp.Rational(3, 10)
    # α < 0 (the asymmetric Laplace's ∂ℓ/∂log_scale, 1 − pinball): t·q below the target, not −t/2 + t/2 + t·q
    neg = 1 - sp.Abs(a - y) / 2 + (a - y) * (q - sp.Rational(1, 2))
    out_neg = apply_rule("abs_linear", neg)
    assert out_neg.has(sp.Piecewise) and not out_neg.has(sp.Abs)
    assert_same_value(neg, out_neg, [{a: 2.0, y: 0.5, q: 0.3}, {a: -1.0, y: 0.5, q: 0.9}])
    assert float_value(as_float(out_neg - 1, a, y, q), -1e150, 0.0, 1e-16) == pytest.approx(-1e134, rel=1e-15)


def test_rule_sign_linear():
    q = sp.Symbol("q", positive=True)
    expr = -q + sp.sign(a - y) / 2 + sp.Rational(1, 2)  # the pinball loss's gradient
    out = apply_rule("sign_linear", expr)
    assert out.has(sp.Piecewise) and not out.has(sp.sign)
    assert_same_value(expr, out, [{a: 2.0, y: 0.5, q: 0.3}, {a: -1.0, y: 0.5, q: 0.9}, {a: 1.0, y: 1.0, q: 0.2}])
    # below the target at quantile 1e-8: ½ − q − ½ cancels without the rule, −q exactly with it
    got_naive = float_value(naive(expr, a, y, q), 0.0, 1.0, 1e-8)
    got = float_value(as_float(out, a, y, q), 0.0, 1.0, 1e-8)
    assert got_naive != -1e-8 and got == -1e-8
    # nothing cancels: left alone
    from symloss.stabilize import Context

    plain = a * sp.sign(y) + b
    assert RULES_BY_NAME["sign_linear"].apply(plain, Context(data=frozenset())) == plain


def test_rule_piecewise_guard():
    expr = sp.Piecewise((sp.log(x), x > 0), (x**2, True))
    out = apply_rule("piecewise_guard", expr)
    assert out.has(Guard)
    (first, c1), (second, c2) = out.args
    assert first == sp.log(Guard(x, x > 0, 1)) and c1 == (x > 0)
    assert second == Guard(x, x <= 0, 0) ** 2
    assert_same_value(expr, out, [{x: 2.0}, {x: -3.0}])
    # the double where, in torch: the unused branch's gradient is not NaN
    torch = pytest.importorskip("torch")
    t = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64, requires_grad=True)
    naive_value = torch.where(t > 0, torch.log(t), t**2)
    (g_naive,) = torch.autograd.grad(naive_value.sum(), t)
    assert torch.isnan(g_naive).any()
    guarded = torch.where(t > 0, torch.log(torch.where(t > 0, t, 1.0)), torch.where(t <= 0, t, 0.0) ** 2)
    (g,) = torch.autograd.grad(guarded.sum(), t)
    assert torch.isfinite(g).all() and g.tolist() == [-2.0, 0.0, 0.5]


# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [f for f in STABLE_FUNCTIONS if f not in (LogSumExp, MaxOver, SumBelowOne, Guard)],
                         ids=lambda f: f.__name__)
def test_stable_functions_have_exact_derivatives(fn):
    """fdiff against a central difference of the elementary form, with 40 digits."""
    args = {1: (sp.Float("0.7", 40),), 2: (sp.Float("0.7", 40), sp.Float("1.3", 40)),
            3: (sp.Float("0.7", 40), sp.Float("1.3", 40), sp.Float("0.2", 40)),
            4: (sp.Float("0.7", 40), sp.Float("1.3", 40), sp.Float("0.2", 40), sp.Float("0.4", 40))}[
        fn.nargs.args[0] if hasattr(
        fn.nargs, "args") else fn.nargs]
    syms = sp.symbols(f"t0:{len(args)}", positive=True)
    f = fn(*syms)
    h = sp.Float("1e-15", 40)
    for i, s in enumerate(syms):
        at = dict(zip(syms, args))
        d = sp.N(sp.diff(f, s).subs(at), 40)
        plus = {**at, s: at[s] + h}
        minus = {**at, s: at[s] - h}
        fd = (sp.N(elementary(f).subs(plus), 40) - sp.N(elementary(f).subs(minus), 40)) / (2 * h)
        assert abs(d - fd) < 1e-20, (fn.__name__, i, d, fd)


def test_stabilize_is_idempotent_and_deterministic():
    expr = sp.log(1 + sp.exp(x)) - y * sp.log(p) + (sp.exp(a) - 1) * sp.log(y)
    once = stabilize(expr, data=[y])
    assert stabilize(once, data=[y]) == once
    assert stabilize(expr, data=[y]) == once
    assert fired_rules(expr, data=[y]) == ["softplus", "expm1", "xlogy"]


def test_stabilised_catalog_expressions_equal_the_derived_ones():
    """The loss and gradients of a few derived losses keep their values after stabilisation."""
    from test_codegen_support import loss_for  # derived once for all the code generation tests

    for name in ["bernoulli", "logistic", "categorical", "loglogistic", "continuousbernoulli"]:
        loss = loss_for(name)
        exprs = [(loss.expr, stabilize(loss.expr, data=[loss.target]))]
        exprs += [(g, stabilize(g, data=[loss.target])) for g in loss.gradient.values()]
        for original, stable in exprs:
            if loss.event == "vector":
                vec = loss.metadata["vector"]
                z, yy = loss.inputs[0], loss.target
                at = {vec.K: 3, vec.j: 1}
                values = {z[0]: 0.3, z[1]: -1.2, z[2]: 2.0, yy[0]: 0, yy[1]: 1, yy[2]: 0}
                o = exact(original.subs(at).doit(), values)
                s = exact(elementary(stable).subs(at).doit(), values)
            else:
                values = {sym: v for sym, v in zip(sorted(original.free_symbols | stable.free_symbols, key=str),
                                                   [0.4, 1.7, 0.9, 0.6])}
                values[loss.target] = sp.Integer(1) if loss.target.is_integer else 0.35
                o = exact(original, values)
                s = exact(stable, values)
            assert abs(complex(o - s)) < 1e-20 * (1 + abs(complex(o))), (name, original, stable)


# -- heavy tails (see also tests/test_stability_tails.py)
def test_rule_log1p_square():
    from sympy.codegen.cfunctions import log1p as _log1p

    from symloss.stabilize import Log1pSquare, Square

    expr = _log1p(Square(u * sp.exp(-a)) / p)
    out = apply_rule("log1p_square", expr)
    assert out == Log1pSquare(u, -a - sp.log(p) / 2)
    assert_same_value(expr, elementary(out), [{u: 1e200, a: -3.0, p: 2.0}, {u: 1e-8, a: 0.5, p: 0.3}])


def test_rule_square_fraction():
    from symloss.stabilize import Log1pSquareDu, Log1pSquareDv

    expr = u / (u**2 + sp.exp(2 * a))
    out = apply_rule("square_fraction", expr)
    assert out == Log1pSquareDu(u, -a)
    assert_same_value(expr, elementary(out), [{u: 3.0, a: -1.0}, {u: 1e-5, a: 2.0}])
    out2 = apply_rule("square_fraction", u**2 / (u**2 + p))
    assert out2 == Log1pSquareDv(u, -sp.log(p) / 2)


def test_rule_log1p_square_du_scaled():
    from symloss.stabilize import Log1pSquareDu, Log1pSquareDuScaled

    du = Log1pSquareDu(u, -a - sp.log(p) / 2)
    out = apply_rule("log1p_square_du_scaled", -2 * (p + 1) * sp.exp(b) * du)
    assert out == -Log1pSquareDuScaled(u, -a - sp.log(p) / 2, (2 * p + 2) * sp.exp(b))  # −2·(p + 1) is −2p − 2
    scaled = apply_rule("log1p_square_du_scaled", -2 * (p + 1) * du)
    assert_same_value(elementary(-2 * (p + 1) * du), elementary(scaled),
                      [{u: 3.0, a: -1.0, p: 2.0}, {u: 1e-5, a: 2.0, p: 0.5}])
    # a number, or a factor of unknown sign, stays outside
    assert RULES_BY_NAME["log1p_square_du_scaled"].apply(2 * du) == 2 * du
    assert RULES_BY_NAME["log1p_square_du_scaled"].apply(a * du) == a * du
    # the Student-t's ∂ℓ/∂loc = (ν + 1)·z/(ν·e^(2s) + z²) after square_fraction
    assert stabilize((p + 1) * u / (p * sp.exp(2 * a) + u**2)) == Log1pSquareDuScaled(u, -a - sp.log(p) / 2, p + 1)


def test_rule_square_complement():
    from symloss.stabilize import Log1pSquareDv, Log1pSquareDvc

    dv = Log1pSquareDv(u, a)
    expr = 1 - (p + 1) * dv
    out = apply_rule("square_complement", expr)
    assert out == Log1pSquareDvc(u, a) - p * dv
    assert_same_value(elementary(expr), elementary(out), [{u: 3.0, a: -1.0, p: 2.0}, {u: 1e-5, a: 2.0, p: 0.5}])
    # ν = 1e-30, x = 1e150: 1 − (ν + 1)·x²/(1 + x²) is −ν (up to x⁻²), the complement keeps it
    assert float(out.subs({u: 1e150, a: 0.0, p: 1e-30})) == pytest.approx(-1e-30, rel=1e-12)
    assert apply_rule("square_complement", sp.Rational(1, 2) - (p / 2 + sp.Rational(1, 2)) * dv) == \
        Log1pSquareDvc(u, a) / 2 - p * dv / 2
    assert RULES_BY_NAME["square_complement"].apply(1 - 2 * dv) == 1 - 2 * dv


def test_rule_log1p_square_rem():
    from symloss.stabilize import Log1pSquare, Log1pSquareDv, Log1pSquareRem

    lsq, dv = Log1pSquare(u, a), Log1pSquareDv(u, a)
    # the Student-t's ∂ℓ/∂ν: ½·log(1 + x²) − (ν + 1)/(2ν)·x²/(1 + x²)
    expr = lsq / 2 - (p + 1) / (2 * p) * dv + b
    out = apply_rule("log1p_square_rem", expr)
    assert out == Log1pSquareRem(u, a) / 2 - dv / (2 * p) + b
    assert_same_value(elementary(expr), elementary(out),
                      [{u: 3.0, a: -1.0, p: 2.0, b: 0.0}, {u: 1e-5, a: 2.0, p: 0.5, b: 1.0}])
    # with ∂/∂log ν: ν/2·log(1 + x²) − (ν + 1)/2·x²/(1 + x²)
    out = apply_rule("log1p_square_rem", sp.exp(b) / 2 * lsq - (sp.exp(b) / 2 + sp.Rational(1, 2)) * dv)
    assert out == sp.exp(b) / 2 * Log1pSquareRem(u, a) - dv / 2
    # no part that cancels: left alone
    assert RULES_BY_NAME["log1p_square_rem"].apply(lsq + 2 * dv) == lsq + 2 * dv


def test_rule_square_absorb():
    from symloss.stabilize import Square

    expr = (a + Square(u * sp.exp(-a)) / 2) * sp.exp(a)
    out = apply_rule("square_absorb", expr)
    assert out == a * sp.exp(a) + Square(u * sp.exp(-a / 2)) / 2
    assert_same_value(elementary(expr), elementary(out), [{u: 1e158, a: -18.4}, {u: 0.3, a: 2.0}])


def test_rule_difference_of_squares():
    from symloss.stabilize import Square

    expr = Square(a) / 2 - Square(b) / 2 + x
    out = apply_rule("difference_of_squares", expr)
    assert not out.has(Square)
    assert_same_value(elementary(expr), out, [{a: 1e180, b: 1e180, x: 1.0}, {a: 2.0, b: -3.0, x: 0.5}])


def test_rule_xmuly():
    from symloss.stabilize import Square, XMulY

    c = sp.Symbol("c", integer=True, nonnegative=True)
    expr = (1 - c) * (a - Square(u) / 2)
    out = apply_rule("xmuly", expr)
    assert out == XMulY(1 - c, a - Square(u) / 2)
    assert XMulY(sp.Integer(0), sp.oo) == 0
    out2 = apply_rule("xmuly", Sigmoid(x) * Square(u))
    assert out2 == XMulY(Sigmoid(x), Square(u))


def test_rule_residual_difference():
    # two standardised residuals of one target (a mixture of two Normals): (y − μ₁)·e^−s₁ − (y − μ₂)·e^−s₂
    yr = sp.Symbol("yr", real=True)
    m1, m2, s1, s2 = sp.symbols("m1 m2 s1 s2", real=True)
    expr = (yr - m1) * sp.exp(-s1) - (yr - m2) * sp.exp(-s2)
    out = apply_rule("residual_difference", expr, data=[yr])
    assert out.has(expm1) and out.has(sp.Piecewise)
    args = (yr, m1, m2, s1, s2)
    samples = [(0.3, -1.0, 2.0, 0.5, -0.25), (2.0, 1.0, 1.5, -1.0, 3.0), (1.0, 2.0, 3.0, 0.7, 0.7)]
    assert_same_value(expr, out, [dict(zip(args, v, strict=True)) for v in samples])
    f, g = as_float(out, *args), naive(expr, *args)
    # y = 1e150 far from both locations, equal scales: (μ₂ − μ₁)·e^−s = 1e-30, which the residuals lose
    pt = (1e150, -1.0, 0.0, 69.07755278982137, 69.07755278982137)
    want = float(exact(expr, dict(zip(args, pt, strict=True))))
    assert float_value(f, *pt) == pytest.approx(want, rel=1e-14)
    assert float_value(g, *pt) == 0.0
    # y = μ₂ with a huge 1/σ₂: y − μ₂ = 0 exactly, and so the term (collected in y it would cancel: 1e30 − 1e30)
    pt = (-1.0, 1.0, -1.0, 0.0, -69.07755278982137)
    assert float_value(f, *pt) == -2.0
    # different scales: the expm1 of their difference
    pt = (1e150, -1.0, 0.0, 1e-10, 2e-10)
    want = float(exact(expr, dict(zip(args, pt, strict=True))))
    assert float_value(f, *pt) == pytest.approx(want, rel=1e-14)
    # a sum of residuals, and residuals of two different data symbols: left alone
    summed = (yr - m1) * sp.exp(-s1) + (yr - m2) * sp.exp(-s2)
    assert RULES_BY_NAME["residual_difference"].apply(summed) == summed
    other = (yr - m1) * sp.exp(-s1) - (x - m2) * sp.exp(-s2)
    from symloss.stabilize import Context

    assert RULES_BY_NAME["residual_difference"].apply(other, Context(data=frozenset({yr, x}))) == other


def test_rule_xmuly_square():
    expr = XMulY(Sigmoid(x), Square(u))
    out = apply_rule("xmuly_square", expr)
    assert out == XMulY(XMulY(Sigmoid(x), u), u)
    assert_same_value(elementary(expr), elementary(out), [{x: 0.5, u: 3.0}, {x: -700.0, u: 1e158}])
    f, g = as_float(out, x, u), as_float(expr, x, u)
    # σ(−700)·(1e158)²: the square overflows, the product is 9.9e11
    want = float(exact(elementary(expr), {x: -700.0, u: 1e158}))
    assert float_value(f, -700.0, 1e158) == pytest.approx(want, rel=1e-14)
    assert float_value(g, -700.0, 1e158) == math.inf
    # an underflowed weight times an infinite residual is still 0
    assert float_value(f, -1e4, math.inf) == 0.0
    # a 0/1 indicator (w·z² is 0 or z² itself) and a weight that is not a sigmoid: left alone
    c = sp.Symbol("c", integer=True, nonnegative=True)
    for w in (1 - c, x):
        assert RULES_BY_NAME["xmuly_square"].apply(XMulY(w, Square(u))) == XMulY(w, Square(u))


def test_rule_mul_exp():
    from symloss.stabilize import MulExp

    z = sp.IndexedBase("z", real=True)
    m, j = sp.symbols("m j", integer=True)
    top = MaxOver(z[m], (m, 0, 2))
    e = sp.exp(z[j] - top)
    out = apply_rule("mul_exp", x * e)
    assert out == MulExp(x, z[j] - top, e)
    assert elementary(out) == elementary(x * e)
    # a term alone, its negative, and exp(M − z_j) (not a softmax term: ≥ 1): left alone
    for other in (e, -e, x * sp.exp(top - z[j])):
        assert RULES_BY_NAME["mul_exp"].apply(other) == other
    # Σy = 1.0001e6 counts times e^−740: exp(−740) = 4.2e-322 has 7 significant bits, the product 4.2e-316 has
    # 26; the form the printers use below d = −708, (u·e^−708)·e^(d + 708), keeps them
    import mpmath

    with mpmath.workdps(60):
        want = float(mpmath.mpf(1000100) * mpmath.exp(-740))
    naive_value = 1000100.0 * math.exp(-740.0)
    stable = (1000100.0 * math.exp(-708.0)) * math.exp(-740.0 + 708.0)
    assert abs(stable - want) <= 2 * 5e-324 < abs(naive_value - want)


def _concentrations():
    z = sp.IndexedBase("z", real=True)
    m, k, j = sp.symbols("m k j", integer=True)
    return z, m, k, j


def test_rule_log_beta_sum():
    # the log of the multivariate Beta function of concentrations e^z (a Dirichlet's normaliser), three classes
    z, m, k, _ = _concentrations()
    expr = sp.Sum(LogGamma(sp.exp(z[k])), (k, 0, 2)) - LogGamma(sp.Sum(sp.exp(z[m]), (m, 0, 2)))
    out = apply_rule("log_beta_sum", expr)
    assert out.has(LgammaDifference) and out.has(MaxOver) and out.has(SumBelowOne)
    assert not any(isinstance(g, LogGamma) and g.args[0].has(sp.Sum) for g in out.atoms(LogGamma))
    L = 69.07755278982137
    points = [(L, -L, -L), (0.3, -1.2, 2.0), (L, L, -1.0), (1.0, 1.0, 1.0), (-2.0, 0.5, 0.5)]  # ties included
    assert_same_value(elementary(expr), elementary(out),
                      [{z[0]: a0, z[1]: a1, z[2]: a2} for a0, a1, a2 in points])
    # with the opposite sign, and the sum written as the derivation writes it (−Σ −lgamma): the same rewrite
    flipped = -sp.Sum(-LogGamma(sp.exp(z[k])), (k, 0, 2)) - LogGamma(sp.Sum(sp.exp(z[m]), (m, 0, 2)))
    assert apply_rule("log_beta_sum", flipped) == out
    assert sp.expand(apply_rule("log_beta_sum", -expr) + out) == 0
    # lgammas of unrelated terms: left alone
    other = sp.Sum(LogGamma(sp.exp(2 * z[k])), (k, 0, 2)) - LogGamma(sp.Sum(sp.exp(z[m]), (m, 0, 2)))
    assert RULES_BY_NAME["log_beta_sum"].apply(other) == other


def test_rule_digamma_of_sum():
    z, m, _, j = _concentrations()
    expr = sp.polygamma(0, sp.exp(z[j])) - sp.polygamma(0, sp.Sum(sp.exp(z[m]), (m, 0, 2))) - x
    out = apply_rule("digamma_of_sum", expr)
    assert out.has(DigammaDifference) and out.has(sp.Piecewise)
    assert RULES_BY_NAME["digamma_of_sum"].apply(out) == out  # the other branch does not match again
    L = 69.07755278982137
    for zs in [(L, -L, -L), (0.3, -1.2, 2.0), (L, L, -1.0), (-2.0, 0.5, 0.5)]:
        for jj in range(3):
            at = {z[0]: zs[0], z[1]: zs[1], z[2]: zs[2], x: 0.25}
            assert_same_value(elementary(expr).subs(j, jj), elementary(out).subs(j, jj), [at])
