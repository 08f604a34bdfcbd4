"""The qc dialect: quantization-level ops on tensors.

Defined with ``torch_mlir.dialects.ext`` (IRDL underneath), so the ops print in
MLIR's generic form, e.g. ``"qc.linear"(%x, %w) : (...) -> ...``.  Structural
checks (operand/result kinds) come from IRDL; the shape and quantization
parameter checks below run as the op verifier and report at the op location.
"""


from torch_mlir import ir
from torch_mlir.dialects.ext import Dialect, Operand, Pure, Result

from ..core.quant.scheme import SCHEMES

GROUP_SIZES = (32, 64, 128)
BITS = (4, 8)


class QC(Dialect, name="qc"):
    pass


class SchemeAttr(QC.Attribute, name="scheme"):
    """``#qc.scheme<"w4a16-g128", "sym">``: the precision chosen for a layer."""

    kind: ir.StringAttr
    symmetry: ir.StringAttr


class LayoutAttr(QC.Attribute, name="layout"):
    """``#qc.layout<n, k, width, bits, group, dot, symmetric>`` (i64 each; dot and symmetric 0 or 1):
    how a contraction's weight operand is packed (``compiler.quant.packing.PanelLayout``), set by the
    pass that packs it on the contraction it builds, read by the kernel pass that replaces it."""

    n: ir.IntegerAttr
    k: ir.IntegerAttr
    width: ir.IntegerAttr
    bits: ir.IntegerAttr
    group: ir.IntegerAttr
    dot: ir.IntegerAttr
    symmetric: ir.IntegerAttr


class WeightOp(QC.Operation, name="weight", traits=[Pure]):
    """A tensor read from the weight store entry ``name``."""

    result: Result[ir.RankedTensorType]
    name: ir.FlatSymbolRefAttr


class LinearOp(QC.Operation, name="linear", traits=[Pure]):
    """``y = x @ W^T + b`` with ``W: [N, K]``, ``x: [..., K]``, ``b: [N]``."""

    result: Result[ir.RankedTensorType]
    input: Operand[ir.RankedTensorType]
    weight: Operand[ir.RankedTensorType]
    bias: Operand[ir.RankedTensorType] | None = None


class ObserveOp(QC.Operation, name="observe", traits=[Pure]):
    """Identity; instrumented builds record statistics of ``input`` under ``id``."""

    result: Result[ir.RankedTensorType]
    input: Operand[ir.RankedTensorType]
    id: ir.StringAttr


class QuantizeOp(QC.Operation, name="quantize", traits=[Pure]):
    """``q = clamp(round(x / scale) + zero_point)`` per tensor, channel or group."""

    result: Result[ir.RankedTensorType]
    input: Operand[ir.RankedTensorType]
    scale: Operand[ir.RankedTensorType]
    zero_point: Operand[ir.RankedTensorType]
    bits: ir.IntegerAttr
    axis: ir.IntegerAttr
    group_size: ir.IntegerAttr


class DequantizeOp(QC.Operation, name="dequantize", traits=[Pure]):
    """``x = (q - zero_point) * scale`` per tensor, channel or group."""

    result: Result[ir.RankedTensorType]
    input: Operand[ir.RankedTensorType]
    scale: Operand[ir.RankedTensorType]
    zero_point: Operand[ir.RankedTensorType]
    bits: ir.IntegerAttr
    axis: ir.IntegerAttr
    group_size: ir.IntegerAttr


class QGemmOp(QC.Operation, name="qgemm", traits=[Pure]):
    """``y = x @ dequant(W)^T + b`` on a packed weight, never materialising ``W``.

    ``packed: [N, K * bits / 8] x i8``; ``scale``/``zero_point``: ``[N]`` per
    channel (group_size 0) or ``[N, K / group_size]`` per group.
    ``act_bits = 8`` quantizes ``x`` first, symmetric int8 (``xq = round(x / sx)``
    clamped to +-127): per row with ``sx = max|x_row| / 127`` when ``act_scale``
    is 0 (dynamic), else with ``sx = act_scale`` (static, per tensor); the
    product is then an integer dot product.  ``act_bits = 7``: the same with 63
    for 127.  ``act_bits = 0``: f32 activations.
    """

    result: Result[ir.RankedTensorType]
    input: Operand[ir.RankedTensorType]
    packed: Operand[ir.RankedTensorType]
    scale: Operand[ir.RankedTensorType]
    zero_point: Operand[ir.RankedTensorType]
    bits: ir.IntegerAttr
    group_size: ir.IntegerAttr
    act_bits: ir.IntegerAttr
    act_scale: ir.FloatAttr
    bias: Operand[ir.RankedTensorType] | None = None


ACT_BITS = (0, 7, 8)


# --- verifiers ---------------------------------------------------------------


class VerifyError(Exception):
    pass


def _shape(value: ir.Value) -> list[int]:
    return list(ir.RankedTensorType(value.type).shape)


def _elt(value: ir.Value) -> ir.Type:
    return ir.RankedTensorType(value.type).element_type


def _int(op, name: str) -> int:
    return ir.IntegerAttr(op.attributes[name]).value


def _check_bits_and_group(op, k: int) -> None:
    bits, group = _int(op, "bits"), _int(op, "group_size")
    if bits not in BITS:
        raise VerifyError(f"bits must be one of {list(BITS)}, got {bits}")
    if group not in (0,) + GROUP_SIZES:
        raise VerifyError(f"group_size must be 0 (per channel) or one of {list(GROUP_SIZES)}, got {group}")
    if group and k % group:
        raise VerifyError(f"group_size {group} does not divide the reduction dimension {k}")


