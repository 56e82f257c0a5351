"""In-place forms of printed PyTorch code, for a forward pass that records no autograd graph.

Every elementwise torch operation returns a new tensor, and on the CPU a new tensor of a few MB costs about as
much as the pass that fills it (fresh pages are faulted in and zeroed).  Where an operand of an operation is
itself a new tensor that nothing reads afterwards — an anonymous intermediate such as the ``x*y`` in
``torch.exp(x*y)``, or a temporary at its last use — the operation can overwrite that operand instead:
``(x*y).exp_()``.  This module rewrites the printed right-hand sides of a :class:`~symloss.codegen.model.Block`
that way, on their Python syntax trees, so that the generated module can run the rewritten block where it is
safe and the plain one everywhere else.

It is safe under two conditions that the generated module checks at run time before it takes this path:

* no autograd graph is being recorded (autograd's saved tensors must not be overwritten), and
* every data argument (the inputs and the target) has one and the same shape, and every constant broadcasts
  into it: then each new tensor computed from a data argument has that full shape and the loss's dtype, so an
  in-place operation on it never needs to grow it.  A class-axis loss has two such shapes, per class (the
  arguments') and per row (a reduction over the class axis, the axis kept with length 1): a tensor per row is
  overwritten only by an operation whose other operands are per row too.

Only operations whose in-place form computes exactly the same floating-point result are rewritten (the operands
of ``+`` and ``*`` may swap: IEEE addition and multiplication commute exactly; ``l − r`` becomes
``(−r) + l``, also exact).  A division by a new tensor of a Python number is left alone: ``r.reciprocal_()
.mul_(c)`` would round twice.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["FRESH_HELPERS", "inplace_block"]

#: torch functions whose in-place method on their first tensor gives the same result: name → method
UNARY_METHODS = {
    "torch.scatter": "scatter_",
    "torch.exp": "exp_",
    "torch.expm1": "expm1_",
    "torch.log": "log_",
    "torch.log1p": "log1p_",
    "torch.sigmoid": "sigmoid_",
    "torch.tanh": "tanh_",
    "torch.sqrt": "sqrt_",
    "torch.abs": "abs_",
    "torch.sign": "sign_",
    "torch.lgamma": "lgamma_",
    "torch.digamma": "digamma_",
    "torch.reciprocal": "reciprocal_",
    "torch.clamp": "clamp_",
    "torch.clamp_min": "clamp_min_",
    "torch.clamp_max": "clamp_max_",
}

#: elementwise torch functions of several tensors that take out= (which may be one of their inputs)
OUT_FUNCTIONS = frozenset({
    "torch.special.xlogy",
    "torch.special.xlog1py",
    "torch.logaddexp",
    "torch.maximum",
    "torch.minimum",
    "torch.where",
    "torch.special.log_ndtr",
    "torch.polygamma",
})

#: reductions over the class axis (the axis kept, with length 1): a new tensor per row
REDUCTIONS = frozenset({"torch.sum", "_class_max", "_sum_below_one", "_logsumexp", "torch.gather"})

#: the module's helpers that return a new tensor of their arguments' broadcast shape and the loss's dtype, never
#: one of their arguments (tests/test_codegen_inplace.py checks each on the generated code)
FRESH_HELPERS = frozenset({
    "_softplus", "_sgn", "_log_tanhc", "_dlog_tanhc", "_log1mexp", "_log_ratio", "_x_over_expm1_m1",
    "_log_ndtr_deriv", "_lgammacor_series", "_lgammacor", "_digammacor_series", "_digammacor", "_lbeta",
    "_lgamma_diff", "_digamma_diff", "_digamma_diff_half", "_log1p_square", "_log1p_square_du",
    "_log1p_square_dv", "_log1p_square_dvc", "_bd0", "_lgamma_half_rem", "_digamma_half_rem", "_log1p_square_rem",
    "_log1p_square_du_scaled", "_log_quotient",
    "_sigmoid", "_mul_exp",
})

_METHODS = {ast.Add: "add_", ast.Sub: "sub_", ast.Mult: "mul_", ast.Div: "div_", ast.Pow: "pow_"}
_COMMUTATIVE = (ast.Add, ast.Mult)


@dataclass(frozen=True)
class _Value:
    """What an expression evaluates to: ``rank`` — whether it reads a data argument, and so has (if it is a
    tensor) the full shape: 0 no, 1 per row (after a reduction over the class axis), 2 per class or, without a
    class axis, per observation; ``floating`` — a tensor of the loss's dtype (not a mask, not a Python number);
    ``fresh`` — such a new tensor, of the shape its rank says, that nothing else holds or reads later."""

    rank: int
    fresh: bool
    floating: bool = False

    @property
    def data(self) -> bool:
        return self.rank > 0


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _method(receiver: ast.expr, name: str, args: Iterable[ast.expr] = (), keywords=()) -> ast.Call:
    return ast.Call(func=ast.Attribute(value=receiver, attr=name, ctx=ast.Load()), args=list(args),
                    keywords=list(keywords))


class _Rewriter:
    """Rewrites one block's statements in order; ``kinds`` records what each assigned name holds."""

    def __init__(self, data: Iterable[str], statements: list[tuple[str, ast.expr]]):
        self.kinds: dict[str, _Value] = {name: _Value(rank=2, fresh=False, floating=True) for name in data}
        uses: dict[str, list[int]] = {}
        self.counts: list[Counter[str]] = []
        self.escaped: set[str] = set()  # assigned to another name as a whole: it may be read under that name
        for i, (_, tree) in enumerate(statements):
            names = Counter(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
            self.counts.append(names)
            for name in names:
                uses.setdefault(name, []).append(i)
            if isinstance(tree, ast.Name):
                self.escaped.add(tree.id)
        self.last_use = {name: max(at) for name, at in uses.items()}
        self.index = 0
        self.changed = False

    def statement(self, index: int, tree: ast.expr) -> tuple[ast.expr, _Value]:
        self.index = index
        return self.visit(tree)

    # -- the cases ----------------------------------------------------------------------------------------
    def visit(self, node: ast.expr) -> tuple[ast.expr, _Value]:
        if isinstance(node, ast.Name):
            return node, self._name(node.id)
        if isinstance(node, ast.Constant):
            return node, _Value(False, False)
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.UnaryOp):
            operand, value = self.visit(node.operand)
            negation = isinstance(node.op, ast.USub) and value.floating
            if negation and value.fresh:
                self.changed = True
                return _method(operand, "neg_"), value
            node.operand = operand
            return node, _Value(value.rank, negation and value.data, negation)
        if isinstance(node, ast.Call):
            return self._call(node)
        # anything else (comparisons, boolean masks, subscripts, ...): its parts are only read
        rank = 0
        for field, old in ast.iter_fields(node):
            if isinstance(old, ast.expr):
                new, value = self.visit(old)
                setattr(node, field, new)
                rank = max(rank, value.rank)
            elif isinstance(old, list):
                for k, item in enumerate(old):
                    if isinstance(item, ast.expr):
                        old[k], value = self.visit(item)
                        rank = max(rank, value.rank)
        return node, _Value(rank, False)

    def _name(self, name: str) -> _Value:
        kind = self.kinds.get(name)
        if kind is None:  # a module (torch, math) or a constant argument: never overwritten
            return _Value(0, False)
        consumable = (kind.fresh and self.last_use.get(name) == self.index and name not in self.escaped
                      and self.counts[self.index][name] == 1)
        return _Value(kind.rank, consumable, kind.floating)

    def _binop(self, node: ast.BinOp) -> tuple[ast.expr, _Value]:
        left, lv = self.visit(node.left)
        right, rv = self.visit(node.right)
        node.left, node.right = left, right
        rank = max(lv.rank, rv.rank)
        floating = lv.floating or rv.floating
        result = _Value(rank, rank > 0 and floating, floating)
        method = _METHODS.get(type(node.op))
        if method is None:
            return node, _Value(rank, False)
        lv_fresh, rv_fresh = lv.fresh and lv.rank == rank, rv.fresh and rv.rank == rank  # no growing in place
        if lv_fresh:
            self.changed = True
            return _method(left, method, [right]), result
        if rv_fresh and isinstance(node.op, _COMMUTATIVE):
            self.changed = True
            return _method(right, method, [left]), result
        if rv_fresh and isinstance(node.op, ast.Sub):  # l − r = (−r) + l exactly
            self.changed = True
            return _method(_method(right, "neg_"), "add_", [left]), result
        if rv_fresh and isinstance(right, ast.Name) and isinstance(node.op, (ast.Div, ast.Pow)) and lv.data:
            self.changed = True
            fn = "torch.div" if isinstance(node.op, ast.Div) else "torch.pow"
            return self._out_call(fn, [left, right], right), result
        return node, result

    def _out_call(self, fn: str, args: list[ast.expr], out: ast.Name) -> ast.Call:
        func = ast.parse(fn, mode="eval").body
        return ast.Call(func=func, args=args, keywords=[ast.keyword(arg="out", value=ast.Name(out.id, ast.Load()))])

    def _call(self, node: ast.Call) -> tuple[ast.expr, _Value]:
        name = _dotted(node.func)
        if isinstance(node.func, ast.Attribute) and (name is None or not name.startswith(("torch.", "math."))):
            # a method: of a new tensor (x.mul_(c) and the like: in place, it is that tensor), or of a temporary
            # or argument (x.to(dtype), x.new_ones(()): it may return x itself)
            receiver, rv = self.visit(node.func.value)
            node.func.value = receiver
            rank = rv.rank
            for k, a in enumerate(node.args):
                node.args[k], av = self.visit(a)
                rank = max(rank, av.rank)
            in_place = (name is None and node.func.attr.endswith("_") and not node.func.attr.startswith("_")
                        and rank == rv.rank)
            return node, _Value(rank, in_place and rv.fresh, in_place and rv.floating)
        values = []
        for k, a in enumerate(node.args):
            node.args[k], av = self.visit(a)
            values.append(av)
        for kw in node.keywords:
            kw.value, kv = self.visit(kw.value)
            values.append(kv)
        rank = max((v.rank for v in values), default=0)
        first = values[0] if values else _Value(0, False)
        if name in REDUCTIONS:
            return node, _Value(min(rank, 1), rank > 0, rank > 0)
        if name in UNARY_METHODS and first.rank == rank > 0 and first.floating:
            if first.fresh:
                self.changed = True
                return _method(node.args[0], UNARY_METHODS[name], node.args[1:], node.keywords), first
            return node, _Value(rank, True, True)
        if name in OUT_FUNCTIONS and rank > 0:
            positional = values[: len(node.args)]
            for a, v in zip(node.args, positional, strict=True):
                if v.fresh and v.rank == rank and isinstance(a, ast.Name) and not node.keywords:
                    self.changed = True
                    node.keywords = [ast.keyword(arg="out", value=ast.Name(a.id, ast.Load()))]
                    break
            # of the loss's dtype where an argument is (torch.where: a branch; its mask is not)
            floating = any(v.floating for v in (positional[1:] if name == "torch.where" else values))
            return node, _Value(rank, floating, floating)
        if name in FRESH_HELPERS:
            return node, _Value(rank, rank > 0, rank > 0)
        return node, _Value(rank, False)


def inplace_block(assignments: Iterable[tuple[str, str]], outputs: Iterable[str],
                  data: Iterable[str]) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]] | None:
    """The assignments and outputs of a printed torch block rewritten to overwrite the new tensors that nothing
    reads afterwards; None where nothing could be rewritten.  ``data``: the names of the data arguments (inputs
    and target), whose tensors are never written."""
    assignments = list(assignments)
    outputs = list(outputs)
    statements = [(name, ast.parse(code, mode="eval").body) for name, code in assignments]
    statements += [(f"_out{k}", ast.parse(code, mode="eval").body) for k, code in enumerate(outputs)]
    rewriter = _Rewriter(data, statements)
    printed: list[str] = []
    for index, (name, tree) in enumerate(statements):
        new, value = rewriter.statement(index, tree)
        rewriter.kinds[name] = value if not isinstance(tree, ast.Name) else _Value(value.rank, False, value.floating)
        printed.append(ast.unparse(new))
    if not rewriter.changed:
        return None
    n = len(assignments)
    return tuple((name, code) for (name, _), code in zip(assignments, printed[:n], strict=True)), tuple(printed[n:])
