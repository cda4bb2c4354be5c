"""Retention: how long personal data and unpublished comments are kept.

Three jobs, run together by `apply_retention` (hourly from beat, or the
`apply_retention` management command):

* `trim_personal_data`: once a comment is older than COMMENTS_IP_RETENTION_DAYS,
  its IP address is truncated (/24 for IPv4, /48 for IPv6), its user agent and
  referrer are cleared, and the same values are scrubbed from the copy of the
  Akismet arguments (`akismet_payload`), from its audit trail (`CommentEvent.details`)
  and from its webhook deliveries. Every status is trimmed, pending and held ones
  too: privacy wins, and Akismet only needs the full values when it is asked. A
  later recheck or submit-spam/submit-ham then sends the truncated address and no
  user agent or referrer (rechecks of comments held as "check unavailable" stop
  after 15 days, so with the defaults this cannot happen to them).
* `purge_discarded`: blatant spam (Akismet's "discard") is deleted
  COMMENTS_DISCARD_RETENTION_DAYS after it was decided.
* `purge_spam`: other spam and rejected comments are deleted
  COMMENTS_SPAM_RETENTION_DAYS after they were decided.
* `purge_webhook_log`: finished webhook deliveries (succeeded or failed) are
  deleted COMMENTS_WEBHOOK_LOG_RETENTION_DAYS after they were created; deliveries
  still waiting or retrying are kept.
* `purge_unconfirmed_addresses`: an address that asked for reply notifications
  but never confirmed is deleted (with its subscriptions) once its confirmation
  link has expired; ticking the box again starts over.

"Decided" is the latest audit row that put the comment into its current status
from another one (created_at when there is none): a comment created 100 days ago and marked spam
yesterday is kept 90 days from yesterday. Pending and held comments (nobody has
decided yet) are never deleted, nor are published or removed ones.

`delete_comments` is the only place in the code base that deletes comments. It
deletes nothing but spam and rejected comments, and never one with a reply that
would go with it (the parent foreign key cascades) unless that reply is itself due.

Everything works in batches of BATCH_SIZE rows, one transaction each, so a large
table is never locked for long and an interrupted run is simply continued by the
next one. Running it twice changes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from comments.models import Comment, CommentEvent, NotificationAddress, WebhookDelivery

logger = logging.getLogger(__name__)
Status = Comment.Status

BATCH_SIZE = 1000
# Only these statuses are ever deleted.
DELETABLE_STATUSES = (Status.SPAM, Status.REJECTED)
# Keys holding an IP address, and keys holding other request details, wherever
# they appear in stored JSON (audit details, webhook payloads).
IP_KEYS = frozenset({"ip", "ip_address", "user_ip", "client_ip", "remote_addr"})
REQUEST_DETAIL_KEYS = frozenset(
    {"user_agent", "referrer", "referer", "http_user_agent", "http_referer", "headers_in"}
)


# --- Truncation ------------------------------------------------------------------------


def truncate_ip(value: str | None) -> str | None:
    """The network part of an address: x.y.z.0 for IPv4 (/24), the /48 for IPv6.

    An IPv4-mapped IPv6 address is truncated as the IPv4 address it carries.
    Returns None for an empty or unparseable value.
    """
    if not value:
        return None
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return str(network.network_address)


def _is_server_variable(name: str) -> bool:
    """REMOTE_ADDR, HTTP_USER_AGENT and the like: request headers and CGI variables."""
    return name.isupper() or name.lower().startswith("http_")


def scrub_akismet_payload(payload: dict[str, Any], fallback_ip: str | None) -> dict[str, Any]:
    """The Akismet arguments without the submitter's full IP, user agent, referrer
    or any request header; `user_ip` stays (Akismet requires it), truncated."""
    scrubbed = {
        name: value
        for name, value in payload.items()
        if name not in ("user_agent", "referrer") and not _is_server_variable(name)
    }
    if "user_ip" in payload:
        scrubbed["user_ip"] = truncate_ip(payload["user_ip"]) or fallback_ip or "127.0.0.0"
    return scrubbed


def scrub_json(value: Any) -> Any:
    """A copy of stored JSON with IP addresses truncated and request details removed,
    at any depth."""
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        for name, item in value.items():
            key = str(name).lower()
            if key in REQUEST_DETAIL_KEYS or (
                _is_server_variable(str(name)) and key not in IP_KEYS
            ):
                continue
            if key in IP_KEYS and (item is None or isinstance(item, str)):
                result[name] = truncate_ip(item)
            else:
                result[name] = scrub_json(item)
        return result
    if isinstance(value, list):
        return [scrub_json(item) for item in value]
    return value


# --- Trimming personal data ----------------------------------------------------------


def _deadline_passed(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def trim_personal_data(
    *, now: dt.datetime | None = None, dry_run: bool = False, deadline: float | None = None
) -> int:
    """Trim the request details of comments older than COMMENTS_IP_RETENTION_DAYS.

    Returns how many comments were trimmed (or would be, with `dry_run`).
    `deadline` (time.monotonic()) stops before the next batch; the next run goes on.
    """
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.COMMENTS_IP_RETENTION_DAYS)
    # Served by the partial index comment_untrimmed.
    due = Comment.objects.filter(personal_data_trimmed_at__isnull=True, created_at__lt=cutoff)
    if dry_run:
        return due.count()
    total = 0
    while not _deadline_passed(deadline):
        with transaction.atomic():
            batch = list(
                due.select_for_update(skip_locked=True)
                .order_by("created_at", "id")
                .only("id", "ip_address", "user_agent", "referrer", "akismet_payload")[:BATCH_SIZE]
            )
            if not batch:
                break
            trimmed_at = timezone.now()
            for comment in batch:
                comment.ip_address = truncate_ip(comment.ip_address)
                comment.user_agent = ""
                comment.referrer = ""
                if comment.akismet_payload:
                    comment.akismet_payload = scrub_akismet_payload(
                        comment.akismet_payload, comment.ip_address
                    )
                comment.personal_data_trimmed_at = trimmed_at
            Comment.objects.bulk_update(
                batch,
                [
                    "ip_address",
                    "user_agent",
                    "referrer",
                    "akismet_payload",
                    "personal_data_trimmed_at",
                ],
            )
            ids = [comment.pk for comment in batch]
            _scrub_events(ids)
            _scrub_webhook_deliveries(ids)
        total += len(batch)
        if len(batch) < BATCH_SIZE:
            break
    if total:
        logger.info("retention: trimmed the request details of %d comment(s)", total)
    return total


def _scrub_events(comment_ids: list[int]) -> None:
    """Audit details hold verdicts, rules and Akismet's response headers, not request
    details; should any row carry them (an IP, a user agent), they are scrubbed too."""
    keys = sorted(IP_KEYS | REQUEST_DETAIL_KEYS)
    events = list(
        CommentEvent.objects.filter(comment_id__in=comment_ids, details__has_any_keys=keys).only(
            "id", "details"
        )
    )
    changed = [event for event in events if _replace(event, "details")]
    if changed:
        CommentEvent.objects.bulk_update(changed, ["details"])


def _scrub_webhook_deliveries(comment_ids: list[int]) -> None:
    """Deliveries to private endpoints carry the IP address and user agent."""
    deliveries = list(
        WebhookDelivery.objects.filter(comment_id__in=comment_ids).only("id", "payload")
    )
    changed = [delivery for delivery in deliveries if _replace(delivery, "payload")]
    if changed:
        WebhookDelivery.objects.bulk_update(changed, ["payload"])


def _replace(row: Any, field: str) -> bool:
    """Scrub one JSON field in place; True when it changed."""
    before = getattr(row, field)
    after = scrub_json(before)
    if after == before:
        return False
    setattr(row, field, after)
    return True


# --- Purging unpublished comments -------------------------------------------------------


@dataclass
class PurgeResult:
    deleted: int = 0
    # Due, but kept because a reply that is not due would have gone with it.
    kept_for_replies: int = 0


def decided_at() -> Coalesce:
    """When the comment entered its current status: its latest audit row into it.

    Rows that record no change of status (an erasure, say) are not decisions.
    """
    latest = (
        CommentEvent.objects.filter(comment=OuterRef("pk"), to_status=OuterRef("status"))
        .exclude(from_status=F("to_status"))
        .order_by("-created_at", "-id")
        .values("created_at")[:1]
    )
    return Coalesce(Subquery(latest), F("created_at"))


def _due(condition: Q, cutoff: dt.datetime) -> QuerySet[Comment]:
    # A comment is decided after it is created: created_at < cutoff narrows the
    # search through the (status, created_at) index before the audit trail is read.
    return (
        Comment.objects.filter(condition, status__in=DELETABLE_STATUSES, created_at__lt=cutoff)
        .annotate(decided_at=decided_at())
        .filter(decided_at__lt=cutoff)
    )


def discarded_due(now: dt.datetime | None = None) -> QuerySet[Comment]:
    """Blatant spam decided more than COMMENTS_DISCARD_RETENTION_DAYS ago."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.COMMENTS_DISCARD_RETENTION_DAYS)
    return _due(Q(status=Status.SPAM, discarded=True), cutoff)


