"""The submit fast path (comments_project/fastpath.py): a plain JSON submit is
accepted in front of Django exactly as Django accepts it; anything else is handed
on untouched and answered by Django; nothing is counted or written twice."""

from __future__ import annotations

import json
import uuid

import pytest
from django.core.signals import request_finished, request_started
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from articles.models import Article
from comments import moderation, prepared, tokens
from comments.models import Comment, CommentEvent
from comments_project import wsgi
from comments_project.fastpath import FastPathApp
from tests.factories import ArticleFactory, fresh_ip, published_comment, submit_comment
from tests.http_client import environ_for, refuse, wsgi_call

pytestmark = pytest.mark.django_db

# Differ between two accepted submissions by nature: compared for shape only.
PER_COMMENT = {"id", "created_at", "edit_expires_at", "edit_token"}


def comments_url(article) -> str:
    return f"/api/v1/articles/{article.slug}/comments/"


def payload(n: int, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "author_name": "Ada Reader",
        "author_email": f"ada{n}@example.org",
        "body": f"Comment number {n}, with *emphasis* and a link to example.org.",
    }
    data.update(overrides)
    return data


def submit_environ(article, data: object, **headers: str) -> dict:
    body = json.dumps(data).encode()
    return environ_for(comments_url(article), "POST", body, "application/json", **headers)


# Columns that differ between the two requests by nature (time, e-mail, key).
OWN_COLUMNS = {
    "id",
    "created_at",
    "updated_at",
    "next_check_at",
    "author_email",
    "idempotency_key",
    "idempotency_fingerprint",
}


def stored(comment_id: int) -> dict[str, object]:
    """The row and its audit trail, without what differs by nature."""
    comment = Comment.objects.get(pk=comment_id)
    row = {
        field.attname: getattr(comment, field.attname)
        for field in Comment._meta.concrete_fields
        if field.attname not in OWN_COLUMNS
    }
    row["events"] = list(comment.events.values_list("from_status", "to_status", "reason"))
    return row


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_ORIGIN": "http://localhost:8000", "HTTP_USER_AGENT": "Widget/1.0"},
        {"HTTP_ORIGIN": "https://elsewhere.example", "HTTP_REFERER": "https://news.example/a"},
        {"HTTP_IDEMPOTENCY_KEY": "key-{n}"},
    ],
)
def test_the_fast_path_accepts_a_submit_exactly_as_django(headers):
    article = ArticleFactory()
    answers = {}
    for n, app in ((1, wsgi.django_application), (2, FastPathApp(refuse))):
        mine = {name: value.format(n=n) for name, value in headers.items()}
        data = payload(1, author_email=f"ada{n}@example.org")
        answers[n] = wsgi_call(app, submit_environ(article, data, **mine))
    (django_status, django_headers, django_body), (status, fast_headers, body) = answers.values()
    assert status == django_status == "202 Accepted"
    django_headers.pop("Content-Length"), fast_headers.pop("Content-Length")
    assert fast_headers == django_headers
    django_data, data = json.loads(django_body), json.loads(body)
    assert data.keys() == django_data.keys()
    for name in data.keys() - PER_COMMENT:
        assert data[name] == django_data[name], name
    assert tokens.check_edit_token(data["edit_token"], data["id"]) is None
    first, second = stored(django_data["id"]), stored(data["id"])
    assert second == first
    assert second["status"] == Comment.Status.PENDING
    comment = Comment.objects.get(pk=data["id"])
    assert comment.author_email == "ada2@example.org"
    assert comment.idempotency_key == mine.get("HTTP_IDEMPOTENCY_KEY", "")
    assert bool(comment.idempotency_fingerprint) == ("HTTP_IDEMPOTENCY_KEY" in headers)


def test_a_retry_with_the_same_key_is_answered_in_front_with_the_first_comment():
    article = ArticleFactory()
    data = payload(1)
    first = wsgi_call(FastPathApp(refuse), submit_environ(article, data, HTTP_IDEMPOTENCY_KEY="k1"))
    retry = wsgi_call(FastPathApp(refuse), submit_environ(article, data, HTTP_IDEMPOTENCY_KEY="k1"))
    assert first[0] == retry[0] == "202 Accepted"
    assert "Idempotent-Replayed" not in first[1]
    assert retry[1]["Idempotent-Replayed"] == "true"
    assert json.loads(retry[2])["id"] == json.loads(first[2])["id"]
    assert Comment.objects.count() == 1
    assert CommentEvent.objects.count() == 1


