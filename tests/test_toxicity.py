"""The toxicity classifier: offline Detoxify loading, the ONNX fast path and its parity gate, the
fallback, thresholds -> categories and severities, and batching.

Every model here is a real (tiny) transformer in Detoxify's checkpoint format, built by
tests/toxicity_fixtures.py and loaded by the real loading code with the network switched off.
"""

from __future__ import annotations

import logging
import math
import shutil
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import torch

from governance_bot.config import Config, load_config
from governance_bot.findings import Category, Finding, Route, Severity
from governance_bot.items import Item, Person
from governance_bot.registers import RegisterIndex
from governance_bot.routing import Router
from rules.base import DetectionContext
from rules.engine import DetectionEngine
from rules.models import ExportRecord, runtime_version
from rules.packs import load_pack
from rules.toxicity import (
    DetoxifyBackend,
    OnnxBackend,
    ProfanityFallbackBackend,
    ToxicityDetector,
    ToxicityModelUnavailable,
    ToxicityPack,
    build_backend,
    load_detoxify,
    parity_check,
    plan_batches,
    toxicity_status,
)
from rules.toxicity_export import prepare_exports, prepare_offline_bundle
from tests.toxicity_fixtures import SAMPLE_TEXTS, UNBIASED_CLASSES, build_checkpoint

TEXTS = list(SAMPLE_TEXTS)


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Model hubs are unreachable: any attempt to connect fails the way it would offline, and
    is remembered. The model store is an empty folder of the test's own."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise OSError("network access is disabled in the toxicity tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GOVERNANCE_BOT_MODEL_CACHE", str(tmp_path / "model-store"))
    return attempts


class NoHistory:
    def thread(self, item: Item, limit: int = 200) -> Sequence[Item]:
        return []

    def prior_findings(self, rule_id: str, subject: str, since: datetime, until: datetime,
                       exclude_item_key: str | None = None) -> Sequence[datetime]:
        return []


@pytest.fixture
def ctx() -> DetectionContext:
    return DetectionContext(registers=RegisterIndex.empty(), history=NoHistory())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    return build_checkpoint(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def pack() -> ToxicityPack:
    return ToxicityPack.from_dict(load_pack("toxicity"))


def make_config(tmp_path: Path, **toxicity: Any) -> Config:
    lines = ["[classifiers.toxicity]"]
    for key, value in toxicity.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, int):
            lines.append(f"{key} = {value}")
        else:
            lines.append(f'{key} = "{value}"')
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_config(path, env={})


def comment(text: str, n: int = 1, role: str = "public", kind: str = "comment") -> Item:
    return Item(
        id=f"c{n}", platform="facebook", account="fb-main", kind=kind,
        author=Person(handle=f"@person{n}", role=role),
        created_at=datetime(2026, 3, 4, 12, 0, tzinfo=UTC), text=text,
    )


def reference_scores(model: Any, hf_dir: Path, texts: list[str]) -> torch.Tensor:
    import transformers

    tok = transformers.BertTokenizer.from_pretrained(hf_dir, local_files_only=True)
    with torch.no_grad():
        enc = tok(texts, return_tensors="pt", padding=True, truncation=True)
        return torch.sigmoid(model(**enc)[0])


# ---------------------------------------------------------------------------- the loader


@pytest.mark.slow  # huggingface_hub retries before giving up (about 20 s)
def test_stock_detoxify_with_a_local_checkpoint_still_reaches_for_the_hub(tiny):
    """The snag models.md describes: Detoxify alone asks the hub for 'bert-base-uncased'."""
    from detoxify import Detoxify

    checkpoint, hf_dir, _ = tiny
    with pytest.raises(OSError):
        Detoxify("original", checkpoint=str(checkpoint), huggingface_config_path=str(hf_dir))


def test_a_local_checkpoint_loads_fully_offline_as_a_real_detoxify(tiny):
    from detoxify import Detoxify

    checkpoint, hf_dir, model = tiny
    detox = load_detoxify("original", checkpoint, hf_dir)
    assert isinstance(detox, Detoxify)
    # Detoxify's own renaming of the Jigsaw classes
    assert detox.class_names == ["toxicity", "severe_toxicity", "obscene", "threat", "insult",
                                 "identity_attack"]
    got = detox.predict(TEXTS)
    expected = reference_scores(model, hf_dir, TEXTS)
    for j, label in enumerate(detox.class_names):
        assert got[label] == pytest.approx(expected[:, j].tolist(), abs=1e-6)


