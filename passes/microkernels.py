"""qc-microkernels: bufferized contractions -> vector micro-kernels run on the thread pool.

Runs after bufferization.  Matches, on memrefs,

    linalg.generic {library_call = "qc_panel_matmul"}   (qc-lower-linear: f32 or f16 panels [P, K, NR])
    linalg.generic {library_call = "qc_qgemm_panel*"}   (qc-lower-qgemm: int4 / int8 panels, f32 activations)
    linalg.generic {library_call = "qc_qgemm_dot*"}     (qc-lower-qgemm: int8 activations, dot panels)
    linalg.matmul        C[m, n] += A[m, k] * B[k, n]         (B f32, f16, or i8 codes)
    linalg.batch_matmul  C[b, m, n] += A[b, m, k] * B[b, k, n]
    linalg.generic {library_call = "qc_winograd_input" | "qc_winograd_output"}   (qc-winograd's transforms)
    linalg.generic       out[n, oh, ow, c] += x[n, oh * s + kh * d, ow * s + kw * d, c] * w[kh, kw, c]  (depthwise)

each described as a ``Contraction`` (a quantized panel's packing read from its ``qc.layout``), and
replaces each by ``func.call @qc_par_N(operands)``: a trampoline (``trampoline.py``, defined by the
generated C glue) that splits the tasks (batch x column panels) over ``qc_parallel_for`` and calls
the kernel ``@qc_mk_N(operands, first_task, end_task)`` that a kernel family of ``kernels/`` builds
(``@qc_wk_N`` behind ``@qc_wpar_N`` for the transforms and depthwise convolutions, tasks over output rows):

    linalg.generic {library_call = "qc_panel_matmul"} ins(%a, %w) outs(%c)
becomes
    call @qc_par_0(%a, %w, %c)
    func.func @qc_mk_0(%a, %w, %c, %t0: index, %t1: index) { scf.for %t = %t0 to %t1 { ... vector.fma ... } }
    func.func private @qc_par_0(...) attributes {qc.kernel = "qc_mk_0", qc.tasks = P}

Contractions of one type share a kernel; a strided view's static offset is cast to a dynamic one
first, so that views at different offsets (each layer's slice of a stacked KV cache) share it too:

    %v = memref.cast %k : memref<4x64x1024xf32, strided<[65536, 1024, 1], offset: 262144>>
                       to memref<4x64x1024xf32, strided<[65536, 1024, 1], offset: ?>>

The int8 dot flavour (``int8-dot``) follows the target;
a flavour without intrinsics for the panel's lanes falls back to generic.  Dot kernels prefetch their
weight stream ahead in software unless they do fewer multiply-adds per weight byte than
``prefetch-min-reuse`` (the target's: where the hardware prefetchers keep up with light kernels alone).
A panel contraction needs identity layouts (its leading dims are flattened); for the others A may have
any strides, B and C a unit inner stride.  Contractions that do not fit are left to the generic loop lowering.

When C's only earlier writer is a ``linalg.fill`` of zero (a linear without bias), the fill is
erased and the kernel (f32, or int8-activation) writes C instead of adding to it: the output is
not swept once more before the contraction.  When it is the copy of a bias [P, NR] into every row
(qc-lower-linear's and qc-lower-qgemm's accumulator start), the copy is erased too and the kernel
takes the bias as an operand after C, starting each row from it (MiniLM's int8 FFN: its 6 MB output
was written with the bias, then read back by the kernel).

When the next op to touch a kernel's output applies a chain of arith ops to it (an activation) and is
its only reader, the kernel applies the chain as it stores (``kernels/elementwise.py``; f32, int8-dot
and depthwise kernels), and that op is erased (in place) or left a plain copy:

    call @qc_par_0(%a, %w, %c)  +  linalg.generic ins(%c) outs(%c) { relu }
becomes
    call @qc_par_0(%a, %w, %c)        // qc_mk_0 stores select(acc > 0, acc, 0)

A depthwise conv whose input only zero fills and one plain copy wrote (its padding, bufferized) reads
the copy's source in place instead, skipping the taps that fall in the padding (``implicit_padding``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import NamedTuple

from torch_mlir import ir
from torch_mlir.dialects import func, memref

from .base import ModulePass, Option, PassState, one_of, parse_bool, walk_ops
from .kernels import amx, depthwise, dot, elementwise, f32, weight_only, winograd
from .kernels.contraction import Contraction, Window, pool_chunks, row_split
from .lower_linear import PANEL_MATMUL
from ..core.quant.packing import unsigned_offset
from .lower_qgemm import QGEMM_DOT_PANEL, QGEMM_DOT_PANEL_SYM, QGEMM_PANEL, QGEMM_PANEL_SYM
from .matchers import (ACT_MAX_ATTR, WEIGHT_BITS_ATTR, MEMREF_VIEWS, aliases, body_ops, constant_float, copy_window,
                       default_maps, identity_layout, indexing_maps, is_copy_generic, iterator_types, layout_of,
                       library_call, linear_terms, preceding_init, preceding_zero_fill, uses_value, view_source)
from .trampoline import declare
from .winograd import INPUT_TRANSFORM, OUTPUT_TRANSFORM

def _kernel_memref(value: ir.Value, inner_unit_stride: bool, identity: bool = False,
                   elt: type = ir.F32Type) -> ir.MemRefType | None:
    """The memref type of ``value`` if its element type is ``elt``, its shape static (kernels are
    generated per shape) and its layout suits the kernel, else None."""
    t = value.type
    if not isinstance(t, ir.MemRefType) or not isinstance(t.element_type, elt) or not t.has_static_shape:
        return None
    layout = t.layout
    if isinstance(layout, ir.AffineMapAttr):
        return t if identity_layout(t) else None
    if identity or not isinstance(layout, ir.StridedLayoutAttr):
        return None
    return t if not inner_unit_stride or layout.strides[-1] == 1 else None


def _int8_memref(value: ir.Value) -> ir.MemRefType | None:
    t = _kernel_memref(value, True, elt=ir.IntegerType)
    return t if t is not None and ir.IntegerType(t.element_type).width == 8 else None


def match_qgemm(op: ir.Operation) -> Contraction | None:
    """A qc-lower-qgemm f32-activation contraction: A, W [P, K, NR*bits/8] i8 (or dot cells: the GPU
    layout), S and O [P, G, NR] f32, C, its packing in ``qc.layout``."""
    layout = layout_of(op)
    if layout is None or len(op.operands) != 5:
        return None
    a, w, s, o, c = op.operands
    ta, ts, to, tc = (_kernel_memref(v, True, identity=True) for v in (a, s, o, c))
    tw = _kernel_memref(w, True, identity=True, elt=ir.IntegerType)
    if not (ta and ts and to and tc and tw) or list(tw.shape) != layout.weight_shape:
        return None
    m = math.prod(ta.shape[:-1])
    sym = unsigned_offset(layout.bits, layout.dot) if layout.symmetric else None
    return Contraction(True, (ta, tw, ts, to, tc), 1, m, layout.panels * layout.width,
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
    act_max = ir.IntegerAttr(op.attributes[ACT_MAX_ATTR]).value if ACT_MAX_ATTR in op.attributes else 127
    weight_bits = (ir.IntegerAttr(op.attributes[WEIGHT_BITS_ATTR]).value if WEIGHT_BITS_ATTR in op.attributes
                   else layout.bits)
    return Contraction(True, tuple(types), 1, m, layout.panels * layout.width, layout.k, layout.width,
                       (layout.bits, layout.group), dot=True, sym_offset=sym, act_max=act_max, weight_bits=weight_bits)


def match(op: ir.Operation, lanes: int) -> Contraction | None:
    """The contraction ``op`` is (by its library call, then its operands), or None."""
    call = library_call(op) if op.name == "linalg.generic" else None
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
        panels, k, nr = tb.shape
        m = math.prod(ta.shape[:-1])
        return Contraction(True, (ta, tb, tc), 1, m, panels * nr, k, nr, b_elt=str(tb.element_type))
    ta, tc = _kernel_memref(a, False), _kernel_memref(c, True)
    # f16 or i8 (codes): qc-fold-widening's
    tb = _kernel_memref(b, True) or _kernel_memref(b, True, elt=ir.F16Type) or _int8_memref(b)
    if not (ta and tb and tc):
        return None
    types = (ta, tb, tc)
    if op.name == "linalg.matmul" and default_maps(op):
        batch, (m, k), n = 1, ta.shape, tb.shape[1]
    elif op.name == "linalg.batch_matmul" and default_maps(op):
        (batch, m, k), n = ta.shape, tb.shape[2]
    else:
        return None
    nr = next((w for w in (2 * lanes, lanes) if n % w == 0), lanes if n < 2 * lanes else 2 * lanes)
    return Contraction(False, types, batch, m, n, k, nr, b_elt=str(tb.element_type))


class Columns(NamedTuple):
    """A panel contraction's A as a window on the buffer its columns were copied from."""

    source: ir.Value
    window: Window
    copy: ir.Operation | None  # the column copy, when no other op reads what it wrote (it is erased)
    buffer: ir.Value  # the column buffer (erased once no op but views and deallocs use it)
    deallocs: list  # frees of the source between the copy and the contraction: they move after it


