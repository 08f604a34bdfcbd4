"""The command-line tools on the bundled example, and their answers to bad input."""

import json
import os
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import qc
from conftest import BIN, EXAMPLE, REPO, run, run_example
from onnx import TensorProto, helper


@pytest.fixture(scope="module")
def example_so(workdir):
    out = workdir / "mlp.so"
    proc = run("qc-compile", EXAMPLE, "-o", out)
    assert proc.returncode == 0, proc.stderr
    return out


def test_qc_run_matches_ort(example_so, workdir):
    got, ref = run_example(example_so, workdir, "out", seed=3)
    np.testing.assert_allclose(got, ref, atol=1e-6)


@pytest.mark.parametrize("mapped", ["0", "1"])
def test_weights_read_or_mapped(example_so, workdir, monkeypatch, mapped):
    """Weights are read into huge pages by default, mapped with QC_MMAP_WEIGHTS=1: same numbers,
    and a truncated or foreign weight file is a clear error in both modes."""
    monkeypatch.setenv("QC_MMAP_WEIGHTS", mapped)
    x = np.random.default_rng(5).standard_normal((4, 64)).astype(np.float32)
    ref = ort.InferenceSession(str(EXAMPLE)).run(None, {"x": x})[0]
    np.testing.assert_allclose(qc.runtime.load(example_so).run({"x": x})["probs"], ref, atol=1e-6)
    blob = example_so.with_suffix(".qcw").read_bytes()
    bad = workdir / f"bad_{mapped}.qcw"
    bad.write_bytes(blob[:-8])
    with pytest.raises(qc.QCError, match=rf"has {len(blob) - 8} bytes, expected {len(blob)}"):
        qc.runtime.load(example_so, weights=bad)
    bad.write_bytes(b"NOTQCWB!" + blob[8:])
    with pytest.raises(qc.QCError, match="is not a qc weight file"):
        qc.runtime.load(example_so, weights=bad)
    assert bad.read_bytes()[:8] == b"NOTQCWB!"  # the user's file is only read


PIN_PROBE = """
import ctypes, json, os, sys, numpy as np, qc
m = qc.runtime.load(sys.argv[1])
m.run({"x": np.zeros((4, 64), np.float32)})
me = os.getpid()
workers = [sorted(os.sched_getaffinity(int(t))) for t in os.listdir("/proc/self/task") if int(t) != me]
print(json.dumps({"workers": workers, "caller_cpu": ctypes.CDLL(None).sched_getcpu(), "caller": sorted(os.sched_getaffinity(0))}))
"""