def _verify_linear(op) -> None:
    x, w, y = _shape(op.input), _shape(op.weight), _shape(op.result)
    if len(w) != 2:
        raise VerifyError(f"weight must be 2-D [N, K], got rank {len(w)}")
    if not x or x[-1] != w[1]:
        raise VerifyError(f"input reduction dimension {x[-1] if x else None} does not match weight K={w[1]}")
    if op.bias is not None and _shape(op.bias) != [w[0]]:
        raise VerifyError(f"bias must have shape [{w[0]}], got {_shape(op.bias)}")
    if y != x[:-1] + [w[0]]:
        raise VerifyError(f"result shape {y} does not match expected {x[:-1] + [w[0]]}")
    if _elt(op.input) != _elt(op.result) or (_elt(op.weight) != _elt(op.input) and not isinstance(_elt(op.weight),
                                                                                                   ir.F16Type)):
        raise VerifyError("input, weight and result must have the same element type (or an f16 weight)")


def _verify_observe(op) -> None:
    if op.input.type != op.result.type:
        raise VerifyError("result type must equal input type")


def _verify_quant_params(op, data: ir.Value) -> None:
    shape = _shape(data)
    axis, group = _int(op, "axis"), _int(op, "group_size")
    _check_bits_and_group(op, shape[-1] if shape else 1)
    if _shape(op.scale) != _shape(op.zero_point):
        raise VerifyError("scale and zero_point must have the same shape")
    if axis == -1:
        expected = [1]
    elif not 0 <= axis < len(shape):
        raise VerifyError(f"axis {axis} out of range for rank {len(shape)}")
    elif group:
        expected = [shape[axis], shape[-1] // group]
    else:
        expected = [shape[axis]]
    if _shape(op.scale) != expected:
        raise VerifyError(f"scale shape {_shape(op.scale)} does not match expected {expected}")
    if _shape(op.input) != _shape(op.result):
        raise VerifyError("result shape must equal input shape")


def _verify_quantize(op) -> None:
    if not isinstance(_elt(op.result), ir.IntegerType):
        raise VerifyError("result must have an integer element type")
    _verify_quant_params(op, op.input)


def _verify_dequantize(op) -> None:
    if not isinstance(_elt(op.input), ir.IntegerType):
        raise VerifyError("input must have an integer element type")
    _verify_quant_params(op, op.input)


def _verify_qgemm(op) -> None:
    x, p, y = _shape(op.input), _shape(op.packed), _shape(op.result)
    bits, group = _int(op, "bits"), _int(op, "group_size")
    if len(p) != 2:
        raise VerifyError(f"packed weight must be 2-D, got rank {len(p)}")
    k = x[-1] if x else 0
    _check_bits_and_group(op, k)
    n = p[0]
    if p[1] * 8 != k * bits:
        raise VerifyError(f"packed weight row of {p[1]} bytes does not hold K={k} values of {bits} bits")
    expected = [n, k // group] if group else [n]
    if _shape(op.scale) != expected or _shape(op.zero_point) != expected:
        raise VerifyError(f"scale and zero_point must have shape {expected}")
    if op.bias is not None and _shape(op.bias) != [n]:
        raise VerifyError(f"bias must have shape [{n}], got {_shape(op.bias)}")
    if y != x[:-1] + [n]:
        raise VerifyError(f"result shape {y} does not match expected {x[:-1] + [n]}")
    act_bits, act_scale = _int(op, "act_bits"), ir.FloatAttr(op.attributes["act_scale"]).value
    if act_bits not in ACT_BITS:
        raise VerifyError(f"act_bits must be one of {list(ACT_BITS)}, got {act_bits}")
    if act_scale < 0 or (act_scale and not act_bits):
        raise VerifyError(f"act_scale must be 0 (dynamic) or positive with act_bits = 7 or 8, got {act_scale}")


def _verify_scheme(op) -> None:
    scheme = op.attributes["qc.scheme"] if "qc.scheme" in op.attributes else None
    if scheme is not None:
        try:
            kind = ir.StringAttr(SchemeAttr(scheme).kind).value
        except (ValueError, TypeError):
            raise VerifyError(f"'qc.scheme' must be a #qc.scheme attribute, got {scheme}") from None
        if kind not in SCHEMES:
            raise VerifyError(f"unknown scheme '{kind}', expected one of {list(SCHEMES)}")


def _attach(cls, *checks) -> None:
    def verify_invariants(op) -> bool:
        try:
            for check in checks:
                check(op)
        except VerifyError as err:
            op.location.emit_error(f"'{cls.OPERATION_NAME}' op {err}")
            return False
        except (KeyError, IndexError, ValueError, TypeError):
            fields = ", ".join(f.name for f in cls._fields)
            op.location.emit_error(f"'{cls.OPERATION_NAME}' op is malformed; expected fields: {fields}")
            return False
        return True

    cls.verify_invariants = staticmethod(verify_invariants)


_attach(LinearOp, _verify_linear, _verify_scheme)
_attach(ObserveOp, _verify_observe)
_attach(QuantizeOp, _verify_quantize)
_attach(DequantizeOp, _verify_dequantize)
_attach(QGemmOp, _verify_qgemm)
