"""The integer dot-product kernel family: int8 activations against int4 / int8 dot panels.

Per group, rows x 2 int32 accumulators gather ``dot4(u, xq)`` over 4-byte cells: one load of the
panel per cell (int4: one load per 8 k, the low and high nibbles masked out), one broadcast of 4
activation bytes per row, one ``vpdpbusd`` (VNNI) or ``vpmaddubsw`` + ``vpmaddwd`` (AVX2,
AVX-512BW) per row and half-panel.  At the group's end they are converted and folded into f32
accumulators with the scale and the offset times the activations' group sum; the row scale and C
(bias) are applied once at the end.

The vpmaddubsw flavours take int8 weights as ``|q| x sign(x, q)`` (llama.cpp's AVX2 int8 dot),
which sums ``q x`` instead of ``u x = (q + 128) x``; adding ``128 x`` the group sum back gives the
VNNI path's integer exactly, so every flavour shares one epilogue.  With 7-bit activations
(``act_max`` 63: ``w8a7``) they take ``u`` as it is, as VNNI does: a pair ``u0 x0 + u1 x1`` is
within 2 x 255 x 64 = 32640, so three instructions (not four) per 32 products are exact.  With 7-bit
weights (``weight_bits`` 7: ``w7a8``, every q in [-64, 63]) they take ``u - 64`` (within [0, 127]; pairs
within 2 x 127 x 128 = 32512) against 8-bit x, one subtraction per weight vector shared by the rows, and add
``64 x`` the group sum back.  int4's
pairs (u < 16) are small enough to add as int16 over both nibbles of 4 cells before one vpmaddwd:
two instructions per 32 products, and a row block of three (f32 activations as pieces) 1.1-1.4x
faster than with a vpmaddwd per pair.

    scf.for %p = %t0 to %t1 {                            // tasks: column panels
      [AMX: rows [0, 32 floor(M / 32)) in tiles, amx.py]
      %f = scf.for %g = 0 to G {                         // groups
        %i = scf.for %cell in group g { i += dot4(W[p, cell], xq[row, 4 cell..]) }
        f += sitofp(i) * S[p, g] + xsum[row, g] * O[p, g]
      }
      C[row, p] += f * sx[row]
"""

from __future__ import annotations

import math
from typing import NamedTuple

from torch_mlir import ir
from torch_mlir.dialects import arith, vector

from .builder import KernelBuilder, f32, i, vec
from . import amx as amx_tiles
from .contraction import PREFETCH_BYTES, Contraction, row_blocks, row_indices, split_task
from .epilogue import DotTypes, fold_group, group_offset, store_row

FLAVOURS = ("amx", "vnni", "avx512bw", "avx2", "generic")
MADDUBS = ("avx2", "avx512bw")  # the flavours whose byte products are vpmaddubsw's (int16 pairs)
# f32 lanes each vector flavour's intrinsics exist for (the others fall back to generic); an
# AVX-512BW machine has AVX2's forms for 8 lanes
_LANES = {"vnni": (8, 16), "avx512bw": (8, 16), "avx2": (8,)}
_MADDUBS = {8: ("llvm.x86.avx2.pmadd.ub.sw", "llvm.x86.avx2.pmadd.wd"),
            16: ("llvm.x86.avx512.pmaddubs.w.512", "llvm.x86.avx512.pmaddw.d.512")}


def flavour(requested: str, c: Contraction) -> str:
    """The flavour a dot contraction's vector kernel uses: AMX machines have VNNI for what the
    tiles do not take; a flavour without intrinsics for the panel's lanes falls back to generic."""
    chosen = "vnni" if requested == "amx" else requested
    return chosen if c.nr // 2 in _LANES.get(chosen, ()) else "generic"


def signs_weights(kind: str, c: Contraction) -> bool:
    """Whether ``kind``'s kernel takes int8 weights as ``|q| x sign(x, q)``: vpmaddubsw against 8-bit x, whose
    ``u x`` pairs could overflow int16 (int4's u < 16 and 7-bit x never do)."""
    return kind in MADDUBS and c.quant[0] == 8 and c.act_max > 63 and c.weight_bits > 7