@pytest.mark.parametrize("pin", ["1", "0"])
def test_pool_workers_pinned_off_the_caller(example_so, pin):
    """QC_NUM_THREADS=2 on >= 2 CPUs: the pool's one worker is pinned to one CPU, not the caller's,
    and the caller is left alone; QC_PIN_THREADS=0 pins nothing."""
    import json
    import os
    import sys

    cpus = sorted(os.sched_getaffinity(0))
    env = {**os.environ, "QC_NUM_THREADS": "2", "QC_PIN_THREADS": pin, "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", PIN_PROBE, str(example_so)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["caller"] == cpus
    single = [a for a in got["workers"] if len(a) == 1]
    if pin == "1" and len(cpus) >= 2:
        assert single and all(a != [got["caller_cpu"]] for a in single), got
    else:
        assert not single, got


def test_executable_reads_and_writes_npy(workdir):
    exe = workdir / "mlp_exe"
    assert run("qc-compile", EXAMPLE, "-o", exe, "--emit", "exe").returncode == 0
    x = np.random.default_rng(4).standard_normal((4, 64)).astype(np.float32)
    np.save(workdir / "xe.npy", x)
    proc = subprocess.run([str(exe), f"x={workdir / 'xe.npy'}", "-o", str(workdir)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    ref = ort.InferenceSession(str(EXAMPLE)).run(None, {"x": x})[0]
    np.testing.assert_allclose(np.load(workdir / "probs.npy"), ref, atol=1e-6)
    np.save(workdir / "bad.npy", x[:, :10])
    proc = subprocess.run([str(exe), f"x={workdir / 'bad.npy'}"], capture_output=True, text=True)
    assert proc.returncode == 1 and "input 'x' expects <f4[4x64], got <f4[4x10]" in proc.stderr


@pytest.mark.parametrize("emit", ["obj", "llvm", "mlir"])
def test_emit_stops_early(workdir, emit):
    out = workdir / f"mlp.{emit}"
    proc = run("qc-compile", EXAMPLE, "-o", out, "--emit", emit)
    assert proc.returncode == 0, proc.stderr
    text = out.read_bytes()
    assert {"obj": b"\x7fELF", "llvm": b"define", "mlir": b"qc.linear"}[emit] in text


def test_emitted_mlir_compiles_again(workdir):
    """Small constants stay in the .mlir (the 128-element bias), the weights go to .safetensors."""
    rng = np.random.default_rng(5)
    w, b = rng.standard_normal((64, 128)).astype(np.float32), rng.standard_normal(128).astype(np.float32)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
                          "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 128])],
                          [onnx.numpy_helper.from_array(w, "w"), onnx.numpy_helper.from_array(b, "b")])
    path = workdir / "bias.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    assert run("qc-compile", path, "-o", workdir / "bias.mlir", "--emit", "mlir").returncode == 0
    store = workdir / "bias.safetensors"
    from safetensors.numpy import load_file

    assert set(load_file(str(store))) == {"w.nk"}  # the layer reads w transposed; the original is not kept
    assert store.stat().st_mode & 0o044 == (workdir / "bias.mlir").stat().st_mode & 0o044  # the umask's, not 0600
    proc = run("qc-compile", workdir / "bias.mlir", "-o", workdir / "bias.so")
    assert proc.returncode == 1 and f"qc.weight ops read @w.nk, not in the weight store; give weights='{store}'" in proc.stderr
    proc = run("qc-compile", workdir / "bias.mlir", "--weights", store, "-o", workdir / "bias.so")
    assert proc.returncode == 0, proc.stderr
    x = rng.standard_normal((4, 64)).astype(np.float32)
    np.save(workdir / "bias_x.npy", x)
    proc = run("qc-run", workdir / "bias.so", "--input", f"x={workdir / 'bias_x.npy'}", "--output-dir", workdir / "bias")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(np.load(workdir / "bias" / "y.npy"), x @ w + b, rtol=1e-5, atol=1e-5)


def test_mlir_with_probes_and_tensor_arith_compiles(workdir):
    """A file as qc-instrument leaves it (probes) with arith on tensors, as people write by hand."""
    src = workdir / "probed.mlir"
    src.write_text("func.func @main(%x: tensor<4x64xf32>) -> tensor<4x64xf32> {\n"
                   '  %o = "qc.observe"(%x) {id = "fc"} : (tensor<4x64xf32>) -> tensor<4x64xf32>\n'
                   "  %y = arith.mulf %o, %o : tensor<4x64xf32>\n"
                   "  return %y : tensor<4x64xf32>\n}\n")
    proc = run("qc-compile", src, "-o", workdir / "probed.so")
    assert proc.returncode == 0, proc.stderr
    x = np.random.default_rng(6).standard_normal((4, 64)).astype(np.float32)
    np.testing.assert_array_equal(qc.runtime.load(workdir / "probed.so").run({"arg0": x})["result0"], x * x)


def test_elided_constants_are_an_error(workdir):
    src = workdir / "elided.mlir"
    src.write_text("func.func @main() -> tensor<2xi64> {\n"
                   "  %c = arith.constant dense_resource<__elided__> : tensor<2xi64>\n"
                   "  return %c : tensor<2xi64>\n}\n")
    proc = run("qc-compile", src, "-o", workdir / "elided.so")
    assert proc.returncode == 1 and f"{src}:2:8: error: constant data was elided" in proc.stderr


def test_wrong_input_shape_names_input(example_so, workdir):
    np.save(workdir / "wrong.npy", np.zeros((4, 63), np.float32))
    proc = run("qc-run", example_so, "--input", f"x={workdir / 'wrong.npy'}")
    assert proc.returncode == 1
    assert "input 'x': expected float32[4x64], given float32[4x63]" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_wrong_dtype_names_input(example_so, workdir):
    np.save(workdir / "wrong64.npy", np.zeros((4, 64), np.float64))
    proc = run("qc-run", example_so, "--input", f"x={workdir / 'wrong64.npy'}")
    assert proc.returncode == 1 and "expected float32[4x64], given float64[4x64]" in proc.stderr


def test_unusable_paths_are_clear_errors(example_so, workdir):
    """An output folder that is a file or cannot be made, a .npy for --calib, and a library qc did not
    build: exit 1 with a message, no traceback, and nothing the user gave is touched."""
    blocker = workdir / "afile"
    blocker.write_text("keep me")
    npy = workdir / "x.npy"
    np.save(npy, np.zeros((4, 64), np.float32))
    (workdir / "empty.onnx").write_bytes(b"")
    (workdir / "text.npy").write_text("1 2 3\n")
    cases = [
        (("qc-compile", workdir / "empty.onnx", "-o", workdir / "e.so"),
         "empty.onnx: not an ONNX model: it holds no graph and no opset (an empty file?)"),
        (("qc-run", example_so, "--input", f"x={workdir / 'text.npy'}"),
         f"input 'x': cannot read '{workdir / 'text.npy'}': it is not a NumPy .npy/.npz file"),
        (("qc-compile", EXAMPLE, "-o", blocker / "m.so"), f"cannot create the output folder '{blocker}': '{blocker}' is a file"),
        (("qc-compile", EXAMPLE, "-o", "/proc/nope/m.so"), "cannot create the output folder '/proc/nope'"),
        (("qc-run", example_so, "--input", f"x={npy}", "--output-dir", blocker / "out"), f"'{blocker}' is a file"),
        (("qc-compile", EXAMPLE, "-o", workdir / "c.so", "--scheme", "w8a8", "--calib", npy),
         f"calibration data '{npy}' is one array; give a .npz with one array per model input (x)"),
        (("qc-run", np.__file__.replace("__init__.py", "_core/_multiarray_umath" + __import__("sysconfig").get_config_var("EXT_SUFFIX"))),
         "is not a model qc compiled: it has no qc_model_entry"),
    ]
    for args, message in cases:
        proc = run(*args)
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
    assert blocker.read_text() == "keep me"


@pytest.mark.parametrize("args, message", [
    (["--method", "gptq"], "error: method gptq quantizes the layers a scheme is given"),
    (["--target-cpu", "pentium9000"], "error: --target-cpu 'pentium9000' is not a CPU LLVM knows"),
    (["--target-features", "+avx2,+avx9"], "error: --target-features '+avx9' is not a feature LLVM knows"),
])
def test_requests_that_would_do_nothing_are_errors(workdir, args, message):
    """Before: compiled f32 / ignored the name / LLVM ERROR and an abort after six warnings."""
    proc = run("qc-compile", EXAMPLE, "-o", workdir / "noop.so", *args)
    assert proc.returncode == 1 and message in proc.stderr and "LLVM ERROR" not in proc.stderr, proc.stderr


def test_layers_left_in_f32_are_a_warning(workdir, example_so):
    """w4a16-g128 cannot take fc1 (K = 64): said on stderr, not only in --report, where fc1 has its
    f32 bytes; with calibration an RTN report has every layer's output error; a duplicated --input
    is an error."""
    proc = run("qc-compile", EXAMPLE, "-o", workdir / "g128.so", "--scheme", "w4a16-g128", "--report",
               workdir / "g128.json")
    assert proc.returncode == 0
    assert ("qc-compile: warning: layer 'fc1': left in f32: K=64 is not a multiple of the group size 128 of "
            "w4a16-g128") in proc.stderr
    fc1 = json.loads((workdir / "g128.json").read_text())["layers"]["fc1"]
    assert fc1["scheme"] == "f32" and fc1["bytes"] == fc1["bytes_f32"] >= 256 * 64 * 4  # its bar in the plot
    np.savez(workdir / "calib4.npz", x=np.random.default_rng(4).standard_normal((3, 4, 64)).astype(np.float32))
    proc = run("qc-compile", EXAMPLE, "-o", workdir / "rtn.so", "--scheme", "w8a16", "--calib", workdir / "calib4.npz",
               "--report", workdir / "rtn.json")
    assert proc.returncode == 0, proc.stderr
    layers = json.loads((workdir / "rtn.json").read_text())["layers"]  # RTN too: calibration gives the output error
    assert all(0 < layers[n]["output_rel_error"] < 1e-2 for n in ("fc1", "fc2"))
    x = workdir / "x_dup.npy"
    np.save(x, np.zeros((4, 64), np.float32))
    proc = run("qc-run", example_so, "--input", f"x={x}", "--input", f"x={x}")
    assert proc.returncode == 1 and "input 'x' is given twice" in proc.stderr


def test_shape_overrides_refit_or_name_the_node(workdir):
    """--shape may change a static dim the model does not depend on (batch 8 for the batch-4 example:
    rows match ORT's), and a dim it does depend on is one error naming the node, not every node
    'unsupported' or a torch-mlir cast error."""
    proc = run("qc-compile", EXAMPLE, "-o", workdir / "b8.so", "--shape", "x=8x64")
    assert proc.returncode == 0, proc.stderr
    x = np.random.default_rng(3).standard_normal((8, 64)).astype(np.float32)
    got = qc.runtime.load(workdir / "b8.so").run({"x": x})["probs"]
    sess = ort.InferenceSession(str(EXAMPLE), providers=["CPUExecutionProvider"])
    ref = np.concatenate([sess.run(None, {"x": x[:4]})[0], sess.run(None, {"x": x[4:]})[0]])
    assert np.abs(got - ref).max() < 1e-5
    proc = run("qc-compile", EXAMPLE, "-o", workdir / "k32.so", "--shape", "x=4x32")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert ("the input shapes (--shape x=4x32) do not fit the model: node 'fc1' (ONNX op 'MatMul'): Incompatible "
            "dimensions for matrix multiplication") in proc.stderr


def test_unsupported_onnx_op_names_node(workdir):
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="ok"), helper.make_node("STFT", ["r", "r"], ["y"], name="my_stft")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = workdir / "stft.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    proc = run("qc-compile", path, "-o", workdir / "stft.so")
    assert proc.returncode == 1
    assert "node 'my_stft'" in proc.stderr and "STFT" in proc.stderr
    assert "node 'ok'" not in proc.stderr  # only the node that failed, not every node after it
    assert "Traceback" not in proc.stderr


def test_dynamic_dimension_is_named_and_fixable(workdir):
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])])
    path = workdir / "dyn.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    proc = run("qc-compile", path, "-o", workdir / "dyn.so")
    assert proc.returncode == 1
    assert "input 'x' has a dynamic dimension 0 ('batch')" in proc.stderr and "--shape x=Nx8" in proc.stderr
    proc = run("qc-compile", path, "-o", workdir / "dyn.so", "--shape", "x=3x8")
    assert proc.returncode == 0, proc.stderr


