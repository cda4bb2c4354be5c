"""Reply notifications for commenters (being written; see issue 10)."""

from __future__ import annotations

from comments.models import Comment


def subscribe(comment: Comment) -> None:
    return None


def on_transition(comment: Comment, *, source: str, target: str) -> None:
    return None
