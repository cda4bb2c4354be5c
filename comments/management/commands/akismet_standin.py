"""Run the local Akismet stand-in: `python manage.py akismet_standin --port 8089`."""

from __future__ import annotations

import contextlib
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from comments.akismet_standin import AkismetStandIn, mask


class Command(BaseCommand):
    help = "Serve a local Akismet stand-in that speaks the real protocol (loopback only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8089)
        parser.add_argument(
            "--key", action="append", default=[], help="A valid API key (repeatable)."
        )
        parser.add_argument(
            "--suspended-key",
            action="append",
            default=[],
            help="A key answered as suspended, as KEY or KEY:ALERT_CODE (repeatable).",
        )
        parser.add_argument("--latency", type=float, default=0.0, help="Seconds per answer.")
        parser.add_argument("--verbose", action="store_true", help="Log every request.")

    def handle(self, *args: Any, **options: Any) -> None:
        keys = {key: "valid" for key in options["key"]} or {"local-standin-key": "valid"}
        for entry in options["suspended_key"]:
            key, _, code = entry.partition(":")
            keys[key] = f"suspended:{code or '10402'}"
        standin = AkismetStandIn(
            host=options["host"],
            port=options["port"],
            keys=keys,
            latency=options["latency"],
            verbose=options["verbose"],
        )
        self.stdout.write(
            f"Akismet stand-in on {standin.url} (keys: {', '.join(mask(k) for k in keys)})"
        )
        with contextlib.suppress(KeyboardInterrupt):
            standin.serve_forever()
