"""Moderator decisions: one code path for the bulk actions and the comment page's buttons."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from comments import moderation
from comments.models import Comment

Status = Comment.Status

# Most refusals worth one message each in a bulk action; the rest are summed up.
MAX_REFUSAL_MESSAGES = 10


@dataclass(frozen=True)
class Decision:
    label: str
    verb: str  # for "could not <verb>"
    done: str  # for "3 comments <done>"
    action: str  # the moderation action, for which states allow it
    apply: Callable[..., bool]
    only_from: str = ""  # refuse any other state, although the action would allow it

    def allowed_from(self, status: str) -> bool:
        if self.only_from:
            return status == self.only_from
        return status in moderation.ALLOWED_SOURCES[self.action]


DECISIONS: dict[str, Decision] = {
    "publish": Decision("Publish", "publish", "published", "publish", moderation.publish),
    "reject": Decision("Reject", "reject", "rejected", "reject", moderation.reject),
    "spam": Decision("Spam", "mark as spam", "marked as spam", "mark_spam", moderation.mark_spam),
    "not_spam": Decision(
        "Not spam",
        "mark as not spam",
        "published as not spam",
        "publish",
        moderation.publish,
        only_from=Status.SPAM,
    ),
}


def describe(comment: Comment) -> str:
    return f"Comment #{comment.pk} by {comment.author_name}"


def decide_all(
    request: HttpRequest, comments: Iterable[Comment], key: str, reason: str = ""
) -> int:
    """Apply one decision to each comment, reporting refusals; returns how many applied."""
    decision = DECISIONS[key]
    actor = moderation.Actor.for_user(request.user)
    applied, refusals = 0, []
    for comment in comments:
        try:
            if decision.only_from and comment.status != decision.only_from:
                raise moderation.ModerationError(decision.action, comment.status)
            decision.apply(comment, actor=actor, reason=reason)
        except moderation.ModerationError as exc:
            hint = (
                " Only a comment in spam can be marked as not spam." if decision.only_from else ""
            )
            refusals.append(
                f"{describe(comment)} could not {decision.verb}: it is {exc.current}.{hint}"
            )
        else:
            applied += 1
    if applied:
        noun = "comment" if applied == 1 else "comments"
        messages.success(request, f"{applied} {noun} {decision.done}.")
    for text in refusals[:MAX_REFUSAL_MESSAGES]:
        messages.warning(request, text)
    if len(refusals) > MAX_REFUSAL_MESSAGES:
        more = len(refusals) - MAX_REFUSAL_MESSAGES
        messages.warning(request, f"{more} more comments could not {decision.verb}.")
    return applied


def bulk_action(key: str, description: str) -> Callable[..., None]:
    """A changelist action for a moderator, deciding the ticked comments oldest first."""

    @admin.action(description=description, permissions=["moderate"])
    def action(
        model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Comment]
    ) -> None:
        decide_all(request, queryset.order_by("created_at", "id"), key)

    return action


def buttons_for(comment: Comment) -> list[tuple[str, str]]:
    """The decisions the comment page offers as buttons, as (key, label) pairs."""
    return [
        (key, decision.label)
        for key, decision in DECISIONS.items()
        if decision.allowed_from(comment.status)
        # From spam, "not spam" is the clearer name for publishing.
        and not (key == "publish" and comment.status == Status.SPAM)
    ]
