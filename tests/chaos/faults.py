"""Faults for the chaos run, each recorded on a timeline with its start and end."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.chaos.audit import ModeratorAction
from tests.chaos.stack import Proc, Stack, child_pids, wait_until


def checked_ids(task: dict[str, Any]) -> list[int]:
    """The comments an active Celery task (from `inspect().active()`) is checking."""
    name, args = task.get("name", ""), task.get("args") or []
    if name.endswith(".check_comment") and args:
        return [args[0]]
    if name.endswith(".check_comments") and args:
        return list(args[0])
    return []


@dataclass
class Event:
    name: str
    start: float  # monotonic
    end: float = 0.0
    detail: str = ""
    error: str = ""


@dataclass
class Timeline:
    origin: float = field(default_factory=time.monotonic)
    events: list[Event] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def span(self, name: str) -> Iterator[Event]:
        event = Event(name, time.monotonic())
        with self.lock:
            self.events.append(event)
        try:
            yield event
        except Exception as exc:
            event.error = f"{type(exc).__name__}: {exc}"[:500]
            event.detail += "\n" + traceback.format_exc(limit=3)
        finally:
            event.end = time.monotonic()

    def windows(self, name: str) -> list[tuple[float, float]]:
        return [(e.start, e.end) for e in self.events if e.name == name]

    def errors(self) -> list[str]:
        return [f"{e.name}: {e.error}" for e in self.events if e.error]

    def describe(self) -> list[str]:
        return [
            f"t={e.start - self.origin:6.1f}s … {e.end - self.origin:6.1f}s  {e.name}"
            + (f"  ({e.detail.strip()})" if e.detail.strip() else "")
            + (f"  FAILED {e.error}" if e.error else "")
            for e in self.events
        ]


class Chaos:
    """The faults one run plays against a stack."""

    def __init__(self, stack: Stack, timeline: Timeline, seed: int = 4) -> None:
        self.stack = stack
        self.timeline = timeline
        self.random = random.Random(seed)
        self.control = stack.control()
        self.killed_checks: list[int] = []  # comments whose check a SIGKILL interrupted
        self.counts: dict[str, int] = {
            "pool children SIGKILLed": 0,
            "of them mid-check": 0,
            "whole workers SIGKILLed": 0,
            "workers restarted": 0,
            "Redis restarts": 0,
            "Redis restarts after FLUSHALL": 0,
            "PostgreSQL outages": 0,
            "Akismet outages": 0,
        }

    def _active_checks(self, node: str) -> list[tuple[int, list[int]]]:
        """(pool process id, comment ids) of every check the node is running."""
        with contextlib.suppress(Exception):
            replies = self.control.control.inspect(destination=[node], timeout=1.0).active()
            return [
                (task.get("worker_pid"), ids)
                for task in (replies or {}).get(node, [])
                if (ids := checked_ids(task))
            ]
        return []

    def kill_pool_child(self, search_seconds: float = 10.0) -> None:
        """SIGKILL a prefork pool child, preferably one in the middle of a check."""
        with self.timeline.span("SIGKILL prefork pool child") as event:
            # The supervisor may be replacing a worker that died on its own.
            def prefork_up() -> bool:
                proc = self.stack.workers.get("prefork")
                return bool(proc and proc.alive() and child_pids(proc.pid))

            wait_until(prefork_up, 60)
            proc = self.stack.workers["prefork"]
            deadline = time.monotonic() + search_seconds
            target, comment_ids = None, []
            while time.monotonic() < deadline and target is None:
                children = set(child_pids(proc.pid))
                for pid, ids in self._active_checks(proc.node):
                    if pid in children:
                        target, comment_ids = pid, ids
                        break
                else:
                    time.sleep(0.3)
            if target is None:
                children = child_pids(proc.pid)
                if not children:
                    raise RuntimeError("the prefork worker has no pool children")
                target = self.random.choice(children)
            os.kill(target, signal.SIGKILL)
            self.counts["pool children SIGKILLed"] += 1
            if comment_ids:
                self.counts["of them mid-check"] += 1
                self.killed_checks += comment_ids
                event.detail = f"pid {target}, checking comments {comment_ids}"
            else:
                event.detail = f"pid {target}, idle"

    def kill_worker(self, role: str, down_seconds: float = 2.0) -> None:
        """SIGKILL a worker with its pool (a lost node), then start a new one."""
        with self.timeline.span(f"SIGKILL whole {role} worker, restart") as event:
            proc = self.stack.workers[role]
            active = [i for _, ids in self._active_checks(proc.node) for i in ids]
            with self.stack.lock:
                proc.kill()
                self.stack.retire(role)
                self.counts["whole workers SIGKILLed"] += 1
                self.killed_checks += active
                event.detail = f"{proc.node}, {len(active)} checks running"
                time.sleep(down_seconds)
                self.stack.start_role(role)
            self.counts["workers restarted"] += 1

    def restart_redis(
        self,
        *,
        flush: bool,
        down_seconds: float,
        backlog_seconds: float = 0.0,
        checks_in_flight: bool = False,
    ) -> None:
        """Restart Redis; with `flush` every message in it is lost first.

        With `backlog_seconds`, the workers are paused (SIGSTOP) that long before,
        so a queue of unchecked comments builds up for the flush to lose (R04).
        With `checks_in_flight`, Akismet answers slowly and Redis goes down only
        once a check is waiting for it: acks of running tasks must survive (R03).
        """
        name = "Redis FLUSHALL + restart" if flush else "Redis restart (data kept)"
        standin = self.stack.standin
        latency = standin.latency_seconds
        if checks_in_flight:
            standin.set_latency(2.0)
            wait_until(lambda: standin.stats()["in_flight"] > 0, 15, interval=0.1)
        with self.timeline.span(name) as event, self.stack.lock:
            event.detail = f"checks in flight {standin.stats()['in_flight']}; "
            workers = self.stack.workers.values()
            paused = [p for p in workers if p.alive()] if backlog_seconds else []
            for proc in paused:
                os.killpg(proc.pid, signal.SIGSTOP)
            try:
                time.sleep(backlog_seconds)
                backlog = self.stack.broker_backlog()
                event.detail += f"queued {backlog[0]}, unacked {backlog[1]} before"
                self.stack.redis.restart(down_seconds, flush=flush)
            finally:
                for proc in paused:
                    os.killpg(proc.pid, signal.SIGCONT)
                standin.set_latency(latency)
            self.counts["Redis restarts after FLUSHALL" if flush else "Redis restarts"] += 1

    def postgres_outage(self, seconds: float) -> None:
        with self.timeline.span("PostgreSQL stopped"), self.stack.postgres.stopped():
            time.sleep(seconds)
        self.counts["PostgreSQL outages"] += 1

    def akismet_outage(self, phase_seconds: float, timeout_seconds: float) -> None:
        """Timeouts, then 503s, then garbage bodies; every request fails meanwhile."""
        standin = self.stack.standin
        assert standin is not None
        phases = [
            ("timeouts", {"kind": "hang", "seconds": timeout_seconds}),
            ("503s", {"kind": "status", "status": 503}),
            ("garbage", {"kind": "body", "body": "<html>Bad gateway</html>"}),
        ]
        with self.timeline.span("Akismet outage") as event:
            for name, fault in phases:
                standin.add_fault(**fault, endpoint="*", times=-1)
                try:
                    time.sleep(phase_seconds)
                finally:
                    standin.clear_faults()  # while the fault still answers every request
                event.detail += f"{name} {phase_seconds:.0f}s; "
        self.counts["Akismet outages"] += 1


class Supervisor:
    """Watches the processes as systemd would: a worker or beat that exits on its own is
    recorded (a problem: nobody asked it to) and started again, so the run goes on."""

    def __init__(self, stack: Stack, timeline: Timeline) -> None:
        self.stack = stack
        self.timeline = timeline
        self.deaths: list[str] = []

    @staticmethod
    def _last_words(proc: Proc) -> str:
        """The fatal log line: Celery's "Unrecoverable error" if there is one."""
        lines = proc.log_text().splitlines()
        for marker in ("Unrecoverable", "CRITICAL", "Traceback"):
            found = [line for line in lines if marker in line]
            if found:
                return found[-1][:300]
        return proc.log_tail(300)

    def check(self) -> None:
        with self.stack.lock:
            for role, proc in list(self.stack.workers.items()):
                if not proc.alive():
                    self._restart(proc, lambda role=role: self.stack.start_role(role), role)
            beat = self.stack.beat
            if beat is not None and not beat.alive():
                self._restart(beat, self.stack.start_beat, None)
            if self.stack.web is not None and not self.stack.web.alive():
                self.deaths.append(f"web server exited ({self.stack.web.process.returncode})")
                self.stack.retired.append(self.stack.web)
                self.stack.web = None

    def _restart(self, proc: Proc, start: Callable[[], object], role: str | None) -> None:
        with self.timeline.span(f"{proc.name} exited on its own; restarted") as event:
            words = self._last_words(proc)
            event.detail = f"exit {proc.process.returncode}: {words}"
            self.deaths.append(f"{proc.name} exited (code {proc.process.returncode}): {words}")
            if role is not None:
                self.stack.retire(role)
            else:
                self.stack.retired.append(proc)
            start()

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(1.0):
            self.check()


