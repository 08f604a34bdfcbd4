"""qc-parallelize: large bufferized linalg.generic ops -> calls that split a parallel loop over
the runtime's thread pool.

Runs after qc-microkernels, on what it left: the elementwise ops, normalisations, softmaxes
and activation quantizations between the matmuls, which otherwise run on one core.  For a

    linalg.generic {iterator_types = [..., "parallel" (dim d), ...]} ins(%a, %b) outs(%c)

whose operands index dim ``d`` only as a whole subscript (``(.., d, ..)``), not at all
(broadcasts) or, for inputs, through a window ``d * s + e`` (im2col: each task's slice then
starts at ``t * s`` and spans what the window reads), the op moves into a kernel that runs tasks
``[t0, t1)``, one index of ``d`` each:

    func.func @qc_pk_N(%a: memref<..> {llvm.noalias}, %b, %c, %t0: index, %t1: index) {
      scf.for %t = %t0 to %t1 step 1 {
        %a_t = memref.subview %a[.., %t, ..] [.., 1, ..] [1, ...]   (each operand that indexes d)
        linalg.generic ... ins(%a_t, %b) outs(%c_t)                  (the same op on the slices)
      }
    }

When ``d`` is the innermost loop and every operand subscripts it last, contiguously (a global
average pool over channels last: its other dims are reductions or 1), a task takes a block of 8
to 64 indices instead of one, so that its inner loop is a vector loop rather than strided scalars.

The op is replaced by ``func.call @qc_ppar_N(%a, %b, %c)``, a trampoline (qc-microkernels'
mechanism, see passes/trampoline.py) that spreads the tasks over the pool.  Ops that outline to
the same kernel (a model's repeated layers) share one ``@qc_pk_N`` and, splitting as many tasks,
one trampoline.  The slices keep
static shapes and the arguments are ``noalias`` when the operands are distinct buffers
(qc-noalias-args carries that to their data pointers after lowering), so LLVM vectorizes the
kernel's loops as it did in place.  ``d`` is the outermost parallel dim
with at least ``min-tasks`` iterations that every output indexes.  A body may read ``linalg.index``
(the split dim's is offset by the task) and load from buffers outside the op (a gather, a resize:
they are passed to the kernel whole).  Ops that touch fewer than ``min-work`` elements run serially,
but outlined all the same, their kernel called directly over all its tasks:

    func.call @qc_pk_N(%a, %b, %c, %c0, %c2048)

so that a model's repeated layers share one compiled copy of each (a 22-layer decoder's entry
functions were 0.65 and 0.85 MB of machine code, unrolled layer by layer, and LLVM's time grows
faster than their size) and LLVM vectorizes it, which it is kept from doing in the entry functions
(qc-serial-loops).  Ops that capture values other than constants and buffers stay in place.
A named ``linalg.transpose`` (attention's head moves) is first made the equivalent copy generic, so
that it is split too: MiniLM's 24 of them ran serially in the entry function.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from torch_mlir import ir
from torch_mlir.dialects import arith, func, memref, scf

from .base import ModulePass, Option, PassState, walk_ops
from .builders import generic
from .matchers import MEMREF_VIEWS, indexing_maps, iterator_types, num_outputs, view_source
from .trampoline import declare



def _dim_sizes(op: ir.Operation) -> dict[int, int]:
    """Loop dim -> its extent, read off the operands that subscript it directly."""
    sizes = {}
    for value, amap in zip(op.operands, indexing_maps(op)):
        for pos, expr in enumerate(amap.results):
            if isinstance(expr, ir.AffineDimExpr):
                sizes.setdefault(ir.AffineDimExpr(expr).position, ir.MemRefType(value.type).shape[pos])
    return sizes


def _uses_dim(expr: ir.AffineExpr, dim: int) -> bool:
    if isinstance(expr, ir.AffineDimExpr):
        return ir.AffineDimExpr(expr).position == dim
    if isinstance(expr, ir.AffineBinaryExpr):
        binary = ir.AffineBinaryExpr(expr)
        return _uses_dim(binary.lhs, dim) or _uses_dim(binary.rhs, dim)
    return False


def _window_stride(expr: ir.AffineExpr, dim: int) -> int | None:
    """s when ``expr`` is ``dim`` (s = 1) or ``dim * s + e`` with ``e`` free of ``dim`` (a convolution
    window), else None."""
    def scaled(e):
        if isinstance(e, ir.AffineDimExpr) and ir.AffineDimExpr(e).position == dim:
            return 1
        if isinstance(e, ir.AffineMulExpr):
            lhs, rhs = ir.AffineMulExpr(e).lhs, ir.AffineMulExpr(e).rhs
            if isinstance(rhs, ir.AffineConstantExpr) and scaled(lhs) == 1:
                return ir.AffineConstantExpr(rhs).value
        return None

    if scaled(expr) is not None:
        return scaled(expr)
    if isinstance(expr, ir.AffineAddExpr):
        lhs, rhs = ir.AffineAddExpr(expr).lhs, ir.AffineAddExpr(expr).rhs
        for a, b in ((lhs, rhs), (rhs, lhs)):
            if scaled(a) is not None and not _uses_dim(b, dim):
                return scaled(a)
    return None


class Slot(NamedTuple):
    """Where a task's slice of an operand lies: subscript ``pos`` from ``task * stride``, ``size`` long."""

    pos: int
    stride: int
    size: int


