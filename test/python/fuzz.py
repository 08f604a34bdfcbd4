"""Fuzzing qc's entry points in-process: mutated .mlir (from the lit tests) through qc-opt, mutated
and truncated ONNX protos through qc-compile, corrupted weight blobs and statistics files, and
wrong, mistyped or NaN inputs at run time.  Each case ends in one of:

- ``ok``: accepted (exit 0, or a run that returned outputs);
- ``rejected``: exit 1 with a diagnostic (for .mlir: ``file:line:col: error: ...``; otherwise a
  ``qc-...: error: ...`` line);
- ``unlocated``: exit 1 whose message says neither where nor what (a finding);
- ``traceback``: a Python exception escaped an entry point (a finding).

A crash of the process (a signal) ends the run: the case being run is on stderr before it starts.
``python test/python/fuzz.py [--cases N] [--seed S]`` runs N cases per family and prints the
counts (docs/results.md); test_fuzz.py runs fewer.
"""

from __future__ import annotations

import contextlib
import io
import random
import re
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[2]
LOCATED = re.compile(r"^.+:\d+:\d+: error: ", re.M)
TOOL_ERROR = re.compile(r"^qc-(opt|compile|run): error: .+", re.M)


def _call(main, argv: list[str], located: bool) -> tuple[str, str]:
    """(outcome, stderr) of ``main(argv)``, one of the CLI entry points."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    except Exception:
        return "traceback", traceback.format_exc()
    text = err.getvalue()
    if code == 0:
        return "ok", text
    if code == 1 and (LOCATED.search(text) if located else TOOL_ERROR.search(text) or LOCATED.search(text)):
        return "rejected", text
    return "unlocated", text


# -- .mlir -------------------------------------------------------------------------------------------

_TOKENS = ["%0", "%arg0", "(", ")", "{", "}", "<", ">", ":", ",", "=", "->", "f32", "i1", "index", "tensor<?xf32>",
           "memref<4xf32>", "\"", "@main", "^bb0", "arith.addf", "func.return", "#map", "dense<1.0>", "// -----",
           "linalg.generic", "\"qc.linear\"", "{name = @w}", "0x7FC00000", "-9223372036854775809", "affine_map<(d0) -> (d0)>"]


def mutate_text(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(6)
        if kind == 0 and text:  # delete a span
            i = rng.randrange(len(text))
            text = text[:i] + text[i + rng.randint(1, 12):]
        elif kind == 1:  # insert a token
            i = rng.randrange(len(text) + 1)
            text = text[:i] + rng.choice(_TOKENS) + text[i:]
        elif kind == 2 and lines:  # duplicate or drop a line
            lines = text.splitlines(keepends=True)
            j = rng.randrange(len(lines))
            lines[j:j + 1] = [lines[j]] * rng.choice([0, 2])
            text = "".join(lines)
        elif kind == 3 and text:  # truncate
            text = text[:rng.randrange(len(text))]
        elif kind == 4:  # swap two lines
            lines = text.splitlines(keepends=True)
            if len(lines) > 1:
                a, b = rng.sample(range(len(lines)), 2)
                lines[a], lines[b] = lines[b], lines[a]
                text = "".join(lines)
        elif text:  # a random byte-level character
            i = rng.randrange(len(text))
            text = text[:i] + chr(rng.choice([0, 9, 10, 34, 92, 127, 0xFF, 0x2603])) + text[i + 1:]
    return text


def fuzz_mlir(cases: int, rng: random.Random, workdir: Path) -> Counter:
    from qc.tools.qc_opt import main

    sources = sorted((REPO / "test").glob("**/*.mlir"))
    texts = [p.read_text() for p in sources if "Output" not in p.parts]
    flags = [[], ["--split-input-file"], ["--canonicalize"], ["-cse", "-split-input-file"], ["--qc-raise"],
             ["--mlir-print-op-generic"], ["--verify-diagnostics", "--split-input-file"], ["-inline", "-symbol-dce"]]
    counts: Counter = Counter()
    path = workdir / "fuzz.mlir"
    for i in range(cases):
        path.write_text(mutate_text(rng.choice(texts), rng), errors="surrogatepass")
        argv = [path, *rng.choice(flags)]
        print(f"mlir case {i}: {argv}", file=sys.stderr, flush=True)
        outcome, text = _call(main, argv, located=True)
        counts[outcome] += 1
        if outcome in ("traceback", "unlocated"):
            (workdir / f"finding-mlir-{i}.mlir").write_text(path.read_text())
            print(f"  {outcome}: {text[-500:]}", file=sys.stderr)
    return counts


# -- ONNX --------------------------------------------------------------------------------------------

def _base_models() -> list[onnx.ModelProto]:
    sys.path.insert(0, str(Path(__file__).parent))
    from onnx_suite import CASES

    picks = [c for c in CASES if c.op in ("Conv", "MatMul", "Gemm", "Reshape", "Softmax", "Slice", "Gather",
                                           "Concat", "Resize", "BatchNormalization", "Transpose", "Expand")]
    return [onnx.load(str(REPO / "examples" / "mlp.onnx"))] + [c.model(17) for c in picks]


def mutate_model(model: onnx.ModelProto, rng: random.Random) -> bytes:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    kind = rng.randrange(8)
    if kind == 0:  # truncate the bytes
        data = m.SerializeToString()
        return data[:rng.randrange(len(data))]
    if kind == 1:  # flip bytes
        data = bytearray(m.SerializeToString())
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    if g.node:
        node = rng.choice(g.node)
        if kind == 2:  # another op type
            node.op_type = rng.choice(["Relu", "Conv", "MatMul", "Softmax", "NoSuchOp", "Reshape", "Add", "Gather"])
        elif kind == 3 and node.input:  # drop or rename an input
            if rng.random() < 0.5:
                del node.input[rng.randrange(len(node.input))]
            else:
                node.input[rng.randrange(len(node.input))] = "missing_value"
        elif kind == 4 and node.attribute:  # an attribute's value
            a = rng.choice(node.attribute)
            if a.ints:
                a.ints[rng.randrange(len(a.ints))] = rng.choice([-1, 0, 7, 1 << 40])
            elif a.type == onnx.AttributeProto.INT:
                a.i = rng.choice([-5, 0, 99])
            elif a.type == onnx.AttributeProto.FLOAT:
                a.f = rng.choice([float("nan"), -1.0, 1e30])
    if kind == 5 and g.input:  # an input's dims or type
        t = g.input[0].type.tensor_type
        if t.shape.dim and rng.random() < 0.6:
            t.shape.dim[rng.randrange(len(t.shape.dim))].dim_value = rng.choice([0, 1, 3, 1000])
        else:
            t.elem_type = rng.choice([onnx.TensorProto.INT64, onnx.TensorProto.DOUBLE, onnx.TensorProto.STRING])
    elif kind == 6 and g.initializer:  # an initializer's dims
        init = rng.choice(g.initializer)
        if init.dims:
            init.dims[rng.randrange(len(init.dims))] += rng.choice([-1, 1])
    elif kind == 7:  # the opset
        m.opset_import[0].version = rng.choice([1, 5, 8, 14, 22, 99])
    return m.SerializeToString()


def fuzz_onnx(cases: int, rng: random.Random, workdir: Path) -> Counter:
    from qc.tools.qc_compile import main

    models = _base_models()
    counts: Counter = Counter()
    path = workdir / "fuzz.onnx"
    for i in range(cases):
        path.write_bytes(mutate_model(rng.choice(models), rng))
        print(f"onnx case {i}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        outcome, text = _call(main, [path, "-o", workdir / "fuzz.so"], located=False)
        if time.perf_counter() - t0 > 5:
            print(f"  slow: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            (workdir / f"slow-onnx-{i}.onnx").write_bytes(path.read_bytes())
        counts[outcome] += 1
        if outcome in ("traceback", "unlocated"):
            (workdir / f"finding-onnx-{i}.onnx").write_bytes(path.read_bytes())
            print(f"  {outcome}: {text[-500:]}", file=sys.stderr)
    return counts


# -- weights, statistics and inputs at run time ---------------------------------------------------

def fuzz_files_and_inputs(cases: int, rng: random.Random, workdir: Path) -> Counter:
    """Corrupted .qcw blobs and statistics files, and wrong inputs, against the bundled example."""
    from qc.tools.qc_compile import main as compile_main
    from qc.tools.qc_run import main as run_main

    so, blob, stats = workdir / "ex.so", workdir / "ex.qcw", workdir / "ex_stats.npz"
    calib = workdir / "ex_calib.npz"
    np.savez(calib, x=np.random.default_rng(0).standard_normal((4, 4, 64)).astype(np.float32))
    assert compile_main([str(REPO / "examples" / "mlp.onnx"), "-o", str(so), "--calib", str(calib),
                         "--save-stats", str(stats), "--scheme", "w8a8"]) == 0
    good_blob, good_stats = blob.read_bytes(), stats.read_bytes()
    x = np.load(REPO / "examples" / "x.npy")
    counts: Counter = Counter()
    for i in range(cases):
        kind = rng.randrange(3)
        print(f"files case {i}: kind {kind}", file=sys.stderr, flush=True)
        if kind == 0:  # the weight blob: cut, grown or bytes changed
            data = bytearray(good_blob)
            how = rng.randrange(3)
            if how == 0:
                data = data[:rng.randrange(len(data))]
            elif how == 1:
                data += bytes(rng.randint(1, 64))
            else:
                for _ in range(8):
                    data[rng.randrange(len(data))] = rng.randrange(256)
            broken = workdir / "broken.qcw"
            broken.write_bytes(bytes(data))
            np.save(workdir / "x.npy", x)
            argv = [so, "--weights", broken, "--input", f"x={workdir / 'x.npy'}", "--output-dir", workdir / "out"]
            outcome, text = _call(run_main, argv, located=False)
        elif kind == 1:  # the statistics file
            data = bytearray(good_stats)
            for _ in range(rng.randint(1, 16)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.3:
                data = data[:rng.randrange(len(data))]
            broken = workdir / "broken_stats.npz"
            broken.write_bytes(bytes(data))
            argv = [REPO / "examples" / "mlp.onnx", "-o", workdir / "s.so", "--stats", broken, "--scheme", "w8a8"]
            outcome, text = _call(compile_main, argv, located=False)
        else:  # an input of another shape, dtype, rank, or NaN / inf values
            shape = list(x.shape)
            how = rng.randrange(4)
            if how == 0:
                shape[rng.randrange(len(shape))] += rng.choice([-1, 1])
                value = np.zeros(shape, np.float32)
            elif how == 1:
                value = x.astype(rng.choice([np.float64, np.int32, np.float16, np.uint8]))
            elif how == 2:
                value = x.reshape(-1)
            else:
                value = x.copy()
                value.flat[rng.randrange(value.size)] = rng.choice([np.nan, np.inf, -np.inf])
            np.save(workdir / "x_bad.npy", value)
            argv = [so, "--input", f"x={workdir / 'x_bad.npy'}", "--output-dir", workdir / "out"]
            outcome, text = _call(run_main, argv, located=False)
        counts[outcome] += 1
        if outcome in ("traceback", "unlocated"):
            print(f"  {outcome}: {text[-500:]}", file=sys.stderr)
    return counts


FAMILIES = {"mlir": fuzz_mlir, "onnx": fuzz_onnx, "files": fuzz_files_and_inputs}


if __name__ == "__main__":
    import argparse
    import tempfile

    p = argparse.ArgumentParser()
    p.add_argument("--cases", type=int, default=1000, help="cases per family")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--families", default=",".join(FAMILIES))
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.families.split(","):
            t0 = time.perf_counter()
            counts = FAMILIES[name](args.cases, random.Random(args.seed), Path(tmp))
            rows.append((name, counts, time.perf_counter() - t0))
    print("| family | cases | ok | rejected (located) | unlocated | traceback | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, c, secs in rows:
        print(f"| {name} | {sum(c.values())} | {c['ok']} | {c['rejected']} | {c['unlocated']} | {c['traceback']} | {secs:.0f} |")
