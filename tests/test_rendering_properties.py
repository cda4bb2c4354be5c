"""S02–S04, S12: properties of comment rendering, checked with Hypothesis.

- sanitising is idempotent, on arbitrary HTML and on our own rendered output;
- any text up to the body limit renders without script: only allowlisted tags,
  no event handlers, no dangerous URL, no comments or raw markup;
- only allowlisted attributes, links carry our rel, hrefs are absolute
  http/https/mailto (each its own test, so a failure names one rule);
- rendering is bounded in time, on generated text and on pathological inputs.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from comments.rendering import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, LINK_REL, render_body, sanitize
from tests import xss_payloads as corpus

BODY_MAX = 10_000
SETTINGS = settings(
    max_examples=200,
    deadline=None,  # speed is measured by bench/render_pathological.py, not asserted here
    database=None,  # write nothing into the working tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- Strategies ---------------------------------------------------------------------------

SCHEMES = ["javascript", "vbscript", "data", "http", "https", "mailto", "file", "ftp"]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u202e"]
CONTROL = ["\t", "\n", "\r", "\x01", "\x08", "\x0b", "\x0c", "\x1f", " ", "\u00a0"]


@st.composite
def scheme_spelling(draw) -> str:
    """A URL scheme spelled the ways filters get wrong (S02): case, control and
    invisible characters, entities (decimal/hex, padded, with or without ';'), %-escapes."""
    scheme = draw(st.sampled_from(SCHEMES))
    out = []
    for ch in scheme + ":":
        how = draw(
            st.sampled_from(["plain", "plain", "upper", "dec", "hex", "pct", "insert", "named"])
        )
        if how == "upper":
            out.append(ch.upper())
        elif how == "dec":
            pad = draw(st.integers(0, 6))
            out.append(f"&#{ord(ch):0{pad}d}" + draw(st.sampled_from([";", ""])))
        elif how == "hex":
            out.append(f"&#{draw(st.sampled_from(['x', 'X']))}{ord(ch):x};")
        elif how == "pct":
            out.append(f"%{ord(ch):02X}")
        elif how == "insert":
            out.append(draw(st.sampled_from(INVISIBLE + CONTROL + ["&Tab;", "&NewLine;"])) + ch)
        elif how == "named" and ch == ":":
            out.append("&colon;")
        else:
            out.append(ch)
    prefix = draw(st.text(st.sampled_from(INVISIBLE + CONTROL), max_size=3))
    rest = draw(st.sampled_from(["alert(1)", "//ok.example/%0Aalert(1)", "text/html,<b>x</b>"]))
    return prefix + "".join(out) + rest


WORDS = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=0, max_size=12)
TITLE = st.sampled_from(["", ' "t"', " 't'", ' "a\\" onmouseover=\\"alert(1)"', " (t)"])


@st.composite
def markdown_fragment(draw) -> str:
    url = draw(st.one_of(scheme_spelling(), st.sampled_from(["https://ok.example/", "x", "#a"])))
    text = draw(WORDS)
    kind = draw(st.integers(0, 15))
    return [
        lambda: f"[{text}]({url}{draw(TITLE)})",
        lambda: f"<{url}>",
        lambda: f"[{text}][r]\n\n[r]: {url}{draw(TITLE)}",
        lambda: f" {url} ",
        lambda: f"*{text}* **{text}** _{text}_",
        lambda: f"`{text}`",
        lambda: f"\n```{text}\n{text}\n```\n",
        lambda: f"\n> {text}\n",
        lambda: f"\n- {text}\n- {text}\n",
        lambda: f"\n{draw(st.integers(-5, 10**12))}. {text}\n",
        lambda: draw(st.sampled_from(corpus.HAND_WRITTEN)),
        lambda: f'<a href="{url}" onclick="x">{text}</a>',
        lambda: f"<img src=x onerror={text}>",
        lambda: f"&#{draw(st.integers(0, 0x10FFFF))};",
        lambda: text,
        lambda: draw(st.sampled_from(["\n", "\n\n", "  \n", "\\", "<", ">", "&", '"', "'"])),
    ][kind]()


MARKDOWN = st.lists(markdown_fragment(), max_size=30).map("".join)
ANY_TEXT = st.one_of(
    st.text(max_size=BODY_MAX),
    MARKDOWN,
    # Long inputs near the limit: a fragment repeated.
    st.tuples(markdown_fragment(), st.integers(1, 2000)).map(lambda t: (t[0] * t[1])[:BODY_MAX]),
)


@st.composite
def html_soup(draw) -> str:
    """Arbitrary HTML-ish input for the sanitiser on its own."""
    tags = [*sorted(ALLOWED_TAGS), "script", "svg", "math", "style", "img", "iframe", "x-y"]
    parts = []
    for _ in range(draw(st.integers(0, 20))):
        tag = draw(st.sampled_from(tags))
        name = draw(st.sampled_from(["href", "start", "title", "onclick", "style", "rel", "id"]))
        value = draw(st.one_of(scheme_spelling(), WORDS))
        quote = draw(st.sampled_from(['"', "'", ""]))
        parts.append(
            draw(
                st.sampled_from(
                    [
                        f"<{tag} {name}={quote}{value}{quote}>",
                        f"</{tag}>",
                        f"<!--{value}-->",
                        f"<![CDATA[{value}]]>",
                        value,
                        f"<{tag}/{name}={value}>",
                    ]
                )
            )
        )
    return "".join(parts)


# --- Idempotence --------------------------------------------------------------------------


@SETTINGS
@given(st.one_of(html_soup(), st.text(max_size=2000), MARKDOWN.map(render_body)))
@example('<a href="https://ok.example/" title="a&quot;b">x</a>')
@example("<svg><style><img src=x onerror=alert(1)></style></svg>")
@example("<noscript><p title='</noscript><img src=x onerror=alert(1)>'>")
@example("\ufeff\ufeffx")  # a parser drops one leading BOM per pass
@example("<b></b>\ufeffx")
def test_S03_sanitize_is_idempotent(html):
    once = sanitize(html)
    assert sanitize(once) == once


@SETTINGS
@given(ANY_TEXT)
@example('[x](https://ok.example/ "t")')
@example("1. a\n2. b")
def test_S03_sanitizing_rendered_output_changes_nothing(text):
    rendered = render_body(text)
    assert sanitize(rendered) == rendered


# --- Safety of any text up to the limit ------------------------------------------------------


def script_problems(html: str) -> list[str]:
    """Findings that could run script: everything but the attribute-allowlist rules."""
    return [
        problem
        for problem in corpus.body_html_problems(html, ALLOWED_TAGS, ALLOWED_ATTRIBUTES, LINK_REL)
        if "not allowlisted" not in problem or problem.startswith(("tag ", "end tag "))
        if not problem.startswith("<a> without rel")
    ]


@SETTINGS
@given(ANY_TEXT)
@example("[x](java&#115;cript:alert(1))")
@example("<javascript:alert(1)>")
@example("[x](\u200bjavascript:alert(1))")
def test_S02_S04_any_text_up_to_the_limit_renders_without_script(text):
    html = render_body(text)
    assert not script_problems(html), (script_problems(html), html[:500])


@SETTINGS
@given(ANY_TEXT)
@example('[x](https://ok.example/ "a title")')
def test_S03_rendered_html_uses_only_allowlisted_attributes_and_our_rel(text):
    html = render_body(text)
    problems = corpus.body_html_problems(html, ALLOWED_TAGS, ALLOWED_ATTRIBUTES, LINK_REL)
    assert not problems, (problems, html[:500])


@SETTINGS
@given(ANY_TEXT)
@example("[x](/relative/path)")
@example("[x](\u200bjavascript:alert(1))")
def test_S02_every_href_is_an_absolute_http_https_or_mailto_url(text):
    html = render_body(text)
    assert not corpus.href_policy_problems(html), (corpus.href_policy_problems(html), html[:300])


@pytest.mark.parametrize("payload", corpus.PAYLOADS)
def test_S03_the_corpus_renders_without_script(payload):
    html = render_body(payload)
    assert not script_problems(html), (script_problems(html), html)


def test_a_text_at_the_limit_still_renders():
    text = ("A sentence with a [link](https://ok.example/) and `code`. " * 200)[:BODY_MAX]
    html = render_body(text)
    assert html.startswith("<p>") and "https://ok.example/" in html


# --- Bounded time ----------------------------------------------------------------------------

PATHOLOGICAL_SHAPES = {
    "deep-quotes": "> " * 5000 + "x",
    "deep-quotes-lines": "".join(">" * n + " x\n" for n in range(1, 140)),
    "deep-lists": "".join("  " * n + "- x\n" for n in range(0, 120)),
    "deep-ordered-lists": "".join("   " * n + "1. x\n" for n in range(0, 100)),
    "brackets": "[" * BODY_MAX,
    "closing-brackets": "]" * BODY_MAX,
    "bracket-pairs": "[]" * (BODY_MAX // 2),
    "link-openers": "[x](" * (BODY_MAX // 4),
    "image-openers": "![" * (BODY_MAX // 2),
    "stars": "*" * BODY_MAX,
    "underscores": "_" * BODY_MAX,
    "star-a": "*a" * (BODY_MAX // 2),
    "strong-nesting": "**" * (BODY_MAX // 4) + "x" + "**" * (BODY_MAX // 4),
    "mixed-emphasis": "*_" * (BODY_MAX // 2),
    "backticks": "`" * BODY_MAX,
    "backtick-runs": "".join("`" * n + " " for n in range(1, 140)),
    "fences": "```\n" * (BODY_MAX // 4),
    "angle": "<" * BODY_MAX,
    "autolink-openers": "<http://" * (BODY_MAX // 8),
    "entities": "&#" * (BODY_MAX // 2),
    "entity-digits": "&#" + "9" * (BODY_MAX - 2),
    "backslashes": "\\" * BODY_MAX,
    "long-url": "https://ok.example/" + "a" * (BODY_MAX - 20),
    "long-domain": "http://" + "a." * ((BODY_MAX - 10) // 2) + "com",
    "many-urls": "https://ok.example/x " * (BODY_MAX // 21),
    "www": "www." * (BODY_MAX // 4),
    "emails": "a@" * (BODY_MAX // 2),
    "email-labels": "x@" + "a." * ((BODY_MAX - 6) // 2) + "com",
    "parentheses-url": "https://ok.example/" + "(" * (BODY_MAX - 20),
    "reference-defs": "[a]: https://ok.example/\n" * (BODY_MAX // 24),
    "newlines": "\n" * BODY_MAX,
    "spaces-then-text": " " * (BODY_MAX - 1) + "x",
    "hard-breaks": "x  \n" * (BODY_MAX // 4),
    "list-markers": "- " * (BODY_MAX // 2),
    "ordered-markers": "1. " * (BODY_MAX // 3),
    "html-ish": "<a href=" * (BODY_MAX // 8),
}
# Each shape at (at most) the body limit, as the API would accept it.
PATHOLOGICAL = {name: text[:BODY_MAX] for name, text in PATHOLOGICAL_SHAPES.items()}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_S12_pathological_input_renders_safely(name):
    """Their render times are measured by bench/render_pathological.py."""
    text = PATHOLOGICAL[name]
    assert len(text) <= BODY_MAX
    assert not script_problems(render_body(text))
