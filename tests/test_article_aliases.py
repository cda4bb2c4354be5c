"""Stable thread identity: article aliases, look-up by address, and moving comments
between articles (merge_articles, move_comments, the console action, the command)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from articles.merging import MergeError, merge_articles, move_comments
from articles.models import Article, ArticleAlias
from comments import moderation
from comments.models import Comment, CommentEvent
from tests.factories import (
    ArticleAliasFactory,
    ArticleFactory,
    UserFactory,
    published_comment,
    submit_comment,
)

pytestmark = pytest.mark.django_db

RESOLVE = "/api/v1/articles/resolve/"
ACTOR = moderation.Actor("tests")


def editor(api, actions: tuple[str, ...] = ("add", "change")):
    """Token credentials of a user with the articles model permissions."""
    user = UserFactory()
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="articles", codename__in=[f"{a}_article" for a in actions]
        )
    )
    token = Token.objects.create(user=user)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return user


def payload(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "slug": "bridge-vote",
        "title": "Council votes on the bridge",
        "url": "https://news.example.com/2025/bridge-vote/",
    }
    data.update(overrides)
    return data


def comments_page(api, slug: str) -> dict:
    response = api.get(f"/api/v1/articles/{slug}/comments/?order=oldest")
    assert response.status_code == 200, response.content
    return response.json()


def thread(article: Article, text: str) -> tuple[Comment, Comment, Comment]:
    """A published top-level comment with a reply and a reply to the reply."""
    top = published_comment(article, body=f"{text}: top")
    reply = published_comment(article, body=f"{text}: reply", parent_id=top.pk)
    deeper = published_comment(article, body=f"{text}: deeper", parent_id=reply.pk)
    return top, reply, deeper


# --- Aliases in the staff API --------------------------------------------------------


def test_the_url_and_aliases_are_stored_canonicalised(api):
    editor(api)

    response = api.post(
        "/api/v1/articles/",
        payload(
            url="HTTPS://News.Example.com:443/2025/bridge-vote/?utm_source=feed#top",
            aliases=[
                "https://amp.example.com/bridge-vote?fbclid=abc",
                "http://NEWS.example.com/old/bridge",
                "http://news.example.com/old/bridge/",  # the same address again
            ],
        ),
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["url"] == "https://news.example.com/2025/bridge-vote/"
    assert body["aliases"] == [
        "http://news.example.com/old/bridge",
        "https://amp.example.com/bridge-vote",
    ]
    article = Article.objects.get(slug="bridge-vote")
    assert article.url == "https://news.example.com/2025/bridge-vote/"
    assert sorted(article.aliases.values_list("url", flat=True)) == body["aliases"]


def test_writing_aliases_replaces_the_list_and_drops_the_articles_own_url(api):
    article = ArticleFactory(url="https://news.example.com/story/")
    ArticleAliasFactory(article=article, url="https://old.example.com/story")
    editor(api)

    response = api.patch(
        f"/api/v1/articles/{article.slug}/",
        {"aliases": ["https://amp.example.com/story", "https://news.example.com/story"]},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["aliases"] == ["https://amp.example.com/story"]
    assert list(article.aliases.values_list("url", flat=True)) == ["https://amp.example.com/story"]


def test_patching_other_fields_keeps_the_aliases(api):
    article = ArticleAliasFactory(url="https://amp.example.com/kept").article
    editor(api)

    response = api.patch(f"/api/v1/articles/{article.slug}/", {"title": "New"}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["aliases"] == ["https://amp.example.com/kept"]


@pytest.mark.parametrize(
    "alias",
    [
        "https://news.example.com/taken/",  # the other article's url
        "https://NEWS.example.com/taken?utm_medium=x",  # the same, spelt otherwise
        "https://amp.example.com/taken/",  # the other article's alias, with a slash
    ],
)
def test_an_alias_that_is_another_articles_address_is_refused(api, alias):
    other = ArticleFactory(slug="other", url="https://news.example.com/taken/")
    ArticleAliasFactory(article=other, url="https://amp.example.com/taken")
    article = ArticleFactory()
    editor(api)

    response = api.patch(f"/api/v1/articles/{article.slug}/", {"aliases": [alias]}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["aliases"]
    assert "'other'" in str(response.json()["aliases"])
    assert not article.aliases.exists()


@pytest.mark.parametrize(
    "aliases",
    [
        ["ftp://news.example.com/a"],
        ["javascript:alert(1)"],
        ["not an address"],
        "https://news.example.com/a",  # not a list
        [f"https://news.example.com/{n}" for n in range(51)],
    ],
)
def test_invalid_aliases_are_refused_naming_the_field(api, aliases):
    editor(api)

    response = api.post("/api/v1/articles/", payload(aliases=aliases), format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["aliases"]
    assert not Article.objects.filter(slug="bridge-vote").exists()


def test_a_url_that_is_another_articles_address_is_refused(api):
    ArticleAliasFactory(article=ArticleFactory(slug="first"), url="https://amp.example.com/x")
    editor(api)

    response = api.post(
        "/api/v1/articles/", payload(url="https://amp.example.com/x/?utm_source=a"), format="json"
    )

    assert response.status_code == 400
    assert list(response.json()) == ["url"]
    assert "'first'" in response.json()["url"][0]


def test_resolve_is_a_reserved_slug(api):
    editor(api)

    response = api.post("/api/v1/articles/", payload(slug="resolve"), format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["slug"]


def test_anonymous_readers_cannot_write_aliases(api):
    article = ArticleFactory()

    response = api.patch(
        f"/api/v1/articles/{article.slug}/",
        {"aliases": ["https://amp.example.com/x"]},
        format="json",
    )

    assert response.status_code in (401, 403)
    assert not article.aliases.exists()


# --- Aliases in the public responses ---------------------------------------------------


def test_public_responses_list_the_aliases_sorted_and_empty_without_any(api):
    plain = ArticleFactory()
    aliased = ArticleFactory()
    ArticleAliasFactory(article=aliased, url="https://b.example.com/x")
    ArticleAliasFactory(article=aliased, url="https://a.example.com/x")

    listed = {a["slug"]: a for a in api.get("/api/v1/articles/").json()["results"]}
    detail = api.get(f"/api/v1/articles/{aliased.slug}/").json()

    assert listed[plain.slug]["aliases"] == []
    assert detail == listed[aliased.slug]
    assert detail["aliases"] == ["https://a.example.com/x", "https://b.example.com/x"]


def test_aliases_cost_no_query_per_article(api):
    for n in range(12):
        article = ArticleFactory()
        for m in range(3):
            ArticleAliasFactory(article=article, url=f"https://amp.example.com/{n}/{m}")

    with CaptureQueriesContext(connection) as listing:
        body = api.get("/api/v1/articles/").json()
    with CaptureQueriesContext(connection) as detail:
        api.get(f"/api/v1/articles/{article.slug}/")

    assert all(len(a["aliases"]) == 3 for a in body["results"])
    assert len(listing) == 2  # page and count, as without aliases
    assert len(detail) == 1


# --- Look-up by address ------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "https://news.example.com/2025/harbour-festival/",
        "https://news.example.com/2025/harbour-festival",
        "HTTPS://News.Example.com:443/2025/harbour-festival/?utm_source=tw&utm_medium=social",
        "https://news.example.com/2025/harbour-festival?fbclid=IwAR0&gclid=x#comments",
        "https://amp.example.com/harbour-festival/?mc_cid=1",  # an alias
    ],
)
def test_resolve_finds_the_article_by_any_spelling_of_its_address(api, spelling):
    article = ArticleFactory(url="https://news.example.com/2025/harbour-festival/")
    ArticleAliasFactory(article=article, url="https://amp.example.com/harbour-festival")
    ArticleFactory(url="https://news.example.com/2025/harbour-festival-2/")

    response = api.get(RESOLVE, {"url": spelling})

    assert response.status_code == 200, response.content
    assert response.json() == api.get(f"/api/v1/articles/{article.slug}/").json()


def test_resolve_answers_404_json_for_an_unknown_address(api):
    ArticleFactory(url="https://news.example.com/known/")

    response = api.get(RESOLVE, {"url": "https://news.example.com/unknown/?utm_source=x"})

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"url": ""},
        {"url": "ftp://news.example.com/a"},
        {"url": "javascript:alert(1)"},
        {"url": "news.example.com/a"},
        {"url": "https://user:pw@news.example.com/a"},
        {"url": "https://" + "a" * 2100 + ".com/"},
    ],
)
def test_resolve_refuses_anything_but_an_http_address_naming_url(api, query):
    response = api.get(RESOLVE, query)

    assert response.status_code == 400
    assert list(response.json()) == ["url"]


def test_the_schema_documents_resolve(api):
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()

    operation = schema["paths"]["/api/v1/articles/resolve/"]["get"]

    (url,) = [p for p in operation["parameters"] if p["name"] == "url"]
    assert (url["in"], url["required"]) == ("query", True)
    assert {"200", "400", "404"} <= set(operation["responses"])
    article = schema["components"]["schemas"]["Article"]["properties"]
    assert article["aliases"]["type"] == "array"


# --- Moving comments -------------------------------------------------------------


def test_merge_moves_whole_threads_counts_aliases_and_fresh_pages(api):
    source = ArticleFactory(slug="festival-dup", url="https://news.example.com/festival-2/")
    ArticleAliasFactory(article=source, url="https://amp.example.com/festival-2")
    target = ArticleFactory(slug="festival", url="https://news.example.com/festival/")
    kept = published_comment(target, body="Already on the target.")
    moved = thread(source, "Moved")
    pending = submit_comment(source, body="Still waiting for its check.")
    before_source = comments_page(api, source.slug)  # cached now
    before_target = comments_page(api, target.slug)
    assert (before_source["count"], before_target["count"]) == (3, 1)

    result = merge_articles(source, target, actor=ACTOR)

    assert result.source_deleted and len(result.comment_ids) == 4
    assert not Article.objects.filter(pk=source.pk).exists()
    target.refresh_from_db()
    assert target.published_comment_count == 4
    assert Comment.objects.filter(article=target).count() == 5
    assert Comment.objects.get(pk=pending.pk).status == Comment.Status.PENDING
    page = comments_page(api, target.slug)
    assert page["count"] == 4
    tops = {c["id"]: c for c in page["results"]}
    assert set(tops) == {kept.pk, moved[0].pk}
    (reply,) = tops[moved[0].pk]["replies"]
    assert reply["id"] == moved[1].pk
    assert [r["id"] for r in reply["replies"]] == [moved[2].pk]
    assert api.get(f"/api/v1/articles/{source.slug}/comments/").status_code == 404
    assert sorted(target.aliases.values_list("url", flat=True)) == [
        "https://amp.example.com/festival-2",
        "https://news.example.com/festival-2/",
    ]
    resolved = api.get(RESOLVE, {"url": "https://news.example.com/festival-2?utm_source=x"})
    assert resolved.json()["slug"] == "festival"


def test_every_moved_comment_gets_an_audit_row_with_its_status(api):
    source, target = ArticleFactory(slug="src"), ArticleFactory()
    published = published_comment(source)
    held = submit_comment(source)
    moderation.hold(held, actor=moderation.SYSTEM, reason="links")
    user = UserFactory(username="editor-erin")

    merge_articles(source, target, actor=moderation.Actor.for_user(user))

    events = CommentEvent.objects.filter(reason="moved from article src")
    assert sorted(events.values_list("comment_id", "from_status", "to_status")) == sorted(
        [(published.pk, "published", "published"), (held.pk, "held", "held")]
    )
    assert {(e.actor_name, e.actor_user_id) for e in events} == {("editor-erin", user.pk)}


def test_merge_with_keep_source_closes_it_and_its_address_finds_the_target(api):
    source = ArticleFactory(url="https://news.example.com/kept/")
    target = ArticleFactory()
    published_comment(source)

    merge_articles(source, target, actor=ACTOR, keep_source=True)

    source.refresh_from_db()
    assert source.comments_open is False
    assert source.published_comment_count == 0
    assert api.get(RESOLVE, {"url": source.url}).json()["slug"] == target.slug
    again = merge_articles(source, target, actor=ACTOR, keep_source=True)
    assert (again.comment_ids, again.moved_aliases, again.added_alias) == ([], [], None)


def test_merge_clears_an_idempotency_key_the_target_already_uses():
    source, target = ArticleFactory(), ArticleFactory()
    submit_comment(target, idempotency_key="same-key")
    moved = submit_comment(source, idempotency_key="same-key")

    merge_articles(source, target, actor=ACTOR)

    moved.refresh_from_db()
    assert (moved.article_id, moved.idempotency_key) == (target.pk, "")


def test_an_article_cannot_be_merged_into_itself():
    article = ArticleFactory()

    with pytest.raises(MergeError, match="itself"):
        merge_articles(article, article, actor=ACTOR)


def test_moving_a_top_level_comment_takes_its_whole_thread(api):
    source, target = ArticleFactory(), ArticleFactory()
    moved = thread(source, "Moving")
    stays = thread(source, "Staying")
    comments_page(api, target.slug)

    ids = move_comments(moved[0], target, actor=ACTOR)

    assert ids == sorted(c.pk for c in moved)
    assert set(Comment.objects.filter(article=source).values_list("pk", flat=True)) == {
        c.pk for c in stays
    }
    source.refresh_from_db()
    target.refresh_from_db()
    assert (source.published_comment_count, target.published_comment_count) == (3, 3)
    assert [c["id"] for c in comments_page(api, target.slug)["results"]] == [moved[0].pk]
    assert (
        CommentEvent.objects.filter(
            comment_id__in=ids, reason=f"moved from article {source.slug}"
        ).count()
        == 3
    )


def test_a_reply_cannot_be_moved_without_its_thread_root():
    source, target = ArticleFactory(), ArticleFactory()
    _, reply, _ = thread(source, "Rooted")

    with pytest.raises(MergeError, match="reply"):
        move_comments([reply.pk], target, actor=ACTOR)

    assert Comment.objects.filter(article=source).count() == 3


# --- The command ------------------------------------------------------------------------


def run(*args: str) -> str:
    out = StringIO()
    call_command("merge_articles", *args, stdout=out)
    return out.getvalue()


def test_the_command_dry_run_changes_nothing():
    source = ArticleFactory(slug="dup", url="https://news.example.com/dup/")
    target = ArticleFactory(slug="main")
    thread(source, "Dry")
    before = (
        list(Comment.objects.values_list("pk", "article_id", "status")),
        list(ArticleAlias.objects.values_list("url", "article_id")),
        CommentEvent.objects.count(),
    )

    output = run("dup", "main", "--dry-run")

    assert "Dry run, nothing changed" in output
    assert "Would move 3 comment(s) in 1 thread(s)" in output
    assert Article.objects.filter(slug="dup").exists()
    assert before == (
        list(Comment.objects.values_list("pk", "article_id", "status")),
        list(ArticleAlias.objects.values_list("url", "article_id")),
        CommentEvent.objects.count(),
    )
    target.refresh_from_db()
    assert target.published_comment_count == 0


def test_the_command_merges_and_a_second_run_says_why_it_cannot():
    source = ArticleFactory(slug="dup")
    ArticleFactory(slug="main")
    thread(source, "Command")

    output = run("dup", "main")

    assert "Moved 3 comment(s)" in output
    assert Article.objects.get(slug="main").published_comment_count == 3
    with pytest.raises(CommandError, match=r"No article with the slug 'dup'.*already merged"):
        run("dup", "main")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("same", "same"), "into itself"),
        (("nobody", "main"), "No article with the slug 'nobody'"),
        (("dup", "nobody"), "No article with the slug 'nobody'"),
    ],
)
def test_the_command_explains_what_is_wrong(args, message):
    ArticleFactory(slug="dup")
    ArticleFactory(slug="main")
    ArticleFactory(slug="same")

    with pytest.raises(CommandError, match=message):
        run(*args)


# --- The console ------------------------------------------------------------------------


@pytest.fixture
def staff_client(client):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="articles",
            codename__in=["view_article", "change_article", "delete_article", "add_article"],
        ),
        *Permission.objects.filter(
            content_type__app_label="articles",
            codename__in=["view_articlealias", "add_articlealias", "change_articlealias"],
        ),
    )
    client.force_login(user)
    return client


def test_the_console_merges_selected_articles_after_confirmation(staff_client):
    source = ArticleFactory(slug="console-dup", title="Duplicate story")
    target = ArticleFactory(slug="console-main")
    thread(source, "Console")
    selection = {"action": "merge_into", "_selected_action": [source.pk]}

    confirm = staff_client.post("/admin/articles/article/", selection)

    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "Duplicate story" in page and "3 comments in 1 thread" in page
    assert Article.objects.filter(pk=source.pk).exists()

    wrong = staff_client.post(
        "/admin/articles/article/", {**selection, "post": "yes", "target": "console-dup"}
    )
    assert "cannot be merged into itself" in wrong.content.decode()

    done = staff_client.post(
        "/admin/articles/article/",
        {**selection, "post": "yes", "target": target.url + "?utm_source=console"},
        follow=True,
    )

    assert done.status_code == 200
    assert "Moved 3 comment(s)" in done.content.decode()
    assert not Article.objects.filter(pk=source.pk).exists()
    assert Comment.objects.filter(article=target).count() == 3


def test_the_console_action_needs_the_delete_permission(client):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="articles", codename__in=["view_article", "change_article"]
        )
    )
    client.force_login(user)
    source, target = ArticleFactory(), ArticleFactory()
    published_comment(source)

    client.post(
        "/admin/articles/article/",
        {
            "action": "merge_into",
            "_selected_action": [source.pk],
            "post": "yes",
            "target": target.slug,
        },
    )

    assert Comment.objects.filter(article=source).count() == 1


def test_the_console_stores_addresses_and_inline_aliases_canonicalised(staff_client):
    article = ArticleFactory()
    other = ArticleFactory(url="https://news.example.com/other/")
    form = {
        "title": article.title,
        "slug": article.slug,
        "url": "HTTPS://News.Example.com/edited/?utm_source=x",
        "published_at_0": "2025-03-01",
        "published_at_1": "09:30:00",
        "comments_open": "on",
        "aliases-TOTAL_FORMS": "1",
        "aliases-INITIAL_FORMS": "0",
        "aliases-MIN_NUM_FORMS": "0",
        "aliases-MAX_NUM_FORMS": "1000",
        "aliases-0-url": "https://AMP.example.com/edited#x",
    }
    change = f"/admin/articles/article/{article.pk}/change/"

    response = staff_client.post(change, form)

    assert response.status_code == 302, response.content.decode()[:2000]
    article.refresh_from_db()
    assert article.url == "https://news.example.com/edited/"
    assert list(article.aliases.values_list("url", flat=True)) == ["https://amp.example.com/edited"]
    clash = staff_client.post(
        change,
        {
            **form,
            "aliases-INITIAL_FORMS": "0",
            "aliases-0-url": "https://news.example.com/other",
        },
    )
    assert clash.status_code == 200
    assert f"already an address of the article &#x27;{other.slug}&#x27;" in (clash.content.decode())
