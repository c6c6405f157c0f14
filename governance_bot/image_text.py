"""Text in images (OCR): what is printed on an item's pictures becomes part of its text.

Policy link: a learner's name and phone number on a photographed certificate, a poster, a meme or
a screenshot posted on an official account breach the policy as plainly as the same words in a
caption, so every text rule must read them.

Where it runs: a pipeline step before the item is archived and checked (the archived version is
what the detectors saw, so evidence spans point into the stored text). Each image the item carries
as a local file (``Media.local_path``, as the image checks read them) is opened with the image
checks' size and pixel caps (``rules/images.py``, the ``[limits]`` of the images rule pack),
scaled down to ``max_side`` pixels, and read by the OCR engine in its own process with a time
limit; the recognised text is added as a text part with source ``"image text"`` (docs/items.md),
so a finding on it says "text in the image". Results are cached by the file's hash, so polling an
unchanged item again does not read its images again; the content hash leaves image text out
(``governance_bot.items.content_hash``), so a recognition that differs between runs is not an
edit. An image that cannot be read (too big, damaged, over time) is a problem line naming the
item and the image and why, never silently skipped.

Engine: Debian's ``tesseract-ocr`` through ``pytesseract``, chosen over rapidocr-onnxruntime on the
labelled set of ``bench/ocr.py`` (44 images; bench/RESULTS.md, "ocr"): word precision 0.92 and
recall 0.90 against 0.74 and 0.40, a learner's name and phone number both read on 17 of 25
images against 12, about 1.2 s an image against 11 s on this shared 2-core machine, and no
second OpenCV (rapidocr needs opencv-python, which would replace the headless build whose face
cascades the image checks use). rapidocr's English output often runs words together
("Certificateofachievement"), which word-based detectors cannot match. Tesseract's weak spot is
rotated text (recall 0.22 on text turned 12 to 90 degrees). Offline: the language data is the
Debian package's.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from governance_bot.items import IMAGE_TEXT, Item, with_parts
from rules.images import ImageRejected, open_checked
from rules.packs import ImagesPack

__all__ = ["ImageTextReader", "OcrEngine", "OcrUnavailable", "TesseractEngine"]

log = logging.getLogger(__name__)

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff")
_NOISE = re.compile(r"[ \t]+")


class OcrUnavailable(Exception):
    """No OCR engine can run here (the package or the program is not installed)."""


class OcrFailed(Exception):
    """One image could not be read (the engine failed or ran out of time)."""


class OcrEngine(Protocol):
    name: str

    def read(self, image: Image.Image, timeout: float) -> str:
        """The text in ``image``; OcrFailed when it cannot be read within ``timeout`` s."""
        ...


class TesseractEngine:
    """Tesseract (Debian ``tesseract-ocr``) through pytesseract: each image in its own process,
    killed at the time limit."""

    name = "tesseract"

    def __init__(self, lang: str = "eng", psm: int = 3):
        try:
            import pytesseract
        except ImportError as exc:
            raise OcrUnavailable("pytesseract is not installed") from exc
        try:
            self.version = str(pytesseract.get_tesseract_version())
        except (pytesseract.TesseractNotFoundError, OSError) as exc:
            raise OcrUnavailable("the tesseract program is not installed (Debian package "
                                 "tesseract-ocr)") from exc
        self._tess = pytesseract
        self.lang = lang
        self.config = f"--psm {psm}"

    def read(self, image: Image.Image, timeout: float) -> str:
        try:
            return str(self._tess.image_to_string(image, lang=self.lang, config=self.config,
                                                  timeout=timeout))
        except RuntimeError as exc:  # pytesseract's "Tesseract process timeout"
            raise OcrFailed(f"recognition took longer than {timeout:g} s") from exc
        except (self._tess.TesseractError, OSError) as exc:
            raise OcrFailed(f"the OCR engine failed ({type(exc).__name__})") from exc


def _clean(text: str) -> str:
    lines = (_NOISE.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


@dataclass(slots=True)
class ImageTextReader:
    """Adds the text read from an item's images to the item (see the module docstring)."""

    engine: OcrEngine
    max_file_bytes: int = 25_000_000
    max_pixels: int = 40_000_000
    max_side: int = 2500  # larger images are scaled down first (time grows with the area)
    timeout_seconds: float = 20.0
    max_images_per_item: int = 4
    cache_size: int = 4096
    _cache: OrderedDict[str, str] = field(default_factory=OrderedDict)

    @classmethod
    def from_pack(cls, pack: dict[str, Any] | ImagesPack, engine: OcrEngine | None = None
                  ) -> ImageTextReader | None:
        """From the images rule pack (:class:`rules.packs.ImagesPack`, where the defaults are):
        its ``[limits]`` and ``[image_text]`` tables. None when ``image_text.enabled`` is false;
        OcrUnavailable when no engine can run."""
        model = ImagesPack.load(pack)
        settings = model.image_text
        if not settings.enabled:
            return None
        return cls(
            engine=engine or TesseractEngine(lang=settings.language),
            max_file_bytes=model.limits.max_file_bytes,
            max_pixels=model.limits.max_pixels,
            max_side=settings.max_side,
            timeout_seconds=settings.timeout_seconds,
            max_images_per_item=settings.max_images_per_item,
        )

    def enrich(self, item: Item) -> tuple[Item, list[str]]:
        """``item`` with a text part per image that has text in it, and the problems met."""
        if any(p.source == IMAGE_TEXT for p in item.parts):
            return item, []  # read already (an item passed on twice)
        images = [(index, Path(m.local_path)) for index, m in enumerate(item.media)
                  if m.local_path and ((m.mime_type or "").startswith("image/")
                                       or m.local_path.lower().endswith(_IMAGE_SUFFIXES))]
        if not images:
            return item, []
        problems: list[str] = []
        extras: list[tuple[str, str, str]] = []
        for index, path in images[: self.max_images_per_item]:
            try:
                text = self._read(path)
            except (ImageRejected, OcrFailed) as exc:
                problems.append(f"item {item.key}: image {index}: its text was not read: {exc}")
                log.warning("image text: item %s image %d not read: %s", item.key, index, exc)
                continue
            if text:
                extras.append((IMAGE_TEXT, text, str(index)))
        if len(images) > self.max_images_per_item:
            skipped = len(images) - self.max_images_per_item
            problems.append(f"item {item.key}: the text of {skipped} more image(s) was not read "
                            f"(over max_images_per_item = {self.max_images_per_item})")
        return (with_parts(item, extras) if extras else item), problems

    def _read(self, path: Path) -> str:
        try:
            key = hashlib.sha256(path.read_bytes()).hexdigest() \
                if path.stat().st_size <= self.max_file_bytes else ""
        except OSError as exc:
            raise ImageRejected(f"cannot read the file ({exc.strerror})") from None
        if key and key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        with open_checked(path, self.max_file_bytes, self.max_pixels) as img:
            image = img.convert("RGB")
        if max(image.size) > self.max_side:
            image.thumbnail((self.max_side, self.max_side))
        text = _clean(self.engine.read(image, self.timeout_seconds))
        if key:
            self._cache[key] = text
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return text
