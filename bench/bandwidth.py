"""The machine's streaming-read bandwidth ceiling (the best of several read kernels), and runners that time
a model's C API and a cold read of its weights' size in C, for the benchmark's own interleaved run
(bandwidth.c)."""

from __future__ import annotations

import ctypes
import functools
import re
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


@functools.cache
def _lib() -> ctypes.CDLL:
    with tempfile.TemporaryDirectory(prefix="qc-bw-") as tmp:  # (a loaded library outlives its file)
        lib = Path(tmp) / "bandwidth.so"
        subprocess.run(["cc", "-O3", "-march=native", "-shared", "-fPIC", "-pthread", str(HERE / "bandwidth.c"),
                        "-o", str(lib)], check=True)
        dll = ctypes.CDLL(str(lib))
    dll.read_bandwidth.restype = ctypes.c_double
    dll.read_bandwidth.argtypes = [ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_double)]
    dll.read_kernel_name.restype = ctypes.c_char_p
    dll.timed_run.restype = ctypes.c_double
    dll.timed_run.argtypes = [ctypes.c_void_p] * 4
    dll.flush_and_settle.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_double]
    dll.read_buffer.restype = ctypes.c_void_p
    dll.read_buffer.argtypes = [ctypes.c_size_t]
    dll.free_buffer.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    dll.timed_read_seconds.restype = ctypes.c_double
    dll.timed_read_seconds.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int]
    return dll


def read_bandwidths(threads: int, nbytes: int = 1 << 30, reps: int = 5) -> dict[str, float]:
    """Bytes/s of each read kernel in bandwidth.c (``threads`` threads reading a ``nbytes`` buffer, far
    larger than the caches; best of ``reps`` passes)."""
    lib = _lib()
    each = (ctypes.c_double * lib.read_kernels())()
    if lib.read_bandwidth(nbytes, threads, reps, each) <= 0:
        raise RuntimeError("read_bandwidth: out of memory")
    return {lib.read_kernel_name(i).decode(): each[i] for i in range(len(each))}


def read_bandwidth(threads: int, nbytes: int = 1 << 30, reps: int = 5) -> tuple[float, str, int]:
    """The read ceiling: the best bytes/s of any read kernel, which kernel it was and its index."""
    found = read_bandwidths(threads, nbytes, reps)
    best = max(found, key=found.get)
    return found[best], best, list(found).index(best)


class CApiRun:
    """A runner of ``common.interleaved`` that calls ``model``'s ``qc_model_run`` on ``inputs`` and
    returns the seconds timed in C (bandwidth.c's timed_run): the C API's time without the Python
    wrapper."""

    def __init__(self, model, inputs: dict):
        self.model, self.call = model, model.prepare(inputs)
        self.run, self.handle = model.c_api

    def __call__(self) -> float:
        seconds = _lib().timed_run(ctypes.cast(self.run, ctypes.c_void_p), self.handle, self.call.in_ptrs,
                                   self.call.out_ptrs)
        if seconds < 0:
            raise RuntimeError("timed_run: " + self.model.last_error())
        return seconds


def smaps_entries(address: int, nbytes: int) -> list[str]:
    """The /proc/self/smaps entries (one mapping each, its header line first) that overlap this process's bytes
    [address, address + nbytes); none where there is no such file."""
    try:
        text = Path("/proc/self/smaps").read_text()
    except OSError:
        return []
    found = []
    for entry in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", text):
        lo, hi = (int(x, 16) for x in entry.split(None, 1)[0].split("-"))
        if lo < address + nbytes and address < hi:
            found.append(entry)
    return found


def huge_page_share(address: int, nbytes: int) -> float:
    """The share of this process's bytes [address, address + nbytes) that Linux backs with transparent
    huge pages (AnonHugePages of their smaps entries; 0 where there is no smaps)."""
    huge = sum(int(re.search(r"^AnonHugePages:\s+(\d+) kB", entry, re.M).group(1)) << 10
               for entry in smaps_entries(address, nbytes))
    return min(1.0, huge / nbytes)


class ColdRead:
    """A runner of ``common.interleaved`` that reads ``nbytes`` (on 2 MiB pages) with ``threads`` threads and
    read kernel ``kernel`` (an index of ``read_bandwidths``' names) and returns the seconds timed in C:
    timed between a model's calls, after the same flush, its ``fastest`` call is that model's read
    ceiling at the same moments (a median would not be one: single calls here move by +-30 %).
    ``huge_pages``: the share of the buffer that the OS gave 2 MiB pages (a ceiling read on 4 KiB pages is
    slower than weights on 2 MiB ones: the benchmark says so where it is under 1)."""

    def __init__(self, nbytes: int, threads: int, kernel: int):
        self.nbytes, self.threads, self.kernel = nbytes, threads, kernel
        self.fastest = float("inf")
        self.buffer = _lib().read_buffer(nbytes)
        if not self.buffer:
            raise RuntimeError(f"read_buffer: cannot allocate {nbytes} bytes")
        self.huge_pages = huge_page_share(self.buffer, nbytes)

    def __call__(self) -> float:
        seconds = _lib().timed_read_seconds(self.buffer, self.nbytes, self.threads, self.kernel)
        self.fastest = min(self.fastest, seconds)
        return seconds

    def __del__(self):
        if getattr(self, "buffer", None):
            _lib().free_buffer(self.buffer, self.nbytes)


def flush_and_settle(buffer, threads: int, seconds: float = 0.1) -> None:
    """``threads`` threads read ``buffer`` (a numpy array larger than the caches), then all
    busy-wait ``seconds`` (see flush_and_settle in bandwidth.c)."""
    _lib().flush_and_settle(buffer.ctypes.data, buffer.nbytes, threads, seconds)


if __name__ == "__main__":
    import argparse
    import os
    import sys

    sys.path.insert(0, str(HERE))
    from common import host, table

    ap = argparse.ArgumentParser(description="Each read kernel's bandwidth; the ceiling is the best.")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    found = read_bandwidths(args.threads)
    print(f"Read bandwidth, 1 GiB, {args.threads} threads, best of 5; host {host()}\n")
    print(table([(name, f"{bw / 1e9:.1f}") for name, bw in found.items()], ("read kernel", "GB/s")))
