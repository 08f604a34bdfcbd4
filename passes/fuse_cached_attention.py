"""qc-fuse-cached-attention: a decode step's attention over its KV cache -> one kernel per layer that
reads only the cache entries before ``pos``.

A decoder step (``models/llama2c.build_torch_llama_step``) masks its cache by position, so as plain
tensors every step reads the cache's whole capacity C, whatever ``pos`` is:

    %s   = linalg.batch_matmul ins(%q, %k_cache : [H, R, D], [H, D, C])   (f16 / int8 caches: widened first)
    %ss  = linalg.generic {mulf %s, scale}                   (int8: then by the keys' scales [H, 1, C])
    %m   = linalg.generic {cmpi slt, linalg.index 0, %pos} -> expand_shape [1, 1, C]
    %old = linalg.generic {select %m, %ss, -inf}
    %all = tensor.concat dim(2) %old, %new : [H, R, C], [H, R, T]               (%new: this step's scores)
    %p   = softmax of %all over dim 2 (max, subf, exp, sum, divf)
    %o   = addf(batch_matmul(%p[.., :C], %v_cache), batch_matmul(%p[.., C:], %v_new))
                                             (int8: each part of %p times its values' scales first)

becomes

    %out = memref.alloc() : [H, R, D] ;  %scratch = memref.alloc() : [H, R, C]
    func.call @qc_attn_par_N(to_buffer(%q, %k_cache, %v_cache, %new, %v_new, %pos [, scales]), %out, %scratch)
    %o   = bufferization.to_tensor %out restrict

where ``@qc_attn_par_N`` is a trampoline (passes/trampoline.py) splitting the KV heads over the
thread pool, each running ``@qc_attn_N`` (passes/kernels/attention.py): scores, softmax and the
weighted values of the first ``clamp(pos, 0, C)`` cache entries and this step's T, in one pass over
the keys and one over the values.  With ``gpu``, the call is of a declaration ``@qc_gpu_attn_N``
(``qc.gpu_attention``; the scale on the call) that qc-gpu-attention makes a CUDA kernel after
bufferization (heads whose size does not divide its 256 threads are left to the plain ops).  The scores of this step's own tokens (causally masked) stay as
they were.  Declined, and left to the matmul kernels: more queries per KV head than ``max-rows``
(a prefill chunk: a matmul's work, not a vector's), a mask that is not ``j < pos`` over the cache, and
intermediate values read elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch_mlir import ir
from torch_mlir.dialects import bufferization, func, memref

from . import gpu_attention
from .base import ModulePass, Option, PassState, parse_bool, walk_ops
from .kernels import attention
from .matchers import (body_ops, constant_float, default_maps, erase_dead_ops, indexing_maps, is_zero_fill,
                       iterator_types, producer, single_user, view_source)
from .trampoline import declare


def _generic_body(op: ir.Operation | None) -> list[str]:
    """The op names of a linalg.generic's body (empty for anything else)."""
    return [o.name for o in body_ops(op)] if op is not None and op.name == "linalg.generic" else []


def _in_order(op: ir.Operation, body: list[str]) -> bool:
    """A linalg.generic whose body is ``body`` and whose first body op takes the block's arguments in order
    (``subf(x, m)``, not ``subf(m, x)``)."""
    if _generic_body(op) != body:
        return False
    first, args = body_ops(op)[0], list(op.regions[0].blocks[0].arguments)
    return list(first.operands) == args[:len(first.operands)]


def _through(value: ir.Value) -> ir.Operation | None:
    """The producer of ``value`` past any ``tensor.expand_shape``."""
    return producer(view_source(value, ("tensor.expand_shape",)))


def _float_of(value: ir.Value) -> float | None:
    """A scalar float constant, possibly rounded from f64 (``arith.truncf`` of an ``arith.constant``)."""
    op = producer(value)
    return constant_float(op.operands[0] if op is not None and op.name == "arith.truncf" else value)


def _is_neg_inf(value: ir.Value) -> bool:
    op = producer(value)
    if op is None or op.name != "arith.constant":
        return False
    attr = op.attributes["value"]
    if isinstance(attr, ir.DenseElementsAttr) and attr.is_splat:
        attr = attr.get_splat_value()
    return isinstance(attr, ir.FloatAttr) and ir.FloatAttr(attr).value == float("-inf")


