"""Idempotent submission: POST /api/v1/articles/{slug}/comments/ with an Idempotency-Key.

The same key (on the same article, for the same request) is answered with the comment
the first request created and creates nothing; the unique constraint decides a race.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from types import SimpleNamespace

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from comments import abuse, moderation, tasks, tokens
from comments.models import Comment, CommentEvent
from tests.factories import ArticleFactory, fresh_ip, published_comment

HEADER = "Idempotency-Key"


def comments_url(article) -> str:
    return f"/api/v1/articles/{article.slug}/comments/"


def payload(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "author_name": "Grace Writer",
        "author_email": "grace@example.org",
        "body": "I enjoyed this piece.",
    }
    fields.update(overrides)
    return fields


def post(api, article, body: dict[str, object], key: str | None = None, **extra):
    if key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    return api.post(comments_url(article), body, format="json", **extra)


def new_key() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """Checks handed to workers after commit, recorded instead of sent to the broker."""
    sent: list[int] = []
    monkeypatch.setattr(tasks, "check_comment", SimpleNamespace(delay=sent.append))
    return sent


# --- Replays ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_same_key_twice_creates_one_comment_and_answers_the_same_body(api, article):
    key = new_key()

    first = post(api, article, payload(), key)
    second = post(api, article, payload(), key)

    assert first.status_code == 202, first.content
    assert second.status_code == 202, second.content
    assert Comment.objects.count() == 1
    assert second.json()["id"] == first.json()["id"] == Comment.objects.get().pk
    # The edit token is issued for the comment's creation time, so even it is equal.
    assert second.json() == first.json()
    tokens.check_edit_token(second.json()["edit_token"], first.json()["id"])
    assert "Idempotent-Replayed" not in first
    assert second["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_a_replay_writes_no_event_and_enqueues_no_check(
    api, article, enqueued, django_capture_on_commit_callbacks
):
    key = new_key()
    with django_capture_on_commit_callbacks(execute=True):
        first = post(api, article, payload(), key)
    assert enqueued == [first.json()["id"]]

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = post(api, article, payload(), key)

    assert second.status_code == 202
    assert callbacks == []
    assert enqueued == [first.json()["id"]]
    assert CommentEvent.objects.count() == 1


@pytest.mark.django_db
def test_a_replay_shows_the_comments_current_status(api, article):
    key = new_key()
    first = post(api, article, payload(), key).json()
    moderation.publish(
        Comment.objects.get(pk=first["id"]), actor=moderation.SPAM_CHECK, reason="akismet_ham"
    )

    second = post(api, article, payload(), key)

    assert second.status_code == 202
    assert second.json()["id"] == first["id"]
    assert first["status"] == "pending"
    assert second.json()["status"] == "published"


@pytest.mark.django_db
def test_a_replay_does_not_extend_the_edit_window(api, article, settings):
    key = new_key()
    first = post(api, article, payload(), key).json()
    window = settings.COMMENTS_EDIT_WINDOW_SECONDS
    Comment.objects.filter(pk=first["id"]).update(
        created_at=Comment.objects.get(pk=first["id"]).created_at - dt.timedelta(seconds=window + 5)
    )

    replay = post(api, article, payload(), key).json()

    assert replay["id"] == first["id"]
    with pytest.raises(tokens.TokenExpired):
        tokens.check_edit_token(replay["edit_token"], first["id"])


@pytest.mark.django_db
def test_a_replay_is_answered_before_the_duplicate_and_flood_checks(api, settings):
    settings.COMMENTS_DUPLICATE_WINDOW_SECONDS = 86400
    settings.COMMENTS_FLOOD_SECONDS = 60
    settings.COMMENTS_THROTTLE_SUBMIT = "10/min"
    article, ip, key = ArticleFactory(), fresh_ip(), new_key()
    first = post(api, article, payload(), key, REMOTE_ADDR=ip)
    assert first.status_code == 202, first.content

    replay = post(api, article, payload(), key, REMOTE_ADDR=ip)

    assert replay.status_code == 202, replay.content
    assert replay.json()["id"] == first.json()["id"]
    # The checks are on: the same text under a new key is a duplicate, and another
    # comment this soon from the same address is flooding.
    assert post(api, article, payload(), new_key(), REMOTE_ADDR=ip).status_code == 409
    other = post(api, article, payload(body="Something else."), new_key(), REMOTE_ADDR=ip)
    assert other.status_code == 429
    assert Comment.objects.count() == 1


@pytest.mark.django_db
def test_a_request_refused_as_the_duplicate_of_its_concurrent_twin_answers_with_it(article):
    """The twin committed between this request's look-up and its duplicate check."""
    key = new_key()
    fields = {"author_name": "Ada", "author_email": "ada@example.com", "body": "Hello."}
    twin: list[Comment] = []

    def twin_commits_then_duplicate_check_refuses() -> None:
        twin.append(moderation.submit(article=article, idempotency_key=key, **fields))
        raise RuntimeError("duplicate")

    comment = moderation.submit(
        article=article,
        idempotency_key=key,
        before_create=twin_commits_then_duplicate_check_refuses,
        **fields,
    )

    assert comment.pk == twin[0].pk
    assert comment.replayed is True
    assert Comment.objects.count() == 1


@pytest.mark.django_db
def test_without_a_key_every_submission_creates_a_comment(api, article):
    post(api, article, payload())
    post(api, article, payload())

    assert Comment.objects.count() == 2


