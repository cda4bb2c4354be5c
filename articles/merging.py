"""Moving comments between articles: one thread (`move_comments`) or a whole article
merged into another (`merge_articles`), e.g. when a story was published twice.

Threads move whole: a reply never leaves its thread root, so the nesting stays
intact. Both articles' stored published counts are recomputed and their cached
reads invalidated in the same transaction, and every moved comment gets an audit
row (comments.moderation.record_article_move) without changing its status.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q

from articles import canonical_urls
from articles.models import Article, ArticleAlias
from comments import moderation, read_cache
from comments.models import Comment


class MergeError(ValueError):
    """A move or merge that cannot be done (same article, a reply without its root, ...)."""


@dataclass(frozen=True)
class MergeResult:
    source_slug: str
    target_slug: str
    comment_ids: list[int] = field(default_factory=list)
    thread_count: int = 0
    moved_aliases: list[str] = field(default_factory=list)
    added_alias: str | None = None
    source_deleted: bool = False
    dry_run: bool = False

    def summary(self) -> str:
        verb = "Would move" if self.dry_run else "Moved"
        parts = [
            f"{verb} {len(self.comment_ids)} comment(s) in {self.thread_count} thread(s) "
            f"from '{self.source_slug}' to '{self.target_slug}'",
            f"{len(self.moved_aliases)} alias(es)",
        ]
        if self.added_alias:
            parts.append(f"{self.added_alias} as a new alias")
        text = ", ".join(parts) + "."
        if self.source_deleted:
            text += f" '{self.source_slug}' {'would be' if self.dry_run else 'was'} deleted."
        else:
            text += f" '{self.source_slug}' {'would be' if self.dry_run else 'is'} kept, closed."
        return text


def move_comments(
    comments: Comment | Iterable[int], target: Article, *, actor: moderation.Actor
) -> list[int]:
    """Move whole threads to `target`: a top-level comment (or several, by id) with
    every reply below it. Raises MergeError for a reply, for comments of several
    articles, or for a move into their own article. Returns the moved ids."""
    root_ids = [comments.pk] if isinstance(comments, Comment) else list(comments)
    if not root_ids:
        return []
    with transaction.atomic():
        roots = list(
            Comment.objects.filter(pk__in=root_ids).values("pk", "parent_id", "article_id")
        )
        missing = set(root_ids) - {root["pk"] for root in roots}
        if missing:
            raise MergeError(f"No comment with id {', '.join(map(str, sorted(missing)))}.")
        replies = sorted(root["pk"] for root in roots if root["parent_id"] is not None)
        if replies:
            raise MergeError(
                f"Comment {', '.join(map(str, replies))} is a reply: move its thread's "
                "top-level comment, which takes every reply along."
            )
        article_ids = {root["article_id"] for root in roots}
        if len(article_ids) > 1:
            raise MergeError("The comments belong to different articles: move them one by one.")
        (source_id,) = article_ids
        if source_id == target.pk:
            raise MergeError(f"The comments already belong to '{target.slug}'.")
        source, target = _lock(source_id, target.pk)
        ids = list(
            Comment.objects.filter(Q(pk__in=root_ids) | Q(thread_id__in=root_ids))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        _move(ids, source, target, actor)
    return ids


def merge_articles(
    source: Article,
    target: Article,
    *,
    actor: moderation.Actor,
    keep_source: bool = False,
    dry_run: bool = False,
) -> MergeResult:
    """Move every comment and alias of `source` to `target`, make source's url an alias
    of target, then delete source (or keep it, closed for comments).

    Running it again is harmless: a deleted source is unknown, a kept one has nothing
    left to move. `dry_run` reports what would happen and changes nothing.
    """
    if source.pk == target.pk:
        raise MergeError(f"Cannot merge '{source.slug}' into itself.")
    with transaction.atomic():
        source, target = _lock(source.pk, target.pk)
        ids = list(
            Comment.objects.filter(article=source).order_by("pk").values_list("pk", flat=True)
        )
        threads = Comment.objects.filter(article=source, parent__isnull=True).count()
        target_spellings = _spellings(target.url)
        aliases = list(source.aliases.values_list("url", flat=True))
        moved_aliases = [url for url in aliases if url not in target_spellings]
        added = _canonical_or_none(source.url)
        if added is not None and (
            set(moved_aliases).intersection(canonical_urls.equivalent_urls(added))
            # already the target's address, or (stored before validation) a third one's
            or canonical_urls.articles_at(added).exclude(pk=source.pk).exists()
        ):
            added = None
        result = MergeResult(
            source_slug=source.slug,
            target_slug=target.slug,
            comment_ids=ids,
            thread_count=threads,
            moved_aliases=moved_aliases,
            added_alias=added,
            source_deleted=not keep_source,
            dry_run=dry_run,
        )
        if dry_run:
            return result
        _move(ids, source, target, actor)
        source.aliases.exclude(url__in=moved_aliases).delete()
        source.aliases.update(article=target)
        if added is not None:
            # An alias wins over a kept source's own url, so its address finds the thread.
            ArticleAlias.objects.create(article=target, url=added)
        if keep_source:
            if source.comments_open:
                source.comments_open = False
                source.save(update_fields=["comments_open", "updated_at"])
        else:
            source.delete()  # nothing left to cascade to; the signal invalidates its reads
    return result


def _lock(source_id: int, target_id: int) -> tuple[Article, Article]:
    """Both articles, locked in id order (no deadlock with a merge the other way round)."""
    locked = {
        article.pk: article
        for article in Article.objects.select_for_update()
        .filter(pk__in=[source_id, target_id])
        .order_by("pk")
    }
    if source_id not in locked or target_id not in locked:
        raise MergeError("The article no longer exists.")
    return locked[source_id], locked[target_id]


def _move(ids: list[int], source: Article, target: Article, actor: moderation.Actor) -> None:
    """Inside the caller's transaction, with both articles locked."""
    if ids:
        # Idempotency keys are unique per article: a moved comment whose key the
        # target already uses gives its key up (a retry of it is long over).
        target_keys = (
            Comment.objects.filter(article=target)
            .exclude(idempotency_key="")
            .values("idempotency_key")
        )
        Comment.objects.filter(pk__in=ids, idempotency_key__in=target_keys).update(
            idempotency_key="", idempotency_fingerprint=""
        )
        Comment.objects.filter(pk__in=ids).update(article=target)
        moderation.record_article_move(ids, source.slug, actor, target_slug=target.slug)
    Article.objects.filter(pk__in=[source.pk, target.pk]).refresh_comment_counts()
    read_cache.invalidate_article_on_commit(source.pk)
    read_cache.invalidate_article_on_commit(target.pk)
    # The source may be deleted before commit, when its id no longer finds its slug.
    slug = source.slug
    transaction.on_commit(lambda: read_cache.invalidate_slugs([slug]))


def _canonical_or_none(url: str) -> str | None:
    try:
        return canonical_urls.canonicalize(url)
    except ValueError:  # a url stored before canonicalisation that is no http(s) address
        return None


def _spellings(url: str) -> set[str]:
    try:
        return set(canonical_urls.equivalent_urls(url))
    except ValueError:
        return {url}
