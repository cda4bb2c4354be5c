"""Reading an article's comments: GET /api/v1/articles/{slug}/comments/."""

from __future__ import annotations

import base64
import datetime as dt
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from articles.models import Article
from comments import moderation
from comments.models import Comment
from tests.factories import ArticleFactory, published_comment, submit_comment

pytestmark = pytest.mark.django_db


def list_url(article, **params: object) -> str:
    url = f"/api/v1/articles/{article.slug}/comments/"
    return f"{url}?{urlencode(params)}" if params else url


def get_list(api, article, **params: object):
    response = api.get(list_url(article, **params))
    assert response.status_code == 200, response.content
    return response.json()


def ids(comments: list[dict]) -> list[int]:
    return [comment["id"] for comment in comments]


def all_ids(comments: list[dict]) -> list[int]:
    """Every id in a tree of comments, depth first."""
    found: list[int] = []
    for comment in comments:
        found.append(comment["id"])
        found.extend(all_ids(comment["replies"]))
    return found


def set_created_at(comment: Comment, when: dt.datetime) -> None:
    Comment.objects.filter(pk=comment.pk).update(created_at=when)
    comment.created_at = when


def remove(comment: Comment) -> None:
    moderation.remove(comment, actor=moderation.SYSTEM, reason="test")


def follow_pages(api, first_url: str) -> tuple[list[int], list[dict]]:
    """Follow `next` from the first page; returns every top-level id and every page."""
    seen: list[int] = []
    pages: list[dict] = []
    url: str | None = first_url
    while url is not None:
        response = api.get(url)
        assert response.status_code == 200, response.content
        page = response.json()
        pages.append(page)
        seen.extend(ids(page["results"]))
        url = page["next"]
        assert len(pages) <= 100, "pagination does not end"
    return seen, pages


# --- What is listed ---------------------------------------------------------------


def test_it_lists_only_published_comments(api, article):
    shown = published_comment(article, body="Shown.")
    submit_comment(article, body="Still pending.")
    held = submit_comment(article, body="Held for a human.")
    moderation.hold(held, actor=moderation.SYSTEM, reason="test")
    spam = submit_comment(article, body="Buy pills.")
    moderation.mark_spam(spam, actor=moderation.SYSTEM)
    rejected = submit_comment(article, body="Rejected.")
    moderation.reject(rejected, actor=moderation.SYSTEM)
    removed = published_comment(article, body="Removed without replies.")
    remove(removed)

    page = get_list(api, article)

    assert ids(page["results"]) == [shown.pk]
    assert page["count"] == 1
    assert page["results"][0]["body_html"] == "<p>Shown.</p>"


def test_a_comment_has_the_public_fields_of_the_contract(api, article):
    comment = published_comment(
        article, author_name="Ada", author_url="https://ada.example.org/", body="Hello *there*"
    )

    listed = get_list(api, article)["results"][0]

    assert listed["id"] == comment.pk
    assert listed["parent"] is None
    assert listed["author_name"] == "Ada"
    assert listed["author_url"] == "https://ada.example.org/"
    assert listed["body_html"] == "<p>Hello <em>there</em></p>"
    assert listed["edited_at"] is None
    assert listed["removed"] is False
    assert listed["replies"] == []
    assert "status" not in listed
    assert "edit_token" not in listed


def test_a_comment_without_an_author_url_shows_null(api, article):
    published_comment(article, author_url="")

    assert get_list(api, article)["results"][0]["author_url"] is None


def test_an_empty_article_lists_nothing(api, article):
    page = get_list(api, article)

    assert page == {"count": 0, "next": None, "previous": None, "results": []}


def test_comments_of_other_articles_are_not_listed_or_counted(api, article):
    mine = published_comment(article)
    other = ArticleFactory()
    published_comment(other)
    published_comment(other)

    page = get_list(api, article)

    assert ids(page["results"]) == [mine.pk]
    assert page["count"] == 1


def test_replies_are_nested_under_their_parents(api, article):
    top = published_comment(article)
    first = published_comment(article, parent_id=top.pk)
    nested = published_comment(article, parent_id=first.pk)
    second = published_comment(article, parent_id=top.pk)
    other_top = published_comment(article)

    page = get_list(api, article)

    assert ids(page["results"]) == [top.pk, other_top.pk]
    thread = page["results"][0]
    assert ids(thread["replies"]) == [first.pk, second.pk]
    assert thread["replies"][0]["parent"] == top.pk
    assert ids(thread["replies"][0]["replies"]) == [nested.pk]
    assert thread["replies"][0]["replies"][0]["parent"] == first.pk
    assert thread["replies"][1]["replies"] == []
    assert page["results"][1]["replies"] == []


