"""HTML pages: the demo article list and article page (widget embedded), and /privacy/."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.templatetags.static import static

from articles.models import Article

THEMES = ("light", "dark", "auto")
LANGUAGES = ("en", "de", "zh")
DEMO_LIST_SIZE = 100


def _page_options(request: HttpRequest) -> dict[str, str]:
    """?theme= and ?lang= let a visitor try the widget's themes and languages.

    The page itself stays English (its <html lang> too); only the widget switches.
    """
    theme = request.GET.get("theme", "")
    lang = request.GET.get("lang", "")
    return {
        "theme": theme if theme in THEMES else "",
        "lang": lang if lang in LANGUAGES else "",
    }


def demo_index(request: HttpRequest) -> HttpResponse:
    articles = Article.objects.order_by("-published_at", "-id")[:DEMO_LIST_SIZE]
    return render(
        request,
        "articles/demo_index.html",
        {
            "articles": articles,
            "count_script": request.build_absolute_uri(static("comments/count.js")),
            **_page_options(request),
        },
    )


def demo_article(request: HttpRequest, slug: str) -> HttpResponse:
    article = get_object_or_404(Article, slug=slug)
    return render(
        request,
        "articles/demo_article.html",
        {
            "article": article,
            "widget_script": request.build_absolute_uri(static("comments/widget.js")),
            **_page_options(request),
        },
    )


def privacy(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "comments/privacy.html",
        {
            "retention_days": settings.COMMENTS_DISCARD_RETENTION_DAYS,
            "edit_minutes": settings.COMMENTS_EDIT_WINDOW_SECONDS // 60,
        },
    )
