"""qc on an NVIDIA GPU (qc-compile --target cuda), side by side in one run: int4 g128 decode GEMV over
the seven linears of one LLaMA-7B layer against the GPU's device-to-device copy bandwidth and PyTorch
FP16 ``matmul``; MiniLM end to end against PyTorch eager; and the quantized kernels' numerics against
the CPU build.

Two steps, because the GPU machine has no compiler (no torch-mlir) and takes 64 MiB of files:

    python bench/bench_gpu.py prepare [--chip sm_90] [--out build/gpu-bench]   # here: compiles
    python3 bench/bench_gpu.py run [--dir build/gpu-bench] [--iters 50]        # on the GPU machine

``run`` needs numpy and this repository importable as ``qc`` (``ln -s $PWD /tmp/py/qc;
PYTHONPATH=/tmp/py``); PyTorch with CUDA for the ceiling and the PyTorch rows, onnxruntime with
its CUDA provider for the MatMulNBits row (each row says when its engine is missing).  The layer's
weights (107 MB of int4 and scales: more than an H100's 50 MB of L2, as a decode step's weights are)
do not travel: ``run`` makes them again from the same seed with the packing qc-lower-qgemm used, and
``prepare`` checks that this gives the compiled weight file byte for byte.

Every timed GPU call starts with the L2 flushed (a 256 MiB write), like a decode step in a whole model.
Each engine's error against the float64 reference is printed beside its time; nothing aborts on one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_decode import LAYER, error, make_weights, reference  # noqa: E402

BITS, GROUP = 4, 128
WIDTH = 32  # the GPU's panels (passes/gpu_map.py WARP; the compiler is not importable where this runs)
CASES = [("mlp_w4a16", "w4a16-g32"), ("mlp_w8a8", "w8a8"), ("mlp_w4a8", "w4a8-g32"),
         ("linear_w4a16", "w4a16-g128"), ("linear_w8a16", "w8a16"), ("linear_w8a8", "w8a8")]


# --- the layer's weight file, made again on the GPU machine ------------------------------------------


def layer_weights(header: dict, weights) -> dict:
    """name -> array for each entry of the compiled layer's weight file (``header``: name -> [offset,
    shape, dtype]), from ``make_weights``' arrays, packed as qc-lower-qgemm packs them for the GPU."""
    import numpy as np

    from qc.core.quant.packing import PanelLayout

    arrays = {}
    for name, (_, shape, dtype) in header.items():
        linear, kind = name.split(".")[0], name.split(".", 1)[1]
        q, scale = weights[linear]
        layout = PanelLayout(q.shape[0], q.shape[1], WIDTH, BITS, GROUP, dot=True, symmetric=True)
        if kind == f"packed.d{WIDTH}":
            arrays[name] = layout.weights(q)
        elif kind == f"scale.d{WIDTH}":
            arrays[name] = layout.scales(scale, np.zeros_like(scale))[0]
        else:
            raise SystemExit(f"the layer's weight file has an entry this script cannot make: {name}")
        assert list(arrays[name].shape) == shape and str(arrays[name].dtype) == dtype, name
    return arrays


def write_weight_file(path: Path, header: dict, arrays: dict) -> None:
    """The weight file of ``arrays`` in ``header``'s order, written as the compiler writes it."""
    from qc.core.weights import WeightStore

    WeightStore(arrays).write_blob(path, list(header))


def read_head(path: Path) -> tuple[bytes, dict]:
    """The weight file's bytes before its arrays and its header (name -> [offset, shape, dtype], in file order)."""
    import numpy as np

    from qc.core.weights import BLOB_MAGIC

    raw = path.read_bytes()[:1 << 20]
    start = int(np.frombuffer(raw[len(BLOB_MAGIC):len(BLOB_MAGIC) + 8], np.uint64)[0])
    header, _ = json.JSONDecoder().raw_decode(raw[len(BLOB_MAGIC) + 8:start].decode())
    return raw[:start], header


