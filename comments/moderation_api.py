"""The moderation API: the queue with private fields, decisions, bulk decisions, stats."""

from __future__ import annotations

import contextlib
import ipaddress
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from comments import moderation, stats
from comments.models import Comment, CommentEvent
from comments.serializers import MAX_ID, TextField

MODERATE_PERMISSION = "comments.can_moderate"
BULK_MAX_IDS = 500
ACTIONS = {
    "approve": moderation.publish,
    "reject": moderation.reject,
    "spam": moderation.mark_spam,
}


class CanModerate(BasePermission):
    """Authenticated (else 401) and holding comments.can_moderate (else 403)."""

    message = "You need the permission to moderate comments."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(MODERATE_PERMISSION))


class EventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name")

    class Meta:
        model = CommentEvent
        fields = ["from_status", "to_status", "actor", "reason", "details", "created_at"]


class ModerationCommentSerializer(serializers.ModelSerializer):
    """Every field a moderator needs, private ones included."""

    article = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    held_reason_label = serializers.SerializerMethodField()
    approved_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    verdict = serializers.SerializerMethodField()
    history = EventSerializer(source="events", many=True, read_only=True)
    # Empty once the author's data is erased, or when an imported comment had none.
    author_email = serializers.CharField(read_only=True)

    class Meta:
        model = Comment
        fields = [
            "id", "article", "parent", "depth", "status", "held_reason", "held_reason_label",
            "decision_reason", "author_name", "author_email", "author_url", "body",
            "body_html", "ip_address", "user_agent", "referrer", "created_at", "published_at",
            "edited_at", "approved_by", "verdict", "history", "erased_at", "import_source",
            "import_id",
        ]  # fmt: skip

    def get_held_reason_label(self, comment: Comment) -> str:
        return str(comment.get_held_reason_display())

    @extend_schema(
        responses=inline_serializer(
            "Verdict",
            {
                "akismet": serializers.CharField(),
                "guid": serializers.CharField(),
                "pro_tip": serializers.CharField(),
                "error": serializers.CharField(),
                "checked_at": serializers.DateTimeField(allow_null=True),
                "passed_check_at": serializers.DateTimeField(allow_null=True),
                "attempts": serializers.IntegerField(),
                "discarded": serializers.BooleanField(),
                "next_check_at": serializers.DateTimeField(allow_null=True),
            },
        )
    )
    def get_verdict(self, comment: Comment) -> dict[str, Any]:
        as_time = serializers.DateTimeField().to_representation
        return {
            "akismet": comment.akismet_verdict,
            "guid": comment.akismet_guid,
            "pro_tip": comment.akismet_pro_tip,
            "error": comment.akismet_error,
            "checked_at": as_time(comment.akismet_checked_at)
            if comment.akismet_checked_at
            else None,
            "passed_check_at": as_time(comment.checked_at) if comment.checked_at else None,
            "attempts": comment.check_attempts,
            "discarded": comment.discarded,
            "next_check_at": as_time(comment.next_check_at) if comment.next_check_at else None,
        }


