"""qc-raise: recognise matmuls with a constant weight and produce ``qc.linear``.

Matched, with ``W`` a ``qc.weight`` (run qc-outline-weights first):

    linalg.matmul(x, W_kn)                          x: [M, K], W_kn: [K, N]
    linalg.matmul(x, transpose(W_nk))               (nn.Linear through PyTorch)
    linalg.batch_matmul(x, broadcast(W_kn))         (ONNX MatMul on 3-D x)

into ``qc.linear(x, W_nk [, b])``; a following ``+ b`` with a 1-D ``b`` over
the output channels is folded in as the bias.  The accumulator must be a
zero fill.  A ``[K, N]`` weight is transposed in the store (entry ``name.nk``)
when the store holds it.
"""

from __future__ import annotations

from torch_mlir import ir

from ..dialects.qc import LinearOp, WeightOp
from .base import ModulePass, PassState, walk_ops
from .matchers import body_ops, erase_dead_ops, indexing_maps, is_copy_generic, is_zero_fill, producer, single_user


def _peel_weight(value: ir.Value, batch: bool) -> tuple[ir.Operation, bool] | None:
    """Follow broadcasts/transposes from a matmul RHS to a qc.weight.

    Returns (weight op, whether the chain transposed a [N, K] weight)."""
    transposed, broadcast = False, False
    while True:
        op = producer(value)
        if op is None:
            return None
        if isinstance(op.opview, WeightOp):
            ok = ir.RankedTensorType(op.result.type).rank == 2 and broadcast == batch
            return (op, transposed) if ok else None
        if op.name == "linalg.transpose":
            if list(op.attributes["permutation"]) != [1, 0]:
                return None
            transposed = not transposed
        elif op.name == "linalg.broadcast" and list(op.attributes["dimensions"]) == [0] and not broadcast:
            broadcast = True
        elif is_copy_generic(op):
            in_map, out_map = indexing_maps(op)
            if not out_map.is_permutation or out_map != ir.AffineMap.get_identity(out_map.n_dims):
                return None
            results = [str(r) for r in in_map.results]
            if results == ["d1", "d0"] and in_map.n_dims == 2:
                transposed = not transposed
            elif results == ["d1", "d2"] and in_map.n_dims == 3 and not broadcast:
                broadcast = True
            else:
                return None
        else:
            return None
        value = op.operands[0]


def _bias_add(result: ir.Value, n: int) -> tuple[ir.Operation, ir.Value] | None:
    """``generic(result, b) -> result + b`` with ``b: [n]`` broadcast on the last dim."""
    user = single_user(result)
    if user is None or user.name != "linalg.generic" or len(user.operands) != 3:
        return None
    body = body_ops(user)
    if len(body) != 2 or body[0].name != "arith.addf":
        return None
    maps = indexing_maps(user)
    rank = maps[-1].n_dims
    pos = 0 if user.operands[0] == result else 1
    bias = user.operands[1 - pos]
    btype = ir.RankedTensorType(bias.type)
    if list(btype.shape) != [n] or [str(r) for r in maps[1 - pos].results] != [f"d{rank - 1}"]:
        return None
    if maps[pos] != ir.AffineMap.get_identity(rank) or maps[2] != ir.AffineMap.get_identity(rank):
        return None
    args = list(user.regions[0].blocks[0].arguments)
    lhs, rhs = body[0].operands
    uses_both = (lhs == args[0] and rhs == args[1]) or (lhs == args[1] and rhs == args[0])
    if not uses_both or body[1].operands[0] != body[0].result:
        return None
    return user, bias


_DEFAULT_MAPS = {
    "linalg.matmul": ["(d0, d1, d2) -> (d0, d2)", "(d0, d1, d2) -> (d2, d1)", "(d0, d1, d2) -> (d0, d1)"],
    "linalg.batch_matmul": ["(d0, d1, d2, d3) -> (d0, d1, d3)", "(d0, d1, d2, d3) -> (d0, d3, d2)",
                            "(d0, d1, d2, d3) -> (d0, d1, d2)"],
}


class RaiseLinear(ModulePass):
    NAME = "qc-raise"
    SUMMARY = "Raise matmuls with a constant (qc.weight) operand to qc.linear"

    def run(self, module: ir.Operation, state: PassState) -> None:
        for op in walk_ops(module, "linalg.matmul") + walk_ops(module, "linalg.batch_matmul"):
            with op.location:
                self._raise(op, state)
        erase_dead_ops(module)

    def _raise(self, op: ir.Operation, state: PassState) -> None:
        batch = op.name == "linalg.batch_matmul"
        if [str(m) for m in indexing_maps(op)] != _DEFAULT_MAPS[op.name] or not is_zero_fill(op.operands[2]):
            return
        found = _peel_weight(op.operands[1], batch)
        if found is None:
            return
        weight, transposed = found
        x = op.operands[0]
        name = ir.FlatSymbolRefAttr(weight.attributes["name"]).value
        wtype = ir.RankedTensorType(weight.result.type)
        if not transposed:  # the store holds [K, N]; qc.linear wants [N, K]
            nk = f"{name}.nk"
            if name in state.store and nk not in state.store:  # IR-only runs (no store) just rename
                state.store[nk] = state.store[name].T
            name = nk
            wtype = ir.RankedTensorType.get(list(reversed(wtype.shape)), wtype.element_type)
        n = wtype.shape[0]
        result = op.results[0]
        fused = _bias_add(result, n)
        target = fused[0] if fused else op
        with ir.InsertionPoint(target), op.location:
            w = WeightOp(wtype, ir.FlatSymbolRefAttr.get(name))
            linear = LinearOp(result.type, x, w.result, bias=fused[1] if fused else None)
        target.results[0].replace_all_uses_with(linear.result)
