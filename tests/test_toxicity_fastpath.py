"""The toxicity fast path's exact speed-ups: the last layer computed for the first token only, and
planned batches run side by side on worker threads.

Each must give the scores stock Detoxify gives (the parity gate allows 1e-3; these are exact
rewrites, so they stay within about 1e-6). Every model is a real tiny transformer of each
architecture Detoxify ships, in Detoxify's checkpoint format (tests/toxicity_fixtures.py), loaded
by the real offline loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import transformers

from rules.batching import plan_batches, spread_batches
from rules.models import FileIdentity
from rules.toxicity import DetoxifyBackend, OnnxBackend, load_detoxify
from rules.toxicity_export import _last_layer_on_first_token, export_onnx
from tests.toxicity_fixtures import ARCHITECTURES, SAMPLE_TEXTS, build_checkpoint

TEXTS = [
    *SAMPLE_TEXTS,
    "great day for the school trip thanks team",
    "nobody cares about the match you idiot",
]


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def detox(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    model_type = request.param
    checkpoint, hf_dir, _ = build_checkpoint(tmp_path_factory.mktemp(model_type),
                                             model_type=model_type)
    return load_detoxify(model_type, checkpoint, hf_dir)


def largest_difference(a: list[dict[str, float]], b: list[dict[str, float]]) -> float:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
    return max(abs(x[k] - y[k]) for x, y in zip(a, b, strict=True) for k in x)


def test_the_last_layer_on_the_first_token_gives_the_full_models_logits(detox):
    tokenizer, model = detox.tokenizer, detox.model
    inputs = tokenizer(TEXTS, return_tensors="pt", padding=True, truncation=True)
    with torch.no_grad():
        full = model(**inputs).logits
        with _last_layer_on_first_token(model):
            base = getattr(model, model.base_model_prefix)
            # the rewrite is in force: the encoder now returns the first token only...
            assert base(**inputs).last_hidden_state.shape[1] == 1
            cheap = model(**inputs).logits
        # ...and the torch model is itself again afterwards (it is the parity reference)
        assert getattr(model, model.base_model_prefix)(**inputs).last_hidden_state.shape[1] == (
            inputs["input_ids"].shape[1])
        again = model(**inputs).logits
    assert torch.equal(full, again)
    assert (full - cheap).abs().max().item() <= 1e-6


def test_the_first_token_onnx_export_matches_stock_detoxify(detox, tmp_path):
    path = export_onnx(detox, tmp_path / "model.onnx", FileIdentity(1, 1, "f" * 64),
                       "first-token")
    onnx_backend = OnnxBackend.from_file(path, detox.tokenizer, detox.class_names, batch_size=3)
    stock = DetoxifyBackend(detox, batch_size=4)
    assert largest_difference(stock.score(TEXTS), onnx_backend.score(TEXTS)) <= 1e-6
    assert '"export": "first-token"' in path.with_name("model.onnx.json").read_text()


@pytest.mark.parametrize(("layers", "groups", "inner"), [(4, 2, 1), (4, 1, 2), (6, 3, 2)])
def test_albert_layer_groups_keep_their_order_with_the_first_token_rewrite(layers, groups, inner):
    config = transformers.AlbertConfig(
        vocab_size=40, embedding_size=16, hidden_size=32, num_hidden_layers=layers,
        num_hidden_groups=groups, inner_group_num=inner, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, num_labels=3)
    torch.manual_seed(3)
    model = transformers.AlbertForSequenceClassification(config).eval()
    ids = torch.tensor([[2, 7, 9, 11, 3, 0], [2, 5, 3, 0, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask).logits
        with _last_layer_on_first_token(model):
            cheap = model(input_ids=ids, attention_mask=mask).logits
            # a second call inside the block counts its layers afresh
            cheap_again = model(input_ids=ids, attention_mask=mask).logits
    assert (full - cheap).abs().max().item() <= 1e-6
    assert torch.equal(cheap, cheap_again)


# ------------------------------------------------------------------------ batches side by side


@pytest.fixture(scope="module")
def bert_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    folder = tmp_path_factory.mktemp("bert")
    checkpoint, hf_dir, _ = build_checkpoint(folder)
    detox = load_detoxify("original", checkpoint, hf_dir)
    return detox, export_onnx(detox, folder / "model.onnx", None, "first-token")


def test_batches_run_side_by_side_give_the_same_scores_in_the_same_order(bert_export):
    detox, path = bert_export
    sequential = OnnxBackend.from_file(path, detox.tokenizer, detox.class_names, batch_size=2,
                                       threads=1)
    assert sequential.workers == 1
    # the same session run from three threads at once: same batches, so the same numbers
    parallel = OnnxBackend(sequential.session, detox.tokenizer, detox.class_names, batch_size=2,
                           workers=3)
    texts = TEXTS * 3
    expected = sequential.score(texts)
    assert parallel.score(texts) == expected
    # and a backend built for parallel batches agrees with stock Detoxify
    built = OnnxBackend.from_file(path, detox.tokenizer, detox.class_names, batch_size=2,
                                  threads=2)
    assert built.workers == 2
    stock = DetoxifyBackend(detox, batch_size=32).score(texts)
    assert largest_difference(stock, built.score(texts)) <= 1e-6
    assert built.score([]) == []


def test_one_intra_op_session_is_used_without_parallel_batches(bert_export):
    detox, path = bert_export
    backend = OnnxBackend.from_file(path, detox.tokenizer, detox.class_names, threads=2,
                                    parallel_batches=False)
    assert backend.workers == 1
    assert largest_difference(DetoxifyBackend(detox).score(TEXTS), backend.score(TEXTS)) <= 1e-6


@pytest.mark.parametrize(("lengths", "max_batch", "workers"), [
    ([5, 40, 6, 38, 7, 39, 5, 41], 4, 2),
    ([12, 13, 14], 32, 2),          # one short burst: split so both cores work
    ([9], 32, 4),                   # a single text cannot be split
    ([3, 300, 4, 250, 5, 9, 9, 9, 9, 9, 9, 9, 9, 9], 8, 3),
    ([], 32, 2),
])
def test_batches_are_spread_over_the_workers_biggest_first(lengths, max_batch, workers):
    plan = plan_batches(lengths, max_batch)
    spread = spread_batches(plan, lengths, workers)
    assert sorted(i for batch in spread for i in batch) == list(range(len(lengths)))
    assert all(batch for batch in spread)
    work = [len(b) * max(lengths[i] for i in b) for b in spread]
    assert work == sorted(work, reverse=True)
    if len(lengths) >= workers:
        assert len(spread) >= workers
    assert all(len(b) <= max_batch for b in spread)
