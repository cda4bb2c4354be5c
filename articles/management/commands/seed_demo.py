"""Fill the demo articles with published comments: `python manage.py seed_demo --comments N`.

Resets article `article-0` to N published comments (about 20% replies) and `article-1` …
`article-50` to 0–30 each; every other article is left alone. Runs are reproducible
(`--seed`) and fast enough for N=100,000.

Seeded rows look like comments that passed the automated check (Akismet said ham), so
they satisfy every constraint, but they get no CommentEvent: there was no real history,
and writing one row per comment would double the work.

The comments form one timeline over the past two weeks, all articles interleaved, with
`created_at` growing with the id. So that they can be written in that order while replies
point at recent earlier comments of any depth, the ids are reserved up front: PostgreSQL hands
them out from the table's sequence; on SQLite they are taken above the highest id ever
used, which is safe because the transaction has written already and so holds SQLite's
write lock. Rows go in with COPY on PostgreSQL (bulk_create took 2–3 times as long for
100,000) and with bulk_create elsewhere.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from articles.models import Article
from comments.models import Comment, CommentEvent
from comments.rendering import render_body

ARTICLE_COUNT = 51  # article-0 … article-50
OTHER_ARTICLE_MAX_COMMENTS = 30
REPLY_SHARE = 0.2
# A reply answers one of the article's comments written just before it: a conversation
# happens while its thread is fresh. Drawing the parent from every earlier comment
# instead makes the oldest threads collect replies as the article grows (the first page
# held 66 comments at N=100 and 326 at N=100,000), so pages of different N would no
# longer be the same work.
REPLY_WINDOW = 50
BATCH_SIZE = 5000
BODY_POOL_SIZE = 300
BODY_MIN_CHARS = 200
BODY_MAX_CHARS = 600
AUTHOR_POOL_SIZE = 2000
TIMELINE = dt.timedelta(days=14)

Status = Comment.Status

HEADLINES = [
    "City council approves the new tram line",
    "What the heatwave means for this year's harvest",
    "Local library extends its opening hours",
    "The quiet comeback of the night train",
    "Schools trial a four-day week",
    "Why rents keep rising in the old town",
    "A new bridge for cyclists opens in spring",
    "The harbour gets its first electric ferry",
    "Museum returns artefacts to their country of origin",
    "Startups bet on repairable phones",
    "Hospital waiting times fall for the first time in years",
    "Farmers' market moves to the main square",
]
WORDS = [
    "the", "article", "council", "budget", "city", "people", "really", "think", "point",
    "agree", "disagree", "however", "because", "year", "plan", "tram", "line", "rent", "school",
    "children", "parents", "weekend", "market", "data", "report", "numbers", "change", "better",
    "worse", "problem", "solution", "idea", "question", "answer", "time", "money", "cost",
    "street", "bike", "car", "bus", "train", "station", "neighbour", "house", "local",
    "national", "government", "vote", "election", "week", "morning", "evening", "summer",
    "winter", "spring", "autumn", "weather", "rain", "heat", "water", "energy", "price",
    "service", "quality", "future", "past", "history", "reason", "example", "experience",
    "opinion", "view", "story", "writer", "journalist", "source", "evidence", "study",
    "research", "result", "effect", "support", "proposal", "decision", "meeting", "public",
    "private", "community", "library", "museum", "hospital", "doctor", "teacher", "student",
    "worker", "business", "shop", "owner", "tourist", "visitor", "resident", "village", "town",
    "district", "road", "bridge", "park", "garden", "river", "harbour", "ferry", "simple",
    "clear", "fair", "honest", "important", "interesting", "strange", "surprising", "obvious",
    "difficult", "expensive", "cheap", "long", "short", "new", "old", "good", "bad", "many",
    "few", "most", "some", "every", "never", "always", "often", "sometimes", "probably",
    "perhaps", "clearly", "actually", "exactly", "especially", "finally", "still", "already",
    "again", "also", "only",
]  # fmt: skip
OPENERS = [
    "Good piece.", "Interesting read.", "Not sure about this.", "Thanks for writing this.",
    "I have mixed feelings.", "Finally someone says it.", "Well argued, mostly.",
    "Some context is missing here.", "Hard to disagree.", "I read this twice.",
]  # fmt: skip
FIRST_NAMES = [
    "Ada", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemal",
    "Lena", "Marta", "Nils", "Olga", "Pablo", "Quinn", "Rosa", "Samir", "Tara", "Ulla",
    "Victor", "Wen", "Ximena", "Yusuf", "Zoe", "Amara", "Bruno", "Carla", "Dmitri",
]  # fmt: skip
LAST_NAMES = [
    "Adams", "Baker", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ivanova",
    "Jensen", "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor", "Petrov", "Quint", "Rossi",
    "Schmidt", "Tanaka", "Urban", "Varga", "Weber", "Xu", "Yilmaz", "Zeller",
]  # fmt: skip
EMAIL_DOMAINS = ["example.com", "example.org", "example.net"]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
]


@dataclass(frozen=True)
class Author:
    name: str
    email: str
    url: str
    ip_address: str
    user_agent: str


@dataclass
class ArticlePlan:
    """One seeded article and the threading state of the comments given to it so far."""

    article: Article
    size: int
    reply_positions: set[int]
    ids: list[int] = field(default_factory=list)
    parents: list[int | None] = field(default_factory=list)  # local index of the parent
    threads: list[int | None] = field(default_factory=list)
    depths: list[int] = field(default_factory=list)


class Command(BaseCommand):
    help = (
        "Reset article-0 to N published comments (about 20% replies) and article-1 … "
        "article-50 to 0–30 each. Other articles are untouched."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--comments", type=int, default=1000, help="Comments on article-0 (default 1000)."
        )
        parser.add_argument(
            "--seed", type=int, default=1, help="Random seed; the same seed gives the same data."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        count = options["comments"]
        if count < 0:
            raise CommandError("--comments must be 0 or more.")
        started = time.monotonic()
        rng = random.Random(options["seed"])  # noqa: S311 (demo data, reproducible on purpose)
        slugs = [f"article-{k}" for k in range(ARTICLE_COUNT)]
        with transaction.atomic():
            total, replies = seed(rng, slugs, count)
            transaction.on_commit(lambda: _invalidate_read_cache(slugs))
        _refresh_planner_statistics()
        if options["verbosity"] > 0:
            self.stdout.write(
                f"seed_demo: {len(slugs)} articles, {total} comments ({replies} replies, "
                f"{count} on article-0) in {time.monotonic() - started:.1f} s"
            )


def seed(rng: random.Random, slugs: list[str], first_count: int) -> tuple[int, int]:
    """Reset the articles and insert their comments; returns (comments, replies)."""
    now = timezone.now()
    start = now - TIMELINE
    articles = _reset_articles(slugs, published_before=start, rng=rng)
    sizes = [first_count] + [
        rng.randint(0, OTHER_ARTICLE_MAX_COMMENTS) for _ in range(len(slugs) - 1)
    ]
    plans = [
        ArticlePlan(article, size, _reply_positions(rng, size))
        for article, size in zip(articles, sizes, strict=True)
    ]
    total = sum(sizes)
    # One timeline for all articles: who comments next is a random draw.
    order = [index for index, plan in enumerate(plans) for _ in range(plan.size)]
    rng.shuffle(order)
    ids = _allocate_ids(total)
    times = _timeline(rng, start, now - dt.timedelta(minutes=1), total)
    bodies = _body_pool(rng)
    authors = _author_pool(rng)
    max_depth = settings.COMMENTS_MAX_DEPTH
    writer = _CommentWriter()
    replies = 0
    for position, (index, comment_id, created_at) in enumerate(zip(order, ids, times, strict=True)):
        plan = plans[index]
        parent = _pick_parent(rng, plan, max_depth)
        _record(plan, comment_id, parent)
        replies += parent is not None
        body, body_html = bodies[position % len(bodies)]
        author = authors[rng.randrange(len(authors))]
        checked_at = created_at + dt.timedelta(milliseconds=rng.randint(300, 4000))
        writer.add(
            {
                "id": comment_id,
                "article_id": plan.article.pk,
                "parent_id": plan.ids[parent] if parent is not None else None,
                "thread_id": plan.threads[-1],
                "depth": plan.depths[-1],
                "author_name": author.name,
                "author_email": author.email,
                "author_url": author.url,
                "body": body,
                "body_html": body_html,
                "status": Status.PUBLISHED.value,
                "decision_reason": "akismet_ham",
                "checked_at": checked_at,
                "check_attempts": 1,
                "akismet_verdict": "ham",
                "akismet_guid": f"{rng.getrandbits(128):032x}",
                "akismet_checked_at": checked_at,
                "ip_address": author.ip_address,
                "user_agent": author.user_agent,
                "referrer": plan.article.url,
                "created_at": created_at,
                "published_at": checked_at,
            }
        )
    writer.flush()
    _store_counts(plans)
    return total, replies


class _CommentWriter:
    """Writes comment rows in batches: COPY on PostgreSQL, bulk_create elsewhere.

    Rows are dicts of attribute names to plain values (the same keys in every row);
    columns they leave out get the field's default.
    """

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        if connection.vendor == "postgresql":
            self._copy(self.rows)
        else:
            with _explicit_created_at():
                Comment.objects.bulk_create(Comment(**row) for row in self.rows)
        self.rows = []

    def _copy(self, rows: list[dict[str, Any]]) -> None:
        fields = {f.attname: f for f in Comment._meta.concrete_fields}
        given = list(rows[0])
        missing = [f for name, f in fields.items() if name not in rows[0]]
        defaults = tuple(f.get_db_prep_save(f.get_default(), connection) for f in missing)
        columns = [fields[name].column for name in given] + [f.column for f in missing]
        quote = connection.ops.quote_name
        sql = (
            f"COPY {quote(Comment._meta.db_table)} "
            f"({', '.join(quote(column) for column in columns)}) FROM STDIN"
        )
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row((*row.values(), *defaults))


def _reset_articles(
    slugs: list[str], *, published_before: dt.datetime, rng: random.Random
) -> list[Article]:
    """Create or reset the demo articles and delete their comments and history."""
    articles = []
    for k, slug in enumerate(slugs):
        article, _ = Article.objects.update_or_create(
            slug=slug,
            defaults={
                "title": f"Demo article {k}: {HEADLINES[k % len(HEADLINES)]}",
                "url": f"https://example.com/articles/{slug}",
                # article-0 is the newest, so the demo lists it first.
                "published_at": published_before
                - dt.timedelta(hours=k, minutes=rng.randint(0, 59)),
                "comments_open": True,
            },
        )
        articles.append(article)
    article_ids = [article.pk for article in articles]
    CommentEvent.objects.filter(comment__article_id__in=article_ids).delete()
    # One statement instead of Django's cascade collector, which would load every row
    # (replies cascade from their parent): the events, the only rows pointing at
    # comments, are gone already.
    table = connection.ops.quote_name(Comment._meta.db_table)
    placeholders = ", ".join(["%s"] * len(article_ids))
    sql = f"DELETE FROM {table} WHERE article_id IN ({placeholders})"  # noqa: S608 (no input)
    with connection.cursor() as cursor:
        cursor.execute(sql, article_ids)
    return articles


def _reply_positions(rng: random.Random, size: int) -> set[int]:
    """Which comments of an article are replies: a fifth, never the first."""
    replies = min(round(size * REPLY_SHARE), max(size - 1, 0))
    return set(rng.sample(range(1, size), replies)) if replies else set()


def _pick_parent(rng: random.Random, plan: ArticlePlan, max_depth: int) -> int | None:
    """The local index of the comment the next one replies to, or None for top level.

    One of the REPLY_WINDOW comments of the article before it, at random; one too deep
    is replaced by its ancestor, exactly as `moderation._resolve_parent` does for a
    real reply.
    """
    position = len(plan.ids)
    if position not in plan.reply_positions:
        return None
    parent = rng.randrange(max(position - REPLY_WINDOW, 0), position)
    while plan.depths[parent] >= max_depth and plan.parents[parent] is not None:
        parent = plan.parents[parent]
    return parent


def _record(plan: ArticlePlan, comment_id: int, parent: int | None) -> None:
    plan.ids.append(comment_id)
    plan.parents.append(parent)
    if parent is None:
        plan.threads.append(None)
        plan.depths.append(0)
    else:
        plan.threads.append(plan.threads[parent] or plan.ids[parent])
        plan.depths.append(plan.depths[parent] + 1)


def _allocate_ids(count: int) -> list[int]:
    """Reserve `count` comment ids, increasing."""
    if count == 0:
        return []
    table = Comment._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [connection.ops.quote_name(table), count],
            )
            return sorted(row[0] for row in cursor.fetchall())
        # The articles were written above, so this transaction holds SQLite's write lock:
        # nobody else can take these ids before it commits.
        highest = Comment.objects.aggregate(highest=Max("id"))["highest"] or 0
        if connection.vendor == "sqlite":
            # AUTOINCREMENT never reuses an id, not even one of a deleted comment.
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
            row = cursor.fetchone()
            highest = max(highest, row[0] if row else 0)
    return list(range(highest + 1, highest + 1 + count))


def _timeline(
    rng: random.Random, start: dt.datetime, end: dt.datetime, count: int
) -> list[dt.datetime]:
    """`count` increasing moments between start and end, with irregular gaps."""
    gaps = [rng.expovariate(1.0) for _ in range(count)]
    scale = (end - start) / dt.timedelta(microseconds=1) / (sum(gaps) or 1.0)
    moments = []
    elapsed = 0
    for gap in gaps:
        elapsed += max(1, int(gap * scale))
        moments.append(start + dt.timedelta(microseconds=elapsed))
    return moments


def _body_pool(rng: random.Random) -> list[tuple[str, str]]:
    """A few hundred distinct bodies with their HTML, rendered once like real ones."""
    pool: dict[str, str] = {}
    while len(pool) < BODY_POOL_SIZE:
        body = _body(rng)
        if body not in pool:
            pool[body] = render_body(body)
    return list(pool.items())


def _body(rng: random.Random) -> str:
    """200–600 characters of plausible sentences with a little Markdown now and then."""
    target = rng.randint(BODY_MIN_CHARS, BODY_MAX_CHARS)
    text = rng.choice(OPENERS)
    linked = False
    while len(text) < target:
        sentence = _sentence(rng)
        if not linked and rng.random() < 0.06:
            topic = rng.choice(WORDS)
            sentence += f" See [the {topic} report](https://example.com/reports/{topic})."
            linked = True
        separator = "\n\n" if rng.random() < 0.15 else " "
        candidate = f"{text}{separator}{sentence}"
        if len(candidate) > BODY_MAX_CHARS:
            break
        text = candidate
    while len(text) < BODY_MIN_CHARS:  # the next sentence was too long to fit
        text += f" {rng.choice(WORDS).capitalize()}."
    return text


def _sentence(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(6, 16))
    words[0] = words[0].capitalize()
    roll = rng.random()
    spot = rng.randrange(len(words))
    if roll < 0.12:
        words[spot] = f"*{words[spot]}*"
    elif roll < 0.18:
        words[spot] = f"**{words[spot]}**"
    return " ".join(words) + rng.choice([".", ".", ".", "?", "!"])


def _author_pool(rng: random.Random) -> list[Author]:
    """Recurring readers: the same person often comments more than once."""
    authors = []
    for n in range(AUTHOR_POOL_SIZE):
        number = rng.randint(1, 9999)
        if rng.random() < 0.4:
            name, email = f"Reader {number}", f"reader{number}@example.com"
        else:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            name = f"{first} {last}" if rng.random() < 0.6 else f"{first} {last[0]}."
            email = f"{first}.{last}{n}@{rng.choice(EMAIL_DOMAINS)}".lower()
        url = f"https://example.org/~{name.split()[0].lower()}{n}" if rng.random() < 0.1 else ""
        authors.append(Author(name, email, url, _ip_address(rng), rng.choice(USER_AGENTS)))
    return authors


def _ip_address(rng: random.Random) -> str:
    """An address from the documentation ranges (RFC 5737 / RFC 3849)."""
    if rng.random() < 0.15:
        return f"2001:db8::{rng.randrange(1, 0xFFFF):x}:{rng.randrange(1, 0xFFFF):x}"
    prefix = rng.choice(["192.0.2", "198.51.100", "203.0.113"])
    return f"{prefix}.{rng.randint(1, 254)}"


@contextlib.contextmanager
def _explicit_created_at() -> Iterator[None]:
    """Let bulk_create store the given `created_at`; `auto_now_add` would replace it with now.

    Changes the field for the whole process while it runs: fine for a command, and
    restored afterwards even on error.
    """
    created_at = Comment._meta.get_field("created_at")
    saved = created_at.auto_now_add
    created_at.auto_now_add = False
    try:
        yield
    finally:
        created_at.auto_now_add = saved


def _store_counts(plans: list[ArticlePlan]) -> None:
    """Set the denormalised published count, where the Article model has one."""
    if not any(f.name == "published_comment_count" for f in Article._meta.get_fields()):
        return
    for plan in plans:
        Article.objects.filter(pk=plan.article.pk).update(published_comment_count=plan.size)


def _refresh_planner_statistics() -> None:
    """A bulk load leaves PostgreSQL's statistics describing the old table until
    autovacuum catches up, and the replies query then picks a plan 100× slower.

    VACUUM as well, when not inside a transaction (a test's): the rows a reset deleted
    stay in the indexes until vacuumed, between the new rows of the same article, and
    every page read steps over them. After a reset from 100,000 comments to 100 that
    made the cold page at N = 100 spend twice the database time (issue 7's benchmark).
    """
    if connection.vendor != "postgresql":
        return
    tables = "comments_comment, comments_commentevent, articles_article"
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            cursor.execute(f"ANALYZE {tables}")
        else:
            cursor.execute(f"VACUUM (ANALYZE) {tables}")


def _invalidate_read_cache(slugs: list[str]) -> None:
    """Drop cached pages and counts of the seeded articles, where a read cache exists."""
    try:
        from comments.read_cache import invalidate_article
    except ImportError:
        return
    for slug in slugs:
        invalidate_article(slug)
