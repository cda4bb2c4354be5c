"""Turn a comment body as typed into the HTML that is shown.

A small Markdown subset (emphasis, links, inline code and code blocks, lists,
quotes, line breaks; no images, no raw HTML) rendered by markdown-it-py, then
sanitised by nh3 against an allowlist as the very last step.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt

LINK_REL = "nofollow ugc noopener noreferrer"
ALLOWED_TAGS = {
    "p", "br", "a", "em", "strong", "code", "pre", "ul", "ol", "li", "blockquote",
}  # fmt: skip
# "*": nh3 otherwise keeps `title` and `lang` on every tag.
ALLOWED_ATTRIBUTES = {"a": {"href"}, "ol": {"start"}, "*": set()}
URL_SCHEMES = {"http", "https", "mailto"}

# Linking bare URLs costs more than linear time on URL-dense text; past this many
# URL-like tokens (a comment the link rule holds anyway) they stay plain text.
MAX_LINKIFIED_URLS = 50


def _parser(linkify: bool) -> MarkdownIt:
    parser = MarkdownIt(
        "zero", {"html": False, "linkify": linkify, "breaks": True, "maxNesting": 20}
    ).enable(["emphasis", "link", "backticks", "fence", "code", "list", "blockquote"])
    parser.enable(["newline", "escape", *(["linkify"] if linkify else [])])
    if linkify:
        parser.linkify.set({"fuzzy_email": True, "fuzzy_link": True})
    return parser


_markdown = _parser(linkify=True)
_markdown_without_linkify = _parser(linkify=False)


# A superset of linkify-it's own pre-test (`LinkifyIt.pretest`): that test matches a
# schema ("http:", "https:", "ftp:", "mailto:", "//"), "localhost", "www.", a dot
# followed by a TLD or digits, or "@". Each of those holds ":" , "//", "@", "www.",
# "localhost" or a dot followed by something other than white space. The library's
# test runs a regular expression of every TLD over the text (about 100 µs for a short
# comment, 40 % of rendering it); this one is a few µs. Text it finds nothing in holds
# no link, and renders the same without the linkify rule (a test keeps it so).
_LINK_HINT = re.compile(r"[:@]|//|\.\S|www\.|localhost", re.IGNORECASE)


def may_hold_link(text: str) -> bool:
    """False only if linkify could find no link anywhere in `text`."""
    return _LINK_HINT.search(text) is not None


def url_like_tokens(text: str) -> int:
    lowered = text.lower()
    return lowered.count("://") + lowered.count("www.")


def _absolute_links_only(tag: str, attribute: str, value: str) -> str | None:
    """Keep an href only if it names one of our schemes; relative links go too."""
    if attribute == "href":
        scheme = urlsplit(value).scheme.lower()
        return value if scheme in URL_SCHEMES else None
    return value


def sanitize(html: str) -> str:
    # U+FEFF is dropped by HTML parsers at the start of a document only; drop it
    # everywhere so sanitising twice gives the same result.
    return nh3.clean(
        html.replace("\ufeff", ""),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_absolute_links_only,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
    )


def render_body(body: str) -> str:
    """Markdown subset to HTML; sanitising is always the last transform."""
    text = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    linkify = may_hold_link(text) and url_like_tokens(text) <= MAX_LINKIFIED_URLS
    parser = _markdown if linkify else _markdown_without_linkify
    return sanitize(parser.render(text)).strip()
