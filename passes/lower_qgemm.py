"""qc-lower-qgemm: ``qc.qgemm`` -> a panel contraction on kernel-layout integers.

    %y = "qc.qgemm"(%x, %p, %s, %z [, %b]) {bits = 4, group_size = 128}
becomes a call of a private helper (inlined later), as for qc-lower-linear,
whose contraction reads three repacked store entries (packing.py):

    %wq = "qc.weight"() {name = @fc.q.packed.p32}  : [P, K, 16] i8     (int4: two columns per byte)
    %ws = "qc.weight"() {name = @fc.scale.p32}     : [P, G, 32] f32
    %wo = "qc.weight"() {name = @fc.zero.p32}      : [P, G, 32] f32    (-zero * scale)
    linalg.generic {library_call = "qc_qgemm_panel"}
        acc[..., p, n] += x[..., k] * (u(wq[p, k, n mod 16]) * ws[p, k floordiv 128, n] + wo[p, k floordiv 128, n])

with ``u`` the low nibble for ``n < 16`` and the high one otherwise (int8:
the signed byte itself).  The generic is exact plain linalg, the reference
the micro-kernel (qc-microkernels) must match; it never materialises a float
weight.  Per-channel scales are one group spanning K.  When every zero point is 0
the contraction is ``qc_qgemm_panel_sym`` and the micro-kernel does not stream ``wo``
(``-8 * ws`` for int4, 0 for int8).

With ``act_bits = 8`` the helper first quantizes x (generics: row absmax,
``sx``, ``xq = clamp(roundeven(x / sx), -127, 127)``, per-group sums of xq),
(``act_bits = 7``: 63 for 127, and the contraction says so as ``qc.act_max = 63``),
then contracts integers on dot-product panels (``packing.PanelLayout`` with ``dot``):

    %wq = "qc.weight"() {name = @fc.q.packed.d32} : [P, K/4, 128] i8   (int4: [P, K/8, 128])
    linalg.generic {library_call = "qc_qgemm_dot_panel"}
        acc[.., p, n] += sx[..] * (ws[p, g, n] * (xq[.., k] * u(wq[p, k floordiv 4, 4n + k mod 4]))
                                   + (k mod GS == 0 ? wo[p, g, n] * xsum[.., g] : 0))

``u`` unsigned (int8 + 128, or the int4 nibble), ``g = k floordiv GS``; the
offset ``wo = -(zero + 128 or 8) * ws`` meets the group sum once per group,
the form an unsigned x signed byte dot product (``vpdpbusd``) computes.  When every stored int8
weight lies in [-64, 63] (``w7a8``: 7-bit weights) the contraction says so as ``qc.weight_bits = 7``:
vpmaddubsw's pairs of ``u - 64`` (within [0, 127]) times int8 x then fit int16 as they are.  When every zero point
is 0 (symmetric schemes) the contraction is ``qc_qgemm_dot_panel_sym``: the body and the
micro-kernel compute ``wo = -(128 or 8) * ws`` instead of reading it (6 % fewer bytes streamed for
int4 g128 decode), so no offsets are stored: the scale panels fill the offset operand.

With ``split-activations`` (``always``, or ``gemv`` for one-row contractions) an
f32-activation qgemm with K >= 256 takes the dot path too: each row of x becomes three int8 rows
(``split_rows``: ``x = s0 q0 + s1 q1 + s2 q2 + e``, ``|e| <= 6.1e-8 max |x_row|``; against int8 weights
with ``int8-piece-bits=7`` the pieces are within +-63, ``|e| <= 5.0e-7 max |x_row|``), contracted on dot
panels into [.., 3, P, 32], then summed into the bias:

    %xq = linalg.generic ins(%x, %s0) -> tensor<Mx3xKxi8>    q_p = int8(r_p / s_p), r_{p+1} = fma(-q_p, s_p, r_p)
    %pp = linalg.generic {library_call = "qc_qgemm_dot_panel"} ins(%xq, %sp, %xsum, ...) -> tensor<Mx3xPx32xf32>
    %y  = linalg.generic ins(%pp) outs(%bias)                y[m, p, n] += pp[m, piece, p, n]

With ``f32-cells`` (GPU targets: qc-gpu-linear's kernels read a warp's 32 columns of one cell row as
one 128-byte line) f32-activation qgemms contract over the dot panels too, library call
``qc_qgemm_cell_panel``: ``acc[.., p, n] += x[.., k] * (u(wq[p, k floordiv q, 4n + k mod 4]) * ws + wo)``.

When x is qc-conv-to-matmul's im2col of an image, the helper takes the image and never writes the
f32 columns (9x the image for a 3x3 conv, written once and read twice): each row's maximum pools
the pixels' maxima over its window, and xq is quantized through the im2col's map:

    %col = linalg.generic col[n, oh, ow, kh, j] = img[n, oh + kh, ow * C + j]      (f32)
    %y = "qc.qgemm"(collapse(%col), ...) {act_bits = 8}
becomes
    m[n, h, w]       = max_c |img[n, h, w * C + c]|
    amax[n, oh, ow]  = max_{kh, kw} m[n, oh + kh, ow + kw]
    xq[n, oh, ow, kh, j] = clamp(roundeven(img[n, oh + kh, ow * C + j] / sx[n, oh, ow]))   (int8)

the same bits as quantizing the copied rows.
"""