def _widened(value: ir.Value) -> tuple[ir.Value, str]:
    """The cache that ``value`` widens element by element (an identity ``extf`` of f16 or ``sitofp`` of int8
    generic) and its element type, or ``value`` itself ("f32")."""
    op = producer(value)
    body = _generic_body(op)
    if len(body) == 2 and body[0] in ("arith.extf", "arith.sitofp") and len(op.operands) == 2:
        elt = ir.RankedTensorType(op.operands[0].type).element_type
        if isinstance(elt, ir.F16Type) or isinstance(elt, ir.IntegerType) and ir.IntegerType(elt).width == 8:
            return op.operands[0], "f16" if isinstance(elt, ir.F16Type) else "i8"
    return value, "f32" if isinstance(ir.RankedTensorType(value.type).element_type, ir.F32Type) else ""


def _position_scales(op: ir.Operation | None) -> ir.Value | None:
    """The [H, 1, n] scales, one per position, by which ``op`` multiplies its [H, R, n] input (an int8 cache's
    keys or values), else None."""
    if op is None or not _in_order(op, ["arith.mulf", "linalg.yield"]) or len(op.operands) != 3 \
            or str(indexing_maps(op)[1]) != "(d0, d1, d2) -> (d0, 0, d2)":
        return None
    return op.operands[1]


def _prefix_mask(mask: ir.Value) -> ir.Value | None:
    """``pos`` (a tensor<1xi64>) when ``mask`` is ``j < pos`` over its last dim, else None."""
    cmp = _through(mask)
    if _generic_body(cmp) != ["arith.cmpi", "linalg.yield"] or len(cmp.operands) != 3:
        return None
    pred = body_ops(cmp)[0]
    block = cmp.regions[0].blocks[0]
    if str(pred.attributes["predicate"]) != "2 : i64" or list(pred.operands) != list(block.arguments)[:2]:
        return None  # 2: slt
    iota, pos = producer(cmp.operands[0]), cmp.operands[1]
    if _generic_body(iota) != ["linalg.index", "arith.index_cast", "linalg.yield"]:
        return None
    if ir.RankedTensorType(pos.type).shape != [1] or str(indexing_maps(cmp)[1]) != "(d0) -> (0)":
        return None
    return pos


@dataclass
class Match:
    """A cached attention found: its operands (tensors), result and shapes."""

    # q [H, R, D] (queries grouped by KV head), keys cached transposed [H, D, C] and values [H, C, D] (f32, f16 or
    # int8 codes), this step's own scores [H, R, T] (scaled and masked) and values [H, T, D] (f32), pos
    # (tensor<1xi64>); with int8 caches, the key, value and new value scales ([H, 1, C], [H, 1, C], [H, 1, T])
    inputs: tuple
    result: ir.Value   # [H, R, D]
    spec: attention.CachedAttention


