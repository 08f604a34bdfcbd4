"""Quantization: the numerics against their definitions, and compiled quantized
models against a numpy reference of the same quantized math."""

import numpy as np
import pytest
import torch
from torch import nn

import qc
from qc.compiler.codegen import Target, host_cpu
from qc.core.errors import QCError
from qc.core.quant import dequantize, parse_scheme, quantize_awq, quantize_gptq, quantize_rtn
from qc.core.quant.awq import output_error
from qc.core.quant.packing import PanelLayout, float_panel_width, pack_rows, unpack_rows


@pytest.fixture(scope="module")
def layer():
    """A weight and calibration inputs with a few outlier channels and correlated features."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((48, 128)) * 0.05).astype(np.float32)
    x = rng.standard_normal((1024, 128)).astype(np.float32) @ (np.eye(128) + 0.3 * rng.standard_normal((128, 128)))
    x[:, :4] *= 25
    x = x.astype(np.float32)
    return w, x, x.T.astype(np.float64) @ x


@pytest.mark.parametrize("name", ["w4a16-g32", "w4a16-g128-asym", "w8a16", "w8a16-asym"])
def test_rtn_rounds_to_nearest_level_within_range(layer, name):
    w, _, _ = layer
    scheme = parse_scheme(name)
    qw = quantize_rtn(w, scheme)
    lo, hi = -(1 << (scheme.weight_bits - 1)), (1 << (scheme.weight_bits - 1)) - 1
    assert qw.q.dtype == np.int8 and qw.q.min() >= lo and qw.q.max() <= hi
    groups = 128 // scheme.group_size if scheme.group_size else 1
    assert qw.scale.shape == qw.zero_point.shape == (48, groups)
    if scheme.symmetric:
        assert not qw.zero_point.any()
    step = np.repeat(qw.scale, 128 // groups, axis=1)
    assert np.all(np.abs(dequantize(qw) - w) <= step / 2 * (1 + 1e-5))  # nothing clipped, nearest level



@pytest.mark.parametrize("bits", [4, 8])
def test_rounding_next_to_half_integers_is_float64s(bits):
    """quantize_with rounds each quotient as float64 math does, also where the float32 quotient lies within
    its rounding error of a half-integer (values m + 0.5 scaled, nudged by 1e-7) and for quotients beyond the
    range (which clip whichever way they round), with every zero point."""
    from qc.core.quant.rtn import quantize_with

    rng = np.random.default_rng(bits)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    s = (rng.random((64, 1)) * 0.01 + 1e-4).astype(np.float32)
    m = rng.integers(-(2 ** bits) - 3, 2 ** bits + 3, (64, 512)) + 0.5
    w = (m * s.astype(np.float64) * (1 + rng.standard_normal((64, 512)) * 1e-7)).astype(np.float32)
    w[:, :8] = rng.standard_normal((64, 8)).astype(np.float32) * 1000
    z = rng.integers(lo, hi + 1, (64, 1)).astype(np.int8)
    ref = np.clip(np.round(w.astype(np.float64) / s.astype(np.float64)) + z, lo, hi).astype(np.int8)
    assert np.array_equal(quantize_with(w, s, z, bits), ref)

def test_packing_layouts():
    rng = np.random.default_rng(1)
    q = rng.integers(-8, 8, (5, 64), dtype=np.int8)
    u = q.astype(np.int32) + 8
    packed = pack_rows(q, 4).view(np.uint8)
    assert packed.shape == (5, 32)
    assert packed[2, 3] == u[2, 3] | (u[2, 19] << 4)       # values j and j+16 of a block share a byte
    assert packed[2, 16 + 3] == u[2, 35] | (u[2, 51] << 4)
    assert np.array_equal(unpack_rows(pack_rows(q, 4), 4), q)
    layout = PanelLayout(5, 64, 8, bits=4, group=32, symmetric=False)
    panels = layout.weights(q).view(np.uint8)                    # [P, K, 4]: columns c and c+4 share a byte
    assert panels.shape == (1, 64, 4)
    assert panels[0, 10, 1] == u[1, 10] | (8 << 4)              # column 5 is padding: zero point 8
    s, o = layout.scales(np.full((5, 2), 0.5, np.float32), np.ones((5, 2), np.int8))
    assert s.shape == o.shape == (1, 2, 8) and o[0, 0, 0] == -(1 + 8) * 0.5 and s[0, 0, 7] == o[0, 0, 7] == 0
    assert layout.nbytes == 64 * 8 // 2 + 2 * 2 * 8 * 4 and layout.weight_shape == list(panels.shape)
    assert PanelLayout(5, 64, 8, bits=4, group=32).scales(s[0, :, :5].T, np.zeros((5, 2), np.int8))[1] is None
    # float panels narrow for few outputs (the integer ones keep the target's width)
    assert [float_panel_width(n, 32) for n in (1, 4, 8, 9, 16, 17, 64)] == [8, 8, 8, 16, 16, 32, 32]
    assert parse_scheme("f32").layout(4, 64, 32).width == 8 and parse_scheme("w8a16").layout(4, 64, 32).width == 32



TWO_READERS = """
func.func @{fn}(%x: tensor<{m}x64xf32>) -> tensor<{m}x40xf32> {{
  %p = "qc.weight"() {{name = @{w}.q}} : () -> tensor<40x32xi8>
  %s = "qc.weight"() {{name = @{w}.scale}} : () -> tensor<40x2xf32>
  %z = "qc.weight"() {{name = @{w}.zero}} : () -> tensor<40x2xi8>
  %y = "qc.qgemm"(%x, %p, %s, %z) {{bits = 4 : i64, group_size = 32 : i64, act_bits = 0 : i64, act_scale = 0.0 : f32,
       operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>}} : (tensor<{m}x64xf32>, tensor<40x32xi8>, tensor<40x2xf32>,
       tensor<40x2xi8>) -> tensor<{m}x40xf32>
  return %y : tensor<{m}x40xf32>
}}"""


@pytest.mark.parametrize("own", [False, True])
def test_packing_drops_what_nothing_reads_when_the_compile_owns_the_store(own):
    """A decoder's two entry functions read each weight: with ``own_store`` the unpacked entries go as soon
    as both readers are packed (one weight at a time, not after every weight of the first function)."""
    from torch_mlir import ir

    from qc.compiler import codegen
    from qc.compiler.context import make_context
    from qc.core.weights import WeightStore
    from qc.passes.base import PassState
    from qc.passes.lower_qgemm import LowerQGemm

    text = "".join(TWO_READERS.format(fn=f"{fn}_{w}", m=m, w=w) for fn, m in (("prefill", 8), ("decode", 1))
                   for w in ("a", "b"))
    rng = np.random.default_rng(0)
    store = WeightStore({n: a for w in ("a", "b") for n, a in (
        (f"{w}.q", pack_rows(rng.integers(-8, 8, (40, 64), dtype=np.int8), 4)),
        (f"{w}.scale", np.ones((40, 2), np.float32)), (f"{w}.zero", np.ones((40, 2), np.int8)))})
    sizes = []
    store_set = WeightStore.__setitem__

    def record(self, name, value):  # entries held each time a packed one is added
        sizes.append(len(self))
        store_set(self, name, value)

    WeightStore.__setitem__ = record
    try:
        with make_context():
            module = ir.Module.parse(text)
            codegen.run(module, [LowerQGemm(panel_width=32)], PassState(store, own_store=own), "test")
    finally:
        WeightStore.__setitem__ = store_set
    packed = {n for n in store.names() if n.endswith(".p32")}
    assert len(packed) == 6  # weights, scales and offsets of a and b, shared by both functions
    assert set(store.names()) - packed == (set() if own else {f"{w}.{s}" for w in "ab" for s in ("q", "scale", "zero")})
    # a's three entries are gone before b is packed
    assert sizes == ([6, 7, 8, 6, 7, 8] if own else [6, 7, 8, 9, 10, 11])

@pytest.mark.parametrize("name", ["w4a16-g32", "w4a16-g64-asym", "w8a16"])
def test_gptq_and_awq_beat_rtn_on_output_error(layer, name):
    w, x, h = layer
    scheme = parse_scheme(name)
    rtn = output_error(w, dequantize(quantize_rtn(w, scheme)), h)
    gptq = output_error(w, dequantize(quantize_gptq(w, h, scheme)), h)
    gptq_ordered = output_error(w, dequantize(quantize_gptq(w, h, scheme, act_order=True)), h)
    qw, s, _ = quantize_awq(w, np.abs(x).mean(0), h, scheme)
    awq = output_error(w, dequantize(qw) / s, h)
    assert gptq < 0.9 * rtn and gptq_ordered < 0.9 * rtn and awq < 0.9 * rtn


def test_scheme_names():
    assert parse_scheme("w4a16-g128").kind == "w4a16-g128" and parse_scheme("w4a16-g128").symmetric
    assert not parse_scheme("w8a16-asym").symmetric and parse_scheme("w8a16-asym").group_size == 0
    assert not parse_scheme("f32").quantized
    assert parse_scheme("f16").half and parse_scheme("f16").name == "f16" and parse_scheme("f16").weight_bytes(4, 8) == 64
    for bad in ("w3a16", "w4a16-g100", "w4a16", "int4", "f16-asym"):
        with pytest.raises(QCError, match="unknown scheme"):
            parse_scheme(bad)


class MLP(nn.Module):
    """K = 64 and 96 (two and three groups of 32), N = 40 (ragged panels) and 64."""

    def __init__(self):
        super().__init__()
        self.up = nn.Linear(64, 96)
        self.mid = nn.Linear(96, 40, bias=False)
        self.down = nn.Linear(40, 64)

    def forward(self, x):
        return self.down(torch.relu(self.mid(torch.relu(self.up(x)))))


def reference(model: MLP, x: np.ndarray, scheme_name: str) -> np.ndarray:
    """numpy forward with every linear's weight replaced by its RTN dequantization (f16: rounded to half) and, for int8-activation
    schemes, its input by qc.qgemm's per-row int8 quantization (K % group != 0 stays f32)."""
    scheme = parse_scheme(scheme_name)

    def linear(layer, h):
        wt = layer.weight.detach().numpy()
        if scheme.half:
            wt = wt.astype(np.float16)
        elif not scheme.group_size or wt.shape[1] % scheme.group_size == 0:
            wt = dequantize(quantize_rtn(wt, scheme))
            h = quantize_activations(h, act_max=scheme.act_max) if scheme.int_activations else h
        return h @ wt.T.astype(np.float64) + (layer.bias.detach().numpy() if layer.bias is not None else 0)

    h = np.maximum(linear(model.up, x), 0)
    return linear(model.down, np.maximum(linear(model.mid, h), 0))


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    return MLP().eval()


