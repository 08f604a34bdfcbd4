"""Generation with compiled decoders: stories260K's prefill and decode entries over a KV cache,
against the PyTorch full-sequence model; the C generate loop; sampling; what users get wrong."""

import ctypes
import subprocess

import numpy as np
import pytest
import torch

import qc
from qc.compiler.decoder import Decoder
from qc.runtime import load_decoder
from qc.runtime.decoder import _Sampling, _lib

from conftest import DECODER_CHUNK as CHUNK, DECODER_CONTEXT as CONTEXT, EXAMPLE, run, shared_model, torch_logits

PROMPT = [1, 200, 45, 300, 17, 99, 410, 23, 8, 377, 61, 5, 250, 133, 90, 12, 400, 7, 64]  # 19: a chunk and a padded one


def torch_greedy(model, prompt, n):
    """n greedy tokens of the full-sequence PyTorch model, recomputing the whole sequence per token."""
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            seq.append(int(model(torch.tensor([seq]))[0, -1].argmax()))
    return seq[len(prompt):]


def test_fp32_greedy_200_tokens_equal_pytorch(stories_decoders, stories):
    """Prefill (a full chunk, then a padded one) and 200 decode steps give PyTorch's tokens, each one."""
    _, model = stories
    decoder = load_decoder(stories_decoders["f32"])
    assert (decoder.context, decoder.vocab) == (CONTEXT, 512)
    tokens = list(decoder.generate(PROMPT, 200))
    assert tokens == torch_greedy(model, PROMPT, 200)
    stats = decoder.stats
    assert (stats.prompt_tokens, stats.new_tokens, stats.stopped) == (len(PROMPT), 200, "length")
    assert stats.prefill_tokens_per_s > 0 and stats.decode_tokens_per_s > 0


def test_fp32_logits_match_pytorch_through_both_entries(stories_decoders, stories):
    """The logits at every position, fed through prefill chunks or one decode step at a time, match
    the full-sequence model within 1e-4 of their range."""
    _, model = stories
    rng = np.random.default_rng(0)
    tokens = [1] + rng.integers(0, 512, 99).tolist()
    ref = torch_logits(model, tokens)
    decoder = load_decoder(stories_decoders["f32"])
    stepped = np.stack([decoder.feed([t]) for t in tokens])
    decoder.reset()
    pieces = [(0, 1), (1, 2), (2, 3), (3, 93), (93, 100)]  # decode steps; 5 chunks + a padded one; a padded one
    chunked = np.stack([decoder.feed(tokens[a:b]) for a, b in pieces])
    scale = np.abs(ref).max()
    assert np.abs(stepped - ref).max() <= 1e-4 * scale
    assert np.abs(chunked - ref[[b - 1 for _, b in pieces]]).max() <= 1e-4 * scale
    assert decoder.position == 100


