"""Image checks: people without photo consent, possibly explicit images, GPS location, bad files.

The photos are real ones shipped with scikit-image (the astronaut Eileen Collins: a person;
coffee and chelsea the cat: no people). No explicit image exists in this project and none may be
added: the explicit-image path is tested with real benign photos scoring low, and with the
threshold forced to 0 so that a benign photo goes down the critical path.
"""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image

from governance_bot.findings import Category, Route, Severity
from governance_bot.items import Item, Media, Person
from governance_bot.registers import RegisterIndex, read_toml
from governance_bot.routing import Router
from rules.base import DetectionContext
from rules.images import (
    HaarFaceDetector,
    ImageDetector,
    ImageRejected,
    gps_coordinates,
    open_checked,
)
from rules.packs import load_pack

skimage_data = pytest.importorskip("skimage.data")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class _NoHistory:
    def thread(self, item: Item, limit: int = 200) -> list[Item]:
        return []

    def prior_findings(self, *args: object, **kwargs: object) -> list[datetime]:
        return []


@pytest.fixture(scope="module")
def registers() -> RegisterIndex:
    return RegisterIndex(read_toml(EXAMPLES / "registers.toml"))


@pytest.fixture(scope="module")
def detector() -> ImageDetector:
    return ImageDetector.from_pack(load_pack("images"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("photos")
    out = {}
    for name in ("astronaut", "coffee", "chelsea"):
        path = folder / f"{name}.jpg"
        Image.fromarray(getattr(skimage_data, name)()).save(path, quality=92)
        out[name] = path
    return out


def _ctx(registers: RegisterIndex, **options: object) -> DetectionContext:
    return DetectionContext(registers=registers, history=_NoHistory(), options=dict(options))


def _post(text: str, *media: Media) -> Item:
    return Item(
        id="p1",
        platform="facebook",
        account="fb-main",
        kind="post",
        author=Person(id="fb:page", handle="brookfieldacademy"),
        created_at=datetime(2026, 6, 1, 12, tzinfo=UTC),
        text=text,
        media=list(media),
    )


def _photo(path: Path, **kw: object) -> Media:
    return Media(local_path=str(path), mime_type="image/jpeg", **kw)


def _by_category(findings: list, category: Category) -> list:
    return [f for f in findings if f.category == category]


# -- people and consent ---------------------------------------------------------------------------


def test_a_photo_of_a_person_with_nobody_named_or_tagged_is_flagged_to_the_account_managers(
    detector: ImageDetector, registers: RegisterIndex, photos: dict[str, Path]
) -> None:
    findings = list(detector.detect(_post("Great day at the space centre!",
                                          _photo(photos["astronaut"])), _ctx(registers)))
    photo = _by_category(findings, Category.unapproved_photo)
    assert len(photo) == 1
    assert photo[0].severity == Severity.medium
    assert photo[0].evidence.detail["faces"] >= 1
    assert "no consent record covers" in photo[0].explanation
    assert Router().route_finding(photo[0]) == Route.account_managers


def test_a_photo_naming_a_learner_without_photo_consent_is_flagged_with_the_register_entry(
    detector: ImageDetector, registers: RegisterIndex, photos: dict[str, Path]
) -> None:
    # Maisie O'Connell (L002) has no photo consent; Jayden Price (L001) has
    text = "Well done Maisie O'Connell and Jayden Price on the science fair!"
    findings = list(detector.detect(_post(text, _photo(photos["astronaut"])), _ctx(registers)))
    photo = _by_category(findings, Category.unapproved_photo)
    assert len(photo) == 1
    assert photo[0].evidence.register_entry == "learner:L002"
    assert photo[0].evidence.detail["learners_without_consent"] == ["L002"]
    assert photo[0].evidence.detail["learners_with_consent"] == ["L001"]


def test_a_learner_named_in_lower_case_is_recognised_through_the_learner_pii_matcher(
    detector: ImageDetector, registers: RegisterIndex, photos: dict[str, Path]
) -> None:
    pytest.importorskip("rules.learner_pii")
    findings = list(detector.detect(_post("well done amira haddad!", _photo(photos["astronaut"])),
                                    _ctx(registers)))
    assert [f.evidence.register_entry for f in findings] == ["learner:L004"]


def test_without_the_learner_pii_rule_register_full_names_are_still_matched(
    registers: RegisterIndex, photos: dict[str, Path], detector: ImageDetector
) -> None:
    simple = ImageDetector(face_detector=detector.face_detector, explicit=None)
    simple._pii = None  # as where rules.learner_pii is not installed
    findings = list(simple.detect(_post("Well done Amira Haddad!", _photo(photos["astronaut"])),
                                  _ctx(registers)))
    assert [f.evidence.register_entry for f in findings] == ["learner:L004"]


def test_a_photo_tagging_a_learner_without_consent_by_handle_is_flagged(
    detector: ImageDetector, registers: RegisterIndex, photos: dict[str, Path]
) -> None:
    media = _photo(photos["astronaut"], tagged=[Person(handle="@amira.h.art")])
    findings = list(detector.detect(_post("Art club!", media), _ctx(registers)))
    photo = _by_category(findings, Category.unapproved_photo)
    assert [f.evidence.register_entry for f in photo] == ["learner:L004"]
    assert "L004 (tagged)" in photo[0].explanation


def test_a_photo_of_learners_who_all_have_photo_consent_is_not_flagged(
    detector: ImageDetector, registers: RegisterIndex, photos: dict[str, Path]
) -> None:
    media = _photo(photos["astronaut"], tagged=[Person(handle="@kacperz")])
    findings = list(detector.detect(_post("Congratulations Jay Price!", media), _ctx(registers)))
    assert _by_category(findings, Category.unapproved_photo) == []


def test_a_photo_pre_approved_by_a_manager_by_its_sha256_is_not_flagged(
    detector: ImageDetector, registers: RegisterIndex, photos: dict[str, Path]
) -> None:
    import hashlib

    digest = hashlib.sha256(photos["astronaut"].read_bytes()).hexdigest()
    item = _post("Maisie O'Connell at the space centre", _photo(photos["astronaut"]))
    assert _by_category(list(detector.detect(item, _ctx(registers))), Category.unapproved_photo)
    approved = _ctx(registers, approved_media_hashes={digest})
    assert _by_category(list(detector.detect(item, approved)), Category.unapproved_photo) == []


@pytest.mark.parametrize("name", ["coffee", "chelsea"])
def test_a_photo_without_people_is_not_flagged_for_consent(
    detector: ImageDetector, registers: RegisterIndex, photos: dict[str, Path], name: str
) -> None:
    item = _post("Maisie O'Connell made this", _photo(photos[name]))
    assert list(detector.detect(item, _ctx(registers))) == []


@pytest.mark.parametrize("make", [HaarFaceDetector, "hog"], ids=["haar", "hog"])
def test_both_face_detectors_find_the_astronaut_and_no_face_in_the_coffee_cup(make: object
                                                                              ) -> None:
    if make == "hog":
        pytest.importorskip("dlib")
        from rules.images import HogFaceDetector

        face_detector = HogFaceDetector()
    else:
        face_detector = HaarFaceDetector()
    assert len(face_detector.faces(skimage_data.astronaut())) >= 1
    assert face_detector.faces(skimage_data.coffee()) == []


# -- explicit images ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_real_benign_photos_score_low_on_the_explicit_image_model(
    detector: ImageDetector, photos: dict[str, Path], name: str
) -> None:
    assert detector.explicit is not None
    with Image.open(photos[name]) as img:
        score = detector.explicit.score(img.convert("RGB"))
    assert 0.0 <= score < 0.2, score


def test_with_the_explicit_threshold_forced_to_0_a_benign_photo_takes_the_critical_path(
    detector: ImageDetector, registers: RegisterIndex, photos: dict[str, Path]
) -> None:
    """Plumbing test: the astronaut photo is benign; threshold 0 forces the explicit-image path."""
    forced = ImageDetector(face_detector=detector.face_detector, explicit=detector.explicit,
                           explicit_threshold=0.0)
    url = "https://cdn.example.com/private/abc123.jpg"
    media = Media(url=url, local_path=str(photos["astronaut"]), mime_type="image/jpeg")
    findings = list(forced.detect(_post("Maisie O'Connell", media), _ctx(registers)))
    assert len(findings) == 1  # nothing else about this image (no consent flag that shows it)
    (finding,) = findings
    assert finding.category == Category.safeguarding
    assert finding.severity == Severity.critical
    assert finding.route == Route.dsl
    assert "Never forwarded, preserved" in finding.explanation
    assert finding.evidence.detail["never_forward"] is True
    assert finding.evidence.detail["preserve"] is True
    text = str(finding.to_dict())
    assert url not in text and "abc123" not in text and "astronaut" not in text


def test_the_explicit_image_finding_never_logs_the_media_url(
    detector: ImageDetector, registers: RegisterIndex, photos: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    forced = ImageDetector(face_detector=None, explicit=detector.explicit, explicit_threshold=0.0)
    url = "https://cdn.example.com/private/zz9.jpg"
    media = Media(url=url, local_path=str(photos["coffee"]), mime_type="image/jpeg")
    with caplog.at_level("DEBUG"):
        list(forced.detect(_post("", media), _ctx(registers)))
    assert "possible explicit image" in caplog.text
    assert url not in caplog.text and str(photos["coffee"]) not in caplog.text


# -- location -------------------------------------------------------------------------------------


def _with_gps(src: Path, dest: Path, lat: tuple[float, float, float], north: bool,
              lon: tuple[float, float, float], east: bool) -> Path:
    with Image.open(src) as img:
        exif = Image.Exif()
        exif[ExifTags.IFD.GPSInfo] = {
            ExifTags.GPS.GPSLatitudeRef: "N" if north else "S",
            ExifTags.GPS.GPSLatitude: lat,
            ExifTags.GPS.GPSLongitudeRef: "E" if east else "W",
            ExifTags.GPS.GPSLongitude: lon,
        }
        img.save(dest, exif=exif)
    return dest


def test_gps_coordinates_in_a_photo_are_a_location_finding(
    detector: ImageDetector, registers: RegisterIndex, photos: dict[str, Path], tmp_path: Path
) -> None:
    # 53deg 48' 0" N, 1deg 33' 0" W: Leeds
    path = _with_gps(photos["coffee"], tmp_path / "gps.jpg", (53.0, 48.0, 0.0), True,
                     (1.0, 33.0, 0.0), False)
    findings = list(detector.detect(_post("Bake sale!", _photo(path)), _ctx(registers)))
    (location,) = _by_category(findings, Category.location)
    assert location.evidence.detail["approximate_latitude"] == pytest.approx(53.8, abs=0.01)
    assert location.evidence.detail["approximate_longitude"] == pytest.approx(-1.55, abs=0.01)
    assert Router().route_finding(location) == Route.account_managers


def test_a_photo_without_gps_metadata_has_no_location_finding(photos: dict[str, Path]) -> None:
    with Image.open(photos["coffee"]) as img:
        assert gps_coordinates(img) is None


# -- bad files ------------------------------------------------------------------------------------


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size (the shape of a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_reported_and_never_decoded(
    detector: ImageDetector, registers: RegisterIndex, photos: dict[str, Path], tmp_path: Path
) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_claiming(100_000, 100_000))
    with pytest.raises(ImageRejected, match="decompression bomb"):
        open_checked(bomb, 25_000_000, 40_000_000)
    item = _post("", Media(local_path=str(bomb), mime_type="image/png"),
                 _photo(photos["astronaut"]))
    findings = list(detector.detect(item, _ctx(registers)))
    unreadable = [f for f in findings if f.evidence.detail.get("check") == "unreadable"]
    assert len(unreadable) == 1 and "decompression bomb" in unreadable[0].explanation
    # processing went on: the second image was still checked
    assert any(f.evidence.detail.get("media_index") == 1 for f in findings)


def test_pillows_own_decompression_bomb_error_is_caught_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.fromarray(np.zeros((64, 64), dtype=np.uint8)).save(path)
    original = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 100  # Pillow itself now treats 4,096 pixels as a bomb
    try:
        with pytest.raises(ImageRejected, match="decompression bomb"):
            open_checked(path, 25_000_000, 40_000_000)
    finally:
        Image.MAX_IMAGE_PIXELS = original


def test_a_file_over_the_size_cap_is_reported_not_decoded(photos: dict[str, Path]) -> None:
    with pytest.raises(ImageRejected, match="over the 1,000-byte limit"):
        open_checked(photos["coffee"], 1_000, 40_000_000)


def test_a_file_that_is_not_an_image_is_reported_with_what_is_wrong(
    detector: ImageDetector, registers: RegisterIndex, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not a jpeg")
    (finding,) = detector.detect(_post("", _photo(junk)), _ctx(registers))
    assert "not an image Pillow can read" in finding.explanation
    assert finding.severity == Severity.low


def test_media_that_was_not_downloaded_is_skipped(
    detector: ImageDetector, registers: RegisterIndex
) -> None:
    item = _post("", Media(url="https://example.com/a.jpg", mime_type="image/jpeg"))
    assert list(detector.detect(item, _ctx(registers))) == []