def test_missing_and_malformed_model(workdir):
    proc = run("qc-compile", workdir / "nope.onnx", "-o", workdir / "n.so")
    assert proc.returncode == 1 and "no such file" in proc.stderr
    bad = workdir / "bad.onnx"
    bad.write_bytes(b"not a model")
    proc = run("qc-compile", bad, "-o", workdir / "n.so")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr


def test_qc_opt_malformed_input_reports_location(workdir):
    src = workdir / "bad.mlir"
    src.write_text("func.func @f() {\n  %0 = arith.addf %x : f32\n}\n")
    proc = run("qc-opt", src)
    assert proc.returncode == 1
    assert f"{src}:2:" in proc.stderr and "error:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_qc_opt_output_file_and_weights_roundtrip(workdir):
    src = workdir / "w.mlir"
    src.write_text("func.func @main(%x: tensor<2x300xf32>) -> tensor<2x300xf32> {\n"
                   "  %c = arith.constant dense<[" + ", ".join(["[" + ", ".join(f"{i}.0" for i in range(300)) + "]"] * 2)
                   + "]> : tensor<2x300xf32>\n  %y = arith.addf %x, %c : tensor<2x300xf32>\n"
                   "  return %y : tensor<2x300xf32>\n}\n")
    out, store = workdir / "w.out.mlir", workdir / "w.safetensors"
    proc = run("qc-opt", src, "--qc-outline-weights", "-o", out, "--weights-out", store)
    assert proc.returncode == 0, proc.stderr
    assert '"qc.weight"() {name = @w}' in out.read_text()
    from safetensors.numpy import load_file

    np.testing.assert_array_equal(load_file(str(store))["w"][1], np.arange(300, dtype=np.float32))


