"""`manage.py import_disqus FILE`: a Disqus export (see comments/portability/disqus.py)."""

from __future__ import annotations

from typing import Any

from comments.portability import disqus
from comments.portability.command import ImportCommand
from comments.portability.importer import Report, import_records


class Command(ImportCommand):
    help = "Import the comments of a Disqus export (XML); importing it again adds nothing."

    def handle(self, *args: Any, **options: Any) -> None:
        def work() -> Report:
            report = Report(disqus.SOURCE)
            articles, comments = disqus.parse(options["file"], report)
            return import_records(
                disqus.SOURCE,
                articles,
                comments,
                dry_run=options["dry_run"],
                check=options["check"],
                progress=self.progress_enabled(options),
                report=report,
            )

        self.run_import(work)
