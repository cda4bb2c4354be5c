"""What the system tells operators: Prometheus metrics and the log lines of a comment's life.

Counters and histograms are counted where things happen (a transition after its
transaction commits, an Akismet call around the call) in whichever process that is.
With PROMETHEUS_MULTIPROC_DIR (the default) every process, web workers and Celery
workers alike, keeps its values in files there, and a scrape of any web worker sums
them. Queue figures are read from the database at scrape time, so every web node
reports the same ones (aggregate them with max(), not sum()).

`/metrics` answers a request straight from this machine (loopback, through no proxy),
or, with METRICS_TOKEN set, only one that sends `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import ipaddress
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

import akismet
import httpx
from celery import signals
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Case, Count, F, Min, Q, When
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from comments.models import Comment

if TYPE_CHECKING:
    from comments.moderation import Actor

P = ParamSpec("P")
R = TypeVar("R")
Status = Comment.Status
# Lines about comments (submitted, transition): ids and codes only, never e-mails,
# IPs or text. A logger of their own, so a log collector can pick them out.
events = logging.getLogger("comments.events")
logger = logging.getLogger(__name__)

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if MULTIPROCESS_DIR:
    os.makedirs(MULTIPROCESS_DIR, exist_ok=True)
    if values.ValueClass is values.MutexValue:  # imported before settings set the variable
        values.ValueClass = values.get_value_class()

SUBMITTED = Counter("comments_submitted", "Comments stored as pending (new submissions).")
CHECK_RESULTS = Counter(
    "comments_check_results",
    "Outcomes of the automated check, by resulting status and reason code "
    "(akismet_ham, akismet_spam, akismet_discard, check_unavailable, ...).",
    ["outcome", "reason"],
)
MODERATOR_ACTIONS = Counter(
    "comments_moderator_actions", "Status changes made by moderators, by action.", ["action"]
)
STATUS_CHANGES = Counter(
    "comments_status_changes",
    "Recorded status changes, by source and target status and kind of actor.",
    ["from_status", "to_status", "actor"],
)
AKISMET_SECONDS = Histogram(
    "comments_akismet_request_duration_seconds",
    "Time of one Akismet call that reached the network, answered or failed.",
    ["method"],
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
)
AKISMET_ERRORS = Counter(
    "comments_akismet_errors",
    "Failed Akismet calls, by method and kind "
    "(timeout, network, http_status, bad_answer, key_invalid, other).",
    ["method", "kind"],
)
SWEEPER_LAST_RUN = Gauge(
    "comments_sweeper_last_run_timestamp_seconds",
    "When the sweeper of stranded pending comments last finished (a dead-man's switch).",
    multiprocess_mode="max",
)

_CHECK_OUTCOMES = {"publish": "published", "hold": "held", "mark_spam": "spam", "wait": "pending"}
_REASON_CODE = re.compile(r"[a-z0-9_.-]{0,40}")


def comment_submitted(comment: Comment) -> None:
    """Count and log a new comment once its transaction commits."""
    comment_id, article_id = comment.pk, comment.article_id

    def emit() -> None:
        SUBMITTED.inc()
        events.info("comment submitted", extra={"comment_id": comment_id, "article_id": article_id})

    transaction.on_commit(emit, robust=True)  # never fails the change it reports


def transition_applied(
    *,
    comment_id: int,
    article_id: int,
    action: str,
    source: str,
    target: str,
    actor: Actor,
    reason: str,
    recorded: bool,
) -> None:
    """Count (and, for a recorded change, log) an applied transition once it commits."""
    actor_kind = "moderator" if actor.user is not None else actor.name
    fields = {
        "comment_id": comment_id,
        "article_id": article_id,
        "from": source,
        "to": target,
        "action": action,
        "actor": actor_kind,
        "actor_user_id": actor.user.pk if actor.user is not None else None,
        # Reason codes only: a moderator's free-text note may quote anything.
        "reason": reason if _REASON_CODE.fullmatch(reason) else "(note)",
    }

    def emit() -> None:
        if actor_kind == "spam-check":
            CHECK_RESULTS.labels(outcome=_CHECK_OUTCOMES.get(action, target), reason=reason).inc()
        elif actor_kind == "moderator":
            MODERATOR_ACTIONS.labels(action=action).inc()
        if recorded:
            STATUS_CHANGES.labels(from_status=source, to_status=target, actor=actor_kind).inc()
            events.info("comment transition", extra=fields)

    transaction.on_commit(emit, robust=True)  # never fails the change it reports


def timed_akismet_call(
    call: Callable[Concatenate[str, P], R],
) -> Callable[Concatenate[str, P], R]:
    """Decorate `call(method, ...)`: time each Akismet call and count its failures by kind."""

    @functools.wraps(call)
    def timed(method: str, *args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        reached = True
        try:
            return call(method, *args, **kwargs)
        except Exception as exc:
            # Without a cause nothing was sent (no key configured): no latency to record.
            reached = exc.__cause__ is not None
            AKISMET_ERRORS.labels(method=method, kind=_error_kind(exc)).inc()
            raise
        finally:
            if reached:
                AKISMET_SECONDS.labels(method=method).observe(time.perf_counter() - started)

    return timed


def _error_kind(exc: BaseException) -> str:
    """The kind of an Akismet failure, from the chain of exceptions behind it."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__
    for kind, types in (
        ("timeout", httpx.TimeoutException),
        ("http_status", httpx.HTTPStatusError),
        ("network", httpx.TransportError),
        ("bad_answer", akismet.ProtocolError),
        ("key_invalid", akismet.ConfigurationError),
    ):
        if any(isinstance(item, types) for item in chain):
            return kind
    if type(exc).__name__ == "AkismetKeyInvalid":
        return "key_invalid"
    return "other"


