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

from dataclasses import dataclass
from typing import Callable, Sequence

from torch_mlir import ir
from torch_mlir.dialects import arith, func, linalg, tensor

from ..core.errors import QCError
from ..core.quant.packing import PanelLayout
from ..dialects.qc import LinearOp, WeightOp
from .base import ModulePass, Option, PassState, WeightReaders, ops_of
from .builders import f32_const, generic, reassociation, zero_pad
from .matchers import LAYOUT_ATTR, layout_attr, linear_weight_name, stored_weight

PANEL_MATMUL = "qc_panel_matmul"


@dataclass(frozen=True)
class PanelDims:
    """The loop dims of a panel contraction: (lead..., p, n, k)."""

    lead: list[ir.AffineExpr]
    p: ir.AffineExpr
    n: ir.AffineExpr
    k: ir.AffineExpr

    @staticmethod
    def of(rank: int) -> PanelDims:
        d = [ir.AffineDimExpr.get(i) for i in range(rank + 3)]
        return PanelDims(d[:rank], d[rank], d[rank + 1], d[rank + 2])

    def map(self, exprs: Sequence[ir.AffineExpr]) -> ir.AffineMap:
        return ir.AffineMap.get(len(self.lead) + 3, 0, list(exprs))


def floordiv(e: ir.AffineExpr, c: int) -> ir.AffineExpr:
    return ir.AffineExpr.get_floor_div(e, ir.AffineConstantExpr.get(c))


# A contraction operand: its value and its indexing over the panel dims.
Indexed = tuple[ir.Value, Callable[[PanelDims], Sequence[ir.AffineExpr]]]


def panel_helper(fn: str, xshape: list[int], layout: PanelLayout, has_bias: bool,
                 weights: list[tuple[ir.Type, Callable[[PanelDims], Sequence[ir.AffineExpr]]]],
                 body: Callable[[list[ir.Value]], ir.Value], library_call: str,
                 prelude: Callable[[ir.Value], list[Indexed]] | None = None,
                 source: ir.RankedTensorType | None = None, pieces: bool = False,
                 attributes: dict[str, ir.Attribute] | None = None) -> None:
    """A private func ``@fn(x, weights..., [b])`` at the insertion point: ``y = x (.) weights + b``
    accumulated in [..., P, width] panels, then flattened (and the padding sliced off).

    ``weights``: (tensor type, indexing over the panel dims) per weight operand; ``body``: the
    contraction generic's body from its block arguments (one per input, then one per weight, then
    the accumulator); ``prelude``: computes the inputs from the first argument (default: x itself,
    indexed (lead, k)), which is of type ``source`` when given (what x is gathered from), else x's.
    With ``pieces``, the prelude splits each row of x into rows (the last lead dim of ``xshape``)
    whose products are summed.  The contraction carries ``layout`` as ``qc.layout`` for the kernel
    pass, and ``attributes``."""
    *lead, k = xshape
    out_lead = lead[:-1] if pieces else lead
    n, width, panels = layout.n, layout.width, layout.panels
    r, ro = len(lead), len(out_lead)
    f32 = ir.F32Type.get()
    vec = lambda shape: ir.RankedTensorType.get(list(shape), f32)  # noqa: E731
    flat_t, y_t = vec(out_lead + [panels * width]), vec(out_lead + [n])
    in_types = [source or vec(xshape)] + [t for t, _ in weights] + ([vec([n])] if has_bias else [])
    helper = func.FuncOp(fn, (in_types, [y_t]), visibility="private")
    entry = helper.add_entry_block()
    d = PanelDims.of(r)
    with ir.InsertionPoint(entry):
        x, *ws = entry.arguments
        empty = tensor.empty(out_lead + [panels, width], f32)
        if has_bias:
            bias = ws.pop()
            if panels * width != n:
                bias = zero_pad(bias, [0], [panels * width - n])
            b2 = tensor.expand_shape(vec([panels, width]), bias, reassociation([[0, 1]]), [], [panels, width])
            dims = [ir.AffineDimExpr.get(i) for i in range(ro + 2)]
            loops = lambda exprs: ir.AffineMap.get(ro + 2, 0, exprs)  # noqa: E731
            acc = generic([b2], [empty], [loops(dims[ro:]), loops(dims)], lambda a: a[0])
        else:
            acc = linalg.fill(f32_const(0.0), outs=[empty])
        if pieces:  # the pieces' products start from zero; their sum starts from the bias
            total, acc = acc, linalg.fill(f32_const(0.0), outs=[tensor.empty(lead + [panels, width], f32)])
        inputs = prelude(x) if prelude else [(x, lambda dims: [*dims.lead, dims.k])]
        operands = [v for v, _ in inputs] + list(ws)
        maps = [d.map(index(d)) for _, index in inputs] + [d.map(index(d)) for _, index in weights]
        mm = generic(operands, [acc], maps + [d.map([*d.lead, d.p, d.n])], body, kinds="p" * (r + 2) + "r")
        contraction = mm.owner
        contraction.attributes["library_call"] = ir.StringAttr.get(library_call)
        contraction.attributes[LAYOUT_ATTR] = layout_attr(layout)
        for name, value in (attributes or {}).items():
            contraction.attributes[name] = value
        if pieces:  # total[.., p, n] += mm[.., piece, p, n], the piece innermost
            dims = [ir.AffineDimExpr.get(i) for i in range(ro + 3)]
            loops = lambda exprs: ir.AffineMap.get(ro + 3, 0, exprs)  # noqa: E731
            mm = generic([mm], [total], [loops(dims[:ro] + [dims[-1]] + dims[ro:-1]), loops(dims[:-1])],
                         lambda a: arith.addf(a[1], a[0]), kinds="p" * (ro + 2) + "r")
        flat = tensor.collapse_shape(flat_t, mm, reassociation([[i] for i in range(ro)] + [[ro, ro + 1]]))
        if panels * width != n:
            flat = tensor.extract_slice(y_t, flat, [], [], [], [0] * (ro + 1), out_lead + [n], [1] * (ro + 1))
        func.ReturnOp([flat])


