"""GPU models (qc-compile --target cuda): PTX for sm_80 and sm_90 that ptxas assembles, for real
architectures at f32 and quantized, whose outputs match the CPU model's: on a GPU where there is one,
otherwise with the kernels run on the CPU (gpu_emulator.py: the same kernel IR compiled for the host,
launched by a stand-in CUDA driver, test/c/mock_libcuda.c, which checks every launch, allocation and
kernel lookup); and clear errors without a driver or a device.
"""

import ctypes
import os
import shutil
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest

import qc
import gpu_emulator
from qc.compiler.gpu import GpuTarget, ptxas, to_ptx
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
                    str(folder / "libcuda.so.1"), "-ldl"], check=True)
    return folder


@pytest.fixture(scope="module")
def gpu_mlp(workdir):
    return qc.compile(MLP, workdir / "mlp_cuda.so", target="cuda:sm_80")


def _cnn(name, workdir, shape):
    path = workdir / f"{name}_gpu.onnx"
    if not path.exists():
        cnn.export_onnx(name, path, 17, shape)
    return path


RUN_ON_GPU = """
import sys, numpy as np, qc
feed = dict(np.load(sys.argv[2]))
np.savez(sys.argv[3], **qc.runtime.load(sys.argv[1], device="cuda").run(feed))
"""


def gpu_env(code, kernels, mock_driver) -> dict:
    """The environment a child process runs a GPU model in: this machine's GPU, or without one the
    stand-in driver running the model's kernels (``code``, a ``gpu.DeviceCode``) built for the host into
    ``kernels`` (gpu_emulator)."""
    env = dict(os.environ)
    if _has_gpu() is not None:
        env.update(LD_LIBRARY_PATH=str(mock_driver), MOCK_CUDA_KERNELS=str(gpu_emulator.build(code.llvm_ir, kernels)))
    return env