def _touches(op: ir.Operation, root: ir.Value) -> bool:
    return op.name not in MEMREF_VIEWS and uses_value(op, aliases(root))


def columns_window(op: ir.Operation) -> Columns | None:
    """When the panel contraction ``op`` reads A = collapse(col) [M, K] and the last op before it to
    touch col is a copy ``col[i...] = S[linear(i...)]`` from an identity-layout S that nothing
    touches in between but its free (qc-conv-to-matmul's im2col, bufferized; convs of one shape may
    share col), the window that reads S in place."""
    collapse = op.operands[0].owner
    if isinstance(collapse, ir.Block) or collapse.name != "memref.collapse_shape":
        return None
    col = collapse.operands[0]
    if isinstance(col.owner, ir.Block) or col.owner.name != "memref.alloc":
        return None
    groups = [[ir.IntegerAttr(d).value for d in g] for g in ir.ArrayAttr(collapse.attributes["reassociation"])]
    ops = [o.operation for o in op.block.operations]
    at = ops.index(op)
    copy = next((o for o in reversed(ops[:at]) if _touches(o, col)), None)
    if len(groups) != 2 or copy is None or not is_copy_generic(copy) or copy.operands[1] != col:
        return None
    source = copy.operands[0]
    st = _kernel_memref(source, True, identity=True)
    if st is None:
        return None
    window = copy_window(copy, st.shape, ir.MemRefType(col.type).shape, groups)
    if window is None:
        return None
    root = view_source(source, MEMREF_VIEWS)
    between = [o for o in ops[ops.index(copy) + 1:at] if _touches(o, root)]
    # qc-early-deallocs frees the source right after the copy, its last reader until now
    if any(o.name != "memref.dealloc" for o in between):
        return None
    # the copy dies with op unless a later op reads col before the next write or dealloc
    later = next((o for o in ops[at + 1:] if _touches(o, col)), None)
    dead = later is None or later.name == "memref.dealloc" or (is_copy_generic(later) and later.operands[1] == col)
    return Columns(source, window, copy if dead else None, col, between)


