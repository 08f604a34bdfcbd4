"""Decoders compiled with calibration: GPTQ, precision selection over the layers and over the KV cache,
SmoothQuant from the command line (apart from test_generate.py, so that the two run side by side)."""

import numpy as np
import pytest
import torch

import qc
from qc.compiler.decoder import Decoder
from qc.core.quant import parse_scheme
from qc.runtime import load_decoder

from conftest import DECODER_CHUNK as CHUNK, DECODER_CONTEXT as CONTEXT, run, shared_model, torch_logits


@pytest.fixture(scope="module")
def decoder():
    """The stories260K decoder both tests compile (its steps traced once, by the first compile)."""
    return Decoder.from_llama2c(shared_model("stories260K.bin"), CONTEXT, CHUNK)


def _sampled(model, n: int, seed: int) -> list[int]:
    """Token 1 and n tokens sampled from the PyTorch model (temperature 1): realistic prompts without a
    compiled decoder."""
    generator = torch.Generator().manual_seed(seed)
    seq = [1]
    with torch.no_grad():
        for _ in range(n):
            probs = torch.softmax(model(torch.tensor([seq]))[0, -1], -1)
            seq.append(int(torch.multinomial(probs, 1, generator=generator)))
    return seq


def _kl_to(ref_model, decoder, sequences) -> float:
    """Mean KL(PyTorch FP32 || decoder) over the positions of ``sequences``, fed one token at a time."""
    kl = []
    for seq in sequences:
        decoder.reset()
        p = torch.log_softmax(torch.from_numpy(torch_logits(ref_model, seq)), -1)
        q = torch.log_softmax(torch.from_numpy(np.stack([decoder.feed([t]) for t in seq])), -1)
        kl.append(float((p.exp() * (p - q)).sum(-1).mean()))
    return float(np.mean(kl))


def test_calibrated_decoders_gptq_and_selection(stories, decoder, workdir):
    """Calibration prompts run through the prefill step as the runtime feeds them: GPTQ at w4a16-g32 beats
    RTN's KL to FP32; scheme auto at 7 bits per weight (measured KL sensitivities) chooses once per layer for
    both entries (their logits agree) and beats uniform int4 by far; the prompts as a .npz (qc-compile --calib)
    with SmoothQuant + w8a8.  The Decoder's steps are traced once, by its first compile."""
    _, model = stories
    prompts = [_sampled(model, 47, 100 + i) for i in range(6)]
    held_out = [_sampled(model, 99, i) for i in range(3)]
    assert len(decoder.calibration_samples(prompts)) == 6 * 3  # 48 tokens: three chunks each
    rtn, gptq, auto = workdir / "stories-rtn.so", workdir / "stories-gptq.so", workdir / "stories-auto.so"
    qc.compile(decoder, rtn, scheme="w4a16-g32")
    traced = dict(decoder.exported)  # the prefill and the decode step, each traced once (here or before)
    qc.compile(decoder, gptq, scheme="w4a16-g32", method="gptq", calibration=prompts)
    # (no report: a report's latency column would time every layer's kernels, which test_select covers)
    # (five candidates, weight-only and int8-activation, 4 and 8 bits: every scheme would triple the sensitivity
    # runs, which test_select covers)
    result = qc.compile(decoder, auto, scheme="auto", budget_bits=7, metric="kl", calibration=prompts,
                        candidates=["f32", "w8a16", "w8a8", "w4a16-g32", "w4a8-g32"])
    assert set(traced) == {CHUNK, 1} and all(decoder.exported[t] is p for t, p in traced.items())
    kl = {name: _kl_to(model, load_decoder(lib), held_out)
          for name, lib in (("rtn", rtn), ("gptq", gptq), ("auto", auto))}
    print(f"stories260K decoders, mean KL to FP32 over 300 positions: {kl}")
    assert kl["gptq"] < kl["rtn"] and kl["auto"] < 0.5 * kl["rtn"]
    solution, problem = result.selection["solution"], result.selection["problem"]
    assert 8 * solution.bytes <= 7.0 * sum(layer.weights for layer in problem.layers)
    assert len(set(solution.choice)) == 37
    selected = load_decoder(auto)
    stepped = np.stack([selected.feed([t]) for t in held_out[0][:32]])
    selected.reset()
    chunked = np.stack([selected.feed(held_out[0][i:i + CHUNK]) for i in (0, CHUNK)])
    # f32 sums in the two entries differ in their last bits (other row counts, other attention lengths); a
    # layer with dynamic int8 activations can round one of them to the neighbouring step (an AVX2 host picks
    # such layers: 4.3e-4 measured), while a layer quantized differently in the two entries moves them by
    # its quantization error
    dynamic = any(parse_scheme(c.scheme).int_activations for c in solution.choice.values())
    tolerance = 2e-3 if dynamic else 1e-5
    assert np.abs(stepped[CHUNK - 1::CHUNK] - chunked).max() <= tolerance * np.abs(stepped).max()
    assert (stepped[CHUNK - 1::CHUNK].argmax(-1) == chunked.argmax(-1)).all()

    # the prompts as a .npz, which qc-compile --calib hands to qc.compile as it is (the CLI's own run below
    # shows that it does; this compile reuses the traced steps instead of tracing them in a subprocess)
    calib = workdir / "stories-calib.npz"
    np.savez(calib, tokens=np.array(prompts))
    smoothed = workdir / "stories-sq.so"
    qc.compile(decoder, smoothed, calibration=calib, smooth=0.5, scheme="w8a8")
    assert _kl_to(model, load_decoder(smoothed), held_out) < 0.2 * kl["rtn"]
    np.savez(calib, tokens=np.array([[1, 2, 600]]))
    proc = run("qc-compile", shared_model("stories260K.bin"), "--max-context", str(CONTEXT), "--calib", calib,
               "--scheme", "w8a8", "--smooth", "0.5", "-o", smoothed)
    assert proc.returncode == 1 and "calibration prompt 0 must be token ids in [0, 512)" in proc.stderr
    with pytest.raises(qc.QCError, match="latency budget would be its decode step's"):
        qc.compile(decoder, auto, scheme="auto", budget_latency_ms=5, calibration=prompts)



