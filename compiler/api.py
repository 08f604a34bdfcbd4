"""``qc.compile``: a model in, a native artifact out (mirrors ``qc-compile``)."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from torch_mlir import ir

from ..passes.base import PassState, walk_ops
from ..passes.instrument import OBSERVED_ATTR
from ..passes.quantize_weights import METHODS
from ..runtime import build as rtbuild
from . import artifacts, codegen
from .context import make_context
from .diagnostics import error_from, format_location
from .calibration import OBSERVE_PREFIX, Statistics, collect, load_calibration_npz
from .errors import QCError
from .weights import WeightStore
from .quant import parse_scheme
from .report import summary, write_report
from .frontend_onnx import import_onnx, spec_of
from .signature import Signature, TensorSpec

IMPORT_PIPELINE = ("builtin.module(qc-strip-probes, func.func(convert-elementwise-to-linalg), qc-outline-weights, qc-raise, "
                   "canonicalize, cse)")
EMITS = ("so", "exe", "obj", "mlir", "llvm")
NAME_ATTR = "qc.name"  # an input/output name on @main's arguments and results in an emitted .mlir


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
    try:
        with ctx:
            module = ir.Module.parseFile(str(path))
    except ir.MLIRError as err:
        raise error_from(err) from None
    except OSError as err:
        raise QCError(f"{path}: {err}") from None
    _reject_elided(module)
    try:
        main = codegen.main_func(module)
    except QCError:
        raise QCError(f"{path}: no func.func @main to compile") from None
    ftype = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)
    inputs = _names(main, "arg_attrs", "arg", len(ftype.inputs))
    outputs = _names(main, "res_attrs", "result", len(ftype.results))
    return module, Signature(tuple(spec_of(n, t) for n, t in zip(inputs, ftype.inputs)),
                             tuple(spec_of(n, t) for n, t in zip(outputs, ftype.results)))


def _names(main: ir.Operation, key: str, stem: str, count: int) -> list[str]:
    """The ``qc.name`` of each argument/result of @main, or ``arg0``, ``arg1``, ... where it has none."""
    attrs = list(ir.ArrayAttr(main.attributes[key])) if key in main.attributes else [None] * count
    return [ir.StringAttr(ir.DictAttr(a)[NAME_ATTR]).value if a is not None and NAME_ATTR in ir.DictAttr(a)
            else f"{stem}{i}" for i, a in enumerate(attrs)]


def _name_interface(module: ir.Module, sig: Signature) -> None:
    """Record the model's input/output names on @main, so the printed module compiles to the same interface."""
    main = codegen.main_func(module)
    with module.context:
        for key, specs in (("arg_attrs", sig.inputs), ("res_attrs", sig.outputs)):
            main.attributes[key] = ir.ArrayAttr.get(
                [ir.DictAttr.get({NAME_ATTR: ir.StringAttr.get(s.name)}) for s in specs])


def _reject_elided(module: ir.Module) -> None:
    """``dense_resource<__elided__>`` parses but has no data; lowering it would crash."""
    found = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        attrs = (op.attributes[name] for name in op.attributes)
        # inline dense data is never a resource, and printing it would cost as much as the file
        if any(not isinstance(a, ir.DenseElementsAttr) and "dense_resource<__elided__>" in str(a) for a in attrs):
            found.append(op)
            return ir.WalkResult.INTERRUPT
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    if found:
        raise QCError(f"{format_location(found[0].location)}: error: constant data was elided when this file was printed "
                      f"(dense_resource<__elided__>); print it again without an elements limit")


