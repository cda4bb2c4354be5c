"""Articles: the pages on the publisher's site that comments belong to."""

from __future__ import annotations

from django.db import models


class ArticleQuerySet(models.QuerySet["Article"]):
    def with_comment_count(self) -> ArticleQuerySet:
        from comments.models import Comment

        return self.annotate(
            comment_count=models.Count(
                "comments", filter=models.Q(comments__status=Comment.Status.PUBLISHED)
            )
        )


class Article(models.Model):
    slug = models.SlugField(max_length=200, unique=True)
    title = models.CharField(max_length=300)
    url = models.URLField(
        max_length=500, help_text="The article's public address on the publisher's site."
    )
    published_at = models.DateTimeField(null=True, blank=True)
    comments_open = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ArticleQuerySet.as_manager()

    class Meta:
        ordering = ["-published_at", "-id"]

    def __str__(self) -> str:
        return self.title
