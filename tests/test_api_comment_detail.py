"""One comment: GET, PATCH and DELETE /api/v1/comments/{id}/ (the author's token)."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from django.core import signing
from django.utils.dateparse import parse_datetime

from comments import moderation, tokens
from comments.models import Comment, CommentEvent
from tests.factories import ArticleFactory, published_comment, submit_comment

pytestmark = pytest.mark.django_db

TOKEN_HEADER = "HTTP_X_COMMENT_TOKEN"


def detail_url(comment_or_id: Comment | int) -> str:
    pk = comment_or_id.pk if isinstance(comment_or_id, Comment) else comment_or_id
    return f"/api/v1/comments/{pk}/"


def with_token(token: str) -> dict[str, str]:
    return {TOKEN_HEADER: token}


def token_for(comment: Comment) -> str:
    return tokens.make_edit_token(comment.pk)


def token_issued_ago(comment: Comment, seconds: float, monkeypatch) -> str:
    """A token for `comment` as if it had been issued `seconds` ago.

    TimestampSigner stamps tokens with `time.time()` of django.core.signing's
    `time` module; it is patched only while the token is made.
    """
    issued = time.time() - seconds
    with monkeypatch.context() as patch:
        patch.setattr(signing.time, "time", lambda: issued)
        return tokens.make_edit_token(comment.pk)


def tampered(token: str) -> str:
    """The same token with the last character of its signature changed."""
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


def missing_id() -> int:
    last = Comment.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    return last + 1000


def make_held(article=None) -> Comment:
    comment = submit_comment(article)
    moderation.hold(comment, actor=moderation.SYSTEM, reason="test")
    return comment


def make_spam(article=None) -> Comment:
    comment = submit_comment(article)
    moderation.mark_spam(comment, actor=moderation.SYSTEM)
    return comment


def make_rejected(article=None) -> Comment:
    comment = submit_comment(article)
    moderation.reject(comment, actor=moderation.SYSTEM)
    return comment


def make_removed(article=None) -> Comment:
    comment = published_comment(article)
    moderation.remove(comment, actor=moderation.SYSTEM)
    return comment


UNPUBLISHED = {
    "pending": submit_comment,
    "held": make_held,
    "spam": make_spam,
    "rejected": make_rejected,
    "removed": make_removed,
}


class Unchanged:
    """A snapshot of one comment and the audit trail, to assert that a refusal changed nothing."""

    FIELDS = ("status", "body", "body_html", "edited_at", "author_name", "held_reason")

    def __init__(self, comment: Comment) -> None:
        self.pk = comment.pk
        self.row = self._row()
        self.events = CommentEvent.objects.count()
        self.comments = Comment.objects.count()

    def _row(self) -> dict[str, object]:
        return Comment.objects.filter(pk=self.pk).values(*self.FIELDS).get()

    def check(self) -> None:
        assert self._row() == self.row
        assert CommentEvent.objects.count() == self.events
        assert Comment.objects.count() == self.comments


# --- Reading ------------------------------------------------------------------------------


def test_a_published_comment_is_visible_to_anyone(api):
    comment = published_comment(body="Public words.", author_name="Ada")

    response = api.get(detail_url(comment))

    assert response.status_code == 200
    data = response.json()
    assert data["id"] == comment.pk
    assert data["author_name"] == "Ada"
    assert data["body_html"] == "<p>Public words.</p>"
    assert data["parent"] is None
    assert data["removed"] is False
    assert "status" not in data
    assert "edit_token" not in data


def test_a_published_reply_names_its_parent(api):
    top = published_comment()
    reply = published_comment(top.article, parent_id=top.pk)

    response = api.get(detail_url(reply))

    assert response.status_code == 200
    assert response.json()["parent"] == top.pk


@pytest.mark.parametrize("status", list(UNPUBLISHED))
def test_an_unpublished_comment_is_404_exactly_like_a_missing_one(api, status):
    comment = UNPUBLISHED[status]()
    missing = api.get(detail_url(missing_id()))

    response = api.get(detail_url(comment))

    assert missing.status_code == 404
    assert response.status_code == 404
    assert response.content == missing.content
    assert response["Content-Type"] == missing["Content-Type"]


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_a_huge_id_is_404_not_500(api, method):
    comment = submit_comment()

    response = getattr(api, method)(
        "/api/v1/comments/99999999999999999999999/",
        {"body": "x"} if method == "patch" else None,
        format="json",
        **with_token(token_for(comment)),
    )

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("status", ["pending", "held"])
def test_the_author_sees_their_own_unpublished_comment_with_its_status(api, status):
    comment = UNPUBLISHED[status]()

    response = api.get(detail_url(comment), **with_token(token_for(comment)))

    assert response.status_code == 200
    data = response.json()
    assert data["id"] == comment.pk
    assert data["status"] == status
    assert data["body_html"] == comment.body_html
    assert parse_datetime(data["edit_expires_at"]) == moderation.edit_expires_at(comment)


def test_the_author_sees_the_status_of_their_published_comment(api):
    comment = published_comment()

    response = api.get(detail_url(comment), **with_token(token_for(comment)))

    assert response.status_code == 200
    assert response.json()["status"] == "published"


def test_the_token_of_another_comment_does_not_reveal_a_pending_one(api):
    article = ArticleFactory()
    pending = submit_comment(article)
    other = submit_comment(article)
    missing = api.get(detail_url(missing_id()))

    response = api.get(detail_url(pending), **with_token(token_for(other)))

    assert response.status_code == 404
    assert response.content == missing.content


def test_a_tampered_token_does_not_reveal_a_pending_one(api):
    pending = submit_comment()
    missing = api.get(detail_url(missing_id()))

    response = api.get(detail_url(pending), **with_token(tampered(token_for(pending))))

    assert response.status_code == 404
    assert response.content == missing.content


def test_a_token_from_another_signer_is_worthless(api):
    pending = submit_comment()
    forged = signing.TimestampSigner().sign(str(pending.pk))  # right value, wrong salt

    response = api.get(detail_url(pending), **with_token(forged))

    assert response.status_code == 404


def test_a_wrong_token_on_a_published_comment_shows_only_the_public_view(api):
    comment = published_comment()
    other = submit_comment(comment.article)

    response = api.get(detail_url(comment), **with_token(token_for(other)))

    assert response.status_code == 200
    assert "status" not in response.json()


# --- Editing ------------------------------------------------------------------------------


def test_the_author_edits_a_published_comment_which_goes_back_to_pending(api):
    comment = published_comment(body="First version.")

    response = api.patch(
        detail_url(comment),
        {"body": "Second version, with https://example.org/ in it."},
        format="json",
        **with_token(token_for(comment)),
    )

    assert response.status_code == 202, response.content
    data = response.json()
    assert data["status"] == "pending"
    assert "Second version" in data["body_html"]
    assert 'href="https://example.org/"' in data["body_html"]
    assert data["edited_at"] is not None
    comment.refresh_from_db()
    assert comment.status == Comment.Status.PENDING
    assert comment.body == "Second version, with https://example.org/ in it."
    assert comment.body_html == data["body_html"]
    assert comment.edited_at is not None
    assert parse_datetime(data["edited_at"]) == comment.edited_at
    event = CommentEvent.objects.filter(comment=comment).order_by("-pk").first()
    assert event.from_status == "published"
    assert event.to_status == "pending"
    assert event.actor_name == "author"


def test_an_edited_comment_leaves_the_public_list_until_it_is_checked_again(api):
    comment = published_comment(body="Original.")

    api.patch(
        detail_url(comment), {"body": "Edited."}, format="json", **with_token(token_for(comment))
    )

    listing = api.get(f"/api/v1/articles/{comment.article.slug}/comments/").json()
    assert listing["results"] == []
    assert listing["count"] == 0
    assert api.get(detail_url(comment)).status_code == 404


def test_the_author_edits_a_pending_comment(api):
    comment = submit_comment(body="Typo here.")

    response = api.patch(
        detail_url(comment), {"body": "No typo."}, format="json", **with_token(token_for(comment))
    )

    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending"
    comment.refresh_from_db()
    assert comment.status == Comment.Status.PENDING
    assert comment.body == "No typo."
    assert comment.body_html == "<p>No typo.</p>"
    assert comment.edited_at is not None
    event = CommentEvent.objects.filter(comment=comment).order_by("-pk").first()
    assert (event.from_status, event.to_status, event.reason) == ("pending", "pending", "edit")


def test_the_author_edits_a_held_comment_which_goes_back_to_pending(api):
    comment = make_held()

    response = api.patch(
        detail_url(comment), {"body": "Reworded."}, format="json", **with_token(token_for(comment))
    )

    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending"
    comment.refresh_from_db()
    assert comment.status == Comment.Status.PENDING
    assert comment.body == "Reworded."
    event = CommentEvent.objects.filter(comment=comment).order_by("-pk").first()
    assert (event.from_status, event.to_status, event.actor_name) == ("held", "pending", "author")


def test_an_edit_body_of_10000_characters_is_stored_whole(api):
    comment = submit_comment()
    body = "w" * 10_000

    response = api.patch(
        detail_url(comment), {"body": body}, format="json", **with_token(token_for(comment))
    )

    assert response.status_code == 202, response.content
    comment.refresh_from_db()
    assert comment.body == body


def test_unknown_fields_in_an_edit_are_ignored(api):
    comment = published_comment(author_name="Ada")

    response = api.patch(
        detail_url(comment),
        {"body": "Edited.", "status": "published", "author_name": "Mallory"},
        format="json",
        **with_token(token_for(comment)),
    )

    assert response.status_code == 202
    comment.refresh_from_db()
    assert comment.status == Comment.Status.PENDING
    assert comment.author_name == "Ada"


BAD_BODIES = [
    pytest.param({"body": ""}, id="empty"),
    pytest.param({"body": "   \n\t "}, id="whitespace"),
    pytest.param({"body": "x" * 10_001}, id="10001-chars"),
    pytest.param({"body": " " + "x" * 10_001 + " "}, id="10001-after-trim"),
    pytest.param({"body": "nul\x00char"}, id="nul"),
    pytest.param({"body": None}, id="null"),
    pytest.param({}, id="missing"),
    pytest.param({"text": "wrong field"}, id="wrong-field"),
]


@pytest.mark.parametrize("payload", BAD_BODIES)
def test_a_bad_edit_is_400_naming_body_and_changes_nothing(api, payload):
    comment = published_comment()
    before = Unchanged(comment)

    response = api.patch(
        detail_url(comment), payload, format="json", **with_token(token_for(comment))
    )

    assert response.status_code == 400, response.content
    assert list(response.json()) == ["body"]
    before.check()


def test_an_edit_with_a_lone_surrogate_is_400_naming_body(api):
    comment = published_comment()
    before = Unchanged(comment)

    response = api.patch(
        detail_url(comment),
        '{"body": "half a pair: \\ud83d"}',
        content_type="application/json",
        **with_token(token_for(comment)),
    )

    assert response.status_code == 400, response.content
    assert list(response.json()) == ["body"]
    before.check()


def test_a_malformed_json_edit_is_400_and_changes_nothing(api):
    comment = published_comment()
    before = Unchanged(comment)

    response = api.patch(
        detail_url(comment),
        '{"body": ',
        content_type="application/json",
        **with_token(token_for(comment)),
    )

    assert response.status_code == 400
    before.check()


def test_an_oversized_edit_is_413_and_changes_nothing(api, settings):
    comment = published_comment()
    before = Unchanged(comment)
    raw = json.dumps({"body": "x" * (settings.COMMENTS_MAX_REQUEST_BYTES + 1)})

    response = api.patch(
        detail_url(comment), raw, content_type="application/json", **with_token(token_for(comment))
    )

    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    before.check()


def test_an_edit_of_a_spam_comment_is_refused_with_409(api):
    comment = make_spam()
    before = Unchanged(comment)

    response = api.patch(
        detail_url(comment),
        {"body": "Innocent now."},
        format="json",
        **with_token(token_for(comment)),
    )

    assert response.status_code == 409
    before.check()


# --- Deleting ----------------------------------------------------------------------------------


def test_the_author_deletes_their_comment(api):
    comment = published_comment()

    response = api.delete(detail_url(comment), **with_token(token_for(comment)))

    assert response.status_code == 204
    assert response.content == b""
    comment.refresh_from_db()
    assert comment.status == Comment.Status.REMOVED
    event = CommentEvent.objects.filter(comment=comment).order_by("-pk").first()
    assert event.from_status == "published"
    assert event.to_status == "removed"
    assert event.actor_name == "author"
    assert api.get(detail_url(comment)).status_code == 404


def test_the_author_deletes_a_pending_comment(api):
    comment = submit_comment()

    response = api.delete(detail_url(comment), **with_token(token_for(comment)))

    assert response.status_code == 204
    comment.refresh_from_db()
    assert comment.status == Comment.Status.REMOVED


def test_deleting_twice_writes_one_event(api):
    comment = published_comment()
    token = token_for(comment)
    api.delete(detail_url(comment), **with_token(token))
    events = CommentEvent.objects.filter(comment=comment).count()

    response = api.delete(detail_url(comment), **with_token(token))

    assert response.status_code == 204
    assert CommentEvent.objects.filter(comment=comment).count() == events


def test_replies_stay_when_their_parent_is_deleted(api):
    top = published_comment(body="To be deleted.")
    reply = published_comment(top.article, parent_id=top.pk, body="A reply.")

    api.delete(detail_url(top), **with_token(token_for(top)))

    reply.refresh_from_db()
    assert reply.status == Comment.Status.PUBLISHED
    assert api.get(detail_url(reply)).status_code == 200
    listing = api.get(f"/api/v1/articles/{top.article.slug}/comments/").json()
    (placeholder,) = listing["results"]
    assert placeholder["id"] == top.pk
    assert placeholder["removed"] is True
    assert placeholder["body_html"] == ""
    assert [r["id"] for r in placeholder["replies"]] == [reply.pk]


# --- Refusals that change nothing ---------------------------------------------------------------


def request_with(api, method: str, comment: Comment, headers: dict[str, str]):
    if method == "patch":
        return api.patch(detail_url(comment), {"body": "Hijacked."}, format="json", **headers)
    return api.delete(detail_url(comment), **headers)


def no_token(comment: Comment, monkeypatch, settings) -> dict[str, str]:
    return {}


def empty_token(comment: Comment, monkeypatch, settings) -> dict[str, str]:
    return with_token("")


def other_comments_token(comment: Comment, monkeypatch, settings) -> dict[str, str]:
    other = submit_comment(comment.article)
    return with_token(token_for(other))


def tampered_token(comment: Comment, monkeypatch, settings) -> dict[str, str]:
    return with_token(tampered(token_for(comment)))


def token_with_a_changed_id(comment: Comment, monkeypatch, settings) -> dict[str, str]:
    other = submit_comment(comment.article)
    _, stamp, signature = token_for(other).split(":")
    return with_token(f"{comment.pk}:{stamp}:{signature}")


def garbage_token(comment: Comment, monkeypatch, settings) -> dict[str, str]:
    return with_token("not a token at all")


def expired_token(comment: Comment, monkeypatch, settings) -> dict[str, str]:
    window = settings.COMMENTS_EDIT_WINDOW_SECONDS
    return with_token(token_issued_ago(comment, window + 5, monkeypatch))


BAD_TOKENS = [
    no_token,
    empty_token,
    other_comments_token,
    tampered_token,
    token_with_a_changed_id,
    garbage_token,
    expired_token,
]


@pytest.mark.parametrize("method", ["patch", "delete"])
@pytest.mark.parametrize("make_headers", BAD_TOKENS, ids=lambda f: f.__name__)
def test_a_change_to_a_published_comment_without_a_valid_token_is_403(
    api, method, make_headers, monkeypatch, settings
):
    comment = published_comment()
    headers = make_headers(comment, monkeypatch, settings)
    before = Unchanged(comment)

    response = request_with(api, method, comment, headers)

    assert response.status_code == 403, response.content
    assert "detail" in response.json()
    before.check()


@pytest.mark.parametrize("method", ["patch", "delete"])
@pytest.mark.parametrize(
    "make_headers",
    [f for f in BAD_TOKENS if f is not expired_token],
    ids=lambda f: f.__name__,
)
def test_a_change_to_someone_elses_pending_comment_is_404(
    api, method, make_headers, monkeypatch, settings
):
    comment = submit_comment()
    headers = make_headers(comment, monkeypatch, settings)
    before = Unchanged(comment)
    missing = api.get(detail_url(missing_id()))

    response = request_with(api, method, comment, headers)

    assert response.status_code == 404, response.content
    assert response.content == missing.content
    before.check()


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_the_author_cannot_change_a_pending_comment_after_the_edit_window(
    api, method, monkeypatch, settings
):
    comment = submit_comment()
    headers = expired_token(comment, monkeypatch, settings)
    before = Unchanged(comment)

    response = request_with(api, method, comment, headers)

    assert response.status_code == 403, response.content
    before.check()


def test_a_shorter_edit_window_expires_tokens_sooner(api, monkeypatch, settings):
    settings.COMMENTS_EDIT_WINDOW_SECONDS = 60
    comment = published_comment()
    token = token_issued_ago(comment, 61, monkeypatch)
    before = Unchanged(comment)

    response = api.patch(detail_url(comment), {"body": "Late."}, format="json", **with_token(token))

    assert response.status_code == 403
    before.check()


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_a_token_still_works_just_inside_the_edit_window(api, method, monkeypatch, settings):
    comment = published_comment()
    token = token_issued_ago(comment, settings.COMMENTS_EDIT_WINDOW_SECONDS - 5, monkeypatch)

    response = request_with(api, method, comment, with_token(token))

    expected_code, expected_status = {"patch": (202, "pending"), "delete": (204, "removed")}[method]
    assert response.status_code == expected_code, response.content
    comment.refresh_from_db()
    assert comment.status == expected_status


def test_the_edit_window_is_counted_from_the_token_not_from_now(api, monkeypatch, settings):
    """Sanity check of the clock patch: time really moves for the signer."""
    comment = published_comment()
    token = token_for(comment)
    later = time.time() + settings.COMMENTS_EDIT_WINDOW_SECONDS + 5
    monkeypatch.setattr(signing.time, "time", lambda: later)
    before = Unchanged(comment)

    response = api.patch(detail_url(comment), {"body": "Late."}, format="json", **with_token(token))

    assert response.status_code == 403
    before.check()


def test_expires_at_is_the_end_of_the_edit_window(api, settings):
    comment = submit_comment()

    data = api.get(detail_url(comment), **with_token(token_for(comment))).json()

    assert parse_datetime(data["edit_expires_at"]) == comment.created_at + dt.timedelta(
        seconds=settings.COMMENTS_EDIT_WINDOW_SECONDS
    )
