"""E-mails whose task was lost (the broker was down when the decision committed) are
sent by the sweeper, once; what was never owed is never sent."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from comments import moderation, tasks
from comments.models import Comment, CommentEvent, HoldReason, NotificationAddress
from tests.factories import (
    confirmed_address,
    held_comment,
    published_comment,
    submit_comment,
    subscribed_comment,
)

pytestmark = pytest.mark.django_db
EMAIL_TASKS = (tasks.notify_moderators, tasks.notify_reply, tasks.send_notify_confirmation)


@pytest.fixture(autouse=True)
def no_checks(monkeypatch, settings):
    settings.COMMENTS_MODERATOR_EMAILS = ["mods@example.com"]
    monkeypatch.setattr(moderation, "_send_check", lambda comment_id: None)


@pytest.fixture
def broker_down(monkeypatch):
    """Every e-mail task fails to enqueue, as with a dead broker at commit time."""

    def refuse(*args: object) -> None:
        raise ConnectionError("broker unreachable")

    for task in EMAIL_TASKS:
        monkeypatch.setattr(task, "delay", refuse)


@pytest.fixture
def sweep(monkeypatch):
    """Run the sweeper with its enqueued tasks run in-process."""

    def run() -> dict[str, int]:
        for task in EMAIL_TASKS:
            monkeypatch.setattr(task, "delay", lambda *args, task=task: task.apply(args=args))
        return tasks.sweep_owed_emails()

    return run


def two_minutes_ago(comment: Comment) -> None:
    """The decision is older than the minute its own task gets."""
    earlier = timezone.now() - dt.timedelta(minutes=2)
    Comment.objects.filter(pk=comment.pk).update(published_at=earlier)
    CommentEvent.objects.filter(comment_id=comment.pk).update(created_at=earlier)


def test_a_reply_notice_lost_with_the_broker_is_sent_once_by_the_sweeper(
    broker_down, sweep, django_capture_on_commit_callbacks
):
    parent = subscribed_comment(author_email="ada@example.com")
    NotificationAddress.objects.filter(email="ada@example.com").update(
        confirmed_at=timezone.now() - dt.timedelta(minutes=3)
    )
    reply = submit_comment(parent.article, parent_id=parent.pk, author_email="bob@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        moderation.publish(reply, actor=moderation.SPAM_CHECK)
    assert mail.outbox == []
    two_minutes_ago(reply)

    first = sweep()
    second = sweep()

    assert first["notify_reply"] == 1
    assert second["notify_reply"] == 0
    assert [message.to for message in mail.outbox] == [["ada@example.com"]]


def test_a_moderator_notice_lost_with_the_broker_is_sent_once_by_the_sweeper(
    broker_down, sweep, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        comment = held_comment(hold_reason=HoldReason.MODERATION_WORD)
    assert comment.status == Comment.Status.HELD
    two_minutes_ago(comment)

    assert sweep()["notify_moderators"] == 1
    assert sweep()["notify_moderators"] == 0
    assert [message.to for message in mail.outbox] == [["mods@example.com"]]


def test_a_confirmation_lost_with_the_broker_is_sent_once_by_the_sweeper(
    broker_down, sweep, django_capture_on_commit_callbacks
):
    comment = submit_comment(notify_replies=True, author_email="new@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        moderation.publish(comment, actor=moderation.SPAM_CHECK)
    two_minutes_ago(comment)

    assert sweep()["send_notify_confirmation"] == 1
    assert sweep()["send_notify_confirmation"] == 0
    assert [message.to for message in mail.outbox] == [["new@example.com"]]
    assert NotificationAddress.objects.get(email="new@example.com").confirmed_at is None


def test_the_sweeper_sends_nothing_that_was_never_owed(
    broker_down, sweep, django_capture_on_commit_callbacks
):
    parent = subscribed_comment(author_email="ada@example.com")
    unconfirmed = published_comment(notify_replies=True, author_email="eve@example.com")
    NotificationAddress.objects.filter(email="eve@example.com").update(
        confirmation_sent_at=timezone.now()
    )
    replies = [
        # A self-reply, a reply to an unconfirmed address, a quiet hold.
        submit_comment(parent.article, parent_id=parent.pk, author_email="ADA@example.com"),
        submit_comment(unconfirmed.article, parent_id=unconfirmed.pk),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        for reply in replies:
            moderation.publish(reply, actor=moderation.SPAM_CHECK)
        quiet = held_comment(hold_reason=HoldReason.CHECK_UNAVAILABLE)
    recent = submit_comment(parent.article, parent_id=parent.pk, author_email="bob@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        moderation.publish(recent, actor=moderation.SPAM_CHECK)  # its own task has a minute
    for comment in [*replies, quiet, parent, unconfirmed]:
        two_minutes_ago(comment)

    counts = sweep()

    assert counts == {"notify_moderators": 0, "notify_reply": 0, "send_notify_confirmation": 0}
    assert mail.outbox == []


def test_a_reply_published_before_the_address_was_confirmed_is_not_owed(
    broker_down, sweep, django_capture_on_commit_callbacks
):
    parent = published_comment(notify_replies=True, author_email="ada@example.com")
    reply = submit_comment(parent.article, parent_id=parent.pk, author_email="bob@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        moderation.publish(reply, actor=moderation.SPAM_CHECK)
    two_minutes_ago(reply)
    confirmed_address("ada@example.com")

    assert sweep()["notify_reply"] == 0
    assert mail.outbox == []
