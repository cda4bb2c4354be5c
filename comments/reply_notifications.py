"""Reply notifications: a commenter who ticked "Notify me of replies by e-mail" hears
about published replies to their comment, after confirming their address.

Decisions (README.md, "Reply notifications"):

* Double opt-in. Ticking the box records a ReplySubscription and a
  NotificationAddress; nothing is mailed to an address until its owner has
  followed the link of the confirmation e-mail and pressed its button (a GET
  changes nothing, so mail scanners that open links confirm nothing).
* The confirmation is sent only once the subscribed comment is *published*, not
  at submit time: a spammer whose comments never pass the check cannot use the
  form to mail arbitrary addresses. It is sent at most once per
  COMMENTS_NOTIFY_CONFIRM_COOLDOWN_SECONDS per address, carries nothing the
  commenter typed (only the article's title and link), and is not sent to an
  address that is already confirmed.
* "Unsubscribe from everything" sets the address's `opted_out_at` and ends every
  subscription it has. Only a new tick of the box (a new subscription, whose
  comment is then published) sends one confirmation again, within the cooldown;
  confirming clears the opt-out.
* A reply is mailed when it enters "published" from any other status, once per
  reply ever (a NOTIFY_REPLY SideEffect claimed on the reply: at most once, also
  when it is republished after an edit or the task is redelivered), to the
  author of its direct parent only (not further ancestors), and only when the
  parent is published, its subscription is active, the address is confirmed and
  not opted out, and the reply is not by the parent's author.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from urllib.parse import urldefrag

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from comments import moderation, prepared
from comments.models import Comment, NotificationAddress, ReplySubscription, SideEffect
from comments.notifications import (
    body_text,
    comment_context,
    header_text,
    inline_text,
    render_email,
    site_url,
)

logger = logging.getLogger(__name__)
Status = Comment.Status

CONFIRM_SALT = "comments.notify.confirm"
UNSUBSCRIBE_SALT = "comments.notify.unsubscribe"
UNSUBSCRIBE_ALL_SALT = "comments.notify.unsubscribe-all"
QUOTE_LENGTH = 300


class LinkInvalid(Exception):
    """A link's token was tampered with, or names something else."""


class LinkExpired(Exception):
    """A confirmation link older than COMMENTS_NOTIFY_CONFIRM_SECONDS."""


# --- recording -----------------------------------------------------------------------------


def subscribe(comment: Comment) -> ReplySubscription:
    """Record that the author of the new `comment` wants to hear about replies to it.

    Runs inside moderation.submit's transaction; sends nothing (the confirmation
    waits until the comment is published, see on_transition).
    """
    address, _ = NotificationAddress.objects.get_or_create(email=comment.author_email.lower())
    subscription, _ = ReplySubscription.objects.get_or_create(
        comment=comment, defaults={"address": address}
    )
    return subscription


def may_receive(address: NotificationAddress) -> bool:
    """Whether notifications may be mailed to this address: confirmed, not opted out."""
    return address.confirmed_at is not None and address.opted_out_at is None


def on_transition(comment: Comment, *, source: str, target: str) -> None:
    """Inside the transaction of a status change: enqueue what a publication calls for.

    One query per publication: the subscriptions of the comment itself (its author's
    address may need confirming) and of its parent (whose author may hear of it).
    """
    if target != Status.PUBLISHED or source == Status.PUBLISHED:
        return
    ids = [comment.pk] + ([comment.parent_id] if comment.parent_id else [])
    # Most publications have no subscription to act on: a prepared probe says so
    # cheaply (a worker publishes on every passing check).
    if not prepared.exists(ReplySubscription, {"comment_id": ids, "unsubscribed_at": None}):
        return
    subscriptions = ReplySubscription.objects.filter(
        comment_id__in=ids, unsubscribed_at__isnull=True
    ).select_related("address")
    for subscription in subscriptions:
        address = subscription.address
        if subscription.comment_id == comment.pk:
            if not may_receive(address) and _cooled_down(address):
                moderation.enqueue_on_commit("send_notify_confirmation", subscription.pk)
        elif may_receive(address):
            moderation.enqueue_on_commit("notify_reply", comment.pk)


