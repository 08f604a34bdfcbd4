"""The AMX part of an int8 dot kernel: rows [0, 32 floor(M / 32)) of int8 per-channel panels.

Per 32-row block, four 16x16 i32 tiles accumulate ``tdpbsud`` (signed activation bytes x unsigned
weight bytes, 64 k per step) over K: A tiles are rows of xq, B tiles the panel's two halves,
already in the [K/4, 16 x 4] layout AMX wants.  Meanwhile the next panel streams into L2,
spread evenly over this panel's k steps.  The tiles go to a 32x32 i32 scratch and the epilogue
is the vector kernels' (epilogue.py), so both paths round alike.

    scf.for %ai = 0 to rows step 32 {
      %t:4 = scf.for %ak = 0 to K step 64 { t_ij = tdpbsud(t_ij, tileload(xq[ai + 16 i, ak]), tileload(W[p, ak, 16 j])) }
      tilestore %t -> scratch;  C[ai.., p] += fold(scratch, S, O, xsum) * sx
"""

from __future__ import annotations

from dataclasses import dataclass

from torch_mlir import ir
from torch_mlir.dialects import arith, llvm, memref

from .builder import KernelBuilder, f32, i
from .contraction import Contraction
from .epilogue import DotTypes, fold_group, group_offset, store_row

ROWS = 32  # rows of one AMX block: two 16-row tiles of A against the panel's two 16-column tiles
_TILES = [(i0, j0) for i0 in (0, 1) for j0 in (0, 1)]


def fits(c: Contraction) -> bool:
    """AMX takes int8 per-channel dot contractions on 32-column panels with K a multiple of 64 bytes."""
    return c.dot and c.quant == (8, c.k) and c.nr == 32 and c.k % 64 == 0 and c.m >= ROWS


def _amx_type() -> ir.Type:
    # The bindings have no constructor for LLVM's AMX tile type; it is a fixed name.
    return ir.Type.parse("!llvm.x86_amx")


@dataclass
class Tiles:
    """The function-scope values of the AMX part, made once before the task loop."""

    b: KernelBuilder
    c: Contraction
    rows: int
    scratch: ir.Value
    a_base: ir.Value
    w_base: ir.Value
    acc_base: ir.Value

    @staticmethod
    def prepare(b: KernelBuilder, c: Contraction, xq: ir.Value, w: ir.Value, rows: int) -> Tiles:
        scratch = memref.alloca(ir.MemRefType.get([32, 32], i(32)), [], [], alignment=64)
        base = memref.extract_aligned_pointer_as_index
        return Tiles(b, c, rows, scratch, base(xq), base(w), base(scratch))

    def _ptr(self, address: ir.Value) -> ir.Value:
        return llvm.inttoptr(llvm.PointerType.get(), arith.index_cast(i(64), address))

    def panel(self, p: ir.Value, sx: ir.Value, xsum: ir.Value, s: ir.Value, o: ir.Value, out: ir.Value,
              bias: ir.Value | None = None) -> None:
        """The AMX rows of panel ``p``."""
        b, c = self.b, self.c
        amx, t16, t64 = _amx_type(), b.int(16, 16), b.int(16, 64)
        lanes = c.nr // 2
        t = DotTypes.of(lanes)
        panel_bytes = c.k * c.nr  # a panel: K/4 cells of NR x 4 bytes
        prefetch_lines = -(-1024 // self.rows)  # a panel's bytes / (row blocks x k steps) = 65536 / rows

        def tile(address: ir.Value, stride: int) -> ir.Value:
            return b.intrinsic("llvm.x86.tileloadd64.internal", amx, t16, t64, self._ptr(address), b.int(64, stride))

        w_panel = b.add(self.w_base, b.mul(p, panel_bytes))
        with b.loop(0, self.rows, 32) as blk:
            zero = b.intrinsic("llvm.x86.tilezero.internal", amx, t16, t64)
            a0 = b.add(self.a_base, b.mul(blk.iv, c.k))
            a_rows = [a0, b.add(a0, b.mul(16, c.k))]
            with b.loop(0, c.k, 64, carried=[zero] * 4) as kl:
                a_at = [b.add(row, kl.iv) for row in a_rows]
                b0 = b.add(w_panel, b.mul(kl.iv, c.nr))
                b_at = [b0, b.add(b0, 64)]
                ta = [tile(x, c.k) for x in a_at]
                tb = [tile(x, c.nr * 4) for x in b_at]
                block, k_step = arith.divui(blk.iv, b.index(32)), arith.divui(kl.iv, b.index(64))
                offset = b.mul(b.add(b.mul(block, c.k // 64), k_step), prefetch_lines * 64)
                ahead = b.add(b.add(w_panel, panel_bytes), offset)
                for line in range(prefetch_lines):  # locality 2: into L2
                    b.intrinsic("llvm.prefetch.p0", None, self._ptr(b.add(ahead, line * 64)), b.int(32, 0),
                                b.int(32, 2), b.int(32, 1))
                kl.carry([b.intrinsic("llvm.x86.tdpbsud.internal", amx, t16, t64, t64, acc, ta[ti], tb[tj])
                          for acc, (ti, tj) in zip(kl.args, _TILES)])
            for acc, (ti, tj) in zip(kl.results, _TILES):  # tile (i, j) -> scratch rows 16 i.., columns 16 j..
                at = self._ptr(b.add(self.acc_base, ti * 16 * 128 + tj * 64))
                b.intrinsic("llvm.x86.tilestored64.internal", None, t16, t64, at, b.int(64, 128), acc)
            scales = [b.load(t.f, s, [p, 0, lanes * h]) for h in (0, 1)]
            offsets = [group_offset(b, c, t, scales[h], o, [p, 0, lanes * h]) for h in (0, 1)]
            with b.loop(0, 32) as rl:
                row = b.add(blk.iv, rl.iv)
                ysum = b.bcast(t.f, arith.sitofp(f32(), b.scalar(xsum, [row, 0])))
                row_scale = b.bcast(t.f, b.scalar(sx, [row]))
                for h in (0, 1):
                    acc = b.load(t.i, self.scratch, [rl.iv, lanes * h])
                    value = fold_group(b, t, acc, scales[h], ysum, offsets[h], b.splat(t.f, 0.0))
                    store_row(b, c, t, out, value, row_scale, [row, p, lanes * h], bias)
