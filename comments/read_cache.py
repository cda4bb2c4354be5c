"""Ready-to-send bytes of the public read path, cached and invalidated precisely.

Every article slug has a *generation* token in the cache. A cached page or count
carries the token it was computed under and is served only while that token is
still current, so one multi-get answers "is there a fresh copy?" in a single
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
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext, suppress
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, HttpResponseNotModified

from comments.cache_store import CacheUnavailable, Counter, store
from comments_project.db_router import primary

logger = logging.getLogger(__name__)

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
    """A strong ETag of the bytes. SHA-1 (truncated) because it runs in hardware here:
    a third of BLAKE2's time on a 70 KB page; no one gains by forging a cache tag."""
    return '"' + hashlib.sha1(body, usedforsecurity=False).hexdigest()[:24] + '"'


def json_bytes(data: object) -> bytes:
    """Serialise like DRF's JSONRenderer (compact, UTF-8), so both paths agree byte for byte."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


# The "slug" of site-wide pages (the latest comments of every article): no article
# slug contains a colon. Every invalidation of an article replaces its generation too.
SITE = ":site"


def _gen_key(slug: str) -> str:
    return f"gen:{slug}"


def _page_key(slug: str, variant: str) -> str:
    return f"page:{slug}:{variant}"


def _count_key(slug: str) -> str:
    return f"count:{slug}"


def _new_token() -> bytes:
    return uuid.uuid4().hex[:16].encode()


# Entries are bytes: the generation, a newline, then the payload.
def _pack(gen: bytes, payload: bytes) -> bytes:
    return gen + b"\n" + payload


def _unpack(gen: bytes | None, entry: bytes | None) -> bytes | None:
    """The payload if the entry was stored under the current generation."""
    if gen is None or entry is None or not entry.startswith(gen + b"\n"):
        return None
    return entry[len(gen) + 1 :]


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
    """Make every cached page and count of these articles stale, now (and the
    site-wide pages, which show comments of any article)."""
    tokens = {_gen_key(slug): _new_token() for slug in slugs}
    if not tokens:
        return
    tokens[_gen_key(SITE)] = _new_token()
    try:
        store().set_many(tokens, ttl=None)
    except CacheUnavailable:
        # Pages cached before the outage may be served until they expire
        # (COMMENTS_READ_CACHE_SECONDS); a cache that lost its data has none.
        logger.error("could not invalidate cached reads of %s", sorted(set(slugs)))


def invalidate_article_on_commit(article_id: int, slug: str | None = None) -> None:
    """Invalidate the article's cached reads now and again once the transaction commits.

    After commit is what guarantees freshness for everyone; the immediate one lets
    code later in the same transaction (and tests run inside one) read its own change.
    A caller that has just read the article's slug under the transaction passes it.
    """
    from articles.models import Article

    if slug is None:
        slug = Article.objects.filter(pk=article_id).values_list("slug", flat=True).first()
    if slug is None:
        return
    # The slug read once serves both: renaming an article invalidates its old and
    # new slug itself (articles/signals.py).
    invalidate_slugs([slug])
    transaction.on_commit(lambda: invalidate_slugs([slug]))


def purge_articles_on_commit(article_ids: Iterable[int]) -> None:
    """After commit, delete the articles' cached pages and the site-wide ones outright.

    Invalidation only makes old entries unreachable; they stay in Redis until
    they expire. After an erasure no copy of the erased name may stay anywhere, so
    those entries are deleted (each process's own copies are checked against the
    generation and go with its next read of the article).
    """
    from articles.models import Article

    ids = list(article_ids)

    def purge() -> None:
        slugs = list(Article.objects.filter(pk__in=ids).values_list("slug", flat=True))
        try:
            store().delete_prefixed([_page_key(slug, "") for slug in slugs] + [_page_key(SITE, "")])
        except CacheUnavailable:
            logger.error("could not delete the cached pages of %s", sorted(slugs))
        _local.clear()

    transaction.on_commit(purge)


def invalidate_article(slug: str) -> None:
    invalidate_slugs([slug])


def clear_all() -> None:
    """Forget every cached page and count (tests, or after restoring a database)."""
    _local.clear()
    _local_counts.clear()
    store().clear()


# --- pages --------------------------------------------------------------------


class _LocalPages:
    """This process's copies of recently served pages, each with its generation.

    The shared cache stays the truth: every read still fetches the article's
    current generation, and a local copy is used only if it was stored under
    that very generation. What the copy saves is moving the page's bytes out of
    Redis on every request (tens of kilobytes for a busy thread).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.entries: OrderedDict[tuple[str, str], tuple[bytes, CachedBody]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[str, str], gen: bytes) -> CachedBody | None:
        found = self.entries.get(key)
        if found is None or found[0] != gen:
            return None
        return found[1]

    def put(self, key: tuple[str, str], gen: bytes, entry: CachedBody) -> None:
        if len(entry.body) > self.max_bytes // 4:
            return
        with self.lock:
            old = self.entries.pop(key, None)
            if old is not None:
                self.size -= len(old[1].body)
            self.entries[key] = (gen, entry)
            self.size += len(entry.body)
            while self.size > self.max_bytes and self.entries:
                _, (_, evicted) = self.entries.popitem(last=False)
                self.size -= len(evicted.body)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.size = 0


_local = _LocalPages(max_bytes=16 * 1024 * 1024)


