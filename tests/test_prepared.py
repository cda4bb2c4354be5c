"""The prepared-statement helpers (comments/prepared.py) do what the ORM calls they
replace do, on PostgreSQL (prepared SQL) and on SQLite (the ORM itself); the spam
check they serve stays within its statement budget."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from articles.models import Article
from comments import moderation, prepared, spam_check
from comments.models import Comment, CommentEvent, ModerationRules, ReplySubscription
from tests.factories import ArticleFactory, UserFactory, submit_comment, subscribed_comment

pytestmark = pytest.mark.django_db
Status = Comment.Status


def row(comment: Comment) -> dict[str, object]:
    return model_to_dict(Comment.objects.get(pk=comment.pk), exclude=["id"])


def test_update_where_writes_what_the_orm_update_writes(article):
    by_orm, by_prepared = submit_comment(article), submit_comment(article)
    Comment.objects.filter(pk=by_prepared.pk).update(created_at=by_orm.created_at)
    moderator = UserFactory()
    when = timezone.now() - dt.timedelta(minutes=3)
    values = {
        "status": Status.PUBLISHED,
        "checked_at": when,
        "approved_by": moderator,
        "akismet_payload": {"comment_content": 'é "quoted" \u2028', "n": [1, 2]},
        "next_check_at": None,
        "check_attempts": 3,
        "held_reason": "",
    }
    assert Comment.objects.filter(pk=by_orm.pk, status=Status.PENDING).update(**values) == 1
    where = {"id": by_prepared.pk, "status": Status.PENDING, "erased_at": None}
    assert prepared.update_where(Comment, where, values) == 1
    assert row(by_orm) == row(by_prepared)
    assert Comment.objects.get(pk=by_prepared.pk).approved_by_id == moderator.pk


def test_update_where_changes_nothing_when_a_condition_fails(article):
    comment = submit_comment(article)
    assert (
        prepared.update_where(Comment, {"id": comment.pk, "status": Status.HELD}, {"body": "x"})
        == 0
    )
    Comment.objects.filter(pk=comment.pk).update(erased_at=timezone.now())
    where = {"id": comment.pk, "status": Status.PENDING, "erased_at": None}
    assert prepared.update_where(Comment, where, {"check_attempts": 9}) == 0
    assert Comment.objects.get(pk=comment.pk).check_attempts == 0


def test_insert_stores_the_row_save_would_store(article):
    comment = submit_comment(article)
    moderator = UserFactory()
    fields = {
        "comment_id": comment.pk,
        "from_status": Status.PENDING,
        "to_status": Status.HELD,
        "actor_user": moderator,
        "actor_name": moderator.username,
        "reason": "a note",
        "details": {"verdict": "ham", "headers": {"x-akismet-guid": "g"}},
    }
    saved = CommentEvent.objects.create(**fields)
    inserted = CommentEvent(**fields)
    prepared.insert(inserted)
    assert inserted.pk is not None and inserted.pk != saved.pk
    stored = CommentEvent.objects.get(pk=inserted.pk)
    assert model_to_dict(stored, exclude=["id"]) == model_to_dict(saved, exclude=["id"])
    assert abs(stored.created_at - saved.created_at) < dt.timedelta(seconds=5)


def test_exists_answers_as_the_orm_does(article):
    subscribed = subscribed_comment(article)
    other = submit_comment(article)
    cases = [
        {"comment_id": [subscribed.pk], "unsubscribed_at": None},
        {"comment_id": [other.pk, subscribed.pk], "unsubscribed_at": None},
        {"comment_id": [other.pk], "unsubscribed_at": None},
        {"comment_id": subscribed.pk},
        {"comment_id": other.pk},
    ]
    for where in cases:
        lookups = {
            (f"{k}__in" if isinstance(v, list) else f"{k}__isnull" if v is None else k): (
                True if v is None else v
            )
            for k, v in where.items()
        }
        expected = ReplySubscription.objects.filter(**lookups).exists()
        assert prepared.exists(ReplySubscription, where) is expected, where
    ReplySubscription.objects.update(unsubscribed_at=timezone.now())
    assert not prepared.exists(ReplySubscription, cases[0])


def test_add_to_and_first():
    article = ArticleFactory(published_comment_count=4)
    prepared.add_to(Article, article.pk, "published_comment_count", 1)
    prepared.add_to(Article, article.pk, "published_comment_count", -3)
    article.refresh_from_db()
    assert article.published_comment_count == 2

    assert prepared.first(ModerationRules) == ModerationRules.objects.order_by("pk").first()
    ModerationRules.objects.create(max_links=1)
    ModerationRules.objects.create(max_links=7)
    assert prepared.first(ModerationRules).max_links == 1


def test_a_passing_check_runs_a_fixed_set_of_statements_and_reads_the_article_once(
    standin, article
):
    """Load (comment, article, rules), the attempt, then the transition: lock (with the
    slug), update, event, subscription probe, article count; BEGIN/COMMIT where logged."""
    comment = submit_comment(article)
    spam_check.check(submit_comment(article).pk)  # warm: connections and clients
    with CaptureQueriesContext(connection) as queries:
        assert spam_check.check(comment.pk) == "akismet_ham"
    statements = [q["sql"] for q in queries.captured_queries]
    work = [
        s
        for s in statements
        if s.split()[0].upper() not in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")
    ]
    assert len(work) == 9, statements
    article_reads = [s for s in work if s.startswith("SELECT") and 'FROM "articles_article"' in s]
    assert len(article_reads) == 1, statements
    comment.refresh_from_db()
    assert comment.status == Status.PUBLISHED
    assert Article.objects.get(pk=article.pk).published_comment_count == 2


def test_a_moderator_decision_still_goes_through_the_same_transition(article):
    """The lock/update/event path serves moderators too: a held comment published by a
    person records the person and the event, and a second try is refused."""
    comment = submit_comment(article)
    moderation.hold(comment, actor=moderation.SPAM_CHECK, reason="check_disabled")
    moderator = UserFactory()
    actor = moderation.Actor.for_user(moderator)
    assert moderation.reject(comment, actor=actor, reason="rude") is True
    with pytest.raises(moderation.ModerationError):
        moderation.hold(comment, actor=actor)
    stored = Comment.objects.get(pk=comment.pk)
    assert stored.status == Status.REJECTED
    assert stored.decision_reason == "moderator"
    last = CommentEvent.objects.filter(comment=comment).last()
    assert (last.from_status, last.to_status, last.actor_user_id, last.reason) == (
        Status.HELD,
        Status.REJECTED,
        moderator.pk,
        "rude",
    )


def test_insert_columns_prepares_each_value_as_django_does(article):
    """The shortcut for plain text and boolean fields gives what get_db_prep_save gives,
    and every other field (dates, JSON, addresses, lazy strings) still goes through it."""
    from django.utils.translation import gettext_lazy

    comment = Comment(
        article=article,
        author_name=gettext_lazy("Ada"),  # a lazy string takes Django's own path
        author_email="ada@example.com",
        author_url="",
        body="Hello",
        body_html="<p>Hello</p>",
        status=Status.PENDING,
        ip_address="203.0.113.9",
        user_agent="Mozilla/5.0",
        referrer="",
        honeypot_tripped=True,
        next_check_at=moderation._sweep_deadline(),
        akismet_payload={"a": 1},
    )
    _, params = prepared.insert_columns(comment, connection)  # sets created_at once
    fields = [
        f
        for f in Comment._meta.local_concrete_fields
        if not (f.primary_key and f.get_internal_type().endswith("AutoField"))
    ]
    expected = [f.get_db_prep_save(getattr(comment, f.attname), connection) for f in fields]

    def comparable(value):
        return getattr(value, "obj", value)  # psycopg's Jsonb wraps the object

    assert [comparable(v) for v in params] == [comparable(v) for v in expected]
    assert params[[f.attname for f in fields].index("author_name")] == "Ada"
