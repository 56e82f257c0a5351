"""The result of a derivation: a :class:`Loss` and its parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from .domains import Domain

__all__ = ["Step", "KnownLoss", "Penalty", "Loss"]


@dataclass(frozen=True)
class Step:
    """One step of a derivation: ``lhs = expr``, justified by ``text``."""

    kind: str  # likelihood | log | negate | fix | link | drop | loss | prior | penalty | normalise
    text: str
    lhs: str
    expr: sp.Expr

    def __str__(self) -> str:
        return f"{self.text}\n    {self.lhs} = {self.expr}"


@dataclass(frozen=True)
class KnownLoss:
    """A classic loss that ``Loss.expr`` equals: ``expr = factor · formula + (terms free of the trained inputs)``."""

    key: str  # "mse", "mae", "bce_with_logits", ...
    name: str  # "mean squared error"
    factor: sp.Expr
    formula: sp.Expr  # the classic loss written in the loss's own inputs and target
    torch: str | None  # the torch built-in that computes it ("torch.nn.functional.mse_loss")
    torch_kwargs: dict[str, Any] = field(default_factory=dict)
    arguments: dict[str, str] = field(default_factory=dict)  # built-in argument -> symloss input name

    def __str__(self) -> str:
        factor = "" if self.factor == 1 else f"{self.factor} × "
        via = f" (= {self.torch}" + (
            "(" + ", ".join(f"{k}={v!r}" for k, v in self.torch_kwargs.items()) + ")" if self.torch_kwargs else ""
        ) + ")" if self.torch else ""
        return f"{factor}{self.name}{via}"


@dataclass(frozen=True)
class Penalty:
    """The negative log-prior on the model's weights (MAP): Σ_j ``expr``(w_j), with its gradient.

    ``coefficient`` is λ in the classic form ``classic loss + λ·‖w‖`` when the
    likelihood is a known loss (for a Gaussian likelihood with scale σ and a
    Gaussian prior with scale τ: MSE (as a sum) + σ²/τ²·‖w‖₂²).
    """

    prior: str  # "normal" | "laplace" | ...
    kind: str  # "l2" | "l1" | ...
    weight: sp.Symbol  # one weight w_j
    scale: sp.Expr  # the prior's scale τ
    expr: sp.Expr  # −log p(w_j) up to a constant
    gradient: sp.Expr  # d expr / d w_j (a subgradient at kinks)
    constant: sp.Expr  # the dropped constant of −log p(w_j)
    coefficient: sp.Expr | None  # λ relative to the known classic loss, if any
    norm: str  # "‖w‖₂²" | "‖w‖₁"


@dataclass(frozen=True, eq=False)
class Loss:
    """A loss derived from a likelihood (or a custom density, or a metric).

    * ``nll`` is exactly −log p(y | inputs), constants kept;
    * ``expr`` is the training loss: ``nll`` without the additive terms free of every trained input;
    * ``constant == nll - expr``;
    * ``gradient[s]`` is ∂expr/∂s for every ``s`` in ``wrt``.

    For class-axis distributions (``event == "vector"``) the inputs and the
    target are :class:`sympy.IndexedBase` objects indexed over ``k = 0 … K−1``
    and ``gradient[z]`` is ∂expr/∂z[j].
    """

    name: str
    distribution: Any  # registry Distribution, or None for custom densities and metrics
    target: sp.Symbol
    inputs: tuple[sp.Symbol, ...]
    wrt: tuple[sp.Symbol, ...]
    nll: sp.Expr
    expr: sp.Expr
    constant: sp.Expr
    gradient: dict[sp.Symbol, sp.Expr]
    steps: tuple[Step, ...]
    domains: dict[sp.Basic, Domain]
    penalty: Penalty | None = None
    known_as: KnownLoss | None = None
    links: dict[str, str] = field(default_factory=dict)  # parameter -> link name
    parameters: dict[str, sp.Expr] = field(default_factory=dict)  # parameter -> expression in the inputs
    fixed: dict[str, sp.Expr] = field(default_factory=dict)  # parameter -> value or constant symbol
    constants: tuple[sp.Symbol, ...] = ()  # named constants (fixed parameters kept as symbols)
    event: str = "scalar"
    kind: str = "nll"  # "nll" | "custom" | "metric"
    metadata: dict[str, Any] = field(default_factory=dict)

    # -- convenience ---------------------------------------------------------------------------------
    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(str(s) for s in self.inputs)

    @property
    def wrt_names(self) -> tuple[str, ...]:
        return tuple(str(s) for s in self.wrt)

    def input(self, name: str) -> sp.Symbol:
        """The input symbol called ``name``."""
        from .errors import UnknownNameError

        for s in self.inputs:
            if str(s) == name:
                return s
        raise UnknownNameError(f"input of {self.name}", name, self.input_names)

    def grad(self, name: str) -> sp.Expr:
        return self.gradient[self.input(name)]

    @property
    def support_constraints(self) -> tuple[tuple[sp.Basic, sp.Basic], ...]:
        """Pairs ``(a, b)`` meaning ``a <= b``: the support's bounds that couple the target to an input, as a
        registry entry states them in its support note ("y <= total_count", "y >= scale")."""
        note = getattr(self.distribution, "support_note", "") or ""
        names: dict[str, sp.Basic] = {str(s): s for s in self.domains}
        out = []
        for part in note.replace(";", ",").split(","):
            for op in ("<=", ">="):
                if op in part:
                    lhs, rhs = (t.strip() for t in part.split(op, 1))
                    if lhs in names and rhs in names:
                        a, b = names[lhs], names[rhs]
                        out.append((a, b) if op == "<=" else (b, a))
                    break
        return tuple(out)

    def __repr__(self) -> str:
        known = f", known_as={self.known_as.key!r}" if self.known_as else ""
        return f"Loss({self.name!r}, inputs={self.input_names}, wrt={self.wrt_names}{known})"

    def __str__(self) -> str:
        return f"{self.name}: {self.expr}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (expressions as SymPy strings)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "distribution": getattr(self.distribution, "name", None),
            "event": self.event,
            "target": str(self.target),
            "inputs": list(self.input_names),
            "wrt": list(self.wrt_names),
            "links": dict(self.links),
            "parameters": {k: str(v) for k, v in self.parameters.items()},
            "fixed": {k: str(v) for k, v in self.fixed.items()},
            "nll": str(self.nll),
            "loss": str(self.expr),
            "constant": str(self.constant),
            "gradient": {str(k): str(v) for k, v in self.gradient.items()},
            "steps": [{"kind": s.kind, "text": s.text, "lhs": s.lhs, "expr": str(s.expr)} for s in self.steps],
            "known_as": None
            if self.known_as is None
            else {
                "key": self.known_as.key,
                "name": self.known_as.name,
                "factor": str(self.known_as.factor),
                "torch": self.known_as.torch,
                "torch_kwargs": self.known_as.torch_kwargs,
            },
            "penalty": None
            if self.penalty is None
            else {
                "prior": self.penalty.prior,
                "kind": self.penalty.kind,
                "expr": str(self.penalty.expr),
                "gradient": str(self.penalty.gradient),
                "coefficient": None if self.penalty.coefficient is None else str(self.penalty.coefficient),
                "norm": self.penalty.norm,
            },
        }
