"""The Winograd transform kernels (qc-winograd's ``qc_winograd_input`` / ``qc_winograd_output``).

A task is one row of tiles (a batch and a tile row); for each tile and each vector of channels it
loads the tile's a x a vectors (a = m + 2), applies the two 1-D transforms of core/winograd.py with
adds, subtracts and, for coefficients other than +-1, FMAs, and stores the result:

    input:   d[p][q] = S[n, m i + p, m j + q, c..]      e[p][y] = sum_q BT[y, q] d[p][q]
             V[x, y, n, i, j, c..] = sum_p BT[x, p] e[p][y]
    output:  M[x][y] = M[x, y, n, i, j, f..]              r[x][s] = sum_y AT[s, y] M[x][y]
             Y[n, i, r, j, s, f..] = start + sum_x AT[r, x] r[x][s]

with channels innermost and contiguous, the last vector masked.  The output starts from zero, from a
bias vector, or from what Y holds.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith, vector

from ...core import winograd
from .builder import KernelBuilder, f32, vec


def _combine(b: KernelBuilder, t: ir.VectorType, coeffs: np.ndarray, values: Sequence[ir.Value]) -> ir.Value:
    """``sum_k coeffs[k] * values[k]``, zeros skipped, +-1 as adds and subtracts, starting from a +1 term."""
    terms = [(float(c), v) for c, v in zip(coeffs, values) if c != 0]
    terms.sort(key=lambda term: term[0] != 1.0)  # stable: a +1 term first where there is one
    first_c, acc = terms[0]
    if first_c == -1.0:
        acc = arith.negf(acc)
    elif first_c != 1.0:
        acc = arith.mulf(b.splat(t, first_c), acc)
    for c, v in terms[1:]:
        acc = arith.addf(acc, v) if c == 1.0 else arith.subf(acc, v) if c == -1.0 else b.fma(b.splat(t, c), v, acc)
    return acc


def build_input(name: str, source: ir.MemRefType, out: ir.MemRefType, lanes: int) -> None:
    """``@name(S [N, H, W, C], V [a, a, N, TH, TW, C], t0, t1)``: tasks are (n, tile row) pairs."""
    a, _, _, th, tw, channels = out.shape
    m = a - 2
    bt = winograd.transform(m).bt
    b = KernelBuilder(name, [source, out, ir.IndexType.get(), ir.IndexType.get()])
    s, v, t0, t1 = b.args
    vt = vec(lanes, f32())
    with b.loop(t0, t1) as task:
        n, i = arith.divui(task.iv, b.index(th)), arith.remui(task.iv, b.index(th))
        row = b.mul(i, m)
        with b.loop(0, tw) as tile:
            col = b.mul(tile.iv, m)

            def block(c0: ir.Value, mask: ir.Value | None) -> None:
                d = [[b.load(vt, s, [n, b.add(row, p), b.add(col, q), c0], mask) for q in range(a)] for p in range(a)]
                e = [[_combine(b, vt, bt[y], d[p]) for y in range(a)] for p in range(a)]
                for x in range(a):
                    for y in range(a):
                        b.store(_combine(b, vt, bt[x], [e[p][y] for p in range(a)]), v, [x, y, n, i, tile.iv, c0], mask)

            b.vector_blocks(channels, lanes, block)
    b.finish()


def build_output(name: str, products: ir.MemRefType, out: ir.MemRefType, lanes: int, start: str,
                 bias: ir.MemRefType | None = None) -> None:
    """``@name(M [a, a, N, TH, TW, F], Y [N, TH, m, TW, m, F], [bias [F]], t0, t1)``; ``start``: "zero",
    "bias" or "out" (accumulate into Y)."""
    a, _, _, th, tw, channels = products.shape
    m = a - 2
    at = winograd.transform(m).at
    types = [products, out] + ([bias] if start == "bias" else []) + [ir.IndexType.get(), ir.IndexType.get()]
    b = KernelBuilder(name, types)
    mm, y, *rest = b.args
    bias_ref = rest[0] if start == "bias" else None
    t0, t1 = rest[-2:]
    vt = vec(lanes, f32())
    with b.loop(t0, t1) as task:
        n, i = arith.divui(task.iv, b.index(th)), arith.remui(task.iv, b.index(th))
        with b.loop(0, tw) as tile:

            def block(f0: ir.Value, mask: ir.Value | None) -> None:
                prod = [[b.load(vt, mm, [x, q, n, i, tile.iv, f0], mask) for q in range(a)] for x in range(a)]
                rows = [[_combine(b, vt, at[s_], prod[x]) for s_ in range(m)] for x in range(a)]
                base = b.load(vt, bias_ref, [f0], mask) if bias_ref is not None else None
                for r in range(m):
                    for s_ in range(m):
                        value = _combine(b, vt, at[r], [rows[x][s_] for x in range(a)])
                        at_y = [n, i, r, tile.iv, s_, f0]
                        if start == "out":
                            value = arith.addf(b.load(vt, y, at_y, mask), value)
                        elif base is not None:
                            value = arith.addf(base, value)
                        b.store(value, y, at_y, mask)

            b.vector_blocks(channels, lanes, block)
    b.finish()
