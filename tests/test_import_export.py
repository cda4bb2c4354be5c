"""Importing whole sites (WordPress WXR, Disqus) and our own lossless JSON export."""

from __future__ import annotations

import datetime as dt
import io
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from articles.canonical_urls import canonicalize
from articles.models import Article, ArticleAlias
from comments import moderation, tasks
from comments.models import Comment, CommentEvent
from comments.portability import json_format
from tests.factories import (
    ArticleFactory,
    held_comment,
    moderator_user,
    published_comment,
    submit_comment,
)

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data"
WXR = DATA / "wordpress.wxr.xml"
DISQUS = DATA / "disqus.xml"
SITE = "https://gazette.example.org"
S = Comment.Status


def run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, "--no-progress", stdout=out)
    return out.getvalue()


def wp(comment_id: int) -> Comment:
    return Comment.objects.get(import_source="wxr", import_id=f"{SITE}#{comment_id}")


def dsq(post_id: int) -> Comment:
    return Comment.objects.get(import_source="disqus", import_id=str(post_id))


def snapshot() -> tuple:
    return (
        Article.objects.count(),
        list(Comment.objects.order_by("pk").values_list("pk", "status", "parent_id", "depth")),
        CommentEvent.objects.count(),
    )


@pytest.fixture
def checks_enqueued(monkeypatch) -> list[int]:
    """Check tasks handed to the broker, recorded instead of sent."""
    sent: list[int] = []
    monkeypatch.setattr(tasks.check_comment, "delay", sent.append)
    monkeypatch.setattr(tasks.check_comments, "delay", sent.extend)
    return sent


# --- WordPress ---------------------------------------------------------------------------


def test_wxr_import_creates_articles_from_items_with_comments():
    run("import_wxr", str(WXR))

    ferry = Article.objects.get(slug="ferry-timetable")
    cafe = Article.objects.get(slug="cafe-pier")
    assert ferry.url == canonicalize(f"{SITE}/2024/05/ferry-timetable/")
    assert ferry.title == "Ferry timetable changes & what they mean"
    assert ferry.comments_open is True
    assert ferry.published_at == dt.datetime(2024, 5, 14, 8, 0, tzinfo=dt.UTC)
    # The tracking parameter is gone from the canonical URL; comments were closed there.
    assert cafe.url == canonicalize(f"{SITE}/2024/06/cafe-pier/")
    assert cafe.comments_open is False
    # The page without comments is not an article here.
    assert not Article.objects.filter(slug="about").exists()


def test_wxr_import_keeps_threads_and_the_sources_decisions():
    run("import_wxr", str(WXR))

    top, reply, reply_to_reply = wp(101), wp(102), wp(103)
    assert (top.parent_id, top.thread_id, top.depth) == (None, None, 0)
    assert (reply.parent_id, reply.thread_id, reply.depth) == (top.pk, top.pk, 1)
    assert (reply_to_reply.parent_id, reply_to_reply.thread_id, reply_to_reply.depth) == (
        reply.pk,
        top.pk,
        2,
    )
    assert [wp(n).status for n in (101, 102, 103, 104, 106, 201, 202, 203, 204)] == [
        S.PUBLISHED, S.PUBLISHED, S.PUBLISHED, S.SPAM, S.HELD,
        S.PUBLISHED, S.REMOVED, S.PUBLISHED, S.PUBLISHED,
    ]  # fmt: skip
    assert wp(106).held_reason == "moderator"
    # 203 answers 204, which comes later in the file.
    assert wp(203).parent_id == wp(204).pk
    assert wp(203).thread_id == wp(201).pk
    # The pingback is skipped by default.
    assert not Comment.objects.filter(import_id=f"{SITE}#105").exists()
    assert top.created_at == dt.datetime(2024, 5, 14, 9, 5, tzinfo=dt.UTC)
    assert top.published_at == top.created_at
    assert top.author_name == "Zoë Müller"
    assert str(top.ip_address) == "203.0.113.10"
    assert reply_to_reply.author_name == "李小龍"
    assert str(reply_to_reply.ip_address) == "2001:db8::7"
    # Imported decisions stand without a local check or approval.
    assert top.checked_at is None and top.approved_by_id is None
    assert wp(106).author_email == ""  # "pat at example dot com" is no address