class Epilogue(NamedTuple):
    """The elementwise op after a kernel that only applies ``fn`` to what the kernel wrote."""

    fn: tuple  # elementwise.Function
    consumer: ir.Operation  # reads the kernel's output (its only reader) and writes fn of it
    in_place: bool  # the consumer writes where it reads: it is erased, else it becomes a copy


def _dead_after(ops: list[ir.Operation], root: ir.Value) -> bool:
    """Whether nothing in ``ops`` reads the memref ``root`` before it is freed or written whole
    afresh (a fill, or a copy or broadcast into all of it, as when a buffer is reused)."""
    size = math.prod(ir.MemRefType(root.type).shape)
    for o in ops:
        if not _touches(o, root):
            continue
        if o.name == "memref.dealloc":
            return True
        writes = o.name == "linalg.fill" or is_copy_generic(o) and not aliases(root)(o.operands[0])
        return writes and math.prod(ir.MemRefType(o.operands[-1].type).shape) == size
    return True


def fused_epilogue(op: ir.Operation, out: ir.Value) -> Epilogue | None:
    """When the first op after ``op`` to touch its output ``out`` is an elementwise generic (identity
    maps) that applies a chain of arith ops to it, and is its only reader (writing it in place, all of
    it, or elsewhere, ``out`` then dead): that chain, for the kernel to apply as it stores."""
    root = view_source(out, MEMREF_VIEWS)
    ops = [o.operation for o in op.block.operations]
    after = ops[ops.index(op) + 1:]
    at = next((i for i, o in enumerate(after) if _touches(o, root)), None)
    if at is None or after[at].name != "linalg.generic" or len(after[at].operands) != 2:
        return None
    consumer = after[at]
    src, dst = consumer.operands
    if not aliases(root)(src) or set(iterator_types(consumer)) != {"parallel"} or \
            any(m != ir.AffineMap.get_identity(m.n_dims) for m in indexing_maps(consumer)):
        return None
    fn = elementwise.capture(body_ops(consumer), consumer.regions[0].blocks[0].arguments[0], constant_float)
    if fn is None:
        return None
    if aliases(root)(dst):  # in place: over all of out, else the rest of it would miss fn
        whole = math.prod(ir.MemRefType(root.type).shape) == math.prod(ir.MemRefType(src.type).shape)
        return Epilogue(fn, consumer, True) if src == dst and whole else None
    local = not isinstance(root.owner, ir.Block) and root.owner.name == "memref.alloc"  # not a result
    return Epilogue(fn, consumer, False) if local and _dead_after(after[at + 1:], root) else None


