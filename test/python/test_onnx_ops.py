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
        if expected == "refused":  # the node, its op and why
            assert f"node 'node_{case.op.lower()}' (ONNX op '{case.op}'): " in result.detail, result


@pytest.mark.parametrize("op, attrs, out, message", [
    ("Unique", {"sorted": 1}, 1, "node 'n' (ONNX op 'Unique'): its output size depends on its input's values"),
    ("NonZero", {}, 7, "node 'n' (ONNX op 'NonZero'): its output size depends on its input's values"),
    ("Softmax", {"axis": -5}, 1, "the model is inconsistent: node 'n' (ONNX op 'Softmax'): 'axis' must be in [-1 , 0]"),
])
def test_refused_before_torch_mlir(op, attrs, out, message, workdir):
    """torch-mlir crashed the process on Unique and looped forever on a Softmax axis out of range:
    such nodes are refused by name before it sees them."""
    import qc
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node(op, ["x"], ["y"], name="n", **attrs)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8])],
                          [helper.make_tensor_value_info("y", out, None)])
    with pytest.raises(qc.QCError) as err:
        qc.compile(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), workdir / f"{op}.so")
    assert message in str(err.value)


def test_conv_group_zero_is_refused(workdir):
    """Conv group 0 passes ONNX's checker and shape inference; torch-mlir divided by it (SIGFPE)."""
    import qc

    from onnx import helper

    model = next(c for c in CASES if c.op == "Conv").model(17)
    model.graph.node[-1].attribute.append(helper.make_attribute("group", 0))
    with pytest.raises(qc.QCError, match=r"node 'node_conv' \(ONNX op 'Conv'\): attribute 'group' must be positive, got 0"):
        qc.compile(model, workdir / "group0.so")
