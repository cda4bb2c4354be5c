"""Edit tokens: signed, bound to one comment, valid for the edit window."""

from __future__ import annotations

import datetime as dt
import math

from django.conf import settings
from django.core import signing

_SALT = "comments.edit-token"


class TokenExpired(Exception):
    pass


class TokenInvalid(Exception):
    pass


class _IssuedAtSigner(signing.TimestampSigner):
    """A TimestampSigner that stamps a given moment instead of the current time."""

    def __init__(self, issued_at: dt.datetime) -> None:
        super().__init__(salt=_SALT)
        # Rounded up, so the token never expires before the comment's edit window.
        self._stamp = math.ceil(issued_at.timestamp())

    def timestamp(self) -> str:
        return signing.b62_encode(self._stamp)


def make_edit_token(comment_id: int, *, issued_at: dt.datetime | None = None) -> str:
    """A token for one comment; its age counts from `issued_at` (default: now).

    Pass the comment's `created_at`: the token then expires with the comment's edit
    window, and issuing it again (an idempotent replay) neither extends the window
    nor yields a different token.
    """
    if issued_at is None:
        return signing.TimestampSigner(salt=_SALT).sign(str(comment_id))
    return _IssuedAtSigner(issued_at).sign(str(comment_id))


def check_edit_token(token: str, comment_id: int) -> None:
    """Raise TokenInvalid or TokenExpired unless `token` was issued for this comment."""
    signer = signing.TimestampSigner(salt=_SALT)
    try:
        value = signer.unsign(token)
    except signing.BadSignature:
        raise TokenInvalid("The edit token is not valid for this comment.") from None
    if value != str(comment_id):
        raise TokenInvalid("The edit token is not valid for this comment.")
    try:
        signer.unsign(token, max_age=settings.COMMENTS_EDIT_WINDOW_SECONDS)
    except signing.SignatureExpired:
        raise TokenExpired("The edit window for this comment has closed.") from None