def test_wxr_html_is_sanitised_like_our_renderer_and_kept_faithful():
    run("import_wxr", str(WXR))

    top = wp(101)
    assert top.body_html == (
        "<p>Finally a <strong>later</strong> last boat &amp; an earlier first one.</p>"
        '<p>Will the <a href="https://gazette.example.org/fares/" '
        'rel="nofollow ugc noopener noreferrer">fares</a> change too?</p>'
    )
    assert top.body == (
        "Finally a later last boat & an earlier first one.\n\n"
        "Will the [fares](https://gazette.example.org/fares/) change too?"
    )
    hostile = wp(103)
    assert "<script" not in hostile.body_html
    assert "onerror" not in hostile.body_html and "<img" not in hostile.body_html
    assert hostile.body_html == "<p>Thanks! 谢谢 </p>"
    assert "alert" not in hostile.body
    assert wp(201).body == "Their crème brûlée is back — so am I."


def test_every_imported_comment_has_one_import_event():
    run("import_wxr", str(WXR))

    for comment in Comment.objects.all():
        events = list(comment.events.all())
        assert len(events) == 1
        assert events[0].actor_name == "import"
        assert events[0].reason == "imported from wxr"
        assert (events[0].from_status, events[0].to_status) == ("", comment.status)


def test_wxr_import_twice_changes_nothing():
    first = run("import_wxr", str(WXR))
    before = snapshot()

    second = run("import_wxr", str(WXR))

    assert snapshot() == before
    assert "comments new:              9" in first
    assert "comments new:              0" in second
    assert "comments already imported: 9" in second
    assert "articles created:          0" in second


def test_wxr_dry_run_reports_and_writes_nothing():
    report = run("import_wxr", str(WXR), "--dry-run")

    assert Article.objects.count() == 0
    assert Comment.objects.count() == 0
    assert CommentEvent.objects.count() == 0
    assert "Dry run" in report
    assert "articles created:          2" in report
    assert "comments new:              9 (1 held, 6 published, 1 removed, 1 spam)" in report
    assert "skipped (pingback): 1" in report
    assert "invalid e-mail addresses imported as empty: 1" in report


def test_wxr_pingbacks_are_imported_on_request():
    run("import_wxr", str(WXR), "--with-pingbacks")

    pingback = wp(105)
    assert pingback.status == S.PUBLISHED
    assert pingback.author_name == "Another Blog"
    assert pingback.body == "[…] the Gazette reports on the new timetable […]"


def test_replies_deeper_than_the_limit_attach_at_the_deepest_level(settings):
    settings.COMMENTS_MAX_DEPTH = 1
    run("import_wxr", str(WXR))

    # 103 answers 102 (depth 1): like moderation.submit, it attaches to 101 instead.
    assert (wp(103).parent_id, wp(103).depth) == (wp(101).pk, 1)


def test_wxr_articles_are_matched_by_canonical_url_and_by_alias():
    ferry = ArticleFactory(
        slug="ferries", url=f"{SITE.upper()}/2024/05/ferry-timetable/?utm_medium=x"
    )
    cafe = ArticleFactory(slug="cafe", url="https://other.example.com/cafe")
    ArticleAlias.objects.create(article=cafe, url=f"{SITE}/2024/06/cafe-pier")

    report = run("import_wxr", str(WXR))

    assert Article.objects.count() == 2
    assert wp(101).article_id == ferry.pk
    assert wp(201).article_id == cafe.pk
    assert "articles matched:          2" in report


