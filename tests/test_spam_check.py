"""The check end to end in one process: our code, the real library, the stand-in over loopback."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from comments import moderation, retention, spam_check, tasks
from comments.models import Comment, CommentEvent, HoldReason, ModerationRules
from tests.factories import UserFactory, published_comment, submit_comment

pytestmark = pytest.mark.django_db
Status = Comment.Status


def events(comment):
    return list(
        CommentEvent.objects.filter(comment=comment).values_list(
            "from_status", "to_status", "reason"
        )
    )


def test_ham_is_published_with_its_verdict_recorded(standin):
    comment = submit_comment()
    assert spam_check.check(comment.pk) == "akismet_ham"
    comment.refresh_from_db()
    assert comment.status == Status.PUBLISHED
    assert comment.checked_at is not None
    assert comment.akismet_verdict == "ham"
    assert len(comment.akismet_guid) == 32
    assert comment.check_attempts == 1
    assert comment.akismet_payload["comment_content"] == comment.body
    assert events(comment)[-1] == ("pending", "published", "akismet_ham")
    assert CommentEvent.objects.filter(comment=comment).last().details["guid"] == (
        comment.akismet_guid
    )


def test_guaranteed_spam_is_never_published(standin):
    comment = submit_comment(author_name="akismet-guaranteed-spam")
    spam_check.check(comment.pk)
    comment.refresh_from_db()
    assert comment.status == Status.SPAM
    assert comment.discarded is False
    assert comment.decision_reason == "akismet_spam"


def test_discard_is_spam_hidden_and_purged_after_retention(standin, settings):
    comment = submit_comment(body="pills [[discard]]")
    spam_check.check(comment.pk)
    comment.refresh_from_db()
    assert (comment.status, comment.discarded) == (Status.SPAM, True)

    settings.COMMENTS_DISCARD_RETENTION_DAYS = 15
    assert retention.purge_discarded().deleted == 0
    long_ago = timezone.now() - dt.timedelta(days=16)
    Comment.objects.filter(pk=comment.pk).update(created_at=long_ago)
    CommentEvent.objects.filter(comment=comment).update(created_at=long_ago)
    assert retention.purge_discarded().deleted >= 1
    assert not Comment.objects.filter(pk=comment.pk).exists()


def test_local_rules_decide_without_calling_akismet(standin):
    ModerationRules.objects.create(disallowed_words="casino")
    comment = submit_comment(body="casino bonus")
    assert spam_check.check(comment.pk) == "disallowed_word"
    comment.refresh_from_db()
    assert comment.status == Status.SPAM
    assert standin.state.requests_to("comment-check") == []


def test_an_account_problem_holds_although_the_library_says_ham(standin):
    standin.state.keys["test-key-123"] = "suspended:10402"
    comment = submit_comment()
    spam_check.check(comment.pk)
    comment.refresh_from_db()
    assert comment.status == Status.HELD
    assert comment.held_reason == HoldReason.AKISMET_ACCOUNT
    assert "10402" in comment.akismet_error


def test_recheck_after_keeps_pending_and_the_next_check_says_recheck(standin):
    comment = submit_comment(body="new link [[recheck-after:120]]")
    assert spam_check.check(comment.pk) == "akismet_recheck_after"
    comment.refresh_from_db()
    assert comment.status == Status.PENDING
    assert comment.next_check_at > timezone.now() + dt.timedelta(seconds=100)
    assert not events(comment)[1:], "staying pending is not a status change"

    spam_check.check(comment.pk)
    assert standin.state.requests_to("comment-check")[-1]["params"]["recheck_reason"] == "recheck"


def test_a_comment_a_moderator_handled_is_not_checked(standin):
    comment = submit_comment()
    moderation.reject(comment, actor=moderation.Actor.for_user(UserFactory()))
    assert spam_check.check(comment.pk) == "skipped"
    assert standin.state.requests_to("comment-check") == []


def test_the_task_retries_fast_then_holds_as_unavailable(standin, settings):
    settings.COMMENTS_CHECK_RETRIES = 2
    standin.state.add_fault({"kind": "status", "status": 503, "times": -1})
    comment = submit_comment()
    tasks.check_comment.apply(args=[comment.pk])
    comment.refresh_from_db()
    assert comment.status == Status.HELD
    assert comment.held_reason == HoldReason.CHECK_UNAVAILABLE
    assert comment.next_check_at > timezone.now()
    assert comment.recheck_reason == "retry"
    sent = standin.state.requests_to("comment-check")
    assert len(sent) == 3
    assert "recheck_reason" not in sent[0]["params"]
    assert [s["params"]["recheck_reason"] for s in sent[1:]] == ["retry", "retry"]


def test_an_invalid_key_holds_at_once_without_a_retry_loop(standin):
    standin.state.keys.clear()
    comment = submit_comment()
    tasks.check_comment.apply(args=[comment.pk])
    comment.refresh_from_db()
    assert comment.status == Status.HELD
    assert comment.decision_reason == "akismet_key_invalid"
    assert len(standin.state.requests_to("comment-check")) == 1
    assert comment.next_check_at > timezone.now() + dt.timedelta(hours=1)


def hold_as_unavailable(comment):
    spam_check.hold_unavailable(comment.pk, "test outage")
    Comment.objects.filter(pk=comment.pk).update(
        next_check_at=timezone.now() - dt.timedelta(seconds=1)
    )


def test_the_recheck_publishes_once_akismet_is_back(standin):
    comment = submit_comment()
    hold_as_unavailable(comment)
    assert spam_check.recheck_unavailable() == {"checked": 1, "failed": 0}
    comment.refresh_from_db()
    assert comment.status == Status.PUBLISHED
    assert comment.checked_at is not None
    assert standin.state.requests_to("comment-check")[0]["params"]["recheck_reason"] == "retry"
    assert events(comment)[-1] == ("held", "published", "akismet_ham")


def test_the_recheck_routes_spam_to_spam(standin):
    comment = submit_comment(author_name="akismet-guaranteed-spam")
    hold_as_unavailable(comment)
    spam_check.recheck_unavailable()
    comment.refresh_from_db()
    assert comment.status == Status.SPAM


def test_the_recheck_stops_at_the_first_failure_and_backs_off(standin):
    first, second = submit_comment(), submit_comment()
    hold_as_unavailable(first)
    hold_as_unavailable(second)
    standin.state.add_fault({"kind": "status", "status": 503})
    assert spam_check.recheck_unavailable() == {"checked": 0, "failed": 1}
    assert len(standin.state.requests_to("comment-check")) == 1
    for comment in (first, second):
        comment.refresh_from_db()
        assert comment.status == Status.HELD
        assert comment.next_check_at > timezone.now()
    assert spam_check.recheck_unavailable() == {"checked": 0, "failed": 0}


def test_the_recheck_leaves_a_comment_a_moderator_handled_alone(standin):
    comment = submit_comment()
    hold_as_unavailable(comment)
    moderation.reject(comment, actor=moderation.Actor.for_user(UserFactory()))
    spam_check.recheck_unavailable()
    comment.refresh_from_db()
    assert comment.status == Status.REJECTED
    assert standin.state.requests_to("comment-check") == []


def test_the_sweeper_hands_out_overdue_pending_comments_once(standin):
    overdue, fresh = submit_comment(), submit_comment()
    Comment.objects.filter(pk=overdue.pk).update(
        next_check_at=timezone.now() - dt.timedelta(seconds=5)
    )
    assert spam_check.due_for_sweep() == [overdue.pk]
    assert spam_check.due_for_sweep() == [], "a swept comment gets a new deadline"
    fresh.refresh_from_db()
    assert fresh.next_check_at > timezone.now()


def test_an_edit_is_checked_again_with_recheck_reason_edit(standin):
    comment = submit_comment()
    spam_check.check(comment.pk)
    comment.refresh_from_db()
    moderation.edit(comment, body="Edited text")
    comment.refresh_from_db()
    assert comment.checked_at is None, "the old check was about the old text"
    spam_check.check(comment.pk)
    last = standin.state.requests_to("comment-check")[-1]["params"]
    assert last["recheck_reason"] == "edit"
    assert last["comment_content"] == "Edited text"


def feedback_sent(monkeypatch) -> list[tuple]:
    """The submit-ham/-spam tasks enqueued after commit (other hooks run as usual)."""
    sent: list[tuple] = []
    monkeypatch.setattr(tasks.submit_feedback, "delay", lambda *args: sent.append(args))
    return sent


def test_a_moderator_publishing_spam_teaches_akismet_ham(
    standin, django_capture_on_commit_callbacks, monkeypatch
):
    comment = submit_comment(author_name="akismet-guaranteed-spam")
    spam_check.check(comment.pk)
    comment.refresh_from_db()
    moderator = moderation.Actor.for_user(UserFactory())
    sent = feedback_sent(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        moderation.publish(comment, actor=moderator)
    assert sent == [(comment.pk, "ham")]
    comment.refresh_from_db()
    assert comment.approved_by_id == moderator.user.pk
    spam_check.send_feedback(comment.pk, "ham")
    ham = standin.state.requests_to("submit-ham")
    assert len(ham) == 1
    assert ham[0]["params"]["comment_author"] == "akismet-guaranteed-spam"
    assert ham[0]["params"]["is_test"] == "true"


def test_a_moderator_marking_ham_as_spam_teaches_akismet_spam(
    standin, django_capture_on_commit_callbacks, monkeypatch
):
    comment = submit_comment()
    spam_check.check(comment.pk)
    comment.refresh_from_db()
    sent = feedback_sent(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        moderation.mark_spam(comment, actor=moderation.Actor.for_user(UserFactory()))
    assert sent == [(comment.pk, "spam")]
    spam_check.send_feedback(comment.pk, "spam")
    assert len(standin.state.requests_to("submit-spam")) == 1


def test_agreeing_with_akismet_sends_no_feedback(
    standin, django_capture_on_commit_callbacks, monkeypatch
):
    comment = submit_comment(author_name="akismet-guaranteed-spam")
    spam_check.check(comment.pk)
    comment.refresh_from_db()
    sent = feedback_sent(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        moderation.reject(comment, actor=moderation.Actor.for_user(UserFactory()))
    assert sent == []


def test_submit_enqueues_the_check_only_after_commit(
    django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(tasks.check_comment, "delay", lambda comment_id: sent.append(comment_id))
    with django_capture_on_commit_callbacks(execute=True):
        comment = submit_comment()
        assert sent == []
    assert sent == [comment.pk]


def test_a_broker_failure_on_submit_loses_nothing(django_capture_on_commit_callbacks, monkeypatch):
    def broker_down(comment_id):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.check_comment, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        comment = submit_comment()
    comment.refresh_from_db()
    assert comment.status == Status.PENDING
    assert comment.next_check_at is not None, "the sweeper will hand it out"


def test_the_database_refuses_a_published_comment_without_check_or_approval():
    comment = submit_comment()
    with pytest.raises(IntegrityError), transaction.atomic():
        Comment.objects.filter(pk=comment.pk).update(status=Status.PUBLISHED)


def test_publishing_as_a_nameless_system_actor_is_refused_by_the_database():
    comment = submit_comment()
    with pytest.raises(IntegrityError), transaction.atomic():
        moderation.publish(comment, actor=moderation.SYSTEM)
    comment.refresh_from_db()
    assert comment.status == Status.PENDING


def test_a_published_comment_has_a_check_or_an_approval():
    checked = published_comment()
    assert checked.checked_at is not None


def test_with_the_spam_check_turned_off_every_clean_comment_waits_for_a_human(standin, settings):
    settings.AKISMET_ENABLED = False
    comment = submit_comment()
    assert spam_check.check(comment.pk) == "check_disabled"
    comment.refresh_from_db()
    assert (comment.status, comment.held_reason) == (Status.HELD, HoldReason.CHECK_DISABLED)
    assert standin.state.requests_to("comment-check") == []
