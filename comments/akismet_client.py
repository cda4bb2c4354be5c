"""The one place that talks to Akismet.

Wraps the `akismet` library with an httpx client whose transport sends every
request to AKISMET_API_URL (the library hard-codes rest.akismet.com), and a
response hook that keeps the X-akismet-* headers the library drops.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import akismet
import httpx
from django.conf import settings

from comments import metrics
from comments.models import Comment

logger = logging.getLogger(__name__)

USER_AGENT = f"comments-backend/1.0 | {akismet.USER_AGENT}"


class AkismetUnavailable(Exception):
    """Akismet could not give a usable answer now (network, 5xx, 3xx, garbage). Retryable."""


class AkismetKeyInvalid(Exception):
    """The key or site URL is refused, or none is configured. Retrying soon will not help."""


@dataclass
class CheckResult:
    verdict: str  # "ham", "spam" or "discard"
    guid: str = ""
    pro_tip: str = ""
    error: str = ""
    alert_code: str = ""
    alert_msg: str = ""
    recheck_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def account_problem(self) -> bool:
        return bool(self.error or self.alert_code)


class _RedirectTransport(httpx.HTTPTransport):
    """Send the library's absolute rest.akismet.com URLs to AKISMET_API_URL instead."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = httpx.URL(base_url)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        prefix = self.base.raw_path.rstrip(b"/")
        request.url = request.url.copy_with(
            scheme=self.base.scheme,
            host=self.base.host,
            port=self.base.port,
            raw_path=prefix + request.url.raw_path,
        )
        request.headers["Host"] = request.url.netloc.decode("ascii")
        return super().handle_request(request)


_local = threading.local()  # the X-akismet-* headers of this thread's last answer
_shared_lock = threading.Lock()
_shared: tuple[tuple[object, ...], akismet.SyncClient] | None = None


def _keep_akismet_headers(response: httpx.Response) -> None:
    # Event hooks run in the calling thread, so each thread sees its own answer.
    _local.headers = {
        name.lower(): value
        for name, value in response.headers.items()
        if name.lower().startswith("x-akismet-")
    }


def _client() -> akismet.SyncClient:
    """One client per process, shared by its threads (httpx.Client is thread-safe).

    Its connection pool keeps one connection alive per concurrent caller (a pool
    thread of the worker), so checks reuse connections instead of reconnecting.
    Built lazily and keyed by pid, so it is never shared across a fork.
    """
    global _shared
    key = (
        os.getpid(),
        settings.AKISMET_API_URL,
        settings.AKISMET_API_KEY,
        settings.AKISMET_BLOG_URL,
        settings.AKISMET_TIMEOUT,
    )
    cached = _shared
    if cached is not None and cached[0] == key:
        return cached[1]
    if not settings.AKISMET_API_KEY:
        raise AkismetKeyInvalid("AKISMET_API_KEY is not set")
    with _shared_lock:
        if _shared is None or _shared[0] != key:
            http = httpx.Client(
                transport=_RedirectTransport(
                    settings.AKISMET_API_URL,
                    # Concurrency is bounded by the caller's threads; idle
                    # connections close after keepalive_expiry (5 s).
                    limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
                ),
                timeout=settings.AKISMET_TIMEOUT,
                headers={"User-Agent": USER_AGENT},
                event_hooks={"response": [_keep_akismet_headers]},
            )
            config = akismet.Config(key=settings.AKISMET_API_KEY, url=settings.AKISMET_BLOG_URL)
            client = akismet.SyncClient(config=config, http_client=http)
            _shared = (key, client)
        return _shared[1]


@metrics.timed_akismet_call
def _call(method: str, payload: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    _local.headers = {}
    args = dict(payload)
    user_ip = args.pop("user_ip")
    try:
        result = getattr(_client(), method)(user_ip, **args)
    except akismet.ConfigurationError as exc:  # includes APIKeyError
        raise AkismetKeyInvalid(str(exc)) from exc
    except (akismet.RequestError, akismet.ProtocolError) as exc:
        raise AkismetUnavailable(str(exc)) from exc
    return result, dict(getattr(_local, "headers", {}))


def comment_check(payload: dict[str, Any]) -> CheckResult:
    response, headers = _call("comment_check", payload)
    verdict = {
        akismet.CheckResponse.HAM: "ham",
        akismet.CheckResponse.SPAM: "spam",
        akismet.CheckResponse.DISCARD: "discard",
    }[response]
    recheck_after: int | None = None
    raw_recheck = headers.get("x-akismet-recheck-after", "")
    if raw_recheck:
        try:
            recheck_after = max(1, min(int(raw_recheck), 86_400))
        except ValueError:
            recheck_after = 120
    return CheckResult(
        verdict=verdict,
        guid=headers.get("x-akismet-guid", "")[:64],
        pro_tip=headers.get("x-akismet-pro-tip", "")[:40],
        error=headers.get("x-akismet-error", "")[:200],
        alert_code=headers.get("x-akismet-alert-code", "")[:20],
        alert_msg=headers.get("x-akismet-alert-msg", "")[:250],
        recheck_after=recheck_after,
        headers=headers,
    )


def submit_spam(payload: dict[str, Any]) -> None:
    _call("submit_spam", payload)


def submit_ham(payload: dict[str, Any]) -> None:
    _call("submit_ham", payload)


def verify_key() -> bool:
    """True if Akismet accepts our key and site; raises AkismetUnavailable if it cannot say."""
    try:
        return bool(_client().verify_key())
    except AkismetKeyInvalid:
        return False
    except (akismet.RequestError, akismet.ProtocolError) as exc:
        raise AkismetUnavailable(str(exc)) from exc


def _gmt(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds") if value else ""


def build_payload(comment: Comment, *, recheck_reason: str = "") -> dict[str, Any]:
    """The comment-check arguments, with everything Akismet can use."""
    article = comment.article
    post_time = article.updated_at or article.published_at
    payload: dict[str, Any] = {
        "user_ip": comment.ip_address or "127.0.0.1",
        "user_agent": comment.user_agent,
        "referrer": comment.referrer,
        "permalink": article.url,
        "comment_type": "reply" if comment.parent_id else "comment",
        "comment_author": comment.author_name,
        "comment_author_email": comment.author_email,
        "comment_author_url": comment.author_url,
        "comment_content": comment.body,
        "comment_date_gmt": _gmt(comment.created_at),
        "comment_post_modified_gmt": _gmt(post_time),
        "blog_lang": settings.AKISMET_BLOG_LANG,
        "blog_charset": "UTF-8",
    }
    if settings.AKISMET_IS_TEST:
        payload["is_test"] = True
    if recheck_reason:
        payload["recheck_reason"] = recheck_reason
    return {name: value for name, value in payload.items() if value not in ("", None)}
