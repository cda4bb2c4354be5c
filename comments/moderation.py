"""The one module that creates comments and changes their status.

Every change is a guarded conditional UPDATE (`... WHERE status IN allowed`)
plus an audit row in the same transaction, so a racing worker and moderator
cannot both win, and history never misses a step.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, connections, router, transaction
from django.db.models import F
from django.utils import timezone

from articles.models import Article
from comments import hooks, metrics, prepared, read_cache
from comments.models import Comment, CommentEvent, HoldReason
from comments.prepared import prepared_cursor
from comments.rendering import render_body

logger = logging.getLogger(__name__)
Status = Comment.Status

# Which states each target state may be entered from.
ALLOWED_SOURCES: dict[str, frozenset[str]] = {
    "publish": frozenset({Status.PENDING, Status.HELD, Status.SPAM, Status.REJECTED}),
    "hold": frozenset({Status.PENDING, Status.PUBLISHED}),
    "mark_spam": frozenset({Status.PENDING, Status.HELD, Status.PUBLISHED, Status.REJECTED}),
    "reject": frozenset({Status.PENDING, Status.HELD, Status.PUBLISHED, Status.SPAM}),
    "remove": frozenset(
        {Status.PENDING, Status.HELD, Status.PUBLISHED, Status.SPAM, Status.REJECTED}
    ),
    # An author's edit sends the comment back through the automated check.
    "edit": frozenset({Status.PENDING, Status.HELD, Status.PUBLISHED}),
}
ACTIONS = tuple(ALLOWED_SOURCES)
TARGET_STATUS: dict[str, str] = {
    "publish": Status.PUBLISHED,
    "hold": Status.HELD,
    "mark_spam": Status.SPAM,
    "reject": Status.REJECTED,
    "remove": Status.REMOVED,
    "edit": Status.PENDING,
}


class ModerationError(Exception):
    """A status change that is not allowed from the comment's current state."""

    def __init__(self, action: str, current: str) -> None:
        self.action = action
        self.current = current
        super().__init__(f"Cannot {action.replace('_', ' ')} a comment that is {current}.")


class InvalidParent(ValueError):
    """The parent is not a published comment of the same article."""


class IdempotencyKeyReused(ValueError):
    """The idempotency key was already used on this article for a different request."""


class ArticleUnverified(Exception):
    """`submit` took the article on trust (`article_verified=False`), and it is gone, has
    another slug now, or is closed for comments: nothing was written, and the caller
    answers after looking the article up."""


@dataclass(frozen=True)
class Actor:
    """Who made a change: a user, or a named part of the system."""

    name: str
    user: AbstractBaseUser | None = None

    @classmethod
    def for_user(cls, user: AbstractBaseUser) -> Actor:
        return cls(name=user.get_username(), user=user)


AUTHOR = Actor("author")
SPAM_CHECK = Actor("spam-check")
SYSTEM = Actor("system")


