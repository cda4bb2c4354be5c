"""Read replicas: anonymous public reads may go to a replica; everything else uses the primary.

With DATABASE_REPLICA_URL set, settings add a `replica` database alias. Reads go
there only inside an explicitly marked *public read* context, which
`ReplicaReadMiddleware` opens for anonymous GET/HEAD requests to the paths in
`PUBLIC_READ_PATHS`. Everything else reads the primary: writes, the author's own
comment (`X-Comment-Token`), moderation, the admin, any signed-in request, Celery
workers, management commands and tests, because none of them is marked.

A replica lags the primary (usually milliseconds, seconds under load). Code that
must see its own write inside a marked context wraps the read in `primary()`;
reads inside an atomic block on the primary go to the primary automatically.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, HttpResponse

PRIMARY = DEFAULT_DB_ALIAS
REPLICA = "replica"

# Anonymous GET/HEAD requests to these paths (matched against `path_info`) read
# from the replica. Add new public, cacheable read endpoints (feeds, ...) here;
# never a path that shows a reader their own, possibly just-written data.
_SLUG = r"[-a-zA-Z0-9_]+"
PUBLIC_READ_PATHS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(pattern)
    for pattern in (
        r"^/api/v1/articles/$",
        rf"^/api/v1/articles/{_SLUG}/$",  # also .../counts/
        rf"^/api/v1/articles/{_SLUG}/comments/$",
        rf"^/api/v1/articles/{_SLUG}/form-token/$",
        r"^/api/v1/comments/latest/$",
        r"^/feeds/latest\.atom$",
        rf"^/feeds/articles/{_SLUG}\.atom$",
        r"^/demo/$",
        rf"^/demo/{_SLUG}/$",
    )
)
_READ_METHODS = frozenset({"GET", "HEAD"})
# Any of these marks a request as someone's own view: it reads the primary.
_PRIVATE_HEADERS = ("HTTP_AUTHORIZATION", "HTTP_X_COMMENT_TOKEN")

_public_read: ContextVar[bool] = ContextVar("comments_public_read", default=False)


def in_public_read() -> bool:
    """Whether the current context is marked as a public read (replica allowed)."""
    return _public_read.get()


@contextmanager
def public_read() -> Iterator[None]:
    """Mark the enclosed code as a public read: its queries may use the replica."""
    token = _public_read.set(True)
    try:
        yield
    finally:
        _public_read.reset(token)


@contextmanager
def primary() -> Iterator[None]:
    """Force the primary for the enclosed code, also inside a public read."""
    token = _public_read.set(False)
    try:
        yield
    finally:
        _public_read.reset(token)


def replica_configured() -> bool:
    return REPLICA in connections.settings


class ReplicaRouter:
    """Send reads to the replica only inside a public read; writes always to the primary."""

    def db_for_read(self, model: type[Any], **hints: Any) -> str:
        if (
            _public_read.get()
            and replica_configured()
            # Inside a transaction on the primary, read what it has written so far.
            and not connections[PRIMARY].in_atomic_block
        ):
            return REPLICA
        return PRIMARY

    def db_for_write(self, model: type[Any], **hints: Any) -> str:
        return PRIMARY

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        # Primary and replica hold the same data.
        return True

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool:
        # A replica gets its schema by replication.
        return db == PRIMARY


def is_public_read(request: HttpRequest) -> bool:
    """Whether the request is an anonymous GET/HEAD of a public read path."""
    if request.method not in _READ_METHODS:
        return False
    if any(header in request.META for header in _PRIVATE_HEADERS):
        return False
    if settings.SESSION_COOKIE_NAME in request.COOKIES:
        return False
    path = request.path_info
    return any(pattern.match(path) for pattern in PUBLIC_READ_PATHS)


class ReplicaReadMiddleware:
    """Open a public read context for the view of an anonymous public GET/HEAD."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_public_read(request):
            return self.get_response(request)
        with public_read():
            return self.get_response(request)
