"""Precision selection in the driver: measure what qc-select-precision weighs, run it, sweep budgets.

Stages, in order:

1. kernel latencies: every (linear shape, candidate) not yet in this host's latency table is
   compiled as an entry of a shared library and timed through the C API (``kernels_ms``);
2. the probe: the f32 model built with every layer's weight as an input (``Probe``), so one
   build measures each layer under each candidate: its weight is swapped for the fake-quantized
   one and the output error against the f32 outputs is the layer's measured sensitivity (cached in
   the statistics); its own time, less the layers' f32 kernels, is the rest of the model;
3. ``qc-select-precision`` with the budgets, pins and these numbers (with ``--kv-cache auto``, a decoder's
   cache types too: their sensitivities measured through the PyTorch step, ``measure_kv_sensitivities``);
   then, with calibration samples and measured sensitivities, the error check (``check_error``): the ILP adds
   single-layer errors, which many quantized layers together need not follow, so the selection and every
   uniform scheme the budgets allow are measured whole through the probe, and the least measured error is kept;
4. with a latency budget, the check (``check_latency``): the selected model is built as the driver
   will build it and timed; while it runs over the budget, the non-f32 kernels' latencies are
   scaled by what they took in the model against their time alone, and the ILP solves again
   (``LATENCY_CHECKS`` builds at most); a budget still missed is a warning;
5. optionally the Pareto sweep over the bit budget, as a table and a PNG.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, NamedTuple

import statistics as stats_
import tempfile
import time
from pathlib import Path

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith, func, linalg, math, tensor

from ..dialects.qc import LinearOp, WeightOp
from ..passes import SelectPrecision
from ..passes.assign_schemes import reduction_size
from ..passes.base import PassState, set_function_type
from ..passes.builders import f32_const, generic
from ..passes.matchers import scheme_targets, target_name, target_weight
from ..passes.select_precision import KV_CACHE, apply_choice, candidate_schemes, layer_rows, linear_shape, measured_key
from ..runtime import build as rtbuild
from . import codegen
from .context import make_context
from ..core.errors import QCError
from ..core.quant import Scheme, all_schemes, fits, parse_scheme
from ..core.quant.latency import LatencyTable, scheme_key
from ..core.quant.packing import PanelLayout
from ..core.quant.scheme import KV_CACHE_TYPES
from ..core.quant.select import Candidate, Problem, Solution, solve
from ..core.quant.sensitivity import fake_quantize, outputs_error
from ..core.signature import Signature, TensorSpec

SENSITIVITY_SAMPLES = 16  # calibration samples each measured sensitivity averages over
WEIGHT_INPUT = "weight:"  # the probe's input of a layer's weight: "weight:<layer>"
ACT_INPUT = "act:"  # the probe's int8-activation switch of a linear, "act:<layer>": [mode or scale, bound]
LATENCY_CHECKS = 3  # builds of the selected model a latency budget may take
REPLICA_BYTES = 16 << 20  # f32 weight bytes kernels_ms spreads a layer's copies over: beyond any core's L2
MODEL_TIMING_S = 1.0  # seconds a whole model is timed for (see model_ms)
PROBE_RETIMES = 2  # timings of the f32 probe again before a latency budget is called infeasible


def time_ms(model, feeds: dict[str, np.ndarray], min_s: float = 0.2, reps: tuple[int, int] = (5, 500)) -> float:
    """Median ms of one ``qc_model_run`` on ``feeds`` (warm), called from C through ctypes."""
    run, handle = model.c_api
    call = model.prepare(feeds)
    for _ in range(2):
        run(handle, call.in_ptrs, call.out_ptrs)
    times, start = [], time.perf_counter()
    while len(times) < reps[0] or (len(times) < reps[1] and time.perf_counter() - start < min_s):
        t = time.perf_counter()
        run(handle, call.in_ptrs, call.out_ptrs)
        times.append(time.perf_counter() - t)
    return 1e3 * stats_.median(times)


def model_ms(model, feeds: dict[str, np.ndarray]) -> float:
    """A whole model's ms: the least of three medians of MODEL_TIMING_S / 3 each.  This project's VMs
    drift +-5 % from second to second and now and then run a burst 30-60 % slower; the least median
    is what the model costs when the machine is itself."""
    return min(time_ms(model, feeds, min_s=MODEL_TIMING_S / 3) for _ in range(3))


LATENCY_BATCH_BYTES = 256 << 20  # f32 weight bytes of the layers one latency-probe library holds
LATENCY_BATCH_LAYERS = 32  # and at most this many layers (entries)


class TimedLayer(NamedTuple):
    """One ``[rows, k] x [n, k]^T`` linear (with a bias or not) under ``scheme``, as ``kernels_ms`` times it."""

    rows: int
    k: int
    n: int
    bias: bool
    scheme: Scheme

    @property
    def replicas(self) -> int:
        """Copies of the layer, each with its own weights, spread over ``REPLICA_BYTES``: their weights come
        from beyond the per-core caches, as in a model."""
        return max(1, min(8, -(-REPLICA_BYTES // (4 * self.n * self.k))))


def kernels_ms(layers: list[TimedLayer], target: codegen.Target, activations: str,
               progress: Callable[[int], object] = lambda done: None) -> list[float]:
    """The time of the kernel qc generates for each layer: each call of an entry that runs the layer's
    ``replicas`` on one input, divided among them.  The layers are built in batches, each batch one
    library with an entry per layer (the build's fixed costs, not the layers, dominated one library
    per layer: 0.65 s each).  ``progress`` is told of each layer timed."""
    batches, size = [[]], 0
    for layer in layers:
        nbytes = 4 * layer.replicas * layer.n * layer.k
        if batches[-1] and (size + nbytes > LATENCY_BATCH_BYTES or len(batches[-1]) == LATENCY_BATCH_LAYERS):
            batches.append([])
            size = 0
        batches[-1].append(layer)
        size += nbytes
    return [ms for batch in batches if batch for ms in _batch_ms(batch, target, activations, progress)]


def _batch_ms(layers: list[TimedLayer], target: codegen.Target, activations: str,
              progress: Callable[[int], object]) -> list[float]:
    from ..passes.matchers import set_scheme
    from ..passes.quantize_weights import scheme_attr
    from ..runtime.loader import load
    from .api import CompileOptions, build, quantization_passes

    ctx = make_context()
    state = PassState()
    rng = np.random.default_rng(0)
    sigs = {}
    with ctx, ir.Location.unknown():
        f32 = ir.F32Type.get()
        module = ir.Module.create()
        for i, layer in enumerate(layers):
            name = "main" if i == 0 else f"layer{i}"
            xt = ir.RankedTensorType.get([layer.rows, layer.k], f32)
            yt = ir.RankedTensorType.get([layer.rows, layer.n], f32)
            with ir.InsertionPoint(module.body):
                fn = func.FuncOp(name, ir.FunctionType.get([xt], [yt] * layer.replicas))
            with ir.InsertionPoint(fn.add_entry_block()):
                outs = []
                for r in range(layer.replicas):
                    wname = f"{name}.{r}.nk"
                    # each copy its own numbers: the weight file stores equal arrays once
                    state.store[wname] = rng.standard_normal((layer.n, layer.k), dtype=np.float32)
                    w = WeightOp(ir.RankedTensorType.get([layer.n, layer.k], f32), ir.FlatSymbolRefAttr.get(wname))
                    b = None
                    if layer.bias:
                        state.store[f"{name}.{r}.bias"] = rng.standard_normal(layer.n).astype(np.float32)
                        b = WeightOp(ir.RankedTensorType.get([layer.n], f32),
                                     ir.FlatSymbolRefAttr.get(f"{name}.{r}.bias")).result
                    linear = LinearOp(yt, fn.arguments[0], w.result, bias=b)
                    set_scheme(linear.operation, wname, scheme_attr(layer.scheme))
                    outs.append(linear.result)
                func.ReturnOp(outs)
            sigs[name] = Signature((TensorSpec("x", (layer.rows, layer.k), "float32"),),
                                   tuple(TensorSpec(f"y{r}", (layer.rows, layer.n), "float32") for r in range(layer.replicas)))
    codegen.run(module, quantization_passes(CompileOptions(activations=activations), target), state, "latency probe")
    times = []
    with tempfile.TemporaryDirectory(prefix="qc-lat-") as tmp:
        lib = Path(tmp) / "layers.so"
        build(module, sigs.pop("main"), state, target, lib, "so", {}, entries=sigs)
        for i, layer in enumerate(layers):
            model = load(lib, entry="main" if i == 0 else f"layer{i}")
            x = rng.standard_normal((layer.rows, layer.k)).astype(np.float32)
            times.append(time_ms(model, {"x": x}) / layer.replicas)
            del model
            progress(1)
    return times


def latency_table(ops: list[ir.Operation], schemes: list[Scheme], target: codegen.Target, activations: str,
                  progress: bool) -> LatencyTable:
    """This host's table (from qc's cache), completed with every (shape, candidate) of ``ops``."""
    from tqdm import tqdm

    path = rtbuild.cache_dir() / LatencyTable.file_name(target.cpu, target.features)
    table = LatencyTable.load(path) if path.exists() else LatencyTable({"cpu": target.cpu,
                                                                        "features": target.features})
    todo = {}
    for op in ops:
        if not isinstance(op.opview, LinearOp):
            continue
        n, k = ir.RankedTensorType(op.opview.weight.type).shape
        for scheme in schemes:
            key = (linear_shape(op), scheme_key(scheme, activations))
            if fits(scheme, k) is None and table.get_ms(*key) is None:
                todo[key] = TimedLayer(layer_rows(op), k, n, len(op.operands) == 3, scheme)
    # static scales skip the per-row maximum: a dynamic kernel's time bounds theirs
    bar = tqdm(total=len(todo), desc="timing kernels", unit="kernel", disable=not progress)
    for (shape, key), ms in zip(todo, kernels_ms(list(todo.values()), target, "dynamic", bar.update)):
        table.set_ms(shape, key, ms)
    bar.close()
    if todo:
        table.save(path)
    return table


class Probe:
    """The f32 model with the selected layers' weights as inputs (``weight:<layer>``), and before
    each linear a switch (``act:<layer>``, an input ``[v, L]``) that rounds its input as integer
    activations within +-L would: v = 0 leaves it, -1 quantizes each row by its own max|x| / L
    (dynamic), a positive v quantizes with that scale (static); see ``fake_quantize_input``."""

    def __init__(self, module: ir.Module, sig: Signature, state: PassState, target: codegen.Target, tmp: Path,
                 switches: bool = True):
        from ..runtime.loader import load
        from .api import build

        copy = codegen.copy_module(module, main_only=True)
        width = target.panel_width
        self.layers: dict[str, tuple[str, str]] = {}  # layer -> (kind, store name of its f32 weight)
        inputs, act_inputs = {}, []
        main = codegen.main_func(copy)
        for op in scheme_targets(copy.operation):
            name = target_name(op)
            weight = target_weight(op)
            if isinstance(op.opview, LinearOp):
                packed = PanelLayout.of_floats(*state.store[weight].shape, width)
                inputs[f"{weight}.p{packed.width}"] = WEIGHT_INPUT + name
                self.layers[name] = ("linear", weight)
                if switches:
                    act_inputs.append(TensorSpec(ACT_INPUT + name, (2,), "float32"))
                    with copy.context, op.location:
                        fake_quantize_input(op, main)
            else:
                inputs[weight] = WEIGHT_INPUT + name
                self.layers[name] = ("gather", weight)
        sig = Signature(sig.inputs + tuple(act_inputs), sig.outputs)
        tmp.mkdir()
        # each layer a linear whose packed weight is an input: its convolutions stay direct (a Winograd
        # conv's filter is another array, and the layer kernels are timed as linears anyway)
        build(copy, sig, state, replace(target, winograd=0), tmp / "probe.so", "so", {}, weight_inputs=inputs)
        self.model = load(tmp / "probe.so")
        self.width, self.sig = width, sig
        self.base = {v: aligned(state.store[k]) for k, v in inputs.items()}
        self.base.update({s.name: np.zeros(2, np.float32) for s in act_inputs})

    def weight_input(self, layer: str, w: np.ndarray) -> dict[str, np.ndarray]:
        """The feed that gives ``layer`` the f32 weight ``w`` (packed as the kernel reads it)."""
        kind, _ = self.layers[layer]
        return {WEIGHT_INPUT + layer: aligned(PanelLayout.of_floats(*w.shape, self.width).weights(w) if kind == "linear" else w)}

    def run(self, sample: dict[str, np.ndarray], weights: dict[str, np.ndarray] | None = None) -> list[np.ndarray]:
        out = self.model.run({**sample, **self.base, **(weights or {})})
        return [v for v in out.values() if np.issubdtype(v.dtype, np.floating)]


def fake_quantize_input(linear: ir.Operation, main: ir.Operation) -> None:
    """Route ``linear``'s input ``x: [..., K]`` through ``y = v == 0 ? x : q(x) * s`` with a new
    argument ``[v, L]`` of ``main`` (appended to its inputs): ``s = v > 0 ? v : max|x_row| / L`` and
    ``q = clamp(roundeven(x / s), -L, L)``, what qc-lower-qgemm's integer activations compute (L = 127
    for 8 bits, 63 for 7)."""
    x = linear.opview.input
    xt = ir.RankedTensorType(x.type)
    rank, f32 = xt.rank, ir.F32Type.get()
    entry = main.regions[0].blocks[0]
    v = entry.add_argument(ir.RankedTensorType.get([2], f32), linear.location)
    ftype = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)
    set_function_type(main, list(ftype.inputs) + [v.type], list(ftype.results))
    dims = [ir.AffineDimExpr.get(i) for i in range(rank)]
    full = ir.AffineMap.get(rank, 0, dims)
    rows = ir.AffineMap.get(rank, 0, dims[:-1])
    element = [ir.AffineMap.get(rank, 0, [ir.AffineConstantExpr.get(i)]) for i in (0, 1)]
    c = f32_const

    def quantized(a):
        xv, rmax, vv, bound = a[:4]
        static = arith.CmpFOp(arith.CmpFPredicate.OGT, vv, c(0.0)).result
        sx = arith.SelectOp(static, vv, arith.DivFOp(rmax, bound).result).result
        inv = arith.SelectOp(arith.CmpFOp(arith.CmpFPredicate.OGT, sx, c(0.0)).result,
                             arith.DivFOp(c(1.0), sx).result, c(0.0)).result
        q = math.RoundEvenOp(arith.MulFOp(xv, inv).result).result
        q = arith.MinimumFOp(arith.MaximumFOp(q, arith.NegFOp(bound).result).result, bound).result
        on = arith.CmpFOp(arith.CmpFPredicate.UNE, vv, c(0.0)).result
        return arith.SelectOp(on, arith.MulFOp(q, sx).result, xv).result

    with ir.InsertionPoint(linear), linear.location:
        zeros = linalg.fill(c(0.0), outs=[tensor.EmptyOp(xt.shape[:-1], f32).result])
        amax = generic([x], [zeros], [full, rows], lambda a: arith.MaximumFOp(math.AbsFOp(a[0]).result, a[1]).result,
                       kinds="p" * (rank - 1) + "r")
        out = generic([x, amax, v, v], [tensor.EmptyOp(xt.shape, f32).result], [full, rows, *element, full],
                      quantized)
    linear.operands[0] = out


def aligned(array: np.ndarray, align: int = 64) -> np.ndarray:
    """A copy of ``array`` starting on an ``align``-byte boundary, as the weight blob's entries do."""
    raw = np.empty(array.nbytes + align, np.uint8)
    start = -raw.ctypes.data % align
    out = raw[start:start + array.nbytes].view(array.dtype).reshape(array.shape)
    out[...] = array
    return out


