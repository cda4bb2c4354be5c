"""The shared writer of the WXR and Disqus importers.

A parser hands over plain records; `import_records` writes them in one
transaction:

* idempotent: a comment is known by (`import_source`, `import_id`), unique in the
  database, so a second import of the same file finds every comment and adds nothing;
* articles are matched by canonical URL (articles.canonical_urls) against
  `Article.url` and `ArticleAlias.url`, else created with a unique slug;
* threading as `moderation.submit` does it: `thread` is the top-level comment,
  `depth` the parent's plus one, and a reply below `COMMENTS_MAX_DEPTH` attaches to
  the deepest allowed ancestor; a reply whose parent is not in the file (or was
  skipped) becomes a top-level comment, and the report counts it;
* the source's decision is kept (published, held, spam, rejected, removed) and the
  comment is never sent to Akismet, unless `check` is set: then what the source had
  published or held arrives `pending` and goes through the normal check (what it
  had already called spam or deleted keeps that status);
* every new comment gets one CommentEvent ("imported from <source>", actor
  "import"); the import is a creation, like `moderation.submit`, so it fires no
  webhooks and no e-mails; any later change goes through comments.moderation;
* rows are written with bulk_create in batches; `created_at` (auto_now_add) and the
  links between new comments are set right after by one bulk_update;
* afterwards the touched articles' stored counts are recomputed and their cached
  reads invalidated.

`dry_run` runs all of it and rolls the transaction back, so the report is exactly
what a real import would do, and nothing is written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from tqdm import tqdm

from articles.canonical_urls import canonicalize
from articles.models import Article, ArticleAlias
from comments import read_cache
from comments.models import Comment, CommentEvent, HoldReason
from comments.portability.html import import_body

Status = Comment.Status
IMPORT_ACTOR = "import"
BATCH = 500
_url_validator = URLValidator(schemes=["http", "https"])


@dataclass
class ArticleRecord:
    """An article (WordPress item, Disqus thread) as the source describes it."""

    key: str
    url: str
    title: str
    slug_hint: str
    comments_open: bool = True
    published_at: dt.datetime | None = None
    where: str = ""  # how to find it in the file, for messages


@dataclass
class CommentRecord:
    """One comment as the source describes it. `status` is ours (a Comment.Status)."""

    import_id: str
    article_key: str
    parent_import_id: str | None
    author_name: str
    author_email: str
    author_url: str
    ip_address: str
    html: str
    created_at: dt.datetime | None
    status: str
    source_status: str
    where: str = ""
    skip: str = ""  # why it is not imported ("pingback", "thread deleted", ...)


@dataclass
class Report:
    """What an import did (or, with dry_run, would do)."""

    source: str
    dry_run: bool = False
    articles_matched: set[int] = field(default_factory=set)
    articles_created: list[str] = field(default_factory=list)
    comments_new: Counter[str] = field(default_factory=Counter)
    comments_already: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    reattached: int = 0
    invalid_emails: int = 0
    checks_enqueued: int = 0
    aliases_created: int = 0
    errors: list[str] = field(default_factory=list)

    MAX_ERRORS_SHOWN = 50

    def lines(self) -> list[str]:
        head = "Dry run (nothing was written)" if self.dry_run else "Import finished"
        new = sum(self.comments_new.values())
        by_status = ", ".join(f"{n} {status}" for status, n in sorted(self.comments_new.items()))
        lines = [
            f"{head}: {self.source}",
            f"  articles matched:          {len(self.articles_matched)}",
            f"  articles created:          {len(self.articles_created)}"
            + (f" ({', '.join(self.articles_created[:10])}" if self.articles_created else "")
            + (", ..." if len(self.articles_created) > 10 else "")
            + (")" if self.articles_created else ""),
            f"  comments new:              {new}" + (f" ({by_status})" if by_status else ""),
            f"  comments already imported: {self.comments_already}",
        ]
        if self.aliases_created:
            lines.append(f"  aliases created:           {self.aliases_created}")
        for reason, n in sorted(self.skipped.items()):
            lines.append(f"  skipped ({reason}): {n}")
        if self.reattached:
            lines.append(f"  replies without their parent, made top-level: {self.reattached}")
        if self.invalid_emails:
            lines.append(f"  invalid e-mail addresses imported as empty: {self.invalid_emails}")
        if self.checks_enqueued:
            lines.append(f"  comments sent to the spam check: {self.checks_enqueued}")
        lines.append(f"  errors: {len(self.errors)}")
        lines.extend(f"    {error}" for error in self.errors[: self.MAX_ERRORS_SHOWN])
        if len(self.errors) > self.MAX_ERRORS_SHOWN:
            lines.append(f"    ... and {len(self.errors) - self.MAX_ERRORS_SHOWN} more")
        return lines


def chunks(items: list, size: int = BATCH) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- articles ---------------------------------------------------------------------------


class ArticleResolver:
    """Finds an article by canonical URL, or creates it with a unique slug."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self._index: dict[str, int] | None = None
        self._slugs_taken: set[str] = set()

    def _canonical_index(self) -> dict[str, int]:
        """Every address here -> its article: an alias wins, then the oldest article."""
        if self._index is None:
            index: dict[str, int] = {}
            for article_id, url in ArticleAlias.objects.values_list("article_id", "url"):
                _index_url(index, url, article_id)
            for article_id, url in Article.objects.order_by("pk").values_list("pk", "url"):
                _index_url(index, url, article_id)
            self._index = index
        return self._index

    def find(self, url: str) -> int | None:
        try:
            return self._canonical_index().get(match_key(url))
        except ValueError:
            return None

    def resolve(self, record: ArticleRecord) -> int | None:
        """The article's id; None (and an error in the report) when it has no usable URL."""
        try:
            canonical = canonicalize(record.url)
        except ValueError:
            self.report.errors.append(f"{record.where}: no usable http(s) link ({record.url!r})")
            return None
        if len(canonical) > 500:
            self.report.errors.append(f"{record.where}: link longer than 500 characters")
            return None
        index = self._canonical_index()
        key = match_key(canonical)
        if key in index:
            self.report.articles_matched.add(index[key])
            return index[key]
        slug = self.unique_slug(record.slug_hint or record.title or record.key)
        article = Article.objects.create(
            slug=slug,
            title=(record.title or slug)[:300],
            url=canonical,
            published_at=record.published_at,
            comments_open=record.comments_open,
        )
        index[key] = article.pk
        self.report.articles_created.append(slug)
        return article.pk

    def unique_slug(self, hint: str) -> str:
        base = (slugify(hint) or "imported")[:180].strip("-") or "imported"
        taken = self._slugs_taken | set(
            Article.objects.filter(slug__startswith=base).values_list("slug", flat=True)
        )
        slug, n = base, 1
        while slug in taken:
            n += 1
            slug = f"{base}-{n}"
        self._slugs_taken.add(slug)
        return slug


