"""The OpenAPI schema and docs pages, and the Django admin over articles and comments."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from comments import moderation
from comments.models import Comment
from tests.factories import ArticleFactory, UserFactory, published_comment, submit_comment

pytestmark = pytest.mark.django_db

PUBLIC_PATHS = {
    "/api/v1/articles/": {"get"},
    "/api/v1/articles/{slug}/": {"get"},
    "/api/v1/articles/counts/": {"get"},
    "/api/v1/articles/{slug}/comments/": {"get", "post"},
    "/api/v1/comments/{id}/": {"get", "patch", "delete"},
}
STAFF_PATHS = {
    "/api/v1/articles/": {"post"},
    "/api/v1/articles/{slug}/": {"patch", "delete"},
}
PRIVATE_FIELDS = {"author_email", "ip_address", "user_agent", "referrer"}


@pytest.fixture
def schema(api) -> dict:
    response = api.get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


# --- Schema and docs ------------------------------------------------------------------


def test_the_schema_is_an_openapi_3_document(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"]
    assert schema["paths"]


@pytest.mark.parametrize("path", sorted(PUBLIC_PATHS))
def test_the_schema_lists_every_public_path_of_the_contract(schema, path):
    assert path in schema["paths"]
    assert PUBLIC_PATHS[path] <= set(schema["paths"][path])


@pytest.mark.parametrize("path", sorted(STAFF_PATHS))
def test_the_schema_lists_the_staff_article_methods(schema, path):
    assert STAFF_PATHS[path] <= set(schema["paths"][path])


def test_the_schema_documents_the_repeated_slug_parameter_of_counts(schema):
    parameters = schema["paths"]["/api/v1/articles/counts/"]["get"]["parameters"]

    (slug,) = [p for p in parameters if p["name"] == "slug"]
    assert slug["in"] == "query"
    assert slug["required"] is True
    assert slug["schema"]["type"] == "array"


def referenced_schemas(node: object, components: dict, seen: set[str]) -> set[str]:
    """Names of the component schemas `node` refers to, directly or through others."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                referenced_schemas(components[name], components, seen)
        for value in node.values():
            referenced_schemas(value, components, seen)
    elif isinstance(node, list):
        for value in node:
            referenced_schemas(value, components, seen)
    return seen


def test_no_public_response_shape_has_a_private_field(schema):
    components = schema["components"]["schemas"]
    responses = [
        schema["paths"][path][method]["responses"]
        for path, methods in PUBLIC_PATHS.items()
        for method in methods
    ]

    names = referenced_schemas(responses, components, set())

    assert "PublicComment" in names
    for name in names:
        assert not PRIVATE_FIELDS & set(components[name].get("properties", {})), name


def test_the_schema_generates_without_warnings_and_validates():
    out = StringIO()

    call_command("spectacular", "--validate", "--fail-on-warn", "--format=openapi-json", stdout=out)

    assert '"openapi"' in out.getvalue()


def test_the_docs_page_is_html(api):
    response = api.get("/api/v1/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    content = response.content.decode()
    assert "swagger" in content.lower()
    assert "/api/v1/schema/" in content


# --- Admin ------------------------------------------------------------------------------------


@pytest.fixture
def superuser():
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def signed_in(client, superuser):
    client.force_login(superuser)
    return client


def comments_of_every_kind():
    article = ArticleFactory(title="Bridge vote coverage")
    published = published_comment(article, author_name="Pat Published")
    held = submit_comment(article, author_name="Hal Held")
    moderation.hold(held, actor=moderation.SPAM_CHECK, reason="too many links")
    spam = submit_comment(article, author_name="Sam Spam")
    moderation.mark_spam(spam, actor=moderation.SPAM_CHECK)
    pending = submit_comment(article, author_name="Penny Pending")
    return article, [published, held, spam, pending]


def test_the_article_changelist_renders_for_a_superuser(signed_in):
    ArticleFactory(title="Bridge vote coverage")
    ArticleFactory(title="Harbour festival")

    response = signed_in.get("/admin/articles/article/")

    assert response.status_code == 200
    content = response.content.decode()
    assert "Bridge vote coverage" in content
    assert "Harbour festival" in content


def test_the_comment_changelist_renders_with_comments_of_every_status(signed_in):
    _, comments = comments_of_every_kind()

    response = signed_in.get("/admin/comments/comment/?status=all")

    assert response.status_code == 200
    content = response.content.decode()
    for comment in comments:
        assert comment.author_name in content


@pytest.mark.parametrize(
    "query", [{"status__exact": "held"}, {"q": "Hal"}, {"created_at__year": "2020"}]
)
def test_the_comment_changelist_filters_and_searches(signed_in, query):
    comments_of_every_kind()

    response = signed_in.get("/admin/comments/comment/", query)

    assert response.status_code == 200
    assert "Penny Pending" not in response.content.decode()


def test_a_comments_admin_page_shows_its_event_history(signed_in):
    moderator = UserFactory(username="mod-morgan")
    comment = submit_comment(author_name="Hal Held")
    moderation.hold(comment, actor=moderation.SPAM_CHECK, reason="too many links")
    moderation.publish(comment, actor=moderation.Actor.for_user(moderator), reason="looks fine")

    response = signed_in.get(f"/admin/comments/comment/{comment.pk}/change/")

    assert response.status_code == 200
    content = response.content.decode()
    for text in ["submitted", "spam-check", "too many links", "mod-morgan", "looks fine"]:
        assert text in content
    assert content.index("submitted") < content.index("too many links")
    assert content.index("too many links") < content.index("looks fine")


def test_the_admin_refuses_to_add_comments(signed_in, article):
    assert signed_in.get("/admin/comments/comment/add/").status_code == 403

    response = signed_in.post(
        "/admin/comments/comment/add/",
        {
            "article": article.pk,
            "author_name": "Forged",
            "author_email": "forged@example.com",
            "body": "Injected through the admin.",
        },
    )

    assert response.status_code == 403
    assert not Comment.objects.exists()
    changelist = signed_in.get("/admin/comments/comment/").content.decode()
    assert "/admin/comments/comment/add/" not in changelist


def test_the_admin_cannot_change_a_comment_behind_moderations_back(signed_in):
    comment = submit_comment(body="Original words.")

    response = signed_in.post(
        f"/admin/comments/comment/{comment.pk}/change/",
        {"body": "Rewritten in the admin.", "author_name": "X", "author_email": "x@example.com"},
    )

    assert response.status_code == 403
    comment.refresh_from_db()
    assert comment.body == "Original words."
    assert comment.status == Comment.Status.PENDING


def test_the_admin_is_closed_to_users_who_are_not_staff(client):
    reader = UserFactory()
    client.force_login(reader)

    response = client.get("/admin/comments/comment/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert client.session.get("_auth_user_id") == str(reader.pk)  # signed in, just not staff
