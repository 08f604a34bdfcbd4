"""ONNX decoders exported with ``past_key_values``, as qc decoder steps.

A decoder exported the Hugging Face / optimum way takes ``input_ids [b, s]``, ``attention_mask
[b, past + s]`` (and often ``position_ids [b, s]``) and per layer ``past_key_values.{i}.key`` and
``.value`` ``[b, kv heads, past, head]``, and returns ``logits [b, s, vocab]`` and
``present.{i}.key`` / ``.value`` ``[b, kv heads, past + s, head]``: its cache grows by concatenation.
``step_graph`` wraps it into qc's step interface (``compiler/decoder.py``) for a static cache of
``context`` positions: the whole cache is passed as the past, the mask hides what is not written yet,
and the new entries are the last T of each present:

    tokens [1, T] -> input_ids                 pos + arange(T) -> position_ids
    arange(context) < pos ++ ones(T) -> attention_mask
    k_cache[i] [kv heads, head, context] -> transpose -> past_key_values.{i}.key [1, kv heads, context, head]
    v_cache[i] -> past_key_values.{i}.value
    present.{i}.key[:, :, context:] -> transpose -> k_new[i]     present.{i}.value[:, :, context:] -> v_new[i]

The ONNX graph is edited with onnx.helper before import (it is the model's own format); nothing of
it is changed but its inputs and outputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..core.errors import QCError

_PAST = re.compile(r"past_key_values\.(\d+)\.(key|value)")


@dataclass(frozen=True)
class OnnxDecoderShape:
    layers: int
    kv_heads: int
    head_size: int
    vocab: int


def decoder_shape(model: onnx.ModelProto) -> OnnxDecoderShape:
    """Layers, KV heads, head size and vocabulary of an ONNX decoder with past_key_values, or a
    QCError that says what it lacks."""
    inputs = {i.name: i for i in model.graph.input}
    outputs = {o.name: o for o in model.graph.output}
    past = sorted((int(m.group(1)), m.group(2)) for m in map(_PAST.fullmatch, inputs) if m)
    layers = len(past) // 2
    expected = ["input_ids"] + [f"past_key_values.{i}.{kv}" for i in range(max(layers, 1)) for kv in ("key", "value")]
    missing = [n for n in expected if n not in inputs] + [n for n in ["logits"] + [
        f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")] if n not in outputs]
    if not past or missing:
        raise QCError(f"not an ONNX decoder with past_key_values: it lacks {', '.join(missing)} (qc takes the "
                      "Hugging Face / optimum export: input_ids, attention_mask, position_ids, "
                      "past_key_values.N.key/value -> logits, present.N.key/value)")
    extra = set(inputs) - set(expected) - {"attention_mask", "position_ids"} - {t.name for t in model.graph.initializer}
    if extra:
        raise QCError(f"ONNX decoder input(s) {', '.join(sorted(extra))} are not ones qc can feed (input_ids, "
                      "attention_mask, position_ids, past_key_values.N.key/value)")

    def dims(value) -> list:
        return [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]

    key = inputs["past_key_values.0.key"]
    shape = dims(key)
    if len(shape) != 4 or shape[1] is None or shape[3] is None or key.type.tensor_type.elem_type != TensorProto.FLOAT:
        raise QCError(f"ONNX decoder input 'past_key_values.0.key' must be float32 [batch, kv heads, past, head] "
                      f"with static kv heads and head; it is {onnx.helper.printable_type(key.type)}")
    logits = dims(outputs["logits"])
    if len(logits) != 3 or logits[2] is None:
        raise QCError(f"ONNX decoder output 'logits' must be [batch, sequence, vocab] with a static vocab; it is "
                      f"{onnx.helper.printable_type(outputs['logits'].type)}")
    return OnnxDecoderShape(layers, shape[1], shape[3], logits[2])


def step_graph(model: onnx.ModelProto, tokens: int, context: int) -> onnx.ModelProto:
    """``model`` as a qc decoder step of ``tokens`` tokens over a ``context``-position cache."""
    shape = decoder_shape(model)
    L, H, D, T = shape.layers, shape.kv_heads, shape.head_size, tokens
    graph = model.graph
    inputs = {i.name: i for i in graph.input}
    nodes, consts = [], []

    def const(name: str, array: np.ndarray) -> str:
        consts.append(numpy_helper.from_array(array, "qc." + name))
        return "qc." + name

    def node(op: str, ins: list[str], out: str, **attrs) -> str:
        nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    def cast_to(value: str, name: str) -> str:
        """The model's input ``name`` = ``value`` (int64) in the type the model declares for it."""
        to = inputs[name].type.tensor_type.elem_type
        return node("Identity", [value], name) if to == TensorProto.INT64 else node("Cast", [value], name, to=to)

    axis0 = const("axis0", np.array([0], np.int64))
    node("Identity", ["tokens"], "input_ids")
    if "position_ids" in inputs:  # the chunk's padding past the last position is clamped to it (its output is dropped)
        at = node("Min", [node("Add", ["pos", const("arange_t", np.arange(T, dtype=np.int64))], "qc.positions"),
                          const("last", np.array([context - 1], np.int64))], "qc.positions_clamped")
        cast_to(node("Unsqueeze", [at, axis0], "qc.position_ids"), "position_ids")
    if "attention_mask" in inputs:
        cached = node("Cast", [node("Less", [const("arange_ctx", np.arange(context, dtype=np.int64)), "pos"],
                                    "qc.cached")], "qc.cached_i64", to=TensorProto.INT64)
        mask = node("Concat", [cached, const("ones_t", np.ones(T, np.int64))], "qc.mask", axis=0)
        cast_to(node("Unsqueeze", [mask, axis0], "qc.attention_mask"), "attention_mask")
    for i in range(L):
        layer = const(f"layer{i}", np.array(i, np.int64))
        keys = node("Gather", ["k_cache", layer], f"qc.k{i}", axis=0)  # [H, D, context]
        node("Unsqueeze", [node("Transpose", [keys], f"qc.k{i}.t", perm=[0, 2, 1]), axis0], f"past_key_values.{i}.key")
        node("Unsqueeze", [node("Gather", ["v_cache", layer], f"qc.v{i}", axis=0), axis0], f"past_key_values.{i}.value")
    feeding = len(nodes)  # the nodes so far compute the model's inputs; the ones after read its outputs
    start, end, axis2 = (const(n, np.array([v], np.int64)) for n, v in
                         (("start", context), ("end", context + T), ("axis2", 2)))
    k_new, v_new = [], []
    for i in range(L):
        k_tail = node("Slice", [f"present.{i}.key", start, end, axis2], f"qc.k_new{i}")  # [1, H, T, D]
        k_new.append(node("Transpose", [k_tail], f"qc.k_new{i}.t", perm=[0, 1, 3, 2]))
        v_new.append(node("Slice", [f"present.{i}.value", start, end, axis2], f"qc.v_new{i}"))
    node("Concat", k_new, "k_new", axis=0)
    node("Concat", v_new, "v_new", axis=0)

    f32, i64 = TensorProto.FLOAT, TensorProto.INT64
    new_inputs = [helper.make_tensor_value_info("tokens", i64, [1, T]), helper.make_tensor_value_info("pos", i64, [1]),
                  helper.make_tensor_value_info("k_cache", f32, [L, H, D, context]),
                  helper.make_tensor_value_info("v_cache", f32, [L, H, context, D])]
    new_outputs = [helper.make_tensor_value_info("logits", f32, [1, T, shape.vocab]),
                   helper.make_tensor_value_info("k_new", f32, [L, H, D, T]),
                   helper.make_tensor_value_info("v_new", f32, [L, H, T, D])]
    initializers = {t.name for t in graph.initializer}
    wrapped = helper.make_graph(nodes[:feeding] + list(graph.node) + nodes[feeding:], graph.name or "decoder",
                                new_inputs + [i for i in graph.input if i.name in initializers], new_outputs,
                                list(graph.initializer) + consts)
    step = helper.make_model(wrapped, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    step.functions.extend(model.functions)
    return step