def match(select: ir.Operation, max_rows: int) -> Match | str:
    """The cached attention that ``select`` (a masked score generic) belongs to, or why there is none."""
    block = select.regions[0].blocks[0]
    sel = body_ops(select)[0]
    if list(sel.operands) != list(block.arguments)[:3] or len(select.operands) != 4:
        return "not select(mask, scores, fill)"
    mask, scaled, fill = select.operands[:3]
    pos = _prefix_mask(mask)
    if pos is None:
        return "the mask is not j < pos over the cache"
    if not _is_neg_inf(fill):
        return "masked scores are not -inf"
    if str(indexing_maps(select)[0]) != "(d0, d1, d2) -> (0, 0, d2)":
        return "the mask is not broadcast over heads and queries"
    scale_op = producer(scaled)
    k_scale = _position_scales(scale_op)
    if k_scale is not None:  # an int8 cache's key scales
        if single_user(scale_op.operands[0]) is None:
            return "the scores are read elsewhere"
        scale_op = producer(scale_op.operands[0])
    if _generic_body(scale_op)[-2:] != ["arith.mulf", "linalg.yield"] or len(scale_op.operands) != 2:
        return "the masked scores are not a scaled product"
    mul = body_ops(scale_op)[-2]
    scale = _float_of(mul.operands[1])
    if mul.operands[0] != scale_op.regions[0].blocks[0].arguments[0] or scale is None:
        return "the scores are not scaled by a constant"
    qk = producer(scale_op.operands[0])
    if qk is None or qk.name != "linalg.batch_matmul" or not default_maps(qk) or not is_zero_fill(qk.operands[2]):
        return "the scores are not a batch_matmul from zero"
    q, keys = qk.operands[0], qk.operands[1]
    k_cache, cache = _widened(keys)
    h, r, d = ir.RankedTensorType(q.type).shape
    c = ir.RankedTensorType(keys.type).shape[2]
    if r > max_rows:
        return f"{r} queries per KV head (a prefill chunk): more than max-rows={max_rows}"
    if any(single_user(x.result) is None for x in (qk, scale_op, select)):
        return "the scores are read elsewhere"

    concat = single_user(select.result)
    if concat is None or concat.name != "tensor.concat" or len(concat.operands) != 2 \
            or concat.operands[0] != select.result or ir.IntegerAttr(concat.attributes["dim"]).value != 2:
        return "the masked scores are not concatenated with this step's along the context"
    new = concat.operands[1]
    t = ir.RankedTensorType(new.type).shape[2]
    every = list(concat.result.uses)
    sub = next((u.owner.operation for u in every if _in_order(u.owner.operation, ["arith.subf", "linalg.yield"])), None)
    top = next((u.owner.operation for u in every if u.owner.operation != sub), None)
    if len(every) != 2 or sub is None or top is None or iterator_types(top) != ["parallel", "parallel", "reduction"] \
            or "arith.maximumf" not in _generic_body(top) or _through(sub.operands[1]) != top:
        return "the scores' softmax is not max, subtract"
    exp = single_user(sub.result)
    if _generic_body(exp) != ["math.exp", "linalg.yield"]:
        return "the softmax has no exp"
    e_users = [u.owner.operation for u in exp.result.uses]
    div = next((u for u in e_users
                if _in_order(u, ["arith.divf", "linalg.yield"]) and u.operands[0] == exp.result), None)
    total = next((u for u in e_users if u != div), None)
    if len(e_users) != 2 or div is None or total is None or _generic_body(total) != ["arith.addf", "linalg.yield"] \
            or not is_zero_fill(total.operands[1]) or _through(div.operands[1]) != total:
        return "the softmax is not exp / sum"
    slices = [u.owner.operation for u in div.result.uses]
    if len(slices) != 2 or any(s.name != "tensor.extract_slice" for s in slices):
        return "the probabilities are not split into the cache's and the step's"
    slices.sort(key=lambda s: ir.DenseI64ArrayAttr(s.attributes["static_offsets"])[2])
    if [tuple(list(ir.DenseI64ArrayAttr(x.attributes[a])) for a in ("static_offsets", "static_sizes", "static_strides"))
            for x in slices] != [([0, 0, 0], [h, r, c], [1, 1, 1]), ([0, 0, c], [h, r, t], [1, 1, 1])]:
        return "the probabilities are not split at the cache's end"
    weights, v_scales = [], []
    for piece in slices:  # an int8 cache's values scale their probabilities
        scaling = single_user(piece.result)
        v_scales.append(_position_scales(scaling))
        weights.append(scaling.result if v_scales[-1] is not None else piece.result)
    products = [single_user(w) for w in weights]
    if any(p is None or p.name != "linalg.batch_matmul" or not default_maps(p) or p.operands[0] != w
           or not is_zero_fill(p.operands[2]) for p, w in zip(products, weights)):
        return "the probabilities do not weigh the values"
    v_new = products[1].operands[1]
    v_cache, v_kind = _widened(products[0].operands[1])
    add = single_user(products[0].result)
    if not _in_order(add, ["arith.addf", "linalg.yield"]) or single_user(products[1].result) != add:
        return "the weighted values are not summed"
    if not cache or v_kind != cache:
        return "the caches are not both f32, f16 or int8"
    scales = (k_scale, *v_scales)
    present = [x is not None for x in scales]
    if cache == "i8" and not all(present) or cache != "i8" and any(present):
        return "an int8 cache without its scales per position, or scales on another cache"
    inputs = (q, k_cache, v_cache, new, v_new, pos, *(scales if cache == "i8" else ()))
    types = tuple(_buffer_type(x) for x in inputs) + (ir.MemRefType.get([h, r, d], ir.F32Type.get()),
                                                      ir.MemRefType.get([h, r, c], ir.F32Type.get()))
    return Match(inputs, add.result, attention.CachedAttention(h, r, d, c, t, scale, cache, types))


