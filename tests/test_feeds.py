"""Atom feeds of published comments (per article and site-wide) and the JSON list of
the latest comments: valid Atom, only published comments, newest first, fresh after
every moderator action, no private data, and XML that no comment can break."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import datetime

import feedparser
import pytest
from django.utils.http import http_date

from comments import moderation, read_cache
from comments.models import Comment
from tests.factories import (
    ArticleFactory,
    held_comment,
    moderator_user,
    published_comment,
    submit_comment,
)

pytestmark = pytest.mark.django_db

ATOM = "{http://www.w3.org/2005/Atom}"
LATEST = "/api/v1/comments/latest/"
LATEST_FEED = "/feeds/latest.atom"
CANARY_EMAIL = "canary-7f3a@private.example"
CANARY_IP = "198.51.100.77"
CANARY_AGENT = "CanaryAgent/9.9"


def article_feed(article) -> str:
    return f"/feeds/articles/{article.slug}.atom"


def parse(content: bytes) -> ET.Element:
    return ET.fromstring(content)  # noqa: S314 (our own output, parsed to check it)


def one(element: ET.Element, name: str) -> ET.Element:
    found = element.findall(ATOM + name)
    assert len(found) == 1, (name, len(found))
    return found[0]


def assert_valid_atom(content: bytes, self_url: str) -> ET.Element:
    """The elements RFC 4287 requires (4.1.1, 4.1.2), and a real parser reads it cleanly."""
    feed = parse(content)
    assert feed.tag == ATOM + "feed"
    for name in ("id", "title", "updated"):
        assert one(feed, name).text
    datetime.fromisoformat(one(feed, "updated").text)
    links = {link.get("rel"): link.get("href") for link in feed.findall(ATOM + "link")}
    assert links["alternate"].startswith(("http://", "https://"))
    assert links["self"] == self_url
    assert one(feed, "id").text.startswith("tag:")
    for entry in feed.findall(ATOM + "entry"):
        for name in ("id", "title", "updated", "published"):
            assert one(entry, name).text
        datetime.fromisoformat(one(entry, "updated").text)
        # No feed-level author, so every entry must have one (RFC 4287 4.1.1).
        assert one(one(entry, "author"), "name").text
        alternate = [
            link for link in entry.findall(ATOM + "link") if link.get("rel") == "alternate"
        ]
        assert len(alternate) == 1 and alternate[0].get("href")
        assert one(entry, "content").get("type") == "html"
        assert entry.find(ATOM + "summary") is None
    parsed = feedparser.parse(content, sanitize_html=False)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return feed


def entry_ids(feed: ET.Element) -> list[str]:
    return [one(entry, "id").text for entry in feed.findall(ATOM + "entry")]


def comment_tag(comment: Comment) -> str:
    return f"tag:localhost,2026:comment-{comment.pk}"


def latest_ids(api, query: str = "") -> list[int]:
    response = api.get(LATEST + query)
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def every_status(article) -> dict[str, Comment]:
    """One comment in each status; the published ones written last-but-one and last."""
    comments = {
        "pending": submit_comment(article, body="Still pending."),
        "held": held_comment(article, body="Held for a human."),
        "spam": submit_comment(article, body="Buy now."),
        "rejected": submit_comment(article, body="Rejected."),
        "removed": published_comment(article, body="Removed later."),
        "older": published_comment(article, body="Older published."),
        "newer": published_comment(article, body="Newer published."),
    }
    moderation.mark_spam(comments["spam"], actor=moderation.SPAM_CHECK)
    moderation.reject(comments["rejected"], actor=moderation.SYSTEM)
    moderation.remove(comments["removed"], actor=moderation.SYSTEM)
    return comments


@pytest.fixture(autouse=True)
def site_url(settings):
    settings.COMMENTS_SITE_URL = "http://localhost:8000"


def test_the_article_feed_is_valid_atom_with_the_comment_as_an_entry(api):
    article = ArticleFactory(title="Rates rise again")
    comment = published_comment(
        article, author_name="Ada", author_url="https://ada.example/", body="Good *point*."
    )
    response = api.get(article_feed(article))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/atom+xml; charset=utf-8"
    feed = assert_valid_atom(response.content, f"http://testserver{article_feed(article)}")
    assert one(feed, "title").text == "Comments on Rates rise again"
    alternate = [link for link in feed.findall(ATOM + "link") if link.get("rel") == "alternate"]
    assert alternate[0].get("href") == article.url
    entry = one(feed, "entry")
    assert one(entry, "id").text == comment_tag(comment)
    assert one(entry, "title").text == "Ada on Rates rise again"
    assert one(one(entry, "author"), "name").text == "Ada"
    assert one(one(entry, "author"), "uri").text == "https://ada.example/"
    assert one(entry, "link").get("href") == f"{article.url}#c{comment.pk}"
    assert one(entry, "content").text == "<p>Good <em>point</em>.</p>"
    comment.refresh_from_db()
    assert datetime.fromisoformat(one(entry, "published").text) == comment.published_at
    assert one(feed, "updated").text == one(entry, "updated").text


def test_the_site_feed_is_valid_atom_across_articles(api, settings):
    first, second = ArticleFactory(), ArticleFactory()
    a = published_comment(first)
    b = published_comment(second)
    response = api.get(LATEST_FEED)
    assert response.status_code == 200
    feed = assert_valid_atom(response.content, f"http://testserver{LATEST_FEED}")
    assert one(feed, "title").text == "Latest comments"
    assert entry_ids(feed)[:2] == [comment_tag(b), comment_tag(a)]
    links = {link.get("rel"): link.get("href") for link in feed.findall(ATOM + "link")}
    assert links["alternate"] == settings.COMMENTS_SITE_URL


def test_an_empty_feed_is_valid_atom_with_a_stable_updated(api):
    article = ArticleFactory()
    first = api.get(article_feed(article))
    feed = assert_valid_atom(first.content, f"http://testserver{article_feed(article)}")
    assert feed.findall(ATOM + "entry") == []
    assert datetime.fromisoformat(one(feed, "updated").text) == article.updated_at


def test_feeds_and_the_latest_list_show_only_published_comments_newest_first(api):
    article = ArticleFactory()
    comments = every_status(article)
    expected = [comments["newer"], comments["older"]]
    for url in (article_feed(article), LATEST_FEED):
        feed = parse(api.get(url).content)
        assert entry_ids(feed) == [comment_tag(c) for c in expected], url
    assert latest_ids(api) == [c.pk for c in expected]


def test_an_edited_comment_shows_its_new_text_and_update_time(api):
    article = ArticleFactory()
    comment = published_comment(article, body="First version.")
    api.get(article_feed(article))
    moderation.edit(comment, body="Second version.")
    moderation.publish(comment, actor=moderation.SPAM_CHECK)
    entry = one(parse(api.get(article_feed(article)).content), "entry")
    assert one(entry, "content").text == "<p>Second version.</p>"
    comment.refresh_from_db()
    assert datetime.fromisoformat(one(entry, "updated").text) >= comment.edited_at


def test_feeds_hold_at_most_COMMENTS_FEED_ITEMS_entries(api, settings):
    settings.COMMENTS_FEED_ITEMS = 3
    article = ArticleFactory()
    comments = [published_comment(article, body=f"Comment {n}.") for n in range(5)]
    newest_three = [comment_tag(c) for c in reversed(comments[2:])]
    assert entry_ids(parse(api.get(article_feed(article)).content)) == newest_three
    assert entry_ids(parse(api.get(LATEST_FEED).content)) == newest_three


def test_a_moderators_removal_leaves_every_feed_and_list_at_once(api):
    article = ArticleFactory()
    kept = published_comment(article, body="Stays.")
    gone = published_comment(article, body="Goes.")
    urls = (article_feed(article), LATEST_FEED)
    for url in urls:  # now cached
        assert comment_tag(gone) in entry_ids(parse(api.get(url).content))
    assert gone.pk in latest_ids(api)

    moderation.remove(gone, actor=moderation.Actor.for_user(moderator_user()), reason="abuse")

    for url in urls:
        assert entry_ids(parse(api.get(url).content)) == [comment_tag(kept)], url
    assert latest_ids(api) == [kept.pk]


def test_a_moderators_rejection_through_the_api_leaves_the_latest_list(api):
    other_article, article = ArticleFactory(), ArticleFactory()
    published_comment(other_article)
    rejected = published_comment(article)
    assert latest_ids(api, "?limit=5")[0] == rejected.pk
    moderator = api.__class__()
    moderator.force_authenticate(moderator_user())
    response = moderator.post(f"/api/v1/moderation/comments/{rejected.pk}/reject/")
    assert response.status_code == 200, response.content
    assert rejected.pk not in latest_ids(api, "?limit=5")
    assert comment_tag(rejected) not in entry_ids(parse(api.get(LATEST_FEED).content))


def test_a_new_publication_on_any_article_refreshes_the_site_wide_caches(api):
    first, second = ArticleFactory(), ArticleFactory()
    published_comment(first)
    before = api.get(LATEST_FEED)
    assert len(latest_ids(api)) == 1
    newest = published_comment(second)
    after = api.get(LATEST_FEED)
    assert after["ETag"] != before["ETag"]
    assert entry_ids(parse(after.content))[0] == comment_tag(newest)
    assert latest_ids(api)[0] == newest.pk


def test_renaming_an_article_refreshes_the_site_wide_feed(api):
    article = ArticleFactory(title="Old title")
    published_comment(article, author_name="Ada")
    assert b"Ada on Old title" in api.get(LATEST_FEED).content
    article.title = "New title"
    article.save()
    assert b"Ada on New title" in api.get(LATEST_FEED).content


def test_an_unknown_article_feed_is_404(api):
    assert api.get("/feeds/articles/no-such-article.atom").status_code == 404


def test_feeds_answer_only_get_and_head(api):
    article = ArticleFactory()
    published_comment(article)
    head = api.head(article_feed(article))
    assert head.status_code == 200
    assert head["ETag"] == api.get(article_feed(article))["ETag"]
    assert api.post(LATEST_FEED).status_code == 405


@pytest.mark.parametrize(
    "query", ["?limit=0", "?limit=51", "?limit=-1", "?limit=ten", "?limit=2.5"]
)
def test_a_bad_limit_is_400_naming_limit(api, query):
    response = api.get(LATEST + query)
    assert response.status_code == 400
    assert list(response.json()) == ["limit"]


def test_the_latest_list_defaults_to_10_and_honours_limit(api):
    article = ArticleFactory()
    comments = [published_comment(article, body=f"Number {n}.") for n in range(12)]
    newest_first = [c.pk for c in reversed(comments)]
    assert latest_ids(api) == newest_first[:10]
    assert latest_ids(api, "?limit=3") == newest_first[:3]
    assert latest_ids(api, "?limit=50") == newest_first


def test_a_latest_item_has_its_article_and_permalink_and_nothing_private(api):
    article = ArticleFactory(title="Budget day", url="https://news.example.com/budget/#top")
    comment = published_comment(article, author_name="Bo", body="Fine.")
    comment.refresh_from_db()
    [item] = api.get(LATEST).json()["results"]
    assert item == {
        "id": comment.pk,
        "article": {"slug": article.slug, "title": "Budget day", "url": article.url},
        "author_name": "Bo",
        "author_url": None,
        "body_html": "<p>Fine.</p>",
        "created_at": comment.created_at.isoformat().replace("+00:00", "Z"),
        "published_at": comment.published_at.isoformat().replace("+00:00", "Z"),
        "edited_at": None,
        "url": f"https://news.example.com/budget/#c{comment.pk}",
    }


def test_no_email_ip_or_user_agent_appears_anywhere(api):
    article = ArticleFactory()
    published_comment(
        article, author_email=CANARY_EMAIL, ip_address=CANARY_IP, user_agent=CANARY_AGENT
    )
    for url in (article_feed(article), LATEST_FEED, LATEST):
        content = api.get(url).content.decode()
        assert "Ada Reader" in content, url
        for canary in (CANARY_EMAIL, "private.example", CANARY_IP, CANARY_AGENT):
            assert canary not in content, (url, canary)
        assert "<email>" not in content


def test_characters_xml_cannot_carry_are_left_out_not_a_500(api):
    """The API accepts \\x0b and friends in names and bodies (PostgreSQL refuses \\x00);
    Django's XML writer would raise on them."""
    article = ArticleFactory(title="Tabs\x0c and\x1f more")
    comment = published_comment(
        article, author_name="Vert\x0bical", body="Line\x0bone\x1b[31m and \x08 more"
    )
    assert "\x0b" in Comment.objects.get(pk=comment.pk).body_html
    for url in (article_feed(article), LATEST_FEED):
        response = api.get(url)
        assert response.status_code == 200, url
        feed = assert_valid_atom(response.content, f"http://testserver{url}")
        entry = one(feed, "entry")
        assert one(one(entry, "author"), "name").text == "Vertical"
        assert one(entry, "title").text == "Vertical on Tabs and more"
        assert one(entry, "content").text == "<p>Lineone[31m and  more</p>"


