"""The weight-only kernel family: packed int4 / int8 panels, f32 activations, dequantization in registers.

The scale and offset are factored out of each group, ``sum_k x w = s * sum_k x u + o * sum_k x``:
per k the panel row of packed integers is loaded once, unpacked (int4: mask and shift, two columns
per byte) and converted to two f32 vectors of NR/2 lanes, then one FMA per row and half-panel; per
group each row's ``sum x`` is a few vector loads of A, and C (holding the bias or zero) takes
``acc * s + xsum * o``.  Symmetric weights (``sym_offset``) do not stream O: C takes
``(acc - sym_offset * xsum) * s``, and int8's offset 0 needs no sum.  With AVX-512 the nibbles
become floats by a 16-entry table lookup (``vpermps`` reads the low 4 bits of each index).  With
few rows, k is unrolled into independent accumulators so that FMA latency, not the weight stream,
is hidden.

    scf.for %p = %t0 to %t1 {                        // tasks: column panels
      scf.for %g = 0 to G {                          // groups of k
        %acc = scf.for %k in group g { u = unpack(W[p, k]); acc += broadcast(A[row, k]) * u }
        C[row, p] += acc * S[p, g] + sum(A[row, group]) * O[p, g]
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import arith, vector

from .builder import KernelBuilder, f32, i, vec
from .contraction import PREFETCH_BYTES, Contraction, row_blocks, row_indices, split_task

_REASSOC = arith.FastMathFlags.reassoc


def build(name: str, c: Contraction, rows: int) -> None:
    """``@name(A, W, S, O, C, t0, t1)``: tasks [t0, t1) are column panels."""
    bits, group = c.quant
    lanes = c.nr // 2
    vt, bt, it = vec(lanes, f32()), vec(lanes, i(8)), vec(lanes, i(32))
    b = KernelBuilder(name, [*c.types, ir.IndexType.get(), ir.IndexType.get()])
    a, w, s, o, out, t0, t1 = b.args
    a, out = b.view(a, [c.m, c.k]), b.view(out, [c.m, c.panels, c.nr])
    chunks = group - group % lanes  # k of a group summed as vectors; the rest one by one
    zero = b.splat(vt, 0.0)
    row_bytes = c.nr * bits // 8

    def row_sum(row: ir.Value, kb: ir.Value, ke: ir.Value) -> ir.Value:
        """The sum of A[row, kb:ke) in every lane (vector loads, then the k left over)."""
        vend = b.add(kb, chunks)
        if chunks:
            with b.loop(kb, vend, lanes, carried=[zero]) as vl:
                vl.carry([arith.addf(vl.args[0], b.load(vt, a, [row, vl.iv]), fastmath=_REASSOC)])
            total = vector.reduction(f32(), vector.CombiningKind.ADD, vl.results[0], fastmath=_REASSOC)
        else:
            total = b.float(0.0)
        if group % lanes:
            with b.loop(vend, ke, carried=[total]) as sl:
                sl.carry([arith.addf(sl.args[0], b.scalar(a, [row, sl.iv]))])
            total = sl.results[0]
        return b.bcast(vt, total)

    def unpack(p: ir.Value, k: ir.Value) -> tuple[ir.Value, ir.Value]:
        """The panel row W[p, k] as two f32 vectors (the panel's column halves)."""
        if bits == 8:
            raw = [b.load(bt, w, [p, k, col]) for col in (0, lanes)]
            return tuple(arith.sitofp(vt, r) for r in raw)
        e = arith.extui(it, b.load(bt, w, [p, k, 0]))
        hi = arith.shrui(e, b.splat(it, 4))
        if lanes == 16:  # vpermps reads the low 4 bits of each index: a 16-float table lookup
            table = b.dense(vt, range(lanes))
            return tuple(b.intrinsic("llvm.x86.avx512.permvar.sf.512", vt, table, x) for x in (e, hi))
        return arith.sitofp(vt, arith.andi(e, b.splat(it, 15))), arith.sitofp(vt, hi)

    def block(p: ir.Value, count: int, base: ir.Value) -> None:
        unroll = next(u for u in (4 // count if count < 4 else 1, 2, 1) if u and group % u == 0)
        rws = row_indices(b, base, count)
        accs = [(j, h, u) for j in range(count) for h in range(2) for u in range(unroll)]
        with b.loop(0, c.k // group) as gl:
            kb = b.mul(gl.iv, group)
            ke = b.add(kb, group)
            with b.loop(kb, ke, unroll, carried=[zero] * len(accs)) as kl:
                for line in range(0, unroll * row_bytes, 64):  # software prefetch, one per cache line of W read
                    ahead = PREFETCH_BYTES // row_bytes + line // row_bytes
                    b.prefetch(w, [p, b.add(kl.iv, ahead), line % row_bytes])
                current = dict(zip(accs, kl.args))
                for u in range(unroll):
                    k = kl.iv if u == 0 else b.add(kl.iv, u)
                    halves = unpack(p, k)
                    for j, r in enumerate(rws):
                        x = b.bcast(vt, b.scalar(a, [r, k]))
                        for h in range(2):
                            current[(j, h, u)] = b.fma(x, halves[h], current[(j, h, u)])
                kl.carry([current[key] for key in accs])
            sums = dict(zip(accs, kl.results))
            scales, offsets = [], []
            for col in (0, lanes):
                scales.append(b.load(vt, s, [p, gl.iv, col]))
                offsets.append(b.load(vt, o, [p, gl.iv, col]) if c.sym_offset is None else None)
            for j, r in enumerate(rws):
                xsum = row_sum(r, kb, ke) if c.sym_offset != 0 else None
                for h, col in enumerate((0, lanes)):
                    total = sums[(j, h, 0)]
                    for u in range(1, unroll):
                        total = arith.addf(total, sums[(j, h, u)])
                    prev = b.load(vt, out, [r, p, col])
                    if c.sym_offset is None:  # C + acc * s + xsum * o
                        y = b.fma(xsum, offsets[h], b.fma(total, scales[h], prev))
                    elif c.sym_offset:  # C + (acc - shift * xsum) * s
                        y = b.fma(b.fma(xsum, b.splat(vt, -float(c.sym_offset)), total), scales[h], prev)
                    else:
                        y = b.fma(total, scales[h], prev)
                    b.store(y, out, [r, p, col])

    with b.loop(t0, t1) as task:
        p, chunk = split_task(b, c, task.iv)
        row_blocks(b, c, rows, lambda count, base: block(p, count, base), chunk=chunk)
    b.finish()
