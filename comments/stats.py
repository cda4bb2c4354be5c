"""Moderation figures, shared by the console's stats page and the moderation API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Min, OuterRef, Q, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from comments.models import Comment, CommentEvent, HoldReason

Status = Comment.Status
WAITING = (Status.HELD, Status.PENDING)
UNAVAILABLE_REASONS = ("check_unavailable", "akismet_key_invalid", "akismet_account")


def status_counts() -> dict[str, int]:
    counts = dict.fromkeys(Status.values, 0)
    for row in Comment.objects.values("status").annotate(n=Count("id")).order_by():
        counts[row["status"]] = row["n"]
    return counts


def oldest_waiting() -> dict[str, Any]:
    """Age of the oldest comment waiting for a human (held) and for the check (pending)."""
    now = timezone.now()
    oldest = Comment.objects.aggregate(
        held=Min("created_at", filter=Q(status=Status.HELD, discarded=False)),
        pending=Min("created_at", filter=Q(status=Status.PENDING)),
    )
    return {
        f"oldest_{name}_seconds": round((now - value).total_seconds()) if value else None
        for name, value in oldest.items()
    }


def daily_outcomes(days: int = 30) -> list[dict[str, Any]]:
    """Comments per day (by submission date) and their current status."""
    today = timezone.now().date()
    start = today - dt.timedelta(days=days - 1)
    rows = (
        Comment.objects.filter(created_at__date__gte=start)
        .annotate(day=TruncDate("created_at"))
        .values("day", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_day = {start + dt.timedelta(days=i): dict.fromkeys(Status.values, 0) for i in range(days)}
    for row in rows:
        if row["day"] in by_day:
            by_day[row["day"]][row["status"]] = row["n"]
    return [{"day": day.isoformat(), **counts} for day, counts in by_day.items()]


def spam_ratio(days: int = 30) -> float | None:
    """Share of checked comments that ended as spam, over the last `days`."""
    since = timezone.now() - dt.timedelta(days=days)
    counts = (
        Comment.objects.filter(created_at__gte=since)
        .exclude(status=Status.PENDING)
        .aggregate(total=Count("id"), spam=Count("id", filter=Q(status=Status.SPAM)))
    )
    return round(counts["spam"] / counts["total"], 4) if counts["total"] else None


def akismet_errors(days: int = 30) -> dict[str, Any]:
    """How often the check failed or Akismet reported an account problem."""
    since = timezone.now() - dt.timedelta(days=days)
    events = CommentEvent.objects.filter(created_at__gte=since, actor_name="spam-check")
    by_reason = dict(
        events.filter(reason__in=UNAVAILABLE_REASONS)
        .values_list("reason")
        .annotate(n=Count("id"))
        .order_by()
    )
    last = (
        Comment.objects.exclude(akismet_error="")
        .order_by("-akismet_checked_at", "-id")
        .values("akismet_error", "akismet_checked_at")
        .first()
    )
    return {
        "by_reason": {reason: by_reason.get(reason, 0) for reason in UNAVAILABLE_REASONS},
        "waiting_for_recheck": Comment.objects.filter(
            status=Status.HELD, held_reason=HoldReason.CHECK_UNAVAILABLE
        ).count(),
        "last_error": last["akismet_error"] if last else None,
    }


def akismet_agreement() -> dict[str, Any]:
    """How moderators' final decisions agree with Akismet's verdicts.

    Counts comments with a verdict whose latest change was made by a person:
    published (human says ham) or spam/rejected (human says not fit).
    """
    latest_actor = (
        CommentEvent.objects.filter(comment=OuterRef("pk"))
        .order_by("-created_at", "-id")
        .values("actor_user_id")[:1]
    )
    decided = (
        Comment.objects.exclude(akismet_verdict="")
        .filter(status__in=[Status.PUBLISHED, Status.SPAM, Status.REJECTED])
        .annotate(decided_by=Subquery(latest_actor))
        .filter(decided_by__isnull=False)
        .values("akismet_verdict", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    table = {"agree_ham": 0, "agree_spam": 0, "false_positives": 0, "false_negatives": 0}
    for row in decided:
        akismet_spam = row["akismet_verdict"] in ("spam", "discard")
        human_spam = row["status"] != Status.PUBLISHED
        if akismet_spam and human_spam:
            table["agree_spam"] += row["n"]
        elif akismet_spam:
            table["false_positives"] += row["n"]
        elif human_spam:
            table["false_negatives"] += row["n"]
        else:
            table["agree_ham"] += row["n"]
    total = sum(table.values())
    agreed = table["agree_ham"] + table["agree_spam"]
    return {**table, "decided": total, "agreement": round(agreed / total, 4) if total else None}


def summary() -> dict[str, Any]:
    return {
        "counts": status_counts(),
        **oldest_waiting(),
        "spam_ratio_30d": spam_ratio(),
        "akismet_errors_30d": akismet_errors(),
        "akismet_agreement": akismet_agreement(),
    }
