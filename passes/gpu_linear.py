"""qc-gpu-linear: a linear layer's panel contraction -> one CUDA kernel (``gpu.launch``) whose loads are
coalesced, whose reduction is split across warps, and which dequantizes quantized weights in registers.

On GPU targets qc-lower-linear and qc-lower-qgemm lay weights out in panels of 32 columns, a warp's
lanes: f32 (or f16) ``[P, K, 32]``, and int4 / int8 in dot cells (``f32-cells``), each 4-byte cell
holding 4 (int8) or 8 (int4) consecutive k of one column; either way a warp reads 128 contiguous
bytes per k (per cell row).  A contraction, bufferized,

    linalg.generic {library_call = "qc_qgemm_cell_panel", qc.layout = #qc.layout<..., width 32, dot>}
        ins(%x : memref<RxKxf32>, %w : memref<PxCx128xi8>, %s, %o : memref<PxGx32xf32>)
        outs(%acc : memref<RxPx32xf32>)

(or ``qc_qgemm_dot_panel``: int8 activations ``xq``, their row scales ``sx`` and group sums; or
``qc_panel_matmul``: ``%w : memref<PxKx32xf32>``) becomes a block per (panel p, B <= 4 rows), 32 x W
threads, lane = column, warp = a share of k, each weight loaded and dequantized once for the B rows:

    gpu.launch blocks(%p, %b, %z) in (P, R / B, 1) threads(%lane, %warp, %z1) in (32, W, 1)
               workgroup(%part : memref<(W B)x32xf32, #gpu.address_space<workgroup>>) {
      %f:B = scf.for %j = %warp to K / CHUNK step W iter_args(0.0, ...) {  // chunks of k (within a group)
        f32 weights:  f[r] += sum_k x[r, k] * w[p, k, lane]                   // 8 k a loop step
        quantized:    t[r], xs[r] = sums over chunk j's cells (4 bytes of w[p, c, 4 lane]) of x[r, k] * u(cell, k)
                      and x[r, k]; f[r] += s[p, g] * t[r] + o[p, g] * xs[r]
        int8 x:       i[r] = sum of dp4a(cell, xq[r, 4 k..]); f[r] += s * i[r] + (first chunk of g ? o * xsum[r, g] : 0)
      }
      memref.store %f#r, %part[%warp * B + r, %lane]
      gpu.barrier
      scf.if %warp == 0 { acc[r, p, lane] += sum_w part[w * B + r, lane]   (x sx[r] for int8 activations) }
    }

Blocks of B rows read the panel's weights R / B times (from L2 after the first): right for decode's one to
a few rows; prefill-sized GEMMs would want larger tiles through shared memory and tensor cores (not done).
Contractions on other panels, or whose operands are not static identity-layout memrefs, are left to the
generic path (qc-gpu-map: one thread per output, correct but slow).
"""

from __future__ import annotations

from contextlib import nullcontext
from math import gcd as math_gcd

from torch_mlir import ir
from torch_mlir.dialects import arith, gpu, math, memref, nvvm, vector

from .base import ModulePass, Option, PassState, walk_ops
from .gpu_map import WARP, new_launch
from .kernels.builder import BodyBuilder, f32, i, vec
from .kernels.contraction import Contraction
from .lower_linear import PANEL_MATMUL
from .lower_qgemm import QGEMM_CELL_PANEL, QGEMM_CELL_PANEL_SYM, QGEMM_DOT_PANEL, QGEMM_DOT_PANEL_SYM
from .matchers import layout_of, library_call
from .microkernels import match, match_qgemm, match_qgemm_dot

MAX_CHUNK = 128  # k per chunk: a warp's unit of work, within one group
UNROLL = 8  # cells (or k of f32 weights) a loop step: their loads are in flight together
ROWS = 4  # rows a block: each weight loaded (and dequantized) once for all of them


def chunk_size(c: Contraction) -> int:
    """The largest k count <= MAX_CHUNK that divides the group (f32 weights: K) and is whole cells."""
    bits, group = c.quant or (32, c.k)
    per = 32 // bits
    return max(d for d in range(per, min(group, MAX_CHUNK) + 1, per) if group % d == 0)