def test_counts_and_cached_pages_are_right_after_an_import(api):
    article = ArticleFactory(slug="ferries", url=f"{SITE}/2024/05/ferry-timetable")
    published_comment(article)
    # Both reads are now cached.
    assert api.get(f"/api/v1/articles/{article.slug}/comments/").json()["count"] == 1
    assert api.get(f"/api/v1/articles/counts/?slug={article.slug}").json() == {"ferries": 1}

    run("import_wxr", str(WXR))

    article.refresh_from_db()
    assert article.published_comment_count == 4  # its own + 101, 102, 103
    assert Article.objects.get(slug="cafe-pier").published_comment_count == 3
    assert api.get(f"/api/v1/articles/counts/?slug={article.slug}").json() == {"ferries": 4}
    page = api.get(f"/api/v1/articles/{article.slug}/comments/").json()
    assert page["count"] == 4
    assert "Zoë Müller" in {comment["author_name"] for comment in page["results"]}


def test_without_check_nothing_is_sent_to_akismet(
    checks_enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run("import_wxr", str(WXR))
    assert checks_enqueued == []
    assert not Comment.objects.filter(status=S.PENDING).exists()


def test_check_imports_as_pending_and_enqueues_the_normal_check(
    checks_enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        report = run("import_wxr", str(WXR), "--check")

    pending = set(Comment.objects.filter(status=S.PENDING).values_list("pk", flat=True))
    assert pending == {wp(n).pk for n in (101, 102, 103, 106, 201, 203, 204)}
    assert sorted(checks_enqueued) == sorted(pending)
    assert all(c.next_check_at is not None for c in Comment.objects.filter(status=S.PENDING))
    # What the source had already judged keeps its status.
    assert wp(104).status == S.SPAM and wp(202).status == S.REMOVED
    assert Article.objects.get(slug="ferry-timetable").published_comment_count == 0
    assert "comments sent to the spam check: 7" in report


def test_the_normal_check_decides_a_comment_imported_with_check(standin):
    from comments import spam_check

    run("import_wxr", str(WXR), "--check")
    comment = wp(201)

    spam_check.check(comment.pk)

    comment.refresh_from_db()
    assert comment.status == S.PUBLISHED
    assert comment.checked_at is not None
    assert [e.actor_name for e in comment.events.all()] == ["import", "spam-check"]
    assert Article.objects.get(slug="cafe-pier").published_comment_count == 1


# --- Disqus ------------------------------------------------------------------------------


def test_disqus_import_resolves_threads_and_parents_in_any_order():
    run("import_disqus", str(DISQUS))

    strike = Article.objects.get(slug="ferry-strike")
    marina = Article.objects.get(slug="new-marina")
    assert strike.url == canonicalize(f"{SITE}/2023/11/ferry-strike/")
    assert (strike.slug, strike.title, strike.comments_open) == (
        "ferry-strike",
        "Ferry strike: what we know",
        True,
    )
    assert (marina.slug, marina.comments_open) == ("new-marina", False)
    first, reply, reply_to_reply = dsq(5000001), dsq(5000003), dsq(5000004)
    assert (reply.parent_id, reply.thread_id, reply.depth) == (first.pk, first.pk, 1)
    assert (reply_to_reply.parent_id, reply_to_reply.thread_id, reply_to_reply.depth) == (
        reply.pk,
        first.pk,
        2,
    )
    assert dsq(5000005).status == S.REMOVED
    assert dsq(5000006).parent_id == dsq(5000005).pk
    assert dsq(5000007).status == S.SPAM
    assert dsq(5000008).article_id == marina.pk
    assert strike.comments.filter(status=S.PUBLISHED).count() == 4
    strike.refresh_from_db()
    assert strike.published_comment_count == 4


def test_disqus_authors_and_html_are_imported_safely():
    run("import_disqus", str(DISQUS))

    anonymous = dsq(5000004)
    assert (anonymous.author_name, anonymous.author_email) == ("Anonymous", "")
    assert dsq(5000003).author_name == "Inês Gonçalves"
    assert dsq(5000003).body_html == (
        "<p>I was on that boat, it was packed &amp; late.</p><p>Second paragraph with "
        '<a href="https://example.net/photo" rel="nofollow ugc noopener noreferrer">'
        "a photo</a>.</p>"
    )
    assert dsq(5000008).body == "Great news for the town — 太好了!"
    assert dsq(5000001).created_at == dt.datetime(2023, 11, 2, 8, 0, tzinfo=dt.UTC)


def test_disqus_import_twice_changes_nothing():
    run("import_disqus", str(DISQUS))
    before = snapshot()

    report = run("import_disqus", str(DISQUS))

    assert snapshot() == before
    assert "comments already imported: 7" in report


def test_disqus_dry_run_writes_nothing():
    report = run("import_disqus", str(DISQUS), "--dry-run")
    assert (Article.objects.count(), Comment.objects.count()) == (0, 0)
    assert "comments new:              7" in report


# --- hostile and broken files ------------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<rss xmlns:wp="http://wordpress.org/export/1.2/"><channel><item><title>&lol4;</title></item>
</channel></rss>
"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE disqus [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<disqus xmlns="http://disqus.com"><thread><title>&secret;</title></thread></disqus>
"""


@pytest.mark.parametrize(
    ("command", "content"), [("import_wxr", BILLION_LAUGHS), ("import_disqus", EXTERNAL_ENTITY)]
)
def test_xml_with_entities_is_refused_cleanly(tmp_path, command, content):
    path = tmp_path / "hostile.xml"
    path.write_text(content)
    with pytest.raises(CommandError, match="refused: the file declares a DTD"):
        run(command, str(path))
    assert Comment.objects.count() == 0


def test_malformed_xml_names_the_line(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text(WXR.read_text().replace("</wp:comment_author>", "", 1))
    with pytest.raises(CommandError, match=r"not well-formed XML at line \d+, column \d+"):
        run("import_wxr", str(path))
    assert Article.objects.count() == 0


def test_a_file_of_another_kind_is_named(tmp_path):
    with pytest.raises(CommandError, match="not a Disqus export: the root element is <rss>"):
        run("import_disqus", str(WXR))
    with pytest.raises(CommandError, match=r"not a WordPress export \(WXR\)"):
        run("import_wxr", str(DISQUS))
    with pytest.raises(CommandError, match="cannot read"):
        run("import_wxr", str(tmp_path / "missing.xml"))


def test_a_bad_record_is_reported_and_the_rest_imported(tmp_path):
    path = tmp_path / "partial.xml"
    path.write_text(
        DISQUS.read_text()
        .replace('<thread dsq:id="7000002" />', '<thread dsq:id="7999999" />', 1)
        .replace("<link>https://gazette.example.org/2023/11/ferry-strike/</link>", "<link/>")
    )
    report = run("import_disqus", str(path))
    assert "thread '7999999' is not in the file" in report
    assert "no usable http(s) link" in report
    assert Comment.objects.count() == 1  # only 5000008 has a usable article


# --- our JSON format ---------------------------------------------------------------------


@pytest.fixture
def site(standin):
    """A site with every kind of comment, history, aliases and imported comments."""
    moderator = moderator_user(username="mod-anna")
    article = ArticleFactory(slug="harbour", title="Harbour news")
    ArticleAlias.objects.create(article=article, url="https://amp.example.com/harbour")
    ArticleAlias.objects.create(article=article, url="https://news.example.com/old-harbour")
    closed = ArticleFactory(slug="closed", comments_open=False)
    top = published_comment(article, author_name="Zoë", body="First *thoughts*")
    reply = published_comment(article, parent_id=top.pk, body="A reply", author_name="李")
    held = held_comment(article, body="Waiting")
    moderation.publish(held, actor=moderation.Actor.for_user(moderator), reason="looks fine")
    spam = submit_comment(closed, body="spam spam")
    Comment.objects.filter(pk=spam.pk).update(
        akismet_verdict="spam",
        akismet_guid="guid-1",
        akismet_pro_tip="discard",
        akismet_payload={"comment_content": "spam spam", "blog": "x"},
        discarded=True,
        honeypot_tripped=True,
    )
    moderation.mark_spam(spam, actor=moderation.SPAM_CHECK, reason="akismet_spam")
    removed = published_comment(article, parent_id=reply.pk, body="Rude")
    moderation.remove(removed, actor=moderation.Actor.for_user(moderator), reason="rude")
    run("import_wxr", str(WXR))
    return {"moderator": moderator, "top": top, "reply": reply, "held": held}


def export(tmp_path: Path, name: str) -> bytes:
    path = tmp_path / name
    call_command("export_json", "--output", str(path), stderr=io.StringIO())
    return path.read_bytes()


def wipe() -> None:
    Comment.objects.all().delete()
    Article.objects.all().delete()


def test_every_comment_field_is_in_the_export():
    fields = {field.name for field in Comment._meta.concrete_fields}
    exported = {*json_format.COMMENT_VALUES, *json_format.COMMENT_TIMES, *json_format.COMMENT_LINKS}
    assert fields == exported


def test_json_export_import_export_is_byte_identical(site, tmp_path):
    first = export(tmp_path, "first.json")
    ids = sorted(Comment.objects.values_list("pk", flat=True))
    wipe()

    report = run("import_json", str(tmp_path / "first.json"))
    second = export(tmp_path, "second.json")

    assert second == first
    assert sorted(Comment.objects.values_list("pk", flat=True)) == ids
    assert "comments new:              14" in report
    restored = Comment.objects.get(pk=site["held"].pk)
    assert restored.approved_by == site["moderator"]
    assert restored.events.last().actor_user == site["moderator"]
    assert Article.objects.get(slug="harbour").aliases.count() == 2
    harbour = Article.objects.get(slug="harbour")
    assert harbour.published_comment_count == 3  # top, reply, the approved one


def test_json_export_is_deterministic_and_versioned(site, tmp_path):
    first = export(tmp_path, "a.json")
    assert export(tmp_path, "b.json") == first
    out = io.StringIO()
    call_command("export_json", stdout=out)
    assert out.getvalue().encode() == first
    text = first.decode()
    assert text.startswith('{\n  "articles": [')
    assert '"format": "moderated-comments"' in text and '"version": 1' in text
    assert '"Zoë"' in text  # UTF-8, not \\u escapes


def test_json_import_twice_changes_nothing(site, tmp_path):
    export(tmp_path, "site.json")
    before = snapshot()

    report = run("import_json", str(tmp_path / "site.json"))

    assert snapshot() == before
    assert "comments already imported: 14" in report
    assert "comments new:              0" in report


def test_json_dry_run_writes_nothing(site, tmp_path):
    export(tmp_path, "site.json")
    wipe()
    report = run("import_json", str(tmp_path / "site.json"), "--dry-run")
    assert (Article.objects.count(), Comment.objects.count()) == (0, 0)
    assert "comments new:              14" in report


def test_json_import_continues_the_id_sequence(site, tmp_path):
    export(tmp_path, "site.json")
    highest = Comment.objects.order_by("-pk").first().pk
    wipe()
    run("import_json", str(tmp_path / "site.json"))

    fresh = submit_comment(Article.objects.get(slug="harbour"))
    assert fresh.pk > highest


def test_a_taken_id_is_remapped_and_replies_follow(site, tmp_path):
    export(tmp_path, "site.json")
    top, reply = site["top"], site["reply"]
    wipe()
    other = ArticleFactory(slug="elsewhere")
    squatter = Comment.objects.create(
        pk=top.pk,
        article=other,
        author_name="Someone else",
        author_email="else@example.com",
        body="Not the same comment",
        body_html="<p>Not the same comment</p>",
    )

    run("import_json", str(tmp_path / "site.json"))

    moved = Comment.objects.get(import_source="json", import_id=str(top.pk))
    assert moved.pk != top.pk
    assert moved.body == "First *thoughts*"
    restored_reply = Comment.objects.get(pk=reply.pk)
    assert (restored_reply.parent_id, restored_reply.thread_id) == (moved.pk, moved.pk)
    assert Comment.objects.get(pk=squatter.pk).body == "Not the same comment"
    before = snapshot()
    run("import_json", str(tmp_path / "site.json"))
    assert snapshot() == before


def test_broken_json_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"format": "moderated-comments",\n "version": 1,\n "articles": [}')
    with pytest.raises(CommandError, match=r"not valid JSON at line 3, column"):
        run("import_json", str(path))
    path.write_text('{"format": "something-else"}')
    with pytest.raises(CommandError, match='"format" must be "moderated-comments"'):
        run("import_json", str(path))
    path.write_text('{"format": "moderated-comments", "version": 9}')
    with pytest.raises(CommandError, match="unsupported version 9"):
        run("import_json", str(path))


def test_a_broken_comment_in_json_is_reported_and_skipped(site, tmp_path):
    export(tmp_path, "site.json")
    document = json_format.load((tmp_path / "site.json").open())
    document["comments"][0]["created_at"] = "yesterday"
    document["comments"][1]["status"] = "maybe"
    wipe()
    (tmp_path / "edited.json").write_text(json_format.dumps(document))

    report = run("import_json", str(tmp_path / "edited.json"))

    assert "created_at is not an ISO 8601 time: 'yesterday'; skipped" in report
    assert "unknown status 'maybe'; skipped" in report
    assert Comment.objects.count() == 12


# --- volume ------------------------------------------------------------------------------


def test_ten_thousand_comments_import_well_under_a_minute(tmp_path):
    comments_per_post, posts = 100, 100
    items = []
    for post in range(posts):
        comments = []
        for n in range(comments_per_post):
            comment_id = post * comments_per_post + n + 1
            parent = comment_id - 1 if n % 4 else 0
            comments.append(
                f"<wp:comment><wp:comment_id>{comment_id}</wp:comment_id>"
                f"<wp:comment_author>Reader {n}</wp:comment_author>"
                f"<wp:comment_author_email>r{n}@example.com</wp:comment_author_email>"
                f"<wp:comment_author_IP>203.0.113.{n % 250}</wp:comment_author_IP>"
                "<wp:comment_date_gmt>2024-01-02 03:04:05</wp:comment_date_gmt>"
                f"<wp:comment_content><![CDATA[Comment {comment_id} with <em>HTML</em>]]>"
                "</wp:comment_content><wp:comment_approved>1</wp:comment_approved>"
                f"<wp:comment_type>comment</wp:comment_type><wp:comment_parent>{parent}"
                "</wp:comment_parent></wp:comment>"
            )
        items.append(
            f"<item><title>Post {post}</title><link>{SITE}/p/{post}/</link>"
            f"<wp:post_id>{post}</wp:post_id><wp:post_name>post-{post}</wp:post_name>"
            "<wp:comment_status>open</wp:comment_status>" + "".join(comments) + "</item>"
        )
    path = tmp_path / "big.xml"
    path.write_text(
        '<rss xmlns:wp="http://wordpress.org/export/1.2/"><channel>'
        f"<link>{SITE}</link>" + "".join(items) + "</channel></rss>"
    )

    started = time.monotonic()
    report = run("import_wxr", str(path))
    elapsed = time.monotonic() - started

    assert "comments new:              10000 (10000 published)" in report
    assert elapsed < 45, f"took {elapsed:.1f} s"
    assert Comment.objects.filter(depth=3).exists()
    assert Article.objects.get(slug="post-7").published_comment_count == 100