def test_c_generate_loop_equals_python_and_streams(stories_decoders):
    """qc_generate (C) streams the tokens the Python iterator yields, greedy and sampled, and stops at a
    stop token or when the callback says so."""
    api = _lib()
    handle = ctypes.c_void_p()
    assert api.qc_decoder_open(str(stories_decoders["f32"]).encode(), None, ctypes.byref(handle)) == 0
    prompt = (ctypes.c_int64 * len(PROMPT))(*PROMPT)
    callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int64)

    class Stats(ctypes.Structure):
        _fields_ = [("prompt_tokens", ctypes.c_int64), ("new_tokens", ctypes.c_int64),
                    ("prefill_seconds", ctypes.c_double), ("decode_seconds", ctypes.c_double), ("stopped", ctypes.c_int)]

    def c_generate(n, sampling, stop=(), until=None):
        streamed = []

        def on_token(_, token):
            streamed.append(token)
            return int(until is not None and len(streamed) == until)

        out, stats = (ctypes.c_int64 * n)(), Stats()
        stops = (ctypes.c_int64 * max(len(stop), 1))(*stop)
        fn = api.qc_generate
        fn.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64), ctypes.c_int64, ctypes.c_int64,
                       ctypes.POINTER(_Sampling), ctypes.POINTER(ctypes.c_int64), ctypes.c_int, callback_type,
                       ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(Stats)]
        assert fn(handle, prompt, len(PROMPT), n, ctypes.byref(sampling), stops, len(stop), callback_type(on_token),
                  None, out, ctypes.byref(stats)) == 0
        assert list(out)[:stats.new_tokens] == streamed
        return streamed, stats

    decoder = load_decoder(stories_decoders["f32"])
    greedy, stats = c_generate(40, _Sampling(0, 0, 1, 0))
    assert greedy == list(decoder.generate(PROMPT, 40)) and (stats.new_tokens, stats.stopped) == (40, 0)
    sampled, _ = c_generate(40, _Sampling(0.9, 40, 0.95, 7))
    assert sampled == list(decoder.generate(PROMPT, 40, temperature=0.9, top_k=40, top_p=0.95, seed=7))
    assert sampled != greedy
    stop = greedy[10]
    cut, stats = c_generate(40, _Sampling(0, 0, 1, 0), stop=[stop])
    assert cut == greedy[:greedy.index(stop) + 1] and stats.stopped == 1
    early, stats = c_generate(40, _Sampling(0, 0, 1, 0), until=5)
    assert early == greedy[:5] and stats.stopped == 2
    api.qc_decoder_free(handle)


def test_sampling_is_seeded_and_top_k_1_is_greedy(stories_decoders):
    decoder = load_decoder(stories_decoders["f32"])
    greedy = list(decoder.generate(PROMPT, 30))
    assert list(decoder.generate(PROMPT, 30, temperature=1.5, top_k=1, seed=3)) == greedy
    a = list(decoder.generate(PROMPT, 30, temperature=1.0, seed=1))
    assert a == list(decoder.generate(PROMPT, 30, temperature=1.0, seed=1))
    assert a != list(decoder.generate(PROMPT, 30, temperature=1.0, seed=2))
    stop = greedy[3]
    assert list(decoder.generate(PROMPT, 30, stop=[stop])) == greedy[:greedy.index(stop) + 1]
    assert decoder.stats.stopped == "token"


def test_weights_stored_once_for_both_entries(stories_decoders):
    """Both entry points read one weight file holding each parameter once (f32 stories260K: 1.04 MB
    of parameters with the tied classifier; not twice that)."""
    blob = stories_decoders["f32"].with_suffix(".qcw").stat().st_size
    params = (shared_model("stories260K.bin").stat().st_size - 28) // 4 * 4
    assert blob < 1.2 * params
    prefill = qc.runtime.load(stories_decoders["f32"])
    decode = qc.runtime.load(stories_decoders["f32"], entry="decode")
    assert prefill.signature.inputs[0].shape == (1, CHUNK) and decode.signature.inputs[0].shape == (1, 1)
    assert [t.name for t in decode.signature.outputs] == ["logits", "k_new", "v_new"]


