"""qc-gpu-reduce: a row reduction (softmax's max and sum, a norm's mean and variance, a mean pool over the
last dim) -> a CUDA kernel with a warp per output row, its lanes reading the row's consecutive elements.

After qc-gpu-map a reduction runs one thread per output over the whole row: the threads of a warp read
32 different rows (a line each), and a layer norm's 128 rows keep 128 threads busy.  A bufferized
linalg.generic whose last loop is its only reduction, read contiguously, with one output combined by
``addf``, ``mulf``, ``maximumf``, ``minimumf``, ``maxnumf`` or ``minnumf``,

    linalg.generic {iterator_types = ["parallel", "parallel", "reduction"]}
        ins(%x : memref<2x37x96xf32>) outs(%sum : memref<2x37x1xf32>) {
      ^bb0(%in: f32, %out: f32):
        %sq = arith.mulf %in, %in : f32
        %s = arith.addf %sq, %out : f32
        linalg.yield %s : f32
    }

becomes a block per 8 rows, 32 x 8 threads (lane, warp):

    gpu.launch blocks(%b, ...) in (10, 1, 1) threads(%lane, %warp, ...) in (32, 8, 1) {
      %row = %b * 8 + %warp
      scf.if %row < 74 {                                // whole warps: the shuffles see every lane
        %i, %j = %row floordiv 37, %row mod 37
        %part = scf.for %k = %lane to 96 step 32 iter_args(%a = -0.0) {   // the combiner's identity
          %in = memref.load %x[%i, %j, %k]              // a warp reads 32 consecutive floats
          %sq = arith.mulf %in, %in
          scf.yield (arith.addf %sq, %a)
        }
        %t = %part + shuffle xor 16, 8, 4, 2, 1          // a butterfly: every lane holds the row's total
        scf.if %lane == 0 { %sum[%i, %j, 0] = arith.addf %t, %sum[%i, %j, 0] }
      }
    }

The row's elements are combined in another order than the generic's (a lane's share, then the tree),
as any parallel reduction does.  Declined, with the reason: several reduction dims or outputs, a reduced
dim that is not the innermost of every input that reads it (the lanes would not read consecutive
elements), rows shorter than a warp, other element types or combiners.  Those stay on qc-gpu-map.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass

from torch_mlir import ir
from torch_mlir.dialects import affine, arith, memref

from .base import ModulePass, Option, PassState, walk_ops
from .gpu_map import WARP, delinearize, new_launch, warp_all
from .kernels.builder import BodyBuilder
from .matchers import identity_layout, indexing_maps, iterator_types, library_call, num_outputs

# The combiners a row reduction may end in, with their identities (a lane's starting value).
COMBINERS = {arith.AddFOp: -0.0, arith.MulFOp: 1.0, arith.MaximumFOp: -math.inf, arith.MinimumFOp: math.inf,
             arith.MaxNumFOp: -math.inf, arith.MinNumFOp: math.inf}


@dataclass
class RowReduction:
    """A linalg.generic that reduces its last loop dim into one output."""

    op: ir.Operation
    rows: list[int]  # the trip counts of the parallel dims
    length: int  # of the reduced dim
    combiner: ir.OpView  # the body's last op, of a type in COMBINERS: the output and ``value`` combined
    value: ir.Value  # what the body combines into the output
    out_first: bool  # the output is the combiner's first operand


def _loop_ranges(op: ir.Operation, maps: list[ir.AffineMap]) -> list[int] | None:
    """Each loop dim's trip count, read off an operand dim that the loop indexes directly."""
    counts: list[int | None] = [None] * maps[0].n_dims
    for value, m in zip(op.operands, maps):
        shape = ir.MemRefType(value.type).shape
        for pos, expr in enumerate(m.results):
            expr = expr.maybe_downcast()
            if isinstance(expr, ir.AffineDimExpr) and counts[expr.position] is None:
                counts[expr.position] = shape[pos]
    return None if None in counts or any(c < 0 for c in counts) else counts


def _dims(expr: ir.AffineExpr) -> set[int]:
    """The loop dims ``expr`` reads."""
    expr = expr.maybe_downcast()
    if isinstance(expr, ir.AffineDimExpr):
        return {expr.position}
    if isinstance(expr, ir.AffineBinaryExpr):
        return _dims(expr.lhs) | _dims(expr.rhs)
    return set()


def _reads_last_innermost(m: ir.AffineMap, last: int) -> bool | None:
    """Whether a map reads loop dim ``last`` as its innermost result and nowhere else (None: not at all)."""
    uses = [last in _dims(e) for e in m.results]
    if not any(uses):
        return None
    inner = m.results[-1].maybe_downcast()
    return uses[-1] and not any(uses[:-1]) and isinstance(inner, ir.AffineDimExpr) and inner.position == last


