"""Our own export format: everything needed to restore articles, comments and
their audit trail without loss.

The document is versioned (`format`, `version`) and deterministic: keys sorted,
two-space indentation, UTF-8, articles by slug, comments by id, each comment's
events by time then id, times in UTC ISO 8601. So export → import into an empty
database → export gives the same bytes.

Import keeps each comment's id when it is free. When the id belongs to another
comment (not the same one: same creation time, text and e-mail), the comment gets
a new id and records `import_source="json"`, `import_id=<its id in the file>`;
replies are relinked to the new ids. A comment found again (same id and content,
or by its import source and id) is left alone, so importing a file twice changes
nothing. Restoring is not a new decision: the audit trail is restored as it was,
with no "imported" event added. Users are referred to by username; one that does
not exist here becomes null (its name stays in `actor_name`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.core.management.color import no_style
from django.db import connection, transaction
from tqdm import tqdm

from articles.models import Article, ArticleAlias
from comments.models import Comment, CommentEvent
from comments.portability.importer import (
    BATCH,
    ArticleResolver,
    Report,
    chunks,
    invalidate_articles,
)
from comments.portability.xml import ImportFileError

SOURCE = "json"
FORMAT = "moderated-comments"
VERSION = 1

# Comment fields copied as they are (JSON scalars, or JSON objects for the JSONFields).
COMMENT_VALUES = (
    "depth", "author_name", "author_email", "author_url", "body", "body_html", "status",
    "held_reason", "decision_reason", "check_attempts", "recheck_reason", "akismet_verdict",
    "akismet_guid", "akismet_pro_tip", "akismet_error", "akismet_payload", "honeypot_tripped",
    "discarded", "ip_address", "user_agent", "referrer", "idempotency_key",
    "idempotency_fingerprint", "import_source", "import_id",
)  # fmt: skip
COMMENT_TIMES = (
    "created_at", "published_at", "edited_at", "checked_at", "akismet_checked_at",
    "next_check_at", "personal_data_trimmed_at", "erased_at",
)  # fmt: skip
# Written as references: the article's slug, other comments' ids, a username.
COMMENT_LINKS = ("id", "article", "parent", "thread", "approved_by")
EVENT_VALUES = ("from_status", "to_status", "actor_name", "reason", "details")


def _time(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


def _parse_time(value: object, name: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be an ISO 8601 time or null")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} is not an ISO 8601 time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


# --- export -----------------------------------------------------------------------------


def export_document() -> dict[str, Any]:
    """The whole site as one JSON-ready document, read from one snapshot."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            # One snapshot for every query, so comments and events agree.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return _export()


def _export() -> dict[str, Any]:
    aliases: dict[int, list[str]] = defaultdict(list)
    for article_id, url in ArticleAlias.objects.order_by("url").values_list("article_id", "url"):
        aliases[article_id].append(url)
    articles = [
        {
            "slug": article.slug,
            "title": article.title,
            "url": article.url,
            "aliases": aliases[article.pk],
            "published_at": _time(article.published_at),
            "comments_open": article.comments_open,
        }
        for article in Article.objects.order_by("slug")
    ]
    events: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for event in CommentEvent.objects.select_related("actor_user").order_by(
        "comment_id", "created_at", "id"
    ):
        entry = {name: getattr(event, name) for name in EVENT_VALUES}
        entry["actor_user"] = event.actor_user.get_username() if event.actor_user else None
        entry["created_at"] = _time(event.created_at)
        events[event.comment_id].append(entry)
    comments = []
    for comment in (
        Comment.objects.select_related("article", "approved_by").order_by("pk").iterator(2000)
    ):
        entry = {name: getattr(comment, name) for name in COMMENT_VALUES}
        entry.update({name: _time(getattr(comment, name)) for name in COMMENT_TIMES})
        entry.update(
            id=comment.pk,
            article=comment.article.slug,
            parent=comment.parent_id,
            thread=comment.thread_id,
            approved_by=comment.approved_by.get_username() if comment.approved_by else None,
            events=events.get(comment.pk, []),
        )
        comments.append(entry)
    return {"format": FORMAT, "version": VERSION, "articles": articles, "comments": comments}


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, sort_keys=True, indent=2) + "\n"


