"""What a public response must never carry: an author's email, IP address or user
agent, and anything of someone else's unpublished comment."""

from __future__ import annotations

import pytest

from comments import moderation, tokens
from comments.models import Comment
from tests.factories import ArticleFactory, published_comment, submit_comment

pytestmark = pytest.mark.django_db

SECRET_EMAIL = "hidden.author+probe@mailbox-7f3a.example"
SECRET_IP = "198.51.100.77"
SECRET_UA = "PrivacyProbe/4.2 (unique-agent-7f3a)"
SECRETS = {"email": SECRET_EMAIL, "ip": SECRET_IP, "user agent": SECRET_UA}
SECRET_AUTHOR = {"author_email": SECRET_EMAIL, "ip_address": SECRET_IP, "user_agent": SECRET_UA}


def assert_no_secrets(response) -> str:
    """The raw body and the headers hold none of the private values; returns the body."""
    text = response.content.decode()
    headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
    for what, secret in SECRETS.items():
        assert secret not in text, f"the {what} is in the body of {response.request['PATH_INFO']}"
        assert secret.lower() not in text.lower(), f"the {what} is in the body (any case)"
        assert secret not in headers, f"the {what} is in the headers"
    return text


def comment_ids(tree: list[dict]) -> list[int]:
    found: list[int] = []
    for comment in tree:
        found.append(comment["id"])
        found.extend(comment_ids(comment["replies"]))
    return found


def every_list_page(api, article, **params) -> list:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    url: str | None = f"/api/v1/articles/{article.slug}/comments/?{query}"
    responses = []
    while url is not None:
        response = api.get(url)
        assert response.status_code == 200, response.content
        responses.append(response)
        url = response.json()["next"]
    return responses


@pytest.fixture
def scene():
    """An article whose comments all come from the same author with private details."""
    article = ArticleFactory()
    top = published_comment(article, author_name="Probe Author", **SECRET_AUTHOR)
    reply = published_comment(article, parent_id=top.pk, **SECRET_AUTHOR)
    gone = published_comment(article, **SECRET_AUTHOR)
    under_gone = published_comment(article, parent_id=gone.pk, **SECRET_AUTHOR)
    moderation.remove(gone, actor=moderation.AUTHOR)
    pending = submit_comment(article, **SECRET_AUTHOR)
    return {
        "article": article,
        "published": [top, reply, under_gone],
        "placeholder": gone,
        "pending": pending,
    }


# --- No email, IP address or user agent in any public response ----------------------------


@pytest.mark.parametrize("params", [{}, {"order": "newest"}, {"limit": 1}])
def test_the_comment_list_never_shows_private_details(api, scene, params):
    responses = every_list_page(api, scene["article"], **params)

    shown: list[int] = []
    for response in responses:
        assert_no_secrets(response)
        shown.extend(comment_ids(response.json()["results"]))
    expected = {c.pk for c in scene["published"]} | {scene["placeholder"].pk}
    assert set(shown) == expected


def test_a_published_comment_never_shows_private_details(api, scene):
    for comment in scene["published"]:
        response = api.get(f"/api/v1/comments/{comment.pk}/")

        assert response.status_code == 200
        assert response.json()["id"] == comment.pk
        assert_no_secrets(response)


def test_the_authors_own_view_never_shows_private_details(api, scene):
    for comment in [*scene["published"], scene["pending"], scene["placeholder"]]:
        token = tokens.make_edit_token(comment.pk)

        response = api.get(f"/api/v1/comments/{comment.pk}/", HTTP_X_COMMENT_TOKEN=token)

        assert response.status_code == 200
        assert response.json()["status"] == comment.status
        assert_no_secrets(response)


def test_the_submit_response_never_shows_private_details(api):
    article = ArticleFactory()

    response = api.post(
        f"/api/v1/articles/{article.slug}/comments/",
        {"author_name": "Probe Author", "author_email": SECRET_EMAIL, "body": "Hello."},
        format="json",
        REMOTE_ADDR=SECRET_IP,
        HTTP_USER_AGENT=SECRET_UA,
    )

    assert response.status_code == 202
    assert_no_secrets(response)
    stored = Comment.objects.get(pk=response.json()["id"])
    assert (stored.author_email, stored.ip_address, stored.user_agent) == (
        SECRET_EMAIL,
        SECRET_IP,
        SECRET_UA,
    )


