"""check.py STORIES.bin GENERATED.txt: the C program's greedy tokens equal PyTorch's, token for token
(the same prompt and count; PyTorch runs on the prefix alone, without padding)."""

import sys

import torch

from qc.compiler.models.llama2c import build_torch_llama, read_llama2c

cfg, weights = read_llama2c(sys.argv[1])
model = build_torch_llama(cfg, weights)
got = [int(t) for t in open(sys.argv[2]).read().split()]
prompt = got[:3]  # CMakeLists.txt's test gives a 3-token prompt
tokens = list(prompt)
with torch.no_grad():
    while len(tokens) < len(got):
        logits = model(torch.tensor([tokens]))
        tokens.append(int(logits[0, -1].argmax()))
same = sum(a == b for a, b in zip(got, tokens)) - len(prompt)
print(f"{same} of {len(got) - len(prompt)} generated tokens equal PyTorch's")
print("C:      ", got)
print("PyTorch:", tokens)
sys.exit(0 if got == tokens else 1)
