"""qc-conv-to-matmul: 1-/2-/3-D convolutions -> im2col + matmul over the flattened filter.

Runs on linalg-on-tensors, before qc-raise, so that a convolution with a constant filter becomes a
``qc.linear``: its filter is packed, quantized and chosen a precision like any other weight.

    %y = linalg.conv_2d_nchw_fchw {strides, dilations} ins(%x, %w : [N,C,H,W], [F,C,KH,KW])
                                  outs(%init)           (init: the bias broadcast, or anything)
becomes
    %xt  = linalg.generic  xt[n, h, w, c] = x[n, c, h, w]
    %col = linalg.generic  col[n, oh, ow, kh, kw, c] = xt[n, oh*sh + kh*dh, ow*sw + kw*dw, c]
    %mm  = linalg.matmul(collapse(%col) : [N*OH*OW, KH*KW*C], transpose(%w2) : [KH*KW*C, F])
    %mb  = %mm + b                          (when init broadcasts a bias b: qc-raise folds it in)
    %y   = linalg.generic  y[n, f, oh, ow] = mb[n, oh, ow, f]      (+ init otherwise)

with ``%w2 = %w`` rearranged to [F, KH*KW*C]: a ``qc.weight`` used only here in the store, any
other filter in the IR.  Channels go innermost so that the column copy moves runs of C contiguous
floats instead of KW-long ones strided by H x W; with a unit stride and dilation along W, one run
of KW x C.  Output pixels are the matmul's rows, so the micro-kernel's packed weight panels run over
the filters.  A zero padding of x is redone channels last.

``linalg.depthwise_conv_2d_nchw_chw`` becomes one channels-last generic over (n, oh, ow, kh, kw, c),
kh and kw reduced, c innermost and contiguous in x, the [KH, KW, C] filter and y.  Grouped
convolutions that are not depthwise are left alone.
"""

from __future__ import annotations

from math import prod

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith, linalg, tensor

from ..dialects.qc import WeightOp
from .base import ModulePass, PassState, walk_ops
from .builders import reassociation, zero_pad
from .channels_last import channels_first, channels_last, filled, generic_into, static_f32, window_attrs, window_exprs
from .matchers import erase_dead_ops, is_zero_constant, producer

CONVS = ("linalg.conv_1d_ncw_fcw", "linalg.conv_2d_nchw_fchw", "linalg.conv_3d_ncdhw_fcdhw")
DEPTHWISE = "linalg.depthwise_conv_2d_nchw_chw"


def _bias(init: ir.Value, f: int) -> ir.Value | None:
    """``b`` when ``init`` is ``linalg.broadcast(b: [F])`` over all dims but the channel."""
    op = producer(init)
    if op is None or op.name != "linalg.broadcast":
        return None
    rank = ir.RankedTensorType(init.type).rank
    b = op.operands[0]
    dims = [int(d) for d in ir.DenseI64ArrayAttr(op.attributes["dimensions"])]
    if ir.RankedTensorType(b.type).shape != [f] or dims != [0] + list(range(2, rank)):
        return None
    return b


def _read_elsewhere(weight: ir.Operation) -> bool:
    """Whether another ``qc.weight`` op of the module reads ``weight``'s entry."""
    root = weight
    while root.parent is not None:
        root = root.parent
    name = weight.opview.name.value
    return any(op != weight and op.opview.name.value == name for op in walk_ops(root, WeightOp.OPERATION_NAME))