def take_epilogue(op: ir.Operation, out: ir.Value, in_place: list[ir.Operation]) -> tuple:
    """The chain of ``fused_epilogue(op, out)`` (``()`` when there is none), taken from its consumer:
    the consumer is left yielding its input, a copy, or when in place appended to ``in_place``, to
    be erased once no kernel matching needs it."""
    epilogue = fused_epilogue(op, out)
    if epilogue is None:
        return ()
    consumer = epilogue.consumer
    body = body_ops(consumer)
    body[-1].operands[0] = consumer.regions[0].blocks[0].arguments[0]
    for dead in reversed(body[:-1]):
        dead.erase()
    if epilogue.in_place:
        in_place.append(consumer)
    return epilogue.fn


class Padding(NamedTuple):
    """A depthwise convolution's input as the unpadded buffer its padded copy was made from."""

    source: ir.Value
    pads: tuple[int, int]  # the copy's (row, column) offset in the padded buffer
    writes: list  # the zero fills of the padded buffer and the copy into it (erased)
    buffer: ir.Value  # the padded buffer (erased with its views and deallocs)
    deallocs: list  # frees of the source between the copy and the convolution: they move after it


def _static_subview(value: ir.Value, of: ir.Value) -> tuple[list[int], list[int]] | None:
    """(offsets, sizes) of ``value`` when it is a unit-stride ``memref.subview`` of ``of`` with static ones."""
    view = value.owner
    if isinstance(view, ir.Block) or view.name != "memref.subview" or view.operands[0] != of or len(view.operands) != 1:
        return None
    offsets, sizes, strides = (list(ir.DenseI64ArrayAttr(view.attributes[k]))
                               for k in ("static_offsets", "static_sizes", "static_strides"))
    return (offsets, sizes) if set(strides) == {1} else None


