"""qc-gpu-attention: a decode step's attention over its KV cache -> one CUDA kernel that reads only the entries
before ``pos`` (passes/kernels/attention.py is the CPU kernel, whose docstring gives the arithmetic).

qc-fuse-cached-attention{gpu} finds the attention before bufferization and leaves a call of a declared function
that names it (a ``gpu.launch`` would not get through bufferization's deallocation pipeline); after bufferization
this pass builds the kernel in place of the call:

    func.func private @qc_gpu_attn_0(memref<8x1x64xf32, ..>, ...) attributes {qc.gpu_attention}
    func.call @qc_gpu_attn_0(%q, %k, %v, %new, %v_new, %pos, %out, %scratch) {qc.scale = 0.125 : f32}
becomes
    gpu.launch blocks(%h, %r, %z) in (8, 1, 1) threads(%lane, %warp, %z1) in (32, 8, 1)
               workgroup(%red : memref<16xf32, #gpu.address_space<workgroup>>, %part : memref<4x64xf32, ...>) {
      ... the attention of KV head %h's query row %r, below ...
    }

A block per (KV head h, query row r), 32 x 8 threads (t = their linear id, 256 in all), L = clamp(pos, 0, C):

    scores:   s[j] = scale * sum_d q[h, r, d] K[h, d, j]   j = t, t + 256, ... < L   (a warp reads 32
              consecutive keys of each row d: keys are cached [D, C]) -> scratch[h, r, j]; m = the block's
              max of them and of this step's own scores new[h, r, :] (warp shuffles, then the 8 warps'
              maxima through workgroup memory)
    weights:  e[j] = exp(s[j] - m) in place; z = the block's sum of them and of exp(new[h, r, :] - m)
    values:   thread t takes d = t mod D and every G-th position from g = t / D (G = 256 / D): a warp reads
              consecutive d of a value row; the G partial sums meet in workgroup memory and the first D
              threads write out[h, r, d] = sum / z

f16 caches are widened as they are read, an int8 cache's codes scaled by their position's scale.  Entries at
L and beyond are never read, in prefill chunks as in decode steps.  Heads whose D does not divide 256 are left
to the plain ops.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import arith, func, gpu, math, memref

from .base import ModulePass, PassState, walk_ops
from .gpu_map import WARP, new_launch, warp_all
from .kernels.attention import CachedAttention
from .kernels.builder import BodyBuilder, f32

THREADS = 256
WARPS = THREADS // WARP
MAX_ROWS = 4096  # queries per KV head taken (a block each, so prefill chunks too: no register tile to fit)
ATTENTION_ATTR = "qc.gpu_attention"  # on the declaration qc-fuse-cached-attention{gpu} calls
SCALE_ATTR = "qc.scale"  # on the call: the scores' scale


def fits(a: CachedAttention) -> bool:
    return THREADS % a.head == 0


class _Kernel(BodyBuilder):
    """The body of one launch, built at the insertion point inside it."""

    def __init__(self, entry: ir.Block, a: CachedAttention, operands: list[ir.Value], red: ir.Value, part: ir.Value):
        super().__init__(entry)
        self.a, self.red, self.part = a, red, part
        self.q, self.k, self.v, self.new, self.v_new, self.pos, *scales, self.out, self.scratch = operands
        self.k_scale, self.v_scale, self.v_new_scale = scales or (None, None, None)

    def widened(self, ref: ir.Value, idx: list) -> ir.Value:
        x = self.scalar(ref, idx)
        return {"f16": lambda: arith.extf(f32(), x), "i8": lambda: arith.sitofp(f32(), x)}.get(self.a.cache, lambda: x)()

    def scaled(self, w: ir.Value, ref: ir.Value | None, h: ir.Value, j: ir.Value) -> ir.Value:
        """``w`` times an int8 cache's scale of position ``j``, or as it is."""
        return w if ref is None else arith.mulf(w, self.scalar(ref, [h, 0, j]))

    def block_reduce(self, value: ir.Value, combine, slots: int, lane: ir.Value, warp: ir.Value) -> ir.Value:
        """``value`` combined over the block's threads (every thread gets the result): each warp by xor
        shuffles, then the warps' results through workgroup memory slots ``slots``, ``slots + 1``, ..."""
        value = warp_all(value, combine, lambda n: self.int(32, n))
        with self.when(arith.cmpi(arith.CmpIPredicate.eq, lane, self.index(0))):
            memref.store(value, self.red, [self.add(warp, slots)])
        gpu.barrier()
        total = memref.load(self.red, [self.index(slots)])
        for w in range(1, WARPS):
            total = combine(total, memref.load(self.red, [self.index(slots + w)]))
        return total

    def build(self) -> None:
        a, args = self.a, self.entry.arguments
        h, r, lane, warp = args[0], args[1], args[3], args[4]
        t = self.add(self.mul(warp, WARP), lane)
        pos = self.scalar(self.pos, [0])
        valid = arith.index_cast(ir.IndexType.get(),
                                 arith.minsi(arith.maxsi(pos, self.int(64, 0)), self.int(64, a.context)))

        # scores of the cached keys, into the scratch row; the block's maximum with this step's own scores
        with self.loop(t, valid, THREADS, [self.float(float("-inf"))]) as js:
            with self.loop(0, a.head, 1, [self.float(0.0)]) as ds:
                ds.carry([math.fma(self.scalar(self.q, [h, r, ds.iv]), self.widened(self.k, [h, ds.iv, js.iv]),
                                   ds.args[0])])
            s = self.scaled(arith.mulf(ds.results[0], self.float(a.scale)), self.k_scale, h, js.iv)
            memref.store(s, self.scratch, [h, r, js.iv])
            js.carry([arith.maximumf(js.args[0], s)])
        with self.loop(t, a.new, THREADS, js.results) as ts:
            ts.carry([arith.maximumf(ts.args[0], self.scalar(self.new, [h, r, ts.iv]))])
        top = self.block_reduce(ts.results[0], arith.maximumf, 0, lane, warp)

        # the exponentials in place, and the block's sum of them with this step's own
        with self.loop(t, valid, THREADS, [self.float(0.0)]) as js:
            e = math.exp(arith.subf(self.scalar(self.scratch, [h, r, js.iv]), top))
            memref.store(e, self.scratch, [h, r, js.iv])
            js.carry([arith.addf(js.args[0], e)])
        with self.loop(t, a.new, THREADS, js.results) as ts:
            ts.carry([arith.addf(ts.args[0], math.exp(arith.subf(self.scalar(self.new, [h, r, ts.iv]), top)))])
        total = self.block_reduce(ts.results[0], arith.addf, WARPS, lane, warp)  # (its barrier: the weights written)

        # the weighted values: column d, every G-th position from g
        groups = THREADS // a.head
        d, g = arith.remui(t, self.index(a.head)), arith.divui(t, self.index(a.head))
        with self.loop(g, valid, groups, [self.float(0.0)]) as js:
            w = self.scaled(self.scalar(self.scratch, [h, r, js.iv]), self.v_scale, h, js.iv)
            js.carry([math.fma(w, self.widened(self.v, [h, js.iv, d]), js.args[0])])
        with self.loop(g, a.new, groups, js.results) as ts:
            w = self.scaled(math.exp(arith.subf(self.scalar(self.new, [h, r, ts.iv]), top)), self.v_new_scale, h, ts.iv)
            ts.carry([math.fma(w, self.scalar(self.v_new, [h, ts.iv, d]), ts.args[0])])
        memref.store(ts.results[0], self.part, [g, d])
        gpu.barrier()
        with self.when(arith.cmpi(arith.CmpIPredicate.ult, t, self.index(a.head))):
            acc = memref.load(self.part, [self.index(0), d])
            for k in range(1, groups):
                acc = arith.addf(acc, memref.load(self.part, [self.index(k), d]))
            memref.store(arith.divf(acc, total), self.out, [h, r, d])


