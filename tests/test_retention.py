"""Retention: old request details are trimmed, old spam and rejected comments deleted,
counted from the decision, and nothing else is ever deleted."""

from __future__ import annotations

import datetime as dt
import uuid
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.utils import timezone

from comments import moderation, retention, tasks
from comments.models import Comment, CommentEvent, WebhookDelivery, WebhookEndpoint
from tests.factories import ArticleFactory, held_comment, published_comment, submit_comment

pytestmark = pytest.mark.django_db

Status = Comment.Status
NOW = timezone.now()  # every date in these tests is relative to it
NOTHING = {
    "trimmed": 0,
    "discarded_deleted": 0,
    "spam_deleted": 0,
    "kept_for_replies": 0,
    "webhook_deliveries_deleted": 0,
    "unconfirmed_addresses_deleted": 0,
}


@pytest.fixture(autouse=True)
def retention_periods(settings):
    settings.COMMENTS_IP_RETENTION_DAYS = 30
    settings.COMMENTS_DISCARD_RETENTION_DAYS = 15
    settings.COMMENTS_SPAM_RETENTION_DAYS = 90


def backdate(comment: Comment, *, created: dt.timedelta, decided: dt.timedelta | None = None):
    """Move a comment's creation (and its history) back; `decided` moves the audit
    rows into its current status back to NOW - decided instead."""
    comment.refresh_from_db()
    Comment.objects.filter(pk=comment.pk).update(created_at=NOW - created)
    CommentEvent.objects.filter(comment=comment).update(created_at=NOW - created)
    if decided is not None:
        CommentEvent.objects.filter(comment=comment, to_status=comment.status).update(
            created_at=NOW - decided
        )
    comment.refresh_from_db()
    return comment


def spam(article=None, *, discarded: bool = False, **fields) -> Comment:
    comment = submit_comment(article, **fields)
    moderation.mark_spam(comment, actor=moderation.SPAM_CHECK, reason="akismet_spam")
    if discarded:
        Comment.objects.filter(pk=comment.pk).update(discarded=True)
    comment.refresh_from_db()
    return comment


def rejected(article=None, **fields) -> Comment:
    comment = submit_comment(article, **fields)
    moderation.reject(comment, actor=moderation.SYSTEM)
    return comment


def exists(comment: Comment) -> bool:
    return Comment.objects.filter(pk=comment.pk).exists()


def trim() -> int:
    return retention.trim_personal_data(now=NOW)


# --- Trimming the request details -----------------------------------------------------------


def test_a_comment_just_inside_the_ip_retention_keeps_its_details():
    comment = backdate(submit_comment(), created=dt.timedelta(days=29, hours=23))

    assert trim() == 0

    comment.refresh_from_db()
    assert (comment.ip_address, comment.user_agent, comment.referrer) == (
        "203.0.113.7",
        "Mozilla/5.0 (tests)",
        "https://news.example.com/",
    )
    assert comment.personal_data_trimmed_at is None


def test_a_comment_one_second_past_the_ip_retention_is_trimmed():
    comment = backdate(submit_comment(), created=dt.timedelta(days=30, seconds=1))

    assert trim() == 1

    comment.refresh_from_db()
    assert comment.ip_address == "203.0.113.0"
    assert comment.user_agent == ""
    assert comment.referrer == ""
    assert comment.personal_data_trimmed_at is not None


@pytest.mark.parametrize(
    ("address", "truncated"),
    [
        ("203.0.113.7", "203.0.113.0"),
        ("198.51.100.255", "198.51.100.0"),
        ("2001:db8:abcd:12:34:56:78:9a", "2001:db8:abcd::"),
        ("2001:db8:1::1", "2001:db8:1::"),
        ("::ffff:192.0.2.44", "192.0.2.0"),
        (None, None),
        ("", None),
        ("not an address", None),
    ],
)
def test_ip_addresses_are_truncated_to_their_network(address, truncated):
    assert retention.truncate_ip(address) == truncated