def cached_page(slug: str, variant: str, count: Counter | None = None) -> CachedBody | None:
    """The fresh cached page, or None (one cache round trip, of a few bytes when
    this process already holds the page). `count` is incremented in that round trip."""
    if not enabled():
        return None
    gen_key = _gen_key(slug)
    try:
        gen = store().get_many([gen_key], count)[0]
        local = _local.get((slug, variant), gen) if gen is not None else None
        if local is not None:
            return local
        gen, entry = store().get_many([gen_key, _page_key(slug, variant)])
    except CacheUnavailable:
        return None
    payload = _unpack(gen, entry)
    if payload is None:
        return None
    etag, _, body = payload.partition(b"\n")
    result = CachedBody(body=body, etag=etag.decode())
    _local.put((slug, variant), gen, result)
    return result


def _current_generation(slug: str) -> bytes:
    key = _gen_key(slug)
    gen = store().get_many([key])[0]
    if gen is None:
        store().add(key, _new_token(), ttl=None)
        gen = store().get_many([key])[0]
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
    try:
        gen = _current_generation(slug)
        lock_key = f"{_page_key(slug, variant)}:lock:{gen.decode()}"
        if not store().add(lock_key, b"1", ttl=LOCK_SECONDS):
            hit = _wait_for_other(slug, variant)
            if hit is not None:
                return hit, True
            lock_key = ""  # the other computation is slow or failed: compute ourselves
    except CacheUnavailable:
        body = compute()
        return CachedBody(body, etag_for(body)), False
    try:
        with primary():  # a lagging replica could be older than the generation
            body = compute()
        entry = CachedBody(body, etag_for(body))
        packed = _pack(gen, entry.etag.encode() + b"\n" + body)
        _quietly(store().set_many, {_page_key(slug, variant): packed}, ttl=ttl())
    finally:
        if lock_key:
            _quietly(store().delete, lock_key)
    return entry, False


def _wait_for_other(slug: str, variant: str) -> CachedBody | None:
    deadline = time.monotonic() + WAIT_FOR_OTHER_SECONDS
    while time.monotonic() < deadline:
        time.sleep(WAIT_STEP_SECONDS)
        hit = cached_page(slug, variant)
        if hit is not None:
            return hit
    return None


def _quietly(operation: Callable[..., object], *args: object, **kwargs: object) -> None:
    """A cache write the answer does not depend on; failures are logged by the store."""
    with suppress(CacheUnavailable):
        operation(*args, **kwargs)


# --- counts -------------------------------------------------------------------


_LOCAL_COUNTS_MAX = 50_000
_local_counts: dict[str, tuple[bytes, int]] = {}


def generation_keys(slugs: Sequence[str]) -> list[str]:
    """The cache keys of the generations of `slugs`, for current_generations."""
    return [_gen_key(slug) for slug in slugs]


def current_generations(
    keys: list[str], count: Counter | None = None
) -> tuple[bytes | None, ...] | None:
    """The generations under `keys` (generation_keys; None where unset) in one round
    trip that also increments `count`; None when the cache is off or out of reach."""
    if not enabled():
        return None
    try:
        return tuple(store().get_many(keys, count))
    except CacheUnavailable:
        return None


def cached_counts(
    slugs: list[str],
    count: Counter | None = None,
    generations: Sequence[bytes | None] | None = None,
) -> tuple[dict[str, int], dict[str, bytes | None]]:
    """Fresh cached counts of `slugs`, and the generation of every slug (None if unset).

    Like pages, counts this process already holds are used when their generation
    is still the article's current one; only the others are fetched. `count` is
    incremented in the first round trip. `generations`: those of `slugs`, in order,
    when the caller has just read them (current_generations).
    """
    if not enabled():
        return {}, dict.fromkeys(slugs)
    try:
        return _cached_counts(slugs, count, generations)
    except CacheUnavailable:
        return {}, dict.fromkeys(slugs)


def _cached_counts(
    slugs: list[str], count: Counter | None, gens: Sequence[bytes | None] | None
) -> tuple[dict[str, int], dict[str, bytes | None]]:
    if gens is None:
        gens = store().get_many(generation_keys(slugs), count)
    counts: dict[str, int] = {}
    generations: dict[str, bytes | None] = {}
    wanted = []
    for slug, gen in zip(slugs, gens, strict=True):
        generations[slug] = gen
        local = _local_counts.get(slug)
        if gen is None:
            continue
        if local is not None and local[0] == gen:
            counts[slug] = local[1]
        else:
            wanted.append(slug)
    if wanted:
        if len(_local_counts) > _LOCAL_COUNTS_MAX:
            _local_counts.clear()
        entries = store().get_many([_count_key(slug) for slug in wanted])
        for slug, entry in zip(wanted, entries, strict=True):
            payload = _unpack(generations[slug], entry)
            if payload is not None:
                counts[slug] = int(payload)
                _local_counts[slug] = (generations[slug], counts[slug])
    return counts, generations


def counts(slugs: list[str], load: Callable[[list[str]], dict[str, int]]) -> dict[str, int]:
    """Published counts of `slugs` (in their order); `load` reads the missing ones."""
    found, generations = cached_counts(slugs)
    missing = [slug for slug in dict.fromkeys(slugs) if slug not in found]
    if missing:
        caching = enabled()
        try:
            for slug in missing if caching else ():
                if generations[slug] is None:
                    generations[slug] = _current_generation(slug)
        except CacheUnavailable:
            caching = False
        with primary() if caching else nullcontext():
            loaded = load(missing)
        entries = {}
        for slug in missing:
            found[slug] = loaded.get(slug, 0)
            if caching:
                entries[_count_key(slug)] = _pack(generations[slug], str(found[slug]).encode())
        if entries:
            _quietly(store().set_many, entries, ttl=ttl())
    return {slug: found[slug] for slug in slugs}
