"""The private services the chaos runs stand on: their outages are real and reversible."""

from __future__ import annotations

import psycopg
import pytest

from tests.private_services import private_postgres, private_redis, require_private_services

pytestmark = pytest.mark.services


def test_private_redis_keeps_its_data_over_a_restart_unless_flushed():
    require_private_services()
    with private_redis() as redis:
        redis.client().set("kept", "1")
        redis.restart()
        assert redis.client().get("kept") == b"1"
        redis.restart(flush=True)
        assert redis.client().get("kept") is None


def test_private_postgres_refuses_connections_while_stopped_and_keeps_commits():
    require_private_services()
    with private_postgres() as postgres:
        url = postgres.create_database("probe")
        assert url.endswith("/probe")
        with postgres.connect("probe", autocommit=True) as connection:
            connection.execute("CREATE TABLE t (n int)")
            connection.execute("INSERT INTO t VALUES (1)")
        with postgres.stopped(), pytest.raises(psycopg.OperationalError):
            postgres.connect("probe")
        with postgres.connect("probe") as connection:
            assert connection.execute("SELECT n FROM t").fetchall() == [(1,)]
