"""What a kernel computes: one contraction, as qc-microkernels matched it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch_mlir import ir
from torch_mlir.dialects import arith

from .builder import KernelBuilder

# How far ahead of the weight stream the decode kernels prefetch.  Measured on this project's
# 2-core Xeon (one LLaMA-7B layer, cold): 3 KiB beat 1 KiB by 4-5 % for the f32-activation kernels
# and 2 % for int4 dot products; no prefetch was 2x slower, and 4 or 8 KiB slowed int8 by 15-40 %.
# (Zen 4's VNNI kernels light per weight byte run faster without: Target.prefetch_min_reuse.)
PREFETCH_BYTES = 3072


@dataclass(frozen=True)
class Window:
    """A read in place from a source buffer S instead of from a column buffer (implicit im2col):
    on S flattened, ``A[m, k] = S[offset + sum_i row_strides[i] * digit_i(m) + sum_j k_strides[j] * digit_j(k)]``,
    the digits of m and k in the mixed radices ``row_sizes`` and ``k_sizes`` (outermost first)."""

    elements: int  # of S
    offset: int
    row_sizes: tuple[int, ...]
    row_strides: tuple[int, ...]
    k_sizes: tuple[int, ...]
    k_strides: tuple[int, ...]


@dataclass(frozen=True)
class Contraction:
    """C[b, m, n] += A[b, m, k] * B(b, k, n), B either packed panels or row-major."""

    packed: bool
    types: tuple[ir.MemRefType, ...]  # of the operands as the op sees them: A, B (or W, S, O), C
    batch: int
    m: int
    n: int
    k: int
    nr: int  # columns per panel
    quant: tuple[int, int] | None = None  # (bits, group size) of a qgemm panel contraction
    dot: bool = False  # int8 activations: an integer dot-product contraction
    act_max: int = 127  # the int8 activations' bound (63: 7-bit, vpmaddubsw takes unsigned cells as they are)
    weight_bits: int = 8  # of a dot contraction's int8 weights: 7 when all lie in [-64, 63] (vpmaddubsw takes u - 64)
    b_elt: str = "f32"  # f16 or i8: B stored as half or int8 codes, widened to f32 as it is loaded
    sym_offset: int | None = None  # symmetric weights: the offset is -sym_offset * scale, computed, not read
    zero_c: bool = False  # C was only zero-filled (the fill is erased): the kernel writes C without reading it
    bias: bool = False  # C was only a bias [P, NR] broadcast (erased): the kernel starts from that operand, after C
    window: Window | None = None  # A read in place from the buffer its columns were copied from
    chunks: int = 1  # row ranges per panel: tasks are (panel task, row range) pairs
    chunk_rows: int = 0  # rows per range (a multiple of the kernel's row block), when chunks > 1
    epilogue: tuple = ()  # an elementwise.Function applied to C as it is stored (f32 and dot kernels)

    @property
    def panels(self) -> int:
        return -(-self.n // self.nr)

    @property
    def weight_reuse(self) -> int:
        """Multiply-adds per streamed weight byte of a qgemm contraction: its rows x weights per byte."""
        return self.batch * self.m * 8 // self.quant[0]

    @property
    def masked(self) -> bool:
        """The last column panel is partial: B and C are accessed through a lane mask."""
        return self.n % self.nr != 0

    @property
    def tasks(self) -> int:
        return self.batch * self.panels * self.chunks


# A row block: (number of rows, the index of its first row) -> builds its part of the kernel.
RowBlock = Callable[[int, ir.Value], None]


# Panel tasks below which the rows are split too: the thread pool cuts tasks into contiguous ranges
# (pool_chunks), so a conv with one or two 32-filter panels otherwise runs on one or two threads.
MIN_TASKS = 8


# Contractions of at least LARGE_MACS multiply-adds go to the pool as POOL_CHUNKS chunks per thread, taken
# by whichever thread is free, so that a thread woken late (or slowed by the VM) does not hold the other
# up; small ones keep one range per thread, since with 4-16 chunks pool-wide a CRNN's small contractions
# ran 3-20 % slower (a locked counter per chunk).  On a 2-core EPYC (docs/results.md, thirteenth
# session) 8 chunks gave the LLaMA-7B decode layers 0.86-1.05x the time of one (median 0.985; the larger
# gains in the VM's slower hours) and the CNNs 0.94-1.08x (noise).
LARGE_MACS = 1 << 24
POOL_CHUNKS = 8


def pool_chunks(c: Contraction) -> int:
    """Chunks per thread the pool cuts ``c``'s tasks into (the trampoline's ``qc.chunks_per_thread``)."""
    return POOL_CHUNKS if c.batch * c.m * c.n * c.k >= LARGE_MACS else 1


def row_split(tasks: int, m: int, rows: int) -> tuple[int, int]:
    """(ranges, rows per range) for the m rows of ``tasks`` panel tasks: enough ranges for
    MIN_TASKS tasks, each at least four row blocks; (1, 0) when no split is needed."""
    blocks = m // rows
    wanted = min(-(-MIN_TASKS // tasks), blocks // 4)
    if tasks >= MIN_TASKS or wanted < 2:
        return 1, 0
    per = -(-blocks // wanted) * rows
    return -(-blocks * rows // per), per  # the rows past the last whole block join the last range


def split_task(b: KernelBuilder, c: Contraction, t: ir.Value) -> tuple[ir.Value, ir.Value | None]:
    """(panel task, row range) of task ``t``."""
    if c.chunks == 1:
        return t, None
    return arith.divui(t, b.index(c.chunks)), arith.remui(t, b.index(c.chunks))


def row_blocks(b: KernelBuilder, c: Contraction, rows: int, block: RowBlock, first: int = 0,
               chunk: ir.Value | None = None) -> None:
    """Rows [first, m) (or range ``chunk`` of them): full blocks of ``rows`` rows in a loop, then
    the remainder (in the last range)."""
    m = c.m
    main = m - (m - first) % rows
    if chunk is not None:
        lo = b.add(first, b.mul(chunk, c.chunk_rows))
        with b.loop(lo, b.min(b.add(lo, c.chunk_rows), main), rows) as i:
            block(rows, i.iv)
        if m > main:
            with b.when(arith.cmpi(arith.CmpIPredicate.eq, chunk, b.index(c.chunks - 1))):
                block(m - main, b.index(main))
        return
    if main > first:
        with b.loop(first, main, rows) as i:
            block(rows, i.iv)
    if m > main:
        block(m - main, b.index(main))


def row_indices(b: KernelBuilder, base: ir.Value, count: int) -> list[ir.Value]:
    """``base + j`` for the block's rows j < count."""
    return [base] + [b.add(base, j) for j in range(1, count)]
