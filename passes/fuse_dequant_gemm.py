"""qc-fuse-dequant-gemm: a linear on a dequantized weight -> ``qc.qgemm`` on the packed integers.

    %w = "qc.dequantize"(%q, %s, %z) {axis = 0, bits = 4, group_size = 128}
    %y = "qc.linear"(%x, %w [, %b])
becomes
    %p = "qc.weight"() {name = @fc.q.packed} : () -> tensor<Nx(K*bits/8)xi8>
    %y = "qc.qgemm"(%x, %p, %s, %z [, %b]) {bits = 4, group_size = 128}

``act_bits`` is the linear's scheme's activation bits when it quantizes them
(8: w8a8, w4a8, w7a8; 7: w8a7), with ``act_scale`` its ``qc.act_scale`` (static) or 0 (dynamic).
``%p`` is the canonical packing (core/quant/packing.py): no float copy of
the weight is left in the program.  Dequantizations of other shapes (another
axis, or not feeding a linear's weight) are left alone.
"""

from __future__ import annotations

from torch_mlir import ir

from ..core.quant.packing import pack_rows
from ..dialects.qc import DequantizeOp, LinearOp, QGemmOp, WeightOp
from .base import ModulePass, PassState, ops_of
from .matchers import producer, stored_weight
from .quantize_weights import ACT_SCALE_ATTR, scheme_of


class FuseDequantGemm(ModulePass):
    NAME = "qc-fuse-dequant-gemm"
    SUMMARY = "Fuse qc.dequantize of a stored weight into the qc.linear reading it: qc.qgemm on packed integers"

    def run(self, module: ir.Operation, state: PassState) -> None:
        for op in ops_of(module, LinearOp):
            deq = producer(op.weight)
            deq = deq.opview if deq is not None else None
            if not isinstance(deq, DequantizeOp) or deq.axis.value != 0:
                continue
            found = stored_weight(deq.input)
            if found is None:
                continue
            q_op, q_name = found
            bits = deq.bits.value
            packed = f"{q_name}.packed"
            if q_name in state.store and packed not in state.store:
                state.store[packed] = pack_rows(state.store[q_name], bits)
            n, k = ir.RankedTensorType(deq.input.type).shape
            scheme = scheme_of(op)
            act_bits = scheme.activation_bits if scheme is not None and scheme.int_activations else 0
            act_scale = ir.FloatAttr(op.attributes[ACT_SCALE_ATTR]).value if ACT_SCALE_ATTR in op.attributes else 0.0
            with ir.InsertionPoint(op), op.location:
                i64 = ir.IntegerType.get_signless(64)
                p = WeightOp(ir.RankedTensorType.get([n, k * bits // 8], ir.IntegerType.get_signless(8)),
                             ir.FlatSymbolRefAttr.get(packed))
                qgemm = QGemmOp(op.result.type, op.input, p.result, deq.scale, deq.zero_point, deq.bits,
                                deq.group_size, ir.IntegerAttr.get(i64, act_bits), ir.FloatAttr.get_f32(act_scale),
                                bias=op.bias)
            if "qc.scheme" in op.attributes:
                qgemm.operation.attributes["qc.scheme"] = op.attributes["qc.scheme"]
            op.result.replace_all_uses_with(qgemm.result)
            op.erase()
            if not list(deq.result.uses):
                deq.erase()
                if not list(q_op.results[0].uses):
                    q_op.erase()
