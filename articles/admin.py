"""Articles in the console: addresses stored canonicalised, aliases inline, and merging."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from articles import canonical_urls
from articles.merging import MergeError, merge_articles
from articles.models import Article, ArticleAlias
from comments.moderation import Actor


def clean_address(value: str, *, own_article_id: int | None) -> str:
    """The canonical spelling, refused when another article already has that address."""
    try:
        canonical = canonical_urls.canonicalize(value)
    except ValueError:
        raise forms.ValidationError("Enter a valid http:// or https:// address.") from None
    if len(canonical) > Article._meta.get_field("url").max_length:
        raise forms.ValidationError("The address is too long once normalised.")
    owner = canonical_urls.address_owner(canonical, exclude=own_article_id)
    if owner is not None:
        raise forms.ValidationError(
            f"{canonical} is already an address of the article '{owner.slug}'."
        )
    return canonical


class ArticleForm(forms.ModelForm):
    url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        help_text=Article._meta.get_field("url").help_text
        + " Stored canonicalised (tracking parameters and fragment dropped).",
    )

    class Meta:
        model = Article
        fields = ["title", "slug", "url", "published_at", "comments_open"]

    def clean_url(self) -> str:
        return clean_address(self.cleaned_data["url"], own_article_id=self.instance.pk)


class AliasForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https", label="Address")

    class Meta:
        model = ArticleAlias
        fields = ["url"]

    def clean_url(self) -> str:
        # The inline formset has set the article (none yet on the add page).
        return clean_address(self.cleaned_data["url"], own_article_id=self.instance.article_id)


class ArticleAliasInline(admin.TabularInline):
    model = ArticleAlias
    form = AliasForm
    extra = 1
    fields = ("url", "created_at")
    readonly_fields = ("created_at",)
    verbose_name = "alias (another address of this article)"


class MergeForm(forms.Form):
    target = forms.CharField(
        label="Into the article",
        max_length=2000,
        help_text="Its slug, or any address of it.",
    )
    keep_source = forms.BooleanField(
        required=False,
        label="Keep the merged articles, closed for comments (otherwise they are deleted)",
    )

    def __init__(self, *args: object, sources: list[Article], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.sources = sources

    def clean_target(self) -> Article:
        value = self.cleaned_data["target"].strip()
        target = Article.objects.filter(slug=value).first()
        if target is None and "://" in value:
            try:
                target = canonical_urls.articles_at(value).first()
            except ValueError:
                target = None
        if target is None:
            raise forms.ValidationError(f"No article has the slug or address '{value}'.")
        if target.pk in {source.pk for source in self.sources}:
            raise forms.ValidationError(
                f"'{target.slug}' is one of the selected articles: it cannot be merged into itself."
            )
        return target


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    form = ArticleForm
    inlines = [ArticleAliasInline]
    list_display = ("title", "slug", "published_at", "comments_open", "created_at")
    list_filter = ("comments_open",)
    search_fields = ("title", "slug", "url", "aliases__url")
    prepopulated_fields = {"slug": ("title",)}
    date_hierarchy = "published_at"
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["merge_into"]

    def has_merge_permission(self, request: HttpRequest) -> bool:
        # A merge changes the target and deletes the source (admin ORs action permissions).
        return self.has_change_permission(request) and self.has_delete_permission(request)

    @admin.action(description="Merge into another article…", permissions=["merge"])
    def merge_into(self, request: HttpRequest, queryset: QuerySet[Article]) -> HttpResponse | None:
        sources = list(
            queryset.annotate(
                total_comments=Count("comments"),
                threads=Count("comments", filter=Q(comments__parent__isnull=True)),
            ).order_by("pk")
        )
        form = MergeForm(request.POST if "post" in request.POST else None, sources=sources)
        if form.is_bound and form.is_valid():
            self._merge(request, sources, form.cleaned_data)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Merge into another article",
            "opts": self.model._meta,
            "sources": sources,
            "form": form,
            "selected": [source.pk for source in sources],
            "action_name": "merge_into",
        }
        return TemplateResponse(request, "admin/articles/article/merge.html", context)

    def _merge(self, request: HttpRequest, sources: list[Article], data: dict) -> None:
        actor = Actor.for_user(request.user)
        target = data["target"]
        for source in sources:
            try:
                result = merge_articles(
                    source, target, actor=actor, keep_source=data["keep_source"]
                )
            except MergeError as exc:
                self.message_user(request, f"'{source.slug}': {exc}", messages.ERROR)
            else:
                self.message_user(request, result.summary(), messages.SUCCESS)
