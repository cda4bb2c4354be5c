"""What the import commands share: options, errors and the final report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from comments.portability.importer import Report, import_records
from comments.portability.xml import ImportFileError


class ImportCommand(BaseCommand):
    """Base of import_wxr, import_disqus and import_json."""

    accepts_check = True

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The export file to import.")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Do everything in a transaction that is rolled back, and print the report.",
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="No progress bar (also off without a TTY)."
        )
        if self.accepts_check:
            parser.add_argument(
                "--check",
                action="store_true",
                help="Import what the source published or held as pending and send it "
                "through the spam check (default: keep the source's decisions, no Akismet).",
            )

    def progress_enabled(self, options: dict[str, Any]) -> bool:
        return not options["no_progress"] and self.stdout.isatty()

    def import_parsed(
        self,
        source: str,
        parse: Callable[[Report], tuple[Any, Any]],
        options: dict[str, Any],
    ) -> None:
        """Parse the file with `parse` and import its records (import_wxr, import_disqus)."""

        def work() -> Report:
            report = Report(source)
            articles, comments = parse(report)
            return import_records(
                source,
                articles,
                comments,
                dry_run=options["dry_run"],
                check=options["check"],
                progress=self.progress_enabled(options),
                report=report,
            )

        self.run_import(work)

    def run_import(self, work: Callable[[], Report]) -> None:
        try:
            report = work()
        except ImportFileError as exc:
            raise CommandError(str(exc)) from None
        except DatabaseError as exc:
            raise CommandError(
                f"the database refused the import, nothing was written: {exc}".strip()
            ) from None
        for line in report.lines():
            self.stdout.write(line)
