"""The common submission is stored by one statement on PostgreSQL (comment and its
"submitted" event together), with or without an idempotency key; it writes exactly
what the transactional path writes, and anything that needs more (a hook, a parent)
takes that path."""

from __future__ import annotations

import pytest
from django.db import DataError, connection, transaction
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from comments import hooks, moderation
from comments.models import Comment, CommentEvent
from tests.factories import ArticleFactory, WebhookEndpointFactory, published_comment

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the one-statement path is PostgreSQL's"
    ),
]

SUBMISSION = {
    "author_name": "Zoë Reader",
    "author_email": "zoe@example.com",
    "author_url": "https://zoe.example/",
    "body": "A *thoughtful* remark with a link https://example.org and ünïcode.",
    "ip_address": "2001:db8::7",
    "user_agent": "Mozilla/5.0 (tests)",
    "referrer": "https://news.example.com/a",
    "honeypot_tripped": True,
}
VOLATILE = {"id", "created_at", "next_check_at", "comment"}


def inserts(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"].upper()]


def stored(comment: Comment) -> tuple[dict, list[dict]]:
    row = model_to_dict(Comment.objects.get(pk=comment.pk))
    events = [
        {k: v for k, v in model_to_dict(event).items() if k not in VOLATILE}
        for event in CommentEvent.objects.filter(comment_id=comment.pk)
    ]
    return {k: v for k, v in row.items() if k not in VOLATILE}, events


def test_a_plain_submission_is_one_statement_without_a_transaction_of_its_own():
    article = ArticleFactory()
    with CaptureQueriesContext(connection) as queries:
        comment = moderation.submit(article=article, **SUBMISSION)
    statements = inserts(queries)
    assert len(statements) == 1
    assert "comments_comment" in statements[0] and "comments_commentevent" in statements[0]
    assert not any(q["sql"].startswith("SAVEPOINT") for q in queries.captured_queries)
    assert comment.pk and comment.status == Comment.Status.PENDING
    assert CommentEvent.objects.filter(comment=comment, reason="submitted").count() == 1


def test_the_one_statement_path_stores_what_the_transactional_path_stores(monkeypatch):
    article = ArticleFactory()
    fast = moderation.submit(article=article, **SUBMISSION)
    monkeypatch.setattr(hooks, "submission_records_nothing", lambda **kwargs: False)
    with CaptureQueriesContext(connection) as queries:
        general = moderation.submit(article=article, **SUBMISSION)
    assert len(inserts(queries)) == 2  # the general path really ran
    assert stored(fast) == stored(general)
    assert fast.created_at <= general.created_at
    assert Comment.objects.get(pk=fast.pk).created_at == fast.created_at


def test_a_failing_event_insert_leaves_no_comment(monkeypatch):
    article = ArticleFactory()
    real_event = moderation._submitted_event

    def broken_event(comment):
        event = real_event(comment)
        event.reason = "x" * 10_000  # longer than the column: the statement fails
        return event

    monkeypatch.setattr(moderation, "_submitted_event", broken_event)
    with pytest.raises(DataError), transaction.atomic():  # the test's own transaction
        moderation.submit(article=article, **SUBMISSION)
    assert not Comment.objects.filter(article=article).exists()


def test_a_submission_with_an_idempotency_key_is_one_statement_and_replays():
    """The widget sends a key with every comment: the common case."""
    article = ArticleFactory()
    with CaptureQueriesContext(connection) as queries:
        first = moderation.submit(article=article, idempotency_key="key-1", **SUBMISSION)
    statements = inserts(queries)
    assert len(statements) == 1 and "comments_commentevent" in statements[0]
    assert first.replayed is False and first.idempotency_key == "key-1"
    again = moderation.submit(article=article, idempotency_key="key-1", **SUBMISSION)
    assert again.pk == first.pk and again.replayed is True
    assert Comment.objects.filter(article=article).count() == 1


def test_a_keyed_insert_that_loses_the_race_answers_with_the_winner(monkeypatch):
    """The look-up found nothing, then a concurrent request with the key committed:
    the unique constraint refuses this INSERT, and the winner's comment is the answer
    (in the test's own transaction too, thanks to the savepoint)."""
    article = ArticleFactory()
    winner = moderation.submit(article=article, idempotency_key="key-2", **SUBMISSION)
    looked_up = []
    real_lookup = moderation._submitted_with_key

    def first_look_finds_nothing(*args):
        looked_up.append(args)
        return None if len(looked_up) == 1 else real_lookup(*args)

    monkeypatch.setattr(moderation, "_submitted_with_key", first_look_finds_nothing)
    loser = moderation.submit(article=article, idempotency_key="key-2", **SUBMISSION)
    assert len(looked_up) == 2
    assert loser.pk == winner.pk and loser.replayed is True
    assert Comment.objects.filter(article=article).count() == 1


@pytest.mark.parametrize("case", ["webhook endpoint", "reply notifications", "parent"])
def test_a_submission_that_needs_more_takes_the_transactional_path(case):
    article = ArticleFactory()
    extra: dict[str, object] = {}
    if case == "webhook endpoint":
        WebhookEndpointFactory(events=["comment.submitted"])
    elif case == "reply notifications":
        extra["notify_replies"] = True
    else:
        extra["parent_id"] = published_comment(article).pk
    with CaptureQueriesContext(connection) as queries:
        comment = moderation.submit(article=article, **SUBMISSION, **extra)
    comment_inserts = [
        sql for sql in inserts(queries) if sql.startswith('INSERT INTO "comments_comment"')
    ]
    assert len(comment_inserts) == 1
    assert "comments_commentevent" not in comment_inserts[0]
    assert CommentEvent.objects.filter(comment=comment, reason="submitted").count() == 1


def test_the_key_look_up_can_use_the_key_index_with_a_generic_plan():
    """A prepared statement is planned once for any key. The partial unique index on
    the key excludes '', so the statement must say `<> ''` for that plan to use it;
    without, PostgreSQL scanned the table (80 ms per submit at 50,000 comments)."""
    sql, _ = moderation._comment_with_key_sql()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute("SET LOCAL enable_seqscan = off")  # as on a table of real size
        statement = sql.replace("%s", "$1", 1).replace("%s", "$2", 1)
        cursor.execute(f"PREPARE key_look_up(bigint, text) AS {statement}")
        try:
            cursor.execute("EXPLAIN EXECUTE key_look_up(1, 'key')")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("DEALLOCATE key_look_up")
    assert "comment_idempotency_key_unique" in plan, plan
