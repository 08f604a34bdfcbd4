"""Decode GEMV (M=1) on the seven linears of one LLaMA-7B decoder layer, side by side:
qc int4 g128 (and int8 per channel), with f32 activations and with int8 ones
(integer dot products), vs ONNX Runtime MatMulNBits, and vs the machine's
streaming-read bandwidth measured in the same run.

    python bench/bench_decode.py [--threads N] [--iters 20] [--results docs/results.md]

Weights are random integers with random scales (the same numbers for both
engines); each engine's error against the f64 reference is printed beside its time.  Every timed call
starts with caches flushed (a 4 GiB read), as in a whole model whose other layers'
weights pass through the cache in between: this machine's L3 can otherwise hold one
layer's weights and the numbers would not be memory-bound.

Both engines are timed through Python (``Model.run``, ``InferenceSession.run``) for
the ratios.  qc is also timed through its C API, in C (bandwidth.c): the Python call's own
code and data are flushed too and cost each engine 0.1-0.3 ms per call here, which is not
the kernels' bandwidth.  The ceiling of each row is the fastest of the best read kernel's
cold reads of the same bytes, timed in the same alternation as the engines (this VM's
bandwidth moves by tens of percent within minutes: a ceiling measured at another moment was
beaten by 35 %), or the run-start 1 GiB figure where that is higher.  The qc % of bandwidth
columns use both qc times.  "ORT best / ceiling" is the most by which an engine that reads
the row's bytes could beat ORT's median at those moments; "read ms" is the median of those cold reads,
"ORT best / read" the ratio to ORT of an engine as fast as that read, in this run's memory, and "qc C API
% of read" qc's median against it (medians of calls interleaved: the same states of the memory).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# (name, N, K): q, k, v, o, gate, up, down
LAYER = [("q", 4096, 4096), ("k", 4096, 4096), ("v", 4096, 4096), ("o", 4096, 4096),
         ("gate", 11008, 4096), ("up", 11008, 4096), ("down", 4096, 11008)]


def make_weights(bits: int, group: int, seed: int = 0):
    """name -> (signed q [N, K] int8, scale [N, G] f32)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1))
    out = {}
    for name, n, k in LAYER:
        q = rng.integers(lo, hi, (n, k), dtype=np.int8)
        g = k // group if group else 1
        out[name] = (q, (rng.random((n, g), dtype=np.float32) * 0.02 + 0.001).astype(np.float32))
    return out


def qc_model(weights, bits: int, group: int, act_bits: int, work: Path, rows: int = 1, target_cpu: str | None = None):
    """``compile_layer``'s model, loaded."""
    import qc

    return qc.runtime.load(compile_layer(weights, bits, group, act_bits, work, rows, target_cpu))


def compile_layer(weights, bits: int, group: int, act_bits: int, work: Path, rows: int = 1,
                  target_cpu: str | None = None, target: str = "cpu") -> Path:
    """A .mlir of the seven qc.qgemm ops on ``rows`` tokens plus its weight store, compiled with qc
    (for this host, for ``target_cpu``'s ISA level, or for a GPU: ``target``); the library's path."""
    import numpy as np

    import qc
    from qc.core.quant.packing import pack_rows
    from qc.core.weights import WeightStore

    store, lines, results = WeightStore(), [], []
    for name, n, k in LAYER:
        q, scale = weights[name]
        store[f"{name}.packed"] = pack_rows(q, bits)
        sshape = [n, scale.shape[1]] if group else [n]
        store[f"{name}.scale"] = scale.reshape(sshape)
        store[f"{name}.zero"] = np.zeros(sshape, np.int8)
        st = "x".join(map(str, sshape))
        x = "%h" if k == 11008 else "%x"
        lines += [f'  %{name}_p = "qc.weight"() {{name = @{name}.packed}} : () -> tensor<{n}x{k * bits // 8}xi8>',
                  f'  %{name}_s = "qc.weight"() {{name = @{name}.scale}} : () -> tensor<{st}xf32>',
                  f'  %{name}_z = "qc.weight"() {{name = @{name}.zero}} : () -> tensor<{st}xi8>',
                  f'  %{name} = "qc.qgemm"({x}, %{name}_p, %{name}_s, %{name}_z) {{bits = {bits} : i64, '
                  f'group_size = {group} : i64, act_bits = {act_bits} : i64, act_scale = 0.0 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>}} : '
                  f'(tensor<{rows}x{k}xf32>, tensor<{n}x{k * bits // 8}xi8>, tensor<{st}xf32>, tensor<{st}xi8>) '
                  f'-> tensor<{rows}x{n}xf32>']
        results.append((f"%{name}", f"tensor<{rows}x{n}xf32>"))
    text = "\n".join([f"func.func @main(%x: tensor<{rows}x4096xf32>, %h: tensor<{rows}x11008xf32>) -> "
                      f"({', '.join(t for _, t in results)}) {{", *lines,
                      f"  return {', '.join(v for v, _ in results)} : {', '.join(t for _, t in results)}", "}"])
    tag = f"w{bits}g{group}a{act_bits}m{rows}{target_cpu or ''}{target.replace(':', '_') if target != 'cpu' else ''}"
    (work / f"{tag}.mlir").write_text(text)
    store.save(work / f"{tag}.safetensors")
    qc.compile(work / f"{tag}.mlir", work / f"{tag}.so", weights=work / f"{tag}.safetensors", target_cpu=target_cpu,
               target=target)
    return work / f"{tag}.so"


