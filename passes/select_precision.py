"""qc-select-precision: choose every layer's scheme by integer linear programming.

    %y1 = "qc.linear"(%x, %w1)                        (layer "fc1", 64x256)
    %y2 = "qc.linear"(%h, %w2)                        (layer "fc2", 256x10)
with ``budget-bits=6`` becomes
    %y1 = "qc.linear"(%x, %w1) {qc.scheme = #qc.scheme<"w4a16-g32", "sym">}
    %y2 = "qc.linear"(%h, %w2) {qc.scheme = #qc.scheme<"w8a16", "sym">}

Every named ``qc.linear`` and embedding gather is a layer; its candidates are the schemes of the
``candidates`` option it can take (``compiler.quant.fits``).  For each (layer, candidate):

- bytes: exactly what the weight file stores (``Scheme.weight_bytes``): a table's rows, a linear's
  kernel panels of ``panel-width`` columns (qc-compile gives the target's), an f32 3x3 convolution's
  Winograd-transformed filter where qc-winograd (up to tile ``winograd``) will take it;
- error: the sensitivity; ``measured`` (the model's output error with only that layer quantized,
  which qc-compile measures and caches in the statistics, ``Statistics.sensitivity``) where every
  layer has it, else the Hessian-weighted ``proxy`` computed here from the calibration statistics;
- latency: the generated kernel's time for that layer's shape on this host, from the latency
  table (``state.latency`` or ``latency-table``); embedding gathers cost none.

``compiler.quant.select.solve`` (HiGHS) minimises the summed error under any combination of
``budget-bits`` (average bits per weight of the layers, scales included), ``budget-mb`` (all stored
weights, 10^6 bytes) and ``budget-latency-ms`` (the layers plus ``other-ms``, the rest of the
model).  Ops of one layer name (a decoder's two entry points read each weight through its own op)
are one layer, one decision.  ``pins`` (``REGEX=SCHEME;...``) fix layers; ``couple=input`` makes the
layers that read one input take one scheme.  An infeasible budget is an error naming the smallest feasible one.

A decoder's KV cache can be chosen with the layers (``kv-cache=float32=B32,float16=B16,int8=B8``, its bytes
per type): one more layer of no weights whose candidates are the cache types, with their measured
sensitivities (statistics ``kv_cache``) and bytes counted by ``budget-mb``; the choice becomes the
module's ``qc.kv_cache`` (the driver imports the step again with that cache when it is not the one imported).
"""

from __future__ import annotations

import math

from torch_mlir import ir

from ..core.errors import QCError
from ..core.quant import Scheme, all_schemes, fits, parse_scheme
from ..core.quant.scheme import KV_CACHE_TYPES
from ..core.quant.latency import LatencyTable, scheme_key, shape_key
from ..core.quant.select import Candidate, Layer, Problem, solve
from ..core.quant.sensitivity import METRICS, proxy_error, table_error
from ..dialects.qc import LinearOp, WeightOp
from .assign_schemes import parse_pairs, reduction_size
from .base import ModulePass, Option, PassState, one_of, ops_of
from .matchers import embedding_table, scheme_targets, set_scheme, stored_weight, target_name, target_weight
from .quantize_weights import ACTIVATIONS, scheme_attr
from .winograd import stored_bytes

SENSITIVITIES = ("auto", "measured", "proxy")
COUPLINGS = ("none", "input")


def candidate_schemes(text: str) -> list[Scheme]:
    """``"f32,w8a16,w4a16-g32"`` (empty: every scheme, sym and asym) -> schemes."""
    if not text.strip():
        return all_schemes()
    return [parse_scheme(t) for t in text.split(",") if t.strip()]


def layer_rows(op: ir.Operation) -> int:
    """Rows of a linear's input (the M of its GEMM)."""
    return math.prod(ir.RankedTensorType(op.opview.input.type).shape[:-1])


def linear_shape(op: ir.Operation) -> str:
    n, k = ir.RankedTensorType(op.opview.weight.type).shape
    return shape_key(layer_rows(op), k, n, op.opview.bias is not None)


def measured_key(metric: str, scheme: Scheme | str) -> str:
    """The statistics' key of a measured sensitivity: of a scheme, or of a KV cache type."""
    return f"measured:{metric}:{scheme if isinstance(scheme, str) else scheme.name}"


KV_CACHE = "kv_cache"  # the KV cache's "layer": its sensitivities in the statistics, its choice in the solution
KV_CACHE_ATTR = "qc.kv_cache"  # the module's chosen KV cache type


def parse_kv_cache(text: str) -> dict[str, int]:
    """``"float32=4096,int8=1280"`` -> {type: bytes}."""
    out = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        kind, _, nbytes = pair.partition("=")
        if kind not in KV_CACHE_TYPES or not nbytes.isdigit():
            raise QCError(f"kv-cache takes TYPE=BYTES pairs ({', '.join(KV_CACHE_TYPES)}), got '{pair}'")
        out[kind] = int(nbytes)
    return out


