"""ONNX -> linalg-on-tensors through torch-mlir's ONNX importer.

Shapes are made static first (``--shape`` overrides, then ONNX shape
inference), ONNX ops are converted to torch ops, ops nothing can convert are
reported by node name and op type, and the torch backend lowers to linalg.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
from torch_mlir import ir
from torch_mlir.extras import onnx_importer

from ..core.errors import QCError
from ..core.signature import Signature, TensorSpec
from .signatures import spec_of

TORCH_TO_LINALG = "builtin.module(torch-backend-to-linalg-on-tensors-backend-pipeline)"
ONNX_TO_TORCH = "builtin.module(torch-onnx-to-torch-backend-pipeline)"


def load_onnx(model: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    try:
        proto = onnx.load(str(model))
    except FileNotFoundError:
        raise QCError(f"{model}: no such file") from None
    except Exception as err:  # onnx raises DecodeError and friends
        raise QCError(f"{model}: not a readable ONNX model ({err.__class__.__name__}: {err})") from None
    if not proto.graph.node and not proto.opset_import:  # what an empty file (or any non-protobuf zeros) decodes to
        raise QCError(f"{model}: not an ONNX model: it holds no graph and no opset (an empty file?)")
    return proto


# torch-mlir converts each ONNX op from some opset on (MaxPool from 12): older models are upgraded first.
_OPSET = 17


def _upgrade_opset(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model at opset 17 if it is older (ONNX's version converter; the model as it is if the
    converter cannot take it, and the importer then names what it cannot convert)."""
    version = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), _OPSET)
    if version >= _OPSET:
        return model
    from onnx import version_converter

    try:
        return version_converter.convert_version(model, _OPSET)
    except Exception:  # noqa: BLE001 - converter errors are of many kinds; the unconverted model stays
        return model


def _fix_input_shapes(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]]) -> bool:
    """Sets the ``--shape`` dims; True when one replaced a static dim (the shapes the export derived
    from it are then cleared, to be inferred again)."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    unknown = set(shapes) - {i.name for i in inputs}
    if unknown:
        raise QCError(f"--shape names unknown input(s) {sorted(unknown)}; the model's inputs are {[i.name for i in inputs]}")
    changed = False
    for inp in inputs:
        dims = inp.type.tensor_type.shape.dim
        if inp.name in shapes:
            new = shapes[inp.name]
            if len(new) != len(dims):
                raise QCError(f"--shape {inp.name}={'x'.join(map(str, new))} has rank {len(new)}, but input '{inp.name}' has rank {len(dims)}")
            for d, v in zip(dims, new):
                changed |= d.HasField("dim_value") and d.dim_value > 0 and d.dim_value != v
                d.Clear()
                d.dim_value = v
        for axis, d in enumerate(dims):
            if not d.HasField("dim_value") or d.dim_value <= 0:
                label = f" ('{d.dim_param}')" if d.dim_param else ""
                raise QCError(
                    f"input '{inp.name}' has a dynamic dimension {axis}{label}; "
                    f"fix it at compile time with --shape {inp.name}=" + "x".join(
                        str(x.dim_value) if x.HasField("dim_value") and x.dim_value > 0 else "N" for x in dims))
    if changed:
        for out in model.graph.output:
            for d in out.type.tensor_type.shape.dim:
                d.Clear()
        del model.graph.value_info[:]
    return changed


def _infer_strictly(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]]) -> onnx.ModelProto:
    """``model`` with its shapes inferred; inference that fails, naming the first node, when the model's nodes do not fit together
    or the ``--shape`` dims do not fit the model.  Before torch-mlir sees the model: it loops forever
    on some inconsistencies (a Softmax axis out of range)."""
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as err:
        found = re.search(r"\(op_type:(\w+), node name: ([^)]*)\): (?:\[\w+\] )?([^\n]*)", str(err))
        where = f"{_node(found.group(2), found.group(1))}: {found.group(3)}" if found else str(err)
        if not shapes:
            raise QCError(f"the model is inconsistent: {where}") from None
        given = " ".join(f"--shape {n}={'x'.join(map(str, s))}" for n, s in shapes.items())
        raise QCError(f"the input shapes ({given}) do not fit the model: {where}") from None
    except Exception as err:  # onnx's C++ raises others too
        raise QCError(f"ONNX shape inference failed: {err}") from None


# Ops whose outputs, on constant inputs, are folded before import (shape arithmetic: what torch.onnx
# emits around Expand / Reshape / ConstantOfShape for dynamic axes).
_FOLDABLE = {"Shape", "Size", "Gather", "Concat", "Unsqueeze", "Squeeze", "Slice", "Cast", "Where", "Equal",
             "Less", "Greater", "Not", "And", "Or", "Add", "Sub", "Mul", "Div", "Mod", "Neg", "Abs", "Min", "Max",
             "ConstantOfShape", "Range", "Reshape", "Identity", "Expand", "ReduceProd", "Constant"}
_FOLD_LIMIT = 1 << 16  # elements: shape tensors and small masks, never weights


def _fold_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Evaluate the shape computations that the fixed input shapes make constant, so the importer sees
    constants where torch.onnx left ``Shape -> Gather -> Concat -> Where -> Expand`` chains (which
    torch-mlir lowers to run-time checks that abort at other batch sizes than the traced one)."""
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    shapes = {v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
              for v in (*model.graph.input, *model.graph.value_info, *model.graph.output)
              if v.type.tensor_type.HasField("shape")}
    known = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    kept, folded = [], []
    for node in model.graph.node:
        value = None
        if node.op_type == "Shape" and node.input[0] in shapes and None not in shapes[node.input[0]]:
            attrs = {a.name: a.i for a in node.attribute}
            dims = shapes[node.input[0]]
            value = [np.array(dims[attrs.get("start", 0):attrs.get("end", len(dims))], np.int64)]
        elif node.op_type in _FOLDABLE and all(not i or i in known for i in node.input):
            sub = onnx.helper.make_graph([node], "fold", [], [onnx.helper.make_tensor_value_info(o, 0, None)
                                                              for o in node.output],
                                         [numpy_helper.from_array(known[i], i) for i in node.input if i])
            try:
                value = ReferenceEvaluator(onnx.helper.make_model(sub, opset_imports=model.opset_import)).run(None, {})
            except Exception:  # noqa: BLE001 - an op the evaluator cannot run stays in the graph
                value = None
        if value is not None and all(v.size <= _FOLD_LIMIT for v in value):
            for name, v in zip(node.output, value):
                known[name] = v
                folded.append(numpy_helper.from_array(v, name))
        else:
            kept.append(node)
    if not folded:
        return model
    used = {i for n in kept for i in n.input} | {o.name for o in model.graph.output}
    del model.graph.node[:]
    model.graph.node.extend(kept)
    model.graph.initializer.extend(t for t in folded if t.name in used)
    del model.graph.value_info[:]  # inferred before folding, with unknown dims: infer again from the constants
    return model