class ProbeErrors:
    """The probe's f32 outputs on the first ``SENSITIVITY_SAMPLES`` samples, computed once, and the mean output
    error (``metric``) against them of the probe run with some layers quantized: what the sensitivities and the
    error check measure."""

    def __init__(self, probe: Probe, samples: list[dict], metric: str):
        self.probe, self.samples, self.metric = probe, samples[:SENSITIVITY_SAMPLES], metric
        self.refs = [probe.run(s) for s in self.samples]

    def __call__(self, feed: dict[str, np.ndarray], bar) -> float:
        """The mean error with ``feed`` (``layer_feed``s), one ``bar`` step per sample."""
        errors = []
        for sample, ref in zip(self.samples, self.refs):
            errors.append(outputs_error(ref, self.probe.run(sample, feed), self.metric))
            bar.update()
        return float(np.mean(errors))


def measure_sensitivities(errors: ProbeErrors, state: PassState, schemes: list[Scheme], activations: str,
                          progress: bool) -> None:
    """``state.stats.sensitivity[layer][measured:<metric>:<scheme>]`` for every layer and candidate
    not cached yet: the mean output error over the samples with only that layer quantized, its
    weight fake-quantized (round to nearest) and, for int8-activation schemes, its input rounded
    by the probe's switch as the kernel rounds it."""
    from tqdm import tqdm

    probe, metric = errors.probe, errors.metric
    work = []
    for layer, (kind, weight) in probe.layers.items():
        cached = state.stats.sensitivity.setdefault(layer, {})
        k = state.store[weight].shape[1]
        work += [(layer, s) for s in schemes if s.quantized and fits(s, k, kind == "gather") is None
                 and measured_key(metric, s) not in cached]
    bar = tqdm(total=len(work) * len(errors.samples), desc="measuring sensitivities", unit="run",
               disable=not progress)
    for layer, scheme in work:
        error = errors(layer_feed(probe, state, layer, scheme, activations), bar)
        state.stats.sensitivity[layer][measured_key(metric, scheme)] = max(error, 0.0)
    bar.close()


