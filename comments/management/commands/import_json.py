"""`manage.py import_json FILE`: restore an `export_json` file (portability/json_format.py)."""

from __future__ import annotations

from typing import Any

from comments.portability import json_format
from comments.portability.command import ImportCommand
from comments.portability.importer import Report
from comments.portability.xml import ImportFileError


class Command(ImportCommand):
    help = "Restore articles, comments and their history from an export_json file."
    accepts_check = False

    def handle(self, *args: Any, **options: Any) -> None:
        def work() -> Report:
            try:
                with open(options["file"], encoding="utf-8") as stream:
                    document = json_format.load(stream)
            except OSError as exc:
                raise ImportFileError(f"cannot read {options['file']}: {exc.strerror}") from None
            return json_format.import_document(
                document, dry_run=options["dry_run"], progress=self.progress_enabled(options)
            )

        self.run_import(work)