def ort_session(weights, bits: int, block: int, accuracy_level: int, threads: int, work: Path,
                provider: str = "CPUExecutionProvider"):
    """Seven com.microsoft MatMulNBits nodes (symmetric: the default zero point 2^(bits-1))."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, outputs = [], [], []
    for name, n, k in LAYER:
        q, scale = weights[name]
        u = (q.astype(np.int16) + (1 << (bits - 1))).astype(np.uint8).reshape(n, k // block, block)
        if bits == 4:
            u = u[:, :, 0::2] | (u[:, :, 1::2] << 4)
        inits += [numpy_helper.from_array(np.ascontiguousarray(u), f"{name}_B"),
                  numpy_helper.from_array(scale.reshape(-1), f"{name}_S")]
        nodes.append(helper.make_node("MatMulNBits", ["h" if k == 11008 else "x", f"{name}_B", f"{name}_S"],
                                      [f"y_{name}"], domain="com.microsoft", K=k, N=n, bits=bits,
                                      block_size=block, accuracy_level=accuracy_level))
        outputs.append(helper.make_tensor_value_info(f"y_{name}", TensorProto.FLOAT, [1, n]))
    graph = helper.make_graph(nodes, "layer", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4096]),
                                               helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 11008])],
                              outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                              ir_version=10)
    path = work / f"ort_w{bits}_{accuracy_level}.onnx"
    onnx.save(model, str(path), save_as_external_data=True, location=path.name + ".data")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), opts, providers=[provider])


def reference(weights, feeds) -> list:
    """The seven outputs in float64 from the dequantized weights: the FP32 reference every engine is held to."""
    import numpy as np

    out = []
    for name, n, k in LAYER:
        q, scale = weights[name]
        w = (q.reshape(n, scale.shape[1], -1).astype(np.float64) * scale[:, :, None]).reshape(n, k)
        out.append(feeds["h" if k == 11008 else "x"].astype(np.float64) @ w.T)
    return out


def error(outputs, ref) -> float:
    """The largest of the outputs' max |y - ref| / max |ref|."""
    import numpy as np

    return max(float(np.abs(np.asarray(a) - b).max() / np.abs(b).max()) for a, b in zip(outputs, ref))


