"""The public API's hot requests, answered in front of Django.

Reads: the comment page and the batch counts are what every article view asks
for. When the cache already holds the exact bytes Django would send, building a
request, running middleware, resolving a URL and a view costs far more than the
answer itself, so this WSGI layer answers those requests from one cache round trip.
It answers only what it can answer exactly as Django would (a test compares the
two byte for byte, headers included): GET or HEAD, an allowed Host, a query in
its normal form, no browsable-API request, no HTTPS redirect due. Anything else,
and every cache miss, goes to Django, which computes the bytes and caches them.

Submits: a plain JSON submit runs the same steps as the DRF view
(comments.submission) without Django's request cycle, which was a fifth of a
submit's CPU. Only an accepted comment is answered here (and, as Django would,
a database outage or a bug once the steps have begun); any refusal is handed on to
Django untouched, body included, and refused there the same way. Nothing is
written before the checks that can refuse, and the submit limit's count travels
with the request, so nothing happens twice. An article this process has seen open
is not read again: the INSERT checks that it still is (comments.submission), and
when it is not, Django answers.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings
from django.core import signals
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse, JsonResponse
from django.http.request import split_domain_port, validate_host
from rest_framework.exceptions import APIException
from rest_framework.utils import json as drf_json

from comments import abuse, moderation, read_cache, submission
from comments.cache_store import Counter
from comments.request_context import client_ip
from comments.serializers import IDEMPOTENCY_KEY_HEADER, submitted_comment_data
from comments_project.middleware import database_unavailable

logger = logging.getLogger(__name__)

COMMENTS_PATH = re.compile(r"^/api/v1/articles/(?P<slug>[-a-zA-Z0-9_]{1,200})/comments/$")
COUNTS_PATH = "/api/v1/articles/counts/"
SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,200}$")
LIMIT = re.compile(r"^[1-9][0-9]?$|^100$")
CURSOR = re.compile(r"^[A-Za-z0-9+/=_-]{1,500}$")
MAX_COUNT_SLUGS = 100
ALLOW = {"comments": "GET, POST, HEAD, OPTIONS", "counts": "GET, HEAD, OPTIONS"}
# What DRF's JSONParser reads (the default charset, or this charset spelled out).
JSON_CONTENT_TYPES = frozenset(
    {"application/json", "application/json; charset=utf-8", "application/json;charset=utf-8"}
)

StartResponse = Callable[[str, list[tuple[str, str]]], object]


class _Meta:
    """Enough of a request for `client_ip`."""

    def __init__(self, environ: dict) -> None:
        self.META = environ


# Recent counts answers of this process: (slugs) -> (their generations, the bytes).
_counts_answers: dict[tuple[str, ...], tuple[tuple[bytes | None, ...], read_cache.CachedBody]] = {}
MAX_COUNTS_ANSWERS = 1024
# Counts query strings this process has parsed (up to MAX_REMEMBERED_QUERY characters):
# their slugs and generation keys, or no slugs when the fast path leaves them to Django.
_counts_queries: dict[str, tuple[tuple[str, ...], list[str]]] = {}
MAX_REMEMBERED_QUERY = 2048


def _counts_slugs(query: str) -> tuple[str, ...]:
    """The slugs of a counts query in its plain form; () for anything else (Django's)."""
    # Slugs need no %-decoding; anything that does goes to Django.
    pairs = query.split("&") if query else []
    if not pairs or len(pairs) > MAX_COUNT_SLUGS or "%" in query or "+" in query:
        return ()
    slugs = []
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name != "slug" or not SLUG.match(value):
            return ()
        slugs.append(value)
    return tuple(slugs)


class FastPathApp:
    def __init__(self, django_app: Callable[[dict, StartResponse], Iterable[bytes]]) -> None:
        self.django_app = django_app
        self._cors = None

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        answer = None
        if (method == "GET" or method == "HEAD") and read_cache.enabled():
            answer = self._answer(environ)
        elif method == "POST":
            answer = self._submit(environ)
        if answer is not None:
            status, headers, body = answer
            start_response(status, headers)
            return [b""] if method == "HEAD" else [body]
        return self.django_app(environ, start_response)

    def _answer(self, environ: dict) -> tuple[str, list[tuple[str, str]], bytes] | None:
        path = environ.get("PATH_INFO", "")
        match = None
        if path != COUNTS_PATH:
            match = COMMENTS_PATH.match(path)
            if match is None:
                return None
        if not self._plain_request(environ):
            return None
        # The read limit's counter goes along with the cache read: one round trip.
        rate = abuse.read_rate()
        limit = abuse.ReadLimit(client_ip(_Meta(environ)), *rate) if rate else None
        count = limit.counter if limit is not None else None
        if match is None:
            kind = "counts"
            entry = self._counts(environ.get("QUERY_STRING", ""), count)
        else:
            kind = "comments"
            variant = self._page_variant(environ)
            if variant is None:
                return None
            entry = read_cache.cached_page(match["slug"], variant, count)
        if limit is not None:
            if limit.counter.hits is not None:
                environ[abuse.READ_HITS_ENVIRON] = limit.counter.hits  # not counted twice
            if entry is None:
                return None
            try:
                if limit.wait():
                    return None  # Django answers the 429
            except abuse.CACHE_ERRORS:
                return None  # Django skips the limit and logs it
        if entry is None:
            return None
        return self._response(environ, kind, entry)

    def _submit(self, environ: dict) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """The 202 of a plain JSON submit, or None to hand the request on to Django."""
        match = COMMENTS_PATH.match(environ.get("PATH_INFO", ""))
        if match is None or environ.get("QUERY_STRING") or not self._plain_request(environ):
            return None
        if environ.get("CONTENT_TYPE", "").lower() not in JSON_CONTENT_TYPES:
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None
        if not 0 < length <= settings.COMMENTS_MAX_REQUEST_BYTES:
            return None
        raw = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(raw)  # Django reads it again if handed on
        try:
            data = drf_json.loads(raw.decode("utf-8"))  # as DRF's JSONParser, strict
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        # What Django's handler does around every request (connection upkeep).
        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            return self._accept(environ, match["slug"], data)
        finally:
            signals.request_finished.send(sender=self.__class__)

    def _accept(
        self, environ: dict, slug: str, data: dict
    ) -> tuple[str, list[tuple[str, str]], bytes] | None:
        ip = client_ip(_Meta(environ))
        try:
            wait = abuse.submit_limit_wait(ip, data)
        except abuse.CACHE_ERRORS:
            return None  # Django skips the limit and logs it
        if wait is not None:
            environ[abuse.SUBMIT_WAIT_ENVIRON] = wait  # counted: not again in Django
            if wait:
                return None  # Django answers the 429
        key = environ.get("HTTP_IDEMPOTENCY_KEY")
        try:
            comment = submission.accept(
                slug,
                data,
                headers={} if key is None else {IDEMPOTENCY_KEY_HEADER: key},
                ip_address=ip,
                user_agent=environ.get("HTTP_USER_AGENT", ""),
                referrer=environ.get("HTTP_REFERER", ""),
                trust_remembered_article=True,  # every refusal goes on to Django
            )
        except (APIException, Http404, moderation.ArticleUnverified):
            # Refused before anything was written (the flood mark only when it was
            # there already, or the remembered article no longer takes comments):
            # Django refuses it again, with its own answer.
            return None
        except (OperationalError, InterfaceError) as exc:
            unavailable = database_unavailable("POST", environ["PATH_INFO"], exc)
            return self._django_response(environ, unavailable)
        except Exception:
            # Possibly after the INSERT: never run again. Django's answer to a bug.
            logger.exception("submit failed: POST %s", environ["PATH_INFO"])
            failed = JsonResponse({"detail": "Internal Server Error"}, status=500)
            return self._django_response(environ, failed)
        body = _renderer().render(submitted_comment_data(comment))
        headers = [("Content-Type", "application/json")]
        headers += submission.answer_headers(comment).items()
        headers.append(("Content-Length", str(len(body))))
        headers += self._common_headers(environ, "comments")
        return "202 Accepted", headers, body

    def _django_response(
        self, environ: dict, response: HttpResponse
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        """A plain Django response with what the middleware adds to it."""
        body = response.content
        headers = [*response.items(), ("Content-Length", str(len(body)))]
        headers += self._common_headers(environ, None)
        return f"{response.status_code} {response.reason_phrase}", headers, body

    def _plain_request(self, environ: dict) -> bool:
        """A request Django would answer with plain JSON, without redirecting."""
        if not _allowed_host(self._host(environ), tuple(settings.ALLOWED_HOSTS), settings.DEBUG):
            return False
        if settings.SECURE_SSL_REDIRECT and not self._secure(environ):
            return False
        return not (_negotiates() and "text/html" in environ.get("HTTP_ACCEPT", ""))

    @staticmethod
    def _host(environ: dict) -> str:
        host = environ.get("HTTP_HOST")
        if host:
            return host
        port = environ.get("SERVER_PORT", "")
        default = "443" if environ.get("wsgi.url_scheme") == "https" else "80"
        name = environ.get("SERVER_NAME", "")
        return name if port == default else f"{name}:{port}"

    @staticmethod
    def _secure(environ: dict) -> bool:
        proxy = settings.SECURE_PROXY_SSL_HEADER
        if proxy and proxy[0] in environ:
            return environ[proxy[0]].split(",")[0].strip() == proxy[1]
        return environ.get("wsgi.url_scheme") == "https"

    def _page_variant(self, environ: dict) -> str | None:
        params = _single_params(environ.get("QUERY_STRING", ""), {"limit", "order", "cursor"})
        if params is None:
            return None
        limit, order, cursor = params.get("limit"), params.get("order"), params.get("cursor")
        if limit is not None and not LIMIT.match(limit):
            return None
        if order is not None and order not in ("oldest", "newest"):
            return None
        if cursor is not None and not CURSOR.match(cursor):
            return None
        page = read_cache.PageParams(int(limit) if limit else None, order, cursor)
        scheme = "https" if self._secure(environ) else "http"
        return page.variant(scheme, self._host(environ))

    @staticmethod
    def _counts(query: str, count: Counter | None) -> read_cache.CachedBody | None:
        parsed = _counts_queries.get(query)
        if parsed is None:
            slugs = _counts_slugs(query)
            parsed = (slugs, read_cache.generation_keys(slugs))
            if len(query) <= MAX_REMEMBERED_QUERY:
                if len(_counts_queries) >= MAX_COUNTS_ANSWERS:
                    _counts_queries.clear()
                _counts_queries[query] = parsed
        slugs, keys = parsed
        if not slugs:
            return None
        generations = read_cache.current_generations(keys, count)
        if generations is None:
            return None
        # The answer to the same slugs under the same generations is the same bytes.
        known = _counts_answers.get(slugs)
        if known is not None and known[0] == generations:
            return known[1]
        found = read_cache.cached_counts(list(slugs), generations=generations)[0]
        if len(found) < len(set(slugs)):
            return None
        body = read_cache.json_bytes({slug: found[slug] for slug in slugs})
        entry = read_cache.CachedBody(body, read_cache.etag_for(body))
        if len(_counts_answers) >= MAX_COUNTS_ANSWERS:
            _counts_answers.clear()
        _counts_answers[slugs] = (generations, entry)
        return entry

    def _response(
        self, environ: dict, kind: str, entry: read_cache.CachedBody
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        fresh = not read_cache.not_modified(environ.get("HTTP_IF_NONE_MATCH"), entry.etag)
        body = entry.body if fresh else b""
        headers = [("ETag", entry.etag), ("Cache-Control", read_cache.cache_control())]
        if fresh:
            headers = [("Content-Type", "application/json"), *headers]
        headers.append(("Content-Length", str(len(body))))
        headers += self._common_headers(environ, kind)
        return ("200 OK" if fresh else "304 Not Modified"), headers, body

    def _common_headers(self, environ: dict, kind: str | None) -> list[tuple[str, str]]:
        """What Django's middleware, and DRF for the view of `kind`, add to responses."""
        if kind is None:  # not DRF's
            headers = [("Vary", "origin")]
        else:
            headers = [("Allow", ALLOW[kind])]
            headers.append(("Vary", "Accept, origin" if _negotiates() else "origin"))
        headers += self._cors_headers(environ.get("HTTP_ORIGIN"))
        if settings.SECURE_HSTS_SECONDS and self._secure(environ):
            hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
            if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
                hsts += "; includeSubDomains"
            if settings.SECURE_HSTS_PRELOAD:
                hsts += "; preload"
            headers.append(("Strict-Transport-Security", hsts))
        if settings.SECURE_CONTENT_TYPE_NOSNIFF:
            headers.append(("X-Content-Type-Options", "nosniff"))
        if settings.SECURE_REFERRER_POLICY:
            headers.append(("Referrer-Policy", settings.SECURE_REFERRER_POLICY))
        if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
            headers.append(
                ("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY)
            )
        headers.append(("X-Frame-Options", settings.X_FRAME_OPTIONS))
        return headers

    def _cors_headers(self, origin: str | None) -> list[tuple[str, str]]:
        """django-cors-headers' answer to a simple GET from `origin`, using its own matcher."""
        if not origin:
            return []
        if self._cors is None:
            from corsheaders.middleware import CorsMiddleware

            self._cors = CorsMiddleware(lambda request: None)
        try:
            url = urlsplit(origin)
        except ValueError:
            return []
        allow_all = getattr(settings, "CORS_ALLOW_ALL_ORIGINS", False)
        credentials = getattr(settings, "CORS_ALLOW_CREDENTIALS", False)
        if not allow_all and not self._cors.origin_found_in_white_lists(origin, url):
            return []
        headers = [
            ("access-control-allow-origin", "*" if allow_all and not credentials else origin)
        ]
        if credentials:
            headers.append(("access-control-allow-credentials", "true"))
        expose = getattr(settings, "CORS_EXPOSE_HEADERS", ())
        if expose:
            headers.append(("access-control-expose-headers", ", ".join(expose)))
        return headers


@lru_cache(maxsize=256)
def _allowed_host(host: str, allowed_hosts: tuple[str, ...], debug: bool) -> bool:
    """Django's Host validation (what `request.get_host()` would refuse)."""
    domain, _ = split_domain_port(host)
    allowed = list(allowed_hosts)
    if debug and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


@lru_cache(maxsize=1)
def _renderer():
    """DRF's JSON renderer, as the view renders with it."""
    from rest_framework.renderers import JSONRenderer

    return JSONRenderer()


def _negotiates() -> bool:
    """Whether DRF offers more than JSON (the browsable API, in DEBUG)."""
    from rest_framework.settings import api_settings

    return len(api_settings.DEFAULT_RENDERER_CLASSES) > 1


def _single_params(query: str, names: set[str]) -> dict[str, str] | None:
    """The query as a dict if it holds only `names`, each at most once; else None."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in names or name in params:
            return None
        params[name] = value
    return params
