"""Celery tasks: thin, id-based and idempotent; the logic is in spam_check."""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections
from django.utils import timezone

from comments import notifications, retention, spam_check
from comments.akismet_client import AkismetKeyInvalid, AkismetUnavailable

logger = logging.getLogger(__name__)
DATABASE_RETRIES = 6  # about a minute of jittered backoff (0-2 s, 0-4 s, ... 0-30 s)


def _backoff(retries: int) -> float:
    """Exponential backoff with full jitter: 0–1 s, 0–2 s, 0–4 s ... capped at 30 s."""
    return random.uniform(0.2, min(30.0, 2.0**retries))  # noqa: S311 (not security)


@shared_task(bind=True, max_retries=None)
def check_comment(self, comment_id: int) -> str:
    """Check one comment; harmless when redelivered or when a moderator acted first."""
    try:
        return spam_check.check(comment_id, retrying=self.request.retries > 0)
    except (OperationalError, InterfaceError) as exc:
        # The database is unreachable: back off and resume. Past the last retry the
        # comment is still pending with its deadline, and the sweeper hands it out.
        if self.request.retries >= DATABASE_RETRIES:
            raise
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries + 1)) from None
    except AkismetUnavailable as exc:
        if self.request.retries >= settings.COMMENTS_CHECK_RETRIES:
            logger.warning("Akismet unavailable for comment %s, holding it: %s", comment_id, exc)
            return spam_check.hold_unavailable(comment_id, str(exc))
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from None


@shared_task
def check_comments(comment_ids: list[int]) -> dict[int, str]:
    """A batch from a web process's dispatcher (comments/dispatch.py), checked side by
    side so one slow Akismet answer does not hold up the rest. An id whose check
    cannot run now becomes its own `check_comment` task, with that task's retries."""
    results = dict(zip(comment_ids, _batch_pool().map(_check_in_batch, comment_ids), strict=True))
    return results


def _check_in_batch(comment_id: int) -> str:
    close_old_connections()
    try:
        return spam_check.check(comment_id)
    except AkismetUnavailable:
        check_comment.apply_async((comment_id,), countdown=_backoff(0))
        return "retry"
    except Exception:
        # Still pending with its deadline: the sweeper hands it out again.
        logger.exception("check of comment %s failed in a batch", comment_id)
        return "error"
    finally:
        close_old_connections()


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _batch_pool() -> ThreadPoolExecutor:
    """One pool per worker process; its threads keep their database connections."""
    global _pool
    with _pool_lock:
        if _pool is None:
            size = max(1, int(getattr(settings, "CELERY_WORKER_CONCURRENCY", 8)))
            _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="check-batch")
        return _pool


@shared_task(bind=True, max_retries=6)
def submit_feedback(self, comment_id: int, kind: str) -> str:
    """submit-ham / submit-spam after a moderator overruled Akismet, once per decision.

    One decision enqueues one task; its id, kept by every redelivery and retry, is
    the claim's key. Redelivered, the task finds the claim done and sends nothing.
    A claim in progress but never done (its worker died or lost the database
    before finishing) is retried once it can be taken over.
    """
    try:
        result = spam_check.send_feedback(comment_id, kind, delivery=self.request.id)
    except (AkismetUnavailable, OperationalError) as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries + 2)) from None
    except AkismetKeyInvalid:
        logger.error("Akismet refused the key; %s feedback for %s not sent", kind, comment_id)
        return "key_invalid"
    if result == "in_progress":
        raise self.retry(countdown=settings.CELERY_TASK_TIME_LIMIT + 1)
    return result


@shared_task
def sweep_pending() -> int:
    """Re-enqueue pending comments whose check is overdue: the database is the truth."""
    ids = spam_check.due_for_sweep()
    for comment_id in ids:
        check_comment.delay(comment_id)
    if ids:
        logger.info("sweeper re-enqueued %d pending comment(s)", len(ids))
    return len(ids)


@shared_task(soft_time_limit=240, time_limit=270)
def recheck_unavailable() -> dict[str, int]:
    return spam_check.recheck_unavailable()


@shared_task
def purge_discarded() -> int:
    """Kept for messages queued before an upgrade; beat now runs apply_retention."""
    return retention.purge_discarded().deleted


