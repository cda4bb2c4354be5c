"""Moderators hear about held comments by e-mail; a failing mail blocks nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core import mail

from comments import moderation, notifications, spam_check, tasks
from comments.models import Comment, HoldReason
from tests.factories import ArticleFactory, UserFactory, submit_comment

pytestmark = pytest.mark.django_db


@pytest.fixture
def moderator():
    user = UserFactory(email="mod@example.com")
    user.groups.add(Group.objects.get(name="moderators"))
    return user


def held(**fields):
    comment = submit_comment(**fields)
    moderation.hold(comment, actor=moderation.SYSTEM, hold_reason=HoldReason.MODERATION_WORD)
    return comment


def test_a_held_comment_mails_the_moderators_everything_they_need(moderator, settings):
    settings.COMMENTS_SITE_URL = "https://comments.example.com"
    article = ArticleFactory(
        title="ZTE and China Telecom Global", url="https://news.example.com/zte/"
    )
    comment = held(
        article=article,
        author_name="Ada",
        author_email="ada@example.com",
        body="Is this deal good for roaming prices?",
    )
    assert notifications.notify_held(comment.pk) == 1
    message = mail.outbox[0]
    assert message.to == ["mod@example.com"]
    assert "ZTE and China Telecom Global" in message.subject
    for expected in (
        "Ada",
        "ada@example.com",
        "https://news.example.com/zte/",
        "Contains a moderation word",
        "Is this deal good for roaming prices?",
        f"https://comments.example.com/admin/comments/comment/{comment.pk}/change/",
    ):
        assert expected in message.body
    ((html, mimetype),) = message.alternatives
    assert mimetype == "text/html"
    for expected in (
        "Ada",
        "ada@example.com",
        "https://news.example.com/zte/",
        "Contains a moderation word",
        "<p>Is this deal good for roaming prices?</p>",
        f'href="https://comments.example.com/admin/comments/comment/{comment.pk}/change/"',
    ):
        assert expected in html


def test_configured_addresses_replace_the_moderator_accounts(moderator, settings):
    settings.COMMENTS_MODERATOR_EMAILS = ["desk@example.com"]
    notifications.notify_held(held().pk)
    assert mail.outbox[0].to == ["desk@example.com"]


def test_non_moderators_are_not_mailed(settings):
    UserFactory(email="reader@example.com")
    assert notifications.notify_held(held().pk) == 0
    assert mail.outbox == []


def test_nothing_is_sent_once_a_moderator_decided(moderator):
    comment = held()
    moderation.publish(comment, actor=moderation.Actor.for_user(moderator))
    assert notifications.notify_held(comment.pk) == 0


def test_the_spam_check_holding_a_comment_enqueues_the_mail(
    moderator, standin, settings, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(
        tasks.notify_moderators, "delay", lambda comment_id: sent.append(comment_id)
    )
    settings.COMMENTS_PREMODERATION = "all"
    comment = submit_comment()
    with django_capture_on_commit_callbacks(execute=True):
        spam_check.check(comment.pk)
    assert sent == [comment.pk]


def test_a_hold_for_unavailability_sends_no_mail_until_it_needs_a_human(moderator):
    comment = submit_comment()
    spam_check.hold_unavailable(comment.pk, "timeout")
    assert notifications.notify_held(comment.pk) == 0


def test_a_failing_mail_server_never_blocks_moderation(moderator, settings):
    settings.EMAIL_BACKEND = "tests.test_moderator_email.BrokenBackend"
    comment = held()
    assert tasks.notify_moderators.apply(args=[comment.pk]).get() == 0
    comment.refresh_from_db()
    assert comment.status == Comment.Status.HELD
    moderation.publish(comment, actor=moderation.Actor.for_user(moderator))
    assert comment.status == Comment.Status.PUBLISHED


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("SMTP server down")
