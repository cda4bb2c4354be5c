"""Comments in the Django admin. Status is read-only here: it changes only
through comments.moderation (the full moderation console builds on this)."""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.utils.text import Truncator

from comments.models import Comment, CommentEvent


class CommentEventInline(admin.TabularInline):
    model = CommentEvent
    extra = 0
    can_delete = False
    fields = ("created_at", "from_status", "to_status", "actor_name", "reason")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "excerpt",
        "author_name",
        "author_email",
        "ip_address",
        "article",
        "status",
        "held_reason",
        "created_at",
    )
    list_filter = ("status", "created_at")
    list_select_related = ("article",)
    search_fields = ("body", "author_name", "author_email", "ip_address")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    raw_id_fields = ("article", "parent", "thread")
    readonly_fields = (
        "status",
        "held_reason",
        "body_html",
        "ip_address",
        "user_agent",
        "referrer",
        "created_at",
        "published_at",
        "edited_at",
        "thread",
        "depth",
    )
    inlines = [CommentEventInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description="comment")
    def excerpt(self, comment: Comment) -> str:
        return Truncator(comment.body).chars(80)

    def has_add_permission(self, request) -> bool:
        # New comments enter only through submit(), which records their history.
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # Edits must re-render body_html and re-check; that is the moderation module's job.
        return False
