"""Export and erasure of one person's data: the moderation API, the author's
self-service request and signed-link page, and the console's pages and actions.

The work itself is in comments.personal_data.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from comments import abuse, moderation, personal_data
from comments.abuse import _SettingRateThrottle
from comments.models import Comment
from comments.moderation_api import CanModerate
from comments.request_context import client_ip

logger = logging.getLogger(__name__)

ACCEPTED_DETAIL = (
    "If comments were posted with this address, a link has been e-mailed to it. "
    "It works for a limited time."
)


# --- the moderation API --------------------------------------------------------------


class PersonalDataEmailSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class PersonalDataEraseSerializer(PersonalDataEmailSerializer):
    keep_text = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Keep the comments' text (only the author's details go); "
        "absent or null follows COMMENTS_ERASURE_KEEPS_TEXT.",
    )


ERASURE_RESULT = inline_serializer(
    "PersonalDataErasure",
    {
        "email_comments": serializers.IntegerField(help_text="Comments anonymised."),
        "articles": serializers.IntegerField(help_text="Articles those comments are on."),
        "events_scrubbed": serializers.IntegerField(),
        "notification_addresses": serializers.IntegerField(),
        "reply_subscriptions": serializers.IntegerField(),
        "webhook_deliveries": serializers.IntegerField(),
        "admin_log_entries": serializers.IntegerField(),
        "text_kept": serializers.BooleanField(),
    },
)


class ModerationPersonalDataExportView(APIView):
    permission_classes = [CanModerate]

    @extend_schema(
        request=PersonalDataEmailSerializer,
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="Every comment of the address (any status, private fields, "
                "history) and its reply notification settings, with `schema_version` "
                "and `generated_at`.",
            )
        },
        summary="Export everything stored about one e-mail address",
    )
    def post(self, request: Request) -> Response:
        body = PersonalDataEmailSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        response = Response(personal_data.export_for_email(body.validated_data["email"]))
        response["Cache-Control"] = "no-store"
        return response


class ModerationPersonalDataEraseView(APIView):
    permission_classes = [CanModerate]

    @extend_schema(
        request=PersonalDataEraseSerializer,
        responses={200: ERASURE_RESULT},
        summary="Erase one e-mail address's personal data from every comment",
        description="Anonymises every comment of the address in place (replies keep "
        "their place; the status does not change) and removes every other copy of "
        "its data. Idempotent: a second call finds nothing.",
    )
    def post(self, request: Request) -> Response:
        body = PersonalDataEraseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = personal_data.erase_email(
            body.validated_data["email"],
            actor=moderation.Actor.for_user(request.user),
            keep_text=body.validated_data.get("keep_text"),
        )
        return Response(result.as_dict(), status=status.HTTP_200_OK)


# --- the author's self-service request ------------------------------------------------


class PersonalDataPerIPThrottle(_SettingRateThrottle):
    scope = "personal-data-ip"
    setting_name = "COMMENTS_THROTTLE_PERSONAL_DATA"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return f"throttle:{self.scope}:{abuse.client_key(client_ip(request))}"


class PersonalDataPerEmailThrottle(_SettingRateThrottle):
    scope = "personal-data-email"
    setting_name = "COMMENTS_THROTTLE_PERSONAL_DATA"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if not isinstance(request.data, dict):
            return None
        email = str(request.data.get("email", "")).strip().lower()
        if not email:
            return None
        return f"throttle:{self.scope}:{abuse.client_key(email)}"


class PersonalDataRequestSerializer(PersonalDataEmailSerializer):
    action = serializers.ChoiceField(choices=list(personal_data.ACTIONS))


class PersonalDataRequestView(APIView):
    """An author asks for their data or its erasure; the link goes to the address."""

    authentication_classes: list = []
    throttle_classes = [PersonalDataPerIPThrottle, PersonalDataPerEmailThrottle]

    @extend_schema(
        request=PersonalDataRequestSerializer,
        responses={
            202: inline_serializer(
                "PersonalDataRequestAccepted", {"detail": serializers.CharField()}
            )
        },
        summary="Ask for a link to export or erase one's comment data",
        description="Always 202, whether or not the address has comments; when it has, "
        "a signed link (valid COMMENTS_PERSONAL_DATA_LINK_SECONDS) is e-mailed to it. "
        "Throttled per client IP and per address (COMMENTS_THROTTLE_PERSONAL_DATA).",
    )
    def post(self, request: Request) -> Response:
        body = PersonalDataRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        email, action = body.validated_data["email"], body.validated_data["action"]
        if personal_data.has_comments(email):
            transaction.on_commit(lambda: _enqueue_link(email, action))
        response = Response({"detail": ACCEPTED_DETAIL}, status=status.HTTP_202_ACCEPTED)
        response["Cache-Control"] = "no-store"
        return response


def _enqueue_link(email: str, action: str) -> None:
    from comments import tasks

    try:
        tasks.send_personal_data_link.delay(email, action)
    except Exception:
        # Never the address in a log line.
        logger.exception("could not enqueue a personal data link (%s)", action)


# --- the signed link's page -------------------------------------------------------------


def _private(response: HttpResponse) -> HttpResponse:
    """The page's URL is a credential: keep it out of caches, referrers and indexes."""
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    return response


