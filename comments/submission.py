"""Accept one anonymous submission: the steps of POST /articles/{slug}/comments/.

Shared by the DRF view (comments/views.py) and the submit fast path in front of
Django (comments_project/fastpath.py), so both refuse and accept exactly alike.
Refusals are raised as DRF exceptions (and Http404); the caller renders them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import Http404
from rest_framework import status
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError

from articles.models import Article
from comments import abuse, moderation, prepared, tokens
from comments.models import Comment
from comments.serializers import IDEMPOTENCY_KEY_HEADER, idempotency_key_from
from comments.submit_input import validate_submission

REPLAYED_HEADER = "Idempotent-Replayed"


class IdempotencyKeyConflict(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was already used for a different comment."
    default_code = "idempotency_key_reused"


class DuplicateComment(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Looks like you already said that."
    default_code = "duplicate"


def accept(
    slug: str,
    data: object,
    *,
    headers: Mapping[str, str],
    ip_address: str | None,
    user_agent: str = "",
    referrer: str = "",
) -> Comment:
    """Store `data` (the parsed request body) as a pending comment on article `slug`.

    `headers` are the request's (for its Idempotency-Key). Returns the comment with
    its `edit_token` set; `comment.replayed` tells a retry answered with the comment
    an earlier request with the same key created.
    """
    article = prepared.get_by(Article, "slug", slug, only=("slug", "comments_open"))
    if article is None:
        raise Http404("No Article matches the given query.")
    if not article.comments_open:
        raise PermissionDenied("Comments are closed for this article.")
    idempotency_key = idempotency_key_from(headers)
    # CommentSubmitSerializer's exact rules without DRF's per-request field copies.
    valid = validate_submission(data)

    def refuse_abuse() -> None:
        """Checks for a new comment only: a replay is answered before them."""
        try:
            abuse.check_form_token(valid.get("form_token"), article.slug)
        except abuse.FormTokenError as exc:
            raise ValidationError({"form_token": [str(exc)]}) from None
        if abuse.is_duplicate(
            article_id=article.pk, author_email=valid["author_email"], body=valid["body"]
        ):
            raise DuplicateComment()
        abuse.check_flood(ip_address)

    try:
        comment = moderation.submit(
            article=article,
            author_name=valid["author_name"],
            author_email=valid["author_email"],
            author_url=valid.get("author_url") or "",
            body=valid["body"],
            parent_id=valid.get("parent"),
            ip_address=ip_address,
            user_agent=user_agent,
            referrer=referrer,
            honeypot_tripped=bool(valid.get("website", "").strip()),
            idempotency_key=idempotency_key,
            before_create=refuse_abuse,
            notify_replies=valid["notify_replies"],
        )
    except moderation.InvalidParent as exc:
        raise ValidationError({"parent": [str(exc)]}) from None
    except moderation.IdempotencyKeyReused as exc:
        raise IdempotencyKeyConflict({IDEMPOTENCY_KEY_HEADER: [str(exc)]}) from None
    comment.edit_token = tokens.make_edit_token(comment.pk, issued_at=comment.created_at)
    return comment


def answer_headers(comment: Comment) -> dict[str, Any]:
    """Headers of the 202 beyond the framework's: a replay says it is one."""
    return {REPLAYED_HEADER: "true"} if comment.replayed else {}
