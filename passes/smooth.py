"""qc-smooth: SmoothQuant — move activation outliers into the weights, exactly.

For the linears sharing an input X (q, k and v share one), with calibration
absmax per input channel:

    s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)        (W_j: column j of every sharing weight)

every sharing weight's column j is multiplied by s_j and X by 1/s_j, folded
into X's producer so that nothing is added to the program:

    %n = x * gamma[c] (+ beta[c])      ->  gamma / s, beta / s     (LayerNorm / RMSNorm affine, any
                                                                    reshapes in between keeping channels last)
    %n = "qc.linear"(%h, %w, %b)       ->  rows of w and b divided by s

The chain from the producer to the linears must be used by nothing else: a
LayerNorm output that also feeds a residual (post-LN BERT) cannot be folded.
Such layers are left alone and the report says why, unless ``fallback=true``,
which multiplies X by 1/s with an explicit elementwise op instead (fused into
X's producer loop by elementwise fusion, but not free).

``alpha=auto`` picks alpha per group from 0, 0.1, .., 1 minimising an estimate
of the W8A8 output error from the statistics: the int8 weight rounding error
under the input Hessian plus uniform activation rounding noise of a per-tensor
step.  The calibration statistics of smoothed layers are rescaled, so later
passes (GPTQ, AWQ, static activation scales) see the smoothed input.  Linears
whose scheme keeps f32 activations (w*a16) are not smoothed.
"""

from __future__ import annotations

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith

from ..core.errors import QCError
from ..core.quant import dequantize, parse_scheme, quantize_rtn
from ..core.quant.awq import row_errors
from ..dialects.qc import LinearOp
from .base import ModulePass, Option, PassState, ops_of, parse_bool
from .channel_scale import scale_channels
from .matchers import LAYER_ATTR, body_ops, indexing_maps, layer_name, producer, stored_weight
from .quantize_weights import scheme_of

ALPHAS = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))
_W8 = parse_scheme("w8a8")


def parse_alpha(text: str) -> float | str:
    """``auto`` or a float in [0, 1]."""
    if text == "auto":
        return text
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(text)
    return value


def smoothing_factors(absmax: np.ndarray, weights: list[np.ndarray], alpha: float) -> np.ndarray:
    """SmoothQuant's s_j (1 where a channel is all zero)."""
    wmax = np.max([np.abs(w).max(axis=0) for w in weights], axis=0)
    s = np.power(np.maximum(absmax, 1e-8), alpha) / np.power(np.maximum(wmax, 1e-8), 1.0 - alpha)
    s = np.where((absmax > 0) & (wmax > 0), s, 1.0)
    return np.clip(s, 1e-4, 1e4).astype(np.float32)


def w8a8_error(weights: list[np.ndarray], stats, s: np.ndarray) -> float:
    """Estimated squared output error of W8A8 after smoothing by ``s`` (sum over the sharing linears)."""
    h = stats.hessian / np.outer(s, s)  # E[(x/s)(x/s)^T] * rows
    step = float((stats.absmax / s).max()) / 127.0
    total = 0.0
    for w in weights:
        ws = w * s
        err = dequantize(quantize_rtn(ws, _W8)).astype(np.float64) - ws
        total += float(row_errors(err, h).sum())
        total += stats.rows * step ** 2 / 12.0 * float((ws.astype(np.float64) ** 2).sum())
    return total


