"""Export and erasure of one person's data by e-mail address: the module, the
moderation API, the management commands and the console's page and actions."""

from __future__ import annotations

import json
import uuid
from io import StringIO

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.db import connection
from rest_framework.test import APIClient

from comments import moderation, personal_data, spam_check
from comments.models import (
    Comment,
    CommentEvent,
    NotificationAddress,
    ReplySubscription,
    WebhookDelivery,
)
from comments.rendering import render_body
from tests.factories import (
    ArticleFactory,
    UserFactory,
    WebhookEndpointFactory,
    canary_author,
    moderator_user,
    submit_through_api,
)

pytestmark = pytest.mark.django_db
S = Comment.Status
EXPORT = "/api/v1/moderation/personal-data/export/"
ERASE = "/api/v1/moderation/personal-data/erase/"
CONSOLE = "/admin/comments/comment/personal-data/"
CHANGELIST = "/admin/comments/comment/"


# --- a realistic history: two authors replying to each other ---------------------------


@pytest.fixture
def world(standin, django_capture_on_commit_callbacks):
    """Ada (the canary) and Bob comment on one article and reply to each other, through
    the real submit path and spam check; Ada also has a spam comment a moderator
    rejected with her address in the reason, a reply subscription, a webhook delivery
    with a private payload and entries in the admin's log."""
    article = ArticleFactory()
    ada, bob = canary_author("ada"), canary_author("bob")
    endpoint = WebhookEndpointFactory(include_private=True)
    client = APIClient()
    ada_first = submit_through_api(client, article, ada, body=f"First thoughts {ada['tag']}.")
    spam_check.check(ada_first)
    bob_reply = submit_through_api(client, article, bob, body="Bob answers.", parent=ada_first)
    spam_check.check(bob_reply)
    # The same person, her address typed in another case.
    ada_again = submit_through_api(
        client,
        article,
        {**ada, "author_email": ada["author_email"].upper()},
        body=f"Ada again {ada['tag']}.",
        parent=bob_reply,
    )
    spam_check.check(ada_again)
    ada_spam = submit_through_api(
        client, article, {**ada, "author_name": "akismet-guaranteed-spam"}, body="Buy now."
    )
    spam_check.check(ada_spam)
    moderator = moderator_user()
    moderation.reject(
        Comment.objects.get(pk=ada_spam),
        actor=moderation.Actor.for_user(moderator),
        reason=f"advertising by {ada['author_email']}",
    )
    comments = Comment.objects.in_bulk([ada_first, bob_reply, ada_again, ada_spam])
    address = NotificationAddress.objects.create(email=ada["author_email"])
    ReplySubscription.objects.create(comment=comments[ada_first], address=address)
    WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id=uuid.uuid4(),
        event="comment.published",
        comment=comments[ada_first],
        payload={
            "type": "comment.published",
            "data": {
                "comment": {
                    "id": ada_first,
                    "author_name": ada["author_name"],
                    "author_email": ada["author_email"],
                    "ip_address": ada["ip_address"],
                    "user_agent": ada["user_agent"],
                    "body": f"First thoughts {ada['tag']}.",
                }
            },
        },
        response_excerpt=f"received for {ada['author_email']}",
    )
    comment_type = ContentType.objects.get_for_model(Comment)
    for comment in (comments[ada_first], address):
        LogEntry.objects.create(
            user=moderator,
            content_type=ContentType.objects.get_for_model(type(comment)),
            object_id=str(comment.pk),
            object_repr=str(comment)[:200],
            action_flag=CHANGE,
            change_message=json.dumps([{"changed": {"fields": ["status"]}}]),
        )
    assert LogEntry.objects.filter(content_type=comment_type).exists()
    return {
        "article": article,
        "ada": ada,
        "bob": bob,
        "ada_ids": {ada_first, ada_again, ada_spam},
        "ada_first": ada_first,
        "ada_again": ada_again,
        "bob_reply": bob_reply,
        "moderator": moderator,
    }


