import pytest

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_services(api):
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_the_database_ok(api):
    response = api.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


def test_readyz_names_the_database_when_it_is_unreachable(api, monkeypatch):
    from django.db import connection

    def broken_cursor(*args, **kwargs):
        raise connection.Database.OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = api.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["database"]
