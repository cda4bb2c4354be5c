"""`manage.py export_json [--output FILE]`: the whole site in our JSON format."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from comments.portability import json_format


class Command(BaseCommand):
    help = (
        "Export articles, aliases, comments (every field) and their history as JSON; "
        "import_json restores it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--output", "-o", default="-", help="File to write (default: standard output)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["output"] == "-":
            self.stdout.write(json_format.dumps(json_format.export_document()), ending="")
            return
        try:
            with open(options["output"], "w", encoding="utf-8", newline="\n") as stream:
                counts = json_format.write_export(stream)
        except OSError as exc:
            raise CommandError(f"cannot write {options['output']}: {exc.strerror}") from None
        self.stderr.write(
            f"Exported {counts['articles']} articles, {counts['comments']} comments and "
            f"{counts['events']} events to {options['output']}"
        )
