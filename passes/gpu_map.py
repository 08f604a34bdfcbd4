"""qc-gpu-map: each outermost ``scf.parallel`` (a bufferized linalg op's loops) -> a ``gpu.launch``
over a one-dimensional grid, one thread per iteration.

After ``convert-linalg-to-parallel-loops`` every op of the graph is an ``scf.parallel`` over its
parallel dims (its reduction dims are ``scf.for`` loops inside, run by each thread).  Upstream's
``gpu-map-parallel-loops`` maps the first three dims to the grid and nothing to the threads of a
block; here the iteration space is linearized instead, blocks of ``block-size`` threads cover it,
and each thread delinearizes its id:

    scf.parallel (%i, %j) = (%c0, %c0) to (%c64, %c96) step (%c1, %c1) { body(%i, %j) }
becomes
    gpu.launch blocks(%bx, ...) in (%gx = %c24, ...) threads(%tx, ...) in (%b = %c256, ...) {
      %id = %bx * 256 + %tx
      scf.if %id < 6144 { body(%id floordiv 96, %id mod 96) }
      gpu.terminator
    }

``gpu-kernel-outlining`` then makes each launch a kernel.  Loops with dynamic bounds, steps other
than 1 or non-zero lower bounds are left on the host (there are none in qc's static graphs).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from torch_mlir import ir
from torch_mlir.dialects import arith, gpu, scf

from .base import ModulePass, Option, PassState, walk_ops
from .matchers import constant_index

WARP = 32  # threads of a warp; also the panel width of GPU weights (qc-gpu-linear: a lane a column)


def _static(op: ir.Operation) -> list[int] | None:
    """The trip counts of ``scf.parallel`` ``op`` when its lower bounds are 0, steps 1 and upper
    bounds constants."""
    ranks = len(op.regions[0].blocks[0].arguments)
    lows, highs, steps = (op.operands[k * ranks:(k + 1) * ranks] for k in range(3))
    if any(constant_index(v) != 0 for v in lows) or any(constant_index(v) != 1 for v in steps):
        return None
    counts = [constant_index(v) for v in highs]
    return None if None in counts else counts


@contextmanager
def new_launch(grid: tuple[int, int, int], block: tuple[int, int, int],
               workgroup: Sequence[Sequence[int]] = ()) -> Iterator[tuple[ir.Block, list[ir.Value]]]:
    """A ``gpu.launch`` of ``grid`` blocks of ``block`` threads (x, y, z) at the insertion point, with f32
    workgroup buffers of the shapes ``workgroup``: yields its entry block and those buffers, the insertion
    point inside it, and ends the body with its terminator."""
    index = ir.IndexType.get()
    sizes = [arith.constant(index, n) for n in (*grid, *block)]
    kernel = gpu.LaunchOp(tuple(sizes[:3]), tuple(sizes[3:]))
    entry = kernel.regions[0].blocks[0]
    buffers = []
    if workgroup:
        kernel.attributes["workgroup_attributions"] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), len(workgroup))
        space = ir.AttrBuilder.get("gpu.GPU_AddressSpaceAttr")(gpu.AddressSpace.Workgroup, kernel.context)
        buffers = [entry.add_argument(ir.MemRefType.get(list(shape), ir.F32Type.get(), memory_space=space),
                                      ir.Location.current) for shape in workgroup]
    with ir.InsertionPoint(entry):
        yield entry, buffers
        gpu.TerminatorOp()


def delinearize(linear: ir.Value, counts: Sequence[int], index: Callable[[int], ir.Value]) -> list[ir.Value]:
    """The indices into a row-major iteration space of trip counts ``counts`` at ``linear`` (``index``: an
    index constant)."""
    ivs, rest = [], linear
    for i in reversed(range(len(counts))):
        ivs.insert(0, arith.remui(rest, index(counts[i])) if i else rest)
        if i:
            rest = arith.divui(rest, index(counts[i]))
    return ivs


def warp_all(value: ir.Value, combine: Callable, i32: Callable[[int], ir.Value]) -> ir.Value:
    """``value`` combined over a warp's lanes by xor shuffles: every lane gets the result (``i32``: an i32
    constant)."""
    for offset in (16, 8, 4, 2, 1):
        value = combine(value, gpu.ShuffleOp(value, i32(offset), i32(WARP), gpu.ShuffleMode.XOR).results[0])
    return value


def launch(op: ir.Operation, counts: list[int], block_size: int) -> None:
    """``op`` as a gpu.launch (built before it), erased."""
    total = math.prod(counts)
    index = ir.IndexType.get()
    const = lambda v: arith.constant(index, v)  # noqa: E731
    threads = min(block_size, total)
    with ir.InsertionPoint(op), op.location, new_launch((-(-total // threads), 1, 1), (threads, 1, 1)) as (body, _):
        block_id, thread_id = body.arguments[0], body.arguments[3]
        linear = arith.addi(arith.muli(block_id, const(threads)), thread_id)
        inside = scf.IfOp(arith.cmpi(arith.CmpIPredicate.ult, linear, const(total)))
        with ir.InsertionPoint(inside.then_block):
            _inline(op, delinearize(linear, counts, const))
            scf.YieldOp([])
    op.erase()


def _inline(op: ir.Operation, ivs: list[ir.Value]) -> None:
    """The body of ``scf.parallel`` ``op`` at the insertion point, its induction variables ``ivs``."""
    block = op.regions[0].blocks[0]
    mapping = dict(zip(block.arguments, ivs))
    for inner in block.operations:
        if inner.name == "scf.reduce":  # the terminator (no reductions: linalg's parallel dims only)
            continue
        clone = inner.operation.clone()
        _remap(clone, mapping)
        for old, new in zip(inner.results, clone.results):
            mapping[old] = new


def _remap(root: ir.Operation, mapping: dict) -> None:
    def visit(inner: ir.Operation) -> ir.WalkResult:
        for i, value in enumerate(inner.operands):
            if value in mapping:
                inner.operands[i] = mapping[value]
        return ir.WalkResult.ADVANCE

    root.walk(visit)


class GpuMap(ModulePass):
    NAME = "qc-gpu-map"
    SUMMARY = "Map each outermost scf.parallel to a gpu.launch over a 1-D grid (one thread per iteration)"
    OPTIONS = {"block-size": Option(int, 256, "threads per block")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        for op in walk_ops(module, "scf.parallel"):
            parent = op.parent
            while parent is not None and parent.name not in ("func.func", "scf.parallel"):
                parent = parent.parent
            if parent is None or parent.name != "func.func":
                continue  # nested: its outermost loop takes it along
            counts = _static(op)
            if counts is not None:
                launch(op, counts, self.options["block-size"])
