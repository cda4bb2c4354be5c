"""What both chaos tests share: a running stack on private services, the drain, the report."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.chaos.audit import Audit
from tests.chaos.stack import ROOT, Stack, wait_until
from tests.private_services import private_postgres, private_redis, require_private_services

REPORT_DIR = ROOT / "var" / "chaos"

# Short periods, so one run sees sweeps and rechecks; the production defaults are
# 60 s / 30 s / 300 s. Visibility timeout: below production's 300 s so a killed
# worker's messages come back within the run, and still above the longest retry
# countdown (submit_feedback waits CELERY_TASK_TIME_LIMIT + 1 = 91 s for a claim in
# progress) plus a task's run, so a live worker's delayed retry is never handed out
# twice (Celery's documented Redis caveat, a configuration duty, not our code).
FAST_RECOVERY_ENV = {
    "CELERY_VISIBILITY_TIMEOUT": "120",
    "COMMENTS_SWEEP_AFTER_SECONDS": "20",
    "COMMENTS_SWEEP_INTERVAL_SECONDS": "5",
    "COMMENTS_CHECK_RETRIES": "3",
    "COMMENTS_RECHECK_INTERVAL_SECONDS": "10",
    "COMMENTS_RECHECK_MAX_SECONDS": "30",
    "COMMENTS_RECHECK_POLL_SECONDS": "5",
    "COMMENTS_RECHECK_BATCH": "50",
}


@dataclass
class Setup:
    stack: Stack
    articles: dict[str, int]
    token: str


@contextlib.contextmanager
def running_system(
    name: str, slugs: list[str], *, extra_env: dict[str, str] | None = None
) -> Iterator[Setup]:
    """Private Redis + PostgreSQL and a migrated database; processes are started by the test.

    Everything is stopped at the end; the process logs are kept in var/chaos/ when
    the block fails.
    """
    require_private_services()
    workdir = Path(tempfile.mkdtemp(prefix=f"chaos-{name}-"))
    failed = False
    try:
        with private_redis() as redis, private_postgres() as postgres:
            stack = Stack(
                workdir, redis, postgres, extra_env={**FAST_RECOVERY_ENV, **(extra_env or {})}
            )
            try:
                info = stack.prepare_database(slugs)
                yield Setup(stack, info["articles"], info["token"])
            except BaseException:
                failed = True
                raise
            finally:
                stack.close()
                if failed:
                    stack.keep_logs(REPORT_DIR / f"{name}-logs")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def comment_counts(stack: Stack, article_ids: list[int]) -> tuple[int, int]:
    """Pending comments, and comments held only because Akismet was unavailable."""
    with stack.sql() as connection:
        row = connection.execute(
            "SELECT count(*) FILTER (WHERE status = 'pending'),"
            " count(*) FILTER (WHERE status = 'held' AND held_reason = 'check_unavailable')"
            " FROM comments_comment WHERE article_id = ANY(%s)",
            [article_ids],
        ).fetchone()
    return int(row[0]), int(row[1])


def drain(
    stack: Stack, article_ids: list[int], *, timeout: float, rechecks_too: bool = True
) -> dict[str, Any]:
    """Wait (bounded) until no comment is pending, no check is in flight and the broker is empty.

    With `rechecks_too`, comments held because Akismet was unavailable must also
    have been rechecked. Then beat stops, and the drain waits for every queued or
    unacknowledged message (a killed worker's come back after the visibility
    timeout; a new worker restores them at once) so no late side effect escapes
    the audit.
    """
    started = time.monotonic()
    figures: dict[str, Any] = {}
    visibility = float(stack.env.get("CELERY_VISIBILITY_TIMEOUT", "300"))

    def settled() -> bool:
        pending, unavailable = comment_counts(stack, article_ids)
        return pending == 0 and (unavailable == 0 or not rechecks_too)

    wait_until(settled, timeout, interval=1.0)
    pending, unavailable = comment_counts(stack, article_ids)
    figures["seconds until nothing pending"] = round(time.monotonic() - started, 1)
    figures["pending / held-unavailable when the drain ended"] = (pending, unavailable)
    stack.stop_beat()
    restored = False

    def broker_quiet() -> bool:
        nonlocal restored
        queued, unacked = stack.broker_backlog()
        in_flight = stack.standin.stats()["in_flight"] if stack.standin else 0
        if unacked and not queued and not restored and stack.oldest_unacked_age() > visibility:
            stack.start_worker("restorer")  # restores them when it starts
            restored = True
        return queued == 0 and unacked == 0 and in_flight == 0

    def quiet_twice() -> bool:  # a second look: beat-less, but a retry may be on its way
        if not broker_quiet():
            return False
        time.sleep(1.0)
        return broker_quiet()

    quiet = wait_until(quiet_twice, visibility + 30, interval=1.0)
    figures["broker empty at the end"] = quiet
    figures["messages queued / unacked at the end"] = stack.broker_backlog()
    figures["drain seconds"] = round(time.monotonic() - started, 1)
    return figures


def report(
    name: str,
    sections: dict[str, dict[str, Any] | list[str]],
    audit: Audit,
    stack: Stack | None = None,
) -> str:
    """Print the figures (visible with -s) and keep them in var/chaos/<name>-report.txt;
    with problems, the process logs go to var/chaos/<name>-logs/ as well."""
    lines = [f"=== chaos report: {name} ==="]
    for title, content in sections.items():
        lines.append(f"--- {title}")
        if isinstance(content, dict):
            lines += [
                f"  {key}: {json.dumps(value, default=str)}" for key, value in content.items()
            ]
        else:
            lines += [f"  {line}" for line in content]
    lines.append("--- audit")
    lines += [f"  {key}: {json.dumps(value, default=str)}" for key, value in audit.figures.items()]
    lines.append(f"--- problems: {len(audit.problems)}")
    lines += [f"  ✗ {problem}" for problem in audit.problems] or ["  none"]
    text = "\n".join(lines)
    print("\n" + text, flush=True)
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / f"{name}-report.txt").write_text(text + "\n")
    if audit.problems and stack is not None:
        stack.keep_logs(REPORT_DIR / f"{name}-logs")
    return text
