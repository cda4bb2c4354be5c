"""Imported comment HTML into what we store: `body` (text) and `body_html`.

WordPress stores a comment as the author typed it (HTML allowed, paragraphs as
blank lines, shown through `wpautop`); Disqus exports ready HTML. We keep the
display faithful by sanitising the *source HTML* with the very allowlist our own
renderer ends with (`rendering.sanitize`: paragraphs, line breaks, emphasis,
links with rel="nofollow ugc ...", code, lists, quotes; everything else, such as
<script>, <img>, styles and event attributes, is dropped). `body` gets a plain
text version (links as Markdown), which moderators search, Akismet reads on
`--check`, and an edit would start from.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from comments.rendering import sanitize

_BLOCK = re.compile(r"<(p|div|blockquote|pre|ul|ol|li|h[1-6]|table)\b", re.IGNORECASE)
_BLANK_LINES = re.compile(r"\n\s*\n")
BLOCK_TAGS = {"p", "div", "blockquote", "pre", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5"}


def autop(html: str) -> str:
    """Paragraphs for text that has none, as WordPress's wpautop shows it."""
    text = html.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text or _BLOCK.search(text):
        return text
    paragraphs = [part.strip() for part in _BLANK_LINES.split(text) if part.strip()]
    return "".join(f"<p>{part.replace(chr(10), '<br>')}</p>" for part in paragraphs)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._links: list[tuple[str, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag == "a":
            self._links.append((dict(attrs).get("href") or "", len(self.parts)))

    def handle_endtag(self, tag: str) -> None:
        if tag in BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            text = "".join(self.parts[start:]).strip()
            if href.startswith(("http://", "https://")) and text and text != href:
                self.parts[start:] = [f"[{text}]({href})"]

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def text(self) -> str:
        joined = "".join(self.parts).replace("\xa0", " ")
        lines = [line.rstrip() for line in joined.split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return extractor.text()


def import_body(source_html: str) -> tuple[str, str]:
    """(body, body_html) for a comment imported as HTML."""
    html = autop(source_html)
    body_html = sanitize(html).strip()
    body = html_to_text(body_html)
    return body, body_html
