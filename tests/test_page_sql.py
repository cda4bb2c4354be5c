"""The comment page PostgreSQL writes (comments/page_sql.py) is byte for byte the page
the Python path writes, on every page, in both orders and in any time zone."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from articles.models import Article
from comments import moderation, page_sql, personal_data
from comments.models import Comment
from tests.factories import ArticleFactory, published_comment, submit_comment

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the SQL page is PostgreSQL's (CI runs it)"
    ),
]

NAMES = [
    'Zoë "quoted" <b>O\'Brien</b>',
    "tab\there, newline\nthere, bell\x07, nul-free \\ backslash",
    "日本語の名前 😀",
    "\u2028line separator\u2029 and DEL \x7f",
    "plain",
]


def page_url(article: Article, query: str = "") -> str:
    return f"/api/v1/articles/{article.slug}/comments/" + (f"?{query}" if query else "")


def both_paths(client, url: str, monkeypatch) -> tuple[bytes, bytes]:
    """The page from PostgreSQL's JSON and from the Python path, uncached."""
    with monkeypatch.context() as patch:
        sql_page = client.get(url)
        patch.setattr(page_sql, "available", lambda using: False)
        python_page = client.get(url)
    assert sql_page.status_code == python_page.status_code == 200
    return sql_page.content, python_page.content


def rich_article() -> Article:
    """Threads with every shape the page distinguishes."""
    article = ArticleFactory()
    tops = []
    for index, name in enumerate(NAMES * 3):
        tops.append(
            published_comment(
                article,
                author_name=name,
                author_url='https://reader.example/x?a=1&b="2"' if index % 2 else "",
                body=f"Comment {index}: *emphasis*, `code`, <script>alert(1)</script> & é",
            )
        )
    reply = published_comment(article, parent_id=tops[0].pk, author_name=NAMES[1])
    deeper = published_comment(article, parent_id=reply.pk, author_name=NAMES[2])
    published_comment(article, parent_id=deeper.pk)
    # A removed top-level comment whose published reply keeps it as a placeholder.
    published_comment(article, parent_id=tops[1].pk)
    moderation.remove(tops[1], actor=moderation.SYSTEM)
    # A removed reply with a published reply below it, and one with nothing below.
    middle = published_comment(article, parent_id=tops[2].pk)
    published_comment(article, parent_id=middle.pk)
    moderation.remove(middle, actor=moderation.SYSTEM)
    lonely = published_comment(article, parent_id=tops[2].pk)
    moderation.remove(lonely, actor=moderation.SYSTEM)
    # A removed top-level comment with no visible reply is not on the page.
    gone = published_comment(article)
    moderation.remove(gone, actor=moderation.SYSTEM)
    # Replies that are not public, and a reply under a held comment.
    submit_comment(article, parent_id=None)
    held_parent = published_comment(article, parent_id=tops[3].pk)
    published_comment(article, parent_id=held_parent.pk)
    moderation.hold(held_parent, actor=moderation.SYSTEM)
    # Edited, and a timestamp without microseconds.
    moderation.edit(tops[4], body="Edited *body*.")
    moderation.publish(tops[4], actor=moderation.SPAM_CHECK)
    Comment.objects.filter(pk=tops[5].pk).update(
        created_at=dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)
    )
    Comment.objects.filter(pk=tops[6].pk).update(
        created_at=dt.datetime(2026, 10, 25, 0, 59, 59, 999999, tzinfo=dt.UTC),
        edited_at=dt.datetime(2026, 10, 25, 1, 0, tzinfo=dt.UTC),
    )
    # Far from today: a zone whose offset then had seconds (Amsterdam, +00:19:32).
    Comment.objects.filter(pk=tops[7].pk).update(
        created_at=dt.datetime(1920, 6, 1, 12, 0, 0, 250000, tzinfo=dt.UTC)
    )
    return article


def walk_pages(client, url: str, monkeypatch, link: str = "next") -> int:
    pages = 0
    while url:
        sql_page, python_page = both_paths(client, url, monkeypatch)
        assert sql_page == python_page
        url = json.loads(sql_page)[link]
        pages += 1
    return pages


