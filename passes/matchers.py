"""Small IR matchers shared by the passes."""

from __future__ import annotations

import math

from torch_mlir import ir

from ..core.quant.packing import PanelLayout
from ..dialects.qc import LayoutAttr, LinearOp, WeightOp
from .kernels.contraction import Window

LAYOUT_ATTR = "qc.layout"  # on a contraction over packed weights: their PanelLayout
# on a dot contraction whose int8 activations are within +-act_max < 127 (7-bit): vpmaddubsw's pairs of
# unsigned weight cells times them fit int16 as they are
ACT_MAX_ATTR = "qc.act_max"
# on a dot contraction whose int8 weights all lie in [-64, 63] (7-bit): vpmaddubsw's pairs of u - 64 (within
# [0, 127]) times int8 activations fit int16 as they are
WEIGHT_BITS_ATTR = "qc.weight_bits"


def library_call(op: ir.Operation) -> str | None:
    """The ``library_call`` a linalg op carries (the name of the kernel contract it follows), or None."""
    return ir.StringAttr(op.attributes["library_call"]).value if "library_call" in op.attributes else None


def producer(value: ir.Value) -> ir.Operation | None:
    owner = value.owner
    return None if isinstance(owner, ir.Block) else owner.operation


def single_user(value: ir.Value) -> ir.Operation | None:
    uses = list(value.uses)
    return uses[0].owner.operation if len(uses) == 1 else None


def indexing_maps(op: ir.Operation) -> list[ir.AffineMap]:
    return [ir.AffineMapAttr(a).value for a in op.attributes["indexing_maps"]]


# The indexing maps of linalg.matmul and linalg.batch_matmul when they are not transposed or broadcast.
_CONTRACTION_MAPS = {
    "linalg.matmul": ["affine_map<(d0, d1, d2) -> (d0, d2)>", "affine_map<(d0, d1, d2) -> (d2, d1)>",
                      "affine_map<(d0, d1, d2) -> (d0, d1)>"],
    "linalg.batch_matmul": ["affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>",
                            "affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>",
                            "affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>"],
}


def default_maps(op: ir.Operation) -> bool:
    """A linalg.matmul / batch_matmul with its default indexing maps (none given, or the defaults given)."""
    if "indexing_maps" not in op.attributes:
        return True
    return [str(ir.AffineMapAttr.get(m)) for m in indexing_maps(op)] == _CONTRACTION_MAPS[op.name]


def iterator_types(op: ir.Operation) -> list[str]:
    """``["parallel", "reduction", ...]`` of a linalg.generic."""
    return [str(a).split("<")[-1].rstrip(">") for a in ir.ArrayAttr(op.attributes["iterator_types"])]


def num_outputs(op: ir.Operation) -> int:
    """How many of a linalg op's operands are ``outs`` (the last ones)."""
    return ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"])[1]


def identity_layout(t: ir.MemRefType) -> bool:
    """Whether a memref is laid out row-major and contiguous (the identity map)."""
    return isinstance(t.layout, ir.AffineMapAttr) and t.layout.value == ir.AffineMap.get_identity(t.rank, t.context)


MEMREF_VIEWS = ("memref.subview", "memref.expand_shape", "memref.collapse_shape", "memref.cast",
                "memref.reinterpret_cast")
# ... and the views whose result may not keep the source's shape or layout: what a buffer may be seen through.
BUFFER_VIEWS = MEMREF_VIEWS + ("memref.view", "memref.transpose")


def view_source(value: ir.Value, kinds: tuple[str, ...]) -> ir.Value:
    """The value that ``value`` is a view of, through any chain of the view ops named in ``kinds``."""
    while not isinstance(value.owner, ir.Block) and value.owner.name in kinds:
        value = value.owner.operands[0]
    return value