class ModerationPageSerializer(serializers.Serializer):
    """Schema of the paginated moderation list."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ModerationCommentSerializer(many=True)


class ModerationQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Comment.Status.values, required=False)
    article = serializers.SlugField(max_length=200, required=False)
    search = TextField(max_length=200, required=False)
    reason = serializers.CharField(max_length=40, required=False)
    verdict = serializers.ChoiceField(choices=["ham", "spam", "discard", "none"], required=False)
    discarded = serializers.ChoiceField(choices=["true", "false", "any"], required=False)
    order = serializers.ChoiceField(choices=["oldest", "newest"], required=False)


class DecisionSerializer(serializers.Serializer):
    reason = TextField(max_length=200, required=False, allow_blank=True)


class BulkSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=list(ACTIONS))
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        min_length=1,
        max_length=BULK_MAX_IDS,
    )
    reason = TextField(max_length=200, required=False, allow_blank=True)


class ModerationPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def moderation_queryset() -> QuerySet[Comment]:
    return Comment.objects.select_related("article", "approved_by").prefetch_related(
        Prefetch("events", queryset=CommentEvent.objects.order_by("created_at", "id"))
    )


def _filtered(query: dict[str, Any]) -> QuerySet[Comment]:
    comments = moderation_queryset()
    if "status" in query:
        comments = comments.filter(status=query["status"])
    if "article" in query:
        comments = comments.filter(article__slug=query["article"])
    if "reason" in query:
        comments = comments.filter(
            Q(held_reason=query["reason"]) | Q(decision_reason=query["reason"])
        )
    if "verdict" in query:
        verdict = "" if query["verdict"] == "none" else query["verdict"]
        comments = comments.filter(akismet_verdict=verdict)
    discarded = query.get("discarded", "false")
    if discarded != "any":
        comments = comments.filter(discarded=discarded == "true")
    search = query.get("search", "").strip()
    if search:
        matches = (
            Q(body__icontains=search)
            | Q(author_name__icontains=search)
            | Q(author_email__icontains=search)
        )
        with contextlib.suppress(ValueError):
            matches |= Q(ip_address=str(ipaddress.ip_address(search)))
        comments = comments.filter(matches)
    if query.get("order") == "newest":
        return comments.order_by("-created_at", "-id")
    return comments.order_by("created_at", "id")


class ModerationListView(APIView):
    permission_classes = [CanModerate]

    @extend_schema(
        parameters=[ModerationQuerySerializer],
        responses=ModerationPageSerializer,
        operation_id="moderation_comments_list",
        summary="Comments of any status, with private fields and history",
    )
    def get(self, request: Request) -> Response:
        query = ModerationQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        paginator = ModerationPagination()
        page = paginator.paginate_queryset(_filtered(query.validated_data), request, self)
        return paginator.get_paginated_response(ModerationCommentSerializer(page, many=True).data)


class ModerationDetailView(APIView):
    permission_classes = [CanModerate]

    @extend_schema(responses=ModerationCommentSerializer, summary="One comment of any status")
    def get(self, request: Request, pk: int) -> Response:
        comment = get_object_or_404(moderation_queryset(), pk=pk)
        return Response(ModerationCommentSerializer(comment).data)


class ModerationDecisionView(APIView):
    """POST approve / reject / spam; 409 when the current state does not allow it."""

    permission_classes = [CanModerate]
    action_name = ""

    @extend_schema(
        request=DecisionSerializer,
        responses={200: ModerationCommentSerializer},
        summary="Decide one comment",
    )
    def post(self, request: Request, pk: int) -> Response:
        body = DecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        comment = get_object_or_404(Comment, pk=pk)
        ACTIONS[self.action_name](
            comment,
            actor=moderation.Actor.for_user(request.user),
            reason=body.validated_data.get("reason", ""),
        )
        return Response(ModerationCommentSerializer(moderation_queryset().get(pk=pk)).data)


class ModerationBulkView(APIView):
    permission_classes = [CanModerate]

    @extend_schema(
        request=BulkSerializer,
        responses=inline_serializer(
            "BulkResult",
            {
                "results": inline_serializer(
                    "BulkItem",
                    {
                        "id": serializers.IntegerField(),
                        "result": serializers.ChoiceField(["applied", "conflict", "not_found"]),
                        "status": serializers.CharField(allow_null=True),
                        "detail": serializers.CharField(),
                    },
                    many=True,
                )
            },
        ),
        summary="Decide many comments; one result per id",
    )
    def post(self, request: Request) -> Response:
        body = BulkSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        decide = ACTIONS[body.validated_data["action"]]
        actor = moderation.Actor.for_user(request.user)
        reason = body.validated_data.get("reason", "")
        ids = list(dict.fromkeys(body.validated_data["ids"]))
        found = Comment.objects.in_bulk(ids)
        results = []
        for comment_id in ids:
            comment = found.get(comment_id)
            if comment is None:
                results.append(
                    {
                        "id": comment_id,
                        "result": "not_found",
                        "status": None,
                        "detail": "No such comment.",
                    }
                )
                continue
            try:
                decide(comment, actor=actor, reason=reason)
                results.append(
                    {"id": comment_id, "result": "applied", "status": comment.status, "detail": ""}
                )
            except moderation.ModerationError as exc:
                results.append(
                    {
                        "id": comment_id,
                        "result": "conflict",
                        "status": exc.current,
                        "detail": str(exc),
                    }
                )
        return Response({"results": results}, status=status.HTTP_200_OK)


class ModerationStatsView(APIView):
    permission_classes = [CanModerate]

    @extend_schema(
        responses=inline_serializer("ModerationStats", {"counts": serializers.DictField()}),
        summary="Counts per status, oldest waiting comment, spam ratio, Akismet errors",
    )
    def get(self, request: Request) -> Response:
        return Response(stats.summary())
