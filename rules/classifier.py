"""The learned safeguarding classifier: a calibrated logistic head per family on the sentence
embeddings the safeguarding detector already computes (all-MiniLM-L6-v2, rules/embeddings.py).

Lexicon cues stay for precision and explanation; the head adds recall on wording no cue or
exemplar anticipated. Per family it gives a probability for each sentence; the family fires when
the probability reaches the family's ``classifier_threshold`` in the safeguarding pack (chosen on
held-out folds of the development data). It costs one small matrix product per batch of
sentences: the embeddings are there anyway.

The weights (``rules/models/safeguarding_head.npz``, a few kilobytes) are versioned in the
repository and rebuilt, seeded and reproducibly, by ``tools/train_safeguarding_classifier.py``
from the development halves in ``../shared/datasets/`` and the examples written for this project.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["MODEL_FILE", "FamilyClassifier"]

MODEL_FILE = Path(__file__).resolve().parent / "models" / "safeguarding_head.npz"


@dataclass(frozen=True, slots=True)
class FamilyClassifier:
    """One logistic head per family, Platt-calibrated: ``p = sigmoid(scale * (w.x + b) + offset)``.
    """

    families: tuple[str, ...]
    weights: np.ndarray  # (families, dimensions)
    bias: np.ndarray  # (families,)
    scale: np.ndarray  # (families,) Platt scaling fitted on held-out folds
    offset: np.ndarray
    info: dict[str, object]

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """(sentences, families) calibrated probabilities for unit-length sentence vectors."""
        if not len(vectors):
            return np.zeros((0, len(self.families)), dtype=np.float32)
        z = (vectors @ self.weights.T + self.bias) * self.scale + self.offset
        return (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)

    def save(self, path: Path = MODEL_FILE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            np.savez_compressed(
                fh, families=np.array(self.families), weights=self.weights.astype(np.float32),
                bias=self.bias.astype(np.float32), scale=self.scale.astype(np.float32),
                offset=self.offset.astype(np.float32),
                info=np.array(json.dumps(self.info, sort_keys=True)),
            )

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> FamilyClassifier:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                families=tuple(str(f) for f in data["families"]),
                weights=np.asarray(data["weights"], dtype=np.float32),
                bias=np.asarray(data["bias"], dtype=np.float32),
                scale=np.asarray(data["scale"], dtype=np.float32),
                offset=np.asarray(data["offset"], dtype=np.float32),
                info=json.loads(str(data["info"])),
            )
