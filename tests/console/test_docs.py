"""The README links the console's screenshots at desktop and phone widths, made by the script in
docs/ (docs/make_screenshots.py, which photographs the example organisation in Chromium)."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_links_screenshots_at_desktop_and_phone_widths():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = re.findall(r"\(docs/screenshots/([\w-]+\.png)\)", readme)
    assert {n.rsplit("-", 1)[0] for n in linked} >= {"queue", "case", "search", "report",
                                                      "manager-case"}
    widths = {}
    for name in linked:
        path = ROOT / "docs" / "screenshots" / name
        assert path.is_file(), f"run docs/make_screenshots.py and commit {path.name}"
        widths[name] = Image.open(path).size[0]
    assert {w for n, w in widths.items() if n.endswith("-desktop.png")} == {1280}
    assert {w for n, w in widths.items() if n.endswith("-phone.png")} == {390}
    assert "docs/make_screenshots.py" in readme
