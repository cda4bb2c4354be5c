"""The moderation console in the admin: the queue, bulk actions, one comment's page,
the per-author page and the moderation rules, as a moderator and as plain staff."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from comments import moderation, spam_check, tasks
from comments.models import Comment, CommentEvent, HoldReason, ModerationRules
from comments.moderation import CheckOutcome
from tests.factories import (
    ArticleFactory,
    UserFactory,
    held_comment,
    moderator_user,
    published_comment,
    submit_comment,
)

pytestmark = pytest.mark.django_db
S = Comment.Status
CHANGELIST = "/admin/comments/comment/"
RULES = "/admin/comments/moderationrules/"


@pytest.fixture
def moderator(client):
    client.force_login(moderator_user(username="mod-mia"))
    return client


@pytest.fixture
def staff(client):
    """Staff who may look at comments but not moderate them."""
    user = UserFactory(is_staff=True, username="staff-sam")
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="comments", codename="view_comment")
    )
    client.force_login(user)
    return client


def comment_in(status: str, **overrides) -> Comment:
    """A comment brought into `status` through the moderation module."""
    if status == S.PUBLISHED:
        return published_comment(**overrides)
    if status == S.HELD:
        return held_comment(**overrides)
    comment = submit_comment(**overrides)
    if status == S.SPAM:
        moderation.mark_spam(comment, actor=moderation.SYSTEM)
    elif status == S.REJECTED:
        moderation.reject(comment, actor=moderation.SYSTEM)
    elif status == S.REMOVED:
        moderation.remove(comment, actor=moderation.SYSTEM)
    return comment


def checked(comment: Comment, action: str, reason: str, details=None, **fields) -> Comment:
    """Record a spam check outcome (verdict fields included) as the worker would."""
    hold_reason = reason if action == "hold" else ""
    outcome = CheckOutcome(action, reason, hold_reason, fields=fields, details=details or {})
    moderation.record_check(comment, outcome)
    comment.refresh_from_db()
    return comment


def discarded_spam(**overrides) -> Comment:
    comment = submit_comment(**overrides)
    return checked(
        comment, "mark_spam", "akismet_discard", akismet_verdict="discard", discarded=True
    )


def listed(response) -> list[str]:
    return [comment.author_name for comment in response.context["cl"].result_list]


def run_action(client, action: str, comments: list[Comment], url: str = CHANGELIST):
    data = {"action": action, "_selected_action": [c.pk for c in comments], "index": 0}
    return client.post(url, data, follow=True)


def messages_of(response) -> list[tuple[str, str]]:
    return [(message.level_tag, message.message) for message in response.context["messages"]]


def refresh(*comments: Comment) -> list[str]:
    for comment in comments:
        comment.refresh_from_db()
    return [comment.status for comment in comments]


def events_of(comment: Comment) -> int:
    return CommentEvent.objects.filter(comment=comment).count()


# --- The queue ----------------------------------------------------------------------------


def test_the_changelist_opens_on_the_held_queue_oldest_first(moderator):
    first = submit_comment(author_name="First Held")
    second = submit_comment(author_name="Second Held")
    # Held in the opposite order: the queue follows submission, not the hold.
    moderation.hold(second, actor=moderation.SYSTEM)
    moderation.hold(first, actor=moderation.SYSTEM)
    comment_in(S.PUBLISHED, author_name="Pat Published")
    comment_in(S.PENDING, author_name="Penny Pending")
    discarded_spam(author_name="Dora Discarded")

    response = moderator.get(CHANGELIST)

    assert response.status_code == 200
    assert listed(response) == ["First Held", "Second Held"]
    content = response.content.decode()
    assert "Pat Published" not in content
    assert "Dora Discarded" not in content


def test_the_counts_per_status_link_to_each_status(moderator):
    held_comment()
    held_comment()
    comment_in(S.PUBLISHED)
    comment_in(S.SPAM)
    discarded_spam()

    response = moderator.get(CHANGELIST)

    tabs = {tab["label"]: (tab["count"], tab["url"]) for tab in response.context["status_tabs"]}
    assert tabs["Held"] == (2, f"{CHANGELIST}?status=held")
    assert tabs["Published"] == (1, f"{CHANGELIST}?status=published")
    assert tabs["Spam"] == (1, f"{CHANGELIST}?status=spam")
    assert tabs["Discarded spam"] == (1, f"{CHANGELIST}?status=discarded")
    assert tabs["All"] == (4, f"{CHANGELIST}?status=all")
    assert tabs["Pending"][0] == 0
    content = response.content.decode()
    assert f'href="{CHANGELIST}?status=published"' in content


@pytest.mark.parametrize("parameter", ["status", "status__exact"])
def test_another_status_filter_replaces_the_default(moderator, parameter):
    comment_in(S.HELD, author_name="Hal Held")
    comment_in(S.PUBLISHED, author_name="Pat Published")

    response = moderator.get(CHANGELIST, {parameter: "published"})

    assert listed(response) == ["Pat Published"]


def test_all_shows_every_status_except_discarded_spam(moderator):
    for status in S.values:
        comment_in(status, author_name=f"Author {status}")
    discarded_spam(author_name="Dora Discarded")

    response = moderator.get(CHANGELIST, {"status": "all"})

    assert sorted(listed(response)) == sorted(f"Author {status}" for status in S.values)


def test_discarded_spam_shows_only_when_asked_for(moderator):
    comment_in(S.SPAM, author_name="Sam Spam")
    discarded_spam(author_name="Dora Discarded")

    assert listed(moderator.get(CHANGELIST, {"status": "spam"})) == ["Sam Spam"]
    assert listed(moderator.get(CHANGELIST, {"status": "discarded"})) == ["Dora Discarded"]


def test_the_filters_can_show_their_counts(moderator):
    comment_in(S.HELD)
    comment_in(S.SPAM)

    response = moderator.get(CHANGELIST, {"_facets": "1"})

    assert response.status_code == 200
    assert "Spam (1)" in response.content.decode()


def test_an_unknown_status_is_refused_like_any_bad_filter(moderator):
    response = moderator.get(CHANGELIST, {"status": "nonsense"})

    assert response.status_code == 302
    assert "e=1" in response["Location"]


@pytest.fixture
def three_held():
    """Three held comments that differ in everything the filters and search look at."""
    article_a = ArticleFactory(title="Bridge vote")
    article_b = ArticleFactory(title="Harbour festival")
    links = checked(
        submit_comment(
            article_a,
            author_name="Lynn Links",
            author_email="lynn@example.org",
            ip_address="198.51.100.1",
            body="See https://a.example and https://b.example",
        ),
        "hold",
        HoldReason.TOO_MANY_LINKS,
        akismet_verdict="ham",
    )
    checked(
        submit_comment(
            article_b,
            author_name="Wes Word",
            author_email="wes@example.net",
            ip_address="198.51.100.2",
            body="The kettle is a word to watch.",
        ),
        "hold",
        HoldReason.MODERATION_WORD,
        akismet_verdict="spam",
    )
    held_comment(article_a, author_name="Nora Nocheck", author_email="nora@example.com")
    return {"links": links, "article_b": article_b}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"held_reason__exact": "too_many_links"}, ["Lynn Links"]),
        ({"decision_reason": "moderation_word"}, ["Wes Word"]),
        ({"verdict": "spam"}, ["Wes Word"]),
        ({"verdict": "none"}, ["Nora Nocheck"]),
        ({"q": "lynn@example.org"}, ["Lynn Links"]),
        ({"q": "198.51.100.2"}, ["Wes Word"]),
        ({"q": "kettle"}, ["Wes Word"]),
        ({"q": "Nora"}, ["Nora Nocheck"]),
    ],
)
def test_the_filters_and_search_narrow_the_queue(moderator, three_held, query, expected):
    response = moderator.get(CHANGELIST, query)

    assert response.status_code == 200
    assert listed(response) == expected


def test_the_article_and_date_filters_narrow_the_queue(moderator, three_held):
    old = three_held["links"]
    Comment.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=40))
    # As the filter's own "Past 7 days" link writes it.
    since = str(timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(7))

    by_article = moderator.get(CHANGELIST, {"article__id__exact": three_held["article_b"].pk})
    by_date = moderator.get(CHANGELIST, {"created_at__gte": since})

    assert listed(by_article) == ["Wes Word"]
    assert sorted(listed(by_date)) == ["Nora Nocheck", "Wes Word"]


def test_the_columns_show_reason_verdict_and_age(moderator, three_held):
    links = three_held["links"]
    ago = timezone.now() - dt.timedelta(hours=3, minutes=5)
    Comment.objects.filter(pk=links.pk).update(created_at=ago)

    content = moderator.get(CHANGELIST).content.decode()

    assert "Contains too many links" in content
    assert "Contains a moderation word" in content
    assert "Bridge vote" in content
    assert ">3 h<" in content
    assert "lynn@example.org" in content
    assert "198.51.100.1" in content
    assert "/admin/comments/comment/author/?email=lynn%40example.org" in content


def test_a_decided_comment_shows_who_decided_as_its_reason(moderator):
    comment = held_comment(author_name="Hal Held")
    moderation.reject(comment, actor=moderation.Actor.for_user(UserFactory(username="mod-max")))

    content = moderator.get(CHANGELIST, {"status": "rejected"}).content.decode()

    assert "by mod-max" in content


def test_plain_staff_see_the_queue_without_email_or_ip(staff, three_held):
    response = staff.get(CHANGELIST)

    assert response.status_code == 200
    content = response.content.decode()
    assert "Lynn Links" in content
    assert "lynn@example.org" not in content
    assert "198.51.100.1" not in content
    assert "/author/" not in content
    assert listed(staff.get(CHANGELIST, {"q": "lynn@example.org"})) == []


def test_staff_without_the_view_permission_get_no_console(client):
    client.force_login(UserFactory(is_staff=True))

    assert client.get(CHANGELIST).status_code == 403


# --- Bulk actions ------------------------------------------------------------------------

ACTION_CASES = {
    # action: (legal source states, illegal source states, target)
    "publish": ([S.HELD, S.REJECTED], [S.PUBLISHED, S.REMOVED], S.PUBLISHED),
    "reject": ([S.HELD, S.PUBLISHED], [S.REJECTED, S.REMOVED], S.REJECTED),
    "mark_spam": ([S.HELD, S.PUBLISHED], [S.SPAM, S.REMOVED], S.SPAM),
    "not_spam": ([S.SPAM], [S.HELD, S.PUBLISHED], S.PUBLISHED),
}
DONE = {
    "publish": "published",
    "reject": "rejected",
    "mark_spam": "marked as spam",
    "not_spam": "published as not spam",
}


@pytest.mark.parametrize("action", sorted(ACTION_CASES))
def test_a_bulk_action_applies_the_legal_transitions_and_reports_the_others(moderator, action):
    legal_states, illegal_states, target = ACTION_CASES[action]
    legal = [comment_in(state, author_name=f"Legal {state}") for state in legal_states]
    illegal = [comment_in(state, author_name=f"Illegal {state}") for state in illegal_states]
    events_before = {c.pk: events_of(c) for c in legal + illegal}

    response = run_action(moderator, action, legal + illegal, f"{CHANGELIST}?status=all")

    assert response.status_code == 200
    assert refresh(*legal) == [target] * len(legal)
    assert refresh(*illegal) == list(illegal_states)
    for comment in legal:
        assert events_of(comment) == events_before[comment.pk] + 1
        event = CommentEvent.objects.filter(comment=comment).last()
        assert (event.to_status, event.actor_name) == (target, "mod-mia")
        assert event.actor_user is not None
    for comment in illegal:
        assert events_of(comment) == events_before[comment.pk]
    messages = messages_of(response)
    noun = "comment" if len(legal) == 1 else "comments"
    assert ("success", f"{len(legal)} {noun} {DONE[action]}.") in messages
    warnings = [text for level, text in messages if level == "warning"]
    assert len(warnings) == len(illegal)
    for comment, state in zip(illegal, illegal_states, strict=True):
        (text,) = [w for w in warnings if f"#{comment.pk} " in w]
        assert f"it is {state}" in text


def test_a_published_comment_records_its_moderator(moderator):
    comment = held_comment()

    run_action(moderator, "publish", [comment])

    comment.refresh_from_db()
    assert comment.approved_by.username == "mod-mia"


def test_an_action_reaches_a_ticked_comment_that_left_the_filtered_view(moderator):
    # Ticked while pending in another tab, then the check held it: still decided, not skipped.
    pending = comment_in(S.PENDING, author_name="Penny Pending")

    response = run_action(moderator, "reject", [pending])

    assert refresh(pending) == [S.REJECTED]
    assert ("success", "1 comment rejected.") in messages_of(response)


def test_not_spam_refuses_a_comment_that_is_not_in_spam(moderator):
    held = comment_in(S.HELD)

    response = run_action(moderator, "not_spam", [held])

    assert refresh(held) == [S.HELD]
    (warning,) = [text for level, text in messages_of(response) if level == "warning"]
    assert f"#{held.pk}" in warning
    assert "it is held" in warning


def test_not_spam_on_akismet_spam_sends_ham_feedback(
    moderator, standin, monkeypatch, django_capture_on_commit_callbacks
):
    comment = submit_comment(author_name="akismet-guaranteed-spam")
    spam_check.check(comment.pk)
    comment.refresh_from_db()
    assert (comment.status, comment.akismet_verdict) == (S.SPAM, "spam")
    sent = []
    monkeypatch.setattr(tasks.submit_feedback, "delay", lambda *args: sent.append(args))

    with django_capture_on_commit_callbacks(execute=True):
        run_action(moderator, "not_spam", [comment], f"{CHANGELIST}?status=spam")

    assert refresh(comment) == [S.PUBLISHED]
    assert sent == [(comment.pk, "ham")]


def test_spam_on_akismet_ham_sends_spam_feedback(
    moderator, standin, monkeypatch, django_capture_on_commit_callbacks
):
    ModerationRules.objects.create(shadow_mode=True)
    comment = submit_comment()
    spam_check.check(comment.pk)
    comment.refresh_from_db()
    assert (comment.status, comment.akismet_verdict) == (S.HELD, "ham")
    sent = []
    monkeypatch.setattr(tasks.submit_feedback, "delay", lambda *args: sent.append(args))

    with django_capture_on_commit_callbacks(execute=True):
        run_action(moderator, "mark_spam", [comment])

    assert refresh(comment) == [S.SPAM]
    assert sent == [(comment.pk, "spam")]


def test_plain_staff_get_no_actions_and_cannot_post_one(staff):
    comment = held_comment()
    before = events_of(comment)

    page = staff.get(CHANGELIST).content.decode()
    response = run_action(staff, "publish", [comment])

    assert 'name="action"' not in page
    assert response.status_code == 200
    assert refresh(comment) == [S.HELD]
    assert events_of(comment) == before


def test_the_bulk_delete_action_is_not_offered(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    held_comment()

    content = client.get(CHANGELIST).content.decode()

    assert 'value="publish"' in content
    assert 'value="delete_selected"' not in content


# --- One comment ----------------------------------------------------------------------------


def change_url(comment: Comment) -> str:
    return f"{CHANGELIST}{comment.pk}/change/"


def decide_url(comment: Comment) -> str:
    return f"{CHANGELIST}{comment.pk}/decide/"


@pytest.fixture
def checked_comment():
    comment = submit_comment(
        author_name="Cora Context",
        author_email="cora@example.com",
        body="Look at <b>this</b>: https://example.com/page",
        ip_address="192.0.2.44",
        user_agent="Mozilla/5.0 (Cora)",
        referrer="https://news.example.com/bridge/",
    )
    return checked(
        comment,
        "hold",
        HoldReason.TOO_MANY_LINKS,
        details={"verdict": "ham", "guid": "a" * 32},
        akismet_verdict="ham",
        akismet_guid="a" * 32,
        akismet_pro_tip="",
        akismet_error="",
        akismet_checked_at=timezone.now(),
    )


def test_the_change_page_shows_text_context_verdict_and_history(moderator, checked_comment):
    comment = checked_comment

    response = moderator.get(change_url(comment))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Look at &lt;b&gt;this&lt;/b&gt;: https://example.com/page" in content
    assert '<a href="https://example.com/page" rel="nofollow ugc noopener noreferrer">' in content
    assert "&lt;a href=&quot;https://example.com/page&quot;" in content
    for text in ["192.0.2.44", "Mozilla/5.0 (Cora)", "https://news.example.com/bridge/"]:
        assert text in content
    for text in ["a" * 32, "ham", "Contains too many links", "Check attempts"]:
        assert text in content
    history = content[content.index("<h2>History</h2>") :]
    assert history.index("submitted") < history.index("too_many_links")
    assert "&quot;guid&quot;" in history
    assert "/admin/comments/comment/author/?email=cora%40example.com" in content
    assert "/admin/comments/comment/author/?ip=192.0.2.44" in content


def test_the_change_page_hides_private_fields_from_plain_staff(staff, checked_comment):
    response = staff.get(change_url(checked_comment))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Look at &lt;b&gt;this&lt;/b&gt;" in content
    for text in [
        "cora@example.com",
        "192.0.2.44",
        "Mozilla/5.0 (Cora)",
        decide_url(checked_comment),
    ]:
        assert text not in content


@pytest.mark.parametrize(
    ("status", "offered", "not_offered"),
    [
        (S.HELD, ["publish", "reject", "spam"], ["not_spam"]),
        (S.SPAM, ["not_spam", "reject"], ["publish", "spam"]),
        (S.REMOVED, [], ["publish", "reject", "spam", "not_spam"]),
    ],
)
def test_the_change_page_offers_the_decisions_allowed_from_the_status(
    moderator, status, offered, not_offered
):
    comment = comment_in(status)

    content = moderator.get(change_url(comment)).content.decode()

    for key in offered:
        assert f'name="decision" value="{key}"' in content
    for key in not_offered:
        assert f'name="decision" value="{key}"' not in content


def test_a_button_decides_through_moderation_with_the_reason(moderator):
    comment = held_comment()

    response = moderator.post(decide_url(comment), {"decision": "reject", "reason": "off topic"})

    assert response.status_code == 302
    assert response["Location"] == change_url(comment)
    assert refresh(comment) == [S.REJECTED]
    event = CommentEvent.objects.filter(comment=comment).last()
    assert (event.to_status, event.actor_name, event.reason) == (S.REJECTED, "mod-mia", "off topic")


def test_a_button_reports_a_decision_that_is_no_longer_allowed(moderator):
    comment = comment_in(S.REMOVED)

    response = moderator.post(decide_url(comment), {"decision": "publish"}, follow=True)

    assert refresh(comment) == [S.REMOVED]
    (warning,) = [text for level, text in messages_of(response) if level == "warning"]
    assert f"#{comment.pk}" in warning
    assert "it is removed" in warning


def test_the_decision_url_takes_only_a_csrf_protected_post_from_a_moderator(staff):
    comment = held_comment()

    assert staff.get(decide_url(comment)).status_code == 405
    assert staff.post(decide_url(comment), {"decision": "publish"}).status_code == 403
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(moderator_user())
    assert strict.post(decide_url(comment), {"decision": "publish"}).status_code == 403
    assert refresh(comment) == [S.HELD]


def test_an_unknown_decision_is_a_bad_request(moderator):
    comment = held_comment()

    assert moderator.post(decide_url(comment), {"decision": "delete"}).status_code == 400
    assert refresh(comment) == [S.HELD]


def test_the_change_page_stays_read_only(moderator):
    comment = held_comment(body="Original words.")

    response = moderator.post(change_url(comment), {"body": "Rewritten.", "author_name": "X"})

    assert response.status_code == 403
    comment.refresh_from_db()
    assert (comment.body, comment.status) == ("Original words.", S.HELD)
    assert moderator.get(f"{CHANGELIST}add/").status_code == 403


# --- Per author --------------------------------------------------------------------------


def author_page(client, **query):
    return client.get(f"{CHANGELIST}author/", query)


def test_the_author_page_lists_exactly_that_authors_comments(moderator):
    ada = [
        comment_in(S.HELD, author_email="ada@example.com", body="Ada held"),
        comment_in(S.PUBLISHED, author_email="ada@example.com", body="Ada published"),
        comment_in(S.SPAM, author_email="ADA@example.com", body="Ada spam"),
    ]
    discarded_spam(author_email="ada@example.com", body="Ada discarded")
    comment_in(S.PUBLISHED, author_email="bob@example.com", body="Bob published")

    response = author_page(moderator, email="ada@example.com")

    assert response.status_code == 200
    shown = {row["comment"].body for row in response.context["rows"]}
    assert shown == {c.body for c in ada} | {"Ada discarded"}
    assert dict(response.context["counts"]) == {"Held": 1, "Published": 1, "Spam": 2}
    assert response.context["discarded"] == 1
    assert "Bob published" not in response.content.decode()


def test_the_author_page_by_ip_lists_every_name_from_that_address(moderator):
    comment_in(S.HELD, author_name="Ann", ip_address="203.0.113.50")
    comment_in(S.PUBLISHED, author_name="Ben", ip_address="203.0.113.50")
    comment_in(S.PUBLISHED, author_name="Cid", ip_address="203.0.113.51")

    response = author_page(moderator, ip="203.0.113.50")

    assert sorted(row["comment"].author_name for row in response.context["rows"]) == ["Ann", "Ben"]
    assert response.context["total"] == 2


@pytest.mark.parametrize("query", [{}, {"ip": "not-an-ip"}])
def test_the_author_page_needs_an_email_or_a_valid_ip(moderator, query):
    assert author_page(moderator, **query).status_code == 400


def test_the_author_page_is_for_moderators_only(staff):
    comment_in(S.HELD, author_email="ada@example.com")

    assert author_page(staff, email="ada@example.com").status_code == 403


# --- Moderation rules --------------------------------------------------------------------


def rules_form(**changes) -> dict:
    fields = {
        "moderation_words": "",
        "disallowed_words": "",
        "disallowed_emails": "",
        "disallowed_ips": "",
        "max_links": "",
        "premoderation": "",
        "_save": "Save",
    }
    fields.update(changes)
    return {name: value for name, value in fields.items() if value is not False}


def rules_url(client) -> str:
    response = client.get(RULES)
    assert response.status_code == 302
    return response["Location"]


def test_the_rules_list_is_one_settings_page(moderator):
    url = rules_url(moderator)

    rules = ModerationRules.objects.get()
    assert url == f"{RULES}{rules.pk}/change/"
    assert rules_url(moderator) == url
    assert ModerationRules.objects.count() == 1
    assert moderator.get(url).status_code == 200


def test_the_rules_page_edits_the_row_the_checks_read(moderator):
    first = ModerationRules.objects.create()
    ModerationRules.objects.create()

    assert rules_url(moderator) == f"{RULES}{first.pk}/change/"


def test_the_rules_cannot_be_added_or_deleted(moderator):
    url = rules_url(moderator)
    rules = ModerationRules.objects.get()

    assert moderator.get(f"{RULES}add/").status_code == 403
    assert moderator.post(f"{RULES}{rules.pk}/delete/", {"post": "yes"}).status_code == 403
    assert 'href="/admin/comments/moderationrules/add/"' not in moderator.get(url).content.decode()
    assert ModerationRules.objects.count() == 1


def test_the_rules_form_names_every_bad_line(moderator):
    url = rules_url(moderator)

    response = moderator.post(
        url,
        rules_form(
            disallowed_ips="10.0.0.0/8\nnot-an-ip\n2001:db8::/32\n300.1.1.1",
            disallowed_emails="spam@example.com\n@example.net\nnot an email\n@",
        ),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert [e.split(":")[0] for e in errors["disallowed_ips"]] == ["Line 2", "Line 4"]
    assert "“not-an-ip” is not an IP address" in errors["disallowed_ips"][0]
    assert [e.split(":")[0] for e in errors["disallowed_emails"]] == ["Line 3", "Line 4"]
    assert ModerationRules.objects.get().disallowed_ips == ""


def test_the_rules_form_saves_tidy_lines(moderator):
    url = rules_url(moderator)

    response = moderator.post(
        url,
        rules_form(
            moderation_words="  kettle \n\n teapot\n",
            disallowed_emails="spam@example.com\n@example.net",
            disallowed_ips="198.51.100.0/24\n2001:db8::1",
            max_links="4",
            premoderation="new_authors",
            trusted_authors_skip_hold="on",
        ),
    )

    assert response.status_code == 302
    assert response["Location"] == url
    rules = ModerationRules.objects.get()
    assert rules.moderation_words == "kettle\nteapot"
    assert rules.disallowed_ips == "198.51.100.0/24\n2001:db8::1"
    assert (rules.max_links, rules.premoderation) == (4, "new_authors")
    assert rules.trusted_authors_skip_hold is True
    assert rules.shadow_mode is False


def test_plain_staff_cannot_open_the_rules(staff):
    assert staff.get(RULES).status_code == 403


def test_a_moderation_word_set_in_the_console_holds_the_next_comment(moderator, standin):
    moderator.post(rules_url(moderator), rules_form(moderation_words="kettle"))
    comment = submit_comment(body="Put the kettle on, the vote is close.")

    assert spam_check.check(comment.pk) == HoldReason.MODERATION_WORD

    comment.refresh_from_db()
    assert (comment.status, comment.held_reason) == (S.HELD, HoldReason.MODERATION_WORD)


def test_a_network_disallowed_in_the_console_makes_the_next_comment_spam(moderator, standin):
    moderator.post(rules_url(moderator), rules_form(disallowed_ips="198.51.100.0/24"))
    comment = submit_comment(ip_address="198.51.100.77")

    assert spam_check.check(comment.pk) == "disallowed_ip"
    assert refresh(comment) == [S.SPAM]
