"""Accuracy of quantized real models against their FP32 selves."""

import numpy as np
import pytest
import torch

import qc
from qc.core.calibration import Statistics

BATCH, SEQ = 16, 128  # 2,048 next-token positions


def sample(model, vocab: int, seed: int) -> torch.Tensor:
    """Token ids sampled from the FP32 model itself, BATCH sequences of SEQ."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, vocab, (BATCH, 1), generator=g)
    with torch.no_grad():
        for _ in range(SEQ - 1):
            p = torch.softmax(model(tokens)[:, -1], -1)
            tokens = torch.cat([tokens, torch.multinomial(p, 1, generator=g)], 1)
    return tokens


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@pytest.fixture(scope="module")
def stories_setup(stories, workdir):
    """(model, eval tokens, FP32 log-probs, calibration statistics with Hessians)."""
    cfg, model = stories
    tokens = sample(model, cfg.vocab_size, 0)
    with torch.no_grad():
        ref = torch.log_softmax(model(tokens), -1).numpy()
    calib = [{"tokens": sample(model, cfg.vocab_size, s).numpy()} for s in (1, 2)]
    qc.compile(model, workdir / "stories_calib.mlir", emit="mlir", example_inputs=(tokens,), input_names=["tokens"],
               calibration=calib, save_stats=workdir / "stories_stats.npz")
    return model, tokens, ref, Statistics.load(workdir / "stories_stats.npz")


@pytest.mark.parametrize("group", [32, 64])
def test_stories_gptq_and_awq_beat_rtn_at_int4(stories_setup, group, workdir):
    """Mean KL(FP32 || int4) of next-token distributions over 2,048 positions."""
    model, tokens, ref, stats = stories_setup
    kl = {}
    for method in ("rtn", "gptq", "awq"):
        out = workdir / f"stories_g{group}_{method}.so"
        qc.compile(model, out, example_inputs=(tokens,), input_names=["tokens"], scheme=f"w4a16-g{group}",
                   method=method, stats=stats)
        logits = qc.runtime.load(out).run({"tokens": tokens.numpy()})["output0"]
        kl[method] = float((np.exp(ref) * (ref - log_softmax(logits))).sum(-1).mean())
    print(f"stories260K w4a16-g{group}, mean KL over {BATCH * SEQ} positions: "
          + ", ".join(f"{m} {v:.4f}" for m, v in kl.items()))
    assert kl["gptq"] < kl["rtn"] and kl["awq"] < kl["rtn"]


def mean_pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None]
    e = (hidden * m).sum(1) / m.sum(1)
    return e / np.linalg.norm(e, axis=-1, keepdims=True)


def test_minilm_w8a8_smoothed_embeddings(minilm, workdir):
    """W8A8 (int8 per-channel weights, int8 per-token activations) + SmoothQuant on 240
    varied sentences: mean cosine of the mean-pooled embeddings to ORT FP32 >= 0.995, and
    above ORT quantize_dynamic (per-channel int8) on the same sentences."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from qc.compiler.models.minilm import encode, sample_sentences

    onnx_path, _, tok = minilm
    feeds = [encode(tok, [s], 128) for s in sample_sentences(240)]
    calib = [encode(tok, [s], 128) for s in sample_sentences(32, seed=1)]
    fp32 = ort.InferenceSession(str(onnx_path))
    quantize_dynamic(str(onnx_path), str(workdir / "minilm_ort_int8.onnx"), per_channel=True,
                     weight_type=QuantType.QInt8)
    ort_int8 = ort.InferenceSession(str(workdir / "minilm_ort_int8.onnx"))
    qc.compile(onnx_path, workdir / "minilm_w8a8.so", scheme="w8a8")
    qc.compile(onnx_path, workdir / "minilm_w8a8_smooth.so", scheme="w8a8", calibration=calib, smooth=0.5,
               smooth_fallback=True, report=workdir / "minilm_w8a8_smooth.md")
    runners = {"qc W8A8": qc.runtime.load(workdir / "minilm_w8a8.so"),
               "qc W8A8 + SmoothQuant": qc.runtime.load(workdir / "minilm_w8a8_smooth.so")}
    cos = {name: [] for name in [*runners, "ORT quantize_dynamic"]}
    for f in feeds:
        ref = mean_pooled(fp32.run(None, f)[0], f["attention_mask"])
        outs = {name: m.run(f)["last_hidden_state"] for name, m in runners.items()}
        outs["ORT quantize_dynamic"] = ort_int8.run(None, f)[0]
        for name, h in outs.items():
            cos[name].append(float((mean_pooled(h, f["attention_mask"]) * ref).sum()))
    for name, c in cos.items():
        print(f"MiniLM {name}: mean cosine {np.mean(c):.5f}, min {np.min(c):.5f} over {len(c)} sentences")
    smoothed = np.mean(cos["qc W8A8 + SmoothQuant"])
    assert smoothed >= 0.995
    assert smoothed > np.mean(cos["ORT quantize_dynamic"])
    assert smoothed > np.mean(cos["qc W8A8"])
