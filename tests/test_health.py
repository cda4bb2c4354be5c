import datetime as dt

import pytest
from django.utils import timezone

from comments.models import Comment
from comments_project import health
from tests.factories import held_comment, submit_comment

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_akismet_answer():
    health._akismet_cache.clear()
    yield
    health._akismet_cache.clear()


def test_healthz_answers_without_touching_services(api):
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_database_broker_and_akismet_ok(api, standin):
    response = api.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"] == {
        "database": "ok",
        "broker": "ok",
        "akismet": "ok",
        "queue": "ok",
    }


def test_readyz_names_the_database_when_it_is_unreachable(api, standin, monkeypatch):
    from django.db import connection

    def broken_cursor(*args, **kwargs):
        raise connection.Database.OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = api.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["database"]


def test_readyz_names_the_broker_when_it_is_unreachable(api, standin, monkeypatch):
    from comments_project.celery import app

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(app, "connection_for_write", broker_down)
    response = api.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]


def test_readyz_fails_on_a_refused_akismet_key(api, standin):
    standin.state.keys.clear()
    response = api.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["akismet"]
    assert response.json()["checks"]["akismet"] == "invalid key"


def test_readyz_fails_without_an_akismet_key(api, settings):
    settings.AKISMET_API_KEY = ""
    response = api.get("/readyz")
    assert response.status_code == 503
    assert "AKISMET_API_KEY" in response.json()["checks"]["akismet"]


def test_an_unreachable_akismet_is_reported_but_does_not_stop_intake(api, standin):
    standin.state.add_fault({"kind": "status", "status": 503})
    response = api.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["akismet"].startswith("unreachable")


def waited(comment: Comment, seconds: int, *, overdue: bool = True) -> None:
    """Make `comment` look submitted `seconds` ago and, if overdue, left by the sweeper."""
    now = timezone.now()
    Comment.objects.filter(pk=comment.pk).update(
        created_at=now - dt.timedelta(seconds=seconds),
        next_check_at=now - dt.timedelta(seconds=seconds if overdue else -60),
    )


def test_readyz_reports_the_oldest_pending_comment_and_the_overdue_count(api, standin, settings):
    settings.COMMENTS_READY_MAX_PENDING_AGE_SECONDS = 600
    settings.COMMENTS_SWEEP_AFTER_SECONDS = 60
    waited(submit_comment(), 300)
    submit_comment()
    held_comment()
    response = api.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["queue"] == "ok"
    queue = response.json()["queue"]
    assert queue["pending"] == 2
    assert 299 <= queue["oldest_pending_seconds"] <= 310
    assert queue["overdue_pending"] == 1
    assert queue["max_pending_age_seconds"] == 600


def test_readyz_fails_when_a_pending_comment_waited_longer_than_the_limit(api, standin, settings):
    settings.COMMENTS_READY_MAX_PENDING_AGE_SECONDS = 600
    waited(submit_comment(), 900)
    response = api.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["queue"]
    assert body["checks"]["queue"].startswith("stalled")
    assert body["queue"]["oldest_pending_seconds"] >= 900
    assert body["queue"]["overdue_pending"] == 1


def test_a_stuck_worker_fails_readyz_although_the_sweeper_keeps_the_deadline_fresh(
    api, standin, settings
):
    settings.COMMENTS_READY_MAX_PENDING_AGE_SECONDS = 600
    waited(submit_comment(), 900, overdue=False)
    response = api.get("/readyz")
    assert response.status_code == 503
    assert response.json()["queue"]["overdue_pending"] == 0


def test_an_edit_of_an_old_comment_waits_from_the_edit(api, standin, settings):
    settings.COMMENTS_READY_MAX_PENDING_AGE_SECONDS = 600
    comment = submit_comment()
    waited(comment, 3600, overdue=False)
    Comment.objects.filter(pk=comment.pk).update(edited_at=timezone.now())
    response = api.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["queue"]["oldest_pending_seconds"] < 60


def test_a_recheck_akismet_asked_for_waits_from_its_time(api, standin, settings):
    settings.COMMENTS_READY_MAX_PENDING_AGE_SECONDS = 600
    comment = submit_comment()
    Comment.objects.filter(pk=comment.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=2),
        recheck_reason="recheck",
        next_check_at=timezone.now() + dt.timedelta(minutes=30),
    )
    response = api.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["queue"]["oldest_pending_seconds"] == 0


def test_a_zero_limit_only_reports_the_queue(api, standin, settings):
    settings.COMMENTS_READY_MAX_PENDING_AGE_SECONDS = 0
    waited(submit_comment(), 7200)
    response = api.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["queue"]["oldest_pending_seconds"] >= 7200