def match_key(url: str) -> str:
    """The canonical URL, with or without a trailing slash (the same address either way).

    Raises ValueError for anything but an http(s) URL.
    """
    parts = urlsplit(canonicalize(url))
    if len(parts.path) > 1 and parts.path.endswith("/"):
        parts = parts._replace(path=parts.path.rstrip("/") or "/")
    return urlunsplit(parts)


def _index_url(index: dict[str, int], url: str, article_id: int) -> None:
    with contextlib.suppress(ValueError):
        index.setdefault(match_key(url), article_id)


# --- comments ---------------------------------------------------------------------------


@dataclass
class _Node:
    """Where a comment sits in its thread. Refs are a pk (int) or a new import id (str)."""

    depth: int
    parent: int | str | None
    thread: int | str | None
    article_id: int


def clean_email(value: str, report: Report, where: str) -> str:
    value = value.strip()
    if not value:
        return ""
    try:
        validate_email(value)
    except ValidationError:
        report.invalid_emails += 1
        return ""
    return value[:254]


def clean_url(value: str) -> str:
    value = value.strip()
    if not value or len(value) > 200:
        return ""
    try:
        _url_validator(value)
    except ValidationError:
        return ""
    return value


def clean_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def import_records(
    source: str,
    articles: dict[str, ArticleRecord],
    comments: list[CommentRecord],
    *,
    dry_run: bool = False,
    check: bool = False,
    progress: bool = False,
    report: Report | None = None,
) -> Report:
    """Write the records (see the module docstring); returns the report."""
    report = report or Report(source)
    report.dry_run = dry_run
    with transaction.atomic():
        _Writer(source, report, check=check, progress=progress).run(articles, comments)
        if dry_run:
            transaction.set_rollback(True)
    return report


