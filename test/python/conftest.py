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
    from qc.compiler.models import minilm as mm

    onnx_path = workdir / "minilm.onnx"
    tokenizer = mm.export_onnx(onnx_path, batch=1, seq=128)
    qc.compile(onnx_path, workdir / "minilm.so")
    return onnx_path, qc.runtime.load(workdir / "minilm.so"), tokenizer


@pytest.fixture(scope="session")
def stories():
    from qc.compiler.models.llama2c import build_torch_llama, read_llama2c

    cfg, weights = read_llama2c(SHARED_MODELS / "stories260K.bin")
    return cfg, build_torch_llama(cfg, weights)


def random_feeds(signature, seed=0):
    rng = np.random.default_rng(seed)
    return {s.name: rng.standard_normal(s.shape).astype(s.dtype) for s in signature.inputs}
