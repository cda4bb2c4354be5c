"""The embeddable widget in a real browser, against granian + a real worker + the stand-in.

Each test is a reader (or several, each with their own browser context and localStorage)
using the widget the way a person would; assertions look at what is on the screen, and at
the database where the outcome matters.
"""

from __future__ import annotations

import gzip
import io
import json
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command

from articles.management.commands.ensure_demo_article import DEMO_SLUG
from articles.models import Article
from comments import moderation
from comments.models import Comment
from tests.browser.conftest import (
    ARTIFACTS,
    AXE_JS,
    ROOT,
    artifact,
    http_get,
    skip_or_fail,
)
from tests.factories import ArticleFactory, UserFactory, published_comment

STATIC = ROOT / "comments" / "static" / "comments"
SIZE_BUDGET = 15 * 1024
PUBLISH_TIMEOUT = 30_000  # ms: the worker checks with the stand-in, the widget polls
browser_test = pytest.mark.django_db(transaction=True)

ACTIVE = """() => {
  const host = document.querySelector('[data-comments-article]');
  const el = document.activeElement === host ? host.shadowRoot.activeElement : null;
  if (!el) return null;
  const li = el.closest('li');
  return {id: el.id, tag: el.tagName.toLowerCase(), text: el.textContent.trim().slice(0, 40),
          li: li ? li.id : null};
}"""


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def unique(text: str) -> str:
    return f"{text} [{uuid.uuid4().hex[:8]}]"


def open_article(reader, server_url: str, slug: str, query: str = ""):
    page = reader.page
    page.goto(f"{server_url}/demo/{slug}/{query}")
    expect(page.locator("section.cw")).to_be_visible()
    expect(page.locator("section.cw .cw-state")).to_be_hidden()  # the list has loaded
    return page


def heading(page):
    return page.locator("section.cw h2")


def fill(page, *, body: str, name="Ada Reader", email="ada@example.com", url="") -> None:
    page.locator("#cw-author_name").fill(name)
    page.locator("#cw-author_email").fill(email)
    page.locator("#cw-author_url").fill(url)
    page.locator("#cw-body").fill(body)


def submit(page) -> None:
    page.locator("section.cw button[type=submit]").click()


def own_comment(page):
    return page.locator("li.cw-own").first


def wait_published(page, body_text: str):
    """The own comment carrying body_text, once the check has published it."""
    item = page.locator("li.cw-c", has_text=body_text).first
    expect(item).to_be_visible()
    expect(item.locator(".cw-badge")).to_have_count(0, timeout=PUBLISH_TIMEOUT)
    expect(item.locator(".cw-reply").first).to_be_visible()
    return item


def widget_html_count(page, selector: str) -> int:
    return page.evaluate(
        """(sel) => document.querySelector('[data-comments-article]')
             .shadowRoot.querySelectorAll(sel).length""",
        selector,
    )


# --- reading and posting ---------------------------------------------------------------


@browser_test
def test_empty_article_invites_the_first_comment(server_url, new_reader):
    article = ArticleFactory()
    page = open_article(new_reader(), server_url, article.slug)

    expect(heading(page)).to_have_text("Be the first to comment")
    expect(page.locator("section.cw h3")).to_have_text("What do you think?")
    expect(page.get_by_label("Name", exact=True)).to_be_visible()
    expect(page.get_by_label("Email", exact=True)).to_be_visible()
    expect(page.get_by_label("Website (optional)")).to_be_visible()
    expect(page.get_by_label("Comment", exact=True)).to_be_visible()
    expect(page.locator("#cw-author_email-hint")).to_have_text("Not published")
    notice = page.locator("section.cw .cw-notice")
    expect(notice).to_have_text(
        "This site uses Akismet to reduce spam. Learn how your comment data is processed."
    )
    expect(notice.locator("a")).to_have_attribute("href", f"{server_url}/privacy/")
    expect(page.locator("section.cw li.cw-c")).to_have_count(0)


