"""Shared fixtures. Under CI=true the real services must be there: nothing is skipped."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.factories import ArticleFactory
from tests.http_client import ServedAPIClient

pytest_plugins = ["tests.akismet_fixtures", "tests.worker_fixtures"]

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI:
        engine = settings.DATABASES["default"]["ENGINE"]
        assert "postgresql" in engine, f"CI must run on PostgreSQL, not {engine}"
        assert os.environ.get("REDIS_URL"), "CI must run with REDIS_URL set"


@pytest.fixture
def api() -> APIClient:
    """The API as a served request meets it: submits through the fast path first."""
    return ServedAPIClient()


@pytest.fixture
def article():
    return ArticleFactory()


@pytest.fixture(autouse=True)
def relaxed_abuse_limits(settings):
    """Most tests submit many comments from one address at once; tests of the
    abuse checks turn each limit back on (with their own client addresses)."""
    settings.COMMENTS_THROTTLE_SUBMIT = "0"
    settings.COMMENTS_THROTTLE_READ = "0"
    settings.COMMENTS_FLOOD_SECONDS = 0
    settings.COMMENTS_MIN_SUBMIT_SECONDS = 0
    settings.COMMENTS_DUPLICATE_WINDOW_SECONDS = 0


@pytest.fixture(autouse=True)
def fresh_read_cache():
    """Each test starts with no cached pages: article slugs repeat across tests,
    and the database is rolled back without the invalidations of a commit."""
    from comments import read_cache

    read_cache.clear_all()
    yield


@pytest.fixture(autouse=True)
def checks_sent_at_once(settings):
    """In-process tests see each check enqueued at commit, one task per comment;
    batching is proven by its own tests and runs in every server-process test."""
    settings.COMMENTS_DISPATCH_BATCH_MS = 0


@pytest.fixture(autouse=True)
def no_remembered_articles():
    """The fast path remembers open articles per process (comments.submission); a
    rolled-back test's articles are not the next test's, though slugs repeat."""
    from comments import submission

    submission._open_articles.clear()
