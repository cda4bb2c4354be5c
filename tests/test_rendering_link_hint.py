"""The cheap link pre-check in front of linkify (comments.rendering.may_hold_link).

Text it clears is rendered without the linkify rule, so it must never clear text in
which linkify-it would find a link: it has to match wherever the library's own
pre-test matches, and rendering must come out the same as with linkify always on.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from comments import rendering
from comments.rendering import may_hold_link, render_body, sanitize

SETTINGS = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LINKIFY = rendering._markdown.linkify

# Pieces that make or almost make a link, spelled in the ways case folding and
# Markdown's block structure (quotes, lists) could hide them.
LINKISH = [
    "example.com", "EXAMPLE.COM", "www.", "WWW", "www", "localhost", "LOCALHOST",
    "loca\u212alhost", "http", "https", "ftp", "mailto", ":", "//", "/", "@", ".", ". ",
    ".\n", "1.2.3.4", "10.0", "xn--", ".xn--p1ai", "пример.рф", ".рф", "例子.中国", "\u3002",
    "\uff0e", "\uff1a", "\uff20", ">", "> ", "\n> ", "\n- ", "\n1. ", "*", "_", "`", "\\",
    "&#46;", "&period;", "&colon;", "&#64;", "\t", "\u00a0", "\u200b", "\ufeff", "\n", " ",
]  # fmt: skip
TEXT = st.lists(
    st.one_of(
        st.sampled_from(LINKISH),
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6),
    ),
    max_size=40,
).map("".join)


def linkify_always(text: str) -> str:
    """render_body as it was: the linkify rule on whenever the URL cap allows it."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    linkify = rendering.url_like_tokens(text) <= rendering.MAX_LINKIFIED_URLS
    parser = rendering._markdown if linkify else rendering._markdown_without_linkify
    return sanitize(parser.render(text)).strip()


@SETTINGS
@given(TEXT)
@example("see example.com for more")
@example("www. example")
@example("a\n> .com")
@example("write to someone@example.org")
@example("LOCALHOST:8000")
@example("//cdn.example/x")
@example("ip 192.168.0.1 here")
@example("ending a sentence.Next one")
@example("write to mailto:ada")
@example("a bare http:x")
def test_the_check_matches_wherever_linkify_itself_might_find_a_link(text):
    if LINKIFY.pretest(text):
        assert may_hold_link(text)


@SETTINGS
@given(TEXT)
@example("Plain words. More words, and *emphasis*!")
@example("- a list\n- of two.\n\n> a quote.")
@example("see example.com. Or not.")
@example("pre.\n> com")
def test_rendering_is_the_same_as_with_linkify_always_on(text):
    assert render_body(text) == linkify_always(text)


@pytest.mark.parametrize(
    "text",
    [
        "Visit example.com today",
        "Mail me: ada@example.org",
        "https://news.example.com/a/",
        "www.example.com",
        "EXAMPLE.COM",
        "пример.рф",
    ],
)
def test_text_with_a_link_is_still_linkified(text):
    assert may_hold_link(text)
    assert "<a href=" in render_body(text)


@pytest.mark.parametrize(
    "text",
    [
        "I read the whole piece twice. The *numbers* do not add up.",
        "Thanks for this!\n\nA second paragraph, with **bold** and `code`.",
        "> Quoted.\n\n- one\n- two",
    ],
)
def test_ordinary_prose_skips_the_linkify_rule(text):
    """Most comments hold no link; for them the check is what saves the time."""
    assert not may_hold_link(text)
    assert "<a " not in render_body(text)


def test_every_schema_linkify_knows_holds_a_colon_or_two_slashes():
    """The check relies on it; a new default schema in linkify-it would show here."""
    schemas = [name for name, rule in LINKIFY._compiled.items() if name and rule]
    assert schemas
    for name in schemas:
        assert ":" in name or "//" in name, name
