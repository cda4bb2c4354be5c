"""R12: a worker stopped with SIGTERM (a deploy) loses no comment.

Beat is not running here: no sweeper can hide a lost message, so everything
must come from the warm shutdown itself (running checks finish, unstarted
messages go back to the queue) and the next worker. Same audit as the chaos run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.chaos.audit import Audit, audit
from tests.chaos.faults import checked_ids
from tests.chaos.harness import Setup, comment_counts, drain, report, running_system
from tests.chaos.load import Load
from tests.chaos.stack import wait_until

pytestmark = pytest.mark.services

# Kinds that end without beat's sweeper or rechecks.
KINDS = ["ham", "spam_marker", "spam_author", "honeypot", "links", "alert"]
SLOW_CHECK = 2.0  # seconds per Akismet answer while the worker is told to stop


@pytest.fixture(scope="module")
def system() -> Iterator[Setup]:
    with running_system(
        "graceful",
        ["sigterm-article", "rolling-article"],
        extra_env={"AKISMET_TIMEOUT": "5"},
    ) as setup:
        setup.stack.start_standin()
        setup.stack.start_web()
        yield setup


def audit_article(setup: Setup, slug: str, load: Load) -> Audit:
    stack = setup.stack
    with stack.sql() as connection:
        result = audit(
            connection,
            setup.articles[slug],
            load.ledger,
            mail_dir=stack.mail_dir,
            standin_requests=stack.standin.requests(),
        )
    return result


def test_sigterm_lets_running_checks_finish_and_loses_none(system):
    stack = system.stack
    article_id = system.articles["sigterm-article"]
    stack.standin.set_latency(SLOW_CHECK)
    worker = stack.start_worker("threads", {"CELERY_WORKER_CONCURRENCY": "4"})
    load = Load(
        f"http://127.0.0.1:{stack.web_port}",
        "sigterm-article",
        count=12,
        rate=50,
        prefix="sigterm",
        duplicate_share=0,
        kinds=KINDS,
    )
    try:
        load.run(retry_window=10)
    finally:
        load.close()
    assert wait_until(lambda: stack.standin.stats()["in_flight"] >= 4, 20), "no check in flight"
    running = stack.control().control.inspect(destination=[worker.node], timeout=2).active()
    tasks = (running or {}).get(worker.node, [])
    in_flight = sorted(comment_id for task in tasks for comment_id in checked_ids(task))

    exit_seconds = worker.terminate(timeout=30)
    stack.retire("threads")
    with stack.sql() as connection:
        finished = [
            row[0]
            for row in connection.execute(
                "SELECT id FROM comments_comment WHERE id = ANY(%s) AND status <> 'pending'",
                [in_flight],
            )
        ]
    pending_after_stop, _ = comment_counts(stack, [article_id])

    stack.standin.set_latency(0.05)
    stack.start_threads_worker()
    drained = drain(stack, [article_id], timeout=60, rechecks_too=False)
    stack.workers.pop("threads").terminate(timeout=30)

    result = audit_article(system, "sigterm-article", load)
    figures = {
        "checks running at SIGTERM": in_flight,
        "of them finished during the warm shutdown": finished,
        "seconds from SIGTERM to exit": exit_seconds,
        "exit code": worker.process.returncode,
        "pending when the worker had stopped (checked by the next one)": pending_after_stop,
    }
    if exit_seconds is None:
        result.problem("the worker did not stop within 30 s of SIGTERM (it was killed)")
    elif worker.process.returncode != 0:
        result.problem(f"the worker exited with {worker.process.returncode} after SIGTERM")
    if not in_flight:
        result.problem("no check was running at SIGTERM: the test proved nothing")
    text = report(
        "graceful-sigterm",
        {"shutdown": figures, "load": load.figures(), "drain": drained},
        result,
        stack,
    )
    assert result.problems == [], text


def test_rolling_restart_of_both_workers_under_load_loses_nothing(system):
    stack = system.stack
    article_id = system.articles["rolling-article"]
    stack.standin.set_latency(0.5)
    stack.start_threads_worker()
    stack.start_prefork_worker()
    load = Load(
        f"http://127.0.0.1:{stack.web_port}",
        "rolling-article",
        count=360,
        rate=6,
        prefix="rolling",
        kinds=KINDS,
    )
    sender = threading.Thread(target=load.run, kwargs={"retry_window": 30}, daemon=True)
    restarts: list[str] = []
    problems: list[str] = []
    sender.start()
    wait_until(lambda: load.started, 10)
    try:
        # A rolling deploy: start the new worker, then SIGTERM the old one, one role at a time.
        for n, role in enumerate(["threads", "prefork", "threads", "prefork"]):
            time.sleep(max(0.0, 12.0 * (n + 1) - (time.monotonic() - load.started)))
            old = stack.workers[role]
            stack.retire(role)
            stack.start_role(role)
            seconds = old.terminate(timeout=60)
            restarts.append(f"{old.node}: exit {old.process.returncode} after {seconds}s")
            if seconds is None or old.process.returncode != 0:
                problems.append(f"{old.node} did not stop cleanly on SIGTERM ({seconds}s)")
    finally:
        sender.join(timeout=180)
        load.close()
    drained = drain(stack, [article_id], timeout=90, rechecks_too=False)
    for role in list(stack.workers):
        stack.workers.pop(role).terminate(timeout=30)

    result = audit_article(system, "rolling-article", load)
    result.problems += problems
    text = report(
        "graceful-rolling",
        {"restarts": restarts, "load": load.figures(), "drain": drained},
        result,
        stack,
    )
    assert result.problems == [], text
