"""Article endpoints: public reads, staff writes, batch comment counts, look-up by address."""

from __future__ import annotations

from django.db.models import F
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, OpenApiTypes, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import DjangoModelPermissionsOrAnonReadOnly
from rest_framework.request import Request
from rest_framework.response import Response

from articles import canonical_urls
from articles.models import Article
from articles.serializers import (
    ArticleSerializer,
    CountsQuerySerializer,
    ResolveQuerySerializer,
    with_alias_urls,
)
from comments import read_cache
from comments.abuse import ReadThrottle


class ArticleViewSet(viewsets.ModelViewSet):
    serializer_class = ArticleSerializer
    permission_classes = [DjangoModelPermissionsOrAnonReadOnly]
    lookup_field = "slug"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    throttle_classes = [ReadThrottle]

    def get_queryset(self):
        # Newest first; articles without a publication date last. The aliases come
        # with each article in the same query.
        return with_alias_urls(
            Article.objects.order_by(F("published_at").desc(nulls_last=True), "-id")
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "url",
                OpenApiTypes.STR,
                required=True,
                description="Any spelling of the article's address or of one of its aliases: "
                "tracking parameters (utm_*, fbclid, gclid, ...), the fragment, the case of "
                "scheme and host, a default port and a trailing slash do not matter.",
            )
        ],
        responses={
            200: ArticleSerializer,
            404: OpenApiResponse(
                response={"$ref": "#/components/schemas/ErrorDetail"},
                description="No article has this address or alias.",
            ),
        },
        summary="The article at an address (its url or an alias)",
    )
    @action(detail=False, methods=["get"], permission_classes=[], authentication_classes=[])
    def resolve(self, request: Request) -> Response:
        query = ResolveQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        url = query.validated_data["url"]
        article = canonical_urls.articles_at(url, with_alias_urls(Article.objects.all())).first()
        if article is None:
            raise NotFound("No article has this address.")
        return Response(self.get_serializer(article).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "slug",
                OpenApiTypes.STR,
                many=True,
                required=True,
                description="Up to 100 article slugs (repeat the parameter).",
            )
        ],
        responses={200: {"type": "object", "additionalProperties": {"type": "integer"}}},
        summary="Published comment counts of up to 100 articles",
    )
    @action(
        detail=False,
        methods=["get"],
        permission_classes=[],
        authentication_classes=[],
        pagination_class=None,
    )
    def counts(self, request: Request) -> HttpResponse:
        query = CountsQuerySerializer(data={"slug": request.query_params.getlist("slug")})
        query.is_valid(raise_exception=True)
        counts = read_cache.counts(query.validated_data["slug"], stored_counts)
        body = read_cache.json_bytes(counts)
        return read_cache.response(
            request.META, read_cache.CachedBody(body, read_cache.etag_for(body))
        )


def stored_counts(slugs: list[str]) -> dict[str, int]:
    """Published counts as kept on the articles (one indexed query, no comment scan)."""
    return dict(
        Article.objects.filter(slug__in=slugs).values_list("slug", "published_comment_count")
    )
