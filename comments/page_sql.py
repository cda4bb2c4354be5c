"""The public comment page on PostgreSQL: one statement returns it as JSON fragments.

A cold page (nothing cached) used to be three ORM queries, hundreds of decoded
rows, a dict per comment and a JSON encoding of the lot; the Python work was most
of its cost (issue 7, docs/performance.md). Here PostgreSQL selects the page's
top-level comments and their visible replies with each comment's JSON: in UTC the
`public_fragment` column it keeps itself (migration 0010), in any other time zone
written out by the statement. Python only nests the fragments by string
concatenation. The output is byte for byte what `threads.public_page_data` +
`read_cache.json_bytes` give, which tests/test_page_sql.py checks, so both paths can
fill the same cache.

`TopLevelPage` stands in for the queryset DRF's CursorPagination pages over: the
paginator calls `order_by`, `filter(created_at__gt|lt=position)` and slices, and
keeps deciding the page, its cursors and its links exactly as it does for the ORM.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from functools import lru_cache
from operator import itemgetter

from django.db import connections, router
from django.utils.dateparse import parse_datetime

from comments.models import Comment
from comments.prepared import prepared_cursor

_ORDERINGS = {("created_at", "id"): "ASC", ("-created_at", "-id"): "DESC"}


def available(using: str) -> bool:
    return connections[using].vendor == "postgresql"


def read_alias() -> str:
    """The database alias the ORM would read comments from (a replica in a public read)."""
    return router.db_for_read(Comment)


_TOP_LEVEL, _REPLY = 1, 2

# The zone the stored `public_fragment` column is written in (migration 0010); pages in
# any other zone write their fragments out in the statement.
_STORED_ZONE = "UTC"


# Rows in order of kind, then of each kind's sequence number (a C-level key).
_row_order = itemgetter(0, 6)


class TopLevelRow:
    """A top-level comment of the page as the paginator sees it: the id, and the
    `created_at` of its cursor position, parsed only when the paginator asks."""

    __slots__ = ("_created_at", "id")

    def __init__(self, comment_id: int, created_at: str) -> None:
        self.id = comment_id
        self._created_at = created_at

    @property
    def created_at(self) -> dt.datetime:
        # PostgreSQL's text of a timestamptz in the session's zone (UTC, set by Django).
        return dt.datetime.fromisoformat(self._created_at)


class TopLevelPage:
    """A page of an article's visible top-level comments, with their replies as JSON.

    Sliced (by the paginator) it runs the page's one statement. The rows it returns
    carry `id` and `created_at` (the cursor position); `results_json` then gives
    the page's `results` array.
    """

    def __init__(self, article_id: int, using: str) -> None:
        self.article_id = article_id
        self.using = using
        self.direction = "ASC"
        self.after: tuple[str, dt.datetime] | None = None
        # The visible replies by parent id, each list in order of creation.
        self._children: defaultdict[int, list[tuple[int, bool, str]]] = defaultdict(list)
        self._top: dict[int, str] = {}  # the top-level fragments by id

    def order_by(self, *fields: str) -> TopLevelPage:
        self.direction = _ORDERINGS[fields]
        return self

    def filter(self, **lookup: str) -> TopLevelPage:
        ((name, position),) = lookup.items()
        operator = {"created_at__gt": ">", "created_at__lt": "<"}[name]
        when = parse_datetime(position) if isinstance(position, str) else position
        if when is None:  # CommentCursorPagination.decode_cursor refuses these first
            raise ValueError(f"not a cursor position: {position!r}")
        self.after = (operator, when)
        return self

    def __getitem__(self, window: slice) -> list[TopLevelRow]:
        offset, stop = window.start or 0, window.stop
        shown = stop - offset - 1  # the paginator asks for one more row than it shows
        position_sql = f"AND c.created_at {self.after[0]} %(position)s" if self.after else ""
        sql = _page_sql(
            int(self.article_id), self.direction, position_sql, _tz_name(), int(offset), int(shown)
        )
        params = {"position": self.after[1] if self.after else None}
        with prepared_cursor(self.using) as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        # In order of kind, then of each kind's sequence (sorting the wide rows here
        # costs less than in PostgreSQL).
        rows.sort(key=_row_order)
        page: list[TopLevelRow] = []
        children = self._children
        for kind, comment_id, parent_id, published, created_at, fragment, _ in rows:
            if kind == _TOP_LEVEL:
                page.append(TopLevelRow(comment_id, created_at))
                self._top[comment_id] = fragment
            else:
                children[parent_id].append((comment_id, published, fragment))
        return page

    def results_json(self, page: list[TopLevelRow]) -> str:
        """The `results` array of `page` (the rows the paginator kept, in its order)."""
        children = self._children

        def render_replies(comment_id: int) -> list[str]:
            """The JSON of the comment's visible replies, each with its own replies.
            Most replies have none: those are written here without a call."""
            shown = []
            for reply_id, published, fragment in children.get(comment_id, ()):
                if reply_id in children:
                    nested = render_replies(reply_id)
                    if published or nested:
                        shown.append(f'{fragment}"replies":[{",".join(nested)}]}}')
                elif published:
                    shown.append(f'{fragment}"replies":[]}}')
            return shown

        items = []
        for row in page:
            fragment = self._top[row.id]
            # A top-level comment on the page is shown even when removed: it was
            # chosen because a published reply hangs under it somewhere.
            items.append(f'{fragment}"replies":[{",".join(render_replies(row.id))}]}}')
        return f"[{','.join(items)}]"


def page_bytes(count: int, next_link: str | None, previous_link: str | None, results: str) -> bytes:
    """The page body, as read_cache.json_bytes would encode it."""
    return (
        f'{{"count":{count},"next":{_json(next_link)},"previous":{_json(previous_link)},'
        f'"results":{results}}}'
    ).encode()


def _json(value: str | None) -> str:
    return json.dumps(value, ensure_ascii=False)


def _tz_name() -> str:
    from django.utils import timezone

    return timezone.get_current_timezone_name()


# The article, the statuses, the offset and the page size are written into the
# statement, not bound. PostgreSQL then plans it knowing which article it reads (an
# article with 100,000 comments needs the ordered index scan; planned for an average
# article it would sort them all), and keeps that plan for the next cold read of the
# same page instead of planning the long statement again: one prepared statement per
# article read cold, in psycopg's per-connection cache (the last 100).


@lru_cache(maxsize=1024)
def _page_sql(
    article_id: int, direction: str, position_sql: str, tz_name: str, offset: int, shown: int
) -> str:
    """The statement for one article, ordering, cursor test, time zone and window."""
    # Only our own constants are formatted in: integers, a direction from _ORDERINGS,
    # a fixed cursor test, and the time zone name as a quoted literal.
    return f"""