def implicit_padding(op: ir.Operation) -> Padding | None:
    """When the depthwise generic ``op`` reads x, a buffer written only by zero fills and then one copy
    ``x[:, ph:ph + H, pw:pw + W, :] = S`` (a conv's padding, bufferized) and dead after ``op``, and
    nothing touches S between the copy and ``op`` but its free: S and the pads, read in place."""
    x = op.operands[0]
    if isinstance(x.owner, ir.Block) or x.owner.name != "memref.alloc":
        return None
    ops = [o.operation for o in op.block.operations]
    at = ops.index(op)
    before = [o for o in ops[:at] if _touches(o, x)]
    if not before or not _dead_after(ops[at + 1:], x):
        return None
    copy, fills = before[-1], before[:-1]
    if not is_copy_generic(copy) or any(f.name != "linalg.fill" or constant_float(f.operands[0]) != 0.0
                                        for f in fills):
        return None
    source, interior = copy.operands[0], _static_subview(copy.operands[1], x)
    st = _kernel_memref(source, True)
    if interior is None or st is None or st.rank != 4:
        return None
    (n0, ph, pw, c0), sizes = interior
    if n0 or c0 or sizes != list(st.shape) or [sizes[0], sizes[3]] != [ir.MemRefType(x.type).shape[i] for i in (0, 3)]:
        return None
    root = view_source(source, MEMREF_VIEWS)
    between = [o for o in ops[ops.index(copy) + 1:at] if _touches(o, root)]
    if any(o.name != "memref.dealloc" for o in between):
        return None
    return Padding(source, (ph, pw), before, x, between)


def _erase_unused_buffer(buffer: ir.Value) -> None:
    """Erase ``buffer`` (a memref.alloc) and its views and deallocs when nothing else uses it."""
    found = []

    def collect(value: ir.Value) -> bool:
        for use in value.uses:
            user = use.owner.operation
            if user.name in MEMREF_VIEWS:
                if not collect(user.results[0]):
                    return False
            elif user.name != "memref.dealloc":
                return False
            found.append(user)
        return True

    if collect(buffer):
        for user in reversed(found):
            user.erase()
        buffer.owner.erase()


def _offset_free(c: Contraction, operands: list[ir.Value]) -> tuple[Contraction, list[ir.Value]]:
    """``c`` and its operands with every strided view's offset made dynamic (``memref.cast``): views of
    one shape at different offsets, such as each layer's slice of a stacked KV cache, then share one
    kernel, which reads the offset from the view's descriptor."""
    types, cast = [], []
    for t, value in zip(c.types, operands):
        if isinstance(t.layout, ir.StridedLayoutAttr):
            layout = ir.StridedLayoutAttr(t.layout)
            dynamic = ir.ShapedType.get_dynamic_stride_or_offset()
            if layout.offset != dynamic:
                t = ir.MemRefType.get(t.shape, t.element_type, ir.StridedLayoutAttr.get(dynamic, layout.strides),
                                      t.memory_space)
                value = memref.CastOp(t, value).result
        types.append(t)
        cast.append(value)
    return replace(c, types=tuple(types)), cast


def _frees_between(first: ir.Operation, last: ir.Operation, value: ir.Value) -> list[ir.Operation] | None:
    """The frees of ``value``'s buffer between ``first`` and ``last`` in their block, or None when
    another op touches it there.  A kernel that reads ``value`` in place of ``first`` (a bias broadcast
    it starts from) must be called before them: qc-early-deallocs frees a buffer right after its last
    reader, which ``first`` was (a padded bias freed there was then reused for the next buffer of its
    size, the activations' group sums, and the kernel read those as the bias)."""
    ops = [o.operation for o in first.block.operations]
    root = view_source(value, MEMREF_VIEWS)
    between = [o for o in ops[ops.index(first) + 1:ops.index(last)] if _touches(o, root)]
    return None if any(o.name != "memref.dealloc" for o in between) else between


def _is_bias_broadcast(op: ir.Operation, out: ir.MemRefType) -> bool:
    """``op`` copies a vector [F] along the last dim of ``out`` into all of it."""
    if op.name != "linalg.generic" or len(op.operands) != 2 or not is_copy_generic(op):
        return False
    source = _kernel_memref(op.operands[0], True, identity=True)
    maps = indexing_maps(op)
    last = ir.AffineMap.get(out.rank, 0, [ir.AffineExpr.get_dim(out.rank - 1)])
    return source is not None and list(source.shape) == [out.shape[-1]] and maps[0] == last \
        and maps[1] == ir.AffineMap.get_identity(out.rank)


