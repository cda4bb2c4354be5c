"""The automated check: local rules, then Akismet, then hold rules.

Every outcome goes through `moderation.record_check`, so a comment that a
moderator (or a duplicate task) handled first is left alone.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from articles.models import Article
from comments import akismet_client, moderation, prepared
from comments.akismet_client import AkismetKeyInvalid, AkismetUnavailable, CheckResult
from comments.models import Comment, CommentEvent, HoldReason, SideEffect
from comments.moderation import CheckOutcome
from comments.rules import EffectiveRules

logger = logging.getLogger(__name__)
Status = Comment.Status

# A comment that keeps getting "recheck after" is given to a human after this many checks.
MAX_RECHECK_AFTER_ROUNDS = 5
# Comments held as "check unavailable" longer than this are left to humans alone.
RECHECK_GIVE_UP_AFTER = dt.timedelta(days=15)


def decide(comment: Comment, result: CheckResult, rules: EffectiveRules) -> CheckOutcome:
    """Turn Akismet's answer into an outcome, with a reason code."""
    now = timezone.now()
    fields: dict[str, object] = {
        "akismet_verdict": result.verdict,
        "akismet_guid": result.guid,
        "akismet_pro_tip": result.pro_tip,
        "akismet_error": _account_problem_text(result),
        "akismet_checked_at": now,
        "next_check_at": None,
    }
    details = {
        "verdict": result.verdict,
        "guid": result.guid,
        "attempt": comment.check_attempts,
        "headers": result.headers,
    }
    if result.account_problem:
        logger.error(
            "Akismet reported an account problem on comment %s: %s",
            comment.pk,
            fields["akismet_error"],
        )
        return CheckOutcome("hold", "akismet_account", HoldReason.AKISMET_ACCOUNT, fields, details)
    if rules.shadow_mode:
        # Record what Akismet and the local rules said; a human decides every comment.
        details["local_rule"] = rules.spam_reason(comment) or ""
        details["hold_rule"] = rules.hold_reason(comment) or ""
        return CheckOutcome("hold", "shadow_mode", HoldReason.SHADOW_MODE, fields, details)
    if result.verdict == "discard":
        fields["discarded"] = True
        return CheckOutcome("mark_spam", "akismet_discard", fields=fields, details=details)
    if result.verdict == "spam":
        return CheckOutcome("mark_spam", "akismet_spam", fields=fields, details=details)
    if result.recheck_after is not None:
        if comment.check_attempts >= MAX_RECHECK_AFTER_ROUNDS:
            return CheckOutcome(
                "hold", "check_incomplete", HoldReason.CHECK_INCOMPLETE, fields, details
            )
        fields["next_check_at"] = now + dt.timedelta(seconds=result.recheck_after)
        fields["recheck_reason"] = "recheck"
        details["recheck_after"] = result.recheck_after
        return CheckOutcome("wait", "akismet_recheck_after", fields=fields, details=details)
    hold_reason = rules.hold_reason(comment)
    if hold_reason:
        return CheckOutcome("hold", hold_reason, hold_reason, fields, details)
    return CheckOutcome("publish", "akismet_ham", fields=fields, details=details)


def _account_problem_text(result: CheckResult) -> str:
    parts = []
    if result.error:
        parts.append(f"error: {result.error}")
    if result.alert_code:
        parts.append(f"alert {result.alert_code}: {result.alert_msg}".strip())
    return "; ".join(parts)[:500]


