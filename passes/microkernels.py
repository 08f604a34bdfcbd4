"""qc-microkernels: bufferized matmuls -> vector micro-kernels run on the thread pool.

Runs after bufferization.  Matches, on f32 memrefs,

    linalg.generic {library_call = "qc_panel_matmul"}   (from qc-lower-linear)
        C[..., p, n] += A[..., k] * B[p, k, n]           B: packed weight panels [P, K, NR]
    linalg.matmul        C[m, n] += A[m, k] * B[k, n]
    linalg.batch_matmul  C[b, m, n] += A[b, m, k] * B[b, k, n]

and replaces each by ``func.call @qc_par_N(A, B, C)``.  ``@qc_par_N`` is an
external trampoline (``trampoline.py``: defined by the generated C glue) that splits
the tasks (batch x column panels) over ``qc_parallel_for`` and calls the
kernel ``@qc_mk_N(A, B, C, first_task, end_task)`` defined here in the vector
dialect: for each column panel of NR = 2 x vector-width floats and each block
of ``rows`` rows it keeps rows x NR accumulators in registers, and per k
loads one panel vector of B, broadcasts one element of A per row and issues
``vector.fma``; the accumulators start from C, which holds the bias or zero.
When N is not a multiple of NR, B and C are read and written through a lane
mask (all lanes but in the last panel).  A panel matmul needs identity
layouts (its leading dims are flattened); for the others A may have any
strides, B and C a unit inner stride.  Panels may be f16 (scheme ``f16``): each
panel vector is loaded as half and widened to f32 before the FMAs.  Matmuls that do not fit are
left to the generic loop lowering.

When C's only earlier writer is a ``linalg.fill`` of zero (a linear without bias), the fill is
erased and the kernel (f32, or int8-activation) writes C instead of adding to it: the output is
not swept once more before the contraction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

from torch_mlir import ir
from torch_mlir.dialects import func

from .base import ModulePass, Option, PassState, one_of, walk_ops
from .lower_linear import PANEL_MATMUL
from ..core.quant.packing import unsigned_offset
from .lower_qgemm import QGEMM_DOT_PANEL, QGEMM_DOT_PANEL_SYM, QGEMM_PANEL, QGEMM_PANEL_SYM
from .matchers import identity_layout, indexing_maps, layout_of, preceding_zero_fill
from .templates import append_parsed
from .trampoline import declare

# How far ahead of the weight stream the decode kernels prefetch.  Measured on this project's
# 2-core Xeon (one LLaMA-7B layer, cold): 3 KiB beat 1 KiB by 4-5 % for the f32-activation kernels
# and 2 % for int4 dot products; no prefetch was 2x slower, and 4 or 8 KiB slowed int8 by 15-40 %.
PREFETCH_BYTES = 3072


_MATMUL_MAPS = ["affine_map<(d0, d1, d2) -> (d0, d2)>", "affine_map<(d0, d1, d2) -> (d2, d1)>",
                "affine_map<(d0, d1, d2) -> (d0, d1)>"]
_BATCH_MATMUL_MAPS = ["affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>", "affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>",
                      "affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>"]


@dataclass(frozen=True)
class Contraction:
    """C[b, m, n] += A[b, m, k] * B(b, k, n), B either packed panels or row-major."""

    packed: bool
    types: tuple[str, ...]  # memref types of the operands as the op sees them: A, B (or W, S, O), C
    batch: int
    m: int
    n: int
    k: int
    nr: int  # columns per panel
    quant: tuple[int, int] | None = None  # (bits, group size) of a qgemm panel contraction
    dot: bool = False  # int8 activations: an integer dot-product contraction
    b_elt: str = "f32"  # f16: packed panels stored as half, widened to f32 as they are loaded
    sym_offset: int | None = None  # symmetric weights: the offset is -sym_offset * scale, computed, not read
    zero_c: bool = False  # C was only zero-filled (the fill is erased): the kernel writes C without reading it

    @property
    def panels(self) -> int:
        return -(-self.n // self.nr)

    @property
    def masked(self) -> bool:
        """The last column panel is partial: B and C are accessed through a lane mask."""
        return self.n % self.nr != 0

    @property
    def tasks(self) -> int:
        return self.batch * self.panels


def _kernel_memref(value: ir.Value, inner_unit_stride: bool, identity: bool = False,
                   elt: type = ir.F32Type) -> ir.MemRefType | None:
    """The memref type of ``value`` if its element type is ``elt`` and its layout suits the kernel, else None."""
    t = value.type
    if not isinstance(t, ir.MemRefType) or not isinstance(t.element_type, elt):
        return None
    layout = t.layout
    if isinstance(layout, ir.AffineMapAttr):
        return t if identity_layout(t) else None
    if identity or not isinstance(layout, ir.StridedLayoutAttr):
        return None
    return t if not inner_unit_stride or layout.strides[-1] == 1 else None


def _default_maps(op: ir.Operation, expected: list[str]) -> bool:
    if "indexing_maps" not in op.attributes:
        return True
    return [str(ir.AffineMapAttr.get(m)) for m in indexing_maps(op)] == expected


def _library_call(op: ir.Operation) -> str | None:
    return ir.StringAttr(op.attributes["library_call"]).value if "library_call" in op.attributes else None


def match_qgemm(op: ir.Operation) -> Contraction | None:
    """A qc-lower-qgemm contraction: A, W [P, K, NR*bits/8] i8, S and O [P, G, NR] f32, C, its
    packing in ``qc.layout``."""
    layout = layout_of(op)
    if layout is None or layout.dot or len(op.operands) != 5:
        return None
    a, w, s, o, c = op.operands
    ta, ts, to, tc = (_kernel_memref(v, True, identity=True) for v in (a, s, o, c))
    tw = _kernel_memref(w, True, identity=True, elt=ir.IntegerType)
    if not (ta and ts and to and tc and tw) or list(tw.shape) != layout.weight_shape:
        return None
    m = math.prod(ta.shape[:-1])
    sym = unsigned_offset(layout.bits, False) if layout.symmetric else None
    return Contraction(True, tuple(str(t) for t in (ta, tw, ts, to, tc)), 1, m, layout.panels * layout.width,
                       layout.k, layout.width, (layout.bits, layout.group), sym_offset=sym)


def match_qgemm_dot(op: ir.Operation) -> Contraction | None:
    """A qc-lower-qgemm integer contraction: XQ i8, SX f32, XSUM i32, W [P, K/q, NR*4] i8, S, O, C,
    its packing in ``qc.layout``."""
    layout = layout_of(op)
    if layout is None or not layout.dot or len(op.operands) != 7:
        return None
    kinds = (ir.IntegerType, ir.F32Type, ir.IntegerType, ir.IntegerType, ir.F32Type, ir.F32Type, ir.F32Type)
    types = [_kernel_memref(v, True, identity=True, elt=kind) for v, kind in zip(op.operands, kinds)]
    if not all(types) or list(types[3].shape) != layout.weight_shape:
        return None
    m = math.prod(types[0].shape[:-1])
    sym = unsigned_offset(layout.bits, True) if layout.symmetric else None
    return Contraction(True, tuple(map(str, types)), 1, m, layout.panels * layout.width, layout.k, layout.width,
                       (layout.bits, layout.group), dot=True, sym_offset=sym)


def match(op: ir.Operation, lanes: int) -> Contraction | None:
    """The contraction ``op`` is (by its library call, then its operands), or None."""
    call = _library_call(op) if op.name == "linalg.generic" else None
    if call in (QGEMM_DOT_PANEL, QGEMM_DOT_PANEL_SYM):
        return match_qgemm_dot(op)
    if call in (QGEMM_PANEL, QGEMM_PANEL_SYM):
        return match_qgemm(op)
    if len(op.operands) != 3:
        return None
    a, b, c = op.operands
    if op.name == "linalg.generic":
        if call != PANEL_MATMUL:
            return None
        # The kernel flattens A's and C's leading dims: they must be contiguous.
        ta, tc = (_kernel_memref(v, True, identity=True) for v in (a, c))
        tb = _kernel_memref(b, True, identity=True) or _kernel_memref(b, True, identity=True, elt=ir.F16Type)
        if not (ta and tb and tc):
            return None
        types = (str(ta), str(tb), str(tc))
        panels, k, nr = tb.shape
        m = math.prod(ta.shape[:-1])
        return Contraction(True, types, 1, m, panels * nr, k, nr, b_elt=str(tb.element_type))
    ta, tb, tc = _kernel_memref(a, False), _kernel_memref(b, True), _kernel_memref(c, True)
    if not (ta and tb and tc):
        return None
    types = (str(ta), str(tb), str(tc))
    if op.name == "linalg.matmul" and _default_maps(op, _MATMUL_MAPS):
        batch, (m, k), n = 1, ta.shape, tb.shape[1]
    elif op.name == "linalg.batch_matmul" and _default_maps(op, _BATCH_MATMUL_MAPS):
        (batch, m, k), n = ta.shape, tb.shape[2]
    else:
        return None
    nr = next((w for w in (2 * lanes, lanes) if n % w == 0), lanes if n < 2 * lanes else 2 * lanes)
    return Contraction(False, types, batch, m, n, k, nr)


def _view(src: str, dst: str, src_t: str, target: list[int], elt: str = "f32") -> str:
    """A line reshaping identity-layout memref ``%src`` to ``target`` (collapse or add leading dims)."""
    rank = ir.MemRefType(ir.Type.parse(src_t)).rank
    t = f"memref<{''.join(f'{d}x' for d in target)}{elt}>"
    if rank > len(target):  # collapse the leading dims into one
        lead = rank - len(target) + 1
        groups = [list(range(lead))] + [[i] for i in range(lead, rank)]
        return f"    %{dst} = memref.collapse_shape %{src} {groups} : {src_t} into {t}"
    if rank < len(target):  # add unit leading dims
        extra = len(target) - rank
        groups = [list(range(extra + 1))] + [[extra + i] for i in range(1, rank)] if rank else []
        return f"    %{dst} = memref.expand_shape %{src} {groups} output_shape {target} : {src_t} into {t}"
    return f"    %{dst} = memref.cast %{src} : {src_t} to {t}"


def _panel_views(c: Contraction) -> list[str]:
    """Reshape a panel contraction's A to [M, K] and C to [M, P, NR] (identity layouts)."""
    return [_view("A0", "A", c.types[0], [c.m, c.k]), _view("C0", "C", c.types[-1], [c.m, c.panels, c.nr])]


