"""Text in images (OCR) reaches the detectors, and evidence says where a finding's words were.

Policy link: no identifying details of learners on official accounts, whatever form they take: a
learner's name and phone number printed on a photographed certificate or a poster is flagged to
the account managers exactly like the same words in a caption.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select

from connectors.mastodon import status_item
from governance_bot.config import Config
from governance_bot.image_text import ImageTextReader, OcrUnavailable, TesseractEngine
from governance_bot.items import IMAGE_TEXT, Item, content_hash
from governance_bot.pipeline import ScanReport
from governance_bot.runtime import Runtime
from governance_bot.storage import models as m

T0 = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
JAYDEN = "learner:L001"  # Jayden Price in the example registers


def _engine() -> TesseractEngine:
    try:
        return TesseractEngine()
    except OcrUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must install tesseract-ocr (.ci/run): {exc}")
        pytest.skip(f"no OCR engine here: {exc}")


@pytest.fixture
def tesseract() -> TesseractEngine:
    return _engine()


def certificate(path: Path, lines: list[str], size: int = 44) -> Path:
    """A certificate as a school would print it: dark text on a light page."""
    font = ImageFont.load_default(size=size)
    width = max(int(font.getlength(t)) for t in lines) + 160
    img = Image.new("RGB", (width, (size * 2) * len(lines) + 160), (252, 250, 240))
    draw = ImageDraw.Draw(img)
    for n, text in enumerate(lines):
        draw.text((80, 80 + n * size * 2), text, font=font, fill=(25, 25, 60))
    img.save(path)
    return path


def official_post(native_id: str, text: str, image: Path | None) -> Item:
    media = [{"url": f"https://cdn.example/{native_id}.png", "mime_type": "image/png",
              "local_path": str(image)}] if image else []
    return Item.model_validate({
        "id": native_id, "platform": "facebook", "account": "brookfield-facebook",
        "kind": "post", "author": {"id": "104000000001", "handle": "BrookfieldAcademy"},
        "created_at": T0.isoformat(), "visibility": "public", "text": text, "media": media})


def test_a_learners_name_and_phone_printed_on_a_posted_image_are_flagged_as_text_in_the_image(
    backend_config: Callable[..., Config], tmp_path: Path, tesseract: TesseractEngine,
) -> None:
    image = certificate(tmp_path / "certificate.png",
                        ["Certificate of achievement", "Jayden Price", "Call 07700 900123"])
    rt = Runtime.from_config(backend_config(), with_connectors=False)
    assert rt.pipeline.image_text is not None, "the OCR step is on by default"
    change = rt.pipeline.process(official_post("p1", "Well done to our athletes!", image))
    assert change is not None and change.created
    with rt.db.session() as s:
        findings = s.execute(select(m.Finding)).scalars().all()
    pii = [f for f in findings if f.category == "learner_pii"]
    assert pii, [f.category for f in findings]
    assert all(f.evidence["detail"]["where"] == "text in the image" for f in pii)
    assert {f.evidence["register_entry"] for f in pii} >= {JAYDEN}
    assert all("text in the image" in f.explanation for f in pii)


def test_the_archived_version_holds_the_image_text_the_detectors_read(
    backend_config: Callable[..., Config], tmp_path: Path, tesseract: TesseractEngine,
) -> None:
    image = certificate(tmp_path / "poster.png", ["Open evening Thursday"])
    rt = Runtime.from_config(backend_config(), with_connectors=False)
    item = official_post("p2", "See you there", image)
    (enriched,) = rt.pipeline.read_images([item], ScanReport())
    part = next(p for p in enriched.parts if p.source == IMAGE_TEXT)
    assert "Open evening" in enriched.text[part.start:part.end] and part.ref == "0"
    assert enriched.text.startswith("See you there")
    # the text read from the image is not part of the edit check: the image's hash is
    assert content_hash(enriched) == content_hash(item)


def test_an_image_over_the_pixel_cap_is_reported_not_read_and_the_item_still_checked(
    tmp_path: Path, tesseract: TesseractEngine,
) -> None:
    big = tmp_path / "huge.png"
    Image.new("L", (3000, 3000), 255).save(big)
    reader = ImageTextReader(engine=tesseract, max_pixels=1_000_000)
    item, problems = reader.enrich(official_post("p3", "Term dates", big))
    assert item.text == "Term dates" and not item.parts
    (problem,) = problems
    assert "facebook:brookfield-facebook:p3" in problem and "image 0" in problem
    assert "pixel" in problem


def test_reading_an_image_is_bounded_in_time(tmp_path: Path, tesseract: TesseractEngine) -> None:
    image = certificate(tmp_path / "slow.png", ["Certificate of achievement"] * 8)
    reader = ImageTextReader(engine=tesseract, timeout_seconds=0.001)
    item, problems = reader.enrich(official_post("p4", "", image))
    assert not item.parts
    assert problems and "longer than" in problems[0]


def test_an_unchanged_image_is_not_read_twice(tmp_path: Path, tesseract: TesseractEngine) -> None:
    image = certificate(tmp_path / "once.png", ["Jayden Price"])
    calls: list[int] = []

    class Counting:
        name = "counting"

        def read(self, img: Image.Image, timeout: float) -> str:
            calls.append(1)
            return tesseract.read(img, timeout)

    reader = ImageTextReader(engine=Counting())
    first, _ = reader.enrich(official_post("p5", "", image))
    again, _ = reader.enrich(official_post("p5", "", image))
    assert first.text == again.text and "Jayden" in first.text
    assert len(calls) == 1


def test_a_learners_name_in_poll_options_is_flagged_as_in_the_poll_options(
    backend_config: Callable[..., Config],
) -> None:
    status = {
        "id": "9001", "created_at": "2026-11-18T10:00:00Z", "in_reply_to_id": None,
        "visibility": "public", "spoiler_text": "", "content": "<p>Who should captain the "
        "team?</p>", "account": {"id": "1", "acct": "brookfield"}, "media_attachments": [],
        "mentions": [], "url": "https://social.example/@brookfield/9001",
        "poll": {"id": "7", "options": [{"title": "Jayden Price"}, {"title": "Someone else"}]},
    }
    item = status_item(status, "brookfield-mastodon")
    assert item is not None
    rt = Runtime.from_config(backend_config(), with_connectors=False)
    rt.pipeline.process(item)
    with rt.db.session() as s:
        findings = s.execute(select(m.Finding)).scalars().all()
    pii = [f for f in findings if f.category == "learner_pii"]
    assert pii and all(f.evidence["detail"]["where"] == "in the poll options" for f in pii)


def test_tesseract_is_the_engine_ci_installs() -> None:
    if os.environ.get("CI"):
        assert shutil.which("tesseract"), ".ci/run must install tesseract-ocr"
    else:
        pytest.skip("checked in CI")
