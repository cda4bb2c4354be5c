"""Committed comments reach the workers in batches: one message for the comments
committed within a few milliseconds, checked side by side by the worker."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from comments import dispatch, tasks
from comments.akismet_client import AkismetUnavailable
from comments.models import Comment
from tests.factories import ArticleFactory, submit_comment
from tests.worker_fixtures import wait_for
from tests.worker_idle import wait_until_worker_idle

Status = Comment.Status


@pytest.fixture
def sent(monkeypatch):
    """What the dispatcher publishes: ('one', id) or ('batch', [ids])."""
    published: list[tuple[str, object]] = []
    monkeypatch.setattr(tasks.check_comment, "delay", lambda cid: published.append(("one", cid)))
    monkeypatch.setattr(tasks.check_comments, "delay", lambda ids: published.append(("batch", ids)))
    return published


def test_ids_added_within_the_window_go_out_as_one_message(settings, sent):
    settings.COMMENTS_DISPATCH_BATCH_MS = 50
    dispatcher = dispatch.CheckDispatcher()
    for comment_id in (11, 12, 13, 14):
        dispatcher.add(comment_id)
    wait_for(lambda: sent, timeout=5)
    time.sleep(0.2)  # a second message would have gone out by now
    assert sent == [("batch", [11, 12, 13, 14])]


def test_a_lone_id_goes_out_as_its_own_check_task(settings, sent):
    settings.COMMENTS_DISPATCH_BATCH_MS = 5
    dispatcher = dispatch.CheckDispatcher()
    dispatcher.add(21)
    wait_for(lambda: sent, timeout=5)
    dispatcher.add(22)
    wait_for(lambda: len(sent) == 2, timeout=5)
    assert sent == [("one", 21), ("one", 22)]


def test_without_a_window_every_id_is_sent_at_once(settings, sent):
    settings.COMMENTS_DISPATCH_BATCH_MS = 0
    dispatch.CheckDispatcher().add(31)
    assert sent == [("one", 31)]


def test_a_broker_failure_is_logged_and_raises_nothing(monkeypatch, caplog):
    def broker_down(*args):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.check_comments, "delay", broker_down)
    with caplog.at_level(logging.ERROR, logger="comments.dispatch"):
        dispatch.publish([41, 42])
    assert "the sweeper will" in caplog.text


class InlinePool:
    """The batch task's pool, run in the test's own thread (and database connection)."""

    def map(self, function, items):
        return [function(item) for item in items]


@pytest.fixture
def inline_pool(monkeypatch):
    monkeypatch.setattr(tasks, "_batch_pool", InlinePool)
    monkeypatch.setattr(tasks, "close_old_connections", lambda: None)


@pytest.mark.django_db(transaction=True)
def test_the_batch_task_checks_every_comment(standin, inline_pool):
    article = ArticleFactory()
    ham = submit_comment(article)
    spam = submit_comment(article, author_name="akismet-guaranteed-spam")
    results = tasks.check_comments([ham.pk, spam.pk])
    assert set(results) == {ham.pk, spam.pk}
    assert Comment.objects.get(pk=ham.pk).status == Status.PUBLISHED
    assert Comment.objects.get(pk=spam.pk).status == Status.SPAM


@pytest.mark.django_db(transaction=True)
def test_a_check_that_cannot_run_becomes_its_own_retrying_task(monkeypatch, inline_pool):
    article = ArticleFactory()
    comment = submit_comment(article)
    retried = []
    monkeypatch.setattr(
        tasks.spam_check, "check", lambda cid: (_ for _ in ()).throw(AkismetUnavailable("503"))
    )
    monkeypatch.setattr(
        tasks.check_comment, "apply_async", lambda args, countdown: retried.append(args)
    )
    assert tasks.check_comments([comment.pk]) == {comment.pk: "retry"}
    assert retried == [(comment.pk,)]
    assert Comment.objects.get(pk=comment.pk).status == Status.PENDING


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_burst_through_http_is_batched_and_every_comment_checked(
    settings, celery_worker_process, standin, live_server, monkeypatch
):
    settings.COMMENTS_DISPATCH_BATCH_MS = 300
    batches = []
    real_delay = tasks.check_comments.delay
    monkeypatch.setattr(
        tasks.check_comments, "delay", lambda ids: batches.append(ids) or real_delay(ids)
    )
    article = ArticleFactory()

    def post(n: int) -> int:
        with httpx.Client(base_url=live_server.url, timeout=10) as client:
            response = client.post(
                f"/api/v1/articles/{article.slug}/comments/",
                json={"author_name": f"Reader {n}", "author_email": f"r{n}@example.com",
                      "body": f"Burst comment {n}."},
            )  # fmt: skip
        assert response.status_code == 202
        return response.json()["id"]

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = list(pool.map(post, range(6)))
    wait_for(
        lambda: Comment.objects.filter(pk__in=ids, status=Status.PUBLISHED).count() == 6,
        timeout=30,
    )
    batched = [comment_id for batch in batches for comment_id in batch]
    assert set(batched) <= set(ids)
    assert max(len(batch) for batch in batches) >= 2, batches
    wait_until_worker_idle()
