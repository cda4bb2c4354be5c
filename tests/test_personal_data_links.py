"""The author's self-service: asking for a link, the e-mail, and the signed page
that exports or erases (GET only shows, POST acts; bound to its address and action)."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time

import pytest
from django.core import mail, signing
from django.test import Client

from comments import personal_data, tasks
from comments.models import Comment
from tests.factories import ArticleFactory, canary_author, published_comment

pytestmark = pytest.mark.django_db
REQUESTS = "/api/v1/personal-data/requests/"
LINK = re.compile(r"http://testserver/privacy/data/([^/\s\"]+)/")


@pytest.fixture(autouse=True)
def no_request_limit(settings):
    """The limit's counters live in the shared cache; its own tests turn it on."""
    settings.COMMENTS_THROTTLE_PERSONAL_DATA = "0"
    settings.COMMENTS_SITE_URL = "http://testserver"


@pytest.fixture
def author():
    person = canary_author("reader")
    article = ArticleFactory()
    comment = published_comment(
        article,
        author_name=person["author_name"],
        author_email=person["author_email"],
        ip_address=person["ip_address"],
        user_agent=person["user_agent"],
        body=f"My view {person['tag']}.",
    )
    return {**person, "comment": comment, "article": article}


@pytest.fixture
def mailed(monkeypatch, django_capture_on_commit_callbacks):
    """Run the mail task in-process when a request enqueues it; returns the calls."""
    calls = []

    def delay(*args):
        calls.append(args)
        return tasks.send_personal_data_link.apply(args=args)

    monkeypatch.setattr(tasks.send_personal_data_link, "delay", delay)
    return calls


def request_link(api, email: str, action: str, ip: str = "192.0.2.10"):
    return api.post(REQUESTS, {"email": email, "action": action}, format="json", REMOTE_ADDR=ip)


def unique_ip() -> str:
    return f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


def page(token: str) -> str:
    return f"/privacy/data/{token}/"


def post_with_csrf(token: str, action: str):
    """POST the page's own form, CSRF token included, as a browser would."""
    client = Client(enforce_csrf_checks=True)
    shown = client.get(page(token))
    csrf = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', shown.content).group(1)
    return client.post(page(token), {"csrfmiddlewaretoken": csrf.decode(), "action": action})


def still_there(author) -> bool:
    comment = Comment.objects.get(pk=author["comment"].pk)
    return comment.author_email == author["author_email"] and comment.erased_at is None


# --- asking for a link -------------------------------------------------------------------


@pytest.mark.parametrize("action", ["export", "erase"])
def test_a_request_for_an_address_with_comments_mails_a_signed_link(
    api, author, mailed, action, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = request_link(api, author["author_email"].upper(), action)

    assert response.status_code == 202
    assert response.json()["detail"]
    (message,) = mail.outbox
    assert message.to == [author["author_email"].upper()]
    assert author["author_email"].lower() not in message.subject.lower()
    assert message.subject == personal_data.SUBJECTS[action]
    (html, mimetype) = message.alternatives[0]
    assert mimetype == "text/html"
    token = LINK.search(message.body).group(1)
    assert f"/privacy/data/{token}/" in html
    assert personal_data.read_link_token(token) == (action, author["author_email"])


def test_a_request_for_an_unknown_address_is_answered_the_same_and_mails_nothing(
    api, author, mailed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        known = request_link(api, author["author_email"], "export")
        unknown = request_link(api, "nobody-here@example.org", "export")

    assert (known.status_code, unknown.status_code) == (202, 202)
    assert known.json() == unknown.json()
    assert len(mailed) == 1
    assert len(mail.outbox) == 1


def test_the_task_mails_nothing_once_the_address_has_no_comments(author):
    personal_data.erase_email(author["author_email"], actor=personal_data.moderation.SYSTEM)

    assert tasks.send_personal_data_link.apply(args=(author["author_email"], "export")).get() == 0
    assert mail.outbox == []


def test_a_redelivered_mail_task_does_not_mail_twice(author):
    task_id = f"task-{secrets.token_hex(8)}"

    for _ in range(2):
        tasks.send_personal_data_link.apply(args=(author["author_email"], "erase"), task_id=task_id)

    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({"action": "export"}, "email"),
        ({"email": "not-an-address", "action": "export"}, "email"),
        ({"email": "a@example.org"}, "action"),
        ({"email": "a@example.org", "action": "delete-everything"}, "action"),
    ],
)
def test_a_bad_request_names_the_field(api, body, field):
    response = api.post(REQUESTS, body, format="json")

    assert response.status_code == 400
    assert field in response.json()


