"""qc-fold-widening: a contraction reads a widened (f16 or i8 -> f32) operand as it is stored.

    %w = linalg.generic {parallel, identity maps} ins(%k : tensor<4x64x256xf16>) outs(%e : tensor<4x64x256xf32>) {
      ^bb0(%x: f16, %y: f32): %z = arith.extf %x : f16 to f32   linalg.yield %z }
    %s = linalg.batch_matmul ins(%q, %w : tensor<4x8x64xf32>, tensor<4x64x256xf32>) outs(%acc)
becomes
    %s = linalg.batch_matmul ins(%q, %k : tensor<4x8x64xf32>, tensor<4x64x256xf16>) outs(%acc)

(also through a ``tensor.collapse_shape`` between the widening and the contraction, rebuilt on the
narrow tensor).

A named contraction widens its operands to the result's element type itself (``extf``, or ``sitofp``
for signed int8 codes).  The f16 or int8 KV cache of a decoder (``--kv-cache float16|int8``) is the
case: without the fold every step writes an f32 copy of every layer's cache slice and the product
reads that; with it the micro-kernel loads the narrow values and widens them in registers
(qc-microkernels' f16 / i8 B).  Only B (the operand the kernels stream) is folded,
and only a widening that nothing else reads is removed.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import linalg, tensor

from .base import ModulePass, PassState, walk_ops
from .isolate_contractions import CONTRACTIONS
from .matchers import body_ops, default_maps, indexing_maps, iterator_types, producer


def widened_source(value: ir.Value) -> ir.Value | None:
    """The f16 (or i8) tensor ``value`` is the elementwise f32 widening (extf, or sitofp) of, else None."""
    op = producer(value)
    if op is None or op.name != "linalg.generic" or len(op.operands) != 2 or len(op.results) != 1:
        return None
    if any(it != "parallel" for it in iterator_types(op)) or \
            any(m != ir.AffineMap.get_identity(m.n_dims) for m in indexing_maps(op)):
        return None
    source = op.operands[0]
    if not (isinstance(source.type, ir.RankedTensorType) and isinstance(ir.RankedTensorType(value.type).element_type,
                                                                        ir.F32Type)):
        return None
    elt = source.type.element_type
    cast = "arith.extf" if isinstance(elt, ir.F16Type) else \
        "arith.sitofp" if isinstance(elt, ir.IntegerType) and ir.IntegerType(elt).width == 8 else None
    body = body_ops(op)
    block = op.regions[0].blocks[0]
    if cast is None or len(body) != 2 or body[0].name != cast or body[0].operands[0] != block.arguments[0] \
            or body[1].operands[0] != body[0].results[0]:
        return None
    return source


class FoldWidening(ModulePass):
    NAME = "qc-fold-widening"
    SUMMARY = "Let linalg.matmul / batch_matmul read an f16 or i8 B operand directly instead of its f32 widening"

    def run(self, module: ir.Operation, state: PassState) -> None:
        for name, build in ((CONTRACTIONS[0], linalg.matmul), (CONTRACTIONS[1], linalg.batch_matmul)):
            for op in walk_ops(module, name):
                b = op.operands[1]
                collapse = producer(b)
                if collapse is not None and collapse.name != "tensor.collapse_shape":
                    collapse = None
                widened = collapse.operands[0] if collapse is not None else b
                source = widened_source(widened)
                if source is None or not default_maps(op):  # a transposed form: left as it is
                    continue
                with ir.InsertionPoint(op), op.location:
                    if collapse is not None:  # the layer's slice of a stacked cache, its leading 1 collapsed
                        shape = ir.RankedTensorType(b.type).shape
                        elt = ir.RankedTensorType(source.type).element_type
                        source = tensor.CollapseShapeOp(ir.RankedTensorType.get(shape, elt), source,
                                                        collapse.attributes["reassociation"]).result
                    # rebuilt, not given a new operand: the op's region takes its operands' element types
                    folded = build(op.operands[0], source, outs=[op.operands[2]])
                op.results[0].replace_all_uses_with(folded)
                op.erase()
                for dead in (collapse, producer(widened)):
                    if dead is not None and not list(dead.results[0].uses):
                        dead.erase()
