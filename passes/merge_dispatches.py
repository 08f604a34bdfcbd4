"""qc-merge-dispatches: independent thread-pool calls of a function -> one call that runs them together.

Each trampoline call (passes/trampoline.py) is a region of the thread pool: the threads split its tasks,
and the caller waits at its end for the slowest of them.  A decode step's linears that read the same
activations (q, k and v; gate and up) do not depend on each other, yet each waited for the others' tail,
with the pieces of its result summed serially in between.  Here a call that does not depend on the
last one moves up beside it, with the ops it needs that came between (its buffer's allocation, its
padded bias), and the two become one merged trampoline: every thread takes its share of each kernel
in turn, and the threads meet once.

    call @qc_par_0(%x, %wq, %q)                  call @qc_mpar_0(%x, %wq, %q, %x, %wk, %k)
    call @qc_pk_5(%q, %out0, %c0, %c1)     ->    call @qc_pk_5(%q, %out0, %c0, %c1)
    %k = memref.alloc() : memref<1x64xf32>       call @qc_pk_5(%k, %out1, %c0, %c1)
    call @qc_par_0(%x, %wk, %k)
    call @qc_pk_5(%k, %out1, %c0, %c1)           (%k's alloc moved above the merged call)

    func.func private @qc_mpar_0(...) attributes {qc.kernel = ["qc_mk_0", "qc_mk_0"], qc.tasks = [64, 64],
                                                   qc.arity = [3, 3], ...}

A call moves up past an op only if neither writes a buffer the other reads or writes: what a kernel
writes is read off its body (an argument only loaded, prefetched or read by a linalg op's ``ins``
is read; anything else done with it is a write), views (subview, reshape, cast) are their buffer, and
distinct allocations and function arguments are distinct buffers.  Ops whose effects are not known
(loops, calls of declarations) are barriers.  Allocations, views and arithmetic have none (they follow
their operands only).  Calls that run their tasks serially (small ops) are not pool regions: they move
only as a merged call's dependencies.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import func

from .base import ModulePass, PassState, walk_ops
from .matchers import BUFFER_VIEWS, num_outputs
from .trampoline import CHUNKS_ATTR, AMX_ATTR, declare, parts

# Ops that only compute values (or reserve a buffer): they follow their operands only.
_PURE = ("memref.alloc", "memref.alloca", "memref.get_global", "memref.dim", "affine.apply", *BUFFER_VIEWS)
_PURE_DIALECTS = ("arith.", "index.", "math.")
# Ops that read their memref operand (in a kernel: what a kernel's argument may be used for and stay read-only).
_READS = ("memref.load", "vector.load", "vector.maskedload", "vector.transfer_read", "vector.gather",
          "memref.prefetch", "memref.dim")


def _pure(op: ir.Operation) -> bool:
    return not len(op.regions) and (op.name in _PURE or op.name.startswith(_PURE_DIALECTS))


def _outs(op: ir.Operation) -> int | None:
    """How many of a linalg op's operands (the last ones) it writes: its ``outs``, or the one ``init`` of
    linalg.map, transpose and broadcast; None for an op that is not a structured linalg op (one with a body,
    not linalg.yield or linalg.index)."""
    if not op.name.startswith("linalg.") or not len(op.regions):
        return None
    return num_outputs(op) if "operandSegmentSizes" in op.attributes else 1


def _written_args(fn: ir.Operation) -> set[int]:
    """The memref arguments of a function with a body that it may write (or let out of sight)."""
    written = set()
    for index, arg in enumerate(fn.regions[0].blocks[0].arguments):
        pending = [arg] if isinstance(arg.type, ir.MemRefType) else []
        while pending and index not in written:
            for use in pending.pop().uses:
                user, n = use.owner, use.operand_number
                if user.name in BUFFER_VIEWS:
                    pending.append(user.results[0])
                elif not (user.name in _READS or (user.name == "memref.copy" and n == 0)
                          or (_outs(user) is not None and n < len(user.operands) - _outs(user))):
                    written.add(index)
                    break
    return written


class _Effects:
    """The buffers (roots of view chains) an op of a function's block reads and writes; None: unknown."""

    def __init__(self, module: ir.Operation):
        self.funcs = {ir.StringAttr(f.attributes["sym_name"]).value: f for f in walk_ops(module, "func.func")}
        self._written: dict[str, set[int]] = {}

    def callee(self, call: ir.Operation) -> ir.Operation | None:
        """The function a ``func.call`` calls, if this module defines or declares it."""
        return self.funcs.get(ir.FlatSymbolRefAttr(call.attributes["callee"]).value)

    def written(self, name: str) -> set[int]:
        if name not in self._written:
            self._written[name] = _written_args(self.funcs[name])
        return self._written[name]

    def of(self, op: ir.Operation) -> tuple[list[ir.Value], list[ir.Value]] | None:
        name, operands = op.name, list(op.operands)
        if name == "func.call":
            callee = self.callee(op)
            if callee is None:
                return None
            kernels = parts(callee)
            if kernels is not None:  # a trampoline: what its kernels write, each of its own arguments
                writes, first = set(), 0
                for part in kernels:
                    writes |= {first + i for i in self.written(part.kernel)}
                    first += part.arity
            elif len(callee.regions[0].blocks):
                writes = self.written(ir.StringAttr(callee.attributes["sym_name"]).value)
            else:
                return None  # a declaration: not known
            memrefs = [(i, v) for i, v in enumerate(operands) if isinstance(v.type, ir.MemRefType)]
            return [v for _, v in memrefs], [v for i, v in memrefs if i in writes]
        if name == "memref.copy":
            return [operands[0]], [operands[1]]
        if name == "memref.dealloc":
            return [], [operands[0]]
        if name == "memref.load":
            return [operands[0]], []
        if name == "memref.store":
            return [], [operands[1]]
        if _outs(op) is not None:
            outs = len(operands) - _outs(op)
            reads = operands[:outs]
            for inner in walk_ops(op):
                if inner == op:
                    continue
                if inner.name not in _READS and not inner.name.startswith(("arith.", "math.", "linalg.")):
                    return None
                reads += [v for v in inner.operands if isinstance(v.type, ir.MemRefType)]
            return reads, operands[outs:]
        return None


