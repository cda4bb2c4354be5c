"""The public read path: visible top-level comments and their reply trees."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from comments.models import Comment

Status = Comment.Status
PUBLIC_FIELDS = (
    "id",
    "parent_id",
    "thread_id",
    "author_name",
    "author_url",
    "body_html",
    "status",
    "created_at",
    "edited_at",
)


def visible_top_level(article_id: int) -> QuerySet[Comment]:
    """Published top-level comments, plus removed ones that still have published replies."""
    has_published_reply = Exists(
        Comment.objects.filter(
            article_id=article_id, thread_id=OuterRef("pk"), status=Status.PUBLISHED
        )
    )
    return (
        Comment.objects.filter(article_id=article_id, parent__isnull=True)
        .filter(Q(status=Status.PUBLISHED) | Q(Q(status=Status.REMOVED), has_published_reply))
        .only(*PUBLIC_FIELDS)
    )


# The columns of a public comment, read as plain rows on the cold page path: model
# instances cost more than the data (issue 7, docs/performance.md).
ROW_FIELDS = (
    "id",
    "parent_id",
    "author_name",
    "author_url",
    "body_html",
    "status",
    "created_at",
    "edited_at",
)


def visible_top_level_rows(article_id: int) -> QuerySet[Comment]:
    """visible_top_level as dicts of ROW_FIELDS (for the public page)."""
    return visible_top_level(article_id).values(*ROW_FIELDS)


def public_page_data(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The public data of a page of top-level rows, replies nested (one query).

    The same tree as attach_replies + public_comment_data, built from rows.
    """
    from django.utils import timezone

    from comments.serializers import public_row_data

    tz = timezone.get_current_timezone()
    by_parent: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if rows:
        replies = (
            Comment.objects.filter(
                thread_id__in=[row["id"] for row in rows],
                status__in=[Status.PUBLISHED, Status.REMOVED],
            )
            .order_by("created_at", "id")
            .values(*ROW_FIELDS)
        )
        for reply in replies:
            by_parent[reply["parent_id"]].append(reply)

    def build(row: dict[str, Any]) -> dict[str, Any] | None:
        children = [
            data for data in (build(child) for child in by_parent.get(row["id"], ())) if data
        ]
        if row["status"] != Status.PUBLISHED and not children:
            return None
        return public_row_data(row, children, tz)

    return [build(row) or public_row_data(row, [], tz) for row in rows]


def attach_replies(top_level: list[Comment]) -> list[Comment]:
    """Fetch the replies of `top_level` in one query and hang them on `visible_replies`.

    A removed reply stays as a placeholder only while it has published replies
    below it; replies under a comment that is not visible are not shown.
    """
    by_parent: dict[int, list[Comment]] = defaultdict(list)
    if top_level:
        replies = (
            Comment.objects.filter(
                thread_id__in=[comment.pk for comment in top_level],
                status__in=[Status.PUBLISHED, Status.REMOVED],
            )
            .only(*PUBLIC_FIELDS)
            .order_by("created_at", "id")
        )
        for reply in replies:
            by_parent[reply.parent_id].append(reply)

    def build(comment: Comment) -> bool:
        children = [child for child in by_parent.get(comment.pk, []) if build(child)]
        comment.visible_replies = children
        return comment.status == Status.PUBLISHED or bool(children)

    for comment in top_level:
        build(comment)
    return top_level
