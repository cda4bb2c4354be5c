"""The moderation state machine: every status × every action, plus what each action records."""

from __future__ import annotations

import itertools

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from articles.models import Article
from comments import moderation
from comments.models import Comment, CommentEvent, HoldReason
from tests.factories import UserFactory, published_comment, submit_comment

pytestmark = pytest.mark.django_db

S = Comment.Status
STATUSES = [S.PENDING, S.HELD, S.PUBLISHED, S.SPAM, S.REJECTED, S.REMOVED]
ACTIONS = ["publish", "hold", "mark_spam", "reject", "remove", "edit"]

# The expected table, written out so that a change to moderation.ALLOWED_SOURCES
# is a deliberate decision that also updates this test.
EXPECTED_SOURCES = {
    "publish": {S.PENDING, S.HELD, S.SPAM, S.REJECTED},
    "hold": {S.PENDING, S.PUBLISHED},
    "mark_spam": {S.PENDING, S.HELD, S.PUBLISHED, S.REJECTED},
    "reject": {S.PENDING, S.HELD, S.PUBLISHED, S.SPAM},
    "remove": {S.PENDING, S.HELD, S.PUBLISHED, S.SPAM, S.REJECTED},
    "edit": {S.PENDING, S.HELD, S.PUBLISHED},
}
EXPECTED_TARGET = {
    "publish": S.PUBLISHED,
    "hold": S.HELD,
    "mark_spam": S.SPAM,
    "reject": S.REJECTED,
    "remove": S.REMOVED,
    "edit": S.PENDING,
}

ALL_CASES = list(itertools.product(STATUSES, ACTIONS))
ALLOWED = [(s, a) for s, a in ALL_CASES if s in EXPECTED_SOURCES[a]]
REFUSED = [(s, a) for s, a in ALL_CASES if s not in EXPECTED_SOURCES[a]]


def case_id(case: tuple[str, str]) -> str:
    return f"{case[1]}-from-{case[0]}"


def comment_in(status: str) -> Comment:
    """A comment created through submit(), then forced into `status`.

    The queryset update below is the one sanctioned bypass of comments.moderation:
    it only builds the source state for the transition under test. A published row
    must also carry a passing check (constraint comment_published_was_checked).
    """
    comment = submit_comment()
    checked_at = timezone.now() if status == S.PUBLISHED else None
    Comment.objects.filter(pk=comment.pk).update(status=status, checked_at=checked_at)
    Article.objects.filter(pk=comment.article_id).refresh_comment_counts()
    comment.refresh_from_db()
    return comment


def apply(action: str, comment: Comment, actor: moderation.Actor, **kwargs: object) -> bool:
    """Call the moderation function for `action` with the arguments it needs."""
    if action == "edit":
        return moderation.edit(comment, body="An edited remark.", actor=actor, **kwargs)
    return getattr(moderation, action)(comment, actor=actor, reason=f"test {action}", **kwargs)


def expected_reason(action: str) -> str:
    return "edit" if action == "edit" else f"test {action}"


def snapshot(comment: Comment) -> dict[str, object]:
    row = Comment.objects.filter(pk=comment.pk).values().get()
    row["event_ids"] = list(
        CommentEvent.objects.filter(comment_id=comment.pk).values_list("id", flat=True)
    )
    return row


def test_the_module_table_matches_the_expected_transition_table():
    assert {a: set(s) for a, s in moderation.ALLOWED_SOURCES.items()} == EXPECTED_SOURCES
    assert moderation.TARGET_STATUS == EXPECTED_TARGET
    assert set(moderation.ALLOWED_SOURCES) == set(ACTIONS)


def test_a_removed_comment_is_final():
    assert all(S.REMOVED not in sources for sources in moderation.ALLOWED_SOURCES.values())


@pytest.mark.parametrize(("source", "action"), ALLOWED, ids=[case_id(c) for c in ALLOWED])
def test_an_allowed_action_moves_the_comment_and_records_one_event(source, action):
    comment = comment_in(source)
    moderator = UserFactory()
    events_before = set(comment.events.values_list("id", flat=True))

    applied = apply(action, comment, moderation.Actor.for_user(moderator))

    assert applied is True
    target = EXPECTED_TARGET[action]
    assert comment.status == target
    comment.refresh_from_db()
    assert comment.status == target
    new_events = list(comment.events.exclude(id__in=events_before))
    assert len(new_events) == 1
    event = new_events[0]
    assert (event.from_status, event.to_status) == (source, target)
    assert event.actor_user == moderator
    assert event.actor_name == moderator.username
    assert event.reason == expected_reason(action)


