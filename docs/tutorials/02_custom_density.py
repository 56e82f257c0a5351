"""Write your own density with symloss.custom

When the likelihood you want is not in the registry, type its density as text.  symloss parses it with a
whitelist (the text is never evaluated as Python), checks that it integrates to one over the support, and
derives the loss like any other.
"""

# %% [markdown]
# ## A density typed as text
#
# The hyperbolic-cosine density $p(y \mid \mu) = \frac{1}{\pi \cosh(y - \mu)}$ gives the *log-cosh* loss,
# quadratic near the minimum and linear in the tails.  Name each parameter with its domain.

# %%
import symloss

logcosh = symloss.custom("1/(pi*cosh(y - mu))", params={"mu": "real"}, name="logcosh")
print("loss:    ", logcosh.expr)
print("gradient:", logcosh.grad("mu"))
print("constant:", logcosh.constant)

# %% [markdown]
# ## Its verdicts

# %%
report = symloss.analyze(logcosh, budget=5)
for verdict in report:
    print(f"{verdict.name:>14}: {verdict.status}")

# %% [markdown]
# ## The normalisation check
#
# A density that does not integrate to one is refused, with the value it integrates to:

# %%
try:
    symloss.custom("exp(-abs(y - mu))", params={"mu": "real"})
except symloss.SymlossError as exc:
    print("refused:", exc)

# %% [markdown]
# With `normalize=True`, symloss divides by the normaliser itself and keeps $\log Z(\theta)$ in the
# negative log-likelihood (it matters when it depends on a trained parameter):

# %%
quartic = symloss.custom("exp(-(y - mu)**4)", params={"mu": "real"}, normalize=True, name="quartic")
print("loss:", quartic.expr)
print("nll: ", quartic.nll)

# %% [markdown]
# ## Parameters with other domains
#
# A Laplace density with a learned scale `b > 0`:

# %%
laplace = symloss.custom("exp(-abs(y - mu)/b)/(2*b)", params={"mu": "real", "b": "positive"}, name="laplace")
print("loss:", laplace.expr)
for name in laplace.wrt_names:
    print(f"d loss / d {name} =", laplace.grad(name))

# %% [markdown]
# Custom losses go through code generation like registry ones:

# %%
module = symloss.load(logcosh, target="numpy")
import numpy as np  # noqa: E402

mu = np.array([0.0, 1.0, 5.0])
y = np.array([0.0, 0.0, 0.0])
print("per-observation loss:", module.loss(mu, y, reduction="none"))
print("gradient of the mean:", module.grad(mu, y))