def _bias_broadcast(op: ir.Operation, c: Contraction) -> ir.Operation | None:
    """The copy of a bias [P, NR] into every row of panel contraction ``op``'s C (qc-lower-qgemm's
    accumulator), if ``op`` is the first to read it: the kernel can start from the bias instead."""
    init = preceding_init(op, op.operands[-1])
    if init is None or init.name != "linalg.generic" or len(init.operands) != 2 or not is_copy_generic(init):
        return None
    source, out = (_kernel_memref(v, True, identity=True) for v in init.operands)
    if source is None or out is None or list(source.shape) != [c.panels, c.nr]:
        return None
    d = ir.AffineExpr.get_dim
    maps = indexing_maps(init)
    if maps[0] != ir.AffineMap.get(out.rank, 0, [d(out.rank - 2), d(out.rank - 1)]) or \
            maps[1] != ir.AffineMap.get_identity(out.rank):
        return None
    return init


def match_depthwise(op: ir.Operation) -> depthwise.Depthwise | None:
    """qc-conv-to-matmul's channels-last depthwise generic: loops (n, oh, ow, kh, kw, c), maps
    x (n, oh * sh + kh * dh, ow * sw + kw * dw, c), w (kh, kw, c), out (n, oh, ow, c), body out + x * w."""
    if op.name != "linalg.generic" or len(op.operands) != 3 or "library_call" in op.attributes or \
            iterator_types(op) != ["parallel", "parallel", "parallel", "reduction", "reduction", "parallel"]:
        return None
    types = [_kernel_memref(v, True, identity=True) for v in op.operands]
    if None in types or [t.rank for t in types] != [4, 3, 4]:
        return None
    d = ir.AffineExpr.get_dim
    xm, wm, om = indexing_maps(op)
    if wm != ir.AffineMap.get(6, 0, [d(3), d(4), d(5)]) or om != ir.AffineMap.get(6, 0, [d(0), d(1), d(2), d(5)]):
        return None
    terms = [linear_terms(e, 6) for e in xm.results]
    if None in terms or any(constant for _, constant in terms):
        return None
    (n, row, col, c) = (coeffs for coeffs, _ in terms)
    if n != [1, 0, 0, 0, 0, 0] or c != [0, 0, 0, 0, 0, 1] or row[0] or row[2] or row[4] or row[5] or col[0] \
            or col[1] or col[3] or col[5]:
        return None
    block = op.regions[0].blocks[0]
    body = body_ops(op)
    if len(body) != 3 or [o.name for o in body] != ["arith.mulf", "arith.addf", "linalg.yield"] or \
            set(body[0].operands) != {block.arguments[0], block.arguments[1]} or \
            set(body[1].operands) != {block.arguments[2], body[0].results[0]} or body[2].operands[0] != body[1].results[0]:
        return None
    return depthwise.Depthwise(*types, (row[1], col[2]), (row[3], col[4]))


def winograd_transform(op: ir.Operation, lanes: int, kernels: dict, body: ir.Block) -> bool:
    """Replaces a qc-winograd transform generic by a call of its kernel; False if ``op`` is none."""
    call = library_call(op)
    if call not in (INPUT_TRANSFORM, OUTPUT_TRANSFORM):
        return False
    data, out = op.operands[0], op.operands[-1]
    td, to = _kernel_memref(data, True, identity=True), _kernel_memref(out, True, identity=True)
    if td is None or to is None:
        return False
    init = preceding_init(op, out)
    operands, erase, frees = [data, out], [], []
    if call == INPUT_TRANSFORM:  # V is written whole
        start = None
        if init is not None and init.name == "linalg.fill":
            erase.append(init)
    elif init is not None and preceding_zero_fill(op, out) is not None:
        start = "zero"
        erase.append(init)
    elif init is not None and _is_bias_broadcast(init, to) and \
            (frees := _frees_between(init, op, init.operands[0])) is not None:
        start = "bias"
        operands.append(init.operands[0])
        erase.append(init)
    else:
        start = "out"
    types = [v.type for v in operands]
    key = (call, tuple(str(t) for t in types), start)
    if key not in kernels:
        index = len(kernels)
        kernels[key] = f"qc_wpar_{index}"
        tasks = to.shape[2] * to.shape[3] if call == INPUT_TRANSFORM else to.shape[0] * to.shape[1]  # (n, tile row)
        with ir.InsertionPoint(body), op.location:
            if call == INPUT_TRANSFORM:
                winograd.build_input(f"qc_wk_{index}", td, to, lanes)
            else:
                winograd.build_output(f"qc_wk_{index}", td, to, lanes, start, types[2] if start == "bias" else None)
            declare(f"qc_wpar_{index}", f"qc_wk_{index}", types, tasks)
    with ir.InsertionPoint(op), op.location:
        call = func.CallOp([], ir.FlatSymbolRefAttr.get(kernels[key]), operands)
    op.erase()
    for dead in erase:
        dead.erase()
    for free in frees or ():
        free.move_after(call)
    return True


