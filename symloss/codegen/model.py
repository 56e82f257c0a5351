"""From a :class:`~symloss.loss.Loss` to the data a module template renders.

The steps: stabilise the loss, each gradient and the dropped constant
(:mod:`symloss.stabilize`); lower class-axis expressions (``x[k]`` → the array
``x`` with the classes on its last axis, ``Σ_k`` → a sum over that axis);
share common subexpressions between the loss and its gradients
(``sympy.cse``); keep every line short by naming long subexpressions; print
with the target's printer.  Everything here is deterministic: the same loss
gives the same module, byte for byte.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import sympy as sp

from ..errors import InvalidIdentifierError, UnsupportedError
from ..identifiers import safe_identifier, validate_identifier
from ..loss import Loss
from ..stabilize import RULES, STABLE_FUNCTIONS, Held, LogSumExp, MaxOver, SumBelowOne, stabilize
from .class_index import class_index_forms
from .docs import module_doc
from .inplace import inplace_block
from .printers import (
    CLASS_REDUCTIONS,
    UNSUPPORTED,
    ClassLogSumExp,
    ClassMax,
    ClassSum,
    ClassSumBelowOne,
    uses_per_class,
)
from .targets import TARGETS, get_target

__all__ = ["Argument", "Block", "IndexForms", "ModuleModel", "build_model", "TARGETS"]

#: The longest printed right-hand side; with indentation and the name it keeps lines under 120 columns.
LINE_BUDGET = 92

#: Names the generated modules use besides symloss.identifiers.RESERVED; a user's name may not take them.
TEMPLATE_NAMES = frozenset({"target", "WRT", "CONSTANTS", "REDUCTIONS", "Module", "Function"})

_TEMP = re.compile(r"_t\d+\Z")


@dataclass(frozen=True)
class Argument:
    """One argument of the generated functions."""

    name: str  # the name in the generated code
    symbol: str  # the SymPy symbol's name
    role: str  # "input" | "target" | "constant"
    vector: bool  # carries the class axis (last axis)
    trained: bool
    description: str


@dataclass(frozen=True)
class Block:
    """Straight-line code: ``name = code`` assignments, then the output expressions."""

    assignments: tuple[tuple[str, str], ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class IndexForms:
    """The loss terms of a class-axis loss for a target given as class indices (symloss.codegen.class_index)."""

    value: Block
    value_and_grads: Block
    constant: Block
    value_inplace: Block | None = None
    value_and_grads_inplace: Block | None = None


@dataclass(frozen=True)
class ModuleModel:
    """Everything a module template needs."""

    target: str  # a name in symloss.codegen.targets.TARGETS
    loss_name: str
    module_name: str
    class_name: str
    inputs: tuple[Argument, ...]
    target_arg: Argument
    constants: tuple[Argument, ...]
    wrt: tuple[int, ...]  # positions of the trained inputs in ``inputs``
    vector: bool
    class_index_target: bool  # a Categorical target may be integer class indices
    value: Block
    value_and_grads: Block
    constant: Block
    has_constant: bool
    helpers: tuple[str, ...]
    uses_math: bool
    doc: dict[str, object] = field(default_factory=dict)
    # torch: the value and value-and-gradients blocks rewritten to overwrite their dead temporaries
    # (symloss.codegen.inplace), for the forward pass without autograd; None where nothing is rewritten
    value_inplace: Block | None = None
    value_and_grads_inplace: Block | None = None
    # torch: the same blocks for a Categorical target given as class indices (gathered, not one-hot)
    index_forms: IndexForms | None = None

    @property
    def arguments(self) -> tuple[Argument, ...]:
        """The arguments of the elementwise functions, in order: inputs, target, constants."""
        return (*self.inputs, self.target_arg, *self.constants)

    @property
    def trained(self) -> tuple[Argument, ...]:
        return tuple(self.inputs[i] for i in self.wrt)


# ---------------------------------------------------------------------------------------------------------
# names
def _code_names(loss: Loss) -> dict[sp.Basic, str]:
    """The name of every input, target and constant in the generated code (validated, distinct)."""
    names: dict[sp.Basic, str] = {}
    taken: set[str] = set()
    items = [(s, "input") for s in loss.inputs] + [(loss.target, "target")] + [(c, "constant") for c in loss.constants]
    for sym, role in items:
        raw = str(sym)
        if raw.startswith("_") or _TEMP.match(raw):
            raise InvalidIdentifierError(
                f"invalid {role} name {raw!r}: names starting with '_' are reserved for the generated helpers"
            )
        if role != "target" and raw in TEMPLATE_NAMES:
            raise InvalidIdentifierError(
                f"invalid {role} name {raw!r}: the generated functions use it themselves; "
                f"try {safe_identifier(raw, reserved=TEMPLATE_NAMES | taken)!r}"
            )
        names[sym] = validate_identifier(raw, role=role, reserved=taken)
        taken.add(raw)
    return names


def class_name(loss_name: str) -> str:
    """``normal_log_scale`` → ``NormalLogScaleLoss``."""
    parts = re.split(r"[^A-Za-z0-9]+", loss_name)
    stem = "".join(p[:1].upper() + p[1:] for p in parts if p) or "Generated"
    if not stem.endswith("Loss"):
        stem += "Loss"
    return safe_identifier(stem)


def module_name(loss_name: str) -> str:
    """A file and module name for the loss (``normal_log_scale``)."""
    return safe_identifier(re.sub(r"[^A-Za-z0-9_]+", "_", loss_name).strip("_").lower() or "loss")


# ---------------------------------------------------------------------------------------------------------
# stabilising and lowering
def _gradient(loss: Loss, s: sp.Basic, value: sp.Expr, data: Sequence[sp.Basic], fired: set[str]) -> sp.Expr:
    """The stabilised closed-form gradient ∂ℓ/∂s.

    Two equal closed forms compete: the derivation's gradient, stabilised, and
    the derivative of the stabilised loss (whose stable functions differentiate
    into stable functions: softplus' = sigmoid, ...), stabilised again.  The
    shorter wins (the derivation's on a tie).
    """
    fired_a: set[str] = set()
    a = stabilize(loss.gradient[s], data=data, fired=fired_a)
    if loss.event == "vector":
        fired |= fired_a
        return a
    fired_b: set[str] = set()
    try:
        b = stabilize(sp.diff(value, s), data=data, fired=fired_b)
    except (TypeError, ValueError, NotImplementedError, AttributeError):
        b = None
    if b is not None and sp.count_ops(b) < sp.count_ops(a):
        fired |= fired_b
        return b
    fired |= fired_a
    return a


class _Lowering:
    """Class-axis expressions → elementwise array expressions over the last axis."""

    def __init__(self, loss: Loss):
        self.loss = loss
        self.vector = loss.event == "vector"
        self.bases: dict[sp.Basic, sp.Symbol] = {}
        if self.vector:
            for s in (*loss.inputs, loss.target, *loss.constants):
                if isinstance(s, sp.IndexedBase):
                    self.bases[s] = sp.Symbol(str(s.label), **s.assumptions0)

    def symbol(self, s: sp.Basic) -> sp.Basic:
        return self.bases.get(s, s)

    def __call__(self, expr: sp.Expr, *, what: str, free_index: sp.Symbol | None = None) -> sp.Expr:
        if not self.vector:
            return expr
        self._check(expr, what, free_index, bound=None)

        def lower(e: sp.Basic) -> sp.Basic:
            if isinstance(e, sp.Indexed):
                return self.bases.get(e.base, e.base.label)
            if isinstance(e, sp.Sum):
                return ClassSum(lower(e.function))
            if isinstance(e, LogSumExp):
                return ClassLogSumExp(lower(e.body))
            if isinstance(e, MaxOver):
                return ClassMax(lower(e.body))
            if isinstance(e, SumBelowOne):
                return ClassSumBelowOne(lower(e.body))
            if not e.args:
                return e
            return e.func(*[lower(a) for a in e.args])

        out = lower(expr)
        meta = self.loss.metadata.get("vector")
        stray = {meta.K, meta.k, meta.j} & out.free_symbols if meta is not None else set()
        if stray:
            raise UnsupportedError(f"the {what} of {self.loss.name} uses the class index or count "
                                   f"{sorted(map(str, stray))} outside a sum over the classes")
        return out

    def _check(self, expr: sp.Basic, what: str, free_index: sp.Symbol | None, bound: sp.Symbol | None) -> None:
        """Every x[i] must use the index of its enclosing class sum (or the gradient's free index outside)."""
        if isinstance(expr, sp.Indexed):
            (index,) = expr.indices
            allowed = bound if bound is not None else free_index
            if index != allowed:
                where = "outside a sum over the classes" if bound is None else f"inside a sum over {bound}"
                raise UnsupportedError(f"the {what} of {self.loss.name} uses {expr} {where}: only elementwise "
                                       "expressions over the class axis and sums over it can be generated")
            return
        if isinstance(expr, sp.Sum):
            if len(expr.limits) != 1:
                raise UnsupportedError(f"the {what} of {self.loss.name} has a nested sum over several indices")
            self._check_nested(expr, what, bound)
            self._check(expr.function, what, free_index, expr.limits[0][0])
            return
        if isinstance(expr, (LogSumExp, MaxOver, SumBelowOne)):
            self._check_nested(expr, what, bound)
            self._check(expr.body, what, free_index, expr.limits[0])
            return
        for a in expr.args:
            self._check(a, what, free_index, bound)


    def _check_nested(self, expr: sp.Basic, what: str, bound: sp.Symbol | None) -> None:
        """A class sum (or logsumexp) inside another is fine when it does not use the outer index: it is one
        number per row (lowered with the class axis kept, length 1), broadcast against the outer sum's terms.
        ``Σ_k y_k·(logsumexp(z − L) − (z_k − L))`` is such a case; ``Σ_k Σ_m f(x_k, x_m)`` (K × K) is not."""
        if bound is not None and bound in expr.free_symbols:  # its own index is not free
            raise UnsupportedError(f"the {what} of {self.loss.name} nests sums over the classes "
                                   f"(an inner sum uses the outer index {bound})")


def _check_supported(expr: sp.Basic, loss: Loss, target: str) -> None:
    allowed_custom = {f.__name__ for f in (*STABLE_FUNCTIONS, *CLASS_REDUCTIONS)}
    for f in sorted(expr.atoms(sp.Function, sp.Integral, sp.Sum, sp.Product), key=sp.default_sort_key):
        name = type(f).__name__
        if name in UNSUPPORTED:
            raise UnsupportedError(f"not supported: {loss.name} needs {name}: {UNSUPPORTED[name]}")
        if isinstance(f, sp.polygamma) and target == "numpy" and f.args[0] != 0:
            raise UnsupportedError(f"not supported: {loss.name} needs polygamma of order {f.args[0]}, "
                                   "which the NumPy target does not implement")
        if isinstance(f, sp.core.function.AppliedUndef) and name not in allowed_custom:
            raise UnsupportedError(f"not supported: {loss.name} uses the undefined function {name}")


# ---------------------------------------------------------------------------------------------------------
# common subexpressions and short lines
def _temps(start: int = 0) -> Iterator[sp.Symbol]:
    for i in itertools.count(start):
        yield sp.Symbol(f"_t{i}")


def _block(exprs: Sequence[sp.Expr], printer, temps: Iterator[sp.Symbol],
           vectors: frozenset[sp.Basic] | None = None) -> Block:
    """cse over ``exprs`` together, long right-hand sides split into named parts, printed.  ``vectors``: the
    symbols of the class-axis arguments of a class-axis loss (the printer orders products by them)."""
    printer.per_class = None  # set below, once the block's temporaries are known
    if hasattr(printer, "prepare"):  # the target's own forms, before cse so that it shares their parts
        exprs = [printer.prepare(e) for e in exprs]
    replacements, reduced = sp.cse(list(exprs), symbols=temps, order="canonical", list=True)
    replacements, reduced = _positive_temporaries(replacements, reduced, printer)
    if getattr(printer, "inline_numbers", False):
        # the printer's target types a number held in a variable differently from a literal: keep them inline
        numbers = {sym: e for sym, e in replacements if not e.free_symbols}
        if numbers:
            replacements = [(sym, e.xreplace(numbers)) for sym, e in replacements if sym not in numbers]
            reduced = [e.xreplace(numbers) for e in reduced]
    pairs: list[tuple[sp.Symbol, sp.Expr]] = []

    def parts(expr: sp.Expr) -> list[sp.Expr]:
        if isinstance(expr, sp.Piecewise):  # its args are (value, condition) pairs: the values can be named
            return [v for v, _ in expr.args if isinstance(v, sp.Expr) and v.args]
        return [a for a in expr.args if isinstance(a, sp.Expr) and a.args]

    def fit(expr: sp.Expr) -> sp.Expr:
        if not expr.args or len(printer.doprint(expr)) <= LINE_BUDGET:
            return expr
        if isinstance(expr, sp.Piecewise):
            expr = sp.Piecewise(*[(fit(v) if isinstance(v, sp.Expr) else v, c) for v, c in expr.args],
                                evaluate=False)
        else:
            expr = expr.func(*[fit(a) if isinstance(a, sp.Expr) else a for a in expr.args])
        while len(printer.doprint(expr)) > LINE_BUDGET:
            candidates = parts(expr)
            if candidates:
                part = max(candidates, key=lambda a: (len(printer.doprint(a)), sp.default_sort_key(a)))
            elif isinstance(expr, (sp.Add, sp.Mul)) and len(expr.args) > 2:
                part = expr.func(*expr.args[: len(expr.args) // 2])
            else:
                break
            name = next(temps)
            pairs.append((name, part))
            expr = expr.xreplace({part: name}) if candidates else expr.func(
                name, *expr.args[len(expr.args) // 2:])
        return expr

    for sym, e in replacements:
        pairs.append((sym, fit(e)))
    outputs = [fit(e) for e in reduced]
    # fit() appends the parts it names before the line that uses them: keep that order
    ordered = _dependency_order(pairs)
    if vectors is not None:  # the temporaries that hold a value per class
        per_class = set(vectors)
        for sym, e in ordered:
            if uses_per_class(e, per_class):
                per_class.add(sym)
        printer.per_class = frozenset(per_class)
    if hasattr(printer, "begin_block"):
        printer.begin_block()
    def bare(e: sp.Expr) -> sp.Expr:  # a whole right-hand side needs no parentheses
        return e.args[0] if isinstance(e, Held) else e

    assignments = tuple((printer.doprint(s), printer.doprint(bare(e))) for s, e in ordered)
    printed_outputs = tuple(printer.doprint(bare(e)) for e in outputs)
    if hasattr(printer, "block_prologue"):  # typed constants the block uses, defined first
        assignments = printer.block_prologue() + assignments
    return Block(assignments=assignments, outputs=printed_outputs)


_UNARY_MINUS = re.compile(r"(?:^|[(,*/=])\s*-(?=[\w(])")


def _negations(replacements: Sequence[tuple[sp.Symbol, sp.Expr]], reduced: Sequence[sp.Expr], printer) -> int:
    """How many unary minus signs the printed block has: each one is an elementwise pass over an array.  Counted
    without the printer's swap of a leading negative term (which removes some of them at no cost later): the
    flips chosen, and so the order of every sum, stay those the stabilised forms were checked with."""
    swap = getattr(printer, "swap_leading_negative", False)
    printer.swap_leading_negative = False
    try:
        return sum(len(_UNARY_MINUS.findall(printer.doprint(e))) for e in (*(e for _, e in replacements), *reduced))
    finally:
        printer.swap_leading_negative = swap


def _positive_temporaries(replacements: list[tuple[sp.Symbol, sp.Expr]], reduced: list[sp.Expr], printer
                          ) -> tuple[list[tuple[sp.Symbol, sp.Expr]], list[sp.Expr]]:
    """cse may name a negated subexpression (``_t0 = -exp(x)``, used as ``-_t0 - y``): store the positive one
    instead (``_t0 = exp(x)``, used as ``_t0 - y``) wherever that leaves fewer negations to compute.
    Negation is exact, so the values are bit-identical; only passes over the arrays are saved."""
    current = None  # the negation count of the block as it stands, printed only when a candidate needs it
    for i in range(len(replacements)):
        sym, e = replacements[i]
        if e.is_Number or not e.could_extract_minus_sign():
            continue
        flip = {sym: -sym}
        cand = [(s, (-e if s == sym else x.xreplace(flip))) for s, x in replacements]
        cand_reduced = [x.xreplace(flip) for x in reduced]
        if current is None:
            current = _negations(replacements, reduced, printer)
        flipped = _negations(cand, cand_reduced, printer)
        if flipped < current:
            replacements, reduced, current = cand, cand_reduced, flipped
    # a name that the flip left as a bare alias of another (``_t4 = _t3``) is replaced by that name
    aliases = {s: e for s, e in replacements if isinstance(e, sp.Symbol)}
    while aliases:
        sym, target = next(iter(aliases.items()))
        replacements = [(s, e.xreplace({sym: target})) for s, e in replacements if s != sym]
        reduced = [e.xreplace({sym: target}) for e in reduced]
        aliases = {s: e for s, e in replacements if isinstance(e, sp.Symbol)}
    return replacements, reduced


def _dependency_order(pairs: list[tuple[sp.Symbol, sp.Expr]]) -> list[tuple[sp.Symbol, sp.Expr]]:
    """The assignments in an order where each name is defined before its use (stable otherwise)."""
    defined: set[sp.Symbol] = set()
    names = {s for s, _ in pairs}
    pending = list(pairs)
    out = []
    while pending:
        for i, (s, e) in enumerate(pending):
            if (e.free_symbols & names) <= defined:
                out.append((s, e))
                defined.add(s)
                del pending[i]
                break
        else:  # a cycle cannot happen; keep the rest as it is rather than loop
            out.extend(pending)
            break
    return out


# ---------------------------------------------------------------------------------------------------------
def build_model(loss: Loss, target: str) -> ModuleModel:
    """The template data for ``loss`` in ``target`` (a name in :data:`~symloss.codegen.targets.TARGETS`)."""
    spec = get_target(target)
    if not isinstance(loss, Loss):
        raise TypeError(f"generate() expects a symloss Loss, not {type(loss).__name__}")
    if loss.event == "vector" and not spec.class_axis:
        raise UnsupportedError(f"not supported: {loss.name} is a class-axis loss, which the {spec.library} target "
                               "does not generate yet (use the torch target)")
    names = _code_names(loss)
    lowering = _Lowering(loss)
    data = [loss.target]
    fired: set[str] = set()
    value = stabilize(loss.expr, data=data, fired=fired)
    gradients = [_gradient(loss, s, value, data, fired) for s in loss.wrt]
    constant = stabilize(loss.constant, data=data, fired=fired)

    meta = loss.metadata.get("vector")
    free_index = meta.j if meta is not None else None
    value_l = lowering(value, what="loss")
    grads_l = [lowering(g, what=f"gradient ∂ℓ/∂{s}", free_index=free_index) for g, s in zip(gradients, loss.wrt)]
    constant_l = lowering(constant, what="constant")
    for e in (value_l, *grads_l, constant_l):
        _check_supported(e, loss, target)

    code_names = {lowering.symbol(s): n for s, n in names.items()}
    printer = spec.printer(code_names)
    vectors = frozenset(lowering.bases.values()) if lowering.vector else None
    # (a class-axis loss with an input per row, such as the multinomial's total count, has data of two shapes,
    # which the in-place forms' one-shape check cannot see apart: it keeps the plain forms)
    inplace_data = None
    if spec.inplace and (not lowering.vector or all(isinstance(s, sp.IndexedBase) for s in loss.inputs)):
        inplace_data = [names[s] for s in (*loss.inputs, loss.target)]

    def term_blocks(value_e: sp.Expr, grads_e: Sequence[sp.Expr], constant_e: sp.Expr
                    ) -> tuple[Block, Block, Block, Block | None, Block | None]:
        """The printed loss terms (ℓ; ℓ and its partials; the constant) and the in-place forms of the first two
        (None where the target has none or nothing is rewritten)."""
        blocks = tuple(_block(exprs, printer, _temps(), vectors)
                       for exprs in ([value_e], [value_e, *grads_e], [constant_e]))
        inplace = (None, None) if inplace_data is None else tuple(_inplace(b, inplace_data) for b in blocks[:2])
        return (*blocks, *inplace)

    value_block, grad_block, constant_block, value_inplace, grads_inplace = term_blocks(value_l, grads_l, constant_l)

    inputs = tuple(
        Argument(names[s], str(s), "input", isinstance(s, sp.IndexedBase), s in loss.wrt, _describe(loss, s, "input"))
        for s in loss.inputs
    )
    target_arg = Argument(names[loss.target], str(loss.target), "target", isinstance(loss.target, sp.IndexedBase),
                          False, _describe(loss, loss.target, "target"))
    constants = tuple(Argument(names[c], str(c), "constant", False, False, _describe(loss, c, "constant"))
                      for c in loss.constants)
    dist = loss.distribution
    class_index_target = dist is not None and dist.support == "class_index"
    index_forms = None
    if spec.class_index and class_index_target and lowering.vector:
        y = lowering.symbol(loss.target)
        forms = class_index_forms(value_l, grads_l, constant_l, y, vectors - {y})
        if forms is not None:
            index_forms = IndexForms(*term_blocks(*forms))
    model = ModuleModel(
        target=target,
        loss_name=loss.name,
        module_name=module_name(loss.name),
        class_name=class_name(loss.name),
        inputs=inputs,
        target_arg=target_arg,
        constants=constants,
        wrt=tuple(loss.inputs.index(s) for s in loss.wrt),
        vector=loss.event == "vector",
        class_index_target=class_index_target,
        value=value_block,
        value_and_grads=grad_block,
        constant=constant_block,
        has_constant=constant != 0,
        helpers=tuple(sorted(printer.helpers)),
        uses_math=printer.uses_math,
        value_inplace=value_inplace,
        value_and_grads_inplace=grads_inplace,
        index_forms=index_forms,
    )
    return dataclasses.replace(model, doc=module_doc(loss, model, [r for r in RULES if r.name in fired]))


def _inplace(block: Block, data: Sequence[str]) -> Block | None:
    rewritten = inplace_block(block.assignments, block.outputs, data)
    return None if rewritten is None else Block(assignments=rewritten[0], outputs=rewritten[1])


def _describe(loss: Loss, s: sp.Basic, role: str) -> str:
    """One line about an argument: what it stands for and its domain."""
    dom = loss.domains.get(s)
    domain = f"; {dom.description}" if dom is not None else ""
    if role == "target":
        axis = "; the classes on the last axis" if isinstance(s, sp.IndexedBase) else ""
        return f"the observation{domain}{axis}"
    if role == "constant":
        return f"a fixed parameter{domain}"
    dist = loss.distribution
    for pname, expr in loss.parameters.items():
        syms = expr.free_symbols | expr.atoms(sp.IndexedBase)
        if s not in syms:
            continue
        text = ""
        if dist is not None:
            try:
                text = dist.param(pname).description
            except Exception:  # a parameter of a custom density has no registry entry
                text = ""
        link = loss.links.get(pname)
        if link:
            shown = sp.sstr(expr)
            what = f"{pname} ({text})" if text and text != pname else pname
            return f"{what} through the {link} link: {pname} = {shown}{domain}"
        return f"{text or pname}{domain}"
    return f"{s}{domain}"
