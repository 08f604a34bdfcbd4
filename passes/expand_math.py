"""qc-expand-math: f32 ``math.exp`` / ``math.erf`` / ``math.tanh`` -> polynomial arithmetic, and ``math.fpowi`` by
a constant -> multiplications.

    %y = math.exp %x : f32
becomes (Cephes' expf: 2^n * p(r) with x = n ln2 + r, |r| <= ln2 / 2)
    %n = math.floor(x * log2(e) + 0.5); %r = x - n * ln2; %y = p(r) * 2^n  (2^n from exponent bits)

Results below the normal range are 0, above the float range +inf.  ``erf`` is the rational x P(x^2) / Q(x^2) that
Eigen and XLA use (absolute error < 5e-7 in f32) and
``tanh`` is (e^2x - 1) / (e^2x + 1).  ``x^n`` (``math.fpowi``, a norm's ``x.pow(2)``) is squarings and products in
the order of compiler-rt's ``__powisf2`` (``1 / x^-n`` for n < 0).  With ``no-libm`` (GPU targets: no libm to call),
``sin`` / ``cos`` are Cephes' (range reduction by pi/4 in three parts: accurate for |x| < 8192) and ``powf`` is
e^(y ln|x|) with the signs and special cases of C's powf.  Without this the LLVM lowering calls
libm once per element, which keeps the loops around these ops scalar; the
arithmetic form vectorizes.  Scalars and vectors of f32 are rewritten.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import arith, math

from .base import ModulePass, Option, PassState, parse_bool, walk_ops
from .matchers import constant_index

# Cephes expf coefficients, for r in [-ln2/2, ln2/2].
_EXP_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)
_LN2_HI, _LN2_LO = 0.693359375, -2.12194440e-4
# Cephes sinf / cosf: pi/4 in three parts, and the polynomials for r in [-pi/4, pi/4].
_DP1, _DP2, _DP3 = 0.78515625, 2.4187564849853515625e-4, 3.77489497744594108e-8
_SIN_POLY = (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1)
_COS_POLY = (2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2)
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

    def sin(self, x):
        return self._sincos(x, cosine=False)

    def cos(self, x):
        return self._sincos(x, cosine=True)

    def _sincos(self, x, cosine: bool):
        # Cephes' sinf / cosf: x = j pi/4 + r (j even, the 3-part pi/4 keeps r exact for |x| < 8192),
        # then sin or cos of r by octant pair n = j / 2: cos x = sin(x + pi/2) is octant pair n + 1.
        ax = math.AbsFOp(x).result
        # (min with a large value first: converting inf or NaN to an integer is undefined in LLVM)
        j = arith.FPToSIOp(self.int_type, arith.MinNumFOp(self.mul(ax, self.f(4 / 3.141592653589793)),
                                                          self.f(8388608.0)).result).result
        j = arith.AndIOp(arith.AddIOp(j, self.i(1)).result, self.i(-2)).result
        y = arith.SIToFPOp(self.type, j).result
        r = self.sub(self.sub(self.sub(ax, self.mul(y, self.f(_DP1))), self.mul(y, self.f(_DP2))), self.mul(y, self.f(_DP3)))
        n = arith.ShRSIOp(j, self.i(1)).result
        if cosine:
            n = arith.AddIOp(n, self.i(1)).result
        z = self.mul(r, r)
        sin_r = self.fma(self.mul(self.horner(z, _SIN_POLY), z), r, r)
        cos_r = self.add(self.sub(self.mul(self.mul(self.horner(z, _COS_POLY), z), z), self.mul(z, self.f(0.5))),
                         self.f(1.0))
        odd = self._bit(n, 1)
        v = arith.SelectOp(odd, cos_r, sin_r).result
        negate = self._bit(n, 2)
        if not cosine:  # sin is odd
            negate = arith.XOrIOp(negate, arith.CmpFOp(arith.CmpFPredicate.OLT, x, self.f(0.0)).result).result
        return arith.SelectOp(negate, arith.NegFOp(v).result, v).result

    def _bit(self, n, bit: int):
        return arith.CmpIOp(arith.CmpIPredicate.ne, arith.AndIOp(n, self.i(bit)).result, self.i(0)).result

    def powf(self, x, y):
        # |x|^y = e^(y ln|x|) (ln|0| = -inf gives 0 or inf); for x < 0 the sign of an odd integer y, NaN for
        # a fractional one (but (-inf)^y = inf^y); x^0 = 1 and 1^y = 1 even for NaN.
        r = self.exp(self.mul(y, math.LogOp(math.AbsFOp(x).result).result))
        whole = arith.CmpFOp(arith.CmpFPredicate.OEQ, math.FloorOp(y).result, y).result
        half = self.mul(y, self.f(0.5))
        odd = arith.CmpFOp(arith.CmpFPredicate.ONE, math.FloorOp(half).result, half).result
        negative = arith.CmpFOp(arith.CmpFPredicate.OLT, x, self.f(0.0)).result
        finite = arith.CmpFOp(arith.CmpFPredicate.ONE, x, self.f(float("-inf"))).result  # (-inf^0.5 = inf)
        signed = arith.SelectOp(odd, arith.NegFOp(r).result, r).result
        fraction = arith.SelectOp(finite, self.f(float("nan")), r).result
        r = arith.SelectOp(negative, arith.SelectOp(whole, signed, fraction).result, r).result
        one = arith.OrIOp(arith.CmpFOp(arith.CmpFPredicate.OEQ, y, self.f(0.0)).result,
                          arith.CmpFOp(arith.CmpFPredicate.OEQ, x, self.f(1.0)).result).result
        return arith.SelectOp(one, self.f(1.0), r).result

    def powi(self, x, n: int):
        result, base, m = None, x, abs(n)
        while m:
            if m & 1:
                result = base if result is None else self.mul(result, base)
            m >>= 1
            if m:
                base = self.mul(base, base)
        result = self.f(1.0) if result is None else result
        return self.div(self.f(1.0), result) if n < 0 else result

    def tanh(self, x):
        e = self.exp(self.mul(self.clamp(x, -9.0, 9.0), self.f(2.0)))
        return self.div(self.sub(e, self.f(1.0)), self.add(e, self.f(1.0)))


def _is_f32(t: ir.Type) -> bool:
    element = t.element_type if isinstance(t, ir.VectorType) else t
    return isinstance(element, ir.F32Type)


class ExpandMath(ModulePass):
    NAME = "qc-expand-math"
    SUMMARY = "Rewrite f32 math.exp/erf/tanh as polynomial arithmetic that vectorizes, fpowi by a constant as products"
    OPTIONS = {"no-libm": Option(parse_bool, False, "sin, cos and powf too (GPU targets, which have no libm)")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        names = ("math.exp", "math.erf", "math.tanh") + (("math.sin", "math.cos") if self.options["no-libm"] else ())
        for name in names:
            for op in walk_ops(module, name):
                _rewrite(op, name.split(".")[1], op.operands[0])
        for op in walk_ops(module, "math.fpowi"):
            n = constant_index(op.operands[1])
            if n is not None and abs(n) <= 64:  # (others left to libm)
                _rewrite(op, "powi", op.operands[0], n)
        for op in walk_ops(module, "math.powf") if self.options["no-libm"] else ():
            _rewrite(op, "powf", *op.operands)


def _rewrite(op: ir.Operation, method: str, *args) -> None:
    """``op`` replaced by ``_Builder.<method>(*args)``, built before it, when its result is f32 (or a vector of)."""
    if not _is_f32(op.results[0].type):
        return
    with ir.InsertionPoint(op), op.location:
        value = getattr(_Builder(op.results[0].type), method)(*args)
    op.results[0].replace_all_uses_with(value)
    op.erase()
