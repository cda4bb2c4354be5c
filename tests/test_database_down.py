"""With the database unreachable the API answers 503 with Retry-After, as JSON, nothing is
half-written, and a check that loses the database leaves the comment to the sweeper (R05)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from comments import hooks, moderation, prepared, tasks
from comments.models import Comment, CommentEvent
from tests.factories import submit_comment

pytestmark = pytest.mark.django_db


def test_a_submit_while_the_database_is_down_is_a_quick_503(api, article, monkeypatch):
    def down(**kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(moderation, "submit", down)
    response = api.post(
        f"/api/v1/articles/{article.slug}/comments/",
        {"author_name": "Ada", "author_email": "ada@example.com", "body": "Hello"},
        format="json",
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["detail"].startswith("The service is briefly unavailable")
    assert Comment.objects.count() == 0


def test_a_read_while_the_database_is_down_is_a_503(api, monkeypatch):
    from articles.models import Article

    def down(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(Article.objects, "order_by", down)
    response = api.get("/api/v1/articles/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["transactional", "one statement"])
def test_a_submit_that_loses_the_database_while_writing_is_a_503_and_writes_nothing(
    api, article, monkeypatch, path
):
    """Transactional path: the comment row is INSERTed, then the audit row fails, and
    the whole submit rolls back. One-statement path (PostgreSQL's common submission):
    the statement that writes both fails."""
    checks_sent: list[int] = []
    monkeypatch.setattr(moderation, "_send_check", checks_sent.append)

    def connection_lost(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    if path == "transactional":
        monkeypatch.setattr(hooks, "submission_records_nothing", lambda **kwargs: False)
        monkeypatch.setattr(CommentEvent, "save", connection_lost)
    else:
        if connection.vendor != "postgresql":
            pytest.skip("the one-statement path is PostgreSQL's")
        real_execute = prepared.PreparingCursor.execute

        def lost_on_insert(self, query, params=None, **options):
            if "INSERT INTO" in query:
                connection_lost()
            return real_execute(self, query, params, **options)

        monkeypatch.setattr(prepared.PreparingCursor, "execute", lost_on_insert)
    response = api.post(
        f"/api/v1/articles/{article.slug}/comments/",
        {"author_name": "Ada", "author_email": "ada@example.com", "body": "Hello"},
        format="json",
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert Comment.objects.count() == 0, "no comment without its audit row"
    assert CommentEvent.objects.count() == 0
    assert checks_sent == [], "nothing enqueued for a comment that was not written"


def test_a_check_that_loses_the_database_backs_off_and_resumes(standin, monkeypatch):
    """Akismet answered, then recording the verdict failed: the task retries (with
    backoff; eager here) and the comment is published once, with one event."""
    comment = submit_comment()
    real_record_check = moderation.record_check
    failures: list[int] = []

    def database_down_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise OperationalError("could not connect to server: Connection refused")
        return real_record_check(*args, **kwargs)

    monkeypatch.setattr(moderation, "record_check", database_down_once)
    assert tasks.check_comment.apply(args=[comment.pk]).get() == "akismet_ham"
    comment.refresh_from_db()
    assert comment.status == Comment.Status.PUBLISHED
    assert events_of(comment) == [("", "pending"), ("pending", "published")]


def test_a_database_down_past_the_retries_leaves_the_comment_pending_for_the_sweeper(
    standin, monkeypatch
):
    """Nothing is lost or half-applied; the sweeper hands the comment out again."""
    comment = submit_comment()
    real_record_check = moderation.record_check
    down = [True]

    def database_down(*args, **kwargs):
        if down[0]:
            raise OperationalError("could not connect to server: Connection refused")
        return real_record_check(*args, **kwargs)

    monkeypatch.setattr(moderation, "record_check", database_down)
    result = tasks.check_comment.apply(args=[comment.pk])
    assert result.failed()
    assert isinstance(result.result, OperationalError)
    comment.refresh_from_db()
    assert comment.status == Comment.Status.PENDING
    assert comment.next_check_at is not None
    assert events_of(comment) == [("", "pending")]

    down[0] = False
    swept: list[int] = []
    monkeypatch.setattr(tasks.check_comment, "delay", swept.append)
    Comment.objects.filter(pk=comment.pk).update(
        next_check_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert tasks.sweep_pending() == 1
    assert swept == [comment.pk]
    assert tasks.check_comment.apply(args=swept).get() == "akismet_ham"
    comment.refresh_from_db()
    assert comment.status == Comment.Status.PUBLISHED
    assert events_of(comment) == [("", "pending"), ("pending", "published")]


def events_of(comment: Comment) -> list[tuple[str, str]]:
    return list(
        CommentEvent.objects.filter(comment=comment).values_list("from_status", "to_status")
    )
