"""Helpers shared by the benchmarks: interleaved timing of several runners in one process."""

from __future__ import annotations

import atexit
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def scratch(prefix: str) -> Path:
    """A directory for a run's compiled models and exported ONNX files (GiBs for the LLaMA-sized layers),
    removed when the run ends."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def settle(seconds: float = 0.1) -> None:
    """Busy-waits between timed calls.  ONNX Runtime's workers keep spinning for tens of
    milliseconds after a run and would share the cores with the next engine's call; sleeping
    instead lets this VM's idle cores clock down, which slows whatever runs next (both measured)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class CacheFlush:
    """Reads a buffer larger than the last-level cache, so the next call streams its weights from
    memory as a decoder does once the other layers' weights have passed through the cache.
    4 GiB, not 1: this host's 480 MiB L3 keeps lines that were reused against a single 1 GiB scan
    (a standalone int4 decode took 4.2 ms after a 1 GiB read and 5.3-6.3 ms after 4 GiB).
    ``threads`` threads read it and then busy-wait 0.1 s together (bandwidth.c): a one-thread
    read and wait left the other core idle for a third of a second before every timed call."""

    def __init__(self, threads: int, nbytes: int = 4 << 30):
        import numpy as np

        self.buffer = np.ones(nbytes // 4, np.float32)
        self.threads = threads

    def __call__(self) -> None:
        from bandwidth import flush_and_settle

        flush_and_settle(self.buffer, self.threads)


def interleaved(runners: dict, iters: int, warmup: int = 3, before=settle) -> dict[str, float]:
    """Median seconds per call of each runner; calls alternate so machine noise hits all alike,
    and ``before()`` runs untimed ahead of every call.  A runner that returns a float has timed
    itself (in C: bandwidth.CApiRun, bandwidth.ColdRead): that is its time."""
    for fn in runners.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in runners}
    for _ in range(iters):
        for name, fn in runners.items():
            before()
            t0 = time.perf_counter()
            own = fn()
            samples[name].append(own if isinstance(own, float) else time.perf_counter() - t0)
    return {name: statistics.median(s) for name, s in samples.items()}


def table(rows: list[tuple], headers: tuple) -> str:
    """A GitHub-markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def publish(text: str, results: str | None) -> None:
    """Print a result and, if asked, append it to a markdown file."""
    print(text)
    if results:
        with open(results, "a") as f:
            f.write("\n" + text + "\n")


def host() -> str:
    """This machine as results tables name it: lscpu's model name and the SIMD features that pick kernels, as
    CPUID reports them (what ORT, PyTorch and qc's host target choose by; bench/avx2_only.sh hides some)."""
    import re
    import subprocess

    import llvmlite.binding as llvm

    text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = re.search(r"Model name:\s*(.*)", text)
    found = re.search(r"Flags:\s*(.*)", text)
    flags = set(found.group(1).split()) if found else set()
    cpuid = {name for name, on in llvm.get_host_cpu_features().items() if on}
    simd = {"avx2": "avx2", "fma": "fma", "avx512f": "avx512f", "avx512_vnni": "avx512vnni", "avx_vnni": "avxvnni",
            "amx_int8": "amx-int8", "amx_tile": "amx-tile"}
    shown = [f for f, llvm_name in simd.items() if llvm_name in cpuid]
    hidden = [f for f, llvm_name in simd.items() if f in flags and llvm_name not in cpuid]
    return (f"{model.group(1).strip() if model else 'unknown CPU'} ({os.cpu_count()} CPUs; {' '.join(shown) or 'no AVX2'}"
            + (f"; CPUID hides {' '.join(hidden)} (bench/avx2_only.sh)" if hidden else "") + ")")
