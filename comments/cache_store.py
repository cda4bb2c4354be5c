"""Where the read cache keeps its bytes: Redis directly when there is Redis, else
Django's cache (the shared folder `make run` uses without Redis).

The cached read path is the hottest code in the system, so with Redis it talks
to one process-wide client (hiredis parsing, raw bytes, no pickling) instead of
Django's cache API, which builds a client and unpickles every value per call.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import threading
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)


class CacheUnavailable(Exception):
    """The shared cache could not be reached; callers read the database instead."""


@dataclass
class Counter:
    """A request counter (a Django cache key, see RedisStore.count) to increment in
    the same round trip as a read; `hits` is its new value once counted."""

    key: str
    ttl: int
    hits: int | None = None


class _RespReader:
    """A minimal Redis client for the hot commands (MGET, and the abuse limits'
    counters pipelined with it): a socket per thread, hiredis parsing. It costs a
    fraction of redis-py's general machinery, which matters on a path that does
    nothing else but this one round trip."""

    TIMEOUT = 5.0  # seconds a connect, send or receive may take

    def __init__(self, url: str) -> None:
        import hiredis
        from redis.connection import parse_url

        self._hiredis = hiredis
        options = parse_url(url)
        self.path = options.get("path")
        self.address = (options.get("host") or "localhost", int(options.get("port") or 6379))
        self.auth = [options.get("username"), options.get("password")]
        self.db = int(options.get("db") or 0)
        self.local = threading.local()

    def mget(self, keys: list[str]) -> list[bytes | None]:
        connection = getattr(self.local, "connection", None)
        if connection is None or connection[2] != os.getpid():
            connection = self._connect()
        sock, reader, _ = connection
        try:
            sock.sendall(_mget_command(tuple(keys)))
            reply = self._read(sock, reader)
        except Exception:
            self.local.connection = None
            sock.close()
            raise
        return reply

    def execute(self, commands: list[tuple[str, ...] | bytes]) -> list[object]:
        """Several commands (argument tuples, or RESP bytes) in one round trip; their
        replies."""
        connection = getattr(self.local, "connection", None)
        if connection is None or connection[2] != os.getpid():
            connection = self._connect()
        sock, reader, _ = connection
        try:
            sock.sendall(b"".join(c if isinstance(c, bytes) else _command(c) for c in commands))
            replies = [self._read(sock, reader, raise_errors=False) for _ in commands]
        except Exception:
            self.local.connection = None
            sock.close()
            raise
        for reply in replies:
            if isinstance(reply, self._hiredis.ReplyError):
                raise reply
        return replies

    def _connect(self) -> tuple[socket.socket, object, int]:
        if self.path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.TIMEOUT)
            sock.connect(self.path)
        else:
            sock = socket.create_connection(self.address, timeout=self.TIMEOUT)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Connected: a blocking socket whose timeouts the kernel keeps. A Python-level
        # timeout costs a poll() before every send and receive, half the system calls
        # of this round trip; a timed-out call raises OSError (EAGAIN) all the same.
        sock.settimeout(None)
        seconds = int(self.TIMEOUT)
        limit = struct.pack("ll", seconds, int((self.TIMEOUT - seconds) * 1_000_000))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
        reader = self._hiredis.Reader()
        username, password = self.auth
        if password:
            auth = ["AUTH", username, password] if username else ["AUTH", password]
            sock.sendall(_command(auth))
            self._read(sock, reader)
        if self.db:
            sock.sendall(_command(["SELECT", str(self.db)]))
            self._read(sock, reader)
        self.local.connection = (sock, reader, os.getpid())
        return self.local.connection

    def _read(self, sock: socket.socket, reader: object, raise_errors: bool = True) -> object:
        while True:
            reply = reader.gets()
            if reply is not False:
                break
            data = sock.recv(262144)
            if not data:
                raise ConnectionError("Redis closed the connection")
            reader.feed(data)
        if raise_errors and isinstance(reply, self._hiredis.ReplyError):
            raise reply
        return reply


def _command(args: list[str] | tuple[str, ...]) -> bytes:
    """A Redis command in RESP."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


@lru_cache(maxsize=4096)
def _mget_command(keys: tuple[str, ...]) -> bytes:
    """MGET `keys` in RESP. Memoised: the hot requests ask for the same few key sets
    again and again (a page's generation and page, a list page's counts)."""
    return _command(("MGET", *keys))


