"""Hands committed comments to the workers in batches, off the request thread.

Publishing one Celery message costs more CPU than the rest of a submission's
database work (kombu builds the message and a Redis client each time). Under load
a web process therefore collects the ids committed within a few milliseconds and
publishes them as one `check_comments` message; the worker checks them side by
side. With `COMMENTS_DISPATCH_BATCH_MS=0` every id is published at once as its own
`check_comment` task, as before.

Nothing depends on these messages arriving: every comment is committed `pending`
with a `next_check_at` deadline before its id gets here, so an id lost with a
crashed process or an unreachable broker is found by the sweeper.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from django.conf import settings

logger = logging.getLogger(__name__)

MAX_BATCH = 100


class CheckDispatcher:
    def __init__(self) -> None:
        self._ids: list[int] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pid: int | None = None

    def add(self, comment_id: int) -> None:
        window = settings.COMMENTS_DISPATCH_BATCH_MS / 1000
        if window <= 0:
            publish([comment_id])
            return
        with self._lock:
            if self._pid != os.getpid():  # first use, or a forked child: a thread of our own
                self._ids = []
                self._pid = os.getpid()
                threading.Thread(
                    target=self._run, args=(window,), name="check-dispatcher", daemon=True
                ).start()
            self._ids.append(comment_id)
        self._wake.set()

    def _run(self, window: float) -> None:
        while True:
            self._wake.wait()
            time.sleep(window)  # let the ids committed meanwhile join this batch
            with self._lock:
                batch, self._ids = self._ids[:MAX_BATCH], self._ids[MAX_BATCH:]
                if not self._ids:
                    self._wake.clear()
            if batch:
                publish(batch)


def publish(comment_ids: list[int]) -> None:
    """One message for the batch; a broker failure is logged, the sweeper covers it."""
    from comments.tasks import check_comment, check_comments

    try:
        if len(comment_ids) == 1:
            check_comment.delay(comment_ids[0])
        else:
            check_comments.delay(comment_ids)
    except Exception:
        logger.exception(
            "could not enqueue the checks of comments %s; the sweeper will", comment_ids
        )


dispatcher = CheckDispatcher()
