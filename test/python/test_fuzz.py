"""The fuzzer (fuzz.py) in small: mutated .mlir through qc-opt, mutated ONNX models through
qc-compile, corrupted weight blobs and statistics, wrong inputs through qc-run, all in this process.
No Python traceback escapes an entry point, every rejection is a diagnostic (located, for .mlir),
and the process survives.  ``python test/python/fuzz.py --cases N`` runs the long version."""

import random

import pytest
from fuzz import FAMILIES

CASES = {"mlir": 400, "onnx": 60, "files": 60}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_fuzz(family, workdir):
    folder = workdir / f"fuzz_{family}"
    folder.mkdir(exist_ok=True)
    counts = FAMILIES[family](CASES[family], random.Random(1), folder)
    print(family, dict(counts))
    assert counts["traceback"] == 0 and counts["unlocated"] == 0, counts
    assert counts["rejected"] > 0  # the mutations do reach the error paths