@pytest.mark.parametrize(("source", "action"), REFUSED, ids=[case_id(c) for c in REFUSED])
def test_a_refused_action_raises_and_changes_nothing(source, action):
    comment = comment_in(source)
    before = snapshot(comment)

    with pytest.raises(moderation.ModerationError) as raised:
        apply(action, comment, moderation.Actor.for_user(UserFactory()))

    assert raised.value.action == action
    assert raised.value.current == source
    assert source in str(raised.value)
    assert snapshot(comment) == before
    assert comment.status == source


@pytest.mark.parametrize(("source", "action"), REFUSED, ids=[case_id(c) for c in REFUSED])
def test_a_refused_action_without_strict_returns_false_and_changes_nothing(source, action):
    comment = comment_in(source)
    before = snapshot(comment)

    applied = apply(action, comment, moderation.SYSTEM, strict=False)

    assert applied is False
    assert snapshot(comment) == before
    assert comment.status == source


@pytest.mark.parametrize("action", ACTIONS)
def test_an_action_on_a_deleted_comment_is_refused_as_missing(action):
    comment = submit_comment()
    Comment.objects.filter(pk=comment.pk).delete()

    with pytest.raises(moderation.ModerationError) as raised:
        apply(action, comment, moderation.SYSTEM)

    assert raised.value.current == "missing"
    assert apply(action, comment, moderation.SYSTEM, strict=False) is False


def test_the_decision_uses_the_stored_status_not_a_stale_instance():
    comment = submit_comment()
    stale = Comment.objects.get(pk=comment.pk)
    moderation.remove(comment, actor=moderation.AUTHOR)

    with pytest.raises(moderation.ModerationError):
        moderation.publish(stale, actor=moderation.SYSTEM)

    assert Comment.objects.get(pk=comment.pk).status == S.REMOVED


def test_submit_records_the_first_event_from_nothing_to_pending():
    comment = submit_comment()

    assert comment.status == S.PENDING
    (event,) = comment.events.all()
    assert (event.from_status, event.to_status) == ("", S.PENDING)
    assert event.actor_name == "author"
    assert event.actor_user is None


def test_publish_sets_published_at_and_clears_the_held_reason():
    comment = submit_comment()
    moderation.hold(comment, actor=moderation.SPAM_CHECK, hold_reason=HoldReason.TOO_MANY_LINKS)
    before = timezone.now()

    moderation.publish(comment, actor=moderation.Actor.for_user(UserFactory()))

    comment.refresh_from_db()
    assert comment.status == S.PUBLISHED
    assert comment.held_reason == ""
    assert comment.published_at is not None
    assert before <= comment.published_at <= timezone.now()


def test_a_comment_not_yet_published_has_no_published_at():
    comment = submit_comment()
    moderation.hold(comment, actor=moderation.SPAM_CHECK, hold_reason=HoldReason.NEW_AUTHOR)

    comment.refresh_from_db()
    assert comment.published_at is None


def test_a_publish_by_a_moderator_records_who_approved_it():
    moderator = UserFactory()
    comment = submit_comment()

    moderation.publish(comment, actor=moderation.Actor.for_user(moderator))

    comment.refresh_from_db()
    assert comment.approved_by == moderator
    assert comment.checked_at is None


def test_a_publish_by_the_spam_check_records_when_it_was_checked():
    comment = submit_comment()
    before = timezone.now()

    moderation.publish(comment, actor=moderation.SPAM_CHECK)

    comment.refresh_from_db()
    assert comment.approved_by is None
    assert before <= comment.checked_at <= timezone.now()


def test_a_publish_that_is_neither_checked_nor_approved_is_refused_by_the_database():
    comment = submit_comment()

    with pytest.raises(IntegrityError), transaction.atomic():
        moderation.publish(comment, actor=moderation.SYSTEM)

    comment.refresh_from_db()
    assert comment.status == S.PENDING
    assert comment.events.count() == 1