def _channels_last_filter(w: ir.Value, channel: int, state: PassState, flat: bool = False) -> ir.Value:
    """The filter with its input-channel axis ``channel`` moved last (like the columns and the
    channels-last input), with ``flat`` as [F, K... x C]: a qc.weight used only here is rearranged
    in the store, a constant in its attribute, any other filter is transposed in the IR."""
    f32 = ir.F32Type.get()
    shape = list(ir.RankedTensorType(w.type).shape)
    perm = [i for i in range(len(shape)) if i != channel] + [channel]
    last = [shape[p] for p in perm]
    result = ir.RankedTensorType.get([last[0], prod(last[1:])] if flat else last, f32)
    op = producer(w)
    if isinstance(op and op.opview, WeightOp) and len(list(w.uses)) == 1:
        name = op.opview.name.value
        if name in state.store:  # IR-only runs (no store) just retype
            moved = np.ascontiguousarray(np.transpose(state.store[name], perm)).reshape(result.shape)
            if _read_elsewhere(op):  # another entry function's conv reads it as it is
                name = state.store.unique_name(f"{name}.cl")
            state.store[name] = moved
        return WeightOp(result, ir.FlatSymbolRefAttr.get(name)).result
    if op is not None and op.name == "arith.constant" and isinstance(op.attributes["value"], ir.DenseElementsAttr):
        value = np.ascontiguousarray(np.transpose(np.array(op.attributes["value"]), perm)).reshape(result.shape)
        return arith.ConstantOp(result, ir.DenseElementsAttr.get(value, type=result)).result
    moved = linalg.transpose(w, outs=[tensor.EmptyOp(last, f32).result], permutation=perm)
    if not flat:
        return moved
    return tensor.CollapseShapeOp(result, moved, reassociation([[0], list(range(1, len(shape)))])).result


def rewrite_depthwise(op: ir.Operation, state: PassState) -> ir.Value:
    """Depthwise ``op`` (2-D, NCHW) as a channels-last generic whose innermost loop runs over
    contiguous channels, built before it."""
    x, w, init = op.operands[:3]
    ys = list(ir.RankedTensorType(init.type).shape)
    strides, dilations = window_attrs(op)
    d = len(strides)
    f32 = ir.F32Type.get()
    dim = ir.AffineExpr.get_dim
    rank = 2 + 2 * d  # loops (n, o..., k..., c)
    c = dim(rank - 1)
    out_map = ir.AffineMap.get(rank, 0, [dim(0), *map(dim, range(1, d + 1)), c])
    x_map = ir.AffineMap.get(rank, 0, [dim(0), *window_exprs(rank, d, strides, dilations), c])
    w_map = ir.AffineMap.get(rank, 0, [*map(dim, range(1 + d, 1 + 2 * d)), c])
    result = ir.RankedTensorType.get([ys[0], *ys[2:], ys[1]], f32)
    bias = _bias(init, ys[1])
    if bias is not None:  # start from the bias, broadcast channels last
        start = generic_into(result, [bias], [ir.AffineMap.get(d + 2, 0, [dim(d + 1)]), ir.AffineMap.get_identity(d + 2)],
                         lambda a: a[0])
    else:
        start = filled(list(result.shape))
    y = generic_into(result, [channels_last(x), _channels_last_filter(w, 0, state)], [x_map, w_map, out_map],
                 lambda a: arith.AddFOp(a[2], arith.MulFOp(a[0], a[1]).result).result,
                 kinds="p" * (1 + d) + "r" * d + "p", init=start)
    return channels_first(y, None if bias is not None else init)


