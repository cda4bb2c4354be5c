"""Erase one e-mail address's personal data from every comment (asks first)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from comments import moderation, personal_data
from comments.management.commands.export_personal_data import checked_email

ACTOR = moderation.Actor("erase_personal_data command")


class Command(BaseCommand):
    help = (
        "Anonymise every comment of one e-mail address (name, address, website, IP "
        "address, user agent, referrer, the Akismet copy; the text unless kept) and "
        "delete its reply notifications. Replies keep their place."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", help="the address (matched ignoring case)")
        text = parser.add_mutually_exclusive_group()
        text.add_argument(
            "--keep-text",
            dest="keep_text",
            action="store_const",
            const=True,
            help="keep the comments' text",
        )
        text.add_argument(
            "--remove-text",
            dest="keep_text",
            action="store_const",
            const=False,
            help="replace the comments' text by a short note",
        )
        parser.set_defaults(keep_text=None)
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args: Any, **options: Any) -> None:
        email = checked_email(options["email"])
        count = personal_data.comments_of(email).count()
        if not options["yes"]:
            answer = input(
                f"Erase the personal data of {email} from {count} comment(s)? "
                "This cannot be undone. Type 'yes' to continue: "
            )
            if answer.strip().lower() != "yes":
                raise CommandError("Nothing erased.")
        result = personal_data.erase_email(email, actor=ACTOR, keep_text=options["keep_text"])
        for key, value in result.as_dict().items():
            self.stdout.write(f"{key}: {value}")