class Smooth(ModulePass):
    NAME = "qc-smooth"
    SUMMARY = "SmoothQuant: scale linear input channels by 1/s, folded into the producer, and weights by s"
    OPTIONS = {"alpha": Option(parse_alpha, 0.5, "migration strength in [0, 1], or auto (searched per layer)"),
               "fallback": Option(parse_bool, False, "where no producer can absorb 1/s, multiply explicitly")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        groups: dict[ir.Value, list[ir.Operation]] = {}
        for op in ops_of(module, LinearOp):
            try:
                scheme = scheme_of(op)
            except QCError as err:
                raise QCError(str(err), op.location) from None
            if scheme is not None and not scheme.int_activations:
                continue
            groups.setdefault(op.input, []).append(op)
        for x, linears in groups.items():
            self._smooth(x, linears, state)

    def _smooth(self, x: ir.Value, linears: list[ir.Operation], state: PassState) -> None:
        names = [layer_name(op) for op in linears]
        stats = next((state.stats[n] for n in names if n in state.stats), None)
        if stats is None:
            raise QCError(f"qc-smooth needs calibration statistics for layer '{names[0]}' "
                          "(compile with calibration data)", linears[0].location)
        found = [stored_weight(op.opview.weight) for op in linears]
        if any(f is None for f in found):
            return self._note(names, state, "not smoothed: a weight is not a stored constant")
        weights = [state.store[name] for _, name in found]
        alpha = self.options["alpha"]
        if alpha == "auto":
            if stats.hessian is None:
                raise QCError(f"alpha=auto needs the input Hessian for layer '{names[0]}'", linears[0].location)
            alpha = min(ALPHAS, key=lambda a: w8a8_error(weights, stats, smoothing_factors(stats.absmax, weights, a)))
        s = smoothing_factors(stats.absmax, weights, alpha)
        why = self._fold(x, linears, s, state)
        if why is not None:
            if not self.options["fallback"]:
                return self._note(names, state, f"not smoothed: {why}")
            factors = state.store.unique_name(f"{names[0]}.smooth")
            state.store[factors] = (1.0 / s).astype(np.float32)
            scaled = scale_channels(x, factors, linears[0])
            for op in linears:
                op.operands[0] = scaled
        for (_, name), op, layer in zip(found, linears, names):
            replace_weight(op, (state.store[name] * s).astype(np.float32), state)
            if layer in state.stats:
                state.stats[layer] = state.stats[layer].scaled(1.0 / s)
            entry = state.report.setdefault(layer, {})
            entry["smooth"] = f"alpha={alpha:g}" + (" (explicit multiply)" if why is not None else "")

    @staticmethod
    def _note(names: list[str], state: PassState, text: str) -> None:
        for name in names:
            state.report.setdefault(name, {})["smooth"] = text

    def _fold(self, x: ir.Value, linears: list[ir.Operation], s: np.ndarray, state: PassState) -> str | None:
        """Divides channel j of ``x`` by s_j inside its producers; None if done, else why it cannot be."""
        if len(list(x.uses)) != len(linears):
            return "its input also feeds other ops (e.g. a residual connection)"
        chain, value = [], x
        while True:
            op = producer(value)
            if op is None:
                return "its input is a function argument"
            if op.name in ("tensor.collapse_shape", "tensor.expand_shape"):
                if ir.RankedTensorType(op.operands[0].type).shape[-1] != ir.RankedTensorType(value.type).shape[-1]:
                    return "a reshape in front of it mixes channels"
                value = op.operands[0]
            elif isinstance(op.opview, LinearOp):
                chain.append(op)
                break
            elif op.name == "linalg.generic" and (step := self._affine_step(op)) is not None:
                chain.append(op)
                if step == "mul":
                    break
                value = op.operands[0]
            else:
                return f"its producer ({op.name}) cannot absorb a per-channel scale"
            if len(list(value.uses)) != 1:
                return "an intermediate value of its producer feeds other ops"
        for op in chain:
            if isinstance(op.opview, LinearOp):
                linear = op.opview
                if stored_weight(linear.weight) is None or (linear.bias is not None and constant_vector(linear.bias, state) is None):
                    return "its producer linear's weight or bias is not a constant"
            elif constant_vector(op.operands[1], state) is None:
                return "a norm scale or bias is not a constant"
        for op in chain:
            self._divide(op, s, state)
        return None

    @staticmethod
    def _affine_step(op: ir.Operation) -> str | None:
        """"mul"/"add" if ``op`` is ``data * v[c]`` / ``data + v[c]`` with v a per-channel vector, else None."""
        if len(op.operands) != 3 or not all("parallel" in str(t) for t in op.attributes["iterator_types"]):
            return None
        maps = indexing_maps(op)
        rank = maps[0].n_dims
        identity = ir.AffineMap.get_identity(rank)
        if maps[0] != identity or maps[2] != identity or \
                maps[1] != ir.AffineMap.get(rank, 0, [ir.AffineExpr.get_dim(rank - 1)]):
            return None
        ops = body_ops(op)
        block = op.regions[0].blocks[0]
        if len(ops) != 2 or ops[0].name not in ("arith.mulf", "arith.addf") or \
                {ops[0].operands[0], ops[0].operands[1]} != {block.arguments[0], block.arguments[1]}:
            return None
        return "mul" if ops[0].name == "arith.mulf" else "add"

    def _divide(self, op: ir.Operation, s: np.ndarray, state: PassState) -> None:
        """Divides the per-channel vector of a norm step, or the rows (and bias) of a linear, by ``s``."""
        if isinstance(op.opview, LinearOp):
            replace_weight(op, (state.store[stored_weight(op.opview.weight)[1]] / s[:, None]).astype(np.float32), state)
        vector = 2 if isinstance(op.opview, LinearOp) else 1
        if len(op.operands) > vector:
            divided = constant_vector(op.operands[vector], state) / s
            t = ir.RankedTensorType(op.operands[vector].type)
            with ir.InsertionPoint(op), op.location:
                op.operands[vector] = arith.ConstantOp(t, ir.DenseElementsAttr.get(
                    divided.astype(np.float32).reshape(t.shape), type=t.element_type)).result


def replace_weight(linear: ir.Operation, array: np.ndarray, state: PassState) -> None:
    """Points ``linear`` at a new store entry holding ``array``; its layer name stays."""
    wop, name = stored_weight(linear.opview.weight)
    linear.attributes[LAYER_ATTR] = ir.StringAttr.get(layer_name(linear))
    new = state.store.unique_name(f"{name}.smoothed")
    state.store[new] = array
    clone = wop.clone(ir.InsertionPoint(linear))
    clone.attributes["name"] = ir.FlatSymbolRefAttr.get(new)
    linear.operands[1] = clone.results[0]
    if not list(wop.results[0].uses):
        wop.erase()


def constant_vector(value: ir.Value, state: PassState) -> np.ndarray | None:
    """The values of a stored weight or an ``arith.constant`` f32 tensor, else None."""
    found = stored_weight(value)
    if found is not None:
        return state.store[found[1]].astype(np.float32)
    src = producer(value)
    if src is None or src.name != "arith.constant" or not isinstance(src.attributes["value"], ir.DenseFPElementsAttr):
        return None
    attr = ir.DenseFPElementsAttr(src.attributes["value"])
    shape = ir.RankedTensorType(value.type).shape
    if attr.is_splat:
        return np.full(shape, ir.FloatAttr(attr.get_splat_value()).value, np.float32)
    return np.array(attr, dtype=np.float32).reshape(shape)
