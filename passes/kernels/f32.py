"""The f32 kernel family: register-tiled FMA over column panels.

For each task (a batch and a column panel of NR = 2 x vector-width floats) and each block of
``rows`` rows it keeps rows x NR accumulators in registers; per k it loads one panel vector of B
(f16 panels and f16 or int8 row-major B are widened as they are loaded), broadcasts one element of A per row and issues
``vector.fma``.  The accumulators start from C (bias or zero) or, when C was only zero-filled,
from zero, or from the panel's bias vector where C only held a broadcast bias; C is stored through
the contraction's epilogue (an activation fused into it).  A partial last panel reads and writes B
and C through a lane mask.  With a ``Window`` (im2col columns read in place) A is the conv's
channels-last input: each row block computes its pixels' offsets once and the k loop is one loop per
k digit.  With row ranges (``chunks``) a task is a (panel, range) pair.

    scf.for %t = %t0 to %t1 {                       // tasks: (batch, panel)
      scf.for %i = 0 to M step rows {               // row blocks, then the remainder
        %acc = scf.for %k = 0 to K iter_args(C[i.., panel]) {
          %b = vector.load B[panel, k]  ;  acc_j = fma(broadcast(A[i + j, k]), %b, acc_j)
        }
        vector.store %acc, C[i.., panel]
"""

from __future__ import annotations

import math

from torch_mlir import ir
from torch_mlir.dialects import arith, vector

from . import elementwise
from .builder import KernelBuilder, f32, vec
from .contraction import Contraction, Window, row_blocks, row_indices, split_task


# A row-major B whose rows are this many bytes apart or more (each in its own page) is not followed down a
# panel by the hardware prefetcher: each k then also prefetches the next panel's part of its row, a whole
# task ahead.  A decode step's Q K^T over a [head size, context] key cache (4 KiB rows) took 122 us per layer
# of a TinyLlama-shaped model, about 8 GB/s; with this, 82 us (two or four panels ahead: no better).
FAR_ROWS = 4096


def _row_bytes(t: ir.MemRefType) -> int:
    """Bytes between consecutive rows of a row-major (possibly strided) f32 matrix."""
    if isinstance(t.layout, ir.StridedLayoutAttr):
        return 4 * ir.StridedLayoutAttr(t.layout).strides[-2]
    return 4 * t.shape[-1]


def build(name: str, c: Contraction, rows: int) -> None:
    """``@name(A, B, C, [bias,] t0, t1)``: tasks [t0, t1) of (batch, panel) pairs."""
    b = KernelBuilder(name, [*c.types, ir.IndexType.get(), ir.IndexType.get()])
    a, w, out, *bias, t0, t1 = b.args
    window = c.window
    if c.packed:  # views A[M, K] (a window: its source flattened), C[M, P, NR]
        a = b.view(a, [window.elements] if window else [c.m, c.k])
        out = b.view(out, [c.m, c.panels, c.nr])
    batched = not c.packed and c.types[0].rank == 3
    far = not c.packed and c.panels > 1 and _row_bytes(c.types[1]) >= FAR_ROWS
    vt = vec(c.nr, f32())
    with b.loop(t0, t1) as task:
        t, chunk = split_task(b, c, task.iv)
        bi = arith.divui(t, b.index(c.panels))
        p = arith.remui(t, b.index(c.panels))
        n0 = b.mul(p, c.nr)
        mask = vector.create_mask(vec(c.nr, ir.IntegerType.get_signless(1)),
                                  [arith.subi(b.index(c.n), n0)]) if c.masked else None
        lead = [bi] if batched else []

        def b_at(k):
            return [p, k, 0] if c.packed else [*lead, k, n0]

        def c_at(row):
            return [row, p, 0] if c.packed else [*lead, row, n0]

        def block(count: int, base: ir.Value) -> None:
            rws = row_indices(b, base, count)
            if c.bias:
                start = [b.load(vt, bias[0], [p, 0], mask)] * count
            elif c.zero_c:
                start = [b.splat(vt, 0.0)] * count
            else:
                start = [b.load(vt, out, c_at(r), mask) for r in rws]

            def step(k: ir.Value, a_at, accs: list[ir.Value]) -> list[ir.Value]:
                if far:  # the next panel's part of row k (the last panel's own, again)
                    ahead = b.min(b.add(n0, c.nr), c.n - c.nr)
                    for line in range(0, c.nr, 16):
                        b.prefetch(w, [*lead, k, b.add(ahead, line)])
                if c.b_elt == "f16":
                    panel = arith.extf(vt, b.load(vec(c.nr, ir.F16Type.get()), w, b_at(k), mask))
                elif c.b_elt == "i8":  # int8 codes (an int8 KV cache): their scales are applied outside
                    panel = arith.sitofp(vt, b.load(vec(c.nr, ir.IntegerType.get_signless(8)), w, b_at(k), mask))
                else:
                    panel = b.load(vt, w, b_at(k), mask)
                return [b.fma(b.bcast(vt, b.scalar(a, a_at(j))), panel, acc) for j, acc in enumerate(accs)]

            if window:
                results = _window_loops(b, window, [_row_base(b, window, r) for r in rws], start, step)
            else:
                with b.loop(0, c.k, carried=start) as kl:
                    kl.carry(step(kl.iv, lambda j: [*lead, rws[j], kl.iv], kl.args))
                results = kl.results
            for r, acc in zip(rws, results):
                b.store(elementwise.apply(b, c.epilogue, acc), out, c_at(r), mask)

        row_blocks(b, c, rows, block, chunk=chunk)
    b.finish()


def _row_base(b: KernelBuilder, w: Window, row: ir.Value) -> ir.Value:
    """Where row ``row`` of a window starts in its flattened source."""
    base, rest = b.index(w.offset), row
    for i in reversed(range(len(w.row_sizes))):
        digit = arith.remui(rest, b.index(w.row_sizes[i])) if i else rest
        if i:
            rest = arith.divui(rest, b.index(w.row_sizes[i]))
        if w.row_strides[i]:
            base = b.add(base, b.mul(digit, w.row_strides[i]))
    return base


def _window_loops(b: KernelBuilder, w: Window, bases: list[ir.Value], start: list[ir.Value], step) -> list[ir.Value]:
    """The k loop of a window as one loop per k digit: ``step(k, a_at, accs)`` at the innermost,
    with k the packed weight's row and ``a_at(j)`` row j's element of the source."""

    def level(i: int, k: ir.Value, offset: ir.Value, accs: list[ir.Value]) -> list[ir.Value]:
        inner = math.prod(w.k_sizes[i + 1:])
        with b.loop(0, w.k_sizes[i], carried=accs) as loop:
            k_i = b.add(k, b.mul(loop.iv, inner))
            offset_i = b.add(offset, b.mul(loop.iv, w.k_strides[i]))
            if i + 1 < len(w.k_sizes):
                loop.carry(level(i + 1, k_i, offset_i, loop.args))
            else:
                loop.carry(step(k_i, lambda j: [b.add(bases[j], offset_i)], loop.args))
        return loop.results

    return level(0, b.index(0), b.index(0), start)
