"""The pipeline through its real parts: HTTP (live server), PostgreSQL, the broker,
a separate `celery worker` process and the Akismet stand-in over loopback."""

from __future__ import annotations

import time

import httpx
import pytest

from comments import moderation, tasks
from comments.models import Comment, CommentEvent, HoldReason
from comments_project import health
from tests.factories import ArticleFactory, UserFactory, submit_comment
from tests.worker_fixtures import wait_for
from tests.worker_idle import wait_until_worker_idle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]
Status = Comment.Status


@pytest.fixture
def pipeline(celery_worker_process, standin, live_server):
    """Everything running; yields an HTTP client on the live server."""
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        yield client
    wait_until_worker_idle()


def submit(client, article, **fields):
    body = {"author_name": "Ada", "author_email": "ada@example.com", "body": "Good point."}
    body.update(fields)
    response = client.post(
        f"/api/v1/articles/{article.slug}/comments/",
        json=body,
        headers={"User-Agent": "Mozilla/5.0 (integration)", "Referer": article.url},
    )
    assert response.status_code == 202, response.text
    return response.json()


def status_of(comment_id):
    return Comment.objects.values_list("status", flat=True).get(pk=comment_id)


def wait_status(comment_id, *statuses, timeout=30.0):
    return wait_for(lambda: status_of(comment_id) in statuses and status_of(comment_id), timeout)


def public_ids(client, article):
    results = client.get(f"/api/v1/articles/{article.slug}/comments/").json()["results"]
    return [comment["id"] for comment in results]


def test_ham_appears_in_the_public_list_within_seconds(pipeline, standin):
    # A free pool thread checks at once: hold Akismet's answer while the list is read.
    standin.state.add_fault({"kind": "delay", "seconds": 1.0})
    article = ArticleFactory()
    created = submit(pipeline, article)
    assert created["status"] == "pending"
    assert public_ids(pipeline, article) == [], "never published before the check"
    wait_for(lambda: created["id"] in public_ids(pipeline, article), timeout=15)
    comment = Comment.objects.get(pk=created["id"])
    assert comment.checked_at is not None
    assert comment.akismet_verdict == "ham"


def test_guaranteed_spam_never_appears(pipeline, standin):
    article = ArticleFactory()
    created = submit(pipeline, article, author_name="akismet-guaranteed-spam")
    assert wait_status(created["id"], Status.SPAM) == Status.SPAM
    assert created["id"] not in public_ids(pipeline, article)


def test_discard_is_spam_flagged_discarded(pipeline):
    created = submit(pipeline, ArticleFactory(), body="buy now [[discard]]")
    wait_status(created["id"], Status.SPAM)
    assert Comment.objects.get(pk=created["id"]).discarded is True


def test_an_outage_holds_and_the_recheck_publishes_after_recovery(pipeline, standin):
    standin.state.add_fault({"kind": "status", "status": 503, "times": -1})
    article = ArticleFactory()
    created = submit(pipeline, article)
    wait_status(created["id"], Status.HELD)
    comment = Comment.objects.get(pk=created["id"])
    assert comment.held_reason == HoldReason.CHECK_UNAVAILABLE
    assert comment.next_check_at is not None
    assert len(standin.state.requests_to("comment-check")) == 3  # first try + 2 fast retries

    standin.state.reset()  # Akismet recovers
    Comment.objects.filter(pk=comment.pk).update(next_check_at=comment.created_at)
    tasks.recheck_unavailable.delay()
    wait_status(created["id"], Status.PUBLISHED)
    assert created["id"] in public_ids(pipeline, article)
    recheck = standin.state.requests_to("comment-check")[-1]["params"]
    assert recheck["recheck_reason"] == "retry"


def test_a_timeout_holds_the_comment(pipeline, standin):
    standin.state.add_fault({"kind": "delay", "seconds": 1.5, "times": -1})
    created = submit(pipeline, ArticleFactory())
    wait_status(created["id"], Status.HELD)
    assert "timed out" in Comment.objects.get(pk=created["id"]).akismet_error


def test_a_garbage_body_holds_the_comment(pipeline, standin):
    standin.state.add_fault({"kind": "body", "body": "<html>oops</html>", "times": -1})
    created = submit(pipeline, ArticleFactory())
    wait_status(created["id"], Status.HELD)
    assert Comment.objects.get(pk=created["id"]).held_reason == HoldReason.CHECK_UNAVAILABLE