def write_export(stream: IO[str]) -> dict[str, int]:
    """Write the export to a text stream; returns what it holds."""
    document = export_document()
    stream.write(dumps(document))
    events = sum(len(comment["events"]) for comment in document["comments"])
    return {
        "articles": len(document["articles"]),
        "comments": len(document["comments"]),
        "events": events,
    }


# --- import -----------------------------------------------------------------------------


def load(stream: IO[str]) -> dict[str, Any]:
    """Parse and check the document's envelope; raises ImportFileError."""
    try:
        document = json.load(stream)
    except json.JSONDecodeError as exc:
        raise ImportFileError(
            f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"not UTF-8 text: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ImportFileError(f'not an export of this site: "format" must be "{FORMAT}"')
    if document.get("version") != VERSION:
        raise ImportFileError(
            f"unsupported version {document.get('version')!r}; this server reads version {VERSION}"
        )
    for name in ("articles", "comments"):
        if not isinstance(document.get(name), list):
            raise ImportFileError(f'"{name}" must be a list')
    return document


def import_document(
    document: dict[str, Any], *, dry_run: bool = False, progress: bool = False
) -> Report:
    report = Report(SOURCE, dry_run=dry_run)
    with transaction.atomic():
        _Restore(report, progress).run(document)
        if dry_run:
            transaction.set_rollback(True)
    return report


def _require(entry: object, fields: dict[str, type | tuple[type, ...]], where: str) -> dict:
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be an object")
    for name, kind in fields.items():
        if name not in entry:
            raise ValueError(f"{where}: missing {name!r}")
        if not isinstance(entry[name], kind) or (isinstance(entry[name], bool) and kind is int):
            raise ValueError(f"{where}: {name!r} has the wrong type")
    return entry


class _Restore:
    def __init__(self, report: Report, progress: bool) -> None:
        self.report = report
        self.progress = progress
        self.users: dict[str, int] = {}

    def run(self, document: dict[str, Any]) -> None:
        slugs = self._articles(document["articles"])
        entries = self._valid_comments(document["comments"], slugs)
        self._load_users(entries)
        kept, remapped, pks = self._plan(entries)
        new = kept + remapped
        if not new:
            return
        bar = tqdm(total=len(new), desc=SOURCE, unit="comment", disable=not self.progress)
        objects: dict[int, Comment] = {}
        for group, remap in ((kept, False), (remapped, True)):
            for batch in chunks(group):
                created = Comment.objects.bulk_create(
                    [self._comment(entry, slugs, remap=remap) for entry in batch],
                    batch_size=BATCH,
                )
                for entry, comment in zip(batch, created, strict=True):
                    objects[entry["id"]] = comment
                    pks[entry["id"]] = comment.pk
                bar.update(len(batch))
            if not remap:
                _advance_sequence(Comment, max((e["id"] for e in kept), default=0))
        bar.close()
        for entry in new:
            comment = objects[entry["id"]]
            comment.created_at = _parse_time(entry["created_at"], "created_at")
            comment.parent_id = pks.get(entry["parent"]) if entry["parent"] is not None else None
            comment.thread_id = pks.get(entry["thread"]) if entry["thread"] is not None else None
            if entry["parent"] is not None and comment.parent_id is None:
                self.report.reattached += 1
                comment.depth, comment.thread_id = 0, None
            self.report.comments_new[comment.status] += 1
        Comment.objects.bulk_update(
            list(objects.values()), ["created_at", "parent", "thread", "depth"], batch_size=BATCH
        )
        self._events(new, objects)
        touched = {comment.article_id for comment in objects.values()}
        Article.objects.filter(pk__in=touched).refresh_comment_counts()
        if not self.report.dry_run:
            invalidate_articles(touched)

    def _articles(self, entries: list) -> dict[str, int]:
        """slug in the file -> article id here (matched by slug or URL, else created)."""
        resolver = ArticleResolver(self.report)
        slugs: dict[str, int] = {}
        for index, entry in enumerate(entries):
            where = f"articles[{index}]"
            try:
                _require(
                    entry,
                    {"slug": str, "title": str, "url": str, "aliases": list, "comments_open": bool},
                    where,
                )
                published_at = _parse_time(entry.get("published_at"), f"{where}.published_at")
            except ValueError as exc:
                self.report.errors.append(str(exc))
                continue
            article = Article.objects.filter(slug=entry["slug"]).first()
            article_id = article.pk if article else resolver.find(entry["url"])
            if article_id is not None:
                self.report.articles_matched.add(article_id)
            else:
                article_id = Article.objects.create(
                    slug=entry["slug"][:200],
                    title=entry["title"][:300],
                    url=entry["url"][:500],
                    published_at=published_at,
                    comments_open=entry["comments_open"],
                ).pk
                self.report.articles_created.append(entry["slug"])
            slugs[entry["slug"]] = article_id
            for url in entry["aliases"]:
                owner = ArticleAlias.objects.filter(url=url).values_list("article_id", flat=True)
                if not owner:
                    ArticleAlias.objects.create(article_id=article_id, url=str(url)[:500])
                    self.report.aliases_created += 1
                elif owner[0] != article_id:
                    self.report.errors.append(
                        f"{where}: alias {url!r} belongs to another article here; not moved"
                    )
        return slugs

    def _valid_comments(self, entries: list, slugs: dict[str, int]) -> list[dict]:
        valid = []
        types: dict[str, type | tuple[type, ...]] = {
            "id": int, "article": str, "status": str, "body": str, "author_email": str,
            "events": list, "parent": (int, type(None)), "thread": (int, type(None)),
        }  # fmt: skip
        for index, entry in enumerate(entries):
            where = f"comments[{index}]"
            try:
                _require(entry, types, where)
                where = f"comment {entry['id']}"
                missing = [
                    name
                    for name in (*COMMENT_VALUES, *COMMENT_TIMES, *COMMENT_LINKS)
                    if name not in entry
                ]
                if missing:
                    raise ValueError(f"{where}: missing {', '.join(missing)}")
                for name in COMMENT_TIMES:
                    _parse_time(entry[name], f"{where}.{name}")
                if entry["status"] not in Comment.Status.values:
                    raise ValueError(f"{where}: unknown status {entry['status']!r}")
                for number, event in enumerate(entry["events"]):
                    _require(
                        event, {"to_status": str, "actor_name": str}, f"{where}.events[{number}]"
                    )
                    _parse_time(event.get("created_at"), f"{where}.events[{number}].created_at")
            except ValueError as exc:
                self.report.errors.append(f"{exc}; skipped")
                continue
            if entry["article"] not in slugs:
                self.report.errors.append(
                    f"{where}: article {entry['article']!r} is not in the file"
                )
                continue
            valid.append(entry)
        return valid

    def _load_users(self, entries: list[dict]) -> None:
        names = {entry["approved_by"] for entry in entries if entry["approved_by"]}
        names |= {
            event["actor_user"]
            for entry in entries
            for event in entry["events"]
            if event.get("actor_user")
        }
        User = get_user_model()
        field = User.USERNAME_FIELD
        for batch in chunks(sorted(names), 1000):
            for pk, name in User.objects.filter(**{f"{field}__in": batch}).values_list("pk", field):
                self.users[name] = pk

    def _plan(self, entries: list[dict]) -> tuple[list[dict], list[dict], dict[int, int]]:
        """(kept ids, new ids, file id -> pk of the comments already here)."""
        pks: dict[int, int] = {}
        by_import: dict[tuple[str, str], int] = {}
        wanted = {(e["import_source"], e["import_id"]) for e in entries if e["import_source"]}
        wanted |= {(SOURCE, str(e["id"])) for e in entries}
        for source in {source for source, _ in wanted}:
            ids = sorted(import_id for s, import_id in wanted if s == source)
            for batch in chunks(ids, 1000):
                rows = Comment.objects.filter(import_source=source, import_id__in=batch)
                for import_id, pk in rows.values_list("import_id", "pk"):
                    by_import[(source, import_id)] = pk
        taken: dict[int, tuple] = {}
        for batch in chunks(sorted(e["id"] for e in entries), 1000):
            rows = Comment.objects.filter(pk__in=batch).values_list(
                "pk", "created_at", "body", "author_email"
            )
            taken.update({row[0]: row[1:] for row in rows})
        kept, remapped = [], []
        for entry in entries:
            original = entry["id"]
            same = (_parse_time(entry["created_at"], ""), entry["body"], entry["author_email"])
            found = by_import.get((SOURCE, str(original)))
            if found is None and entry["import_source"]:
                found = by_import.get((entry["import_source"], entry["import_id"]))
            if found is None and taken.get(original) == same:
                found = original
            if found is not None:
                pks[original] = found
                self.report.comments_already += 1
            elif original in taken or original <= 0:
                remapped.append(entry)
            else:
                kept.append(entry)
        return kept, remapped, pks

    def _comment(self, entry: dict, slugs: dict[str, int], *, remap: bool) -> Comment:
        fields = {name: entry[name] for name in COMMENT_VALUES}
        fields.update({name: _parse_time(entry[name], name) for name in COMMENT_TIMES})
        comment = Comment(
            **fields,
            article_id=slugs[entry["article"]],
            approved_by_id=self.users.get(entry["approved_by"] or ""),
        )
        if entry["approved_by"] and comment.approved_by_id is None:
            self.report.errors.append(
                f"comment {entry['id']}: user {entry['approved_by']!r} does not exist here"
            )
        if remap:
            comment.import_source, comment.import_id = SOURCE, str(entry["id"])
            comment.idempotency_key = ""  # it may belong to a comment here
        else:
            comment.pk = entry["id"]
        return comment

    def _events(self, entries: list[dict], objects: dict[int, Comment]) -> None:
        events: list[CommentEvent] = []
        times: list[dt.datetime | None] = []
        for entry in entries:
            for event in entry["events"]:
                events.append(
                    CommentEvent(
                        comment_id=objects[entry["id"]].pk,
                        actor_user_id=self.users.get(event.get("actor_user") or ""),
                        from_status=event.get("from_status", ""),
                        to_status=event["to_status"],
                        actor_name=event["actor_name"][:150],
                        reason=str(event.get("reason", ""))[:200],
                        details=event.get("details") or {},
                    )
                )
                times.append(_parse_time(event.get("created_at"), "created_at"))
        CommentEvent.objects.bulk_create(events, batch_size=BATCH)
        for event, created_at in zip(events, times, strict=True):
            if created_at is not None:
                event.created_at = created_at
        CommentEvent.objects.bulk_update(events, ["created_at"], batch_size=BATCH)


def _advance_sequence(model: type, at_least: int) -> None:
    """Move the id sequence past ids inserted explicitly; never moves it back.

    (Moving it back would hand a deleted comment's id to a new one.)
    """
    if at_least <= 0:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [model._meta.db_table])
            sequence = cursor.fetchone()[0]
            cursor.execute(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608
            last_value, is_called = cursor.fetchone()
            if (last_value if is_called else last_value - 1) >= at_least:
                return
    statements: list[str] = connection.ops.sequence_reset_sql(no_style(), [model])
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