def layer_feed(probe: Probe, state: PassState, layer: str, scheme: Scheme, activations: str) -> dict[str, np.ndarray]:
    """The probe's inputs that run ``layer`` as ``scheme`` would: its weight fake-quantized (round to nearest)
    and, for integer-activation schemes, its input switch rounding as the kernel rounds."""
    feed = probe.weight_input(layer, fake_quantize(state.store[probe.layers[layer][1]], scheme))
    if scheme.int_activations:
        mode = -1.0 if activations == "dynamic" else static_scale(state, layer, scheme)
        feed[ACT_INPUT + layer] = np.array([mode, scheme.act_max], np.float32)
    return feed


def uniform_choices(problem: Problem, solution: Solution) -> dict[str, dict[str, Candidate]]:
    """scheme -> the assignment giving every layer that scheme (f32 where it cannot take it, a pinned layer its
    pin, the KV cache the solution's type), for each candidate scheme whose assignment the budgets and the
    coupled groups allow and which differs from ``solution``."""
    names = {c.scheme for layer in problem.layers if layer.name != KV_CACHE for c in layer.candidates}
    found = {}
    for scheme in sorted(names):
        choice = {}
        for layer in problem.layers:
            by_scheme = {c.scheme: c for c in layer.candidates}
            if layer.name == KV_CACHE:
                pick = solution.choice[layer.name]
            elif len(layer.candidates) == 1:  # pinned, or only one scheme fits
                pick = layer.candidates[0]
            else:
                pick = by_scheme.get(scheme) or by_scheme.get("f32")
            if pick is None:
                break
            choice[layer.name] = pick
        else:
            costs = Solution(choice)
            fits_bytes = problem.max_bytes is None or costs.bytes <= problem.max_bytes
            fits_ms = problem.max_latency_ms is None or costs.latency_ms <= problem.max_latency_ms
            coupled = all(len({choice[n].scheme for n in group}) == 1 for group in problem.groups)
            same = all(choice[n].scheme == c.scheme for n, c in solution.choice.items())
            if fits_bytes and fits_ms and coupled and not same:
                found[scheme] = choice
    return found


