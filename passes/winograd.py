"""qc-winograd: f32 3x3 stride-1 convolutions (im2col + qc.linear) as Winograd F(m x m, 3 x 3).

qc-conv-to-matmul gives a convolution as a column copy from the channels-last, padded input S and
a ``qc.linear`` over the [N*OH*OW, 9C] columns.  Where the filter stayed f32 (the scheme passes
quantized none of it), the window is 3x3 with unit stride and dilation, and the layer is large
enough, this pass replaces the two by the minimal-filtering form (core/winograd.py): each output
tile of m x m pixels from an (m + 2)^2 input tile, with (m + 2)^2 matrix products over channels in
place of the 9-tap one, 2.25x (m = 2) or 4x (m = 4) fewer multiplications.

    %col = linalg.generic  col[n, oh, ow, kh, j] = S[n, oh + kh, ow * C + j]      (3x3, stride 1)
    %y = "qc.linear"(collapse(%col) : [N*OH*OW, 9C], %w : [F, 9C], %b)
becomes (a = m + 2, T = N * TH * TW tiles, TH = ceil(OH / m))
    %v = linalg.generic {library_call = "qc_winograd_input"}                    V = B^T d B per tile
           ins(S as [N, Hs, Ws, C], %bt : [a, a, a, a]) outs(zeros : [a, a, N, TH, TW, C])
    %u = "qc.weight"() {name = @w.wino2}                                         [a*a, C, F]: G g G^T
    %m = linalg.batch_matmul ins(collapse(%v) : [a*a, T, C], %u) outs(zeros : [a*a, T, F])
    %y = linalg.generic {library_call = "qc_winograd_output"}                   Y = A^T M A per tile
           ins(expand(%m) : [a, a, N, TH, TW, F], %at : [m, m, a, a]) outs(b broadcast : [N, TH, m, TW, m, F])
         -> [N*OH*OW, F]   (tiles past OH / OW sliced off; S padded with zeros for them)

The transforms are plain linalg (the coefficient tables as constants): they run as they are, and
qc-microkernels replaces them by vector kernels that add and subtract per the matrices.  The filter
transform is done here, once, in float64 (a new store entry).  Declined, with the reason in the
report of the layer: quantized filters, other windows, and layers whose products would be too small
to pay for the transforms (fewer than ``min-channels`` input or output channels, ``min-tiles`` tiles).
"""

from __future__ import annotations

import math

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith, linalg, tensor

from ..core import winograd
from ..dialects.qc import LinearOp, WeightOp
from ..core.errors import QCError
from .base import ModulePass, Option, PassState, ops_of
from .builders import f32_const, generic, reassociation, zero_pad
from .matchers import copy_window, is_copy_generic, layer_name, producer

INPUT_TRANSFORM = "qc_winograd_input"
OUTPUT_TRANSFORM = "qc_winograd_output"


class Conv3x3:
    """A 3x3, stride-1 convolution found behind a qc.linear: its channels-last source and shapes."""

    def __init__(self, source: ir.Value, n: int, h: int, w: int, c: int, oh: int, ow: int):
        self.source, self.n, self.h, self.w, self.c, self.oh, self.ow = source, n, h, w, c, oh, ow


def match(linear: LinearOp) -> Conv3x3 | str:
    """The convolution behind ``linear``, or why there is none to rewrite."""
    collapse = producer(linear.input)
    if collapse is None or collapse.name != "tensor.collapse_shape":
        return "its input is not a column matrix"
    col = producer(collapse.operands[0])
    if col is None or not is_copy_generic(col):
        return "its input is not a column copy"
    source = col.operands[0]
    st, ct = ir.RankedTensorType(source.type), ir.RankedTensorType(col.results[0].type)
    if not (st.has_static_shape and ct.has_static_shape):
        return "dynamic shapes"
    groups = [[ir.IntegerAttr(d).value for d in g] for g in ir.ArrayAttr(collapse.attributes["reassociation"])]
    window = copy_window(col, st.shape, ct.shape, groups)
    if window is None or window.offset != 0 or len(window.row_sizes) != 3:
        return "not a convolution window"
    (n, oh, ow), (image, row, c) = window.row_sizes, window.row_strides
    merged = window.k_sizes == (3, 3 * c) and window.k_strides == (row, 1)  # KW x C adjacent (unit stride along W)
    if not (merged or window.k_sizes == (3, 3, c) and window.k_strides == (row, c, 1)):
        return "not a 3x3 window with unit stride and dilation"
    if row % c or image % row or window.elements != n * image:
        return "not a convolution window"
    h, w = image // row, row // c
    if h < oh + 2 or w < ow + 2:
        return "not a convolution window"
    return Conv3x3(source, n, h, w, c, oh, ow)