def top_level_in(op: ir.Operation, block: ir.Block) -> ir.Operation:
    """The op of ``block`` that is or contains ``op``."""
    owner = block.owner.operation
    while op.parent is not None and op.parent.operation != owner:
        op = op.parent.operation
    return op


def body_ops(op: ir.Operation) -> list[ir.Operation]:
    return [o.operation for o in op.regions[0].blocks[0].operations]


def is_copy_generic(op: ir.Operation) -> bool:
    """A one-input linalg.generic whose body only yields its input."""
    if op.name != "linalg.generic" or len(op.operands) != 2:
        return False
    body = body_ops(op)
    block = op.regions[0].blocks[0]
    return len(body) == 1 and body[0].name == "linalg.yield" and body[0].operands[0] == block.arguments[0]


def constant_float(value: ir.Value) -> float | None:
    """The value of a scalar float ``arith.constant``, else None."""
    cst = producer(value)
    if cst is None or cst.name != "arith.constant" or not isinstance(cst.attributes["value"], ir.FloatAttr):
        return None
    return ir.FloatAttr(cst.attributes["value"]).value


def constant_index(value: ir.Value) -> int | None:
    """The value of an integer or index ``arith.constant``, else None."""
    cst = producer(value)
    if cst is None or cst.name != "arith.constant" or not isinstance(cst.attributes["value"], ir.IntegerAttr):
        return None
    return ir.IntegerAttr(cst.attributes["value"]).value


def is_zero_constant(value: ir.Value) -> bool:
    """``value`` is an ``arith.constant`` float 0.0."""
    return constant_float(value) == 0.0


def linear_terms(expr: ir.AffineExpr, dims: int) -> tuple[list[int], int] | None:
    """(coefficient per dim, constant) of a sum of dims times constants, else None."""
    expr = expr.maybe_downcast()
    if isinstance(expr, ir.AffineDimExpr):
        coeffs = [0] * dims
        coeffs[expr.position] = 1
        return coeffs, 0
    if isinstance(expr, ir.AffineConstantExpr):
        return [0] * dims, expr.value
    if isinstance(expr, ir.AffineAddExpr):
        lhs, rhs = linear_terms(expr.lhs, dims), linear_terms(expr.rhs, dims)
        if lhs is None or rhs is None:
            return None
        return [x + y for x, y in zip(lhs[0], rhs[0])], lhs[1] + rhs[1]
    if isinstance(expr, ir.AffineMulExpr):
        for term, factor in ((expr.lhs, expr.rhs), (expr.rhs, expr.lhs)):
            factor = factor.maybe_downcast()
            if isinstance(factor, ir.AffineConstantExpr):
                inner = linear_terms(term, dims)
                return None if inner is None else ([x * factor.value for x in inner[0]], inner[1] * factor.value)
    return None


def copy_window(copy: ir.Operation, source_shape: list[int], col_shape: list[int],
                groups: list[list[int]]) -> Window | None:
    """The ``Window`` through which a copy ``col[i...] = S[linear(i...)]`` (an identity-layout S of
    ``source_shape``; col of ``col_shape`` seen as [rows, k] by ``groups``) reads S flattened, or None
    when its input map is not a sum of dims times constants or its output map not the identity."""
    maps = indexing_maps(copy)
    if len(groups) != 2 or maps[1] != ir.AffineMap.get_identity(maps[1].n_dims):
        return None
    dims = maps[0].n_dims
    strides = [math.prod(source_shape[i + 1:]) for i in range(len(source_shape))]
    flat, offset = [0] * dims, 0
    for expr, stride in zip(maps[0].results, strides):
        found = linear_terms(expr, dims)
        if found is None:
            return None
        flat = [f + c * stride for f, c in zip(flat, found[0])]
        offset += found[1] * stride
    rows, ks = groups
    return Window(math.prod(source_shape), offset, tuple(col_shape[i] for i in rows), tuple(flat[i] for i in rows),
                  tuple(col_shape[i] for i in ks), tuple(flat[i] for i in ks))