def test_the_loader_truncates_long_texts_to_what_the_model_allows(tiny):
    checkpoint, hf_dir, _ = tiny
    backend = DetoxifyBackend(load_detoxify("original", checkpoint, hf_dir))
    [scores] = backend.score(["hate " * 500])  # 500 words, the tiny model has 64 positions
    assert 0.0 < scores["toxicity"] < 1.0


def test_a_checkpoint_without_its_tokenizer_folder_is_refused_with_what_to_do(tiny):
    checkpoint, _, _ = tiny
    with pytest.raises(ToxicityModelUnavailable, match="huggingface_config_path"):
        load_detoxify("original", checkpoint, None)


def test_a_folder_without_config_json_is_named(tiny, tmp_path):
    checkpoint, _, _ = tiny
    with pytest.raises(ToxicityModelUnavailable, match=r"no config\.json"):
        load_detoxify("original", checkpoint, tmp_path)


class Payload:
    """Something a checkpoint must not smuggle in."""


def test_a_checkpoint_carrying_pickled_objects_is_not_unpickled(tiny, tmp_path):
    checkpoint, hf_dir, _ = tiny
    data = torch.load(checkpoint, weights_only=True)
    data["extra"] = Payload()
    bad = tmp_path / "pickled.ckpt"
    torch.save(data, bad)
    with pytest.raises(ToxicityModelUnavailable, match="prepare --checkpoint"):
        load_detoxify("original", bad, hf_dir)


def test_a_file_that_is_not_a_detoxify_checkpoint_is_named(tmp_path, tiny):
    _, hf_dir, _ = tiny
    other = tmp_path / "other.ckpt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ToxicityModelUnavailable, match="not in Detoxify's format"):
        load_detoxify("original", other, hf_dir)


def test_prepare_converts_a_checkpoint_into_an_offline_bundle(tiny, tmp_path):
    checkpoint, hf_dir, model = tiny
    data = torch.load(checkpoint, weights_only=True)
    data["hyper_parameters"] = Payload()  # what a training run may leave in a checkpoint
    raw = tmp_path / "from-training.ckpt"
    torch.save(data, raw)
    paths = prepare_offline_bundle(tmp_path / "bundle", "original", raw, hf_dir)
    loaded = torch.load(paths["checkpoint"], weights_only=True)  # plain tensors and config now
    assert set(loaded) == {"config", "state_dict"}
    detox = load_detoxify("original", paths["checkpoint"], paths["huggingface_config_path"])
    expected = reference_scores(model, hf_dir, TEXTS[:3])
    assert detox.predict(TEXTS[:3])["toxicity"] == pytest.approx(expected[:, 0].tolist(),
                                                                 abs=1e-6)


def test_a_bundle_prepared_with_its_onnx_exports_starts_without_exporting(tiny, tmp_path, pack):
    from governance_bot.config import ToxicitySettings

    checkpoint, hf_dir, _ = tiny
    paths = prepare_offline_bundle(tmp_path / "bundle", "original", checkpoint, hf_dir,
                                   export=True)
    made = sorted((tmp_path / "bundle").glob("*.onnx"))
    assert [p.name for p in made] == ["detoxify-original.int8.onnx", "detoxify-original.onnx"]
    # each export was checked against torch once, when it was made, and that is recorded
    for export in made:
        record = ExportRecord.read(export)
        assert record is not None and record.parity(runtime_version())
    before = {p: p.stat().st_mtime_ns for p in [*made, *(p.with_name(p.name + ".json")
                                                           for p in made)]}
    backend, status = build_backend(ToxicitySettings(**paths), pack)
    assert isinstance(backend, OnnxBackend) and status.parity is not None and status.parity.ok
    assert "checked when exported" in status.message
    # used as shipped: nothing exported or checked again at start-up
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert not (tmp_path / "bundle" / "detoxify-original.plain.onnx").exists()