def rewrite(op: ir.Operation, state: PassState) -> ir.Value:
    """The im2col + matmul form of convolution ``op`` (1-, 2- or 3-D), built before it."""
    x, w, init = op.operands[:3]
    xs, ws, ys = (list(ir.RankedTensorType(v.type).shape) for v in (x, w, init))
    strides, dilations = window_attrs(op)
    d = len(strides)
    (n, c), (f, ks), outs = xs[:2], (ws[0], ws[2:]), ys[2:]
    pixels, ckk = prod(outs), c * prod(ks)
    f32 = ir.F32Type.get()
    tt = lambda shape: ir.RankedTensorType.get(list(shape), f32)  # noqa: E731

    # Channels last first, so that every column row is KH x KW runs of C contiguous floats:
    # xt[n, h..., c] = x[n, c, h...];  col[n, o..., k..., c] = xt[n, o * s + k * dl ..., c].
    # With a unit stride and dilation on the last spatial dim, its KW runs are adjacent in xt: the
    # column reads one run of KW x C floats, xt viewed as [N, H..., W x C] (col[.., j] = xt[.., ow*C + j]).
    dim = ir.AffineExpr.get_dim
    xt = channels_last(x)
    merge = strides[-1] == 1 and dilations[-1] == 1
    if merge:
        xt_shape = list(ir.RankedTensorType(xt.type).shape)
        xt = tensor.CollapseShapeOp(tt([*xt_shape[:-2], xt_shape[-2] * c]), xt,
                                    reassociation([*[[i] for i in range(d)], [d, d + 1]])).result
        rank = 1 + d + d  # (n, o..., k[:-1]..., j)
        window = window_exprs(rank, d, strides, dilations)[:-1]
        x_map = ir.AffineMap.get(rank, 0, [dim(0), *window, dim(d) * c + dim(rank - 1)])
        col_shape = [n, *outs, *ks[:-1], ks[-1] * c]
    else:
        rank = 2 + 2 * d  # (n, o..., k..., c)
        x_map = ir.AffineMap.get(rank, 0, [dim(0), *window_exprs(rank, d, strides, dilations), dim(rank - 1)])
        col_shape = [n, *outs, *ks, c]
    col = generic_into(tt(col_shape), [xt], [x_map, ir.AffineMap.get_identity(rank)], lambda a: a[0])
    col = tensor.CollapseShapeOp(tt([n * pixels, ckk]), col,
                                 reassociation([list(range(d + 1)), list(range(d + 1, rank))])).result

    wt = linalg.transpose(_channels_last_filter(w, 1, state, flat=True), outs=[tensor.EmptyOp([ckk, f], f32).result], permutation=[1, 0])
    mm = linalg.matmul(col, wt, outs=[filled([n * pixels, f])], indexing_maps=[
        ir.AffineMap.get(3, 0, [dim(0), dim(2)]), ir.AffineMap.get(3, 0, [dim(2), dim(1)]),
        ir.AffineMap.get(3, 0, [dim(0), dim(1)])])

    identity2 = ir.AffineMap.get_identity(2)
    bias = _bias(init, f)
    if bias is not None:
        mm = generic_into(tt([n * pixels, f]), [mm, bias], [identity2, ir.AffineMap.get(2, 0, [dim(1)]), identity2],
                      lambda a: arith.AddFOp(a[0], a[1]).result)
    mm = tensor.ExpandShapeOp(tt([n, *outs, f]), mm, reassociation([list(range(d + 1)), [d + 1]]), [],
                              ir.DenseI64ArrayAttr.get([n, *outs, f])).result
    return channels_first(mm, None if bias is not None else init)


def _zero_upsampled(x: ir.Value) -> tuple[ir.Value, list[int], list[int]] | None:
    """(source, offsets, strides) of the spatial dims when ``x`` is a 2-D source inserted with
    strides into a zero-filled tensor: how the importer turns a ConvTranspose into a conv."""
    op = producer(x)
    if op is None or op.name != "tensor.insert_slice" or len(op.operands) != 2:
        return None
    dest = producer(op.operands[1])
    if dest is None or dest.name != "linalg.fill" or not is_zero_constant(dest.operands[0]):
        return None
    offsets, strides = (list(ir.DenseI64ArrayAttr(op.attributes[k])) for k in ("static_offsets", "static_strides"))
    if offsets[:2] != [0, 0] or strides[:2] != [1, 1] or max(strides) == 1 or min(offsets + strides) < 0:
        return None
    return op.operands[0], offsets[2:], strides[2:]


