"""qc-fuse-into-transposes: an elementwise op read by a layout change is computed inside it.

A convolution runs channels-last (qc-conv-to-matmul): its input is transposed NCHW -> NHWC into a
padded buffer and its output comes back NHWC -> NCHW fused with the bias, batch norm and activation
that follow.  Where that activation also feeds another op (a skip connection, a concat, a residual
add), linalg-fuse-elementwise-ops leaves it alone, and the next conv's transpose copies the NCHW
result back to NHWC: two passes over the tensor, one of them strided.  This pass gives each such
transpose its own copy of the elementwise op, so that the next fusion run merges them: the
transpose then computes the activation from the conv's NHWC output directly.

    %a = linalg.generic {maps [(n,c,h,w) -> (n,h,w,c), id]} ins(%conv_nhwc) { relu }   // 2 users
    %t = linalg.generic {maps [(n,h,w,c) -> (n,c,h,w), id]} ins(%a) { yield }          // NCHW -> NHWC
    ... %a ...
becomes
    %a = linalg.generic {maps [(n,c,h,w) -> (n,h,w,c), id]} ins(%conv_nhwc) { relu }
    %a2 = linalg.generic {maps [(n,c,h,w) -> (n,h,w,c), id]} ins(%conv_nhwc) { relu }  // %t's alone
    %t = linalg.generic {maps [(n,h,w,c) -> (n,c,h,w), id]} ins(%a2) { yield }
    ... %a ...
and linalg-fuse-elementwise-ops then folds %a2 into %t (one pass, contiguous reads and writes).

The other way round, a layout move itself (the NHWC -> NCHW move of a conv's output with its
activation) read by several generics (a squeeze-excite block's pooling and its product) is copied
for each of them, so that fusion folds it into each and no NCHW tensor is written between them:

    %m = linalg.generic {maps [(n,c,h,w) -> (n,h,w,c), id]} ins(%conv_nhwc) { relu }
    %s = linalg.generic ... ins(%m) ...          (a reduction over the pixels)
    %p = linalg.generic ... ins(%m, %w) ...      (moved back to NHWC)
becomes
    %m1 = linalg.generic ... ins(%conv_nhwc) { relu }    read by %s
    %m2 = linalg.generic ... ins(%conv_nhwc) { relu }    read by %p

A transpose of a ``tensor.concat`` (a UNet's skip concat before its next conv) is first split
into one transpose per part, each written into its slice of the result, so that each part's
producer gets fused the same way:

    %c = tensor.concat dim(1) %a, %b : (tensor<1x32x8x8xf32>, tensor<1x32x8x8xf32>) -> tensor<1x64x8x8xf32>
    %t = linalg.generic {maps [(n,h,w,c) -> (n,c,h,w), id]} ins(%c) outs(%o : tensor<1x8x8x64xf32>)
becomes
    %ta = linalg.generic {same maps} ins(%a) outs(extract_slice %o [0,0,0,0] [1,8,8,32])
    %o1 = tensor.insert_slice %ta into %o [0,0,0,0] [1,8,8,32]
    %tb = linalg.generic {same maps} ins(%b) outs(extract_slice %o1 [0,0,0,32] [1,8,8,32])
    %t = tensor.insert_slice %tb into %o1 [0,0,0,32] [1,8,8,32]

Only a producer the fusion will take is copied: all-parallel, one result with the identity output
map, inputs read through projected permutations (elementwise or broadcast), and a short body; the
consumer is a pure permutation copy.  Run it after one fusion round (so each producer is already the
whole elementwise chain) and before another.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import tensor

from .base import ModulePass, PassState, walk_ops
from .builders import generic
from .matchers import body_ops, indexing_maps, is_copy_generic, iterator_types, num_outputs, producer

_MAX_BODY = 12  # ops in the copied body: past that, recomputing it may cost more than the pass it saves


def _permutation_copy(op: ir.Operation) -> bool:
    maps = indexing_maps(op)
    return is_copy_generic(op) and all(it == "parallel" for it in iterator_types(op)) \
        and maps[0].is_permutation and maps[1] == ir.AffineMap.get_identity(maps[1].n_dims)


def _fusable_producer(op: ir.Operation | None) -> bool:
    if op is None or op.name != "linalg.generic" or len(op.results) != 1 or num_outputs(op) != 1:
        return False
    maps = indexing_maps(op)
    return all(it == "parallel" for it in iterator_types(op)) \
        and maps[-1] == ir.AffineMap.get_identity(maps[-1].n_dims) \
        and all(m.is_projected_permutation for m in maps[:-1]) and len(body_ops(op)) <= _MAX_BODY


def _split_over_concat(op: ir.Operation) -> list[ir.Operation]:
    """The permutation copy ``op`` of a static ``tensor.concat`` as one copy per part, each into its
    slice of ``op``'s output; the new copies, or [] when ``op`` does not read a concat."""
    concat = producer(op.operands[0])
    if concat is None or concat.name != "tensor.concat" or \
            not all(ir.RankedTensorType(v.type).has_static_shape for v in (*concat.operands, op.operands[1])):
        return []
    dim = ir.IntegerAttr(concat.attributes["dim"]).value
    maps = indexing_maps(op)
    out_dim = ir.AffineDimExpr(maps[0].results[dim]).position  # the output dim that walks the concat's
    out = op.operands[1]
    shape, elt = list(ir.RankedTensorType(out.type).shape), ir.RankedTensorType(out.type).element_type
    copies, acc, offset = [], out, 0
    with ir.InsertionPoint(op), op.location:
        for part in concat.operands:
            sizes = list(shape)
            sizes[out_dim] = ir.RankedTensorType(part.type).shape[dim]
            offsets = [0] * len(shape)
            offsets[out_dim] = offset
            ones = [1] * len(shape)
            dest = tensor.extract_slice(ir.RankedTensorType.get(sizes, elt), acc, [], [], [], offsets, sizes, ones)
            moved = generic([part], [dest], maps, lambda args: args[0])
            copies.append(producer(moved))
            acc = tensor.insert_slice(moved, acc, [], [], [], offsets, sizes, ones)
            offset += sizes[out_dim]
    op.results[0].replace_all_uses_with(acc)
    op.erase()
    if not list(concat.results[0].uses):
        concat.erase()
    return copies


