"""A real `celery worker` process on the test database, for integration tests.

Needs PostgreSQL (the worker is another process, so it must see committed rows
in a real server) and a broker both processes reach. Without them the tests are
skipped locally; under CI=true they fail instead.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.akismet_fixtures import TEST_KEY
from tests.processes import app_env, running_process, wait_for

__all__ = ["WORKER_CONCURRENCY", "celery_worker_process", "require_services", "wait_for"]

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
WORKER_CONCURRENCY = 4


def require_services() -> None:
    problems = []
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        problems.append("DATABASE_URL is not PostgreSQL")
    if not os.environ.get("REDIS_URL"):
        problems.append("REDIS_URL is not set")
    if problems:
        message = "worker integration tests need " + " and ".join(problems)
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    host = db.get("HOST") or "127.0.0.1"
    return f"postgres://{auth}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, standin_server, tmp_path_factory):
    """Start one worker for the session, on the test database and the stand-in."""
    require_services()
    from comments_project.celery import app

    with django_db_blocker.unblock():
        database_url = _database_url()
    app.control.purge()
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {
        **os.environ,
        **app_env(database_url, standin_server.url, TEST_KEY),
        "COMMENTS_CHECK_RETRIES": "2",
        # The production pool (settings' CELERY_WORKER_POOL), a little smaller.
        "CELERY_WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
    }
    args = [
        sys.executable, "-m", "celery", "-A", "comments_project", "worker",
        "--loglevel=INFO", "--without-gossip", "--without-mingle",
        "--without-heartbeat", "-n", f"test-{uuid.uuid4().hex[:8]}@%h",
    ]  # fmt: skip
    with running_process(
        "celery worker", args, env, log_path, lambda: b" ready." in log_path.read_bytes()
    ) as process:
        yield process