@browser_test
def test_reader_sees_awaiting_moderation_then_published_without_reload(server_url, new_reader):
    article = ArticleFactory()
    reader = new_reader()
    page = open_article(reader, server_url, article.slug)
    page.evaluate("window.sameDocument = true")
    body = unique("Energy-efficient radio sites matter more than headline speeds.")

    fill(page, body=body, name="Mei Chen", email="mei@example.com", url="https://mei.example/")
    submit(page)

    mine = own_comment(page)
    expect(mine.get_by_text("Awaiting moderation", exact=True)).to_be_visible()
    expect(mine).to_contain_text(body)
    assert page.evaluate(ACTIVE)["li"] == mine.get_attribute("id"), "focus moves to it"
    expect(page.locator("#cw-body")).to_have_value("")  # ready for another comment
    expect(page.locator("#cw-author_name")).to_have_value("Mei Chen")

    item = wait_published(page, body)
    expect(heading(page)).to_have_text("1 comment")
    expect(item.locator("a.cw-author")).to_have_attribute("rel", "nofollow ugc noopener noreferrer")
    expect(item).to_contain_text("Your comment")
    assert page.evaluate("window.sameDocument") is True, "published without a reload"
    comment = Comment.objects.get(article=article)
    assert comment.status == Comment.Status.PUBLISHED

    other = open_article(new_reader(), server_url, article.slug)
    expect(heading(other)).to_have_text("1 comment")
    theirs = other.locator("li.cw-c", has_text=body)
    expect(theirs).to_be_visible()
    expect(theirs).not_to_contain_text("Your comment")
    time_el = theirs.locator("time")
    assert time_el.get_attribute("datetime").startswith(str(comment.created_at.year))
    assert time_el.get_attribute("title")  # the exact time, on hover
    assert reader.dialogs == [] and reader.errors == []


@browser_test
def test_held_comment_is_kept_across_reloads_and_hidden_from_others(server_url, new_reader):
    article = ArticleFactory()
    reader = new_reader()
    page = open_article(reader, server_url, article.slug)
    body = unique("Sources: https://one.example.com/a and https://two.example.com/b")

    fill(page, body=body)
    submit(page)
    mine = own_comment(page)
    expect(mine.get_by_text("Held for review", exact=True)).to_be_visible(timeout=PUBLISH_TIMEOUT)
    expect(mine).to_contain_text("It contains several links, so a moderator will review it.")

    page.reload()
    mine = own_comment(page)
    expect(mine.get_by_text("Held for review", exact=True)).to_be_visible()
    expect(mine).to_contain_text(body.split(" https")[0])
    assert "comments:" in page.evaluate("Object.keys(localStorage).join(' ')")

    other = open_article(new_reader(), server_url, article.slug)
    expect(heading(other)).to_have_text("Be the first to comment")
    expect(other.locator("section.cw")).not_to_contain_text("one.example.com")

    comment = Comment.objects.get(article=article)
    assert comment.status == Comment.Status.HELD
    moderation.publish(comment, actor=moderation.Actor.for_user(UserFactory(is_staff=True)))
    page.reload()
    expect(heading(page)).to_have_text("1 comment")
    expect(own_comment(page).locator(".cw-badge")).to_have_count(0)


@browser_test
def test_reply_nests_under_its_parent(server_url, new_reader):
    article = ArticleFactory()
    parent = published_comment(article, author_name="Grace Park", body="Parent remark.")
    page = open_article(new_reader(), server_url, article.slug)

    page.get_by_role("button", name="Reply to Grace Park").click()
    expect(page.locator("section.cw h3")).to_have_text("Replying to Grace Park")
    assert page.evaluate(ACTIVE)["id"] == "cw-body", "focus goes to the comment field"
    body = unique("A reply to the parent.")
    fill(page, body=body, name="Tom Reply", email="tom@example.com")
    submit(page)

    nested = page.locator(f"li#c{parent.pk} > ol.cw-replies > li", has_text=body)
    expect(nested).to_be_visible()
    expect(nested.get_by_text("Awaiting moderation", exact=True)).to_be_visible()
    expect(page.locator("section.cw h3")).to_have_text("What do you think?")  # form back on top
    wait_published(page, body)

    reply = Comment.objects.get(article=article, parent__isnull=False)
    assert reply.parent_id == parent.pk
    other = open_article(new_reader(), server_url, article.slug)
    expect(heading(other)).to_have_text("2 comments")
    expect(other.locator(f"li#c{parent.pk} > ol.cw-replies > li#c{reply.pk}")).to_contain_text(body)


