"""Export everything stored about one e-mail address as JSON (stdout or a file)."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email

from comments import personal_data


def checked_email(value: str) -> str:
    email = value.strip()
    try:
        validate_email(email)
    except ValidationError:
        raise CommandError(f"{value!r} is not an e-mail address.") from None
    return email


class Command(BaseCommand):
    help = (
        "Export every comment (any status, private fields, history) and the reply "
        "notification settings of one e-mail address, as JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", help="the address (matched ignoring case)")
        parser.add_argument("--output", "-o", help="write to this file instead of stdout")

    def handle(self, *args: Any, **options: Any) -> None:
        email = checked_email(options["email"])
        text = json.dumps(personal_data.export_for_email(email), indent=2, ensure_ascii=False)
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as output:
                output.write(text + "\n")
            count = len(json.loads(text)["comments"])
            self.stderr.write(f"{count} comment(s) written to {options['output']}")
        else:
            self.stdout.write(text)
