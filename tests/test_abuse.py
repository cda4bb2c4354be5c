"""Abuse checks on the public API: throttles, client IP through proxies, honeypot,
form token timing, duplicates and flood control."""

from __future__ import annotations

import datetime as dt
import random
import time

import pytest
from django.core import signing
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from comments import abuse, moderation, spam_check
from comments.models import Comment
from tests.factories import ArticleFactory, fresh_ip, published_comment, submit_comment

pytestmark = pytest.mark.django_db


def post(api, article, ip=None, **fields):
    body = {"author_name": "Ada", "author_email": "ada@example.com", "body": "A remark."}
    body.update(fields)
    return api.post(
        f"/api/v1/articles/{article.slug}/comments/",
        body,
        format="json",
        REMOTE_ADDR=ip or fresh_ip(),
    )


def test_submits_are_throttled_per_client_ip_with_retry_after(api, settings):
    settings.COMMENTS_THROTTLE_SUBMIT = "2/min"
    article, ip = ArticleFactory(), fresh_ip()
    tag = random.randrange(10**9)  # the e-mail counters outlive the test
    for n in range(2):
        email = f"a{n}-{tag}@example.com"
        assert post(api, article, ip, author_email=email, body=f"n{n}").status_code == 202
    response = post(api, article, ip, author_email=f"a3-{tag}@example.com", body="third")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert Comment.objects.count() == 2
    other = post(api, article, fresh_ip(), author_email=f"b-{tag}@example.com")
    assert other.status_code == 202


def test_submits_are_throttled_per_email_across_addresses(api, settings):
    settings.COMMENTS_THROTTLE_SUBMIT = "2/min"
    article = ArticleFactory()
    email = f"e{random.randrange(10**9)}@example.com"
    assert post(api, article, author_email=email, body="one").status_code == 202
    assert post(api, article, author_email=email, body="two").status_code == 202
    assert post(api, article, author_email=email.upper(), body="three").status_code == 429


def test_both_submit_limits_are_counted_in_one_cache_round_trip(api, settings, monkeypatch):
    settings.COMMENTS_THROTTLE_SUBMIT = "5/min"
    counted = []
    count_hits = abuse.count_hits

    def spy(keys, duration):
        counted.append(list(keys))
        return count_hits(keys, duration)

    monkeypatch.setattr(abuse, "count_hits", spy)
    email = f"one{random.randrange(10**9)}@example.com"
    assert post(api, ArticleFactory(), author_email=email).status_code == 202
    (keys,) = counted
    assert [key.split(":")[1] for key in keys] == ["submit-ip", "submit-email"]
    assert not any(email in key for key in keys)  # digests, not addresses


def test_a_throttled_submit_waits_at_most_until_its_window_ends(api, settings):
    settings.COMMENTS_THROTTLE_SUBMIT = "1/min"
    article, ip = ArticleFactory(), fresh_ip()
    tag = random.randrange(10**9)
    assert post(api, article, ip, author_email=f"w1-{tag}@example.com").status_code == 202
    response = post(api, article, ip, author_email=f"w2-{tag}@example.com", body="again")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "throttled" in response.json()["detail"]


def test_submits_are_accepted_without_limits_while_the_cache_is_down(api, settings, monkeypatch):
    """A cache outage must not refuse commenters: the limit is skipped and logged."""
    settings.COMMENTS_THROTTLE_SUBMIT = "1/min"

    def down(keys, duration):
        raise ConnectionError("cache down")

    monkeypatch.setattr(abuse, "count_hits", down)
    article, ip = ArticleFactory(), fresh_ip()
    email = f"down{random.randrange(10**9)}@example.com"
    codes = [post(api, article, ip, author_email=email, body=f"b{n}").status_code for n in range(3)]
    assert codes == [202, 202, 202]


