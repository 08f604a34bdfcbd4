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
weight.  Per-channel scales are one group spanning K.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import func

from ..compiler.errors import QCError
from ..compiler.quant.packing import panel_scales, panel_weights, unpack_rows
from ..dialects.qc import WeightOp
from .base import ModulePass, Option, PassState, walk_ops
from .lower_linear import panel_helper, weight_name
from .templates import append_parsed, tensor_type

QGEMM_PANEL = "qc_qgemm_panel"


def qgemm_body(bits: int, width: int, n_dim: int) -> list[str]:
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
    lines += ["  %ws = arith.mulf %f, %w1 : f32",
              "  %w = arith.addf %ws, %w2 : f32",
              "  %m = arith.mulf %a, %w : f32",
              "  %s = arith.addf %c, %m : f32",
              "  linalg.yield %s : f32"]
    return lines


def qgemm_helper(fn: str, xshape: list[int], n: int, width: int, bits: int, group: int, has_bias: bool) -> str:
    k = xshape[-1]
    panels, groups = -(-n // width), k // group
    col = "n mod " + str(width // 2) if bits == 4 else "n"
    weights = [(tensor_type([panels, k, width * bits // 8], "i8"), f"p, k, {col}"),
               (tensor_type([panels, groups, width]), f"p, k floordiv {group}, n"),
               (tensor_type([panels, groups, width]), f"p, k floordiv {group}, n")]
    return panel_helper(fn, xshape, n, width, has_bias, weights, qgemm_body(bits, width, len(xshape)), QGEMM_PANEL)


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
            k = xt.shape[-1]
            group = ir.IntegerAttr(op.attributes["group_size"]).value or k
            ops_names = [weight_name(op.operands[i], f"qc.qgemm's {what}", op.location)
                         for i, what in ((1, "packed weight"), (2, "scale"), (3, "zero point"))]
            n = ir.RankedTensorType(op.operands[1].type).shape[0]
            has_bias = len(op.operands) == 5
            fn = (f"qc_qgemm_{'x'.join(map(str, xt.shape))}_{n}_w{bits}g{group}_p{width}"
                  f"{'_bias' if has_bias else ''}")
            if fn not in helpers:
                append_parsed(body, qgemm_helper(fn, list(xt.shape), n, width, bits, group, has_bias), module.context)
                helpers.add(fn)
            (_, pname), (_, sname), (_, zname) = ops_names
            names = (f"{pname}.p{width}", f"{sname}.p{width}", f"{zname}.p{width}")
            if pname in state.store and names[0] not in state.store:
                state.store[names[0]] = panel_weights(unpack_rows(state.store[pname], bits), bits, width)
                scale = state.store[sname].reshape(n, -1)
                state.store[names[1]], state.store[names[2]] = panel_scales(
                    scale, state.store[zname].reshape(n, -1), bits, width)
            panels = -(-n // width)
            types = ([panels, k, width * bits // 8], ir.IntegerType.get_signless(8, module.context)), \
                    ([panels, k // group, width], ir.F32Type.get(module.context)), \
                    ([panels, k // group, width], ir.F32Type.get(module.context))
            with ir.InsertionPoint(op), op.location:
                ws = [WeightOp(ir.RankedTensorType.get(shape, elt), ir.FlatSymbolRefAttr.get(name)).result
                      for (shape, elt), name in zip(types, names)]
                args = [x] + ws + ([op.operands[4]] if has_bias else [])
                call = func.CallOp([op.results[0].type], ir.FlatSymbolRefAttr.get(fn), args)
            op.results[0].replace_all_uses_with(call.results[0])
            old = [wop for wop, _ in ops_names]
            op.erase()
            for wop in old:
                if not list(wop.results[0].uses):
                    wop.erase()