from __future__ import annotations

import zlib
from typing import NamedTuple

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith, func, linalg, math, tensor

from ..core.errors import QCError
from ..core.quant.packing import PanelLayout, unpack_rows, unsigned_offset
from ..core.quant.scheme import signed_max
from ..dialects.qc import QGemmOp, WeightOp
from .base import ModulePass, Option, PassState, WeightReaders, one_of, ops_of, parse_bool
from .builders import f32_const, generic, reassociation
from .lower_linear import Indexed, floordiv, panel_helper, weight_name
from .matchers import (ACT_MAX_ATTR, WEIGHT_BITS_ATTR, indexing_maps, is_copy_generic, linear_terms, producer,
                       stored_weight)

QGEMM_PANEL = "qc_qgemm_panel"
QGEMM_PANEL_SYM = "qc_qgemm_panel_sym"  # the same, all zero points 0: the kernel derives wo from ws
QGEMM_DOT_PANEL = "qc_qgemm_dot_panel"
QGEMM_DOT_PANEL_SYM = "qc_qgemm_dot_panel_sym"  # the same, all zero points 0: the kernel derives wo from ws
QGEMM_CELL_PANEL = "qc_qgemm_cell_panel"  # f32 activations on dot panels (the GPU kernels' layout)
QGEMM_CELL_PANEL_SYM = "qc_qgemm_cell_panel_sym"


def _index(value: int) -> ir.Value:
    return arith.constant(ir.IndexType.get(), value)


def _i8(value: int) -> ir.Value:
    return arith.constant(ir.IntegerType.get_signless(8), value)


def _offset(layout: PanelLayout, scale: ir.Value, stored: ir.Value) -> ir.Value:
    """The group offset: as stored, or for symmetric weights ``-shift * scale`` computed as the
    micro-kernels do (the offset operand is then the scale, never read)."""
    if not layout.symmetric:
        return stored
    return arith.mulf(scale, f32_const(-float(unsigned_offset(layout.bits, layout.dot))))


def _nibble(byte: ir.Value, high: ir.Value) -> ir.Value:
    """The high (``high`` true) or low 4 bits of ``byte``."""
    shift = arith.select(high, _i8(4), _i8(0))
    return arith.andi(arith.shrui(byte, shift), _i8(15))


def _weights(layout: PanelLayout, column) -> list:
    """The packed weight (its column indexing from ``column``), the scale and the offset panels."""
    i8, f32 = ir.IntegerType.get_signless(8), ir.F32Type.get()
    group = lambda d: [d.p, floordiv(d.k, layout.group), d.n]  # noqa: E731
    return [(ir.RankedTensorType.get(layout.weight_shape, i8), column),
            (ir.RankedTensorType.get(layout.scale_shape, f32), group),
            (ir.RankedTensorType.get(layout.scale_shape, f32), group)]