def check(comment_id: int, *, retrying: bool = False) -> str:
    """Check one pending comment. Returns what happened.

    Raises AkismetUnavailable for the caller (the task) to retry; an invalid
    key holds the comment at once.
    """
    comment = _load_pending(comment_id)
    if comment is None:
        return "skipped"
    rules = EffectiveRules.load()
    spam_reason = rules.spam_reason(comment)
    if spam_reason and not rules.shadow_mode:
        outcome = CheckOutcome(
            "mark_spam", spam_reason, fields={"next_check_at": None}, details={"rule": spam_reason}
        )
        return _record(comment, outcome)
    if not settings.AKISMET_ENABLED:
        outcome = CheckOutcome(
            "hold", "check_disabled", HoldReason.CHECK_DISABLED, fields={"next_check_at": None}
        )
        return _record(comment, outcome)
    recheck_reason = "retry" if retrying else comment.recheck_reason
    payload = akismet_client.build_payload(comment, recheck_reason=recheck_reason)
    attempts = comment.check_attempts + 1
    moderation.record_check_attempt(
        comment, {"check_attempts": attempts, "akismet_payload": payload}, recheck=False
    )
    try:
        result = akismet_client.comment_check(payload)
    except AkismetKeyInvalid as exc:
        logger.error("Akismet refused the key; comment %s is held: %s", comment_id, exc)
        return hold_unavailable(comment_id, str(exc), key_invalid=True)
    return _record(comment, decide(comment, result, rules))


def _load_pending(comment_id: int) -> Comment | None:
    """The comment with its article, if it is still pending. Prepared statements on
    PostgreSQL: a worker runs this for every check (issue 7)."""
    comment = prepared.get_by(Comment, "id", comment_id)
    if comment is None or comment.status != Status.PENDING:
        return None
    comment.article = prepared.get_by(Article, "id", comment.article_id)
    return comment


def _record(comment: Comment, outcome: CheckOutcome, *, recheck: bool = False) -> str:
    applied = moderation.record_check(comment, outcome, recheck=recheck)
    return outcome.reason if applied else "superseded"


def hold_unavailable(comment_id: int, error: str, *, key_invalid: bool = False) -> str:
    """After the fast retries: hold for a human and schedule a recheck in the database."""
    comment = Comment.objects.filter(pk=comment_id).first()
    if comment is None:
        return "skipped"
    delay = (
        settings.COMMENTS_RECHECK_MAX_SECONDS
        if key_invalid
        else settings.COMMENTS_RECHECK_INTERVAL_SECONDS
    )
    outcome = CheckOutcome(
        "hold",
        "akismet_key_invalid" if key_invalid else "check_unavailable",
        HoldReason.CHECK_UNAVAILABLE,
        fields={
            "akismet_error": error[:500],
            "next_check_at": timezone.now() + dt.timedelta(seconds=delay),
            "recheck_reason": "retry",
        },
        details={"error": error[:500], "attempt": comment.check_attempts},
    )
    return _record(comment, outcome)


def recheck_unavailable(batch_size: int | None = None) -> dict[str, int]:
    """Re-run the check on comments held because Akismet was unavailable.

    Stops at the first failure and pushes every due recheck back, doubling the
    wait, as the WordPress plugin does; routes each answer like a first check.
    """
    now = timezone.now()
    stats = {"checked": 0, "failed": 0}
    due = list(
        Comment.objects.select_related("article")
        .filter(
            status=Status.HELD,
            held_reason=HoldReason.CHECK_UNAVAILABLE,
            next_check_at__lte=now,
        )
        .order_by("next_check_at", "id")[: batch_size or settings.COMMENTS_RECHECK_BATCH]
    )
    rules = EffectiveRules.load()
    for comment in due:
        if now - comment.created_at > RECHECK_GIVE_UP_AFTER:
            moderation.record_check_attempt(comment, {"next_check_at": None}, recheck=True)
            continue
        payload = akismet_client.build_payload(comment, recheck_reason="retry")
        attempts = comment.check_attempts + 1
        moderation.record_check_attempt(
            comment, {"check_attempts": attempts, "akismet_payload": payload}, recheck=True
        )
        try:
            result = akismet_client.comment_check(payload)
        except (AkismetUnavailable, AkismetKeyInvalid) as exc:
            stats["failed"] += 1
            _back_off_rechecks(comment, str(exc), key_invalid=isinstance(exc, AkismetKeyInvalid))
            break
        _record(comment, decide(comment, result, rules), recheck=True)
        stats["checked"] += 1
    return stats