def database_rows_containing(*needles: str) -> dict[str, list[str]]:
    """Every (table, column) of the whole database whose text holds a needle
    (ignoring case): every table, every column, cast to text."""
    found: dict[str, list[str]] = {}
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            columns = [
                column.name
                for column in connection.introspection.get_table_description(cursor, table)
            ]
            for needle in needles:
                condition = " OR ".join(
                    f"LOWER(CAST({quote(column)} AS TEXT)) LIKE %s" for column in columns
                )
                cursor.execute(
                    f"SELECT * FROM {quote(table)} WHERE {condition}",  # noqa: S608 (names from introspection)
                    [f"%{needle.lower()}%"] * len(columns),
                )
                if cursor.fetchall():
                    found.setdefault(needle, []).append(table)
    return found


def public_page(client: APIClient, article) -> str:
    response = client.get(f"/api/v1/articles/{article.slug}/comments/?order=oldest")
    assert response.status_code == 200
    return response.content.decode()


# --- the export --------------------------------------------------------------------------


def test_the_export_holds_exactly_that_addresss_comments_whatever_the_case(world):
    ada = world["ada"]

    data = personal_data.export_for_email(ada["author_email"].upper())

    assert data["schema_version"] == personal_data.SCHEMA_VERSION
    assert data["generated_at"]
    assert {comment["id"] for comment in data["comments"]} == world["ada_ids"]
    first = next(c for c in data["comments"] if c["id"] == world["ada_first"])
    assert first["author_email"] == ada["author_email"]
    assert first["ip_address"] == ada["ip_address"]
    assert first["user_agent"] == ada["user_agent"]
    assert first["referrer"].startswith(world["article"].url)
    assert first["article"] == {
        "slug": world["article"].slug,
        "url": world["article"].url,
        "title": world["article"].title,
    }
    assert first["spam_check"]["akismet_verdict"] == "ham"
    assert first["spam_check"]["sent_to_akismet"]["comment_author_email"] == ada["author_email"]
    assert [event["to_status"] for event in first["history"]] == [S.PENDING, S.PUBLISHED]
    again = next(c for c in data["comments"] if c["id"] == world["ada_again"])
    assert again["parent_id"] == world["bob_reply"]
    (address,) = data["reply_notifications"]
    assert address["email"] == ada["author_email"]
    assert address["subscriptions"][0]["comment_id"] == world["ada_first"]


def test_the_export_holds_nothing_of_anyone_else(world):
    bob = world["bob"]

    text = json.dumps(personal_data.export_for_email(world["ada"]["author_email"]))

    for key in ("author_name", "author_email", "ip_address", "user_agent", "author_url"):
        assert bob[key].lower() not in text.lower(), key
    assert "Bob answers." not in text


def test_an_address_without_comments_exports_an_empty_record(db):
    data = personal_data.export_for_email("nobody@example.org")

    assert data["comments"] == []
    assert data["reply_notifications"] == []


# --- the erasure ---------------------------------------------------------------------------


def test_after_erasure_no_trace_of_the_address_ip_or_user_agent_is_left_anywhere(
    world, django_capture_on_commit_callbacks
):
    ada, bob = world["ada"], world["bob"]
    canaries = (ada["author_email"], ada["ip_address"], ada["user_agent"], ada["author_name"])
    # The scan finds the canaries before: it is looking in the right places.
    before = database_rows_containing(*canaries)
    assert set(before) == set(canaries)
    assert {"comments_comment", "comments_commentevent", "comments_webhookdelivery"} <= set(
        before[ada["author_email"]]
    )

    with django_capture_on_commit_callbacks(execute=True):
        result = personal_data.erase_email(
            ada["author_email"], actor=moderation.Actor.for_user(world["moderator"])
        )

    assert result.email_comments == 3
    assert database_rows_containing(*canaries, ada["tag"]) == {}
    # Bob's data is untouched.
    assert set(database_rows_containing(bob["author_email"], bob["ip_address"])) == {
        bob["author_email"],
        bob["ip_address"],
    }


