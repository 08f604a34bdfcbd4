"""Accuracy of quantized stories260K against its FP32 self (MiniLM: test_accuracy_minilm.py)."""

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
    """Mean KL(FP32 || int4) of next-token distributions over 2,048 positions; each method compiles the
    model as imported once (the setup's .mlir and weights: no trace per compile)."""
    model, tokens, ref, stats = stories_setup
    kl = {}
    for method in ("rtn", "gptq", "awq"):
        out = workdir / f"stories_g{group}_{method}.so"
        qc.compile(workdir / "stories_calib.mlir", out, weights=workdir / "stories_calib.safetensors",
                   scheme=f"w4a16-g{group}", method=method, stats=stats)
        logits = qc.runtime.load(out).run({"tokens": tokens.numpy()})["output0"]
        kl[method] = float((np.exp(ref) * (ref - log_softmax(logits))).sum(-1).mean())
    print(f"stories260K w4a16-g{group}, mean KL over {BATCH * SEQ} positions: "
          + ", ".join(f"{m} {v:.4f}" for m, v in kl.items()))
    assert kl["gptq"] < kl["rtn"] and kl["awq"] < kl["rtn"]
