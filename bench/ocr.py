"""OCR engines compared on one small labelled image set: recognition quality and speed.

Policy link: a learner's name or phone number printed on a certificate, poster, meme or
screenshot posted on an official account is the same breach as the words in a caption, so text
in images must reach the detectors. This measures the two offline engines the project can ship:

* ``rapidocr``: rapidocr-onnxruntime (PP-OCR models inside the wheel);
* ``tesseract``: Debian's tesseract-ocr through pytesseract.

The image set is made here with Pillow, labelled by construction (the text drawn is the label):
rendered lines at several sizes and fonts, rotated text, "photographs" of printed pages
(perspective, blur, uneven light, noise, JPEG), poster-style text on busy backgrounds, low
contrast text, and images with no text at all (anything read from them is a false positive).
Scores are per word (lower-cased letters and digits): precision = words read that are in the
label / words read; recall = label words read / label words. "Details found" counts images whose
invented learner name and phone number were both read (the finding the policy needs).

Each engine reads the saved images in its own process: rapidocr-onnxruntime depends on
opencv-python, which would replace the project's opencv-python-headless<5 (whose Haar cascades the
face checks use), so it is measured from a separate virtual environment given with
``--rapidocr-python``.

    .venv/bin/python bench/run.py ocr [--rapidocr-python /tmp/ocrvenv/bin/python]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation"))
FONTS = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "LiberationSans-Regular.ttf",
         "LiberationSerif-Bold.ttf", "DejaVuSansCondensed-Bold.ttf")
LINES = [
    ("Certificate of achievement awarded to Maisie Okafor", "maisie okafor"),
    ("Well done Oliver Brennan Year 9 call 07700 900123", "oliver brennan"),
    ("Sports day winner Priya Whitfield phone 07700 900456", "priya whitfield"),
    ("Tom Ashworth won the 800m see you Friday", "tom ashworth"),
    ("Ruby Castellano Year 11 contact 07700 900789", "ruby castellano"),
    ("Open evening Thursday from six in the main hall", ""),
]
WORD = re.compile(r"[a-z0-9]+")


@dataclass(slots=True)
class Sample:
    name: str
    kind: str
    image: Image.Image
    label: str  # every word drawn
    person: str  # the invented learner's name drawn ("" for none)
    phone: str  # digits of the phone number drawn ("" for none)


def _font(name: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for folder in FONT_DIRS:
        if (folder / name).exists():
            return ImageFont.truetype(str(folder / name), size)
    return ImageFont.load_default(size=size)


def _phone(text: str) -> str:
    match = re.search(r"07700 ?\d{6}", text)
    return match.group(0).replace(" ", "") if match else ""


def _line(text: str, font_name: str, size: int, fg: str = "black", bg: str = "white",
          pad: int = 20) -> Image.Image:
    font = _font(font_name, size)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad), bg)
    ImageDraw.Draw(img).text((pad - left, pad - top), text, font=font, fill=fg)
    return img


def _page(lines: list[str], font_name: str, size: int) -> Image.Image:
    font = _font(font_name, size)
    width = max(int(font.getlength(t)) for t in lines) + 120
    height = (size + size // 2) * len(lines) + 120
    img = Image.new("RGB", (width, height), (250, 250, 245))
    draw = ImageDraw.Draw(img)
    for n, text in enumerate(lines):
        draw.text((60, 60 + n * (size + size // 2)), text, font=font, fill=(20, 20, 20))
    return img


def _photograph(img: Image.Image, rng: random.Random) -> Image.Image:
    """A page as a phone camera sees it: tilted in perspective, soft, unevenly lit, noisy, JPEG."""
    w, h = img.size
    big = Image.new("RGB", (int(w * 1.3), int(h * 1.3)), (90, 80, 70))
    big.paste(img, (int(w * 0.15), int(h * 0.15)))
    w2, h2 = big.size
    d = 0.06
    quad = (rng.uniform(0, d) * w2, rng.uniform(0, d) * h2,
            rng.uniform(0, d) * w2, h2 - rng.uniform(0, d) * h2,
            w2 - rng.uniform(0, d) * w2, h2 - rng.uniform(0, d) * h2,
            w2 - rng.uniform(0, d) * w2, rng.uniform(0, d) * h2)
    out = big.transform((w2, h2), Image.Transform.QUAD, quad, Image.Resampling.BICUBIC)
    out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.2)))
    light = Image.linear_gradient("L").resize(out.size).point(lambda v: 150 + v // 3)
    out = Image.composite(out, Image.new("RGB", out.size, (0, 0, 0)), light)
    noise = Image.effect_noise(out.size, 18).convert("RGB")
    out = Image.blend(out, noise, 0.08)
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=55)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _busy_background(size: tuple[int, int], rng: random.Random) -> Image.Image:
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(40):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        r = rng.randrange(10, 80)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)  # type: ignore[arg-type]
    return img.filter(ImageFilter.GaussianBlur(2))


def image_set(seed: int = 7) -> list[Sample]:
    """The labelled set (deterministic)."""
    rng = random.Random(seed)
    out: list[Sample] = []

    def add(name: str, kind: str, img: Image.Image, lines: list[tuple[str, str]]) -> None:
        label = " ".join(t for t, _ in lines)
        person = next((p for _, p in lines if p), "")
        out.append(Sample(name, kind, img, label, person, _phone(label)))

    for n, size in enumerate((12, 16, 24, 40)):
        for font in FONTS[:3]:
            text, person = LINES[(n + FONTS.index(font)) % len(LINES)]
            add(f"line-{font.split('.')[0]}-{size}px", "rendered line",
                _line(text, font, size), [(text, person)])
    for n, angle in enumerate((5, 12, 30, 90)):
        for font in FONTS[1:3]:
            text, person = LINES[(n + 1) % 5]
            img = _line(text, font, 28).rotate(angle, expand=True, fillcolor="white")
            add(f"rotated-{angle}-{font.split('.')[0]}", "rotated", img, [(text, person)])
    for n in range(8):
        chosen = [LINES[(n + k) % len(LINES)] for k in range(4)]
        page = _page([t for t, _ in chosen], FONTS[n % len(FONTS)], 22 + 2 * (n % 3))
        add(f"photo-page-{n}", "photographed page", _photograph(page, rng), chosen)
    for n in range(4):
        text, person = LINES[n]
        line = _line(text, FONTS[4], 36, fg="white", bg="black", pad=14)
        bg = _busy_background((line.width + 80, line.height + 160), rng)
        bg.paste(line, (40, 80))
        add(f"poster-{n}", "poster", bg, [(text, person)])
    for n in range(4):
        text, person = LINES[(n + 2) % 5]
        add(f"low-contrast-{n}", "low contrast",
            _line(text, FONTS[n % 3], 26, fg=(150, 150, 150), bg=(190, 190, 190)),  # type: ignore[arg-type]
            [(text, person)])
    for n in range(4):
        add(f"no-text-{n}", "no text", _busy_background((480, 360), rng), [])
    return out


# --- engines -------------------------------------------------------------------------------


def rapidocr_engine() -> Callable[[Image.Image], str]:
    import numpy as np
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR()

    def read(img: Image.Image) -> str:
        result, _ = engine(np.asarray(img.convert("RGB"))[:, :, ::-1])
        return "\n".join(r[1] for r in result or [])

    return read


def tesseract_engine() -> Callable[[Image.Image], str]:
    import pytesseract

    def read(img: Image.Image) -> str:
        return str(pytesseract.image_to_string(img, lang="eng", config="--psm 3"))

    return read


ENGINES = {"rapidocr": rapidocr_engine, "tesseract": tesseract_engine}


def _words(text: str) -> Counter[str]:
    return Counter(WORD.findall(text.lower()))


def score(samples: list[Sample], read: Callable[[Image.Image], str],
          seconds: dict[str, float]) -> dict[str, Any]:
    tp = predicted = expected = 0
    details = with_details = 0
    times: list[float] = []
    by_kind: dict[str, list[float]] = {}
    for sample in samples:
        sample.image.info["name"] = sample.name
        text = read(sample.image)
        times.append(seconds[sample.name])
        got, want = _words(text), _words(sample.label)
        hit = sum((got & want).values())
        tp += hit
        predicted += sum(got.values())
        expected += sum(want.values())
        if want:
            by_kind.setdefault(sample.kind, []).append(hit / sum(want.values()))
        if sample.person and sample.phone:
            with_details += 1
            digits = re.sub(r"\D", "", text)
            name_ok = all(w in got for w in sample.person.split())
            if name_ok and sample.phone in digits:
                details += 1
    times.sort()
    return {
        "precision": round(tp / predicted, 3) if predicted else 1.0,
        "recall": round(tp / expected, 3) if expected else 1.0,
        "details_found": f"{details}/{with_details}",
        "recall_by_kind": {k: round(sum(v) / len(v), 3) for k, v in sorted(by_kind.items())},
        "seconds_per_image_mean": round(sum(times) / len(times), 3),
        "seconds_per_image_median": round(times[len(times) // 2], 3),
        "seconds_per_image_max": round(times[-1], 3),
    }


QUICK = ["--engines", "tesseract"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engines", default="rapidocr,tesseract")
    parser.add_argument("--rapidocr-python", default=None,
                        help="a Python with rapidocr-onnxruntime installed (a separate venv)")


def _child(engine: str, folder: Path) -> None:
    """Read every image in ``folder`` with ``engine``; print {name: [text, seconds]}."""
    read = ENGINES[engine]()
    images = sorted(folder.glob("*.png"))
    read(Image.open(images[0]))  # load the models before timing
    out = {}
    for path in images:
        img = Image.open(path).convert("RGB")
        start = time.perf_counter()
        text = read(img)
        out[path.stem] = [text, time.perf_counter() - start]
    print(json.dumps(out))


def run(bench: Any, args: argparse.Namespace) -> None:
    import os
    import subprocess
    import sys
    import tempfile

    samples = image_set()
    bench.param(images=len(samples), kinds=dict(Counter(s.kind for s in samples)))
    rows = []
    with tempfile.TemporaryDirectory(prefix="gb-bench-ocr-") as tmp:
        folder = Path(tmp)
        for s in samples:
            s.image.save(folder / f"{s.name}.png")
        for engine in args.engines.split(","):
            python = args.rapidocr_python if engine == "rapidocr" else sys.executable
            if python is None:
                bench.note(f"{engine}: not measured (give --rapidocr-python: a venv with "
                           "rapidocr-onnxruntime)")
                continue
            done = subprocess.run([python, __file__, "--child", engine, str(folder)],
                                  capture_output=True, text=True, env=dict(os.environ))
            if done.returncode != 0:
                bench.note(f"{engine}: could not run ({done.stderr.strip()[-300:]})")
                continue
            texts = json.loads(done.stdout.strip().splitlines()[-1])
            got = score(samples, lambda img, t=texts: t[img.info["name"]][0],
                        seconds={k: v[1] for k, v in texts.items()})
            bench.record(**{engine: got})
            rows.append([engine, got["precision"], got["recall"], got["details_found"],
                         got["seconds_per_image_mean"], got["seconds_per_image_median"],
                         got["seconds_per_image_max"],
                         ", ".join(f"{k} {v}" for k, v in got["recall_by_kind"].items())])
    bench.table("Word precision and recall, details found, seconds per image",
                ["engine", "precision", "recall", "name + phone found", "s/image mean",
                 "s/image median", "s/image max", "recall by kind"], rows)


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2], Path(sys.argv[3]))
