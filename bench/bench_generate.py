"""Token generation: qc's compiled decoder against llama.cpp on the same random LLaMA weights.

    pip install -e .[bench]        # gguf, and llama-cpp-python built from its source distribution
    python bench/bench_generate.py [--layers 22] [--schemes w4a8-g64,w8a8] [--context 1024] [--prompt 128]
                                   [--new 32] [--threads 2] [--results docs/results.md]

The model has TinyLlama-1.1B's shape (dim 2048, 32 heads, 4 KV heads, FFN 5632, vocab 32000; ``--layers``
of them, 22 by default) with random weights (normal, std 0.02, seeded).  qc compiles it from the PyTorch
step module (``qc.Decoder``) with each scheme; llama.cpp reads it from a GGUF written with the ``gguf``
package and quantized by llama.cpp's own quantizer to Q4_0 and Q8_0; ONNX Runtime GenAI (``--ort-genai BLOCK``) from
a Hugging Face checkpoint of the same weights, built offline by its own model builder (int4 MatMulNBits with int8
activations; its embedding table stays f32).  Each engine, the same threads, all
loaded at once and measured in ``--rounds`` interleaved rounds (each figure its best round):
prefill of a ``--prompt``-token prompt (tokens/s), then ``--new`` decode steps at context about
``--prompt`` and about ``--context`` (tokens/s, the cache filled by a long prompt first).  Every engine's
logits of the prompt's last token are compared with the PyTorch FP32 model (max |diff| / max |ref| and
cosine) and printed beside its speed; nothing aborts on a peer's error.  Also printed: each engine's
weight bytes, qc's compile time and peak memory (a child process), the peak RSS that loading qc's
decoder and generating add to a fresh process against its weight file + KV cache, the host.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import host, publish, table  # noqa: E402
from qc.compiler.decoder import KV_CACHE_TYPES  # noqa: E402

DIM, HIDDEN, HEADS, KV_HEADS, VOCAB = 2048, 5632, 32, 4, 32000


def weights(layers: int, seed: int = 0) -> dict[str, np.ndarray]:
    """llama2c-named random weights of the TinyLlama shape (``read_llama2c``'s dict)."""
    rng = np.random.default_rng(seed)
    kv = DIM * KV_HEADS // HEADS

    def normal(*shape, std=0.02):
        return (rng.standard_normal(shape, dtype=np.float32) * std).astype(np.float32)

    return {"tok": normal(VOCAB, DIM), "rms_att": 1 + normal(layers, DIM, std=0.1), "wq": normal(layers, DIM, DIM),
            "wk": normal(layers, kv, DIM), "wv": normal(layers, kv, DIM), "wo": normal(layers, DIM, DIM),
            "rms_ffn": 1 + normal(layers, DIM, std=0.1), "w1": normal(layers, HIDDEN, DIM),
            "w2": normal(layers, DIM, HIDDEN), "w3": normal(layers, HIDDEN, DIM),
            "rms_final": 1 + normal(DIM, std=0.1), "classifier": normal(VOCAB, DIM)}


def config(layers: int, context: int):
    from qc.compiler.models.llama2c import LlamaConfig

    return LlamaConfig(DIM, HIDDEN, layers, HEADS, KV_HEADS, VOCAB, context)


def write_gguf(path: Path, cfg, w: dict[str, np.ndarray]) -> None:
    """The model as an F32 GGUF of architecture llama (rope as llama2.c: adjacent pairs, theta 10000)."""
    import gguf

    g = gguf.GGUFWriter(str(path), "llama")
    g.add_context_length(cfg.seq_len)
    g.add_embedding_length(cfg.dim)
    g.add_block_count(cfg.n_layers)
    g.add_feed_forward_length(cfg.hidden_dim)
    g.add_head_count(cfg.n_heads)
    g.add_head_count_kv(cfg.n_kv_heads)
    g.add_rope_dimension_count(cfg.head_size)
    g.add_rope_freq_base(10000.0)
    g.add_layer_norm_rms_eps(1e-5)
    g.add_file_type(gguf.LlamaFileType.ALL_F32)
    # A vocabulary only so that llama.cpp loads: the benchmark feeds token ids.
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"t{i}" for i in range(cfg.vocab_size - len(tokens))]
    types = [2, 3, 3] + [6] * 256 + [1] * (cfg.vocab_size - 259)
    g.add_tokenizer_model("llama")
    g.add_token_list(tokens)
    g.add_token_scores([0.0] * cfg.vocab_size)
    g.add_token_types(types)
    g.add_bos_token_id(1)
    g.add_eos_token_id(2)
    g.add_unk_token_id(0)
    g.add_tensor("token_embd.weight", w["tok"])
    names = {"rms_att": "attn_norm", "wq": "attn_q", "wk": "attn_k", "wv": "attn_v", "wo": "attn_output",
             "rms_ffn": "ffn_norm", "w1": "ffn_gate", "w2": "ffn_down", "w3": "ffn_up"}
    for i in range(cfg.n_layers):
        for ours, theirs in names.items():
            g.add_tensor(f"blk.{i}.{theirs}.weight", np.ascontiguousarray(w[ours][i]))
    g.add_tensor("output_norm.weight", w["rms_final"])
    g.add_tensor("output.weight", w["classifier"])
    g.write_header_to_file()
    g.write_kv_data_to_file()
    g.write_tensors_to_file()
    g.close()


