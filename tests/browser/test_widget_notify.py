"""The "Notify me of replies by e-mail" box in a real browser, against granian, a real
worker and the Akismet stand-in: what the widget sends and what the server records."""

from __future__ import annotations

import json
import time

from articles.models import Article
from comments.models import Comment, NotificationAddress, ReplySubscription
from tests.browser.test_widget import (
    browser_test,
    expect,
    fill,
    open_article,
    submit,
    unique,
    wait_published,
)
from tests.factories import ArticleFactory

CONFIRMATION_TIMEOUT = 30.0  # s: the worker publishes, then mails the confirmation


def submitting(page, article: Article):
    """Catch the submit request of the widget on `article`."""
    return page.expect_request(
        lambda r: r.method == "POST" and r.url.endswith(f"/articles/{article.slug}/comments/")
    )


def wait_for_confirmation(email: str) -> NotificationAddress:
    deadline = time.monotonic() + CONFIRMATION_TIMEOUT
    while True:
        address = NotificationAddress.objects.get(email=email)
        if address.confirmation_sent_at is not None or time.monotonic() > deadline:
            return address
        time.sleep(0.25)


@browser_test
def test_ticking_the_box_subscribes_and_the_published_comment_sends_a_confirmation(
    server_url, new_reader
):
    article = ArticleFactory()
    reader = new_reader()
    page = open_article(reader, server_url, article.slug)
    box = page.get_by_label("Notify me of replies by e-mail")
    expect(box).to_be_visible()
    expect(box).not_to_be_checked()

    body = unique("Please tell me when someone answers this.")
    fill(page, body=body, email="Notify.Me@example.com")
    box.check()
    with submitting(page, article) as request:
        submit(page)
    sent = json.loads(request.value.post_data)
    assert sent["notify_replies"] is True

    wait_published(page, body)
    comment = Comment.objects.get(article=article)
    subscription = ReplySubscription.objects.select_related("address").get(comment=comment)
    assert subscription.address.email == "notify.me@example.com"
    assert subscription.unsubscribed_at is None
    address = wait_for_confirmation("notify.me@example.com")
    assert address.confirmation_sent_at is not None, "the worker mailed the confirmation"
    assert address.confirmed_at is None, "nothing is confirmed before the owner says so"
    assert reader.errors == []


@browser_test
def test_an_unticked_box_sends_nothing_and_subscribes_no_one(server_url, new_reader):
    article = ArticleFactory()
    page = open_article(new_reader(), server_url, article.slug, "?lang=de")
    box = page.get_by_label("Bei Antworten per E-Mail benachrichtigen")
    expect(box).not_to_be_checked()

    body = unique("Keine Benachrichtigung, bitte.")
    fill(page, body=body, email="quiet@example.com")
    with submitting(page, article) as request:
        submit(page)
    assert "notify_replies" not in json.loads(request.value.post_data)
    expect(page.locator("li.cw-own")).to_be_visible()
    comment = Comment.objects.get(article=article)
    assert not ReplySubscription.objects.filter(comment=comment).exists()
    assert not NotificationAddress.objects.filter(email="quiet@example.com").exists()
