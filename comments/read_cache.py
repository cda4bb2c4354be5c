"""Ready-to-send bytes of the public read path, cached and invalidated precisely.

Every article slug has a *generation* token in the cache. A cached page or count
carries the token it was computed under and is served only while that token is
still current, so one `get_many` answers "is there a fresh copy?" in a single
round trip. Invalidating is replacing the token (after the transaction that
changed what readers see commits). A reader that computed a page from data read
before the change stores it under the old token, so it is never served: there is
no window in which a stale page can be written back.

What is cached is computed on the primary database, never on a replica: a
lagging replica could be older than the generation it would be stored under.

A burst of identical requests on a cold cache computes the page once: the first
takes a short lock, the others wait for its result (bounded) before computing
themselves.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpResponse, HttpResponseNotModified

from comments_project.db_router import primary

# Bumped when the shape of cached entries changes, so old entries are ignored.
_VERSION = "1"
LOCK_SECONDS = 10
WAIT_FOR_OTHER_SECONDS = 2.0
WAIT_STEP_SECONDS = 0.005


@dataclass(frozen=True)
class CachedBody:
    """A response body with its strong ETag, as stored and as served."""

    body: bytes
    etag: str


def enabled() -> bool:
    return bool(getattr(settings, "COMMENTS_READ_CACHE", True))


def ttl() -> int:
    return int(getattr(settings, "COMMENTS_READ_CACHE_SECONDS", 3600))


def etag_for(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def json_bytes(data: object) -> bytes:
    """Serialise like DRF's JSONRenderer (compact, UTF-8), so both paths agree byte for byte."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _gen_key(slug: str) -> str:
    return f"rc{_VERSION}:gen:{slug}"


def _page_key(slug: str, variant: str) -> str:
    return f"rc{_VERSION}:page:{slug}:{variant}"


def _count_key(slug: str) -> str:
    return f"rc{_VERSION}:count:{slug}"


def _new_token() -> str:
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class PageParams:
    """The query parameters that shape a comment page, normalised."""

    limit: int | None = None
    order: str | None = None
    cursor: str | None = None

    @classmethod
    def from_validated(cls, data: dict) -> PageParams:
        return cls(data.get("limit"), data.get("order"), data.get("cursor"))

    def variant(self, scheme: str, host: str) -> str:
        """A short key for this page as seen from scheme://host (links are absolute)."""
        raw = f"{scheme}://{host}|{self.limit or ''}|{self.order or ''}|{self.cursor or ''}"
        return hashlib.blake2b(raw.encode(), digest_size=12).hexdigest()

    def query_suffix(self) -> str:
        """`?limit=..&order=..` for the links (the cursor is added by the paginator)."""
        pairs = [("limit", self.limit), ("order", self.order)]
        query = "&".join(f"{name}={value}" for name, value in pairs if value)
        return f"?{query}" if query else ""


def cache_control() -> str:
    max_age = int(getattr(settings, "COMMENTS_READ_MAX_AGE", 0))
    if max_age <= 0:
        return "public, max-age=0, must-revalidate"
    return f"public, max-age={max_age}, stale-while-revalidate={max_age}"


