"""`bench/run.py --smoke` works end to end on a fresh PostgreSQL database.

Checks that every figure was measured and nothing failed; timings are never
asserted. Needs PostgreSQL and Redis on 127.0.0.1 and wrk (`bash bench/setup.sh`):
skipped locally without them, a failure under CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
# A Redis database of the smoke run's own: the runner flushes it.
BENCH_REDIS_URL = "redis://127.0.0.1:6379/10"
ROWS = {
    "read-warm", "read-cold", "read-limits", "counts-warm", "counts-cold", "counts-limits",
    "submit", "submit-limits",
}  # fmt: skip


def _missing_services() -> list[str]:
    missing = []
    if not (shutil.which("wrk") or Path("/usr/bin/wrk").exists()):
        missing.append("wrk (bash bench/setup.sh)")
    try:
        psycopg.connect(f"{PG_SERVER}/postgres", connect_timeout=3).close()
    except psycopg.Error:
        missing.append("PostgreSQL on 127.0.0.1:5432")
    try:
        redis.Redis.from_url(BENCH_REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError:
        missing.append("Redis on 127.0.0.1:6379")
    return missing


@pytest.fixture
def bench_database_url() -> Iterator[str]:
    """A fresh database for the run, dropped afterwards."""
    missing = _missing_services()
    if missing:
        message = "the benchmark smoke test needs " + ", ".join(missing)
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    name = sql.Identifier(f"comments_bench_smoke_{os.getpid()}")
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    try:
        yield f"{PG_SERVER}/comments_bench_smoke_{os.getpid()}"
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


@pytest.mark.services
def test_smoke_run_measures_every_figure_without_errors(bench_database_url, tmp_path):
    output = tmp_path / "smoke.json"
    env = {
        **os.environ,
        "BENCH_DATABASE_URL": bench_database_url,
        "BENCH_REDIS_URL": BENCH_REDIS_URL,
    }
    result = subprocess.run(  # noqa: S603
        [sys.executable, "bench/run.py", "--smoke", "--output", str(output)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    data = json.loads(output.read_text())
    assert data["smoke"] is True
    assert not data["full"]
    (size,) = data["sizes"]
    assert size["n"] == 20
    assert size["queries"]["article_0_published"] == 20
    rows = {row["key"]: row for row in size["rows"]}
    assert set(rows) == ROWS
    floors = [figures for server in size["floors"].values() for figures in server.values()]
    assert len(floors) == 3
    for figures in [*rows.values(), *floors]:
        assert figures["requests"] > 0, figures
        assert figures["rps"] > 0, figures
        assert figures["p50_ms"] > 0, figures
        assert figures["errors"] == 0, figures
        assert figures["cpu_cores"]["disk_wait"] >= 0, figures
    # PostgreSQL flushed the seed's pages (and before each submit figure) when told to.
    assert not [warning for warning in data["warnings"] if "CHECKPOINT" in warning]
    assert set(rows["submit"]["statuses"]) == {"202"}
    # With the limits at their defaults every submit is still accepted (no 400 for the
    # form token, no 429 from a throttle or flood control); the duplicate check and the
    # Idempotency-Key's look-up add a query each.
    assert set(rows["submit-limits"]["statuses"]) == {"202"}
    assert rows["submit-limits"]["sql"] == rows["submit"]["sql"] + 2
    # Every read from its own address: the read limit counts them all and refuses none.
    assert set(rows["read-limits"]["statuses"]) == {"200"}
    assert set(rows["counts-limits"]["statuses"]) == {"200"}
    for row in rows.values():
        assert row["body_bytes"] > 0, row
        assert row["ratio_floor"] > 0, row
    # Computing the page and the counts needs the database; a submit writes to it.
    assert rows["read-cold"]["sql"] > 0
    assert rows["counts-cold"]["sql"] > 0
    assert rows["submit"]["sql"] > 0
    for processes in size["memory"].values():
        assert processes, size["memory"]
        assert all(process["hwm_kib"] > 0 for process in processes)
    assert data.get("pipeline", {}) is None or "error" not in data["pipeline"]
    assert "| 20 | comment page, cache warm |" in result.stdout