def rewrite_transposed(op: ir.Operation) -> ir.Value | None:
    """A stride-1 2-D conv over a zero-upsampled input (a ConvTranspose with stride s) as s x s
    phase convolutions on the source, built before ``op``: output rows ``s q + a`` only meet the
    filter taps ``kh = r, r + s, ...`` with ``r = (offset - a) mod s``, so each phase is a conv of
    the (zero-padded) source with that slice of the filter, written into every s-th output.  None
    when ``op`` is not such a conv."""
    x, w, init = op.operands[:3]
    strides, dilations = window_attrs(op)
    found = _zero_upsampled(x)
    if found is None or strides != [1, 1] or dilations != [1, 1]:
        return None
    src, offsets, steps = found
    n, c, *size = ir.RankedTensorType(src.type).shape
    f, _, *ks = ir.RankedTensorType(w.type).shape
    outs = ir.RankedTensorType(init.type).shape[2:]
    f32 = ir.F32Type.get()
    # the phases are gathered channels last (their convs' outputs are NHWC), so that no NCHW copy of
    # the whole output is made between them and the next conv's NHWC input
    y = channels_last(init)
    for phase in (tuple(int(v) for v in p) for p in np.ndindex(*steps)):
        taps = [(offsets[i] - phase[i]) % steps[i] for i in range(2)]  # the first tap of each dim
        counts = [len(range(taps[i], ks[i], steps[i])) for i in range(2)]
        rows = [len(range(phase[i], outs[i], steps[i])) for i in range(2)]
        if 0 in rows:
            continue
        part_t = ir.RankedTensorType.get([n, *rows, f], f32)
        part = tensor.extract_slice(part_t, y, [], [], [], [0, *phase, 0], [n, *rows, f], [1, *steps, 1])
        if 0 not in counts:  # (a phase no tap reaches keeps the init: the bias)
            # output q of the phase reads source rows q + first + i for its taps i
            first = [(phase[i] + taps[i] - offsets[i]) // steps[i] for i in range(2)]
            low = [max(0, -first[i]) for i in range(2)]
            high = [max(0, rows[i] + first[i] + counts[i] - 1 - size[i]) for i in range(2)]
            padded = zero_pad(src, [0, 0, *low], [0, 0, *high])
            start = [max(0, first[i]) for i in range(2)]
            window = [rows[i] + counts[i] - 1 for i in range(2)]
            xs = tensor.extract_slice(ir.RankedTensorType.get([n, c, *window], f32), padded, [], [], [],
                                      [0, 0, *start], [n, c, *window], [1, 1, 1, 1])
            ws = tensor.extract_slice(ir.RankedTensorType.get([f, c, *counts], f32), w, [], [], [],
                                      [0, 0, *taps], [f, c, *counts], [1, 1, *steps])
            part = channels_last(linalg.conv_2d_nchw_fchw(xs, ws, outs=[channels_first(part)], strides=[1, 1],
                                                          dilations=[1, 1]))
        y = tensor.insert_slice(part, y, [], [], [], [0, *phase, 0], [n, *rows, f], [1, *steps, 1])
    return channels_first(y)


def _static_f32(op: ir.Operation) -> bool:
    """The convolution's input, filter and output are f32 tensors of static shape."""
    return static_f32(op.operands[:3])


class ConvToMatmul(ModulePass):
    NAME = "qc-conv-to-matmul"
    SUMMARY = "Rewrite f32 NC(D)HW 1-/2-/3-D convolutions as im2col + matmul (qc-raise makes them qc.linear)"

    def run(self, module: ir.Operation, state: PassState) -> None:
        for op in filter(_static_f32, walk_ops(module, "linalg.conv_2d_nchw_fchw")):  # ConvTranspose: phases
            with ir.InsertionPoint(op), op.location:
                y = rewrite_transposed(op)
            if y is not None:
                op.results[0].replace_all_uses_with(y)
                op.erase()
        for name in (*CONVS, DEPTHWISE):
            for op in filter(_static_f32, walk_ops(module, name)):
                with ir.InsertionPoint(op), op.location:
                    y = rewrite_depthwise(op, state) if name == DEPTHWISE else rewrite(op, state)
                op.results[0].replace_all_uses_with(y)
                op.erase()
        erase_dead_ops(module)  # the filters that were rearranged
