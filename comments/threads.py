"""The public read path: visible top-level comments and their reply trees."""

from __future__ import annotations

from collections import defaultdict

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