def _row_blocks(block, m: int, rows: int, first: int = 0) -> list[str]:
    """Rows [first, m): full blocks of ``rows`` rows in a loop, then the remainder; closes the
    task loop and the kernel."""
    main = m - (m - first) % rows
    lines = [f"      %cFirst = arith.constant {first} : index", f"      %cMain = arith.constant {main} : index",
             f"      %cMR = arith.constant {rows} : index"]
    if main > first:
        lines.append("      scf.for %i = %cFirst to %cMain step %cMR {")
        lines += block("m", rows, "%i", "        ")
        lines.append("      }")
    if m > main:
        lines += block("t", m - main, "%cMain", "      ")
    return lines + ["    }", "    return", "}"]


def kernel_text(name: str, c: Contraction, rows: int) -> str:
    """The vector-dialect kernel: tasks [t0, t1) of (batch, panel) pairs."""
    vt = f"vector<{c.nr}xf32>"
    ta, tb, tc = c.types
    if c.packed:  # views A[M, K], B[P, K, NR], C[M, P, NR]
        at, bt, ct = (f"memref<{c.m}x{c.k}xf32>", tb, f"memref<{c.m}x{c.panels}x{c.nr}xf32>")
        args, views = "%A0: {}, %B: {}, %C0: {}".format(*c.types), _panel_views(c)
    else:  # the operands as they are: [(b,) M, K] x [(b,) K, N] -> [(b,) M, N]
        at, bt, ct = c.types
        args, views = "%A: {}, %B: {}, %C: {}".format(*c.types), []
    lines = [f"func.func @{name}({args}, %t0: index, %t1: index) attributes {{llvm.emit_c_interface}} {{",
             *views,
             "    %c0 = arith.constant 0 : index",
             "    %c1 = arith.constant 1 : index",
             f"    %cK = arith.constant {c.k} : index",
             f"    %cP = arith.constant {c.panels} : index",
             f"    %cNR = arith.constant {c.nr} : index",
             f"    %cN = arith.constant {c.n} : index",
             f"    %zero = arith.constant dense<0.0> : {vt}",
             f"    %zero_f16 = arith.constant dense<0.0> : vector<{c.nr}xf16>",
             *[f"    %c{j}_row = arith.constant {j} : index" for j in range(1, rows)],
             "    scf.for %t = %t0 to %t1 step %c1 {",
             "      %bi = arith.divui %t, %cP : index",
             "      %p = arith.remui %t, %cP : index",
             "      %n0 = arith.muli %p, %cNR : index",
             "      %left = arith.subi %cN, %n0 : index",
             f"      %mask = vector.create_mask %left : vector<{c.nr}xi1>"]

    def load(index: str, memref_type: str, elt: str = "f32") -> str:
        t, zero = f"vector<{c.nr}x{elt}>", "%zero" if elt == "f32" else f"%zero_{elt}"
        if c.masked:
            return f"vector.maskedload {index}, %mask, {zero} : {memref_type}, vector<{c.nr}xi1>, {t} into {t}"
        return f"vector.load {index} : {memref_type}, {t}"

    def store(value: str, index: str) -> str:
        if c.masked:
            return f"vector.maskedstore {index}, %mask, {value} : {ct}, vector<{c.nr}xi1>, {vt}"
        return f"vector.store {value}, {index} : {ct}, {vt}"

    batch = "" if c.packed or ir.MemRefType(ir.Type.parse(ta)).rank == 2 else "%bi, "

    def a_index(row: str, k: str) -> str:
        return f"%A[{batch}{row}, {k}]"

    def b_index(k: str) -> str:
        return f"%B[%p, {k}, %c0]" if c.packed else f"%B[{batch}{k}, %n0]"

    def c_index(row: str) -> str:
        return f"%C[{row}, %p, %c0]" if c.packed else f"%C[{batch}{row}, %n0]"

    def block(tag: str, count: int, base: str, indent: str) -> list[str]:
        out = []
        rws = [base] + [f"%{tag}r{j}" for j in range(1, count)]
        for j in range(1, count):
            out.append(f"{indent}{rws[j]} = arith.addi {base}, %c{j}_row : index")
        if not c.zero_c:
            for j in range(count):
                out.append(f"{indent}%{tag}c{j} = {load(c_index(rws[j]), ct)}")
        iters = ", ".join(f"%{tag}a{j} = {'%zero' if c.zero_c else f'%{tag}c{j}'}" for j in range(count))
        out.append(f"{indent}%{tag}res:{count} = scf.for %{tag}k = %c0 to %cK step %c1 iter_args({iters}) -> "
                   f"({', '.join([vt] * count)}) {{")
        if c.b_elt == "f16":
            out += [f"{indent}  %{tag}bh = {load(b_index(f'%{tag}k'), bt, 'f16')}",
                    f"{indent}  %{tag}b = arith.extf %{tag}bh : vector<{c.nr}xf16> to {vt}"]
        else:
            out.append(f"{indent}  %{tag}b = {load(b_index(f'%{tag}k'), bt)}")
        for j in range(count):
            out += [f"{indent}  %{tag}s{j} = memref.load {a_index(rws[j], f'%{tag}k')} : {at}",
                    f"{indent}  %{tag}v{j} = vector.broadcast %{tag}s{j} : f32 to {vt}",
                    f"{indent}  %{tag}f{j} = vector.fma %{tag}v{j}, %{tag}b, %{tag}a{j} : {vt}"]
        out.append(f"{indent}  scf.yield {', '.join(f'%{tag}f{j}' for j in range(count))} : {', '.join([vt] * count)}")
        out.append(f"{indent}}}")
        for j in range(count):
            out.append(f"{indent}{store(f'%{tag}res#{j}', c_index(rws[j]))}")
        return out

    lines += _row_blocks(block, c.m, rows)
    return "\n".join(lines)