# --- prepare (here) ------------------------------------------------------------------------------------


def prepare(args) -> int:
    import numpy as np
    import torch

    import qc
    from bench_decode import compile_layer
    from qc.compiler.models import minilm

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "layer.qcw").unlink(missing_ok=True)  # run's, remade on the GPU machine: 107 MB that must not travel
    target = dict(target=f"cuda:{args.chip}", target_cpu="x86-64-v2")  # host code for any x86-64 GPU machine
    manifest = {"chip": args.chip, "cases": [], "layer": None, "minilm": None}

    # numerics: small models, their inputs and the CPU build's outputs
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    linear = torch.nn.Linear(2048, 72).eval()
    xl = rng.standard_normal((2, 3, 2048)).astype(np.float32)
    mlp = Path(__file__).resolve().parents[1] / "examples" / "mlp.onnx"
    for name, scheme in CASES:
        if name.startswith("mlp"):
            feed, build = {"x": np.load(mlp.parent / "x.npy")}, lambda o, **kw: qc.compile(mlp, o, scheme=scheme, **kw)
        else:
            feed = {"x": xl}
            build = lambda o, **kw: qc.compile(linear, o, example_inputs=(torch.from_numpy(xl),),  # noqa: E731
                                               input_names=["x"], scheme=scheme, **kw)
        build(out / f"{name}.so", **target)
        build(Path(args.work) / f"{name}_cpu.so")
        want = qc.runtime.load(Path(args.work) / f"{name}_cpu.so").run(feed)
        np.savez(out / f"{name}_io.npz", **{f"in_{k}": v for k, v in feed.items()}, **{f"out_{k}": v for k, v in want.items()})
        manifest["cases"].append(name)
        print(f"prepared {name} ({scheme})", flush=True)

    # the layer: compiled, its weight file cut to its header (run makes the arrays again)
    work = Path(args.work)
    weights = make_weights(BITS, GROUP)
    compiled = compile_layer(weights, BITS, GROUP, 0, work, **target)
    head, header = read_head(compiled.with_suffix(".qcw"))
    remade = work / "remade.qcw"
    write_weight_file(remade, header, layer_weights(header, weights))
    if remade.read_bytes() != compiled.with_suffix(".qcw").read_bytes():
        raise SystemExit("the weight file made again differs from the compiled one: run could not rebuild it")
    (out / "layer.so").write_bytes(compiled.read_bytes())
    (out / "layer.qcw.head").write_bytes(head)
    manifest["layer"] = {"weights_bytes": sum(int(np.prod(shape)) * np.dtype(dtype).itemsize
                                              for _, shape, dtype in header.values())}
    print("prepared the LLaMA-7B layer (int4 g128, f32 activations)", flush=True)

    # MiniLM, w8a16 (its f32 weights would not travel): the real model, its CPU outputs for the numerics
    tokenizer = minilm.export_onnx(work / "minilm.onnx", 1, 128)
    feed = minilm.encode(tokenizer, minilm.sample_sentences(1, seed=3), 128)
    qc.compile(work / "minilm.onnx", out / "minilm.so", scheme="w8a16", **target)
    qc.compile(work / "minilm.onnx", work / "minilm_cpu.so", scheme="w8a16")
    want = qc.runtime.load(work / "minilm_cpu.so").run(feed)
    np.savez(out / "minilm_io.npz", **{f"in_{k}": v for k, v in feed.items()}, **{f"out_{k}": v for k, v in want.items()})
    _, model = minilm.load()
    (out / "minilm_config.json").write_text(model.config.to_json_string())
    manifest["minilm"] = {"scheme": "w8a16"}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"{out}: {size / 2**20:.1f} MiB (the device tool carries 64 MiB)")
    return 0 if size < 60 * 2**20 else 1


# --- run (on the GPU machine) --------------------------------------------------------------------------


