"""Channels-last forms of NC(D)HW tensors, shared by the passes that run convolutions and pooling
channels last (qc-conv-to-matmul, qc-pool-channels-last).

Each move is an elementwise ``linalg.generic``, so that fusion composes it with a neighbour that
moved the other way (the previous convolution's output): the two transposes cancel into one
contiguous copy.  A constant padding of the moved tensor is redone channels last.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import arith, bufferization, linalg, tensor

from .builders import f32_const, generic
from .matchers import constant_float, producer


def static_f32(values) -> bool:
    """Every value is an f32 tensor of static shape (what the channels-last rewrites take)."""
    return all(isinstance(v.type, ir.RankedTensorType) and isinstance(v.type.element_type, ir.F32Type)
               and v.type.has_static_shape for v in values)


def generic_into(result: ir.RankedTensorType, inputs: list[ir.Value], maps: list[ir.AffineMap], body,
                 kinds: str | None = None, init: ir.Value | None = None) -> ir.Value:
    """``builders.generic`` into ``init``, a fresh tensor of type ``result`` by default."""
    init = init if init is not None else tensor.EmptyOp(list(result.shape), result.element_type).result
    return generic(inputs, [init], maps, body, kinds)


def filled(shape: list[int], value: float = 0.0) -> ir.Value:
    """An f32 tensor of ``shape`` filled with ``value``."""
    return linalg.fill(f32_const(value), outs=[tensor.EmptyOp(shape, ir.F32Type.get()).result])


def constant_pad(x: ir.Value) -> tuple[ir.Value, list[int], float] | None:
    """(source, low pads, value) when ``x`` is a static ``tensor.pad`` with a float constant."""
    op = producer(x)
    if op is None or op.name != "tensor.pad" or len(op.operands) != 1:
        return None
    low, high = (list(ir.DenseI64ArrayAttr(op.attributes[k])) for k in ("static_low", "static_high"))
    value = constant_float(op.regions[0].blocks[0].operations[0].operands[0])
    if min(low + high) < 0 or value is None:
        return None
    return op.operands[0], low, value


def channels_last(x: ir.Value) -> ir.Value:
    """[N, C, S...] -> [N, S..., C].  A constant padding of x is redone channels last, into the
    interior of a tensor filled with its value."""
    f32 = ir.F32Type.get()
    rank = ir.RankedTensorType(x.type).rank
    perm = [0, *range(2, rank), 1]
    padded = constant_pad(x)
    src, low, value = padded or (x, [0] * rank, 0.0)
    shape, full = list(ir.RankedTensorType(src.type).shape), list(ir.RankedTensorType(x.type).shape)
    dim = ir.AffineExpr.get_dim
    maps = [ir.AffineMap.get(rank, 0, [dim(perm.index(i)) for i in range(rank)]), ir.AffineMap.get_identity(rank)]
    if not padded:
        return generic_into(ir.RankedTensorType.get([full[p] for p in perm], f32), [x], maps, lambda a: a[0])
    outer = padding([full[p] for p in perm], [low[p] for p in perm], [shape[p] for p in perm], value)
    offsets, sizes, ones = [low[p] for p in perm], [shape[p] for p in perm], [1] * rank
    interior = tensor.extract_slice(ir.RankedTensorType.get(sizes, f32), outer, [], [], [], offsets, sizes, ones)
    moved = generic_into(ir.RankedTensorType.get(sizes, f32), [src], maps, lambda a: a[0], init=interior)
    return tensor.insert_slice(moved, outer, [], [], [], offsets, sizes, ones)


def padding(shape: list[int], low: list[int], interior: list[int], value: float) -> ir.Value:
    """A tensor of ``shape`` whose elements outside the box at ``low`` of size ``interior`` are
    ``value`` (the box is left to be written): one fill per side of each padded dim, so the padding of
    a large image is not a pass over all of it.  Each side spans the dims before it whole and the
    dims after it inside the box, so no element is filled twice."""
    f32 = ir.F32Type.get()
    # an allocation, not a tensor.empty: CSE would make two paddings of one shape one tensor, and the
    # second interior written into it a copy of the whole buffer
    out = bufferization.alloc_tensor(ir.RankedTensorType.get(shape, f32), [])
    for d in range(len(shape)):
        high = shape[d] - low[d] - interior[d]
        for start, size in ((0, low[d]), (low[d] + interior[d], high)):
            if not size:
                continue
            offsets = [0] * d + [start] + low[d + 1:]
            sizes = shape[:d] + [size] + interior[d + 1:]
            side = tensor.extract_slice(ir.RankedTensorType.get(sizes, f32), out, [], [], [], offsets, sizes,
                                        [1] * len(shape))
            side = linalg.fill(f32_const(value), outs=[side])
            out = tensor.insert_slice(side, out, [], [], [], offsets, sizes, [1] * len(shape))
    return out


def channels_first(y: ir.Value, extra: ir.Value | None = None) -> ir.Value:
    """[N, S..., C] -> [N, C, S...] (+ ``extra`` in that layout)."""
    shape = list(ir.RankedTensorType(y.type).shape)
    rank = len(shape)
    dim = ir.AffineExpr.get_dim
    result = ir.RankedTensorType.get([shape[0], shape[-1], *shape[1:-1]], ir.F32Type.get())
    source = ir.AffineMap.get(rank, 0, [dim(0), *[dim(2 + i) for i in range(rank - 2)], dim(1)])
    identity = ir.AffineMap.get_identity(rank)
    if extra is None:
        return generic_into(result, [y], [source, identity], lambda a: a[0])
    return generic_into(result, [y, extra], [source, identity, identity], lambda a: arith.AddFOp(a[0], a[1]).result)


def window_exprs(rank: int, d: int, strides: list[int], dilations: list[int]) -> list[ir.AffineExpr]:
    """``o * s + k * dl`` per spatial dim, for loops (n, o..., k..., ...)."""
    dim = ir.AffineExpr.get_dim
    return [dim(1 + i) * s + dim(1 + d + i) * dl for i, (s, dl) in enumerate(zip(strides, dilations))]


def window_attrs(op: ir.Operation) -> tuple[list[int], list[int]]:
    """(strides, dilations) of a named convolution or pooling op."""
    return ([int(v) for v in ir.DenseIntElementsAttr(op.attributes["strides"])],
            [int(v) for v in ir.DenseIntElementsAttr(op.attributes["dilations"])])