def test_erasure_anonymises_in_place_and_replies_keep_their_place(world):
    ada = world["ada"]
    statuses = dict(Comment.objects.values_list("pk", "status"))

    personal_data.erase_email(ada["author_email"], actor=moderation.SYSTEM)

    first = Comment.objects.get(pk=world["ada_first"])
    assert first.author_name == "Anonymous"
    assert (first.author_email, first.author_url, first.user_agent, first.referrer) == ("",) * 4
    assert first.ip_address is None
    assert first.akismet_payload == {}
    assert (first.idempotency_key, first.idempotency_fingerprint) == ("", "")
    assert first.body == personal_data.REMOVED_TEXT
    assert first.body_html == render_body(personal_data.REMOVED_TEXT)
    assert first.erased_at is not None
    assert dict(Comment.objects.values_list("pk", "status")) == statuses
    bob_reply = Comment.objects.get(pk=world["bob_reply"])
    assert bob_reply.parent_id == first.pk
    assert bob_reply.author_email == world["bob"]["author_email"]
    assert Comment.objects.get(pk=world["ada_again"]).parent_id == bob_reply.pk


def test_the_public_page_no_longer_shows_the_name_or_text(
    world, django_capture_on_commit_callbacks
):
    ada, client = world["ada"], APIClient()
    page = public_page(client, world["article"])  # now cached
    assert ada["author_name"] in page
    assert f"First thoughts {ada['tag']}" in page

    with django_capture_on_commit_callbacks(execute=True):
        personal_data.erase_email(ada["author_email"], actor=moderation.SYSTEM)

    page = public_page(client, world["article"])
    assert ada["author_name"] not in page
    assert ada["tag"] not in page
    thread = json.loads(page)["results"][0]
    assert thread["id"] == world["ada_first"]
    assert thread["author_name"] == "Anonymous"
    assert "removed at the author" in thread["body_html"]
    assert thread["replies"][0]["id"] == world["bob_reply"]
    assert thread["replies"][0]["author_name"] == world["bob"]["author_name"]


def test_the_erasure_is_recorded_on_each_comment_without_the_address(world):
    ada, moderator = world["ada"], world["moderator"]

    personal_data.erase_email(ada["author_email"], actor=moderation.Actor.for_user(moderator))

    events = CommentEvent.objects.filter(reason="personal data erased")
    assert {event.comment_id for event in events} == world["ada_ids"]
    for event in events:
        assert event.from_status == event.to_status == event.comment.status
        assert event.actor_user == moderator
        assert event.actor_name == moderator.get_username()
        assert event.details == {"text_kept": False}
    assert not CommentEvent.objects.filter(reason__icontains=ada["author_email"]).exists()


def test_erasure_can_keep_the_text(world):
    ada = world["ada"]

    result = personal_data.erase_email(ada["author_email"], actor=moderation.SYSTEM, keep_text=True)

    first = Comment.objects.get(pk=world["ada_first"])
    assert result.text_kept is True
    assert first.body == f"First thoughts {ada['tag']}."
    assert first.author_name == "Anonymous"


def test_the_settings_choose_the_placeholder_name_and_whether_text_is_kept(world, settings):
    settings.COMMENTS_ERASED_NAME = "Former reader"
    settings.COMMENTS_ERASURE_KEEPS_TEXT = True

    personal_data.erase_email(world["ada"]["author_email"], actor=moderation.SYSTEM)

    first = Comment.objects.get(pk=world["ada_first"])
    assert (first.author_name, first.body) == (
        "Former reader",
        f"First thoughts {world['ada']['tag']}.",
    )


