"""qc-pool-channels-last: NC(H)W max and sum pooling -> one channels-last generic.

The importer gives MaxPool / AveragePool / GlobalAveragePool as named pooling ops on NCHW, whose
loops lower with the window innermost: scalar, serial code with strided reads (ResNet-18's stem
max pool ran so, and was 17 % of that model's time).  As depthwise convolutions do
(qc-conv-to-matmul), a pool runs channels last: loops (n, o..., k..., c), the window reduced and
c innermost, contiguous in the input and the output, so LLVM vectorizes over channels and
qc-parallelize splits output rows.  A constant padding of the input (-inf before a max pool) is
redone channels last, and the moves in and out are elementwise generics that fusion composes
with the convolutions around the pool.

    %p = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] { tensor.yield %ninf }
    %y = linalg.pooling_nchw_max {strides = dense<2>, dilations = dense<1>}
           ins(%p, %window : tensor<1x64x114x114xf32>, tensor<3x3xf32>) outs(%init)
becomes
    %xt = linalg.generic  (the unpadded x moved channels last into the interior of a -inf fill)
    %yt = linalg.generic {iterator_types = [p, p, p, r, r, p]}
            ins(%xt : tensor<1x114x114x64xf32>) outs(%init_t : tensor<1x56x56x64xf32>)
            { yt[n, oh, ow, c] = maximumf(yt[..], xt[n, 2 oh + kh, 2 ow + kw, c]) }
    %y  = linalg.generic  y[n, c, oh, ow] = yt[n, oh, ow, c]
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import arith

from .base import ModulePass, PassState, walk_ops
from .channels_last import channels_first, channels_last, filled, generic_into, static_f32, window_attrs, window_exprs
from .matchers import constant_float, erase_dead_ops, producer

# named pooling op -> the reduction of its body, as ``(accumulator, element) -> value``
POOLS = {"linalg.pooling_nchw_max": lambda acc, x: arith.MaximumFOp(acc, x).result,
         "linalg.pooling_nchw_sum": lambda acc, x: arith.AddFOp(acc, x).result,
         "linalg.pooling_ncw_max": lambda acc, x: arith.MaximumFOp(acc, x).result,
         "linalg.pooling_ncw_sum": lambda acc, x: arith.AddFOp(acc, x).result}


def _moved_init(init: ir.Value) -> ir.Value:
    """The pool's init channels last: a fill of a constant is filled again in that shape."""
    shape = list(ir.RankedTensorType(init.type).shape)
    moved = [shape[0], *shape[2:], shape[1]]
    fill = producer(init)
    value = constant_float(fill.operands[0]) if fill is not None and fill.name == "linalg.fill" else None
    return filled(moved, value) if value is not None else channels_last(init)


def rewrite(op: ir.Operation) -> ir.Value:
    """The channels-last form of pooling ``op``, built before it."""
    x, window, init = op.operands[:3]
    strides, dilations = window_attrs(op)
    d = len(strides)
    rank = 2 + 2 * d  # loops (n, o..., k..., c)
    dim = ir.AffineExpr.get_dim
    c = dim(rank - 1)
    out_map = ir.AffineMap.get(rank, 0, [dim(0), *map(dim, range(1, d + 1)), c])
    x_map = ir.AffineMap.get(rank, 0, [dim(0), *window_exprs(rank, d, strides, dilations), c])
    window_map = ir.AffineMap.get(rank, 0, list(map(dim, range(1 + d, 1 + 2 * d))))
    start = _moved_init(init)
    reduce = POOLS[op.name]
    y = generic_into(ir.RankedTensorType(start.type), [channels_last(x), window], [x_map, window_map, out_map],
                     lambda a: reduce(a[2], a[0]), kinds="p" * (1 + d) + "r" * d + "p", init=start)
    return channels_first(y)


class PoolChannelsLast(ModulePass):
    NAME = "qc-pool-channels-last"
    SUMMARY = "Rewrite f32 NCHW / NCW max and sum pooling as channels-last generics (vectorized over channels)"

    def run(self, module: ir.Operation, state: PassState) -> None:
        for name in POOLS:
            for op in (o for o in walk_ops(module, name) if static_f32([o.operands[0], o.operands[2]])):
                with ir.InsertionPoint(op), op.location:
                    y = rewrite(op)
                op.results[0].replace_all_uses_with(y)
                op.erase()
        erase_dead_ops(module)  # the NCHW paddings and inits
