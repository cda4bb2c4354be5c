"""PostgreSQL only: each comment keeps its public JSON fragment in a generated column.

The cold comment page (comments/page_sql.py) used to write every comment's JSON in
the statement: escaping the body and formatting two timestamps took about 1.5 ms of
PostgreSQL's time for the 326 comments of a large page (issue 7, docs/performance.md).
`public_fragment` is that JSON, written in UTC, and PostgreSQL recomputes it on every
INSERT and UPDATE of the row, so no code path can leave it stale: not a transition, an
edit, an erasure or a bulk `QuerySet.update`.

The expression must be immutable. `to_json(text)` and `to_char` with a pattern of
digits only are, in fact, but PostgreSQL marks them stable (other argument types and
locale patterns are not), hence the wrapper function declared IMMUTABLE. It is PL/pgSQL,
which keeps the expression's plan for the session: as an SQL function it was planned
again for every INSERT and UPDATE, adding about 170 µs to each. The text is
page_sql._fragment_sql("c", "UTC") as of this migration; tests/test_page_sql.py checks
that the column and that expression agree on every kind of row.

Adding the column rewrites the table once, under an exclusive lock: about 3.4 s per
100,000 comments on the benchmark machine. Other databases have no column; there the
page is written in Python as before.
"""

import re

from django.db import migrations

FRAGMENT = """'{"id":' || c.id || ',"parent":' || COALESCE(c.parent_id::text, 'null') || CASE WHEN c.status = 'removed' THEN ',"author_name":"","author_url":null,"body_html":""' ELSE ',"author_name":' || to_json(c.author_name)::text || ',"author_url":' || CASE WHEN COALESCE(c.author_url, '') = '' THEN 'null' ELSE to_json(c.author_url)::text END || ',"body_html":' || to_json(c.body_html)::text END || ',"created_at":"' || (replace(to_char((c.created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '') || 'Z') || '"' || ',"edited_at":' || COALESCE('"' || (replace(to_char((c.edited_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '') || 'Z') || '"', 'null') || ',"removed":' || (c.status = 'removed')::text || ','"""  # noqa: E501

# In the function the columns are its arguments, qualified by its name.
FRAGMENT_OF_ARGUMENTS = re.sub(r"\bc\.", "comments_public_fragment.", FRAGMENT)

CREATE = [
    f"""
CREATE FUNCTION comments_public_fragment(
    id bigint, parent_id bigint, author_name text, author_url text, body_html text,
    status text, created_at timestamptz, edited_at timestamptz
) RETURNS text LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fragment$
BEGIN
    RETURN {FRAGMENT_OF_ARGUMENTS};
END
$fragment$
""",
    """
ALTER TABLE comments_comment ADD COLUMN public_fragment text GENERATED ALWAYS AS (
    comments_public_fragment(id, parent_id, author_name, author_url, body_html, status,
                             created_at, edited_at)
) STORED
""",
]
DROP = [
    "ALTER TABLE comments_comment DROP COLUMN public_fragment",
    "DROP FUNCTION comments_public_fragment(bigint, bigint, text, text, text, text, "
    "timestamptz, timestamptz)",
]


def _on_postgresql(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("comments", "0009_privacy_import_notifications_webhooks"),
    ]

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP))]