class Gpu:
    """PyTorch's view of the GPU, when PyTorch with CUDA is there: timing, flushing, the copy ceiling."""

    def __init__(self):
        try:
            import torch
        except ImportError:
            torch = None
        self.torch = torch if torch is not None and torch.cuda.is_available() else None
        self.scratch = self.torch.empty(256 << 20, dtype=self.torch.uint8, device="cuda") if self.torch else None

    def name(self) -> str:
        return self.torch.cuda.get_device_name() if self.torch else "(PyTorch with CUDA not found: name unknown)"

    def flush(self) -> None:
        if self.torch:
            self.scratch.zero_()
            self.torch.cuda.synchronize()

    def copy_bandwidth(self) -> float | None:
        """Bytes read and written per second by a 1 GiB device-to-device copy, best of 5."""
        if not self.torch:
            return None
        a = self.torch.empty(1 << 30, dtype=self.torch.uint8, device="cuda")
        b = self.torch.empty_like(a)
        best = float("inf")
        for _ in range(6):
            start, end = self.torch.cuda.Event(enable_timing=True), self.torch.cuda.Event(enable_timing=True)
            start.record()
            b.copy_(a)
            end.record()
            end.synchronize()
            best = min(best, start.elapsed_time(end) / 1e3)
        del a, b
        return 2 * (1 << 30) / best

    def timed(self, fn, iters: int) -> float:
        """Median seconds of ``fn()`` (which returns once the GPU is done), each after a flush."""
        for _ in range(3):
            fn()
        times = []
        for _ in range(iters):
            self.flush()
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)


