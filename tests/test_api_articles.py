"""Article endpoints: public reads, batch counts, and staff writes with token auth."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from articles.models import Article
from comments import moderation
from tests.factories import ArticleFactory, UserFactory, published_comment, submit_comment

pytestmark = pytest.mark.django_db

ARTICLE_FIELDS = {
    "slug",
    "title",
    "url",
    "published_at",
    "comments_open",
    "comment_count",
    "aliases",
}
LIST_URL = "/api/v1/articles/"
COUNTS_URL = "/api/v1/articles/counts/"


def detail_url(slug: str) -> str:
    return f"/api/v1/articles/{slug}/"


def add_comments_of_every_status(article: Article, published: int) -> None:
    """`published` published comments plus one comment in each status that is not public."""
    for _ in range(published):
        published_comment(article)
    submit_comment(article)  # pending
    moderation.hold(submit_comment(article), actor=moderation.SPAM_CHECK, reason="links")
    moderation.mark_spam(submit_comment(article), actor=moderation.SPAM_CHECK)
    moderation.reject(submit_comment(article), actor=moderation.SYSTEM)
    moderation.remove(submit_comment(article), actor=moderation.AUTHOR)


def authenticate(api, user) -> None:
    token = Token.objects.create(user=user)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")


def staff_user(*actions: str):
    """A user holding the given articles model permissions (add, change, delete)."""
    user = UserFactory()
    user.user_permissions.add(
        *[
            Permission.objects.get(content_type__app_label="articles", codename=f"{a}_article")
            for a in actions
        ]
    )
    return user


def get_json(api, url: str) -> dict:
    response = api.get(url)
    assert response.status_code == 200, response.content
    return response.json()


def new_article_payload(**overrides: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "slug": "city-council-votes",
        "title": "City council votes on the new bridge",
        "url": "https://news.example.com/city-council-votes/",
        "published_at": "2025-03-01T09:30:00Z",
        "comments_open": True,
    }
    payload.update(overrides)
    return payload


# --- Public reads ---------------------------------------------------------------


def test_the_article_list_is_paginated_with_the_public_fields(api):
    ArticleFactory.create_batch(51)

    first = get_json(api, LIST_URL)
    second = get_json(api, first["next"])

    assert first["count"] == 51
    assert len(first["results"]) == 50
    assert first["previous"] is None
    assert len(second["results"]) == 1
    assert second["next"] is None
    assert set(first["results"][0]) == ARTICLE_FIELDS
    all_slugs = {a["slug"] for a in first["results"] + second["results"]}
    assert all_slugs == set(Article.objects.values_list("slug", flat=True))


def test_the_article_list_counts_only_published_comments(api):
    busy = ArticleFactory()
    quiet = ArticleFactory()
    add_comments_of_every_status(busy, published=2)
    add_comments_of_every_status(quiet, published=0)

    results = {a["slug"]: a for a in get_json(api, LIST_URL)["results"]}

    assert results[busy.slug]["comment_count"] == 2
    assert results[quiet.slug]["comment_count"] == 0


def test_an_article_is_shown_with_the_same_fields_as_in_the_list(api):
    article = ArticleFactory(comments_open=False)
    add_comments_of_every_status(article, published=3)

    body = get_json(api, detail_url(article.slug))
    listed = get_json(api, LIST_URL)["results"][0]

    assert body == listed
    assert body["slug"] == article.slug
    assert body["title"] == article.title
    assert body["url"] == article.url
    assert body["comments_open"] is False
    assert body["comment_count"] == 3
    assert body["published_at"].endswith("Z")


def test_an_unknown_article_is_404(api):
    ArticleFactory(slug="exists")

    response = api.get(detail_url("does-not-exist"))

    assert response.status_code == 404
    assert "detail" in response.json()


# --- Batch counts -------------------------------------------------------------------


def test_counts_returns_published_counts_for_each_slug_asked(api):
    busy = ArticleFactory(slug="busy")
    ArticleFactory(slug="quiet")
    add_comments_of_every_status(busy, published=3)

    response = api.get(COUNTS_URL, {"slug": ["busy", "quiet"]})

    assert response.status_code == 200
    assert response.json() == {"busy": 3, "quiet": 0}


def test_counts_answers_zero_for_an_unknown_slug(api):
    published_comment(ArticleFactory(slug="known"))

    response = api.get(COUNTS_URL, {"slug": ["known", "never-heard-of-it"]})

    assert response.status_code == 200
    assert response.json() == {"known": 1, "never-heard-of-it": 0}


def test_counts_does_not_mix_up_articles(api):
    one = ArticleFactory(slug="one")
    two = ArticleFactory(slug="two")
    published_comment(one)
    published_comment(two)
    published_comment(two)

    assert api.get(COUNTS_URL, {"slug": ["one", "two"]}).json() == {"one": 1, "two": 2}


def test_counts_accepts_one_hundred_slugs(api):
    slugs = [f"slug-{i}" for i in range(100)]

    response = api.get(COUNTS_URL, {"slug": slugs})

    assert response.status_code == 200
    assert response.json() == dict.fromkeys(slugs, 0)


@pytest.mark.parametrize(
    "query",
    [
        pytest.param({}, id="no-slug"),
        pytest.param({"slug": [f"slug-{i}" for i in range(101)]}, id="101-slugs"),
        pytest.param({"slug": ["not a slug!"]}, id="invalid-slug"),
    ],
)
def test_counts_refuses_a_bad_slug_list_naming_slug(api, query):
    response = api.get(COUNTS_URL, query)

    assert response.status_code == 400
    assert "slug" in response.json()


def test_counts_is_not_mistaken_for_an_article_slug(api):
    response = api.get(COUNTS_URL, {"slug": ["a"]})

    assert response.status_code == 200
    assert "title" not in response.json()


# --- Staff writes ------------------------------------------------------------------


def test_a_user_with_the_add_permission_creates_an_article(api):
    authenticate(api, staff_user("add"))

    response = api.post(LIST_URL, new_article_payload(comment_count=99), format="json")

    assert response.status_code == 201, response.json()
    assert response.json() == {**new_article_payload(), "comment_count": 0, "aliases": []}
    article = Article.objects.get(slug="city-council-votes")
    assert article.title == "City council votes on the new bridge"
    assert article.url == "https://news.example.com/city-council-votes/"


def test_a_new_article_without_optional_fields_is_open_for_comments(api):
    authenticate(api, staff_user("add"))

    response = api.post(
        LIST_URL,
        {"slug": "minimal", "title": "Minimal", "url": "https://news.example.com/minimal/"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["comments_open"] is True
    assert Article.objects.get(slug="minimal").comments_open is True


def test_a_user_with_the_change_permission_updates_an_article(api):
    article = ArticleFactory(comments_open=True)
    authenticate(api, staff_user("change"))

    response = api.patch(
        detail_url(article.slug),
        {"title": "Corrected title", "comments_open": False},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["title"] == "Corrected title"
    article.refresh_from_db()
    assert article.title == "Corrected title"
    assert article.comments_open is False


def test_a_user_with_the_delete_permission_deletes_an_article_and_its_comments(api):
    article = ArticleFactory()
    comment = published_comment(article)
    authenticate(api, staff_user("delete"))

    response = api.delete(detail_url(article.slug))

    assert response.status_code == 204
    assert not Article.objects.filter(pk=article.pk).exists()
    assert not type(comment).objects.filter(pk=comment.pk).exists()
    assert api.get(detail_url(article.slug)).status_code == 404


def write_requests(slug: str):
    return [
        ("post", LIST_URL, new_article_payload()),
        ("patch", detail_url(slug), {"title": "Changed"}),
        ("delete", detail_url(slug), None),
    ]


@pytest.mark.parametrize("method", ["post", "patch", "delete"])
def test_an_anonymous_write_is_401_and_changes_nothing(api, method):
    article = ArticleFactory(title="Original")
    (request,) = [r for r in write_requests(article.slug) if r[0] == method]

    response = getattr(api, method)(request[1], request[2], format="json")

    assert response.status_code == 401
    assert list(Article.objects.values_list("slug", "title")) == [(article.slug, "Original")]


@pytest.mark.parametrize("method", ["post", "patch", "delete"])
def test_a_write_by_a_user_without_permissions_is_403_and_changes_nothing(api, method):
    article = ArticleFactory(title="Original")
    authenticate(api, UserFactory())
    (request,) = [r for r in write_requests(article.slug) if r[0] == method]

    response = getattr(api, method)(request[1], request[2], format="json")

    assert response.status_code == 403
    assert list(Article.objects.values_list("slug", "title")) == [(article.slug, "Original")]


def test_the_change_permission_does_not_allow_deleting(api):
    article = ArticleFactory()
    authenticate(api, staff_user("change"))

    response = api.delete(detail_url(article.slug))

    assert response.status_code == 403
    assert Article.objects.filter(pk=article.pk).exists()


def test_an_invalid_token_is_401(api):
    api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = api.post(LIST_URL, new_article_payload(), format="json")

    assert response.status_code == 401
    assert not Article.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        pytest.param({"title": None}, "title", id="missing-title"),
        pytest.param({"title": ""}, "title", id="blank-title"),
        pytest.param({"url": "javascript:alert(1)"}, "url", id="javascript-url"),
        pytest.param({"url": "data:text/html,<script>x</script>"}, "url", id="data-url"),
        pytest.param({"url": "not a url"}, "url", id="not-a-url"),
        pytest.param({"slug": "counts"}, "slug", id="reserved-slug"),
        pytest.param({"slug": "Has Spaces"}, "slug", id="invalid-slug"),
    ],
)
def test_a_bad_new_article_is_400_naming_the_field(api, payload, field):
    authenticate(api, staff_user("add"))
    data = new_article_payload(**payload)
    data = {key: value for key, value in data.items() if value is not None}

    response = api.post(LIST_URL, data, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Article.objects.exists()


def test_a_duplicate_slug_is_400_naming_slug(api):
    ArticleFactory(slug="city-council-votes", title="The first one")
    authenticate(api, staff_user("add"))

    response = api.post(LIST_URL, new_article_payload(), format="json")

    assert response.status_code == 400
    assert "slug" in response.json()
    assert Article.objects.get(slug="city-council-votes").title == "The first one"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        pytest.param({"slug": "counts"}, "slug", id="reserved-slug"),
        pytest.param({"url": "javascript:alert(1)"}, "url", id="javascript-url"),
        pytest.param({"title": ""}, "title", id="blank-title"),
    ],
)
def test_a_bad_update_is_400_naming_the_field_and_changes_nothing(api, payload, field):
    article = ArticleFactory()
    before = Article.objects.filter(pk=article.pk).values("slug", "title", "url").get()
    authenticate(api, staff_user("change"))

    response = api.patch(detail_url(article.slug), payload, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert Article.objects.filter(pk=article.pk).values("slug", "title", "url").get() == before


# --- Tokens --------------------------------------------------------------------------


def test_drf_create_token_makes_a_token_that_authenticates(api):
    editor = staff_user("add")
    out = StringIO()

    call_command("drf_create_token", editor.username, stdout=out)

    token = Token.objects.get(user=editor)
    assert token.key in out.getvalue()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.post(LIST_URL, new_article_payload(), format="json").status_code == 201


def test_drf_create_token_refuses_an_unknown_user():
    with pytest.raises(CommandError, match="does not exist"):
        call_command("drf_create_token", "nobody-by-that-name", stdout=StringIO())

    assert not Token.objects.exists()