def test_a_submit_through_the_api_fixture_is_answered_in_front(api, article):
    response = api.post(comments_url(article), payload(1), format="json")
    assert response.status_code == 202, response.content
    assert api.fast_answers == [comments_url(article)]


REFUSED = {
    "invalid field": (lambda article: payload(1, author_email="not an address"), 400),
    "not an object": (lambda article: [payload(1)], 400),
    "unknown article": (lambda article: payload(1), 404),
    "closed article": (lambda article: payload(1), 403),
    "duplicate": (lambda article: payload(0), 409),
    "bad form token": (lambda article: payload(1, form_token="forged"), 400),
    "reused key": (lambda article: payload(1, body="Something else entirely."), 422),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_refusal_is_handed_on_to_django_with_its_body(api, settings, case):
    settings.COMMENTS_DUPLICATE_WINDOW_SECONDS = 600
    settings.COMMENTS_MIN_SUBMIT_SECONDS = 3 if case == "bad form token" else 0
    article = ArticleFactory(slug="open", comments_open=case != "closed article")
    url = "/api/v1/articles/gone/comments/" if case == "unknown article" else comments_url(article)
    submit_comment(article, author_email="ada0@example.org", body=payload(0)["body"])
    key = {}
    if case == "reused key":
        api.post(url, payload(1), format="json", HTTP_IDEMPOTENCY_KEY="k")
        key = {"HTTP_IDEMPOTENCY_KEY": "k"}
        api.handler.answered.clear()
    before = Comment.objects.count()
    make, expected = REFUSED[case]
    response = api.post(url, make(article), format="json", **key)
    assert response.status_code == expected, response.content
    assert api.fast_answers == []
    assert Comment.objects.count() == before


@pytest.mark.parametrize(
    ("content_type", "query", "body"),
    [
        ("application/x-www-form-urlencoded", "", "author_name=Ada"),
        ("application/json", "?x=1", json.dumps(payload(1))),
        ("application/json", "", '{"author_name": NaN}'),
        ("application/json", "", '{"author_name": "Ada"'),
        ("text/plain", "", json.dumps(payload(1))),
    ],
)
def test_anything_but_a_plain_json_submit_goes_to_django(content_type, query, body):
    article = ArticleFactory()
    seen = []

    def django_stub(environ, start_response):
        seen.append(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
        start_response("200 OK", [])
        return [b""]

    environ = environ_for(comments_url(article) + query, "POST", body.encode(), content_type)
    wsgi_call(FastPathApp(django_stub), environ)
    assert seen == [body.encode()]
    assert Comment.objects.count() == 0


def test_a_body_over_the_size_limit_is_not_read_in_front(settings):
    settings.COMMENTS_MAX_REQUEST_BYTES = 100
    article = ArticleFactory()
    environ = submit_environ(article, payload(1, body="x" * 200))
    status, _, body = wsgi_call(FastPathApp(wsgi.django_application), environ)
    assert status.startswith("413"), body
    assert Comment.objects.count() == 0


def test_a_request_handed_on_is_counted_once_by_the_submit_limit(api, settings):
    settings.COMMENTS_THROTTLE_SUBMIT = "3/min"
    article = ArticleFactory()
    ip, run = fresh_ip(), uuid.uuid4().hex

    def post(n: int, **fields: object):
        data = payload(n, author_email=f"{run}-{n}@example.org", **fields)
        return api.post(comments_url(article), data, format="json", REMOTE_ADDR=ip)

    assert post(1).status_code == 202
    # Counted in front, refused by Django: the second of three, not the third.
    assert post(2, author_name="").status_code == 400
    assert post(3).status_code == 202
    over = post(4)
    assert over.status_code == 429
    assert int(over["Retry-After"]) >= 1
    assert api.fast_answers == [comments_url(article)] * 2


def test_a_database_outage_is_answered_503_as_django_answers_it(monkeypatch):
    article = ArticleFactory()

    def unreachable(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(prepared, "get_by", unreachable)
    headers = {"HTTP_ORIGIN": "http://localhost:8000"}
    fast = wsgi_call(FastPathApp(refuse), submit_environ(article, payload(1), **headers))
    django = wsgi_call(wsgi.django_application, submit_environ(article, payload(1), **headers))
    assert fast == django
    assert fast[0].startswith("503")
    assert fast[1]["Retry-After"] == "5"


def test_an_unexpected_error_is_a_json_500_as_django_gives(monkeypatch, settings):
    settings.DEBUG = False
    article = ArticleFactory()

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(tokens, "make_edit_token", broken)
    fast = wsgi_call(FastPathApp(refuse), submit_environ(article, payload(1)))
    django = wsgi_call(wsgi.django_application, submit_environ(article, payload(2)))
    assert fast[0] == django[0] == "500 Internal Server Error"
    assert json.loads(fast[2]) == json.loads(django[2]) == {"detail": "Internal Server Error"}


def test_the_fast_path_sends_the_request_signals_that_keep_connections_healthy():
    article = ArticleFactory()
    sent = []

    def started(sender, **kwargs):
        sent.append("started")

    def finished(sender, **kwargs):
        sent.append("finished")

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        status = wsgi_call(FastPathApp(refuse), submit_environ(article, payload(1)))[0]
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    assert status == "202 Accepted"
    assert sent == ["started", "finished"]


def submit_in_front(article, n: int, **headers: str) -> tuple[str, dict, bytes]:
    """A submit through the fast path; one handed on is answered by Django."""
    app = FastPathApp(wsgi.django_application)
    return wsgi_call(app, submit_environ(article, payload(n), **headers))


def test_a_remembered_article_is_not_read_again_the_insert_checks_it():
    article = ArticleFactory()
    assert submit_in_front(article, 1)[0] == "202 Accepted"  # reads it, remembers it
    with CaptureQueriesContext(connection) as queries:
        status, _, body = submit_in_front(article, 2)
    assert status == "202 Accepted"
    (statement,) = [query["sql"] for query in queries.captured_queries]
    assert statement.lstrip().startswith("WITH new AS (")
    assert Comment.objects.get(pk=json.loads(body)["id"]).article == article


@pytest.mark.parametrize(
    ("change", "answer"),
    [("closed", "403 Forbidden"), ("deleted", "404 Not Found"), ("slug moved", "202 Accepted")],
)
def test_a_remembered_article_that_changed_is_answered_as_it_is_now(change, answer):
    article = ArticleFactory()
    first = json.loads(submit_in_front(article, 1)[2])["id"]
    taken_over = None
    if change == "closed":
        Article.objects.filter(pk=article.pk).update(comments_open=False)
    elif change == "deleted":
        Article.objects.filter(pk=article.pk).delete()
    else:  # another article now answers to the slug; the first stays open
        slug = article.slug
        Article.objects.filter(pk=article.pk).update(slug=f"{slug}-old")
        taken_over = ArticleFactory(slug=slug)
    before = Comment.objects.count(), CommentEvent.objects.count()

    status, _, body = submit_in_front(article, 2)

    assert status == answer, body
    if taken_over is None:
        assert (Comment.objects.count(), CommentEvent.objects.count()) == before
    else:
        assert Comment.objects.get(pk=json.loads(body)["id"]).article == taken_over
        assert Comment.objects.filter(article_id=article.pk).get().pk == first
    assert submit_in_front(article, 3)[0] == answer  # the same again, not a stale memory


def test_a_replay_on_a_remembered_article_closed_since_is_answered_as_django_answers():
    article = ArticleFactory()
    submit_in_front(article, 1, HTTP_IDEMPOTENCY_KEY="k1")
    Article.objects.filter(pk=article.pk).update(comments_open=False)
    retry = submit_in_front(article, 1, HTTP_IDEMPOTENCY_KEY="k1")
    django = wsgi_call(
        wsgi.django_application, submit_environ(article, payload(1), HTTP_IDEMPOTENCY_KEY="k1")
    )
    assert retry[0] == django[0] == "403 Forbidden"
    assert retry[2] == django[2]
    assert Comment.objects.count() == 1


@pytest.mark.parametrize("path", ["one statement", "transaction"])
def test_submit_on_trust_writes_nothing_for_an_article_no_longer_open(path):
    article = ArticleFactory()
    parent = None
    if path == "transaction":  # a reply takes the transactional path
        parent = published_comment(article)
    Article.objects.filter(pk=article.pk).update(comments_open=False)
    before = Comment.objects.count(), CommentEvent.objects.count()
    trusted = Article(pk=article.pk, slug=article.slug, comments_open=True)
    with pytest.raises(moderation.ArticleUnverified):
        moderation.submit(
            article=trusted,
            author_name="Ada",
            author_email="ada@example.org",
            body="On trust.",
            parent_id=parent.pk if parent else None,
            article_verified=False,
        )
    assert (Comment.objects.count(), CommentEvent.objects.count()) == before
