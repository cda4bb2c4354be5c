"""Figures the console and the API share; regressions found in review."""

from __future__ import annotations

import pytest

from comments import moderation, spam_check, stats
from tests.factories import UserFactory, submit_comment

pytestmark = pytest.mark.django_db


def moderator():
    return moderation.Actor.for_user(UserFactory())


def test_agreement_counts_only_comments_whose_latest_change_was_a_person(standin):
    comment = submit_comment(author_name="akismet-guaranteed-spam")
    spam_check.check(comment.pk)
    comment.refresh_from_db()
    moderation.publish(comment, actor=moderator())  # a false positive
    assert stats.akismet_agreement()["false_positives"] == 1

    moderation.edit(comment, body="edited")  # the author edits; the check decides again
    spam_check.check(comment.pk)
    table = stats.akismet_agreement()
    assert table["decided"] == 0


def test_agreement_figures_add_up(standin):
    ham, spam = submit_comment(), submit_comment(author_name="akismet-guaranteed-spam")
    for comment in (ham, spam):
        spam_check.check(comment.pk)
        comment.refresh_from_db()
    moderation.mark_spam(ham, actor=moderator())  # Akismet missed it
    moderation.reject(spam, actor=moderator())  # agrees it is not fit
    table = stats.akismet_agreement()
    assert table["false_negatives"] == 1
    assert table["agree_spam"] == 1
    assert table["decided"] == 2
    assert table["agreement"] == 0.5


def test_publishing_discarded_spam_clears_the_discard_flag(standin):
    comment = submit_comment(body="pills [[discard]]")
    spam_check.check(comment.pk)
    comment.refresh_from_db()
    assert comment.discarded
    moderation.publish(comment, actor=moderator())
    comment.refresh_from_db()
    assert comment.discarded is False


def test_a_moderators_decision_becomes_the_decision_reason(standin):
    comment = submit_comment()
    spam_check.check(comment.pk)
    comment.refresh_from_db()
    assert comment.decision_reason == "akismet_ham"
    moderation.reject(comment, actor=moderator())
    comment.refresh_from_db()
    assert comment.decision_reason == "moderator"
