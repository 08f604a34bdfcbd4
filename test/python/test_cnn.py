"""Real CNN architectures (plain PyTorch, random weights) compiled by qc match ONNX Runtime.

The architectures are in compiler/models/cnn.py; they run here at reduced input sizes (the same
layers, fewer pixels) so the suite stays fast.  Speed against ORT is bench/bench_cnn.py's job.
"""

import json

import numpy as np
import onnxruntime as ort
import pytest

import qc
from qc.compiler.models import cnn

SMALL = {"mobilenetv3_small": (1, 3, 96, 96), "resnet18": (1, 3, 64, 64), "unet_head": (1, 3, 64, 64),
         "crnn": (1, 1, 32, 64)}


def _ort(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name,opset", [("mobilenetv3_small", 17), ("resnet18", 17), ("unet_head", 17), ("crnn", 17),
                                        ("resnet18", 11), ("unet_head", 11)])
def test_cnn_matches_ort(name, opset, workdir):
    """Depthwise and strided convs, hard-swish, squeeze-excite, residuals, ConvTranspose, nearest and
    bilinear Resize, a transformer over conv features: within 1e-4 of ORT relative to the output's
    range, at opset 11 and 17 (an opset-11 model is upgraded first: torch-mlir converts MaxPool from
    opset 12 on).  The CRNN has no opset-11 export: torch.onnx cannot write its unflatten there."""
    path = workdir / f"{name}_{opset}.onnx"
    shape = cnn.export_onnx(name, path, opset, SMALL[name])
    qc.compile(path, path.with_suffix(".so"))
    x = np.random.default_rng(opset).standard_normal(shape).astype(np.float32)
    got = qc.runtime.load(path.with_suffix(".so")).run({"x": x})["y"]
    ref = _ort(path).run(None, {"x": x})[0]
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()


def test_quantized_convs_are_layers(workdir):
    """Convolutions with constant filters become qc.linear layers: at w8a8 every ResNet-18 conv whose
    K suits the integer dot product is quantized (the report lists each with its bytes), the rest say
    why, and the output stays close to FP32."""
    path = workdir / "resnet18_q.onnx"
    shape = cnn.export_onnx("resnet18", path, 17, SMALL["resnet18"])
    out = workdir / "resnet18_w8a8.so"
    result = qc.compile(path, out, scheme="w8a8", report=workdir / "resnet18_w8a8.json")
    layers = json.loads((workdir / "resnet18_w8a8.json").read_text())["layers"]
    convs = [layer for name, layer in layers.items() if name.endswith("_Conv")]
    assert len(convs) == 20  # stem, 16 block convs, 3 downsamples
    quantized = [layer for layer in convs if layer["scheme"] == "w8a8"]
    assert len(quantized) == 19 and all(layer["bytes"] < layer["bytes_f32"] / 3 for layer in quantized)
    assert any("stem" in w and "K=147" in w for w in result.warnings)  # 3 x 7 x 7: not a multiple of 4
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    got = qc.runtime.load(out).run({"x": x})["y"]
    ref = _ort(path).run(None, {"x": x})[0]
    cosine = float((got * ref).sum() / np.linalg.norm(got) / np.linalg.norm(ref))
    assert cosine >= 0.999


def test_conv_transpose_phases_match_ort(workdir):
    """A strided ConvTranspose runs as stride x stride phase convolutions on its input, not as a conv
    over a zero-upsampled copy: kernels smaller than, equal to and larger than the stride, padding,
    output padding, a 1x1 kernel whose odd phases only get the bias (one model, one output each)."""
    import torch

    cases = [(8, 4, 2, 2, 0, 0), (8, 4, 3, 2, 1, 1), (8, 5, 4, 2, 1, 0), (8, 3, 3, 3, 0, 0), (8, 7, 5, 2, 2, 1),
             (8, 4, 1, 2, 0, 0)]

    class Transposed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList(torch.nn.ConvTranspose2d(cin, cout, k, stride=s, padding=p,
                                                                       output_padding=op)
                                              for cin, cout, k, s, p, op in cases)

        def forward(self, x):
            return tuple(layer(x) for layer in self.layers)

    torch.manual_seed(0)
    x = torch.randn(1, 8, 7, 6)
    path = workdir / "conv_transpose.onnx"
    names = [f"y{i}" for i in range(len(cases))]
    torch.onnx.export(Transposed().eval(), (x,), str(path), input_names=["x"], output_names=names, dynamo=False,
                      opset_version=17)
    qc.compile(path, path.with_suffix(".so"))
    got = qc.runtime.load(path.with_suffix(".so")).run({"x": x.numpy()})
    for name, ref in zip(names, _ort(path).run(None, {"x": x.numpy()})):
        assert got[name].shape == ref.shape, name
        assert np.abs(got[name] - ref).max() <= 1e-5 * np.abs(ref).max(), name


