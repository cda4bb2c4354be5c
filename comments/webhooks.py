"""Signed webhooks: comment events POSTed to the URLs staff configured.

The database is the truth (an outbox). `record_event` runs inside the transaction
that submitted or moved the comment and writes one WebhookDelivery row per
subscribed endpoint, with the payload as it is at that moment; only after commit
is a `deliver_webhook` task enqueued per row, and a lost message is found again
by the beat sweeper (`deliver_due_webhooks`). A delivery is claimed with a
conditional UPDATE that leases it (`next_attempt_at` moves past the attempt), so
two workers never send the same attempt; a worker that dies mid-send leaves a
lease that expires, and the attempt is sent again (at least once: receivers
de-duplicate on `Webhook-Id`).

Signature (see README "Webhooks"): `Webhook-Signature: v1=<hex HMAC-SHA256(secret,
"<Webhook-Timestamp>.<Webhook-Id>.<raw body>")>`; `verify_signature` is the
reference check a receiver can copy.

Endpoints are configured by staff only, so the URL is trusted as far as its
scheme (http/https) and the request follows no redirect; nothing else limits where
it may point (see README on SSRF).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.urls import reverse
from django.utils import timezone

from comments import cache_store
from comments.models import Comment, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

Event = WebhookEndpoint.Event
Delivery = WebhookDelivery.Status
OPEN_STATUSES = (Delivery.PENDING, Delivery.RETRYING)
USER_AGENT = "comments-backend-webhooks/1.0"
SIGNATURE_VERSION = "v1"
# Keys of data.comment sent only to endpoints with include_private; erasure scrubs
# exactly these from stored payloads.
PRIVATE_KEYS = ("author_email", "ip_address", "user_agent")
# Seconds to wait before attempt n+1 after n failed attempts (the last value repeats),
# each stretched or shrunk by up to a fifth at random so failed endpoints do not
# receive their retries in lockstep.
BACKOFF_SECONDS = (10, 30, 120, 600, 1800, 7200, 21600)
# A status reached by an author's edit: the comment is submitted for checking again.
STATUS_EVENTS = {"comment.pending": Event.SUBMITTED}
EXCERPT_CHARS = 500
_READ_LIMIT = 4096  # bytes of a response body read for the excerpt
SWEEP_BATCH = 500


class WebhookVerificationError(ValueError):
    """A webhook request whose signature or timestamp does not check out."""


# --- which endpoints want what ------------------------------------------------------

VERSION_KEY = "webhooks:endpoints-version"


@dataclass(frozen=True)
class _Target:
    endpoint_id: int
    events: frozenset[str]  # empty: every event
    include_private: bool

    def wants(self, event: str) -> bool:
        return not self.events or event in self.events


class _ActiveEndpoints:
    """This process's copy of the active endpoints, valid while the version key in
    the shared cache is unchanged. Any save or delete of an endpoint writes a new
    version (at once and again on commit), so every process reloads on its next
    event; the submit path otherwise runs no query for webhooks at all.

    The thread whose transaction changed an endpoint sees that change before anyone
    else, and the transaction may still roll back: what it loads inside that
    transaction is used for its own events only, never kept for the process.

    A version key that has vanished (the cache was flushed or culled) is replaced by
    a new one. A copy confirmed against the old key within FLUSH_GRACE seconds is
    kept, for at most FLUSH_GRACE more seconds, so clearing the cache does not add
    a query to the next submits; an older copy is reloaded at once.
    """

    FLUSH_GRACE = 30.0
    clock = staticmethod(time.monotonic)

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version: bytes | None = None
        self.targets: tuple[_Target, ...] = ()
        self.confirmed_at = float("-inf")  # monotonic time the copy last matched the key
        self.expires_at = float("inf")  # only a copy carried over a flush expires
        self.uncommitted = threading.local()  # .transaction: the outermost Atomic

    def get(self) -> tuple[_Target, ...]:
        now = self.clock()
        try:
            # The read cache's raw store: one round trip, no client built per call.
            shared = cache_store.store()
            (version,) = shared.get_many([VERSION_KEY])
            if version is None:  # never set, or the cache was flushed: start a new one
                shared.add(VERSION_KEY, uuid.uuid4().hex.encode(), None)
                (version,) = shared.get_many([VERSION_KEY])
                self._carry_over(version, now)
        except Exception:
            logger.warning("cache unavailable; reading webhook endpoints from the database")
            return _load_targets()
        with self.lock:
            if version is not None and version == self.version and now < self.expires_at:
                self.confirmed_at = now
                return self.targets
        targets = _load_targets()  # read after the version: a newer change reloads again
        if self._in_changing_transaction():
            return targets
        with self.lock:
            self.version, self.targets = version, targets
            self.confirmed_at, self.expires_at = now, float("inf")
        return targets

    def _carry_over(self, version: bytes | None, now: float) -> None:
        with self.lock:
            if self.version is not None and now - self.confirmed_at <= self.FLUSH_GRACE:
                self.version = version
                self.expires_at = min(self.expires_at, now + self.FLUSH_GRACE)

    def changed(self) -> None:
        """This thread just saved or deleted an endpoint (maybe inside a transaction)."""
        self.uncommitted.transaction = (
            connection.atomic_blocks[0] if connection.in_atomic_block else None
        )
        with self.lock:
            self.version, self.targets = None, ()
            self.confirmed_at = float("-inf")

    def _in_changing_transaction(self) -> bool:
        outer = getattr(self.uncommitted, "transaction", None)
        if outer is None:
            return False
        if connection.in_atomic_block and connection.atomic_blocks[0] is outer:
            return True
        self.uncommitted.transaction = None  # that transaction has ended
        return False


_endpoints = _ActiveEndpoints()


def _load_targets() -> tuple[_Target, ...]:
    rows = WebhookEndpoint.objects.filter(active=True).values_list(
        "id", "events", "include_private"
    )
    return tuple(
        _Target(pk, frozenset(events or ()), include_private)
        for pk, events, include_private in rows
    )


def endpoints_changed() -> None:
    """Make every process reload the endpoints (called on every save and delete)."""
    _endpoints.changed()
    _bump_version()
    transaction.on_commit(_bump_version)


def reload_endpoints_everywhere() -> None:
    """Make every process reload the endpoints at its next event, e.g. after the
    database was restored or flushed behind Django's back (no signals)."""
    _bump_version()