WITH top AS (
    SELECT {_top_columns(tz_name)}
    FROM comments_comment c
    WHERE c.article_id = {article_id} AND c.parent_id IS NULL {position_sql}
      AND c.status IN ('published', 'removed')
      AND (c.status = 'published' OR (
          -- A scalar subquery, not EXISTS: it probes the reply index once per removed
          -- comment, where EXISTS may hash every published reply of the table.
          SELECT true FROM comments_comment r
          WHERE r.thread_id = c.id AND r.parent_id IS NOT NULL AND r.status = 'published'
          LIMIT 1) IS NOT NULL)
    ORDER BY c.created_at {direction}, c.id {direction}
    OFFSET {offset} LIMIT {shown + 1}
), numbered AS (
    SELECT *, row_number() OVER (ORDER BY created_at {direction}, id {direction}) AS seq FROM top
)
SELECT {_TOP_LEVEL}, t.id, NULL::bigint, t.status = 'published', t.created_at::text,
       {_fragment_sql("t", tz_name)}, t.seq
FROM numbered t
UNION ALL
SELECT {_REPLY}, c.id, c.parent_id, c.status = 'published', NULL, {_fragment_sql("c", tz_name)},
       row_number() OVER (ORDER BY c.created_at, c.id)
FROM comments_comment c
WHERE c.thread_id IN (SELECT id FROM numbered WHERE seq <= {shown})
  AND c.parent_id IS NOT NULL AND c.status IN ('published', 'removed')
