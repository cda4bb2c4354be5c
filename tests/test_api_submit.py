"""Submitting a comment: POST /api/v1/articles/{slug}/comments/."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils.dateparse import parse_datetime

from comments import moderation, tokens
from comments.models import Comment, CommentEvent
from tests.factories import ArticleFactory, published_comment, submit_comment

pytestmark = pytest.mark.django_db

# An address of exactly 254 characters: 64 + "@" + 189.
EMAIL_254 = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"
EMAIL_255 = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".com"
URL_200 = "https://example.com/" + "p" * 180
URL_201 = URL_200 + "q"


def comments_url(article) -> str:
    return f"/api/v1/articles/{article.slug}/comments/"


def valid_payload(**overrides: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "author_name": "Grace Writer",
        "author_email": "grace@example.org",
        "body": "I enjoyed this piece.",
    }
    payload.update(overrides)
    return payload


def post_comment(api, article, payload, **extra):
    return api.post(comments_url(article), payload, format="json", **extra)


def post_raw(api, article, raw: str | bytes, **extra):
    return api.post(comments_url(article), raw, content_type="application/json", **extra)


def without(payload: dict[str, object], field: str) -> dict[str, object]:
    return {key: value for key, value in payload.items() if key != field}


class NothingWritten:
    """Snapshot of the comment tables, to assert that a refused request wrote nothing."""

    def __init__(self) -> None:
        self.comments = Comment.objects.count()
        self.events = CommentEvent.objects.count()

    def check(self) -> None:
        assert Comment.objects.count() == self.comments
        assert CommentEvent.objects.count() == self.events


def assert_refused_for(response, field: str, before: NothingWritten) -> None:
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field], response.json()
    assert isinstance(response.json()[field], list)
    assert response.json()[field], "the error names the field with a message"
    before.check()


# --- Accepted submissions -----------------------------------------------------


def test_it_accepts_a_comment_as_pending_with_an_edit_token(api, article, settings):
    response = post_comment(api, article, valid_payload())

    assert response.status_code == 202, response.content
    data = response.json()
    comment = Comment.objects.get()
    assert data["id"] == comment.pk
    assert data["status"] == "pending"
    assert data["parent"] is None
    assert data["author_name"] == "Grace Writer"
    assert data["author_url"] is None
    assert data["body_html"] == "<p>I enjoyed this piece.</p>"
    assert data["edited_at"] is None
    assert data["replies"] == []
    tokens.check_edit_token(data["edit_token"], comment.pk)  # raises unless valid for it
    expires_at = parse_datetime(data["edit_expires_at"])
    assert expires_at == comment.created_at + dt.timedelta(
        seconds=settings.COMMENTS_EDIT_WINDOW_SECONDS
    )
    assert comment.article == article
    assert comment.status == Comment.Status.PENDING
    assert comment.author_email == "grace@example.org"
    assert comment.body == "I enjoyed this piece."
    assert comment.parent is None
    assert comment.depth == 0


def test_the_edit_window_follows_the_setting(api, article, settings):
    settings.COMMENTS_EDIT_WINDOW_SECONDS = 90

    data = post_comment(api, article, valid_payload()).json()

    created_at = parse_datetime(data["created_at"])
    assert parse_datetime(data["edit_expires_at"]) - created_at == dt.timedelta(seconds=90)


def test_it_writes_exactly_one_event_from_nothing_to_pending(api, article):
    response = post_comment(api, article, valid_payload())

    events = list(CommentEvent.objects.all())
    assert len(events) == 1
    assert events[0].comment_id == response.json()["id"]
    assert events[0].from_status == ""
    assert events[0].to_status == "pending"
    assert events[0].actor_name == "author"


def test_it_stores_and_returns_an_http_author_url(api, article):
    response = post_comment(api, article, valid_payload(author_url="https://grace.example.org/"))

    assert response.status_code == 202
    assert response.json()["author_url"] == "https://grace.example.org/"
    assert Comment.objects.get().author_url == "https://grace.example.org/"


@pytest.mark.parametrize("empty_url", ["", None])
def test_an_empty_author_url_is_stored_as_no_url(api, article, empty_url):
    response = post_comment(api, article, valid_payload(author_url=empty_url))

    assert response.status_code == 202
    assert response.json()["author_url"] is None
    assert Comment.objects.get().author_url == ""


def test_a_url_of_200_characters_is_accepted(api, article):
    response = post_comment(api, article, valid_payload(author_url=URL_200))

    assert response.status_code == 202, response.content
    assert Comment.objects.get().author_url == URL_200


def test_an_email_of_254_characters_is_accepted(api, article):
    assert len(EMAIL_254) == 254

    response = post_comment(api, article, valid_payload(author_email=EMAIL_254))

    assert response.status_code == 202, response.content
    assert Comment.objects.get().author_email == EMAIL_254


def test_a_name_of_100_characters_is_accepted(api, article):
    response = post_comment(api, article, valid_payload(author_name="n" * 100))

    assert response.status_code == 202, response.content
    assert Comment.objects.get().author_name == "n" * 100


def test_a_body_of_10000_characters_is_stored_whole(api, article):
    body = "x" * 9_999 + "y"

    response = post_comment(api, article, valid_payload(body=body))

    assert response.status_code == 202, response.content
    stored = Comment.objects.get().body
    assert stored == body
    assert len(stored) == 10_000


def test_a_body_of_10000_non_ascii_characters_is_stored_whole(api, article):
    body = "é" * 10_000

    response = post_comment(api, article, valid_payload(body=body))

    assert response.status_code == 202, response.content
    assert Comment.objects.get().body == body


def test_surrounding_whitespace_does_not_count_towards_the_body_limit(api, article):
    body = "z" * 10_000

    response = post_comment(api, article, valid_payload(body=f"  \n{body}\n\t "))

    assert response.status_code == 202, response.content
    assert Comment.objects.get().body == body


def test_unknown_fields_are_ignored(api, article):
    payload = valid_payload(
        status="published",
        ip_address="192.0.2.99",
        user_agent="Forged/1.0",
        id=424242,
        depth=7,
        author_is_admin=True,
    )

    response = post_comment(api, article, payload, REMOTE_ADDR="198.51.100.5")

    assert response.status_code == 202, response.content
    comment = Comment.objects.get()
    assert response.json()["status"] == "pending"
    assert comment.status == Comment.Status.PENDING
    assert comment.pk != 424242
    assert comment.depth == 0
    assert comment.ip_address == "198.51.100.5"
    assert comment.user_agent != "Forged/1.0"


# --- Replies ------------------------------------------------------------------


def test_a_reply_to_a_published_comment_is_attached_to_it(api, article):
    parent = published_comment(article)

    response = post_comment(api, article, valid_payload(parent=parent.pk))

    assert response.status_code == 202, response.content
    assert response.json()["parent"] == parent.pk
    reply = Comment.objects.get(pk=response.json()["id"])
    assert reply.parent_id == parent.pk
    assert reply.thread_id == parent.pk
    assert reply.depth == 1


def test_a_reply_to_a_reply_belongs_to_the_top_level_thread(api, article):
    top = published_comment(article)
    first_reply = published_comment(article, parent_id=top.pk)

    response = post_comment(api, article, valid_payload(parent=first_reply.pk))

    assert response.status_code == 202, response.content
    reply = Comment.objects.get(pk=response.json()["id"])
    assert reply.parent_id == first_reply.pk
    assert reply.thread_id == top.pk
    assert reply.depth == 2


def test_a_reply_deeper_than_the_maximum_depth_attaches_at_the_deepest_level(
    api, article, settings
):
    settings.COMMENTS_MAX_DEPTH = 2
    top = published_comment(article)
    level_1 = published_comment(article, parent_id=top.pk)
    level_2 = published_comment(article, parent_id=level_1.pk)
    assert level_2.depth == 2

    response = post_comment(api, article, valid_payload(parent=level_2.pk))

    assert response.status_code == 202, response.content
    reply = Comment.objects.get(pk=response.json()["id"])
    assert response.json()["parent"] == level_1.pk
    assert reply.parent_id == level_1.pk
    assert reply.depth == 2
    assert reply.thread_id == top.pk


def test_with_a_maximum_depth_of_one_replies_to_replies_become_siblings(api, article, settings):
    settings.COMMENTS_MAX_DEPTH = 1
    top = published_comment(article)
    reply = published_comment(article, parent_id=top.pk)

    response = post_comment(api, article, valid_payload(parent=reply.pk))

    assert response.status_code == 202, response.content
    created = Comment.objects.get(pk=response.json()["id"])
    assert created.parent_id == top.pk
    assert created.depth == 1


def test_a_reply_to_an_over_deep_comment_still_attaches_at_the_deepest_level(
    api, article, settings
):
    """Comments nested before the limit was lowered do not let new ones go deeper."""
    settings.COMMENTS_MAX_DEPTH = 3
    top = published_comment(article)
    level_1 = published_comment(article, parent_id=top.pk)
    level_2 = published_comment(article, parent_id=level_1.pk)
    level_3 = published_comment(article, parent_id=level_2.pk)
    settings.COMMENTS_MAX_DEPTH = 1

    response = post_comment(api, article, valid_payload(parent=level_3.pk))

    assert response.status_code == 202, response.content
    created = Comment.objects.get(pk=response.json()["id"])
    assert created.parent_id == top.pk
    assert created.depth == 1


# --- Refused input: 400 naming the field, nothing written -----------------------

BAD_FIELDS = [
    pytest.param("author_name", {"author_name": ""}, id="name-empty"),
    pytest.param("author_name", {"author_name": "   \t "}, id="name-whitespace"),
    pytest.param("author_name", {"author_name": "n" * 101}, id="name-101-chars"),
    pytest.param("author_name", {"author_name": None}, id="name-null"),
    pytest.param("author_name", {"author_name": "Ada\x00"}, id="name-nul"),
    pytest.param("author_email", {"author_email": "not-an-email"}, id="email-invalid"),
    pytest.param("author_email", {"author_email": "ada@"}, id="email-no-domain"),
    pytest.param("author_email", {"author_email": ""}, id="email-empty"),
    pytest.param("author_email", {"author_email": EMAIL_255}, id="email-255-chars"),
    pytest.param("author_url", {"author_url": "javascript:alert(1)"}, id="url-javascript"),
    pytest.param(
        "author_url", {"author_url": "javascript://example.com/%0aalert(1)"}, id="url-js-slashes"
    ),
    pytest.param("author_url", {"author_url": "ftp://files.example.com/x"}, id="url-ftp"),
    pytest.param("author_url", {"author_url": "data:text/html,hi"}, id="url-data"),
    pytest.param("author_url", {"author_url": "not a url"}, id="url-garbage"),
    pytest.param("author_url", {"author_url": URL_201}, id="url-201-chars"),
    pytest.param("body", {"body": ""}, id="body-empty"),
    pytest.param("body", {"body": " \n\t\r\n  "}, id="body-whitespace"),
    pytest.param("body", {"body": "x" * 10_001}, id="body-10001-chars"),
    pytest.param("body", {"body": "  " + "x" * 10_001 + "  "}, id="body-10001-after-trim"),
    pytest.param("body", {"body": "hello\x00world"}, id="body-nul"),
    pytest.param("body", {"body": None}, id="body-null"),
    pytest.param("body", {"body": ["a", "list"]}, id="body-list"),
    pytest.param("parent", {"parent": "abc"}, id="parent-not-integer"),
    pytest.param("parent", {"parent": 1.5}, id="parent-fraction"),
    pytest.param("parent", {"parent": 0}, id="parent-zero"),
    pytest.param("parent", {"parent": -3}, id="parent-negative"),
    pytest.param("parent", {"parent": 10**30}, id="parent-huge"),
    pytest.param("parent", {"parent": 2**63}, id="parent-just-over-bigint"),
    pytest.param("parent", {"parent": 999_999_999}, id="parent-nonexistent"),
]


@pytest.mark.parametrize(("field", "overrides"), BAD_FIELDS)
def test_bad_input_is_refused_naming_the_field(api, article, field, overrides):
    before = NothingWritten()

    response = post_comment(api, article, valid_payload(**overrides))

    assert_refused_for(response, field, before)


@pytest.mark.parametrize("field", ["author_name", "author_email", "body"])
def test_a_missing_required_field_is_refused_naming_it(api, article, field):
    before = NothingWritten()

    response = post_comment(api, article, without(valid_payload(), field))

    assert_refused_for(response, field, before)


@pytest.mark.parametrize(
    ("field", "escaped_value"),
    [
        pytest.param("body", "bad \\ud800 text", id="body"),
        pytest.param("body", "\\udfff", id="body-low-surrogate"),
        pytest.param("author_name", "Ada \\udc00", id="name"),
        pytest.param("author_url", "https://example.com/\\ud800", id="url"),
        pytest.param("author_email", "ada@ex\\ud800ample.com", id="email-domain"),
        pytest.param("author_email", "ada\\ud800@example.com", id="email-local"),
    ],
)
def test_a_lone_surrogate_is_refused_naming_the_field(api, article, field, escaped_value):
    fields = {
        "author_name": "Grace Writer",
        "author_email": "grace@example.org",
        "body": "Fine text.",
    }
    fields[field] = "@@VALUE@@"
    raw = json.dumps(fields).replace("@@VALUE@@", escaped_value)
    assert "\\ud" in raw  # the surrogate travels as a JSON escape
    before = NothingWritten()

    response = post_raw(api, article, raw)

    assert_refused_for(response, field, before)


def test_a_pending_parent_is_refused(api, article):
    parent = submit_comment(article)
    before = NothingWritten()

    response = post_comment(api, article, valid_payload(parent=parent.pk))

    assert_refused_for(response, "parent", before)


@pytest.mark.parametrize("action", ["hold", "mark_spam", "reject", "remove"])
def test_a_parent_that_is_not_published_is_refused(api, article, action):
    parent = published_comment(article)
    if action == "hold":
        moderation.hold(parent, actor=moderation.SYSTEM, reason="test")
    else:
        getattr(moderation, action)(parent, actor=moderation.SYSTEM)
    before = NothingWritten()

    response = post_comment(api, article, valid_payload(parent=parent.pk))

    assert_refused_for(response, "parent", before)


def test_a_parent_of_another_article_is_refused(api, article):
    parent = published_comment(ArticleFactory())
    before = NothingWritten()

    response = post_comment(api, article, valid_payload(parent=parent.pk))

    assert_refused_for(response, "parent", before)


def test_a_refused_parent_gets_the_same_answer_whether_it_exists_or_not(api, article):
    pending = submit_comment(article)
    elsewhere = published_comment(ArticleFactory())
    missing_id = max(pending.pk, elsewhere.pk) + 1000

    answers = [
        post_comment(api, article, valid_payload(parent=parent_id)).json()
        for parent_id in (pending.pk, elsewhere.pk, missing_id)
    ]

    assert answers[0] == answers[1] == answers[2]


# --- Refused requests -------------------------------------------------------------


def test_an_unknown_article_is_404(api):
    before = NothingWritten()

    response = api.post(
        "/api/v1/articles/no-such-article/comments/", valid_payload(), format="json"
    )

    assert response.status_code == 404
    assert "detail" in response.json()
    before.check()


def test_a_closed_article_refuses_comments_with_403(api):
    article = ArticleFactory(comments_open=False)
    before = NothingWritten()

    response = post_comment(api, article, valid_payload())

    assert response.status_code == 403
    assert "closed" in response.json()["detail"].lower()
    before.check()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param('{"author_name": "Ada", "body": ', id="truncated"),
        pytest.param("{'author_name': 'Ada'}", id="single-quotes"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param("NaN", id="nan"),
    ],
)
def test_malformed_json_is_400(api, article, raw):
    before = NothingWritten()

    response = post_raw(api, article, raw)

    assert response.status_code == 400, response.content
    assert "detail" in response.json()
    before.check()


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz", "text/plain"],
)
def test_a_body_that_is_not_json_is_415(api, article, content_type):
    before = NothingWritten()

    response = api.post(
        comments_url(article),
        "author_name=Ada&author_email=ada%40example.com&body=Hi",
        content_type=content_type,
    )

    assert response.status_code == 415
    assert "detail" in response.json()
    before.check()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("[]", id="array"),
        pytest.param('"a string"', id="string"),
        pytest.param("null", id="null"),
    ],
)
def test_json_that_is_not_an_object_is_400(api, article, raw):
    before = NothingWritten()

    response = post_raw(api, article, raw)

    assert response.status_code == 400, response.content
    before.check()


def test_a_body_over_the_request_size_limit_is_413_json(api, article, settings):
    limit = settings.COMMENTS_MAX_REQUEST_BYTES
    payload = valid_payload(body="x" * (limit + 1))
    before = NothingWritten()

    response = post_comment(api, article, payload)

    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert str(limit) in response.json()["detail"]
    before.check()


def test_the_request_size_limit_is_exact(api, article, settings):
    raw = json.dumps(valid_payload()).encode()
    settings.COMMENTS_MAX_REQUEST_BYTES = len(raw) - 1
    before = NothingWritten()

    refused = post_raw(api, article, raw)

    assert refused.status_code == 413
    before.check()

    settings.COMMENTS_MAX_REQUEST_BYTES = len(raw)
    accepted = post_raw(api, article, raw)

    assert accepted.status_code == 202, accepted.content
    assert Comment.objects.count() == before.comments + 1


def test_an_invalid_content_length_is_400(api, article):
    before = NothingWritten()

    response = post_raw(api, article, json.dumps(valid_payload()), CONTENT_LENGTH="lots")

    assert response.status_code == 400
    assert response.json()["detail"]
    before.check()


# --- What is recorded about the request ---------------------------------------------


def test_it_stores_the_ip_user_agent_and_referrer_of_the_request(api, article):
    response = post_comment(
        api,
        article,
        valid_payload(),
        REMOTE_ADDR="198.51.100.23",
        HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux) Reader/1.0",
        HTTP_REFERER="https://news.example.com/story/",
    )

    assert response.status_code == 202
    comment = Comment.objects.get()
    assert comment.ip_address == "198.51.100.23"
    assert comment.user_agent == "Mozilla/5.0 (X11; Linux) Reader/1.0"
    assert comment.referrer == "https://news.example.com/story/"


def test_an_overlong_user_agent_is_cut_to_the_column_size(api, article):
    response = post_comment(api, article, valid_payload(), HTTP_USER_AGENT="U" * 2_000)

    assert response.status_code == 202
    assert Comment.objects.get().user_agent == "U" * 500


def test_x_forwarded_for_is_ignored_without_trusted_proxies(api, article, settings):
    settings.COMMENTS_TRUSTED_PROXIES = 0

    post_comment(
        api,
        article,
        valid_payload(),
        REMOTE_ADDR="198.51.100.23",
        HTTP_X_FORWARDED_FOR="203.0.113.99",
    )

    assert Comment.objects.get().ip_address == "198.51.100.23"


def test_x_forwarded_for_is_honoured_through_one_trusted_proxy(api, article, settings):
    settings.COMMENTS_TRUSTED_PROXIES = 1

    post_comment(
        api,
        article,
        valid_payload(),
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="203.0.113.99",
    )

    assert Comment.objects.get().ip_address == "203.0.113.99"


def test_a_client_cannot_spoof_its_address_through_one_trusted_proxy(api, article, settings):
    """The proxy appends the address it saw; anything left of it came from the client."""
    settings.COMMENTS_TRUSTED_PROXIES = 1

    post_comment(
        api,
        article,
        valid_payload(),
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="192.0.2.66, 203.0.113.99",
    )

    assert Comment.objects.get().ip_address == "203.0.113.99"


def test_a_garbage_forwarded_address_falls_back_to_the_peer(api, article, settings):
    settings.COMMENTS_TRUSTED_PROXIES = 1

    post_comment(
        api,
        article,
        valid_payload(),
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="not-an-ip",
    )

    assert Comment.objects.get().ip_address == "10.0.0.2"
