"""SmoothQuant (qc-smooth): exact in FP32, folded into the producers, and it lowers W8A8 error
on a model whose norm outputs have outlier channels."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import qc
from conftest import EXAMPLE, run


class Block(nn.Module):
    """LayerNorm -> q, k (one shared, foldable input); o reads a product (not foldable);
    a second LayerNorm -> f.  Outlier channels injected into both norms' scales."""

    def __init__(self):
        super().__init__()
        self.ln, self.ln2 = nn.LayerNorm(64), nn.LayerNorm(64)
        self.q, self.k, self.o, self.f = nn.Linear(64, 32), nn.Linear(64, 32), nn.Linear(32, 64), nn.Linear(64, 48)
        with torch.no_grad():
            self.ln.weight[:4] = 30.0
            self.ln.bias[:4] = 5.0
            self.ln2.weight[[5, 9]] = 40.0

    def forward(self, x):
        h = self.ln(x)
        return self.f(self.ln2(self.o(torch.relu(self.q(h)) * self.k(h))))


@pytest.fixture(scope="module")
def block():
    torch.manual_seed(0)
    model = Block().eval()
    rng = np.random.default_rng(0)
    calib = [{"x": rng.standard_normal((2, 8, 64)).astype(np.float32)} for _ in range(8)]
    x = rng.standard_normal((2, 8, 64)).astype(np.float32)
    return model, calib, x, model(torch.from_numpy(x)).detach().numpy()


def compiled(block, workdir, tag, **options):
    model, calib, x, _ = block
    out = workdir / f"smooth_{tag}.so"
    qc.compile(model, out, example_inputs=(torch.from_numpy(x),), input_names=["x"], calibration=calib,
               report=workdir / f"smooth_{tag}.json", **options)
    layers = json.loads((workdir / f"smooth_{tag}.json").read_text())["layers"]
    return qc.runtime.load(out).run({"x": x})["output0"], layers


def rel_error(y, ref):
    return float(np.abs(y - ref).max() / np.abs(ref).max())


def test_smoothing_is_exact_in_fp32(block, workdir):
    _, _, _, ref = block
    plain, _ = compiled(block, workdir, "f32")
    smoothed, layers = compiled(block, workdir, "f32_smooth", smooth=0.5)
    assert layers["q.weight"]["smooth"] == layers["k.weight"]["smooth"] == layers["f.weight"]["smooth"] == "alpha=0.5"
    assert rel_error(smoothed, ref) <= 1e-5 and rel_error(plain, ref) <= 1e-5


def test_unfoldable_input_is_left_alone_and_reported(block, workdir):
    _, layers = compiled(block, workdir, "w8a8_smooth_report", scheme="w8a8", smooth=0.5)
    assert layers["o.weight"]["smooth"].startswith("not smoothed: its producer (linalg.generic)")
    _, layers = compiled(block, workdir, "w8a8_smooth_fallback", scheme="w8a8", smooth=0.5, smooth_fallback=True)
    assert layers["o.weight"]["smooth"] == "alpha=0.5 (explicit multiply)"


@pytest.mark.parametrize("activations", ["dynamic", "static"])
def test_smoothing_reduces_w8a8_error(block, workdir, activations):
    _, _, _, ref = block
    plain, _ = compiled(block, workdir, f"w8a8_{activations}", scheme="w8a8", activations=activations)
    half, _ = compiled(block, workdir, f"w8a8_{activations}_s05", scheme="w8a8", activations=activations, smooth=0.5)
    auto, layers = compiled(block, workdir, f"w8a8_{activations}_auto", scheme="w8a8", activations=activations,
                            smooth="auto")
    assert layers["q.weight"]["smooth"].startswith("alpha=")
    e_plain, e_half, e_auto = rel_error(plain, ref), rel_error(half, ref), rel_error(auto, ref)
    print(f"W8A8 {activations}: max rel. error {e_plain:.4f} unsmoothed, {e_half:.4f} alpha=0.5, {e_auto:.4f} auto")
    assert e_half < 0.9 * e_plain and e_auto < 0.9 * e_plain


def test_cli_smooth_needs_calibration(workdir):
    proc = run("qc-compile", str(EXAMPLE), "-o", str(workdir / "s.so"), "--scheme", "w8a8", "--smooth", "0.5")
    assert proc.returncode == 1 and "smoothing needs calibration data" in proc.stderr
    proc = run("qc-compile", str(EXAMPLE), "-o", str(workdir / "s.so"), "--smooth", "1.5")
    assert proc.returncode == 1 and "argument --smooth: expected a number in [0, 1] or 'auto', got '1.5'" in proc.stderr