@browser_test
def test_spam_is_never_shown_to_another_reader(server_url, new_reader):
    article = ArticleFactory()
    page = open_article(new_reader(), server_url, article.slug)
    body = unique("Cheap watches, best prices, click now")

    fill(page, body=body, name="akismet-guaranteed-spam", email="spam@example.com")
    submit(page)
    mine = own_comment(page)
    expect(mine.get_by_text("Not published", exact=True)).to_be_visible(timeout=PUBLISH_TIMEOUT)
    expect(mine).to_contain_text("Your comment was not published")
    expect(heading(page)).to_have_text("Be the first to comment")
    assert Comment.objects.get(article=article).status == Comment.Status.SPAM

    other = open_article(new_reader(), server_url, article.slug)
    expect(heading(other)).to_have_text("Be the first to comment")
    expect(other.locator("section.cw")).not_to_contain_text("Cheap watches")
    expect(other.locator("li.cw-c")).to_have_count(0)


@browser_test
def test_server_field_error_shows_next_to_the_field(server_url, new_reader):
    """The client accepts any well-formed http(s) URL; the server's validator also refuses
    a host name with an underscore. Its message appears under the website field."""
    article = ArticleFactory()
    page = open_article(new_reader(), server_url, article.slug)
    body = unique("My site has an unusual host name.")
    fill(page, body=body, url="http://my_site.example.com/")

    with page.expect_response(lambda r: r.request.method == "POST") as response:
        submit(page)
    assert response.value.status == 400

    error = page.locator("#cw-author_url-err")
    expect(error).to_have_text("Enter a valid http:// or https:// address.")
    expect(page.locator("#cw-author_url")).to_have_attribute("aria-invalid", "true")
    assert page.evaluate(ACTIVE)["id"] == "cw-author_url"
    expect(page.locator("#cw-body")).to_have_value(body)  # nothing typed is lost
    assert not Comment.objects.filter(article=article).exists()

    page.locator("#cw-author_url").fill("https://my-site.example.com/")
    expect(error).to_be_hidden()
    submit(page)
    expect(own_comment(page)).to_contain_text(body)
    wait_published(page, body)  # no check left running for the next test


@browser_test
def test_reply_to_a_comment_removed_meanwhile_says_so(server_url, new_reader):
    article = ArticleFactory()
    parent = published_comment(article, author_name="Lin", body="Soon to be removed.")
    page = open_article(new_reader(), server_url, article.slug)
    page.get_by_role("button", name="Reply to Lin").click()
    moderation.remove(parent, actor=moderation.SYSTEM, reason="removed in a test")
    body = unique("Replying too late.")
    fill(page, body=body)
    submit(page)

    expect(page.locator("section.cw .cw-msg")).to_have_text(
        "The comment you are replying to is no longer available."
    )
    expect(page.locator("#cw-body")).to_have_value(body)
    assert Comment.objects.filter(article=article).count() == 1


@browser_test
def test_client_checks_mirror_the_server(server_url, new_reader):
    article = ArticleFactory()
    reader = new_reader()
    page = open_article(reader, server_url, article.slug)
    posts_before = sum(1 for r in reader.requests if r.startswith("POST"))
    page.locator("#cw-author_name").fill("   ")
    page.locator("#cw-author_email").fill("not-an-email")
    page.locator("#cw-author_url").fill("ftp://example.com/")
    page.locator("#cw-body").fill("x" * 10_001)
    submit(page)

    expect(page.locator("#cw-author_name-err")).to_have_text("Please enter your name.")
    expect(page.locator("#cw-author_email-err")).to_contain_text("valid email address")
    expect(page.locator("#cw-author_url-err")).to_contain_text("http:// or https://")
    expect(page.locator("#cw-body-err")).to_have_text("Use at most 10,000 characters (now 10,001).")
    assert page.evaluate(ACTIVE)["id"] == "cw-author_name"
    expect(page.locator("section.cw [role=status]")).to_have_text(
        "Please correct the marked fields."
    )
    assert sum(1 for r in reader.requests if r.startswith("POST")) == posts_before


