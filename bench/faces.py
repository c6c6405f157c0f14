"""Face detectors for the image checks: OpenCV Haar cascade vs dlib HOG, side by side.

    .venv/bin/python bench/run.py faces       # needs opencv-python-headless and dlib-bin

Data, all shipped with scikit-image (and matplotlib if installed), nothing downloaded:
* ``skimage.data.lfw_subset()``: 100 real faces and 100 non-face patches from Labeled Faces in the
  Wild, 25x25 grey; scaled up to 100x100 for both detectors (HOG's smallest face is 80 px);
* scikit-image's photos: astronaut and cameraman (people), matplotlib's grace_hopper.jpg (a person),
  and coffee, chelsea (cat), rocket, coins, clock, moon, page, text, brick, grass, gravel, horse,
  hubble_deep_field, immunohistochemistry (no people).

An image counts as "has a face" when the detector returns at least one box. Prints precision,
recall and time per image for each detector.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from bench.harness import Bench
from rules.images import HaarFaceDetector, HogFaceDetector

SKIPPED: list[str] = []
WITH_PEOPLE = ["astronaut", "camera"]
WITHOUT_PEOPLE = [
    "coffee", "chelsea", "rocket", "coins", "clock", "moon", "page", "text", "brick", "grass",
    "gravel", "horse", "hubble_deep_field", "immunohistochemistry",
]


def _rgb(array: np.ndarray) -> np.ndarray:
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).astype(np.uint8) if array.max() <= 1 else \
            array.astype(np.uint8)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    return array[..., :3]


def photos() -> list[tuple[str, np.ndarray, bool]]:
    from skimage import data

    out = []
    for name in WITH_PEOPLE + WITHOUT_PEOPLE:
        try:
            out.append((name, _rgb(getattr(data, name)()), name in WITH_PEOPLE))
        except Exception as exc:  # a dataset that needs a download: left out, said so
            SKIPPED.append(f"{name} ({type(exc).__name__})")
    try:
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
            out.append(("grace_hopper", np.asarray(Image.open(fh).convert("RGB")), True))
    except Exception as exc:
        SKIPPED.append(f"grace_hopper ({type(exc).__name__})")
    return out


def lfw() -> list[tuple[str, np.ndarray, bool]]:
    from skimage import data

    images = data.lfw_subset()  # first 100 faces, then 100 non-faces
    out = []
    for i, img in enumerate(images):
        big = Image.fromarray((img * 255).astype(np.uint8)).resize((100, 100), Image.BILINEAR)
        out.append((f"lfw{i:03d}", _rgb(np.asarray(big)), i < 100))
    return out


def measure(detect: Callable[[np.ndarray], int], cases: list[tuple[str, np.ndarray, bool]]
            ) -> dict[str, float | list[str]]:
    tp = fp = fn = tn = 0
    false_hits: list[str] = []
    misses: list[str] = []
    start = time.perf_counter()
    for name, img, has_face in cases:
        found = detect(img) > 0
        if has_face and found:
            tp += 1
        elif has_face:
            fn += 1
            misses.append(name)
        elif found:
            fp += 1
            false_hits.append(name)
        else:
            tn += 1
    elapsed = time.perf_counter() - start
    return {
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "ms_per_image": 1000 * elapsed / len(cases),
        "false_hits": false_hits, "misses": misses,
    }


def run(bench: Bench, args: argparse.Namespace) -> None:
    detectors: dict[str, Callable[[np.ndarray], int]] = {}
    haar = HaarFaceDetector()
    detectors["opencv Haar cascade (minNeighbors=5)"] = lambda img: len(haar.faces(img))
    haar3 = HaarFaceDetector(min_neighbors=3)
    detectors["opencv Haar cascade (minNeighbors=3)"] = lambda img: len(haar3.faces(img))
    try:
        hog = HogFaceDetector()
        detectors["dlib HOG (upsample=1)"] = lambda img: len(hog.faces(img))
    except ImportError:
        bench.note("dlib-bin is not installed: only the Haar cascade is measured")
    sets = {"LFW faces vs non-faces (200, 100x100)": lfw(), "scikit-image photos": photos()}
    summary = []
    for set_name, cases in sets.items():
        n_pos = sum(1 for c in cases if c[2])
        rows = []
        for det_name, fn in detectors.items():
            fn(cases[0][1])  # warm up
            m = measure(fn, cases)
            fh = ", ".join(m["false_hits"][:6]) or "-"  # type: ignore[index]
            ms = ", ".join(m["misses"][:6]) or "-"  # type: ignore[index]
            if len(m["misses"]) > 6:  # type: ignore[arg-type]
                ms += " ..."
            rows.append([det_name, m["precision"], m["recall"], m["tp"], m["fp"], m["fn"],
                         m["ms_per_image"], fh, ms])
            if set_name.startswith("LFW"):
                summary.append(f"{det_name}: precision {m['precision']:.2f}, recall "
                               f"{m['recall']:.2f}")
        bench.table(f"{set_name}: {len(cases)} images, {n_pos} with faces",
                    ["detector", "precision", "recall", "TP", "FP", "FN", "ms/image",
                     "false hits", "missed"], rows)
    if SKIPPED:
        bench.note(f"Left out (they need a download): {', '.join(SKIPPED)}.")
    bench.target("face detector chosen by measured precision/recall on LFW (issue 6)",
                 "; ".join(summary), None)


if __name__ == "__main__":
    raise SystemExit("run it with: .venv/bin/python bench/run.py faces")