def compile(model, output: str | Path, *, emit: str = "so", shapes: dict | None = None,
            example_inputs=None, input_names=None, target_cpu: str | None = None,
            target_features: str | None = None, scheme: str | None = None, method: str = "rtn",
            overrides: dict[str, str] | None = None, calibration=None, stats: Statistics | None = None,
            save_stats: str | Path | None = None, report: str | Path | None = None,
            weights: str | Path | None = None, progress: bool = False, smooth: float | str | None = None,
            smooth_fallback: bool = False, activations: str = "dynamic", act_order: bool = False,
            damp: float | None = None) -> CompileResult:
    """Compile ``model`` (ONNX path/ModelProto, ``.mlir`` path, or ``nn.Module``) to ``output``.

    Quantization: ``scheme`` (e.g. ``"w4a16-g128"``) for every linear, ``overrides``
    ({layer-name regex: scheme}) per layer, ``method`` rtn | gptq | awq; for GPTQ ``act_order``
    (columns in order of decreasing Hessian diagonal) and ``damp`` (default 0.01 of the mean
    diagonal).
    ``calibration``: an iterable of input dicts (or a ``calib.npz`` path) run
    through an instrumented build; ``stats``: statistics saved from an earlier
    run instead.  ``report``: a ``.md`` or ``.json`` path."""
    if emit not in EMITS:
        raise QCError(f"--emit must be one of {', '.join(EMITS)}, got '{emit}'")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    ctx = make_context()
    module, sig = import_model(model, ctx, shapes, example_inputs, input_names)
    state = PassState()
    if weights is not None:
        state.store = WeightStore.load(weights)
    codegen.run(module, IMPORT_PIPELINE, state, "import passes")
    weight_bytes = state.store.nbytes()
    timings["import"] = time.perf_counter() - t0
    target = codegen.Target.of(target_cpu, target_features)

    quantizing = scheme is not None or bool(overrides)
    if method not in METHODS:
        raise QCError(f"quantization method must be one of {', '.join(METHODS)}, got '{method}'")
    if (act_order or damp is not None) and method != "gptq":
        raise QCError(f"act-order and damp are options of method gptq, not {method}")
    if damp is not None and not 0 <= damp < float("inf"):
        raise QCError(f"damp must be a non-negative fraction of the Hessian's mean diagonal, got {damp}")
    if stats is not None:
        state.stats = stats
    elif calibration is not None:
        t1 = time.perf_counter()
        if isinstance(calibration, (str, Path)):
            calibration = load_calibration_npz(calibration, [s.name for s in sig.inputs])
        state.stats = calibrate(module, sig, state, calibration, target,
                                hessian=method != "rtn" or save_stats is not None or smooth == "auto",
                                progress=progress)
        timings["calibrate"] = time.perf_counter() - t1
    if save_stats is not None:
        if not state.stats:
            raise QCError("no statistics to save: give calibration data")
        state.stats.save(save_stats)
    if smooth is not None and not state.stats:
        raise QCError("smoothing needs calibration data (calibration=... / --calib, or saved --stats)")
    passes = []
    if quantizing:
        assign_schemes(module, scheme or "f32", overrides or {})
    if smooth is not None:
        passes.append(f"qc-smooth{{alpha={smooth} fallback={'true' if smooth_fallback else 'false'}}}")
    if quantizing:
        gptq = f" act-order={'true' if act_order else 'false'} damp={0.01 if damp is None else damp!r}" \
            if method == "gptq" else ""
        passes += [f"qc-quantize-weights{{method={method} activations={activations}{gptq}}}", "qc-fuse-dequant-gemm"]
    if passes:
        codegen.run(module, f"builtin.module({', '.join(passes)}, canonicalize, cse)", state, "quantization")
    files = write_report(report, summary(state.report, weight_bytes)) if report is not None else []

    if emit == "mlir":
        # Weights are outlined into the .safetensors; what constants remain are small and must stay,
        # or the file would not compile again.
        _name_interface(module, sig)
        output.write_text(module.operation.get_asm())
        weights = output.with_suffix(".safetensors")
        state.store.save(weights)
        return CompileResult(output, sig, [output, weights] + files, timings)
    result = build(module, sig, state, target, output, emit, timings)
    result.files += files
    return result


def build(module: ir.Module, sig: Signature, state: PassState, target: codegen.Target, output: Path, emit: str,
          timings: dict[str, float]) -> CompileResult:
    """Lower an imported (maybe quantized) module to ``emit`` at ``output``."""
    t1 = time.perf_counter()
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


def calibrate(module: ir.Module, sig: Signature, state: PassState, samples, target: codegen.Target,
              hessian: bool, progress: bool = False) -> Statistics:
    """Statistics of every linear input: build an instrumented copy of ``module`` and run it on ``samples``."""
    from ..runtime.loader import load

    instrumented = ir.Module.parse(module.operation.get_asm(), module.context)
    codegen.run(instrumented, "builtin.module(qc-instrument{export=true})", state, "instrumentation")
    main = codegen.main_func(instrumented)
    ftype = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)
    observed = [[ir.StringAttr(n).value for n in names] for names in main.attributes[OBSERVED_ATTR]] \
        if OBSERVED_ATTR in main.attributes else []
    extra = tuple(spec_of(OBSERVE_PREFIX + names[0], t) for names, t in zip(observed, ftype.results[len(sig.outputs):]))
    samples = list(samples)
    with tempfile.TemporaryDirectory(prefix="qc-calib-") as tmp:
        lib = Path(tmp) / "instrumented.so"
        build(instrumented, Signature(sig.inputs, sig.outputs + extra), state, target, lib, "so", {})
        model = load(lib)
        stats = collect(model.run, samples, hessian, progress, total=len(samples))
        del model
    for names in observed:  # layers reading one input share its statistics
        for name in names[1:]:
            stats[name] = stats[names[0]]
    return stats


def assign_schemes(module: ir.Module, default: str, overrides: dict[str, str]) -> None:
    """Set ``qc.scheme`` on every linear: the first override whose regex matches its name, else ``default``."""
    import re

    from ..passes.matchers import layer_name
    from ..passes.quantize_weights import scheme_attr

    patterns = []
    for pattern, text in overrides.items():
        try:
            patterns.append((re.compile(pattern), parse_scheme(text)))
        except re.error as err:
            raise QCError(f"bad layer pattern '{pattern}' in scheme overrides: {err}") from None
    fallback = parse_scheme(default)
    with module.context:
        for op in walk_ops(module.operation, "qc.linear"):
            name = layer_name(op)
            if name is None:
                continue
            chosen = next((s for p, s in patterns if p.fullmatch(name)), fallback)
            op.attributes["qc.scheme"] = scheme_attr(chosen)


def read_overrides(path: str | Path | None) -> dict[str, str]:
    """A scheme-override file mapping layer-name regexes to schemes: a JSON object, or a YAML
    mapping when the name ends in ``.yaml`` or ``.yml``."""
    import json

    import yaml

    if path is None:
        return {}
    path = Path(path)
    is_yaml = path.suffix.lower() in (".yaml", ".yml")
    try:
        text = path.read_text()
        data = yaml.safe_load(text) if is_yaml else json.loads(text)
    except (OSError, ValueError, yaml.YAMLError) as err:
        raise QCError(f"cannot read scheme overrides '{path}': {err}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        form = "a YAML mapping of regex: scheme" if is_yaml else 'a JSON object of "regex": "scheme"'
        raise QCError(f"scheme overrides '{path}' must be {form} pairs")
    return data