def test_the_count_is_every_published_comment_of_the_article_including_replies(api, article):
    top = published_comment(article)
    reply = published_comment(article, parent_id=top.pk)
    published_comment(article, parent_id=reply.pk)
    published_comment(article)
    submit_comment(article)  # pending: not counted
    submit_comment(article, parent_id=top.pk)  # pending reply: not counted

    page = get_list(api, article, limit=1)

    assert page["count"] == 4
    assert len(page["results"]) == 1


def test_unpublished_replies_are_not_nested(api, article):
    top = published_comment(article)
    shown = published_comment(article, parent_id=top.pk)
    submit_comment(article, parent_id=top.pk)
    held = submit_comment(article, parent_id=top.pk)
    moderation.hold(held, actor=moderation.SYSTEM, reason="test")
    spam = published_comment(article, parent_id=top.pk)
    moderation.mark_spam(spam, actor=moderation.SYSTEM)

    page = get_list(api, article)

    assert all_ids(page["results"]) == [top.pk, shown.pk]


def test_replies_of_a_reply_that_is_no_longer_public_are_not_shown(api, article):
    top = published_comment(article)
    hidden = published_comment(article, parent_id=top.pk)
    published_comment(article, parent_id=hidden.pk)
    moderation.mark_spam(hidden, actor=moderation.SYSTEM)

    page = get_list(api, article)

    assert all_ids(page["results"]) == [top.pk]


# --- Removed comments -----------------------------------------------------------------


def test_a_removed_comment_with_a_published_reply_shows_as_a_placeholder(api, article):
    top = published_comment(
        article, author_name="Gone", author_url="https://gone.example.org/", body="Secret text."
    )
    reply = published_comment(article, parent_id=top.pk, body="Still here.")
    remove(top)

    page = get_list(api, article)

    assert ids(page["results"]) == [top.pk]
    placeholder = page["results"][0]
    assert placeholder["removed"] is True
    assert placeholder["author_name"] == ""
    assert placeholder["body_html"] == ""
    assert placeholder["author_url"] is None
    assert ids(placeholder["replies"]) == [reply.pk]
    assert placeholder["replies"][0]["removed"] is False
    assert placeholder["replies"][0]["body_html"] == "<p>Still here.</p>"
    assert "Secret text" not in str(page)
    assert "Gone" not in str(page)
    assert page["count"] == 1


def test_a_removed_reply_with_a_published_reply_shows_as_a_nested_placeholder(api, article):
    top = published_comment(article)
    middle = published_comment(article, parent_id=top.pk, body="Removed middle.")
    leaf = published_comment(article, parent_id=middle.pk)
    remove(middle)

    page = get_list(api, article)

    placeholder = page["results"][0]["replies"][0]
    assert placeholder["id"] == middle.pk
    assert placeholder["removed"] is True
    assert placeholder["author_name"] == ""
    assert placeholder["body_html"] == ""
    assert placeholder["author_url"] is None
    assert ids(placeholder["replies"]) == [leaf.pk]
    assert page["count"] == 2


def test_a_removed_comment_without_published_replies_is_not_shown(api, article):
    lonely = published_comment(article)
    remove(lonely)
    with_pending_reply = published_comment(article)
    submit_comment(article, parent_id=with_pending_reply.pk)
    remove(with_pending_reply)
    with_removed_reply = published_comment(article)
    removed_reply = published_comment(article, parent_id=with_removed_reply.pk)
    remove(removed_reply)
    remove(with_removed_reply)
    shown = published_comment(article)

    page = get_list(api, article)

    assert all_ids(page["results"]) == [shown.pk]
    assert page["count"] == 1


def test_a_removed_reply_without_published_replies_is_not_shown(api, article):
    top = published_comment(article)
    removed_reply = published_comment(article, parent_id=top.pk)
    remove(removed_reply)

    page = get_list(api, article)

    assert all_ids(page["results"]) == [top.pk]


# --- Order and pagination ---------------------------------------------------------------


