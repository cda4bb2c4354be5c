"""Every e-mail is worth opening (plain text and HTML, the comment safely shown, direct
links) and nothing a commenter or an editor typed can add or break a header."""

from __future__ import annotations

import email
import email.policy

import pytest
from django.contrib.auth.models import Group
from django.core import mail

from comments import moderation, notifications, reply_notifications, tasks
from comments.models import HoldReason, ReplySubscription
from tests.factories import ArticleFactory, UserFactory, submit_comment, subscribed_comment

pytestmark = pytest.mark.django_db
INJECTION = "Eve\r\nBcc: victim@example.com"
TITLE_INJECTION = "Big news\r\nBcc: victim@example.com\nX-Evil: 1\u2028Cc: other@example.com"


@pytest.fixture(autouse=True)
def site(settings, monkeypatch):
    settings.COMMENTS_SITE_URL = "https://comments.example.com"
    settings.DEFAULT_FROM_EMAIL = "comments@news.example.com"
    monkeypatch.setattr(moderation, "_send_check", lambda comment_id: None)


@pytest.fixture
def moderator():
    user = UserFactory(email="mod@example.com")
    user.groups.add(Group.objects.get(name="moderators"))
    return user


def html_of(message) -> str:
    ((html, mimetype),) = message.alternatives
    assert mimetype == "text/html"
    return html


def assert_headers_intact(message, to: list[str]) -> None:
    """Parsed back as a receiving server would: only our headers, a one-line subject."""
    raw = message.message().as_bytes()
    received = email.message_from_bytes(raw, policy=email.policy.default)
    assert "\n" not in received["Subject"] and "\r" not in received["Subject"]
    assert received["Subject"].strip() == message.subject
    for header in ("Bcc", "Cc", "X-Evil", "Reply-To"):
        assert received[header] is None, header
    assert received["From"] == "comments@news.example.com"
    assert received["To"] == ", ".join(to)
    assert message.recipients() == to
    assert b"\nBcc:" not in raw and b"\nX-Evil:" not in raw and b"\nCc:" not in raw


def published_reply(parent, **fields):
    fields.setdefault("author_email", "bob@example.com")
    reply = submit_comment(parent.article, parent_id=parent.pk, **fields)
    moderation.publish(reply, actor=moderation.SPAM_CHECK, reason="akismet_ham")
    return reply


def reply_mail(parent, **fields):
    reply = published_reply(parent, **fields)
    assert reply_notifications.notify_reply(reply.pk) == 1
    return mail.outbox[-1]


# --- header injection ------------------------------------------------------------------------


def test_a_name_with_a_line_break_stays_in_the_body(api, settings):
    """Through the API, as an attacker would send it."""
    parent = subscribed_comment()
    response = api.post(
        f"/api/v1/articles/{parent.article.slug}/comments/",
        {
            "author_name": INJECTION,
            "author_email": "eve@example.com",
            "body": "Hi.",
            "parent": parent.pk,
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    reply = parent.children.get()
    moderation.publish(reply, actor=moderation.SPAM_CHECK, reason="akismet_ham")
    assert tasks.notify_reply.apply(args=[reply.pk]).get() == 1
    (message,) = mail.outbox
    assert_headers_intact(message, ["ada@example.com"])
    # The author's name stays out of the subject; the title is the factory's (random words,
    # which may well contain "Eve" as in "Every"), so the subject is compared whole.
    assert message.subject == f"New reply to your comment on “{parent.article.title}”"
    assert "victim" not in message.subject
    assert "Eve Bcc: victim@example.com replied to your comment" in message.body
    assert "Eve Bcc: victim@example.com" in html_of(message)


def test_an_article_title_cannot_inject_headers_into_any_mail(moderator):
    article = ArticleFactory(title=TITLE_INJECTION)
    held = submit_comment(article, author_name=INJECTION, author_email="eve@example.com")
    moderation.hold(held, actor=moderation.SYSTEM, hold_reason=HoldReason.MODERATION_WORD)
    assert notifications.notify_held(held.pk) == 1
    parent = subscribed_comment(article)
    reply_mail(parent, author_name=INJECTION)
    confirmation = reply_notifications.confirmation_message(parent.reply_subscription)
    confirmation.send()
    held_mail, notice, confirm_mail = mail.outbox
    assert_headers_intact(held_mail, ["mod@example.com"])
    assert_headers_intact(notice, ["ada@example.com"])
    assert_headers_intact(confirm_mail, ["ada@example.com"])
    expected = "Big news Bcc: victim@example.com X-Evil: 1 Cc: other@example.com"
    assert held_mail.subject == f"Comment held for review on “{expected}”"
    assert notice.subject == f"New reply to your comment on “{expected}”"
    assert "Eve Bcc: victim@example.com" in held_mail.body


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain", "plain"),
        ("a\r\nb", "a b"),
        ("a\nb\rc\x00d\x1be\x85f", "a b c d e f"),
        ("line\u2028separator\u2029paragraph", "line separator paragraph"),
        ("\u202eevil\u202c reversed", "evil reversed"),
        ("  spaced   out  ", "spaced out"),
    ],
)
def test_header_text_leaves_one_clean_line(raw, expected):
    assert notifications.header_text(raw) == expected