def _back_off_rechecks(failed: Comment, error: str, *, key_invalid: bool) -> None:
    base = settings.COMMENTS_RECHECK_INTERVAL_SECONDS
    delay = (
        settings.COMMENTS_RECHECK_MAX_SECONDS
        if key_invalid
        else base * 2 ** min(failed.check_attempts, 16)
    )
    delay = min(delay, settings.COMMENTS_RECHECK_MAX_SECONDS)
    now = timezone.now()
    logger.warning("Akismet recheck failed (%s); next try in %ss", error, delay)
    Comment.objects.filter(
        status=Status.HELD, held_reason=HoldReason.CHECK_UNAVAILABLE, next_check_at__lte=now
    ).update(next_check_at=now + dt.timedelta(seconds=delay), akismet_error=error[:500])


def due_for_sweep(limit: int = 500) -> list[int]:
    """Pending comments whose check is overdue (a lost message, a flushed broker).

    Each is given a new deadline before it is handed out again, so two sweeps
    never enqueue it twice in a row and a busy worker is given time.
    """
    now = timezone.now()
    grace = dt.timedelta(seconds=settings.COMMENTS_SWEEP_AFTER_SECONDS)
    with transaction.atomic():
        ids = list(
            Comment.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING, next_check_at__lte=now)
            .order_by("next_check_at")
            .values_list("id", flat=True)[:limit]
        )
        Comment.objects.filter(pk__in=ids, status=Status.PENDING).update(next_check_at=now + grace)
    return ids


def send_feedback(comment_id: int, kind: str, *, delivery: str | None = None) -> str:
    """Tell Akismet a moderator disagreed with it, with the arguments it was asked about.

    Once per moderator decision, at least once (see SideEffect). The call is
    claimed under the decision's key: `delivery`, the Celery task id, which every
    redelivery and retry of the task one decision enqueued shares while a second
    decision enqueues a new one; without it (a direct call), the id of the latest
    moderator decision (CommentEvent) to that status. So a redelivered task sends
    nothing ("duplicate"), while a moderator who overrules again is sent again,
    whenever the tasks run. A failing call releases the claim and raises for the
    task to retry. A claim whose worker died before marking it done is taken over
    once it is older than the task time limit (no live worker can still hold it);
    until then the answer is "in_progress" and the task waits.
    """
    comment = Comment.objects.select_related("article").filter(pk=comment_id).first()
    if comment is None:
        return "skipped"
    if kind not in ("ham", "spam"):
        raise ValueError(f"unknown feedback kind {kind!r}")
    payload = dict(comment.akismet_payload) or akismet_client.build_payload(comment)
    payload.pop("recheck_reason", None)
    if settings.AKISMET_IS_TEST:
        payload["is_test"] = True
    if delivery is None:
        decided = Status.PUBLISHED if kind == "ham" else Status.SPAM
        decision = (
            CommentEvent.objects.filter(
                comment_id=comment.pk, to_status=decided, actor_user__isnull=False
            )
            .order_by("-id")
            .values_list("id", flat=True)
            .first()
        )
        delivery = f"event:{decision or 0}"
    claim = SideEffect.objects.claim(
        comment.pk,
        SideEffect.Kind.SUBMIT_HAM if kind == "ham" else SideEffect.Kind.SUBMIT_SPAM,
        delivery,
        stale_after=dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT),
    )
    if not claim.owned:
        return "duplicate" if claim.done_at else "in_progress"
    try:
        if kind == "ham":
            akismet_client.submit_ham(payload)
        else:
            akismet_client.submit_spam(payload)
    except BaseException:
        claim.release()
        raise
    claim.finish()
    return kind
