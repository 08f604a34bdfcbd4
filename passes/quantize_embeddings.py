"""qc-quantize-embeddings: store embedding tables quantized and dequantize rows inside the gather.

    %t = "qc.weight"() {name = @embed} : () -> tensor<VxDxf32>
    %e = linalg.generic {qc.scheme = #qc.scheme<"w4a16-g32", "sym">} ins(%ids) outs(...) {
      %r = arith.index_cast %id ; %c = linalg.index 1
      %v = tensor.extract %t[%r, %c] : tensor<VxDxf32>
      linalg.yield %v
becomes (int4: two values a byte, the canonical nibble order of ``quant.packing.pack_rows``)
    %q = "qc.weight"() {name = @embed.q}     : () -> tensor<Vx(D/2)xi8>
    %s = "qc.weight"() {name = @embed.scale} : () -> tensor<Vx(D/32)xf32>
    %e = linalg.generic ... {
      %b = tensor.extract %q[%r, (c / 32) * 16 + c % 16] ; %u = (b >> 4 * ((c % 32) / 16)) & 15
      %v = (sitofp(%u) - 8.0) * tensor.extract %s[%r, c / 32]
      linalg.yield %v

Only the rows a call reads are dequantized; no f32 copy of the table exists at run time.  int8
tables (``w8a16``: one scale per row, ``-asym``: and a zero point) store one byte a value; ``f16``
stores IEEE half and widens it.  Rounding is to nearest (a table has no input Hessian for GPTQ or
AWQ).  The weight error goes to the report.
"""

from __future__ import annotations

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith, tensor

from ..core.quant import Scheme, dequantize, quantize_rtn
from ..core.quant.packing import INT4_BLOCK, pack_rows
from ..dialects.qc import LinearOp, WeightOp
from .assign_schemes import check_fits
from .base import ModulePass, PassState
from .matchers import embedding_table, scheme_targets, target_name
from .quantize_weights import scheme_of


class _Body:
    """Index and integer arithmetic inside the gather's body, at the extract it replaces."""

    def __init__(self):
        self.index = ir.IndexType.get()

    def c(self, value: int) -> ir.Value:
        return arith.ConstantOp(self.index, ir.IntegerAttr.get(self.index, value)).result

    def div(self, a: ir.Value, b: int) -> ir.Value:
        return arith.DivUIOp(a, self.c(b)).result

    def rem(self, a: ir.Value, b: int) -> ir.Value:
        return arith.RemUIOp(a, self.c(b)).result

    @staticmethod
    def to_f32(value: ir.Value) -> ir.Value:
        return arith.SIToFPOp(ir.F32Type.get(), value).result


class QuantizeEmbeddings(ModulePass):
    NAME = "qc-quantize-embeddings"
    SUMMARY = "Quantize embedding tables (int8/int4 per row or group, f16) and dequantize rows in the gather"

    def run(self, module: ir.Operation, state: PassState) -> None:
        self._done: dict[tuple[str, str], dict[str, str]] = {}  # (table, scheme) -> entries: quantized once
        for op in scheme_targets(module):
            if isinstance(op.opview, LinearOp):
                continue
            scheme = scheme_of(op)
            if scheme is None or not scheme.quantized:
                continue
            check_fits(op, scheme)
            self._quantize(op, scheme, state)

    def _quantize(self, op: ir.Operation, scheme: Scheme, state: PassState) -> None:
        extract, wop, name = embedding_table(op)
        layer = target_name(op)
        table = state.store[name]
        row, col = extract.opview.indices
        stored = self._done.get((name, scheme.name))
        if stored is None:
            stored = self._done[name, scheme.name] = self._store(table, layer, name, scheme, state)
        weights = {}
        with ir.InsertionPoint(wop), wop.location:
            for suffix, entry in stored.items():
                array = state.store[entry]
                elt = {np.dtype(np.float16): ir.F16Type.get(), np.dtype(np.float32): ir.F32Type.get(),
                       np.dtype(np.int8): ir.IntegerType.get_signless(8)}[array.dtype]
                weights[suffix] = WeightOp(ir.RankedTensorType.get(list(array.shape), elt),
                                           ir.FlatSymbolRefAttr.get(entry)).result
        with ir.InsertionPoint(extract), extract.location:
            b = _Body()
            if scheme.half:
                value = arith.ExtFOp(ir.F32Type.get(), tensor.ExtractOp(weights["f16"], [row, col]).result).result
            else:
                group = b.div(col, scheme.group_size) if scheme.group_size else b.c(0)
                if scheme.storage_bits == 8:
                    q = b.to_f32(tensor.ExtractOp(weights["q"], [row, col]).result)
                else:
                    half = INT4_BLOCK // 2
                    within = b.rem(col, INT4_BLOCK)
                    byte_col = arith.AddIOp(arith.MulIOp(b.div(col, INT4_BLOCK), b.c(half)).result,
                                            b.rem(within, half)).result
                    i8 = ir.IntegerType.get_signless(8)
                    shift = arith.IndexCastOp(i8, arith.MulIOp(b.div(within, half), b.c(4)).result).result
                    byte = tensor.ExtractOp(weights["q"], [row, byte_col]).result
                    fifteen = arith.ConstantOp(i8, ir.IntegerAttr.get(i8, 15)).result
                    nibble = arith.AndIOp(arith.ShRUIOp(byte, shift).result, fifteen).result
                    eight = arith.ConstantOp(ir.F32Type.get(), ir.FloatAttr.get_f32(8.0)).result
                    q = arith.SubFOp(arith.UIToFPOp(ir.F32Type.get(), nibble).result, eight).result
                if "zero" in weights:
                    q = arith.SubFOp(q, b.to_f32(tensor.ExtractOp(weights["zero"], [row, group]).result)).result
                value = arith.MulFOp(q, tensor.ExtractOp(weights["scale"], [row, group]).result).result
        extract.results[0].replace_all_uses_with(value)
        extract.erase()
        if not list(wop.results[0].uses):
            wop.erase()

    @staticmethod
    def _store(table: np.ndarray, layer: str, name: str, scheme: Scheme, state: PassState) -> dict[str, str]:
        """Quantizes ``table`` into new store entries (suffix -> entry) and reports it."""
        entries: dict[str, np.ndarray] = {}
        if scheme.half:
            entries["f16"] = table.astype(np.float16)
            deq = entries["f16"].astype(np.float32)
        else:
            qw = quantize_rtn(table, scheme)
            entries["q"] = pack_rows(qw.q, qw.bits)
            entries["scale"] = qw.scale
            if not scheme.symmetric:
                entries["zero"] = qw.zero_point
            deq = dequantize(qw)
        stored = {}
        for suffix, array in entries.items():
            stored[suffix] = state.store.unique_name(f"{name}.{suffix}")
            state.store[stored[suffix]] = array
        state.report.setdefault(layer, {}).update(
            scheme=scheme.name, method="rtn" if scheme.weight_bits != 16 else "cast", shape=list(table.shape),
            bytes_f32=int(table.nbytes), bytes=int(sum(a.nbytes for a in entries.values())), activations="gather",
            weight_rel_error=float(np.linalg.norm(table - deq) / max(np.linalg.norm(table), 1e-30)))
        return stored