def _node(name: str, op_type: str | None) -> str:
    """How errors name an ONNX node: ``node 'fc1' (ONNX op 'MatMul')``."""
    return f"node '{name}'" + (f" (ONNX op '{op_type}')" if op_type else "")


def _node_at(location: ir.Location, op_types: dict[str, str]) -> str:
    """The node an MLIR location from the importer names (its location is the node's name)."""
    name = str(location).removeprefix("loc(").removesuffix(")").strip('"')
    return _node(name, op_types.get(name))


# Ops whose output size depends on their input's values (torch-mlir crashes on Unique's conversion).
_VALUE_DEPENDENT = {"Unique", "NonZero", "NonMaxSuppression", "Compress", "StringNormalizer"}
# Attributes ONNX's checker and shape inference let through that torch-mlir divides by or loops on
# (Conv group 0 killed the process with SIGFPE): each must be positive.
_POSITIVE = {"Conv": ("group", "strides", "dilations", "kernel_shape"),
             "ConvTranspose": ("group", "strides", "dilations", "kernel_shape"),
             "MaxPool": ("strides", "dilations", "kernel_shape"), "AveragePool": ("strides", "kernel_shape"),
             "DepthToSpace": ("blocksize",), "SpaceToDepth": ("blocksize",), "LRN": ("size",)}


def _check_nodes(model: onnx.ModelProto) -> None:
    """Nodes qc refuses before torch-mlir is given them: an op whose output size is only known from
    the data (qc compiles static shapes), an attribute that must be positive and is not."""
    for i, node in enumerate(model.graph.node):
        label = _node(node.name or f"#{i}", node.op_type)
        if node.op_type in _VALUE_DEPENDENT and node.domain in ("", "ai.onnx"):
            raise QCError(f"{label}: its output size depends on its input's values; qc compiles models whose "
                          "shapes are fixed at compile time")
        for attr in node.attribute:
            if attr.name in _POSITIVE.get(node.op_type, ()):
                values = list(attr.ints) if attr.type == onnx.AttributeProto.INTS else [attr.i]
                if any(v < 1 for v in values):
                    raise QCError(f"{label}: attribute '{attr.name}' must be positive, "
                                  f"got {values if len(values) > 1 else values[0]}")


def _op_types(model: onnx.ModelProto) -> dict[str, str]:
    return {n.name: n.op_type for n in model.graph.node if n.name}


