"""A steady stream of comment submissions over HTTP, and the ledger of every answer.

Each comment has its own Idempotency-Key, carried in its body as `ref:<key>`
so the audit can find its rows whatever the server stores. A share of the keys
is sent twice with the same payload (a double click: both at once; a client
retry: one after the other). A submission answered 503 or not at all is sent
again with the same key after Retry-After, as the widget's retry button does.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

KEY_PATTERN = re.compile(r"ref:([a-z]+\d{5}x[0-9a-f]{8})")

# name and weight; the comment in each line is what it ends as when nobody intervenes.
KINDS: list[tuple[str, int]] = [
    ("ham", 56),  # published
    ("spam_marker", 9),  # spam ([[spam]])
    ("discard", 4),  # spam, discarded
    ("spam_author", 5),  # spam (akismet-guaranteed-spam)
    ("honeypot", 3),  # spam by the local rule, Akismet not asked
    ("links", 10),  # held: too many links (moderators get an e-mail)
    ("alert", 5),  # held: X-akismet-alert-code
    ("error_header", 3),  # held: X-akismet-error
    ("recheck_after", 5),  # pending until the sweeper rechecks; held after 5 rounds
]
SPAM_KINDS = {"spam_marker", "discard", "spam_author", "honeypot"}
TOPICS = ["the budget", "the new bridge", "the election", "the match", "rail fares", "the museum"]


def payload_for(kind: str, key: str, n: int) -> dict[str, Any]:
    """The JSON a reader's widget would send; the stand-in judges it by its triggers."""
    topic = TOPICS[n % len(TOPICS)]
    body = f"I read the piece on {topic} twice and mostly agree."
    fields: dict[str, Any] = {"author_name": f"Reader {n}", "author_email": f"r{n}@example.com"}
    if kind == "spam_marker":
        body = f"Cheap watches, best prices on {topic} [[spam]]"
    elif kind == "discard":
        body = f"BUY NOW {topic} [[discard]]"
    elif kind == "spam_author":
        fields["author_name"] = "akismet-guaranteed-spam"
    elif kind == "honeypot":
        fields["website"] = "http://bot.example/"
    elif kind == "links":
        body = f"Sources on {topic}: https://a.example/one and https://b.example/two"
    elif kind == "alert":
        body = f"A remark on {topic}. [[alert:10011]]"
    elif kind == "error_header":
        body = f"Another remark on {topic}. [[error:suspended]]"
    elif kind == "recheck_after":
        body = f"Hmm, {topic}. [[recheck-after:2]]"
    fields["body"] = f"{body} ref:{key}"
    return fields


@dataclass
class Attempt:
    sent: float  # monotonic
    done: float
    status: int | None  # None: no HTTP answer
    comment_id: int | None = None
    detail: str = ""
    concurrent: bool = False


@dataclass
class KeyRecord:
    key: str
    kind: str
    payload: dict[str, Any]
    duplicate: str = ""  # "", "concurrent" or "sequential"
    attempts: list[Attempt] = field(default_factory=list)
    next_retry: float | None = None

    @property
    def accepted_ids(self) -> set[int]:
        return {a.comment_id for a in self.attempts if a.status == 202 and a.comment_id}

    @property
    def accepted(self) -> bool:
        return any(a.status == 202 for a in self.attempts)