def declare(name: str, a: CachedAttention) -> func.FuncOp:
    """The declaration ``@name`` of the attention ``a`` (at the insertion point), which calls of it stand for."""
    decl = func.FuncOp(name, (list(a.types), []), visibility="private")
    decl.attributes[ATTENTION_ATTR] = ir.UnitAttr.get()
    return decl


def spec_of(call: ir.Operation) -> CachedAttention:
    """The attention a call of a ``qc.gpu_attention`` declaration computes, from its operands' types."""
    types = tuple(v.type for v in call.operands)
    (heads, rows, head), context = ir.MemRefType(types[0]).shape, ir.MemRefType(types[1]).shape[2]
    elt = ir.MemRefType(types[1]).element_type
    cache = "f16" if isinstance(elt, ir.F16Type) else "i8" if isinstance(elt, ir.IntegerType) else "f32"
    return CachedAttention(heads, rows, head, context, ir.MemRefType(types[3]).shape[2],
                           ir.FloatAttr(call.attributes[SCALE_ATTR]).value, cache, types)


def launch(a: CachedAttention, operands: list[ir.Value]) -> None:
    """The kernel of ``a`` over ``operands`` (q, k, v, new, v_new, pos, [k, v, new v scales,] out, scratch: memrefs
    as ``a.types``), a gpu.launch at the insertion point: the warps' maxima and sums, and the values' partial sums
    in workgroup memory."""
    with new_launch((a.heads, a.rows, 1), (WARP, WARPS, 1), [(2 * WARPS,), (THREADS // a.head, a.head)]) \
            as (entry, (red, part)):
        _Kernel(entry, a, operands, red, part).build()


class GpuAttention(ModulePass):
    NAME = "qc-gpu-attention"
    SUMMARY = "Calls of qc-fuse-cached-attention{gpu}'s declarations -> CUDA kernels reading the cache before pos"

    def run(self, module: ir.Operation, state: PassState) -> None:
        body = module.regions[0].blocks[0]
        declared = {ir.StringAttr(op.attributes["sym_name"]).value: op.operation for op in body.operations
                    if op.operation.name == "func.func" and ATTENTION_ATTR in op.operation.attributes}
        for call in walk_ops(module, "func.call"):
            if ir.FlatSymbolRefAttr(call.attributes["callee"]).value in declared:
                with ir.InsertionPoint(call), call.location:
                    launch(spec_of(call), list(call.operands))
                call.erase()
        for decl in declared.values():
            decl.erase()
