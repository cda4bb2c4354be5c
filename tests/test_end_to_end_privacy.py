"""A PII canary run through the real system: the web server (granian), a Celery worker,
the Akismet stand-in, PostgreSQL and Redis, with a private webhook endpoint and reply
notifications mailed to an SMTP sink.

Three readers with unique e-mails, IP addresses (through a trusted proxy's
X-Forwarded-For), user agents, referrers, names and websites comment and reply to each
other. Then A is erased by a moderator through the API, B erases themself through the
e-mailed link, and C's comments pass the IP retention period (`apply_retention`).
Afterwards no column of any table, no public response and no Redis value under the
test's cache prefix holds A's or B's details, nor C's full IP address, user agent or
referrer; before, the same scans find them, so they look in the right places.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import httpx
import pytest
import redis
from django.conf import settings
from django.db import connection
from rest_framework.authtoken.models import Token

from comments import webhooks
from comments.models import Comment, NotificationAddress, WebhookDelivery
from tests.factories import ArticleFactory, WebhookEndpointFactory, canary_author, moderator_user
from tests.processes import ROOT, AppStack, SmtpSink, app_stack, wait_for
from tests.worker_fixtures import require_services

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
Status = Comment.Status
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


class HookReceiver:
    """A webhook endpoint on 127.0.0.1 that answers 200 to everything."""

    def __init__(self) -> None:
        self.count = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class System:
    app: AppStack
    sink: SmtpSink
    hooks: HookReceiver
    http: httpx.Client


@pytest.fixture
def system(standin, tmp_path) -> Iterator[System]:
    require_services()
    sink, hooks = SmtpSink(), HookReceiver()
    try:
        with (
            app_stack(
                standin.url,
                tmp_path,
                COMMENTS_TRUSTED_PROXIES="1",
                COMMENTS_THROTTLE_PERSONAL_DATA="0",
                EMAIL_BACKEND=SMTP_BACKEND,
                EMAIL_HOST="127.0.0.1",
                EMAIL_PORT=str(sink.port),
            ) as app,
            httpx.Client(base_url=app.url, timeout=10) as http,
        ):
            yield System(app, sink, hooks, http)
            app.wait_until_idle()  # nothing may still write while the database is flushed
    finally:
        sink.close()
        hooks.close()
        # The flush removes the endpoint without a signal: every process reloads.
        webhooks.reload_endpoints_everywhere()


def make_canaries(*labels: str) -> dict[str, dict[str, str]]:
    """Canary authors with pairwise different IP addresses, and a referrer each."""
    people: dict[str, dict[str, str]] = {}
    for label in labels:
        person = canary_author(label)
        while any(person["ip_address"] == other["ip_address"] for other in people.values()):
            person = canary_author(label)
        person["referrer"] = f"https://news.example.com/from-{person['tag']}/"
        people[label] = person
    return people


def submit(system: System, slug: str, person: dict[str, str], body: str, **fields: object) -> dict:
    """POST a comment as a browser behind our one trusted proxy would."""
    response = system.http.post(
        f"/api/v1/articles/{slug}/comments/",
        json={
            "author_name": person["author_name"],
            "author_email": person["author_email"],
            "author_url": person["author_url"],
            "body": body,
            **fields,
        },
        headers={
            "X-Forwarded-For": person["ip_address"],
            "User-Agent": person["user_agent"],
            "Referer": person["referrer"],
        },
    )
    assert response.status_code == 202, response.text
    return response.json()


def wait_checked(*expected: tuple[dict, str]) -> None:
    """Until the worker has decided each (submitted comment, status) pair."""

    def done() -> bool:
        statuses = dict(
            Comment.objects.filter(pk__in=[c["id"] for c, _ in expected]).values_list(
                "id", "status"
            )
        )
        return all(statuses.get(comment["id"]) == status for comment, status in expected)

    wait_for(done, timeout=30)


def wait_for_mail(sink: SmtpSink, address: str, subject_part: str, count: int = 1) -> dict:
    mails = wait_for(
        lambda: [m for m in sink.to(address) if subject_part in m["message"]["Subject"]][
            count - 1 :
        ],
        timeout=30,
    )
    return mails[0]


def text_of(mail: dict) -> str:
    return mail["message"].get_body(preferencelist=("plain",)).get_content()


def link_in(mail: dict, base_url: str, path: str) -> str:
    match = re.search(re.escape(base_url) + re.escape(path) + r"[^\s/]+/", text_of(mail))
    assert match, text_of(mail)
    return match.group(0)


def csrf_token_of(page: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


# --- the scans ---------------------------------------------------------------------------


def database_hits(needles: Iterable[str]) -> dict[str, list[str]]:
    """needle -> the "table.column"s, anywhere in the database, whose text holds it
    (ignoring case): every column of every table, cast to text."""
    needles = sorted(set(needles))
    found: dict[str, list[str]] = {}
    quote_name = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.table_schema, c.table_name, c.column_name
            FROM information_schema.columns c
            JOIN information_schema.tables t USING (table_schema, table_name)
            WHERE t.table_type = 'BASE TABLE'
              AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
              AND c.data_type <> 'bytea'
            """
        )
        columns = cursor.fetchall()
        assert len(columns) > 50, "the scan sees the whole schema"
        for schema, table, column in columns:
            source = f"{quote_name(schema)}.{quote_name(table)}"
            cursor.execute(
                f"SELECT needle FROM unnest(%s::text[]) AS needle WHERE EXISTS ("  # noqa: S608
                f"SELECT 1 FROM {source} "
                f"WHERE strpos(lower({quote_name(column)}::text), lower(needle)) > 0)",
                [needles],
            )
            for (needle,) in cursor.fetchall():
                found.setdefault(needle, []).append(f"{table}.{column}")
    return found


