"""Decoder-only language models compiled for generation: two entry points over one weight file.

A ``Decoder`` is a step module, ``(tokens [1, T], pos [1], k_cache, v_cache) -> (logits [1, T, vocab],
k_new, v_new)`` with a key cache ``[layers, kv heads, head size, context]`` (keys transposed, as the
scores' product reads them) and a value cache ``[layers, kv heads, context, head size]``
(``llama2c.build_torch_llama_step`` is one; an int8 cache adds its scales, ``Decoder.inputs`` /
``outputs``; an ONNX decoder with past_key_values is wrapped into this interface, ``onnx_decoder``).
It is imported twice, with T = the prefill chunk and T = 1, and the second import's function joins
the first's module as ``@decode``:

    func.func @main(%tokens: tensor<1x16xi64>, %pos: tensor<1xi64>, %k_cache: ..., %v_cache: ...)
    func.func @decode(%tokens: tensor<1x1xi64>, %pos: tensor<1xi64>, %k_cache: ..., %v_cache: ...)

Both functions read the same parameters, which qc-outline-weights keeps as one store entry, and
the weight file holds each array once.  The runtime (``qc_decoder_*`` in qc/runtime.h) owns the
KV cache: it feeds a prompt through @main in chunks, each later token through @decode, and
writes each step's ``k_new`` / ``v_new`` into the cache at ``pos``.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from torch_mlir import ir

from ..core.errors import QCError
from ..core.quant.scheme import KV_CACHE_TYPES
from ..core.signature import Signature, TensorSpec

INPUTS = ("tokens", "pos", "k_cache", "v_cache")
OUTPUTS = ("logits", "k_new", "v_new")
SCALES = (("k_scale", "v_scale"), ("k_new_scale", "v_new_scale"))  # an int8 cache's: inputs, outputs
DECODE = "decode"


@dataclass(frozen=True)
class Decoder:
    """A decoder to compile (``qc.compile(Decoder(...), "model.so")``): its step module and shapes."""

    step: object  # torch.nn.Module, forward(tokens, pos, k_cache, v_cache) -> (logits, k_new, v_new); or an
    # onnx.ModelProto with past_key_values (from_onnx), wrapped into that interface by onnx_decoder.step_graph
    layers: int
    kv_heads: int
    head_size: int
    vocab: int
    context: int  # positions the KV cache holds (--max-context)
    prefill_chunk: int = 16  # tokens one prefill call takes (a prompt runs in chunks of it, the last padded)
    kv_cache: str = "float32"  # the cache's element type, KV_CACHE_TYPES (the step module's; see from_llama2c)
    # kv_cache type -> the step module with that cache over the same parameters (from_llama2c, from_hf): what
    # lets the precision selection choose the cache type (--kv-cache auto)
    rebuild: Callable[[str], object] | None = field(default=None, compare=False, repr=False)
    # tokens -> the step traced for them (frontend_torch.export_torch): a Decoder compiled again (other schemes,
    # a calibrated compile) is not traced again, which took 3-10 s a step
    exported: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self):
        if not 1 <= self.prefill_chunk <= self.context:
            raise QCError(f"the prefill chunk must be 1 ..= the context ({self.context}), got {self.prefill_chunk}")
        if self.kv_cache not in KV_CACHE_TYPES:
            raise QCError(f"the KV cache type must be one of {', '.join(KV_CACHE_TYPES)}, got '{self.kv_cache}'")

    @classmethod
    def from_llama2c(cls, path: str | Path, context: int | None = None, prefill_chunk: int = 16,
                     kv_cache: str = "float32") -> "Decoder":
        """A llama2.c checkpoint; ``context`` defaults to the length it was trained for."""
        from .models.llama2c import build_torch_llama_step, read_llama2c

        try:
            cfg, weights = read_llama2c(path)
        except (OSError, ValueError, struct.error) as err:
            raise QCError(f"cannot read llama2.c checkpoint '{path}': {err}") from None
        context = context or cfg.seq_len
        if context < 1:
            raise QCError(f"--max-context must be at least 1, got {context}")
        return cls._llama(cfg, weights, context, prefill_chunk, kv_cache)

    @classmethod
    def from_hf(cls, model, context: int, prefill_chunk: int = 16, kv_cache: str = "float32") -> "Decoder":
        """A Hugging Face LlamaForCausalLM, MistralForCausalLM or Qwen2ForCausalLM (weights as it holds them)."""
        from .models.llama2c import build_torch_llama_step, from_hf

        cfg, weights = from_hf(model)
        window = getattr(model.config, "sliding_window", None)
        if window is not None and getattr(model.config, "use_sliding_window", True) and window < context:
            raise QCError(f"{type(model).__name__} attends to a sliding window of {window} positions; qc's decoder "
                          f"attends to all {context} (give a context of at most {window})")
        return cls._llama(cfg, weights, context, prefill_chunk, kv_cache)

    @classmethod
    def _llama(cls, cfg, weights: dict, context: int, prefill_chunk: int, kv_cache: str) -> "Decoder":
        from .models.llama2c import build_torch_llama_step

        def rebuild(kind: str):
            return build_torch_llama_step(cfg, weights, context, kind)

        return cls(rebuild(kv_cache), cfg.n_layers, cfg.n_kv_heads, cfg.head_size, cfg.vocab_size, context,
                   min(prefill_chunk, context), kv_cache, rebuild)

    def with_kv_cache(self, kind: str) -> "Decoder":
        """This decoder with its KV cache in ``kind`` (the same parameters)."""
        if kind == self.kv_cache:
            return self
        if self.rebuild is None:
            raise QCError(f"this decoder's step keeps its KV cache in {self.kv_cache}; a {kind} cache needs a decoder "
                          "built by Decoder.from_llama2c or from_hf (or a step module made for it)")
        return replace(self, step=self.rebuild(kind), kv_cache=kind)

    @classmethod
    def from_onnx(cls, model, context: int, prefill_chunk: int = 16, kv_cache: str = "float32") -> "Decoder":
        """An ONNX decoder exported with past_key_values (``onnx_decoder``): a path or a ModelProto."""
        from .frontend_onnx import load_onnx
        from .onnx_decoder import decoder_shape

        if context is None or context < 1:
            raise QCError(f"an ONNX decoder needs --max-context (positions the KV cache holds), got {context}")
        if kv_cache != "float32":
            raise QCError(f"an ONNX decoder keeps its KV cache in the type it was exported with (float32), not "
                          f"{kv_cache}")
        proto = load_onnx(model)
        shape = decoder_shape(proto)
        return cls(proto, shape.layers, shape.kv_heads, shape.head_size, shape.vocab, context,
                   min(prefill_chunk, context))

    def cache_bytes(self, kind: str | None = None) -> int:
        """Bytes of the KV cache in ``kind`` (default: its own type): keys and values, and an int8 cache's
        scales (one f32 per layer, head and position for each)."""
        kind = kind or self.kv_cache
        vectors = 2 * self.layers * self.kv_heads * self.context
        return vectors * self.head_size * np.dtype(kind).itemsize + (vectors * 4 if kind == "int8" else 0)

    def step_outputs(self, prompts, limit: int | None = None) -> list[list[np.ndarray]]:
        """For the first ``limit`` (default: all) prefill chunks of ``prompts`` (as ``calibration_samples``),
        the step's logits and new keys and values as float32 (an int8 cache's codes times their scales)."""
        outputs = []
        for _, (logits, keys, values, *scales) in itertools.islice(self._chunks(prompts), limit):
            if scales:
                keys, values = keys * scales[0][:, :, None, :], values * scales[1][..., None]
            outputs.append([np.asarray(a, np.float32) for a in (logits, keys, values)])
        return outputs

    def calibration_samples(self, prompts) -> list[dict]:
        """Inputs of the prefill step for calibration: each prompt (token ids) in chunks, as the runtime
        feeds it, each chunk with the KV cache its earlier chunks left (from the PyTorch step, or an ONNX
        decoder's step graph run by ONNX Runtime).  The last chunk of a prompt is padded with token 0, as
        the runtime pads it."""
        return [sample for sample, _ in self._chunks(prompts)]

    def prompt_ids(self, prompts) -> list[np.ndarray]:
        """Calibration prompts (token id sequences, or dicts with ``tokens``) as flat id arrays; a QCError
        naming the first that is not token ids of this vocabulary or does not fit the context."""
        out = []
        for i, prompt in enumerate(prompts):
            ids = np.asarray(prompt["tokens"] if isinstance(prompt, dict) else prompt).reshape(-1)
            if ids.size == 0 or not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0 or ids.max() >= self.vocab:
                raise QCError(f"calibration prompt {i} must be token ids in [0, {self.vocab}), got {ids.dtype} "
                              f"{ids[:8].tolist()}{'...' if ids.size > 8 else ''}")
            if ids.size > self.context:
                raise QCError(f"calibration prompt {i} has {ids.size} tokens; the context holds {self.context}")
            out.append(ids)
        return out

    def _chunks(self, prompts):
        """(the step's inputs, its outputs) for each prefill chunk of ``prompts``, in order; the step is
        run on a chunk only when the next is asked for."""
        run = self._reference_step()
        for ids in self.prompt_ids(prompts):
            caches = [c.numpy() for c in self.example(self.prefill_chunk)[2:]]  # k, v (and an int8 cache's scales)
            for pos in range(0, ids.size, self.prefill_chunk):
                chunk = np.zeros((1, self.prefill_chunk), np.int64)
                n = min(self.prefill_chunk, ids.size - pos)
                chunk[0, :n] = ids[pos:pos + n]
                sample = {"tokens": chunk, "pos": np.array([pos], np.int64),
                          **{name: c.copy() for name, c in zip(self.inputs[2:], caches)}}
                outputs = run(sample)
                for j, (cache, entries) in enumerate(zip(caches, outputs[1:])):
                    if j == 1:  # values [.., context, head]
                        cache[:, :, pos:pos + n] = entries[:, :, :n]
                    else:  # keys [.., head, context] and the scales [.., context]: positions last
                        cache[..., pos:pos + n] = entries[..., :n]
                yield sample, outputs

    def _reference_step(self):
        """The prefill step outside qc: {input name: array} -> its outputs (logits, k_new, v_new, ...)."""
        import torch

        if isinstance(self.step, torch.nn.Module):
            def run(feeds: dict) -> list[np.ndarray]:
                with torch.no_grad():
                    return [t.numpy() for t in self.step(*(torch.from_numpy(feeds[n]) for n in self.inputs))]
            return run
        import onnxruntime as ort

        from .onnx_decoder import step_graph

        session = ort.InferenceSession(step_graph(self.step, self.prefill_chunk, self.context).SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        return lambda feeds: session.run(list(self.outputs), feeds)

    @property
    def inputs(self) -> tuple[str, ...]:
        return INPUTS + (SCALES[0] if self.kv_cache == "int8" else ())

    @property
    def outputs(self) -> tuple[str, ...]:
        return OUTPUTS + (SCALES[1] if self.kv_cache == "int8" else ())

    def example(self, tokens: int) -> tuple:
        """Example inputs of a step of ``tokens`` tokens (``inputs``)."""
        import torch

        dtype = getattr(torch, self.kv_cache)
        keys = torch.zeros(self.layers, self.kv_heads, self.head_size, self.context, dtype=dtype)
        values = torch.zeros(self.layers, self.kv_heads, self.context, self.head_size, dtype=dtype)
        step = (torch.zeros(1, tokens, dtype=torch.int64), torch.zeros(1, dtype=torch.int64), keys, values)
        if self.kv_cache == "int8":  # the k and v scales, one per layer, head and position
            step += tuple(torch.ones(self.layers, self.kv_heads, self.context) for _ in SCALES[0])
        return step


def import_decoder(decoder: Decoder, ctx: ir.Context) -> tuple[ir.Module, Signature, dict[str, Signature], dict]:
    """(a module with @main = the prefill step and @decode = the one-token step, @main's signature,
    {"decode": @decode's signature}, {weight store entry: array}).

    The step is exported with its parameters as arguments (``torch.func.functional_call``), which
    become ``qc.weight`` ops of the parameters' names: no parameter is copied into the IR, both
    functions read the same entries, and the arrays are the module's own (no copy either)."""
    import onnx

    if isinstance(decoder.step, onnx.ModelProto):  # its initializers become constants, shared by qc-outline-weights
        from .frontend_onnx import import_onnx
        from .onnx_decoder import step_graph

        params = {}
        module, prefill = import_onnx(step_graph(decoder.step, decoder.prefill_chunk, decoder.context), ctx)
        second, decode = import_onnx(step_graph(decoder.step, 1, decoder.context), ctx)
    else:
        params = {name: p.detach() for name, p in decoder.step.named_parameters() if p.numel() > 1}
        module, prefill = _import_step(decoder, decoder.prefill_chunk, params, ctx)
        second, decode = _import_step(decoder, 1, params, ctx)
    with ctx:
        for op in second.body.operations:
            op = op.operation
            if op.name != "func.func" or ir.StringAttr(op.attributes["sym_name"]).value != "main":
                raise QCError(f"the decode step imported with a top-level {op.name} besides @main; "
                              "qc can merge only single-function steps")
            clone = op.clone(ir.InsertionPoint(module.body))
            clone.attributes["sym_name"] = ir.StringAttr.get(DECODE)
    named = [_named(sig, decoder) for sig in (prefill, decode)]
    return module, named[0], {DECODE: named[1]}, {n: p.numpy() for n, p in params.items()}


def _import_step(decoder: Decoder, tokens: int, params: dict, ctx: ir.Context) -> tuple[ir.Module, Signature]:
    """The step for ``tokens`` tokens with ``params`` read through ``qc.weight`` ops."""
    import torch

    from ..dialects.qc import WeightOp
    from ..passes.base import set_function_type
    from .frontend_torch import export_torch, import_torch

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.__dict__["step"] = decoder.step  # not a submodule: its parameters are arguments

        def forward(self, *args):
            inputs, weights = args[:len(names)], args[len(names):]
            return torch.func.functional_call(self.step, dict(zip(params, weights)), inputs, strict=False)

    names, step = decoder.inputs, Step()
    example = decoder.example(tokens) + tuple(params.values())
    if tokens not in decoder.exported:
        decoder.exported[tokens] = export_torch(step, example)
    module, sig = import_torch(step, example, ctx, list(names) + list(params), decoder.exported[tokens])
    with ctx:
        main = next(op.operation for op in module.body.operations if op.operation.name == "func.func")
        entry = main.regions[0].blocks[0]
        with ir.InsertionPoint.at_block_begin(entry):
            for name, arg in zip(params, list(entry.arguments)[len(names):]):
                with arg.location:
                    arg.replace_all_uses_with(WeightOp(arg.type, ir.FlatSymbolRefAttr.get(name)).result)
        for _ in params:
            entry.erase_argument(len(names))
        ftype = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)
        set_function_type(main, list(ftype.inputs)[:len(names)], list(ftype.results))
    return module, Signature(sig.inputs[:len(names)], sig.outputs)


def _named(sig: Signature, decoder: Decoder) -> Signature:
    """The step's outputs named, and checked against the shapes the runtime will assume."""
    names = decoder.outputs
    if len(sig.outputs) != len(names):
        raise QCError(f"a decoder step returns {len(names)} tensors ({', '.join(names)}), this one "
                      f"{len(sig.outputs)}")
    outputs = tuple(TensorSpec(n, t.shape, t.dtype) for n, t in zip(names, sig.outputs))
    tokens = sig.inputs[0].shape[1]
    scales = (decoder.layers, decoder.kv_heads, tokens)
    want = {"logits": (1, tokens, decoder.vocab),
            "k_new": (decoder.layers, decoder.kv_heads, decoder.head_size, tokens),
            "v_new": (decoder.layers, decoder.kv_heads, tokens, decoder.head_size),
            "k_new_scale": scales, "v_new_scale": scales}
    for t in outputs:
        dtype = decoder.kv_cache if t.name in ("k_new", "v_new") else "float32"
        if t.shape != want[t.name] or t.dtype != dtype:
            raise QCError(f"decoder step output '{t.name}' is {t.describe()}, expected "
                          f"{dtype}[{'x'.join(map(str, want[t.name]))}]")
    return Signature(sig.inputs, outputs)
