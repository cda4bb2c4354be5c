"""The moderation API: authorization, the queue, decisions, bulk, stats, concurrency."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from comments import moderation, spam_check, tasks
from comments.models import Comment, CommentEvent, HoldReason
from tests.factories import ArticleFactory, UserFactory, published_comment, submit_comment

Status = Comment.Status
pytestmark = pytest.mark.django_db


def moderator_user():
    user = UserFactory()  # not staff: the API needs only the permission
    user.groups.add(Group.objects.get(name="moderators"))
    return user


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def held_comment(**fields) -> Comment:
    comment = submit_comment(**fields)
    moderation.hold(comment, actor=moderation.SYSTEM, hold_reason=HoldReason.TOO_MANY_LINKS)
    return comment


def spam_comment(**fields) -> Comment:
    comment = submit_comment(**fields)
    moderation.mark_spam(comment, actor=moderation.SPAM_CHECK, reason="akismet_spam")
    return comment


ENDPOINTS = [
    ("get", "/api/v1/moderation/comments/", None),
    ("get", "/api/v1/moderation/comments/{id}/", None),
    ("post", "/api/v1/moderation/comments/{id}/approve/", {}),
    ("post", "/api/v1/moderation/comments/{id}/reject/", {}),
    ("post", "/api/v1/moderation/comments/{id}/spam/", {}),
    ("post", "/api/v1/moderation/comments/bulk/", {"action": "reject", "ids": ["{id}"]}),
    ("get", "/api/v1/moderation/stats/", None),
]


def call(client, method, path, body, comment):
    url = path.replace("{id}", str(comment.pk))
    if body and "ids" in body:
        body = {**body, "ids": [comment.pk]}
    return (
        getattr(client, method)(url, body, format="json")
        if body is not None
        else getattr(client, method)(url)
    )


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_anonymous_callers_get_401_and_nothing_changes(method, path, body):
    comment = held_comment()
    response = call(APIClient(), method, path, body, comment)
    assert response.status_code == 401
    comment.refresh_from_db()
    assert comment.status == Status.HELD


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_a_commenter_with_an_edit_token_is_anonymous_here(method, path, body):
    from comments.tokens import make_edit_token

    comment = held_comment()
    client = APIClient()
    client.credentials(HTTP_X_COMMENT_TOKEN=make_edit_token(comment.pk))
    assert call(client, method, path, body, comment).status_code == 401
    comment.refresh_from_db()
    assert comment.status == Status.HELD


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_users_without_the_permission_get_403(method, path, body):
    comment = held_comment()
    staff = UserFactory(is_staff=True)
    response = call(client_for(staff), method, path, body, comment)
    assert response.status_code == 403
    comment.refresh_from_db()
    assert comment.status == Status.HELD


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_moderators_may_use_every_endpoint(method, path, body):
    comment = held_comment()
    response = call(client_for(moderator_user()), method, path, body, comment)
    assert response.status_code == 200, response.content


def test_a_user_with_only_the_permission_moderates():
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="can_moderate"))
    comment = held_comment()
    response = client_for(user).post(f"/api/v1/moderation/comments/{comment.pk}/approve/")
    assert response.status_code == 200


def test_the_list_has_private_fields_verdict_and_history():
    comment = held_comment(author_email="secret@example.com", ip_address="198.51.100.4")
    data = client_for(moderator_user()).get("/api/v1/moderation/comments/").json()
    item = next(result for result in data["results"] if result["id"] == comment.pk)
    assert item["author_email"] == "secret@example.com"
    assert item["ip_address"] == "198.51.100.4"
    assert item["user_agent"] == "Mozilla/5.0 (tests)"
    assert item["held_reason"] == "too_many_links"
    assert item["held_reason_label"] == "Contains too many links"
    assert item["verdict"]["attempts"] == 0
    assert [(e["from_status"], e["to_status"]) for e in item["history"]] == [
        ("", "pending"),
        ("pending", "held"),
    ]


def test_the_list_filters_by_status_article_reason_and_search():
    article = ArticleFactory()
    held = held_comment(article=article, body="About the merger", ip_address="192.0.2.9")
    published_comment(article=article)
    spam_comment(author_email="spammer@example.com")
    client = client_for(moderator_user())

    def ids(query):
        response = client.get("/api/v1/moderation/comments/", query)
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["results"]]

    assert ids({"status": "held"}) == [held.pk]
    assert len(ids({"article": article.slug})) == 2
    assert ids({"reason": "too_many_links"}) == [held.pk]
    assert ids({"search": "merger"}) == [held.pk]
    assert ids({"search": "192.0.2.9"}) == [held.pk]
    assert len(ids({"search": "spammer@"})) == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"order": "sideways"}, "order"),
        ({"verdict": "x"}, "verdict"),
    ],
)
def test_bad_filters_are_400_naming_the_field(query, field):
    response = client_for(moderator_user()).get("/api/v1/moderation/comments/", query)
    assert response.status_code == 400
    assert field in response.json()


def test_the_list_is_paginated():
    for _ in range(3):
        held_comment()
    data = client_for(moderator_user()).get("/api/v1/moderation/comments/", {"page_size": 2}).json()
    assert data["count"] == 3
    assert len(data["results"]) == 2
    assert data["next"]


def test_the_list_reads_a_bounded_number_of_queries(django_assert_max_num_queries):
    for _ in range(20):
        held_comment()
    client = client_for(moderator_user())
    with django_assert_max_num_queries(8):
        client.get("/api/v1/moderation/comments/")


@pytest.mark.parametrize(
    ("make", "action", "expected"),
    [
        (held_comment, "approve", Status.PUBLISHED),
        (spam_comment, "approve", Status.PUBLISHED),
        (held_comment, "reject", Status.REJECTED),
        (held_comment, "spam", Status.SPAM),
        (published_comment, "reject", Status.REJECTED),
        (published_comment, "spam", Status.SPAM),
    ],
)
def test_decisions_apply_and_record_the_moderator(make, action, expected):
    comment = make()
    user = moderator_user()
    response = client_for(user).post(
        f"/api/v1/moderation/comments/{comment.pk}/{action}/", {"reason": "looked at it"}
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == expected
    event = CommentEvent.objects.filter(comment=comment).last()
    assert (event.to_status, event.actor_user_id, event.reason) == (
        expected,
        user.pk,
        "looked at it",
    )


@pytest.mark.parametrize(
    ("make", "action"),
    [(published_comment, "approve"), (spam_comment, "spam"), (held_comment, "approve")],
)
def test_a_transition_not_allowed_is_409_and_changes_nothing(make, action):
    comment = make()
    client = client_for(moderator_user())
    if make is held_comment:  # approve twice: the second is not allowed
        client.post(f"/api/v1/moderation/comments/{comment.pk}/approve/")
    comment.refresh_from_db()
    before = (comment.status, CommentEvent.objects.filter(comment=comment).count())
    response = client.post(f"/api/v1/moderation/comments/{comment.pk}/{action}/")
    assert response.status_code == 409
    assert response.json()["status"] == before[0]
    comment.refresh_from_db()
    assert (comment.status, CommentEvent.objects.filter(comment=comment).count()) == before


def test_an_unknown_comment_is_404():
    response = client_for(moderator_user()).post("/api/v1/moderation/comments/999999/approve/")
    assert response.status_code == 404


def test_bulk_gives_one_result_per_id_with_mixed_outcomes():
    held, spam, published = held_comment(), spam_comment(), published_comment()
    response = client_for(moderator_user()).post(
        "/api/v1/moderation/comments/bulk/",
        {"action": "approve", "ids": [held.pk, spam.pk, published.pk, 987654]},
        format="json",
    )
    assert response.status_code == 200
    results = {item["id"]: item for item in response.json()["results"]}
    assert results[held.pk]["result"] == "applied"
    assert results[spam.pk]["result"] == "applied"
    assert results[published.pk]["result"] == "conflict"
    assert results[published.pk]["status"] == "published"
    assert results[987654]["result"] == "not_found"
    for comment in (held, spam):
        assert CommentEvent.objects.filter(comment=comment, to_status="published").count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "delete", "ids": [1]}, "action"),
        ({"action": "approve", "ids": []}, "ids"),
        ({"action": "approve", "ids": ["x"]}, "ids"),
        ({"action": "approve", "ids": list(range(1, 502))}, "ids"),
        ({"action": "approve"}, "ids"),
    ],
)
def test_bad_bulk_requests_are_400_naming_the_field(body, field):
    response = client_for(moderator_user()).post(
        "/api/v1/moderation/comments/bulk/", body, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()


def test_stats_count_statuses_and_the_oldest_waiting():
    held_comment()
    spam_comment()
    published_comment()
    data = client_for(moderator_user()).get("/api/v1/moderation/stats/").json()
    assert data["counts"]["held"] == 1
    assert data["counts"]["spam"] == 1
    assert data["counts"]["published"] == 1
    assert data["oldest_held_seconds"] is not None
    assert data["spam_ratio_30d"] == pytest.approx(1 / 3, abs=0.001)


def test_session_auth_enforces_csrf():
    user = moderator_user()
    comment = held_comment()
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/api/v1/moderation/comments/").status_code == 200
    response = client.post(f"/api/v1/moderation/comments/{comment.pk}/approve/")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    comment.refresh_from_db()
    assert comment.status == Status.HELD


def test_approving_spam_reports_ham_to_akismet(
    standin, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(
        tasks.submit_feedback, "delay", lambda *args: tasks.submit_feedback.apply(args=args)
    )
    comment = submit_comment(author_name="akismet-guaranteed-spam")
    spam_check.check(comment.pk)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(moderator_user()).post(
            f"/api/v1/moderation/comments/{comment.pk}/approve/"
        )
    assert response.status_code == 200
    ham = standin.state.requests_to("submit-ham")
    assert len(ham) == 1
    assert ham[0]["params"]["comment_author"] == "akismet-guaranteed-spam"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("action", "expected"), [("approve", "published"), ("reject", "rejected")])
def test_concurrent_decisions_on_one_comment_make_exactly_one_transition(action, expected):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    comment = held_comment()
    # Transactional tests flush the data migration's group; the permission alone moderates.
    permission = Permission.objects.get(codename="can_moderate")
    users = [UserFactory() for _ in range(4)]
    for user in users:
        user.user_permissions.add(permission)
    tokens = [Token.objects.create(user=user).key for user in users]
    barrier = threading.Barrier(len(tokens))
    statuses: list[int] = []

    def decide(token: str) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            barrier.wait(timeout=10)
            response = client.post(f"/api/v1/moderation/comments/{comment.pk}/{action}/")
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200, 409, 409, 409]
    decisions = CommentEvent.objects.filter(comment=comment).exclude(
        from_status__in=["", "pending"]
    )
    assert list(decisions.values_list("from_status", "to_status")) == [("held", expected)]
    comment.refresh_from_db()
    assert comment.status == expected
