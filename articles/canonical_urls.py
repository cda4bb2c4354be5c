"""One spelling per address, so every link to an article finds the same thread.

`canonicalize("HTTPS://News.Example.com:443/a/./b/?utm_source=x&id=3#top")` is
`"https://news.example.com/a/b/?id=3"`:

- scheme and host lower-cased, an internationalised host in its ASCII (punycode)
  form, an IPv6 literal compressed, the host's trailing dot and the default port
  dropped;
- user names and passwords refused (`https://news.example.com@evil.example/`);
- an empty path becomes `/`; `.` and `..` segments are resolved; several trailing
  slashes become one;
- percent-encoding normalised as RFC 3986 §6.2.2 allows without changing the
  address: escapes upper-cased, escaped unreserved characters (letters, digits,
  `-._~`) decoded, characters that may not appear raw (spaces, non-ASCII) encoded
  as UTF-8; reserved characters and `+` are left exactly as given;
- tracking parameters (`utm_*`, `fbclid`, `gclid`, `mc_cid`, ...) dropped, the
  other query parameters kept in their order and spelling; the fragment dropped.

A trailing slash is kept as written (it is the publisher's spelling, and what is
shown and sent to Akismet), but `/a/b` and `/a/b/` count as the same address:
`equivalent_urls` gives both spellings, and look-ups and the uniqueness checks of
articles and aliases use them.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db.models import Exists, OuterRef, Q, QuerySet

if TYPE_CHECKING:
    from articles.models import Article

# Parameters that identify a campaign or a click, never the page.
TRACKING_PARAMETERS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "yclid",
        "_ga",
        "_gl",
        "ref_src",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "__s",
        "s_cid",
        "mkt_tok",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_")
DEFAULT_PORTS = {"http": 80, "https": 443}

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# What may stay unescaped in a path or a query (RFC 3986 pchar, plus "/" and "?").
_ALLOWED_RAW = _UNRESERVED | frozenset("!$&'()*+,;=:@/?")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_DNS_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_TRAILING_SLASHES = re.compile(r"//+$")
_validate_url = URLValidator(schemes=["http", "https"])


def is_tracking_parameter(name: str) -> bool:
    """Whether a query parameter only tracks a campaign or click (case-insensitive)."""
    lowered = name.lower()
    return lowered in TRACKING_PARAMETERS or lowered.startswith(TRACKING_PREFIXES)


def canonicalize(url: str) -> str:
    """The canonical spelling of an http(s) URL; raises ValueError for anything else."""
    if not isinstance(url, str):
        raise ValueError("not an http(s) URL")
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # ValueError for a port that is not a number in range
    except ValueError:
        raise ValueError(f"not an http(s) URL: {url!r}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"a user name or password in the address: {url!r}")
    host = _canonical_host(parts.hostname)
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    try:
        path = _remove_dot_segments(_normalise_escapes(parts.path)) or "/"
        path = _TRAILING_SLASHES.sub("/", path)
        query = "&".join(
            _normalise_escapes(pair)
            for pair in parts.query.split("&")
            if pair and not is_tracking_parameter(unquote_plus(pair.split("=", 1)[0]))
        )
    except UnicodeError:  # a lone surrogate cannot be encoded
        raise ValueError(f"not an http(s) URL: {url!r}") from None
    canonical = urlunsplit((scheme, netloc, path, query, ""))
    try:
        _validate_url(canonical)
    except ValidationError:
        raise ValueError(f"not an http(s) URL: {url!r}") from None
    return canonical


def equivalent_urls(url: str) -> tuple[str, ...]:
    """The canonical spelling and the same address with or without a trailing slash.

    Raises ValueError like `canonicalize`. The root path has one spelling only.
    """
    canonical = canonicalize(url)
    parts = urlsplit(canonical)
    if parts.path == "/":
        return (canonical,)
    other = parts.path[:-1] if parts.path.endswith("/") else parts.path + "/"
    return (canonical, urlunsplit(parts._replace(path=other)))


def _canonical_host(hostname: str) -> str:
    """`hostname` as urlsplit gives it (already lower-cased, brackets removed)."""
    if ":" in hostname:  # an IPv6 literal
        try:
            address = ipaddress.IPv6Address(hostname)
        except ValueError:
            raise ValueError(f"not an IPv6 address: {hostname!r}") from None
        return f"[{address.compressed}]"
    host = hostname.rstrip(".")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"not a valid host name: {hostname!r}") from None
    if not _DNS_HOST.match(host):
        raise ValueError(f"not a valid host name: {hostname!r}")
    return host


def _normalise_escapes(text: str) -> str:
    """Upper-case escapes, decode escaped unreserved characters, escape what may not be raw."""

    def escape_match(match: re.Match[str]) -> str:
        char = chr(int(match[1], 16))
        return char if char in _UNRESERVED else f"%{match[1].upper()}"

    out = []
    position = 0
    for match in _ESCAPE.finditer(text):
        out.append(_escape_raw(text[position : match.start()]))
        out.append(escape_match(match))
        position = match.end()
    out.append(_escape_raw(text[position:]))
    return "".join(out)


def _escape_raw(text: str) -> str:
    """Percent-encode (UTF-8) every character that may not appear unescaped, including
    a "%" that does not start an escape."""
    return "".join(
        char if char in _ALLOWED_RAW else "".join(f"%{byte:02X}" for byte in char.encode())
        for char in text
    )


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4: `/a/./b/../c` is `/a/c`."""
    if "." not in path:
        return path
    segments = path.split("/")
    output: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    result = "/".join(output)
    return result if result.startswith("/") else "/" + result


# --- look-ups -------------------------------------------------------------------


def articles_at(url: str, queryset: QuerySet[Article] | None = None) -> QuerySet[Article]:
    """The articles whose url or one of whose aliases is `url`, under any spelling.

    An alias wins over an article's own url (after a merge that kept its source, the
    source's url is an alias of the target, where its comments now are), then the
    oldest article. Raises ValueError for anything but an http(s) URL.
    """
    from articles.models import Article, ArticleAlias

    spellings = equivalent_urls(url)
    base = Article.objects.all() if queryset is None else queryset
    return (
        base.annotate(
            found_by_alias=Exists(
                ArticleAlias.objects.filter(article=OuterRef("pk"), url__in=spellings)
            )
        )
        .filter(Q(url__in=spellings) | Q(found_by_alias=True))
        .order_by("-found_by_alias", "pk")
    )


def address_owner(url: str, *, exclude: int | None = None) -> Article | None:
    """Another article already reached at `url` (by its url or an alias), if any."""
    found = articles_at(url)
    if exclude is not None:
        found = found.exclude(pk=exclude)
    return found.only("pk", "slug").first()
