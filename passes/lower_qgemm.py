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
then contracts integers on dot-product panels (``packing.PanelLayout`` with ``dot``):

    %wq = "qc.weight"() {name = @fc.q.packed.d32} : [P, K/4, 128] i8   (int4: [P, K/8, 128])
    linalg.generic {library_call = "qc_qgemm_dot_panel"}
        acc[.., p, n] += sx[..] * (ws[p, g, n] * (xq[.., k] * u(wq[p, k floordiv 4, 4n + k mod 4]))
                                   + (k mod GS == 0 ? wo[p, g, n] * xsum[.., g] : 0))

``u`` unsigned (int8 + 128, or the int4 nibble), ``g = k floordiv GS``; the
offset ``wo = -(zero + 128 or 8) * ws`` meets the group sum once per group,
the form an unsigned x signed byte dot product (``vpdpbusd``) computes.  When every zero point
is 0 (symmetric schemes) the contraction is ``qc_qgemm_dot_panel_sym``: the body and the
micro-kernel compute ``wo = -(128 or 8) * ws`` instead of reading it (6 % fewer bytes streamed for
int4 g128 decode), so no offsets are stored: the scale panels fill the offset operand.
"""

from __future__ import annotations

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import func

from ..core.errors import QCError
from ..core.quant.packing import PanelLayout, unpack_rows, unsigned_offset
from ..dialects.qc import WeightOp
from .base import ModulePass, Option, PassState, walk_ops
from .lower_linear import panel_helper, weight_name
from .templates import append_parsed, tensor_type

QGEMM_PANEL = "qc_qgemm_panel"
QGEMM_PANEL_SYM = "qc_qgemm_panel_sym"  # the same, all zero points 0: the kernel derives wo from ws
QGEMM_DOT_PANEL = "qc_qgemm_dot_panel"
QGEMM_DOT_PANEL_SYM = "qc_qgemm_dot_panel_sym"  # the same, all zero points 0: the kernel derives wo from ws


def _offset(symmetric: bool, bits: int, dot: bool) -> tuple[list[str], str]:
    """(lines, value) of the group offset: %w2 as stored, or for symmetric weights ``-shift * scale``
    computed from %w1 as the micro-kernels do (the offset operand is then the scale, never read)."""
    if not symmetric:
        return [], "%w2"
    return [f"  %shift_neg = arith.constant {-float(unsigned_offset(bits, dot))} : f32",
            "  %wo = arith.mulf %w1, %shift_neg : f32"], "%wo"


def qgemm_body(bits: int, width: int, n_dim: int, symmetric: bool = False) -> list[str]:
    """The contraction body: block args %a (x), %w0 (byte), %w1 (scale), %w2 (offset), %c (acc)."""
    lines = ["^bb0(%a: f32, %w0: i8, %w1: f32, %w2: f32, %c: f32):"]
    if bits == 4:
        lines += [f"  %n = linalg.index {n_dim} : index",
                  f"  %half = arith.constant {width // 2} : index",
                  "  %hi = arith.cmpi uge, %n, %half : index",
                  "  %four = arith.constant 4 : i8",
                  "  %none = arith.constant 0 : i8",
                  "  %shift = arith.select %hi, %four, %none : i8",
                  "  %v = arith.shrui %w0, %shift : i8",
                  "  %mask = arith.constant 15 : i8",
                  "  %u = arith.andi %v, %mask : i8",
                  "  %f = arith.uitofp %u : i8 to f32"]
    else:
        lines.append("  %f = arith.sitofp %w0 : i8 to f32")
    offset, wo = _offset(symmetric, bits, False)
    lines += offset + ["  %ws = arith.mulf %f, %w1 : f32",
              f"  %w = arith.addf %ws, {wo} : f32",
              "  %m = arith.mulf %a, %w : f32",
              "  %s = arith.addf %c, %m : f32",
              "  linalg.yield %s : f32"]
    return lines


def qgemm_helper(fn: str, xshape: list[int], layout: PanelLayout, has_bias: bool) -> str:
    bits, group, width = layout.bits, layout.group, layout.width
    col = "n mod " + str(width // 2) if bits == 4 else "n"
    weights = [(tensor_type(layout.weight_shape, "i8"), f"p, k, {col}"),
               (tensor_type(layout.scale_shape), f"p, k floordiv {group}, n"),
               (tensor_type(layout.scale_shape), f"p, k floordiv {group}, n")]
    return panel_helper(fn, xshape, layout, has_bias, weights,
                        qgemm_body(bits, width, len(xshape), layout.symmetric),
                        QGEMM_PANEL_SYM if layout.symmetric else QGEMM_PANEL)


def f32_bits(value: float) -> str:
    """The f32 nearest ``value`` as 8 hex digits: how MLIR spells an exact float constant."""
    return f"{int(np.float32(value).view(np.uint32)):08X}"


def quantize_rows(xshape: list[int], group: int, act_scale: float) -> list[str]:
    """Helper lines: %xq (int8), %xs (scale per row) and %xsum (int32 group sums of %xq) from %x."""
    *lead, k = xshape
    r = len(lead)
    dims = ", ".join(f"d{i}" for i in range(r))
    par = ", ".join(['"parallel"'] * r)
    comma = ", " if r else ""
    row_t, q_t = tensor_type(lead), tensor_type(xshape, "i8")
    g_t, g3_t = tensor_type(lead + [k // group], "i32"), tensor_type(lead + [k // group, group], "i8")
    lines = [f"  %e_s = tensor.empty() : {row_t}"]
    if act_scale:
        lines += [f"  %c_sx = arith.constant 0x{f32_bits(act_scale)} : f32",
                  f"  %xs = linalg.fill ins(%c_sx : f32) outs(%e_s : {row_t}) -> {row_t}"]
    else:
        lines += ["  %zero_s = arith.constant 0.0 : f32",
                  f"  %z_s = linalg.fill ins(%zero_s : f32) outs(%e_s : {row_t}) -> {row_t}",
                  f"  %amax = linalg.generic {{indexing_maps = [affine_map<({dims}{comma}k) -> ({dims}{comma}k)>, "
                  f"affine_map<({dims}{comma}k) -> ({dims})>], iterator_types = [{par}{comma}\"reduction\"]}} "
                  f"ins(%x : {tensor_type(xshape)}) outs(%z_s : {row_t}) {{",
                  "  ^bb0(%v: f32, %m: f32):",
                  "    %av = math.absf %v : f32",
                  "    %mx = arith.maximumf %m, %av : f32",
                  "    linalg.yield %mx : f32",
                  f"  }} -> {row_t}",
                  f"  %xs = linalg.generic {{indexing_maps = [affine_map<({dims}) -> ({dims})>, "
                  f"affine_map<({dims}) -> ({dims})>], iterator_types = [{par}]}} "
                  f"ins(%amax : {row_t}) outs(%e_s : {row_t}) {{",
                  "  ^bb0(%m: f32, %o: f32):",
                  "    %c127 = arith.constant 127.0 : f32",
                  "    %sx = arith.divf %m, %c127 : f32",
                  "    linalg.yield %sx : f32",
                  f"  }} -> {row_t}"]
    lines += [f"  %e_q = tensor.empty() : {q_t}",
              f"  %xq = linalg.generic {{indexing_maps = [affine_map<({dims}{comma}k) -> ({dims}{comma}k)>, "
              f"affine_map<({dims}{comma}k) -> ({dims})>, affine_map<({dims}{comma}k) -> ({dims}{comma}k)>], "
              f"iterator_types = [{par}{comma}\"parallel\"]}} ins(%x, %xs : {tensor_type(xshape)}, {row_t}) "
              f"outs(%e_q : {q_t}) {{",
              "  ^bb0(%v: f32, %sx: f32, %o: i8):",
              "    %qzero = arith.constant 0.0 : f32",
              "    %one = arith.constant 1.0 : f32",
              "    %c127 = arith.constant 127.0 : f32",
              "    %cm127 = arith.constant -127.0 : f32",
              "    %pos = arith.cmpf ogt, %sx, %qzero : f32",
              "    %inv0 = arith.divf %one, %sx : f32",
              "    %inv = arith.select %pos, %inv0, %qzero : f32",
              "    %t = arith.mulf %v, %inv : f32",
              "    %rt = math.roundeven %t : f32",
              "    %lo = arith.maximumf %rt, %cm127 : f32",
              "    %hi = arith.minimumf %lo, %c127 : f32",
              "    %q = arith.fptosi %hi : f32 to i8",
              "    linalg.yield %q : i8",
              f"  }} -> {q_t}",
              f"  %xq3 = tensor.expand_shape %xq [{', '.join([f'[{i}]' for i in range(r)] + [f'[{r}, {r + 1}]'])}] "
              f"output_shape [{', '.join(map(str, lead + [k // group, group]))}] : {q_t} into {g3_t}",
              "  %zero_g = arith.constant 0 : i32",
              f"  %e_g = tensor.empty() : {g_t}",
              f"  %z_g = linalg.fill ins(%zero_g : i32) outs(%e_g : {g_t}) -> {g_t}",
              f"  %xsum = linalg.generic {{indexing_maps = [affine_map<({dims}{comma}g, j) -> ({dims}{comma}g, j)>, "
              f"affine_map<({dims}{comma}g, j) -> ({dims}{comma}g)>], "
              f"iterator_types = [{par}{comma}\"parallel\", \"reduction\"]}} ins(%xq3 : {g3_t}) outs(%z_g : {g_t}) {{",
              "  ^bb0(%v: i8, %gacc: i32):",
              "    %e = arith.extsi %v : i8 to i32",
              "    %s = arith.addi %gacc, %e : i32",
              "    linalg.yield %s : i32",
              f"  }} -> {g_t}"]
    return lines


def qgemm_dot_body(bits: int, group: int, k_dim: int, symmetric: bool = False) -> list[str]:
    """Block args %a (xq), %bsx (its scale), %bsum (its group sum), %w0 (byte), %w1 (scale), %w2 (offset), %c."""
    lines = ["^bb0(%a: i8, %bsx: f32, %bsum: i32, %w0: i8, %w1: f32, %w2: f32, %c: f32):",
             f"  %kk = linalg.index {k_dim} : index"]
    if bits == 4:
        lines += ["  %c8 = arith.constant 8 : index",
                  "  %c4 = arith.constant 4 : index",
                  "  %km = arith.remui %kk, %c8 : index",
                  "  %hi = arith.cmpi uge, %km, %c4 : index",
                  "  %four = arith.constant 4 : i8",
                  "  %none = arith.constant 0 : i8",
                  "  %shift = arith.select %hi, %four, %none : i8",
                  "  %v = arith.shrui %w0, %shift : i8",
                  "  %mask = arith.constant 15 : i8",
                  "  %u = arith.andi %v, %mask : i8"]
    offset, wo = _offset(symmetric, bits, True)
    lines += offset + [f"  %ue = arith.extui {'%u' if bits == 4 else '%w0'} : i8 to i32",
              "  %ae = arith.extsi %a : i8 to i32",
              "  %pr = arith.muli %ae, %ue : i32",
              "  %pf = arith.sitofp %pr : i32 to f32",
              "  %t = arith.mulf %pf, %w1 : f32",
              f"  %cgs = arith.constant {group} : index",
              "  %c0 = arith.constant 0 : index",
              "  %gm = arith.remui %kk, %cgs : index",
              "  %first = arith.cmpi eq, %gm, %c0 : index",
              "  %sf = arith.sitofp %bsum : i32 to f32",
              f"  %corr = arith.mulf {wo}, %sf : f32",
              "  %fzero = arith.constant 0.0 : f32",
              "  %cr = arith.select %first, %corr, %fzero : f32",
              "  %t2 = arith.addf %t, %cr : f32",
              "  %t3 = arith.mulf %bsx, %t2 : f32",
              "  %s = arith.addf %c, %t3 : f32",
              "  linalg.yield %s : f32"]
    return lines


def qgemm_dot_helper(fn: str, xshape: list[int], layout: PanelLayout, act_scale: float, has_bias: bool) -> str:
    *lead, k = xshape
    bits, group, groups, per = layout.bits, layout.group, layout.groups, 32 // layout.bits
    dims = [f"d{i}" for i in range(len(lead))]
    inputs = [("%xq", tensor_type(xshape, "i8"), ", ".join(dims + ["k"])),
              ("%xs", tensor_type(lead), ", ".join(dims)),
              ("%xsum", tensor_type(lead + [groups], "i32"), ", ".join(dims + [f"k floordiv {group}"]))]
    weights = [(tensor_type(layout.weight_shape, "i8"), f"p, k floordiv {per}, n * 4 + k mod 4"),
               (tensor_type(layout.scale_shape), f"p, k floordiv {group}, n"),
               (tensor_type(layout.scale_shape), f"p, k floordiv {group}, n")]
    return panel_helper(fn, xshape, layout, has_bias, weights,
                        qgemm_dot_body(bits, group, len(lead) + 2, layout.symmetric),
                        QGEMM_DOT_PANEL_SYM if layout.symmetric else QGEMM_DOT_PANEL, quantize_rows(xshape, group, act_scale),
                        inputs)


class LowerQGemm(ModulePass):
    NAME = "qc-lower-qgemm"
    SUMMARY = "Lower qc.qgemm to a panel contraction on kernel-layout packed integers (linalg.generic)"
    OPTIONS = {"panel-width": Option(int, 16, "output channels per weight panel (the kernel's vector width x 2)")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        width = self.options["panel-width"]
        if width < 2 or width % 2:
            raise QCError(f"panel-width must be a positive even number, got {width}")
        body = module.regions[0].blocks[0]
        helpers: set[str] = set()
        for op in walk_ops(module, "qc.qgemm"):
            x = op.operands[0]
            xt = ir.RankedTensorType(x.type)
            if not isinstance(xt.element_type, ir.F32Type):
                raise QCError(f"qc.qgemm is lowered for f32 activations only, got {xt.element_type}", op.location)
            bits = ir.IntegerAttr(op.attributes["bits"]).value
            dot = ir.IntegerAttr(op.attributes["act_bits"]).value == 8
            act_scale = ir.FloatAttr(op.attributes["act_scale"]).value
            k = xt.shape[-1]
            group = ir.IntegerAttr(op.attributes["group_size"]).value or k
            if dot and k % (32 // bits):
                raise QCError(f"int8 activations need K a multiple of {32 // bits}, got {k}", op.location)
            ops_names = [weight_name(op.operands[i], f"qc.qgemm's {what}", op.location)
                         for i, what in ((1, "packed weight"), (2, "scale"), (3, "zero point"))]
            n = ir.RankedTensorType(op.operands[1].type).shape[0]
            has_bias = len(op.operands) == 5
            shape = "x".join(map(str, xt.shape))
            bias = "_bias" if has_bias else ""
            act = (f"_a8s{f32_bits(act_scale)}" if act_scale else "_a8") if dot else ""
            (_, pname), (_, sname), (_, zname) = ops_names
            symmetric = zname in state.store and not np.any(state.store[zname])
            layout = PanelLayout(n, k, width, bits, group, dot, symmetric)
            fn = f"qc_qgemm_{shape}_{n}_w{bits}g{group}{act}_{'d' if dot else 'p'}{width}{bias}{'_sym' if symmetric else ''}"
            if fn not in helpers:
                text = (qgemm_dot_helper(fn, list(xt.shape), layout, act_scale, has_bias) if dot
                        else qgemm_helper(fn, list(xt.shape), layout, has_bias))
                append_parsed(body, text, module.context)
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
                args = [x] + ws + ([op.operands[4]] if has_bias else [])
                call = func.CallOp([op.results[0].type], ir.FlatSymbolRefAttr.get(fn), args)
            op.results[0].replace_all_uses_with(call.results[0])
            old = [wop for wop, _ in ops_names]
            op.erase()
            for wop in old:
                if not list(wop.results[0].uses):
                    wop.erase()