def test_erasure_deletes_notifications_and_scrubs_webhook_payloads_and_the_admin_log(world):
    ada = world["ada"]

    result = personal_data.erase_email(ada["author_email"], actor=moderation.SYSTEM)

    assert result.notification_addresses == 1
    assert result.reply_subscriptions == 1
    assert not NotificationAddress.objects.filter(email__iexact=ada["author_email"]).exists()
    delivery = WebhookDelivery.objects.filter(
        comment_id=world["ada_first"], response_excerpt=""
    ).first()
    comment = delivery.payload["data"]["comment"]
    assert comment["author_email"] is None
    assert comment["ip_address"] is None
    assert comment["user_agent"] is None
    assert comment["author_name"] == "Anonymous"
    assert comment["id"] == world["ada_first"]
    entry = LogEntry.objects.get(
        content_type=ContentType.objects.get_for_model(Comment), object_id=str(world["ada_first"])
    )
    assert entry.object_repr == f"#{world['ada_first']} by Anonymous (published)"


def test_a_second_erasure_finds_nothing(world):
    personal_data.erase_email(world["ada"]["author_email"], actor=moderation.SYSTEM)

    again = personal_data.erase_email(world["ada"]["author_email"], actor=moderation.SYSTEM)

    assert again.email_comments == 0
    assert CommentEvent.objects.filter(reason="personal data erased").count() == 3


# --- the moderation API ------------------------------------------------------------------


@pytest.fixture
def moderator_api() -> APIClient:
    client = APIClient()
    client.force_authenticate(moderator_user())
    return client


@pytest.mark.parametrize("url", [EXPORT, ERASE])
def test_the_api_refuses_anonymous_callers(api, url):
    response = api.post(url, {"email": "someone@example.org"}, format="json")

    assert response.status_code == 401


@pytest.mark.parametrize("url", [EXPORT, ERASE])
def test_the_api_refuses_users_who_may_not_moderate(api, url):
    api.force_authenticate(UserFactory(is_staff=True))

    response = api.post(url, {"email": "someone@example.org"}, format="json")

    assert response.status_code == 403


@pytest.mark.parametrize("url", [EXPORT, ERASE])
@pytest.mark.parametrize("body", [{}, {"email": "not an address"}, {"email": ["a@b.example"]}])
def test_the_api_names_the_email_field_when_it_is_bad(moderator_api, url, body):
    response = moderator_api.post(url, body, format="json")

    assert response.status_code == 400
    assert "email" in response.json()


def test_the_api_refuses_a_keep_text_that_is_not_a_boolean(moderator_api):
    response = moderator_api.post(
        ERASE, {"email": "a@example.org", "keep_text": "perhaps"}, format="json"
    )

    assert response.status_code == 400
    assert "keep_text" in response.json()


def test_the_api_exports_one_address(world, moderator_api):
    response = moderator_api.post(EXPORT, {"email": world["ada"]["author_email"]}, format="json")

    assert response.status_code == 200
    assert {comment["id"] for comment in response.json()["comments"]} == world["ada_ids"]
    assert response["Cache-Control"] == "no-store"