def run_on_gpu(model, code, feed, workdir, mock_driver):
    """``model``'s outputs for ``feed``, run in a child process on this machine's GPU or through the stand-in
    driver (``gpu_env``)."""
    env = gpu_env(code, model.with_suffix(".emu.so"), mock_driver)
    inputs, outputs = workdir / f"{model.stem}_in.npz", workdir / f"{model.stem}_out.npz"
    np.savez(inputs, **feed)
    done = subprocess.run([sys.executable, "-c", RUN_ON_GPU, str(model), str(inputs), str(outputs)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    if "MOCK_CUDA_KERNELS" in env:
        assert done.stderr.strip().splitlines()[-1].endswith(" 0 errors, 0 device"), done.stderr
    return dict(np.load(outputs))


MODELS = {"resnet18": ((1, 3, 32, 32), 1e-4), "crnn": ((1, 1, 32, 32), 1e-4), "unet_head": ((1, 3, 32, 32), 1e-4),
          "mlp": ((4, 64), 1e-5)}


# (weights symmetric or with stored offsets, int8 activations or f32, int4 or int8: each kernel path once)
@pytest.mark.parametrize("model,scheme", [("mlp", None), ("mlp", "w4a16-g32"), ("mlp", "w8a16-asym"), ("mlp", "w8a8"),
                                          ("mlp", "w4a8-g32-asym"), ("resnet18", None), ("crnn", None), ("unet_head", None)])
def test_kernels_assemble_and_match_the_cpu(model, scheme, workdir, mock_driver):
    """Every op as a kernel (convolutions, pooling, resizes, attention, layer norm, softmax, int4 and int8
    weights dequantized in the kernel, int8 activations): PTX that ptxas takes for sm_80 and sm_90, and
    outputs equal to ONNX Runtime's (FP32) or the CPU model's (quantized) within 1e-5 (MLP) or 1e-4
    (CNNs) of their range, run on a GPU where there is one and otherwise through the emulator."""
    shape, tolerance = MODELS[model]
    path = MLP if model == "mlp" else _cnn(model, workdir, shape)
    gpu_model = workdir / f"{model}_{scheme}_cuda.so"
    code = qc.compile(path, gpu_model, target="cuda:sm_80", scheme=scheme).device_code
    assert code.ptx.count(".entry") >= 5
    if shutil.which("ptxas") is not None:
        for chip in ("sm_80", "sm_90"):
            ptx = code.ptx if chip == "sm_80" else to_ptx(code.llvm_ir, GpuTarget(chip))
            assert f".target {chip}" in ptx and ptxas(ptx, chip) == "", ptxas(ptx, chip)
    feed = {"x": np.load(X) if model == "mlp" else np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    if scheme is None:  # FP32: ONNX Runtime's outputs
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        want = dict(zip((o.name for o in session.get_outputs()), session.run(None, feed)))
    else:  # the same quantization on the CPU
        cpu_model = workdir / f"{model}_{scheme}_cpu.so"
        qc.compile(path, cpu_model, scheme=scheme)
        want = qc.runtime.load(cpu_model).run(feed)
    got = run_on_gpu(gpu_model, code, feed, workdir, mock_driver)
    for name, value in want.items():
        assert np.abs(got[name] - value).max() <= tolerance * np.abs(value).max(), name


@pytest.mark.parametrize("scheme", ["w4a16-g128", "w8a8", "w8a7"])
def test_quantized_linear_kernels_match_the_cpu(scheme, workdir, mock_driver):
    """qc-gpu-linear's quantized kernels where every part of them works: K = 2048 (16 chunks of 128 k, two a warp, 8
    cells a loop step), 72 outputs (three panels, the last one partial), rows from a [2, 3, K] input,
    a bias; int4 weights with f32 activations and int8 weights with int8 (or 7-bit) activations (dp4a):
    equal to the CPU model's outputs within 1e-5 of their range."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Linear(2048, 72).eval()
    x = np.random.default_rng(1).standard_normal((2, 3, 2048)).astype(np.float32)
    args = dict(example_inputs=(torch.from_numpy(x),), input_names=["x"], scheme=scheme)
    gpu_model = workdir / f"linear_{scheme}_cuda.so"
    code = qc.compile(model, gpu_model, target="cuda:sm_80", **args).device_code
    assert ("dp4a" in code.ptx) == (scheme in ("w8a8", "w8a7")) and "bar.sync" in code.ptx
    qc.compile(model, workdir / f"linear_{scheme}_cpu.so", **args)
    want = qc.runtime.load(workdir / f"linear_{scheme}_cpu.so").run({"x": x})["output0"]
    got = run_on_gpu(gpu_model, code, {"x": x}, workdir, mock_driver)["output0"]
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def _math_model(path):
    """Element functions and row reductions over x [4, 1024] (ONNX, opset 17), one output each."""
    import onnx
    from onnx import TensorProto, helper

    nodes, outputs, inits = [], [], []
    for op in ("Sin", "Cos", "Exp", "Tanh", "Erf", "Sqrt", "Log", "Sigmoid", "Reciprocal"):
        nodes.append(helper.make_node(op, ["x"], [op.lower()]))
    for exponent in (2.0, 3.0, -1.0, 0.5, 1.5):
        name = f"pow{exponent:g}"
        inits.append(helper.make_tensor(f"{name}_e", TensorProto.FLOAT, [], [exponent]))
        nodes.append(helper.make_node("Pow", ["x", f"{name}_e"], [name]))
    for op in ("ReduceMax", "ReduceMin", "ReduceSum", "ReduceSumSquare"):
        inits.append(helper.make_tensor("last", TensorProto.INT64, [1], [-1])) if op == "ReduceMax" else None
        nodes.append(helper.make_node(op, ["x", "last"], [op.lower()], keepdims=1))
    nodes.append(helper.make_node("Softmax", ["x"], ["softmax"], axis=-1))
    outputs = [helper.make_tensor_value_info(n.output[0], TensorProto.FLOAT, None) for n in nodes]
    graph = helper.make_graph(nodes, "math", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 1024])],
                              outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def _reference(name: str, x: np.ndarray) -> np.ndarray:
    """Output ``name`` of _math_model in float64 (numpy, or math.erf)."""
    import math

    x = x.astype(np.float64)
    rows = dict(keepdims=True, axis=-1)
    with np.errstate(all="ignore"):
        if name.startswith("pow"):  # (C's powf: (-inf)^y = inf^y for y not an odd integer; numpy's is NaN)
            e = float(name[3:])
            return np.where((x == -np.inf) & (e % 2 != 1), np.power(-x, e), np.power(x, e))
        functions = {"sigmoid": lambda v: 1 / (1 + np.exp(-v)), "reciprocal": lambda v: 1 / v,
                     "erf": np.vectorize(math.erf), "reducemax": lambda v: v.max(**rows),
                     "reducemin": lambda v: v.min(**rows), "reducesum": lambda v: v.sum(**rows),
                     "reducesumsquare": lambda v: (v * v).sum(**rows),
                     "softmax": lambda v: np.exp(v - v.max(**rows)) / np.exp(v - v.max(**rows)).sum(**rows)}
        return functions[name](x) if name in functions else getattr(np, name)(x)


def test_math_and_row_reductions_match_numpy(workdir, mock_driver):
    """What a GPU has no libm for (sin and cos by Cephes' range reduction, powf, x^n by products, exp,
    erf, tanh) and row reductions (max, min, sums, softmax: qc-gpu-reduce's warp a row) on full-range
    inputs: zeros of both signs, +-inf, NaN, denormals, |x| up to 3000 (sin, cos), 1e-30 and 100 (exp
    over- and underflows): NaN and inf where float64 numpy has them, else within 2e-6 of |ref| + 1e-6
    (tanh: 1e-5 absolute; reductions: 2e-6 of the same reduction of |x|, + 1e-6). The row whose
    reductions meet NaN and inf is checked for those alone."""
    path = workdir / "math.onnx"
    _math_model(path)
    rng = np.random.default_rng(0)
    special = [0, -0.0, 1, -1, 2, -2, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 88, -88, 100, -100, 1e-40]
    x = np.concatenate([np.linspace(-10, 10, 1024), rng.standard_normal(1024) * 3, np.linspace(-3000, 3000, 1024),
                        np.tile(special, 64)]).astype(np.float32).reshape(4, 1024)
    gpu_model = workdir / "math_cuda.so"
    code = qc.compile(path, gpu_model, target="cuda:sm_80").device_code
    assert "shfl.sync.bfly" in code.ptx  # the reductions' kernels
    if shutil.which("ptxas") is not None:
        assert ptxas(code.ptx, "sm_80") == ""
    got = run_on_gpu(gpu_model, code, {"x": x}, workdir, mock_driver)
    for name, value in got.items():
        want = _reference(name, x)
        assert value.shape == want.shape, name
        if name.startswith("reduce") or name == "softmax":
            assert np.array_equal(np.isnan(value[:3]), np.isnan(want[:3])), name
            finite = np.isfinite(want[:3])
            bound = 2e-6 * _reference(name, np.abs(x[:3])) + 1e-6  # (sums: relative to the sum of the |terms|)
            assert (np.abs(value[:3] - want[:3]) <= bound)[finite].all(), name
            assert not np.isfinite(value[3]).all() and np.isnan(value[3]).any() == np.isnan(want[3]).any(), name
            continue
        want = want.astype(np.float32)  # (what a float result can hold: 1 / 1e-40 is inf)
        assert np.array_equal(np.isnan(value), np.isnan(want)), name
        assert np.array_equal(value[np.isinf(want)], want[np.isinf(want)]), name
        finite = np.isfinite(want)
        tolerance = 1e-5 if name == "tanh" else 2e-6 * np.abs(want[finite]) + 1e-6
        assert (np.abs(value[finite] - want[finite]) <= tolerance).all(), name


GENERATE_ON_GPU = """
import sys, numpy as np, qc
d = qc.runtime.load_decoder(sys.argv[1])
tokens = [int(t) for t in sys.argv[3].split(",")]
stepped = np.stack([d.feed([t]) for t in tokens])  # the decode entry, a token at a time
d.reset()
chunked = np.stack([d.feed(tokens[:20]), d.feed(tokens[20:])])  # prefill: a chunk and a padded one, then a padded one
np.savez(sys.argv[2], stepped=stepped, chunked=chunked, greedy=np.array(list(d.generate(tokens[:5], 8))))
"""


def test_precision_selection_for_a_gpu_target(workdir, mock_driver):
    """--scheme auto --budget-bits for --target cuda: the ILP chooses each layer's scheme with the bytes of the
    GPU's panels, the GPU build runs what it chose (equal to a CPU build given those schemes, within 1e-5 of
    the range), and a latency budget, which qc times on the CPU, is refused for a GPU target before any work."""
    x = np.load(X)
    gpu_model = workdir / "mlp_auto_cuda.so"
    result = qc.compile(MLP, gpu_model, target="cuda:sm_80", scheme="auto", budget_bits=7.0, calibration=[{"x": x}])
    chosen = {name: c.scheme for name, c in result.selection["solution"].choice.items()}
    assert set(chosen) == {"fc1", "fc2"} and all(s != "f32" for s in chosen.values())
    assert 8 * result.selection["solution"].bytes / (64 * 256 + 256 * 10) <= 7.0
    cpu_model = workdir / "mlp_auto_cpu.so"
    qc.compile(MLP, cpu_model, overrides={f"^{name}$": scheme for name, scheme in chosen.items()})
    want = qc.runtime.load(cpu_model).run({"x": x})["probs"]
    got = run_on_gpu(gpu_model, result.device_code, {"x": x}, workdir, mock_driver)["probs"]
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    with pytest.raises(qc.QCError, match="--budget-latency-ms times each layer's kernels on this machine's CPU"):
        qc.compile(MLP, workdir / "never.so", target="cuda", scheme="auto", budget_latency_ms=1.0)


def test_decoder_generates_on_the_gpu(stories, workdir, mock_driver):
    """stories260K (llama2.c's real tiny LLaMA) as a decoder (context 64, prefill chunks of 16) compiled
    for the GPU: rotary embeddings (sin, cos), RMS norms (x.pow(2): products), softmax rows
    (qc-gpu-reduce), the linears (qc-gpu-linear). Its logits at every position, through the decode entry
    and through prefill chunks, equal PyTorch's full-sequence model's within 1e-4 of their range, and
    greedy generation picks PyTorch's tokens; the KV cache and the steps' outputs live in CUDA managed memory
    (qc_model_alloc): every step reads and writes them in place and its new entries go into the cache on the
    device (qc_model_copy_rows), which the stand-in driver counts."""
    import torch
    from qc.compiler.decoder import Decoder
    from conftest import shared_model, torch_logits

    _, model = stories
    gpu_model = workdir / "stories_dec_cuda.so"
    code = qc.compile(Decoder.from_llama2c(shared_model("stories260K.bin"), 64, 16), gpu_model,
                      target="cuda:sm_80").device_code
    tokens = [1] + np.random.default_rng(0).integers(0, 512, 29).tolist()
    env = gpu_env(code, gpu_model.with_suffix(".emu.so"), mock_driver)
    out = workdir / "stories_dec_gpu.npz"
    done = subprocess.run([sys.executable, "-c", GENERATE_ON_GPU, str(gpu_model), str(out), ",".join(map(str, tokens))],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    if "MOCK_CUDA_KERNELS" in env:
        report = done.stderr.strip().splitlines()[-1]
        assert report.endswith(" 0 errors, 0 device"), done.stderr
        # steps: 30 decode, 3 prefill chunks, the generation's prefill and 7 decode; each reads its two cache
        # inputs and writes its three outputs in managed memory, and two copies on the device put the new keys and
        # values into the cache
        steps = 30 + 3 + 8
        assert f" {2 * steps} copies, " in report and f" {5 * steps} managed," in report, report
    got = dict(np.load(out))
    ref = torch_logits(model, tokens)
    scale = np.abs(ref).max()
    assert np.abs(got["stepped"] - ref).max() <= 1e-4 * scale
    assert np.abs(got["chunked"] - ref[[19, 29]]).max() <= 1e-4 * scale
    greedy = tokens[:5]
    with torch.no_grad():
        for _ in range(8):
            greedy.append(int(model(torch.tensor([greedy]))[0, -1].argmax()))
    assert got["greedy"].tolist() == greedy[5:]


STEP_LOGITS = """
import sys, numpy as np, qc
d = qc.runtime.load_decoder(sys.argv[1])
np.save(sys.argv[2], np.stack([d.feed([int(t)]) for t in sys.argv[3].split(",")]))
"""


def test_decode_attention_kernel_over_an_int8_cache(workdir, mock_driver):
    """The decode step's fused attention kernel (qc-gpu-attention: only the cache entries before pos, a block
    per KV head and query) over an int8 cache (codes widened as read, times each position's scale; a float16
    cache takes the same path with extf, a float32 one is test_decoder_generates_on_the_gpu's):
    stories260K's logits at 24 positions equal the CPU decoder's with the same cache within 1e-3 of their
    range."""
    cache = "int8"
    from qc.compiler.decoder import Decoder
    from conftest import shared_model

    decoder = Decoder.from_llama2c(shared_model("stories260K.bin"), 32, 16, kv_cache=cache)
    gpu_model, cpu_model = workdir / f"stories_{cache}_cuda.so", workdir / f"stories_{cache}_cpu.so"
    code = qc.compile(decoder, gpu_model, target="cuda:sm_80").device_code
    assert code.ptx.count(".shared .align 4 .b8") >= 2 * 5  # each layer's kernel: its two workgroup buffers
    qc.compile(decoder, cpu_model)
    tokens = ",".join(map(str, [1] + np.random.default_rng(1).integers(0, 512, 23).tolist()))
    env = gpu_env(code, gpu_model.with_suffix(".emu.so"), mock_driver)
    logits = {}
    for name, model, run_env in (("gpu", gpu_model, env), ("cpu", cpu_model, None)):
        out = workdir / f"stories_{cache}_{name}.npy"
        done = subprocess.run([sys.executable, "-c", STEP_LOGITS, str(model), str(out), tokens], env=run_env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        logits[name] = np.load(out)
    # (1e-3: an entry whose f32 value differs in its last bits between the builds may round to the neighbouring
    # float16 or int8 code, and later positions read it; with a float32 cache the builds agree within 1e-6)
    assert np.abs(logits["gpu"] - logits["cpu"]).max() <= 1e-3 * np.abs(logits["cpu"]).max()


def test_host_side_against_a_stand_in_driver(gpu_mlp, mock_driver, workdir):
    """The library loads its kernels once (one module), finds each by name, launches them all with a
    valid grid on one stream without waiting between them, uploads the weights, keeps its buffers between
    runs (the second run allocates nothing), and copies the outputs back: run twice, no driver error."""
    env = {**os.environ, "LD_LIBRARY_PATH": str(mock_driver)}
    kernels = gpu_mlp.device_code.ptx.count(".entry")
    ir_file = workdir / "mlp_cuda.ll"  # --emit nvvm: the LLVM IR the PTX is made from
    qc.compile(MLP, ir_file, target="cuda:sm_80", emit="nvvm")
    assert ir_file.read_text() == gpu_mlp.device_code.llvm_ir and ir_file.read_text().count("define ptx_kernel") == kernels
    script = ("import sys, numpy as np, qc\n"
              f"m = qc.runtime.load({str(gpu_mlp.output)!r})\n"
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
    # each run's kernels queued on one stream: waited for at the function's end and by the glue, not per launch
    assert counts == {"modules": 1, "launches": 2 * kernels, "syncs": 2 * 2, "copies": 0,
                      "allocations": counts["allocations"], "managed": 0, "errors": 0, "device": 0}
    # weights + input + output + the intermediates of one run; the second run made none
    assert 3 <= counts["allocations"] <= 3 + kernels


DEVICE_C = r"""
#include <stdio.h>
#include "qc/runtime.h"
int main(int argc, char **argv) {
  for (int i = 2; i < argc; ++i) {  /* each device in turn, one process */
    qc_model *m = NULL;
    qc_status s = qc_model_open_on(argv[1], NULL, NULL, argv[i], &m);
    printf("%s: %s %s %s\n", argv[i], qc_status_name(s), m ? qc_model_device(m) : "-", s ? qc_last_error() : "");
    qc_model_free(m);
  }
  return 0;
}
"""


def test_c_api_and_qc_run_take_a_device(gpu_mlp, mock_driver, workdir):
    """qc_model_open_on / qc.runtime.load / qc-run --device: "cuda:<ordinal>" opens that device (the
    stand-in driver reports which); a device that does not exist, a CPU device for a GPU model, a
    second device in one process and a malformed name are errors that say so."""
    env = {**os.environ, "LD_LIBRARY_PATH": str(mock_driver), "MOCK_CUDA_DEVICES": "2"}
    runtime = os.path.join(REPO, "runtime")
    exe = workdir / "device_c"
    (workdir / "device.c").write_text(DEVICE_C)
    subprocess.run(["cc", "-O1", "-std=c11", "-pthread", f"-I{runtime}/include", f"-I{runtime}", str(workdir / "device.c"),
                    f"{runtime}/qc_runtime.c", f"{runtime}/qc_api.c", "-o", str(exe), "-ldl", "-lm"], check=True)
    lib = str(gpu_mlp.output)
    done = subprocess.run([str(exe), lib, "gpu", "cpu", "cuda:1", "cuda:0", "cuda"], env=env, capture_output=True,
                          text=True)
    lines = done.stdout.splitlines()
    assert lines[0] == "gpu: invalid argument - device 'gpu': give cpu, cuda or cuda:<ordinal>", done.stdout
    assert lines[1].startswith("cpu: invalid argument - model 'mlp_cuda' was compiled for cuda:sm_80, not for cpu")
    assert lines[2] == "cuda:1: ok cuda:sm_80 ", done.stdout
    assert lines[3].startswith("cuda:0: unsupported - CUDA device 0 asked for, but this process runs its GPU models "
                               "on device 1"), done.stdout
    assert lines[4] == "cuda: ok cuda:sm_80 " and done.stderr.strip().endswith("0 errors, 1 device"), done.stderr
    run = [sys.executable, "-m", "qc.tools.qc_run", lib, "--input", f"x={X}", "--output-dir", str(workdir)]
    done = subprocess.run([*run, "--device", "cuda:1"], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr.strip().endswith("0 errors, 1 device"), done.stderr
    done = subprocess.run([*run, "--device", "cuda:2"], env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "no CUDA device 2 (2 found" in done.stderr and "Traceback" not in done.stderr


STATIC_C = r"""
#include <stdio.h>
#include "mlp_gpu.h"
int main(void) {
  float x[4 * 64], probs[4 * 10];
  FILE *f = fopen("x.bin", "rb");
  if (!f || fread(x, sizeof x, 1, f) != 1) return 2;
  fclose(f);
  qc_model *m = NULL;
  float *shared = NULL;
  if (qc_model_load(mlp_gpu_model(), NULL, &m) || !(shared = qc_model_alloc(m, sizeof x)) || mlp_gpu_run(m, x, probs)) {
    fprintf(stderr, "%s\n", qc_last_error());
    return 1;
  }
  for (int i = 0; i < 4 * 64; ++i) shared[i] = x[i];  /* the same input from managed memory: read in place */
  float again[4 * 10];
  if (mlp_gpu_run(m, shared, again)) return 1;
  for (int i = 0; i < 40; ++i) printf("%.9g %.9g\n", probs[i], again[i]);
  qc_model_free_buffer(m, shared);
  qc_model_free(m);
  return 0;
}
"""


def test_static_gpu_model_links_into_a_program(mock_driver, workdir):
    """--target cuda --emit static (what qc_add_model builds by default): an archive with the weights inside,
    linked into a C program that loads it with its mlp_gpu_model() and runs it from an input on its stack
    and from one in qc_model_alloc's memory (read in place): both outputs equal ONNX Runtime's within 1e-5 of
    their range."""
    out = workdir / "static_gpu"
    out.mkdir(exist_ok=True)
    code = qc.compile(MLP, out / "libmlp_gpu.a", target="cuda:sm_80", emit="static").device_code
    (out / "app.c").write_text(STATIC_C)
    runtime = os.path.join(REPO, "runtime")
    subprocess.run(["cc", "-O1", "-std=c11", "-pthread", f"-I{runtime}/include", f"-I{runtime}", f"-I{out}",
                    str(out / "app.c"), str(out / "libmlp_gpu.a"), f"{runtime}/qc_runtime.c", f"{runtime}/qc_api.c",
                    "-o", str(out / "app"), "-ldl", "-lm"], check=True)
    x = np.load(X)
    x.tofile(out / "x.bin")
    env = gpu_env(code, out / "mlp_gpu.emu.so", mock_driver)
    done = subprocess.run([str(out / "app")], cwd=out, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    if "MOCK_CUDA_KERNELS" in env:
        assert done.stderr.strip().endswith(" 1 managed, 0 errors, 0 device"), done.stderr
    got = np.array([line.split() for line in done.stdout.split("\n") if line], dtype=np.float32)
    want = ort.InferenceSession(MLP, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0].reshape(-1)
    for column in got.T:
        assert np.abs(column - want).max() <= 1e-5 * np.abs(want).max()


CHECKED_OP = """
func.func @main(%x: tensor<64xf32>) -> tensor<64xf32> {
  %e = tensor.empty() : tensor<64xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>],
                       iterator_types = ["parallel"]} ins(%x : tensor<64xf32>) outs(%e : tensor<64xf32>) {
  ^bb0(%in: f32, %out: f32):
    %z = arith.constant 0.0 : f32
    %ok = arith.cmpf oge, %in, %z : f32
    cf.assert %ok, "x must not be negative"
    linalg.yield %in : f32
  } -> tensor<64xf32>
  return %r : tensor<64xf32>
}
"""


def test_clear_errors_without_a_gpu(gpu_mlp, mock_driver, tmp_path):
    """No driver: the load says the model needs one; a driver without devices: says that; a CPU load of
    a GPU model and GPU options that cannot be: said before any work; so is a check of every element
    that a kernel could not report."""
    run = [sys.executable, "-m", "qc.tools.qc_run", str(gpu_mlp.output), "--input", f"x={X}", "--output-dir", str(tmp_path)]
    if _has_gpu() is not None:  # (the real driver, where there is one, is what this machine has)
        done = subprocess.run(run, env={**os.environ, "LD_LIBRARY_PATH": str(tmp_path)}, capture_output=True,
                              text=True)
        assert done.returncode == 1 and "CUDA driver (libcuda.so.1) cannot be loaded" in done.stderr
    done = subprocess.run(run, env={**os.environ, "LD_LIBRARY_PATH": str(mock_driver), "MOCK_CUDA_DEVICES": "0"},
                          capture_output=True, text=True)
    assert done.returncode == 1 and "no CUDA device 0 (0 found" in done.stderr and "Traceback" not in done.stderr
    with pytest.raises(qc.QCError, match="compiled for cuda:sm_80, not for cpu"):
        qc.runtime.load(gpu_mlp.output, device="cpu")
    with pytest.raises(qc.QCError, match="give cpu, cuda or cuda:<chip>"):
        qc.compile(MLP, tmp_path / "x.so", target="cuda:sm_99")
    with pytest.raises(qc.QCError, match="--emit ptx is for GPU models"):
        qc.compile(MLP, tmp_path / "x.ptx", emit="ptx")
    with pytest.raises(qc.QCError, match="--emit nvvm is for GPU models"):
        qc.compile(MLP, tmp_path / "x.ll", emit="nvvm")
    checked = tmp_path / "checked.mlir"  # an op that checks each element (the CPU build fails the run instead)
    checked.write_text(CHECKED_OP)
    done = subprocess.run([sys.executable, "-m", "qc.tools.qc_compile", str(checked), "-o", str(tmp_path / "c.so"),
                           "--target", "cuda"], capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "a run-time check inside an op cannot fail a GPU run yet (the CPU target can): " in done.stderr
    assert "x must not be negative" in done.stderr
