"""bench/bandwidth.c's read buffers, from which bench_decode's ceiling is read: each is a mapping of its own,
advised for 2 MiB pages before its first touch.  Taken from malloc, a buffer was once heap memory that earlier
allocations had faulted on 4 KiB pages (advice no longer changes those), read slower than qc's weights on 2 MiB
pages, and qc "beat" the ceiling."""

import json
import subprocess
import sys

from conftest import REPO

# In a process whose large mallocs come from the heap (the benchmark's did: smaps showed its read buffers in [heap])
# and whose heap holds freed memory already faulted in, a read buffer must still be a fresh mapping, advised for 2 MiB
# pages: what its smaps entry says.
PROBE = """
import ctypes, json, re, sys
sys.path.insert(0, sys.argv[1])
import bandwidth
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes, libc.free.argtypes = [ctypes.c_size_t], [ctypes.c_void_p]
libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: mallocs under 1 GiB from the heap
block = libc.malloc(96 << 20)
ctypes.memset(block, 1, 96 << 20)
libc.free(block)
read = bandwidth.ColdRead(32 << 20, 1, 0)
seconds = read()
entry, = bandwidth.smaps_entries(read.buffer, 1)
print(json.dumps({"heap": "[heap]" in entry.splitlines()[0], "flags": re.search(r"VmFlags:(.*)", entry).group(1).split(),
                  "seconds": seconds}))
"""


def test_read_buffer_is_a_mapping_of_its_own_advised_for_huge_pages():
    proc = subprocess.run([sys.executable, "-c", PROBE, str(REPO / "bench")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    # (whether the OS then grants 2 MiB pages depends on its settings and free memory: bench_decode reports the share)
    assert not found["heap"] and "hg" in found["flags"] and found["seconds"] > 0