def test_a_limit_counter_counts_and_expires_with_its_window(settings):
    key = f"throttle:test:{random.randrange(10**12)}"
    assert abuse.count_hits([key, key + ":other"], 60) == [1, 1]
    assert abuse.count_hits([key], 60) == [2]
    client = abuse._redis_client(key)
    if client is not None:  # Redis: the counter goes when its window is over
        assert 0 < client.ttl(cache.make_and_validate_key(key)) <= 60


def test_reads_have_their_own_looser_throttle(api, settings):
    settings.COMMENTS_THROTTLE_READ = "3/min"
    article, ip = ArticleFactory(), fresh_ip()
    url = f"/api/v1/articles/{article.slug}/comments/"
    codes = [api.get(url, REMOTE_ADDR=ip).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_a_zero_rate_turns_the_throttle_off(api, settings):
    settings.COMMENTS_THROTTLE_SUBMIT = "0"
    article, ip = ArticleFactory(), fresh_ip()
    codes = [post(api, article, ip, body=f"b{n}").status_code for n in range(12)]
    assert codes == [202] * 12


def test_a_spoofed_forwarded_for_changes_nothing_without_trusted_proxies(api, settings):
    settings.COMMENTS_THROTTLE_SUBMIT = "1/min"
    settings.COMMENTS_TRUSTED_PROXIES = "0"
    article, ip = ArticleFactory(), fresh_ip()
    tag = random.randrange(10**9)  # the e-mail counters outlive the test
    first = api.post(
        f"/api/v1/articles/{article.slug}/comments/",
        {"author_name": "A", "author_email": f"x1-{tag}@example.com", "body": "one"},
        format="json",
        REMOTE_ADDR=ip,
        HTTP_X_FORWARDED_FOR="203.0.113.1",
    )
    second = api.post(
        f"/api/v1/articles/{article.slug}/comments/",
        {"author_name": "A", "author_email": f"x2-{tag}@example.com", "body": "two"},
        format="json",
        REMOTE_ADDR=ip,
        HTTP_X_FORWARDED_FOR="203.0.113.2",
    )
    assert first.status_code == 202
    assert second.status_code == 429
    assert Comment.objects.get().ip_address == ip


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "expected"),
    [
        ("1", "10.0.0.2", "203.0.113.9", "203.0.113.9"),
        ("1", "10.0.0.2", "6.6.6.6, 203.0.113.9", "203.0.113.9"),
        ("2", "10.0.0.2", "6.6.6.6, 203.0.113.9, 10.0.0.3", "203.0.113.9"),
        ("10.0.0.0/8", "10.0.0.2", "6.6.6.6, 203.0.113.9, 10.1.2.3", "203.0.113.9"),
        ("10.0.0.0/8", "192.0.2.50", "203.0.113.9", "192.0.2.50"),
        ("10.0.0.0/8, 2001:db8::/32", "2001:db8::1", "203.0.113.9", "203.0.113.9"),
        ("1", "10.0.0.2", "not-an-ip", "10.0.0.2"),
        ("1", "10.0.0.2", "", "10.0.0.2"),
    ],
)
def test_the_client_ip_is_taken_only_through_trusted_proxies(
    api, settings, trusted, remote, forwarded, expected
):
    settings.COMMENTS_TRUSTED_PROXIES = trusted
    article = ArticleFactory()
    response = api.post(
        f"/api/v1/articles/{article.slug}/comments/",
        {"author_name": "A", "author_email": "a@example.com", "body": "hi"},
        format="json",
        REMOTE_ADDR=remote,
        HTTP_X_FORWARDED_FOR=forwarded,
    )
    assert response.status_code == 202
    assert Comment.objects.get().ip_address == expected


def test_a_filled_honeypot_is_spam_without_asking_akismet(api, standin):
    article = ArticleFactory()
    response = post(api, article, website="http://cheap.example/")
    assert response.status_code == 202, "a bot learns nothing from the answer"
    comment = Comment.objects.get()
    assert spam_check.check(comment.pk) == "honeypot"
    comment.refresh_from_db()
    assert (comment.status, comment.decision_reason) == ("spam", "honeypot")
    assert standin.state.requests_to("comment-check") == []


