"""Precision selection: the ILP itself, quantized embedding tables, and ``--scheme auto`` end to end."""

import itertools
import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import qc
from qc.compiler.report import markdown
from qc.core.calibration import Statistics
from qc.core.errors import QCError
from qc.core.quant import parse_scheme
from qc.core.quant.select import Candidate, Infeasible, Layer, Problem, greedy, solve
from qc.core.quant.sensitivity import fake_quantize

from conftest import EXAMPLE, run

VOCAB, DIM, HIDDEN, SEQ = 96, 64, 128, 16


def random_problem(rng, layers=4, candidates=4) -> Problem:
    return Problem([Layer(f"l{i}", 100, [Candidate(f"s{c}", int(rng.integers(10, 100)), float(rng.random()),
                                                   float(rng.random())) for c in range(candidates)])
                    for i in range(layers)])


def brute_force(problem: Problem):
    best = None
    for combo in itertools.product(*[layer.candidates for layer in problem.layers]):
        chosen = {layer.name: c for layer, c in zip(problem.layers, combo)}
        if problem.max_bytes is not None and sum(c.bytes for c in combo) > problem.max_bytes:
            continue
        if problem.max_latency_ms is not None and sum(c.latency_ms for c in combo) > problem.max_latency_ms:
            continue
        if any(len({chosen[n].scheme for n in g}) > 1 for g in problem.groups):
            continue
        error = sum(c.error for c in combo)
        best = error if best is None or error < best else best
    return best


@pytest.mark.parametrize("seed", range(12))
def test_ilp_is_the_brute_force_optimum(seed):
    """Byte and latency budgets together, and (every third instance) two coupled layers."""
    rng = np.random.default_rng(seed)
    problem = random_problem(rng)
    problem.max_bytes, problem.max_latency_ms = float(rng.integers(120, 300)), float(rng.uniform(0.8, 2.5))
    if seed % 3 == 0:
        problem.groups = [["l0", "l1"]]
    best = brute_force(problem)
    if best is None:
        with pytest.raises(Infeasible):
            solve(problem)
        return
    solution = solve(problem)
    assert solution.error == pytest.approx(best, abs=1e-9)
    assert solution.bytes <= problem.max_bytes and solution.latency_ms <= problem.max_latency_ms + 1e-9
    for group in problem.groups:
        assert len({solution.choice[n].scheme for n in group}) == 1


def test_infeasible_budget_names_the_smallest_feasible():
    problem = Problem([Layer("a", 8, [Candidate("x", 10, 1.0), Candidate("y", 20, 0.0)]),
                       Layer("b", 8, [Candidate("x", 5, 1.0), Candidate("y", 40, 0.0)])], max_bytes=14)
    with pytest.raises(Infeasible, match=r"the smallest feasible is budget-bits=7.5 \(budget-mb=1.5e-05\)"):
        solve(problem)


def test_greedy_is_never_better_than_the_ilp():
    rng = np.random.default_rng(7)
    for _ in range(20):
        problem = random_problem(rng, layers=6)
        problem.max_bytes = float(sum(min(c.bytes for c in layer.candidates) for layer in problem.layers) + 60)
        assert solve(problem).error <= greedy(problem).error + 1e-12