def public_responses(system: System, slug: str, url: str, comments: list[dict]) -> list[str]:
    """Everything anyone can fetch about the article and its comments, as text."""
    paths = [
        f"/api/v1/articles/{slug}/comments/",
        f"/api/v1/articles/{slug}/comments/?order=newest",
        f"/api/v1/articles/counts/?slug={slug}",
        f"/api/v1/articles/{slug}/",
        "/api/v1/articles/",
        f"/api/v1/articles/resolve/?url={quote(url, safe='')}",
        f"/feeds/articles/{slug}.atom",
        "/feeds/latest.atom",
        "/api/v1/comments/latest/",
        "/api/v1/comments/latest/?limit=50",
        f"/demo/{slug}/",
    ]
    paths += [f"/api/v1/comments/{comment['id']}/" for comment in comments]
    bodies = []
    for path in paths:
        response = system.http.get(path)
        assert response.status_code in (200, 404), (path, response.status_code)
        bodies.append(f"{path}\n{response.text}")
    for comment in comments:  # and what the author's own token shows them
        response = system.http.get(
            f"/api/v1/comments/{comment['id']}/", headers={"X-Comment-Token": comment["edit_token"]}
        )
        assert response.status_code == 200, response.text
        bodies.append(f"own {comment['id']}\n{response.text}")
    return bodies