@pytest.fixture
def three_in_time(article):
    start = timezone.now() - dt.timedelta(hours=3)
    comments = [published_comment(article, body=f"Comment {n}.") for n in range(3)]
    # Created in a shuffled order in time, so insertion order is not what is tested.
    for comment, hours in zip(comments, (2, 0, 1), strict=True):
        set_created_at(comment, start + dt.timedelta(hours=hours))
    return comments


def test_oldest_first_is_the_default_order(api, article, three_in_time):
    a, b, c = three_in_time

    assert ids(get_list(api, article)["results"]) == [b.pk, c.pk, a.pk]
    assert ids(get_list(api, article, order="oldest")["results"]) == [b.pk, c.pk, a.pk]


def test_newest_first_reverses_the_order(api, article, three_in_time):
    a, b, c = three_in_time

    assert ids(get_list(api, article, order="newest")["results"]) == [a.pk, c.pk, b.pk]


def test_limit_sets_the_page_size(api, article):
    made = [published_comment(article) for _ in range(5)]

    page = get_list(api, article, limit=2)

    assert ids(page["results"]) == [made[0].pk, made[1].pk]
    assert page["next"] is not None
    assert page["previous"] is None
    assert page["count"] == 5


def test_the_default_page_holds_fifty_comments(api, article):
    for _ in range(51):
        published_comment(article)

    page = get_list(api, article)

    assert len(page["results"]) == 50
    assert page["next"] is not None


def test_the_largest_limit_is_accepted(api, article):
    published_comment(article)

    page = get_list(api, article, limit=100)

    assert len(page["results"]) == 1
    assert page["next"] is None


def make_timeline(article, count: int) -> list[Comment]:
    """`count` published top-level comments, several sharing a timestamp, oldest first."""
    base = timezone.now() - dt.timedelta(days=1)
    comments = [published_comment(article, body=f"Number {n}.") for n in range(count)]
    for n, comment in enumerate(comments):
        # Groups of three share one instant: ties are broken by id.
        set_created_at(comment, base + dt.timedelta(seconds=n // 3))
    return sorted(comments, key=lambda c: (c.created_at, c.pk))


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("order", ["oldest", "newest"])
def test_following_next_visits_every_comment_once_in_order(api, article, limit, order):
    timeline = make_timeline(article, 17)
    expected = [comment.pk for comment in timeline]
    if order == "newest":
        expected.reverse()

    seen, pages = follow_pages(api, list_url(article, limit=limit, order=order))

    assert seen == expected
    assert len(seen) == len(set(seen))
    assert all(len(page["results"]) == limit for page in pages[:-1])
    assert 1 <= len(pages[-1]["results"]) <= limit
    assert all(page["count"] == 17 for page in pages)
    assert pages[0]["previous"] is None
    assert all(page["previous"] is not None for page in pages[1:])


def test_following_previous_walks_back_over_the_same_pages(api, article):
    make_timeline(article, 11)
    _, pages = follow_pages(api, list_url(article, limit=3))

    backwards: list[list[int]] = []
    url = pages[-1]["previous"]
    while url is not None:
        page = api.get(url).json()
        backwards.append(ids(page["results"]))
        url = page["previous"]

    assert backwards == [ids(page["results"]) for page in reversed(pages[:-1])]


def test_a_comment_published_while_paging_does_not_shift_the_pages(api, article):
    timeline = make_timeline(article, 6)
    first = api.get(list_url(article, limit=3)).json()
    published_comment(article)  # newer than all, lands after the last page

    second = api.get(first["next"]).json()

    assert ids(first["results"]) + ids(second["results"]) == [c.pk for c in timeline][:6]


def test_replies_travel_with_their_top_level_comment_across_pages(api, article):
    tops = [published_comment(article) for _ in range(4)]
    replies = {top.pk: published_comment(article, parent_id=top.pk).pk for top in tops}

    _, pages = follow_pages(api, list_url(article, limit=1))

    for page in pages:
        (top,) = page["results"]
        assert ids(top["replies"]) == [replies[top["id"]]]


# --- Refused queries ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("limit", "0"),
        ("limit", "101"),
        ("limit", "-5"),
        ("limit", "abc"),
        ("order", "random"),
        ("order", "NEWEST"),
    ],
)
def test_a_bad_query_parameter_is_400_naming_it(api, article, field, value):
    published_comment(article)

    response = api.get(list_url(article, **{field: value}))

    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]
    assert response.json()[field]