def weight_bytes(weights, bits: int) -> int:
    return sum(q.size * bits // 8 + s.nbytes for q, s in weights.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--results", help="append the table to this markdown file")
    ap.add_argument("--target-cpu", help="compile qc's kernels for this LLVM CPU (e.g. haswell: the AVX2 paths)")
    args = ap.parse_args()
    os.environ["QC_NUM_THREADS"] = str(args.threads)

    import numpy as np

    from bandwidth import CApiRun, ColdRead, read_bandwidth
    from common import CacheFlush, host, interleaved, publish, scratch, table

    work = scratch("qc-bench-decode-")
    rng = np.random.default_rng(1)
    feeds = {"x": rng.standard_normal((1, 4096), dtype=np.float32),
             "h": rng.standard_normal((1, 11008), dtype=np.float32)}
    bandwidth, best_reader, reader = read_bandwidth(args.threads)
    flush = CacheFlush(args.threads)
    rows, notes = [], []
    cases = ((4, 128, 0, "int4 g128"), (4, 128, 8, "int4 g128, int8 act."),
             (8, 0, 0, "int8 per-channel"), (8, 0, 8, "int8 per-channel, int8 act."))
    for bits, group, act_bits, label in cases:
        weights = make_weights(bits, group)
        nbytes = weight_bytes(weights, bits)
        model = qc_model(weights, bits, group, act_bits, work, target_cpu=args.target_cpu)
        ort_weights = weights if group else {n: (q, np.repeat(s, q.shape[1] // 128, axis=1))
                                            for n, (q, s) in weights.items()}  # ORT needs blocks: 128
        sessions = {lvl: ort_session(ort_weights, bits, 128, lvl, args.threads, work) for lvl in (1, 4)}
        ref = reference(weights, feeds)
        errors = {"qc": error(model.run({"arg0": feeds["x"], "arg1": feeds["h"]}).values(), ref)}
        errors |= {f"ort{lvl}": error(sess.run(None, feeds), ref) for lvl, sess in sessions.items()}
        qc_feeds = {"arg0": feeds["x"], "arg1": feeds["h"]}
        runners = {"qc": lambda: model.run(qc_feeds), "qc C": CApiRun(model, qc_feeds)}
        runners |= {f"ort{lvl}": (lambda s=s: s.run(None, feeds)) for lvl, s in sessions.items()}
        # the row's ceiling: the best read kernel reading the same bytes cold, between the engines' calls
        read = ColdRead(nbytes, args.threads, reader)
        times = interleaved(runners | {"read": read}, args.iters, before=flush)
        best_lvl = min(sessions, key=lambda lvl: times[f"ort{lvl}"])
        t_qc, t_c, t_ort = times["qc"], times["qc C"], times[f"ort{best_lvl}"]
        ceiling = max(bandwidth, nbytes / read.fastest)
        if read.huge_pages < 1:
            notes.append(f"{label}: the OS gave the ceiling's read buffer 2 MiB pages for {100 * read.huge_pages:.0f} % "
                         "of its bytes only; this row's ceiling may be low")
        rows.append((label, f"{nbytes / 2**20:.1f}", f"{t_qc * 1e3:.2f}", f"{t_c * 1e3:.2f}",
                     f"{times['ort1'] * 1e3:.2f}", f"{times['ort4'] * 1e3:.2f}",
                     " / ".join(f"{errors[e]:.1e}" for e in ("qc", "ort1", "ort4")), f"{times['ort1'] / t_qc:.2f}x",
                     f"{t_ort / t_qc:.2f}x", f"{t_ort * ceiling / nbytes:.2f}x", f"{times['read'] * 1e3:.2f}",
                     f"{t_ort / times['read']:.2f}x", f"{ceiling / 1e9:.1f}",
                     f"{100 * nbytes / t_c / ceiling:.0f}%", f"{100 * times['read'] / t_c:.0f}%",
                     f"{100 * nbytes / t_qc / ceiling:.0f}%",
                     f"{100 * nbytes / t_ort / ceiling:.0f}%"))
        del model, sessions, runners
    text = (f"Decode GEMV, one LLaMA-7B layer (7 linears), M=1, {args.threads} threads, median of {args.iters} "
            f"interleaved calls, each after a 4 GiB flush; host {host()}; qc target {args.target_cpu or 'this host'}; "
            f"read bandwidth ceiling (BW column): the larger of the best of bandwidth.c's read kernels over 1 GiB at the "
            f"run's start ({bandwidth / 1e9:.1f} GB/s, {best_reader}) and the fastest of that kernel's cold reads of "
            f"each row's bytes, timed between the engines' calls; error: max |y - ref| / "
            f"max |ref| against the f64 product of the dequantized weights\n\n"
            + table(rows, ("weights", "MiB", "qc ms", "qc C API ms", "ORT level 1 (f32) ms",
                           "ORT level 4 (int8 act.) ms", "error qc / ORT L1 / ORT L4", "ORT L1 / qc", "ORT best / qc",
                           "ORT best / ceiling", "read ms", "ORT best / read",
                           "BW GB/s", "qc C API % of BW", "qc C API % of read", "qc % of BW", "ORT best % of BW"))
            + "".join(f"\n\nNote: {n}" for n in notes))
    publish(text, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
