"""bench/avx2_only.sh: a command run under it sees an AVX2-only CPU through CPUID (ORT, PyTorch, LLVM and gcc
choose their kernels from what it shows), and its own SIGSEGV handlers and crashes still work."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

SCRIPT = REPO / "bench" / "avx2_only.sh"
PROBE = """
import faulthandler, json, subprocess, sys
import llvmlite.binding as llvm
import torch
faulthandler.enable()  # installs a SIGSEGV handler, which must stay behind the script's
sys.path.insert(0, sys.argv[1])
from common import host
gcc = subprocess.run(["gcc", "-march=native", "-Q", "--help=target"], capture_output=True, text=True).stdout
print(json.dumps({"llvm": {k: v for k, v in llvm.get_host_cpu_features().items() if k in ("avx2", "fma", "avx512f",
                  "avx512vnni", "avxvnni", "amx-int8")}, "torch": torch.backends.cpu.get_cpu_capability(),
                  "gcc_avx512f": any(l.split()[:2] == ["-mavx512f", "[enabled]"] for l in gcc.splitlines()),
                  "host": host()}))
"""


def _flags() -> set[str]:
    text = Path("/proc/cpuinfo").read_text()
    return set(next(l for l in text.splitlines() if l.startswith("flags")).split(":", 1)[1].split())


def test_avx2_only_hides_avx512_from_every_engine(tmp_path):
    if "cpuid_fault" not in _flags():
        pytest.skip("this kernel or VM offers no CPUID faulting (no cpuid_fault flag): the script cannot run here")
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run([str(SCRIPT), sys.executable, "-c", PROBE, str(REPO / "bench")], capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["llvm"]["avx2"] and seen["llvm"]["fma"]
    assert not any(seen["llvm"][f] for f in ("avx512f", "avx512vnni", "avxvnni", "amx-int8"))
    assert seen["torch"] == "AVX2" and not seen["gcc_avx512f"]
    if "avx512f" in _flags():
        assert "CPUID hides avx512f" in seen["host"], seen["host"]
    # a real fault still reaches the program's own handler (faulthandler's report), then ends it as one
    crash = subprocess.run([str(SCRIPT), sys.executable, "-X", "faulthandler", "-c",
                            "import ctypes; ctypes.string_at(0)"], capture_output=True, text=True, env=env)
    assert crash.returncode == -11 and "Fatal Python error: Segmentation fault" in crash.stderr, crash
