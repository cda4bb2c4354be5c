"""Database-level guarantees of the comment table: constraints and the read-path indexes."""

from __future__ import annotations

import json

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from comments import threads
from comments.models import Comment
from tests.factories import ArticleFactory, submit_comment

pytestmark = pytest.mark.django_db

LIST_INDEXES = [
    "comment_toplevel_visible",
    "comment_replies_visible",
    "comment_published_by_article",
]


def table_constraints() -> dict[str, dict]:
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, Comment._meta.db_table)


def status_constraint():
    (constraint,) = [c for c in Comment._meta.constraints if c.name == "comment_status_valid"]
    return constraint


def test_the_database_refuses_an_unknown_status():
    comment = submit_comment()

    with pytest.raises(IntegrityError), transaction.atomic():
        Comment.objects.filter(pk=comment.pk).update(status="bogus")

    comment.refresh_from_db()
    assert comment.status == Comment.Status.PENDING


def test_the_database_accepts_every_known_status():
    comment = submit_comment()
    # A published row must carry a passing check (see the next test).
    Comment.objects.filter(pk=comment.pk).update(checked_at=timezone.now())

    for status in Comment.Status.values:
        with transaction.atomic():
            Comment.objects.filter(pk=comment.pk).update(status=status)

    comment.refresh_from_db()
    assert comment.status == Comment.Status.values[-1]


def test_the_database_refuses_a_published_comment_that_was_neither_checked_nor_approved():
    comment = submit_comment()

    with pytest.raises(IntegrityError), transaction.atomic():
        Comment.objects.filter(pk=comment.pk).update(status=Comment.Status.PUBLISHED)

    comment.refresh_from_db()
    assert comment.status == Comment.Status.PENDING


def test_the_status_constraint_lists_exactly_the_model_statuses():
    lookups = dict(status_constraint().condition.children)

    assert sorted(lookups["status__in"]) == sorted(Comment.Status.values)
    assert len(lookups["status__in"]) == len(Comment.Status.values)


@pytest.mark.parametrize("name", ["comment_status_valid", "comment_published_was_checked"])
def test_the_check_constraint_exists_in_the_database(name):
    constraints = table_constraints()

    assert name in constraints
    assert constraints[name]["check"] is True


@pytest.mark.parametrize("name", LIST_INDEXES)
def test_the_list_read_index_exists_in_the_database(name):
    constraints = table_constraints()

    assert name in constraints
    assert constraints[name]["index"] is True


def test_the_list_read_indexes_cover_the_ordered_columns():
    constraints = table_constraints()

    assert constraints["comment_toplevel_visible"]["columns"] == ["article_id", "created_at", "id"]
    assert constraints["comment_replies_visible"]["columns"] == ["thread_id", "created_at", "id"]
    assert constraints["comment_published_by_article"]["columns"] == ["article_id"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="reads pg_indexes")
def test_the_list_read_indexes_are_partial_on_postgresql():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s",
            [Comment._meta.db_table],
        )
        definitions = dict(cursor.fetchall())

    assert "WHERE" in definitions["comment_toplevel_visible"]
    assert "parent_id IS NULL" in definitions["comment_toplevel_visible"]
    assert "parent_id IS NOT NULL" in definitions["comment_replies_visible"]
    assert "'published'" in definitions["comment_published_by_article"]


def plan_nodes(plan: dict) -> list[dict]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes.extend(plan_nodes(child))
    return nodes


def insert_comments(article_ids: list[int], per_article: int, status: str) -> None:
    """Bulk rows for the planner's statistics only; no behaviour is tested through them,
    so they are written directly rather than through comments.moderation."""
    now = timezone.now()
    Comment.objects.bulk_create(
        [
            Comment(
                article_id=article_id,
                author_name="Bulk Reader",
                author_email="bulk@example.com",
                body="Bulk row.",
                body_html="<p>Bulk row.</p>",
                status=status,
                published_at=now if status == Comment.Status.PUBLISHED else None,
                checked_at=now if status == Comment.Status.PUBLISHED else None,
            )
            for article_id in article_ids
            for _ in range(per_article)
        ],
        batch_size=2000,
    )


def analysed_article_with_neighbours() -> int:
    """One article among busy neighbours, with planner statistics gathered.

    Under 30,000 rows ANALYZE reads every row, so the statistics (and the plan) are
    the same on every run.
    """
    target = ArticleFactory()
    neighbours = [ArticleFactory().pk for _ in range(20)]
    insert_comments([target.pk], 2000, Comment.Status.PUBLISHED)
    insert_comments([target.pk], 5, Comment.Status.REMOVED)
    insert_comments(neighbours, 500, Comment.Status.PUBLISHED)
    insert_comments([target.pk, *neighbours], 20, Comment.Status.SPAM)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Comment._meta.db_table}")
    return target.pk


def explain_first_page(article_id: int) -> list[dict]:
    query = threads.visible_top_level(article_id).order_by("created_at", "id")[:50]
    (plan,) = json.loads(query.explain(format="json"))
    return plan_nodes(plan["Plan"])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL planner")
def test_the_top_level_list_is_read_in_index_order_without_sorting_the_table():
    article_id = analysed_article_with_neighbours()

    nodes = explain_first_page(article_id)

    assert not [node for node in nodes if node["Node Type"] in {"Sort", "Incremental Sort"}]
    assert "comment_toplevel_visible" in {node.get("Index Name") for node in nodes}
    assert len(threads.visible_top_level(article_id)[:50]) == 50


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL planner")
def test_the_top_level_list_reads_only_the_comments_of_its_own_article():
    article_id = analysed_article_with_neighbours()

    nodes = explain_first_page(article_id)

    table_reads = [node for node in nodes if node.get("Relation Name") == Comment._meta.db_table]
    assert table_reads
    for node in table_reads:
        condition = node.get("Index Cond", "") + node.get("Recheck Cond", "")
        assert "article_id" in condition, f"{node['Node Type']} reads other articles' comments"


def test_factory_users_can_log_in_with_their_password(client):
    from tests.factories import UserFactory

    user = UserFactory()
    assert client.login(username=user.username, password="pw-for-tests-1234")
