"""qc-lower-linear: ``qc.linear`` -> linalg on the weight layout the CPU kernel wants.

    %y = "qc.linear"(%x, %w, %b)          x: [..., K], w: [N, K] (store entry "w")
becomes
    %w_kn = "qc.weight"() {name = @w.kn}  the store gets W^T, packed once at compile time
    %y = linalg.matmul(collapse(%x), %w_kn) + %b, expanded back to [..., N]

The matmul is then tiled and vectorized by the codegen schedule.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import func

from ..dialects.qc import WeightOp
from .base import ModulePass, PassState, walk_ops
from ..compiler.errors import QCError
from .matchers import producer

_TEMPLATE = """
func.func private @{fn}(%x: {xt}, %w: tensor<{k}x{n}x{e}>{bias_arg}) -> {yt} {{
  {collapse}
  %zero = arith.constant 0.0 : {e}
  %init = tensor.empty() : tensor<{m}x{n}x{e}>
  %acc = linalg.fill ins(%zero : {e}) outs(%init : tensor<{m}x{n}x{e}>) -> tensor<{m}x{n}x{e}>
  %mm = linalg.matmul ins(%x2, %w : tensor<{m}x{k}x{e}>, tensor<{k}x{n}x{e}>) outs(%acc : tensor<{m}x{n}x{e}>) -> tensor<{m}x{n}x{e}>
  {bias}
  {expand}
  return %y : {yt}
}}
"""

_BIAS = """%y2 = linalg.generic {{indexing_maps = [affine_map<(m, n) -> (m, n)>, affine_map<(m, n) -> (n)>, affine_map<(m, n) -> (m, n)>],
      iterator_types = ["parallel", "parallel"]}} ins(%mm, %b : tensor<{m}x{n}x{e}>, tensor<{n}x{e}>) outs(%init : tensor<{m}x{n}x{e}>) {{
    ^bb0(%a: {e}, %c: {e}, %o: {e}):
      %s = arith.addf %a, %c : {e}
      linalg.yield %s : {e}
  }} -> tensor<{m}x{n}x{e}>"""


def linear_helper(fn: str, xshape: list[int], n: int, elt: str, has_bias: bool) -> str:
    """Text of a private func computing qc.linear with a [K, N] weight."""
    *lead, k = xshape
    m = 1
    for d in lead:
        m *= d
    xt = f"tensor<{'x'.join(map(str, xshape))}x{elt}>"
    yt = f"tensor<{'x'.join(map(str, lead + [n]))}x{elt}>"
    rank = len(xshape)
    if rank == 2:
        collapse, expand_src = "%x2 = tensor.cast %x : " + xt + " to " + xt, None
    else:
        groups = "[" + ", ".join(str(i) for i in range(rank - 1)) + f"], [{rank - 1}]"
        collapse = f"%x2 = tensor.collapse_shape %x [{groups}] : {xt} into tensor<{m}x{k}x{elt}>"
        expand_src = groups
    yname = "%y2" if has_bias else "%mm"
    if expand_src is None:
        expand = f"%y = tensor.cast {yname} : {yt} to {yt}"
    else:
        expand = (f"%y = tensor.expand_shape {yname} [{expand_src}] output_shape [{', '.join(map(str, lead + [n]))}]"
                  f" : tensor<{m}x{n}x{elt}> into {yt}")
    return _TEMPLATE.format(
        fn=fn, xt=xt, yt=yt, m=m, n=n, k=k, e=elt, collapse=collapse, expand=expand,
        bias_arg=f", %b: tensor<{n}x{elt}>" if has_bias else "",
        bias=_BIAS.format(m=m, n=n, e=elt) if has_bias else "",
    )


class LowerLinear(ModulePass):
    NAME = "qc-lower-linear"
    SUMMARY = "Lower qc.linear to linalg.matmul on a compile-time transposed [K, N] weight (FP32 path)"

    def run(self, module: ir.Operation, state: PassState) -> None:
        body = module.regions[0].blocks[0]
        helpers: dict[str, ir.Operation] = {}
        for op in walk_ops(module, "qc.linear"):
            x, w = op.operands[0], op.operands[1]
            wop = producer(w)
            if wop is None or wop.name != "qc.weight":
                raise QCError("qc.linear's weight must be a qc.weight to be lowered")
            xt, wt = ir.RankedTensorType(x.type), ir.RankedTensorType(w.type)
            n, k = wt.shape
            elt = str(wt.element_type)
            has_bias = len(op.operands) == 3
            fn = f"qc_linear_{'x'.join(map(str, xt.shape))}_{n}{'_bias' if has_bias else ''}_{elt}"
            if fn not in helpers:
                text = linear_helper(fn, list(xt.shape), n, elt, has_bias)
                parsed = ir.Module.parse(text, module.context)
                with ir.InsertionPoint(body):
                    helpers[fn] = parsed.body.operations[0].operation.clone()
            name = ir.FlatSymbolRefAttr(wop.attributes["name"]).value
            kn = f"{name}.kn"
            if name in state.store and kn not in state.store:
                state.store[kn] = state.store[name].T
            with ir.InsertionPoint(op), op.location:
                wkn = WeightOp(ir.RankedTensorType.get([k, n], wt.element_type), ir.FlatSymbolRefAttr.get(kn))
                args = [x, wkn.result] + ([op.operands[2]] if has_bias else [])
                call = func.CallOp([op.results[0].type], ir.FlatSymbolRefAttr.get(fn), args)
            op.results[0].replace_all_uses_with(call.results[0])
            op.erase()
