"""An e-mail backend for the chaos runs: every message is one file in $CHAOS_MAIL_DIR.

Set with EMAIL_BACKEND=tests.chaos.mail_backend.EmailBackend in the server
processes; the audit counts the files per comment. One file per message (never
appended), so no two processes or connections can share one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage


class EmailBackend(BaseEmailBackend):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.directory = Path(os.environ["CHAOS_MAIL_DIR"])
        self.directory.mkdir(parents=True, exist_ok=True)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        for message in email_messages:
            final = self.directory / f"{uuid.uuid4().hex}.eml"
            partial = final.with_suffix(".part")
            partial.write_bytes(message.message().as_bytes())
            partial.rename(final)  # atomic: the audit never reads half a message
        return len(email_messages)