class _Writer:
    def __init__(self, source: str, report: Report, *, check: bool, progress: bool) -> None:
        self.source = source
        self.report = report
        self.check = check
        self.progress = progress
        self.articles = ArticleResolver(report)
        self.max_depth = settings.COMMENTS_MAX_DEPTH
        self._by_pk: dict[int, _Node] = {}

    def run(self, articles: dict[str, ArticleRecord], records: list[CommentRecord]) -> None:
        wanted: list[CommentRecord] = []
        for record in records:
            if record.skip:
                self.report.skipped[record.skip] += 1
            elif len(record.import_id) > 255:
                self.report.errors.append(f"{record.where}: source id longer than 255 characters")
            elif record.article_key not in articles:
                self.report.errors.append(f"{record.where}: its article is not in the file")
            else:
                wanted.append(record)
        existing = self._existing({record.import_id for record in wanted})
        new = [record for record in wanted if record.import_id not in existing]
        self.report.comments_already += len(wanted) - len(new)

        article_ids: dict[str, int | None] = {}
        for record in new:
            if record.article_key not in article_ids:
                article_ids[record.article_key] = self.articles.resolve(
                    articles[record.article_key]
                )
        placed: list[tuple[CommentRecord, int]] = []
        for record in new:
            article_id = article_ids[record.article_key]
            if article_id is None:
                self.report.skipped["article without a usable link"] += 1
            else:
                placed.append((record, article_id))
        if not placed:
            return
        nodes = self._thread(placed, existing)
        created = self._insert(placed, nodes)
        touched = {article_id for _, article_id in placed}
        Article.objects.filter(pk__in=touched).refresh_comment_counts()
        if not self.report.dry_run:
            invalidate_articles(touched)
        if self.check:
            to_check = [pk for pk, status in created if status == Status.PENDING]
            self.report.checks_enqueued = len(to_check)
            enqueue_checks_on_commit(to_check)

    def _existing(self, import_ids: set[str]) -> dict[str, int]:
        """import id -> pk of the comments an earlier import already wrote."""
        found: dict[str, int] = {}
        for batch in chunks(sorted(import_ids), 1000):
            rows = Comment.objects.filter(
                import_source=self.source, import_id__in=batch
            ).values_list("import_id", "pk", "depth", "parent_id", "thread_id", "article_id")
            for import_id, pk, depth, parent_id, thread_id, article_id in rows:
                found[import_id] = pk
                self._by_pk[pk] = _Node(depth, parent_id, thread_id, article_id)
        return found

    def _node(self, ref: int | str, nodes: dict[str, _Node]) -> _Node | None:
        if isinstance(ref, str):
            return nodes.get(ref)
        if ref not in self._by_pk:
            row = Comment.objects.filter(pk=ref).values_list(
                "depth", "parent_id", "thread_id", "article_id"
            )
            self._by_pk[ref] = _Node(*row[0]) if row else _Node(0, None, None, 0)
        return self._by_pk[ref]

    def _thread(
        self, placed: list[tuple[CommentRecord, int]], existing: dict[str, int]
    ) -> dict[str, _Node]:
        """Parent, thread and depth of every new comment, parents placed before children."""
        records = {record.import_id: (record, article_id) for record, article_id in placed}
        nodes: dict[str, _Node] = {}
        cut: set[str] = set()  # comments whose reply link closes a cycle
        for import_id in records:
            # The chain of not yet placed ancestors among the new comments, then top down.
            chain = [import_id]
            while True:
                parent_id = records[chain[-1]][0].parent_import_id
                if not parent_id or parent_id not in records or parent_id in nodes:
                    break
                if parent_id in chain:  # a cycle in the file: cut it here
                    self.report.errors.append(
                        f"{records[chain[-1]][0].where}: replies form a cycle; imported top-level"
                    )
                    cut.add(chain[-1])
                    break
                chain.append(parent_id)
            for member in reversed(chain):
                nodes[member] = self._place(records[member], existing, nodes, member in cut)
        return nodes

    def _place(
        self,
        entry: tuple[CommentRecord, int],
        existing: dict[str, int],
        nodes: dict[str, _Node],
        cut: bool,
    ) -> _Node:
        record, article_id = entry
        parent_id = record.parent_import_id
        parent_ref: int | str | None = None
        if parent_id and parent_id in nodes and not cut:
            parent_ref = parent_id
        elif parent_id and parent_id in existing:
            parent_ref = existing[parent_id]
        elif parent_id and not cut:
            self.report.reattached += 1
        parent = self._node(parent_ref, nodes) if parent_ref is not None else None
        if parent is not None and parent.article_id != article_id:
            self.report.errors.append(
                f"{record.where}: its parent belongs to another article; imported top-level"
            )
            parent_ref, parent = None, None
        # As moderation.submit: too deep a reply attaches to the deepest allowed ancestor.
        while parent is not None and parent.depth >= self.max_depth and parent.parent:
            parent_ref = parent.parent
            parent = self._node(parent_ref, nodes)
        if parent is None:
            return _Node(0, None, None, article_id)
        return _Node(parent.depth + 1, parent_ref, parent.thread or parent_ref, article_id)

    def _comment(self, record: CommentRecord, article_id: int, node: _Node) -> Comment:
        body, body_html = import_body(record.html)
        created_at = record.created_at or timezone.now()
        status = record.status
        next_check_at = None
        if self.check and status in (Status.PUBLISHED, Status.HELD):
            status = Status.PENDING
            next_check_at = timezone.now() + dt.timedelta(
                seconds=settings.COMMENTS_SWEEP_AFTER_SECONDS
            )
        if not body:
            self.report.errors.append(f"{record.where}: empty text")
        return Comment(
            article_id=article_id,
            depth=node.depth,
            author_name=(record.author_name.strip() or "Anonymous")[:100],
            author_email=clean_email(record.author_email, self.report, record.where),
            author_url=clean_url(record.author_url),
            body=body,
            body_html=body_html,
            status=status,
            held_reason=HoldReason.MODERATOR if status == Status.HELD else "",
            decision_reason="imported" if status != Status.PENDING else "",
            ip_address=clean_ip(record.ip_address),
            import_source=self.source,
            import_id=record.import_id,
            published_at=created_at if status == Status.PUBLISHED else None,
            created_at=created_at,
            next_check_at=next_check_at,
        )

    def _insert(
        self, placed: list[tuple[CommentRecord, int]], nodes: dict[str, _Node]
    ) -> list[tuple[int, str]]:
        pks: dict[str, int] = {}
        comments: list[Comment] = []
        created_at: dict[str, dt.datetime] = {}
        bar = tqdm(total=len(placed), desc=self.source, unit="comment", disable=not self.progress)
        for batch in chunks(placed):
            objects = [
                self._comment(record, article_id, nodes[record.import_id])
                for record, article_id in batch
            ]
            for obj in objects:
                created_at[obj.import_id] = obj.created_at
            Comment.objects.bulk_create(objects, batch_size=BATCH)
            for obj in objects:
                pks[obj.import_id] = obj.pk
                self.report.comments_new[obj.status] += 1
            comments.extend(objects)
            bar.update(len(batch))
        bar.close()

        def pk_of(ref: int | str | None) -> int | None:
            return pks[ref] if isinstance(ref, str) else ref

        for comment in comments:
            node = nodes[comment.import_id]
            comment.created_at = created_at[comment.import_id]  # auto_now_add overwrote it
            comment.parent_id = pk_of(node.parent)
            comment.thread_id = pk_of(node.thread)
        Comment.objects.bulk_update(comments, ["created_at", "parent", "thread"], batch_size=BATCH)
        by_import_id = {record.import_id: record for record, _ in placed}
        CommentEvent.objects.bulk_create(
            [
                CommentEvent(
                    comment_id=comment.pk,
                    from_status="",
                    to_status=comment.status,
                    actor_name=IMPORT_ACTOR,
                    reason=f"imported from {self.source}",
                    details={
                        "source": self.source,
                        "import_id": comment.import_id,
                        "source_status": by_import_id[comment.import_id].source_status,
                    },
                )
                for comment in comments
            ],
            batch_size=BATCH,
        )
        return [(comment.pk, comment.status) for comment in comments]


def invalidate_articles(article_ids: Iterable[int]) -> None:
    """Cached reads of these articles go stale now and again after commit."""
    slugs = list(Article.objects.filter(pk__in=list(article_ids)).values_list("slug", flat=True))
    read_cache.invalidate_slugs(slugs)
    transaction.on_commit(lambda: read_cache.invalidate_slugs(slugs))


def enqueue_checks_on_commit(comment_ids: list[int]) -> None:
    """Hand pending imported comments to the workers after commit, in batches.

    Synchronous publishing (dispatch.publish), not the web process's background
    dispatcher: a management command exits right after. A lost message loses
    nothing: every comment is pending with a `next_check_at`, found by the sweeper.
    """
    if not comment_ids:
        return

    def send() -> None:
        from comments.dispatch import MAX_BATCH, publish

        for batch in chunks(comment_ids, MAX_BATCH):
            publish(batch)

    transaction.on_commit(send)
