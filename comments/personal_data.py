"""Export and erasure of one person's data, found by the e-mail address they used.

An erasure anonymises every comment of the address in place (never deletes it:
replies keep their place in the thread, and the status is unchanged) and removes
every other copy of the address, IP address and user agent this database holds:
the Akismet payload, the audit trail's details, reply notifications, webhook
delivery payloads and the admin's log. No copy and no hash of the address is
kept: the erasure event on each comment records who erased it and when, not whose
data it was. Both run in one transaction.

The self-service links e-mailed to an author are signed (django.core.signing)
with a salt per action, so an export link cannot erase, and do not contain the
address (see make_link_token).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core import signing
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Prefetch, Q, QuerySet
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from comments import moderation, read_cache
from comments.models import (
    Comment,
    CommentEvent,
    NotificationAddress,
    ReplySubscription,
    WebhookDelivery,
)
from comments.rendering import render_body

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
REMOVED_TEXT = "[removed at the author's request]"
ERASED_REPR = "[personal data erased]"
# Keys of webhook payloads (and the like) that hold the author's private details.
PRIVATE_KEYS = frozenset(
    {"author_email", "email", "ip_address", "ip", "user_agent", "referrer", "author_url"}
)
TEXT_KEYS = frozenset({"body", "body_html", "text"})
ACTIONS = ("export", "erase")
_SALTS = {action: f"comments.personal-data.{action}" for action in ACTIONS}


def comments_of(email: str) -> QuerySet[Comment]:
    """Every comment written with this address, whatever its case or status."""
    return Comment.objects.filter(author_email__iexact=email.strip())


def has_comments(email: str) -> bool:
    return bool(email.strip()) and comments_of(email).exists()


# --- export -------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _event_data(event: CommentEvent) -> dict[str, Any]:
    return {
        "from_status": event.from_status,
        "to_status": event.to_status,
        "actor": event.actor_name,
        "reason": event.reason,
        "details": event.details,
        "created_at": _iso(event.created_at),
    }


def _comment_data(comment: Comment) -> dict[str, Any]:
    article = comment.article
    return {
        "id": comment.pk,
        "article": {"slug": article.slug, "url": article.url, "title": article.title},
        "parent_id": comment.parent_id,
        "status": comment.status,
        "held_reason": comment.held_reason,
        "decision_reason": comment.decision_reason,
        "author_name": comment.author_name,
        "author_email": comment.author_email,
        "author_url": comment.author_url,
        "body": comment.body,
        "body_html": comment.body_html,
        "ip_address": comment.ip_address,
        "user_agent": comment.user_agent,
        "referrer": comment.referrer,
        "created_at": _iso(comment.created_at),
        "published_at": _iso(comment.published_at),
        "edited_at": _iso(comment.edited_at),
        "personal_data_trimmed_at": _iso(comment.personal_data_trimmed_at),
        "erased_at": _iso(comment.erased_at),
        "imported_from": comment.import_source,
        "spam_check": {
            "akismet_verdict": comment.akismet_verdict,
            "akismet_pro_tip": comment.akismet_pro_tip,
            "checked_at": _iso(comment.akismet_checked_at),
            # What was sent to Akismet about this comment (see /privacy/).
            "sent_to_akismet": comment.akismet_payload,
        },
        "history": [_event_data(event) for event in comment.events.all()],
    }


def export_for_email(email: str) -> dict[str, Any]:
    """Everything stored about this address, as JSON-serialisable data.

    Only the person's own comments (with their history) and notification
    settings: a reply by someone else appears at most as a `parent_id`.
    """
    email = email.strip()
    comments = (
        comments_of(email)
        .select_related("article")
        .prefetch_related(
            Prefetch("events", queryset=CommentEvent.objects.order_by("created_at", "id"))
        )
        .order_by("created_at", "id")
    )
    addresses = NotificationAddress.objects.filter(email__iexact=email).prefetch_related(
        Prefetch("subscriptions", queryset=ReplySubscription.objects.order_by("created_at", "id"))
    )
    data = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": _iso(timezone.now()),
        "email": email,
        "comments": [_comment_data(comment) for comment in comments],
        "reply_notifications": [
            {
                "email": address.email,
                "created_at": _iso(address.created_at),
                "confirmation_sent_at": _iso(address.confirmation_sent_at),
                "confirmed_at": _iso(address.confirmed_at),
                "opted_out_at": _iso(address.opted_out_at),
                "subscriptions": [
                    {
                        "comment_id": subscription.comment_id,
                        "created_at": _iso(subscription.created_at),
                        "unsubscribed_at": _iso(subscription.unsubscribed_at),
                    }
                    for subscription in address.subscriptions.all()
                ],
            }
            for address in addresses
        ],
    }
    # Fail here, not in a view, if anything slipped in that JSON cannot carry.
    json.dumps(data)
    return data


# --- erasure ------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasureResult:
    """How many rows an erasure changed or deleted, by kind."""

    email_comments: int = 0
    articles: int = 0
    events_scrubbed: int = 0
    notification_addresses: int = 0
    reply_subscriptions: int = 0
    webhook_deliveries: int = 0
    admin_log_entries: int = 0
    text_kept: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Scrubber:
    """Replaces every string holding one of `values` (case-insensitively) by None.

    A value counts only as a whole: bob@example.com is not found in
    jimbob@example.com, nor 10.0.0.1 in 10.0.0.12.
    """

    def __init__(self, values: Iterable[str]) -> None:
        needles = sorted({value for value in values if value}, key=len, reverse=True)
        self.pattern = (
            re.compile(
                r"(?<![\w@.+-])(?:" + "|".join(map(re.escape, needles)) + r")(?![\w@-]|\.\w)",
                re.IGNORECASE,
            )
            if needles
            else None
        )

    def hit(self, text: str) -> bool:
        return self.pattern is not None and self.pattern.search(text) is not None

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return None if self.hit(value) else value
        if isinstance(value, dict):
            return {key: self.scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.scrub(item) for item in value]
        return value


def _personal_values(comments: list[Comment]) -> set[str]:
    """The values that identify the author, to be found wherever they were copied.

    The name only when it is long enough not to match ordinary words.
    """
    values: set[str] = set()
    for comment in comments:
        values.update(
            value
            for value in (
                comment.author_email,
                comment.author_url,
                comment.ip_address or "",
                comment.user_agent,
                comment.referrer,
            )
            if value
        )
        if len(comment.author_name.strip()) >= 4:
            values.add(comment.author_name.strip())
    return values


def _scrub_payload(
    value: Any, scrubber: _Scrubber, *, name: str, keep_text: bool, body_html: str
) -> Any:
    """A webhook payload about an erased comment: private keys nulled, the name and
    (unless kept) the text replaced like on the comment, any other copy scrubbed."""
    if isinstance(value, dict):
        cleaned = {}
        for key, item in value.items():
            if key in PRIVATE_KEYS:
                cleaned[key] = None
            elif key == "author_name" and isinstance(item, str):
                cleaned[key] = name
            elif key in TEXT_KEYS and isinstance(item, str) and not keep_text:
                cleaned[key] = body_html if key == "body_html" else REMOVED_TEXT
            else:
                cleaned[key] = _scrub_payload(
                    item, scrubber, name=name, keep_text=keep_text, body_html=body_html
                )
        return cleaned
    if isinstance(value, list):
        return [
            _scrub_payload(item, scrubber, name=name, keep_text=keep_text, body_html=body_html)
            for item in value
        ]
    return scrubber.scrub(value)


def erase_email(
    email: str, *, actor: moderation.Actor, keep_text: bool | None = None
) -> ErasureResult:
    """Anonymise every comment of this address and remove every copy of its data.

    `keep_text` None follows COMMENTS_ERASURE_KEEPS_TEXT. Running it again for the
    same address finds nothing and changes nothing.
    """
    email = email.strip()
    if keep_text is None:
        keep_text = settings.COMMENTS_ERASURE_KEEPS_TEXT
    if not email:
        return ErasureResult(text_kept=keep_text)
    name = settings.COMMENTS_ERASED_NAME
    placeholder_html = render_body(REMOVED_TEXT)
    with transaction.atomic():
        comments = list(comments_of(email).select_for_update().order_by("id"))
        ids = [comment.pk for comment in comments]
        own = _Scrubber(_personal_values(comments))
        just_email = _Scrubber([email])

        fields: dict[str, Any] = {
            "author_name": name,
            "author_email": "",
            "author_url": "",
            "ip_address": None,
            "user_agent": "",
            "referrer": "",
            "akismet_payload": {},
            "idempotency_key": "",
            "idempotency_fingerprint": "",
            "erased_at": timezone.now(),
        }
        if not keep_text:
            fields.update(body=REMOVED_TEXT, body_html=placeholder_html)
        Comment.objects.filter(pk__in=ids).update(**fields)

        events = _scrub_events(
            CommentEvent.objects.filter(comment_id__in=ids), own
        ) + _scrub_events(
            # Elsewhere (another comment's history) only the address itself is searched:
            # an IP address or a name may well belong to someone else there.
            CommentEvent.objects.exclude(comment_id__in=ids).filter(
                Q(details__icontains=email) | Q(reason__icontains=email)
            ),
            just_email,
        )

        addresses = NotificationAddress.objects.filter(email__iexact=email)
        subscriptions = ReplySubscription.objects.filter(
            Q(address__in=addresses) | Q(comment_id__in=ids)
        )
        subscription_count, address_count = subscriptions.count(), addresses.count()
        subscriptions.delete()
        addresses.delete()

        deliveries = _scrub_deliveries(
            ids, email, own, just_email, name=name, keep_text=keep_text, body_html=placeholder_html
        )
        log_entries = _scrub_admin_log(ids, email)

        moderation.record_erasure(ids, actor=actor, keep_text=keep_text)
        article_ids = sorted({comment.article_id for comment in comments})
        for article_id in article_ids:
            read_cache.invalidate_article_on_commit(article_id)
        read_cache.purge_articles_on_commit(article_ids)
    # Never the address in a log line.
    logger.info("personal data erased from %d comment(s) by %s", len(ids), actor.name)
    return ErasureResult(
        email_comments=len(ids),
        articles=len(article_ids),
        events_scrubbed=events,
        notification_addresses=address_count,
        reply_subscriptions=subscription_count,
        webhook_deliveries=deliveries,
        admin_log_entries=log_entries,
        text_kept=keep_text,
    )


def _scrub_events(events: QuerySet[CommentEvent], scrubber: _Scrubber) -> int:
    changed = []
    for event in events.only("pk", "details", "reason"):
        details = scrubber.scrub(event.details)
        reason = "[removed]" if event.reason and scrubber.hit(event.reason) else event.reason
        if details != event.details or reason != event.reason:
            event.details, event.reason = details, reason
            changed.append(event)
    CommentEvent.objects.bulk_update(changed, ["details", "reason"])
    return len(changed)


def _scrub_deliveries(
    ids: list[int],
    email: str,
    own: _Scrubber,
    just_email: _Scrubber,
    *,
    name: str,
    keep_text: bool,
    body_html: str,
) -> int:
    """Webhook deliveries about the erased comments, and any other that carries the address."""
    changed = []
    rows = WebhookDelivery.objects.filter(
        Q(comment_id__in=ids)
        | Q(payload__icontains=email)
        | Q(response_excerpt__icontains=email)
        | Q(last_error__icontains=email)
    ).only("pk", "comment_id", "payload", "response_excerpt", "last_error")
    for delivery in rows:
        if delivery.comment_id in ids:
            scrubber = own
            payload = _scrub_payload(
                delivery.payload, own, name=name, keep_text=keep_text, body_html=body_html
            )
        else:
            scrubber = just_email
            payload = just_email.scrub(delivery.payload)
        excerpt = "" if scrubber.hit(delivery.response_excerpt) else delivery.response_excerpt
        error = "" if scrubber.hit(delivery.last_error) else delivery.last_error
        if (payload, excerpt, error) != (
            delivery.payload,
            delivery.response_excerpt,
            delivery.last_error,
        ):
            delivery.payload, delivery.response_excerpt, delivery.last_error = (
                payload,
                excerpt,
                error,
            )
            changed.append(delivery)
    WebhookDelivery.objects.bulk_update(changed, ["payload", "response_excerpt", "last_error"])
    return len(changed)


def _scrub_admin_log(ids: list[int], email: str) -> int:
    """The admin's history names a comment by its author (Comment.__str__) and an
    address by itself: rewrite those names."""
    comment_type = ContentType.objects.get_for_model(Comment)
    reprs = {str(comment.pk): str(comment) for comment in Comment.objects.filter(pk__in=ids)}
    scrubber = _Scrubber([email])
    updated = 0
    for entry in LogEntry.objects.filter(
        Q(content_type=comment_type, object_id__in=list(reprs))
        | Q(object_repr__icontains=email)
        | Q(change_message__icontains=email)
    ):
        if entry.content_type_id == comment_type.pk and entry.object_id in reprs:
            entry.object_repr = reprs[entry.object_id][:200]
        elif scrubber.hit(entry.object_repr):
            entry.object_repr = ERASED_REPR
        if scrubber.hit(entry.change_message):
            entry.change_message = json.dumps([])
        entry.save(update_fields=["object_repr", "change_message"])
        updated += 1
    return updated


# --- self-service links --------------------------------------------------------------


class LinkInvalid(Exception):
    """The link is not one we signed for this action (tampered, truncated, or another's)."""


class LinkExpired(Exception):
    """The link was ours but is older than COMMENTS_PERSONAL_DATA_LINK_SECONDS."""


class LinkSpent(Exception):
    """The link was ours, but the data it points to has been erased since."""

    def __init__(self, action: str) -> None:
        self.action = action
        super().__init__("The data this link was for has been erased.")


def _address_mac(email: str, action: str) -> str:
    return salted_hmac(
        f"{_SALTS[action]}.address", email.strip().lower(), algorithm="sha256"
    ).hexdigest()[:32]


def make_link_token(email: str, action: str) -> str:
    """A signed token for `action` on this address's comments.

    The address itself is not in it (URLs end up in access logs and browser
    histories): the token names one comment of the address and carries a keyed
    hash of the address, checked against that comment's address when it is used.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown personal data action {action!r}")
    anchor = comments_of(email).order_by("discarded", "id").values_list("pk", flat=True).first()
    if anchor is None:
        raise ValueError("the address has no comments")
    return signing.dumps({"c": anchor, "h": _address_mac(email, action)}, salt=_SALTS[action])


def read_link_token(token: str) -> tuple[str, str]:
    """(action, address) of a valid token; raises LinkInvalid, LinkExpired or LinkSpent."""
    max_age = settings.COMMENTS_PERSONAL_DATA_LINK_SECONDS
    for action in ACTIONS:
        try:
            data = signing.loads(token, salt=_SALTS[action], max_age=max_age)
        except signing.SignatureExpired:
            raise LinkExpired("This link has expired.") from None
        except signing.BadSignature:
            continue
        if not (
            isinstance(data, dict)
            and isinstance(data.get("c"), int)
            and isinstance(data.get("h"), str)
        ):
            break
        anchor = Comment.objects.filter(pk=data["c"]).values("author_email", "erased_at").first()
        if anchor is None:
            break
        if anchor["erased_at"] is not None and not anchor["author_email"]:
            raise LinkSpent(action)
        if not constant_time_compare(_address_mac(anchor["author_email"], action), data["h"]):
            break
        return action, anchor["author_email"]
    raise LinkInvalid("This link is not valid.")


def link_url(token: str) -> str:
    return f"{settings.COMMENTS_SITE_URL.rstrip('/')}/privacy/data/{token}/"


SUBJECTS = {
    "export": "Your comment data: download link",
    "erase": "Your comment data: confirm the erasure",
}


def link_message(email: str, action: str) -> EmailMultiAlternatives:
    """The e-mail with the signed link, as plain text with an HTML alternative.

    The subject holds nothing the requester typed.
    """
    context = {
        "action": action,
        "url": link_url(make_link_token(email, action)),
        "hours": max(1, settings.COMMENTS_PERSONAL_DATA_LINK_SECONDS // 3600),
        "site_url": settings.COMMENTS_SITE_URL.rstrip("/"),
    }
    what = (
        "download a copy of everything stored about the comments you posted with this address"
        if action == "export"
        else "erase your name, e-mail address and technical details from the comments you "
        "posted with this address"
    )
    text = "\n".join(
        [
            "Hello,",
            "",
            f"Someone (hopefully you) asked to {what}.",
            "",
            "Open this link and confirm on the page it shows:",
            context["url"],
            "",
            f"The link works for {context['hours']} hour(s). If you did not ask for this,",
            "ignore this e-mail: nothing happens until the button on that page is pressed.",
        ]
    )
    html = render_to_string("comments/personal_data_email.html", {**context, "what": what})
    message = EmailMultiAlternatives(SUBJECTS[action], text, None, [email])
    message.attach_alternative(html, "text/html")
    return message


def send_link(email: str, action: str, *, delivery: str | None = None) -> int:
    """E-mail the link, if the address has comments; returns the number of mails sent.

    At most once per `delivery` (the task's id): a redelivered task finds its claim
    in the cache and sends nothing; a failed send drops the claim for the retry.
    """
    if not has_comments(email):
        return 0
    claim = f"personal-data-mail:{delivery}" if delivery else None
    if claim is not None and not cache.add(claim, 1, timeout=2 * 24 * 3600):
        logger.info("personal data link of task %s already sent", delivery)
        return 0
    try:
        link_message(email, action).send()
    except BaseException:
        if claim is not None:
            cache.delete(claim)
        raise
    return 1
