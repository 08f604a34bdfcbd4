"""qc-quantize-weights: quantize the weight of every ``qc.linear`` that has a scheme.

    %w = "qc.weight"() {name = @fc} : () -> tensor<NxKxf32>
    %y = "qc.linear"(%x, %w) {qc.scheme = #qc.scheme<"w4a16-g128", "sym">}
becomes
    %q = "qc.weight"() {name = @fc.q}     : () -> tensor<NxKxi8>
    %s = "qc.weight"() {name = @fc.scale} : () -> tensor<NxGxf32>   ([N] per channel)
    %z = "qc.weight"() {name = @fc.zero}  : () -> tensor<NxGxi8>
    %w = "qc.dequantize"(%q, %s, %z) {axis = 0, bits = 4, group_size = 128}
    %y = "qc.linear"(%x, %w) {qc.scheme = ...}

The scheme is the op's ``qc.scheme`` or, on ops without one, the ``scheme``
option.  ``method``: ``rtn`` rounds to nearest; ``gptq`` corrects rounding
error with the input Hessian; ``awq`` searches per-input-channel scales, puts
``W * s`` in the store and multiplies the input by ``1/s`` (entry
``<layer>.awq``).  GPTQ and AWQ read the calibration statistics of the layer.

Schemes with int8 activations (``w8a8``, ``w4a8-g128``) quantize the input at
run time, per row (``activations=dynamic``) or with one scale per tensor from
the calibration absmax (``activations=static``, written as the linear's
``qc.act_scale``); qc-fuse-dequant-gemm carries both into ``qc.qgemm``.
Scheme ``f16`` stores the weight as IEEE half (entry ``<layer>.f16``) and the linear reads it
directly, without ``qc.dequantize``; activations and sums stay f32.
What was done, with the weight's relative error, goes to the report.
"""

from __future__ import annotations

import numpy as np
from torch_mlir import ir

from ..core.errors import QCError
from ..core.quant import Scheme, dequantize, parse_scheme, quantize_awq, quantize_gptq, quantize_rtn
from ..core.quant.awq import output_error
from ..dialects.qc import DequantizeOp, LinearOp, SchemeAttr, WeightOp
from .base import ModulePass, Option, PassState, one_of, ops_of, parse_bool
from .channel_scale import scale_channels
from .matchers import layer_name, stored_weight

METHODS = ("rtn", "gptq", "awq")
ACTIVATIONS = ("dynamic", "static")
ACT_SCALE_ATTR = "qc.act_scale"


def scheme_of(op: ir.Operation) -> Scheme | None:
    if "qc.scheme" not in op.attributes:
        return None
    attr = SchemeAttr(op.attributes["qc.scheme"])
    kind, symmetry = ir.StringAttr(attr.kind).value, ir.StringAttr(attr.symmetry).value
    return parse_scheme(kind + ("-asym" if symmetry == "asym" else ""))


def scheme_attr(scheme: Scheme) -> ir.Attribute:
    return SchemeAttr.get(ir.StringAttr.get(scheme.kind), ir.StringAttr.get("sym" if scheme.symmetric else "asym"))


