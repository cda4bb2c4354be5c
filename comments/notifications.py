"""E-mail: the moderators' mail about held comments, and what every mail shares.

Every mail is plain text with an HTML alternative, both rendered from templates in
comments/templates/comments/email/ (the HTML one autoescaped; a comment's text
appears there only as its sanitised `body_html`). Nothing a commenter typed reaches
a header as it was typed: a subject is built from `header_text`, which turns CR,
LF and every other control character into spaces, so a name or title such as
"Eve\\r\\nBcc: victim@example.com" can neither add a header nor break the subject
line. (Django refuses newlines in headers too, by raising; this is the first line
of defence, not the only one.)
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db.models import CharField, Exists, OuterRef, Subquery, Value
from django.db.models.functions import Cast, Concat
from django.template.loader import render_to_string
from django.urls import reverse

from comments.models import Comment, CommentEvent, HoldReason, SideEffect

logger = logging.getLogger(__name__)

MODERATE_PERMISSION = "comments.can_moderate"
# Held only until the recheck runs; an e-mail for each would be noise.
QUIET_HOLD_REASONS = {HoldReason.CHECK_UNAVAILABLE}
SUBJECT_MAX_LENGTH = 200

# C0 and C1 controls (CR, LF, NUL, ESC, NEL...) and the Unicode line and paragraph
# separators: each becomes a space.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Bidirectional overrides and isolates, which can make a subject read backwards.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# In a text body: every control character except line feed and tab.
_BODY_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def header_text(value: str, *, max_length: int = SUBJECT_MAX_LENGTH) -> str:
    """`value` as one line fit for a mail header: no control characters, spaces collapsed."""
    text = " ".join(_BIDI.sub("", _CONTROL.sub(" ", value)).split())
    if len(text) > max_length:
        text = text[: max_length - 1].rstrip() + "…"
    return text


def inline_text(value: str) -> str:
    """A name or title for a mail body: one line, nothing hidden in control characters."""
    return header_text(value, max_length=10_000)


def body_text(value: str) -> str:
    """A comment's text for a plain-text body: its lines kept, control characters dropped."""
    return _BODY_CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def site_url(path: str) -> str:
    """An absolute link to this server, for e-mails (COMMENTS_SITE_URL)."""
    return settings.COMMENTS_SITE_URL.rstrip("/") + path


def render_email(template: str, context: dict[str, object]) -> tuple[str, str]:
    """The plain-text and the HTML body of comments/email/<template>.{txt,html}."""
    text = render_to_string(f"comments/email/{template}.txt", context)
    html = render_to_string(f"comments/email/{template}.html", context)
    return text, html


def comment_context(comment: Comment) -> dict[str, object]:
    """What a template may show of a comment and its article, made safe for e-mail."""
    article = comment.article
    return {
        "comment": comment,
        "author_name": inline_text(comment.author_name),
        "text": body_text(comment.body),
        "article_title": inline_text(article.title),
        "article_url": article.url,
    }


def moderator_addresses() -> list[str]:
    if settings.COMMENTS_MODERATOR_EMAILS:
        return list(settings.COMMENTS_MODERATOR_EMAILS)
    users = get_user_model().objects.with_perm(MODERATE_PERMISSION, include_superusers=True)
    return sorted({user.email for user in users.filter(is_active=True) if user.email})


def should_notify(comment: Comment) -> bool:
    return comment.status == Comment.Status.HELD and comment.held_reason not in QUIET_HOLD_REASONS


def held_comment_message(comment: Comment) -> tuple[str, str, str]:
    """Subject, plain-text body and HTML body of the moderators' mail."""
    context = {
        **comment_context(comment),
        "reason": comment.get_held_reason_display(),
        "author_email": comment.author_email,
        "author_url": inline_text(comment.author_url),
        "console_url": site_url(reverse("admin:comments_comment_change", args=[comment.pk])),
    }
    subject = header_text(f"Comment held for review on “{context['article_title']}”")
    text, html = render_email("held", context)
    return subject, text, html


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
    subject, text, html = held_comment_message(comment)
    try:
        send_mail(subject, text, None, recipients, html_message=html)
    except BaseException:
        claim.release()
        raise
    claim.finish()
    return len(recipients)


def owed_held_notices(since: dt.datetime, until: dt.datetime, limit: int) -> list[int]:
    """Comments held (loudly) between `since` and `until` whose moderator e-mail was
    never claimed: its task was lost (the broker was down at the hold's commit).

    A comment whose e-mail was claimed and not finished (a worker that died while
    sending) is not owed: the mail may have gone out, and it is at most once.
    """
    if not moderator_addresses():
        return []
    latest_hold = (
        CommentEvent.objects.filter(comment_id=OuterRef("pk"), to_status=Comment.Status.HELD)
        .order_by("-id")
        .values("id")[:1]
    )
    held = (
        Comment.objects.filter(status=Comment.Status.HELD)
        .exclude(held_reason__in=QUIET_HOLD_REASONS)
        .annotate(hold_event=Subquery(latest_hold))
        .filter(
            Exists(
                CommentEvent.objects.filter(
                    pk=OuterRef("hold_event"), created_at__gte=since, created_at__lt=until
                )
            )
        )
    )
    claimed = SideEffect.objects.filter(
        comment_id=OuterRef("pk"),
        kind=SideEffect.Kind.NOTIFY_HELD,
        key=Concat(Value("event:"), Cast(OuterRef("hold_event"), CharField())),
    )
    return list(held.exclude(Exists(claimed)).order_by("pk").values_list("pk", flat=True)[:limit])