def is_zero_fill(value: ir.Value) -> bool:
    op = producer(value)
    return op is not None and op.name == "linalg.fill" and is_zero_constant(op.operands[0])


def uses_value(op: ir.Operation, wanted, skip: tuple[str, ...] = ()) -> bool:
    """Whether ``op``, or an op nested in it, has an operand for which ``wanted(value)`` holds;
    ops named in ``skip`` do not count."""
    hit = False

    def visit(inner: ir.Operation) -> ir.WalkResult:
        nonlocal hit
        if inner.name not in skip and any(wanted(v) for v in inner.operands):
            hit = True
            return ir.WalkResult.INTERRUPT
        return ir.WalkResult.ADVANCE

    op.walk(visit)
    return hit


def aliases(root: ir.Value):
    """A predicate: whether a value is a memref view of ``root`` (``root`` itself included)."""
    return lambda v: isinstance(v.type, ir.MemRefType) and view_source(v, MEMREF_VIEWS) == root


def preceding_init(op: ir.Operation, buffer: ir.Value) -> ir.Operation | None:
    """The last op earlier in ``op``'s block that writes ``buffer`` as its one output (a
    ``linalg.fill``, or a generic such as a broadcast), if no op in between (nested ones included)
    touches any view of the same memref: ``op`` is then the first to see what it wrote."""
    block = op.block
    writers = [u.owner.operation for u in buffer.uses
               if u.owner.name in ("linalg.fill", "linalg.generic") and u.owner.operation.block == block
               and u.owner.operation.is_before_in_block(op) and num_outputs(u.owner.operation) == 1
               and u.owner.operation.operands[-1] == buffer]
    if not writers:
        return None
    writer = next(w for w in writers if not any(w.is_before_in_block(g) for g in writers))  # the last one
    same = aliases(view_source(buffer, MEMREF_VIEWS))
    between = False
    for other in block.operations:
        other = other.operation
        if other == op:
            return writer
        if between and uses_value(other, same):
            return None
        between = between or other == writer
    return None


def preceding_zero_fill(op: ir.Operation, buffer: ir.Value) -> ir.Operation | None:
    """The ``linalg.fill`` of 0.0 into ``buffer`` that ``op`` is the first to see, if any."""
    init = preceding_init(op, buffer)
    return init if init is not None and init.name == "linalg.fill" and is_zero_constant(init.operands[0]) else None


def erase_dead_ops(root: ir.Operation) -> None:
    """Erase ops left without users (MLIR's greedy driver does it with no patterns)."""
    from torch_mlir import rewrite

    rewrite.apply_patterns_and_fold_greedily(root, rewrite.RewritePatternSet(root.context).freeze())


def stored_weight(value: ir.Value) -> tuple[ir.Operation, str] | None:
    """The qc.weight producing ``value`` and its store name (None if another op produces it)."""
    op = producer(value)
    if op is None or not isinstance(op.opview, WeightOp):
        return None
    return op, op.opview.name.value


def linear_weight_name(linear: ir.Operation) -> str | None:
    """Store name of a qc.linear's weight (None unless it is a qc.weight)."""
    found = stored_weight(linear.opview.weight)
    return found[1] if found else None


LAYER_ATTR = "qc.layer"  # set where a pass re-points a linear at a new weight entry


def layer_name(linear: ir.Operation) -> str | None:
    """A qc.linear's name in reports, statistics and overrides: its ``qc.layer``, else its weight's
    store name less qc-raise's '.nk'."""
    if LAYER_ATTR in linear.attributes:
        return ir.StringAttr(linear.attributes[LAYER_ATTR]).value
    name = linear_weight_name(linear)
    return name[:-3] if name and name.endswith(".nk") else name


def enclosing_func(op: ir.Operation) -> ir.Operation:
    while op.name != "func.func":
        op = op.parent
    return op


