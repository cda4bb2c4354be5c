"""What else happens when a comment is submitted or changes status.

Called by comments.moderation inside the transaction that made the change, so
whatever these record (webhook deliveries, reply notices) commits or rolls back
with it; the work itself is handed to tasks on commit.
"""

from __future__ import annotations

from comments.models import Comment


def submission_records_nothing(*, notify_replies: bool = False) -> bool:
    """Whether comment_submitted would record nothing for a new comment, so that
    moderation may store it with a single statement and call no hook."""
    from comments import webhooks

    return not notify_replies and not webhooks.is_wanted("comment.submitted")


def comment_submitted(comment: Comment, *, notify_replies: bool = False) -> None:
    from comments import reply_notifications, webhooks

    webhooks.record_event(comment, "comment.submitted")
    if notify_replies:
        reply_notifications.subscribe(comment)


def comment_transitioned(comment: Comment, *, source: str, target: str, action: str) -> None:
    """`comment` has just moved from `source` to `target` (its fields already updated)."""
    from comments import reply_notifications, webhooks

    if source != target:
        webhooks.record_event(comment, f"comment.{target}")
    reply_notifications.on_transition(comment, source=source, target=target)