def test_html_in_a_comment_is_escaped_once_inside_html_content(api):
    article = ArticleFactory()
    published_comment(
        article,
        body='Try <script>alert(1)</script> & [this](https://x.example/?a=1&b=2 "t") **now**',
    )
    stored = Comment.objects.get(article=article).body_html
    assert "<script" not in stored  # the renderer escaped it before any feed
    response = api.get(article_feed(article))
    raw = response.content.decode()
    assert "<script" not in raw and "<a " not in raw and "<strong>" not in raw
    assert "&lt;strong&gt;now&lt;/strong&gt;" in raw
    entry = one(parse(response.content), "entry")
    assert one(entry, "content").text == stored
    parsed = feedparser.parse(response.content, sanitize_html=False)
    assert parsed.entries[0].content[0].value == stored
    assert parsed.entries[0].content[0].type == "text/html"


def test_a_client_holding_the_feed_gets_304_by_etag_or_date(api):
    article = ArticleFactory()
    published_comment(article)
    first = api.get(article_feed(article))
    assert first["Cache-Control"] == "public, max-age=0, must-revalidate"
    again = api.get(article_feed(article), HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert again["ETag"] == first["ETag"]
    by_date = api.get(article_feed(article), HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])
    assert by_date.status_code == 304
    older = http_date(0)
    assert api.get(article_feed(article), HTTP_IF_MODIFIED_SINCE=older).status_code == 200
    # An ETag that does not match wins over a date that would.
    stale = api.get(
        article_feed(article),
        HTTP_IF_NONE_MATCH='"other"',
        HTTP_IF_MODIFIED_SINCE=first["Last-Modified"],
    )
    assert stale.status_code == 200

    published_comment(article)
    changed = api.get(article_feed(article), HTTP_IF_NONE_MATCH=first["ETag"])
    assert changed.status_code == 200
    assert changed["ETag"] != first["ETag"]


