"""`manage.py import_wxr FILE`: comments of a WordPress export (see comments/portability/wxr.py)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from comments.portability import wxr
from comments.portability.command import ImportCommand


class Command(ImportCommand):
    help = "Import the comments of a WordPress export (WXR); importing it again adds nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--with-pingbacks", action="store_true", help="Import pingbacks and trackbacks too."
        )
        parser.add_argument(
            "--site-url",
            default="",
            help="The WordPress site's URL, when the export names none (part of each import id).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.import_parsed(
            wxr.SOURCE,
            lambda report: wxr.parse(
                options["file"],
                report,
                with_pingbacks=options["with_pingbacks"],
                site_url=options["site_url"],
            ),
            options,
        )