def test_an_empty_honeypot_is_fine(api):
    assert post(api, ArticleFactory(), website="").status_code == 202
    assert Comment.objects.get().honeypot_tripped is False


def token_issued_ago(slug: str, seconds: float) -> str:
    real = time.time
    signing.time.time = lambda: real() - seconds
    try:
        return abuse.make_form_token(slug)
    finally:
        signing.time.time = real


def test_the_form_token_endpoint_gives_a_token_and_the_rules(api, settings):
    settings.COMMENTS_MIN_SUBMIT_SECONDS = 3
    article = ArticleFactory()
    response = api.get(f"/api/v1/articles/{article.slug}/form-token/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response.json()["min_submit_seconds"] == 3
    assert response.json()["form_token"]
    assert api.get("/api/v1/articles/nope/form-token/").status_code == 404


@pytest.mark.parametrize(
    ("make_token", "accepted"),
    [
        (lambda slug: None, False),
        (lambda slug: token_issued_ago(slug, 0), False),
        (lambda slug: token_issued_ago(slug, 5), True),
        (lambda slug: token_issued_ago("other-article", 5), False),
        (lambda slug: token_issued_ago(slug, 5)[:-2] + "xx", False),
        (lambda slug: token_issued_ago(slug, 2 * 24 * 3600), False),
        (lambda slug: "garbage", False),
    ],
    ids=["missing", "too-fast", "ok", "other-article", "tampered", "expired", "garbage"],
)
def test_submitting_needs_a_form_token_old_enough(api, settings, make_token, accepted):
    settings.COMMENTS_MIN_SUBMIT_SECONDS = 3
    article = ArticleFactory()
    token = make_token(article.slug)
    fields = {"form_token": token} if token is not None else {}
    response = post(api, article, **fields)
    if accepted:
        assert response.status_code == 202, response.json()
    else:
        assert response.status_code == 400
        assert list(response.json()) == ["form_token"]
        assert Comment.objects.count() == 0


def test_zero_minimum_time_means_no_token_is_needed(api, settings):
    settings.COMMENTS_MIN_SUBMIT_SECONDS = 0
    assert post(api, ArticleFactory()).status_code == 202


def test_the_same_text_twice_from_one_author_is_a_409(api, settings):
    settings.COMMENTS_DUPLICATE_WINDOW_SECONDS = 86400
    article = ArticleFactory()
    assert post(api, article, body="Great piece.").status_code == 202
    again = post(api, article, body="  Great piece.  ")
    assert again.status_code == 409
    assert again.json()["detail"] == "Looks like you already said that."
    assert Comment.objects.count() == 1
    assert (
        post(api, article, body="Great piece.", author_email="other@example.com").status_code == 202
    )
    assert post(api, ArticleFactory(), body="Great piece.").status_code == 202


def test_the_duplicate_check_finds_exactly_what_the_orm_query_finds(settings):
    """On PostgreSQL the check is a prepared statement; it must match the ORM query
    it replaced: same author, text and article, inside the window, not removed."""
    settings.COMMENTS_DUPLICATE_WINDOW_SECONDS = 3600
    article, other_article = ArticleFactory(), ArticleFactory()
    said = submit_comment(article, author_email="ada@example.com", body="Said it.")
    removed = published_comment(article, author_email="ada@example.com", body="Took it back.")
    moderation.remove(removed, actor=moderation.SYSTEM, reason="test")
    old = submit_comment(article, author_email="ada@example.com", body="Long ago.")
    Comment.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(hours=2))
    probes = [
        (article, "ada@example.com", "Said it.", True),
        (article, "ada@example.com", "Took it back.", False),
        (article, "ada@example.com", "Long ago.", False),
        (article, "bob@example.com", "Said it.", False),
        (article, "ada@example.com", "Said it", False),
        (other_article, "ada@example.com", "Said it.", False),
    ]
    for target, email, body, expected in probes:
        orm = (
            Comment.objects.filter(
                article_id=target.pk,
                author_email=email,
                created_at__gte=timezone.now() - dt.timedelta(seconds=3600),
                body=body,
            )
            .exclude(status=Comment.Status.REMOVED)
            .exists()
        )
        found = abuse.is_duplicate(article_id=target.pk, author_email=email, body=body)
        assert found is orm is expected, (email, body, target.slug)
    assert said.status == Comment.Status.PENDING


