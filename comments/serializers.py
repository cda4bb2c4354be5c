"""Input validation and output shapes of the public comment API."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from comments import moderation
from comments.models import Comment, HoldReason

BODY_MAX_LENGTH = 10_000
REVIEW_NOTES = {
    HoldReason.TOO_MANY_LINKS: "It contains several links, so a moderator will review it.",
    HoldReason.PREMODERATION: "Every comment is reviewed by a moderator before it appears.",
    HoldReason.NEW_AUTHOR: "First comments are reviewed by a moderator before they appear.",
    HoldReason.CHECK_UNAVAILABLE: "It will be checked again shortly.",
}
MAX_ID = 2**63 - 1


def reject_unencodable_text(value: str) -> None:
    """Lone surrogates from JSON escapes cannot be stored in UTF-8 (PostgreSQL errors)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise serializers.ValidationError("Contains characters that are not valid text.") from None


class TextField(serializers.CharField):
    """A CharField that also refuses text PostgreSQL cannot store."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.append(reject_unencodable_text)


# Control, format (zero-width, bidi, soft hyphen) and separator characters.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
_UNSAFE_URL_CHARACTERS = frozenset("\"'<>`\\{}|^ \t\n\r")


_WEB_URL_VALIDATOR = URLValidator(schemes=["http", "https"])


def validate_web_url(value: str) -> None:
    """http(s) only, and nothing that could break out of an attribute anywhere it is shown."""
    if any(
        char in _UNSAFE_URL_CHARACTERS or unicodedata.category(char) in _INVISIBLE_CATEGORIES
        for char in value
    ):
        raise serializers.ValidationError(
            "Enter a valid http:// or https:// address (no quotes, spaces or angle brackets)."
        )
    try:
        _WEB_URL_VALIDATOR(value)
    except DjangoValidationError:
        raise serializers.ValidationError("Enter a valid http:// or https:// address.") from None


IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX_LENGTH = 255


def idempotency_key_from(headers: Mapping[str, str]) -> str | None:
    """The request's Idempotency-Key: None without the header; a 400 naming the
    header unless it is 1–255 printable ASCII characters."""
    key = headers.get(IDEMPOTENCY_KEY_HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH or not all(" " <= c <= "~" for c in key):
        raise serializers.ValidationError(
            {
                IDEMPOTENCY_KEY_HEADER: [
                    f"Must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters, "
                    "such as a UUID."
                ]
            }
        )
    return key


class CommentSubmitSerializer(serializers.Serializer):
    author_name = TextField(min_length=1, max_length=100)
    author_email = serializers.EmailField(max_length=254)
    author_url = TextField(
        max_length=200,
        required=False,
        allow_blank=True,
        allow_null=True,
        validators=[validate_web_url],
    )
    body = TextField(min_length=1, max_length=BODY_MAX_LENGTH)
    parent = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_ID
    )
    form_token = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=300,
        help_text="From GET /api/v1/articles/{slug}/form-token/; required unless "
        "COMMENTS_MIN_SUBMIT_SECONDS is 0.",
    )
    website = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        help_text="The honeypot: the widget hides it from people; leave it empty.",
    )
    notify_replies = serializers.BooleanField(
        default=False,
        help_text="E-mail the author about published replies, once they have confirmed "
        "their address (double opt-in; the confirmation is sent when the comment is "
        "published).",
    )

    def validate_author_email(self, value: str) -> str:
        # Stored lower-case so "same author" rules and look-ups match reliably.
        return value.lower()

    def validate_author_url(self, value: str | None) -> str:
        return value or ""


class FormTokenSerializer(serializers.Serializer):
    form_token = serializers.CharField()
    min_submit_seconds = serializers.IntegerField()
    expires_in = serializers.IntegerField()


class CommentEditSerializer(serializers.Serializer):
    body = TextField(min_length=1, max_length=BODY_MAX_LENGTH)


class CommentListQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100)
    order = serializers.ChoiceField(choices=["oldest", "newest"], required=False)
    cursor = serializers.CharField(required=False, max_length=500)


class PublicCommentSerializer(serializers.Serializer):
    """A comment as any reader may see it: never an email, IP or user agent."""

    id = serializers.IntegerField()
    parent = serializers.IntegerField(source="parent_id", allow_null=True)
    author_name = serializers.CharField()
    author_url = serializers.SerializerMethodField()
    body_html = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    edited_at = serializers.DateTimeField(allow_null=True)
    removed = serializers.SerializerMethodField()
    replies = serializers.SerializerMethodField()

    def to_representation(self, instance: Comment) -> dict[str, Any]:
        data = super().to_representation(instance)
        if instance.status == Comment.Status.REMOVED:
            data["author_name"] = ""
        return data

    def get_author_url(self, comment: Comment) -> str | None:
        if comment.status == Comment.Status.REMOVED:
            return None
        return comment.author_url or None

    def get_body_html(self, comment: Comment) -> str:
        return "" if comment.status == Comment.Status.REMOVED else comment.body_html

    def get_removed(self, comment: Comment) -> bool:
        return comment.status == Comment.Status.REMOVED

    @extend_schema_field({"type": "array", "items": {"$ref": "#/components/schemas/PublicComment"}})
    def get_replies(self, comment: Comment) -> list[dict[str, Any]]:
        children = getattr(comment, "visible_replies", [])
        return PublicCommentSerializer(children, many=True, context=self.context).data


def public_comment_data(comment: Comment) -> dict[str, Any]:
    """Exactly PublicCommentSerializer's output, built directly.

    A cold comment page renders up to hundreds of comments; DRF's per-field
    machinery (a nested serializer per reply, copied field definitions) cost
    ten times more than the data itself. A test keeps the two identical.
    """
    removed = comment.status == Comment.Status.REMOVED
    return {
        "id": comment.pk,
        "parent": comment.parent_id,
        "author_name": "" if removed else comment.author_name,
        "author_url": None if removed else (comment.author_url or None),
        "body_html": "" if removed else comment.body_html,
        "created_at": _iso_datetime(comment.created_at),
        "edited_at": _iso_datetime(comment.edited_at),
        "removed": removed,
        "replies": [
            public_comment_data(reply) for reply in getattr(comment, "visible_replies", [])
        ],
    }


def public_row_data(
    row: dict[str, Any], replies: list[dict[str, Any]], tz: dt.tzinfo | None = None
) -> dict[str, Any]:
    """public_comment_data of a row of threads.ROW_FIELDS, with its replies' data.

    `tz`: the current time zone, looked up once per page by the caller (the
    look-up goes through a context-local and cost more than the formatting).
    """
    removed = row["status"] == Comment.Status.REMOVED
    return {
        "id": row["id"],
        "parent": row["parent_id"],
        "author_name": "" if removed else row["author_name"],
        "author_url": None if removed else (row["author_url"] or None),
        "body_html": "" if removed else row["body_html"],
        "created_at": _iso_datetime(row["created_at"], tz),
        "edited_at": _iso_datetime(row["edited_at"], tz),
        "removed": removed,
        "replies": replies,
    }


def submitted_comment_data(comment: Comment) -> dict[str, Any]:
    """Exactly SubmittedCommentSerializer's output, built directly (the submit path
    is CPU-bound; a test keeps the two identical)."""
    data = public_comment_data(comment)
    data["status"] = comment.status
    data["review_note"] = (
        REVIEW_NOTES.get(comment.held_reason, "A moderator will review it.")
        if comment.status == Comment.Status.HELD
        else ""
    )
    data["edit_expires_at"] = _iso_datetime(moderation.edit_expires_at(comment))
    data["edit_token"] = comment.edit_token
    return data


def _iso_datetime(value: dt.datetime | None, tz: dt.tzinfo | None = None) -> str | None:
    """As DRF's DateTimeField renders it: ISO 8601 in the current time zone, UTC as Z."""
    if value is None:
        return None
    text = value.astimezone(tz or timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class OwnCommentSerializer(PublicCommentSerializer):
    """The author's view of their own comment (with the edit token)."""

    status = serializers.CharField()
    review_note = serializers.SerializerMethodField()
    edit_expires_at = serializers.SerializerMethodField()

    def get_review_note(self, comment: Comment) -> str:
        """A plain reason for a held comment where it is safe to give one.

        Rule details (which word, which list) are never told: they would teach
        spammers how to get around them.
        """
        if comment.status != Comment.Status.HELD:
            return ""
        return REVIEW_NOTES.get(comment.held_reason, "A moderator will review it.")

    def get_edit_expires_at(self, comment: Comment) -> str:
        return serializers.DateTimeField().to_representation(moderation.edit_expires_at(comment))


class CommentDetailSerializer(PublicCommentSerializer):
    """Schema of GET /comments/{id}/: the author's fields appear only with a valid token."""

    status = serializers.CharField(required=False)
    review_note = serializers.CharField(required=False)
    edit_expires_at = serializers.DateTimeField(required=False)


class SubmittedCommentSerializer(OwnCommentSerializer):
    edit_token = serializers.CharField()


class CommentPageSerializer(serializers.Serializer):
    """Schema of the paginated comment list."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = PublicCommentSerializer(many=True)
