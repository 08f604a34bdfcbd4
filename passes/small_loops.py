"""qc-small-loops: leave the short innermost loops of outlined elementwise kernels to LLVM's loop vectorizer.

Runs on the LLVM dialect (after convert-cf-to-llvm), on qc-parallelize's kernels (``@qc_pk_N``).  An innermost
loop of 8 to 64 iterations there runs along a channels-last tensor's channels (a squeeze-excite scale over 16
channels beside a broadcast operand, a residual add over 24 of a 32-channel padded buffer), which qc-collapse-
elementwise cannot merge into a longer loop.  LLVM unrolled such a loop fully and its SLP vectorizer then built the
vectors from scalars with gathers and inserts (MobileNetV3-small on one core: 43 and 27 us of its 1.8 ms).  The
loop's back edge now gets

    llvm.br ^bb3(%next : i64) {loop_annotation = #llvm.loop_annotation<unroll = <disable = true>>}

and the loop vectorizer takes the loop as a whole (the two kernels: under 6 us each).  A loop's trip count is read
from its header, ``llvm.icmp "slt" %iv, %N`` on a constant bound, entered from a constant start; shorter loops
(an image's 3 channels) stay unrolled: kept as loops they ran 3x slower.
"""

from __future__ import annotations

from torch_mlir import ir

from .base import ModulePass, Option, PassState

_BRANCHES = ("llvm.br", "llvm.cond_br")
_LESS_THAN = (2, 6)  # llvm.icmp predicates slt, ult


def _constant(value: ir.Value) -> int | None:
    op = value.owner
    if isinstance(op, ir.Block) or op.name != "llvm.mlir.constant" or \
            not isinstance(op.attributes["value"], ir.IntegerAttr):
        return None
    return ir.IntegerAttr(op.attributes["value"]).value


def _trip_count(header: ir.Block, latch: ir.Block, blocks: list[ir.Block]) -> int | None:
    """Iterations of the loop whose header compares its first argument with a constant bound and is
    entered (from any block but ``latch``) with a constant; None for any other shape."""
    term = list(header.operations)[-1].operation
    if term.name != "llvm.cond_br" or not header.arguments:
        return None
    test = term.operands[0].owner
    if isinstance(test, ir.Block) or test.name != "llvm.icmp" or test.operands[0] != header.arguments[0] or \
            ir.IntegerAttr(test.attributes["predicate"]).value not in _LESS_THAN:
        return None
    bound = _constant(test.operands[1])
    entries = [list(b.operations)[-1].operation for b in blocks if b != latch and len(b.operations)]
    starts = [_constant(t.operands[0]) for t in entries if t.name == "llvm.br" and header in list(t.successors)]
    if bound is None or len(starts) != 1 or starts[0] is None:
        return None
    return bound - starts[0]


class SmallLoops(ModulePass):
    NAME = "qc-small-loops"
    SUMMARY = "Keep LLVM from unrolling the short innermost loops of outlined elementwise kernels (it vectorizes them)"
    OPTIONS = {"prefix": Option(str, "qc_pk_", "kernels: llvm.func names starting with this"),
               "min-trip": Option(int, 8, "fewest iterations of a loop kept rolled"),
               "max-trip": Option(int, 64, "most iterations of a loop kept rolled (LLVM does not unroll longer ones "
                                          "whole)")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        keep = ir.Attribute.parse("#llvm.loop_annotation<unroll = <disable = true>>")
        lo, hi = self.options["min-trip"], self.options["max-trip"]
        for fn in module.regions[0].blocks[0].operations:
            fn = fn.operation
            if fn.name != "llvm.func" or not ir.StringAttr(fn.attributes["sym_name"]).value.startswith(
                    self.options["prefix"]) or not fn.regions[0].blocks:
                continue
            blocks = list(fn.regions[0].blocks)
            order = {block: i for i, block in enumerate(blocks)}
            # block index -> the header index its back edge returns to (scf-to-cf lays a header before its body)
            back = {}
            for i, block in enumerate(blocks):
                term = list(block.operations)[-1].operation if len(block.operations) else None
                if term is not None and term.name in _BRANCHES:
                    heads = [order[s] for s in term.successors if order.get(s, i + 1) <= i]
                    if heads:
                        back[i] = heads[0]
            for latch, head in back.items():
                innermost = not any(head <= other < latch for other in back)
                trips = _trip_count(blocks[head], blocks[latch], blocks) if innermost else None
                if trips is not None and lo <= trips <= hi:
                    list(blocks[latch].operations)[-1].operation.attributes["loop_annotation"] = keep