def test_hold_stores_the_hold_reason_on_the_comment_and_in_the_event():
    comment = submit_comment()

    moderation.hold(comment, actor=moderation.SPAM_CHECK, hold_reason=HoldReason.TOO_MANY_LINKS)

    comment.refresh_from_db()
    assert comment.status == S.HELD
    assert comment.held_reason == HoldReason.TOO_MANY_LINKS
    event = comment.events.last()
    assert event.reason == HoldReason.TOO_MANY_LINKS
    assert event.actor_name == "spam-check"
    assert event.actor_user is None


def test_a_hold_by_a_moderator_keeps_their_note_in_the_event():
    moderator = UserFactory()
    comment = published_comment()

    moderation.hold(
        comment, actor=moderation.Actor.for_user(moderator), reason="checking a claim with legal"
    )

    comment.refresh_from_db()
    assert comment.status == S.HELD
    assert comment.held_reason == HoldReason.MODERATOR
    event = comment.events.last()
    assert event.reason == "checking a claim with legal"
    assert event.actor_user == moderator


def test_a_long_event_reason_is_cut_to_the_column_size():
    comment = submit_comment()

    moderation.reject(comment, actor=moderation.SYSTEM, reason="x" * 500)

    assert comment.events.last().reason == "x" * 200


def test_edit_replaces_the_body_re_renders_it_and_sets_edited_at():
    comment = submit_comment()
    moderation.publish(comment, actor=moderation.SPAM_CHECK)
    assert comment.edited_at is None
    before = timezone.now()

    moderation.edit(comment, body="Now with <b>markup</b>\n\nand https://example.org")

    comment.refresh_from_db()
    assert comment.status == S.PENDING
    assert comment.body == "Now with <b>markup</b>\n\nand https://example.org"
    assert "<b>" not in comment.body_html
    assert "&lt;b&gt;markup&lt;/b&gt;" in comment.body_html
    assert comment.body_html.count("<p>") == 2
    assert 'href="https://example.org"' in comment.body_html
    assert before <= comment.edited_at <= timezone.now()
    assert comment.checked_at is None  # the old check was about the old text
    assert comment.published_at is not None
    event = comment.events.last()
    assert (event.from_status, event.to_status) == (S.PUBLISHED, S.PENDING)
    assert event.actor_name == "author"


def test_a_refused_edit_keeps_the_old_body():
    comment = submit_comment(body="Original words.")
    moderation.mark_spam(comment, actor=moderation.SPAM_CHECK)

    with pytest.raises(moderation.ModerationError):
        moderation.edit(comment, body="Sneaky rewrite.")

    comment.refresh_from_db()
    assert comment.body == "Original words."
    assert "Original words." in comment.body_html
    assert comment.edited_at is None


def test_events_record_the_users_name_and_keep_it_after_the_user_is_gone():
    moderator = UserFactory(username="moderator-mia")
    comment = submit_comment()
    actor = moderation.Actor.for_user(moderator)
    assert actor == moderation.Actor(name="moderator-mia", user=moderator)

    moderation.reject(comment, actor=actor, reason="off topic")
    moderator.delete()

    event = comment.events.last()
    assert event.actor_user is None
    assert event.actor_name == "moderator-mia"
    assert event.reason == "off topic"


def test_a_full_history_lists_every_step_in_order():
    moderator = moderation.Actor.for_user(UserFactory())
    comment = submit_comment()
    moderation.hold(comment, actor=moderation.SPAM_CHECK, hold_reason=HoldReason.NEW_AUTHOR)
    moderation.publish(comment, actor=moderator)
    moderation.mark_spam(comment, actor=moderator)
    moderation.publish(comment, actor=moderator, reason="false positive")
    moderation.remove(comment, actor=moderation.AUTHOR)

    steps = list(comment.events.values_list("from_status", "to_status"))

    assert steps == [
        ("", S.PENDING),
        (S.PENDING, S.HELD),
        (S.HELD, S.PUBLISHED),
        (S.PUBLISHED, S.SPAM),
        (S.SPAM, S.PUBLISHED),
        (S.PUBLISHED, S.REMOVED),
    ]