def _bump_version() -> None:
    try:
        cache_store.store().set_many({VERSION_KEY: uuid.uuid4().hex.encode()}, None)
    except Exception:
        logger.exception("could not publish the new webhook endpoint version")


def _on_endpoint_saved_or_deleted(sender: type, **kwargs: Any) -> None:
    endpoints_changed()


# Connected when this module is imported: comments.admin imports it, and Django's
# admin autodiscovery imports comments.admin in every process (web, worker, shell).
post_save.connect(
    _on_endpoint_saved_or_deleted, sender=WebhookEndpoint, dispatch_uid="webhook-endpoints-saved"
)
post_delete.connect(
    _on_endpoint_saved_or_deleted, sender=WebhookEndpoint, dispatch_uid="webhook-endpoints-deleted"
)


# --- the outbox ------------------------------------------------------------------


def is_wanted(event: str) -> bool:
    """Whether an active endpoint subscribes to `event` (from the process's copy)."""
    event = STATUS_EVENTS.get(event, event)
    return any(target.wants(event) for target in _endpoints.get())


def record_event(comment: Comment, event: str) -> list[int]:
    """Write one delivery per subscribed active endpoint; enqueue them on commit.

    Called inside the transaction of the change (comments.hooks): a rollback takes
    the deliveries with it. `comment.pending` (an author's edit sends the comment
    back to the check) is recorded as `comment.submitted`. Returns the delivery ids.
    """
    event = STATUS_EVENTS.get(event, event)
    if event not in Event.values:
        return []
    targets = [target for target in _endpoints.get() if target.wants(event)]
    if not targets:
        return []
    # The process's copy may name an endpoint that vanished without a signal (a
    # restored database, a flush): a delivery pointing at it would fail the whole
    # transaction at commit. One indexed read, only on sites that have endpoints.
    live = set(
        WebhookEndpoint.objects.filter(
            pk__in=[target.endpoint_id for target in targets], active=True
        ).values_list("pk", flat=True)
    )
    if len(live) != len(targets):
        _endpoints.changed()
        targets = [target for target in targets if target.endpoint_id in live]
        if not targets:
            return []
    event_id = uuid.uuid4()
    now = timezone.now()
    payloads: dict[bool, dict[str, Any]] = {}
    rows = []
    for target in targets:
        private = target.include_private
        if private not in payloads:
            payloads[private] = build_payload(
                comment, event, event_id=event_id, created_at=now, include_private=private
            )
        rows.append(
            WebhookDelivery(
                endpoint_id=target.endpoint_id,
                event_id=event_id,
                event=event,
                comment_id=comment.pk,
                payload=payloads[private],
                status=Delivery.PENDING,
                next_attempt_at=now,
            )
        )
    ids = [row.pk for row in WebhookDelivery.objects.bulk_create(rows)]
    transaction.on_commit(lambda: enqueue(ids))
    return ids


