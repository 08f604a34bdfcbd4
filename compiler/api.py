"""``qc.compile``: a model in, a native artifact out (mirrors ``qc-compile``)."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from torch_mlir import ir

from ..passes.base import PassState
from ..runtime import build as rtbuild
from . import artifacts, codegen
from .context import make_context
from .errors import QCError
from .frontend_onnx import import_onnx, spec_of
from .signature import Signature, TensorSpec

IMPORT_PIPELINE = "builtin.module(qc-outline-weights, qc-raise, canonicalize, cse)"
EMITS = ("so", "exe", "obj", "mlir", "llvm")


@dataclass
class CompileResult:
    output: Path
    signature: Signature
    files: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def import_model(model, ctx: ir.Context, shapes=None, example_inputs=None, input_names=None):
    """Any supported model -> (linalg module, signature)."""
    if isinstance(model, (str, Path)) and str(model).endswith(".mlir"):
        return _import_mlir(Path(model), ctx)
    if hasattr(model, "forward") and hasattr(model, "parameters"):
        if example_inputs is None:
            raise QCError("compiling a PyTorch module needs example_inputs")
        from .frontend_torch import import_torch

        return import_torch(model, tuple(example_inputs), ctx, input_names)
    return import_onnx(model, ctx, shapes)


def _import_mlir(path: Path, ctx: ir.Context):
    from .diagnostics import error_from

    try:
        with ctx:
            module = ir.Module.parseFile(str(path))
    except ir.MLIRError as err:
        raise error_from(err) from None
    except OSError as err:
        raise QCError(f"{path}: {err}") from None
    main = next((op.operation for op in module.body.operations if op.operation.name == "func.func"
                 and ir.StringAttr(op.operation.attributes["sym_name"]).value == "main"), None)
    if main is None:
        raise QCError(f"{path}: no func.func @main to compile")
    ftype = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)
    return module, Signature(tuple(spec_of(f"arg{i}", t) for i, t in enumerate(ftype.inputs)),
                             tuple(spec_of(f"result{i}", t) for i, t in enumerate(ftype.results)))


def compile(model, output: str | Path, *, emit: str = "so", shapes: dict | None = None,
            example_inputs=None, input_names=None, target_cpu: str | None = None,
            target_features: str | None = None) -> CompileResult:
    """Compile ``model`` (ONNX path/ModelProto, ``.mlir`` path, or ``nn.Module``) to ``output``."""
    if emit not in EMITS:
        raise QCError(f"--emit must be one of {', '.join(EMITS)}, got '{emit}'")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    ctx = make_context()
    module, sig = import_model(model, ctx, shapes, example_inputs, input_names)
    state = PassState()
    codegen.run(module, IMPORT_PIPELINE, state, "import passes")
    timings["import"] = time.perf_counter() - t0
    if emit == "mlir":
        output.write_text(module.operation.get_asm(large_elements_limit=64))
        weights = output.with_suffix(".safetensors")
        state.store.save(weights)
        return CompileResult(output, sig, [output, weights], timings)

    t1 = time.perf_counter()
    target = codegen.Target.of(target_cpu, target_features)
    weight_names, kernels = codegen.lower_to_llvm_dialect(module, state, target)
    llvm_ir = codegen.to_llvm_ir(module)
    timings["lower"] = time.perf_counter() - t1
    if emit == "llvm":
        output.write_text(llvm_ir)
        return CompileResult(output, sig, [output], timings)
    t2 = time.perf_counter()
    obj = codegen.emit_object(llvm_ir, target)
    timings["llvm"] = time.perf_counter() - t2
    if emit == "obj":
        output.write_bytes(obj)
        return CompileResult(output, sig, [output], timings)

    t3 = time.perf_counter()
    weights = [TensorSpec(n, tuple(state.store[n].shape), str(state.store[n].dtype)) for n in weight_names]
    blob = output.with_suffix(".qcw")
    offsets = state.store.write_blob(blob, weight_names)
    with tempfile.TemporaryDirectory(prefix="qc-") as tmp:
        tmp = Path(tmp)
        (tmp / "model.o").write_bytes(obj)
        (tmp / "glue.c").write_text(artifacts.glue(sig, weights, offsets, blob.stat().st_size, blob.name,
                                                   emit == "exe", kernels))
        rtbuild.compile_c(tmp / "glue.c", tmp / "glue.o")
        rtbuild.link([tmp / "model.o", tmp / "glue.o", rtbuild.runtime_object()], output, shared=emit == "so")
    header = output.with_suffix(".h")
    header.write_text(artifacts.header(sig))
    timings["link"] = time.perf_counter() - t3
    return CompileResult(output, sig, [output, blob, header], timings)
