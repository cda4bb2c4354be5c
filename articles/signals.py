"""Cached reads follow an article's slug: saving or deleting it invalidates them."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from articles.models import Article
from comments import read_cache


@receiver(pre_save, sender=Article)
def remember_old_slug(sender: type[Article], instance: Article, **kwargs: object) -> None:
    instance._slug_before_save = (
        Article.objects.filter(pk=instance.pk).values_list("slug", flat=True).first()
        if instance.pk
        else None
    )


@receiver(post_save, sender=Article)
@receiver(post_delete, sender=Article)
def invalidate_article_reads(sender: type[Article], instance: Article, **kwargs: object) -> None:
    slugs = {instance.slug, getattr(instance, "_slug_before_save", None)} - {None}
    read_cache.invalidate_slugs(slugs)
    transaction.on_commit(lambda: read_cache.invalidate_slugs(slugs))