"""  # noqa: S608


def _top_columns(tz_name: str) -> str:
    """What the top-level rows carry out of their CTE: the fragment's inputs, or the
    stored fragment."""
    if tz_name == _STORED_ZONE:
        return "c.id, c.status, c.created_at, c.public_fragment"
    return (
        "c.id, c.parent_id, c.author_name, c.author_url, c.body_html, c.status,"
        " c.created_at, c.edited_at"
    )


def _fragment_sql(alias: str, tz_name: str) -> str:
    """A comment's JSON up to its replies, as public_row_data + json_bytes write it:
    `{"id":..,...,"removed":..,` (the caller appends `"replies":[...]}`).

    In UTC, the time zone the API answers in unless a deployment changes TIME_ZONE,
    it is the stored `public_fragment` column (migration 0010), which is this same
    expression kept up to date by PostgreSQL on every write of the row.
    """
    if tz_name == _STORED_ZONE:
        return f"{alias}.public_fragment"
    return computed_fragment_sql(alias, tz_name)


def computed_fragment_sql(alias: str, tz_name: str) -> str:
    """The fragment written out in the statement, for any time zone."""
    removed = f"{alias}.status = 'removed'"
    return (
        f"""'{{"id":' || {alias}.id || ',"parent":' || COALESCE({alias}.parent_id::text, 'null')"""
        f""" || CASE WHEN {removed} THEN ',"author_name":"","author_url":null,"body_html":""'"""
        f""" ELSE ',"author_name":' || to_json({alias}.author_name)::text"""
        f""" || ',"author_url":' || CASE WHEN COALESCE({alias}.author_url, '') = '' THEN 'null'"""
        f""" ELSE to_json({alias}.author_url)::text END"""
        f""" || ',"body_html":' || to_json({alias}.body_html)::text END"""
        f""" || ',"created_at":"' || {_iso_sql(f"{alias}.created_at", tz_name)} || '"'"""
        f""" || ',"edited_at":' || COALESCE('"' || {_iso_sql(f"{alias}.edited_at", tz_name)}"""
        f""" || '"', 'null') || ',"removed":' || ({removed})::text || ','"""
    )


def _iso_sql(column: str, tz_name: str) -> str:
    """`column` as serializers._iso_datetime writes it: ISO 8601 in `tz_name`, the
    microseconds only when not zero, a zero offset as Z (NULL stays NULL)."""
    zone = _sql_literal(tz_name)
    local = f"({column} AT TIME ZONE {zone})"
    # One to_char; ".000000" can only be the fraction (cheaper than testing it apart).
    text = f"""replace(to_char({local}, 'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '')"""
    if tz_name == "UTC":
        return f"({text} || 'Z')"
    seconds = f"extract(epoch FROM {local} - ({column} AT TIME ZONE 'UTC'))::int"
    offset = (
        f"CASE WHEN {seconds} = 0 THEN 'Z' ELSE"
        f" CASE WHEN {seconds} < 0 THEN '-' ELSE '+' END"
        f" || lpad((abs({seconds}) / 3600)::text, 2, '0')"
        f" || ':' || lpad((mod(abs({seconds}), 3600) / 60)::text, 2, '0')"
        f" || CASE WHEN mod(abs({seconds}), 60) = 0 THEN ''"
        f" ELSE ':' || lpad(mod(abs({seconds}), 60)::text, 2, '0') END END"
    )
    return f"({text} || {offset})"


def _sql_literal(text: str) -> str:
    """A time zone name as an SQL string literal (names come from settings or zoneinfo)."""
    return "'" + text.replace("'", "''") + "'"