def submit(
    *,
    article: Article,
    author_name: str,
    author_email: str,
    body: str,
    author_url: str = "",
    parent_id: int | None = None,
    ip_address: str | None = None,
    user_agent: str = "",
    referrer: str = "",
    honeypot_tripped: bool = False,
    idempotency_key: str | None = None,
    before_create: Callable[[], None] | None = None,
    notify_replies: bool = False,
    article_verified: bool = True,
) -> Comment:
    """Store a new comment as pending; it is checked before anyone else sees it.

    `before_create` runs the checks that may refuse a *new* comment (duplicates,
    flooding); it raises to refuse. `notify_replies`: the author asked to be
    e-mailed about replies (double opt-in, comments.reply_notifications).

    With an `idempotency_key` (the client's Idempotency-Key), a request that repeats
    an earlier one is answered with the comment that one created, before
    `before_create`, so a retry is never refused as its own duplicate or flood; no
    row, event or check is added. The returned comment's `replayed` attribute tells
    which happened. The key is scoped to the article and bound to the request it
    came with (author, text, parent, URL): reused for another request, it raises
    IdempotencyKeyReused instead of handing out someone else's comment. Two
    concurrent requests with one key race on the unique constraint
    (comment_idempotency_key_unique), not on a look-up: the loser's INSERT fails
    (a statement of its own, or inside a savepoint) and it answers with the winner's
    comment.

    `article_verified=False`: `article` (its pk and slug) was taken on trust, not read.
    The comment is then stored only if the article is still there and open, and
    ArticleUnverified is raised, with nothing written, when it is not (checked before
    answering with an earlier comment, too).
    """
    idempotency_key = idempotency_key or None  # "" is no key, as in the column
    fingerprint = ""
    if idempotency_key is not None:
        fingerprint = request_fingerprint(
            author_name=author_name,
            author_email=author_email,
            body=body,
            author_url=author_url,
            parent_id=parent_id,
        )
        previous = _submitted_with_key(article, idempotency_key, fingerprint)
        if previous is not None:
            return _answer_with(previous, article, article_verified)
    if before_create is not None:
        try:
            before_create()
        except Exception:
            # A concurrent request with the same key may have committed the comment
            # this one now looks like a duplicate of: that comment is the answer.
            previous = (
                _submitted_with_key(article, idempotency_key, fingerprint)
                if idempotency_key is not None
                else None
            )
            if previous is None:
                raise
            return _answer_with(previous, article, article_verified)
    comment = Comment(
        article=article,
        author_name=author_name,
        author_email=author_email,
        author_url=author_url,
        body=body,
        body_html=render_body(body),
        status=Status.PENDING,
        ip_address=ip_address,
        user_agent=user_agent[:500],
        referrer=referrer[:500],
        honeypot_tripped=honeypot_tripped,
        next_check_at=_sweep_deadline(),
        idempotency_key=idempotency_key or "",
        idempotency_fingerprint=fingerprint,
    )
    connection = connections[Comment.objects.db]
    if (
        parent_id is None
        and connection.vendor == "postgresql"
        and hooks.submission_records_nothing(notify_replies=notify_replies)
    ):
        try:
            # Inside a transaction (a test's, or ATOMIC_REQUESTS) a savepoint keeps it
            # usable when the key's unique constraint refuses the INSERT.
            savepoint = idempotency_key is not None and connection.in_atomic_block
            with transaction.atomic() if savepoint else nullcontext():
                inserted = _insert_with_submitted_event(comment, article_verified)
        except IntegrityError:
            previous = _race_winner(article, idempotency_key, fingerprint)
            if previous is None:
                raise
            return _answer_with(previous, article, article_verified)
        if not inserted:
            raise ArticleUnverified(article.pk)
        _enqueue_check_on_commit(comment.pk)
        metrics.comment_submitted(comment)
        comment.replayed = False
        return comment
    with transaction.atomic():
        if not article_verified and not _open_for_comments(article):
            raise ArticleUnverified(article.pk)
        parent = _resolve_parent(article, parent_id) if parent_id is not None else None
        try:
            # A savepoint, when there is a key: losing the race on it leaves the
            # transaction usable. Without a key nothing can collide.
            with transaction.atomic() if idempotency_key else nullcontext():
                if parent is not None:
                    comment.parent = parent
                    comment.thread_id = parent.thread_id or parent.pk
                    comment.depth = parent.depth + 1
                comment.save(force_insert=True)
        except IntegrityError:
            previous = _race_winner(article, idempotency_key, fingerprint)
            if previous is None:
                raise
            return _answer_with(previous, article, article_verified)
        _submitted_event(comment).save(force_insert=True)
        hooks.comment_submitted(comment, notify_replies=notify_replies)
        _enqueue_check_on_commit(comment.pk)
        metrics.comment_submitted(comment)
    comment.replayed = False
    return comment


def _answer_with(previous: Comment, article: Article, article_verified: bool) -> Comment:
    """An earlier comment as the answer, once the article is known to be still open:
    its being closed or gone is answered first."""
    if not article_verified and not _open_for_comments(article):
        raise ArticleUnverified(article.pk)
    return previous


def _open_for_comments(article: Article) -> bool:
    """Still there under the same slug, and open."""
    return Article.objects.filter(pk=article.pk, slug=article.slug, comments_open=True).exists()


def _race_winner(article: Article, key: str | None, fingerprint: str) -> Comment | None:
    """After the key's unique constraint refused an INSERT: the comment of the
    concurrent request with the same key that committed first (the INSERT waited for
    its transaction, so its row is visible now). None: the error stands."""
    return None if key is None else _submitted_with_key(article, key, fingerprint)


def _submitted_event(comment: Comment) -> CommentEvent:
    return CommentEvent(
        comment=comment,
        from_status="",
        to_status=Status.PENDING,
        actor_name=AUTHOR.name,
        reason="submitted",
    )