def check_error(module: ir.Module, errors: ProbeErrors, state: PassState, activations: str, progress: bool) -> None:
    """Stage 3b: the selection's measured error and each feasible uniform assignment's (``uniform_choices``),
    every layer as its scheme at once, the mean output error over the samples as the sensitivities are measured;
    where a uniform one measures less, it replaces the selection (``state.selection["error_check"]`` says
    which, with the errors)."""
    from tqdm import tqdm

    problem, solution = state.selection["problem"], state.selection["solution"]
    alternatives = uniform_choices(problem, solution)
    bar = tqdm(total=(len(alternatives) + 1) * len(errors.samples), desc="checking the selection", unit="run",
               disable=not progress)

    def measured(choice: dict[str, Candidate]) -> float:
        feed = {}
        for layer, c in choice.items():
            scheme = parse_scheme(c.scheme) if layer in errors.probe.layers else None
            if scheme is not None and scheme.quantized:
                feed |= layer_feed(errors.probe, state, layer, scheme, activations)
        return errors(feed, bar)

    uniform = {scheme: (choice, measured(choice)) for scheme, choice in alternatives.items()}
    selected = measured(solution.choice)
    bar.close()
    best = min(uniform, key=lambda s: uniform[s][1], default=None)
    kept = best if best is not None and uniform[best][1] < selected else None
    state.selection["error_check"] = {"selection": selected, "uniform": {s: e for s, (_, e) in uniform.items()},
                                      "kept": f"uniform {kept}" if kept else "selection"}
    if kept:
        state.selection["solution"] = Solution(uniform[kept][0])
        with module.context:
            apply_choice(module.operation, {name: c.scheme for name, c in uniform[kept][0].items()})