def test_an_ipv6_comment_is_trimmed_to_its_48_bit_prefix():
    comment = backdate(
        submit_comment(ip_address="2001:db8:abcd:12:34:56:78:9a"), created=dt.timedelta(days=31)
    )

    trim()

    comment.refresh_from_db()
    assert comment.ip_address == "2001:db8:abcd::"


def test_the_copy_sent_to_akismet_is_scrubbed_the_same_way():
    comment = submit_comment(ip_address="2001:db8:abcd:12::1")
    payload = {
        "user_ip": "2001:db8:abcd:12::1",
        "user_agent": "Mozilla/5.0 (tests)",
        "referrer": "https://news.example.com/",
        "HTTP_ACCEPT_LANGUAGE": "en-GB",
        "REMOTE_ADDR": "2001:db8:abcd:12::1",
        "http_x_forwarded_for": "192.0.2.1",
        "comment_author": "Ada Reader",
        "comment_content": "A thoughtful remark about the article.",
        "permalink": "https://news.example.com/a/",
    }
    Comment.objects.filter(pk=comment.pk).update(akismet_payload=payload)
    backdate(comment, created=dt.timedelta(days=40))

    trim()

    comment.refresh_from_db()
    assert comment.akismet_payload == {
        "user_ip": "2001:db8:abcd::",
        "comment_author": "Ada Reader",
        "comment_content": "A thoughtful remark about the article.",
        "permalink": "https://news.example.com/a/",
    }


def test_request_details_in_the_audit_trail_and_webhook_deliveries_are_scrubbed():
    comment = backdate(submit_comment(), created=dt.timedelta(days=40))
    event = CommentEvent.objects.create(
        comment=comment,
        from_status="pending",
        to_status="pending",
        actor_name="system",
        details={"verdict": "ham", "ip_address": "203.0.113.7", "user_agent": "UA/1"},
    )
    untouched = CommentEvent.objects.filter(comment=comment, reason="submitted").get()
    endpoint = WebhookEndpoint.objects.create(
        name="newsroom", url="https://hooks.example.com/", secret="s", include_private=True
    )
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id=uuid.uuid4(),
        event="comment.submitted",
        comment=comment,
        payload={
            "event": "comment.submitted",
            "comment": {
                "id": comment.pk,
                "private": {
                    "email": "ada@example.com",
                    "ip_address": "203.0.113.7",
                    "user_agent": "Mozilla/5.0 (tests)",
                    "referrer": "https://news.example.com/",
                },
            },
        },
    )

    trim()

    event.refresh_from_db()
    assert event.details == {"verdict": "ham", "ip_address": "203.0.113.0"}
    delivery.refresh_from_db()
    assert delivery.payload["comment"]["private"] == {
        "email": "ada@example.com",
        "ip_address": "203.0.113.0",
    }
    assert CommentEvent.objects.get(pk=untouched.pk).details == untouched.details


def test_pending_and_held_comments_are_trimmed_too():
    pending = backdate(submit_comment(), created=dt.timedelta(days=45))
    held = backdate(held_comment(), created=dt.timedelta(days=45))

    assert trim() == 2

    for comment in (pending, held):
        comment.refresh_from_db()
        assert comment.ip_address == "203.0.113.0"
        assert comment.status in (Status.PENDING, Status.HELD)


def test_trimming_runs_in_batches_and_twice_changes_nothing(monkeypatch):
    monkeypatch.setattr(retention, "BATCH_SIZE", 2)
    comments = [backdate(submit_comment(), created=dt.timedelta(days=31)) for _ in range(5)]

    assert trim() == 5
    first = {c.pk: c.personal_data_trimmed_at for c in Comment.objects.all()}
    assert trim() == 0

    assert {c.pk: c.personal_data_trimmed_at for c in Comment.objects.all()} == first
    assert {c.ip_address for c in Comment.objects.filter(pk__in=[c.pk for c in comments])} == {
        "203.0.113.0"
    }


# --- Deleting spam and rejected comments ----------------------------------------------------


