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
"""

from __future__ import annotations

from torch_mlir import ir

from .base import ModulePass, Option, PassState

_BRANCHES = ("llvm.br", "llvm.cond_br")


class SerialLoops(ModulePass):
    NAME = "qc-serial-loops"
    SUMMARY = "Mark the loops of entry functions not to be loop-vectorized by LLVM (their loops are small)"
    OPTIONS = {"prefix": Option(str, "qc_main", "entry functions: llvm.func names starting with this")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        disable = ir.Attribute.parse("#llvm.loop_annotation<vectorize = <width = 1 : i32>>")
        for fn in module.regions[0].blocks[0].operations:
            fn = fn.operation
            if fn.name != "llvm.func" or not ir.StringAttr(fn.attributes["sym_name"]).value.startswith(
                    self.options["prefix"]):
                continue
            blocks = list(fn.regions[0].blocks)
            order = {block: i for i, block in enumerate(blocks)}
            for i, block in enumerate(blocks):
                term = list(block.operations)[-1].operation if len(block.operations) else None
                if term is not None and term.name in _BRANCHES and any(order.get(s, i + 1) <= i for s in term.successors):
                    term.attributes["loop_annotation"] = disable