@shared_task(bind=True, max_retries=3)
def notify_moderators(self, comment_id: int) -> int:
    """E-mail moderators about a held comment, at most once per hold.

    Redelivered or run twice at once, only the delivery that claims the mail sends
    it (notifications.notify_held). A failing mail never blocks moderation.
    """
    try:
        return notifications.notify_held(comment_id)
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            logger.exception("could not e-mail moderators about comment %s", comment_id)
            return 0
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries + 2)) from None


@shared_task(soft_time_limit=240, time_limit=270)
def apply_retention() -> dict[str, int]:
    """Trim old request details and delete old spam (comments/retention.py), hourly.

    Batched and idempotent: a run stopped by its time budget, or killed, leaves
    nothing half-done, and the next run carries on.
    """
    return retention.apply_retention(time_budget=200)


@shared_task(bind=True, max_retries=3)
def send_personal_data_link(self, email: str, action: str) -> int:
    """E-mail an author the signed export or erasure link they asked for, once per request.

    Sends nothing when the address has no comments (the request was answered 202
    all the same, so nobody learns which addresses have comments).
    """
    from comments import personal_data

    try:
        return personal_data.send_link(email, action, delivery=self.request.id)
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            logger.exception("could not e-mail a personal data link")
            return 0
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries + 2)) from None


# --- Webhooks (comments/webhooks.py) -------------------------------------------------


@shared_task(soft_time_limit=120, time_limit=150)
def deliver_webhook(delivery_id: int) -> str:
    """Make the due attempt of one webhook delivery; a duplicate message sends nothing.

    The row is claimed with a lease first, so a redelivered or concurrent message
    finds it not due. A failure (the database, a crash) leaves the row due once the
    lease expires, for the sweeper.
    """
    from comments import webhooks

    return webhooks.deliver(delivery_id)


@shared_task
def deliver_due_webhooks() -> int:
    """Beat: enqueue deliveries that are due (lost messages, retries, expired leases)."""
    from comments import webhooks

    ids = webhooks.due_deliveries()
    webhooks.enqueue(ids)
    if ids:
        logger.info("webhook sweeper enqueued %d due deliveries", len(ids))
    return len(ids)


# --- Reply notifications (comments/reply_notifications.py) -----------------------------


@shared_task(bind=True, max_retries=3)
def send_notify_confirmation(self, subscription_id: int) -> int:
    """The double opt-in e-mail for a subscription whose comment was published; at
    most one per address within the cooldown, however often it is delivered."""
    from comments import reply_notifications

    try:
        return reply_notifications.send_confirmation(subscription_id)
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            logger.exception("could not send the confirmation of subscription %s", subscription_id)
            return 0
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries + 2)) from None


@shared_task(bind=True, max_retries=3)
def notify_reply(self, reply_id: int) -> int:
    """E-mail the parent's author about a published reply, at most once per reply."""
    from comments import reply_notifications

    try:
        return reply_notifications.notify_reply(reply_id)
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            logger.exception("could not e-mail about reply %s", reply_id)
            return 0
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries + 2)) from None


@shared_task
def sweep_owed_emails() -> dict[str, int]:
    """Enqueue again the e-mails whose task was lost (the broker was down when the
    decision committed): moderator notices of holds, reply notices, confirmations.

    Each task claims its e-mail before sending, so one enqueued twice sends once.
    Looks at decisions older than a minute (their own task has had its chance) and
    younger than COMMENTS_EMAIL_SWEEP_HOURS (older news is not worth a mail).
    """
    from comments import reply_notifications

    now = timezone.now()
    since = now - dt.timedelta(hours=settings.COMMENTS_EMAIL_SWEEP_HOURS)
    until = now - dt.timedelta(seconds=60)
    batch = 200
    owed = {
        "notify_moderators": notifications.owed_held_notices(since, until, batch),
        "notify_reply": reply_notifications.owed_reply_notices(since, until, batch),
        "send_notify_confirmation": reply_notifications.owed_confirmations(since, until, batch),
    }
    for task_name, ids in owed.items():
        for object_id in ids:
            globals()[task_name].delay(object_id)
    counts = {task_name: len(ids) for task_name, ids in owed.items()}
    if any(counts.values()):
        logger.warning("e-mails owed after lost tasks, enqueued again: %s", counts)
    return counts
