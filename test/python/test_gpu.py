"""GPU models (qc-compile --target cuda): PTX for sm_80 and sm_90 that ptxas assembles, for real
architectures at f32 and quantized; the host side run end to end against a stand-in CUDA driver
(test/c/mock_libcuda.c: no kernel runs, but every launch, allocation and kernel lookup is checked);
clear errors without a driver or a device; and, where a real GPU is present, numbers against the CPU.
"""

import ctypes
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import qc
from qc.compiler.gpu import ptxas
from qc.compiler.models import cnn

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MLP = os.path.join(REPO, "examples", "mlp.onnx")
X = os.path.join(REPO, "examples", "x.npy")


def _has_gpu() -> str | None:
    """None when a CUDA driver with a device is here, else why not."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "no CUDA driver (libcuda.so.1) on this machine"
    count = ctypes.c_int(0)
    if lib.cuInit(0) or lib.cuDeviceGetCount(ctypes.byref(count)) or count.value < 1:
        return "the CUDA driver finds no device"
    return None


@pytest.fixture(scope="module")
def mock_driver(tmp_path_factory):
    """A folder holding the stand-in libcuda.so.1."""
    folder = tmp_path_factory.mktemp("mock-cuda")
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", os.path.join(REPO, "test", "c", "mock_libcuda.c"), "-o",
                    str(folder / "libcuda.so.1")], check=True)
    return folder


@pytest.fixture(scope="module")
def gpu_mlp(workdir):
    out = workdir / "mlp_cuda.so"
    qc.compile(MLP, out, target="cuda:sm_80")
    return out


def _cnn(name, workdir, shape):
    path = workdir / f"{name}_gpu.onnx"
    if not path.exists():
        cnn.export_onnx(name, path, 17, shape)
    return path


@pytest.mark.parametrize("model,scheme", [("mlp", None), ("mlp", "w4a16-g32"), ("mlp", "w8a8"), ("resnet18", None),
                                          ("crnn", None), ("unet_head", None)])
def test_ptx_assembles(model, scheme, workdir):
    """Every op as a kernel (convolutions, pooling, resizes, attention, layer norm, softmax, int4 and int8
    weights dequantized in the kernel, int8 activations): PTX that ptxas takes for sm_80 and sm_90."""
    if shutil.which("ptxas") is None:
        pytest.skip("ptxas (the CUDA toolkit's assembler) is not on PATH")
    shapes = {"resnet18": (1, 3, 32, 32), "crnn": (1, 1, 32, 32), "unet_head": (1, 3, 32, 32)}
    path = MLP if model == "mlp" else _cnn(model, workdir, shapes[model])
    for chip in ("sm_80", "sm_90"):
        out = workdir / f"{model}_{scheme}_{chip}.ptx"
        qc.compile(path, out, target=f"cuda:{chip}", emit="ptx", scheme=scheme)
        ptx = out.read_text()
        assert f".target {chip}" in ptx and ptx.count(".entry") >= 5
        assert ptxas(ptx, chip) == "", ptxas(ptx, chip)


def test_host_side_against_a_stand_in_driver(gpu_mlp, mock_driver, workdir):
    """The library loads its kernels once (one module), finds each by name, launches them all with a
    valid grid, uploads the weights, keeps its buffers between runs (the second run allocates nothing),
    and copies the outputs back: run twice through qc-run's C path, no driver error."""
    env = {**os.environ, "LD_LIBRARY_PATH": str(mock_driver)}
    ptx_kernels = (workdir / "mlp_count.ptx")
    qc.compile(MLP, ptx_kernels, target="cuda:sm_80", emit="ptx")
    kernels = ptx_kernels.read_text().count(".entry")
    script = ("import sys, numpy as np, qc\n"
              f"m = qc.runtime.load({str(gpu_mlp)!r})\n"
              "assert m.device == 'cuda:sm_80'\n"
              f"x = np.load({X!r})\n"
              "first = m.run({'x': x})['probs']\n"
              "sys.stderr.write('after first run\\n'); sys.stderr.flush()\n"
              "second = m.run({'x': x})['probs']\n"
              "assert first.shape == (4, 10) and (first == second).all()\n")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = done.stderr.strip().splitlines()[-1]
    assert report.startswith("mock-cuda:"), done.stderr
    counts = dict((k, int(v)) for v, k in (part.split() for part in report.split(": ", 1)[1].split(", ")))
    assert counts == {"modules": 1, "launches": 2 * kernels, "allocations": counts["allocations"], "errors": 0}
    # weights + input + output + the intermediates of one run; the second run made none
    assert 3 <= counts["allocations"] <= 3 + kernels


def test_clear_errors_without_a_gpu(gpu_mlp, mock_driver, tmp_path):
    """No driver: the load says the model needs one; a driver without devices: says that; a CPU load of
    a GPU model and GPU options that cannot be: said before any work."""
    run = [sys.executable, "-m", "qc.tools.qc_run", str(gpu_mlp), "--input", f"x={X}", "--output-dir", str(tmp_path)]
    if _has_gpu() is not None:  # (the real driver, where there is one, is what this machine has)
        done = subprocess.run(run, env={**os.environ, "LD_LIBRARY_PATH": str(tmp_path)}, capture_output=True,
                              text=True)
        assert done.returncode == 1 and "CUDA driver (libcuda.so.1) cannot be loaded" in done.stderr
    done = subprocess.run(run, env={**os.environ, "LD_LIBRARY_PATH": str(mock_driver), "MOCK_CUDA_DEVICES": "0"},
                          capture_output=True, text=True)
    assert done.returncode == 1 and "no CUDA device 0 (0 found" in done.stderr and "Traceback" not in done.stderr
    with pytest.raises(qc.QCError, match="compiled for cuda:sm_80, not for cpu"):
        qc.runtime.load(gpu_mlp, device="cpu")
    with pytest.raises(qc.QCError, match="give cpu, cuda or cuda:<chip>"):
        qc.compile(MLP, tmp_path / "x.so", target="cuda:sm_99")
    with pytest.raises(qc.QCError, match="--emit ptx is for GPU models"):
        qc.compile(MLP, tmp_path / "x.ptx", emit="ptx")


def test_gpu_matches_cpu(gpu_mlp, workdir):
    """On a GPU: the CUDA model's outputs equal the CPU model's within 1e-5 of their range (MLP) and
    1e-4 (ResNet-18, a CRNN)."""
    why = _has_gpu()
    if why is not None:
        pytest.skip(f"needs an NVIDIA GPU: {why} (run on a lent GPU machine)")
    x = np.load(X)
    cpu = workdir / "mlp_cpu.so"
    qc.compile(MLP, cpu)
    want = qc.runtime.load(cpu).run({"x": x})["probs"]
    got = qc.runtime.load(gpu_mlp, device="cuda").run({"x": x})["probs"]
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    for name, shape in (("resnet18", (1, 3, 64, 64)), ("crnn", (1, 1, 32, 64))):
        path = _cnn(name, workdir, shape)
        qc.compile(path, workdir / f"{name}_c.so")
        qc.compile(path, workdir / f"{name}_g.so", target="cuda")
        feed = {"x": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
        want = qc.runtime.load(workdir / f"{name}_c.so").run(feed)["y"]
        got = qc.runtime.load(workdir / f"{name}_g.so").run(feed)["y"]
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max(), name