def measure_kv_sensitivities(decoder, prompts, state: PassState, metric: str,
                             types=tuple(t for t in KV_CACHE_TYPES if t != "float32")) -> None:
    """``state.stats.sensitivity["kv_cache"][measured:<metric>:<type>]`` for each KV cache type not cached yet:
    the mean error of the step's outputs (logits, new keys and values, as the layers' are measured) over the
    first prefill chunks of ``prompts``, the PyTorch step with that cache against the one with a float32 cache,
    each chunk fed the cache its own earlier chunks left."""
    cached = state.stats.sensitivity.setdefault(KV_CACHE, {})
    todo = [t for t in types if measured_key(metric, t) not in cached]
    if not todo:
        return
    refs = decoder.with_kv_cache("float32").step_outputs(prompts, SENSITIVITY_SAMPLES)
    for kind in todo:
        outs = decoder.with_kv_cache(kind).step_outputs(prompts, SENSITIVITY_SAMPLES)
        cached[measured_key(metric, kind)] = max(float(np.mean([outputs_error(r, o, metric) for r, o in zip(refs, outs)])),
                                                 0.0)


def static_scale(state: PassState, layer: str, scheme: Scheme) -> float:
    """The per-tensor scale qc-quantize-weights gives ``activations=static`` (the weights before AWQ's factors)."""
    stats = state.stats.get(layer)
    if stats is None:
        raise QCError(f"static int8 activations of '{layer}' need its calibration statistics")
    return scheme.static_act_scale(stats.absmax)


