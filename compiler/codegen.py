"""linalg-on-tensors (+ qc ops) -> LLVM IR -> native object, through llvmlite.

The module is bufferized with outputs as caller-provided buffers, weights as
arguments (see qc-weights-to-args), lowered to the LLVM dialect, translated
to LLVM IR, optimised at O3 for the target CPU and emitted as a PIC object.
"""

from __future__ import annotations

import re
import struct

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects.llvm import translate_module_to_llvmir

from ..passes.base import PassState
from ..passes.pipeline import build
from .errors import QCError

# Before bufferization: qc ops to linalg, weights to arguments, fusion.
PRE_BUFFERIZE = ("builtin.module(qc-lower-linear, inline, symbol-dce, qc-weights-to-args, "
                 "func.func(linalg-fuse-elementwise-ops), canonicalize, cse)")

BUFFERIZE = ("builtin.module(one-shot-bufferize{bufferize-function-boundaries "
             "function-boundary-type-conversion=identity-layout-map}, "
             "buffer-results-to-out-params{hoist-static-allocs modify-public-functions}, "
             "canonicalize, buffer-deallocation-pipeline)")

TO_LLVM = ("builtin.module(func.func(convert-linalg-to-loops), "
           "convert-vector-to-scf, lower-affine, convert-scf-to-cf, "
           "expand-strided-metadata, finalize-memref-to-llvm, convert-vector-to-llvm, "
           "convert-math-to-llvm, convert-math-to-libm, convert-arith-to-llvm, convert-index-to-llvm, "
           "convert-func-to-llvm, convert-cf-to-llvm, convert-ub-to-llvm, reconcile-unrealized-casts)")


ENTRY = "qc_main"


def run(module: ir.Module, pipeline: str, state: PassState, what: str) -> None:
    with module.context:
        pm = build(pipeline, state, module.context)
        try:
            pm.run(module.operation)
        except ir.MLIRError as err:
            from .diagnostics import error_from

            raise error_from(err, f"{what} failed:\n") from None


def lower_to_llvm_dialect(module: ir.Module, state: PassState) -> list[str]:
    """Runs the codegen pipelines in place; returns @main's weight argument names."""
    run(module, PRE_BUFFERIZE, state, "lowering qc ops")
    main = _main(module)
    weight_args = [ir.StringAttr(a).value for a in main.attributes["qc.weight_args"]]
    with module.context:
        main.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()
        main.attributes["sym_name"] = ir.StringAttr.get(ENTRY)  # "main" would clash with an executable's
    run(module, BUFFERIZE, state, "bufferization")
    run(module, TO_LLVM, state, "lowering to LLVM")
    return weight_args


def _main(module: ir.Module) -> ir.Operation:
    for op in module.body.operations:
        op = op.operation
        if op.name == "func.func" and ir.StringAttr(op.attributes["sym_name"]).value == "main":
            return op
    raise QCError("module has no @main")


def _hex_double(value: float) -> str:
    return "0x%016X" % struct.unpack("<Q", struct.pack("<d", value))[0]


def _portable_llvm_ir(text: str) -> str:
    """Spell float constants the way every LLVM version parses them.

    The bindings' LLVM prints ``f0x3F800000`` and inexact decimals for
    ``float``; llvmlite's parser wants the double-width hex form."""
    def hexfloat(m):
        bits = bytes.fromhex(m.group(1))[::-1]
        return _hex_double(float(np.frombuffer(bits, np.float32)[0]))

    def decimal(m):
        value = float(m.group(2))
        if m.group(1) == "float":
            value = float(np.float32(value))
        return f"{m.group(1)} {_hex_double(value)}"

    text = re.sub(r"\bf0x([0-9A-Fa-f]{8})\b", hexfloat, text)
    return re.sub(r"\b(float|double) (-?(?:[0-9]+\.[0-9]+e[-+][0-9]+|inf|nan))\b", decimal, text)


def to_llvm_ir(module: ir.Module) -> str:
    return _portable_llvm_ir(str(translate_module_to_llvmir(module.operation)))


def host_cpu() -> tuple[str, str]:
    import llvmlite.binding as llvm

    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


def emit_object(llvm_ir: str, cpu: str | None = None, features: str | None = None) -> bytes:
    """O3-optimise ``llvm_ir`` for ``cpu`` (default: this host) and emit a PIC object."""
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    host_name, host_features = host_cpu()
    if cpu is None:
        cpu, features = host_name, host_features
    mod = llvm.parse_assembly(llvm_ir)
    mod.verify()
    target = llvm.Target.from_default_triple()
    tm = target.create_target_machine(cpu=cpu, features=features or "", opt=3, reloc="pic", codemodel="default")
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    return tm.emit_object(mod)
