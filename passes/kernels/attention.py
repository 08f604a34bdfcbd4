"""The cached-attention kernel family: one decode step's attention of a KV head over the first ``pos``
entries of its cache, then over this step's own keys.

A task is a KV head ``h``.  With ``L = clamp(pos, 0, C)`` and the R queries that share the head:

    s[r, j]  = scale * sum_d q[h, r, d] * K[h, d, j]          j < L   (keys cached [D, C]: vectors along j)
    m[r]     = max(max_j s[r, j], max_t new[h, r, t])                  (new: this step's scores, masked)
    e[r, j]  = exp(s[r, j] - m[r]) ;  z[r] = sum_j e[r, j] + sum_t exp(new[h, r, t] - m[r])
    out[h, r, :] = (sum_j e[r, j] V[h, j, :] + sum_t exp(new[h, r, t] - m[r]) v_new[h, t, :]) / z[r]

``s`` and ``e`` live in a scratch row per query ([H, R, C]); rows go in blocks whose accumulators fit the
register file, the last vector of ``j`` under a lane mask.  f16 caches are widened as they are read; an int8
cache holds codes, each key's scores scaled by its scale and each value's weight by its own.  Cache entries at
``L`` and beyond are never read, so a step costs what its position needs, not the cache's capacity.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch_mlir import ir
from torch_mlir.dialects import arith, math, vector

from .builder import KernelBuilder, f32, i, vec


# Keys are cached [D, C]: a block of scores reads one line from each of D rows a page apart, which share the
# L1's sets (8 ways), so each k prefetches its row this many blocks ahead, into the L2 (L1 prefetches evicted
# one another): a TinyLlama-shaped layer at context 960, cold, one core 173 -> 135 us (none: 279).
KEYS_AHEAD = 4
L2 = 2  # prefetch locality: the L2 and outward


@dataclass(frozen=True)
class CachedAttention:
    heads: int      # H: KV heads (the tasks)
    rows: int       # R: queries per KV head (group x tokens of the step)
    head: int       # D
    context: int    # C: the cache's capacity
    new: int        # T: this step's tokens
    scale: float
    cache: str      # element type of the cache: "f32", "f16" or "i8" (codes; then scales per position)
    types: tuple    # of q, k cache, v cache, new scores, new values, pos, [k, v, new v scales,] out, scratch

    @property
    def key(self) -> tuple:
        return (self.scale, self.cache, *(str(t) for t in self.types))


def build(name: str, a: CachedAttention, lanes: int, tile: int) -> None:
    """``@name(q, k, v, new, v_new, pos, [k_scale, v_scale, v_new_scale,] out, scratch, t0, t1)``: KV heads
    [t0, t1).  ``lanes``: f32 lanes of a vector; ``tile``: rows whose accumulators (two vectors each) fit the
    register file.  An int8 cache's scales ([H, 1, C], [H, 1, C], [H, 1, T]) scale each key's scores and each
    value's weight."""
    b = KernelBuilder(name, [*a.types, ir.IndexType.get(), ir.IndexType.get()])
    q, k, v, new, v_new, pos, *scales, out, scratch, t0, t1 = b.args
    k_scale, v_scale, v_new_scale = scales or (None, None, None)
    vt, mt = vec(lanes, f32()), vec(lanes, i(1))
    cache_vt = vec(lanes, {"f16": ir.F16Type.get(), "i8": i(8), "f32": f32()}[a.cache])
    p = b.scalar(pos, [0])
    valid = arith.index_cast(ir.IndexType.get(), arith.minsi(arith.maxsi(p, b.int(64, 0)), b.int(64, a.context)))
    full = arith.subi(valid, arith.remui(valid, b.index(lanes)))
    tail = vector.create_mask(mt, [arith.subi(valid, full)])
    neg_inf = b.splat(vt, float("-inf"))
    zero = b.splat(vt, 0.0)

    def cache_load(ref, idx, mask=None):
        x = b.load(cache_vt, ref, idx, mask)
        return arith.extf(vt, x) if a.cache == "f16" else arith.sitofp(vt, x) if a.cache == "i8" else x

    def hmax(x):
        return vector.reduction(f32(), vector.CombiningKind.MAXIMUMF, x)

    def hsum(x):
        return vector.reduction(f32(), vector.CombiningKind.ADD, x)

    def over_valid(body, start):
        """``body(j, mask, carried)`` over the valid positions: full vectors, then the rest under a lane mask."""
        with b.loop(0, full, lanes, carried=start) as jl:
            jl.carry(body(jl.iv, None, jl.args))
        return body(full, tail, jl.results)

    def fold_new(h, r, init, combine):
        """``init`` combined with each of this step's own scores of row ``r``."""
        with b.loop(0, a.new, carried=[init]) as tl:
            tl.carry([combine(tl.args[0], b.scalar(new, [h, r, tl.iv]))])
        return tl.results[0]

    def scaled(weights, ref, h, j):
        """``weights`` times an int8 cache's scale of position ``j`` (``ref``), or as they are."""
        if ref is None:
            return weights
        by = b.scalar(ref, [h, 0, j])
        return [arith.mulf(w, by) for w in weights]

    with b.loop(t0, t1) as task:
        h = task.iv
        with b.loop(0, a.head) as d:  # the first blocks of each key row, which the loop below does not prefetch
            for ahead in range(0, KEYS_AHEAD * lanes, 16):
                b.prefetch(k, [h, d.iv, ahead], L2)
        for r0 in range(0, a.rows, tile):
            rows = list(range(r0, min(a.rows, r0 + tile)))

            # scores of the cached keys, scaled, into the scratch rows; their running maxima
            def scores(j, mask, maxima):
                accs = [zero] * len(rows)
                with b.loop(0, a.head, carried=accs) as d:
                    b.prefetch(k, [h, d.iv, b.add(j, KEYS_AHEAD * lanes)], L2)
                    keys = cache_load(k, [h, d.iv, j], mask)
                    d.carry([b.fma(b.bcast(vt, b.scalar(q, [h, r, d.iv])), keys, acc) for r, acc in zip(rows, d.args)])
                out_max = []
                by = b.load(vt, k_scale, [h, 0, j], mask) if k_scale is not None else None
                for r, acc, mx in zip(rows, d.results, maxima):
                    s = arith.mulf(acc, b.splat(vt, a.scale))
                    s = arith.mulf(s, by) if by is not None else s
                    b.store(s, scratch, [h, r, j], mask)
                    out_max.append(arith.maximumf(mx, s if mask is None else arith.select(mask, s, neg_inf)))
                return out_max

            maxima = [fold_new(h, r, hmax(x), arith.maximumf)
                      for r, x in zip(rows, over_valid(scores, [neg_inf] * len(rows)))]
            tops = [b.bcast(vt, m) for m in maxima]

            # exponentials in place, and their sums
            def exps(j, mask, sums):
                out_sums = []
                for r, top, z in zip(rows, tops, sums):
                    e = math.exp(arith.subf(b.load(vt, scratch, [h, r, j], mask), top))
                    b.store(e, scratch, [h, r, j], mask)
                    out_sums.append(arith.addf(z, e if mask is None else arith.select(mask, e, zero)))
                return out_sums

            sums = [fold_new(h, r, hsum(x), lambda z, s, m=m: arith.addf(z, math.exp(arith.subf(s, m))))
                    for r, x, m in zip(rows, over_valid(exps, [zero] * len(rows)), maxima)]

            # the weighted values, a few vectors of the head at a time
            vectors = -(-a.head // lanes)
            per = max(1, min(vectors, 2 * tile // len(rows)))
            for v0 in range(0, vectors, per):
                cols = [(c * lanes, vector.create_mask(mt, [b.index(a.head - c * lanes)])
                         if (c + 1) * lanes > a.head else None) for c in range(v0, min(vectors, v0 + per))]
                accs = [zero] * (len(rows) * len(cols))

                def weigh(weights, values, accs):
                    return [b.fma(b.bcast(vt, w), x, acc)
                            for w, acc_row in zip(weights, _chunks(accs, len(cols))) for x, acc in zip(values, acc_row)]

                with b.loop(0, valid, carried=accs) as jl:
                    weights = scaled([b.scalar(scratch, [h, r, jl.iv]) for r in rows], v_scale, h, jl.iv)
                    jl.carry(weigh(weights, [cache_load(v, [h, jl.iv, c], mask) for c, mask in cols], jl.args))
                with b.loop(0, a.new, carried=jl.results) as tl:
                    exps_new = [math.exp(arith.subf(b.scalar(new, [h, r, tl.iv]), m)) for r, m in zip(rows, maxima)]
                    weights = scaled(exps_new, v_new_scale, h, tl.iv)
                    tl.carry(weigh(weights, [b.load(vt, v_new, [h, tl.iv, c], mask) for c, mask in cols], tl.args))
                for (r, z), acc_row in zip(zip(rows, sums), _chunks(tl.results, len(cols))):
                    for (c, mask), acc in zip(cols, acc_row):
                        b.store(arith.divf(acc, b.bcast(vt, z)), out, [h, r, c], mask)
    b.finish()


def _chunks(xs: list, n: int) -> list[list]:
    return [xs[i:i + n] for i in range(0, len(xs), n)]
