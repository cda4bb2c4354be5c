"""The latest published comments: of one article (its feed) or of the whole site.

Shared by the Atom feeds (comments/feeds.py) and the JSON list a site-wide
"latest comments" widget reads. Only published comments, only public fields;
the article comes in the same query. The bytes are cached in the read cache
(comments/read_cache.py): under the article's generation for an article, under
the site-wide one (replaced with every article's) for the whole site, so a
publish, an edit or a moderator's removal anywhere shows at once.
"""

from __future__ import annotations

from urllib.parse import urldefrag

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from comments import abuse, read_cache
from comments.models import Comment

LATEST_DEFAULT = 10
LATEST_MAX = 50

# Everything a public listing shows; never the e-mail, IP, user agent or body source.
PUBLIC_FIELDS = (
    "id",
    "article_id",
    "author_name",
    "author_url",
    "body_html",
    "created_at",
    "published_at",
    "edited_at",
    "article__id",
    "article__slug",
    "article__title",
    "article__url",
)


def latest_published(limit: int, article_id: int | None = None) -> list[Comment]:
    """The newest published comments with their articles, in one query.

    Newest by when they were written, as the comment list's `order=newest` (and as
    WordPress's comment feeds): the (status, created_at) index then yields the first
    `limit` rows directly, however many comments there are, where ordering by
    `published_at` (not indexed) would sort every published comment.
    """
    comments = Comment.objects.published().select_related("article").only(*PUBLIC_FIELDS)
    if article_id is not None:
        comments = comments.filter(article_id=article_id)
    return list(comments.order_by("-created_at", "-id")[:limit])


def permalink(comment: Comment) -> str:
    """The comment on its article's page: the widget gives each comment the id c<id>."""
    return f"{urldefrag(comment.article.url).url}#c{comment.pk}"


def feed_items() -> int:
    return max(1, int(getattr(settings, "COMMENTS_FEED_ITEMS", 50)))


# --- the JSON list ----------------------------------------------------------------


class LatestQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=LATEST_MAX,
        help_text=f"How many comments, 1 to {LATEST_MAX} (default {LATEST_DEFAULT}).",
    )


class LatestArticleSerializer(serializers.Serializer):
    slug = serializers.CharField()
    title = serializers.CharField()
    url = serializers.URLField(help_text="The article's page on the publisher's site.")


class LatestCommentSerializer(serializers.Serializer):
    """A published comment with its article: never an e-mail, IP or user agent."""

    id = serializers.IntegerField()
    article = LatestArticleSerializer()
    author_name = serializers.CharField()
    author_url = serializers.SerializerMethodField()
    body_html = serializers.CharField(help_text="Sanitised HTML.")
    created_at = serializers.DateTimeField()
    published_at = serializers.DateTimeField(allow_null=True)
    edited_at = serializers.DateTimeField(allow_null=True)
    url = serializers.SerializerMethodField()

    def get_author_url(self, comment: Comment) -> str | None:
        return comment.author_url or None

    def get_url(self, comment: Comment) -> str:
        """The comment on the article's page (`<article url>#c<id>`)."""
        return permalink(comment)


class LatestCommentsSerializer(serializers.Serializer):
    results = LatestCommentSerializer(many=True)


def latest_body(limit: int) -> bytes:
    comments = latest_published(limit)
    return read_cache.json_bytes({"results": LatestCommentSerializer(comments, many=True).data})


class LatestCommentsView(APIView):
    """For a site-wide "latest comments" box; the same for every reader, so cached."""

    authentication_classes: list = []
    throttle_classes = [abuse.ReadThrottle]

    @extend_schema(
        parameters=[LatestQuerySerializer],
        responses=LatestCommentsSerializer,
        summary="The site's latest published comments, newest first",
    )
    def get(self, request: Request) -> HttpResponse:
        query = LatestQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        limit = query.validated_data.get("limit", LATEST_DEFAULT)
        entry, _ = read_cache.page(read_cache.SITE, f"latest-{limit}", lambda: latest_body(limit))
        return read_cache.response(request.META, entry)
