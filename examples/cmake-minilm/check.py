"""check.py BUILD_DIR LIBRARY: the C program's embeddings equal the same library's run from qc's
Python runtime (to 1e-6), and stay close to PyTorch FP32 (cosine >= 0.99)."""

import sys
from pathlib import Path

import numpy as np

import qc.runtime
from qc.compiler.models import minilm

build, library = Path(sys.argv[1]), sys.argv[2]
raw = np.fromfile(build / "tokens.bin", np.int64)
count, seq = raw[:2]
tokens = raw[2:].reshape(count, 3, seq)
got = np.fromfile(build / "embeddings.bin", np.float32).reshape(count, -1)

model = qc.runtime.load(library)
python = np.stack([model.run({name: tokens[i, j][None] for j, name in enumerate(minilm.INPUT_NAMES)})
                   ["sentence_embedding"][0] for i in range(count)])
gap = np.abs(got - python).max()

import torch  # noqa: E402  (the FP32 reference)

_, ref_model = minilm.load()
with torch.no_grad():
    ids, mask, types = (torch.from_numpy(tokens[:, j]) for j in range(3))
    hidden = ref_model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    m = mask.unsqueeze(-1).float()
    ref = ((hidden * m).sum(1) / m.sum(1)).numpy()
ref /= np.linalg.norm(ref, axis=1, keepdims=True)
cosine = (got * ref).sum(1) / np.linalg.norm(got, axis=1)
print(f"C vs Python runtime: max |diff| {gap:.2e}; cosine to PyTorch FP32: {', '.join(f'{c:.5f}' for c in cosine)}")
sys.exit(0 if gap <= 1e-6 and cosine.min() >= 0.99 else 1)
