"""ONNX operator coverage: one small model per op (and per old form of an op), at every opset from
7 to 21 where the form is valid, parameters as initializers and (at one opset) as ``Constant``
nodes; the reference is ONNX Runtime, or ONNX's ``ReferenceEvaluator`` where ORT cannot run it.  A case either compiles and matches, or is
refused with one error naming the node and the op; anything else (a traceback, a crash, a wrong
number) fails.

``python test/python/onnx_suite.py`` prints the coverage table (docs/results.md);
test_onnx_ops.py runs the same cases.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

OPSETS = (7, 9, 11, 13, 17, 21)
CONSTANT_NODES_OPSET = 13  # the opset at which parameters are also given as Constant nodes
RTOL, ATOL = 1e-4, 1e-5

_rng = np.random.default_rng(0)


def f(*shape, low=None, high=None):
    """A float32 input; uniform in [low, high) when given, else standard normal."""
    if low is not None:
        return _rng.uniform(low, high, shape).astype(np.float32)
    return _rng.standard_normal(shape).astype(np.float32)


def i64(*values):
    return np.array(values, dtype=np.int64)


@dataclass
class Case:
    op: str
    inputs: dict  # graph inputs: name -> array
    params: dict = field(default_factory=dict)  # constant inputs: name -> array
    attrs: dict = field(default_factory=dict)
    order: list | None = None  # the node's inputs in order ("" skips an optional one); default: inputs, params
    since: int = 7  # this form's opsets: [since, until)
    until: int = 99
    outputs: int = 1
    form: str = ""  # tells apart forms of one op, e.g. "axes attribute"

    @property
    def name(self) -> str:
        return f"{self.op} ({self.form})" if self.form else self.op

    def opsets(self) -> list[int]:
        out = []
        for v in OPSETS:
            if not self.since <= v < self.until:
                continue
            try:
                onnx.defs.get_schema(self.op, v)
            except onnx.defs.SchemaError:
                continue
            out.append(v)
        return out

    def model(self, opset: int, constant_nodes: bool = False) -> onnx.ModelProto:
        order = self.order if self.order is not None else [*self.inputs, *self.params]
        outs = [f"y{i}" for i in range(self.outputs)]
        nodes = [helper.make_node("Constant", [], [n], name=f"const_{n}", value=numpy_helper.from_array(a, n))
                 for n, a in self.params.items()] if constant_nodes else []
        nodes.append(helper.make_node(self.op, order, outs, name=f"node_{self.op.lower()}", **self.attrs))
        graph = helper.make_graph(
            nodes, self.op, [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
                             for n, a in self.inputs.items()],
            [helper.make_empty_tensor_value_info(o) for o in outs],
            [] if constant_nodes else [numpy_helper.from_array(a, n) for n, a in self.params.items()])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=7)
        ref = reference(model, self.inputs)
        del model.graph.output[:]
        model.graph.output.extend(helper.make_tensor_value_info(o, helper.np_dtype_to_tensor_dtype(r.dtype), r.shape)
                                  for o, r in zip(outs, ref))
        return model


def _x(*shape):
    return {"x": f(*shape)}


X4 = (2, 3, 5, 5)
CASES = [
    # elementwise
    *[Case(op, _x(2, 3, 4)) for op in ("Abs", "Neg", "Exp", "Tanh", "Sigmoid", "Relu", "Floor", "Ceil", "Erf", "Sin",
                                       "Cos", "Sign", "Softsign", "Softplus", "Identity")],
    *[Case(op, {"x": f(2, 3, 4, low=0.1, high=4)}) for op in ("Sqrt", "Log", "Reciprocal")],
    Case("Reciprocal", {"x": np.array([[0.0, -0.0, 0.5, -4.0]], dtype=np.float32)}, form="zeros: +-inf"),
    Case("Round", {"x": f(2, 3, 4) * 3}, since=11),
    Case("LeakyRelu", _x(2, 3, 4), attrs={"alpha": 0.2}),
    Case("Elu", _x(2, 3, 4), attrs={"alpha": 0.7}),
    Case("Selu", _x(2, 3, 4)),
    Case("HardSigmoid", _x(2, 3, 4), attrs={"alpha": 0.3, "beta": 0.4}),
    Case("HardSwish", _x(2, 3, 4), since=14),
    Case("Gelu", _x(2, 3, 4), since=20),
    Case("PRelu", _x(*X4), params={"slope": f(3, 1, 1, low=0, high=0.5)}, since=9, form="per-channel slope"),
    Case("Clip", _x(2, 3, 4), params={"lo": np.array(-0.5, np.float32), "hi": np.array(0.6, np.float32)}, since=11,
         form="min/max inputs"),
    Case("Clip", _x(2, 3, 4), attrs={"min": -0.5, "max": 0.6}, until=11, form="min/max attributes"),
    *[Case(op, {"a": f(2, 3, 4), "b": f(3, 4)}) for op in ("Add", "Sub", "Mul", "Max", "Min", "Sum", "Mean")],
    Case("Div", {"a": f(2, 3, 4), "b": f(3, 4, low=0.5, high=2)}),
    Case("Pow", {"a": f(2, 3, 4, low=0.5, high=2), "b": f(3, 4, low=-1, high=2)}),
    Case("Mod", {"a": f(2, 3, 4) * 5, "b": f(3, 4, low=1, high=2)}, attrs={"fmod": 1}, since=10),
    *[Case(op, {"a": f(2, 3, 4), "b": f(3, 4)}) for op in ("Greater", "Less", "Equal")],
    Case("Where", {"a": f(2, 3, 4), "b": f(3, 4)}, params={"c": _rng.random((2, 3, 4)) > 0.5},
         order=["c", "a", "b"], since=9),
    Case("Not", {"x": _rng.random((2, 3)) > 0.5}),
    Case("And", {"a": _rng.random((2, 3)) > 0.5, "b": _rng.random((2, 3)) > 0.5}),
    Case("Cast", _x(2, 3, 4), attrs={"to": onnx.TensorProto.INT32}, form="to int32"),
    Case("IsNaN", _x(2, 3), since=9),
    # contractions
    Case("MatMul", _x(2, 4, 8), params={"w": f(8, 6)}),
    Case("MatMul", {"a": f(2, 3, 4, 8), "b": f(2, 3, 8, 5)}, form="batched, two inputs"),
    Case("Gemm", _x(4, 8), params={"w": f(6, 8), "b": f(6)}, attrs={"transB": 1, "alpha": 0.5, "beta": 2.0}),
    Case("Einsum", {"a": f(2, 3, 4), "b": f(2, 4, 5)}, attrs={"equation": "bij,bjk->bik"}, since=12),
    # convolutions and pooling
    Case("Conv", _x(*X4), params={"w": f(4, 3, 3, 3), "b": f(4)}, attrs={"pads": [1, 1, 1, 1]}),
    Case("Conv", _x(1, 4, 6, 6), params={"w": f(4, 1, 3, 3)}, attrs={"group": 4, "strides": [2, 2]}, form="depthwise, strided"),
    Case("Conv", _x(1, 4, 6, 6), params={"w": f(6, 2, 3, 3)}, attrs={"group": 2, "dilations": [2, 2]}, form="grouped, dilated"),
    Case("Conv", _x(1, 3, 9), params={"w": f(4, 3, 3)}, attrs={"pads": [1, 1]}, form="1-d"),
    Case("ConvTranspose", _x(1, 3, 4, 4), params={"w": f(3, 2, 3, 3)}, attrs={"strides": [2, 2]}),
    Case("MaxPool", _x(*X4), attrs={"kernel_shape": [2, 2], "strides": [2, 2]}),
    Case("MaxPool", _x(*X4), attrs={"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, form="padded"),
    Case("MaxPool", _x(1, 3, 9, 9), attrs={"kernel_shape": [3, 3], "strides": [2, 2], "dilations": [2, 1]},
         since=10, form="dilated"),
    Case("MaxPool", _x(1, 3, 10), attrs={"kernel_shape": [3], "strides": [2], "pads": [1, 1]}, form="1-d"),
    Case("AveragePool", _x(*X4), attrs={"kernel_shape": [3, 3], "strides": [2, 2]}),
    Case("AveragePool", _x(*X4), attrs={"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1},
         form="padded, pads counted"),
    Case("AveragePool", _x(*X4), attrs={"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, form="padded"),
    Case("GlobalAveragePool", _x(*X4)),
    Case("GlobalMaxPool", _x(*X4)),
    # normalizations
    Case("BatchNormalization", _x(*X4), params={"s": f(3), "b": f(3), "m": f(3), "v": f(3, low=0.5, high=2)},
         since=9),
    Case("InstanceNormalization", _x(*X4), params={"s": f(3), "b": f(3)}),
    Case("LayerNormalization", _x(2, 4, 8), params={"s": f(8), "b": f(8)}, attrs={"axis": -1}, since=17),
    Case("GroupNormalization", _x(2, 4, 3, 3), params={"s": f(4), "b": f(4)}, attrs={"num_groups": 2}, since=21),
    Case("LRN", _x(*X4), attrs={"size": 3}),
    Case("Softmax", _x(2, 3, 4), attrs={"axis": -1}, since=13),
    Case("LogSoftmax", _x(2, 3, 4), attrs={"axis": -1}, since=13),
    Case("Softmax", _x(2, 12), attrs={"axis": 1}, until=13, form="2-d, axis 1"),
    Case("Dropout", _x(2, 3), since=12, form="inference"),
    # reductions
    *[Case(op, _x(2, 3, 4), params={"axes": i64(1)}, attrs={"keepdims": 1}, since=18, form="axes input")
      for op in ("ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceLogSumExp")],
    *[Case(op, _x(2, 3, 4), attrs={"axes": [1], "keepdims": 1}, until=18, form="axes attribute")
      for op in ("ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2")],
    Case("ReduceSum", _x(2, 3, 4), params={"axes": i64(-1)}, attrs={"keepdims": 0}, since=13, form="axes input"),
    Case("ReduceSum", _x(2, 3, 4), attrs={"axes": [-1], "keepdims": 0}, until=13, form="axes attribute"),
    Case("ArgMax", _x(2, 3, 4), attrs={"axis": 1, "keepdims": 0}),
    Case("ArgMin", _x(2, 3, 4), attrs={"axis": 2}),
    Case("CumSum", _x(2, 5), params={"axis": i64(1)[0]}, since=11),
    Case("TopK", _x(2, 6), params={"k": i64(3)}, outputs=2, since=10),
    # shapes and data movement
    Case("Reshape", _x(2, 3, 4), params={"shape": i64(4, -1)}, since=5),
    Case("Transpose", _x(2, 3, 4), attrs={"perm": [2, 0, 1]}),
    Case("Flatten", _x(2, 3, 4), attrs={"axis": 1}),
    Case("Squeeze", _x(2, 1, 4), params={"axes": i64(1)}, since=13, form="axes input"),
    Case("Squeeze", _x(2, 1, 4), attrs={"axes": [1]}, until=13, form="axes attribute"),
    Case("Unsqueeze", _x(2, 4), params={"axes": i64(0)}, since=13, form="axes input"),
    Case("Unsqueeze", _x(2, 4), attrs={"axes": [0]}, until=13, form="axes attribute"),
    Case("Concat", {"a": f(2, 3), "b": f(2, 5)}, attrs={"axis": 1}),
    Case("Split", _x(2, 6), params={"split": i64(2, 4)}, attrs={"axis": 1}, outputs=2, since=13, form="split input"),
    Case("Split", _x(2, 6), attrs={"axis": 1, "split": [2, 4]}, outputs=2, until=13, form="split attribute"),
    Case("Slice", _x(4, 6), params={"st": i64(1, 0), "en": i64(3, 6), "ax": i64(0, 1), "sp": i64(1, 2)}, since=10,
         form="inputs"),
    Case("Slice", _x(4, 6), attrs={"starts": [1], "ends": [3], "axes": [0]}, until=10, form="attributes"),
    Case("Gather", _x(5, 4), params={"i": i64(0, 3, 1)}, attrs={"axis": 0}),
    Case("Gather", _x(5, 4), params={"i": np.array([[0, 2], [1, 1]], np.int64)}, attrs={"axis": 1}, form="2-d indices, axis 1"),
    Case("GatherElements", _x(3, 4), params={"i": np.array([[0, 1, 2, 0]] * 3, np.int64)}, attrs={"axis": 0}, since=11),
    Case("GatherND", _x(3, 4), params={"i": np.array([[0, 1], [2, 3]], np.int64)}, since=11),
    Case("ScatterElements", _x(3, 4), params={"i": np.array([[1, 0, 2, 0]], np.int64), "u": f(1, 4)},
         attrs={"axis": 0}, since=11),
    Case("ScatterND", _x(4, 3), params={"i": np.array([[1], [3]], np.int64), "u": f(2, 3)}, since=11),
    Case("Expand", _x(3, 1), params={"shape": i64(2, 3, 4)}, since=8),
    Case("Tile", _x(2, 3), params={"r": i64(2, 2)}),
    Case("Pad", _x(2, 3), params={"pads": i64(0, 1, 1, 2)}, attrs={"mode": "constant"}, since=11, form="pads input"),
    Case("Pad", _x(2, 3), attrs={"pads": [0, 1, 1, 2], "mode": "constant"}, until=11, form="pads attribute"),
    Case("Pad", _x(1, 2, 4, 4), params={"pads": i64(0, 0, 1, 1, 0, 0, 1, 1)}, attrs={"mode": "reflect"}, since=11,
         form="reflect"),
    Case("Resize", _x(1, 2, 3, 3), params={"scales": np.array([1, 1, 2, 2], np.float32)}, order=["x", "", "scales"],
         attrs={"mode": "nearest"}, since=11, form="nearest"),
    Case("Resize", _x(1, 2, 3, 3), params={"sizes": i64(1, 2, 6, 6)}, order=["x", "", "", "sizes"],
         attrs={"mode": "linear", "coordinate_transformation_mode": "half_pixel"}, since=13, form="linear"),
    Case("Upsample", _x(1, 2, 3, 3), params={"scales": np.array([1, 1, 2, 2], np.float32)}, attrs={"mode": "nearest"},
         since=9, until=10),
    Case("DepthToSpace", _x(1, 8, 2, 2), attrs={"blocksize": 2}),
    Case("SpaceToDepth", _x(1, 2, 4, 4), attrs={"blocksize": 2}),
    Case("Shape", _x(2, 3, 4)),
    Case("Size", _x(2, 3, 4)),
    Case("ConstantOfShape", {}, params={"s": i64(2, 3)}, attrs={"value": numpy_helper.from_array(np.array([1.5], np.float32))},
         since=9),
    Case("Range", {}, params={"a": np.array(1.0, np.float32), "b": np.array(7.0, np.float32),
                              "d": np.array(1.5, np.float32)}, since=11),
    Case("Trilu", _x(4, 4), params={"k": i64(1)[0]}, since=14),
    Case("OneHot", {}, params={"i": i64(0, 2, 1), "d": i64(4)[0], "v": np.array([0, 1], np.float32)}, since=11),
    # recurrent
    Case("LSTM", _x(3, 1, 4), params={"w": f(1, 16, 4), "r": f(1, 16, 4), "b": f(1, 32)}, attrs={"hidden_size": 4},
         outputs=3),
    Case("GRU", _x(3, 1, 4), params={"w": f(1, 12, 4), "r": f(1, 12, 4), "b": f(1, 24)}, attrs={"hidden_size": 4},
         outputs=2),
    Case("RNN", _x(3, 1, 4), params={"w": f(1, 4, 4), "r": f(1, 4, 4), "b": f(1, 8)}, attrs={"hidden_size": 4},
         outputs=2),
    # quantization
    Case("QuantizeLinear", _x(2, 4), params={"s": np.array(0.05, np.float32), "z": np.array(3, np.uint8)}, since=10),
    Case("DequantizeLinear", {"x": _rng.integers(0, 255, (2, 4)).astype(np.uint8)},
         params={"s": np.array(0.05, np.float32), "z": np.array(3, np.uint8)}, since=10),
]


# What qc refuses today, naming the node: torch-mlir has no Softsign conversion, and lowers the others
# to TMTensor ops that one-shot bufferization does not take.
REFUSED = {"Softsign", "CumSum", "TopK", "ScatterElements", "ScatterND"}


@dataclass
class Result:
    case: str
    opset: int
    constant_nodes: bool
    status: str  # "ok", "refused", "mismatch", "failed" (an error that is not a clear refusal), "invalid case"
    detail: str = ""


def reference(model: onnx.ModelProto, inputs: dict) -> list[np.ndarray]:
    """ONNX Runtime's outputs, or the reference evaluator's where ORT cannot run the model.  ORT
    first: the evaluator's BatchNormalization before opset 14 and its LRN differ from ORT (and from
    PyTorch) by 0.14 and 3e-4 on these cases."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, inputs)
    except Exception:
        return ReferenceEvaluator(model).run(None, inputs)