def test_the_latest_list_carries_an_etag_for_304(api):
    published_comment(ArticleFactory())
    first = api.get(LATEST)
    assert api.get(LATEST, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304


def test_cached_feeds_and_list_run_no_query(api, django_assert_num_queries):
    article = ArticleFactory()
    for n in range(3):
        published_comment(article, body=f"Comment {n}.")
    urls = [article_feed(article), LATEST_FEED, LATEST, LATEST + "?limit=2"]
    for url in urls:
        api.get(url)
    for url in urls:
        with django_assert_num_queries(0):
            assert api.get(url).status_code == 200


def test_uncached_reads_take_one_or_two_queries(api, settings, django_assert_num_queries):
    settings.COMMENTS_READ_CACHE = False
    article = ArticleFactory()
    articles = [article, ArticleFactory()]
    for n in range(6):
        published_comment(articles[n % 2], body=f"Comment {n}.")
    with django_assert_num_queries(2):  # the article, its comments
        api.get(article_feed(article))
    with django_assert_num_queries(1):  # comments with their articles
        api.get(LATEST_FEED)
    with django_assert_num_queries(1):
        api.get(LATEST)


def test_feeds_and_list_are_throttled_like_other_public_reads(api, settings):
    settings.COMMENTS_THROTTLE_READ = "2/min"
    article = ArticleFactory()
    for url in (article_feed(article), LATEST_FEED, LATEST):
        client = {"REMOTE_ADDR": f"2001:db8::{uuid.uuid4().hex[:4]}"}
        assert api.get(url, **client).status_code == 200
        assert api.get(url, **client).status_code == 200
        refused = api.get(url, **client)
        assert refused.status_code == 429, url
        assert int(refused["Retry-After"]) > 0


def test_the_latest_list_answers_allowed_origins(api, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://www.example.com"]
    response = api.get(LATEST, HTTP_ORIGIN="https://www.example.com")
    assert response["Access-Control-Allow-Origin"] == "https://www.example.com"
    other = api.get(LATEST, HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in other


def test_the_latest_list_is_in_the_openapi_schema(api):
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/comments/latest/"]["get"]
    [limit] = [p for p in operation["parameters"] if p["name"] == "limit"]
    assert limit["schema"]["minimum"] == 1 and limit["schema"]["maximum"] == 50
    assert {"200", "400", "429"} <= set(operation["responses"])
    item = schema["components"]["schemas"]["LatestComment"]
    assert "author_email" not in item["properties"]
    assert {"article", "url", "body_html", "published_at"} <= set(item["properties"])


def test_the_demo_article_page_advertises_its_feed(api):
    article = ArticleFactory()
    page = api.get(f"/demo/{article.slug}/").content.decode()
    assert (
        f'<link rel="alternate" type="application/atom+xml" title="Comments"'
        f' href="/feeds/articles/{article.slug}.atom">'
    ) in page


def test_an_invalidation_replaces_the_site_wide_generation_too():
    read_cache.page(read_cache.SITE, "probe", lambda: b"before")
    assert read_cache.cached_page(read_cache.SITE, "probe") is not None
    read_cache.invalidate_slugs([])  # nothing changed: nothing to replace
    assert read_cache.cached_page(read_cache.SITE, "probe") is not None
    read_cache.invalidate_article("any-article")
    assert read_cache.cached_page(read_cache.SITE, "probe") is None
