"""The generated matmul micro-kernels and math expansions, for each vector width, against PyTorch."""

import numpy as np
import pytest
import torch
from torch import nn

import qc
from qc.compiler.codegen import Target


class Block(nn.Module):
    """Linears with N not a multiple of any panel width, attention matmuls, erf/tanh/exp."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(24, 3 * 24)
        self.out = nn.Linear(24, 37)
        self.down = nn.Linear(37, 16, bias=False)

    def forward(self, x):
        b, s, _ = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, 2, 12).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) * 12 ** -0.5, -1) @ v
        h = nn.functional.gelu(self.out(att.transpose(1, 2).reshape(b, s, 24)))
        return torch.tanh(self.down(h)) + torch.exp(-h.square()).mean(-1, keepdim=True)


@pytest.fixture(scope="module")
def block():
    torch.manual_seed(0)
    return Block().eval(), torch.randn(2, 19, 24)


@pytest.mark.parametrize("cpu,lanes", [(None, None), ("haswell", 8), ("x86-64", 4)])
def test_block_matches_torch_for_each_vector_width(block, cpu, lanes, workdir):
    if lanes is not None:
        assert Target.of(cpu).vector_width == lanes
    model, x = block
    out = workdir / f"block_{cpu}.so"
    qc.compile(model, out, example_inputs=(x,), input_names=["x"], target_cpu=cpu)
    got = qc.runtime.load(out).run({"x": x.numpy()})["output0"]
    with torch.no_grad():
        ref = model(x).numpy()
    assert np.abs(got - ref).max() < 1e-5


@pytest.mark.parametrize("cpu", [None, "haswell", "x86-64"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.int8])
def test_narrow_b_operands_for_each_vector_width(dtype, cpu, workdir):
    """A batch_matmul and a matmul whose B is an f16 or int8 input widened in the graph (as a decoder's f16 /
    int8 KV cache is): qc-fold-widening hands the narrow B to the kernel, which widens it as it loads it.
    Full-range codes (-128..127) and f16 values up to 60000, N = 37 (a masked last panel), against numpy in
    float64."""

    class Narrow(nn.Module):
        def forward(self, a, b, x, w):
            return a @ b.float(), x @ w.float()

    rng = np.random.default_rng(1)
    a, x = (torch.from_numpy(rng.standard_normal(s).astype(np.float32)) for s in ((3, 5, 19), (7, 19)))
    if dtype == torch.int8:
        b, w = (torch.from_numpy(rng.integers(-128, 128, s).astype(np.int8)) for s in ((3, 19, 37), (19, 37)))
    else:
        b, w = (torch.from_numpy((rng.standard_normal(s) * 2e4).clip(-6e4, 6e4).astype(np.float16))
                for s in ((3, 19, 37), (19, 37)))
    out = workdir / f"narrow_{dtype}_{cpu}.so"
    qc.compile(Narrow(), out, example_inputs=(a, b, x, w), input_names=["a", "b", "x", "w"], target_cpu=cpu)
    got = qc.runtime.load(out).run({"a": a.numpy(), "b": b.numpy(), "x": x.numpy(), "w": w.numpy()})
    for name, (lhs, rhs) in (("output0", (a, b)), ("output1", (x, w))):
        ref = lhs.double().numpy() @ rhs.double().numpy()
        assert np.abs(got[name] - ref).max() <= 1e-5 * np.abs(ref).max(), (name, cpu)


def test_linears_and_attention_use_kernels(block, workdir):
    model, x = block
    # The LLVM IR defines the kernels that replaced the matmuls: 3 linear shapes + 2 attention matmuls.
    qc.compile(model, workdir / "block.ll", emit="llvm", example_inputs=(x,), input_names=["x"])
    text = (workdir / "block.ll").read_text()
    kernels = {line.split("@")[1].split("(")[0] for line in text.splitlines()
               if line.startswith("define") and "@qc_mk_" in line}
    assert len(kernels) == 5, kernels


@pytest.mark.parametrize("fn", ["exp", "erf", "tanh"])
def test_expanded_math_accuracy(fn, workdir):
    f = getattr(torch, fn)

    class Elementwise(nn.Module):
        def forward(self, x):
            return f(x)

    x = torch.cat([torch.linspace(-100, 100, 4001), torch.linspace(-6, 6, 4001)]).reshape(2, -1)
    out = workdir / f"math_{fn}.so"
    qc.compile(Elementwise(), out, example_inputs=(x,), input_names=["x"])
    got = qc.runtime.load(out).run({"x": x.numpy()})["output0"]
    ref = f(x.double()).float().double().numpy()  # overflows to inf as float32 does
    finite = np.isfinite(ref)
    assert np.array_equal(np.isfinite(got), finite)
    err = np.abs(got[finite] - ref[finite]) / np.maximum(np.abs(ref[finite]), 1.0)  # relative above 1, absolute below
    assert err.max() < (1e-6 if fn == "exp" else 6e-7)


def test_sibling_linears_run_in_one_pool_region(workdir):
    """Three linears that read one input (as q, k and v do) and a fourth that reads their sum: qc-merge-dispatches
    runs the three in one merged trampoline, whose kernels have different task counts (column panels: the pool
    splits the largest count and gives each chunk its share of every kernel), and the model matches PyTorch on
    this host's threads, with N not a multiple of a panel (a masked last one)."""

    class Siblings(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v = nn.Linear(40, 72), nn.Linear(40, 37), nn.Linear(40, 200)
            self.out = nn.Linear(72, 24)

        def forward(self, x):
            return self.out(self.q(x) + self.k(x).repeat(1, 2)[:, :72] * self.v(x)[:, :72]), self.v(x)

    torch.manual_seed(0)
    model, x = Siblings().eval(), torch.randn(19, 40)
    qc.compile(model, workdir / "siblings.ll", emit="llvm", example_inputs=(x,), input_names=["x"])
    merged = [line for line in (workdir / "siblings.ll").read_text().splitlines() if "call void @qc_mpar_0(" in line]
    assert len(merged) == 1
    qc.compile(model, workdir / "siblings.so", example_inputs=(x,), input_names=["x"])
    got = qc.runtime.load(workdir / "siblings.so").run({"x": x.numpy()})
    with torch.no_grad():
        ref = model(x)
    for name, r in zip(("output0", "output1"), ref):
        assert np.abs(got[name] - r.numpy()).max() <= 1e-5 * np.abs(r.numpy()).max(), name
