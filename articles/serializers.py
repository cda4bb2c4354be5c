"""Article shapes for the public and staff endpoints."""

from __future__ import annotations

from rest_framework import serializers

from articles.models import Article
from comments.serializers import TextField, validate_web_url

RESERVED_SLUGS = {"counts"}
MAX_COUNT_SLUGS = 100


class ArticleSerializer(serializers.ModelSerializer):
    title = TextField(max_length=300)
    url = TextField(max_length=500, validators=[validate_web_url])
    comment_count = serializers.IntegerField(source="published_comment_count", read_only=True)

    class Meta:
        model = Article
        fields = ["slug", "title", "url", "published_at", "comments_open", "comment_count"]

    def validate_slug(self, value: str) -> str:
        if value in RESERVED_SLUGS:
            raise serializers.ValidationError(f"'{value}' is reserved; choose another slug.")
        return value


class CountsQuerySerializer(serializers.Serializer):
    slug = serializers.ListField(
        child=serializers.SlugField(max_length=200),
        min_length=1,
        max_length=MAX_COUNT_SLUGS,
    )