def test_header_text_is_bounded():
    assert len(notifications.header_text("x" * 1000)) == notifications.SUBJECT_MAX_LENGTH
    assert notifications.header_text("x" * 1000).endswith("…")


def test_body_text_keeps_lines_and_drops_control_characters():
    assert notifications.body_text("one\r\ntwo\rthree\x00\x1b\nfour\tfive") == (
        "one\ntwo\nthree\nfour\tfive"
    )


# --- HTML and text parts -------------------------------------------------------------------


def test_the_html_part_escapes_what_commenters_typed():
    article = ArticleFactory(title="<b>Title</b> & more")
    parent = subscribed_comment(article, body="Parent <script>alert(1)</script>")
    message = reply_mail(
        parent,
        author_name="<script>alert('name')</script>",
        body="Look: <script>alert(2)</script> **bold** [link](javascript:alert(3))",
    )
    html = html_of(message)
    assert "<script" not in html.lower()
    assert 'href="javascript:' not in html.lower()
    assert "&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "<strong>bold</strong>" in html, "the sanitised body_html is shown"
    assert "&lt;b&gt;Title&lt;/b&gt; &amp; more" in html
    # The text part is the text as typed: nothing there is ever rendered as HTML.
    assert "<script>alert(2)</script>" in message.body
    assert "&lt;" not in message.body


def test_the_reply_mail_links_to_the_article_and_to_both_unsubscribe_pages():
    article = ArticleFactory(title="Roaming", url="https://news.example.com/roaming/")
    parent = subscribed_comment(article, body="Will prices fall?")
    message = reply_mail(parent, author_name="Bob", body="Probably not.")
    reply = parent.children.get()
    html = html_of(message)
    for part in (message.body, html):
        assert f"https://news.example.com/roaming/#c{reply.pk}" in part, "the reply itself"
        assert "Bob" in part
        assert "Roaming" in part
        assert "Will prices fall?" in part, "the parent is quoted"
        assert "Probably not." in part
        assert "https://news.example.com/roaming/" in part
        assert "https://comments.example.com/notifications/unsubscribe/" in part
        assert "https://comments.example.com/notifications/unsubscribe-all/" in part
    assert message.extra_headers["List-Unsubscribe"].startswith(
        "<https://comments.example.com/notifications/unsubscribe/"
    )
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.extra_headers["Auto-Submitted"] == "auto-generated"
    assert message.from_email == "comments@news.example.com"
    assert message.reply_to == []


def test_the_confirmation_carries_nothing_the_commenter_typed():
    article = ArticleFactory(title="Roaming", url="https://news.example.com/roaming/")
    comment = submit_comment(
        article,
        author_name="Cheap pills at spam.example",
        body="Buy now at https://spam.example/",
        notify_replies=True,
    )
    moderation.publish(comment, actor=moderation.SPAM_CHECK, reason="akismet_ham")
    subscription = ReplySubscription.objects.get(comment=comment)
    assert reply_notifications.send_confirmation(subscription.pk) == 1
    (message,) = mail.outbox
    html = html_of(message)
    for part in (message.subject, message.body, html):
        assert "spam.example" not in part and "pills" not in part
    for part in (message.body, html):
        assert "Roaming" in part
        assert "https://news.example.com/roaming/" in part
        assert "https://comments.example.com/notifications/confirm/" in part
    assert message.to == ["ada@example.com"]


def test_the_moderator_mail_has_both_parts(moderator):
    held = submit_comment(author_name="<i>Ada</i>", body="A **held** remark <script>x()</script>")
    moderation.hold(held, actor=moderation.SYSTEM, hold_reason=HoldReason.MODERATION_WORD)
    notifications.notify_held(held.pk)
    (message,) = mail.outbox
    html = html_of(message)
    assert "A **held** remark <script>x()</script>" in message.body
    assert "<strong>held</strong>" in html
    assert "<script" not in html and "&lt;i&gt;Ada&lt;/i&gt;" in html
    console = f"https://comments.example.com/admin/comments/comment/{held.pk}/change/"
    assert console in message.body and f'href="{console}"' in html