@pytest.mark.parametrize(
    "time_zone",
    ["UTC", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns", "Europe/Amsterdam"],
)
def test_the_sql_page_is_byte_identical_to_the_python_page_in_any_time_zone(
    api, settings, monkeypatch, time_zone
):
    settings.COMMENTS_READ_CACHE = False
    settings.TIME_ZONE = time_zone
    article = rich_article()
    sql_page, python_page = both_paths(api, page_url(article), monkeypatch)
    assert sql_page == python_page
    results = json.loads(sql_page)["results"]
    assert any(item["removed"] and item["replies"] for item in results)
    assert any(item["edited_at"] for item in results)


@pytest.mark.parametrize("order", ["", "order=newest"])
@pytest.mark.parametrize("limit", [1, 4, 50])
def test_every_page_and_link_matches_the_python_path_forwards_and_backwards(
    api, settings, monkeypatch, order, limit
):
    settings.COMMENTS_READ_CACHE = False
    article = rich_article()
    # Comments sharing one timestamp make the paginator use cursor offsets.
    same = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
    ids = list(Comment.objects.filter(article=article, parent=None).values_list("id", flat=True))
    Comment.objects.filter(pk__in=ids[8:12]).update(created_at=same)
    query = "&".join(part for part in (f"limit={limit}", order) if part)
    pages = walk_pages(api, page_url(article, query), monkeypatch)
    assert pages >= (2 if limit < 10 else 1)
    # Walk back from the last page through the previous links.
    url = page_url(article, query)
    while True:
        following = json.loads(api.get(url).content)["next"]
        if not following:
            break
        url = following
    assert walk_pages(api, url, monkeypatch, link="previous") == pages


def test_the_sql_page_is_one_statement_and_answers_404_for_an_unknown_article(api, settings):
    settings.COMMENTS_READ_CACHE = False
    article = rich_article()
    api.get(page_url(article))  # the connection is open and checked
    with CaptureQueriesContext(connection) as queries:
        assert api.get(page_url(article)).status_code == 200
    page_statements = [q for q in queries.captured_queries if "comments_comment" in q["sql"]]
    assert len(page_statements) == 1
    missing = api.get("/api/v1/articles/no-such-article/comments/")
    assert missing.status_code == 404
    assert "detail" in missing.json()


def test_an_article_without_comments_gives_an_empty_page(api, settings, monkeypatch):
    settings.COMMENTS_READ_CACHE = False
    article = ArticleFactory()
    sql_page, python_page = both_paths(api, page_url(article), monkeypatch)
    assert sql_page == python_page
    assert json.loads(sql_page) == {"count": 0, "next": None, "previous": None, "results": []}


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        base64.b64encode(b"o=0&p=not-a-date").decode(),
        base64.b64encode(b"o=0&p=2026-05-01 12:00:00").decode(),  # naive
    ],
)
def test_a_forged_cursor_is_refused_before_any_statement(api, settings, cursor):
    settings.COMMENTS_READ_CACHE = False
    article = rich_article()
    response = api.get(page_url(article, f"cursor={cursor}"))
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid cursor"}


def stored_and_computed_fragments(article: Article) -> list[tuple[int, str, str]]:
    """Each comment's `public_fragment` column beside the fragment written out."""
    computed = page_sql.computed_fragment_sql("c", "UTC")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id, c.public_fragment, {computed} FROM comments_comment c"  # noqa: S608
            " WHERE c.article_id = %s ORDER BY c.id",
            [article.pk],
        )
        return cursor.fetchall()


def test_the_stored_fragment_follows_every_write_of_its_row():
    """The generated column (migration 0010) is the UTC page's fragment: the same as the
    expression for every kind of row, and again after transitions, edits, bulk updates
    and an erasure change the row."""
    article = rich_article()
    erased = published_comment(
        article, author_email="erase-me@example.com", author_url="https://me.example/"
    )
    rows = stored_and_computed_fragments(article)
    assert len(rows) > 20
    assert all(stored == computed for _, stored, computed in rows)
    before = {comment_id: stored for comment_id, stored, _ in rows}

    personal_data.erase_email("erase-me@example.com", actor=moderation.SYSTEM, keep_text=False)
    target = (
        Comment.objects.filter(article=article, status=Comment.Status.PUBLISHED)
        .exclude(pk=erased.pk)
        .first()
    )
    moderation.edit(target, body="Changed **after** publication.", actor=moderation.SYSTEM)
    Comment.objects.filter(pk=target.pk).update(author_name="Renamed \u2028 reader")

    after = {
        comment_id: (stored, computed)
        for comment_id, stored, computed in stored_and_computed_fragments(article)
    }
    assert all(stored == computed for stored, computed in after.values())
    assert after[erased.pk][0] != before[erased.pk]
    assert "me.example" not in after[erased.pk][0]
    assert after[target.pk][0] != before[target.pk]
    assert "Renamed" in after[target.pk][0]
