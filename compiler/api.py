"""``qc.compile``: a model in, a native artifact out (mirrors ``qc-compile``)."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from torch_mlir import ir

from ..passes import (AssignSchemes, ConvToMatmul, FuseDequantGemm, PoolChannelsLast, Instrument, OutlineWeights, QuantizeEmbeddings, QuantizeWeights,
                      RaiseLinear, Smooth, StripProbes)
from ..passes.base import PassState, ops_of, walk_ops
from ..passes.winograd import stored_bytes
from ..passes.matchers import scheme_targets, target_name, target_weight
from ..passes.instrument import OBSERVED_ATTR
from ..passes.quantize_weights import METHODS
from ..passes.select_precision import KV_CACHE, apply_choice
from ..runtime import build as rtbuild
from . import artifacts, codegen
from .context import make_context
from .diagnostics import error_from, format_diagnostic, format_location, silent_parse_failure
from ..core.calibration import OBSERVE_PREFIX, Statistics, collect, load_calibration_npz
from ..core.errors import QCError, make_folder
from ..core.weights import WeightStore
from ..core.quant import parse_scheme
from ..core import winograd
from ..dialects.qc import LinearOp
from ..core.quant.sensitivity import METRICS
from .report import notes, summary, write_report
from .decoder import KV_CACHE_TYPES, Decoder, import_decoder
from .signatures import spec_of
from .gpu import GpuTarget
from ..core.signature import Signature, TensorSpec

IMPORT_PIPELINE = [StripProbes(), "func.func(convert-elementwise-to-linalg)", OutlineWeights(), ConvToMatmul(), PoolChannelsLast(),
                   RaiseLinear(),
                   "canonicalize", "cse"]
EMITS = ("so", "static", "exe", "obj", "mlir", "llvm", "ptx", "nvvm")  # static: an archive with the weights embedded;
# ptx, nvvm: a GPU model's kernels, as PTX or as the LLVM IR it is made from
NAME_ATTR = "qc.name"  # an input/output name on @main's arguments and results in an emitted .mlir


@dataclass
class CompileResult:
    output: Path
    signature: Signature
    files: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    selection: dict = field(default_factory=dict)  # qc-select-precision's problem and solution (scheme auto)
    warnings: list[str] = field(default_factory=list)  # what was asked for and did not fully happen
    entries: dict[str, Signature] = field(default_factory=dict)  # entry points besides main (a decoder's decode)
    device_code: object = None  # a GPU model's kernels (gpu.DeviceCode: the PTX and the LLVM IR it is made from)


def import_model(model, ctx: ir.Context, shapes=None, example_inputs=None, input_names=None):
    """Any supported model -> (linalg module, signature)."""
    if isinstance(model, (str, Path)) and str(model).endswith(".mlir"):
        return _import_mlir(Path(model), ctx)
    if hasattr(model, "forward") and hasattr(model, "parameters"):
        if example_inputs is None:
            raise QCError("compiling a PyTorch module needs example_inputs")
        from .frontend_torch import import_torch

        return import_torch(model, tuple(example_inputs), ctx, input_names)
    from .frontend_onnx import import_onnx  # (onnx takes 0.6 s to import: qc-opt never needs it)

    return import_onnx(model, ctx, shapes)


def _import_mlir(path: Path, ctx: ir.Context):
    try:
        with ctx:
            module = ir.Module.parseFile(str(path))
    except ir.MLIRError as err:
        if not err.error_diagnostics:
            raise QCError(format_diagnostic(silent_parse_failure(path.read_text(), str(path)))) from None
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


@dataclass
class CompileOptions:
    """Everything ``qc.compile`` and ``qc-compile`` take, one field per flag."""

    emit: str = "so"
    name: str | None = None  # the C name (<name>_model, <name>_run); default: the output's file name
    shapes: dict | None = None  # input name -> fixed shape (ONNX)
    example_inputs: tuple | None = None  # a PyTorch module's example call
    input_names: list[str] | None = None
    target_cpu: str | None = None
    target_features: str | None = None
    winograd: int = 4  # largest Winograd tile (4 or 2) of f32 3x3 stride-1 convolutions; 0: all direct
    target: str = "cpu"  # cpu, or cuda[:sm_XX]: every op a CUDA kernel (PTX), launched by the host code
    weights: str | Path | None = None  # the weight store of a .mlir model
    # quantization
    scheme: str | None = None  # a scheme for every layer, or "auto" (qc-select-precision)
    overrides: dict[str, str] = field(default_factory=dict)  # layer regex -> scheme
    method: str = "rtn"
    act_order: bool = False
    damp: float | None = None
    activations: str = "dynamic"
    smooth: float | str | None = None
    smooth_fallback: bool = False
    # calibration
    calibration: object = None  # iterable of input dicts, or a calib.npz path
    stats: Statistics | None = None
    save_stats: str | Path | None = None
    # precision selection (scheme="auto")
    budget_bits: float | None = None
    budget_mb: float | None = None
    budget_latency_ms: float | None = None
    pins: dict[str, str] = field(default_factory=dict)  # layer regex -> scheme, fixed
    candidates: list[str] | None = None  # schemes to choose from (None: every scheme)
    sensitivity: str = "measured"  # measured | proxy
    metric: str = "cosine"  # cosine | kl | mse: the model-output error measured sensitivities use
    pareto: str | Path | None = None  # .md / .json: sweep the budget, write the front (+ .png)
    report: str | Path | None = None
    progress: bool = False
    # decoders (a llama2.c .bin, or a Decoder): generation with a KV cache
    max_context: int | None = None  # positions the KV cache holds (default: the checkpoint's length)
    prefill_chunk: int = 16  # tokens one prefill step takes
    kv_cache: str = "float32"  # the KV cache's element type: float32 | float16 | int8, or auto (chosen by the ILP)

    @property
    def auto(self) -> bool:
        return self.scheme == "auto"

    def check(self) -> None:
        """Reject what cannot mean anything before any work is done."""
        if self.emit not in EMITS:
            raise QCError(f"--emit must be one of {', '.join(EMITS)}, got '{self.emit}'")
        if self.winograd not in (0, *winograd.TILES):
            raise QCError(f"--winograd must be 0 (direct convolutions) or a tile of {', '.join(map(str, winograd.TILES))}, "
                          f"got {self.winograd}")
        if self.target != "cpu":
            GpuTarget.parse(self.target)
            if self.emit == "obj":
                raise QCError(f"--target {self.target} compiles to --emit so, static, exe, ptx, nvvm, llvm or mlir, not yet "
                              "with --emit obj")
            if self.budget_latency_ms is not None:
                raise QCError(f"--budget-latency-ms times each layer's kernels on this machine's CPU; for --target "
                              f"{self.target} give --budget-bits or --budget-mb")
        elif self.emit in ("ptx", "nvvm"):
            raise QCError(f"--emit {self.emit} is for GPU models: add --target cuda[:sm_80|sm_90]")
        if self.name is not None and artifacts.c_identifier(self.name) != self.name:
            raise QCError(f"--name '{self.name}' is not a C identifier (letters, digits and '_', not first a digit)")
        if self.method not in METHODS:
            raise QCError(f"quantization method must be one of {', '.join(METHODS)}, got '{self.method}'")
        if self.method != "rtn" and self.scheme is None and not self.overrides:
            raise QCError(f"method {self.method} quantizes the layers a scheme is given: add a scheme "
                          "(--scheme w4a16-g128, or auto with a budget) or scheme overrides")
        if (self.act_order or self.damp is not None) and self.method != "gptq":
            raise QCError(f"act-order and damp are options of method gptq, not {self.method}")
        if self.damp is not None and not 0 <= self.damp < float("inf"):
            raise QCError(f"damp must be a non-negative fraction of the Hessian's mean diagonal, got {self.damp}")
        budgets = (self.budget_bits, self.budget_mb, self.budget_latency_ms)
        if self.kv_cache == "auto" and not (self.auto and self.budget_mb is not None and self.budget_bits is None
                                            and self.sensitivity == "measured"):
            raise QCError("--kv-cache auto lets the precision selection choose the cache type with the layers: give "
                          "--scheme auto with --budget-mb (weights and cache; not --budget-bits, which counts weights) "
                          "and measured sensitivities")
        if not self.auto:
            given = [n for n, v in (("budget-bits", self.budget_bits), ("budget-mb", self.budget_mb),
                                    ("budget-latency-ms", self.budget_latency_ms), ("pin", self.pins or None),
                                    ("pareto", self.pareto), ("candidates", self.candidates)) if v]
            if given:
                raise QCError(f"{', '.join(given)} choose(s) schemes: use them with scheme 'auto'")
            if self.scheme is not None:
                parse_scheme(self.scheme)
            return
        if self.overrides:
            raise QCError("scheme 'auto' chooses every layer: give fixed layers as pins, not scheme overrides")
        if all(b is None for b in budgets):
            raise QCError("scheme 'auto' needs a budget: budget-bits, budget-mb and/or budget-latency-ms")
        if any(b is not None and not 0 < b < float("inf") for b in budgets):
            raise QCError(f"budgets must be positive, got bits={self.budget_bits} mb={self.budget_mb} "
                          f"latency-ms={self.budget_latency_ms}")
        if self.sensitivity not in ("measured", "proxy"):
            raise QCError(f"sensitivity must be measured or proxy, got '{self.sensitivity}'")
        if self.metric not in METRICS:
            raise QCError(f"metric must be one of {', '.join(METRICS)}, got '{self.metric}'")
        for text in list(self.pins.values()) + list(self.candidates or []):
            parse_scheme(text)
        if self.calibration is None and self.stats is None:
            raise QCError("scheme 'auto' needs calibration data (calibration=... / --calib, or saved --stats): "
                          "sensitivities are measured on it")


def compile(model, output: str | Path, options: CompileOptions | None = None, **fields) -> CompileResult:
    """Compile ``model`` (ONNX path/ModelProto, ``.mlir`` path, or ``nn.Module``) to ``output``.

    ``options`` (or the same names as keywords, see ``CompileOptions``): e.g. ``scheme="w4a16-g128"``
    for every layer, ``overrides`` ({layer-name regex: scheme}), ``method`` rtn | gptq | awq,
    ``calibration`` (input dicts or a ``calib.npz``), ``report`` (``.md`` / ``.json``);
    ``scheme="auto"`` with ``budget_bits`` / ``budget_mb`` / ``budget_latency_ms`` and ``pins``
    lets qc-select-precision choose every layer's scheme."""
    if options is None:
        options = CompileOptions(**fields)
    elif fields:
        raise QCError("give compile options either as a CompileOptions or as keywords, not both")
    o = options
    o.check()
    output = Path(output)
    make_folder(output.parent)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    ctx = make_context()
    entries = {}
    kv_auto = o.kv_cache == "auto"  # imported with a float32 cache, chosen by the selection
    kv_cache = "float32" if kv_auto else o.kv_cache
    if isinstance(model, (str, Path)) and str(model).endswith(".bin"):
        model = Decoder.from_llama2c(model, o.max_context, o.prefill_chunk, kv_cache)
    elif o.max_context is not None and not isinstance(model, Decoder) and not hasattr(model, "forward") \
            and not str(model).endswith(".mlir"):  # what import_model would take for ONNX
        model = Decoder.from_onnx(model, o.max_context, o.prefill_chunk, kv_cache)
    elif (o.max_context is not None or o.kv_cache != "float32") and not isinstance(model, Decoder):
        flag = "--max-context" if o.max_context is not None else "--kv-cache"
        raise QCError(f"{flag} compiles a decoder for generation: give a llama2.c checkpoint (.bin), an ONNX "
                      "decoder with past_key_values (with --max-context) or a qc.Decoder")
    elif isinstance(model, Decoder) and kv_cache not in ("float32", model.kv_cache):
        raise QCError(f"kv_cache={o.kv_cache} differs from the Decoder's own ({model.kv_cache}): give it to "
                      "Decoder.from_llama2c / from_hf")
    if kv_auto:
        if model.rebuild is None:
            raise QCError("--kv-cache auto needs a decoder whose step can be built with each cache type (a llama2.c "
                          "checkpoint, Decoder.from_llama2c or from_hf); an ONNX decoder keeps its float32 cache")
        if o.calibration is None:
            raise QCError("--kv-cache auto measures each cache type's error on calibration prompts: give --calib")
        model = model.with_kv_cache("float32")
    params, prompts = {}, None
    if isinstance(model, Decoder) and o.calibration is not None:  # checked before the import, which takes seconds
        prompts = model.prompt_ids(load_calibration_npz(o.calibration, ["tokens"])
                                   if isinstance(o.calibration, (str, Path)) else list(o.calibration))
    if isinstance(model, Decoder):
        _check_decoder_options(o)
        module, sig, entries, params = import_decoder(model, ctx)
    else:
        module, sig = import_model(model, ctx, o.shapes, o.example_inputs, o.input_names)
    state = PassState()
    for name, array in params.items():
        state.store[name] = array
    if o.weights is not None:
        state.store = WeightStore.load(o.weights)
    _check_weights_given(model, module, state.store)
    codegen.run(module, IMPORT_PIPELINE, state, "import passes")
    # A latency budget is met with each layer's kernel timed as a linear of its shape: a Winograd conv
    # is not timed so, and would run faster than predicted; such a compile keeps its convs direct.
    winograd = 0 if o.auto and o.budget_latency_ms is not None else o.winograd
    with module.context:
        direct_convs = winograd != o.winograd and any(
            stored_bytes(op, state, o.winograd) for op in ops_of(module.operation, LinearOp))
    target = codegen.Target.of(o.target_cpu, o.target_features, winograd)
    if o.target_cpu or o.target_features:
        target.check()
    sizes = weight_sizes(module, state, codegen.stored_layout(target, o.target != "cpu")[0])
    timings["import"] = time.perf_counter() - t0

    samples = None
    if o.stats is not None:
        state.stats = o.stats
    if o.calibration is not None:
        if prompts is not None:  # a decoder's, run through the prefill step as the runtime runs them
            samples = model.calibration_samples(prompts)
        else:
            samples = (load_calibration_npz(o.calibration, [s.name for s in sig.inputs])
                       if isinstance(o.calibration, (str, Path)) else list(o.calibration))
        _check_samples(samples, sig, named=o.input_names is not None or not o.example_inputs)
        if o.stats is None:
            t1 = time.perf_counter()
            state.stats = calibrate(module, sig, state, samples, target, progress=o.progress,
                                    hessian=o.method != "rtn" or o.save_stats is not None or o.smooth == "auto"
                                    or o.auto or o.report is not None)  # the report's output errors
            timings["calibrate"] = time.perf_counter() - t1
    if o.smooth is not None and not state.stats:
        raise QCError("smoothing needs calibration data (calibration=... / --calib, or saved --stats)")
    if not o.auto and (o.scheme is not None or o.overrides):  # before smoothing, which reads the schemes
        codegen.run(module, [AssignSchemes(scheme=o.scheme or "", overrides=o.overrides)], state, "scheme assignment")
    if o.smooth is not None:
        codegen.run(module, [Smooth(alpha=o.smooth, fallback=o.smooth_fallback)], state, "smoothing")
    files = []
    if o.auto:
        from .selection import measure_kv_sensitivities, select_precision  # they build and time with build() below

        t1 = time.perf_counter()
        cache = None
        if kv_auto:
            measure_kv_sensitivities(model, prompts, state, o.metric)
            cache = {t: model.cache_bytes(t) for t in KV_CACHE_TYPES}
        try:
            files += select_precision(module, sig, state, samples, target, o, cache)
        except QCError:
            if o.save_stats is not None and state.stats:  # what was measured is kept for a compile with another budget
                state.stats.save(o.save_stats)
            raise
        chosen = state.selection["solution"].choice.get(KV_CACHE)
        if chosen is not None and chosen.scheme != model.kv_cache:
            model = model.with_kv_cache(chosen.scheme)
            module, sig, entries, samples = _reimport(model, ctx, state, o, prompts)
        timings["select"] = time.perf_counter() - t1
    if o.save_stats is not None:
        if not state.stats:
            raise QCError("no statistics to save: give calibration data")
        state.stats.save(o.save_stats)
    if o.auto or o.scheme is not None or o.overrides:
        codegen.run(module, quantization_passes(o, target), state, "quantization")

    if o.emit == "mlir":
        # Weights are outlined into the .safetensors; what constants remain are small and must stay,
        # or the file would not compile again.
        _name_interface(module, sig)
        output.write_text(module.operation.get_asm())
        weights = output.with_suffix(".safetensors")
        state.store.save(weights, weights_read(module))
        result = CompileResult(output, sig, [output, weights], timings)
    else:
        device = GpuTarget.parse(o.target) if o.target != "cpu" else None
        result = build(module, sig, state, target, output, o.emit, timings, name=o.name, entries=entries, device=device,
                       own_store=True)
    result.selection = state.selection
    result.warnings += notes(state.report) + state.selection.get("warnings", [])
    if direct_convs:
        result.warnings.append("f32 3x3 convolutions stay direct under a latency budget (their Winograd form is not "
                               "timed by the selection); --winograd 0 says so")
    if o.report is not None:
        data = summary(state.report, *sizes)
        if state.selection:
            from .selection import selection_summary

            data["selection"] = selection_summary(state, result, samples, o)
        result.files += write_report(o.report, data)
    result.files += files
    return result