def test_blatant_spam_is_deleted_15_days_after_the_verdict():
    kept = backdate(spam(discarded=True), created=dt.timedelta(days=14, hours=23))
    gone = backdate(spam(discarded=True), created=dt.timedelta(days=15, seconds=1))

    result = retention.purge_discarded(now=NOW)

    assert result.deleted == 1
    assert exists(kept) and not exists(gone)


def test_spam_and_rejected_comments_are_deleted_90_days_after_the_decision():
    kept_spam = backdate(spam(), created=dt.timedelta(days=89, hours=23))
    gone_spam = backdate(spam(), created=dt.timedelta(days=90, seconds=1))
    kept_rejected = backdate(rejected(), created=dt.timedelta(days=89, hours=23))
    gone_rejected = backdate(rejected(), created=dt.timedelta(days=90, seconds=1))

    result = retention.purge_spam(now=NOW)

    assert result.deleted == 2
    assert exists(kept_spam) and exists(kept_rejected)
    assert not exists(gone_spam) and not exists(gone_rejected)


def test_the_period_counts_from_the_decision_not_from_creation():
    lately_spam = backdate(spam(), created=dt.timedelta(days=100), decided=dt.timedelta(days=1))
    lately_discarded = backdate(
        spam(discarded=True), created=dt.timedelta(days=100), decided=dt.timedelta(days=14)
    )
    lately_rejected = backdate(
        rejected(), created=dt.timedelta(days=200), decided=dt.timedelta(days=89)
    )

    counts = retention.apply_retention(now=NOW)

    assert (counts["discarded_deleted"], counts["spam_deleted"]) == (0, 0)
    assert exists(lately_spam) and exists(lately_discarded) and exists(lately_rejected)


def test_a_comment_moved_from_spam_to_rejected_counts_from_the_rejection():
    comment = spam()
    moderation.reject(comment, actor=moderation.SYSTEM)
    backdate(comment, created=dt.timedelta(days=120), decided=dt.timedelta(days=10))

    assert retention.purge_spam(now=NOW).deleted == 0
    assert exists(comment)


def test_a_record_without_a_status_change_does_not_restart_the_period():
    comment = backdate(spam(), created=dt.timedelta(days=120), decided=dt.timedelta(days=95))
    moderation.record_erasure([comment.pk], actor=moderation.SYSTEM, keep_text=False)

    assert retention.purge_spam(now=NOW).deleted == 1
    assert not exists(comment)


def test_comments_nobody_decided_and_visible_ones_are_never_deleted():
    article = ArticleFactory()
    pending = submit_comment(article)
    held = held_comment(article)
    published = published_comment(article)
    removed = published_comment(article)
    moderation.remove(removed, actor=moderation.AUTHOR)
    for comment in (pending, held, published, removed):
        backdate(comment, created=dt.timedelta(days=3650))

    counts = retention.apply_retention(now=NOW)

    assert counts["discarded_deleted"] == counts["spam_deleted"] == 0
    assert all(exists(c) for c in (pending, held, published, removed))


def test_spam_with_a_published_reply_is_kept_with_it():
    article = ArticleFactory()
    parent = published_comment(article)
    reply = published_comment(article, parent_id=parent.pk)
    moderation.mark_spam(parent, actor=moderation.SYSTEM)
    backdate(parent, created=dt.timedelta(days=200))

    result = retention.purge_spam(now=NOW)

    assert (result.deleted, result.kept_for_replies) == (0, 1)
    assert exists(parent) and exists(reply)


@pytest.mark.parametrize("reply_status", ["pending", "held", "removed"])
def test_spam_with_a_reply_still_waiting_or_removed_is_kept(reply_status):
    article = ArticleFactory()
    grandparent = published_comment(article)
    parent = published_comment(article, parent_id=grandparent.pk)
    reply = published_comment(article, parent_id=parent.pk)
    if reply_status == "pending":
        moderation.edit(reply, body="An edit sends it back to the check.")
    elif reply_status == "held":
        moderation.hold(reply, actor=moderation.SYSTEM)
    else:
        moderation.remove(reply, actor=moderation.AUTHOR)
    moderation.mark_spam(grandparent, actor=moderation.SYSTEM)
    moderation.mark_spam(parent, actor=moderation.SYSTEM)
    for comment in (grandparent, parent):
        backdate(comment, created=dt.timedelta(days=200))

    result = retention.purge_spam(now=NOW)

    reply.refresh_from_db()
    assert reply.status == reply_status
    assert result.deleted == 0
    assert result.kept_for_replies == 2  # the grandparent would take the reply with it too
    assert exists(grandparent) and exists(parent)


