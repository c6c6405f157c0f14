"""Tiny Detoxify-format checkpoints the toxicity tests build for themselves.

A checkpoint is what Detoxify's releases hold: a dict with ``config`` (``arch.args`` naming the
transformers classes and the hub model it was trained from, ``dataset.args.classes``) and
``state_dict``. Ours use a 2-layer BERT with a 30-word vocabulary. Its scores are meaningless
unless ``label_scores`` is given: then the classifier head is set so every text gets exactly those
probabilities, which lets tests check thresholds with a real model.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import transformers

ORIGINAL_CLASSES = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
UNBIASED_CLASSES = ["toxicity", "severe_toxicity", "obscene", "identity_attack", "insult",
                    "threat", "sexual_explicit"]
WORDS = [
    "you", "are", "a", "the", "idiot", "lovely", "day", "great", "school", "trip", "kill",
    "stupid", "hate", "well", "done", "team", "match", "thanks", "for", "photos", "see", "after",
    "shut", "up", "nobody", "cares",
]


def write_tokenizer(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = transformers.BertTokenizer(vocab=str(vocab))
    tokenizer.save_pretrained(folder)
    return folder


def build_checkpoint(
    folder: Path,
    *,
    classes: list[str] | None = None,
    label_scores: dict[str, float] | None = None,
    seed: int = 0,
    name: str = "tiny.ckpt",
) -> tuple[Path, Path, transformers.BertForSequenceClassification]:
    """(checkpoint file, config+tokenizer folder, the model as built) in ``folder``."""
    classes = classes or ORIGINAL_CLASSES
    hf_dir = write_tokenizer(folder / "hf")
    config = transformers.BertConfig(
        vocab_size=5 + len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, num_labels=len(classes),
    )
    config.save_pretrained(hf_dir)
    torch.manual_seed(seed)
    model = transformers.BertForSequenceClassification(config).eval()
    if label_scores is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            for i, cls in enumerate(classes):
                p = label_scores.get(cls, 0.01)
                model.classifier.bias[i] = math.log(p / (1.0 - p))
    checkpoint = {
        "config": {
            "name": "tiny-test",
            # a hub name, as in Detoxify's real checkpoints: the loader must not reach for it
            "arch": {"type": "BertForSequenceClassification", "args": {
                "model_type": "bert-base-uncased",
                "model_name": "BertForSequenceClassification",
                "tokenizer_name": "BertTokenizer",
                "num_classes": len(classes),
            }},
            "dataset": {"type": "JigsawData", "args": {"classes": classes}},
        },
        "state_dict": model.state_dict(),
    }
    path = folder / name
    torch.save(checkpoint, path)
    return path, hf_dir, model