def _buffer(value: ir.Value) -> ir.Value:
    """The buffer a memref is (part of): through views, and through any op that makes a memref of one
    (a view this pass does not know is taken for one)."""
    while not isinstance(value.owner, ir.Block):
        sources = [v for v in value.owner.operands if isinstance(v.type, ir.MemRefType)]
        if not sources:
            break
        value = sources[0]
    return value


class _Group:
    """Trampoline calls that run as one, and the ops moved up from after them that they need first."""

    def __init__(self, call: ir.Operation):
        self.calls, self.before = [call], []


class MergeDispatches(ModulePass):
    NAME = "qc-merge-dispatches"
    SUMMARY = "Run independent thread-pool calls of a function in one region of the pool"

    def run(self, module: ir.Operation, state: PassState) -> None:
        effects = _Effects(module)
        merged: dict[tuple[str, ...], str] = {}
        for fn in walk_ops(module, "func.func"):
            if len(fn.regions[0].blocks) and parts(fn) is None:
                for block in fn.regions[0].blocks:
                    self._block(block, effects, merged, module)
        used = {ir.FlatSymbolRefAttr(c.attributes["callee"]).value for c in walk_ops(module, "func.call")}
        for name in {name for key in merged for name in key} - used:
            effects.funcs[name].erase()

    def _block(self, block: ir.Block, effects: _Effects, merged: dict, module: ir.Operation) -> None:
        ops = [op.operation for op in block.operations]
        terminator, ops = ops[-1], ops[:-1]
        if sum(self._dispatch(op, effects) for op in ops) < 2:
            return
        deps = _dependencies(ops, effects)
        slots: list = []  # ops and groups, in their new order (None: an op moved into a group)
        where: dict[ir.Operation, float] = {}
        group: int | None = None  # the slot of the last group
        for i, op in enumerate(ops):
            if group is not None and self._dispatch(op, effects) and self._joins(i, group, ops, deps, where):
                for m in self._hoisted(i, group, ops, deps, where):
                    slots[int(where[m])] = None
                    where[m] = group - 0.5
                    slots[group].before.append(m)
                slots[group].calls.append(op)
                where[op] = group
                continue
            where[op] = len(slots)
            if self._dispatch(op, effects):
                group = len(slots)
                slots.append(_Group(op))
            else:
                slots.append(op)
        if not any(isinstance(s, _Group) and len(s.calls) > 1 for s in slots):
            return
        for slot in slots:
            if isinstance(slot, _Group):
                for m in slot.before:
                    m.move_before(terminator)
                if len(slot.calls) == 1:
                    slot.calls[0].move_before(terminator)
                else:
                    self._merge(slot.calls, terminator, effects, merged, module)
            elif slot is not None:
                slot.move_before(terminator)

    @staticmethod
    def _dispatch(op: ir.Operation, effects: _Effects) -> bool:
        """A call of a trampoline: a region of the pool."""
        callee = effects.callee(op) if op.name == "func.call" else None
        return callee is not None and parts(callee) is not None

    @staticmethod
    def _joins(i: int, group: int, ops: list, deps: list[set[int]], where: dict) -> bool:
        """Whether ``ops[i]`` may run with the group in slot ``group``: nothing it depends on, directly or through
        the ops placed after the group, is one of the group's calls."""
        pending, seen = list(deps[i]), set()
        while pending:
            j = pending.pop()
            if j in seen or where[ops[j]] < group:
                continue
            if where[ops[j]] == group:
                return False
            seen.add(j)
            pending += deps[j]
        return True

    @staticmethod
    def _hoisted(i: int, group: int, ops: list, deps: list[set[int]], where: dict) -> list[ir.Operation]:
        """The ops placed after the group that ``ops[i]`` depends on, in block order: they move before it."""
        needed, pending = set(), list(deps[i])
        while pending:
            j = pending.pop()
            if j not in needed and where[ops[j]] > group:
                needed.add(j)
                pending += deps[j]
        return [ops[j] for j in sorted(needed)]

    @staticmethod
    def _merge(calls: list, terminator: ir.Operation, effects: _Effects, merged: dict, module: ir.Operation) -> None:
        callees = [effects.callee(c) for c in calls]
        key = tuple(ir.StringAttr(c.attributes["sym_name"]).value for c in callees)
        operands = [v for c in calls for v in c.operands]
        if key not in merged:
            name = f"qc_mpar_{len(merged)}"
            while name in effects.funcs:
                name += "_"
            members = [p for c in callees for p in parts(c)]
            chunks = max(ir.IntegerAttr(c.attributes[CHUNKS_ATTR]).value if CHUNKS_ATTR in c.attributes else 1
                         for c in callees)
            with ir.InsertionPoint(module.regions[0].blocks[0]), module.location:
                decl = declare(name, [p.kernel for p in members], [v.type for v in operands],
                               [p.tasks for p in members], any(AMX_ATTR in c.attributes for c in callees), chunks,
                               [p.arity for p in members])
            effects.funcs[name] = decl.operation
            merged[key] = name
        with ir.InsertionPoint(terminator), terminator.location:
            func.CallOp([], ir.FlatSymbolRefAttr.get(merged[key]), operands)
        for call in calls:
            call.erase()