def _reimport(model: Decoder, ctx: ir.Context, state: PassState, o: CompileOptions, prompts):
    """The decoder imported again (its cache type chosen), smoothed as before and given the selection's
    schemes: (module, signature, entries, calibration samples for its cache type)."""
    module, sig, entries, params = import_decoder(model, ctx)
    for name, array in params.items():
        state.store[name] = array
    codegen.run(module, IMPORT_PIPELINE, state, "import passes")
    if o.smooth is not None:
        codegen.run(module, [Smooth(alpha=o.smooth, fallback=o.smooth_fallback)], state, "smoothing")
    with module.context:
        apply_choice(module.operation, {n: c.scheme for n, c in state.selection["solution"].choice.items()})
    return module, sig, entries, model.calibration_samples(prompts)


def _check_decoder_options(o: CompileOptions) -> None:
    """What a decoder cannot be compiled with, said before any work."""
    if o.budget_latency_ms is not None:
        raise QCError("a decoder's latency budget would be its decode step's, which qc-select-precision does not "
                      "time yet: give budget-bits or budget-mb")
    if o.emit == "mlir":
        others = ", ".join(e for e in EMITS if e != "mlir")
        raise QCError(f"a decoder compiles to native code (--emit {others}), not yet to --emit mlir")


def _check_samples(samples: list, sig: Signature, named: bool) -> None:
    """Calibration samples name the model's inputs, each of them; a PyTorch module compiled without
    ``input_names`` has inputs input0, input1, ...: say so when the samples use other names."""
    expected = [s.name for s in sig.inputs]
    for i, sample in enumerate(samples):
        if not isinstance(sample, dict):
            raise QCError(f"calibration sample {i} is a {type(sample).__name__}; give dicts of input name -> array")
        if set(sample) != set(expected):
            hint = "" if named else " (a PyTorch module's inputs are input0, input1, ... unless input_names= names them)"
            raise QCError(f"calibration sample {i} has inputs {sorted(sample)}, the model takes {expected}{hint}")