def _insert_with_submitted_event(comment: Comment, article_verified: bool = True) -> bool:
    """INSERT the new comment and its "submitted" event in one statement (PostgreSQL).

    The common submission (no parent, no hook to run; with or without an idempotency
    key, which the widget always sends) needs no transaction of its own: one
    statement is atomic, and it saves the BEGIN, the second INSERT and the COMMIT
    round trips of `submit`'s general path (issue 7).
    The columns and values come from the models, as Django's own INSERT takes them.
    With `article_verified=False` the statement inserts only if the article is still
    there under the same slug and open for comments; False: it did not insert.
    """
    using = Comment.objects.db
    connection = connections[using]
    comment_columns, comment_params = prepared.insert_columns(comment, connection)
    event_columns, event_params = prepared.insert_columns(
        _submitted_event(comment), connection, expressions={"comment_id": "new.id"}
    )
    # Still there under the same slug, and open.
    guard = [] if article_verified else [comment.article_id, comment.article.slug]
    with prepared_cursor(using) as cursor:
        cursor.execute(
            _insert_with_event_sql(comment_columns, event_columns, article_verified),
            [*comment_params, *guard, *event_params],
        )
        row = cursor.fetchone()
    if row is None:
        return False
    comment.pk = row[0]
    comment._state.adding = False
    comment._state.db = using
    return True


@lru_cache(maxsize=4)
def _insert_with_event_sql(
    comment_columns: tuple[str, str], event_columns: tuple[str, str], article_verified: bool
) -> str:
    quote = connections[Comment.objects.db].ops.quote_name
    # Table and column names come from the models; every value is bound.
    comment_table = quote(Comment._meta.db_table)
    event_table = quote(CommentEvent._meta.db_table)
    if article_verified:
        rows = f"VALUES ({comment_columns[1]})"
    else:
        article_table = quote(Article._meta.db_table)
        open_column = quote(Article._meta.get_field("comments_open").column)
        slug_column = quote(Article._meta.get_field("slug").column)
        rows = (
            f"SELECT {comment_columns[1]} WHERE EXISTS (SELECT 1 FROM {article_table}"  # noqa: S608
            f" WHERE {quote(Article._meta.pk.column)} = %s AND {slug_column} = %s"
            f" AND {open_column})"
        )
    return f"""
WITH new AS (
    INSERT INTO {comment_table} ({comment_columns[0]}) {rows} RETURNING id
), event AS (
    INSERT INTO {event_table} ({event_columns[0]}) SELECT {event_columns[1]} FROM new
)
SELECT id FROM new"""  # noqa: S608


def request_fingerprint(
    *, author_name: str, author_email: str, body: str, author_url: str, parent_id: int | None
) -> str:
    """What makes two submissions the same request, as a SHA-256 hex digest."""
    fields = [author_email, author_name, body, author_url or "", parent_id]
    return hashlib.sha256(json.dumps(fields).encode("ascii")).hexdigest()


def _submitted_with_key(article: Article, key: str, fingerprint: str) -> Comment | None:
    """The comment an earlier request with this key created on this article, if any."""
    comment = _comment_with_key(article.pk, key)
    if comment is None:
        return None
    if comment.idempotency_fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "This key was already used for a different comment; "
            "send a new key with each new comment."
        )
    logger.info("idempotent replay of comment %s", comment.pk)
    comment.replayed = True
    return comment


def _comment_with_key(article_id: int, key: str) -> Comment | None:
    """The comment stored with this key on this article (a prepared statement on
    PostgreSQL). The literal `<> ''` lets the statement's generic plan use the partial
    unique index on the key; without it PostgreSQL scanned the table by primary key
    (80 ms per submit on a table of 50,000 comments)."""
    using = router.db_for_read(Comment)
    if connections[using].vendor != "postgresql":
        found = Comment.objects.using(using).filter(article_id=article_id, idempotency_key=key)
        return found.first()
    sql, names = _comment_with_key_sql()
    with prepared_cursor(using) as cursor:
        cursor.execute(sql, [article_id, key])
        row = cursor.fetchone()
    return None if row is None else Comment.from_db(using, names, row)


@lru_cache(maxsize=1)
def _comment_with_key_sql() -> tuple[str, list[str]]:
    meta = Comment._meta
    quote = connections["default"].ops.quote_name
    fields = list(meta.concrete_fields)
    key = quote(meta.get_field("idempotency_key").column)
    sql = (
        f"SELECT {', '.join(quote(f.column) for f in fields)} FROM {quote(meta.db_table)} "  # noqa: S608 (names from the model)
        f"WHERE {quote(meta.get_field('article').column)} = %s AND {key} = %s "
        f"AND {key} <> '' LIMIT 1"
    )
    return sql, [f.attname for f in fields]


