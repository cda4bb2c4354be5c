"""How the moderation console words things: reasons, status tabs, ages and percentages."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from comments import moderation
from comments.models import Comment, CommentEvent, HoldReason

Status = Comment.Status

REASON_LABELS: dict[str, str] = {
    **dict(HoldReason.choices),
    "akismet_ham": "Akismet: not spam",
    "akismet_spam": "Akismet: spam",
    "akismet_discard": "Akismet: blatant spam (discard)",
    "akismet_recheck_after": "Akismet asked to check again later",
    "akismet_key_invalid": "Akismet refused the API key",
    "disallowed_word": "Contains a disallowed word",
    "disallowed_email": "Disallowed email address",
    "disallowed_ip": "Disallowed IP address",
    "honeypot": "Filled in the honeypot field (a bot)",
}
TAB_LABELS = {
    Status.HELD: "Held",
    Status.PENDING: "Pending",
    Status.PUBLISHED: "Published",
    Status.SPAM: "Spam",
    Status.REJECTED: "Rejected",
    Status.REMOVED: "Removed",
    "discarded": "Discarded spam",
    "all": "All",
}


def reason_label(code: str) -> str:
    return REASON_LABELS.get(code, code.replace("_", " "))


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 3600:
        return f"{max(int(seconds // 60), 1)} min"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def percent(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio * 100:.1f} %"


def with_last_event(comments: QuerySet[Comment]) -> QuerySet[Comment]:
    """Who took the latest step and why: the reason column needs it for every row."""
    last = CommentEvent.objects.filter(comment=OuterRef("pk")).order_by("-created_at", "-id")
    return comments.annotate(
        last_actor=Subquery(last.values("actor_name")[:1]),
        last_reason=Subquery(last.values("reason")[:1]),
    )


def reason_text(comment: Comment) -> str:
    """Why the comment is where it is; reads the annotations of with_last_event()."""
    if comment.status == Status.HELD:
        return reason_label(comment.held_reason)
    # decision_reason is the automated check's; anyone else's step is in the history.
    actor = getattr(comment, "last_actor", None)
    if actor and actor != moderation.SPAM_CHECK.name:
        return f"by {actor}: {comment.last_reason}" if comment.last_reason else f"by {actor}"
    return reason_label(comment.decision_reason) if comment.decision_reason else "—"