def test_int4_g32_over_2000_positions(stories_decoders, stories):
    """w4a16-g32 (every linear and the embedding table), teacher-forced on 8 sequences the FP32 decoder
    sampled (250 tokens each, 2,000 positions): the logits of both entries equal PyTorch's with the same
    rounded weights (1e-4 of their range); top-1 agreement and mean KL(FP32 || int4) to PyTorch FP32
    are printed (docs/results.md)."""
    from qc.compiler.models.llama2c import build_torch_llama, read_llama2c
    from qc.core.quant import parse_scheme
    from qc.core.quant.sensitivity import fake_quantize

    cfg, _ = stories
    scheme = parse_scheme("w4a16-g32")
    _, weights = read_llama2c(shared_model("stories260K.bin"))
    def rounded_as_qc(w):  # qc leaves a layer whose K is no multiple of the group in f32 (w2: K=172)
        return fake_quantize(w, scheme) if w.shape[1] % scheme.group_size == 0 else w

    rounded = {k: np.stack([rounded_as_qc(m) for m in v]) if k in ("wq", "wk", "wv", "wo", "w1", "w2", "w3")
               else rounded_as_qc(v) if k in ("tok", "classifier") else v for k, v in weights.items()}
    fp32_model, int4_model = stories[1], build_torch_llama(cfg, rounded)
    fp32, int4 = load_decoder(stories_decoders["f32"]), load_decoder(stories_decoders["w4a16-g32"])
    agree, kl, worst = [], [], 0.0
    for seed in range(8):
        seq = [1] + list(fp32.generate([1], 249, temperature=1.0, seed=seed))
        ref, same_weights = torch_logits(fp32_model, seq), torch_logits(int4_model, seq)
        int4.reset()
        got = np.stack([int4.feed([t]) for t in seq])
        int4.reset()
        chunked = int4.feed(seq)  # the prefill entry: 15 chunks and a padded one
        scale = np.abs(same_weights).max()
        worst = max(worst, np.abs(got - same_weights).max() / scale, np.abs(chunked - same_weights[-1]).max() / scale)
        p = torch.log_softmax(torch.from_numpy(ref), -1)
        q = torch.log_softmax(torch.from_numpy(got), -1)
        kl.append(float((p.exp() * (p - q)).sum(-1).mean()))
        agree.append(float((ref.argmax(-1) == got.argmax(-1)).mean()))
    print(f"stories260K w4a16-g32 vs FP32 over 2000 positions: top-1 agreement {np.mean(agree):.3f}, "
          f"KL {np.mean(kl):.4f}; vs PyTorch with the rounded weights: max |diff| {worst:.1e} of the range")
    assert worst <= 1e-4


def test_user_errors_are_said(stories_decoders, workdir):
    decoder = load_decoder(stories_decoders["f32"])
    with pytest.raises(qc.QCError, match=r"token 512 \(at index 1\) is outside the vocabulary \[0, 512\)"):
        decoder.feed([1, 512])
    with pytest.raises(qc.QCError, match="prompt is empty"):
        list(decoder.generate([], 5))
    decoder.reset()
    decoder.feed(np.ones(CONTEXT - 1, np.int64))
    with pytest.raises(qc.QCError, match=r"context is full: 2 tokens at position 255, and the model holds 256 "
                                         r"positions \(compile it with a larger --max-context\)"):
        decoder.feed([1, 2])
    assert list(decoder.generate([1] * (CONTEXT - 3), 10))[-1] >= 0 and decoder.stats.stopped == "context"
    assert decoder.stats.new_tokens == 4  # the prompt's 253 positions, then 3 more fed and a fourth chosen
    mlp = workdir / "gen-mlp.so"
    qc.compile(EXAMPLE, mlp)
    with pytest.raises(qc.QCError, match="has no entry point 'decode' .it is not a decoder: compile one with "
                                         "qc-compile --max-context."):
        load_decoder(mlp)
    proc = run("qc-run", mlp, "--generate", "--prompt", "1,2")
    assert proc.returncode == 1 and "is not a decoder" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_generates_and_rejects_a_non_decoder(workdir, stories_decoders):
    """qc-run --generate streams the greedy tokens (the library qc-compile made of the .bin);
    --max-context on an ONNX model is refused."""
    proc = run("qc-run", stories_decoders["f32"], "--generate", "--prompt", ",".join(map(str, PROMPT)), "--max-new-tokens", "20")
    assert proc.returncode == 0, proc.stderr
    assert [int(t) for t in proc.stdout.split()] == list(load_decoder(stories_decoders["f32"]).generate(PROMPT, 20))
    assert "tokens/s" in proc.stderr
    proc = run("qc-compile", EXAMPLE, "--max-context", "64", "-o", workdir / "x.so")
    assert proc.returncode == 1 and "not an ONNX decoder with past_key_values: it lacks input_ids" in proc.stderr


