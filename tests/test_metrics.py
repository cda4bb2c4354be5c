"""Observability: Prometheus metrics at /metrics and structured (JSON) log lines.

Counters are shared by every process through PROMETHEUS_MULTIPROC_DIR, so other
processes (a worker, another test run) may move them during a test: exact deltas
are read from this process's own files, and the endpoint is checked with `>=`.
The last test runs the real web server and Celery worker on a folder of their own.
"""

from __future__ import annotations

import datetime as dt
import glob
import io
import json
import logging
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import pytest
from django.conf import settings as django_settings
from django.db import OperationalError, transaction
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from pythonjsonlogger.json import JsonFormatter

from comments import metrics, moderation, spam_check, tasks
from comments.akismet_client import AkismetKeyInvalid, AkismetUnavailable
from comments.models import Comment, HoldReason
from tests.akismet_fixtures import TEST_KEY
from tests.factories import UserFactory, held_comment, submit_comment
from tests.processes import app_env, running_process, wait_for, web_args
from tests.worker_fixtures import ROOT, _database_url, require_services

pytestmark = pytest.mark.django_db
Status = Comment.Status
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


# --- helpers -------------------------------------------------------------------------


def own(name: str, **labels: str) -> float:
    """This process's own value of a sample (other processes may share the folder)."""
    if not metrics.MULTIPROCESS_DIR:
        return REGISTRY.get_sample_value(name, labels) or 0.0
    files = glob.glob(os.path.join(metrics.MULTIPROCESS_DIR, f"*_{os.getpid()}.db"))
    for family in MultiProcessCollector.merge(files, accumulate=True):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(api, **extra: str) -> Samples:
    response = api.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return parse(response.content.decode())


@pytest.fixture
def no_enqueue(monkeypatch):
    """Checks and feedback are not sent to the broker; the test runs them itself."""
    monkeypatch.setattr(tasks.check_comment, "delay", lambda *args: None)
    monkeypatch.setattr(tasks.submit_feedback, "delay", lambda *args: None)
    monkeypatch.setattr(tasks.notify_moderators, "delay", lambda *args: None)