def qgemm_helper(fn: str, xshape: list[int], layout: PanelLayout, has_bias: bool) -> None:
    """The helper of an f32-activation qgemm: ``acc += x * (u(w) * ws + wo)``."""
    bits, width = layout.bits, layout.width
    f32 = ir.F32Type.get()

    def body(args: list[ir.Value]) -> ir.Value:
        a, byte, scale, offset, acc = args
        if bits == 4:
            high = arith.cmpi(arith.CmpIPredicate.uge, linalg.IndexOp(len(xshape)).result, _index(width // 2))
            value = arith.uitofp(f32, _nibble(byte, high))
        else:
            value = arith.sitofp(f32, byte)
        wo = _offset(layout, scale, offset)
        weight = arith.addf(arith.mulf(value, scale), wo)
        return arith.addf(acc, arith.mulf(a, weight))

    column = (lambda d: [d.p, d.k, d.n % (width // 2)]) if bits == 4 else (lambda d: [d.p, d.k, d.n])
    panel_helper(fn, xshape, layout, has_bias, _weights(layout, column), body,
                 QGEMM_PANEL_SYM if layout.symmetric else QGEMM_PANEL)


def qgemm_cell_helper(fn: str, xshape: list[int], layout: PanelLayout, has_bias: bool) -> None:
    """The helper of an f32-activation qgemm on dot panels (``f32-cells``): ``acc += x * (u(w) * ws + wo)``
    with ``u`` read from k's 4-byte cell, as qgemm_dot_helper's."""
    bits, per = layout.bits, 32 // layout.bits
    k_dim = len(xshape) + 1
    f32, i32 = ir.F32Type.get(), ir.IntegerType.get_signless(32)

    def body(args: list[ir.Value]) -> ir.Value:
        a, byte, scale, offset, acc = args
        if bits == 4:
            byte = _nibble(byte, arith.cmpi(arith.CmpIPredicate.uge, arith.remui(linalg.IndexOp(k_dim).result,
                                                                                   _index(8)), _index(4)))
        weight = arith.addf(arith.mulf(arith.uitofp(f32, arith.extui(i32, byte)), scale), _offset(layout, scale, offset))
        return arith.addf(acc, arith.mulf(a, weight))

    column = lambda d: [d.p, floordiv(d.k, per), d.n * 4 + d.k % 4]  # noqa: E731
    panel_helper(fn, xshape, layout, has_bias, _weights(layout, column), body,
                 QGEMM_CELL_PANEL_SYM if layout.symmetric else QGEMM_CELL_PANEL)


def f32_bits(value: float) -> str:
    """The f32 nearest ``value`` as 8 hex digits (helper names of static activation scales)."""
    return f"{int(np.float32(value).view(np.uint32)):08X}"


class Gather(NamedTuple):
    """x [M, K] as ``collapse(col)`` by ``groups`` (rows, k), ``col[i...] = source[map(i...)]`` of
    ``shape``: qc-conv-to-matmul's im2col."""

    map: ir.AffineMap
    shape: list[int]
    groups: list[list[int]]


def im2col_of(x: ir.Value) -> tuple[ir.Value, Gather] | None:
    """(source, gather) when x is the collapse of a copy generic whose innermost dim runs along its
    source's last and nowhere else (a channels-last im2col; a transpose's strided reads would not
    pay), else None."""
    collapse = producer(x)
    if collapse is None or collapse.name != "tensor.collapse_shape":
        return None
    copy = producer(collapse.operands[0])
    if copy is None or not is_copy_generic(copy):
        return None
    src_map, out_map = indexing_maps(copy)
    dims = src_map.n_dims
    groups = [[ir.IntegerAttr(d).value for d in g] for g in ir.ArrayAttr(collapse.attributes["reassociation"])]
    terms = [linear_terms(e, dims) for e in src_map.results]
    if len(groups) != 2 or out_map != ir.AffineMap.get_identity(dims) or None in terms:
        return None
    if terms[-1][0][-1] != 1 or any(t[0][-1] for t in terms[:-1]):
        return None
    source = copy.operands[0]
    return source, Gather(src_map, list(ir.RankedTensorType(collapse.operands[0].type).shape), groups)


def window_absmax(source: ir.Value, gather: Gather, zeros: ir.Value) -> ir.Value:
    """max |x| over each row of x = collapse(gather(source)) into ``zeros``, as the maxima of
    source's pixels (runs of C along its last dim) pooled over each row's window: each element of
    source is read once rather than once per window holding it.

        m[..., p]  = max_c |source[..., p * C + c]|
        amax[row]  = max over the window's (kh, kw) of m[..., map(row, kh, kw)]
    """
    shape, rows, n = gather.shape, len(gather.groups[0]), len(gather.shape)
    *_, (last, offset) = [linear_terms(e, n) for e in gather.map.results]
    src = list(ir.RankedTensorType(source.type).shape)
    c = int(np.gcd.reduce([src[-1], shape[-1], offset, *last[:-1]]))
    f32 = ir.F32Type.get()
    r = len(src)
    split = tensor.expand_shape(ir.RankedTensorType.get(src[:-1] + [src[-1] // c, c], f32), source,
                                reassociation([[i] for i in range(r - 1)] + [[r - 1, r]]), [],
                                src[:-1] + [src[-1] // c, c])
    pixels = linalg.fill(f32_const(0.0), outs=[tensor.empty(src[:-1] + [src[-1] // c], f32)])
    sdims = [ir.AffineDimExpr.get(i) for i in range(r + 1)]
    m = generic([split], [pixels], [ir.AffineMap.get_identity(r + 1), ir.AffineMap.get(r + 1, 0, sdims[:-1])],
                lambda a: arith.maximumf(a[1], math.absf(a[0])), kinds="p" * r + "r")
    # the pooled domain is the gather's with its last dim counting pixels (kw) instead of floats
    dims = [ir.AffineDimExpr.get(i) for i in range(n)]
    pixel = ir.AffineConstantExpr.get(offset // c) + dims[-1]
    for d, coeff in zip(dims[:-1], last[:-1]):
        if coeff:
            pixel = pixel + d * (coeff // c)
    read = ir.AffineMap.get(n, 0, [*gather.map.results[:-1], pixel])
    # the maps alone do not give the window dims' extents: an operand of their shape (never read)
    # does, as in linalg's pooling ops
    window = tensor.empty(shape[rows:-1] + [shape[-1] // c], f32)
    return generic([m, window], [zeros], [read, ir.AffineMap.get(n, 0, dims[rows:]), ir.AffineMap.get(n, 0, dims[:rows])],
                   lambda a: arith.maximumf(a[-1], a[0]), kinds="p" * rows + "r" * (n - rows))


def _row_absmax(x: ir.Value, shape: list[int], rows: int, read: ir.AffineMap) -> ir.Value:
    """max |x| over each row (the first ``rows`` dims of ``shape``, x read through ``read``)."""
    dims = [ir.AffineDimExpr.get(i) for i in range(len(shape))]
    zeros = linalg.fill(f32_const(0.0), outs=[tensor.empty(shape[:rows], ir.F32Type.get())])
    return generic([x], [zeros], [read, ir.AffineMap.get(len(shape), 0, dims[:rows])],
                   lambda a: arith.maximumf(a[1], math.absf(a[0])), kinds="p" * rows + "r")


def _int8(v: ir.Value, sx: ir.Value, bound: int) -> ir.Value:
    """``roundeven(v / sx)`` clamped to [-bound, bound] (0 where sx is 0), as f32."""
    zero = f32_const(0.0)
    inv = arith.select(arith.cmpf(arith.CmpFPredicate.OGT, sx, zero), arith.divf(f32_const(1.0), sx), zero)
    rounded = math.roundeven(arith.mulf(v, inv))
    return arith.minimumf(arith.maximumf(rounded, f32_const(-float(bound))), f32_const(float(bound)))


def _group_sums(xq: ir.Value, shape: list[int], group: int) -> ir.Value:
    """The int32 sums of xq [..., K] over each group of k: [..., K / group]."""
    *lead, k = shape
    r = len(lead)
    i8, i32 = ir.IntegerType.get_signless(8), ir.IntegerType.get_signless(32)
    xq3 = tensor.expand_shape(ir.RankedTensorType.get(lead + [k // group, group], i8), xq,
                              reassociation([[i] for i in range(r)] + [[r, r + 1]]), [], lead + [k // group, group])
    gdims = [ir.AffineDimExpr.get(i) for i in range(r + 2)]
    zeros = linalg.fill(arith.constant(i32, 0), outs=[tensor.empty(lead + [k // group], i32)])
    return generic([xq3], [zeros], [ir.AffineMap.get(r + 2, 0, gdims), ir.AffineMap.get(r + 2, 0, gdims[:-1])],
                   lambda a: arith.addi(a[1], arith.extsi(i32, a[0])), kinds="p" * (r + 1) + "r")


def quantize_rows(x: ir.Value, group: int, act_scale: float, act_max: int,
                  gather: Gather | None = None) -> list[Indexed]:
    """From x [..., K]: xq (int8 within +-act_max), its scale per row and the int32 group sums of xq, as the
    contraction's inputs indexed (lead, k), (lead) and (lead, k floordiv group).  With ``gather``,
    ``x`` is what x [M, K] is gathered from: the row maxima and xq are read through the gather,
    so the f32 columns are never written (each row's window is read from ``x`` in cache)."""
    if gather is None:
        shape = list(ir.RankedTensorType(x.type).shape)
        rows = len(shape) - 1
        read = ir.AffineMap.get_identity(len(shape))
    else:
        shape, rows, read = gather.shape, len(gather.groups[0]), gather.map
    f32, i8 = ir.F32Type.get(), ir.IntegerType.get_signless(8)
    dims = [ir.AffineDimExpr.get(i) for i in range(len(shape))]
    full, by_row = ir.AffineMap.get_identity(len(shape)), ir.AffineMap.get(len(shape), 0, dims[:rows])
    empty_rows = tensor.empty(shape[:rows], f32)
    if act_scale:
        scale = linalg.fill(f32_const(act_scale), outs=[empty_rows])
    else:
        if gather is None:
            amax = _row_absmax(x, shape, rows, read)
        else:
            amax = window_absmax(x, gather, linalg.fill(f32_const(0.0), outs=[empty_rows]))
        same = ir.AffineMap.get_identity(rows)
        scale = generic([amax], [empty_rows], [same, same], lambda a: arith.divf(a[0], f32_const(float(act_max))))
    xq = generic([x, scale], [tensor.empty(shape, i8)], [read, by_row, full],
                 lambda a: arith.fptosi(i8, _int8(*a[:2], act_max)))
    if gather is not None:
        lead, k = [int(np.prod([shape[i] for i in g])) for g in gather.groups]
        xq = tensor.collapse_shape(ir.RankedTensorType.get([lead, k], i8), xq, reassociation(gather.groups))
        scale = tensor.collapse_shape(ir.RankedTensorType.get([lead], f32), scale, reassociation([gather.groups[0]]))
        shape = [lead, k]
    return [(xq, lambda d: [*d.lead, d.k]), (scale, lambda d: list(d.lead)),
            (_group_sums(xq, shape, group), lambda d: [*d.lead, floordiv(d.k, group)])]


# An f32 activation as int8 pieces: x = sum_p s_p q_p + e, s_0 = max |x| / L per row (L = 127, or 63 for 7-bit
# pieces) and each next scale 1/(2 L) of the last (the residual after a rounding is at most half a step: L steps
# of the next), so |e| <= s_2 / 2 = max |x| / (2 L (2 L)^2): 6.1e-8 max |x| (about f32's own rounding of the
# maximum) for 8-bit pieces, 5.0e-7 for 7-bit ones.
PIECES = 3
# When f32 activations are split (qc-lower-qgemm's split-activations): gemv where only vpmaddubsw multiplies
# bytes (one-row contractions: against int4 a win over unpacking to f32, a loss for more rows; against int8
# with 7-bit pieces, whose unsigned cells then need no sign trick: a LLaMA-7B 4096x11008 GEMV on AVX2 0.94 ->
# 0.83 ms, where 8-bit pieces took 1.07), always where vpdpbusd does (one per 64).
SPLIT_MODES = ("never", "gemv", "always")
# Shorter rows stay f32: splitting them and summing the pieces costs about what their products save
# (VNNI, 2 threads: 1x64x64 0.6 -> 0.8 us, 16x64x172 3.7 -> 5.4 us; 1x256x256 1.9 -> 1.4 us), and their
# dot kernels double the LLVM time of a model made of them (stories260K: 3.5 -> 8 s).
SPLIT_MIN_K = 256


def _piece_scales(s0: ir.Value, bound: int) -> list[ir.Value]:
    """s_0 .. s_{PIECES-1} from s_0: the same ops wherever the scales are needed, so the same bits."""
    scales = [s0]
    for _ in range(PIECES - 1):
        scales.append(arith.divf(scales[-1], f32_const(2.0 * bound)))
    return scales


def split_rows(x: ir.Value, group: int, bound: int) -> list[Indexed]:
    """From x [..., K] f32: its PIECES int8 pieces (within +-bound) per row [..., PIECES, K], their scales
    [..., PIECES] and the int32 group sums of each piece, indexed as ``quantize_rows``'s with the
    piece as the last lead dim.  Piece p is ``q_p = int8(r_p / s_p)`` with ``r_0 = x`` and
    ``r_{p+1} = fma(-q_p, s_p, r_p)``."""
    shape = list(ir.RankedTensorType(x.type).shape)
    *lead, k = shape
    r = len(lead)
    f32, i8 = ir.F32Type.get(), ir.IntegerType.get_signless(8)
    s0 = generic([_row_absmax(x, shape, r, ir.AffineMap.get_identity(r + 1))], [tensor.empty(lead, f32)],
                 [ir.AffineMap.get_identity(r)] * 2, lambda a: arith.divf(a[0], f32_const(float(bound))))
    dims = [ir.AffineDimExpr.get(i) for i in range(r + 2)]  # (lead, piece, k)
    loops = lambda exprs: ir.AffineMap.get(r + 2, 0, exprs)  # noqa: E731

    def by_piece(values: list[ir.Value]) -> ir.Value:
        piece = linalg.IndexOp(r).result
        chosen = values[-1]
        for p in range(PIECES - 2, -1, -1):
            chosen = arith.select(arith.cmpi(arith.CmpIPredicate.eq, piece, _index(p)), values[p], chosen)
        return chosen

    scale = generic([s0], [tensor.empty(lead + [PIECES], f32)],
                    [ir.AffineMap.get(r + 1, 0, dims[:r]), ir.AffineMap.get_identity(r + 1)],
                    lambda a: by_piece(_piece_scales(a[0], bound)))

    def pieces(a: list[ir.Value]) -> ir.Value:
        v, s0 = a[:2]
        qs = []
        for p, sp in enumerate(_piece_scales(s0, bound)):
            qs.append(_int8(v, sp, bound))
            if p < PIECES - 1:
                v = math.fma(arith.negf(qs[-1]), sp, v)
        return arith.fptosi(i8, by_piece(qs))

    xq = generic([x, s0], [tensor.empty(lead + [PIECES, k], i8)],
                 [loops(dims[:r] + dims[-1:]), loops(dims[:r]), loops(dims)], pieces, kinds="p" * (r + 2))
    return [(xq, lambda d: [*d.lead, d.k]), (scale, lambda d: list(d.lead)),
            (_group_sums(xq, lead + [PIECES, k], group), lambda d: [*d.lead, floordiv(d.k, group)])]


def seven_bit(q: np.ndarray) -> bool:
    """Whether stored int8 weights ``q`` all lie in [-64, 63] (7-bit integers)."""
    return q.size > 0 and int(q.min()) >= -64 and int(q.max()) <= 63


def qgemm_dot_helper(fn: str, xshape: list[int], layout: PanelLayout, act_scale: float, act_max: int,
                     has_bias: bool, gather: tuple[ir.RankedTensorType, Gather] | None = None, pieces: bool = False,
                     seven: bool = False) -> None:
    """The helper of an int8-activation qgemm:
    ``acc += sx * (ws * xq * u(w) + (k mod GS == 0 ? wo * xsum : 0))``; with ``gather`` (the
    source's type and how x is gathered from it) it takes the source instead of x; with ``pieces``
    x stays f32: the same contraction runs over its int8 pieces (``split_rows``), summed after; ``seven``:
    the int8 weights are 7-bit (the contraction says so for the kernels)."""
    if pieces:
        *lead, k = xshape
        source, xshape = ir.RankedTensorType.get(xshape, ir.F32Type.get()), [*lead, PIECES, k]
    bits, group, per = layout.bits, layout.group, 32 // layout.bits
    k_dim = len(xshape) + 1
    f32, i32 = ir.F32Type.get(), ir.IntegerType.get_signless(32)

    def body(args: list[ir.Value]) -> ir.Value:
        a, sx, xsum, byte, scale, offset, acc = args
        kk = linalg.IndexOp(k_dim).result
        if bits == 4:
            high = arith.cmpi(arith.CmpIPredicate.uge, arith.remui(kk, _index(8)), _index(4))
            byte = _nibble(byte, high)
        wo = _offset(layout, scale, offset)
        unsigned = arith.extui(i32, byte)
        product = arith.sitofp(f32, arith.muli(arith.extsi(i32, a), unsigned))
        term = arith.mulf(product, scale)
        first = arith.cmpi(arith.CmpIPredicate.eq, arith.remui(kk, _index(group)), _index(0))
        correction = arith.select(first, arith.mulf(wo, arith.sitofp(f32, xsum)), f32_const(0.0))
        return arith.addf(acc, arith.mulf(sx, arith.addf(term, correction)))

    column = lambda d: [d.p, floordiv(d.k, per), d.n * 4 + d.k % 4]  # noqa: E731
    if pieces:
        prelude = lambda x: split_rows(x, group, act_max)  # noqa: E731
    else:
        prelude = lambda x: quantize_rows(x, group, act_scale, act_max, gather and gather[1])  # noqa: E731
        source = gather and gather[0]
    i64 = ir.IntegerType.get_signless(64)
    attrs = {ACT_MAX_ATTR: ir.IntegerAttr.get(i64, act_max)} if act_max < 127 else {}
    if seven:
        attrs[WEIGHT_BITS_ATTR] = ir.IntegerAttr.get(i64, 7)
    panel_helper(fn, xshape, layout, has_bias, _weights(layout, column), body,
                 QGEMM_DOT_PANEL_SYM if layout.symmetric else QGEMM_DOT_PANEL, prelude, source, pieces, attrs)


def packed_name(op: QGemmOp) -> str | None:
    found = stored_weight(op.packed)
    return found[1] if found else None


class LowerQGemm(ModulePass):
    NAME = "qc-lower-qgemm"
    SUMMARY = "Lower qc.qgemm to a panel contraction on kernel-layout packed integers (linalg.generic)"
    OPTIONS = {"panel-width": Option(int, 16, "output channels per weight panel (the kernel's vector width x 2)"),
               "split-activations": Option(one_of(SPLIT_MODES), "never", "contract f32 activations as int8 pieces "
                                           "on dot panels: never | gemv (one row) | always"),
               "int8-piece-bits": Option(int, 8, "bits of each piece of an activation split against int8 weights: "
                                         "8 (+-127) or 7 (+-63: vpmaddubsw's pairs of unsigned int8 cells exact "
                                         "without the sign trick); against int4 weights always 8"),
               "f32-cells": Option(parse_bool, False, "contract f32 activations on dot panels too (the GPU kernels' "
                                   "layout: each 4-byte cell holds 4 or 8 consecutive k of one column)")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        width = self.options["panel-width"]
        if width < 2 or width % 2:
            raise QCError(f"panel-width must be a positive even number, got {width}")
        if self.options["int8-piece-bits"] not in (7, 8):
            raise QCError(f"int8-piece-bits must be 7 or 8, got {self.options['int8-piece-bits']}")
        body = module.regions[0].blocks[0]
        helpers: set[str] = set()
        readers = WeightReaders(module, state)
        for op in readers.grouped(ops_of(module, QGemmOp), packed_name):
            x = op.input
            xt = ir.RankedTensorType(x.type)
            if not isinstance(xt.element_type, ir.F32Type):
                raise QCError(f"qc.qgemm is lowered for f32 activations only, got {xt.element_type}", op.location)
            bits = op.bits.value
            act_scale = op.act_scale.value
            k = xt.shape[-1]
            group = op.group_size.value or k
            mode = self.options["split-activations"]
            act_bits = op.act_bits.value
            piece_bits = self.options["int8-piece-bits"] if bits == 8 else 8
            act_max = signed_max(act_bits or piece_bits)
            one_row = np.prod(xt.shape[:-1]) == 1
            pieces = (not act_bits and k % (32 // bits) == 0 and k >= SPLIT_MIN_K
                      and (mode == "always" or mode == "gemv" and one_row))
            cells = self.options["f32-cells"] and not act_bits and k % (32 // bits) == 0
            dot = bool(act_bits) or pieces or cells
            if dot and k % (32 // bits):
                raise QCError(f"int8 activations need K a multiple of {32 // bits}, got {k}", op.location)
            ops_names = [weight_name(v, f"qc.qgemm's {what}", op.location)
                         for v, what in ((op.packed, "packed weight"), (op.scale, "scale"), (op.zero_point, "zero point"))]
            n = ir.RankedTensorType(op.packed.type).shape[0]
            has_bias = op.bias is not None
            shape = "x".join(map(str, xt.shape))
            bias = "_bias" if has_bias else ""
            act = (f"_a{piece_bits}x{PIECES}" if pieces else "_f32" if cells
                   else f"_a{act_bits}s{f32_bits(act_scale)}" if act_scale else f"_a{act_bits}") if dot else ""
            (_, pname), (_, sname), (_, zname) = ops_names
            symmetric = zname in state.store and not np.any(state.store[zname])
            seven = dot and bits == 8 and pname in state.store and seven_bit(state.store[pname])
            layout = PanelLayout(n, k, width, bits, group, dot, symmetric)
            # int8 activations of an im2col are quantized from the im2col's source
            gathered = im2col_of(x) if dot and not pieces and not cells else None
            source = x if gathered is None else gathered[0]
            if gathered is not None:
                st = ir.RankedTensorType(source.type)
                shape += f"_from{'x'.join(map(str, st.shape))}_{zlib.crc32(str(gathered[1]).encode()):08x}"
            fn = (f"qc_qgemm_{shape}_{n}_w{7 if seven else bits}g{group}{act}_{'d' if dot else 'p'}{width}{bias}"
                  f"{'_sym' if symmetric else ''}")
            if fn not in helpers:
                with ir.InsertionPoint(body), op.location:
                    if cells:
                        qgemm_cell_helper(fn, list(xt.shape), layout, has_bias)
                    elif dot:
                        qgemm_dot_helper(fn, list(xt.shape), layout, act_scale, act_max, has_bias,
                                         gathered and (ir.RankedTensorType(source.type), gathered[1]), pieces, seven)
                    else:
                        qgemm_helper(fn, list(xt.shape), layout, has_bias)
                helpers.add(fn)
            tag = f"{'d' if dot else 'p'}{width}"
            # symmetric kernels compute the offset from the scale: the scale panels stand in for it
            names = (f"{pname}.{tag}", f"{sname}.{tag}", f"{sname if symmetric else zname}.{tag}")
            if pname in state.store and names[0] not in state.store:
                state.store[names[0]] = layout.weights(unpack_rows(state.store[pname], bits))
                scales, offsets = layout.scales(state.store[sname].reshape(n, -1), state.store[zname].reshape(n, -1))
                state.store[names[1]] = scales
                if offsets is not None:
                    state.store[names[2]] = offsets
            i8, f32 = ir.IntegerType.get_signless(8, module.context), ir.F32Type.get(module.context)
            types = (layout.weight_shape, i8), (layout.scale_shape, f32), (layout.scale_shape, f32)
            with ir.InsertionPoint(op), op.location:
                ws = [WeightOp(ir.RankedTensorType.get(shape, elt), ir.FlatSymbolRefAttr.get(name)).result
                      for (shape, elt), name in zip(types[:2], names)]
                ws.append(ws[1] if symmetric else WeightOp(ir.RankedTensorType.get(*types[2]),
                                                           ir.FlatSymbolRefAttr.get(names[2])).result)
                args = [source] + ws + ([op.bias] if has_bias else [])
                call = func.CallOp([op.result.type], ir.FlatSymbolRefAttr.get(fn), args)
            op.result.replace_all_uses_with(call.results[0])
            op.erase()
            for wop, name in ops_names:
                readers.erase(wop, name)
