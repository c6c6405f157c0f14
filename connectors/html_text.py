"""HTML to readable text for detectors (email bodies, Teams messages, web pages).

Detectors work on what a person would read: scripts, styles and hidden markup are dropped, block
elements become line breaks, and whitespace is collapsed so character spans stay meaningful.
"""

from __future__ import annotations

import re
import warnings

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning

__all__ = ["html_to_text"]

_DROP = ("script", "style", "noscript", "template", "head", "svg")
_BLOCKS = (
    "p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre",
    "section", "article", "header", "footer", "table", "ul", "ol", "hr", "address", "figcaption",
)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{2,}")


def html_to_text(html: str) -> str:
    """The visible text of an HTML fragment or page, one block per line."""
    if not html:
        return ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(html, "html.parser")
    for tag in soup(_DROP):
        tag.decompose()
    for tag in soup.find_all(_BLOCKS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    for img in soup.find_all("img"):
        alt = img.get("alt")
        img.replace_with(f" {alt} " if isinstance(alt, str) and alt.strip() else " ")
    text = soup.get_text()
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n", "\n".join(lines)).strip()
