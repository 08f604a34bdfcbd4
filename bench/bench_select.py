"""Precision selection on all-MiniLM-L6-v2: qc's ILP against uniform schemes, a greedy allocation by
the same sensitivities and NNCF ``compress_weights``, each at the same total weight bytes.

    python bench/bench_select.py [--sentences 200] [--calib 32] [--mb 21] [--results docs/results.md]

The model is exported with its sentence embedding (mean pooling, L2 norm) as output, so the
accuracy is the mean cosine of each engine's embedding to ONNX Runtime FP32 over ``--sentences``
varied sentences; calibration uses ``--calib`` other sentences (seed 1), for qc and for NNCF's
data-aware mode alike.  Weight bytes: every stored weight (qc: the report's total, scales included;
NNCF: the initializers of the model it writes).  Then a latency budget: the compiled model's
measured time against the budget and the selection's prediction.  Needs ``pip install -e .[bench]``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

UNIFORM = ("f16", "w8a16", "w8a8", "w4a16-g128", "w4a16-g64", "w4a16-g32", "w4a16-g128-asym", "w4a8-g128",
           "w4a8-g32")
NNCF_CONFIGS = (("INT4_SYM", 128), ("INT4_ASYM", 128), ("INT4_SYM", 64), ("INT4_ASYM", 64))


def onnx_bytes(path: Path) -> int:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    total = sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer)
    for node in model.graph.node:
        if node.op_type == "Constant":
            total += sum(numpy_helper.to_array(a.t).nbytes for a in node.attribute if a.type == a.TENSOR)
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=200)
    ap.add_argument("--calib", type=int, default=32)
    ap.add_argument("--mb", type=float, default=21.0, help="the headline weight budget (MB, 10^6 bytes)")
    ap.add_argument("--results", help="append the tables to this markdown file")
    args = ap.parse_args()

    import json

    import numpy as np
    import onnxruntime as ort

    import qc
    from common import host, publish, table
    from qc.compiler.calibration import Statistics
    from qc.compiler.models import minilm
    from qc.compiler.quant.select import Problem, greedy

    work = Path(tempfile.mkdtemp(prefix="qc-bench-select-"))
    onnx_path = work / "minilm.onnx"
    tok = minilm.export_onnx(onnx_path, 1, 128, pooled=True)
    evals = [minilm.encode(tok, [s], 128) for s in minilm.sample_sentences(args.sentences)]
    calib = [minilm.encode(tok, [s], 128) for s in minilm.sample_sentences(args.calib, seed=1)]
    fp32 = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    refs = [fp32.run(None, f)[0] for f in evals]

    rows, results = [], {}

    def qc_row(label: str, **options):
        out = work / f"{re.sub(r'[^A-Za-z0-9]+', '_', label)}.so"
        report = out.with_suffix(".json")
        t0 = time.perf_counter()
        res = qc.compile(onnx_path, out, report=report, **options)
        seconds = time.perf_counter() - t0
        model = qc.runtime.load(out)
        data = json.loads(report.read_text())
        cos = float(np.mean([(model.run(f)["sentence_embedding"] * r).sum() for f, r in zip(evals, refs)]))
        results[label] = (data["model_bytes_after"], cos)
        rows.append((label, f"{data['model_bytes_after'] / 1e6:.2f}", f"{cos:.5f}", f"{seconds:.0f} s"))
        print(rows[-1], flush=True)
        return res

    # one compile measures the sensitivities; the others reuse them from the statistics file
    stats_path = work / "stats.npz"
    head = qc_row(f"qc ILP at {args.mb:g} MB", scheme="auto", budget_mb=args.mb, calibration=calib,
                  save_stats=stats_path, progress=True)
    stats = Statistics.load(stats_path)
    problem: Problem = head.selection["problem"]
    fixed = results[f"qc ILP at {args.mb:g} MB"][0] - head.selection["solution"].bytes

    def ilp_and_greedy(nbytes: int, tag: str) -> None:
        qc_row(f"qc ILP at {tag}", scheme="auto", budget_mb=nbytes / 1e6, stats=stats)
        g = greedy(Problem(problem.layers, nbytes - fixed))
        qc_row(f"greedy at {tag}", overrides={re.escape(n): c.scheme for n, c in g.choice.items()}, stats=stats)

    for scheme in UNIFORM:
        qc_row(f"uniform {scheme}", scheme=scheme, **({"calibration": calib} if "a8" in scheme else {}))
        if scheme.startswith("w4"):
            ilp_and_greedy(results[f"uniform {scheme}"][0], f"uniform {scheme}'s bytes")

    import nncf

    dataset = nncf.Dataset(calib)
    import onnx

    for mode, group in NNCF_CONFIGS:
        for ratio in (0.6, 0.8, 1.0):
            label = f"NNCF {mode} g{group} ratio {ratio:g}"
            out = work / f"nncf_{mode}_{group}_{ratio}.onnx"
            t0 = time.perf_counter()
            try:
                compressed = nncf.compress_weights(onnx.load(str(onnx_path)), mode=getattr(nncf.CompressWeightsMode, mode),
                                                   ratio=ratio, group_size=group, dataset=dataset)
                onnx.save(compressed, str(out))
                sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
            except Exception as err:  # a peer's failure is a row, not the end of the benchmark
                rows.append((label, "-", f"failed: {type(err).__name__}: {str(err)[:80]}", ""))
                continue
            cos = float(np.mean([(sess.run(None, f)[0] * r).sum() for f, r in zip(evals, refs)]))
            nbytes = onnx_bytes(out)
            results[label] = (nbytes, cos)
            rows.append((label, f"{nbytes / 1e6:.2f}", f"{cos:.5f}", f"{time.perf_counter() - t0:.0f} s"))
            print(rows[-1], flush=True)
            if ratio == 0.8:
                ilp_and_greedy(nbytes, f"{label}'s bytes")

    text = (f"Precision selection, all-MiniLM-L6-v2 (seq 128), mean cosine of the sentence embedding to ORT FP32 "
            f"over {args.sentences} sentences, calibration {args.calib} other sentences; host {host()}; "
            f"FP32 weights {onnx_bytes(onnx_path) / 1e6:.2f} MB; sensitivities: measured (cosine).\n\n"
            + table(rows, ("engine", "weights MB", "mean cosine", "compile")))

    # a latency budget: 80 % of the FP32 model's time
    fp = qc.compile(onnx_path, work / "f32.so")
    from qc.compiler.selection import time_ms

    f32_ms = time_ms(qc.runtime.load(fp.output), evals[0])
    budget = 0.8 * f32_ms
    qc.compile(onnx_path, work / "lat.so", scheme="auto", budget_latency_ms=budget, stats=stats,
               report=work / "lat.json")
    sel = json.loads((work / "lat.json").read_text())["selection"]
    text += (f"\n\nLatency budget {budget:.2f} ms (80 % of qc FP32's {f32_ms:.2f} ms): predicted "
             f"{sel['predicted_ms']:.2f} ms, measured {sel['measured_ms']:.2f} ms "
             f"({100 * abs(sel['predicted_ms'] - sel['measured_ms']) / sel['measured_ms']:.1f} % apart), "
             f"{'within' if sel['measured_ms'] <= budget else 'OVER'} the budget; {sel['bits_per_weight']:.2f} bits "
             "per weight.")
    # solver scale: 500 layers x 12 candidates with byte and latency budgets, random costs
    from qc.compiler.quant.select import Candidate, Layer, solve

    rng = np.random.default_rng(0)
    big = Problem([Layer(f"l{i}", 100, [Candidate(f"s{c}", int(rng.integers(10, 100)), float(rng.random()),
                                                  float(rng.random())) for c in range(12)]) for i in range(500)],
                  max_bytes=500 * 40, max_latency_ms=500 * 0.4)
    t0 = time.perf_counter()
    solve(big)
    text += f"\n\nILP of 500 layers x 12 candidates (bytes and latency budgets): solved in {time.perf_counter() - t0:.2f} s."
    publish(text, args.results)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
