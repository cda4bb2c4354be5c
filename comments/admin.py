"""The moderation console's admin pages; every decision goes through comments.moderation."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
)
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.views.decorators.http import require_POST

from comments import webhooks
from comments.console_decisions import DECISIONS, bulk_action, buttons_for, decide_all
from comments.console_filters import (
    DecisionReasonFilter,
    StatusFilter,
    VerdictFilter,
    requested_status,
    status_tabs,
)
from comments.console_labels import age_text, reason_label, reason_text, with_last_event
from comments.console_pages import author_link, author_page, comment_page_context, stats_page
from comments.console_rules import ModerationRulesAdmin
from comments.models import Comment, ModerationRules, WebhookDelivery, WebhookEndpoint
from comments.personal_data_views import PersonalDataAdminMixin

Status = Comment.Status


@admin.register(Comment)
class CommentAdmin(PersonalDataAdminMixin, admin.ModelAdmin):
    # PersonalDataAdminMixin (comments/personal_data_views.py): the "Personal data" page
    # and the actions exporting or erasing the data of the selected comments' authors.
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
    # Comments change only through comments.moderation, so every field shown is read-only.
    readonly_fields = tuple(
        flatten_fieldsets(fieldsets_public + fieldsets_private + fieldsets_check)
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
        # Queues are worked oldest first; decided comments are browsed newest first.
        if requested_status(request) in (Status.HELD, Status.PENDING):
            return ("created_at", "id")
        return ("-created_at", "-id")

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        # Deleting wipes the history; a moderation queue should not offer it in bulk.
        actions.pop("delete_selected", None)
        return actions

    def response_action(
        self, request: HttpRequest, queryset: QuerySet[Comment]
    ) -> HttpResponse | None:
        # Act on the rows that were ticked even if one has left the filtered view since
        # the page was drawn (its check finished, a colleague decided): it is then
        # reported as refused or decided again, never silently skipped.
        if not forms.BooleanField(required=False).clean(request.POST.get("select_across")):
            queryset = self.get_queryset(request)
        return super().response_action(request, queryset)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        tabs = status_tabs(request)
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

    @admin.display(description="comment")
    def excerpt(self, comment: Comment) -> str:
        return Truncator(comment.body).chars(70)

    @admin.display(description="author", ordering="author_name")
    def author(self, comment: Comment) -> str:
        links = [author_link(comment.author_email, email=comment.author_email)]
        if comment.ip_address:
            links.append(author_link(comment.ip_address, ip=comment.ip_address))
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
        return reason_text(comment)

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

    publish = bulk_action("publish", "Publish the selected comments")
    reject = bulk_action("reject", "Reject the selected comments")
    mark_spam = bulk_action("spam", "Mark the selected comments as spam")
    not_spam = bulk_action("not_spam", "Not spam: publish the selected comments in spam")

    # --- one comment

    def get_fieldsets(self, request: HttpRequest, obj: Comment | None = None) -> tuple:
        if self.has_moderate_permission(request):
            return self.fieldsets_public[:2] + self.fieldsets_private + self.fieldsets_check
        return self.fieldsets_public + self.fieldsets_check

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        comment = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if comment is not None and self.has_view_permission(request, comment):
            context.update(comment_page_context(comment))
            if self.has_moderate_permission(request):
                context["decisions"] = buttons_for(comment)
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
        by_email = author_link("this email", email=comment.author_email)
        if not comment.ip_address:
            return by_email
        by_ip = author_link("this IP address", ip=comment.ip_address)
        return format_html("{} · {}", by_email, by_ip)

    @admin.display(description="IP address")
    def client_ip(self, comment: Comment) -> str:
        return comment.ip_address or "—"

    @admin.display(description="decision reason")
    def decision(self, comment: Comment) -> str:
        if not comment.decision_reason:
            return "—"
        return f"{reason_label(comment.decision_reason)} ({comment.decision_reason})"

    # --- the console's own pages

    def get_urls(self) -> list[URLPattern]:
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

    def _page_context(self, request: HttpRequest) -> dict[str, Any]:
        request.current_app = self.admin_site.name
        return {**self.admin_site.each_context(request), "opts": self.opts}

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
        return stats_page(request, self._page_context(request))

    def author_view(self, request: HttpRequest) -> HttpResponse:
        self._require_moderator(request)
        return author_page(request, self._page_context(request))


admin.site.register(ModerationRules, ModerationRulesAdmin)


# --- Webhooks (comments/webhooks.py): endpoints and the delivery log -----------------


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        help_text="http:// or https://; redirects are not followed.",
    )
    events = forms.MultipleChoiceField(
        choices=WebhookEndpoint.Event.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None ticked: every event.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("name", "url", "secret", "events", "include_private", "active")
        widgets = {"secret": forms.TextInput(attrs={"size": 60, "autocomplete": "off"})}
        help_texts = {
            "secret": "Shared secret for the HMAC-SHA256 signature (Webhook-Signature). "
            "A random one is proposed for a new endpoint; copy it to the receiver.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None and not self.is_bound:
            self.initial.setdefault("secret", secrets.token_urlsafe(32))

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if not url.lower().startswith(("http://", "https://")):
            raise forms.ValidationError("Use an http:// or https:// URL.")
        return url

    def clean_events(self) -> list[str]:
        chosen = set(self.cleaned_data["events"])
        return [value for value in WebhookEndpoint.Event.values if value in chosen]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("name", "url", "active", "include_private", "subscribed", "deliveries_link")
    list_filter = ("active", "include_private")
    search_fields = ("name", "url")
    readonly_fields = ("created_at", "recent_deliveries")
    actions = ("send_test_event",)

    def has_delete_permission(
        self, request: HttpRequest, obj: WebhookEndpoint | None = None
    ) -> bool:
        # Deactivate first: a submit that read the endpoint list just before a delete
        # would otherwise record a delivery for an endpoint that no longer exists.
        if obj is not None and obj.active:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # would delete active endpoints too
        return actions

    def get_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> tuple:
        fields = ("name", "url", "secret", "events", "include_private", "active")
        return fields + (("created_at", "recent_deliveries") if obj is not None else ())

    @admin.display(description="events")
    def subscribed(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.events) if endpoint.events else "all"

    @admin.display(description="deliveries")
    def deliveries_link(self, endpoint: WebhookEndpoint) -> str:
        url = reverse("admin:comments_webhookdelivery_changelist")
        return format_html('<a href="{}?endpoint__id__exact={}">log</a>', url, endpoint.pk)

    @admin.display(description="recent deliveries")
    def recent_deliveries(self, endpoint: WebhookEndpoint) -> str:
        recent = list(endpoint.deliveries.order_by("-created_at", "-id")[:10])
        if not recent:
            return "None yet."
        rows = _delivery_rows(recent)
        return format_html(
            "<table><tr><th>created</th><th>event</th><th>status</th><th>code</th>"
            "<th>attempts</th></tr>{}</table>{}",
            rows,
            self.deliveries_link(endpoint),
        )

    @admin.action(description="Send a signed test event (ping) now", permissions=["change"])
    def send_test_event(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            attempt = webhooks.send_test_event(endpoint)
            if attempt.ok:
                self.message_user(
                    request, f"{endpoint}: answered {attempt.code}.", level=messages.SUCCESS
                )
            else:
                self.message_user(
                    request, f"{endpoint}: {attempt.error or attempt.code}.", level=messages.ERROR
                )


def _delivery_rows(deliveries: list[WebhookDelivery]) -> str:
    return format_html_join(
        "",
        '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
        (
            (
                reverse("admin:comments_webhookdelivery_change", args=[delivery.pk]),
                timezone.localtime(delivery.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                delivery.event,
                delivery.status,
                delivery.response_code or "—",
                delivery.attempts,
            )
            for delivery in deliveries
        ),
    )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log: read-only; "Redeliver" sends a delivery again."""

    list_display = (
        "created_at",
        "endpoint",
        "event",
        "status",
        "response_code",
        "attempts",
        "next_attempt_at",
    )
    list_filter = ("status", ("endpoint", admin.RelatedOnlyFieldListFilter), "event")
    list_select_related = ("endpoint",)
    search_fields = ("=event_id", "=comment__id")
    date_hierarchy = "created_at"
    actions = ("redeliver",)
    fields = (
        ("endpoint", "event", "event_id"),
        "comment_link",
        ("status", "attempts", "response_code"),
        ("created_at", "next_attempt_at", "delivered_at"),
        "last_error",
        "response_excerpt",
        "payload_json",
    )
    readonly_fields = tuple(flatten_fieldsets(((None, {"fields": fields}),)))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # deliveries come from comment events only

    def has_change_permission(
        self, request: HttpRequest, obj: WebhookDelivery | None = None
    ) -> bool:
        return False  # a log; "Redeliver" is its own permission below

    def has_redeliver_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("comments.change_webhookdelivery")

    @admin.display(description="comment")
    def comment_link(self, delivery: WebhookDelivery) -> str:
        if delivery.comment_id is None:
            return "—"
        url = reverse("admin:comments_comment_change", args=[delivery.comment_id])
        return format_html('<a href="{}">comment #{}</a>', url, delivery.comment_id)

    @admin.display(description="payload")
    def payload_json(self, delivery: WebhookDelivery) -> str:
        text = json.dumps(delivery.payload, indent=2, ensure_ascii=False)
        return format_html('<pre class="webhook-payload">{}</pre>', text)

    @admin.action(description="Redeliver the selected deliveries", permissions=["redeliver"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        deliveries = list(queryset)
        for delivery in deliveries:
            self.log_change(
                request,
                delivery,
                f"Redelivered (was {delivery.status} after {delivery.attempts} attempts).",
            )
        webhooks.redeliver(deliveries)
        self.message_user(request, f"{len(deliveries)} deliveries queued again.")