def test_spam_whose_replies_are_spam_that_is_due_goes_with_them():
    article = ArticleFactory()
    parent = spam(article)
    reply = submit_comment(article, parent_id=None)
    # A reply to a spam comment: attach it directly (the API only accepts published parents).
    Comment.objects.filter(pk=reply.pk).update(parent=parent, thread=parent, depth=1)
    moderation.mark_spam(reply, actor=moderation.SYSTEM)
    not_due = submit_comment(article)
    Comment.objects.filter(pk=not_due.pk).update(parent=parent, thread=parent, depth=1)
    moderation.mark_spam(not_due, actor=moderation.SYSTEM)
    for comment in (parent, reply):
        backdate(comment, created=dt.timedelta(days=100))
    backdate(not_due, created=dt.timedelta(days=100), decided=dt.timedelta(days=5))

    assert retention.purge_spam(now=NOW).deleted == 1  # only the due reply
    assert exists(parent) and exists(not_due) and not exists(reply)

    backdate(not_due, created=dt.timedelta(days=100))
    assert retention.purge_spam(now=NOW).deleted == 2
    assert not exists(parent) and not exists(not_due)


def test_deleting_keeps_the_published_count_and_runs_in_batches(monkeypatch):
    monkeypatch.setattr(retention, "BATCH_SIZE", 2)
    article = ArticleFactory()
    published_comment(article)
    old = [backdate(spam(article), created=dt.timedelta(days=91)) for _ in range(5)]

    assert retention.purge_spam(now=NOW).deleted == 5

    article.refresh_from_db()
    assert article.published_comment_count == 1
    assert not any(exists(c) for c in old)


def test_retention_run_twice_does_nothing_the_second_time():
    backdate(submit_comment(), created=dt.timedelta(days=31))
    backdate(spam(discarded=True), created=dt.timedelta(days=16))
    backdate(spam(), created=dt.timedelta(days=91))
    backdate(rejected(), created=dt.timedelta(days=91))

    first = retention.apply_retention(now=NOW)
    second = retention.apply_retention(now=NOW)

    # The comments past 30 days (the 16-day-old discarded spam is not) were trimmed
    # before two of them were deleted.
    assert first == {
        "trimmed": 3,
        "discarded_deleted": 1,
        "spam_deleted": 2,
        "kept_for_replies": 0,
        "webhook_deliveries_deleted": 0,
        "unconfirmed_addresses_deleted": 0,
    }
    assert second == NOTHING
    assert Comment.objects.count() == 1


def test_a_spent_time_budget_stops_before_the_next_batch():
    backdate(submit_comment(), created=dt.timedelta(days=31))

    assert retention.apply_retention(now=NOW, time_budget=0)["trimmed"] == 0
    assert retention.apply_retention(now=NOW)["trimmed"] == 1


# --- The task, beat and the management command ---------------------------------------------


def test_the_hourly_beat_job_runs_retention():
    entries = {entry["task"]: entry for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}

    assert entries["comments.tasks.apply_retention"]["schedule"] == 3600.0
    assert "comments.tasks.purge_discarded" not in entries


def test_the_task_returns_the_counts():
    comment = submit_comment()
    Comment.objects.filter(pk=comment.pk).update(created_at=timezone.now() - dt.timedelta(days=31))

    counts = tasks.apply_retention()

    assert counts == {**NOTHING, "trimmed": 1}


def old_scene() -> list[Comment]:
    long_ago = timezone.now() - dt.timedelta(days=100)
    made = [submit_comment(), spam(discarded=True), spam(), rejected()]
    Comment.objects.update(created_at=long_ago)
    CommentEvent.objects.update(created_at=long_ago)
    return made