@pytest.mark.django_db
def test_keys_are_scoped_to_the_article(api):
    key, one, other = new_key(), ArticleFactory(), ArticleFactory()

    first = post(api, one, payload(), key)
    second = post(api, other, payload(), key)

    assert first.status_code == second.status_code == 202
    assert first.json()["id"] != second.json()["id"]
    assert Comment.objects.count() == 2


# --- Refusals ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        {"body": "A different remark."},
        {"author_email": "mallory@example.net"},
        {"author_name": "Mallory"},
        {"author_url": "https://elsewhere.example/"},
        "parent",
    ],
    ids=["body", "author_email", "author_name", "author_url", "parent"],
)
def test_a_key_reused_for_a_different_comment_is_refused_with_422_naming_the_header(
    api, article, change
):
    if change == "parent":
        change = {"parent": published_comment(article).pk}
    key = new_key()
    first = post(api, article, payload(), key)
    comments, events = Comment.objects.count(), CommentEvent.objects.count()

    response = post(api, article, payload(**change), key)

    assert response.status_code == 422, response.content
    assert list(response.json()) == [HEADER]
    assert response.json()[HEADER] and isinstance(response.json()[HEADER], list)
    assert "edit_token" not in response.content.decode()
    assert Comment.objects.count() == comments
    assert CommentEvent.objects.count() == events
    assert Comment.objects.get(pk=first.json()["id"]).body == "I enjoyed this piece."


@pytest.mark.django_db
@pytest.mark.parametrize(
    "key",
    ["", "k" * 256, "caf\u00e9", "tab\there", "del\x7f", "new\nline"],
    ids=["empty", "256-characters", "non-ascii", "tab", "delete", "newline"],
)
def test_a_malformed_key_is_refused_with_400_naming_the_header(api, article, key):
    response = post(api, article, payload(), key)

    assert response.status_code == 400, response.content
    assert list(response.json()) == [HEADER]
    assert response.json()[HEADER]
    assert Comment.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["k", "k" * 255, "a key with spaces and ~!@#$%^&*()"])
def test_keys_of_1_to_255_printable_ascii_characters_are_accepted(api, article, key):
    first = post(api, article, payload(), key)
    second = post(api, article, payload(), key)

    assert first.status_code == second.status_code == 202, first.content
    assert Comment.objects.get().idempotency_key == key


# --- Races ------------------------------------------------------------------------------------


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions need PostgreSQL")


@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_with_one_key_make_exactly_one_comment(monkeypatch, enqueued):
    require_postgresql()
    article, key, racers = ArticleFactory(), new_key(), 4
    # Every request has missed the look-up before any of them inserts, so all but one
    # lose on the unique constraint itself.
    all_looked_up = threading.Barrier(racers, timeout=15)
    monkeypatch.setattr(abuse, "check_flood", lambda ip: all_looked_up.wait())
    responses = []
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            responses.append(post(APIClient(), article, payload(), key))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=submit) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert [r.status_code for r in responses] == [202] * racers, [r.content for r in responses]
    comment = Comment.objects.get()
    assert {r.json()["id"] for r in responses} == {comment.pk}
    assert sum(r.has_header("Idempotent-Replayed") for r in responses) == racers - 1
    assert CommentEvent.objects.filter(comment=comment).count() == 1
    assert enqueued == [comment.pk]


@pytest.mark.django_db(transaction=True)
def test_a_submit_racing_an_uncommitted_one_waits_and_answers_with_its_comment(enqueued):
    require_postgresql()
    article, key = ArticleFactory(), new_key()
    fields = {"author_name": "Ada", "author_email": "ada@example.com", "body": "Hello."}
    inserted, release, finished = threading.Event(), threading.Event(), threading.Event()
    results: dict[str, Comment] = {}
    errors: list[BaseException] = []

    def in_thread(name: str, work) -> threading.Thread:
        def run() -> None:
            try:
                results[name] = work()
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    def winner() -> Comment:
        with transaction.atomic():
            comment = moderation.submit(article=article, idempotency_key=key, **fields)
            inserted.set()
            release.wait(timeout=15)
        return comment

    def loser() -> Comment:
        inserted.wait(timeout=15)
        try:
            return moderation.submit(article=article, idempotency_key=key, **fields)
        finally:
            finished.set()

    threads = [in_thread("winner", winner), in_thread("loser", loser)]
    # The loser missed the uncommitted row in its look-up and now waits on the index.
    assert not finished.wait(timeout=1)
    release.set()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert results["loser"].pk == results["winner"].pk
    assert results["loser"].replayed is True
    assert results["winner"].replayed is False
    assert Comment.objects.count() == 1
    assert CommentEvent.objects.count() == 1
    assert enqueued == [results["winner"].pk]


# --- Documentation and the widget's cross-origin calls -------------------------------------


@pytest.mark.django_db
def test_the_schema_documents_the_header_and_its_400_and_422(api):
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/articles/{slug}/comments/"]["post"]

    (parameter,) = [p for p in operation["parameters"] if p["name"] == HEADER]
    assert parameter["in"] == "header"
    assert parameter.get("required", False) is False
    assert parameter["schema"]["maxLength"] == 255
    assert {"202", "400", "422"} <= set(operation["responses"])
    assert "Idempotent-Replayed" in operation["responses"]["202"]["headers"]


@pytest.mark.django_db
def test_a_cross_origin_preflight_allows_the_idempotency_key_header(api, article, settings):
    origin = "https://news.example.com"
    settings.CORS_ALLOWED_ORIGINS = [origin]

    response = api.options(
        comments_url(article),
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, idempotency-key",
    )

    assert response["Access-Control-Allow-Origin"] == origin
    assert "idempotency-key" in response["Access-Control-Allow-Headers"].lower()