@signals.task_success.connect
def _sweeper_finished(sender: object = None, **kwargs: object) -> None:
    if getattr(sender, "name", "") == "comments.tasks.sweep_pending":
        SWEEPER_LAST_RUN.set(time.time())


@dataclass(frozen=True)
class QueueFigures:
    pending: int
    oldest_pending_seconds: int
    overdue_pending: int
    held: dict[str, int]


def queue_figures() -> QueueFigures:
    """Pending and held comments, in two indexed queries.

    A pending comment waits for its check from when it was submitted or edited or,
    when Akismet asked to check it again later, from that time. It is overdue when
    its `next_check_at` passed more than COMMENTS_SWEEP_AFTER_SECONDS ago: the
    sweeper should have handed it out again by then.
    """
    now = timezone.now()
    overdue_before = now - dt.timedelta(seconds=settings.COMMENTS_SWEEP_AFTER_SECONDS)
    pending = Comment.objects.filter(status=Status.PENDING).aggregate(
        count=Count("pk"),
        overdue=Count("pk", filter=Q(next_check_at__lt=overdue_before)),
        waiting_since=Min(
            Case(
                When(recheck_reason="recheck", then=F("next_check_at")),
                default=Coalesce("edited_at", "created_at"),
            )
        ),
    )
    held = {
        row["held_reason"]: row["count"]
        for row in Comment.objects.filter(status=Status.HELD)
        .order_by()
        .values("held_reason")
        .annotate(count=Count("pk"))
    }
    waiting_since = pending["waiting_since"]
    oldest = max(0, int((now - waiting_since).total_seconds())) if waiting_since else 0
    return QueueFigures(
        pending=pending["count"],
        oldest_pending_seconds=oldest,
        overdue_pending=pending["overdue"],
        held=held,
    )


class QueueCollector:
    """Gauges read from the database at scrape time."""

    def collect(self) -> Iterable[Metric]:
        try:
            figures = queue_figures()
        except DatabaseError as exc:
            logger.warning("metrics: queue figures unavailable: %s", exc.__class__.__name__)
            figures = None
        yield GaugeMetricFamily(
            "comments_queue_figures_up",
            "1 when the queue figures below could be read from the database, else 0.",
            int(figures is not None),
        )
        if figures is None:
            return
        yield GaugeMetricFamily(
            "comments_pending", "Comments waiting for the automated check.", figures.pending
        )
        yield GaugeMetricFamily(
            "comments_oldest_pending_seconds",
            "How long the longest-waiting pending comment has waited for its check.",
            figures.oldest_pending_seconds,
        )
        yield GaugeMetricFamily(
            "comments_overdue_pending",
            "Pending comments the sweeper should have handed out again by now.",
            figures.overdue_pending,
        )
        held = GaugeMetricFamily(
            "comments_held", "Comments waiting for a human, by hold reason.", labels=["reason"]
        )
        for reason, count in sorted(figures.held.items()):
            held.add_metric([reason], count)
        yield held


_FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def _may_scrape(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            sent.strip().encode(), token.encode()
        )
    # A proxy on this machine would make every client look local: forwarded is refused.
    if any(name in request.META for name in _FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus text exposition of every process's metrics and the queue figures."""
    if not _may_scrape(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    registry = CollectorRegistry()
    registry.register(QueueCollector())
    if MULTIPROCESS_DIR:
        MultiProcessCollector(registry, path=MULTIPROCESS_DIR)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY) + generate_latest(registry)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
