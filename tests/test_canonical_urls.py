"""The canonical spelling of an article's address: one row per rule (articles.canonical_urls).

Decisions the table records: scheme and host lower-cased, default port and fragment
dropped, tracking parameters dropped and every other parameter kept as written and
in order, percent-encoding normalised only where RFC 3986 says it changes nothing,
an internationalised host in punycode, the trailing slash kept as written (but both
spellings are equivalent), anything but an absolute http(s) URL refused.
"""

from __future__ import annotations

import pytest

from articles.canonical_urls import canonicalize, equivalent_urls, is_tracking_parameter

CANONICAL = [
    # scheme and host
    ("HTTPS://News.Example.COM/a", "https://news.example.com/a"),
    ("Http://news.example.com/a", "http://news.example.com/a"),
    ("https://news.example.com./a", "https://news.example.com/a"),
    ("  https://news.example.com/a \n", "https://news.example.com/a"),
    # the path's case is the server's business
    ("https://news.example.com/Story/A", "https://news.example.com/Story/A"),
    # ports
    ("https://news.example.com:443/a", "https://news.example.com/a"),
    ("http://news.example.com:80/a", "http://news.example.com/a"),
    ("https://news.example.com:80/a", "https://news.example.com:80/a"),
    ("http://news.example.com:8080/a", "http://news.example.com:8080/a"),
    ("http://127.0.0.1:8000/demo/x/", "http://127.0.0.1:8000/demo/x/"),
    # fragments
    ("https://news.example.com/a#comments", "https://news.example.com/a"),
    ("https://news.example.com/a?id=3#", "https://news.example.com/a?id=3"),
    # tracking parameters, any case; the others kept in order and as written
    ("https://news.example.com/a?utm_source=x&utm_medium=y", "https://news.example.com/a"),
    ("https://news.example.com/a?UTM_Campaign=spring", "https://news.example.com/a"),
    (
        "https://news.example.com/a?fbclid=IwAR0&gclid=Cj0&mc_cid=1&mc_eid=2",
        "https://news.example.com/a",
    ),
    (
        "https://news.example.com/a?msclkid=1&_ga=2&igshid=3&pk_campaign=4",
        "https://news.example.com/a",
    ),
    ("https://news.example.com/a?b=2&utm_source=x&a=1", "https://news.example.com/a?b=2&a=1"),
    ("https://news.example.com/a?page=2&page=1", "https://news.example.com/a?page=2&page=1"),
    ("https://news.example.com/a?q=a+b&r=a%20b", "https://news.example.com/a?q=a+b&r=a%20b"),
    ("https://news.example.com/a?flag&id=", "https://news.example.com/a?flag&id="),
    ("https://news.example.com/a?x=1&&y=2&", "https://news.example.com/a?x=1&y=2"),
    ("https://news.example.com/a?", "https://news.example.com/a"),
    ("https://news.example.com/a?utm=1&source=2", "https://news.example.com/a?utm=1&source=2"),
    ("https://news.example.com/a?q=utm_source", "https://news.example.com/a?q=utm_source"),
    ("https://news.example.com/a?%75tm_source=x&id=1", "https://news.example.com/a?id=1"),
    # trailing slash: kept as written, several become one; the root is always "/"
    ("https://news.example.com/a/b/", "https://news.example.com/a/b/"),
    ("https://news.example.com/a/b", "https://news.example.com/a/b"),
    ("https://news.example.com/a/b//", "https://news.example.com/a/b/"),
    ("https://news.example.com/a/?id=1", "https://news.example.com/a/?id=1"),
    ("https://news.example.com", "https://news.example.com/"),
    ("https://news.example.com/", "https://news.example.com/"),
    ("https://news.example.com//", "https://news.example.com/"),
    ("https://news.example.com?id=1", "https://news.example.com/?id=1"),
    # dot segments
    ("https://news.example.com/a/./b/../c", "https://news.example.com/a/c"),
    ("https://news.example.com/../a", "https://news.example.com/a"),
    ("https://news.example.com/a/b/..", "https://news.example.com/a/"),
    ("https://news.example.com/2025/story.v2.html", "https://news.example.com/2025/story.v2.html"),
    # percent-encoding: escapes upper-cased, unreserved ones decoded, reserved ones kept
    ("https://news.example.com/a%2fb", "https://news.example.com/a%2Fb"),
    ("https://news.example.com/%7Euser/%41%2D", "https://news.example.com/~user/A-"),
    ("https://news.example.com/caf%c3%a9", "https://news.example.com/caf%C3%A9"),
    ("https://news.example.com/café", "https://news.example.com/caf%C3%A9"),
    ("https://news.example.com/a b", "https://news.example.com/a%20b"),
    ("https://news.example.com/100%", "https://news.example.com/100%25"),
    ("https://news.example.com/a;b=c,d", "https://news.example.com/a;b=c,d"),
    ("https://news.example.com/?q=%e4%b8%ad", "https://news.example.com/?q=%E4%B8%AD"),
    ("https://news.example.com/?q=中", "https://news.example.com/?q=%E4%B8%AD"),
    # IPv4, IPv6 and internationalised hosts
    ("http://192.0.2.10/a", "http://192.0.2.10/a"),
    ("http://[2001:DB8:0:0:0:0:0:1]/a", "http://[2001:db8::1]/a"),
    ("http://[2001:db8::1]:80/a", "http://[2001:db8::1]/a"),
    ("https://[::1]:8443/a", "https://[::1]:8443/a"),
    ("https://Bücher.example/a", "https://xn--bcher-kva.example/a"),
    ("https://xn--bcher-kva.example/a", "https://xn--bcher-kva.example/a"),
    ("https://例え.テスト/a", "https://xn--r8jz45g.xn--zckzah/a"),
]