def linear_helper(fn: str, xshape: list[int], layout: PanelLayout, has_bias: bool, weight_elt: ir.Type) -> None:
    """A private func computing an f32 qc.linear with a [P, K, width] packed weight (f32, or f16
    widened to f32 as it is read)."""

    def body(a: list[ir.Value]) -> ir.Value:
        x, w, acc = a
        if isinstance(weight_elt, ir.F16Type):
            w = arith.extf(ir.F32Type.get(), w)
        return arith.addf(acc, arith.mulf(x, w))

    weight = (ir.RankedTensorType.get(layout.weight_shape, weight_elt), lambda d: [d.p, d.k, d.n])
    panel_helper(fn, xshape, layout, has_bias, [weight], body, PANEL_MATMUL)


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
        readers = WeightReaders(module, state)
        for op in readers.grouped(ops_of(module, LinearOp), lambda op: linear_weight_name(op.operation)):
            x, w = op.input, op.weight
            wop, name = weight_name(w, "qc.linear's weight", op.location)
            xt, wt = ir.RankedTensorType(x.type), ir.RankedTensorType(w.type)
            if not isinstance(xt.element_type, ir.F32Type) or not isinstance(wt.element_type, (ir.F32Type, ir.F16Type)):
                raise QCError(f"qc.linear is lowered for f32 activations and f32 or f16 weights only, got "
                              f"{xt.element_type} x {wt.element_type}", op.location)
            n, k = wt.shape
            has_bias = op.bias is not None
            half = isinstance(wt.element_type, ir.F16Type)
            layout = PanelLayout.of_floats(n, k, width, 16 if half else 32)
            fn = f"qc_linear_{'x'.join(map(str, xt.shape))}_{n}_p{layout.width}{'_bias' if has_bias else ''}" + (
                "_f16" if half else "")
            if fn not in helpers:
                with ir.InsertionPoint(body), op.location:
                    linear_helper(fn, list(xt.shape), layout, has_bias, wt.element_type)
                helpers.add(fn)
            packed = f"{name}.p{layout.width}"
            if name in state.store and packed not in state.store:
                state.store[packed] = layout.weights(state.store[name])
            with ir.InsertionPoint(op), op.location:
                wp = WeightOp(ir.RankedTensorType.get(layout.weight_shape, wt.element_type),
                              ir.FlatSymbolRefAttr.get(packed))
                args = [x, wp.result] + ([op.bias] if has_bias else [])
                call = func.CallOp([op.result.type], ir.FlatSymbolRefAttr.get(fn), args)
            op.result.replace_all_uses_with(call.results[0])
            op.erase()
            readers.erase(wop, name)
