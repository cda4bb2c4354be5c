"""Read replicas: which database alias each kind of read runs on.

For this module a `replica` alias is added as a test mirror of `default`, the way
Django's test runner sets up TEST["MIRROR"]: a second connection to the same test
database. Each query is attributed to an alias by capturing both connections.

The request tests are transactional: inside a test case's transaction every read
stays on the primary by design (the atomic-block rule), and a second connection
only sees committed rows, just like a real replica.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.db import connections, router, transaction
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from articles.models import Article
from comments import tasks, tokens
from comments.models import Comment
from comments_project import db_router
from comments_project.db_router import PRIMARY, REPLICA, ReplicaRouter
from tests.factories import ArticleFactory, UserFactory, published_comment, submit_comment

BOTH = [PRIMARY, REPLICA]
on_both_databases = pytest.mark.django_db(transaction=True, databases=BOTH)


@pytest.fixture(scope="module", autouse=True)
def replica_alias(django_db_setup) -> Iterator[str]:
    """A `replica` alias mirroring the test database, removed again afterwards."""
    added = REPLICA not in connections.settings
    if added:
        replica = copy.deepcopy(connections[PRIMARY].settings_dict)
        replica["TEST"] = {**replica["TEST"], "MIRROR": PRIMARY}
        connections.settings[REPLICA] = replica
    yield REPLICA
    if added:
        connections[REPLICA].close()
        del connections[REPLICA]
        del connections.settings[REPLICA]


@contextmanager
def queries_by_alias() -> Iterator[dict[str, CaptureQueriesContext]]:
    """Capture the queries of the primary and of the replica separately."""
    with ExitStack() as stack:
        yield {
            alias: stack.enter_context(CaptureQueriesContext(connections[alias])) for alias in BOTH
        }


def ran_on(captured: dict[str, CaptureQueriesContext]) -> set[str]:
    return {alias for alias, queries in captured.items() if len(queries)}


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """Checks the web side hands to workers, recorded instead of sent to the broker."""
    sent: list[int] = []
    monkeypatch.setattr(tasks, "check_comment", SimpleNamespace(delay=sent.append))
    return sent


def unique_article(**fields: object) -> Article:
    # Unique slugs, so a shared Redis read cache never answers for another run.
    return ArticleFactory(slug=f"replica-{uuid.uuid4().hex[:12]}", **fields)


# --- the router ---------------------------------------------------------------


def test_reads_use_the_primary_unless_the_context_is_marked():
    assert not db_router.in_public_read()
    assert ReplicaRouter().db_for_read(Comment) == PRIMARY


def test_a_public_read_uses_the_replica():
    with db_router.public_read():
        assert ReplicaRouter().db_for_read(Comment) == REPLICA
    assert ReplicaRouter().db_for_read(Comment) == PRIMARY


def test_writes_always_use_the_primary():
    assert ReplicaRouter().db_for_write(Comment) == PRIMARY
    with db_router.public_read():
        assert ReplicaRouter().db_for_write(Comment) == PRIMARY


def test_primary_forces_the_primary_inside_a_public_read_and_restores_it():
    with db_router.public_read():
        with db_router.primary():
            assert ReplicaRouter().db_for_read(Comment) == PRIMARY
            with db_router.public_read():
                assert ReplicaRouter().db_for_read(Comment) == REPLICA
            assert ReplicaRouter().db_for_read(Comment) == PRIMARY
        assert ReplicaRouter().db_for_read(Comment) == REPLICA


def test_without_a_replica_alias_a_public_read_uses_the_primary(monkeypatch):
    monkeypatch.delitem(connections.settings, REPLICA)
    with db_router.public_read():
        assert ReplicaRouter().db_for_read(Comment) == PRIMARY


def test_only_the_primary_is_migrated_and_relations_are_allowed():
    assert ReplicaRouter().allow_migrate(PRIMARY, "comments", "comment")
    assert not ReplicaRouter().allow_migrate(REPLICA, "comments", "comment")
    assert ReplicaRouter().allow_relation(Comment(), Article())


def test_the_router_is_installed():
    with db_router.public_read():
        assert router.db_for_read(Comment) == REPLICA
        assert router.db_for_write(Comment) == PRIMARY
    assert router.db_for_read(Comment) == PRIMARY


# --- which requests are public reads --------------------------------------------

PUBLIC = [
    ("get", "/api/v1/articles/", {}),
    ("get", "/api/v1/articles/some-article/", {}),
    ("get", "/api/v1/articles/counts/?slug=a&slug=b", {}),
    ("get", "/api/v1/articles/some-article/comments/?limit=5&order=newest", {}),
    ("head", "/api/v1/articles/some-article/comments/", {}),
    ("get", "/api/v1/articles/some-article/form-token/", {}),
    ("get", "/api/v1/comments/latest/?limit=5", {}),
    ("get", "/feeds/latest.atom", {}),
    ("head", "/feeds/articles/some-article.atom", {}),
    ("get", "/demo/", {}),
    ("get", "/demo/some-article/?theme=dark", {}),
    # A CSRF cookie alone is no sign of a signed-in user.
    ("get", "/api/v1/articles/some-article/comments/", {"HTTP_COOKIE": "csrftoken=abc"}),
]
PRIVATE = [
    ("post", "/api/v1/articles/some-article/comments/", {}),
    ("options", "/api/v1/articles/some-article/comments/", {}),
    ("patch", "/api/v1/articles/some-article/", {}),
    ("get", "/api/v1/articles/some-article/comments/", {"HTTP_X_COMMENT_TOKEN": "t"}),
    ("get", "/api/v1/comments/5/", {}),
    ("get", "/api/v1/comments/5/", {"HTTP_X_COMMENT_TOKEN": "t"}),
    ("get", "/api/v1/moderation/comments/", {}),
    ("get", "/api/v1/moderation/comments/5/", {}),
    ("get", "/api/v1/moderation/stats/", {}),
    ("get", "/admin/", {}),
    ("get", "/admin/comments/comment/", {}),
    ("get", "/api/v1/articles/", {"HTTP_AUTHORIZATION": "Token abc"}),
    ("get", "/demo/", {"HTTP_COOKIE": f"{settings.SESSION_COOKIE_NAME}=abc"}),
    ("get", "/api/v1/articles/some-article/comments/extra/", {}),
    ("post", "/feeds/latest.atom", {}),
    ("get", "/feeds/articles/some-article.atom", {"HTTP_AUTHORIZATION": "Token abc"}),
    ("get", "/api/v1/schema/", {}),
    ("get", "/healthz", {}),
    ("get", "/readyz", {}),
    ("get", "/privacy/", {}),
]


def marked_during(method: str, path: str, extra: dict[str, str]) -> bool:
    seen: list[bool] = []

    def view(request):
        seen.append(db_router.in_public_read())
        return SimpleNamespace()

    request = getattr(RequestFactory(), method)(path, **extra)
    db_router.ReplicaReadMiddleware(view)(request)
    assert not db_router.in_public_read()
    return seen == [True]


@pytest.mark.parametrize(("method", "path", "extra"), PUBLIC)
def test_anonymous_public_reads_are_marked(method, path, extra):
    assert marked_during(method, path, extra)


@pytest.mark.parametrize(("method", "path", "extra"), PRIVATE)
def test_everything_else_is_not_marked(method, path, extra):
    assert not marked_during(method, path, extra)


def test_the_mark_ends_with_the_request_also_after_an_error():
    def failing_view(request):
        raise RuntimeError("boom")

    middleware = db_router.ReplicaReadMiddleware(failing_view)
    with pytest.raises(RuntimeError):
        middleware(RequestFactory().get("/api/v1/articles/"))
    assert not db_router.in_public_read()


def test_the_middleware_is_the_innermost():
    assert settings.MIDDLEWARE[-1] == "comments_project.db_router.ReplicaReadMiddleware"


# --- requests end to end ---------------------------------------------------------


@on_both_databases
def test_the_public_comment_list_reads_the_replica_when_not_cached(api, settings):
    settings.COMMENTS_READ_CACHE = False
    article = unique_article()
    published_comment(article)
    for path in (
        f"/api/v1/articles/{article.slug}/comments/",
        f"/api/v1/articles/counts/?slug={article.slug}",
        f"/feeds/articles/{article.slug}.atom",
        "/feeds/latest.atom",
        "/api/v1/comments/latest/",
    ):
        with queries_by_alias() as captured:
            response = api.get(path)
        assert response.status_code == 200
        assert ran_on(captured) == {REPLICA}, path


@on_both_databases
def test_what_is_cached_is_computed_on_the_primary(api):
    """A lagging replica could be older than the cache generation it is stored under."""
    article = unique_article()
    published_comment(article)
    for path in (
        f"/api/v1/articles/{article.slug}/comments/",
        f"/api/v1/articles/counts/?slug={article.slug}",
        f"/feeds/articles/{article.slug}.atom",
        "/feeds/latest.atom",
        "/api/v1/comments/latest/",
    ):
        with queries_by_alias() as captured:
            response = api.get(path)
        assert response.status_code == 200
        assert ran_on(captured) == {PRIMARY}, path


@on_both_databases
def test_article_reads_and_demo_pages_read_the_replica(api):
    article = unique_article()
    published_comment(article)
    for path in (
        "/api/v1/articles/",
        f"/api/v1/articles/{article.slug}/",
        f"/api/v1/articles/{article.slug}/form-token/",
        "/demo/",
        f"/demo/{article.slug}/",
    ):
        with queries_by_alias() as captured:
            response = api.get(path)
        assert response.status_code == 200, path
        assert ran_on(captured) == {REPLICA}, path


@on_both_databases
def test_submitting_reads_and_writes_only_the_primary(api, enqueued):
    article = unique_article()
    with queries_by_alias() as captured:
        response = api.post(
            f"/api/v1/articles/{article.slug}/comments/",
            {"author_name": "Grace", "author_email": "grace@example.org", "body": "Hello."},
            format="json",
        )
    assert response.status_code == 202, response.content
    assert ran_on(captured) == {PRIMARY}
    assert enqueued == [response.json()["id"]]


@on_both_databases
def test_the_author_reads_their_own_comment_from_the_primary(api, enqueued):
    comment = submit_comment(unique_article())
    token = tokens.make_edit_token(comment.pk)
    with queries_by_alias() as captured:
        response = api.get(f"/api/v1/comments/{comment.pk}/", HTTP_X_COMMENT_TOKEN=token)
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert ran_on(captured) == {PRIMARY}


@on_both_databases
def test_a_comment_list_requested_with_an_edit_token_reads_the_primary(api):
    article = unique_article()
    comment = published_comment(article)
    with queries_by_alias() as captured:
        response = api.get(
            f"/api/v1/articles/{article.slug}/comments/",
            HTTP_X_COMMENT_TOKEN=tokens.make_edit_token(comment.pk),
        )
    assert response.status_code == 200
    assert ran_on(captured) == {PRIMARY}


@on_both_databases
def test_the_moderation_api_reads_the_primary(enqueued):
    submit_comment(unique_article())
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="can_moderate"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    with queries_by_alias() as captured:
        response = client.get("/api/v1/moderation/comments/?status=pending")
    assert response.status_code == 200
    assert ran_on(captured) == {PRIMARY}


@on_both_databases
def test_the_admin_reads_the_primary(client, enqueued):
    submit_comment(unique_article())
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    with queries_by_alias() as captured:
        response = client.get("/admin/comments/comment/")
    assert response.status_code == 200
    assert ran_on(captured) == {PRIMARY}


@on_both_databases
def test_a_staff_read_of_a_public_path_reads_the_primary():
    article = unique_article()
    user = UserFactory(is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    with queries_by_alias() as captured:
        response = client.get(f"/api/v1/articles/{article.slug}/")
    assert response.status_code == 200
    assert ran_on(captured) == {PRIMARY}


@on_both_databases
def test_worker_code_reads_the_primary(enqueued):
    comment = submit_comment(unique_article())
    Comment.objects.filter(pk=comment.pk).update(next_check_at=comment.created_at)
    with queries_by_alias() as captured:
        assert Comment.objects.get(pk=comment.pk).status == "pending"  # outside any transaction
        assert tasks.sweep_pending() == 1
    assert enqueued[-1] == comment.pk
    assert ran_on(captured) == {PRIMARY}


@on_both_databases
def test_inside_a_transaction_on_the_primary_a_public_read_reads_the_primary():
    article = unique_article()
    with db_router.public_read():
        with queries_by_alias() as captured:
            assert Article.objects.filter(pk=article.pk).exists()
        assert ran_on(captured) == {REPLICA}
        with queries_by_alias() as captured, transaction.atomic():
            Article.objects.filter(pk=article.pk).update(title="Changed")
            assert Article.objects.get(pk=article.pk).title == "Changed"
        assert ran_on(captured) == {PRIMARY}
        with queries_by_alias() as captured, db_router.primary():
            assert Article.objects.filter(pk=article.pk).exists()
        assert ran_on(captured) == {PRIMARY}


# --- settings ------------------------------------------------------------------------

REPORT = (
    "import django, json, os; "
    "os.environ['DJANGO_SETTINGS_MODULE'] = 'comments_project.settings'; "
    "django.setup(); "
    "from django.conf import settings as s; "
    "print(json.dumps({'databases': s.DATABASES, 'routers': s.DATABASE_ROUTERS}, default=str))"
)


def start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Load the settings in a fresh interpreter whose environment is `env` (plus PATH)."""
    return subprocess.run(  # noqa: S603 (our own interpreter, fixed code)
        [sys.executable, "-c", REPORT],
        cwd=settings.BASE_DIR,
        env={"PATH": os.environ.get("PATH", ""), "DEBUG": "true", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_replica_url_adds_a_replica_alias_mirrored_in_tests():
    result = start(
        {
            "DATABASE_URL": "postgres://app:pw@primary.internal:5432/comments",
            "DATABASE_REPLICA_URL": "postgres://reader:pw@replica.internal:5432/comments",
        }
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    replica = report["databases"][REPLICA]
    assert replica["HOST"] == "replica.internal"
    assert replica["USER"] == "reader"
    assert replica["ENGINE"] == report["databases"][PRIMARY]["ENGINE"]
    assert replica["TEST"]["MIRROR"] == PRIMARY
    assert report["routers"] == ["comments_project.db_router.ReplicaRouter"]


def test_without_a_replica_url_there_is_only_the_primary():
    result = start({"DATABASE_URL": "postgres://app:pw@primary.internal:5432/comments"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert list(report["databases"]) == [PRIMARY]


def test_a_replica_of_another_engine_stops_start_up():
    result = start({"DATABASE_REPLICA_URL": "postgres://reader@replica.internal/comments"})
    assert result.returncode != 0
    assert "DATABASE_REPLICA_URL" in result.stderr