def match_row_reduction(op: ir.Operation) -> RowReduction | str:
    """``op`` as a row reduction, or why it is not one."""
    kinds = iterator_types(op)
    if kinds[-1] != "reduction" or kinds.count("reduction") != 1:
        return "the reduction is not exactly the last loop dim"
    if library_call(op) is not None or num_outputs(op) != 1:
        return "not a plain generic with one output"
    if not all(isinstance(v.type, ir.MemRefType) and ir.MemRefType(v.type).has_static_shape for v in op.operands):
        return "operands are not static memrefs"
    maps, last = indexing_maps(op), len(kinds) - 1
    counts = _loop_ranges(op, maps)
    if counts is None:
        return "loop bounds are not all static"
    if _reads_last_innermost(maps[-1], last) is not None:
        return "the output is indexed by the reduced dim"
    for n, (value, m) in enumerate(zip(op.operands[:-1], maps[:-1])):
        reads = _reads_last_innermost(m, last)
        if reads is False or (reads and not identity_layout(ir.MemRefType(value.type))):
            return f"input {n} is not read along its innermost dim: a warp's lanes would not read consecutive elements"
    if counts[last] < WARP:
        return f"rows of {counts[last]} elements: fewer than a warp's {WARP} lanes"
    block = op.regions[0].blocks[0]
    out = block.arguments[len(block.arguments) - 1]
    if not isinstance(out.type, ir.F32Type):
        return "not an f32 reduction"
    body = list(block.operations)
    comb = body[-2].opview if len(body) > 1 else None
    if (type(comb) not in COMBINERS or body[-1].operands[0] != comb.result or len(list(out.uses)) != 1
            or out not in list(comb.operands)):
        return "the body does not end in one addf / mulf / maximumf / minimumf / maxnumf / minnumf of the output"
    out_first = comb.operands[0] == out
    return RowReduction(op, counts[:-1], counts[last], comb, comb.operands[1 if out_first else 0], out_first)


class _Kernel(BodyBuilder):
    """The body of one launch, built at the insertion point inside it."""

    def __init__(self, entry: ir.Block, r: RowReduction):
        super().__init__(entry)
        self.r = r

    def indices(self, m: ir.AffineMap, ivs: list[ir.Value]) -> list[ir.Value]:
        """``m``'s results at loop indices ``ivs``."""
        out = []
        for expr in m.results:
            expr = expr.maybe_downcast()
            if isinstance(expr, ir.AffineDimExpr):
                out.append(ivs[expr.position])
            elif isinstance(expr, ir.AffineConstantExpr):
                out.append(self.index(expr.value))
            else:
                out.append(affine.apply(ir.AffineMap.get(m.n_dims, 0, [expr]), ivs))
        return out

    def combine(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return type(self.r.combiner)(a, b).result

    def element(self, ivs: list[ir.Value]) -> ir.Value:
        """The body's value at loop indices ``ivs``: its inputs loaded, its ops up to the combiner cloned."""
        op, maps = self.r.op, indexing_maps(self.r.op)
        block = op.regions[0].blocks[0]
        mapping = {arg: memref.load(value, self.indices(m, ivs))
                   for arg, value, m in zip(list(block.arguments)[:-1], op.operands[:-1], maps)}
        for inner in list(block.operations)[:-2]:  # up to the combiner and the yield
            if inner.name == "linalg.index":
                mapping[inner.results[0]] = ivs[ir.IntegerAttr(inner.attributes["dim"]).value]
                continue
            clone = inner.operation.clone()
            for n, value in enumerate(clone.operands):
                if value in mapping:
                    clone.operands[n] = mapping[value]
            for old, new in zip(inner.results, clone.results):
                mapping[old] = new
        return mapping.get(self.r.value, self.r.value)

    def build(self, warps: int) -> None:
        r, args = self.r, self.entry.arguments
        block_id, lane, warp = args[0], args[3], args[4]
        rows = math.prod(r.rows)
        row = self.add(self.mul(block_id, warps), warp)
        with self.when(arith.cmpi(arith.CmpIPredicate.ult, row, self.index(rows))) if rows % warps else nullcontext():
            self.row(row, lane)

    def row(self, row: ir.Value, lane: ir.Value) -> None:
        """Output row ``row``, reduced by the warp whose lane this is."""
        r = self.r
        ivs = delinearize(row, r.rows, self.index)
        with self.loop(lane, r.length, WARP, [self.float(COMBINERS[type(r.combiner)])]) as ks:
            ks.carry([self.combine(self.element(ivs + [ks.iv]), ks.args[0])])
        total = warp_all(ks.results[0], self.combine, lambda n: self.int(32, n))
        with self.when(arith.cmpi(arith.CmpIPredicate.eq, lane, self.index(0))):
            out_ref = r.op.operands[-1]
            at = self.indices(indexing_maps(r.op)[-1], ivs + [self.index(0)])
            old = memref.load(out_ref, at)
            memref.store(self.combine(old, total) if r.out_first else self.combine(total, old), out_ref, at)


def launch(r: RowReduction, warps: int) -> None:
    """``r.op`` as a gpu.launch built before it, erased."""
    op, warps = r.op, min(warps, math.prod(r.rows))
    with ir.InsertionPoint(op), op.location, new_launch((-(-math.prod(r.rows) // warps), 1, 1), (WARP, warps, 1)) \
            as (entry, _):
        _Kernel(entry, r).build(warps)
    op.erase()


class GpuReduce(ModulePass):
    NAME = "qc-gpu-reduce"
    SUMMARY = "Row reductions (softmax, norms, pools over the last dim) -> CUDA kernels with a warp per row"
    OPTIONS = {"warps": Option(int, 8, "rows (warps) per block")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        for op in walk_ops(module, "linalg.generic"):
            r = match_row_reduction(op)
            if isinstance(r, RowReduction):
                launch(r, self.options["warps"])
