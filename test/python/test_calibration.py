"""Calibration, statistics files, scheme overrides and the report, through qc-compile."""

import json

import numpy as np
import pytest

import qc
from conftest import EXAMPLE, run, run_example

from qc.core.calibration import Statistics
from qc.compiler.codegen import Target

# Layers take the ONNX node names: fc1, fc2.


@pytest.fixture(scope="module")
def calib(workdir):
    x = np.random.default_rng(7).standard_normal((6, 4, 64)).astype(np.float32)
    x[:, :, 5] *= 30  # an outlier channel
    np.savez(workdir / "calib.npz", x=x)
    return workdir / "calib.npz", x


@pytest.fixture(scope="module")
def gptq_build(workdir, calib):
    path, _ = calib
    out = workdir / "mlp_gptq.so"
    proc = run("qc-compile", EXAMPLE, "-o", out, "--scheme", "w4a16-g32", "--method", "gptq", "--calib", path,
               "--save-stats", workdir / "stats.npz", "--report", workdir / "report.md")
    assert proc.returncode == 0, proc.stderr
    assert "calibrating" in proc.stderr  # progress is shown
    return out


def test_statistics_are_those_of_the_layer_inputs(gptq_build, workdir, calib):
    _, x = calib
    stats = Statistics.load(workdir / "stats.npz")
    assert set(stats) == {"fc1", "fc2"}
    first = stats["fc1"]  # its input is the model input
    rows = x.reshape(-1, 64)
    assert first.rows == len(rows)
    np.testing.assert_allclose(first.absmax, np.abs(rows).max(0))
    np.testing.assert_allclose(first.minimum, rows.min(0))
    np.testing.assert_allclose(first.absmean, np.abs(rows).mean(0), rtol=1e-5)
    np.testing.assert_allclose(first.hessian, rows.T.astype(np.float64) @ rows, rtol=1e-5)
    assert first.histogram.sum() == rows.size - np.count_nonzero(rows == 0)
    second = stats["fc2"]  # relu(x @ w1 + b1)
    assert second.hessian.shape == (256, 256) and second.minimum.min() >= 0


def test_quantized_model_is_close_to_fp32_and_reported(gptq_build, workdir):
    got, ref = run_example(gptq_build, workdir, "outq", seed=8)
    assert np.abs(got - ref).max() < 0.05
    report = (workdir / "report.md").read_text()
    assert "| fc1 | w4a16-g32 | gptq | f32 |  | 256x64 |" in report
    assert "| fc2 | w4a16-g32 | gptq | f32 |  | 10x256 |" in report
    assert "smaller" in report
    png = (workdir / "report.png").read_bytes()  # the same table as a plot, next to it
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_f16_scheme_halves_weights(workdir):
    proc = run("qc-compile", EXAMPLE, "-o", workdir / "mlp_f16.so", "--scheme", "f16", "--report", workdir / "f16.json")
    assert proc.returncode == 0, proc.stderr
    layers = json.loads((workdir / "f16.json").read_text())["layers"]
    assert layers["fc1"]["scheme"] == "f16" and layers["fc1"]["bytes"] == 256 * 64 * 2
    assert 0 < layers["fc1"]["weight_rel_error"] < 1e-3
    got, ref = run_example(workdir / "mlp_f16.so", workdir, "outf16", seed=9)
    assert np.abs(got - ref).max() < 1e-3