@browser_test
def test_xss_payloads_in_every_field_render_as_text(server_url, new_reader):
    article = ArticleFactory()
    name = "<img src=x onerror=alert('name')>\"'><svg onload=alert(1)>"
    url = "https://example.com/?q=\"><svg/onload=alert('url')>"
    body = unique(
        "<script>alert('body')</script>\n\n<img src=x onerror=alert('img')> "
        "[click](javascript:alert('md')) <a href=\"javascript:alert('a')\">a</a> "
        "<iframe src=\"javascript:alert('f')\"></iframe> `<b>code</b>`"
    )
    author = new_reader()
    page = open_article(author, server_url, article.slug)
    fill(page, body=body, name=name, url=url, email="xss.tester@example.com")
    with page.expect_response(lambda r: r.request.method == "POST") as response:
        submit(page)
    if response.value.status == 400:
        # A server that refuses quotes in an author URL: its message is shown as text,
        # next to the field; the same payload percent-encoded is then accepted.
        expect(page.locator("#cw-author_url-err")).to_be_visible()
        assert widget_html_count(page, "form svg, form img") == 0
        page.locator("#cw-author_url").fill(
            "https://example.com/?q=%22%3E%3Csvg/onload=alert(1)%3E"
        )
        submit(page)
    wait_published(page, "<script>alert('body')</script>")

    reader = new_reader()
    other = open_article(reader, server_url, article.slug)
    item = other.locator("li.cw-c").first
    expect(item.locator(".cw-author")).to_have_text(name)
    href = item.locator("a.cw-author").get_attribute("href")
    assert href.startswith("https://example.com/?q=") and "<" not in href
    expect(item.locator(".cw-body")).to_contain_text("<script>alert('body')</script>")
    expect(item.locator(".cw-body")).to_contain_text("<img src=x onerror=alert('img')>")
    for p in (page, other):
        assert widget_html_count(p, "li img, li svg, li script, li iframe, li b") == 0
        assert widget_html_count(p, "li [onerror], li [onload], li [href^='javascript']") == 0
        assert widget_html_count(p, "li [src]") == 0
        p.wait_for_timeout(300)
    expect(other.locator("section.cw")).not_to_contain_text("xss.tester@example.com")
    assert author.dialogs == [] and reader.dialogs == []
    assert author.errors == [] and reader.errors == []


@browser_test
def test_keyboard_only_submission(server_url, new_reader):
    article = ArticleFactory()
    page = open_article(new_reader(), server_url, article.slug)
    page.locator("body").focus()
    for _ in range(60):
        page.keyboard.press("Tab")
        if (page.evaluate(ACTIVE) or {}).get("id") == "cw-author_name":
            break
    else:
        pytest.fail("Tab never reached the name field")
    body = unique("Typed with the keyboard only")
    page.keyboard.type("Kim Keys")
    page.keyboard.press("Tab")
    page.keyboard.type("kim@example.com")
    page.keyboard.press("Tab")
    assert page.evaluate(ACTIVE)["id"] == "cw-author_url"
    page.keyboard.press("Tab")
    assert page.evaluate(ACTIVE)["id"] == "cw-body"
    page.keyboard.type(body)
    page.keyboard.press("Tab")  # the honeypot is skipped: straight to the button
    assert page.evaluate(ACTIVE)["text"] == "Post comment"
    page.keyboard.press("Enter")

    mine = own_comment(page)
    expect(mine).to_contain_text(body)
    assert page.evaluate(ACTIVE)["li"] == mine.get_attribute("id")
    wait_published(page, body)
    comment = Comment.objects.get(article=article)
    assert (comment.author_name, comment.author_email) == ("Kim Keys", "kim@example.com")
    assert not comment.honeypot_tripped


