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

Only a producer the fusion will take is copied: all-parallel, one result with the identity output
map, inputs read through projected permutations (elementwise or broadcast), and a short body; the
consumer is a pure permutation copy.  Run it after one fusion round (so each producer is already the
whole elementwise chain) and before another.
"""

from __future__ import annotations

from torch_mlir import ir

from .base import ModulePass, PassState, walk_ops
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


class FuseIntoTransposes(ModulePass):
    NAME = "qc-fuse-into-transposes"
    SUMMARY = "Give each permutation copy its own copy of the elementwise op it reads, for elementwise fusion"

    def run(self, module: ir.Operation, state: PassState) -> None:
        for op in walk_ops(module, "linalg.generic"):
            if not _permutation_copy(op):
                continue
            source = producer(op.operands[0])
            if not _fusable_producer(source) or len(list(source.results[0].uses)) < 2:
                continue  # a single user is fused as it is
            clone = source.clone(ir.InsertionPoint(source))
            op.operands[0] = clone.results[0]
