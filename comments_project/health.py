"""Liveness and readiness probes."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from comments import akismet_client, metrics

# verify-key is a network call; one answer serves readiness probes for a minute.
_AKISMET_CACHE_SECONDS = 60.0
_akismet_cache: dict[str, object] = {}


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "not ready"
        return f"unavailable: {exc.__class__.__name__}"
    return "ok"


def _check_broker() -> str:
    from comments_project.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
    except Exception as exc:
        return f"unavailable: {exc.__class__.__name__}"
    return "ok"


def _check_akismet() -> tuple[str, bool]:
    """(state, ready): a refused key is not ready; an unreachable Akismet is only
    reported, since comments are then held safely and intake must go on."""
    cached = _akismet_cache.get("answer")
    if cached and time.monotonic() - _akismet_cache["at"] < _AKISMET_CACHE_SECONDS:
        return cached  # type: ignore[return-value]
    if not settings.AKISMET_ENABLED:
        answer = ("off (every comment is reviewed by a human)", True)
    elif not settings.AKISMET_API_KEY:
        answer = ("invalid key: AKISMET_API_KEY is not set", False)
    else:
        try:
            valid = akismet_client.verify_key()
            answer = ("ok", True) if valid else ("invalid key", False)
        except akismet_client.AkismetUnavailable:
            answer = ("unreachable (comments are held until it answers)", True)
    _akismet_cache.update(answer=answer, at=time.monotonic())
    return answer


def _check_queue() -> tuple[str, dict[str, int]]:
    """(state, figures): "stalled" when a pending comment has waited too long for its
    check (workers stuck, or lost messages and no sweeper)."""
    try:
        figures = metrics.queue_figures()
    except Exception as exc:
        return f"unavailable: {exc.__class__.__name__}", {}
    limit = settings.COMMENTS_READY_MAX_PENDING_AGE_SECONDS
    report = {
        "pending": figures.pending,
        "oldest_pending_seconds": figures.oldest_pending_seconds,
        "overdue_pending": figures.overdue_pending,
        "max_pending_age_seconds": limit,
    }
    if limit and figures.oldest_pending_seconds > limit:
        return (
            f"stalled: a pending comment has waited {figures.oldest_pending_seconds}s for its "
            f"check (limit {limit}s); {figures.overdue_pending} overdue for the sweeper",
            report,
        )
    return "ok", report


def readyz(request: HttpRequest) -> JsonResponse:
    akismet_state, akismet_ready = _check_akismet()
    checks = {
        "database": _check_database(),
        "broker": _check_broker(),
        "akismet": akismet_state,
    }
    queue: dict[str, int] = {}
    if checks["database"] == "ok":
        checks["queue"], queue = _check_queue()
    else:
        checks["queue"] = "unknown (database unavailable)"
    failing = sorted(
        name
        for name, value in checks.items()
        if value != "ok"
        and not (name == "akismet" and akismet_ready)
        and not (name == "queue" and checks["database"] != "ok")
    )
    body: dict[str, object] = {"status": "unavailable" if failing else "ok", "checks": checks}
    if queue:
        body["queue"] = queue
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)
