"""Signed webhooks: the outbox written with each change, signed delivery to a real
HTTP receiver on loopback, retries, leases, the sweeper and the console."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from comments import cache_store, moderation, tasks, webhooks
from comments.models import Comment, WebhookDelivery, WebhookEndpoint
from tests.factories import (
    ArticleFactory,
    UserFactory,
    WebhookEndpointFactory,
    held_comment,
    submit_comment,
)
from tests.worker_fixtures import wait_for

Delivery = WebhookDelivery.Status
MODERATOR = moderation.Actor("moderator-in-test")


class Receiver:
    """An HTTP server on 127.0.0.1 that records each request and answers from a script."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: list[tuple[int, float]] = []  # (status, seconds to wait) per request
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers.items()), "body": body}
                )
                status, wait = receiver.script.pop(0) if receiver.script else (200, 0.0)
                time.sleep(wait)
                answer = b'{"received": true}'
                try:
                    self.send_response(status)
                    if 300 <= status < 400:
                        self.send_header("Location", receiver.url + "/elsewhere")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the sender gave up (a timeout test)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def verified(self, secret: str) -> list[dict]:
        """Every request's payload, each checked with the reference verifier."""
        return [
            webhooks.verify_signature(secret, request["headers"], request["body"])
            for request in self.requests
        ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture(autouse=True)
def forget_endpoints_afterwards() -> Iterator[None]:
    """Endpoints vanish without signals when a test's data is rolled back or flushed:
    make every process (this one, the worker) reload them for the next test."""
    yield
    webhooks.reload_endpoints_everywhere()


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """Delivery ids handed to the broker (nothing is sent to it)."""
    sent: list[int] = []
    monkeypatch.setattr(tasks.deliver_webhook, "delay", sent.append)
    monkeypatch.setattr(
        tasks.deliver_webhook, "apply_async", lambda args, countdown=None: sent.append(args[0])
    )
    return sent


def endpoint_for(receiver: Receiver, **fields: object) -> WebhookEndpoint:
    return WebhookEndpointFactory(url=receiver.url + "/hooks", **fields)


def deliver_all() -> list[str]:
    ids = WebhookDelivery.objects.order_by("id").values_list("id", flat=True)
    return [webhooks.deliver(delivery_id) for delivery_id in ids]


def make_due(delivery: WebhookDelivery) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - dt.timedelta(seconds=1)
    )


# --- events and payloads -------------------------------------------------------------


@pytest.mark.django_db
def test_submit_and_every_status_change_reach_the_receiver_signed(receiver, enqueued):
    endpoint = endpoint_for(receiver)
    with_capture = submit_comment(body="Signed *events*.")
    moderation.hold(with_capture, actor=moderation.SYSTEM)
    moderation.publish(with_capture, actor=moderation.Actor.for_user(UserFactory()))
    moderation.mark_spam(with_capture, actor=MODERATOR)
    moderation.reject(with_capture, actor=MODERATOR)
    moderation.remove(with_capture, actor=MODERATOR)

    assert deliver_all() == [Delivery.SUCCEEDED] * 6
    payloads = receiver.verified(endpoint.secret)
    assert [p["type"] for p in payloads] == [
        "comment.submitted",
        "comment.held",
        "comment.published",
        "comment.spam",
        "comment.rejected",
        "comment.removed",
    ]
    # Each payload is the comment as it was at its event.
    assert [p["data"]["comment"]["status"] for p in payloads] == [
        "pending",
        "held",
        "published",
        "spam",
        "rejected",
        "removed",
    ]
    comment = payloads[2]["data"]["comment"]
    assert comment["id"] == with_capture.pk
    assert comment["body"] == "Signed *events*."
    assert "<em>events</em>" in comment["body_html"]
    assert comment["article"]["slug"] == with_capture.article.slug
    assert comment["published_at"] is not None
    assert payloads[1]["data"]["comment"]["held_reason"] == "moderator"
    assert len({p["id"] for p in payloads}) == 6
    for request, payload in zip(receiver.requests, payloads, strict=True):
        assert request["headers"]["Webhook-Id"] == payload["id"]
        assert request["headers"]["Content-Type"] == "application/json"
        assert request["headers"]["User-Agent"].startswith("comments-backend-webhooks/")
    delivery = WebhookDelivery.objects.get(event="comment.published")
    assert delivery.attempts == 1
    assert delivery.response_code == 200
    assert delivery.response_excerpt == '{"received": true}'
    assert delivery.delivered_at is not None
    assert delivery.comment_id == with_capture.pk


