"""The moderation console on the Django admin: the queue, one comment's page, the
stats and per-author pages, and the moderation rules.

Status is never written here: every decision goes through comments.moderation.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.core.validators import validate_email
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.views.decorators.http import require_POST

from comments import moderation, stats
from comments.models import Comment, CommentEvent, HoldReason, ModerationRules

Status = Comment.Status

REASON_LABELS: dict[str, str] = {
    **dict(HoldReason.choices),
    "akismet_ham": "Akismet: not spam",
    "akismet_spam": "Akismet: spam",
    "akismet_discard": "Akismet: blatant spam (discard)",
    "akismet_recheck_after": "Akismet asked to check again later",
    "akismet_key_invalid": "Akismet refused the API key",
    "disallowed_word": "Contains a disallowed word",
    "disallowed_email": "Disallowed email address",
    "disallowed_ip": "Disallowed IP address",
    "honeypot": "Filled in the honeypot field (a bot)",
}
TAB_LABELS = {
    Status.HELD: "Held",
    Status.PENDING: "Pending",
    Status.PUBLISHED: "Published",
    Status.SPAM: "Spam",
    Status.REJECTED: "Rejected",
    Status.REMOVED: "Removed",
    "discarded": "Discarded spam",
    "all": "All",
}
# Most refusals worth one message each in a bulk action; the rest are summed up.
MAX_REFUSAL_MESSAGES = 10


def reason_label(code: str) -> str:
    return REASON_LABELS.get(code, code.replace("_", " "))


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 3600:
        return f"{max(int(seconds // 60), 1)} min"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def percent(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio * 100:.1f} %"


# --- Decisions: the same code path for bulk actions and the change page's buttons ----------


@dataclass(frozen=True)
class Decision:
    label: str
    verb: str  # for "could not <verb>"
    done: str  # for "3 comments <done>"
    action: str  # the moderation action, for which states allow it
    apply: Callable[..., bool]
    only_from: str = ""  # refuse any other state, although the action would allow it

    def allowed_from(self, status: str) -> bool:
        if self.only_from:
            return status == self.only_from
        return status in moderation.ALLOWED_SOURCES[self.action]


DECISIONS: dict[str, Decision] = {
    "publish": Decision("Publish", "publish", "published", "publish", moderation.publish),
    "reject": Decision("Reject", "reject", "rejected", "reject", moderation.reject),
    "spam": Decision("Spam", "mark as spam", "marked as spam", "mark_spam", moderation.mark_spam),
    "not_spam": Decision(
        "Not spam",
        "mark as not spam",
        "published as not spam",
        "publish",
        moderation.publish,
        only_from=Status.SPAM,
    ),
}


def describe(comment: Comment) -> str:
    return f"Comment #{comment.pk} by {comment.author_name}"


def decide_all(
    request: HttpRequest, comments: Iterable[Comment], key: str, reason: str = ""
) -> int:
    """Apply one decision to each comment, reporting refusals; returns how many applied."""
    decision = DECISIONS[key]
    actor = moderation.Actor.for_user(request.user)
    applied, refusals = 0, []
    for comment in comments:
        try:
            if decision.only_from and comment.status != decision.only_from:
                raise moderation.ModerationError(decision.action, comment.status)
            decision.apply(comment, actor=actor, reason=reason)
        except moderation.ModerationError as exc:
            hint = (
                " Only a comment in spam can be marked as not spam." if decision.only_from else ""
            )
            refusals.append(
                f"{describe(comment)} could not {decision.verb}: it is {exc.current}.{hint}"
            )
        else:
            applied += 1
    if applied:
        noun = "comment" if applied == 1 else "comments"
        messages.success(request, f"{applied} {noun} {decision.done}.")
    for text in refusals[:MAX_REFUSAL_MESSAGES]:
        messages.warning(request, text)
    if len(refusals) > MAX_REFUSAL_MESSAGES:
        more = len(refusals) - MAX_REFUSAL_MESSAGES
        messages.warning(request, f"{more} more comments could not {decision.verb}.")
    return applied


# --- Changelist filters -----------------------------------------------------------------


class StatusFilter(admin.SimpleListFilter):
    """The held queue unless another status is asked for; discarded spam only on request."""

    title = "status"
    parameter_name = "status"
    # Also accept the parameter of Django's own field filter, as links and habits use it.
    alias = "status__exact"
    default = Status.HELD

    def __init__(self, request, params, model, model_admin) -> None:
        if self.alias in params:
            params.setdefault(self.parameter_name, params[self.alias])
            params.pop(self.alias)
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin) -> list[tuple[str, str]]:
        return list(TAB_LABELS.items())

    def expected_parameters(self) -> list[str]:
        return [self.parameter_name, self.alias]

    def value(self) -> str:
        return super().value() or self.default

    def queryset(self, request, queryset: QuerySet[Comment]) -> QuerySet[Comment]:
        value = self.value()
        if value == "discarded":
            return queryset.filter(discarded=True)
        queryset = queryset.filter(discarded=False)
        if value == "all":
            return queryset
        if value not in Status.values:
            raise IncorrectLookupParameters(f"unknown status {value!r}")
        return queryset.filter(status=value)

    def choices(self, changelist) -> Iterable[dict[str, Any]]:
        # Django's version would add an "All" choice meaning "no parameter": here that is
        # the held queue, so "all" is a choice of its own.
        counts = self.get_facet_queryset(changelist) if changelist.add_facets else {}
        for index, (lookup, title) in enumerate(self.lookup_choices):
            if changelist.add_facets:
                title = f"{title} ({counts.get(f'{index}__c', '-')})"
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string(
                    {self.parameter_name: lookup}, remove=[self.alias]
                ),
                "display": title,
            }


class DecisionReasonFilter(admin.SimpleListFilter):
    title = "decision reason"
    parameter_name = "decision_reason"

    def lookups(self, request, model_admin) -> list[tuple[str, str]]:
        codes = (
            Comment.objects.exclude(decision_reason="")
            .values_list("decision_reason", flat=True)
            .distinct()
            .order_by("decision_reason")
        )
        return [(code, reason_label(code)) for code in codes]

    def queryset(self, request, queryset: QuerySet[Comment]) -> QuerySet[Comment]:
        if self.value():
            return queryset.filter(decision_reason=self.value())
        return queryset


class VerdictFilter(admin.SimpleListFilter):
    title = "Akismet verdict"
    parameter_name = "verdict"

    def lookups(self, request, model_admin) -> list[tuple[str, str]]:
        return [("ham", "ham"), ("spam", "spam"), ("discard", "discard"), ("none", "not checked")]

    def queryset(self, request, queryset: QuerySet[Comment]) -> QuerySet[Comment]:
        value = self.value()
        if value == "none":
            return queryset.filter(akismet_verdict="")
        if value:
            return queryset.filter(akismet_verdict=value)
        return queryset


# --- Comments -----------------------------------------------------------------------------


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ("excerpt", "author_name", "article_title", "state", "reason", "verdict", "age")
    list_display_links = ("excerpt",)
    list_filter = (
        StatusFilter,
        "held_reason",
        DecisionReasonFilter,
        ("article", admin.RelatedOnlyFieldListFilter),
        "created_at",
        VerdictFilter,
    )
    list_select_related = ("article",)
    list_per_page = 50
    search_fields = ("body", "author_name", "author_email", "ip_address")
    date_hierarchy = "created_at"
    actions = ("publish", "reject", "mark_spam", "not_spam")
    fieldsets_public = (
        (None, {"fields": ("article", "parent_link", ("status", "hold_reason"), "dates")}),
        ("Text", {"fields": ("full_text", "rendered_text", "html_source")}),
        ("Author", {"fields": ("author_name", "author_url")}),
    )
    fieldsets_private = (
        ("Author", {"fields": ("author_name", "author_url", "author_email", "other_comments")}),
        ("Request context", {"fields": ("client_ip", "user_agent", "referrer")}),
    )
    fieldsets_check = (
        (
            "Spam check",
            {
                "fields": (
                    ("akismet_verdict", "akismet_pro_tip"),
                    "akismet_guid",
                    "akismet_error",
                    ("check_attempts", "akismet_checked_at", "checked_at"),
                    ("approved_by", "decision"),
                    ("next_check_at", "recheck_reason"),
                    ("discarded", "honeypot_tripped"),
                )
            },
        ),
    )
    readonly_fields = (
        *("article", "parent_link", "status", "hold_reason", "dates"),
        *("full_text", "rendered_text", "html_source"),
        *("author_name", "author_url", "author_email", "other_comments"),
        *("client_ip", "user_agent", "referrer"),
        *("akismet_verdict", "akismet_pro_tip", "akismet_guid", "akismet_error"),
        *("check_attempts", "akismet_checked_at", "checked_at", "approved_by", "decision"),
        *("next_check_at", "recheck_reason", "discarded", "honeypot_tripped"),
    )

    # --- permissions

    def has_moderate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.can_moderate")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # New comments enter only through submit(), which records their history.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Comment | None = None) -> bool:
        # Comments are never edited here; decisions go through comments.moderation.
        return False

    def _require_moderator(self, request: HttpRequest) -> None:
        if not self.has_moderate_permission(request):
            raise PermissionDenied

    # --- the list

    def get_queryset(self, request: HttpRequest) -> QuerySet[Comment]:
        return with_last_event(super().get_queryset(request))

    def get_list_display(self, request: HttpRequest) -> tuple[str, ...]:
        if self.has_moderate_permission(request):
            return tuple("author" if name == "author_name" else name for name in self.list_display)
        return self.list_display

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        if self.has_moderate_permission(request):
            return self.search_fields
        return ("body", "author_name")

    def get_ordering(self, request: HttpRequest) -> tuple[str, ...]:
        status = request.GET.get("status") or request.GET.get("status__exact") or Status.HELD
        # Queues are worked oldest first; decided comments are browsed newest first.
        if status in (Status.HELD, Status.PENDING):
            return ("created_at", "id")
        return ("-created_at", "-id")

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        # Deleting wipes the history; a moderation queue should not offer it in bulk.
        actions.pop("delete_selected", None)
        return actions

    def response_action(self, request: HttpRequest, queryset: QuerySet[Comment]):
        # Act on the rows that were ticked even if one has left the filtered view since
        # the page was drawn (its check finished, a colleague decided): it is then
        # reported as refused or decided again, never silently skipped.
        if not forms.BooleanField(required=False).clean(request.POST.get("select_across")):
            queryset = self.get_queryset(request)
        return super().response_action(request, queryset)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        tabs = self._status_tabs(request)
        titles = {"Held": "Held: waiting for a human", "Discarded spam": "Discarded spam"}
        current = next((tab["label"] for tab in tabs if tab["selected"]), "")
        context = {
            "title": titles.get(current, f"{current} comments".strip().capitalize()),
            "status_tabs": tabs,
            "can_moderate": self.has_moderate_permission(request),
            "can_see_rules": request.user.has_perm("comments.view_moderationrules"),
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    def _status_tabs(self, request: HttpRequest) -> list[dict[str, Any]]:
        counts = dict.fromkeys(TAB_LABELS, 0)
        rows = Comment.objects.values("status", "discarded").annotate(n=Count("id")).order_by()
        for row in rows:
            counts["discarded" if row["discarded"] else row["status"]] += row["n"]
        counts["all"] = sum(counts.values()) - counts["discarded"]
        current = request.GET.get("status") or request.GET.get("status__exact") or Status.HELD
        changelist = reverse("admin:comments_comment_changelist")
        return [
            {
                "label": label,
                "count": counts[value],
                "url": f"{changelist}?{urlencode({'status': value})}",
                "selected": value == current,
            }
            for value, label in TAB_LABELS.items()
        ]

    @admin.display(description="comment")
    def excerpt(self, comment: Comment) -> str:
        return Truncator(comment.body).chars(70)

    @admin.display(description="author", ordering="author_name")
    def author(self, comment: Comment) -> str:
        links = [
            format_html(
                '<a href="{}">{}</a>', author_url(email=comment.author_email), comment.author_email
            )
        ]
        if comment.ip_address:
            links.append(
                format_html(
                    '<a href="{}">{}</a>', author_url(ip=comment.ip_address), comment.ip_address
                )
            )
        return format_html(
            '{}<br><span class="author-contact">{}</span>',
            comment.author_name,
            mark_safe("<br>".join(links)),  # noqa: S308 (each part built by format_html)
        )

    @admin.display(description="article", ordering="article__title")
    def article_title(self, comment: Comment) -> str:
        return Truncator(comment.article.title).chars(50)

    @admin.display(description="status", ordering="status")
    def state(self, comment: Comment) -> str:
        return f"{comment.status} (discarded)" if comment.discarded else comment.status

    @admin.display(description="reason")
    def reason(self, comment: Comment) -> str:
        if comment.status == Status.HELD:
            return reason_label(comment.held_reason)
        # decision_reason is the automated check's; anyone else's step is in the history.
        actor = getattr(comment, "last_actor", None)
        if actor and actor != moderation.SPAM_CHECK.name:
            return f"by {actor}: {comment.last_reason}" if comment.last_reason else f"by {actor}"
        return reason_label(comment.decision_reason) if comment.decision_reason else "—"

    @admin.display(description="verdict", ordering="akismet_verdict")
    def verdict(self, comment: Comment) -> str:
        return comment.akismet_verdict or "—"

    @admin.display(description="age", ordering="created_at")
    def age(self, comment: Comment) -> str:
        seconds = (timezone.now() - comment.created_at).total_seconds()
        return format_html(
            '<span title="{}">{}</span>',
            comment.created_at.isoformat(timespec="seconds"),
            age_text(seconds),
        )

    # --- the actions

    @admin.action(description="Publish the selected comments", permissions=["moderate"])
    def publish(self, request: HttpRequest, queryset: QuerySet[Comment]) -> None:
        decide_all(request, queryset.order_by("created_at", "id"), "publish")

    @admin.action(description="Reject the selected comments", permissions=["moderate"])
    def reject(self, request: HttpRequest, queryset: QuerySet[Comment]) -> None:
        decide_all(request, queryset.order_by("created_at", "id"), "reject")

    @admin.action(description="Mark the selected comments as spam", permissions=["moderate"])
    def mark_spam(self, request: HttpRequest, queryset: QuerySet[Comment]) -> None:
        decide_all(request, queryset.order_by("created_at", "id"), "spam")

    @admin.action(
        description="Not spam: publish the selected comments in spam", permissions=["moderate"]
    )
    def not_spam(self, request: HttpRequest, queryset: QuerySet[Comment]) -> None:
        decide_all(request, queryset.order_by("created_at", "id"), "not_spam")

    # --- one comment

    def get_fieldsets(self, request: HttpRequest, obj: Comment | None = None):
        if self.has_moderate_permission(request):
            return self.fieldsets_public[:2] + self.fieldsets_private + self.fieldsets_check
        return self.fieldsets_public + self.fieldsets_check

    def change_view(self, request, object_id, form_url="", extra_context=None):
        comment = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if comment is not None and self.has_view_permission(request, comment):
            context["events"] = [
                {
                    "event": event,
                    "reason": REASON_LABELS.get(event.reason, ""),
                    "details": json.dumps(event.details, indent=2, sort_keys=True),
                }
                for event in comment.events.order_by("created_at", "id")
            ]
            context["next_waiting"] = (
                Comment.objects.filter(status=Status.HELD, discarded=False)
                .exclude(pk=comment.pk)
                .order_by("created_at", "id")
                .first()
            )
            if self.has_moderate_permission(request):
                context["decisions"] = [
                    (key, decision.label)
                    for key, decision in DECISIONS.items()
                    if decision.allowed_from(comment.status)
                    # From spam, "not spam" is the clearer name for publishing.
                    and not (key == "publish" and comment.status == Status.SPAM)
                ]
                context["decide_url"] = reverse("admin:comments_comment_decide", args=[comment.pk])
        return super().change_view(request, object_id, form_url, context)

    @admin.display(description="reply to")
    def parent_link(self, comment: Comment) -> str:
        if comment.parent_id is None:
            return "—"
        url = reverse("admin:comments_comment_change", args=[comment.parent_id])
        return format_html('<a href="{}">comment #{}</a>', url, comment.parent_id)

    @admin.display(description="hold reason")
    def hold_reason(self, comment: Comment) -> str:
        return reason_label(comment.held_reason) if comment.held_reason else "—"

    @admin.display(description="submitted · published · edited")
    def dates(self, comment: Comment) -> str:
        return " · ".join(
            timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "—"
            for value in (comment.created_at, comment.published_at, comment.edited_at)
        )

    @admin.display(description="full text")
    def full_text(self, comment: Comment) -> str:
        return format_html('<div class="comment-text">{}</div>', comment.body)

    @admin.display(description="as shown")
    def rendered_text(self, comment: Comment) -> str:
        # body_html is sanitised by nh3 when it is rendered (comments.rendering).
        html = mark_safe(comment.body_html)  # noqa: S308
        return format_html('<div class="comment-rendered">{}</div>', html)

    @admin.display(description="HTML source")
    def html_source(self, comment: Comment) -> str:
        return format_html('<pre class="comment-source">{}</pre>', comment.body_html)

    @admin.display(description="all comments from")
    def other_comments(self, comment: Comment) -> str:
        by_email = format_html(
            '<a href="{}">this email</a>', author_url(email=comment.author_email)
        )
        if not comment.ip_address:
            return by_email
        by_ip = format_html('<a href="{}">this IP address</a>', author_url(ip=comment.ip_address))
        return format_html("{} · {}", by_email, by_ip)

    @admin.display(description="IP address")
    def client_ip(self, comment: Comment) -> str:
        return comment.ip_address or "—"

    @admin.display(description="decision reason")
    def decision(self, comment: Comment) -> str:
        if not comment.decision_reason:
            return "—"
        return f"{reason_label(comment.decision_reason)} ({comment.decision_reason})"

    # --- extra pages

    def get_urls(self):
        def wrap(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
            return self.admin_site.admin_view(view)

        return [
            path("stats/", wrap(self.stats_view), name="comments_comment_stats"),
            path("author/", wrap(self.author_view), name="comments_comment_author"),
            path(
                "<path:object_id>/decide/",
                wrap(require_POST(self.decide_view)),
                name="comments_comment_decide",
            ),
            *super().get_urls(),
        ]

    def _page_context(self, request: HttpRequest, title: str) -> dict[str, Any]:
        request.current_app = self.admin_site.name
        return {**self.admin_site.each_context(request), "opts": self.opts, "title": title}

    def decide_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._require_moderator(request)
        comment = self.get_object(request, unquote(object_id))
        if comment is None:
            raise Http404("No such comment.")
        key = request.POST.get("decision", "")
        if key not in DECISIONS:
            return HttpResponseBadRequest("Unknown decision.")
        decide_all(request, [comment], key, reason=request.POST.get("reason", "").strip()[:200])
        return HttpResponseRedirect(reverse("admin:comments_comment_change", args=[comment.pk]))

    def stats_view(self, request: HttpRequest) -> HttpResponse:
        self._require_moderator(request)
        oldest = stats.oldest_waiting()
        errors = stats.akismet_errors()
        context = {
            **self._page_context(request, "Moderation stats"),
            "chart": outcome_chart(stats.daily_outcomes(30)),
            "counts": [(TAB_LABELS[s], n) for s, n in stats.status_counts().items()],
            "spam_ratio": percent(stats.spam_ratio()),
            "oldest_held": age_text(oldest["oldest_held_seconds"]),
            "oldest_pending": age_text(oldest["oldest_pending_seconds"]),
            "errors": errors,
            "error_rows": [(reason_label(code), n) for code, n in errors["by_reason"].items()],
            "agreement": stats.akismet_agreement(),
        }
        context["agreement_percent"] = percent(context["agreement"]["agreement"])
        return TemplateResponse(request, "admin/comments/comment/stats.html", context)

    def author_view(self, request: HttpRequest) -> HttpResponse:
        self._require_moderator(request)
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
            **self._page_context(request, f"Comments from {who}"),
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
                    "reason": self.reason(comment),
                    "age": age_text((now - comment.created_at).total_seconds()),
                    "other_url": author_url(ip=comment.ip_address)
                    if email
                    else author_url(email=comment.author_email),
                }
                for comment in page
            ],
        }
        return TemplateResponse(request, "admin/comments/comment/author.html", context)


def with_last_event(comments: QuerySet[Comment]) -> QuerySet[Comment]:
    """Who took the latest step and why: the reason column needs it for every row."""
    last = CommentEvent.objects.filter(comment=OuterRef("pk")).order_by("-created_at", "-id")
    return comments.annotate(
        last_actor=Subquery(last.values("actor_name")[:1]),
        last_reason=Subquery(last.values("reason")[:1]),
    )


def author_url(*, email: str | None = None, ip: str | None = None) -> str:
    if not email and not ip:
        return ""
    query = {"email": email} if email else {"ip": ip}
    return f"{reverse('admin:comments_comment_author')}?{urlencode(query)}"


CHART_SERIES = (
    (Status.PUBLISHED, "#3f8f4f"),
    (Status.HELD, "#d9a21b"),
    (Status.PENDING, "#8fa3b3"),
    (Status.SPAM, "#c0392b"),
    (Status.REJECTED, "#8a5a44"),
    (Status.REMOVED, "#b0b0b0"),
)
CHART_HEIGHT, BAR_WIDTH, BAR_GAP = 160, 18, 6


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


# --- Moderation rules -----------------------------------------------------------------------


def _numbered_lines(text: str) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _checked_lines(text: str, check: Callable[[str], bool] | None = None, problem: str = "") -> str:
    """The non-blank lines, stripped; a ValidationError names every line that fails."""
    lines = _numbered_lines(text)
    errors = [
        ValidationError(f"Line {n}: “{line}” {problem}", code="invalid")
        for n, line in lines
        if check is not None and not check(line)
    ]
    if errors:
        raise ValidationError(errors)
    return "\n".join(line for _, line in lines)


def _is_email_or_domain(line: str) -> bool:
    try:
        # "@example.com" is checked as the domain part of an address.
        validate_email(f"someone{line}" if line.startswith("@") else line)
    except ValidationError:
        return False
    return True


def _is_ip_or_network(line: str) -> bool:
    try:
        ipaddress.ip_network(line, strict=False)
    except ValueError:
        return False
    return True


class ModerationRulesForm(forms.ModelForm):
    class Meta:
        model = ModerationRules
        fields = (
            "moderation_words",
            "max_links",
            "premoderation",
            "trusted_authors_skip_hold",
            "disallowed_words",
            "disallowed_emails",
            "disallowed_ips",
            "shadow_mode",
        )
        widgets = {
            name: forms.Textarea(attrs={"rows": 6, "cols": 60})
            for name in (
                "moderation_words",
                "disallowed_words",
                "disallowed_emails",
                "disallowed_ips",
            )
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["disallowed_emails"].label = "Disallowed emails or domains"
        self.fields["disallowed_ips"].label = "Disallowed IPs or networks"
        self.fields["max_links"].help_text = (
            "Hold a comment with at least this many links; 0 turns the rule off. "
            f"Empty: the environment's default ({settings.COMMENTS_MAX_LINKS})."
        )
        self.fields["premoderation"].choices = [
            ("", f"Environment default ({settings.COMMENTS_PREMODERATION})"),
            ("none", "None: a comment Akismet calls ham is published"),
            ("new_authors", "New authors: held until the author has a published comment"),
            ("all", "All: every comment waits for a human"),
        ]
        if settings.COMMENTS_SHADOW_MODE:
            field = self.fields["shadow_mode"]
            field.help_text += " COMMENTS_SHADOW_MODE is set, so shadow mode stays on."

    def clean_moderation_words(self) -> str:
        return _checked_lines(self.cleaned_data["moderation_words"])

    def clean_disallowed_words(self) -> str:
        return _checked_lines(self.cleaned_data["disallowed_words"])

    def clean_disallowed_emails(self) -> str:
        return _checked_lines(
            self.cleaned_data["disallowed_emails"],
            _is_email_or_domain,
            "is neither an email address nor a domain written as @example.com.",
        )

    def clean_disallowed_ips(self) -> str:
        return _checked_lines(
            self.cleaned_data["disallowed_ips"],
            _is_ip_or_network,
            "is not an IP address or a network such as 198.51.100.0/24.",
        )


@admin.register(ModerationRules)
class ModerationRulesAdmin(admin.ModelAdmin):
    """One settings page: the list redirects to the single row, which the checks read."""

    form = ModerationRulesForm
    readonly_fields = ("updated_at",)
    fieldsets = (
        (
            None,
            {
                "fields": ("updated_at",),
                "description": "Changes apply to the next comment that is checked.",
            },
        ),
        (
            "Hold for a human",
            {
                "fields": (
                    "moderation_words",
                    "max_links",
                    "premoderation",
                    "trusted_authors_skip_hold",
                )
            },
        ),
        (
            "Spam outright, without asking Akismet",
            {"fields": ("disallowed_words", "disallowed_emails", "disallowed_ips")},
        ),
        ("Shadow mode", {"fields": ("shadow_mode",)}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: ModerationRules | None = None
    ) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        # EffectiveRules reads the first row; that is the one to edit.
        rules = ModerationRules.objects.order_by("pk").first() or ModerationRules.objects.create()
        return HttpResponseRedirect(
            reverse("admin:comments_moderationrules_change", args=[rules.pk])
        )

    def response_post_save_change(self, request: HttpRequest, obj: ModerationRules):
        return HttpResponseRedirect(reverse("admin:comments_moderationrules_change", args=[obj.pk]))
