"""Edit tokens: signed, bound to one comment, valid for the edit window."""

from __future__ import annotations

from django.conf import settings
from django.core import signing

_SALT = "comments.edit-token"


class TokenExpired(Exception):
    pass


class TokenInvalid(Exception):
    pass


def make_edit_token(comment_id: int) -> str:
    return signing.TimestampSigner(salt=_SALT).sign(str(comment_id))


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