def test_executable_generates_as_qc_run_does(workdir, stories_decoders):
    """qc-compile --emit exe of a decoder: a program with qc-run --generate's command line, the same
    tokens greedy and sampled, and its mistakes said with exit 1."""
    exe = workdir / "stories-gen"
    proc = run("qc-compile", shared_model("stories260K.bin"), "--max-context", str(CONTEXT), "--prefill-chunk",
               str(CHUNK), "--emit", "exe", "-o", exe)
    assert proc.returncode == 0, proc.stderr
    prompt = ",".join(map(str, PROMPT))
    decoder = load_decoder(stories_decoders["f32"])
    for flags, kwargs in (([], {}), (["--temperature", "0.9", "--top-k", "40", "--seed", "7"],
                                     dict(temperature=0.9, top_k=40, seed=7))):
        proc = subprocess.run([exe, "--prompt", prompt, "--max-new-tokens", "30", "--threads", "1", *flags],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert [int(t) for t in proc.stdout.split()] == list(decoder.generate(PROMPT, 30, **kwargs))
        assert "new tokens" in proc.stderr and "(stopped: length)" in proc.stderr
    stop = list(decoder.generate(PROMPT, 30))[4]
    proc = subprocess.run([exe, "--prompt", prompt, "--stop", str(stop)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.split()[-1] == str(stop) and "(stopped: token)" in proc.stderr
    for args, message in ((["--prompt", "1,x"], "--prompt expects token ids like 1,42,7, got '1,x'"),
                          (["--prompt", "1,600"], "outside the vocabulary"),
                          (["--max-new-tokens", "5"], "--prompt is required"),
                          (["--prompt", "1", "--bogus", "2"], "unknown argument '--bogus'"),
                          (["--prompt", "1", "--weights", str(workdir / "none.qcw")], "none.qcw")):
        proc = subprocess.run([exe, *args], capture_output=True, text=True)
        assert proc.returncode == 1 and message in proc.stderr, (args, proc.stderr)


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_hugging_face_decoders_match_transformers(family, workdir):
    """A Hugging Face LlamaForCausalLM and a Qwen2ForCausalLM (q/k/v biases, tied embeddings, rope theta
    1e6) with random weights: qc's greedy tokens are transformers' generate() tokens, and the logits at
    every position match its forward within 1e-5 of their range."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    shape = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=256, max_position_embeddings=128)
    if family == "llama":
        model = LlamaForCausalLM(LlamaConfig(**shape)).eval()
    else:
        model = Qwen2ForCausalLM(Qwen2Config(**shape, tie_word_embeddings=True, rope_theta=1e6)).eval()
        with torch.no_grad():
            for layer in model.model.layers:
                for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                    proj.bias.normal_(0, 0.5)
    lib = workdir / f"hf-{family}.so"
    qc.compile(Decoder.from_hf(model, context=64, prefill_chunk=8), lib)
    decoder = load_decoder(lib)
    prompt = [1, 5, 77, 200, 3, 9, 14, 100, 31, 2, 40]
    tokens = list(decoder.generate(prompt, 40))
    with torch.no_grad():
        expected = model.generate(torch.tensor([prompt]), max_new_tokens=40, min_new_tokens=40, do_sample=False)
        ref = model(torch.tensor([prompt + tokens])).logits[0].numpy()
    assert tokens == expected[0, len(prompt):].tolist()
    decoder.reset()
    stepped = np.stack([decoder.feed([t]) for t in prompt + tokens])
    assert np.abs(stepped - ref).max() <= 1e-5 * np.abs(ref).max()
    with pytest.raises(qc.QCError, match="sliding window of 16 positions"):
        from transformers import MistralConfig, MistralForCausalLM

        Decoder.from_hf(MistralForCausalLM(MistralConfig(**shape, sliding_window=16)), context=64)


@pytest.mark.parametrize("kind, agreement", [("float16", 0.95), ("int8", 0.85)])
def test_low_precision_kv_cache(kind, agreement, stories_decoders, workdir):
    """qc-compile --kv-cache float16 | int8: the cache is half or int8 codes with one f32 scale per layer,
    head and position (the entries' types in both entries' signatures); the products read it without an
    f32 copy (qc-fold-widening); the logits of both entries match the PyTorch step with the same cache
    within 5e-3 of their range (an entry whose f32 value lands on the other side of a rounding boundary
    moves by one step of the cache's type, and later positions read it), 2e-4 on average; top-1 agrees
    with the f32 cache at >= 95 % (float16) / 85 % (int8; stories260K's heads are 8 wide) of teacher-forced
    positions."""
    lib = workdir / f"stories-kv-{kind}.so"
    proc = run("qc-compile", shared_model("stories260K.bin"), "--max-context", str(CONTEXT), "--prefill-chunk",
               str(CHUNK), "--kv-cache", kind, "-o", lib)
    assert proc.returncode == 0, proc.stderr
    scales = {"k_scale": "float32", "v_scale": "float32", "k_new_scale": "float32", "v_new_scale": "float32"}
    for entry in ("main", "decode"):
        sig = qc.runtime.load(lib, entry=entry).signature
        assert {t.name: t.dtype for t in sig.inputs + sig.outputs if t.name != "logits"} == \
            {"tokens": "int64", "pos": "int64", "k_cache": kind, "v_cache": kind, "k_new": kind, "v_new": kind,
             **(scales if kind == "int8" else {})}
    reference = Decoder.from_llama2c(shared_model("stories260K.bin"), CONTEXT, CHUNK, kv_cache=kind)
    fp32 = load_decoder(stories_decoders["f32"])
    seq = [1] + list(fp32.generate([1], 119, temperature=1.0, seed=5))
    caches = list(reference.example(1)[2:])  # keys, values (and scales)
    expected = []
    with torch.no_grad():
        for i, t in enumerate(seq):
            logits, *new = reference.step(torch.tensor([[t]]), torch.tensor([i]), *caches)
            for j, (cache, entry) in enumerate(zip(caches, new)):
                cache[(slice(None), slice(None), slice(i, i + 1)) if j == 1 else (..., slice(i, i + 1))] = entry
            expected.append(logits[0, -1].numpy())
    expected = np.stack(expected)
    low = load_decoder(lib)
    stepped = np.stack([low.feed([t]) for t in seq])
    low.reset()
    chunked = np.stack([low.feed(seq[i:i + CHUNK]) for i in range(0, len(seq), CHUNK)])
    scale = np.abs(expected).max()
    assert np.abs(stepped - expected).max() <= 5e-3 * scale and np.abs(stepped - expected).mean() <= 2e-4 * scale
    assert np.abs(chunked - expected[[min(i + CHUNK, len(seq)) - 1 for i in range(0, len(seq), CHUNK)]]).max() \
        <= 5e-3 * scale
    fp32.reset()
    full = np.stack([fp32.feed([t]) for t in seq])
    print(f"stories260K, {kind} KV cache: top-1 agreement with the f32 cache "
          f"{(full.argmax(-1) == stepped.argmax(-1)).mean():.3f} over {len(seq)} positions")
    assert (full.argmax(-1) == stepped.argmax(-1)).mean() >= agreement
    proc = run("qc-compile", EXAMPLE, "--kv-cache", kind, "-o", workdir / "x.so")
    assert proc.returncode == 1 and "--kv-cache compiles a decoder" in proc.stderr


@pytest.mark.parametrize("cpu", [None, "haswell"])
def test_decode_attention_reads_only_the_cache_before_pos(cpu, workdir):
    """A decode step's attention is one kernel per layer (qc-fuse-cached-attention) that reads only the cache
    entries before pos: with every later entry of the caches (and an int8 cache's scales) 1e30 (f16: 6e4; int8:
    codes 127; read, they would swamp the softmax), the logits of a random one-layer LLaMA step (16 heads over 2
    KV heads: 8 queries a KV head, more than haswell's 6-row tile; head 40: vectors with a masked rest; capacity
    37: positions with a masked rest) at positions 0, 1, 7, 8, 16, 17 and 36, f32, f16 and int8 caches (haswell:
    f32 and int8), equal the PyTorch step's within 1e-4 of their range, on this host's vector width and haswell's."""
    from qc.compiler.models.llama2c import LlamaConfig, build_torch_llama_step

    context = 37
    cfg = LlamaConfig(dim=640, hidden_dim=32, n_layers=1, n_heads=16, n_kv_heads=2, vocab_size=16, seq_len=context)
    rng = np.random.default_rng(3)
    shapes = {"tok": (16, 640), "wq": (1, 640, 640), "wk": (1, 80, 640), "wv": (1, 80, 640), "wo": (1, 640, 640),
              "w1": (1, 32, 640), "w2": (1, 640, 32), "w3": (1, 32, 640), "classifier": (16, 640)}
    weights = {k: rng.normal(0, 0.05, shape).astype(np.float32) for k, shape in shapes.items()}
    weights |= {"rms_att": np.ones((1, 640), np.float32), "rms_ffn": np.ones((1, 640), np.float32),
                "rms_final": np.ones(640, np.float32)}
    for kind in ("float32", "float16", "int8") if cpu is None else ("float32", "int8"):
        step = build_torch_llama_step(cfg, weights, context, kind)
        lib = workdir / f"attention-{kind}-{cpu}.so"
        qc.compile(Decoder(step, 1, 2, 40, 16, context, 4, kind), lib, target_cpu=cpu)
        assert b"qc_attn_0" in subprocess.run(["nm", lib], capture_output=True, check=True).stdout
        decode = qc.runtime.load(lib, entry="decode")
        caches = [rng.normal(0, 1, (1, 2, 40, context)), rng.normal(0, 1, (1, 2, context, 40))]
        if kind == "int8":
            scales = rng.uniform(0.01, 0.03, (1, 2, context))
            caches = [np.clip(np.round(c * 40), -127, 127) for c in caches] + [scales] * 2
        dtypes = {"float32": [np.float32] * 2, "float16": [np.float16] * 2,
                  "int8": [np.int8] * 2 + [np.float32] * 2}[kind]
        garbage = {"float32": [1e30] * 2, "float16": [6e4] * 2, "int8": [127, 127, 1e30, 1e30]}[kind]
        for pos in (0, 1, 7, 8, 16, 17, 36):
            inputs = [c.astype(t) for c, t in zip(caches, dtypes)]
            for i, (x, big) in enumerate(zip(inputs, garbage)):  # keys [.., D, C], values [.., C, D], scales [.., C]
                if i == 1:
                    x[:, :, pos:] = big
                else:
                    x[..., pos:] = big
            token = np.array([[rng.integers(16)]])
            with torch.no_grad():
                expected = step(torch.from_numpy(token), torch.tensor([pos]), *map(torch.from_numpy, inputs))[0].numpy()
            names = ["k_cache", "v_cache", "k_scale", "v_scale"]
            got = decode.run({"tokens": token, "pos": np.array([pos]), **dict(zip(names, inputs))})["logits"]
            assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max(), (kind, pos)


def export_with_past(model, path, layers: int) -> None:
    """``model`` (a transformers decoder) exported to ONNX as optimum exports one: input_ids,
    attention_mask, position_ids and past_key_values.N.key/value in, logits and present.N.key/value out,
    sequence and past lengths dynamic."""
    from transformers.cache_utils import DynamicCache

    class WithPast(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, position_ids, *past):
            cache = DynamicCache()
            for i in range(layers):
                cache.update(past[2 * i], past[2 * i + 1], i)
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             past_key_values=cache, use_cache=True)
            return (out.logits, *[t for layer in out.past_key_values.layers for t in (layer.keys, layer.values)])

    c = model.config
    past = [torch.randn(1, c.num_key_value_heads, 3, c.hidden_size // c.num_attention_heads) for _ in range(2 * layers)]
    names = [f"past_key_values.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    presents = [f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    dynamic = {"input_ids": {1: "seq"}, "attention_mask": {1: "total"}, "position_ids": {1: "seq"}}
    dynamic |= {n: {2: "past"} for n in names} | {n: {2: "total"} for n in presents}
    torch.onnx.export(WithPast().eval(), (torch.tensor([[5, 7]]), torch.ones(1, 5, dtype=torch.int64),
                                          torch.tensor([[3, 4]]), *past), str(path),
                      input_names=["input_ids", "attention_mask", "position_ids", *names],
                      output_names=["logits", *presents], dynamic_axes=dynamic, dynamo=False, opset_version=17)


def ort_greedy(path, prompt, n: int, layers: int, kv_heads: int, head: int) -> list[int]:
    """n greedy tokens of an ONNX decoder with past_key_values run by ONNX Runtime, its cache growing."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    past = {f"past_key_values.{i}.{kv}": np.zeros((1, kv_heads, 0, head), np.float32)
            for i in range(layers) for kv in ("key", "value")}
    ids, out = list(prompt), []
    for _ in range(n):
        total = len(out) + len(prompt)
        fed = ids if not out else ids[-1:]
        results = session.run(None, {"input_ids": np.array([fed]), "attention_mask": np.ones((1, total), np.int64),
                                     "position_ids": np.arange(total - len(fed), total)[None], **past})
        past = {name.replace("present", "past_key_values"): value for name, value in
                zip([o.name for o in session.get_outputs()][1:], results[1:])}
        out.append(int(results[0][0, -1].argmax()))
        ids.append(out[-1])
    return out


def test_onnx_decoder_with_past_key_values(workdir):
    """A Hugging Face LlamaForCausalLM exported to ONNX with past_key_values (the optimum interface):
    qc-compile --max-context gives a decoder whose greedy tokens are ONNX Runtime's on the same file and
    transformers' generate(), whose logits match transformers' forward within 1e-5 of their range, whose
    weight file holds each initializer once for both entries, and which quantizes (w8a16: the logits of
    both entries agree; calibrated SmoothQuant + w8a8 within 5 % of the range)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=256, max_position_embeddings=128)
    config._attn_implementation = "eager"  # the export traces the attention as plain ops
    model = LlamaForCausalLM(config).eval()
    path = workdir / "llama-past.onnx"
    export_with_past(model, path, 2)
    lib = workdir / "llama-past.so"
    proc = run("qc-compile", path, "--max-context", "64", "--prefill-chunk", "8", "-o", lib)
    assert proc.returncode == 0, proc.stderr
    prompt = [1, 5, 77, 200, 3, 9, 14, 100, 31, 2, 40]
    decoder = load_decoder(lib)
    tokens = list(decoder.generate(prompt, 30))
    with torch.no_grad():
        expected = model.generate(torch.tensor([prompt]), max_new_tokens=30, min_new_tokens=30, do_sample=False)
        ref = model(torch.tensor([prompt + tokens])).logits[0].numpy()
    assert tokens == ort_greedy(path, prompt, 30, 2, 2, 16) == expected[0, len(prompt):].tolist()
    decoder.reset()
    stepped = np.stack([decoder.feed([t]) for t in prompt + tokens])
    assert np.abs(stepped - ref).max() <= 1e-5 * np.abs(ref).max()
    params = sum(p.numel() for p in model.parameters()) * 4
    assert lib.with_suffix(".qcw").stat().st_size < 1.1 * params

    int8 = workdir / "llama-past-w8.so"
    qc.compile(path, int8, max_context=64, prefill_chunk=8, scheme="w8a16")
    quantized = load_decoder(int8)
    stepped = np.stack([quantized.feed([t]) for t in prompt[:8]])
    quantized.reset()
    assert np.abs(quantized.feed(prompt[:8]) - stepped[-1]).max() <= 1e-5 * np.abs(stepped).max()
    assert np.abs(stepped - ref[:8]).max() <= 0.05 * np.abs(ref).max()
    # calibrated: the prompts' caches come from ONNX Runtime running the wrapped step
    smoothed = workdir / "llama-past-sq.so"
    prompts = [prompt, [1] + tokens[:20]]
    qc.compile(path, smoothed, max_context=64, prefill_chunk=8, scheme="w8a8", smooth=0.5, calibration=prompts)
    calibrated = load_decoder(smoothed)
    stepped = np.stack([calibrated.feed([t]) for t in prompt + tokens])
    assert np.abs(stepped - ref).max() <= 0.05 * np.abs(ref).max()
