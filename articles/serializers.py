"""Article shapes for the public and staff endpoints."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Aggregate, JSONField, OuterRef, QuerySet, Subquery
from rest_framework import serializers

from articles import canonical_urls
from articles.models import Article, ArticleAlias
from comments.serializers import TextField, validate_web_url

RESERVED_SLUGS = {"counts", "resolve"}
MAX_COUNT_SLUGS = 100
MAX_ALIASES = 50
URL_MAX_LENGTH = 500


class _JsonUrls(Aggregate):
    """The aggregated urls as a JSON array (PostgreSQL and SQLite)."""

    function = "JSON_AGG"
    template = "%(function)s(%(expressions)s)::text"
    output_field = JSONField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return super().as_sql(
            compiler,
            connection,
            function="JSON_GROUP_ARRAY",
            template="%(function)s(%(expressions)s)",
        )


def with_alias_urls(queryset: QuerySet[Article]) -> QuerySet[Article]:
    """Annotate `alias_urls` (a list, or None without aliases) inside the article query
    itself, so the list and detail endpoints stay at one query per page or article."""
    urls = (
        ArticleAlias.objects.filter(article=OuterRef("pk"))
        .order_by()
        .values("article")
        .annotate(urls=_JsonUrls("url"))
        .values("urls")
    )
    return queryset.annotate(alias_urls=Subquery(urls, output_field=JSONField()))


def canonical_url(value: str) -> str:
    """The canonical spelling for storage; a ValidationError for the field otherwise."""
    try:
        canonical = canonical_urls.canonicalize(value)
    except ValueError:
        raise serializers.ValidationError("Enter a valid http:// or https:// address.") from None
    if len(canonical) > URL_MAX_LENGTH:
        raise serializers.ValidationError(
            f"The address is longer than {URL_MAX_LENGTH} characters once normalised."
        )
    return canonical


def taken_message(url: str, owner: Article) -> str:
    return f"{url} is already an address of the article '{owner.slug}'."


class AliasesField(serializers.ListField):
    """The article's alias urls: from the `alias_urls` annotation (with_alias_urls) when
    the article was read with it, else one query."""

    def get_attribute(self, instance: Article) -> list[str]:
        if "alias_urls" in instance.__dict__:
            urls = instance.alias_urls or []
        else:
            urls = list(instance.aliases.values_list("url", flat=True))
        return sorted(urls)


class ArticleSerializer(serializers.ModelSerializer):
    title = TextField(max_length=300)
    url = TextField(
        max_length=URL_MAX_LENGTH,
        validators=[validate_web_url],
        help_text="The article's public address; stored canonicalised (tracking parameters, "
        "fragment and default port dropped, scheme and host lower-cased).",
    )
    comment_count = serializers.IntegerField(source="published_comment_count", read_only=True)
    aliases = AliasesField(
        child=TextField(max_length=URL_MAX_LENGTH, validators=[validate_web_url]),
        required=False,
        max_length=MAX_ALIASES,
        help_text="Other addresses of the article (old URLs, AMP or syndicated copies), "
        "canonicalised; GET /api/v1/articles/resolve/?url= finds the article by any of "
        "them ([] when it has none). Writing replaces the whole list; "
        "an address of another article is refused.",
    )

    class Meta:
        model = Article
        fields = [
            "slug",
            "title",
            "url",
            "published_at",
            "comments_open",
            "comment_count",
            "aliases",
        ]

    def validate_slug(self, value: str) -> str:
        if value in RESERVED_SLUGS:
            raise serializers.ValidationError(f"'{value}' is reserved; choose another slug.")
        return value

    def validate_url(self, value: str) -> str:
        canonical = canonical_url(value)
        owner = canonical_urls.address_owner(canonical, exclude=self._own_pk())
        if owner is not None:
            raise serializers.ValidationError(taken_message(canonical, owner))
        return canonical

    def validate_aliases(self, values: list[str]) -> list[str]:
        aliases: list[str] = []
        seen: set[str] = set()
        for value in values:
            canonical = canonical_url(value)
            spellings = canonical_urls.equivalent_urls(canonical)
            if seen.intersection(spellings):
                continue
            seen.update(spellings)
            owner = canonical_urls.address_owner(canonical, exclude=self._own_pk())
            if owner is not None:
                raise serializers.ValidationError(taken_message(canonical, owner))
            aliases.append(canonical)
        return aliases

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # The article's own url is no alias of it (under any spelling).
        url = attrs.get("url") or (self.instance.url if self.instance else None)
        if "aliases" in attrs and url:
            try:
                own = set(canonical_urls.equivalent_urls(url))
            except ValueError:  # a url stored before canonicalisation
                own = {url}
            attrs["aliases"] = [alias for alias in attrs["aliases"] if alias not in own]
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Article:
        aliases = validated_data.pop("aliases", None)
        with transaction.atomic():
            article = super().create(validated_data)
            self._store_aliases(article, aliases)
        return article

    def update(self, instance: Article, validated_data: dict[str, Any]) -> Article:
        aliases = validated_data.pop("aliases", None)
        with transaction.atomic():
            article = super().update(instance, validated_data)
            if aliases is None and "url" in validated_data:
                # An alias the new url replaces is dropped.
                ArticleAlias.objects.filter(
                    article=article, url__in=canonical_urls.equivalent_urls(article.url)
                ).delete()
                article.__dict__.pop("alias_urls", None)
            self._store_aliases(article, aliases)
        return article

    def _own_pk(self) -> int | None:
        return self.instance.pk if isinstance(self.instance, Article) else None

    def _store_aliases(self, article: Article, aliases: list[str] | None) -> None:
        """Replace the article's aliases; a race with another writer is a 400, not a 500."""
        if aliases is None:
            return
        try:
            with transaction.atomic():
                article.aliases.exclude(url__in=aliases).delete()
                existing = set(article.aliases.values_list("url", flat=True))
                ArticleAlias.objects.bulk_create(
                    ArticleAlias(article=article, url=url) for url in aliases if url not in existing
                )
        except IntegrityError:
            raise serializers.ValidationError(
                {"aliases": ["One of the addresses was just given to another article."]}
            ) from None
        article.alias_urls = sorted(aliases)


class ResolveQuerySerializer(serializers.Serializer):
    url = TextField(
        max_length=2000,
        help_text="Any spelling of an article's address or alias (tracking parameters, "
        "fragment, case of scheme and host, trailing slash do not matter).",
    )

    def validate_url(self, value: str) -> str:
        try:
            return canonical_urls.canonicalize(value)
        except ValueError:
            raise serializers.ValidationError(
                "Enter a valid http:// or https:// address."
            ) from None


class CountsQuerySerializer(serializers.Serializer):
    slug = serializers.ListField(
        child=serializers.SlugField(max_length=200),
        min_length=1,
        max_length=MAX_COUNT_SLUGS,
    )