def _cooled_down(address: NotificationAddress) -> bool:
    sent = address.confirmation_sent_at
    return sent is None or sent <= timezone.now() - _cooldown()


def _cooldown() -> dt.timedelta:
    return dt.timedelta(seconds=settings.COMMENTS_NOTIFY_CONFIRM_COOLDOWN_SECONDS)


# --- signed links --------------------------------------------------------------------------
#
# Signed with SECRET_KEY, not encrypted: a link names its row by id and binds it to the
# address by a digest, so no e-mail address is ever written into a URL (or a log line).


def _digest(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()[:16]


def confirm_token(address: NotificationAddress) -> str:
    return signing.dumps({"a": address.pk, "h": _digest(address.email)}, salt=CONFIRM_SALT)


def unsubscribe_token(subscription: ReplySubscription) -> str:
    value = {"s": subscription.pk, "h": _digest(subscription.address.email)}
    return signing.dumps(value, salt=UNSUBSCRIBE_SALT)


def unsubscribe_all_token(address: NotificationAddress) -> str:
    return signing.dumps({"a": address.pk, "h": _digest(address.email)}, salt=UNSUBSCRIBE_ALL_SALT)


def _load(token: str, salt: str, key: str, *, max_age: int | None = None) -> tuple[int, str]:
    """(id, digest) of a valid token; raises LinkInvalid or LinkExpired."""
    try:
        value = signing.loads(token, salt=salt, max_age=max_age)
    except signing.SignatureExpired:
        raise LinkExpired from None
    except signing.BadSignature:
        raise LinkInvalid from None
    if not isinstance(value, dict):
        raise LinkInvalid
    pk, digest = value.get(key), value.get("h")
    if type(pk) is not int or not isinstance(digest, str):
        raise LinkInvalid
    return pk, digest


def check_confirm_token(token: str) -> NotificationAddress:
    """The address a confirmation link names; raises LinkInvalid or LinkExpired."""
    pk, digest = _load(token, CONFIRM_SALT, "a", max_age=settings.COMMENTS_NOTIFY_CONFIRM_SECONDS)
    address = NotificationAddress.objects.filter(pk=pk).first()
    if address is None or _digest(address.email) != digest:
        raise LinkInvalid
    return address


def check_unsubscribe_token(token: str) -> ReplySubscription | None:
    """The subscription of a per-thread unsubscribe link (None when it no longer
    exists: nothing left to stop). Never expires; raises LinkInvalid."""
    pk, digest = _load(token, UNSUBSCRIBE_SALT, "s")
    subscription = ReplySubscription.objects.select_related("address").filter(pk=pk).first()
    if subscription is not None and _digest(subscription.address.email) != digest:
        raise LinkInvalid
    return subscription


def check_unsubscribe_all_token(token: str) -> NotificationAddress | None:
    """The address of an "unsubscribe from everything" link (None when it no longer
    exists, e.g. erased). Never expires; raises LinkInvalid."""
    pk, digest = _load(token, UNSUBSCRIBE_ALL_SALT, "a")
    address = NotificationAddress.objects.filter(pk=pk).first()
    if address is not None and _digest(address.email) != digest:
        raise LinkInvalid
    return address


# --- what the links do ---------------------------------------------------------------------


def confirm(address: NotificationAddress) -> None:
    """The owner confirmed: from now on replies are mailed (an opt-out is lifted)."""
    now = timezone.now()
    NotificationAddress.objects.filter(pk=address.pk).update(confirmed_at=now, opted_out_at=None)
    address.confirmed_at, address.opted_out_at = now, None
    logger.info("notification address %s confirmed", address.pk)


def unsubscribe(subscription: ReplySubscription) -> None:
    """End one subscription (replies to one comment). Repeating it changes nothing."""
    ReplySubscription.objects.filter(pk=subscription.pk, unsubscribed_at__isnull=True).update(
        unsubscribed_at=timezone.now()
    )


def unsubscribe_all(address: NotificationAddress) -> None:
    """Opt the address out of everything, and end each of its subscriptions."""
    now = timezone.now()
    with transaction.atomic():
        NotificationAddress.objects.filter(pk=address.pk, opted_out_at__isnull=True).update(
            opted_out_at=now
        )
        ReplySubscription.objects.filter(address=address, unsubscribed_at__isnull=True).update(
            unsubscribed_at=now
        )
    logger.info("notification address %s opted out of everything", address.pk)


# --- the e-mails ---------------------------------------------------------------------------


def confirmation_message(subscription: ReplySubscription) -> EmailMultiAlternatives:
    """The double opt-in mail. Nothing in it was typed by the commenter: an address
    someone else entered receives only the article's title and the link."""
    address, article = subscription.address, subscription.comment.article
    context = {
        "article_title": inline_text(article.title),
        "article_url": article.url,
        "confirm_url": site_url(reverse("notify-confirm", args=[confirm_token(address)])),
        "valid_days": max(1, round(settings.COMMENTS_NOTIFY_CONFIRM_SECONDS / 86400)),
    }
    text, html = render_email("confirm", context)
    message = EmailMultiAlternatives(
        subject=header_text("Please confirm: e-mails about replies to your comment"),
        body=text,
        to=[address.email],
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(html, "text/html")
    return message


def reply_message(reply: Comment, subscription: ReplySubscription) -> EmailMultiAlternatives:
    """The mail about a published reply, with per-thread and global unsubscribe links
    (also as RFC 8058 one-click List-Unsubscribe headers)."""
    parent = subscription.comment
    unsubscribe_url = site_url(
        reverse("notify-unsubscribe", args=[unsubscribe_token(subscription)])
    )
    unsubscribe_all_url = site_url(
        reverse("notify-unsubscribe-all", args=[unsubscribe_all_token(subscription.address)])
    )
    quote = body_text(parent.body)
    if len(quote) > QUOTE_LENGTH:
        quote = quote[: QUOTE_LENGTH - 1].rstrip() + "…"
    context = {
        **comment_context(reply),
        "quote": quote,
        # The reply on the article's page: the widget gives each comment the id c<id>.
        "reply_url": f"{urldefrag(reply.article.url).url}#c{reply.pk}",
        "quoted": "\n".join(f"> {line}".rstrip() for line in quote.split("\n")),
        "unsubscribe_url": unsubscribe_url,
        "unsubscribe_all_url": unsubscribe_all_url,
    }
    text, html = render_email("reply", context)
    # The replier's name stays in the body: nothing a commenter typed goes into a header.
    subject = header_text(f"New reply to your comment on “{context['article_title']}”")
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        to=[subscription.address.email],
        headers={
            "Auto-Submitted": "auto-generated",
            "List-Unsubscribe": header_text(f"<{unsubscribe_url}>", max_length=2000),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(html, "text/html")
    return message


def send_confirmation(subscription_id: int) -> int:
    """Send the confirmation mail for one subscription, unless one went to the address
    within the cooldown; returns 1 when it was sent, else 0.

    The cooldown is taken by a compare-and-set on `confirmation_sent_at`, so two
    concurrent tasks send one mail; a failing send puts the old value back and raises
    (the task retries).
    """
    subscription = (
        ReplySubscription.objects.select_related("address", "comment__article")
        .filter(pk=subscription_id, unsubscribed_at__isnull=True)
        .first()
    )
    if subscription is None or subscription.comment.status != Status.PUBLISHED:
        return 0
    address = subscription.address
    if may_receive(address):
        return 0
    now = timezone.now()
    previous = address.confirmation_sent_at
    taken = (
        NotificationAddress.objects.filter(pk=address.pk)
        .filter(Q(confirmed_at__isnull=True) | Q(opted_out_at__isnull=False))
        .filter(
            Q(confirmation_sent_at__isnull=True) | Q(confirmation_sent_at__lte=now - _cooldown())
        )
        .update(confirmation_sent_at=now)
    )
    if not taken:
        logger.info("confirmation for address %s sent recently; not again", address.pk)
        return 0
    try:
        message = confirmation_message(subscription)
        message.send()
    except BaseException:
        NotificationAddress.objects.filter(pk=address.pk, confirmation_sent_at=now).update(
            confirmation_sent_at=previous
        )
        raise
    logger.info("confirmation mailed to address %s", address.pk)
    return 1


def notify_reply(reply_id: int) -> int:
    """Mail the parent's author about the published reply `reply_id`, at most once
    per reply; returns 1 when sent, else 0.

    Every condition is read again here, after commit: the reply and its parent are
    published, the parent's subscription is active, the address may receive mail and
    is not the replier's. The mail is then claimed (SideEffect NOTIFY_REPLY on the
    reply, never taken over) before it is sent, so a redelivered task, a second
    publication of the reply or a concurrent task sends nothing more; a failing send
    releases the claim and raises, so the task's retry can send it.
    """
    reply = (
        Comment.objects.select_related("article", "parent")
        .filter(pk=reply_id, status=Status.PUBLISHED, erased_at__isnull=True)
        .first()
    )
    if reply is None or reply.parent is None:
        return 0
    parent = reply.parent
    if parent.status != Status.PUBLISHED or parent.erased_at is not None:
        return 0
    subscription = (
        ReplySubscription.objects.select_related("address")
        .filter(comment=parent, unsubscribed_at__isnull=True)
        .first()
    )
    if subscription is None or not may_receive(subscription.address):
        return 0
    subscription.comment = parent
    replier = reply.author_email.lower()
    if replier in (parent.author_email.lower(), subscription.address.email):
        return 0
    claim = SideEffect.objects.claim(
        reply.pk, SideEffect.Kind.NOTIFY_REPLY, f"parent:{parent.pk}", stale_after=None
    )
    if not claim.owned:
        logger.info("reply %s was already mailed; not again", reply.pk)
        return 0
    try:
        reply_message(reply, subscription).send()
    except BaseException:
        claim.release()
        raise
    claim.finish()
    logger.info("reply %s mailed to the author of comment %s", reply.pk, parent.pk)
    return 1


# --- owed e-mails ------------------------------------------------------------------


def owed_reply_notices(since: dt.datetime, until: dt.datetime, limit: int) -> list[int]:
    """Replies published between `since` and `until` whose notice was never claimed.

    The notice's task is enqueued after the publication's commit; if the broker
    was down at that moment the message never existed. These are the replies
    notify_reply would mail (parent published and subscribed, the address confirmed
    before the reply was published and not opted out, not a self-reply) but whose
    NOTIFY_REPLY claim is missing.
    """
    claimed = SideEffect.objects.filter(
        comment_id=OuterRef("pk"), kind=SideEffect.Kind.NOTIFY_REPLY
    )
    subscribed = ReplySubscription.objects.filter(
        comment_id=OuterRef("parent_id"),
        unsubscribed_at__isnull=True,
        address__confirmed_at__isnull=False,
        address__confirmed_at__lte=OuterRef("published_at"),
        address__opted_out_at__isnull=True,
    ).exclude(address__email=Lower(OuterRef("author_email")))
    return list(
        Comment.objects.filter(
            status=Status.PUBLISHED,
            parent__isnull=False,
            parent__status=Status.PUBLISHED,
            published_at__gte=since,
            published_at__lt=until,
            erased_at__isnull=True,
        )
        .exclude(author_email__iexact=F("parent__author_email"))
        .filter(Exists(subscribed))
        .exclude(Exists(claimed))
        .order_by("published_at")
        .values_list("pk", flat=True)[:limit]
    )


def owed_confirmations(since: dt.datetime, until: dt.datetime, limit: int) -> list[int]:
    """Subscriptions whose comment was published between `since` and `until` and whose
    address was never sent a confirmation (its task was lost)."""
    return list(
        ReplySubscription.objects.filter(
            unsubscribed_at__isnull=True,
            comment__status=Status.PUBLISHED,
            comment__published_at__gte=since,
            comment__published_at__lt=until,
            address__confirmed_at__isnull=True,
            address__confirmation_sent_at__isnull=True,
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
