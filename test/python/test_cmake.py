"""CMake: the package (from the Python package and from an installed prefix), qc_add_model's
rebuilds, and the examples built and run by ctest."""

import os
import shutil
import subprocess
import time

import numpy as np
import onnxruntime as ort
import pytest
from conftest import BIN, CMAKE_ENV, EXAMPLE, REPO, cmake, tool

def test_config_dir_is_printed():
    for argv in (["python", "-m", "qc", "--cmake-dir"], [str(BIN / "qc-config"), "--cmakedir"]):
        argv[0] = str(BIN / "python") if argv[0] == "python" else argv[0]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
        assert (REPO / "cmake" / "qcConfig.cmake").samefile(os.path.join(out, "qcConfig.cmake"))


def test_install_has_libraries_headers_and_config(top_build):
    prefix = top_build / "prefix"
    for path in ("lib/libqc_runtime.a", "lib/libqc_runtime.so", "include/qc/runtime.h", "lib/cmake/qc/qcConfig.cmake",
                 "lib/cmake/qc/qcConfigVersion.cmake", "lib/cmake/qc/qcTargets.cmake", "lib/cmake/qc/qcModel.cmake"):
        assert (prefix / path).exists(), path


def compiles(log: str) -> int:
    return log.count("qc-compile model/mlp.onnx")


@pytest.mark.parametrize("generator", ["Ninja", "Unix Makefiles"])
def test_qc_add_model_rebuilds_only_when_its_inputs_change(generator, top_build, tmp_path):
    """A project outside the source tree, built in parallel: both models compile once; a no-op
    rebuild runs nothing; touching the model re-runs both, changing one model's options re-runs
    that one; the program's numbers match ONNX Runtime.  Ninja finds qc in the Python package,
    Makefiles in the installed prefix."""
    src, build = tmp_path / "src", tmp_path / "elsewhere" / "build"
    shutil.copytree(REPO / "test" / "cmake" / "app", src)
    (src / "model").mkdir()
    shutil.copy(EXAMPLE, src / "model" / "mlp.onnx")
    config = REPO / "cmake" if generator == "Ninja" else top_build / "prefix" / "lib" / "cmake" / "qc"
    cmake("-G", generator, "-S", src, "-B", build, f"-Dqc_DIR={config}")
    assert compiles(cmake("--build", build, "-j", "2")) == 2
    second = cmake("--build", build, "-j", "2")
    assert compiles(second) == 0
    if generator == "Ninja":
        assert "no work to do" in second
        assert str(REPO / "passes" / "base.py") in (build / "build.ninja").read_text()  # qc's sources are inputs
    time.sleep(0.05)  # past the outputs' mtimes on any file system clock
    os.utime(src / "model" / "mlp.onnx")
    assert compiles(cmake("--build", build, "-j", "2")) == 2
    cmake("-S", src, "-B", build, "-DSCHEME=w8a8")
    assert compiles(cmake("--build", build, "-j", "2")) == 1
    assert compiles(cmake("--build", build)) == 0

    x = np.random.default_rng(4).standard_normal((4, 64)).astype(np.float32)
    x.tofile(tmp_path / "x.bin")
    proc = subprocess.run([str(build / "app"), str(tmp_path / "x.bin"), str(tmp_path / "p.bin")], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    w8a8, f32 = np.fromfile(tmp_path / "p.bin", np.float32).reshape(2, 4, 10)
    ref = ort.InferenceSession(str(EXAMPLE)).run(None, {"x": x})[0]
    np.testing.assert_allclose(f32, ref, atol=1e-6)
    np.testing.assert_allclose(w8a8, ref, atol=2e-2)