def _resolve_parent(article: Article, parent_id: int) -> Comment:
    """The published comment to reply to; too deep a reply attaches one level up."""
    parent = (
        Comment.objects.select_for_update()
        .filter(pk=parent_id, article=article, status=Status.PUBLISHED)
        .first()
    )
    if parent is None:
        raise InvalidParent("The parent must be a published comment of this article.")
    while parent.depth >= settings.COMMENTS_MAX_DEPTH and parent.parent_id is not None:
        parent = Comment.objects.get(pk=parent.parent_id)
    return parent


def publish(comment: Comment, *, actor: Actor, reason: str = "", strict: bool = True) -> bool:
    """Publish: a moderator's approval (actor.user) or a passing spam check."""
    fields: dict[str, object] = {"discarded": False}
    if actor.user is not None:
        fields["approved_by"] = actor.user
    elif actor is SPAM_CHECK:
        fields["checked_at"] = timezone.now()
    # Anything else is refused by the database: a published comment must be checked.
    applied = _transition(
        comment, "publish", actor=actor, reason=reason, strict=strict, fields=fields
    )
    if applied and actor.user is not None and comment.akismet_verdict in ("spam", "discard"):
        _enqueue_feedback_on_commit(comment.pk, "ham")
    return applied


def hold(
    comment: Comment,
    *,
    actor: Actor,
    reason: str = "",
    hold_reason: str = HoldReason.MODERATOR,
    strict: bool = True,
) -> bool:
    return _transition(
        comment,
        "hold",
        actor=actor,
        reason=reason or hold_reason,
        strict=strict,
        fields={"held_reason": hold_reason},
    )


def mark_spam(comment: Comment, *, actor: Actor, reason: str = "", strict: bool = True) -> bool:
    applied = _transition(comment, "mark_spam", actor=actor, reason=reason, strict=strict)
    if applied and actor.user is not None and comment.akismet_verdict == "ham":
        _enqueue_feedback_on_commit(comment.pk, "spam")
    return applied


def reject(comment: Comment, *, actor: Actor, reason: str = "", strict: bool = True) -> bool:
    return _transition(comment, "reject", actor=actor, reason=reason, strict=strict)


def remove(comment: Comment, *, actor: Actor, reason: str = "", strict: bool = True) -> bool:
    return _transition(comment, "remove", actor=actor, reason=reason, strict=strict)


def edit(comment: Comment, *, body: str, actor: Actor = AUTHOR, strict: bool = True) -> bool:
    """Replace the body; the comment goes back to pending and is checked again."""
    now = timezone.now()
    applied = _transition(
        comment,
        "edit",
        actor=actor,
        reason="edit",
        strict=strict,
        record_always=True,
        fields={
            "body": body,
            "body_html": render_body(body),
            "edited_at": now,
            # The old check and approval were about the old text.
            "checked_at": None,
            "approved_by": None,
            "check_attempts": 0,
            "recheck_reason": "edit",
            "next_check_at": _sweep_deadline(),
        },
    )
    if applied:
        _enqueue_check_on_commit(comment.pk)
    return applied


@dataclass
class CheckOutcome:
    """What the automated check decided, ready to be applied."""

    action: str  # "publish", "hold", "mark_spam" or "wait" (stay pending, check later)
    reason: str  # a reason code
    hold_reason: str = ""
    fields: dict[str, object] = field(default_factory=dict)
    details: dict[str, object] = field(default_factory=dict)


def record_check(comment: Comment, outcome: CheckOutcome, *, recheck: bool = False) -> bool:
    """Apply the spam check's outcome, unless someone moved the comment first.

    The check applies to a `pending` comment, or with `recheck` to one held
    because the check was unavailable. Returns whether it applied; losing the
    race to a moderator (or a duplicate task) is not an error.
    """
    if recheck:
        sources = frozenset({Status.HELD})
        guard = {"held_reason": HoldReason.CHECK_UNAVAILABLE}
    else:
        sources = frozenset({Status.PENDING})
        guard = {}
    fields = {**outcome.fields, "decision_reason": outcome.reason}
    if outcome.action == "publish":
        fields["checked_at"] = timezone.now()
        target = Status.PUBLISHED
    elif outcome.action == "hold":
        fields["held_reason"] = outcome.hold_reason
        target = Status.HELD
    elif outcome.action == "mark_spam":
        target = Status.SPAM
    elif outcome.action == "wait":
        target = Status.PENDING
    else:
        raise ValueError(f"unknown check outcome {outcome.action!r}")
    applied = _apply(
        comment,
        outcome.action,
        target=target,
        sources=sources,
        guard=guard,
        actor=SPAM_CHECK,
        reason=outcome.reason,
        strict=False,
        fields=fields,
        details=outcome.details,
    )
    if applied and target == Status.HELD:
        enqueue_on_commit("notify_moderators", comment.pk)
    return applied


