"""The runtime alone: imports without the compiler, the C API from several threads, static models
linked into a program, the standalone executable, and byte-identical artifacts."""

import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import qc
import torch
from conftest import BIN, EXAMPLE, REPO, run
from torch import nn

RUNTIME = REPO / "runtime"
CC = ["cc", "-O2", "-std=c11", "-pthread", f"-I{RUNTIME / 'include'}", f"-I{RUNTIME}"]
RUNTIME_SOURCES = [RUNTIME / "qc_runtime.c", RUNTIME / "qc_api.c"]


@pytest.fixture(scope="module")
def mlp_so(workdir):
    out = workdir / "runtime" / "mlp.so"
    assert run("qc-compile", EXAMPLE, "-o", out).returncode == 0
    return out


@pytest.fixture(scope="module")
def wide_mlp(workdir):
    """An MLP large enough that qc-parallelize splits its kernels over the pool, at w8a8."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 1024), nn.GELU(), nn.Linear(1024, 256)).eval()
    path = workdir / "runtime" / "wide.onnx"
    path.parent.mkdir(exist_ok=True)
    torch.onnx.export(model, (torch.randn(64, 256),), str(path), input_names=["x"], output_names=["y"],
                      dynamo=False, opset_version=17)
    return path


def imported(code: str) -> set[str]:
    """The heavy modules a fresh interpreter holds after running ``code``."""
    probe = code + "\nimport sys\nprint(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in " \
                   "('torch_mlir', 'llvmlite', 'torch', 'onnx') or m.startswith(('qc.passes', 'qc.compiler', 'qc.dialects')))))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def test_runtime_and_qc_run_import_no_compiler(mlp_so, workdir):
    x = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    np.save(workdir / "runtime" / "x.npy", x)
    assert imported(f"import qc.runtime\nm = qc.runtime.load({str(mlp_so)!r})\nm.run({{'x': __import__('numpy').load("
                    f"{str(workdir / 'runtime' / 'x.npy')!r})}})") == set()
    assert imported(f"from qc.tools.qc_run import main\nassert main([{str(mlp_so)!r}, '--input', "
                    f"'x={workdir / 'runtime' / 'x.npy'}', '--output-dir', {str(workdir / 'runtime' / 'o')!r}]) == 0") == set()
    assert "torch_mlir" in imported("import qc\nqc.compile")  # the probe sees what it should


def test_c_api_from_eight_threads(wide_mlp, workdir):
    """One handle, 8 threads at once, 25 runs each: every output equals a single-threaded run, bit for
    bit; misuse of the API answers with a status and a message."""
    lib = workdir / "runtime" / "wide.so"
    proc = run("qc-compile", wide_mlp, "-o", lib, "--scheme", "w8a8")
    assert proc.returncode == 0, proc.stderr
    exe = workdir / "runtime" / "threads"
    subprocess.run([*CC, str(REPO / "test" / "c" / "threads.c"), *map(str, RUNTIME_SOURCES), "-o", str(exe), "-ldl", "-lm"],
                   check=True)
    proc = subprocess.run([str(exe), str(lib), "8", "25"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "200 runs from 8 threads" in proc.stdout


def test_python_threads_per_model(wide_mlp, workdir):
    lib = workdir / "runtime" / "wide_f32.so"
    assert run("qc-compile", wide_mlp, "-o", lib).returncode == 0
    x = np.random.default_rng(1).standard_normal((64, 256)).astype(np.float32)
    ref = ort.InferenceSession(str(wide_mlp)).run(None, {"x": x})[0]
    one = qc.runtime.load(lib, threads=1)
    assert one.threads == 1
    np.testing.assert_allclose(one.run({"x": x})["y"], ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(qc.QCError, match="threads asked, the pool has"):
        one.threads = 10_000


def test_static_models_link_into_one_program(workdir):
    """Two static models (weights inside) in one C program: no symbol clash, each its own numbers."""
    out = workdir / "runtime" / "static"
    for name in ("first", "second"):
        proc = run("qc-compile", EXAMPLE, "-o", out / f"lib{name}.a", "--emit", "static",
                   *(["--scheme", "w8a8"] if name == "second" else []))
        assert proc.returncode == 0, proc.stderr
        assert not (out / f"lib{name}.qcw").exists()
        assert f"qc_status {name}_run(qc_model *model, const float *x, float *probs)" in (out / f"{name}.h").read_text()
    (out / "app.c").write_text(r"""