def embedding_model(path, seed=0):
    """ids [1, SEQ] -> Gather(table [VOCAB, DIM]) -> fc1 (heavy-tailed weights) -> relu -> fc2 -> fc3."""
    rng = np.random.default_rng(seed)
    inits = {"table": rng.standard_normal((VOCAB, DIM)).astype(np.float32),
             "w1": (rng.standard_t(1.5, (DIM, HIDDEN)) * 0.05).astype(np.float32),
             "w2": (rng.standard_normal((HIDDEN, HIDDEN)) * 0.1).astype(np.float32),
             "w3": (rng.standard_normal((HIDDEN, DIM)) * 0.1).astype(np.float32)}
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"], name="embed"),
             helper.make_node("MatMul", ["e", "w1"], ["h1"], name="fc1"),
             helper.make_node("Relu", ["h1"], ["r1"], name="relu1"),
             helper.make_node("MatMul", ["r1", "w2"], ["h2"], name="fc2"),
             helper.make_node("Relu", ["h2"], ["r2"], name="relu2"),
             helper.make_node("MatMul", ["r2", "w3"], ["y"], name="fc3")]
    graph = helper.make_graph(nodes, "emb", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, SEQ])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, SEQ, DIM])],
                              [numpy_helper.from_array(a, n) for n, a in inits.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return inits


def ids(seed):
    return np.random.default_rng(seed).integers(0, VOCAB, (1, SEQ)).astype(np.int64)


@pytest.fixture(scope="module")
def emb(workdir):
    path = workdir / "emb.onnx"
    inits = embedding_model(path)
    calib = [{"ids": ids(100 + i)} for i in range(8)]
    return path, inits, calib


def test_quantized_embedding_table_matches_numpy(emb, workdir):
    """w4a16-g32 everywhere, the Gather's table included: the compiled model computes exactly the
    numpy model on the fake-quantized table and weights, and stores the table at 5 bits a value."""
    path, inits, _ = emb
    out = workdir / "emb_w4.so"
    qc.compile(path, out, scheme="w4a16-g32", report=workdir / "emb_w4.json")
    layers = json.loads((workdir / "emb_w4.json").read_text())["layers"]
    assert layers["embed"]["scheme"] == "w4a16-g32" and layers["embed"]["bytes"] == VOCAB * DIM // 2 + VOCAB * 2 * 4
    s = parse_scheme("w4a16-g32")
    x = ids(1)
    h = fake_quantize(inits["table"], s)[x]
    for name in ("w1", "w2"):
        h = np.maximum(h @ fake_quantize(inits[name].T.copy(), s).T, 0)
    ref = h @ fake_quantize(inits["w3"].T.copy(), s).T
    got = qc.runtime.load(out).run({"ids": x})["y"]
    assert np.abs(got - ref).max() <= 1e-5 * np.abs(ref).max()


def blob_bytes(path) -> int:
    """The bytes of the arrays a .qcw holds, from its header (alignment padding not counted)."""
    raw = path.read_bytes()
    header = json.loads(raw[16:int(np.frombuffer(raw[8:16], np.uint64)[0])].rstrip(b"\0").decode())
    return sum(int(np.prod(shape)) * np.dtype(dtype).itemsize for _, shape, dtype in header.values())


@pytest.mark.parametrize("scheme", ["f32", "f16", "w4a16-g32", "w8a8-asym", "w4a8-g32-asym"])
@pytest.mark.parametrize("cpu", [None, "haswell"])
def test_report_bytes_are_the_weight_files(cpu, scheme, workdir):
    """The report's total is exactly what the .qcw stores (the bytes the ILP budgets): kernel panels
    padded to the target's width (fc2's 10 outputs take a whole panel), f32 offsets beside the
    scales only for asymmetric weights, and the biases."""
    model = Path(__file__).resolve().parents[2] / "examples" / "mlp.onnx"
    out = workdir / f"bytes_{scheme}_{cpu}.so"
    qc.compile(model, out, scheme=scheme, target_cpu=cpu, report=workdir / f"bytes_{scheme}_{cpu}.json")
    report = json.loads((workdir / f"bytes_{scheme}_{cpu}.json").read_text())
    assert report["model_bytes_after"] == blob_bytes(out.with_suffix(".qcw"))


def test_auto_beats_uniform_and_greedy_at_equal_bytes(emb, workdir):
    """At uniform w4a16-g32's total bytes, the ILP's choice (measured sensitivities) has a smaller
    output error than uniform w4a16-g32, its predicted error is no worse than the greedy allocation's,
    and the sensitivities are cached in the saved statistics."""
    path, _, calib = emb
    qc.compile(path, workdir / "u.so", scheme="w4a16-g32", report=workdir / "u.json")
    budget = json.loads((workdir / "u.json").read_text())["model_bytes_after"]
    result = qc.compile(path, workdir / "auto.so", scheme="auto", budget_mb=budget / 1e6, calibration=calib,
                        save_stats=workdir / "emb_stats.npz", report=workdir / "auto.json")
    report = json.loads((workdir / "auto.json").read_text())
    assert report["model_bytes_after"] <= budget
    assert report["selection"]["sensitivity"] == "measured"
    assert set(report["layers"]) == {"embed", "fc1", "fc2", "fc3"}
    stats = Statistics.load(workdir / "emb_stats.npz")
    assert "measured:cosine:w4a16-g32" in stats.sensitivity["embed"]

    problem, solution = result.selection["problem"], result.selection["solution"]
    assert solution.error <= greedy(problem).error + 1e-12

    def error(lib):
        m = qc.runtime.load(lib)
        ref = qc.runtime.load(workdir / "f32.so")
        errs = []
        for i in range(8):
            a, b = m.run({"ids": ids(i)})["y"], ref.run({"ids": ids(i)})["y"]
            errs.append(np.mean(1 - (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))))
        return float(np.mean(errs))

    qc.compile(path, workdir / "f32.so")
    assert error(workdir / "auto.so") < error(workdir / "u.so")


