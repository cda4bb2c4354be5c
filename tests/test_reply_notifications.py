"""Reply notifications: double opt-in, a mail per published reply to the parent's
author, one-click unsubscribe; never to an unconfirmed address, never twice."""

from __future__ import annotations

import datetime as dt
import re
import time
from urllib.parse import urlsplit

import pytest
from django.core import mail, signing
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from comments import moderation, reply_notifications, tasks
from comments.models import Comment, NotificationAddress, ReplySubscription, SideEffect
from tests.factories import (
    ArticleFactory,
    confirmed_address,
    moderator_user,
    published_comment,
    submit_comment,
    subscribed_comment,
)

pytestmark = pytest.mark.django_db
SITE = "https://comments.example.com"


@pytest.fixture(autouse=True)
def tasks_run_at_once(settings, monkeypatch):
    """The notification tasks run in-process when enqueued (on commit); the spam check
    is not enqueued at all: the tests publish through the moderation module."""
    settings.COMMENTS_SITE_URL = SITE
    monkeypatch.setattr(moderation, "_send_check", lambda comment_id: None)
    for task in (tasks.notify_reply, tasks.send_notify_confirmation):
        monkeypatch.setattr(task, "delay", lambda *args, task=task: task.apply(args=args))


@pytest.fixture
def committing(django_capture_on_commit_callbacks):
    """Run a block and then what it enqueued on commit, as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def moderator_api() -> APIClient:
    client = APIClient()
    key = Token.objects.create(user=moderator_user()).key
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def links_in(text: str) -> list[str]:
    return re.findall(rf"{re.escape(SITE)}/notifications/[^\s\"<>]+", text)


def path_of(url: str) -> str:
    return urlsplit(url).path


def publish(comment: Comment, committing) -> None:
    with committing():
        moderation.publish(comment, actor=moderation.SPAM_CHECK, reason="akismet_ham")


def reply_to(parent: Comment, committing, **fields: object) -> Comment:
    """A published reply to `parent`, published on a commit that runs its tasks."""
    fields.setdefault("author_name", "Bob")
    fields.setdefault("author_email", "bob@example.com")
    reply = submit_comment(parent.article, parent_id=parent.pk, **fields)
    publish(reply, committing)
    return reply


# --- the whole flow, through HTTP ------------------------------------------------------------


def test_double_opt_in_from_the_form_to_one_click_unsubscribe(api, moderator_api, committing):
    article = ArticleFactory(title="Roaming prices", url="https://news.example.com/roaming/")
    comments_url = f"/api/v1/articles/{article.slug}/comments/"
    with committing():
        response = api.post(
            comments_url,
            {
                "author_name": "Ada",
                "author_email": "Ada@Example.com",
                "body": "Will prices fall?",
                "notify_replies": True,
            },
            format="json",
        )
    assert response.status_code == 202, response.content
    ada_comment = Comment.objects.get(pk=response.json()["id"])
    subscription = ReplySubscription.objects.get(comment=ada_comment)
    assert subscription.address.email == "ada@example.com"
    assert mail.outbox == [], "nothing is mailed before the comment is published"

    with committing():
        approved = moderator_api.post(f"/api/v1/moderation/comments/{ada_comment.pk}/approve/")
    assert approved.status_code == 200, approved.content
    (confirmation,) = mail.outbox
    assert confirmation.to == ["ada@example.com"]
    (confirm_url,) = set(links_in(confirmation.body))
    assert "/notifications/confirm/" in confirm_url

    browser = Client(enforce_csrf_checks=True)
    page = browser.get(path_of(confirm_url))
    assert page.status_code == 200
    assert b'method="post"' in page.content
    address = NotificationAddress.objects.get(email="ada@example.com")
    assert address.confirmed_at is None, "a GET (a mail scanner) confirms nothing"
    csrf = browser.cookies["csrftoken"].value
    confirmed = browser.post(path_of(confirm_url), {"csrfmiddlewaretoken": csrf})
    assert confirmed.status_code == 200
    address.refresh_from_db()
    assert address.confirmed_at is not None

    with committing():
        reply = api.post(
            comments_url,
            {
                "author_name": "Bob",
                "author_email": "bob@example.com",
                "body": "Probably not.",
                "parent": ada_comment.pk,
            },
            format="json",
        )
    reply_id = reply.json()["id"]
    assert len(mail.outbox) == 1, "a pending reply is not mailed"
    with committing():
        moderator_api.post(f"/api/v1/moderation/comments/{reply_id}/approve/")
    assert len(mail.outbox) == 2
    notice = mail.outbox[1]
    assert notice.to == ["ada@example.com"]
    assert "Probably not." in notice.body
    assert "https://news.example.com/roaming/" in notice.body
    links = links_in(notice.body)
    assert any("/notifications/unsubscribe/" in link for link in links)
    assert any("/notifications/unsubscribe-all/" in link for link in links)
    list_unsubscribe = notice.extra_headers["List-Unsubscribe"]
    assert notice.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    one_click_url = list_unsubscribe.strip("<>")
    assert one_click_url in links and "/notifications/unsubscribe/" in one_click_url

    # What a mail provider sends from its servers: no cookie, no CSRF token.
    one_click = Client(enforce_csrf_checks=True).post(
        path_of(one_click_url),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert one_click.status_code == 200
    subscription.refresh_from_db()
    assert subscription.unsubscribed_at is not None

    with committing():
        another = api.post(
            comments_url,
            {
                "author_name": "Cy",
                "author_email": "cy@example.com",
                "body": "Agreed.",
                "parent": ada_comment.pk,
            },
            format="json",
        )
        moderator_api.post(f"/api/v1/moderation/comments/{another.json()['id']}/approve/")
    assert len(mail.outbox) == 2, "nothing after unsubscribing"


# --- the submit field --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["banana", None, [True], {"x": 1}])
def test_a_notify_replies_that_is_not_a_boolean_is_400_naming_it(api, article, value):
    response = api.post(
        f"/api/v1/articles/{article.slug}/comments/",
        {
            "author_name": "Ada",
            "author_email": "ada@example.com",
            "body": "Hi.",
            "notify_replies": value,
        },
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()) == ["notify_replies"]
    assert not Comment.objects.exists()


@pytest.mark.parametrize("fields", [{}, {"notify_replies": False}])
def test_without_the_tick_nothing_is_recorded(api, article, fields):
    response = api.post(
        f"/api/v1/articles/{article.slug}/comments/",
        {"author_name": "Ada", "author_email": "ada@example.com", "body": "Hi.", **fields},
        format="json",
    )
    assert response.status_code == 202
    assert not ReplySubscription.objects.exists()
    assert not NotificationAddress.objects.exists()


def test_a_replayed_submission_adds_no_second_subscription(api, article):
    body = {
        "author_name": "Ada",
        "author_email": "ada@example.com",
        "body": "Hi.",
        "notify_replies": True,
    }
    for _ in range(2):
        response = api.post(
            f"/api/v1/articles/{article.slug}/comments/",
            body,
            format="json",
            HTTP_IDEMPOTENCY_KEY="one-key",
        )
        assert response.status_code == 202
    assert ReplySubscription.objects.count() == 1
    assert NotificationAddress.objects.count() == 1


# --- the confirmation ------------------------------------------------------------------------


def test_no_confirmation_is_sent_for_a_comment_that_is_not_published(committing):
    with committing():
        comment = submit_comment(notify_replies=True)
        moderation.hold(comment, actor=moderation.SYSTEM)
        moderation.mark_spam(comment, actor=moderation.SPAM_CHECK)
    assert mail.outbox == []
    assert tasks.send_notify_confirmation.apply(args=[comment.reply_subscription.pk]).get() == 0


def test_one_confirmation_per_cooldown_whatever_is_ticked(committing, settings):
    settings.COMMENTS_NOTIFY_CONFIRM_COOLDOWN_SECONDS = 3600
    article = ArticleFactory()
    first = submit_comment(article, notify_replies=True, body="One.")
    second = submit_comment(article, notify_replies=True, body="Two.")
    publish(first, committing)
    publish(second, committing)
    assert len(mail.outbox) == 1
    assert tasks.send_notify_confirmation.apply(args=[second.reply_subscription.pk]).get() == 0
    NotificationAddress.objects.update(confirmation_sent_at=timezone.now() - dt.timedelta(hours=2))
    third = submit_comment(article, notify_replies=True, body="Three.")
    publish(third, committing)
    assert len(mail.outbox) == 2


def test_a_confirmed_address_gets_no_confirmation(committing):
    confirmed_address("ada@example.com")
    comment = submit_comment(notify_replies=True)
    publish(comment, committing)
    assert mail.outbox == []


def test_a_failed_confirmation_mail_does_not_start_the_cooldown(committing, monkeypatch):
    comment = submit_comment(notify_replies=True)
    calls = []
    real_send = reply_notifications.EmailMultiAlternatives.send

    def smtp_down_once(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionRefusedError("SMTP server down")
        return real_send(self, *args, **kwargs)

    monkeypatch.setattr(reply_notifications.EmailMultiAlternatives, "send", smtp_down_once)
    publish(comment, committing)  # the task's retry sends it
    assert len(calls) == 2
    assert len(mail.outbox) == 1


# --- who is mailed about a reply -------------------------------------------------------------


def test_an_unconfirmed_address_is_never_mailed_about_replies(committing):
    parent = submit_comment(notify_replies=True)
    publish(parent, committing)
    assert len(mail.outbox) == 1  # the confirmation only
    reply = reply_to(parent, committing)
    assert len(mail.outbox) == 1
    assert tasks.notify_reply.apply(args=[reply.pk]).get() == 0


def test_unpublished_replies_are_never_mailed(committing):
    parent = subscribed_comment()
    with committing():
        held = submit_comment(parent.article, parent_id=parent.pk, author_email="b@example.com")
        moderation.hold(held, actor=moderation.SYSTEM)
        spam = submit_comment(parent.article, parent_id=parent.pk, author_email="c@example.com")
        moderation.mark_spam(spam, actor=moderation.SPAM_CHECK)
    assert mail.outbox == []
    for reply in (held, spam):
        assert tasks.notify_reply.apply(args=[reply.pk]).get() == 0
    assert mail.outbox == []


@pytest.mark.parametrize("action", ["hold", "reject", "remove", "mark_spam"])
def test_no_mail_when_the_parent_is_no_longer_published(committing, action):
    parent = subscribed_comment()
    reply = submit_comment(parent.article, parent_id=parent.pk, author_email="bob@example.com")
    getattr(moderation, action)(parent, actor=moderation.SYSTEM)
    publish(reply, committing)
    assert mail.outbox == []


def test_no_mail_about_a_reply_to_oneself(committing):
    parent = subscribed_comment(author_email="ada@example.com")
    reply_to(parent, committing, author_name="Ada again", author_email="ADA@example.com")
    assert mail.outbox == []


def test_only_the_direct_parent_is_mailed(committing):
    top = subscribed_comment(author_email="ada@example.com")
    middle = reply_to(top, committing, author_email="bob@example.com")
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]
    reply_to(middle, committing, author_email="cy@example.com")
    assert len(mail.outbox) == 1, "Bob did not subscribe, Ada is not the direct parent"


def test_a_reply_is_mailed_once_however_often_it_is_delivered_or_republished(committing):
    parent = subscribed_comment()
    reply = reply_to(parent, committing)
    assert len(mail.outbox) == 1
    assert tasks.notify_reply.apply(args=[reply.pk]).get() == 0
    assert tasks.notify_reply.apply(args=[reply.pk]).get() == 0
    with committing():
        moderation.edit(reply, body="Edited reply.")
    publish(reply, committing)
    assert len(mail.outbox) == 1
    (claim,) = SideEffect.objects.filter(comment=reply, kind=SideEffect.Kind.NOTIFY_REPLY)
    assert claim.done_at is not None


def test_a_failed_reply_mail_releases_its_claim_for_the_retry(committing, monkeypatch):
    parent = subscribed_comment()
    calls = []
    real_send = reply_notifications.EmailMultiAlternatives.send

    def smtp_down_once(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionRefusedError("SMTP server down")
        return real_send(self, *args, **kwargs)

    monkeypatch.setattr(reply_notifications.EmailMultiAlternatives, "send", smtp_down_once)
    reply_to(parent, committing)
    assert len(calls) == 2
    assert len(mail.outbox) == 1


# --- unsubscribing ---------------------------------------------------------------------------


def reply_mail_links(parent: Comment, committing) -> dict[str, str]:
    before = len(mail.outbox)
    reply_to(parent, committing)
    assert len(mail.outbox) == before + 1
    links = links_in(mail.outbox[-1].body)
    return {
        "thread": next(path_of(u) for u in links if "/unsubscribe/" in u),
        "all": next(path_of(u) for u in links if "/unsubscribe-all/" in u),
    }


def test_the_unsubscribe_page_changes_nothing_until_its_button_is_pressed(client, committing):
    parent = subscribed_comment()
    links = reply_mail_links(parent, committing)
    for path in links.values():
        page = client.get(path)
        assert page.status_code == 200
        assert b'name="List-Unsubscribe" value="One-Click"' in page.content
    parent.reply_subscription.refresh_from_db()
    assert parent.reply_subscription.unsubscribed_at is None
    assert NotificationAddress.objects.get().opted_out_at is None


def test_unsubscribing_twice_is_harmless(committing):
    parent = subscribed_comment()
    path = reply_mail_links(parent, committing)["thread"]
    browser = Client(enforce_csrf_checks=True)
    assert browser.post(path).status_code == 200
    parent.reply_subscription.refresh_from_db()
    first = parent.reply_subscription.unsubscribed_at
    assert browser.post(path).status_code == 200
    parent.reply_subscription.refresh_from_db()
    assert parent.reply_subscription.unsubscribed_at == first


def test_unsubscribe_all_stops_every_thread_until_the_box_is_ticked_again(committing):
    article = ArticleFactory()
    first = subscribed_comment(article, body="First.")
    second = subscribed_comment(article, body="Second.")
    path = reply_mail_links(first, committing)["all"]
    response = Client(enforce_csrf_checks=True).post(
        path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    address = NotificationAddress.objects.get(email="ada@example.com")
    assert address.opted_out_at is not None
    assert not ReplySubscription.objects.filter(unsubscribed_at__isnull=True).exists()
    sent = len(mail.outbox)
    reply_to(first, committing, author_email="cy@example.com")
    reply_to(second, committing, author_email="dee@example.com")
    assert len(mail.outbox) == sent

    # Ticking the box again with a new comment: one confirmation, and after it replies.
    third = submit_comment(article, notify_replies=True, body="Third.")
    publish(third, committing)
    assert len(mail.outbox) == sent + 1
    (confirm_url,) = links_in(mail.outbox[-1].body)
    Client().post(path_of(confirm_url))
    address.refresh_from_db()
    assert address.opted_out_at is None and address.confirmed_at is not None
    reply_to(third, committing, author_email="eve@example.com")
    assert len(mail.outbox) == sent + 2
    reply_to(second, committing, author_email="fay@example.com")
    assert len(mail.outbox) == sent + 2, "the old subscriptions stay ended"


# --- bad links -------------------------------------------------------------------------------


def tampered(token: str) -> str:
    return token[:-2] + ("AA" if not token.endswith("AA") else "BB")


def test_tampered_links_answer_a_clear_400_page_and_change_nothing(client, committing):
    parent = subscribed_comment()
    links = reply_mail_links(parent, committing)
    address = NotificationAddress.objects.get()
    confirm_path = "/notifications/confirm/" + reply_notifications.confirm_token(address) + "/"
    for path in (confirm_path, links["thread"], links["all"]):
        prefix, token, _ = path.rsplit("/", 2)
        bad = f"{prefix}/{tampered(token)}/"
        for method in (client.get, client.post):
            response = method(bad)
            assert response.status_code == 400
            assert b"This link is not valid" in response.content
    parent.reply_subscription.refresh_from_db()
    assert parent.reply_subscription.unsubscribed_at is None
    assert NotificationAddress.objects.get().opted_out_at is None


def test_a_token_of_one_kind_is_refused_by_the_others(client):
    address = confirmed_address()
    all_token = reply_notifications.unsubscribe_all_token(address)
    assert client.post(f"/notifications/confirm/{all_token}/").status_code == 400
    assert client.post(f"/notifications/unsubscribe/{all_token}/").status_code == 400
    address.refresh_from_db()
    assert address.opted_out_at is None


def test_a_link_is_bound_to_its_address_and_does_not_reveal_it(client):
    ada = NotificationAddress.objects.create(email="ada@example.com")
    bob = NotificationAddress.objects.create(email="bob@example.com")
    for make in (reply_notifications.confirm_token, reply_notifications.unsubscribe_all_token):
        token = make(ada)
        payload = signing.b64_decode(token.split(":")[0].encode())
        assert b"ada@example.com" not in payload and b"ada" not in payload
    # Ada's digest with Bob's id, correctly signed: refused.
    forged = signing.dumps(
        {"a": bob.pk, "h": reply_notifications._digest("ada@example.com")},
        salt=reply_notifications.UNSUBSCRIBE_ALL_SALT,
    )
    assert client.post(f"/notifications/unsubscribe-all/{forged}/").status_code == 400
    bob.refresh_from_db()
    assert bob.opted_out_at is None


def test_an_expired_confirmation_link_says_so(client, settings, monkeypatch):
    settings.COMMENTS_NOTIFY_CONFIRM_SECONDS = 7 * 86400
    address = NotificationAddress.objects.create(email="ada@example.com")
    eight_days_ago = time.time() - 8 * 86400
    with monkeypatch.context() as patch:
        patch.setattr(signing.time, "time", lambda: eight_days_ago)
        token = reply_notifications.confirm_token(address)
    for method in (client.get, client.post):
        response = method(f"/notifications/confirm/{token}/")
        assert response.status_code == 400
        assert b"This link has expired" in response.content
    address.refresh_from_db()
    assert address.confirmed_at is None


def test_a_confirmation_without_the_csrf_token_is_refused():
    address = NotificationAddress.objects.create(email="ada@example.com")
    token = reply_notifications.confirm_token(address)
    response = Client(enforce_csrf_checks=True).post(f"/notifications/confirm/{token}/")
    assert response.status_code == 403
    address.refresh_from_db()
    assert address.confirmed_at is None


def test_the_pages_carry_the_content_security_policy_and_leak_no_token(client):
    address = NotificationAddress.objects.create(email="ada@example.com")
    response = client.get(f"/notifications/confirm/{reply_notifications.confirm_token(address)}/")
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"]


def test_unsubscribe_links_never_expire(client, committing, settings, monkeypatch):
    parent = subscribed_comment()
    long_ago = time.time() - 3 * 365 * 86400
    with monkeypatch.context() as patch:
        patch.setattr(signing.time, "time", lambda: long_ago)
        token = reply_notifications.unsubscribe_token(parent.reply_subscription)
    assert client.post(f"/notifications/unsubscribe/{token}/").status_code == 200
    parent.reply_subscription.refresh_from_db()
    assert parent.reply_subscription.unsubscribed_at is not None


def test_a_publication_without_subscriptions_costs_one_query_and_enqueues_nothing(
    django_capture_on_commit_callbacks, django_assert_num_queries
):
    parent = published_comment()
    reply = submit_comment(parent.article, parent_id=parent.pk)
    with django_capture_on_commit_callbacks() as callbacks:
        with django_assert_num_queries(1):
            reply_notifications.on_transition(reply, source="pending", target="published")
        with django_assert_num_queries(0):
            reply_notifications.on_transition(reply, source="pending", target="held")
            reply_notifications.on_transition(reply, source="published", target="published")
    assert callbacks == []