@pytest.mark.parametrize("winograd,cpu,tolerance", [(4, None, 5e-5), (2, None, 1e-5), (0, None, 1e-5),
                                                    (4, "haswell", 5e-5), (2, "x86-64", 1e-5)])
def test_winograd_convs_match_ort(winograd, cpu, tolerance, workdir):
    """f32 3x3 stride-1 convolutions as Winograd F(4x4, 3x3) / F(2x2, 3x3) (qc-winograd) or direct
    (--winograd 0), at each vector width this host runs (16, 8 and 4 lanes): a batch of 2, odd 13x13
    images (the last tiles hang over and are cut), channel counts that leave a masked vector (24,
    40), with and without bias, a dilated conv that stays direct; inputs of magnitude up to ~100.
    The report names each conv's algorithm and stores the transformed filter's bytes."""
    import torch

    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Conv2d(24, 40, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(40, 32, 3, padding=1, bias=False),
                                torch.nn.Conv2d(32, 16, 3, padding=2, dilation=2)).eval()
    path = workdir / "winograd.onnx"
    if not path.exists():
        torch.onnx.export(model, (torch.randn(2, 24, 13, 13),), str(path), input_names=["x"], output_names=["y"],
                          dynamo=False, opset_version=17)
    out = workdir / f"winograd_{winograd}_{cpu}.so"
    report = out.with_suffix(".json")
    qc.compile(path, out, winograd=winograd, target_cpu=cpu, report=report)
    x = (30 * np.random.default_rng(winograd).standard_normal((2, 24, 13, 13))).astype(np.float32)
    got = qc.runtime.load(out).run({"x": x})["y"]
    ref = _ort(path).run(None, {"x": x})[0]
    assert np.abs(got - ref).max() <= tolerance * np.abs(ref).max()
    layers = json.loads(report.read_text())["layers"]
    convs = {name: layer["conv"] for name, layer in layers.items() if "conv" in layer}
    if winograd:  # (the dilated conv is not a 3x3 stride-1 window: nothing to say of it)
        assert sorted(convs.values()) == [f"winograd F({winograd}x{winograd}, 3x3)"] * 2
        stored = sorted(layers[name]["bytes"] for name in convs)  # the filters as transformed: a^2 x C x F floats
        assert stored == sorted(4 * (winograd + 2) ** 2 * c * f for c, f in ((24, 40), (40, 32)))
    else:
        assert not convs


def test_latency_budget_keeps_convs_direct(workdir):
    """Under a latency budget the selection times each layer as a linear of its shape, which a Winograd
    conv is not: the compile keeps the convs direct and says so; a byte budget counts their transformed
    filters (4 x 36/9 the f32 bytes at F(4x4)) and keeps Winograd."""
    path = workdir / "winograd.onnx"
    if not path.exists():
        test_winograd_convs_match_ort(4, None, 5e-5, workdir)
    calib = [{"x": np.random.default_rng(i).standard_normal((2, 24, 13, 13)).astype(np.float32)} for i in range(2)]
    common = dict(scheme="auto", calibration=calib, sensitivity="proxy", candidates=["f32", "w8a16"])
    timed = qc.compile(path, workdir / "budget_ms.so", budget_latency_ms=1e4, **common)
    assert any("stay direct under a latency budget" in w for w in timed.warnings)
    sized = qc.compile(path, workdir / "budget_mb.so", budget_mb=1.0, report=workdir / "budget_mb.json", **common)
    assert not any("stay direct" in w for w in sized.warnings)
    layers = json.loads((workdir / "budget_mb.json").read_text())["layers"]
    filters = {36 * 4 * 24 * 40, 36 * 4 * 40 * 32}  # F(4x4): 6 x 6 floats per (input, output) channel pair
    f32_convs = [e for e in layers.values() if e["scheme"] == "f32" and "conv" in e]
    assert f32_convs and all(e["conv"].startswith("winograd") and e["bytes"] in filters for e in f32_convs)
    assert sized.selection["solution"].bytes <= 1e6


