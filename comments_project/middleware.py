"""Request guards that must run before anything reads the body."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.functional import SimpleLazyObject, empty

logger = logging.getLogger(__name__)


class RequestSizeLimitMiddleware:
    """Refuse bodies over COMMENTS_MAX_REQUEST_BYTES with 413 before they are read.

    DRF's parsers read the WSGI stream directly, so Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE does not protect the JSON API.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            return JsonResponse({"detail": "Invalid Content-Length header."}, status=400)
        limit = settings.COMMENTS_MAX_REQUEST_BYTES
        if length > limit and not request.path.startswith("/admin/"):
            return JsonResponse(
                {"detail": f"Request body too large: at most {limit} bytes are accepted."},
                status=413,
            )
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """Answer 503 with Retry-After, quickly and as JSON, when the database is unreachable.

    Writes run in transactions, so nothing is half-written; the client retries.
    """

    RETRY_AFTER_SECONDS = 5

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        return database_unavailable(request.method, request.path, exception)


def database_unavailable(method: str, path: str, exception: Exception) -> JsonResponse:
    """The 503 of a request the database could not serve (logged)."""
    logger.error("database unavailable for %s %s: %s", method, path, exception)
    response = JsonResponse(
        {"detail": "The service is briefly unavailable; please retry."}, status=503
    )
    response["Retry-After"] = str(DatabaseUnavailableMiddleware.RETRY_AFTER_SECONDS)
    return response


class ContentSecurityPolicyMiddleware:
    """A strict Content-Security-Policy on our own HTML pages (demo, privacy).

    Only our own scripts and styles may run; the embedded widget calls our API.
    The admin and the API docs keep Django's and Swagger's defaults.
    """

    POLICY = "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "object-src 'none'",
        ]
    )
    PATH_PREFIXES = ("/demo/", "/privacy/", "/notifications/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(self.PATH_PREFIXES):
            response.setdefault("Content-Security-Policy", self.POLICY)
        return response


class ApiJsonErrorsMiddleware:
    """Answer errors under /api/ as JSON even when Django itself produced them
    (an unmatched URL, a wrong method on a plain view), also with DEBUG on."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            detail = "Not found." if response.status_code == 404 else response.reason_phrase
            json_response = JsonResponse({"detail": detail}, status=response.status_code)
            for header in ("Allow", "Retry-After"):
                if header in response:
                    json_response[header] = response[header]
            return json_response
        return response


class LazyMessageMiddleware(MessageMiddleware):
    """Django's messages, with the storage built only when something uses it.

    Only the console shows messages; the public API never does, and building the
    cookie and session storages for every request cost 3 % of a cold read.
    """

    def process_request(self, request: HttpRequest) -> None:
        request._messages = SimpleLazyObject(lambda: default_storage(request))

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:
            return response  # never touched: nothing to store
        return super().process_response(request, response)