def test_kv_cache_chosen_with_the_layers(stories, decoder, workdir):
    """--kv-cache auto: the cache is one more layer of the ILP under --budget-mb (weights and cache), its
    types' errors measured through the PyTorch step (and kept in the statistics, also when the budget is
    refused); at the smallest feasible budget (which the refusal of a smaller one names) every layer takes
    w8a16 and the cache int8 (with room for everything, all f32: select-precision-kv-cache.mlir), and the library,
    imported again with that cache, matches the PyTorch step with an int8 cache and the w8a16-rounded
    weights (the int8 cache's bounds of test_low_precision_kv_cache)."""
    from qc.compiler.models.llama2c import build_torch_llama_step, read_llama2c
    from qc.core.calibration import Statistics
    from qc.core.quant import parse_scheme
    from qc.core.quant.sensitivity import fake_quantize

    prompts = [_sampled(stories[1], 31, 200 + i) for i in range(3)]
    stats = workdir / "kv-stats.npz"
    options = dict(scheme="auto", kv_cache="auto", candidates=["f32", "w8a16"], calibration=prompts)
    with pytest.raises(qc.QCError, match="smallest feasible is budget-mb=[0-9.]+, every layer and the KV cache") as err:
        qc.compile(decoder, workdir / "kv-none.so", budget_mb=0.01, save_stats=stats, **options)
    least = float(str(err.value).split("budget-mb=")[1].split(",")[0])
    # what was measured is saved although the budget was refused: the next compile measures nothing again
    measured = Statistics.load(stats).sensitivity["kv_cache"]
    assert 0 < measured["measured:cosine:float16"] < measured["measured:cosine:int8"]
    auto = workdir / "stories-kv-auto.so"
    result = qc.compile(decoder, auto, budget_mb=least, stats=Statistics.load(stats), **options)
    choice = result.selection["solution"].choice
    assert choice["kv_cache"].scheme == "int8" and {c.scheme for n, c in choice.items() if n != "kv_cache"} == {"w8a16"}
    cache = next(layer for layer in result.selection["problem"].layers if layer.name == "kv_cache")
    assert {c.scheme: c.bytes for c in cache.candidates} == {t: decoder.cache_bytes(t) for t in ("float32", "float16", "int8")}
    sig = qc.runtime.load(auto, entry="decode").signature
    assert {t.name: t.dtype for t in sig.inputs}["k_cache"] == "int8" and "k_scale" in {t.name for t in sig.inputs}

    cfg, weights = read_llama2c(shared_model("stories260K.bin"))
    w8 = parse_scheme("w8a16")
    layers = ("wq", "wk", "wv", "wo", "w1", "w2", "w3")  # per layer; the tables are layers too, the norms not
    rounded = {**weights, **{n: np.stack([fake_quantize(m, w8) for m in weights[n]]) for n in layers},
               **{n: fake_quantize(weights[n], w8) for n in ("tok", "classifier")}}
    step = build_torch_llama_step(cfg, rounded, CONTEXT, "int8")
    caches = list(Decoder(step, cfg.n_layers, cfg.n_kv_heads, cfg.head_size, cfg.vocab_size, CONTEXT, CHUNK,
                          "int8").example(1)[2:])
    seq, expected = prompts[0], []
    with torch.no_grad():
        for i, t in enumerate(seq):
            logits, *new = step(torch.tensor([[t]]), torch.tensor([i]), *caches)
            for j, (c, entry) in enumerate(zip(caches, new)):
                c[(slice(None), slice(None), slice(i, i + 1)) if j == 1 else (..., slice(i, i + 1))] = entry
            expected.append(logits[0, -1].numpy())
    expected, lib = np.stack(expected), load_decoder(auto)
    got, scale = np.stack([lib.feed([t]) for t in seq]), np.abs(expected).max()
    assert np.abs(got - expected).max() <= 5e-3 * scale and np.abs(got - expected).mean() <= 2e-4 * scale
    with pytest.raises(qc.QCError, match="--kv-cache auto lets the precision selection choose"):
        qc.compile(decoder, auto, scheme="auto", kv_cache="auto", budget_bits=6, calibration=prompts)
