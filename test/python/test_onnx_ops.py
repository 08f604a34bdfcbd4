"""ONNX operator coverage (onnx_suite.py): every op form at the opset nearest 17 where it is valid,
and with its parameters as Constant nodes, compiles and matches ONNX Runtime (or the reference
evaluator), or, for the ops listed in REFUSED, is refused with an error naming the node.  The
script ``python test/python/onnx_suite.py`` runs every opset from 7 to 21 (docs/results.md)."""

import pytest
from onnx_suite import CASES, REFUSED, run_case, variants


def _chosen(case):
    runs = variants(case)
    plain = min((v for v, c in runs if not c), key=lambda v: abs(v - 17))
    return [(plain, False), *[(v, c) for v, c in runs if c]]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_onnx_op(case, workdir):
    for opset, constant_nodes in _chosen(case):
        result = run_case(case, opset, constant_nodes, workdir)
        expected = "refused" if case.op in REFUSED else "ok"
        assert result.status == expected, (opset, constant_nodes, result)
