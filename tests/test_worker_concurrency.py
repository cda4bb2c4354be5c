"""The worker's pool runs checks concurrently, and concurrency never doubles a transition.

Proved structurally, never by timing: the stand-in counts the requests it is
answering at the same moment, and a barrier holds two checks of one comment
until both have asked Akismet.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from comments import akismet_client, moderation, tasks
from comments.models import Comment, CommentEvent
from tests.factories import ArticleFactory, submit_comment
from tests.worker_fixtures import WORKER_CONCURRENCY, require_services, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]
Status = Comment.Status


def transitions(comment_id: int) -> list[tuple[str, str]]:
    return list(
        CommentEvent.objects.filter(comment_id=comment_id).values_list("from_status", "to_status")
    )


def test_one_worker_process_runs_several_check_tasks_at_once(
    celery_worker_process, standin, monkeypatch
):
    assert WORKER_CONCURRENCY >= 2
    standin.state.latency = 0.5  # each answer takes a while, so checks overlap if they can
    # One `check_comment` task per comment (not the web's batches): the pool runs them.
    monkeypatch.setattr(moderation, "_send_check", lambda comment_id: None)
    article = ArticleFactory()
    ids = [submit_comment(article, body=f"Point number {n}.").pk for n in range(8)]
    for comment_id in ids:
        tasks.check_comment.delay(comment_id)

    wait_for(
        lambda: not Comment.objects.filter(pk__in=ids, status=Status.PENDING).exists(), timeout=30
    )
    assert Comment.objects.filter(pk__in=ids, status=Status.PUBLISHED).count() == len(ids)
    assert len(standin.state.requests_to("comment-check")) == len(ids)
    # A solo (one-at-a-time) worker never has two requests in flight.
    assert standin.state.stats()["max_in_flight"] >= 2


def test_the_same_check_run_twice_at_once_makes_one_transition(standin, monkeypatch):
    require_services()
    # No worker takes part: only the two threads below check the comment.
    monkeypatch.setattr(moderation, "_send_check", lambda comment_id: None)
    comment = submit_comment()
    both_asking = threading.Barrier(2, timeout=15)
    real_comment_check = akismet_client.comment_check

    def comment_check_once_both_are_asking(payload):
        # Both tasks have read the comment as pending before either can record a verdict.
        both_asking.wait()
        return real_comment_check(payload)

    monkeypatch.setattr(akismet_client, "comment_check", comment_check_once_both_are_asking)
    results: list[str] = []
    errors: list[BaseException] = []

    def run_task() -> None:
        try:
            results.append(tasks.check_comment(comment.pk))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=run_task) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted(results) == ["akismet_ham", "superseded"]
    assert len(standin.state.requests_to("comment-check")) == 2
    assert transitions(comment.pk) == [("", "pending"), ("pending", "published")]