def run_case(case: Case, opset: int, constant_nodes: bool, workdir) -> Result:
    """Compile one case with qc and compare with the reference evaluator."""
    import qc

    def result(status, detail=""):
        return Result(case.name, opset, constant_nodes, status, detail)

    try:
        model = case.model(opset, constant_nodes)
        onnx.checker.check_model(model, full_check=True)
        ref = reference(model, case.inputs)
    except Exception as err:  # the suite's own mistake, or an op form ONNX itself rejects at that opset
        return result("invalid case", f"{type(err).__name__}: {str(err).splitlines()[0][:120]}")
    tag = f"{case.name}_{opset}_{int(constant_nodes)}".replace(" ", "_").replace(",", "").replace("/", "_")
    try:
        qc.compile(model, workdir / f"{tag}.so")
        got = qc.runtime.load(workdir / f"{tag}.so").run(case.inputs)
    except qc.QCError as err:
        first = str(err).strip().splitlines()
        named = any(f"node_{case.op.lower()}" in line or "const_" in line for line in first)
        return result("refused" if named else "failed", " / ".join(first)[:200])
    worst = 0.0
    for r, g in zip(ref, got.values()):
        if r.shape != g.shape:
            return result("mismatch", f"shape {g.shape} vs {r.shape}")
        if r.dtype.kind in "fc":
            ok = np.allclose(g, r, rtol=RTOL, atol=ATOL, equal_nan=True)
            finite = np.isfinite(r)  # (infinities and NaNs must match, as allclose checks)
            worst = max(worst, float(np.max(np.abs(g.astype(np.float64) - r)[finite], initial=0)))
        else:
            ok = np.array_equal(g, r)
        if not ok:
            return result("mismatch", f"max abs error {np.max(np.abs(g.astype(np.float64) - r)):.3g}")
    return result("ok", f"max abs error {worst:.2g}")


