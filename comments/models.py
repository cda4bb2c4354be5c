"""Comments and their audit trail.

`status` is changed only by `comments.moderation`; everything else reads it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class CommentQuerySet(models.QuerySet["Comment"]):
    def published(self) -> CommentQuerySet:
        return self.filter(status=Comment.Status.PUBLISHED)

    def for_article(self, article_id: int) -> CommentQuerySet:
        return self.filter(article_id=article_id)


class Comment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending (awaiting the automated check)"
        HELD = "held", "Held (awaiting a human)"
        PUBLISHED = "published", "Published"
        SPAM = "spam", "Spam"
        REJECTED = "rejected", "Rejected"
        REMOVED = "removed", "Removed"

    article = models.ForeignKey(
        "articles.Article", on_delete=models.CASCADE, related_name="comments"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    # The top-level comment of a reply's thread (null for a top-level comment),
    # so one query fetches every reply of the comments on a page.
    thread = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    depth = models.PositiveSmallIntegerField(default=0)

    author_name = models.CharField(max_length=100)
    author_email = models.EmailField(max_length=254)
    author_url = models.URLField(max_length=200, blank=True, default="")
    body = models.TextField()
    body_html = models.TextField()

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    held_reason = models.CharField(max_length=200, blank=True, default="")

    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True, default="")
    referrer = models.CharField(max_length=500, blank=True, default="")

    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    edited_at = models.DateTimeField(null=True, blank=True)

    objects = CommentQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        permissions = [("can_moderate", "Can moderate comments")]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=["pending", "held", "published", "spam", "rejected", "removed"]
                ),
                name="comment_status_valid",
            ),
        ]
        indexes = [
            # Public read path: visible top-level comments of one article in order.
            models.Index(
                fields=["article", "created_at", "id"],
                condition=Q(parent__isnull=True, status__in=["published", "removed"]),
                name="comment_toplevel_visible",
            ),
            # Replies of the top-level comments on one page.
            models.Index(
                fields=["thread", "created_at", "id"],
                condition=Q(parent__isnull=False, status__in=["published", "removed"]),
                name="comment_replies_visible",
            ),
            # Published counts per article.
            models.Index(
                fields=["article"],
                condition=Q(status="published"),
                name="comment_published_by_article",
            ),
            models.Index(fields=["status", "created_at"], name="comment_status_created"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} by {self.author_name} ({self.status})"


class CommentEvent(models.Model):
    """One status change of a comment: the audit trail."""

    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, choices=Comment.Status.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=Comment.Status.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # The user's name at the time, or a system actor such as "spam-check" or "author".
    actor_name = models.CharField(max_length=150)
    reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["comment", "created_at"], name="event_comment_created")]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status} by {self.actor_name}"
