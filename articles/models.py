"""Articles: the pages on the publisher's site that comments belong to."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Coalesce


class ArticleQuerySet(models.QuerySet["Article"]):
    def with_comment_count(self) -> ArticleQuerySet:
        """Count published comments by scanning them (the truth the stored count must equal)."""
        from comments.models import Comment

        return self.annotate(
            comment_count=models.Count(
                "comments", filter=models.Q(comments__status=Comment.Status.PUBLISHED)
            )
        )

    def refresh_comment_counts(self) -> int:
        """Recompute `published_comment_count` from the comments (after bulk loads)."""
        from comments.models import Comment

        published = (
            Comment.objects.filter(article=models.OuterRef("pk"), status=Comment.Status.PUBLISHED)
            .order_by()
            .values("article")
            .annotate(n=models.Count("id"))
            .values("n")
        )
        return self.update(
            published_comment_count=Coalesce(
                models.Subquery(published, output_field=models.IntegerField()), 0
            )
        )


class Article(models.Model):
    slug = models.SlugField(max_length=200, unique=True)
    title = models.CharField(max_length=300)
    url = models.URLField(
        max_length=500,
        db_index=True,
        help_text="The article's public address on the publisher's site.",
    )
    published_at = models.DateTimeField(null=True, blank=True)
    comments_open = models.BooleanField(default=True)
    # Kept by comments.moderation in the same transaction as every change into or
    # out of "published", so the read path never counts rows.
    published_comment_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ArticleQuerySet.as_manager()

    class Meta:
        ordering = ["-published_at", "-id"]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: object, **kwargs: object) -> None:
        """Saving an existing article never writes the stored count: the instance's
        copy may be stale, and only comments.moderation moves it."""
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key and field.name != "published_comment_count"
            ]
        super().save(*args, **kwargs)


class ArticleAlias(models.Model):
    """Another address of an article (an old URL, an AMP page, a syndicated copy).

    Stored canonicalised (articles.canonical_urls), so every spelling of one
    address finds the same thread.
    """

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="aliases")
    url = models.URLField(max_length=500, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "article aliases"
        ordering = ["url"]

    def __str__(self) -> str:
        return self.url