def record_check_attempt(comment: Comment, fields: dict[str, object], *, recheck: bool) -> bool:
    """Store bookkeeping of a check that decided nothing (a failure), status unchanged."""
    where: dict[str, object] = {
        "id": comment.pk,
        "status": Status.HELD if recheck else Status.PENDING,
    }
    if "akismet_payload" in fields:
        # A check that read the comment before its author's data was erased must
        # not write that data back with the payload it is about to send.
        where["erased_at"] = None
    updated = prepared.update_where(Comment, where, fields)
    for name, value in fields.items():
        setattr(comment, name, value)
    return bool(updated)


def _transition(
    comment: Comment,
    action: str,
    *,
    actor: Actor,
    reason: str,
    strict: bool,
    fields: dict[str, object] | None = None,
    record_always: bool = False,
) -> bool:
    fields = dict(fields or {})
    # The last decision is now a person's (or the author's), not the check's.
    if actor.user is not None:
        fields.setdefault("decision_reason", "moderator")
    elif actor is AUTHOR:
        fields.setdefault("decision_reason", "author")
    return _apply(
        comment,
        action,
        target=TARGET_STATUS[action],
        sources=ALLOWED_SOURCES[action],
        guard={},
        actor=actor,
        reason=reason,
        strict=strict,
        fields=fields,
        details={},
        record_always=record_always,
    )


def _apply(
    comment: Comment,
    action: str,
    *,
    target: str,
    sources: frozenset[str],
    guard: dict[str, object],
    actor: Actor,
    reason: str,
    strict: bool,
    fields: dict[str, object],
    details: dict[str, object],
    record_always: bool = False,
) -> bool:
    """Move the comment to `target` if its current state is one of `sources`.

    Returns whether it applied. When it did not and `strict` is set, raises
    ModerationError naming the current state (the API answers 409); callers
    that may legitimately lose a race (the spam check) pass strict=False.
    An event is written for every change of status or hold reason (and for
    every author edit, which changes what was checked).
    """
    now = timezone.now()
    updates: dict[str, object] = {"status": target, **fields}
    if target == Status.PUBLISHED:
        updates["published_at"] = now
    if target != Status.HELD:
        updates["held_reason"] = ""
    with transaction.atomic():
        current = _lock_state(comment.pk)
        allowed = current is not None and current["status"] in sources
        allowed = allowed and all(current[name] == value for name, value in guard.items())
        if not allowed:
            if strict:
                raise ModerationError(action, current["status"] if current else "missing")
            return False
        applied = prepared.update_where(
            Comment, {"id": comment.pk, "status": current["status"], **guard}, updates
        )
        if not applied:  # only possible without row locks (SQLite)
            if strict:
                raise ModerationError(action, "changed concurrently")
            return False
        # The article as read under the row lock: a merge may have moved the
        # comment since the caller loaded it (articles/merging.py).
        comment.article_id = current["article_id"]
        if _publicly_visible(current["status"], target, action):
            read_cache.invalidate_article_on_commit(comment.article_id, slug=current["slug"])
        changed = current["status"] != target or current["held_reason"] != updates.get(
            "held_reason", current["held_reason"]
        )
        if changed or record_always:
            event = CommentEvent(
                comment_id=comment.pk,
                from_status=current["status"],
                to_status=target,
                actor_user=actor.user,
                actor_name=actor.name,
                reason=reason[:200],
                details=details,
            )
            prepared.insert(event)
        for name, value in updates.items():
            setattr(comment, name, value)
        hooks.comment_transitioned(comment, source=current["status"], target=target, action=action)
        # Last before the commit: every transition on this article's comments waits
        # for this row lock, so it is held for as short a time as possible.
        _update_published_count(comment, current["status"], target)
        metrics.transition_applied(
            comment_id=comment.pk,
            article_id=comment.article_id,
            action=action,
            source=current["status"],
            target=target,
            actor=actor,
            reason=reason,
            recorded=changed or record_always,
        )
    return True