def _layout_move(op: ir.Operation) -> bool:
    """An elementwise op that also moves its data to another layout: a fusable producer reading an
    input through a permutation other than the identity (a conv's NHWC -> NCHW move and its activation)."""
    return _fusable_producer(op) and any(m.is_permutation and m != ir.AffineMap.get_identity(m.n_dims)
                                         for m in indexing_maps(op)[:-1])


def _clone_per_user(op: ir.Operation) -> None:
    """Each ``linalg.generic`` user of ``op``'s result reads its own copy of ``op`` (one of them the
    original when all users are generics), so that elementwise fusion folds the move into each."""
    users = list(dict.fromkeys(use.owner.operation for use in op.results[0].uses))
    generics = [u for u in users if u.name == "linalg.generic"]
    if len(users) < 2 or not generics:
        return
    for user in generics[1:] if len(generics) == len(users) else generics:
        clone = op.clone(ir.InsertionPoint(op))
        for i, operand in enumerate(user.operands):
            if operand == op.results[0]:
                user.operands[i] = clone.results[0]


class FuseIntoTransposes(ModulePass):
    NAME = "qc-fuse-into-transposes"
    SUMMARY = ("Give each permutation copy its own copy of the elementwise op it reads (split over a concat's "
               "parts), and each reader of a layout move its own copy of the move, for elementwise fusion")

    def run(self, module: ir.Operation, state: PassState) -> None:
        for op in walk_ops(module, "linalg.generic"):
            if _layout_move(op):
                _clone_per_user(op)
        copies = []
        for op in walk_ops(module, "linalg.generic"):
            if _permutation_copy(op):
                copies.extend(_split_over_concat(op) or [op])
        for op in copies:
            source = producer(op.operands[0])
            if not _fusable_producer(source) or len(list(source.results[0].uses)) < 2:
                continue  # a single user is fused as it is
            clone = source.clone(ir.InsertionPoint(source))
            op.operands[0] = clone.results[0]