def import_onnx(model: str | Path | onnx.ModelProto, ctx: ir.Context,
                shapes: dict[str, tuple[int, ...]] | None = None) -> tuple[ir.Module, Signature]:
    """Import an ONNX model as a linalg-on-tensors module with entry ``@main``."""
    proto = load_onnx(model)
    proto_copy = onnx.ModelProto()
    proto_copy.CopyFrom(_upgrade_opset(proto))  # never modify the caller's model
    _check_nodes(proto_copy)
    proto_copy = _infer_strictly(proto_copy, shapes if _fix_input_shapes(proto_copy, shapes or {}) else {})
    try:
        for _ in range(4):  # folding constants can make more shapes static, and those more constants
            count = len(proto_copy.graph.node)
            proto_copy = _fold_shapes(proto_copy)
            if len(proto_copy.graph.node) == count:  # nothing folded: the shapes last inferred stand
                break
            proto_copy = onnx.shape_inference.infer_shapes(proto_copy, data_prop=True)
    except Exception as err:
        raise QCError(f"ONNX shape inference failed: {err}") from None
    op_types = _op_types(proto_copy)

    info = onnx_importer.ModelInfo(proto_copy)
    module = info.create_module(context=ctx)
    try:
        onnx_importer.NodeImporter.define_function(info.main_graph, module.operation).import_all()
    except onnx_importer.OnnxImportError as err:
        raise QCError(f"cannot import ONNX model: {err}") from None

    with ctx:
        _lower_torch(module, op_types, ONNX_TO_TORCH, "ONNX -> torch conversion")
        _lower_torch(module, op_types, TORCH_TO_LINALG, "torch -> linalg lowering")
        _reject_tm_tensor(module, op_types)
        func = _entry(module)
        func.attributes["sym_name"] = ir.StringAttr.get("main")

    ftype = ir.FunctionType(ir.TypeAttr(func.attributes["function_type"]).value)
    initializers = {t.name for t in proto_copy.graph.initializer}
    in_names = [i.name for i in proto_copy.graph.input if i.name not in initializers]
    out_names = [o.name for o in proto_copy.graph.output]
    onnx_types = {v.name: v.type.tensor_type.elem_type for v in (*proto_copy.graph.input, *proto_copy.graph.output)}
    sig = Signature(
        tuple(_unsigned(spec_of(n, t), onnx_types.get(n)) for n, t in zip(in_names, ftype.inputs)),
        tuple(_unsigned(spec_of(n, t), onnx_types.get(n)) for n, t in zip(out_names, ftype.results)),
    )
    return module, sig


def _lower_torch(module: ir.Module, op_types: dict[str, str], pipeline: str, what: str) -> None:
    from torch_mlir import passmanager

    pm = passmanager.PassManager.parse(pipeline)
    try:
        pm.run(module.operation)
    except ir.MLIRError as err:
        lines = [f"{_node_at(d.location, op_types)}: {_explain(d.message)}" for d in err.error_diagnostics]
        raise QCError(f"{what} failed:\n" + "\n".join(lines)) from None


def _reject_tm_tensor(module: ir.Module, op_types: dict[str, str]) -> None:
    """torch-mlir lowers scatter, sort, top-k and cumsum to its TMTensor dialect, which qc's
    bufferization does not take: refuse the node by name and op here, not as "op was not bufferized"."""
    found = []

    def visit(op):
        if op.name.startswith("tm_tensor.") and op.name != "tm_tensor.yield":
            found.append(op)
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    if found:
        lines = [f"{_node_at(op.location, op_types)}: torch-mlir lowers it to '{op.name}', which qc cannot compile "
                 "yet (qc's bufferization does not take TMTensor ops)" for op in found]
        raise QCError("\n".join(dict.fromkeys(lines)))


def _explain(message: str) -> str:
    """torch-mlir's "failed to legalize operation 'torch.operator'" dump -> what the user can act on."""
    m = re.match(r"failed to legalize operation 'torch\.operator'.*<\{name = \"onnx\.(\w+)\"\}>.*: \((.*)\) -> (.*)$",
                 message, re.S)
    if not m:
        return message
    op, args, results = m.groups()
    return (f"'{op}' is not supported with these operands and attributes ({args} -> {results}); "
            "an op qc lacks, an attribute value it does not handle, or a shape ONNX shape inference left unknown")


def _entry(module: ir.Module):
    funcs = [op.operation for op in module.body.operations if op.operation.name == "func.func"]
    if len(funcs) != 1:
        raise QCError(f"expected one entry function, found {len(funcs)}")
    return funcs[0]


def _unsigned(spec: TensorSpec, onnx_type: int | None) -> TensorSpec:
    """The lowered code's i8 is signless: an ONNX uint8 tensor keeps its dtype in the signature."""
    if onnx_type == onnx.TensorProto.UINT8 and spec.dtype == "int8":
        return TensorSpec(spec.name, spec.shape, "uint8")
    return spec