def enqueue(delivery_ids: list[int]) -> None:
    """Hand deliveries to the workers; a broker failure is left to the sweeper."""
    from comments import tasks

    for delivery_id in delivery_ids:
        try:
            tasks.deliver_webhook.delay(delivery_id)
        except Exception:
            logger.exception("could not enqueue webhook delivery %s; the sweeper will", delivery_id)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def build_payload(
    comment: Comment,
    event: str,
    *,
    event_id: uuid.UUID,
    created_at: dt.datetime,
    include_private: bool = False,
) -> dict[str, Any]:
    """The event as sent: the comment as it is now, private fields only on request."""
    article = comment.article
    site = settings.COMMENTS_SITE_URL.rstrip("/")
    data: dict[str, Any] = {
        "id": comment.pk,
        "article": {"slug": article.slug, "title": article.title, "url": article.url},
        "parent": comment.parent_id,
        "author_name": comment.author_name,
        "author_url": comment.author_url,
        "body": comment.body,
        "body_html": comment.body_html,
        "status": comment.status,
        "held_reason": comment.held_reason,
        "created_at": _iso(comment.created_at),
        "published_at": _iso(comment.published_at),
        "edited_at": _iso(comment.edited_at),
        "console_url": site + reverse("admin:comments_comment_change", args=[comment.pk]),
    }
    if include_private:
        data["author_email"] = comment.author_email
        data["ip_address"] = comment.ip_address
        data["user_agent"] = comment.user_agent
    return {
        "id": str(event_id),
        "type": event,
        "created_at": _iso(created_at),
        "data": {"comment": data},
    }


# --- signing -------------------------------------------------------------------


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes sent and signed."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signature(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.{event_id}.".encode() + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str, event_id: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Webhook-Id": event_id,
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": f"{SIGNATURE_VERSION}={signature(secret, event_id, timestamp, body)}",
    }