def variants(case: Case) -> list[tuple[int, bool]]:
    """(opset, parameters as Constant nodes) to run: every valid opset, and Constant nodes once."""
    opsets = case.opsets()
    out = [(v, False) for v in opsets]
    if case.params:
        out.append((min(opsets, key=lambda v: abs(v - CONSTANT_NODES_OPSET)), True))
    return out


def table(results: list[Result]) -> str:
    by_case: dict[str, list[Result]] = {}
    for r in results:
        by_case.setdefault(r.case, []).append(r)
    lines = ["| op | opsets matched | refused (reason) | other |", "|---|---|---|---|"]
    for name, rs in by_case.items():
        ok = [f"{r.opset}{'c' if r.constant_nodes else ''}" for r in rs if r.status == "ok"]
        refused = sorted({r.detail for r in rs if r.status == "refused"})
        other = [f"{r.opset}{'c' if r.constant_nodes else ''}: {r.status} {r.detail}" for r in rs
                 if r.status not in ("ok", "refused", "invalid case")]
        lines.append(f"| {name} | {' '.join(ok) or '-'} | {'; '.join(refused)[:160] or '-'} | {'; '.join(other)[:160] or '-'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import tempfile
    from pathlib import Path

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(CASES):
            for opset, constant_nodes in variants(case):
                results.append(run_case(case, opset, constant_nodes, Path(tmp)))
            print(f"[{i + 1}/{len(CASES)}] {case.name}: {', '.join(r.status for r in results if r.case == case.name)}",
                  file=sys.stderr)
    counted = [r for r in results if r.status != "invalid case"]
    names = {r.case for r in counted}
    full = {n for n in names if all(r.status == "ok" for r in counted if r.case == n)}
    print(table(results))
    print(f"\n{len(counted)} (op form, opset) runs: {sum(r.status == 'ok' for r in counted)} match, "
          f"{sum(r.status == 'refused' for r in counted)} refused naming the node, "
          f"{sum(r.status not in ('ok', 'refused') for r in counted)} other; {len(full)} of {len(names)} op forms "
          f"match at every opset ({100 * len(full) / len(names):.0f} %)")