def embedding_table(op: ir.Operation) -> tuple[ir.Operation, ir.Operation, str] | None:
    """(the ``tensor.extract``, the ``qc.weight``, its store name) when ``op`` is a gather of rows of a
    stored 2-D table: a ``linalg.generic`` whose body reads ``table[row, linalg.index <last>]`` with
    ``row`` computed from its inputs, as an ONNX ``Gather`` / ``torch.embedding`` imports."""
    if op.name != "linalg.generic":
        return None
    extracts = [o for o in body_ops(op) if o.name == "tensor.extract"]
    if len(extracts) != 1:
        return None
    extract = extracts[0]
    table = extract.opview.tensor
    found = stored_weight(table)
    if found is None or ir.RankedTensorType(table.type).rank != 2:
        return None
    column = producer(extract.opview.indices[1])
    if column is None or column.name != "linalg.index":
        return None
    loops = len(iterator_types(op))
    if ir.IntegerAttr(column.attributes["dim"]).value != loops - 1:
        return None
    return extract, found[0], found[1]


def scheme_targets(root: ir.Operation) -> list[ir.Operation]:
    """The ops a precision is chosen for: named ``qc.linear``s and embedding-table gathers."""
    found = []

    def visit(op):
        if (isinstance(op.opview, LinearOp) and layer_name(op) is not None) or embedding_table(op) is not None:
            found.append(op)
        return ir.WalkResult.ADVANCE

    root.walk(visit)
    return found


GATHER_SUFFIX = ".gather"


def target_name(op: ir.Operation) -> str:
    """The layer name of a scheme target: a linear's ``layer_name``; a gather's table entry, with
    ``.gather`` appended where a linear of the same function has that name (a tied LM head)."""
    if isinstance(op.opview, LinearOp):
        return layer_name(op)
    if LAYER_ATTR in op.attributes:  # named when its scheme was set: a quantized tied head no longer matches
        return ir.StringAttr(op.attributes[LAYER_ATTR]).value
    table = embedding_table(op)[2]
    tied = []

    def visit(inner):
        if isinstance(inner.opview, LinearOp) and layer_name(inner) == table:
            tied.append(inner)
            return ir.WalkResult.INTERRUPT
        return ir.WalkResult.ADVANCE

    enclosing_func(op).walk(visit)
    return table + GATHER_SUFFIX if tied else table


def set_scheme(op: ir.Operation, name: str, attr: ir.Attribute) -> None:
    """Give a scheme target its ``qc.scheme``, and its name as ``qc.layer`` so later rewrites keep it."""
    op.attributes["qc.scheme"] = attr
    op.attributes[LAYER_ATTR] = ir.StringAttr.get(name)


def target_weight(op: ir.Operation) -> str | None:
    """Store name of a scheme target's f32 weight: a linear's weight, a gather's table."""
    if isinstance(op.opview, LinearOp):
        return linear_weight_name(op)
    return embedding_table(op)[2]


def layout_attr(layout: PanelLayout) -> ir.Attribute:
    """``#qc.layout<...>`` of ``layout``."""
    i64 = ir.IntegerType.get_signless(64)
    return LayoutAttr.get(*(ir.IntegerAttr.get(i64, int(v)) for v in (
        layout.n, layout.k, layout.width, layout.bits, layout.group, layout.dot, layout.symmetric)))


def layout_of(op: ir.Operation) -> PanelLayout | None:
    """The PanelLayout a contraction's ``qc.layout`` names (None without one)."""
    if LAYOUT_ATTR not in op.attributes:
        return None
    attr = LayoutAttr(op.attributes[LAYOUT_ATTR])
    n, k, width, bits, group, dot, symmetric = (ir.IntegerAttr(getattr(attr, f)).value for f in (
        "n", "k", "width", "bits", "group", "dot", "symmetric"))
    return PanelLayout(n, k, width, bits, group, bool(dot), bool(symmetric))
