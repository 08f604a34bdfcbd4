"""prepare.py OUTDIR: OUTDIR/minilm.onnx (pooled, L2-normalised sentence embedding, [1, 128] inputs)
and OUTDIR/tokens.bin (a few sentences, tokenized; the layout main.c reads)."""

import sys
from pathlib import Path

import numpy as np

from qc.compiler.models import minilm

SENTENCES = ["A C program can embed sentences with a quantized model.",
             "The weather in Lisbon is sunny today.",
             "Quantization trades a little accuracy for a lot of speed."]
SEQ = 128

out = Path(sys.argv[1])
tokenizer = minilm.export_onnx(out / "minilm.onnx", seq=SEQ, pooled=True)
feeds = minilm.encode(tokenizer, SENTENCES, SEQ)
with open(out / "tokens.bin", "wb") as f:
    np.array([len(SENTENCES), SEQ], np.int64).tofile(f)
    for i in range(len(SENTENCES)):
        for name in minilm.INPUT_NAMES:
            feeds[name][i].astype(np.int64).tofile(f)
(out / "sentences.txt").write_text("\n".join(SENTENCES) + "\n")
