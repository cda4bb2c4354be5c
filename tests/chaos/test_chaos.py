"""R01–R06, R08, R09 and G1 in one run: nothing the API accepted is lost, doubled or
published unchecked while workers, Redis, PostgreSQL and Akismet fail under load.

Real processes on a private Redis and PostgreSQL: granian (2 workers), a threads
worker (production pool) and a prefork worker (2 children), beat with short
sweep/recheck periods, and the Akismet stand-in. A few thousand comments arrive
at a steady rate with Idempotency-Keys (10 % sent twice) while a schedule kills
pool children mid-check and whole workers, restarts Redis (once keeping its
data while checks are in flight, once after FLUSHALL with a backlog queued),
stops PostgreSQL for 30 s and puts Akismet through timeouts, 503s and garbage,
while a moderator overrules some verdicts. A worker or beat that exits on its
own is a failure (and is restarted, as systemd would, so the run goes on).
Then the system drains and SQL audits every row.
Bounded: about 240 s of load, at most 90 s of client retries and 4.5 min of drain.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from tests.chaos.audit import audit
from tests.chaos.faults import Chaos, Moderator, Timeline, run_schedule, supervising
from tests.chaos.harness import REPORT_DIR, drain, report, running_system
from tests.chaos.load import Load

pytestmark = pytest.mark.services

COMMENTS = int(os.environ.get("CHAOS_COMMENTS", "2400"))
RATE = float(os.environ.get("CHAOS_RATE", "10"))  # comments per second
CHECK_LATENCY = 0.4  # seconds per Akismet answer: checks are slow, so kills land mid-check
AKISMET_TIMEOUT = 1.5
DB_OUTAGE_SECONDS = 30.0
AKISMET_PHASE_SECONDS = 12.0
DRAIN_SECONDS = 180.0


def test_nothing_accepted_is_lost_doubled_or_published_unchecked():
    started = time.monotonic()
    with running_system(
        "chaos", ["chaos-article"], extra_env={"AKISMET_TIMEOUT": str(AKISMET_TIMEOUT)}
    ) as setup:
        stack = setup.stack
        article_id = setup.articles["chaos-article"]
        stack.start_standin(latency=CHECK_LATENCY)
        stack.start_web()
        stack.start_threads_worker()
        stack.start_prefork_worker()
        stack.start_beat()
        load = Load(
            f"http://127.0.0.1:{stack.web_port}",
            "chaos-article",
            count=COMMENTS,
            rate=RATE,
            prefix="chaos",
        )
        timeline = Timeline()
        chaos = Chaos(stack, timeline)
        moderator = Moderator(stack, setup.token, article_id)
        duration = COMMENTS / RATE
        schedule = [
            (0.05 * duration, chaos.kill_pool_child),
            (0.10 * duration, lambda: chaos.kill_worker("threads")),
            (0.15 * duration, chaos.kill_pool_child),
            (
                0.20 * duration,
                lambda: chaos.restart_redis(flush=False, down_seconds=6, checks_in_flight=True),
            ),
            (0.27 * duration, chaos.kill_pool_child),
            (0.32 * duration, lambda: chaos.postgres_outage(DB_OUTAGE_SECONDS)),
            (0.50 * duration, lambda: chaos.kill_worker("prefork")),
            (0.56 * duration, chaos.kill_pool_child),
            (
                0.60 * duration,
                lambda: chaos.restart_redis(flush=True, down_seconds=5, backlog_seconds=8),
            ),
            (
                0.67 * duration,
                lambda: chaos.akismet_outage(AKISMET_PHASE_SECONDS, AKISMET_TIMEOUT * 2),
            ),
            (0.88 * duration, chaos.kill_pool_child),
            (0.94 * duration, chaos.kill_pool_child),
        ]
        stop = threading.Event()
        threads = [
            threading.Thread(target=run_schedule, args=(timeline, schedule, stop), daemon=True),
            threading.Thread(
                target=moderator.run,
                args=(stop, 3.0, timeline.origin + duration),
                daemon=True,
            ),
        ]
        with supervising(stack, timeline) as supervisor:
            try:
                for thread in threads:
                    thread.start()
                load.run(retry_window=90)
            finally:
                load_ended = time.monotonic()
                stop.set()
                for thread in threads:
                    thread.join(timeout=120)
                load.close()
                moderator.close()
            stack.standin.set_latency(0.05)  # healthy again (the outage cleared its faults)
            drained = drain(stack, [article_id], timeout=DRAIN_SECONDS)
        drained["seconds from the last submission to drained"] = round(
            time.monotonic() - load_ended, 1
        )
        killed = sorted(set(chaos.killed_checks))
        with stack.sql() as connection:
            result = audit(
                connection,
                article_id,
                load.ledger,
                mail_dir=stack.mail_dir,
                standin_requests=stack.standin.requests(),
                moderator_actions=moderator.actions,
                takeovers=stack.stale_claim_takeovers(),
                allowed_5xx=[
                    (start - 1.0, end + 10.0)
                    for start, end in timeline.windows("PostgreSQL stopped")
                ],
            )
            final_of_killed = dict(
                connection.execute(
                    "SELECT status, count(*) FROM comments_comment WHERE id = ANY(%s)"
                    " GROUP BY status",
                    [killed],
                ).fetchall()
            )
        db_outages = timeline.windows("PostgreSQL stopped")
        result.figures["503 answers while PostgreSQL was down (retries included)"] = sum(
            1
            for record in load.ledger.values()
            for attempt in record.attempts
            if attempt.status == 503
            and any(
                start - 1 <= attempt.done and attempt.sent <= end + 10 for start, end in db_outages
            )
        )
        result.figures["comments whose check was SIGKILLed → final status"] = final_of_killed
        for error in timeline.errors():
            result.problem(f"fault did not run as planned: {error}")
        if chaos.counts["of them mid-check"] < 2:
            result.problem("fewer than 2 SIGKILLs landed mid-check: R01 was not exercised")
        for death in supervisor.deaths:
            result.problem(f"a process died on its own (restarted, as systemd would): {death}")
        if drained["pending / held-unavailable when the drain ended"][0]:
            result.problem(f"still pending after a {DRAIN_SECONDS:.0f}s drain")
        if not drained["broker empty at the end"]:
            result.problem(
                "the broker still held messages after the drain: "
                f"{drained['messages queued / unacked at the end']}"
            )
        load.dump(REPORT_DIR / "chaos-ledger.jsonl")
        text = report(
            "chaos",
            {
                "load": load.figures(),
                "faults": chaos.counts,
                "timeline": timeline.describe(),
                "drain": drained,
                "run": {"wall seconds": round(time.monotonic() - started, 1)},
            },
            result,
            stack,
        )
        assert result.problems == [], text