@pytest.mark.django_db
def test_one_event_has_one_id_across_endpoints_and_each_is_enqueued_on_commit(
    receiver, enqueued, django_capture_on_commit_callbacks
):
    first, second = endpoint_for(receiver), endpoint_for(receiver)
    with django_capture_on_commit_callbacks(execute=True):
        comment = submit_comment()
    deliveries = list(WebhookDelivery.objects.filter(comment=comment))
    assert {d.endpoint_id for d in deliveries} == {first.pk, second.pk}
    assert len({d.event_id for d in deliveries}) == 1
    assert all(d.status == Delivery.PENDING and d.next_attempt_at for d in deliveries)
    assert sorted(enqueued) == sorted(d.pk for d in deliveries)


@pytest.mark.django_db
def test_an_endpoint_gets_only_the_events_it_subscribed_to(receiver, enqueued):
    published_only = endpoint_for(receiver, events=["comment.published"])
    endpoint_for(receiver, active=False)
    comment = submit_comment()
    moderation.publish(comment, actor=moderation.SPAM_CHECK)
    moderation.remove(comment, actor=MODERATOR)
    assert list(WebhookDelivery.objects.values_list("endpoint_id", "event")) == [
        (published_only.pk, "comment.published")
    ]


@pytest.mark.django_db
def test_an_authors_edit_is_sent_as_submitted_again(receiver, enqueued):
    endpoint_for(receiver)
    comment = submit_comment()
    moderation.publish(comment, actor=moderation.SPAM_CHECK)
    moderation.edit(comment, body="Second thoughts.")
    last = WebhookDelivery.objects.order_by("-id").first()
    assert last.event == "comment.submitted"
    assert last.payload["data"]["comment"]["status"] == "pending"
    assert last.payload["data"]["comment"]["edited_at"] is not None
    assert last.payload["data"]["comment"]["body"] == "Second thoughts."


@pytest.mark.django_db
def test_private_data_is_sent_only_to_an_endpoint_that_asked_for_it(receiver, enqueued):
    public = WebhookEndpointFactory(url=receiver.url + "/public")
    private = WebhookEndpointFactory(url=receiver.url + "/private", include_private=True)
    submit_comment(
        author_email="secret-person@example.com",
        ip_address="198.51.100.23",
        user_agent="SecretAgent/1.0",
        referrer="https://referrer.example.net/private",
    )
    deliver_all()
    bodies = {request["path"]: request for request in receiver.requests}
    webhooks.verify_signature(
        public.secret, bodies["/public"]["headers"], bodies["/public"]["body"]
    )
    public_body = bodies["/public"]["body"].decode()
    for private_value in (
        "secret-person@example.com",
        "198.51.100.23",
        "SecretAgent",
        "referrer.example.net",
        "akismet",
    ):
        assert private_value not in public_body
    assert not set(webhooks.PRIVATE_KEYS) & set(json.loads(public_body)["data"]["comment"])
    request = bodies["/private"]
    comment = webhooks.verify_signature(private.secret, request["headers"], request["body"])[
        "data"
    ]["comment"]
    assert comment["author_email"] == "secret-person@example.com"
    assert comment["ip_address"] == "198.51.100.23"
    assert comment["user_agent"] == "SecretAgent/1.0"
    assert "referrer.example.net" not in request["body"].decode()


# --- signature ---------------------------------------------------------------------


def test_verify_signature_accepts_a_fresh_request_and_refuses_replays_and_tampering():
    body = webhooks.encode_body({"id": "evt-1", "type": "comment.published", "data": {}})
    headers = webhooks.signed_headers("s3cret", "evt-1", body)
    assert webhooks.verify_signature("s3cret", headers, body)["type"] == "comment.published"
    lower = {name.lower(): value for name, value in headers.items()}
    assert webhooks.verify_signature("s3cret", lower, body)["id"] == "evt-1"

    old = webhooks.signed_headers("s3cret", "evt-1", body, timestamp=int(time.time()) - 301)
    future = webhooks.signed_headers("s3cret", "evt-1", body, timestamp=int(time.time()) + 301)
    tampered = body.replace(b"published", b"removed")
    other_id = {**headers, "Webhook-Id": "evt-2"}
    for bad_headers, bad_body in [
        (old, body),
        (future, body),
        (headers, tampered),
        (other_id, body),
        ({k: v for k, v in headers.items() if k != "Webhook-Signature"}, body),
        ({**headers, "Webhook-Timestamp": "soon"}, body),
    ]:
        with pytest.raises(webhooks.WebhookVerificationError):
            webhooks.verify_signature("s3cret", bad_headers, bad_body)
    with pytest.raises(webhooks.WebhookVerificationError):
        webhooks.verify_signature("another-secret", headers, body)
    # A wider tolerance accepts the older request (a receiver's choice).
    assert webhooks.verify_signature("s3cret", old, body, tolerance=600)["id"] == "evt-1"


