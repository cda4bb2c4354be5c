"""Local moderation rules: the database row, with the environment's defaults."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import cached_property

from django.conf import settings

from comments import prepared
from comments.models import Comment, HoldReason, ModerationRules
from comments.rendering import url_like_tokens


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _word_pattern(words: list[str]) -> re.Pattern[str] | None:
    """One alternation of escaped literals: linear time, no backtracking blow-up."""
    if not words:
        return None
    alternatives = "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


@dataclass
class EffectiveRules:
    moderation_words: list[str]
    disallowed_words: list[str]
    disallowed_emails: list[str]
    disallowed_ips: list[str]
    max_links: int
    premoderation: str
    trusted_authors_skip_hold: bool = False
    shadow_mode: bool = False

    @classmethod
    def load(cls) -> EffectiveRules:
        row = prepared.first(ModerationRules) or ModerationRules()
        return cls(
            moderation_words=_lines(row.moderation_words),
            disallowed_words=_lines(row.disallowed_words),
            disallowed_emails=[line.lower() for line in _lines(row.disallowed_emails)],
            disallowed_ips=_lines(row.disallowed_ips),
            max_links=row.max_links if row.max_links is not None else settings.COMMENTS_MAX_LINKS,
            premoderation=row.premoderation or settings.COMMENTS_PREMODERATION,
            trusted_authors_skip_hold=row.trusted_authors_skip_hold,
            shadow_mode=row.shadow_mode or settings.COMMENTS_SHADOW_MODE,
        )

    @cached_property
    def _disallowed_pattern(self) -> re.Pattern[str] | None:
        return _word_pattern(self.disallowed_words)

    @cached_property
    def _moderation_pattern(self) -> re.Pattern[str] | None:
        return _word_pattern(self.moderation_words)

    @cached_property
    def _networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        networks = []
        for entry in self.disallowed_ips:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                continue  # the console validates entries; ignore a stray bad line
        return networks

    def spam_reason(self, comment: Comment) -> str | None:
        """The reason code if a local rule calls the comment spam outright."""
        if comment.honeypot_tripped:
            return "honeypot"
        email = comment.author_email.lower()
        for entry in self.disallowed_emails:
            if email == entry or (entry.startswith("@") and email.endswith(entry)):
                return "disallowed_email"
        if comment.ip_address and self._networks:
            address = ipaddress.ip_address(comment.ip_address)
            if any(address in network for network in self._networks):
                return "disallowed_ip"
        pattern = self._disallowed_pattern
        if pattern is not None:
            fields = (comment.body, comment.author_name, comment.author_email, comment.author_url)
            if any(pattern.search(text) for text in fields if text):
                return "disallowed_word"
        return None

    def hold_reason(self, comment: Comment) -> str | None:
        """The HoldReason if a rule sends an otherwise clean comment to a human."""
        if self.trusted_authors_skip_hold and has_approved_comment(comment):
            return None
        if self.max_links and count_links(comment) >= self.max_links:
            return HoldReason.TOO_MANY_LINKS
        pattern = self._moderation_pattern
        if pattern is not None:
            fields = (comment.body, comment.author_name, comment.author_url)
            if any(pattern.search(text) for text in fields if text):
                return HoldReason.MODERATION_WORD
        if self.premoderation == "all":
            return HoldReason.PREMODERATION
        if self.premoderation == "new_authors" and not has_approved_comment(comment):
            return HoldReason.NEW_AUTHOR
        return None


def count_links(comment: Comment) -> int:
    """Links a reader could click, or URLs written out (very URL-dense text is not linked)."""
    return max(comment.body_html.count("<a "), url_like_tokens(comment.body))


def has_approved_comment(comment: Comment) -> bool:
    return (
        Comment.objects.filter(author_email=comment.author_email, status=Comment.Status.PUBLISHED)
        .exclude(pk=comment.pk)
        .exists()
    )