def _dependencies(ops: list[ir.Operation], effects: _Effects) -> list[set[int]]:
    """For each op of a block, the earlier ones it must follow: those that define its operands (also inside
    its regions), and those whose buffer accesses conflict with its own."""
    index = {op: i for i, op in enumerate(ops)}
    deps: list[set[int]] = []
    last_write: dict[ir.Value, int] = {}
    readers: dict[ir.Value, list[int]] = {}
    barrier, since_barrier = None, []
    for i, op in enumerate(ops):
        mine = set()
        for inner in walk_ops(op):
            for v in inner.operands:
                owner = v.owner
                if not isinstance(owner, ir.Block) and owner.operation in index and index[owner.operation] < i:
                    mine.add(index[owner.operation])
        if _pure(op):  # only its operands
            deps.append(mine)
            continue
        access = effects.of(op)
        if barrier is not None:
            mine.add(barrier)
        if access is None:  # after everything before it, and before everything after it
            mine.update(since_barrier)
            barrier, since_barrier = i, []
            last_write.clear()
            readers.clear()
        else:
            reads, writes = ([_buffer(v) for v in vs] for vs in access)
            for r in reads:
                if r in last_write:
                    mine.add(last_write[r])
            for w in writes:
                if w in last_write:
                    mine.add(last_write[w])
                mine.update(readers.get(w, ()))
            for r in reads:
                readers.setdefault(r, []).append(i)
            for w in writes:
                last_write[w] = i
                readers[w] = []
            since_barrier.append(i)
        deps.append(mine)
    return deps
