"""The thread-pool trampoline ABI shared by qc-microkernels, qc-parallelize and the C glue.

A pass that moves work onto the runtime's thread pool emits a kernel

    func.func @K(%args: memref..., %t0: index, %t1: index)      tasks [t0, t1) of the work

and declares a trampoline that the generated C glue defines (``c_source``):

    func.func private @T(%args: memref...) attributes {llvm.emit_c_interface, qc.kernel = "K", qc.tasks = N}

called where the work was: ``_mlir_ciface_T`` packs the memref descriptors into a context and
splits tasks [0, N) over ``qc_parallel_for``, each chunk calling ``_mlir_ciface_K``.  ``qc.amx``
on the declaration says that the kernel uses AMX tiles, so the model asks the OS for them at load;
``qc.chunks_per_thread = C`` (default 1) cuts the tasks into C chunks per thread, taken in turn by
whichever thread is free, where one range per thread would leave a thread that started late (or
was slowed) holding the others up.

A merged trampoline (qc-merge-dispatches) runs several kernels in one region of the pool: its
arguments are theirs one after the other, and ``qc.kernel``, ``qc.tasks`` and ``qc.arity`` (how many
arguments each takes) are arrays.  It splits ``max(tasks)`` tasks; a chunk ``[b, e)`` of them runs
tasks ``[b n_i / T, e n_i / T)`` of each kernel ``i`` in turn, so every thread takes its share of each
kernel and the threads wait for each other once.
"""

from __future__ import annotations

from typing import NamedTuple

from torch_mlir import ir
from torch_mlir.dialects import func

KERNEL_ATTR = "qc.kernel"  # on a trampoline declaration: the kernel it runs
TASKS_ATTR = "qc.tasks"    # ... and how many tasks it splits
AMX_ATTR = "qc.amx"        # ... and that it uses AMX tiles (the process must ask the OS for them)
CHUNKS_ATTR = "qc.chunks_per_thread"  # ... and into how many chunks per thread the pool cuts them
ARITY_ATTR = "qc.arity"    # ... and, merged, how many of the arguments each kernel takes


class Part(NamedTuple):
    kernel: str
    tasks: int
    arity: int  # memref arguments


class Trampoline(NamedTuple):
    name: str
    parts: list[Part]  # the kernels it runs, in turn; one unless merged
    ranks: list[int]  # of the memref arguments
    amx: bool
    chunks_per_thread: int

    @property
    def tasks(self) -> int:
        """What the pool splits: every part's tasks are spread over the same range."""
        return max(p.tasks for p in self.parts)


def declare(name: str, kernel: str | list[str], types: list[ir.Type], tasks: int | list[int], amx: bool = False,
            chunks_per_thread: int = 1, arity: list[int] | None = None) -> func.FuncOp:
    """The trampoline declaration ``@name`` running ``@kernel``'s ``tasks`` tasks (at the insertion point);
    lists of kernels, tasks and ``arity`` declare a merged one."""
    ctx = ir.Context.current
    i64 = ir.IntegerType.get_signless(64, ctx)
    decl = func.FuncOp(name, (types, []), visibility="private")
    decl.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get(ctx)
    if isinstance(kernel, str):
        decl.attributes[KERNEL_ATTR] = ir.StringAttr.get(kernel, ctx)
        decl.attributes[TASKS_ATTR] = ir.IntegerAttr.get(i64, tasks)
    else:
        decl.attributes[KERNEL_ATTR] = ir.ArrayAttr.get([ir.StringAttr.get(k, ctx) for k in kernel])
        decl.attributes[TASKS_ATTR] = ir.ArrayAttr.get([ir.IntegerAttr.get(i64, n) for n in tasks])
        decl.attributes[ARITY_ATTR] = ir.ArrayAttr.get([ir.IntegerAttr.get(i64, n) for n in arity])
    if amx:
        decl.attributes[AMX_ATTR] = ir.UnitAttr.get(ctx)
    if chunks_per_thread > 1:
        decl.attributes[CHUNKS_ATTR] = ir.IntegerAttr.get(i64, chunks_per_thread)
    return decl


def parts(decl: ir.Operation) -> list[Part] | None:
    """The kernels a trampoline declaration runs; None for a function that is not one."""
    if KERNEL_ATTR not in decl.attributes:
        return None
    kernel, tasks = decl.attributes[KERNEL_ATTR], decl.attributes[TASKS_ATTR]
    if isinstance(kernel, ir.StringAttr):
        arity = len(ir.FunctionType(ir.TypeAttr(decl.attributes["function_type"]).value).inputs)
        return [Part(kernel.value, ir.IntegerAttr(tasks).value, arity)]
    return [Part(ir.StringAttr(k).value, ir.IntegerAttr(n).value, ir.IntegerAttr(a).value)
            for k, n, a in zip(ir.ArrayAttr(kernel), ir.ArrayAttr(tasks), ir.ArrayAttr(decl.attributes[ARITY_ATTR]))]


def trampolines(module: ir.Module) -> list[Trampoline]:
    """Every trampoline declared in ``module``."""
    found = []
    for op in module.body.operations:
        op = op.operation
        if op.name == "func.func" and KERNEL_ATTR in op.attributes:
            ftype = ir.FunctionType(ir.TypeAttr(op.attributes["function_type"]).value)
            found.append(Trampoline(ir.StringAttr(op.attributes["sym_name"]).value, parts(op),
                                    [ir.MemRefType(t).rank for t in ftype.inputs], AMX_ATTR in op.attributes,
                                    ir.IntegerAttr(op.attributes[CHUNKS_ATTR]).value
                                    if CHUNKS_ATTR in op.attributes else 1))
    return found


def c_source(t: Trampoline) -> list[str]:
    """``_mlir_ciface_<name>(memrefs...)``: runs the kernels' tasks on the thread pool (the glue defines
    ``qc_memref_<rank>`` descriptor structs first)."""
    params = ", ".join(f"qc_memref_{r} *a{i}" for i, r in enumerate(t.ranks))
    fields = " ".join(f"qc_memref_{r} *a{i};" for i, r in enumerate(t.ranks))
    inits = ", ".join(f"a{i}" for i in range(len(t.ranks)))
    externs, calls, first = [], [], 0
    for part in t.parts:
        ranks = t.ranks[first:first + part.arity]
        args = ", ".join(f"c->a{i}" for i in range(first, first + part.arity))
        externs.append(f"extern void _mlir_ciface_{part.kernel}({', '.join(f'qc_memref_{r} *' for r in ranks)}, "
                       "int64_t, int64_t);")
        span = ("begin, end" if part.tasks == t.tasks else
                f"begin * {part.tasks} / {t.tasks}, end * {part.tasks} / {t.tasks}")
        calls.append(f"  _mlir_ciface_{part.kernel}({args}, {span});")
        first += part.arity
    return [
        *externs,
        f"typedef struct {{ {fields} }} {t.name}_ctx;",
        f"static void {t.name}_task(void *ctx, int64_t begin, int64_t end) {{",
        f"  {t.name}_ctx *c = ctx;",
        *calls,
        "}",
        f"void _mlir_ciface_{t.name}({params}) {{",
        f"  {t.name}_ctx c = {{{inits}}};",
        f"  qc_parallel_for({t.name}_task, &c, {t.tasks}, {t.chunks_per_thread});",
        "}",
    ]
