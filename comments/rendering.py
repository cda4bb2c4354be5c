"""Turn a comment body as typed into the HTML that is shown."""

from __future__ import annotations

import re

import nh3
from django.utils.html import escape, urlize

LINK_REL = "nofollow ugc noopener noreferrer"
_ALLOWED_TAGS = {"p", "br", "a"}
_ALLOWED_ATTRIBUTES = {"a": {"href"}}
_URL_SCHEMES = {"http", "https", "mailto"}
_BLANK_LINES = re.compile(r"\n[ \t]*\n")  # linear: no nested quantifiers


def render_body(body: str) -> str:
    """Escaped text: paragraphs, line breaks and safe links, sanitised last."""
    text = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    paragraphs = [part.strip("\n") for part in _BLANK_LINES.split(text) if part.strip()]
    html = "".join(
        "<p>" + urlize(escape(paragraph), autoescape=False).replace("\n", "<br>") + "</p>"
        for paragraph in paragraphs
    )
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        link_rel=LINK_REL,
    )
