"""A mailbox watched while comments flow: the web server (granian), a Celery worker and
the Akismet stand-in send real SMTP to a sink on loopback (Django's SMTP backend).

A reader ticks "notify me of replies"; once the worker has published the comment the
confirmation arrives; opening its link changes nothing, the button confirms; replies
arrive with RFC 8058 one-click unsubscribe headers, and that one-click POST (no cookie,
no CSRF token) stops them. A name or an article title carrying CR/LF never becomes a
header, and a held comment reaches the moderators' address in text and HTML.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage

import httpx
import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token

from comments.models import NotificationAddress, ReplySubscription
from tests.factories import ArticleFactory, UserFactory, canary_author
from tests.processes import AppStack, SmtpSink, app_stack, wait_for
from tests.worker_fixtures import require_services

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
MODERATOR = "moderators@news.example.com"
VICTIM = "victim@example.com"
INJECTED = f"\r\nBcc: {VICTIM}"
# What every mail of ours may carry as headers: nothing a commenter typed but the address.
ALLOWED_HEADERS = {
    "content-type",
    "mime-version",
    "subject",
    "from",
    "to",
    "date",
    "message-id",
    "auto-submitted",
    "list-unsubscribe",
    "list-unsubscribe-post",
}


@dataclass
class Mailroom:
    app: AppStack
    sink: SmtpSink
    http: httpx.Client


@pytest.fixture
def mailroom(standin, tmp_path) -> Iterator[Mailroom]:
    require_services()
    sink = SmtpSink()
    try:
        with (
            app_stack(
                standin.url,
                tmp_path,
                EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
                EMAIL_HOST="127.0.0.1",
                EMAIL_PORT=str(sink.port),
                EMAIL_TIMEOUT="5",
                COMMENTS_MODERATOR_EMAILS=MODERATOR,
                COMMENTS_MAX_LINKS="2",
            ) as app,
            httpx.Client(base_url=app.url, timeout=10) as http,
        ):
            yield Mailroom(app, sink, http)
            app.wait_until_idle()  # nothing may still write while the database is flushed
    finally:
        sink.close()


def submit(room: Mailroom, slug: str, name: str, email: str, body: str, **fields: object) -> dict:
    response = room.http.post(
        f"/api/v1/articles/{slug}/comments/",
        json={"author_name": name, "author_email": email, "body": body, **fields},
    )
    assert response.status_code == 202, response.text
    return response.json()


def wait_status(room: Mailroom, comment: dict, status: str) -> None:
    """Until the author's own view of the comment (its edit token) shows `status`."""

    def shown() -> bool:
        response = room.http.get(
            f"/api/v1/comments/{comment['id']}/", headers={"X-Comment-Token": comment["edit_token"]}
        )
        return response.status_code == 200 and response.json()["status"] == status

    wait_for(shown, timeout=30)


def wait_for_mails(sink: SmtpSink, address: str, count: int) -> list[dict]:
    return wait_for(lambda: sink.to(address)[count - 1 :] and sink.to(address), timeout=30)


def parts(message: EmailMessage) -> tuple[str, str]:
    """The plain-text and the HTML body of a multipart/alternative mail."""
    assert message.get_content_type() == "multipart/alternative", message.get_content_type()
    types = [part.get_content_type() for part in message.iter_parts()]
    assert types == ["text/plain", "text/html"], types
    return (
        message.get_body(preferencelist=("plain",)).get_content(),
        message.get_body(preferencelist=("html",)).get_content(),
    )


def raw_headers(mail: dict) -> str:
    return mail["raw"].split(b"\r\n\r\n", 1)[0].decode("ascii")


def assert_no_injection(mail: dict, recipient: str, *typed: str) -> None:
    """Only our headers, each on its own line(s), none holding what a commenter typed;
    the envelope names the one recipient."""
    message = mail["message"]
    assert mail["rcpt_tos"] == [recipient]
    assert {name.lower() for name in message} <= ALLOWED_HEADERS, message.keys()
    assert message["To"] == recipient
    assert "\r" not in str(message["Subject"]) and "\n" not in str(message["Subject"])
    assert not re.search(r"^(bcc|cc):", raw_headers(mail), re.IGNORECASE | re.MULTILINE)
    for name, value in message.items():
        if name.lower() == "to":
            continue  # the one thing a commenter typed that must be there
        for text in typed:
            assert text.lower() not in str(value).lower(), (name, value)


def link(text: str, room: Mailroom, path: str) -> str:
    match = re.search(re.escape(room.app.url + path) + r"[^\s/]+/", text)
    assert match, text
    return match.group(0)