def qgemm_kernel_text(name: str, c: Contraction, rows: int) -> str:
    """The vector-dialect kernel of a quantized panel contraction: tasks [t0, t1) are column panels.

    The scale and offset are factored out of each group, ``sum_k x w = s * sum_k x u + o * sum_k x``:
    per k the panel row of packed integers is loaded once, unpacked (int4: mask and shift, two
    columns per byte) and converted to two f32 vectors of NR/2 lanes, then one FMA per row and
    half-panel; per group each row's ``sum x`` is a few vector loads of A, and C (holding the
    bias or zero) takes ``acc * s + xsum * o``.  Symmetric weights (``sym_offset``) do not stream
    O: C takes ``(acc - sym_offset * xsum) * s``, and int8's offset 0 needs no sum.  With
    AVX-512 the nibbles become floats by a 16-entry table lookup (``vpermps`` reads the low 4
    bits of each index).  With few rows, k is unrolled into independent accumulators so that
    FMA latency, not the weight stream, is hidden."""
    bits, group = c.quant
    lanes = c.nr // 2
    vt, bt, it = f"vector<{lanes}xf32>", f"vector<{lanes}xi8>", f"vector<{lanes}xi32>"
    ta, tw, ts, to, tc = c.types
    at, ct = f"memref<{c.m}x{c.k}xf32>", f"memref<{c.m}x{c.panels}x{c.nr}xf32>"
    groups = c.k // group
    chunks = group - group % lanes  # k of a group summed as vectors; the rest one by one
    lines = [f"func.func @{name}(%A0: {ta}, %W: {tw}, %S: {ts}, %O: {to}, %C0: {tc}, %t0: index, %t1: index) "
             "attributes {llvm.emit_c_interface} {",
             *_panel_views(c),
             "    %c0 = arith.constant 0 : index",
             "    %c1 = arith.constant 1 : index",
             f"    %cL = arith.constant {lanes} : index",
             f"    %cG = arith.constant {groups} : index",
             f"    %cGS = arith.constant {group} : index",
             f"    %cChunks = arith.constant {chunks} : index",
             f"    %mask = arith.constant dense<15> : {it}",
             f"    %four = arith.constant dense<4> : {it}",
             f"    %nibbles = arith.constant dense<[{', '.join(f'{v}.0' for v in range(lanes))}]> : {vt}",
             f"    %zf = arith.constant dense<0.0> : {vt}",
             "    %zs = arith.constant 0.0 : f32",
             *([f"    %cNegShift = arith.constant dense<{-float(c.sym_offset)}> : {vt}"] if c.sym_offset else []),
             *[f"    %c{j}_row = arith.constant {j} : index" for j in range(1, max(rows, 4))],
             "    scf.for %p = %t0 to %t1 step %c1 {"]
    consts: set[int] = set()

    def row_sum(tag: str, row: str, kb: str, ke: str, ind: str) -> list[str]:
        """``%{tag}``: the sum of A[row, kb:ke) in every lane (vector loads, then the k left over)."""
        out = [f"{ind}%{tag}ve = arith.addi {kb}, %cChunks : index"]
        if chunks:
            out += [f"{ind}%{tag}v = scf.for %{tag}i = {kb} to %{tag}ve step %cL iter_args(%{tag}va = %zf) "
                    f"-> ({vt}) {{",
                    f"{ind}  %{tag}vl = vector.load %A[{row}, %{tag}i] : {at}, {vt}",
                    f"{ind}  %{tag}vs = arith.addf %{tag}va, %{tag}vl fastmath<reassoc> : {vt}",
                    f"{ind}  scf.yield %{tag}vs : {vt}",
                    f"{ind}}}",
                    f"{ind}%{tag}r = vector.reduction <add>, %{tag}v fastmath<reassoc> : {vt} into f32"]
        if group % lanes:
            start = f"%{tag}r" if chunks else "%zs"
            out += [f"{ind}%{tag}se = scf.for %{tag}j = %{tag}ve to {ke} step %c1 iter_args(%{tag}sa = {start}) "
                    "-> (f32) {",
                    f"{ind}  %{tag}sl = memref.load %A[{row}, %{tag}j] : {at}",
                    f"{ind}  %{tag}ss = arith.addf %{tag}sa, %{tag}sl : f32",
                    f"{ind}  scf.yield %{tag}ss : f32",
                    f"{ind}}}"]
        total = f"%{tag}se" if group % lanes else f"%{tag}r"
        return out + [f"{ind}%{tag} = vector.broadcast {total} : f32 to {vt}"]

    def block(tag: str, count: int, base: str, indent: str) -> list[str]:
        unroll = next(u for u in (4 // count if count < 4 else 1, 2, 1) if u and group % u == 0)
        out = []
        rws = [base] + [f"%{tag}r{j}" for j in range(1, count)]
        for j in range(1, count):
            out.append(f"{indent}{rws[j]} = arith.addi {base}, %c{j}_row : index")
        accs = [(j, h, u) for j in range(count) for h in range(2) for u in range(unroll)]
        acc = lambda j, h, u: f"{j}_{h}_{u}"  # noqa: E731
        types = ", ".join([vt] * len(accs))
        out.append(f"{indent}scf.for %{tag}g = %c0 to %cG step %c1 {{")
        ind = indent + "  "
        out += [f"{ind}%{tag}kb = arith.muli %{tag}g, %cGS : index",
                f"{ind}%{tag}ke = arith.addi %{tag}kb, %cGS : index",
                f"{ind}%{tag}step = arith.constant {unroll} : index"]
        iters = ", ".join(f"%{tag}a{acc(*a)} = %zf" for a in accs)
        out.append(f"{ind}%{tag}gres:{len(accs)} = scf.for %{tag}k = %{tag}kb to %{tag}ke step %{tag}step "
                   f"iter_args({iters}) -> ({types}) {{")
        body = ind + "  "
        new = {}
        row_bytes = c.nr * bits // 8
        for line in range(0, unroll * row_bytes, 64):  # software prefetch, one per cache line of W read
            ahead = PREFETCH_BYTES // row_bytes + line // row_bytes
            out += [f"{body}%{tag}pf{line} = arith.addi %{tag}k, %c{ahead}_ahead : index",
                    f"{body}memref.prefetch %W[%p, %{tag}pf{line}, %c{line % row_bytes}_ahead], read, locality<3>, "
                    f"data : {tw}"]
            consts.update({ahead, line % row_bytes})
        for u in range(unroll):
            k = f"%{tag}k" if u == 0 else f"%{tag}k{u}"
            if u:
                out.append(f"{body}{k} = arith.addi %{tag}k, %c{u}_row : index")
            if bits == 4:
                out += [f"{body}%{tag}b{u} = vector.load %W[%p, {k}, %c0] : {tw}, {bt}",
                        f"{body}%{tag}e{u} = arith.extui %{tag}b{u} : {bt} to {it}",
                        f"{body}%{tag}hi{u} = arith.shrui %{tag}e{u}, %four : {it}"]
                if lanes == 16:  # vpermps reads the low 4 bits of each index: a 16-float table lookup
                    out += [f"{body}%{tag}f{h}_{u} = llvm.call_intrinsic \"llvm.x86.avx512.permvar.sf.512\"(%nibbles, "
                            f"%{tag}{src}{u}) : ({vt}, {it}) -> {vt}" for h, src in ((0, "e"), (1, "hi"))]
                else:
                    out += [f"{body}%{tag}lo{u} = arith.andi %{tag}e{u}, %mask : {it}",
                            f"{body}%{tag}f0_{u} = arith.sitofp %{tag}lo{u} : {it} to {vt}",
                            f"{body}%{tag}f1_{u} = arith.sitofp %{tag}hi{u} : {it} to {vt}"]
            else:
                out += [f"{body}%{tag}b0_{u} = vector.load %W[%p, {k}, %c0] : {tw}, {bt}",
                        f"{body}%{tag}b1_{u} = vector.load %W[%p, {k}, %cL] : {tw}, {bt}",
                        f"{body}%{tag}f0_{u} = arith.sitofp %{tag}b0_{u} : {bt} to {vt}",
                        f"{body}%{tag}f1_{u} = arith.sitofp %{tag}b1_{u} : {bt} to {vt}"]
            for j in range(count):
                out += [f"{body}%{tag}x{j}_{u} = memref.load %A[{rws[j]}, {k}] : {at}",
                        f"{body}%{tag}v{j}_{u} = vector.broadcast %{tag}x{j}_{u} : f32 to {vt}"]
                for h in range(2):
                    new[(j, h, u)] = f"%{tag}n{acc(j, h, u)}"
                    out.append(f"{body}{new[(j, h, u)]} = vector.fma %{tag}v{j}_{u}, %{tag}f{h}_{u}, "
                               f"%{tag}a{acc(j, h, u)} : {vt}")
        out.append(f"{body}scf.yield {', '.join(new[a] for a in accs)} : {types}")
        out.append(f"{ind}}}")
        for h, col in ((0, "%c0"), (1, "%cL")):
            out.append(f"{ind}%{tag}s{h} = vector.load %S[%p, %{tag}g, {col}] : {ts}, {vt}")
            if c.sym_offset is None:
                out.append(f"{ind}%{tag}o{h} = vector.load %O[%p, %{tag}g, {col}] : {to}, {vt}")
        for j in range(count):
            if c.sym_offset != 0:
                out += row_sum(f"{tag}xs{j}", rws[j], f"%{tag}kb", f"%{tag}ke", ind)
            for h, col in ((0, "%c0"), (1, "%cL")):
                total = f"%{tag}gres#{accs.index((j, h, 0))}"
                for u in range(1, unroll):
                    out.append(f"{ind}%{tag}sum{acc(j, h, u)} = arith.addf {total}, "
                               f"%{tag}gres#{accs.index((j, h, u))} : {vt}")
                    total = f"%{tag}sum{acc(j, h, u)}"
                dst = f"%{tag}y{j}_{h}"
                out.append(f"{ind}{dst}_c = vector.load %C[{rws[j]}, %p, {col}] : {ct}, {vt}")
                if c.sym_offset is None:  # C + acc * s + xsum * o
                    out += [f"{ind}{dst}_a = vector.fma {total}, %{tag}s{h}, {dst}_c : {vt}",
                            f"{ind}{dst} = vector.fma %{tag}xs{j}, %{tag}o{h}, {dst}_a : {vt}"]
                elif c.sym_offset:  # C + (acc - shift * xsum) * s
                    out += [f"{ind}{dst}_a = vector.fma %{tag}xs{j}, %cNegShift, {total} : {vt}",
                            f"{ind}{dst} = vector.fma {dst}_a, %{tag}s{h}, {dst}_c : {vt}"]
                else:
                    out.append(f"{ind}{dst} = vector.fma {total}, %{tag}s{h}, {dst}_c : {vt}")
                out.append(f"{ind}vector.store {dst}, %C[{rws[j]}, %p, {col}] : {ct}, {vt}")
        out.append(f"{indent}}}")
        return out

    lines += _row_blocks(block, c.m, rows)
    lines[1:1] = [f"    %c{v}_ahead = arith.constant {v} : index" for v in sorted(consts)]
    return "\n".join(lines)


DOT_FLAVOURS = ("amx", "vnni", "avx512bw", "avx2", "generic")
# f32 lanes each vector flavour's intrinsics exist for (the others fall back to generic); an
# AVX-512BW machine has AVX2's forms for 8 lanes
_DOT_LANES = {"vnni": (8, 16), "avx512bw": (8, 16), "avx2": (8,)}
_MADDUBS = {8: ("llvm.x86.avx2.pmadd.ub.sw", "llvm.x86.avx2.pmadd.wd"),
            16: ("llvm.x86.avx512.pmaddubs.w.512", "llvm.x86.avx512.pmaddw.d.512")}


def dot_flavour(requested: str, c: Contraction) -> str:
    """The flavour a dot contraction's vector kernel uses: AMX machines have VNNI for what the
    tiles do not take; a flavour without intrinsics for the panel's lanes falls back to generic."""
    flavour = "vnni" if requested == "amx" else requested
    return flavour if c.nr // 2 in _DOT_LANES.get(flavour, ()) else "generic"


def _dot_lines(flavour: str, lanes: int, acc: str, u: str, x: str, out: str, indent: str) -> list[str]:
    """``out = acc + dot4(u, x)`` per i32 lane: unsigned bytes of ``u`` times signed bytes of ``x``.

    avx2 / avx512bw: ``vpmaddubsw`` then ``vpmaddwd`` by ones, exact only while each pair
    ``u0 x0 + u1 x1`` fits int16: the caller passes int4's u < 16 as they are and int8 weights
    as ``|q|`` against ``sign(x, q)`` (at most 128 x 127 x 2 = 32512)."""
    vi, vb, vw = f"vector<{lanes}xi32>", f"vector<{4 * lanes}xi8>", f"vector<{2 * lanes}xi16>"
    if flavour == "vnni":
        return [f"{indent}{out} = llvm.call_intrinsic \"llvm.x86.avx512.vpdpbusd.{32 * lanes}\"({acc}, {u}, {x}) : "
                f"({vi}, {vb}, {vb}) -> {vi}"]
    t = out.lstrip("%")
    if flavour == "generic":  # widen to i32, multiply, add each lane's 4 products
        v4 = f"vector<{4 * lanes}xi32>"
        lines = [f"{indent}%{t}_u = arith.extui {u} : {vb} to {v4}",
                 f"{indent}%{t}_x = arith.extsi {x} : {vb} to {v4}",
                 f"{indent}%{t}_p = arith.muli %{t}_u, %{t}_x : {v4}"]
        total = acc
        for j in range(4):
            lanes_j = ", ".join(str(4 * i + j) for i in range(lanes))
            lines += [f"{indent}%{t}_p{j} = vector.shuffle %{t}_p, %{t}_p [{lanes_j}] : {v4}, {v4}",
                      f"{indent}{out if j == 3 else f'%{t}_s{j}'} = arith.addi {total}, %{t}_p{j} : {vi}"]
            total = f"%{t}_s{j}"
        return lines
    pairs, quads = _MADDUBS[lanes]
    return [f"{indent}%{t}_w = llvm.call_intrinsic \"{pairs}\"({u}, {x}) : ({vb}, {vb}) -> {vw}",
            f"{indent}%{t}_d = llvm.call_intrinsic \"{quads}\"(%{t}_w, %ones16) : ({vw}, {vw}) -> {vi}",
            f"{indent}{out} = arith.addi {acc}, %{t}_d : {vi}"]


class SignedWeights(NamedTuple):
    """Values of one int8 dot-panel vector for the vpmaddubsw flavours."""

    abs: str  # |q| (unsigned; exact for q = -128 too)
    q: str    # the signed weights
    neg: str  # q < 0, per byte


def _signed_weights(tag: str, u: str, lanes: int, indent: str) -> tuple[list[str], SignedWeights]:
    """The lines computing ``SignedWeights`` from dot-panel bytes ``u = q + 128``."""
    vb, mask = f"vector<{4 * lanes}xi8>", f"vector<{4 * lanes}xi1>"
    lines = [f"{indent}%{tag}q = arith.xori {u}, %c128b : {vb}",
             f"{indent}%{tag}neg = arith.cmpi slt, %{tag}q, %c0b : {vb}",
             f"{indent}%{tag}nq = arith.subi %c0b, %{tag}q : {vb}",
             f"{indent}%{tag}abs = arith.select %{tag}neg, %{tag}nq, %{tag}q : {mask}, {vb}"]
    return lines, SignedWeights(f"%{tag}abs", f"%{tag}q", f"%{tag}neg")


def _sign_lines(lanes: int, x: str, w: SignedWeights, out: str, indent: str) -> list[str]:
    """``out = sign(x, q)``: x negated where q < 0 (and, with AVX2's psignb, zeroed where q = 0,
    which |q| = 0 makes irrelevant).  AVX-512 has no psignb: a compare and a blend."""
    vb = f"vector<{4 * lanes}xi8>"
    if lanes == 8:
        return [f"{indent}{out} = llvm.call_intrinsic \"llvm.x86.avx2.psign.b\"({x}, {w.q}) : ({vb}, {vb}) -> {vb}"]
    t = out.lstrip("%")
    return [f"{indent}%{t}_nx = arith.subi %c0b, {x} : {vb}",
            f"{indent}{out} = arith.select {w.neg}, %{t}_nx, {x} : vector<{4 * lanes}xi1>, {vb}"]


def _fold_group(ind: str, dst: str, acc: str, scale: str, ysum: str, offset: str, prev: str, vi: str,
                vf: str) -> list[str]:
    """``dst = sitofp(acc) * scale + prev`` then ``+ ysum * offset``: one group's integer sums
    into the f32 accumulator (the VNNI and AMX paths share this order, so they round alike)."""
    return [f"{ind}{dst}_if = arith.sitofp {acc} : {vi} to {vf}",
            f"{ind}{dst}_fa = vector.fma {dst}_if, {scale}, {prev} : {vf}",
            f"{ind}{dst} = vector.fma {ysum}, {offset}, {dst}_fa : {vf}"]


def _offset(c: Contraction, ind: str, dst: str, scale: str, where: str, vf: str) -> str:
    """A group's offset vector: read from O, or for symmetric weights ``-shift * scale`` (exact:
    the shift is a power of two, so the product equals the stored one bit for bit and O is not streamed)."""
    if c.sym_offset is not None:
        return f"{ind}{dst} = arith.mulf {scale}, %cNegShift : {vf}"
    return f"{ind}{dst} = vector.load {where}, {vf}"


def _store_row(c: Contraction, ind: str, dst: str, value: str, row_scale: str, row: str, col: str, ct: str,
               vf: str) -> list[str]:
    """``C[row, p, col..] += value * row_scale`` (C holds the bias), or ``=`` when C was zero-filled."""
    if c.zero_c:
        return [f"{ind}{dst} = arith.mulf {value}, {row_scale} : {vf}",
                f"{ind}vector.store {dst}, %C[{row}, %p, {col}] : {ct}, {vf}"]
    return [f"{ind}{dst}_c = vector.load %C[{row}, %p, {col}] : {ct}, {vf}",
            f"{ind}{dst} = vector.fma {value}, {row_scale}, {dst}_c : {vf}",
            f"{ind}vector.store {dst}, %C[{row}, %p, {col}] : {ct}, {vf}"]


AMX_ROWS = 32  # rows of one AMX block: two 16-row tiles of A against the panel's two 16-column tiles


def amx_fits(c: Contraction) -> bool:
    """AMX takes int8 per-channel dot contractions on 32-column panels with K a multiple of 64 bytes."""
    return c.dot and c.quant == (8, c.k) and c.nr == 32 and c.k % 64 == 0 and c.m >= AMX_ROWS


def _amx_lines(c: Contraction, rows: int, ct: str, xt: str, yt: str) -> tuple[list[str], list[str]]:
    """(function-scope lines, per-panel lines) of the AMX part of a dot kernel: rows [0, rows).

    Per 32-row block, four 16x16 i32 tiles accumulate ``tdpbsud`` (signed activation bytes x
    unsigned weight bytes, 64 k per step) over K: A tiles are rows of xq, B tiles the panel's two
    halves, already in the [K/4, 16 x 4] layout AMX wants.  The tiles go to a 32x32 i32 scratch
    and the epilogue is the VNNI kernel's, so both paths round alike."""
    amx = "!llvm.x86_amx"
    panel_bytes = c.k * c.nr  # a panel: K/4 cells of NR x 4 bytes
    lanes = c.nr // 2
    vf, vi = f"vector<{lanes}xf32>", f"vector<{lanes}xi32>"
    top = ["    %acc = memref.alloca() {alignment = 64 : i64} : memref<32x32xi32>",
           f"    %a_base = memref.extract_aligned_pointer_as_index %A : memref<{c.m}x{c.k}xi8> -> index",
           f"    %w_base = memref.extract_aligned_pointer_as_index %W : {c.types[3]} -> index",
           "    %acc_base = memref.extract_aligned_pointer_as_index %acc : memref<32x32xi32> -> index",
           "    %t16 = arith.constant 16 : i16",
           "    %t64 = arith.constant 64 : i16",
           f"    %strideA = arith.constant {c.k} : i64",
           f"    %cK8 = arith.constant {c.k} : index",
           f"    %cNR8 = arith.constant {c.nr} : index",
           f"    %strideB = arith.constant {c.nr * 4} : i64",
           f"    %cPanelBytes = arith.constant {panel_bytes} : index",
           f"    %cAmxRows = arith.constant {rows} : index",
           "    %c16 = arith.constant 16 : index",
           "    %c32 = arith.constant 32 : index",
           "    %c64 = arith.constant 64 : index",
           "    %strideAcc = arith.constant 128 : i64"]

    def ptr(name: str, index: str, ind: str) -> list[str]:
        return [f"{ind}%{name}_i = arith.index_cast {index} : index to i64",
                f"{ind}%{name} = llvm.inttoptr %{name}_i : i64 to !llvm.ptr"]

    def load(name: str, address: str, stride: str, ind: str) -> list[str]:
        return ptr(f"{name}_p", address, ind) + [
            f"{ind}%{name} = llvm.call_intrinsic \"llvm.x86.tileloadd64.internal\"(%t16, %t64, %{name}_p, {stride}) : "
            f"(i16, i16, !llvm.ptr, i64) -> {amx}"]

    prefetch_lines = -(-1024 // rows)  # a panel's bytes / (row blocks x k steps) = 65536 / rows
    top += [f"    %cKSteps = arith.constant {c.k // 64} : index",
            f"    %cPfBytes = arith.constant {prefetch_lines * 64} : index",
            "    %pf_rw = arith.constant 0 : i32",
            "    %pf_hint = arith.constant 2 : i32",  # locality 2: into L2
            "    %pf_cache = arith.constant 1 : i32",
            *[f"    %c{line * 64}_pf = arith.constant {line * 64} : index" for line in range(prefetch_lines)]]
    tiles = [(i, j) for i in (0, 1) for j in (0, 1)]
    ind, body = "        ", "          "
    lines = ["      %w_off = arith.muli %p, %cPanelBytes : index",
             "      %w_panel = arith.addi %w_base, %w_off : index",
             "      scf.for %ai = %c0 to %cAmxRows step %c32 {",
             f"{ind}%az = llvm.call_intrinsic \"llvm.x86.tilezero.internal\"(%t16, %t64) : (i16, i16) -> {amx}",
             f"{ind}%a_row0 = arith.muli %ai, %cK8 : index",
             f"{ind}%a_blk0 = arith.addi %a_base, %a_row0 : index",
             f"{ind}%a_row1 = arith.muli %c16, %cK8 : index",
             f"{ind}%a_blk1 = arith.addi %a_blk0, %a_row1 : index",
             f"{ind}%at:4 = scf.for %ak = %c0 to %cK8 step %c64 iter_args("
             + ", ".join(f"%ac{i}{j} = %az" for i, j in tiles) + f") -> ({', '.join([amx] * 4)}) {{",
             f"{body}%ak_a0 = arith.addi %a_blk0, %ak : index",
             f"{body}%ak_a1 = arith.addi %a_blk1, %ak : index",
             f"{body}%ak_b = arith.muli %ak, %cNR8 : index",
             f"{body}%ak_b0 = arith.addi %w_panel, %ak_b : index",
             f"{body}%ak_b1 = arith.addi %ak_b0, %c64 : index",
             *load("ta0", "%ak_a0", "%strideA", body), *load("ta1", "%ak_a1", "%strideA", body),
             *load("tb0", "%ak_b0", "%strideB", body), *load("tb1", "%ak_b1", "%strideB", body),
             # the next panel streams into L2 meanwhile, spread evenly over this panel's k steps
             f"{body}%pf_blk = arith.divui %ai, %c32 : index",
             f"{body}%pf_k = arith.divui %ak, %c64 : index",
             f"{body}%pf_s0 = arith.muli %pf_blk, %cKSteps : index",
             f"{body}%pf_s = arith.addi %pf_s0, %pf_k : index",
             f"{body}%pf_o = arith.muli %pf_s, %cPfBytes : index",
             f"{body}%pf_n = arith.addi %w_panel, %cPanelBytes : index",
             f"{body}%pf_a = arith.addi %pf_n, %pf_o : index"]
    for line in range(prefetch_lines):
        lines += [f"{body}%pf_a{line} = arith.addi %pf_a, %c{line * 64}_pf : index",
                  *ptr(f"pf_p{line}", f"%pf_a{line}", body),
                  f"{body}llvm.call_intrinsic \"llvm.prefetch.p0\"(%pf_p{line}, %pf_rw, %pf_hint, %pf_cache) : "
                  "(!llvm.ptr, i32, i32, i32) -> ()"]
    for i, j in tiles:
        lines.append(f"{body}%ad{i}{j} = llvm.call_intrinsic \"llvm.x86.tdpbsud.internal\"(%t16, %t64, %t64, %ac{i}{j}, "
                     f"%ta{i}, %tb{j}) : (i16, i16, i16, {amx}, {amx}, {amx}) -> {amx}")
    lines += [f"{body}scf.yield {', '.join(f'%ad{i}{j}' for i, j in tiles)} : {', '.join([amx] * 4)}", f"{ind}}}"]
    for n, (i, j) in enumerate(tiles):  # tile (i, j) -> scratch rows 16 i.., columns 16 j..
        lines += [f"{ind}%st{i}{j}_o = arith.constant {i * 16 * 128 + j * 64} : index",
                  f"{ind}%st{i}{j}_a = arith.addi %acc_base, %st{i}{j}_o : index",
                  *ptr(f"st{i}{j}_p", f"%st{i}{j}_a", ind),
                  f"{ind}llvm.call_intrinsic \"llvm.x86.tilestored64.internal\"(%t16, %t64, %st{i}{j}_p, %strideAcc, "
                  f"%at#{n}) : (i16, i16, !llvm.ptr, i64, {amx}) -> ()"]
    lines += [f"{ind}%as0 = vector.load %S[%p, %c0, %c0] : {c.types[4]}, {vf}",
              f"{ind}%as1 = vector.load %S[%p, %c0, %cL] : {c.types[4]}, {vf}",
              _offset(c, ind, "%ao0", "%as0", f"%O[%p, %c0, %c0] : {c.types[5]}", vf),
              _offset(c, ind, "%ao1", "%as1", f"%O[%p, %c0, %cL] : {c.types[5]}", vf),
              f"{ind}scf.for %ar = %c0 to %c32 step %c1 {{",
              f"{body}%arow = arith.addi %ai, %ar : index",
              f"{body}%ay = memref.load %Y[%arow, %c0] : {yt}",
              f"{body}%ayf = arith.sitofp %ay : i32 to f32",
              f"{body}%ayb = vector.broadcast %ayf : f32 to {vf}",
              f"{body}%asx = memref.load %X[%arow] : {xt}",
              f"{body}%asb = vector.broadcast %asx : f32 to {vf}"]
    for h in (0, 1):
        col = "%c0" if h == 0 else "%cL"
        lines += [f"{body}%aa{h} = vector.load %acc[%ar, {col}] : memref<32x32xi32>, {vi}",
                  *_fold_group(body, f"%afb{h}", f"%aa{h}", f"%as{h}", "%ayb", f"%ao{h}", "%zf", vi, vf),
                  *_store_row(c, body, f"%aout{h}", f"%afb{h}", "%asb", "%arow", col, ct, vf)]
    lines += [f"{ind}}}", "      }"]
    return top, lines


def qgemm_dot_kernel_text(name: str, c: Contraction, rows: int, flavour: str, amx: bool = False) -> str:
    """The kernel of an integer dot-product panel contraction: tasks [t0, t1) are column panels.

    Per group, rows x 2 int32 accumulators gather ``dot4(u, xq)`` over 4-byte
    cells: one load of the panel per cell (int4: one load per 8 k, the low and
    high nibbles masked out), one broadcast of 4 activation bytes per row, one
    ``vpdpbusd`` (VNNI) or ``vpmaddubsw`` + ``vpmaddwd`` (AVX2, AVX-512BW) per row and
    half-panel.  At the group's end they are converted and folded into f32
    accumulators with the scale and the offset times the activations' group
    sum; the row scale and C (bias) are applied once at the end.

    The vpmaddubsw flavours take int8 weights as ``|q| x sign(x, q)`` (llama.cpp's AVX2 int8
    dot), which sums ``q x`` instead of ``u x = (q + 128) x``; adding ``128 x`` the group sum
    back gives the VNNI path's integer exactly, so every flavour shares one epilogue."""
    bits, group = c.quant
    lanes = c.nr // 2
    per = 32 // bits  # k per 4-byte cell
    vf, vi, vb = f"vector<{lanes}xf32>", f"vector<{lanes}xi32>", f"vector<{4 * lanes}xi8>"
    txq, tsx, tsum, tw, ts, to, tc = c.types
    groups = c.k // group
    at, xt, yt = f"memref<{c.m}x{c.k}xi8>", f"memref<{c.m}xf32>", f"memref<{c.m}x{groups}xi32>"
    ct = f"memref<{c.m}x{c.panels}x{c.nr}xf32>"
    split = bits == 4  # int4: separate accumulators for the low and high nibbles when rows are few
    maddubs = flavour in ("avx2", "avx512bw")
    lines = [f"func.func @{name}(%A0: {txq}, %X0: {tsx}, %Y0: {tsum}, %W: {tw}, %S: {ts}, %O: {to}, %C0: {tc}, "
             "%t0: index, %t1: index) attributes {llvm.emit_c_interface} {",
             _view("A0", "A", txq, [c.m, c.k], "i8"), _view("X0", "X", tsx, [c.m]),
             _view("Y0", "Y", tsum, [c.m, groups], "i32"), _view("C0", "C", tc, [c.m, c.panels, c.nr]),
             "    %c0 = arith.constant 0 : index",
             "    %c1 = arith.constant 1 : index",
             f"    %cL = arith.constant {lanes} : index",
             f"    %cL4 = arith.constant {4 * lanes} : index",
             f"    %cG = arith.constant {groups} : index",
             f"    %cGC = arith.constant {group // per} : index",
             f"    %cPER = arith.constant {per} : index",
             f"    %zf = arith.constant dense<0.0> : {vf}",
             f"    %zi = arith.constant dense<0> : {vi}",
             f"    %cNegShift = arith.constant dense<{-float(c.sym_offset or 0)}> : {vf}",
             f"    %mask = arith.constant dense<15> : {vb}",
             f"    %four = arith.constant dense<4> : {vb}",
             f"    %ones16 = arith.constant dense<1> : vector<{2 * lanes}xi16>",
             f"    %c0b = arith.constant dense<0> : {vb}",
             f"    %c128b = arith.constant dense<-128> : {vb}",
             "    %c7i = arith.constant 7 : i32",
             *[f"    %c{j}_row = arith.constant {j} : index" for j in range(1, max(rows, 5))],
             "    scf.for %p = %t0 to %t1 step %c1 {"]
    row_bytes = c.nr * 4
    prefetch_cells = max(1, PREFETCH_BYTES // row_bytes)

    def block(tag: str, count: int, base: str, indent: str) -> list[str]:
        halves = (0, 1)
        parts = (0, 1) if split and count <= 2 else (0,)
        out = []
        rws = [base] + [f"%{tag}r{j}" for j in range(1, count)]
        for j in range(1, count):
            out.append(f"{indent}{rws[j]} = arith.addi {base}, %c{j}_row : index")
        fas = [(j, h) for j in range(count) for h in halves]
        ias = [(j, h, q) for j in range(count) for h in halves for q in parts]
        ftypes, itypes = ", ".join([vf] * len(fas)), ", ".join([vi] * len(ias))
        out.append(f"{indent}%{tag}res:{len(fas)} = scf.for %{tag}g = %c0 to %cG step %c1 iter_args("
                   + ", ".join(f"%{tag}f{j}_{h} = %zf" for j, h in fas) + f") -> ({ftypes}) {{")
        ind = indent + "  "
        out += [f"{ind}%{tag}cb = arith.muli %{tag}g, %cGC : index",
                f"{ind}%{tag}ce = arith.addi %{tag}cb, %cGC : index"]
        out.append(f"{ind}%{tag}ia:{len(ias)} = scf.for %{tag}c = %{tag}cb to %{tag}ce step %c1 iter_args("
                   + ", ".join(f"%{tag}i{j}_{h}_{q} = %zi" for j, h, q in ias) + f") -> ({itypes}) {{")
        body = ind + "  "
        for line in range(0, row_bytes, 64):
            out += [f"{body}%{tag}pf{line} = arith.addi %{tag}c, %c{prefetch_cells}_ahead : index",
                    f"{body}memref.prefetch %W[%p, %{tag}pf{line}, %c{line}_ahead], read, locality<3>, data : {tw}"]
        units = {}  # (h, nibble) -> the unsigned byte operand of the dot product
        signed = {}  # h -> int8 weights as the vpmaddubsw flavours take them
        for h in halves:
            col = "%c0" if h == 0 else "%cL4"
            out.append(f"{body}%{tag}b{h} = vector.load %W[%p, %{tag}c, {col}] : {tw}, {vb}")
            if bits == 8 and maddubs:
                more, signed[h] = _signed_weights(f"{tag}w{h}", f"%{tag}b{h}", lanes, body)
                out += more
                units[(h, 0)] = signed[h].abs
            elif bits == 8:
                units[(h, 0)] = f"%{tag}b{h}"
            else:
                out += [f"{body}%{tag}lo{h} = arith.andi %{tag}b{h}, %mask : {vb}",
                        f"{body}%{tag}sh{h} = arith.shrui %{tag}b{h}, %four : {vb}",
                        f"{body}%{tag}hi{h} = arith.andi %{tag}sh{h}, %mask : {vb}"]
                units[(h, 0)], units[(h, 1)] = f"%{tag}lo{h}", f"%{tag}hi{h}"
        out.append(f"{body}%{tag}k = arith.muli %{tag}c, %cPER : index")
        if bits == 4:
            out.append(f"{body}%{tag}k4 = arith.addi %{tag}k, %c4_row : index")
        new = {}
        for j in range(count):
            for nib in range(per // 4):
                k = f"%{tag}k" if nib == 0 else f"%{tag}k4"
                x = f"%{tag}x{j}_{nib}"
                out += [f"{body}{x}v = vector.load %A[{rws[j]}, {k}] : {at}, vector<4xi8>",
                        f"{body}{x}w = vector.bitcast {x}v : vector<4xi8> to vector<1xi32>",
                        f"{body}{x}s = vector.extract {x}w[0] : i32 from vector<1xi32>",
                        f"{body}{x}i = vector.broadcast {x}s : i32 to {vi}",
                        f"{body}{x} = vector.bitcast {x}i : {vi} to {vb}"]
                for h in halves:
                    q = nib if len(parts) == 2 else 0
                    acc = new.get((j, h, q), f"%{tag}i{j}_{h}_{q}")
                    res = f"%{tag}d{j}_{h}_{nib}"
                    operand = x
                    if h in signed:
                        operand = f"{x}_s{h}"
                        out += _sign_lines(lanes, x, signed[h], operand, body)
                    out += _dot_lines(flavour, lanes, acc, units[(h, nib)], operand, res, body)
                    new[(j, h, q)] = res
        out.append(f"{body}scf.yield {', '.join(new[a] for a in ias)} : {itypes}")
        out.append(f"{ind}}}")
        for h in halves:
            col = "%c0" if h == 0 else "%cL"
            out += [f"{ind}%{tag}s{h} = vector.load %S[%p, %{tag}g, {col}] : {ts}, {vf}",
                    _offset(c, ind, f"%{tag}o{h}", f"%{tag}s{h}", f"%O[%p, %{tag}g, {col}] : {to}", vf)]
        done = []
        for j in range(count):
            out += [f"{ind}%{tag}y{j} = memref.load %Y[{rws[j]}, %{tag}g] : {yt}",
                    f"{ind}%{tag}yf{j} = arith.sitofp %{tag}y{j} : i32 to f32",
                    f"{ind}%{tag}yb{j} = vector.broadcast %{tag}yf{j} : f32 to {vf}"]
            if signed:  # sum q x + 128 sum x = sum u x
                out += [f"{ind}%{tag}yu{j} = arith.shli %{tag}y{j}, %c7i : i32",
                        f"{ind}%{tag}yv{j} = vector.broadcast %{tag}yu{j} : i32 to {vi}"]
            for h in halves:
                total = f"%{tag}ia#{ias.index((j, h, 0))}"
                if len(parts) == 2:
                    out.append(f"{ind}%{tag}it{j}_{h} = arith.addi {total}, %{tag}ia#{ias.index((j, h, 1))} : {vi}")
                    total = f"%{tag}it{j}_{h}"
                if signed:
                    out.append(f"{ind}%{tag}iu{j}_{h} = arith.addi {total}, %{tag}yv{j} : {vi}")
                    total = f"%{tag}iu{j}_{h}"
                out += _fold_group(ind, f"%{tag}fb{j}_{h}", total, f"%{tag}s{h}", f"%{tag}yb{j}", f"%{tag}o{h}",
                                   f"%{tag}f{j}_{h}", vi, vf)
                done.append(f"%{tag}fb{j}_{h}")
        out.append(f"{ind}scf.yield {', '.join(done)} : {ftypes}")
        out.append(f"{indent}}}")
        for j in range(count):
            out += [f"{indent}%{tag}sx{j} = memref.load %X[{rws[j]}] : {xt}",
                    f"{indent}%{tag}sb{j} = vector.broadcast %{tag}sx{j} : f32 to {vf}"]
            for h in halves:
                col = "%c0" if h == 0 else "%cL"
                out += _store_row(c, indent, f"%{tag}out{j}_{h}", f"%{tag}res#{fas.index((j, h))}", f"%{tag}sb{j}",
                                  rws[j], col, ct, vf)
        return out

    first = c.m - c.m % AMX_ROWS if amx else 0
    if amx:
        top, per_panel = _amx_lines(c, first, ct, xt, yt)
        lines[-1:-1] = top
        lines += per_panel
    lines += _row_blocks(block, c.m, rows, first)
    lines[1:1] = [f"    %c{v}_ahead = arith.constant {v} : index" for v in sorted({prefetch_cells} | set(range(0, row_bytes, 64)))]
    return "\n".join(lines)


class Microkernels(ModulePass):
    NAME = "qc-microkernels"
    SUMMARY = "Replace bufferized f32 matmuls by vector micro-kernels split over the runtime's thread pool"
    OPTIONS = {"vector-width": Option(int, 8, "f32 lanes of one SIMD register (8: AVX2, 16: AVX-512)"),
               "rows": Option(int, 6, "rows of A per register tile (accumulators: rows x 2 vectors)"),
               "int8-dot": Option(one_of(DOT_FLAVOURS), "generic", "integer dot products: amx (tdpbsud tiles for int8 "
                                  "per-channel weights, 32 rows at a time; vnni for the rest), vnni (vpdpbusd), avx2 / "
                                  "avx512bw (vpmaddubsw + vpmaddwd at 8 / 16 lanes; int8 weights as |q| x sign(x, q)), "
                                  "generic (i32 multiplies)")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        lanes, rows = self.options["vector-width"], self.options["rows"]
        qrows = max(1, rows * 2 // 3)  # quantized tiles also hold scale, offset and weight vectors
        body = module.regions[0].blocks[0]
        kernels: dict[Contraction, str] = {}
        candidates = [op for name in ("linalg.generic", "linalg.matmul", "linalg.batch_matmul")
                      for op in walk_ops(module, name)]
        dot = self.options["int8-dot"]
        for op in candidates:
            c = match(op, lanes)
            if c is None:
                continue
            # a zero fill just before the contraction is its accumulator's start: the kernel writes C instead
            fill = preceding_zero_fill(op, op.operands[-1]) if c.dot or not c.quant else None
            if fill is not None:
                c = replace(c, zero_c=True)
            if c not in kernels:
                index, amx = len(kernels), False
                kernels[c] = f"qc_par_{index}"
                if c.dot:
                    amx = dot == "amx" and amx_fits(c)
                    text = qgemm_dot_kernel_text(f"qc_mk_{index}", c, max(1, rows // 2), dot_flavour(dot, c), amx)
                elif c.quant:
                    text = qgemm_kernel_text(f"qc_mk_{index}", c, qrows)
                else:
                    text = kernel_text(f"qc_mk_{index}", c, rows)
                append_parsed(body, text, module.context)
                with ir.InsertionPoint(body), op.location:
                    declare(f"qc_par_{index}", f"qc_mk_{index}", [ir.Type.parse(t) for t in c.types], c.tasks, amx)
            with ir.InsertionPoint(op), op.location:
                func.CallOp([], ir.FlatSymbolRefAttr.get(kernels[c]), list(op.operands))
            op.erase()
            if fill is not None:
                fill.erase()
