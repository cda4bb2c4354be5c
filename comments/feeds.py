"""Atom feeds of published comments: one per article, one of the whole site.

Built with django.contrib.syndication and served as ready bytes from the read
cache (comments/read_cache.py): an article's feed under the article's
generation, the site's under the site-wide one, so a publish, an edit or a
moderator's removal shows in the next request. Each entry carries only what the
public API shows (never an e-mail or IP address), its body as the sanitised
HTML the widget gets, in `<content type="html">`.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils.feedgenerator import Atom1Feed
from django.utils.http import http_date, parse_http_date_safe
from django.views.decorators.http import require_safe

from articles.models import Article
from comments import abuse, read_cache
from comments.latest import feed_items, latest_published, permalink
from comments.models import Comment
from comments.request_context import client_ip

CONTENT_TYPE = "application/atom+xml; charset=utf-8"
# Part of every feed and entry id (a tag: URI needs a date): never change it.
TAG_DATE = "2026"

# What XML 1.0 cannot carry: C0 controls but tab, newline and carriage return,
# lone surrogates, U+FFFE and U+FFFF. Django's XML writer refuses to write them
# (the body could hold one, e.g. \x0b pasted from a word processor, or an import).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: str) -> str:
    """`value` without the characters XML 1.0 cannot carry."""
    return _NOT_XML.sub("", value)


def _tag(specific: str) -> str:
    """A stable tag: URI (RFC 4151) in this server's name, independent of URLs that may move."""
    host = urlsplit(settings.COMMENTS_SITE_URL).hostname or "localhost"
    return f"tag:{host},{TAG_DATE}:{specific}"


class CommentsAtomFeed(Atom1Feed):
    """Atom 1.0 with each comment in `<content type="html">` rather than a summary,
    no `xml:lang` (comments come in any language), and a stable `updated` when
    there are no entries."""

    def root_attributes(self) -> dict[str, str]:
        return {"xmlns": self.ns}

    def add_item_elements(self, handler: Any, item: dict[str, Any]) -> None:
        super().add_item_elements(handler, item)
        handler.addQuickElement("content", item["content_html"], {"type": "html"})

    def latest_post_date(self) -> datetime:
        if not self.items and self.feed.get("empty_updated") is not None:
            return self.feed["empty_updated"]
        return super().latest_post_date()


class _CommentsFeed(Feed):
    feed_type = CommentsAtomFeed

    def item_title(self, comment: Comment) -> str:
        return xml_text(f"{comment.author_name} on {comment.article.title}")

    def item_link(self, comment: Comment) -> str:
        return xml_text(permalink(comment))

    def item_guid(self, comment: Comment) -> str:
        return _tag(f"comment-{comment.pk}")

    def item_description(self, comment: Comment) -> None:
        return None  # the comment goes into <content>, see item_extra_kwargs

    def item_author_name(self, comment: Comment) -> str:
        return xml_text(comment.author_name)

    def item_author_link(self, comment: Comment) -> str | None:
        return xml_text(comment.author_url) or None

    def item_pubdate(self, comment: Comment) -> datetime:
        return comment.published_at or comment.created_at

    def item_updateddate(self, comment: Comment) -> datetime:
        published = self.item_pubdate(comment)
        return max(published, comment.edited_at) if comment.edited_at else published

    def item_extra_kwargs(self, comment: Comment) -> dict[str, str]:
        return {"content_html": xml_text(comment.body_html)}


class ArticleCommentsFeed(_CommentsFeed):
    def title(self, article: Article) -> str:
        return xml_text(f"Comments on {article.title}")

    def link(self, article: Article) -> str:
        return xml_text(article.url)

    def feed_guid(self, article: Article) -> str:
        return _tag(f"article-{article.pk}:comments")

    def items(self, article: Article) -> list[Comment]:
        comments = latest_published(feed_items(), article_id=article.pk)
        for comment in comments:
            comment.article = article  # the same row, already read
        return comments

    def feed_extra_kwargs(self, article: Article) -> dict[str, Any]:
        return {"empty_updated": article.updated_at}


class LatestCommentsFeed(_CommentsFeed):
    title = "Latest comments"

    def link(self) -> str:
        return settings.COMMENTS_SITE_URL

    def feed_guid(self) -> str:
        return _tag("comments")

    def items(self) -> list[Comment]:
        return latest_published(feed_items())


def _body(feed: Feed, obj: object, request: HttpRequest) -> bytes:
    """`Last-Modified` (an HTTP date), a newline, then the feed's XML."""
    generator = feed.get_feed(obj, request)
    modified = http_date(generator.latest_post_date().timestamp())
    return modified.encode() + b"\n" + generator.writeString("utf-8").encode()


def _variant(request: HttpRequest) -> str:
    """The feed's self link is absolute: one cached copy per scheme and host."""
    seen_as = request.build_absolute_uri(request.path)
    return "atom-" + hashlib.blake2b(seen_as.encode(), digest_size=12).hexdigest()


def _throttled(request: HttpRequest) -> HttpResponse | None:
    """The public read limit (COMMENTS_THROTTLE_READ), as on the JSON API."""
    try:
        wait = abuse.read_limit_wait(client_ip(request))
    except abuse.CACHE_ERRORS:
        return None  # like the API's throttles: no limit while the cache is down
    if not wait:
        return None
    response = JsonResponse(
        {"detail": f"Request was throttled. Expected available in {wait} seconds."}, status=429
    )
    response["Retry-After"] = str(wait)
    return response


def _response(request: HttpRequest, entry: read_cache.CachedBody) -> HttpResponse:
    """200 with the feed, or 304 for a client that holds it (ETag, else Last-Modified)."""
    modified, _, xml = entry.body.partition(b"\n")
    last_modified = modified.decode()
    if_none_match = request.META.get("HTTP_IF_NONE_MATCH")
    if if_none_match:  # RFC 9110: If-Modified-Since is ignored when this is present
        fresh = read_cache.not_modified(if_none_match, entry.etag)
    else:
        since = parse_http_date_safe(request.META.get("HTTP_IF_MODIFIED_SINCE", ""))
        modified_at = parse_http_date_safe(last_modified)
        fresh = since is not None and modified_at is not None and modified_at <= since
    result = HttpResponseNotModified() if fresh else HttpResponse(xml, content_type=CONTENT_TYPE)
    result["ETag"] = entry.etag
    result["Last-Modified"] = last_modified
    result["Cache-Control"] = read_cache.cache_control()
    return result


@require_safe
def article_feed(request: HttpRequest, slug: str) -> HttpResponse:
    """GET /feeds/articles/<slug>.atom: the article's latest published comments."""
    refused = _throttled(request)
    if refused is not None:
        return refused

    def compute() -> bytes:
        article = get_object_or_404(
            Article.objects.only("id", "slug", "title", "url", "updated_at"), slug=slug
        )
        return _body(ArticleCommentsFeed(), article, request)

    entry, _ = read_cache.page(slug, _variant(request), compute)
    return _response(request, entry)


@require_safe
def latest_feed(request: HttpRequest) -> HttpResponse:
    """GET /feeds/latest.atom: the latest published comments of every article."""
    refused = _throttled(request)
    if refused is not None:
        return refused
    entry, _ = read_cache.page(
        read_cache.SITE,
        _variant(request),
        lambda: _body(LatestCommentsFeed(), None, request),
    )
    return _response(request, entry)
