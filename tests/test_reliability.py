"""Reliability: side effects once under redelivery (R08), the sweeper, and a broker that is
down when a comment is submitted (R03).

Celery may run a task twice (acks_late after a killed worker, a visibility-timeout
redelivery, a retry); the moderator e-mail and the Akismet feedback are claimed once per
decision (comments.models.SideEffect). "Delivered twice" below is what a redelivery is:
the same message (arguments and task id) run again. (Two checks of one comment at once
are in tests/test_worker_concurrency.py.)
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.core import mail
from django.db import connection
from django.utils import timezone

from comments import moderation, notifications, spam_check, tasks
from comments.models import Comment, CommentEvent, HoldReason, SideEffect
from comments_project.celery import app as celery_app
from tests.factories import (
    UserFactory,
    held_comment,
    moderator_user,
    moderators_group,
    published_comment,
    submit_comment,
)

pytestmark = pytest.mark.django_db
Status = Comment.Status
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


class WorkerKilled(BaseException):
    """Stands for a SIGKILL: nothing after the point where it is raised runs."""


def killed_before_marking_done(self: SideEffect) -> None:
    """SideEffect.finish of a worker killed right after the side effect."""
    raise WorkerKilled


@pytest.fixture
def moderator():
    user = UserFactory(email="mod@example.com")
    user.groups.add(moderators_group())
    return user


def held_for_a_moderator() -> Comment:
    return held_comment(hold_reason=HoldReason.MODERATION_WORD)


def require_postgresql() -> None:
    if "postgresql" not in django_settings.DATABASES["default"]["ENGINE"]:
        message = "concurrent deliveries need PostgreSQL (DATABASE_URL)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def run_in_threads(*targets) -> list[BaseException]:
    """Run each target in its own thread (own database connection); return their errors."""
    errors: list[BaseException] = []

    def run(target) -> None:
        try:
            target()
        except BaseException as exc:  # reported by the caller's assertion
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a delivery never finished"
    return errors


# --- the moderator e-mail: at most once per hold ------------------------------------------


def test_a_notification_delivered_twice_mails_the_moderators_once(moderator):
    comment = held_for_a_moderator()
    first = tasks.notify_moderators.apply(args=[comment.pk]).get()
    again = tasks.notify_moderators.apply(args=[comment.pk]).get()
    assert (first, again) == (1, 0)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["mod@example.com"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.services
def test_a_notification_delivered_twice_at_once_mails_the_moderators_once(moderator, monkeypatch):
    require_postgresql()
    comment = held_for_a_moderator()
    both_due = threading.Barrier(2, timeout=15)
    loser_returned = threading.Event()
    real_addresses = notifications.moderator_addresses
    real_send_mail = notifications.send_mail

    def addresses_once_both_are_due() -> list[str]:
        # Both deliveries have read the comment as held and worth a mail.
        both_due.wait()
        return real_addresses()

    def send_mail_after_the_other_delivery_gave_up(*args, **kwargs):
        # The winner is still sending (claimed, not done) when the loser decides.
        loser_returned.wait(timeout=10)
        return real_send_mail(*args, **kwargs)

    monkeypatch.setattr(notifications, "moderator_addresses", addresses_once_both_are_due)
    monkeypatch.setattr(notifications, "send_mail", send_mail_after_the_other_delivery_gave_up)
    results: list[int] = []

    def deliver() -> None:
        result = tasks.notify_moderators(comment.pk)
        results.append(result)
        if result == 0:
            loser_returned.set()

    assert run_in_threads(deliver, deliver) == []
    assert sorted(results) == [0, 1]
    assert len(mail.outbox) == 1
    (claim,) = SideEffect.objects.filter(comment=comment)
    assert claim.done_at is not None


def test_a_new_hold_of_the_same_comment_is_a_new_notification(moderator):
    comment = held_for_a_moderator()
    tasks.notify_moderators.apply(args=[comment.pk])
    moderation.edit(comment, body="Edited, and held again.")
    moderation.hold(comment, actor=moderation.SYSTEM, hold_reason=HoldReason.MODERATION_WORD)
    tasks.notify_moderators.apply(args=[comment.pk])
    tasks.notify_moderators.apply(args=[comment.pk])
    assert len(mail.outbox) == 2
    assert "Edited, and held again." in mail.outbox[1].body


def test_a_failed_mail_gives_up_its_claim_so_the_retry_sends_it(moderator, monkeypatch):
    comment = held_for_a_moderator()
    real_send_mail = notifications.send_mail
    calls: list[int] = []

    def smtp_down_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionRefusedError("SMTP server down")
        return real_send_mail(*args, **kwargs)

    monkeypatch.setattr(notifications, "send_mail", smtp_down_once)
    assert tasks.notify_moderators.apply(args=[comment.pk]).get() == 1
    assert len(calls) == 2
    assert len(mail.outbox) == 1


def test_a_mail_whose_worker_died_before_marking_it_done_is_never_sent_again(
    moderator, monkeypatch
):
    """At most once: the mail may have gone out, so a redelivery, even much later, skips it."""
    comment = held_for_a_moderator()
    with monkeypatch.context() as patch:
        patch.setattr(SideEffect, "finish", killed_before_marking_done)
        with pytest.raises(WorkerKilled):
            notifications.notify_held(comment.pk)
    assert len(mail.outbox) == 1
    SideEffect.objects.filter(comment=comment).update(
        claimed_at=timezone.now() - dt.timedelta(days=1)
    )
    assert tasks.notify_moderators.apply(args=[comment.pk]).get() == 0
    assert len(mail.outbox) == 1


# --- Akismet feedback: at least once, and once per moderator decision ---------------------


@dataclass(frozen=True)
class Message:
    """A task message as the broker holds it: every redelivery has the same task id."""

    args: tuple[int, str]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def deliver(self) -> str:
        return tasks.submit_feedback.apply(args=self.args, task_id=self.id).get()


@pytest.fixture
def feedback_enqueued(monkeypatch) -> list[Message]:
    """submit_feedback tasks enqueued after commit, kept as messages instead of sent."""
    sent: list[Message] = []
    monkeypatch.setattr(tasks.submit_feedback, "delay", lambda *args: sent.append(Message(args)))
    return sent


def spam_published_by_a_moderator(capture) -> Comment:
    comment = submit_comment(author_name="akismet-guaranteed-spam")
    spam_check.check(comment.pk)
    comment.refresh_from_db()
    with capture(execute=True):
        moderation.publish(comment, actor=moderation.Actor.for_user(moderator_user()))
    return comment


def test_feedback_for_one_decision_delivered_twice_reaches_akismet_once(
    standin, feedback_enqueued, django_capture_on_commit_callbacks
):
    comment = spam_published_by_a_moderator(django_capture_on_commit_callbacks)
    (message,) = feedback_enqueued
    assert message.args == (comment.pk, "ham")
    assert (message.deliver(), message.deliver()) == ("ham", "duplicate")
    assert len(standin.state.requests_to("submit-ham")) == 1


def test_two_moderator_decisions_send_feedback_twice_even_when_each_is_redelivered(
    standin, feedback_enqueued, django_capture_on_commit_callbacks
):
    """Akismet said ham; a moderator says spam, then ham, then spam again. The worker
    is behind: both tasks run after the last decision, each delivered twice."""
    comment = submit_comment()
    spam_check.check(comment.pk)
    comment.refresh_from_db()
    assert comment.akismet_verdict == "ham"
    moderator = moderation.Actor.for_user(moderator_user())
    for decide in (moderation.mark_spam, moderation.publish, moderation.mark_spam):
        with django_capture_on_commit_callbacks(execute=True):
            decide(comment, actor=moderator)
    assert [message.args for message in feedback_enqueued] == [(comment.pk, "spam")] * 2

    results = [message.deliver() for message in feedback_enqueued for _ in range(2)]
    assert results == ["spam", "duplicate", "spam", "duplicate"]
    assert len(standin.state.requests_to("submit-spam")) == 2
    assert standin.state.requests_to("submit-ham") == []


def test_failed_feedback_gives_up_its_claim_so_the_retry_sends_it(
    standin, feedback_enqueued, monkeypatch, django_capture_on_commit_callbacks
):
    spam_published_by_a_moderator(django_capture_on_commit_callbacks)
    (message,) = feedback_enqueued
    standin.state.add_fault({"kind": "status", "status": 503, "endpoint": "submit-ham"})
    monkeypatch.setattr(tasks, "_backoff", lambda retries: 0)
    assert message.deliver() == "ham"  # the 503, then the task's own retry
    (claim,) = SideEffect.objects.all()
    assert claim.done_at is not None
    assert message.deliver() == "duplicate"


def test_feedback_whose_worker_died_before_marking_it_done_is_sent_once_the_claim_is_stale(
    standin, monkeypatch, settings, django_capture_on_commit_callbacks
):
    """At least once: a claim older than the task time limit belongs to a dead worker."""
    comment = spam_published_by_a_moderator(django_capture_on_commit_callbacks)
    with monkeypatch.context() as patch:
        patch.setattr(SideEffect, "finish", killed_before_marking_done)
        with pytest.raises(WorkerKilled):
            spam_check.send_feedback(comment.pk, "ham", delivery="task-1")
    assert len(standin.state.requests_to("submit-ham")) == 1

    # Redelivered at once: the claimant may still be working, so nothing is sent yet.
    assert spam_check.send_feedback(comment.pk, "ham", delivery="task-1") == "in_progress"
    assert len(standin.state.requests_to("submit-ham")) == 1

    stale = timezone.now() - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 1)
    SideEffect.objects.filter(comment=comment).update(claimed_at=stale)
    assert spam_check.send_feedback(comment.pk, "ham", delivery="task-1") == "ham"
    assert spam_check.send_feedback(comment.pk, "ham", delivery="task-1") == "duplicate"
    assert len(standin.state.requests_to("submit-ham")) == 2


# --- the sweeper ---------------------------------------------------------------------------


@pytest.fixture
def checks_enqueued(monkeypatch) -> list[int]:
    """check_comment tasks handed to the broker, recorded instead of sent."""
    sent: list[int] = []
    monkeypatch.setattr(tasks.check_comment, "delay", sent.append)
    return sent


def test_the_sweeper_enqueues_exactly_the_stranded_pending_comments(checks_enqueued):
    past = timezone.now() - dt.timedelta(minutes=5)
    stranded = [submit_comment(), submit_comment()]
    fresh = submit_comment()  # its deadline is still ahead
    held = held_for_a_moderator()
    unavailable = submit_comment()
    spam_check.hold_unavailable(unavailable.pk, "timeout")  # the recheck job's, not the sweeper's
    published = published_comment()
    overdue = [comment.pk for comment in [*stranded, held, unavailable, published]]
    Comment.objects.filter(pk__in=overdue).update(next_check_at=past)
    assert Comment.objects.get(pk=fresh.pk).next_check_at > timezone.now()

    assert tasks.sweep_pending() == 2
    assert sorted(checks_enqueued) == sorted(comment.pk for comment in stranded)
    # Each was given a new deadline, so the next sweep leaves them to the worker.
    assert tasks.sweep_pending() == 0
    assert len(checks_enqueued) == 2


# --- the broker is down when a comment is submitted (R03) ---------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test's own on a free loopback port, without persistence."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        args = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.directory),
        ]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError), self.client() as client:
                if client.ping():
                    return
            time.sleep(0.05)
        raise AssertionError("the private redis-server did not answer")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        message = "the broker-down test needs redis-server"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """Every delay() of this process goes to `url` for the block (no worker reads it)."""
    conf = celery_app.conf
    saved = (conf.broker_url, celery_app._pool, celery_app.amqp._producer_pool)
    saved_rw = (conf.broker_write_url, conf.broker_read_url)
    conf.broker_url = conf.broker_write_url = conf.broker_read_url = url
    celery_app._pool = celery_app.amqp._producer_pool = None  # rebuilt for the new URL
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            celery_app.pool.force_close_all()
        conf.broker_url = saved[0]
        conf.broker_write_url, conf.broker_read_url = saved_rw
        celery_app._pool, celery_app.amqp._producer_pool = saved[1], saved[2]


def queued_tasks(server: PrivateRedis) -> list[tuple[str, list]]:
    """Take every message off the task queue: (task name, args)."""
    messages = []
    queue = django_settings.CELERY_TASK_DEFAULT_QUEUE
    with server.client() as client:
        while (raw := client.rpop(queue)) is not None:
            message = json.loads(raw)
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            messages.append((message["headers"]["task"], args))
    return messages


@pytest.mark.django_db(transaction=True)
@pytest.mark.services
def test_a_submit_while_the_broker_is_down_is_accepted_and_checked_after_it_returns(
    api, article, private_redis, standin, caplog
):
    with celery_broker(private_redis.url):
        tasks.purge_discarded.delay()  # the web process had a working broker connection
        assert queued_tasks(private_redis) == [("comments.tasks.purge_discarded", [])]
        private_redis.stop()

        with caplog.at_level(logging.ERROR, logger="comments.dispatch"):
            response = api.post(
                f"/api/v1/articles/{article.slug}/comments/",
                {"author_name": "Ada", "author_email": "ada@example.com", "body": "Good point."},
                format="json",
            )
        assert response.status_code == 202, response.content
        comment = Comment.objects.get(pk=response.json()["id"])
        assert comment.status == Status.PENDING
        assert comment.next_check_at is not None
        assert [
            record
            for record in caplog.records
            if record.levelno == logging.ERROR
            and f"could not enqueue the checks of comments [{comment.pk}]" in record.getMessage()
        ], "the lost enqueue is logged"

        private_redis.start()  # the broker is back, empty
        Comment.objects.filter(pk=comment.pk).update(
            next_check_at=timezone.now() - dt.timedelta(seconds=1)
        )
        assert tasks.sweep_pending() == 1
        ((name, args),) = queued_tasks(private_redis)
    assert name == "comments.tasks.check_comment"
    assert args == [comment.pk]
    celery_app.tasks[name].apply(args=args).get()  # what the worker does with it
    comment.refresh_from_db()
    assert comment.status == Status.PUBLISHED
    assert list(
        CommentEvent.objects.filter(comment=comment).values_list("from_status", "to_status")
    ) == [("", "pending"), ("pending", "published")]
