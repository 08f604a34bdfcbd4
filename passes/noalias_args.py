"""qc-noalias-args: carry ``llvm.noalias`` from a kernel's memref arguments to their data pointers.

Runs after convert-func-to-llvm.  A ``func.func`` with ``llvm.emit_c_interface`` and a
``{llvm.noalias}`` memref argument (qc-parallelize marks the distinct buffers of its kernels)
converts to two functions, and the attribute lands only on the C wrapper's descriptor pointer:

    llvm.func @k(%a_alloc: !llvm.ptr, %a_aligned: !llvm.ptr, %a_offset: i64, ..., %b_alloc: !llvm.ptr, ...)
    llvm.func @_mlir_ciface_k(%a: !llvm.ptr {llvm.noalias}, %b: !llvm.ptr {llvm.noalias})

which tells LLVM nothing about the data.  This pass marks the aligned pointer of each such memref in
``@k`` (the one loads and stores use) ``noalias``:

    llvm.func @k(%a_alloc: !llvm.ptr, %a_aligned: !llvm.ptr {llvm.noalias}, ...)

so LLVM may vectorize a copy between two buffers without run-time overlap checks (it could not
vectorize im2col's unrolled channel copies before).  Memref arguments expand to two pointers
then integers, so the k-th pair of adjacent pointers of ``@k`` is its k-th memref argument.
"""

from __future__ import annotations

from torch_mlir import ir

from .base import ModulePass, PassState

_WRAPPER = "_mlir_ciface_"


def _arg_attrs(fn: ir.Operation, count: int) -> list[ir.DictAttr]:
    if "arg_attrs" in fn.attributes:
        return [ir.DictAttr(a) for a in ir.ArrayAttr(fn.attributes["arg_attrs"])]
    return [ir.DictAttr.get({}) for _ in range(count)]


class NoaliasArgs(ModulePass):
    NAME = "qc-noalias-args"
    SUMMARY = "Mark the data pointers of llvm.noalias memref arguments noalias (after convert-func-to-llvm)"

    def run(self, module: ir.Operation, state: PassState) -> None:
        funcs = {ir.StringAttr(op.attributes["sym_name"]).value: op for op in module.regions[0].blocks[0].operations
                 if op.operation.name == "llvm.func"}
        for name, wrapper in funcs.items():
            kernel = funcs.get(name.removeprefix(_WRAPPER)) if name.startswith(_WRAPPER) else None
            if kernel is None or "arg_attrs" not in wrapper.attributes:
                continue
            wrapper_args = list(wrapper.regions[0].blocks[0].arguments)
            noalias = [("llvm.noalias" in attrs) for attrs, arg in zip(_arg_attrs(wrapper, len(wrapper_args)), wrapper_args)
                       if str(arg.type) == "!llvm.ptr"]  # the memref arguments, as descriptor pointers
            args = list(kernel.regions[0].blocks[0].arguments)
            ptr = [str(a.type) == "!llvm.ptr" for a in args]
            aligned = [i + 1 for i in range(len(args) - 1) if ptr[i] and ptr[i + 1] and (i == 0 or not ptr[i - 1])]
            if len(aligned) != len(noalias) or not any(noalias):
                continue
            attrs = _arg_attrs(kernel, len(args))
            for index, marked in zip(aligned, noalias):
                if marked:
                    attrs[index] = ir.DictAttr.get({**{a.name: a.attr for a in attrs[index]},
                                                    "llvm.noalias": ir.UnitAttr.get()})
            kernel.attributes["arg_attrs"] = ir.ArrayAttr.get(attrs)