class RedisStore:
    """Redis errors become CacheUnavailable, logged; the read path then uses the database."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self.errors = (redis.RedisError, OSError)
        self.client = redis.Redis.from_url(url, socket_timeout=5, health_check_interval=30)
        self.reader = _RespReader(url)
        self.prefix = prefix

    def get_many(self, keys: list[str], count: Counter | None = None) -> list[bytes | None]:
        """The values of `keys`; with `count`, that counter incremented in the same
        round trip (the read limit of the request this read answers)."""
        try:
            if count is None:
                return self.reader.mget([self.prefix + key for key in keys])
            counter = cache.make_and_validate_key(count.key)
            found, hits, _ = self.reader.execute(
                [
                    _mget_command(tuple(self.prefix + key for key in keys)),
                    ("INCR", counter),
                    ("EXPIRE", counter, str(count.ttl)),
                ]
            )
        except Exception as exc:
            raise self._unavailable("read", exc) from None
        count.hits = int(hits)
        return found

    def set_many(self, values: dict[str, bytes], ttl: int | None) -> None:
        try:
            if ttl is None:  # one MSET: no pipeline to build (every publication does this)
                self.client.mset({self.prefix + key: value for key, value in values.items()})
                return
            pipe = self.client.pipeline(transaction=False)
            for key, value in values.items():
                pipe.set(self.prefix + key, value, ex=ttl)
            pipe.execute()
        except self.errors as exc:
            raise self._unavailable("write", exc) from None

    def add(self, key: str, value: bytes, ttl: int | None) -> bool:
        try:
            return bool(self.client.set(self.prefix + key, value, ex=ttl, nx=True))
        except self.errors as exc:
            raise self._unavailable("write", exc) from None

    def count(self, keys: list[str], ttl: int) -> list[int]:
        """Increment counters named by Django cache keys (as `cache.incr` would name
        them), each kept `ttl` seconds from its last hit; their new values. One round
        trip on the raw reader: the abuse limits count every public request."""
        commands: list[tuple[str, ...]] = []
        for key in keys:
            full_key = cache.make_and_validate_key(key)
            commands += [("INCR", full_key), ("EXPIRE", full_key, str(ttl))]
        try:
            replies = self.reader.execute(commands)
        except Exception as exc:
            raise self._unavailable("count", exc) from None
        return [int(reply) for reply in replies[::2]]

    def delete(self, key: str) -> None:
        try:
            self.client.delete(self.prefix + key)
        except self.errors as exc:
            raise self._unavailable("write", exc) from None

    def delete_prefixed(self, prefixes: list[str]) -> int:
        """Delete every key starting with one of `prefixes` (SCAN: for rare actions only)."""
        try:
            keys = [
                key
                for prefix in prefixes
                for key in self.client.scan_iter(
                    match=_glob_escape(self.prefix + prefix) + "*", count=1000
                )
            ]
            for start in range(0, len(keys), 500):
                self.client.delete(*keys[start : start + 500])
        except self.errors as exc:
            raise self._unavailable("delete", exc) from None
        return len(keys)

    def clear(self) -> None:
        keys = list(self.client.scan_iter(match=self.prefix + "*", count=1000))
        for start in range(0, len(keys), 500):
            self.client.delete(*keys[start : start + 500])

    @staticmethod
    def _unavailable(action: str, exc: Exception) -> CacheUnavailable:
        logger.warning("read cache unavailable (%s): %s", action, exc)
        return CacheUnavailable(str(exc))


class DjangoCacheStore:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def get_many(self, keys: list[str], count: Counter | None = None) -> list[bytes | None]:
        found = cache.get_many([self.prefix + key for key in keys])
        if count is not None:
            (count.hits,) = self.count([count.key], count.ttl)
        return [found.get(self.prefix + key) for key in keys]

    def set_many(self, values: dict[str, bytes], ttl: int | None) -> None:
        cache.set_many({self.prefix + key: value for key, value in values.items()}, timeout=ttl)

    def add(self, key: str, value: bytes, ttl: int | None) -> bool:
        return cache.add(self.prefix + key, value, timeout=ttl)

    def count(self, keys: list[str], ttl: int) -> list[int]:
        """As RedisStore.count, through Django's cache (add, then incr)."""
        hits = []
        for key in keys:
            cache.add(key, 0, timeout=ttl)
            try:
                hits.append(cache.incr(key))
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout=ttl)
                hits.append(1)
        return hits

    def delete(self, key: str) -> None:
        cache.delete(self.prefix + key)

    def delete_prefixed(self, prefixes: list[str]) -> int:
        """Django's cache API cannot list keys: forget the whole cache (a rare action,
        and only on a machine without Redis)."""
        cache.clear()
        return 0

    def clear(self) -> None:
        cache.clear()


def _glob_escape(text: str) -> str:
    """`text` matched literally in a Redis MATCH pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def store() -> RedisStore | DjangoCacheStore:
    backend = settings.CACHES["default"]
    if backend["BACKEND"].endswith(".RedisCache"):
        return _redis_store(backend["LOCATION"], f"{backend.get('KEY_PREFIX', '')}:rc1:")
    return _django_store()


@lru_cache(maxsize=4)
def _redis_store(url: str, prefix: str) -> RedisStore:
    return RedisStore(url, prefix)


@lru_cache(maxsize=1)
def _django_store() -> DjangoCacheStore:
    return DjangoCacheStore("rc1:")