@browser_test
def test_edit_and_delete_inside_the_window(server_url, new_reader):
    article = ArticleFactory()
    page = open_article(new_reader(), server_url, article.slug)
    body = unique("First version of my remark.")
    fill(page, body=body)
    submit(page)
    # The item is re-rendered as it changes: find it by its id from now on.
    item = page.locator("li#" + wait_published(page, body).get_attribute("id"))

    item.get_by_role("button", name="Edit").click()
    editor = item.locator("textarea")
    expect(editor).to_have_value(body)
    assert page.evaluate(ACTIVE)["tag"] == "textarea"
    edited = unique("Second version, with a correction.")
    editor.fill(edited)
    item.get_by_role("button", name="Save").click()
    expect(item).to_contain_text(edited)
    wait_published(page, edited)
    expect(item.locator(".cw-edited")).to_have_text("(edited)")

    other = open_article(new_reader(), server_url, article.slug)
    expect(other.locator("li.cw-c")).to_contain_text(edited)

    item.get_by_role("button", name="Delete").click()
    expect(item).to_contain_text("Delete this comment?")
    item.get_by_role("button", name="Yes, delete").click()
    expect(page.locator("li.cw-c")).to_have_count(0)
    expect(heading(page)).to_have_text("Be the first to comment")
    expect(page.locator("section.cw [role=status]")).to_have_text("Your comment was deleted.")
    assert Comment.objects.get(article=article).status == Comment.Status.REMOVED
    other.reload()
    expect(other.locator("section.cw .cw-state")).to_be_hidden()
    expect(other.locator("li.cw-c")).to_have_count(0)


@browser_test
def test_network_failure_and_429_keep_the_text_and_never_send_twice(server_url, new_reader):
    article = ArticleFactory()
    reader = new_reader()
    page = open_article(reader, server_url, article.slug)
    posts: list[str] = []

    def flaky(route):
        if route.request.method != "POST":
            return route.fallback()
        posts.append(route.request.url)
        if len(posts) == 1:
            return route.abort("internetdisconnected")
        return route.fulfill(
            status=429,
            headers={"Retry-After": "2", "Content-Type": "application/json"},
            body=json.dumps({"detail": "Request was throttled."}),
        )

    page.route("**/api/v1/articles/*/comments/", flaky)
    body = unique("Worth saying even on a bad connection.")
    fill(page, body=body)
    button = page.locator("section.cw button[type=submit]")
    button.click()
    message = page.locator("section.cw .cw-msg")
    expect(message).to_contain_text("Could not reach the comment server.")
    expect(page.locator("#cw-body")).to_have_value(body)
    expect(button).to_have_attribute("aria-disabled", "false")

    button.click()
    expect(message).to_contain_text("Please wait 2 seconds")
    expect(button).to_have_attribute("aria-disabled", "true")
    for _ in range(3):
        button.click(force=True)
    assert len(posts) == 2, "a locked button sends nothing"
    expect(button).to_have_attribute("aria-disabled", "false", timeout=5000)
    expect(page.locator("#cw-body")).to_have_value(body)

    page.unroute("**/api/v1/articles/*/comments/")
    before = sum(1 for r in reader.requests if r.startswith("POST"))
    button.click()
    for _ in range(2):  # more clicks while the first is on its way
        button.click(force=True)
    expect(own_comment(page)).to_contain_text(body)
    page.wait_for_timeout(500)
    assert sum(1 for r in reader.requests if r.startswith("POST")) == before + 1
    assert Comment.objects.filter(article=article).count() == 1
    wait_published(page, body)  # no check left running for the next test


# --- listing --------------------------------------------------------------------------------


