"""Real models compiled by qc match ONNX Runtime / PyTorch in FP32."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

import qc
from qc.compiler.models.minilm import encode

SENTENCES = ["A man is playing a guitar.", "The new movie is awesome.",
             "Quantization makes models smaller and faster on CPUs.", "Il pleut depuis trois jours à Paris."]


def test_minilm_matches_ort(minilm):
    onnx_path, model, tok = minilm
    sess = ort.InferenceSession(str(onnx_path))
    for sentence in SENTENCES:
        feeds = encode(tok, [sentence], 128)
        got = model.run(feeds)["last_hidden_state"]
        ref = sess.run(None, feeds)[0]
        assert np.abs(got - ref).max() < 1e-4
        mask = feeds["attention_mask"][..., None]
        emb = [(h * mask).sum(1) / mask.sum() for h in (got, ref)]
        emb = [e / np.linalg.norm(e) for e in emb]
        assert float((emb[0] * emb[1]).sum()) >= 0.99999


def test_minilm_exported_with_dynamic_axes_runs_at_every_batch(workdir):
    """The usual export (dynamic batch and seq, mean pooling), compiled with --shape at batch 1, 2
    and 8: the shape arithmetic torch.onnx leaves around Expand is folded once the shapes are fixed,
    so no run-time check aborts the process (it did at batch != 1), and each matches ORT."""
    from qc.compiler.models import minilm as mm

    onnx_path = workdir / "minilm_dynamic.onnx"
    tokenizer = mm.export_onnx(onnx_path, batch=2, seq=32, pooled=True, dynamic=True)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for batch in (1, 2, 8):
        feeds = mm.encode(tokenizer, mm.sample_sentences(batch, seed=batch), 32)
        out = workdir / f"minilm_dynamic_b{batch}.so"
        qc.compile(onnx_path, out, shapes={n: (batch, 32) for n in feeds})
        got = qc.runtime.load(out).run(feeds)["sentence_embedding"]
        ref = sess.run(None, feeds)[0]
        assert got.shape == (batch, 384) and np.abs(got - ref).max() <= 1e-4


def test_stories_torch_frontend(stories, workdir):
    cfg, model = stories
    tokens = torch.randint(0, cfg.vocab_size, (1, 32), generator=torch.Generator().manual_seed(0))
    qc.compile(model, workdir / "stories_fx.so", example_inputs=(tokens,), input_names=["tokens"])
    got = qc.runtime.load(workdir / "stories_fx.so").run({"tokens": tokens.numpy()})["output0"]
    with torch.no_grad():
        ref = model(tokens).numpy()
    assert np.abs(got - ref).max() < 1e-4


def test_stories_onnx_frontend(stories, workdir):
    cfg, model = stories
    tokens = torch.randint(0, cfg.vocab_size, (1, 32), generator=torch.Generator().manual_seed(1))
    path = workdir / "stories.onnx"
    torch.onnx.export(model, (tokens,), str(path), input_names=["tokens"], output_names=["logits"],
                      dynamo=False, opset_version=17)
    qc.compile(path, workdir / "stories_onnx.so")
    got = qc.runtime.load(workdir / "stories_onnx.so").run({"tokens": tokens.numpy()})["logits"]
    ref = ort.InferenceSession(str(path)).run(None, {"tokens": tokens.numpy()})[0]
    assert np.abs(got - ref).max() < 1e-4


class ConvNet2d(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4)
        self.pool = nn.MaxPool2d(2)
        self.avg = nn.AvgPool2d(2)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        h = torch.relu(self.bn(self.c1(x)))
        h = h + torch.sigmoid(self.c2(h))  # residual
        h = torch.cat([self.pool(h), self.avg(h)], dim=1)
        h = nn.functional.adaptive_avg_pool2d(h, 4).flatten(1)
        return torch.softmax(self.fc(h), -1)


class ConvNet1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(4, 6, 5, stride=2, padding=2)
        self.c2 = nn.Conv1d(6, 6, 3, groups=3, dilation=2)

    def forward(self, x):
        return torch.tanh(self.c2(nn.functional.leaky_relu(self.c(x)))).mean(-1)


class ConvNet3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv3d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm3d(4)

    def forward(self, x):
        return nn.functional.gelu(nn.functional.max_pool3d(self.bn(self.c(x)), 2))


class GemmNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(20, 30), nn.Linear(30, 5)

    def forward(self, x):
        return nn.functional.log_softmax(self.fc2(nn.functional.elu(self.fc1(x))), -1)


@pytest.mark.parametrize("net,shape", [(ConvNet2d, (2, 3, 16, 16)), (ConvNet1d, (1, 4, 32)),
                                       (ConvNet3d, (1, 2, 8, 8, 8)), (GemmNet, (3, 20))])
def test_operator_coverage_matches_ort(net, shape, workdir):
    torch.manual_seed(0)
    model = net().eval()
    for m in model.modules():  # non-trivial batchnorm statistics
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(*shape)
    path = workdir / f"{net.__name__}.onnx"
    torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=False, opset_version=17)
    qc.compile(path, workdir / f"{net.__name__}.so")
    got = qc.runtime.load(workdir / f"{net.__name__}.so").run({"x": x.numpy()})["y"]
    ref = ort.InferenceSession(str(path)).run(None, {"x": x.numpy()})[0]
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() < 1e-4


def test_python_api_rejects_bad_inputs(workdir):
    model = GemmNet().eval()
    path = workdir / "gemm_api.onnx"
    torch.onnx.export(model, (torch.randn(3, 20),), str(path), input_names=["x"], output_names=["y"], dynamo=False)
    qc.compile(path, workdir / "gemm_api.so")
    m = qc.runtime.load(workdir / "gemm_api.so")
    with pytest.raises(qc.QCError, match=r"input 'x': expected float32\[3x20\], given float32\[3x21\]"):
        m.run({"x": np.zeros((3, 21), np.float32)})
    with pytest.raises(qc.QCError, match=r"input 'x': expected float32\[3x20\], given >f4\[3x20\]"):
        m.run({"x": np.zeros((3, 20), ">f4")})  # big-endian floats would be misread
    with pytest.raises(qc.QCError, match=r"missing \['x'\]"):
        m.run({"y": np.zeros((3, 20), np.float32)})