@contextlib.contextmanager
def supervising(stack: Stack, timeline: Timeline) -> Iterator[Supervisor]:
    """A supervisor watching for the block; it has stopped when the block ends."""
    supervisor = Supervisor(stack, timeline)
    stop = threading.Event()
    watcher = threading.Thread(target=supervisor.run, args=(stop,), daemon=True)
    watcher.start()
    try:
        yield supervisor
    finally:
        stop.set()
        watcher.join(timeout=90)


def run_schedule(
    timeline: Timeline, schedule: list[tuple[float, Callable[[], None]]], stop: threading.Event
) -> None:
    """Run each fault at its offset (seconds after the timeline's origin), one after another.

    A fault that runs late delays the next ones; each records its own failure.
    """
    for offset, action in schedule:
        delay = timeline.origin + offset - time.monotonic()
        if delay > 0 and stop.wait(delay):
            return
        if stop.is_set():
            return
        try:
            action()
        except Exception as exc:  # reported with the timeline, never silently
            now = time.monotonic()
            with timeline.lock:
                timeline.events.append(Event("fault schedule", now, now, error=repr(exc)[:500]))


class Moderator:
    """A moderator deciding finished comments through the API, now and then."""

    def __init__(self, stack: Stack, token: str, article_id: int, seed: int = 5) -> None:
        self.stack = stack
        self.article_id = article_id
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{stack.web_port}",
            headers={"Authorization": f"Token {token}"},
            timeout=15,
        )
        self.random = random.Random(seed)
        self.actions: list[ModeratorAction] = []
        self.decided: set[int] = set()

    # (action, SQL condition on a finished comment, feedback Akismet is owed)
    CHOICES = [
        ("approve", "status = 'spam' AND akismet_verdict = 'spam'", "ham"),
        ("spam", "status = 'published' AND akismet_verdict = 'ham'", "spam"),
        ("reject", "status = 'held' AND held_reason <> 'check_unavailable'", ""),
    ]

    def decide_one(self) -> None:
        action, condition, feedback = self.random.choice(self.CHOICES)
        try:
            with self.stack.sql() as connection:
                ids = [
                    row[0]
                    for row in connection.execute(
                        f"SELECT id FROM comments_comment WHERE article_id = %s AND {condition}"  # noqa: S608
                        " ORDER BY random() LIMIT 5",
                        [self.article_id],
                    )
                ]
        except Exception:  # the database may be down: a moderator just waits
            return
        ids = [i for i in ids if i not in self.decided]
        if not ids:
            return
        comment_id = ids[0]
        self.decided.add(comment_id)
        try:
            response = self.http.post(
                f"/api/v1/moderation/comments/{comment_id}/{action}/", json={}
            )
            status = response.status_code
        except httpx.HTTPError:
            status = None
        self.actions.append(ModeratorAction(comment_id, action, status, feedback))

    def run(self, stop: threading.Event, every: float, until: float) -> None:
        while not stop.wait(every) and time.monotonic() < until:
            self.decide_one()

    def close(self) -> None:
        self.http.close()