def _im2col(x: np.ndarray, k: int, stride: int, pad: int, dilation: int) -> np.ndarray:
    """[N, C, H, W] -> rows [N * OH * OW, C * K * K] (the filter's flattening order)."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = ((s + 2 * pad - dilation * (k - 1) - 1) // stride + 1 for s in (h, w))
    cols = np.stack([xp[:, :, i * dilation:i * dilation + stride * oh:stride, j * dilation:j * dilation + stride * ow:stride]
                     for i in range(k) for j in range(k)], axis=2)  # [N, C, K*K, OH, OW]
    return cols.reshape(n, c * k * k, oh * ow).transpose(0, 2, 1).reshape(n * oh * ow, c * k * k), (oh, ow)


@pytest.mark.parametrize("cpu", [None, "haswell"])
def test_quantized_conv_rows_match_numpy(cpu, workdir):
    """w8a8 convolutions quantize each im2col row (one output pixel's window) with its own scale; qc
    reads those rows from the image instead of copying f32 columns (each row's maximum pools its
    pixels' maxima over the window), which must not change a bit of the arithmetic: 3x3 with unit
    stride (the window's pixels one run per row), stride 2, dilation 2 and a 1x1 stride-2 conv, each
    against numpy's per-row quantization of explicit columns times the RTN weights, exact integer
    sums.  Inputs span 1e-3..1e2 across pixels, so the row scales differ by 1e5."""
    import torch

    from qc.core.quant import parse_scheme, quantize_rtn
    from test_quant import quantize_activations

    cases = [(16, 24, 3, 1, 1, 1), (16, 24, 3, 2, 1, 1), (16, 8, 3, 1, 2, 2), (16, 32, 1, 2, 0, 1)]
    torch.manual_seed(3)
    convs = [torch.nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d).eval() for cin, cout, k, s, p, d in cases]
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((1, 16, 11, 9)) * 10.0 ** rng.uniform(-3, 2, (1, 1, 11, 9))).astype(np.float32)
    for i, (conv, (cin, cout, k, s, p, d)) in enumerate(zip(convs, cases)):
        path = workdir / f"qconv{i}.onnx"
        torch.onnx.export(conv, (torch.from_numpy(x),), str(path), input_names=["x"], output_names=["y"], dynamo=False,
                          opset_version=17)
        out = workdir / f"qconv{i}_{cpu}.so"
        qc.compile(path, out, scheme="w8a8", target_cpu=cpu, report=out.with_suffix(".json"))
        assert [layer["scheme"] for layer in json.loads(out.with_suffix(".json").read_text())["layers"].values()] == ["w8a8"]
        got = qc.runtime.load(out).run({"x": x})["y"]
        rows, (oh, ow) = _im2col(x, k, s, p, d)
        qw = quantize_rtn(conv.weight.detach().numpy().reshape(cout, -1), parse_scheme("w8a8"))
        w = (qw.q.astype(np.float64) - qw.zero_point.reshape(cout, 1)) * qw.scale.reshape(cout, 1)
        exact = quantize_activations(rows) @ w.T + conv.bias.detach().numpy()
        ref = exact.reshape(1, oh, ow, cout).transpose(0, 3, 1, 2)
        assert got.shape == ref.shape, i
        assert np.abs(got - ref).max() <= 2e-6 * np.abs(ref).max(), i


@pytest.mark.parametrize("cpu", [None, "haswell"])
def test_depthwise_padding_and_activations_fused(cpu, workdir, monkeypatch):
    """Depthwise convs read their zero-padded input in place (the padded copy is not made) and the
    activation before them folds into the 1x1 conv that feeds them, the one after into the depthwise
    kernel, the bias into its start: 3x3 / 5x5 / 7x7 windows, strides 1 and 2, dilation 2, no padding,
    a window larger than its 3x4 image (no interior pixel), odd image sizes, ReLU, hard-swish, ReLU6
    and none, 24 channels (a masked vector at 16 lanes); inputs of magnitude up to ~100.  Within 1e-4
    of PyTorch relative to each output's range, on this host's vector width and haswell's."""
    import torch

    from qc.passes import microkernels

    acts = [torch.nn.ReLU, torch.nn.Hardswish, torch.nn.ReLU6, torch.nn.Identity]
    cases = [(3, 1, 1, 1, 13, 11), (3, 2, 1, 1, 13, 11), (5, 1, 2, 1, 9, 10), (5, 2, 2, 1, 9, 10), (3, 1, 2, 2, 8, 7),
             (3, 2, 0, 1, 9, 9), (7, 1, 3, 1, 3, 4)]
    torch.manual_seed(5)
    found = []
    real = microkernels.implicit_padding
    monkeypatch.setattr(microkernels, "implicit_padding", lambda op: found.append(real(op)) or found[-1])
    for i, (k, s, p, d, h, w) in enumerate(cases):
        model = torch.nn.Sequential(torch.nn.Conv2d(16, 24, 1), acts[i % 4](),
                                    torch.nn.Conv2d(24, 24, k, stride=s, padding=p, dilation=d, groups=24),
                                    acts[(i + 1) % 4]()).eval()
        x = (30 * torch.randn(1, 16, h, w)).float()
        path = workdir / f"dw{i}.onnx"
        torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=False, opset_version=17)
        out = workdir / f"dw{i}_{cpu}.so"
        qc.compile(path, out, target_cpu=cpu)
        got = qc.runtime.load(out).run({"x": x.numpy()})["y"]
        with torch.no_grad():
            ref = model(x).numpy()
        assert got.shape == ref.shape, i
        assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max(), i
    # every padded conv read its input in place (the one without padding has no padded copy)
    assert sum(f is not None for f in found) == sum(p > 0 for _, _, p, _, _, _ in cases)