def spam_due(now: dt.datetime | None = None) -> QuerySet[Comment]:
    """Other spam, and rejected comments, decided more than COMMENTS_SPAM_RETENTION_DAYS ago."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.COMMENTS_SPAM_RETENTION_DAYS)
    return _due(Q(status=Status.REJECTED) | Q(status=Status.SPAM, discarded=False), cutoff)


def purge_discarded(
    *, now: dt.datetime | None = None, dry_run: bool = False, deadline: float | None = None
) -> PurgeResult:
    return _purge(discarded_due(now), dry_run=dry_run, deadline=deadline)


def purge_spam(
    *, now: dt.datetime | None = None, dry_run: bool = False, deadline: float | None = None
) -> PurgeResult:
    return _purge(spam_due(now), dry_run=dry_run, deadline=deadline)


def _purge(due: QuerySet[Comment], *, dry_run: bool, deadline: float | None) -> PurgeResult:
    """Walk the due comments by id, one batch per transaction."""
    total = PurgeResult()
    after = 0
    while not _deadline_passed(deadline):
        ids = list(
            due.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:BATCH_SIZE]
        )
        if not ids:
            break
        after = ids[-1]
        result = delete_comments(due, ids, dry_run=dry_run)
        total.deleted += result.deleted
        total.kept_for_replies += result.kept_for_replies
        if len(ids) < BATCH_SIZE:
            break
    return total


def delete_comments(
    due: QuerySet[Comment], ids: Iterable[int], *, dry_run: bool = False
) -> PurgeResult:
    """Delete the comments of `ids` that are still in `due`, in one transaction.

    The only function that deletes comments. Only spam and rejected comments are
    deleted, whatever `due` says. A comment is kept when deleting it would take a
    reply with it (the parent key cascades) that is not itself being deleted now:
    a published, removed, pending or held reply, or an unpublished one not due yet.
    Unpublished comments are not counted in Article.published_comment_count and
    never shown, so no count or cached page changes.
    """
    with transaction.atomic():
        locked = set(
            due.filter(pk__in=list(ids), status__in=DELETABLE_STATUSES)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        if not locked:
            return PurgeResult()
        blocked, replies_due = _with_replies_not_due(due, locked)
        deletable = (locked | replies_due) - blocked
        if blocked:
            logger.info(
                "retention: kept %d due comment(s) because of their replies: %s",
                len(blocked),
                sorted(blocked)[:20],
            )
        if dry_run or not deletable:
            return PurgeResult(deleted=len(deletable), kept_for_replies=len(blocked))
        _, per_model = Comment.objects.filter(
            pk__in=deletable, status__in=DELETABLE_STATUSES
        ).delete()
    deleted = per_model.get(Comment._meta.label, 0)
    logger.info("retention: deleted %d unpublished comment(s)", deleted)
    return PurgeResult(deleted=deleted, kept_for_replies=len(blocked))


def _with_replies_not_due(due: QuerySet[Comment], due_ids: set[int]) -> tuple[set[int], set[int]]:
    """Which of `due_ids` have a descendant that is not due; and the due descendants
    outside `due_ids` (another batch), which go with their due ancestors.

    Descendants are locked (FOR UPDATE) until the transaction ends, so a reply
    published meanwhile waits for the delete and then finds nothing to publish.
    """
    parent_of: dict[int, int] = {}
    frontier = set(due_ids)
    while frontier:
        children = list(
            Comment.objects.select_for_update()
            .filter(parent_id__in=frontier)
            .values_list("pk", "parent_id")
        )
        frontier = set()
        for child, parent in children:
            if child not in parent_of:
                parent_of[child] = parent
                frontier.add(child)
    outside = set(parent_of) - due_ids
    replies_due = (
        set(due.filter(pk__in=outside, status__in=DELETABLE_STATUSES).values_list("pk", flat=True))
        if outside
        else set()
    )
    blocked: set[int] = set()
    for node in outside - replies_due:
        ancestor = parent_of.get(node)
        while ancestor is not None and ancestor not in blocked:
            blocked.add(ancestor)
            ancestor = parent_of.get(ancestor)
    return blocked & due_ids, replies_due - blocked


# --- Webhook log and unconfirmed addresses ----------------------------------------------


def purge_webhook_log(*, now: dt.datetime | None = None, dry_run: bool = False) -> int:
    """Delete finished deliveries older than COMMENTS_WEBHOOK_LOG_RETENTION_DAYS."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.COMMENTS_WEBHOOK_LOG_RETENTION_DAYS)
    due = WebhookDelivery.objects.filter(
        created_at__lt=cutoff,
        status__in=[WebhookDelivery.Status.SUCCEEDED, WebhookDelivery.Status.FAILED],
    )
    return _delete_in_batches(due, dry_run=dry_run)


