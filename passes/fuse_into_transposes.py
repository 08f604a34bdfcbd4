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

A Resize (a generic that gathers by computed indices, over NCHW loops) reads the NHWC source of the
layout move it gathers from directly, and when every reader moves its result back to NHWC it runs on
loops (n, h, w, c) and writes NHWC (then moved to NCHW, which fusion folds into the readers):

    %x = linalg.generic {maps [(n,c,h,w) -> (n,h,w,c), id]} ins(%y_nhwc)            // NHWC -> NCHW
    %r = linalg.generic {maps [id]} outs(...) { tensor.extract %x[%n, %c, %h / 2, %w / 2] }
becomes
    %r = linalg.generic {maps [id]} outs(NHWC) { tensor.extract %y_nhwc[%n, %h / 2, %w / 2, %c] }   // loops (n, h, w, c)
    (moved to NCHW, for the readers)

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
from torch_mlir.dialects import linalg, tensor

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


def _pure_move(op: ir.Operation | None) -> bool:
    """A generic that moves one input to another layout (all parallel, a permutation in, the identity
    out) and maps each element on its own (a copy, or scalar ops on it: an average pool's division)."""
    if op is None or op.name != "linalg.generic" or len(op.operands) != 2 or not _fusable_producer(op):
        return False
    maps = indexing_maps(op)
    inner = body_ops(op)[:-1]
    out = op.regions[0].blocks[0].arguments[1]
    return maps[0].is_permutation and not any(o.name == "linalg.index" or o.regions or out in list(o.operands)
                                              for o in inner)


def _gather_through_moves(root: ir.Operation) -> None:
    """A ``tensor.extract`` (a Resize's gather, inside its generic) from a pure layout move reads the
    move's source at the permuted indices instead, and applies the move's scalar ops to what it read:
    the NCHW copy that only a resize read is then dead, and the resize reads the NHWC data directly."""
    for extract in walk_ops(root, "tensor.extract"):
        move = producer(extract.operands[0])
        if not _pure_move(move):
            continue
        source_map = indexing_maps(move)[0]  # output index (the loops) -> source index
        indices = list(extract.operands[1:])
        permuted = [indices[ir.AffineDimExpr(e).position] for e in source_map.results]
        block = move.regions[0].blocks[0]
        with ir.InsertionPoint(extract), extract.location:
            values = {block.arguments[0]: tensor.extract(move.operands[0], permuted)}
            *scalar_ops, done = body_ops(move)
            for inner in scalar_ops:
                clone = inner.clone()
                for i, operand in enumerate(clone.operands):
                    clone.operands[i] = values.get(operand, operand)
                values[inner.results[0]] = clone.results[0]
        extract.results[0].replace_all_uses_with(values[done.operands[0]])
        extract.erase()


_TO_LAST = [0, 2, 3, 1]  # NCHW loops (n, c, h, w) in channels-last order (n, h, w, c)


def _gathers_channels_last(root: ir.Operation) -> None:
    """A gather generic (a Resize: it reads a tensor by computed indices) over NCHW loops whose every
    reader moves its result back to NHWC runs channels last: loops (n, h, w, c), so that the index
    arithmetic is per pixel and the reads run along the channels, and an NHWC result that a move to
    NCHW (folded into those readers by fusion) turns back."""
    for op in walk_ops(root, "linalg.generic"):
        maps = indexing_maps(op)
        if len(op.results) != 1 or num_outputs(op) != 1 or maps[-1] != ir.AffineMap.get_identity(4) or \
                any(it != "parallel" for it in iterator_types(op)) or \
                not any(inner.name == "tensor.extract" for inner in body_ops(op)):
            continue
        readers = [use.owner.operation for use in op.results[0].uses]
        back = ir.AffineMap.get(4, 0, [ir.AffineExpr.get_dim(d) for d in (0, 3, 1, 2)])  # (n, h, w, c) -> NCHW
        if not readers or any(r.name != "linalg.generic" or not any(
                v == op.results[0] and m == back for v, m in zip(r.operands, indexing_maps(r))) for r in readers):
            continue
        _interchange_to_last(op)


def _interchange_to_last(op: ir.Operation) -> None:
    """``op`` (NCHW loops, identity output) as ``channels_first(op')`` with op' on loops (n, h, w, c)."""
    dim = ir.AffineExpr.get_dim
    to_old = ir.AffineMap.get(4, 0, [dim(_TO_LAST.index(i)) for i in range(4)])  # new loops -> old loops
    out_t = ir.RankedTensorType(op.results[0].type)
    shape = [out_t.shape[i] for i in _TO_LAST]
    maps = [ir.AffineMap.get(4, m.n_symbols, [e.compose(to_old) for e in m.results]) for m in indexing_maps(op)[:-1]]
    maps.append(ir.AffineMap.get_identity(4))
    inputs = list(op.operands[:-1])
    old_block = op.regions[0].blocks[0]

    def body(args: list[ir.Value]) -> ir.Value:
        values = dict(zip(old_block.arguments, args))
        *inner_ops, done = body_ops(op)
        for inner in inner_ops:
            if inner.name == "linalg.index":
                new = linalg.IndexOp(_TO_LAST.index(ir.IntegerAttr(inner.attributes["dim"]).value)).result
            else:
                clone = inner.clone()
                for i, operand in enumerate(clone.operands):
                    clone.operands[i] = values.get(operand, operand)
                new = clone.results[0]
            values[inner.results[0]] = new
        return values[done.operands[0]]

    with ir.InsertionPoint(op), op.location:
        nhwc = generic(inputs, [tensor.empty(shape, out_t.element_type)], maps, body)
        nchw = generic([nhwc], [tensor.empty(out_t.shape, out_t.element_type)],
                       [ir.AffineMap.get(4, 0, [dim(0), dim(2), dim(3), dim(1)]), ir.AffineMap.get_identity(4)],
                       lambda a: a[0])
    op.results[0].replace_all_uses_with(nchw)
    op.erase()


class FuseIntoTransposes(ModulePass):
    NAME = "qc-fuse-into-transposes"
    SUMMARY = ("Give each permutation copy its own copy of the elementwise op it reads (split over a concat's "
               "parts), each reader of a layout move its own copy of the move, and gathers channels-last reads "
               "and loops, for elementwise fusion")

    def run(self, module: ir.Operation, state: PassState) -> None:
        _gather_through_moves(module)
        _gathers_channels_last(module)
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
