"""qc-lower-linear: ``qc.linear`` -> a panel matmul on a compile-time packed weight.

    %y = "qc.linear"(%x, %w, %b)      x: [..., K], w: [N, K] (store entry "w"), b: [N]
becomes a call of a private helper (inlined later) computing

    %wp = "qc.weight"() {name = @w.p16}      W^T cut into P = ceil(N/16) panels: [P, K, 16]
    %acc = broadcast(%b) : [..., P, 16]      (zero-padded to P * 16 columns)
    %mm = linalg.generic {library_call = "qc_panel_matmul"}   acc[..., p, n] += x[..., k] * wp[p, k, n]
    %y = collapse(%mm) (and slice off the padding) : [..., N]

Each panel is contiguous in the order the micro-kernel reads it (one vector of
``panel-width`` floats per k), so the kernel streams the weight exactly once.
The generic is plain linalg: it runs as is, and ``qc-microkernels`` replaces
it by a vectorized, multi-threaded kernel after bufferization.  The helper
stays a separate function until ``inline``, out of reach of elementwise fusion.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import func

from ..core.errors import QCError
from ..core.quant.packing import PanelLayout
from ..dialects.qc import WeightOp
from .base import ModulePass, Option, PassState, walk_ops
from .matchers import LAYOUT_ATTR, layout_attr, stored_weight
from .templates import append_parsed, tensor_type

PANEL_MATMUL = "qc_panel_matmul"


def panel_helper(fn: str, xshape: list[int], layout: PanelLayout, has_bias: bool,
                 weights: list[tuple[str, str]], body: list[str], library_call: str,
                 prelude: list[str] = (), inputs: list[tuple[str, str, str]] | None = None) -> str:
    """Text of a private func ``y = x (.) weights + b`` accumulated in [..., P, width] panels.

    ``weights``: (tensor type, indexing map results over (lead..., p, n, k)) per
    weight operand; ``body``: the contraction generic's body, whose block
    arguments are one per input (default: %a for x), then one per weight, then
    %c (accumulator), ending in yield.  ``prelude``: lines computing other
    ``inputs`` (value, tensor type, map results over the lead dims ``d0..``, p, n, k) from %x.
    The contraction carries ``layout`` as ``qc.layout`` for the kernel pass."""
    *lead, k = xshape
    n, width, panels = layout.n, layout.width, layout.panels
    r = len(lead)
    dims = [f"d{i}" for i in range(r)]
    loops = ", ".join(dims + ["p", "n", "k"])
    lead_p = ", ".join(dims + ["p", "n"])
    parallel = ", ".join(['"parallel"'] * (r + 2))
    acc_t = tensor_type(lead + [panels, width])
    flat_t = tensor_type(lead + [panels * width])
    y_t = tensor_type(lead + [n])
    w_args = ", ".join(f"%arg_w{i}: {t}" for i, (t, _) in enumerate(weights))
    lines = [f"func.func private @{fn}(%x: {tensor_type(xshape)}, {w_args}"
             + (f", %b: {tensor_type([n])}" if has_bias else "") + f") -> {y_t} {{",
             f"  %empty = tensor.empty() : {acc_t}"]
    if has_bias:
        if panels * width != n:
            lines += ["  %zero_b = arith.constant 0.0 : f32",
                      f"  %bp = tensor.pad %b low[0] high[{panels * width - n}] {{",
                      "  ^bb0(%i: index):",
                      "    tensor.yield %zero_b : f32",
                      f"  }} : {tensor_type([n])} to {tensor_type([panels * width])}"]
        else:
            lines.append(f"  %bp = tensor.cast %b : {tensor_type([n])} to {tensor_type([n])}")
        lines += [f"  %b2 = tensor.expand_shape %bp [[0, 1]] output_shape [{panels}, {width}] : "
                  f"{tensor_type([panels * width])} into {tensor_type([panels, width])}",
                  "  %acc = linalg.generic {indexing_maps = ["
                  f"affine_map<({lead_p}) -> (p, n)>, affine_map<({lead_p}) -> ({lead_p})>], "
                  f"iterator_types = [{parallel}]}} "
                  f"ins(%b2 : {tensor_type([panels, width])}) outs(%empty : {acc_t}) {{",
                  "  ^bb0(%v: f32, %o: f32):",
                  "    linalg.yield %v : f32",
                  f"  }} -> {acc_t}"]
    else:
        lines += ["  %zero = arith.constant 0.0 : f32",
                  f"  %acc = linalg.fill ins(%zero : f32) outs(%empty : {acc_t}) -> {acc_t}"]
    lines += list(prelude)
    inputs = inputs or [("%x", tensor_type(xshape), ", ".join(dims + ["k"]))]
    maps = [f"affine_map<({loops}) -> ({m})>" for _, _, m in inputs]
    maps += [f"affine_map<({loops}) -> ({m})>" for _, m in weights] + [f"affine_map<({loops}) -> ({lead_p})>"]
    names = ", ".join([v for v, _, _ in inputs] + [f"%arg_w{i}" for i in range(len(weights))])
    types = ", ".join([t for _, t, _ in inputs] + [t for t, _ in weights])
    lines += [f"  %mm = linalg.generic {{indexing_maps = [{', '.join(maps)}], "
              f"iterator_types = [{parallel}, \"reduction\"], library_call = \"{library_call}\", "
              f"{LAYOUT_ATTR} = {layout_attr(layout)}}} "
              f"ins({names} : {types}) outs(%acc : {acc_t}) {{",
              *[f"  {line}" for line in body],
              f"  }} -> {acc_t}"]
    groups = ", ".join([f"[{i}]" for i in range(r)] + [f"[{r}, {r + 1}]"])
    lines.append(f"  %flat = tensor.collapse_shape %mm [{groups}] : {acc_t} into {flat_t}")
    if panels * width != n:
        zeros, ones = ", ".join(["0"] * (r + 1)), ", ".join(["1"] * (r + 1))
        lines.append(f"  %y = tensor.extract_slice %flat[{zeros}] [{', '.join(map(str, lead + [n]))}] [{ones}] : "
                     f"{flat_t} to {y_t}")
    else:
        lines.append(f"  %y = tensor.cast %flat : {flat_t} to {y_t}")
    lines += [f"  return %y : {y_t}", "}"]
    return "\n".join(lines)


def linear_helper(fn: str, xshape: list[int], layout: PanelLayout, has_bias: bool, weight_elt: str = "f32") -> str:
    """Text of a private func computing an f32 qc.linear with a [P, K, width] packed weight
    (f32, or f16 widened to f32 as it is read)."""
    body = [f"^bb0(%a: f32, %bw: {weight_elt}, %c: f32):"]
    if weight_elt == "f16":
        body += ["  %bw32 = arith.extf %bw : f16 to f32", "  %m = arith.mulf %a, %bw32 : f32"]
    else:
        body.append("  %m = arith.mulf %a, %bw : f32")
    body += ["  %s = arith.addf %c, %m : f32",
             "  linalg.yield %s : f32"]
    return panel_helper(fn, xshape, layout, has_bias,
                        [(tensor_type(layout.weight_shape, weight_elt), "p, k, n")], body, PANEL_MATMUL)


def weight_name(value: ir.Value, what: str, location: ir.Location) -> tuple[ir.Operation, str]:
    """The qc.weight producing ``value`` and its store name; an error at ``location`` if there is none."""
    found = stored_weight(value)
    if found is None:
        raise QCError(f"{what} must be a qc.weight to be lowered", location)
    return found


class LowerLinear(ModulePass):
    NAME = "qc-lower-linear"
    SUMMARY = "Lower qc.linear to a panel matmul (linalg.generic) on a compile-time packed weight (FP32 path)"
    OPTIONS = {"panel-width": Option(int, 16, "columns per weight panel (the kernel's vector width x 2)")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        width = self.options["panel-width"]
        if width < 1:
            raise QCError(f"panel-width must be positive, got {width}")
        body = module.regions[0].blocks[0]
        helpers: set[str] = set()
        for op in walk_ops(module, "qc.linear"):
            x, w = op.operands[0], op.operands[1]
            wop, name = weight_name(w, "qc.linear's weight", op.location)
            xt, wt = ir.RankedTensorType(x.type), ir.RankedTensorType(w.type)
            if not isinstance(xt.element_type, ir.F32Type) or not isinstance(wt.element_type, (ir.F32Type, ir.F16Type)):
                raise QCError(f"qc.linear is lowered for f32 activations and f32 or f16 weights only, got "
                              f"{xt.element_type} x {wt.element_type}", op.location)
            n, k = wt.shape
            has_bias = len(op.operands) == 3
            elt = str(wt.element_type)
            fn = f"qc_linear_{'x'.join(map(str, xt.shape))}_{n}_p{width}{'_bias' if has_bias else ''}" + (
                "_f16" if elt == "f16" else "")
            layout = PanelLayout(n, k, width, 16 if elt == "f16" else 32)
            if fn not in helpers:
                append_parsed(body, linear_helper(fn, list(xt.shape), layout, has_bias, elt), module.context)
                helpers.add(fn)
            packed = f"{name}.p{width}"
            if name in state.store and packed not in state.store:
                state.store[packed] = layout.weights(state.store[name])
            with ir.InsertionPoint(op), op.location:
                wp = WeightOp(ir.RankedTensorType.get(layout.weight_shape, wt.element_type),
                              ir.FlatSymbolRefAttr.get(packed))
                args = [x, wp.result] + ([op.operands[2]] if has_bias else [])
                call = func.CallOp([op.results[0].type], ir.FlatSymbolRefAttr.get(fn), args)
            op.results[0].replace_all_uses_with(call.results[0])
            op.erase()
            if not list(wop.results[0].uses):
                wop.erase()
