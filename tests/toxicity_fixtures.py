"""Tiny Detoxify-format checkpoints the toxicity tests build for themselves.

A checkpoint is what Detoxify's releases hold: a dict with ``config`` (``arch.args`` naming the
transformers classes and the hub model it was trained from, ``dataset.args.classes``) and
``state_dict``. Ours use a 2-layer transformer with a 30-word vocabulary: BERT by default
(Detoxify ``original``), or any other architecture Detoxify ships (``ARCHITECTURES``). Its scores
are meaningless unless ``label_scores`` is given: then the classifier head is set so every text
gets exactly those probabilities, which lets tests check thresholds with a real model.
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
# texts made of those words, short and long (the long one longer than most batches' others)
SAMPLE_TEXTS = (
    "well done team great match",
    "you are a stupid idiot",
    "shut up nobody cares",
    "see you after school",
    "thanks for the lovely photos",
    "hate",
    "a",
    "kill kill kill you idiot idiot idiot stupid stupid hate hate hate the the the school trip",
)


# Detoxify model -> (transformers model class, the hub name its real checkpoint names)
ARCHITECTURES = {
    "original": ("BertForSequenceClassification", "bert-base-uncased"),
    "original-small": ("AlbertForSequenceClassification", "albert-base-v2"),
    "unbiased": ("RobertaForSequenceClassification", "roberta-base"),
    "unbiased-small": ("AlbertForSequenceClassification", "albert-base-v2"),
    "multilingual": ("XLMRobertaForSequenceClassification", "xlm-roberta-base"),
}


def tiny_config(model: str, num_labels: int) -> transformers.PreTrainedConfig:
    """A 2-layer config of ``model``'s architecture (ALBERT: one shared layer group)."""
    shape = {"vocab_size": 5 + len(WORDS), "hidden_size": 32, "num_hidden_layers": 2,
             "num_attention_heads": 2, "intermediate_size": 64, "num_labels": num_labels}
    name = ARCHITECTURES[model][0]
    if name.startswith("Albert"):
        return transformers.AlbertConfig(embedding_size=16, max_position_embeddings=64, **shape)
    if name.startswith("Bert"):
        return transformers.BertConfig(max_position_embeddings=64, **shape)
    config_class = (transformers.XLMRobertaConfig if name.startswith("XLM")
                    else transformers.RobertaConfig)
    # positions start after the padding index, as in the real models; [PAD] is id 0 here
    return config_class(max_position_embeddings=66, pad_token_id=0, **shape)


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
    model_type: str = "original",
) -> tuple[Path, Path, transformers.PreTrainedModel]:
    """(checkpoint file, config+tokenizer folder, the model as built) in ``folder``."""
    classes = classes or ORIGINAL_CLASSES
    hf_dir = write_tokenizer(folder / "hf")
    config = tiny_config(model_type, len(classes))
    config.save_pretrained(hf_dir)
    model_name, hub_name = ARCHITECTURES[model_type]
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(config).eval()
    if label_scores is not None:
        with torch.no_grad():
            head = getattr(model.classifier, "out_proj", model.classifier)  # RoBERTa's head
            head.weight.zero_()
            for i, cls in enumerate(classes):
                p = label_scores.get(cls, 0.01)
                head.bias[i] = math.log(p / (1.0 - p))
    checkpoint = {
        "config": {
            "name": "tiny-test",
            # a hub name, as in Detoxify's real checkpoints: the loader must not reach for it
            "arch": {"type": model_name, "args": {
                "model_type": hub_name,
                "model_name": model_name,
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
