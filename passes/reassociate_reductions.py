"""qc-reassociate-reductions: let LLVM vectorize the float reductions of linalg.generic ops.

In a generic with a reduction iterator, the op that combines the accumulator (the ``outs``
block argument) with a new term gets ``fastmath<reassoc>``:

    ^bb0(%in: f32, %out: f32):
      %s = arith.addf %in, %out : f32
becomes
      %s = arith.addf %in, %out fastmath<reassoc> : f32

Without it LLVM must add the terms in order, one after the other: a 128-wide softmax sum or a
384-wide LayerNorm mean is then a scalar chain of dependent adds (4 cycles each), the slowest
loops between the matmuls.  With it the loop vectorizer keeps partial sums in vector lanes
and adds them at the end; the result differs from the sequential sum by rounding only.
"""

from __future__ import annotations

from torch_mlir import ir

from .base import ModulePass, PassState, walk_ops
from .matchers import iterator_types, num_outputs

COMBINERS = ("arith.addf", "arith.mulf", "arith.maximumf", "arith.minimumf", "arith.maxnumf", "arith.minnumf")


class ReassociateReductions(ModulePass):
    NAME = "qc-reassociate-reductions"
    SUMMARY = "Mark the accumulating op of float linalg.generic reductions fastmath<reassoc>"

    def run(self, module: ir.Operation, state: PassState) -> None:
        flags = ir.Attribute.parse("#arith.fastmath<reassoc>", module.context)
        for op in walk_ops(module, "linalg.generic"):
            if "reduction" not in iterator_types(op):
                continue
            block = op.regions[0].blocks[0]
            accumulators = list(block.arguments)[len(block.arguments) - num_outputs(op):]
            for inner in block.operations:
                if inner.name in COMBINERS and any(v in accumulators for v in inner.operands):
                    inner.attributes["fastmath"] = flags