@pytest.mark.parametrize("form", ["json", "yaml"])
def test_saved_statistics_and_overrides(gptq_build, workdir, form):
    overrides = workdir / f"overrides.{form}"
    overrides.write_text(json.dumps({"fc2": "w8a16", "fc[1-9]": "w4a16-g64"}) if form == "json"
                         else "# layers kept at 8 bits\nfc2: w8a16\n'fc[1-9]': w4a16-g64\n")
    proc = run("qc-compile", EXAMPLE, "-o", workdir / f"mlp_awq_{form}.so", "--scheme", "w4a16-g64", "--method", "awq",
               "--stats", workdir / "stats.npz", "--scheme-overrides", overrides,
               "--report", workdir / "report.json")
    assert proc.returncode == 0, proc.stderr
    layers = json.loads((workdir / "report.json").read_text())["layers"]
    assert layers["fc1"]["scheme"] == "w4a16-g64" and layers["fc1"]["method"] == "awq"
    rows = -(-10 // Target.of().panel_width) * Target.of().panel_width  # fc2's 10 outputs fill one panel
    # int8 panels, an f32 scale per row, and AWQ's f32 input factors
    assert layers["fc2"]["scheme"] == "w8a16" and layers["fc2"]["bytes"] == rows * 256 + rows * 4 + 256 * 4
    assert 0 < layers["fc1"]["output_rel_error"] < layers["fc1"]["weight_rel_error"] * 10


def test_gptq_options_reach_the_quantizer(gptq_build, workdir):
    """--act-order and --damp change GPTQ's integers (so its errors) and the report says act-order."""
    errors = {}
    for tag, extra in (("plain", []), ("ordered", ["--act-order", "--damp", "0.05"])):
        proc = run("qc-compile", EXAMPLE, "-o", workdir / f"mlp_gptq_{tag}.so", "--scheme", "w4a16-g32",
                   "--method", "gptq", "--stats", workdir / "stats.npz", "--report", workdir / f"{tag}.json", *extra)
        assert proc.returncode == 0, proc.stderr
        layers = json.loads((workdir / f"{tag}.json").read_text())["layers"]
        errors[tag] = layers["fc1"]["output_rel_error"]
        assert layers["fc1"]["method"] == ("gptq act-order" if extra else "gptq")
        got, ref = run_example(workdir / f"mlp_gptq_{tag}.so", workdir, f"out_{tag}", seed=8)
        assert np.abs(got - ref).max() < 0.1  # int4 on random weights: ~0.05 either way
    assert errors["plain"] != errors["ordered"] and max(errors.values()) < 0.1


@pytest.mark.parametrize("args,message", [
    (["--scheme", "w3a16"], "unknown scheme 'w3a16'"),
    (["--scheme", "w4a16-g32", "--method", "gptq"], "method=gptq needs calibration statistics"),
    (["--scheme", "w8a16", "--calib", "{missing}"], "calibration data: '{missing}': no such file"),
    (["--scheme", "w8a16", "--calib", "{text}"], "calibration data: cannot read '{text}': it is not a NumPy .npy/.npz file"),
    (["--scheme", "w8a16", "--calib", "{wrong}"], "lacks input(s) ['x']"),
    (["--scheme", "w8a16", "--scheme-overrides", "{bad_json}"], "cannot read scheme overrides"),
    (["--scheme", "w8a16", "--scheme-overrides", "{bad_yaml}"], "cannot read scheme overrides"),
    (["--scheme", "w8a16", "--scheme-overrides", "{list_yaml}"], "must be a YAML mapping of regex: scheme pairs"),
    (["--scheme", "w8a16", "--report", "{no_dir}/r.md"], "cannot write report"),
    (["--scheme", "w8a16", "--act-order"], "act-order and damp are options of method gptq, not rtn"),
    (["--scheme", "w4a16-g32", "--method", "gptq", "--damp", "-1"], "damp must be a non-negative fraction"),
    (["--calib", "{calib}", "--save-stats", "{no_dir}/s.npz"], "cannot write statistics"),
])
def test_bad_quantization_input(args, message, workdir, calib):
    np.savez(workdir / "wrong.npz", y=np.zeros((2, 4, 64), np.float32))
    (workdir / "bad.json").write_text("{not json")
    (workdir / "bad.yaml").write_text("fc2: [w8a16\n")
    (workdir / "list.yml").write_text("- fc2\n- w8a16\n")
    (workdir / "calib.txt").write_text("x = 1, 2, 3\n")
    paths = {"missing": workdir / "missing.npz", "wrong": workdir / "wrong.npz", "bad_json": workdir / "bad.json",
             "text": workdir / "calib.txt", "bad_yaml": workdir / "bad.yaml", "list_yaml": workdir / "list.yml",
             "no_dir": workdir / "no" / "such" / "dir", "calib": calib[0]}
    proc = run("qc-compile", EXAMPLE, "-o", workdir / "bad.so", *[a.format(**paths) for a in args])
    assert proc.returncode == 1
    assert message.format(**paths) in proc.stderr and "Traceback" not in proc.stderr


def test_pytorch_calibration_names_the_inputs(workdir):
    """A PyTorch module's inputs are input0, ... unless input_names= names them: calibration samples
    keyed by the Python argument's name are an error that says so, and input_names makes them work."""
    import torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU())
    x = torch.randn(4, 64)
    samples = [{"x": x.numpy()}]
    with pytest.raises(qc.QCError, match=r"has inputs \['x'\], the model takes \['input0'\] \(a PyTorch module's "
                                         r"inputs are input0, input1, ... unless input_names= names them\)"):
        qc.compile(module, workdir / "unnamed.so", example_inputs=(x,), scheme="w8a8", calibration=samples)
    qc.compile(module, workdir / "named.so", example_inputs=(x,), input_names=["x"], scheme="w8a8", calibration=samples)
    got = next(iter(qc.runtime.load(workdir / "named.so").run({"x": x.numpy()}).values()))
    np.testing.assert_allclose(got, module(x).detach().numpy(), atol=0.05)