def test_posting_again_within_the_flood_interval_is_a_429(api, settings):
    settings.COMMENTS_FLOOD_SECONDS = 30
    article, ip = ArticleFactory(), fresh_ip()
    assert post(api, article, ip, body="first").status_code == 202
    response = post(api, article, ip, body="second")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 30
    assert post(api, article, fresh_ip(), body="third").status_code == 202
    assert Comment.objects.count() == 2


def test_flood_control_reads_a_time_an_older_release_stored(api, settings):
    """Older releases stored the time through Django's cache (pickled); during a rolling
    deploy such a value must still refuse the second comment, not fail."""
    settings.COMMENTS_FLOOD_SECONDS = 30
    ip = fresh_ip()
    cache.set(f"flood:{abuse.client_key(ip)}", time.time(), timeout=30)
    response = post(api, ArticleFactory(), ip, body="second")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 30


def test_the_limits_reuse_one_redis_client_instead_of_building_one_per_call(settings):
    first, second = abuse._redis_client("throttle:a"), abuse._redis_client("flood:b")
    if settings.CACHES["default"]["BACKEND"].endswith(".RedisCache"):
        assert first is not None
        assert first is second
    else:  # no Redis: the limits use Django's cache API
        assert first is None and second is None


def test_a_refused_submission_does_not_use_up_the_flood_interval(api, settings):
    settings.COMMENTS_FLOOD_SECONDS = 30
    article, ip = ArticleFactory(), fresh_ip()
    assert post(api, article, ip, body="").status_code == 400
    assert post(api, article, ip, body="now valid").status_code == 202


def _prepared_plans(statement_start: str) -> tuple[int, int]:
    """(generic, custom) plans of this connection's prepared statement so far."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE %s",
            [statement_start.replace("%", r"\%") + "%"],
        )
        rows = cursor.fetchall()
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plan cache")
def test_the_duplicate_check_is_planned_once_not_on_every_submit(settings):
    """The check is a prepared statement: PostgreSQL plans it for any article and
    author (its generic plan) unless a plan for the actual values looks cheaper. With
    only an index on the article and one on the author's address, it always did, and
    planned the statement again on every submit (1-2 ms of database CPU each, with the
    comment table's many indexes); an index on both makes the generic plan as cheap."""
    settings.COMMENTS_DUPLICATE_WINDOW_SECONDS = 3600
    # Shaped like a site's table: one article with most of the comments (the
    # benchmark's article-0), readers who comment often.
    articles = [ArticleFactory() for _ in range(30)]
    Comment.objects.bulk_create(
        Comment(
            article=articles[0] if i % 10 else articles[i // 10 % 30],
            author_name=f"Reader {i % 100}",
            author_email=f"reader-{i % 100}@example.com",
            body=f"Comment {i}.",
            body_html=f"<p>Comment {i}.</p>",
        )
        for i in range(5000)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Comment._meta.db_table}")
    statement = abuse._duplicate_sql().split(" WHERE ")[0]

    def check(n: int) -> bool:
        email = f"new-{n}@example.com"
        article = articles[1 + n % 29]  # one with few comments, as most are
        return abuse.is_duplicate(article_id=article.pk, author_email=email, body="x")

    for n in range(6):  # PostgreSQL tries plans for the actual values five times first
        assert check(n) is False
    before = _prepared_plans(statement)
    for n in range(6, 10):
        assert check(n) is False
    generic, custom = _prepared_plans(statement)
    assert (generic - before[0], custom - before[1]) == (4, 0)