def shifts_weights(kind: str, c: Contraction) -> bool:
    """Whether ``kind``'s kernel takes 7-bit int8 weights as ``u - 64 = q + 64``: vpmaddubsw against 8-bit x,
    whose ``u x`` pairs could overflow int16 and ``(q + 64) x`` pairs cannot."""
    return kind in MADDUBS and c.quant[0] == 8 and c.act_max > 63 and c.weight_bits == 7


def tile_rows(kind: str, c: Contraction, rows: int) -> int:
    """Rows of ``kind``'s register tile for ``c`` (the f32 kernels' ``rows``): each row holds 2 i32
    accumulators, half an f32 row's register share; the vpmaddubsw int8 kernels that need no sign trick
    hold no ``|q|`` and ``q`` vectors, and a fourth row in their place measured 1.15-1.2x on MiniLM b8 at
    w8a7 (AVX2)."""
    unsigned_int8 = kind in MADDUBS and c.quant[0] == 8 and not signs_weights(kind, c)
    return max(1, rows // 2 + unsigned_int8)


def dot4(b: KernelBuilder, kind: str, t: DotTypes, acc: ir.Value, u: ir.Value, x: ir.Value) -> ir.Value:
    """``acc + dot4(u, x)`` per i32 lane: unsigned bytes of ``u`` times signed bytes of ``x``.

    avx2 / avx512bw: ``vpmaddubsw`` then ``vpmaddwd`` by ones, exact only while each pair
    ``u0 x0 + u1 x1`` fits int16: the caller passes int4's u < 16 and, against 7-bit x, int8 u as they
    are, and int8 weights against 8-bit x as ``|q|`` against ``sign(x, q)`` (at most 128 x 127 x 2 = 32512)."""
    lanes = t.f.shape[0]
    if kind == "vnni":
        return b.intrinsic(f"llvm.x86.avx512.vpdpbusd.{32 * lanes}", t.i, acc, u, x)
    if kind == "generic":  # widen to i32, multiply, add each lane's 4 products
        wide = vec(4 * lanes, i(32))
        prod = arith.muli(arith.extui(wide, u), arith.extsi(wide, x))
        for j in range(4):
            acc = arith.addi(acc, vector.shuffle(prod, prod, [4 * n + j for n in range(lanes)]))
        return acc
    return widen_pairs(b, t, acc, pairs16(b, t, u, x))


def int16_cells(kind: str, c: Contraction) -> int:
    """Cells of a group whose vpmaddubsw pairs ``kind``'s kernel adds as int16 before one vpmaddwd: int4's
    pairs are within 2 x 15 x 128 = 3840, so both nibbles of 4 cells (30720) fit; an int8 pair may fill
    int16 alone."""
    if kind not in MADDUBS or c.quant[0] != 4:
        return 1
    return math.gcd(c.quant[1] // 8, 4)


def pairs16(b: KernelBuilder, t: DotTypes, u: ir.Value, x: ir.Value) -> ir.Value:
    """``vpmaddubsw``: ``u0 x0 + u1 x1`` per i16 lane (saturating: the callers keep it within int16)."""
    return b.intrinsic(_MADDUBS[t.f.shape[0]][0], t.w, u, x)


def widen_pairs(b: KernelBuilder, t: DotTypes, acc: ir.Value, pairs: ir.Value) -> ir.Value:
    """``acc +`` the i16 lanes of ``pairs`` summed two by two into i32 (``vpmaddwd`` by ones)."""
    return arith.addi(acc, b.intrinsic(_MADDUBS[t.f.shape[0]][1], t.i, pairs, b.splat(t.w, 1)))


def nibbles(b: KernelBuilder, t: DotTypes, cell: ir.Value) -> tuple[ir.Value, ir.Value]:
    """The low and high nibbles of an int4 cell's bytes (k and k + 4 of each 4-byte cell)."""
    mask = b.splat(t.b, 15)
    return arith.andi(cell, mask), arith.andi(arith.shrui(cell, b.splat(t.b, 4)), mask)


def broadcast4(b: KernelBuilder, t: DotTypes, xq: ir.Value, r: ir.Value, k: ir.Value) -> ir.Value:
    """Bytes [k, k + 4) of activation row r in every 4-byte cell of a vector."""
    four = vector.bitcast(vec(1, i(32)), b.load(vec(4, i(8)), xq, [r, k]))
    return vector.bitcast(t.b, b.bcast(t.i, vector.extract(four, [], [0])))


def int16_span(b: KernelBuilder, t: DotTypes, w: ir.Value, xq: ir.Value, p: ir.Value, cell0: ir.Value,
               span: int, rows: list[ir.Value], acc: dict) -> None:
    """int4 on vpmaddubsw: cells [cell0, cell0 + span) into ``acc[(j, h, 0)]``, the pairs of every cell
    and nibble summed as int16 per row and half-panel (``int16_cells``), then one vpmaddwd each.  (A
    half-panel at a time kept fewer sums live but each broadcast twice, and LLVM's CSE then spilled
    them: 1.5-2x slower on AVX2.)"""
    lanes = t.f.shape[0]
    sums = {}
    for u in range(span):
        cell = b.add(cell0, u) if u else cell0
        units = [nibbles(b, t, b.load(t.b, w, [p, cell, 4 * lanes * h])) for h in (0, 1)]
        k = b.mul(cell, 8)
        for j, r in enumerate(rows):
            for nib, kk in enumerate((k, b.add(k, 4))):
                x = broadcast4(b, t, xq, r, kk)
                for h in (0, 1):
                    prod = pairs16(b, t, units[h][nib], x)
                    sums[(j, h)] = arith.addi(sums[(j, h)], prod) if (j, h) in sums else prod
    for (j, h), summed in sums.items():
        acc[(j, h, 0)] = widen_pairs(b, t, acc[(j, h, 0)], summed)


class SignedWeights(NamedTuple):
    """One int8 dot-panel vector as the vpmaddubsw flavours take it."""

    abs: ir.Value  # |q| (unsigned; exact for q = -128 too)
    q: ir.Value    # the signed weights
    neg: ir.Value  # q < 0, per byte


def signed_weights(b: KernelBuilder, t: DotTypes, u: ir.Value) -> SignedWeights:
    """``SignedWeights`` of dot-panel bytes ``u = q + 128``."""
    zero = b.splat(t.b, 0)
    q = arith.xori(u, b.splat(t.b, -128))
    neg = arith.cmpi(arith.CmpIPredicate.slt, q, zero)
    return SignedWeights(arith.select(neg, arith.subi(zero, q), q), q, neg)


def sign(b: KernelBuilder, t: DotTypes, x: ir.Value, w: SignedWeights) -> ir.Value:
    """``sign(x, q)``: x negated where q < 0 (and, with AVX2's psignb, zeroed where q = 0, which
    |q| = 0 makes irrelevant).  AVX-512 has no psignb: a compare and a blend."""
    if t.f.shape[0] == 8:
        return b.intrinsic("llvm.x86.avx2.psign.b", t.b, x, w.q)
    return arith.select(w.neg, arith.subi(b.splat(t.b, 0), x), x)


def build(name: str, c: Contraction, rows: int, kind: str, amx: bool = False, prefetch: bool = True) -> None:
    """``@name(XQ, SX, XSUM, W, S, O, C, [bias,] t0, t1)``: tasks [t0, t1) are column panels; with ``amx``
    the rows of whole 32-row blocks go through AMX tiles (amx.py), the rest through ``kind``; ``prefetch``:
    software prefetches PREFETCH_BYTES ahead of the weight stream (else the hardware prefetchers alone)."""
    bits, group = c.quant
    lanes = c.nr // 2
    per = 32 // bits  # k per 4-byte cell
    groups = c.k // group
    t = DotTypes.of(lanes)
    b = KernelBuilder(name, [*c.types, ir.IndexType.get(), ir.IndexType.get()])
    xq, sx, xsum, w, s, o, out, *extra, t0, t1 = b.args
    bias = extra[0] if c.bias else None
    xq, sx = b.view(xq, [c.m, c.k]), b.view(sx, [c.m])
    xsum, out = b.view(xsum, [c.m, groups]), b.view(out, [c.m, c.panels, c.nr])
    signed_q = signs_weights(kind, c)
    shifted_q = shifts_weights(kind, c)
    row_bytes = c.nr * 4
    prefetch_cells = max(1, PREFETCH_BYTES // row_bytes)

    def block(p: ir.Value, count: int, base: ir.Value) -> None:
        halves = (0, 1)
        span = int16_cells(kind, c)
        # int4, few rows: low / high nibbles in accumulators apart, while they fit the register file
        # with the panel's four nibble vectors and a broadcast
        parts = (0, 1) if bits == 4 and span == 1 and 4 * count + 6 <= (32 if lanes == 16 else 16) else (0,)
        rws = row_indices(b, base, count)
        fas = [(j, h) for j in range(count) for h in halves]
        ias = [(j, h, q) for j in range(count) for h in halves for q in parts]
        with b.loop(0, groups, carried=[b.splat(t.f, 0.0)] * len(fas)) as gl:
            cb = b.mul(gl.iv, group // per)
            with b.loop(cb, b.add(cb, group // per), span, carried=[b.splat(t.i, 0)] * len(ias)) as cl:
                if prefetch:
                    for u in range(span):
                        for line in range(0, row_bytes, 64):
                            b.prefetch(w, [p, b.add(cl.iv, prefetch_cells + u), line])
                current = dict(zip(ias, cl.args))
                if span > 1:
                    int16_span(b, t, w, xq, p, cl.iv, span, rws, current)
                else:
                    units = {}  # (h, nibble) -> the unsigned byte operand of the dot product
                    signed = {}  # h -> int8 weights as the vpmaddubsw flavours take them
                    for h in halves:
                        cell = b.load(t.b, w, [p, cl.iv, 4 * lanes * h])
                        if signed_q:
                            signed[h] = signed_weights(b, t, cell)
                            units[(h, 0)] = signed[h].abs
                        elif shifted_q:
                            units[(h, 0)] = arith.subi(cell, b.splat(t.b, 64))
                        elif bits == 8:
                            units[(h, 0)] = cell
                        else:
                            units[(h, 0)], units[(h, 1)] = nibbles(b, t, cell)
                    k = b.mul(cl.iv, per)
                    ks = [k, b.add(k, 4)] if bits == 4 else [k]
                    for j, r in enumerate(rws):
                        for nib, kk in enumerate(ks):
                            x = broadcast4(b, t, xq, r, kk)
                            for h in halves:
                                q = nib if len(parts) == 2 else 0
                                operand = sign(b, t, x, signed[h]) if h in signed else x
                                current[(j, h, q)] = dot4(b, kind, t, current[(j, h, q)], units[(h, nib)], operand)
                cl.carry([current[key] for key in ias])
            isums = dict(zip(ias, cl.results))
            scales, offsets = [], []
            for h in halves:
                scales.append(b.load(t.f, s, [p, gl.iv, lanes * h]))
                offsets.append(group_offset(b, c, t, scales[h], o, [p, gl.iv, lanes * h]))
            folded = []
            facc = dict(zip(fas, gl.args))
            for j, r in enumerate(rws):
                y = b.scalar(xsum, [r, gl.iv])
                ysum = b.bcast(t.f, arith.sitofp(f32(), y))
                if signed_q or shifted_q:  # sum q x + 128 sum x = sum (q + 64) x + 64 sum x = sum u x
                    shifted = b.bcast(t.i, arith.shli(y, b.int(32, 7 if signed_q else 6)))
                for h in halves:
                    total = isums[(j, h, 0)]
                    if len(parts) == 2:
                        total = arith.addi(total, isums[(j, h, 1)])
                    if signed_q or shifted_q:
                        total = arith.addi(total, shifted)
                    folded.append(fold_group(b, t, total, scales[h], ysum, offsets[h], facc[(j, h)]))
            gl.carry(folded)
        results = dict(zip(fas, gl.results))
        for j, r in enumerate(rws):
            row_scale = b.bcast(t.f, b.scalar(sx, [r]))
            for h in halves:
                store_row(b, c, t, out, results[(j, h)], row_scale, [r, p, lanes * h], bias)

    first = c.m - c.m % amx_tiles.ROWS if amx else 0
    tiles = amx_tiles.Tiles.prepare(b, c, xq, w, first) if amx else None
    with b.loop(t0, t1) as task:
        p, chunk = split_task(b, c, task.iv)
        if tiles is not None:
            tiles.panel(p, sx, xsum, s, o, out, bias)
        row_blocks(b, c, rows, lambda count, base: block(p, count, base), first, chunk)
    b.finish()
