"""Article endpoints: public reads, staff writes, batch comment counts."""

from __future__ import annotations

from django.db.models import Count, F
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.permissions import DjangoModelPermissionsOrAnonReadOnly
from rest_framework.request import Request
from rest_framework.response import Response

from articles.models import Article
from articles.serializers import ArticleSerializer, CountsQuerySerializer
from comments.abuse import ReadThrottle
from comments.models import Comment


class ArticleViewSet(viewsets.ModelViewSet):
    serializer_class = ArticleSerializer
    permission_classes = [DjangoModelPermissionsOrAnonReadOnly]
    lookup_field = "slug"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    throttle_classes = [ReadThrottle]

    def get_queryset(self):
        # Newest first; articles without a publication date last.
        return Article.objects.with_comment_count().order_by(
            F("published_at").desc(nulls_last=True), "-id"
        )

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
    @action(detail=False, methods=["get"], permission_classes=[], pagination_class=None)
    def counts(self, request: Request) -> Response:
        query = CountsQuerySerializer(data={"slug": request.query_params.getlist("slug")})
        query.is_valid(raise_exception=True)
        slugs = query.validated_data["slug"]
        counts = dict.fromkeys(slugs, 0)
        rows = (
            Comment.objects.published()
            .filter(article__slug__in=slugs)
            .values_list("article__slug")
            .annotate(n=Count("id"))
            .order_by()
        )
        counts.update(dict(rows))
        return Response(counts)
