"""Cheap, synchronous abuse checks on the public API: throttles, flood control,
the form token (minimum time to submit), duplicates.

Every limit is a setting; 0 (or an empty rate) turns that check off for trusted
integrations and load tests. Counters live in the default cache (Redis in
production), so every web process shares them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import time
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import connections, router
from django.utils import timezone
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from comments import cache_store, prepared
from comments.models import Comment
from comments.request_context import client_ip

_FORM_SALT = "comments.form-token"
# A cache outage must not turn into 5xx for readers and commenters: the limits that
# live in the cache are skipped (and logged) until it is back.
CACHE_ERRORS: tuple[type[Exception], ...] = (
    ConnectionError,
    TimeoutError,
    OSError,
    cache_store.CacheUnavailable,
)
try:
    from redis.exceptions import RedisError

    CACHE_ERRORS = (*CACHE_ERRORS, RedisError)
except ImportError:  # pragma: no cover (redis is a pinned dependency)
    pass

logger = logging.getLogger(__name__)


def _cache_down(limit: str, exc: Exception) -> bool:
    logger.warning("cache unavailable, %s limit skipped: %s", limit, exc)
    return True


def _digest(value: str) -> str:
    """A keyed digest for cache keys: counters never hold a client's IP address or
    e-mail in clear, and without SECRET_KEY the digest cannot be reversed by trying
    every IPv4 address or a list of known e-mails."""
    return hmac.new(
        settings.SECRET_KEY.encode(), value.encode("utf-8", "replace"), hashlib.sha256
    ).hexdigest()[:32]


def client_key(ip: str | None) -> str:
    """The cache-key part naming one client IP address (keyed digest, see _digest)."""
    return _digest(ip) if ip else "unknown"


class _SettingRateThrottle(SimpleRateThrottle):
    """A DRF throttle whose rate is read from a Django setting on every request.

    Its own allow_request is DRF's sliding log (a get and a set per request), kept
    for the rarely used personal-data forms; the public API's throttles below
    count in fixed windows with `count_hits` instead."""

    setting_name = ""
    cache = cache

    def get_rate(self) -> str | None:
        rate = str(getattr(settings, self.setting_name, "") or "").strip()
        return None if rate in ("", "0") or rate.startswith("0/") else rate

    def allow_request(self, request: Request, view: APIView) -> bool:
        # DRF resolves the rate once at construction; re-read it so tests and
        # operators can change it without restarting.
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            return super().allow_request(request, view)
        except CACHE_ERRORS as exc:
            return _cache_down(self.scope, exc)


class SubmitThrottle(_SettingRateThrottle):
    """Submits per client IP and per e-mail address, each up to COMMENTS_THROTTLE_SUBMIT,
    counted in fixed windows: one cache round trip for both counters. (DRF's sliding
    log read and wrote a pickled list per counter: four round trips per submit.)"""

    scope = "submit"
    setting_name = "COMMENTS_THROTTLE_SUBMIT"

    def allow_request(self, request: Request, view: APIView) -> bool:
        if request.method != "POST":
            return True
        # The submit fast path in front of Django may have counted this request
        # already and handed it on to be refused here; then it is not counted twice.
        wait = request.META.get(SUBMIT_WAIT_ENVIRON)
        if wait is None:
            try:
                wait = submit_limit_wait(client_ip(request), request.data)
            except CACHE_ERRORS as exc:
                return _cache_down(self.scope, exc)
        self._wait = wait or 0
        return self._wait == 0

    def wait(self) -> float | None:
        return self._wait or None


# Where comments_project.fastpath leaves the submit limit's wait of a request it
# counted and hands on.
SUBMIT_WAIT_ENVIRON = "comments.submit_wait"


def submit_limit_wait(ip: str | None, data: object) -> int | None:
    """Count one submit from `ip`, and one from the e-mail address in `data`, against
    COMMENTS_THROTTLE_SUBMIT: the seconds to wait if either is over it, else 0; None
    when submits are not limited. Raises CACHE_ERRORS when the counters are out of reach."""
    rate = setting_rate(SubmitThrottle.setting_name)
    if rate is None:
        return None
    window = FixedWindow(*rate)
    keys = [window.key(f"submit-ip:{client_key(ip)}")]
    if isinstance(data, dict):
        email = str(data.get("author_email", "")).strip().lower()
        if email:
            keys.append(window.key(f"submit-email:{_digest(email)}"))
    return window.wait(max(count_hits(keys, window.duration)))


class ReadThrottle(_SettingRateThrottle):
    """Reads per client IP, counted in fixed windows: one cache round trip per read,
    shared with the cached fast path (comments_project/fastpath.py)."""

    scope = "read"
    setting_name = "COMMENTS_THROTTLE_READ"

    def allow_request(self, request: Request, view: APIView) -> bool:
        if request.method not in ("GET", "HEAD"):
            return True
        limit = ReadLimit.of(client_ip(request))
        if limit is None:
            return True
        # The cached-read layer in front of Django may have counted this request
        # already, in its own cache round trip; then it is not counted twice.
        limit.counter.hits = request.META.get(READ_HITS_ENVIRON)
        try:
            self._wait = limit.wait()
        except CACHE_ERRORS as exc:
            return _cache_down(self.scope, exc)
        return self._wait == 0

    def wait(self) -> float | None:
        return self._wait or None


def read_limit_on() -> bool:
    """Whether COMMENTS_THROTTLE_READ limits reads at all (cheap: no client IP parsed)."""
    return read_rate() is not None


def read_rate() -> tuple[int, int] | None:
    """COMMENTS_THROTTLE_READ as (requests, seconds), or None when reads are not limited."""
    return setting_rate("COMMENTS_THROTTLE_READ")


def setting_rate(name: str) -> tuple[int, int] | None:
    """A rate setting (DRF syntax, `10/min`) as (requests, seconds); None when off.
    Read on every call, so operators and tests can change it without a restart."""
    return _parsed_rate(str(getattr(settings, name, "") or ""))


@lru_cache(maxsize=16)
def _parsed_rate(setting: str) -> tuple[int, int] | None:
    rate = setting.strip()
    if rate in ("", "0") or rate.startswith("0/"):
        return None
    return SimpleRateThrottle.parse_rate(None, rate)  # DRF's own parsing (self unused)


class FixedWindow:
    """The current window of a rate of `allowed` requests per `duration` seconds: its
    counters' keys, and how long a client over the rate waits."""

    def __init__(self, allowed: int, duration: int) -> None:
        now = time.time()
        self.allowed, self.duration = allowed, duration
        self.index = int(now // duration)
        self.ends = (self.index + 1) * duration

    def key(self, name: str) -> str:
        return f"throttle:{name}:{self.index}"

    def wait(self, hits: int) -> int:
        """Seconds until the window ends if `hits` is over the rate, else 0."""
        if hits <= self.allowed:
            return 0
        return max(1, int(self.ends - time.time()))


# Where comments_project.fastpath leaves the read count of a request it hands on.
READ_HITS_ENVIRON = "comments.read_hits"


class ReadLimit:
    """One read from one client against COMMENTS_THROTTLE_READ, in a fixed window.

    Its counter can be incremented by the cache read that answers the request (one
    round trip for both: read_cache.cached_page/cached_counts) or by `wait`."""

    def __init__(self, ip: str | None, allowed: int, duration: int) -> None:
        self.window = FixedWindow(allowed, duration)
        self.counter = cache_store.Counter(self.window.key(f"read:{client_key(ip)}"), duration)

    @classmethod
    def of(cls, ip: str | None) -> ReadLimit | None:
        """The limit for a read from `ip`, or None when reads are not limited."""
        rate = read_rate()
        return None if rate is None else cls(ip, *rate)

    def wait(self) -> int:
        """Count the read unless counted already; seconds to wait if over, else 0."""
        if self.counter.hits is None:
            (self.counter.hits,) = count_hits([self.counter.key], self.counter.ttl)
        return self.window.wait(self.counter.hits)


def read_limit_wait(ip: str | None) -> int:
    """Count one read from `ip`; the seconds it must wait if over the limit, else 0."""
    limit = ReadLimit.of(ip)
    return 0 if limit is None else limit.wait()


def count_hits(keys: list[str], duration: int) -> list[int]:
    """Increment counters that expire `duration` seconds after their last hit (their
    keys hold the window, so an extended one is never read again); their new values.
    With Redis one round trip on the read cache's raw connection: reads count too."""
    return cache_store.store().count(keys, duration)


def _redis_client(key: str):
    """The raw Redis client behind the default cache, if it is Redis.

    One per connection pool, built once: redis-py fills a table of some 170 response
    callbacks for every client it builds, and Django's cache builds one for every call
    (about a third of a submit's time in the limits, before)."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]
    if isinstance(backend, RedisCache):
        return _client_of(backend._cache._get_connection_pool(write=True))
    return None


@lru_cache(maxsize=64)
def _client_of(pool: object):
    import redis

    return redis.Redis(connection_pool=pool)


def check_flood(ip: str | None) -> None:
    """One comment per client IP every COMMENTS_FLOOD_SECONDS; else 429 with Retry-After."""
    seconds = settings.COMMENTS_FLOOD_SECONDS
    if seconds <= 0 or not ip:
        return
    key = f"flood:{client_key(ip)}"
    now = time.time()
    try:
        client = _redis_client(key)
        if client is not None:  # one round trip: SET NX, and the time already there
            full_key = cache.make_and_validate_key(key)
            pipe = client.pipeline(transaction=False)
            pipe.set(full_key, repr(now), ex=seconds, nx=True)
            pipe.get(full_key)
            first, posted = pipe.execute()
        else:
            first = cache.add(key, now, timeout=seconds)
            posted = None if first else cache.get(key)
    except CACHE_ERRORS as exc:
        _cache_down("flood", exc)
        return
    if not first:
        try:
            posted_at = float(posted)
        except (TypeError, ValueError):  # gone meanwhile, or written by an older release
            posted_at = now
        wait = max(1, round(seconds - (now - posted_at)))
        raise Throttled(wait=wait, detail="You are posting too fast. Please wait a moment.")


def make_form_token(article_slug: str) -> str:
    return signing.TimestampSigner(salt=_FORM_SALT).sign(article_slug)


class FormTokenError(ValueError):
    pass


def check_form_token(token: str | None, article_slug: str) -> None:
    """The widget fetched this token for this article at least N seconds ago."""
    minimum = settings.COMMENTS_MIN_SUBMIT_SECONDS
    if minimum <= 0:
        return
    if not token:
        raise FormTokenError(
            "A form token is required: fetch one from "
            f"/api/v1/articles/{article_slug}/form-token/ before submitting."
        )
    signer = signing.TimestampSigner(salt=_FORM_SALT)
    try:
        slug = signer.unsign(token, max_age=settings.COMMENTS_FORM_TOKEN_MAX_AGE)
    except signing.SignatureExpired:
        raise FormTokenError("The form has expired; reload it and try again.") from None
    except signing.BadSignature:
        raise FormTokenError("The form token is not valid.") from None
    if slug != article_slug:
        raise FormTokenError("The form token belongs to another article.")
    issued = signing.b62_decode(token.split(signer.sep)[-2])
    if time.time() - issued < minimum:
        raise FormTokenError("That was quick! Please take a moment before submitting.")


def is_duplicate(*, article_id: int, author_email: str, body: str) -> bool:
    """The same author already said the same thing on this article within the window."""
    window = settings.COMMENTS_DUPLICATE_WINDOW_SECONDS
    if window <= 0:
        return False
    since = timezone.now() - dt.timedelta(seconds=window)
    using = router.db_for_read(Comment)
    if connections[using].vendor == "postgresql":
        # Prepared: with the comment table's partial indexes PostgreSQL took about
        # 2 ms to plan this statement and 0.2 ms to run it, on every default submit.
        with prepared.prepared_cursor(using) as cursor:
            cursor.execute(
                _duplicate_sql(),
                [article_id, author_email, since, body, Comment.Status.REMOVED.value],
            )
            return cursor.fetchone() is not None
    return (
        Comment.objects.using(using)
        .filter(
            article_id=article_id,
            author_email=author_email,
            created_at__gte=since,
            body=body,
        )
        .exclude(status=Comment.Status.REMOVED)
        .exists()
    )


@lru_cache(maxsize=1)
def _duplicate_sql() -> str:
    """The ORM query above, as SQL for a prepared statement (names from the model)."""
    meta = Comment._meta
    quote = connections["default"].ops.quote_name

    def column(name: str) -> str:
        return quote(meta.get_field(name).column)

    return (
        f"SELECT 1 FROM {quote(meta.db_table)} WHERE {column('article')} = %s"  # noqa: S608
        f" AND {column('author_email')} = %s AND {column('created_at')} >= %s"
        f" AND {column('body')} = %s AND NOT ({column('status')} = %s) LIMIT 1"
    )