def snapshot() -> list[tuple]:
    return list(
        Comment.objects.order_by("pk").values_list(
            "pk", "ip_address", "user_agent", "referrer", "personal_data_trimmed_at"
        )
    )


def test_the_command_dry_run_only_reports():
    old_scene()
    before = snapshot()
    out = StringIO()

    call_command("apply_retention", "--dry-run", stdout=out)

    assert snapshot() == before
    text = out.getvalue()
    assert "Dry run" in text
    assert "4 comment(s) older than 30 days would be trimmed" in text
    assert "1 blatant spam comment(s) decided more than 15 days ago would be deleted" in text
    assert "2 spam or rejected comment(s) decided more than 90 days ago would be deleted" in text


def test_the_command_applies_retention():
    pending, *_ = old_scene()
    out = StringIO()

    call_command("apply_retention", stdout=out)

    assert list(Comment.objects.values_list("pk", flat=True)) == [pending.pk]
    pending.refresh_from_db()
    assert pending.ip_address == "203.0.113.0"
    assert "4 comment(s) older than 30 days were trimmed" in out.getvalue()
    assert "2 spam or rejected comment(s) decided more than 90 days ago were deleted" in (
        out.getvalue()
    )


# --- webhook log and unconfirmed notification addresses ------------------------------


def _delivery(endpoint: WebhookEndpoint, status: str, age_days: float) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event_id=uuid.uuid4(), event="comment.published", status=status
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - dt.timedelta(days=age_days)
    )
    return delivery


def test_finished_webhook_deliveries_leave_the_log_after_30_days_waiting_ones_stay():
    endpoint = WebhookEndpoint.objects.create(
        name="chat", url="https://hooks.example/x", secret="s"
    )
    S = WebhookDelivery.Status
    old_done = [_delivery(endpoint, status, 30.01) for status in (S.SUCCEEDED, S.FAILED)]
    kept = [
        _delivery(endpoint, S.SUCCEEDED, 29.99),
        _delivery(endpoint, S.RETRYING, 45),
        _delivery(endpoint, S.PENDING, 45),
    ]

    counts = retention.apply_retention()

    assert counts["webhook_deliveries_deleted"] == 2
    remaining = set(WebhookDelivery.objects.values_list("pk", flat=True))
    assert remaining == {delivery.pk for delivery in kept}
    assert not remaining & {delivery.pk for delivery in old_done}


def test_addresses_never_confirmed_are_forgotten_once_their_link_has_expired(settings):
    from comments.models import NotificationAddress, ReplySubscription

    settings.COMMENTS_NOTIFY_CONFIRM_SECONDS = 7 * 86400
    now = timezone.now()
    expired = NotificationAddress.objects.create(
        email="never@example.com", confirmation_sent_at=now - dt.timedelta(days=7, seconds=1)
    )
    ReplySubscription.objects.create(comment=published_comment(), address=expired)
    waiting = NotificationAddress.objects.create(
        email="soon@example.com", confirmation_sent_at=now - dt.timedelta(days=6, hours=23)
    )
    confirmed = NotificationAddress.objects.create(
        email="yes@example.com",
        confirmation_sent_at=now - dt.timedelta(days=60),
        confirmed_at=now - dt.timedelta(days=59),
    )
    never_sent = NotificationAddress.objects.create(email="held@example.com")
    NotificationAddress.objects.filter(pk=never_sent.pk).update(
        created_at=now - dt.timedelta(days=8)
    )

    dry = retention.apply_retention(dry_run=True)
    assert dry["unconfirmed_addresses_deleted"] == 2
    assert NotificationAddress.objects.count() == 4

    counts = retention.apply_retention()

    assert counts["unconfirmed_addresses_deleted"] == 2
    assert set(NotificationAddress.objects.values_list("pk", flat=True)) == {
        waiting.pk,
        confirmed.pk,
    }
    assert not ReplySubscription.objects.filter(address_id=expired.pk).exists()