def purge_unconfirmed_addresses(*, now: dt.datetime | None = None, dry_run: bool = False) -> int:
    """Delete addresses never confirmed whose confirmation link has expired.

    The expiry counts from the last confirmation e-mail (or from when the address
    was first given, when none was sent yet, e.g. its comment is still held).
    An address whose comment waits longer than that simply gets a new
    subscription and confirmation when it is ticked again.
    """
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.COMMENTS_NOTIFY_CONFIRM_SECONDS)
    due = NotificationAddress.objects.filter(confirmed_at__isnull=True).filter(
        Q(confirmation_sent_at__lt=cutoff)
        | Q(confirmation_sent_at__isnull=True, created_at__lt=cutoff)
    )
    return _delete_in_batches(due, dry_run=dry_run)


def _delete_in_batches(due: QuerySet[Any], *, dry_run: bool) -> int:
    if dry_run:
        return due.count()
    deleted = 0
    while True:
        ids = list(due.order_by("pk").values_list("pk", flat=True)[:BATCH_SIZE])
        if not ids:
            return deleted
        with transaction.atomic():
            deleted += due.filter(pk__in=ids).delete()[1].get(due.model._meta.label, 0)


# --- All of it -------------------------------------------------------------------------


def apply_retention(
    *, now: dt.datetime | None = None, dry_run: bool = False, time_budget: float | None = None
) -> dict[str, int]:
    """Run the three jobs; returns what was done (or would be, with `dry_run`).

    `time_budget` (seconds) stops starting new batches once spent; the rest is
    left for the next run.
    """
    now = now or timezone.now()
    deadline = time.monotonic() + time_budget if time_budget is not None else None
    trimmed = trim_personal_data(now=now, dry_run=dry_run, deadline=deadline)
    discarded = purge_discarded(now=now, dry_run=dry_run, deadline=deadline)
    spam = purge_spam(now=now, dry_run=dry_run, deadline=deadline)
    webhook_log = purge_webhook_log(now=now, dry_run=dry_run)
    unconfirmed = purge_unconfirmed_addresses(now=now, dry_run=dry_run)
    return {
        "trimmed": trimmed,
        "discarded_deleted": discarded.deleted,
        "spam_deleted": spam.deleted,
        "kept_for_replies": discarded.kept_for_replies + spam.kept_for_replies,
        "webhook_deliveries_deleted": webhook_log,
        "unconfirmed_addresses_deleted": unconfirmed,
    }