REFUSED = [
    "",
    "   ",
    "not a url",
    "news.example.com/a",
    "//news.example.com/a",
    "/a/b",
    "ftp://news.example.com/a",
    "mailto:editor@example.com",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "file:///etc/passwd",
    "http://",
    "https:///a",
    "https://:443/a",
    "https://news.example.com:99999/a",
    "https://news.example.com:port/a",
    "https://exa mple.com/a",
    "https://news.example.com\\evil.example/a",
    "https://editor:secret@news.example.com/a",
    "https://news.example.com@evil.example/a",
    "https://[2001:db8::zz]/a",
    "https://[::1/a",
    "https://under_score.example.com/a",
    "https://-leading.example.com/a",
    "https://news.example.com/\ud800",
    "https://xn--.example/a",
]


@pytest.mark.parametrize(("given", "expected"), CANONICAL, ids=[row[0] for row in CANONICAL])
def test_an_address_has_one_canonical_spelling(given, expected):
    assert canonicalize(given) == expected


@pytest.mark.parametrize(("given", "expected"), CANONICAL, ids=[row[0] for row in CANONICAL])
def test_canonicalising_twice_changes_nothing(given, expected):
    assert canonicalize(expected) == expected


@pytest.mark.parametrize("given", REFUSED, ids=[repr(value) for value in REFUSED])
def test_anything_but_an_http_url_is_refused(given):
    with pytest.raises(ValueError):
        canonicalize(given)


@pytest.mark.parametrize(
    ("given", "spellings"),
    [
        (
            "https://News.example.com/a/b/?utm_source=x",
            ("https://news.example.com/a/b/", "https://news.example.com/a/b"),
        ),
        (
            "https://news.example.com/a/b?id=1",
            ("https://news.example.com/a/b?id=1", "https://news.example.com/a/b/?id=1"),
        ),
        ("https://news.example.com/?utm_source=x", ("https://news.example.com/",)),
        ("https://news.example.com", ("https://news.example.com/",)),
    ],
)
def test_with_or_without_a_trailing_slash_is_the_same_address(given, spellings):
    assert equivalent_urls(given) == spellings


@pytest.mark.parametrize(
    ("name", "tracking"),
    [
        ("utm_source", True),
        ("UTM_MEDIUM", True),
        ("utm_anything_new", True),
        ("fbclid", True),
        ("gclid", True),
        ("mc_cid", True),
        ("mc_eid", True),
        ("mtm_campaign", True),
        ("id", False),
        ("page", False),
        ("utm", False),
        ("q", False),
        ("ref", False),
    ],
)
def test_tracking_parameters_are_recognised_by_name(name, tracking):
    assert is_tracking_parameter(name) is tracking