# ------------------------------------------------------------- start-up without weights


@pytest.fixture(autouse=True)
def _no_status_from_earlier_tests() -> None:
    """toxicity_status reports what this process last built: start each test without it."""
    from rules import toxicity

    toxicity._LAST_STATUS.clear()


def test_no_weights_and_no_fallback_switches_toxicity_off_saying_what_to_do(tmp_path, pack):
    """The other rules keep running: a missing model must not stop every safeguard."""
    config = make_config(tmp_path, checkpoint=str(tmp_path / "missing.ckpt"),
                         huggingface_config_path=str(tmp_path))
    with pytest.raises(ToxicityModelUnavailable) as err:
        ToxicityDetector.from_pack(load_pack("toxicity"), config)
    engine = DetectionEngine.from_config(config, only=["toxicity", "tone"])
    assert engine.rule_ids == ["tone"]
    assert engine.unavailable["toxicity"] == str(err.value)
    message = str(err.value)
    assert "missing.ckpt does not exist" in message
    assert "governance-bot models fetch" in message
    assert "allow_fallback = true" in message


def test_without_the_model_on_this_machine_nothing_is_downloaded_and_the_fetch_step_is_named(
        tmp_path, no_network):
    """Offline by default: a start with no Detoxify weights in the model store never reaches
    for GitHub or the hub; the rule is off and the message says how to get the model."""
    config = make_config(tmp_path, model="original-small")
    engine = DetectionEngine.from_config(config, only=["toxicity"])
    why = engine.unavailable["toxicity"]
    assert "'original-small' is not on this machine" in why
    assert "governance-bot models fetch" in why
    ok, message = toxicity_status(config)
    assert not ok and "governance-bot models fetch" in message
    assert no_network == []  # not even attempted


def test_doctor_status_names_a_missing_checkpoint(tmp_path):
    config = make_config(tmp_path, checkpoint="weights/detoxify.ckpt")
    ok, message = toxicity_status(config)
    assert not ok
    assert str(tmp_path / "weights" / "detoxify.ckpt") in message
    assert "models fetch" in message


# -------------------------------------------------------------------------------- fallback