def select_precision(module: ir.Module, sig: Signature, state: PassState, samples: list[dict] | None,
                     target: codegen.Target, o, kv_cache: dict[str, int] | None = None) -> list[Path]:
    """Stages 1-4 (see the module docstring); writes ``qc.scheme`` on every layer of ``module``.  ``kv_cache``:
    a decoder's cache types to choose from with their bytes (their sensitivities measured beforehand)."""
    # 7-bit activations or weights (w8a7, w7a8) only pay where the int8 dot is vpmaddubsw: offered there, unless
    # the user lists
    narrow = o.target == "cpu" and target.maddubs
    candidates = ",".join(o.candidates or ([s.name for s in all_schemes(narrow=True)] if narrow else []))
    schemes = candidate_schemes(candidates)
    ops = scheme_targets(module.operation)
    missing = o.sensitivity == "measured" and any(
        measured_key(o.metric, s) not in state.stats.sensitivity.get(target_name(op), {}) for op in ops
        for s in schemes if s.quantized and fits(s, reduction_size(op), not isinstance(op.opview, LinearOp)) is None)
    # (kernels are timed on this machine's CPU: a GPU model's report has no latencies)
    timed = o.target == "cpu" and (o.budget_latency_ms is not None or o.report is not None or o.pareto is not None)
    if timed:
        state.latency = latency_table(ops, schemes, target, o.activations, o.progress)
    if missing and not samples:
        raise QCError("measured sensitivities need calibration samples (--calib); the statistics given hold "
                      "none for every layer and candidate; or choose sensitivity 'proxy'")
    with tempfile.TemporaryDirectory(prefix="qc-probe-") as tmp:
        checked = bool(samples) and o.sensitivity == "measured"
        # (missing sensitivities imply samples and sensitivity=measured: one probe and its f32 outputs serve both)
        measuring = ProbeErrors(Probe(module, sig, state, target, Path(tmp) / "sensitivity"), samples, o.metric) \
            if checked else None
        if missing:
            measure_sensitivities(measuring, state, schemes, o.activations, o.progress)
        probe, feeds, total, f32 = None, {}, 0.0, 0.0
        if timed:  # the f32 model without the switches, which cost time even when off
            probe = Probe(module, sig, state, target, Path(tmp) / "timing", switches=False)
            feeds = {**(samples[0] if samples else zeros(sig)), **probe.base}
            total = model_ms(probe.model, feeds)
            f32 = sum(state.latency.get_ms(linear_shape(op), "f32") for op in ops if isinstance(op.opview, LinearOp))
        panel, winograd = codegen.stored_layout(target, o.target != "cpu")  # (bytes as the build will store them)
        select = SelectPrecision(
            panel_width=panel, winograd=winograd, budget_bits=o.budget_bits or 0.0, budget_mb=o.budget_mb or 0.0,
            budget_latency_ms=o.budget_latency_ms or 0.0, other_ms=max(total - f32, 0.0),
            pins=";".join(f"{k}={v}" for k, v in o.pins.items()), candidates=candidates,
            sensitivity=o.sensitivity, metric=o.metric, activations=o.activations,
            couple="input" if o.smooth is not None else "none",
            kv_cache=",".join(f"{t}={b}" for t, b in (kv_cache or {}).items()))
        try:
            codegen.run(module, [select], state, "precision selection")
        except QCError:
            if o.budget_latency_ms is None:
                raise
            # before calling a latency budget infeasible, time the rest again: one timing taken in
            # one of the VM's slow bursts (seconds long) makes the rest look slower than the whole model
            total = min([total] + [model_ms(probe.model, feeds) for _ in range(PROBE_RETIMES)])
            select.options["other-ms"] = max(total - f32, 0.0)
            codegen.run(module, [select], state, "precision selection")
        del probe
        if checked:
            check_error(module, measuring, state, o.activations, o.progress)
        del measuring
    state.selection["f32_ms"] = total if timed else None
    if o.budget_latency_ms is not None:
        check_latency(module, sig, state, samples, target, o, select)
    solution: Solution = state.selection["solution"]
    for name, c in solution.choice.items():
        entry = state.report.setdefault(name, {})
        entry.update(sensitivity=c.error, **({"latency_ms": c.latency_ms} if state.selection["latency_measured"]
                                             and name != KV_CACHE else {}))
        entry.setdefault("scheme", c.scheme)
        if name == KV_CACHE:
            entry.update(bytes=c.bytes, bytes_f32=(kv_cache or {}).get("float32", c.bytes),
                         note="the KV cache (memory at run time, not weights)")
    return write_pareto(o.pareto, state.selection) if o.pareto is not None else []