def not_modified(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {part.strip().removeprefix("W/") for part in if_none_match.split(",")}
    return etag in candidates or "*" in candidates


def response(meta: dict, entry: CachedBody) -> HttpResponse:
    """200 with the body, or 304 when the client already holds this ETag."""
    if not_modified(meta.get("HTTP_IF_NONE_MATCH"), entry.etag):
        result = HttpResponseNotModified()
    else:
        result = HttpResponse(entry.body, content_type="application/json")
    result["ETag"] = entry.etag
    result["Cache-Control"] = cache_control()
    return result


# --- invalidation -------------------------------------------------------------


def invalidate_slugs(slugs: Iterable[str]) -> None:
    """Make every cached page and count of these articles stale, now."""
    tokens = {_gen_key(slug): _new_token() for slug in slugs}
    if tokens:
        cache.set_many(tokens, timeout=None)


def invalidate_article_on_commit(article_id: int) -> None:
    """Invalidate the article's cached reads now and again once the transaction commits.

    After commit is what guarantees freshness for everyone; the immediate one lets
    code later in the same transaction (and tests run inside one) read its own change.
    """
    from articles.models import Article

    def invalidate() -> None:
        slug = Article.objects.filter(pk=article_id).values_list("slug", flat=True).first()
        if slug is not None:
            invalidate_slugs([slug])

    invalidate()
    transaction.on_commit(invalidate)


def invalidate_article(slug: str) -> None:
    invalidate_slugs([slug])


def clear_all() -> None:
    """Forget every cached page and count (tests, or after restoring a database)."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        backend.clear()
        return
    client = backend._cache.get_client(write=True)
    pattern = backend.make_key(f"rc{_VERSION}:*")
    keys = list(client.scan_iter(match=pattern, count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


# --- pages --------------------------------------------------------------------


def cached_page(slug: str, variant: str) -> CachedBody | None:
    """The fresh cached page, or None (one cache round trip)."""
    if not enabled():
        return None
    gen_key, page_key = _gen_key(slug), _page_key(slug, variant)
    values = cache.get_many([gen_key, page_key])
    return _fresh(values.get(gen_key), values.get(page_key))


def _fresh(gen: str | None, entry: object) -> CachedBody | None:
    if gen is None or not isinstance(entry, tuple) or len(entry) != 3 or entry[0] != gen:
        return None
    return CachedBody(body=entry[2], etag=entry[1])


def _current_generation(slug: str) -> str:
    key = _gen_key(slug)
    gen = cache.get(key)
    if gen is None:
        cache.add(key, _new_token(), timeout=None)
        gen = cache.get(key)
    return gen


def page(slug: str, variant: str, compute: Callable[[], bytes]) -> tuple[CachedBody, bool]:
    """The page from the cache, or computed (once per burst) and stored.

    Returns the body and whether it came from the cache. `compute` may raise
    (an unknown article): nothing is stored then.
    """
    if not enabled():
        body = compute()
        return CachedBody(body, etag_for(body)), False
    hit = cached_page(slug, variant)
    if hit is not None:
        return hit, True
    gen = _current_generation(slug)
    lock_key = f"{_page_key(slug, variant)}:lock:{gen}"
    if not cache.add(lock_key, 1, timeout=LOCK_SECONDS):
        deadline = time.monotonic() + WAIT_FOR_OTHER_SECONDS
        while time.monotonic() < deadline:
            time.sleep(WAIT_STEP_SECONDS)
            hit = cached_page(slug, variant)
            if hit is not None:
                return hit, True
        lock_key = ""  # the other computation is slow or failed: compute ourselves
    try:
        with primary():  # a lagging replica could be older than the generation
            body = compute()
        entry = CachedBody(body, etag_for(body))
        cache.set(_page_key(slug, variant), (gen, entry.etag, body), timeout=ttl())
    finally:
        if lock_key:
            cache.delete(lock_key)
    return entry, False


# --- counts -------------------------------------------------------------------


def cached_counts(slugs: list[str]) -> tuple[dict[str, int], dict[str, str | None]]:
    """Fresh cached counts of `slugs`, and the generation of every slug (None if unset)."""
    if not enabled():
        return {}, dict.fromkeys(slugs)
    keys = [_gen_key(slug) for slug in slugs] + [_count_key(slug) for slug in slugs]
    values = cache.get_many(keys)
    counts: dict[str, int] = {}
    generations: dict[str, str | None] = {}
    for slug in slugs:
        gen = values.get(_gen_key(slug))
        generations[slug] = gen
        entry = values.get(_count_key(slug))
        if gen is not None and isinstance(entry, tuple) and len(entry) == 2 and entry[0] == gen:
            counts[slug] = entry[1]
    return counts, generations


def counts(slugs: list[str], load: Callable[[list[str]], dict[str, int]]) -> dict[str, int]:
    """Published counts of `slugs` (in their order); `load` reads the missing ones."""
    found, generations = cached_counts(slugs)
    missing = [slug for slug in dict.fromkeys(slugs) if slug not in found]
    if missing:
        if enabled():
            for slug in missing:
                if generations[slug] is None:
                    generations[slug] = _current_generation(slug)
        with primary() if enabled() else nullcontext():
            loaded = load(missing)
        entries = {}
        for slug in missing:
            found[slug] = loaded.get(slug, 0)
            entries[_count_key(slug)] = (generations[slug], found[slug])
        if enabled():
            cache.set_many(entries, timeout=ttl())
    return {slug: found[slug] for slug in slugs}
