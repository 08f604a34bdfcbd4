"""qc-serial-loops: keep LLVM's loop vectorizer off the serial loops of the entry functions.

Runs on the LLVM dialect (after convert-cf-to-llvm).  What an entry function (``@qc_main``,
``@qc_main_<entry>``) still loops over itself is small: matmuls run as vector micro-kernels and large
elementwise ops and reductions as qc-parallelize's tasks, both in functions of their own.  LLVM's
loop vectorizer nevertheless versions every one of those small loops, and took 60 % of the O3 time
of a stories260K decoder (57 s of 95; 19 s without it, SLP vectorization kept).  Each loop
back edge of an entry function (a branch to a block at or before its own: scf-to-cf lays a loop's
header before its body) gets

    llvm.br ^bb1(%next : i64) {loop_annotation = #llvm.loop_annotation<vectorize = <width = 1 : i32>>}

and LLVM leaves that loop to the SLP vectorizer and unrolling.

A function with loops that an entry function calls (a task kernel run serially, ``@qc_pk_N`` over
all its tasks) is kept out of line, so that its loops are vectorized once, in the kernel, rather than
inlined at each call into the entry function, where LLVM's loop vectorizer revisited the whole
function per inlined loop (a stories260K w8a8 decoder's O3: 37 s, 4.7 s with its kernels out of line):

    llvm.func @qc_pk_3(...) attributes {passthrough = ["noinline"]}
"""

from __future__ import annotations

from torch_mlir import ir

from .base import ModulePass, Option, PassState

_BRANCHES = ("llvm.br", "llvm.cond_br")


class SerialLoops(ModulePass):
    NAME = "qc-serial-loops"
    SUMMARY = ("Mark the loops of entry functions not to be loop-vectorized by LLVM (their loops are small), "
               "and the functions with loops they call noinline")
    OPTIONS = {"prefix": Option(str, "qc_main", "entry functions: llvm.func names starting with this")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        disable = ir.Attribute.parse("#llvm.loop_annotation<vectorize = <width = 1 : i32>>")
        funcs = {ir.StringAttr(op.attributes["sym_name"]).value: op.operation
                 for op in module.regions[0].blocks[0].operations if op.operation.name == "llvm.func"}
        entries = {name: fn for name, fn in funcs.items() if name.startswith(self.options["prefix"])}
        for fn in entries.values():
            for term in _back_edges(fn):
                term.attributes["loop_annotation"] = disable
        callees = {ir.FlatSymbolRefAttr(op.attributes["callee"]).value for fn in entries.values()
                   for block in fn.regions[0].blocks
                   for op in block.operations if op.operation.name == "llvm.call" and "callee" in op.operation.attributes}
        for name in sorted(callees - entries.keys()):
            fn = funcs.get(name)
            if fn is None or not _back_edges(fn):
                continue
            passthrough = list(ir.ArrayAttr(fn.attributes["passthrough"])) if "passthrough" in fn.attributes else []
            if "noinline" not in {str(a).strip('"') for a in passthrough}:
                fn.attributes["passthrough"] = ir.ArrayAttr.get(passthrough + [ir.StringAttr.get("noinline")])


def _back_edges(fn: ir.Operation) -> list[ir.Operation]:
    """The branches of ``fn`` to a block at or before their own (scf-to-cf lays a loop's header before
    its body): one per loop."""
    blocks = list(fn.regions[0].blocks)
    order = {block: i for i, block in enumerate(blocks)}
    edges = []
    for i, block in enumerate(blocks):
        term = list(block.operations)[-1].operation if len(block.operations) else None
        if term is not None and term.name in _BRANCHES and any(order.get(s, i + 1) <= i for s in term.successors):
            edges.append(term)
    return edges
