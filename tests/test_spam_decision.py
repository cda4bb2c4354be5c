"""The decision table: local rules, each verdict, each header, each hold rule."""

from __future__ import annotations

import pytest

from comments.akismet_client import CheckResult
from comments.models import HoldReason, ModerationRules
from comments.rules import EffectiveRules
from comments.spam_check import MAX_RECHECK_AFTER_ROUNDS, decide
from tests.factories import published_comment, submit_comment

pytestmark = pytest.mark.django_db


def rules(**fields) -> EffectiveRules:
    ModerationRules.objects.all().delete()
    ModerationRules.objects.create(**fields)
    return EffectiveRules.load()


HAM = CheckResult(verdict="ham", guid="g" * 32)


@pytest.mark.parametrize(
    ("rule_fields", "comment_fields", "reason"),
    [
        ({"disallowed_words": "casino"}, {"body": "Best CASINO bonus"}, "disallowed_word"),
        ({"disallowed_words": "casino"}, {"author_name": "Casino King"}, "disallowed_word"),
        (
            {"disallowed_emails": "bad@spam.test"},
            {"author_email": "bad@spam.test"},
            "disallowed_email",
        ),
        ({"disallowed_emails": "@spam.test"}, {"author_email": "x@spam.test"}, "disallowed_email"),
        ({"disallowed_ips": "198.51.100.0/24"}, {"ip_address": "198.51.100.77"}, "disallowed_ip"),
        ({"disallowed_ips": "2001:db8::/32"}, {"ip_address": "2001:db8::1"}, "disallowed_ip"),
    ],
)
def test_local_rules_call_spam_without_akismet(rule_fields, comment_fields, reason):
    comment = submit_comment(**comment_fields)
    assert rules(**rule_fields).spam_reason(comment) == reason


def test_words_match_whole_words_only():
    comment = submit_comment(body="A classic assessment")
    assert rules(disallowed_words="ass\nclass ic").spam_reason(comment) is None


def test_a_clean_comment_passes_local_rules():
    comment = submit_comment(author_email="ok@example.com", ip_address="203.0.113.9")
    current = rules(
        disallowed_words="casino", disallowed_emails="@spam.test", disallowed_ips="10.0.0.0/8"
    )
    assert current.spam_reason(comment) is None


def test_ham_is_published():
    outcome = decide(submit_comment(), HAM, rules())
    assert (outcome.action, outcome.reason) == ("publish", "akismet_ham")
    assert outcome.fields["akismet_verdict"] == "ham"
    assert outcome.fields["akismet_guid"] == "g" * 32


def test_spam_goes_to_spam():
    outcome = decide(submit_comment(), CheckResult(verdict="spam"), rules())
    assert (outcome.action, outcome.reason) == ("mark_spam", "akismet_spam")
    assert "discarded" not in outcome.fields


def test_discard_is_spam_flagged_as_discarded():
    outcome = decide(submit_comment(), CheckResult(verdict="discard", pro_tip="discard"), rules())
    assert (outcome.action, outcome.reason) == ("mark_spam", "akismet_discard")
    assert outcome.fields["discarded"] is True
    assert outcome.fields["akismet_pro_tip"] == "discard"


@pytest.mark.parametrize(
    "result",
    [
        CheckResult(verdict="ham", error="suspended"),
        CheckResult(verdict="ham", alert_code="10402", alert_msg="suspended for non-payment"),
        CheckResult(verdict="spam", alert_code="10011", alert_msg="usage limit"),
    ],
)
def test_account_problems_hold_even_when_akismet_says_ham(result):
    outcome = decide(submit_comment(), result, rules())
    assert outcome.action == "hold"
    assert outcome.hold_reason == HoldReason.AKISMET_ACCOUNT
    assert outcome.fields["akismet_error"]


def test_recheck_after_keeps_the_comment_pending_until_then():
    comment = submit_comment()
    comment.check_attempts = 1
    outcome = decide(comment, CheckResult(verdict="ham", recheck_after=120), rules())
    assert outcome.action == "wait"
    assert outcome.fields["recheck_reason"] == "recheck"
    delay = (outcome.fields["next_check_at"] - outcome.fields["akismet_checked_at"]).total_seconds()
    assert delay == pytest.approx(120, abs=1)


def test_endless_recheck_after_ends_with_a_human():
    comment = submit_comment()
    comment.check_attempts = MAX_RECHECK_AFTER_ROUNDS
    outcome = decide(comment, CheckResult(verdict="ham", recheck_after=120), rules())
    assert outcome.action == "hold"
    assert outcome.hold_reason == HoldReason.CHECK_INCOMPLETE


def test_too_many_links_hold_ham(settings):
    settings.COMMENTS_MAX_LINKS = 2
    comment = submit_comment(body="see https://a.example and https://b.example")
    outcome = decide(comment, HAM, rules())
    assert (outcome.action, outcome.hold_reason) == ("hold", HoldReason.TOO_MANY_LINKS)


def test_one_link_below_the_limit_is_published(settings):
    settings.COMMENTS_MAX_LINKS = 2
    comment = submit_comment(body="see https://a.example")
    assert decide(comment, HAM, rules()).action == "publish"


def test_the_console_link_limit_overrides_the_environment(settings):
    settings.COMMENTS_MAX_LINKS = 2
    comment = submit_comment(body="see https://a.example")
    outcome = decide(comment, HAM, rules(max_links=1))
    assert outcome.hold_reason == HoldReason.TOO_MANY_LINKS


def test_a_moderation_word_holds_ham():
    comment = submit_comment(body="Is this a lawsuit waiting to happen?")
    outcome = decide(comment, HAM, rules(moderation_words="lawsuit"))
    assert (outcome.action, outcome.hold_reason) == ("hold", HoldReason.MODERATION_WORD)


def test_premoderation_all_holds_every_comment(settings):
    settings.COMMENTS_PREMODERATION = "all"
    outcome = decide(submit_comment(), HAM, rules())
    assert outcome.hold_reason == HoldReason.PREMODERATION


def test_premoderation_new_authors_holds_only_authors_without_an_approved_comment():
    current = rules(premoderation="new_authors")
    newcomer = submit_comment(author_email="new@example.com")
    assert decide(newcomer, HAM, current).hold_reason == HoldReason.NEW_AUTHOR

    published_comment(author_email="known@example.com")
    regular = submit_comment(author_email="known@example.com")
    assert decide(regular, HAM, current).action == "publish"


def test_a_disallowed_ip_rule_with_a_bad_line_still_applies_the_good_lines():
    comment = submit_comment(ip_address="198.51.100.5")
    assert rules(disallowed_ips="not-an-ip\n198.51.100.0/24").spam_reason(comment) == (
        "disallowed_ip"
    )