def _check_weights_given(model, module: ir.Module, store: WeightStore) -> None:
    """An .mlir whose ``qc.weight`` ops read entries the store lacks: say which and what to give."""
    missing = sorted(weights_read(module) - set(store.names()))
    if not missing:
        return
    beside = Path(model).with_suffix(".safetensors") if isinstance(model, (str, Path)) else None
    fix = (f"give weights='{beside}' (qc-compile --weights)" if beside is not None and beside.exists()
           else "give the weight store it was emitted with (qc-compile --weights FILE.safetensors)")
    listed = ", ".join(f"@{n}" for n in missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    raise QCError(f"{model}: qc.weight ops read {listed}, not in the weight store; {fix}")


def weights_read(module: ir.Module) -> set[str]:
    """The weight store entries the module's ``qc.weight`` ops read."""
    return {ir.FlatSymbolRefAttr(op.attributes["name"]).value for op in walk_ops(module.operation, "qc.weight")}


def weight_sizes(module: ir.Module, state: PassState, panel_width: int) -> tuple[int, int, dict[str, int]]:
    """(bytes of the weights the model reads, of those no layer choice changes, each layer's bytes if
    it stays f32: a linear's in panels of ``panel_width``).  An ONNX weight consumed transposed leaves
    its original entry unused: not counted."""
    read = weights_read(module)
    layers, tables = {}, set()
    for op in scheme_targets(module.operation):
        weight = target_weight(op)
        if weight is not None:
            tables.add(weight)
            width = panel_width if isinstance(op.opview, LinearOp) else 0
            layers[target_name(op)] = parse_scheme("f32").weight_bytes(*state.store[weight].shape, width)
    return state.store.nbytes(read), state.store.nbytes(read - tables), layers


def quantization_passes(o: CompileOptions, target: codegen.Target) -> list:
    """The passes that quantize the layers a scheme was assigned to (their report bytes as ``target`` stores them)."""
    gptq = dict(act_order=o.act_order, damp=0.01 if o.damp is None else o.damp) if o.method == "gptq" else {}
    panel = codegen.stored_layout(target, o.target != "cpu")[0]
    return [QuantizeWeights(method=o.method, activations=o.activations, panel_width=panel, **gptq),
            QuantizeEmbeddings(),
            FuseDequantGemm(), "canonicalize", "cse"]


def model_name(output: Path) -> str:
    """The C name a model gets from its output path: ``build/libminilm.a`` -> ``minilm``."""
    stem = output.name.split(".")[0]
    return artifacts.c_identifier(stem[3:] if stem.startswith("lib") and len(stem) > 3 else stem)


def build(module: ir.Module, sig: Signature, state: PassState, target: codegen.Target, output: Path, emit: str,
          timings: dict[str, float], weight_inputs: dict[str, str] | None = None,
          name: str | None = None, entries: dict[str, Signature] | None = None,
          own_store: bool = False, device: GpuTarget | None = None) -> CompileResult:
    """Lower an imported (maybe quantized) module to ``emit`` at ``output``.  ``weight_inputs``: weight
    store entries (as lowered) that the compiled model takes as inputs of those names, after its own.
    ``name``: the model's C name (default: from ``output``).  ``entries``: the signatures of the
    module's entry functions besides @main (a decoder's ``decode``), which share its weight file.
    ``own_store``: nothing reads ``state.store`` after this build, so the entries that the lowered
    code no longer reads (a quantized weight's unpacked forms) are dropped as the passes pack them, and
    the rest before LLVM runs.
    ``device``: every op runs as a CUDA kernel of that GPU, ``target`` being the host's CPU."""
    weight_inputs = weight_inputs or {}
    entries = entries or {}
    name = name or model_name(output)
    t1 = time.perf_counter()
    if own_store:
        state = replace(state, own_store=True)
    lowered = codegen.lower_to_llvm_dialect(module, state, target, device)
    if own_store:
        state.store.retain({n for e in lowered.entries for n in e.weight_args})
    if emit in ("ptx", "nvvm"):
        output.write_text(lowered.device.ptx if emit == "ptx" else lowered.device.llvm_ir)
        timings["lower"] = time.perf_counter() - t1
        return CompileResult(output, sig, [output], timings, entries=entries, device_code=lowered.device)
    if emit == "llvm":
        output.write_text(codegen.to_llvm_ir(module))
        timings["lower"] = time.perf_counter() - t1
        return CompileResult(output, sig, [output], timings, entries=entries, device_code=lowered.device)
    # An object file is one unit; otherwise the functions are split into units compiled side by side
    # (at most 4: each is a copy of the module until it is translated).
    units = [module] if emit == "obj" else codegen.split_units(module, min(os.cpu_count() or 1, 4))
    llvm_irs = [codegen.to_llvm_ir(unit) for unit in units]
    timings["lower"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    objs = codegen.emit_objects(llvm_irs, target)
    timings["llvm"] = time.perf_counter() - t2
    if emit == "obj":
        output.write_bytes(objs[0])
        return CompileResult(output, sig, [output], timings, entries=entries, device_code=lowered.device)

    t3 = time.perf_counter()
    glued = []
    for e in lowered.entries:
        weights = [TensorSpec(n, tuple(state.store[n].shape), str(state.store[n].dtype)) for n in e.weight_args]
        if e.name == "main":
            extra = tuple(TensorSpec(weight_inputs[t.name], t.shape, t.dtype) for t in weights if t.name in weight_inputs)
            inputs_at = {t.name: len(sig.inputs) + i for i, t in enumerate(t for t in weights if t.name in weight_inputs)}
            sig = Signature(sig.inputs + extra, sig.outputs)
        glued.append(artifacts.GlueEntry(e.name, e.symbol, sig if e.name == "main" else entries[e.name], weights))
    files = [output]
    with tempfile.TemporaryDirectory(prefix="qc-") as tmp:
        tmp = Path(tmp)
        # A static model carries its weights in the archive; the others read them beside the binary.
        blob = tmp / "weights.qcw" if emit == "static" else output.with_suffix(".qcw")
        stored = dict.fromkeys(n for e in lowered.entries for n in e.weight_args if n not in weight_inputs)
        offsets = state.store.write_blob(blob, list(stored))
        models = [tmp / f"model{i}.o" for i in range(len(objs))]
        for path, obj in zip(models, objs):
            path.write_bytes(obj)
        (tmp / "glue.c").write_text(artifacts.glue(glued, name, offsets, blob.stat().st_size, blob.name,
                                                   lowered.kernels, inputs_at, lowered.checks,
                                                   embed=blob.name if emit == "static" else None, entry=emit == "so",
                                                   device=f"cuda:{device.chip}" if device else None))
        rtbuild.compile_c(tmp / "glue.c", tmp / "glue.o")
        objects = [*models, tmp / "glue.o"]
        defs = [artifacts.def_function(name, e.name) for e in glued]
        if device:  # the mgpu* functions the host code calls, over the CUDA driver
            objects.append(rtbuild.runtime_object(rtbuild.CUDA))
        if emit == "static":
            rtbuild.archive(objects, output, keep=defs)
        elif emit == "so":
            rtbuild.link([*objects, rtbuild.runtime_object()], output, shared=True,
                         exports=[artifacts.entry_export(e.name) for e in glued] + defs)
        else:
            (tmp / "main.c").write_text(artifacts.exe_generate_main(name) if "decode" in entries
                                        else artifacts.exe_main(sig, name))
            rtbuild.compile_c(tmp / "main.c", tmp / "main.o")
            rtbuild.link([*objects, tmp / "main.o", *map(rtbuild.runtime_object, (rtbuild.SUPPORT, rtbuild.API, rtbuild.GENERATE))],
                         output, shared=False)
        if emit != "static":
            files.append(blob)
    header = output.with_name(f"{name}.h")
    header.write_text(artifacts.header(name, [(e.name, e.sig) for e in glued]))
    timings["link"] = time.perf_counter() - t3
    return CompileResult(output, sig, files + [header], timings, entries=entries,
                         device_code=lowered.device)


def calibrate(module: ir.Module, sig: Signature, state: PassState, samples, target: codegen.Target,
              hessian: bool, progress: bool = False) -> Statistics:
    """Statistics of every linear input: build an instrumented copy of ``module`` and run it on ``samples``."""
    from ..runtime.loader import load

    instrumented = codegen.copy_module(module, main_only=True)
    codegen.run(instrumented, [Instrument(export=True)], state, "instrumentation")
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