def quantize_gguf(src: Path, dst: Path, kind: str) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = {"Q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0, "Q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0}[kind]
    params.nthread = 2
    if llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params)) != 0:
        raise RuntimeError(f"llama.cpp could not quantize {src} to {kind}")


def write_hf(path: Path, cfg, w: dict[str, np.ndarray]) -> None:
    """The model as a Hugging Face LlamaForCausalLM checkpoint (+ a word-level tokenizer, which ORT GenAI's
    builder insists on).  HF rotates the two halves of each head, these weights adjacent pairs: the rows of wq
    and wk are reordered per head (``llama2c.from_hf`` undoes it), which leaves every attention score as it was."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from qc.compiler.models.llama2c import HF_LAYER_NAMES, rotary_rows

    heads = {"wq": cfg.n_heads, "wk": cfg.n_kv_heads}
    hf = LlamaForCausalLM(LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.dim, intermediate_size=cfg.hidden_dim,
        num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_kv_heads,
        max_position_embeddings=cfg.seq_len, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
        bos_token_id=1, eos_token_id=2))
    state = {"model.embed_tokens.weight": w["tok"], "model.norm.weight": w["rms_final"], "lm_head.weight": w["classifier"]}
    for i in range(cfg.n_layers):
        state |= {f"model.layers.{i}.{theirs}": rotary_rows(w[ours][i], heads[ours], False) if ours in heads
                  else w[ours][i] for ours, theirs in HF_LAYER_NAMES.items()}
    hf.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=True)
    hf.save_pretrained(path)
    del hf, state
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2} | {f"t{i}": i for i in range(3, cfg.vocab_size)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>",
                            eos_token="</s>").save_pretrained(path)


def build_ort_genai(hf: Path, out: Path, block: int, threads: int) -> None:
    """ORT GenAI's model builder, offline: int4 MatMulNBits of ``block``-wide blocks with int8 activations
    (accuracy level 4), for its CPU provider, ``threads`` intra-op threads."""
    import json

    proc = subprocess.run([sys.executable, "-m", "onnxruntime_genai.models.builder", "-m", str(hf), "-i", str(hf),
                           "-o", str(out), "-p", "int4", "-e", "cpu", "-c", str(out.parent / "ort-genai-cache"),
                           "--extra_options", "int4_accuracy_level=4", f"int4_block_size={block}"],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode:
        raise RuntimeError(f"ORT GenAI's builder failed:\n{proc.stderr[-3000:]}")
    config_path = out / "genai_config.json"
    config = json.loads(config_path.read_text())
    config["model"]["decoder"]["session_options"]["intra_op_num_threads"] = threads
    config_path.write_text(json.dumps(config, indent=1))


def compile_in_child(layers: int, context: int, chunk: int, scheme: str, out: Path,
                     kv_cache: str = "float32") -> tuple[float, float]:
    """Compiles in a fresh process: (seconds, peak RSS in GB of that process)."""
    code = (f"import sys, time; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
            "import bench_generate as b, qc; from qc.compiler.models.llama2c import build_torch_llama_step; "
            f"cfg = b.config({layers}, {context}); w = b.weights({layers}); t = time.perf_counter(); "
            f"d = qc.Decoder(build_torch_llama_step(cfg, w, {context}, {kv_cache!r}), cfg.n_layers, cfg.n_kv_heads, "
            f"cfg.head_size, cfg.vocab_size, {context}, {chunk}, {kv_cache!r}); del w; "
            f"qc.compile(d, {str(out)!r}, scheme={None if scheme == 'f32' else scheme!r}); "
            "print(time.perf_counter() - t, next(int(l.split()[1]) for l in open('/proc/self/status') "
            "if l.startswith('VmHWM')))")  # VmHWM, not ru_maxrss: that one keeps the forking parent's peak
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"qc could not compile the model ({scheme}):\n{proc.stderr[-3000:]}")
    seconds, peak_kib = proc.stdout.split()[-2:]
    return float(seconds), int(peak_kib) * 1024 / 1e9


def generate_rss_in_child(lib: Path, prompt: list[int], new: int, threads: int) -> float:
    """Peak RSS (MiB) that loading ``lib`` and generating adds to a fresh process (its RSS before the
    load, the interpreter and qc.runtime, is subtracted)."""
    code = ("import resource; from qc.runtime import load_decoder; "
            "base = int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize(); "
            f"d = load_decoder({str(lib)!r}, threads={threads}); "
            f"list(d.generate({prompt!r}, {new})); "
            # VmHWM, not ru_maxrss: that one keeps the forking parent's peak across exec
            "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) * 1024 - base)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"qc could not generate with {lib}:\n{proc.stderr[-3000:]}")
    return int(proc.stdout.split()[-1]) / 2**20


def errors(logits: np.ndarray, ref: np.ndarray) -> str:
    rel = float(np.abs(logits - ref).max() / np.abs(ref).max())
    cos = float(logits @ ref / (np.linalg.norm(logits) * np.linalg.norm(ref)))
    return f"{rel:.1e} / {cos:.5f}"


class QcEngine:
    def __init__(self, path: Path, threads: int):
        from qc.runtime import load_decoder

        self.decoder = load_decoder(path, threads=threads)

    def prefill(self, tokens) -> np.ndarray:
        self.decoder.reset()
        return self.decoder.feed(tokens)

    def step(self, token) -> np.ndarray:
        return self.decoder.feed([token])


class LlamaCppEngine:
    def __init__(self, path: Path, threads: int, context: int, batch: int):
        import llama_cpp

        self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=context + 64, n_threads=threads,
                                   n_threads_batch=threads, n_batch=batch, verbose=False)

    def logits(self) -> np.ndarray:
        """The last token's logits (llama-cpp-python keeps none itself unless every token's are asked for)."""
        import llama_cpp

        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.llm._ctx.ctx, -1), shape=(VOCAB,)).copy()

    def prefill(self, tokens) -> np.ndarray:
        self.llm.reset()
        self.llm.eval(list(tokens))
        return self.logits()

    def step(self, token) -> np.ndarray:
        self.llm.eval([int(token)])
        return self.logits()


class OrtGenAIEngine:
    def __init__(self, path: Path, context: int):
        import onnxruntime_genai as og

        self.og, self.model, self.context = og, og.Model(str(path)), context + 64

    def prefill(self, tokens) -> np.ndarray:
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(max_length=self.context, do_sample=False)
        self.generator = self.og.Generator(self.model, params)
        return self.step_many(tokens)

    def step_many(self, tokens) -> np.ndarray:
        self.generator.append_tokens(list(map(int, tokens)))
        return np.asarray(self.generator.get_output("logits"))[0, -1].copy()

    def step(self, token) -> np.ndarray:
        return self.step_many([token])


def measure(engine, prompt: list[int], long_prompt: list[int], new: int, out: dict) -> None:
    """One round: prefill tokens/s of ``prompt``, decode tokens/s after it and after ``long_prompt``;
    each kept in ``out`` if it is the best of the rounds so far (the least disturbed)."""
    t0 = time.perf_counter()
    out["logits"] = engine.prefill(prompt)
    out["prefill"] = max(out.get("prefill", 0.0), len(prompt) / (time.perf_counter() - t0))
    for key, start in (("decode_short", prompt), ("decode_long", long_prompt)):
        token = int(engine.prefill(start).argmax())
        t0 = time.perf_counter()
        for _ in range(new):
            token = int(engine.step(token).argmax())
        out[key] = max(out.get(key, 0.0), new / (time.perf_counter() - t0))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=22)
    p.add_argument("--schemes", default="w4a8-g64,w8a8", help="qc schemes (w4a8-g64: 4.5 bits a weight, as Q4_0)")
    p.add_argument("--llama-cpp", default="Q4_0,Q8_0")
    p.add_argument("--context", type=int, default=1024)
    p.add_argument("--prompt", type=int, default=128)
    p.add_argument("--chunk", type=int, default=64, help="qc's prefill chunk")
    p.add_argument("--kv-cache", choices=KV_CACHE_TYPES, default="float32", help="qc's KV cache type")
    p.add_argument("--new", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--ort-genai", type=int, default=64, metavar="BLOCK",
                   help="ORT GenAI int4 block size (64: 4.5 bits a weight, as qc w4a8-g64); 0: leave it out")
    p.add_argument("--rounds", type=int, default=3, help="rounds over all engines; each figure is its best round")
    p.add_argument("--results")
    args = p.parse_args()
    import torch

    from qc.compiler.models.llama2c import build_torch_llama

    cfg = config(args.layers, args.context + 64)
    w = weights(args.layers)
    rng = np.random.default_rng(1)
    prompt = [1] + rng.integers(3, VOCAB, args.prompt - 1).tolist()
    long_prompt = [1] + rng.integers(3, VOCAB, args.context - args.new - 1).tolist()
    with torch.no_grad():
        ref = build_torch_llama(cfg, w)(torch.tensor([prompt]))[0, -1].numpy()
    rows = []
    with tempfile.TemporaryDirectory(prefix="qc-gen-") as tmp:
        tmp = Path(tmp)
        engines = []
        for scheme in args.schemes.split(","):
            lib = tmp / f"qc-{scheme}.so"
            seconds, peak = compile_in_child(args.layers, args.context, args.chunk, scheme, lib, args.kv_cache)
            weights_mib = lib.with_suffix(".qcw").stat().st_size / 2**20
            entry = {"float32": 4, "float16": 2, "int8": 1 + 4 / (DIM // HEADS)}[args.kv_cache]  # int8: + scales
            kv_mib = 2 * args.layers * KV_HEADS * args.context * (DIM // HEADS) * entry / 2**20
            rss = generate_rss_in_child(lib, prompt, args.new, args.threads)
            print(f"qc {scheme}: compiled in {seconds:.1f} s, peak RSS {peak:.2f} GB; generating adds {rss:.0f} MiB "
                  f"peak RSS = {rss / (weights_mib + kv_mib):.3f}x (weights {weights_mib:.0f} + KV cache {kv_mib:.0f} MiB)",
                  flush=True)
            label = f"qc {scheme}" + ("" if args.kv_cache == "float32" else f", {args.kv_cache} KV")
            engines.append((label, lib.with_suffix(".qcw").stat().st_size,
                            lambda lib=lib: QcEngine(lib, args.threads),
                            f"compile {seconds:.0f} s, {peak:.1f} GB; generating {rss:.0f} MiB RSS = "
                            f"{rss / (weights_mib + kv_mib):.2f}x weights + KV"))
        f32 = tmp / "model-f32.gguf"
        write_gguf(f32, cfg, w)
        for kind in args.llama_cpp.split(","):
            path = tmp / f"model-{kind}.gguf"
            quantize_gguf(f32, path, kind)
            engines.append((f"llama.cpp {kind}", path.stat().st_size,
                            lambda path=path: LlamaCppEngine(path, args.threads, args.context, args.prompt), ""))
        f32.unlink()
        if args.ort_genai:
            try:
                import onnxruntime_genai  # noqa: F401
            except ImportError as err:
                print(f"ORT GenAI left out: {err} (pip install -e .[bench])", flush=True)
            else:
                hf, out = tmp / "hf", tmp / "ort-genai"
                write_hf(hf, cfg, w)
                build_ort_genai(hf, out, args.ort_genai, args.threads)
                shutil.rmtree(hf)
                name = f"ORT GenAI int4 block {args.ort_genai}, int8 act."
                engines.append((name, (out / "model.onnx.data").stat().st_size,
                                lambda out=out: OrtGenAIEngine(out, args.context), "embedding table f32"))
        del w
        loaded = [make() for _, _, make, _ in engines]  # all at once: the rounds interleave the engines
        results = {name: {} for name, *_ in engines}
        for round in range(args.rounds):
            for (name, *_), engine in zip(engines, loaded):
                measure(engine, prompt, long_prompt, args.new, results[name])
            print(f"round {round + 1}/{args.rounds}: " + ", ".join(
                f"{n} {r['decode_short']:.1f}/{r['decode_long']:.1f}" for n, r in results.items()), flush=True)
        for name, nbytes, _, note in engines:
            r = results[name]
            rows.append((name, f"{nbytes / 2**20:.0f}", f"{r['prefill']:.1f}", f"{r['decode_short']:.2f}",
                         f"{r['decode_long']:.2f}", errors(r["logits"], ref), note))
    text = (f"Generation, TinyLlama-1.1B shape ({args.layers} layers, random weights), {args.threads} threads; "
            f"prefill of {args.prompt} tokens, {args.new} decode steps after {args.prompt} and after "
            f"{len(long_prompt)} tokens; best of {args.rounds} rounds, engines interleaved; host {host()}\n\n"
            + table(rows, ("engine", "weights MiB", "prefill tok/s", f"decode tok/s @{args.prompt}",
                           f"decode tok/s @{len(long_prompt)}", "logits vs FP32 (max rel. / cosine)", "")))
    names = list(results)
    ratios = []
    for ours in (n for n in names if n.startswith("qc")):
        for theirs in (n for n in names if not n.startswith("qc")):
            a, b = results[ours], results[theirs]
            ratios.append((f"{ours} / {theirs}", f"{a['prefill'] / b['prefill']:.2f}x",
                           f"{a['decode_short'] / b['decode_short']:.2f}x", f"{a['decode_long'] / b['decode_long']:.2f}x"))
    text += "\n\n" + table(ratios, ("tokens/s ratio", "prefill", f"decode @{args.prompt}", f"decode @{len(long_prompt)}"))
    publish(text, args.results)


if __name__ == "__main__":
    main()
