"""HTML pages: the demo article list and article page (widget embedded), and /privacy/."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.templatetags.static import static
from django.urls import get_script_prefix

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
    """What is stored, for how long, what Akismet receives, and the export/erase form."""
    return render(
        request,
        "comments/privacy.html",
        {
            "retention_days": settings.COMMENTS_DISCARD_RETENTION_DAYS,
            "ip_days": settings.COMMENTS_IP_RETENTION_DAYS,
            "spam_days": settings.COMMENTS_SPAM_RETENTION_DAYS,
            "notify_confirm_days": max(1, settings.COMMENTS_NOTIFY_CONFIRM_SECONDS // 86400),
            "edit_minutes": settings.COMMENTS_EDIT_WINDOW_SECONDS // 60,
            "akismet_enabled": settings.AKISMET_ENABLED,
            "erasure_keeps_text": settings.COMMENTS_ERASURE_KEEPS_TEXT,
            "erased_name": getattr(settings, "COMMENTS_ERASED_NAME", "Anonymous"),
            "link_hours": getattr(settings, "COMMENTS_PERSONAL_DATA_LINK_SECONDS", 0) // 3600,
            "contact": _privacy_contact(settings.COMMENTS_PRIVACY_CONTACT),
            "requests_url": get_script_prefix() + "api/v1/personal-data/requests/",
            "privacy_script": static("comments/privacy.js"),
        },
    )


def _privacy_contact(value: str) -> dict[str, str] | None:
    """COMMENTS_PRIVACY_CONTACT as a link: an e-mail address or an http(s) URL.

    Anything else is shown as plain text (a postal address, a name).
    """
    value = value.strip()
    if not value:
        return None
    if value.lower().startswith(("https://", "http://")):
        return {"text": value, "href": value}
    address = value.removeprefix("mailto:")
    try:
        validate_email(address)
    except ValidationError:
        return {"text": value, "href": ""}
    return {"text": address, "href": f"mailto:{address}"}