def test_qc_opt_into_a_closed_pipe_ends_quietly():
    """``qc-opt x.mlir | head``: a reader that left is no internal error (nor a traceback at exit)."""
    read, write = os.pipe()
    os.close(read)
    proc = subprocess.run([str(BIN / "qc-opt"), str(REPO / "test" / "Passes" / "raise.mlir"), "--qc-raise"],
                          stdout=write, stderr=subprocess.PIPE, text=True)
    os.close(write)
    assert proc.returncode == 1 and proc.stderr == ""


def test_qc_opt_unknown_pass(workdir):
    proc = run("qc-opt", REPO / "test" / "Dialect" / "qc" / "ops.mlir", "--no-such-pass")
    assert proc.returncode == 1 and "Unknown command line argument '--no-such-pass'" in proc.stderr


def test_a_bug_in_a_pass_is_an_internal_error_not_a_traceback(workdir, monkeypatch, capsys):
    """An exception that is not a user error, inside a pass or elsewhere in a tool, is said as an
    internal error of qc (exit 1) with the pass's name; the output file is not written."""
    from qc.passes import REGISTRY
    from qc.tools import qc_compile, qc_opt

    def broken(self, module, state):
        raise ZeroDivisionError("injected")

    monkeypatch.setattr(REGISTRY["qc-raise"], "run", broken)
    out = workdir / "never.mlir"
    assert qc_opt.main([str(REPO / "test" / "Passes" / "raise.mlir"), "--qc-raise", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "error: qc-raise: internal error: ZeroDivisionError: injected" in err and "a bug in qc" in err
    assert "Traceback" not in err and not out.exists()

    def crash(*args, **kwargs):
        raise KeyError("injected")

    monkeypatch.setattr(qc_compile, "compile", crash)
    assert qc_compile.main([str(EXAMPLE), "-o", str(workdir / "never.so")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("qc-compile: internal error: KeyError: 'injected'") and "Traceback" not in err