def _filter(linear: LinearOp, state: PassState) -> np.ndarray | None:
    """The [F, 9C] f32 filter of ``linear``: a store entry or a dense constant."""
    op = producer(linear.weight)
    if op is not None and isinstance(op.opview, WeightOp) and op.opview.name.value in state.store:
        value = state.store[op.opview.name.value]
    elif op is not None and op.name == "arith.constant" and isinstance(op.attributes["value"], ir.DenseElementsAttr):
        value = np.array(op.attributes["value"])
    else:
        return None
    return value if value.dtype == np.float32 else None


def _constant(values: np.ndarray) -> ir.Value:
    t = ir.RankedTensorType.get(list(values.shape), ir.F32Type.get())
    return arith.ConstantOp(t, ir.DenseElementsAttr.get(values, type=t)).result


def _zeros(shape: list[int]) -> ir.Value:
    return linalg.fill(f32_const(0.0), outs=[tensor.empty(shape, ir.F32Type.get())])


def rewrite(linear: LinearOp, conv: Conv3x3, u: ir.Value, m: int) -> ir.Value:
    """The Winograd form of ``linear`` (built before it) with transformed filter ``u`` [a*a, C, F]."""
    f32 = ir.F32Type.get()
    tt = lambda shape: ir.RankedTensorType.get(list(shape), f32)  # noqa: E731
    dim = ir.AffineExpr.get_dim
    a, n, c = m + 2, conv.n, conv.c
    f = ir.RankedTensorType(u.type).shape[2]
    th, tw = -(-conv.oh // m), -(-conv.ow // m)

    # S as [N, H, W, C], padded at the end so that the last tiles' inputs exist
    flat = tensor.collapse_shape(tt([n * conv.h * conv.w * c]), conv.source,
                                 reassociation([list(range(ir.RankedTensorType(conv.source.type).rank))]))
    s = tensor.expand_shape(tt([n, conv.h, conv.w, c]), flat, reassociation([[0, 1, 2, 3]]), [], [n, conv.h, conv.w, c])
    extra = [max(0, m * th + 2 - conv.h), max(0, m * tw + 2 - conv.w)]
    if any(extra):
        s = zero_pad(s, [0, 0, 0, 0], [0, *extra, 0])

    # V[x, y, n, i, j, c] = sum_{p, q} BT[x, p] BT[y, q] S[n, m i + p, m j + q, c]       loops (x, y, n, i, j, c, p, q)
    loops = lambda exprs: ir.AffineMap.get(8, 0, exprs)  # noqa: E731
    x, y, b, i, j, ch, p, q = map(dim, range(8))
    v = generic([s, _constant(winograd.input_coefficients(m))], [_zeros([a, a, n, th, tw, c])],
                [loops([b, i * m + p, j * m + q, ch]), loops([x, y, p, q]), loops([x, y, b, i, j, ch])],
                lambda t: arith.AddFOp(t[2], arith.MulFOp(t[1], t[0]).result).result, kinds="pppppprr")
    v.owner.attributes["library_call"] = ir.StringAttr.get(INPUT_TRANSFORM)
    tiles = n * th * tw
    v2 = tensor.collapse_shape(tt([a * a, tiles, c]), v, reassociation([[0, 1], [2, 3, 4], [5]]))
    mm = linalg.batch_matmul(v2, u, outs=[_zeros([a * a, tiles, f])])
    m6 = tensor.expand_shape(tt([a, a, n, th, tw, f]), mm, reassociation([[0, 1], [2, 3, 4], [5]]), [],
                             [a, a, n, th, tw, f])

    # Y[n, i, r, j, s, f] = b[f] + sum_{x, y} AT[r, x] AT[s, y] M[x, y, n, i, j, f]    loops (n, i, r, j, s, f, x, y)
    loops6 = lambda exprs: ir.AffineMap.get(6, 0, exprs)  # noqa: E731
    out_t = [n, th, m, tw, m, f]
    if linear.bias is not None:
        start = generic([linear.bias], [tensor.empty(out_t, f32)], [loops6([dim(5)]), ir.AffineMap.get_identity(6)],
                        lambda t: t[0])
    else:
        start = _zeros(out_t)
    b, i, r, j, s_, fo, x, y = map(dim, range(8))
    out = generic([m6, _constant(winograd.output_coefficients(m))], [start],
                  [loops([x, y, b, i, j, fo]), loops([r, s_, x, y]), loops([b, i, r, j, s_, fo])],
                  lambda t: arith.AddFOp(t[2], arith.MulFOp(t[1], t[0]).result).result, kinds="pppppprr")
    out.owner.attributes["library_call"] = ir.StringAttr.get(OUTPUT_TRANSFORM)
    out4 = tensor.collapse_shape(tt([n, th * m, tw * m, f]), out, reassociation([[0], [1, 2], [3, 4], [5]]))
    if (th * m, tw * m) != (conv.oh, conv.ow):
        out4 = tensor.extract_slice(tt([n, conv.oh, conv.ow, f]), out4, [], [], [], [0] * 4, [n, conv.oh, conv.ow, f],
                                    [1] * 4)
    return tensor.collapse_shape(tt([n * conv.oh * conv.ow, f]), out4, reassociation([[0, 1, 2], [3]]))


MIN_CHANNELS = 16  # input and output channels below which a conv stays direct
MIN_TILES = 32  # output tiles (rows of each product) below which a conv stays direct


def plan(linear: LinearOp, state: PassState, max_tile: int, min_channels: int = MIN_CHANNELS,
         min_tiles: int = MIN_TILES) -> tuple[Conv3x3, int] | str:
    """(the convolution behind ``linear``, the largest tile up to ``max_tile`` that gives its products
    ``min_tiles`` rows), or why it stays direct."""
    conv = match(linear)
    if isinstance(conv, str):
        return conv
    w = _filter(linear, state)
    if w is None:
        return "its filter is not an f32 constant"
    least = min(conv.c, w.shape[0])
    if least < min_channels:
        return f"{least} channels, fewer than {min_channels}"
    for m in sorted((t for t in winograd.TILES if t <= max_tile), reverse=True):
        if conv.n * math.ceil(conv.oh / m) * math.ceil(conv.ow / m) >= min_tiles:
            return conv, m
    return f"fewer than {min_tiles} tiles of {min(winograd.TILES)}x{min(winograd.TILES)}"


def stored_bytes(linear: LinearOp, state: PassState, max_tile: int) -> int | None:
    """Bytes of ``linear``'s f32 filter as qc-winograd (up to ``max_tile``) stores it, None if it leaves it."""
    found = plan(linear, state, max_tile) if max_tile else None
    if not isinstance(found, tuple):
        return None
    conv, m = found
    f = ir.RankedTensorType(linear.weight.type).shape[0]
    return 4 * (m + 2) ** 2 * conv.c * f


class Winograd(ModulePass):
    NAME = "qc-winograd"
    SUMMARY = "Run f32 3x3 stride-1 convolutions (im2col + qc.linear) as Winograd F(m x m, 3 x 3)"
    OPTIONS = {"tile": Option(int, 4, f"largest output tile m, one of {winograd.TILES}: F(2x2, 3x3) multiplies "
                              "2.25x less than the direct form, F(4x4, 3x3) 4x less with errors about 10x larger; "
                              "each conv takes the largest that gives it min-tiles tiles"),
               "min-channels": Option(int, MIN_CHANNELS, "input and output channels below which a conv stays direct"),
               "min-tiles": Option(int, MIN_TILES, "output tiles (rows of each product) below which a conv stays direct")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        if self.options["tile"] not in winograd.TILES:
            raise QCError(f"tile={self.options['tile']}: Winograd tiles are {', '.join(map(str, winograd.TILES))}")
        transformed: dict[tuple[str, int], str] = {}  # (store entry, tile) -> its transformed entry
        for linear in ops_of(module, LinearOp):
            name = layer_name(linear.operation)
            found = plan(linear, state, self.options["tile"], self.options["min-channels"], self.options["min-tiles"])
            if isinstance(found, str):
                if name and isinstance(match(linear), Conv3x3):  # a 3x3 stride-1 conv left direct: say why
                    state.report.setdefault(name, {})["conv"] = f"direct ({found})"
                continue
            conv, m = found
            w = _filter(linear, state)
            u_value = winograd.filter_transform(w.reshape(w.shape[0], 3, 3, conv.c), m)
            with ir.InsertionPoint(linear), linear.location:
                weight = producer(linear.weight)
                if isinstance(weight.opview, WeightOp):
                    entry = weight.opview.name.value
                    if (entry, m) not in transformed:
                        transformed[entry, m] = state.store.unique_name(f"{entry}.wino{m}")
                        state.store[transformed[entry, m]] = u_value
                    u_t = ir.RankedTensorType.get(list(u_value.shape), ir.F32Type.get())
                    u = WeightOp(u_t, ir.FlatSymbolRefAttr.get(transformed[entry, m])).result
                else:
                    u = _constant(u_value)
                y = rewrite(linear, conv, u, m)
            linear.result.replace_all_uses_with(y)
            linear.operation.erase()
            if name:  # the filter is stored transformed: (m + 2)^2 / 9 times its f32 bytes
                state.report.setdefault(name, {}).update(conv=f"winograd F({m}x{m}, 3x3)", bytes=u_value.nbytes)
