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

# Articles this process found open for comments (slug -> id), for `accept` to take on
# trust when asked to: the INSERT itself then checks the article (one statement fewer).
_open_articles: dict[str, int] = {}
MAX_REMEMBERED_ARTICLES = 1024


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
    trust_remembered_article: bool = False,
) -> Comment:
    """Store `data` (the parsed request body) as a pending comment on article `slug`.

    `headers` are the request's (for its Idempotency-Key). Returns the comment with
    its `edit_token` set; `comment.replayed` tells a retry answered with the comment
    an earlier request with the same key created.

    `trust_remembered_article`: an article this process saw open is not read again;
    the INSERT checks it. The refusals then come in another order (the article's own
    last), and moderation.ArticleUnverified, with nothing written, when it is closed
    or gone: a caller that answers refusals by running the whole request again the
    usual way (the fast path, which hands them on to Django) may ask.
    """
    article_id = _open_articles.get(slug) if trust_remembered_article else None
    if article_id is not None:
        article = Article(pk=article_id, slug=slug, comments_open=True)
    else:
        article = _open_article(slug)
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
            article_verified=article_id is None,
        )
    except moderation.ArticleUnverified:
        _open_articles.pop(slug, None)
        raise
    except moderation.InvalidParent as exc:
        raise ValidationError({"parent": [str(exc)]}) from None
    except moderation.IdempotencyKeyReused as exc:
        raise IdempotencyKeyConflict({IDEMPOTENCY_KEY_HEADER: [str(exc)]}) from None
    comment.edit_token = tokens.make_edit_token(comment.pk, issued_at=comment.created_at)
    return comment


def _open_article(slug: str) -> Article:
    """The article, read; remembered while it is open for comments."""
    article = prepared.get_by(Article, "slug", slug, only=("slug", "comments_open"))
    if article is None:
        _open_articles.pop(slug, None)
        raise Http404("No Article matches the given query.")
    if not article.comments_open:
        _open_articles.pop(slug, None)
        raise PermissionDenied("Comments are closed for this article.")
    if slug not in _open_articles and len(_open_articles) >= MAX_REMEMBERED_ARTICLES:
        _open_articles.clear()
    _open_articles[slug] = article.pk
    return article


def answer_headers(comment: Comment) -> dict[str, Any]:
    """Headers of the 202 beyond the framework's: a replay says it is one."""
    return {REPLAYED_HEADER: "true"} if comment.replayed else {}
