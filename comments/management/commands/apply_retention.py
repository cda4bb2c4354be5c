"""Apply the retention periods now: `python manage.py apply_retention [--dry-run]`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from comments import retention


class Command(BaseCommand):
    help = (
        "Truncate IP addresses and clear user agents and referrers of old comments, and "
        "delete old spam and rejected comments (what the hourly beat job does)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Only count what would be trimmed and deleted; change nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run: bool = options["dry_run"]
        counts = retention.apply_retention(dry_run=dry_run)
        verb = "would be" if dry_run else "were"
        lines = [
            f"{counts['trimmed']} comment(s) older than {settings.COMMENTS_IP_RETENTION_DAYS} "
            f"days {verb} trimmed (IP address truncated, user agent and referrer cleared)",
            f"{counts['discarded_deleted']} blatant spam comment(s) decided more than "
            f"{settings.COMMENTS_DISCARD_RETENTION_DAYS} days ago {verb} deleted",
            f"{counts['spam_deleted']} spam or rejected comment(s) decided more than "
            f"{settings.COMMENTS_SPAM_RETENTION_DAYS} days ago {verb} deleted",
            f"{counts['kept_for_replies']} due comment(s) {verb} kept because a reply "
            "to them is not due",
            f"{counts['webhook_deliveries_deleted']} finished webhook deliveries older than "
            f"{settings.COMMENTS_WEBHOOK_LOG_RETENTION_DAYS} days {verb} deleted",
            f"{counts['unconfirmed_addresses_deleted']} never-confirmed notification "
            f"address(es) with an expired link {verb} deleted",
        ]
        if dry_run:
            lines.insert(0, "Dry run: nothing is changed.")
        for line in lines:
            self.stdout.write(line)
