"""A Disqus export (Admin → Moderation → Export) into import records.

Threads and posts may come in any order: posts refer to threads and parents by
dsq:id, resolved once the whole file is read. Statuses: isSpam is spam,
isDeleted removed (Disqus shows "This comment was deleted" where replies hang
below it; so do we), anything else published. Posts of a deleted thread are
skipped. `import_id` is the post's dsq:id, unique across Disqus.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

from comments.models import Comment
from comments.portability.importer import ArticleRecord, CommentRecord, Report
from comments.portability.xml import ImportFileError, child_text, iterparse, parse_utc, split_tag

SOURCE = "disqus"
NS = "http://disqus.com"
DSQ_ID = "{http://disqus.com/disqus-internals}id"
Status = Comment.Status


def _tag(name: str) -> str:
    return f"{{{NS}}}{name}"


def _true(element: ET.Element, name: str) -> bool:
    return child_text(element, _tag(name)).lower() == "true"


def parse(path: str | Path, report: Report) -> tuple[dict[str, ArticleRecord], list[CommentRecord]]:
    articles: dict[str, ArticleRecord] = {}
    deleted_threads: set[str] = set()
    comments: list[CommentRecord] = []
    depth = 0
    counts = {"thread": 0, "post": 0}
    for event, element in iterparse(path):
        namespace, local = split_tag(element.tag)
        if event == "start":
            if depth == 0 and (namespace, local) != (NS, "disqus"):
                raise ImportFileError(
                    f"not a Disqus export: the root element is <{local}> "
                    f"(namespace {namespace or 'none'}), not <disqus> of {NS}"
                )
            depth += 1
            continue
        depth -= 1
        if depth != 1 or namespace != NS or local not in counts:
            continue
        counts[local] += 1
        if local == "thread":
            _thread(element, counts["thread"], articles, deleted_threads, report)
        else:
            comments.append(_post(element, counts["post"], report))
        element.clear()
    for record in comments:
        if record.skip:
            continue
        if record.article_key in deleted_threads:
            record.skip = "thread deleted"
        elif record.article_key not in articles:
            record.skip = "unknown thread"
            report.errors.append(
                f"{record.where}: thread {record.article_key!r} is not in the file"
            )
    return articles, comments


def _thread(
    element: ET.Element,
    number: int,
    articles: dict[str, ArticleRecord],
    deleted: set[str],
    report: Report,
) -> None:
    dsq_id = element.get(DSQ_ID, "")
    title = html.unescape(child_text(element, _tag("title")))
    where = f"thread {dsq_id or number}" + (f" ({title!r})" if title else "")
    if not dsq_id:
        report.errors.append(f"{where}: no dsq:id; its posts cannot refer to it")
        return
    if _true(element, "isDeleted"):
        deleted.add(dsq_id)
    link = child_text(element, _tag("link"))
    path_slug = urlsplit(link).path.rstrip("/").rsplit("/", 1)[-1] if link else ""
    articles[dsq_id] = ArticleRecord(
        key=dsq_id,
        url=link,
        title=title,
        slug_hint=path_slug or title or f"disqus-{dsq_id}",
        comments_open=not _true(element, "isClosed"),
        published_at=parse_utc(child_text(element, _tag("createdAt"))),
        where=where,
    )


def _post(element: ET.Element, number: int, report: Report) -> CommentRecord:
    dsq_id = element.get(DSQ_ID, "")
    where = f"post {dsq_id or f'#{number}'}"
    thread = element.find(_tag("thread"))
    parent = element.find(_tag("parent"))
    author = element.find(_tag("author"))
    skip = ""
    if not dsq_id:
        skip = "no dsq:id"
        report.errors.append(f"{where}: no dsq:id; skipped")
    elif thread is None or not thread.get(DSQ_ID):
        skip = "no thread"
        report.errors.append(f"{where}: no <thread dsq:id>; skipped")
    if _true(element, "isSpam"):
        status, source_status = Status.SPAM, "spam"
    elif _true(element, "isDeleted"):
        status, source_status = Status.REMOVED, "deleted"
    else:
        status, source_status = Status.PUBLISHED, "approved"
    created_at = parse_utc(child_text(element, _tag("createdAt")))
    if created_at is None and not skip:
        report.errors.append(f"{where}: no usable createdAt; imported with the import's time")
    return CommentRecord(
        import_id=dsq_id,
        article_key=thread.get(DSQ_ID, "") if thread is not None else "",
        parent_import_id=(parent.get(DSQ_ID) or None) if parent is not None else None,
        author_name=child_text(author, _tag("name")) if author is not None else "",
        author_email=child_text(author, _tag("email")) if author is not None else "",
        author_url="",
        ip_address=child_text(element, _tag("ipAddress")),
        html=(element.findtext(_tag("message")) or ""),
        created_at=created_at,
        status=status,
        source_status=source_status,
        where=where,
        skip=skip,
    )