def test_requests_are_limited_per_client_ip(api, settings):
    settings.COMMENTS_THROTTLE_PERSONAL_DATA = "2/hour"
    ip = unique_ip()

    answers = [
        request_link(api, f"{secrets.token_hex(4)}@example.org", "export", ip).status_code
        for _ in range(3)
    ]

    assert answers == [202, 202, 429]


def test_requests_are_limited_per_address(api, settings):
    settings.COMMENTS_THROTTLE_PERSONAL_DATA = "2/hour"
    email = f"limited-{secrets.token_hex(4)}@example.org"

    answers = [request_link(api, email, "erase", unique_ip()) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [202, 202, 429]
    assert int(answers[-1]["Retry-After"]) > 0


def test_the_request_endpoint_answers_allowed_origins(api, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://news.example.com"]

    response = api.options(
        REQUESTS,
        HTTP_ORIGIN="https://news.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )

    assert response["Access-Control-Allow-Origin"] == "https://news.example.com"


# --- the page behind the link ------------------------------------------------------------


@pytest.mark.parametrize(
    "action, button", [("export", b"Export my data"), ("erase", b"Erase my data")]
)
def test_opening_the_link_shows_a_confirmation_and_changes_nothing(client, author, action, button):
    token = personal_data.make_link_token(author["author_email"], action)

    response = client.get(page(token))

    assert response.status_code == 200
    assert button in response.content
    assert b'method="post"' in response.content
    assert b"csrfmiddlewaretoken" in response.content
    assert "Content-Security-Policy" in response
    assert b"<script" not in response.content
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    assert still_there(author)


def test_posting_the_erase_link_erases_and_says_what(author):
    token = personal_data.make_link_token(author["author_email"], "erase")

    response = post_with_csrf(token, "erase")

    assert response.status_code == 200
    assert b"was removed from 1" in response.content
    comment = Comment.objects.get(pk=author["comment"].pk)
    assert (comment.author_email, comment.author_name) == ("", "Anonymous")
    assert comment.status == Comment.Status.PUBLISHED
    event = comment.events.get(reason="personal data erased")
    assert event.actor_name == "author"

    # Used again: nothing left to do, and nothing to ask.
    again = Client().post(page(token), {"action": "erase"})

    assert again.status_code == 200
    assert b"nothing left to erase" in again.content


def test_posting_without_the_csrf_token_is_refused(author):
    token = personal_data.make_link_token(author["author_email"], "erase")

    response = Client(enforce_csrf_checks=True).post(page(token), {"action": "erase"})

    assert response.status_code == 403
    assert still_there(author)


def test_posting_the_export_link_downloads_the_data(author):
    token = personal_data.make_link_token(author["author_email"], "export")

    response = post_with_csrf(token, "export")

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    data = json.loads(response.content)
    assert [comment["id"] for comment in data["comments"]] == [author["comment"].pk]
    assert data["comments"][0]["ip_address"] == author["ip_address"]
    assert still_there(author)


def test_an_export_link_cannot_erase(author):
    token = personal_data.make_link_token(author["author_email"], "export")

    response = post_with_csrf(token, "erase")

    assert response.status_code == 400
    assert still_there(author)


def test_an_erase_payload_signed_as_an_export_link_is_not_valid(client, author):
    forged = signing.dumps(
        {
            "c": author["comment"].pk,
            "h": personal_data._address_mac(author["author_email"], "erase"),
        },
        salt="comments.personal-data.export",
    )

    response = client.post(page(forged), {"action": "erase"})

    assert response.status_code == 400
    assert still_there(author)


def test_the_link_does_not_contain_the_address(author):
    token = personal_data.make_link_token(author["author_email"], "erase")
    payload = token.split(":")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))

    assert author["author_email"].encode() not in decoded
    assert author["author_email"] not in token


def test_a_link_is_bound_to_its_address(client, author):
    other = canary_author("other")
    others = published_comment(author_email=other["author_email"], author_name=other["author_name"])
    token = personal_data.make_link_token(other["author_email"], "erase")
    _payload, rest = token.split(":", 1)
    # The other person's link, pointed at this author's comment without re-signing it.
    data = json.loads(base64.urlsafe_b64decode(_payload + "=" * (-len(_payload) % 4)))
    data["c"] = author["comment"].pk
    swapped = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    # Even correctly signed, the other address's hash does not match this comment.
    resigned = signing.dumps(
        {"c": author["comment"].pk, "h": data["h"]}, salt="comments.personal-data.erase"
    )

    for forged in (f"{swapped}:{rest}", resigned):
        for method in (client.get, client.post):
            response = method(page(forged), {"action": "erase"})
            assert response.status_code == 400
            assert b"not valid" in response.content
    assert still_there(author)
    assert Comment.objects.get(pk=others.pk).author_email == other["author_email"]


def test_an_export_link_after_erasure_says_there_is_nothing_left(client, author):
    token = personal_data.make_link_token(author["author_email"], "export")
    personal_data.erase_email(author["author_email"], actor=personal_data.moderation.SYSTEM)

    response = client.post(page(token), {"action": "export"})

    assert response.status_code == 410
    assert b"no data left" in response.content


@pytest.mark.parametrize("token", ["garbage", "a:b:c", "x" * 300, "%E2%98%83"])
def test_a_broken_link_gets_a_clear_page_not_an_error(client, token):
    response = client.get(page(token))

    assert response.status_code == 400
    assert b"This link is not valid" in response.content


def test_an_expired_link_does_nothing(client, author, settings, monkeypatch):
    settings.COMMENTS_PERSONAL_DATA_LINK_SECONDS = 60
    real_time = time.time
    monkeypatch.setattr(signing.time, "time", lambda: real_time() - 120)
    token = personal_data.make_link_token(author["author_email"], "erase")
    monkeypatch.setattr(signing.time, "time", real_time)

    shown = client.get(page(token))
    posted = client.post(page(token), {"action": "erase"})

    assert (shown.status_code, posted.status_code) == (410, 410)
    assert b"expired" in posted.content
    assert still_there(author)


def test_a_link_still_inside_its_lifetime_works(client, author, settings, monkeypatch):
    settings.COMMENTS_PERSONAL_DATA_LINK_SECONDS = 600
    real_time = time.time
    monkeypatch.setattr(signing.time, "time", lambda: real_time() - 120)
    token = personal_data.make_link_token(author["author_email"], "export")
    monkeypatch.setattr(signing.time, "time", real_time)

    assert client.get(page(token)).status_code == 200


def test_a_cache_outage_skips_the_request_limit_instead_of_failing(api, settings, monkeypatch):
    from comments.abuse import _SettingRateThrottle

    class BrokenCache:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise ConnectionError("Connection refused.")

            return fail

    settings.COMMENTS_THROTTLE_PERSONAL_DATA = "2/hour"
    monkeypatch.setattr(_SettingRateThrottle, "cache", BrokenCache())
    answer = request_link(api, f"{secrets.token_hex(4)}@example.org", "export", unique_ip())
    assert answer.status_code == 202