def verify_signature(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: int = 300,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a received webhook; return its parsed payload or raise WebhookVerificationError.

    `headers` may be any mapping (names in any case); `body` the raw request bytes,
    before any JSON parsing. A timestamp more than `tolerance` seconds away from
    now is refused (replays of old requests); a receiver should also remember the
    `Webhook-Id`s it has processed for at least that long and drop repeats.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    event_id = lowered.get("webhook-id", "")
    raw_timestamp = lowered.get("webhook-timestamp", "")
    header = lowered.get("webhook-signature", "")
    if not (event_id and raw_timestamp and header):
        raise WebhookVerificationError("missing Webhook-Id, Webhook-Timestamp or Webhook-Signature")
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise WebhookVerificationError("Webhook-Timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("Webhook-Timestamp is outside the tolerance")
    expected = signature(secret, event_id, timestamp, body)
    # Several signatures may be sent, separated by spaces (e.g. while rotating a secret).
    candidates = [
        part.split("=", 1)[1]
        for part in header.replace(",", " ").split()
        if part.startswith(f"{SIGNATURE_VERSION}=")
    ]
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise WebhookVerificationError("no valid signature")
    try:
        payload = json.loads(body)
    except ValueError:
        raise WebhookVerificationError("the body is not JSON") from None
    if not isinstance(payload, dict) or payload.get("id") != event_id:
        raise WebhookVerificationError("the body's id is not the Webhook-Id")
    return payload


# --- delivery --------------------------------------------------------------------


@dataclass
class Attempt:
    """What one POST gave: a status code and an excerpt, or an error."""

    code: int | None = None
    excerpt: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300


def post(url: str, body: bytes, headers: dict[str, str]) -> Attempt:
    """POST once: no redirects, no proxy from the environment, bounded read."""
    timeout = settings.COMMENTS_WEBHOOK_TIMEOUT
    if not url.lower().startswith(("http://", "https://")):
        return Attempt(error="only http and https URLs are allowed")
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream("POST", url, content=body, headers=headers) as response,
        ):
            received = b""
            for chunk in response.iter_bytes():
                received += chunk
                if len(received) >= _READ_LIMIT:
                    break
    except httpx.TimeoutException:
        return Attempt(error=f"timed out after {timeout:g} s")
    except httpx.HTTPError as exc:
        return Attempt(error=f"{type(exc).__name__}: {exc}"[:500])
    excerpt = received.decode("utf-8", errors="replace")[:EXCERPT_CHARS]
    attempt = Attempt(code=response.status_code, excerpt=excerpt)
    if response.is_redirect:
        location = response.headers.get("location", "")
        attempt.error = f"redirect to {location} not followed"[:500]
    elif not attempt.ok:
        attempt.error = f"HTTP {response.status_code}"
    return attempt


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones, with jitter."""
    base = BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1]
    return base * random.uniform(0.8, 1.2)  # noqa: S311 (not security)


def _lease_seconds() -> float:
    # Longer than one attempt can take (connect + write + read timeouts).
    return settings.COMMENTS_WEBHOOK_TIMEOUT * 4 + 10


def deliver(delivery_id: int) -> str:
    """Make the due attempt of one delivery, if this call wins the claim.

    Returns what happened: "succeeded", "retrying", "failed", or "not_due" (not
    pending, not due yet, or another worker holds it); a second call for the same
    attempt is harmless. The outcome is written only while the lease is still
    this call's (a redelivery from the console in the meantime wins).
    """
    now = timezone.now()
    lease = now + dt.timedelta(seconds=_lease_seconds())
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status__in=OPEN_STATUSES, next_attempt_at__lte=now
    ).update(next_attempt_at=lease)
    if not claimed:
        return "not_due"
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.active:
        _finish(delivery_id, lease, status=Delivery.FAILED, last_error="the endpoint is inactive")
        return Delivery.FAILED
    body = encode_body(delivery.payload)
    attempt = post(
        endpoint.url, body, signed_headers(endpoint.secret, str(delivery.event_id), body)
    )
    attempts = delivery.attempts + 1
    fields: dict[str, Any] = {
        "attempts": attempts,
        "response_code": attempt.code,
        "response_excerpt": attempt.excerpt,
        "last_error": attempt.error,
    }
    finished = timezone.now()
    if attempt.ok:
        status = Delivery.SUCCEEDED
        fields.update(delivered_at=finished, next_attempt_at=None)
    elif attempts >= settings.COMMENTS_WEBHOOK_MAX_ATTEMPTS:
        status = Delivery.FAILED
        fields["next_attempt_at"] = None
    else:
        status = Delivery.RETRYING
        delay = retry_delay(attempts)
        fields["next_attempt_at"] = finished + dt.timedelta(seconds=delay)
    if not _finish(delivery_id, lease, status=status, **fields):
        return "not_due"
    if status == Delivery.RETRYING:
        _enqueue_soon(delivery_id, delay)
    log = logger.info if attempt.ok else logger.warning
    log(
        "webhook delivery %s (%s to endpoint %s): %s, attempt %d, %s",
        delivery_id,
        delivery.event,
        endpoint.pk,
        status,
        attempts,
        attempt.code or attempt.error,
    )
    return status


def _finish(delivery_id: int, lease: dt.datetime, *, status: str, **fields: Any) -> bool:
    fields.setdefault("next_attempt_at", None)
    return bool(
        WebhookDelivery.objects.filter(
            pk=delivery_id, status__in=OPEN_STATUSES, next_attempt_at=lease
        ).update(status=status, **fields)
    )


def _enqueue_soon(delivery_id: int, delay: float) -> None:
    """A short wait rides on the broker; a long one is the sweeper's (the row is due then)."""
    if delay > 60:
        return
    from comments import tasks

    try:
        tasks.deliver_webhook.apply_async((delivery_id,), countdown=delay + 1)
    except Exception:
        logger.exception("could not enqueue the retry of webhook delivery %s", delivery_id)


def due_deliveries(limit: int = SWEEP_BATCH) -> list[int]:
    """Deliveries due now (a lost message, a retry, an expired lease), oldest first."""
    return list(
        WebhookDelivery.objects.filter(
            status__in=OPEN_STATUSES, next_attempt_at__lte=timezone.now()
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def redeliver(deliveries: list[WebhookDelivery]) -> list[int]:
    """Send again from the first attempt (console): same event id and payload.

    The attempt count starts over, so the redelivery gets the whole retry schedule;
    the console's history (LogEntry) records that it was asked for.
    """
    ids = [delivery.pk for delivery in deliveries]
    WebhookDelivery.objects.filter(pk__in=ids).update(
        status=Delivery.PENDING, attempts=0, next_attempt_at=timezone.now(), delivered_at=None
    )
    transaction.on_commit(lambda: enqueue(ids))
    return ids


def send_test_event(endpoint: WebhookEndpoint) -> Attempt:
    """POST a signed `ping` event now (console); it is not a comment event and not logged."""
    event_id = str(uuid.uuid4())
    payload = {
        "id": event_id,
        "type": "ping",
        "created_at": _iso(timezone.now()),
        "data": {"endpoint": {"id": endpoint.pk, "name": endpoint.name}},
    }
    body = encode_body(payload)
    return post(endpoint.url, body, signed_headers(endpoint.secret, event_id, body))