class Microkernels(ModulePass):
    NAME = "qc-microkernels"
    SUMMARY = "Replace bufferized f32 matmuls by vector micro-kernels split over the runtime's thread pool"
    OPTIONS = {"vector-width": Option(int, 8, "f32 lanes of one SIMD register (8: AVX2, 16: AVX-512)"),
               "rows": Option(int, 6, "rows of A per register tile (accumulators: rows x 2 vectors)"),
               "int8-dot": Option(one_of(dot.FLAVOURS), "generic", "integer dot products: amx (tdpbsud tiles for int8 "
                                  "per-channel weights, 32 rows at a time; vnni for the rest), vnni (vpdpbusd), avx2 / "
                                  "avx512bw (vpmaddubsw + vpmaddwd at 8 / 16 lanes; int8 weights as |q| x sign(x, q)), "
                                  "generic (i32 multiplies)"),
               "prefetch-min-reuse": Option(int, 0, "int8-dot kernels software-prefetch their weight stream only where "
                                            "they do at least this many multiply-adds per weight byte (rows x "
                                            "weights per byte); lighter ones leave it to the hardware prefetchers "
                                            "(0: always)"),
               "implicit-columns": Option(parse_bool, True, "f32 panel kernels read im2col columns in place from the "
                                          "buffer they were copied from (the copy is erased)"),
               "fuse-epilogues": Option(parse_bool, True, "f32, int8-dot and depthwise kernels apply the elementwise "
                                        "op that follows them (an activation) as they store their output"),
               "implicit-padding": Option(parse_bool, True, "depthwise kernels read a zero-padded input in place from "
                                          "the buffer it was copied from, the taps outside it skipped (the padded "
                                          "copy and its fills are erased)")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        lanes, rows = self.options["vector-width"], self.options["rows"]
        qrows = max(1, rows * 2 // 3)  # quantized tiles also hold scale, offset and weight vectors
        body = module.regions[0].blocks[0]
        kernels: dict[Contraction, str] = {}
        buffers: list[ir.Value] = []  # column buffers a window replaced
        candidates = [op for name in ("linalg.generic", "linalg.matmul", "linalg.batch_matmul")
                      for op in walk_ops(module, name)]
        dot_kind = self.options["int8-dot"]
        fuse = self.options["fuse-epilogues"]
        identities: list[ir.Operation] = []  # in-place activations fused into the kernel before them
        transforms: dict = {}
        for op in candidates:
            if winograd_transform(op, lanes, transforms, body):
                continue
            conv = match_depthwise(op)
            if conv is not None:
                padding = implicit_padding(op) if self.options["implicit-padding"] else None
                operands = list(op.operands)
                if padding is not None:
                    conv = conv._replace(x=ir.MemRefType(padding.source.type), pads=padding.pads)
                    operands[0] = padding.source
                init = preceding_init(op, op.operands[2])
                frees = None
                if init is not None and _is_bias_broadcast(init, conv.out):
                    frees = _frees_between(init, op, init.operands[0])
                if frees is not None:
                    conv = conv._replace(bias=ir.MemRefType(init.operands[0].type))
                    operands.append(init.operands[0])
                    init.erase()
                if fuse:
                    conv = conv._replace(epilogue=take_epilogue(op, op.operands[2], identities))
                if conv not in transforms:
                    index = len(transforms)
                    transforms[conv] = f"qc_wpar_{index}"
                    with ir.InsertionPoint(body), op.location:
                        depthwise.build(f"qc_wk_{index}", conv, lanes)
                        declare(f"qc_wpar_{index}", f"qc_wk_{index}", [v.type for v in operands], conv.tasks)
                with ir.InsertionPoint(op), op.location:
                    call = func.CallOp([], ir.FlatSymbolRefAttr.get(transforms[conv]), operands)
                op.erase()
                for free in frees or ():
                    free.move_after(call)
                if padding is not None:
                    for dealloc in padding.deallocs:
                        dealloc.move_after(call)
                    for write in padding.writes:
                        write.erase()
                    _erase_unused_buffer(padding.buffer)
                continue
            c = match(op, lanes)
            if c is None:
                continue
            # a zero fill just before the contraction is its accumulator's start: the kernel writes C instead
            fill = preceding_zero_fill(op, op.operands[-1]) if c.dot or not c.quant else None
            operands, frees = list(op.operands), []
            if fill is not None:
                c = replace(c, zero_c=True)
            elif c.dot or c.packed and not c.quant:
                fill = _bias_broadcast(op, c)  # (erased, as a zero fill is)
                found = _frees_between(fill, op, fill.operands[0]) if fill is not None else None
                if found is None:
                    fill = None
                else:
                    frees = found
                    c = replace(c, bias=True, types=(*c.types, ir.MemRefType(fill.operands[0].type)))
                    operands.append(fill.operands[0])
            columns = columns_window(op) if c.packed and not c.quant and self.options["implicit-columns"] else None
            if columns is not None:
                c = replace(c, types=(ir.MemRefType(columns.source.type), *c.types[1:]), window=columns.window)
                operands[0] = columns.source
            if fuse and (c.dot or not c.quant):  # (weight-only kernels store C once per group)
                c = replace(c, epilogue=take_epilogue(op, op.operands[-1], identities))
            with ir.InsertionPoint(op), op.location:
                c, operands = _offset_free(c, operands)
            if c not in kernels:
                index = len(kernels)
                kernels[c] = f"qc_par_{index}"
                use_amx = c.dot and dot_kind == "amx" and amx.fits(c)
                tile = dot.tile_rows(dot.flavour(dot_kind, c), c, rows) if c.dot else qrows if c.quant else rows
                spec = c
                if not use_amx:  # (the AMX part of a kernel covers every row of its panel)
                    chunks, chunk_rows = row_split(c.tasks, c.m, tile)
                    spec = replace(c, chunks=chunks, chunk_rows=chunk_rows)
                with ir.InsertionPoint(body), op.location:
                    if c.dot:
                        dot.build(f"qc_mk_{index}", spec, tile, dot.flavour(dot_kind, c), use_amx,
                                  prefetch=c.weight_reuse >= self.options["prefetch-min-reuse"])
                    elif c.quant:
                        weight_only.build(f"qc_mk_{index}", spec, tile)
                    else:
                        f32.build(f"qc_mk_{index}", spec, tile)
                    declare(f"qc_par_{index}", f"qc_mk_{index}", list(c.types), spec.tasks, use_amx, pool_chunks(c))
            with ir.InsertionPoint(op), op.location:
                call = func.CallOp([], ir.FlatSymbolRefAttr.get(kernels[c]), operands)
            op.erase()
            if fill is not None:
                fill.erase()
            for free in frees:
                free.move_after(call)
            if columns is not None:
                for dealloc in columns.deallocs:
                    dealloc.move_after(call)
                if columns.copy is not None:
                    columns.copy.erase()
                buffers.append(columns.buffer)
        for buffer in dict.fromkeys(buffers):
            _erase_unused_buffer(buffer)
        for consumer in identities:
            consumer.erase()
