"""Derive a loss from a likelihood and read its verdicts

symloss starts from a likelihood: you say how your target is distributed given the model's outputs, and it
derives the negative log-likelihood, drops the constants, and checks what kind of loss it is.  This tutorial
derives the Gaussian loss with a learned scale, reads its property verdicts, and compares it with the
Cauchy loss, which is robust to outliers.
"""

# %% [markdown]
# ## Derive
#
# `symloss.derive(name, link=...)` takes a registry distribution and, for each parameter, a link from the
# model's raw output to the parameter.  `link="canonical"` applies the distribution's usual links: here the
# scale gets a log link, so the network outputs `log_scale` and any real value is valid.

# %%
import symloss

loss = symloss.derive("normal", link="canonical")
print("inputs:", loss.input_names, " trained:", loss.wrt_names)
print("loss:  ", loss.expr)
print("dropped constant:", loss.constant)
for name in loss.wrt_names:
    print(f"d loss / d {name} =", loss.grad(name))

# %% [markdown]
# Every step of the derivation is recorded: likelihood, logarithm, negation, link, dropping the constant.

# %%
for step in loss.steps:
    print(" -", step)

# %% [markdown]
# ## Read the verdicts
#
# `symloss.analyze` decides each property as **proved** (with the rule or computation that proves it),
# **disproved** (with a witness: concrete numbers, re-checked with mpmath at 50 digits) or **unknown**
# (nothing settled it within the time budget).  Convexity is reported jointly and per trained input.

# %%
report = symloss.analyze(loss, budget=5)
print(report.table())

# %%
print("convex in loc alone:", report.convex_in["loc"].status)
print("convex jointly:     ", report.convex.status)
print("witness:", report.convex.witness["a"], "and", report.convex.witness["b"])
print("robust:", report.robust.status, "-", report.robust.reason)

# %% [markdown]
# The Gaussian loss is convex in the location but not jointly in (location, log-scale), and not robust: its
# gradient grows without bound with the residual, so one outlier can dominate a batch.
#
# ## A robust alternative
#
# The Cauchy likelihood has heavy tails; its loss gives outliers a bounded gradient, at the price of
# convexity even in the location.

# %%
cauchy = symloss.derive("cauchy", link="canonical")
cauchy_report = symloss.analyze(cauchy, budget=5)
print("loss:", cauchy.expr)
for prop in ("convex", "robust", "smooth"):
    print(f"{prop:>7}: normal {report[prop].status:<10} cauchy {cauchy_report[prop].status}")

# %% [markdown]
# Fixing the scale gives back a classic loss, which symloss recognises:

# %%
print(symloss.derive("normal", fixed={"scale": 1}).known_as)
print(symloss.derive("bernoulli", link={"probs": "logit"}).known_as)
