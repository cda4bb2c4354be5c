"""The widget mounted by the page's address (data-comments-url) instead of a slug.

Another site embeds the widget the documented way, naming the page by its address
as readers arrive at it (with campaign parameters); the widget resolves it and
shows that article's comments.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.factories import ArticleFactory, published_comment

browser_test = pytest.mark.django_db(transaction=True)


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def write_page(root: Path, server_url: str, attrs: str) -> str:
    name = f"story-{uuid.uuid4().hex[:8]}.html"
    (root / name).write_text(
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Another site</title>
<link rel="icon" href="data:,"></head>
<body><main><h1>Another site's story</h1>
<div {attrs}></div>
<script async src="{server_url}/static/comments/widget.js"></script>
</main></body></html>
""",
        encoding="utf-8",
    )
    return name


def shows_comments_of(page, article, bodies: list[str]) -> None:
    items = page.locator("section.cw ol.cw-list > li")
    expect(items).to_have_count(len(bodies))
    for body in bodies:
        expect(page.locator("section.cw ol.cw-list")).to_contain_text(body)
    expect(page.locator("section.cw h2")).to_have_text(f"{len(bodies)} comments")
    slug = page.evaluate(
        "() => document.querySelector('[data-comments-url]').dataset.commentsArticle"
    )
    assert slug == article.slug


@browser_test
def test_a_page_naming_its_address_with_utm_parameters_shows_the_articles_comments(
    server_url, new_reader, embed_origins
):
    article = ArticleFactory(url="https://news.example.com/2025/harbour-festival/")
    bodies = ["The fireworks were great.", "Too crowded for me."]
    for body in bodies:
        published_comment(article, body=body)
    ArticleFactory(url="https://news.example.com/2025/other-story/")  # not this one
    address = (
        "HTTPS://News.Example.com/2025/harbour-festival?utm_source=newsletter"
        "&amp;utm_medium=email&amp;fbclid=IwAR0abc#comments"
    )
    name = write_page(embed_origins.root, server_url, f'data-comments-url="{address}"')
    reader = new_reader()

    reader.page.goto(f"{embed_origins.allowed}/{name}")

    shows_comments_of(reader.page, article, bodies)
    assert any("/api/v1/articles/resolve/?url=" in r for r in reader.requests)
    assert not reader.errors


@browser_test
def test_an_empty_data_comments_url_uses_the_address_the_reader_arrived_at(
    server_url, new_reader, embed_origins
):
    name = write_page(embed_origins.root, server_url, "data-comments-url")
    article = ArticleFactory(url=f"{embed_origins.allowed}/{name}")
    bodies = ["Found through the page's own address.", "Campaign links land here too."]
    for body in bodies:
        published_comment(article, body=body)
    reader = new_reader()

    reader.page.goto(f"{embed_origins.allowed}/{name}?utm_campaign=spring&gclid=xyz")

    shows_comments_of(reader.page, article, bodies)
    assert not reader.errors


@browser_test
def test_an_unknown_address_says_the_comments_are_missing(server_url, new_reader, embed_origins):
    name = write_page(
        embed_origins.root, server_url, 'data-comments-url="https://news.example.com/nowhere/"'
    )
    reader = new_reader()

    reader.page.goto(f"{embed_origins.allowed}/{name}")

    expect(reader.page.locator("section.cw .cw-state")).to_have_text(
        "Comments are not available for this page."
    )
    expect(reader.page.locator("section.cw form")).to_have_count(0)
    assert not reader.errors