def test_the_signature_is_hmac_sha256_over_timestamp_id_and_body():
    import hashlib
    import hmac

    body = b'{"id":"e","type":"comment.held"}'
    headers = webhooks.signed_headers("k", "e", body, timestamp=1700000000)
    expected = hmac.new(b"k", b"1700000000.e." + body, hashlib.sha256).hexdigest()
    assert headers["Webhook-Signature"] == f"v1={expected}"
    assert headers["Webhook-Timestamp"] == "1700000000"


# --- retries, timeouts, leases ----------------------------------------------------------


@pytest.mark.django_db
def test_a_failing_receiver_is_retried_with_backoff_until_it_succeeds(receiver, enqueued):
    endpoint = endpoint_for(receiver)
    submit_comment()
    delivery = WebhookDelivery.objects.get()
    receiver.script = [(500, 0.0), (200, 0.0)]

    before = timezone.now()
    assert webhooks.deliver(delivery.pk) == Delivery.RETRYING
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert delivery.response_code == 500
    assert delivery.last_error == "HTTP 500"
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 8 <= wait <= 12.5, wait  # 10 s with up to a fifth of jitter
    assert enqueued == [delivery.pk], "a short wait rides on the broker"
    assert webhooks.deliver(delivery.pk) == "not_due", "not before its time"

    make_due(delivery)
    assert webhooks.deliver(delivery.pk) == Delivery.SUCCEEDED
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert delivery.response_code == 200
    assert delivery.last_error == ""
    assert delivery.next_attempt_at is None
    ids = {request["headers"]["Webhook-Id"] for request in receiver.requests}
    assert ids == {str(delivery.event_id)}, "a retry keeps the event id"
    assert len(receiver.verified(endpoint.secret)) == 2, "each attempt is signed afresh"


def test_backoff_grows_from_seconds_to_hours():
    waits = [webhooks.retry_delay(attempts) for attempts in range(1, 9)]
    bases = [10, 30, 120, 600, 1800, 7200, 21600, 21600]
    for wait, base in zip(waits, bases, strict=True):
        assert 0.8 * base <= wait <= 1.2 * base


@pytest.mark.django_db
def test_a_receiver_slower_than_the_timeout_counts_as_a_failed_attempt(
    receiver, enqueued, settings
):
    settings.COMMENTS_WEBHOOK_TIMEOUT = 0.3
    endpoint_for(receiver)
    submit_comment()
    receiver.script = [(200, 1.5)]
    started = time.monotonic()
    assert webhooks.deliver(WebhookDelivery.objects.get().pk) == Delivery.RETRYING
    assert time.monotonic() - started < 1.4
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_error == "timed out after 0.3 s"
    assert delivery.response_code is None
    assert delivery.attempts == 1


@pytest.mark.django_db
def test_after_the_last_attempt_the_delivery_is_failed(receiver, enqueued, settings):
    settings.COMMENTS_WEBHOOK_MAX_ATTEMPTS = 3
    endpoint_for(receiver)
    submit_comment()
    delivery = WebhookDelivery.objects.get()
    receiver.script = [(503, 0.0)] * 3
    results = []
    for _ in range(3):
        make_due(delivery)
        results.append(webhooks.deliver(delivery.pk))
    assert results == [Delivery.RETRYING, Delivery.RETRYING, Delivery.FAILED]
    delivery.refresh_from_db()
    assert delivery.attempts == 3
    assert delivery.next_attempt_at is None
    assert webhooks.deliver(delivery.pk) == "not_due"
    assert len(receiver.requests) == 3


