"""`manage.py import_disqus FILE`: a Disqus export (see comments/portability/disqus.py)."""

from __future__ import annotations

from typing import Any

from comments.portability import disqus
from comments.portability.command import ImportCommand


class Command(ImportCommand):
    help = "Import the comments of a Disqus export (XML); importing it again adds nothing."

    def handle(self, *args: Any, **options: Any) -> None:
        self.import_parsed(
            disqus.SOURCE, lambda report: disqus.parse(options["file"], report), options
        )
