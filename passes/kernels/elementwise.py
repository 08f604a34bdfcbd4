"""Elementwise functions that a kernel applies to the values it stores (a fused epilogue).

A ``Function`` is a straight-line chain of arith ops on one f32 input, recorded from the body of
the elementwise ``linalg.generic`` it replaces (``capture``) and rebuilt on vectors inside a
kernel (``apply``).  A ReLU, as the body of the generic after a convolution

    ^bb0(%in: f32, %out: f32):
      %0 = arith.cmpf ugt, %in, %cst : f32
      %1 = arith.select %0, %in, %cst : f32
      linalg.yield %1 : f32

is ``(Step("arith.cmpf", (0, 0.0), predicate), Step("arith.select", (1, 0, 0.0)))`` (operand 0 the
input, i > 0 step i's result, a float a constant) and becomes, on a kernel's accumulator vector,

      %m = arith.cmpf ugt, %acc, %zero : vector<16xf32>
      %y = arith.select %m, %acc, %zero : vector<16xi1>, vector<16xf32>
"""

from __future__ import annotations

from typing import NamedTuple

from torch_mlir import ir

from .builder import KernelBuilder, i, vec

# ops whose f32 (or i1, for cmpf) results are the same op on vectors, lane by lane
OPS = frozenset({"arith.addf", "arith.subf", "arith.mulf", "arith.divf", "arith.negf", "arith.maximumf",
                 "arith.minimumf", "arith.maxnumf", "arith.minnumf", "arith.cmpf", "arith.select"})


class Step(NamedTuple):
    name: str
    operands: tuple  # int: the input (0) or step i's result (i >= 1); float: a scalar constant
    attributes: tuple  # (name, ir.Attribute) pairs: the predicate, fastmath flags
    predicate: bool  # the result is i1 (arith.cmpf)


Function = tuple  # of Steps; the value of the last is the function's


def capture(body: list[ir.Operation], arg: ir.Value, constant) -> Function | None:
    """The function that ``body`` (ops ending in ``linalg.yield``) computes from ``arg``, with
    ``constant(value)`` the float value of an operand defined outside (None: not a constant); None
    when an op is not lane-wise arith or the result does not depend on ``arg`` alone."""
    values, steps = [arg], []
    for op in body[:-1]:
        if op.name not in OPS or len(op.results) != 1:
            return None
        refs = []
        for v in op.operands:
            at = next((n for n, known in enumerate(values) if known == v), None)
            refs.append(at if at is not None else constant(v))
            if refs[-1] is None:
                return None
        result = op.results[0].type
        if not isinstance(result, (ir.F32Type, ir.IntegerType)):
            return None
        steps.append(Step(op.name, tuple(refs), tuple((name, op.attributes[name]) for name in op.attributes),
                          not isinstance(result, ir.F32Type)))
        values.append(op.results[0])
    if body[-1].name != "linalg.yield" or not steps or body[-1].operands[0] != values[-1]:
        return None
    return tuple(steps)


def apply(b: KernelBuilder, fn: Function, x: ir.Value) -> ir.Value:
    """``fn`` of each lane of the f32 vector ``x``."""
    vt = ir.VectorType(x.type)
    values = [x]
    for step in fn:
        operands = [values[r] if isinstance(r, int) else b.splat(vt, r) for r in step.operands]
        result = vec(vt.shape[0], i(1)) if step.predicate else vt
        op = ir.Operation.create(step.name, results=[result], operands=operands, attributes=dict(step.attributes))
        values.append(op.results[0])
    return values[-1]
