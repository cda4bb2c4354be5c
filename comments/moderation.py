"""The one module that creates comments and changes their status.

Every change is a guarded conditional UPDATE (`... WHERE status IN allowed`)
plus an audit row in the same transaction, so a racing worker and moderator
cannot both win, and history never misses a step.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from articles.models import Article
from comments.models import Comment, CommentEvent
from comments.rendering import render_body

Status = Comment.Status

# Which states each target state may be entered from.
ALLOWED_SOURCES: dict[str, frozenset[str]] = {
    "publish": frozenset({Status.PENDING, Status.HELD, Status.SPAM, Status.REJECTED}),
    "hold": frozenset({Status.PENDING, Status.PUBLISHED}),
    "mark_spam": frozenset({Status.PENDING, Status.HELD, Status.PUBLISHED, Status.REJECTED}),
    "reject": frozenset({Status.PENDING, Status.HELD, Status.PUBLISHED, Status.SPAM}),
    "remove": frozenset(
        {Status.PENDING, Status.HELD, Status.PUBLISHED, Status.SPAM, Status.REJECTED}
    ),
    # An author's edit sends the comment back through the automated check.
    "edit": frozenset({Status.PENDING, Status.HELD, Status.PUBLISHED}),
}
TARGET_STATUS: dict[str, str] = {
    "publish": Status.PUBLISHED,
    "hold": Status.HELD,
    "mark_spam": Status.SPAM,
    "reject": Status.REJECTED,
    "remove": Status.REMOVED,
    "edit": Status.PENDING,
}


class ModerationError(Exception):
    """A status change that is not allowed from the comment's current state."""

    def __init__(self, action: str, current: str) -> None:
        self.action = action
        self.current = current
        super().__init__(f"Cannot {action.replace('_', ' ')} a comment that is {current}.")


class InvalidParent(ValueError):
    """The parent is not a published comment of the same article."""


@dataclass(frozen=True)
class Actor:
    """Who made a change: a user, or a named part of the system."""

    name: str
    user: AbstractBaseUser | None = None

    @classmethod
    def for_user(cls, user: AbstractBaseUser) -> Actor:
        return cls(name=user.get_username(), user=user)


AUTHOR = Actor("author")
SPAM_CHECK = Actor("spam-check")
SYSTEM = Actor("system")


def submit(
    *,
    article: Article,
    author_name: str,
    author_email: str,
    body: str,
    author_url: str = "",
    parent_id: int | None = None,
    ip_address: str | None = None,
    user_agent: str = "",
    referrer: str = "",
) -> Comment:
    """Store a new comment as pending; it is checked before anyone else sees it."""
    with transaction.atomic():
        parent = _resolve_parent(article, parent_id) if parent_id is not None else None
        comment = Comment.objects.create(
            article=article,
            parent=parent,
            thread_id=(parent.thread_id or parent.pk) if parent else None,
            depth=parent.depth + 1 if parent else 0,
            author_name=author_name,
            author_email=author_email,
            author_url=author_url,
            body=body,
            body_html=render_body(body),
            status=Status.PENDING,
            ip_address=ip_address,
            user_agent=user_agent[:500],
            referrer=referrer[:500],
        )
        CommentEvent.objects.create(
            comment=comment,
            from_status="",
            to_status=Status.PENDING,
            actor_name=AUTHOR.name,
            reason="submitted",
        )
    return comment


def _resolve_parent(article: Article, parent_id: int) -> Comment:
    """The published comment to reply to; too deep a reply attaches one level up."""
    parent = (
        Comment.objects.select_for_update()
        .filter(pk=parent_id, article=article, status=Status.PUBLISHED)
        .first()
    )
    if parent is None:
        raise InvalidParent("The parent must be a published comment of this article.")
    while parent.depth >= settings.COMMENTS_MAX_DEPTH and parent.parent_id is not None:
        parent = Comment.objects.get(pk=parent.parent_id)
    return parent


def publish(comment: Comment, *, actor: Actor, reason: str = "", strict: bool = True) -> bool:
    return _transition(comment, "publish", actor=actor, reason=reason, strict=strict)


def hold(comment: Comment, *, actor: Actor, reason: str, strict: bool = True) -> bool:
    return _transition(comment, "hold", actor=actor, reason=reason, strict=strict)


def mark_spam(comment: Comment, *, actor: Actor, reason: str = "", strict: bool = True) -> bool:
    return _transition(comment, "mark_spam", actor=actor, reason=reason, strict=strict)


def reject(comment: Comment, *, actor: Actor, reason: str = "", strict: bool = True) -> bool:
    return _transition(comment, "reject", actor=actor, reason=reason, strict=strict)


def remove(comment: Comment, *, actor: Actor, reason: str = "", strict: bool = True) -> bool:
    return _transition(comment, "remove", actor=actor, reason=reason, strict=strict)


def edit(comment: Comment, *, body: str, actor: Actor = AUTHOR, strict: bool = True) -> bool:
    """Replace the body; the comment goes back to pending for a new check."""
    now = timezone.now()
    return _transition(
        comment,
        "edit",
        actor=actor,
        reason="edit",
        strict=strict,
        fields={"body": body, "body_html": render_body(body), "edited_at": now},
    )


def _transition(
    comment: Comment,
    action: str,
    *,
    actor: Actor,
    reason: str,
    strict: bool,
    fields: dict[str, object] | None = None,
) -> bool:
    """Apply `action` if the comment's current state allows it.

    Returns whether it applied. When it did not and `strict` is set, raises
    ModerationError naming the current state (the API answers 409); callers
    that may legitimately lose a race (the spam check) pass strict=False.
    """
    target = TARGET_STATUS[action]
    sources = ALLOWED_SOURCES[action]
    now = timezone.now()
    updates: dict[str, object] = {"status": target, **(fields or {})}
    if target == Status.PUBLISHED:
        updates["published_at"] = now
        updates["held_reason"] = ""
    elif target == Status.HELD:
        updates["held_reason"] = reason[:200]
    with transaction.atomic():
        current = (
            Comment.objects.select_for_update()
            .filter(pk=comment.pk)
            .values_list("status", flat=True)
            .first()
        )
        if current is None or current not in sources:
            if strict:
                raise ModerationError(action, current or "missing")
            return False
        applied = Comment.objects.filter(pk=comment.pk, status=current).update(**updates)
        if not applied:  # only possible without row locks (SQLite)
            if strict:
                raise ModerationError(action, "changed concurrently")
            return False
        CommentEvent.objects.create(
            comment_id=comment.pk,
            from_status=current,
            to_status=target,
            actor_user=actor.user,
            actor_name=actor.name,
            reason=reason[:200],
        )
    for name, value in updates.items():
        setattr(comment, name, value)
    return True


def edit_expires_at(comment: Comment) -> dt.datetime:
    return comment.created_at + dt.timedelta(seconds=settings.COMMENTS_EDIT_WINDOW_SECONDS)