def test_the_submit_response_to_a_reply_never_shows_the_parents_private_details(api, scene):
    parent = scene["published"][0]

    response = api.post(
        f"/api/v1/articles/{scene['article'].slug}/comments/",
        {
            "author_name": "Someone Else",
            "author_email": "else@example.org",
            "body": "A reply.",
            "parent": parent.pk,
        },
        format="json",
    )

    assert response.status_code == 202
    assert response.json()["parent"] == parent.pk
    assert_no_secrets(response)


def test_an_edit_response_never_shows_private_details(api, scene):
    comment = scene["published"][0]
    token = tokens.make_edit_token(comment.pk)

    response = api.patch(
        f"/api/v1/comments/{comment.pk}/",
        {"body": "Edited."},
        format="json",
        HTTP_X_COMMENT_TOKEN=token,
    )

    assert response.status_code == 202
    assert_no_secrets(response)


def test_refusals_never_show_private_details(api, scene):
    article = scene["article"]
    pending = scene["pending"]
    responses = [
        api.get(f"/api/v1/comments/{pending.pk}/"),
        api.patch(f"/api/v1/comments/{pending.pk}/", {"body": "x"}, format="json"),
        api.post(
            f"/api/v1/articles/{article.slug}/comments/",
            {"author_name": "X", "author_email": SECRET_EMAIL, "body": ""},
            format="json",
        ),
        api.post(
            f"/api/v1/articles/{article.slug}/comments/",
            {
                "author_name": "X",
                "author_email": "x@example.org",
                "body": "Hi",
                "parent": pending.pk,
            },
            format="json",
            REMOTE_ADDR=SECRET_IP,
            HTTP_USER_AGENT=SECRET_UA,
        ),
    ]

    assert [r.status_code for r in responses] == [404, 404, 400, 400]
    for response in responses:
        assert_no_secrets(response)


def test_the_article_endpoints_never_show_private_details(api, scene):
    slug = scene["article"].slug
    responses = {
        "list": api.get("/api/v1/articles/"),
        "detail": api.get(f"/api/v1/articles/{slug}/"),
        "counts": api.get(f"/api/v1/articles/counts/?slug={slug}"),
    }

    for response in responses.values():
        assert response.status_code == 200
        assert_no_secrets(response)
    assert responses["detail"].json()["comment_count"] == 3
    assert responses["counts"].json() == {slug: 3}
    (listed,) = [a for a in responses["list"].json()["results"] if a["slug"] == slug]
    assert listed["comment_count"] == 3


# --- Someone else's unpublished comment is never shown, nor counted ---------------------------


def unpublished_scene(article) -> dict[str, Comment]:
    """One comment of every unpublished status, top-level and as a reply to a published one."""
    host = published_comment(article, body="The published host comment.")
    made: dict[str, Comment] = {}
    for place, parent_id in (("top", None), ("reply", host.pk)):
        made[f"pending-{place}"] = submit_comment(
            article, parent_id=parent_id, body=f"MARKER-pending-{place}"
        )
        held = submit_comment(article, parent_id=parent_id, body=f"MARKER-held-{place}")
        moderation.hold(held, actor=moderation.SYSTEM, reason="test")
        made[f"held-{place}"] = held
        spam = submit_comment(article, parent_id=parent_id, body=f"MARKER-spam-{place}")
        moderation.mark_spam(spam, actor=moderation.SYSTEM)
        made[f"spam-{place}"] = spam
        rejected = submit_comment(article, parent_id=parent_id, body=f"MARKER-rejected-{place}")
        moderation.reject(rejected, actor=moderation.SYSTEM)
        made[f"rejected-{place}"] = rejected
        removed = published_comment(article, parent_id=parent_id, body=f"MARKER-removed-{place}")
        moderation.remove(removed, actor=moderation.SYSTEM)
        made[f"removed-{place}"] = removed
    made["host"] = host
    return made


@pytest.mark.parametrize("params", [{}, {"order": "newest"}, {"limit": 1}])
def test_someone_elses_unpublished_comments_are_never_in_the_list(api, params):
    article = ArticleFactory()
    made = unpublished_scene(article)
    host = made.pop("host")
    assert {c.status for c in made.values()} == {"pending", "held", "spam", "rejected", "removed"}

    responses = every_list_page(api, article, **params)

    shown: list[int] = []
    for response in responses:
        text = response.content.decode()
        assert "MARKER-" not in text
        assert response.json()["count"] == 1
        shown.extend(comment_ids(response.json()["results"]))
    assert shown == [host.pk]


def test_someone_elses_unpublished_comments_are_not_counted(api):
    article = ArticleFactory()
    unpublished_scene(article)

    detail = api.get(f"/api/v1/articles/{article.slug}/").json()
    counts = api.get(f"/api/v1/articles/counts/?slug={article.slug}").json()

    assert detail["comment_count"] == 1
    assert counts == {article.slug: 1}


