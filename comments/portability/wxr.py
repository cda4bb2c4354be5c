"""WordPress eXtended RSS (WXR, the file of Tools → Export) into import records.

Statuses: wp:comment_approved "1" is published, "0" held (for a moderator),
"spam" spam, "trash" and "post-trashed" removed (deleted on the old site: hidden,
a placeholder only where published replies hang below it). Pingbacks and
trackbacks are skipped unless `with_pingbacks`; other comment types (order notes,
reviews, ...) are skipped. `import_id` is "<site URL>#<comment id>", so two
WordPress sites' comment 5 stay two comments.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote

from articles.canonical_urls import canonicalize
from comments.models import Comment
from comments.portability.importer import ArticleRecord, CommentRecord, Report
from comments.portability.xml import ImportFileError, iterparse, parse_utc, split_tag

SOURCE = "wxr"
WP_NAMESPACE_PREFIX = "http://wordpress.org/export/"
Status = Comment.Status
APPROVED = {
    "1": Status.PUBLISHED,
    "approve": Status.PUBLISHED,
    "0": Status.HELD,
    "hold": Status.HELD,
    "spam": Status.SPAM,
    "trash": Status.REMOVED,
    "post-trashed": Status.REMOVED,
}
COMMENT_TYPES = {"", "comment"}
PINGBACK_TYPES = {"pingback", "trackback"}


def _fields(element: ET.Element) -> dict[str, ET.Element]:
    """Children by local name; WordPress's own are prefixed "wp:" whatever the WXR version."""
    fields: dict[str, ET.Element] = {}
    for child in element:
        namespace, local = split_tag(child.tag)
        if namespace.startswith(WP_NAMESPACE_PREFIX):
            local = f"wp:{local}"
        fields.setdefault(local, child)
    return fields


def _text(fields: dict[str, ET.Element], name: str) -> str:
    element = fields.get(name)
    return (element.text or "").strip() if element is not None else ""


def parse(
    path: str | Path, report: Report, *, with_pingbacks: bool = False, site_url: str = ""
) -> tuple[dict[str, ArticleRecord], list[CommentRecord]]:
    articles: dict[str, ArticleRecord] = {}
    comments: list[CommentRecord] = []
    stack: list[str] = []
    site = {"link": "", "wp:base_blog_url": "", "wp:base_site_url": ""}
    items = 0
    for event, element in iterparse(path):
        namespace, local = split_tag(element.tag)
        if namespace.startswith(WP_NAMESPACE_PREFIX):
            local = f"wp:{local}"
        if event == "start":
            if not stack and local != "rss":
                raise ImportFileError(
                    f"not a WordPress export (WXR): the root element is <{local}>, not <rss>"
                )
            stack.append(local)
            continue
        stack.pop()
        if len(stack) == 2 and local in site and stack[-1] == "channel":
            site[local] = (element.text or "").strip()
        elif local == "item" and stack[-1:] == ["channel"]:
            items += 1
            _item(element, items, articles, comments, report, with_pingbacks)
            element.clear()
    if items == 0 and not stack:
        report.errors.append("the export has no <item>")
    base = site_url or site["wp:base_blog_url"] or site["link"] or site["wp:base_site_url"]
    if not base:
        raise ImportFileError(
            "the export names no site (channel <link> or <wp:base_blog_url>); "
            "pass --site-url to tell its comments apart from another site's"
        )
    try:
        base = canonicalize(base).rstrip("/")
    except ValueError:
        raise ImportFileError(f"the site URL {base!r} is not an http(s) URL") from None
    for record in comments:
        record.import_id = f"{base}#{record.import_id}"
        if record.parent_import_id:
            record.parent_import_id = f"{base}#{record.parent_import_id}"
    return articles, comments


def _item(
    item: ET.Element,
    number: int,
    articles: dict[str, ArticleRecord],
    comments: list[CommentRecord],
    report: Report,
    with_pingbacks: bool,
) -> None:
    fields = _fields(item)
    title = html.unescape(_text(fields, "title"))  # WordPress keeps entities in titles
    post_id = _text(fields, "wp:post_id")
    where = f"item {number}" + (f" ({title!r})" if title else "")
    key = f"post:{post_id}" if post_id else f"item:{number}"
    articles[key] = ArticleRecord(
        key=key,
        url=_text(fields, "link"),
        title=title,
        slug_hint=unquote(_text(fields, "wp:post_name")) or title or f"wp-{post_id or number}",
        comments_open=_text(fields, "wp:comment_status") != "closed",
        published_at=parse_utc(_text(fields, "wp:post_date_gmt"))
        or parse_utc(_text(fields, "wp:post_date")),
        where=where,
    )
    for child in item:
        namespace, local = split_tag(child.tag)
        if namespace.startswith(WP_NAMESPACE_PREFIX) and local == "comment":
            comments.append(_comment(child, key, where, report, with_pingbacks))


def _comment(
    element: ET.Element, article_key: str, item_where: str, report: Report, with_pingbacks: bool
) -> CommentRecord:
    fields = _fields(element)
    comment_id = _text(fields, "wp:comment_id")
    where = f"comment {comment_id or '?'} of {item_where}"
    approved = _text(fields, "wp:comment_approved")
    kind = _text(fields, "wp:comment_type")
    skip = ""
    if not comment_id:
        skip = "no comment id"
        report.errors.append(f"{where}: no <wp:comment_id>; skipped")
    elif kind in PINGBACK_TYPES and not with_pingbacks:
        skip = kind
    elif kind not in COMMENT_TYPES | PINGBACK_TYPES:
        skip = f"type {kind}"
    elif approved not in APPROVED:
        skip = "unknown approval status"
        report.errors.append(f"{where}: unknown wp:comment_approved {approved!r}; skipped")
    parent = _text(fields, "wp:comment_parent")
    created_at = parse_utc(_text(fields, "wp:comment_date_gmt")) or parse_utc(
        _text(fields, "wp:comment_date")
    )
    if created_at is None and not skip:
        report.errors.append(f"{where}: no usable date; imported with the import's time")
    content = fields.get("wp:comment_content")
    return CommentRecord(
        import_id=comment_id,
        article_key=article_key,
        parent_import_id=parent if parent not in ("", "0") else None,
        author_name=_text(fields, "wp:comment_author"),
        author_email=_text(fields, "wp:comment_author_email"),
        author_url=_text(fields, "wp:comment_author_url"),
        ip_address=_text(fields, "wp:comment_author_IP"),
        html=(content.text or "") if content is not None else "",
        created_at=created_at,
        status=APPROVED.get(approved, Status.HELD),
        source_status=approved,
        where=where,
        skip=skip,
    )