def _lock_state(comment_id: int) -> dict[str, object] | None:
    """Lock the comment's row; its status, hold reason, article and the article's slug.

    Prepared on PostgreSQL: every transition (one per spam check) starts here, and
    compiling the ORM query cost more than running it (issue 7). Only the comment's
    row is locked, not the article's.
    """
    using = router.db_for_write(Comment)
    connection = connections[using]
    if connection.vendor != "postgresql":
        return (
            Comment.objects.select_for_update()
            .filter(pk=comment_id)
            .values("status", "held_reason", "article_id", slug=F("article__slug"))
            .first()
        )
    quote = connection.ops.quote_name
    sql = (
        "SELECT c.status, c.held_reason, c.article_id, a.slug "  # noqa: S608 (names from the models)
        f"FROM {quote(Comment._meta.db_table)} c "
        f"JOIN {quote(Article._meta.db_table)} a ON a.id = c.article_id "
        "WHERE c.id = %s FOR UPDATE OF c"
    )
    with prepared_cursor(using) as cursor:
        cursor.execute(sql, [comment_id])
        row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip(("status", "held_reason", "article_id", "slug"), row, strict=True))


def _update_published_count(comment: Comment, source: str, target: str) -> None:
    """Keep the article's stored count equal to its published comments."""
    delta = (target == Status.PUBLISHED) - (source == Status.PUBLISHED)
    if delta:
        prepared.add_to(Article, comment.article_id, "published_comment_count", delta)


def _publicly_visible(source: str, target: str, action: str) -> bool:
    """Whether the change alters what readers see (a published or removed comment)."""
    public = {Status.PUBLISHED, Status.REMOVED}
    return source in public or target in public or action == "edit"


def _sweep_deadline() -> dt.datetime:
    """When the sweeper should take over a check that no worker finished."""
    return timezone.now() + dt.timedelta(seconds=settings.COMMENTS_SWEEP_AFTER_SECONDS)


def edit_expires_at(comment: Comment) -> dt.datetime:
    return comment.created_at + dt.timedelta(seconds=settings.COMMENTS_EDIT_WINDOW_SECONDS)


def _enqueue_check_on_commit(comment_id: int) -> None:
    transaction.on_commit(lambda: _send_check(comment_id))


def _send_check(comment_id: int) -> None:
    """Hand the check to a worker (batched, see comments/dispatch.py). A broker
    failure loses nothing: the row is pending with a `next_check_at`, and the
    sweeper enqueues it again."""
    from comments.dispatch import dispatcher

    dispatcher.add(comment_id)


def _enqueue_feedback_on_commit(comment_id: int, kind: str) -> None:
    enqueue_on_commit("submit_feedback", comment_id, kind)


def enqueue_on_commit(task_name: str, *args: object) -> None:
    """Enqueue a side task after commit; a broker failure is logged, never raised."""

    def send() -> None:
        from comments import tasks

        try:
            getattr(tasks, task_name).delay(*args)
        except Exception:
            logger.exception("could not enqueue %s%r", task_name, args)

    transaction.on_commit(send)


def record_erasure(comment_ids: list[int], *, actor: Actor, keep_text: bool) -> int:
    """Write the audit row of a personal data erasure on each comment (comments.personal_data).

    The status does not change (from and to are the current one); the row says who
    erased and whether the text was kept, never whose data it was.
    """
    statuses = Comment.objects.filter(pk__in=comment_ids).values_list("pk", "status")
    events = CommentEvent.objects.bulk_create(
        CommentEvent(
            comment_id=comment_id,
            from_status=current,
            to_status=current,
            actor_user=actor.user,
            actor_name=actor.name,
            reason="personal data erased",
            details={"text_kept": keep_text},
        )
        for comment_id, current in statuses
    )
    return len(events)


def record_article_move(
    comment_ids: list[int], source_slug: str, actor: Actor, *, target_slug: str = ""
) -> int:
    """Write the audit row of a move to another article (articles.merging) on each comment.

    The status does not change (from and to are the current one); call it inside the
    transaction that moves the comments.
    """
    statuses = Comment.objects.filter(pk__in=comment_ids).values_list("pk", "status")
    events = CommentEvent.objects.bulk_create(
        CommentEvent(
            comment_id=comment_id,
            from_status=current,
            to_status=current,
            actor_user=actor.user,
            actor_name=actor.name,
            reason=f"moved from article {source_slug}"[:200],
            details={"moved_from": source_slug, "moved_to": target_slug},
        )
        for comment_id, current in statuses
    )
    return len(events)