#include <stdio.h>
#include "first.h"
#include "second.h"
int main(void) {
  float x[4 * 64], a[40], b[40];
  FILE *f = fopen("x.bin", "rb");
  if (!f || fread(x, sizeof x, 1, f) != 1) return 2;
  qc_model *m1, *m2;
  if (qc_model_load(first_model(), NULL, &m1) || qc_model_load(second_model(), NULL, &m2)) { puts(qc_last_error()); return 1; }
  if (first_run(m1, x, a) || second_run(m2, x, b)) { puts(qc_last_error()); return 1; }
  f = fopen("probs.bin", "wb");
  fwrite(a, sizeof a, 1, f); fwrite(b, sizeof b, 1, f); fclose(f);
  printf("%s %s\n", qc_model_name(m1), qc_model_name(m2));
  return 0;
}
""")
    subprocess.run([*CC, "app.c", "libfirst.a", "libsecond.a", *map(str, RUNTIME_SOURCES), "-o", "app", "-ldl", "-lm"],
                   cwd=out, check=True)
    x = np.random.default_rng(2).standard_normal((4, 64)).astype(np.float32)
    x.tofile(out / "x.bin")
    proc = subprocess.run(["./app"], cwd=out, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.split() == ["first", "second"], proc.stdout + proc.stderr
    first, second = np.fromfile(out / "probs.bin", np.float32).reshape(2, 4, 10)
    ref = ort.InferenceSession(str(EXAMPLE)).run(None, {"x": x})[0]
    np.testing.assert_allclose(first, ref, atol=1e-6)
    np.testing.assert_allclose(second, ref, atol=2e-2)
    assert np.abs(second - first).max() > 0  # the w8a8 model is its own


def test_executable_bench_and_output_dir(workdir):
    exe = workdir / "runtime" / "mlp_exe"
    assert run("qc-compile", EXAMPLE, "-o", exe, "--emit", "exe").returncode == 0
    x = np.random.default_rng(3).standard_normal((4, 64)).astype(np.float32)
    np.save(workdir / "runtime" / "ex.npy", x)
    outdir = workdir / "runtime" / "new" / "nested"
    proc = subprocess.run([str(exe), f"x={workdir / 'runtime' / 'ex.npy'}", "-o", str(outdir), "--bench", "20"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "start-up (weights loaded):" in proc.stdout and "20 runs" in proc.stdout and "p50" in proc.stdout
    ref = ort.InferenceSession(str(EXAMPLE)).run(None, {"x": x})[0]
    np.testing.assert_allclose(np.load(outdir / "probs.npy"), ref, atol=1e-6)
    bad = subprocess.run([str(exe), f"x={workdir / 'runtime' / 'ex.npy'}", "--threads", "99999"], capture_output=True, text=True)
    assert bad.returncode == 1 and "threads asked" in bad.stderr


def test_artifacts_are_byte_identical(workdir, tmp_path):
    """The same model and options, compiled twice from two build folders (and working directories),
    give the same library, archive, weights and header, byte for byte."""
    def build(folder):
        folder.mkdir()
        for emit, name in (("so", "mlp.so"), ("static", "libmlp.a")):
            proc = subprocess.run([str(BIN / "qc-compile"), str(EXAMPLE), "-o", name, "--emit", emit, "--scheme", "w8a8"],
                                  cwd=folder, capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr
        return {p.name: p.read_bytes() for p in folder.iterdir()}

    first, second = build(tmp_path / "a"), build(tmp_path / "build-two")
    assert sorted(first) == ["libmlp.a", "mlp.h", "mlp.qcw", "mlp.so"]
    assert [n for n in first if first[n] != second[n]] == []


def test_failed_run_time_check_is_an_error_not_an_abort(workdir):
    """torch-mlir guards an Expand to a shape read from an input with cf.assert, which aborted the
    caller's process.  Now the run fails with the check's message and the node's name, the process
    lives on, and the next run works; qc-run and the standalone program exit 1 with the message."""
    from onnx import TensorProto, helper, save

    g = helper.make_graph([helper.make_node("Expand", ["x", "s"], ["e"], name="expand_by_s"),
                           helper.make_node("ReduceSum", ["e"], ["y"], name="sum", keepdims=1)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
                           helper.make_tensor_value_info("s", TensorProto.INT64, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])])
    path = workdir / "expand.onnx"
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    qc.compile(path, workdir / "expand.so")
    qc.compile(path, workdir / "exe" / "expand", emit="exe")
    model = qc.runtime.load(workdir / "expand.so")
    x = np.arange(4, dtype=np.float32)[None]
    assert model.run({"x": x, "s": np.array([3, 4])})["y"][0, 0] == 18
    message = ("run-time check failed in model 'expand': node 'expand_by_s': onnx.Expand input has a dim that is "
               "not statically 1")
    with pytest.raises(qc.QCError, match=message):
        model.run({"x": x, "s": np.array([3, 5])})
    assert model.run({"x": x, "s": np.array([2, 4])})["y"][0, 0] == 12
    np.save(workdir / "expand_x.npy", x)
    np.save(workdir / "expand_s.npy", np.array([3, 5]))
    inputs = [f"x={workdir / 'expand_x.npy'}", f"s={workdir / 'expand_s.npy'}"]
    proc = run("qc-run", workdir / "expand.so", "--input", inputs[0], "--input", inputs[1])
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    proc = subprocess.run([workdir / "exe" / "expand", *inputs, "-o", workdir / "expand_out"], capture_output=True, text=True)
    assert proc.returncode == 1 and message in proc.stderr, (proc.returncode, proc.stderr)
