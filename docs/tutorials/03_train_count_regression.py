"""Train a count model with a generated loss

A real dataset bundled with scikit-learn (no download): the Linnerud exercise data, twenty middle-aged men
with their physiological measurements and the number of chin-ups each managed.  The chin-ups are counts, so we
fit a Poisson regression of chin-ups on waist size with the loss symloss generates for a Poisson likelihood with
a log link, and compare it with the usual least-squares fit.
"""

# %% [markdown]
# ## The data

# %%
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_linnerud

import symloss

data = load_linnerud()
# scikit-learn files the physiological measurements (Weight, Waist, Pulse) as the targets
X = data.target[:, [list(data.target_names).index("Waist")]]  # one predictor: twenty points support no more
y = data.data[:, list(data.feature_names).index("Chins")]  # chin-ups: a count
print("predictor: Waist (inches)  target: Chins")
print(f"n = {len(y)}, mean chin-ups = {y.mean():.2f}, variance = {y.var():.2f}")

# %% [markdown]
# ## Two losses, both generated
#
# The Poisson loss with the log link takes the log-rate as input, so a linear model on the features becomes a
# Poisson GLM; the Gaussian likelihood with a fixed scale gives (half) the mean squared error.  `symloss.load`
# compiles each into a PyTorch module with a closed-form backward pass.

# %%
poisson = symloss.derive("poisson", link="canonical")
mse = symloss.derive("normal", fixed={"scale": 1})
print("Poisson loss:", poisson.expr, "=", poisson.known_as.name)
print("Normal loss: ", mse.expr, "=", mse.known_as.name)
poisson_loss = symloss.load(poisson, target="torch").Module()
mse_loss = symloss.load(mse, target="torch").Module()

# the generated Poisson loss equals torch's built-in
eta, counts = torch.randn(8, dtype=torch.float64), torch.tensor([0.0, 1, 2, 3, 5, 8, 13, 21], dtype=torch.float64)
builtin = torch.nn.functional.poisson_nll_loss(eta, counts, log_input=True)
print("matches torch.nn.functional.poisson_nll_loss:", bool(torch.allclose(poisson_loss(eta, counts), builtin)))

# %% [markdown]
# ## Fitting
#
# A linear model on the standardised predictor, fitted by L-BFGS on the whole (tiny) dataset.

# %%
torch.manual_seed(0)


def fit(x: np.ndarray, t: np.ndarray, kind: str) -> torch.nn.Linear:
    mean, std = x.mean(axis=0), x.std(axis=0)
    xt = torch.tensor((x - mean) / std)
    tt = torch.tensor(t)
    model = torch.nn.Linear(x.shape[1], 1, dtype=torch.float64)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.fill_(float(np.log(t.mean())) if kind == "poisson" else float(t.mean()))
    criterion = poisson_loss if kind == "poisson" else mse_loss
    opt = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        value = criterion(model(xt).squeeze(-1), tt)
        value.backward()
        return value

    opt.step(closure)
    model.standardise = (mean, std)  # type: ignore[attr-defined]
    return model


def predict(model: torch.nn.Linear, x: np.ndarray, kind: str) -> np.ndarray:
    mean, std = model.standardise  # type: ignore[attr-defined]
    with torch.no_grad():
        out = model(torch.tensor((x - mean) / std)).squeeze(-1).numpy()
    return np.exp(out) if kind == "poisson" else out


# %% [markdown]
# ## Leave-one-out comparison
#
# Twenty observations are too few for a test split, so each model is refitted twenty times, each time
# predicting the observation left out.

# %%
def leave_one_out(kind: str) -> np.ndarray:
    preds = np.empty_like(y)
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        preds[i] = predict(fit(X[keep], y[keep], kind), X[i:i + 1], kind)[0]
    return preds


def poisson_deviance(t: np.ndarray, mu: np.ndarray) -> float:
    mu = np.maximum(mu, 0.1)  # least squares can predict negative counts: clip so the deviance exists
    term = np.where(t > 0, t * np.log(np.where(t > 0, t, 1) / mu), 0.0)
    return float(np.mean(2 * (term - (t - mu))))


results = {kind: leave_one_out(kind) for kind in ("poisson", "mse")}
print(f"{'model':<10}{'MAE':>8}{'RMSE':>8}{'Poisson deviance':>18}{'negative predictions':>22}")
for kind, preds in results.items():
    mae = np.mean(np.abs(preds - y))
    rmse = np.sqrt(np.mean((preds - y) ** 2))
    print(f"{kind:<10}{mae:8.2f}{rmse:8.2f}{poisson_deviance(y, preds):18.2f}{int(np.sum(preds < 0)):22d}")

full_poisson = fit(X, y, "poisson")
slope = float(full_poisson.weight.detach().numpy().ravel()[0])
print(f"Poisson fit: each standard deviation of waist multiplies the expected chin-ups by {np.exp(slope):.2f}")

# %% [markdown]
# The two fits are about equally accurate here; the Poisson one cannot predict a negative count and lets the
# spread grow with the mean, as counts do.  The variance of the counts is almost three times their mean, more
# than a Poisson model allows: the
# `negativebinomial` likelihood (`symloss.derive("negativebinomial", link="canonical")`) models that
# over-dispersion with one more trained input.
#
# ## A plot

# %%
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

out = Path(os.environ.get("SYMLOSS_TUTORIAL_OUT") or Path(tempfile.gettempdir()) / "symloss-tutorials")
out.mkdir(parents=True, exist_ok=True)
plt.rcParams.update({"svg.hashsalt": "symloss-docs", "font.size": 9})

fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.4), layout="constrained")
for kind, marker in (("poisson", "o"), ("mse", "s")):
    left.scatter(y, results[kind], marker=marker, label=kind, alpha=0.8)
left.plot([0, 20], [0, 20], color="grey", linewidth=0.8)
left.set_xlabel("observed chin-ups")
left.set_ylabel("leave-one-out prediction")
left.legend()

waist = X[:, 0]
grid = np.linspace(waist.min() - 2, waist.max() + 2, 100)
xs = grid[:, None]
full_mse = fit(X, y, "mse")
right.scatter(waist, y, color="black", s=12, label="data")
right.plot(grid, predict(full_poisson, xs, "poisson"), label="Poisson (log link)")
right.plot(grid, predict(full_mse, xs, "mse"), label="least squares")
right.set_xlabel("waist (inches)")
right.set_ylabel("chin-ups")
right.legend()
path = out / "count_regression.png"
fig.savefig(path, dpi=100, metadata={"Software": "symloss tutorial"})
print("figure:", path.name)