class Load:
    """Submits `count` comments at `rate` per second, from a pool of client threads."""

    def __init__(
        self,
        base_url: str,
        slug: str,
        *,
        count: int,
        rate: float,
        prefix: str,
        duplicate_share: float = 0.10,
        kinds: list[str] | None = None,
        seed: int = 8,
    ) -> None:
        self.url = f"/api/v1/articles/{slug}/comments/"
        self.count = count
        self.rate = rate
        self.prefix = prefix
        self.duplicate_share = duplicate_share
        self.kinds = [(k, w) for k, w in KINDS if kinds is None or k in kinds]
        self.random = random.Random(seed)
        self.http = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(15.0, connect=5.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )
        self.pool = ThreadPoolExecutor(max_workers=48, thread_name_prefix="client")
        self.ledger: dict[str, KeyRecord] = {}
        self.lock = threading.Lock()
        self.started = 0.0
        self.submit_ended = 0.0
        self.stop = threading.Event()

    # --- sending ------------------------------------------------------------------------

    def _send(self, record: KeyRecord, *, concurrent: bool = False) -> Attempt:
        sent = time.monotonic()
        try:
            response = self.http.post(
                self.url,
                json=record.payload,
                headers={
                    "Idempotency-Key": record.key,
                    "User-Agent": "Mozilla/5.0 (chaos client)",
                    "Referer": "https://news.example.com/",
                },
            )
        except httpx.HTTPError as exc:
            attempt = Attempt(sent, time.monotonic(), None, detail=repr(exc)[:200])
        else:
            comment_id = None
            if response.status_code == 202:
                comment_id = response.json().get("id")
            attempt = Attempt(
                sent,
                time.monotonic(),
                response.status_code,
                comment_id,
                detail="" if response.status_code == 202 else response.text[:200],
                concurrent=concurrent,
            )
        with self.lock:
            record.attempts.append(attempt)
            if attempt.status == 202:
                record.next_retry = None
            elif (attempt.status is None or attempt.status >= 500) and not record.accepted:
                # Retry-After (5 s), then backing off, with jitter: readers retry unevenly.
                failures = sum(a.status != 202 for a in record.attempts)
                delay = min(20.0, 5.0 * 2 ** (failures - 1)) * self.random.uniform(0.8, 1.2)
                record.next_retry = time.monotonic() + delay
        return attempt

    def _first_submission(self, record: KeyRecord) -> None:
        if record.duplicate == "concurrent":
            # A double click: the second request leaves before the first is answered.
            # (Its own thread: waiting on the busy client pool could deadlock it.)
            twin = threading.Thread(target=self._send, args=(record,), kwargs={"concurrent": True})
            twin.start()
            self._send(record, concurrent=True)
            twin.join(timeout=60)
            return
        self._send(record)
        if record.duplicate == "sequential":
            # A client that did not see the answer in time and sends again.
            time.sleep(self.random.uniform(0.2, 2.0))
            self._send(record)

    def _new_record(self, n: int) -> KeyRecord:
        kinds, weights = zip(*self.kinds, strict=True)
        kind = self.random.choices(kinds, weights)[0]
        key = f"{self.prefix}{n:05d}x{uuid.uuid4().hex[:8]}"
        duplicate = ""
        if self.random.random() < self.duplicate_share:
            duplicate = self.random.choice(["concurrent", "sequential"])
        return KeyRecord(key, kind, payload_for(kind, key, n), duplicate)

    def run(self, retry_window: float = 90.0) -> None:
        """Submit everything at the steady rate, then retry the unanswered keys.

        Bounded: the submissions take count / rate seconds (plus the client
        pool's lag), the retries at most `retry_window` seconds after that.
        """
        self.started = time.monotonic()
        futures = []
        for n in range(self.count):
            if self.stop.is_set():
                break
            due = self.started + n / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            record = self._new_record(n)
            with self.lock:
                self.ledger[record.key] = record
            futures.append(self.pool.submit(self._first_submission, record))
            self._retry_due()
        for future in futures:
            future.result(timeout=120)
        self.submit_ended = time.monotonic()
        deadline = self.submit_ended + retry_window
        while time.monotonic() < deadline and not self.stop.is_set():
            if not self._retry_due(wait=True):
                break
            time.sleep(0.5)

    def _retry_due(self, *, wait: bool = False) -> bool:
        """Resend keys whose retry time has come; True while any key still waits for one."""
        now = time.monotonic()
        with self.lock:
            waiting = [r for r in self.ledger.values() if r.next_retry is not None]
            due = [r for r in waiting if r.next_retry <= now]
            for record in due:
                record.next_retry = None
        futures = [self.pool.submit(self._send, record) for record in due]
        if wait:
            for future in futures:
                future.result(timeout=60)
        return bool(waiting)

    def close(self) -> None:
        self.stop.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.http.close()

    # --- figures ------------------------------------------------------------------------

    def dump(self, path: Path) -> None:
        """The ledger, one key per line: every answer the API gave, for a post-mortem."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as out:
            for record in self.ledger.values():
                attempts = [
                    {
                        "sent": round(a.sent - self.started, 3),
                        "seconds": round(a.done - a.sent, 3),
                        "status": a.status,
                        "comment_id": a.comment_id,
                        "detail": a.detail,
                    }
                    for a in record.attempts
                ]
                line = {"key": record.key, "kind": record.kind, "duplicate": record.duplicate}
                out.write(json.dumps({**line, "attempts": attempts}) + "\n")

    def statuses(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for record in self.ledger.values():
            for attempt in record.attempts:
                counts[str(attempt.status) if attempt.status else "no answer"] += 1
        return counts

    def figures(self) -> dict[str, Any]:
        records = list(self.ledger.values())
        replays = sum(
            1 for r in records if r.duplicate and sum(a.status == 202 for a in r.attempts) >= 2
        )
        retried = [r for r in records if any(a.status != 202 for a in r.attempts)]
        return {
            "keys submitted": len(records),
            "requests sent": sum(len(r.attempts) for r in records),
            "keys sent twice on purpose": sum(1 for r in records if r.duplicate),
            "of them at once (double click)": sum(r.duplicate == "concurrent" for r in records),
            "duplicates answered 202 (replayed)": replays,
            "keys accepted (202)": sum(r.accepted for r in records),
            "keys never accepted": sum(not r.accepted for r in records),
            "keys that needed a retry": len(retried),
            "answers by status": dict(sorted(self.statuses().items())),
            "kinds": dict(Counter(r.kind for r in records)),
        }