def write_embed_page(
    root: Path, server_url: str, slug: str, attrs: str = "", *, lang="en", head=""
) -> str:
    """A page of another site that embeds the widget with the two documented lines."""
    name = f"news-{uuid.uuid4().hex[:8]}.html"
    (root / name).write_text(
        f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>Another site</title>
<link rel="icon" href="data:,">{head}</head>
<body><main><h1>Another site's story</h1><p>Story text.</p>
<button class="cw-btn" id="host-button">Host button</button>
<div data-comments-article="{slug}"{attrs}></div>
<script async src="{server_url}/static/comments/widget.js"></script>
</main></body></html>
""",
        encoding="utf-8",
    )
    return name


@browser_test
def test_load_more_sort_and_text_options(server_url, new_reader, embed_origins):
    article = ArticleFactory()
    made = [
        published_comment(article, author_name=f"Reader {n}", body=f"Comment number {n}.")
        for n in range(1, 6)
    ]
    texts = json.dumps({"heading": "Your view?", "noticeLink": "How we use your data"})
    name = write_embed_page(
        embed_origins.root,
        server_url,
        article.slug,
        f' data-page-size="2" data-order="oldest" data-theme="dark" data-texts=\'{texts}\''
        ' data-text-submit="Send it" data-privacy-url="/our-privacy.html"',
    )
    page = new_reader().page
    page.goto(f"{embed_origins.allowed}/{name}")
    items = page.locator("section.cw ol.cw-list > li")
    expect(items).to_have_count(2)
    expect(heading(page)).to_have_text("5 comments")
    expect(page.locator("section.cw h3")).to_have_text("Your view?")
    expect(page.locator("section.cw button[type=submit]")).to_have_text("Send it")
    link = page.locator("section.cw .cw-notice a")
    expect(link).to_have_text("How we use your data")
    expect(link).to_have_attribute("href", f"{embed_origins.allowed}/our-privacy.html")
    expect(page.locator("section.cw")).to_have_class("cw cw--dark")
    expect(items.first).to_contain_text("Comment number 1.")
    expect(page.get_by_role("button", name="Oldest first")).to_have_attribute(
        "aria-pressed", "true"
    )

    more = page.get_by_role("button", name="Load more comments")
    more.click()
    expect(items).to_have_count(4)
    assert page.evaluate(ACTIVE)["li"] == f"c{made[2].pk}", "focus on the first new one"
    more.click()
    expect(items).to_have_count(5)
    expect(more).to_be_hidden()

    page.get_by_role("button", name="Newest first").click()
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("Comment number 5.")


@browser_test
def test_german_and_chinese(server_url, new_reader, embed_origins):
    article = ArticleFactory()
    published_comment(article, author_name="Wang", body="Eine Meinung.")
    de = open_article(new_reader(), server_url, article.slug, "?lang=de")
    expect(heading(de)).to_have_text("1 Kommentar")
    expect(de.locator("section.cw h3")).to_have_text("Was meinen Sie?")
    expect(de.get_by_label("E-Mail", exact=True)).to_be_visible()
    expect(de.locator("section.cw .cw-notice")).to_have_text(
        "Diese Website verwendet Akismet, um Spam zu reduzieren. "
        "Erfahren Sie, wie Ihre Kommentardaten verarbeitet werden."
    )
    expect(de.get_by_role("button", name="Wang antworten")).to_be_visible()
    expect(de.locator("section.cw")).to_have_attribute("lang", "de")

    empty = ArticleFactory()
    zh = open_article(new_reader(), server_url, empty.slug, "?lang=zh")
    expect(heading(zh)).to_have_text("快来发表第一条评论")
    expect(zh.locator("section.cw h3")).to_have_text("你怎么看？")
    expect(zh.locator("section.cw button[type=submit]")).to_have_text("发表评论")
    expect(zh.locator("section.cw .cw-notice")).to_contain_text("本站使用 Akismet 减少垃圾评论。")
    zh.locator("section.cw button[type=submit]").click()
    expect(zh.locator("#cw-author_name-err")).to_have_text("请输入您的昵称。")

    # Without data-lang the page's <html lang> decides.
    name = write_embed_page(embed_origins.root, server_url, empty.slug, lang="de-DE")
    page = new_reader().page
    page.goto(f"{embed_origins.allowed}/{name}")
    expect(heading(page)).to_have_text("Schreiben Sie den ersten Kommentar")


@browser_test
def test_count_script_fills_every_count_with_one_request(server_url, new_reader):
    none, one, three = ArticleFactory(), ArticleFactory(), ArticleFactory()
    published_comment(one)
    for _ in range(3):
        published_comment(three)
    reader = new_reader()
    page = reader.page
    page.goto(f"{server_url}/demo/")
    expect(page.locator(f'[data-comments-count="{three.slug}"]')).to_have_text("3 comments")
    expect(page.locator(f'[data-comments-count="{one.slug}"]')).to_have_text("1 comment")
    expect(page.locator(f'[data-comments-count="{none.slug}"]')).to_have_text(
        "Be the first to comment"
    )
    calls = [r for r in reader.requests if "/api/v1/articles/counts/" in r]
    assert len(calls) == 1, calls
    slugs = parse_qs(urlsplit(calls[0].split(" ", 1)[1]).query)["slug"]
    assert sorted(slugs) == sorted([none.slug, one.slug, three.slug])


@browser_test
def test_another_origin_embeds_it_and_cors_refuses_others(server_url, new_reader, embed_origins):
    article = ArticleFactory()
    hostile_css = (
        "<style>* { color: #f0f !important; font-size: 9px !important; }"
        " button { display: none !important; } .cw, .cw-btn { border: 9px solid lime; }</style>"
    )
    name = write_embed_page(embed_origins.root, server_url, article.slug, head=hostile_css)

    reader = new_reader()
    page = reader.page
    page.goto(f"{embed_origins.allowed}/{name}")
    expect(heading(page)).to_have_text("Be the first to comment")
    button = page.locator("section.cw button[type=submit]")
    expect(button).to_be_visible()  # the host page's CSS does not reach inside
    style = button.evaluate("b => [getComputedStyle(b).fontSize, getComputedStyle(b).color]")
    assert style[0] != "9px" and style[1] == "rgb(255, 255, 255)"
    host_button = page.locator("#host-button")  # and the widget's CSS does not leak out
    assert host_button.evaluate("b => getComputedStyle(b).borderTopWidth") == "9px"

    body = unique("Posted from another site.")
    fill(page, body=body)
    submit(page)
    expect(own_comment(page).get_by_text("Awaiting moderation", exact=True)).to_be_visible()
    wait_published(page, body)
    assert reader.errors == []

    refused = new_reader().page
    refused.goto(f"{embed_origins.refused}/{name}")
    expect(refused.locator("section.cw .cw-state")).to_contain_text("Comments could not be loaded.")
    expect(refused.locator("li.cw-c")).to_have_count(0)

    api = f"{server_url}/api/v1/articles/{article.slug}/comments/"
    status, headers, _ = http_get(api, {"Origin": embed_origins.allowed})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == embed_origins.allowed
    status, headers, _ = http_get(api, {"Origin": embed_origins.refused})
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    preflight = {
        "Origin": embed_origins.refused,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    _, headers, _ = http_get(api, preflight, method="OPTIONS")
    assert "Access-Control-Allow-Origin" not in headers
    preflight["Origin"] = embed_origins.allowed
    _, headers, _ = http_get(api, preflight, method="OPTIONS")
    assert headers["Access-Control-Allow-Origin"] == embed_origins.allowed


# --- accessibility and the look -----------------------------------------------------------


def run_axe(page) -> list[dict]:
    if not AXE_JS.exists():
        skip_or_fail("axe-core is not installed in tests/browser/node_modules")
    page.add_script_tag(path=str(AXE_JS))
    return page.evaluate(
        """async () => {
          const r = await axe.run(document, {resultTypes: ['violations']});
          return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                          nodes: v.nodes.map(n => n.target)}));
        }"""
    )


@browser_test
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_axe_finds_no_serious_violations(server_url, new_reader, theme):
    article = ArticleFactory()
    parent = published_comment(
        article, author_name="Ines", author_url="https://ines.example/", body="A first view."
    )
    published_comment(article, author_name="Omar", body="A reply.", parent_id=parent.pk)
    # The page's Content-Security-Policy would refuse the injected axe script (the
    # other tests show that the widget itself works under it).
    reader = new_reader(bypass_csp=True)
    page = open_article(reader, server_url, article.slug, f"?theme={theme}")
    fill(page, body=unique("See https://a.example.com/x and https://b.example.com/y"))
    submit(page)
    expect(own_comment(page).get_by_text("Held for review")).to_be_visible(timeout=PUBLISH_TIMEOUT)
    submit(page)  # an empty comment: the field error is shown too
    expect(page.locator("#cw-body-err")).to_be_visible()

    violations = run_axe(page)
    page.screenshot(path=str(artifact(f"widget-axe-{theme}.png")), full_page=True)
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, indent=2)


@browser_test
def test_demo_pages_and_screenshots(server_url, new_reader):
    call_command("ensure_demo_article", stdout=io.StringIO())
    demo = Article.objects.get(slug=DEMO_SLUG)
    slug = demo.slug
    first = published_comment(
        demo,
        author_name="Zhang Wei",
        author_url="https://zhang.example/",
        body="Good to see cooperation on energy-efficient networks.\n\n"
        "Will the joint teams also cover data centres in Europe?",
    )
    published_comment(
        demo,
        author_name="Anna Berg",
        body="Good question, the text does not say.",
        parent_id=first.pk,
    )
    published_comment(demo, author_name="Sam Okafor", body="Framework agreements are common.")

    page = new_reader().page
    page.goto(f"{server_url}/demo/")
    link = page.locator(f'[data-comments-count="{slug}"]')
    expect(link).to_have_text("3 comments")
    page.screenshot(path=str(artifact("demo-list.png")), full_page=True)
    page.get_by_role("link", name=demo.title).click()
    expect(page.locator("h1")).to_have_text(demo.title)
    expect(heading(page)).to_have_text("3 comments")
    _, _, html = http_get(page.url)  # as served: exactly the two documented lines
    embed = (
        f'<div data-comments-article="{slug}"></div>\n'
        f'<script async src="{server_url}/static/comments/widget.js"></script>'
    )
    assert embed in html
    page.screenshot(path=str(artifact("demo-article-light.png")), full_page=True)

    for query, name, expected in [
        ("?theme=dark", "demo-article-dark.png", "3 comments"),
        ("?lang=de", "demo-article-de.png", "3 Kommentare"),
        ("?lang=zh&theme=dark", "demo-article-zh-dark.png", "3 条评论"),
    ]:
        page.goto(f"{server_url}/demo/{slug}/{query}")
        expect(heading(page)).to_have_text(expected)
        page.screenshot(path=str(artifact(name)), full_page=True)

    page.goto(f"{server_url}/privacy/")
    expect(page.locator("h1")).to_have_text("How your comment data is processed")
    page.screenshot(path=str(artifact("privacy.png")), full_page=True)
    for name in ("demo-list.png", "demo-article-light.png", "demo-article-dark.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000


# --- without a browser ------------------------------------------------------------------------


def gzipped(name: str) -> int:
    return len(gzip.compress((STATIC / name).read_bytes(), compresslevel=9))


def test_widget_stays_within_its_size_budget():
    sizes = {name: gzipped(name) for name in ("widget.js", "widget.css", "count.js")}
    print("gzipped bytes:", sizes, "total:", sum(sizes.values()))
    assert sum(sizes.values()) <= SIZE_BUDGET, sizes


@pytest.mark.django_db
def test_privacy_page_explains_the_processing(client, settings):
    settings.COMMENTS_DISCARD_RETENTION_DAYS = 15
    page = client.get("/privacy/").content.decode()
    for needle in (
        "Akismet",
        "Automattic",
        "IP address",
        "user agent",
        "referring page",
        "never published",
        "localStorage",
        "15 days",
        "erasure",
    ):
        assert needle in page, needle


@pytest.mark.django_db
def test_demo_pages_answer(client):
    article = ArticleFactory(title="A <b>bold</b> title")
    assert client.get("/demo/").status_code == 200
    response = client.get(f"/demo/{article.slug}/?theme=<x>&lang=<y>")
    html = response.content.decode()
    assert response.status_code == 200
    assert "A &lt;b&gt;bold&lt;/b&gt; title" in html
    assert "data-theme" not in html and "data-lang" not in html  # unknown values dropped
    assert client.get("/demo/no-such-article/").status_code == 404
