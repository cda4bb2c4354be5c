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


class HoldReason(models.TextChoices):
    """Why a comment waits for a human."""

    TOO_MANY_LINKS = "too_many_links", "Contains too many links"
    MODERATION_WORD = "moderation_word", "Contains a moderation word"
    PREMODERATION = "premoderation", "Every comment is premoderated"
    NEW_AUTHOR = "new_author", "First comment from this author"
    AKISMET_ACCOUNT = "akismet_account", "Spam check reported an account problem"
    CHECK_UNAVAILABLE = "check_unavailable", "Spam check unavailable"
    CHECK_INCOMPLETE = "check_incomplete", "Spam check did not finish"
    SHADOW_MODE = "shadow_mode", "Shadow mode: every comment is reviewed"
    CHECK_DISABLED = "check_disabled", "Spam check turned off: every comment is reviewed"
    MODERATOR = "moderator", "Held by a moderator"


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
    held_reason = models.CharField(
        max_length=40, blank=True, default="", choices=HoldReason.choices
    )
    # Reason code of the last decision taken on this comment (by a rule, Akismet or a human).
    decision_reason = models.CharField(max_length=40, blank=True, default="")

    # The automated check. `checked_at` is set only by a passing check and
    # `approved_by` only by a moderator; a published comment needs one of them.
    checked_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="approved_comments",
    )
    check_attempts = models.PositiveIntegerField(default=0)
    # When the check should run (again); the sweeper and the recheck job read it.
    next_check_at = models.DateTimeField(null=True, blank=True)
    # `recheck_reason` to send on the next check ("" for the first one).
    recheck_reason = models.CharField(max_length=20, blank=True, default="")
    akismet_verdict = models.CharField(max_length=16, blank=True, default="")
    akismet_guid = models.CharField(max_length=64, blank=True, default="")
    akismet_pro_tip = models.CharField(max_length=40, blank=True, default="")
    akismet_error = models.CharField(max_length=500, blank=True, default="")
    akismet_checked_at = models.DateTimeField(null=True, blank=True)
    # The comment-check arguments as last sent, reused for submit-spam / submit-ham.
    akismet_payload = models.JSONField(default=dict, blank=True)
    # The form's honeypot field was filled in: a bot, called spam without asking Akismet.
    honeypot_tripped = models.BooleanField(default=False)
    # Blatant spam (Akismet's "discard" tip): hidden from the queue, purged later.
    discarded = models.BooleanField(default=False)

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
            # Never publish an unchecked comment: a published one carries either a
            # passing spam check or a moderator's approval.
            models.CheckConstraint(
                condition=~Q(status="published")
                | Q(checked_at__isnull=False)
                | Q(approved_by__isnull=False),
                name="comment_published_was_checked",
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
            models.Index(fields=["author_email", "status"], name="comment_author_email"),
            # The sweeper and the recheck job: comments whose check is due.
            models.Index(
                fields=["next_check_at"],
                condition=Q(status__in=["pending", "held"], next_check_at__isnull=False),
                name="comment_check_due",
            ),
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
    # What the decision was based on: verdict, guid, headers, attempt, rule.
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["comment", "created_at"], name="event_comment_created")]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status} by {self.actor_name}"


class ModerationRules(models.Model):
    """The site's moderation rules: one row, editable without a restart.

    Empty or null fields fall back to the environment's defaults.
    """

    moderation_words = models.TextField(
        blank=True, default="", help_text="One per line: a comment containing one is held."
    )
    disallowed_words = models.TextField(
        blank=True, default="", help_text="One per line: a comment containing one is spam."
    )
    disallowed_emails = models.TextField(
        blank=True,
        default="",
        help_text="One per line: an address, or a domain written as @example.com.",
    )
    disallowed_ips = models.TextField(
        blank=True, default="", help_text="One per line: an IP address or a network (CIDR)."
    )
    max_links = models.PositiveIntegerField(
        null=True, blank=True, help_text="Hold a comment with at least this many links."
    )
    premoderation = models.CharField(
        max_length=16,
        blank=True,
        default="",
        choices=[("none", "none"), ("new_authors", "new authors"), ("all", "all")],
    )
    trusted_authors_skip_hold = models.BooleanField(
        default=False,
        help_text="An author with a published comment skips the hold rules (never the spam check).",
    )
    shadow_mode = models.BooleanField(
        default=False,
        help_text="Call Akismet and record its verdict, but send every comment to the human "
        "queue; the stats page then shows how moderators agree with Akismet.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "moderation rules"
        verbose_name_plural = "moderation rules"

    def __str__(self) -> str:
        return "Moderation rules"