@pytest.mark.django_db
def test_a_redirect_is_not_followed(receiver, enqueued):
    endpoint_for(receiver)
    submit_comment()
    receiver.script = [(302, 0.0)]
    assert webhooks.deliver(WebhookDelivery.objects.get().pk) == Delivery.RETRYING
    assert [request["path"] for request in receiver.requests] == ["/hooks"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.response_code == 302
    assert "not followed" in delivery.last_error


@pytest.mark.django_db
def test_an_unreachable_or_non_http_endpoint_is_an_error_not_a_crash(enqueued):
    WebhookEndpointFactory(url="http://127.0.0.1:9/closed-port")
    WebhookEndpointFactory(url="ftp://127.0.0.1/hooks")
    submit_comment()
    assert deliver_all() == [Delivery.RETRYING, Delivery.RETRYING]
    errors = sorted(WebhookDelivery.objects.values_list("last_error", flat=True))
    assert errors[0].startswith("ConnectError")
    assert errors[1] == "only http and https URLs are allowed"


@pytest.mark.django_db
def test_a_deactivated_endpoint_fails_its_waiting_deliveries_without_sending(receiver, enqueued):
    endpoint = endpoint_for(receiver)
    submit_comment()
    endpoint.active = False
    endpoint.save()
    assert deliver_all() == [Delivery.FAILED]
    assert receiver.requests == []
    assert WebhookDelivery.objects.get().last_error == "the endpoint is inactive"


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_send_the_same_attempt(receiver, enqueued):
    endpoint_for(receiver)
    submit_comment()
    delivery = WebhookDelivery.objects.get()
    delivery_id = delivery.pk
    receiver.script = [(200, 0.5)]
    results: list[str] = []

    def worker() -> None:
        try:
            results.append(webhooks.deliver(delivery_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["not_due"] * 3 + [Delivery.SUCCEEDED]
    # Only this delivery's requests: this test's data is committed, so a worker process
    # left running by an earlier test may check the comment and send its own events.
    sent = [r for r in receiver.requests if r["headers"]["Webhook-Id"] == str(delivery.event_id)]
    assert len(sent) == 1


@pytest.mark.django_db
def test_a_worker_that_died_mid_send_leaves_a_lease_the_sweeper_takes_over(receiver, enqueued):
    endpoint_for(receiver)
    submit_comment()
    delivery = WebhookDelivery.objects.get()
    # A claim whose worker never finished: the lease runs into the future.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() + dt.timedelta(seconds=30)
    )
    assert webhooks.due_deliveries() == []
    make_due(delivery)  # the lease expired
    assert tasks.deliver_due_webhooks() == 1
    assert enqueued == [delivery.pk]
    assert webhooks.deliver(delivery.pk) == Delivery.SUCCEEDED


# --- outbox and transactions ----------------------------------------------------------


@pytest.mark.django_db
def test_the_sweeper_sends_a_delivery_whose_message_was_lost(
    receiver, enqueued, django_capture_on_commit_callbacks, monkeypatch
):
    endpoint_for(receiver)

    def broker_down(delivery_id: int) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.deliver_webhook, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        submit_comment()  # the enqueue fails: logged, not raised
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Delivery.PENDING

    monkeypatch.setattr(tasks.deliver_webhook, "delay", enqueued.append)
    assert tasks.deliver_due_webhooks() == 1
    assert enqueued == [delivery.pk]
    assert tasks.deliver_webhook(delivery.pk) == Delivery.SUCCEEDED
    assert tasks.deliver_due_webhooks() == 0


@pytest.mark.django_db
def test_a_rolled_back_transition_leaves_no_delivery_and_enqueues_nothing(
    receiver, enqueued, django_capture_on_commit_callbacks
):
    endpoint_for(receiver)
    comment = held_comment()
    WebhookDelivery.objects.all().delete()
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        moderation.publish(comment, actor=moderation.Actor.for_user(UserFactory()))
        assert WebhookDelivery.objects.count() == 1  # written in the transaction
        raise RuntimeError("the request failed after the transition")
    assert WebhookDelivery.objects.count() == 0
    assert Comment.objects.get(pk=comment.pk).status == Comment.Status.HELD
    assert enqueued == []
    assert callbacks == []


@pytest.mark.django_db
def test_submit_runs_no_query_for_webhooks_when_there_are_no_endpoints(monkeypatch):
    article = ArticleFactory()
    submit_comment(article)  # warms this process's copy of the endpoint list

    def queries_of_a_submit() -> int:
        with CaptureQueriesContext(connection) as queries:
            submit_comment(article, body=f"Counting {time.monotonic()}")
        return len(queries)

    with_webhooks = queries_of_a_submit()
    monkeypatch.setattr(webhooks, "record_event", lambda comment, event: [])
    without_webhooks = queries_of_a_submit()
    assert with_webhooks == without_webhooks


@pytest.mark.django_db
def test_endpoint_changes_are_seen_by_the_next_event(receiver, enqueued):
    article = ArticleFactory()
    submit_comment(article)
    assert WebhookDelivery.objects.count() == 0
    endpoint = endpoint_for(receiver)
    submit_comment(article)
    assert WebhookDelivery.objects.count() == 1
    endpoint.delete()
    submit_comment(article)
    assert WebhookDelivery.objects.count() == 0  # cascaded, and nothing new


@pytest.mark.django_db
def test_another_process_changing_endpoints_is_seen_through_the_shared_version(
    receiver, enqueued, monkeypatch
):
    article = ArticleFactory()
    submit_comment(article)
    # Written by "another process": no signal here, only the version in the cache.
    WebhookEndpoint.objects.bulk_create([WebhookEndpoint(name="x", url=receiver.url, secret="s")])
    submit_comment(article)
    assert WebhookDelivery.objects.count() == 0, "this process still trusts its copy"
    cache_store.store().set_many({webhooks.VERSION_KEY: b"changed-elsewhere"}, None)
    submit_comment(article)
    assert WebhookDelivery.objects.count() == 1

    # The cache is flushed and the endpoint deactivated behind this process's back:
    # the copy is kept for a moment, but the event's own read of the endpoints finds
    # it inactive, sends it nothing and drops the copy.
    WebhookEndpoint.objects.all().update(active=False)
    cache_store.store().delete(webhooks.VERSION_KEY)
    submit_comment(article)
    assert WebhookDelivery.objects.count() == 1
    WebhookEndpoint.objects.all().update(active=True)
    submit_comment(article)
    assert WebhookDelivery.objects.count() == 2, "reloaded from the database"


@pytest.mark.django_db
def test_an_endpoint_deleted_without_a_signal_does_not_break_submits(
    receiver, enqueued, monkeypatch
):
    """A restored or flushed database removes endpoints behind every process's copy: a
    delivery pointing at one would fail the submit's transaction at commit."""
    article = ArticleFactory()
    endpoint = endpoint_for(receiver)
    submit_comment(article)
    assert WebhookDelivery.objects.count() == 1
    stale_copy = webhooks._endpoints.get()
    monkeypatch.setattr(webhooks._endpoints, "get", lambda: stale_copy)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM comments_webhookdelivery")
        cursor.execute("DELETE FROM comments_webhookendpoint WHERE id = %s", [endpoint.pk])
        if connection.vendor == "postgresql":
            # Check foreign keys now, as the commit this test never reaches would.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    with transaction.atomic():
        comment = submit_comment(article)

    assert Comment.objects.filter(pk=comment.pk).exists()
    assert WebhookDelivery.objects.count() == 0


# --- the console ----------------------------------------------------------------------


@pytest.fixture
def admin_client_(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.mark.django_db
def test_redeliver_from_the_console_sends_the_same_event_again(
    receiver, enqueued, admin_client_, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(receiver)
    submit_comment()
    delivery = WebhookDelivery.objects.get()
    assert webhooks.deliver(delivery.pk) == Delivery.SUCCEEDED

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_.post(
            "/admin/comments/webhookdelivery/",
            {"action": "redeliver", "_selected_action": [delivery.pk]},
        )
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == Delivery.PENDING
    assert delivery.attempts == 0
    assert enqueued == [delivery.pk]
    assert webhooks.deliver(delivery.pk) == Delivery.SUCCEEDED
    payloads = receiver.verified(endpoint.secret)
    assert [p["id"] for p in payloads] == [str(delivery.event_id)] * 2
    detail = admin_client_.get(f"/admin/comments/webhookdelivery/{delivery.pk}/change/")
    assert detail.status_code == 200
    assert "comment.submitted" in detail.content.decode()
    assert (
        "Redelivered"
        in admin_client_.get(
            f"/admin/comments/webhookdelivery/{delivery.pk}/history/"
        ).content.decode()
    )


@pytest.mark.django_db
def test_the_console_creates_an_endpoint_with_a_generated_secret_and_chosen_events(
    admin_client_, receiver
):
    page = admin_client_.get("/admin/comments/webhookendpoint/add/").content.decode()
    assert 'name="secret"' in page
    assert 'value="comment.published"' in page
    response = admin_client_.post(
        "/admin/comments/webhookendpoint/add/",
        {
            "name": "Slack relay",
            "url": receiver.url + "/hooks",
            "secret": "generated-or-typed-secret",
            "events": ["comment.removed", "comment.held"],
            "active": "on",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    endpoint = WebhookEndpoint.objects.get(name="Slack relay")
    assert endpoint.events == ["comment.held", "comment.removed"]
    assert endpoint.include_private is False

    refused = admin_client_.post(
        "/admin/comments/webhookendpoint/add/",
        {"name": "bad", "url": "ftp://example.com/x", "secret": "s", "active": "on"},
    )
    assert refused.status_code == 200
    assert "Use an http:// or https:// URL." in refused.content.decode()

    change = admin_client_.get(f"/admin/comments/webhookendpoint/{endpoint.pk}/change/")
    assert "generated-or-typed-secret" in change.content.decode()
    assert "recent deliveries" in change.content.decode().lower()

    delete_url = f"/admin/comments/webhookendpoint/{endpoint.pk}/delete/"
    assert admin_client_.get(delete_url).status_code == 403, "deactivate first"
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)
    assert admin_client_.post(delete_url, {"post": "yes"}).status_code == 302
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_a_new_endpoint_form_proposes_a_random_secret():
    from comments.admin import WebhookEndpointForm

    first = WebhookEndpointForm().initial["secret"]
    second = WebhookEndpointForm().initial["secret"]
    assert len(first) >= 40
    assert first != second


@pytest.mark.django_db
def test_send_a_test_event_posts_a_signed_ping(admin_client_, receiver):
    endpoint = endpoint_for(receiver)
    response = admin_client_.post(
        "/admin/comments/webhookendpoint/",
        {"action": "send_test_event", "_selected_action": [endpoint.pk]},
        follow=True,
    )
    assert "answered 200" in response.content.decode()
    assert receiver.verified(endpoint.secret)[0]["type"] == "ping"
    assert WebhookDelivery.objects.count() == 0


@pytest.mark.django_db
def test_the_delivery_log_needs_the_model_permissions(client, receiver, enqueued):
    from django.contrib.auth.models import Permission

    endpoint_for(receiver)
    submit_comment()
    delivery = WebhookDelivery.objects.get()
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/comments/webhookdelivery/").status_code == 403
    assert client.get("/admin/comments/webhookendpoint/").status_code == 403

    staff.user_permissions.add(Permission.objects.get(codename="view_webhookdelivery"))
    client.force_login(staff)
    assert client.get("/admin/comments/webhookdelivery/").status_code == 200
    client.post(
        "/admin/comments/webhookdelivery/",
        {"action": "redeliver", "_selected_action": [delivery.pk]},
    )
    make_due(delivery)
    webhooks.deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.attempts == 1, "a viewer cannot redeliver (no second attempt was reset)"


# --- end to end -----------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_comment_through_the_api_and_a_real_worker_reaches_the_receiver_signed(
    celery_worker_process, standin, live_server, receiver
):
    from tests.worker_idle import wait_until_worker_idle

    endpoint = endpoint_for(receiver, include_private=False)
    article = ArticleFactory()
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        response = client.post(
            f"/api/v1/articles/{article.slug}/comments/",
            json={"author_name": "Ada", "author_email": "ada@example.com", "body": "Hooked."},
        )
    assert response.status_code == 202, response.text
    comment_id = response.json()["id"]
    wait_for(lambda: len(receiver.requests) >= 2, timeout=30)
    payloads = receiver.verified(endpoint.secret)
    assert sorted(p["type"] for p in payloads) == ["comment.published", "comment.submitted"]
    assert {p["data"]["comment"]["id"] for p in payloads} == {comment_id}
    assert all("author_email" not in p["data"]["comment"] for p in payloads)
    # The worker records a delivery's outcome after the receiver has answered it.
    wait_for(
        lambda: (
            set(WebhookDelivery.objects.values_list("status", flat=True)) == {Delivery.SUCCEEDED}
        ),
        timeout=30,
    )
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {Delivery.SUCCEEDED}
    wait_until_worker_idle()