def selected_ms(module: ir.Module, sig: Signature, state: PassState, feeds: dict[str, np.ndarray],
                target: codegen.Target, o) -> float:
    """ms of ``module`` with the schemes chosen so far, quantized and built aside as the driver would."""
    from ..runtime.loader import load
    from .api import build, quantization_passes

    copy = codegen.copy_module(module, main_only=True)
    aside = PassState(store=state.store.copy(), stats=state.stats, latency=state.latency)
    codegen.run(copy, quantization_passes(o, target), aside, "latency check")
    with tempfile.TemporaryDirectory(prefix="qc-check-") as tmp:
        build(copy, sig, aside, target, Path(tmp) / "check.so", "so", {})
        model = load(Path(tmp) / "check.so")
        ms = model_ms(model, feeds)
        del model
    return ms


def check_latency(module: ir.Module, sig: Signature, state: PassState, samples: list[dict] | None,
                  target: codegen.Target, o, select: SelectPrecision) -> None:
    """Stage 4: time the selection; while over budget, rescale the other schemes' kernels and solve again
    (a budget still missed is a warning in ``state.selection["warnings"]``, with the closest selection).

    The kernels were timed one at a time, and the ILP picks the ones that looked fastest, noise
    included; in the model they may run slower or faster (caches, the thread pool, the operations
    around them).  f32 layers are right by construction (the rest of the model is the f32 model
    less their kernels), so what the build shows beyond them is the other schemes' ratio
    ``(measured - rest - f32 layers) / their kernels alone``, which becomes the pass's
    ``quantized-latency-scale`` for the next solve.  Every build is kept in
    ``state.selection["checks"]``; the report's prediction is the last solve's."""
    feeds = samples[0] if samples else zeros(sig)
    other, budget = select.options["other-ms"], o.budget_latency_ms
    checks = []
    for attempt in range(LATENCY_CHECKS):
        solution: Solution = state.selection["solution"]
        scale = select.options["quantized-latency-scale"]
        f32 = sum(c.latency_ms for c in solution.choice.values() if c.scheme == "f32")
        alone = sum(c.latency_ms for c in solution.choice.values() if c.scheme != "f32") / scale
        measured = selected_ms(module, sig, state, feeds, target, o)
        ratio = max(measured - other - f32, 0.0) / alone if alone else 1.0
        checks.append({"predicted_ms": other + solution.latency_ms, "measured_ms": measured, "scale": scale,
                       "ratio": ratio})
        if measured <= budget or attempt == LATENCY_CHECKS - 1 or not alone:
            break
        select.options["quantized-latency-scale"] = max(ratio, scale * budget / measured)
        try:
            codegen.run(module, [select], state, "precision selection")
        except QCError:  # no selection fits the rescaled kernels: this one (its schemes untouched) is the closest
            select.options["quantized-latency-scale"] = scale
            break
    state.selection["checks"] = checks
    if checks[-1]["measured_ms"] > budget:
        state.selection.setdefault("warnings", []).append(
            f"the selected model measured {checks[-1]['measured_ms']:.3f} ms, over budget-latency-ms={budget:g} "
            f"(predicted {checks[-1]['predicted_ms']:.3f} ms), after {len(checks)} build"
            f"{'s' if len(checks) > 1 else ''}; in the model its kernels ran {checks[-1]['ratio']:.2f}x their "
            "time alone" + ("" if len(checks) == LATENCY_CHECKS else ", and no faster selection remains"))


def zeros(sig: Signature) -> dict[str, np.ndarray]:
    return {s.name: np.zeros(s.shape, s.dtype) for s in sig.inputs}


def selection_summary(state: PassState, result, samples: list[dict] | None, o) -> dict:
    """What the report says of the selection: how errors were found, the budgets, and predicted vs
    measured totals (the compiled model timed when it is a library)."""
    sel = state.selection
    solution: Solution = sel["solution"]
    problem: Problem = sel["problem"]
    weights = sum(layer.weights for layer in problem.layers)
    data = {"sensitivity": sel["sensitivity"], "metric": sel["metric"] if sel["sensitivity"] == "measured" else
            "relative layer output error (Hessian-weighted)",
            "budgets": {"bits": o.budget_bits, "mb": o.budget_mb, "latency_ms": o.budget_latency_ms},
            "pins": o.pins, "layer_bytes": solution.bytes, "bits_per_weight": 8 * solution.bytes / max(weights, 1),
            "predicted_error": solution.error}
    if "error_check" in sel:
        data["error_check"] = sel["error_check"]
    if sel["latency_measured"]:
        data["predicted_ms"] = sel["other_ms"] + solution.latency_ms
        # the f32 model's measured time: a benchmark that times both side by side judges the
        # prediction as a fraction of f32, out of which the VM's drift cancels
        data["f32_measured_ms"] = sel["f32_ms"]
        if "checks" in sel:
            data["latency_checks"] = sel["checks"]
        if o.emit == "so":
            from ..runtime.loader import load

            model = load(result.output)
            data["measured_ms"] = model_ms(model, samples[0] if samples else zeros(result.signature))
            del model
    return data


