"""Shared, session-scoped fixtures: models are exported and compiled once per run."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import qc

# pytest -n 2 runs two processes on a 2-CPU host: each model's pool would pin its worker to the CPU its
# caller is not on, and the two processes' pinned workers and callers can then wait on each other (one pair
# of runs back to back: 11:32 with pinning, 10:18 without, test_generate_calibrated 202 -> 106 s; later runs
# without it took 10:48 and 11:12, so this VM's drift is as large as the gain).  test_cli sets it where
# pinning itself is tested.
os.environ.setdefault("QC_PIN_THREADS", "0")
# ... and PyTorch's OpenMP threads (read when torch loads, after this) spin after each parallel region on
# the CPU the other process needs: one a process when pytest-xdist splits the host (test_accuracy and
# test_accuracy_minilm side by side 102 -> 82 s, the stories fixture's sampling and trace 42 -> 20 s).
if "PYTEST_XDIST_WORKER" in os.environ:  # (not in the controller: its environment is the workers')
    _share = (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _share)))
# The files that take longest (test time on two workers, 2026-12-07), in that order, before the rest:
# pytest-xdist's --dist loadfile hands files out in collection order, and a long file handed out last kept
# one worker busy while the other idled (32 s at the end of a run).
LONGEST_FIRST = ("test_generate.py", "test_generate_calibrated.py", "test_gpu.py", "test_accuracy_minilm.py",
                 "test_cnn.py", "test_quant.py", "test_select.py", "test_accuracy.py", "test_onnx_ops.py",
                 "test_models.py", "test_cli.py", "test_cmake_examples.py", "test_calibration.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its order


REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EXAMPLE = REPO / "examples" / "mlp.onnx"  # x[4, 64] -> MatMul fc1 [64, 256] -> relu -> MatMul fc2 [256, 10] -> softmax
# shared/ lies beside the checkout (CI clones main with shared/ next to it).
SHARED_MODELS = Path(os.environ.get("QC_SHARED_MODELS", REPO.parent / "shared" / "models"))


def shared_model(name: str) -> Path:
    """A model the tests read from ../shared/models (or $QC_SHARED_MODELS); its absence fails the
    test with what is missing and where, not a FileNotFoundError at setup."""
    path = SHARED_MODELS / name
    if not path.is_file():
        pytest.fail(f"the tests need {path} (see README, 'What the tests need'); "
                    f"put it there or point QC_SHARED_MODELS at its folder", pytrace=False)
    return path


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

    cfg, weights = read_llama2c(shared_model("stories260K.bin"))
    return cfg, build_torch_llama(cfg, weights)


DECODER_CONTEXT, DECODER_CHUNK = 256, 16  # stories260K decoders' context and prefill chunk


@pytest.fixture(scope="session")
def stories_decoders(workdir):
    """The FP32 and the w4a16-g32 decoder of stories260K, from one Decoder (its steps traced once):
    {scheme: library}.  (qc-compile's own runs on the checkpoint are test_generate's --emit exe and
    --kv-cache tests.)"""
    from qc.compiler.decoder import Decoder

    decoder = Decoder.from_llama2c(shared_model("stories260K.bin"), DECODER_CONTEXT, DECODER_CHUNK)
    f32, int4 = workdir / "stories-f32.so", workdir / "stories-w4a16-g32.so"
    qc.compile(decoder, f32)
    qc.compile(decoder, int4, scheme="w4a16-g32")
    return {"f32": f32, "w4a16-g32": int4}


def torch_logits(model, tokens):
    """The full-sequence PyTorch model's logits for ``tokens``."""
    import torch

    with torch.no_grad():
        return model(torch.tensor([tokens]))[0].numpy()


def random_feeds(signature, seed=0):
    rng = np.random.default_rng(seed)
    return {s.name: rng.standard_normal(s.shape).astype(s.dtype) for s in signature.inputs}


def run(tool, *args):
    """A CLI tool of this environment, output captured."""
    return subprocess.run([str(BIN / tool), *map(str, args)], capture_output=True, text=True)


def run_example(library, workdir, tag: str, seed: int):
    """Run a compiled examples/mlp.onnx through qc-run on random x; (qc probs, ORT FP32 probs)."""
    import onnxruntime as ort

    x = np.random.default_rng(seed).standard_normal((4, 64)).astype(np.float32)
    np.save(workdir / f"{tag}.npy", x)
    proc = run("qc-run", library, "--input", f"x={workdir / f'{tag}.npy'}", "--output-dir", workdir / tag)
    assert proc.returncode == 0, proc.stderr
    return np.load(workdir / tag / "probs.npy"), ort.InferenceSession(str(EXAMPLE)).run(None, {"x": x})[0]


# The environment's qc-compile, cmake, ctest and ninja (pinned in the [test] extra).
CMAKE_ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def tool(name: str) -> str:
    return shutil.which(name, path=CMAKE_ENV["PATH"])


def cmake(*args, cwd=None):
    proc = subprocess.run([tool("cmake"), *map(str, args)], capture_output=True, text=True, env=CMAKE_ENV, cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="session")
def top_build(tmp_path_factory):
    """qc's own CMakeLists.txt configured and built (Ninja) and installed into a prefix."""
    root = tmp_path_factory.mktemp("cmake")
    cmake("-G", "Ninja", "-S", REPO, "-B", root / "build", f"-DSTORIES_BIN={shared_model('stories260K.bin')}")
    cmake("--build", root / "build")
    cmake("--install", root / "build", "--prefix", root / "prefix")
    return root