def _block(op: ir.Operation, dim: int, extent: int, min_tasks: int) -> int:
    """Indices of ``dim`` per task: 1, or when ``dim`` is the innermost loop and every operand
    subscripts it last and contiguously (a reduction over the outer dims, as a global average
    pool over channels last), 8 to 64, so that the task's inner loop over them is vectorized
    rather than a strided scalar one per index; fewer tasks then, at least two."""
    if dim != len(iterator_types(op)) - 1:
        return 1
    for value, amap in zip(op.operands, indexing_maps(op)):
        hits = [pos for pos, e in enumerate(amap.results) if _uses_dim(e, dim)]
        if hits and (hits != [len(amap.results) - 1] or not isinstance(amap.results[-1], ir.AffineDimExpr)
                     or ir.MemRefType(value.type).get_strides_and_offset()[0][-1] != 1):
            return 1
    # (blocks of 8 and 16 need qc-small-loops: unrolled whole, LLVM made gathers along the reduction of them)
    fits = [b for b in (64, 48, 32, 16, 8) if extent % b == 0 and extent // b >= 2]
    return next((b for b in fits if extent // b >= min_tasks), fits[0] if fits else 1)


def split_dim(op: ir.Operation, min_tasks: int) -> tuple[int, list[Slot | None], int] | None:
    """(dim, per operand: where its slice lies, or None for the whole operand, indices of dim per
    task) of the loop to split, or None.  Outputs must subscript dim as a whole; inputs may read a
    window ``dim * s + e`` of it (im2col), their slice then spans what one task's window covers."""
    if any(not isinstance(v.type, ir.MemRefType) or not ir.MemRefType(v.type).has_static_shape for v in op.operands):
        return None
    iterators = iterator_types(op)
    maps = indexing_maps(op)
    sizes = _dim_sizes(op)
    first_output = len(maps) - num_outputs(op)
    for dim, kind in enumerate(iterators):
        if kind != "parallel" or sizes.get(dim, 0) < min_tasks:
            continue
        block = _block(op, dim, sizes[dim], min_tasks)
        positions: list[Slot | None] = []
        for i, (value, amap) in enumerate(zip(op.operands, maps)):
            hits = [pos for pos, e in enumerate(amap.results) if _uses_dim(e, dim)]
            if len(hits) > 1:
                break
            if not hits:
                positions.append(None)
                continue
            expr = amap.results[hits[0]]
            if isinstance(expr, ir.AffineDimExpr):
                positions.append(Slot(hits[0], block, block))
                continue
            stride = _window_stride(expr, dim)
            if stride is None or i >= first_output:
                break
            extent = ir.MemRefType(value.type).shape[hits[0]]
            positions.append(Slot(hits[0], stride, extent - (sizes[dim] - 1) * stride))
        else:
            if None not in positions[first_output:]:  # each task writes its own slice
                return dim, positions, block
    return None


class Captured(NamedTuple):
    """What the op's body uses from outside it: constants (cloned into the kernel) and buffers it
    reads by index (a gather, a resize: passed to the kernel whole)."""

    constants: list[ir.Operation]
    buffers: list[ir.Value]


def _captured(op: ir.Operation) -> Captured | None:
    """What the op's body uses from outside; None if that is anything but constants and memrefs."""
    body = op.regions[0].blocks[0]
    inside: set = set(body.arguments)
    found = Captured([], [])
    for inner in body.operations:
        if len(inner.regions):
            return None
        for value in inner.operands:
            if value in inside:
                continue
            owner = value.owner
            if isinstance(value.type, ir.MemRefType) and ir.MemRefType(value.type).has_static_shape:
                if value not in found.buffers:
                    found.buffers.append(value)
            elif isinstance(owner, ir.Block) or owner.name != "arith.constant":
                return None
            elif owner not in found.constants:
                found.constants.append(owner)
        inside.update(inner.results)
    return found


def _slice(value: ir.Value, slot: Slot, task: ir.Value) -> ir.Value:
    """``value[.., task * stride : + size, ..]`` along subscript ``slot.pos``, rank kept."""
    t = ir.MemRefType(value.type)
    strides, _ = t.get_strides_and_offset()
    shape = list(t.shape)
    pos = slot.pos
    shape[pos] = slot.size
    index = task if slot.stride == 1 else arith.muli(task, arith.constant(ir.IndexType.get(), slot.stride))
    layout = ir.StridedLayoutAttr.get(ir.ShapedType.get_dynamic_stride_or_offset(), strides)
    result = ir.MemRefType.get(shape, t.element_type, layout)
    offsets = [index if i == pos else 0 for i in range(t.rank)]
    return memref.subview(value, offsets, shape, [1] * t.rank, result_type=result)


class Parallelize(ModulePass):
    NAME = "qc-parallelize"
    SUMMARY = "Split a parallel loop of large bufferized linalg.generic ops over the runtime's thread pool"
    OPTIONS = {"min-work": Option(int, 1 << 13, "elements (of the largest operand) below which an op stays serial: "
                                  "a pool dispatch costs 0.6-0.7 us, an 8K-element elementwise op a few"),
               "min-tasks": Option(int, 4, "extent the split dim needs")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        body = module.regions[0].blocks[0]
        for op in walk_ops(module, "linalg.transpose"):
            _as_generic(op)
        outlined = _Outlined(body)
        for op in walk_ops(module, "linalg.generic"):
            if op.parent.name != "func.func":
                continue
            pooled = max(math.prod(ir.MemRefType(v.type).shape) for v in op.operands) >= self.options["min-work"]
            plan = split_dim(op, self.options["min-tasks"] if pooled else 1)
            captured = _captured(op)
            if plan is None or captured is None:
                continue
            dim, positions, block = plan
            # An operand read and written in place is passed once, so that LLVM sees one pointer
            # (same-index reads and writes vectorize) rather than two that might overlap.
            args: list[ir.Value] = []
            arg_pos: list[Slot | None] = []
            for value, pos in zip(op.operands, positions):
                if value not in args:
                    args.append(value)
                    arg_pos.append(pos)
                elif arg_pos[args.index(value)] != pos:
                    break
            else:
                if any(b in args for b in captured.buffers):
                    continue  # the body loads from an operand's buffer: leave it whole, in place
                outlined.replace(op, args + captured.buffers, arg_pos + [None] * len(captured.buffers),
                                 captured.constants, captured.buffers, dim, block, _dim_sizes(op)[dim] // block, pooled)


def _as_generic(op: ir.Operation) -> None:
    """A named ``linalg.transpose`` (attention's head moves) as the equivalent copy generic, which is
    split like the others (named, it ran serially in the entry function)."""
    perm = list(ir.DenseI64ArrayAttr(op.attributes["permutation"]))
    dim = ir.AffineExpr.get_dim
    rank = len(perm)
    source = ir.AffineMap.get(rank, 0, [dim(perm.index(k)) for k in range(rank)])
    with ir.InsertionPoint(op), op.location:
        generic(list(op.operands[:1]), list(op.operands[1:]), [source, ir.AffineMap.get_identity(rank)],
                lambda a: a[0])
    op.erase()


class _Outlined:
    """The kernels and trampolines outlined so far.  A model repeats its layers, so most ops outline
    to a kernel already there (same body, same operand types): they share it, and share its
    trampoline when they split the same number of tasks, so LLVM compiles each kernel once."""

    def __init__(self, body: ir.Block):
        self.body = body
        self.kernels: dict[str, str] = {}  # printed kernel, its name left out -> name
        self.trampolines: dict[tuple[str, int], str] = {}  # (kernel, tasks) -> trampoline

    def replace(self, op: ir.Operation, args: list[ir.Value], positions: list[Slot | None],
                consts: list[ir.Operation], buffers: list[ir.Value], dim: int, block: int, tasks: int,
                pooled: bool) -> None:
        """``op`` -> a call of the trampoline running its kernel over ``tasks`` slices of ``dim``
        (``block`` indices each; ``pooled``), or of the kernel itself over all of them."""
        name = f"qc_pk_{len(self.kernels)}"
        fn = _kernel(op, self.body, name, args, positions, consts, buffers, dim, block)
        # printed on its own: a nested op printed in the module's scope numbers the whole module first
        key = fn.operation.get_asm(use_local_scope=True, assume_verified=True).replace(f"@{name}(", "@(", 1)
        if key in self.kernels:
            fn.erase()
        else:
            self.kernels[key] = name
        kernel = self.kernels[key]
        if not pooled:
            with ir.InsertionPoint(op), op.location:
                index = ir.IndexType.get()
                bounds = [arith.constant(index, 0), arith.constant(index, tasks)]
                func.CallOp([], ir.FlatSymbolRefAttr.get(kernel), args + bounds)
            op.erase()
            return
        if (kernel, tasks) not in self.trampolines:
            self.trampolines[kernel, tasks] = f"qc_ppar_{len(self.trampolines)}"
            with ir.InsertionPoint(self.body), op.location:
                declare(self.trampolines[kernel, tasks], kernel, [v.type for v in args], tasks)
        with ir.InsertionPoint(op), op.location:
            func.CallOp([], ir.FlatSymbolRefAttr.get(self.trampolines[kernel, tasks]), args)
        op.erase()


def _kernel(op: ir.Operation, body: ir.Block, kernel: str, args: list[ir.Value], positions: list[Slot | None],
            consts: list[ir.Operation], buffers: list[ir.Value], dim: int, block: int) -> func.FuncOp:
    """``@kernel(args..., t0, t1)``: ``op`` on the slices of tasks [t0, t1), at the end of ``body``."""
    ctx = body.owner.context
    index = ir.IndexType.get(ctx)
    types = [v.type for v in args]
    with ir.InsertionPoint(body), op.location:
        fn = func.FuncOp(kernel, (types + [index, index], []))
        fn.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get(ctx)
        if len({view_source(v, MEMREF_VIEWS) for v in args}) == len(args):
            fn.arg_attrs = ([ir.DictAttr.get({"llvm.noalias": ir.UnitAttr.get(ctx)})] * len(args)
                            + [ir.DictAttr.get({})] * 2)
        entry = fn.add_entry_block()
        with ir.InsertionPoint(entry):
            *params, t0, t1 = entry.arguments
            loop = scf.ForOp(t0, t1, arith.constant(index, 1))
            with ir.InsertionPoint(loop.body):
                t = loop.induction_variable
                views = {v: p if pos is None else _slice(p, pos, t) for v, p, pos in zip(args, params, positions)}
                local = {c: c.clone() for c in consts}
                start = t if block == 1 else arith.muli(t, arith.constant(index, block))
                clone = op.clone()
                for i, value in enumerate(op.operands):
                    clone.operands[i] = views[value]
                for old, new in local.items():
                    _rebind(clone, old.results[0], new.results[0])
                for value, param in zip(buffers, params[len(args) - len(buffers):]):
                    _rebind(clone, value, param)
                _offset_index(clone, dim, start)
                scf.YieldOp([])
            func.ReturnOp([])
    return fn


def _offset_index(generic: ir.Operation, dim: int, start: ir.Value) -> None:
    """In the sliced op, ``linalg.index dim`` counts from 0 within the task's slice: add the slice's
    first index."""
    for inner in list(generic.regions[0].blocks[0].operations):
        if inner.name != "linalg.index" or ir.IntegerAttr(inner.attributes["dim"]).value != dim:
            continue
        users = [use.owner for use in inner.results[0].uses]
        with ir.InsertionPoint.after(inner), inner.location:
            shifted = arith.addi(inner.results[0], start)
        for user in users:
            for i, value in enumerate(user.operands):
                if value == inner.results[0]:
                    user.operands[i] = shifted


def _rebind(root: ir.Operation, old: ir.Value, new: ir.Value) -> None:
    """Inside ``root``, use ``new`` wherever ``old`` was used."""

    def visit(inner: ir.Operation) -> ir.WalkResult:
        for i, value in enumerate(inner.operands):
            if value == old:
                inner.operands[i] = new
        return ir.WalkResult.ADVANCE

    root.walk(visit)