class QuantizeWeights(ModulePass):
    NAME = "qc-quantize-weights"
    SUMMARY = "Quantize qc.linear weights (RTN, GPTQ or AWQ) into qc.dequantize of stored integers"
    OPTIONS = {"method": Option(one_of(METHODS), "rtn", "rtn | gptq | awq"),
               "activations": Option(one_of(ACTIVATIONS), "dynamic",
                                     "int8 activations: per-row scales at run time, or one calibrated scale"),
               "scheme": Option(str, "", "scheme of linears without a qc.scheme (empty: leave them)"),
               "damp": Option(float, 0.01, "GPTQ damping, a fraction of the Hessian's mean diagonal"),
               "act-order": Option(parse_bool, False, "GPTQ: quantize columns in order of decreasing Hessian diagonal"),
               "panel-width": Option(int, 0, "columns per kernel panel of the target, so that the report's bytes "
                                     "are the stored ones (0: rows as they are)")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        default = parse_scheme(self.options["scheme"]) if self.options["scheme"] else None
        # (weight entry, scheme) -> what quantizing it stored: the linears of a decoder's two entry
        # functions read one weight and take it quantized once.
        self._done: dict[tuple[str, str], dict] = {}
        for op in ops_of(module, LinearOp):
            try:
                scheme = scheme_of(op) or default
            except QCError as err:
                raise QCError(str(err), op.location) from None
            if scheme is None or not scheme.quantized:
                continue
            self._quantize(op, scheme, state)

    def _to_half(self, op: ir.Operation, wop: ir.Operation, layer: str, w: np.ndarray, scheme: Scheme,
                 state: PassState) -> None:
        """f16: the weight is stored as IEEE half (rounded to nearest) and the linear reads it as such."""
        half = w.astype(np.float16)
        entry = state.store.unique_name(f"{layer}.f16")
        state.store[entry] = half
        state.report.setdefault(layer, {}).update(
            scheme=scheme.name, method="cast", shape=list(w.shape), bytes_f32=int(w.nbytes),
            bytes=scheme.weight_bytes(*w.shape, self.options["panel-width"]),
            activations="f32", weight_rel_error=float(np.linalg.norm(w - half.astype(np.float32))
                                                      / max(np.linalg.norm(w), 1e-30)))
        with ir.InsertionPoint(op), op.location:
            new = WeightOp(ir.RankedTensorType.get(list(w.shape), ir.F16Type.get()), ir.FlatSymbolRefAttr.get(entry))
        op.operands[1] = new.result
        op.attributes["qc.scheme"] = scheme_attr(scheme)
        if not list(wop.results[0].uses):
            wop.erase()

    def _quantize(self, op: ir.Operation, scheme: Scheme, state: PassState) -> None:
        found, layer = stored_weight(op.opview.weight), layer_name(op)
        if found is None:
            raise QCError("qc.linear's weight must be a qc.weight to be quantized", op.location)
        wop, name = found
        w = state.store[name]
        n, k = w.shape
        if scheme.half:
            self._to_half(op, wop, layer, w, scheme, state)
            return
        if (name, scheme.name) in self._done:
            self._rewrite(op, wop, scheme, **self._done[name, scheme.name])
            return
        if scheme.group_size and k % scheme.group_size:
            state.report.setdefault(layer, {}).update(
                scheme="f32", note=f"left in f32: K={k} is not a multiple of the group size {scheme.group_size} "
                                   f"of {scheme.name}")
            return
        if scheme.int_activations and k % 4:
            state.report.setdefault(layer, {}).update(
                scheme="f32", note=f"left in f32: K={k} is not a multiple of 4, the integer dot product's step")
            return
        method = self.options["method"]
        stats = state.stats.get(layer)
        if method != "rtn" and (stats is None or stats.hessian is None):
            raise QCError(f"method={method} needs calibration statistics with the input Hessian for layer "
                          f"'{layer}' (compile with calibration data)", op.location)
        static = scheme.int_activations and self.options["activations"] == "static"
        if static and stats is None:
            raise QCError(f"activations=static needs calibration statistics for layer '{layer}' "
                          "(compile with calibration data)", op.location)
        awq_scale = None
        if method == "gptq":
            qw = quantize_gptq(w, stats.hessian, scheme, damp=self.options["damp"], act_order=self.options["act-order"])
        elif method == "awq":
            qw, awq_scale, _ = quantize_awq(w, stats.absmean, stats.hessian, scheme)
        else:
            qw = quantize_rtn(w, scheme)
        w_hat = dequantize(qw) if awq_scale is None else dequantize(qw) / awq_scale
        if method == "gptq" and self.options["act-order"]:
            method += " act-order"
        entry = {"scheme": scheme.name, "method": method, "shape": [n, k],
                 "bytes_f32": int(w.nbytes), "bytes": scheme.weight_bytes(n, k, self.options["panel-width"]),
                 "weight_rel_error": float(np.linalg.norm(w - w_hat) / max(np.linalg.norm(w), 1e-30))}
        if stats is not None and stats.hessian is not None:
            entry["output_rel_error"] = output_error(w, w_hat, stats.hessian) / max(
                output_error(w, np.zeros_like(w), stats.hessian), 1e-30)
        entry["activations"] = self.options["activations"] if scheme.int_activations else "f32"
        state.report.setdefault(layer, {}).update(entry)

        per_channel = scheme.group_size == 0
        scale, zero = (qw.scale[:, 0], qw.zero_point[:, 0]) if per_channel else (qw.scale, qw.zero_point)
        stems = {"q": qw.q, "scale": scale, "zero": zero}
        done = {"names": {}, "bits": qw.bits, "group_size": qw.group_size, "act_scale": None, "factors": None}
        for suffix, array in stems.items():
            done["names"][suffix] = state.store.unique_name(f"{layer}.{suffix}")
            state.store[done["names"][suffix]] = array
        if static:
            absmax = stats.absmax / (awq_scale if awq_scale is not None else 1.0)
            done["act_scale"] = scheme.static_act_scale(absmax)
        if awq_scale is not None:
            done["factors"] = state.store.unique_name(f"{layer}.awq")
            state.store[done["factors"]] = (1.0 / awq_scale).astype(np.float32)
            state.report[layer]["bytes"] += state.store[done["factors"]].nbytes
        self._done[name, scheme.name] = done
        self._rewrite(op, wop, scheme, **done)

    def _rewrite(self, op: ir.Operation, wop: ir.Operation, scheme: Scheme, names: dict[str, str], bits: int,
                 group_size: int, act_scale: float | None, factors: str | None) -> None:
        """The linear reads the stored quantized weight: ``qc.dequantize`` of the entries ``names``."""
        n, k = ir.RankedTensorType(op.opview.weight.type).shape
        grouped = [n, k // group_size] if group_size else [n]
        with ir.InsertionPoint(op), op.location:
            i8, f32 = ir.IntegerType.get_signless(8), ir.F32Type.get()
            q = WeightOp(ir.RankedTensorType.get([n, k], i8), ir.FlatSymbolRefAttr.get(names["q"]))
            s = WeightOp(ir.RankedTensorType.get(grouped, f32), ir.FlatSymbolRefAttr.get(names["scale"]))
            z = WeightOp(ir.RankedTensorType.get(grouped, i8), ir.FlatSymbolRefAttr.get(names["zero"]))
            i64 = ir.IntegerType.get_signless(64)
            deq = DequantizeOp(op.opview.weight.type, q.result, s.result, z.result, ir.IntegerAttr.get(i64, bits),
                               ir.IntegerAttr.get(i64, 0), ir.IntegerAttr.get(i64, group_size))
        op.operands[1] = deq.result
        op.attributes["qc.scheme"] = scheme_attr(scheme)
        if not list(wop.results[0].uses):
            wop.erase()
        if act_scale is not None:
            op.attributes[ACT_SCALE_ATTR] = ir.FloatAttr.get_f32(act_scale)
        if factors is not None:
            op.operands[0] = scale_channels(op.opview.input, factors, op)