@pytest.mark.parametrize("cpu", [None, "haswell", "x86-64"])
@pytest.mark.parametrize("scheme", ["w4a16-g32", "w4a16-g32-asym", "w8a16", "w8a16-asym", "f16"])
@pytest.mark.parametrize("rows", [1, 13])
def test_compiled_qgemm_matches_numpy(mlp, cpu, scheme, rows, workdir):
    """The generated kernels for 16/8/4 lanes, decode (1 row) and tiled (13 rows), all schemes:
    float32 sums of the same dequantized products, so only summation order differs."""
    x = np.random.default_rng(rows).standard_normal((rows, 64)).astype(np.float32)
    out = workdir / f"mlp_{scheme}_{cpu}_{rows}.so"
    qc.compile(mlp, out, example_inputs=(torch.from_numpy(x),), input_names=["x"], scheme=scheme, target_cpu=cpu)
    got = qc.runtime.load(out).run({"x": x})["output0"]
    ref = reference(mlp, x.astype(np.float64), scheme)
    assert np.abs(got - ref).max() <= 1e-5 * max(1.0, np.abs(ref).max())


def quantize_activations(x: np.ndarray, scale: float = 0.0, act_max: int = 127) -> np.ndarray:
    """qc.qgemm's integer activations (within +-act_max), dequantized: per row (scale 0) or with one static
    scale, as float64."""
    x = x.astype(np.float32)
    sx = (np.abs(x).max(-1, keepdims=True) / np.float32(act_max)).astype(np.float32) if not scale else \
        np.full(x.shape[:-1] + (1,), np.float32(scale))
    inv = np.where(sx > 0, np.float32(1) / np.where(sx > 0, sx, 1), 0).astype(np.float32)
    return np.clip(np.rint((x * inv).astype(np.float32)), -act_max, act_max).astype(np.float64) * sx