def test_someone_elses_unpublished_comments_are_not_served_one_by_one(api):
    article = ArticleFactory()
    made = unpublished_scene(article)
    made.pop("host")
    missing = api.get("/api/v1/comments/999999999/")

    for comment in made.values():
        response = api.get(f"/api/v1/comments/{comment.pk}/")

        assert response.status_code == 404
        assert response.content == missing.content


def test_a_published_reply_under_a_hidden_comment_is_not_listed(api):
    article = ArticleFactory()
    hidden = published_comment(article, body="MARKER-hidden-parent")
    published_comment(article, parent_id=hidden.pk, body="MARKER-orphan-reply")
    moderation.mark_spam(hidden, actor=moderation.SYSTEM)

    response = api.get(f"/api/v1/articles/{article.slug}/comments/")

    assert response.status_code == 200
    assert "MARKER-" not in response.content.decode()
    assert response.json()["results"] == []


# --- The /privacy/ page ---------------------------------------------------------------------


def privacy_page(client) -> str:
    response = client.get("/privacy/")
    assert response.status_code == 200
    return response


def test_the_privacy_page_shows_the_configured_retention_periods(client, settings):
    settings.COMMENTS_IP_RETENTION_DAYS = 41
    settings.COMMENTS_DISCARD_RETENTION_DAYS = 17
    settings.COMMENTS_SPAM_RETENTION_DAYS = 123
    settings.COMMENTS_EDIT_WINDOW_SECONDS = 20 * 60

    text = privacy_page(client).content.decode()

    assert "After 41 days, the IP address of every comment is" in text
    assert "deleted\n  17 days after that verdict" in text
    assert "deleted 123\n  days after that decision" in text
    assert "for 20\nminutes" in text
    assert "first version" not in text


def test_the_privacy_page_explains_akismet_and_the_browser_storage(client):
    text = privacy_page(client).content.decode()

    for needle in (
        "Akismet",
        "Automattic",
        "weeks and ninety days",
        "localStorage",
        "edit token",
        "Idempotency-Key",
        "confirmation email",
        "marked as private",
        "never your email address, IP address or comment text",
    ):
        assert needle in text, needle


@pytest.mark.parametrize(
    ("contact", "expected"),
    [
        ("privacy@news.example.com", '<a href="mailto:privacy@news.example.com">'),
        ("mailto:privacy@news.example.com", '<a href="mailto:privacy@news.example.com">'),
        ("https://news.example.com/privacy", '<a href="https://news.example.com/privacy">'),
        ("The Editor, 1 Main St <b>", "contact\nThe Editor, 1 Main St &lt;b&gt;."),
    ],
)
def test_the_privacy_page_names_the_configured_contact(client, settings, contact, expected):
    settings.COMMENTS_PRIVACY_CONTACT = contact

    text = privacy_page(client).content.decode()

    assert expected in text
    assert "has not named a privacy contact" not in text


def test_the_privacy_page_without_a_contact_says_where_to_turn(client, settings):
    settings.COMMENTS_PRIVACY_CONTACT = ""

    text = privacy_page(client).content.decode()

    assert "This site has not named a privacy contact here" in text
    assert "mailto:" not in text


def test_the_privacy_page_has_the_export_and_erase_form(client):
    text = privacy_page(client).content.decode()

    assert 'id="personal-data-form" method="post" action="/api/v1/personal-data/requests/"' in text
    assert 'type="email" id="personal-data-email" name="email" required' in text
    assert 'name="action" value="export" checked' in text
    assert 'name="action" value="erase"' in text
    assert 'role="status"' in text


def test_the_privacy_page_runs_no_inline_script_under_its_policy(client):
    import re
    from pathlib import Path

    from django.contrib.staticfiles import finders

    from comments_project.middleware import ContentSecurityPolicyMiddleware

    response = privacy_page(client)
    text = response.content.decode()

    assert response["Content-Security-Policy"] == ContentSecurityPolicyMiddleware.POLICY
    assert "script-src 'self'" in response["Content-Security-Policy"]
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", text, flags=re.S)
    assert scripts == [(' src="/static/comments/privacy.js" defer', "")]
    assert not re.search(r"\son[a-z]+\s*=", text), "an inline event handler"
    assert "javascript:" not in text
    script = finders.find("comments/privacy.js")
    assert script is not None
    source = Path(script).read_text(encoding="utf-8")
    assert "/api/v1/personal-data/requests/" not in source  # the URL comes from the page
    assert 'getAttribute("data-endpoint")' in source