def _buffer_type(value: ir.Value) -> ir.MemRefType:
    """A memref of ``value``'s tensor type with any strides (the last one 1) and offset."""
    t = ir.RankedTensorType(value.type)
    dyn = ir.ShapedType.get_dynamic_stride_or_offset()
    strides = [dyn] * (t.rank - 1) + [1] if t.rank > 1 else [dyn]
    return ir.MemRefType.get(t.shape, t.element_type, ir.StridedLayoutAttr.get(dyn, strides))


class FuseCachedAttention(ModulePass):
    NAME = "qc-fuse-cached-attention"
    SUMMARY = "Fuse a decode step's attention over its KV cache into one kernel that reads only the entries before pos"
    OPTIONS = {
        "vector-width": Option(int, 16, "f32 lanes per vector of the kernels"),
        "rows": Option(int, 12, "query rows whose accumulators fit the register file"),
        "max-rows": Option(int, 16, "most queries per KV head fused (more: a prefill chunk, left to the matmuls)"),
        "gpu": Option(parse_bool, False, "a CUDA kernel (passes/gpu_attention.py) instead of the CPU one"),
    }

    def run(self, module: ir.Operation, state: PassState) -> None:
        body = module.regions[0].blocks[0]
        kernels: dict[tuple, str] = {}
        taken = {ir.StringAttr(op.attributes["sym_name"]).value
                 for op in body.operations if "sym_name" in op.attributes}
        selects = [op for op in walk_ops(module, "linalg.generic")  # on tensors, with an i1 mask
                   if _generic_body(op) == ["arith.select", "linalg.yield"]
                   and isinstance(op.operands[0].type, ir.RankedTensorType)
                   and isinstance(ir.RankedTensorType(op.operands[0].type).element_type, ir.IntegerType)]
        for select in selects:
            with select.location:
                found = match(select, self.options["max-rows"])
                if isinstance(found, str) or self.options["gpu"] and not gpu_attention.fits(found.spec):
                    continue
                self._rewrite(found, body, kernels, taken)
        if kernels:
            erase_dead_ops(module)

    def _rewrite(self, m: Match, body: ir.Block, kernels: dict[tuple, str], taken: set[str]) -> None:
        """``m`` as a call of the CPU kernel's trampoline, or of a ``qc.gpu_attention`` declaration (GPU targets:
        qc-gpu-attention makes the kernel after bufferization)."""
        spec, gpu = m.spec, self.options["gpu"]
        if spec.key not in kernels:
            prefix = "qc_gpu_attn" if gpu else "qc_attn"
            name = next(n for n in (f"{prefix}_{i}" for i in range(len(taken) + 1)) if n not in taken)
            taken.update((name, f"{name}_par"))
            with ir.InsertionPoint(body):
                if gpu:
                    gpu_attention.declare(name, spec)
                else:
                    attention.build(name, spec, self.options["vector-width"], self.options["rows"])
                    declare(f"{name}_par", name, list(spec.types), spec.heads)
            kernels[spec.key] = name if gpu else f"{name}_par"
        with ir.InsertionPoint(m.result.owner):
            buffers = [bufferization.to_buffer(t, x, read_only=True) for t, x in zip(spec.types, m.inputs)]
            out, scratch = (memref.alloc(t, [], []) for t in spec.types[-2:])
            call = func.CallOp([], ir.FlatSymbolRefAttr.get(kernels[spec.key]), [*buffers, out, scratch])
            if gpu:
                call.attributes[gpu_attention.SCALE_ATTR] = ir.FloatAttr.get(ir.F32Type.get(), spec.scale)
            result = bufferization.to_tensor(ir.RankedTensorType(m.result.type), out, restrict=True)
        m.result.replace_all_uses_with(result)