@pytest.fixture
def committed(django_capture_on_commit_callbacks, no_enqueue):
    """Run the block's on-commit callbacks, as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def event_lines():
    """The `comments.events` lines, formatted by the JSON formatter LOG_FORMAT=json uses."""
    config = {k: v for k, v in django_settings.LOGGING["formatters"]["json"].items() if k != "()"}
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(**config))
    events = logging.getLogger("comments.events")
    events.addHandler(handler)
    previous = events.level
    events.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    events.removeHandler(handler)
    events.setLevel(previous)


# --- counters ------------------------------------------------------------------------


def test_a_submission_is_counted_when_it_commits(committed):
    before = own("comments_submitted_total")
    with committed():
        submit_comment()
        assert own("comments_submitted_total") == before, "not before the commit"
    assert own("comments_submitted_total") == before + 1


def test_a_rolled_back_transition_is_not_counted(committed):
    comment = held_comment()
    actor = moderation.Actor.for_user(UserFactory())
    before = own("comments_moderator_actions_total", action="publish")
    with committed(), pytest.raises(RuntimeError), transaction.atomic():
        moderation.publish(comment, actor=actor)
        raise RuntimeError("the surrounding work failed")
    assert own("comments_moderator_actions_total", action="publish") == before


def test_moderator_decisions_are_counted_by_action(committed):
    actor = moderation.Actor.for_user(UserFactory())
    comments = [held_comment(), held_comment()]
    labels = {"from_status": "held", "to_status": "rejected", "actor": "moderator"}
    before = own("comments_moderator_actions_total", action="reject")
    changes = own("comments_status_changes_total", **labels)
    with committed():
        for comment in comments:
            moderation.reject(comment, actor=actor)
    assert own("comments_moderator_actions_total", action="reject") == before + 2
    assert own("comments_status_changes_total", **labels) == changes + 2


@pytest.mark.parametrize(
    ("fields", "outcome", "reason"),
    [
        ({}, "published", "akismet_ham"),
        ({"author_name": "akismet-guaranteed-spam"}, "spam", "akismet_spam"),
        ({"body": "pills [[discard]]"}, "spam", "akismet_discard"),
        ({"body": "see [[recheck-after:120]]"}, "pending", "akismet_recheck_after"),
    ],
)
def test_a_check_counts_its_verdict_and_the_akismet_latency(
    standin, committed, fields, outcome, reason
):
    comment = submit_comment(**fields)
    verdicts = own("comments_check_results_total", outcome=outcome, reason=reason)
    calls = own("comments_akismet_request_duration_seconds_count", method="comment_check")
    with committed():
        assert spam_check.check(comment.pk) == reason
    assert own("comments_check_results_total", outcome=outcome, reason=reason) == verdicts + 1
    assert (
        own("comments_akismet_request_duration_seconds_count", method="comment_check") == calls + 1
    )


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ({"kind": "status", "status": 503}, "http_status"),
        ({"kind": "body", "body": "maybe"}, "bad_answer"),
        ({"kind": "reset"}, "network"),
        ({"kind": "hang", "seconds": 1.0}, "timeout"),
        ({"kind": "invalid"}, "key_invalid"),
    ],
    ids=lambda item: item if isinstance(item, str) else item["kind"],
)
def test_akismet_errors_are_counted_by_kind_and_timed(standin, settings, fault, kind):
    settings.AKISMET_TIMEOUT = 0.3
    standin.state.add_fault(fault)
    comment = submit_comment()
    errors = own("comments_akismet_errors_total", method="comment_check", kind=kind)
    calls = own("comments_akismet_request_duration_seconds_count", method="comment_check")
    try:
        spam_check.check(comment.pk)
    except AkismetUnavailable:
        assert kind != "key_invalid"
    assert own("comments_akismet_errors_total", method="comment_check", kind=kind) == errors + 1
    assert (
        own("comments_akismet_request_duration_seconds_count", method="comment_check") == calls + 1
    )


def test_a_missing_key_is_an_error_without_a_latency(settings):
    settings.AKISMET_API_KEY = ""
    comment = submit_comment()
    errors = own("comments_akismet_errors_total", method="comment_check", kind="key_invalid")
    calls = own("comments_akismet_request_duration_seconds_count", method="comment_check")
    from comments import akismet_client

    with pytest.raises(AkismetKeyInvalid):
        akismet_client.comment_check(akismet_client.build_payload(comment))
    assert (
        own("comments_akismet_errors_total", method="comment_check", kind="key_invalid")
        == errors + 1
    )
    assert own("comments_akismet_request_duration_seconds_count", method="comment_check") == calls


def test_a_sweeper_run_sets_the_dead_mans_switch(no_enqueue):
    before = own("comments_sweeper_last_run_timestamp_seconds")
    tasks.sweep_pending.apply()
    assert own("comments_sweeper_last_run_timestamp_seconds") > max(before, 0)
    assert own("comments_sweeper_last_run_timestamp_seconds") <= timezone.now().timestamp()


# --- the endpoint --------------------------------------------------------------------


def test_the_endpoint_shows_a_submission_and_a_check(api, standin, committed):
    comment = submit_comment()
    before = scrape(api)
    with committed():
        submit_comment()
        spam_check.check(comment.pk)
    after = scrape(api)
    for name, labels in [
        ("comments_submitted_total", {}),
        ("comments_check_results_total", {"outcome": "published", "reason": "akismet_ham"}),
        ("comments_akismet_request_duration_seconds_count", {"method": "comment_check"}),
    ]:
        assert value(after, name, **labels) >= value(before, name, **labels) + 1, name


def test_queue_gauges_are_read_from_the_database(api, settings):
    settings.COMMENTS_SWEEP_AFTER_SECONDS = 60
    old = submit_comment()
    now = timezone.now()
    Comment.objects.filter(pk=old.pk).update(
        created_at=now - dt.timedelta(seconds=400), next_check_at=now - dt.timedelta(seconds=300)
    )
    submit_comment()
    held_comment()
    held_comment(hold_reason=HoldReason.CHECK_UNAVAILABLE)
    held_comment(hold_reason=HoldReason.CHECK_UNAVAILABLE)
    samples = scrape(api)
    assert value(samples, "comments_queue_figures_up") == 1
    assert value(samples, "comments_pending") == 2
    assert 399 <= value(samples, "comments_oldest_pending_seconds") <= 410
    assert value(samples, "comments_overdue_pending") == 1
    assert value(samples, "comments_held", reason="moderator") == 1
    assert value(samples, "comments_held", reason="check_unavailable") == 2


def test_counters_are_still_served_when_the_database_is_down(api, monkeypatch):
    def database_down() -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(metrics, "queue_figures", database_down)
    samples = scrape(api)
    assert value(samples, "comments_queue_figures_up") == 0
    assert ("comments_submitted_total", frozenset()) in samples
    assert ("comments_pending", frozenset()) not in samples


def test_queue_gauges_cost_two_queries(api, django_assert_num_queries):
    submit_comment()
    held_comment()
    with django_assert_num_queries(2):
        list(metrics.QueueCollector().collect())


def test_metrics_are_refused_to_a_public_address_without_a_token(api, settings):
    settings.METRICS_TOKEN = ""
    assert api.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    assert api.get("/metrics", REMOTE_ADDR="10.0.0.8").status_code == 403
    assert api.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert api.get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_a_request_through_a_proxy_is_refused_although_the_proxy_is_local(api, settings):
    settings.METRICS_TOKEN = ""
    for header in ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP"):
        response = api.get("/metrics", REMOTE_ADDR="127.0.0.1", **{header: "203.0.113.9"})
        assert response.status_code == 403, header


def test_with_a_token_every_scrape_must_send_it(api, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    public = {"REMOTE_ADDR": "203.0.113.9"}
    assert (
        api.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token", **public).status_code
        == 200
    )
    assert api.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", **public).status_code == 403
    assert api.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-scrape-token").status_code == 403
    assert api.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_the_endpoint_only_reads(api):
    assert api.post("/metrics").status_code == 405


# --- logs ----------------------------------------------------------------------------


def test_a_transition_is_one_json_line_with_its_fields(committed, event_lines):
    comment = submit_comment(author_email="private@example.com", ip_address="198.51.100.23")
    actor = moderation.Actor.for_user(UserFactory())
    with committed():
        moderation.hold(comment, actor=actor, reason="moderator")
    (line,) = [line for line in event_lines() if line["message"] == "comment transition"]
    assert line["comment_id"] == comment.pk
    assert line["article_id"] == comment.article_id
    assert (line["from"], line["to"], line["action"]) == ("pending", "held", "hold")
    assert (line["actor"], line["actor_user_id"]) == ("moderator", actor.user.pk)
    assert line["reason"] == "moderator"
    assert line["level"] == "INFO"
    assert line["logger"] == "comments.events"
    assert dt.datetime.fromisoformat(line["time"])


def test_a_submission_is_one_json_line_without_personal_data(committed, event_lines):
    with committed():
        comment = submit_comment(
            author_email="private@example.com", ip_address="198.51.100.23", body="secret words"
        )
    (line,) = event_lines()
    assert line["message"] == "comment submitted"
    assert line["comment_id"] == comment.pk
    text = json.dumps(event_lines())
    for private in ("private@example.com", "198.51.100.23", "secret words", "Ada Reader"):
        assert private not in text


def test_a_moderators_free_text_note_is_not_logged(committed, event_lines):
    comment = held_comment()
    with committed():
        moderation.reject(
            comment,
            actor=moderation.Actor.for_user(UserFactory()),
            reason="same as troll@example.net",
        )
    (line,) = [line for line in event_lines() if line["message"] == "comment transition"]
    assert line["reason"] == "(note)"
    assert "troll@example.net" not in json.dumps(event_lines())


def test_a_check_logs_the_spam_check_as_actor(standin, committed, event_lines):
    comment = submit_comment()
    with committed():
        spam_check.check(comment.pk)
    (line,) = [line for line in event_lines() if line["message"] == "comment transition"]
    assert (line["actor"], line["actor_user_id"], line["reason"]) == (
        "spam-check",
        None,
        "akismet_ham",
    )


def _log_format(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'comments_project.settings'; "
        "django.setup(); from django.conf import settings as s; "
        "print(s.LOG_FORMAT, s.LOGGING['handlers']['console']['formatter'])"
    )
    return subprocess.run(  # noqa: S603 (our own interpreter, fixed code)
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DEBUG": "true"}, "plain plain"),
        ({"DEBUG": "true", "LOG_FORMAT": "json"}, "json json"),
        (
            {
                "DEBUG": "false",
                "SECRET_KEY": "k3y-" + "x9Qm2vLr8TnWp4ZsYb7HcJd5FgKe1AuR6oVi0NtMqPwXyLz",
                "ALLOWED_HOSTS": "comments.example.com",
                "AKISMET_API_KEY": "abc123def456",
                "AKISMET_BLOG_URL": "https://news.example.com",
            },
            "json json",
        ),
    ],
    ids=["debug", "debug-json", "production"],
)
def test_logs_are_json_in_production_and_plain_under_debug(env, expected):
    result = _log_format({**env, "PROMETHEUS_MULTIPROC_DIR": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_an_unknown_log_format_stops_start_up():
    result = _log_format({"DEBUG": "true", "LOG_FORMAT": "xml", "PROMETHEUS_MULTIPROC_DIR": ""})
    assert result.returncode != 0
    assert "LOG_FORMAT" in result.stderr


# --- several processes ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(url: str, body: dict | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 (loopback only)
        url, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_one_scrape_sums_the_web_workers_and_the_celery_worker(standin_server, tmp_path):
    """Web server (granian, two processes) and a Celery worker write their own files
    in one folder; a scrape of the web server shows what the worker counted too."""
    require_services()
    from tests.factories import ArticleFactory

    article = ArticleFactory()
    folder = tmp_path / "prometheus"
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        **app_env(_database_url(), standin_server.url, TEST_KEY),
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "LOG_FORMAT": "json",
        "CELERY_QUEUE": f"metrics-test-{uuid.uuid4().hex[:8]}",
        "CELERY_WORKER_CONCURRENCY": "2",
        "COMMENTS_THROTTLE_SUBMIT": "0",
        "COMMENTS_FLOOD_SECONDS": "0",
        "COMMENTS_MIN_SUBMIT_SECONDS": "0",
        "COMMENTS_DUPLICATE_WINDOW_SECONDS": "0",
    }
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    worker_log, web_log = tmp_path / "worker.log", tmp_path / "web.log"
    worker_args = [
        sys.executable, "-m", "celery", "-A", "comments_project", "worker",
        "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-n", f"metrics-{uuid.uuid4().hex[:8]}@%h",
    ]  # fmt: skip
    with (
        running_process(
            "celery worker",
            worker_args,
            env,
            worker_log,
            lambda: b" ready." in worker_log.read_bytes(),
        ),
        running_process(
            "web server", web_args(port), env, web_log, lambda: _request(url + "/healthz")[0] == 200
        ),
    ):
        status, body = _request(
            f"{url}/api/v1/articles/{article.slug}/comments/",
            {"author_name": "Ada", "author_email": "ada@example.org", "body": "A fine piece."},
        )
        assert status == 202, body
        comment_id = json.loads(body)["id"]
        wait_for(lambda: Comment.objects.get(pk=comment_id).status == Status.PUBLISHED, timeout=30)

        def scraped() -> Samples | None:
            status, text = _request(url + "/metrics")
            samples = parse(text) if status == 200 else {}
            ham = {"outcome": "published", "reason": "akismet_ham"}
            return samples if value(samples, "comments_check_results_total", **ham) else None

        samples = wait_for(scraped, timeout=10)  # the worker counts just after its commit
        worker_text = worker_log.read_text()
        web_text = web_log.read_text()

    assert value(samples, "comments_submitted_total") == 1
    assert (
        value(samples, "comments_check_results_total", outcome="published", reason="akismet_ham")
        == 1
    )
    assert (
        value(samples, "comments_akismet_request_duration_seconds_count", method="comment_check")
        == 1
    )
    assert value(samples, "comments_pending") == 0
    pids = {path.stem.rsplit("_", 1)[1] for path in folder.glob("*.db")}
    assert len(pids) >= 2, "the web server and the worker each wrote their own files"

    submitted = [line for line in _json_lines(web_text) if line["message"] == "comment submitted"]
    assert [line["comment_id"] for line in submitted] == [comment_id]
    transitions = [
        line for line in _json_lines(worker_text) if line["message"] == "comment transition"
    ]
    assert [(line["comment_id"], line["from"], line["to"]) for line in transitions] == [
        (comment_id, "pending", "published")
    ]
    assert any("ready." in line["message"] for line in _json_lines(worker_text)), (
        "Celery's own lines are JSON too"
    )
    assert "ada@example.org" not in worker_text + web_text
