"""`manage.py seed_demo`: demo articles full of published comments, reset on every run."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from articles.models import Article
from comments.models import Comment, CommentEvent
from comments.rendering import LINK_REL, render_body
from tests.factories import ArticleFactory, held_comment, published_comment

pytestmark = pytest.mark.django_db

SEEDED_SLUGS = [f"article-{k}" for k in range(51)]


@pytest.fixture
def seed(django_capture_on_commit_callbacks):
    """Run the command as `manage.py` would (its on-commit work included); returns stdout."""

    def run(comments: int, **options: object) -> str:
        out = StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            call_command("seed_demo", comments=comments, stdout=out, **options)
        return out.getvalue()

    return run


def comments_of(slug: str):
    return Comment.objects.filter(article__slug=slug)


def seeded_ids() -> set[int]:
    return set(Comment.objects.filter(article__slug__in=SEEDED_SLUGS).values_list("id", flat=True))


def seeded_rows() -> dict[int, dict]:
    rows = Comment.objects.filter(article__slug__in=SEEDED_SLUGS).values(
        "id", "article_id", "parent_id", "thread_id", "depth", "created_at"
    )
    return {row["id"]: row for row in rows}


def test_article_0_gets_exactly_the_requested_number_of_published_comments(seed):
    seed(300)

    assert comments_of("article-0").count() == 300
    assert comments_of("article-0").published().count() == 300


def test_about_a_fifth_of_the_comments_are_replies(seed):
    seed(300)

    replies = comments_of("article-0").filter(parent__isnull=False).count()
    assert 0.15 * 300 <= replies <= 0.25 * 300


def test_replies_are_threaded_exactly_like_real_submissions(seed, settings):
    seed(300)

    rows = seeded_rows()
    replies = [row for row in rows.values() if row["parent_id"] is not None]
    assert replies
    for row in rows.values():
        parent = rows.get(row["parent_id"])
        if parent is None:
            assert row["parent_id"] is None
            assert (row["thread_id"], row["depth"]) == (None, 0)
            continue
        assert parent["article_id"] == row["article_id"]
        assert row["thread_id"] == (parent["thread_id"] or parent["id"])
        assert row["depth"] == parent["depth"] + 1 <= settings.COMMENTS_MAX_DEPTH
        assert parent["created_at"] < row["created_at"]


def test_replies_never_nest_below_the_configured_depth(seed, settings):
    settings.COMMENTS_MAX_DEPTH = 1

    seed(300)

    depths = set(comments_of("article-0").values_list("depth", flat=True))
    assert depths == {0, 1}
    for reply in comments_of("article-0").filter(parent__isnull=False):
        assert reply.parent_id == reply.thread_id


def test_a_reply_answers_one_of_the_fifty_comments_before_it(seed, settings):
    settings.COMMENTS_MAX_DEPTH = 1000  # no reply is moved up to a shallower ancestor

    seed(600)

    order = list(
        comments_of("article-0").order_by("created_at", "id").values_list("id", "parent_id")
    )
    position = {comment_id: index for index, (comment_id, _) in enumerate(order)}
    gaps = [position[comment_id] - position[parent] for comment_id, parent in order if parent]
    assert gaps and min(gaps) >= 1 and max(gaps) <= 50


def test_the_first_page_holds_about_as_many_comments_at_any_article_size(seed, api):
    """The benchmark compares the first page at N=100 with N=100,000: the same work only
    if the oldest threads do not collect more replies as the article grows."""

    def first_page_size() -> int:
        def size(items: list[dict]) -> int:
            return sum(1 + size(item["replies"]) for item in items)

        response = api.get("/api/v1/articles/article-0/comments/")
        assert response.status_code == 200, response.content
        return size(response.json()["results"])

    seed(200)
    small = first_page_size()
    seed(4000)
    large = first_page_size()

    assert small > 50 and abs(large - small) <= 0.15 * small, (small, large)


def test_created_at_lies_in_the_past_and_grows_with_the_id(seed):
    started = timezone.now()
    seed(300)

    times = list(
        Comment.objects.filter(article__slug__in=SEEDED_SLUGS)
        .order_by("id")
        .values_list("created_at", flat=True)
    )
    assert times == sorted(times)
    assert times[-1] < started
    assert (times[-1] - times[0]).days >= 3


def test_bodies_are_200_to_600_characters_rendered_like_real_comments(seed):
    seed(300)

    pairs = set(comments_of("article-0").values_list("body", "body_html"))
    assert len(pairs) > 100
    for body, body_html in pairs:
        assert 200 <= len(body) <= 600
        assert body_html
        assert body_html == render_body(body)
    html = "".join(body_html for _, body_html in pairs)
    assert "<em>" in html
    assert f'rel="{LINK_REL}"' in html


def test_seeded_comments_passed_the_spam_check_as_ham(seed):
    seed(300)

    comments = list(comments_of("article-0"))
    for comment in comments:
        assert comment.checked_at is not None
        assert comment.akismet_verdict == "ham"
        assert comment.akismet_checked_at is not None
        assert comment.published_at is not None
        assert comment.held_reason == ""
        assert comment.next_check_at is None
    assert len({comment.author_name for comment in comments}) > 50
    assert len({comment.ip_address for comment in comments}) > 20
    assert len({comment.user_agent for comment in comments}) > 1


def test_articles_1_to_50_exist_with_0_to_30_comments_each(seed):
    seed(300)

    articles = Article.objects.filter(slug__in=SEEDED_SLUGS)
    assert sorted(articles.values_list("slug", flat=True)) == sorted(SEEDED_SLUGS)
    for article in articles.with_comment_count():
        assert article.comments_open
        assert article.url == f"https://example.com/articles/{article.slug}"
        assert article.published_at is not None
        if article.slug != "article-0":
            assert 0 <= article.comment_count <= 30
            assert article.comments.count() == article.comment_count


def test_running_again_resets_instead_of_accumulating(seed):
    article = ArticleFactory(slug="article-0")
    earlier = published_comment(article)
    seed(300)
    first_ids = seeded_ids()

    seed(120, seed=2)

    assert comments_of("article-0").count() == 120
    assert not Comment.objects.filter(pk=earlier.pk).exists()
    assert not CommentEvent.objects.filter(comment_id=earlier.pk).exists()
    assert not seeded_ids() & first_ids
    assert Article.objects.filter(slug__in=SEEDED_SLUGS).count() == 51


def test_other_articles_are_untouched(seed):
    other = ArticleFactory(slug="city-council-budget", title="The budget")
    published = published_comment(other)
    held = held_comment(other)
    events = CommentEvent.objects.filter(comment__article=other).count()

    seed(300)

    other.refresh_from_db()
    assert other.title == "The budget"
    assert set(Comment.objects.filter(article=other)) == {published, held}
    assert CommentEvent.objects.filter(comment__article=other).count() == events


def test_the_public_list_shows_the_seeded_comments(seed, api):
    seed(300)

    response = api.get("/api/v1/articles/article-0/comments/")

    assert response.status_code == 200, response.content
    assert response.json()["count"] == 300
    assert response.json()["results"]


def test_the_same_seed_gives_the_same_comments(seed):
    def snapshot() -> list[tuple]:
        return list(
            Comment.objects.filter(article__slug__in=SEEDED_SLUGS)
            .order_by("id")
            .values_list("article__slug", "depth", "author_name", "body")
        )

    seed(200, seed=7)
    first = snapshot()
    seed(200, seed=7)

    assert snapshot() == first
    seed(200, seed=8)
    assert snapshot() != first


def test_the_stored_comment_counts_match_the_comments(seed):
    if not any(f.name == "published_comment_count" for f in Article._meta.get_fields()):
        pytest.skip("Article has no published_comment_count yet")

    seed(300)

    for article in Article.objects.filter(slug__in=SEEDED_SLUGS).with_comment_count():
        assert article.published_comment_count == article.comment_count


def test_the_read_cache_of_every_seeded_article_is_invalidated(seed, monkeypatch):
    read_cache = pytest.importorskip("comments.read_cache")
    invalidated: list[str] = []
    monkeypatch.setattr(read_cache, "invalidate_article", invalidated.append)

    seed(10)

    assert sorted(invalidated) == sorted(SEEDED_SLUGS)


def test_it_prints_one_summary_line_and_nothing_at_verbosity_0(seed):
    summary = seed(300)

    assert summary.count("\n") == 1
    assert "51 articles" in summary
    assert "replies" in summary
    assert seed(300, verbosity=0) == ""


def test_a_negative_count_is_refused(seed):
    with pytest.raises(CommandError):
        seed(-1)
