"""S01–S04, S14: our XSS corpus through every write path, judged on every render path.

Write paths: the public submit (body, author_name, author_url, author_email), the
author's edit (PATCH with the edit token), and the moderation module's edit and a
moderator's decision reason. Render paths: the submit response, the public detail
and list JSON, the moderation API JSON, and the Django admin changelist and change
page (parsed whole, against a baseline page of a harmless comment).

Each check parses the HTML we actually output (html.parser) and names what is
wrong; see tests/xss_payloads.py for the corpus and the oracle.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.utils.http import urlencode
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from comments import moderation
from comments.models import Comment
from comments.rendering import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, LINK_REL, render_body
from tests import xss_payloads as corpus
from tests.factories import ArticleFactory, UserFactory

pytestmark = pytest.mark.django_db

NAME_MAX = 100
BODY_MAX = 10_000
URL_MAX = 200
EMAIL = "xss-corpus@example.com"
SAFE_URL = "https://ok.example/profile"
BENIGN_BODY = "A harmless remark with **emphasis**, `code` and a link: https://ok.example/page"

# Spread over the whole corpus, plus every hand-written shape: the admin sample.
ADMIN_SAMPLE = list(
    dict.fromkeys(
        [
            *corpus.PAYLOADS[: len(corpus.HAND_WRITTEN) : 6],
            *corpus.PAYLOADS[:: len(corpus.PAYLOADS) // 30],
        ]
    )
)
EMAIL_PAYLOADS = (
    '"<svg/onload=alert(1)>"@example.com',
    '"\\"onmouseover=alert(1)//"@example.com',
    "x+<script>@example.com",
    'x@example.com"><img src=x onerror=alert(1)>',
    "javascript:alert(1)@example.com",
)


@pytest.fixture(autouse=True)
def _abuse_checks_off(settings):
    """The corpus posts hundreds of comments from one address with repeated texts."""
    settings.COMMENTS_THROTTLE_SUBMIT = "0"
    settings.COMMENTS_THROTTLE_READ = "0"
    settings.COMMENTS_FLOOD_SECONDS = 0
    settings.COMMENTS_MIN_SUBMIT_SECONDS = 0
    settings.COMMENTS_DUPLICATE_WINDOW_SECONDS = 0
    # Users are created per test; the production hasher would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def moderator():
    user = UserFactory()
    user.user_permissions.add(
        Permission.objects.get(codename="can_moderate", content_type__app_label="comments")
    )
    return user


@pytest.fixture
def mod_api(moderator) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=moderator).key}")
    return client


@pytest.fixture
def superuser_client(client):
    user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(user)
    client.user = user
    return client


# --- Expectations -------------------------------------------------------------------------


def stored_text(value: str) -> str:
    """What DRF stores for a text field: surrounding whitespace trimmed."""
    return value.strip()


def text_refusal(value: str, max_length: int) -> bool:
    """Whether the API must refuse this text with a 400 (never truncate it)."""
    text = stored_text(value)
    return not text or len(text) > max_length or "\x00" in text


def assert_refused(response, field: str) -> None:
    assert response.status_code == 400, (response.status_code, response.content[:500])
    assert field in response.json(), response.json()


def assert_safe_body_html(html: str, where: str) -> None:
    problems = corpus.body_html_problems(html, ALLOWED_TAGS, ALLOWED_ATTRIBUTES, LINK_REL)
    assert not problems, f"{where}: {problems}\nbody_html={html!r}"


def assert_author_url(value: str | None, submitted: str | None, where: str) -> None:
    """Null, or exactly the submitted text, and then an absolute http(s) URL."""
    if not submitted:
        assert value in (None, ""), f"{where}: author_url={value!r}"
        return
    assert value == stored_text(submitted), f"{where}: author_url={value!r}"
    assert corpus.urlsplit(value).scheme.lower() in ("http", "https"), f"{where}: {value!r}"
    assert not corpus.dangerous_url(value), f"{where}: {value!r}"


def assert_public_comment(data: dict, comment: Comment, where: str, url: str | None) -> None:
    assert data["id"] == comment.pk
    assert_safe_body_html(data["body_html"], where)
    assert data["body_html"] == comment.body_html, where
    assert data["author_name"] == comment.author_name, f"{where}: name not returned as text"
    assert_author_url(data["author_url"], url, where)


def assert_moderation_comment(data: dict, comment: Comment, where: str, url: str | None) -> None:
    assert data["body"] == comment.body, f"{where}: body not returned as text"
    assert_safe_body_html(data["body_html"], where)
    assert data["author_name"] == comment.author_name, where
    assert_author_url(data["author_url"] or None, url, where)


def assert_rendered_at_write(comment: Comment, body: str, where: str) -> None:
    """body_html is rendered when the body is written, from exactly that body."""
    comment.refresh_from_db()
    assert comment.body == body, where
    assert comment.body_html == render_body(comment.body), f"{where}: body_html is stale"
    assert_safe_body_html(comment.body_html, where)


def comments_url(article) -> str:
    return f"/api/v1/articles/{article.slug}/comments/"


def publish(comment: Comment) -> None:
    moderation.publish(comment, actor=moderation.SPAM_CHECK, reason="akismet_ham")


def submit(api, article, **fields):
    data = {"author_name": "Reader", "author_email": EMAIL, "body": BENIGN_BODY, **fields}
    return api.post(comments_url(article), data, format="json")


# --- The API: every payload through every write path -----------------------------------


@pytest.mark.parametrize("payload", corpus.PAYLOADS)
def test_S01_S04_payload_through_submit_author_edit_and_moderator_edit(
    payload, api, mod_api, moderator, article
):
    # 1. Submit, with the payload as the body and (when it fits) the author's name.
    body_refused = text_refusal(payload, BODY_MAX)
    name_refused = text_refusal(payload, NAME_MAX)
    name = "Reader" if name_refused else payload
    response = submit(api, article, body=payload, author_name=name)
    if body_refused:
        assert_refused(response, "body")
    else:
        assert response.status_code == 202, response.content[:500]
        data = response.json()
        comment = Comment.objects.get(pk=data["id"])
        assert_rendered_at_write(comment, stored_text(payload), "submit")
        assert comment.author_name == stored_text(name)
        assert_public_comment(data, comment, "submit response", None)
        publish(comment)
        detail = api.get(f"/api/v1/comments/{comment.pk}/")
        assert detail.status_code == 200
        assert_public_comment(detail.json(), comment, "public detail", None)
        mod = mod_api.get(f"/api/v1/moderation/comments/{comment.pk}/")
        assert mod.status_code == 200
        assert_moderation_comment(mod.json(), comment, "moderation detail", None)
    if name_refused:
        assert_refused(submit(api, article, author_name=payload), "author_name")

    # 2. The author's edit, with the edit token.
    seeded = submit(api, article, body="A first version, edited next.")
    assert seeded.status_code == 202
    seed = seeded.json()
    edited = api.patch(
        f"/api/v1/comments/{seed['id']}/",
        {"body": payload},
        format="json",
        HTTP_X_COMMENT_TOKEN=seed["edit_token"],
    )
    comment = Comment.objects.get(pk=seed["id"])
    if body_refused:
        assert_refused(edited, "body")
        return
    assert edited.status_code == 202, edited.content[:500]
    assert_rendered_at_write(comment, stored_text(payload), "author edit")
    assert_public_comment(edited.json(), comment, "author edit response", None)
    publish(comment)
    assert_public_comment(
        api.get(f"/api/v1/comments/{comment.pk}/").json(), comment, "detail after edit", None
    )

    # 3. The moderation module's edit (first to something else, so a stale body_html shows).
    actor = moderation.Actor.for_user(moderator)
    moderation.edit(comment, body="Interim text.", actor=actor)
    moderation.edit(comment, body=payload, actor=actor)
    assert_rendered_at_write(comment, payload, "moderator edit")
    publish(comment)
    assert_public_comment(
        api.get(f"/api/v1/comments/{comment.pk}/").json(),
        comment,
        "detail after moderator edit",
        None,
    )
    assert_moderation_comment(
        mod_api.get(f"/api/v1/moderation/comments/{comment.pk}/").json(),
        comment,
        "moderation detail after moderator edit",
        None,
    )


@pytest.mark.parametrize("url", corpus.AUTHOR_URL_PAYLOADS)
def test_S01_author_url_is_refused_or_an_http_url_as_text(url, api, mod_api, article):
    response = submit(api, article, author_url=url)
    text = stored_text(url)
    acceptable = (
        text
        and len(text) <= URL_MAX
        and corpus.urlsplit(text).scheme.lower() in ("http", "https")
        and not corpus.dangerous_url(text)
    )
    if response.status_code == 400:
        assert "author_url" in response.json(), response.json()
        return
    assert acceptable, f"author_url {url!r} accepted: {response.content[:300]!r}"
    assert response.status_code == 202, response.content[:500]
    comment = Comment.objects.get(pk=response.json()["id"])
    assert_public_comment(response.json(), comment, "submit response", url)
    publish(comment)
    detail = api.get(f"/api/v1/comments/{comment.pk}/").json()
    assert_public_comment(detail, comment, "public detail", url)
    mod = mod_api.get(f"/api/v1/moderation/comments/{comment.pk}/").json()
    assert_moderation_comment(mod, comment, "moderation detail", url)


@pytest.mark.parametrize("url", corpus.AUTHOR_URLS)
def test_S01_an_accepted_author_url_has_nothing_to_break_out_of_an_href_with(url, api, article):
    """Defence in depth (the Isso 0.14 bug): quotes, angle brackets, spaces, controls
    and invisible characters are refused, or stored percent-encoded, never stored raw."""
    response = submit(api, article, author_url=url)
    if response.status_code == 400:
        assert "author_url" in response.json()
        return
    assert response.status_code == 202, response.content[:300]
    stored = Comment.objects.get(pk=response.json()["id"]).author_url
    assert not corpus.plain_url_problems(stored), corpus.plain_url_problems(stored)


@pytest.mark.parametrize("email", EMAIL_PAYLOADS)
def test_S01_odd_author_emails_are_refused_or_kept_out_of_public_output(email, api, article):
    response = submit(api, article, author_email=email, body=f"Email case {email!r}")
    if response.status_code == 400:
        assert "author_email" in response.json()
        return
    assert response.status_code == 202
    assert email.lower() not in response.content.decode()


def test_the_public_and_moderation_lists_of_the_whole_corpus_are_safe(api, mod_api):
    article = ArticleFactory()
    created = {}
    for index, payload in enumerate(corpus.PAYLOADS):
        if text_refusal(payload, BODY_MAX):
            continue
        name = "Reader" if text_refusal(payload, NAME_MAX) else payload
        comment = moderation.submit(
            article=article,
            author_name=stored_text(name),
            author_email=f"list-{index}@example.com",
            body=stored_text(payload),
        )
        publish(comment)
        created[comment.pk] = comment
    seen: set[int] = set()
    url: str | None = f"{comments_url(article)}?limit=100"
    for _page in range(len(created) // 100 + 2):  # bounded
        if not url:
            break
        response = api.get(url)
        assert response.status_code == 200
        for item in response.json()["results"]:
            assert_public_comment(item, created[item["id"]], f"public list #{item['id']}", None)
            seen.add(item["id"])
        url = response.json()["next"]
    assert seen == set(created)
    seen = set()
    for page in range(1, len(created) // 200 + 2):
        response = mod_api.get(
            "/api/v1/moderation/comments/",
            {"article": article.slug, "page_size": 200, "page": page},
        )
        assert response.status_code == 200
        for item in response.json()["results"]:
            comment = created[item["id"]]
            assert_moderation_comment(item, comment, f"moderation list #{item['id']}", None)
            seen.add(item["id"])
    assert seen == set(created)


# --- The admin console ---------------------------------------------------------------------


def admin_change_url(comment: Comment) -> str:
    return f"/admin/comments/comment/{comment.pk}/change/"


CHANGELIST = "/admin/comments/comment/?status=all"


def author_page_url(email: str) -> str:
    return "/admin/comments/comment/author/?" + urlencode({"email": email})


def page_problems(html: str, baseline_html: str, must_show: list[str]) -> list[str]:
    """What a console page with our payloads has that the harmless baseline page has not.

    - no event handler, srcdoc, script in style or dangerous URL on any element;
    - no <script> that the baseline page does not have (the admin's own scripts);
    - every kind of element (tag + attribute names) is in the baseline page, or is
      body_html's allowlisted markup (links then carry our rel);
    - the texts in `must_show` (names, e-mails) appear as text.
    """
    page, base = corpus.parse(html), corpus.parse(baseline_html)
    base_kinds = {(e.tag, e.attr_names()) for e in base.elements}
    base_problems = {p for e in base.elements for p in corpus.attribute_problems(e)}
    base_scripts = set(base.scripts)
    problems = []
    for element in page.elements:
        problems.extend(p for p in corpus.attribute_problems(element) if p not in base_problems)
        if (element.tag, element.attr_names()) in base_kinds:
            continue
        allowed = set(ALLOWED_ATTRIBUTES.get(element.tag, ())) | set(
            ALLOWED_ATTRIBUTES.get("*", ())
        )
        if element.tag == "a":
            allowed.add("rel")
        if element.tag not in ALLOWED_TAGS or not set(element.attr_names()) <= allowed:
            problems.append(f"new element on the page: <{element.tag} {element.attrs!r}>")
        elif element.tag == "a" and set((dict(element.attrs).get("rel") or "").split()) != set(
            LINK_REL.split()
        ):
            problems.append(f"link without rel={LINK_REL!r}: {element.attrs!r}")
    for script in page.scripts:
        if script not in base_scripts:
            problems.append(f"script not on the baseline page: {script!r}")
    flat = "".join(ch for ch in page.joined_text if not ch.isspace())
    for text in must_show:
        if "".join(ch for ch in text if not ch.isspace()) not in flat:
            problems.append(f"{text!r} does not appear as text")
    return problems


def admin_comment(article, payload: str, index: int, moderator) -> Comment:
    name = "Reader" if text_refusal(payload, NAME_MAX) else stored_text(payload)
    comment = moderation.submit(
        article=article,
        author_name=name,
        author_email=f"admin-{index}@example.com",
        author_url=corpus.AUTHOR_URLS[index % 5],  # accepted URLs with quotes/markup
        body=stored_text(payload),
        ip_address="203.0.113.9",
        user_agent=payload[:500],
        referrer=payload[:500],
    )
    # A moderator's reason is shown in the history and the changelist's reason column.
    moderation.hold(comment, actor=moderation.Actor.for_user(moderator), reason=payload[:200])
    return comment


@pytest.fixture
def admin_baseline(superuser_client):
    article = ArticleFactory()
    baseline = moderation.submit(
        article=article,
        author_name="Harmless Reader",
        author_email="harmless@example.com",
        author_url=SAFE_URL,
        body=BENIGN_BODY,
        ip_address="203.0.113.8",
        user_agent="Mozilla/5.0",
        referrer="https://ok.example/",
    )
    moderation.hold(
        baseline, actor=moderation.Actor.for_user(superuser_client.user), reason="looked at it"
    )
    pages = {
        "change": superuser_client.get(admin_change_url(baseline)),
        "changelist": superuser_client.get(CHANGELIST),
        "author": superuser_client.get(author_page_url(baseline.author_email)),
    }
    assert all(page.status_code == 200 for page in pages.values())
    return article, {name: page.content.decode() for name, page in pages.items()}


def test_the_console_baseline_pages_are_clean(admin_baseline):
    _, pages = admin_baseline
    for html in pages.values():
        page = corpus.parse(html)
        assert not [p for e in page.elements for p in corpus.attribute_problems(e)]


def console_pages(comment: Comment) -> dict[str, str]:
    return {
        "change": admin_change_url(comment),
        "changelist": CHANGELIST,
        "author": author_page_url(comment.author_email),
    }


# Text the API refuses (NUL) never reaches the console, so it is not sampled there.
@pytest.mark.parametrize(
    "payload", [payload for payload in ADMIN_SAMPLE if not text_refusal(payload, BODY_MAX)]
)
def test_S01_console_change_page_and_changelist_show_the_payload_as_text(
    payload, superuser_client, admin_baseline
):
    article, baselines = admin_baseline
    comment = admin_comment(article, payload, ADMIN_SAMPLE.index(payload), superuser_client.user)
    for name, url in console_pages(comment).items():
        response = superuser_client.get(url)
        assert response.status_code == 200, (name, response.status_code)
        problems = page_problems(response.content.decode(), baselines[name], [comment.author_name])
        assert not problems, (name, problems)


@pytest.mark.parametrize("email", EMAIL_PAYLOADS)
def test_S01_console_shows_odd_author_emails_as_text(email, superuser_client, admin_baseline):
    article, baselines = admin_baseline
    comment = moderation.submit(
        article=article, author_name="Reader", author_email=email, body="Email case."
    )
    for name, url in console_pages(comment).items():
        response = superuser_client.get(url)
        assert response.status_code == 200, (name, response.status_code)
        problems = page_problems(response.content.decode(), baselines[name], [email])
        assert not problems, (name, problems)


def test_S01_console_changelist_with_the_whole_corpus_on_one_page(
    superuser_client, admin_baseline, monkeypatch
):
    article, baselines = admin_baseline
    names = []
    for index, payload in enumerate(corpus.PAYLOADS):
        if not text_refusal(payload, BODY_MAX):
            names.append(admin_comment(article, payload, index, superuser_client.user).author_name)
    model_admin = admin.site._registry[Comment]
    monkeypatch.setattr(model_admin, "list_per_page", len(names) + 10)
    response = superuser_client.get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    problems = page_problems(html, baselines["changelist"], sorted(set(names)))
    assert not problems, problems[:20]