def test_a_start_without_the_model_says_once_that_the_fallback_will_be_used(tmp_path, ctx,
                                                                           caplog):
    """The quick start's log: one warning naming the fetch step, not the same news three times,
    and no advice to allow the fallback when it is already allowed."""
    config = make_config(tmp_path, checkpoint=str(tmp_path / "missing.ckpt"),
                         huggingface_config_path=str(tmp_path), allow_fallback=True)
    with caplog.at_level(logging.INFO):
        engine = DetectionEngine.from_config(config, only=["toxicity"])
        engine.detect(comment("you are a fucking idiot, shut the fuck up"), ctx)
    said = [r for r in caplog.records
            if r.levelno >= logging.INFO and "could not be loaded" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING
    assert "governance-bot models fetch" in said[0].getMessage()
    assert "set allow_fallback = true" not in toxicity_status(config)[1]


@pytest.mark.parametrize("allowed", [True, False])
def test_doctor_advises_allowing_the_fallback_only_where_it_is_not_allowed(tmp_path, allowed):
    from governance_bot.doctor import model_checks

    config = make_config(tmp_path, checkpoint=str(tmp_path / "missing.ckpt"),
                         huggingface_config_path=str(tmp_path), allow_fallback=allowed)
    [check] = [c for c in model_checks(config) if c.name == "toxicity model"]
    assert not check.ok and "governance-bot models fetch" in check.fix
    assert ("allow_fallback = true" in check.fix) is not allowed
    assert check.warning is allowed  # the fallback runs meanwhile: a warning, not a failure


def test_the_fallback_is_used_only_when_allowed_and_its_findings_say_so(tmp_path, ctx):
    config = make_config(tmp_path, checkpoint=str(tmp_path / "missing.ckpt"),
                         huggingface_config_path=str(tmp_path), allow_fallback=True)
    engine = DetectionEngine.from_config(config, only=["toxicity"])
    [detector] = engine.detectors
    assert isinstance(detector, ToxicityDetector)
    assert isinstance(detector.backend, ProfanityFallbackBackend)
    findings = engine.detect(comment("you are a fucking idiot, shut the fuck up"), ctx)
    [finding] = findings
    assert finding.evidence.detail["fallback"] is True
    assert finding.evidence.detail["backend"] == "alt-profanity-check (fallback)"
    assert "FALLBACK" in finding.explanation
    assert finding.category is Category.toxicity
    assert engine.detect(comment("Well done to the Year 9 netball team!"), ctx) == []
    ok, message = toxicity_status(config)
    assert not ok and "fallback" in message


def test_real_weights_are_never_replaced_by_the_fallback(tiny, tmp_path, ctx):
    checkpoint, hf_dir, _ = tiny
    config = make_config(tmp_path, checkpoint=str(checkpoint), huggingface_config_path=str(hf_dir),
                         backend="torch", allow_fallback=True)
    [detector] = DetectionEngine.from_config(config, only=["toxicity"]).detectors
    assert isinstance(detector, ToxicityDetector)
    assert isinstance(detector.backend, DetoxifyBackend)
    assert not detector.status.fallback


# ---------------------------------------------------------------------------------- ONNX


@pytest.fixture(scope="module")
def onnx_build(tiny, tmp_path_factory, pack):
    """The exports made and checked once (what `governance-bot models fetch` does), then the
    backend a start-up builds from them."""
    from governance_bot.config import ToxicitySettings

    checkpoint, hf_dir, _ = tiny
    onnx_path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    settings = ToxicitySettings(checkpoint=checkpoint, huggingface_config_path=hf_dir,
                                backend="onnx", onnx_path=onnx_path, batch_size=4)
    report = prepare_exports(settings, pack)
    assert report.ok, report.lines
    backend, status = build_backend(settings, pack)
    return settings, backend, status, onnx_path


def test_the_fastest_export_within_the_parity_gate_is_used(onnx_build, tiny, pack):
    import onnx

    _, backend, status, onnx_path = onnx_build
    # on this tiny model even the int8 quantisation of the first-token export stays within 1e-3
    assert isinstance(backend, OnnxBackend)
    assert backend.variant == "onnx, first-token, int8"
    assert "(onnx, first-token, int8) loaded" in status.message
    assert onnx_path.is_file() and onnx_path.with_name("tiny.int8.onnx").is_file()
    ops = {node.op_type for node in onnx.load(str(onnx_path)).graph.node}
    assert "MatMul" in ops and "MatMulInteger" not in ops
    int8_ops = {node.op_type for node in onnx.load(str(onnx_path.with_name("tiny.int8.onnx"))
                                                   ).graph.node}
    assert "MatMulInteger" in int8_ops
    assert status.parity is not None and status.parity.ok
    assert status.parity.max_abs_diff <= 1e-3
    assert "parity with torch" in status.message
    checkpoint, hf_dir, _ = tiny
    torch_backend = DetoxifyBackend(load_detoxify("original", checkpoint, hf_dir), batch_size=3)
    for a, b in zip(torch_backend.score(TEXTS), backend.score(TEXTS), strict=True):
        assert a.keys() == b.keys()
        assert max(abs(a[k] - b[k]) for k in a) <= 1e-3


def test_a_start_up_reads_the_recorded_check_and_never_loads_the_torch_model(onnx_build, pack):
    """The parity check ran when the export was made; a start-up trusts its record (keyed by
    the checkpoint's hash and this ONNX Runtime) and builds no torch model."""
    import subprocess
    import sys

    settings, _, _, _ = onnx_build
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from governance_bot.config import ToxicitySettings\n"
        "from rules.packs import load_pack\n"
        "from rules.toxicity import OnnxBackend, ToxicityPack, build_backend\n"
        f"settings = ToxicitySettings.model_validate_json({settings.model_dump_json()!r})\n"
        "backend, status = build_backend(settings, ToxicityPack.from_dict(load_pack('toxicity')))\n"
        "assert isinstance(backend, OnnxBackend), status.message\n"
        "backend.score(['well done team'])\n"
        "print(sorted(m for m in ('torch', 'detoxify') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_an_existing_export_is_reused_not_exported_or_checked_again(onnx_build, pack):
    settings, _, _, onnx_path = onnx_build
    record = onnx_path.with_name(onnx_path.name + ".json")
    before = (onnx_path.stat().st_mtime_ns, record.stat().st_mtime_ns)
    backend, status = build_backend(settings, pack)
    assert isinstance(backend, OnnxBackend) and status.parity and status.parity.ok
    assert (onnx_path.stat().st_mtime_ns, record.stat().st_mtime_ns) == before


@pytest.mark.slow  # a second export (about 10 s)
def test_an_export_of_another_checkpoint_is_not_used_until_it_is_made_again(
        onnx_build, pack, tmp_path, caplog):
    settings, _, _, onnx_path = onnx_build
    checkpoint, hf_dir, _ = build_checkpoint(tmp_path / "retrained", seed=11)
    stale = tmp_path / "stale.onnx"
    shutil.copy(onnx_path, stale)
    shutil.copy(onnx_path.with_name(onnx_path.name + ".json"), tmp_path / "stale.onnx.json")
    before = stale.read_bytes()
    retrained = settings.model_copy(update={
        "checkpoint": checkpoint, "huggingface_config_path": hf_dir, "onnx_path": stale})
    with caplog.at_level(logging.WARNING, logger="rules.toxicity"):
        backend, status = build_backend(retrained, pack)
    # the export beside it was made from the old weights: torch, saying what to run
    assert isinstance(backend, DetoxifyBackend)
    assert "made from another checkpoint" in status.message
    assert "governance-bot models fetch" in status.message
    report = prepare_exports(retrained, pack)
    assert report.ok
    backend, status = build_backend(retrained, pack)
    assert isinstance(backend, OnnxBackend)
    assert status.parity is not None and status.parity.ok
    assert stale.read_bytes() != before


def test_a_quantised_export_outside_the_tolerance_gives_way_to_the_fp32_one(onnx_build, pack):
    settings, _, _, _ = onnx_build
    # a stricter gate than the tiny int8 model's difference (about 2e-5) but not the fp32 one's:
    # both were checked when made, so no check runs now
    strict = pack.model_copy(update={"onnx": pack.onnx.model_copy(
        update={"parity_tolerance": 1e-5})})
    backend, status = build_backend(settings, strict)
    assert isinstance(backend, OnnxBackend) and backend.variant == "onnx, first-token"
    assert status.parity is not None and status.parity.ok
    assert status.parity.max_abs_diff <= 1e-5
    assert "(int8) failed the parity check" in status.message


def corrupt(source: Path, target: Path) -> None:
    """Scale the classifier head's weights: the model still runs but scores differently."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source), load_external_data=True)
    changed = 0
    for init in model.graph.initializer:
        if "classifier" in init.name:
            array = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array((array * 5.0 + 0.3).astype(array.dtype),
                                                  init.name))
            changed += 1
    assert changed, "the classifier head was not found in the ONNX graph"
    onnx.save(model, str(target))


def test_a_first_token_export_failing_parity_falls_back_to_the_plain_export_then_to_torch(
        onnx_build, pack, tmp_path, caplog):
    settings, _, _, onnx_path = onnx_build
    bad = tmp_path / "tiny.onnx"
    corrupt(onnx_path, bad)
    shutil.copy(onnx_path.with_name(onnx_path.name + ".json"), tmp_path / "tiny.onnx.json")
    bad_settings = settings.model_copy(update={"onnx_path": bad})
    # a changed export is not trusted: its recorded check was of another file
    backend, status = build_backend(bad_settings, pack)
    assert isinstance(backend, DetoxifyBackend)
    assert "has changed since it was checked" in status.message
    # checked again (models fetch): the first-token variant fails the gate, so the plain fp32
    # export is made, checked and used
    report = prepare_exports(bad_settings, pack)
    assert report.chosen == "plain", report.lines
    assert any(line.startswith("first-token:") and "FAILS" in line for line in report.lines)
    backend, status = build_backend(bad_settings, pack)
    assert isinstance(backend, OnnxBackend) and backend.variant == "onnx"
    assert status.parity is not None and status.parity.ok
    assert "(first-token) failed the parity check" in status.message
    plain = tmp_path / "tiny.plain.onnx"
    assert plain.is_file()

    # and when the plain export fails too, torch is used, saying why
    corrupt(plain, plain)
    report = prepare_exports(bad_settings, pack)
    assert not report.ok
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rules.toxicity"):
        backend, status = build_backend(bad_settings, pack)
    assert isinstance(backend, DetoxifyBackend)
    assert "(plain) failed the parity check" in status.message
    assert any("ONNX fast path not used" in r.getMessage() for r in caplog.records)
    # the check texts and any message text stay out of the logs
    logged = " ".join(r.getMessage() for r in caplog.records)
    # ("ok", a check text, is part of ordinary words such as "first-token")
    assert not any(text in logged for text in pack.onnx.check_texts if len(text) > 2)


def test_parity_check_compares_every_label(tiny, onnx_build, pack):
    checkpoint, hf_dir, _ = tiny
    _, onnx_backend, _, _ = onnx_build
    torch_backend = DetoxifyBackend(load_detoxify("original", checkpoint, hf_dir))
    result = parity_check(torch_backend, onnx_backend, pack.onnx.check_texts, 1e-3)
    assert result.ok and result.texts == len(pack.onnx.check_texts)
    other = build_checkpoint(Path(str(checkpoint.parent)) / "other", seed=7)
    different = DetoxifyBackend(load_detoxify("original", other[0], other[1]))
    assert not parity_check(torch_backend, different, pack.onnx.check_texts, 1e-3).ok


# ---------------------------------------------------------------- thresholds -> categories


def detector_for(tmp_path: Path, scores: dict[str, float], pack: ToxicityPack,
                 classes: list[str] | None = None) -> ToxicityDetector:
    checkpoint, hf_dir, _ = build_checkpoint(tmp_path, classes=classes, label_scores=scores)
    backend = DetoxifyBackend(load_detoxify("original", checkpoint, hf_dir))
    return ToxicityDetector(backend, pack)


# Jigsaw class names as in the `original` checkpoint; `identity_hate` is Detoxify's identity_attack
MAPPING = [
    # scores, author role, kind -> category, severity (None: no finding)
    ({"toxic": 0.85}, "public", "comment", Category.toxicity, Severity.low),
    ({"toxic": 0.97}, "public", "comment", Category.toxicity, Severity.medium),
    ({"toxic": 0.90, "insult": 0.90}, "public", "comment", Category.toxicity, Severity.medium),
    ({"toxic": 0.90, "obscene": 0.85}, "public", "reply", Category.toxicity, Severity.medium),
    ({"identity_hate": 0.70}, "public", "comment", Category.toxicity, Severity.medium),
    ({"severe_toxic": 0.60}, "public", "comment", Category.toxicity, Severity.medium),
    ({"toxic": 0.90, "threat": 0.80}, "public", "comment", Category.safeguarding, Severity.high),
    ({"threat": 0.55}, "learner", "comment", Category.safeguarding, Severity.high),
    # the organisation's own voice: toxic language is a tone finding; a threat stays safeguarding
    ({"toxic": 0.90, "insult": 0.90}, "staff", "direct_message", Category.tone, Severity.medium),
    ({"toxic": 0.85}, "organisation", "post", Category.tone, Severity.low),
    ({"threat": 0.90}, "staff", "chat_message", Category.safeguarding, Severity.high),
    # below every threshold: nothing
    ({"toxic": 0.79, "insult": 0.79, "obscene": 0.5}, "public", "comment", None, None),
    ({}, "public", "comment", None, None),
]


@pytest.mark.parametrize(("scores", "role", "kind", "category", "severity"), MAPPING)
def test_scores_map_to_the_pack_categories_and_severities(tmp_path, ctx, pack, scores, role, kind,
                                                          category, severity):
    detector = detector_for(tmp_path, scores, pack)
    findings = detector.detect(comment("see you after school", role=role, kind=kind), ctx)
    if category is None:
        assert findings == []
        return
    [finding] = findings
    assert (finding.category, finding.severity) == (category, severity)
    assert finding.rule_id == "toxicity"
    assert finding.evidence.detail["fallback"] is False


def test_sexual_explicit_from_an_unbiased_model_goes_to_safeguarding(tmp_path, ctx, pack):
    detector = detector_for(tmp_path, {"sexual_explicit": 0.8, "toxicity": 0.6}, pack,
                            classes=UNBIASED_CLASSES)
    [finding] = detector.detect(comment("send me pics"), ctx)
    assert (finding.category, finding.severity) == (Category.safeguarding, Severity.high)
    assert finding.evidence.detail["label"] == "sexual_explicit"


def test_a_threatening_comment_is_routed_to_the_dsl(tmp_path, pack):
    checkpoint, hf_dir, _ = build_checkpoint(tmp_path / "m", label_scores={"threat": 0.9})
    config = make_config(tmp_path, checkpoint=str(checkpoint), huggingface_config_path=str(hf_dir),
                         backend="torch")
    engine = DetectionEngine.from_config(config, only=["toxicity"])
    ctx = DetectionContext(registers=RegisterIndex.empty(), history=NoHistory())
    item = comment("see you after school")
    # the engine detects; who receives it is the router's business (as the pipeline applies it)
    [finding] = Router(config.routing.overrides).apply(engine.detect(item, ctx), item)
    assert finding.route is Route.dsl
    assert finding.item_key == "facebook:fb-main:c1"


def test_a_learners_private_message_is_left_to_the_safeguarding_rules(tmp_path, ctx, pack):
    detector = detector_for(tmp_path, {"toxic": 0.99, "insult": 0.99}, pack)
    assert detector.detect(comment("you idiot", role="learner", kind="direct_message"), ctx) == []
    assert detector.detect(comment("   ", role="public"), ctx) == []


def test_findings_explain_without_quoting_the_message(tmp_path, ctx, pack, caplog):
    detector = detector_for(tmp_path, {"toxic": 0.99, "insult": 0.95}, pack)
    text = "you are a stupid idiot"
    with caplog.at_level(logging.DEBUG):
        [finding] = detector.detect(comment(text), ctx)
    assert "0.99" in finding.explanation and "insult 0.95" in finding.explanation
    assert text not in finding.explanation
    assert text not in caplog.text
    assert finding.evidence.spans == ((0, len(text)),)


def test_a_bad_pack_is_named_with_the_key(tmp_path):
    raw = load_pack("toxicity")
    raw["labels"]["threat"]["threshold"] = 1.5
    with pytest.raises(ValueError, match=r"labels\.threat\.threshold"):
        ToxicityPack.from_dict(raw)
    raw = load_pack("toxicity")
    raw["labels"]["rudeness"] = raw["labels"]["insult"]
    with pytest.raises(ValueError, match="unknown label"):
        ToxicityPack.from_dict(raw)


# -------------------------------------------------------------------------------- batching


def test_batches_give_the_same_scores_as_one_at_a_time(tiny):
    checkpoint, hf_dir, _ = tiny
    detox = load_detoxify("original", checkpoint, hf_dir)
    batched = DetoxifyBackend(detox, batch_size=5).score(TEXTS)
    single = [DetoxifyBackend(detox, batch_size=1).score([t])[0] for t in TEXTS]
    for a, b in zip(batched, single, strict=True):
        assert max(abs(a[k] - b[k]) for k in a) <= 1e-5


def test_onnx_batches_in_length_order_keep_each_texts_scores(onnx_build):
    _, int8, _, onnx_path = onnx_build
    fp32 = OnnxBackend.from_file(onnx_path, int8.tokenizer, int8.class_names, batch_size=4)
    # fp32: a text's scores do not depend on the batch it lands in; int8: its activations are
    # scaled per batch, so they move a little, well within the parity tolerance
    for backend, bound in ((fp32, 1e-5), (int8, 1e-3)):
        batched = backend.score(TEXTS)
        single = [backend.score([t])[0] for t in TEXTS]
        for a, b in zip(batched, single, strict=True):
            assert max(abs(a[k] - b[k]) for k in a) <= bound


@pytest.mark.parametrize("lengths, max_batch", [
    ([5, 40, 6, 38, 7, 39, 5, 41], 4),
    ([12] * 70, 32),
    (list(range(100, 0, -1)), 32),
    ([3, 300, 4, 250, 5, 9, 9, 9, 9, 9, 9, 9, 9, 9], 8),
    ([7], 32),
    ([], 32),
])
def test_batches_are_planned_by_token_count_with_little_padding(lengths, max_batch):
    plan = plan_batches(lengths, max_batch)
    flat = [i for batch in plan for i in batch]
    assert sorted(flat) == list(range(len(lengths)))  # every text exactly once
    assert all(0 < len(batch) <= max_batch for batch in plan)
    assert flat == sorted(flat, key=lambda i: (lengths[i], i))  # in token-count order

    def padded(batches: list[list[int]]) -> int:
        return sum(len(b) * max(lengths[i] for i in b) + 32 for b in batches)

    # never worse than cutting the sorted texts into full batches, nor than stock fixed batches
    sorted_idx = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    full = [sorted_idx[s:s + max_batch] for s in range(0, len(lengths), max_batch)]
    assert padded(plan) <= padded(full)
    assert padded(plan) <= padded(plan_batches(lengths, max_batch, sort=False))


def test_short_texts_are_not_padded_to_a_long_ones_length():
    plan = plan_batches([5, 5, 5, 5, 200, 5, 5, 5], 32)
    assert [4] in plan  # the long text goes alone; the seven short ones share a batch
    assert plan_batches([5, 200, 5], 32, sort=False) == [[0, 1, 2]]


def test_engine_detect_many_matches_detect_item_by_item(tmp_path, tiny, ctx):
    checkpoint, hf_dir, _ = tiny
    config = make_config(tmp_path, checkpoint=str(checkpoint), huggingface_config_path=str(hf_dir),
                         backend="torch", batch_size=3)
    engine = DetectionEngine.from_config(config, only=["toxicity"])
    [detector] = engine.detectors
    assert isinstance(detector, ToxicityDetector)
    # lower the bar so the random model's scores (about 0.5) produce findings to compare
    for rule in detector.pack.labels.values():
        object.__setattr__(rule, "threshold", 0.0)
    items = [comment(t, n) for n, t in enumerate(TEXTS)]
    items.append(comment("a learner's message", 99, role="learner", kind="direct_message"))
    many = engine.detect_many(items, ctx)
    one_by_one = [engine.detect(item, ctx) for item in items]
    assert [len(f) for f in many] == [1] * len(TEXTS) + [0]

    def key(fs: list[Finding]) -> list[tuple[str, int, str | None]]:
        return [(f.category.value, int(f.severity), f.item_key) for f in fs]

    for a, b in zip(many, one_by_one, strict=True):
        assert key(a) == key(b)
        for fa, fb in zip(a, b, strict=True):
            assert math.isclose(fa.score, fb.score, abs_tol=1e-5)


def test_the_model_loads_when_the_first_text_needs_it_and_status_then_reports_it(
        tmp_path, tiny, ctx):
    checkpoint, hf_dir, _ = tiny
    config = make_config(tmp_path, checkpoint=str(checkpoint), huggingface_config_path=str(hf_dir),
                         backend="torch")
    engine = DetectionEngine.from_config(config, only=["toxicity"])
    [detector] = engine.detectors
    assert isinstance(detector, ToxicityDetector)
    # built, checked on disk, not loaded: a start with nothing to check never loads it
    assert detector._backend is None and detector._loader is not None
    ok, message = toxicity_status(config)
    assert ok and "backend torch" in message and "(offline)" in message
    engine.detect(comment("see you after school"), ctx)
    assert isinstance(detector._backend, DetoxifyBackend)
    ok, message = toxicity_status(config)
    assert ok and "(torch) loaded" in message


def test_a_disabled_classifier_finds_nothing_and_says_so(tmp_path, ctx):
    config = make_config(tmp_path, enabled=False)
    [detector] = DetectionEngine.from_config(config, only=["toxicity"]).detectors
    assert detector.detect(comment("you idiot"), ctx) == []
    assert toxicity_status(config) == (True, "toxicity classifier: disabled in the configuration")