def test_the_api_erases_one_address_and_answers_the_counts(world, moderator_api):
    response = moderator_api.post(
        ERASE, {"email": world["ada"]["author_email"], "keep_text": True}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert body["email_comments"] == 3
    assert body["notification_addresses"] == 1
    assert body["text_kept"] is True
    assert not Comment.objects.filter(author_email__iexact=world["ada"]["author_email"]).exists()


def test_the_schema_describes_the_personal_data_endpoints():
    out = StringIO()
    call_command("spectacular", "--format=openapi-json", stdout=out)
    paths = json.loads(out.getvalue())["paths"]

    assert "200" in paths["/api/v1/moderation/personal-data/export/"]["post"]["responses"]
    assert "200" in paths["/api/v1/moderation/personal-data/erase/"]["post"]["responses"]
    assert "429" in paths["/api/v1/personal-data/requests/"]["post"]["responses"]


# --- the management commands -----------------------------------------------------------


def test_the_export_command_prints_json(world):
    out = StringIO()

    call_command("export_personal_data", world["ada"]["author_email"], stdout=out)

    assert {comment["id"] for comment in json.loads(out.getvalue())["comments"]} == world["ada_ids"]


def test_the_export_command_writes_a_file(world, tmp_path):
    target = tmp_path / "ada.json"

    call_command(
        "export_personal_data",
        world["ada"]["author_email"],
        output=str(target),
        stderr=StringIO(),
    )

    assert len(json.loads(target.read_text())["comments"]) == 3


def test_the_commands_refuse_a_bad_address(db):
    with pytest.raises(CommandError):
        call_command("export_personal_data", "not-an-address")
    with pytest.raises(CommandError):
        call_command("erase_personal_data", "not-an-address", "--yes")


def test_the_erase_command_asks_first_and_erases_nothing_without_yes(world, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda prompt: "no")

    with pytest.raises(CommandError):
        call_command("erase_personal_data", world["ada"]["author_email"], stdout=StringIO())

    assert Comment.objects.filter(author_email__iexact=world["ada"]["author_email"]).count() == 3


def test_the_erase_command_erases_after_confirmation_and_prints_counts(world, monkeypatch):
    prompts = []
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or "yes")
    out = StringIO()

    call_command("erase_personal_data", world["ada"]["author_email"], stdout=out)

    assert "3 comment(s)" in prompts[0]
    assert "email_comments: 3" in out.getvalue()
    first = Comment.objects.get(pk=world["ada_first"])
    assert first.body == personal_data.REMOVED_TEXT


def test_the_erase_command_with_yes_and_keep_text(world):
    out = StringIO()

    call_command(
        "erase_personal_data", world["ada"]["author_email"], "--yes", "--keep-text", stdout=out
    )

    assert "text_kept: True" in out.getvalue()
    first = Comment.objects.get(pk=world["ada_first"])
    assert (first.author_email, first.body) == ("", f"First thoughts {world['ada']['tag']}.")


# --- the console ---------------------------------------------------------------------------


@pytest.fixture
def moderator_console(client):
    client.force_login(moderator_user())
    return client


def test_the_changelist_links_to_the_personal_data_page(moderator_console):
    response = moderator_console.get(CHANGELIST)

    assert CONSOLE.encode() in response.content


def test_the_console_page_is_for_moderators_only(client):
    client.force_login(UserFactory(is_staff=True))

    assert client.get(CONSOLE).status_code == 403


def test_the_console_page_exports_an_address(world, moderator_console):
    response = moderator_console.get(CONSOLE)
    assert response.status_code == 200

    response = moderator_console.post(
        CONSOLE,
        {"email": world["ada"]["author_email"], "action": "export", "keep_text": "default"},
    )

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert {c["id"] for c in json.loads(response.content)["comments"]} == world["ada_ids"]


def test_the_console_page_names_a_bad_address(moderator_console):
    response = moderator_console.post(
        CONSOLE, {"email": "nope", "action": "erase", "keep_text": "default"}
    )

    assert response.status_code == 200
    assert response.context["form"].errors.keys() == {"email"}


def test_the_console_page_erases_only_after_confirmation(world, moderator_console):
    email = world["ada"]["author_email"]
    form = {"email": email, "action": "erase", "keep_text": "keep"}

    response = moderator_console.post(CONSOLE, form)

    assert response.status_code == 200
    assert b"Yes, erase" in response.content
    assert Comment.objects.filter(author_email__iexact=email).count() == 3

    response = moderator_console.post(CONSOLE, {**form, "confirm": "yes"})

    assert response.status_code == 302
    assert not Comment.objects.filter(author_email__iexact=email).exists()
    first = Comment.objects.get(pk=world["ada_first"])
    assert first.body.startswith("First thoughts")
    assert CommentEvent.objects.get(comment=first, reason="personal data erased").actor_name == (
        response.wsgi_request.user.get_username()
    )