def run(args) -> int:
    import numpy as np

    import qc.runtime

    folder = Path(args.dir)
    manifest = json.loads((folder / "manifest.json").read_text())
    gpu = Gpu()
    print(f"GPU: {gpu.name()}; models compiled for {manifest['chip']}", flush=True)
    ceiling = gpu.copy_bandwidth()
    print(f"device-to-device copy: {ceiling / 1e9:.0f} GB/s (bytes read + written)" if ceiling else
          "device-to-device copy: not measured (no PyTorch with CUDA)", flush=True)

    print("\nnumerics: the GPU build against the CPU build (max |gpu - cpu| / max |cpu|)")
    for name in manifest["cases"]:
        io = np.load(folder / f"{name}_io.npz")
        feed = {k[3:]: io[k] for k in io.files if k.startswith("in_")}
        got = qc.runtime.load(folder / f"{name}.so", device="cuda").run(feed)
        print(f"  {name}: {error([got[k[4:]] for k in io.files if k.startswith('out_')], [io[k] for k in io.files if k.startswith('out_')]):.2e}")

    print("\nint4 g128 decode GEMV, one LLaMA-7B layer (7 linears), M = 1")
    weights = make_weights(BITS, GROUP)
    _, header = read_head(folder / "layer.qcw.head")
    write_weight_file(folder / "layer.qcw", header, layer_weights(header, weights))
    rng = np.random.default_rng(1)
    feeds = {"x": rng.standard_normal((1, 4096)).astype(np.float32), "h": rng.standard_normal((1, 11008)).astype(np.float32)}
    ref = reference(weights, feeds)
    layer = qc.runtime.load(folder / "layer.so", folder / "layer.qcw", device="cuda")
    qc_feeds = {"arg0": feeds["x"], "arg1": feeds["h"]}  # (the layer's .mlir names its inputs by position)
    got = layer.run(qc_feeds)
    seconds = gpu.timed(lambda: layer.run(qc_feeds), args.iters)
    moved = manifest["layer"]["weights_bytes"]
    rows = [("qc int4 g128 (Model.run)", seconds, moved, error(list(got.values()), ref))]
    if gpu.torch:
        torch = gpu.torch
        dense = {}
        for name, n, k in LAYER:
            q, scale = weights[name]
            w = (q.reshape(n, scale.shape[1], -1).astype(np.float32) * scale[:, :, None]).reshape(n, k)
            dense[name] = torch.from_numpy(w).to("cuda", torch.float16)
        xs = {key: torch.from_numpy(v).to("cuda", torch.float16) for key, v in feeds.items()}

        def fp16():
            out = [xs["h" if k == 11008 else "x"] @ dense[name].T for name, n, k in LAYER]
            torch.cuda.synchronize()
            return out

        outs = [o.float().cpu().numpy() for o in fp16()]
        rows.append(("PyTorch FP16 matmul", gpu.timed(fp16, args.iters), sum(2 * n * k for _, n, k in LAYER),
                     error(outs, ref)))
    else:
        print("  PyTorch FP16: not run (no PyTorch with CUDA)")
    try:
        import onnxruntime as ort
        cuda_ort = "CUDAExecutionProvider" in ort.get_available_providers()
    except ImportError:
        cuda_ort = False
    if cuda_ort:
        from bench_decode import ort_session
        from common import scratch

        session = ort_session(weights, BITS, GROUP, 0, 1, scratch("qc-bench-gpu-"), "CUDAExecutionProvider")
        outs = session.run(None, feeds)
        rows.append(("ORT MatMulNBits (CUDA)", gpu.timed(lambda: session.run(None, feeds), args.iters), moved,
                     error(outs, ref)))
    else:
        print("  ONNX Runtime MatMulNBits: not run (no onnxruntime with its CUDA provider)")
    print(f"  {'engine':<26} {'ms':>8} {'GB/s':>8} {'% of copy':>10} {'error vs f64':>13}")
    for label, s, nbytes, err in rows:
        share = f"{100 * nbytes / s / ceiling:.0f} %" if ceiling else "-"
        print(f"  {label:<26} {s * 1e3:8.3f} {nbytes / s / 1e9:8.0f} {share:>10} {err:13.2e}")
    for label, s, _, _ in rows[1:]:
        print(f"  {label} / qc: {s / rows[0][1]:.2f}x")

    print("\nMiniLM (all-MiniLM-L6-v2), b1 s128, end to end")
    io = np.load(folder / "minilm_io.npz")
    feed = {k[3:]: io[k] for k in io.files if k.startswith("in_")}
    mini = qc.runtime.load(folder / "minilm.so", device="cuda")
    got = mini.run(feed)
    err = error([got[k[4:]] for k in io.files if k.startswith("out_")], [io[k] for k in io.files if k.startswith("out_")])
    qc_s = gpu.timed(lambda: mini.run(feed), args.iters)
    print(f"  qc {manifest['minilm']['scheme']}: {qc_s * 1e3:.3f} ms (against the CPU build: {err:.2e})")
    if gpu.torch:
        import transformers

        torch = gpu.torch
        config = transformers.BertConfig.from_dict(json.loads((folder / "minilm_config.json").read_text()))
        bert = transformers.BertModel(config).eval().to("cuda")  # random weights: timing only
        tensors = {k: torch.from_numpy(v).to("cuda") for k, v in feed.items()}

        def eager():
            with torch.no_grad():
                out = bert(**tensors)
            torch.cuda.synchronize()
            return out

        torch_s = gpu.timed(eager, args.iters)
        print(f"  PyTorch eager FP32: {torch_s * 1e3:.3f} ms; qc vs PyTorch: {torch_s / qc_s:.2f}x")
    else:
        print("  PyTorch eager: not run (no PyTorch with CUDA)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare", help="compile the models for the GPU (here, with the compiler)")
    p.add_argument("--chip", default="sm_90", help="the GPU's compute capability (H100: sm_90)")
    p.add_argument("--out", default="build/gpu-bench", help="what travels to the GPU machine")
    p.add_argument("--work", default="build/gpu-bench-work", help="what stays here")
    r = sub.add_parser("run", help="measure on the GPU machine")
    r.add_argument("--dir", default="build/gpu-bench")
    r.add_argument("--iters", type=int, default=50)
    args = ap.parse_args()
    if args.step == "prepare":
        Path(args.work).mkdir(parents=True, exist_ok=True)
        return prepare(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
