"""qc-conv-to-matmul: 1-/2-/3-D convolutions -> im2col + batch_matmul (for the micro-kernels).

    %y = linalg.conv_2d_nchw_fchw {strides, dilations} ins(%x, %w) outs(%init)
becomes a call of a private helper (inlined later) computing

    %col = linalg.generic  col[n, c, kh, kw, oh, ow] = x[n, c, oh*sh + kh*dh, ow*sw + kw*dw]
    %y = batch_matmul(broadcast(w as [F, C*KH*KW]), col as [N, C*KH*KW, OH*OW]) + init

so that the convolution runs on qc-microkernels' register-tiled, threaded
kernel (M = filters, K = C x kernel window, N = output pixels).  Padding was
applied to %x by the importer already.  Grouped convolutions keep their loops.
"""

from __future__ import annotations

from math import prod

from torch_mlir import ir
from torch_mlir.dialects import func

from .base import ModulePass, PassState, walk_ops
from .templates import append_parsed, tensor_type

CONVS = {"linalg.conv_1d_ncw_fcw": 1, "linalg.conv_2d_nchw_fchw": 2, "linalg.conv_3d_ncdhw_fcdhw": 3}


def conv_helper(fn: str, xs, ws, ys, strides, dilations) -> str:
    d = len(strides)
    n, c = xs[:2]
    f, ks, outs = ws[0], ws[2:], ys[2:]
    ckk, pixels = c * prod(ks), prod(outs)
    kd = [f"k{i}" for i in range(d)]
    od = [f"o{i}" for i in range(d)]
    dims = ", ".join(["n", "c"] + kd + od)
    window = ", ".join(f"{o} * {s} + {k} * {dl}" for o, k, s, dl in zip(od, kd, strides, dilations))
    col_t = tensor_type([n, c, *ks, *outs])
    par = ", ".join(['"parallel"'] * (2 + 2 * d))
    kgroup = list(range(1, d + 2))
    return "\n".join([
        f"func.func private @{fn}(%x: {tensor_type(xs)}, %w: {tensor_type(ws)}, %init: {tensor_type(ys)}) -> {tensor_type(ys)} {{",
        f"  %e = tensor.empty() : {col_t}",
        f"  %col = linalg.generic {{indexing_maps = [affine_map<({dims}) -> (n, c, {window})>, "
        f"affine_map<({dims}) -> ({dims})>], iterator_types = [{par}]}} ins(%x : {tensor_type(xs)}) outs(%e : {col_t}) {{",
        "  ^bb0(%v: f32, %o: f32):",
        "    linalg.yield %v : f32",
        f"  }} -> {col_t}",
        f"  %col2 = tensor.collapse_shape %col [[0], {kgroup}, {list(range(d + 2, 2 * d + 2))}] : "
        f"{col_t} into {tensor_type([n, ckk, pixels])}",
        f"  %w2 = tensor.collapse_shape %w [[0], {kgroup}] : {tensor_type(ws)} into {tensor_type([f, ckk])}",
        f"  %eb = tensor.empty() : {tensor_type([n, f, ckk])}",
        "  %wb = linalg.generic {indexing_maps = [affine_map<(b, i, j) -> (i, j)>, affine_map<(b, i, j) -> (b, i, j)>], "
        f"iterator_types = [\"parallel\", \"parallel\", \"parallel\"]}} ins(%w2 : {tensor_type([f, ckk])}) "
        f"outs(%eb : {tensor_type([n, f, ckk])}) {{",
        "  ^bb0(%v: f32, %o: f32):",
        "    linalg.yield %v : f32",
        f"  }} -> {tensor_type([n, f, ckk])}",
        f"  %acc = tensor.collapse_shape %init [[0], [1], {list(range(2, d + 2))}] : "
        f"{tensor_type(ys)} into {tensor_type([n, f, pixels])}",
        f"  %mm = linalg.batch_matmul ins(%wb, %col2 : {tensor_type([n, f, ckk])}, {tensor_type([n, ckk, pixels])}) "
        f"outs(%acc : {tensor_type([n, f, pixels])}) -> {tensor_type([n, f, pixels])}",
        f"  %y = tensor.expand_shape %mm [[0], [1], {list(range(2, d + 2))}] output_shape {list(ys)} : "
        f"{tensor_type([n, f, pixels])} into {tensor_type(ys)}",
        f"  return %y : {tensor_type(ys)}",
        "}",
    ])


class ConvToMatmul(ModulePass):
    NAME = "qc-conv-to-matmul"
    SUMMARY = "Rewrite f32 NC(D)HW 1-/2-/3-D convolutions as im2col + batch_matmul"

    def run(self, module: ir.Operation, state: PassState) -> None:
        body = module.regions[0].blocks[0]
        helpers: set[str] = set()
        for name, d in CONVS.items():
            for op in walk_ops(module, name):
                types = [ir.RankedTensorType(v.type) for v in op.operands[:3]]
                if not all(isinstance(t.element_type, ir.F32Type) and t.has_static_shape for t in types):
                    continue
                xs, ws, ys = (list(t.shape) for t in types)
                strides = [int(v) for v in ir.DenseIntElementsAttr(op.attributes["strides"])]
                dilations = [int(v) for v in ir.DenseIntElementsAttr(op.attributes["dilations"])]
                fn = "qc_conv_" + "_".join("x".join(map(str, s)) for s in (xs, ws, ys, strides, dilations))
                if fn not in helpers:
                    append_parsed(body, conv_helper(fn, xs, ws, ys, strides, dilations), module.context)
                    helpers.add(fn)
                with ir.InsertionPoint(op), op.location:
                    call = func.CallOp([op.results[0].type], ir.FlatSymbolRefAttr.get(fn), list(op.operands[:3]))
                op.results[0].replace_all_uses_with(call.results[0])
                op.erase()
