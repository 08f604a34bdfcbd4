"""prepare.py STORIES.bin CONTEXT OUT.onnx: the llama2.c model as ONNX, tokens[1, CONTEXT] -> logits."""

import sys

import torch

from qc.compiler.models.llama2c import build_torch_llama, read_llama2c

checkpoint, context, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cfg, weights = read_llama2c(checkpoint)
tokens = torch.zeros((1, context), dtype=torch.int64)
torch.onnx.export(build_torch_llama(cfg, weights), (tokens,), out, input_names=["tokens"], output_names=["logits"],
                  dynamo=False, opset_version=17)
