from django.contrib import admin
from django.db import models

from articles.models import Article


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "published_at", "comments_open", "created_at")
    list_filter = ("comments_open",)
    search_fields = ("title", "slug", "url")
    prepopulated_fields = {"slug": ("title",)}
    date_hierarchy = "published_at"
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