def test_suspended_key_headers_hold_the_comment(pipeline, standin):
    standin.state.keys["test-key-123"] = "suspended:10402"
    created = submit(pipeline, ArticleFactory())
    wait_status(created["id"], Status.HELD)
    comment = Comment.objects.get(pk=created["id"])
    assert comment.held_reason == HoldReason.AKISMET_ACCOUNT
    assert "10402" in comment.akismet_error


def test_an_invalid_key_holds_and_readyz_says_so(pipeline, standin):
    standin.state.keys.clear()
    created = submit(pipeline, ArticleFactory())
    wait_status(created["id"], Status.HELD)
    assert len(standin.state.requests_to("comment-check")) == 1, "no hot retry loop"
    health._akismet_cache.clear()
    response = pipeline.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["akismet"]


def test_a_moderator_publishing_spam_sends_submit_ham(pipeline, standin):
    created = submit(pipeline, ArticleFactory(), author_name="akismet-guaranteed-spam")
    wait_status(created["id"], Status.SPAM)
    comment = Comment.objects.get(pk=created["id"])
    moderation.publish(comment, actor=moderation.Actor.for_user(UserFactory()))
    ham = wait_for(lambda: standin.state.requests_to("submit-ham"), timeout=15)
    assert ham[0]["params"]["comment_author"] == "akismet-guaranteed-spam"
    assert ham[0]["params"]["user_ip"] == "127.0.0.1"


def test_an_edit_is_checked_again_with_recheck_reason_edit(pipeline, standin):
    article = ArticleFactory()
    created = submit(pipeline, article)
    wait_status(created["id"], Status.PUBLISHED)
    response = pipeline.patch(
        f"/api/v1/comments/{created['id']}/",
        json={"body": "Edited: a better point."},
        headers={"X-Comment-Token": created["edit_token"]},
    )
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    wait_for(lambda: len(standin.state.requests_to("comment-check")) == 2, timeout=15)
    wait_status(created["id"], Status.PUBLISHED)
    last = standin.state.requests_to("comment-check")[-1]["params"]
    assert last["recheck_reason"] == "edit"
    assert last["comment_content"] == "Edited: a better point."


def test_the_same_task_delivered_twice_makes_one_transition(pipeline, standin):
    comment = submit_comment(ArticleFactory())  # committed: its own check is enqueued too
    tasks.check_comment.delay(comment.pk)
    tasks.check_comment.delay(comment.pk)
    wait_status(comment.pk, Status.PUBLISHED)
    time.sleep(1.5)  # let the duplicates run
    transitions = CommentEvent.objects.filter(comment=comment).values_list(
        "from_status", "to_status"
    )
    assert list(transitions) == [("", "pending"), ("pending", "published")]


def test_a_moderator_acting_while_the_check_is_in_flight_wins(pipeline, standin):
    marker = "in-flight-race"
    standin.state.add_fault({"kind": "delay", "seconds": 0.8, "match": marker})
    created = submit(pipeline, ArticleFactory(), body=f"Slow check {marker}")
    wait_for(
        lambda: Comment.objects.filter(pk=created["id"], check_attempts=1).exists(), timeout=15
    )
    comment = Comment.objects.get(pk=created["id"])
    moderation.reject(comment, actor=moderation.Actor.for_user(UserFactory()))
    wait_for(
        lambda: any(
            marker in call["params"].get("comment_content", "")
            for call in standin.state.requests_to("comment-check")
        ),
        timeout=15,
    )
    time.sleep(1.0)  # the verdict arrives after the moderator's decision
    assert status_of(created["id"]) == Status.REJECTED
    transitions = CommentEvent.objects.filter(comment_id=created["id"]).values_list(
        "to_status", flat=True
    )
    assert list(transitions) == ["pending", "rejected"]


def test_every_call_in_tests_carries_is_test(pipeline, standin):
    submit(pipeline, ArticleFactory())
    calls = wait_for(lambda: standin.state.requests_to("comment-check"), timeout=15)
    assert all(call["params"].get("is_test") == "true" for call in calls)
