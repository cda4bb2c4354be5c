"""Wait for the test worker to finish what it is doing, before a test's database is
flushed: a task still writing (a check, a moderator e-mail) while TRUNCATE runs
ends in a deadlock or a half-cleaned database."""

from __future__ import annotations

import time

from django.conf import settings


def wait_until_worker_idle(timeout: float = 20.0) -> None:
    from comments_project.celery import app

    deadline = time.monotonic() + timeout
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    while time.monotonic() < deadline:
        inspector = app.control.inspect(timeout=0.5)
        busy = [
            task
            for replies in (inspector.active() or {}, inspector.reserved() or {})
            for tasks in replies.values()
            for task in tasks
        ]
        with app.connection_for_read() as connection:
            waiting = connection.default_channel.client.llen(queue)
        if not busy and not waiting:
            return
        time.sleep(0.2)