def pareto_front(problem: Problem, points: int = 12) -> list[dict]:
    """The ILP's optimum at ``points`` bit budgets between the smallest and the largest feasible."""
    from ..core.quant.select import smallest

    weights = sum(layer.weights for layer in problem.layers)
    lo = smallest(problem, "bytes")
    hi = sum(max(c.bytes for c in layer.candidates) for layer in problem.layers)
    front = []
    for budget in np.linspace(lo, hi, points):
        try:
            s = solve(Problem(problem.layers, budget, problem.max_latency_ms, problem.groups))
        except QCError:
            continue
        front.append({"budget_bits": 8 * budget / weights, "bytes": s.bytes, "bits": 8 * s.bytes / weights,
                      "error": s.error, "latency_ms": s.latency_ms})
    return front


def uniform_points(problem: Problem) -> list[dict]:
    """Every candidate scheme on every layer that can take it (the rest in f32): what a user who
    guesses one --scheme gets, in the same units as the front."""
    weights = sum(layer.weights for layer in problem.layers)
    schemes = sorted({c.scheme for layer in problem.layers for c in layer.candidates})
    out = []
    for scheme in schemes:
        chosen = [next((c for c in layer.candidates if c.scheme == scheme),
                       next((c for c in layer.candidates if c.scheme == "f32"), None)) for layer in problem.layers]
        if any(c is None for c in chosen):
            continue
        nbytes = sum(c.bytes for c in chosen)
        out.append({"scheme": scheme, "bytes": nbytes, "bits": 8 * nbytes / weights,
                    "error": sum(c.error for c in chosen), "latency_ms": sum(c.latency_ms for c in chosen)})
    return out


def write_pareto(path: str | Path, selection: dict) -> list[Path]:
    """The front (``.md`` table or ``.json``) and ``<path>.png``: error and latency against bits."""
    import json

    path = Path(path)
    if path.suffix not in (".md", ".json"):
        raise QCError(f"pareto output '{path}' must end in .md or .json")
    problem, chosen = selection["problem"], selection["solution"]
    weights = sum(layer.weights for layer in problem.layers)
    front, uniform = pareto_front(problem), uniform_points(problem)
    point = {"bytes": chosen.bytes, "bits": 8 * chosen.bytes / weights, "error": chosen.error,
             "latency_ms": chosen.latency_ms}
    unit = f"summed {selection['metric']} error" if selection["sensitivity"] == "measured" else "summed proxy error"
    if path.suffix == ".json":
        text = json.dumps({"error_unit": unit, "front": front, "uniform": uniform, "chosen": point}, indent=2)
    else:
        lines = [f"# Pareto front (error: {unit}; latency: the layers' kernels)", "",
                 "| point | bits/weight | layer bytes | predicted error | layers' ms |", "| --- | ---: | ---: | ---: | ---: |"]
        rows = [("chosen", point)] + [(f"ILP at {p['budget_bits']:.2f} bits", p) for p in front] + \
            [(f"uniform {u['scheme']}", u) for u in uniform]
        lines += [f"| {label} | {p['bits']:.3f} | {p['bytes']} | {p['error']:.4e} | {p['latency_ms']:.3f} |"
                  for label, p in rows]
        text = "\n".join(lines) + "\n"
    png = path.with_suffix(".png")
    try:
        path.write_text(text)
        _plot_pareto(png, front, uniform, point, unit)
    except OSError as err:
        raise QCError(f"cannot write the Pareto front '{path}': {err}") from None
    return [path, png]


def _plot_pareto(png: Path, front: list[dict], uniform: list[dict], chosen: dict, unit: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(7.5, 7))
    positive = [p["error"] for p in front + uniform + [chosen] if p["error"] > 0]
    floor = min(positive) / 10 if positive else 1e-12  # an error of 0 (f32) drawn at the floor of a log axis
    for ax, key, label in ((top, "error", f"{unit} (0 drawn at {floor:.0e})"), (bottom, "latency_ms",
                                                                                "layers' kernel ms")):
        y = (lambda p: max(p[key], floor)) if key == "error" else (lambda p: p[key])  # noqa: E731
        ax.plot([p["bits"] for p in front], [y(p) for p in front], "o-", label="ILP front")
        ax.scatter([u["bits"] for u in uniform], [y(u) for u in uniform], marker="s", color="0.5", label="uniform")
        for u in uniform:
            ax.annotate(u["scheme"], (u["bits"], y(u)), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.scatter([chosen["bits"]], [y(chosen)], marker="*", s=220, color="red", zorder=5, label="chosen")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    top.set_yscale("log")
    bottom.set_xlabel("bits per weight (scales included)")
    top.set_title("precision selection: error and latency against size")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)