def test_the_export_action_downloads_the_selected_authors_data(world, moderator_console):
    response = moderator_console.post(
        CHANGELIST,
        {
            "action": "export_authors_data",
            "_selected_action": [world["ada_first"], world["bob_reply"], world["ada_again"]],
        },
    )

    assert response.status_code == 200
    authors = json.loads(response.content)["authors"]
    assert sorted(author["email"].lower() for author in authors) == sorted(
        [world["ada"]["author_email"].lower(), world["bob"]["author_email"].lower()]
    )


def test_the_erase_action_asks_for_confirmation_then_erases(world, moderator_console):
    selected = {"action": "erase_authors_data", "_selected_action": [world["ada_again"]]}

    response = moderator_console.post(CHANGELIST, selected)

    assert response.status_code == 200
    assert b"Yes, erase" in response.content
    assert world["ada"]["author_email"].encode() in response.content
    assert Comment.objects.get(pk=world["ada_first"]).author_email

    response = moderator_console.post(
        CHANGELIST, {**selected, "post": "yes", "keep_text": "default"}
    )

    assert response.status_code == 302
    # Every comment of the author, not only the selected one.
    assert not Comment.objects.filter(author_email__iexact=world["ada"]["author_email"]).exists()
    assert Comment.objects.get(pk=world["bob_reply"]).author_email == world["bob"]["author_email"]


def test_plain_staff_are_not_offered_the_actions(client, world):
    from django.contrib.auth.models import Permission

    user = UserFactory(is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="comments", codename="view_comment")
    )
    client.force_login(user)

    response = client.post(
        CHANGELIST, {"action": "erase_authors_data", "_selected_action": [world["ada_first"]]}
    )

    assert Comment.objects.get(pk=world["ada_first"]).author_email
    assert b"erase_authors_data" not in client.get(CHANGELIST).content
    assert response.status_code in (200, 302)


def test_a_check_that_read_the_comment_before_erasure_does_not_write_its_data_back(
    standin, django_capture_on_commit_callbacks
):
    ada = canary_author("ada")
    comment_id = submit_through_api(APIClient(), ArticleFactory(), ada, body="Hello there.")
    # The check has loaded the comment and built its Akismet payload ...
    in_flight = Comment.objects.select_related("article").get(pk=comment_id)
    from comments import akismet_client

    payload = akismet_client.build_payload(in_flight)
    assert payload["comment_author_email"] == ada["author_email"]
    # ... when the author's data is erased.
    with django_capture_on_commit_callbacks(execute=True):
        personal_data.erase_email(ada["author_email"], actor=moderation.SYSTEM)

    stored = moderation.record_check_attempt(
        in_flight, {"check_attempts": 1, "akismet_payload": payload}, recheck=False
    )

    assert stored is False
    assert database_rows_containing(ada["author_email"], ada["ip_address"]) == {}


def test_no_cached_copy_of_the_erased_name_is_left_in_the_cache(
    world, django_capture_on_commit_callbacks
):
    """Invalidation alone leaves old entries unreachable but stored until they expire."""
    from comments.cache_store import RedisStore, store

    ada, client = world["ada"], APIClient()
    public_page(client, world["article"])
    client.get("/api/v1/comments/latest/")
    client.get(f"/feeds/articles/{world['article'].slug}.atom")
    cache = store()
    if isinstance(cache, RedisStore):
        keys = list(cache.client.scan_iter(match=cache.prefix + "page:*"))
        stored = b"".join(value or b"" for value in cache.client.mget(keys))
        assert ada["author_name"].encode() in stored

    with django_capture_on_commit_callbacks(execute=True):
        personal_data.erase_email(ada["author_email"], actor=moderation.SYSTEM)

    if isinstance(cache, RedisStore):
        keys = list(cache.client.scan_iter(match=cache.prefix + "*"))
        stored = b"".join(value or b"" for value in cache.client.mget(keys)) if keys else b""
        assert ada["author_name"].encode() not in stored
        assert ada["tag"].encode() not in stored
    else:  # the folder cache cannot list its keys: it is emptied
        assert cache.get_many(["page:" + world["article"].slug]) == [None]
    assert ada["author_name"] not in public_page(client, world["article"])