@pytest.mark.parametrize("cpu", [None, "haswell", "x86-64"])
@pytest.mark.parametrize("scheme", ["w8a8", "w4a8-g32", "w4a8-g32-asym", "w8a7"])
@pytest.mark.parametrize("rows", [1, 13, 77])
def test_compiled_int8_activations_match_numpy(mlp, cpu, scheme, rows, workdir):
    """Integer dot-product kernels (on an AMX host, tiles for the w8a8 K = 64 layer's first 64 rows
    and VNNI for the rest; AVX2 vpmaddubsw for haswell int4, generic i32 otherwise): the integer
    sums are exact, so only the float epilogue may round differently.  One activation rounded the
    other way would move the output by ~1e-3 of its range."""
    x = np.random.default_rng(rows).standard_normal((rows, 64)).astype(np.float32)
    out = workdir / f"mlp_{scheme}_{cpu}_{rows}.so"
    qc.compile(mlp, out, example_inputs=(torch.from_numpy(x),), input_names=["x"], scheme=scheme, target_cpu=cpu)
    got = qc.runtime.load(out).run({"x": x})["output0"]
    ref = reference(mlp, x.astype(np.float64), scheme)
    assert np.abs(got - ref).max() <= 2e-6 * np.abs(ref).max()


def _flavour_targets() -> dict[str, tuple[str | None, str | None]]:
    """Each integer dot-product flavour -> (target cpu, features) selecting it, for those this host can execute."""
    cpu, features = host_cpu()
    host = {f[1:] for f in features.split(",") if f.startswith("+")}
    without_amx = ",".join(f if f not in ("+amx-int8", "+amx-tile") else "-" + f[1:] for f in features.split(","))
    # generic with FMA (the others have it), so that one epilogue rounds alike everywhere
    wanted = {"generic": ("x86-64-v3", "+avx,+fma,-avx2", {"avx", "fma"}), "avx2": ("x86-64-v3", None, {"avx2", "fma"}),
              "avx512bw": ("x86-64-v4", None, {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"}),
              "vnni": (cpu, without_amx, {"avx512f", "avx512vnni"}), "amx": (None, None, {"amx-int8", "amx-tile"})}
    return {name: (c, f) for name, (c, f, needs) in wanted.items() if needs <= host}


def test_every_integer_flavour_is_exact_on_saturating_inputs(workdir):
    """Full-range int8: weights at +-127 and, asymmetric, -128 (u = 0 and 255 in the dot panels) times
    activations at +-127, where a plain vpmaddubsw pair would saturate int16 (255 x 127 x 2 > 32767);
    w8a7's at +-63, which vpmaddubsw takes without the sign trick (255 x 63 x 2 = 32130: its AVX2 IR has
    no psignb); w7a8's weights at +-63 and, asymmetric, -64 (u = 64 to 191, whose pairs against +-127 would
    saturate as they are: the vpmaddubsw flavours take u - 64, and have no psignb either); int4 weights all at 7
    (u = 15) against rows all at +127 or all at -127, whose pairs the
    vpmaddubsw flavours sum as int16 over a group's 8 cell-nibbles up to +-30480 (16 would saturate).  Every flavour this host can execute gives the same f32 bits (one epilogue over exact
    integer sums, so any integer difference would show), and the generic one (i32 multiplies) matches numpy."""
    rng = np.random.default_rng(7)
    torch.manual_seed(0)
    k, n, rows = 256, 48, 40  # 40 rows: an AMX block of 32, then vector tiles and a tail
    model = nn.Linear(k, n).eval()
    x = (rng.choice([-1.0, 1.0], (rows, k)) * rng.uniform(0.5, 2.0, (rows, 1))).astype(np.float32)
    x[:2] = np.abs(x[:2]) * [[1.0], [-1.0]]  # one row all positive, one all negative
    targets = _flavour_targets()
    assert {"generic", "avx2"} <= targets.keys()  # every x86-64 host this project runs on
    # q at the ends of its range: +-127; -128 and 127; -8 and 7 (int4, whose u < 16 cannot saturate)
    for scheme, levels in (("w8a8", [-1.0, 1.0]), ("w8a8-asym", [-1.0, 0.5]), ("w4a8-g32-asym", [-1.0, 0.5]),
                           ("w4a8-g128", [1.0]), ("w8a7", [-1.0, 1.0]), ("w8a7-asym", [-1.0, 0.5]),
                           ("w7a8", [-1.0, 1.0]), ("w7a8-asym", [-1.0, 0.5])):
        w = rng.choice(levels, (n, k)) * rng.uniform(0.5, 2.0, (n, 1))
        with torch.no_grad():
            model.weight.copy_(torch.from_numpy(w.astype(np.float32)))
        got = {}
        for flavour, (cpu, features) in targets.items():
            out = workdir / f"saturate_{scheme}_{flavour}.so"
            qc.compile(model, out, example_inputs=(torch.from_numpy(x),), input_names=["x"], scheme=scheme,
                       target_cpu=cpu, target_features=features)
            got[flavour] = qc.runtime.load(out).run({"x": x})["output0"]
            if flavour == "avx2" and not scheme.startswith("w4"):
                ir_text = workdir / f"saturate_{scheme}_{flavour}.ll"
                qc.compile(model, ir_text, emit="llvm", example_inputs=(torch.from_numpy(x),), input_names=["x"],
                           scheme=scheme, target_cpu=cpu, target_features=features)
                assert ("psign.b" in ir_text.read_text()) == scheme.startswith("w8a8"), scheme
        for flavour, y in got.items():
            assert np.array_equal(y.view(np.int32), got["generic"].view(np.int32)), (scheme, flavour)
        parsed = parse_scheme(scheme)
        qw = quantize_rtn(model.weight.detach().numpy(), parsed)
        top = (1 << (parsed.weight_bits - 1)) - 1
        assert qw.q.max() == top
        if len(levels) > 1:
            assert qw.q.min() == (-top - 1 if scheme.endswith("asym") else -top)
        sx = np.abs(x).max(-1, keepdims=True) / np.float32(parsed.act_max)
        xq = np.clip(np.rint(x / sx), -parsed.act_max, parsed.act_max)
        assert np.abs(xq).min() == parsed.act_max
        w = (qw.q.reshape(n, qw.scale.shape[1], -1).astype(np.float64) - qw.zero_point[:, :, None]) * qw.scale[:, :, None]
        exact = (xq @ w.reshape(n, k).T) * sx + model.bias.detach().numpy()
        assert np.abs(got["generic"] - exact).max() <= 2e-6 * np.abs(exact).max()


class _TwoRowCounts(nn.Module):
    """One linear applied to a one-row and a four-row input: a decode GEMV and a small GEMM."""

    def __init__(self, k: int, n: int):
        super().__init__()
        self.fc = nn.Linear(k, n)

    def forward(self, x1, x4):
        return self.fc(x1), self.fc(x4)


@pytest.mark.parametrize("scheme", ["w4a16-g32", "w8a16-asym"])
def test_split_activations_are_exact_to_the_row_maximum(scheme, workdir):
    """Weight-only layers take f32 x as three int8 pieces where integer dot products pay (qc-lower-qgemm's
    split-activations: every layer on VNNI, one-row layers on vpmaddubsw targets, none on generic):
    x = s0 q0 + s1 q1 + s2 q2 + e with |e| <= 6.1e-8 max |x_row| (7-bit pieces, against int8 weights on
    vpmaddubsw targets: 5.0e-7).  Rows with a 100x outlier, weights at the ends of their range (int8 asym:
    u = 0 and 255), every flavour this host can execute: each output within 2.5e-7 (7-bit pieces: 7e-7)
    max |x_row| sum_k |w_nk| of the float64 product (the pieces' error plus f32 sums; with two pieces it
    would be 1.5e-5).  The LLVM IR holds the flavour's byte dot product exactly where a piece is taken."""
    rng = np.random.default_rng(3)
    torch.manual_seed(0)
    k, n = 256, 48
    model = _TwoRowCounts(k, n).eval()
    levels = [-1.0, 0.5] if scheme.endswith("asym") else [-1.0, 1.0]
    with torch.no_grad():
        model.fc.weight.copy_(torch.from_numpy((rng.choice(levels, (n, k)) * rng.uniform(0.5, 2.0, (n, 1))).astype(np.float32)))
    xs = [rng.standard_normal((rows, k)).astype(np.float32) for rows in (1, 4)]
    for x in xs:
        x[:, rng.integers(0, k, len(x))] = 100.0 * rng.choice([-1.0, 1.0], len(x))
    qw = quantize_rtn(model.fc.weight.detach().numpy(), parse_scheme(scheme))
    assert qw.q.max() == (1 << (qw.bits - 1)) - 1 and qw.q.min() == -(1 << (qw.bits - 1)) + (0 if "asym" in scheme else 1)
    w = ((qw.q.reshape(n, qw.scale.shape[1], -1).astype(np.float64) - qw.zero_point[:, :, None])
         * qw.scale[:, :, None]).reshape(n, k)
    intrinsic = {"avx2": "pmadd.ub.sw", "avx512bw": "pmaddubs.w.512", "vnni": "vpdpbusd", "amx": "vpdpbusd"}
    for flavour, (cpu, features) in _flavour_targets().items():
        args = dict(example_inputs=tuple(map(torch.from_numpy, xs)), input_names=["x1", "x4"], scheme=scheme,
                    target_cpu=cpu, target_features=features)
        out = workdir / f"split_{scheme}_{flavour}.so"
        qc.compile(model, out, **args)
        got = qc.runtime.load(out).run({"x1": xs[0], "x4": xs[1]})
        for x, y in zip(xs, got.values()):
            ref = x.astype(np.float64) @ w.T + model.fc.bias.detach().numpy()
            seven = flavour in ("avx2", "avx512bw") and qw.bits == 8 and len(x) == 1
            bound = (7e-7 if seven else 2.5e-7) * np.abs(x).max(-1, keepdims=True) * np.abs(w).sum(-1)
            assert (np.abs(y - ref) <= bound).all(), (flavour, len(x), float((np.abs(y - ref) / bound).max()))
        split = flavour != "generic"
        if flavour in intrinsic:
            qc.compile(model, workdir / f"split_{scheme}_{flavour}.ll", emit="llvm", **args)
            assert (intrinsic[flavour] in (workdir / f"split_{scheme}_{flavour}.ll").read_text()) == split, flavour


@pytest.mark.parametrize("cpu,features,flavour", [
    ("sapphirerapids", None, "amx"), ("icelake-server", None, "vnni"), ("haswell", None, "avx2"),
    ("skylake-avx512", None, "avx512bw"), ("x86-64-v4", None, "avx512bw"), ("x86-64", None, "generic"),
    ("skylake-avx512", "+avx512f,+avx512bw", "avx512bw"), ("sapphirerapids", "+avx512f,+avx512vnni,+amx-tile,+amx-int8", "amx"),
    ("sapphirerapids", "+avx512f,+avx512vnni,-amx-tile,-amx-int8", "vnni"), ("alderlake", "+avx,+avx2,+fma,+avxvnni", "vnni")])
def test_target_chooses_integer_dot_products(cpu, features, flavour):
    target = Target.of(cpu, features)
    assert target.int8_dot == flavour
    assert target.split_activations == {"amx": "always", "vnni": "always", "generic": "never"}.get(flavour, "gemv")
    assert target.int8_piece_bits == (7 if flavour in ("avx2", "avx512bw") else 8)


@pytest.mark.parametrize("cpu,features,rows,prefetch", [
    ("znver4", None, 1, False), ("znver4", None, 13, True), ("icelake-server", None, 1, True),
    ("znver4", "+avx,+avx2,+fma", 1, True)])
def test_zen4_vnni_leaves_light_kernels_weight_streams_to_the_hardware(mlp, cpu, features, rows, prefetch, workdir):
    """Zen 4's VNNI kernels doing under 4 multiply-adds per weight byte (one row of int8 weights) issue no
    software prefetches; more rows, another CPU, or Zen 4's AVX2 kernels keep them."""
    target = Target.of(cpu, features)
    assert target.prefetch_min_reuse == (4 if cpu == "znver4" and not features else 0)
    out = workdir / f"mlp_prefetch_{cpu}_{features is None}_{rows}.ll"
    qc.compile(mlp, out, emit="llvm", example_inputs=(torch.zeros(rows, 64),), input_names=["x"], scheme="w8a8",
               target_cpu=cpu, target_features=features)
    text = out.read_text()
    assert ("@llvm.x86.avx512.vpdpbusd" in text) == (features is None)
    assert ("call void @llvm.prefetch" in text) == prefetch


def test_w8a8_prefill_uses_amx_tiles_on_sapphirerapids(mlp, workdir):
    """64 rows x K = 64 (the up layer) go through tdpbsud tiles; K = 96 and 40 are not multiples of 64."""
    x = np.zeros((64, 64), np.float32)
    out = workdir / "mlp_amx.ll"
    qc.compile(mlp, out, emit="llvm", example_inputs=(torch.from_numpy(x),), input_names=["x"], scheme="w8a8",
               target_cpu="sapphirerapids")
    text = out.read_text()
    assert text.count("call x86_amx @llvm.x86.tdpbsud.internal") == 4
    assert "llvm.x86.avx512.vpdpbusd.512" in text


def test_static_activation_scale_from_calibration(mlp, workdir):
    """activations=static: one scale per layer input, max|x| over the calibration data / 127."""
    rng = np.random.default_rng(5)
    calib = [{"x": rng.standard_normal((4, 64)).astype(np.float32)} for _ in range(4)]
    x = rng.standard_normal((4, 64)).astype(np.float32)
    qc.compile(mlp, workdir / "static.so", example_inputs=(torch.from_numpy(x),), input_names=["x"],
               scheme="w8a8", activations="static", calibration=calib)
    got = qc.runtime.load(workdir / "static.so").run({"x": x})["output0"]

    f32 = {name: getattr(mlp, name).weight.detach().numpy() for name in ("up", "mid", "down")}
    w8 = {name: dequantize(quantize_rtn(w, parse_scheme("w8a8"))) for name, w in f32.items()}
    b = {name: getattr(mlp, name).bias.detach().numpy() if getattr(mlp, name).bias is not None else 0
         for name in ("up", "mid", "down")}

    def forward(h, weights, quant):
        for name, relu in (("up", True), ("mid", True), ("down", False)):
            h = quant(name, h) @ weights[name].T.astype(np.float64) + b[name]
            h = np.maximum(h, 0) if relu else h
        return h

    absmax = {}  # calibration observes the f32 model
    forward(np.concatenate([c["x"] for c in calib]).astype(np.float64), f32,
            lambda name, h: absmax.setdefault(name, np.abs(h).max()) and h)
    ref = forward(x.astype(np.float64), w8, lambda name, h: quantize_activations(h, np.float32(absmax[name]) / 127))
    assert np.abs(got - ref).max() <= 2e-6 * np.abs(ref).max()
