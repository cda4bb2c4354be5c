"""The pages behind the links in reply-notification e-mails.

A GET only shows a page with a button: mail scanners and link previews open links,
and must not confirm or unsubscribe anything. The button POSTs. The unsubscribe
POSTs are also RFC 8058 one-click targets (`List-Unsubscribe-Post:
List-Unsubscribe=One-Click`), sent by mail providers from their servers without a
CSRF token: they are csrf_exempt, because the signed token in the URL is what
authenticates them, and repeating one changes nothing. The confirmation keeps
Django's CSRF check (its form is only ever sent from our page).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from comments import reply_notifications
from comments.reply_notifications import LinkExpired, LinkInvalid

METHODS = ["GET", "HEAD", "POST"]


def _page(
    request: HttpRequest, template: str, context: dict[str, object], status: int = 200
) -> HttpResponse:
    response = render(request, f"comments/{template}", context, status=status)
    # The URL carries a token: keep it out of Referer headers, caches and search engines.
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


def _invalid(request: HttpRequest, *, expired: bool) -> HttpResponse:
    return _page(request, "notify_invalid.html", {"expired": expired}, status=400)


def _done(request: HttpRequest, title: str, message: str) -> HttpResponse:
    return _page(request, "notify_done.html", {"title": title, "message": message})


@require_http_methods(METHODS)
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """Double opt-in: confirm the address named by the link (POST)."""
    try:
        address = reply_notifications.check_confirm_token(token)
    except LinkExpired:
        return _invalid(request, expired=True)
    except LinkInvalid:
        return _invalid(request, expired=False)
    if request.method == "POST":
        reply_notifications.confirm(address)
        return _done(
            request,
            "Your e-mail address is confirmed",
            "You will now receive an e-mail when someone replies to your comment. "
            "Each of these e-mails has links to stop them.",
        )
    if reply_notifications.may_receive(address):
        return _done(
            request,
            "Your e-mail address is already confirmed",
            "You receive an e-mail when someone replies to your comment.",
        )
    return _page(
        request,
        "notify_confirm.html",
        {"valid_days": max(1, round(settings.COMMENTS_NOTIFY_CONFIRM_SECONDS / 86400))},
    )


@csrf_exempt
@require_http_methods(METHODS)
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """Stop the e-mails about replies to one comment (POST, also one-click)."""
    try:
        subscription = reply_notifications.check_unsubscribe_token(token)
    except (LinkInvalid, LinkExpired):
        return _invalid(request, expired=False)
    if request.method == "POST":
        if subscription is not None:
            reply_notifications.unsubscribe(subscription)
        return _done(
            request,
            "You are unsubscribed",
            "You will receive no more e-mails about replies to this comment.",
        )
    return _page(request, "notify_unsubscribe.html", {"everything": False})


@csrf_exempt
@require_http_methods(METHODS)
def unsubscribe_all(request: HttpRequest, token: str) -> HttpResponse:
    """Stop every e-mail to the address (POST, also one-click)."""
    try:
        address = reply_notifications.check_unsubscribe_all_token(token)
    except (LinkInvalid, LinkExpired):
        return _invalid(request, expired=False)
    if request.method == "POST":
        if address is not None:
            reply_notifications.unsubscribe_all(address)
        return _done(
            request,
            "You are unsubscribed from everything",
            "We will send no more e-mails about replies to this address. To receive them "
            "again, tick “Notify me of replies by e-mail” with a new comment and confirm "
            "your address once more.",
        )
    return _page(request, "notify_unsubscribe.html", {"everything": True})