class _Kernel(BodyBuilder):
    """The body of one launch, built at the insertion point inside it."""

    def __init__(self, entry: ir.Block, c: Contraction, operands: dict[str, ir.Value]):
        super().__init__(entry)
        self.c, (self.bits, self.group) = c, c.quant or (32, c.k)
        rows, k = c.m, c.k
        shapes = {"x": [rows, k], "xq": [rows, k], "c": [rows, c.panels, WARP], "sx": [rows],
                  "xsum": [rows, k // self.group]}  # leading dims collapsed: one row index
        self.v = {name: self.view(v, shapes[name]) if name in shapes else v for name, v in operands.items()}
        self.per = 32 // self.bits
        self.chunk = chunk_size(c)
        self.unroll = math_gcd(self.chunk // self.per, UNROLL)

    def cell(self, p: ir.Value, cell: ir.Value, lane: ir.Value) -> ir.Value:
        """The 4 bytes of column ``lane``'s cell ``cell`` of panel ``p`` (one 128-byte line a warp)."""
        return vector.load(vec(4, i(8)), self.v["w"], [p, cell, self.mul(lane, 4)], alignment=4)

    def word(self, bytes4: ir.Value) -> ir.Value:
        return vector.extract(vector.bitcast(vec(1, i(32)), bytes4), [], [0])

    def offset(self, scale: ir.Value, p: ir.Value, g: ir.Value, lane: ir.Value) -> ir.Value:
        if self.c.sym_offset is not None:
            return arith.mulf(scale, self.float(-float(self.c.sym_offset)))
        return memref.load(self.v["o"], [p, g, lane])

    def cells(self, k0: ir.Value, carried: list[ir.Value]):
        """The loop over the chunk at ``k0``'s cells, ``unroll`` a step (their loads in flight together)."""
        first = arith.divui(k0, self.index(self.per))
        return self.loop(first, self.add(first, self.chunk // self.per), self.unroll, carried)

    def f32_chunk(self, rows, p, lane, k0: ir.Value, scale, offset, accs) -> list[ir.Value]:
        """Each row's acc + s * sum x u + o * sum x over the chunk at ``k0`` (each u unpacked once)."""
        n = len(rows)
        with self.cells(k0, [self.float(0.0)] * (2 * n)) as cells:
            t, s = cells.args[:n], cells.args[n:]
            for step in range(self.unroll):
                cell = self.add(cells.iv, step)
                word = self.word(self.cell(p, cell, lane))
                xs = [vector.load(vec(self.per, f32()), self.v["x"], [r, self.mul(cell, self.per)], alignment=4)
                      for r in rows]
                for j in range(self.per):
                    shift = 8 * (j % 4) + (4 * (j // 4) if self.bits == 4 else 0)
                    u = arith.uitofp(f32(), arith.andi(arith.shrui(word, self.int(32, shift)) if shift else word,
                                                      self.int(32, (1 << self.bits) - 1)))
                    for row in range(n):
                        x = vector.extract(xs[row], [], [j])
                        t[row] = math.fma(x, u, t[row])
                        s[row] = arith.addf(s[row], x)
            cells.carry(t + s)
        t, s = cells.results[:n], cells.results[n:]
        return [arith.addf(a, arith.addf(arith.mulf(scale, t[row]), arith.mulf(offset, s[row])))
                for row, a in enumerate(accs)]

    def dot_chunk(self, rows, p, lane, k0: ir.Value, g, scale, offset, accs) -> list[ir.Value]:
        """Each row's acc + s * sum xq u (+ o * xsum[r, g] at the group's first chunk) over the chunk at ``k0``."""
        unsigned, signed = nvvm.DotAccumulateType.UNSIGNED, nvvm.DotAccumulateType.SIGNED
        xq = lambda r, at: vector.load(vec(4, i(8)), self.v["xq"], [r, at], alignment=4)  # noqa: E731
        with self.cells(k0, [self.int(32, 0)] * len(rows)) as cells:
            totals = list(cells.args)
            for step in range(self.unroll):
                cell = self.add(cells.iv, step)
                u, k = self.cell(p, cell, lane), self.mul(cell, self.per)
                if self.bits == 8:
                    halves = [(u, k)]
                else:  # k 0..3 of the cell in the low nibbles, 4..7 in the high ones
                    word, low = self.word(u), self.int(32, 0x0F0F0F0F)
                    halves = [(vector.bitcast(vec(4, i(8)), vector.broadcast(vec(1, i(32)), arith.andi(
                        arith.shrui(word, self.int(32, half)) if half else word, low))), self.add(k, half))
                        for half in (0, 4)]
                for row, r in enumerate(rows):
                    for bytes4, at in halves:
                        totals[row] = nvvm.dot_accumulate_4way(bytes4, unsigned, xq(r, at), signed, totals[row])
            cells.carry(totals)
        starts = arith.cmpi(arith.CmpIPredicate.eq, arith.remui(k0, self.index(self.group)), self.index(0))
        out = []
        for r, total, acc in zip(rows, cells.results, accs):
            xsum = arith.sitofp(f32(), memref.load(self.v["xsum"], [r, g]))
            correction = arith.select(starts, arith.mulf(offset, xsum), self.float(0.0))
            out.append(arith.addf(acc, arith.addf(arith.mulf(scale, arith.sitofp(f32(), total)), correction)))
        return out

    def float_chunk(self, rows, p, lane, k0: ir.Value, accs) -> list[ir.Value]:
        """Each row's acc + sum x w over the chunk at ``k0`` (f32 or f16 weights, each loaded once)."""
        with self.cells(k0, accs) as ks:
            totals = list(ks.args)
            for step in range(self.unroll):
                k = self.add(ks.iv, step)
                w = memref.load(self.v["w"], [p, k, lane])
                if not isinstance(w.type, ir.F32Type):
                    w = arith.extf(f32(), w)
                totals = [math.fma(memref.load(self.v["x"], [r, k]), w, t) for r, t in zip(rows, totals)]
            ks.carry(totals)
        return list(ks.results)

    def build(self, warps: int, rows_per_block: int, part: ir.Value) -> None:
        args = self.entry.arguments
        p, block, lane, warp = args[0], args[1], args[3], args[4]
        first = self.mul(block, rows_per_block)
        # the rows of a partial last block read the last row again (never stored): no bounds checks inside
        ragged = self.c.m % rows_per_block != 0
        rows = [self.min(self.add(first, j), self.c.m - 1) if ragged and j else self.add(first, j)
                for j in range(rows_per_block)]
        with self.loop(warp, self.c.k // self.chunk, warps, [self.float(0.0)] * rows_per_block) as chunks:
            k0 = self.mul(chunks.iv, self.chunk)
            accs = list(chunks.args)
            if not self.c.quant:
                chunks.carry(self.float_chunk(rows, p, lane, k0, accs))
            else:
                g = arith.divui(k0, self.index(self.group))
                scale = memref.load(self.v["s"], [p, g, lane])
                offset = self.offset(scale, p, g, lane)
                chunk_of = self.dot_chunk if self.c.dot else self.f32_chunk
                extra = (g,) if self.c.dot else ()
                chunks.carry(chunk_of(rows, p, lane, k0, *extra, scale, offset, accs))
        for j, acc in enumerate(chunks.results):
            memref.store(acc, part, [self.add(self.mul(warp, rows_per_block), j), lane])
        gpu.barrier()
        with self.when(arith.cmpi(arith.CmpIPredicate.eq, warp, self.index(0))):
            for j, r in enumerate(rows):
                total = memref.load(part, [self.index(j), lane])
                for w in range(1, warps):
                    total = arith.addf(total, memref.load(part, [self.index(w * rows_per_block + j), lane]))
                if self.c.dot:
                    total = arith.mulf(total, memref.load(self.v["sx"], [r]))
                real = arith.cmpi(arith.CmpIPredicate.ult, self.add(first, j), self.index(self.c.m))
                with self.when(real) if ragged and j else nullcontext():
                    out = [r, p, lane]
                    memref.store(arith.addf(memref.load(self.v["c"], out), total), self.v["c"], out)


def match_panels(op: ir.Operation) -> Contraction | None:
    """The contraction a linear layer's panel generic with a warp's width of columns is, or None."""
    call = library_call(op)
    if call == PANEL_MATMUL:
        c = match(op, WARP // 2)
        return c if c is not None and c.nr == WARP else None
    if call not in (QGEMM_CELL_PANEL, QGEMM_CELL_PANEL_SYM, QGEMM_DOT_PANEL, QGEMM_DOT_PANEL_SYM):
        return None
    layout = layout_of(op)
    if layout is None or not layout.dot or layout.width != WARP:
        return None
    return match_qgemm_dot(op) if call in (QGEMM_DOT_PANEL, QGEMM_DOT_PANEL_SYM) else match_qgemm(op)


def launch(op: ir.Operation, c: Contraction, max_warps: int) -> None:
    """``op`` as a gpu.launch built before it, erased."""
    names = (("xq", "sx", "xsum", "w", "s", "o", "c") if c.dot else ("x", "w", "s", "o", "c") if c.quant
             else ("x", "w", "c"))
    warps = max(1, min(max_warps, c.k // chunk_size(c)))
    rows = min(ROWS, c.m)
    with ir.InsertionPoint(op), op.location, \
            new_launch((c.panels, -(-c.m // rows), 1), (WARP, warps, 1), [(warps * rows, WARP)]) as (entry, (part,)):
        _Kernel(entry, c, dict(zip(names, op.operands))).build(warps, rows, part)
    op.erase()


class GpuLinear(ModulePass):
    NAME = "qc-gpu-linear"
    SUMMARY = "Linear layers' panel contractions -> CUDA kernels (coalesced, split across warps, dequantizing in registers)"
    OPTIONS = {"warps": Option(int, 8, "warps per block, each a share of the reduction")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        for op in walk_ops(module, "linalg.generic"):
            c = match_panels(op)
            if c is not None:
                launch(op, c, self.options["warps"])