def test_an_unknown_article_is_404(api):
    response = api.get("/api/v1/articles/no-such-article/comments/")

    assert response.status_code == 404
    assert "detail" in response.json()


def test_a_garbage_cursor_is_404(api, article):
    published_comment(article)

    response = api.get(list_url(article, cursor="not-a-cursor"))

    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid cursor"}


def test_a_forged_cursor_with_a_bad_position_is_refused_like_a_garbage_cursor(api, article):
    published_comment(article)
    forged = base64.b64encode(b"o=0&p=not-a-date").decode()

    response = api.get(list_url(article, cursor=forged))

    assert response.status_code == 404, response.content
    assert response.json() == {"detail": "Invalid cursor"}


# --- A constant number of queries -------------------------------------------------------------


def bulk_published(article, count: int, *, start: dt.datetime) -> list[Comment]:
    """`count` published top-level comments inserted in one statement (read tests only)."""
    rows = [
        Comment(
            article=article,
            author_name=f"Reader {n}",
            author_email=f"reader{n}@example.com",
            body=f"Bulk comment {n}.",
            body_html=f"<p>Bulk comment {n}.</p>",
            status=Comment.Status.PUBLISHED,
            published_at=start,
            checked_at=start,
            ip_address="192.0.2.10",
        )
        for n in range(count)
    ]
    created = Comment.objects.bulk_create(rows)
    for n, comment in enumerate(created):
        comment.created_at = start + dt.timedelta(seconds=n)
    Comment.objects.bulk_update(created, ["created_at"])
    Article.objects.filter(pk=article.pk).refresh_comment_counts()
    return created


def bulk_replies(article, parents: list[Comment], per_parent: int) -> list[Comment]:
    rows = [
        Comment(
            article=article,
            parent=parent,
            thread_id=parent.thread_id or parent.pk,
            depth=parent.depth + 1,
            author_name="Replier",
            author_email="replier@example.com",
            body="A bulk reply.",
            body_html="<p>A bulk reply.</p>",
            status=Comment.Status.PUBLISHED,
            published_at=parent.published_at,
            checked_at=parent.checked_at,
        )
        for parent in parents
        for _ in range(per_parent)
    ]
    created = Comment.objects.bulk_create(rows)
    Article.objects.filter(pk=article.pk).refresh_comment_counts()
    return created


def populate(article, total: int) -> None:
    """`total` published comments: a few made through the factories (a reply and a
    removed placeholder among them), the rest bulk-created with a fifth of replies."""
    top = published_comment(article)
    published_comment(article, parent_id=top.pk)
    gone = published_comment(article)
    published_comment(article, parent_id=gone.pk)
    remove(gone)
    made = 3  # published: top, its reply, the reply under the placeholder
    remaining = total - made
    reply_count = remaining // 5
    tops = bulk_published(
        article, remaining - reply_count, start=timezone.now() + dt.timedelta(minutes=1)
    )
    # Replies under the first top-level comments, so the first pages carry them.
    bulk_replies(article, tops[:reply_count], per_parent=1)
    assert Comment.objects.for_article(article.pk).published().count() == total


def test_the_list_takes_the_same_number_of_queries_for_5_and_500_comments(
    api, django_assert_max_num_queries
):
    small = ArticleFactory()
    populate(small, 5)
    with CaptureQueriesContext(connection) as measured:
        small_page = get_list(api, small)
    assert small_page["count"] == 5
    assert len(measured) <= 3, [query["sql"] for query in measured]

    large = ArticleFactory()
    populate(large, 500)
    with django_assert_max_num_queries(len(measured)):
        large_page = get_list(api, large)

    assert large_page["count"] == 500
    assert len(large_page["results"]) == 50
    assert sum(len(comment["replies"]) for comment in large_page["results"]) >= 40


def test_every_page_takes_the_same_number_of_queries(api, django_assert_max_num_queries):
    article = ArticleFactory()
    populate(article, 500)
    with CaptureQueriesContext(connection) as measured:
        first = get_list(api, article, limit=100)

    url = first["next"]
    pages = 1
    while url is not None:
        with django_assert_max_num_queries(len(measured)):
            response = api.get(url)
        url = response.json()["next"]
        pages += 1

    # 398 bulk top-level comments, one published and one placeholder: 400, in pages of 100.
    assert pages == 4