class SelectPrecision(ModulePass):
    NAME = "qc-select-precision"
    SUMMARY = "Choose each layer's scheme by ILP (HiGHS) on sensitivities, exact bytes and measured latencies"
    OPTIONS = {
        "budget-bits": Option(float, 0.0, "average bits per weight of the layers, scales included (0: none)"),
        "budget-mb": Option(float, 0.0, "MB (10^6 bytes) of all stored weights (0: none)"),
        "budget-latency-ms": Option(float, 0.0, "ms of the selected layers' kernels plus other-ms (0: none)"),
        "other-ms": Option(float, 0.0, "measured ms of everything but the selected layers"),
        "pins": Option(str, "", "REGEX=SCHEME pairs separated by ';': layers whose scheme is fixed"),
        "candidates": Option(str, "", "comma-separated schemes to choose from (empty: every scheme)"),
        "sensitivity": Option(one_of(SENSITIVITIES), "auto", "measured | proxy | auto (measured where cached)"),
        "metric": Option(one_of(METRICS), "cosine", "the measured sensitivities' output metric"),
        "activations": Option(one_of(ACTIVATIONS), "dynamic", "int8 activations as qc-quantize-weights makes them"),
        "couple": Option(one_of(COUPLINGS), "none", "input: layers reading one input take one scheme"),
        "latency-table": Option(str, "", "a latency table (.json) to read instead of the driver's"),
        "panel-width": Option(int, 0, "columns per kernel panel of the target: linears' bytes as stored in its "
                              "panels (0: rows as they are)"),
        "winograd": Option(int, 0, "largest Winograd tile of the target's f32 3x3 convolutions (qc-winograd): "
                           "their f32 bytes as it stores the transformed filter (0: as they are)"),
        "quantized-latency-scale": Option(float, 1.0, "times the table's latency of every scheme but f32: how much "
                                          "slower (> 1) those kernels ran in the model than alone"),
        "kv-cache": Option(str, "", "a decoder's KV cache types to choose from, TYPE=BYTES pairs (float32, float16, "
                           "int8): the cache is one more layer, its error the type's measured sensitivity "
                           "(statistics 'kv_cache'), its bytes counted by budget-mb (empty: not chosen)"),
    }

    def run(self, module: ir.Operation, state: PassState) -> None:
        o = self.options
        table = LatencyTable.load(o["latency-table"]) if o["latency-table"] else state.latency
        if o["budget-latency-ms"] and table is None:
            raise QCError("budget-latency-ms needs measured kernel latencies (qc-compile measures them; "
                          "qc-opt takes latency-table=FILE)")
        schemes = candidate_schemes(o["candidates"])
        pins = parse_pairs(o["pins"])
        # One decision per layer name: a decoder's two entry points read each weight through two ops.
        by_name: dict[str, list[ir.Operation]] = {}
        for op in scheme_targets(module):
            by_name.setdefault(target_name(op), []).append(op)
        targets = [ops[0] for ops in by_name.values()]
        names = list(by_name)
        for pattern, _ in pins:
            if not any(pattern.fullmatch(n) for n in names):
                raise QCError(f"pin '{pattern.pattern}' matches no layer; layers: {', '.join(names)}")
        kind = self._sensitivity_kind(targets, schemes, state)
        layers = []
        for op, name in zip(targets, names):
            pinned = next((s for p, s in pins if p.fullmatch(name)), None)
            layers.append(self._layer(op, name, [pinned] if pinned else schemes, pinned is not None, kind, table,
                                      state))
        cache = parse_kv_cache(o["kv-cache"])
        if cache:
            layers.append(self._kv_layer(cache, kind, state))
        groups = self._groups(targets) if o["couple"] == "input" else []
        fixed = self._fixed_bytes(module, targets, state)
        limits = []
        if o["budget-bits"]:
            limits.append(o["budget-bits"] / 8 * sum(layer.weights for layer in layers))
        if o["budget-mb"]:
            limits.append(o["budget-mb"] * 1e6 - fixed)
        problem = Problem(layers, min(limits) if limits else None,
                          o["budget-latency-ms"] - o["other-ms"] if o["budget-latency-ms"] else None, groups,
                          fixed, o["other-ms"])
        solution = solve(problem)
        apply_choice(module, {name: c.scheme for name, c in solution.choice.items()})
        state.selection.update(problem=problem, solution=solution, sensitivity=kind, metric=o["metric"],
                               other_ms=o["other-ms"], latency_measured=table is not None)

    def _kv_layer(self, cache: dict[str, int], kind: str, state: PassState) -> Layer:
        """The KV cache as a layer of no weights: a candidate per type, its measured error (f32: none)."""
        if self.options["budget-bits"]:
            raise QCError("kv-cache: the cache is memory, not weights; give budget-mb (weights and cache), not "
                          "budget-bits")
        if kind != "measured":
            raise QCError("kv-cache: the cache types' errors are measured; the layers' must be too (sensitivity="
                          "measured), a proxy is in other units")
        measured = state.stats.sensitivity.get(KV_CACHE, {})
        candidates = []
        for cache_type, nbytes in cache.items():
            key = measured_key(self.options["metric"], cache_type)
            if cache_type != "float32" and key not in measured:
                raise QCError(f"kv-cache: the statistics have no measured sensitivity of a {cache_type} cache "
                              f"('{KV_CACHE}' {key}; qc-compile --kv-cache auto measures it)")
            candidates.append(Candidate(cache_type, nbytes, measured.get(key, 0.0)))
        return Layer(KV_CACHE, 0, candidates)

    def _sensitivity_kind(self, targets: list[ir.Operation], schemes: list[Scheme], state: PassState) -> str:
        """``measured`` when every (layer, quantized candidate it can take) has a measured value, else
        ``proxy``: one kind for all, as the two are not in the same units."""
        wanted = self.options["sensitivity"]
        if wanted == "proxy":
            return "proxy"
        have = all(measured_key(self.options["metric"], s) in state.stats.sensitivity.get(target_name(op), {})
                   for op in targets for s in schemes
                   if s.quantized and fits(s, reduction_size(op), not isinstance(op.opview, LinearOp)) is None)
        if wanted == "measured" and not have:
            raise QCError("sensitivity=measured: the statistics lack measured sensitivities for some layers "
                          "(qc-compile --scheme auto measures them; or use sensitivity=proxy)")
        return "measured" if have else "proxy"

    def _layer(self, op: ir.Operation, name: str, schemes: list[Scheme], pinned: bool, kind: str,
               table: LatencyTable | None, state: PassState) -> Layer:
        gather = not isinstance(op.opview, LinearOp)
        k = reduction_size(op)
        if gather:
            n = ir.RankedTensorType(embedding_table(op)[0].opview.tensor.type).shape[0]
        else:
            n, _ = ir.RankedTensorType(op.opview.weight.type).shape
        candidates = []
        for scheme in schemes:
            why = fits(scheme, k, gather)
            if why is not None:
                if pinned:
                    raise QCError(f"layer '{name}' is pinned to {scheme.name}, which it cannot take: {why}", op.location)
                continue
            latency = 0.0
            if table is not None and not gather:
                latency = table.get_ms(linear_shape(op), scheme_key(scheme, self.options["activations"]))
                if latency is None:
                    raise QCError(f"no measured latency for layer '{name}' ({linear_shape(op)}) at {scheme.name}",
                                  op.location)
                if scheme.name != "f32":
                    latency *= self.options["quantized-latency-scale"]
            width = 0 if gather else self.options["panel-width"]
            nbytes = scheme.weight_bytes(n, k, width)
            if not scheme.quantized and scheme.name == "f32" and not gather:
                nbytes = stored_bytes(op.opview, state, self.options["winograd"]) or nbytes
            candidates.append(Candidate(scheme.name, nbytes, self._error(op, name, scheme, kind, state), latency))
        return Layer(name, n * k, candidates)

    def _error(self, op: ir.Operation, name: str, scheme: Scheme, kind: str, state: PassState) -> float:
        if not scheme.quantized:
            return 0.0
        if kind == "measured":
            return state.stats.sensitivity[name][measured_key(self.options["metric"], scheme)]
        if not isinstance(op.opview, LinearOp):
            return table_error(state.store[embedding_table(op)[2]], scheme)
        stats = state.stats.get(name)
        found = stored_weight(op.opview.weight)
        if stats is None or stats.hessian is None or found is None:
            raise QCError(f"the sensitivity proxy needs calibration statistics with the input Hessian for "
                          f"layer '{name}' (compile with calibration data)", op.location)
        return proxy_error(state.store[found[1]], scheme, stats, self.options["activations"] == "static")

    @staticmethod
    def _fixed_bytes(module: ir.Operation, targets: list[ir.Operation], state: PassState) -> int:
        """Bytes of every stored weight no layer choice changes (biases, norms, ...)."""
        layer_weights = {target_weight(op) for op in targets}
        others = {w.name.value for w in ops_of(module, WeightOp)}
        return sum(state.store[n].nbytes for n in others - layer_weights if n in state.store)

    @staticmethod
    def _groups(targets: list[ir.Operation]) -> list[list[str]]:
        by_input: dict[ir.Value, list[str]] = {}
        for op in targets:
            if isinstance(op.opview, LinearOp):
                by_input.setdefault(op.opview.input, []).append(target_name(op))
        return [g for g in by_input.values() if len(g) > 1]


def apply_choice(module: ir.Operation, choice: dict[str, str]) -> None:
    """Writes each layer's chosen scheme (``choice``: layer name -> scheme) on its ops, and a chosen KV cache
    type as the module's ``qc.kv_cache``."""
    for op in scheme_targets(module):
        name = target_name(op)
        set_scheme(op, name, scheme_attr(parse_scheme(choice[name])))
    if KV_CACHE in choice:
        module.attributes[KV_CACHE_ATTR] = ir.StringAttr.get(choice[KV_CACHE])
