import pytest

from comments_project import health

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
    assert response.json()["checks"] == {"database": "ok", "broker": "ok", "akismet": "ok"}


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
