"""E-mail to moderators when a comment waits for them."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.urls import reverse

from comments.models import Comment, CommentEvent, HoldReason, SideEffect

logger = logging.getLogger(__name__)

MODERATE_PERMISSION = "comments.can_moderate"
# Held only until the recheck runs; an e-mail for each would be noise.
QUIET_HOLD_REASONS = {HoldReason.CHECK_UNAVAILABLE}


def moderator_addresses() -> list[str]:
    if settings.COMMENTS_MODERATOR_EMAILS:
        return list(settings.COMMENTS_MODERATOR_EMAILS)
    users = get_user_model().objects.with_perm(MODERATE_PERMISSION, include_superusers=True)
    return sorted({user.email for user in users.filter(is_active=True) if user.email})


def should_notify(comment: Comment) -> bool:
    return comment.status == Comment.Status.HELD and comment.held_reason not in QUIET_HOLD_REASONS


def held_comment_message(comment: Comment) -> tuple[str, str]:
    """Subject and plain-text body. Plain text only: nothing in it is ever rendered as HTML."""
    article = comment.article
    console = settings.COMMENTS_SITE_URL.rstrip("/") + reverse(
        "admin:comments_comment_change", args=[comment.pk]
    )
    subject = f"Comment held for review on “{article.title}”"
    body = "\n".join(
        [
            f"A comment on “{article.title}” is waiting for a moderator.",
            "",
            f"Reason:  {comment.get_held_reason_display()}",
            f"Author:  {comment.author_name}",
            f"E-mail:  {comment.author_email}",
            f"Website: {comment.author_url or '-'}",
            f"Article: {article.url}",
            "",
            comment.body,
            "",
            f"Review it: {console}",
        ]
    )
    return subject.replace("\n", " ")[:200], body


def notify_held(comment_id: int) -> int:
    """Send the e-mail once per hold; returns the number of recipients (0 when nothing sent).

    At most once (see SideEffect): the e-mail is claimed for the hold that caused
    it (its CommentEvent) before it is sent, so a redelivered or concurrent task
    sends nothing. A claim whose worker died before marking it done is never
    taken over, because the mail may have gone out; the comment waits in the
    moderation queue either way. A failing send releases the claim and raises,
    so the task's retry can send it. A later, separate hold of the same comment
    (after an edit, say) is a new decision and mails again.
    """
    comment = Comment.objects.select_related("article").filter(pk=comment_id).first()
    if comment is None or not should_notify(comment):
        return 0
    recipients = moderator_addresses()
    if not recipients:
        return 0
    hold_event = (
        CommentEvent.objects.filter(comment_id=comment.pk, to_status=Comment.Status.HELD)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    claim = SideEffect.objects.claim(
        comment.pk, SideEffect.Kind.NOTIFY_HELD, f"event:{hold_event or 0}", stale_after=None
    )
    if not claim.owned:
        logger.info("moderators were already told about comment %s; not again", comment.pk)
        return 0
    subject, body = held_comment_message(comment)
    try:
        send_mail(subject, body, None, recipients)
    except BaseException:
        claim.release()
        raise
    claim.finish()
    return len(recipients)
