"""A small typed builder for the kernels of qc-microkernels (and the bodies of qc-gpu-linear's).

IR is built with the MLIR bindings at the current insertion point: constants are made on demand
and hoisted to the kernel's entry block (one per value and type), loops are context managers
that carry values, and loads/stores take an optional lane mask.

    b = KernelBuilder("qc_mk_0", [a_type, b_type, c_type, index, index])
    a, w, c, t0, t1 = b.args
    with b.loop(t0, t1) as task:
        ...
    b.finish()
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith, func, llvm, memref, scf, vector

from ..builders import reassociation

Index = int | ir.Value


def vec(lanes: int, elt: ir.Type) -> ir.VectorType:
    return ir.VectorType.get([lanes], elt)


def f32() -> ir.Type:
    return ir.F32Type.get()


def i(bits: int) -> ir.Type:
    return ir.IntegerType.get_signless(bits)


class Loop:
    """An ``scf.for`` being built: its induction variable, the carried values inside the body
    (``args``), and after the ``with`` block the final values (``results``)."""

    def __init__(self, op: scf.ForOp):
        self.op = op
        self.iv = op.induction_variable
        self.args = list(op.inner_iter_args)
        self._next: list[ir.Value] | None = None

    def carry(self, values: Sequence[ir.Value]) -> None:
        """The values the next iteration starts from (the body's ``scf.yield``)."""
        self._next = list(values)

    @property
    def results(self) -> list[ir.Value]:
        return list(self.op.results)


class BodyBuilder:
    """Builds IR at the current insertion point inside ``entry`` (a kernel's entry block), where its
    constants go."""

    def __init__(self, entry: ir.Block):
        self.entry = entry
        self._consts: dict[tuple[str, str], ir.Value] = {}

    # --- constants: hoisted to the entry block, one per value and type --------------------------

    def const(self, t: ir.Type, attr: ir.Attribute) -> ir.Value:
        key = (str(t), str(attr))
        if key not in self._consts:
            self._consts[key] = arith.constant(t, attr, ip=ir.InsertionPoint.at_block_begin(self.entry))
        return self._consts[key]

    def index(self, value: Index) -> ir.Value:
        if isinstance(value, ir.Value):
            return value
        t = ir.IndexType.get()
        return self.const(t, ir.IntegerAttr.get(t, value))

    def int(self, bits: int, value: int) -> ir.Value:
        return self.const(i(bits), ir.IntegerAttr.get(i(bits), value))

    def float(self, value: float) -> ir.Value:
        """An f32 scalar."""
        return self.const(f32(), ir.FloatAttr.get(f32(), value))

    def splat(self, t: ir.VectorType, value: float | int) -> ir.Value:
        elt = t.element_type
        attr = ir.FloatAttr.get(elt, value) if isinstance(elt, ir.FloatType) else ir.IntegerAttr.get(elt, value)
        return self.const(t, ir.DenseElementsAttr.get_splat(t, attr))

    def dense(self, t: ir.VectorType, values: Sequence[float]) -> ir.Value:
        return self.const(t, ir.DenseElementsAttr.get(np.asarray(values, dtype=np.float32), type=t))

    # --- index arithmetic (ints become constants) ------------------------------------------------

    def add(self, a: Index, b: Index) -> ir.Value:
        if isinstance(a, int) and a == 0:
            return self.index(b)
        if isinstance(b, int) and b == 0:
            return self.index(a)
        return arith.addi(self.index(a), self.index(b))

    def mul(self, a: Index, b: Index) -> ir.Value:
        if isinstance(b, int) and b == 1:
            return self.index(a)
        return arith.muli(self.index(a), self.index(b))

    def min(self, a: Index, b: Index) -> ir.Value:
        return arith.minui(self.index(a), self.index(b))

    # --- control flow -----------------------------------------------------------------------------

    @contextmanager
    def when(self, condition: ir.Value) -> Iterator[None]:
        """``scf.if`` without results: the body runs where ``condition`` holds."""
        op = scf.IfOp(condition)
        with ir.InsertionPoint(op.then_block):
            yield
            scf.YieldOp([])

    # --- loops ------------------------------------------------------------------------------------

    @contextmanager
    def loop(self, lo: Index, hi: Index, step: Index = 1, carried: Sequence[ir.Value] = ()) -> Iterator[Loop]:
        """``scf.for`` over [lo, hi) by ``step``, carrying ``carried``; the body calls ``carry``
        with the next values (nothing to call when nothing is carried)."""
        op = scf.ForOp(self.index(lo), self.index(hi), self.index(step), list(carried))
        loop = Loop(op)
        with ir.InsertionPoint(op.body):
            yield loop
            scf.YieldOp(loop._next if loop._next is not None else [])

    def vector_blocks(self, count: int, lanes: int, body) -> None:
        """``body(start, mask)`` for each vector of ``lanes`` of ``count`` contiguous elements: the full
        vectors in a loop, then the rest under a lane mask."""
        full = count - count % lanes
        if full:
            with self.loop(0, full, lanes) as v:
                body(v.iv, None)
        if count % lanes:
            body(self.index(full), vector.create_mask(vec(lanes, i(1)), [self.index(count % lanes)]))

    # --- memory -----------------------------------------------------------------------------------

    def load(self, t: ir.VectorType, ref: ir.Value, idx: Sequence[Index], mask: ir.Value | None = None) -> ir.Value:
        """A vector load; with ``mask``, lanes outside it read zero."""
        indices = [self.index(x) for x in idx]
        if mask is None:
            return vector.load(t, ref, indices)
        return vector.maskedload(t, ref, indices, mask, self.splat(t, 0))

    def store(self, value: ir.Value, ref: ir.Value, idx: Sequence[Index], mask: ir.Value | None = None) -> None:
        indices = [self.index(x) for x in idx]
        if mask is None:
            vector.store(value, ref, indices)
        else:
            vector.maskedstore(ref, indices, mask, value)

    def scalar(self, ref: ir.Value, idx: Sequence[Index]) -> ir.Value:
        return memref.load(ref, [self.index(x) for x in idx])

    def prefetch(self, ref: ir.Value, idx: Sequence[Index], locality: int = 3) -> None:
        """A read prefetch: into every cache level (locality 3), or from the L2 out (2)."""
        memref.prefetch(ref, [self.index(x) for x in idx], False, locality, True)

    def view(self, ref: ir.Value, shape: Sequence[int]) -> ir.Value:
        """Identity-layout ``ref`` reshaped to ``shape``: leading dims collapsed or unit ones added."""
        src = ir.MemRefType(ref.type)
        t = ir.MemRefType.get(list(shape), src.element_type)
        rank, target = src.rank, len(shape)
        if rank > target:
            lead = rank - target + 1
            return memref.collapse_shape(t, ref, reassociation([list(range(lead))] + [[d] for d in range(lead, rank)]))
        if rank < target:
            extra = target - rank
            lists = [list(range(extra + 1))] + [[extra + d] for d in range(1, rank)] if rank else []
            return memref.expand_shape(t, ref, reassociation(lists), [], list(shape))
        return memref.cast(t, ref)

    # --- vectors ----------------------------------------------------------------------------------

    def bcast(self, t: ir.VectorType, x: ir.Value) -> ir.Value:
        return vector.broadcast(t, x)

    def fma(self, a: ir.Value, b: ir.Value, acc: ir.Value) -> ir.Value:
        return vector.fma(a, b, acc)

    def intrinsic(self, name: str, result: ir.Type | None, *args: ir.Value) -> ir.Value | None:
        """``llvm.call_intrinsic "name"(args)``: the ISA instructions MLIR has no op for."""
        out = llvm.call_intrinsic(result, name, list(args), [], [])
        return out if result is not None else None


class KernelBuilder(BodyBuilder):
    """Builds one ``func.func @name(args) attributes {llvm.emit_c_interface}`` at the insertion point."""

    def __init__(self, name: str, arg_types: Sequence[ir.Type]):
        self.func = func.FuncOp(name, (list(arg_types), []))
        self.func.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()
        super().__init__(self.func.add_entry_block())
        self.args = list(self.entry.arguments)
        self._ip = ir.InsertionPoint(self.entry)
        self._ip.__enter__()

    def finish(self) -> func.FuncOp:
        func.ReturnOp([])
        self._ip.__exit__(None, None, None)
        return self.func
