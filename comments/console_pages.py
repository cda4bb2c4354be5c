"""The console's own pages: one comment's history, the stats with their chart, an author's list."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.text import Truncator

from comments import stats
from comments.console_labels import (
    REASON_LABELS,
    TAB_LABELS,
    age_text,
    percent,
    reason_label,
    reason_text,
    with_last_event,
)
from comments.models import Comment

Status = Comment.Status

CHART_SERIES = (
    (Status.PUBLISHED, "#3f8f4f"),
    (Status.HELD, "#d9a21b"),
    (Status.PENDING, "#8fa3b3"),
    (Status.SPAM, "#c0392b"),
    (Status.REJECTED, "#8a5a44"),
    (Status.REMOVED, "#b0b0b0"),
)
CHART_HEIGHT, BAR_WIDTH, BAR_GAP = 160, 18, 6


def author_url(*, email: str | None = None, ip: str | None = None) -> str:
    if not email and not ip:
        return ""
    query = {"email": email} if email else {"ip": ip}
    return f"{reverse('admin:comments_comment_author')}?{urlencode(query)}"


def author_link(text: str, *, email: str | None = None, ip: str | None = None) -> str:
    return format_html('<a href="{}">{}</a>', author_url(email=email, ip=ip), text)


def comment_page_context(comment: Comment) -> dict[str, Any]:
    """The history and the next held comment, for the change page of a comment."""
    return {
        "events": [
            {
                "event": event,
                "reason": REASON_LABELS.get(event.reason, ""),
                "details": json.dumps(event.details, indent=2, sort_keys=True),
            }
            for event in comment.events.order_by("created_at", "id")
        ],
        "next_waiting": (
            Comment.objects.filter(status=Status.HELD, discarded=False)
            .exclude(pk=comment.pk)
            .order_by("created_at", "id")
            .first()
        ),
    }


def stats_page(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    oldest = stats.oldest_waiting()
    errors = stats.akismet_errors()
    agreement = stats.akismet_agreement()
    context = {
        **context,
        "title": "Moderation stats",
        "chart": outcome_chart(stats.daily_outcomes(30)),
        "counts": [(TAB_LABELS[s], n) for s, n in stats.status_counts().items()],
        "spam_ratio": percent(stats.spam_ratio()),
        "oldest_held": age_text(oldest["oldest_held_seconds"]),
        "oldest_pending": age_text(oldest["oldest_pending_seconds"]),
        "errors": errors,
        "error_rows": [(reason_label(code), n) for code, n in errors["by_reason"].items()],
        "agreement": agreement,
        "agreement_percent": percent(agreement["agreement"]),
    }
    return TemplateResponse(request, "admin/comments/comment/stats.html", context)


def author_page(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    """Every comment from one email address (?email=) or one IP address (?ip=)."""
    email = request.GET.get("email", "").strip()
    ip = request.GET.get("ip", "").strip()
    if email:
        comments = Comment.objects.filter(author_email__iexact=email)
        who = email
    elif ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return HttpResponseBadRequest("Not an IP address.")
        comments = Comment.objects.filter(ip_address=ip)
        who = ip
    else:
        return HttpResponseBadRequest("Give ?email= or ?ip=.")
    counts = dict(comments.values_list("status").annotate(n=Count("id")).order_by())
    page = Paginator(
        with_last_event(comments.select_related("article")).order_by("-created_at", "-id"), 100
    ).get_page(request.GET.get("page"))
    now = timezone.now()
    context = {
        **context,
        "title": f"Comments from {who}",
        "by_email": bool(email),
        "who": who,
        "total": sum(counts.values()),
        "counts": [(TAB_LABELS[s], counts[s]) for s in Status.values if counts.get(s)],
        "discarded": comments.filter(discarded=True).count(),
        "page": page,
        "rows": [
            {
                "comment": comment,
                "excerpt": Truncator(comment.body).chars(120),
                "reason": reason_text(comment),
                "age": age_text((now - comment.created_at).total_seconds()),
                "other_url": author_url(ip=comment.ip_address)
                if email
                else author_url(email=comment.author_email),
            }
            for comment in page
        ],
    }
    return TemplateResponse(request, "admin/comments/comment/author.html", context)


def outcome_chart(days: list[dict[str, Any]]) -> dict[str, Any]:
    """Stacked bars per day, as geometry for an inline SVG (no script, no CDN)."""
    totals = [sum(day[status] for status, _ in CHART_SERIES) for day in days]
    peak = max(totals, default=0) or 1
    bars = []
    for index, (day, total) in enumerate(zip(days, totals, strict=True)):
        top, segments = float(CHART_HEIGHT), []
        for status, colour in CHART_SERIES:
            if day[status]:
                height = day[status] / peak * CHART_HEIGHT
                top -= height
                segments.append(
                    {
                        "y": round(top, 2),
                        "height": round(height, 2),
                        "colour": colour,
                        "title": f"{day['day']}: {day[status]} {status}",
                    }
                )
        bars.append(
            {
                "x": index * (BAR_WIDTH + BAR_GAP),
                "day": day["day"],
                "total": total,
                "segments": segments,
                "cells": [day[status] for status, _ in CHART_SERIES],
                "label": day["day"][5:] if index % 5 == 0 or index == len(days) - 1 else "",
            }
        )
    return {
        "bars": bars,
        "series": CHART_SERIES,
        "peak": max(totals, default=0),
        "width": len(days) * (BAR_WIDTH + BAR_GAP),
        "height": CHART_HEIGHT,
        "bar_width": BAR_WIDTH,
    }
