"""qc-expand-math: f32 ``math.exp`` / ``math.erf`` / ``math.tanh`` -> polynomial arithmetic.

    %y = math.exp %x : f32
becomes (Cephes' expf: 2^n * p(r) with x = n ln2 + r, |r| <= ln2 / 2)
    %n = math.floor(x * log2(e) + 0.5); %r = x - n * ln2; %y = p(r) * 2^n  (2^n from exponent bits)

Results below the normal range are 0, above the float range +inf.  ``erf`` is the rational x P(x^2) / Q(x^2) that
Eigen and XLA use (absolute error < 5e-7 in f32) and
``tanh`` is (e^2x - 1) / (e^2x + 1).  Without this the LLVM lowering calls
libm once per element, which keeps the loops around these ops scalar; the
arithmetic form vectorizes.  Scalars and vectors of f32 are rewritten.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import arith, math

from .base import ModulePass, PassState, walk_ops

# Cephes expf coefficients, for r in [-ln2/2, ln2/2].
_EXP_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)
_LN2_HI, _LN2_LO = 0.693359375, -2.12194440e-4
# erf(x) = x P(x^2) / Q(x^2) on [-4, 4] (the rational form Eigen and XLA use), +-1 beyond.
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02)


class _Builder:
    """Arithmetic on one f32 shape (scalar or vector) at the current insertion point."""

    def __init__(self, like: ir.Type):
        self.type = like
        self.int_type = (ir.VectorType.get(like.shape, ir.IntegerType.get_signless(32))
                         if isinstance(like, ir.VectorType) else ir.IntegerType.get_signless(32))

    def _splat(self, t: ir.Type, attr: ir.Attribute) -> ir.Value:
        if isinstance(t, ir.VectorType):
            attr = ir.DenseElementsAttr.get_splat(t, attr)
        return arith.ConstantOp(t, attr).result

    def f(self, value: float) -> ir.Value:
        return self._splat(self.type, ir.FloatAttr.get(ir.F32Type.get(), value))

    def i(self, value: int) -> ir.Value:
        return self._splat(self.int_type, ir.IntegerAttr.get(ir.IntegerType.get_signless(32), value))

    def add(self, a, b):
        return arith.AddFOp(a, b).result

    def sub(self, a, b):
        return arith.SubFOp(a, b).result

    def mul(self, a, b):
        return arith.MulFOp(a, b).result

    def div(self, a, b):
        return arith.DivFOp(a, b).result

    def fma(self, a, b, c):
        return math.FmaOp(a, b, c).result

    def horner(self, x, coeffs):
        acc = self.f(coeffs[0])
        for c in coeffs[1:]:
            acc = self.fma(acc, x, self.f(c))
        return acc

    def clamp(self, x, lo: float, hi: float):
        return arith.MinimumFOp(arith.MaximumFOp(x, self.f(lo)).result, self.f(hi)).result

    def exp(self, x):
        # Below the normal range the result is flushed to 0 (libm would return denormals,
        # which make every later multiply by them slow); above the float range it is +inf.
        underflow = arith.CmpFOp(arith.CmpFPredicate.OLT, x, self.f(-87.3)).result
        overflow = arith.CmpFOp(arith.CmpFPredicate.OGT, x, self.f(88.72284)).result
        x = self.clamp(x, -87.3, 88.72284)
        n = math.FloorOp(self.fma(x, self.f(1.4426950408889634), self.f(0.5))).result
        r = self.sub(self.sub(x, self.mul(n, self.f(_LN2_HI))), self.mul(n, self.f(_LN2_LO)))
        p = self.horner(r, _EXP_POLY)
        p = self.add(self.fma(p, self.mul(r, r), r), self.f(1.0))
        # 2^n as 2^(n/2) * 2^(n - n/2): each factor is a normal float for n in [-126, 128].
        ni = arith.FPToSIOp(self.int_type, n).result
        half = arith.ShRSIOp(ni, self.i(1)).result
        y = self.mul(self.mul(p, self._pow2(half)), self._pow2(arith.SubIOp(ni, half).result))
        y = arith.SelectOp(underflow, self.f(0.0), y).result
        return arith.SelectOp(overflow, self.f(float("inf")), y).result

    def _pow2(self, n):
        bits = arith.ShLIOp(arith.AddIOp(n, self.i(127)).result, self.i(23)).result
        return arith.BitcastOp(self.type, bits).result

    def erf(self, x):
        x = self.clamp(x, -4.0, 4.0)
        x2 = self.mul(x, x)
        return self.div(self.mul(x, self.horner(x2, _ERF_P)), self.horner(x2, _ERF_Q))

    def tanh(self, x):
        e = self.exp(self.mul(self.clamp(x, -9.0, 9.0), self.f(2.0)))
        return self.div(self.sub(e, self.f(1.0)), self.add(e, self.f(1.0)))


def _is_f32(t: ir.Type) -> bool:
    element = t.element_type if isinstance(t, ir.VectorType) else t
    return isinstance(element, ir.F32Type)


class ExpandMath(ModulePass):
    NAME = "qc-expand-math"
    SUMMARY = "Rewrite f32 math.exp/erf/tanh as polynomial arithmetic that vectorizes"

    def run(self, module: ir.Operation, state: PassState) -> None:
        for name in ("math.exp", "math.erf", "math.tanh"):
            for op in walk_ops(module, name):
                if not _is_f32(op.results[0].type):
                    continue
                with ir.InsertionPoint(op), op.location:
                    b = _Builder(op.results[0].type)
                    value = getattr(b, name.split(".")[1])(op.operands[0])
                op.results[0].replace_all_uses_with(value)
                op.erase()
