"""Our Akismet wrapper against the stand-in: what is sent, and how answers map."""

from __future__ import annotations

import pytest

from comments import akismet_client
from comments.akismet_client import AkismetKeyInvalid, AkismetUnavailable
from tests.factories import ArticleFactory, published_comment, submit_comment

pytestmark = pytest.mark.django_db


def payload(**overrides):
    base = {
        "user_ip": "203.0.113.7",
        "comment_author": "Ada",
        "comment_content": "Nice article",
        "is_test": True,
    }
    base.update(overrides)
    return base


def test_it_sends_every_field_akismet_can_use(standin):
    article = ArticleFactory(url="https://news.example.com/zte/")
    parent = published_comment(article)
    reply = submit_comment(article, parent_id=parent.pk, author_url="https://ada.example/")
    sent = akismet_client.build_payload(reply, recheck_reason="edit")
    akismet_client.comment_check(sent)

    params = standin.state.requests_to("comment-check")[0]["params"]
    assert params["user_ip"] == "203.0.113.7"
    assert params["user_agent"] == "Mozilla/5.0 (tests)"
    assert params["referrer"] == "https://news.example.com/"
    assert params["permalink"] == "https://news.example.com/zte/"
    assert params["comment_type"] == "reply"
    assert params["comment_author"] == "Ada Reader"
    assert params["comment_author_email"] == "ada@example.com"
    assert params["comment_author_url"] == "https://ada.example/"
    assert params["comment_content"] == reply.body
    assert params["comment_date_gmt"].endswith("+00:00")
    assert params["comment_post_modified_gmt"].endswith("+00:00")
    assert params["blog_lang"] == "en"
    assert params["blog_charset"] == "UTF-8"
    assert params["is_test"] == "true"
    assert params["recheck_reason"] == "edit"
    assert params["blog"] == "https://news.example.com/"
    assert params["api_key"] != "test-key-123", "the request log masks the key"


def test_a_top_level_comment_is_a_comment_and_a_first_check_has_no_recheck_reason(standin):
    sent = akismet_client.build_payload(submit_comment())
    assert sent["comment_type"] == "comment"
    assert "recheck_reason" not in sent


def test_it_sends_our_user_agent(standin):
    akismet_client.comment_check(payload())
    agent = standin.state.requests_to("comment-check")[0]["user_agent"]
    assert agent.startswith("comments-backend/") and "akismet.py/" in agent


@pytest.mark.parametrize(
    ("fields", "verdict"),
    [
        ({}, "ham"),
        ({"comment_author": "akismet-guaranteed-spam"}, "spam"),
        ({"comment_content": "cheap pills [[discard]]"}, "discard"),
    ],
)
def test_verdicts_map_to_ham_spam_and_discard(standin, fields, verdict):
    result = akismet_client.comment_check(payload(**fields))
    assert result.verdict == verdict
    assert len(result.guid) == 32


def test_it_keeps_the_headers_the_library_drops(standin):
    result = akismet_client.comment_check(
        payload(comment_content="hello [[recheck-after:90]] [[alert:10011]] [[error:suspended]]")
    )
    assert result.verdict == "ham"
    assert result.recheck_after == 90
    assert result.alert_code == "10011"
    assert result.error == "suspended"
    assert result.account_problem


def test_a_suspended_key_is_an_account_problem_although_the_body_says_ham(standin):
    standin.state.keys["test-key-123"] = "suspended:10402"
    result = akismet_client.comment_check(payload())
    assert result.verdict == "ham"
    assert result.alert_code == "10402"
    assert result.account_problem


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 503},
        {"kind": "status", "status": 500},
        {"kind": "status", "status": 429},
        {"kind": "status", "status": 302},
        {"kind": "body", "body": "maybe"},
        {"kind": "body", "body": "false\n"},
        {"kind": "body", "body": ""},
        {"kind": "reset"},
        {"kind": "hang", "seconds": 2},
    ],
    ids=lambda fault: "-".join(str(v) for v in fault.values()),
)
def test_unusable_answers_are_one_retryable_error(standin, fault):
    standin.state.add_fault(fault)
    with pytest.raises(AkismetUnavailable):
        akismet_client.comment_check(payload())


def test_a_refused_connection_is_retryable(settings, standin):
    settings.AKISMET_API_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    with pytest.raises(AkismetUnavailable):
        akismet_client.comment_check(payload())


def test_an_invalid_key_is_not_retryable(standin):
    standin.state.keys.clear()
    with pytest.raises(AkismetKeyInvalid):
        akismet_client.comment_check(payload())
    assert akismet_client.verify_key() is False


def test_a_missing_key_is_an_invalid_key(settings, standin):
    settings.AKISMET_API_KEY = ""
    with pytest.raises(AkismetKeyInvalid):
        akismet_client.comment_check(payload())


def test_verify_key_accepts_the_configured_key(standin):
    assert akismet_client.verify_key() is True


def test_feedback_reaches_submit_ham_and_submit_spam(standin):
    akismet_client.submit_ham(payload())
    akismet_client.submit_spam(payload())
    assert len(standin.state.requests_to("submit-ham")) == 1
    assert len(standin.state.requests_to("submit-spam")) == 1