def test_pins_latency_budget_and_pareto(emb, workdir, monkeypatch):
    """Pins are honoured; with a latency budget the prediction is within it and the report gives
    the measured time beside it; kernel latencies are cached per host and reused; --pareto writes
    the front and its plot."""
    path, _, _ = emb
    monkeypatch.setenv("QC_CACHE_DIR", str(workdir / "latency-cache"))
    stats = workdir / "emb_stats.npz"
    args = ["--scheme", "auto", "--stats", stats, "--candidates", "f32,w8a16,w4a16-g32"]
    proc = run("qc-compile", path, "-o", workdir / "lat.so", *args, "--budget-latency-ms", "1000", "--budget-bits", "12",
               "--pin", "fc3=f32", "--report", workdir / "lat.json", "--pareto", workdir / "front.md")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((workdir / "lat.json").read_text())
    assert report["layers"]["fc3"]["scheme"] == "f32"
    sel = report["selection"]
    assert sel["predicted_ms"] <= 1000 and sel["measured_ms"] > 0 and sel["bits_per_weight"] <= 12
    assert sel["f32_measured_ms"] > 0  # the f32 model's time, beside which a benchmark judges the prediction
    assert all(report["layers"][n]["latency_ms"] > 0 for n in ("fc1", "fc2", "fc3"))
    tables = list((workdir / "latency-cache").glob("latency-*.json"))
    assert len(tables) == 1
    before = tables[0].stat().st_mtime_ns
    proc = run("qc-compile", path, "-o", workdir / "lat2.so", *args, "--budget-latency-ms", "1000",
               "--report", workdir / "lat2.json")
    assert proc.returncode == 0, proc.stderr
    assert tables[0].stat().st_mtime_ns == before  # nothing new to time
    front = (workdir / "front.md").read_text()
    assert "| chosen |" in front and "uniform w4a16-g32" in front
    assert (workdir / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_latency_budget_is_checked_on_the_built_model(emb, workdir, monkeypatch):
    """The selected model is timed as built (here stand-in timers and kernel latencies, so that what
    the check decides does not depend on this host).  Within the budget: one build, and the report's
    prediction is the solve's.  Over it: the other schemes' kernels are rescaled by what the model
    showed and the ILP solves again; when nothing faster remains, or every layer is already f32, the
    closest selection stays and the miss is a warning, not silence."""
    from qc.compiler import selection
    from qc.core.quant.latency import LatencyTable, scheme_key
    from qc.passes.select_precision import linear_shape

    path, _, _ = emb
    stats = Statistics.load(workdir / "emb_stats.npz")
    kernel = {"f32": 1.0, "w8a16": 0.6, "w4a16-g32": 0.3}  # ms of each linear's kernel, alone

    def table(ops, schemes, target, activations, progress):
        found = LatencyTable({"cpu": "stand-in"})
        for op in (op for op in ops if op.name == "qc.linear"):
            for scheme in schemes:
                found.set_ms(linear_shape(op), scheme_key(scheme, activations), kernel[scheme.name])
        return found

    monkeypatch.setattr(selection, "latency_table", table)
    monkeypatch.setattr(selection, "model_ms", lambda model, feeds: 4.0)  # the f32 probe: the rest is 4 - 3 x 1 = 1 ms
    options = dict(scheme="auto", stats=stats, candidates=["f32", "w8a16", "w4a16-g32"])
    linears = ("fc1", "fc2", "fc3")

    def predicted(state):
        return state.selection["other_ms"] + state.selection["solution"].latency_ms

    monkeypatch.setattr(selection, "selected_ms", lambda module, sig, state, *rest: predicted(state))
    result = qc.compile(path, workdir / "checked.so", budget_bits=12.0, budget_latency_ms=1000.0, **options)
    [check] = result.selection["checks"]
    assert check["measured_ms"] == check["predicted_ms"] and check["ratio"] == pytest.approx(1.0)
    assert not result.warnings

    def slower(module, sig, state, *rest):  # in the model, every kernel but f32 takes twice its time alone
        choice = state.selection["solution"].choice
        return 1.0 + sum(kernel[choice[n].scheme] * (1 if choice[n].scheme == "f32" else 2) for n in linears)

    monkeypatch.setattr(selection, "selected_ms", slower)
    result = qc.compile(path, workdir / "rescaled.so", budget_latency_ms=3.5, **options)
    first, second = result.selection["checks"]
    assert first["measured_ms"] > 3.5 and first["ratio"] == pytest.approx(2.0) and first["scale"] == 1.0
    assert second["scale"] == pytest.approx(2.0) and second["measured_ms"] <= 3.5
    assert second["predicted_ms"] == pytest.approx(second["measured_ms"]) and not result.warnings

    monkeypatch.setattr(selection, "selected_ms", lambda *args: 5000.0)
    result = qc.compile(path, workdir / "over.so", budget_latency_ms=1000.0, pins={"fc1": "w8a16"}, **options)
    [warning] = result.warnings  # every other selection keeps fc1's rescaled kernel: nothing faster remains
    assert len(result.selection["checks"]) == 1
    assert re.fullmatch(r"the selected model measured 5000.000 ms, over budget-latency-ms=1000 \(predicted [0-9.]+ ms\), "
                        r"after 1 build; in the model its kernels ran [0-9.]+x their time alone, and no faster "
                        r"selection remains", warning), warning

    result = qc.compile(path, workdir / "slow.so", budget_latency_ms=1000.0, **options)  # every layer f32
    assert {c.scheme for c in result.selection["solution"].choice.values()} == {"f32"}
    assert result.warnings == ["the selected model measured 5000.000 ms, over budget-latency-ms=1000 (predicted "
                               "4.000 ms), after 1 build; in the model its kernels ran 1.00x their time alone, and "
                               "no faster selection remains"]

    # the f32 probe timed in one of the VM's slow bursts (10x) makes the budget look infeasible (the rest alone
    # 39 ms): it is timed again before the budget is called infeasible
    timings = [40.0]
    monkeypatch.setattr(selection, "model_ms", lambda model, feeds: timings.pop() if timings else 4.0)
    monkeypatch.setattr(selection, "selected_ms", lambda module, sig, state, *rest: predicted(state))
    result = qc.compile(path, workdir / "burst.so", budget_latency_ms=3.5, **options)
    assert result.selection["other_ms"] == pytest.approx(1.0) and result.selection["f32_ms"] == 4.0
    assert result.selection["checks"][-1]["measured_ms"] <= 3.5 and not result.warnings


@pytest.mark.parametrize("args, message", [
    (["--scheme", "auto", "--calib", "{calib}"], "scheme 'auto' needs a budget"),
    (["--budget-bits", "4"], "budget-bits choose(s) schemes: use them with scheme 'auto'"),
    (["--scheme", "auto", "--budget-bits", "4"], "needs calibration data"),
    (["--scheme", "auto", "--budget-bits", "1", "--stats", "{stats}", "--sensitivity", "proxy", "--target-cpu", "haswell"],
     "the weight budget cannot be met: the smallest feasible is budget-bits=4.811 (budget-mb=0.01242)"),  # 16-wide panels
    (["--scheme", "auto", "--budget-bits", "6", "--stats", "{stats}", "--sensitivity", "proxy", "--pin", "fc9=f32"], "pin 'fc9' matches no layer"),
    (["--scheme", "auto", "--budget-bits", "6", "--stats", "{stats}", "--pin", "fc1"], "bad --pin 'fc1'"),
    (["--scheme", "w4a16-g32", "--scheme-overrides", "{overrides}"], "scheme override 'nothing' matches no layer"),
])
def test_selection_mistakes_are_clear_errors(workdir, args, message):
    """On the example MLP (fc1 K=64, fc2 K=256)."""
    np.savez(workdir / "mlp_calib.npz", x=np.random.default_rng(0).standard_normal((4, 4, 64)).astype(np.float32))
    if not (workdir / "mlp_stats.npz").exists():
        assert run("qc-compile", EXAMPLE, "-o", workdir / "mlp_s.so", "--calib", workdir / "mlp_calib.npz",
                   "--save-stats", workdir / "mlp_stats.npz").returncode == 0
    (workdir / "nomatch.json").write_text(json.dumps({"nothing": "f32"}))
    paths = {"calib": workdir / "mlp_calib.npz", "stats": workdir / "mlp_stats.npz",
             "overrides": workdir / "nomatch.json"}
    proc = run("qc-compile", EXAMPLE, "-o", workdir / "bad.so", *[a.format(**paths) for a in args])
    assert proc.returncode == 1
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(r"^qc-compile: error:", proc.stderr, re.M)


@pytest.mark.parametrize("scheme", ["w8a8", "w4a8-g32", "w4a16-g32-asym", "w8a7"])
def test_measured_sensitivity_is_the_compiled_layers_error(workdir, scheme):
    """The probe's number for (fc1, scheme), int8 activations included, equals the output error of
    the example MLP compiled with only fc1 at that scheme, on the same samples."""
    from qc.core.quant.sensitivity import output_error

    x = np.random.default_rng(3).standard_normal((6, 4, 64)).astype(np.float32)
    samples = [{"x": s} for s in x]
    stats = workdir / f"probe_{scheme}.npz"
    tag = scheme.replace("-", "_")
    qc.compile(EXAMPLE, workdir / f"probe_auto_{tag}.so", scheme="auto", budget_bits=30, calibration=samples,
               candidates=["f32", scheme], save_stats=stats)
    measured = Statistics.load(stats).sensitivity["fc1"][f"measured:cosine:{scheme}"]
    qc.compile(EXAMPLE, workdir / "probe_f32.so")
    qc.compile(EXAMPLE, workdir / f"probe_one_{tag}.so", overrides={"fc1": scheme})
    f32, one = qc.runtime.load(workdir / "probe_f32.so"), qc.runtime.load(workdir / f"probe_one_{tag}.so")
    real = np.mean([output_error(f32.run(s)["probs"], one.run(s)["probs"], "cosine") for s in samples])
    assert measured > 0 and measured == pytest.approx(real, rel=0.02, abs=1e-9)


def test_seven_bit_schemes_are_candidates_where_vpmaddubsw_is(workdir):
    """w8a7 (activations within +-63: vpmaddubsw's two-instruction form is exact, 1.6x the |q| x sign(x, q)
    kernel's speed on AVX2) and w7a8 (weights within [-64, 63], the same form on q + 64) join every-scheme
    selections for vpmaddubsw targets (haswell; this host's own target when its int8 dot is avx2 /
    avx512bw) and not for the others, where they only lose a bit.  Their measured sensitivities are above
    w8a8's: half the activation levels, or half the weight levels (the probe rounds weights to 7 bits)."""
    from qc.compiler.codegen import Target

    x = np.random.default_rng(5).standard_normal((4, 4, 64)).astype(np.float32)
    samples = [{"x": s} for s in x]
    key = "measured:cosine:{}"
    for cpu in ("haswell", None):
        stats = workdir / f"narrow_{cpu}.npz"
        qc.compile(EXAMPLE, workdir / f"narrow_{cpu}.so", scheme="auto", budget_bits=30, calibration=samples,
                   target_cpu=cpu, save_stats=stats)
        measured = Statistics.load(stats).sensitivity["fc1"]
        narrow = Target.of(cpu).int8_dot in ("avx2", "avx512bw")
        assert (key.format("w8a7") in measured) == (key.format("w7a8") in measured) == narrow, (cpu, sorted(measured))
        if narrow:
            assert measured[key.format("w8a7")] > measured[key.format("w8a8")] > 0
            assert measured[key.format("w7a8")] > measured[key.format("w8a8")]


def test_error_check_keeps_a_uniform_scheme_that_measures_better(emb, workdir):
    """The ILP adds single-layer errors; the check measures its selection whole, beside every uniform scheme the
    budgets allow, and keeps the least measured.  Statistics that call w4a16-g32 harmless and w8a16 ruinous
    (cached, so nothing measures them again) lead the ILP to w4a16-g32 everywhere; measured whole, uniform
    w8a16 (within the 9-bit budget) is closer to f32, so it is what gets built, and the report says so."""
    path, _, calib = emb
    real = workdir / "check_stats.npz"
    candidates = ["f32", "w8a16", "w4a16-g32"]
    qc.compile(path, workdir / "check0.so", scheme="auto", budget_bits=9, candidates=candidates, calibration=calib,
               save_stats=real)
    stats = Statistics.load(real)
    for layer, entries in stats.sensitivity.items():
        entries["measured:cosine:w4a16-g32"], entries["measured:cosine:w8a16"] = 0.0, 1.0
    wrong = workdir / "check_wrong.npz"
    stats.save(wrong)
    result = qc.compile(path, workdir / "check.so", scheme="auto", budget_bits=9, candidates=candidates,
                        calibration=calib, stats=Statistics.load(wrong), report=workdir / "check.json")
    report = json.loads((workdir / "check.json").read_text())
    check = report["selection"]["error_check"]
    assert check["kept"] == "uniform w8a16", check
    assert check["uniform"]["w8a16"] < check["selection"]
    assert {e["scheme"] for e in report["layers"].values()} == {"w8a16"}
    assert {c.scheme for c in result.selection["solution"].choice.values()} == {"w8a16"}
    assert "kept: uniform w8a16" in markdown(report)
