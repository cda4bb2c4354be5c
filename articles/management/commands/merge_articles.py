"""Merge one article into another: its comments (whole threads), aliases and address."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from articles.merging import MergeError, merge_articles
from articles.models import Article
from comments.moderation import Actor

ACTOR = Actor("merge_articles command")


class Command(BaseCommand):
    help = (
        "Move every comment and alias of SOURCE_SLUG to TARGET_SLUG, make SOURCE's url an "
        "alias of TARGET, then delete SOURCE (or keep it closed with --keep-source)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source_slug")
        parser.add_argument("target_slug")
        parser.add_argument(
            "--keep-source",
            action="store_true",
            help="Keep the source article, closed for comments, instead of deleting it.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would happen; change nothing."
        )

    def handle(self, *args: object, **options: object) -> None:
        source_slug, target_slug = str(options["source_slug"]), str(options["target_slug"])
        if source_slug == target_slug:
            raise CommandError(f"Cannot merge '{source_slug}' into itself.")
        source = self._article(source_slug, "source")
        target = self._article(target_slug, "target")
        try:
            result = merge_articles(
                source,
                target,
                actor=ACTOR,
                keep_source=bool(options["keep_source"]),
                dry_run=bool(options["dry_run"]),
            )
        except MergeError as exc:
            raise CommandError(str(exc)) from None
        if not result.dry_run and not result.comment_ids and not result.moved_aliases:
            self.stdout.write(f"Nothing left to move from '{source_slug}' (already merged?).")
        self.stdout.write(
            ("Dry run, nothing changed. " if result.dry_run else "") + result.summary()
        )

    def _article(self, slug: str, role: str) -> Article:
        article = Article.objects.filter(slug=slug).first()
        if article is None:
            hint = " (already merged and deleted?)" if role == "source" else ""
            raise CommandError(f"No article with the slug '{slug}'{hint}.")
        return article