def test_confirmation_replies_one_click_unsubscribe_and_moderator_mail(mailroom):
    room, sink = mailroom, mailroom.sink
    ada, bob, carl = (canary_author(label) for label in ("ada", "bob", "carl"))
    article = ArticleFactory(slug=f"mailbox-{ada['tag']}")
    email = ada["author_email"]

    # Ada comments without asking for notifications: published, and no mail.
    first = submit(room, article.slug, ada["author_name"], email, f"Ada {ada['tag']} says hi.")
    assert first["status"] == "pending"
    wait_status(room, first, "published")

    # Then she asks to hear about replies; once published, the confirmation arrives.
    subscribed = submit(
        room,
        article.slug,
        ada["author_name"],
        email,
        f"Ada {ada['tag']} wants to hear back.",
        notify_replies=True,
    )
    wait_status(room, subscribed, "published")
    [confirmation] = wait_for_mails(sink, email, 1)
    text, html = parts(confirmation["message"])
    assert_no_injection(confirmation, email, ada["author_name"], ada["tag"])
    assert ada["author_name"] not in text + html, "nothing the commenter typed"
    assert "wants to hear back" not in text + html
    confirm_url = link(text, room, "/notifications/confirm/")
    assert confirm_url in html

    # Opening the link changes nothing; the page's button confirms.
    address = NotificationAddress.objects.get(email=email)
    with httpx.Client(timeout=10) as browser:
        page = browser.get(confirm_url)
        assert page.status_code == 200
        address.refresh_from_db()
        assert address.confirmed_at is None, "a GET (a mail scanner) confirms nothing"
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        assert browser.post(confirm_url, data={"csrfmiddlewaretoken": token}).status_code == 200
    address.refresh_from_db()
    assert address.confirmed_at is not None

    # Bob replies: the worker publishes, and Ada hears of it with one-click headers.
    reply = submit(
        room,
        article.slug,
        bob["author_name"],
        bob["author_email"],
        "Bob answers.",
        parent=subscribed["id"],
    )
    wait_status(room, reply, "published")
    notice = wait_for_mails(sink, email, 2)[1]
    text, html = parts(notice["message"])
    assert bob["author_name"] in text and "Bob answers." in text
    assert_no_injection(notice, email, bob["author_name"], bob["author_email"], "Bob answers")
    unsubscribe_url = link(text, room, "/notifications/unsubscribe/")
    # (A long value is folded onto a continuation line; unfolded it is the URL.)
    assert notice["message"]["List-Unsubscribe"].strip() == f"<{unsubscribe_url}>"
    assert notice["message"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # A name carrying CR/LF is accepted as text, and stays in the body.
    eve = submit(
        room,
        article.slug,
        "Eve" + INJECTED,
        "eve@example.net",
        "Eve chimes in.",
        parent=subscribed["id"],
    )
    wait_status(room, eve, "published")
    eves = wait_for_mails(sink, email, 3)[2]
    text, _ = parts(eves["message"])
    assert f"Eve Bcc: {VICTIM} replied" in text
    assert_no_injection(eves, email, VICTIM, "Eve Bcc")

    # The one-click POST of a mail provider: no cookie, no CSRF token.
    with httpx.Client(timeout=10) as provider:
        response = provider.post(
            unsubscribe_url,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 200, response.text
    subscription = ReplySubscription.objects.get(comment_id=subscribed["id"])
    assert subscription.unsubscribed_at is not None

    # Carl replies too: published, the worker goes idle, and no mail follows.
    late = submit(
        room,
        article.slug,
        carl["author_name"],
        carl["author_email"],
        "Carl here.",
        parent=subscribed["id"],
    )
    wait_status(room, late, "published")
    room.app.wait_until_idle()
    time.sleep(1.0)  # a bounded grace period for a mail already on its way
    assert len(sink.to(email)) == 3, [m["message"]["Subject"] for m in sink.to(email)]
    assert sink.to(email)[0]["message"]["Subject"].strip().startswith("Please confirm")

    # A title with CR/LF through the staff API, and a held comment on that article:
    # the moderators' mail has both parts and no injected header.
    editor = UserFactory()
    editor.user_permissions.add(
        Permission.objects.get(content_type__app_label="articles", codename="add_article")
    )
    token = Token.objects.create(user=editor)
    title = "Breaking" + INJECTED
    response = room.http.post(
        "/api/v1/articles/",
        json={
            "slug": f"crlf-{ada['tag']}",
            "title": title,
            "url": f"https://news.example.com/crlf-{ada['tag']}/",
        },
        headers={"Authorization": f"Token {token.key}"},
    )
    assert response.status_code == 201, response.text
    held = submit(
        room,
        f"crlf-{ada['tag']}",
        bob["author_name"],
        bob["author_email"],
        "Read [this](https://one.example.net/) and [that](https://two.example.net/).",
    )
    wait_status(room, held, "held")
    [moderator_mail] = wait_for_mails(sink, MODERATOR, 1)
    text, html = parts(moderator_mail["message"])
    assert bob["author_email"] in text and bob["author_email"] in html
    # The (staff-written) title is in the subject, as one line of text: no new header.
    assert_no_injection(moderator_mail, MODERATOR, bob["author_name"], bob["author_email"])
    assert (
        moderator_mail["message"]["Subject"].strip()
        == f"Comment held for review on “Breaking Bcc: {VICTIM}”"
    )
    assert sink.to(VICTIM) == []
    assert all(mail["rcpt_tos"] in ([email], [MODERATOR]) for mail in sink.messages)