def text_hits(texts: Iterable[str], needles: Iterable[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for text in texts:
        lowered = text.lower()
        for needle in needles:
            if needle.lower() in lowered:
                found.setdefault(needle, []).append(text.split("\n", 1)[0])
    return found


def redis_values(app: AppStack) -> list[str]:
    """Every key and value under the test's cache prefix, and the stack's broker
    queue and unacknowledged messages, each as "key\\nvalue" text."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    assert keys, "the read cache and the throttles live under the prefix"
    texts = []
    for key in [*keys, app.queue.encode(), b"unacked"]:
        kind = client.type(key).decode()
        if kind == "string":
            parts = [client.get(key) or b""]
        elif kind == "hash":
            parts = [item for pair in client.hgetall(key).items() for item in pair]
        elif kind == "list":
            parts = client.lrange(key, 0, -1)
        elif kind == "set":
            parts = list(client.smembers(key))
        elif kind == "zset":
            parts = client.zrange(key, 0, -1)
        elif kind == "none":
            continue  # expired or deleted since the scan
        else:
            parts = [client.dump(key) or b""]
        texts.append(
            key.decode(errors="replace") + "\n" + b"\n".join(parts).decode(errors="replace")
        )
    return texts


# --- the run -------------------------------------------------------------------------------


def test_erased_and_retained_canaries_are_gone_from_database_responses_and_cache(system):
    people = make_canaries("ann", "ben", "cyd")
    a, b, c = people["ann"], people["ben"], people["cyd"]
    article = ArticleFactory(slug=f"canary-{a['tag']}")
    WebhookEndpointFactory(url=system.hooks.url, include_private=True)
    slug, site = article.slug, system.app.url

    # A opens with notifications on, C comments, and A's second comment is spam.
    a1 = submit(system, slug, a, "An opening thought.", notify_replies=True)
    c1 = submit(system, slug, c, "A comment from C.")
    a_spam = submit(system, slug, a, "[[spam]] Cheap watches.")
    wait_checked((a1, Status.PUBLISHED), (c1, Status.PUBLISHED), (a_spam, Status.SPAM))

    # A confirms the address (double opt-in), so replies to A are mailed.
    confirmation = wait_for_mail(system.sink, a["author_email"], "Please confirm")
    with httpx.Client(timeout=10) as browser:
        page = browser.get(link_in(confirmation, site, "/notifications/confirm/"))
        assert page.status_code == 200
        confirmed = browser.post(
            str(page.url), data={"csrfmiddlewaretoken": csrf_token_of(page.text)}
        )
        assert confirmed.status_code == 200, confirmed.text
    assert NotificationAddress.objects.get(email=a["author_email"]).confirmed_at is not None

    # B and C reply to A (B with notifications on), then A answers B.
    b1 = submit(system, slug, b, "B replies to A.", parent=a1["id"], notify_replies=True)
    c2 = submit(system, slug, c, "C replies to A too.", parent=a1["id"])
    wait_checked((b1, Status.PUBLISHED), (c2, Status.PUBLISHED))
    a2 = submit(system, slug, a, "A answers B.", parent=b1["id"])
    b2 = submit(system, slug, b, "B on the article itself.")
    wait_checked((a2, Status.PUBLISHED), (b2, Status.PUBLISHED))
    wait_for_mail(system.sink, a["author_email"], "New reply", count=2)  # from B and C
    wait_for_mail(system.sink, b["author_email"], "Please confirm")  # B never confirms
    system.app.wait_until_idle()
    wait_for(
        lambda: (
            not WebhookDelivery.objects.exclude(status=WebhookDelivery.Status.SUCCEEDED).exists()
        ),
        timeout=30,
    )
    assert WebhookDelivery.objects.filter(payload__data__comment__has_key="ip_address").exists()
    comments = [a1, c1, a_spam, b1, c2, a2, b2]

    private = {
        label: [person[k] for k in ("author_email", "ip_address", "user_agent", "referrer")]
        for label, person in people.items()
    }
    public = {
        label: [person["author_name"], person["author_url"]] for label, person in people.items()
    }
    erased = private["ann"] + private["ben"] + public["ann"] + public["ben"]
    retained = [c["ip_address"], c["user_agent"], c["referrer"]]

    # Before: the scans find the canaries where they are stored or shown.
    stored = database_hits(erased + retained + [c["author_email"]])
    assert set(stored) == set(erased + retained + [c["author_email"]])
    assert "comments_comment.author_email" in stored[a["author_email"]]
    assert "comments_webhookdelivery.payload" in stored[b["ip_address"]]
    assert "comments_notificationaddress.email" in stored[b["author_email"]]
    shown = public_responses(system, slug, article.url, comments)
    assert set(text_hits(shown, public["ann"] + public["ben"])) == set(
        public["ann"] + public["ben"]
    )
    every_private = private["ann"] + private["ben"] + private["cyd"]
    assert text_hits(shown, every_private) == {}, "private details are never public"
    cached = redis_values(system.app)
    assert set(text_hits(cached, public["ann"] + public["ben"])) == set(
        public["ann"] + public["ben"]
    ), "the read cache holds the public pages"

    # A is erased by a moderator through the API.
    moderator = Token.objects.create(user=moderator_user())
    response = system.http.post(
        "/api/v1/moderation/personal-data/erase/",
        json={"email": a["author_email"].upper()},
        headers={"Authorization": f"Token {moderator.key}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["email_comments"] == 3
    assert response.json()["notification_addresses"] == 1

    # B asks for the link, opens it (nothing changes), and confirms on the page.
    response = system.http.post(
        "/api/v1/personal-data/requests/", json={"email": b["author_email"], "action": "erase"}
    )
    assert response.status_code == 202, response.text
    mail = wait_for_mail(system.sink, b["author_email"], "confirm the erasure")
    assert mail["rcpt_tos"] == [b["author_email"]]
    with httpx.Client(timeout=10) as browser:
        page = browser.get(link_in(mail, site, "/privacy/data/"))
        assert page.status_code == 200, page.text
        assert Comment.objects.filter(author_email=b["author_email"]).count() == 2, (
            "opening the link changes nothing"
        )
        done = browser.post(
            str(page.url),
            data={"csrfmiddlewaretoken": csrf_token_of(page.text), "action": "erase"},
        )
        assert done.status_code == 200, done.text
    assert not Comment.objects.filter(author_email=b["author_email"]).exists()
    assert Comment.objects.filter(pk__in=[b1["id"], b2["id"]], erased_at__isnull=False).count() == 2

    # C's comments are 31 days old: the retention command trims them.
    c_ids = [c1["id"], c2["id"]]
    with connection.cursor() as cursor:
        for table, column in (("comments_comment", "id"), ("comments_commentevent", "comment_id")):
            cursor.execute(
                f"UPDATE {table} SET created_at = created_at - interval '31 days' "  # noqa: S608
                f"WHERE {column} = ANY(%s)",
                [c_ids],
            )
    retention = subprocess.run(
        [sys.executable, "manage.py", "apply_retention"],
        cwd=ROOT,
        env=system.app.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert retention.returncode == 0, retention.stdout + retention.stderr
    assert "2 comment(s) older than" in retention.stdout, retention.stdout
    truncated = c["ip_address"].rsplit(".", 1)[0] + ".0"
    for comment in Comment.objects.filter(pk__in=c_ids):
        assert (comment.ip_address, comment.user_agent, comment.referrer) == (truncated, "", "")
    system.app.wait_until_idle()

    # After: nothing of A or B, nor C's full IP address, user agent or referrer, anywhere.
    gone = erased + retained
    assert database_hits([*gone, c["author_email"], truncated]).keys() == {
        c["author_email"],
        truncated,
    }, "only what C may keep is left"
    # Erasure deleted the cached pages that showed A and B (not only made them stale).
    assert text_hits(redis_values(system.app), gone) == {}
    shown = public_responses(system, slug, article.url, comments)
    assert text_hits(shown, gone + private["cyd"]) == {}
    assert settings.COMMENTS_ERASED_NAME in shown[0]
    assert text_hits(redis_values(system.app), gone) == {}
