"""LLVM IR text -> an O3-optimised PIC object, through llvmlite alone.

Importable (``emit``) and runnable as a script (``python llvm_object.py IN.ll OUT.o CPU FEATURES``):
llvmlite serialises every call into LLVM behind one process-wide lock, so units compiled side by
side run in processes of their own.  The script imports nothing but llvmlite (not qc, whose
imports take longer than a small unit's compile).
"""

from __future__ import annotations

import sys


def emit(llvm_ir: str, cpu: str, features: str) -> bytes:
    """The object of ``llvm_ir`` for ``cpu`` / ``features``; RuntimeError if LLVM rejects the IR."""
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    mod = llvm.parse_assembly(llvm_ir, context=llvm.create_context())
    mod.verify()
    # The kernels' vectors are as wide as the registers: keep LLVM from splitting 512-bit ones.
    features = ",".join(f for f in (features, "-prefer-256-bit") if f)
    tm = llvm.Target.from_default_triple().create_target_machine(
        cpu=cpu, features=features, opt=3, reloc="pic", codemodel="default")
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    return tm.emit_object(mod)


if __name__ == "__main__":
    src, dst, cpu, features = sys.argv[1:5]
    with open(src) as f:
        text = f.read()
    try:
        obj = emit(text, cpu, features)
    except RuntimeError as err:
        sys.exit(f"LLVM rejected the IR: {err}")
    with open(dst, "wb") as f:
        f.write(obj)