def _link_error(request: HttpRequest, status_code: int, problem: str) -> HttpResponse:
    response = render(
        request,
        "comments/personal_data_error.html",
        {"problem": problem},
        status=status_code,
    )
    return _private(response)


@require_http_methods(["GET", "POST"])
def personal_data_link(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows what the link will do and changes nothing (mail scanners open
    links); the button POSTs (with CSRF) and does it."""
    try:
        action, email = personal_data.read_link_token(token)
    except personal_data.LinkExpired:
        return _link_error(request, 410, "expired")
    except personal_data.LinkInvalid:
        return _link_error(request, 400, "invalid")
    except personal_data.LinkSpent as spent:
        if spent.action == "erase":  # done already: the same answer as a repeated erasure
            return _erased_page(request, personal_data.ErasureResult())
        return _link_error(request, 410, "spent")
    if request.method == "GET":
        context = {
            "action": action,
            "email": email,
            "comment_count": personal_data.comments_of(email).count(),
            "erased_name": settings.COMMENTS_ERASED_NAME,
            "keeps_text": settings.COMMENTS_ERASURE_KEEPS_TEXT,
        }
        return _private(render(request, "comments/personal_data_confirm.html", context))
    if request.POST.get("action") != action:
        return _link_error(request, 400, "action")
    if action == "export":
        return _private(json_download(personal_data.export_for_email(email), "comment-data"))
    return _erased_page(request, personal_data.erase_email(email, actor=moderation.AUTHOR))


def _erased_page(request: HttpRequest, result: personal_data.ErasureResult) -> HttpResponse:
    context = {"result": result, "erased_name": settings.COMMENTS_ERASED_NAME}
    return _private(render(request, "comments/personal_data_erased.html", context))


def json_download(data: dict[str, Any], name: str) -> HttpResponse:
    response = HttpResponse(
        json.dumps(data, indent=2, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.json"'
    return response


# --- the console (Django admin) --------------------------------------------------------

KEEP_TEXT_CHOICES = [
    ("default", "As configured (COMMENTS_ERASURE_KEEPS_TEXT)"),
    ("remove", "Remove the text"),
    ("keep", "Keep the text"),
]


def keep_text_choice(value: str | None) -> bool | None:
    return {"keep": True, "remove": False}.get(value or "default")


class PersonalDataForm(forms.Form):
    email = forms.EmailField(max_length=254)
    action = forms.ChoiceField(
        choices=[("export", "Export (JSON download)"), ("erase", "Erase")],
        widget=forms.RadioSelect,
        initial="export",
    )
    keep_text = forms.ChoiceField(
        choices=KEEP_TEXT_CHOICES, initial="default", label="When erasing"
    )


def authors_of(comments: QuerySet[Comment]) -> list[str]:
    """The distinct addresses (ignoring case) of these comments; erased ones have none."""
    seen: dict[str, str] = {}
    rows = (
        comments.exclude(author_email="")
        .annotate(folded=Lower("author_email"))
        .order_by("folded")
        .values_list("folded", "author_email")
    )
    for folded, email in rows:
        seen.setdefault(folded, email)
    return list(seen.values())


def _totals(results: list[personal_data.ErasureResult]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for result in results:
        for key, value in result.as_dict().items():
            if key != "text_kept":
                totals[key] = totals.get(key, 0) + value
    return totals


def _erased_message(authors: int, results: list[personal_data.ErasureResult]) -> str:
    """What was done, without any address (messages may be stored in the session)."""
    totals = _totals(results)
    return (
        f"Personal data of {authors} author(s) erased: {totals.get('email_comments', 0)} "
        f"comment(s) anonymised, {totals.get('notification_addresses', 0)} notification "
        f"address(es) and {totals.get('reply_subscriptions', 0)} subscription(s) deleted, "
        f"{totals.get('webhook_deliveries', 0)} webhook delivery(ies) and "
        f"{totals.get('events_scrubbed', 0)} history entry(ies) cleaned."
    )


class PersonalDataAdminMixin:
    """The console's "Personal data" page and the two changelist actions.

    Mixed into CommentAdmin, which provides has_moderate_permission,
    _require_moderator and _page_context.
    """

    personal_data_actions = ("export_authors_data", "erase_authors_data")

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.personal_data_view)
        return [
            path("personal-data/", view, name="comments_comment_personal_data"),
            *super().get_urls(),
        ]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if self.has_moderate_permission(request):
            for name in self.personal_data_actions:
                actions[name] = self.get_action(name)
        return actions

    @admin.action(description="Export the authors' data")
    def export_authors_data(
        self, request: HttpRequest, queryset: QuerySet[Comment]
    ) -> HttpResponse:
        self._require_moderator(request)
        data = {
            "schema_version": personal_data.SCHEMA_VERSION,
            "generated_at": timezone.now().isoformat(),
            "authors": [personal_data.export_for_email(email) for email in authors_of(queryset)],
        }
        return _private(json_download(data, "comment-authors-data"))

    @admin.action(description="Erase the authors' personal data")
    def erase_authors_data(
        self, request: HttpRequest, queryset: QuerySet[Comment]
    ) -> HttpResponse | None:
        self._require_moderator(request)
        emails = authors_of(queryset)
        if not emails:
            messages.warning(request, "The selected comments have no author data left to erase.")
            return None
        if request.POST.get("post") == "yes":
            actor = moderation.Actor.for_user(request.user)
            keep_text = keep_text_choice(request.POST.get("keep_text"))
            results = [
                personal_data.erase_email(email, actor=actor, keep_text=keep_text)
                for email in emails
            ]
            messages.success(request, _erased_message(len(emails), results))
            return None
        authors = [
            {"email": email, "comments": personal_data.comments_of(email).count()}
            for email in emails
        ]
        context = {
            **self._page_context(request),
            "title": "Erase the authors' personal data?",
            "authors": authors,
            "total": sum(author["comments"] for author in authors),
            "selected": queryset.values_list("pk", flat=True),
            "keep_text_choices": KEEP_TEXT_CHOICES,
        }
        return TemplateResponse(
            request, "admin/comments/comment/personal_data_erase_selected.html", context
        )

    def personal_data_view(self, request: HttpRequest) -> HttpResponse:
        """Export or erase by address: a form, and a confirmation step for erasure."""
        self._require_moderator(request)
        if request.method == "POST":
            form = PersonalDataForm(request.POST)
        else:
            form = PersonalDataForm(initial={"email": request.GET.get("email", "").strip()})
        context = {**self._page_context(request), "title": "Personal data", "form": form}
        if request.method == "POST" and form.is_valid():
            email = form.cleaned_data["email"]
            if form.cleaned_data["action"] == "export":
                return _private(
                    json_download(personal_data.export_for_email(email), "comment-data")
                )
            if request.POST.get("confirm") != "yes":
                context.update(
                    confirm=True,
                    email=email,
                    comment_count=personal_data.comments_of(email).count(),
                    keep_text=form.cleaned_data["keep_text"],
                    keep_text_label=dict(KEEP_TEXT_CHOICES)[form.cleaned_data["keep_text"]],
                )
            else:
                result = personal_data.erase_email(
                    email,
                    actor=moderation.Actor.for_user(request.user),
                    keep_text=keep_text_choice(form.cleaned_data["keep_text"]),
                )
                messages.success(request, _erased_message(1, [result]))
                return HttpResponseRedirect(reverse("admin:comments_comment_personal_data"))
        return _private(
            TemplateResponse(request, "admin/comments/comment/personal_data.html", context)
        )
