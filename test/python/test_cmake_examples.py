"""The CMake examples (examples/cmake-minilm, examples/cmake-llama), built and run by ctest from a fresh
build of qc's CMakeLists.txt (a file of its own, so that the test runner can balance it)."""

import subprocess

from conftest import CMAKE_ENV, tool


def test_examples_build_and_run_with_ctest(top_build):
    """ctest configures examples/cmake-minilm (C embeddings vs the Python runtime and PyTorch) and
    examples/cmake-llama (greedy tokens from C vs PyTorch) in fresh build folders, builds and runs them."""
    proc = subprocess.run([tool("ctest"), "--output-on-failure"], cwd=top_build / "build", capture_output=True, text=True,
                          env=CMAKE_ENV)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr
    assert "100% tests passed" in proc.stdout and proc.stdout.count(" Passed ") == 2, proc.stdout
